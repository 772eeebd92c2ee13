"""Nash-MTL: the Nash bargaining solution over task gradients, by concave-convex iterations (CCP)."""

from __future__ import annotations

from typing import Any

import cvxpy as cp
import numpy as np
import torch
from torch import Tensor

from apt.mtl.base import (
    SOLVER_FAILURE_POLICIES,
    GramianMethod,
    check_choice,
    check_int,
    solve_quietly,
)


def _fallback(iteration: int) -> str:
    return "keeping the previous step's weights" if iteration == 0 else f"keeping the CCP iterate {iteration}"


class NashMTL(GramianMethod):
    """Nash-MTL: weights α with α_k (G α)_k = 1 (the Nash bargaining solution), d = Jᵀ α, clipped to max_norm.

    Reference: AvivNavon/nash-mtl ``methods/weight_methods.py::NashMTL`` (defaults update_weights_every = 1,
    optim_niter = 20, max_norm = 1.0). With nf = ‖G‖_F and Ĝ = G / nf, each of up to ``optim_niter`` CCP
    iterations, starting from the previous step's α (ones at the first step), solves

        min_{α ≥ 0}  1ᵀ Ĝ α + φ'(α_t)ᵀ (α − α_t) / nf
        s.t.  −log(α_k · nf) − log((Ĝ α)_k) ≤ 0   for every k,
        φ'(α_t) = 1/α_t + Ĝ (1 / (Ĝ α_t)),

    and stops when ‖Ĝ α_t − 1/(α_t + 1e-10)‖ < 1e-3 or ‖α_{t+1} − α_t‖ < 1e-6 (keeping α_t, as the
    reference does). Numerically each subproblem is solved in β = √nf · α, where the constraints read
    β_k (Ĝ β)_k ≥ 1 and the cost is rescaled to unit norm (neither changes the solution), so that the conic
    solver sees O(1) numbers for gradients of any scale. Every ``update_weights_every`` steps the weights are recomputed; in between the previous α
    is reused without computing J (one backward of αᵀℓ). The shared gradient is clipped to ``max_norm`` after
    it is written (the reference clips after backward too).

    Paper: Navon et al., "Multi-Task Learning as a Bargaining Game", ICML 2022 (arXiv 2202.01017).
    Fixed pitfalls of the reference code: (1) it calls ``cp.ECOS``, which cvxpy ≥ 1.6 no longer ships, and a
    bare ``except`` then silently keeps the previous α (≈ LS; nash-mtl issue #21); we use CLARABEL (ships with
    cvxpy). (2) The reference problem is not DPP (recompiled on every solve); ours is written with Parameters
    only in DPP form (the linearization φ' and 1ᵀĜ are folded into one cost vector parameter),
    so it is compiled once. (3) A failed or infeasible solve (e.g. a zero task gradient makes the constraints
    infeasible) is reported: a SolverFailureWarning naming the step and solver status (or SolverError when
    ``on_solver_failure="raise"``), counted in ``MTLStepInfo.solver_failures``; the CCP then stops and keeps
    its last feasible iterate (the previous step's α if the first solve fails). If every task gradient is zero
    (nf = 0) no solve is needed: d = 0 whatever α.
    """

    name = "nash_mtl"
    paper = "Navon et al., Multi-Task Learning as a Bargaining Game, ICML 2022, arXiv:2202.01017"

    def __init__(self, n_tasks: int, *, generator: torch.Generator | None = None, update_weights_every: int = 1,
                 optim_niter: int = 20, max_norm: float = 1.0, on_solver_failure: str = "warn") -> None:
        super().__init__(n_tasks, generator=generator, max_norm=max_norm)
        self.update_weights_every = check_int("update_weights_every", update_weights_every, 1)
        self.optim_niter = check_int("optim_niter", optim_niter, 1)
        self.on_solver_failure = check_choice("on_solver_failure", on_solver_failure, SOLVER_FAILURE_POLICIES)
        self.previous_alpha = np.ones(n_tasks)
        self.step_counter = 0
        self._problem: cp.Problem | None = None

    def _build(self) -> None:
        k = self.n_tasks
        self._beta = cp.Variable(k, nonneg=True)
        self._gramian = cp.Parameter((k, k))
        self._cost = cp.Parameter(k)
        constraints = [cp.log(self._beta) + cp.log(self._gramian @ self._beta) >= 0]
        self._problem = cp.Problem(cp.Minimize(self._cost @ self._beta), constraints)

    def reuse_weights(self) -> Tensor | None:
        if self.step_counter % self.update_weights_every == 0:
            return None
        self.step_counter += 1
        return torch.from_numpy(self.previous_alpha.copy())

    def weights_from_gramian(self, gramian: Tensor, *, step: int | None = None) -> Tensor:
        self.step_counter += 1
        g = gramian.detach().cpu().numpy().astype(np.float64)
        nf = float(np.linalg.norm(g))
        if nf == 0.0:
            return torch.from_numpy(self.previous_alpha.copy())
        g_hat = g / nf
        if self._problem is None:
            self._build()
        self._gramian.value = (g_hat + g_hat.T) / 2
        root_nf = float(np.sqrt(nf))
        alpha_t = self.previous_alpha
        for iteration in range(self.optim_niter):
            g_alpha = g_hat @ alpha_t
            if np.any(g_alpha == 0.0):
                k = int(np.flatnonzero(g_alpha == 0.0)[0])
                self._solver_failed(f"CCP iteration {iteration}: (Gα)_{k} = 0 (a zero task gradient?), the "
                                    "bargaining constraint α_k (Gα)_k ≥ 1 cannot hold",
                                    policy=self.on_solver_failure, step=step, fallback=_fallback(iteration))
                break
            linearization = 1.0 / alpha_t + g_hat @ (1.0 / g_alpha)
            # In β = √nf · α the constraints lose nf; the cost (×nf√nf, a positive factor) becomes
            # √nf · Ĝ1 + φ'(α_t)/√nf, normalized to unit length: the argmin does not change.
            cost = root_nf * g_hat.sum(axis=0) + linearization / root_nf
            self._cost.value = cost / np.linalg.norm(cost)
            beta = self._solve(step, iteration)
            if beta is None:
                break
            solution = beta / root_nf
            converged = np.linalg.norm(g_hat @ alpha_t - 1.0 / (alpha_t + 1e-10)) < 1e-3
            if converged or np.linalg.norm(solution - alpha_t) < 1e-6:
                break
            alpha_t = solution
        self.previous_alpha = np.asarray(alpha_t, dtype=np.float64)
        return torch.from_numpy(self.previous_alpha.copy())

    def _solve(self, step: int | None, iteration: int) -> np.ndarray | None:
        """One CCP subproblem in β; None (reported) unless the solver returns a point meeting the constraints."""
        try:
            solve_quietly(self._problem, cp.CLARABEL)
        except cp.error.SolverError as error:
            reason = str(error)
        else:
            reason = f"status {self._problem.status}"
            if self._problem.status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE) and self._beta.value is not None:
                # A solver may return β_k = 0 within tolerance; 1/α in the next linearization must stay finite.
                beta = np.clip(np.asarray(self._beta.value, dtype=np.float64), 1e-12, None)
                worst = float(np.min(beta * (self._gramian.value @ beta)))
                if worst >= 1.0 - 1e-3:
                    return beta
                reason += f", constraint α_k (Gα)_k ≥ 1 violated (min {worst:.3g})"
        self._solver_failed(f"CCP iteration {iteration}: {reason}", policy=self.on_solver_failure, step=step,
                            fallback=_fallback(iteration))
        return None

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "previous_alpha": self.previous_alpha.copy(), "step_counter": self.step_counter}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.previous_alpha = np.asarray(state["previous_alpha"], dtype=np.float64).copy()
        self.step_counter = int(state["step_counter"])
