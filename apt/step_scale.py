"""The SGD step-scale control (chapter 7): a learning rate tuned per method under plain SGD, compared with Adam.

Why: under SGD the step is lr · d, and the methods scale their direction d differently (LS sums the task
gradients; IMTL-G's and FAMO's weights sum to 1, which halves d for K = 2 tasks; MGDA and CAGrad are rescaled by
K; Nash-MTL's and FairGrad's weights are unnormalised; PCGrad, CAGrad, Nash-MTL and FairGrad clip the shared
gradient to norm 1 as their reference code does, so their step is lr, not lr · ‖d‖, whenever ‖d‖ > 1). One shared
learning rate therefore compares step sizes as much as directions. Adam and Muon normalise the step, so "Adam
hurts method M" must be judged against M under SGD at M's own best learning rate, not at LS's.

The control (``apt.grids.sgd_control_configs``) trains every method m at each lr of a factor-2 scan and seed s.
For a run, the validation score is

    v = (1/|E|) Σ_{e ∈ E} (1/M) Σ_m x^val_{m,e}

over the reporting epochs E of the run's record (the protocol's last-k rule) and its M metrics (accuracies,
higher is better). Per method, lr*(m) = argmax_lr mean_s v(m, lr, s) over the learning rates at which every seed
finished (a diverged run disqualifies its lr). The test Δm% of (m, lr*(m)) is then paired by seed with the
method's Adam run of the book grid: d_s = Δm%(m, Adam, s) − Δm%(m, SGD at lr*, s) (< 0: Adam helps m).

The size of the confound itself is measured on the same scan: c_s = Δm%(m, SGD at lr*(LS), s) − Δm%(m, SGD at
lr*(m), s), the test Δm% a method loses (> 0) when it is trained at LS's tuned learning rate instead of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from apt.analysis import mean_ci, paired_difference, resolved_signs, signed_pm, stl_baseline
from apt.metrics import delta_m
from apt.page import counted


def validation_score(record: dict[str, Any]) -> float:
    """v: the mean validation metric over the record's reporting epochs (``final.epochs``) and its metrics.

    Raises ValueError if a metric is lower-is-better (the mean would mix directions) or an epoch has no
    validation metrics.
    """
    info = record["benchmark"]
    if not all(info["metric_higher_better"]):
        raise ValueError(f"validation_score of {record['run_id']}: needs higher-is-better metrics, "
                         f"got {dict(zip(info['metric_names'], info['metric_higher_better']))}")
    chosen = set(record["final"]["epochs"])
    epochs = [e for e in record["epochs"] if e["epoch"] in chosen]
    if any(e["val_metrics"] is None for e in epochs):
        raise ValueError(f"validation_score of {record['run_id']}: an epoch has no validation metrics")
    return float(np.mean([np.mean([e["val_metrics"][n] for n in info["metric_names"]]) for e in epochs]))


@dataclass
class StepScaleControl:
    """The control's tables.

    ``scan``: one row per (method, lr): mean validation score over seeds ``val_score``, its ``n_seeds`` and the
    number of ``diverged`` seeds. ``chosen``: one row per method: ``lr`` = lr*(m), ``lr_vs_ls`` = lr*(m)/lr*(LS),
    ``at_edge`` (lr* is the smallest or largest lr scanned, so the optimum may lie outside the scan),
    ``sgd_delta_m`` and ``adam_delta_m`` (mean over seeds) with ``*_ci`` half-widths, and the paired difference
    Adam − tuned SGD (``difference``, ``ci95``, ``n_seeds``, ``resolved``), and the paired cost of LS's lr
    c = Δm%(SGD at lr*(LS)) − Δm%(SGD at lr*(m)) (``shared_lr_cost``, ``shared_lr_cost_ci``,
    ``shared_lr_cost_resolved``; NaN when LS has no lr* or m has no finished run at it). ``rank_correlation``:
    Spearman's ρ between the methods' mean Δm% under tuned SGD and under Adam (NaN for fewer than 3 methods)."""

    scan: pd.DataFrame
    chosen: pd.DataFrame
    rank_correlation: float
    baseline_label: str

    def adam_verdicts(self) -> tuple[int, int, int]:
        """(better, worse, unresolved): the number of methods for which Adam − tuned SGD is resolvedly < 0 (Adam
        helps), resolvedly > 0 (Adam hurts), or unresolved."""
        better, worse = resolved_signs(self.chosen)
        return better, worse, len(self.chosen) - better - worse

    def adam_verdict_text(self) -> str:
        """'Adam is resolvedly better than tuned SGD for 0, worse for 1 (pcgrad +3.99 ± 2.95) and unresolved for 7
        of 8 methods (2 seeds)': ``adam_verdicts`` with the resolved methods named."""
        better, worse, unresolved = self.adam_verdicts()
        resolved = self.chosen[self.chosen["resolved"].astype(bool)]

        def named(count: int, sign: int) -> str:
            listed = _listed(resolved[np.sign(resolved["difference"]) == sign], "difference", "ci95")
            return f"{count} ({listed})" if listed else f"{count}"

        return (f"Adam is resolvedly better than tuned SGD for {named(better, -1)}, worse for {named(worse, 1)} and "
                f"unresolved for {unresolved} of {len(self.chosen)} methods "
                f"({counted(int(self.chosen['n_seeds'].max()), 'seed')})")

    def rank_correlation_text(self) -> str:
        """Spearman's ρ to two decimals, or why it is undefined."""
        rho = self.rank_correlation
        return "undefined (fewer than 3 methods)" if np.isnan(rho) else f"{rho:.2f}"

    def shared_lr_cost_text(self) -> str:
        """The cost of LS's lr c over the methods other than LS: its range and mean, and which are resolved > 0."""
        others = self.chosen[self.chosen["method"] != "ls"].dropna(subset=["shared_lr_cost"])
        if others.empty:
            return "not measured in this build (no method but LS has a run at LS's chosen learning rate)"
        cost = others["shared_lr_cost"]
        costly = others[others["shared_lr_cost_resolved"].astype(bool) & (cost > 0)]
        listed = _listed(costly, "shared_lr_cost", "shared_lr_cost_ci")
        return (f"the other methods' test Δm% changes by {cost.min():+.2f} to {cost.max():+.2f} points (mean "
                f"{cost.mean():+.2f}, over {counted(len(others), 'method')}); the loss is resolved for {len(costly)} "
                f"of {len(others)}" + (f" ({listed})" if listed else ""))


