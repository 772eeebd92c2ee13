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
# (chapter-instant-gradient)=
# # Claim 1: how much of a step is the instant gradient?
#
# The APT paper {cite}`zhou2026apt` says that under advanced optimizers "the instant-derived gradients play
# only a marginal role in the actual parameter updates". An MTL method writes its carefully built direction
# $g_t$ (the *instant aggregated gradient*) into `.grad`; the optimizer then mixes it with its state. We measure
# that mixing directly, at every recorded step, with two quantities (register entries G1 and G2 of
# `apt.optim.assumptions`):
#
# $$
# s_t = \frac{\lVert (1-\beta_t)\, g_t \rVert}{\lVert m_t \rVert}, \qquad
# m_t = \beta_t m_{t-1} + (1-\beta_t)\, g_t ,
# $$
#
# the **instant-gradient share** of the momentum buffer $m_t$ that the update is built from (for plain SGD,
# $m_t = g_t$ and $s_t = 1$), and the **update fidelity**
#
# $$
# f_t = \cos(\Delta\theta_t, -g_t), \qquad \Delta\theta_t = \theta_t - \theta_{t-1},
# $$
#
# the cosine between the step actually taken and the direction the MTL method asked for ($f_t = 1$ for SGD
# without weight decay). Both are taken over all parameters with a gradient. Adam's second-moment
# normalization and Muon's orthogonalization lower $f_t$ even when $s_t = 1$; momentum lowers $s_t$.
#
# The runs, on two benchmarks with different shapes: Multi-MNIST (two classification tasks, real digits, the
# MultiLeNet) and QM9 (eleven regression targets of real molecules, the lineage's message-passing network). On
# each, summing the losses (LS) and MGDA, under SGD, SGD with momentum {glue:text}`claim1_beta_sgdm` (dampened, so $m_t$ is an average
# like Adam's), Adam, Muon and APT-Adam (its assumed default rules). On QM9, MGDA solves on the task gradients
# with respect to the shared {glue:text}`claim1_qm9_rep_dim`-dimensional representation (MGDA-UB): eleven parameter-level task gradients make
# a run about 8× as long (`TOOLCHAIN.md`); the optimizer still receives a parameter gradient
# $g_t = \sum_k w_k \nabla_\theta \ell_k$. The learning rates are not tuned: the protocol's
# {glue:text}`claim1_lr_adaptive` for the adaptive optimizers; for the SGD variants {glue:text}`claim1_lr_sgd_multi_mnist`
# on Multi-MNIST (a common LeNet choice) and {glue:text}`claim1_lr_sgd_qm9` on QM9.
# One seed: this chapter measures the mechanism, not a ranking of methods. A last section reads the same two
# quantities for five methods under Adam and Muon, from the runs of the next chapter (two seeds).

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

from apt.benchmarks import benchmark_class
from apt.benchmarks.qm9 import HIDDEN_DIM as QM9_HIDDEN_DIM
from apt.errors import NonFiniteError
from apt.experiment import record_path, run
from apt.figures import OPTIMIZER_COLORS
from apt.grids import CLAIM1_BENCHMARKS as BENCHMARKS
from apt.grids import CLAIM1_METHODS as METHODS
from apt.grids import CLAIM1_OPTIMIZERS as OPTIMIZERS
from apt.grids import CLAIM1_LR, CLAIM2_LR, CLAIM2_METHODS, CLAIM2_OPTIMIZERS, claim1_configs, claim2_configs, claim2_seeds
from apt.optim.factory import DEFAULT_HP
from apt.results import diagnostic_medians, diagnostic_medians_per_seed, lowest_to_highest

configs = {benchmark: claim1_configs(profile, seed, benchmark=benchmark, device=device, data_dir=data_dir)
           for benchmark in BENCHMARKS}
glue("claim1_lr_adaptive", f"{CLAIM1_LR['multi_mnist']['adam']:g}", display=False)
for benchmark in BENCHMARKS:
    glue(f"claim1_lr_sgd_{benchmark}", f"{CLAIM1_LR[benchmark]['sgd']:g}", display=False)
