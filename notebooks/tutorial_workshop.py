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
# (chapter-workshop)=
# # Workshop: optimizers and multi-task learning in 90 minutes, on a laptop
#
# Five steps, each with a short exercise that you solve by filling in a code cell. Everything runs on a laptop
# CPU; the real data is Multi-MNIST (two overlapping digits, two classification tasks).
#
# | step | what you do | time |
# |---|---|---|
# | 1 | two conflicting task gradients: what LS, MGDA, PCGrad and CAGrad make of them | 15 min |
# | 2 | measure how much of an optimizer's step the MTL direction really is (SGD, SGD-momentum, Adam) | 20 min |
# | 3 | Muon's orthogonalization: singular values of a real layer's gradient, before and after | 15 min |
# | 4 | switch APT on and compare on Multi-MNIST | 20 min |
# | 5 | an open question, to discuss | 15 min |
#
# **How an exercise works.** Each exercise box says what to write. The cell below it has a function (or a
# variable) that returns `None`: replace the body with your answer and run the cell. The next cell runs a
# **check** from `apt.tutorial`: it compares your answer with what the `apt` library computes on the same inputs
# and says `[correct]`, `[try again]` with the reason, or `[not filled in yet]`. The solution is hidden in a
# toggle below the check. (In the notebook file the solution cells are present and run after your cell; run the
# check right after your own cell, before the solution cell overwrites your answer.)
#
# The chapter never re-implements the library: your answers are compared with `apt.mtl` (the MTL methods),
# `apt.optim` (optimizers, Newton–Schulz, diagnostics) and `apt.experiment` (training runs).

# %% tags=["parameters"]
profile = "cpu"  # smoke (CI, seconds) | cpu (the workshop size) | full (same as cpu for this chapter)
device = "cpu"
seed = 0
data_dir = None  # None: $APT_DATA_DIR, else ../shared/data beside the repository
results_dir = None  # None: results/<profile> of the repository

# %% [markdown]
# **On Colab** the next cell installs the package from its repository and downloads the MNIST training files
# (into `/content/data`). It does nothing anywhere else. *It has not been tested*: the machine that builds this
# book has no internet access. Colab's MNIST download is the full 60,000-digit training file, while the book was
# run on a 10,000-digit file, so your numbers will differ from the ones printed here.

# %%
import sys

if "google.colab" in sys.modules:
    import os
    import subprocess
    import urllib.request
    from pathlib import Path

    repository = "https://github.com/apt-book/apt-book"
    # Colab's Python may be newer than the pinned one and ships its own torch: install apt without its pins.
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--ignore-requires-python",
                    f"git+{repository}"], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "cvxpy", "clarabel", "myst-nb", "ipywidgets"],
                   check=True)
    mnist = Path("/content/data/mnist_10k")
    mnist.mkdir(parents=True, exist_ok=True)
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        if not (mnist / name).exists():
            urllib.request.urlretrieve(f"https://ossci-datasets.s3.amazonaws.com/mnist/{name}", mnist / name)
    os.environ.update(APT_DATA_DIR="/content/data", APT_RESULTS_DIR="/content/results",
                      APT_RUNS_DIR="/content/runs")

# %%
import dataclasses

import matplotlib.pyplot as plt
import pandas as pd
import torch
from ipywidgets import interact
from myst_nb import glue

from apt import tutorial
from apt.analysis import paired_difference, runs_frame
from apt.config import Config
from apt.experiment import record_path, run
from apt.optim import newton_schulz, polar_factor
from apt.optim.newton_schulz import singular_values
from apt.page import wrapped

