"""Optical flow: computation (OpenCV), EPIC-KITCHENS JPEG quantisation, reading and writing.

EPIC-KITCHENS ships flow as pairs of single-channel JPEGs ``u/frame_%010d.jpg`` and
``v/frame_%010d.jpg`` (1-based), computed with TV-L1 on every second RGB frame, so RGB frame
``i`` (1-based) maps to flow frame ``ceil(i / 2)`` (:func:`rgb_to_flow_index`). Displacements
are stored linearly quantised: 128 ≈ no motion, ``±bound`` pixels → 0 / 255 (bound 20 px by
default; the release does not state it, spec §2.1).

Something-Something V2 / Something-Else have no official flow release (the thesis authors ran
TV-L1 themselves), so we define the layout: ``<root>/flow/<video_id>/{u,v}/frame_%010d.jpg``, the
same quantised JPEG pairs, with **one flow frame per decoded RGB frame** (stride 1; spec §2.4: one
flow image per RGB frame). For a video of ``N`` decoded frames, flow frame ``k`` (1-based, ``k < N``)
is the flow from decoded frame ``k-1`` to ``k`` (0-based) and flow frame ``N`` repeats flow frame
``N-1``, so 0-based decode index ``i`` reads flow frame ``i + 1`` (:func:`decode_to_flow_index`). :func:`extract_flow_tree` writes it for a list of videos
(``modalbridge data flow``).

:func:`extract_ek_flow` writes that layout for any video and any stride, so user data and the
embedded worlds go through the same reader as the real release. ``method="dis"`` (OpenCV's DIS,
preset FAST) is the default because it is in core OpenCV and ~50× faster than TV-L1 on a CPU;
``"tvl1"`` (the EPIC method) needs ``opencv-contrib-python-headless``.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import av
import cv2
import numpy as np
import torch

from modalbridge.core.errors import DataError, MediaError
from modalbridge.core.progress import progress as show_progress
from modalbridge.io.memory import MEDIA_CACHE

__all__ = ["compute_flow", "quantise_flow", "dequantise_flow", "rgb_to_flow_index", "write_flow_frames",
           "read_flow_frames", "extract_ek_flow", "flow_frame_path", "count_flow_frames", "FlowFrameCounts",
           "decode_to_flow_index", "extract_flow_tree", "FlowTreeSummary", "FLOW_METHODS"]

log = logging.getLogger(__name__)

FLOW_METHODS = ("dis", "farneback", "tvl1")


def _flow_fn(method: str):
    """Return ``fn(prev_grey, next_grey) -> (H, W, 2) float32`` for ``method``. Inputs are made C-contiguous:
    OpenCV's DIS refuses strided images (PyAV ≥ 18.1.1 returns the decoder's padded luma rows as a strided view)."""
    flow = _raw_flow_fn(method)
    return lambda a, b: flow(np.ascontiguousarray(a), np.ascontiguousarray(b))


def _raw_flow_fn(method: str):
    if method == "dis":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
        return lambda a, b: dis.calc(a, b, None)
    if method == "farneback":
        return lambda a, b: cv2.calcOpticalFlowFarneback(a, b, None, pyr_scale=0.5, levels=3, winsize=15,
                                                         iterations=3, poly_n=5, poly_sigma=1.2, flags=0)
    if method == "tvl1":
        if not hasattr(cv2, "optflow"):
            raise ImportError("TV-L1 optical flow lives in OpenCV's contrib modules: "
                              "pip uninstall opencv-python-headless && pip install opencv-contrib-python-headless "
                              "(or use method='dis' / 'farneback', which core OpenCV provides)")
        tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
        return lambda a, b: tvl1.calc(a, b, None)
    raise ValueError(f"unknown flow method {method!r}; choose one of {FLOW_METHODS}")


def _grey(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)


def compute_flow(frames: torch.Tensor | np.ndarray, method: str = "dis") -> torch.Tensor:
    """Flow between consecutive frames of a uint8 RGB clip ``(T, H, W, 3)``.

    Returns float32 ``(T-1, 2, H, W)``: channel 0 is u (pixels to the right), channel 1 is v
    (pixels down), such that ``frame[t+1](y + v, x + u) ≈ frame[t](y, x)``. Computed on greyscale.
    Methods: ``"dis"`` (``cv2.DISOpticalFlow`` with ``PRESET_FAST``; default), ``"farneback"``,
    ``"tvl1"`` (contrib build only).
    """
    array = frames.numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
    if array.ndim != 4 or array.shape[-1] != 3:
        raise ValueError(f"expected frames (T, H, W, 3), got shape {array.shape}")
    fn = _flow_fn(method)
    greys = [_grey(frame) for frame in array]
    flows = [fn(a, b) for a, b in zip(greys[:-1], greys[1:])]
    if not flows:
        return torch.zeros((0, 2, *array.shape[1:3]), dtype=torch.float32)
    return torch.from_numpy(np.stack(flows)).permute(0, 3, 1, 2).contiguous()


def quantise_flow(flow: torch.Tensor | np.ndarray, bound: float = 20.0) -> torch.Tensor:
    """Map displacements in pixels to uint8: ``round((d / bound + 1) · 127.5)`` clipped to 0..255.

    Zero motion → 128 (127.5 rounds half-to-even to 128), ``±bound`` → 255 / 0; one step is
    ``bound / 127.5`` pixels. Any shape; returns a uint8 tensor of the same shape.
    """
    d = torch.as_tensor(flow, dtype=torch.float32)
    q = torch.round((d / float(bound) + 1.0) * 127.5)
    return q.clamp_(0, 255).to(torch.uint8)


def dequantise_flow(q: torch.Tensor | np.ndarray, bound: float = 20.0) -> torch.Tensor:
    """Inverse of :func:`quantise_flow`: ``(q / 127.5 - 1) · bound`` pixels, float32."""
    return (torch.as_tensor(q).float() / 127.5 - 1.0) * float(bound)


def rgb_to_flow_index(index: int | np.ndarray, stride: int = 2) -> int | np.ndarray:
    """1-based RGB frame number → 1-based EPIC flow frame number, ``ceil(index / stride)``.

    Golden: 1 → 1, 2 → 1, 3 → 2.
    """
    if isinstance(index, (int, np.integer)):
        return int(math.ceil(int(index) / stride))
    array = np.asarray(index, dtype=np.int64)
    return -(-array // stride)


def flow_frame_path(flow_dir: str | Path, component: str, index: int) -> Path:
    """``flow_dir/{u,v}/frame_%010d.jpg`` (1-based ``index``)."""
    return Path(flow_dir) / component / f"frame_{int(index):010d}.jpg"


def count_flow_frames(flow_dir: str | Path) -> int:
    """Number of flow frame pairs in ``flow_dir`` (files ``u/frame_*.jpg``, checked against ``v/``).

    :class:`MediaError` naming the folder when it holds no frames or ``u`` and ``v`` differ in count.
    """
    counts = []
    for component in ("u", "v"):
        folder = Path(flow_dir) / component
        try:
            with os.scandir(folder) as entries:
                counts.append(sum(1 for e in entries if e.name.startswith("frame_") and e.name.endswith(".jpg")))
        except FileNotFoundError:
            raise MediaError("flow folder has no frames", path=folder) from None
    if counts[0] != counts[1]:
        raise MediaError(f"u holds {counts[0]} flow frames but v holds {counts[1]}", path=flow_dir)
    if counts[0] == 0:
        raise MediaError("flow folder has no frames", path=flow_dir)
    return counts[0]


class FlowFrameCounts:
    """:func:`count_flow_frames` remembered per folder (a dataset lists each video's folder once per worker):
    ``counts(flow_dir) -> int``."""

    def __init__(self):
        self._counts: dict[str, int] = {}

    def __call__(self, flow_dir: str | Path) -> int:
        key = str(flow_dir)
        if key not in self._counts:
            self._counts[key] = count_flow_frames(flow_dir)
        return self._counts[key]


def decode_to_flow_index(frames: np.ndarray, num_flow_frames: int) -> np.ndarray:
    """0-based decode indices ``(T,)`` → 1-based flow frame numbers ``(T,)`` of a stride-1 folder.

    Decoded frame ``i`` reads flow frame ``i + 1``, the flow from frame ``i`` to ``i + 1`` (the last
    frame reads the repeated flow of the frame before it). Clamped to ``num_flow_frames``, as decoding
    repeats the last frame when a video header over-states its length. Golden: ``[0, 1, 5]`` with 5
    flow frames → ``[1, 2, 5]``.
    """
    return np.minimum(np.asarray(frames, dtype=np.int64) + 1, int(num_flow_frames))


def write_flow_frames(flow: torch.Tensor | np.ndarray, out_dir: str | Path, start_index: int = 1, *,
                      quality: int = 95) -> int:
    """Write quantised flow ``(T, 2, H, W)`` uint8 as EPIC JPEG pairs, numbered from ``start_index``.

    Returns the number of frame pairs written.
    """
    array = flow.numpy() if isinstance(flow, torch.Tensor) else np.asarray(flow)
    if array.ndim != 4 or array.shape[1] != 2 or array.dtype != np.uint8:
        raise ValueError(f"expected uint8 flow (T, 2, H, W), got {array.dtype} {array.shape}")
    for component in ("u", "v"):
        (Path(out_dir) / component).mkdir(parents=True, exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    for t, pair in enumerate(array):
        for c, component in enumerate(("u", "v")):
            path = flow_frame_path(out_dir, component, start_index + t)
            if not cv2.imwrite(str(path), np.ascontiguousarray(pair[c]), params):
                raise OSError(f"could not write {path}")
    return len(array)


def read_flow_frames(flow_dir: str | Path, flow_indices) -> torch.Tensor:
    """Read EPIC flow JPEG pairs for 1-based ``flow_indices`` → uint8 ``(T, H, W, 2)`` (u, v).

    Repeated indices are read once (and every pair is kept while
    :data:`~modalbridge.io.memory.MEDIA_CACHE` is enabled). A missing or unreadable file raises
    :class:`MediaError` naming it.
    """
    indices = np.asarray(flow_indices, dtype=np.int64).reshape(-1)
    cache: dict[int, np.ndarray] = {}
    for index in dict.fromkeys(indices.tolist()):
        key = ("flow", str(flow_dir), index)
        if (hit := MEDIA_CACHE.get(key)) is not None:
            cache[index] = hit
            continue
        planes = []
        for component in ("u", "v"):
            path = flow_frame_path(flow_dir, component, index)
            image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            if image is None:
                reason = "missing flow frame" if not path.is_file() else "unreadable flow JPEG"
                raise MediaError(reason, path=path)
            planes.append(image)
        if planes[0].shape != planes[1].shape:
            raise MediaError(f"u/v sizes differ ({planes[0].shape} vs {planes[1].shape})",
                             path=flow_frame_path(flow_dir, "v", index))
        cache[index] = np.stack(planes, axis=-1)
        MEDIA_CACHE.put(key, cache[index])
    if not cache:
        return torch.empty((0, 0, 0, 2), dtype=torch.uint8)
    return torch.from_numpy(np.stack([cache[i] for i in indices.tolist()]))


def extract_ek_flow(video_path: str | Path, out_dir: str | Path, *, stride: int = 2, method: str = "dis",
                    bound: float = 20.0, quality: int = 95) -> int:
    """Compute EPIC-style flow JPEGs for a video; returns the number of flow frames written.

    Flow frame ``k`` (1-based) is the flow from RGB frame ``(k-1)·stride + 1`` to
    ``k·stride + 1`` (1-based; for ``stride=2``: frames ``2k-1 → 2k+1``), so RGB frame ``i`` is
    covered by flow frame ``ceil(i / stride)``. A video of ``N`` frames gets ``ceil(N / stride)``
    flow frames; the last one would start at the last sampled frame, which has no successor in
    the video, so it repeats the previous flow (zero motion for a one-frame video). Flow is
    computed on the decoder's luma plane. The video is streamed: only two greyscale frames are
    held in memory. ``stride=1`` writes the Something-Something layout (one flow frame per decoded
    frame, see the module docstring).
    """
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    video_path = str(video_path)
    fn = _flow_fn(method)
    try:
        container = av.open(video_path)
    except (av.error.FFmpegError, FileNotFoundError) as exc:
        raise MediaError(f"cannot open video ({exc})", path=video_path) from exc
    written = 0
    num_frames = 0
    prev = None
    last_q: np.ndarray | None = None
    try:
        if not container.streams.video:
            raise MediaError("no video stream", path=video_path)
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for i, frame in enumerate(container.decode(stream)):
                num_frames = i + 1
                if i % stride:
                    continue
                grey = frame.to_ndarray(format="gray")
                if prev is not None:
                    q = quantise_flow(fn(prev, grey), bound).numpy().transpose(2, 0, 1)[None]
                    written += write_flow_frames(q, out_dir, written + 1, quality=quality)
                    last_q = q
                prev = grey
        except av.error.FFmpegError as exc:
            if num_frames == 0:
                raise MediaError(f"cannot decode video ({exc})", path=video_path) from exc
    finally:
        container.close()
    if num_frames == 0:
        raise MediaError("no decodable video frame", path=video_path)
    needed = math.ceil(num_frames / stride)
    if written < needed:  # pad the tail so every RGB frame has a flow frame
        if last_q is None:
            last_q = np.full((1, 2, *prev.shape), 128, dtype=np.uint8)
        for _ in range(needed - written):
            written += write_flow_frames(last_q, out_dir, written + 1, quality=quality)
    return written


@dataclass
class FlowTreeSummary:
    """Outcome of :func:`extract_flow_tree`: video ids per outcome, each failure with its reason, wall time."""

    total: int = 0
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def _is_complete(folder: Path, video: Path, stride: int) -> bool:
    """Whether ``folder`` already holds ``ceil(N / stride)`` u and v frames, N = the video header's frame count."""
    from modalbridge.io.video import probe

    if not folder.is_dir():
        return False
    try:
        found = count_flow_frames(folder)
    except MediaError:
        return False
    return found == math.ceil(probe(video).num_frames / stride)


def extract_flow_tree(video_ids: Sequence[str], video_path: Callable[[str], Path], out_root: str | Path, *,
                      stride: int = 1, method: str = "dis", shard: tuple[int, int] = (0, 1),
                      overwrite: bool = False, bound: float = 20.0, quality: int = 95,
                      progress: Callable[[int, int, str, str], None] | None = None) -> FlowTreeSummary:
    """Extract flow JPEG pairs for one shard of ``video_ids`` into ``out_root/<video_id>/{u,v}/``.

    Shard ``(i, n)`` takes ``ids[i::n]`` of the de-duplicated list (first occurrence kept), so the
    ``n`` shards of one list cover every video exactly once and can run as separate processes.
    ``video_path(video_id)`` locates each file (an error there counts as a failure of that video).
    A video is skipped, unless ``overwrite``, when its folder already holds ``ceil(N / stride)``
    frame pairs with ``N`` the frame count of the video's header
    (:func:`~modalbridge.io.video.probe`; a header that misstates the length makes the video be
    extracted again). Each video is written to ``out_root/.<video_id>.partial`` and renamed when
    complete, so an interrupted run never leaves a half-written folder. A video that is missing or
    cannot be decoded is logged, recorded in ``FlowTreeSummary.failed`` and the others go on.

    ``progress(position, total, video_id, outcome)`` is called after each video with ``outcome`` in
    ``done``/``skipped``/``failed``; without it, progress is shown by
    :func:`~modalbridge.core.progress.progress` (a bar on a terminal, a few lines otherwise).
    ``method``/``bound``/``quality`` as in :func:`extract_ek_flow`; an unknown method or a missing TV-L1
    build raises before any video is touched.
    """
    index, count = (int(x) for x in shard)
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"shard must be (i, n) with 0 <= i < n, got {shard}")
    _flow_fn(method)  # fail fast on an unknown method or a missing contrib build
    out_root = Path(out_root)
    out_root.mkdir(parents=True, exist_ok=True)
    mine = list(dict.fromkeys(str(v) for v in video_ids))[index::count]
    summary = FlowTreeSummary(total=len(mine))
    start = time.perf_counter()
    videos = mine if progress is not None else show_progress(mine, "flow", total=len(mine), unit="video")
    for position, video_id in enumerate(videos, 1):
        final, partial = out_root / video_id, out_root / f".{video_id}.partial"
        try:
            path = Path(video_path(video_id))
            if not overwrite and _is_complete(final, path, stride):
                outcome = "skipped"
            else:
                shutil.rmtree(partial, ignore_errors=True)
                extract_ek_flow(path, partial, stride=stride, method=method, bound=bound, quality=quality)
                if final.exists():
                    shutil.rmtree(final)
                os.replace(partial, final)
                outcome = "done"
        except (DataError, OSError) as exc:
            shutil.rmtree(partial, ignore_errors=True)
            log.warning("flow of video %s failed: %s", video_id, exc)
            summary.failed[video_id] = str(exc)
            outcome = "failed"
        if outcome != "failed":
            getattr(summary, outcome).append(video_id)
        if progress is not None:
            progress(position, len(mine), video_id, outcome)
    summary.seconds = time.perf_counter() - start
    return summary
