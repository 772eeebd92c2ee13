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
# (chapter-other-benchmarks)=
# # CelebA, NYUv2, Cityscapes
#
# The APT paper {cite}`zhou2026apt` reports its gains on four benchmarks of the Nash-MTL → FAMO → FairGrad
# lineage {cite}`navon2022nashmtl,liu2023famo,ban2024fairgrad`: QM9 (chapter on QM9), and the three of this
# chapter — CelebA's 40 face attributes {cite}`liu2015celeba`, and the scene-understanding benchmarks NYUv2 and
# Cityscapes with the MTAN network {cite}`liu2019mtan`. All three are implemented in `apt.benchmarks` with the
# lineage protocol, but **their data is not on the machine that builds this book**, so this build trains none
# of them. What the chapter gives instead, for each benchmark, is everything a reader with a GPU needs:
#
# 1. the protocol, rendered from the benchmark class (the `full` profile is the published protocol; `cpu` and
#    `smoke` are named overrides of it);
# 2. where the data must be and in which layout, and what is missing here (computed by the loaders themselves);
# 3. the exact commands that train every method under Adam, APT-Adam, Muon and APT-Muon, plus the single-task
#    baselines;
# 4. the published reference rows (module `apt.published`), with Δm% and mean rank (MR);
# 5. a results section that renders from the results store as soon as such runs exist — on this build it says
#    that they do not, and why.
#
# Δm% (lower is better) and MR are defined in `apt.metrics` exactly as in the lineage (BENCHMARKS.md §2): Δm% is
# the mean over all $M$ metrics of the signed relative change against single-task (STL) baselines,
#
# $$
# \Delta m\% = \frac{100}{M}\sum_{m=1}^{M} (-1)^{s_m}\,\frac{x_m - b_m}{b_m}, \qquad s_m = 1 \text{ if metric } m
# \text{ is higher-better},
# $$
#
# and MR is a method's dense rank averaged over the metrics. A published Δm% uses the published STL vector
# $b$ (the `full` protocol); a Δm% of another profile uses STL runs of that profile, so the two are different
# quantities and are never compared as if they were one.

# %% tags=["parameters"]
profile = "cpu"
device = "cpu"
seed = 0
data_dir = None
results_dir = None

# %% tags=["hide-input"]
import shlex
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display
from myst_nb import glue

from apt.analysis import MissingBaselineError, format_results, results_table, runs_frame
from apt.benchmarks import benchmark_class, get_benchmark
from apt.benchmarks.base import PROFILES
from apt.data_dir import DataMissingError
from apt.data_dir import data_dir as resolve_data_dir
from apt.experiment import default_results_dir
from apt.mtl import METHODS
from apt.published import best_published, method_key, published_baseline, published_table
from apt.page import command_lines, show, wrapped
from apt.store import load_records
from apt.sweep import grid

CHAPTER_BENCHMARKS = ("celeba", "nyuv2", "cityscapes")
OPTIMIZERS = ("adam", "apt_adam", "muon", "apt_muon")
DATA_ROOT = resolve_data_dir(data_dir)
# The store of this build's profile, and the `full` store, where a GPU reader's runs of these benchmarks land.
STORES = {profile: Path(results_dir) if results_dir else default_results_dir(profile)}
STORES.setdefault("full", default_results_dir("full"))

pd.set_option("display.max_colwidth", None)


def protocol_table(name: str) -> pd.DataFrame:
    """The benchmark's protocol under each profile (the published one is `full`), from the class itself."""
    cls = benchmark_class(name)
    rows = {}
    for prof in PROFILES:
        p = cls.protocol.with_overrides(cls.profiles[prof])
        rows[prof] = {
            "epochs": p.epochs, "batch": p.batch_size, "lr": p.lr, "optimizer (protocol)": p.optimizer,
            "schedule": p.scheduler + (" (" + ", ".join(f"{k} {v}" for k, v in p.scheduler_kwargs.items()) + ")"
                                       if p.scheduler != "none" else ""),
            "reported epochs": f"{p.selection} (k={p.selection_k})" if p.selection == "last_k" else p.selection,
            "n_train": p.n_train or "all", "n_val": p.n_val or ("all" if p.selection != "last_k" else "—"),
            "n_test": p.n_test or "all", "seeds": ",".join(map(str, p.seeds)),
        }  # fmt: skip
    return pd.DataFrame(rows).T.rename_axis("profile")


