"""TorchJD 0.18 as a peer oracle for every method it also implements; pinned differences are documented.

Not compared: Nash-MTL (TorchJD's NashMTL hard-codes cp.ECOS, which cvxpy 1.9 no longer installs: the very
pitfall our implementation fixes; see test_golden.py for hand-checked Nash values) and the loss-based LS/SI/RLW
(trivial, checked by hand).
"""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import pytest
import torch
from mtl_matrices import make_jacobian
from torchjd import aggregation as tja
from torchjd._linalg import DualConeProjector
from torchjd.scalarization import FAMO as TorchJDFAMO

from apt.mtl import aggregate, make_method

CASES = [(seed, k, p, scale) for seed, (k, p, scale) in enumerate([(2, 5, 0), (3, 7, 2), (4, 9, -3), (5, 12, 0)])]


def jacobian_of(case: tuple[int, int, int, int]) -> torch.Tensor:
    seed, k, p, scale = case
    return make_jacobian(seed, k, p, scale, "none")


class ClarabelProjector(DualConeProjector):
    """TorchJD's dual-cone projection QP min vᵀGv s.t. v ≥ u, solved exactly by CLARABEL (no quadprog here)."""

    def __call__(self, U: torch.Tensor, G: torch.Tensor) -> torch.Tensor:
        g = G.detach().cpu().numpy().astype(np.float64)
        g = (g / np.trace(g) + (g / np.trace(g)).T) / 2
        rows = []
        for u in U.detach().cpu().numpy().astype(np.float64):
            v = cp.Variable(len(u))
            cp.Problem(cp.Minimize(cp.quad_form(v, cp.psd_wrap(g))), [v >= u]).solve(solver=cp.CLARABEL)
            rows.append(v.value)
        return torch.as_tensor(np.stack(rows), dtype=G.dtype)


def row_scale(jacobian: torch.Tensor) -> float:
    return float(jacobian.norm(dim=1).max())


@pytest.mark.parametrize("case", CASES)
def test_mgda_against_frank_wolfe_and_an_exact_qp(case) -> None:
    jacobian = jacobian_of(case)
    ours = aggregate("mgda", jacobian) / jacobian.shape[0]  # ours sums the weights to K (lineage), TorchJD's to 1
    # TorchJD solves with Frank–Wolfe (slow, O(1/t)): ours is at least as short and close to it.
    theirs = tja.MGDA(epsilon=1e-12, max_iters=20000)(jacobian)
    assert float(ours.norm()) <= float(theirs.norm()) * (1 + 1e-9)
    assert torch.allclose(ours, theirs, rtol=1e-2, atol=1e-2 * row_scale(jacobian))
    # An exact oracle: the simplex QP solved by CLARABEL.
    g = (jacobian @ jacobian.T).numpy() / float(jacobian.norm() ** 2)
    w = cp.Variable(jacobian.shape[0], nonneg=True)
    cp.Problem(cp.Minimize(cp.quad_form(w, cp.psd_wrap(g))), [cp.sum(w) == 1]).solve(solver=cp.CLARABEL)
    exact = torch.from_numpy(w.value) @ jacobian
    assert torch.allclose(ours, exact, rtol=1e-5, atol=1e-6 * row_scale(jacobian))


@pytest.mark.parametrize("case", CASES)
def test_pcgrad_is_identical_for_the_same_random_stream(case) -> None:
    jacobian = jacobian_of(case)
    torch.manual_seed(11)
    theirs = tja.PCGrad()(jacobian)
    ours = aggregate("pcgrad", jacobian, generator=torch.Generator().manual_seed(11))
    assert torch.allclose(ours, theirs, rtol=1e-12, atol=1e-12 * float(jacobian.abs().max()))


@pytest.mark.parametrize("case", CASES)
def test_graddrop_is_identical_for_the_same_random_stream(case) -> None:
    jacobian = jacobian_of(case)
    torch.manual_seed(5)
    theirs = tja.GradDrop()(jacobian)
    ours = aggregate("graddrop", jacobian, generator=torch.Generator().manual_seed(5))
    assert torch.allclose(ours, theirs, rtol=1e-12, atol=1e-14 * row_scale(jacobian))  # only summation order differs


@pytest.mark.parametrize("case", [c for c in CASES if c[3] >= 0])
def test_cagrad(case) -> None:
    jacobian = jacobian_of(case)
    theirs = tja.CAGrad(c=0.4)(jacobian)
    # Lineage scale: ours = K / (1 + c²) × TorchJD's (which omits the rescale and the ×K).
    ours = aggregate("cagrad", jacobian) * (1 + 0.4**2) / jacobian.shape[0]
    assert torch.allclose(ours, theirs, rtol=1e-4, atol=1e-5 * row_scale(jacobian))


