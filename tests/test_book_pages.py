"""The book's pages lead with results: a long code cell of a chapter is collapsed behind a "show code" toggle.

Readers come for the measurements; the code that renders a table or a figure stays one click away (jupyter-book's
``hide-input`` tag). The workshop is the exception: its code is what participants type and read.
"""

from __future__ import annotations

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
