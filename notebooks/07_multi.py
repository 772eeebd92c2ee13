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
# (chapter-multi)=
# # Multi-MNIST, Multi-Fashion, Multi-(Fashion+MNIST)
#
# Three two-task benchmarks small enough to run every MTL method under every optimizer setting on a CPU. Two
# 28×28 items (handwritten digits from MNIST, clothing from Fashion-MNIST, or one of each) are pasted on a 36×36
# canvas, one near the top-left and one near the bottom-right corner, overlapping (Sener & Koltun's construction,
# as in Pareto MTL). Task 1 classifies the left item, task 2 the right one; the model is the MultiLeNet of the
# Pareto-MTL code (a shared two-convolution trunk, one linear head per task); the metrics are the two test
# accuracies. Δm% is the mean relative accuracy change against single-task networks trained with Adam and the
# same profile and seeds (lower is better). Every arm, Muon and APT arms included, is measured against these
# same Adam-trained baselines, so a difference of Δm% between two arms is a difference of their own metrics;
# an arm's Δm% itself mixes "multi-task vs single-task" with "its optimizer vs Adam":
#
# $$
# \Delta m\% = \frac{100}{2}\sum_{k=1}^{2} \frac{b_k - x_k}{b_k}.
# $$
#
# Every method of `apt.mtl` runs under Adam, APT-Adam, Muon and APT-Muon (our assumed APT rules, see
# {ref}`chapter-apt`), at the protocol's learning rate ({glue:text}`multi_lr`) for all four (Muon's update is scaled to
# AdamW's RMS, register O3). Runs of one benchmark share their seeds across arms (same initialisation and batch
# order), so APT's effect is measured as a difference **paired by seed**. No published tables for these
# benchmarks are part of this book's reference set (`BENCHMARKS.md` §4 covers QM9, CelebA, NYUv2 and Cityscapes),
# so the comparison here is internal: methods and optimizers against each other at one profile.

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
from apt.experiment import run
from apt.figures import OPTIMIZER_COLORS, apt_effect_figure, curves_per_optimizer_figure, seeds_note
from apt.grids import BOOK_OPTIMIZERS, MULTI_BENCHMARKS, book_grids, load_grid
from apt.analysis import format_results, signed_pm
from apt.page import counted, show, wrapped
from apt.results import (apt_counts, apt_table, benchmarks_text, counted_benchmarks, effect_counts_text,
                         learning_curves, solver_failure_shares, solver_failures, solver_failures_text,
                         stored_results)

# The cpu and full grids take hours (`make results` / `python -m apt grid`); the chapter renders what the store
# holds and says what is missing. A smoke build trains its tiny grid so that every cell below runs in CI.
TRAIN_MISSING = profile == "smoke"
grids = {name: book_grids(profile)[name] for name in MULTI_BENCHMARKS}
stored = {name: load_grid(g, profile, results_dir=results_dir, data_dir=data_dir) for name, g in grids.items()}
if TRAIN_MISSING:
    for name, loaded in stored.items():
        for config in loaded.missing:
            run(config, results_dir=results_dir, progress=False)
    stored = {name: load_grid(g, profile, results_dir=results_dir, data_dir=data_dir) for name, g in grids.items()}

protocol_rows = []
for name, g in grids.items():
    cls = benchmark_class(name)
    p = cls.protocol.with_overrides(cls.profiles[profile])
    protocol_rows.append({"benchmark": name, "train / val / test pairs": f"{p.n_train} / {p.n_val} / {p.n_test}",
                          "epochs": p.epochs, "batch": p.batch_size, "lr": p.lr,
                          "reporting rule": f"{p.selection} (k = {p.selection_k})",
                          "grid": f"{len(g.methods)} methods × {len(g.optimizers)} optimizers × seeds {list(g.seeds)}",
                          "stored": stored[name].stored_fraction})
arm_counts = {(len(g.methods), len(g.optimizers)) for g in grids.values()}  # the same on every Multi-* benchmark
glue("multi_arms", "; ".join(f"{m * o} arms ({m} methods × {o} optimizer settings)" for m, o in sorted(arm_counts)),
     display=False)
