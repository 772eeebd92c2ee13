"""Δm% and mean rank against the published tables of BENCHMARKS.md §4, plus properties."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apt.benchmarks import benchmark_class
from apt.metrics import delta_m, mean_rank, metric_ranks
from apt.published import published_baseline, published_table

# The published tables (BENCHMARKS.md §4) live in apt.published, in code units (percent columns / 100).
NYU = published_table("nyuv2")
NYU_BASE = published_baseline("nyuv2").tolist()
NYU_HIGHER = list(benchmark_class("nyuv2").metric_higher_better)
NYU_METRICS = list(benchmark_class("nyuv2").metric_names)


def _nyu_row(method: str) -> list[float]:
    return NYU.loc[method, NYU_METRICS].tolist()


def test_nyuv2_code_base_is_the_lineage_base() -> None:
    assert NYU_BASE == [0.3830, 0.6376, 0.6754, 0.2780, 25.01, 19.21, 0.3014, 0.5720, 0.6915]


# Δm% of the published rows is printed to 2 decimals and computed by the papers per seed (mean of per-seed
# Δm), we recompute it from the printed seed-mean metrics: agreement within 0.015 except IMTL-G (below).
@pytest.mark.parametrize("method", [m for m in NYU.index if m != "IMTL-G"])
def test_delta_m_reproduces_published_nyuv2_rows(method: str) -> None:
    assert delta_m(_nyu_row(method), NYU_BASE, NYU_HIGHER) == pytest.approx(NYU.loc[method, "delta_m"], abs=0.015)


def test_delta_m_famo_nyuv2_is_minus_4_10() -> None:
    assert round(delta_m(_nyu_row("FAMO"), NYU_BASE, NYU_HIGHER), 2) == -4.10


def test_delta_m_imtl_g_nyuv2_gap_is_pinned() -> None:
    # From the printed means IMTL-G gives -0.60, the table says -0.76: a 0.16 gap, the largest of the table,
    # consistent with the paper averaging per-seed Δm (BENCHMARKS.md §2). Pinned so that a change shows.
    ours = delta_m(_nyu_row("IMTL-G"), NYU_BASE, NYU_HIGHER)
    assert ours == pytest.approx(-0.60, abs=0.005)
    assert 0.1 < ours - NYU.loc["IMTL-G", "delta_m"] < 0.2


def test_mean_rank_reproduces_famo_paper_nyuv2_mr_column() -> None:
    assert len(NYU) == 12
    ranks = mean_rank({m: _nyu_row(m) for m in NYU.index}, NYU_HIGHER)
    for method in NYU.index:
        assert ranks[method] == pytest.approx(NYU.loc[method, "mean_rank"], abs=0.005), method


CITYSCAPES = published_table("cityscapes")
CITYSCAPES_BASE = published_baseline("cityscapes").tolist()
CITYSCAPES_HIGHER = list(benchmark_class("cityscapes").metric_higher_better)


@pytest.mark.parametrize(
    ("method", "ours"),
    [("FAMO", 8.13), ("Nash-MTL", 6.72), ("UW", 5.88)],  # Nash-MTL: §2 records the 0.10 gap (per-seed averaging)
)
def test_delta_m_cityscapes_matches_benchmarks_section_2(method: str, ours: float) -> None:
    assert CITYSCAPES_BASE == [0.7401, 0.9316, 0.0125, 27.77]
    values = CITYSCAPES.loc[method, list(benchmark_class("cityscapes").metric_names)].tolist()
    result = delta_m(values, CITYSCAPES_BASE, CITYSCAPES_HIGHER)
    assert round(result, 2) == ours
    assert abs(result - CITYSCAPES.loc[method, "delta_m"]) <= 0.105


def test_delta_m_qm9_famo_uses_full_precision_base() -> None:
    base = published_baseline("qm9").tolist()
    assert base == [0.0671, 0.1814, 60.576, 53.915, 0.5027, 4.539, 58.838, 64.244, 63.852, 66.223, 0.07212]
    famo = published_table("qm9").loc["FAMO", list(benchmark_class("qm9").metric_names)].tolist()
    assert famo == [0.15, 0.30, 94.0, 95.2, 1.63, 4.95, 70.82, 71.2, 71.2, 70.3, 0.10]
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
