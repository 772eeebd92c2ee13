"""apt.results on hand-made records whose every table entry is computed by hand below."""

from __future__ import annotations

import math

import pytest

from apt.analysis import format_results
from apt.results import (benchmark_results, benchmarks_text, effect_counts, learning_curves, solver_failure_shares,
                         solver_failures, solver_failures_text)

INFO = {"task_names": ["left", "right"], "metric_names": ["acc_left", "acc_right"],
        "metric_higher_better": [True, True], "metric_task": [0, 1]}


def record(method, optimizer, seed, left, right, stl_task=None):
    metrics = {"acc_left": left, "acc_right": right}
    return {"config": {"benchmark": "multi_mnist", "method": method, "optimizer": optimizer, "seed": seed,
                       "stl_task": stl_task, "profile": "smoke"},
            "benchmark": INFO, "final": {"test_metrics": metrics}, "wall_seconds": 1.0,
            "epochs": [{"epoch": 0, "test_metrics": {"acc_left": left / 2, "acc_right": right / 2}},
                       {"epoch": 1, "test_metrics": metrics}]}


# STL baselines: 0.8 on both tasks for both seeds.
STL = [record("ls", "adam", s, 0.8, 0.8, stl_task=k) for s in (0, 1) for k in (0, 1)]
RUNS = [
    record("ls", "adam", 0, 0.8, 0.8), record("ls", "adam", 1, 0.8, 0.8),            # Δm 0, 0
    record("ls", "apt_adam", 0, 0.88, 0.8), record("ls", "apt_adam", 1, 0.84, 0.8),  # Δm −5, −2.5
    record("mgda", "adam", 0, 0.72, 0.8), record("mgda", "adam", 1, 0.72, 0.8),      # Δm 5, 5
    record("mgda", "apt_adam", 0, 0.72, 0.8), record("mgda", "apt_adam", 1, 0.72, 0.88),  # Δm 5, 0
]


def test_arms_effects_and_ranks_by_hand() -> None:
    res = benchmark_results(STL + RUNS, "multi_mnist")
    arms = res.arms.set_index(["method", "optimizer"])
    assert arms.loc[("ls", "apt_adam"), "delta_m"] == pytest.approx(-3.75)
    # t(0.975, 1) = 12.706; std of (−5, −2.5) = 1.7678; half-width = 12.706 · 1.7678 / √2
    assert arms.loc[("ls", "apt_adam"), "delta_m_ci"] == pytest.approx(12.7062 * 1.76777 / math.sqrt(2), rel=1e-4)
    assert arms.loc[("mgda", "adam"), "delta_m_ci"] == 0.0
    # seed-mean metrics: ls/adam (.8,.8), ls/apt (.86,.8), mgda/adam (.72,.8), mgda/apt (.72,.84)
    # left ranks: .86→1, .8→2, .72→3 ; right ranks: .84→1, .8→2
    assert arms.loc[("ls", "apt_adam"), "mean_rank"] == pytest.approx((1 + 2) / 2)
    assert arms.loc[("mgda", "apt_adam"), "mean_rank"] == pytest.approx((3 + 1) / 2)
    assert arms.loc[("ls", "adam"), "mean_rank"] == pytest.approx((2 + 2) / 2)
    effect = res.apt_effect.set_index("method")
    assert effect.loc["ls", "difference"] == pytest.approx(-3.75)   # (−5 − 0 + −2.5 − 0) / 2
    assert effect.loc["mgda", "difference"] == pytest.approx(-2.5)  # (0 + −5) / 2
    assert not effect["resolved"].any()  # two seeds with spread: both intervals contain 0
    assert effect_counts(res.apt_effect, "apt_adam") == {"better": 0, "worse": 0, "unresolved": 2, "methods": 2}


def test_a_consistent_effect_is_resolved_and_counted() -> None:
    runs = [r for r in RUNS if r["config"]["method"] == "ls"]
    runs[3] = record("ls", "apt_adam", 1, 0.88, 0.8)  # now −5 on both seeds: zero spread, resolved
    res = benchmark_results(STL + runs, "multi_mnist")
    assert effect_counts(res.apt_effect, "apt_adam") == {"better": 1, "worse": 0, "unresolved": 0, "methods": 1}


def test_formatted_table_and_curves() -> None:
    res = benchmark_results(STL + RUNS, "multi_mnist")
    table = format_results(res.arms.set_index(["method", "optimizer"]))
    assert table.loc[("mgda", "adam"), "acc_left"] == "0.72 ± 0"
    assert table.loc[("ls", "apt_adam"), "mean_rank"] == 1.5
    curves = learning_curves(STL + RUNS)
    assert len(curves) == 2 * len(RUNS)  # STL runs are left out
    first = curves[(curves.method == "ls") & (curves.optimizer == "apt_adam") & (curves.seed == 0)]
    assert first.sort_values("epoch")["value"].tolist() == pytest.approx([0.42, 0.84])


