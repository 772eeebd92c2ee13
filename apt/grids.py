"""The grids of runs the book reads: which (method, optimizer, seed) runs of which benchmark, per profile.

One place says what each chapter's tables are made of, so that the chapters, ``make results`` and
``python -m apt grid`` cannot disagree. A grid is the product methods × optimizers × seeds plus one single-task
(STL) baseline per task and seed (Δm% is measured against same-profile baselines, DESIGN.md §4).

Seed counts follow the noise measured on Multi-Fashion (TOOLCHAIN.md): a 0.5-point Δm% difference needs about
5 seeds per arm paired by seed, so the Multi-* grids aim at 5 seeds and QM9 (a run with task gradients costs
several loss-based runs) at 3. With 2 seeds a 95% t-interval has 1 degree of freedom (t = 12.7): the tables
render every complete seed as the sweep fills the grid, seed by seed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apt.config import Config
from apt.experiment import record_path
from apt.mtl import METHODS, method_info
from apt.optim.factory import DEFAULT_HP
from apt.store import divergence_path, read_divergence, read_record
from apt.sweep import grid

# The four optimizer settings every method is compared under (issue 9): the base optimizers and APT on each.
BOOK_OPTIMIZERS: tuple[str, ...] = ("adam", "apt_adam", "muon", "apt_muon")
APT_PAIRS: dict[str, str] = {"apt_adam": "adam", "apt_muon": "muon"}
LOSS_METHODS: tuple[str, ...] = tuple(m for m in METHODS if method_info(m).kind == "loss")
# The gradient-based methods run on QM9 at the `cpu` profile: 11 task backwards make each run ~8× an LS run.
QM9_CPU_GRADIENT_METHODS: tuple[str, ...] = ("mgda", "imtl_g", "nash_mtl", "fairgrad")
MULTI_BENCHMARKS: tuple[str, ...] = ("multi_mnist", "multi_fashion", "multi_fashion_mnist")
MULTI_SEEDS: tuple[int, ...] = (0, 1, 2, 3, 4)  # the cpu and full grids' seeds on the Multi-* benchmarks


@dataclass(frozen=True)
class Grid:
    """methods × optimizers × seeds of one benchmark (+ STL baselines), all at one profile."""

    benchmark: str
    methods: tuple[str, ...]
    optimizers: tuple[str, ...]
    seeds: tuple[int, ...]
    stl: bool = True

    def configs(self, profile: str, *, device: str = "cpu", data_dir: str | None = None) -> list[Config]:
        """Every config of the grid, validated (the same configs ``python -m apt sweep`` builds)."""
        return grid(self.benchmark, self.methods, self.optimizers, self.seeds, profile=profile, stl=self.stl,
                    device=device, data_dir=data_dir)

    @property
    def size(self) -> int:
        return len(self.methods) * len(self.optimizers) * len(self.seeds)


def book_grids(profile: str) -> dict[str, Grid]:
    """The grid of each benchmark the book's result chapters read at ``profile``.

    smoke: two methods × two optimizers × one seed per benchmark: exercises every chapter's code in CI.
    cpu: this machine's grid (see the module docstring for the seed counts). full: the published protocol's
    scale for readers' GPUs, every method × the four optimizer settings on every benchmark, with the seed counts
    of the module docstring: 5 on the Multi-* benchmarks, 3 on QM9 and on the image benchmarks (as published).
    """
    if profile == "smoke":
        small = {"methods": ("ls", "mgda"), "optimizers": ("adam", "apt_adam"), "seeds": (0,)}
        return {b: Grid(b, **small) for b in (*MULTI_BENCHMARKS, "qm9")}
    if profile == "cpu":
        grids = {b: Grid(b, METHODS, BOOK_OPTIMIZERS, MULTI_SEEDS) for b in MULTI_BENCHMARKS}
        grids["qm9"] = Grid("qm9", LOSS_METHODS + QM9_CPU_GRADIENT_METHODS, BOOK_OPTIMIZERS, (0, 1, 2))
        return grids
    if profile == "full":
        grids = {b: Grid(b, METHODS, BOOK_OPTIMIZERS, MULTI_SEEDS) for b in MULTI_BENCHMARKS}
        return grids | {b: Grid(b, METHODS, BOOK_OPTIMIZERS, (0, 1, 2))
                        for b in ("qm9", "celeba", "nyuv2", "cityscapes")}
    raise ValueError(f"unknown profile {profile!r}; known profiles: smoke, cpu, full")


@dataclass
class GridRecords:
    """What the store holds of a grid: the records found and the configs still missing."""

    grid: Grid
    records: list[dict[str, Any]]
    missing: list[Config]
    diverged: list[dict[str, Any]] = field(default_factory=list)

    @property
    def stored_fraction(self) -> str:
        """'<finished runs> of <runs in the grid>', e.g. '91 of 290'."""
        return f"{len(self.records)} of {len(self.records) + len(self.missing) + len(self.diverged)}"

    @property
    def coverage(self) -> str:
        text = f"{self.stored_fraction} runs of the {self.grid.benchmark} grid are in the store"
        return text + (f" ({len(self.diverged)} diverged)" if self.diverged else "")

    def complete_seeds(self) -> list[int]:
        """Seeds for which every arm of the grid (and every STL baseline, if the grid has them) is stored and
        finished (not diverged): tables average every arm over the same seeds."""
        missing_seeds = {c.seed for c in self.missing} | {n["config"]["seed"] for n in self.diverged}
        stored_seeds = {r["config"]["seed"] for r in self.records}
        return [s for s in self.grid.seeds if s in stored_seeds and s not in missing_seeds]

    def complete_records(self) -> list[dict[str, Any]]:
        """The records of the complete seeds."""
        return self.seed_records(self.complete_seeds())

    def seed_records(self, seeds: Sequence[int]) -> list[dict[str, Any]]:
        """The stored records of ``seeds`` (MTL arms and single-task baselines)."""
        return [r for r in self.records if r["config"]["seed"] in set(seeds)]

    def partial_seed(self) -> int | None:
        """While no seed is complete: the seed with the most stored MTL arms among those whose single-task
        baselines are all stored (so those arms' Δm% exists), or None. Its arms are a subset of the grid: a mean
        rank among them is not the grid's, and one seed gives no interval."""
        stl_missing = ({c.seed for c in self.missing if c.stl_task is not None}
                       | {n["config"]["seed"] for n in self.diverged if n["config"].get("stl_task") is not None})
        arms = Counter(r["config"]["seed"] for r in self.records if r["config"].get("stl_task") is None)
        candidates = [s for s in self.grid.seeds if arms[s] and s not in stl_missing]
        return max(candidates, key=lambda s: (arms[s], -s)) if candidates else None

    def arms_stored(self, seed: int) -> tuple[int, int]:
        """(MTL arms of ``seed`` stored, MTL arms of the grid)."""
        stored = sum(1 for r in self.records if r["config"]["seed"] == seed and r["config"].get("stl_task") is None)
        return stored, len(self.grid.methods) * len(self.grid.optimizers)


def load_grid(
    grid_: Grid, profile: str, *, results_dir: Path | None = None, data_dir: str | None = None,
    seeds: Sequence[int] | None = None,
) -> GridRecords:
    """The stored records of ``grid_`` (optionally only ``seeds``), read config by config (no other run leaks in:
    a diagnostics run or another learning rate has another hash)."""
    configs = [c for c in grid_.configs(profile, data_dir=data_dir) if seeds is None or c.seed in seeds]
    return GridRecords(grid_, *read_stored(configs, results_dir))


def read_stored(configs: Sequence[Config], results_dir: Path | None = None,
                ) -> tuple[list[dict[str, Any]], list[Config], list[dict[str, Any]]]:
    """(records, configs with neither a record nor a divergence note, divergence notes) of ``configs``."""
    records, missing, diverged = [], [], []
    for config in configs:
        status = stored_status(config, results_dir)
        if status == "record":
            records.append(read_record(record_path(config, results_dir)))
        elif status == "diverged":
            diverged.append(read_divergence(divergence_path(record_path(config, results_dir))))
        else:
            missing.append(config)
    return records, missing, diverged


def stored_status(config: Config, results_dir: Path | None = None) -> str:
    """What the store holds of ``config``: 'record', 'diverged' (a divergence note) or 'missing'."""
    path = record_path(config, results_dir)
    if path.exists():
        return "record"
    return "diverged" if divergence_path(path).exists() else "missing"


# ---- Chapter 5: ablations of APT's assumed rules (apt.optim.assumptions), each a change of one rule ----

@dataclass(frozen=True)
class Variant:
    """One arm of an ablation: an optimizer with some hyperparameters changed, and the register rows it varies."""

    label: str
    optimizer: str
    optimizer_hp: tuple[tuple[str, Any], ...] = ()
    varies: str = ""

    @property
    def is_fixed_beta_control(self) -> bool:
        """Whether this is the control arm of ``fixed_beta_variant`` (β_min = β_max = APT's mean β)."""
        return self.varies == FIXED_BETA_VARIES


FIXED_BETA_VARIES = "adaptivity (control)"


ABLATION_BENCHMARK = "multi_fashion"
ABLATION_METHOD = "mgda"
APT_ADAM_VARIANTS: tuple[Variant, ...] = (
    Variant("Adam (β₁ = 0.9)", "adam", (), "baseline"),
    Variant("APT-Adam, assumed defaults", "apt_adam", (), "A1–A4 defaults"),
    Variant("β ∈ [0, 0.9]", "apt_adam", (("beta_min", 0.0),), "β_min"),
    Variant("β ∈ [0.8, 0.9]", "apt_adam", (("beta_min", 0.8),), "β_min"),
    Variant("β ∈ [0.5, 0.99]", "apt_adam", (("beta_max", 0.99),), "β_max"),
    Variant("agree_less", "apt_adam", (("adapt_direction", "agree_less"),), "direction of adaptation"),
    Variant("global cosine", "apt_adam", (("cosine_scope", "global"),), "cosine scope"),
    Variant("clipped rule", "apt_adam", (("momentum_rule", "clipped"),), "β(cos) rule"),
)
APT_MUON_VARIANTS: tuple[Variant, ...] = (
    Variant("Muon (β = 0.95)", "muon", (), "baseline"),
    Variant("APT-Muon, assumed defaults (pre_mix)", "apt_muon", (), "A1–A8 defaults"),
    Variant("no preservation", "apt_muon", (("preserve", "none"),), "direction preservation"),
    Variant("post_mix", "apt_muon", (("preserve", "post_mix"),), "direction preservation"),
    Variant("dual_ns", "apt_muon", (("preserve", "dual_ns"),), "direction preservation"),
)
# The Multi-* grid's 5 seeds (cpu and full). The chapter averages over the seeds that are complete in the store, so
# it renders while later seeds are still being computed (2 seeds: a paired 95% interval with t = 12.7).
ABLATION_SEEDS: dict[str, tuple[int, ...]] = {"smoke": (0,), "cpu": MULTI_SEEDS, "full": MULTI_SEEDS}
# The seeds whose default-arm β̄ sets the fixed-β control. Fixed, not "every ablation seed": the control's β is
# part of its config, so a β that moved with each added seed would orphan the control runs already stored.
FIXED_BETA_SOURCE_SEEDS: dict[str, tuple[int, ...]] = {"smoke": (0,), "cpu": (0, 1), "full": MULTI_SEEDS}
DIAGNOSTICS_EVERY: dict[str, int] = {"smoke": 1, "cpu": 10, "full": 50}


def ablation_config(variant: Variant, seed: int, profile: str, *, device: str = "cpu", data_dir: str | None = None,
                    benchmark: str = ABLATION_BENCHMARK, method: str = ABLATION_METHOD) -> Config:
    """The run of one ablation arm: diagnostics on (the β actually used is what the fixed-β control needs)."""
    return Config(benchmark=benchmark, method=method, optimizer=variant.optimizer,
                  optimizer_hp=dict(variant.optimizer_hp), profile=profile, seed=seed, device=device,
                  data_dir=data_dir,
                  diagnostics=True, diagnostics_every=DIAGNOSTICS_EVERY[profile])


def mean_beta_used(records: Sequence[dict[str, Any]], *, held: tuple[float, float] | None = None) -> float:
    """β̄ = mean over runs of the mean over recorded steps of β_t (the record's ``beta_mean`` series, a
    numel-weighted mean over all parameter tensors).

    ``held`` = (φ, β_h): a fraction φ of the parameters (by numel) is held at a constant β_h and never adapted
    (APT-Muon's AdamW group, register A7); β̄ is then the mean over the adapted tensors only,
    (β̄_all − φ β_h) / (1 − φ), which is the β the control must give to the tensors APT adapts.
    The fixed-β control runs at β̄ rounded to 0.01: if it matches APT, the adaptivity itself did not matter,
    only the smaller average β (TOOLCHAIN.md, noise and confounds).
    """
    series = [r["diagnostics"].get("beta_mean") for r in records]
    if not series or any(not s for s in series):
        raise ValueError("mean_beta_used needs records run with diagnostics (a 'beta_mean' series)")
    return beta_over_adapted(float(sum(sum(s) / len(s) for s in series) / len(series)), held)


def beta_over_adapted(overall: float, held: tuple[float, float] | None) -> float:
    """The mean β over the adapted tensors, (β̄_all − φ β_h) / (1 − φ), from the mean β over all tensors
    β̄_all and ``held`` = (φ, β_h) (see ``mean_beta_used``); ``overall`` itself when nothing is held (None)."""
    if held is None:
        return overall
    fraction, beta = held
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"mean_beta_used: held fraction must be in [0, 1), got {fraction}")
    return (overall - fraction * beta) / (1.0 - fraction)