# Multi-MNIST runs of steps 2 and 4: the `cpu` profile's data and model with fewer pairs and epochs, so that a
# run takes tens of seconds on a laptop; `smoke` is the benchmark's own smoke profile (CI only); `full` equals
# `cpu` here (this chapter is a workshop, not a measurement for the book's conclusions).
RUN_SIZE = {
    "smoke": ("smoke", {"epochs": 1, "n_train": 256, "n_val": 64, "n_test": 128}),
    "cpu": ("cpu", {"epochs": 3, "n_train": 12_000, "n_val": 500, "n_test": 4_000}),
    "full": ("cpu", {"epochs": 3, "n_train": 12_000, "n_val": 500, "n_test": 4_000}),
}[profile]
SEEDS = {"smoke": [seed, seed + 1], "cpu": [seed, seed + 1, seed + 2], "full": [seed, seed + 1, seed + 2]}[profile]
WARMUP_STEPS = {"smoke": 5, "cpu": 30, "full": 30}[profile]
print(wrapped(f"profile {profile}: Multi-MNIST runs use profile {RUN_SIZE[0]!r} with overrides {RUN_SIZE[1]}; "
              f"step 4 compares seeds {SEEDS}"))

# %% [markdown]
# ## Step 1 · Two task gradients that conflict (15 min)
#
# A multi-task model has shared parameters $\theta$ and one loss per task. Each training step gives one gradient
# per task, $g_1 = \nabla_\theta \ell_1$ and $g_2 = \nabla_\theta \ell_2$, the rows of the Jacobian
# $J = [g_1; g_2]$. An MTL method turns $J$ into **one** direction $d$:
#
# - **LS** (linear scalarization) sums them: $d = g_1 + g_2$.
# - **MGDA** takes the shortest vector of the segment between them (their convex hull),
#   $d^\star = w^\star g_1 + (1 - w^\star) g_2$ with $w^\star = \arg\min_{w \in [0,1]} \lVert w g_1 + (1-w) g_2 \rVert$;
#   `apt.mtl` returns $2 d^\star$ (the scale of summed losses).
# - **PCGrad** removes from each gradient its component along the other one when they conflict, then sums.
# - **CAGrad** stays within a ball around the mean gradient and maximizes the worst task's improvement.
#
# Below, $g_1 = (1, 0)$ and $g_2$ has angle $a$ to it and norm $r$. Three fixed settings first:

# %%
fig, axes = plt.subplots(1, 3, figsize=(13.5, 4.5))
for ax, (angle, ratio) in zip(axes, [(60, 1.0), (120, 1.0), (150, 3.0)]):
    tutorial.plot_directions(angle, ratio, ax=ax)
fig.suptitle("Directions of four MTL methods for two synthetic task gradients (arrows: d; grey: g1, g2; "
             "no data, so no profile dependence)")
fig.tight_layout()
plt.show()

# %% [markdown]
# Live, move the sliders (this works in Jupyter and Colab; the static book shows only the code):

# %% tags=["remove-output"]
# NBVAL_IGNORE_OUTPUT
# (a widget: its output differs between runs)
_ = interact(tutorial.show_directions, angle_deg=(0, 180, 5), norm_ratio=(0.2, 3.0, 0.1))

# %% [markdown]
# ```{exercise}
# :label: ex-min-norm
#
# Write `min_norm_direction(g1, g2)`: the point $d^\star = w g_1 + (1-w) g_2$, $w \in [0, 1]$, of smallest norm
# (MGDA's direction for two tasks, *without* the factor 2). `g1` and `g2` are 1-D tensors of the same length.
# Hint: $\lVert w g_1 + (1-w) g_2 \rVert^2$ is a quadratic in $w$; set its derivative to zero, then keep $w$ in
# $[0, 1]$. Before you run the check, predict: when is $d^\star$ one of the two gradients?
# ```

# %%
def min_norm_direction(g1: torch.Tensor, g2: torch.Tensor) -> torch.Tensor:
    # YOUR CODE HERE: return the min-norm point of the segment between g1 and g2
    return None


# %%
tutorial.check_min_norm_direction(min_norm_direction)

# %% [markdown]
# ```{solution-start} ex-min-norm
# :class: dropdown
# ```
# $\frac{d}{dw}\lVert g_2 + w (g_1 - g_2)\rVert^2 = 0$ gives
# $w = \frac{(g_2 - g_1) \cdot g_2}{\lVert g_1 - g_2 \rVert^2}$, clipped to $[0, 1]$. When $g_1 \cdot g_2 \ge \lVert g_1 \rVert^2$ (the shorter gradient's projection on the
# other is at least its own length) the clip is active and $d^\star$ is the shorter gradient.

