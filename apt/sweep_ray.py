"""The Ray backend of ``apt.sweep``: one Ray task per run, on a cluster the user started with Ray's CLI.

Each run is a task that reserves what its config needs (``task_resources``: CPUs by profile, one GPU
when the device is CUDA), calls ``apt.experiment.run`` with the results and checkpoint folders given
explicitly, and writes into those folders; they must be one shared filesystem, mounted at the same
path on every node. The store stays correct with many writers because nothing is shared: each run
writes only its own record and its own checkpoint, each atomically (``apt.store.atomic_write_bytes``).

Failures. A worker process or node that dies (killed, out of memory, preempted) is a *system* failure:
Ray resubmits the task up to ``MAX_RETRIES`` times and ``run`` resumes from the run's last per-epoch
checkpoint (the record's ``resumed_at_epochs`` shows it). An exception raised by the run itself (bad
data path, NaN loss, solver error) is deterministic given the config: it is not retried, it is reported
with its message, and the sweep goes on. Runs that already have a record are skipped before submission.

Numbers. A task pins torch to as many threads as CPUs it reserved; CPU results depend (in the last bits)
on the thread count, so a Ray run equals a local run made with the same number of threads (the record
stores ``environment.torch_threads``).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tqdm import tqdm

from apt.allocator import allocator_env
from apt.config import Config, validate
from apt.experiment import default_checkpoint_dir, default_results_dir, record_path, run
from apt.sweep import SweepReport

# CPUs reserved per run (and torch threads used by it). smoke: tiny models and batches, where a second
# thread costs more than it gains and one CPU lets a test cluster run many runs at once; cpu: the
# profile's timings (TOOLCHAIN.md) are for 2 threads; full: the data pipeline runs in the training
# process (no loader workers), one thread feeds the GPU and one runs Python.
CPUS_PER_RUN: dict[str, int] = {"smoke": 1, "cpu": 2, "full": 2}
# Resubmissions of a task whose worker died (each resumes from the last checkpoint).
MAX_RETRIES = 3
POLL_SECONDS = 1.0


def task_resources(config: Config) -> dict[str, int]:
    """The Ray resources one run reserves: ``{"num_cpus": CPUS_PER_RUN[profile], "num_gpus": 0 | 1}``.

    A GPU is requested exactly when the run trains on one (device ``cuda``): a CPU run that held a GPU
    would block it, and a CUDA run without one sees no GPU (Ray hides the others). Ray shows a task only
    the GPU it was given, as ``cuda:0``, so a config must say ``cuda`` (or ``cuda:0``), not ``cuda:1``.
    """
    if config.profile not in CPUS_PER_RUN:
        raise ValueError(f"config field profile={config.profile!r}: the Ray backend knows {list(CPUS_PER_RUN)}")
    device = config.device
    if device.startswith("cuda:") and device != "cuda:0":
        raise ValueError(
            f"config field device={device!r}: under Ray each task sees only the GPU it was given, as cuda:0; use 'cuda'"
        )
    return {"num_cpus": CPUS_PER_RUN[config.profile], "num_gpus": int(device.startswith("cuda"))}


def task_name(config: Config) -> str:
    """``apt-run <benchmark>/<run_id>``: the Ray task name, shown as the worker's process title (``ps``)."""
    return f"apt-run {config.benchmark}/{config.run_id}"


class _StartedRuns:
    """A tiny Ray actor (0 CPUs) that tasks tell when they start: the progress bar's ``running`` count."""

    def __init__(self) -> None:
        self.run_ids: set[str] = set()

    def add(self, run_id: str) -> None:
        self.run_ids.add(run_id)

    def get(self) -> set[str]:
        return self.run_ids


def _train_task(config: Config, results_dir: str, checkpoint_dir: str, threads: int, started: Any) -> list[int]:
    """The body of one Ray task: train (or resume) ``config``; returns the record's ``resumed_at_epochs``."""
    import torch

    started.add.remote(config.run_id)
    torch.set_num_threads(threads)
    record = run(config, results_dir=results_dir, checkpoint_dir=checkpoint_dir, progress=False)
    return record["resumed_at_epochs"]


def _why(error: BaseException) -> str:
    """For the summary, as the local backend says it: the run's own exception where there is one (its
    traceback is printed when it arrives), else Ray's (e.g. the worker died more than MAX_RETRIES times)."""
    import ray.exceptions

    cause = getattr(error, "cause", None) if isinstance(error, ray.exceptions.RayTaskError) else None
    reason = cause if cause is not None else error
    return f"{type(reason).__name__}: {reason}"


