"""Loss-based MTL methods: LS, SI, RLW, DWA, UW, FAMO. They need the K losses only, never J.

Each ``weigh(losses)`` returns the scalar objective whose gradient the step uses and the effective weights
w [K] on the task gradients (∇objective = Σ_k w_k ∇ℓ_k), detached, for diagnostics.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from apt.mtl.base import LossMethod, check_float, check_int


def _require_above(method: str, losses: Tensor, bound: Tensor, why: str) -> None:
    """ValueError naming the first task whose loss is not above its bound."""
    below = (losses.detach() <= bound).nonzero().flatten().tolist()
    if below:
        k = below[0]
        raise ValueError(f"{method}: {why}; task index {k} has loss {float(losses[k])}")


class LinearScalarization(LossMethod):
    """LS: the sum of the task losses, objective = Σ_k ℓ_k, w = 1.

    Reference: the lineage ``LinearScalarization`` (task_weights = 1). The usual baseline; it has no paper.
    """

    name = "ls"
    paper = "Linear scalarization (equal weights), the standard baseline; no single paper"

    def weigh(self, losses: Tensor) -> tuple[Tensor, Tensor]:
        return losses.sum(), torch.ones_like(losses).detach()


class ScaleInvariant(LossMethod):
    """SI: scale-invariant linear scalarization, objective = Σ_k log ℓ_k, w_k = 1/ℓ_k.

    Reference: the lineage ``ScaleInvariantLinearScalarization`` (introduced as a baseline by Nash-MTL,
    Navon et al. ICML 2022, arXiv 2202.01017). Needs every ℓ_k > 0 (ValueError otherwise).
    """

    name = "si"
    paper = "Navon et al., Multi-Task Learning as a Bargaining Game, ICML 2022, arXiv:2202.01017 (SI baseline)"

    def weigh(self, losses: Tensor) -> tuple[Tensor, Tensor]:
        _require_above(self.name, losses, torch.zeros_like(losses), "log ℓ_k needs every loss > 0")
        return torch.log(losses).sum(), (1.0 / losses).detach()


class RandomLossWeighting(LossMethod):
    """RLW: random loss weights each step, w = softmax(ε), ε ~ N(0, I_K) from ``generator``; objective = wᵀℓ.

    Paper: Lin et al., "Reasonable Effectiveness of Random Weighting: A Litmus Test for Multi-Task Learning",
    TMLR 2022 (arXiv 2111.10603). Reference: the lineage / LibMTL ``RLW`` (softmax of a standard normal draw).
    """

    name = "rlw"
    paper = ("Lin et al., Reasonable Effectiveness of Random Weighting: A Litmus Test for Multi-Task Learning, "
             "TMLR 2022, arXiv:2111.10603")

    def weigh(self, losses: Tensor) -> tuple[Tensor, Tensor]:
        draw = torch.randn(self.n_tasks, generator=self.generator, dtype=torch.float64)
        weights = F.softmax(draw, dim=0).to(dtype=losses.dtype, device=losses.device)
        return (weights * losses).sum(), weights


class DynamicWeightAverage(LossMethod):
    """DWA: weights from the rate of change of each task's loss, temperature T = 2.

        r_k = L_k(t−1) / L_k(t−2),   w_k = K exp(r_k / T) / Σ_j exp(r_j / T),   objective = Σ_k w_k ℓ_k
        (w = 1 until two loss averages are known)

    Paper: Liu et al., "End-to-End Multi-Task Learning with Attention", CVPR 2019 (arXiv 1803.10704).
    ``iteration_window=None`` (default) follows the paper and LibMTL: L_k(t) is the mean training loss of
    epoch t, fed through ``end_epoch``. ``iteration_window=n`` follows the Nash-MTL/FAMO lineage's variant:
    L(t−1), L(t−2) are the means of the last n and the n before them of a FIFO of 2n per-step losses
    (initialized with ones), weights updated once more than n steps were seen, and the objective is
    (1/K) Σ_k w_k ℓ_k (the lineage's ``mean``), i.e. effective weights w/K.
    """

    name = "dwa"
    paper = "Liu et al., End-to-End Multi-Task Learning with Attention, CVPR 2019, arXiv:1803.10704"

    def __init__(self, n_tasks: int, *, generator: torch.Generator | None = None, temperature: float = 2.0,
                 iteration_window: int | None = None, max_norm: float = 0.0) -> None:
        super().__init__(n_tasks, generator=generator, max_norm=max_norm)
        self.temperature = check_float("temperature", temperature, low=0.0, low_open=True)
        self.iteration_window = None if iteration_window is None else check_int("iteration_window", iteration_window, 1)
        self.epoch_losses: list[Tensor] = []
        window = self.iteration_window or 0
        self.step_losses = torch.ones(2 * window, n_tasks, dtype=torch.float64)
        self.steps_seen = 0
        self.current_weights = torch.ones(n_tasks, dtype=torch.float64)

    def _softmax_weights(self, recent: Tensor, older: Tensor) -> Tensor:
        return self.n_tasks * F.softmax((recent / older) / self.temperature, dim=0)

    def weigh(self, losses: Tensor) -> tuple[Tensor, Tensor]:
        if self.iteration_window is None:
            weights = self.current_weights.to(dtype=losses.dtype, device=losses.device)
            return (weights * losses).sum(), weights
        window = self.iteration_window
        self.step_losses = torch.roll(self.step_losses, -1, dims=0)
        self.step_losses[-1] = losses.detach().to(torch.float64).cpu()
        if self.steps_seen > window:
            self.current_weights = self._softmax_weights(self.step_losses[window:].mean(0),
                                                         self.step_losses[:window].mean(0))
        self.steps_seen += 1
        effective = (self.current_weights / self.n_tasks).to(dtype=losses.dtype, device=losses.device)
        return (effective * losses).sum(), effective

    def end_epoch(self, mean_epoch_losses: Tensor) -> None:
        """Append the epoch's mean training losses [K]; the next epoch's weights use the last two."""
        epoch_losses = self._check_losses_shape(mean_epoch_losses).to(torch.float64).cpu()
        if self.iteration_window is not None:
            return
        if not torch.isfinite(epoch_losses).all() or (epoch_losses <= 0).any():
            raise ValueError(f"dwa: mean epoch losses must be finite and > 0, got {epoch_losses.tolist()}")
        self.epoch_losses = [*self.epoch_losses[-1:], epoch_losses]
        if len(self.epoch_losses) == 2:
            self.current_weights = self._softmax_weights(self.epoch_losses[1], self.epoch_losses[0])

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "epoch_losses": [t.clone() for t in self.epoch_losses],
                "step_losses": self.step_losses.clone(), "steps_seen": self.steps_seen,
                "current_weights": self.current_weights.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.epoch_losses = [t.clone() for t in state["epoch_losses"]]
        self.step_losses = state["step_losses"].clone()
        self.steps_seen = int(state["steps_seen"])
        self.current_weights = state["current_weights"].clone()


class UncertaintyWeighting(LossMethod):
    """UW: homoscedastic-uncertainty weighting with learnable log-variances s [K] (init 0).

        objective = Σ_k ½ (exp(−s_k) ℓ_k + s_k),   w_k = ½ exp(−s_k)

    s is returned by ``parameters()``; the runner optimizes it (lineage: Adam, lr ``method_params_lr``).
    Paper: Kendall et al., "Multi-Task Learning Using Uncertainty to Weigh Losses for Scene Geometry and
    Semantics", CVPR 2018 (arXiv 1705.07115). Reference: the lineage ``Uncertainty`` (which reports exp(−s) as
    "not exactly task weights"; we report the effective weights ½ exp(−s)).
    """

    name = "uw"
    paper = ("Kendall et al., Multi-Task Learning Using Uncertainty to Weigh Losses for Scene Geometry and "
             "Semantics, CVPR 2018, arXiv:1705.07115")

    def __init__(self, n_tasks: int, *, generator: torch.Generator | None = None, max_norm: float = 0.0) -> None:
        super().__init__(n_tasks, generator=generator, max_norm=max_norm)
        self.log_variances = nn.Parameter(torch.zeros(n_tasks))

    def parameters(self) -> list[nn.Parameter]:
        return [self.log_variances]

    def weigh(self, losses: Tensor) -> tuple[Tensor, Tensor]:
        s = self.log_variances.to(device=losses.device)
        objective = 0.5 * (torch.exp(-s) * losses + s).sum()
        return objective, (0.5 * torch.exp(-s)).detach().to(losses.dtype)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "log_variances": self.log_variances.detach().clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        with torch.no_grad():
            self.log_variances.copy_(state["log_variances"])


class FAMO(LossMethod):
    """FAMO: fast adaptive multitask optimization, γ = 1e-3, logit lr 0.025.

        z = softmax(ξ),  D_k = ℓ_k − ℓ_k^min + 1e-8,  c = Σ_k z_k / D_k (detached)
        objective = Σ_k z_k log D_k / c,   effective weights w_k = z_k / (c D_k)   (Σ w = 1)
        after the optimizer step, with the losses ℓ' re-evaluated on the same batch:
        δ_k = log D_k − log(ℓ'_k − ℓ_k^min + 1e-8),   ∇_ξ = (∂z/∂ξ)ᵀ δ,   one Adam(lr, weight_decay=γ) step on ξ

    Paper: Liu et al., "FAMO: Fast Adaptive Multitask Optimization", NeurIPS 2023 (arXiv 2306.03792).
    Reference: Cranial-XIX/FAMO ``methods/weight_methods.py::FAMO`` and its trainers (extra forward after the
    step, ``update(new_losses)``); ξ starts at 0; ℓ^min = 0 (the trainers never set it). Defaults: γ = 1e-3
    (the paper's choice and the run scripts for NYUv2/QM9/CelebA; Cityscapes used 1e-2; the class default
    there is 1e-5), ``logit_lr`` = 0.025 (``--method-params-lr``). ξ and its Adam live inside the method
    (``parameters()`` is empty); both are in ``state_dict``. Needs every ℓ_k > ℓ_k^min (ValueError otherwise).
    """

    name = "famo"
    paper = "Liu et al., FAMO: Fast Adaptive Multitask Optimization, NeurIPS 2023, arXiv:2306.03792"
    requires_after_step = True

    def __init__(self, n_tasks: int, *, generator: torch.Generator | None = None, gamma: float = 1e-3,
                 logit_lr: float = 0.025, min_losses: Tensor | list[float] | None = None,
                 max_norm: float = 0.0) -> None:
        super().__init__(n_tasks, generator=generator, max_norm=max_norm)
        self.gamma = check_float("gamma", gamma, low=0.0)
        self.logit_lr = check_float("logit_lr", logit_lr, low=0.0, low_open=True)
        bounds = torch.zeros(n_tasks) if min_losses is None else torch.as_tensor(min_losses, dtype=torch.float32)
        if bounds.shape != (n_tasks,) or not torch.isfinite(bounds).all():
            raise ValueError(f"hyperparameter min_losses={min_losses!r}: must be {n_tasks} finite numbers")
        self.min_losses = bounds
        self.logits = torch.zeros(n_tasks, requires_grad=True)
        self.logit_optimizer = torch.optim.Adam([self.logits], lr=self.logit_lr, weight_decay=self.gamma)
        self.previous_losses: Tensor | None = None

    def _gaps(self, losses: Tensor) -> Tensor:
        return losses - self.min_losses.to(device=losses.device, dtype=losses.dtype) + 1e-8

    def weigh(self, losses: Tensor) -> tuple[Tensor, Tensor]:
        _require_above(self.name, losses, self.min_losses.to(losses.device, losses.dtype) - 1e-8,
                       "log(ℓ_k − ℓ_k^min + 1e-8) needs every loss above its lower bound min_losses")
        self.previous_losses = losses.detach().clone()
        z = F.softmax(self.logits.detach(), dim=0).to(device=losses.device, dtype=losses.dtype)
        gaps = self._gaps(losses)
        c = (z / gaps).sum().detach()
        objective = (z * torch.log(gaps) / c).sum()
        return objective, (z / (c * gaps)).detach()

    def after_step(self, new_losses: Tensor) -> None:
        """FAMO's update of the logits ξ with the losses after the optimizer step (same batch)."""
        new_losses = self._check_losses_shape(new_losses)
        if self.previous_losses is None:
            raise RuntimeError("famo: after_step() called before any mtl_backward() step")
        delta = (torch.log(self._gaps(self.previous_losses)) - torch.log(self._gaps(new_losses))).detach().cpu()
        if not torch.isfinite(delta).all():
            raise ValueError(f"famo: non-finite log-loss change {delta.tolist()} (new losses {new_losses.tolist()})")
        with torch.enable_grad():
            z = F.softmax(self.logits, dim=0)
            (logit_grad,) = torch.autograd.grad(z, self.logits, grad_outputs=delta.to(z.dtype))
        self.logit_optimizer.zero_grad()
        self.logits.grad = logit_grad
        self.logit_optimizer.step()

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "logits": self.logits.detach().clone(),
                "logit_optimizer": self.logit_optimizer.state_dict(),
                "previous_losses": None if self.previous_losses is None else self.previous_losses.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        with torch.no_grad():
            self.logits.copy_(state["logits"])
        self.logit_optimizer.load_state_dict(state["logit_optimizer"])
        previous = state["previous_losses"]
        self.previous_losses = None if previous is None else previous.clone()
