"""torch's SGD, Adam and AdamW with apt's shell: finite-gradient check, step count and diagnostics.

The update itself is torch's own (``torch.optim.X.step``), so these are the baselines APT is compared
against; the diagnostics read the momentum from torch's state (``exp_avg``, ``momentum_buffer``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from apt.optim.diagnostics import DiagnosedOptimizer, MomentumView


class SGD(DiagnosedOptimizer, torch.optim.SGD):
    """``torch.optim.SGD`` + diagnostics. Its momentum buffer is b_1 = g_1, b_t = μ b_{t−1} + (1 − d) g_t.

    With dampening d = μ (what ``make_optimizer("sgdm")`` uses) b_t is an EMA like Adam's and Muon's
    momentum from t = 2 on, so the instant-gradient share ‖(1 − d) g_t‖ / ‖b_t‖ is comparable across them.
    """

    def __init__(self, params: Iterable[Any], lr: float, *, diagnostics: bool = False, **kwargs: Any) -> None:
        super().__init__(params, lr=lr, **kwargs)
        self._setup_diagnostics(diagnostics)

    def _apply_update(self) -> None:
        torch.optim.SGD.step(self)

    def _momentum_buffer(self, param: Tensor) -> Tensor | None:
        return self.state.get(param, {}).get("momentum_buffer")

    def _momentum_view(self, param: Tensor, group: dict[str, Any], had_buffer: bool) -> MomentumView:
        if group["momentum"] == 0:
            return MomentumView(param.grad, 0.0, 1.0)
        grad_weight = 1.0 - group["dampening"] if had_buffer else 1.0
        return MomentumView(self.state[param]["momentum_buffer"], group["momentum"], grad_weight)


class _TorchAdamDiagnostics(DiagnosedOptimizer):
    """Diagnostics of torch's Adam state: m_t = exp_avg, weight of g_t in it = 1 − β1."""

    def _momentum_buffer(self, param: Tensor) -> Tensor | None:
        return self.state.get(param, {}).get("exp_avg")

    def _momentum_view(self, param: Tensor, group: dict[str, Any], had_buffer: bool) -> MomentumView:
        beta1 = float(group["betas"][0])
        return MomentumView(self.state[param]["exp_avg"], beta1, 1.0 - beta1)


class Adam(_TorchAdamDiagnostics, torch.optim.Adam):
    """``torch.optim.Adam`` (L2 weight decay added to the gradient) + diagnostics."""

    def __init__(self, params: Iterable[Any], lr: float, *, diagnostics: bool = False, **kwargs: Any) -> None:
        super().__init__(params, lr=lr, **kwargs)
        self._setup_diagnostics(diagnostics)

    def _apply_update(self) -> None:
        torch.optim.Adam.step(self)


class AdamW(_TorchAdamDiagnostics, torch.optim.AdamW):
    """``torch.optim.AdamW`` (decoupled weight decay) + diagnostics."""

    def __init__(self, params: Iterable[Any], lr: float, *, diagnostics: bool = False, **kwargs: Any) -> None:
        super().__init__(params, lr=lr, **kwargs)
        self._setup_diagnostics(diagnostics)

    def _apply_update(self) -> None:
        torch.optim.AdamW.step(self)