def run_ray(
    configs: Iterable[Config],
    *,
    address: str | None = None,
    results_dir: str | Path | None = None,
    checkpoint_dir: str | Path | None = None,
    progress: bool = True,
) -> SweepReport:
    """Run every config without a record as a Ray task on the cluster at ``address``; wait for all.

    address: ``host:port`` of a running cluster's head, ``auto``, or ``ray://host:port`` (Ray Client);
      ``ray.init`` never starts a cluster for an explicit address. None: ``$RAY_ADDRESS``, else the
      cluster last started on this machine, else a local Ray instance that ends with the sweep.
    results_dir / checkpoint_dir: resolved to absolute paths here (None = the profile's defaults of
      ``apt.experiment``) and used as such by every worker, so they must be shared by every node.
    Progress: a bar of finished runs with the counts running / queued / failed.
    """
    import ray

    configs = list(configs)
    for config in configs:
        validate(config)
        task_resources(config)  # reject what the cluster cannot run before anything is submitted

    report = SweepReport()
    todo: list[tuple[Config, Path, Path]] = []
    seen: set[Path] = set()
    for config in configs:
        results = Path(results_dir if results_dir is not None else default_results_dir(config.profile)).resolve()
        path = record_path(config, results)
        if path.exists() or path in seen:
            report.skipped.append(config.run_id)
            continue
        seen.add(path)
        checkpoints = Path(checkpoint_dir if checkpoint_dir is not None else default_checkpoint_dir(config.profile))
        todo.append((config, results, checkpoints.resolve()))
    if not todo:
        return report

    we_connected = not ray.is_initialized()
    if we_connected:
        # Workers start from the Ray raylet's environment, not this one: give them the allocator settings too.
        ray.init(address=address, logging_level=logging.WARNING,
                 runtime_env={"env_vars": allocator_env()})
    try:
        feasible, nodes = [], ray.nodes()
        for config, results, checkpoints in todo:
            why_not = _infeasible(task_resources(config), nodes)
            if why_not:
                report.failed[config.run_id] = why_not
            else:
                feasible.append((config, results, checkpoints))
        _submit_and_wait(feasible, report, progress)
    finally:
        if we_connected:
            ray.shutdown()
    return report


def _infeasible(resources: dict[str, int], nodes: list[dict[str, Any]]) -> str | None:
    """Why no live node of the cluster can ever take a task needing ``resources`` (None if one can).

    Ray would keep such a task queued forever (waiting for a node that an autoscaler might add); a
    fixed cluster (plain machines, SLURM) never gets one, so the run is reported as failed instead.
    """
    needed = {"CPU": resources["num_cpus"], "GPU": resources["num_gpus"]}
    largest = {name: max((node["Resources"].get(name, 0) for node in nodes if node["Alive"]), default=0)
               for name in needed}
    if any(node["Alive"] and all(node["Resources"].get(k, 0) >= v for k, v in needed.items()) for node in nodes):
        return None
    return (f"no node of the Ray cluster has {needed['CPU']} CPU(s) and {needed['GPU']} GPU(s) "
            f"(largest: {largest['CPU']:g} CPUs, {largest['GPU']:g} GPUs)")


def _submit_and_wait(todo: list[tuple[Config, Path, Path]], report: SweepReport, progress: bool) -> None:
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    if not todo:
        return
    # The tracker lives beside the driver: losing a worker node must not lose the progress counts.
    here = NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(), soft=True)
    started = ray.remote(num_cpus=0)(_StartedRuns).options(scheduling_strategy=here).remote()
    train = ray.remote(_train_task)
    pending: dict[Any, Config] = {}
    for config, results, checkpoints in todo:
        options = {**task_resources(config), "max_retries": MAX_RETRIES, "retry_exceptions": False,
                   "name": task_name(config)}
        ref = train.options(**options).remote(config, str(results), str(checkpoints),
                                              options["num_cpus"], started)
        pending[ref] = config

    bar = tqdm(total=len(pending), desc="sweep (ray)", disable=not progress, file=sys.stderr)
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_SECONDS)
            for ref in ready:
                config = pending.pop(ref)
                try:
                    resumed_at = ray.get(ref)
                except ray.exceptions.RayError as error:
                    report.failed[config.run_id] = _why(error)
                    print(f"sweep: run {config.benchmark}/{config.run_id} failed:\n{error}", file=sys.stderr)
                else:
                    report.done.append(config.run_id)
                    if resumed_at:
                        report.resumed[config.run_id] = resumed_at
                bar.update(1)
            if progress:
                running = _started(started) & {config.run_id for config in pending.values()}
                bar.set_postfix(running=len(running), queued=len(pending) - len(running), failed=len(report.failed))
    finally:
        bar.close()
        for ref in pending:  # interrupted (Ctrl-C): stop the rest; their checkpoints let a rerun resume
            ray.cancel(ref, force=True)


def _started(tracker: Any) -> set[str]:
    """Run ids whose task has started (empty if the tracker cannot answer in time: progress is best-effort)."""
    import ray

    try:
        return ray.get(tracker.get.remote(), timeout=POLL_SECONDS)
    except ray.exceptions.RayError:
        return set()
