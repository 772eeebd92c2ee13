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
# (chapter-intro)=
# # Do advanced optimizers help or hurt multi-task learning — and does APT fix it?
#
# Optimization-based multi-task learning (MTL) methods take the K task losses of a model, or their
# gradients, and turn them into one update: MGDA {cite}`sener2018mgda` finds the minimum-norm point of the
# gradients' convex hull, PCGrad {cite}`yu2020pcgrad` projects away conflicts, CAGrad {cite}`liu2021cagrad`
# maximizes the worst task's improvement near the average gradient, Nash-MTL {cite}`navon2022nashmtl`
# bargains, FAMO {cite}`liu2023famo` balances loss decrease rates, FairGrad {cite}`ban2024fairgrad` allocates
# "fair" progress. Nearly all of them were published with Adam {cite}`kingma2015adam` as the optimizer.
#
# The APT paper {cite}`zhou2026apt` makes three claims that this book tests with measurements (quoted from its
# abstract; the rest of each item is our reading, marked as such):
#
# 1. Under advanced optimizers, "the instant-derived gradients play only a marginal role in the actual parameter
#    updates", which undermines the methods' effort to "de-conflict and re-balance tasks". Our reading: the
#    optimizer's momentum (and, for Adam, its second-moment scaling) dominates the step, so the direction the MTL
#    method builds at step $t$ is diluted.
# 2. "Muon {cite}`jordan2024muon` … inherently functions as a multi-task learner, which underscores the critical
#    importance of the gradients used for its orthogonalization." Our reading: orthogonalization already balances
#    directions, so *which* gradient is orthogonalized matters.
# 3. APT, "a simple adaptive momentum mechanism designed to balance the strengths between advanced optimizers and
#    MTL" with "a light direction preservation method to facilitate Muon's orthogonalization", "consistently
#    augments existing MTL approaches" across "four mainstream MTL datasets". Only third-party summaries, not the
#    paper's text available to us, add that the adaptive momentum is driven by a cosine similarity with
#    hyperparameters β_min and β_max, and quote results on Cityscapes, NYUv2, CelebA and QM9. What that cosine
#    compares (here: the instant gradient and the momentum) and every other APT rule in this book are our
#    assumptions ({ref}`chapter-apt`).

# %% tags=["parameters"]
profile = "cpu"
device = "cpu"
seed = 0
data_dir = None
results_dir = None

# %% tags=["hide-input"]
from myst_nb import glue

from apt.ablations import finding_texts, stored_ablations
from apt.experiment import record_path
from apt.grids import book_grids, claim1_configs, claim2_configs, claim2_seeds, load_grid
from apt.page import wrapped
from apt.results import (apt_counts, apt_table, benchmarks_text, counted_benchmarks, diagnostic_medians,
                         diagnostic_medians_per_seed, effect_counts_text, lowest_to_highest, optimizer_table,
                         stored_results, vs_ls_counts, with_intervals)
from apt.step_scale import stored_step_scale_control
from apt.store import read_record

# This page only reads the results store; the chapters train. (`make book` executes it after them.)
claim1 = claim1_configs(profile, seed, device=device, data_dir=data_dir)
have_claim1 = all(record_path(c, results_dir).exists() for c in claim1.values())
if have_claim1:
    medians = diagnostic_medians({k: read_record(record_path(c, results_dir)) for k, c in claim1.items()})
    for optimizer in ("sgdm", "adam", "muon", "apt_adam"):
        for quantity in ("share", "fidelity"):
            glue(f"intro_{optimizer}_{quantity}", f"{medians.loc[optimizer, (quantity, 'mgda')]:.2f}", display=False)
    # cos² of the step with the direction = the fraction of the step's squared length along that direction
    along = {o: medians.loc[o, ("fidelity", "mgda")] ** 2 for o in ("adam", "muon")}
    glue("intro_claim1_reading",
         f"{100 * along['adam']:.0f}% (Adam) and {100 * along['muon']:.0f}% (Muon) of the step's squared length lies "
         "along MGDA's direction for the current batch"
         + (": that direction is a minority of the step" if max(along.values()) < 0.5 else ""), display=False)
