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
# (chapter-mtl-toy)=
# # Optimization-based multi-task learning, on a problem you can see
#
# A multi-task model has shared parameters $\theta$ and $K$ task losses $\ell_1(\theta), \dots, \ell_K(\theta)$.
# Each step, an *optimization-based* MTL method turns the task gradients $g_k = \nabla_\theta \ell_k$ (rows
# of the Jacobian $J \in \mathbb{R}^{K \times P}$), or just the losses, into **one** direction $d$ that the
# optimizer then follows. The methods of `apt.mtl` differ only in that map:
#
# | method | direction $d$ | idea |
# |---|---|---|
# | LS | $\sum_k g_k$ | sum the losses |
# | MGDA {cite}`desideri2012mgda,sener2018mgda` | $\sum_k w_k g_k,\; w = \arg\min_{w \in \Delta} \lVert \sum_k w_k g_k \rVert$ | min-norm point of the gradients' convex hull: improves every task |
# | PCGrad {cite}`yu2020pcgrad` | $\sum_k \tilde g_k$, $\tilde g_k \leftarrow \tilde g_k - \frac{\min(\tilde g_k \cdot g_j, 0)}{\lVert g_j \rVert^2} g_j$ over $j$ in random order | project away conflicting components |
# | CAGrad {cite}`liu2021cagrad` | $g_0 + \frac{c \lVert g_0 \rVert}{\lVert g_w \rVert} g_w$, $w = \arg\min_{w\in\Delta} g_w^\top g_0 + c\lVert g_0\rVert \lVert g_w \rVert$ | best worst-task improvement near the mean gradient $g_0$ |
# | IMTL-G {cite}`liu2021imtl` | $\sum_k \alpha_k g_k$ with equal projections $d^\top g_k / \lVert g_k \rVert$ | impartial to gradient scale |
# | Nash-MTL {cite}`navon2022nashmtl` | $\sum_k \alpha_k g_k$, $(G\alpha)_k = 1/\alpha_k$, $G = JJ^\top$ | Nash bargaining solution |
# | FAMO {cite}`liu2023famo` | weights $z = \mathrm{softmax}(\xi)$ on $\log \ell_k$, $\xi$ updated from the observed loss decrease | equal *rate* of decrease, $O(1)$ cost |
#
# The full list, with each method's paper and default hyperparameters, is the registry of `apt.mtl`
# (printed below). In this chapter we watch these maps act on the classic **synthetic** two-objective problem
# of the CAGrad, Nash-MTL and FAMO papers, first on one pair of gradients, then along whole trajectories under
# gradient descent, Adam and Muon, with and without APT.

# %% tags=["parameters"]
profile = "cpu"  # smoke | cpu | full: how many optimization steps per trajectory
device = "cpu"
seed = 0
data_dir = None  # unused: this chapter's problem is synthetic
results_dir = None  # unused: trajectories are computed here, in seconds to minutes

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from myst_nb import glue

from apt.benchmarks import toy
from apt.mtl import METHODS, aggregate, method_info
from apt.page import wrapped
from apt.toy_runs import CHAPTER_LR, CHAPTER_METHODS, CHAPTER_OPTIMIZERS, chapter_runs, toy_trajectories

STEPS = {"smoke": 25, "cpu": 1000, "full": 20000}[profile]
print(f"profile {profile}: {STEPS} steps per trajectory")

# %%
registry = pd.DataFrame(
    [{"method": name, "kind": method_info(name).kind, "paper": method_info(name).paper,
      "defaults": method_info(name).defaults} for name in METHODS]
).set_index("method")
registry

# %% [markdown]
# ## The synthetic problem
#
# Two losses of a point $x \in \mathbb{R}^2$ (their formulas are in the docstring of `apt.benchmarks.toy`):
# above the $x_1$ axis both are log-barrier valleys, below it both are quadratic bowls with minima at
# $x = (\pm 7, -8)$ (approximately). The Pareto set — the points where no step improves both losses — is the
# curve between the two minima (white). We use the imbalanced variant of Nash-MTL and FAMO, where the first
# loss is scaled by $0.1$: summing the losses then favours the second task.

# %%
SCALE = toy.NASH_FAMO_FIRST_LOSS_SCALE
X1, X2, L = toy.loss_grid(first_loss_scale=SCALE)
pareto = toy.pareto_set().numpy()
fig, axes = plt.subplots(1, 3, figsize=(13, 4), sharey=True)
for ax, values, title in zip(axes, [L[..., 0], L[..., 1], L.sum(-1)], ["$L_1$ (× 0.1)", "$L_2$", "$L_1 + L_2$"]):
    contour = ax.contourf(X1, X2, values, levels=30, cmap="viridis")
    ax.plot(pareto[:, 0], pareto[:, 1], color="white", lw=2, label="Pareto set")
    ax.set(title=title, xlabel="$x_1$")
    fig.colorbar(contour, ax=ax)
