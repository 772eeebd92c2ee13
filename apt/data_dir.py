"""Where real data is read from: ``APT_DATA_DIR``, else ``../shared/data`` beside the repository."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data"


class DataMissingError(FileNotFoundError):
    """A data file or folder that a benchmark needs is absent or unreadable.

    The message names the path, what was expected there, and where to get it.
    """


class CorruptDataError(ValueError):
    """A data file exists but does not hold what its format promises (the message names the file)."""


def data_dir(override: str | os.PathLike | None = None) -> Path:
    """The data root: ``override`` if given, else ``$APT_DATA_DIR``, else ``../shared/data``."""
    if override is not None:
        return Path(override).expanduser().resolve()
    env = os.environ.get("APT_DATA_DIR")
    if env:
        return Path(env).expanduser().resolve()
    return DEFAULT_DATA_DIR


def require_files(folder: Path, names: list[str], *, what: str, how_to_get: str) -> list[Path]:
    """Paths ``folder/name`` for each name, or a DataMissingError listing every missing one."""
    paths = [folder / n for n in names]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        listed = "\n  ".join(str(p) for p in missing)
        raise DataMissingError(
            f"{what}: missing file(s)\n  {listed}\nExpected in {folder}: {', '.join(names)}.\n{how_to_get}"
        )
    return paths


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """Where derived data (e.g. PyG's processed QM9) is written: ``override``, ``$APT_CACHE_DIR``,
    else ``~/.cache/apt-book``. Real data folders are read-only; nothing is ever written into them."""
    if override is not None:
        path = Path(override)
    else:
        path = Path(os.environ.get("APT_CACHE_DIR", Path.home() / ".cache" / "apt-book"))
    path = path.expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path
