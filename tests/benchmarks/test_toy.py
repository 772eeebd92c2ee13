"""The synthetic two-objective toy: hand-checked values, autograd vs finite differences, Pareto set."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from apt.benchmarks.toy import (
    CAGRAD_INITIAL_POINTS,
    NASH_FAMO_FIRST_LOSS_SCALE,
    NASH_FAMO_INITIAL_POINTS,
    NASH_PARETO_LINE_X2,
    loss_grid,
    pareto_set,
    toy_losses,
)


def _scalar_losses(x1: float, x2: float, scale: float = 1.0) -> tuple[float, float]:
    """The same problem written independently with the math module (scalar), as a reference."""
    g1 = math.log(max(abs(0.5 * (-x1 - 7) - math.tanh(-x2)), 5e-6)) + 6
    g2 = math.log(max(abs(0.5 * (-x1 + 3) + math.tanh(-x2) + 2), 5e-6)) + 6
    f1_sq = ((-x1 + 7) ** 2 + 0.1 * (-x2 - 8) ** 2) / 10 - 20
    f2_sq = ((-x1 - 7) ** 2 + 0.1 * (-x2 - 8) ** 2) / 10 - 20
    c1, c2 = max(math.tanh(x2 * 0.5), 0.0), max(math.tanh(-x2 * 0.5), 0.0)
    return scale * (g1 * c1 + f1_sq * c2), g2 * c1 + f2_sq * c2


def test_hand_checked_values() -> None:
    # x = (1, 2): c1 = tanh(1) = 0.761594, c2 = 0; g1 = log(4 - tanh 2) + 6 = log(3.035972) + 6,
    # g2 = log(3 - tanh 2) + 6 = log(2.035972) + 6.
    losses = toy_losses(torch.tensor([1.0, 2.0], dtype=torch.float64))
    assert losses[0].item() == pytest.approx(math.tanh(1) * (math.log(4 - math.tanh(2)) + 6), rel=1e-12)
    assert losses[1].item() == pytest.approx(math.tanh(1) * (math.log(3 - math.tanh(2)) + 6), rel=1e-12)
    assert losses.tolist() == pytest.approx([5.41534, 5.11104], abs=1e-5)
    # x = (7, -8.3552): only the bowls; h1 = 0.1·0.3552²/10 - 20, c2 = tanh(4.1776).
    losses = toy_losses(torch.tensor([7.0, -8.3552], dtype=torch.float64), first_loss_scale=0.1)
    c2 = math.tanh(4.1776)
    assert losses[0].item() == pytest.approx(0.1 * c2 * (0.01 * 0.3552**2 - 20), rel=1e-12)
    assert losses[1].item() == pytest.approx(c2 * (196 / 10 + 0.01 * 0.3552**2 - 20), rel=1e-12)
    # The origin: both gates are tanh(0) = 0.
    assert toy_losses(torch.zeros(2)).tolist() == [0.0, 0.0]


@settings(max_examples=100, deadline=None)
@given(
    x1=st.floats(-10, 10),
    x2=st.floats(-10, 10),
    scale=st.sampled_from([1.0, NASH_FAMO_FIRST_LOSS_SCALE]),
)
def test_matches_independent_scalar_implementation(x1: float, x2: float, scale: float) -> None:
    losses = toy_losses(torch.tensor([x1, x2], dtype=torch.float64), scale)
    assert losses.tolist() == pytest.approx(list(_scalar_losses(x1, x2, scale)), rel=1e-10, abs=1e-10)


@settings(max_examples=60, deadline=None)
@given(x1=st.floats(-9.5, 9.5), x2=st.floats(-9.5, 9.5).filter(lambda v: abs(v) > 0.05))
def test_autograd_gradient_matches_central_differences(x1: float, x2: float) -> None:
    point = torch.tensor([x1, x2], dtype=torch.float64, requires_grad=True)
    losses = toy_losses(point, NASH_FAMO_FIRST_LOSS_SCALE)
    for k in range(2):
        (gradient,) = torch.autograd.grad(losses[k], point, retain_graph=True)
        step = 1e-6
        for i in range(2):
            shift = torch.zeros(2, dtype=torch.float64)
            shift[i] = step
            with torch.no_grad():
                upper = toy_losses(point + shift, NASH_FAMO_FIRST_LOSS_SCALE)[k]
                lower = toy_losses(point - shift, NASH_FAMO_FIRST_LOSS_SCALE)[k]
            numeric = ((upper - lower) / (2 * step)).item()
            # The |·| inside g1, g2 has a kink; stay away from it (where the two one-sided slopes differ).
            if abs(numeric - gradient[i].item()) > 1e-4 * (1 + abs(numeric)):
                inner1 = 0.5 * (-x1 - 7) - math.tanh(-x2)
                inner2 = 0.5 * (-x1 + 3) + math.tanh(-x2) + 2
                assert min(abs(inner1), abs(inner2)) < 1e-4, (x1, x2, k, i, numeric, gradient[i].item())


def test_batched_equals_pointwise() -> None:
    generator = torch.Generator().manual_seed(0)
    points = torch.rand(4, 3, 2, generator=generator, dtype=torch.float64) * 20 - 10
    batched = toy_losses(points)
    assert batched.shape == (4, 3, 2)
    for index in [(0, 0), (1, 2), (3, 1)]:
        assert torch.equal(batched[index], toy_losses(points[index]))


def test_pareto_set_is_pareto_stationary_and_near_nash_line() -> None:
    points = pareto_set(41)
    assert points.shape == (41, 2)
    assert points[0, 0].item() == -7.0 and points[-1, 0].item() == 7.0
    assert points[20, 1].item() == pytest.approx(NASH_PARETO_LINE_X2, abs=2e-4)
    assert ((points[:, 1] > -8.45) & (points[:, 1] < -8.35)).all()
    for point in points[1:-1]:
        x = point.clone().requires_grad_(True)
        losses = toy_losses(x, NASH_FAMO_FIRST_LOSS_SCALE)
        (g1,) = torch.autograd.grad(losses[0], x, retain_graph=True)
        (g2,) = torch.autograd.grad(losses[1], x)
        # Pareto-stationary in ℝ²: the two gradients are anti-parallel (zero determinant, negative dot).
        cosine = torch.dot(g1, g2) / (g1.norm() * g2.norm())
        assert cosine.item() == pytest.approx(-1.0, abs=1e-9)
    # Endpoints: single-task minimisers (the gradient of the other loss vanishes there).
    x = points[-1].clone().requires_grad_(True)
    (g1,) = torch.autograd.grad(toy_losses(x)[0], x)
    assert g1.norm().item() < 1e-9


def test_initial_points_and_grid() -> None:
    assert len(CAGRAD_INITIAL_POINTS) == 3 and len(NASH_FAMO_INITIAL_POINTS) == 5
    grid1, grid2, losses = loss_grid((-10, 10), (-5, 5), n=11)
    assert grid1.shape == grid2.shape == (11, 11) and losses.shape == (11, 11, 2)
    assert grid1[0].tolist() == pytest.approx([-10 + 2 * i for i in range(11)])  # columns follow x1
    assert grid2[:, 0].tolist() == pytest.approx([-5 + i for i in range(11)])  # rows follow x2
    assert losses[3, 7].tolist() == pytest.approx(list(_scalar_losses(grid1[3, 7].item(), grid2[3, 7].item())))


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match=r"\[\.\.\., 2\]"):
        toy_losses(torch.zeros(3))
    with pytest.raises(ValueError, match="floating"):
        toy_losses(torch.zeros(2, dtype=torch.int64))
    with pytest.raises(ValueError, match="first_loss_scale"):
        toy_losses(torch.zeros(2), first_loss_scale=0.0)
    with pytest.raises(ValueError, match="low < high"):
        loss_grid((1, 1))