def _listed(rows: pd.DataFrame, value: str, ci: str) -> str:
    """'pcgrad +3.99 ± 2.95, imtl_g +3.30 ± 1.58': each row's method with its ``value`` ± ``ci``."""
    return ", ".join(f"{m} {signed_pm(v, h)}" for m, v, h in rows[["method", value, ci]].itertuples(index=False))


def _delta_m(record: dict[str, Any], base: list[float]) -> float:
    info, metrics = record["benchmark"], record["final"]["test_metrics"]
    return delta_m([metrics[n] for n in info["metric_names"]], base, info["metric_higher_better"])


def step_scale_control(sgd_records: Sequence[dict[str, Any]], diverged: Sequence[dict[str, Any]],
                       adam_records: Sequence[dict[str, Any]], stl_records: Sequence[dict[str, Any]],
                       lrs: Sequence[float]) -> StepScaleControl:
    """The control from its stored runs: SGD records and divergence notes of the scan, the Adam records of the
    same methods and seeds, and the single-task records Δm% is measured against. ``lrs``: the lrs scanned."""
    if not sgd_records:
        raise ValueError("step_scale_control: no SGD record of the scan is stored")
    benchmark = sgd_records[0]["config"]["benchmark"]
    base, label = stl_baseline(stl_records, benchmark)
    runs = pd.DataFrame([{"method": r["config"]["method"], "lr": float(r["config"]["lr"]), "seed": r["config"]["seed"],
                          "val_score": validation_score(r), "delta_m": _delta_m(r, base)} for r in sgd_records])
    failed = pd.DataFrame([{"method": n["config"]["method"], "lr": float(n["config"]["lr"]),
                            "seed": n["config"]["seed"]} for n in diverged], columns=["method", "lr", "seed"])
    seeds = sorted(set(runs["seed"]) | set(failed["seed"]))

    scan = (runs.groupby(["method", "lr"])
            .agg(val_score=("val_score", "mean"), n_seeds=("seed", "nunique")).reset_index())
    n_failed = failed.groupby(["method", "lr"]).size().rename("diverged").reset_index()
    scan = scan.merge(n_failed, on=["method", "lr"], how="outer").fillna({"n_seeds": 0, "diverged": 0})
    scan[["n_seeds", "diverged"]] = scan[["n_seeds", "diverged"]].astype(int)
    eligible = scan[(scan["n_seeds"] == len(seeds)) & (scan["diverged"] == 0)]

    adam = pd.DataFrame([{"method": r["config"]["method"], "seed": r["config"]["seed"], "delta_m": _delta_m(r, base)}
                         for r in adam_records], columns=["method", "seed", "delta_m"])
    rows = []
    for method, options in eligible.groupby("method", sort=False):
        best = float(options.loc[options["val_score"].idxmax(), "lr"])
        sgd_runs = runs[(runs["method"] == method) & (runs["lr"] == best)]
        adam_runs = adam[adam["method"] == method]
        pair = pd.concat([sgd_runs.assign(arm="sgd_tuned"), adam_runs.assign(arm="adam")])
        diff = paired_difference(pair, "delta_m", column="arm", treatment="adam", control="sgd_tuned")
        sgd_mean, sgd_ci, _ = mean_ci(sgd_runs["delta_m"].to_numpy())
        adam_mean, adam_ci = mean_ci(adam_runs["delta_m"].to_numpy())[:2] if len(adam_runs) else (np.nan, np.nan)
        rows.append({"method": method, "lr": best, "at_edge": best in (min(lrs), max(lrs)),
                     "sgd_delta_m": sgd_mean, "sgd_delta_m_ci": sgd_ci,
                     "adam_delta_m": adam_mean, "adam_delta_m_ci": adam_ci,
                     **(diff.drop(columns="method").iloc[0].to_dict() if len(diff) else
                        {"difference": np.nan, "ci95": np.nan, "n_seeds": 0, "resolved": False})})
    chosen = pd.DataFrame(rows)
    if len(chosen):
        ls_lr = chosen.loc[chosen["method"] == "ls", "lr"]
        chosen.insert(2, "lr_vs_ls", chosen["lr"] / float(ls_lr.iloc[0]) if len(ls_lr) else np.nan)
        chosen = chosen.merge(_shared_lr_cost(runs, chosen, float(ls_lr.iloc[0]) if len(ls_lr) else None),
                              on="method", how="left")
    both = chosen.dropna(subset=["sgd_delta_m", "adam_delta_m"]) if len(chosen) else chosen
    rho = float(stats.spearmanr(both["sgd_delta_m"], both["adam_delta_m"]).statistic) if len(both) >= 3 else np.nan
    return StepScaleControl(scan, chosen, rho, label)


