"""Multi-MNIST, Multi-Fashion and Multi-(Fashion+MNIST): two overlapping items, two classification tasks.

Construction (Sener & Koltun 2018, as used by Lin et al. 2019, Pareto MTL): two 28×28 items are
pasted on a 36×36 canvas, the *left* item near the top-left corner, the *right* item near the
bottom-right, pixel values summed and clipped to 255:

    canvas[s_l : s_l+28, s_l : s_l+28]       += left item,    s_l ∈ {0, …, 4}
    canvas[4+s_r : 4+s_r+28, 4+s_r : 4+s_r+28] += right item,  s_r ∈ {0, …, 4}

with the shifts drawn as in Sener & Koltun's generator (their ``rand_shift``): with probability ½,
s_l ~ U{0..3}, s_r ~ U{0..4}; otherwise s_l ~ U{0..4}, s_r ~ U{1..4} — so the two items are never at
the same position (s_l = 4, s_r = 0). We keep the 36×36 canvas as the network input, as the Pareto-MTL
pickles do (their LeNet's 9×9 first convolution maps 36 → 28); Sener & Koltun's own loader resizes
the canvas back to 28×28, which we do not. Task 1 = class of the left item, task 2 = the right item.

Sources (real IDX files under ``APT_DATA_DIR``): Multi-MNIST takes both items from ``mnist_10k/``
(10,000 training digits, sorted by class on disk); Multi-Fashion from ``fashion_mnist/`` (official
60k/10k split); Multi-(Fashion+MNIST) puts a digit top-left and a Fashion item bottom-right (which
item goes where is our reading of Pareto MTL; the published pickles are not on this machine).
Train, validation and test pairs are built from DISJOINT item pools: MNIST-10k is shuffled and cut
7,000 / 1,000 / 2,000; Fashion-MNIST uses its test file for test pairs and cuts its training file
50,000 / 10,000 for train / validation pairs.

Everything random (item partition, which items are paired, shifts) comes from the run seed through
separate numpy PCG64 streams, one per (split, quantity): the pairs of a split are a prefix-stable
sequence (the first n pairs are the same whatever the requested size), and a (variant, sizes, seed)
triple gives the same uint8 pairs in every run. Built pair sets are cached in memory.

Model: the MultiLeNet of the Pareto-MTL code (Conv 9×9 1→10, ReLU, max-pool 2; Conv 5×5 10→20, ReLU,
max-pool 2; Linear 500→50, ReLU) with two Linear(50, 10) heads: 31,910 parameters (30,890 shared).
Losses: cross-entropy per task. Metrics: test accuracy per task (higher is better) — the quantity
reported for these benchmarks in the Pareto-MTL line of work; per-task losses are not in the metric
vector, so Δm% is the mean relative accuracy change and is not dominated by the unbounded loss scale.
"""

from __future__ import annotations

from abc import abstractmethod
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from apt.benchmarks.base import Benchmark, MetricAccumulator, MTLModel, Protocol, Splits
from apt.benchmarks.idx import read_idx_images_labels
from apt.data_dir import require_files

ITEM_SIZE = 28
CANVAS_SIZE = 36
MAX_SHIFT = 4
RIGHT_OFFSET = CANVAS_SIZE - ITEM_SIZE - MAX_SHIFT  # = 4: the right item's corner is at 4 + s_r
N_CLASSES = 10
SPLIT_NAMES: tuple[str, ...] = ("train", "val", "test")

# Stream identifiers, so that each random quantity has its own prefix-stable PCG64 stream.
_STREAM_PARTITION_MNIST, _STREAM_PARTITION_FASHION = 0, 1
_STREAM_LEFT, _STREAM_RIGHT, _STREAM_COIN, _STREAM_SHIFT_LEFT, _STREAM_SHIFT_RIGHT = 10, 11, 12, 13, 14

_MNIST_HOW_TO_GET = (
    "MNIST in IDX format (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz) from "
    "http://yann.lecun.com/exdb/mnist/ or any mirror; any number of training digits works (here 10,000)."
)
_FASHION_HOW_TO_GET = (
    "Fashion-MNIST in IDX format from https://github.com/zalandoresearch/fashion-mnist (data/fashion): "
    "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz."
)
MNIST_POOL_FRACTIONS = {"train": 0.7, "val": 0.1, "test": 0.2}
FASHION_VAL_ITEMS = 10_000


