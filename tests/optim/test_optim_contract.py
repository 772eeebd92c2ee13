"""The torch.optim contract (state_dict round trip, schedulers, zero_grad) and the error messages."""

from __future__ import annotations

import copy
import io

import pytest
import torch
from optim_testing import build, max_difference, train

from apt.errors import NonFiniteError
from apt.optim import OPTIMIZERS, APT, DEFAULT_HP, Muon, make_optimizer, split_muon_params


def _make(name: str, model: torch.nn.Module, **extra):
    hp = {"momentum_rule": "clipped", "cosine_scope": "global"} if name.startswith("apt") else {}
    return make_optimizer(name, model.named_parameters(), lr=2e-3, weight_decay=0.01,
                          muon_excluded=model.muon_excluded(), **hp, **extra)


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("kind", ["conv", "graph"])
def test_state_dict_round_trip_mid_training_gives_identical_steps(name, kind):
    model = build(kind)
    optimizer = _make(name, model, diagnostics=True)
    train(model, optimizer, 3, seed=5)
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, buffer)
    continued = train(model, optimizer, 3, seed=6)

    buffer.seek(0)
    checkpoint = torch.load(buffer, weights_only=True)
    resumed_model = build(kind, seed=99)  # different initial weights: everything must come from the checkpoint
    resumed_model.load_state_dict(checkpoint["model"])
    resumed_optimizer = _make(name, resumed_model, diagnostics=True)
    resumed_optimizer.load_state_dict(checkpoint["optimizer"])
    assert resumed_optimizer.steps_taken == 3
    assert max_difference(continued, train(resumed_model, resumed_optimizer, 3, seed=6)) == 0.0


@pytest.mark.parametrize("name", ["muon", "apt_muon"])
def test_one_scheduler_drives_both_muon_and_adamw_groups(name):
    model = build("mlp")
    optimizer = make_optimizer(name, model.named_parameters(), lr=1e-2, adam_lr=1e-3,
                               muon_excluded=model.muon_excluded())
    assert [g["kind"] for g in optimizer.param_groups] == ["muon", "adamw"]
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    for _ in range(4):
        train(model, optimizer, 1)
        scheduler.step()
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([2.5e-3, 2.5e-4])


def test_zero_grad_clears_gradients():
    model = build("mlp")
    optimizer = _make("apt_adam", model)
    train(model, optimizer, 1)
    optimizer.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_split_rule():
    model = build("conv")
    muon, adamw = split_muon_params(model.named_parameters(), model.muon_excluded())
    assert [n for n, _ in muon] == ["shared.4.weight", "shared.8.weight", "shared.13.weight"]
    adamw_names = {n for n, _ in adamw}
    assert "shared.0.weight" in adamw_names and "heads.0.weight" in adamw_names
    assert all(p.ndim < 2 for n, p in adamw if n not in model.muon_excluded())
    assert len(muon) + len(adamw) == len(list(model.parameters()))


def test_split_rejects_unknown_excluded_names():
    model = build("conv")
    with pytest.raises(ValueError, match=r"not among the parameters: \['shared.99.weight'\]"):
        split_muon_params(model.named_parameters(), {"shared.99.weight"})


def test_frozen_parameters_are_left_out():
    model = build("mlp")
    model.heads[0].weight.requires_grad_(False)
    optimizer = make_optimizer("adam", model.named_parameters(), lr=1e-3)
    assert "heads.0.weight" not in optimizer.param_groups[0]["param_names"]


# ----- errors -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("hp, message", [
    ({"beta_min": 0.9, "beta_max": 0.5}, r"beta_min=0.9 > beta_max=0.5"),
    ({"beta_min": -0.1}, r"beta_min=-0.1: must be a number in \[0, 1\)"),
    ({"beta_max": 1.0}, r"beta_max=1.0: must be a number in \[0, 1\)"),
    ({"momentum_rule": "cubic"}, r"momentum_rule='cubic': allowed \('linear', 'clipped'\)"),
    ({"adapt_direction": "up"}, r"adapt_direction='up'"),
    ({"cosine_scope": "layer"}, r"cosine_scope='layer'"),
])
def test_invalid_apt_hyperparameters(hp, message):
    model = build("mlp")
    with pytest.raises(ValueError, match=message):
        make_optimizer("apt_adam", model.named_parameters(), lr=1e-3, **hp)


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("lr", [0.0, -1e-3, float("nan")])
def test_non_positive_lr_is_rejected(name, lr):
    model = build("mlp")
    with pytest.raises(ValueError, match="lr=.*must be a finite number > 0"):
        make_optimizer(name, model.named_parameters(), lr=lr)


