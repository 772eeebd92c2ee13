"""Step time of training processes that run side by side, per torch thread count each one uses, as ratios.

    PYTHONPATH=. python benchmarks/bench_threads.py [--benchmarks qm9,multi_mnist] [--threads 1,2] [--steps 10]
        [--rounds 3] [--json PATH]

Two sweeps on one machine (the book's cpu records were computed as a QM9 grid beside a Multi-* grid) each start
with torch's default thread count, one per core, so together they run more OpenMP threads than there are cores.
For each thread count t of ``--threads``, this script starts one process per name of ``--benchmarks`` at once;
each uses t threads (``torch.set_num_threads``) and trains the benchmark's real model (``build_model()``) on a
random batch of the real input shapes, with the cpu profile's batch size: forward, the sum of the task losses, one
backward, an Adam step (LS's step). All start timing together after two warm-up steps, and each keeps stepping
after its ``--steps`` timed steps until every process has finished its own, so every timed step runs under the
same load. Reported per process p: the median step time s_p(t) (median over rounds of the per-round median) and

    ratio_p(t) = s_p(t) / s_p(t_1)    (t_1: the first value of --threads; > 1 means slower than with t_1 threads)

Rounds alternate the thread counts, so that load from other jobs on the machine hits them alike.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import queue
import statistics
import time
from typing import Any

import torch

from apt.toy_runs import available_cores
from bench_mtl import BENCHMARKS, build, task_losses
from report import save_measurements


def _csv(text: str) -> list[str]:
    return [part for part in text.split(",") if part]


def process_labels(benchmarks: list[str]) -> list[str]:
    """One label per process: the benchmark's name, numbered (``name#i``) where a name is given more than once."""
    return [name if benchmarks.count(name) == 1 else f"{name}#{i}" for i, name in enumerate(benchmarks)]


def default_batch_size(benchmark: str) -> int:
    """The cpu profile's batch size of ``benchmark``'s protocol."""
    from apt.benchmarks import get_benchmark

    return get_benchmark(benchmark).protocol_for("cpu").batch_size


def timed_worker(benchmark: str, batch_size: int, threads: int, steps: int, start: Any, finished: Any,
                 results: Any, slot: int) -> None:
    """Train ``benchmark``'s model with ``threads`` threads; put (slot, median seconds of the timed steps)."""
    torch.set_num_threads(threads)
    model, inputs, targets = build(benchmark, batch_size, torch.device("cpu"))
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        losses, _ = task_losses(model, inputs, targets)
        torch.stack(losses).sum().backward()
        optimizer.step()

    step()
    step()
    start.wait()
    seconds = []
    for _ in range(steps):
        begun = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - begun)
    results.put((slot, statistics.median(seconds)))
    with finished.get_lock():
        finished.value += 1
    while finished.value < start.parties:  # keep the load on until every process has timed its steps
        step()


def side_by_side(benchmarks: list[str], batch_sizes: list[int], threads: int, steps: int) -> list[float]:
    """Median step seconds of each process when all run at once with ``threads`` threads each."""
    context = mp.get_context("spawn")
    start, finished, results = context.Barrier(len(benchmarks)), context.Value("i", 0), context.Queue()
    processes = [context.Process(target=timed_worker, args=(name, batch, threads, steps, start, finished, results, i))
                 for i, (name, batch) in enumerate(zip(benchmarks, batch_sizes))]
    for process in processes:
        process.start()
    medians: dict[int, float] = {}
    try:
        while len(medians) < len(processes):
            failed = [i for i, process in enumerate(processes) if process.exitcode not in (None, 0)]
            if failed:  # the others would wait at the barrier for ever
                raise RuntimeError(f"the {benchmarks[failed[0]]} process exited with {processes[failed[0]].exitcode} "
                                   f"({threads} threads; its traceback is above)")
            try:
                slot, seconds = results.get(timeout=1)
            except queue.Empty:
                continue
            medians[slot] = seconds
    finally:
        for process in processes:
            process.join(timeout=60)
            if process.is_alive():
                process.kill()
    return [medians[i] for i in range(len(benchmarks))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--benchmarks", type=_csv, default=["qm9", "multi_mnist"],
                        help=f"one process per name, comma-separated, from {', '.join(BENCHMARKS)}")
    parser.add_argument("--threads", type=lambda s: [int(t) for t in _csv(s)], default=None,
                        help="comma-separated thread counts per process (default: 1 and the number of cores)")
    parser.add_argument("--batch-sizes", type=lambda s: [int(b) for b in _csv(s)], default=None,
                        help="one per process (default: each benchmark's cpu profile batch size)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", default=None, help="also save the measurements (with provenance) to this file")
    args = parser.parse_args()
    unknown = [name for name in args.benchmarks if name not in BENCHMARKS]
    if unknown or not args.benchmarks:
        parser.error(f"--benchmarks must name one or more of {', '.join(BENCHMARKS)}, got {args.benchmarks}")
    threads = args.threads or [1, available_cores()]
    if len(threads) < 2 or min(threads) < 1:
        parser.error(f"--threads needs two or more counts >= 1 to compare, got {threads}")
    batch_sizes = args.batch_sizes or [default_batch_size(name) for name in args.benchmarks]
    if len(batch_sizes) != len(args.benchmarks) or min(batch_sizes) < 1:
        parser.error(f"--batch-sizes needs one size >= 1 per process ({len(args.benchmarks)}), got {batch_sizes}")
    if args.steps < 1 or args.rounds < 1:
        parser.error(f"--steps and --rounds must be >= 1, got {args.steps} and {args.rounds}")

    labels = process_labels(args.benchmarks)
    per_round: dict[int, list[list[float]]] = {t: [] for t in threads}
    for _ in range(args.rounds):
        for t in threads:
            per_round[t].append(side_by_side(args.benchmarks, batch_sizes, t, args.steps))
    median = {str(t): {label: statistics.median(r[i] for r in rounds) for i, label in enumerate(labels)}
              for t, rounds in per_round.items()}
    reference = median[str(threads[0])]
    ratios = {t: {label: seconds / reference[label] for label, seconds in row.items()} for t, row in median.items()}
    print(f"{len(labels)} processes side by side ({', '.join(labels)}; batch {batch_sizes}), {args.steps} steps, "
          f"{args.rounds} rounds; step time per process, and its ratio to {threads[0]} thread(s) each")
    for t, row in median.items():
        print(f"  {t} thread(s) each: " + ", ".join(f"{label} {row[label]:.3f} s ({ratios[t][label]:.2f})"
                                                     for label in labels))
    if args.json:
        save_measurements(args.json, {"processes": labels, "batch_sizes": batch_sizes, "threads": threads,
                                      "cores": available_cores(), "steps": args.steps, "rounds": args.rounds,
                                      "median_step_seconds": median, "ratios": ratios})


if __name__ == "__main__":
    main()
