"""Figures the chapters share."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from apt.analysis import MIN_SEEDS_FOR_INTERVAL
from apt.page import counted

# One colour per optimizer setting in every chapter: a base optimizer and its APT variant share a hue family.
OPTIMIZER_COLORS: dict[str, str] = {"adam": "tab:blue", "apt_adam": "tab:cyan", "muon": "tab:red",
                                    "apt_muon": "tab:orange"}


def paired_difference_forest(ax: Axes, table: pd.DataFrame, label: str, *, xlabel: str, title: str) -> None:
    """One row per line of ``table`` (``apt.analysis.paired_difference`` output: difference, ci95, resolved,
    n_seeds): the mean paired difference with its 95% interval, blue when the interval excludes 0 (resolved), grey
    when not, labelled by the column ``label``; a vertical line at 0. A row without an interval (one seed) is an
    open grey circle, and the title says how many seeds the panel pairs."""
    y = np.arange(len(table))[::-1]
    for yi, d, h, resolved in zip(y, table["difference"], table["ci95"], table["resolved"]):
        if pd.isna(h):
            ax.plot(d, yi, "o", mfc="none", color="tab:gray")
        else:
            ax.errorbar(d, yi, xerr=h, fmt="o", color="tab:blue" if resolved else "tab:gray", capsize=3)
    ax.set_yticks(y, table[label])
    ax.axvline(0, color="black", lw=0.8)
    paired = table.loc[table["difference"].notna(), "n_seeds"]
    seeds = int(paired.min()) if len(paired) else 0
    ax.set(xlabel=xlabel, title=f"{title} ({seeds_note(seeds)})")


def seeds_note(n_seeds: int) -> str:
    """'2 seeds', or '1 seed: no interval' below ``MIN_SEEDS_FOR_INTERVAL``: what a panel's intervals rest on."""
    return counted(n_seeds, "seed") + ("" if n_seeds >= MIN_SEEDS_FOR_INTERVAL else ": no interval")


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
    fig.suptitle(f"APT's effect per method, paired by seed, 95% CI where there are 2 seeds or more (profile {profile})")
    fig.tight_layout()
    return fig


def curves_per_optimizer_figure(curves: pd.DataFrame, *, optimizers: tuple[str, ...], ylabel: str, title: str,
                                highlight: tuple[str, ...] = ()) -> Figure:
    """Learning curves, one panel per optimizer setting in the order of ``optimizers`` (two per row, shared y
    axis), one line per method with the same colour in every panel and one legend for the figure.

    ``curves`` has columns optimizer, method, epoch (1-based) and value, one row per (optimizer, method, epoch);
    methods in ``highlight`` are drawn thicker."""
    methods = list(dict.fromkeys(curves["method"]))
    colors = dict(zip(methods, plt.get_cmap("tab20").colors))
    n_rows = (len(optimizers) + 1) // 2
    fig, axes = plt.subplots(n_rows, 2, figsize=(11, 3.8 * n_rows), sharey=True, squeeze=False)
    for ax, optimizer in zip(axes.flat, optimizers):
        for method, part in curves[curves["optimizer"] == optimizer].groupby("method", sort=False):
            ax.plot(part["epoch"], part["value"], marker=".", color=colors[method],
                    lw=2.2 if method in highlight else 1.0, label=method)
        ax.set(title=optimizer, xlabel="epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole: no 1.5 ticks on short runs
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel)
    for ax in axes.flat[len(optimizers):]:
        ax.set_visible(False)
    handles = {line.get_label(): line for ax in axes.flat for line in ax.get_lines()}
    fig.legend([handles[m] for m in methods if m in handles], [m for m in methods if m in handles],
               title="method", loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