def _stream(seed: int, *keys: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, *keys])))


@dataclass(frozen=True)
class ItemPool:
    """Items one side of a pair is drawn from: images [N, 28, 28] uint8 and labels [N] int64 (0..9)."""

    images: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        if self.images.shape[1:] != (ITEM_SIZE, ITEM_SIZE) or len(self.images) != len(self.labels):
            raise ValueError(
                f"item pool needs images [N, {ITEM_SIZE}, {ITEM_SIZE}] and labels [N]; "
                f"got {self.images.shape} and {self.labels.shape}"
            )
        if len(self.images) == 0:
            raise ValueError("item pool is empty")


def sample_shifts(n_pairs: int, seed: int, split_code: int) -> tuple[np.ndarray, np.ndarray]:
    """Shifts (s_l [n], s_r [n]) in 0..4 by Sener & Koltun's rule; never (s_l, s_r) = (4, 0).

    Coin c ~ Bernoulli(½): c = 1 → s_l ~ U{0..3}, s_r ~ U{0..4}; c = 0 → s_l ~ U{0..4}, s_r ~ U{1..4}.
    Drawn as s = floor(u · width) + low from uniforms u, so each stream is prefix-stable in n.
    """
    coin = _stream(seed, split_code, _STREAM_COIN).random(n_pairs) < 0.5
    u_left = _stream(seed, split_code, _STREAM_SHIFT_LEFT).random(n_pairs)
    u_right = _stream(seed, split_code, _STREAM_SHIFT_RIGHT).random(n_pairs)
    left = np.where(coin, np.floor(u_left * MAX_SHIFT), np.floor(u_left * (MAX_SHIFT + 1)))
    right = np.where(coin, np.floor(u_right * (MAX_SHIFT + 1)), 1 + np.floor(u_right * MAX_SHIFT))
    return left.astype(np.int64), right.astype(np.int64)


def compose_canvases(
    left_items: np.ndarray, right_items: np.ndarray, left_shift: np.ndarray, right_shift: np.ndarray
) -> np.ndarray:
    """Canvases [n, 36, 36] uint8 = clip(left item at (s_l, s_l) + right item at (4+s_r, 4+s_r), 0, 255).

    left_items, right_items: [n, 28, 28] uint8; left_shift, right_shift: [n] ints in 0..4.
    """
    n = len(left_items)
    if not (len(right_items) == len(left_shift) == len(right_shift) == n):
        raise ValueError("compose_canvases: items and shifts must have the same length")
    for name, shifts in (("left_shift", left_shift), ("right_shift", right_shift)):
        if n and (shifts.min() < 0 or shifts.max() > MAX_SHIFT):
            raise ValueError(f"{name} values must lie in 0..{MAX_SHIFT}")
    canvas = np.zeros((n, CANVAS_SIZE, CANVAS_SIZE), dtype=np.uint16)
    # One vectorised paste per shift value (5 per side) instead of a Python loop over pairs.
    for shift in range(MAX_SHIFT + 1):
        rows = np.flatnonzero(left_shift == shift)
        canvas[rows, shift : shift + ITEM_SIZE, shift : shift + ITEM_SIZE] += left_items[rows]
        rows = np.flatnonzero(right_shift == shift)
        corner = RIGHT_OFFSET + shift
        canvas[rows, corner : corner + ITEM_SIZE, corner : corner + ITEM_SIZE] += right_items[rows]
    return np.minimum(canvas, 255).astype(np.uint8)


class PairDataset(Dataset):
    """Overlapping-item pairs: (image [1, 36, 36] uint8, left label, right label) per index.

    Images stay uint8 (a quarter of the memory); ``inputs_targets`` turns them into floats in [0, 1].
    """

    def __init__(self, images: Tensor, left_labels: Tensor, right_labels: Tensor) -> None:
        if images.dtype != torch.uint8 or images.shape[1:] != (1, CANVAS_SIZE, CANVAS_SIZE):
            raise ValueError(f"images must be uint8 [N, 1, 36, 36], got {images.dtype} {tuple(images.shape)}")
        if not (len(images) == len(left_labels) == len(right_labels)):
            raise ValueError("images and labels must have the same length")
        self.images, self.left_labels, self.right_labels = images, left_labels, right_labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor, Tensor]:
        return self.images[index], self.left_labels[index], self.right_labels[index]