else:
    for optimizer in ("sgdm", "adam", "muon", "apt_adam"):
        for quantity in ("share", "fidelity"):
            glue(f"intro_{optimizer}_{quantity}", "(not measured in this build)", display=False)
    glue("intro_claim1_reading", "how much of the step lies along MGDA's direction is not measured in this build",
         display=False)

across = claim2_configs(profile, seed, device=device, data_dir=data_dir)  # claim 1 across methods (chapter 3)
if all(record_path(c, results_dir).exists() for c in across.values()):
    per_run = diagnostic_medians_per_seed({k: read_record(record_path(c, results_dir)) for k, c in across.items()})
    fidelity = per_run.groupby(["optimizer", "method"], sort=False)["fidelity"].mean()
    glue("intro_across_methods",
         f"ranges over LS and four gradient-based methods (seeds {' and '.join(map(str, claim2_seeds(seed)))}) "
         f"from {lowest_to_highest(fidelity.loc['adam'])} under Adam and from "
         f"{lowest_to_highest(fidelity.loc['muon'])} under Muon", display=False)
else:
    glue("intro_across_methods", "is not measured across methods in this build", display=False)

results = stored_results(profile, results_dir=results_dir, data_dir=data_dir)
by_optimizer = optimizer_table(results)
by_apt = apt_table(results)
coverage = {name: load_grid(g, profile, results_dir=results_dir, data_dir=data_dir)
            for name, g in book_grids(profile).items()}


def sentence_vs_ls(optimizer: str) -> str:
    """'b of n methods beat LS, w do worse (resolved), over benchmarks ...' for one optimizer setting."""
    counts = vs_ls_counts(by_optimizer, optimizer)
    if counts is None:
        return "not measured in this build"
    b, w, n = counts["better"], counts["worse"], counts["methods"]
    return (f"{b} of {n} method × benchmark pairs beat LS and {w} do worse (resolved paired differences; "
            f"the rest unresolved)")


def sentence_apt(apt: str) -> str:
    """'b better, w worse and u unresolved of n ...; mean difference d' for one APT variant."""
    counts = apt_counts(by_apt, apt)
    if counts is None:
        return "not measured in this build"
    mean = with_intervals(by_apt).xs(apt, level="apt")["mean difference"].mean()
    return (f"{effect_counts_text(counts, 'method × benchmark pairs')} "
            f"(mean paired change {mean:+.2f} Δm% points)")


for optimizer in ("adam", "apt_adam", "muon", "apt_muon"):
    glue(f"intro_vs_ls_{optimizer}", sentence_vs_ls(optimizer), display=False)
for apt in ("apt_adam", "apt_muon"):
    glue(f"intro_{apt}", sentence_apt(apt), display=False)
glue("intro_benchmarks", benchmarks_text(results), display=False)
glue("intro_counted", counted_benchmarks(by_apt), display=False)
glue("intro_profile", profile, display=False)
control, control_coverage = stored_step_scale_control(profile, results_dir=results_dir, data_dir=data_dir)
ablations = stored_ablations(profile, results_dir=results_dir, data_dir=data_dir).ablations
for family, text in finding_texts(ablations).items():
    glue(f"intro_ablation_{family}", text, display=False)
glue("intro_adam_vs_sgd", (f"{control.adam_verdict_text()}; Spearman's ρ between the methods' Δm% under the two "
                           f"is {control.rank_correlation_text()}") if control is not None and len(control.chosen)
     else f"not measured in this build ({control_coverage})", display=False)
# NBVAL_IGNORE_OUTPUT
# (depends on the store)
print(wrapped("\n".join(loaded.coverage for loaded in coverage.values())))

