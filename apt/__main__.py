"""Command line: ``python -m apt run|sweep|list`` — a thin layer over apt.experiment and apt.sweep.

Examples:
    python -m apt run --benchmark multi_mnist --method mgda --optimizer apt_muon --profile cpu --seed 0
    python -m apt sweep --benchmark qm9 --methods ls,famo --optimizers adam,apt_adam --seeds 0,1,2
    python -m apt sweep --benchmark qm9 --methods ls,famo --optimizers adam --profile full --device cuda \
        --backend ray --address head-node:6379 --results-dir /shared/results/full --runs-dir /shared/runs/full
    python -m apt list --profile cpu
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


PROCESS_PER_RUN_HELP = ("local only: train each run in a fresh child process, which gives its memory back when the "
                        "run ends (long CPU sweeps with QM9, README: Memory)")

def _key_values(pairs: list[str], flag: str) -> dict[str, Any]:
    """``["beta_min=0.5", "preserve=mix_before"]`` -> {"beta_min": 0.5, "preserve": "mix_before"} (JSON values)."""
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"{flag} expects key=value, got {pair!r}")
        try:
            values[key] = json.loads(raw)
        except json.JSONDecodeError:
            values[key] = raw
    return values


def _csv(text: str) -> list[str]:
    return [item for item in text.split(",") if item]


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default="cpu", help="full | cpu | smoke (default cpu)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--lr", type=float, default=None, help="default: the protocol's learning rate")
    parser.add_argument("--method-hp", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--optimizer-hp", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--override", nargs="*", default=[], metavar="FIELD=VALUE", help="protocol fields, e.g. epochs=2")
    parser.add_argument("--diagnostics", action="store_true")
    parser.add_argument("--diagnostics-every", type=int, default=1)
    parser.add_argument("--no-diagnostics-alignment", action="store_true",
                        help="with --diagnostics, skip the per-task alignment (and the task Jacobian it needs)")
    parser.add_argument("--rep-grad", action="store_true")
    parser.add_argument("--data-dir", default=None, help="default: $APT_DATA_DIR or ../shared/data")
    parser.add_argument("--results-dir", type=Path, default=None, help="default: results/<profile>")
    parser.add_argument("--no-progress", action="store_true")


def _common_fields(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "profile": args.profile,
        "device": args.device,
        "lr": args.lr,
        "method_hp": _key_values(args.method_hp, "--method-hp"),
        "optimizer_hp": _key_values(args.optimizer_hp, "--optimizer-hp"),
        "protocol_overrides": _key_values(args.override, "--override"),
        "diagnostics": args.diagnostics,
        "diagnostics_every": args.diagnostics_every,
        "diagnostics_alignment": not args.no_diagnostics_alignment,
        "rep_grad": args.rep_grad,
        "data_dir": args.data_dir,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m apt", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    run_parser = commands.add_parser("run", help="train and evaluate one config (or read its record)")
    run_parser.add_argument("--benchmark", required=True)
    run_parser.add_argument("--method", default="ls")
    run_parser.add_argument("--optimizer", default="adam")
    run_parser.add_argument("--seed", type=int, default=0)
    run_parser.add_argument("--stl-task", type=int, default=None, help="train the single-task baseline of task k")
    _add_common(run_parser)

    sweep_parser = commands.add_parser("sweep", help="a grid of methods × optimizers × seeds (+ STL baselines)")
    sweep_parser.add_argument("--benchmark", required=True)
    sweep_parser.add_argument("--methods", type=_csv, required=True)
    sweep_parser.add_argument("--optimizers", type=_csv, required=True)
    sweep_parser.add_argument("--seeds", type=lambda s: [int(x) for x in _csv(s)], default=[0])
    sweep_parser.add_argument("--no-stl", action="store_true", help="do not add the single-task baselines")
    sweep_parser.add_argument("--backend", choices=["local", "ray"], default="local",
                              help="local: one run after another in this process (default); ray: one Ray task "
                                   "per run on a Ray cluster (retried and resumed if its worker dies)")
    sweep_parser.add_argument("--address", default=None, metavar="HOST:PORT",
                              help="ray only: the head node of a cluster started with `ray start --head` (or "
                                   "'auto', or ray://HOST:PORT). Default: $RAY_ADDRESS, else a cluster started on "
                                   "this machine, else a local Ray instance started for this sweep only")
    sweep_parser.add_argument("--runs-dir", type=Path, default=None,
                              help="checkpoints (default: $APT_RUNS_DIR/<profile> or runs/<profile>); with "
                                   "--backend ray, it and --results-dir must be on a filesystem every node shares")
    sweep_parser.add_argument("--process-per-run", action="store_true", help=PROCESS_PER_RUN_HELP)
    _add_common(sweep_parser)

    grid_parser = commands.add_parser(
        "grid", help="train the missing runs of the book's grids and ablations (apt.grids) at a profile")
    grid_parser.add_argument("--profile", default="cpu", help="full | cpu | smoke (default cpu)")
    grid_parser.add_argument("--device", default="cpu")
    grid_parser.add_argument("--benchmarks", type=_csv, default=None,
                             help="default: every grid of the profile; the ablations and the SGD control come with "
                                  "their benchmark (apt.grids.ABLATION_BENCHMARK, SGD_CONTROL_BENCHMARK)")
    grid_parser.add_argument("--seeds", type=lambda s: [int(x) for x in _csv(s)], default=None)
    grid_parser.add_argument("--no-ablations", action="store_true", help="leave out chapter 5's APT ablations")
    grid_parser.add_argument("--no-grids", action="store_true", help="leave out the method × optimizer grids")
    grid_parser.add_argument("--no-controls", action="store_true",
                             help="leave out chapter 7's SGD step-scale control (learning rate scan per method)")
    grid_parser.add_argument("--dry-run", action="store_true", help="only say how many runs are missing")
    grid_parser.add_argument("--data-dir", default=None, help="default: $APT_DATA_DIR or ../shared/data")
    grid_parser.add_argument("--results-dir", type=Path, default=None, help="default: results/<profile>")
    grid_parser.add_argument("--backend", choices=["local", "ray"], default="local",
                             help="as for sweep: local (default) or one Ray task per run")
    grid_parser.add_argument("--address", default=None, metavar="HOST:PORT", help="ray only, as for sweep")
    grid_parser.add_argument("--runs-dir", type=Path, default=None, help="checkpoints, as for sweep")
    grid_parser.add_argument("--no-progress", action="store_true")
    grid_parser.add_argument("--process-per-run", action="store_true", help=PROCESS_PER_RUN_HELP)

    list_parser = commands.add_parser("list", help="the stored records, or the known names")
    list_parser.add_argument("what", nargs="?", default="records", choices=["records", "names"])
    list_parser.add_argument("--profile", default="cpu")
    list_parser.add_argument("--results-dir", type=Path, default=None)

    args = parser.parse_args(argv)
    if getattr(args, "process_per_run", False) and args.backend != "local":  # sweep and grid
        parser.error("--process-per-run is for --backend local")
    if args.command == "run":
        from apt.config import Config
        from apt.experiment import record_path, run

        config = Config(benchmark=args.benchmark, method=args.method, optimizer=args.optimizer, seed=args.seed,
                        stl_task=args.stl_task, **_common_fields(args))
        record = run(config, results_dir=args.results_dir, progress=not args.no_progress)
        print(json.dumps(record["final"], indent=1))
        print(f"record: {record_path(config, args.results_dir)}")
        return 0
    if args.command == "sweep":
        from apt.sweep import grid, run_configs

        if args.address is not None and args.backend != "ray":
            parser.error("--address is for --backend ray")
        configs = grid(args.benchmark, args.methods, args.optimizers, args.seeds, stl=not args.no_stl,
                       **_common_fields(args))
        report = run_configs(configs, backend=args.backend, address=args.address, results_dir=args.results_dir,
                             checkpoint_dir=args.runs_dir, progress=not args.no_progress,
                             process_per_run=args.process_per_run)
        print(report.summary())
        return 1 if report.failed else 0
    if args.command == "grid":
        return _grid(args)
    if args.what == "names":
        from apt.benchmarks import BENCHMARKS
        from apt.mtl import METHODS
        from apt.optim import OPTIMIZERS

        print("benchmarks:", ", ".join(BENCHMARKS))
        print("methods:   ", ", ".join(METHODS))
        print("optimizers:", ", ".join(OPTIMIZERS))
        return 0
    from apt.experiment import default_results_dir
    from apt.store import load_records, records_frame

    results_dir = args.results_dir or default_results_dir(args.profile)
    frame = records_frame(load_records(results_dir))
    print(f"{len(frame)} records in {results_dir}")
    if len(frame):
        print(frame.drop(columns=[c for c in frame.columns if c.startswith("test/")]).to_string(index=False))
    return 0


def _grid(args: argparse.Namespace) -> int:
    """Run what is missing of the book's runs; repeat while new runs appear (the fixed-β controls of chapter 5
    exist only once the runs they take their β from are stored)."""
    from apt.grids import book_configs, stored_status
    from apt.sweep import run_configs

    failed: dict[str, str] = {}
    while True:
        configs = book_configs(args.profile, benchmarks=args.benchmarks, seeds=args.seeds,
                               grids=not args.no_grids, ablations=not args.no_ablations,
                               controls=not args.no_controls, results_dir=args.results_dir,
                               device=args.device, data_dir=args.data_dir)
        status = {c.run_id: stored_status(c, args.results_dir) for c in configs}
        diverged = [c for c in configs if status[c.run_id] == "diverged"]
        missing = [c for c in configs if status[c.run_id] == "missing" and c.run_id not in failed]
        print(f"{len(configs)} runs in the {args.profile} book grid selected; {len(missing)} missing"
              + (f"; {len(diverged)} diverged earlier (their .diverged notes say why; delete one to retrain it)"
                 if diverged else ""))
        if args.dry_run or not missing:
            break
        report = run_configs(missing, backend=args.backend, address=args.address, results_dir=args.results_dir,
                             checkpoint_dir=args.runs_dir, progress=not args.no_progress,
                             process_per_run=args.process_per_run)
        print(report.summary())
        failed.update(report.failed)
    return 1 if failed else 0


if __name__ == "__main__":
    from apt.allocator import reexec_with_allocator_env

    reexec_with_allocator_env()
    sys.exit(main())
