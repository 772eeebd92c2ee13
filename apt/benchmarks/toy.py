"""The synthetic two-objective toy problem on ℝ² of the CAGrad, Nash-MTL and FAMO papers.

This is a SYNTHETIC problem (no data, no model): two differentiable losses of a point x = (x₁, x₂),
built so that the loss-summing direction and the min-norm (MGDA) direction behave very differently.
With g₁, g₂ log-barrier-like terms for x₂ > 0 and h₁, h₂ quadratic bowls for x₂ < 0:

    g₁ = log max(|½(−x₁ − 7) − tanh(−x₂)|, 5·10⁻⁶) + 6
    g₂ = log max(|½(−x₁ + 3) + tanh(−x₂) + 2|, 5·10⁻⁶) + 6
    h₁ = ((x₁ − 7)² + 0.1 (x₂ + 8)²) / 10 − 20
    h₂ = ((x₁ + 7)² + 0.1 (x₂ + 8)²) / 10 − 20
    c₁ = max(tanh(x₂ / 2), 0),   c₂ = max(tanh(−x₂ / 2), 0)
    L₁ = s · (g₁ c₁ + h₁ c₂),    L₂ = g₂ c₁ + h₂ c₂

s = 1 is the CAGrad paper's problem; Nash-MTL and FAMO scale the first loss by s = 0.1 to make the
tasks imbalanced (``NASH_FAMO_FIRST_LOSS_SCALE``). Sources (read, not copied):
Cranial-XIX/CAGrad toy script, AvivNavon/nash-mtl experiments/toy/problem.py, Cranial-XIX/FAMO
experiments/toy. No optimiser or MTL method lives here; trajectories are run elsewhere.

Pareto set (the same for every s > 0, since s only rescales the weight of L₁): for x₂ < 0 only the
bowls are active; a convex combination of the two gradients vanishes iff x₁ ∈ [−7, 7] and x₂ = φ(x₁)
solves (derivation in ``pareto_set``)

    0.02 (x₂ + 8) c₂(x₂) + c₂′(x₂) · ((49 − x₁²)/10 + 0.01 (x₂ + 8)² − 20) = 0,   c₂′ = −½ (1 − tanh²(x₂/2)),

a curve with x₂ ≈ −8.355 (Nash-MTL's plotting code draws the line x₂ = −8.3552); its endpoints
(±7, φ(±7)) are the minimisers of L₂ and L₁.
"""

from __future__ import annotations

import torch
from torch import Tensor

LOG_FLOOR = 5e-6
NASH_FAMO_FIRST_LOSS_SCALE = 0.1
# Initial points of the trajectory figures.
CAGRAD_INITIAL_POINTS: tuple[tuple[float, float], ...] = ((-8.5, 7.5), (-8.5, -5.0), (9.0, 9.0))
NASH_FAMO_INITIAL_POINTS: tuple[tuple[float, float], ...] = (
    (-8.5, 7.5),
    (0.0, 0.0),
    (9.0, 9.0),
    (-7.5, -0.5),
    (9.0, -1.0),
)
PARETO_X1_RANGE = (-7.0, 7.0)
NASH_PARETO_LINE_X2 = -8.3552  # Nash-MTL's drawn approximation of the Pareto set


