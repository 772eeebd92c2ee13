"""mtl_backward: K task losses -> the aggregated gradient in the shared parameters' ``.grad``.

What gets written (accumulated, like ``loss.backward()``; the caller zeroes grads):
  shared params   loss-based method: ∇_θ objective = Σ_k w_k ∇ℓ_k (one backward);
                  gradient-based: d = the method's aggregation of the task gradients;
                  then clipped to ``method.max_norm`` if > 0 (after the gradient is written, never before).
  task params     head k gets ∂ℓ_k/∂θ_k for gradient-based methods (as TorchJD's mtl_backward and LibMTL do;
                  the lineage's MGDA / IMTL-G / Nash-MTL back-propagate Σ w_k ℓ_k, i.e. w_k ∂ℓ_k/∂θ_k) and
                  w_k ∂ℓ_k/∂θ_k for loss-based methods (the weighted loss's gradient, as in the lineage).
                  None: no head gradient is written.
  method params   UW's log-variances: the gradient of its objective.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from apt.errors import NonFiniteError
from apt.mtl.base import GramianMethod, JacobianMethod, LossMethod, Method
from apt.mtl.jacobian import (
    TaskJacobian,
    cosines_from_gramian,
    cosines_from_projection,
    task_jacobian,
)


@dataclass
class MTLStepInfo:
    """What one ``mtl_backward`` computed, for diagnostics and records.

    weights          [K] effective weights on the task losses/gradients (None for GradDrop, whose direction
                     is not a weighted sum); Nash-MTL's before clipping.
    task_cosines     [K] cos(d, g_k) wherever task gradients were computed (None otherwise); in feature space
                     when ``level == "features"``.
    jacobian         [K, P] over the shared parameters, only with keep_jacobian=True.
    seconds          wall time of the parts: "jacobian", "aggregate", "backward", "total".
    solver_failures  failed solves in this step (Nash-MTL, CAGrad, FairGrad), each also warned.
    level            "loss" (no task gradients), "parameters" or "features".
    """

    method: str
    level: str
    weights: Tensor | None = None
    task_cosines: Tensor | None = None
    jacobian: Tensor | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    solver_failures: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-able: floats, lists of floats, strings (the Jacobian is left out: too large for records)."""
        def listed(t: Tensor | None) -> list[float] | None:
            return None if t is None else [float(v) for v in t.detach().cpu().flatten()]

        return {"method": self.method, "level": self.level, "weights": listed(self.weights),
                "task_cosines": listed(self.task_cosines), "seconds": dict(self.seconds),
                "solver_failures": int(self.solver_failures)}


def _task_label(k: int, task_names: Sequence[str] | None) -> str:
    return f"task {task_names[k]!r} (index {k})" if task_names is not None else f"task index {k}"


def _as_loss_vector(losses: Tensor | Sequence[Tensor], n_tasks: int, method: str) -> Tensor:
    if isinstance(losses, Tensor):
        if losses.ndim != 1:
            raise ValueError(f"losses must be a 1-D tensor of {n_tasks} scalars, got shape {tuple(losses.shape)}")
        vector = losses
    else:
        items = list(losses)
        for k, loss in enumerate(items):
            if not isinstance(loss, Tensor) or loss.numel() != 1:
                shape = tuple(loss.shape) if isinstance(loss, Tensor) else type(loss).__name__
                raise ValueError(f"loss {k} must be a scalar tensor, got {shape}")
        vector = torch.stack([loss.reshape(()) for loss in items]) if items else torch.zeros(0)
    if vector.shape[0] != n_tasks:
        raise ValueError(f"expected {n_tasks} losses (method {method!r} was built for n_tasks={n_tasks}), "
                         f"got {vector.shape[0]}")
    if not vector.requires_grad:
        raise ValueError("losses do not require grad: compute them from the model outside torch.no_grad()")
    return vector


def _check_finite_losses(losses: Tensor, step: int | None, task_names: Sequence[str] | None) -> None:
    finite = torch.isfinite(losses.detach())
    if not bool(finite.all()):
        k = int((~finite).nonzero()[0])
        raise NonFiniteError(f"loss of {_task_label(k, task_names)} is {float(losses[k].detach())} at step {step}")


def _check_finite_gradients(gramian: Tensor, step: int | None, task_names: Sequence[str] | None, what: str) -> None:
    finite_rows = torch.isfinite(gramian).all(dim=1)
    if not bool(finite_rows.all()):
        diagonal_bad = ~torch.isfinite(gramian.diagonal())
        k = int((diagonal_bad if bool(diagonal_bad.any()) else ~finite_rows).nonzero()[0])
        raise NonFiniteError(f"gradient of {_task_label(k, task_names)} w.r.t. the {what} is not finite "
                             f"(‖g_k‖² = {float(gramian[k, k])}) at step {step}")