def test_no_mtl_records_is_an_error() -> None:
    with pytest.raises(ValueError, match="no MTL records"):
        benchmark_results(STL, "multi_mnist")


def test_method_vs_ls_by_hand() -> None:
    from apt.results import method_vs_ls

    table = method_vs_ls(benchmark_results(STL + RUNS, "multi_mnist")).set_index("optimizer")
    assert table.loc["adam", "difference"] == pytest.approx(5.0)      # (5 − 0, 5 − 0)
    assert bool(table.loc["adam", "resolved"])                        # no spread: resolved
    assert table.loc["apt_adam", "difference"] == pytest.approx(6.25)  # (5 − (−5), 0 − (−2.5)) / 2
    assert set(table["method"]) == {"mgda"}


def test_optimizer_and_apt_tables_by_hand() -> None:
    from apt.results import apt_table, optimizer_table

    results = {"multi_mnist": benchmark_results(STL + RUNS, "multi_mnist")}
    table = optimizer_table(results).loc["multi_mnist"]
    assert table.loc["adam", "LS Δm%"] == pytest.approx(0.0)
    assert table.loc["adam", "best method"] == "ls"
    assert table.loc["adam", "worse than LS"] == 1 and table.loc["adam", "better than LS"] == 0
    assert table.loc["apt_adam", "mean Δm% of methods"] == pytest.approx((-3.75 + 2.5) / 2)
    apt = apt_table(results).loc[("multi_mnist", "apt_adam")]
    assert apt["mean difference"] == pytest.approx((-3.75 - 2.5) / 2)
    assert apt["unresolved"] == 2 and apt["seeds"] == 2


def test_apt_counts_sum_over_benchmarks_and_read_as_one_sentence() -> None:
    import pandas as pd

    from apt.results import apt_counts, apt_table, effect_counts_text

    results = {"multi_mnist": benchmark_results(STL + RUNS, "multi_mnist")}
    one = apt_counts(apt_table(results), "apt_adam")
    assert one == {"better": 0, "worse": 0, "unresolved": 2, "methods": 2}
    # two benchmarks with the same rows: every count doubles
    twice = pd.concat([apt_table(results), apt_table(results).rename(index={"multi_mnist": "multi_fashion"})])
    assert apt_counts(twice, "apt_adam") == {k: 2 * v for k, v in one.items()}
    assert apt_counts(apt_table(results), "apt_muon") is None and apt_counts(pd.DataFrame(), "apt_adam") is None
    assert effect_counts_text({"better": 3, "worse": 1, "unresolved": 10, "methods": 14}) == \
        "3 better, 1 worse and 10 unresolved of 14"
    assert effect_counts_text(one, "pairs") == "0 better, 0 worse and 2 unresolved of 2 pairs"


def test_benchmarks_text_names_each_table_with_the_seeds_it_averages():
    two_seeds = benchmark_results(STL + RUNS, "multi_mnist")
    one_seed = benchmark_results([r for r in STL + RUNS if r["config"]["seed"] == 0], "multi_mnist")
    assert benchmarks_text({"multi_mnist": two_seeds, "qm9": one_seed}) == "multi_mnist (2 seeds), qm9 (1 seed)"
    assert benchmarks_text({}) == "none"


def test_diagnostic_medians_by_hand() -> None:
    from apt.results import diagnostic_medians

    def run(share, cosine, momentum):
        return {"diagnostics": {"instant_gradient_share": share, "update_instant_cosine": cosine,
                                "momentum_cosine": momentum}}

    medians = diagnostic_medians({("mgda", "adam"): run([0.2, 0.9, 0.5], [0.1, 0.3, 0.2], [0.0, -0.4, 0.2, -0.1]),
                                  ("mgda", "sgd"): run([1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0])})
    assert list(medians.index) == ["adam", "sgd"]
    assert medians.loc["adam", ("share", "mgda")] == pytest.approx(0.5)
    assert medians.loc["adam", ("fidelity", "mgda")] == pytest.approx(0.2)
    # the first step's 0 is left out: median of (−0.4, 0.2, −0.1)
    assert medians.loc["adam", ("momentum_cosine", "mgda")] == pytest.approx(-0.1)