# %% [markdown]
# ## The answer so far, in numbers
#
# Computed from this build's results store (profile {glue:text}`intro_profile`) when the page was executed;
# every number links to the chapter that measures it.
#
# - **Claim 1** ({ref}`chapter-instant-gradient`): with MGDA on Multi-MNIST, the current step's gradient term
#   $(1-\beta)g_t$ has a median norm of {glue:text}`intro_adam_share` times that of Adam's first moment
#   ({glue:text}`intro_muon_share` for Muon's momentum, {glue:text}`intro_sgdm_share` under SGD with momentum; the
#   chapter gives the values that identical or independent successive gradients would produce). The step taken
#   keeps a median cosine of {glue:text}`intro_adam_fidelity` (Adam) and {glue:text}`intro_muon_fidelity` (Muon)
#   with MGDA's direction, so {glue:text}`intro_claim1_reading`. APT-Adam's assumed rule raises the norm ratio to
#   {glue:text}`intro_apt_adam_share` and the cosine to {glue:text}`intro_apt_adam_fidelity`. The same cosine
#   {glue:text}`intro_across_methods`.
# - **Does Adam hurt the methods?** Against each method under plain SGD with its own tuned learning rate (on
#   Multi-Fashion; a shared learning rate would confound step size with direction), {glue:text}`intro_adam_vs_sgd`
#   ({ref}`chapter-multi`).
# - **Do MTL methods still beat summing the losses (LS)?** The benchmarks with complete seeds in this build are
#   {glue:text}`intro_benchmarks`; counting those with at least two seeds (with one seed a difference has no
#   interval), {glue:text}`intro_counted`: under Adam {glue:text}`intro_vs_ls_adam`; under Muon
#   {glue:text}`intro_vs_ls_muon`; under APT-Adam {glue:text}`intro_vs_ls_apt_adam`; under APT-Muon
#   {glue:text}`intro_vs_ls_apt_muon` ({ref}`chapter-multi`, {ref}`chapter-summary`).
# - **Does APT help?** On the same benchmarks, APT-Adam against Adam: {glue:text}`intro_apt_adam`. APT-Muon against Muon:
#   {glue:text}`intro_apt_muon`. Against the base optimizer at a fixed β equal to APT's mean β (MGDA on
#   Multi-Fashion, {ref}`chapter-apt`, which also changes each of our assumed rules in turn):
#   {glue:text}`intro_ablation_apt_adam`. {glue:text}`intro_ablation_apt_muon`.
#
# Δm% is the mean relative change of the task metrics against single-task networks, signed so that lower is
# better; a positive paired change (APT − base, or method − LS) means the first arm is worse. A difference is
# called resolved only when its 95% interval over seeds, paired by seed, excludes zero; "unresolved" is not "no
# effect", and about 1 in 20 comparisons of arms that do not differ is resolved by chance. The summary chapter
# states what the seed counts can resolve and how many resolved differences chance alone would give.
#
# ## What the `cpu` build can and cannot show
#
# The `cpu` profile runs the real benchmarks' data, models, losses and metrics with fewer samples and epochs
# (each chapter shows its sizes), so that the whole book rebuilds on a laptop; the `full` profile is the published
# protocol, for a GPU. Relative comparisons at the `cpu` size (method against method, APT against its base,
# paired by seed) are what this build measures; absolute numbers are not comparable with the papers' tables,
# and CelebA, NYUv2 and Cityscapes (whose images are not on the build machine) are described with their exact
# GPU commands but not run.
#
# ## What is measured here, and what is an assumption
#
# The paper's equations are not available to us. Every APT rule in the `apt` package is therefore an
# *assumption*: a small, named, swappable rule with an entry in the assumptions register, compared against its
# alternatives ({ref}`chapter-apt`). None of them is presented as the paper's formula, and where our
# measurements disagree with the paper, the book says so.
#
# ## How to read and rerun this book
#
# Every figure and table is computed by the `apt` package, by a notebook you can re-execute, from real
# benchmark data, except where a chapter says otherwise (the two-objective toy is synthetic, and the timing
# benchmarks use random inputs of the real shapes); each says which *profile* produced it. From a clone of the
# repository, `make book` rebuilds this book and `make test` runs the test suite; `make results` recomputes
# every stored run that is missing (`python -m apt grid --profile cpu`); the README gives the exact commands to
# rerun any chapter on a GPU.
#
# ```{tableofcontents}
# ```
#
# ## References
#
# ```{bibliography}
# ```
