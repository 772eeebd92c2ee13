"""A benchmark grid's results as the book's tables: per-arm means with intervals, mean rank, APT's effect.

An *arm* is one (method, optimizer) pair; its runs differ only by seed. Every quantity is computed from the
stored records of one grid (``apt.grids.load_grid``) and the single-task baselines among them:

- per run: the test metrics x_m at the benchmark's reporting rule, and Δm% = (100/M) Σ_m (−1)^{s_m}(x_m − b_m)/b_m
  against the same-profile STL baselines b (``apt.analysis.stl_baseline``);
- per arm: mean and 95% Student-t half-width over seeds of each metric and of Δm%;
- MR: the lineage's mean rank of the arms on their seed-mean metrics (``apt.metrics.mean_rank``), over every arm
  of the table, so it is comparable only within one benchmark's table;
- APT's effect: d_s = Δm%(method, apt_X, s) − Δm%(method, X, s), paired by seed, per method and base optimizer X.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from apt.analysis import MIN_SEEDS_FOR_INTERVAL, paired_difference, resolved_signs, results_table, runs_frame
from apt.page import counted



@dataclass
class BenchmarkResults:
    """The tables of one benchmark. ``runs``: one row per MTL run; ``arms``: ``apt.analysis.results_table`` with
    (method, optimizer) as columns (per metric and ``delta_m``: mean, ``<name>_ci`` half-width; ``n_seeds``,
    ``mean_rank``); ``apt_effect``: one row per (APT variant, method)."""

    benchmark: str
    metric_names: list[str]
    runs: pd.DataFrame
    arms: pd.DataFrame
    apt_effect: pd.DataFrame
    baseline_label: str


def benchmark_results(records: Sequence[dict[str, Any]], benchmark: str,
                      apt_pairs: dict[str, str] | None = None) -> BenchmarkResults:
    """The tables of ``benchmark`` from its records (MTL runs and STL baselines of one profile).

    ``apt_pairs``: APT optimizer -> its base optimizer (default: apt_adam -> adam, apt_muon -> muon).
    """
    from apt.grids import APT_PAIRS

    apt_pairs = APT_PAIRS if apt_pairs is None else apt_pairs
    mtl = [r for r in records if r["config"].get("stl_task") is None]
    if not mtl:
        raise ValueError(f"no MTL records of {benchmark!r} to tabulate")
    names = list(mtl[0]["benchmark"]["metric_names"])
    runs = runs_frame(records, benchmark)
    arms = results_table(runs, benchmark).reset_index()
    effects = []
    for treatment, control in apt_pairs.items():
        pair = runs[runs["optimizer"].isin([treatment, control])]
        if pair.empty:
            continue
        diff = paired_difference(pair, "delta_m", column="optimizer", treatment=treatment, control=control)
        effects.append(diff.assign(apt=treatment, base=control))
    apt_effect = pd.concat(effects, ignore_index=True) if effects else pd.DataFrame(
        columns=["method", "difference", "ci95", "n_seeds", "resolved", "apt", "base"])
    return BenchmarkResults(benchmark, names, runs, arms, apt_effect, str(runs["delta_m_baseline"].iloc[0]))


def benchmarks_text(results: dict[str, BenchmarkResults]) -> str:
    """'multi_fashion (2 seeds), qm9 (1 seed)': each benchmark tabulated with the number of seeds its table
    averages (every arm of a table has the same seeds), or 'none'."""
    counts = {name: int(res.arms["n_seeds"].min()) for name, res in results.items()}
    return ", ".join(f"{name} ({counted(n, 'seed')})" for name, n in counts.items()) or "none"


def effect_counts(apt_effect: pd.DataFrame, apt: str) -> dict[str, int]:
    """How many methods APT (``apt``) resolvedly improves (d < 0), resolvedly worsens, or leaves unresolved."""
    part = apt_effect[apt_effect["apt"] == apt]
    better, worse = resolved_signs(part)
    return {"better": better, "worse": worse, "unresolved": len(part) - better - worse, "methods": len(part)}


EFFECT_COUNT_KEYS = ("better", "worse", "unresolved", "methods")


def effect_counts_text(counts: dict[str, int], unit: str = "") -> str:
    """'b better, w worse and u unresolved of n[ unit]' from ``effect_counts``-style counts (resolved paired
    differences; "unresolved": the interval contains 0)."""
    b, w, u, n = (int(counts[k]) for k in EFFECT_COUNT_KEYS)
    return f"{b} better, {w} worse and {u} unresolved of {n}" + (f" {unit}" if unit else "")


def with_intervals(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of an ``optimizer_table`` or ``apt_table`` whose arms average at least 2 seeds. Only there does a
    paired difference have an interval, so only there can it be counted as resolved or unresolved; a benchmark
    with one complete seed is tabulated but not counted."""
    return table if table.empty else table[table["seeds"] >= MIN_SEEDS_FOR_INTERVAL]


