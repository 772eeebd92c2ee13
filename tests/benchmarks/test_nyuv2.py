"""NYUv2 on tiny files written in the exact MTAN .npy layout (the real set is not on this machine)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from apt.benchmarks import get_benchmark
from apt.benchmarks.nyuv2 import NYUv2Benchmark
from apt.data_dir import DataMissingError

HEIGHT, WIDTH = 32, 32  # the real files are 288×384; any multiple of 32 goes through the same code


def write_nyuv2(root: Path, split: str, n: int, seed: int) -> None:
    """n samples as in nyuv2.zip: image [H,W,3], label [H,W] (−1 = unlabelled), depth [H,W,1], normal [H,W,3]."""
    rng = np.random.default_rng(seed)
    for folder in ("image", "label", "depth", "normal"):
        (root / "nyuv2" / split / folder).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        normal = rng.normal(size=(HEIGHT, WIDTH, 3)).astype(np.float32)
        normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
        depth = rng.uniform(0.5, 10.0, size=(HEIGHT, WIDTH, 1)).astype(np.float32)
        depth[:4] = 0.0  # missing depth and normals at the top rows, as in the real data
        normal[:4] = 0.0
        label = rng.integers(-1, 13, size=(HEIGHT, WIDTH)).astype(np.float32)
        base = root / "nyuv2" / split
        np.save(base / "image" / f"{i}.npy", rng.uniform(size=(HEIGHT, WIDTH, 3)).astype(np.float32))
        np.save(base / "label" / f"{i}.npy", label)
        np.save(base / "depth" / f"{i}.npy", depth)
        np.save(base / "normal" / f"{i}.npy", normal)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_nyuv2(root, "train", 6, seed=0)
    write_nyuv2(root, "val", 3, seed=1)
    return root


def test_registry_builds_it(data_root):
    assert isinstance(get_benchmark("nyuv2", data_root), NYUv2Benchmark)


def test_loader_reads_the_npy_layout(data_root):
    bench = NYUv2Benchmark(data_root, augmentation=False)
    splits = bench.splits(bench.protocol, seed=0)
    assert (len(splits.train), splits.val, len(splits.test)) == (6, None, 3)
    image, label, depth, normal = splits.test[2]
    assert image.shape == (3, HEIGHT, WIDTH) and label.shape == (HEIGHT, WIDTH)
    assert depth.shape == (1, HEIGHT, WIDTH) and normal.shape == (3, HEIGHT, WIDTH)
    stored = np.load(data_root / "nyuv2" / "val" / "normal" / "2.npy")
    assert torch.equal(normal, torch.from_numpy(np.moveaxis(stored, -1, 0)))
    assert torch.equal(image, torch.from_numpy(np.moveaxis(np.load(data_root / "nyuv2" / "val" / "image" / "2.npy"), -1, 0)))


def test_profiles_take_seeded_subsets(data_root):
    bench = NYUv2Benchmark(data_root)
    smoke = bench.protocol_for("smoke")
    first, again = bench.splits(smoke, seed=5), bench.splits(smoke, seed=5)
    assert (len(first.train), len(first.test)) == (4, 2)
    assert first.train.indices == again.train.indices and first.test.indices == again.test.indices
    assert first.train.augment and not first.test.augment


def test_training_batches_are_augmented_with_normal_sign_flips(data_root):
    bench = NYUv2Benchmark(data_root)
    splits = bench.splits(bench.protocol, seed=0)
    loader = bench.loader(splits.train, 2, shuffle=True, generator=torch.Generator().manual_seed(0))
    batches = list(loader)
    assert len(batches) == len(loader) == 3
    image, label, depth, normal = batches[0]
    assert image.shape == (2, 3, HEIGHT, WIDTH) and normal.shape == (2, 3, HEIGHT, WIDTH)
    plain = bench.loader(splits.test, 2, shuffle=False, generator=None)
    assert torch.equal(next(iter(plain))[3][0], splits.test[0][3])  # evaluation batches are not augmented


def test_one_step_losses_and_metrics(data_root):
    bench = NYUv2Benchmark(data_root)
    splits = bench.splits(bench.protocol_for("smoke"), seed=0)
    torch.manual_seed(0)
    model = bench.build_model()
    batch = next(iter(bench.loader(splits.train, 2, shuffle=True, generator=torch.Generator().manual_seed(0))))
    inputs, targets = bench.inputs_targets(batch, "cpu")
    assert targets[0].dtype == torch.long
    outputs = model(inputs)
    losses = bench.losses(outputs, targets)
    assert losses.shape == (3,) and bool(torch.isfinite(losses).all())
    losses.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.shared_parameters())
    assert sum(float(p.grad.norm()) for p in model.shared_parameters()) > 0  # the losses reach the trunk
    accumulator = bench.metric_accumulator()
    accumulator.update([o.detach() for o in outputs], targets)
    metrics = accumulator.compute()
    assert list(metrics) == list(NYUv2Benchmark.metric_names)
    assert 0 <= metrics["miou"] <= 1 and 0 <= metrics["within_30"] <= 1
    with pytest.raises(ValueError, match="expects 3 outputs"):
        bench.losses(outputs[:2], targets[:2])


def test_class_attributes_are_consistent():
    b = NYUv2Benchmark
    assert len(b.metric_names) == len(b.metric_higher_better) == len(b.metric_task) == len(b.published_stl) == 9
    assert b.published_stl == (0.3830, 0.6376, 0.6754, 0.2780, 25.01, 19.21, 0.3014, 0.5720, 0.6915)
    p = b.protocol
    assert (p.epochs, p.batch_size, p.lr, p.scheduler, p.selection, p.selection_k) == (200, 2, 1e-4, "step", "last_k", 10)
    assert dict(p.scheduler_kwargs) == {"step_size": 100, "gamma": 0.5}


def test_missing_data_names_folder_files_and_source(tmp_path):
    with pytest.raises(DataMissingError, match=r"(?s)nyuv2/train/image.*normal/\{i\}\.npy.*dropbox"):
        NYUv2Benchmark(tmp_path).splits(NYUv2Benchmark.protocol, seed=0)


def test_incomplete_folder_is_reported(tmp_path):
    write_nyuv2(tmp_path, "train", 3, seed=0)
    (tmp_path / "nyuv2" / "train" / "depth" / "1.npy").unlink()
    with pytest.raises(DataMissingError, match=r"depth lacks 1 of the 3 files.*1\.npy"):
        NYUv2Benchmark(tmp_path).splits(NYUv2Benchmark.protocol, seed=0)


def test_unreadable_or_misshapen_sample_names_its_file(tmp_path):
    write_nyuv2(tmp_path, "train", 2, seed=0)
    write_nyuv2(tmp_path, "val", 2, seed=1)
    val = tmp_path / "nyuv2" / "val"
    (val / "depth" / "0.npy").write_bytes(b"not an array")  # e.g. an interrupted download
    np.save(val / "label" / "1.npy", np.zeros((HEIGHT, WIDTH + 1), dtype=np.float32))  # label ≠ image size
    test = NYUv2Benchmark(tmp_path, augmentation=False).splits(NYUv2Benchmark.protocol, seed=0).test
    with pytest.raises(DataMissingError, match=rf"cannot read {val / 'depth' / '0.npy'} as a \.npy array"):
        test[0]
    with pytest.raises(DataMissingError, match=rf"sample 1 in {val} has image \(32, 32, 3\) and label \(32, 33\)"):
        test[1]
