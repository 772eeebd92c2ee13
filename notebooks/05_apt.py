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
# (chapter-apt)=
# # APT: our rules, and which of them matter
#
# The APT paper {cite}`zhou2026apt` describes its method in one sentence of the abstract: "a simple adaptive
# momentum mechanism designed to balance the strengths between advanced optimizers and MTL", plus "a light
# direction preservation method to facilitate Muon's orthogonalization". Its equations are not available to us
# (the book's introduction says what is known). Everything below is therefore **our** implementation of that
# sentence: each rule is an entry of the assumptions register `apt.optim.assumptions`, selectable by name, and
# this chapter measures which choices change the outcome. No rule here is the paper's formula.
#
# ## The rules
#
# **Adaptive momentum (register A1–A8).** An MTL method writes its aggregated direction $g_t$ into `.grad`. With
# $m_{t-1}$ the momentum before the step, the cosine
#
# $$
# c_t = \frac{\langle g_t, m_{t-1}\rangle}{\lVert g_t\rVert\,\lVert m_{t-1}\rVert} \qquad (c_t := 0 \text{ if a norm is } 0)
# $$
#
# is taken per parameter tensor (A6; `cosine_scope="global"` takes it over the concatenation), and sets the
# momentum coefficient of that step, by the linear rule (A1) or the clipped rule (A2):
#
# $$
# \beta_t = \beta_{\min} + (\beta_{\max} - \beta_{\min})\,\frac{1 + s\,c_t}{2}
# \quad\text{or}\quad
# \beta_t = \beta_{\min} + (\beta_{\max} - \beta_{\min})\,\max(0, s\,c_t),
# $$
#
# with $s = +1$ (`agree_more`, A3: keep momentum when the instant gradient agrees with it, let the instant
# gradient through when it does not) or $s = -1$ (`agree_less`). Then $m_t = \beta_t m_{t-1} + (1-\beta_t)\,g_t$,
# bias-corrected by $1 - \prod_{s \le t}\beta_s$ (A5), and the base optimizer (Adam's second moment, or Muon's
# Newton–Schulz orthogonalization) proceeds as usual. Defaults (A8): $[\beta_{\min}, \beta_{\max}]$ =
# [{glue:text}`apt_adam_beta_range`] on Adam, [{glue:text}`apt_muon_beta_range`] on Muon, so APT never averages more
# than its base optimizer. With
# $\beta_{\min} = \beta_{\max}$ it *is* the base optimizer (tested to $10^{-6}$ against `torch.optim.Adam`).
#
# **Direction preservation for Muon (register D0–D4).** With $U_t$ the (Nesterov) momentum matrix, $G_t$ the
# instant gradient matrix, $\bar X = X / \lVert X\rVert_F$ and $\gamma$ = {glue:text}`apt_preserve_strength`
# ("light"):
#
# $$
# \text{D0: } O_t = \mathrm{NS}(U_t), \qquad
# \text{D1 (pre\_mix): } O_t = \mathrm{NS}\big((1-\gamma)\bar U_t + \gamma \bar G_t\big),
# $$
#
# $$
# \text{D2 (post\_mix): } O_t = \lVert O^0_t\rVert_F\,\overline{(1-\gamma)\bar O^0_t + \gamma \bar G_t},\ O^0_t = \mathrm{NS}(U_t), \qquad
# \text{D3 (dual\_ns): } O_t = (1-\gamma)\,\mathrm{NS}(U_t) + \gamma\,\mathrm{NS}(G_t).
# $$

# %% tags=["parameters"]
profile = "cpu"
device = "cpu"
seed = 0
data_dir = None
results_dir = None

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown
from myst_nb import glue

from apt.ablations import difference_text, stored_ablations
from apt.analysis import mean_ci
from apt.experiment import run
from apt.figures import paired_difference_forest
from apt.benchmarks import benchmark_class
from apt.grids import ABLATION_BENCHMARK, FIXED_BETA_SOURCE_SEEDS, ablation_arms, ablation_baselines, ablation_held
from apt.optim.assumptions import ASSUMPTIONS, register_myst
from apt.optim.factory import DEFAULT_HP
from apt.page import counted, wrapped

