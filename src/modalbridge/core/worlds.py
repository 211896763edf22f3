"""Embedded worlds and the ``world://<name>/<subdir>`` URI used in configs.

A config may say ``root: world://kitchen/ek100``: the world ``kitchen`` is generated on first use
into ``$MODALBRIDGE_HOME/worlds`` (seeded, seconds) and the URI resolves to its ``ek100`` folder.
Worlds are declared by the task plugins (``TaskPlugin.worlds``); :func:`register_world` adds one at
run time.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

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
