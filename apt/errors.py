"""Errors shared across apt's modules, each naming what went wrong and where."""

from __future__ import annotations


class NonFiniteError(FloatingPointError):
    """A loss, gradient or parameter became NaN or infinite.

    The message names the quantity (task name/index or parameter name) and the training step.
    """


class SolverError(RuntimeError):
    """A numerical solver (e.g. Nash-MTL's convex program) failed and the caller asked for strictness."""
