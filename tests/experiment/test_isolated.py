"""A run in a child process per run (``apt.isolated``, ``--process-per-run``): the same record as in this process,
failures reported by name, and no child left training when the sweep is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_resume import _strip_timing

from apt.config import Config
from apt.data_dir import REPO_ROOT
from apt.experiment import record_path, run
from apt.store import read_record
from apt.sweep import run_configs

CONFIG = Config(benchmark="multi_mnist", method="mgda", optimizer="apt_adam", profile="smoke", seed=2)
TIMEOUT_SECONDS = 120


def test_a_run_in_a_child_process_writes_the_record_this_process_would(tmp_path):
    report = run_configs([CONFIG], results_dir=tmp_path / "child", checkpoint_dir=tmp_path / "child-runs",
                         progress=False, process_per_run=True)
    assert report.done == [CONFIG.run_id] and not report.failed
    here = run(CONFIG, results_dir=tmp_path / "here", checkpoint_dir=tmp_path / "here-runs", progress=False)
    in_child = read_record(record_path(CONFIG, tmp_path / "child"))
    assert in_child["environment"]["torch_threads"] == here["environment"]["torch_threads"]
    assert _strip_timing(in_child) == _strip_timing(here)


def test_a_failure_in_the_child_is_reported_by_run_and_exception(tmp_path):
    broken = Config(benchmark="multi_mnist", profile="smoke", data_dir=str(tmp_path / "no-data"))
    report = run_configs([broken], results_dir=tmp_path / "results", checkpoint_dir=tmp_path / "runs", progress=False,
                         process_per_run=True)
    why = report.failed[broken.run_id]
    assert why.startswith(f"IsolatedRunError: {broken.run_id}: DataMissingError") and "no-data" in why


def test_process_per_run_is_for_the_local_backend(tmp_path):
    with pytest.raises(ValueError, match="process_per_run is for backend='local'"):
        run_configs([CONFIG], backend="ray", results_dir=tmp_path, process_per_run=True)


def _children(pid: int) -> list[int]:
    """The child processes of ``pid`` (Linux /proc)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in path.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().split()[2] if Path(f"/proc/{pid}/stat").exists() else "X"
    return state not in ("Z", "X")  # a zombie has stopped; only its parent's wait() is missing


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads child processes from Linux's /proc")
def test_the_child_stops_when_the_sweep_is_killed(tmp_path):
    long_run = Config(benchmark="multi_mnist", profile="smoke", seed=4, protocol_overrides={"epochs": 500})
    driver = ("import sys\nfrom apt.config import Config\nfrom apt.sweep import run_configs\n"
              f"run_configs([Config.from_dict({long_run.to_dict()!r})], results_dir=sys.argv[1], checkpoint_dir=sys.argv[2],"
              " progress=False, process_per_run=True)\n")
    sweep = subprocess.Popen([sys.executable, "-c", driver, str(tmp_path / "results"), str(tmp_path / "runs")],
                             cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    children: list[int] = []
    try:
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while not children:  # the spawned child, training
            assert sweep.poll() is None, "the sweep ended before its child started"
            assert time.monotonic() < deadline, "no child process within the time limit"
            time.sleep(0.1)
            children = _children(sweep.pid)
        sweep.send_signal(signal.SIGKILL)
        sweep.wait(timeout=30)
        deadline = time.monotonic() + 30
        while any(_alive(c) for c in children) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_alive(c) for c in children), "the child kept training after its sweep was killed"
    finally:
        if sweep.poll() is None:
            sweep.kill()
            sweep.wait(timeout=30)
        for child in children:
            if _alive(child):
                os.kill(child, signal.SIGKILL)
