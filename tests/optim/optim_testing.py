"""Small models with the layer types of the benchmark models, and a deterministic training loop.

ConvMTL mirrors the CelebA CNN (conv-BN-ReLU-pool blocks, a Linear+BN layer, one Linear(·,1) head per task);
GraphLikeMTL mirrors the QM9 MPNN's parameter kinds (input Linear, an edge network whose last layer is a
tall matrix, a GRU with 2-D weight_ih / weight_hh, a readout Linear, scalar heads). Both are tiny.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import Tensor, nn

N_TASKS = 3


class _TrunkAndHeads(nn.Module):
    """``self.shared`` (first layer at index 0) followed by one scalar head per task."""

    shared: nn.Sequential
    heads: nn.ModuleList

    def forward(self, x: Tensor) -> list[Tensor]:
        features = self.shared(x)
        return [head(features).squeeze(-1) for head in self.heads]

    @staticmethod
    def muon_excluded() -> set[str]:
        return {"shared.0.weight"} | {f"heads.{k}.weight" for k in range(N_TASKS)}


class ConvMTL(_TrunkAndHeads):
    def __init__(self) -> None:
        super().__init__()
        self.shared = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
            nn.Flatten(), nn.Linear(16, 24), nn.BatchNorm1d(24), nn.ReLU())
        self.heads = nn.ModuleList(nn.Linear(24, 1) for _ in range(N_TASKS))

    @staticmethod
    def batch(generator: torch.Generator) -> tuple[Tensor, Tensor]:
        return torch.randn(6, 3, 8, 8, generator=generator), torch.randn(6, N_TASKS, generator=generator)


class GraphLikeMTL(nn.Module):
    def __init__(self, dim: int = 8) -> None:
        super().__init__()
        self.dim = dim
        self.lin0 = nn.Linear(11, dim)
        self.edge_net = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, dim * dim))
        self.gru = nn.GRU(dim, dim)
        self.lin1 = nn.Linear(dim, dim)
        self.heads = nn.ModuleList(nn.Linear(dim, 1) for _ in range(N_TASKS))

    def forward(self, inputs: tuple[Tensor, Tensor]) -> list[Tensor]:
        nodes, edges = inputs
        hidden = torch.relu(self.lin0(nodes))
        weights = self.edge_net(edges).view(-1, self.dim, self.dim)
        message = torch.relu(torch.bmm(weights, hidden.unsqueeze(-1)).squeeze(-1))
        hidden = self.gru(message.unsqueeze(0), hidden.unsqueeze(0))[0].squeeze(0)
        features = torch.relu(self.lin1(hidden))
        return [head(features).squeeze(-1) for head in self.heads]

    @staticmethod
    def muon_excluded() -> set[str]:
        return {"lin0.weight"} | {f"heads.{k}.weight" for k in range(N_TASKS)}

    @staticmethod
    def batch(generator: torch.Generator) -> tuple[tuple[Tensor, Tensor], Tensor]:
        return ((torch.randn(7, 11, generator=generator), torch.randn(7, 5, generator=generator)),
                torch.randn(7, N_TASKS, generator=generator))


class MLP(_TrunkAndHeads):
    """Only Linear layers: every hidden weight is 2-D, so torch.optim.Muon can take them."""

    def __init__(self) -> None:
        super().__init__()
        self.shared = nn.Sequential(nn.Linear(6, 12), nn.Tanh(), nn.Linear(12, 20), nn.Tanh(),
                                    nn.Linear(20, 9), nn.Tanh())
        self.heads = nn.ModuleList(nn.Linear(9, 1) for _ in range(N_TASKS))

    @staticmethod
    def batch(generator: torch.Generator) -> tuple[Tensor, Tensor]:
        return torch.randn(10, 6, generator=generator), torch.randn(10, N_TASKS, generator=generator)


MODELS: dict[str, type[nn.Module]] = {"conv": ConvMTL, "graph": GraphLikeMTL, "mlp": MLP}


def build(kind: str, seed: int = 0) -> nn.Module:
    """A model of ``kind`` with initial weights from ``seed``."""
    torch.manual_seed(seed)
    return MODELS[kind]()


def twin(model: nn.Module) -> nn.Module:
    """An independent copy with identical weights."""
    return copy.deepcopy(model)


def loss_and_backward(model: nn.Module, batch: tuple, task_weights: Tensor | None = None) -> None:
    """.grad = ∇ Σ_k w_k MSE_k (equal weights by default): an aggregated gradient like apt.mtl writes."""
    inputs, targets = batch
    outputs = model(inputs)
    weights = torch.ones(len(outputs)) if task_weights is None else task_weights
    loss = sum(w * nn.functional.mse_loss(out, targets[:, k]) for k, (w, out) in enumerate(zip(weights, outputs)))
    loss.backward()


def train(model: nn.Module, optimizer: torch.optim.Optimizer, steps: int, seed: int = 1,
          after_step: Callable[[int], None] | None = None) -> list[list[Tensor]]:
    """``steps`` deterministic steps; returns the parameters after each step (detached copies)."""
    generator = torch.Generator().manual_seed(seed)
    history = []
    for step in range(steps):
        batch = MODELS[_kind(model)].batch(generator)
        optimizer.zero_grad()
        loss_and_backward(model, batch)
        optimizer.step()
        if after_step is not None:
            after_step(step)
        history.append([p.detach().clone() for p in model.parameters()])
    return history


def _kind(model: nn.Module) -> str:
    return next(name for name, cls in MODELS.items() if isinstance(model, cls))


def max_difference(first: list[list[Tensor]], second: list[list[Tensor]]) -> float:
    """Largest absolute difference between two parameter histories."""
    return max(float((a - b).abs().max()) for step_a, step_b in zip(first, second) for a, b in zip(step_a, step_b))
