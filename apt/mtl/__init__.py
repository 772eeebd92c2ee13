"""Turning K task losses into one gradient: per-task Jacobians, loss- and gradient-based MTL methods.

Public surface:
    METHODS, make_method(name, n_tasks, *, generator=None, **hp), method_info(name),
    mtl_backward(losses, shared_params, method, ...) -> MTLStepInfo, aggregate(name, jacobian, **hp).
"""

from apt.mtl.backward import MTLStepInfo, mtl_backward
from apt.mtl.base import GramianMethod, JacobianMethod, LossMethod, Method, SolverFailureWarning
from apt.mtl.registry import METHODS, MethodInfo, aggregate, make_method, method_info

__all__ = [
    "METHODS",
    "GramianMethod",
    "JacobianMethod",
    "LossMethod",
    "MTLStepInfo",
    "Method",
    "MethodInfo",
    "SolverFailureWarning",
    "aggregate",
    "make_method",
    "method_info",
    "mtl_backward",
]