def muon_companion_fraction(benchmark: str) -> float:
    """φ: the fraction of ``benchmark``'s model parameters (by numel) in Muon's AdamW companion group
    (``split_muon_params``: first layer, biases, task heads)."""
    from apt.benchmarks import benchmark_class
    from apt.optim.muon import split_muon_params

    model = benchmark_class(benchmark)().build_model()
    muon, adamw = split_muon_params(model.named_parameters(), model.muon_excluded_names())
    n_muon, n_adamw = (sum(p.numel() for _, p in part) for part in (muon, adamw))
    return n_adamw / (n_muon + n_adamw)


def ablation_held(family: str) -> tuple[float, float] | None:
    """(φ, β_h) of an ablation family for ``mean_beta_used``: APT-Muon's AdamW group stays at betas[0]
    (register A7), so its control's β is the mean over the adapted matrices; APT-Adam adapts every tensor (None)."""
    if family != "apt_muon":
        return None
    return muon_companion_fraction(ABLATION_BENCHMARK), float(DEFAULT_HP["apt_muon"]["betas"][0])


def fixed_beta_variant(default_records: Sequence[dict[str, Any]], optimizer: str,
                       held: tuple[float, float] | None = None) -> Variant:
    """The control arm: ``optimizer`` with β_min = β_max = β̄ of ``default_records`` (rounded to 0.01), over the
    adapted tensors when ``held`` is given (see ``mean_beta_used``)."""
    beta = round(mean_beta_used(default_records, held=held), 2)
    return Variant(f"fixed β = {beta:.2f} (APT's mean)", optimizer, (("beta_min", beta), ("beta_max", beta)),
                   FIXED_BETA_VARIES)