def test_lr_is_validated_in_the_classes_too():
    with pytest.raises(ValueError, match="lr=0.0"):
        APT([torch.nn.Parameter(torch.zeros(2))], lr=0.0)
    with pytest.raises(ValueError, match="lr=-1"):
        Muon([torch.nn.Parameter(torch.zeros(2, 2))], lr=-1)


def test_unknown_hyperparameter_lists_the_allowed_ones():
    model = build("mlp")
    with pytest.raises(ValueError, match=r"unknown hyperparameter\(s\) \['momentum'\] for optimizer 'apt_adam'; "
                                         r"allowed: \['adapt_direction', 'beta2', 'beta_max'"):
        make_optimizer("apt_adam", model.named_parameters(), lr=1e-3, momentum=0.9)
    with pytest.raises(ValueError, match="allowed: none"):
        make_optimizer("sgd", model.named_parameters(), lr=1e-3, betas=(0.9, 0.99))
    with pytest.raises(ValueError, match="unknown optimizer 'lion'"):
        make_optimizer("lion", model.named_parameters(), lr=1e-3)


def test_every_documented_hyperparameter_is_accepted():
    for name, defaults in DEFAULT_HP.items():
        model = build("conv")
        make_optimizer(name, model.named_parameters(), lr=1e-3, muon_excluded=model.muon_excluded(),
                       **copy.deepcopy(defaults))


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_gradient_names_parameter_and_step(name, bad):
    model = build("mlp")
    optimizer = _make(name, model)
    train(model, optimizer, 2)
    optimizer.zero_grad()
    for param in model.parameters():
        param.grad = torch.zeros_like(param)
    model.shared[2].weight.grad[1, 3] = bad
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(NonFiniteError, match=r"'shared.2.weight' \(shape \(20, 12\)\).*optimizer step 3"):
        optimizer.step()
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before)), "no parameter may move"


@pytest.mark.parametrize("cls", [Muon, APT])
def test_muon_rejects_a_vector_with_the_rules_advice(cls):
    model = build("mlp")
    kwargs = {"base": "muon"} if cls is APT else {}
    with pytest.raises(ValueError, match=r"Muon cannot take parameter 'shared.0.bias' of shape \(12,\).*"
                                         r"split_muon_params"):
        cls([{"params": [(n, p) for n, p in model.named_parameters() if n.startswith("shared.0.")],
              "kind": "muon"}], lr=1e-3, **kwargs)


def test_muon_hyperparameter_errors():
    model = build("mlp")
    with pytest.raises(ValueError, match="adjust_lr='sqrt'"):
        make_optimizer("muon", model.named_parameters(), lr=1e-3, adjust_lr="sqrt")
    with pytest.raises(ValueError, match="ns_dtype='half'"):
        make_optimizer("apt_muon", model.named_parameters(), lr=1e-3, ns_dtype="half")
    with pytest.raises(ValueError, match="preserve='after'"):
        make_optimizer("apt_muon", model.named_parameters(), lr=1e-3, preserve="after")
    with pytest.raises(ValueError, match="adam_lr=0"):
        make_optimizer("muon", model.named_parameters(), lr=1e-3, adam_lr=0)
    with pytest.raises(ValueError, match=r"betas=\(0.9, 1.0\)"):
        make_optimizer("muon", model.named_parameters(), lr=1e-3, betas=(0.9, 1.0))


def test_an_excluded_frozen_head_is_not_an_unknown_name():
    model = build("mlp")
    model.heads[0].weight.requires_grad_(False)
    optimizer = make_optimizer("muon", model.named_parameters(), lr=1e-3, muon_excluded=model.muon_excluded())
    names = [n for group in optimizer.param_groups for n in group["param_names"]]
    assert "heads.0.weight" not in names and "heads.1.weight" in names


def test_documentation_examples_run():
    import doctest

    import apt.optim.factory

    result = doctest.testmod(apt.optim.factory, raise_on_error=False)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_diagnostics_only_observe(name):
    """Recording the diagnostics (share, fidelity, spectra) must not change a single parameter of the trajectory."""
    histories = []
    for diagnostics in (False, True):
        model = build("conv", seed=3)
        histories.append(train(model, _make(name, model, diagnostics=diagnostics), 4, seed=7))
    assert max_difference(*histories) == 0.0
    assert max_difference(histories[0], histories[0][1:] + histories[0][:1]) > 0  # the steps do move the weights