glue("claim1_qm9_rep_dim", QM9_HIDDEN_DIM, display=False)
mnist_protocol = benchmark_class("multi_mnist").protocol.with_overrides(benchmark_class("multi_mnist").profiles[profile])
glue("claim1_last_k", mnist_protocol.selection_k, display=False)
glue("claim1_across_lr", f"{CLAIM2_LR:g}", display=False)
# NBVAL_IGNORE_OUTPUT
# (how many runs are missing depends on what the store already holds)
missing = [c.run_id for runs in configs.values() for c in runs.values() if not record_path(c, results_dir).exists()]
print(f"{sum(map(len, configs.values()))} runs, profile {profile}; {len(missing)} not yet in the results store "
      "(trained now)")
records: dict[str, dict[tuple[str, str], dict]] = {}
for benchmark, runs in configs.items():
    records[benchmark] = {}
    for key, config in runs.items():
        try:
            records[benchmark][key] = run(config, results_dir=results_dir, progress=False)
        except NonFiniteError as error:  # an untuned SGD learning rate may diverge: say so, show the rest
            print(f"{benchmark} {key}: diverged, left out ({error})")

# %%
rows = []
for benchmark, runs in records.items():
    for (method, optimizer), record in runs.items():
        diagnostics = record["diagnostics"]
        for i, step in enumerate(diagnostics["step"]):
            rows.append({"benchmark": benchmark, "method": method, "optimizer": optimizer, "step": step,
                         "share": diagnostics["instant_gradient_share"][i],
                         "fidelity": diagnostics["update_instant_cosine"][i]})
steps = pd.DataFrame(rows)
summary = pd.concat({benchmark: diagnostic_medians(runs) for benchmark, runs in records.items()},
                    names=["benchmark"]).round(3)
print("median over recorded steps (profile", profile + ")")
summary

# %% [markdown]
# Over training, per recorded step (a rolling median over {glue:text}`claim1_window_multi_mnist` recorded steps
# on Multi-MNIST and {glue:text}`claim1_window_qm9` on QM9, which has {glue:text}`claim1_qm9_steps` steps at this
# profile, smooths the minibatch noise):

# %% tags=["hide-input"]
ROLLING_WINDOW = {"multi_mnist": 20, "qm9": 5}  # recorded steps; QM9's runs are short at the cpu profile
for benchmark, window in ROLLING_WINDOW.items():
    glue(f"claim1_window_{benchmark}", window, display=False)
glue("claim1_qm9_steps", int(steps[steps.benchmark == "qm9"]["step"].max()) + 1, display=False)  # counted from 0
panels = [(benchmark, method) for benchmark in BENCHMARKS for method in METHODS]
# one row per (benchmark, method), the share on the left and the fidelity on the right
fig, axes = plt.subplots(len(panels), 2, figsize=(11, 3.2 * len(panels)), sharex="row", squeeze=False)
for row, (benchmark, method) in enumerate(panels):
    window = ROLLING_WINDOW[benchmark]
    for optimizer in OPTIMIZERS:
        part = steps[(steps.benchmark == benchmark) & (steps.method == method) & (steps.optimizer == optimizer)]
        for col, quantity in enumerate(["share", "fidelity"]):
            axes[row, col].plot(part["step"], part[quantity].rolling(window, min_periods=1).median(),
                                label=optimizer)
    # MGDA on the shared representation (rep_grad) is MGDA-UB, as on QM9 here
    rep_grad = any(r["config"]["rep_grad"] for (m, _), r in records[benchmark].items() if m == method)
    name = method.upper() + ("-UB" if rep_grad and method == "mgda" else "")
    axes[row, 0].set(title=f"{name} on {benchmark}: share", yscale="log", ylabel="instant-gradient share $s_t$")
    axes[row, 1].set(title=f"{name} on {benchmark}: fidelity", ylim=(-0.2, 1.05),
                     ylabel=r"fidelity $\cos(\Delta\theta_t, -g_t)$")
for ax in axes[-1]:
    ax.set_xlabel("training step")
axes[0, 1].legend(title="optimizer", fontsize=8, loc="lower right", ncols=3)  # fidelity stays above 0.2 there
fig.suptitle(f"How much of each step is the MTL method's instant gradient (profile {profile}, seed {seed})")
fig.tight_layout()
plt.show()

# %% [markdown]
# That every run trained: the summed training loss $\sum_k \ell_k$ (mean over the epoch's minibatches) in the
# first and the last epoch, and on Multi-MNIST the test accuracies (mean of the last {glue:text}`claim1_last_k`
# epochs, the benchmark's
# reporting rule):

