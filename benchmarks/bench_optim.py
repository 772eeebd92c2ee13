"""Optimizer step time as ratios against torch's own optimizers, measured in one run, warm.

    PYTHONPATH=. python benchmarks/bench_optim.py [--rounds 7] [--steps 5] [--models qm9 celeba] [--threads 2]
        [--device cuda]

On a GPU (``--device``), parameters and gradients live there and each timed block of steps is enclosed in
``torch.cuda.synchronize()`` calls (kernels run asynchronously).

Parameter sets: the names and shapes of the benchmarks' real models (``build_model()`` of apt.benchmarks.qm9,
the lineage MPNN, and apt.benchmarks.celeba, the 9-layer CNN); Muon excludes what ``muon_excluded_names()``
says (input layers and heads).
Only the step is timed (gradients are fixed random tensors), so the ratios isolate optimizer cost.

Ratios (median over rounds of the per-step time; each round runs every configuration once, interleaved):
  apt_adam / torch Adam(foreach=True)           APT-Adam with adaptive β (cosines, per-tensor β, exact bias
                                                correction) against torch's fastest CPU Adam
  apt_adam[β fixed] / torch Adam(foreach=True)  our kernel alone (no cosines)
  adam (make_optimizer) / torch Adam(foreach)   our shell: finite-gradient check (+ torch's default Adam path)
  muon (ours) / torch Muon + torch AdamW        torch.optim.Muon takes 2-D weights only: conv weights are given
                                                to it as [out, in·9] matrices (the same maths)
  apt_muon / muon (ours)                        adaptive β + pre_mix preservation (default)
  X diagnostics on / off                        cost of step_diagnostics (spectra every step)
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from apt.optim import make_optimizer, muon_param_groups
from report import parse_device, save_measurements

Shape = tuple[int, ...]


def model_shapes(benchmark: str) -> tuple[list[tuple[str, Shape]], set[str]]:
    """(name, shape) of every parameter of the benchmark's real model, and the names Muon must not take."""
    from apt.benchmarks import get_benchmark

    model = get_benchmark(benchmark).build_model()
    return [(name, tuple(p.shape)) for name, p in model.named_parameters()], model.muon_excluded_names()


PARAMETER_SETS: tuple[str, ...] = ("qm9", "celeba")


def make_parameters(shapes: list[tuple[str, Shape]], seed: int = 0, as_matrices: bool = False,
                    excluded: set[str] = frozenset(), device: torch.device | None = None,
                    ) -> list[tuple[str, nn.Parameter]]:
    """Named parameters with fixed random values and gradients (on ``device``, default CPU). ``as_matrices``:
    Muon-bound ≥3-D weights are created as their [out, −1] matrix (for torch.optim.Muon, which takes 2-D weights
    only)."""
    generator = torch.Generator().manual_seed(seed)
    named = []
    for name, shape in shapes:
        if as_matrices and len(shape) > 2 and name not in excluded:
            shape = (shape[0], int(torch.tensor(shape[1:]).prod()))
        param = nn.Parameter((0.02 * torch.randn(shape, generator=generator)).to(device))
        param.grad = torch.randn(shape, generator=generator).to(device)
        named.append((name, param))
    return named


class TorchMuonWithAdamW:
    """torch.optim.Muon on the Muon group + torch.optim.AdamW(foreach=True) on the rest (the baseline)."""

    def __init__(self, named: list[tuple[str, nn.Parameter]], excluded: set[str], lr: float) -> None:
        groups = muon_param_groups(named, excluded=excluded)
        self.muon = torch.optim.Muon([p for _, p in groups[0]["params"]], lr=lr, weight_decay=0.0,
                                     adjust_lr_fn="match_rms_adamw")
        self.adamw = torch.optim.AdamW([p for _, p in groups[1]["params"]], lr=lr, foreach=True)

    def step(self) -> None:
        self.muon.step()
        self.adamw.step()