def _check_parameters(shared: list[nn.Parameter], heads: list[list[nn.Parameter]] | None, n_tasks: int) -> None:
    if not shared:
        raise ValueError("shared_params is empty")
    seen: dict[int, str] = {}
    groups = [("shared_params", shared)] + [(f"task_params[{k}]", h) for k, h in enumerate(heads or [])]
    for where, params in groups:
        for p in params:
            if not p.requires_grad:
                raise ValueError(f"a parameter in {where} does not require grad")
            if id(p) in seen:
                raise ValueError(f"the same parameter appears in {seen[id(p)]} and {where}")
            seen[id(p)] = where
    if heads is not None and len(heads) != n_tasks:
        raise ValueError(f"expected task_params for {n_tasks} tasks, got {len(heads)}")


def _accumulate(params: Sequence[Tensor], gradients: Sequence[Tensor]) -> None:
    for p, g in zip(params, gradients, strict=True):
        g = g.to(dtype=p.dtype).reshape(p.shape)
        if p.grad is None:
            p.grad = g.clone()
        else:
            p.grad.add_(g)


def mtl_backward(losses: Tensor | Sequence[Tensor], shared_params: Sequence[nn.Parameter], method: Method, *,
                 task_params: Sequence[Sequence[nn.Parameter]] | None = None,
                 features: Tensor | Sequence[Tensor] | None = None, step: int | None = None,
                 task_names: Sequence[str] | None = None, keep_jacobian: bool = False,
                 jacobian_mode: str = "loop", chunk_size: int | None = None) -> MTLStepInfo:
    """Back-propagate K task losses through ``method`` into ``.grad`` (see the module docstring).

    losses: [K] tensor or K scalar tensors.  features: the shared representation the heads read; used (task
    gradients w.r.t. it, then the aggregated feature gradient back-propagated to the shared parameters, as
    LibMTL's ``rep_grad`` / MGDA-UB) only when ``method.supports_features``, ignored otherwise.
    keep_jacobian: also return J [K, P] over the shared parameters (an extra K backward passes if not computed
    anyway). jacobian_mode / chunk_size: how task gradients are computed (apt.mtl.jacobian).
    Raises NonFiniteError for a NaN/Inf loss or task gradient (task name/index and step), ValueError for a
    wrong number of losses or malformed parameter lists.
    """
    started = time.perf_counter()
    loss_vector = _as_loss_vector(losses, method.n_tasks, method.name)
    _check_finite_losses(loss_vector, step, task_names)
    shared = list(shared_params)
    heads = None if task_params is None else [list(h) for h in task_params]
    _check_parameters(shared, heads, method.n_tasks)
    head_flat = [p for h in heads or [] for p in h]
    method.solver_failures_last_step = 0
    seconds: dict[str, float] = {}

    if isinstance(method, LossMethod):
        info = _loss_step(loss_vector, shared, head_flat, method, keep_jacobian, jacobian_mode, chunk_size,
                          step, task_names, seconds)
    else:
        reuse = method.reuse_weights() if isinstance(method, GramianMethod) else None
        if reuse is not None:
            info = _reused_weights_step(loss_vector, shared, head_flat, method, reuse, keep_jacobian,
                                        jacobian_mode, chunk_size, step, task_names, seconds)
        else:
            feature_list = None
            if features is not None and method.supports_features:
                feature_list = [features] if isinstance(features, Tensor) else list(features)
            info = _gradient_step(loss_vector, shared, head_flat, method, feature_list, keep_jacobian,
                                  jacobian_mode, chunk_size, step, task_names, seconds)

    if method.max_norm > 0:
        torch.nn.utils.clip_grad_norm_(shared, method.max_norm)
    info.solver_failures = method.solver_failures_last_step
    seconds["total"] = time.perf_counter() - started
    info.seconds = seconds
    return info


def _parameter_jacobian(losses: Tensor, shared: list[nn.Parameter], mode: str, chunk_size: int | None,
                        step: int | None, task_names: Sequence[str] | None,
                        seconds: dict[str, float], retain_graph: bool) -> tuple[TaskJacobian, Tensor]:
    t0 = time.perf_counter()
    jacobian = task_jacobian(losses, shared, mode=mode, chunk_size=chunk_size, retain_graph=retain_graph)
    gramian = jacobian.gramian()
    _check_finite_gradients(gramian, step, task_names, "shared parameters")
    seconds["jacobian"] = seconds.get("jacobian", 0.0) + time.perf_counter() - t0
    return jacobian, gramian


