r"""Muon for linear *and* convolutional weights, with its AdamW companion group in one optimizer object.

Muon (Keller Jordan, 2024; ``torch.optim.Muon``) for a hidden weight W with gradient G_t, momentum μ:

.. math::
    B_t = μ B_{t−1} + (1 − μ) G_t,\quad
    \tilde B_t = \begin{cases} (1 − μ) G_t + μ B_t & \text{nesterov} \\ B_t & \text{otherwise}\end{cases},\quad
    O_t = \mathrm{NS}(\mathrm{mat}(\tilde B_t)),\quad
    W_t = (1 − η λ) W_{t−1} − η' O_t

mat(·) views a weight [out, in, kh, kw] as the matrix [out, in·kh·kw] (register O2: the reference README's
advice for conv nets; a 2-D weight is its own matrix). η' = adjusted_lr(η, [A, B]) with A×B the matrix shape:
``original`` η·√max(1, A/B) (Keller Jordan), ``match_rms_adamw`` η·0.2·√max(A, B) (Moonshot, so an AdamW
learning rate can be reused). Weight decay uses the unadjusted η, as torch.optim.Muon does.

Muon is for hidden matrices only; ``split_muon_params`` is the rule (register O1) that sends the rest to
AdamW. ``Muon`` owns both groups (``kind`` = "muon" | "adamw") so LR schedulers, ``state_dict`` and resume
see one optimizer; the AdamW group runs ``torch.optim.adam.adam`` with decoupled weight decay.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable
from functools import partial
from typing import Any

import torch
import torch.optim.adam as torch_adam
from torch import Tensor, nn

from apt.optim.diagnostics import DiagnosedOptimizer, MomentumView
from apt.optim.direction import preserve_direction
from apt.optim.newton_schulz import (NS_COEFFICIENTS, NS_EPS, NS_STEPS, newton_schulz, resolve_ns_dtype,
                                     singular_values)

ADJUST_LR_RULES: tuple[str, ...] = ("original", "match_rms_adamw")
MUON_GROUP_KINDS: tuple[str, ...] = ("muon", "adamw")
SPLIT_ADVICE = ("Muon takes hidden weights with ndim >= 2 (viewed as [out, in*kh*kw]); biases, norm gains, "
                "the first layer, embeddings and task heads belong in the AdamW group: use "
                "apt.optim.split_muon_params / muon_param_groups")


def matrix_view(tensor: Tensor) -> Tensor:
    """mat(T): a weight [out, d₁, …] as the matrix [out, d₁·…] (register O2). A view, no copy."""
    return tensor.reshape(tensor.shape[0], -1)


def adjusted_lr(lr: float, matrix_shape: tuple[int, int], rule: str) -> float:
    """η' for a matrix [A, B]: ``original`` η√max(1, A/B); ``match_rms_adamw`` 0.2 η √max(A, B)."""
    rows, cols = matrix_shape
    if rule == "original":
        return lr * math.sqrt(max(1.0, rows / cols))
    if rule == "match_rms_adamw":
        return lr * 0.2 * math.sqrt(max(rows, cols))
    raise ValueError(f"adjust_lr={rule!r}: allowed {ADJUST_LR_RULES}")


def split_muon_params(named_parameters: Iterable[tuple[str, nn.Parameter]], excluded: Collection[str] = ()
                      ) -> tuple[list[tuple[str, nn.Parameter]], list[tuple[str, nn.Parameter]]]:
    """Register O1: which parameters Muon takes. Returns (muon_named, adamw_named), order preserved.

    Muon: every parameter with ndim ≥ 2 whose name is not in ``excluded`` (hidden linear and conv weights).
    AdamW: parameters with ndim < 2 (biases, norm gains and shifts) and every name in ``excluded`` (the
    first layer, embeddings, task heads: ``MTLModel.muon_excluded_names()``), as the Muon README advises.
    Parameters with ``requires_grad=False`` are dropped. A name in ``excluded`` that is not among the
    parameters raises ValueError (a typo would otherwise silently send a head to Muon).
    """
    everything = list(named_parameters)
    unknown = sorted(set(excluded) - {name for name, _ in everything})
    if unknown:
        raise ValueError(f"muon_excluded names not among the parameters: {unknown}")
    excluded_set = set(excluded)
    named = [(name, param) for name, param in everything if param.requires_grad]
    muon = [(n, p) for n, p in named if p.ndim >= 2 and n not in excluded_set]
    adamw = [(n, p) for n, p in named if p.ndim < 2 or n in excluded_set]
    return muon, adamw


