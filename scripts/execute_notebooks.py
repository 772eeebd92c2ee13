"""Execute the book's notebooks with papermill, from their jupytext sources.

Each chapter's only source is ``notebooks/<name>.py`` (jupytext percent format). This script reads the
chapter list from ``_toc.yml``, converts each source to a notebook in memory (never writing a paired
``.ipynb`` that could flow back into the source), and executes it with papermill, injecting the
parameters ``profile``, ``device``, ``seed``, ``data_dir`` and ``results_dir``.

    python scripts/execute_notebooks.py --profile cpu                 # beside the sources, for the book
    python scripts/execute_notebooks.py --profile smoke --out DIR     # for nbval in the tests
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jupytext
import papermill
import yaml

ROOT = Path(__file__).resolve().parent.parent


def toc_notebooks(toc_path: Path = ROOT / "_toc.yml") -> list[Path]:
    """The ``notebooks/*.py`` sources named in the table of contents, in reading order, the root page last."""
    toc = yaml.safe_load(toc_path.read_text())
    names: list[str] = []

    def visit(node: object) -> None:
        if isinstance(node, dict):
            for key in ("root", "file"):
                if isinstance(node.get(key), str):
                    names.append(node[key])
            for value in node.values():
                if isinstance(value, list):
                    for item in value:
                        visit(item)

    visit(toc)
    # The root page quotes results the chapters compute: execute it last.
    names = names[1:] + names[:1] if names and names[0] == toc.get("root") else names
    sources = [ROOT / f"{name}.py" for name in names if name.startswith("notebooks/")]
    missing = [str(s) for s in sources if not s.is_file()]
    if missing:
        raise FileNotFoundError(f"_toc.yml names notebooks without a jupytext source: {missing}")
    return sources


def execute(source: Path, out_dir: Path, parameters: dict, timeout: int | None) -> Path:
    """Execute one jupytext source with papermill; returns the executed ``.ipynb`` path."""
    notebook = jupytext.read(source)
    for cell in notebook.cells:
        tags = cell.metadata.setdefault("tags", [])
        if "parameters" in tags and "remove-cell" not in tags:
            # The book shows the cell papermill injects (the values actually used), not the defaults.
            tags.append("remove-cell")
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    output = out_dir / f"{source.stem}.ipynb"
    papermill.execute_notebook(
        notebook,
        str(output),
        parameters=parameters,
        kernel_name="python3",
        cwd=str(source.parent),
        execution_timeout=timeout,
        progress_bar=False,
        log_output=False,
    )
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="cpu", choices=["smoke", "cpu", "full"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=None, help="default: $APT_DATA_DIR or ../shared/data")
    parser.add_argument("--results-dir", default=None, help="default: results/<profile>")
    parser.add_argument("--out", type=Path, default=ROOT / "notebooks", help="where executed notebooks go")
    parser.add_argument("--timeout", type=int, default=None, help="per-cell timeout in seconds (default none)")
    parser.add_argument("notebooks", nargs="*", help="only these sources (default: every one in _toc.yml)")
    args = parser.parse_args(argv)

    sources = [Path(n).resolve() for n in args.notebooks] or toc_notebooks()
    args.out.mkdir(parents=True, exist_ok=True)
    # Absolute paths: the kernel runs in the notebook's folder, where a relative path would mean something else.
    results_dir = str(Path(args.results_dir).resolve()) if args.results_dir else str(ROOT / "results" / args.profile)
    parameters = {
        "profile": args.profile,
        "device": args.device,
        "seed": args.seed,
        "data_dir": str(Path(args.data_dir).resolve()) if args.data_dir else None,
        "results_dir": results_dir,
    }
    for source in sources:
        started = time.perf_counter()
        print(f"executing {source.relative_to(ROOT)} (profile {args.profile}) ...", flush=True)
        output = execute(source, args.out.resolve(), parameters, args.timeout)
        print(f"  -> {output} in {time.perf_counter() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    from apt.allocator import reexec_with_allocator_env

    reexec_with_allocator_env()  # the kernels inherit it: QM9's chapters train faster (apt/allocator.py)
    sys.exit(main())