def test_cagrad_small_gradients_pinned_difference() -> None:
    """TorchJD zeroes G when tr G < norm_eps = 1e-4 (an absolute threshold) and returns d = 0; ours is
    scale-invariant: A(10⁻³ J) = 10⁻³ A(J)."""
    jacobian = make_jacobian(2, 4, 9, 0, "none")
    small = 1e-3 * jacobian
    assert float((small @ small.T).trace()) < 1e-4
    assert torch.equal(tja.CAGrad(c=0.4)(small), torch.zeros(9, dtype=torch.float64))
    assert torch.allclose(aggregate("cagrad", small), 1e-3 * aggregate("cagrad", jacobian), rtol=1e-6)


@pytest.mark.parametrize("case", CASES + [(9, 3, 4, 1)])
def test_imtl_g(case) -> None:
    jacobian = jacobian_of(case)
    assert torch.allclose(aggregate("imtl_g", jacobian), tja.IMTLG()(jacobian), rtol=1e-8, atol=1e-10)


def test_imtl_g_with_duplicated_rows() -> None:
    jacobian = make_jacobian(3, 4, 6, 0, "duplicate_row")
    assert torch.allclose(aggregate("imtl_g", jacobian), tja.IMTLG()(jacobian), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("case", CASES)
def test_fairgrad(case) -> None:
    jacobian = jacobian_of(case)
    gramian = jacobian @ jacobian.T
    theirs_weights = tja.FairGradWeighting(alpha=2.0)(gramian)
    # Lineage scale: ours = K × TorchJD's. Both solve G w = w^{-1/α} by least squares; TorchJD on the raw G, whose
    # default tolerances are loose at small scales, ours rescaled: ours solves the equation at least as well.
    ours_weights = make_method("fairgrad", jacobian.shape[0]).weights_from_gramian(gramian) / jacobian.shape[0]

    def residual(w: torch.Tensor) -> float:
        return float(((gramian @ w - w ** (-0.5)) / w ** (-0.5)).abs().max())

    assert residual(ours_weights) < 1e-6
    assert residual(ours_weights) <= residual(theirs_weights) + 1e-9
    assert torch.allclose(ours_weights, theirs_weights, rtol=1e-3)
    assert torch.allclose(aggregate("fairgrad", jacobian), jacobian.shape[0] * ours_weights @ jacobian, rtol=1e-12)


@pytest.mark.parametrize("case", CASES + [(4, 3, 2, 0)])
def test_upgrad_with_an_exact_projector(case) -> None:
    jacobian = jacobian_of(case)
    theirs = tja.UPGrad(projector=ClarabelProjector())(jacobian)
    # CLARABEL's default tolerances (~1e-8 on the normalized problem) bound the agreement.
    assert torch.allclose(aggregate("upgrad", jacobian), theirs, rtol=1e-4, atol=1e-6 * row_scale(jacobian))


def test_famo_trajectory_matches() -> None:
    """Five FAMO steps on a 3-output linear model: same objectives, gradients and logits as TorchJD's FAMO."""
    torch.manual_seed(0)
    inputs, targets = torch.randn(16, 4), torch.randn(16, 3)
    models = [torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)]
    models[1].load_state_dict(models[0].state_dict())
    ours, theirs = make_method("famo", 3, gamma=1e-3, logit_lr=0.025), TorchJDFAMO(3, lr=0.025, weight_decay=1e-3)
    optimizers = [torch.optim.SGD(m.parameters(), lr=0.1) for m in models]

    def losses_of(model: torch.nn.Module) -> torch.Tensor:
        return ((model(inputs) - targets) ** 2).mean(0)

    for _ in range(5):
        objective, _ = ours.weigh(losses_of(models[0]))
        reference = theirs(losses_of(models[1]))
        assert torch.allclose(objective, reference, rtol=1e-6)
        for model, optimizer, value in zip(models, optimizers, (objective, reference), strict=True):
            optimizer.zero_grad()
            value.backward()
            optimizer.step()
        with torch.no_grad():
            ours.after_step(losses_of(models[0]))
            theirs.update(losses_of(models[1]))
        assert torch.allclose(ours.logits, theirs._w.detach(), rtol=1e-6, atol=1e-8)
    assert torch.allclose(models[0].weight, models[1].weight, rtol=1e-6)
