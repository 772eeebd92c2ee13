"""Shared fixtures."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from apt.data_dir import data_dir


@pytest.fixture(scope="session")
def require_data() -> Callable[[Path], Path]:
    """``require_data(path)``: ``path`` if it exists, else a failure that names it.

    The real data is part of the test environment (CI and `make test` read it from ``APT_DATA_DIR``), so a missing
    file fails the tests that need it instead of silently skipping them; ``APT_ALLOW_MISSING_DATA=1`` turns the
    failures into skips, for a machine that has only part of the data.
    """
    def require(path: Path) -> Path:
        if path.exists():
            return path
        message = (f"real data {path} is absent (data dir {data_dir()}: set APT_DATA_DIR, or "
                   f"APT_ALLOW_MISSING_DATA=1 to skip the tests that need it)")
        if os.environ.get("APT_ALLOW_MISSING_DATA") == "1":
            pytest.skip(message)
        pytest.fail(message)
    return require