glue("apt_register", Markdown(register_myst()), display=False)
for family in ("apt_adam", "apt_muon"):
    glue(f"{family}_beta_range", f"{DEFAULT_HP[family]['beta_min']:g}, {DEFAULT_HP[family]['beta_max']:g}",
         display=False)
glue("apt_preserve_strength", f"{DEFAULT_HP['apt_muon']['preserve_strength']:g}", display=False)
glue("apt_held_beta", f"{DEFAULT_HP['apt_muon']['betas'][0]:g}", display=False)
glue("apt_n_assumptions", len(ASSUMPTIONS), display=False)

# %% [markdown]
# The whole register ({glue:text}`apt_n_assumptions` entries), with why each rule was chosen and what the paper
# says about it (verbatim, or marked as a third-party summary):
#
# ```{glue:md} apt_register
# :format: myst
# ```
#
# ## The ablations
#
# One benchmark, one MTL method, one rule changed at a time: Multi-Fashion (two tasks, real images), MGDA (the
# method whose careful direction claim 1 says is diluted), each arm trained with the same seeds (same
# initialisation and batch order), the differences paired by seed. Diagnostics are recorded every few steps so
# that the β each run actually used is known. The **fixed-β control** runs APT's base optimizer with a constant
# $\beta = \bar\beta$, the mean β that APT's default arm actually used:
#
# $$
# \bar\beta = \frac{1}{|R|}\sum_{r \in R} \frac{1}{|T_r|}\sum_{t \in T_r} \bar\beta_{r,t},
# $$
#
# with $R$ the default arm's runs of the seeds {glue:text}`apt_beta_source_seeds` (fixed: later seeds do not move
# the control), $T_r$ their recorded steps and $\bar\beta_{r,t}$ the mean over parameter tensors
# (weighted by their number of entries) of the β used at step $t$. APT-Muon adapts only Muon's matrices; its
# AdamW group (a fraction $\varphi$ of the parameters: first layer, biases, task heads) stays at $\beta_h$ =
# {glue:text}`apt_held_beta`
# (register A7) in APT-Muon and in its control alike, so for that family $\bar\beta$ is taken over the adapted
# matrices only, $(\bar\beta_{\text{all}} - \varphi\,\beta_h)/(1-\varphi)$; the table's "mean beta" column is the
# mean over all tensors. If the control does as well as APT, the effect comes from a smaller average β, not
# from adapting it.

# %% tags=["hide-input"]
# The cpu/full ablation runs are computed by `python -m apt grid --profile cpu --no-grids --no-controls` (hours on
# 2 cores; each record's `wall_seconds` says how long it took); this chapter renders the seeds that are complete. A smoke build trains its small set so
# that every cell runs in CI.
TRAIN_MISSING = profile == "smoke"
if TRAIN_MISSING:
    for _ in range(2):  # the fixed-β control exists once the default arms are stored: a second pass trains it
        arms = ablation_arms(profile, results_dir=results_dir, data_dir=data_dir)
        for config in ([c for pairs in arms.values() for _, c in pairs]
                       + ablation_baselines(profile, data_dir=data_dir)):
            run(config, results_dir=results_dir, progress=False)
# Only seeds whose every arm, fixed-β control and single-task baseline is stored: every arm is averaged over them.
stored = stored_ablations(profile, results_dir=results_dir, data_dir=data_dir)
ablations = stored.ablations
no_complete_seed = wrapped(f"No seed of the ablations is complete in this build's store (profile {profile}): "
                           f"`python -m apt grid --profile {profile} --benchmarks {ABLATION_BENCHMARK}` computes them.")
# NBVAL_IGNORE_OUTPUT
# (how much is stored depends on the store)
print(wrapped(stored.coverage))