glue("multi_n_methods", " or ".join(str(m) for m, _ in sorted(arm_counts)), display=False)
glue("multi_lr", " or ".join(sorted({f"{row['lr']:g}" for row in protocol_rows})), display=False)
pd.DataFrame(protocol_rows).set_index("benchmark")

# %% [markdown]
# The table above is this build's protocol (profile in the parameters cell) and how much of each grid is in
# the results store. The reporting rule `last_k` averages the test accuracies of the last $k$ epochs: it is the
# rule we use for these benchmarks at every profile, because single final-epoch values are noisier than the
# differences we look for (`TOOLCHAIN.md` measured a seed-to-seed standard deviation of about 0.6 Δm% points
# per run on Multi-Fashion at the `cpu` size).

# %%
results = stored_results(profile, benchmarks=MULTI_BENCHMARKS, results_dir=results_dir, data_dir=data_dir)
# NBVAL_IGNORE_OUTPUT
# (what is complete depends on the store)
pd.DataFrame([{"benchmark": name, "diverged runs": len(loaded.diverged),
               "complete seeds": loaded.complete_seeds() or "none", "tabulated": bool(loaded.complete_seeds())}
              for name, loaded in stored.items()]).set_index("benchmark")

# %% [markdown]
# Only seeds whose whole grid is stored (every method × optimizer and both single-task baselines) enter the
# tables, so every arm of a table is averaged over the same seeds.
#
# ## Per-task accuracy, Δm% and mean rank
#
# Accuracies as fractions, mean ± 95% t-interval half-width over seeds; MR ranks all
# {glue:text}`multi_arms` of a benchmark on its two accuracies.

# %%
for name, res in results.items():
    show(f"{name} (profile {profile}); Δm% against {res.baseline_label}")
    display(format_results(res.arms.set_index(["method", "optimizer"])))  # noqa: F821 (IPython builtin)

# %% [markdown]
# The same Δm% values as a figure, one row per method, one colour per optimizer setting:

# %% tags=["hide-input"]
colors = OPTIMIZER_COLORS
n_panels = max(len(results), 1)  # every benchmark has the same methods: one shared y axis
fig, axes = plt.subplots(1, n_panels, figsize=(min(5.5 * n_panels, 13), 7), sharey=True, squeeze=False)
for ax, (name, res) in zip(axes[0], results.items()):
    methods = list(dict.fromkeys(res.arms["method"]))
    y = {m: i for i, m in enumerate(reversed(methods))}
    for j, optimizer in enumerate(BOOK_OPTIMIZERS):
        part = res.arms[res.arms["optimizer"] == optimizer]
        offsets = np.array([y[m] for m in part["method"]]) + (j - 1.5) * 0.18
        ax.errorbar(part["delta_m"], offsets, xerr=part["delta_m_ci"].fillna(0), fmt="o", ms=4,
                    color=colors[optimizer], label=optimizer, capsize=2)
    ax.set_yticks(list(y.values()), list(y.keys()))
    ax.axvline(0, color="black", lw=0.8)
    seeds = int(res.arms["n_seeds"].min())
    ax.set(xlabel="Δm% vs single-task (points; lower is better)",
           title=f"{name} ({seeds_note(seeds)})")
if results:  # outside the panels: inside, it hides arms
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, title="optimizer", loc="center left", bbox_to_anchor=(1.0, 0.5))
fig.suptitle(f"Δm% per method and optimizer, mean ± 95% CI over seeds where there are 2 or more (profile {profile})")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Does APT change what a method achieves?
#
# For each method and base optimizer $X \in \{\text{Adam}, \text{Muon}\}$, the paired difference
# $d_s = \Delta m\%(\text{method}, \text{APT-}X, s) - \Delta m\%(\text{method}, X, s)$ with its 95% interval over
# seeds; negative means APT helped. Blue points have intervals that exclude 0 (resolved); grey ones are
# unresolved at this number of seeds.

# %%
apt_effect_figure({name: res.apt_effect for name, res in results.items()}, profile=profile)
plt.show()

# %%
# per benchmark and APT variant; <NA>: one seed, so no difference has an interval and none was tested
by_apt = apt_table(results)
by_apt.round(3) if not by_apt.empty else print("No complete seed of any grid in this build.")

