"""Chapter 5's ablations of APT's assumed rules, from stored records: per-run quantities and paired differences.

The arms (``apt.grids.ablation_arms``) are one MTL method on one benchmark under a base optimizer, APT with its
assumed defaults, one-rule changes of it, and the fixed-β control (APT's base optimizer at β_min = β_max = β̄,
APT's mean β). Per run r of arm a and seed s this module keeps

    Δm%(a, s)            against the single-task baselines of the same profile and seeds (``apt.metrics.delta_m``),
    β̄_r = mean_t β̄_{r,t}  the mean over recorded steps of the numel-weighted mean β over parameter tensors,
    share_r = median_t ‖(1 − β_t) g_t‖ / ‖m_t‖   (instant-gradient share, chapter 3),
    fidelity_r = median_t cos(Δθ_t, −g_t)         (update fidelity, chapter 3),

and compares arms by the difference paired by seed, d_s = Δm%(a, s) − Δm%(b, s), with a 95% t-interval over the
seeds (``apt.analysis.paired_difference``; resolved when the interval excludes 0). Two comparisons answer the
chapter's question: APT's default arm against its base optimizer (does APT change the result?) and the fixed-β
control against APT's default arm (if they do not differ, APT's effect is that of a smaller average β, not of
adapting it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from apt.analysis import paired_difference, signed_pm, stl_baseline
from apt.experiment import record_path
from apt.grids import ABLATION_BENCHMARK, ABLATION_SEEDS, ablation_arms, ablation_baselines, beta_over_adapted
from apt.metrics import delta_m
from apt.store import read_record

# (APT variant, its base optimizer) as the prose names them
FAMILY_NAMES: dict[str, tuple[str, str]] = {"apt_adam": ("APT-Adam", "Adam"), "apt_muon": ("APT-Muon", "Muon")}


@dataclass
class Ablations:
    """The ablation runs of the complete seeds, and the arms that matter for each family.

    ``runs``: one row per run: ``family``, ``arm`` (the variant's label), ``varies``, ``seed``,
    ``mean accuracy (%)``, ``delta_m``, ``mean beta`` (β̄_r, NaN for a constant-β base optimizer without the
    series), ``share`` and ``fidelity``. ``base_arm`` / ``default_arm`` / ``control_arm``: per family, the labels of
    the base optimizer, of APT with its assumed defaults and of the fixed-β control (None when not stored).
    ``control_beta``: per family, the control's β̄ (None likewise). ``default_beta``: per family, the default
    arm's β̄_{r,t} series, one column per seed, indexed by training step. ``seeds``: the complete seeds the runs
    cover.
    """

    runs: pd.DataFrame
    seeds: list[int]
    baseline_label: str
    base_arm: dict[str, str]
    default_arm: dict[str, str]
    control_arm: dict[str, str | None]
    control_beta: dict[str, float | None]
    default_beta: dict[str, pd.DataFrame]

    @property
    def families(self) -> list[str]:
        return list(self.base_arm)

    def differences(self, family: str, reference: str, value: str = "delta_m",
                    arms: Sequence[str] | None = None) -> pd.DataFrame:
        """arm − ``reference`` of ``value`` for every other arm of ``family`` (or only ``arms``), paired by seed, in
        the order the arms were defined: columns arm, difference, ci95, n_seeds, resolved."""
        frame = self.runs[self.runs["family"] == family]
        parts = [paired_difference(frame[frame["arm"].isin([arm, reference])].assign(group=arm), value,
                                   column="arm", treatment=arm, control=reference, by="group")
                 for arm in frame["arm"].unique() if arm != reference and (arms is None or arm in arms)]
        columns = ["arm", "difference", "ci95", "n_seeds", "resolved"]
        return (pd.concat(parts, ignore_index=True).rename(columns={"group": "arm"}) if parts
                else pd.DataFrame(columns=columns))

    def vs_base(self, family: str) -> pd.DataFrame:
        """Every arm of ``family`` against its base optimizer."""
        return self.differences(family, self.base_arm[family])

    def difference_of(self, family: str, arm: str | None, reference: str) -> pd.Series | None:
        """The row of ``differences(family, reference)`` for ``arm`` (None if either is not stored)."""
        if arm is None:
            return None
        table = self.differences(family, reference, arms=[arm])
        row = table[table["arm"] == arm]
        return None if row.empty else row.iloc[0]

    def apt_vs_base(self, family: str) -> pd.Series | None:
        """APT's default arm − the base optimizer (Δm% points, paired by seed)."""
        return self.difference_of(family, self.default_arm[family], self.base_arm[family])

    def control_vs_apt(self, family: str) -> pd.Series | None:
        """The fixed-β control − APT's default arm (Δm% points, paired by seed)."""
        return self.difference_of(family, self.control_arm[family], self.default_arm[family])

    def mean_beta(self, family: str, held: tuple[float, float] | None = None) -> float:
        """Mean over the default arm's runs of β̄_r: over every tensor, or with ``held`` = (φ, β_h) over the
        adapted tensors only (``apt.grids.beta_over_adapted``)."""
        frame = self.runs[(self.runs["family"] == family) & (self.runs["arm"] == self.default_arm[family])]
        return beta_over_adapted(float(frame["mean beta"].mean()), held)

    def finding_text(self, family: str) -> str:
        """'APT-Muon − Muon: +2.47 ± 0.51 points (resolved); Muon at a fixed β = 0.69 (APT's mean) − APT-Muon:
        −0.19 ± 0.24 points (unresolved): ...', with a verdict that follows from the two intervals."""
        name, base = FAMILY_NAMES.get(family, (family, self.base_arm[family]))
        apt, control = self.apt_vs_base(family), self.control_vs_apt(family)
        if apt is None:
            return f"{name}: not measured in this build"
        text = f"{name} − {base}: {difference_text(apt)}"
        if control is None:
            return text + "; the fixed-β control is not stored"
        text += (f"; {base} at a fixed β = {self.control_beta[family]:.2f} (APT's mean) − {name}: "
                 f"{difference_text(control)}")
        if not np.isfinite(control["ci95"]):
            return text
        if control["resolved"]:
            return text + ", so adapting β, not only its smaller mean, changes the result"
        if apt["resolved"]:
            return text + f", so the seeds run here do not show that {name}'s effect needs the adaptivity"
        return text + ": neither difference is resolved"


def finding_texts(ablations: Ablations | None) -> dict[str, str]:
    """Per APT variant, ``Ablations.finding_text``, or that it is not measured (no complete seed)."""
    return {family: ablations.finding_text(family) if ablations else
            f"{FAMILY_NAMES[family][0]}: not measured in this build (no complete seed of the ablations)"
            for family in FAMILY_NAMES}


def difference_text(row: pd.Series) -> str:
    """'+2.47 ± 0.51 points (resolved)': one row of a paired-difference table, with its verdict."""
    verdict = ("one seed: no interval" if not np.isfinite(row["ci95"])
               else "resolved" if row["resolved"] else "unresolved")
    return f"{signed_pm(row['difference'], row['ci95'])} points ({verdict})"


def ablation_runs(arms: Mapping[str, Sequence[tuple[Any, Any]]], records: Mapping[str, dict[str, Any]],
                  stl_records: Sequence[dict[str, Any]], benchmark: str) -> Ablations:
    """``Ablations`` from the (variant, config) pairs of each family (``apt.grids.ablation_arms``; the first
    variant is the base optimizer, the second APT's assumed defaults, the control the one that
    ``is_fixed_beta_control``), the stored ``records`` by run id (diagnostics on) and the single-task records.

    Raises KeyError naming the run when an arm's record is not in ``records``.
    """
    base, label = stl_baseline(stl_records, benchmark)
    rows = []
    for family, pairs in arms.items():
        for variant, config in pairs:
            if config.run_id not in records:
                raise KeyError(f"ablation_runs: no record of {family} arm {variant.label!r}, run {config.run_id}")
            record = records[config.run_id]
            info, metrics, diag = record["benchmark"], record["final"]["test_metrics"], record["diagnostics"]
            values = [metrics[name] for name in info["metric_names"]]
            rows.append({
                "family": family, "arm": variant.label, "varies": variant.varies, "seed": config.seed,
                "mean accuracy (%)": 100 * float(np.mean(values)),
                "delta_m": delta_m(values, base, info["metric_higher_better"]),
                "mean beta": float(np.mean(diag["beta_mean"])) if diag.get("beta_mean") else np.nan,
                "share": float(np.median(diag["instant_gradient_share"])),
                "fidelity": float(np.median(diag["update_instant_cosine"])),
            })
    labels = {family: list(dict.fromkeys(v.label for v, _ in pairs)) for family, pairs in arms.items()}
    default_beta = {family: pd.DataFrame({c.seed: pd.Series(records[c.run_id]["diagnostics"]["beta_mean"],
                                                             index=records[c.run_id]["diagnostics"]["step"])
                                          for v, c in pairs if v.label == labels[family][1]})
                    for family, pairs in arms.items()}
    controls = {family: next((v for v, _ in pairs if v.is_fixed_beta_control), None)
                for family, pairs in arms.items()}
    return Ablations(
        runs=pd.DataFrame(rows),
        seeds=sorted({c.seed for pairs in arms.values() for _, c in pairs}),
        baseline_label=label,
        base_arm={f: names[0] for f, names in labels.items()},
        default_arm={f: names[1] for f, names in labels.items()},
        control_arm={f: v.label if v else None for f, v in controls.items()},
        control_beta={f: float(dict(v.optimizer_hp)["beta_min"]) if v else None for f, v in controls.items()},
        default_beta=default_beta,
    )


@dataclass
class StoredAblations:
    """What the store holds of the ablations: ``ablations`` on the complete seeds (None while no seed is
    complete), how many runs are stored of how many, and the complete seeds."""

    ablations: Ablations | None
    profile: str
    stored: int
    total: int
    complete_seeds: list[int]

    @property
    def coverage(self) -> str:
        """'85 of 85 ablation runs and baselines stored (profile cpu); complete seeds: [0, 1, 2, 3, 4]'."""
        return (f"{self.stored} of {self.total} ablation runs and baselines stored (profile {self.profile}); "
                f"complete seeds: {self.complete_seeds or 'none'}")


def stored_ablations(profile: str, *, results_dir: Path | None = None, data_dir: str | None = None,
                     device: str = "cpu") -> StoredAblations:
    """The ablations of ``profile`` from the store, on the seeds whose every arm, fixed-β control and single-task
    baseline is stored (every arm is averaged over the same seeds)."""
    arms = ablation_arms(profile, results_dir=results_dir, device=device, data_dir=data_dir)
    stl_configs = ablation_baselines(profile, device=device, data_dir=data_dir)
    configs = [c for pairs in arms.values() for _, c in pairs] + stl_configs
    stored = {c.run_id: read_record(record_path(c, results_dir)) for c in configs
              if record_path(c, results_dir).exists()}
    has_controls = all(any(v.is_fixed_beta_control for v, _ in pairs) for pairs in arms.values())
    complete = [s for s in ABLATION_SEEDS[profile]
                if has_controls and all(c.run_id in stored for c in configs if c.seed == s)]
    if not complete:
        return StoredAblations(None, profile, len(stored), len(configs), [])
    arms = {family: [(v, c) for v, c in pairs if c.seed in complete] for family, pairs in arms.items()}
    stl = [stored[c.run_id] for c in stl_configs if c.seed in complete]
    return StoredAblations(ablation_runs(arms, stored, stl, ABLATION_BENCHMARK), profile, len(stored), len(configs),
                           complete)
