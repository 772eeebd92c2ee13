"""Published result tables of the Nash-MTL → FAMO → FairGrad lineage (BENCHMARKS.md §4), as data.

``published_table(benchmark)`` returns one table as a DataFrame in the *code units* of the benchmark class:
index = method name as printed in the paper, columns = ``benchmark_class(benchmark).metric_names`` (same
order) followed by ``delta_m`` (published Δm%, lower is better) and ``mean_rank`` (published MR), NaN where
the paper prints nothing. Printed percentages are divided by 100 where the code reports a fraction:

    x_code = x_printed / 100   for the metrics in ``percent_metrics(benchmark)``,   x_code = x_printed otherwise,

which is the convention of the lineage's STL BASE vectors (``Benchmark.published_stl``). The STL rows are
not repeated here: the published single-task baselines are the benchmark classes' ``published_stl``
(``published_baseline`` returns them as a Series, with their source). ``method_key`` maps a printed method
name to the name of ``apt.mtl`` (None for methods we do not implement).

Δm% and MR are copied as printed; the papers compute Δm% per seed and average, so Δm% recomputed from the
printed seed-mean metrics differs by up to a few hundredths (NYUv2, Cityscapes) or about 1% (QM9, whose
printed MAEs are rounded to 2–4 digits); tests/test_published.py pins every gap.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from apt.benchmarks import benchmark_class

__all__ = [
    "APT_REPORTED",
    "best_published",
    "method_key",
    "percent_metrics",
    "published_baseline",
    "published_benchmarks",
    "published_table",
]

FAMO = "Liu et al., FAMO: Fast Adaptive Multitask Optimization, NeurIPS 2023, arXiv:2306.03792"
NASH = "Navon et al., Multi-Task Learning as a Bargaining Game (Nash-MTL), ICML 2022, arXiv:2202.01017"
SAMO = ("Ban, Subramani and Ji, SAMO: A Lightweight Sharpness-Aware Approach for Multi-Task Optimization, "
        "ICCV 2025, arXiv:2507.07883 (secondary: quotes FairGrad; table not recorded)")
IMGRAD = ("Zhou et al., Injecting Imbalance Sensitivity for Multi-Task Learning (IMGrad), arXiv:2503.08006 "
          "(copies the FAMO/Nash-MTL tables; table not recorded)")
SDMGRAD_SCRIPT = "OptMN-Lab/sdmgrad@8333f9ec:experiments/mean_rank.py (rows typed in the SDMGrad authors' MR script)"
FAMO_ISSUE_2 = "github.com/Cranial-XIX/FAMO/issues/2 (per-attribute STL F1 posted by the FAMO author)"

# Printed method name -> apt.mtl method name. Names not listed (MoCo, MoDo, SDMGrad, IMGrad) are not implemented.
_METHOD_KEYS: dict[str, str] = {
    "LS": "ls", "SI": "si", "RLW": "rlw", "DWA": "dwa", "UW": "uw", "FAMO": "famo", "MGDA": "mgda",
    "PCGrad": "pcgrad", "GradDrop": "graddrop", "CAGrad": "cagrad", "IMTL-G": "imtl_g", "Nash-MTL": "nash_mtl",
    "FairGrad": "fairgrad", "UPGrad": "upgrad",
}  # fmt: skip


def method_key(printed_name: str) -> str | None:
    """The ``apt.mtl`` name of a method as printed in a published table, or None if we do not implement it.

    >>> method_key("IMTL-G"), method_key("Nash-MTL"), method_key("MoCo")
    ('imtl_g', 'nash_mtl', None)
    """
    return _METHOD_KEYS.get(printed_name)


@dataclass(frozen=True)
class _Row:
    """One printed row: metric values as printed (None = not printed), Δm%, MR, and its source if secondary."""

    method: str
    values: Sequence[float | None] | None
    delta_m: float | None = None
    mean_rank: float | None = None
    source: str | None = None  # None: the table's own source (primary); else the secondary citation


@dataclass(frozen=True)
class _Table:
    source: str
    percent: tuple[str, ...]
    rows: tuple[_Row, ...]
    note: str
    baseline_source: str
    secondary: tuple[_Row, ...] = ()
    other_mean_ranks: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    delta_m_std: Mapping[str, float] = field(default_factory=dict)


def _rows(table: Mapping[str, tuple[Sequence[float] | None, float | None, float | None]]) -> tuple[_Row, ...]:
    return tuple(_Row(name, values, delta, rank) for name, (values, rank, delta) in table.items())


# ---------------------------------------------------------------------------------------------------------
# §4a NYUv2 — FAMO Table 1 (metric values identical to Nash-MTL Table 2). method: (9 metrics, MR, Δm%)
# ---------------------------------------------------------------------------------------------------------
_NYUV2 = _Table(
    source=f"{FAMO}, Table 1 (NYUv2, MTAN, mean of 3 seeds; the metric values equal {NASH}, Table 2)",
    percent=("miou", "pix_acc", "within_11.25", "within_22.5", "within_30"),
    rows=_rows({
        "LS": ([39.29, 65.33, 0.5493, 0.2263, 28.15, 23.96, 22.09, 47.50, 61.08], 8.89, 5.59),
        "SI": ([38.45, 64.27, 0.5354, 0.2201, 27.60, 23.37, 22.53, 48.57, 62.32], 7.89, 4.39),
        "RLW": ([37.17, 63.77, 0.5759, 0.2410, 28.27, 24.18, 22.26, 47.05, 60.62], 11.22, 7.78),
        "DWA": ([39.11, 65.31, 0.5510, 0.2285, 27.61, 23.18, 24.17, 50.18, 62.39], 7.67, 3.57),
        "UW": ([36.87, 63.17, 0.5446, 0.2260, 27.04, 22.61, 23.54, 49.05, 63.65], 7.44, 4.05),
        "MGDA": ([30.47, 59.90, 0.6070, 0.2555, 24.88, 19.45, 29.18, 56.88, 69.36], 6.00, 1.38),
        "PCGrad": ([38.06, 64.64, 0.5550, 0.2325, 27.41, 22.80, 23.86, 49.83, 63.14], 8.00, 3.97),
        "GradDrop": ([39.39, 65.12, 0.5455, 0.2279, 27.48, 22.96, 23.38, 49.44, 62.87], 7.00, 3.58),
        "CAGrad": ([39.79, 65.49, 0.5486, 0.2250, 26.31, 21.58, 25.61, 52.36, 65.58], 4.56, 0.20),
        "IMTL-G": ([39.35, 65.60, 0.5426, 0.2256, 26.02, 21.19, 26.20, 53.13, 66.24], 3.78, -0.76),
        "Nash-MTL": ([40.13, 65.93, 0.5261, 0.2171, 25.26, 20.08, 28.40, 55.47, 68.15], 2.11, -4.04),
        "FAMO": ([38.88, 64.90, 0.5474, 0.2194, 25.06, 19.57, 29.21, 56.61, 68.98], 3.44, -4.10),
    }),
    secondary=(
        _Row("FairGrad", [38.80, None, 0.5572, None, 24.55, None, None, None, None], -4.96, None, SAMO),
        _Row("MoCo", [40.30, 66.07, 0.56, 0.21, 26.67, 21.83, 25.61, 51.78, 64.85], 0.16, None, IMGRAD),
        _Row("IMGrad", None, -4.57, None, IMGRAD),
    ),
    other_mean_ranks={
        f"{NASH}, Table 2 (11 methods, no FAMO)": {
            "LS": 8.11, "SI": 7.11, "RLW": 10.11, "DWA": 6.88, "UW": 6.44, "MGDA": 5.44, "PCGrad": 6.88,
            "GradDrop": 6.44, "CAGrad": 3.77, "IMTL-G": 3.11, "Nash-MTL": 1.55,
        },
    },  # fmt: skip
    note=(
        "mIoU, PixAcc and the three within-angle columns are printed in percent and divided by 100 here (code "
        "units: fractions); AbsErr, RelErr and the angle mean/median (degrees) are as printed. mean_rank is the "
        "FAMO table's MR over these 12 methods (dense ranks; it reproduces exactly from the printed values). "
        "Secondary rows (include_secondary=True) have no MR and only the metrics their source quotes."
    ),
    baseline_source="FAMO code BASE ('base results from CAGrad'), Cranial-XIX/FAMO@0a6ad06d:experiments/nyuv2/utils.py",
)

# ---------------------------------------------------------------------------------------------------------
# §4b Cityscapes — Nash-MTL Table 3 metric rows + FAMO Table 3 (FAMO row, MR over 12 methods).
# FAMO Table 3's LS row is a copy of its SI row; the LS row here is Nash-MTL's.
# ---------------------------------------------------------------------------------------------------------
_CITYSCAPES = _Table(
    source=(f"{NASH}, Table 3 (Cityscapes, MTAN, mean of 3 seeds: metrics and Δm% of LS … Nash-MTL) and {FAMO}, "
            "Table 3 (the FAMO row and the MR column over 12 methods)"),
    percent=("miou", "pix_acc"),
    rows=_rows({
        "LS": ([75.18, 93.49, 0.0155, 46.77], 6.50, 22.60),
        "SI": ([70.95, 91.73, 0.0161, 33.83], 9.25, 14.11),
        "RLW": ([74.57, 93.41, 0.0158, 47.79], 9.25, 24.38),
        "DWA": ([75.24, 93.52, 0.0160, 44.37], 6.50, 21.45),
        "UW": ([72.02, 92.85, 0.0140, 30.13], 6.00, 5.89),
        "MGDA": ([68.84, 91.54, 0.0309, 33.50], 9.75, 44.14),
        "PCGrad": ([75.13, 93.48, 0.0154, 42.07], 6.75, 18.29),
        "GradDrop": ([75.27, 93.53, 0.0157, 47.54], 6.00, 23.73),
        "CAGrad": ([75.16, 93.48, 0.0141, 37.60], 5.75, 11.64),
        "IMTL-G": ([75.33, 93.49, 0.0135, 38.41], 4.00, 11.10),
        "Nash-MTL": ([75.41, 93.66, 0.0129, 35.02], 2.00, 6.82),
        "FAMO": ([74.54, 93.29, 0.0145, 32.59], 6.25, 8.13),
    }),
    secondary=(
        _Row("FairGrad", [74.10, 93.03, 0.0135, 29.92], 3.90, None, SAMO),
        _Row("MoCo", [75.42, 93.55, 0.0149, 34.19], 9.90, None, f"{SDMGRAD_SCRIPT}; Δm% from {IMGRAD}"),
        _Row("MoDo", [74.55, 93.32, 0.0159, 41.51], None, None, SDMGRAD_SCRIPT),
        _Row("SDMGrad", [74.53, 93.52, 0.0137, 34.01], None, None, SDMGRAD_SCRIPT),
    ),
    other_mean_ranks={
        f"{NASH}, Table 3 (11 methods, no FAMO)": {
            "LS": 6.12, "SI": 8.00, "RLW": 9.25, "DWA": 6.00, "UW": 5.25, "MGDA": 8.75, "PCGrad": 6.37,
            "GradDrop": 5.50, "CAGrad": 5.37, "IMTL-G": 3.62, "Nash-MTL": 1.75,
        },
    },  # fmt: skip
    note=(
        "mIoU and PixAcc are printed in percent and divided by 100 here; AbsErr and RelErr are as printed (the "
        "lineage's inverse-depth errors; RelErr is a ratio, not a percent). The LS row is Nash-MTL's: FAMO "
        "Table 3 prints a copy of its SI row as LS. mean_rank is FAMO's MR over 12 methods; neither paper's MR "
        "reproduces exactly from the printed (rounded) values (ties at print precision; see the tests)."
    ),
    baseline_source="FAMO code BASE, Cranial-XIX/FAMO@0a6ad06d:experiments/cityscapes/utils.py; Nash-MTL Table 3 STL row",
)

# ---------------------------------------------------------------------------------------------------------
# §4c QM9 — FAMO Table 2 (per-target MAE, MR over 11 methods); Δm% ± std from Nash-MTL Table 1.
# ---------------------------------------------------------------------------------------------------------
_QM9 = _Table(
    source=(f"{FAMO}, Table 2 (QM9, per-target test MAE, MR over 11 methods, FAMO Δm%) and {NASH}, Table 1 "
            "(Δm% ± std over 3 seeds of the other methods)"),
    percent=(),
    rows=_rows({
        "LS": ([0.11, 0.33, 73.6, 89.7, 5.20, 14.06, 143.4, 144.2, 144.6, 140.3, 0.13], 6.45, 177.6),
        "SI": ([0.31, 0.35, 149.8, 135.7, 1.00, 4.51, 55.3, 55.8, 55.8, 55.3, 0.11], 3.55, 77.8),
        "RLW": ([0.11, 0.34, 76.9, 92.8, 5.87, 15.47, 156.3, 157.1, 157.6, 153.0, 0.14], 8.00, 203.8),
        "DWA": ([0.11, 0.33, 74.1, 90.6, 5.09, 13.99, 142.3, 143.0, 143.4, 139.3, 0.13], 6.27, 175.3),
        "UW": ([0.39, 0.43, 166.2, 155.8, 1.07, 4.99, 66.4, 66.8, 66.8, 66.2, 0.12], 4.91, 108.0),
        "MGDA": ([0.22, 0.37, 126.8, 104.6, 3.23, 5.69, 88.4, 89.4, 89.3, 88.0, 0.12], 5.91, 120.5),
        "PCGrad": ([0.11, 0.29, 75.9, 88.3, 3.94, 9.15, 116.4, 116.8, 117.2, 114.5, 0.11], 4.73, 125.7),
        "CAGrad": ([0.12, 0.32, 83.5, 94.8, 3.22, 6.93, 114.0, 114.3, 114.5, 112.3, 0.12], 5.45, 112.8),
        "IMTL-G": ([0.14, 0.29, 98.3, 93.9, 1.75, 5.70, 101.4, 102.4, 102.0, 100.1, 0.10], 4.36, 77.2),
        "Nash-MTL": ([0.10, 0.25, 82.9, 81.9, 2.43, 5.38, 74.5, 75.0, 75.1, 74.2, 0.09], 2.09, 62.0),
        "FAMO": ([0.15, 0.30, 94.0, 95.2, 1.63, 4.95, 70.82, 71.2, 71.2, 70.3, 0.10], 3.27, 58.5),
    }),
    other_mean_ranks={
        f"{NASH}, Table 1 (10 methods, no FAMO)": {
            "LS": 6.8, "SI": 4.0, "RLW": 8.2, "DWA": 6.4, "UW": 5.3, "MGDA": 5.9, "PCGrad": 5.0, "CAGrad": 5.7,
            "IMTL-G": 4.7, "Nash-MTL": 2.5,
        },
    },  # fmt: skip
    delta_m_std={"LS": 3.4, "SI": 9.2, "RLW": 3.4, "DWA": 6.3, "UW": 22.5, "MGDA": 2.0, "PCGrad": 10.3,
                 "CAGrad": 4.0, "IMTL-G": 9.3, "Nash-MTL": 1.4},
    note=(
        "Units as printed and as the code reports them: MAE on de-standardized targets, the 7 energies "
        "(homo, lumo, zpve, u0, u, h, g) in meV. Δm% must use the full-precision BASE (published_baseline), "
        "not the rounded STL row of the tables. mean_rank is FAMO's MR (11 methods); attrs['delta_m_std'] holds "
        "Nash-MTL's std over seeds. The printed MAEs have 2–4 significant digits, so Δm% recomputed from them "
        "differs from the printed one by up to ~1.3% (within the seed std); MR does not reproduce exactly."
    ),
    baseline_source="FAMO code BASE, Cranial-XIX/FAMO@0a6ad06d:experiments/quantum_chemistry/utils.py",
)

# ---------------------------------------------------------------------------------------------------------
# §4d CelebA — FAMO Table 3: Δm% and MR only (no per-attribute values printed).
# ---------------------------------------------------------------------------------------------------------
_CELEBA = _Table(
    source=f"{FAMO}, Table 3 (CelebA, 9-layer CNN, mean of 3 seeds; Δm% and MR only)",
    percent=(),
    rows=_rows({
        "LS": (None, 6.28, 4.15), "SI": (None, 7.83, 7.20), "RLW": (None, 5.22, 1.46), "DWA": (None, 6.95, 3.20),
        "UW": (None, 5.78, 3.23), "MGDA": (None, 10.93, 14.85), "PCGrad": (None, 6.65, 3.17),
        "GradDrop": (None, 7.80, 3.29), "CAGrad": (None, 6.20, 2.48), "IMTL-G": (None, 4.67, 0.84),
        "Nash-MTL": (None, 4.97, 2.84), "FAMO": (None, 4.72, 1.21),
    }),  # fmt: skip
    note=(
        "The paper prints no per-attribute F1, so the 40 metric columns are NaN (Δm% cannot be recomputed). "
        "FAMO's header labels the CelebA columns 'MR, Δm' but the first column is Δm% (the IMGrad paper "
        "reproduces it as Δm; a 40-metric MR near 1 is implausible): delta_m and mean_rank follow that reading."
    ),
    baseline_source=FAMO_ISSUE_2,
)

_TABLES: dict[str, _Table] = {"nyuv2": _NYUV2, "cityscapes": _CITYSCAPES, "qm9": _QM9, "celeba": _CELEBA}

# §4e: best published Δm% per benchmark (lower is better).
_BEST: dict[str, tuple[float, str, str, float, str]] = {
    # benchmark: (best Δm%, method, source, best Δm% in a primary FAMO/Nash table, that method)
    "cityscapes": (3.90, "FairGrad", SAMO, 5.89, "UW"),
    "nyuv2": (-4.96, "FairGrad", SAMO, -4.10, "FAMO"),
    "qm9": (58.5, "FAMO", f"{FAMO}, Table 2 (FairGrad's value not retrieved)", 58.5, "FAMO"),
    "celeba": (0.84, "IMTL-G", f"{FAMO}, Table 3", 0.84, "IMTL-G"),
}

#: The only numbers of the APT paper (arXiv:2604.08939) available here, quoted by a third party
#: (www.wizwand.com/paper/69dc785b7d0172140ec788ca); MR values are only comparable inside APT's own table.
APT_REPORTED: dict[str, tuple[str, float]] = {
    "cityscapes": ("miou (percent)", 78.23),
    "nyuv2": ("miou (percent)", 42.47),
    "celeba": ("mean_rank", 6.75),
    "qm9": ("mean_rank", 4.36),
}


def published_benchmarks() -> tuple[str, ...]:
    """The benchmarks with a published table: ('nyuv2', 'cityscapes', 'qm9', 'celeba')."""
    return tuple(_TABLES)


def _table(benchmark: str) -> _Table:
    if benchmark not in _TABLES:
        raise ValueError(f"no published table for benchmark {benchmark!r}; published: {', '.join(_TABLES)}")
    return _TABLES[benchmark]


def percent_metrics(benchmark: str) -> tuple[str, ...]:
    """Metric names whose published values are percentages of the fraction the code reports (÷100 here)."""
    return _table(benchmark).percent


def _code_units(benchmark: str, values: Sequence[float | None] | None) -> list[float]:
    names = benchmark_class(benchmark).metric_names
    if values is None:
        return [math.nan] * len(names)
    if len(values) != len(names):
        raise ValueError(f"{benchmark}: a published row has {len(values)} values for {len(names)} metrics")
    percent = set(_table(benchmark).percent)
    return [math.nan if v is None else (v / 100 if name in percent else float(v)) for name, v in zip(names, values)]


def published_table(benchmark: str, *, include_secondary: bool = False) -> pd.DataFrame:
    """The published result table of ``benchmark`` in code units (see the module docstring).

    Returns DataFrame [methods, M + 2]: index = method as printed, columns = metric_names + ['delta_m',
    'mean_rank']; NaN where not published. ``include_secondary`` appends rows quoted by later papers
    (FairGrad, MoCo, …; their MR is NaN: MR is only defined within one paper's table).
    attrs: 'source' (citation of the table), 'note' (units and conversion), 'row_sources' (method ->
    citation, every row), 'baseline_source', 'other_mean_ranks' (label -> {method: MR} printed elsewhere),
    'delta_m_std' (method -> std over seeds, where printed).
    """
    table = _table(benchmark)
    names = list(benchmark_class(benchmark).metric_names)
    rows = [*table.rows, *(table.secondary if include_secondary else ())]
    frame = pd.DataFrame(
        [[*_code_units(benchmark, row.values),
          math.nan if row.delta_m is None else row.delta_m,
          math.nan if row.mean_rank is None else row.mean_rank] for row in rows],
        index=pd.Index([row.method for row in rows], name="method"),
        columns=[*names, "delta_m", "mean_rank"],
        dtype=float,
    )  # fmt: skip
    frame.attrs["source"] = table.source
    frame.attrs["note"] = table.note
    frame.attrs["row_sources"] = {row.method: row.source or table.source for row in rows}
    frame.attrs["baseline_source"] = table.baseline_source
    frame.attrs["other_mean_ranks"] = {label: dict(ranks) for label, ranks in table.other_mean_ranks.items()}
    frame.attrs["delta_m_std"] = dict(table.delta_m_std)
    return frame


def published_baseline(benchmark: str) -> pd.Series:
    """The published single-task BASE vector [M] (``benchmark_class(benchmark).published_stl``), code units.

    Index = metric_names; attrs['source'] = where the vector comes from. Valid for the `full` profile only.
    """
    cls = benchmark_class(benchmark)
    if cls.published_stl is None:
        raise ValueError(f"benchmark {benchmark!r} has no published single-task baseline")
    series = pd.Series(cls.published_stl, index=list(cls.metric_names), name="STL", dtype=float)
    series.attrs["source"] = _table(benchmark).baseline_source
    return series


def best_published() -> pd.DataFrame:
    """§4e: the best published Δm% per benchmark, its method and source, and the best in a primary table.

    Columns: delta_m, method, method_key, source, primary_delta_m, primary_method.
    """
    return pd.DataFrame(
        [{"delta_m": d, "method": m, "method_key": method_key(m), "source": s, "primary_delta_m": pd_,
          "primary_method": pm} for d, m, s, pd_, pm in _BEST.values()],
        index=pd.Index(list(_BEST), name="benchmark"),
    )  # fmt: skip
