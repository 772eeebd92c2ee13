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
# The runs: Multi-MNIST (two tasks, real digits; profile below), summing the losses (LS) and MGDA, under
# SGD, SGD with momentum 0.9 (dampened, so $m_t$ is an average like Adam's), Adam, Muon and APT-Adam (its
# assumed default rules). The learning rates are not tuned: the protocol's $10^{-3}$ for the adaptive
# optimizers and $0.05$ for the SGD variants, a common LeNet choice. One seed: this chapter measures the
# mechanism, not a ranking of methods.

# %% tags=["parameters"]
profile = "cpu"
device = "cpu"
seed = 0
data_dir = None
results_dir = None

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from myst_nb import glue

from apt.config import Config
from apt.experiment import record_path, run

BENCHMARK = "multi_mnist"
METHODS = ["ls", "mgda"]
OPTIMIZERS = ["sgd", "sgdm", "adam", "muon", "apt_adam"]
LR = {"sgd": 0.05, "sgdm": 0.05, "adam": 1e-3, "muon": 1e-3, "apt_adam": 1e-3}
EVERY = {"smoke": 1, "cpu": 5, "full": 50}[profile]

configs = {
    (method, optimizer): Config(benchmark=BENCHMARK, method=method, optimizer=optimizer, lr=LR[optimizer],
                                profile=profile, seed=seed, device=device, data_dir=data_dir,
                                diagnostics=True, diagnostics_every=EVERY)
    for method in METHODS for optimizer in OPTIMIZERS
}
# NBVAL_IGNORE_OUTPUT (how many runs are missing depends on what the store already holds)
missing = [c.run_id for c in configs.values() if not record_path(c, results_dir).exists()]
print(f"{len(configs)} runs, profile {profile}; {len(missing)} not yet in the results store (trained now)")
records = {key: run(config, results_dir=results_dir, progress=False) for key, config in configs.items()}

# %%
rows = []
for (method, optimizer), record in records.items():
    diagnostics = record["diagnostics"]
    for i, step in enumerate(diagnostics["step"]):
        rows.append({"method": method, "optimizer": optimizer, "step": step,
                     "share": diagnostics["instant_gradient_share"][i],
                     "fidelity": diagnostics["update_instant_cosine"][i]})
steps = pd.DataFrame(rows)
summary = steps.groupby(["method", "optimizer"])[["share", "fidelity"]].median().unstack("method")
summary = summary.loc[OPTIMIZERS].round(3)
accuracy = pd.DataFrame({key: record["final"]["test_metrics"] for key, record in records.items()}).T
accuracy.index.names = ["method", "optimizer"]
print("median over recorded steps (profile", profile + ")")
summary

# %% [markdown]
# Over training, per recorded step (a rolling median over 20 recorded steps smooths the minibatch noise):

# %%
fig, axes = plt.subplots(2, 2, figsize=(12, 7), sharex=True)
for col, method in enumerate(METHODS):
    for optimizer in OPTIMIZERS:
        part = steps[(steps.method == method) & (steps.optimizer == optimizer)]
        for row, quantity in enumerate(["share", "fidelity"]):
            axes[row, col].plot(part["step"], part[quantity].rolling(20, min_periods=1).median(), label=optimizer)
    axes[0, col].set(title=f"{method.upper()} on Multi-MNIST", ylabel="instant-gradient share $s_t$",
                     yscale="log")
    axes[1, col].set(xlabel="training step", ylabel=r"update fidelity $\cos(\Delta\theta_t, -g_t)$",
                     ylim=(-0.2, 1.05))
axes[0, 0].legend(title="optimizer")
fig.suptitle(f"How much of each step is the MTL method's instant gradient (profile {profile}, seed {seed})")
fig.tight_layout()
plt.show()

# %% [markdown]
# Test accuracy of the same runs (mean of the last 3 epochs, the benchmark's reporting rule), to show that
# every run trained:

# %%
accuracy.loc[[(m, o) for m in METHODS for o in OPTIMIZERS]].round(4)

# %%
adam_share = float(summary.loc["adam", ("share", "mgda")])
adam_fidelity = float(summary.loc["adam", ("fidelity", "mgda")])
muon_fidelity = float(summary.loc["muon", ("fidelity", "mgda")])
sgdm_share = float(summary.loc["sgdm", ("share", "mgda")])
glue("claim1_adam_share", adam_share, display=False)
glue("claim1_adam_fidelity", adam_fidelity, display=False)
glue("claim1_muon_fidelity", muon_fidelity, display=False)
glue("claim1_sgdm_share", sgdm_share, display=False)

# %% [markdown]
# ## What this shows
#
# With MGDA's direction as the instant gradient, the median share of $g_t$ in Adam's momentum buffer is
# {glue:text}`claim1_adam_share:.3f` (SGD with momentum: {glue:text}`claim1_sgdm_share:.3f`), and the step Adam
# takes has a median cosine of {glue:text}`claim1_adam_fidelity:.3f` with the direction MGDA asked for (Muon:
# {glue:text}`claim1_muon_fidelity:.3f`; plain SGD: 1 by construction). An exponential moving average with
# $\beta = 0.9$ gives the newest gradient a weight of $0.1$ against a buffer that averages about ten
# minibatches, so a share near $0.1$ to $0.3$ is what the mechanism predicts when successive minibatch
# gradients are only weakly aligned; the fidelity then measures how far the update has turned away from
# $g_t$. This is the paper's claim 1 measured on one benchmark, one seed and the `cpu` profile; whether a
# method's final quality *depends* on it is the subject of the APT and benchmark chapters.
