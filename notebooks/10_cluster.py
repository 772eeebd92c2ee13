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
# (chapter-cluster)=
# # Running the grid on a cluster
#
# The full protocol is every MTL method under Adam, APT-Adam, Muon and APT-Muon, with several seeds (the table of
# runs below gives them per benchmark), on every benchmark, plus the single-task baselines: hundreds of GPU runs.
# `python -m apt sweep` runs such a grid one run after another by default; with `--backend ray` it spreads the runs
# over a [Ray](https://docs.ray.io) cluster that you start with Ray's own command line. What that backend does
# (`apt.sweep_ray`):
#
# - each run is one Ray task that reserves what it needs: one GPU when the device is `cuda` (and
#   {glue:text}`cluster_cpus_full` CPUs), {glue:text}`cluster_cpus_cpu` CPUs for a `cpu`-profile run,
#   {glue:text}`cluster_cpus_smoke` for `smoke`; torch uses as many threads as CPUs reserved;
# - every worker writes its record into `--results-dir` and its per-epoch checkpoint into `--runs-dir`, given
#   explicitly: both must be on a filesystem that every node mounts at the same path. Each run writes only
#   its own two files, atomically; there is no shared index that two workers could corrupt;
# - runs that already have a record are skipped before anything is submitted, so the same command, run
#   again after an interruption, does only what is missing;
# - a task whose worker process or node dies is resubmitted by Ray (up to {glue:text}`cluster_max_retries` times)
#   and resumes from its last
#   checkpoint (its record lists the epochs it resumed at, `resumed_at_epochs`). An exception raised by the
#   run itself (missing data, NaN loss) would happen again: it is not retried but reported;
# - a progress bar counts finished runs and shows how many are running, queued and failed; at the end a
#   summary names every failed run and why, and the exit code is non-zero if any failed.
#
# This page shows how to start a cluster, the exact commands for the full grid, and what the grid costs.

# %% tags=["parameters"]
profile = "cpu"
device = "cpu"
seed = 0
data_dir = None
results_dir = None

# %% tags=["hide-input"]
import json
import re

import pandas as pd
from myst_nb import glue

from apt.benchmarks import Protocol, benchmark_class
from apt.data_dir import REPO_ROOT, DataMissingError
from apt.data_dir import data_dir as resolve_data_dir
from apt.grids import (ABLATION_SEEDS, APT_ADAM_VARIANTS, APT_MUON_VARIANTS, ablation_arms, book_configs, book_grids,
                       sgd_control_configs)
from apt.page import command_lines
from apt.sweep_ray import CPUS_PER_RUN, MAX_RETRIES

for name, cpus in CPUS_PER_RUN.items():
    glue(f"cluster_cpus_{name}", cpus, display=False)
glue("cluster_max_retries", MAX_RETRIES, display=False)

# The full profile's grids of apt.grids: every method × Adam, APT-Adam, Muon, APT-Muon × seeds, + STL baselines.
FULL_GRIDS = book_grids("full")
COST_DIR = REPO_ROOT / "results" / "cost"  # speed measurements belong to a machine, not to a profile

