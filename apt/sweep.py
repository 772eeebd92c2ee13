"""Grids of runs (method × optimizer × seed, plus the single-task baselines) and running them.

``run_configs(configs, backend=...)`` is the one entry point; every backend skips configs whose record
exists, writes one record per run into the results store (``apt.store``: one file per run, atomic
writes, no shared index) and reports which runs failed and why instead of stopping at the first failure.
- ``local``: sequentially, in this process (the default).
- ``ray``: one Ray task per run on a Ray cluster (``apt.sweep_ray``); results and checkpoint folders
  must be shared by every node.
"""

from __future__ import annotations

import itertools
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from apt.config import Config, validate
from apt.experiment import record_path, run
from apt.isolated import run_in_child


def grid(
    benchmark: str,
    methods: Sequence[str],
    optimizers: Sequence[str],
    seeds: Sequence[int],
    *,
    profile: str = "cpu",
    stl: bool = True,
    stl_optimizer: str = "adam",
    **common: Any,
) -> list[Config]:
    """Every (method, optimizer, seed) config, plus (if ``stl``) one single-task baseline per task and seed.

    ``common`` are further Config fields shared by every run (device, protocol_overrides, diagnostics, ...).
    Every config is validated here, before anything trains.
    """
    from apt.benchmarks import benchmark_class

    configs = [
        Config(benchmark=benchmark, method=m, optimizer=o, seed=s, profile=profile, **common)
        for m, o, s in itertools.product(methods, optimizers, seeds)
    ]
    if stl:
        n_tasks = len(benchmark_class(benchmark).task_names)
        configs += [
            Config(benchmark=benchmark, method="ls", optimizer=stl_optimizer, seed=s, profile=profile, stl_task=k, **common)
            for s in seeds
            for k in range(n_tasks)
        ]
    for config in configs:
        validate(config)
    return configs


BACKENDS: tuple[str, ...] = ("local", "ray")


@dataclass
class SweepReport:
    """What a sweep did. ``done``: run ids trained now; ``skipped``: already recorded (or listed twice);
    ``failed``: run id -> why; ``resumed``: run id -> the epochs it resumed at (from checkpoints)."""

    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    resumed: dict[str, list[int]] = field(default_factory=dict)

    def summary(self) -> str:
        lines = [f"{len(self.done)} run, {len(self.skipped)} already recorded, {len(self.failed)} failed"]
        lines += [f"  resumed {run_id} from checkpoint(s) at epoch(s) {epochs}" for run_id, epochs in self.resumed.items()]
        lines += [f"  FAILED {run_id}: {why}" for run_id, why in self.failed.items()]
        return "\n".join(lines)


def run_configs(
    configs: Iterable[Config],
    *,
    backend: str = "local",
    address: str | None = None,
    results_dir: str | Path | None = None,
    checkpoint_dir: str | Path | None = None,
    progress: bool = True,
    process_per_run: bool = False,
) -> SweepReport:
    """Run every config that has no record yet, on ``backend``; returns what happened to each run.

    backend: ``local`` (sequential, this process) or ``ray`` (one Ray task per run, see
      ``apt.sweep_ray.run_ray``). address: the Ray cluster (``host:port``, ``auto``, ``ray://...``); only
      for ``ray``; None connects to ``$RAY_ADDRESS`` or a cluster started on this machine, else starts a
      local Ray instance for the duration of the sweep.
    results_dir / checkpoint_dir: None = per profile, ``apt.experiment.default_results_dir`` /
      ``default_checkpoint_dir`` (resolved here, on the machine that submits the sweep).
    process_per_run: local only: each run in a fresh child process (``apt.isolated``), so that a long sweep does
      not keep the memory of the runs before it (Ray workers are separate processes already).
    """
    if backend not in BACKENDS:
        raise ValueError(f"sweep backend={backend!r}: allowed {list(BACKENDS)}")
    if backend == "local":
        if address is not None:
            raise ValueError(f"sweep address={address!r} is for backend='ray'; the local backend runs in this process")
        return run_local(configs, results_dir=results_dir, checkpoint_dir=checkpoint_dir, progress=progress,
                         process_per_run=process_per_run)
    if process_per_run:
        raise ValueError("sweep process_per_run is for backend='local'; Ray runs every run in a worker process")
    from apt.sweep_ray import run_ray

    return run_ray(configs, address=address, results_dir=results_dir, checkpoint_dir=checkpoint_dir, progress=progress)


def run_local(
    configs: Iterable[Config],
    *,
    results_dir: str | Path | None = None,
    checkpoint_dir: str | Path | None = None,
    progress: bool = True,
    process_per_run: bool = False,
) -> SweepReport:
    """Run ``configs`` one after another, in this process or (``process_per_run``) each in a fresh child process;
    a failure is recorded and the sweep goes on."""
    train = run_in_child if process_per_run else run
    report = SweepReport()
    configs = list(configs)
    bar = tqdm(configs, desc="sweep", disable=not progress)
    for config in bar:
        if record_path(config, results_dir).exists():
            report.skipped.append(config.run_id)
            continue
        bar.set_postfix_str(f"{config.benchmark}/{config.run_id}")
        try:
            record = train(config, results_dir=results_dir, checkpoint_dir=checkpoint_dir, progress=progress)
        except Exception as error:  # noqa: BLE001 - a sweep reports every failure and goes on
            report.failed[config.run_id] = f"{type(error).__name__}: {error}"
            traceback.print_exc()
        else:
            report.done.append(config.run_id)
            if record["resumed_at_epochs"]:
                report.resumed[config.run_id] = record["resumed_at_epochs"]
    return report
