"""From stored records to the book's tables: Δm% against same-profile baselines, intervals, paired differences.

Δm% compares a run with single-task (STL) baselines trained under the *same* profile (DESIGN.md §4): the
baseline of metric m is the mean, over the stored STL seeds, of metric m in the STL run of the task that
metric m belongs to. Every Δm column says which baseline it used.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from apt.metrics import delta_m


class MissingBaselineError(LookupError):
    """Δm% was asked for but some task has no stored single-task baseline in that profile."""


def stl_baseline(records: Sequence[dict[str, Any]], benchmark: str) -> tuple[list[float], str]:
    """The STL BASE vector [M] of ``benchmark`` from the STL records given, and a label saying what it is.

    b_m = mean over seeds s of metric m in the record with stl_task = metric_task[m] (and seed s).
    """
    stl = [r for r in records if r["config"]["benchmark"] == benchmark and r["config"].get("stl_task") is not None]
    if not stl:
        raise MissingBaselineError(f"no single-task baseline records for {benchmark!r}")
    info = stl[0]["benchmark"]
    names, tasks = info["metric_names"], info["metric_task"]
    by_task: dict[int, list[dict[str, float]]] = {}
    for record in stl:
        by_task.setdefault(record["config"]["stl_task"], []).append(record["final"]["test_metrics"])
    missing = sorted(set(tasks) - set(by_task))
    if missing:
        task_names = [info["task_names"][k] for k in missing]
        raise MissingBaselineError(f"{benchmark!r}: no single-task baseline for task(s) {task_names}")
    base = [float(np.mean([m[name] for m in by_task[task]])) for name, task in zip(names, tasks)]
    seeds = sorted({r["config"]["seed"] for r in stl})
    profile = stl[0]["config"]["profile"]
    optimizers = ", ".join(sorted({str(r["config"].get("optimizer", "?")) for r in stl}))
    return base, f"STL trained with {optimizers}, profile {profile}, mean of seeds {seeds}"


def runs_frame(records: Sequence[dict[str, Any]], benchmark: str, *, with_delta_m: bool = True) -> pd.DataFrame:
    """One row per MTL run of ``benchmark``: method, optimizer, seed, each test metric, and Δm%.

    Columns ``delta_m`` and ``delta_m_baseline`` (the label of ``stl_baseline``) when ``with_delta_m``.
    """
    mtl = [r for r in records if r["config"]["benchmark"] == benchmark and r["config"].get("stl_task") is None]
    if with_delta_m:
        base, label = stl_baseline(records, benchmark)
    rows = []
    for record in mtl:
        config, metrics = record["config"], record["final"]["test_metrics"]
        row: dict[str, Any] = {
            "method": config["method"],
            "optimizer": config["optimizer"],
            "seed": config["seed"],
            "wall_seconds": record.get("wall_seconds"),
            **metrics,
        }
        if with_delta_m:
            info = record["benchmark"]
            row["delta_m"] = delta_m([metrics[n] for n in info["metric_names"]], base, info["metric_higher_better"])
            row["delta_m_baseline"] = label
        rows.append(row)
    return pd.DataFrame(rows)


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, int]:
    """(mean, half-width of the Student-t confidence interval, n). Half-width is NaN for n < 2."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    if n == 0:
        raise ValueError("mean_ci of no values")
    mean = float(x.mean())
    if n < 2:
        return mean, float("nan"), n
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * x.std(ddof=1) / np.sqrt(n))
    return mean, half, n


def summarize(frame: pd.DataFrame, value: str, by: Sequence[str] = ("method", "optimizer")) -> pd.DataFrame:
    """Mean, 95% CI half-width and n of column ``value`` for each group of ``by``."""
    rows = []
    for key, group in frame.groupby(list(by), sort=True):
        mean, half, n = mean_ci(group[value].to_numpy())
        rows.append({**dict(zip(by, key if isinstance(key, tuple) else (key,))), "mean": mean, "ci95": half, "n": n})
    return pd.DataFrame(rows)


# A paired difference over fewer seeds has no interval (a t-interval needs one degree of freedom), so it can be
# neither resolved nor counted as unresolved.
MIN_SEEDS_FOR_INTERVAL = 2


def signed_pm(mean: float, half: float) -> str:
    """'+3.99 ± 2.95': a signed mean with its 95% half-width to two decimals; '+3.99' when the half-width is NaN
    (one seed), '' when the mean is NaN."""
    if np.isnan(mean):
        return ""
    return f"{mean:+.2f}" + ("" if np.isnan(half) else f" ± {half:.2f}")


def resolved_signs(differences: pd.DataFrame) -> tuple[int, int]:
    """(below, above): how many rows of a ``paired_difference``-style frame are resolved with ``difference`` < 0,
    and resolved with ``difference`` > 0; the other rows are unresolved."""
    resolved = differences["resolved"].astype(bool)
    return (int(((differences["difference"] < 0) & resolved).sum()),
            int(((differences["difference"] > 0) & resolved).sum()))