def ablation_arms(profile: str, *, results_dir: Path | None = None, device: str = "cpu",
                  data_dir: str | None = None) -> dict[str, list[tuple[Variant, Config]]]:
    """The arms of both ablations ('apt_adam', 'apt_muon') × seeds, with (variant, config) pairs.

    The fixed-β control arm is included once its default arm is stored for every seed of
    ``FIXED_BETA_SOURCE_SEEDS[profile]`` (its β is their β̄).
    """
    seeds = ABLATION_SEEDS[profile]
    # smoke: the base, the default and one changed rule per family exercise every code path in CI
    n_variants = 3 if profile == "smoke" else None
    arms: dict[str, list[tuple[Variant, Config]]] = {}
    for family, variants in (("apt_adam", APT_ADAM_VARIANTS), ("apt_muon", APT_MUON_VARIANTS)):
        pairs = [(v, ablation_config(v, s, profile, device=device, data_dir=data_dir))
                 for v in variants[:n_variants] for s in seeds]
        default = variants[1]
        default_paths = [record_path(c, results_dir) for v, c in pairs
                         if v == default and c.seed in FIXED_BETA_SOURCE_SEEDS[profile]]
        if all(p.exists() for p in default_paths):
            control = fixed_beta_variant([read_record(p) for p in default_paths], family, ablation_held(family))
            pairs += [(control, ablation_config(control, s, profile, device=device, data_dir=data_dir)) for s in seeds]
        arms[family] = pairs
    return arms