def muon_param_groups(named_parameters: Iterable[tuple[str, nn.Parameter]], *, excluded: Collection[str] = (),
                      adam_lr: float | None = None) -> list[dict[str, Any]]:
    """Param groups for ``Muon``/``APT(base="muon")``: [{"kind": "muon", …}, {"kind": "adamw", "lr": adam_lr}].

    Groups with no parameter are left out. ``adam_lr`` None: the optimizer's lr for both groups.
    """
    muon, adamw = split_muon_params(named_parameters, excluded)
    groups: list[dict[str, Any]] = []
    if muon:
        groups.append({"params": muon, "kind": "muon"})
    if adamw:
        groups.append({"params": adamw, "kind": "adamw"} | ({} if adam_lr is None else {"lr": adam_lr}))
    return groups


def muon_matrix_update(param: Tensor, grad: Tensor, buffer: Tensor, *, beta: float, lr: float,
                       weight_decay: float, nesterov: bool, adjust_lr: str, ns_steps: int,
                       ns_dtype: str | torch.dtype, ns_eps: float,
                       ns_coefficients: tuple[float, float, float], preserve: str = "none",
                       preserve_strength: float = 0.0) -> tuple[Tensor, Tensor]:
    """One Muon update of one weight, in place on ``param`` and ``buffer`` (never on ``grad``).

    param, grad, buffer: same shape [out, …]. β is the momentum used this step (fixed for Muon, adaptive
    for APT); ``preserve`` a rule of ``apt.optim.direction`` (``none`` = Muon). Returns (the matrix that
    was orthogonalized, the update matrix O), both [out, in·kh·kw], for diagnostics.
    """
    buffer.lerp_(grad, 1.0 - beta)
    direction = grad.lerp(buffer, beta) if nesterov else buffer
    momentum_matrix = matrix_view(direction)
    orthogonalize = partial(newton_schulz, steps=ns_steps, coefficients=ns_coefficients, dtype=ns_dtype,
                            eps=ns_eps)
    update = preserve_direction(preserve, momentum_matrix, matrix_view(grad), orthogonalize, preserve_strength)
    param.mul_(1.0 - lr * weight_decay)
    param.add_(update.reshape(param.shape), alpha=-adjusted_lr(lr, tuple(momentum_matrix.shape), adjust_lr))
    return momentum_matrix, update


def record_spectra(spectra: dict[str, dict[str, Tensor]], name: str, momentum_matrix: Tensor,
                   update: Tensor, grad: Tensor) -> None:
    """Store the singular values (float32, descending; ``singular_values``) of the matrix before and after
    orthogonalization and of the instant gradient, under the parameter's name (register G3)."""
    spectra[name] = {
        "in": singular_values(momentum_matrix),
        "out": singular_values(update),
        "instant": singular_values(matrix_view(grad)),
    }


def validated_new_group(optimizer: torch.optim.Optimizer, allowed_kinds: Collection[str]) -> tuple[dict, int, str]:
    """(group, index, where) of the param group just added to ``optimizer``, after checking its kind, lr and
    weight decay; ``where`` = " (param group i, kind k)" is the suffix of later error messages about it."""
    group, index = optimizer.param_groups[-1], len(optimizer.param_groups) - 1
    if group["kind"] not in allowed_kinds:
        raise ValueError(f"kind={group['kind']!r} (param group {index}): allowed {tuple(allowed_kinds)}")
    where = f" (param group {index}, kind {group['kind']!r})"
    validate_common(group["lr"], group["weight_decay"], where)
    return group, index, where


