"""Embedded worlds: seeded generators that write small datasets in the real on-disk formats.

``kitchen`` (:mod:`modalbridge.worlds.kitchen`) — EPIC-KITCHENS-100 + Something-Something-V2/Something-Else
world shared by the action-recognition, distillation and layout-fusion tasks. Names are imported lazily so
that ``import modalbridge.worlds`` does not pull in PyAV/OpenCV.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "KitchenWorldConfig": "modalbridge.worlds.kitchen",
    "kitchen_world": "modalbridge.worlds.kitchen",
    "make_kitchen_world": "modalbridge.worlds.kitchen",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
