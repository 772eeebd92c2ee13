"""``make_optimizer``: one entry point from a name and a model's named parameters to a ready optimizer.

Names and their hyperparameters (``**hp``; anything else raises ValueError listing the allowed ones).
``lr`` and ``weight_decay`` are explicit arguments for all; ``muon_excluded`` matters for muon/apt_muon only.

=========  ==========================================================================================
sgd        ``torch.optim.SGD``, no momentum. No hp. (sgd, sgdm, adam, adamw use torch's foreach path.)
sgdm       ``torch.optim.SGD`` with momentum=0.9 and dampening = momentum (register O4): the buffer is
           then an EMA b_t = μ b_{t−1} + (1 − μ) g_t like Adam's and Muon's, so the instant-gradient
           share means the same thing and the lr is on the gradient's scale. hp: momentum.
adam       ``torch.optim.Adam`` (L2 weight decay). hp: betas=(0.9, 0.999), eps=1e-8.
adamw      ``torch.optim.AdamW`` (decoupled weight decay). hp: as adam.
muon       ``apt.optim.Muon``: Muon on hidden ≥2-D weights, AdamW on the rest (``split_muon_params``).
           hp: momentum=0.95, nesterov=True, adjust_lr="match_rms_adamw", adam_lr=lr (AdamW group),
           betas=(0.9, 0.999), eps=1e-8 (AdamW group), ns_steps=5, ns_dtype="bfloat16", spectrum_every=1.
apt_adam   ``apt.optim.APT(base="adam")``. hp: beta_min=0.5, beta_max=0.9, beta2=0.999, eps=1e-8,
           momentum_rule="linear", adapt_direction="agree_more", cosine_scope="tensor".
apt_adamw  ``APT(base="adamw")``. hp: as apt_adam.
apt_muon   ``APT(base="muon")`` + an AdamW group with β_min = β_max = betas[0] (register A7).
           hp: beta_min=0.5, beta_max=0.95, momentum_rule, adapt_direction, cosine_scope (as apt_adam),
           preserve="pre_mix", preserve_strength=0.1, and muon's nesterov, adjust_lr, adam_lr, betas,
           eps, ns_steps, ns_dtype, spectrum_every.
=========  ==========================================================================================

Why ``adjust_lr="match_rms_adamw"`` is the default here (register O3): the benchmark protocols give one
Adam learning rate (1e-3 QM9, 3e-4 CelebA, 1e-4 scene understanding). Scaling Muon's step by
0.2·√max(A, B) gives its orthogonalized update roughly AdamW's update RMS (Moonshot, "Muon is Scalable for
LLM Training"), so the protocol's lr can drive both the Muon and the AdamW group without a new search;
``"original"`` (torch's default) would need a Muon-specific lr (≈0.02). The β defaults are assumptions
(register A8): β_max is the base optimizer's default momentum, β_min = 0.5 lets the instant gradient reach
about half of m_t.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable
from typing import Any

import torch
from torch import nn

from apt.optim.apt import APT
from apt.optim.baselines import SGD, Adam, AdamW
from apt.optim.muon import Muon, muon_param_groups, validate_adam_hyperparameters

OPTIMIZERS: tuple[str, ...] = ("sgd", "sgdm", "adam", "adamw", "muon", "apt_adam", "apt_adamw", "apt_muon")

_ADAM_HP: dict[str, Any] = {"betas": (0.9, 0.999), "eps": 1e-8}
_MUON_SHARED_HP: dict[str, Any] = {"nesterov": True, "adjust_lr": "match_rms_adamw", "adam_lr": None,
                                   "betas": (0.9, 0.999), "eps": 1e-8, "ns_steps": 5, "ns_dtype": "bfloat16",
                                   "spectrum_every": 1}
_APT_HP: dict[str, Any] = {"beta_min": 0.5, "beta_max": 0.9, "beta2": 0.999, "eps": 1e-8,
                           "momentum_rule": "linear", "adapt_direction": "agree_more", "cosine_scope": "tensor"}
DEFAULT_HP: dict[str, dict[str, Any]] = {
    "sgd": {},
    "sgdm": {"momentum": 0.9},
    "adam": dict(_ADAM_HP),
    "adamw": dict(_ADAM_HP),
    "muon": {"momentum": 0.95} | _MUON_SHARED_HP,
    "apt_adam": dict(_APT_HP),
    "apt_adamw": dict(_APT_HP),
    "apt_muon": {k: v for k, v in _APT_HP.items() if k != "beta2"} | _MUON_SHARED_HP
    | {"beta_max": 0.95, "preserve": "pre_mix", "preserve_strength": 0.1},
}


def resolve_hyperparameters(name: str, hp: dict[str, Any]) -> dict[str, Any]:
    """The defaults of ``name`` (``DEFAULT_HP``) overridden by ``hp``; unknown keys: ValueError listing allowed."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}: allowed {OPTIMIZERS}")
    allowed = DEFAULT_HP[name]
    unknown = sorted(set(hp) - set(allowed))
    if unknown:
        raise ValueError(f"unknown hyperparameter(s) {unknown} for optimizer {name!r}; allowed: "
                         f"{sorted(allowed) if allowed else 'none'}")
    return allowed | hp