axes[0].set_ylabel("$x_2$")
axes[0].legend(loc="upper right")
fig.suptitle("The synthetic two-objective toy problem (no data, no profile dependence)")
plt.show()

# %% [markdown]
# ## One pair of gradients, seven directions
#
# At the starting point $x_0 = (9, -1)$ (one of the five of the Nash-MTL/FAMO figures) the two task gradients
# conflict — their cosine is printed below — and differ in scale. `apt.mtl.aggregate` maps the Jacobian
# $J = [g_1; g_2]$ to each method's direction $d$; the arrows below are $-d$, the direction a gradient step
# moves, normalized to unit length so that their *angles* can be compared.

# %%
x0 = torch.tensor([9.0, -1.0], requires_grad=True)
losses = toy.toy_losses(x0, SCALE)
jacobian = torch.stack([torch.autograd.grad(losses[k], x0, retain_graph=True)[0] for k in range(2)])
task_cosine = torch.nn.functional.cosine_similarity(jacobian[0], jacobian[1], dim=0).item()
print(f"cos(g_1, g_2) = {task_cosine:.3f};  |g_1| = {jacobian[0].norm():.3f},  |g_2| = {jacobian[1].norm():.3f}")
gradient_methods = [m for m in METHODS if method_info(m).kind == "gradient" and m != "graddrop"]
directions = {m: aggregate(m, jacobian) for m in gradient_methods}
directions["ls"] = jacobian.sum(0)
rows = []
for name, d in directions.items():
    cosines = torch.nn.functional.cosine_similarity(d.unsqueeze(0), jacobian, dim=1)
    rows.append({"method": name, "d_1": d[0].item(), "d_2": d[1].item(),
                 "cos(d, g_1)": cosines[0].item(), "cos(d, g_2)": cosines[1].item()})
directions_table = pd.DataFrame(rows).set_index("method").round(4)
directions_table

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(7, 5))
# several methods point (almost) the same way here: the arrows are named in a legend, not at their tips, and drawn
# from wide to narrow so that one lying on another still shows around it
arrows = [(f"$-g_{k + 1}$ (task {k + 1})", -g, {"color": "black", "ls": ls, "lw": 1.5})
          for k, (g, ls) in enumerate(zip(jacobian, ("--", ":")))]
method_colors = [c for i, c in enumerate(plt.get_cmap("tab10").colors) if i != 7]  # tab10 without its grey
widths = np.linspace(7, 1.5, len(directions))
arrows += [(name, -d, {"color": method_colors[i % len(method_colors)], "lw": widths[i]})
           for i, (name, d) in enumerate(directions.items())]
for label, v, style in arrows:
    u = v / v.norm()
    ax.annotate("", xy=u.tolist(), xytext=(0, 0), arrowprops=dict(arrowstyle="->", **style))
    ax.plot([], [], label=label, **style)
ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), title="direction $-d$")
ax.set(xlim=(-1.2, 1.2), ylim=(-1.2, 1.2), aspect="equal", xlabel="$x_1$ component", ylabel="$x_2$ component",
       title="Unit directions of descent at $x_0 = (9, -1)$")
fig.tight_layout()
plt.show()
names = list(directions)
same = [f"{a} and {b}" for i, a in enumerate(names) for b in names[i + 1:]
        if torch.nn.functional.cosine_similarity(directions[a], directions[b], dim=0) > 0.999]
print(wrapped("Arrows that lie on each other (cosine > 0.999): " + ("; ".join(same) if same else "none")))

