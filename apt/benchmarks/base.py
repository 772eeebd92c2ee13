"""The contract every benchmark implements, and the profile mechanism.

A benchmark = data splits + an MTL model (shared trunk, K heads) + K losses + metrics + the published
training protocol. Profiles (`full`, `cpu`, `smoke`) are named overrides of that one protocol
(DESIGN.md §4): nothing else differs between them.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from apt.data_dir import data_dir as resolve_data_dir

PROFILES: tuple[str, ...] = ("full", "cpu", "smoke")
SELECTION_RULES: tuple[str, ...] = ("last_k", "best_val_delta_m", "best_val_mean")
SCHEDULERS: tuple[str, ...] = ("none", "step", "plateau")


@dataclass(frozen=True)
class Protocol:
    """A benchmark's training protocol. The class attribute ``Benchmark.protocol`` is the published one.

    n_train / n_val / n_test: None = every sample of the split; an int takes a seeded subset.
    selection: how the reported test metrics are chosen (BENCHMARKS.md §1):
      ``last_k``           mean of the test metrics of the last ``selection_k`` epochs;
      ``best_val_delta_m`` test metrics at the epoch of lowest validation Δm% (against ``published_stl``);
      ``best_val_mean``    test metrics at the epoch of highest mean validation metric.
    scheduler: ``none`` | ``step`` (StepLR, kwargs step_size, gamma) | ``plateau`` (ReduceLROnPlateau
      on validation Δm%, kwargs factor, patience, min_lr).
    """

    epochs: int
    batch_size: int
    lr: float
    optimizer: str = "adam"
    weight_decay: float = 0.0
    scheduler: str = "none"
    scheduler_kwargs: Mapping[str, Any] = field(default_factory=dict)
    seeds: tuple[int, ...] = (0, 1, 2)
    selection: str = "last_k"
    selection_k: int = 1
    method_params_lr: float = 0.025
    n_train: int | None = None
    n_val: int | None = None
    n_test: int | None = None

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "selection_k"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"protocol field {name}={value!r}: must be an integer >= 1")
        for name in ("n_train", "n_val", "n_test"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"protocol field {name}={value!r}: must be None (all) or an integer >= 1")
        if not self.lr > 0:
            raise ValueError(f"protocol field lr={self.lr!r}: must be > 0")
        if self.selection not in SELECTION_RULES:
            raise ValueError(f"protocol field selection={self.selection!r}: allowed {SELECTION_RULES}")
        if self.scheduler not in SCHEDULERS:
            raise ValueError(f"protocol field scheduler={self.scheduler!r}: allowed {SCHEDULERS}")

    def with_overrides(self, overrides: Mapping[str, Any]) -> Protocol:
        """A copy with some fields replaced; unknown field names raise ValueError naming them."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown protocol field(s) {unknown}; known fields: {sorted(known)}")
        return dataclasses.replace(self, **dict(overrides))


@dataclass
class Splits:
    """The datasets of one run. ``val`` is None where the protocol has no validation split."""

    train: Dataset
    val: Dataset | None
    test: Dataset


class MTLModel(nn.Module):
    """A shared trunk and K task heads.

    outputs = heads_forward(shared_forward(inputs)), a list of K tensors.
    Subclasses set ``self.shared`` (nn.Module) and ``self.heads`` (nn.ModuleList of K modules), or
    override the methods below when the split is not that simple (MTAN's task attention).
    """

    shared: nn.Module
    heads: nn.ModuleList

    def shared_forward(self, inputs: Any) -> Tensor | tuple[Tensor, ...]:
        """Features z = f_shared(x): the representation every head reads."""
        return self.shared(inputs)

    def heads_forward(self, features: Tensor | tuple[Tensor, ...]) -> list[Tensor]:
        """Task outputs [h_1(z), ..., h_K(z)]."""
        return [head(features) for head in self.heads]

    def forward(self, inputs: Any) -> list[Tensor]:
        return self.heads_forward(self.shared_forward(inputs))

    def shared_parameters(self) -> list[nn.Parameter]:
        """θ_shared: the parameters that MTL methods aggregate task gradients for."""
        return list(self.shared.parameters())

    def task_parameters(self) -> list[list[nn.Parameter]]:
        """θ_1 … θ_K: each head's own parameters (they receive only their task's gradient)."""
        return [list(head.parameters()) for head in self.heads]

    def muon_excluded_names(self) -> set[str]:
        """Names (as in ``named_parameters()``) of ≥2-D weights that Muon must not take.

        Keller Jordan's advice: Muon for hidden weights only; the first layer (input embedding) and the
        task heads go to AdamW. Subclasses add their first layer; heads are excluded here.
        """
        return {f"heads.{name}" for name, _ in self.heads.named_parameters()}