def profile_notes(name: str) -> pd.DataFrame:
    notes = benchmark_class(name).profile_notes
    return pd.DataFrame({"why these sizes": [notes.get(p, "") for p in PROFILES]}, index=pd.Index(PROFILES, name="profile"))


def missing_data(name: str, prof: str = "full") -> str | None:
    """None if the loader finds every file ``prof`` needs under the data dir, else the loader's own error text."""
    bench = get_benchmark(name, data_dir)
    try:
        bench.splits(bench.protocol_for(prof), seed)
    except DataMissingError as error:
        return str(error)
    return None


def print_command(name: str) -> None:
    """Print the GPU sweep command of ``name`` folded with shell line continuations (``apt.page.command_lines``)."""
    print(command_lines(sweep_command(name)[0]))


def sweep_command(name: str) -> tuple[str, int, int]:
    """The GPU command for every method × the four optimizer settings × the protocol's seeds, with the STL
    runs the sweep adds (one per task and seed, LS + Adam); and how many MTL and STL runs it makes."""
    seeds = benchmark_class(name).protocol.seeds
    configs = grid(name, METHODS, OPTIMIZERS, seeds, profile="full", device="cuda")  # validates every config
    n_stl = sum(c.stl_task is not None for c in configs)
    command = ["python", "-m", "apt", "sweep", "--benchmark", name, "--methods", ",".join(METHODS),
               "--optimizers", ",".join(OPTIMIZERS), "--seeds", ",".join(map(str, seeds)),
               "--profile", "full", "--device", "cuda"]
    return shlex.join(command), len(configs) - n_stl, n_stl


def published_rows(name: str) -> pd.DataFrame:
    """The published table (code units) with our method key and Δm% recomputed from the printed metrics."""
    from apt.metrics import delta_m

    table = published_table(name, include_secondary=True)
    cls = benchmark_class(name)
    base = published_baseline(name).tolist()
    metrics = table[list(cls.metric_names)]
    recomputed = [
        delta_m(row.tolist(), base, cls.metric_higher_better) if row.notna().all() else float("nan")
        for _, row in metrics.iterrows()
    ]
    shown = table.copy()
    shown.insert(len(cls.metric_names), "delta_m recomputed", recomputed)
    shown.insert(0, "apt.mtl", [method_key(m) or "—" for m in table.index])
    shown.insert(1, "source", ["primary" if s == table.attrs["source"] else "secondary"
                               for s in table.attrs["row_sources"].values()])
    return shown


def render_results(name: str) -> int:
    """Render every store's runs of ``name`` with ``apt.analysis.results_table``; returns how many MTL runs
    were found. With none, say so and why (the loader's message about the missing data)."""
    found = 0
    for prof, store in STORES.items():
        records = load_records(store, name) if store.is_dir() else []
        mtl = [r for r in records if r["config"].get("stl_task") is None]
        if not mtl:
            continue
        found += len(mtl)
        try:
            runs = runs_frame(records, name)
        except MissingBaselineError as error:
            show(f"profile {prof}: {error}; Δm% is not computed (run the sweep without --no-stl).")
            runs = runs_frame(records, name, with_delta_m=False)
        table = results_table(runs, name)
        show(f"profile {prof} ({store}): {len(mtl)} runs; mean ± 95% CI over seeds; "
             f"Δm% against {table.attrs['delta_m_baseline']}; MR over all rows of the table")
        display(format_results(table))
    if not found:
        why = missing_data(name, "full")
        stores = ", ".join(str(s) for s in STORES.values())
        print(wrapped(f"This build did not run {name}: no record of it in {stores}."))
        print(wrapped("Why: " + (why if why else "the data is present, but nobody has run the sweep yet.")))
    return found