# %% [markdown]
# ## Whole trajectories, under three optimizers, with and without APT
#
# Each method now drives the point from the five starting points of the Nash-MTL/FAMO figures, for
# {glue:text}`toy_steps` steps (the profile sets how many) with learning rate {glue:text}`toy_lr`, under plain gradient
# descent (`sgd`),
# Adam, APT-Adam, Muon and APT-Muon. Here $x$ is held as a $1 \times 2$ matrix so that Muon can take it; the
# orthogonalization of a rank-one matrix is its normalization, so on this problem Muon is *normalized momentum
# descent* (we use Muon's `original` learning-rate scaling so that one Muon step has length $\eta$, like an
# Adam step). APT runs with the package defaults of its assumed rules (the assumptions register is in the APT
# chapter). A run *reaches the Pareto set* when it ends within $0.5$ of it.
#
# FAMO weighs $\log(\ell_k - \ell_k^{\min})$ and so needs a lower bound of each loss. The toy losses are negative
# (the bowls reach $-20$): since $h_k \ge -20$, $0 \le c_2 < 1$ and $g_k c_1 > -6.3$, the infima are
# $\ell_1^{\min} = -20 \cdot 0.1$ and $\ell_2^{\min} = -20$, which we pass as `min_losses`.
#
# Nash-MTL solves a small convex program at every step. Where a solve fails, `apt.mtl` keeps its last feasible
# weights, as the reference code does, but says so (a `SolverFailureWarning`, and a count per step) where the
# reference code is silent. Here the counts are kept per step (`apt.toy_runs.toy_trajectory` returns them) rather
# than printed, so that the table after the figure can say where along the trajectories the failures happen.
#
# The trajectories are independent, so `apt.toy_runs.toy_trajectories` computes them on one process per core
# (up to 8); each is deterministic, and the test suite checks that the parallel result equals the serial one.

# %% tags=["hide-input"]
# The runs (apt.toy_runs.chapter_runs): these methods × these optimizer settings (with their options) × the
# five starts; FAMO gets the min_losses derived above.
METHODS_SHOWN, OPTIMIZERS_SHOWN, LR = CHAPTER_METHODS, CHAPTER_OPTIMIZERS, CHAPTER_LR
glue("toy_lr", f"{LR:g}", display=False)
print(wrapped(f"methods {list(METHODS_SHOWN)}; optimizers {OPTIMIZERS_SHOWN}; lr {LR}"))


def distance_to_pareto(points: np.ndarray) -> np.ndarray:
    """Euclidean distance of each point [N, 2] to the sampled Pareto set: [N]."""
    return np.min(np.linalg.norm(points[:, None, :] - pareto[None, :, :], axis=-1), axis=1)


specs = chapter_runs(STEPS, seed=seed)
# One process per core (at most 8): the trajectories are independent and each is deterministic, so the result is
# the same as computing them one after another. (No progress bar at the smoke size: the tests compare this cell's
# output.)
outputs = toy_trajectories(specs, progress=profile != "smoke")
trajectories, rows, failure_rows = {}, [], []
for spec, out in zip(specs, outputs):
    points = out["points"].numpy()
    trajectories[spec.optimizer, spec.method, spec.start] = points
    distance = float(distance_to_pareto(points[-1:])[0])
    failed_steps = np.flatnonzero(out["solver_failures"].numpy())
    rows.append({"optimizer": spec.optimizer, "method": spec.method, "start": spec.start, "distance": distance,
                 "reached": distance < 0.5, "L1": out["losses"][-1, 0].item(), "L2": out["losses"][-1, 1].item(),
                 "solver_failures": int(out["solver_failures"].sum())})
    # where the point was when the solve failed (points[t] is x_t, the point whose gradients the step used)
    failure_rows += [{"optimizer": spec.optimizer, "method": spec.method, "step": int(t), "distance": float(d)}
                     for t, d in zip(failed_steps, distance_to_pareto(points[failed_steps]))]
runs = pd.DataFrame(rows)
failures = pd.DataFrame(failure_rows, columns=["optimizer", "method", "step", "distance"])
print(f"{len(runs)} trajectories of {STEPS} steps")

# %% tags=["hide-input"]
# one row per method, one column per optimizer (a tall figure reads better in the book's narrow column)
fig, axes = plt.subplots(len(METHODS_SHOWN), len(OPTIMIZERS_SHOWN), figsize=(2.6 * len(OPTIMIZERS_SHOWN),
                         2.5 * len(METHODS_SHOWN)), sharex=True, sharey=True)
for row, method in enumerate(METHODS_SHOWN):
    for col, optimizer in enumerate(OPTIMIZERS_SHOWN):
        ax = axes[row, col]
        ax.contour(X1, X2, L.sum(-1), levels=15, cmap="Greys", linewidths=0.5)
        ax.plot(pareto[:, 0], pareto[:, 1], color="black", lw=2)
        for i, start in enumerate(toy.NASH_FAMO_INITIAL_POINTS):
            points = trajectories[optimizer, method, start]
            ax.plot(points[:, 0], points[:, 1], color=f"C{i}", lw=1.2)
            ax.plot(*points[0], "o", color=f"C{i}", ms=3)
            ax.plot(*points[-1], "*", color=f"C{i}", ms=7)
        if row == 0:
            ax.set_title(optimizer)
        if col == 0:
            ax.set_ylabel(f"{method}\n$x_2$")
        if row == len(METHODS_SHOWN) - 1:
            ax.set_xlabel("$x_1$")
