"""Numerical kernels on the task Gramian G [K, K] (float64, symmetric PSD).

Every kernel works on G only. Where a problem is invariant to the scale of J (MGDA, UPGrad, IMTL-G,
CAGrad's weights), G is first divided by its trace, which keeps the solvers well conditioned for gradient
scales from 1e-8 to 1e8.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import nnls
from torch import Tensor


def normalized(gramian: Tensor) -> tuple[Tensor, float]:
    """(G / tr G, tr G); G itself and 0 when the trace is 0 (every task gradient is zero)."""
    trace = float(gramian.diagonal().sum())
    if trace <= 0.0:
        return gramian, 0.0
    return gramian / trace, trace


def psd_factor(gramian: Tensor) -> np.ndarray:
    """A [K, K] with Aᵀ A = G (from the eigendecomposition, negative round-off eigenvalues set to 0).

    ‖A w‖² = wᵀ G w = ‖Jᵀ w‖²: A stands in for Jᵀ in least-squares problems.
    """
    values, vectors = np.linalg.eigh(gramian.detach().cpu().numpy().astype(np.float64))
    return np.sqrt(np.clip(values, 0.0, None))[:, None] * vectors.T


def min_norm_simplex_weights(gramian: Tensor) -> Tensor:
    """MGDA's weights: w* = argmin_{w ≥ 0, Σw = 1} wᵀ G w (min-norm point of the convex hull of the g_k).

    Solved exactly as a non-negative least-squares problem: x* = argmin_{x ≥ 0} ‖A x‖² + (1ᵀx − 1)² and
    w* = x*/1ᵀx*. (Write x = t·w with w in the simplex: the optimal t gives the value q/(1+q) with
    q = wᵀGw, increasing in q, so the minimizing w is MGDA's.)
    """
    n_tasks = gramian.shape[0]
    g_hat, trace = normalized(gramian)
    if trace == 0.0:
        return torch.full((n_tasks,), 1.0 / n_tasks, dtype=torch.float64)
    system = np.vstack([psd_factor(g_hat), np.ones((1, n_tasks))])
    target = np.zeros(n_tasks + 1)
    target[-1] = 1.0
    x, _ = nnls(system, target, maxiter=50 * n_tasks)
    return torch.from_numpy(x / x.sum())


def dual_cone_weights(gramian: Tensor, lower: np.ndarray) -> np.ndarray:
    """v* = argmin_{v ≥ u} vᵀ G v for each row u of ``lower`` [m, K] -> [m, K].

    Jᵀ v* is the projection of Jᵀ u onto the dual cone {x : J x ≥ 0} (Jacobian descent paper,
    arXiv 2406.16232, Prop. 1). With v = u + x, x ≥ 0: min ‖A x + A u‖², a non-negative least squares.
    """
    factor = psd_factor(gramian)
    out = np.empty_like(lower, dtype=np.float64)
    for row, u in enumerate(lower):
        x, _ = nnls(factor, -factor @ u, maxiter=50 * len(u))
        out[row] = u + x
    return out