def make_optimizer(name: str, named_parameters: Iterable[tuple[str, nn.Parameter]], *, lr: float,
                   muon_excluded: Collection[str] = (), weight_decay: float = 0.0, diagnostics: bool = False,
                   **hp: Any) -> torch.optim.Optimizer:
    """Build optimizer ``name`` (``OPTIMIZERS``; table in the module docstring) over ``named_parameters``.

    Parameters with ``requires_grad=False`` are left out. Every optimizer returned records
    ``step_diagnostics`` and ``last_update`` when ``diagnostics=True`` (``apt.optim.diagnostics``).

    >>> import torch
    >>> torch.manual_seed(0) and None
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 8),
    ...                             torch.nn.Tanh(), torch.nn.Linear(8, 2))
    >>> optimizer = make_optimizer("apt_muon", model.named_parameters(), lr=1e-3,
    ...                            muon_excluded={"0.weight", "4.weight"}, diagnostics=True)
    >>> [(group["kind"], group["param_names"]) for group in optimizer.param_groups]
    [('muon', ['2.weight']), ('adamw', ['0.weight', '0.bias', '2.bias', '4.weight', '4.bias'])]
    >>> model(torch.randn(16, 4)).square().mean().backward()
    >>> optimizer.step()
    >>> diagnostics = optimizer.step_diagnostics
    >>> round(diagnostics["instant_gradient_share"], 6)  # first step: m_1 = (1 - β_1) g_1 everywhere
    1.0
    >>> optimizer.last_update(list(model.parameters())).shape
    torch.Size([130])
    """
    config = resolve_hyperparameters(name, hp)
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0.0 < lr < math.inf:
        raise ValueError(f"lr={lr!r}: must be a finite number > 0")
    everything = list(named_parameters)
    named = [(n, p) for n, p in everything if p.requires_grad]
    if not named:
        raise ValueError(f"make_optimizer({name!r}): no trainable parameters given")
    common = {"weight_decay": weight_decay, "diagnostics": diagnostics}
    # torch picks its per-tensor loop on CPU by default; foreach is the same maths, ~3x faster there.
    foreach = {"foreach": True}
    if name == "sgd":
        return SGD(named, lr=lr, **foreach, **common)
    if name == "sgdm":
        momentum = config["momentum"]
        if not isinstance(momentum, (int, float)) or not 0.0 < momentum < 1.0:
            raise ValueError(f"momentum={momentum!r}: must be a number in (0, 1) for sgdm")
        return SGD(named, lr=lr, momentum=momentum, dampening=momentum, **foreach, **common)
    if name in ("adam", "adamw"):
        validate_adam_hyperparameters(config["betas"], config["eps"])
        return (Adam if name == "adam" else AdamW)(named, lr=lr, betas=tuple(config["betas"]),
                                                   eps=config["eps"], **foreach, **common)
    if name in ("apt_adam", "apt_adamw"):
        return APT(named, lr=lr, base=name.removeprefix("apt_"), **config, **common)
    groups = _muon_groups(everything, muon_excluded, config)
    muon_hp = {k: config[k] for k in ("nesterov", "adjust_lr", "ns_steps", "ns_dtype", "spectrum_every")}
    if name == "muon":
        return Muon(groups, lr=lr, momentum=config["momentum"], betas=tuple(config["betas"]), eps=config["eps"],
                    **muon_hp, **common)
    for group in groups:
        if group["kind"] == "adamw":
            group["beta_min"] = group["beta_max"] = float(config["betas"][0])  # register A7
    apt_hp = {k: config[k] for k in ("beta_min", "beta_max", "momentum_rule", "adapt_direction", "cosine_scope",
                                     "preserve", "preserve_strength")}
    return APT(groups, lr=lr, base="muon", eps=config["eps"], beta2=config["betas"][1], **apt_hp, **muon_hp,
               **common)


def _muon_groups(named: list[tuple[str, nn.Parameter]], excluded: Collection[str], config: dict[str, Any]
                 ) -> list[dict[str, Any]]:
    """The Muon and AdamW param groups (``muon_param_groups``) after checking adam_lr, betas and eps."""
    adam_lr = config["adam_lr"]
    if adam_lr is not None and (not isinstance(adam_lr, (int, float)) or not 0.0 < adam_lr < math.inf):
        raise ValueError(f"adam_lr={adam_lr!r}: must be a finite number > 0 (or None for lr)")
    validate_adam_hyperparameters(config["betas"], config["eps"])
    return muon_param_groups(named, excluded=excluded, adam_lr=adam_lr)