# %% [markdown]
# ## Starting a cluster
#
# Every node needs the same checkout of this repository installed the same way (`make setup`, or the conda
# environment on GPU machines), the data under the same `APT_DATA_DIR`, and the shared folder for results and
# checkpoints. The commands on this page run in that environment, activated: `python` and `ray` are its own (in
# the virtual environment `make setup` creates, without activating it, they are `.venv/bin/python` and
# `.venv/bin/ray`; in the conda environment, after `conda activate`, they are on the `PATH`). Ray's workers
# inherit the environment of the `ray start` that launched their node, so set the variables in that shell (the
# two `MALLOC_` settings keep QM9's large per-edge tensors fast, see `TOOLCHAIN.md`).
#
# **Plain machines.** On the head node, then on every other node:
#
# ```bash
# export APT_DATA_DIR=/shared/apt/data MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000
# ray start --head --port=6379 --include-dashboard=false     # on the head node
# ray start --address=HEAD_IP:6379                           # on each other node
# ray status                                                 # every node's CPUs and GPUs
# ```
#
# Ray's servers listen on every network interface and run whatever code a client sends: on a network you
# do not fully trust, enable Ray's token authentication (`export RAY_AUTH_MODE=token RAY_AUTH_TOKEN=...`
# with one secret for all nodes and for the sweep command; see Ray's documentation on token
# authentication). Ray counts each machine's CPUs and GPUs itself (`--num-cpus` / `--num-gpus` override it). Run
# the sweep commands below on the head node with `--address HEAD_IP:6379`; `ray stop` on every node ends the
# cluster. Without `--address`, `--backend ray` connects to `$RAY_ADDRESS` or to a cluster started on the
# same machine, and otherwise starts a Ray instance of its own that ends with the sweep (one machine, all its
# GPUs).
#
# **SLURM.** One allocation, Ray started on each node by `srun`, the sweep run from the batch script (Ray's
# documented pattern for SLURM). Node, GPU and time figures here are an example to adapt:
#
# ```bash
# #!/bin/bash
# #SBATCH --job-name=apt-grid --nodes=4 --ntasks-per-node=1 --gpus-per-task=4 --cpus-per-task=16 --time=48:00:00
# set -euo pipefail
# export APT_DATA_DIR=/shared/apt/data MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000
# nodes=($(scontrol show hostnames "$SLURM_JOB_NODELIST"))
# head_ip=$(srun --nodes=1 --ntasks=1 -w "${nodes[0]}" hostname --ip-address | awk '{print $1}')
# srun --nodes=1 --ntasks=1 -w "${nodes[0]}" ray start --head --block --node-ip-address="$head_ip" \
#      --port=6379 --num-cpus="$SLURM_CPUS_PER_TASK" --num-gpus=4 --include-dashboard=false &
# sleep 30
# for node in "${nodes[@]:1}"; do
#   srun --nodes=1 --ntasks=1 -w "$node" ray start --block --address="$head_ip:6379" \
#        --num-cpus="$SLURM_CPUS_PER_TASK" --num-gpus=4 &
# done
# sleep 30
# export HEAD="$head_ip:6379"
# # ... the sweep commands below ...
# ```
#
# When the job ends, SLURM stops the `ray start --block` steps. If the allocation runs out first, submit
# the same script again: recorded runs are skipped and interrupted ones resume from their checkpoints.

# %% [markdown]
# ## The commands for the full grid
#
# One command per benchmark, for its method × optimizer grid (`apt.grids.book_grids("full")`). Each adds the
# single-task baselines (one run per task and seed, trained with Adam) that Δm needs; `--no-stl` leaves them out.

# %%
SHARED = "--results-dir /shared/apt/results/full --runs-dir /shared/apt/runs/full"


def sweep_command(benchmark: str) -> str:
    g = FULL_GRIDS[benchmark]
    return (f"python -m apt sweep --benchmark {benchmark} --methods {','.join(g.methods)} "
            f"--optimizers {','.join(g.optimizers)} --seeds {','.join(map(str, g.seeds))} --profile full "
            f"--device cuda --backend ray --address $HEAD {SHARED}")


print("\n\n".join(command_lines(sweep_command(benchmark)) for benchmark in FULL_GRIDS))

# %% [markdown]
# Or one command for everything the book's result chapters read at the `full` profile: these grids, plus the
# ablations of APT's assumed rules ({ref}`chapter-apt`) and the SGD step-scale control
# ({ref}`chapter-multi`), each run once even where two of them share a run:

# %%
print(command_lines(f"python -m apt grid --profile full --device cuda --backend ray --address $HEAD {SHARED}"))

# %% [markdown]
# ## What it costs
#
# The number of runs follows from the grid, the number of optimizer steps from each benchmark's `full`
# protocol: epochs × ⌈training examples / batch size⌉. The training-set size is counted from the data where
# it is on this machine (QM9's characterized molecules minus the held-out parts, CelebA's official training
# partition), taken from the benchmark's definition for the synthetic Multi-* pairs, and otherwise from the
# published split size given in the benchmark's documentation.

