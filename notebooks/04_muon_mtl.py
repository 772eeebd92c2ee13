# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# (chapter-muon-mtl)=
# # Claim 2: is Muon a multi-task learner?
#
# The APT paper {cite}`zhou2026apt` observes that "Muon — a recently emerged advanced optimizer — inherently
# functions as a multi-task learner". Our reading of why (the paper's argument is not available to us): Muon's
# orthogonalization {cite}`jordan2024muon` replaces the singular values of the momentum matrix by (roughly)
# ones, so directions that a few large singular values would dominate get equal weight. The paper's equations
# are not available either, so we test the claim in an operational form: **if
# Muon balances the tasks like an MTL method does, then the step it takes with the plainly summed losses (LS)
# should serve every task as evenly as the step an MTL method takes under Adam.**
#
# ## What is measured
#
# At a recorded training step $t$, let $g_{k,t} = \partial \ell_k / \partial \theta_{\mathrm{sh}}$ be task $k$'s
# minibatch gradient with respect to the shared parameters, $g_t$ the MTL method's aggregated gradient (what it
# writes into `.grad`) and $\Delta\theta_t = \theta_t - \theta_{t-1}$ the step the optimizer actually took on the
# shared parameters. The **alignment** of the step with task $k$ (register entry G4 of
# `apt.optim.assumptions`) is
#
# $$
# a_{k,t} = \cos(\Delta\theta_t, -g_{k,t}) \in [-1, 1],
# $$
#
# positive when the step decreases $\ell_k$ to first order. Its **spread** over the $K$ tasks,
#
# $$
# D_t = \max_k a_{k,t} - \min_k a_{k,t} \qquad (K = 2:\ D_t = |a_{1,t} - a_{2,t}|),
# $$
#
# is $0$ for a step that makes the same angle with every task gradient — the property IMTL-G {cite}`liu2021imtl`
# builds its direction to have — and grows as the step favours one task. We use a difference rather than the
# ratio $\min_k a_{k,t} / \max_k a_{k,t}$ because single-minibatch alignments can be near zero or negative, where
# a ratio is undefined or flips sign. (The record also stores `task_alignment_std`, the standard deviation over
# tasks, $D_t/2$ for two tasks; the tables here compute $D_t$ from the per-task values.)
#
# A step orthogonal to every task gradient has $D_t = 0$ without serving any task, so balance must be read
# together with progress. Over the recorded steps of a run we report the means
#
# $$
# \bar a = \operatorname{mean}_{t,k}\, a_{k,t}, \qquad \bar D = \operatorname{mean}_t D_t, \qquad
# R = \bar D / \bar a, \qquad \bar a_{\min} = \operatorname{mean}_t \min_k a_{k,t},
# $$
#
# the average alignment, the average spread, the **relative spread** $R$ (imbalance per unit of progress; the
# headline balance measure) and the alignment of the worst-served task. The same quantities of the method's own
# direction, $c_{k,t} = \cos(g_t, g_{k,t})$ with spread $D^{\mathrm{inst}}_t$, show what the method *asked* for
# before the optimizer mixed in its history (chapter {ref}`chapter-instant-gradient`): comparing $D^{\mathrm{inst}}$
# with $D$ separates the method's balancing from the optimizer's.
#
# ## The runs
#
# Multi-MNIST (two tasks: the top-left and bottom-right digit of one image; a shared LeNet trunk) under this build's
# profile ({glue:text}`claim2_profile`). Arms: LS and four gradient-based MTL methods — MGDA {cite}`sener2018mgda`, IMTL-G {cite}`liu2021imtl`,
# Nash-MTL {cite}`navon2022nashmtl` and FairGrad {cite}`ban2024fairgrad` — each under Adam and under Muon
# (Muon on the hidden matrices `conv2` [20 × 250] and `fc` [50 × 500], AdamW on the first layer, the biases and
# the heads; learning rate {glue:text}`claim2_lr` for both, Muon's step scaled to AdamW's RMS, register O3). Seeds
# {glue:text}`claim2_seeds`, shared across arms (same initialization and batch order). The alignments are recorded
# every {glue:text}`claim2_every` steps (the task Jacobian costs $K$ backward passes on those steps); Muon's
# singular values every {glue:text}`claim2_spectrum_every` steps. QM9 ($K = 11$, where balance has more room to matter) is not run here:
# recording alignments needs the 11-task Jacobian at every recorded step (about 8× a step, TOOLCHAIN.md), which
# did not fit this chapter's budget next to the Multi-MNIST grid.

