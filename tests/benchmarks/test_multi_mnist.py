"""Multi-MNIST / Multi-Fashion / Multi-(Fashion+MNIST): IDX reading, pair construction, model, losses, metrics."""

from __future__ import annotations

import gzip
import hashlib

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from apt.benchmarks import benchmark_class, get_benchmark
from apt.benchmarks.idx import read_idx, read_idx_images_labels
from apt.data_dir import CorruptDataError
from apt.benchmarks.multi_mnist import (
    AccuracyAccumulator,
    ItemPool,
    MultiFashionBenchmark,
    MultiFashionMNISTBenchmark,
    MultiLeNet,
    MultiMNISTBenchmark,
    PairDataset,
    build_pairs,
    compose_canvases,
    fashion_pools,
    mnist_pools,
    sample_shifts,
)
from apt.data_dir import DataMissingError, data_dir

DATA = data_dir()
NAMES = ("multi_mnist", "multi_fashion", "multi_fashion_mnist")


# --- IDX -------------------------------------------------------------------------------------------------


def test_read_idx_real_files(require_data) -> None:
    require_data(DATA / "mnist_10k")
    require_data(DATA / "fashion_mnist")
    images, labels = read_idx_images_labels(
        DATA / "mnist_10k/train-images-idx3-ubyte.gz", DATA / "mnist_10k/train-labels-idx1-ubyte.gz"
    )
    assert images.shape == (10_000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels, minlength=10).min() > 800  # every digit present
    assert read_idx(DATA / "fashion_mnist/t10k-labels-idx1-ubyte.gz").shape == (10_000,)
    assert read_idx(DATA / "fashion_mnist/train-images-idx3-ubyte.gz").shape == (60_000, 28, 28)


def _write_idx(path, header: bytes, payload: bytes) -> None:
    path.write_bytes(gzip.compress(header + payload))


def test_read_idx_rejects_corrupt_and_missing_files(tmp_path) -> None:
    good_header = bytes([0, 0, 8, 1]) + (3).to_bytes(4, "big")
    _write_idx(tmp_path / "ok.gz", good_header, bytes([1, 2, 3]))
    assert read_idx(tmp_path / "ok.gz").tolist() == [1, 2, 3]
    _write_idx(tmp_path / "short.gz", good_header, bytes([1, 2]))
    with pytest.raises(CorruptDataError, match=r"short\.gz.*\(3,\)"):
        read_idx(tmp_path / "short.gz")
    _write_idx(tmp_path / "magic.gz", bytes([1, 0, 8, 1]) + (1).to_bytes(4, "big"), bytes([0]))
    with pytest.raises(CorruptDataError, match="not an IDX file"):
        read_idx(tmp_path / "magic.gz")
    _write_idx(tmp_path / "float.gz", bytes([0, 0, 0x0D, 1]) + (1).to_bytes(4, "big"), bytes(4))
    with pytest.raises(CorruptDataError, match="0x0d"):
        read_idx(tmp_path / "float.gz")
    with pytest.raises(DataMissingError, match="absent.gz"):
        read_idx(tmp_path / "absent.gz")


def test_missing_folder_names_expected_files(tmp_path) -> None:
    bench = MultiMNISTBenchmark(tmp_path)
    with pytest.raises(DataMissingError, match=r"(?s)mnist_10k.*train-images-idx3-ubyte\.gz.*yann\.lecun"):
        bench.splits(bench.protocol_for("smoke"), seed=0)
    with pytest.raises(DataMissingError, match=r"(?s)fashion_mnist.*t10k-labels-idx1-ubyte\.gz"):
        fashion_pools(tmp_path, 0)


# --- canvas construction -----------------------------------------------------------------------------------


