"""Checkpoints: everything a killed run needs to continue exactly, written atomically each epoch."""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from apt.store import atomic_write_bytes


class CorruptCheckpointError(RuntimeError):
    """A checkpoint exists but cannot be used: truncated, unreadable, or written by another config."""


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Serialize ``state`` with torch.save into memory, then write it atomically to ``path``."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(Path(path), buffer.getvalue())


def load_checkpoint(path: Path, expected_config_hash: str) -> dict[str, Any]:
    """The state saved at ``path``; CorruptCheckpointError naming the path if it is unusable.

    A checkpoint of a different config (hash mismatch) is refused rather than silently reused.
    """
    try:
        state = torch.load(Path(path), map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as error:
        raise CorruptCheckpointError(
            f"checkpoint {path} cannot be read ({type(error).__name__}: {error}); it may be truncated. "
            f"Delete it to restart the run from scratch."
        ) from error
    if not isinstance(state, dict) or "config_hash" not in state:
        raise CorruptCheckpointError(f"checkpoint {path} is not an apt checkpoint (no config_hash)")
    if state["config_hash"] != expected_config_hash:
        raise CorruptCheckpointError(
            f"checkpoint {path} belongs to config {state['config_hash']}, not {expected_config_hash}"
        )
    return state
