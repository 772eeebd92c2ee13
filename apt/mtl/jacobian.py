"""Per-task gradients J [K, P] of the shared parameters (or features), kept as per-tensor blocks.

J is never concatenated unless asked for: it is held as a list of blocks, block i = [K, *shape_i], the
task gradients of the i-th input tensor. The Gramian G = J Jᵀ = Σ_i J_i J_iᵀ and the direction
d = Jᵀ w (block i: Σ_k w_k J_i[k]) are computed block by block, which avoids a copy of J.

Two ways to compute the rows:
  ``loop``     K calls of ``torch.autograd.grad(ℓ_k, inputs, retain_graph=True)``; the autograd engine
               only visits the part of the graph between ℓ_k and the inputs. The default: no extra memory.
  ``batched``  ``torch.autograd.grad(ℓ, inputs, I_K, is_grads_batched=True)`` (vmap over the backward),
               ``chunk_size`` tasks at a time.
Measured on this 2-core CPU (shared with other jobs, so ±20%): CelebA CNN, K = 40, batch 32: loop 63 s,
batched in chunks of 8: 71 s (+1.2 GB), all 40 at once: 58 s (+5 GB); QM9 MPNN, K = 11, batch 120: loop 20 s,
batched one task at a time 117 s (the message-passing scatter and GRU run slowly under vmap), all 11 at once
ran out of 24 GB (the per-edge 64×64 weight gradients). Batching does not pay on CPU; it may on a GPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

JACOBIAN_MODES: tuple[str, ...] = ("loop", "batched")


@dataclass
class TaskJacobian:
    """J [K, P] as blocks; blocks[i]: [K, *inputs[i].shape]."""

    blocks: list[Tensor]

    @property
    def n_tasks(self) -> int:
        return self.blocks[0].shape[0]

    def gramian(self) -> Tensor:
        """G = J Jᵀ [K, K] in float64 (each block's product in its own dtype, summed in float64)."""
        total = torch.zeros(self.n_tasks, self.n_tasks, dtype=torch.float64, device=self.blocks[0].device)
        for block in self.blocks:
            flat = block.reshape(block.shape[0], -1)
            total += (flat @ flat.T).to(torch.float64)
        return total

    def combine(self, weights: Tensor) -> list[Tensor]:
        """Per-block Jᵀ w: block i -> Σ_k w_k blocks[i][k], shape [*shape_i]."""
        out = []
        for block in self.blocks:
            w = weights.to(dtype=block.dtype, device=block.device)
            out.append(torch.tensordot(w, block, dims=1))
        return out

    def matrix(self) -> Tensor:
        """The concatenated J [K, P] (a copy)."""
        return torch.cat([b.reshape(b.shape[0], -1) for b in self.blocks], dim=1)

    def project(self, direction_blocks: Sequence[Tensor]) -> Tensor:
        """J d [K] for a direction given block-wise (float64)."""
        total = torch.zeros(self.n_tasks, dtype=torch.float64, device=self.blocks[0].device)
        for block, d in zip(self.blocks, direction_blocks, strict=True):
            total += (block.reshape(block.shape[0], -1) @ d.reshape(-1)).to(torch.float64)
        return total


def task_jacobian(losses: Tensor, inputs: Sequence[Tensor], *, mode: str = "loop",
                  chunk_size: int | None = None, retain_graph: bool = True) -> TaskJacobian:
    """Rows ∂ℓ_k/∂inputs for the K losses (a [K] tensor). Unused inputs get zero rows.

    retain_graph=False frees the graph after the last row (nothing else may back-propagate through it).
    """
    if mode not in JACOBIAN_MODES:
        raise ValueError(f"jacobian mode {mode!r}: allowed {JACOBIAN_MODES}")
    n_tasks = losses.shape[0]
    inputs = list(inputs)
    if mode == "loop":
        rows: list[tuple[Tensor, ...]] = []
        for k in range(n_tasks):
            keep = retain_graph or k < n_tasks - 1
            rows.append(torch.autograd.grad(losses[k], inputs, retain_graph=keep, allow_unused=True,
                                            materialize_grads=True))
        return TaskJacobian([torch.stack([row[i] for row in rows]) for i in range(len(inputs))])
    chunk = n_tasks if chunk_size is None else chunk_size
    if chunk < 1:
        raise ValueError(f"chunk_size={chunk_size!r}: must be None (all tasks) or an integer >= 1")
    identity = torch.eye(n_tasks, dtype=losses.dtype, device=losses.device)
    pieces: list[tuple[Tensor, ...]] = []
    for start in range(0, n_tasks, chunk):
        keep = retain_graph or start + chunk < n_tasks
        pieces.append(torch.autograd.grad(losses, inputs, identity[start:start + chunk], retain_graph=keep,
                                          is_grads_batched=True, allow_unused=True, materialize_grads=True))
    return TaskJacobian([torch.cat([piece[i] for piece in pieces]) for i in range(len(inputs))])


def cosines_from_gramian(gramian: Tensor, weights: Tensor) -> Tensor:
    """cos(d, g_k) for d = Jᵀ w, from G alone: (G w)_k / (√(wᵀ G w) · √G_kk); 0 where a norm is 0."""
    gw = gramian @ weights.to(gramian.dtype)
    return _safe_cosines(gw, (weights.to(gramian.dtype) @ gw).clamp_min(0).sqrt(), gramian.diagonal().clamp_min(0).sqrt())


def cosines_from_projection(projection: Tensor, direction_norm: Tensor, gramian: Tensor) -> Tensor:
    """cos(d, g_k) from J d [K], ‖d‖ and G's diagonal."""
    return _safe_cosines(projection, direction_norm, gramian.diagonal().clamp_min(0).sqrt())


def _safe_cosines(inner: Tensor, direction_norm: Tensor, row_norms: Tensor) -> Tensor:
    denominator = direction_norm * row_norms
    return torch.where(denominator > 0, inner / torch.where(denominator > 0, denominator, 1), torch.zeros_like(inner))
