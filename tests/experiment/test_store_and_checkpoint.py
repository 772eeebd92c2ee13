"""Records and checkpoints: atomic writes, clear errors on truncated or foreign files."""

from __future__ import annotations

import json

import pytest
import torch

from apt.checkpoint import CorruptCheckpointError, load_checkpoint, save_checkpoint
from apt.config import Config
from apt.experiment import run
from apt.store import (RECORD_SCHEMA, CorruptRecordError, atomic_write_bytes, read_divergence, read_record,
                       write_record)


def _record() -> dict:
    return {"schema": RECORD_SCHEMA, "run_id": "ls-adam-s0-abc", "config": {}, "config_hash": "abc",
            "status": "complete", "final": {"test_metrics": {"acc": 0.5}}}


def test_record_round_trip_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "bench" / "run.json"
    write_record(path, _record())
    assert read_record(path) == _record()
    assert [p.name for p in path.parent.iterdir()] == ["run.json"]
    assert path.stat().st_mode & 0o777 == 0o644, "records are readable by others (shared stores, git)"


def test_truncated_record_is_reported_with_its_path(tmp_path):
    path = tmp_path / "run.json"
    text = json.dumps(_record())
    path.write_text(text[: len(text) // 2])
    with pytest.raises(CorruptRecordError, match=str(path)):
        read_record(path)


def test_record_missing_a_field_is_reported(tmp_path):
    path = tmp_path / "run.json"
    record = _record()
    del record["final"]
    path.write_text(json.dumps(record))
    with pytest.raises(CorruptRecordError, match="'final'"):
        read_record(path)


def test_failed_atomic_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "file.bin"
    atomic_write_bytes(path, b"old")

    with pytest.raises(TypeError):
        atomic_write_bytes(path, object())  # type: ignore[arg-type]
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["file.bin"]


def test_checkpoint_round_trip(tmp_path):
    path = tmp_path / "run.pt"
    state = {"config_hash": "abc", "tensor": torch.arange(5), "epoch": 3}
    save_checkpoint(path, state)
    loaded = load_checkpoint(path, "abc")
    assert loaded["epoch"] == 3 and torch.equal(loaded["tensor"], torch.arange(5))


def test_truncated_checkpoint_is_an_error_not_a_restart(tmp_path):
    path = tmp_path / "run.pt"
    save_checkpoint(path, {"config_hash": "abc", "tensor": torch.randn(1000)})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptCheckpointError, match="truncated"):
        load_checkpoint(path, "abc")


def test_checkpoint_of_another_config_is_refused(tmp_path):
    path = tmp_path / "run.pt"
    save_checkpoint(path, {"config_hash": "abc"})
    with pytest.raises(CorruptCheckpointError, match="belongs to config abc"):
        load_checkpoint(path, "def")


def test_record_of_another_schema_is_reported(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps(_record() | {"schema": RECORD_SCHEMA + 1}))
    with pytest.raises(CorruptRecordError, match=f"{path} has schema {RECORD_SCHEMA + 1}, expected {RECORD_SCHEMA}"):
        read_record(path)


@pytest.mark.parametrize(("text", "message"), [('{"run_id": "x", "confi', "not valid JSON"),
                                               ('{"run_id": "x", "config": {}, "status": "diverged"}', "'error'")])
def test_corrupt_divergence_note_is_reported_with_its_path(tmp_path, text, message):
    path = tmp_path / "ls-sgd-s0-abc.diverged"
    path.write_text(text)
    with pytest.raises(CorruptRecordError, match=f"divergence note {path} .*{message}"):
        read_divergence(path)


@pytest.mark.slow
def test_a_run_refuses_a_corrupt_checkpoint_instead_of_restarting(tmp_path):
    """A truncated checkpoint stops the run with an error naming it; training from scratch would hide lost work."""
    config = Config(benchmark="multi_mnist", profile="smoke")
    checkpoint = tmp_path / "runs" / config.benchmark / f"{config.run_id}.pt"
    save_checkpoint(checkpoint, {"config_hash": config.config_hash, "tensor": torch.randn(1000)})
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])
    with pytest.raises(CorruptCheckpointError, match=str(checkpoint)):
        run(config, results_dir=tmp_path / "results", checkpoint_dir=tmp_path / "runs", progress=False)
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").rglob("*.json"))
    assert checkpoint.exists(), "the corrupt checkpoint is left for the user to inspect or delete"
