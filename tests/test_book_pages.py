"""The book's pages lead with results: a long code cell of a chapter is collapsed behind a "show code" toggle.

Readers come for the measurements; the code that renders a table or a figure stays one click away (jupyter-book's
``hide-input`` tag). The workshop is the exception: its code is what participants type and read.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import jupytext
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
LONG_CELL_LINES = 20  # source lines, trailing blank lines excluded
SHOWS_ITS_CODE = {"notebooks/tutorial_workshop"}


def _toc_files(entry: dict) -> list[str]:
    """The ``root`` and every ``file`` of a _toc.yml entry and its nested parts, chapters and sections."""
    files = [entry[key] for key in ("root", "file") if key in entry]
    for key in ("parts", "chapters", "sections"):
        files += [f for child in entry.get(key, []) for f in _toc_files(child)]
    return files


CHAPTERS = [f for f in _toc_files(yaml.safe_load((ROOT / "_toc.yml").read_text()))
            if (ROOT / f"{f}.py").exists() and f not in SHOWS_ITS_CODE]


def test_the_toc_lists_the_notebook_chapters() -> None:
    assert "notebooks/01_intro" in _toc_files(yaml.safe_load((ROOT / "_toc.yml").read_text()))
    assert len(CHAPTERS) >= 10


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_long_code_cells_are_collapsed(chapter: str) -> None:
    notebook = jupytext.read(ROOT / f"{chapter}.py")
    shown = []
    for index, cell in enumerate(notebook.cells):
        n_lines = len(cell.source.rstrip().splitlines())
        tags = set(cell.metadata.get("tags", []))
        if cell.cell_type == "code" and n_lines > LONG_CELL_LINES and not tags & {"hide-input", "remove-input"}:
            shown.append(f"cell {index} ({n_lines} lines): {cell.source.splitlines()[0]!r}")
    assert not shown, f"{chapter}: tag these code cells hide-input (`# %% tags=[\"hide-input\"]`): {shown}"


SMOKE_NOTEBOOKS = ROOT / "_build" / "smoke-notebooks"  # written by `make test` before pytest runs
GLUE_ROLE = re.compile(r"\{glue(?::[a-z]*)?\}`([^`:]+)")
GLUE_DIRECTIVE = re.compile(r"```\{glue(?::[a-z]*)?\}\s+([^\s`:]+)")


def glue_references(markdown: str) -> set[str]:
    """The glue keys a markdown text refers to, by role ({glue:text}`key:.2f`) or directive (```{glue:md} key)."""
    return set(GLUE_ROLE.findall(markdown)) | set(GLUE_DIRECTIVE.findall(markdown))


def test_glue_references_are_parsed_with_and_without_format() -> None:
    text = "a {glue:text}`x_1:.2f` b {glue:}`y` c {glue}`z`\n```{glue:md} table\n:format: myst\n```"
    assert glue_references(text) == {"x_1", "y", "z", "table"}


@pytest.mark.parametrize("chapter", [f for f in _toc_files(yaml.safe_load((ROOT / "_toc.yml").read_text()))
                                     if (ROOT / f"{f}.py").exists()])
def test_every_glue_key_a_chapter_refers_to_is_glued_when_it_runs(chapter: str) -> None:
    """jupyter-book -W fails on a missing key only when the book is built; this checks the smoke execution."""
    executed = SMOKE_NOTEBOOKS / f"{Path(chapter).name}.ipynb"
    if not executed.exists():
        pytest.skip(f"{executed} is written by `make test` (scripts/execute_notebooks.py --profile smoke) first")
    notebook = json.loads(executed.read_text())
    referenced = set().union(*(glue_references("".join(c["source"])) for c in notebook["cells"]
                               if c["cell_type"] == "markdown"))
    glued = {o["metadata"]["scrapbook"]["name"] for c in notebook["cells"] for o in c.get("outputs", [])
             if "scrapbook" in o.get("metadata", {})}
    assert referenced <= glued, f"{chapter}: referenced but never glued: {sorted(referenced - glued)}"
