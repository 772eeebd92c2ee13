"""Claim-2 tables from records: hand-built records with known answers, and one real smoke run end to end."""

from __future__ import annotations

import math

import pytest
import torch

from apt.config import Config
from apt.experiment import run
from apt.optim.newton_schulz import NS_SINGULAR_VALUE_BAND, effective_rank
from apt.optim.spectra import alignment_frame, effective_rank_frame, spectra_frame, spectrum_steps


def _record(diagnostics: dict, *, optimizer: str = "adam", optimizer_hp: dict | None = None,
            diagnostics_every: int = 1) -> dict:
    return {
        "run_id": "hand-built",
        "config": {"optimizer": optimizer, "optimizer_hp": optimizer_hp or {}, "diagnostics_every": diagnostics_every},
        "benchmark": {"task_names": ["left", "right", "third"], "trained_tasks": [0, 1]},
        "diagnostics": diagnostics,
    }


def test_alignment_frame_golden_values():
    record = _record({"step": [0, 5], "task_alignment": [[0.5, 0.1], [-0.2, 0.3]],
                      "mtl_task_cosines": [[0.9, 0.7], None]})
    frame = alignment_frame(record)
    assert list(frame["step"]) == [0, 5]
    assert list(frame["a_left"]) == [0.5, -0.2] and list(frame["a_right"]) == [0.1, 0.3]
    assert frame["spread"].tolist() == pytest.approx([0.4, 0.5])
    assert frame["mean"].tolist() == pytest.approx([0.3, 0.05])
    assert frame["min"].tolist() == pytest.approx([0.1, -0.2])
    assert frame["std"].tolist() == pytest.approx([0.2, 0.25])  # two tasks: std = spread / 2
    assert frame.loc[0, "instant_spread"] == pytest.approx(0.2)
    assert frame.loc[0, "instant_mean"] == pytest.approx(0.8)
    assert math.isnan(frame.loc[1, "instant_spread"]) and math.isnan(frame.loc[1, "c_left"])


def test_alignment_frame_errors_name_the_problem():
    with pytest.raises(ValueError, match="no diagnostics"):
        alignment_frame(_record({}))
    with pytest.raises(ValueError, match="no task_alignment"):
        alignment_frame(_record({"step": [0]}))
    with pytest.raises(ValueError, match="unequal length"):
        alignment_frame(_record({"step": [0, 1], "task_alignment": [[0.1, 0.2]]}))
    with pytest.raises(ValueError, match="3 alignments for 2 trained tasks"):
        alignment_frame(_record({"step": [0], "task_alignment": [[0.1, 0.2, 0.3]]}))


def _spectra(scale: float) -> dict:
    return {"w": {"in": [4.0 * scale, 2.0 * scale, 2.0 * scale], "out": [1.0, 1.0, 1.0], "instant": [1.0, 0.0, 0.0]}}


def test_spectrum_steps_are_the_multiples_of_the_lcm():
    """diagnostics every 2 steps, spectra every 3: both at 0 and 6 of the recorded 0, 2, …, 10."""
    record = _record({"step": [0, 2, 4, 6, 8, 10], "muon_singular_values": [_spectra(1.0), _spectra(2.0)]},
                     optimizer="muon", optimizer_hp={"spectrum_every": 3}, diagnostics_every=2)
    assert spectrum_steps(record) == [0, 6]
    frame = spectra_frame(record)
    assert len(frame) == 2 * 3 * 3
    second_in = frame[(frame.step == 6) & (frame.kind == "in")]
    assert second_in["sigma"].tolist() == [8.0, 4.0, 4.0]
    assert second_in["relative"].tolist() == [1.0, 0.5, 0.5]
    ranks = effective_rank_frame(record).set_index(["step", "kind"])
    p = torch.tensor([0.5, 0.25, 0.25], dtype=torch.float64)
    assert ranks.loc[(0, "in"), "effective_rank"] == pytest.approx(math.exp(float(-(p * p.log()).sum())))
    assert ranks.loc[(0, "out"), "rank_fraction"] == pytest.approx(1.0)
    assert ranks.loc[(6, "instant"), "effective_rank"] == pytest.approx(1.0)


def test_spectrum_steps_refuse_a_count_that_does_not_fit():
    record = _record({"step": [0, 1, 2, 3], "muon_singular_values": [_spectra(1.0)]}, optimizer="muon")
    with pytest.raises(ValueError, match="1 stored spectra, but 4 steps"):
        spectrum_steps(record)
    with pytest.raises(ValueError, match="records no Muon spectra"):
        spectrum_steps(_record({"step": [0]}, optimizer="adam"))


def test_a_real_smoke_run_end_to_end(tmp_path):
    """LS + Muon on Multi-MNIST (smoke): the tables agree with the scalar diagnostics the runner stored."""
    config = Config(benchmark="multi_mnist", method="ls", optimizer="muon", lr=1e-3, profile="smoke",
                    diagnostics=True, diagnostics_every=2, optimizer_hp={"spectrum_every": 4})
    record = run(config, results_dir=tmp_path / "results", checkpoint_dir=tmp_path / "runs", progress=False)
    stored = record["diagnostics"]
    alignment = alignment_frame(record)
    assert alignment["step"].tolist() == list(range(0, record["steps"], 2))
    assert alignment["spread"].tolist() == pytest.approx([2 * s for s in stored["task_alignment_std"]], abs=1e-6)
    assert spectrum_steps(record) == list(range(0, record["steps"], 4))
    spectra = spectra_frame(record)
    assert set(spectra["matrix"]) == {"shared.conv2.weight", "shared.fc.weight"}
    low, high = NS_SINGULAR_VALUE_BAND
    top_out = spectra[(spectra.kind == "out") & (spectra["index"] == 0)]["sigma"]
    assert bool(((top_out > low - 0.05) & (top_out < high + 0.05)).all())
    ranks = effective_rank_frame(record)
    for kind in ("in", "out", "instant"):
        mean_rank = ranks[ranks.kind == kind].groupby("step")["effective_rank"].mean().tolist()
        assert mean_rank == pytest.approx(stored[f"muon_effective_rank_{kind}"], rel=1e-6)
    first_in = spectra[(spectra.step == 0) & (spectra.kind == "in") & (spectra.matrix == "shared.fc.weight")]
    assert effective_rank(torch.tensor(first_in["sigma"].tolist())) == pytest.approx(
        ranks.set_index(["step", "matrix", "kind"]).loc[(0, "shared.fc.weight", "in"), "effective_rank"])