def test_compose_canvases_hand_example() -> None:
    left = np.full((1, 28, 28), 100, dtype=np.uint8)
    right = np.full((1, 28, 28), 200, dtype=np.uint8)
    canvas = compose_canvases(left, right, np.array([1]), np.array([2]))[0]
    # left covers rows/cols 1..28, right covers 6..33; overlap clipped to 255.
    assert canvas.dtype == np.uint8 and canvas.shape == (36, 36)
    assert canvas[0].max() == 0 and canvas[:, 0].max() == 0
    assert canvas[1, 1] == 100 and canvas[5, 5] == 100 and canvas[5, 28] == 100
    assert canvas[6, 6] == 255 and canvas[28, 28] == 255
    assert canvas[29, 29] == 200 and canvas[33, 33] == 200 and canvas[6, 33] == 200
    assert canvas[34:].max() == 0 and canvas[:, 34:].max() == 0
    assert canvas[1, 29] == 0  # left item ends at column 28, right starts at row 6


def test_compose_canvases_rejects_bad_shifts() -> None:
    items = np.zeros((1, 28, 28), dtype=np.uint8)
    with pytest.raises(ValueError, match="left_shift"):
        compose_canvases(items, items, np.array([5]), np.array([0]))


def test_sample_shifts_follow_sener_koltun_rule() -> None:
    left, right = sample_shifts(20_000, seed=3, split_code=0)
    combos = set(zip(left.tolist(), right.tolist()))
    assert (4, 0) not in combos  # never the same position
    assert combos == {(a, b) for a in range(5) for b in range(5)} - {(4, 0)}
    # P(s_l = 4) = P(s_r = 0) = ½ · ⅕ = 0.1; P(s_l = 0) = ½(¼ + ⅕) = 0.225.
    assert np.mean(left == 4) == pytest.approx(0.1, abs=0.01)
    assert np.mean(right == 0) == pytest.approx(0.1, abs=0.01)
    assert np.mean(left == 0) == pytest.approx(0.225, abs=0.015)
    # Prefix-stable: asking for fewer pairs gives the first ones of the longer sequence.
    left_short, right_short = sample_shifts(100, seed=3, split_code=0)
    assert np.array_equal(left_short, left[:100]) and np.array_equal(right_short, right[:100])


def _constant_item_pool(value_per_label: int) -> ItemPool:
    labels = np.arange(10, dtype=np.int64)
    images = np.repeat(((labels + 1) * value_per_label).astype(np.uint8)[:, None, None], 28, 1).repeat(28, 2)
    return ItemPool(images, labels)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 64))
def test_build_pairs_labels_match_pasted_items(seed: int, n: int) -> None:
    # Constant items: the left item's value is 10·(label+1), the right item's 11·(label+1). The pixel at
    # (s_l, s_l) holds only the left item and the one at (31+s_r, 31+s_r) only the right item.
    pairs = build_pairs(_constant_item_pool(10), _constant_item_pool(11), n, seed, split_code=0)
    assert len(pairs) == n
    for i in range(n):
        image, left_label, right_label = pairs[i]
        canvas = image[0].numpy()
        rows = np.flatnonzero(canvas.max(axis=1))
        s_left, s_right = rows[0], rows[-1] - 31
        assert canvas[s_left, s_left] == 10 * (left_label + 1)
        assert canvas[31 + s_right, 31 + s_right] == 11 * (right_label + 1)


def test_build_pairs_is_deterministic_and_prefix_stable() -> None:
    pool = _constant_item_pool(20)
    a = build_pairs(pool, pool, 300, seed=5, split_code=2)
    b = build_pairs(pool, pool, 300, seed=5, split_code=2)
    short = build_pairs(pool, pool, 50, seed=5, split_code=2)
    other = build_pairs(pool, pool, 300, seed=6, split_code=2)
    assert torch.equal(a.images, b.images) and torch.equal(a.left_labels, b.left_labels)
    assert torch.equal(short.images, a.images[:50]) and torch.equal(short.right_labels, a.right_labels[:50])
    assert not torch.equal(a.images, other.images)


# --- real splits -----------------------------------------------------------------------------------------


def _digests(images: np.ndarray) -> set[str]:
    return {hashlib.sha1(image.tobytes()).hexdigest() for image in images}


