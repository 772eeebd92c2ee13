"""The command line runs with glibc's allocator settings for QM9, once, and keeps what the user chose."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from apt import allocator
from apt.allocator import GLIBC_ALLOCATOR_ENV, OPT_OUT, allocator_env, missing_allocator_env

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def glibc(monkeypatch):
    monkeypatch.setattr(allocator.platform, "libc_ver", lambda: ("glibc", "2.36"))


def test_missing_settings_are_added_and_user_values_kept(glibc) -> None:
    assert missing_allocator_env({}) == GLIBC_ALLOCATOR_ENV
    assert missing_allocator_env({"MALLOC_MMAP_MAX_": "7"}) == {"MALLOC_TRIM_THRESHOLD_": "100000000000"}
    assert allocator_env({"MALLOC_MMAP_MAX_": "7"}) == {**GLIBC_ALLOCATOR_ENV, "MALLOC_MMAP_MAX_": "7"}
    assert missing_allocator_env(GLIBC_ALLOCATOR_ENV) == {}


def test_opting_out_or_another_libc_adds_nothing(glibc, monkeypatch) -> None:
    assert missing_allocator_env({OPT_OUT: "1"}) == {} and allocator_env({OPT_OUT: "1"}) == {}
    monkeypatch.setattr(allocator.platform, "libc_ver", lambda: ("", ""))
    assert missing_allocator_env({}) == {}


def test_reexec_replaces_the_process_with_the_same_command_and_the_settings(glibc, monkeypatch) -> None:
    calls = []
    monkeypatch.setattr(allocator.os, "execve", lambda *args: calls.append(args))
    for name in GLIBC_ALLOCATOR_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv(OPT_OUT, raising=False)
    allocator.reexec_with_allocator_env()
    ((executable, argv, env),) = calls
    assert executable == sys.executable and argv == sys.orig_argv
    assert all(env[name] == value for name, value in GLIBC_ALLOCATOR_ENV.items())
    for name, value in GLIBC_ALLOCATOR_ENV.items():
        monkeypatch.setenv(name, value)
    allocator.reexec_with_allocator_env()
    assert len(calls) == 1  # nothing missing: no second exec, so the re-executed process cannot loop


@pytest.mark.parametrize("entry", [
    "runpy.run_module('apt', run_name='__main__')",  # python -m apt list --results-dir DIR
    "runpy.run_path('scripts/execute_notebooks.py', run_name='__main__')",  # ... --help
])
def test_entry_points_run_with_the_settings_when_started_without_them(tmp_path, entry) -> None:
    # The re-executed interpreter reports, at exit, the environment it received.
    argv = (["apt", "list", "--results-dir", str(tmp_path)] if "run_module" in entry
            else ["execute_notebooks.py", "--help"])
    script = (f"import atexit, os, runpy, sys; sys.argv = {argv!r};"
              "atexit.register(lambda: print('ENV', os.environ.get('MALLOC_MMAP_MAX_'), "
              "os.environ.get('MALLOC_TRIM_THRESHOLD_')));" + entry)
    env = {k: v for k, v in os.environ.items() if k not in GLIBC_ALLOCATOR_ENV and k != OPT_OUT}
    if allocator.platform.libc_ver()[0] != "glibc":
        pytest.skip("not glibc: the entry points keep the allocator as it is")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "ENV 0 100000000000" in done.stdout, done.stdout


@pytest.mark.parametrize("opt_out", [False, True])
def test_makefile_exports_the_same_settings_unless_opted_out(opt_out) -> None:
    """make's own processes (the test suite, `make results`) get GLIBC_ALLOCATOR_ENV, and none with the opt-out."""
    environ = {k: v for k, v in os.environ.items() if k not in GLIBC_ALLOCATOR_ENV and k != OPT_OUT}
    command = ["make", "--no-print-directory", "-C", str(ROOT), "-pn", "clean"] + ([f"{OPT_OUT}=1"] if opt_out else [])
    database = subprocess.run(command, env=environ, capture_output=True, text=True, timeout=60, check=True).stdout
    exported = {}
    for name in GLIBC_ALLOCATOR_ENV:
        values = [line.split(":=", 1)[1].strip() for line in database.splitlines() if line.startswith(f"{name} :=")]
        if values:
            exported[name] = values[0]
    assert exported == ({} if opt_out else GLIBC_ALLOCATOR_ENV)