# %% tags=["solution"]
def min_norm_direction(g1: torch.Tensor, g2: torch.Tensor) -> torch.Tensor:
    difference = g1 - g2
    squared = difference @ difference
    if squared == 0:  # g1 == g2: the segment is one point
        return g1.clone()
    weight = ((g2 @ -difference) / squared).clamp(0.0, 1.0)
    return weight * g1 + (1 - weight) * g2


tutorial.check_min_norm_direction(min_norm_direction)

# %% [markdown]
# ```{solution-end}
# ```
#
# **Discuss (2 min).** Under conflict (angle > 90°) MGDA's direction is much *shorter* than LS's: with plain SGD
# that is a smaller step, not only a different direction. With two tasks, how does PCGrad's direction relate to
# LS's when the gradients do not conflict? Where does CAGrad sit between LS and MGDA?
#
# ## Step 2 · Does the optimizer follow the MTL direction? (20 min)
#
# The MTL method writes its direction $g_t$ (the *instant gradient*) into `.grad`. SGD with momentum and Adam
# then build the step from a running average $m_t = \beta m_{t-1} + (1 - \beta)\, g_t$. How much of $m_t$ is
# this step's $g_t$? The **instant-gradient share**
#
# $$ s_t = \frac{\lVert (1-\beta)\, g_t \rVert}{\lVert m_t \rVert} $$
#
# (norms over all parameters together) is 1 for plain SGD. Two reference values for $\beta = 0.9$: if every
# minibatch gave the same gradient, $m_t \to g$ and $s_t \to 1 - \beta = 0.1$; if successive gradients were
# independent with equal norms, $s_t \approx \sqrt{1 - \beta^2} \approx 0.44$.
#
# ```{exercise}
# :label: ex-share
#
# Write `instant_gradient_share(grads, buffers, beta)`: `grads` is the list of the parameters' `.grad`
# ($g_t$, one tensor per parameter), `buffers` the optimizer's momentum tensors after the step ($m_t$, same
# shapes: SGD's `momentum_buffer`, Adam's `exp_avg`), `beta` the momentum coefficient. Return $s_t$ as a float.
# The check runs real optimizer steps (MGDA on Multi-MNIST, SGD-momentum and Adam) and compares your value with
# `apt.optim`'s diagnostic.
# ```

# %%
def instant_gradient_share(grads: list[torch.Tensor], buffers: list[torch.Tensor], beta: float) -> float:
    # YOUR CODE HERE
    return None


# %%
tutorial.check_instant_gradient_share(instant_gradient_share, data_dir=data_dir, seed=seed)

# %% [markdown]
# ```{solution-start} ex-share
# :class: dropdown
# ```

# %% tags=["solution"]
def instant_gradient_share(grads: list[torch.Tensor], buffers: list[torch.Tensor], beta: float) -> float:
    grad_norm = torch.stack([g.norm() for g in grads]).norm()  # ‖concatenation‖ from per-tensor norms
    buffer_norm = torch.stack([m.norm() for m in buffers]).norm()
    return float((1 - beta) * grad_norm / buffer_norm)


tutorial.check_instant_gradient_share(instant_gradient_share, data_dir=data_dir, seed=seed)

# %% [markdown]
# ```{solution-end}
# ```
#
# Now measure it over whole training runs: MGDA on Multi-MNIST under plain SGD, SGD with momentum 0.9 and Adam,
# with `apt.experiment.run` recording the diagnostics every 5 steps (the same quantity as your function, and the
# update *fidelity* $\cos(\Delta\theta_t, -g_t)$: the cosine between the step actually taken and $-g_t$).
# **Predict first:** which of the two reference values will SGD-momentum be closer to? Will Adam's fidelity be
# higher or lower than SGD-momentum's?

# %%
BASE_SIZE, OVERRIDES = RUN_SIZE
LR = {"sgd": 0.05, "sgdm": 0.05, "adam": 1e-3, "apt_adam": 1e-3}