# %% [markdown]
# Per run we keep: the test metrics (mean of the last {glue:text}`apt_last_k` epochs, the benchmark's reporting rule, also at this
# profile), Δm% against the single-task baselines (trained with Adam) of the same profile and seeds, the mean β
# used ($\bar\beta_r$ above), and the medians over recorded steps of the instant-gradient share
# $s_t = \lVert(1-\beta_t)\,g_t\rVert / \lVert m_t\rVert$ and the update fidelity
# $f_t = \cos(\Delta\theta_t, -g_t)$ defined in {ref}`chapter-instant-gradient`.

# %% tags=["hide-input"]
if ablations:
    def arm_summary(frame: pd.DataFrame) -> pd.DataFrame:
        """Mean ± 95% t-interval over seeds of each quantity, per arm, in the order the arms were defined."""
        out = {}
        for (family, arm), group in frame.groupby(["family", "arm"], sort=False):
            row = {}
            for column in ("mean accuracy (%)", "delta_m", "mean beta", "share", "fidelity"):
                mean, half, n = mean_ci(group[column].to_numpy())
                row[column] = f"{mean:.3f} ± {half:.3f}" if n > 1 else f"{mean:.3f}"
            row["seeds"] = len(group)
            out[(family, arm)] = row
        return pd.DataFrame(out).T.rename_axis(["family", "arm"])


    print(wrapped(f"Per arm: mean ± 95% t-interval half-width over its seeds; Δm% against: "
                  f"{ablations.baseline_label}"))
    display(arm_summary(ablations.runs))  # noqa: F821 (IPython builtin)
else:
    print(no_complete_seed)

# %% [markdown]
# ## Differences paired by seed
#
# For every arm, the difference to its base optimizer, $d_s = \Delta m\%(\text{arm}, s) - \Delta m\%(\text{base}, s)$
# (negative is better: Δm% is the average relative *loss* against single-task training), with a 95% t-interval
# over seeds. An interval that contains 0 is **unresolved**: no finding either way.

# %% tags=["hide-input"]
if ablations:
    vs_base = {family: ablations.vs_base(family) for family in ablations.families}
    display(pd.concat(vs_base, names=["family"]).round(3))  # noqa: F821 (IPython builtin)
else:
    print(no_complete_seed)

# %%
if ablations:
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), sharex=False)
    for ax, (family, table) in zip(axes, vs_base.items()):
        paired_difference_forest(ax, table, "arm", title=f"{family.replace('_', '-')} arms, MGDA, Multi-Fashion",
                                 xlabel=f"Δm% difference to {ablations.base_arm[family]} (points; < 0 is better)")
    fig.suptitle(f"Paired differences with 95% intervals (blue: interval excludes 0; profile {profile}, "
                 f"{counted(len(ablations.seeds), 'complete seed')})")
    fig.tight_layout()
    plt.show()
else:
    print(no_complete_seed)

# %% [markdown]
# ## What β did APT use?
#
# The mean over parameter tensors of $\beta_t$ over training, for the default arms (mean over seeds; the
# horizontal lines are the base optimizer's constant β and the fixed-β control's $\bar\beta$):

# %% tags=["hide-input"]
if ablations:
    fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharey=True)
    for ax, family in zip(axes, ablations.families):
        series = ablations.default_beta[family]
        ax.plot(series.index, series.mean(axis=1).rolling(10, min_periods=1).mean(), label="APT default (β_t)")
        base_beta = DEFAULT_HP["adam"]["betas"][0] if family == "apt_adam" else DEFAULT_HP["muon"]["momentum"]
        ax.axhline(base_beta, color="black", ls="--", lw=1, label=f"base optimizer (β = {base_beta})")
        if ablations.control_beta[family] is not None:
            beta_bar = ablations.control_beta[family]
            ax.axhline(beta_bar, color="tab:orange", ls=":", label=f"fixed-β control (β̄ = {beta_bar:.2f})")
        ax.set(xlabel="training step", ylabel="β used (mean over tensors)",
               title=f"{family.replace('_', '-')}, MGDA, Multi-Fashion")
        ax.legend()
    fig.suptitle(f"The momentum coefficient APT chose over training (profile {profile}, rolling mean of 10 records)")
    fig.tight_layout()
    plt.show()
