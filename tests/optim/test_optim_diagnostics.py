"""Diagnostics: hand-computed instant-gradient shares and cosines, last_update, task alignment, Muon spectra."""

from __future__ import annotations

import json
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from optim_testing import build, train

from apt.optim import OPTIMIZERS, APT, make_optimizer
from apt.optim.diagnostics import alignment_summary, task_alignment
from apt.optim.newton_schulz import NS_SINGULAR_VALUE_BAND, effective_rank, newton_schulz

CORE_KEYS = {"instant_gradient_share", "update_instant_cosine", "momentum_cosine", "beta_mean", "beta_min_used",
             "beta_max_used", "update_norm", "instant_gradient_norm"}


def _vector_optimizer(name: str, **hp):
    weight = torch.nn.Parameter(torch.zeros(2))
    return weight, make_optimizer(name, [("w", weight)], lr=0.1, diagnostics=True, **hp)


def test_plain_sgd_share_is_one_and_update_is_minus_gradient():
    weight, optimizer = _vector_optimizer("sgd")
    weight.grad = torch.tensor([3.0, 4.0])
    optimizer.step()
    diagnostics = optimizer.step_diagnostics
    assert diagnostics["instant_gradient_share"] == 1.0
    assert diagnostics["update_instant_cosine"] == pytest.approx(1.0)
    assert diagnostics["update_norm"] == pytest.approx(0.5)
    assert diagnostics["instant_gradient_norm"] == pytest.approx(5.0)
    torch.testing.assert_close(optimizer.last_update([weight]), torch.tensor([-0.3, -0.4]))


def test_sgdm_share_by_hand():
    """b_1 = g_1 = [1, 0];  b_2 = 0.9 b_1 + 0.1 g_2 with g_2 = [0, 2]: share = ‖0.1 g_2‖/‖b_2‖ = 0.2/√0.85."""
    weight, optimizer = _vector_optimizer("sgdm")
    weight.grad = torch.tensor([1.0, 0.0])
    optimizer.step()
    assert optimizer.step_diagnostics["instant_gradient_share"] == pytest.approx(1.0)
    weight.grad = torch.tensor([0.0, 2.0])
    optimizer.step()
    diagnostics = optimizer.step_diagnostics
    assert diagnostics["instant_gradient_share"] == pytest.approx(0.2 / math.sqrt(0.85), rel=1e-6)
    assert diagnostics["momentum_cosine"] == pytest.approx(0.0)
    # Δθ = −0.1 b_2 = −[0.09, 0.02]: cos(Δθ, −g_2) = 0.02 / ‖[0.09, 0.02]‖ = 0.2/√0.85
    assert diagnostics["update_instant_cosine"] == pytest.approx(0.2 / math.sqrt(0.85), rel=1e-5)
    assert diagnostics["beta_mean"] == pytest.approx(0.9)


def test_adam_share_by_hand():
    """m_1 = 0.1 g_1, m_2 = 0.09 g_1 + 0.1 g_2: g_1 = [1, 0], g_2 = [−1, 0] -> m_2 = [−0.01, 0], share = 10."""
    weight, optimizer = _vector_optimizer("adam")
    weight.grad = torch.tensor([1.0, 0.0])
    optimizer.step()
    weight.grad = torch.tensor([-1.0, 0.0])
    optimizer.step()
    diagnostics = optimizer.step_diagnostics
    assert diagnostics["instant_gradient_share"] == pytest.approx(10.0, rel=1e-5)
    assert diagnostics["momentum_cosine"] == pytest.approx(-1.0)


def test_apt_share_uses_the_beta_actually_used():
    weight, optimizer = _vector_optimizer("apt_adam", beta_min=0.5, beta_max=0.9)
    weight.grad = torch.tensor([1.0, 0.0])
    optimizer.step()  # c = 0 -> β = 0.7, m_1 = 0.3 g_1
    weight.grad = torch.tensor([0.0, 1.0])
    optimizer.step()  # c = 0 -> β = 0.7, m_2 = [0.21, 0.3]
    diagnostics = optimizer.step_diagnostics
    assert diagnostics["beta_mean"] == pytest.approx(0.7)
    assert diagnostics["instant_gradient_share"] == pytest.approx(0.3 / math.hypot(0.21, 0.3), rel=1e-6)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimizer_reports_the_core_keys_and_a_consistent_last_update(name):
    model = build("conv")
    optimizer = make_optimizer(name, model.named_parameters(), lr=1e-3, muon_excluded=model.muon_excluded(),
                               diagnostics=True)
    before = [p.detach().clone() for p in model.parameters()]
    train(model, optimizer, 1)
    diagnostics = optimizer.step_diagnostics
    assert CORE_KEYS <= set(diagnostics)
    assert all(math.isfinite(v) for key, v in diagnostics.items() if key != "muon_singular_values")
    assert -1.0 <= diagnostics["update_instant_cosine"] <= 1.0
    params = list(model.parameters())
    expected = torch.cat([(p.detach() - b).reshape(-1) for p, b in zip(params, before)])
    torch.testing.assert_close(optimizer.last_update(params), expected)
    assert diagnostics["update_norm"] == pytest.approx(float(expected.double().norm()), rel=1e-5)
    if "muon" in name:
        low, high = NS_SINGULAR_VALUE_BAND
        assert diagnostics["muon_sv_out_max"] <= high + 0.08
        assert set(optimizer.muon_spectra) == {"shared.4.weight", "shared.8.weight", "shared.13.weight"}