def counted_benchmarks(table: pd.DataFrame) -> str:
    """'multi_fashion, qm9': the benchmarks ``with_intervals`` keeps, in table order, or 'none'."""
    kept = with_intervals(table)
    return ", ".join(dict.fromkeys(kept.index.get_level_values("benchmark"))) if not kept.empty else "none"


def apt_counts(by_apt: pd.DataFrame, apt: str) -> dict[str, int] | None:
    """``effect_counts`` of one APT variant summed over the benchmarks of ``apt_table`` output that have
    intervals (``with_intervals``); None if there are none."""
    kept = with_intervals(by_apt)
    if kept.empty or apt not in kept.index.get_level_values("apt"):
        return None
    part = kept.xs(apt, level="apt")
    return {k: int(part[k].sum()) for k in EFFECT_COUNT_KEYS}


def vs_ls_counts(by_optimizer: pd.DataFrame, optimizer: str) -> dict[str, int] | None:
    """Methods resolvedly better / worse than LS under ``optimizer``, and of how many, summed over the benchmarks
    of ``optimizer_table`` output that have intervals (``with_intervals``); None if there are none."""
    kept = with_intervals(by_optimizer)
    if kept.empty or optimizer not in kept.index.get_level_values("optimizer"):
        return None
    part = kept.xs(optimizer, level="optimizer")
    return {"better": int(part["better than LS"].sum()), "worse": int(part["worse than LS"].sum()),
            "methods": int(part["methods"].sum())}


def learning_curves(records: Sequence[dict[str, Any]],
                    value: Callable[[dict[str, float]], float] | None = None) -> pd.DataFrame:
    """Per MTL run and epoch: ``value(test metrics of that epoch)`` (default: the mean of the metrics, which is
    meaningful for benchmarks whose metrics share a unit, e.g. accuracies; pass a Δm% function otherwise).
    Columns method, optimizer, seed, epoch, value."""
    rows = []
    for record in records:
        config = record["config"]
        if config.get("stl_task") is not None:
            continue
        for epoch in record["epochs"]:
            metrics = epoch["test_metrics"]
            rows.append({"method": config["method"], "optimizer": config["optimizer"], "seed": config["seed"],
                         "epoch": epoch["epoch"],
                         "value": value(metrics) if value else float(np.mean(list(metrics.values())))})
    return pd.DataFrame(rows)


def stored_results(profile: str, *, benchmarks: Sequence[str] | None = None, results_dir: Path | None = None,
                   data_dir: str | None = None) -> dict[str, BenchmarkResults]:
    """The results of every book grid of ``profile`` (or of ``benchmarks``) that has at least one complete seed,
    over its complete seeds (``apt.grids.GridRecords.complete_seeds``)."""
    from apt.grids import book_grids, load_grid

    grids = book_grids(profile)
    out = {}
    for name in benchmarks or grids:
        loaded = load_grid(grids[name], profile, results_dir=results_dir, data_dir=data_dir)
        if loaded.complete_seeds():
            out[name] = benchmark_results(loaded.complete_records(), name)
    return out


