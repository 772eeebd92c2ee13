"""Running one experiment: the only place where a benchmark, an MTL method and an optimizer meet.

``run(config)`` trains the benchmark's model with the method and optimizer of ``config`` under the
profile's protocol, evaluates every epoch, picks the reported test metrics by the protocol's selection
rule, and writes one record (DESIGN.md §5). It checkpoints atomically after every epoch and resumes from
the last checkpoint when restarted; a config whose record exists is read, not trained again. A run whose loss
or gradient turns NaN/inf writes a divergence note (``apt.store.divergence_path``) instead and raises; it is
not retrained until the note is deleted.

One training step (DESIGN.md §2):
    losses ℓ [K] = benchmark.losses(model(x), y)
    mtl_backward(ℓ, θ_shared, method)      -> instant aggregated gradient g_t in .grad (heads: own task)
    optimizer.step()                       -> Δθ_t (Adam / Muon / APT ...)
    method.after_step(ℓ(θ_{t+1}))          (FAMO only: the losses after the step, same batch)
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm import tqdm

import apt
from apt.benchmarks import Benchmark, get_benchmark
from apt.benchmarks.base import Protocol
from apt.checkpoint import load_checkpoint, save_checkpoint
from apt.config import Config, validate
from apt.data_dir import REPO_ROOT
from apt.errors import NonFiniteError
from apt.metrics import delta_m
from apt.mtl import Method, make_method, mtl_backward
from apt.optim import make_optimizer
from apt.optim.diagnostics import task_alignment
from apt.store import RECORD_SCHEMA, divergence_path, read_divergence, read_record, write_divergence, write_record


def default_results_dir(profile: str) -> Path:
    """``$APT_RESULTS_DIR/<profile>``, else ``<repo>/results/<profile>``."""
    root = Path(os.environ.get("APT_RESULTS_DIR", REPO_ROOT / "results"))
    return root / profile


def default_checkpoint_dir(profile: str) -> Path:
    """``$APT_RUNS_DIR/<profile>``, else ``<repo>/runs/<profile>`` (git-ignored)."""
    root = Path(os.environ.get("APT_RUNS_DIR", REPO_ROOT / "runs"))
    return root / profile


def record_path(config: Config, results_dir: Path | None = None) -> Path:
    """Where the record of ``config`` lives."""
    results_dir = Path(results_dir) if results_dir is not None else default_results_dir(config.profile)
    return results_dir / config.benchmark / f"{config.run_id}.json"


def run(
    config: Config,
    *,
    results_dir: str | Path | None = None,
    checkpoint_dir: str | Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train and evaluate ``config`` (or read its existing record); returns the record."""
    validate(config)
    path = record_path(config, results_dir)
    if path.exists():
        return read_record(path)
    diverged = divergence_path(path)
    if diverged.exists():
        raise NonFiniteError(f"run {config.run_id} diverged before: {read_divergence(diverged)['error']} "
                             f"(note {diverged}; delete it to train the run again)")
    checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else default_checkpoint_dir(config.profile)
    checkpoint = checkpoint_dir / config.benchmark / f"{config.run_id}.pt"
    training = _Training(config, checkpoint, progress)
    try:
        record = training.run()
    except NonFiniteError as error:
        # A diverged run is an outcome (e.g. of a learning-rate scan), not a crash to retry: note it, then raise.
        write_divergence(diverged, training.divergence_note(error))
        checkpoint.unlink(missing_ok=True)
        raise
    write_record(path, record)
    checkpoint.unlink(missing_ok=True)
    return read_record(path)  # the stored form (JSON types), identical to what a later call reads


@dataclass
class _EpochLog:
    epoch: int
    lr: float
    train_losses: list[float]
    val_metrics: dict[str, float] | None
    test_metrics: dict[str, float]
    val_delta_m: float | None
    solver_failures: int
    seconds: float


