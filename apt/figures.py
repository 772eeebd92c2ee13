"""Figures the chapters share."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

# One colour per optimizer setting in every chapter: a base optimizer and its APT variant share a hue family.
OPTIMIZER_COLORS: dict[str, str] = {"adam": "tab:blue", "apt_adam": "tab:cyan", "muon": "tab:red",
                                    "apt_muon": "tab:orange"}


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


def apt_effect_figure(effects: dict[str, pd.DataFrame], *, profile: str,
                      apts: tuple[str, ...] = ("apt_adam", "apt_muon")) -> Figure:
    """One row per benchmark, one column per APT variant: ``paired_difference_forest`` of the paired differences
    Δm%(method, APT-X, s) − Δm%(method, X, s) (``BenchmarkResults.apt_effect`` of each benchmark in ``effects``)."""
    fig, axes = plt.subplots(max(len(effects), 1), len(apts), figsize=(12, 4.3 * max(len(effects), 1)),
                             squeeze=False)
    for row, (name, effect) in zip(axes, effects.items()):
        for ax, apt in zip(row, apts):
            part = effect[effect["apt"] == apt].reset_index(drop=True)
            paired_difference_forest(ax, part, "method", title=f"{name}: {apt}",
                                     xlabel=f"Δm%({apt}) − Δm%({apt[4:]}) (points; < 0: APT helps)")
    fig.suptitle(f"APT's effect per method, paired by seed, 95% CI (profile {profile})")
    fig.tight_layout()
    return fig
