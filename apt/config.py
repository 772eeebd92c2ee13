"""The configuration of one run: a typed, validated, hashable dataclass (no string-keyed argparse soup).

A config says everything that determines a run's numbers: benchmark and profile, method and its
hyperparameters, optimizer and its hyperparameters (APT settings included), seed, device, protocol
overrides. ``config_hash`` is computed from exactly those fields; where data is read from and whether
progress bars are shown are not part of it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

HASHED_FIELDS = (
    "benchmark",
    "profile",
    "method",
    "method_hp",
    "optimizer",
    "optimizer_hp",
    "lr",
    "seed",
    "device",
    "stl_task",
    "rep_grad",
    "protocol_overrides",
    "diagnostics",
    "diagnostics_every",
)
# Fields added after records were stored: hashed only when they differ from this default, so that every record
# made before a field existed (necessarily with its default behaviour) keeps its run id.
LATER_HASHED_FIELDS: dict[str, Any] = {"diagnostics_alignment": True}


@dataclass(frozen=True)
class Config:
    """One run.

    benchmark: a name of ``apt.benchmarks.BENCHMARKS``; profile: ``full`` | ``cpu`` | ``smoke``.
    method / method_hp: ``apt.mtl.make_method(method, K, **method_hp)``.
    optimizer / optimizer_hp: ``apt.optim.make_optimizer(optimizer, ..., lr=lr, **optimizer_hp)``;
      lr None = the protocol's learning rate.
    stl_task: None for an MTL run; k for the single-task baseline of task k (only ℓ_k is trained; the
      method must be ``ls``).
    rep_grad: task gradients w.r.t. the shared representation instead of the shared parameters
      (only for methods that support it).
    protocol_overrides: protocol fields replaced on top of the profile (e.g. {"epochs": 2}).
    diagnostics: record the optimizer diagnostics every ``diagnostics_every`` steps.
    diagnostics_alignment: with diagnostics, also record the per-task alignment cos(Δθ, −g_k) (register G4);
      it needs the task Jacobian, K extra backward passes at each recorded step of a loss-based method (on QM9,
      K = 11 makes such a step ~9× a plain one). The optimizer diagnostics (share, fidelity, β) do not need it.
    """

    benchmark: str
    method: str = "ls"
    method_hp: Mapping[str, Any] = field(default_factory=dict)
    optimizer: str = "adam"
    optimizer_hp: Mapping[str, Any] = field(default_factory=dict)
    lr: float | None = None
    profile: str = "cpu"
    seed: int = 0
    device: str = "cpu"
    stl_task: int | None = None
    rep_grad: bool = False
    protocol_overrides: Mapping[str, Any] = field(default_factory=dict)
    diagnostics: bool = False
    diagnostics_every: int = 1
    diagnostics_alignment: bool = True
    data_dir: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Every field, except a later field at its default (``LATER_HASHED_FIELDS``): records written before it
        existed and after it was added then agree, and ``from_dict`` restores the default."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)
                if not (f.name in LATER_HASHED_FIELDS and getattr(self, f.name) == LATER_HASHED_FIELDS[f.name])}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Config:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown config field(s) {unknown}; known fields: {sorted(known)}")
        return cls(**dict(values))

    @property
    def config_hash(self) -> str:
        """sha256 (first 12 hex digits) of the canonical JSON of the fields that determine the numbers."""
        hashed = {name: _plain(getattr(self, name)) for name in HASHED_FIELDS}
        hashed |= {name: _plain(getattr(self, name)) for name, default in LATER_HASHED_FIELDS.items()
                   if getattr(self, name) != default}
        canonical = json.dumps(hashed, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    @property
    def run_id(self) -> str:
        """A readable, unique file stem: ``<method>-<optimizer>-s<seed>-<hash>`` (``stl<k>`` for baselines)."""
        who = f"stl{self.stl_task}" if self.stl_task is not None else self.method
        return f"{who}-{self.optimizer}-s{self.seed}-{self.config_hash}"


def _plain(value: Any) -> Any:
    """JSON-able, order-independent form of a config value (mappings become sorted dicts)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def validate(config: Config) -> None:
    """Fail before training, with a message naming the field, on anything that cannot run."""
    from apt.benchmarks import BENCHMARKS, benchmark_class
    from apt.benchmarks.base import PROFILES
    from apt.mtl import METHODS, method_info
    from apt.optim import OPTIMIZERS

    if config.benchmark not in BENCHMARKS:
        raise ValueError(f"config field benchmark={config.benchmark!r}: known benchmarks {list(BENCHMARKS)}")
    if config.profile not in PROFILES:
        raise ValueError(f"config field profile={config.profile!r}: known profiles {list(PROFILES)}")
    if config.method not in METHODS:
        raise ValueError(f"config field method={config.method!r}: known methods {list(METHODS)}")
    if config.optimizer not in OPTIMIZERS:
        raise ValueError(f"config field optimizer={config.optimizer!r}: known optimizers {list(OPTIMIZERS)}")
    if not isinstance(config.seed, int) or config.seed < 0:
        raise ValueError(f"config field seed={config.seed!r}: must be an integer >= 0")
    if config.lr is not None and not (isinstance(config.lr, (int, float)) and config.lr > 0):
        raise ValueError(f"config field lr={config.lr!r}: must be None (protocol lr) or > 0")
    if not isinstance(config.diagnostics_alignment, bool):
        raise ValueError(f"config field diagnostics_alignment={config.diagnostics_alignment!r}: must be True or False")
    if not isinstance(config.diagnostics_every, int) or config.diagnostics_every < 1:
        raise ValueError(f"config field diagnostics_every={config.diagnostics_every!r}: must be an integer >= 1")
    if not config.device.startswith(("cpu", "cuda", "mps")):
        raise ValueError(f"config field device={config.device!r}: expected cpu, cuda[:i] or mps")
    bench = benchmark_class(config.benchmark)
    protocol = bench.protocol.with_overrides(bench.profiles.get(config.profile, {}))
    if config.profile not in bench.profiles:
        raise ValueError(
            f"config field profile={config.profile!r}: benchmark {config.benchmark!r} has profiles {list(bench.profiles)}"
        )
    protocol.with_overrides(config.protocol_overrides)  # raises naming a bad field or value
    n_tasks = len(bench.task_names)
    if config.stl_task is not None:
        if not isinstance(config.stl_task, int) or not 0 <= config.stl_task < n_tasks:
            raise ValueError(f"config field stl_task={config.stl_task!r}: must be None or in [0, {n_tasks - 1}]")
        if config.method != "ls":
            raise ValueError(f"config field method={config.method!r}: a single-task baseline (stl_task set) uses 'ls'")
    if config.rep_grad and not bench.supports_rep_grad:
        raise ValueError(f"config field rep_grad=True: benchmark {config.benchmark!r} has no representation that covers "
                         f"every shared parameter")
    if config.rep_grad and not method_info(config.method).supports_features:
        raise ValueError(f"config field rep_grad=True: method {config.method!r} does not support representation gradients")
    _validate_hyperparameters(config, n_tasks, protocol.lr, protocol.weight_decay)


def _validate_hyperparameters(config: Config, n_tasks: int, protocol_lr: float, weight_decay: float) -> None:
    """Build the method and the optimizer once on a stand-in: their constructors check hyperparameter names and
    ranges, which a run would otherwise reach only after loading its data (minutes for QM9)."""
    import torch

    from apt.mtl import make_method
    from apt.optim import make_optimizer

    n_trained = 1 if config.stl_task is not None else n_tasks
    try:
        make_method(config.method, n_trained, **dict(config.method_hp))
    except (TypeError, ValueError) as error:
        raise ValueError(f"config field method_hp={dict(config.method_hp)!r} of method {config.method!r}: {error}") from None
    # a 2 × 2 matrix, so that Muon's matrix group is not empty
    stand_in = [("stand_in.weight", torch.nn.Parameter(torch.zeros(2, 2)))]
    try:
        make_optimizer(config.optimizer, stand_in, lr=config.lr if config.lr is not None else protocol_lr,
                       weight_decay=weight_decay, **dict(config.optimizer_hp))
    except (TypeError, ValueError) as error:
        raise ValueError(f"config field optimizer_hp={dict(config.optimizer_hp)!r} of optimizer "
                         f"{config.optimizer!r}: {error}") from None
