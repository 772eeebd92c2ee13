"""Checks and plotting helpers of the workshop chapter (``notebooks/tutorial_workshop.py``).

Every ``check_*`` function takes the learner's answer (a function or a config), compares it with what
``apt.mtl`` / ``apt.optim`` compute for the same inputs (never with hard-coded numbers) and returns a
``Verdict``: ``correct``, ``wrong`` (with the reason, e.g. "your direction has norm 2.3, MGDA's min-norm point
must have norm <= min(|g1|, |g2|) = 1") or ``not filled in`` (the fill-in cell still returns ``None``). A check
never raises because of the answer: an exception inside the learner's code becomes a ``wrong`` verdict that
names it.

Step 1  ``two_task_jacobian``, ``min_norm_point``, ``method_directions``, ``plot_directions``, ``show_directions``,
        ``check_min_norm_direction``
Step 2  ``check_instant_gradient_share``, ``diagnostics_frame``, ``plot_share_and_fidelity``
Step 3  ``layer_task_gradients``, ``check_polar_factor``, ``plot_spectra``, ``task_cosines``
Step 4  ``check_single_change``, ``comparison_frame``
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import torch
from torch import Tensor

from apt.benchmarks import get_benchmark
from apt.config import Config
from apt.mtl import aggregate, make_method, mtl_backward
from apt.optim import OPTIMIZERS, make_optimizer, polar_factor
from apt.optim.newton_schulz import singular_values
from apt.page import wrapped

CORRECT, WRONG, NOT_FILLED_IN = "correct", "wrong", "not filled in"
_MARKS = {CORRECT: "[correct]", WRONG: "[try again]", NOT_FILLED_IN: "[not filled in yet]"}


@dataclass(frozen=True)
class Verdict:
    """The outcome of one check: ``status`` (correct | wrong | not filled in), the exercise and why."""

    exercise: str
    status: str
    message: str

    @property
    def ok(self) -> bool:
        return self.status == CORRECT

    def __str__(self) -> str:
        # folded to the book page's width: a notebook shows it as the cell's result, which is clipped, not wrapped
        return wrapped(f"{_MARKS[self.status]} {self.exercise}: {self.message}")

    __repr__ = __str__


def _not_filled_in(exercise: str, what: str) -> Verdict:
    return Verdict(exercise, NOT_FILLED_IN, f"{what} is still None. Fill in the cell above, run it, then run this "
                                            "check again.")


def _raised(exercise: str, error: Exception, when: str) -> Verdict:
    return Verdict(exercise, WRONG, f"your code raised {type(error).__name__}: {error} ({when})")


def _fmt(vector: Tensor) -> str:
    return "[" + ", ".join(f"{float(v):.3g}" for v in vector.flatten()[:6]) + (", ...]" if vector.numel() > 6 else "]")


# ----- step 1: two conflicting task gradients ---------------------------------------------------------------
def two_task_jacobian(angle_deg: float, norm_ratio: float) -> Tensor:
    """J = [g1; g2] in ℝ²: g1 = (1, 0), g2 = r (cos a, sin a) with a = ``angle_deg``, r = ``norm_ratio``. [2, 2].

    a > 90° means the tasks conflict (g1 · g2 < 0).
    """
    if not 0.0 <= angle_deg <= 180.0:
        raise ValueError(f"angle_deg={angle_deg!r}: must be in [0, 180]")
    if not norm_ratio > 0.0:
        raise ValueError(f"norm_ratio={norm_ratio!r}: must be > 0")
    angle = math.radians(angle_deg)
    return torch.tensor([[1.0, 0.0], [norm_ratio * math.cos(angle), norm_ratio * math.sin(angle)]],
                        dtype=torch.float64)


def min_norm_point(jacobian: Tensor) -> Tensor:
    """argmin ‖d‖ over the convex hull of the rows of J [K, P]: ``apt.mtl``'s MGDA direction divided by K.

    (``apt.mtl``'s MGDA returns K · Jᵀw*, the lineage's scale convention, so that it matches summed losses.)
    """
    return aggregate("mgda", jacobian) / jacobian.shape[0]


def method_directions(jacobian: Tensor) -> dict[str, Tensor]:
    """The direction d [P] of LS (Σ_k g_k), MGDA, PCGrad and CAGrad for J [K, P], as ``apt.mtl`` computes them."""
    directions = {"ls": jacobian.sum(0)}
    for name in ("mgda", "pcgrad", "cagrad"):
        hp = {"generator": torch.Generator().manual_seed(0)} if name == "pcgrad" else {}
        directions[name] = aggregate(name, jacobian, **hp)
    return directions


def plot_directions(angle_deg: float, norm_ratio: float, ax: plt.Axes | None = None) -> plt.Axes:
    """Draw g1, g2 (grey), the segment between them, MGDA's min-norm point on it, and the directions d of LS,
    MGDA, PCGrad and CAGrad for ``two_task_jacobian(angle_deg, norm_ratio)``. Returns the axes."""
    jacobian = two_task_jacobian(angle_deg, norm_ratio)
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4.5))
    g1, g2 = jacobian[0], jacobian[1]
    ax.plot([g1[0], g2[0]], [g1[1], g2[1]], color="grey", ls=":", lw=1)
    for k, g in enumerate(jacobian):
        ax.annotate("", xy=g.tolist(), xytext=(0, 0), arrowprops=dict(arrowstyle="->", color="grey", lw=2))
        ax.text(*(1.08 * g).tolist(), f"$g_{k + 1}$", color="grey")
    for i, (name, d) in enumerate(method_directions(jacobian).items()):
        ax.annotate("", xy=d.tolist(), xytext=(0, 0), arrowprops=dict(arrowstyle="->", color=f"C{i}", lw=2))
        ax.plot([], [], color=f"C{i}", lw=2, label=name)
    point = min_norm_point(jacobian)
    ax.plot(*point.tolist(), "o", color="C1", ms=5, label="min-norm point")
    extent = 1.15 * float(max(jacobian.norm(dim=1).max(), *(d.norm() for d in method_directions(jacobian).values())))
    cosine = float(torch.nn.functional.cosine_similarity(g1, g2, dim=0))
    ax.set(xlim=(-extent, extent), ylim=(-extent, extent), aspect="equal", xlabel="component 1 (units of |g1|)",
           ylabel="component 2 (units of |g1|)",
           title=f"angle {angle_deg:g}°, |g2|/|g1| = {norm_ratio:g}, cos = {cosine:.2f}")
    ax.axhline(0, color="black", lw=0.3)
    ax.axvline(0, color="black", lw=0.3)
    ax.legend(fontsize=9, loc="lower left")
    return ax


def show_directions(angle_deg: float, norm_ratio: float) -> None:
    """``plot_directions`` on a new figure, shown at once (the callback of the chapter's interactive sliders)."""
    plot_directions(angle_deg, norm_ratio)
    plt.show()


def _min_norm_cases() -> list[tuple[str, Tensor]]:
    """Jacobians [2, P] on which a two-task min-norm solver is checked: interior and endpoint optima, ℝ² and ℝ⁷."""
    generator = torch.Generator().manual_seed(0)
    cases = [
        ("conflicting, |g2| = 3 |g1| (150°)", two_task_jacobian(150.0, 3.0)),
        ("conflicting, equal norms (120°)", two_task_jacobian(120.0, 1.0)),
        ("aligned, |g2| = 3 |g1| (20°): the optimum is an endpoint", two_task_jacobian(20.0, 3.0)),
        ("orthogonal, |g2| = 0.5 |g1|", two_task_jacobian(90.0, 0.5)),
    ]
    for index in range(4):
        cases.append((f"random pair #{index + 1} in R^7", torch.randn(2, 7, generator=generator, dtype=torch.float64)))
    return cases


def check_min_norm_direction(candidate: Callable[[Tensor, Tensor], Tensor | None]) -> Verdict:
    """Check ``candidate(g1, g2) -> d`` (g [P], d [P]) against the min-norm point of apt.mtl's MGDA (/ K = 2).

    The min-norm point d* = w g1 + (1 − w) g2, w ∈ [0, 1] minimizing ‖d‖, satisfies ‖d*‖ ≤ min(‖g1‖, ‖g2‖) and
    g_k · d* ≥ ‖d*‖² for both tasks.
    """
    exercise = "exercise 1 (min-norm direction)"
    for description, jacobian in _min_norm_cases():
        g1, g2 = jacobian[0].clone(), jacobian[1].clone()
        try:
            answer = candidate(g1, g2)
        except NotImplementedError:
            return _not_filled_in(exercise, "min_norm_direction(g1, g2)")
        except Exception as error:  # noqa: BLE001 — any error in the learner's code is reported, never raised
            return _raised(exercise, error, f"on g1 = {_fmt(g1)}, g2 = {_fmt(g2)}")
        if answer is None:
            return _not_filled_in(exercise, "min_norm_direction(g1, g2)")
        verdict = _diagnose_min_norm(exercise, description, jacobian, answer)
        if verdict is not None:
            return verdict
    return Verdict(exercise, CORRECT, f"matches apt.mtl's MGDA (divided by K = 2) on all {len(_min_norm_cases())} "
                                      "test pairs, conflicting, aligned and random.")


def _diagnose_min_norm(exercise: str, description: str, jacobian: Tensor, answer: Any) -> Verdict | None:
    """None if ``answer`` is the min-norm point of the rows of ``jacobian`` [2, P]; else why not."""
    g1, g2 = jacobian[0], jacobian[1]
    where = f"on the case '{description}' (g1 = {_fmt(g1)}, g2 = {_fmt(g2)})"
    if not isinstance(answer, Tensor):
        return Verdict(exercise, WRONG, f"return a torch.Tensor, got {type(answer).__name__} {where}")
    if answer.shape != g1.shape:
        return Verdict(exercise, WRONG, f"your direction has shape {tuple(answer.shape)}, expected "
                                        f"{tuple(g1.shape)} like g1 {where}")
    answer = answer.double()
    if not bool(torch.isfinite(answer).all()):
        return Verdict(exercise, WRONG, f"your direction has NaN/Inf entries {where}: a division by zero?")
    expected = min_norm_point(jacobian)
    tolerance = 1e-6 * (1.0 + float(jacobian.norm()))
    if float((answer - expected).norm()) <= tolerance:
        return None
    bound = float(min(g1.norm(), g2.norm()))
    if float((answer - 2.0 * expected).norm()) <= 2 * tolerance:
        return Verdict(exercise, WRONG, f"your direction is 2 × the min-norm point {where}: that is apt.mtl's "
                                        "scale convention (K · Jᵀw); this exercise asks for the point itself")
    if float(answer.norm()) > bound + tolerance:
        return Verdict(exercise, WRONG, f"your direction has norm {float(answer.norm()):.3g}, MGDA's min-norm point "
                                        f"must have norm <= min(|g1|, |g2|) = {bound:.3g} {where} (both endpoints "
                                        "of the segment are candidates)")
    # Is the answer on the line through g1 and g2?  answer = w g1 + (1 − w) g2  ⇔  answer − g2 = w (g1 − g2)
    difference = g1 - g2
    weight = float((answer - g2) @ difference / (difference @ difference))
    off_line = float((answer - g2 - weight * difference).norm())
    if off_line > tolerance:
        return Verdict(exercise, WRONG, f"your direction is not of the form w g1 + (1 - w) g2 {where}: the min-norm "
                                        "point lies on the segment between the two gradients")
    if not -1e-9 <= weight <= 1 + 1e-9:
        return Verdict(exercise, WRONG, f"your direction is w g1 + (1 - w) g2 with w = {weight:.3g} {where}: clip w "
                                        "to [0, 1], the unconstrained minimizer can leave the segment (then the "
                                        "shorter gradient is the answer)")
    expected_weight = float((expected - g2) @ difference / (difference @ difference))
    return Verdict(exercise, WRONG, f"your direction is on the segment, with w = {weight:.3g}, but the shortest "
                                    f"point has w = {expected_weight:.3g} {where}: minimize |w g1 + (1 - w) g2|^2 "
                                    "over w (set its derivative to zero)")


# ----- step 2: how much of the step is the instant gradient ----------------------------------------------------
def _momentum_of(optimizer: torch.optim.Optimizer, param: Tensor) -> tuple[Tensor, float]:
    """(m_t, β) of one parameter of torch's SGD-with-momentum or Adam (states momentum_buffer / exp_avg)."""
    state = optimizer.state[param]
    for group in optimizer.param_groups:
        if any(p is param for p in group["params"]):
            if "exp_avg" in state:
                return state["exp_avg"], float(group["betas"][0])
            return state["momentum_buffer"], float(group["momentum"])
    raise ValueError(f"parameter of shape {tuple(param.shape)} is not managed by this optimizer")


def check_instant_gradient_share(
    candidate: Callable[[list[Tensor], list[Tensor], float], float | None],
    *,
    data_dir: str | Path | None = None,
    seed: int = 0,
    steps: int = 4,
) -> Verdict:
    """Check ``candidate(grads, buffers, beta) -> s`` (lists of equally shaped tensors, s a float) against
    ``optimizer.step_diagnostics["instant_gradient_share"]`` (register G1) of apt.optim's ``sgdm`` and ``adam``.

    The test problem is real: MultiLeNet on Multi-MNIST pairs (the benchmark's smoke split), MGDA, batch 64,
    ``steps`` optimizer steps, compared after every step but the first (SGD's buffer starts at g_1, undampened).
    The expected value is s_t = ‖(1 − β) g_t‖ / ‖m_t‖ over all parameters together.
    """
    exercise = "exercise 2 (instant-gradient share)"
    bench = get_benchmark("multi_mnist", data_dir)
    splits = bench.splits(bench.protocol_for("smoke"), seed)
    for optimizer_name, lr in (("sgdm", 0.05), ("adam", 1e-3)):
        torch.manual_seed(seed)
        model = bench.build_model()
        method = make_method("mgda", bench.n_tasks)
        optimizer = make_optimizer(optimizer_name, model.named_parameters(), lr=lr, diagnostics=True)
        loader = bench.loader(splits.train, 64, shuffle=True, generator=torch.Generator().manual_seed(seed))
        for step, batch in zip(range(steps), loader):
            optimizer.zero_grad(set_to_none=True)
            inputs, targets = bench.inputs_targets(batch, "cpu")
            mtl_backward(bench.losses(model(inputs), targets), model.shared_parameters(), method,
                         task_params=model.task_parameters())
            optimizer.step()
            if step == 0:
                continue
            params = [p for p in model.parameters() if p.grad is not None]
            momenta = [_momentum_of(optimizer, p) for p in params]
            grads = [p.grad.clone() for p in params]
            buffers = [m.clone() for m, _ in momenta]
            beta = momenta[0][1]
            try:
                answer = candidate(grads, buffers, beta)
            except NotImplementedError:
                return _not_filled_in(exercise, "instant_gradient_share(grads, buffers, beta)")
            except Exception as error:  # noqa: BLE001 — reported, never raised
                return _raised(exercise, error, f"{optimizer_name}, step {step + 1}")
            if answer is None:
                return _not_filled_in(exercise, "instant_gradient_share(grads, buffers, beta)")
            expected = optimizer.step_diagnostics["instant_gradient_share"]
            verdict = _diagnose_share(exercise, f"{optimizer_name} (beta = {beta:g}), step {step + 1}", answer,
                                      expected, grads, buffers, beta)
            if verdict is not None:
                return verdict
    return Verdict(exercise, CORRECT, "matches apt.optim's diagnostic (register G1) under SGD with momentum and "
                                      f"Adam on {steps - 1} steps each of MGDA on Multi-MNIST.")


def _diagnose_share(exercise: str, where: str, answer: Any, expected: float, grads: list[Tensor],
                    buffers: list[Tensor], beta: float) -> Verdict | None:
    if isinstance(answer, Tensor):
        if answer.numel() != 1:
            return Verdict(exercise, WRONG, f"return one number for all parameters together, got a tensor of shape "
                                            f"{tuple(answer.shape)} ({where})")
        answer = float(answer)
    if not isinstance(answer, (int, float)) or isinstance(answer, bool) or not math.isfinite(answer):
        return Verdict(exercise, WRONG, f"return a finite float, got {answer!r} ({where})")
    if math.isclose(answer, expected, rel_tol=1e-4):
        return None
    per_tensor = [float((1 - beta) * g.norm() / m.norm()) for g, m in zip(grads, buffers) if m.norm() > 0]
    hints = [
        (expected / (1 - beta), "you left out the factor (1 - beta) with which g_t enters m_t"),
        (1.0 / expected, "you inverted the ratio: it is |(1 - beta) g_t| / |m_t|"),
        (sum(per_tensor) / len(per_tensor), "you averaged one ratio per tensor; take one norm over all parameters "
                                            "together (the square root of the sum of squared norms)"),
        (expected * (1 - beta), "you multiplied by (1 - beta) twice"),
    ]
    for value, why in hints:
        if math.isclose(answer, value, rel_tol=1e-4):
            return Verdict(exercise, WRONG, f"your share is {answer:.4g}, apt.optim measures {expected:.4g} ({where}): "
                                            f"{why}")
    return Verdict(exercise, WRONG, f"your share is {answer:.4g}, apt.optim measures {expected:.4g} ({where}); "
                                    "s_t = |(1 - beta) g_t| / |m_t| with the norms over all parameters together")


def diagnostics_frame(records: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """One row per recorded step and run: columns run, step, share (G1), fidelity (G2), from run records."""
    rows = []
    for label, record in records.items():
        diagnostics = record["diagnostics"]
        for i, step in enumerate(diagnostics["step"]):
            rows.append({"run": label, "step": step, "share": diagnostics["instant_gradient_share"][i],
                         "fidelity": diagnostics["update_instant_cosine"][i]})
    return pd.DataFrame(rows)


def plot_share_and_fidelity(steps: pd.DataFrame, title: str, smoothing: int = 10) -> plt.Figure:
    """Instant-gradient share (log scale) and update fidelity per recorded step, one line per run
    (rolling median over ``smoothing`` recorded steps). ``steps``: ``diagnostics_frame(...)``."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for label, part in steps.groupby("run", sort=False):
        for ax, quantity in zip(axes, ("share", "fidelity")):
            ax.plot(part["step"], part[quantity].rolling(smoothing, min_periods=1).median(), label=label)
    axes[0].set(xlabel="training step", ylabel="instant-gradient share $s_t$", yscale="log")
    axes[1].set(xlabel="training step", ylabel=r"fidelity $\cos(\Delta\theta_t, -g_t)$", ylim=(-0.2, 1.05))
    # fidelity rarely falls below 0.2, so the bottom right of that panel is free for the legend
    axes[1].legend(title="optimizer", loc="lower right", ncols=2)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


# ----- step 3: Muon's orthogonalization -------------------------------------------------------------------------
def layer_task_gradients(
    layer: str = "shared.fc.weight",
    *,
    data_dir: str | Path | None = None,
    seed: int = 0,
    warmup_steps: int = 30,
    batch_size: int = 256,
) -> Tensor:
    """Per-task gradients of one weight matrix of MultiLeNet on a real Multi-MNIST batch: [K, A, B].

    The model is first trained for ``warmup_steps`` Adam steps (lr 1e-3, LS) on the benchmark's smoke split, so
    that the gradients are those of a model that has started to learn, not of its random initialization.
    """
    bench = get_benchmark("multi_mnist", data_dir)
    splits = bench.splits(bench.protocol_for("smoke"), seed)
    torch.manual_seed(seed)
    model = bench.build_model()
    named = dict(model.named_parameters())
    if layer not in named or named[layer].ndim != 2:
        matrices = [name for name, p in named.items() if p.ndim == 2]
        raise ValueError(f"layer={layer!r}: expected the name of a weight matrix of MultiLeNet, one of {matrices}")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(seed)
    batches = iter(())
    for _ in range(warmup_steps):
        batch = next(batches, None)
        if batch is None:
            batches = iter(bench.loader(splits.train, batch_size, shuffle=True, generator=generator))
            batch = next(batches)
        inputs, targets = bench.inputs_targets(batch, "cpu")
        optimizer.zero_grad(set_to_none=True)
        bench.losses(model(inputs), targets).sum().backward()
        optimizer.step()
    inputs, targets = bench.inputs_targets(next(iter(bench.loader(splits.test, batch_size, shuffle=False,
                                                                    generator=None))), "cpu")
    losses = bench.losses(model(inputs), targets)
    return torch.stack([torch.autograd.grad(loss, named[layer], retain_graph=True)[0] for loss in losses])


def _polar_cases() -> list[tuple[str, Tensor]]:
    generator = torch.Generator().manual_seed(1)
    return [
        ("a wide 6 x 10 matrix", torch.randn(6, 10, generator=generator, dtype=torch.float64)),
        ("a tall 9 x 4 matrix", torch.randn(9, 4, generator=generator, dtype=torch.float64)),
        ("an ill-conditioned 5 x 5 matrix", torch.randn(5, 5, generator=generator, dtype=torch.float64)
         @ torch.diag(torch.tensor([100.0, 10.0, 1.0, 0.1, 0.01], dtype=torch.float64))),
    ]


def check_polar_factor(candidate: Callable[[Tensor], Tensor | None]) -> Verdict:
    """Check ``candidate(X) -> U Vᵀ`` (X [A, B] = U S Vᵀ, thin SVD) against ``apt.optim.polar_factor``."""
    exercise = "exercise 3 (orthogonalization)"
    for description, matrix in _polar_cases():
        try:
            answer = candidate(matrix.clone())
        except NotImplementedError:
            return _not_filled_in(exercise, "orthogonalize(X)")
        except Exception as error:  # noqa: BLE001 — reported, never raised
            hint = "; use the thin SVD, full_matrices=False" if "shape" in str(error) else ""
            return _raised(exercise, error, f"on {description}{hint}")
        if answer is None:
            return _not_filled_in(exercise, "orthogonalize(X)")
        where = f"(on {description})"
        if not isinstance(answer, Tensor):
            return Verdict(exercise, WRONG, f"return a torch.Tensor, got {type(answer).__name__} {where}")
        if answer.shape == matrix.T.shape and answer.shape != matrix.shape:
            return Verdict(exercise, WRONG, f"your result has shape {tuple(answer.shape)}, the transpose of the "
                                            f"input's {tuple(matrix.shape)} {where}: U Vᵀ, not V Uᵀ")
        if answer.shape != matrix.shape:
            return Verdict(exercise, WRONG, f"your result has shape {tuple(answer.shape)}, expected "
                                            f"{tuple(matrix.shape)} {where}: use the thin SVD "
                                            "(torch.linalg.svd(X, full_matrices=False))")
        answer = answer.double()
        expected = polar_factor(matrix)
        if float((answer - expected).norm()) <= 1e-6 * math.sqrt(matrix.numel()):
            continue
        sigma = singular_values(answer)
        if float((answer - matrix).norm()) <= 1e-9 * float(matrix.norm()):
            return Verdict(exercise, WRONG, f"your result is the input itself {where}: drop the singular values, "
                                            "keep U and Vᵀ")
        if float(sigma.max() - sigma.min()) > 1e-4:
            return Verdict(exercise, WRONG, f"your result's singular values range from {float(sigma.min()):.3g} to "
                                            f"{float(sigma.max()):.3g} {where}; an orthogonalized matrix has all its "
                                            "singular values equal to 1 (dividing by a norm rescales them but keeps "
                                            "their spread)")
        if abs(float(sigma.mean()) - 1.0) > 1e-4:
            return Verdict(exercise, WRONG, f"your result's singular values are all {float(sigma.mean()):.3g} "
                                            f"{where}; they must be 1")
        return Verdict(exercise, WRONG, f"your result has unit singular values but is not U Vᵀ of the input {where}"
                                        f" (distance {float((answer - expected).norm()):.3g}): keep the singular "
                                        "vectors of X, in the same order")
    return Verdict(exercise, CORRECT, f"matches apt.optim.polar_factor on {len(_polar_cases())} matrices (wide, "
                                      "tall, ill-conditioned).")


def task_cosines(update: Tensor, task_gradients: Tensor) -> Tensor:
    """cos(update, G_k) for each task k, the matrices flattened: update [A, B], task_gradients [K, A, B] -> [K]."""
    flat = task_gradients.reshape(task_gradients.shape[0], -1).double()
    return torch.nn.functional.cosine_similarity(flat, update.reshape(1, -1).double(), dim=1)


def plot_spectra(matrices: Mapping[str, Tensor], ax: plt.Axes | None = None,
                 title: str = "singular values") -> plt.Axes:
    """Singular values (descending, each divided by the largest) of each named matrix [A, B], log scale."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.8))
    for name, matrix in matrices.items():
        sigma = singular_values(matrix.float())
        ax.plot(range(1, sigma.numel() + 1), (sigma / sigma.max()).numpy(), marker=".", label=name)
    ax.set(yscale="log", xlabel="singular value index i", ylabel=r"$\sigma_i / \sigma_1$ (dimensionless)",
           title=title)
    ax.legend(fontsize=8)
    return ax


# ----- step 4: switch APT on -------------------------------------------------------------------------------------
_DESCRIPTIVE_FIELDS = {"data_dir"}  # where data is read from: not part of what a run computes


def check_single_change(baseline: Config, candidate: Config | None) -> Verdict:
    """Check that ``candidate`` is ``baseline`` with APT switched on and nothing else changed: optimizer
    ``apt_<baseline optimizer>``, every other hashed field equal (a fair comparison changes one thing)."""
    exercise = "exercise 4 (switch APT on)"
    if candidate is None:
        return _not_filled_in(exercise, "apt_config")
    if not isinstance(candidate, Config):
        return Verdict(exercise, WRONG, f"apt_config must be an apt.config.Config, got {type(candidate).__name__}")
    target = f"apt_{baseline.optimizer}"
    if target not in OPTIMIZERS:
        raise ValueError(f"baseline optimizer {baseline.optimizer!r} has no APT variant; APT optimizers: "
                         f"{[o for o in OPTIMIZERS if o.startswith('apt_')]}")
    changed = [f.name for f in dataclasses.fields(Config)
               if f.name not in _DESCRIPTIVE_FIELDS and getattr(candidate, f.name) != getattr(baseline, f.name)]
    if not changed:
        return Verdict(exercise, WRONG, "apt_config is identical to the baseline: change its optimizer")
    if candidate.optimizer != target:
        return Verdict(exercise, WRONG, f"optimizer={candidate.optimizer!r}: the APT version of the baseline's "
                                        f"{baseline.optimizer!r} is {target!r}")
    others = [name for name in changed if name != "optimizer"]
    if others:
        details = ", ".join(f"{name}: {getattr(baseline, name)!r} -> {getattr(candidate, name)!r}" for name in others)
        return Verdict(exercise, WRONG, f"apt_config also changes {details}. A comparison must change one thing "
                                        "only; use dataclasses.replace(baseline, optimizer=...)")
    return Verdict(exercise, CORRECT, f"the baseline with optimizer {target!r}, nothing else changed.")


def comparison_frame(records: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """Per run: the reported test accuracies (the protocol's selection rule), their mean, the median
    instant-gradient share and fidelity over recorded steps (if recorded)."""
    rows = []
    for label, record in records.items():
        metrics = record["final"]["test_metrics"]
        row: dict[str, Any] = {"run": label, **metrics, "mean accuracy": sum(metrics.values()) / len(metrics)}
        diagnostics = record.get("diagnostics") or {}
        if diagnostics.get("instant_gradient_share"):
            row["median share"] = float(pd.Series(diagnostics["instant_gradient_share"]).median())
            row["median fidelity"] = float(pd.Series(diagnostics["update_instant_cosine"]).median())
        rows.append(row)
    return pd.DataFrame(rows).set_index("run")



# ----- for the instructor ------------------------------------------------------------------------------------------
def write_learner_copy(source: str | Path, target: str | Path) -> int:
    """Write the chapter as a notebook without its solutions, for participants; returns the cells removed.

    source: the jupytext ``.py`` chapter; target: an ``.ipynb`` path. Removed: code cells tagged ``solution`` and
    the markdown cell that opens each solution (``solution-start``: it holds the worked explanation); the
    ``solution-end`` fence that opens the following markdown cell is cut from it, the rest of that cell is kept.
    """
    import jupytext
    import nbformat

    notebook = jupytext.read(source)
    kept, removed = [], 0
    for cell in notebook.cells:
        text = cell.source.lstrip()
        if "solution" in cell.metadata.get("tags", []) or text.startswith("```{solution-start}"):
            removed += 1
            continue
        if text.startswith("```{solution-end}"):
            rest = text.split("\n", 2)[2] if text.count("\n") >= 2 else ""
            if not rest.strip():
                removed += 1
                continue
            cell.source = rest
        kept.append(cell)
    if removed == 0:
        raise ValueError(f"{source}: no solution cells found (tag 'solution' or a solution-start directive)")
    notebook.cells = kept
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, str(target))
    return removed
