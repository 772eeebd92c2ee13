"""Per-step cost of every MTL method, as ratios, on a real model and batch (warm; CPU, or a GPU with --device).

One step = zero_grad + forward + the method's backward (+ FAMO's extra forward and logit update), the way a
training loop runs it. Reported per method: median seconds and the ratio to
  (a) LS through apt.mtl.mtl_backward (one backward),
  (b) a plain loop of K backward passes collecting each task's shared gradient (what LibMTL's
      ``_compute_grad(mode='backward')`` does) — the cost floor of any parameter-level gradient method,
  (c) TorchJD 0.18's equivalent (autojac ``mtl_backward`` + ``jac_to_grad`` with its aggregator) where it
      exists and its optional dependencies are installed (not UPGrad: quadprog; not Nash-MTL: ECOS).
      TorchJD's autojac vmaps the backward; on the QM9 MPNN the GRU backward has no batching rule
      (torch warns "performance drop ... aten::mkldnn_rnn_layer_backward") and one step takes minutes:
      use --no-torchjd there.
Methods that support representation-level gradients are also timed with ``features`` ("<name>@features").
Methods are timed round-robin (one step each per round) so that load from other processes hits all alike; on
a GPU each step is timed between two ``torch.cuda.synchronize()`` calls (kernels run asynchronously).

Models: the benchmarks' own ``build_model()`` (apt.benchmarks.qm9 / celeba / multi_mnist). Inputs are random (shapes of
the real data: QM9-like complete graphs of 18 atoms; 64×64 images; 36×36 canvases); losses are per-task MSE, or
cross-entropy on random labels for Multi-MNIST's classifiers (the cost is what matters here).

    python benchmarks/bench_mtl.py --benchmark qm9 --batch-size 32 --rounds 3
    python benchmarks/bench_mtl.py --benchmark celeba --batch-size 16 --rounds 3
    python benchmarks/bench_mtl.py --benchmark celeba --batch-size 256 --rounds 5 --device cuda
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from apt.benchmarks.base import MTLModel
from apt.mtl import METHODS, SolverFailureWarning, make_method, method_info, mtl_backward
from report import parse_device, save_measurements  # benchmarks/report.py (the script's folder is on sys.path)



def _torchjd_aggregators() -> dict[str, Callable[[int], Any]]:
    from torchjd import aggregation as tja

    return {
        "mgda": lambda k: tja.MGDA(),
        "pcgrad": lambda k: tja.PCGrad(),
        "graddrop": lambda k: tja.GradDrop(),
        "cagrad": lambda k: tja.CAGrad(c=0.4),
        "imtl_g": lambda k: tja.IMTLG(),
        "fairgrad": lambda k: tja.FairGrad(alpha=2.0),
    }


BENCHMARKS: tuple[str, ...] = ("qm9", "celeba", "multi_mnist")  # whose real model ``build`` knows


def random_molecules(n_graphs: int, n_atoms: int, generator: torch.Generator) -> Any:
    """A PyG batch of complete graphs with QM9's feature sizes (11 atom features, 5 edge features)."""
    from torch_geometric.data import Batch, Data

    index = torch.arange(n_atoms)
    src, dst = torch.meshgrid(index, index, indexing="ij")
    off_diagonal = src != dst
    edge_index = torch.stack([src[off_diagonal], dst[off_diagonal]])
    graphs = [Data(x=torch.randn(n_atoms, 11, generator=generator), edge_index=edge_index,
                   edge_attr=torch.randn(edge_index.shape[1], 5, generator=generator)) for _ in range(n_graphs)]
    return Batch.from_data_list(graphs)


def build(benchmark: str, batch_size: int, device: torch.device) -> tuple[MTLModel, Any, Tensor]:
    """The benchmark's real model (``build_model()``) with a random batch of the real input shapes, on ``device``.

    Targets are [B, K]: standard-normal regression targets (QM9, CelebA here) or class labels in
    ``range(N_CLASSES)`` for Multi-MNIST's two digit-classification tasks.
    """
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    if benchmark == "qm9":
        from apt.benchmarks.qm9 import QM9Benchmark

        model = QM9Benchmark().build_model()
        inputs = random_molecules(batch_size, 18, generator)
        targets = torch.randn(batch_size, len(model.heads), generator=generator)
    elif benchmark == "celeba":
        from apt.benchmarks.celeba import CelebABenchmark

        model = CelebABenchmark().build_model()
        inputs = torch.randn(batch_size, 3, 64, 64, generator=generator)
        targets = torch.randn(batch_size, len(model.heads), generator=generator)
    else:
        from apt.benchmarks.multi_mnist import CANVAS_SIZE, N_CLASSES, MultiMNISTBenchmark

        model = MultiMNISTBenchmark().build_model()
        inputs = torch.randn(batch_size, 1, CANVAS_SIZE, CANVAS_SIZE, generator=generator)
        targets = torch.randint(N_CLASSES, (batch_size, len(model.heads)), generator=generator)
    return model.to(device), inputs.to(device), targets.to(device)


