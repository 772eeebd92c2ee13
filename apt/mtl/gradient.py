"""Gradient-based MTL methods: MGDA, PCGrad, GradDrop, CAGrad, IMTL-G, FairGrad, UPGrad (Nash-MTL: nash_mtl.py).

Notation: J [K, P] has rows g_k = ∂ℓ_k/∂θ_shared, G = J Jᵀ [K, K], d [P] is the direction written to .grad.
Weights are computed in float64 from G. The scale conventions are those of the reference code named in each
docstring (e.g. MGDA's weights sum to K there, IMTL-G's to 1), since under SGD they set the effective step.
"""

from __future__ import annotations

from collections.abc import Sequence

import cvxpy as cp
import numpy as np
import torch
from scipy.optimize import least_squares
from torch import Tensor

from apt.mtl.base import (
    SOLVER_FAILURE_POLICIES,
    GramianMethod,
    JacobianMethod,
    check_choice,
    check_float,
    solve_quietly,
)
from apt.mtl.solvers import dual_cone_weights, min_norm_simplex_weights, normalized, psd_factor


class MGDA(GramianMethod):
    """MGDA: the min-norm point of the convex hull of the task gradients, scaled to sum K.

        w* = argmin_{w ≥ 0, Σ_k w_k = 1} ‖Jᵀ w‖²,   d = K · Jᵀ w*

    Paper: Sener & Koltun, "Multi-Task Learning as Multi-Objective Optimization", NeurIPS 2018
    (arXiv 1810.04650); Désidéri 2012 for MGDA itself. Reference: the Nash-MTL/FAMO lineage ``MGDA``
    (params="shared", normalization="none", weights × K). Deviation: the lineage (and TorchJD) solve the
    quadratic program approximately with Frank–Wolfe iterations; we solve it exactly (non-negative least
    squares, apt.mtl.solvers), so weights differ from theirs by the Frank–Wolfe error only.
    Non-conflicting: g_k·d ≥ ‖d‖²/K ≥ 0 for every k. With ``features`` this is MGDA-UB (gradients w.r.t. the
    shared representation).
    """

    name = "mgda"
    paper = "Sener & Koltun, Multi-Task Learning as Multi-Objective Optimization, NeurIPS 2018, arXiv:1810.04650"
    supports_features = True

    def weights_from_gramian(self, gramian: Tensor, *, step: int | None = None) -> Tensor:
        return self.n_tasks * min_norm_simplex_weights(gramian)


class PCGrad(GramianMethod):
    """PCGrad (gradient surgery): each g_i is projected off every g_j it conflicts with, in random order.

        g_i^PC ← g_i;  for j in a random permutation of {1..K} \\ {i}:
            if g_i^PC · g_j < 0:  g_i^PC ← g_i^PC − (g_i^PC · g_j / ‖g_j‖²) g_j
        d = Σ_i g_i^PC   (reduction "sum", the lineage default)

    Each g_i^PC is a combination of the rows, so d = Jᵀ w with w tracked from G alone (as TorchJD does).
    Paper: Yu et al., "Gradient Surgery for Multi-Task Learning", NeurIPS 2020 (arXiv 2001.06782).
    Reference: the lineage ``PCGrad`` (from WeiChengTseng/Pytorch-PCGrad). Deviations: the permutations come
    from ``generator`` (one ``torch.randperm(K)`` per task i, in order: the same stream as TorchJD's PCGrad on
    an equally seeded global generator); the lineage also projects g_i^PC on its own g_i, a step the paper's
    algorithm (j ≠ i) and TorchJD skip, which we skip too.
    """

    name = "pcgrad"
    paper = "Yu et al., Gradient Surgery for Multi-Task Learning, NeurIPS 2020, arXiv:2001.06782"

    def __init__(self, n_tasks: int, *, generator: torch.Generator | None = None, max_norm: float = 1.0) -> None:
        super().__init__(n_tasks, generator=generator, max_norm=max_norm)

    def weights_from_gramian(self, gramian: Tensor, *, step: int | None = None) -> Tensor:
        g = gramian.detach().cpu().numpy()
        total = np.zeros(self.n_tasks)
        for i in range(self.n_tasks):
            order = torch.randperm(self.n_tasks, generator=self.generator).tolist()
            current = np.zeros(self.n_tasks)
            current[i] = 1.0
            for j in order:
                if j == i:
                    continue
                inner = float(g[j] @ current)
                if inner < 0.0:
                    current[j] -= inner / g[j, j]
            total += current
        return torch.from_numpy(total)