def test_diagnostics_off_records_nothing_and_last_update_says_why():
    model = build("mlp")
    optimizer = make_optimizer("apt_adam", model.named_parameters(), lr=1e-3)
    train(model, optimizer, 1)
    assert optimizer.step_diagnostics == {}
    with pytest.raises(RuntimeError, match="diagnostics=True"):
        optimizer.last_update(list(model.parameters()))


def test_last_update_rejects_a_foreign_parameter():
    model = build("mlp")
    optimizer = make_optimizer("adam", model.named_parameters(), lr=1e-3, diagnostics=True)
    train(model, optimizer, 1)
    with pytest.raises(ValueError, match="not managed"):
        optimizer.last_update([torch.nn.Parameter(torch.zeros(3))])


def test_spectra_every_other_step():
    model = build("graph")
    optimizer = make_optimizer("apt_muon", model.named_parameters(), lr=1e-3, muon_excluded=model.muon_excluded(),
                               diagnostics=True, spectrum_every=2)
    has_spectra = []
    train(model, optimizer, 4, after_step=lambda _: has_spectra.append(
        ("muon_sv_out_min" in optimizer.step_diagnostics, "muon_singular_values" in optimizer.step_diagnostics)))
    assert has_spectra == [(True, True), (False, False), (True, True), (False, False)]


def test_full_singular_values_match_an_svd_of_the_first_muon_step():
    """First step, no Nesterov: the matrix orthogonalized is m_1 = (1 − μ) G, the update is NS(m_1) (in
    bfloat16); the listed spectra equal torch.linalg.svdvals of those, and the G3 summaries are their
    effective ranks."""
    generator = torch.Generator().manual_seed(3)
    weight = torch.nn.Parameter(torch.zeros(6, 9))
    optimizer = make_optimizer("muon", [("w", weight)], lr=1e-3, diagnostics=True, nesterov=False, momentum=0.9)
    grad = torch.randn(6, 9, generator=generator)
    weight.grad = grad
    optimizer.step()
    diagnostics = optimizer.step_diagnostics
    listed = diagnostics["muon_singular_values"]["w"]
    expected_in = torch.linalg.svdvals(0.1 * grad.double())
    expected_out = torch.linalg.svdvals(newton_schulz(0.1 * grad).double())
    torch.testing.assert_close(torch.tensor(listed["in"], dtype=torch.float64), expected_in, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(torch.tensor(listed["out"], dtype=torch.float64), expected_out, rtol=1e-4,
                               atol=1e-4)
    torch.testing.assert_close(torch.tensor(listed["instant"], dtype=torch.float64),
                               torch.linalg.svdvals(grad.double()), rtol=1e-5, atol=1e-6)
    assert diagnostics["muon_effective_rank_in"] == pytest.approx(effective_rank(expected_in), rel=1e-5)
    assert diagnostics["muon_effective_rank_out"] == pytest.approx(effective_rank(expected_out), rel=1e-4)
    assert json.loads(json.dumps(listed)) == listed  # plain lists: a record can store them


def test_orthogonalization_raises_the_effective_rank_of_a_low_rank_matrix():
    """A rank-2-dominated momentum: NS spreads it (claim 2's mechanism); rank fraction out ≥ in."""
    generator = torch.Generator().manual_seed(0)
    weight = torch.nn.Parameter(torch.zeros(16, 12))
    optimizer = APT([("w", weight)], lr=1e-3, base="muon", beta_min=0.95, beta_max=0.95, diagnostics=True)
    low_rank = torch.randn(16, 2, generator=generator) @ torch.randn(2, 12, generator=generator)
    weight.grad = low_rank + 1e-2 * torch.randn(16, 12, generator=generator)
    optimizer.step()
    diagnostics = optimizer.step_diagnostics
    assert diagnostics["muon_effective_rank_in"] < 4
    assert diagnostics["muon_effective_rank_out"] > diagnostics["muon_effective_rank_in"] + 4


def test_task_alignment_golden_values():
    update = torch.tensor([1.0, 0.0])
    jacobian = torch.tensor([[-1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    expected = torch.tensor([1.0, 0.0, -1 / math.sqrt(2), 0.0])
    torch.testing.assert_close(task_alignment(update, jacobian), expected)
    summary = alignment_summary(expected)
    assert summary["task_alignment_spread"] == pytest.approx(1 + 1 / math.sqrt(2))
    assert summary["task_alignment_mean"] == pytest.approx((1 - 1 / math.sqrt(2)) / 4)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), tasks=st.integers(1, 5), scale=st.floats(1e-3, 1e3))
def test_task_alignment_is_a_scale_invariant_cosine(seed, tasks, scale):
    generator = torch.Generator().manual_seed(seed)
    update = torch.randn(7, generator=generator, dtype=torch.float64)
    jacobian = torch.randn(tasks, 7, generator=generator, dtype=torch.float64)
    cosines = task_alignment(update, jacobian)
    assert cosines.shape == (tasks,)
    assert bool((cosines.abs() <= 1 + 1e-12).all())
    torch.testing.assert_close(task_alignment(scale * update, jacobian), cosines)
    torch.testing.assert_close(task_alignment(-update, jacobian), -cosines)


def test_task_alignment_shape_errors():
    with pytest.raises(ValueError, match=r"update \[P\] and jacobian \[K, P\]"):
        task_alignment(torch.zeros(3), torch.zeros(2, 4))