def validate_common(lr: Any, weight_decay: Any, where: str = "") -> None:
    """lr > 0 (finite) and weight_decay ≥ 0, else ValueError naming the value (and the group)."""
    if isinstance(lr, Tensor) or not isinstance(lr, (int, float)) or not 0.0 < lr < math.inf:
        raise ValueError(f"lr={lr!r}{where}: must be a finite number > 0")
    if not isinstance(weight_decay, (int, float)) or not 0.0 <= weight_decay < math.inf:
        raise ValueError(f"weight_decay={weight_decay!r}{where}: must be a finite number >= 0")


def validate_muon_params(group: dict[str, Any], group_index: int) -> None:
    """Every parameter of a Muon group has ndim ≥ 2 and no zero-size dimension (else ValueError + advice)."""
    names = group.get("param_names")
    for index, param in enumerate(group["params"]):
        if param.ndim < 2 or param.numel() == 0:
            name = names[index] if names else f"param_groups[{group_index}].params[{index}]"
            raise ValueError(f"Muon cannot take parameter {name!r} of shape {tuple(param.shape)}: {SPLIT_ADVICE}")


def validate_muon_hyperparameters(group: dict[str, Any], where: str = "") -> None:
    """Checks of the Muon-specific group entries (ValueError naming the value)."""
    if group["adjust_lr"] not in ADJUST_LR_RULES:
        raise ValueError(f"adjust_lr={group['adjust_lr']!r}{where}: allowed {ADJUST_LR_RULES}")
    if not isinstance(group["nesterov"], bool):
        raise ValueError(f"nesterov={group['nesterov']!r}{where}: must be True or False")
    if not isinstance(group["ns_steps"], int) or not 0 <= group["ns_steps"] < 100:
        raise ValueError(f"ns_steps={group['ns_steps']!r}{where}: must be an integer in [0, 100)")
    resolve_ns_dtype(group["ns_dtype"])
    if len(tuple(group["ns_coefficients"])) != 3:
        raise ValueError(f"ns_coefficients={group['ns_coefficients']!r}{where}: need three numbers (a, b, c)")
    if not isinstance(group["ns_eps"], (int, float)) or not group["ns_eps"] > 0:
        raise ValueError(f"ns_eps={group['ns_eps']!r}{where}: must be > 0")


def validate_adam_hyperparameters(betas: Any, eps: Any, where: str = "") -> None:
    """betas = (β1, β2) in [0, 1), eps ≥ 0, else ValueError."""
    if len(tuple(betas)) != 2 or not all(isinstance(b, (int, float)) and 0.0 <= b < 1.0 for b in betas):
        raise ValueError(f"betas={betas!r}{where}: need two numbers in [0, 1)")
    if not isinstance(eps, (int, float)) or not eps >= 0:
        raise ValueError(f"eps={eps!r}{where}: must be a number >= 0")