def ablation_baselines(profile: str, *, device: str = "cpu", data_dir: str | None = None) -> list[Config]:
    """The single-task runs the ablations' Δm% is measured against (those of the grid, for the ablation seeds)."""
    return [c for c in book_grids(profile)[ABLATION_BENCHMARK].configs(profile, device=device, data_dir=data_dir)
            if c.stl_task is not None and c.seed in ABLATION_SEEDS[profile]]


# ---- Chapter 7: the SGD step-scale control, a learning rate tuned per method ----

SGD_CONTROL_BENCHMARK = "multi_fashion"
# LS and the methods the book discusses most. Their directions keep each lineage's scale (MGDA and CAGrad × K,
# IMTL-G and FAMO with Σw = 1, PCGrad a sum, Nash-MTL and FairGrad unnormalised; PCGrad, CAGrad, Nash-MTL and
# FairGrad clipped to norm 1), so under plain SGD one learning rate gives them different step sizes; Adam and
# Muon do not see that scale.
SGD_CONTROL_METHODS: tuple[str, ...] = ("ls", "mgda", "pcgrad", "cagrad", "imtl_g", "nash_mtl", "famo", "fairgrad")
# Factor-2 steps: one step of the scan is exactly the halving that weights summing to 1 cause for K = 2 tasks.
# The top grew with the measurements, because an optimum at the end of a scan is not a tuned learning rate: the cpu
# scan over 0.025-0.2 chose 0.2 for 7 of the 8 methods (seeds 0-1); at 0.4, seed 0 still improved for 5 of them.
SGD_CONTROL_LRS: tuple[float, ...] = (0.025, 0.05, 0.1, 0.2, 0.4, 0.8)
# The chapter computes the control on the seeds that are complete in the store (``stored_step_scale_control``).
SGD_CONTROL_SEEDS: dict[str, tuple[int, ...]] = {"smoke": (0,), "cpu": MULTI_SEEDS, "full": MULTI_SEEDS}


