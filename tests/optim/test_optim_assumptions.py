"""The assumptions register: complete, cross-referenced with the code, honest about the paper."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import apt.optim
from apt.optim.assumptions import ASSUMPTIONS, NOT_STATED, register_columns, register_table
from apt.optim.direction import PRESERVATION_RULES
from apt.optim.momentum import MOMENTUM_RULES

OPTIM_SOURCE = "\n".join(path.read_text() for path in Path(apt.optim.__file__).parent.glob("*.py")
                         if path.name != "assumptions.py")


def test_ids_are_unique_and_rows_complete():
    ids = [row.id for row in ASSUMPTIONS]
    assert len(ids) == len(set(ids))
    assert all(all(str(value).strip() for value in row) for row in register_table())
    assert register_columns() == ("id", "name", "equation", "why", "paper_says", "alternatives", "compared_in")


def test_every_rule_function_names_a_register_entry():
    ids = {row.id for row in ASSUMPTIONS}
    for rule in [*MOMENTUM_RULES.values(), *PRESERVATION_RULES.values()]:
        found = re.findall(r"[Rr]egister (?:entry )?([A-Z]\d)", inspect.getdoc(rule))
        assert found and set(found) <= ids, rule.__name__


def test_every_register_entry_is_cited_in_the_code():
    for row in ASSUMPTIONS:
        assert re.search(rf"\b{row.id}\b", OPTIM_SOURCE), f"register {row.id} is not referenced in apt/optim"


def test_nothing_is_called_the_papers_formula():
    for row, values in zip(ASSUMPTIONS, register_table()):
        text = " ".join(values).lower()
        assert "paper's formula" not in text and "the paper's equation" not in text
        assert row.paper_says == NOT_STATED or row.paper_says.startswith(("Abstract:", "Third-party summary"))
    assert "the paper's formula" not in OPTIM_SOURCE.replace("not the paper's formula", "")


def test_register_as_myst_list_table_has_every_entry_once_with_its_equation() -> None:
    from apt.optim.assumptions import register_myst

    text = register_myst()
    assert text.startswith("```{list-table}") and text.endswith("```")
    for a in ASSUMPTIONS:
        assert text.count(f"* - **{a.id}** ") == 1
        assert f"${' '.join(a.equation.split())}$" in text
    subset = register_myst(("A1", "D0"))
    assert "**A1**" in subset and "**D0**" in subset and "**A2**" not in subset
    with pytest.raises(ValueError, match=r"ids \['Z9'\] are not in the register"):
        register_myst(("A1", "Z9"))
