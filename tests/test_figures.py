"""The shared figures draw what their docstrings say: panels in the given order, one colour per method."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from apt.figures import curves_per_optimizer_figure  # noqa: E402


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
    plt.close(fig)
