"""Golden values computed by hand on small matrices (TorchJD's published values as a cross-check)."""

from __future__ import annotations

import math

import pytest
import torch

from apt.mtl import aggregate, make_method

# J = [[-4, 1, 1], [6, 1, 1]]: G = [[18, -22], [-22, 38]] (TorchJD's running example).
J = torch.tensor([[-4.0, 1.0, 1.0], [6.0, 1.0, 1.0]], dtype=torch.float64)


def test_gramian_of_the_example() -> None:
    assert torch.equal(J @ J.T, torch.tensor([[18.0, -22.0], [-22.0, 38.0]], dtype=torch.float64))


def test_mgda() -> None:
    # min over w1 ∈ [0,1] of ‖w1 g1 + (1−w1) g2‖²: w1 = (G22 − G12)/(G11 + G22 − 2 G12) = 60/100.
    # d = K (0.6 g1 + 0.4 g2) = 2 · (0, 1, 1). TorchJD MGDA (weights sum to 1): [0, 1, 1].
    assert torch.allclose(aggregate("mgda", J), torch.tensor([0.0, 2.0, 2.0], dtype=torch.float64), atol=1e-12)


def test_pcgrad() -> None:
    # g1·g2 = −22 < 0, so g1' = g1 + 22/38 g2 and g2' = g2 + 22/18 g1; d = g1' + g2'.
    expected = J[0] + 22 / 38 * J[1] + J[1] + 22 / 18 * J[0]
    assert torch.allclose(aggregate("pcgrad", J), expected, atol=1e-12)
    assert torch.allclose(expected, torch.tensor([0.5848, 3.8012, 3.8012], dtype=torch.float64), atol=1e-4)  # TorchJD


def test_imtl_g() -> None:
    # w ∝ G⁻¹ (√18, √38), normalized to sum 1; TorchJD: [0.0767, 1, 1].
    v = torch.linalg.solve(J @ J.T, torch.tensor([math.sqrt(18.0), math.sqrt(38.0)], dtype=torch.float64))
    expected = (v / v.sum()) @ J
    assert torch.allclose(aggregate("imtl_g", J), expected, atol=1e-12)
    assert torch.allclose(expected, torch.tensor([0.0767, 1.0, 1.0], dtype=torch.float64), atol=1e-4)


def test_upgrad() -> None:
    # Row 1: min vᵀGv s.t. v ≥ (1/2, 0): v = (1/2, 11/38) (v2 = −G12 v1 / G22 > 0, active bound on v1).
    # Row 2: v ≥ (0, 1/2): v = (11/18, 1/2). w = sum = (1/2 + 11/18, 11/38 + 1/2).
    w = torch.tensor([0.5 + 11 / 18, 11 / 38 + 0.5], dtype=torch.float64)
    assert torch.allclose(aggregate("upgrad", J), w @ J, atol=1e-12)
    # TorchJD's default (quadprog on G/tr G + 1e-4 I) gives [0.2929, 1.9004, 1.9004]; our exact projection differs
    # from it by that regularization only (documented in UPGrad's docstring).
    torchjd_published = torch.tensor([0.2929, 1.9004, 1.9004], dtype=torch.float64)
    assert torch.allclose(w @ J, torch.tensor([0.29240, 1.90058, 1.90058], dtype=torch.float64), atol=1e-5)
    assert 1e-4 < float((w @ J - torchjd_published).abs().max()) < 1e-3