fig.suptitle(f"Trajectories on the synthetic toy ({STEPS} steps, lr {LR}, profile {profile})\n"
             "black: Pareto set, ●: start, ★: end", y=1.0)
fig.tight_layout()
plt.show()

# %% [markdown]
# How many of the five starts end on the Pareto set, per method and optimizer:

# %%
reached = runs.pivot_table(index="method", columns="optimizer", values="reached", aggfunc="sum")
reached = reached.loc[METHODS_SHOWN, list(OPTIMIZERS_SHOWN)]
reached

# %% [markdown]
# Solver failures of Nash-MTL: steps whose convex program did not solve, summed over the five starts, their share
# of all steps, and where the point was when they happened (its distance to the Pareto set; "near" is within the
# same $0.5$ that defines reaching it). Near the Pareto set the two task gradients point almost against each other,
# and the bargaining constraints $\alpha_k (G\alpha)_k \ge 1$ of both tasks can then hardly hold at once.

# %%
nash_steps = STEPS * len(toy.NASH_FAMO_INITIAL_POINTS)
nash_failures = failures[failures.method == "nash_mtl"]
failure_table = pd.DataFrame({
    "failed steps": nash_failures.groupby("optimizer").size(),
    "within 0.5 of the Pareto set": nash_failures[nash_failures.distance < 0.5].groupby("optimizer").size(),
    "median distance": nash_failures.groupby("optimizer")["distance"].median(),
}).reindex(list(OPTIMIZERS_SHOWN))
counts = ["failed steps", "within 0.5 of the Pareto set"]
failure_table[counts] = failure_table[counts].fillna(0).astype(int)
failure_table.insert(1, "% of steps", 100 * failure_table["failed steps"] / nash_steps)
failure_table.round(2)

# %% tags=["hide-input"]
ls_reached = {opt: int(reached.loc["ls", opt]) for opt in OPTIMIZERS_SHOWN}
best_method_under_adam = reached["adam"].idxmax()
glue("toy_steps", STEPS, display=False)
glue("toy_ls_reached_sgd", ls_reached["sgd"], display=False)
glue("toy_ls_reached_adam", ls_reached["adam"], display=False)
glue("toy_total_reached", int(runs["reached"].sum()), display=False)
glue("toy_total_runs", len(runs), display=False)
total_failed = int(failure_table["failed steps"].sum())
near = int(failure_table["within 0.5 of the Pareto set"].sum())
if total_failed == 0:
    nash_sentence = "Nash-MTL's convex program did not fail at any step at this profile."
else:
    nash_sentence = (
        f"Nash-MTL's convex program failed at {total_failed} steps "
        f"({100 * total_failed / (nash_steps * len(OPTIMIZERS_SHOWN)):.1f}% of its steps over the "
        f"{len(OPTIMIZERS_SHOWN)} optimizer settings), {100 * near / total_failed:.0f}% of them within 0.5 of the "
        "Pareto set (the table gives it per optimizer): "
        + ("the failures belong mostly to the end of a trajectory, where some convex combination of the two "
           "gradients is close to zero, rather than to its way there." if near > total_failed / 2
           else "most failures happen away from the Pareto set."))
glue("toy_nash_failures", nash_sentence, display=False)

# %% [markdown]
# ## What this shows, and what it does not
#
# With {glue:}`toy_steps` steps, summing the losses (LS) reaches the Pareto set from
# {glue:}`toy_ls_reached_sgd` of 5 starts under gradient descent and from {glue:}`toy_ls_reached_adam` under
# Adam; over all methods and optimizers, {glue:}`toy_total_reached` of {glue:}`toy_total_runs` trajectories end
# on it. The figure shows the two effects the rest of the book measures on real benchmarks: methods that change
# the *direction* of the instant gradient (MGDA, CAGrad, Nash-MTL) steer differently from LS under plain
# gradient descent, while under Adam and Muon the per-coordinate normalization and momentum change where every
# method goes — the optimizer, not only the method, decides the path.
#
# {glue:text}`toy_nash_failures` Where a solve fails the method keeps its last feasible weights, so such steps are
# Nash-MTL steps with stale weights, not LS steps.
#
# This is a synthetic problem in two dimensions: it illustrates the mechanics and proves nothing about deep
# networks. In particular, Muon on a $1\times 2$ matrix is just normalized descent, so its "balancing" of task
# directions (claim 2 of the paper) cannot show here; the Muon chapter measures it on real weight matrices.
