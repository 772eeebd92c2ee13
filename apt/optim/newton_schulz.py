"""Orthogonalization of update matrices: quintic Newton–Schulz (what Muon uses) and the exact polar factor.

For a matrix X = U S Vᵀ (thin SVD, X: [A, B]) the *polar factor* is polar(X) = U Vᵀ: every singular value
set to 1. Muon replaces its momentum matrix by an approximation of it computed with a few matrix products.

The quintic iteration, started from X₀ = X / max(‖X‖_F, ε) (so every singular value is ≤ 1), is

    X_{k+1} = a X_k + (b A_k + c A_k²) X_k,   A_k = X_k X_kᵀ,   (a, b, c) = (3.4445, −4.7750, 2.0315).

Because it is an odd matrix polynomial it acts on singular values only: NS(X) = U p⁵(S / ‖X‖_F) Vᵀ with the
scalar map p(σ) = aσ + bσ³ + cσ⁵ iterated 5 times. The coefficients maximize the slope at 0 instead of
converging to 1, so p⁵ maps every σ/‖X‖_F ≥ 2·10⁻³ into the band [0.68, 1.21] (``NS_SINGULAR_VALUE_BAND``)
rather than onto 1 (Keller Jordan, https://kellerjordan.github.io/posts/muon/).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

NS_COEFFICIENTS: tuple[float, float, float] = (3.4445, -4.7750, 2.0315)
NS_STEPS: int = 5
NS_EPS: float = 1e-7
# p⁵([2e-3, 1]) with the default coefficients, computed on a 2·10⁵-point grid (see tests/optim).
NS_SINGULAR_VALUE_BAND: tuple[float, float] = (0.68, 1.21)
NS_DTYPES: dict[str, torch.dtype] = {
    "bfloat16": torch.bfloat16,
    "float32": torch.float32,
    "float64": torch.float64,
}


def resolve_ns_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """``"bfloat16" | "float32" | "float64"`` (or the torch dtype itself) -> torch dtype; anything else: ValueError."""
    if isinstance(dtype, torch.dtype):
        if dtype not in NS_DTYPES.values():
            raise ValueError(f"ns_dtype={dtype}: allowed {tuple(NS_DTYPES)}")
        return dtype
    if dtype not in NS_DTYPES:
        raise ValueError(f"ns_dtype={dtype!r}: allowed {tuple(NS_DTYPES)}")
    return NS_DTYPES[dtype]


def newton_schulz_scalar_map(sigma: Tensor, steps: int = NS_STEPS,
                             coefficients: tuple[float, float, float] = NS_COEFFICIENTS) -> Tensor:
    """pᵏ(σ): what ``newton_schulz`` does to each normalized singular value σ ∈ [0, 1] (any shape)."""
    a, b, c = coefficients
    for _ in range(steps):
        sigma = a * sigma + b * sigma**3 + c * sigma**5
    return sigma


def newton_schulz(matrix: Tensor, *, steps: int = NS_STEPS,
                  coefficients: tuple[float, float, float] = NS_COEFFICIENTS,
                  dtype: str | torch.dtype = torch.bfloat16, eps: float = NS_EPS) -> Tensor:
    """Approximate polar factor NS(X) ≈ U S' Vᵀ, S' ∈ ``NS_SINGULAR_VALUE_BAND`` (module docstring).

    matrix: [A, B] (any float dtype; not modified). Returns [A, B] in ``dtype`` (bfloat16 by default, as in
    Muon; float32/float64 for analysis). The Gram matrix is formed on the smaller side (transpose when A > B).
    The normalization divides by max(‖X‖_F, eps), as torch.optim.Muon does, so a zero matrix maps to zero.
    """
    if matrix.ndim != 2:
        raise ValueError(f"newton_schulz expects a matrix [A, B], got shape {tuple(matrix.shape)}")
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"ns_steps={steps!r}: must be an integer >= 0")
    a, b, c = coefficients
    work = matrix.to(resolve_ns_dtype(dtype))
    tall = matrix.shape[0] > matrix.shape[1]
    if tall:
        work = work.T
    work = work / work.norm().clamp(min=eps)
    for _ in range(steps):
        gram = work @ work.T
        polynomial = torch.addmm(gram, gram, gram, beta=b, alpha=c)
        work = torch.addmm(work, polynomial, work, beta=a)
    return work.T if tall else work


def polar_factor(matrix: Tensor) -> Tensor:
    """Exact polar factor U Vᵀ of X = U S Vᵀ (thin SVD, in float64), returned in X's dtype. matrix: [A, B].

    Singular directions with σ = 0 are arbitrary in the SVD; for a rank-deficient X, U Vᵀ is then one of
    the polar factors, and tests compare it on full-rank inputs only.
    """
    if matrix.ndim != 2:
        raise ValueError(f"polar_factor expects a matrix [A, B], got shape {tuple(matrix.shape)}")
    left, _, right_t = torch.linalg.svd(matrix.double(), full_matrices=False)
    return (left @ right_t).to(matrix.dtype)


def effective_rank(singular_values: Tensor) -> float:
    """Entropy effective rank (Roy & Vetterli, 2007): exp(−Σ pᵢ log pᵢ), pᵢ = σᵢ / Σⱼ σⱼ.

    singular_values: [r] ≥ 0. Equals r when all σ are equal and 1 for a rank-one matrix; 0 for a zero matrix.
    """
    sigma = singular_values.double().clamp(min=0.0)
    total = sigma.sum()
    if total <= 0:
        return 0.0
    probabilities = sigma[sigma > 0] / total
    return math.exp(float(-(probabilities * probabilities.log()).sum()))


def singular_values(matrix: Tensor) -> Tensor:
    """Singular values of X [A, B], descending, float32 [min(A, B)], from the eigenvalues of the smaller
    Gram matrix formed in float64 (σᵢ = √λᵢ(X Xᵀ)): several times faster than an SVD of a wide matrix, and
    accurate down to σ ≈ 1e-7 σ_max, which is all an effective rank or a spectrum plot needs."""
    if matrix.ndim != 2:
        raise ValueError(f"singular_values expects a matrix [A, B], got shape {tuple(matrix.shape)}")
    wide = matrix.double() if matrix.shape[0] <= matrix.shape[1] else matrix.double().T
    eigenvalues = torch.linalg.eigvalsh(wide @ wide.T)
    return eigenvalues.clamp(min=0.0).sqrt().flip(0).float()
