"""Timing helpers shared by the benchmarks behind ``modalbridge bench``.

* :func:`interleaved_ms` — several variants of one computation (fp32 vs bf16, engine vs bare loop …) timed
  side by side: warm-up calls excluded, then rounds that call every variant once, the order reversed every
  other round (A B, B A, A B …), median per variant — machine noise and drift on a shared machine hit every
  variant alike, and neither always runs first.
* :func:`loader_clips_per_s` — clips/s of a ``DataLoader`` (decode + transform + collate), worker start-up
  and the first batch excluded.

>>> ms = interleaved_ms({"a": lambda: None, "b": lambda: None}, repeats=3)
>>> sorted(ms), len(ms["a"]["samples_ms"])
(['a', 'b'], 3)
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["interleaved_ms", "loader_clips_per_s"]


def interleaved_ms(fns: Mapping[str, Callable[[], Any]], repeats: int, warmup: int = 1) -> dict[str, dict]:
    """``{name: {"median_ms", "samples_ms"}}`` of each zero-argument ``fn``: ``warmup`` untimed calls of each,
    then ``repeats`` rounds calling each once, in reversed order every other round."""
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            t0 = time.perf_counter()
            fns[name]()
            samples[name].append(1e3 * (time.perf_counter() - t0))
    return {name: {"median_ms": statistics.median(s), "samples_ms": s} for name, s in samples.items()}


def loader_clips_per_s(loader: Iterable, batches: int, count: Callable[[Any], int] | None = None) -> float:
    """Clips/s of ``batches`` batches of ``loader`` after its first one (workers started, first batch ready);
    ``count(batch)`` = clips in a batch (default ``len(batch["index"])``)."""
    count = count or (lambda batch: len(batch["index"]))
    it = iter(loader)
    next(it)
    t0, clips = time.perf_counter(), 0
    for batch in itertools.islice(it, batches):
        clips += count(batch)
    elapsed = time.perf_counter() - t0
    if clips == 0:
        raise ValueError(f"the loader gave no batch after its first one (asked for {batches})")
    return clips / elapsed
