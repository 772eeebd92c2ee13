r"""APT optimizers: Adam, AdamW and Muon whose momentum coefficient adapts to the instant gradient.

One class, ``APT``, with ``base`` = "adam" | "adamw" | "muon" (the default ``kind`` of its param groups).
Per step t, for each parameter tensor i with instant gradient g_t (``.grad``, never modified):

.. math::
    c_t = \cos(g_t, m_{t−1}),\quad β_t = \mathrm{rule}(s\,c_t) ∈ [β_{min}, β_{max}],\quad
    m_t = β_t m_{t−1} + (1 − β_t) g_t                                     \quad\text{(apt.optim.momentum)}

kind "adam"/"adamw" (g_t ← g_t + λθ for "adam"; θ ← (1 − ηλ)θ first for "adamw"):

.. math::
    v_t = β_2 v_{t−1} + (1 − β_2) g_t^2,\quad
    θ_t = θ_{t−1} − η\,\frac{m_t / (1 − \prod_{s≤t} β_s)}{\sqrt{v_t / (1 − β_2^t)} + ε}

The first-moment bias correction divides by 1 − Π β_s, the total weight of the EMA, so it stays exact when
β varies (register A5); with β_min = β_max = β1 it is 1 − β1^t and the step is ``torch.optim.Adam``'s.

kind "muon": ``apt.optim.muon.muon_matrix_update`` with β_t in place of μ (also in the Nesterov look-ahead)
and a direction-preservation rule (``apt.optim.direction``) around the orthogonalization. Muon needs no
bias correction: NS is invariant to the scale of its input. With β_min = β_max = μ and ``preserve="none"``
it is ``apt.optim.Muon`` exactly.

In ``APT(base="muon")`` the AdamW companion group (first layer, heads, biases) has kind "adamw" and, by
default, β_min = β_max = β1: APT adapts only the Muon matrices (register A7).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from apt.optim.diagnostics import DiagnosedOptimizer, MomentumView
from apt.optim.direction import validate_preservation
from apt.optim.momentum import (ADAPT_DIRECTIONS, COSINE_SCOPES, MOMENTUM_RULES, adaptive_beta, global_cosine,
                                tensor_cosines, validate_beta_range, validate_choice)
from apt.optim.muon import (muon_matrix_update, record_spectra, validate_adam_hyperparameters, validated_new_group,
                            validate_muon_hyperparameters, validate_muon_params)
from apt.optim.newton_schulz import NS_COEFFICIENTS, NS_EPS, NS_STEPS

APT_BASES: tuple[str, ...] = ("adam", "adamw", "muon")


class APT(DiagnosedOptimizer):
    """APT-Adam, APT-AdamW or APT-Muon (module docstring for the maths; every rule is a register entry).

    params: tensors, (name, tensor) pairs or group dicts; a group may set its own ``kind`` and any
    hyperparameter below. ``base`` is the default kind. For base "muon" use
    ``muon_param_groups(named_parameters, excluded=..., adam_lr=...)`` and give the AdamW group its β range
    (``apt.optim.make_optimizer("apt_muon", ...)`` does this).

    beta_min, beta_max: range of β_t (0 ≤ β_min ≤ β_max < 1). momentum_rule: "linear" (A1) | "clipped" (A2).
    adapt_direction: "agree_more" (agreement -> more momentum) | "agree_less" (A3).
    cosine_scope: "tensor" (one cosine per parameter tensor) | "global" (one for all tensors of the groups
    with that scope) (A6). beta2, eps: Adam's second moment. nesterov, adjust_lr, ns_*: Muon's.
    preserve: "none" | "pre_mix" | "post_mix" | "dual_ns" (D0–D3), preserve_strength γ ∈ [0, 1] (D4).
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, *, base: str = "adam", beta_min: float = 0.5,
                 beta_max: float = 0.9, beta2: float = 0.999, eps: float = 1e-8, weight_decay: float = 0.0,
                 momentum_rule: str = "linear", adapt_direction: str = "agree_more",
                 cosine_scope: str = "tensor", nesterov: bool = True, adjust_lr: str = "original",
                 ns_steps: int = NS_STEPS, ns_dtype: str = "bfloat16", ns_eps: float = NS_EPS,
                 ns_coefficients: tuple[float, float, float] = NS_COEFFICIENTS, preserve: str = "none",
                 preserve_strength: float = 0.1, diagnostics: bool = False, spectrum_every: int = 1) -> None:
        validate_choice("base", base, APT_BASES)
        defaults = {"lr": lr, "kind": base, "beta_min": beta_min, "beta_max": beta_max, "beta2": beta2,
                    "eps": eps, "weight_decay": weight_decay, "momentum_rule": momentum_rule,
                    "adapt_direction": adapt_direction, "cosine_scope": cosine_scope, "nesterov": nesterov,
                    "adjust_lr": adjust_lr, "ns_steps": ns_steps, "ns_dtype": ns_dtype, "ns_eps": ns_eps,
                    "ns_coefficients": tuple(ns_coefficients), "preserve": preserve,
                    "preserve_strength": preserve_strength}
        super().__init__(params, defaults)
        self._setup_diagnostics(diagnostics, spectrum_every)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        group, index, where = validated_new_group(self, APT_BASES)
        try:
            validate_beta_range(group["beta_min"], group["beta_max"])
            validate_choice("momentum_rule", group["momentum_rule"], tuple(MOMENTUM_RULES))
            validate_choice("adapt_direction", group["adapt_direction"], ADAPT_DIRECTIONS)
            validate_choice("cosine_scope", group["cosine_scope"], COSINE_SCOPES)
            if group["kind"] == "muon":
                validate_preservation(group["preserve"], group["preserve_strength"])
        except ValueError as error:
            raise ValueError(f"{error}{where}") from None
        if group["kind"] == "muon":
            validate_muon_hyperparameters(group, where)
            validate_muon_params(group, index)
        else:
            validate_adam_hyperparameters((0.0, group["beta2"]), group["eps"], where)

    # ----- the step ---------------------------------------------------------------------------------------
    def _apply_update(self) -> None:
        plans = [self._plan_group(group) for group in self.param_groups]
        self._choose_betas(plans)
        record = self._spectrum_due()
        for group_index, (group, plan) in enumerate(zip(self.param_groups, plans)):
            if not plan["params"]:
                continue
            if group["kind"] == "muon":
                self._muon_update(group, group_index, plan, record)
            else:
                self._adam_update(group, plan)

    def _plan_group(self, group: dict[str, Any]) -> dict[str, Any]:
        """The group's tensors with a gradient, their state initialized, and the gradient entering m_t."""
        params, grads, indices = [], [], []
        for index, param in enumerate(group["params"]):
            if param.grad is None:
                continue
            state = self.state[param]
            if not state:
                self._init_state(state, param, group["kind"])
            params.append(param)
            grads.append(param.grad)
            indices.append(index)
        buffer_key = "momentum_buffer" if group["kind"] == "muon" else "exp_avg"
        grads_changed = group["kind"] == "adam" and group["weight_decay"] != 0 and bool(params)
        if grads_changed:
            grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
        return {"params": params, "grads": grads, "grads_changed": grads_changed, "indices": indices,
                "buffers": [self.state[p][buffer_key] for p in params]}

    @staticmethod
    def _init_state(state: dict[str, Any], param: Tensor, kind: str) -> None:
        if kind == "muon":
            state["momentum_buffer"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        else:
            state["step"] = 0
            state["beta_product"] = 1.0
            state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        state["beta"] = 0.0
        state["momentum_cosine"] = 0.0

    def _choose_betas(self, plans: list[dict[str, Any]]) -> None:
        """β_t per tensor into plan["betas"] (floats); cosines into the state (A1–A4, A6)."""
        cosine_parts: list[tuple[dict[str, Any], dict[str, Any], tuple[Tensor, Tensor, Tensor, Tensor]]] = []
        for group, plan in zip(self.param_groups, plans):
            plan["betas"] = [float(group["beta_max"])] * len(plan["params"])
            if plan["params"] and group["beta_min"] < group["beta_max"]:
                known_norms = None if plan["grads_changed"] else [self._instant_grad_norms[p] for p in plan["params"]]
                cosine_parts.append((group, plan, tensor_cosines(plan["grads"], plan["buffers"], known_norms)))
        global_parts = [parts for group, _, parts in cosine_parts if group["cosine_scope"] == "global"]
        shared_cosine = None
        if global_parts:
            shared_cosine = global_cosine(torch.cat([p[1] for p in global_parts]),
                                          torch.cat([p[2] for p in global_parts]),
                                          torch.cat([p[3] for p in global_parts]))
        for group, plan, (cosines, _, _, _) in cosine_parts:
            if group["cosine_scope"] == "global":
                cosines = shared_cosine.expand_as(cosines)
            betas = adaptive_beta(cosines, beta_min=group["beta_min"], beta_max=group["beta_max"],
                                  rule=group["momentum_rule"], direction=group["adapt_direction"])
            plan["betas"] = betas.tolist()
            for param, cosine in zip(plan["params"], cosines.tolist()):
                self.state[param]["momentum_cosine"] = cosine

    def _adam_update(self, group: dict[str, Any], plan: dict[str, Any]) -> None:
        params, grads, betas = plan["params"], plan["grads"], plan["betas"]
        exp_avgs = plan["buffers"]
        exp_avg_sqs = [self.state[p]["exp_avg_sq"] for p in params]
        lr, beta2 = group["lr"], group["beta2"]
        if group["kind"] == "adamw" and group["weight_decay"] != 0:
            torch._foreach_mul_(params, 1.0 - lr * group["weight_decay"])
        torch._foreach_lerp_(exp_avgs, grads, [1.0 - beta for beta in betas])
        torch._foreach_mul_(exp_avg_sqs, beta2)
        torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1.0 - beta2)
        step_sizes, second_corrections = [], []
        for param, beta in zip(params, betas):
            state = self.state[param]
            state["step"] += 1
            state["beta_product"] *= beta
            state["beta"] = beta
            step_sizes.append(-lr / (1.0 - state["beta_product"]))
            second_corrections.append((1.0 - beta2 ** state["step"]) ** 0.5)
        denominators = torch._foreach_sqrt(exp_avg_sqs)
        torch._foreach_div_(denominators, second_corrections)
        torch._foreach_add_(denominators, group["eps"])
        torch._foreach_addcdiv_(params, exp_avgs, denominators, step_sizes)

    def _muon_update(self, group: dict[str, Any], group_index: int, plan: dict[str, Any], record: bool) -> None:
        names = group.get("param_names")
        for param, grad, buffer, beta, index in zip(plan["params"], plan["grads"], plan["buffers"],
                                                    plan["betas"], plan["indices"]):
            self.state[param]["beta"] = beta
            matrix, update = muon_matrix_update(
                param, grad, buffer, beta=beta, lr=group["lr"], weight_decay=group["weight_decay"],
                nesterov=group["nesterov"], adjust_lr=group["adjust_lr"], ns_steps=group["ns_steps"],
                ns_dtype=group["ns_dtype"], ns_eps=group["ns_eps"], ns_coefficients=group["ns_coefficients"],
                preserve=group["preserve"], preserve_strength=group["preserve_strength"])
            if record:
                record_spectra(self.muon_spectra, self._name(names, group_index, index), matrix, update, grad)

    # ----- diagnostics hooks ------------------------------------------------------------------------------
    def _momentum_buffer(self, param: Tensor) -> Tensor | None:
        state = self.state.get(param, {})
        return state.get("momentum_buffer", state.get("exp_avg"))

    def _momentum_view(self, param: Tensor, group: dict[str, Any], had_buffer: bool) -> MomentumView:
        state = self.state[param]
        buffer = state["momentum_buffer"] if group["kind"] == "muon" else state["exp_avg"]
        return MomentumView(buffer, state["beta"], 1.0 - state["beta"])