def workshop_config(optimizer: str, run_seed: int = seed) -> Config:
    return Config(benchmark="multi_mnist", method="mgda", optimizer=optimizer, lr=LR[optimizer], profile=BASE_SIZE,
                  seed=run_seed, device=device, data_dir=data_dir, protocol_overrides=OVERRIDES,
                  diagnostics=True, diagnostics_every=5)


step2_configs = {name: workshop_config(name) for name in ("sgd", "sgdm", "adam")}
# NBVAL_IGNORE_OUTPUT
# (what is trained depends on what the results store already holds)
missing = [c.run_id for c in step2_configs.values() if not record_path(c, results_dir).exists()]
print(f"{len(missing)} of {len(step2_configs)} runs not in the results store yet: training them now")
step2_records = {name: run(c, results_dir=results_dir, progress=False) for name, c in step2_configs.items()}

# %%
steps = tutorial.diagnostics_frame(step2_records)
tutorial.plot_share_and_fidelity(steps, f"MGDA on Multi-MNIST: what the optimizer does with g_t (profile {profile})")
plt.show()
step2_summary = tutorial.comparison_frame(step2_records)
step2_summary.round(3)

# %%
for name in ("sgdm", "adam"):
    glue(f"workshop_{name}_share", float(step2_summary.loc[name, "median share"]), display=False)
    glue(f"workshop_{name}_fidelity", float(step2_summary.loc[name, "median fidelity"]), display=False)

# %% [markdown]
# In this run the median share is {glue:text}`workshop_sgdm_share:.2f` under SGD-momentum and
# {glue:text}`workshop_adam_share:.2f` under Adam, and the step's cosine with MGDA's direction is
# {glue:text}`workshop_sgdm_fidelity:.2f` and {glue:text}`workshop_adam_fidelity:.2f`.
#
# **Discuss (3 min).** Most of each momentum step is made of *earlier* minibatches' directions. MGDA computed a
# direction that improves both tasks on *this* batch: how much of that guarantee survives in the step taken?
# (The book's chapter {ref}`chapter-instant-gradient` measures the same on longer runs, also for Muon.)
#
# ## Step 3 · Muon's orthogonalization balances directions (15 min)
#
# For a weight matrix, Muon replaces its momentum matrix $M = U S V^\top$ (singular value decomposition) by
# $U V^\top$: every singular value becomes 1, so directions that the gradient barely used get as much step as the
# dominant ones. Muon approximates $U V^\top$ with a few Newton–Schulz matrix products
# (`apt.optim.newton_schulz`). Here is a real gradient: the 50 × 500 fully connected layer of MultiLeNet, after a
# few training steps, one gradient per task on a Multi-MNIST batch.

# %%
task_grads = tutorial.layer_task_gradients("shared.fc.weight", data_dir=data_dir, seed=seed,
                                           warmup_steps=WARMUP_STEPS)
left, right = task_grads
print(wrapped(f"gradient shape {tuple(left.shape)}; |G_left| = {left.norm():.3g}, |G_right| = {right.norm():.3g}, "
              f"cos(G_left, G_right) = {float(tutorial.task_cosines(left, right[None])[0]):.3f}"))

# %% [markdown]
# ```{exercise}
# :label: ex-polar
#
# Write `orthogonalize(X)`: the exact orthogonalization $U V^\top$ of a matrix $X = U S V^\top$
# (`torch.linalg.svd`). Before you run the check, predict: what are the singular values of your result?
# ```

# %%
def orthogonalize(X: torch.Tensor) -> torch.Tensor:
    # YOUR CODE HERE
    return None


# %%
tutorial.check_polar_factor(orthogonalize)

# %% [markdown]
# ```{solution-start} ex-polar
# :class: dropdown
# ```

# %% tags=["solution"]
def orthogonalize(X: torch.Tensor) -> torch.Tensor:
    U, _, Vh = torch.linalg.svd(X, full_matrices=False)  # thin SVD: U [A, r], Vh [r, B]
    return U @ Vh


tutorial.check_polar_factor(orthogonalize)