def test_diagnostic_medians_per_seed_and_their_range_by_hand() -> None:
    from apt.results import diagnostic_medians_per_seed, lowest_to_highest

    def run(share, cosine):
        return {"diagnostics": {"instant_gradient_share": share, "update_instant_cosine": cosine,
                                "momentum_cosine": [0.0, 0.5, 0.5]}}

    per_run = diagnostic_medians_per_seed({("ls", "adam", 0): run([0.5], [0.3, 0.1, 0.2]),
                                           ("mgda", "adam", 0): run([0.6], [0.4]),
                                           ("ls", "adam", 1): run([0.7], [0.4, 0.4, 0.0])})
    assert len(per_run) == 3 and set(per_run.columns) >= {"seed", "optimizer", "method", "share", "fidelity"}
    ls = per_run[per_run["method"] == "ls"].set_index("seed")["fidelity"]
    assert ls.to_dict() == pytest.approx({0: 0.2, 1: 0.4})
    mean = per_run.groupby("method")["fidelity"].mean()
    assert lowest_to_highest(mean) == "0.30 (ls) to 0.40 (mgda)"


def test_a_benchmark_with_one_seed_is_tabulated_but_not_counted() -> None:
    import pandas as pd

    from apt.results import apt_counts, apt_table, counted_benchmarks, optimizer_table, vs_ls_counts

    two = {"multi_mnist": benchmark_results(STL + RUNS, "multi_mnist")}
    one = {"qm9": benchmark_results([r for r in STL + RUNS if r["config"]["seed"] == 0], "multi_mnist")}
    by_apt = pd.concat([apt_table(two), apt_table(one)])
    by_optimizer = pd.concat([optimizer_table(two), optimizer_table(one)])
    assert counted_benchmarks(by_apt) == "multi_mnist" and counted_benchmarks(apt_table(one)) == "none"
    assert apt_counts(by_apt, "apt_adam") == apt_counts(apt_table(two), "apt_adam")
    assert apt_counts(apt_table(one), "apt_adam") is None
    # tabulated, but its counts are missing rather than "unresolved": nothing was tested
    assert apt_table(one)[["better", "worse", "unresolved"]].isna().all().all()
    assert optimizer_table(one)[["better than LS", "worse than LS"]].isna().all().all()
    assert apt_table(two)[["better", "worse", "unresolved"]].notna().all().all()
    assert vs_ls_counts(by_optimizer, "adam") == vs_ls_counts(optimizer_table(two), "adam")
    assert vs_ls_counts(optimizer_table(one), "adam") is None
    # by hand (test_optimizer_and_apt_tables_by_hand): under Adam the one other method is resolvedly worse than LS
    assert vs_ls_counts(optimizer_table(two), "adam") == {"better": 0, "worse": 1, "methods": 1}


def _solving(method, optimizer, seed, failures_per_epoch, steps=50):
    made = record(method, optimizer, seed, 0.8, 0.8)
    made["steps"] = steps
    for epoch, failures in zip(made["epochs"], failures_per_epoch):
        epoch["solver_failures"] = failures
    return made


def test_solver_failures_count_only_methods_that_solve_by_hand() -> None:
    records = [*STL, *RUNS,  # LS and MGDA have no per-step solver: not listed
               _solving("nash_mtl", "muon", 0, [3, 1]), _solving("nash_mtl", "muon", 1, [0, 2]),
               _solving("nash_mtl", "adam", 0, [0, 0]), _solving("cagrad", "adam", 0, [1, 0], steps=40)]
    table = solver_failures(records).set_index(["method", "optimizer"])
    assert list(table.index) == [("nash_mtl", "muon"), ("nash_mtl", "adam"), ("cagrad", "adam")]
    assert table.loc[("nash_mtl", "muon")].tolist() == [2, 100, 6, pytest.approx(6.0)]
    assert table.loc[("cagrad", "adam"), "share (%)"] == pytest.approx(2.5)
    assert solver_failures_text(solver_failures(records)) == (
        "failed solves in 2 of the 3 arms of nash_mtl, cagrad; the most: nash_mtl + muon 6 of 100 steps (6.0%); "
        "cagrad + adam 1 of 40 steps (2.5%)")
    shares = solver_failure_shares(solver_failures(records))
    assert list(shares.index) == ["nash_mtl", "cagrad"] and list(shares.columns) == ["muon", "adam"]
    assert shares.loc["nash_mtl", "muon"] == pytest.approx(6.0) and math.isnan(shares.loc["cagrad", "muon"])
    assert solver_failures_text(solver_failures([*STL, *RUNS, records[-2]])) == (
        "no failed solve over 1 arm of nash_mtl")


def test_solver_failures_of_no_solving_method_say_not_measured() -> None:
    assert solver_failures([*STL, *RUNS]).empty
    assert solver_failures_text(solver_failures(RUNS)).startswith("not measured")
