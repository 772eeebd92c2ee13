"""Δm% against same-profile STL records, confidence intervals and paired differences, on hand-made records."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

import numpy as np
import pandas as pd

from apt.analysis import (
    MissingBaselineError,
    format_results,
    mean_ci,
    paired_difference,
    results_table,
    runs_frame,
    stl_baseline,
)
from apt.metrics import delta_m
from apt.store import load_records
from apt.sweep import grid, run_local

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


def _three_arms():
    records = [*STL]
    accuracies = {("mgda", "adam"): [(0.80, 0.70), (0.82, 0.74)], ("ls", "adam"): [(0.90, 0.60), (0.92, 0.62)],
                  ("ls", "apt_adam"): [(0.70, 0.50), (0.70, 0.50)]}
    for (method, optimizer), by_seed in accuracies.items():
        records += [_record(method, optimizer, seed, acc) for seed, acc in enumerate(by_seed)]
    return records


def test_results_table_by_hand():
    table = results_table(runs_frame(_three_arms(), "multi_mnist"), "multi_mnist")
    # Rows in apt.mtl.METHODS × apt.optim.OPTIMIZERS order, whatever the record order.
    assert list(table.index) == [("ls", "adam"), ("ls", "apt_adam"), ("mgda", "adam")]
    row = table.loc[("mgda", "adam")]
    assert row["acc_left"] == pytest.approx(0.81) and row["acc_right"] == pytest.approx(0.72)
    # t_{0.975, 1} = 12.706204736174698; s = 0.01·√2 for acc_left, so half-width = t · 0.01
    assert row["acc_left_ci"] == pytest.approx(12.706204736174698 * 0.01)
    assert table.loc[("ls", "apt_adam"), "acc_left_ci"] == pytest.approx(0.0)
    assert row["n_seeds"] == 2
    # Δm% per run against base [0.91, 0.81], then averaged: mean of -((0.80/0.91 - 1) + (0.70/0.81 - 1))/2 · 100 …
    by_run = [delta_m(acc, [0.91, 0.81], [True, True]) for acc in [(0.80, 0.70), (0.82, 0.74)]]
    assert row["delta_m"] == pytest.approx(np.mean(by_run))
    # by hand: run 1 −(−0.120879 − 0.135802)/2 · 100 = 12.834, run 2 −(−0.098901 − 0.086420)/2 · 100 = 9.266
    assert row["delta_m"] == pytest.approx((12.834 + 9.266) / 2, abs=1e-3)
    # Dense MR over the three arms on the mean metrics: acc_left ls/adam 0.91 > mgda 0.81 > ls/apt_adam 0.70,
    # acc_right mgda 0.72 > ls/adam 0.61 > ls/apt_adam 0.50.
    assert table["mean_rank"].to_dict() == {("ls", "adam"): 1.5, ("ls", "apt_adam"): 3.0, ("mgda", "adam"): 1.5}
    within = results_table(runs_frame(_three_arms(), "multi_mnist"), "multi_mnist", rank_within="optimizer")
    assert within["mean_rank"].to_dict() == {("ls", "adam"): 1.5, ("ls", "apt_adam"): 1.0, ("mgda", "adam"): 1.5}
    assert table.attrs["delta_m_baseline"].startswith("STL trained with adam, profile cpu")


def test_results_table_without_delta_m_and_bad_input():
    runs = runs_frame([_record("ls", "adam", 0, (0.5, 0.5))], "multi_mnist", with_delta_m=False)
    table = results_table(runs, "multi_mnist")
    assert "delta_m" not in table.columns and np.isnan(table.iloc[0]["acc_left_ci"])
    assert table.attrs["delta_m_baseline"] is None
    assert format_results(table).iloc[0]["acc_left"] == "0.5"
    with pytest.raises(ValueError, match="no runs"):
        results_table(runs.iloc[:0], "multi_mnist")
    with pytest.raises(ValueError, match=r"lack the column\(s\) \['f1_5_o_Clock_Shadow'"):
        results_table(runs, "celeba")
    with pytest.raises(ValueError, match="rank_within"):
        results_table(runs, "multi_mnist", rank_within="seed")


def test_format_results_folds_intervals():
    table = results_table(runs_frame(_three_arms(), "multi_mnist"), "multi_mnist")
    shown = format_results(table, digits=2)
    assert list(shown.columns) == ["acc_left", "acc_right", "delta_m", "n_seeds", "mean_rank"]
    assert shown.loc[("mgda", "adam"), "acc_left"] == "0.81 ± 0.13"


@pytest.fixture(scope="module")
def smoke_store(tmp_path_factory):
    """A real 2-method × 2-seed Multi-MNIST smoke grid with its STL runs (shrunk further: 8 runs), trained
    into a fresh folder."""
    store = tmp_path_factory.mktemp("results")
    shrink = {"epochs": 1, "n_train": 128, "n_val": 64, "n_test": 128}
    configs = grid("multi_mnist", ["ls", "mgda"], ["adam"], [0, 1], profile="smoke", protocol_overrides=shrink)
    report = run_local(configs, results_dir=store, progress=False)
    assert not report.failed and len(report.done) == 8
    return store


def test_results_table_renders_real_smoke_records(smoke_store):
    records = load_records(smoke_store, "multi_mnist")
    table = results_table(runs_frame(records, "multi_mnist"), "multi_mnist")
    assert list(table.index) == [("ls", "adam"), ("mgda", "adam")]
    assert (table["n_seeds"] == 2).all() and set(table["mean_rank"]) <= {1.0, 1.5, 2.0}
    base, label = stl_baseline(records, "multi_mnist")
    assert table.attrs["delta_m_baseline"] == label and "smoke" in label
    for (method, optimizer), row in table.iterrows():
        mine = [r["final"]["test_metrics"] for r in records
                if r["config"]["stl_task"] is None and r["config"]["method"] == method]
        assert row["acc_left"] == pytest.approx(np.mean([m["acc_left"] for m in mine]))
        by_run = [delta_m([m["acc_left"], m["acc_right"]], base, [True, True]) for m in mine]
        assert row["delta_m"] == pytest.approx(np.mean(by_run))
        assert row["delta_m_ci"] == pytest.approx(mean_ci(by_run)[1])


def test_signed_pm_and_resolved_signs_by_hand() -> None:
    from apt.analysis import resolved_signs, signed_pm

    assert signed_pm(3.994, 2.951) == "+3.99 ± 2.95" and signed_pm(-0.1, float("nan")) == "-0.10"
    assert signed_pm(float("nan"), 1.0) == ""
    frame = pd.DataFrame({"difference": [-1.0, -2.0, 3.0, 0.5], "resolved": [True, False, True, True]})
    assert resolved_signs(frame) == (1, 2)