# %% tags=["hide-input"]
def full_protocol(name: str) -> Protocol:
    """The benchmark's published protocol with its `full` profile's overrides (as the runner builds it)."""
    cls = benchmark_class(name)
    return cls.protocol.with_overrides(cls.profiles["full"])


def full_train_size(name: str) -> tuple[int, str]:
    """Training examples of the `full` profile of benchmark `name`, and where the count comes from."""
    cls = benchmark_class(name)
    folder = resolve_data_dir(data_dir)
    if hasattr(cls, "full_pairs"):
        return cls.full_pairs["train"], "benchmark definition"
    if name == "qm9":
        try:
            return cls(folder).full_split_sizes()[0], "counted from the data"
        except DataMissingError:
            pass
    if name == "celeba":
        try:
            return len(cls(folder).annotations().split_indices("train")), "counted from the data"
        except FileNotFoundError:
            pass
    published = re.search(r"([\d,]+)\s*/", cls.profile_notes["full"])  # "N train / M test" in the notes
    return int(published.group(1).replace(",", "")), "published split size (data not here)"


def full_grid(name: str) -> list:
    """The configs of benchmark ``name``'s `full` grid (method × optimizer × seed, + STL baselines)."""
    return FULL_GRIDS[name].configs("full", device="cuda")


