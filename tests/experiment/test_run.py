"""End to end: smoke-profile runs of every benchmark whose data is on this machine.

Each benchmark runs a loss-based and a gradient-based method under Adam and APT-Muon, writes a complete
record, and a second call reads the record instead of training again.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from apt import experiment
from apt.config import Config
from apt.errors import NonFiniteError
from apt.experiment import record_path, run
from apt.store import divergence_path, read_divergence, read_record, record_paths

BENCHMARKS_WITH_DATA = ["multi_mnist", "multi_fashion", "multi_fashion_mnist", "qm9"]
ARMS = [("ls", "adam"), ("famo", "apt_muon"), ("mgda", "adam"), ("nash_mtl", "apt_muon")]


@pytest.mark.slow
@pytest.mark.parametrize("benchmark_name", BENCHMARKS_WITH_DATA)
@pytest.mark.parametrize(("method", "optimizer"), ARMS)
def test_smoke_run_writes_a_complete_record(benchmark_name, method, optimizer, tmp_path, monkeypatch):
    monkeypatch.setenv("APT_RUNS_DIR", str(tmp_path / "runs"))
    config = Config(benchmark=benchmark_name, method=method, optimizer=optimizer, profile="smoke", seed=0)
    record = run(config, results_dir=tmp_path / "results", progress=False)

    assert record["status"] == "complete"
    assert len(record["epochs"]) == record["protocol"]["epochs"]
    final = record["final"]["test_metrics"]
    assert list(final) == record["benchmark"]["metric_names"]
    assert all(math.isfinite(v) for v in final.values()), final
    assert all(math.isfinite(x) for e in record["epochs"] for x in e["train_losses"])
    assert all(e["solver_failures"] >= 0 for e in record["epochs"])
    if method in ("ls", "famo", "mgda"):  # no convex program that can fail
        assert all(e["solver_failures"] == 0 for e in record["epochs"])
    assert record["environment"]["torch"].startswith("2.13")
    assert record_path(config, tmp_path / "results").exists()
    assert not list((tmp_path / "runs").rglob("*.pt")), "the checkpoint is removed once the record exists"
    # A second call reads the record: the same numbers, no new training.
    again = run(config, results_dir=tmp_path / "results", progress=False)
    assert again == read_record(record_path(config, tmp_path / "results")) == record


@pytest.mark.slow
def test_representation_gradients_train_a_different_trajectory(tmp_path, monkeypatch):
    """rep_grad: MGDA weighs the task gradients w.r.t. the shared representation (MGDA-UB); same seed, same batches,
    so the first epoch's losses differ from the parameter-gradient run only through the method's weights."""
    monkeypatch.setenv("APT_RUNS_DIR", str(tmp_path / "runs"))
    base = Config(benchmark="multi_mnist", method="mgda", optimizer="adam", profile="smoke", seed=0)
    by_parameters = run(base, results_dir=tmp_path / "results", progress=False)
    by_features = run(replace(base, rep_grad=True), results_dir=tmp_path / "results", progress=False)
    assert by_features["status"] == "complete" and by_features["config"]["rep_grad"] is True
    assert all(math.isfinite(x) for e in by_features["epochs"] for x in e["train_losses"])
    assert by_features["epochs"][0]["train_losses"] != by_parameters["epochs"][0]["train_losses"]


@pytest.mark.slow
def test_single_task_baseline_trains_only_its_task(tmp_path, monkeypatch):
    monkeypatch.setenv("APT_RUNS_DIR", str(tmp_path / "runs"))
    config = Config(benchmark="multi_mnist", profile="smoke", stl_task=1)
    record = run(config, results_dir=tmp_path / "results", progress=False)
    assert record["benchmark"]["trained_tasks"] == [1]
    assert len(record["epochs"][0]["train_losses"]) == 1
    assert config.run_id.startswith("stl1-adam-s0-")


@pytest.mark.slow
def test_diagnostics_are_recorded_per_step(tmp_path, monkeypatch):
    monkeypatch.setenv("APT_RUNS_DIR", str(tmp_path / "runs"))
    config = Config(benchmark="multi_mnist", method="mgda", optimizer="apt_adam", profile="smoke", diagnostics=True)
    record = run(config, results_dir=tmp_path / "results", progress=False)
    diagnostics = record["diagnostics"]
    steps = record["steps"]
    assert diagnostics["step"] == list(range(steps))
    for key in ("instant_gradient_share", "task_alignment"):
        assert key in diagnostics and len(diagnostics[key]) == steps, sorted(diagnostics)
    assert all(len(row) == 2 for row in diagnostics["task_alignment"])
    assert all(-1.0 - 1e-6 <= c <= 1.0 + 1e-6 for row in diagnostics["task_alignment"] for c in row)


@pytest.mark.slow
def test_diagnostics_without_alignment_skip_the_task_jacobian_only(tmp_path, monkeypatch):
    """diagnostics_alignment=False: the optimizer diagnostics are recorded as before, the per-task alignment (and
    the K extra backward passes it needs) are not, and the training numbers are the same."""
    monkeypatch.setenv("APT_RUNS_DIR", str(tmp_path / "runs"))
    config = Config(benchmark="multi_mnist", method="ls", optimizer="adam", profile="smoke", diagnostics=True)
    full = run(config, results_dir=tmp_path / "results", progress=False)
    lean = run(replace(config, diagnostics_alignment=False), results_dir=tmp_path / "results", progress=False)
    assert "task_alignment" in full["diagnostics"] and "task_alignment" not in lean["diagnostics"]
    assert lean["diagnostics"]["instant_gradient_share"] == full["diagnostics"]["instant_gradient_share"]
    assert lean["final"] == full["final"]


@pytest.mark.slow
def test_a_diverged_run_leaves_a_note_and_is_not_retrained(tmp_path, monkeypatch):
    """SGD at lr 1e4 blows the loss up within a few steps: the run raises NonFiniteError naming the task and
    step, leaves a divergence note (no record, no checkpoint), and a second call raises from the note at once."""
    monkeypatch.setenv("APT_RUNS_DIR", str(tmp_path / "runs"))
    config = Config(benchmark="multi_mnist", method="ls", optimizer="sgd", lr=1e4, profile="smoke", seed=0)
    with pytest.raises(NonFiniteError, match=r"loss of task '(left|right)' .* at step \d+"):
        run(config, results_dir=tmp_path / "results", progress=False)
    path = record_path(config, tmp_path / "results")
    assert not path.exists()
    note = read_divergence(divergence_path(path))
    assert note["status"] == "diverged" and note["run_id"] == config.run_id and note["config_hash"] == config.config_hash
    assert note["step"] >= 1 and "at step" in note["error"]
    assert not list((tmp_path / "runs").rglob("*.pt"))
    assert [p.name for p in record_paths(tmp_path / "results")] == [], "a note is not a record"

    def no_training(*args, **kwargs):
        raise AssertionError("a run with a divergence note was trained again")

    monkeypatch.setattr(experiment, "_Training", no_training)
    with pytest.raises(NonFiniteError, match="diverged before.*delete it to train the run again"):
        run(config, results_dir=tmp_path / "results", progress=False)
