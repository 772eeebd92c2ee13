"""How much of each step the instant gradient is (the paper's claim 1) and what Muon does to it (claim 2).

Every optimizer of ``apt.optim`` (also plain SGD/Adam/Muon) records, when built with ``diagnostics=True``,
after each ``step()``, in ``optimizer.step_diagnostics`` (register ids G1–G4 in ``apt.optim.assumptions``):

    instant_gradient_share   ‖(1 − β_t) g_t‖ / ‖m_t‖  over all parameters with a gradient           (G1)
                             (m_t the raw momentum buffer after the step; (1 − β_t) the weight g_t entered
                             it with; 1 for plain SGD, whose "momentum" is g_t itself)
    update_instant_cosine    cos(Δθ_t, −g_t), Δθ_t = θ_t − θ_{t−1}, over all parameters with a gradient (G2)
    momentum_cosine          cos(g_t, m_{t−1}) of the concatenated tensors (0 at the first step)     (A4)
    beta_mean / beta_min_used / beta_max_used   β_t used: numel-weighted mean, smallest, largest over tensors
    update_norm, instant_gradient_norm           ‖Δθ_t‖, ‖g_t‖
    muon_*                   (Muon matrices, every ``spectrum_every`` steps) mean entropy effective rank of the
                             matrix before orthogonalization (``_in``), after (``_out``), of the instant
                             gradient (``_instant``), the same divided by min(A, B) (``muon_rank_fraction_*``),
                             and the smallest/largest singular value after orthogonalization      (G3)
    muon_singular_values     (same steps) {matrix name: {"in", "out", "instant": singular values, descending}}:
                             the full spectra behind the G3 summaries; choose ``spectrum_every`` so that a
                             stored record stays small (a [50, 500] matrix adds 3 × 50 numbers per step)

g_t is what ``.grad`` holds when ``step()`` is called (the MTL method's aggregated gradient); it is never
modified. Per-task alignment needs the task Jacobian, which only ``apt.mtl`` has: the training loop calls
``task_alignment(optimizer.last_update(shared_params), jacobian)`` (G4).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from apt.errors import NonFiniteError
from apt.optim.newton_schulz import effective_rank


def task_alignment(update: Tensor, jacobian: Tensor) -> Tensor:
    """Register G4: cos(Δθ, −g_k) for every task k.

    update: [P] the flattened step Δθ (``optimizer.last_update(shared_params)``); jacobian: [K, P], row k =
    ∂ℓ_k/∂θ_shared in the same parameter order. Returns [K] in [−1, 1]; 0 where Δθ or g_k is zero.
    A positive value means the step decreases ℓ_k to first order.
    """
    if update.ndim != 1 or jacobian.ndim != 2 or jacobian.shape[1] != update.shape[0]:
        raise ValueError(f"task_alignment expects update [P] and jacobian [K, P]; got {tuple(update.shape)} "
                         f"and {tuple(jacobian.shape)}")
    update64, jacobian64 = update.double(), jacobian.double()
    norms = jacobian64.norm(dim=1) * update64.norm()
    dots = -(jacobian64 @ update64)
    return torch.where(norms > 0, dots / norms.clamp(min=torch.finfo(torch.float64).tiny),
                       torch.zeros_like(dots)).to(update.dtype)


def alignment_summary(cosines: Tensor) -> dict[str, float]:
    """Spread of the per-task alignments [K]: mean, min, max, spread = max − min, std (population)."""
    values = cosines.double()
    return {
        "task_alignment_mean": float(values.mean()),
        "task_alignment_min": float(values.min()),
        "task_alignment_max": float(values.max()),
        "task_alignment_spread": float(values.max() - values.min()),
        "task_alignment_std": float(values.std(unbiased=False)),
    }


def spectra_lists(spectra: dict[str, dict[str, Tensor]]) -> dict[str, dict[str, list[float]]]:
    """The Muon spectra {name: {"in", "out", "instant": [r]}} as plain lists (JSON-able, for records)."""
    return {name: {kind: values.tolist() for kind, values in entry.items()} for name, entry in spectra.items()}


def spectrum_summary(spectra: dict[str, dict[str, Tensor]]) -> dict[str, float]:
    """Scalar summary (register G3) of Muon spectra {name: {"in", "out", "instant"}: singular values [r]}."""
    if not spectra:
        return {}
    summary: dict[str, float] = {}
    for kind in ("in", "out", "instant"):
        ranks = [effective_rank(entry[kind]) for entry in spectra.values()]
        fractions = [rank / entry[kind].numel() for rank, entry in zip(ranks, spectra.values())]
        summary[f"muon_effective_rank_{kind}"] = sum(ranks) / len(ranks)
        summary[f"muon_rank_fraction_{kind}"] = sum(fractions) / len(fractions)
    summary["muon_sv_out_min"] = min(float(entry["out"].min()) for entry in spectra.values())
    summary["muon_sv_out_max"] = max(float(entry["out"].max()) for entry in spectra.values())
    return summary


@dataclass(frozen=True)
class MomentumView:
    """What the diagnostics need of one parameter's optimizer state after a step.

    buffer: m_t (same shape as the parameter); beta: β_t used; grad_weight: the weight g_t entered m_t with.
    """

    buffer: Tensor
    beta: float
    grad_weight: float


@dataclass
class _StepEntries:
    """The parameters that have a gradient in this step, in group order."""

    names: list[str]
    params: list[Tensor]
    grads: list[Tensor]
    groups: list[dict[str, Any]]


def _global_cosine(dot: float, norm_a: float, norm_b: float) -> float:
    denominator = norm_a * norm_b
    return dot / denominator if denominator > 0 else 0.0


class DiagnosedOptimizer(torch.optim.Optimizer):
    """Shared shell of every ``apt.optim`` optimizer: finite-gradient check, step count, diagnostics.

    Subclasses implement ``_apply_update()`` (one update from the ``.grad`` of their parameters; no closure)
    and ``_momentum_view(param, group, had_buffer)``. ``step(closure)`` evaluates the closure first, checks
    every gradient is finite (``NonFiniteError`` naming the parameter and the step), applies the update and,
    when diagnostics are on, records ``step_diagnostics`` and ``last_update``.
    The step count is saved in ``state_dict()`` so that error messages and spectrum steps survive a resume.
    """

    def _setup_diagnostics(self, diagnostics: bool, spectrum_every: int = 1) -> None:
        if not isinstance(diagnostics, bool):
            raise ValueError(f"diagnostics={diagnostics!r}: must be True or False")
        if not isinstance(spectrum_every, int) or spectrum_every < 1:
            raise ValueError(f"spectrum_every={spectrum_every!r}: must be an integer >= 1")
        self.diagnostics = diagnostics
        self.spectrum_every = spectrum_every
        self.steps_taken = 0
        self.muon_spectra: dict[str, dict[str, Tensor]] = {}
        self._step_diagnostics: dict[str, Any] = {}
        self._last_update: dict[Tensor, Tensor] = {}
        # ‖.grad‖ per parameter of the step being taken (from the finite check; reused by APT's cosines)
        self._instant_grad_norms: dict[Tensor, Tensor] = {}

    # ----- the torch.optim contract -------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        """One optimization step from the gradients in ``.grad`` (after evaluating ``closure`` if given)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        entries = self._entries_with_grad()
        grad_norms = self._check_finite(entries)
        self._instant_grad_norms = dict(zip(entries.params, grad_norms))
        before = self._before_step(entries) if self.diagnostics else None
        self.muon_spectra = {}
        self._apply_update()
        self.steps_taken += 1
        if before is not None:
            self._after_step(entries, grad_norms, before)
        return loss

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["apt_steps_taken"] = self.steps_taken
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict = dict(state_dict)
        self.steps_taken = int(state_dict.pop("apt_steps_taken", 0))
        super().load_state_dict(state_dict)

    # ----- public diagnostics ---------------------------------------------------------------------------
    @property
    def step_diagnostics(self) -> dict[str, Any]:
        """The diagnostics of the last step (module docstring); {} when diagnostics are off. Every value is a
        float except ``muon_singular_values`` (nested lists, on spectrum steps only)."""
        return dict(self._step_diagnostics)

    def last_update(self, params: Sequence[nn.Parameter]) -> Tensor:
        """Δθ of the last step for ``params``, flattened and concatenated in the given order: [Σ numel].

        Parameters of this optimizer that had no gradient in the last step contribute zeros.
        Needs ``diagnostics=True`` (the previous parameters are kept only then).
        """
        if not self.diagnostics:
            raise RuntimeError("last_update() needs the optimizer built with diagnostics=True")
        managed = {id(p) for group in self.param_groups for p in group["params"]}
        pieces = []
        for index, param in enumerate(params):
            if id(param) not in managed:
                raise ValueError(f"last_update(): parameter #{index} (shape {tuple(param.shape)}) is not "
                                 "managed by this optimizer")
            delta = self._last_update.get(param)
            pieces.append(delta.reshape(-1) if delta is not None else torch.zeros_like(param).reshape(-1))
        return torch.cat(pieces) if pieces else torch.zeros(0)

    # ----- hooks for subclasses ---------------------------------------------------------------------------
    def _apply_update(self) -> None:
        raise NotImplementedError

    def _momentum_view(self, param: Tensor, group: dict[str, Any], had_buffer: bool) -> MomentumView:
        raise NotImplementedError

    def _momentum_buffer(self, param: Tensor) -> Tensor | None:
        """m_{t−1} before the step (None when the state has none yet)."""
        raise NotImplementedError

    def _spectrum_due(self) -> bool:
        """True when this step (being taken) records Muon spectra."""
        return self.diagnostics and self.steps_taken % self.spectrum_every == 0

    # ----- internals --------------------------------------------------------------------------------------
    def _entries_with_grad(self) -> _StepEntries:
        entries = _StepEntries([], [], [], [])
        for group_index, group in enumerate(self.param_groups):
            names = group.get("param_names")
            for param_index, param in enumerate(group["params"]):
                if param.grad is None:
                    continue
                if param.grad.is_sparse:
                    raise RuntimeError(f"parameter {self._name(names, group_index, param_index)!r}: sparse "
                                       "gradients are not supported")
                entries.names.append(self._name(names, group_index, param_index))
                entries.params.append(param)
                entries.grads.append(param.grad)
                entries.groups.append(group)
        return entries

    @staticmethod
    def _name(names: list[str] | None, group_index: int, param_index: int) -> str:
        return names[param_index] if names else f"param_groups[{group_index}].params[{param_index}]"

    def _check_finite(self, entries: _StepEntries) -> list[Tensor]:
        """‖g‖ per tensor (reused by the diagnostics); NonFiniteError naming the first non-finite gradient."""
        if not entries.grads:
            return []
        norms = torch._foreach_norm(entries.grads)
        if bool(torch.isfinite(torch.stack(norms)).all()):
            return norms
        for name, grad in zip(entries.names, entries.grads):
            if not bool(torch.isfinite(grad).all()):
                raise NonFiniteError(f"gradient of parameter {name!r} (shape {tuple(grad.shape)}) contains "
                                     f"NaN or Inf at optimizer step {self.steps_taken + 1}")
        return norms  # a norm overflowed although every entry is finite: the gradient is usable

    def _before_step(self, entries: _StepEntries) -> dict[str, Any]:
        buffers = [self._momentum_buffer(p) for p in entries.params]
        pairs = [(g, m) for g, m in zip(entries.grads, buffers) if m is not None]
        momentum_cosine = 0.0
        if pairs:
            grads, previous = [g for g, _ in pairs], [m for _, m in pairs]
            momentum_cosine = _global_cosine(_sum_of_dots(grads, previous), _total_norm(grads),
                                             _total_norm(previous))
        return {
            "params_before": torch._foreach_clone(entries.params),
            "had_buffer": [buffer is not None for buffer in buffers],
            "momentum_cosine": momentum_cosine,
        }

    def _after_step(self, entries: _StepEntries, grad_norms: list[Tensor], before: dict[str, Any]) -> None:
        if not entries.params:
            self._step_diagnostics, self._last_update = {}, {}
            return
        deltas = torch._foreach_sub(entries.params, before["params_before"])
        self._last_update = dict(zip(entries.params, deltas))
        update_norm = _total_norm(deltas)
        grad_norm = float(torch.stack(grad_norms).double().square().sum().sqrt())
        views = [self._momentum_view(param, group, had_buffer) for param, group, had_buffer
                 in zip(entries.params, entries.groups, before["had_buffer"])]
        grad_weights = torch.tensor([view.grad_weight for view in views], dtype=torch.float64)
        weighted_grad_norm = float((grad_weights * torch.stack(grad_norms).double()).square().sum().sqrt())
        buffer_norm = _total_norm([view.buffer for view in views])
        numels = [param.numel() for param in entries.params]
        betas = [view.beta for view in views]
        denominator = update_norm * grad_norm
        diagnostics = {
            "instant_gradient_share": weighted_grad_norm / buffer_norm if buffer_norm > 0 else 0.0,
            "update_instant_cosine": -_sum_of_dots(deltas, entries.grads) / denominator if denominator > 0 else 0.0,
            "momentum_cosine": before["momentum_cosine"],
            "beta_mean": sum(b * n for b, n in zip(betas, numels)) / sum(numels),
            "beta_min_used": min(betas),
            "beta_max_used": max(betas),
            "update_norm": update_norm,
            "instant_gradient_norm": grad_norm,
        }
        diagnostics.update(spectrum_summary(self.muon_spectra))
        if self.muon_spectra:
            diagnostics["muon_singular_values"] = spectra_lists(self.muon_spectra)
        self._step_diagnostics = diagnostics


def _sum_of_dots(first: list[Tensor], second: list[Tensor]) -> float:
    """Σ_i ⟨a_i, b_i⟩ over pairs of equally shaped tensors (each dot in the tensors' dtype)."""
    return float(torch.stack([torch.dot(a.reshape(-1), b.reshape(-1)) for a, b in zip(first, second)])
                 .double().sum())


def _total_norm(tensors: list[Tensor]) -> float:
    """‖concatenation‖ from the per-tensor norms."""
    return float(torch.stack(torch._foreach_norm(tensors)).double().square().sum().sqrt())