rows = []
for name in FULL_GRIDS:
    protocol = full_protocol(name)
    size, source = full_train_size(name)
    steps_per_epoch = -(-size // protocol.batch_size)
    configs = full_grid(name)
    n_stl = sum(c.stl_task is not None for c in configs)
    rows.append({"benchmark": name, "seeds": len(FULL_GRIDS[name].seeds), "runs": len(configs),
                 "of which STL": n_stl, "epochs": protocol.epochs, "train examples": size,
                 "batch": protocol.batch_size, "steps per run": protocol.epochs * steps_per_epoch, "size from": source})
plan = pd.DataFrame(rows).set_index("benchmark")
display(plan)
glue("cluster_runs_total", int(plan["runs"].sum()), display=False)
glue("cluster_runs_mtl", int((plan["runs"] - plan["of which STL"]).sum()), display=False)
glue("cluster_steps_total", int((plan["runs"] * plan["steps per run"]).sum()), display=False)
glue("cluster_gpu_cpus", CPUS_PER_RUN["full"], display=False)
# What `python -m apt grid --profile full --device cuda` trains (its --dry-run counts the same): the grids, the
# ablation arms and the SGD control, each run once. The fixed-β control arms of the ablations join once APT's
# default arms are in the store (their β is the default arms' mean), so the total can grow by those.
book_total = len(book_configs("full", device="cuda"))
arms = ablation_arms("full", device="cuda")
n_ablation = sum(len(pairs) for pairs in arms.values())
n_control = len(sgd_control_configs("full", device="cuda"))
n_fixed_beta = len(arms) * len(ABLATION_SEEDS["full"])  # one control arm per ablation family, every seed
# the control arms join the rule variants of apt.grids once their β is known
rule_arms = (len(APT_ADAM_VARIANTS) + len(APT_MUON_VARIANTS)) * len(ABLATION_SEEDS["full"])
has_fixed_beta = n_ablation > rule_arms
assert book_total == int(plan["runs"].sum()) + n_ablation + n_control, "grids + ablations + control ≠ apt grid"
glue("cluster_runs_book", book_total, display=False)
glue("cluster_runs_ablation", n_ablation, display=False)
glue("cluster_runs_control", n_control, display=False)
extra_benchmarks = {c.benchmark for c in book_configs("full", device="cuda", grids=False)}
glue("cluster_extra_benchmark", ", ".join(sorted(extra_benchmarks)), display=False)
glue("cluster_fixed_beta_note", "" if has_fixed_beta else
     f" (and {n_fixed_beta} more, the fixed-β control arms, once APT's default ablation arms are stored)",
     display=False)

# %% [markdown]
# The method × optimizer grids (the per-benchmark sweep commands above) are {glue:text}`cluster_runs_total:,` runs
# ({glue:text}`cluster_runs_mtl:,` of them MTL runs, the rest single-task baselines),
# {glue:text}`cluster_steps_total:,` optimizer steps in all. `python -m apt grid --profile full` trains
# {glue:text}`cluster_runs_book:,` runs: these, plus {glue:text}`cluster_runs_ablation` runs of APT's ablations
# and {glue:text}`cluster_runs_control` of the SGD step-scale control, all on
# {glue:text}`cluster_extra_benchmark`{glue:text}`cluster_fixed_beta_note`. The costs below are those of the
# grids; the ablations and the control add runs of that benchmark's small model.
#
# **Time per step.** The step times measured in this project are wall times on a CPU (`benchmarks/bench_mtl.py`
# on the real QM9 and CelebA models, see {ref}`chapter-cost`): forward and the method's backward at a small
# batch, plus `optimizer.step()` from `benchmarks/bench_optim.py`, each on the measured machine with torch using
# the number of threads the table gives. Scaled linearly to the protocol's batch size (on a CPU the cost of
# these models grows about in proportion to the batch) they give the hours below: **machine-hours**, wall-clock
# hours of that whole machine (× its thread count = core-hours), for training steps only (the
# per-epoch evaluation passes come on top). Each STL run is costed as an LS step.

# %% tags=["hide-input"]
def load(name: str) -> dict | None:
    path = COST_DIR / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


optimizer_steps = load("optim")
cost_rows = []
for name in FULL_GRIDS:
    measured = load(f"mtl_{name}")
    if measured is None or optimizer_steps is None or name not in optimizer_steps["median_seconds"]:
        continue
    protocol = full_protocol(name)
    scale = protocol.batch_size / measured["batch_size"]
    steps = plan.loc[name, "steps per run"]
    seconds = 0.0
    for config in full_grid(name):
        method = "ls" if config.stl_task is not None else config.method
        step = measured["median_seconds"][method] * scale + optimizer_steps["median_seconds"][name][config.optimizer]
        seconds += steps * step
    ls_step = measured["median_seconds"]["ls"] * scale + optimizer_steps["median_seconds"][name]["adam"]
    threads = measured.get("threads", measured["environment"]["torch_threads"])
    cost_rows.append({"benchmark": name, "measured at batch": measured["batch_size"],
                      "LS+Adam step at protocol batch (s)": ls_step,
                      "one LS+Adam epoch (minutes)": steps * ls_step / protocol.epochs / 60,
                      "one LS+Adam run (machine-hours)": steps * ls_step / 3600,
                      "grid (machine-hours)": seconds / 3600,
                      "grid (core-hours)": seconds / 3600 * threads,
                      "measured": f"{measured['date'][:10]}, {measured['environment']['cpu_count']} CPUs, "
                                  f"{threads} threads, torch {measured['environment']['torch']}",
                      "threads": threads, "cpus": measured["environment"]["cpu_count"]})
cost = pd.DataFrame(cost_rows).set_index("benchmark")
display(cost.drop(columns=["threads", "cpus"]).round(2))
for name in cost.index:
    glue(f"cluster_machine_hours_{name}", float(cost.loc[name, "grid (machine-hours)"]), display=False)
    glue(f"cluster_machine_years_{name}", float(cost.loc[name, "grid (machine-hours)"]) / (24 * 365),
         display=False)
    glue(f"cluster_core_hours_{name}", float(cost.loc[name, "grid (core-hours)"]), display=False)
    glue(f"cluster_threads_{name}", int(cost.loc[name, "threads"]), display=False)
    glue(f"cluster_cpus_{name}", int(cost.loc[name, "cpus"]), display=False)

# %% [markdown]
# On the measured machine ({glue:text}`cluster_cpus_qm9` CPUs, torch with {glue:text}`cluster_threads_qm9`
# threads) the QM9 grid alone would take {glue:text}`cluster_machine_hours_qm9:,.0f` machine-hours (about
# {glue:text}`cluster_machine_years_qm9:.1f` years on that one machine; {glue:text}`cluster_core_hours_qm9:,.0f`
# core-hours), CelebA's {glue:text}`cluster_machine_hours_celeba:,.0f` machine-hours
# ({glue:text}`cluster_core_hours_celeba:,.0f` core-hours): the full protocol is GPU work. Most of it is the
# gradient-based methods, whose K backward passes per step cost many LS steps ({ref}`chapter-cost`).
#
# **GPU step times were not measured here** (this project's machines have no GPU), so this page gives no
# GPU-hours. Measure them on your GPU with the same speed benchmarks: `benchmarks/bench_mtl.py --device cuda`
# times every method's step on the real model at the protocol's batch size (each step between two
# `torch.cuda.synchronize()` calls), `benchmarks/bench_optim.py --device cuda` the optimizers' steps:

# %%
print("\n".join(command_lines(
    f"python benchmarks/bench_mtl.py --benchmark {name} --batch-size {full_protocol(name).batch_size} --rounds 5"
    f"{' --no-torchjd' if name == 'qm9' else ''} --device cuda --json results/cost/mtl_{name}_cuda.json")
    for name in ("qm9", "celeba")))
print(command_lines("python benchmarks/bench_optim.py --rounds 5 --steps 3 --device cuda "
                    "--json results/cost/optim_cuda.json"))

# %% [markdown]
# (This chapter and {ref}`chapter-cost` read only the CPU files `mtl_<benchmark>.json` and `optim.json`.) Use
# their ratios in place of the CPU ratios in the table below. For absolute time, one epoch of the real
# protocol, which also includes data loading and evaluation:
#
# ```bash
# python -m apt run --benchmark qm9 --method ls --optimizer adam --profile full --device cuda \
#     --override epochs=1 --results-dir /tmp/apt-timing
# ```
#
# and read `wall_seconds` from the record it writes. In units of that LS epoch, the grid costs the table
# below: Σ over runs of epochs × the method's step time relative to LS, with the per-method ratios of
# {ref}`chapter-cost` where a benchmark has them (measured on a CPU: on a GPU the K backward passes of a
# gradient-based method are cheaper relative to LS, so this overestimates them) and 1 elsewhere. GPU-hours
# = LS-epochs × your `wall_seconds` / 3600.

# %%
def ls_epoch_equivalents(name: str) -> float:
    """The full grid of benchmark `name` in units of one LS epoch of its full protocol."""
    measured = load(f"mtl_{name}")
    methods = FULL_GRIDS[name].methods
    median = measured["median_seconds"] if measured else {}
    ratio = {m: median[m] / median["ls"] for m in methods} if measured else {}
    epochs = full_protocol(name).epochs
    configs = full_grid(name)
    return sum(epochs * (1.0 if c.stl_task is not None else ratio.get(c.method, 1.0)) for c in configs)


gpu_plan = pd.DataFrame({"LS epochs": {name: ls_epoch_equivalents(name) for name in FULL_GRIDS},
                         "method ratios": {name: "measured" if load(f"mtl_{name}") else "1 (not measured)"
                                           for name in FULL_GRIDS}})
display(gpu_plan.round(0))
glue("cluster_ls_epochs_qm9", float(gpu_plan.loc["qm9", "LS epochs"]), display=False)

# %% [markdown]
# For QM9, for instance, a GPU that trains one LS epoch of the full protocol in $t$ seconds needs
# {glue:text}`cluster_ls_epochs_qm9:,.0f` $\cdot\, t / 3600$ GPU-hours for the grid. Ray reserves one GPU and
# {glue:text}`cluster_gpu_cpus` CPUs per `full` run, so a node with $G$ GPUs runs $G$ runs at once if it has
# that many CPUs per GPU; the runs are independent, so the wall time falls about in proportion to the
# number of GPUs until there are fewer runs left than GPUs.
