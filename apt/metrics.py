"""Multi-task summary metrics: Δm% against single-task baselines, and the mean rank (MR) of methods.

Both follow the Nash-MTL → FAMO → FairGrad lineage exactly (BENCHMARKS.md §2):

  Δm% = (100 / M) Σ_m (−1)^{s_m} (x_m − b_m) / b_m,   s_m = 1 if metric m is higher-better else 0,

a flat average over all M metrics (not per task first, unlike LibMTL's Δp), lower is better, negative =
better than the baseline. MR ranks every method on every metric with dense ranking on distinct values
(ties share a rank, the next distinct value gets rank + 1; single-task baselines are not ranked) and
averages a method's ranks over the metrics; MR = 1 means first everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

__all__ = ["delta_m", "mean_rank", "metric_ranks"]


def _finite_floats(name: str, values: Sequence[float]) -> list[float]:
    floats = [float(v) for v in values]
    for index, value in enumerate(floats):
        if not math.isfinite(value):
            raise ValueError(f"{name}[{index}] = {value}: every metric value must be finite")
    return floats


def delta_m(values: Sequence[float], baseline: Sequence[float], higher_better: Sequence[bool]) -> float:
    """Δm% of a method's metric vector against a baseline (lineage definition, flat over metrics).

    values x [M], baseline b [M] (typically the single-task results), higher_better [M] (SIGN):
        Δm% = (100 / M) Σ_m (−1)^{s_m} (x_m − b_m) / b_m,   s_m = 1 if higher_better[m].
    Lower is better; Δm%(b, b) = 0. Raises ValueError on length mismatch, an empty vector, a zero or
    non-finite baseline entry (the relative change is undefined) or a non-finite value.
    """
    x = _finite_floats("values", values)
    b = _finite_floats("baseline", baseline)
    signs = list(higher_better)
    if not (len(x) == len(b) == len(signs)):
        raise ValueError(
            f"delta_m needs one value per metric: got {len(x)} values, {len(b)} baseline entries and "
            f"{len(signs)} higher_better flags"
        )
    if not x:
        raise ValueError("delta_m of an empty metric vector is undefined")
    for index, base in enumerate(b):
        if base == 0.0:
            raise ValueError(f"baseline[{index}] = 0: the relative change (x - b) / b is undefined")
    total = 0.0
    for value, base, higher in zip(x, b, signs, strict=True):
        relative = (value - base) / base
        total += -relative if higher else relative
    return 100.0 * total / len(x)


def metric_ranks(table: Mapping[str, Sequence[float]], higher_better: Sequence[bool]) -> dict[str, list[int]]:
    """Per-metric dense ranks of each method: method -> [rank on metric 1, …, rank on metric M].

    table: method -> metric vector [M] (all methods compared; leave the single-task baseline out).
    On metric m the distinct values are sorted best first (descending if higher_better[m]); a method's
    rank is 1 + the position of its value among them, so ties share a rank and ranks stay consecutive.
    """
    if not table:
        raise ValueError("metric_ranks needs at least one method")
    signs = list(higher_better)
    rows = {method: _finite_floats(f"table[{method!r}]", vector) for method, vector in table.items()}
    for method, row in rows.items():
        if len(row) != len(signs):
            raise ValueError(
                f"method {method!r} has {len(row)} metric values, expected {len(signs)} (one per higher_better flag)"
            )
    ranks: dict[str, list[int]] = {method: [] for method in rows}
    for metric, higher in enumerate(signs):
        distinct = sorted({row[metric] for row in rows.values()}, reverse=higher)
        position = {value: index + 1 for index, value in enumerate(distinct)}
        for method, row in rows.items():
            ranks[method].append(position[row[metric]])
    return ranks


def mean_rank(table: Mapping[str, Sequence[float]], higher_better: Sequence[bool]) -> dict[str, float]:
    """MR of each method: the average over metrics of its dense rank (see ``metric_ranks``).

    MR ∈ [1, n_distinct]: 1 if the method is best (or tied best) on every metric. MR depends on the set
    of methods compared, so it is only comparable within one table.
    """
    signs = list(higher_better)
    if not signs:
        raise ValueError("mean_rank needs at least one metric")
    return {method: sum(ranks) / len(ranks) for method, ranks in metric_ranks(table, signs).items()}
