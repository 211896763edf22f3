"""Embedded worlds and the ``world://<name>/<subdir>`` URI used in configs.

A config may say ``root: world://kitchen/ek100``: the world ``kitchen`` is generated on first use
into ``$MODALBRIDGE_HOME/worlds`` (seeded, seconds) and the URI resolves to its ``ek100`` folder.
Worlds are declared by the task plugins (``TaskPlugin.worlds``); :func:`register_world` adds one at
run time.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modalbridge.core.plugins import all_worlds, load_target

WORLD_URI = "world://"

_EXTRA: dict[str, str] = {}


def register_world(name: str, target: str) -> None:
    """Register a world builder given as ``"package.module:function"``."""
    _EXTRA[name] = target


def _worlds() -> dict[str, str]:
    return {**all_worlds(), **_EXTRA}


def list_worlds() -> list[str]:
    return sorted(_worlds())


def world_builder(name: str) -> Callable[..., Path]:
    worlds = _worlds()
    if name not in worlds:
        raise KeyError(f"unknown world {name!r}; known: {', '.join(sorted(worlds))}")
    return load_target(worlds[name])


def resolve_root(root: str | Path) -> Path:
    """Turn ``world://name/sub`` into a real folder (building the world if needed); paths pass through."""
    text = str(root)
    if not text.startswith(WORLD_URI):
        return Path(text).expanduser()
    name, _, sub = text[len(WORLD_URI):].partition("/")
    base = Path(world_builder(name)())
    return base / sub if sub else base


def build_world(root: Path, meta: dict[str, Any], write: Callable[[Path], None]) -> Path:
    """The world folder ``root``, built once: ``write(tmp)`` fills a temporary sibling, a ``.complete`` marker
    holding ``meta`` (seed, size, version …) is written last and the folder renamed into place, so an interrupted
    build leaves nothing behind and two processes building at once end with one complete copy. A folder whose
    marker holds other ``meta`` (another version or size) is rebuilt."""
    marker = root / ".complete"

    def complete() -> bool:
        return marker.is_file() and json.loads(marker.read_text()) == meta

    if complete():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    try:
        write(tmp)
        (tmp / ".complete").write_text(json.dumps(meta))
        if root.exists():
            if complete():  # another process finished first
                shutil.rmtree(tmp, ignore_errors=True)
                return root
            shutil.rmtree(root, ignore_errors=True)  # stale or from another version
        try:
            tmp.rename(root)
        except OSError:
            if not complete():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root
