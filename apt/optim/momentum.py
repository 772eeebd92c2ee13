"""APT adaptive momentum: β_t ∈ [β_min, β_max] from the cosine between the instant gradient and the momentum.

Every rule here is an *assumption* (the paper's equations are not available; DESIGN.md §3). Each carries
its register id (``apt.optim.assumptions``). Shared notation, per parameter tensor i (or, with the global
scope, for the concatenation of all tensors):

    c_t   = cos(g_t, m_{t−1}) = ⟨g_t, m_{t−1}⟩ / (‖g_t‖ ‖m_{t−1}‖),   c_t := 0 when either norm is 0   (A4)
    s     = +1 ("agree_more": agreement -> more momentum) or −1 ("agree_less")                     (A3)
    β_t   = rule(s · c_t) ∈ [β_min, β_max]                                                          (A1, A2)
    m_t   = β_t m_{t−1} + (1 − β_t) g_t,      m̂_t = m_t / (1 − Π_{s≤t} β_s)                       (A5)

With β_min = β_max = β every rule returns β, so the momentum is the base optimizer's EMA exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

ADAPT_DIRECTIONS: tuple[str, ...] = ("agree_more", "agree_less")
COSINE_SCOPES: tuple[str, ...] = ("tensor", "global")


def linear_cosine_rule(signed_cosine: Tensor, beta_min: float, beta_max: float) -> Tensor:
    """Register A1 (an assumption, not the paper's formula): β linear in the cosine over its whole range.

    β = β_min + (β_max − β_min) · (1 + s·c) / 2.   s·c = 1 -> β_max, 0 -> midpoint, −1 -> β_min.
    signed_cosine: any shape, values in [−1, 1]. Returns β of the same shape.
    """
    return beta_min + (beta_max - beta_min) * (1.0 + signed_cosine) / 2.0


def clipped_cosine_rule(signed_cosine: Tensor, beta_min: float, beta_max: float) -> Tensor:
    """Register A2 (an assumption, not the paper's formula): β linear in the positive part of the cosine.

    β = β_min + (β_max − β_min) · max(0, s·c).   Orthogonal or opposed (s·c ≤ 0) -> β_min; s·c = 1 -> β_max.
    signed_cosine: any shape, values in [−1, 1]. Returns β of the same shape.
    """
    return beta_min + (beta_max - beta_min) * signed_cosine.clamp(min=0.0)


MOMENTUM_RULES: dict[str, Callable[[Tensor, float, float], Tensor]] = {
    "linear": linear_cosine_rule,
    "clipped": clipped_cosine_rule,
}


def validate_beta_range(beta_min: float, beta_max: float) -> None:
    """0 ≤ β_min ≤ β_max < 1, else ValueError naming the values."""
    for name, value in (("beta_min", beta_min), ("beta_max", beta_max)):
        if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
            raise ValueError(f"{name}={value!r}: must be a number in [0, 1)")
    if beta_min > beta_max:
        raise ValueError(f"beta_min={beta_min!r} > beta_max={beta_max!r}: need beta_min <= beta_max")


def validate_choice(name: str, value: str, allowed: Sequence[str]) -> None:
    """ValueError unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise ValueError(f"{name}={value!r}: allowed {tuple(allowed)}")


def adaptive_beta(cosine: Tensor, *, beta_min: float, beta_max: float, rule: str = "linear",
                  direction: str = "agree_more") -> Tensor:
    """β_t = rule(s·c_t) clamped to [β_min, β_max] (the clamp only guards against rounding of c outside [−1, 1]).

    cosine: any shape, cos(g_t, m_{t−1}). Returns β, same shape and dtype.
    """
    validate_choice("momentum_rule", rule, tuple(MOMENTUM_RULES))
    validate_choice("adapt_direction", direction, ADAPT_DIRECTIONS)
    signed = cosine.clamp(-1.0, 1.0) if direction == "agree_more" else -cosine.clamp(-1.0, 1.0)
    return MOMENTUM_RULES[rule](signed, beta_min, beta_max).clamp(beta_min, beta_max)


def tensor_cosines(grads: Sequence[Tensor], buffers: Sequence[Tensor], grad_norms: Sequence[Tensor] | None = None
                   ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Per-tensor inner products and norms of the instant gradients and momenta (register A4).

    grads, buffers: n tensors each (pairwise equal shapes); grad_norms: the n norms ‖g_i‖ if already known.
    Returns (cos [n], dot [n], ‖g‖ [n], ‖m‖ [n]), float32 on the tensors' device; cos_i = 0 where ‖g_i‖‖m_i‖ = 0.
    """
    dots = torch.stack([torch.dot(g.reshape(-1), m.reshape(-1)) for g, m in zip(grads, buffers)]).float()
    norms = torch._foreach_norm(list(grads)) if grad_norms is None else list(grad_norms)
    grad_norms = torch.stack(norms).float()
    buffer_norms = torch.stack(torch._foreach_norm(list(buffers))).float()
    return safe_cosine(dots, grad_norms * buffer_norms), dots, grad_norms, buffer_norms


def global_cosine(dots: Tensor, grad_norms: Tensor, buffer_norms: Tensor) -> Tensor:
    """cos of the concatenations: Σ⟨g_i, m_i⟩ / (√Σ‖g_i‖² √Σ‖m_i‖²), from per-tensor parts [n]. 0-dim tensor."""
    return safe_cosine(dots.sum(), grad_norms.square().sum().sqrt() * buffer_norms.square().sum().sqrt())


def safe_cosine(dot: Tensor, norm_product: Tensor) -> Tensor:
    """dot / norm_product, 0 where norm_product is 0 (a zero momentum at t = 1 carries no direction)."""
    positive = norm_product > 0
    return torch.where(positive, dot / torch.where(positive, norm_product, torch.ones_like(norm_product)),
                       torch.zeros_like(dot))
