"""The results store: one JSON record per run, written atomically; nothing shared between writers.

Layout: ``<results_dir>/<benchmark>/<run_id>.json`` where ``run_id`` names the method, optimizer, seed and
the config hash. Many processes (or Ray workers) may write into one store at once: each writes only its
own file, via a temporary file in the same folder and ``os.replace``, so a reader sees the old record,
the new record, or none, never a partial one.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

RECORD_SCHEMA = 1


class CorruptRecordError(ValueError):
    """A record file exists but cannot be read as a complete record (truncated, edited, other schema)."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that ``path`` is never seen half-written (temp file + os.replace)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp creates the file private (0600); results are shared (other users, cluster workers, git).
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_record(path: Path, record: dict[str, Any]) -> None:
    """Atomically write one run record as JSON."""
    atomic_write_bytes(path, (json.dumps(record, indent=1, sort_keys=False) + "\n").encode())


def read_record(path: Path) -> dict[str, Any]:
    """One record; CorruptRecordError naming the path if it is not a complete record of this schema."""
    try:
        record = json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CorruptRecordError(
            f"results record {path} is not valid JSON ({error}); it may be truncated. "
            f"Delete it to recompute the run."
        ) from error
    for key in ("schema", "run_id", "config", "config_hash", "status", "final"):
        if key not in record:
            raise CorruptRecordError(f"results record {path} lacks the field {key!r}; delete it to recompute the run")
    if record["schema"] != RECORD_SCHEMA:
        raise CorruptRecordError(f"results record {path} has schema {record['schema']}, expected {RECORD_SCHEMA}")
    return record


def divergence_path(record_path_: Path) -> Path:
    """Where the divergence note of a run lives: next to its (never written) record, ``<run_id>.diverged``.

    A run whose loss or gradient became NaN/inf leaves this note instead of a record. It is a result (that
    learning rate diverges under that seed), so sweeps do not train the run again; the suffix keeps it out of
    ``record_paths``, so no table mistakes it for a finished run.
    """
    return Path(record_path_).with_suffix(".diverged")


def write_divergence(path: Path, note: dict[str, Any]) -> None:
    """Atomically write a divergence note (JSON) at ``path`` (``divergence_path`` of the run's record)."""
    atomic_write_bytes(path, (json.dumps(note, indent=1) + "\n").encode())


def read_divergence(path: Path) -> dict[str, Any]:
    """A divergence note; CorruptRecordError naming the path if it is not one."""
    try:
        note = json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CorruptRecordError(f"divergence note {path} is not valid JSON ({error}); delete it to retrain the run") \
            from error
    for key in ("run_id", "config", "error", "status"):
        if key not in note:
            raise CorruptRecordError(f"divergence note {path} lacks the field {key!r}; delete it to retrain the run")
    return note


def record_paths(results_dir: Path, benchmark: str | None = None) -> Iterator[Path]:
    """Every record file under ``results_dir`` (optionally one benchmark's), sorted."""
    root = Path(results_dir)
    pattern = f"{benchmark}/*.json" if benchmark else "*/*.json"
    yield from sorted(root.glob(pattern))


def load_records(results_dir: Path, benchmark: str | None = None) -> list[dict[str, Any]]:
    """All records under ``results_dir`` (optionally one benchmark's)."""
    return [read_record(p) for p in record_paths(results_dir, benchmark)]


def records_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per run: the config fields, wall time and every final test metric (column ``test/<name>``)."""
    rows = []
    for record in records:
        config = record["config"]
        row = {
            "run_id": record["run_id"],
            "benchmark": config["benchmark"],
            "profile": config["profile"],
            "method": config["method"],
            "optimizer": config["optimizer"],
            "seed": config["seed"],
            "stl_task": config.get("stl_task"),
            "wall_seconds": record.get("wall_seconds"),
        }
        for name, value in record["final"]["test_metrics"].items():
            row[f"test/{name}"] = value
        rows.append(row)
    return pd.DataFrame(rows)
