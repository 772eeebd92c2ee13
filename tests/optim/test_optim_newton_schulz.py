"""Newton–Schulz: the spectral map, the band around 1, closeness to the exact polar factor."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from apt.optim.newton_schulz import (NS_SINGULAR_VALUE_BAND, effective_rank, newton_schulz,
                                     newton_schulz_scalar_map, polar_factor, singular_values)

shapes = st.tuples(st.integers(2, 24), st.integers(2, 24))
seeds = st.integers(0, 2**31 - 1)


def gaussian(shape: tuple[int, int], seed: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@settings(max_examples=40, deadline=None)
@given(shape=shapes, seed=seeds)
def test_newton_schulz_acts_on_singular_values_only(shape, seed):
    """NS(U S Vᵀ) = U p⁵(S / ‖X‖_F) Vᵀ, checked in float64 against the SVD."""
    matrix = gaussian(shape, seed)
    left, sigma, right_t = torch.linalg.svd(matrix, full_matrices=False)
    expected = left @ torch.diag(newton_schulz_scalar_map(sigma / matrix.norm())) @ right_t
    torch.testing.assert_close(newton_schulz(matrix, dtype="float64"), expected, atol=1e-10, rtol=1e-10)


def test_scalar_map_band_on_a_grid():
    """p⁵ maps [2e-3, 1] into NS_SINGULAR_VALUE_BAND (and that band is tight to 0.01)."""
    grid = torch.logspace(math.log10(2e-3), 0, 200_001, dtype=torch.float64)
    mapped = newton_schulz_scalar_map(grid)
    low, high = NS_SINGULAR_VALUE_BAND
    assert low <= float(mapped.min()) < low + 0.01
    assert high - 0.01 < float(mapped.max()) <= high


@settings(max_examples=30, deadline=None)
@given(shape=shapes, seed=seeds, dtype=st.sampled_from(["float32", "bfloat16"]))
def test_output_singular_values_stay_in_the_band(shape, seed, dtype):
    matrix = gaussian(shape, seed, torch.float32)
    sigma = torch.linalg.svdvals(matrix.double())
    # Gaussian matrices can be nearly singular; the band holds for σ/‖X‖_F ≥ 2e-3 only.
    well_conditioned = bool(sigma.min() / matrix.double().norm() >= 2e-3)
    output = torch.linalg.svdvals(newton_schulz(matrix, dtype=dtype).double())
    low, high = NS_SINGULAR_VALUE_BAND
    slack = 0.02 if dtype == "float32" else 0.08  # bfloat16 keeps 8 bits of mantissa
    assert float(output.max()) <= high + slack
    if well_conditioned:
        assert float(output.min()) >= low - slack


@settings(max_examples=30, deadline=None)
@given(shape=shapes, seed=seeds)
def test_close_to_the_exact_polar_factor_in_float32(shape, seed):
    """‖NS(X) − UVᵀ‖₂ = max|p⁵(σ) − 1| ≤ 0.32 (band), and a converging iteration reaches UVᵀ."""
    matrix = gaussian(shape, seed, torch.float32)
    sigma = torch.linalg.svdvals(matrix.double())
    polar = polar_factor(matrix)
    if bool(sigma.min() / matrix.double().norm() >= 2e-3):
        error = torch.linalg.matrix_norm((newton_schulz(matrix, dtype="float32") - polar).double(), ord=2)
        assert float(error) <= 1 - NS_SINGULAR_VALUE_BAND[0] + 0.01
    if bool(sigma.min() / matrix.double().norm() >= 2e-2):
        # The classical cubic Newton–Schulz (1.5, −0.5, 0) converges to the polar factor itself.
        converged = newton_schulz(matrix, dtype="float32", steps=60, coefficients=(1.5, -0.5, 0.0))
        torch.testing.assert_close(converged, polar, atol=2e-5, rtol=0)


@given(shape=shapes, seed=seeds)
@settings(max_examples=20, deadline=None)
def test_transpose_equivariance_and_input_untouched(shape, seed):
    matrix = gaussian(shape, seed, torch.float32)
    before = matrix.clone()
    torch.testing.assert_close(newton_schulz(matrix.T, dtype="float32"), newton_schulz(matrix, dtype="float32").T)
    assert torch.equal(matrix, before)


def test_zero_matrix_maps_to_zero():
    assert torch.equal(newton_schulz(torch.zeros(3, 5), dtype="float32"), torch.zeros(3, 5))


def test_default_dtype_is_bfloat16():
    assert newton_schulz(torch.randn(4, 4, generator=torch.Generator().manual_seed(0))).dtype == torch.bfloat16


@pytest.mark.parametrize("values, expected", [
    ([2.0, 2.0, 2.0], 3.0),
    ([5.0, 0.0, 0.0], 1.0),
    ([1.0, 1.0, 0.0], 2.0),
    ([3.0, 1.0], math.exp(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))),
    ([0.0, 0.0], 0.0),
])
def test_effective_rank_golden_values(values, expected):
    assert effective_rank(torch.tensor(values)) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("bad", [torch.zeros(3), torch.zeros(2, 3, 4)])
def test_non_matrix_input_is_rejected(bad):
    with pytest.raises(ValueError, match="expects a matrix"):
        newton_schulz(bad)
    with pytest.raises(ValueError, match="expects a matrix"):
        polar_factor(bad)


def test_unknown_dtype_is_rejected():
    with pytest.raises(ValueError, match="ns_dtype='float16'"):
        newton_schulz(torch.eye(3), dtype="float16")


@settings(max_examples=30, deadline=None)
@given(shape=shapes, seed=seeds)
def test_gram_singular_values_match_the_svd(shape, seed):
    matrix = gaussian(shape, seed, torch.float32)
    expected = torch.linalg.svdvals(matrix.double()).float()
    torch.testing.assert_close(singular_values(matrix), expected, atol=1e-4 * float(expected[0]), rtol=1e-4)
