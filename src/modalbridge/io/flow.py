"""Optical flow: computation (OpenCV), EPIC-KITCHENS JPEG quantisation, reading and writing.

EPIC-KITCHENS ships flow as pairs of single-channel JPEGs ``u/frame_%010d.jpg`` and
``v/frame_%010d.jpg`` (1-based), computed with TV-L1 on every second RGB frame, so RGB frame
``i`` (1-based) maps to flow frame ``ceil(i / 2)`` (:func:`rgb_to_flow_index`). Displacements
are stored linearly quantised: 128 ≈ no motion, ``±bound`` pixels → 0 / 255 (bound 20 px by
default; the release does not state it, spec §2.1).

:func:`extract_ek_flow` writes that layout for any video, so user data and the embedded worlds go
through the same reader as the real release. ``method="dis"`` (OpenCV's DIS, preset FAST) is the
default because it is in core OpenCV and ~50× faster than TV-L1 on a CPU; ``"tvl1"`` (the EPIC
method) needs ``opencv-contrib-python-headless``.
"""

from __future__ import annotations

import math
from pathlib import Path

import av
import cv2
import numpy as np
import torch

from modalbridge.core.errors import MediaError

__all__ = ["compute_flow", "quantise_flow", "dequantise_flow", "rgb_to_flow_index", "write_flow_frames",
           "read_flow_frames", "extract_ek_flow", "flow_frame_path", "FLOW_METHODS"]

FLOW_METHODS = ("dis", "farneback", "tvl1")


def _flow_fn(method: str):
    """Return ``fn(prev_grey, next_grey) -> (H, W, 2) float32`` for ``method``."""
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

    Repeated indices are read once. A missing or unreadable file raises :class:`MediaError`
    naming it.
    """
    indices = np.asarray(flow_indices, dtype=np.int64).reshape(-1)
    cache: dict[int, np.ndarray] = {}
    for index in dict.fromkeys(indices.tolist()):
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
    held in memory.
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
