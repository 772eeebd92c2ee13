"""One table of MTL methods: name -> class, kind, paper, default hyperparameters."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from apt.errors import NonFiniteError
from apt.mtl.base import GramianMethod, JacobianMethod, Method
from apt.mtl.gradient import MGDA, CAGrad, FairGrad, GradDrop, IMTLG, PCGrad, UPGrad
from apt.mtl.nash_mtl import NashMTL
from apt.mtl.weighting import (
    FAMO,
    DynamicWeightAverage,
    LinearScalarization,
    RandomLossWeighting,
    ScaleInvariant,
    UncertaintyWeighting,
)

_CLASSES: tuple[type[Method], ...] = (
    LinearScalarization, ScaleInvariant, RandomLossWeighting, DynamicWeightAverage, UncertaintyWeighting, FAMO,
    MGDA, PCGrad, GradDrop, CAGrad, IMTLG, NashMTL, FairGrad, UPGrad,
)
METHODS: tuple[str, ...] = tuple(cls.name for cls in _CLASSES)
_BY_NAME: dict[str, type[Method]] = {cls.name: cls for cls in _CLASSES}


@dataclass(frozen=True)
class MethodInfo:
    """What the registry knows about a method. ``defaults``: every hyperparameter with its default value."""

    name: str
    cls: type[Method]
    kind: str
    paper: str
    defaults: dict[str, Any]
    supports_features: bool


def _hyperparameter_defaults(cls: type[Method]) -> dict[str, Any]:
    signature = inspect.signature(cls.__init__)
    return {
        name: parameter.default
        for name, parameter in signature.parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY and name != "generator"
    }


def method_info(name: str) -> MethodInfo:
    """The registry entry of ``name``; ValueError listing the known names otherwise."""
    if name not in _BY_NAME:
        raise ValueError(f"unknown MTL method {name!r}; known methods: {', '.join(METHODS)}")
    cls = _BY_NAME[name]
    return MethodInfo(name=name, cls=cls, kind=cls.kind, paper=cls.paper,
                      defaults=_hyperparameter_defaults(cls), supports_features=cls.supports_features)


def make_method(name: str, n_tasks: int, *, generator: torch.Generator | None = None, **hp: Any) -> Method:
    """A fresh method for ``n_tasks`` tasks with the reference defaults overridden by ``hp``.

    Unknown hyperparameter names raise ValueError listing the method's hyperparameters; invalid values raise
    ValueError naming the hyperparameter, the value and the allowed range.
    """
    info = method_info(name)
    unknown = sorted(set(hp) - set(info.defaults))
    if unknown:
        raise ValueError(f"method {name!r} has no hyperparameter(s) {unknown}; its hyperparameters: "
                         f"{info.defaults}")
    return info.cls(n_tasks, generator=generator, **hp)


def aggregate(name: str, jacobian: Tensor, **hp: Any) -> Tensor:
    """Stateless aggregation of a Jacobian [K, P] -> direction d [P] by a gradient-based method.

    A fresh method is built for each call (Nash-MTL starts from α = 1); ``generator`` may be passed in ``hp``.
    No clipping here: ``max_norm`` acts in ``mtl_backward`` only.
    """
    info = method_info(name)
    if info.kind != "gradient":
        raise ValueError(f"aggregate() takes a gradient-based method; {name!r} is {info.kind}-based "
                         f"(gradient-based: {', '.join(n for n in METHODS if _BY_NAME[n].kind == 'gradient')})")
    if jacobian.ndim != 2 or jacobian.shape[0] < 1:
        raise ValueError(f"jacobian must be a [K, P] matrix with K >= 1, got shape {tuple(jacobian.shape)}")
    if not torch.isfinite(jacobian).all():
        rows = (~torch.isfinite(jacobian)).any(dim=1).nonzero().flatten().tolist()
        raise NonFiniteError(f"jacobian has non-finite entries in task row(s) {rows}")
    method = make_method(name, jacobian.shape[0], **hp)
    if isinstance(method, JacobianMethod):
        return method.aggregate_blocks([jacobian])[0]
    if not isinstance(method, GramianMethod):
        raise TypeError(f"{type(method).__name__} is neither a GramianMethod nor a JacobianMethod")
    gramian = (jacobian @ jacobian.T).to(torch.float64)
    weights = method.weights_from_gramian(gramian)
    return weights.to(jacobian.dtype) @ jacobian