@dataclass
class _Training:
    """The state of one run in progress (model, optimizer, method, RNGs, history) and its loop."""

    config: Config
    checkpoint_path: Path
    progress: bool
    history: list[dict[str, Any]] = field(default_factory=list)
    diagnostics: dict[str, list] = field(default_factory=dict)
    resumed_at_epochs: list[int] = field(default_factory=list)
    global_step: int = 0
    wall_seconds: float = 0.0

    def __post_init__(self) -> None:
        config = self.config
        self.device = torch.device(config.device)
        self.bench: Benchmark = get_benchmark(config.benchmark, config.data_dir)
        self.protocol: Protocol = self.bench.protocol_for(config.profile).with_overrides(config.protocol_overrides)
        self.trained_tasks = [config.stl_task] if config.stl_task is not None else list(range(self.bench.n_tasks))
        self.splits = self.bench.splits(self.protocol, config.seed)

        torch.manual_seed(config.seed)
        self.model = self.bench.build_model().to(self.device)
        self.shared_params = self.model.shared_parameters()
        task_params = self.model.task_parameters()
        self.task_params = [task_params[k] for k in self.trained_tasks]
        self.task_names = [self.bench.task_names[k] for k in self.trained_tasks]

        self.method_generator = torch.Generator().manual_seed(10_007 * config.seed + 1)
        self.method: Method = make_method(
            config.method, len(self.trained_tasks), generator=self.method_generator, **dict(config.method_hp)
        )
        method_params = self.method.parameters()
        self.method_optimizer = (
            torch.optim.Adam(method_params, lr=self.protocol.method_params_lr) if method_params else None
        )
        self.optimizer = make_optimizer(
            config.optimizer,
            self.model.named_parameters(),
            lr=config.lr if config.lr is not None else self.protocol.lr,
            muon_excluded=self.model.muon_excluded_names(),
            weight_decay=self.protocol.weight_decay,
            diagnostics=config.diagnostics,
            **dict(config.optimizer_hp),
        )
        self.scheduler = _make_scheduler(self.protocol, self.optimizer)
        self.batch_generator = torch.Generator().manual_seed(config.seed)
        self.start_epoch = 0
        if self.checkpoint_path.exists():
            self._restore(load_checkpoint(self.checkpoint_path, config.config_hash))

    # -- the loop -------------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        epochs = range(self.start_epoch, self.protocol.epochs)
        bar = tqdm(epochs, desc=self.config.run_id, disable=not self.progress, initial=self.start_epoch,
                   total=self.protocol.epochs, file=sys.stderr)
        for epoch in bar:
            started = time.perf_counter()
            train_losses, solver_failures = self._train_epoch(epoch)
            val = self._evaluate(self.splits.val) if self.splits.val is not None else None
            test = self._evaluate(self.splits.test)
            val_delta = self._selection_delta_m(val) if val is not None else None
            self._step_scheduler(val_delta)
            self.method.end_epoch(torch.tensor(train_losses))
            seconds = time.perf_counter() - started
            self.wall_seconds += seconds
            self.history.append(
                _EpochLog(epoch, self.optimizer.param_groups[0]["lr"], train_losses, val, test, val_delta,
                          solver_failures, seconds).__dict__
            )
            bar.set_postfix(loss=f"{sum(train_losses):.4g}")
            save_checkpoint(self.checkpoint_path, self._state())
        return self._record()

    def _train_epoch(self, epoch: int) -> tuple[list[float], int]:
        """One pass over the training set: (mean loss of each trained task, failed solves of the method)."""
        self.model.train()
        loader = self.bench.loader(
            self.splits.train, self.protocol.batch_size, shuffle=True, generator=self.batch_generator
        )
        totals = torch.zeros(len(self.trained_tasks), dtype=torch.float64)
        batches = solver_failures = 0
        for batch in tqdm(loader, desc=f"epoch {epoch}", leave=False, disable=not self.progress, file=sys.stderr):
            inputs, targets = self.bench.inputs_targets(batch, self.device)
            losses, info = self._train_step(inputs, targets)
            totals += losses.detach().double().cpu()
            solver_failures += info.solver_failures
            batches += 1
        return (totals / max(batches, 1)).tolist(), solver_failures

    def _train_step(self, inputs: Any, targets: Any) -> tuple[Tensor, Any]:
        config = self.config
        self.optimizer.zero_grad(set_to_none=True)
        if self.method_optimizer is not None:
            self.method_optimizer.zero_grad(set_to_none=True)
        record_diagnostics = config.diagnostics and self.global_step % config.diagnostics_every == 0
        if config.rep_grad:
            features = self.model.shared_forward(inputs)
            outputs = self.model.heads_forward(features)
        else:
            features, outputs = None, self.model(inputs)
        losses = self.bench.losses(outputs, targets)[self.trained_tasks]
        info = mtl_backward(
            losses,
            self.shared_params,
            self.method,
            task_params=self.task_params,
            features=features,
            step=self.global_step,
            task_names=self.task_names,
            keep_jacobian=record_diagnostics and self.config.diagnostics_alignment,
        )
        self.optimizer.step()
        if self.method_optimizer is not None:
            self.method_optimizer.step()
        if self.method.requires_after_step:
            with torch.no_grad():
                new_losses = self.bench.losses(self.model(inputs), targets)[self.trained_tasks]
            self.method.after_step(new_losses)
        if record_diagnostics:
            self._log_diagnostics(info)
        self.global_step += 1
        return losses, info

    def _log_diagnostics(self, info: Any) -> None:
        row: dict[str, Any] = {"step": self.global_step, **self.optimizer.step_diagnostics}
        info_dict = info.as_dict()
        for key in ("weights", "task_cosines"):
            if info_dict.get(key) is not None:
                row[f"mtl_{key}"] = info_dict[key]
        if info.jacobian is not None:
            update = self.optimizer.last_update(self.shared_params)
            alignment = task_alignment(update, info.jacobian)
            row["task_alignment"] = alignment.tolist()
            row["task_alignment_std"] = float(alignment.std(unbiased=False))
        for key, value in row.items():
            self.diagnostics.setdefault(key, []).append(value)

    # -- evaluation and selection ---------------------------------------------------------------------
    def _evaluate(self, dataset: Any) -> dict[str, float]:
        return self.bench.evaluate(self.model, dataset, self.protocol.batch_size, self.device)

    def _trained_metric_indices(self) -> list[int]:
        return [i for i, task in enumerate(self.bench.metric_task) if task in self.trained_tasks]

    def _selection_delta_m(self, metrics: dict[str, float]) -> float | None:
        """Δm% of validation metrics against the published STL BASE (the lineage's selection criterion),
        over the metrics of the trained tasks; None where the benchmark has no published BASE."""
        base = self.bench.published_stl
        if base is None:
            return None
        idx = self._trained_metric_indices()
        names = self.bench.metric_names
        return delta_m(
            [metrics[names[i]] for i in idx], [base[i] for i in idx], [self.bench.metric_higher_better[i] for i in idx]
        )

    def _step_scheduler(self, val_delta: float | None) -> None:
        if self.scheduler is None:
            return
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            if val_delta is None:
                raise ValueError(
                    f"benchmark {self.bench.name!r}: the plateau scheduler needs a validation split and a published BASE"
                )
            self.scheduler.step(val_delta)
        else:
            self.scheduler.step()

    def _select(self) -> dict[str, Any]:
        """The reported test metrics, by the protocol's selection rule (BENCHMARKS.md §1)."""
        rule, names = self.protocol.selection, self.bench.metric_names
        if rule == "last_k":
            chosen = self.history[-self.protocol.selection_k :]
            test = {n: sum(e["test_metrics"][n] for e in chosen) / len(chosen) for n in names}
            return {"rule": rule, "epochs": [e["epoch"] for e in chosen], "test_metrics": test}
        if rule == "best_val_delta_m":
            if any(e["val_delta_m"] is None for e in self.history):
                raise ValueError(f"benchmark {self.bench.name!r}: selection best_val_delta_m needs val metrics and BASE")
            best = min(self.history, key=lambda e: e["val_delta_m"])
        elif rule == "best_val_mean":
            idx = self._trained_metric_indices()
            best = max(self.history, key=lambda e: sum(e["val_metrics"][names[i]] for i in idx) / len(idx))
        else:  # Protocol validates the rule; this guards against a new rule added there but not here
            raise ValueError(f"unknown selection rule {rule!r}")
        return {"rule": rule, "epochs": [best["epoch"]], "test_metrics": dict(best["test_metrics"])}

    # -- checkpoint and record ------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return {
            "config_hash": self.config.config_hash,
            "epoch": len(self.history),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "method": self.method.state_dict(),
            "method_optimizer": self.method_optimizer.state_dict() if self.method_optimizer else None,
            "scheduler": self.scheduler.state_dict() if self.scheduler else None,
            "batch_generator": self.batch_generator.get_state(),
            "method_generator": self.method_generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "history": self.history,
            "diagnostics": self.diagnostics,
            "global_step": self.global_step,
            "wall_seconds": self.wall_seconds,
            "resumed_at_epochs": self.resumed_at_epochs,
        }

    def _restore(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.method.load_state_dict(state["method"])
        if self.method_optimizer is not None:
            self.method_optimizer.load_state_dict(state["method_optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.batch_generator.set_state(state["batch_generator"])
        self.method_generator.set_state(state["method_generator"])
        torch.set_rng_state(state["torch_rng"])
        self.history = state["history"]
        self.diagnostics = state["diagnostics"]
        self.global_step = state["global_step"]
        self.wall_seconds = state["wall_seconds"]
        self.start_epoch = state["epoch"]
        self.resumed_at_epochs = [*state["resumed_at_epochs"], self.start_epoch]

    def divergence_note(self, error: NonFiniteError) -> dict[str, Any]:
        """What a diverged run leaves instead of a record: the error (task or parameter and step), the epochs
        it completed and the provenance."""
        return {
            **self._identity("diverged"),
            "error": str(error),
            "step": self.global_step,
            "epochs": self.history,
            "environment": environment(self.device),
            "wall_seconds": self.wall_seconds,
        }

    def _identity(self, status: str) -> dict[str, Any]:
        """The fields that say which run a record or divergence note belongs to, and its status."""
        config = self.config
        return {"schema": RECORD_SCHEMA, "run_id": config.run_id, "config": config.to_dict(),
                "config_hash": config.config_hash, "status": status}

    def _record(self) -> dict[str, Any]:
        return {
            **self._identity("complete"),
            "protocol": {k: (dict(v) if isinstance(v, dict) else v) for k, v in self.protocol.__dict__.items()},
            "benchmark": {
                "task_names": list(self.bench.task_names),
                "metric_names": list(self.bench.metric_names),
                "metric_higher_better": list(self.bench.metric_higher_better),
                "metric_task": list(self.bench.metric_task),
                "trained_tasks": self.trained_tasks,
                "sizes": {k: len(v) for k, v in self.splits.__dict__.items() if v is not None},
            },
            "environment": environment(self.device),
            "epochs": self.history,
            "final": self._select(),
            "diagnostics": self.diagnostics,
            "steps": self.global_step,
            "wall_seconds": self.wall_seconds,
            "resumed_at_epochs": self.resumed_at_epochs,
        }


def _make_scheduler(protocol: Protocol, optimizer: torch.optim.Optimizer) -> Any:
    kwargs = dict(protocol.scheduler_kwargs)
    if protocol.scheduler == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, **kwargs)
    if protocol.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", **kwargs)
    return None


def environment(device: torch.device) -> dict[str, Any]:
    """Provenance of a record: versions, hardware, git revision."""
    import numpy

    return {
        "apt": apt.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "processor": platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "git_revision": git_revision(),
    }


def git_revision() -> str | None:
    """``HEAD`` of the repository this package runs from, with ``+dirty`` if it has local changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
                               capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