def method_vs_ls(results: BenchmarkResults) -> pd.DataFrame:
    """Each method's Δm% advantage over summing the losses, under each optimizer, paired by seed:
    d_s = Δm%(method, X, s) − Δm%(LS, X, s) (< 0: the method beats LS under optimizer X).
    Columns optimizer, method, difference, ci95, n_seeds, resolved."""
    parts = []
    for method in results.runs["method"].unique():
        if method == "ls":
            continue
        pair = results.runs[results.runs["method"].isin([method, "ls"])]
        diff = paired_difference(pair, "delta_m", column="method", treatment=method, control="ls", by="optimizer")
        parts.append(diff.assign(method=method))
    columns = ["optimizer", "method", "difference", "ci95", "n_seeds", "resolved"]
    return pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(columns=columns)


def optimizer_table(results: dict[str, BenchmarkResults]) -> pd.DataFrame:
    """Per (benchmark, optimizer): how the MTL methods fare against LS under that optimizer.

    Columns: LS Δm%, mean over methods of Δm%, the best method and its Δm%, how many methods are better / worse
    than LS with a resolved paired difference (``method_vs_ls``), of how many, the mean MR of the optimizer's
    arms (MR over all arms of the benchmark), and the seeds."""
    rows = []
    for name, res in results.items():
        versus = method_vs_ls(res)
        for optimizer, arms in res.arms.groupby("optimizer", sort=False):
            part = versus[versus["optimizer"] == optimizer]
            better, worse = resolved_signs(part)
            best = arms.loc[arms["delta_m"].idxmin()]
            ls = arms.loc[arms["method"] == "ls", "delta_m"]
            rows.append({
                "benchmark": name, "optimizer": optimizer,
                "LS Δm%": float(ls.iloc[0]) if len(ls) else np.nan,
                "mean Δm% of methods": float(arms["delta_m"].mean()),
                "best method": best["method"], "best Δm%": float(best["delta_m"]),
                "better than LS": better, "worse than LS": worse,
                "methods": len(part), "mean MR": float(arms["mean_rank"].mean()),
                "seeds": int(arms["n_seeds"].min()),
            })
    return _untested_blank(pd.DataFrame(rows).set_index(["benchmark", "optimizer"]),
                           ["better than LS", "worse than LS"]) if rows else pd.DataFrame()


def apt_table(results: dict[str, BenchmarkResults]) -> pd.DataFrame:
    """Per (benchmark, APT variant): ``effect_counts`` and the mean over methods of the paired APT − base
    difference in Δm% (points; < 0: APT helps on average)."""
    rows = []
    for name, res in results.items():
        for apt in res.apt_effect["apt"].unique():
            part = res.apt_effect[res.apt_effect["apt"] == apt]
            rows.append({"benchmark": name, "apt": apt, **effect_counts(res.apt_effect, apt),
                         "mean difference": float(part["difference"].mean()),
                         "seeds": int(part["n_seeds"].min())})
    return _untested_blank(pd.DataFrame(rows).set_index(["benchmark", "apt"]),
                           ["better", "worse", "unresolved"]) if rows else pd.DataFrame()