def test_graddrop_signs() -> None:
    # Coordinate 0: P = ½(1 + 2/10) = 0.6; coordinates 1, 2: P = 1, so both positive entries are kept.
    # U = 0.3 < P keeps the positive g2 (6); U = 0.9 > P keeps the negative g1 (−4).
    method = make_method("graddrop", 2)
    uniform = torch.rand(3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    direction = method.aggregate_blocks([J])[0]
    kept_positive = uniform[0] < 0.6
    assert direction[0] == (6.0 if kept_positive else -4.0)
    assert torch.equal(direction[1:], torch.tensor([2.0, 2.0], dtype=torch.float64))


def test_cagrad_with_c_zero_is_the_sum() -> None:
    # c = 0: d = K g_0 = Σ g_k.
    assert torch.allclose(aggregate("cagrad", J, c=0.0), J.sum(0), atol=1e-12)


def test_cagrad_two_tasks_by_hand() -> None:
    # K = 2: g_w = w g1 + (1−w) g2; minimize g_wᵀ g0 + c‖g0‖‖g_w‖ over w ∈ [0, 1] on a fine grid, then
    # d = K (g0 + c‖g0‖/‖g_w‖ g_w)/(1 + c²).
    c = 0.4
    g0 = J.mean(0)
    grid = torch.linspace(0, 1, 200001, dtype=torch.float64)
    gw = grid[:, None] * J[0] + (1 - grid[:, None]) * J[1]
    objective = gw @ g0 + c * g0.norm() * gw.norm(dim=1)
    best = gw[objective.argmin()]
    expected = 2 * (g0 + c * g0.norm() / best.norm() * best) / (1 + c**2)
    assert torch.allclose(aggregate("cagrad", J), expected, atol=1e-5)


def test_nash_orthogonal_gradients() -> None:
    # G = diag(‖g_k‖²): the bargaining solution α_k (Gα)_k = 1 gives α_k = 1/‖g_k‖, d = Σ g_k/‖g_k‖.
    jacobian = torch.tensor([[3.0, 0.0, 0.0], [0.0, 0.5, 0.0], [0.0, 0.0, 20.0]], dtype=torch.float64)
    method = make_method("nash_mtl", 3)
    alpha = method.weights_from_gramian(jacobian @ jacobian.T)
    assert torch.allclose(alpha, torch.tensor([1 / 3, 2.0, 1 / 20], dtype=torch.float64), rtol=1e-3)


def test_nash_two_aligned_tasks() -> None:
    # g1 = (1, 0), g2 = (1, 1): G = [[1, 1], [1, 2]]. Solve α1(α1 + α2) = 1, α2(α1 + 2α2) = 1 by hand:
    # subtracting, α1² = 2α2² → α1 = √2 α2, α2² (2 + √2) = 1.
    jacobian = torch.tensor([[1.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    alpha2 = 1 / math.sqrt(2 + math.sqrt(2))
    method = make_method("nash_mtl", 2)
    alpha = method.weights_from_gramian(jacobian @ jacobian.T)
    assert torch.allclose(alpha, torch.tensor([math.sqrt(2) * alpha2, alpha2], dtype=torch.float64), rtol=2e-3)


def test_fairgrad_alpha_one_orthogonal() -> None:
    # α = 1 and G = diag(n²): n_k² w_k = 1/w_k, w_k = 1/n_k; d = K Σ w_k g_k.
    jacobian = torch.tensor([[2.0, 0.0], [0.0, 5.0]], dtype=torch.float64)
    expected = 2 * (jacobian[0] / 2 + jacobian[1] / 5)
    assert torch.allclose(aggregate("fairgrad", jacobian, alpha=1.0), expected, rtol=1e-6)


@pytest.mark.parametrize("alpha", [0.5, 2.0, 5.0])
def test_fairgrad_solves_its_equation(alpha: float) -> None:
    jacobian = torch.tensor([[-4.0, 1.0, 1.0], [6.0, 1.0, 1.0], [1.0, -2.0, 0.5]], dtype=torch.float64)
    gramian = jacobian @ jacobian.T
    w = make_method("fairgrad", 3, alpha=alpha).weights_from_gramian(gramian) / 3
    assert torch.allclose(gramian @ w, w ** (-1 / alpha), rtol=1e-6)


def test_loss_based_weights_by_hand() -> None:
    losses = torch.tensor([0.5, 2.0, 4.0], requires_grad=True)
    assert torch.equal(make_method("ls", 3).weigh(losses)[1], torch.ones(3))
    assert torch.allclose(make_method("si", 3).weigh(losses)[1], torch.tensor([2.0, 0.5, 0.25]))
    objective, weights = make_method("uw", 3).weigh(losses)
    assert torch.allclose(objective, torch.tensor(0.5 * 6.5)) and torch.allclose(weights, torch.full((3,), 0.5))
    # FAMO at ξ = 0: z = 1/3, w_k = (1/D_k) / Σ_j (1/D_j) with D = ℓ + 1e-8.
    inverse = 1 / (losses.detach() + 1e-8)
    assert torch.allclose(make_method("famo", 3).weigh(losses)[1], inverse / inverse.sum())


def test_dwa_epoch_weights_by_hand() -> None:
    method = make_method("dwa", 2)
    losses = torch.tensor([1.0, 1.0], requires_grad=True)
    assert torch.equal(method.weigh(losses)[1], torch.ones(2))
    method.end_epoch(torch.tensor([1.0, 2.0]))
    assert torch.equal(method.weigh(losses)[1], torch.ones(2)), "one epoch of history is not enough"
    method.end_epoch(torch.tensor([0.5, 2.0]))
    # r = (0.5, 1); w = 2 softmax(r / 2).
    r = torch.tensor([0.5, 1.0], dtype=torch.float64)
    expected = 2 * torch.exp(r / 2) / torch.exp(r / 2).sum()
    assert torch.allclose(method.weigh(losses)[1].double(), expected)


def test_famo_first_update_by_hand() -> None:
    # After one update from ξ = 0, Adam moves each logit by −lr·sign(gradient) (first bias-corrected step);
    # the gradient is (diag z − z zᵀ) δ with z uniform, i.e. z_k (δ_k − mean δ).
    method = make_method("famo", 2, logit_lr=0.025)
    method.weigh(torch.tensor([1.0, 1.0], requires_grad=True))
    method.after_step(torch.tensor([0.5, 0.9]))  # task 0 improved more: δ = (log 2, −log 0.9)
    assert torch.allclose(method.logits, torch.tensor([-0.025, 0.025]), atol=1e-6)


@pytest.mark.parametrize("name", ["cagrad", "nash_mtl"])
def test_conic_programs_are_dpp(name: str) -> None:
    """Built from cvxpy Parameters in DPP form: compiled once, re-solved with new values each step."""
    method = make_method(name, 2)
    method.weights_from_gramian(J @ J.T)
    assert method._problem.is_dpp()