def configurations(shapes: list[tuple[str, Shape]], excluded: set[str],
                   device: torch.device | None = None) -> dict[str, Callable[[], object]]:
    """name -> builder of an object with .step() over a fresh parameter set on ``device``."""
    lr = 1e-3

    def params(**kwargs: object) -> list[tuple[str, nn.Parameter]]:
        return make_parameters(shapes, device=device, **kwargs)  # type: ignore[arg-type]

    def ours(name: str, **hp: object) -> Callable[[], object]:
        return lambda: make_optimizer(name, params(), lr=lr, muon_excluded=excluded, **hp)

    return {
        "torch Adam(foreach)": lambda: torch.optim.Adam([p for _, p in params()], lr=lr, foreach=True),
        "adam": ours("adam"),
        "adam +diag": ours("adam", diagnostics=True),
        "apt_adam": ours("apt_adam"),
        "apt_adam[β fixed]": ours("apt_adam", beta_min=0.9, beta_max=0.9),
        "apt_adam +diag": ours("apt_adam", diagnostics=True),
        "torch Muon+AdamW": lambda: TorchMuonWithAdamW(params(as_matrices=True, excluded=excluded), excluded, lr),
        "muon": ours("muon"),
        "muon +diag": ours("muon", diagnostics=True),
        "apt_muon": ours("apt_muon"),
        "apt_muon[none]": ours("apt_muon", preserve="none"),
        "apt_muon +diag": ours("apt_muon", diagnostics=True),
    }


RATIOS: list[tuple[str, str]] = [
    ("apt_adam", "torch Adam(foreach)"),
    ("apt_adam[β fixed]", "torch Adam(foreach)"),
    ("adam", "torch Adam(foreach)"),
    ("muon", "torch Muon+AdamW"),
    ("apt_muon", "muon"),
    ("apt_muon[none]", "muon"),
    ("adam +diag", "adam"),
    ("apt_adam +diag", "apt_adam"),
    ("muon +diag", "muon"),
    ("apt_muon +diag", "apt_muon"),
]


def time_steps(optimizer: object, steps: int, device: torch.device) -> float:
    """Mean seconds per ``optimizer.step()`` over ``steps`` steps (synchronised on a GPU)."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        optimizer.step()  # type: ignore[attr-defined]
    sync()
    return (time.perf_counter() - start) / steps


def measure(model: str, rounds: int, steps: int, warmup: int, device: torch.device) -> dict[str, float]:
    shapes, excluded = model_shapes(model)
    builders = configurations(shapes, excluded, device)
    optimizers = {name: build() for name, build in builders.items()}
    for optimizer in optimizers.values():
        time_steps(optimizer, warmup, device)
    samples: dict[str, list[float]] = {name: [] for name in optimizers}
    for _ in range(rounds):
        for name, optimizer in optimizers.items():
            samples[name].append(time_steps(optimizer, steps, device))
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(PARAMETER_SETS), choices=PARAMETER_SETS)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    parser.add_argument("--json", default=None, help="also save the measurements (with provenance) to this file")
    args = parser.parse_args()
    device = parse_device(parser, args.device)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, device {device}, {args.threads} threads, "
          f"median of {args.rounds} rounds × {args.steps} steps\n")
    results = {model: measure(model, args.rounds, args.steps, args.warmup, device) for model in args.models}
    for model, times in results.items():
        n_params = sum(int(torch.tensor(s).prod()) for _, s in model_shapes(model)[0])
        print(f"## {model} ({n_params:,} parameters): step time, ms")
        for name, seconds in times.items():
            print(f"  {name:<22} {1e3 * seconds:9.3f}")
        print()
    header = "| ratio | " + " | ".join(results) + " |"
    print(header)
    print("|" + "---|" * (len(results) + 1))
    for numerator, denominator in RATIOS:
        cells = " | ".join(f"{times[numerator] / times[denominator]:.2f}" for times in results.values())
        print(f"| {numerator} / {denominator} | {cells} |")
    if args.json:
        ratios = {f"{n} / {d}": {model: times[n] / times[d] for model, times in results.items()} for n, d in RATIOS}
        save_measurements(args.json, {"threads": args.threads, "rounds": args.rounds, "steps": args.steps,
                                      "device": str(device), "median_seconds": results, "ratios": ratios},
                          device=device)


if __name__ == "__main__":
    main()
