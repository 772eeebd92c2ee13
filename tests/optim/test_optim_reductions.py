"""Reductions, step for step on small models with the benchmark models' layer types (DESIGN.md §8).

APT with β_min = β_max = β1 is torch.optim.Adam/AdamW; our Muon on 2-D weights is torch.optim.Muon (and a
conv weight is Muon on its [out, in·kh·kw] matrix); APT-Muon with constant β and no preservation is our Muon.
"""

from __future__ import annotations

import pytest
import torch
from optim_testing import build, loss_and_backward, max_difference, train, twin

from apt.optim import APT, Muon, make_optimizer, muon_param_groups

STEPS = 6


@pytest.mark.parametrize("kind", ["conv", "graph"])
@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
@pytest.mark.parametrize("foreach", [None, True])
@pytest.mark.parametrize("base", ["adam", "adamw"])
def test_apt_with_constant_beta_is_torch_adam(kind, weight_decay, foreach, base):
    reference_model = build(kind)
    apt_model = twin(reference_model)
    torch_class = torch.optim.Adam if base == "adam" else torch.optim.AdamW
    reference = torch_class(reference_model.parameters(), lr=3e-3, betas=(0.8, 0.99), eps=1e-7,
                            weight_decay=weight_decay, foreach=foreach)
    ours = make_optimizer(f"apt_{base}", apt_model.named_parameters(), lr=3e-3, beta_min=0.8, beta_max=0.8,
                          beta2=0.99, eps=1e-7, weight_decay=weight_decay)
    difference = max_difference(train(reference_model, reference, STEPS), train(apt_model, ours, STEPS))
    assert difference < 1e-6


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd", "sgdm"])
def test_baselines_are_torch_and_diagnostics_do_not_change_the_trajectory(name):
    reference_model = build("conv")
    ours_model, diagnosed_model = twin(reference_model), twin(reference_model)
    torch_optimizer = {
        "adam": lambda p: torch.optim.Adam(p, lr=1e-3, foreach=True),
        "adamw": lambda p: torch.optim.AdamW(p, lr=1e-3, weight_decay=0.1, foreach=True),
        "sgd": lambda p: torch.optim.SGD(p, lr=1e-2, foreach=True),
        "sgdm": lambda p: torch.optim.SGD(p, lr=1e-2, momentum=0.9, dampening=0.9, foreach=True),
    }[name](reference_model.parameters())
    weight_decay = 0.1 if name == "adamw" else 0.0
    lr = 1e-3 if name.startswith("adam") else 1e-2
    ours = make_optimizer(name, ours_model.named_parameters(), lr=lr, weight_decay=weight_decay)
    diagnosed = make_optimizer(name, diagnosed_model.named_parameters(), lr=lr, weight_decay=weight_decay,
                               diagnostics=True)
    expected = train(reference_model, torch_optimizer, STEPS)
    assert max_difference(expected, train(ours_model, ours, STEPS)) == 0.0
    assert max_difference(expected, train(diagnosed_model, diagnosed, STEPS)) == 0.0


@pytest.mark.parametrize("nesterov", [True, False])
@pytest.mark.parametrize("adjust_lr", ["original", "match_rms_adamw"])
@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_our_muon_on_2d_weights_is_torch_muon(nesterov, adjust_lr, weight_decay):
    reference_model = build("mlp")
    ours_model = twin(reference_model)
    excluded = reference_model.muon_excluded()
    groups = muon_param_groups(reference_model.named_parameters(), excluded=excluded)
    torch_muon = torch.optim.Muon([p for _, p in groups[0]["params"]], lr=2e-2, momentum=0.9,
                                  nesterov=nesterov, weight_decay=weight_decay, adjust_lr_fn=adjust_lr)
    torch_adamw = torch.optim.AdamW([p for _, p in groups[1]["params"]], lr=1e-3, weight_decay=weight_decay,
                                    foreach=True)

    class Both(torch.optim.Optimizer):
        def __init__(self) -> None:
            super().__init__(reference_model.parameters(), {})

        def step(self, closure=None):
            torch_muon.step()
            torch_adamw.step()

    ours = Muon(muon_param_groups(ours_model.named_parameters(), excluded=excluded, adam_lr=1e-3), lr=2e-2,
                momentum=0.9, nesterov=nesterov, weight_decay=weight_decay, adjust_lr=adjust_lr)
    assert max_difference(train(reference_model, Both(), STEPS), train(ours_model, ours, STEPS)) == 0.0


def test_muon_on_a_conv_weight_is_torch_muon_on_its_matrix():
    generator = torch.Generator().manual_seed(3)
    weight = torch.nn.Parameter(torch.randn(6, 4, 3, 3, generator=generator))
    matrix = torch.nn.Parameter(weight.detach().reshape(6, 36).clone())
    ours = Muon([weight], lr=0.02, weight_decay=0.01)
    reference = torch.optim.Muon([matrix], lr=0.02, weight_decay=0.01)
    for _ in range(4):
        grad = torch.randn(6, 4, 3, 3, generator=generator)
        weight.grad, matrix.grad = grad.clone(), grad.reshape(6, 36).clone()
        ours.step()
        reference.step()
        assert torch.equal(weight.detach().reshape(6, 36), matrix.detach())


@pytest.mark.parametrize("kind", ["conv", "graph"])
@pytest.mark.parametrize("nesterov", [True, False])
def test_apt_muon_with_constant_beta_and_no_preservation_is_our_muon(kind, nesterov):
    muon_model = build(kind)
    apt_model = twin(muon_model)
    common = {"lr": 2e-3, "muon_excluded": muon_model.muon_excluded(), "weight_decay": 0.01,
              "nesterov": nesterov, "adam_lr": 1e-3}
    muon = make_optimizer("muon", muon_model.named_parameters(), momentum=0.9, **common)
    apt = make_optimizer("apt_muon", apt_model.named_parameters(), beta_min=0.9, beta_max=0.9, preserve="none",
                         **common)
    assert isinstance(muon, Muon) and isinstance(apt, APT)
    difference = max_difference(train(muon_model, muon, STEPS), train(apt_model, apt, STEPS))
    assert difference < 1e-6


def test_adaptive_beta_changes_the_trajectory():
    """The reductions above are not vacuous: with β_min < β_max APT leaves Adam's path."""
    reference_model = build("graph")
    apt_model = twin(reference_model)
    reference = torch.optim.Adam(reference_model.parameters(), lr=3e-3)
    ours = make_optimizer("apt_adam", apt_model.named_parameters(), lr=3e-3, beta_min=0.5, beta_max=0.9)
    assert max_difference(train(reference_model, reference, STEPS), train(apt_model, ours, STEPS)) > 1e-4


@pytest.mark.parametrize("name", ["sgd", "sgdm", "adam", "adamw", "muon", "apt_adam", "apt_adamw", "apt_muon"])
def test_step_never_modifies_the_instant_gradient(name):
    model = build("conv")
    optimizer = make_optimizer(name, model.named_parameters(), lr=1e-3, weight_decay=0.01,
                               muon_excluded=model.muon_excluded(), diagnostics=True)
    generator = torch.Generator().manual_seed(0)
    for _ in range(3):
        optimizer.zero_grad()
        loss_and_backward(model, model.batch(generator))
        grads = [p.grad.clone() for p in model.parameters()]
        optimizer.step()
        assert all(torch.equal(p.grad, g) for p, g in zip(model.parameters(), grads))
