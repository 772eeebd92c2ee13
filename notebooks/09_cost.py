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
# (chapter-cost)=
# # What a step costs: MTL methods and optimizers
#
# A method that needs the $K$ task gradients pays for them: on a network, each row of the Jacobian
# $J \in \mathbb{R}^{K \times P}$ is one more backward pass, while a loss-based method (LS, SI, RLW, DWA, UW,
# FAMO) needs one backward of $\sum_k w_k \ell_k$. Optimizers add their own cost: Muon orthogonalizes every
# hidden matrix by five Newton–Schulz iterations, and APT computes cosines between the instant gradient and the
# momentum: one per parameter tensor in our implementation, which is our assumption
# {glue:text}`cost_a6_id` ("{glue:text}`cost_a6_name`" in the register of {ref}`chapter-reproducibility`),
# not a rule the paper states; the alternative is one global cosine. This chapter shows the
# measured per-step costs as **ratios** against a baseline timed in the same run (absolute times depend on
# the machine, ratios much less). The numbers are not computed while the book builds: they come from the
# speed benchmark scripts in `benchmarks/`, which save their measurements together with the exact command,
# date, package versions and processor; the tables below print those alongside.

# %% tags=["parameters"]
profile = "cpu"
device = "cpu"
seed = 0
data_dir = None
results_dir = None

# %% tags=["hide-input"]
import json
from pathlib import Path

import pandas as pd
from myst_nb import glue

from apt.data_dir import REPO_ROOT
from apt.optim.assumptions import ASSUMPTIONS
from apt.page import command_lines, show, wrapped

# Speed measurements belong to a machine, not to a profile: one folder for all profiles.
COST_DIR = REPO_ROOT / "results" / "cost"


# The cosine's scope is an entry of the assumptions register, not the paper's definition.
COSINE_SCOPE = next(a for a in ASSUMPTIONS if "cosine_scope" in a.name)
glue("cost_a6_id", COSINE_SCOPE.id, display=False)
glue("cost_a6_name", COSINE_SCOPE.name, display=False)


def load(name: str) -> dict | None:
    path = COST_DIR / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def provenance(measurement: dict) -> str:
    """Where and how a measurement was taken: its date, machine and git revision, then its command (foldable)."""
    env = measurement["environment"]
    threads = measurement.get("threads", env["torch_threads"])
    threads = (f"{' or '.join(map(str, threads))} threads per process" if isinstance(threads, list)
               else f"{threads} threads")
    return (wrapped(f"{measurement['date']}: torch {env['torch']}, {env['cpu_count']} CPUs ({env['processor']}), "
                    f"{threads}, git {env['git_revision']}; command:")
            + "\n" + command_lines(measurement["command"]))


# %% [markdown]
# ## MTL methods: per-step cost relative to LS
#
# One step = forward, the method's backward (and FAMO's extra forward), on the benchmark's real model with a
# random batch of the real input shapes. Columns: the step's median time over rounds divided by (a) LS's step,
# (b) a plain loop of $K$ backward passes (LibMTL's way of getting $J$), (c) TorchJD's equivalent where it
# exists. `name@features` takes the task gradients with respect to the shared representation instead of the
# shared parameters (one backward per task through the heads only).

# %%
tables = {}
for benchmark in ("qm9", "celeba"):
    measurement = load(f"mtl_{benchmark}")
    if measurement is None:
        show(f"{benchmark}: not measured in this build (no {COST_DIR / f'mtl_{benchmark}.json'})")
        continue
    frame = pd.DataFrame(measurement["ratios"]).T.rename(columns={"ls": "/ LS", "loop": "/ K-backward loop",
                                                                  "torchjd": "/ TorchJD"})
    frame.insert(0, "median s", pd.Series(measurement["median_seconds"]))
    tables[benchmark] = frame
    # show, not print: printed lines of a cell are merged into one block above all its tables
    show(wrapped(f"{benchmark}: K = {measurement['n_tasks']}, {measurement['shared_parameters']:,} shared "
                 f"parameters, batch {measurement['batch_size']}, {measurement['rounds']} rounds")
         + "\n" + provenance(measurement), width=None)
    display(frame.round(2))

# %% [markdown]
# ## Optimizers: step time relative to torch's own
#
# Only `optimizer.step()` is timed, on the parameter sets of the real models with fixed random gradients.

# %%
measurement = load("optim")
if measurement is None:
    print(f"optimizers: not measured in this build (no {COST_DIR / 'optim.json'})")
else:
    print(provenance(measurement))
    display(pd.DataFrame(measurement["ratios"]).T.round(2))

# %% [markdown]
# ## Sweeps side by side: threads per process
#
# A sweep is one process that starts with torch's default thread count, one per core. Two sweeps on one machine
# (this book's `cpu` records were computed as the QM9 grid beside a Multi-* grid on two cores) then run more
# threads than there are cores, and the threads of each wait on the other's. The benchmark starts one process
# per benchmark at once, each with $t$ threads, training the real model on a random batch of the real input shapes
# with the `cpu` profile's batch size (LS's step: forward, summed losses, one backward, Adam), and times the steps
# that run while all processes are busy. The ratio is $s_p(t) / s_p(1)$, process $p$'s median step time with $t$
# threads each over its time with one thread each (above 1: slower).

# %% tags=["hide-input"]
measurement = load("threads")
if measurement is None:
    print(f"threads: not measured in this build (no {COST_DIR / 'threads.json'})")
    glue("cost_threads_slowdown", "not measured in this build", display=False)
else:
    side_by_side = pd.DataFrame({
        (label, column): {f"{t} each": table[t][label] for t in table}
        for label in measurement["processes"]
        for column, table in (("median s", measurement["median_step_seconds"]),
                              ("/ 1 thread each", measurement["ratios"]))
    })
    side_by_side.index.name = "threads"
    show(wrapped(f"{len(measurement['processes'])} processes side by side on {measurement['cores']} cores: "
                 f"{', '.join(measurement['processes'])} (batch {', '.join(map(str, measurement['batch_sizes']))}), "
                 f"{measurement['steps']} timed steps, {measurement['rounds']} rounds")
         + "\n" + provenance(measurement), width=None)
    display(side_by_side.round(2))
    most = str(max(measurement["threads"]))
    label, ratio = max(measurement["ratios"][most].items(), key=lambda item: item[1])
    glue("cost_threads_slowdown", f"{ratio:.2f} times as long per step with {most} threads each as with one ({label})",
         display=False)

# %% [markdown]
# Sweeps that share a machine should share its cores: give each `OMP_NUM_THREADS` = cores / sweeps (the README
# shows the command). Measured here, a process took {glue:text}`cost_threads_slowdown`.

# %% [markdown]
# ## Reproduce
#
# The commands that produced the measurements above, as each measurement file stores them (run from the
# repository's root, with the environment's `python`; `.venv/bin/python` in the environment `make setup` creates):

# %%
MEASUREMENTS = ("mtl_qm9", "mtl_celeba", "optim", "threads")
stored = {name: load(name) for name in MEASUREMENTS}
print("\n".join(command_lines(m["command"]) if m else f"# {name}: not measured (no {COST_DIR / f'{name}.json'})"
                for name, m in stored.items()))

# %% [markdown]
# TorchJD is left out on QM9: its Jacobian engine vmaps the backward, and PyTorch has no batching rule for the
# GRU's backward, so one step takes minutes there. On a GPU add `--device cuda` to either script (each timed step
# is then enclosed in `torch.cuda.synchronize()`); the saved file records the device, and ratios from a GPU are
# not comparable with the CPU ratios above.