def _shared_lr_cost(runs: pd.DataFrame, chosen: pd.DataFrame, ls_lr: float | None) -> pd.DataFrame:
    """Per method: c_s = Δm%(SGD at ``ls_lr``, s) − Δm%(SGD at its own lr*, s), paired by seed, with a 95% CI."""
    columns = ["method", "shared_lr_cost", "shared_lr_cost_ci", "shared_lr_cost_resolved"]
    if ls_lr is None:
        return pd.DataFrame(columns=columns)
    arms = []
    for method, own_lr in chosen[["method", "lr"]].itertuples(index=False):
        mine = runs[runs["method"] == method]
        arms += [mine[mine["lr"] == ls_lr].assign(arm="shared"), mine[mine["lr"] == own_lr].assign(arm="own")]
    cost = paired_difference(pd.concat(arms), "delta_m", column="arm", treatment="shared", control="own")
    return cost.rename(columns={"difference": "shared_lr_cost", "ci95": "shared_lr_cost_ci",
                                "resolved": "shared_lr_cost_resolved"}).reindex(columns=columns)


def stored_step_scale_control(profile: str, *, results_dir: Path | None = None,
                              data_dir: str | None = None) -> tuple[StepScaleControl | None, str]:
    """(the control, a coverage sentence) from the store, computed on the complete seeds: those for which every
    run of the scan has a record or a divergence note and the book grid holds the Adam and single-task runs the
    control needs. None while no seed is complete; the sentence names the complete seeds."""
    from apt.grids import (SGD_CONTROL_BENCHMARK, SGD_CONTROL_SEEDS, book_grids, load_grid, read_stored,
                           sgd_control_configs)

    configs = sgd_control_configs(profile, data_dir=data_dir)
    sgd, missing, diverged = read_stored(list(configs.values()), results_dir)
    methods = {method for method, _, _ in configs}
    grid = load_grid(book_grids(profile)[SGD_CONTROL_BENCHMARK], profile, results_dir=results_dir,
                     data_dir=data_dir, seeds=SGD_CONTROL_SEEDS[profile])
    needed = [c for c in grid.missing if c.stl_task is not None or (c.optimizer == "adam" and c.method in methods)]
    incomplete = {c.seed for c in missing + needed}
    complete = [s for s in SGD_CONTROL_SEEDS[profile] if s not in incomplete]
    coverage = (f"{len(sgd) + len(diverged)} of {len(configs)} runs of the SGD scan are stored"
                f" ({len(diverged)} diverged); {len(needed)} Adam or single-task runs of the grid it needs are missing;"
                f" complete seeds: {', '.join(map(str, complete)) or 'none'}")
    if not complete:
        return None, coverage

    def of_complete_seeds(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [r for r in records if r["config"]["seed"] in complete]

    adam = [r for r in of_complete_seeds(grid.records)
            if r["config"]["optimizer"] == "adam" and r["config"]["method"] in methods and r["config"]["stl_task"] is None]
    stl = [r for r in of_complete_seeds(grid.records) if r["config"]["stl_task"] is not None]
    return (step_scale_control(of_complete_seeds(sgd), of_complete_seeds(diverged), adam, stl,
                               sorted({lr for _, lr, _ in configs})), coverage)
