"""Saving a speed benchmark's measurements as JSON with their provenance, for the book's cost chapter."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from apt.experiment import environment
from apt.store import atomic_write_bytes


def save_measurements(path: str | Path, measurements: dict[str, Any]) -> None:
    """Write ``measurements`` plus the command, date and environment (versions, CPU, git revision) atomically."""
    payload = {
        "command": "python " + " ".join(sys.argv),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "environment": environment(torch.device("cpu")),
        **measurements,
    }
    atomic_write_bytes(Path(path), (json.dumps(payload, indent=1) + "\n").encode())
    print(f"measurements written to {path}")
