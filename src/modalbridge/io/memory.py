"""A process-wide, size-bounded cache of decoded media, for small datasets trained for many epochs.

Decoding dominates an epoch on a small CPU machine (the kitchen world: ~15 s of H.264 decoding against
~8 s of r3d_tiny compute for 240 clips). With the cache on, :func:`~modalbridge.io.video.read_frames`
keeps every decoded frame, :func:`~modalbridge.io.flow.read_flow_frames` every flow image pair and
:func:`~modalbridge.io.audio.load_audio` every waveform, keyed by file and index, so each is decoded
once per process however many epochs, data modules and models read it (augmentation still runs on every
read: the cache holds decoded pixels, not samples).

The cache lives in the process that reads: use it with ``num_workers=0`` (one cache shared by every
loader of the process, which the demo does) — with worker processes each worker would fill its own copy
and lose it when the loader is rebuilt. It is off unless enabled; it evicts least-recently-used entries
beyond its byte budget. Not for EPIC-KITCHENS-100 at full size (hundreds of GB of frames).

    from modalbridge.io.memory import MEDIA_CACHE
    MEDIA_CACHE.configure(max_bytes=4 * 2**30)    # or data module ``cache_media_gb=4``
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

import numpy as np
import torch

__all__ = ["MediaCache", "MEDIA_CACHE", "enable_media_cache"]

log = logging.getLogger(__name__)


def _nbytes(value: Any) -> int:
    if isinstance(value, torch.Tensor):
        return value.element_size() * value.numel()
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    raise TypeError(f"only arrays and tensors are cached, got {type(value).__name__}")


class MediaCache:
    """LRU mapping ``key -> array`` bounded by ``max_bytes`` (0 = disabled: ``get`` misses, ``put`` ignores).

    Keys are tuples such as ``("frame", path, index)``. Values are stored as given; callers must not
    modify what ``get`` returns (readers copy or stack before transforming).
    """

    def __init__(self, max_bytes: int = 0):
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.max_bytes, self.bytes, self.hits, self.misses = int(max_bytes), 0, 0, 0

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    def configure(self, max_bytes: int) -> None:
        """Set the budget (bytes); shrinking evicts, 0 disables and empties the cache."""
        with self._lock:
            self.max_bytes = max(0, int(max_bytes))
            self._evict()

    def get(self, key: Hashable) -> Any | None:
        if not self.enabled:
            return None
        with self._lock:
            value = self._items.get(key)
            if value is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: Hashable, value: Any) -> None:
        size = _nbytes(value)
        if not self.enabled or size > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.bytes -= _nbytes(old)
            self._items[key] = value
            self.bytes += size
            self._evict()

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.bytes = self.hits = self.misses = 0

    def _evict(self) -> None:
        while self.bytes > self.max_bytes and self._items:
            _, value = self._items.popitem(last=False)
            self.bytes -= _nbytes(value)

    def __len__(self) -> int:
        return len(self._items)

    def stats(self) -> dict[str, float]:
        """Entries, size (MB), budget (MB), hits, misses."""
        return {"entries": len(self._items), "mb": self.bytes / 2**20, "max_mb": self.max_bytes / 2**20,
                "hits": self.hits, "misses": self.misses}


#: the cache every reader of this process consults
MEDIA_CACHE = MediaCache()


def enable_media_cache(gb: float, num_workers: int = 0) -> None:
    """Turn on the process-wide decoded-media cache with a budget of at least ``gb`` GiB (a larger budget
    already set is kept); warns when worker processes would each fill a copy of their own."""
    MEDIA_CACHE.configure(max(MEDIA_CACHE.max_bytes, int(gb * 2**30)))
    if num_workers > 0:
        log.warning("cache_media_gb with num_workers=%d: every worker process fills its own cache and loses "
                    "it when the loader is rebuilt; the cache pays off with num_workers=0", num_workers)