# %%
# summed over the benchmarks shown that have intervals (at least two seeds)
for base in ("adam", "muon"):
    counts = apt_counts(by_apt, f"apt_{base}")
    glue(f"multi_apt_{base}", "not measured in this build (no benchmark has two complete seeds)" if counts is None
         else effect_counts_text(counts, "method × benchmark pairs"), display=False)
glue("multi_benchmarks_shown", benchmarks_text(results), display=False)
glue("multi_benchmarks_counted", counted_benchmarks(by_apt), display=False)

# %% [markdown]
# ## Learning curves
#
# Test accuracy (mean of the two tasks) after every epoch, averaged over the complete seeds, for every method
# (thin lines) under each optimizer setting, on the first benchmark tabulated:

# %%
if results:
    name = next(iter(results))
    curves = learning_curves(stored[name].complete_records())
    mean_curves = curves.groupby(["optimizer", "method", "epoch"])["value"].mean().reset_index()
    mean_curves = mean_curves.assign(epoch=mean_curves["epoch"] + 1, value=100 * mean_curves["value"])
    curves_per_optimizer_figure(mean_curves, optimizers=BOOK_OPTIMIZERS, highlight=("ls", "mgda"),
                                ylabel="test accuracy, mean of 2 tasks (%)",
                                title=f"{name}: test accuracy per epoch, every method, mean over seeds "
                                      f"(profile {profile})")
    plt.show()
else:
    print("No complete seed of any grid is stored: no learning curves in this build.")

# %% [markdown]
# ## Failed solves
#
# The share of steps at which CAGrad's, Nash-MTL's or FairGrad's per-step solve failed and the step fell back
# (defined, with each method's fallback, in {ref}`section-failed-solves`), per benchmark over its complete seeds:
# {glue:text}`multi_solver_failures`.

# %%
failures = {name: solver_failures(stored[name].complete_records()) for name in results}
texts = [f"{name}: {solver_failures_text(table)}" for name, table in failures.items()]
glue("multi_solver_failures", "; ".join(texts) or "not measured in this build (nothing tabulated)",
     display=False)
shares = {name: solver_failure_shares(table) for name, table in failures.items() if not table.empty}
# NBVAL_IGNORE_OUTPUT
# (depends on the store)
if shares:
    show("share of steps whose solve failed (%), per arm over its complete seeds")
    display(pd.concat(shares, names=["benchmark"]).round(3))  # noqa: F821 (IPython builtin)
else:
    print("No run of CAGrad, Nash-MTL or FairGrad tabulated.")

# %% [markdown]
# ## Control: plain SGD with a learning rate tuned per method
#
# "Adam hurts method M" is a comparison with M under SGD, and under SGD the step is $\eta\, d_t$ with each
# method's own scale of $d_t$: LS sums the task gradients, IMTL-G's and FAMO's weights sum to 1 (half of LS's
# scale for $K = 2$), MGDA and CAGrad are rescaled by $K$ as in their reference code, Nash-MTL's and FairGrad's
# weights are unnormalised. On top of that, as in the lineage's reference code, some methods clip the aggregated
# gradient of the shared parameters to norm 1 ($d_t \leftarrow d_t \min(1, 1/\lVert d_t\rVert)$): of the methods
# below, {glue:text}`sgd_control_clipped`. Whenever $\lVert d_t\rVert > 1$ their SGD step has length $\eta$, not
# $\eta \lVert d_t\rVert$, so clipping alone can call for a larger $\eta$. One shared $\eta$ would compare step
# sizes as much as directions; Adam and Muon normalise the step and do not see that scale (the clip still
# changes the gradient they receive, in the grids too). So each method gets its own learning rate under plain SGD (no
# momentum), chosen on validation data from a factor-2 scan (one step of the scan is exactly the halving at
# issue), on Multi-Fashion at this build's profile, with the seeds below. A run's validation score is
#
# $$
# v = \frac{1}{|E|}\sum_{e \in E} \frac{1}{2}\sum_{k=1}^{2} \mathrm{acc}^{\mathrm{val}}_{k,e},
# $$
#
# over its reporting epochs $E$ (the last-$k$ rule above). Per method, $\eta^*(m) = \arg\max_\eta \bar v(m, \eta)$, the
# mean over seeds, among the learning rates at which every seed finished (a run whose loss became NaN/inf
# disqualifies its $\eta$ and is kept as a divergence note). The tuned-SGD arm is then compared with the same
# method under Adam (the grid's runs, same seeds and single-task baselines), paired by seed:
# $d_s = \Delta m\%(m, \text{Adam}, s) - \Delta m\%(m, \text{SGD at } \eta^*(m), s)$; negative means Adam helps
# $m$.