def sgd_control_configs(profile: str, *, device: str = "cpu",
                        data_dir: str | None = None) -> dict[tuple[str, float, int], Config]:
    """(method, lr, seed) -> the plain-SGD run of the step-scale control on ``SGD_CONTROL_BENCHMARK``.

    smoke: LS and MGDA at two learning rates, one seed (every code path of the chapter's section in CI).
    """
    methods, lrs = SGD_CONTROL_METHODS, SGD_CONTROL_LRS
    if profile == "smoke":
        methods, lrs = methods[:2], lrs[1:3]
    return {(method, lr, seed): Config(benchmark=SGD_CONTROL_BENCHMARK, method=method, optimizer="sgd", lr=lr,
                                       profile=profile, seed=seed, device=device, data_dir=data_dir)
            for method in methods for lr in lrs for seed in SGD_CONTROL_SEEDS[profile]}


def book_configs(profile: str, *, benchmarks: Sequence[str] | None = None, seeds: Sequence[int] | None = None,
                 grids: bool = True, ablations: bool = True, controls: bool = True, results_dir: Path | None = None,
                 device: str = "cpu", data_dir: str | None = None) -> list[Config]:
    """Every run the book's result chapters read at ``profile`` (grids, then ablations, then the SGD control),
    seed-major, so that a sweep stopped half-way leaves complete seeds rather than complete methods, and within a
    seed the single-task baselines first, since no arm's Δm% can be computed without them.
    ``benchmarks`` selects grids, and the ablations and the SGD control when their benchmark is among them."""
    all_grids = book_grids(profile)
    unknown = sorted(set(benchmarks or ()) - set(all_grids))
    if unknown:
        raise ValueError(f"no {profile!r} book grid for benchmark(s) {unknown}; grids: {', '.join(all_grids)}")
    chosen = [all_grids[b] for b in (benchmarks or all_grids)] if grids else []
    configs = [c for g in chosen for c in g.configs(profile, device=device, data_dir=data_dir)]
    if ablations and (benchmarks is None or ABLATION_BENCHMARK in benchmarks):
        configs += [c for pairs in ablation_arms(profile, results_dir=results_dir, device=device,
                                                 data_dir=data_dir).values()
                    for _, c in pairs]
        configs += ablation_baselines(profile, device=device, data_dir=data_dir)
    if controls and (benchmarks is None or SGD_CONTROL_BENCHMARK in benchmarks):
        configs += list(sgd_control_configs(profile, device=device, data_dir=data_dir).values())
    configs = list({c.run_id: c for c in configs}.values())
    if seeds is not None:
        configs = [c for c in configs if c.seed in seeds]
    return sorted(configs, key=lambda c: (c.seed, c.stl_task is None))


