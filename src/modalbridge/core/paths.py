"""Where modalbridge keeps caches (embedded worlds, weights) and runs."""

from __future__ import annotations

import os
import re
from pathlib import Path


def home() -> Path:
    """``$MODALBRIDGE_HOME`` or ``~/.cache/modalbridge``."""
    return Path(os.environ.get("MODALBRIDGE_HOME", Path.home() / ".cache" / "modalbridge")).expanduser()


def worlds_dir() -> Path:
    return home() / "worlds"


def weights_dir() -> Path:
    return home() / "weights"


def natural_key(text: str) -> tuple:
    """Sort key comparing digit runs as numbers: ``"a/9.png" < "a/10.png"``."""
    return tuple(int(part) if i % 2 else part for i, part in enumerate(re.split(r"(\d+)", text)))


def first_existing(candidates: list[Path], what: str, *, root: Path | None = None) -> Path:
    """The first candidate that is a file; otherwise a DataError listing every place tried."""
    from modalbridge.core.errors import DataError

    for path in candidates:
        if path.is_file():
            return path
    raise DataError(f"{what} not found; looked for {', '.join(str(c) for c in candidates)}", path=root)


def runs_dir() -> Path:
    """``$MODALBRIDGE_RUNS`` or ``./runs``."""
    return Path(os.environ.get("MODALBRIDGE_RUNS", "runs"))
