"""Jacobian families for the apt.mtl tests: random, degenerate and badly scaled matrices (float64)."""

from __future__ import annotations

import torch
from hypothesis import strategies as st

DEGENERACIES = ("none", "zero_row", "duplicate_row", "scaled_duplicate")


def make_jacobian(seed: int, n_tasks: int, n_params: int, log10_scale: int, degeneracy: str) -> torch.Tensor:
    """A [K, P] float64 matrix with N(0, 1) entries × 10^log10_scale, with one degenerate row if asked."""
    generator = torch.Generator().manual_seed(seed)
    jacobian = torch.randn(n_tasks, n_params, generator=generator, dtype=torch.float64) * 10.0**log10_scale
    if n_tasks >= 2:
        if degeneracy == "zero_row":
            jacobian[-1] = 0.0
        elif degeneracy == "duplicate_row":
            jacobian[-1] = jacobian[0]
        elif degeneracy == "scaled_duplicate":
            jacobian[-1] = 3.0 * jacobian[0]
    return jacobian


@st.composite
def jacobians(draw: st.DrawFn, *, min_tasks: int = 1, max_tasks: int = 5, full_rank: bool = False,
              degeneracies: tuple[str, ...] = DEGENERACIES) -> torch.Tensor:
    """Matrices of every family; full_rank: P ≥ K + 2 and no degenerate row (rows independent a.s.)."""
    n_tasks = draw(st.integers(min_tasks, max_tasks))
    if full_rank:
        n_params = draw(st.integers(n_tasks + 2, n_tasks + 8))
        degeneracy = "none"
    else:
        n_params = draw(st.integers(1, 8))
        degeneracy = draw(st.sampled_from(degeneracies))
    return make_jacobian(draw(st.integers(0, 2**31 - 1)), n_tasks, n_params, draw(st.integers(-8, 8)), degeneracy)