def build_pairs(left_pool: ItemPool, right_pool: ItemPool, n_pairs: int, seed: int, split_code: int) -> PairDataset:
    """``n_pairs`` pairs, left item i.i.d. uniform from ``left_pool``, right from ``right_pool``.

    Deterministic in (pools, n_pairs, seed, split_code) and prefix-stable in n_pairs.
    """
    if n_pairs < 1:
        raise ValueError(f"n_pairs={n_pairs}: must be >= 1")
    left_index = _stream(seed, split_code, _STREAM_LEFT).integers(0, len(left_pool.labels), n_pairs)
    right_index = _stream(seed, split_code, _STREAM_RIGHT).integers(0, len(right_pool.labels), n_pairs)
    left_shift, right_shift = sample_shifts(n_pairs, seed, split_code)
    canvases = compose_canvases(
        left_pool.images[left_index], right_pool.images[right_index], left_shift, right_shift
    )
    return PairDataset(
        torch.from_numpy(canvases).unsqueeze(1),
        torch.from_numpy(left_pool.labels[left_index].astype(np.int64)),
        torch.from_numpy(right_pool.labels[right_index].astype(np.int64)),
    )


def _partition(n_items: int, seed: int, stream: int, sizes: Sequence[int]) -> list[np.ndarray]:
    """Disjoint index sets of the given sizes from a seeded permutation of range(n_items)."""
    order = _stream(seed, stream).permutation(n_items)
    bounds = np.cumsum([0, *sizes])
    return [np.sort(order[bounds[i] : bounds[i + 1]]) for i in range(len(sizes))]


def mnist_pools(data_dir: Path, seed: int) -> dict[str, ItemPool]:
    """Disjoint train/val/test digit pools (70/10/20 %) from the shuffled ``mnist_10k`` training file."""
    folder = data_dir / "mnist_10k"
    images_path, labels_path = require_files(
        folder,
        ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"],
        what="MNIST digits for Multi-MNIST / Multi-(Fashion+MNIST)",
        how_to_get=_MNIST_HOW_TO_GET,
    )
    images, labels = read_idx_images_labels(images_path, labels_path)
    n = len(labels)
    n_val, n_test = int(n * MNIST_POOL_FRACTIONS["val"]), int(n * MNIST_POOL_FRACTIONS["test"])
    parts = _partition(n, seed, _STREAM_PARTITION_MNIST, [n - n_val - n_test, n_val, n_test])
    return {split: ItemPool(images[idx], labels[idx].astype(np.int64)) for split, idx in zip(SPLIT_NAMES, parts)}


def fashion_pools(data_dir: Path, seed: int) -> dict[str, ItemPool]:
    """Fashion-MNIST pools: test = the official test file; train/val = a seeded 50k/10k cut of the train file."""
    folder = data_dir / "fashion_mnist"
    paths = require_files(
        folder,
        [
            "train-images-idx3-ubyte.gz",
            "train-labels-idx1-ubyte.gz",
            "t10k-images-idx3-ubyte.gz",
            "t10k-labels-idx1-ubyte.gz",
        ],
        what="Fashion-MNIST for Multi-Fashion / Multi-(Fashion+MNIST)",
        how_to_get=_FASHION_HOW_TO_GET,
    )
    train_images, train_labels = read_idx_images_labels(paths[0], paths[1])
    test_images, test_labels = read_idx_images_labels(paths[2], paths[3])
    n = len(train_labels)
    train_idx, val_idx = _partition(n, seed, _STREAM_PARTITION_FASHION, [n - FASHION_VAL_ITEMS, FASHION_VAL_ITEMS])
    return {
        "train": ItemPool(train_images[train_idx], train_labels[train_idx].astype(np.int64)),
        "val": ItemPool(train_images[val_idx], train_labels[val_idx].astype(np.int64)),
        "test": ItemPool(test_images, test_labels.astype(np.int64)),
    }