# %%
from apt.errors import NonFiniteError
from apt.figures import paired_difference_forest
from apt.grids import SGD_CONTROL_METHODS, SGD_CONTROL_SEEDS, sgd_control_configs
from apt.mtl import make_method
from apt.step_scale import stored_step_scale_control

if TRAIN_MISSING:
    for config in sgd_control_configs(profile, data_dir=data_dir).values():
        try:
            run(config, results_dir=results_dir, progress=False)
        except NonFiniteError as error:  # a diverged lr is a result of the scan: noted, not retried
            print(f"{config.run_id}: {error}")
control, control_coverage = stored_step_scale_control(profile, results_dir=results_dir, data_dir=data_dir)
clipped = [m for m in SGD_CONTROL_METHODS if make_method(m, 2).max_norm > 0]  # the methods' default max_norm
glue("sgd_control_clipped", (", ".join(clipped) + " clip" if clipped else "none clips")
     + f"; {', '.join(m for m in SGD_CONTROL_METHODS if m not in clipped)} do not", display=False)
# NBVAL_IGNORE_OUTPUT
# (what is stored depends on the store)
print(wrapped(f"SGD control, profile {profile}, seeds configured {list(SGD_CONTROL_SEEDS[profile])}: {control_coverage}"
              + ("" if control else "; not tabulated in this build")))

# %% [markdown]
# Three tables. The scan: mean validation score $\bar v$ (%) per method and learning rate ("diverged" marks a
# learning rate at which some seed's loss became NaN/inf), then the chosen $\eta^*$, its ratio to LS's, and whether
# it lies at an end of the scan (the optimum may then lie outside it). Then Δm% under tuned SGD and under Adam, and
# their paired difference $d_s$. The third table measures the confound itself: the cost of LS's learning rate, $c_s = \Delta m\%(m, \text{SGD at } \eta^*(\text{LS}), s) -
# \Delta m\%(m, \text{SGD at } \eta^*(m), s)$, paired by seed ($> 0$: the shared learning rate makes $m$ look worse
# than it is; test data, while $\eta^*$ was chosen on validation data, so it can be negative):

# %% tags=["hide-input"]
if control:
    scan = control.scan.assign(cell=[("diverged" if d else f"{100 * v:.2f}") for v, d in
                                     zip(control.scan["val_score"], control.scan["diverged"])])
    # three tables, so that each fits the page: the scan with the lr it chooses, the comparison with Adam, and the
    # cost of LS's lr
    chosen = control.chosen.set_index("method")
    n_seeds = counted(int(chosen["n_seeds"].max()), "seed")

    def mean_pm(column: str, ci: str) -> list[str]:
        return [signed_pm(m, h) for m, h in zip(chosen[column], chosen[ci])]

    def yes_no(column: str) -> list[str]:
        return ["" if pd.isna(v) else ("yes" if v else "no") for v in chosen[column]]

    scan_table = scan.pivot(index="method", columns="lr", values="cell")
    scan_table.columns = [f"η = {lr:g}" for lr in scan_table.columns]
    show(f"The scan: mean validation accuracy v̄ (%) over {n_seeds}, and the η* it chooses")
    display(scan_table.join(pd.DataFrame({  # noqa: F821 (IPython builtin); a method without η* gets blanks
        "η*": [f"{lr:g}" for lr in chosen["lr"]], "η*/η*(LS)": [f"{r:g}×" for r in chosen["lr_vs_ls"]],
        "at an end": yes_no("at_edge")}, index=chosen.index)).fillna(""))
    show(f"Adam against tuned SGD: test Δm% (mean ± 95% CI over {n_seeds}) and their paired difference")
    display(pd.DataFrame({"Δm% tuned SGD": mean_pm("sgd_delta_m", "sgd_delta_m_ci"),  # noqa: F821
                          "Δm% Adam": mean_pm("adam_delta_m", "adam_delta_m_ci"),
                          "Adam − tuned SGD": mean_pm("difference", "ci95"),
                          "resolved": yes_no("resolved")}, index=chosen.index))
    show(f"Cost of LS's learning rate: c over {n_seeds} (Δm% points; > 0: worse at η*(LS))")
    display(pd.DataFrame({"η*/η*(LS)": [f"{r:g}×" for r in chosen["lr_vs_ls"]],  # noqa: F821
                          "c ± 95% CI": mean_pm("shared_lr_cost", "shared_lr_cost_ci"),
                          "resolved": yes_no("shared_lr_cost_resolved")}, index=chosen.index))