def toy_losses(x: Tensor, first_loss_scale: float = 1.0) -> Tensor:
    """(L₁(x), L₂(x)) of the synthetic toy problem (module docstring). x: [..., 2] → [..., 2].

    Differentiable (almost everywhere) in x; a single point x [2] gives the loss vector [2].
    """
    if not isinstance(x, Tensor) or x.shape[-1:] != (2,) or not x.is_floating_point():
        raise ValueError(f"toy_losses needs a floating tensor [..., 2], got {getattr(x, 'shape', type(x))}")
    if not first_loss_scale > 0:
        raise ValueError(f"first_loss_scale={first_loss_scale}: must be > 0")
    x1, x2 = x[..., 0], x[..., 1]
    g1 = torch.clamp((0.5 * (-x1 - 7) - torch.tanh(-x2)).abs(), min=LOG_FLOOR).log() + 6
    g2 = torch.clamp((0.5 * (-x1 + 3) + torch.tanh(-x2) + 2).abs(), min=LOG_FLOOR).log() + 6
    h1 = ((x1 - 7) ** 2 + 0.1 * (x2 + 8) ** 2) / 10 - 20
    h2 = ((x1 + 7) ** 2 + 0.1 * (x2 + 8) ** 2) / 10 - 20
    c1 = torch.clamp(torch.tanh(x2 / 2), min=0)
    c2 = torch.clamp(torch.tanh(-x2 / 2), min=0)
    return torch.stack([first_loss_scale * (g1 * c1 + h1 * c2), g2 * c1 + h2 * c2], dim=-1)


def _pareto_residual(x1: Tensor, x2: Tensor) -> Tensor:
    c2 = torch.tanh(-x2 / 2)
    dc2 = -0.5 * (1 - torch.tanh(x2 / 2) ** 2)
    return 0.02 * (x2 + 8) * c2 + dc2 * ((49 - x1**2) / 10 + 0.01 * (x2 + 8) ** 2 - 20)


def pareto_set(n_points: int = 200, iterations: int = 80) -> Tensor:
    """Points (x₁, φ(x₁)) [n_points, 2] (float64) of the Pareto set, x₁ evenly spaced on [−7, 7].

    Derivation: for x₂ < 0, L_k = w_k h_k c₂ (w₁ = s, w₂ = 1). Weights ∝ (x₁ + 7, 7 − x₁) cancel the
    x₁-components (x₁ − 7)/5 and (x₁ + 7)/5 of the two gradients; the x₂-component of that combination,
    divided by 14, is the residual in the module docstring. It is positive at x₂ = −8 and negative at
    x₂ = −10 for every x₁ ∈ [−7, 7], so φ is found by bisection on [−10, −8].
    """
    if n_points < 2:
        raise ValueError(f"n_points={n_points}: must be >= 2")
    x1 = torch.linspace(*PARETO_X1_RANGE, n_points, dtype=torch.float64)
    low = torch.full_like(x1, -10.0)  # residual < 0
    high = torch.full_like(x1, -8.0)  # residual > 0
    for _ in range(iterations):
        middle = (low + high) / 2
        negative = _pareto_residual(x1, middle) < 0
        low = torch.where(negative, middle, low)
        high = torch.where(negative, high, middle)
    return torch.stack([x1, (low + high) / 2], dim=1)


def loss_grid(
    x1_limits: tuple[float, float] = (-10.0, 10.0),
    x2_limits: tuple[float, float] = (-10.0, 10.0),
    n: int = 200,
    first_loss_scale: float = 1.0,
) -> tuple[Tensor, Tensor, Tensor]:
    """(X₁ [n, n], X₂ [n, n], L [n, n, 2]) on a regular grid, for contour plots (``plt.contour(X1, X2, L[..., k])``).

    Rows follow x₂, columns x₁ (``indexing="xy"``, matplotlib's convention); float64.
    """
    if n < 2:
        raise ValueError(f"n={n}: must be >= 2")
    for name, (low, high) in (("x1_limits", x1_limits), ("x2_limits", x2_limits)):
        if not low < high:
            raise ValueError(f"{name}={(low, high)}: need low < high")
    axis1 = torch.linspace(*x1_limits, n, dtype=torch.float64)
    axis2 = torch.linspace(*x2_limits, n, dtype=torch.float64)
    grid1, grid2 = torch.meshgrid(axis1, axis2, indexing="xy")
    with torch.no_grad():
        losses = toy_losses(torch.stack([grid1, grid2], dim=-1), first_loss_scale)
    return grid1, grid2, losses
