"""Wall time of the toy chapter's trajectories on one process per core, as a ratio against one process, in one run.

    PYTHONPATH=. python benchmarks/bench_toy.py [--steps 200] [--workers N] [--json PATH]

The runs are chapter 2's (``apt.toy_runs.chapter_runs``) with fewer steps. Serial and parallel alternate over
``--rounds`` rounds; the ratio is of the medians.
Process start-up (spawn, import of torch) is part of the parallel time, as it is in the chapter.
"""

from __future__ import annotations

import argparse
import statistics
import time

from apt.toy_runs import available_cores, chapter_runs, toy_trajectories
from report import save_measurements


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=available_cores())
    parser.add_argument("--json", default=None, help="also write the measurements here")
    args = parser.parse_args()
    if args.workers < 2:
        parser.error(f"--workers must be >= 2 to compare against one process, got {args.workers}")
    runs = chapter_runs(args.steps)
    seconds: dict[str, list[float]] = {"serial": [], "parallel": []}
    for _ in range(args.rounds):
        for name, workers in (("serial", 1), ("parallel", args.workers)):
            start = time.perf_counter()
            toy_trajectories(runs, workers=workers, progress=False)
            seconds[name].append(time.perf_counter() - start)
    median = {name: statistics.median(values) for name, values in seconds.items()}
    ratio = median["parallel"] / median["serial"]
    print(f"{len(runs)} trajectories of {args.steps} steps: serial {median['serial']:.1f} s, "
          f"{args.workers} processes {median['parallel']:.1f} s, ratio parallel / serial {ratio:.2f}")
    if args.json:
        save_measurements(args.json, {"runs": len(runs), "steps": args.steps, "workers": args.workers,
                                      "median_seconds": median, "ratio_parallel_over_serial": ratio})


if __name__ == "__main__":
    main()