def test_mnist_pools_are_disjoint_shuffled_and_cover_all_digits(require_data) -> None:
    require_data(DATA / "mnist_10k")
    pools = mnist_pools(DATA, seed=0)
    assert [len(pools[s].labels) for s in ("train", "val", "test")] == [7_000, 1_000, 2_000]
    digests = {split: _digests(pool.images) for split, pool in pools.items()}
    assert not digests["train"] & digests["test"]
    assert not digests["train"] & digests["val"]
    assert not digests["val"] & digests["test"]
    for pool in pools.values():  # the file is sorted by class: a seeded shuffle must mix them
        shares = np.bincount(pool.labels, minlength=10) / len(pool.labels)
        assert shares.min() > 0.06 and shares.max() < 0.15
    assert not np.array_equal(mnist_pools(DATA, seed=1)["test"].labels, pools["test"].labels)


def test_fashion_pools_use_official_test_file(require_data) -> None:
    require_data(DATA / "fashion_mnist")
    pools = fashion_pools(DATA, seed=0)
    assert [len(pools[s].labels) for s in ("train", "val", "test")] == [50_000, 10_000, 10_000]
    test_labels = read_idx(DATA / "fashion_mnist/t10k-labels-idx1-ubyte.gz")
    assert np.array_equal(pools["test"].labels, test_labels)
    assert not _digests(pools["val"].images[:2000]) & _digests(pools["train"].images)


@pytest.mark.parametrize("name", NAMES)
def test_splits_sizes_determinism_and_cache(require_data, name: str) -> None:
    require_data(DATA / "mnist_10k")
    require_data(DATA / "fashion_mnist")
    bench = get_benchmark(name, DATA)
    protocol = bench.protocol_for("smoke")
    splits = bench.splits(protocol, seed=0)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (512, 128, 256)
    assert bench.splits(protocol, seed=0) is splits  # cached in memory
    fresh = type(bench)(DATA)._n_pairs(protocol)
    assert fresh == {"train": 512, "val": 128, "test": 256}
    # The same pairs again from scratch (another instance, another process would see the same).
    rebuilt = build_pairs(*[pools["test"] for pools in bench.pools(0)], 256, 0, split_code=2)
    assert torch.equal(rebuilt.images, splits.test.images)
    other_seed = bench.splits(protocol, seed=1)
    assert not torch.equal(other_seed.train.images, splits.train.images)


def test_multi_fashion_mnist_puts_digit_left_and_fashion_right(require_data) -> None:
    require_data(DATA / "mnist_10k")
    require_data(DATA / "fashion_mnist")
    bench = MultiFashionMNISTBenchmark(DATA)
    left, right = bench.pools(0)
    assert len(left["train"].labels) == 7_000  # MNIST-10k train pool
    assert len(right["test"].labels) == 10_000  # Fashion-MNIST official test file


def test_registry_maps_names_to_classes() -> None:
    assert benchmark_class("multi_mnist") is MultiMNISTBenchmark
    assert benchmark_class("multi_fashion") is MultiFashionBenchmark
    assert benchmark_class("multi_fashion_mnist") is MultiFashionMNISTBenchmark


@pytest.mark.parametrize("name", NAMES)
def test_profiles_are_valid_and_documented(name: str) -> None:
    bench = get_benchmark(name, DATA)
    assert set(bench.profiles) == {"full", "cpu", "smoke"} == set(bench.profile_notes)
    assert bench.profiles["full"] == {}
    for profile in bench.profiles:
        protocol = bench.protocol_for(profile)
        assert protocol.selection == "last_k" and protocol.selection_k == 3
    assert bench.published_stl is None
    assert len(bench.metric_names) == len(bench.metric_higher_better) == len(bench.metric_task) == 2


# --- model, losses, metrics --------------------------------------------------------------------------------