def _untested_blank(table: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``table`` with the resolved/unresolved counts ``columns`` missing (<NA>) on rows of one seed, where no
    difference has an interval and so none was tested."""
    table = table.astype({c: "Int64" for c in columns})
    table.loc[table["seeds"] < MIN_SEEDS_FOR_INTERVAL, columns] = pd.NA
    return table


def diagnostic_medians(records: dict[tuple[str, str], dict[str, Any]]) -> pd.DataFrame:
    """Median over recorded steps of the instant-gradient share s_t = ‖(1−β_t) g_t‖ / ‖m_t‖ (column ``share``),
    the update fidelity f_t = cos(Δθ_t, −g_t) (column ``fidelity``) and the cosine of the gradient with the
    buffer before it, c_t = cos(g_t, m_{t−1}) (column ``momentum_cosine``; over steps t ≥ 2, since c_1 is 0 by
    definition), of diagnostics runs keyed by (method, optimizer); index optimizer, columns (quantity, method)."""
    rows = [{"method": method, "optimizer": optimizer,
             "share": float(np.median(record["diagnostics"]["instant_gradient_share"])),
             "fidelity": float(np.median(record["diagnostics"]["update_instant_cosine"])),
             "momentum_cosine": float(np.median(record["diagnostics"]["momentum_cosine"][1:]))}
            for (method, optimizer), record in records.items()]
    frame = pd.DataFrame(rows).set_index(["optimizer", "method"])
    order = list(dict.fromkeys(optimizer for _, optimizer in records))
    return frame.unstack("method").loc[order]


def diagnostic_medians_per_seed(records: dict[tuple[str, str, int], dict[str, Any]]) -> pd.DataFrame:
    """``diagnostic_medians`` of runs keyed by (method, optimizer, seed), one row per run: columns seed, optimizer,
    method, share, fidelity, momentum_cosine (each the run's median over its recorded steps)."""
    seeds = list(dict.fromkeys(seed for _, _, seed in records))
    return pd.concat({seed: diagnostic_medians({(m, o): r for (m, o, s), r in records.items() if s == seed})
                      .stack("method", future_stack=True) for seed in seeds}, names=["seed"]).reset_index()


def lowest_to_highest(values: pd.Series) -> str:
    """'0.17 (nash_mtl) to 0.31 (ls)': the smallest and largest value of ``values`` with their index labels."""
    return f"{values.min():.2f} ({values.idxmin()}) to {values.max():.2f} ({values.idxmax()})"


def solver_failures(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Per arm (method, optimizer) of the methods that solve an optimization problem at every step (those with an
    ``on_solver_failure`` policy: CAGrad, Nash-MTL, FairGrad), over the MTL ``records``: ``runs``, the training
    steps S = Σ_runs steps, the failed solves F = Σ_runs Σ_epochs solver_failures, and ``share (%)`` = 100 F / S.

    Each of these methods solves once per step and falls back when that solve fails (CAGrad: w = 1/K; Nash-MTL:
    the previous step's weights, which its reference code also keeps, silently; FairGrad: the solver's last
    iterate), so F / S is the fraction of steps whose direction is the fallback's, not the method's.
    """
    from apt.mtl.registry import method_info

    columns = ["method", "optimizer", "runs", "steps", "failed solves", "share (%)"]
    rows = [{"method": r["config"]["method"], "optimizer": r["config"]["optimizer"], "runs": 1, "steps": int(r["steps"]),
             "failed solves": sum(int(e["solver_failures"]) for e in r["epochs"])}
            for r in records if r["config"].get("stl_task") is None
            and "on_solver_failure" in method_info(r["config"]["method"]).defaults]
    if not rows:
        return pd.DataFrame(columns=columns)
    table = pd.DataFrame(rows).groupby(["method", "optimizer"], sort=False).sum().reset_index()
    table["share (%)"] = 100.0 * table["failed solves"] / table["steps"]
    return table[columns]


def solver_failure_shares(table: pd.DataFrame) -> pd.DataFrame:
    """A ``solver_failures`` table as method × optimizer of ``share (%)``, in the order the arms appear."""
    shares = table.pivot(index="method", columns="optimizer", values="share (%)")
    return shares.loc[list(dict.fromkeys(table["method"])), list(dict.fromkeys(table["optimizer"]))]


def solver_failures_text(table: pd.DataFrame, shown: int = 3) -> str:
    """'no failed solve over 12 arms of cagrad, nash_mtl, fairgrad' or 'failed solves in 3 of the 12 arms of ...;
    the most: nash_mtl + muon 16 of 68 steps (23.5%); ...' for a ``solver_failures`` table."""
    if table.empty:
        return "not measured in this build (no run of a method that solves a problem at each step)"
    methods = ", ".join(dict.fromkeys(table["method"]))
    failing = table[table["failed solves"] > 0].sort_values("share (%)", ascending=False)
    if failing.empty:
        return f"no failed solve over {counted(len(table), 'arm')} of {methods}"
    worst = "; ".join(f"{m} + {o} {f} of {s} steps ({share:.1f}%)" if share >= 1 else
                      f"{m} + {o} {f} of {s} steps ({share:.2g}%)" for m, o, f, s, share in
                      failing[["method", "optimizer", "failed solves", "steps", "share (%)"]].head(shown)
                      .itertuples(index=False))
    return (f"failed solves in {len(failing)} of the {counted(len(table), 'arm')} of {methods}; "
            f"the most: {worst}")