class GradDrop(JacobianMethod):
    """GradDrop (gradient sign dropout), coordinate-wise on the task gradients.

        P = ½ (1 + Σ_k g_k / Σ_k |g_k|)          (per coordinate; P = ½ where every g_k is 0)
        U ~ Uniform(0, 1) per coordinate (from ``generator``)
        M_k = [P > U]·[g_k > 0] + [P < U]·[g_k < 0],   d = Σ_k M_k ⊙ g_k

    Paper: Chen et al., "Just Pick a Sign: Optimizing Deep Multitask Models with Gradient Sign Dropout",
    NeurIPS 2020 (arXiv 2010.06808). Reference: the FAMO/FairGrad lineage ``GradDrop`` (mean × K = sum, no
    leak), TorchJD ``GradDrop``. Deviation: the lineage adds 1e-8 to Σ|g_k|, which makes P depend on the
    gradients' scale (at 1e-8 it pulls P to ½); we divide exactly and set P = ½ where Σ|g_k| = 0.
    With ``features`` it acts on the representation gradients (where the paper applies it); the lineage applies
    it to parameter gradients, our default.
    """

    name = "graddrop"
    paper = ("Chen et al., Just Pick a Sign: Optimizing Deep Multitask Models with Gradient Sign Dropout, "
             "NeurIPS 2020, arXiv:2010.06808")
    supports_features = True

    def __init__(self, n_tasks: int, *, generator: torch.Generator | None = None, max_norm: float = 1.0) -> None:
        super().__init__(n_tasks, generator=generator, max_norm=max_norm)

    def aggregate_blocks(self, blocks: Sequence[Tensor]) -> list[Tensor]:
        # One draw of U over all coordinates (blocks in order), so that the result does not depend on how
        # J is split into blocks: mtl_backward and aggregate() on the concatenated J agree.
        sizes = [block[0].numel() for block in blocks]
        draws = torch.rand(sum(sizes), generator=self.generator, dtype=torch.float64).split(sizes)
        out = []
        for block, uniform in zip(blocks, draws, strict=True):
            flat = block.reshape(block.shape[0], -1)
            signed_sum = flat.sum(dim=0)
            abs_sum = flat.abs().sum(dim=0)
            positive = abs_sum > 0
            purity = torch.where(positive, 0.5 * (1.0 + signed_sum / torch.where(positive, abs_sum, 1)), 0.5)
            uniform = uniform.to(dtype=flat.dtype, device=flat.device)
            keep = ((purity > uniform) & (flat > 0)) | ((purity < uniform) & (flat < 0))
            out.append((flat * keep).sum(dim=0).reshape(block.shape[1:]))
        return out


