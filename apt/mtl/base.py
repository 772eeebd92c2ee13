"""The Method base classes every MTL method derives from, and hyperparameter checks.

Three kinds of method (DESIGN.md §2):
  LossMethod      weights from the losses only: one backward of the objective (LS, SI, RLW, DWA, UW, FAMO).
  GramianMethod   weights w [K] from the task Gramian G = J Jᵀ [K, K]; direction d = Jᵀ w (MGDA, PCGrad,
                  CAGrad, IMTL-G, Nash-MTL, FairGrad, UPGrad).
  JacobianMethod  direction built coordinate-wise from J itself, not a weighted sum (GradDrop).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from apt.errors import SolverError

SOLVER_FAILURE_POLICIES: tuple[str, ...] = ("warn", "raise")


class SolverFailureWarning(RuntimeWarning):
    """A numerical solver inside an MTL method failed at some step; the message says how it was handled."""


def check_int(name: str, value: Any, minimum: int) -> int:
    """An integer hyperparameter ≥ minimum, or ValueError naming it, its value and the allowed range."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"hyperparameter {name}={value!r}: must be an integer >= {minimum}")
    return value


def check_float(name: str, value: Any, *, low: float = -math.inf, high: float = math.inf,
                low_open: bool = False, high_open: bool = False) -> float:
    """A finite real hyperparameter in the stated interval, or ValueError naming it and the interval."""
    interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"hyperparameter {name}={value!r}: must be a finite real number in {interval}")
    below = value <= low if low_open else value < low
    above = value >= high if high_open else value > high
    if below or above:
        raise ValueError(f"hyperparameter {name}={value!r}: must be in {interval}")
    return float(value)


def check_choice(name: str, value: Any, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise ValueError(f"hyperparameter {name}={value!r}: allowed values {tuple(allowed)}")
    return value


def solve_quietly(problem: Any, solver: str) -> None:
    """problem.solve(solver=...) without cvxpy's own "may be inaccurate" warning: callers check the status."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Solution may be inaccurate", category=UserWarning)
        problem.solve(solver=solver)


class Method:
    """An MTL method for K tasks: turns K task losses (or their gradients) into one update direction.

    Every method takes ``max_norm`` (≥ 0; 0 = off): after the aggregated gradient is written into the shared
    parameters' ``.grad``, their global norm is clipped to it (``torch.nn.utils.clip_grad_norm_``). This is the
    lineage's clipping done where it has an effect: the FAMO/FairGrad base class clipped *before* backward,
    a no-op (Cranial-XIX/FAMO issue #4).

    ``generator`` drives every random draw of a method (RLW's weights, PCGrad's orders, GradDrop's
    thresholds); None gives ``torch.Generator().manual_seed(0)`` so that runs are reproducible by default.
    """

    name: ClassVar[str]
    kind: ClassVar[str]
    paper: ClassVar[str]
    supports_features: ClassVar[bool] = False
    requires_after_step: ClassVar[bool] = False

    def __init__(self, n_tasks: int, *, generator: torch.Generator | None = None, max_norm: float = 0.0) -> None:
        self.n_tasks = check_int("n_tasks", n_tasks, 1)
        self.max_norm = check_float("max_norm", max_norm, low=0.0)
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)
        self.solver_failures_last_step = 0

    def parameters(self) -> list[nn.Parameter]:
        """Learnable method parameters (UW's log-variances); the runner optimizes them. [] for most methods."""
        return []

    def after_step(self, new_losses: Tensor) -> None:
        """Post-step update with the losses re-evaluated after the optimizer step (FAMO). Others ignore it."""
        self._check_losses_shape(new_losses)

    def end_epoch(self, mean_epoch_losses: Tensor) -> None:
        """Epoch-level update with the mean training losses of the epoch (DWA). Others ignore it."""
        self._check_losses_shape(mean_epoch_losses)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly after a restart (subclasses add their own state)."""
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])

    def _check_losses_shape(self, losses: Tensor) -> Tensor:
        losses = torch.as_tensor(losses).detach()
        if losses.shape != (self.n_tasks,):
            raise ValueError(f"{self.name}: expected a tensor of {self.n_tasks} losses, got shape {tuple(losses.shape)}")
        return losses

    def _solver_failed(self, reason: str, *, policy: str, step: int | None, fallback: str) -> None:
        """Report a failed solve: raise SolverError or warn (SolverFailureWarning) and count it."""
        where = f"{self.name} at step {step}" if step is not None else self.name
        if policy == "raise":
            raise SolverError(f"{where}: solver failed ({reason})")
        self.solver_failures_last_step += 1
        warnings.warn(f"{where}: solver failed ({reason}); {fallback}", SolverFailureWarning, stacklevel=3)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_tasks={self.n_tasks}, max_norm={self.max_norm})"


class LossMethod(Method):
    """A method that needs the losses only: ``weigh`` gives the objective to back-propagate."""

    kind = "loss"

    def weigh(self, losses: Tensor) -> tuple[Tensor, Tensor]:
        """(objective, weights): a scalar whose gradient is Σ_k w_k ∇ℓ_k, and w [K] detached (diagnostics)."""
        raise NotImplementedError(f"{type(self).__name__} must implement weigh()")


class GradientMethod(Method):
    """A method that needs the task gradients (rows of J [K, P])."""

    kind = "gradient"


class GramianMethod(GradientMethod):
    """A gradient method whose direction is d = Jᵀ w with weights w computed from G = J Jᵀ only."""

    def reuse_weights(self) -> Tensor | None:
        """Weights to reuse without computing J this step (Nash-MTL's update_weights_every), else None."""
        return None

    def weights_from_gramian(self, gramian: Tensor, *, step: int | None = None) -> Tensor:
        """w [K] (float64) from G [K, K] (float64, symmetric PSD)."""
        raise NotImplementedError(f"{type(self).__name__} must implement weights_from_gramian()")


class JacobianMethod(GradientMethod):
    """A gradient method that combines J coordinate by coordinate (its direction is not Jᵀ w)."""

    def aggregate_blocks(self, blocks: Sequence[Tensor]) -> list[Tensor]:
        """Per-block directions: blocks[i] is [K, *shape_i] (task gradients of one tensor) -> [*shape_i]."""
        raise NotImplementedError(f"{type(self).__name__} must implement aggregate_blocks()")
