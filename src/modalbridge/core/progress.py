"""Progress of long non-Lightning work (world build, flow extraction, teacher caches, data check, pack):
a tqdm bar on a terminal, a few plain lines otherwise (CI logs, files), nothing when disabled.

    for video in progress(videos, "flow", unit="video"):
        ...

``MODALBRIDGE_PROGRESS=0`` turns bars and lines off; ``=lines`` forces plain lines; ``=bar`` forces bars.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

#: plain-line mode prints about this many lines over a whole loop
LINES = 10


def _mode() -> str:
    choice = os.environ.get("MODALBRIDGE_PROGRESS", "").strip().lower()
    if choice in ("0", "off", "false", "no"):
        return "off"
    if choice in ("bar", "lines"):
        return choice
    return "bar" if sys.stderr.isatty() and not os.environ.get("CI") else "lines"


def _plural(unit: str) -> str:
    """``batch`` → ``batches``, ``video`` → ``videos``."""
    return unit + ("es" if unit.endswith(("s", "x", "ch", "sh")) else "s")


def progress(items: Iterable[T], desc: str, *, total: int | None = None, unit: str = "it",
             min_items: int = 0) -> Iterator[T]:
    """Yield ``items`` while showing progress on stderr (see the module docstring); loops known to hold
    fewer than ``min_items`` items finish at once and show nothing."""
    if total is None:
        try:
            total = len(items)  # type: ignore[arg-type]
        except TypeError:
            total = None
    mode = "off" if total is not None and total < min_items else _mode()
    if mode == "off":
        yield from items
        return
    if mode == "bar":
        from tqdm.auto import tqdm

        yield from tqdm(items, desc=desc, total=total, unit=unit, dynamic_ncols=True, leave=False)
        return
    every = max(1, (total or 0) // LINES) if total else 100
    started = time.perf_counter()
    done = 0
    for item in items:
        yield item
        done += 1
        if done % every == 0 or done == total:
            elapsed = time.perf_counter() - started
            of = f"/{total}" if total else ""
            print(f"{desc}: {done}{of} {_plural(unit)} ({elapsed:.0f} s, {done / max(elapsed, 1e-9):.1f} {unit}/s)",
                  file=sys.stderr, flush=True)