# %% [markdown]
# All three benchmarks share the grid of this chapter: every method of `apt.mtl` under the four optimizer
# settings, each with the seeds of the protocol. The sweep also trains the single-task baselines (LS with Adam,
# one model per task and seed) that the `full` Δm% of our own runs is computed against; `--no-stl` drops them
# and leaves only the published baselines for comparison. The learning rate is the protocol's for every
# optimizer (the lineage tuned it for Adam only; Muon's is not tuned here either).

# %% tags=["hide-input"]
grid_sizes = {}
for name in CHAPTER_BENCHMARKS:
    command, n_mtl, n_stl = sweep_command(name)
    grid_sizes[name] = (n_mtl, n_stl)
    glue(f"{name}_n_mtl_runs", n_mtl, display=False)
    glue(f"{name}_n_stl_runs", n_stl, display=False)
glue("n_methods", len(METHODS), display=False)
glue("n_optimizers", len(OPTIMIZERS), display=False)
best = best_published()
for name in CHAPTER_BENCHMARKS:
    glue(f"{name}_best_delta_m", float(best.loc[name, "delta_m"]), display=False)
    glue(f"{name}_best_method", best.loc[name, "method"], display=False)
    glue(f"{name}_primary_best_delta_m", float(best.loc[name, "primary_delta_m"]), display=False)
    glue(f"{name}_primary_best_method", best.loc[name, "primary_method"], display=False)
pd.DataFrame(grid_sizes, index=["MTL runs", "STL runs"]).T.rename_axis("benchmark")

# %% [markdown]
# Published Δm% of every method of the three tables (the `full` protocol, as printed by the papers; lower is
# better, negative = better than the single-task baselines):

# %% tags=["hide-input"]
fig, axes = plt.subplots(3, 1, figsize=(8, 12))
for ax, name in zip(axes, CHAPTER_BENCHMARKS):
    table = published_table(name, include_secondary=True)["delta_m"].dropna().sort_values()
    secondary = [published_table(name).index.get_indexer([m])[0] < 0 for m in table.index]
    ax.barh(table.index, table.to_numpy(), color=["tab:gray" if s else "tab:blue" for s in secondary])
    ax.axvline(0, color="black", linewidth=0.8)
    ax.invert_yaxis()
    ax.set(title=name, xlabel="published Δm% (percent, lower is better)", ylabel="method (as printed)")
fig.suptitle("Published Δm%, profile full (the published protocol)\nFAMO / Nash-MTL papers (blue), later papers quoting them (grey)")
fig.tight_layout()
glue("fig_published_delta_m", fig, display=False)
plt.close(fig)

# %% [markdown]
# ```{glue:figure} fig_published_delta_m
# :name: fig-published-delta-m
#
# Published Δm% per method (the published protocol, means over the papers' seeds, as printed by the FAMO and
# Nash-MTL papers; grey bars are rows quoted by later papers). Not measured in this build. The best published
# values are {glue:text}`celeba_best_delta_m:.2f` (CelebA, {glue:text}`celeba_best_method`),
# {glue:text}`nyuv2_best_delta_m:.2f` (NYUv2, {glue:text}`nyuv2_best_method`) and
# {glue:text}`cityscapes_best_delta_m:.2f` (Cityscapes, {glue:text}`cityscapes_best_method`).
# ```

# %% [markdown]
# ## CelebA
#
# Forty binary attributes of aligned face crops {cite}`liu2015celeba`, resized to 64×64; a 9-layer CNN with one
# sigmoid head per attribute, binary cross-entropy per attribute, test F1 at threshold 0.5 per attribute,
# reported at the epoch of best mean validation F1. $K = M = 40$: each task has one metric, so Δm% weighs every
# attribute equally.
#
# ### Protocol

# %%
protocol_table("celeba")

# %%
profile_notes("celeba")