def task_losses(model: MTLModel, inputs: Any, targets: Tensor) -> tuple[list[Tensor], Tensor]:
    """K scalar losses (a list: TorchJD differentiates each one separately) and the shared features: per-task MSE,
    or cross-entropy where the targets are class labels (integer [B, K])."""
    features = model.shared_forward(inputs)
    outputs = model.heads_forward(features)
    if not targets.is_floating_point():
        return [F.cross_entropy(out, targets[:, k]) for k, out in enumerate(outputs)], features
    return [F.mse_loss(out.reshape(-1), targets[:, k]) for k, out in enumerate(outputs)], features


def make_steps(model: MTLModel, inputs: Any, targets: Tensor, names: list[str], with_torchjd: bool
               ) -> dict[str, Callable[[], None]]:
    shared, heads = model.shared_parameters(), model.task_parameters()
    n_tasks = len(heads)
    steps: dict[str, Callable[[], None]] = {}

    def apt_step(name: str, use_features: bool) -> Callable[[], None]:
        method = make_method(name, n_tasks)

        def step() -> None:
            model.zero_grad(set_to_none=True)
            losses, features = task_losses(model, inputs, targets)
            mtl_backward(losses, shared, method, task_params=heads, features=features if use_features else None)
            if method.requires_after_step:
                with torch.no_grad():
                    method.after_step(torch.stack(task_losses(model, inputs, targets)[0]))
        return step

    for name in names:
        steps[name] = apt_step(name, False)
        if method_info(name).supports_features:
            steps[f"{name}@features"] = apt_step(name, True)

    def plain_loop() -> None:
        model.zero_grad(set_to_none=True)
        losses, _ = task_losses(model, inputs, targets)
        rows = []
        for k in range(n_tasks):
            losses[k].backward(retain_graph=k < n_tasks - 1)
            rows.append(torch.cat([p.grad.flatten() for p in shared]))
            for p in shared:
                p.grad = None
        torch.stack(rows)
    steps["loop_K_backward"] = plain_loop

    if with_torchjd:
        from torchjd.autojac import jac_to_grad
        from torchjd.autojac import mtl_backward as torchjd_mtl_backward

        for name, factory in _torchjd_aggregators().items():
            if name not in names:
                continue
            aggregator = factory(n_tasks)

            def torchjd_step(aggregator: Any = aggregator) -> None:
                model.zero_grad(set_to_none=True)
                losses, features = task_losses(model, inputs, targets)
                torchjd_mtl_backward(losses, features=features, tasks_params=heads, shared_params=shared)
                jac_to_grad(shared, aggregator)
            steps[f"torchjd:{name}"] = torchjd_step
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--benchmark", choices=BENCHMARKS, required=True)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated apt.mtl method names")
    parser.add_argument("--no-torchjd", action="store_true")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    parser.add_argument("--json", default=None, help="also save the measurements (with provenance) to this file")
    args = parser.parse_args()
    device = parse_device(parser, args.device)
    names = [n for n in args.methods.split(",") if n]
    for name in names:
        method_info(name)
    warnings.simplefilter("ignore", SolverFailureWarning)

    model, inputs, targets = build(args.benchmark, args.batch_size, device)
    model.train()
    n_shared = sum(p.numel() for p in model.shared_parameters())
    print(f"{args.benchmark}: K={len(model.heads)}, shared params={n_shared:,}, batch={args.batch_size}, "
          f"device={device}, threads={torch.get_num_threads()}, rounds={args.rounds}")
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    steps = make_steps(model, inputs, targets, [*dict.fromkeys(["ls", *names])], not args.no_torchjd)
    for step in steps.values():  # warm-up
        step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.rounds):
        for name, step in steps.items():
            sync()
            started = time.perf_counter()
            step()
            sync()
            times[name].append(time.perf_counter() - started)
    median = {name: statistics.median(ts) for name, ts in times.items()}
    ratios = {}
    print(f"{'step':24s} {'median s':>9s} {'/LS':>7s} {'/loop':>7s} {'/torchjd':>9s}")
    for name, seconds in median.items():
        base = name.split("@")[0]
        torchjd = median.get(f"torchjd:{base}") if not name.startswith("torchjd:") and "@" not in name else None
        ratios[name] = {"ls": seconds / median["ls"], "loop": seconds / median["loop_K_backward"],
                        "torchjd": seconds / torchjd if torchjd else None}
        print(f"{name:24s} {seconds:9.3f} {ratios[name]['ls']:7.2f} {ratios[name]['loop']:7.2f} "
              f"{ratios[name]['torchjd'] or float('nan'):9.2f}")
    if args.json:
        save_measurements(args.json, {"benchmark": args.benchmark, "n_tasks": len(model.heads),
                                      "shared_parameters": n_shared, "batch_size": args.batch_size,
                                      "rounds": args.rounds, "threads": torch.get_num_threads(),
                                      "device": str(device), "median_seconds": median, "ratios": ratios},
                          device=device)


if __name__ == "__main__":
    main()