# %% [markdown]
# ```{solution-end}
# ```
#
# The spectrum of the summed gradient (what LS gives Muon), of its Newton–Schulz orthogonalization (what Muon
# uses, in bfloat16 as Muon does) and of the exact $U V^\top$ (`apt.optim.polar_factor`):

# %%
summed = left + right
spectra = {"G_left + G_right": summed, "Newton-Schulz (Muon)": newton_schulz(summed).float(),
           "exact U V^T": polar_factor(summed)}
tutorial.plot_spectra(spectra, title=f"Singular values of the fc layer's gradient (profile {profile}, seed {seed})")
plt.show()
# directions the summed gradient does not use: singular values at rounding level (σ_i / σ_1 < 1e-6)
relative = {name: singular_values(m.float()) / singular_values(m.float()).max() for name, m in spectra.items()}
unused = relative["G_left + G_right"] < 1e-6
glue("workshop_rank", int((~unused).sum()), display=False)
glue("workshop_min_dim", int(min(summed.shape)), display=False)
glue("workshop_zero_rows", int((summed.abs().sum(dim=1) == 0).sum()), display=False)  # output units with no gradient
glue("workshop_unused_ns_max", float(relative["Newton-Schulz (Muon)"][unused].max()) if unused.any() else 0.0,
     display=False)
glue("workshop_unused_exact_min", float(relative["exact U V^T"][unused].min()) if unused.any() else 1.0,
     display=False)

# %% [markdown]
# The summed gradient uses only {glue:text}`workshop_rank` of the layer's {glue:text}`workshop_min_dim` singular
# directions; the others sit at rounding level (below $10^{-6}\sigma_1$). Here {glue:text}`workshop_zero_rows` of its
# rows are exactly zero: output units whose ReLU was inactive on every example of the batch. Newton–Schulz leaves
# those directions where they were (at most {glue:text}`workshop_unused_ns_max:.0e` of $\sigma_1$ after
# orthogonalization): its odd polynomial maps 0 to 0 and enlarges tiny values by a bounded factor. The exact $U
# V^\top$ from the SVD gives them a singular value of at least {glue:text}`workshop_unused_exact_min:.2f`: for a
# rank-deficient matrix, $U V^\top$ is one of many polar factors, and this one turns rounding noise into full-size
# step directions. Muon's iteration is the better behaved of the two here.
#
# What does that do to the tasks? Below, the right task's loss is also down-weighted by 10 (as when one loss is
# on a smaller scale). For each update we measure its cosine with each task's gradient: how much it serves each
# task.

# %%
rows = []
for label, weight in (("equal weights", 1.0), ("right task x 0.1", 0.1)):
    combined = left + weight * right
    for update_name, update in (("summed gradient", combined), ("orthogonalized (Muon)", newton_schulz(combined))):
        cosines = tutorial.task_cosines(update.float(), task_grads)
        rows.append({"weights": label, "update": update_name, "cos with left": float(cosines[0]),
                     "cos with right": float(cosines[1])})
balance = pd.DataFrame(rows).set_index(["weights", "update"])
# rounded to the 2 decimals the text shows: nbval compares glued values, and bfloat16 Newton-Schulz changes the
# 4th decimal with the number of threads
down_weighted = balance.loc["right task x 0.1"]
for update_name, key in (("summed gradient", "summed"), ("orthogonalized (Muon)", "muon")):
    for task in ("left", "right"):
        glue(f"workshop_{task}_cos_{key}", round(float(down_weighted.loc[update_name, f"cos with {task}"]), 2),
             display=False)
# the balance between the tasks: how much the update serves the weak task per unit it serves the strong one
ratio = down_weighted["cos with right"] / down_weighted["cos with left"]
glue("workshop_ratio_summed", round(float(ratio["summed gradient"]), 2), display=False)
glue("workshop_ratio_muon", round(float(ratio["orthogonalized (Muon)"]), 2), display=False)
glue("workshop_ratio_verdict",
     "raises" if ratio["orthogonalized (Muon)"] > ratio["summed gradient"] else "does not raise", display=False)
balance.round(3)