# %% [markdown]
# ### Data
#
# The loader (`apt.benchmarks.celeba`) reads the official annotation files and the aligned JPEGs under
# `$APT_DATA_DIR/celeba/`:

# %%
from apt.benchmarks import celeba as celeba_module

celeba_folder = DATA_ROOT / "celeba"
layout = pd.DataFrame({
    "file": [celeba_module.ATTRIBUTES_FILE, celeba_module.PARTITION_FILE, f"{celeba_module.IMAGE_FOLDER}/<name>.jpg"],
    "content": ["line 1 image count, line 2 the 40 attribute names, then <name>.jpg and 40 values in {-1, 1}",
                "<name>.jpg and the split: 0 train, 1 val, 2 test",
                "178×218 aligned crops (202,599 JPEGs)"],
    "present here": [(celeba_folder / celeba_module.ATTRIBUTES_FILE).is_file(),
                     (celeba_folder / celeba_module.PARTITION_FILE).is_file(),
                     (celeba_folder / celeba_module.IMAGE_FOLDER).is_dir()],
})  # fmt: skip
layout

# %%
try:
    annotations = get_benchmark("celeba", data_dir).annotations()
    split_sizes = {split: len(annotations.split_indices(split)) for split in ("train", "val", "test")}
    print(wrapped(f"annotations read and cross-checked: {len(annotations.image_names):,} images, "
                  f"splits {split_sizes}"))
except DataMissingError as error:
    print(wrapped(f"annotations missing: {error}"))
celeba_missing = missing_data("celeba")
print(wrapped("full profile: " + ("all data present" if celeba_missing is None else celeba_missing)))

# %% [markdown]
# ### Commands for a GPU
#
# {glue:text}`n_methods` methods × {glue:text}`n_optimizers` optimizer settings × the protocol's seeds make
# {glue:text}`celeba_n_mtl_runs` runs, and the sweep adds {glue:text}`celeba_n_stl_runs` single-task runs (one per
# attribute and seed). Runs whose record exists are skipped, so the command can be stopped and restarted, or
# split across machines writing into one results folder.

# %%
print_command("celeba")

# %% [markdown]
# ### Published reference rows
#
# FAMO's Table 3 prints only Δm% and MR for CelebA {cite}`liu2023famo`; its per-attribute F1 values are not
# published, so the 40 metric columns are empty and Δm% cannot be recomputed. The best published Δm% is
# {glue:text}`celeba_primary_best_delta_m:.2f` ({glue:text}`celeba_primary_best_method`).

# %%
celeba_published = published_rows("celeba")
print(wrapped(celeba_published.attrs["source"]))
print(wrapped(celeba_published.attrs["note"]))
celeba_published[["apt.mtl", "source", "delta_m", "mean_rank"]]

# %% [markdown]
# ### Results

# %%
celeba_runs = render_results("celeba")

# %% [markdown]
# ## NYUv2
#
# 795 training and 654 test indoor scenes at 288×384 (the MTAN pre-processed release {cite}`liu2019mtan`), three
# tasks: 13-class segmentation (mIoU, pixel accuracy), depth (absolute and relative error) and surface normals
# (mean and median angle error, fraction of pixels within 11.25°, 22.5°, 30°): $K = 3$, $M = 9$. MTAN with its
# task-attention modules, the test metrics averaged over the last 10 epochs.
#
# ### Protocol

# %%
protocol_table("nyuv2")

# %%
profile_notes("nyuv2")

# %% [markdown]
# ### Data
#
# The loader (`apt.benchmarks.scene`) reads the MTAN `.npy` layout: one file per image and task, numbered from 0,
# under `$APT_DATA_DIR/nyuv2/{train,val}/` (the lineage tests on `val`):

# %%
def scene_layout(name: str) -> pd.DataFrame:
    layout = get_benchmark(name, data_dir).layout
    root = DATA_ROOT / layout.folder
    return pd.DataFrame(
        [{"folder": f"{layout.folder}/{split}/{task}/", "files": "0.npy … (n−1).npy",
          "present here": (root / split / task).is_dir()}
         for split in ("train", "val") for task in layout.task_folders]
    )  # fmt: skip


