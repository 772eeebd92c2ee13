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
# (chapter-reproducibility)=
# # Reproducibility
#
# Everything in this book is computed by the `apt` package from stored run records, and every record carries
# its provenance: the full configuration and its hash, the protocol actually used, the package versions, the
# hardware and the git revision of the code that produced it, and the wall time. This chapter reads that
# provenance back — nothing on this page is typed by hand: versions come from the records and from the
# installed packages, profile sizes from the benchmark classes, commands from the `Makefile` and from the
# records' configurations, the assumptions from `apt.optim.assumptions`, and the API reference from the
# docstrings of the code.

# %% tags=["parameters"]
profile = "cpu"
device = "cpu"
seed = 0
data_dir = None
results_dir = None

# %% tags=["hide-input"]
import html
import importlib
import importlib.metadata
import inspect
import pkgutil
import platform
import re
import shlex
import subprocess
import tomllib
from pathlib import Path

import pandas as pd
from IPython.display import HTML, Markdown, display
from myst_nb import glue

import apt
from apt.benchmarks import BENCHMARKS, benchmark_class
from apt.benchmarks.base import PROFILES
from apt.data_dir import REPO_ROOT
from apt.experiment import default_results_dir
from apt.grids import book_grids
from apt.optim.assumptions import ASSUMPTIONS, register_myst
from apt.page import counted, show
from apt.store import load_records

STORE = Path(results_dir) if results_dir else default_results_dir(profile)
records = load_records(STORE) if STORE.is_dir() else []
pd.set_option("display.max_colwidth", None)
glue("repro_profile", profile, display=False)
glue("repro_n_records", len(records), display=False)

# %% [markdown]
# ## Environment and versions
#
# The package pins are those of `pyproject.toml` (the same pins as `environment.yml`); the table gives each pin
# and the version installed in the kernel that built this page.

# %% tags=["hide-input"]
pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
requirements = [("core", r) for r in pyproject["project"]["dependencies"]] + [
    (extra, r) for extra, reqs in pyproject["project"]["optional-dependencies"].items() for r in reqs
]