# %% tags=["parameters"]
profile = "cpu"
device = "cpu"
seed = 0
data_dir = None
results_dir = None

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from myst_nb import glue

from apt.analysis import mean_ci, paired_difference, resolved_signs
from apt.experiment import record_path, run
from apt.grids import (CLAIM2_BENCHMARK, CLAIM2_DIAGNOSTICS_EVERY, CLAIM2_LR, CLAIM2_METHODS, CLAIM2_OPTIMIZERS,
                       CLAIM2_SPECTRUM_EVERY, claim2_configs, claim2_seeds)
from apt.optim.factory import DEFAULT_HP
from apt.optim.spectra import alignment_frame, effective_rank_frame, spectra_frame
from apt.page import wrapped

BENCHMARK = CLAIM2_BENCHMARK
METHODS = list(CLAIM2_METHODS)
LABEL = {"ls": "LS", "mgda": "MGDA", "imtl_g": "IMTL-G", "nash_mtl": "Nash-MTL", "fairgrad": "FairGrad"}
OPTIMIZERS = list(CLAIM2_OPTIMIZERS)
SEEDS = list(claim2_seeds(seed))
EVERY = CLAIM2_DIAGNOSTICS_EVERY[profile]
SPECTRUM_EVERY = CLAIM2_SPECTRUM_EVERY[profile]
glue("claim2_profile", profile, display=False)
glue("claim2_seeds", " and ".join(map(str, SEEDS)), display=False)
glue("claim2_every", EVERY, display=False)
glue("claim2_lr", f"{CLAIM2_LR:g}", display=False)
glue("claim2_muon_momentum", f"{DEFAULT_HP['muon']['momentum']:g}", display=False)
glue("claim2_spectrum_every", SPECTRUM_EVERY, display=False)

# NBVAL_IGNORE_OUTPUT
# (how many runs are missing depends on what the store already holds; nbval needs the marker alone on its line)
configs = claim2_configs(profile, seed, device=device, data_dir=data_dir)
missing = [c.run_id for c in configs.values() if not record_path(c, results_dir).exists()]
print(f"{len(configs)} runs, profile {profile}; {len(missing)} not yet in the results store (trained now)")
records = {key: run(config, results_dir=results_dir, progress=False) for key, config in configs.items()}

# %% tags=["hide-input"]
step_tables = []
for (method, optimizer, run_seed), record in records.items():
    table = alignment_frame(record)
    step_tables.append(table.assign(method=method, optimizer=optimizer, seed=run_seed))
steps = pd.concat(step_tables, ignore_index=True)

runs = (steps.groupby(["method", "optimizer", "seed"])
        .agg(alignment=("mean", "mean"), spread=("spread", "mean"), worst=("min", "mean"),
             gap=("a_left", "mean"), instant_spread=("instant_spread", "mean"))
        .reset_index())
runs["gap"] -= steps.groupby(["method", "optimizer", "seed"])["a_right"].mean().to_numpy()
runs["relative_spread"] = runs["spread"] / runs["alignment"]
accuracy = pd.DataFrame([{"method": m, "optimizer": o, "seed": s, **records[(m, o, s)]["final"]["test_metrics"]}
                         for (m, o, s) in records])
runs = runs.merge(accuracy, on=["method", "optimizer", "seed"])
runs["arm"] = runs["method"].map(LABEL) + " + " + runs["optimizer"].str.capitalize()

columns = {"alignment": "ā", "spread": "D̄", "relative_spread": "R = D̄/ā", "worst": "ā_min",
           "gap": "mean(a_left − a_right)", "instant_spread": "D̄ of the method's g_t", "acc_left": "acc left",
           "acc_right": "acc right"}
by_arm = runs.groupby(["method", "optimizer"])[list(columns)].mean()
by_arm = by_arm.loc[[(m, o) for o in OPTIMIZERS for m in METHODS]].rename(columns=columns)
by_arm.index = [f"{LABEL[m]} + {o.capitalize()}" for m, o in by_arm.index]
print(wrapped(f"per-run means over recorded steps, averaged over seeds {SEEDS} (profile {profile}); "
              "accuracies: test, mean of the last 3 epochs"))