# %% [markdown]
# With the right task down-weighted, the summed gradient has cosine {glue:text}`workshop_left_cos_summed:.2f` with
# the left task's gradient and {glue:text}`workshop_right_cos_summed:.2f` with the right task's; after
# orthogonalization, {glue:text}`workshop_left_cos_muon:.2f` and {glue:text}`workshop_right_cos_muon:.2f`. Both
# cosines change, so compare their ratio, right over left: how much the update serves the weak task per unit it
# serves the strong one. It is {glue:text}`workshop_ratio_summed:.2f` for the summed gradient and
# {glue:text}`workshop_ratio_muon:.2f` after orthogonalization: here orthogonalization
# {glue:text}`workshop_ratio_verdict` the weak task's relative share.
#
# **Discuss (3 min).** The APT paper calls Muon "a multi-task learner" for this reason. If orthogonalization
# already balances the tasks, what is left for an MTL method to do under Muon? And *which* matrix gets
# orthogonalized (this step's MTL direction, or the momentum) — does it matter?
#
# ## Step 4 · Switch APT on (20 min)
#
# APT makes the momentum coefficient adaptive, so that the instant gradient can take a larger share of the step.
# The exact rule of the paper is not published: `apt.optim` implements documented assumptions (register entries
# A1–A8 of `apt.optim.assumptions`). In ours, $\beta_t$ moves between $\beta_{\min} = 0.5$ and
# $\beta_{\max} = 0.9$ (A8) with the cosine between $g_t$ and $m_{t-1}$ (A4). In `apt` you switch it on by the optimizer's
# name. The baseline is MGDA with Adam:

# %%
baseline = workshop_config("adam")
print(wrapped(repr(baseline)))

# %% [markdown]
# ```{exercise}
# :label: ex-apt
#
# Set `apt_config` to the same run with APT switched on: the APT version of the baseline's optimizer, and
# nothing else changed. (`dataclasses.replace(config, field=value)` copies a frozen dataclass with one field
# changed; the optimizer names are in `apt.optim.OPTIMIZERS`.)
# ```

# %%
apt_config = None  # YOUR CODE HERE

# %%
tutorial.check_single_change(baseline, apt_config)

# %% [markdown]
# ```{solution-start} ex-apt
# :class: dropdown
# ```

# %% tags=["solution"]
apt_config = dataclasses.replace(baseline, optimizer="apt_adam")
tutorial.check_single_change(baseline, apt_config)

# %% [markdown]
# ```{solution-end}
# ```
#
# Both arms, for several seeds (the run size is printed at the top): a few minutes on a laptop. While it runs:
# **predict** whether APT's share of the instant gradient is higher than Adam's, and whether accuracy changes by
# more than the seed-to-seed spread.

# %%
if not tutorial.check_single_change(baseline, apt_config).ok:
    raise ValueError("finish exercise 4 first: the runs below compare the baseline with your apt_config")
step4_configs = {(arm, s): dataclasses.replace(config, seed=s)
                 for arm, config in (("adam", baseline), ("apt_adam", apt_config)) for s in SEEDS}
# NBVAL_IGNORE_OUTPUT
# (what is trained depends on what the results store already holds)
missing = [c.run_id for c in step4_configs.values() if not record_path(c, results_dir).exists()]
print(f"{len(missing)} of {len(step4_configs)} runs not in the results store yet: training them now")
step4_records = {key: run(c, results_dir=results_dir, progress=False) for key, c in step4_configs.items()}

# %%
per_run = tutorial.comparison_frame({f"{arm} seed {s}": record for (arm, s), record in step4_records.items()})
per_run.round(4)