scene_layout("nyuv2")

# %%
nyuv2_missing = missing_data("nyuv2")
print(wrapped("full profile: " + ("all data present" if nyuv2_missing is None else nyuv2_missing)))

# %% [markdown]
# ### Commands for a GPU
#
# {glue:text}`nyuv2_n_mtl_runs` MTL runs and {glue:text}`nyuv2_n_stl_runs` single-task runs (one MTAN per task and
# seed; the lineage's STL baseline uses task-specific SegNets, a documented difference):

# %%
print_command("nyuv2")

# %% [markdown]
# ### Published reference rows
#
# FAMO's Table 1 {cite}`liu2023famo` (the metric values are those of Nash-MTL's Table 2
# {cite}`navon2022nashmtl`), in code units (percent columns ÷ 100), with Δm% recomputed from the printed metrics
# by `apt.metrics.delta_m` beside the printed one. The printed Δm% is a mean of per-seed values, hence the
# small gaps; MR is over the 12 methods of that table. The best Δm% of a primary table is
# {glue:text}`nyuv2_primary_best_delta_m:.2f` ({glue:text}`nyuv2_primary_best_method`).

# %%
nyuv2_published = published_rows("nyuv2")
print(wrapped(nyuv2_published.attrs["note"]))
nyuv2_published.round(4)

# %% [markdown]
# ### Results

# %%
nyuv2_runs = render_results("nyuv2")

# %% [markdown]
# ## Cityscapes
#
# 2,975 training and 500 test street scenes at 128×256 (MTAN's pre-processed release), two tasks: 7-class
# segmentation (mIoU, pixel accuracy) and inverse depth (absolute and relative error): $K = 2$, $M = 4$. Same
# network and reporting rule as NYUv2, batch 8.
#
# ### Protocol

# %%
protocol_table("cityscapes")

# %%
profile_notes("cityscapes")

# %% [markdown]
# ### Data

# %%
scene_layout("cityscapes")

# %%
cityscapes_missing = missing_data("cityscapes")
print(wrapped("full profile: " + ("all data present" if cityscapes_missing is None else cityscapes_missing)))

# %% [markdown]
# ### Commands for a GPU
#
# {glue:text}`cityscapes_n_mtl_runs` MTL runs and {glue:text}`cityscapes_n_stl_runs` single-task runs:

# %%
print_command("cityscapes")

# %% [markdown]
# ### Published reference rows
#
# Nash-MTL's Table 3 {cite}`navon2022nashmtl` for LS … Nash-MTL and FAMO's Table 3 {cite}`liu2023famo` for the
# FAMO row and the MR column (FAMO's table prints a copy of its SI row as LS; the LS row here is Nash-MTL's).
# RelErr is the lineage's relative inverse-depth error, a ratio, not a percentage. The best Δm% of a primary
# table is {glue:text}`cityscapes_primary_best_delta_m:.2f` ({glue:text}`cityscapes_primary_best_method`).

# %%
cityscapes_published = published_rows("cityscapes")
print(wrapped(cityscapes_published.attrs["note"]))
cityscapes_published.round(4)

# %% [markdown]
# ### Results

# %%
cityscapes_runs = render_results("cityscapes")

# %% [markdown]
# ## What this build shows, and what it does not
#
# The results sections above are computed, not written: they list the runs of each benchmark found in the
# results stores of this build and, when there are none, the loader's own account of the missing files. A
# reader who puts the data in place and runs the commands gets the tables rendered here by the same code
# (`apt.analysis.results_table`), with 95% confidence intervals over seeds and Δm% against the single-task runs
# of the same profile — next to the published rows, which remain a different quantity (other STL baselines, and
# per-seed averaging of Δm%). The APT paper itself reports for these benchmarks only headline numbers quoted by
# a third party (`apt.published.APT_REPORTED`), not tables that could be set beside these rows.