class Muon(DiagnosedOptimizer):
    r"""Muon for hidden ≥2-D weights (conv weights as [out, in·kh·kw]) + AdamW for the rest, one object.

    Algorithm of the ``kind="muon"`` groups: module docstring (equal to ``torch.optim.Muon`` on 2-D weights
    with the same hyperparameters and ``ns_dtype="bfloat16"``). ``kind="adamw"`` groups: ``torch.optim.AdamW``
    (``betas``, ``eps``, decoupled ``weight_decay``; its foreach implementation), typically with their own ``lr``.

    params: tensors, (name, tensor) pairs or group dicts with an optional ``kind`` (default "muon");
    ``muon_param_groups(model.named_parameters(), excluded=...)`` builds the usual two groups.
    Defaults follow torch.optim.Muon except weight_decay (0 here; torch uses 0.1).
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, *, weight_decay: float = 0.0,
                 momentum: float = 0.95, nesterov: bool = True, adjust_lr: str = "original",
                 ns_steps: int = NS_STEPS, ns_dtype: str = "bfloat16", ns_eps: float = NS_EPS,
                 ns_coefficients: tuple[float, float, float] = NS_COEFFICIENTS,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, diagnostics: bool = False,
                 spectrum_every: int = 1) -> None:
        defaults = {"lr": lr, "weight_decay": weight_decay, "momentum": momentum, "nesterov": nesterov,
                    "adjust_lr": adjust_lr, "ns_steps": ns_steps, "ns_dtype": ns_dtype, "ns_eps": ns_eps,
                    "ns_coefficients": tuple(ns_coefficients), "betas": tuple(betas), "eps": eps,
                    "kind": "muon"}
        super().__init__(params, defaults)
        self._setup_diagnostics(diagnostics, spectrum_every)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        group, index, where = validated_new_group(self, MUON_GROUP_KINDS)
        if group["kind"] == "muon":
            if not isinstance(group["momentum"], (int, float)) or not 0.0 <= group["momentum"] < 1.0:
                raise ValueError(f"momentum={group['momentum']!r}{where}: must be a number in [0, 1)")
            validate_muon_hyperparameters(group, where)
            validate_muon_params(group, index)
        else:
            validate_adam_hyperparameters(group["betas"], group["eps"], where)

    def _apply_update(self) -> None:
        record = self._spectrum_due()
        for group_index, group in enumerate(self.param_groups):
            names = group.get("param_names")
            if group["kind"] == "muon":
                for index, param in enumerate(group["params"]):
                    if param.grad is None:
                        continue
                    state = self.state[param]
                    if "momentum_buffer" not in state:
                        state["momentum_buffer"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                    matrix, update = muon_matrix_update(
                        param, param.grad, state["momentum_buffer"], beta=group["momentum"], lr=group["lr"],
                        weight_decay=group["weight_decay"], nesterov=group["nesterov"],
                        adjust_lr=group["adjust_lr"], ns_steps=group["ns_steps"], ns_dtype=group["ns_dtype"],
                        ns_eps=group["ns_eps"], ns_coefficients=group["ns_coefficients"])
                    if record:
                        record_spectra(self.muon_spectra, self._name(names, group_index, index), matrix, update,
                                       param.grad)
            else:
                self._adamw_update(group)

    def _adamw_update(self, group: dict[str, Any]) -> None:
        params, grads, exp_avgs, exp_avg_sqs, steps = [], [], [], [], []
        for param in group["params"]:
            if param.grad is None:
                continue
            state = self.state[param]
            if not state:
                state["step"] = torch.tensor(0.0)
                state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
            params.append(param)
            grads.append(param.grad)
            exp_avgs.append(state["exp_avg"])
            exp_avg_sqs.append(state["exp_avg_sq"])
            steps.append(state["step"])
        if params:
            beta1, beta2 = group["betas"]
            torch_adam.adam(params, grads, exp_avgs, exp_avg_sqs, [], steps, foreach=True,
                            decoupled_weight_decay=True,
                            amsgrad=False, beta1=beta1, beta2=beta2, lr=group["lr"],
                            weight_decay=group["weight_decay"], eps=group["eps"], maximize=False)

    def _momentum_buffer(self, param: Tensor) -> Tensor | None:
        state = self.state.get(param, {})
        return state.get("momentum_buffer", state.get("exp_avg"))

    def _momentum_view(self, param: Tensor, group: dict[str, Any], had_buffer: bool) -> MomentumView:
        state = self.state[param]
        if group["kind"] == "muon":
            return MomentumView(state["momentum_buffer"], group["momentum"], 1.0 - group["momentum"])
        beta1 = group["betas"][0]
        return MomentumView(state["exp_avg"], beta1, 1.0 - beta1)
