"""The speed scripts under benchmarks/ run end to end on a tiny setting and refuse a device they cannot use."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def bench(script: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=300)


@pytest.mark.slow
def test_bench_mtl_saves_ratios_with_the_device(tmp_path) -> None:
    out = tmp_path / "mtl.json"
    done = bench("bench_mtl.py", "--benchmark", "qm9", "--batch-size", "2", "--rounds", "1", "--methods", "ls,famo",
                 "--no-torchjd", "--device", "cpu", "--json", str(out))
    assert done.returncode == 0, done.stderr
    saved = json.loads(out.read_text())
    assert saved["device"] == "cpu" and saved["environment"]["device"] == "cpu"
    median, ratios = saved["median_seconds"], saved["ratios"]
    assert median["famo"] > 0 and median["ls"] > 0 and median["loop_K_backward"] > 0
    assert ratios["famo"]["ls"] == pytest.approx(median["famo"] / median["ls"])
    assert ratios["famo"]["loop"] == pytest.approx(median["famo"] / median["loop_K_backward"])


@pytest.mark.slow
def test_bench_optim_saves_ratios_with_the_device(tmp_path) -> None:
    out = tmp_path / "optim.json"
    done = bench("bench_optim.py", "--models", "qm9", "--rounds", "1", "--steps", "1", "--warmup", "1",
                 "--device", "cpu", "--json", str(out))
    assert done.returncode == 0, done.stderr
    saved = json.loads(out.read_text())
    assert saved["device"] == "cpu"
    assert all(math.isfinite(v["qm9"]) and v["qm9"] > 0 for v in saved["ratios"].values())


@pytest.mark.parametrize("script", ["bench_mtl.py", "bench_optim.py"])
@pytest.mark.parametrize(("device", "message"), [("gpu", "is not a torch device"),
                                                  ("meta", "only cpu and cuda are supported")])
def test_an_unusable_device_is_named(script, device, message) -> None:
    args = ["--benchmark", "qm9"] if script == "bench_mtl.py" else []
    done = bench(script, *args, "--device", device)
    assert done.returncode == 2 and f"--device '{device}'" in done.stderr and message in done.stderr


def test_bench_toy_saves_the_parallel_over_serial_ratio(tmp_path) -> None:
    out = tmp_path / "toy.json"
    done = bench("bench_toy.py", "--steps", "3", "--rounds", "1", "--workers", "2", "--json", str(out))
    assert done.returncode == 0, done.stderr
    saved = json.loads(out.read_text())
    assert saved["runs"] == 175 and saved["workers"] == 2
    assert saved["ratio_parallel_over_serial"] == pytest.approx(
        saved["median_seconds"]["parallel"] / saved["median_seconds"]["serial"])


def test_bench_toy_refuses_a_single_worker() -> None:
    done = bench("bench_toy.py", "--workers", "1")
    assert done.returncode == 2 and "--workers must be >= 2" in done.stderr and "got 1" in done.stderr


@pytest.mark.slow
def test_bench_threads_saves_per_process_ratios_against_the_first_thread_count(tmp_path) -> None:
    out = tmp_path / "threads.json"
    done = bench("bench_threads.py", "--benchmarks", "multi_mnist,multi_mnist", "--threads", "1,2", "--steps", "2",
                 "--rounds", "1", "--batch-sizes", "4,8", "--json", str(out))
    assert done.returncode == 0, done.stderr
    saved = json.loads(out.read_text())
    assert saved["processes"] == ["multi_mnist#0", "multi_mnist#1"] and saved["batch_sizes"] == [4, 8]
    median, ratios = saved["median_step_seconds"], saved["ratios"]
    assert set(median) == {"1", "2"} and all(s > 0 for row in median.values() for s in row.values())
    for label in saved["processes"]:
        assert ratios["1"][label] == 1.0
        assert ratios["2"][label] == pytest.approx(median["2"][label] / median["1"][label])


@pytest.mark.parametrize(("args", "message"), [
    (["--threads", "2"], "--threads needs two or more counts >= 1 to compare, got [2]"),
    (["--threads", "0,2"], "--threads needs two or more counts >= 1 to compare, got [0, 2]"),
    (["--benchmarks", "qm9,mnist"],
     "--benchmarks must name one or more of qm9, celeba, multi_mnist, got ['qm9', 'mnist']"),
    (["--batch-sizes", "8"], "--batch-sizes needs one size >= 1 per process (2), got [8]"),
    (["--batch-sizes", "8,0"], "--batch-sizes needs one size >= 1 per process (2), got [8, 0]"),
])
def test_bench_threads_names_a_bad_argument(args, message) -> None:
    done = bench("bench_threads.py", *args)
    assert done.returncode == 2 and message in done.stderr
