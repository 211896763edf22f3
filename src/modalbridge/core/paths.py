"""Where modalbridge keeps caches (embedded worlds, weights) and runs."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """``$MODALBRIDGE_HOME`` or ``~/.cache/modalbridge``."""
    return Path(os.environ.get("MODALBRIDGE_HOME", Path.home() / ".cache" / "modalbridge")).expanduser()


def worlds_dir() -> Path:
    return home() / "worlds"


def weights_dir() -> Path:
    return home() / "weights"


def runs_dir() -> Path:
    """``$MODALBRIDGE_RUNS`` or ``./runs``."""
    return Path(os.environ.get("MODALBRIDGE_RUNS", "runs"))
