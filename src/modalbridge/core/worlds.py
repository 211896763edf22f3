"""Registry of embedded worlds and the ``world://<name>/<subdir>`` URI used in configs.

A config may say ``root: world://kitchen/ek100``: the world ``kitchen`` is generated on first use
into ``$MODALBRIDGE_HOME/worlds`` (seeded, seconds) and the URI resolves to its ``ek100`` folder.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

WORLD_URI = "world://"

# world name -> "module:function" returning the world's root Path (generating it if needed)
_WORLDS: dict[str, str] = {
    "kitchen": "modalbridge.worlds.kitchen:kitchen_world",
    "kitchen-distill": "modalbridge.worlds.kitchen:distill_kitchen_world",
    "kitchen-layouts": "modalbridge.worlds.kitchen:layouts_kitchen_world",
    "action-genome": "modalbridge.worlds.action_genome:action_genome_world",
}


def register_world(name: str, target: str) -> None:
    """Register a world builder given as ``"package.module:function"``."""
    _WORLDS[name] = target


def list_worlds() -> list[str]:
    return sorted(_WORLDS)


def world_builder(name: str) -> Callable[..., Path]:
    if name not in _WORLDS:
        raise KeyError(f"unknown world {name!r}; known: {', '.join(list_worlds())}")
    module, func = _WORLDS[name].split(":")
    return getattr(importlib.import_module(module), func)


def resolve_root(root: str | Path) -> Path:
    """Turn ``world://name/sub`` into a real folder (building the world if needed); paths pass through."""
    text = str(root)
    if not text.startswith(WORLD_URI):
        return Path(text).expanduser()
    name, _, sub = text[len(WORLD_URI):].partition("/")
    base = Path(world_builder(name)())
    return base / sub if sub else base