by_arm.round(3)

# %% [markdown]
# ## Balance over training
#
# The spread $D_t$ and the mean alignment $\tfrac12(a_{1,t} + a_{2,t})$ at every recorded step, smoothed by a
# rolling mean over {glue:text}`claim2_rolling` recorded steps and averaged over the seeds, for LS under both optimizers and the four
# methods under Adam:

# %% tags=["hide-input"]
SHOWN = [("ls", "adam"), ("ls", "muon"), ("mgda", "adam"), ("imtl_g", "adam"), ("nash_mtl", "adam"),
         ("fairgrad", "adam")]
STYLE = {"adam": "-", "muon": "--"}
ROLLING = 20  # recorded steps
glue("claim2_rolling", ROLLING, display=False)
fig, axes = plt.subplots(1, 2, figsize=(13, 4.5), sharex=True)
for method, optimizer in SHOWN:
    part = steps[(steps.method == method) & (steps.optimizer == optimizer)]
    curve = part.groupby("step")[["spread", "mean"]].mean().rolling(ROLLING, min_periods=1).mean()
    width = 2.5 if method == "ls" else 1.3
    for axis, quantity in zip(axes, ["spread", "mean"]):
        axis.plot(curve.index, curve[quantity], STYLE[optimizer], linewidth=width,
                  label=f"{LABEL[method]} + {optimizer.capitalize()}")
axes[0].set(xlabel="training step", ylabel=r"spread $D_t = \max_k a_{k,t} - \min_k a_{k,t}$ (cosine units)",
            title="How unevenly the step serves the two tasks")
axes[1].set(xlabel="training step", ylabel=r"mean alignment $\frac{1}{2}\sum_k \cos(\Delta\theta_t, -g_{k,t})$",
            title="How much the step serves the tasks on average")
axes[0].legend()
fig.suptitle(f"Per-task alignment of the actual step, Multi-MNIST (profile {profile}, mean of seeds {SEEDS})")
fig.tight_layout()
plt.show()

# %% [markdown]
# Per run, the relative spread $R$ and the spread of the method's own direction next to that of the step
# actually taken (one marker per seed; bars: mean over seeds):

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, 2, figsize=(14, 4.8), gridspec_kw={"width_ratios": [1, 1.15]})
positions = np.arange(len(METHODS))
for offset, optimizer in zip((-0.2, 0.2), OPTIMIZERS):
    part = runs[runs.optimizer == optimizer].set_index("method")
    means = part.groupby(level=0)["relative_spread"].mean().loc[METHODS]
    axes[0].bar(positions + offset, means, width=0.38, alpha=0.5, label=optimizer.capitalize())
    for i, method in enumerate(METHODS):
        values = part.loc[[method], "relative_spread"]
        axes[0].scatter(np.full(len(values), i + offset), values, color="black", s=12, zorder=3)
    for i, method in enumerate(METHODS):
        axes[1].scatter(part.loc[[method], "instant_spread"], part.loc[[method], "spread"], color=f"C{i}", s=45,
                        marker="o" if optimizer == "adam" else "s", alpha=0.8,
                        label=f"{LABEL[method]} + {optimizer.capitalize()}")
axes[0].set_xticks(positions, [LABEL[m] for m in METHODS])
axes[0].set(ylabel=r"relative spread $R = \bar D / \bar a$ (dimensionless)", xlabel="MTL method",
            title="Imbalance per unit of progress (lower: more balanced)")
axes[0].legend(title="optimizer")
limit = float(max(runs["instant_spread"].max(), runs["spread"].max())) * 1.1
axes[1].plot([0, limit], [0, limit], color="grey", linewidth=0.8, label="step as balanced as $g_t$")
axes[1].set(xlim=(-0.01 * limit, limit), ylim=(0, limit), xlabel=r"$\bar D^{\mathrm{inst}}$: spread of the method's $g_t$",
            ylabel=r"$\bar D$: spread of the step $\Delta\theta_t$", title="What the method asked vs what was taken")