# %%
progress = pd.DataFrame([{"benchmark": benchmark, "method": method, "optimizer": optimizer,
                          "train loss, first epoch": sum(record["epochs"][0]["train_losses"]),
                          "train loss, last epoch": sum(record["epochs"][-1]["train_losses"])}
                         for benchmark, runs in records.items() for (method, optimizer), record in runs.items()])
display(progress.set_index(["benchmark", "method", "optimizer"]).unstack("benchmark").round(3))  # noqa: F821
pd.DataFrame({key: record["final"]["test_metrics"] for key, record in records["multi_mnist"].items()}).T.rename_axis(
    ["method", "optimizer"]).round(4)

# %% [markdown]
# ## Across methods
#
# Is the dilution the optimizer's alone, or does it depend on the method? The runs of {ref}`chapter-muon-mtl`
# record the same two quantities for LS and four gradient-based methods (MGDA, IMTL-G, Nash-MTL, FairGrad) under
# Adam and Muon on Multi-MNIST, at the same learning rate ({glue:text}`claim1_across_lr`) and profile, with seeds
# {glue:text}`claim1_across_seeds`. Per run, the median of $s_t$ and of $f_t$ over its recorded steps; per arm, the
# mean over the seeds (each seed a small dot):

# %% tags=["hide-input"]
across_configs = claim2_configs(profile, seed, device=device, data_dir=data_dir)
across_seeds = claim2_seeds(seed)
across_records = {key: run(config, results_dir=results_dir, progress=False) for key, config in across_configs.items()}
per_run = diagnostic_medians_per_seed(across_records)
across = per_run.groupby(["optimizer", "method"], sort=False)[["share", "fidelity"]].mean()
glue("claim1_across_seeds", " and ".join(map(str, across_seeds)), display=False)

fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.8))
positions = {m: i for i, m in enumerate(CLAIM2_METHODS)}
for ax, quantity, label in zip(axes, ("share", "fidelity"),
                               ("instant-gradient share $s_t$ (median)", r"fidelity $\cos(\Delta\theta_t, -g_t)$ (median)")):
    for offset, optimizer in zip((-0.12, 0.12), CLAIM2_OPTIMIZERS):
        part = per_run[per_run["optimizer"] == optimizer]
        x = part["method"].map(positions) + offset
        color = OPTIMIZER_COLORS[optimizer]
        ax.plot(x, part[quantity], ".", color=color, alpha=0.5)
        mean = across.loc[optimizer, quantity]
        ax.plot(mean.index.map(positions) + offset, mean.values, "o", color=color, label=optimizer)
    ax.set_xticks(list(positions.values()), list(positions))
    ax.set(xlabel="MTL method", ylabel=label)
axes[0].legend(title="optimizer")
fig.suptitle(f"Claim 1 across methods, Multi-MNIST (profile {profile}, seeds {list(across_seeds)}; large: mean)")
fig.tight_layout()
plt.show()


for optimizer in CLAIM2_OPTIMIZERS:
    for quantity in ("share", "fidelity"):
        glue(f"claim1_across_{optimizer}_{quantity}", lowest_to_highest(across.loc[optimizer, quantity]),
             display=False)
spread = {q: float((across[q].groupby(level="optimizer").max() / across[q].groupby(level="optimizer").min()).max())
          for q in ("share", "fidelity")}
glue("claim1_across_spread", f"highest/lowest method: up to {spread['share']:.2f}× for the share and "
     f"{spread['fidelity']:.2f}× for the fidelity", display=False)
glue("claim1_across_reading", "the fidelity depends more on the method than the share does"
     if spread["fidelity"] > spread["share"] else "the share depends more on the method than the fidelity does",
     display=False)
across.unstack("optimizer").loc[list(CLAIM2_METHODS)].round(3)

# %% tags=["hide-input"]
def median_of(benchmark: str, quantity: str, optimizer: str, method: str = "mgda") -> float | str:
    try:
        return float(summary.loc[(benchmark, optimizer), (quantity, method)])
    except KeyError:
        return float("nan")


# the reading of the Multi-MNIST medians against the independent-gradient values sqrt(1 - β²), β each optimizer's
# default
shares = {o: median_of("multi_mnist", "share", o) for o in ("sgdm", "adam", "muon")}
cosines = [median_of("multi_mnist", "momentum_cosine", o) for o in ("sgdm", "adam", "muon")]
beta_first_moment = {"sgdm": DEFAULT_HP["sgdm"]["momentum"], "adam": DEFAULT_HP["adam"]["betas"][0],
                     "muon": DEFAULT_HP["muon"]["momentum"]}
