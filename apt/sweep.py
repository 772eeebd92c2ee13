"""Grids of runs (method × optimizer × seed, plus the single-task baselines) and running them.

The local backend runs the grid sequentially in this process, skipping configs whose record exists,
and reports which runs failed and why instead of stopping at the first failure.
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


@dataclass
class SweepReport:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        lines = [f"{len(self.done)} run, {len(self.skipped)} already recorded, {len(self.failed)} failed"]
        lines += [f"  FAILED {run_id}: {why}" for run_id, why in self.failed.items()]
        return "\n".join(lines)


def run_local(configs: Iterable[Config], *, results_dir: Path | None = None, progress: bool = True) -> SweepReport:
    """Run ``configs`` one after another in this process; a failure is recorded and the sweep goes on."""
    report = SweepReport()
    configs = list(configs)
    bar = tqdm(configs, desc="sweep", disable=not progress)
    for config in bar:
        if record_path(config, results_dir).exists():
            report.skipped.append(config.run_id)
            continue
        bar.set_postfix_str(f"{config.benchmark}/{config.run_id}")
        try:
            run(config, results_dir=results_dir, progress=progress)
        except Exception as error:  # noqa: BLE001 - a sweep reports every failure and goes on
            report.failed[config.run_id] = f"{type(error).__name__}: {error}"
            traceback.print_exc()
        else:
            report.done.append(config.run_id)
    return report