# %%
frame = runs_frame(list(step4_records.values()), "multi_mnist", with_delta_m=False)
frame["mean accuracy"] = (frame["acc_left"] + frame["acc_right"]) / 2
difference = paired_difference(frame, "mean accuracy", column="optimizer", treatment="apt_adam", control="adam")
glue("workshop_apt_difference", 100 * float(difference["difference"].iloc[0]), display=False)
glue("workshop_apt_ci", 100 * float(difference["ci95"].iloc[0]), display=False)
glue("workshop_apt_verdict", "resolved" if bool(difference["resolved"].iloc[0]) else "unresolved", display=False)
median_share = per_run["median share"].groupby(lambda run_name: run_name.split(" seed ")[0]).mean()
glue("workshop_share_adam", round(float(median_share["adam"]), 2), display=False)
glue("workshop_share_apt", round(float(median_share["apt_adam"]), 2), display=False)
glue("workshop_run_size", f"{len(SEEDS)}-seed, {RUN_SIZE[1]['epochs']}-epoch", display=False)
glue("workshop_n_seeds", len(SEEDS), display=False)
glue("workshop_n_epochs", RUN_SIZE[1]["epochs"], display=False)
difference.round(4)

# %% [markdown]
# APT-Adam minus Adam, mean test accuracy, paired by seed: {glue:text}`workshop_apt_difference:.2f` points,
# 95% interval ± {glue:text}`workshop_apt_ci:.2f`, so {glue:text}`workshop_apt_verdict` at this size.
# `resolved` says whether the interval excludes zero; an unresolved difference is not a finding. The instant
# gradient's median share of the step, averaged over seeds, is {glue:text}`workshop_share_adam:.2f` under Adam
# and {glue:text}`workshop_share_apt:.2f` under APT-Adam.
#
# **Discuss (3 min).** APT gives the instant gradient a larger share of the step (compare the `median share`
# column). Is a larger share *better*? What does this short run leave open (size, seeds, learning rate, one
# benchmark where the two tasks barely conflict)?
#
# ## Step 5 · An open question (15 min)
#
# There is no answer key for this step: discuss in pairs, then in the room.
#
# An adaptive $\beta_t$ that is often near $\beta_{\min}$ behaves like a *fixed, lower* momentum. So if APT helps,
# is it the **adaptivity** or simply **less momentum**?
#
# - Which control run would separate the two? (Hint: the `median share` of APT tells you roughly which fixed
#   $\beta$ to compare with.) Write its config below; run it if you have time.
# - Under plain SGD the share is 1 by construction. Should an MTL method's direction *always* dominate the step?
#   What do we lose (noise averaging, curvature information) when it does?
# - Step 3 suggests Muon balances tasks on its own. Design a measurement on Multi-MNIST that would tell whether
#   MGDA still adds anything under Muon.
# - Which of these questions does a {glue:text}`workshop_run_size` run like step 4's answer at all?

# %%
# A fixed-β control: APT-Adam with β_min = β_max = 0.7 is Adam with β1 = 0.7 (register A1, A5). Run it live with
# run(fixed_beta_control, results_dir=results_dir) and add it to the comparison of step 4.
fixed_beta_control = dataclasses.replace(baseline, optimizer="apt_adam",
                                         optimizer_hp={"beta_min": 0.7, "beta_max": 0.7})
fixed_beta_control.optimizer, dict(fixed_beta_control.optimizer_hp)

# %% [markdown]
# ## What you measured
#
# 1. MTL methods differ in how they combine conflicting gradients, and in the *length* of the result.
# 2. Under momentum and Adam, this step's MTL direction is a minority of the update.
# 3. Muon's orthogonalization flattens the spectrum of the update; with one task down-weighted it
#    {glue:text}`workshop_ratio_verdict` the weak task's cosine relative to the strong task's
#    ({glue:text}`workshop_ratio_summed:.2f` → {glue:text}`workshop_ratio_muon:.2f`).
# 4. APT-Adam's instant gradient takes a median {glue:text}`workshop_share_apt:.2f` of the step against Adam's
#    {glue:text}`workshop_share_adam:.2f`; its accuracy difference ({glue:text}`workshop_apt_difference:+.2f` ±
#    {glue:text}`workshop_apt_ci:.2f` points) is {glue:text}`workshop_apt_verdict` in a
#    {glue:text}`workshop_run_size` run, one benchmark and one learning rate.
#
# The book's chapters measure each of these at larger scale: {ref}`chapter-mtl-toy` (step 1),
# {ref}`chapter-instant-gradient` (step 2).
