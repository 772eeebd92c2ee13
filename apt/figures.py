"""Figures the chapters share."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes


def paired_difference_forest(ax: Axes, table: pd.DataFrame, label: str, *, xlabel: str, title: str) -> None:
    """One row per line of ``table`` (``apt.analysis.paired_difference`` output: difference, ci95, resolved):
    the mean paired difference with its 95% interval, blue when the interval excludes 0 (resolved), grey when not,
    labelled by the column ``label``; a vertical line at 0."""
    y = np.arange(len(table))[::-1]
    for yi, d, h, resolved in zip(y, table["difference"], table["ci95"].fillna(0), table["resolved"]):
        ax.errorbar(d, yi, xerr=h, fmt="o", color="tab:blue" if resolved else "tab:gray", capsize=3)
    ax.set_yticks(y, table[label])
    ax.axvline(0, color="black", lw=0.8)
    ax.set(xlabel=xlabel, title=title)
