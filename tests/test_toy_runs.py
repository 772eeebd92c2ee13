"""Trajectories on the synthetic toy: the first step is the method's step, failures are counted per step, and
the parallel batch equals the serial one."""

from __future__ import annotations

import warnings

import pytest
import torch

from apt.benchmarks.toy import NASH_FAMO_FIRST_LOSS_SCALE, NASH_FAMO_INITIAL_POINTS, toy_losses
from apt.mtl import SolverFailureWarning
from apt.toy_runs import ToyRun, toy_trajectories, toy_trajectory


def _task_gradients(point: tuple[float, float], scale: float) -> torch.Tensor:
    x = torch.tensor(point, requires_grad=True)
    losses = toy_losses(x, scale)
    return torch.stack([torch.autograd.grad(losses[k], x, retain_graph=True)[0] for k in range(2)])


def test_first_sgd_step_of_ls_follows_the_summed_gradient() -> None:
    start, lr = NASH_FAMO_INITIAL_POINTS[1], 0.02
    out = toy_trajectory("ls", "sgd", start, steps=3, lr=lr, first_loss_scale=NASH_FAMO_FIRST_LOSS_SCALE)
    assert out["points"].shape == (4, 2) and out["losses"].shape == (4, 2) and out["solver_failures"].shape == (3,)
    expected = torch.tensor(start) - lr * _task_gradients(start, NASH_FAMO_FIRST_LOSS_SCALE).sum(0)
    torch.testing.assert_close(out["points"][1], expected)
    torch.testing.assert_close(out["losses"][1], toy_losses(out["points"][1], NASH_FAMO_FIRST_LOSS_SCALE))
    assert not out["solver_failures"].any()


def test_solver_failures_are_counted_at_the_steps_that_warned() -> None:
    # Nash-MTL under Adam from the first start fails a few solves (6 measured) once it nears the Pareto set;
    # the step of each warning is in its message.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SolverFailureWarning)
        out = toy_trajectory("nash_mtl", "adam", NASH_FAMO_INITIAL_POINTS[0], steps=300, lr=0.02,
                             first_loss_scale=NASH_FAMO_FIRST_LOSS_SCALE)
    warned = [w for w in caught if issubclass(w.category, SolverFailureWarning)]
    assert warned, "this start no longer makes the solver fail: pick one that does, or the test checks nothing"
    assert int(out["solver_failures"].sum()) == len(warned)
    warned_steps = sorted({int(str(w.message).split("at step ")[1].split(":")[0]) for w in warned})
    assert warned_steps == out["solver_failures"].nonzero().flatten().tolist()


def test_parallel_trajectories_equal_serial_ones_in_the_order_given() -> None:
    runs = [ToyRun(method, optimizer, start, steps=40, lr=0.02, first_loss_scale=NASH_FAMO_FIRST_LOSS_SCALE,
                   optimizer_hp={"adjust_lr": "original"} if optimizer == "apt_muon" else {})
            for method in ("mgda", "nash_mtl", "famo") for optimizer in ("adam", "apt_muon")
            for start in NASH_FAMO_INITIAL_POINTS[:2]]
    runs = [r if r.method != "famo" else ToyRun(**{**r.__dict__, "method_hp": {"min_losses": [-2.0, -20.0]}})
            for r in runs]
    serial = toy_trajectories(runs, workers=1, progress=False)
    parallel = toy_trajectories(runs, workers=2, progress=False)
    assert len(parallel) == len(runs)
    for run, a, b in zip(runs, serial, parallel):
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), (run, key)
    # different runs give different trajectories: the comparison above is not of identical tensors
    assert not torch.equal(serial[0]["points"], serial[2]["points"])


def test_rejects_a_worker_count_below_one() -> None:
    with pytest.raises(ValueError, match="workers must be >= 1, got 0"):
        toy_trajectories([], workers=0)


def test_default_worker_count_is_capped(monkeypatch) -> None:
    import apt.toy_runs as toy_runs

    seen = []

    class Pool:  # records the worker count instead of starting processes
        def __init__(self, max_workers, **_):
            seen.append(max_workers)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def map(self, fn, runs):
            return [fn(r) for r in runs]

    monkeypatch.setattr(toy_runs, "ProcessPoolExecutor", Pool)
    monkeypatch.setattr(toy_runs, "available_cores", lambda: 64)
    runs = [ToyRun("ls", "sgd", start, steps=1, lr=0.1) for start in NASH_FAMO_INITIAL_POINTS] * 4
    assert len(toy_trajectories(runs, progress=False)) == len(runs)
    assert seen == [toy_runs.MAX_DEFAULT_WORKERS]


def test_chapter_runs_cover_every_method_optimizer_and_start_with_their_options() -> None:
    from apt.toy_runs import CHAPTER_METHODS, CHAPTER_OPTIMIZERS, chapter_runs

    runs = chapter_runs(7, seed=3)
    assert len(runs) == len(CHAPTER_METHODS) * len(CHAPTER_OPTIMIZERS) * len(NASH_FAMO_INITIAL_POINTS)
    assert {(r.method, r.optimizer, r.start) for r in runs} == {
        (m, o, s) for m in CHAPTER_METHODS for o in CHAPTER_OPTIMIZERS for s in NASH_FAMO_INITIAL_POINTS}
    assert all(r.steps == 7 and r.seed == 3 and r.first_loss_scale == NASH_FAMO_FIRST_LOSS_SCALE for r in runs)
    famo = next(r for r in runs if r.method == "famo")
    assert famo.method_hp == {"min_losses": [-20.0 * NASH_FAMO_FIRST_LOSS_SCALE, -20.0]}
    assert next(r for r in runs if r.optimizer == "muon").optimizer_hp == {"adjust_lr": "original"}
