"""QM9: 11 molecular property regressions with the lineage NNConv–GRU–Set2Set MPNN (BENCHMARKS.md §1).

Data. ``torch_geometric.datasets.QM9`` processes the raw files into 130,831 graphs (11 atom features,
4 one-hot bond types, 3-D positions, 19 targets in PyG units). The raw files come from
``APT_DATA_DIR/qm9/raw`` (gdb9.sdf.gz, gdb9.sdf.csv.gz, uncharacterized.txt; gunzipped into a cache
folder, never into the data folder) or, when that folder is absent, are built from the PyPI package
``qm9pack`` by :mod:`apt.benchmarks.qm9_raw`. PyG never downloads: a missing source is a DataMissingError.
The processed dataset is cached under ``apt.data_dir.cache_dir()/qm9/<key>``, the key being a hash of the
raw files (first processing ≈ 100 s, reload ≈ 2 s). Many processes may prepare one cache at once (sweep
workers): the raw folder appears atomically, and PyG's processing runs under a file lock.

Per molecule (lineage transforms, applied on access):
  y ← (y[:, TARGET_INDEX] − μ) / σ          11 targets, μ, σ ∈ R¹¹ from the training split (``--scale-y``);
  CompleteGraph: every ordered pair (i, j), i ≠ j, with the bond one-hot (zeros where no bond);
  Distance(norm=False): edge_attr ← [bond one-hot (4), ‖pos_j − pos_i‖ (Å)]  → [E, 5], E = n(n − 1).

Split (lineage): a seeded permutation of all graphs; test = first 10,000, val = next 10,000, train = rest.
Profiles take the first n_* graphs of each part of that split. Metric: MAE per target on de-standardized
values, ×1000 for the 7 energies in eV (→ meV), compared with the full-precision STL BASE of the lineage.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from filelock import FileLock
from torch import Tensor, nn

from apt.benchmarks.base import Benchmark, MetricAccumulator, MTLModel, Protocol, Splits
from apt.benchmarks.qm9_raw import (N_GDB9_RECORDS, QM9PACK_HOW_TO_GET, RAW_FILE_NAMES, read_qm9pack,
                                    read_uncharacterized_indices, write_raw_from_qm9pack)
from apt.data_dir import DataMissingError, cache_dir

# PyG target columns of the lineage, in task order (index 4, the HOMO-LUMO gap, is left out).
TARGET_INDEX: tuple[int, ...] = (0, 1, 2, 3, 5, 6, 12, 13, 14, 15, 11)
TARGET_NAMES: tuple[str, ...] = ("mu", "alpha", "homo", "lumo", "r2", "zpve", "u0", "u", "h", "g", "cv")
# Task positions whose PyG unit is eV; their MAE is reported in meV (lineage ``multiply_indx``).
MEV_TASKS: tuple[int, ...] = (2, 3, 5, 6, 7, 8, 9)
N_NODE_FEATURES = 11
N_BOND_TYPES = 4
HIDDEN_DIM = 64
MESSAGE_PASSING_STEPS = 3
SET2SET_STEPS = 3
HELD_OUT_PER_SPLIT = 10_000

_RAW_SOURCE_FILES: tuple[str, ...] = ("gdb9.sdf.gz", "gdb9.sdf.csv.gz", "uncharacterized.txt")
_HOW_TO_GET = (
    "Put the QM9 raw files there (gdb9.sdf.gz and gdb9.sdf.csv.gz from MoleculeNet's qm9.zip, gzipped, and "
    "uncharacterized.txt from https://ndownloader.figshare.com/files/3195404), or install the PyPI package "
    f"qm9pack so that apt builds them offline. {QM9PACK_HOW_TO_GET}"
)


def _import_torch_geometric() -> None:
    """Import torch_geometric once, silencing the DeprecationWarnings that torch.jit raises while it loads.

    torch 2.13 deprecates ``torch.jit.script``, which torch_geometric 2.8.1 calls at import time; the
    warnings are attributed to torch.jit, so a ``-W error`` test run would fail on a third-party import.
    """
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import torch_geometric  # noqa: F401


# ----------------------------------------------------------------------------------------------------------
# Transforms
# ----------------------------------------------------------------------------------------------------------
class StandardizedTargets:
    """y ← (y[:, TARGET_INDEX] − mean) / std.   y: [1, 19] → [1, 11]; mean, std: [11]."""

    def __init__(self, mean: Tensor, std: Tensor) -> None:
        if mean.shape != (len(TARGET_INDEX),) or std.shape != (len(TARGET_INDEX),):
            raise ValueError(f"mean and std must have shape [{len(TARGET_INDEX)}], got {tuple(mean.shape)}, {tuple(std.shape)}")
        if not bool(torch.isfinite(std).all() and (std > 0).all()):
            raise ValueError(f"target std must be finite and > 0 per target, got {std.tolist()}")
        self.mean = mean
        self.std = std

    def __call__(self, data: Any) -> Any:
        data.y = (data.y[:, list(TARGET_INDEX)] - self.mean) / self.std
        return data


class CompleteGraph:
    """Fully connect a molecule: edges (i, j) for all i ≠ j, row-major, keeping the bond attributes.

    edge_index: [2, E_bond] → [2, n(n − 1)];  edge_attr: [E_bond, 4] → [n(n − 1), 4], zero rows where (i, j)
    is not a bond. (``T.Complete`` of the lineage; absent from torch_geometric 2.8.1.)
    """

    def __call__(self, data: Any) -> Any:
        n = data.num_nodes
        source = torch.arange(n).repeat_interleave(n)
        target = torch.arange(n).repeat(n)
        not_loop = source != target
        if data.edge_attr is not None:
            attr = data.edge_attr.new_zeros((n * n, *data.edge_attr.shape[1:]))
            attr[data.edge_index[0] * n + data.edge_index[1]] = data.edge_attr
            data.edge_attr = attr[not_loop]
        data.edge_index = torch.stack([source[not_loop], target[not_loop]])
        return data


# ----------------------------------------------------------------------------------------------------------
# Data preparation
# ----------------------------------------------------------------------------------------------------------
def _file_digest(paths: Iterable[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode())
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]


def _write_head_of_raw(source: dict[str, Path], raw_dir: Path, max_records: int | None) -> None:
    """Gunzip the raw files into ``raw_dir``, keeping only the first ``max_records`` records (all if None).

    A record is one ``$$$$``-terminated mol block of gdb9.sdf and its row of gdb9.sdf.csv; PyG matches
    them by position, so the two are cut at the same record.
    """
    tmp_dir = Path(tempfile.mkdtemp(dir=raw_dir.parent, prefix=".raw-"))
    try:
        with gzip.open(source["gdb9.sdf.gz"], "rt") as src, open(tmp_dir / "gdb9.sdf", "w") as dst:
            records = 0
            for line in src:
                if max_records is not None and records >= max_records:
                    break
                dst.write(line)
                records += line.startswith("$$$$")
        with gzip.open(source["gdb9.sdf.csv.gz"], "rt") as src, open(tmp_dir / "gdb9.sdf.csv", "w") as dst:
            for row, line in enumerate(src):
                if max_records is not None and row > max_records:  # row 0 is the header
                    break
                dst.write(line)
        shutil.copyfile(source["uncharacterized.txt"], tmp_dir / "uncharacterized.txt")
        try:
            os.replace(tmp_dir, raw_dir)
        except OSError:
            if not raw_dir.is_dir():  # else another process finished the same folder first
                raise
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def _raw_source(data_dir: Path) -> dict[str, Path]:
    """file name -> where it would be under ``data_dir/qm9/raw`` (gdb9.sdf.gz, gdb9.sdf.csv.gz, uncharacterized.txt)."""
    return {name: Path(data_dir) / "qm9" / "raw" / name for name in _RAW_SOURCE_FILES}


def _has_every_file(source: dict[str, Path]) -> bool:
    return all(path.is_file() for path in source.values())


def prepare_qm9_root(data_dir: Path, cache: Path | None = None, max_records: int | None = None) -> Path:
    """A PyG root folder whose ``raw/`` holds gdb9.sdf, gdb9.sdf.csv and uncharacterized.txt.

    Source: ``data_dir/qm9/raw`` when its three files exist (the root is keyed by their hash), else the
    qm9pack package (keyed by its version). ``max_records`` keeps the first records only (a real QM9
    subset that processes in seconds: tests, demos). Nothing is written under ``data_dir``.
    """
    if max_records is not None and not 1 <= max_records <= N_GDB9_RECORDS:
        raise ValueError(f"max_records={max_records}: must be None (all) or in [1, {N_GDB9_RECORDS}]")
    suffix = "" if max_records is None else f"-head{max_records}"
    cache_root = (cache if cache is not None else cache_dir()) / "qm9"
    source = _raw_source(data_dir)
    if _has_every_file(source):
        root = cache_root / f"raw-{_file_digest(source.values())}{suffix}"
        if not (root / "raw").is_dir():
            root.mkdir(parents=True, exist_ok=True)
            _write_head_of_raw(source, root / "raw", max_records)
        return root
    from importlib.metadata import PackageNotFoundError, version

    try:
        qm9pack_version = version("qm9pack")
    except PackageNotFoundError:
        missing = ", ".join(str(p) for p in source.values() if not p.is_file())
        raise DataMissingError(f"QM9: missing raw file(s) {missing} and qm9pack is not installed.\n{_HOW_TO_GET}") from None
    root = cache_root / f"qm9pack-{qm9pack_version}{suffix}"
    if not (root / "raw").is_dir():
        root.mkdir(parents=True, exist_ok=True)
        write_raw_from_qm9pack(root / "raw", max_records or N_GDB9_RECORDS)
    return root


def processing_lock(root: str | Path) -> FileLock:
    """The inter-process lock held while PyG processes (or loads) the QM9 at ``root``: ``root/.processing.lock``.

    PyG writes its processed files in place, not atomically, and processes whenever they are missing:
    without the lock, sweep workers starting together on one cache would all process (minutes each) and
    one could load a file another is still writing. With it, the first processes and the others wait,
    then load its files.
    """
    return FileLock(Path(root) / ".processing.lock")


@functools.lru_cache(maxsize=2)
def load_qm9(root: str) -> Any:
    """The processed ``torch_geometric.datasets.QM9`` at ``root`` (processed on first use; never downloads)."""
    _import_torch_geometric()
    from torch_geometric.datasets import QM9

    class OfflineQM9(QM9):
        def download(self) -> None:
            raise DataMissingError(
                f"QM9 raw files missing in {self.raw_dir}: expected {', '.join(RAW_FILE_NAMES)}.\n{_HOW_TO_GET}"
            )

    with processing_lock(root):
        return OfflineQM9(root)


# ----------------------------------------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------------------------------------
def _edge_conditioned_conv_class() -> type:
    _import_torch_geometric()
    from torch_geometric.nn import NNConv

    class EdgeConditionedConv(NNConv):
        """PyG ``NNConv`` (Gilmer et al. 2017's edge network) that also accepts precomputed edge matrices.

        h_i' = W_root h_i + b + mean_{j→i} h_j W(e_ji),   W(e) = reshape(nn(e), [in, out]).
        ``edge_attr`` [E, 5] computes W(e) as NNConv does; a 3-D ``edge_attr`` [E, in, out] is taken as
        W(e) itself, so that a forward that applies the same convolution several times computes the
        edge network once (identical outputs; the edge network dominates the cost).
        """

        def edge_matrices(self, edge_attr: Tensor) -> Tensor:
            """W(e) for every edge: [E, 5] → [E, in, out]."""
            return self.nn(edge_attr).view(-1, self.in_channels_l, self.out_channels)

        def message(self, x_j: Tensor, edge_attr: Tensor) -> Tensor:
            weight = edge_attr if edge_attr.dim() == 3 else self.edge_matrices(edge_attr)
            return torch.matmul(x_j.unsqueeze(1), weight).squeeze(1)

    return EdgeConditionedConv


class QM9Trunk(nn.Module):
    """The shared MPNN f(G) ∈ R⁶⁴ of the lineage (Gilmer et al. 2017, PyG's QM9 NNConv example).

    h⁰ = ReLU(W₀ x)                                  x: [n, 11] → [n, 64]   (``input_embedding``)
    for t = 1…3 (one conv and one GRU, weights shared over t):
        m = ReLU(NNConv(hᵗ⁻¹; edge net 5→128→ReLU→64·64, aggr mean));  hᵗ = GRU(m, hᵗ⁻¹)
    z = ReLU(W₁ Set2Set(hᵀ, 3 steps))                 [G, 128] → [G, 64]     (``readout``)
    """

    def __init__(self) -> None:
        super().__init__()
        _import_torch_geometric()
        from torch_geometric.nn import Set2Set

        edge_network = nn.Sequential(nn.Linear(N_BOND_TYPES + 1, 128), nn.ReLU(), nn.Linear(128, HIDDEN_DIM * HIDDEN_DIM))
        self.input_embedding = nn.Linear(N_NODE_FEATURES, HIDDEN_DIM)
        self.conv = _edge_conditioned_conv_class()(HIDDEN_DIM, HIDDEN_DIM, edge_network, aggr="mean")
        self.gru = nn.GRU(HIDDEN_DIM, HIDDEN_DIM)
        self.set2set = Set2Set(HIDDEN_DIM, processing_steps=SET2SET_STEPS)
        self.readout = nn.Linear(2 * HIDDEN_DIM, HIDDEN_DIM)

    def forward(self, data: Any) -> Tensor:
        node = F.relu(self.input_embedding(data.x))
        hidden = node.unsqueeze(0)
        edge_matrices = self.conv.edge_matrices(data.edge_attr)
        for _ in range(MESSAGE_PASSING_STEPS):
            message = F.relu(self.conv(node, data.edge_index, edge_matrices))
            node, hidden = self.gru(message.unsqueeze(0), hidden)
            node = node.squeeze(0)
        return F.relu(self.readout(self.set2set(node, data.batch)))


class QM9MPNN(MTLModel):
    """Shared ``QM9Trunk`` (graph embedding z: [G, 64]) and 11 heads Linear(64, 1); outputs 11 × [G, 1]."""

    def __init__(self) -> None:
        super().__init__()
        self.shared = QM9Trunk()
        self.heads = nn.ModuleList(nn.Linear(HIDDEN_DIM, 1) for _ in TARGET_INDEX)

    def muon_excluded_names(self) -> set[str]:
        """Heads and the two input layers (Keller Jordan's rule: first layers to AdamW): the node embedding
        Linear(11, 64) and the edge network's first Linear(5, 128), which reads the raw bond features."""
        return super().muon_excluded_names() | {"shared.input_embedding.weight", "shared.conv.nn.0.weight"}


# ----------------------------------------------------------------------------------------------------------
# Metrics
# ----------------------------------------------------------------------------------------------------------
class QM9MetricAccumulator(MetricAccumulator):
    """MAE_k = (1/N) Σ_i |ŷ_ik − y_ik| · σ_k on de-standardized values, ×1000 for ``MEV_TASKS`` (eV → meV).

    outputs: 11 tensors [B, 1] (standardized predictions); targets: [B, 11] (standardized); σ: [11].
    """

    def __init__(self, target_std: Tensor) -> None:
        self.target_std = target_std.double()
        self.absolute_error_sum = torch.zeros(len(TARGET_INDEX), dtype=torch.float64)
        self.count = 0

    def update(self, outputs: Sequence[Tensor], targets: Tensor) -> None:
        predictions = _stack_outputs(outputs, targets)
        error = (predictions.detach().double() - targets.detach().double()).abs().cpu()
        self.absolute_error_sum += (error * self.target_std).sum(0)
        self.count += targets.shape[0]

    def compute(self) -> dict[str, float]:
        if self.count == 0:
            raise ValueError("QM9 metrics: no batch was added before compute()")
        mae = self.absolute_error_sum / self.count
        mae[list(MEV_TASKS)] *= 1000.0
        return {name: float(value) for name, value in zip(TARGET_NAMES, mae)}


def _stack_outputs(outputs: Sequence[Tensor], targets: Tensor) -> Tensor:
    """[B, 11] from 11 outputs [B, 1]; ValueError on a wrong count or shape."""
    if len(outputs) != len(TARGET_INDEX):
        raise ValueError(f"QM9 expects {len(TARGET_INDEX)} outputs (one per target), got {len(outputs)}")
    predictions = torch.cat([o.reshape(-1, 1) for o in outputs], dim=1)
    if predictions.shape != targets.shape:
        raise ValueError(f"QM9 predictions {tuple(predictions.shape)} do not match targets {tuple(targets.shape)}")
    return predictions


# ----------------------------------------------------------------------------------------------------------
# Benchmark
# ----------------------------------------------------------------------------------------------------------
class QM9Benchmark(Benchmark):
    """QM9, 11 tasks, lineage protocol: Adam 1e-3, 300 epochs, batch 120, plateau decay on val Δm,
    test metrics at the epoch of best validation Δm.

    ``max_records`` (keyword, optional) builds the dataset from the first records of the raw files only:
    a real QM9 subset that processes in seconds, for tests. Then each held-out part has
    min(10,000, N // 13) graphs (10,000 for the full 130,831).

    State: ``splits()`` sets ``target_mean`` / ``target_std`` (train statistics) that the metric
    accumulator uses; call it before ``metric_accumulator()``.
    """

    name = "qm9"
    task_names = TARGET_NAMES
    metric_names = TARGET_NAMES
    metric_higher_better = (False,) * len(TARGET_NAMES)
    metric_task = tuple(range(len(TARGET_NAMES)))
    protocol = Protocol(
        epochs=300,
        batch_size=120,
        lr=1e-3,
        scheduler="plateau",
        scheduler_kwargs={"factor": 0.7, "patience": 5, "min_lr": 1e-5},
        selection="best_val_delta_m",
    )
    profiles = {
        "full": {},
        "cpu": {"n_train": 2000, "n_val": 500, "n_test": 1000, "epochs": 4},
        "smoke": {"n_train": 48, "n_val": 24, "n_test": 24, "epochs": 1, "batch_size": 24},
    }
    profile_notes = {
        "full": "The published protocol (Nash-MTL/FAMO/FairGrad): 110,831 / 10,000 / 10,000 graphs, 300 epochs.",
        "cpu": (
            "2,000 / 500 / 1,000 graphs of the seeded lineage split, 4 epochs of batch 120: the MPNN learns "
            "but is far from converged (the learning curves below), and the plateau schedule (patience 5 "
            "epochs) never fires."
        ),
        "smoke": "48 / 24 / 24 graphs, 1 epoch, batch 24: seconds; exercises every code path.",
    }
    published_stl = (0.0671, 0.1814, 60.576, 53.915, 0.5027, 4.539, 58.838, 64.244, 63.852, 66.223, 0.07212)

    def __init__(self, data_dir: str | Path | None = None, *, max_records: int | None = None) -> None:
        super().__init__(data_dir)
        self.max_records = max_records
        self.target_mean: Tensor | None = None
        self.target_std: Tensor | None = None

    def dataset(self) -> Any:
        """The processed QM9 (all graphs, raw 19 targets, no transform); cached per process."""
        return load_qm9(str(prepare_qm9_root(self.data_dir, max_records=self.max_records)))

    def split_indices(self, n_graphs: int, seed: int) -> tuple[Tensor, Tensor, Tensor]:
        """(train, val, test) graph indices: a permutation seeded by ``seed``; test first, then val."""
        held_out = min(HELD_OUT_PER_SPLIT, n_graphs // 13)
        if held_out < 1:
            raise ValueError(f"QM9 with {n_graphs} graphs is too small to split (need ≥ 13)")
        permutation = torch.randperm(n_graphs, generator=torch.Generator().manual_seed(seed))
        return permutation[2 * held_out :], permutation[held_out : 2 * held_out], permutation[:held_out]

    def full_split_sizes(self) -> tuple[int, int, int]:
        """(train, val, test) sizes of the split of every molecule PyG keeps, as ``split_indices`` makes it.

        n = N − |uncharacterized indices ≤ N| (N = 133,885 GDB-9 records, or ``max_records``); h = min(10,000,
        ⌊n/13⌋) molecules each for test and val, n − 2h for training. Counted from the source ``prepare_qm9_root``
        would use (the raw files' list, else qm9pack's table) without building or processing anything.
        """
        n_records = self.max_records or N_GDB9_RECORDS
        source = _raw_source(self.data_dir)
        if _has_every_file(source):
            skipped = [i for i in read_uncharacterized_indices(source["uncharacterized.txt"]) if i <= n_records]
            n_characterized = n_records - len(skipped)
        else:
            n_characterized = len(read_qm9pack(n_records))  # qm9pack lists characterized molecules only
        train, val, test = self.split_indices(n_characterized, 0)
        return len(train), len(val), len(test)

    def splits(self, protocol: Protocol, seed: int) -> Splits:
        _import_torch_geometric()
        from torch_geometric import transforms as T

        full = self.dataset()
        train, val, test = self.split_indices(len(full), seed)
        train, val, test = (
            part[:size] if size is not None else part
            for part, size in ((train, protocol.n_train), (val, protocol.n_val), (test, protocol.n_test))
        )
        train_targets = full._data.y[train][:, list(TARGET_INDEX)]
        self.target_mean, self.target_std = train_targets.mean(0), train_targets.std(0)
        transform = T.Compose(
            [StandardizedTargets(self.target_mean, self.target_std), CompleteGraph(), T.Distance(norm=False)]
        )
        datasets = []
        for indices in (train, val, test):
            subset = full.index_select(indices)
            subset.transform = transform
            datasets.append(subset)
        return Splits(train=datasets[0], val=datasets[1], test=datasets[2])

    def loader(self, dataset: Any, batch_size: int, *, shuffle: bool, generator: torch.Generator | None) -> Iterable:
        _import_torch_geometric()
        from torch_geometric.loader import DataLoader

        return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator, num_workers=0)

    def build_model(self) -> QM9MPNN:
        return QM9MPNN()

    def inputs_targets(self, batch: Any, device: torch.device | str) -> tuple[Any, Tensor]:
        batch = batch.to(device)
        return batch, batch.y

    def losses(self, outputs: Sequence[Tensor], targets: Tensor) -> Tensor:
        """ℓ_k = mean_i (ŷ_ik − y_ik)² on standardized targets → [11]."""
        return ((_stack_outputs(outputs, targets) - targets) ** 2).mean(0)

    def metric_accumulator(self) -> QM9MetricAccumulator:
        if self.target_std is None:
            raise RuntimeError("QM9: call splits() first; the metrics de-standardize with the training std")
        return QM9MetricAccumulator(self.target_std)