independent_share = {o: float(np.sqrt(1 - beta ** 2)) for o, beta in beta_first_moment.items()}
glue("claim1_beta_sgdm", beta_first_moment["sgdm"], display=False)
glue("claim1_beta_muon", beta_first_moment["muon"], display=False)
glue("claim1_constant_share_sgdm", 1 - beta_first_moment["sgdm"], display=False)
glue("claim1_independent_share_sgdm", independent_share["sgdm"], display=False)
glue("claim1_independent_share_muon", independent_share["muon"], display=False)
glue("claim1_apt_beta_min", DEFAULT_HP["apt_adam"]["beta_min"], display=False)
glue("claim1_apt_beta_max", DEFAULT_HP["apt_adam"]["beta_max"], display=False)
above = [shares[o] > independent_share[o] for o in shares]
glue("claim1_share_reading", "all above the independent-gradient value" if all(above) else
     "all below the independent-gradient value" if not any(above) else
     "some above, some below the independent-gradient value", display=False)
glue("claim1_momentum_cosine_reading",
     "negative: each minibatch's gradient partly points against the accumulated direction, which shrinks "
     "‖m_t‖ and lifts s_t above the independent value" if all(c < 0 for c in cosines) else
     "positive: successive gradients partly agree, which lengthens ‖m_t‖ and lowers s_t below the independent "
     "value" if all(c > 0 for c in cosines) else "of mixed sign across the three optimizers", display=False)

for optimizer in ("sgdm", "adam"):
    epochs = records["qm9"][("mgda", optimizer)]["epochs"] if ("mgda", optimizer) in records["qm9"] else None
    glue(f"claim1_qm9_{optimizer}_loss_first", sum(epochs[0]["train_losses"]) if epochs else float("nan"),
         display=False)
    glue(f"claim1_qm9_{optimizer}_loss_last", sum(epochs[-1]["train_losses"]) if epochs else float("nan"),
         display=False)

glue("claim1_qm9_sgdm_lr", configs["qm9"][("mgda", "sgdm")].lr, display=False)
for benchmark, prefix in (("multi_mnist", "claim1"), ("qm9", "claim1_qm9")):
    for optimizer in ("sgdm", "adam", "muon", "apt_adam"):
        glue(f"{prefix}_{optimizer}_share", median_of(benchmark, "share", optimizer), display=False)
        glue(f"{prefix}_{optimizer}_fidelity", median_of(benchmark, "fidelity", optimizer), display=False)
        glue(f"{prefix}_{optimizer}_momentum_cosine", median_of(benchmark, "momentum_cosine", optimizer),
             display=False)

