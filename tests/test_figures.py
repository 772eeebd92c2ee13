"""The shared figures draw what their docstrings say: panels in the given order, one colour per method."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from apt.figures import curves_per_optimizer_figure, paired_difference_forest  # noqa: E402


def _curves(optimizers: list[str], methods: list[str], epochs: int = 3) -> pd.DataFrame:
    return pd.DataFrame([{"optimizer": o, "method": m, "epoch": e + 1, "value": 10.0 * i + j + e}
                         for i, o in enumerate(optimizers) for j, m in enumerate(methods) for e in range(epochs)])


@pytest.mark.parametrize("optimizers", [("adam", "apt_adam", "muon", "apt_muon"), ("muon", "adam", "sgd")])
def test_curves_per_optimizer_draws_one_panel_per_optimizer_in_order_with_one_colour_per_method(
        optimizers: tuple[str, ...]) -> None:
    methods = ["ls", "mgda", "famo"]
    # rows in an order unlike the panel order: the panels must follow `optimizers`, not the table
    fig = curves_per_optimizer_figure(_curves(sorted(optimizers), methods), optimizers=optimizers,
                                      ylabel="y", title="t", highlight=("ls",))
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == list(optimizers)
    assert len(fig.axes) == 2 * ((len(optimizers) + 1) // 2)
    colours = {}
    for ax, optimizer in zip(visible, optimizers):
        lines = {line.get_label(): line for line in ax.get_lines()}
        assert sorted(lines) == sorted(methods)
        # the values of this optimizer's panel are its own rows (10 * its index in the sorted table)
        offset = 10.0 * sorted(optimizers).index(optimizer)
        assert list(lines["mgda"].get_ydata()) == [offset + 1, offset + 2, offset + 3]
        assert lines["ls"].get_linewidth() > lines["mgda"].get_linewidth()
        for method, line in lines.items():
            assert colours.setdefault(method, line.get_color()) == line.get_color()
    assert len(set(colours.values())) == len(methods)
    (legend,) = fig.legends
    assert [text.get_text() for text in legend.get_texts()] == methods
    fig.canvas.draw()
    ticks = visible[0].get_xticks()
    assert len(ticks) and all(float(t).is_integer() for t in ticks)  # whole epochs only, even for 3 epochs
    plt.close(fig)


def test_forest_draws_intervals_only_where_there_are_seeds_to_make_them() -> None:
    two_seeds = pd.DataFrame({"method": ["ls", "mgda"], "difference": [1.0, -0.5], "ci95": [0.4, 0.9],
                              "n_seeds": [2, 2], "resolved": [True, False]})
    fig, (left, right) = plt.subplots(1, 2)
    paired_difference_forest(left, two_seeds, "method", xlabel="x", title="t")
    assert left.get_title() == "t (2 seeds)"
    # two error bars: the resolved one blue, the unresolved one grey, each spanning difference ± ci95
    bars = [c for c in left.containers]
    assert len(bars) == 2
    segments = [bar.lines[2][0].get_segments()[0] for bar in bars]
    assert [x for seg in segments for x in seg[:, 0]] == pytest.approx([0.6, 1.4, -1.4, 0.4])
    assert [bar.lines[0].get_color() for bar in bars] == ["tab:blue", "tab:gray"]
    labels = {t.get_text(): y for t, y in zip(left.get_yticklabels(), left.get_yticks())}
    assert labels == {"ls": 1, "mgda": 0}  # the table's first row at the top
    one_seed = two_seeds.assign(ci95=float("nan"), n_seeds=1, resolved=False)
    paired_difference_forest(right, one_seed, "method", xlabel="x", title="t")
    assert right.get_title() == "t (1 seed: no interval)"
    assert not right.containers  # no error bars: open markers only
    assert [line.get_markerfacecolor() for line in right.get_lines()[:2]] == ["none", "none"]
    plt.close(fig)


def test_forest_counts_the_seeds_of_the_rows_that_have_a_difference() -> None:
    mixed = pd.DataFrame({"method": ["ls", "mgda", "famo"], "difference": [1.0, float("nan"), 2.0],
                          "ci95": [0.5, float("nan"), float("nan")], "n_seeds": [3, 0, 1],
                          "resolved": [True, False, False]})
    fig, ax = plt.subplots()
    paired_difference_forest(ax, mixed, "method", xlabel="x", title="t")
    assert ax.get_title() == "t (1 seed: no interval)"  # the fewest seeds among the rows drawn
    assert len(ax.containers) == 1  # ls's interval; famo an open marker; mgda nothing to draw
    plt.close(fig)
