"""apt.ablations on hand-made records: Δm% per run, the paired differences of APT against its base and of the
fixed-β control against APT, and the verdict the book prints, each worked out by hand below."""

from __future__ import annotations

import pytest

from apt.ablations import ablation_runs, finding_texts, stored_ablations
from apt.grids import APT_ADAM_VARIANTS, FIXED_BETA_VARIES, Variant, ablation_arms, ablation_config

INFO = {"task_names": ["left", "right"], "metric_names": ["acc_left", "acc_right"],
        "metric_higher_better": [True, True], "metric_task": [0, 1]}
SEEDS = (0, 1, 2)
BASE, DEFAULT, OTHER = APT_ADAM_VARIANTS[0], APT_ADAM_VARIANTS[1], APT_ADAM_VARIANTS[2]
CONTROL = Variant("fixed β = 0.63 (APT's mean)", "apt_adam", (("beta_min", 0.63), ("beta_max", 0.63)),
                  FIXED_BETA_VARIES)
STL_ACCURACY = 0.8


def accuracy(delta_m: float) -> float:
    """The accuracy on both tasks that gives ``delta_m`` against the 0.8 baseline: Δm% = −100 (x − b) / b."""
    return STL_ACCURACY * (1 - delta_m / 100)


def record(config, test, beta=(0.9, 0.9)):
    return {"run_id": config.run_id, "config": {"seed": config.seed, "stl_task": config.stl_task,
                                                "benchmark": config.benchmark, "profile": config.profile,
                                                "optimizer": config.optimizer},
            "benchmark": INFO, "final": {"test_metrics": {"acc_left": test, "acc_right": test}},
            "diagnostics": {"beta_mean": list(beta), "step": list(range(len(beta))),
                            "instant_gradient_share": [0.1, 0.2, 0.3], "update_instant_cosine": [0.5, 0.7, 0.9]}}


def build(delta_ms: dict[Variant, tuple[float, ...]]):
    """(arms, records, stl records) of the apt_adam family with the given Δm% per variant and seed."""
    pairs = [(v, ablation_config(v, s, "smoke")) for v in delta_ms for s in SEEDS]
    records = {c.run_id: record(c, accuracy(delta_ms[v][c.seed]), beta=(0.5, 0.7) if v == DEFAULT else (0.9, 0.9))
               for v, c in pairs}
    stl = [{"config": {"benchmark": "multi_fashion", "stl_task": k, "seed": s, "profile": "smoke",
                       "optimizer": "adam"},
            "benchmark": INFO, "final": {"test_metrics": {"acc_left": STL_ACCURACY, "acc_right": STL_ACCURACY}}}
           for s in SEEDS for k in (0, 1)]
    return {"apt_adam": pairs}, records, stl


def test_runs_keep_delta_m_mean_beta_and_the_diagnostics_medians() -> None:
    arms, records, stl = build({BASE: (0, 0, 0), DEFAULT: (4, 5, 6)})
    ablations = ablation_runs(arms, records, stl, "multi_fashion")
    default = ablations.runs[ablations.runs["arm"] == DEFAULT.label].set_index("seed")
    assert default["delta_m"].to_list() == pytest.approx([4, 5, 6])
    assert default["mean beta"].to_list() == pytest.approx([0.6] * 3)
    assert default["share"].to_list() == pytest.approx([0.2] * 3)
    assert default["fidelity"].to_list() == pytest.approx([0.7] * 3)
    assert ablations.mean_beta("apt_adam") == pytest.approx(0.6)
    # 10% held at 0.9: the adapted tensors' mean is (0.6 − 0.09) / 0.9
    assert ablations.mean_beta("apt_adam", held=(0.1, 0.9)) == pytest.approx(0.51 / 0.9)
    assert list(ablations.default_beta["apt_adam"].columns) == list(SEEDS)
    assert ablations.base_arm["apt_adam"] == BASE.label and ablations.default_arm["apt_adam"] == DEFAULT.label
    assert ablations.control_arm["apt_adam"] is None and ablations.seeds == list(SEEDS)


def test_apt_against_base_is_paired_by_seed() -> None:
    # d_s = 4, 5, 6: mean 5, sd 1, half-width t(0.975, 2) / √3 = 2.484
    arms, records, stl = build({BASE: (0, 0, 0), DEFAULT: (4, 5, 6), OTHER: (1, -1, 0)})
    ablations = ablation_runs(arms, records, stl, "multi_fashion")
    row = ablations.apt_vs_base("apt_adam")
    assert row["difference"] == pytest.approx(5.0) and row["ci95"] == pytest.approx(2.484, abs=1e-3)
    assert row["resolved"]
    table = ablations.vs_base("apt_adam").set_index("arm")
    assert list(table.index) == [DEFAULT.label, OTHER.label]
    assert table.loc[OTHER.label, "difference"] == pytest.approx(0.0) and not table.loc[OTHER.label, "resolved"]
    assert ablations.finding_text("apt_adam").endswith("; the fixed-β control is not stored")


@pytest.mark.parametrize(("control", "verdict"), [
    ((4.5, 5.5, 5.0), "do not show that APT-Adam's effect needs the adaptivity"),  # d = 0.5, 0.5, −1: mean 0
    ((0.0, 1.0, 2.0), "adapting β, not only its smaller mean, changes the result"),  # d = −4 each: resolved
])
def test_the_verdict_follows_the_control_interval(control, verdict) -> None:
    arms, records, stl = build({BASE: (0, 0, 0), DEFAULT: (4, 5, 6), CONTROL: control})
    ablations = ablation_runs(arms, records, stl, "multi_fashion")
    assert ablations.control_beta["apt_adam"] == 0.63
    text = ablations.finding_text("apt_adam")
    assert text.startswith("APT-Adam − Adam: +5.00 ± 2.48 points (resolved); Adam at a fixed β = 0.63")
    assert text.endswith(verdict)


def test_neither_difference_resolved_is_said_so() -> None:
    arms, records, stl = build({BASE: (0, 0, 0), DEFAULT: (1, -1, 0.5), CONTROL: (0, 1, -1)})
    text = ablation_runs(arms, records, stl, "multi_fashion").finding_text("apt_adam")
    assert "(unresolved)" in text and text.endswith("neither difference is resolved")


def test_a_missing_record_is_named() -> None:
    arms, records, stl = build({BASE: (0, 0, 0), DEFAULT: (4, 5, 6)})
    missing = arms["apt_adam"][-1][1]
    del records[missing.run_id]
    with pytest.raises(KeyError, match=missing.run_id):
        ablation_runs(arms, records, stl, "multi_fashion")


def test_an_empty_store_has_no_complete_seed_and_says_not_measured(tmp_path) -> None:
    stored = stored_ablations("smoke", results_dir=tmp_path)
    n_runs = sum(len(pairs) for pairs in ablation_arms("smoke", results_dir=tmp_path).values())
    assert stored.ablations is None and stored.complete_seeds == [] and stored.stored == 0
    assert stored.total == n_runs + 2  # + the two single-task baselines of seed 0
    assert stored.coverage.endswith("complete seeds: none")
    assert all("not measured" in text for text in finding_texts(None).values())
