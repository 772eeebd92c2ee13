"""Δm% against same-profile STL records, confidence intervals and paired differences, on hand-made records."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apt.analysis import MissingBaselineError, mean_ci, paired_difference, runs_frame, stl_baseline

INFO = {"task_names": ["left", "right"], "metric_names": ["acc_left", "acc_right"],
        "metric_higher_better": [True, True], "metric_task": [0, 1]}


def _record(method, optimizer, seed, acc, stl_task=None):
    return {"config": {"benchmark": "multi_mnist", "method": method, "optimizer": optimizer, "seed": seed,
                       "stl_task": stl_task, "profile": "cpu"},
            "benchmark": INFO, "final": {"test_metrics": {"acc_left": acc[0], "acc_right": acc[1]}},
            "wall_seconds": 1.0}


STL = [_record("ls", "adam", 0, (0.90, 0.10), 0), _record("ls", "adam", 0, (0.10, 0.80), 1),
       _record("ls", "adam", 1, (0.92, 0.10), 0), _record("ls", "adam", 1, (0.10, 0.82), 1)]


def test_baseline_takes_each_metric_from_its_own_task_and_averages_seeds():
    base, label = stl_baseline(STL, "multi_mnist")
    assert base == pytest.approx([0.91, 0.81])
    assert "seeds [0, 1]" in label and "cpu" in label


def test_delta_m_by_hand():
    frame = runs_frame([*STL, _record("mgda", "adam", 0, (0.91 * 1.1, 0.81 * 0.9))], "multi_mnist")
    # higher is better: -(+10% - 10%)/2 = 0
    assert frame.loc[0, "delta_m"] == pytest.approx(0.0, abs=1e-9)
    frame = runs_frame([*STL, _record("mgda", "adam", 0, (0.91 * 0.98, 0.81 * 0.98))], "multi_mnist")
    assert frame.loc[0, "delta_m"] == pytest.approx(2.0)


def test_missing_task_baseline_is_named():
    with pytest.raises(MissingBaselineError, match="right"):
        stl_baseline(STL[:1], "multi_mnist")


def test_mean_ci_by_hand():
    mean, half, n = mean_ci([1.0, 2.0, 3.0])
    # t_{0.975, 2} = 4.302652729911275, s = 1, sqrt(3)
    assert (mean, n) == (2.0, 3) and half == pytest.approx(4.302652729911275 / math.sqrt(3))
    assert math.isnan(mean_ci([1.0])[1])


@given(st.lists(st.floats(-1e3, 1e3), min_size=2, max_size=20), st.floats(-10, 10))
def test_mean_ci_is_shift_equivariant(values, shift):
    mean, half, _ = mean_ci(values)
    mean2, half2, _ = mean_ci([v + shift for v in values])
    assert mean2 == pytest.approx(mean + shift, abs=1e-6)
    assert half2 == pytest.approx(half, abs=1e-6)


def test_paired_difference_pairs_by_seed_and_flags_resolution():
    records = [*STL]
    for seed, (a, b) in enumerate([(0.80, 0.70), (0.81, 0.71), (0.79, 0.69)]):
        records += [_record("mgda", "apt_adam", seed, (a, a)), _record("mgda", "adam", seed, (b, b))]
    frame = runs_frame(records, "multi_mnist")
    diff = paired_difference(frame, "acc_left", column="optimizer", treatment="apt_adam", control="adam")
    row = diff.iloc[0]
    assert row["difference"] == pytest.approx(0.10) and row["n_seeds"] == 3
    assert row["ci95"] == pytest.approx(0.0, abs=1e-9) and row["resolved"]
