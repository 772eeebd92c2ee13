"""APT direction preservation for Muon: keep the instant gradient's direction in the orthogonalized update.

Muon orthogonalizes the momentum matrix U_t (or its Nesterov look-ahead) and so, when β is large, the
instant aggregated gradient G_t (what the MTL method produced) barely shapes the update. The paper
announces "a light direction preservation method to facilitate Muon's orthogonalization" but its formula
is not available: every rule below is an *assumption* with a register id (``apt.optim.assumptions``).

Notation: U: [A, B] the matrix Muon would orthogonalize, G: [A, B] the instant gradient (same view),
NS(·) the orthogonalization, γ ∈ [0, 1] the strength, X̄ = X / ‖X‖_F (0 if X = 0).
Every rule with γ = 0 gives NS(U) (``none`` exactly; the others up to the rounding of the normalization).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

Orthogonalize = Callable[[Tensor], Tensor]


def _unit(matrix: Tensor) -> Tensor:
    """X / ‖X‖_F, or X itself (zero) when ‖X‖_F = 0."""
    norm = matrix.norm()
    return matrix / norm if norm > 0 else matrix


def no_preservation(momentum: Tensor, instant: Tensor, orthogonalize: Orthogonalize, strength: float) -> Tensor:
    """Register D0: plain Muon, O = NS(U). ``instant`` and ``strength`` are ignored. Shapes [A, B] -> [A, B]."""
    return orthogonalize(momentum)


def pre_mix_preservation(momentum: Tensor, instant: Tensor, orthogonalize: Orthogonalize,
                         strength: float) -> Tensor:
    """Register D1 (an assumption): mix the instant gradient in *before* orthogonalization.

    O = NS((1 − γ) Ū + γ Ḡ). Both terms have unit Frobenius norm, so γ is the instant gradient's share of
    the matrix whose singular directions NS keeps, whatever the momentum's magnitude. Shapes [A, B].
    """
    mixed = (1.0 - strength) * _unit(momentum.float()) + strength * _unit(instant.float())
    return orthogonalize(mixed)


def post_mix_preservation(momentum: Tensor, instant: Tensor, orthogonalize: Orthogonalize,
                          strength: float) -> Tensor:
    """Register D2 (an assumption): restore the raw instant direction *after* orthogonalization.

    O₀ = NS(U),  D = (1 − γ) Ō₀ + γ Ḡ,  O = ‖O₀‖_F · D̄. The Frobenius norm of the update is kept, so Muon's
    learning-rate scaling still applies; the γ part is *not* orthogonalized (it keeps G's spectrum). [A, B].
    """
    orthogonal = orthogonalize(momentum).float()
    direction = (1.0 - strength) * _unit(orthogonal) + strength * _unit(instant.float())
    return orthogonal.norm() * _unit(direction)


def dual_orthogonalization_preservation(momentum: Tensor, instant: Tensor, orthogonalize: Orthogonalize,
                                        strength: float) -> Tensor:
    """Register D3 (an assumption): restore the instant direction after orthogonalizing it separately.

    O = (1 − γ) NS(U) + γ NS(G). Both terms have singular values in the NS band, so γ weighs two
    orthogonalized directions of comparable size; costs a second Newton–Schulz per matrix. [A, B].
    """
    return (1.0 - strength) * orthogonalize(momentum).float() + strength * orthogonalize(instant).float()


PRESERVATION_RULES: dict[str, Callable[[Tensor, Tensor, Orthogonalize, float], Tensor]] = {
    "none": no_preservation,
    "pre_mix": pre_mix_preservation,
    "post_mix": post_mix_preservation,
    "dual_ns": dual_orthogonalization_preservation,
}


def validate_preservation(preserve: str, strength: float) -> None:
    """ValueError unless ``preserve`` is a known rule and 0 ≤ strength ≤ 1."""
    if preserve not in PRESERVATION_RULES:
        raise ValueError(f"preserve={preserve!r}: allowed {tuple(PRESERVATION_RULES)}")
    if not isinstance(strength, (int, float)) or not 0.0 <= strength <= 1.0:
        raise ValueError(f"preserve_strength={strength!r}: must be a number in [0, 1]")


def preserve_direction(preserve: str, momentum: Tensor, instant: Tensor, orthogonalize: Orthogonalize,
                       strength: float) -> Tensor:
    """Apply the named rule (``PRESERVATION_RULES``). momentum, instant: [A, B]. Returns the update [A, B]."""
    validate_preservation(preserve, strength)
    with torch.no_grad():
        return PRESERVATION_RULES[preserve](momentum, instant, orthogonalize, strength)