def test_multilenet_shapes_parameters_and_muon_exclusions() -> None:
    torch.manual_seed(0)
    model = MultiLeNet()
    assert sum(p.numel() for p in model.parameters()) == 31_910
    assert sum(p.numel() for p in model.shared_parameters()) == 30_890
    outputs = model(torch.rand(4, 1, 36, 36))
    assert [tuple(o.shape) for o in outputs] == [(4, 10), (4, 10)]
    excluded = model.muon_excluded_names()
    names = dict(model.named_parameters())
    assert excluded <= set(names)
    assert "shared.conv1.weight" in excluded and "heads.0.weight" in excluded and "heads.1.weight" in excluded
    assert "shared.conv2.weight" not in excluded and "shared.fc.weight" not in excluded


def test_losses_are_per_task_cross_entropy() -> None:
    bench = MultiMNISTBenchmark(DATA)
    logits = [torch.tensor([[2.0, 0.0, 0.0, 0, 0, 0, 0, 0, 0, 0]]), torch.zeros(1, 10)]
    targets = [torch.tensor([0]), torch.tensor([3])]
    losses = bench.losses(logits, targets)
    expected_left = -(2.0 - torch.log(torch.exp(torch.tensor(2.0)) + 9.0))
    assert losses.shape == (2,)
    assert losses[0].item() == pytest.approx(expected_left.item(), rel=1e-6)
    assert losses[1].item() == pytest.approx(np.log(10.0), rel=1e-6)
    with pytest.raises(ValueError, match="expected 2 outputs"):
        bench.losses(logits[:1], targets)


def test_accuracy_accumulator_hand_example() -> None:
    acc = AccuracyAccumulator(("acc_left", "acc_right"))
    eye = torch.eye(10)
    acc.update([eye[[1, 2]], eye[[3, 3]]], [torch.tensor([1, 0]), torch.tensor([3, 3])])
    acc.update([eye[[5]], eye[[0]]], [torch.tensor([5]), torch.tensor([1])])
    assert acc.compute() == {"acc_left": pytest.approx(2 / 3), "acc_right": pytest.approx(2 / 3)}
    with pytest.raises(ValueError, match="no batch"):
        AccuracyAccumulator(("a",)).compute()


def test_inputs_targets_scale_to_unit_interval() -> None:
    bench = MultiMNISTBenchmark(DATA)
    images = torch.full((2, 1, 36, 36), 255, dtype=torch.uint8)
    batch = (images, torch.tensor([1, 2]), torch.tensor([3, 4]))
    x, (left, right) = bench.inputs_targets(batch, "cpu")
    assert x.dtype == torch.float32 and x.max().item() == 1.0
    assert left.tolist() == [1, 2] and right.tolist() == [3, 4]
    with pytest.raises(ValueError, match="uint8"):
        PairDataset(images.float(), torch.zeros(2), torch.zeros(2))


def test_short_training_learns_multi_mnist(require_data) -> None:
    # End to end on real digits: 2048 pairs, 4 epochs of Adam reach well above chance (0.1) on both tasks.
    require_data(DATA / "mnist_10k")
    bench = MultiMNISTBenchmark(DATA)
    protocol = bench.protocol_for("smoke").with_overrides({"n_train": 2048, "n_test": 512, "epochs": 4})
    splits = bench.splits(protocol, seed=0)
    torch.manual_seed(0)
    model = bench.build_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=protocol.lr)
    generator = torch.Generator().manual_seed(0)
    for _ in range(protocol.epochs):
        for batch in bench.loader(splits.train, protocol.batch_size, shuffle=True, generator=generator):
            x, y = bench.inputs_targets(batch, "cpu")
            optimizer.zero_grad()
            bench.losses(model(x), y).sum().backward()
            optimizer.step()
    metrics = bench.evaluate(model, splits.test, 256, "cpu")
    assert model.training, "evaluate restores the train mode it found"
    assert list(metrics) == ["acc_left", "acc_right"]
    assert metrics["acc_left"] > 0.4 and metrics["acc_right"] > 0.4, metrics
