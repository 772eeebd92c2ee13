"""Saving a speed benchmark's measurements as JSON with their provenance, for the book's cost chapter."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from apt.experiment import environment
from apt.store import atomic_write_bytes


def parse_device(parser: argparse.ArgumentParser, name: str) -> torch.device:
    """``--device`` as a torch.device; a parser error naming the value if it is unknown or not on this machine."""
    try:
        device = torch.device(name)
    except RuntimeError as error:
        parser.error(f"--device {name!r} is not a torch device ({error})")
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {name!r}: CUDA is not available on this machine (torch {torch.__version__})")
    if device.type not in ("cpu", "cuda"):
        parser.error(f"--device {name!r}: only cpu and cuda are supported")
    return device


def save_measurements(path: str | Path, measurements: dict[str, Any], device: torch.device | None = None) -> None:
    """Write ``measurements`` plus the command, date and environment (versions, CPU or GPU, git revision)
    atomically."""
    payload = {
        "command": "python " + " ".join(sys.argv),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "environment": environment(device or torch.device("cpu")),
        **measurements,
    }
    atomic_write_bytes(Path(path), (json.dumps(payload, indent=1) + "\n").encode())
    print(f"measurements written to {path}")