class MetricAccumulator(ABC):
    """Accumulates a benchmark's metrics over the batches of one split."""

    @abstractmethod
    def update(self, outputs: Sequence[Tensor], targets: Any) -> None:
        """Add one batch (model outputs, targets as returned by ``Benchmark.inputs_targets``)."""

    @abstractmethod
    def compute(self) -> dict[str, float]:
        """Metric name -> value, with the keys (and order) of ``Benchmark.metric_names``."""


class Benchmark(ABC):
    """One benchmark: data, model, losses and metrics, and its protocol and profiles.

    Class attributes describe it; the instance knows where its data lives.
      task_names [K], metric_names [M], metric_higher_better [M] (SIGN), metric_task [M] (task index of
      each metric), protocol (the published `full` protocol), profiles (name -> overrides of protocol,
      'full' is always {}), profile_notes (name -> why these sizes), published_stl [M] or None (the
      published single-task BASE vector, valid for the `full` profile only).
    """

    name: ClassVar[str]
    task_names: ClassVar[tuple[str, ...]]
    metric_names: ClassVar[tuple[str, ...]]
    metric_higher_better: ClassVar[tuple[bool, ...]]
    metric_task: ClassVar[tuple[int, ...]]
    protocol: ClassVar[Protocol]
    profiles: ClassVar[Mapping[str, Mapping[str, Any]]]
    profile_notes: ClassVar[Mapping[str, str]] = {}
    published_stl: ClassVar[tuple[float, ...] | None] = None
    # True when the features returned by ``MTLModel.shared_forward`` are the *last* shared computation, so
    # that gradients w.r.t. them (representation-level, MGDA-UB style) cover every shared parameter.
    supports_rep_grad: ClassVar[bool] = True

    def __init__(self, data_dir: str | Path | None = None) -> None:
        self.data_dir = resolve_data_dir(data_dir)

    @property
    def n_tasks(self) -> int:
        return len(self.task_names)

    def protocol_for(self, profile: str) -> Protocol:
        """The protocol with the profile's overrides applied."""
        if profile not in self.profiles:
            raise ValueError(
                f"benchmark {self.name!r} has no profile {profile!r}; profiles: {', '.join(self.profiles)}"
            )
        return self.protocol.with_overrides(self.profiles[profile])

    @abstractmethod
    def splits(self, protocol: Protocol, seed: int) -> Splits:
        """Train/val/test datasets, subsampled to the protocol's n_* with a generator seeded by ``seed``."""

    def loader(self, dataset: Dataset, batch_size: int, *, shuffle: bool, generator: torch.Generator | None) -> Iterable:
        """Batches of ``dataset``; the order depends only on ``generator`` (single process, no workers)."""
        return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator, num_workers=0)

    @abstractmethod
    def build_model(self) -> MTLModel:
        """A freshly initialised model (initialisation uses torch's global RNG: seed it before)."""

    def inputs_targets(self, batch: Any, device: torch.device | str) -> tuple[Any, Any]:
        """(inputs, targets) of one batch, moved to ``device``. Default: a (x, y...) tuple of tensors."""
        x, *ys = batch
        return x.to(device), [y.to(device) for y in ys]

    @abstractmethod
    def losses(self, outputs: Sequence[Tensor], targets: Any) -> Tensor:
        """The K task losses ℓ = [ℓ_1 … ℓ_K] of one batch: Tensor [K], differentiable."""

    @abstractmethod
    def metric_accumulator(self) -> MetricAccumulator:
        """A fresh accumulator for one evaluation pass."""

    @torch.no_grad()
    def evaluate(
        self, model: nn.Module, dataset: Dataset, batch_size: int, device: torch.device | str
    ) -> dict[str, float]:
        """The benchmark's metrics of ``model`` on ``dataset`` (eval mode, no gradients, in order; the model's
        train/eval mode is restored afterwards)."""
        was_training = model.training
        model.eval()
        accumulator = self.metric_accumulator()
        for batch in self.loader(dataset, batch_size, shuffle=False, generator=None):
            inputs, targets = self.inputs_targets(batch, device)
            accumulator.update(model(inputs), targets)
        model.train(was_training)
        return accumulator.compute()