def _loss_step(losses: Tensor, shared: list[nn.Parameter], heads: list[nn.Parameter], method: LossMethod,
               keep_jacobian: bool, mode: str, chunk_size: int | None, step: int | None,
               task_names: Sequence[str] | None, seconds: dict[str, float]) -> MTLStepInfo:
    info = MTLStepInfo(method=method.name, level="loss")
    t0 = time.perf_counter()
    objective, weights = method.weigh(losses)
    seconds["aggregate"] = time.perf_counter() - t0
    if keep_jacobian:
        jacobian, gramian = _parameter_jacobian(losses, shared, mode, chunk_size, step, task_names, seconds, True)
        info.jacobian = jacobian.matrix()
        info.task_cosines = cosines_from_gramian(gramian, weights.to(torch.float64))
    t0 = time.perf_counter()
    torch.autograd.backward(objective, inputs=shared + heads + method.parameters())
    seconds["backward"] = time.perf_counter() - t0
    info.weights = weights
    return info


def _reused_weights_step(losses: Tensor, shared: list[nn.Parameter], heads: list[nn.Parameter],
                         method: GramianMethod, weights: Tensor, keep_jacobian: bool, mode: str,
                         chunk_size: int | None, step: int | None, task_names: Sequence[str] | None,
                         seconds: dict[str, float]) -> MTLStepInfo:
    """A step that reuses the previous weights (Nash-MTL between updates): one backward of wᵀℓ, no J."""
    info = MTLStepInfo(method=method.name, level="parameters", weights=weights)
    if keep_jacobian:
        jacobian, gramian = _parameter_jacobian(losses, shared, mode, chunk_size, step, task_names, seconds, True)
        info.jacobian = jacobian.matrix()
        info.task_cosines = cosines_from_gramian(gramian, weights)
    t0 = time.perf_counter()
    if heads:
        torch.autograd.backward(losses.sum(), inputs=heads, retain_graph=True)
    torch.autograd.backward((weights.to(losses.dtype) * losses).sum(), inputs=shared)
    seconds["backward"] = time.perf_counter() - t0
    return info


def _gradient_step(losses: Tensor, shared: list[nn.Parameter], heads: list[nn.Parameter],
                   method: GramianMethod | JacobianMethod, features: list[Tensor] | None, keep_jacobian: bool,
                   mode: str, chunk_size: int | None, step: int | None, task_names: Sequence[str] | None,
                   seconds: dict[str, float]) -> MTLStepInfo:
    level = "parameters" if features is None else "features"
    info = MTLStepInfo(method=method.name, level=level)
    t0 = time.perf_counter()
    if heads:
        torch.autograd.backward(losses.sum(), inputs=heads, retain_graph=True)
    seconds["backward"] = time.perf_counter() - t0
    if features is not None and keep_jacobian:
        parameter_jacobian, _ = _parameter_jacobian(losses, shared, mode, chunk_size, step, task_names, seconds, True)
        info.jacobian = parameter_jacobian.matrix()
    targets = shared if features is None else features
    what = "shared parameters" if features is None else "features"
    t0 = time.perf_counter()
    # At parameter level nothing back-propagates after J, so the graph is freed with the last row.
    jacobian = task_jacobian(losses, targets, mode=mode, chunk_size=chunk_size, retain_graph=features is not None)
    gramian = jacobian.gramian()
    _check_finite_gradients(gramian, step, task_names, what)
    seconds["jacobian"] = seconds.get("jacobian", 0.0) + time.perf_counter() - t0
    if features is None and keep_jacobian:
        info.jacobian = jacobian.matrix()

    t0 = time.perf_counter()
    if isinstance(method, GramianMethod):
        weights = method.weights_from_gramian(gramian, step=step)
        direction = jacobian.combine(weights)
        info.weights = weights
        info.task_cosines = cosines_from_gramian(gramian, weights)
    else:
        direction = method.aggregate_blocks(jacobian.blocks)
        norm = torch.sqrt(sum((d.to(torch.float64) ** 2).sum() for d in direction))
        info.task_cosines = cosines_from_projection(jacobian.project(direction), norm, gramian)
    seconds["aggregate"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    if features is None:
        _accumulate(shared, direction)
    else:
        torch.autograd.backward(features, grad_tensors=[d.to(f.dtype) for d, f in zip(direction, features, strict=True)],
                                inputs=shared)
    seconds["backward"] += time.perf_counter() - t0
    return info