def paired_difference(
    frame: pd.DataFrame, value: str, *, column: str, treatment: str, control: str, by: str = "method"
) -> pd.DataFrame:
    """For each ``by`` group: treatment − control of ``value``, paired by seed, with a 95% CI.

    d_s = value(treatment, s) − value(control, s) over the seeds s run under both arms.
    ``resolved`` is True when the interval excludes 0; otherwise the difference is unresolved, not a finding.
    """
    rows = []
    for key, group in frame.groupby(by, sort=True):
        a = group[group[column] == treatment].set_index("seed")[value]
        b = group[group[column] == control].set_index("seed")[value]
        seeds = sorted(set(a.index) & set(b.index))
        if not seeds:
            continue
        mean, half, n = mean_ci((a.loc[seeds] - b.loc[seeds]).to_numpy())
        resolved = bool(n >= MIN_SEEDS_FOR_INTERVAL and abs(mean) > half)
        rows.append({by: key, "difference": mean, "ci95": half, "n_seeds": n, "resolved": resolved})
    return pd.DataFrame(rows)


def _ordered(values: Sequence[str], canonical: Sequence[str]) -> list[str]:
    """``values`` (distinct) in the order of ``canonical``, unknown ones after it, alphabetically."""
    present = list(dict.fromkeys(values))
    return [v for v in canonical if v in present] + sorted(v for v in present if v not in canonical)


def results_table(
    runs: pd.DataFrame,
    benchmark: str,
    *,
    confidence: float = 0.95,
    rank_within: str | None = None,
) -> pd.DataFrame:
    """The book's results table: per (method, optimizer), mean and CI over seeds of every metric and of Δm%, and MR.

    ``runs``: one row per MTL run, as returned by ``runs_frame(records, benchmark)`` (with or without Δm%).
    For each metric m (and for ``delta_m`` when present), over the n seeds of a (method, optimizer) arm:
        column m = x̄_m = (1/n) Σ_s x_{m,s},   column m + '_ci' = t_{(1+c)/2, n−1} · s_m / √n   (NaN if n < 2),
    ``n_seeds`` = n, and ``mean_rank`` = MR of the arm's mean metric vector x̄ [M], with dense ranks over all
    rows of the table (``rank_within='optimizer'``: over the methods of the same optimizer only), as in
    ``apt.metrics.mean_rank``. Rows are ordered like ``apt.mtl.METHODS`` × ``apt.optim.OPTIMIZERS``.
    attrs: 'benchmark', 'confidence', 'metric_names', 'delta_m_baseline' (the label of the STL baseline used,
    or None), 'rank_within'.
    """
    from apt.benchmarks import benchmark_class
    from apt.metrics import mean_rank
    from apt.mtl import METHODS
    from apt.optim import OPTIMIZERS

    if runs.empty:
        raise ValueError(f"results_table of {benchmark!r}: no runs")
    if rank_within not in (None, "optimizer", "method"):
        raise ValueError(f"rank_within={rank_within!r}: allowed None, 'optimizer' or 'method'")
    cls = benchmark_class(benchmark)
    names = list(cls.metric_names)
    absent = [n for n in [*names, "method", "optimizer", "seed"] if n not in runs.columns]
    if absent:
        raise ValueError(f"results_table of {benchmark!r}: the runs lack the column(s) {absent}")
    values = [*names, *(["delta_m"] if "delta_m" in runs.columns else [])]
    rows: dict[tuple[str, str], dict[str, float]] = {}
    for (method, optimizer), group in runs.groupby(["method", "optimizer"], sort=False):
        row: dict[str, float] = {}
        for name in values:
            mean, half, n = mean_ci(group[name].to_numpy(dtype=float), confidence)
            row[name], row[f"{name}_ci"] = mean, half
        row["n_seeds"] = group["seed"].nunique()
        rows[(method, optimizer)] = row
    order = [(m, o) for m in _ordered(runs["method"], METHODS) for o in _ordered(runs["optimizer"], OPTIMIZERS)
             if (m, o) in rows]
    table = pd.DataFrame([rows[key] for key in order],
                         index=pd.MultiIndex.from_tuples(order, names=["method", "optimizer"]))
    groups: dict[str | None, list[tuple[str, str]]] = {}
    for key in order:
        groups.setdefault(None if rank_within is None else key[1 if rank_within == "optimizer" else 0], []).append(key)
    ranks: dict[tuple[str, str], float] = {}
    for keys in groups.values():
        ranks.update(mean_rank({key: [rows[key][n] for n in names] for key in keys}, cls.metric_higher_better))
    table["mean_rank"] = [ranks[key] for key in order]
    table["n_seeds"] = table["n_seeds"].astype(int)
    table.attrs.update({
        "benchmark": benchmark, "confidence": confidence, "metric_names": names, "rank_within": rank_within,
        "delta_m_baseline": runs["delta_m_baseline"].iloc[0] if "delta_m_baseline" in runs.columns else None,
    })  # fmt: skip
    return table


def format_results(table: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """``results_table`` as text for display: 'mean ± ci' per metric and Δm% (``digits`` significant digits of
    the mean), n_seeds and MR; the ``_ci`` columns are folded into their metric column."""
    shown = pd.DataFrame(index=table.index)
    for name in [c for c in table.columns if f"{c}_ci" in table.columns]:
        shown[name] = [
            f"{mean:.{digits}g}" + ("" if np.isnan(half) else f" ± {half:.2g}")
            for mean, half in zip(table[name], table[f"{name}_ci"])
        ]
    shown["n_seeds"] = table["n_seeds"]
    shown["mean_rank"] = table["mean_rank"].round(2)
    return shown