# %% [markdown]
# ## What this shows
#
# Two reference points make $s_t$ readable. If every minibatch gave the same gradient, the buffer would converge
# to it and $s_t \to 1-\beta$, which is {glue:text}`claim1_constant_share_sgdm:.2f` for the default
# $\beta = $ {glue:text}`claim1_beta_sgdm` of SGD with momentum and of Adam's first moment. If successive gradients
# were independent with equal norms, $\mathbb{E}\lVert m_t\rVert^2 = (1-\beta)^2 \lVert g\rVert^2 / (1-\beta^2)$
# in the stationary regime, so $s_t \approx \sqrt{1-\beta^2}$, which is
# {glue:text}`claim1_independent_share_sgdm:.2f` for that $\beta$. With MGDA's direction as the instant gradient, the
# measured medians are {glue:text}`claim1_sgdm_share:.2f` (SGD with momentum), {glue:text}`claim1_adam_share:.2f`
# (Adam's first moment) and {glue:text}`claim1_muon_share:.2f` (Muon, whose matrices use momentum
# {glue:text}`claim1_beta_muon`, for which the independent-gradient value is
# {glue:text}`claim1_independent_share_muon:.2f`): {glue:text}`claim1_share_reading`. The gradient's median cosine
# with the buffer it meets, $c_t = \cos(g_t, m_{t-1})$, is {glue:text}`claim1_sgdm_momentum_cosine:.2f`,
# {glue:text}`claim1_adam_momentum_cosine:.2f` and {glue:text}`claim1_muon_momentum_cosine:.2f`:
# {glue:text}`claim1_momentum_cosine_reading`. (These measures run over all parameters with a gradient: the shared
# layers, where MGDA acts, and the task heads, which receive their own task's gradient; under Muon they mix its
# matrices, with momentum {glue:text}`claim1_beta_muon`, and the parameters Muon leaves to AdamW, with
# {glue:text}`claim1_beta_sgdm`.) The step actually taken has a median cosine of only
# {glue:text}`claim1_adam_fidelity:.2f` (Adam) and {glue:text}`claim1_muon_fidelity:.2f` (Muon) with the direction
# MGDA computed for this step, against {glue:text}`claim1_sgdm_fidelity:.2f` for SGD with momentum and 1 for plain
# SGD: the normalization of Adam and the orthogonalization of Muon turn the update further away from the instant
# direction than momentum alone does. That is the paper's claim 1, measured: under Adam and Muon the MTL method's
# direction for the current batch is a minority component of the update.
#
# APT-Adam, with its assumed default rule (β between {glue:text}`claim1_apt_beta_min` and
# {glue:text}`claim1_apt_beta_max`, linear in the cosine of $g_t$ and
# $m_{t-1}$), raises the share to {glue:text}`claim1_apt_adam_share:.2f` and the fidelity to
# {glue:text}`claim1_apt_adam_fidelity:.2f`: it does give the instant gradient more of the step. Whether that
# improves what MTL methods achieve, and whether a fixed smaller β would do the same, are the questions of the
# APT chapter. LS and MGDA behave alike on all of these measures here; why (how much the two tasks' gradients
# conflict on Multi-MNIST) is not measured in this chapter.
#
# **Across methods** (Multi-MNIST, LS and four gradient-based methods, seeds {glue:text}`claim1_across_seeds`).
# Under Adam the median share ranges from {glue:text}`claim1_across_adam_share` and the fidelity from
# {glue:text}`claim1_across_adam_fidelity`; under Muon from {glue:text}`claim1_across_muon_share` and
# {glue:text}`claim1_across_muon_fidelity` ({glue:text}`claim1_across_spread`): {glue:text}`claim1_across_reading`.
# A fidelity of 1 would be a step along the method's own direction; how much of that direction survives in the
# step taken differs by method. Two seeds give no interval here: the dots show how far the seeds agree.
#
# **QM9.** With MGDA-UB's direction as the instant gradient, the medians are {glue:text}`claim1_qm9_sgdm_share:.2f`
# (SGD with momentum), {glue:text}`claim1_qm9_adam_share:.2f` (Adam) and {glue:text}`claim1_qm9_muon_share:.2f` (Muon)
# for the share, and {glue:text}`claim1_qm9_sgdm_fidelity:.2f` (SGD with momentum),
# {glue:text}`claim1_qm9_adam_fidelity:.2f` (Adam) and {glue:text}`claim1_qm9_muon_fidelity:.2f` (Muon) for the
# fidelity; APT-Adam: share {glue:text}`claim1_qm9_apt_adam_share:.2f`, fidelity
# {glue:text}`claim1_qm9_apt_adam_fidelity:.2f` (a share above 1 means $\beta_t m_{t-1}$ partly cancels
# $(1-\beta_t) g_t$: successive gradients point against each other). The two mechanisms separate here. SGD with momentum at the
# untuned learning rate {glue:text}`claim1_qm9_sgdm_lr` trains slowly (summed training loss
# {glue:text}`claim1_qm9_sgdm_loss_first:.1f` in the first epoch, {glue:text}`claim1_qm9_sgdm_loss_last:.1f` in the
# last, against {glue:text}`claim1_qm9_adam_loss_last:.1f` for Adam), successive gradients stay aligned and the buffer
# holds mostly earlier ones. Under Adam the current gradient is most of the buffer (successive gradients often point
# against each other: the share oscillates around and above 1), yet the step taken is nearly orthogonal to it: on QM9
# it is Adam's per-coordinate normalization, not its momentum, that turns the step away from the method's direction.
# QM9's runs are short at this profile ({glue:text}`claim1_qm9_steps` steps), so these medians include the first
# steps, where the buffers are still filling; the figure shows how they evolve.
#
# Scope: two benchmarks, one seed (two for the five methods on Multi-MNIST), untuned learning rates, one profile
# (the figures' titles say which profile this build used).
