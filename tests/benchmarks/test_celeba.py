"""CelebA: the real annotation files, the image pipeline on tiny JPEGs with real names, model, BCE, F1."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from apt.benchmarks import benchmark_class
from apt.benchmarks.celeba import (
    ATTRIBUTE_NAMES,
    ATTRIBUTES_FILE,
    PARTITION_FILE,
    CelebABenchmark,
    CelebANet,
    F1Accumulator,
    f1_scores,
    load_image,
    read_annotations,
)
from apt.data_dir import CorruptDataError
from apt.data_dir import DataMissingError, data_dir

DATA = data_dir()


@pytest.fixture(scope="module")
def annotations(require_data):
    require_data(DATA / "celeba" / ATTRIBUTES_FILE)
    return read_annotations(DATA / "celeba")


def test_real_annotations_counts_and_splits(annotations) -> None:
    assert len(annotations.image_names) == 202_599
    assert annotations.attributes.shape == (202_599, 40)
    sizes = [len(annotations.split_indices(s)) for s in ("train", "val", "test")]
    assert sizes == [162_770, 19_867, 19_962]
    assert annotations.image_names[0] == "000001.jpg" and annotations.image_names[-1] == "202599.jpg"
    assert set(np.unique(annotations.attributes)) == {0, 1}


def test_real_annotations_known_values(annotations) -> None:
    # Row 1 of list_attr_celeba.txt (000001.jpg) and the last row, read off the file by hand.
    first = dict(zip(ATTRIBUTE_NAMES, annotations.attributes[0].tolist(), strict=True))
    assert first["Male"] == 0 and first["Smiling"] == 1 and first["Young"] == 1
    assert first["Attractive"] == 1 and first["Brown_Hair"] == 1 and first["Wearing_Lipstick"] == 1
    assert first["5_o_Clock_Shadow"] == 0 and first["Eyeglasses"] == 0
    last = dict(zip(ATTRIBUTE_NAMES, annotations.attributes[-1].tolist(), strict=True))
    assert last["Blond_Hair"] == 1 and last["Pale_Skin"] == 1 and last["Wavy_Hair"] == 1 and last["Male"] == 0
    # Official partition: train rows come first, then val, then test.
    assert annotations.partition[0] == 0 and annotations.partition[162_770] == 1 and annotations.partition[-1] == 2
    # Male is the best-known prevalence: about 42 % of CelebA.
    assert 0.40 < annotations.attributes[:, ATTRIBUTE_NAMES.index("Male")].mean() < 0.43


def _write_annotations(folder, rows: list[tuple[str, list[int], int]], declared: int | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [str(declared if declared is not None else len(rows)), " ".join(ATTRIBUTE_NAMES)]
    lines += [name + "".join(f" {v:>2}" for v in values) for name, values, _ in rows]
    (folder / ATTRIBUTES_FILE).write_bytes(("\r\n".join(lines) + "\r\n").encode())
    (folder / PARTITION_FILE).write_bytes("".join(f"{n} {p}\r\n" for n, _, p in rows).encode())


def test_annotation_parser_rejects_corrupt_files(tmp_path) -> None:
    row = [1] * 20 + [-1] * 20
    _write_annotations(tmp_path / "a", [("000001.jpg", row, 0), ("000002.jpg", row, 2)], declared=3)
    with pytest.raises(CorruptDataError, match="declares 3 images, found 2"):
        read_annotations(tmp_path / "a")
    _write_annotations(tmp_path / "b", [("000001.jpg", [0] + row[1:], 0)])
    with pytest.raises(CorruptDataError, match="value 0 for 5_o_Clock_Shadow of 000001.jpg"):
        read_annotations(tmp_path / "b")
    _write_annotations(tmp_path / "c", [("000001.jpg", row, 3)])
    with pytest.raises(CorruptDataError, match="partition values"):
        read_annotations(tmp_path / "c")
    with pytest.raises(DataMissingError, match="list_attr_celeba.txt"):
        read_annotations(tmp_path / "missing")
    _write_annotations(tmp_path / "e", [("000001.jpg", row[:39] + [1.5], 1)])
    with pytest.raises(CorruptDataError, match="integers"):
        read_annotations(tmp_path / "e")
    _write_annotations(tmp_path / "d", [("000001.jpg", row, 1)])
    parsed = read_annotations(tmp_path / "d")
    assert parsed.attributes[0].tolist() == [1] * 20 + [0] * 20 and parsed.partition.tolist() == [1]


@pytest.fixture()
def tiny_celeba(tmp_path, annotations):
    """A data dir with the real annotation files and tiny JPEGs for the smoke-profile subsets of seed 0."""
    folder = tmp_path / "celeba"
    (folder / "img_align_celeba").mkdir(parents=True)
    for name in (ATTRIBUTES_FILE, PARTITION_FILE):
        (folder / name).symlink_to(DATA / "celeba" / name)
    bench = CelebABenchmark(tmp_path)
    protocol = bench.protocol_for("smoke")
    generator = np.random.default_rng(0)
    for rows in bench.subset_indices(protocol, seed=0).values():
        for row in rows:
            pixels = generator.integers(0, 256, size=(218, 178, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / "img_align_celeba" / annotations.image_names[row], quality=90)
    return bench, protocol


def test_missing_images_error_names_folder_and_archive(tmp_path, annotations) -> None:
    folder = tmp_path / "celeba"
    folder.mkdir()
    for name in (ATTRIBUTES_FILE, PARTITION_FILE):
        (folder / name).symlink_to(DATA / "celeba" / name)
    bench = CelebABenchmark(tmp_path)
    with pytest.raises(DataMissingError, match=r"(?s)img_align_celeba.*img_align_celeba\.zip.*000001\.jpg"):
        bench.splits(bench.protocol_for("smoke"), seed=0)
    (folder / "img_align_celeba").mkdir()
    with pytest.raises(DataMissingError, match=r"(?s)train split.*missing file"):
        bench.splits(bench.protocol_for("smoke"), seed=0)


def test_load_image_resizes_to_64_and_keeps_rgb_order(tmp_path) -> None:
    red = np.zeros((218, 178, 3), dtype=np.uint8)
    red[..., 0] = 255
    red[:, 89:, 2] = 255  # right half magenta: blue rises from left to right
    Image.fromarray(red).save(tmp_path / "000001.jpg", quality=95)
    x = load_image(tmp_path / "000001.jpg")
    assert x.shape == (3, 64, 64) and x.dtype == torch.float32
    assert 0.0 <= x.min().item() and x.max().item() <= 1.0
    assert x[0].mean().item() > 0.95 and x[1].mean().item() < 0.05
    assert x[2, :, :20].mean().item() < 0.05 and x[2, :, 44:].mean().item() > 0.95
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(CorruptDataError, match="broken.jpg"):
        load_image(tmp_path / "broken.jpg")


def test_splits_subsets_are_seeded_and_in_the_right_split(tiny_celeba, annotations) -> None:
    bench, protocol = tiny_celeba
    chosen = bench.subset_indices(protocol, seed=0)
    assert {s: len(r) for s, r in chosen.items()} == {"train": 16, "val": 8, "test": 8}
    for split, rows in chosen.items():
        assert (annotations.partition[rows] == {"train": 0, "val": 1, "test": 2}[split]).all()
    again = bench.subset_indices(protocol, seed=0)
    other = bench.subset_indices(protocol, seed=1)
    assert all(np.array_equal(chosen[s], again[s]) for s in chosen)
    assert not np.array_equal(chosen["train"], other["train"])
    full = bench.subset_indices(bench.protocol, seed=0)
    assert len(full["train"]) == 162_770


def test_end_to_end_smoke_pipeline(tiny_celeba, annotations) -> None:
    bench, protocol = tiny_celeba
    splits = bench.splits(protocol, seed=0)
    image, attributes = splits.train[0]
    row = bench.subset_indices(protocol, seed=0)["train"][0]
    assert image.shape == (3, 64, 64)
    assert attributes.tolist() == annotations.attributes[row].astype(float).tolist()
    torch.manual_seed(0)
    model = bench.build_model()
    batch = next(iter(bench.loader(splits.train, protocol.batch_size, shuffle=True, generator=torch.Generator())))
    x, y = bench.inputs_targets(batch, "cpu")
    outputs = model(x)
    assert len(outputs) == 40 and outputs[0].shape == (8, 1)
    losses = bench.losses(outputs, y)
    assert losses.shape == (40,) and torch.isfinite(losses).all()
    losses.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.shared_parameters())
    assert sum(float(p.grad.norm()) for p in model.shared_parameters()) > 0  # the losses reach the trunk
    model.eval()
    metrics = bench.evaluate(model, splits.test, 4, "cpu")
    assert list(metrics) == list(bench.metric_names) and all(0.0 <= v <= 1.0 for v in metrics.values())


def test_model_architecture_and_muon_exclusions() -> None:
    model = CelebANet()
    convs = [m for m in model.shared.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [
        (3, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 512), (512, 512)
    ]  # fmt: skip
    assert all(c.bias is None and c.kernel_size == (3, 3) for c in convs)
    assert len(model.heads) == 40
    names = dict(model.named_parameters())
    excluded = model.muon_excluded_names()
    assert excluded <= set(names)
    assert "shared.conv1.weight" in excluded and "heads.39.0.weight" in excluded
    assert "shared.conv2.weight" not in excluded and "shared.fc1.weight" not in excluded
    # By hand: convs 9·(3·64 + 64·128 + 128² + 128·256 + 256² + 256·512 + 512²) = 4,646,592; two bias-free
    # 512×512 linears 524,288; BN weight+bias 2·(64 + 2·128 + 2·256 + 2·512 + 2·512) = 5,760.
    assert sum(p.numel() for p in model.shared_parameters()) == 4_646_592 + 524_288 + 5_760
    assert sum(p.numel() for p in model.parameters()) - sum(p.numel() for p in model.shared_parameters()) == 40 * 513


def test_losses_are_per_attribute_bce() -> None:
    bench = CelebABenchmark(DATA)
    probabilities = torch.full((2, 40), 0.5)
    probabilities[:, 0] = torch.tensor([0.9, 0.2])
    targets = torch.zeros(2, 40)
    targets[0, 0] = 1.0
    losses = bench.losses([probabilities[:, k : k + 1] for k in range(40)], targets)
    expected_first = -(np.log(0.9) + np.log(0.8)) / 2
    assert losses[0].item() == pytest.approx(expected_first, rel=1e-6)
    assert losses[1:].allclose(torch.full((39,), float(np.log(2.0))))
    with pytest.raises(ValueError, match="expected 40 outputs"):
        bench.losses([probabilities[:, :1]], targets)


def test_f1_accumulator_hand_values() -> None:
    acc = F1Accumulator(("a", "b", "c", "d"))
    # a: TP 2, FP 1, FN 0 -> 4/5. b: no positive label, no positive prediction -> 0 (documented choice).
    # c: only a false positive -> 0. d: exactly 0.5 is not a positive prediction (strict >): TP 0, FN 1 -> 0.
    outputs = [
        torch.tensor([[0.9], [0.2], [0.7]]),
        torch.tensor([[0.1], [0.5], [0.3]]),
        torch.tensor([[0.8], [0.1], [0.1]]),
        torch.tensor([[0.5], [0.1], [0.1]]),
    ]
    targets = torch.tensor([[1.0, 0, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0]])
    acc.update(outputs, targets)
    acc.update([torch.tensor([[0.6]]), torch.tensor([[0.0]]), torch.tensor([[0.0]]), torch.tensor([[0.0]])],
               torch.tensor([[1.0, 0, 0, 0]]))  # fmt: skip
    assert acc.compute() == {"a": pytest.approx(0.8), "b": 0.0, "c": 0.0, "d": 0.0}


@settings(max_examples=50, deadline=None)
@given(
    counts=st.lists(
        st.tuples(st.integers(0, 500), st.integers(0, 500), st.integers(0, 500)), min_size=1, max_size=10
    )
)
def test_f1_matches_lineage_precision_recall_formula(counts) -> None:
    tp, fp, fn = (torch.tensor([c[i] for c in counts], dtype=torch.float64) for i in range(3))
    precision = tp / (tp + fp + 1e-8)
    recall = tp / (tp + fn + 1e-8)
    lineage = 2 * precision * recall / (precision + recall + 1e-8)
    assert torch.allclose(f1_scores(tp, fp, fn), lineage, atol=1e-6)


def test_protocol_and_published_stl() -> None:
    bench = benchmark_class("celeba")(DATA)
    assert isinstance(bench, CelebABenchmark)
    full = bench.protocol_for("full")
    assert (full.epochs, full.batch_size, full.lr, full.selection) == (15, 256, 3e-4, "best_val_mean")
    assert len(bench.published_stl) == 40 == len(bench.metric_names)
    assert bench.published_stl[20] == pytest.approx(0.97034)  # Male
    assert all(bench.metric_higher_better) and bench.metric_task == tuple(range(40))
    assert set(bench.profiles) == set(bench.profile_notes) == {"full", "cpu", "smoke"}