class CAGrad(GramianMethod):
    """CAGrad (conflict-averse gradient descent), c = 0.4.

        w* = argmin_{w ≥ 0, Σw = 1}  g_wᵀ g_0 + c ‖g_0‖ ‖g_w‖,   g_0 = (1/K) Σ_k g_k,  g_w = Jᵀ w
        d = K (g_0 + c ‖g_0‖ / ‖g_w*‖ · g_w*) / (1 + c²)

    i.e. weights K (1/K + λ w*) / (1 + c²), λ = c‖g_0‖/‖g_w*‖ (rescale=1 and the ×K "to match the sum loss" of
    the lineage). Paper: Liu et al., "Conflict-Averse Gradient Descent for Multi-task Learning", NeurIPS 2021
    (arXiv 2110.14048). Reference: the FAMO/FairGrad lineage ``CAGrad`` (c = 0.4, clipping to max_norm = 1
    after its own backward). Deviations: the lineage minimizes with scipy SLSQP from w = 1/K (inexact) and
    adds 1e-8 inside the square roots; we solve the same convex program exactly as a second-order cone program
    (cvxpy, CLARABEL, built once with Parameters) on G / tr G, which leaves the weights unchanged (TorchJD
    also uses CLARABEL). If ‖g_w*‖ = 0 the correction term is 0. A failed solve is reported and the weights fall back to
    w* = 1/K (the lineage's starting point), counted in ``solver_failures``.
    """

    name = "cagrad"
    paper = "Liu et al., Conflict-Averse Gradient Descent for Multi-task Learning, NeurIPS 2021, arXiv:2110.14048"

    def __init__(self, n_tasks: int, *, generator: torch.Generator | None = None, c: float = 0.4,
                 max_norm: float = 1.0, on_solver_failure: str = "warn") -> None:
        super().__init__(n_tasks, generator=generator, max_norm=max_norm)
        self.c = check_float("c", c, low=0.0)
        self.on_solver_failure = check_choice("on_solver_failure", on_solver_failure, SOLVER_FAILURE_POLICIES)
        self._problem: cp.Problem | None = None

    def _build(self) -> None:
        k = self.n_tasks
        self._w = cp.Variable(k, nonneg=True)
        self._linear = cp.Parameter(k)
        self._scaled_factor = cp.Parameter((k, k))
        objective = cp.Minimize(self._linear @ self._w + cp.norm(self._scaled_factor @ self._w, 2))
        self._problem = cp.Problem(objective, [cp.sum(self._w) == 1])

    def weights_from_gramian(self, gramian: Tensor, *, step: int | None = None) -> Tensor:
        k = self.n_tasks
        g_hat, trace = normalized(gramian)
        if trace == 0.0:
            return torch.full((k,), 1.0 / (1.0 + self.c**2), dtype=torch.float64)
        g = g_hat.cpu().numpy()
        g0_norm = float(np.sqrt(max(g.mean(), 0.0)))
        if self._problem is None:
            self._build()
        self._linear.value = g @ np.full(k, 1.0 / k)
        self._scaled_factor.value = self.c * g0_norm * psd_factor(g_hat)
        w = None
        try:
            solve_quietly(self._problem, cp.CLARABEL)
            if self._problem.status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
                w = np.clip(np.asarray(self._w.value, dtype=np.float64), 0.0, None)
                w /= w.sum()
            else:
                reason = f"status {self._problem.status}"
        except cp.error.SolverError as error:
            reason = str(error)
        if w is None:
            self._solver_failed(reason, policy=self.on_solver_failure, step=step, fallback="using w = 1/K")
            w = np.full(k, 1.0 / k)
        gw_norm = float(np.sqrt(max(w @ g @ w, 0.0)))
        scale = self.c * g0_norm / gw_norm if gw_norm > 0.0 else 0.0
        return torch.from_numpy(k * (1.0 / k + scale * w) / (1.0 + self.c**2))


class IMTLG(GramianMethod):
    """IMTL-G (impartial MTL, gradient part): d has equal projections on every task's unit gradient.

        d = Jᵀ w,  Σ_k w_k = 1,  d·u_k equal for all k (u_k = g_k/‖g_k‖)  ⇔  w ∝ G⁺ diag(G)^{1/2}

    Paper: Liu et al., "Towards Impartial Multi-task Learning", ICLR 2021 (openreview IMPnRXEWpvr).
    Reference: the lineage ``IMTLG`` (which solves the same system with D = g_1 − g_{2..K},
    U = u_1 − u_{2..K}, α = g_1 Uᵀ (D Uᵀ)⁻¹, weights sum to 1). We use the equivalent Gramian form with the
    pseudo-inverse (TorchJD's generalization, Jacobian descent paper arXiv 2406.16232): identical when G is
    invertible, defined when it is not (duplicated or zero gradients, where the lineage's inverse is singular);
    w = 0 if the sum vanishes. Nash-MTL's experiments applied IMTL-G to feature-level gradients: pass
    ``features``; the lineage code uses the shared parameters, our default.
    """

    name = "imtl_g"
    paper = "Liu et al., Towards Impartial Multi-task Learning, ICLR 2021, https://openreview.net/forum?id=IMPnRXEWpvr"
    supports_features = True

    def weights_from_gramian(self, gramian: Tensor, *, step: int | None = None) -> Tensor:
        g_hat, trace = normalized(gramian)
        if trace == 0.0:
            return torch.zeros(self.n_tasks, dtype=torch.float64)
        v = torch.linalg.pinv(g_hat, hermitian=True) @ g_hat.diagonal().clamp_min(0).sqrt()
        total = float(v.sum())
        if abs(total) < 1e-12:
            return torch.zeros_like(v)
        return v / total


