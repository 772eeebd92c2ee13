"""Kill a run mid-epoch (SIGKILL in a subprocess), resume it, and get the same record as an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from apt.config import Config
from apt.experiment import record_path, run

CONFIG = Config(benchmark="multi_mnist", method="pcgrad", optimizer="apt_adam", profile="smoke", seed=3,
                protocol_overrides={"epochs": 4})
TIMEOUT_SECONDS = 300


def _strip_timing(record: dict) -> dict:
    """The record without what legitimately differs between two runs: wall times, resume marks, provenance."""
    stripped = {k: v for k, v in record.items() if k not in ("wall_seconds", "resumed_at_epochs", "environment")}
    stripped["epochs"] = [{k: v for k, v in e.items() if k != "seconds"} for e in record["epochs"]]
    return stripped


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_record(tmp_path, monkeypatch):
    env = {**os.environ, "APT_RUNS_DIR": str(tmp_path / "runs")}
    checkpoint = tmp_path / "runs" / "smoke" / CONFIG.benchmark / f"{CONFIG.run_id}.pt"
    results = tmp_path / "killed"
    command = [sys.executable, "-m", "apt", "run", "--benchmark", CONFIG.benchmark, "--method", CONFIG.method,
               "--optimizer", CONFIG.optimizer, "--profile", "smoke", "--seed", str(CONFIG.seed),
               "--override", "epochs=4", "--results-dir", str(results), "--no-progress"]
    log = tmp_path / "killed-run.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while not checkpoint.exists():
            assert process.poll() is None, f"the run ended before its first checkpoint: {log.read_text()}"
            assert time.monotonic() < deadline, "no checkpoint within the time limit"
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)  # mid-epoch: the first checkpoint was just written
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert not record_path(CONFIG, results).exists(), "killed before the end: there must be no record yet"

    monkeypatch.setenv("APT_RUNS_DIR", env["APT_RUNS_DIR"])
    resumed = run(CONFIG, results_dir=results, progress=False)
    uninterrupted = run(CONFIG, results_dir=tmp_path / "straight", progress=False,
                        checkpoint_dir=tmp_path / "straight-runs")
    assert resumed["resumed_at_epochs"] and resumed["resumed_at_epochs"][0] >= 1
    assert uninterrupted["resumed_at_epochs"] == []
    assert _strip_timing(resumed) == _strip_timing(uninterrupted)