class MultiLeNetTrunk(nn.Module):
    """z = ReLU(W_fc · flatten(pool(ReLU(conv2(pool(ReLU(conv1(x)))))))): [B, 1, 36, 36] → [B, 50].

    conv1 9×9 (1→10): 36 → 28, pool → 14; conv2 5×5 (10→20): 14 → 10, pool → 5; fc 500 → 50.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=9)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.fc = nn.Linear(20 * 5 * 5, 50)

    def forward(self, x: Tensor) -> Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return F.relu(self.fc(torch.flatten(x, 1)))


class MultiLeNet(MTLModel):
    """The Pareto-MTL MultiLeNet: shared ``MultiLeNetTrunk`` and two Linear(50, 10) heads (logits [B, 10])."""

    def __init__(self, n_tasks: int = 2) -> None:
        super().__init__()
        self.shared = MultiLeNetTrunk()
        self.heads = nn.ModuleList([nn.Linear(50, N_CLASSES) for _ in range(n_tasks)])

    def muon_excluded_names(self) -> set[str]:
        """Heads (base rule) and the first convolution, which maps raw pixels (Keller Jordan's advice)."""
        return super().muon_excluded_names() | {"shared.conv1.weight"}


class AccuracyAccumulator(MetricAccumulator):
    """Per-task accuracy = (# argmax(logits_k) == y_k) / (# samples), accumulated over batches."""

    def __init__(self, metric_names: Sequence[str]) -> None:
        self.metric_names = tuple(metric_names)
        self.correct = torch.zeros(len(self.metric_names), dtype=torch.float64)
        self.count = 0

    def update(self, outputs: Sequence[Tensor], targets: Sequence[Tensor]) -> None:
        if len(outputs) != len(self.metric_names) or len(targets) != len(self.metric_names):
            raise ValueError(
                f"expected {len(self.metric_names)} outputs and targets, got {len(outputs)} and {len(targets)}"
            )
        for task, (logits, labels) in enumerate(zip(outputs, targets, strict=True)):
            self.correct[task] += (logits.argmax(dim=1) == labels).sum().item()
        self.count += len(targets[0])

    def compute(self) -> dict[str, float]:
        if self.count == 0:
            raise ValueError("no batch was added to the accuracy accumulator")
        return {name: float(self.correct[i] / self.count) for i, name in enumerate(self.metric_names)}


# In-memory cache of built splits: (class, data dir, sizes, seed) -> Splits. Small LRU: a seed sweep in
# one process keeps a few sets, not all of them.
_SPLITS_CACHE: OrderedDict[tuple[Any, ...], Splits] = OrderedDict()
_SPLITS_CACHE_SIZE = 6


class _OverlappingItemsBenchmark(Benchmark):
    """Shared machinery of the three Multi-* variants; subclasses choose the left/right item sources."""

    task_names: ClassVar[tuple[str, ...]] = ("left", "right")
    metric_names: ClassVar[tuple[str, ...]] = ("acc_left", "acc_right")
    metric_higher_better: ClassVar[tuple[bool, ...]] = (True, True)
    metric_task: ClassVar[tuple[int, ...]] = (0, 1)
    published_stl = None
    # Our own `full` protocol (no published one): Pareto MTL's pair counts (120k train / 20k test) plus a
    # 10k validation set, Adam 1e-3, batch 256 as in the Pareto-MTL ResNet runs, 30 epochs, and the mean
    # of the last 3 epochs' test metrics (averaging cuts seed noise, TOOLCHAIN.md).
    full_pairs: ClassVar[dict[str, int]] = {"train": 120_000, "val": 10_000, "test": 20_000}
    protocol: ClassVar[Protocol] = Protocol(
        epochs=30, batch_size=256, lr=1e-3, selection="last_k", selection_k=3, seeds=(0, 1, 2)
    )
    profiles: ClassVar[dict[str, dict[str, Any]]] = {
        "full": {},
        "cpu": {"epochs": 10, "n_train": 40_000, "n_val": 2_000, "n_test": 10_000},
        "smoke": {"epochs": 3, "batch_size": 128, "n_train": 512, "n_val": 128, "n_test": 256},
    }
    profile_notes: ClassVar[dict[str, str]] = {
        "full": "Our protocol (no published one): 120k/10k/20k pairs, 30 epochs, Adam 1e-3, batch 256, "
        "mean of the last 3 epochs, 3 seeds. About 5 min per LS run on 2 CPU cores, seconds on a GPU.",
        "cpu": "40k/2k/10k pairs, 10 epochs: 400k training images, ~35-40 s per LS run with Adam on 2 idle "
        "cores at the ~12k img/s of TOOLCHAIN.md (not re-timed: the machine was shared when measured). "
        "Multi-MNIST LS/Adam seed 0 reached test accuracy 0.87 / 0.84 (left / right, mean of the last 3 "
        "epochs) and was still improving: far from saturation, so methods and optimizers can differ; "
        "seed std of Δm ~0.6 points (TOOLCHAIN.md).",
        "smoke": "512/128/256 pairs, 3 epochs, batch 128: a couple of seconds, for tests and CI only.",
    }

    @abstractmethod
    def pools(self, seed: int) -> tuple[dict[str, ItemPool], dict[str, ItemPool]]:
        """(left pools, right pools), each split name -> ItemPool, disjoint across splits."""

    def _n_pairs(self, protocol: Protocol) -> dict[str, int]:
        requested = {"train": protocol.n_train, "val": protocol.n_val, "test": protocol.n_test}
        return {split: n if n is not None else self.full_pairs[split] for split, n in requested.items()}

    def splits(self, protocol: Protocol, seed: int) -> Splits:
        """Train/val/test pair sets of the protocol's sizes (None = ``full_pairs``), built from ``seed``."""
        sizes = self._n_pairs(protocol)
        key = (type(self).__name__, str(self.data_dir), tuple(sizes.values()), seed)
        if key in _SPLITS_CACHE:
            _SPLITS_CACHE.move_to_end(key)
            return _SPLITS_CACHE[key]
        left, right = self.pools(seed)
        built = {
            split: build_pairs(left[split], right[split], sizes[split], seed, split_code)
            for split_code, split in enumerate(SPLIT_NAMES)
        }
        result = Splits(train=built["train"], val=built["val"], test=built["test"])
        _SPLITS_CACHE[key] = result
        while len(_SPLITS_CACHE) > _SPLITS_CACHE_SIZE:
            _SPLITS_CACHE.popitem(last=False)
        return result

    def build_model(self) -> MultiLeNet:
        return MultiLeNet(self.n_tasks)

    def inputs_targets(self, batch: Any, device: torch.device | str) -> tuple[Tensor, list[Tensor]]:
        """(x [B, 1, 36, 36] float in [0, 1], [y_left [B], y_right [B]] int64), on ``device``."""
        images, left, right = batch
        x = images.to(device).float().div_(255.0)
        return x, [left.to(device), right.to(device)]

    def losses(self, outputs: Sequence[Tensor], targets: Sequence[Tensor]) -> Tensor:
        """ℓ_k = mean_i CE(logits_k[i], y_k[i]) for k = left, right: Tensor [2]."""
        if len(outputs) != self.n_tasks or len(targets) != self.n_tasks:
            raise ValueError(f"expected {self.n_tasks} outputs and targets, got {len(outputs)} and {len(targets)}")
        return torch.stack([F.cross_entropy(o, y) for o, y in zip(outputs, targets, strict=True)])

    def metric_accumulator(self) -> AccuracyAccumulator:
        return AccuracyAccumulator(self.metric_names)


class MultiMNISTBenchmark(_OverlappingItemsBenchmark):
    """Multi-MNIST: two digits (top-left, bottom-right), both from ``mnist_10k``."""

    name = "multi_mnist"

    def pools(self, seed: int) -> tuple[dict[str, ItemPool], dict[str, ItemPool]]:
        digits = mnist_pools(self.data_dir, seed)
        return digits, digits


class MultiFashionBenchmark(_OverlappingItemsBenchmark):
    """Multi-Fashion: two Fashion-MNIST items (top-left, bottom-right)."""

    name = "multi_fashion"

    def pools(self, seed: int) -> tuple[dict[str, ItemPool], dict[str, ItemPool]]:
        items = fashion_pools(self.data_dir, seed)
        return items, items


class MultiFashionMNISTBenchmark(_OverlappingItemsBenchmark):
    """Multi-(Fashion+MNIST): a digit top-left (task "left") and a Fashion item bottom-right (task "right")."""

    name = "multi_fashion_mnist"

    def pools(self, seed: int) -> tuple[dict[str, ItemPool], dict[str, ItemPool]]:
        return mnist_pools(self.data_dir, seed), fashion_pools(self.data_dir, seed)