def installed(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


versions = pd.DataFrame(
    [{"group": group, "package": re.split(r"[=<>!~\[ ]", req, maxsplit=1)[0], "pinned": req,
      "installed": installed(re.split(r"[=<>!~\[ ]", req, maxsplit=1)[0])} for group, req in requirements]
)  # fmt: skip
print(f"this kernel: Python {platform.python_version()} on {platform.platform()}; apt {apt.__version__}")
versions

# %% [markdown]
# The records of the {glue:text}`repro_profile` results store ({glue:text}`repro_n_records` records) say which
# versions produced them: one row per distinct environment (package versions and platform), with the git
# revisions of the code that ran in it given as a count and a range (the first and the last by commit date; a
# revision marked `+dirty` is that commit with uncommitted changes in the working tree). Each record holds its
# full revision.

# %% tags=["hide-input"]
# NBVAL_IGNORE_OUTPUT (the store's content depends on which runs this build has made)
ENVIRONMENT_FIELDS = ["apt", "python", "torch", "numpy", "platform"]


def commit_date(revision: str) -> str | None:
    """ISO commit date of ``revision`` (a ``+dirty`` suffix ignored) in this clone, or None if it is not here."""
    try:
        out = subprocess.run(["git", "show", "-s", "--format=%cI", revision.removesuffix("+dirty")], cwd=REPO_ROOT,
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


def revision_summary(revisions: pd.Series) -> str:
    """'N revisions (d +dirty), first … last (dates)': the git revisions of a group of records, compactly."""
    distinct = sorted(set(revisions.dropna()))
    if not distinct:
        return "not recorded"
    dated = sorted((commit_date(r) or "", r) for r in distinct)
    known = [(d, r) for d, r in dated if d]
    text = f"{len(distinct)} revision{'s' if len(distinct) != 1 else ''}"
    n_dirty = sum(r.endswith("+dirty") for r in distinct)
    if n_dirty:
        text += f" ({n_dirty} +dirty)"
    if known:
        (d0, r0), (d1, r1) = known[0], known[-1]
        text += f": {r0[:8]} ({d0[:10]})" + (f" … {r1[:8]} ({d1[:10]})" if r1 != r0 else "")
    if len(known) < len(distinct):
        text += f"; {len(distinct) - len(known)} not in this clone's history"
    return text


if records:
    environments = pd.DataFrame([{k: r["environment"].get(k) for k in ENVIRONMENT_FIELDS} | {
        "benchmark": r["config"]["benchmark"], "git_revision": r["environment"].get("git_revision")}
        for r in records])
    by_environment = (environments.groupby(ENVIRONMENT_FIELDS, dropna=False)
                      .agg(records=("benchmark", "size"),
                           benchmarks=("benchmark", lambda b: ", ".join(sorted(set(b)))),
                           git_revisions=("git_revision", revision_summary))
                      .reset_index().rename(columns={"git_revisions": "git revisions"}))
    display(by_environment)
else:
    print(f"no records in {STORE}")

# %% [markdown]
# ## Hardware of the stored runs
#
# Where the runs of this store were computed, and how long they took (wall time of training and evaluation,
# as recorded by each run; a resumed run adds up its pieces):

# %% tags=["hide-input"]
# NBVAL_IGNORE_OUTPUT (the store's content depends on which runs this build has made)
HARDWARE_FIELDS = ["device", "device_name", "processor", "cpu_count", "torch_threads"]
total_hours = sum(r.get("wall_seconds") or 0.0 for r in records) / 3600
glue("repro_total_hours", total_hours, display=False)
if records:
    hardware = pd.DataFrame([{k: r["environment"].get(k) for k in HARDWARE_FIELDS} | {
        "benchmark": r["config"]["benchmark"], "hours": (r.get("wall_seconds") or 0.0) / 3600} for r in records])
    display(hardware.groupby([*HARDWARE_FIELDS, "benchmark"], dropna=False)
            .agg(records=("hours", "size"), hours=("hours", "sum")).round(3).reset_index())
print(f"total recorded compute of the {profile} store: {total_hours:.2f} hours over {len(records)} runs")

# %% [markdown]
# In total the stored runs of this profile took {glue:text}`repro_total_hours:.2f` hours of wall time. Timings
# were taken on shared machines (other jobs ran at the same time), so they bound the cost rather than measure it.
# The `torch_threads` column matters for reproduction: the store was computed partly with two torch threads per
# run and partly with one thread per run and two runs at a time (more runs per hour on this two-core machine: two
# processes side by side step faster with one thread each than with two, as measured in {ref}`chapter-cost`).
# The thread count changes the order of floating-point sums, so a run recomputed with another thread count agrees
# with its record up to training noise, not bit for bit; with the same thread count, versions and kind of machine
# it reproduces the record (the test suite re-runs a stored smoke record and compares every number). Seeds stay
# paired across arms either way: the same initialisation and batch order.
#
# ## Profiles and their sizes
#
# Each benchmark has one protocol; a profile is a named set of overrides of it (DESIGN.md §4). `full` is the
# published protocol (or, for the Multi-* benchmarks, ours); `cpu` is what this book's committed records use;
# `smoke` exercises the code paths in tests. "all" means every sample of the split. "protocol seeds" is the
# protocol's seed count; "book grid seeds" are the seeds the book's grid of that benchmark runs at that profile
# (`apt.grids.book_grids`; chapters 3 and 4 and the ablations state their own).

# %% tags=["hide-input"]
rows = []
for name in BENCHMARKS:
    cls = benchmark_class(name)
    for prof in PROFILES:
        p = cls.protocol.with_overrides(cls.profiles[prof])
        rows.append({
            "benchmark": name, "profile": prof, "epochs": p.epochs, "batch": p.batch_size, "lr": p.lr,
            "n_train": p.n_train or "all", "n_val": p.n_val or "all", "n_test": p.n_test or "all",
            "schedule": p.scheduler, "reported": f"{p.selection}" + (f" (k={p.selection_k})" if p.selection == "last_k" else ""),
            "protocol seeds": len(p.seeds),
            "book grid seeds": ",".join(map(str, book_grids(prof)[name].seeds)) if name in book_grids(prof) else "",
        })  # fmt: skip
profiles_table = pd.DataFrame(rows).set_index(["benchmark", "profile"])
glue("repro_n_benchmarks", len(BENCHMARKS), display=False)
profiles_table

# %% [markdown]
# Why each profile has the sizes it has (the benchmark classes' `profile_notes`):

# %% tags=["hide-input"]
pd.DataFrame([{"benchmark": name, "profile": prof, "why these sizes": benchmark_class(name).profile_notes.get(prof, "")}
              for name in BENCHMARKS for prof in PROFILES]).set_index(["benchmark", "profile"])

# %% [markdown]
# ## The commands that produced every result
#
# One command recomputes every committed `cpu` record that is missing (delete `results/cpu` first to recompute
# all of them): `make results`. Its recipe, read from the `Makefile`:

# %%
makefile = (REPO_ROOT / "Makefile").read_text().splitlines()
start = next(i for i, line in enumerate(makefile) if line.startswith("results:"))
recipe = []
for line in makefile[start + 1:]:
    if not line.startswith("\t"):
        break
    recipe.append(line.strip().replace("$(PY)", "python").replace("$(VENV)/bin/", ""))
glue("repro_n_make_commands", len(recipe), display=False)
print("\n".join(recipe))

# %% [markdown]
# The `apt grid` lines train every missing run of the book's grids, ablations and SGD control, QM9's first with
# each run in a fresh process (its memory, README); the grid chapters only render what the store holds, they never
# start hours of training. The last line executes
# the chapters, of which the claim 1 and claim 2 chapters and the workshop train the runs they read and do not
# find (the toy chapter computes its trajectories on every execution).
# For a GPU: `python -m apt grid --profile full --device cuda` first, then the same second line with
# `--profile full --device cuda`. Each
# stored record holds the configuration that produced it, so the exact command of every run can be given: the
# tables below, one per benchmark, list one `python -m apt run` command per group of records that differ only in
# their seed (the command's `--seed` takes each listed value): {glue:text}`repro_n_commands` commands for the
# {glue:text}`repro_n_records` records, every one of them shown. A rerun with the same configuration has the same
# config hash and reads the stored record instead of training again.

# %% tags=["hide-input"]
# NBVAL_IGNORE_OUTPUT (the store's content depends on which runs this build has made)
def run_command(config: dict) -> str:
    """``python -m apt run`` arguments that rebuild ``config`` (seed left as {seed})."""
    args = ["python", "-m", "apt", "run", "--benchmark", config["benchmark"], "--method", config["method"],
            "--optimizer", config["optimizer"], "--profile", config["profile"], "--device", config["device"]]
    if config.get("stl_task") is not None:
        args += ["--stl-task", str(config["stl_task"])]
    if config.get("lr") is not None:
        args += ["--lr", repr(config["lr"])]
    for flag, field in (("--method-hp", "method_hp"), ("--optimizer-hp", "optimizer_hp"),
                        ("--override", "protocol_overrides")):
        if config.get(field):
            args += [flag, *(f"{k}={v}" for k, v in sorted(config[field].items()))]
    if config.get("diagnostics"):
        args += ["--diagnostics", "--diagnostics-every", str(config.get("diagnostics_every", 1))]
        if config.get("diagnostics_alignment") is False:
            args.append("--no-diagnostics-alignment")
    if config.get("rep_grad"):
        args.append("--rep-grad")
    return shlex.join(args) + " --seed {seed}"


commands = pd.DataFrame([{"command": run_command(r["config"]), "seed": r["config"]["seed"],
                          "benchmark": r["config"]["benchmark"]} for r in records])
if len(commands):
    commands = (commands.groupby(["benchmark", "command"])["seed"]
                .agg(lambda s: ",".join(map(str, sorted(s)))).rename("seeds").reset_index())
    glue("repro_n_commands", len(commands), display=False)
    # every row, one table per benchmark: pandas would otherwise elide all but the first and last rows
    with pd.option_context("display.max_rows", None):
        for benchmark, group in commands.groupby("benchmark"):
            show(f"{benchmark}: {counted(len(group), 'command')}, "
                 f"{counted(int(group['seeds'].str.count(',').sum() + len(group)), 'record')}")
            display(group[["command", "seeds"]].reset_index(drop=True))
else:
    glue("repro_n_commands", 0, display=False)
    print(f"no records in {STORE}")

# %% [markdown]
# On a GPU, the same commands with `--profile full --device cuda` run the published protocols; the benchmark
# chapters give the full sweeps (e.g. {ref}`chapter-other-benchmarks` for CelebA, NYUv2 and Cityscapes). Every
# notebook can be re-executed with other parameters (after `python -m apt grid` with the same profile, for the
# grid chapters):
# `python scripts/execute_notebooks.py --profile full --device cuda` (papermill injects `profile`, `device`,
# `seed`, `data_dir` and `results_dir` into each chapter's parameters cell).
#
# ## The assumptions register
#
# The APT paper's equations are not available, so every rule the implementation had to choose is an entry of the
# register `apt.optim.assumptions.ASSUMPTIONS` ({glue:text}`repro_n_assumptions` entries): the rule as an equation,
# why it was chosen, what the paper (or a third party, marked as such) says, the alternatives implemented, and
# where they are compared.

# %% tags=["hide-input"]
glue("repro_assumptions_table", Markdown(register_myst()), display=False)
glue("repro_n_assumptions", len(ASSUMPTIONS), display=False)

# %% [markdown]
# ```{glue:md} repro_assumptions_table
# :format: myst
# ```
#
# ## API reference of `apt`
#
# Generated from the code: for every module of the package, its public functions and classes (the module's
# `__all__` where it has one, else the names it defines without a leading underscore) with their signatures and
# the first paragraph of their docstrings; for classes, their public methods. The docstrings state the
# mathematics of each function (equations and tensor shapes); read them in full with `help()`.

# %% tags=["hide-input"]
def first_paragraph(obj: object) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.split("\n\n", 1)[0].replace("\n", " ")


def signature(obj: object) -> str:
    try:
        return str(inspect.signature(obj))
    except (TypeError, ValueError):
        return ""


def public_members(module) -> list[tuple[str, object]]:
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n, v in vars(module).items()
                 if not n.startswith("_") and getattr(v, "__module__", None) == module.__name__]
    members = [(n, getattr(module, n)) for n in names]
    return [(n, v) for n, v in members if inspect.isclass(v) or inspect.isfunction(v)]


def public_methods(cls: type) -> list[tuple[str, object]]:
    return [(n, v) for n, v in vars(cls).items()
            if not n.startswith("_") and (inspect.isfunction(v) or isinstance(v, property))]


modules = [importlib.import_module(m.name) for m in pkgutil.walk_packages(apt.__path__, "apt.")]
modules = [apt, *sorted(modules, key=lambda m: m.__name__)]
parts, n_documented = [], 0
for module in modules:
    members = public_members(module)
    if not members and module.__name__ != "apt":
        continue
    parts.append(f"<h4><code>{module.__name__}</code></h4><p>{html.escape(first_paragraph(module))}</p><dl>")
    for name, obj in members:
        kind = "class" if inspect.isclass(obj) else "def"
        parts.append(f"<dt><code>{kind} {html.escape(name + signature(obj))}</code></dt>"
                     f"<dd>{html.escape(first_paragraph(obj))}")
        n_documented += 1
        if inspect.isclass(obj):
            methods = public_methods(obj)
            if methods:
                parts.append("<ul>" + "".join(
                    f"<li><code>{html.escape(m + (signature(v) if inspect.isfunction(v) else ''))}</code>"
                    f"{' (property)' if isinstance(v, property) else ''}: {html.escape(first_paragraph(v))}</li>"
                    for m, v in methods) + "</ul>")
        parts.append("</dd>")
    parts.append("</dl>")
glue("repro_n_api_objects", n_documented, display=False)
glue("repro_n_modules", len(modules), display=False)
HTML("\n".join(parts))

# %% [markdown]
# The reference lists {glue:text}`repro_n_api_objects` public functions and classes of
# {glue:text}`repro_n_modules` modules.