else:
    print("not measured in this build")

# %%
if control:
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.5))
    for method, part in control.scan.groupby("method", sort=False):
        part = part.sort_values("lr")
        left.plot(part["lr"], 100 * part["val_score"], "o-", label=method, lw=2 if method == "ls" else 1)
    left.set_xscale("log", base=2)
    left.set(xlabel="SGD learning rate η (log₂ scale)",
             ylabel="validation accuracy v̄, mean of 2 tasks (%)", title="the scan (mean over seeds)")
    left.legend(fontsize=8, ncol=2)
    paired_difference_forest(right, control.chosen, "method", title="Adam vs SGD at each method's η*",
                             xlabel="Δm%(Adam) − Δm%(tuned SGD) (points; < 0: Adam helps)")
    fig.suptitle(f"Multi-Fashion, plain SGD with a learning rate tuned per method (profile {profile})")
    fig.tight_layout()
    plt.show()

# %%
if control and len(control.chosen):
    chosen = control.chosen
    glue("sgd_control_adam", control.adam_verdict_text(), display=False)
    glue("sgd_control_lrs", "; ".join(f"{m} {lr:g} ({r:g}× LS{', end of the scan' if edge else ''})"
                                      for m, lr, r, edge in chosen[["method", "lr", "lr_vs_ls", "at_edge"]]
                                      .itertuples(index=False)), display=False)
    glue("sgd_control_shared_cost", control.shared_lr_cost_text(), display=False)
    glue("sgd_control_rho", control.rank_correlation_text(), display=False)
else:
    # the reason once, in the first sentence that uses these values
    glue("sgd_control_lrs", f"not measured in this build ({control_coverage})", display=False)
    for key in ("sgd_control_adam", "sgd_control_rho", "sgd_control_shared_cost"):
        glue(key, "not measured in this build", display=False)

# %% [markdown]
# Chosen learning rates: {glue:text}`sgd_control_lrs`. Trained at LS's learning rate instead of their own,
# {glue:text}`sgd_control_shared_cost`: that is the step-scale confound (weights' scale and clipping together)
# a single shared learning rate would have added to the comparison. Against the tuned-SGD arms,
# {glue:text}`sgd_control_adam`. Spearman's rank correlation between the methods' mean Δm% under tuned SGD and
# under Adam: {glue:text}`sgd_control_rho` (1: Adam keeps the methods' order; 0 or below: it reshuffles it).

# %% [markdown]
# ## What this chapter shows
#
# Benchmarks tabulated in this build: {glue:text}`multi_benchmarks_shown`. Counting, over those with at least two
# seeds ({glue:text}`multi_benchmarks_counted`; with one seed a difference has no interval) and all
# {glue:text}`multi_n_methods` methods,
# the paired APT − base differences in Δm%:
#
# - APT on Adam: {glue:text}`multi_apt_adam`;
# - APT on Muon: {glue:text}`multi_apt_muon`.
#
# "Unresolved" means that the interval over the stored seeds contains 0: the seeds run here cannot tell the two
# arms apart; it is not evidence that they are equal. The grid's seed count and the size of the effects it can
# resolve are discussed in the summary chapter. The SGD control above separates the optimizer's effect from the
# step-scale confound on Multi-Fashion only; on the other two benchmarks it is not run. Failed per-step solves
# (CAGrad, Nash-MTL, FairGrad) are listed above; an arm whose share is large is partly its fallback's.
