"""Δm% and mean rank against the published tables of BENCHMARKS.md §4, plus properties."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apt.metrics import delta_m, mean_rank, metric_ranks

# NYUv2, FAMO paper Table 1 (BENCHMARKS.md §4a). Percent columns are divided by 100 to match the code BASE.
NYU_BASE = [0.3830, 0.6376, 0.6754, 0.2780, 25.01, 19.21, 0.3014, 0.5720, 0.6915]
NYU_HIGHER = [True, True, False, False, False, False, True, True, True]
NYU_PERCENT_COLUMNS = (0, 1, 6, 7, 8)
# method: (9 metrics as printed, published MR, published Δm%)
NYU_TABLE = {
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
}


def _nyu_code_units(printed: list[float]) -> list[float]:
    return [v / 100 if i in NYU_PERCENT_COLUMNS else v for i, v in enumerate(printed)]


# Δm% of the published rows is printed to 2 decimals and computed by the papers per seed (mean of per-seed
# Δm), we recompute it from the printed seed-mean metrics: agreement within 0.015 except IMTL-G (below).
@pytest.mark.parametrize("method", [m for m in NYU_TABLE if m != "IMTL-G"])
def test_delta_m_reproduces_published_nyuv2_rows(method: str) -> None:
    printed, _, published = NYU_TABLE[method]
    assert delta_m(_nyu_code_units(printed), NYU_BASE, NYU_HIGHER) == pytest.approx(published, abs=0.015)


def test_delta_m_famo_nyuv2_is_minus_4_10() -> None:
    assert round(delta_m(_nyu_code_units(NYU_TABLE["FAMO"][0]), NYU_BASE, NYU_HIGHER), 2) == -4.10


def test_delta_m_imtl_g_nyuv2_gap_is_pinned() -> None:
    # From the printed means IMTL-G gives -0.60, the table says -0.76: a 0.16 gap, the largest of the table,
    # consistent with the paper averaging per-seed Δm (BENCHMARKS.md §2). Pinned so that a change shows.
    ours = delta_m(_nyu_code_units(NYU_TABLE["IMTL-G"][0]), NYU_BASE, NYU_HIGHER)
    assert ours == pytest.approx(-0.60, abs=0.005)
    assert 0.1 < ours - NYU_TABLE["IMTL-G"][2] < 0.2


def test_mean_rank_reproduces_famo_paper_nyuv2_mr_column() -> None:
    table = {m: _nyu_code_units(row[0]) for m, row in NYU_TABLE.items()}
    ranks = mean_rank(table, NYU_HIGHER)
    for method, (_, published_mr, _) in NYU_TABLE.items():
        assert ranks[method] == pytest.approx(published_mr, abs=0.005), method


CITYSCAPES_BASE = [0.7401, 0.9316, 0.0125, 27.77]
CITYSCAPES_HIGHER = [True, True, False, False]


@pytest.mark.parametrize(
    ("printed", "ours", "published"),
    [
        ([74.54, 93.29, 0.0145, 32.59], 8.13, 8.13),  # FAMO
        ([75.41, 93.66, 0.0129, 35.02], 6.72, 6.82),  # Nash-MTL: §2 records the 0.10 gap (per-seed averaging)
        ([72.02, 92.85, 0.0140, 30.13], 5.88, 5.89),  # UW
    ],
)
def test_delta_m_cityscapes_matches_benchmarks_section_2(printed: list[float], ours: float, published: float) -> None:
    values = [printed[0] / 100, printed[1] / 100, printed[2], printed[3]]
    result = delta_m(values, CITYSCAPES_BASE, CITYSCAPES_HIGHER)
    assert round(result, 2) == ours
    assert abs(result - published) <= 0.105


def test_delta_m_qm9_famo_uses_full_precision_base() -> None:
    base = [0.0671, 0.1814, 60.576, 53.915, 0.5027, 4.539, 58.838, 64.244, 63.852, 66.223, 0.07212]
    famo = [0.15, 0.30, 94.0, 95.2, 1.63, 4.95, 70.82, 71.2, 71.2, 70.3, 0.10]
    result = delta_m(famo, base, [False] * 11)
    assert round(result, 1) == 58.3  # paper: 58.5 (per-seed averaging, BENCHMARKS.md §2)


def test_delta_m_hand_computed() -> None:
    # metric 1 higher-better 0.5 -> 0.6 (+20% better = -20), metric 2 lower-better 2 -> 3 (+50% worse = +50)
    assert delta_m([0.6, 3.0], [0.5, 2.0], [True, False]) == pytest.approx((-20.0 + 50.0) / 2)


@pytest.mark.parametrize(
    ("values", "baseline", "higher", "match"),
    [
        ([1.0], [1.0, 2.0], [True, True], "one value per metric"),
        ([1.0, 2.0], [1.0, 2.0], [True], "one value per metric"),
        ([1.0, 2.0], [0.0, 2.0], [True, True], r"baseline\[0\] = 0"),
        ([1.0, math.nan], [1.0, 2.0], [True, True], r"values\[1\]"),
        ([1.0, 2.0], [1.0, math.inf], [True, True], r"baseline\[1\]"),
        ([], [], [], "empty"),
    ],
)
def test_delta_m_rejects_bad_input(values, baseline, higher, match) -> None:
    with pytest.raises(ValueError, match=match):
        delta_m(values, baseline, higher)


metric_vectors = st.lists(
    st.floats(min_value=0.01, max_value=100.0, allow_nan=False), min_size=1, max_size=12
)


@settings(max_examples=60, deadline=None)
@given(baseline=metric_vectors, data=st.data())
def test_delta_m_of_baseline_is_zero_and_sign_flips(baseline: list[float], data) -> None:
    higher = data.draw(st.lists(st.booleans(), min_size=len(baseline), max_size=len(baseline)))
    values = data.draw(
        st.lists(st.floats(min_value=0.01, max_value=100.0), min_size=len(baseline), max_size=len(baseline))
    )
    assert delta_m(baseline, baseline, higher) == 0.0
    flipped = [not h for h in higher]
    assert delta_m(values, baseline, flipped) == pytest.approx(-delta_m(values, baseline, higher), abs=1e-9)
    # Improving one higher-better metric can only lower Δm.
    if higher[0]:
        better = [values[0] * 1.5, *values[1:]]
        assert delta_m(better, baseline, higher) < delta_m(values, baseline, higher)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_mean_rank_range_and_ties(data) -> None:
    n_metrics = data.draw(st.integers(1, 6))
    n_methods = data.draw(st.integers(1, 8))
    higher = data.draw(st.lists(st.booleans(), min_size=n_metrics, max_size=n_metrics))
    # Few distinct values so that ties occur.
    value = st.sampled_from([0.1, 0.2, 0.3, 1.0, 2.5])
    table = {
        f"m{i}": data.draw(st.lists(value, min_size=n_metrics, max_size=n_metrics)) for i in range(n_methods)
    }
    ranks = metric_ranks(table, higher)
    mr = mean_rank(table, higher)
    for method, row in table.items():
        assert 1.0 <= mr[method] <= n_methods
        assert mr[method] == pytest.approx(sum(ranks[method]) / n_metrics)
    for metric in range(n_metrics):
        column = sorted({ranks[m][metric] for m in table})
        assert column == list(range(1, len(column) + 1))  # dense: consecutive ranks
        for a in table:
            for b in table:
                if table[a][metric] == table[b][metric]:
                    assert ranks[a][metric] == ranks[b][metric]


def test_metric_ranks_dense_hand_example() -> None:
    table = {"A": [0.9, 1.0], "B": [0.9, 3.0], "C": [0.5, 2.0]}
    ranks = metric_ranks(table, [True, False])
    assert ranks == {"A": [1, 1], "B": [1, 3], "C": [2, 2]}
    assert mean_rank(table, [True, False]) == {"A": 1.0, "B": 2.0, "C": 2.0}


def test_metric_ranks_rejects_bad_rows() -> None:
    with pytest.raises(ValueError, match="expected 2"):
        metric_ranks({"A": [1.0, 2.0], "B": [1.0]}, [True, True])
    with pytest.raises(ValueError, match="at least one method"):
        metric_ranks({}, [True])
    with pytest.raises(ValueError, match="at least one metric"):
        mean_rank({"A": []}, [])