axes[1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
fig.suptitle(f"Balance of the update across tasks, Multi-MNIST (profile {profile}, seeds {SEEDS})")
fig.tight_layout()
plt.show()

# %% [markdown]
# Differences paired by seed (same initialization and batch order), with 95% Student-t intervals over the seeds.
# First, LS + Muon against each method under Adam; then what switching from Adam to Muon does within each method.

# %% tags=["hide-input"]
ls_muon = runs[(runs.method == "ls") & (runs.optimizer == "muon")]
pairs = []
for method in METHODS[1:]:
    method_adam = runs[(runs.method == method) & (runs.optimizer == "adam")]
    pairs.append(pd.concat([ls_muon.assign(side="ls+muon"), method_adam.assign(side="method+adam")])
                 .assign(comparison=f"LS+Muon − {LABEL[method]}+Adam"))
pairs = pd.concat(pairs, ignore_index=True)
versus_methods = pd.concat(
    [paired_difference(pairs, value, column="side", treatment="ls+muon", control="method+adam", by="comparison")
     .assign(quantity=value) for value in ("relative_spread", "spread", "alignment")], ignore_index=True)
muon_minus_adam = pd.concat(
    [paired_difference(runs, value, column="optimizer", treatment="muon", control="adam", by="method")
     .assign(quantity=value) for value in ("relative_spread", "spread", "alignment")], ignore_index=True)
muon_minus_adam["method"] = muon_minus_adam["method"].map(LABEL)


def readable(differences: pd.DataFrame, by: str) -> pd.DataFrame:
    """One row per comparison, one column per quantity: "difference ± ci95" (* when resolved)."""
    cells = differences.assign(cell=[f"{d:+.3f} ± {h:.3f}{' *' if r else ''}" for d, h, r in
                                     zip(differences["difference"], differences["ci95"], differences["resolved"])])
    table = cells.pivot(index=by, columns="quantity", values="cell")[["relative_spread", "spread", "alignment"]]
    return table.rename(columns={"relative_spread": "ΔR", "spread": "ΔD̄", "alignment": "Δā"})


print(wrapped(f"LS + Muon minus each method + Adam, paired by seed (profile {profile}, seeds {SEEDS}; * = resolved)"))
readable(versus_methods, "comparison")

# %%
print(wrapped(f"Muon minus Adam within each method, paired by seed (profile {profile}, seeds {SEEDS}; * = resolved)"))
readable(muon_minus_adam, "method")

# %% [markdown]
# ## What orthogonalization does to the spectrum
#
# For a Muon matrix $W$ [$A \times B$] at step $t$, Muon orthogonalizes the Nesterov momentum matrix
# $M_t = (1-\mu) G_t + \mu B_t$ ($B_t$ the momentum buffer, $G_t$ the instant gradient, $\mu$ = {glue:text}`claim2_muon_momentum`) and steps along
# $O_t = \mathrm{NS}(M_t) \approx U V^\top$ for $M_t = U S V^\top$. With $\sigma_1 \ge \sigma_2 \ge \dots$ the singular
# values of a matrix, the figure below shows $\sigma_i / \sigma_1$ of $G_t$, $M_t$ and $O_t$ (register G3); the
# **entropy effective rank** {cite}`roy2007erank`
#
# $$
# \mathrm{erank} = \exp\Big(-\sum_i p_i \log p_i\Big), \qquad p_i = \frac{\sigma_i}{\sum_j \sigma_j},
# $$
#
# counts how many directions carry the matrix ($\min(A, B)$ when all $\sigma_i$ are equal, 1 for rank one; singular
# values below $10^{-4}\sigma_1$, e.g. exact zeros of a rank-deficient matrix, are drawn at $10^{-4}$). If the
# tasks' gradient directions live in different singular directions of $M_t$, flattening the spectrum is what would
# give the weaker task's directions equal weight: that is the mechanism behind the claim.

# %% tags=["hide-input"]
spectra_record = records[("ls", "muon", seed)]
spectra = spectra_frame(spectra_record)
spectrum_steps = sorted(spectra["step"].unique())
chosen_steps = [spectrum_steps[0], spectrum_steps[len(spectrum_steps) // 2], spectrum_steps[-1]]
matrices = sorted(spectra["matrix"].unique())
KIND_LABEL = {"instant": "instant gradient $G_t$", "in": "momentum $M_t$ (before)", "out": r"$\mathrm{NS}(M_t)$ (after)"}
fig, axes = plt.subplots(len(matrices), len(chosen_steps), figsize=(13, 3.3 * len(matrices)), sharey=True,
                         squeeze=False)
for row, matrix in enumerate(matrices):
    for col, step in enumerate(chosen_steps):
        axis = axes[row, col]
        for kind in ("instant", "in", "out"):
            part = spectra[(spectra.matrix == matrix) & (spectra.step == step) & (spectra.kind == kind)]
            axis.plot(part["index"] + 1, part["relative"].clip(lower=1e-4), marker=".", label=KIND_LABEL[kind])
        axis.set(yscale="log", title=f"{matrix.removeprefix('shared.').removesuffix('.weight')}, step {step}",
                 xlabel="singular value index $i$")
        if col == 0:
            axis.set_ylabel(r"$\sigma_i / \sigma_1$ (log scale)")
axes[0, 0].legend(fontsize=8)
fig.suptitle(f"Singular spectra before and after orthogonalization, LS + Muon, Multi-MNIST "
             f"(profile {profile}, seed {seed})")
fig.tight_layout()
plt.show()

# %% [markdown]
# The effective rank of the same three matrices over training, as a fraction of $\min(A, B)$, for LS + Muon and
# MGDA + Muon (mean of the seeds):

# %%
rank_tables = [effective_rank_frame(records[(m, "muon", s)]).assign(method=m, seed=s)
               for m in ("ls", "mgda") for s in SEEDS]
ranks = pd.concat(rank_tables, ignore_index=True)
fig, axes = plt.subplots(1, len(matrices), figsize=(13, 4), sharey=True, squeeze=False)
for col, matrix in enumerate(matrices):
    axis = axes[0, col]
    for method, style in (("ls", "-"), ("mgda", ":")):
        for kind in ("instant", "in", "out"):
            part = ranks[(ranks.matrix == matrix) & (ranks.method == method) & (ranks.kind == kind)]
            curve = part.groupby("step")["rank_fraction"].mean()
            axis.plot(curve.index, curve, style, marker=".", color=f"C{('instant', 'in', 'out').index(kind)}",
                      label=f"{LABEL[method]}: {KIND_LABEL[kind]}")
    side = int(ranks[ranks.matrix == matrix]["min_side"].iloc[0])
    axis.set(title=f"{matrix.removeprefix('shared.').removesuffix('.weight')} (min(A, B) = {side})",
             xlabel="training step", ylim=(0, 1.05))
axes[0, 0].set_ylabel(r"effective rank / $\min(A, B)$")
axes[0, -1].legend(fontsize=7)
fig.suptitle(f"Effective rank before and after orthogonalization, Multi-MNIST (profile {profile}, seeds {SEEDS})")
fig.tight_layout()
plt.show()

# %% tags=["hide-input"]
def arm_mean(method: str, optimizer: str, quantity: str) -> float:
    return float(runs[(runs.method == method) & (runs.optimizer == optimizer)][quantity].mean())


def seed_values(method: str, optimizer: str, quantity: str) -> str:
    part = runs[(runs.method == method) & (runs.optimizer == optimizer)].sort_values("seed")
    return " and ".join(f"{value:.2f}" for value in part[quantity])


for method in METHODS:
    for optimizer in OPTIMIZERS:
        key = f"claim2_{method}_{optimizer}"
        for quantity in ("relative_spread", "spread", "alignment", "worst", "instant_spread"):
            glue(f"{key}_{quantity}", arm_mean(method, optimizer, quantity), display=False)
        glue(f"{key}_relative_spread_seeds", seed_values(method, optimizer, "relative_spread"), display=False)

adam_methods = runs[(runs.optimizer == "adam") & (runs.method != "ls")].groupby("method")["relative_spread"].mean()
muon_methods = runs[(runs.optimizer == "muon") & (runs.method != "ls")].groupby("method")["relative_spread"].mean()
glue("claim2_adam_methods_R_min", float(adam_methods.min()), display=False)
glue("claim2_adam_methods_R_max", float(adam_methods.max()), display=False)
glue("claim2_muon_methods_R_min", float(muon_methods.min()), display=False)
glue("claim2_muon_methods_R_max", float(muon_methods.max()), display=False)
versus = versus_methods[versus_methods.quantity == "relative_spread"]
glue("claim2_versus_resolved", int(versus["resolved"].sum()), display=False)
versus_spread = versus_methods[versus_methods.quantity == "spread"]
glue("claim2_versus_spread_resolved", int(versus_spread["resolved"].sum()), display=False)
glue("claim2_versus_count", len(versus), display=False)
glue("claim2_versus_below_zero", int((versus["difference"] < 0).sum()), display=False)
lower = int((versus["difference"] < 0).sum())
resolved_lower, _ = resolved_signs(versus)
glue("claim2_verdict",
     "yes, resolvedly: its relative spread is lower than every method's, and every difference is resolved"
     if resolved_lower == len(versus) else
     f"by the point estimates more balanced (a lower relative spread than every method), but resolvedly so "
     f"against only {resolved_lower} of the {len(versus)}" if lower == len(versus) else
     "not by the relative spread: it is lower than that of only some of the methods", display=False)
within = muon_minus_adam[muon_minus_adam.quantity == "relative_spread"]
glue("claim2_within_resolved", int(within["resolved"].sum()), display=False)
glue("claim2_within_below_zero", int((within["difference"] < 0).sum()), display=False)
glue("claim2_within_count", len(within), display=False)
final_ranks = ranks[(ranks.method == "ls") & (ranks.step == ranks.step.max())].groupby("kind")["rank_fraction"].mean()
for kind in ("in", "out", "instant"):
    glue(f"claim2_rank_fraction_{kind}", float(final_ranks[kind]), display=False)
glue("claim2_n_seeds", len(SEEDS), display=False)
glue("claim2_t_factor", float(mean_ci([0.0, 1.0])[1] / 0.5), display=False)
ls_within = within.set_index("method").loc["LS"]
glue("claim2_ls_within_R", float(ls_within["difference"]), display=False)
glue("claim2_ls_within_R_ci", float(ls_within["ci95"]), display=False)
glue("claim2_ls_within_resolved", "resolved" if ls_within["resolved"] else "unresolved", display=False)
glue("claim2_max_abs_gap", float(runs["gap"].abs().max()), display=False)
runs["accuracy"] = (runs["acc_left"] + runs["acc_right"]) / 2
for method in METHODS:
    for optimizer in OPTIMIZERS:
        glue(f"claim2_{method}_{optimizer}_accuracy", arm_mean(method, optimizer, "accuracy"), display=False)
glue("claim2_muon_methods_below_ls", int((muon_methods < arm_mean("ls", "muon", "relative_spread")).sum()),
     display=False)

# %% [markdown]
# ## What this shows
#
# **Is LS + Muon as balanced as the MTL methods under Adam?** On this benchmark and profile,
# {glue:text}`claim2_verdict`. The step LS + Muon takes has $R$ = {glue:text}`claim2_ls_muon_relative_spread:.2f`
# (seeds: {glue:text}`claim2_ls_muon_relative_spread_seeds`), against {glue:text}`claim2_ls_adam_relative_spread:.2f`
# for LS + Adam and between {glue:text}`claim2_adam_methods_R_min:.2f` and {glue:text}`claim2_adam_methods_R_max:.2f`
# for the four MTL methods under Adam. Paired by seed, LS + Muon has the lower $R$ against
# {glue:text}`claim2_versus_below_zero` of the {glue:text}`claim2_versus_count` methods, and
# {glue:text}`claim2_versus_resolved` of these differences are resolved (95% interval excluding zero); in the
# spread $\bar D$ alone, {glue:text}`claim2_versus_spread_resolved` of the {glue:text}`claim2_versus_count` are. Within LS,
# Muon − Adam changes $R$ by {glue:text}`claim2_ls_within_R:+.2f` ± {glue:text}`claim2_ls_within_R_ci:.2f`
# ({glue:text}`claim2_ls_within_resolved`). The imbalance is mostly from step to step, not a persistent preference:
# the mean signed gap $a_{\mathrm{left}} - a_{\mathrm{right}}$ of every run is at most
# {glue:text}`claim2_max_abs_gap:.3f` in absolute value, small next to the spreads of the Adam runs.
#
# Balance is not progress. The mean alignment of LS + Muon's step is {glue:text}`claim2_ls_muon_alignment:.2f`
# against {glue:text}`claim2_ls_adam_alignment:.2f` for LS + Adam, and its worst-served task gets
# $\bar a_{\min}$ = {glue:text}`claim2_ls_muon_worst:.2f` (LS + Adam: {glue:text}`claim2_ls_adam_worst:.2f`;
# IMTL-G + Adam: {glue:text}`claim2_imtl_g_adam_worst:.2f`): Muon's step is less aligned with either task's
# minibatch gradient, but more evenly so. (In this profile it also ends at a higher mean test accuracy of the two
# tasks: {glue:text}`claim2_ls_muon_accuracy:.3f` for LS + Muon against {glue:text}`claim2_ls_adam_accuracy:.3f`
# for LS + Adam; accuracy is the subject of the benchmark chapters.)
#
# **Where the balance comes from.** The MTL methods ask for balanced directions: for two tasks IMTL-G's $g_t$ makes
# equal angles with both task gradients by construction, and so does Nash-MTL's (its bargaining condition
# $\alpha_k\, g_k^\top g_t = 1$ forces $\alpha_1 \lVert g_1\rVert = \alpha_2 \lVert g_2\rVert$ when $K = 2$); measured,
# $\bar D^{\mathrm{inst}}$ = {glue:text}`claim2_imtl_g_adam_instant_spread:.3f` and
# {glue:text}`claim2_nash_mtl_adam_instant_spread:.3f`. Under Adam the step actually taken has
# $\bar D$ = {glue:text}`claim2_imtl_g_adam_spread:.2f` and {glue:text}`claim2_nash_mtl_adam_spread:.2f`, about as
# unbalanced as LS + Adam's {glue:text}`claim2_ls_adam_spread:.2f`: the balance the method built into $g_t$ does not
# survive into $\Delta\theta_t$, because the step is mostly made of earlier minibatches' directions (chapter
# {ref}`chapter-instant-gradient`) and is then rescaled coordinate by coordinate. LS's own direction is unbalanced
# ($\bar D^{\mathrm{inst}}$ = {glue:text}`claim2_ls_muon_instant_spread:.2f` in the LS + Muon runs), yet the step
# Muon builds from it has $\bar D$ = {glue:text}`claim2_ls_muon_spread:.2f`: the balancing happens in the optimizer.
#
# **MTL methods under Muon.** Their relative spreads lie
# between {glue:text}`claim2_muon_methods_R_min:.2f` and {glue:text}`claim2_muon_methods_R_max:.2f`, and switching
# from Adam to Muon lowers $R$ for {glue:text}`claim2_within_below_zero` of {glue:text}`claim2_within_count`
# methods (LS included), {glue:text}`claim2_within_resolved` of them resolved. The number of MTL methods whose $R$
# under Muon is below that of LS + Muon: {glue:text}`claim2_muon_methods_below_ls` of 4 —
# adding a balancing method on top of Muon does not make its step more balanced than Muon alone makes LS's.
#
# **Spectra.** At the end of training the effective rank of LS + Muon's matrices, as a fraction of $\min(A, B)$
# averaged over the two Muon matrices and the seeds, is {glue:text}`claim2_rank_fraction_instant:.2f` for the
# instant gradient, {glue:text}`claim2_rank_fraction_in:.2f` for the momentum and
# {glue:text}`claim2_rank_fraction_out:.2f` after orthogonalization: Newton–Schulz lifts the small singular values of
# the momentum into a band around 1 (not exactly onto 1: its coefficients trade accuracy for speed), so the update
# uses every direction of the matrix with nearly equal weight. That is the mechanism the paper's claim points at;
# that it is *what* balances the tasks here is an inference from the two measurements, not a separate experiment.
#
# **What two seeds resolve.** With {glue:text}`claim2_n_seeds` seeds the 95% interval of a paired difference is
# {glue:text}`claim2_t_factor:.1f` times half the gap between the two seeds' differences: only differences that are
# large against their seed-to-seed variation come out resolved, and an unresolved difference is not evidence of
# equality. Each per-run value is a mean over the recorded steps of the whole run. Scope: one two-task benchmark,
# untuned learning rates, the `cpu` profile (the figure titles say which profile this build used); QM9 with its
# eleven tasks was not run for this chapter.