# ---- Chapter 3: the diagnostics runs of claim 1 ----

CLAIM1_BENCHMARK = "multi_mnist"
CLAIM1_BENCHMARKS: tuple[str, ...] = ("multi_mnist", "qm9")
CLAIM1_METHODS: tuple[str, ...] = ("ls", "mgda")
CLAIM1_OPTIMIZERS: tuple[str, ...] = ("sgd", "sgdm", "adam", "muon", "apt_adam")
# Untuned: the protocol's 1e-3 for the adaptive optimizers; for the SGD variants 0.05 on Multi-MNIST (a common
# LeNet choice) and 0.01 on QM9 (the MPNN regresses 11 standardised targets, a summed loss of 11 terms).
CLAIM1_LR: dict[str, dict[str, float]] = {
    "multi_mnist": {"sgd": 0.05, "sgdm": 0.05, "adam": 1e-3, "muon": 1e-3, "apt_adam": 1e-3},
    "qm9": {"sgd": 0.01, "sgdm": 0.01, "adam": 1e-3, "muon": 1e-3, "apt_adam": 1e-3},
}
# QM9 at the cpu profile has 68 steps (2,000 graphs, batch 120, 4 epochs): every step is recorded there.
CLAIM1_DIAGNOSTICS_EVERY: dict[str, dict[str, int]] = {
    "multi_mnist": {"smoke": 1, "cpu": 5, "full": 50},
    "qm9": {"smoke": 1, "cpu": 1, "full": 50},
}
# On QM9, MGDA solves on the task gradients w.r.t. the shared 64-d representation (MGDA-UB): 11 parameter-level
# task gradients would make each run ~8× an LS run (TOOLCHAIN.md). The optimizer still sees a parameter gradient.
CLAIM1_REP_GRAD: dict[str, bool] = {"multi_mnist": False, "qm9": True}
# The per-task alignment (chapter 4 reads it from the Multi-MNIST runs) is not recorded on QM9: its task Jacobian
# would cost 11 extra backward passes at every recorded step (Config.diagnostics_alignment).


