"""Optimizing the synthetic two-objective toy (``apt.benchmarks.toy``): one trajectory, or many in parallel.

The point x ∈ ℝ² is held as a [1, 2] matrix so that Muon can take it: orthogonalizing a rank-1 matrix normalizes
it, so Muon on the toy is normalized (momentum) descent. Each step is the package's training step on two losses,

    g_t = aggregate_m(∇ℓ_1(x_t), ∇ℓ_2(x_t))    (``mtl_backward`` with method m),
    x_{t+1} = x_t − η · u_t(g_t, optimizer state),

so a trajectory shows where a method's direction and an optimizer's update take the point.
"""

from __future__ import annotations

import multiprocessing
import os
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor
from tqdm import tqdm

from apt.benchmarks.toy import NASH_FAMO_FIRST_LOSS_SCALE, NASH_FAMO_INITIAL_POINTS, toy_losses
from apt.mtl import SolverFailureWarning, make_method, mtl_backward
from apt.optim import make_optimizer


def toy_trajectory(
    method: str,
    optimizer: str,
    start: Sequence[float],
    *,
    steps: int,
    lr: float,
    method_hp: dict[str, Any] | None = None,
    optimizer_hp: dict[str, Any] | None = None,
    first_loss_scale: float = 1.0,
    seed: int = 0,
) -> dict[str, Tensor]:
    """Optimize the toy from ``start`` for ``steps`` steps of ``method`` under ``optimizer`` (learning rate ``lr``).

    ``first_loss_scale`` = 0.1 gives the imbalanced variant of Nash-MTL and FAMO. Returns ``points``
    [steps+1, 2], ``losses`` [steps+1, 2] and ``solver_failures`` [steps] (failed solves of the method's convex
    program at each step: Nash-MTL, CAGrad, FairGrad; each is also warned as a ``SolverFailureWarning``).
    """
    x = torch.nn.Parameter(torch.tensor([list(start)], dtype=torch.float32))
    mtl_method = make_method(method, 2, generator=torch.Generator().manual_seed(seed), **(method_hp or {}))
    opt = make_optimizer(optimizer, [("x", x)], lr=lr, **(optimizer_hp or {}))

    def losses_at(point: Tensor) -> Tensor:
        return toy_losses(point.view(2), first_loss_scale)

    points, losses, failures = [x.detach().clone().view(2)], [losses_at(x).detach()], []
    for step in range(steps):
        opt.zero_grad(set_to_none=True)
        info = mtl_backward(losses_at(x), [x], mtl_method, step=step, task_names=["L1", "L2"])
        opt.step()
        with torch.no_grad():
            new_losses = losses_at(x)
        if mtl_method.requires_after_step:
            mtl_method.after_step(new_losses)
        points.append(x.detach().clone().view(2))
        losses.append(new_losses)
        failures.append(info.solver_failures)
    return {"points": torch.stack(points), "losses": torch.stack(losses),
            "solver_failures": torch.tensor(failures, dtype=torch.int64)}


@dataclass(frozen=True)
class ToyRun:
    """One trajectory to compute: the arguments of ``toy_trajectory``."""

    method: str
    optimizer: str
    start: tuple[float, float]
    steps: int
    lr: float
    method_hp: dict[str, Any] = field(default_factory=dict)
    optimizer_hp: dict[str, Any] = field(default_factory=dict)
    first_loss_scale: float = 1.0
    seed: int = 0


# Chapter 2's runs: every method shown × these optimizer settings × the five Nash-MTL/FAMO starts. Muon uses its
# `original` learning-rate scaling so that one Muon step has length lr, like an Adam step.
CHAPTER_METHODS: tuple[str, ...] = ("ls", "mgda", "pcgrad", "cagrad", "imtl_g", "nash_mtl", "famo")
CHAPTER_OPTIMIZERS: dict[str, dict[str, Any]] = {"sgd": {}, "adam": {}, "apt_adam": {},
                                                 "muon": {"adjust_lr": "original"},
                                                 "apt_muon": {"adjust_lr": "original"}}
CHAPTER_LR = 2e-2


def chapter_runs(steps: int, *, seed: int = 0) -> list[ToyRun]:
    """Chapter 2's trajectories on the imbalanced toy (first loss × ``NASH_FAMO_FIRST_LOSS_SCALE``), ``steps`` long,
    ordered optimizer, method, start. FAMO gets the losses' infima as ``min_losses``: the bowls reach −20, so
    ℓ_1 ≥ −20 · scale and ℓ_2 ≥ −20 (the derivation is in the chapter)."""
    scale = NASH_FAMO_FIRST_LOSS_SCALE
    method_hp = {"famo": {"min_losses": [-20.0 * scale, -20.0]}}
    return [ToyRun(method, optimizer, start, steps=steps, lr=CHAPTER_LR, method_hp=method_hp.get(method, {}),
                   optimizer_hp=optimizer_hp, first_loss_scale=scale, seed=seed)
            for optimizer, optimizer_hp in CHAPTER_OPTIMIZERS.items() for method in CHAPTER_METHODS
            for start in NASH_FAMO_INITIAL_POINTS]


def _compute(run: ToyRun) -> dict[str, Tensor]:
    # Solver failures are returned per step; one warning per failed solve would flood the output.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SolverFailureWarning)
        return toy_trajectory(**asdict(run))  # ToyRun's fields are toy_trajectory's parameters


def _single_threaded_worker() -> None:
    # The tensors are tiny: one thread per process avoids oversubscribing the cores the pool already uses.
    torch.set_num_threads(1)


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS reports it)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


# Each worker process imports torch and cvxpy (~0.4 GB resident measured here): on a many-core machine one
# process per core would spend gigabytes for a computation that takes seconds per trajectory.
MAX_DEFAULT_WORKERS = 8


def toy_trajectories(runs: Sequence[ToyRun], *, workers: int | None = None,
                     progress: bool = True) -> list[dict[str, Tensor]]:
    """``toy_trajectory`` of every run, in the order of ``runs``, on ``workers`` processes (default: one per
    available core, at most ``MAX_DEFAULT_WORKERS``; 1 computes in this process). Each trajectory is
    deterministic given its arguments, so the result does not depend on ``workers``. Solver failures are in each
    result's ``solver_failures``, not warned.
    """
    if workers is None:
        workers = min(available_cores(), MAX_DEFAULT_WORKERS)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    bar = dict(total=len(runs), desc="toy trajectories", disable=not progress)
    if workers == 1 or len(runs) <= 1:
        return [_compute(run) for run in tqdm(runs, **bar)]
    # spawn, not fork: forking a process whose torch thread pools are already running can deadlock.
    with ProcessPoolExecutor(max_workers=min(workers, len(runs)), mp_context=multiprocessing.get_context("spawn"),
                             initializer=_single_threaded_worker) as pool:
        return list(tqdm(pool.map(_compute, runs), **bar))