else:
    print(no_complete_seed)

# %% tags=["hide-input"]
if ablations:
    for family in ablations.families:
        for key, row in (("vs_base", ablations.apt_vs_base(family)),
                         ("control_vs_default", ablations.control_vs_apt(family))):
            glue(f"apt_{family}_{key}", difference_text(row) if row is not None else
                 "not measured (the run is missing)", display=False)
        glue(f"apt_{family}_mean_beta", f"{ablations.mean_beta(family, held=ablation_held(family)):.3f}",
             display=False)
        resolved = vs_base[family][vs_base[family]["resolved"].astype(bool)]
        glue(f"apt_{family}_n_resolved", f"{len(resolved)} of {len(vs_base[family])}", display=False)
        glue(f"apt_{family}_control_beta", f"{ablations.control_beta[family]:.2f}", display=False)
    glue("apt_ablation_seeds", len(ablations.seeds), display=False)
else:
    for family in ("apt_adam", "apt_muon"):
        for key in ("vs_base", "control_vs_default", "mean_beta", "control_beta", "n_resolved"):
            glue(f"apt_{family}_{key}", "not measured in this build", display=False)
    glue("apt_ablation_seeds", 0, display=False)
glue("apt_beta_source_seeds", ", ".join(map(str, FIXED_BETA_SOURCE_SEEDS[profile])), display=False)

# %%
ablation_protocol = benchmark_class(ABLATION_BENCHMARK).protocol.with_overrides(
    benchmark_class(ABLATION_BENCHMARK).profiles[profile])
glue("apt_last_k", ablation_protocol.selection_k, display=False)
glue("apt_profile_sizes", f"{profile} profile's ({ablation_protocol.n_train or 'all'} training pairs, "
     f"{ablation_protocol.epochs} epochs", display=False)

# %% [markdown]
# ## What the ablations say
#
# On this benchmark and method, with {glue:text}`apt_ablation_seeds` seed(s) per arm:
#
# - **APT-Adam with its assumed defaults vs Adam:** Δm% difference {glue:text}`apt_apt_adam_vs_base`. Its mean β
#   was {glue:text}`apt_apt_adam_mean_beta`; the fixed-β control at β̄ = {glue:text}`apt_apt_adam_control_beta`
#   differs from APT-Adam by {glue:text}`apt_apt_adam_control_vs_default`.
# - **APT-Muon with its assumed defaults vs Muon:** {glue:text}`apt_apt_muon_vs_base`; mean β
#   {glue:text}`apt_apt_muon_mean_beta`; fixed-β control at β̄ = {glue:text}`apt_apt_muon_control_beta` vs APT-Muon
#   {glue:text}`apt_apt_muon_control_vs_default`.
# - The mean β is over all complete seeds, the control's β̄ over seeds {glue:text}`apt_beta_source_seeds` only
#   (rounded to 0.01), so the two can differ in the last digits.
# - Arms whose difference to their base optimizer is resolved: {glue:text}`apt_apt_adam_n_resolved` (Adam family),
#   {glue:text}`apt_apt_muon_n_resolved` (Muon family).
#
# How to read these: "unresolved" means the seeds run here cannot tell the arms apart at the size of the
# difference measured; it is not evidence of no effect. A resolved APT effect that the fixed-β control
# reproduces is an effect of averaging less, not of adapting β. The runs are the {glue:text}`apt_profile_sizes`;
# see {ref}`chapter-multi` for how this profile relates to the literature's), and one MTL method: the grid
# chapters compare APT across all methods.
