"""The two dependency declarations (pyproject.toml for pip, environment.yml for conda) pin the same set."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _pyproject_pins() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = set(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        pins |= set(extra)
    return pins


def _environment_pins() -> set[str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_lists = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pip_lists) == 1, "environment.yml must have exactly one pip: section"
    return {p for p in pip_lists[0] if not p.startswith("-e")}


def test_every_dependency_is_pinned_exactly():
    unpinned = sorted(p for p in _pyproject_pins() if "==" not in p)
    assert not unpinned, f"pyproject.toml dependencies without an exact pin: {unpinned}"


def test_pyproject_and_environment_agree():
    pyproject, environment = _pyproject_pins(), _environment_pins()
    assert pyproject == environment, (
        f"only in pyproject.toml: {sorted(pyproject - environment)}; "
        f"only in environment.yml: {sorted(environment - pyproject)}"
    )


def test_environment_python_matches_requires_python():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert "python=3.11" in env["dependencies"] and ">=3.11,<3.12" == requires
