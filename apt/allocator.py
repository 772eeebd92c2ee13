"""glibc allocator settings for QM9 on the CPU, applied to the command line and to Ray workers.

Each QM9 batch of 120 complete graphs builds a ~630 MB per-edge weight tensor. With glibc's default
allocator, every such tensor is a fresh ``mmap`` that is returned and zeroed again at the next batch, which
made training 2–3× slower and unstable here (``../shared/TOOLCHAIN.md``; measured again: one QM9 `cpu` epoch of
LS + Adam took 64 s without these settings and 35–45 s with them, on a shared 2-core machine). glibc reads
them only when a process starts, so the command line (``python -m apt``) and the notebook runner
(``scripts/execute_notebooks.py``, whose kernels inherit its environment) re-execute themselves once with them
set; the Makefile exports the same values for the test suite's own processes.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping

GLIBC_ALLOCATOR_ENV: dict[str, str] = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "100000000000"}
# Set to 1 to keep the allocator as it is: to measure the default, or to use less memory on QM9 (README, Memory);
# the Makefile honours it too.
OPT_OUT = "APT_KEEP_ALLOCATOR"


def allocator_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The settings a process should run with: ``GLIBC_ALLOCATOR_ENV``, with any value already in ``environ``
    (default: this process's environment) kept; none if the user opted out with ``APT_KEEP_ALLOCATOR=1``."""
    environ = os.environ if environ is None else environ
    if environ.get(OPT_OUT) == "1":
        return {}
    return {name: environ.get(name, value) for name, value in GLIBC_ALLOCATOR_ENV.items()}


def missing_allocator_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The settings of ``allocator_env`` that ``environ`` (default: this process's) lacks; none where the C
    library is not glibc."""
    environ = os.environ if environ is None else environ
    if platform.libc_ver()[0] != "glibc":
        return {}
    return {name: value for name, value in allocator_env(environ).items() if name not in environ}


def reexec_with_allocator_env() -> None:
    """Replace this process by the same command (``sys.orig_argv``) with the missing settings in its environment;
    return without doing anything if none is missing (so the re-executed process does not loop)."""
    missing = missing_allocator_env()
    if missing:
        os.execve(sys.executable, sys.orig_argv, {**os.environ, **missing})
