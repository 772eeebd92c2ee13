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
# The full protocol is every MTL method under Adam, APT-Adam, Muon and APT-Muon, with three seeds, on every
# benchmark, plus the single-task baselines: hundreds of GPU runs. `python -m apt sweep` runs such a grid one
# run after another by default; with `--backend ray` it spreads the runs over a [Ray](https://docs.ray.io)
# cluster that you start with Ray's own command line. What that backend does (`apt.sweep_ray`):
#
# - each run is one Ray task that reserves what it needs: one GPU when the device is `cuda` (and 2 CPUs),
#   2 CPUs for a `cpu`-profile run, 1 for `smoke`; torch uses as many threads as CPUs reserved;
# - every worker writes its record into `--results-dir` and its per-epoch checkpoint into `--runs-dir`, given
#   explicitly: both must be on a filesystem that every node mounts at the same path. Each run writes only
#   its own two files, atomically; there is no shared index that two workers could corrupt;
# - runs that already have a record are skipped before anything is submitted, so the same command, run
#   again after an interruption, does only what is missing;
# - a task whose worker process or node dies is resubmitted by Ray (up to 3 times) and resumes from its last
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

# %%
import json
import re

import pandas as pd
from myst_nb import glue

from apt.benchmarks import BENCHMARKS, Protocol, benchmark_class
from apt.data_dir import REPO_ROOT
from apt.data_dir import data_dir as resolve_data_dir
from apt.mtl import METHODS
from apt.page import command_lines
from apt.sweep import grid
from apt.sweep_ray import CPUS_PER_RUN

OPTIMIZERS = ["adam", "apt_adam", "muon", "apt_muon"]
SEEDS = [0, 1, 2]
COST_DIR = REPO_ROOT / "results" / "cost"  # speed measurements belong to a machine, not to a profile

# %% [markdown]
# ## Starting a cluster
#
# Every node needs the same checkout of this repository installed the same way (`make setup`, or the conda
# environment on GPU machines), the data under the same `APT_DATA_DIR`, and the shared folder for results and
# checkpoints. Ray's workers inherit the environment of the `ray start` that launched their node, so set the
# variables in that shell (the two `MALLOC_` settings keep QM9's large per-edge tensors fast, see
# `TOOLCHAIN.md`).
#
# **Plain machines.** On the head node, then on every other node:
#
# ```bash
# export APT_DATA_DIR=/shared/apt/data MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000
# .venv/bin/ray start --head --port=6379 --include-dashboard=false     # on the head node
# .venv/bin/ray start --address=HEAD_IP:6379                           # on each other node
# .venv/bin/ray status                                                 # every node's CPUs and GPUs
# ```
#
# Ray's servers listen on every network interface and run whatever code a client sends: on a network you
# do not fully trust, enable Ray's token authentication (`export RAY_AUTH_MODE=token RAY_AUTH_TOKEN=...`
# with one secret for all nodes and for the sweep command; see Ray's documentation on token
# authentication). Ray counts each machine's CPUs and GPUs itself (`--num-cpus` / `--num-gpus` override it). Run the sweep
# commands below on the head node with `--address HEAD_IP:6379`; `.venv/bin/ray stop` on every node ends the
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
# srun --nodes=1 --ntasks=1 -w "${nodes[0]}" .venv/bin/ray start --head --block --node-ip-address="$head_ip" \
#      --port=6379 --num-cpus="$SLURM_CPUS_PER_TASK" --num-gpus=4 --include-dashboard=false &
# sleep 30
# for node in "${nodes[@]:1}"; do
#   srun --nodes=1 --ntasks=1 -w "$node" .venv/bin/ray start --block --address="$head_ip:6379" \
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
# One command per benchmark. Each adds the single-task baselines (one run per task and seed, trained with
# Adam) that Δm needs; `--no-stl` leaves them out.

# %%
def sweep_command(benchmark: str) -> str:
    return (f".venv/bin/python -m apt sweep --benchmark {benchmark} --methods {','.join(METHODS)} "
            f"--optimizers {','.join(OPTIMIZERS)} --seeds {','.join(map(str, SEEDS))} --profile full --device cuda "
            f"--backend ray --address $HEAD --results-dir /shared/apt/results/full --runs-dir /shared/apt/runs/full")


print("\n\n".join(command_lines(sweep_command(benchmark)) for benchmark in BENCHMARKS))

# %% [markdown]
# ## What it costs
#
# The number of runs follows from the grid, the number of optimizer steps from each benchmark's `full`
# protocol: epochs × ⌈training examples / batch size⌉. The training-set size is counted from the data where
# it is on this machine (QM9's characterized molecules minus the held-out parts, CelebA's official training
# partition), taken from the benchmark's definition for the synthetic Multi-* pairs, and otherwise from the
# published split size given in the benchmark's documentation.

# %%
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
        from apt.benchmarks.qm9_raw import N_GDB9_RECORDS

        uncharacterized = folder / "qm9" / "raw" / "uncharacterized.txt"
        if uncharacterized.is_file():
            skipped = sum(bool(re.match(r"\s*\d+\s", line)) for line in uncharacterized.read_text().splitlines())
            train, _, _ = cls(folder).split_indices(N_GDB9_RECORDS - skipped, 0)
            return len(train), "counted from the data"
    if name == "celeba":
        try:
            return len(cls(folder).annotations().split_indices("train")), "counted from the data"
        except FileNotFoundError:
            pass
    published = re.search(r"([\d,]+)\s*/", cls.profile_notes["full"])  # "N train / M test" in the notes
    return int(published.group(1).replace(",", "")), "published split size (data not here)"