class FairGrad(GramianMethod):
    """FairGrad (α-fair resource allocation), α = 2 in the lineage's run scripts.

        find w > 0 with  G w = w^{−1/α}  (element-wise power),   d = K · Jᵀ w

    Paper: Ban & Ji, "Fair Resource Allocation in Multi-Task Learning", ICML 2024 (arXiv 2402.15638).
    Reference: OptMN-Lab/fairgrad ``FairGrad``: ``scipy.optimize.least_squares`` on G w − w^{−1/α}, bounds
    (0, ∞), x0 = 1/K; g = Σ w_k g_k then × K; gradient clipped to max_norm = 1 after its own backward.
    Deviation (numerics only): we solve the same equations on Ĝ = G/t (t = tr G / K) for v and return
    w = t^{−α/(α+1)} v, which solves the original system exactly (G w = w^{−1/α} ⇔ Ĝ v = v^{−1/α}) and keeps
    least_squares well scaled for gradients from 1e-8 to 1e8; x0 = 1/K in the rescaled problem. A
    least_squares run that stops without converging is reported (warning / counted) and its last iterate used.
    At an exact solution G w > 0, so d conflicts with no task.
    """

    name = "fairgrad"
    paper = "Ban & Ji, Fair Resource Allocation in Multi-Task Learning, ICML 2024, arXiv:2402.15638"

    def __init__(self, n_tasks: int, *, generator: torch.Generator | None = None, alpha: float = 2.0,
                 max_norm: float = 1.0, on_solver_failure: str = "warn") -> None:
        super().__init__(n_tasks, generator=generator, max_norm=max_norm)
        self.alpha = check_float("alpha", alpha, low=0.0, low_open=True)
        self.on_solver_failure = check_choice("on_solver_failure", on_solver_failure, SOLVER_FAILURE_POLICIES)

    def weights_from_gramian(self, gramian: Tensor, *, step: int | None = None) -> Tensor:
        k = self.n_tasks
        trace = float(gramian.diagonal().sum())
        if trace <= 0.0:
            return torch.full((k,), 1.0, dtype=torch.float64)
        scale = trace / k
        g_hat = (gramian / scale).cpu().numpy()
        exponent = -1.0 / self.alpha

        def residual(v: np.ndarray) -> np.ndarray:
            return g_hat @ v - np.power(v, exponent)

        result = least_squares(residual, np.full(k, 1.0 / k), bounds=(0.0, np.inf))
        if result.status <= 0:
            self._solver_failed(f"least_squares status {result.status}: {result.message}",
                                policy=self.on_solver_failure, step=step, fallback="using its last iterate")
        w = result.x * scale ** (-self.alpha / (self.alpha + 1.0))
        return torch.from_numpy(k * w)


class UPGrad(GramianMethod):
    """UPGrad (unconflicting projection of gradients) with the uniform preference vector.

        v_i = argmin_{v ≥ e_i / K} vᵀ G v   (Jᵀ v_i = projection of g_i/K onto the dual cone {x : J x ≥ 0})
        w = Σ_i v_i,   d = Jᵀ w

    Paper: Quinton & Rey, "Jacobian Descent for Multi-Objective Optimization" (arXiv 2406.16232).
    Reference: TorchJD ``UPGrad`` (default pref_vector = 1/K, quadprog on G / tr G + 1e-4 I). Deviation: we
    solve each projection exactly as a non-negative least-squares problem on G / tr G without the 1e-4
    regularization, so our weights differ from TorchJD's by that regularization's effect (~1e-4 relative).
    Non-conflicting: J d = G w ≥ 0.
    """

    name = "upgrad"
    paper = "Quinton & Rey, Jacobian Descent for Multi-Objective Optimization, arXiv:2406.16232"

    def weights_from_gramian(self, gramian: Tensor, *, step: int | None = None) -> Tensor:
        k = self.n_tasks
        g_hat, trace = normalized(gramian)
        if trace == 0.0:
            return torch.full((k,), 1.0 / k, dtype=torch.float64)
        projected = dual_cone_weights(g_hat, np.eye(k) / k)
        return torch.from_numpy(projected.sum(axis=0))

