"""Cityscapes on tiny files written in the exact MTAN .npy layout (the real set is not on this machine)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from apt.benchmarks import get_benchmark
from apt.benchmarks.cityscapes import CityscapesBenchmark
from apt.data_dir import DataMissingError

HEIGHT, WIDTH = 32, 64  # the real files are 128×256


def write_cityscapes(root: Path, split: str, n: int, seed: int) -> None:
    """n samples as in the 128×256 archive: image [H,W,3], label_7 [H,W] (−1 = void), depth [H,W,1]."""
    rng = np.random.default_rng(seed)
    base = root / "cityscapes" / split
    for folder in ("image", "label_7", "depth"):
        (base / folder).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        depth = rng.uniform(0.001, 0.1, size=(HEIGHT, WIDTH, 1)).astype(np.float32)
        depth[-3:] = 0.0
        np.save(base / "image" / f"{i}.npy", rng.uniform(size=(HEIGHT, WIDTH, 3)).astype(np.float32))
        np.save(base / "label_7" / f"{i}.npy", rng.integers(-1, 7, size=(HEIGHT, WIDTH)).astype(np.float32))
        np.save(base / "depth" / f"{i}.npy", depth)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_cityscapes(root, "train", 8, seed=0)
    write_cityscapes(root, "val", 4, seed=1)
    return root


def test_registry_builds_it(data_root):
    assert isinstance(get_benchmark("cityscapes", data_root), CityscapesBenchmark)


def test_loader_reads_label_7_and_depth(data_root):
    bench = CityscapesBenchmark(data_root)
    splits = bench.splits(bench.protocol, seed=0)
    assert (len(splits.train), splits.val, len(splits.test)) == (8, None, 4)
    sample = splits.test[1]
    assert len(sample) == 3
    image, label, depth = sample
    assert image.shape == (3, HEIGHT, WIDTH) and label.shape == (HEIGHT, WIDTH) and depth.shape == (1, HEIGHT, WIDTH)
    assert torch.equal(label, torch.from_numpy(np.load(data_root / "cityscapes" / "val" / "label_7" / "1.npy")))
    batch = next(iter(bench.loader(splits.train, 4, shuffle=True, generator=torch.Generator().manual_seed(0))))
    assert [t.shape for t in batch] == [(4, 3, HEIGHT, WIDTH), (4, HEIGHT, WIDTH), (4, 1, HEIGHT, WIDTH)]


def test_smoke_step_losses_and_metrics(data_root):
    bench = CityscapesBenchmark(data_root)
    protocol = bench.protocol_for("smoke")
    splits = bench.splits(protocol, seed=0)
    torch.manual_seed(0)
    model = bench.build_model()
    batch = next(iter(bench.loader(splits.train, protocol.batch_size, shuffle=True, generator=torch.Generator())))
    inputs, targets = bench.inputs_targets(batch, "cpu")
    outputs = model(inputs)
    assert [o.shape[1] for o in outputs] == [7, 1]
    losses = bench.losses(outputs, targets)
    assert losses.shape == (2,) and bool(torch.isfinite(losses).all())
    accumulator = bench.metric_accumulator()
    accumulator.update([o.detach() for o in outputs], targets)
    metrics = accumulator.compute()
    assert list(metrics) == ["miou", "pix_acc", "abs_err", "rel_err"]
    assert all(np.isfinite(list(metrics.values())))


def test_class_attributes_are_consistent():
    b = CityscapesBenchmark
    assert len(b.metric_names) == len(b.metric_higher_better) == len(b.metric_task) == len(b.published_stl) == 4
    assert b.published_stl == (0.7401, 0.9316, 0.0125, 27.77)
    assert b.metric_higher_better == (True, True, False, False)
    p = b.protocol
    assert (p.epochs, p.batch_size, p.lr, p.scheduler, p.selection, p.selection_k) == (200, 8, 1e-4, "step", "last_k", 10)


def test_missing_data_names_folder_files_and_source(tmp_path):
    with pytest.raises(DataMissingError, match=r"(?s)cityscapes/train/image.*label_7/\{i\}\.npy.*128×256"):
        CityscapesBenchmark(tmp_path).splits(CityscapesBenchmark.protocol, seed=0)