def claim1_configs(profile: str, seed: int = 0, *, benchmark: str = CLAIM1_BENCHMARK, device: str = "cpu",
                   data_dir: str | None = None) -> dict[tuple[str, str], Config]:
    """(method, optimizer) -> the diagnostics run of chapter 3 on ``benchmark`` (instant-gradient share and update
    fidelity)."""
    if benchmark not in CLAIM1_BENCHMARKS:
        raise ValueError(f"claim1_configs benchmark={benchmark!r}: the chapter runs {list(CLAIM1_BENCHMARKS)}")
    return {
        (method, optimizer): Config(benchmark=benchmark, method=method, optimizer=optimizer,
                                    lr=CLAIM1_LR[benchmark][optimizer], profile=profile, seed=seed, device=device,
                                    data_dir=data_dir, diagnostics=True,
                                    diagnostics_every=CLAIM1_DIAGNOSTICS_EVERY[benchmark][profile],
                                    diagnostics_alignment=benchmark != "qm9",
                                    rep_grad=CLAIM1_REP_GRAD[benchmark] and method != "ls")
        for method in CLAIM1_METHODS for optimizer in CLAIM1_OPTIMIZERS
    }


# ---- Chapter 4: the diagnostics runs of claim 2 (chapter 3 reads them too, for claim 1 across methods) ----

CLAIM2_BENCHMARK = "multi_mnist"
CLAIM2_METHODS: tuple[str, ...] = ("ls", "mgda", "imtl_g", "nash_mtl", "fairgrad")
CLAIM2_OPTIMIZERS: tuple[str, ...] = ("adam", "muon")
CLAIM2_LR = 1e-3  # the protocol's, for both optimizers (Muon's step scaled to AdamW's RMS, register O3)
# The task Jacobian of the alignment costs K backward passes on each recorded step; Muon's singular values are
# recorded more rarely (an SVD per matrix).
CLAIM2_DIAGNOSTICS_EVERY: dict[str, int] = {"smoke": 1, "cpu": 5, "full": 50}
CLAIM2_SPECTRUM_EVERY: dict[str, int] = {"smoke": 4, "cpu": 150, "full": 1500}


def claim2_seeds(seed: int) -> tuple[int, int]:
    """The two seeds of claim 2's runs: ``seed`` and the next one, shared across arms."""
    return seed, seed + 1


def claim2_configs(profile: str, seed: int = 0, *, device: str = "cpu",
                   data_dir: str | None = None) -> dict[tuple[str, str, int], Config]:
    """(method, optimizer, seed) -> the diagnostics run of chapter 4 on Multi-MNIST (per-task alignment, instant-
    gradient share and update fidelity; Muon's singular spectra)."""
    def config(method: str, optimizer: str, run_seed: int) -> Config:
        spectra = {"spectrum_every": CLAIM2_SPECTRUM_EVERY[profile]} if optimizer == "muon" else {}
        return Config(benchmark=CLAIM2_BENCHMARK, method=method, optimizer=optimizer, lr=CLAIM2_LR,
                      optimizer_hp=spectra, profile=profile, seed=run_seed, device=device, data_dir=data_dir,
                      diagnostics=True, diagnostics_every=CLAIM2_DIAGNOSTICS_EVERY[profile])

    return {(m, o, s): config(m, o, s) for m in CLAIM2_METHODS for o in CLAIM2_OPTIMIZERS for s in claim2_seeds(seed)}