rows = []
for name in BENCHMARKS:
    protocol = full_protocol(name)
    size, source = full_train_size(name)
    steps_per_epoch = -(-size // protocol.batch_size)
    configs = grid(name, METHODS, OPTIMIZERS, SEEDS, profile="full", device="cuda")
    n_stl = sum(c.stl_task is not None for c in configs)
    rows.append({"benchmark": name, "runs": len(configs), "of which STL": n_stl, "epochs": protocol.epochs,
                 "train examples": size, "batch": protocol.batch_size, "steps per run": protocol.epochs * steps_per_epoch,
                 "size from": source})
plan = pd.DataFrame(rows).set_index("benchmark")
display(plan)
glue("cluster_runs_total", int(plan["runs"].sum()), display=False)
glue("cluster_runs_mtl", int((plan["runs"] - plan["of which STL"]).sum()), display=False)
glue("cluster_steps_total", int((plan["runs"] * plan["steps per run"]).sum()), display=False)
glue("cluster_gpu_cpus", CPUS_PER_RUN["full"], display=False)

# %% [markdown]
# The full grid is {glue:text}`cluster_runs_total:,` runs ({glue:text}`cluster_runs_mtl:,` of them MTL runs,
# the rest single-task baselines), {glue:text}`cluster_steps_total:,` optimizer steps in all.
#
# **Time per step.** The step times measured in this project are CPU times (`benchmarks/bench_mtl.py` on the
# real QM9 and CelebA models, see {ref}`chapter-cost`): forward and the method's backward at a small batch,
# plus `optimizer.step()` from `benchmarks/bench_optim.py`. Scaled linearly to the protocol's batch size (on
# a CPU the cost of these models grows about in proportion to the batch) they give the CPU-hours below, for
# training steps only (the per-epoch evaluation passes come on top). Each STL run is costed as an LS step.

# %%
def load(name: str) -> dict | None:
    path = COST_DIR / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


optimizer_steps = load("optim")
cost_rows = []
for name in BENCHMARKS:
    measured = load(f"mtl_{name}")
    if measured is None or optimizer_steps is None or name not in optimizer_steps["median_seconds"]:
        continue
    protocol = full_protocol(name)
    scale = protocol.batch_size / measured["batch_size"]
    steps = plan.loc[name, "steps per run"]
    seconds = 0.0
    for config in grid(name, METHODS, OPTIMIZERS, SEEDS, profile="full", device="cuda"):
        method = "ls" if config.stl_task is not None else config.method
        step = measured["median_seconds"][method] * scale + optimizer_steps["median_seconds"][name][config.optimizer]
        seconds += steps * step
    ls_step = measured["median_seconds"]["ls"] * scale + optimizer_steps["median_seconds"][name]["adam"]
    cost_rows.append({"benchmark": name, "measured at batch": measured["batch_size"],
                      "LS+Adam step at protocol batch (s)": ls_step,
                      "one LS+Adam run (CPU-hours)": steps * ls_step / 3600,
                      "full grid (CPU-hours)": seconds / 3600,
                      "measured": f"{measured['date'][:10]}, {measured['environment']['cpu_count']} CPUs, "
                                  f"torch {measured['environment']['torch']}"})
cost = pd.DataFrame(cost_rows).set_index("benchmark")
display(cost.round(2))
for name in cost.index:
    glue(f"cluster_cpu_hours_{name}", float(cost.loc[name, "full grid (CPU-hours)"]), display=False)
    glue(f"cluster_cpu_years_{name}", float(cost.loc[name, "full grid (CPU-hours)"]) / (24 * 365), display=False)

# %% [markdown]
# On this project's 2-core CPU the QM9 grid alone would take {glue:text}`cluster_cpu_hours_qm9:,.0f`
# CPU-hours (about {glue:text}`cluster_cpu_years_qm9:.1f` years on one such machine), CelebA's
# {glue:text}`cluster_cpu_hours_celeba:,.0f`: the full protocol is GPU work. Most of it is the
# gradient-based methods, whose K backward passes per step cost many LS steps ({ref}`chapter-cost`).
#
# **GPU step times were not measured here** (this project's machines have no GPU), so this page gives no
# GPU-hours. `benchmarks/bench_mtl.py` has no device option; measure instead with one epoch of the real
# protocol on your GPU, which also includes data loading and evaluation:
#
# ```bash
# .venv/bin/python -m apt run --benchmark qm9 --method ls --optimizer adam --profile full --device cuda \
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
    ratio = {m: measured["median_seconds"][m] / measured["median_seconds"]["ls"] for m in METHODS} if measured else {}
    epochs = full_protocol(name).epochs
    configs = grid(name, METHODS, OPTIMIZERS, SEEDS, profile="full", device="cuda")
    return sum(epochs * (1.0 if c.stl_task is not None else ratio.get(c.method, 1.0)) for c in configs)


gpu_plan = pd.DataFrame({"LS epochs": {name: ls_epoch_equivalents(name) for name in BENCHMARKS},
                         "method ratios": {name: "measured" if load(f"mtl_{name}") else "1 (not measured)"
                                           for name in BENCHMARKS}})
display(gpu_plan.round(0))
glue("cluster_ls_epochs_qm9", float(gpu_plan.loc["qm9", "LS epochs"]), display=False)

# %% [markdown]
# For QM9, for instance, a GPU that trains one LS epoch of the full protocol in $t$ seconds needs
# {glue:text}`cluster_ls_epochs_qm9:,.0f` $\cdot\, t / 3600$ GPU-hours for the grid. Ray reserves one GPU and
# {glue:text}`cluster_gpu_cpus` CPUs per `full` run, so a node with $G$ GPUs runs $G$ runs at once if it has
# that many CPUs per GPU; the runs are independent, so the wall time falls about in proportion to the
# number of GPUs until there are fewer runs left than GPUs.
