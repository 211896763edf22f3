"""Video probing, random-access frame reading and writing with PyAV.

Frames are addressed by 0-based index in presentation order (the order the decoder hands them
out). :func:`read_frames` seeks once to the keyframe before the first wanted frame, decodes
forward to the last wanted one and converts only the wanted frames to arrays, so reading 32
frames out of a long EPIC-KITCHENS video costs one GOP plus the span of the clip.

Every failure to open or decode a file is raised as :class:`~modalbridge.core.errors.MediaError`
naming the path; datasets that prefer to skip bad samples can count them with
:class:`MediaSkipCounter`.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
from torch.utils.data import get_worker_info

from modalbridge.core.errors import MediaError
from modalbridge.io.memory import MEDIA_CACHE

__all__ = ["VideoInfo", "probe", "read_frames", "write_video", "MediaSkipCounter"]

log = logging.getLogger(__name__)

_warned_short: set[str] = set()
_warn_lock = threading.Lock()


@dataclass(frozen=True)
class VideoInfo:
    """Static facts about the first video stream of a file."""

    path: str
    num_frames: int
    fps: float
    width: int
    height: int
    duration: float
    has_audio: bool


def _open(path: str | Path) -> av.container.InputContainer:
    path = str(path)
    file = Path(path)
    if not file.is_file():
        raise MediaError("is a folder, expected a media file" if file.is_dir() else "file not found", path=path)
    if file.stat().st_size == 0:
        raise MediaError("empty file (0 bytes), expected a video or audio file; re-download or re-encode it",
                         path=path)
    try:
        return av.open(path)
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise MediaError(f"cannot open as a media file (FFmpeg: {reason}): not a video/audio file, or corrupt or "
                         "truncated (an .mp4 cut before its index); re-download or re-encode it",
                         path=path) from exc


def _video_stream(container, path: str):
    if not container.streams.video:
        container.close()
        raise MediaError("no video stream", path=path)
    return container.streams.video[0]


def _stream_fps(stream) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else 0.0


def _stream_duration(stream) -> float | None:
    """Duration of ``stream`` in seconds from its header or Matroska ``DURATION`` tag, if any."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    tag = stream.metadata.get("DURATION") or stream.metadata.get("duration")
    if tag:
        try:
            hours, minutes, seconds = tag.split(":")
            return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
        except ValueError:
            return None
    return None


def _count_packets(container, stream) -> int:
    """Exact frame count by demuxing (no decoding); used when the header has no length."""
    return sum(1 for packet in container.demux(stream) if packet.size > 0)


def probe(path: str | Path) -> VideoInfo:
    """Read the header of ``path`` (no decoding).

    ``num_frames`` comes from the stream header when the container records it (mp4); otherwise
    (webm/mkv) it is ``round(duration * fps)`` with the video stream's own duration (the
    Matroska ``DURATION`` tag), exact for constant-frame-rate files such as those written by
    :func:`write_video`. Only when no per-stream duration exists are the packets counted.
    """
    path = str(path)
    container = _open(path)
    try:
        stream = _video_stream(container, path)
        fps = _stream_fps(stream)
        duration = _stream_duration(stream)
        num_frames = int(stream.frames or 0)
        if num_frames <= 0:
            if duration is not None and fps > 0:
                num_frames = int(round(duration * fps))
            else:
                num_frames = _count_packets(container, stream)
        if duration is None:
            duration = num_frames / fps if fps > 0 else 0.0
        return VideoInfo(
            path=path,
            num_frames=num_frames,
            fps=fps,
            width=int(stream.codec_context.width),
            height=int(stream.codec_context.height),
            duration=duration,
            has_audio=bool(container.streams.audio),
        )
    finally:
        container.close()


def _warn_short_once(path: str, wanted: np.ndarray, last_seen: int, error: str | None) -> None:
    """One warning per file (per process) for a read that asked for frames past the last decodable one."""
    with _warn_lock:
        if path in _warned_short:
            return
        _warned_short.add(path)
    requested = np.unique(wanted)
    read = int((requested <= last_seen).sum())
    why = (f"decoding stopped with an error: {error}" if error else
           "the video ends there: a truncated file, a header that over-states the length, or indices past the end")
    log.warning("%s: read %d of %d requested frames; the last decodable frame is %d (%s), so the %d requested "
                "frame(s) after it, up to frame %d, repeat frame %d. Further warnings for this file are suppressed.",
                path, read, requested.size, last_seen, why, requested.size - read, int(requested[-1]), last_seen)


def read_frames(path: str | Path, indices: Sequence[int] | np.ndarray, *,
                size: tuple[int, int] | None = None, threads: int | None = None) -> torch.Tensor:
    """Decode the frames at ``indices`` (0-based, any order, duplicates allowed).

    Returns a uint8 tensor ``(T, H, W, 3)`` RGB with ``T = len(indices)``, in the order of
    ``indices``. ``size=(h, w)`` rescales while converting (libswscale, cheaper than resizing
    afterwards). Frames past the end of a truncated file (or one whose header over-states its
    length) are replaced by the last decodable frame, so a long training run goes on, and a warning
    (once per file) says how many of the requested frames were read; a file with no decodable frame
    (or one that cannot be opened) raises :class:`MediaError`, which the data modules'
    ``on_error="skip"`` counts with :class:`MediaSkipCounter`.

    Frame ``i`` is identified by its timestamp, ``round((pts - start) * time_base * fps)``, so
    the file is assumed to have a constant frame rate (true for EPIC-KITCHENS / SSv2 encodes).

    ``threads``: decoder threads; ``None`` means one inside a DataLoader worker (the workers
    already occupy the cores) and FFmpeg's automatic frame+slice threading elsewhere; ``0``
    forces automatic threading.

    With :data:`~modalbridge.io.memory.MEDIA_CACHE` enabled, frames come from the cache when there and
    every frame decoded is kept (the whole span between the first and last missing index).
    """
    path = str(path)
    wanted = np.asarray(indices, dtype=np.int64).reshape(-1)
    if wanted.size == 0:
        h, w = size if size is not None else (0, 0)
        return torch.empty((0, h, w, 3), dtype=torch.uint8)
    if wanted.min() < 0:
        raise ValueError(f"negative frame index {int(wanted.min())} for {path}")
    needed = set(wanted.tolist())
    cached: dict[int, np.ndarray] = {}
    if MEDIA_CACHE.enabled:
        key = ("frame", path, size)
        cached = {i: a for i in needed if (a := MEDIA_CACHE.get((*key, i))) is not None}
        needed -= set(cached)
        if needed:  # keep every frame decoded on the way: other clips of the span will want them
            needed = set(range(min(needed), max(needed) + 1))
    if needed:
        first, last = min(needed), max(needed)
        container = _open(path)
        try:
            stream = _video_stream(container, path)
            _set_threads(stream, threads)
            decoded, last_seen, error = _decode_range(container, stream, path, first, last, needed, size, threads)
        finally:
            container.close()
        if not decoded:
            reason = f"decoding failed: {error}" if error else "the file is truncated or damaged"
            raise MediaError(f"no decodable video frame at or after frame {first} ({reason})", path=path)
        if last_seen is not None and last_seen < last:
            _warn_short_once(path, wanted, last_seen, error)
        if MEDIA_CACHE.enabled:
            for i, array in decoded.items():
                MEDIA_CACHE.put((*key, i), array)
        cached.update(decoded)
    frames = [cached[i] for i in wanted.tolist()]
    return torch.from_numpy(np.stack(frames))


def _set_threads(stream, threads: int | None) -> None:
    if threads is None:
        threads = 1 if get_worker_info() is not None else 0
    if threads == 1:
        stream.thread_type = "NONE"
        stream.thread_count = 1
    else:
        stream.thread_type = "AUTO"
        stream.thread_count = threads


def _decode_range(container, stream, path: str, first: int, last: int, needed: set[int],
                  size: tuple[int, int] | None, threads: int | None
                  ) -> tuple[dict[int, np.ndarray], int | None, str | None]:
    """Decode frames ``first..last``; returns ``({index: (H, W, 3) array}, last index seen, decoding error)``."""
    fps = _stream_fps(stream)
    start_pts = stream.start_time or 0
    if first > 0 and fps > 0 and stream.time_base is not None:
        target = start_pts + int(math.floor(first / fps / stream.time_base))
        try:
            container.seek(target, stream=stream, backward=True, any_frame=False)
            out, first_seen, last_seen, error = _collect(container, stream, path, last, needed, size, fps,
                                                         counting=False)
            if first_seen is not None and first_seen <= first:
                return out, last_seen, error
        except av.error.FFmpegError as exc:  # unseekable: decode from the start instead
            log.debug("%s: seek failed (%s)", path, exc)
        # The demuxer landed after the wanted frame (or nothing decoded after it, as in a
        # truncated file): decode from the beginning.
        container.close()
        container = _open(path)
        stream = container.streams.video[0]
        _set_threads(stream, threads)
    try:
        out, _, last_seen, error = _collect(container, stream, path, last, needed, size, fps, counting=True)
        return out, last_seen, error
    finally:
        container.close()


def _collect(container, stream, path: str, last: int, needed: set[int],
             size: tuple[int, int] | None, fps: float, *, counting: bool
             ) -> tuple[dict[int, np.ndarray], int | None, int | None, str | None]:
    """Decode forward from the current position until frame ``last``.

    Returns ``(frames, first_seen, last_seen, error)``, ``error`` being FFmpeg's message when decoding
    stopped on an error. A frame's index comes from its timestamp;
    frames without one (or files without a frame rate) are numbered by counting, which is only
    valid when decoding from the start (``counting=True``). A wanted index that the timestamps
    jump over gets the frame shown at that time (the previous one); wanted indices past the end
    of the file get the last decoded frame.
    """
    start_pts = stream.start_time or 0
    time_base = stream.time_base
    targets = sorted(needed)
    ptr = 0
    out: dict[int, np.ndarray] = {}
    first_seen = last_seen = None
    prev = prev_array = None
    error = None

    def prev_as_array():
        nonlocal prev_array
        if prev_array is None:
            prev_array = _to_array(prev, size)
        return prev_array

    try:
        for count, frame in enumerate(container.decode(stream)):
            if frame.pts is not None and fps > 0 and time_base is not None:
                idx = int(round(float((frame.pts - start_pts) * time_base) * fps))
            elif counting:
                idx = count
            else:
                return out, None, None, None
            if first_seen is None:
                first_seen = idx
            while ptr < len(targets) and targets[ptr] < idx:
                if prev is not None:
                    out[targets[ptr]] = prev_as_array()
                elif counting:  # frames before the first timestamp: use the first frame
                    out[targets[ptr]] = _to_array(frame, size)
                ptr += 1
            prev, prev_array, last_seen = frame, None, idx
            if ptr < len(targets) and targets[ptr] == idx:
                prev_array = out[idx] = _to_array(frame, size)
                ptr += 1
            if idx >= last:
                break
    except av.error.FFmpegError as exc:  # reported by read_frames when wanted frames are missing
        error = getattr(exc, "strerror", None) or str(exc)
        log.debug("%s: decoding stopped early (%s)", path, exc)
    if ptr < len(targets) and prev is not None:  # the file ended before the last wanted frame
        fill = prev_as_array()
        for target in targets[ptr:]:
            out[target] = fill
    return out, first_seen, last_seen, error


def _to_array(frame, size: tuple[int, int] | None) -> np.ndarray:
    if size is None:
        return frame.to_ndarray(format="rgb24")
    height, width = size
    return frame.reformat(width=int(width), height=int(height), format="rgb24").to_ndarray()


# --------------------------------------------------------------------------------------- write


def _codec_for(path: Path, codec: str | None) -> tuple[str, str]:
    suffix = path.suffix.lower()
    if codec is None:
        codec = "libvpx-vp9" if suffix == ".webm" else "libx264"
    audio_codec = "libopus" if suffix == ".webm" else "aac"
    return codec, audio_codec


def write_video(path: str | Path, frames: torch.Tensor | np.ndarray, fps: float, *,
                audio: np.ndarray | None = None, audio_rate: int = 16000,
                codec: str | None = None) -> Path:
    """Encode ``frames`` (uint8 ``(T, H, W, 3)`` RGB) to ``path``.

    ``.mp4`` → H.264 (libx264, yuv420p, preset ultrafast; height and width must be even; the index is
    written at the start of the file, so a truncated copy stays readable up to the cut),
    ``.webm`` → VP9 (libvpx-vp9, realtime deadline). ``audio`` is an optional mono float
    waveform ``(N,)`` in [-1, 1] at ``audio_rate`` Hz, encoded as AAC in mp4 and Opus in webm
    (Opus only accepts 8/12/16/24/48 kHz). Returns the path.
    """
    path = Path(path)
    array = frames.numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
    if array.ndim != 4 or array.shape[-1] != 3 or array.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {array.dtype} {array.shape}")
    num, height, width, _ = array.shape
    if num == 0:
        raise ValueError("cannot write a video with zero frames")
    codec, audio_codec = _codec_for(path, codec)
    if codec in ("libx264", "h264") and (height % 2 or width % 2):
        raise ValueError(f"H.264 (yuv420p) needs even frame sizes, got {height}x{width}; "
                         "crop or pad the frames, or write .webm")
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = Fraction(fps).limit_denominator(1001)

    # mp4: the index (moov) goes in front ("faststart"), so a truncated copy still decodes up to where it was cut
    options = {"movflags": "+faststart"} if path.suffix.lower() in (".mp4", ".mov", ".m4v") else {}
    with av.open(str(path), mode="w", options=options) as container:
        vstream = container.add_stream(codec, rate=rate)
        vstream.width, vstream.height = width, height
        vstream.pix_fmt = "yuv420p"
        if codec == "libx264":
            vstream.options = {"preset": "ultrafast", "crf": "20"}
        elif codec == "libvpx-vp9":
            vstream.options = {"deadline": "realtime", "cpu-used": "8", "crf": "32", "b": "0",
                               "row-mt": "1"}
        astream = None
        if audio is not None:
            astream = container.add_stream(audio_codec, rate=int(audio_rate))
            astream.layout = "mono"

        for i in range(num):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(array[i]), format="rgb24")
            frame.pts = i
            container.mux(vstream.encode(frame))
        container.mux(vstream.encode(None))

        if astream is not None:
            wave = np.clip(np.asarray(audio, dtype=np.float32).reshape(-1), -1.0, 1.0)
            chunk = 1024 * 16
            for start in range(0, wave.size, chunk):
                piece = np.ascontiguousarray(wave[start:start + chunk])[None, :]
                aframe = av.AudioFrame.from_ndarray(piece, format="flt", layout="mono")
                aframe.sample_rate = int(audio_rate)
                aframe.pts = start
                container.mux(astream.encode(aframe))
            container.mux(astream.encode(None))
    return path


# --------------------------------------------------------------------------------- skip counter


class MediaSkipCounter:
    """Counts samples a dataset skipped (``on_error="skip"``) and logs each one.

    Thread-safe within a process. DataLoader worker processes each hold their own copy, so the
    totals are per process; every skip is also logged, which is what survives across workers.
    ``reasons`` keeps the first ``keep`` ``(path, reason)`` pairs.
    """

    def __init__(self, name: str = "dataset", keep: int = 100):
        self.name = name
        self.keep = keep
        self.count = 0
        self.reasons: list[tuple[str, str]] = []
        self.by_reason: Counter[str] = Counter()
        self._lock = threading.Lock()

    def record(self, path: str | Path, reason: str | BaseException) -> None:
        text = str(reason)
        with self._lock:
            self.count += 1
            self.by_reason[type(reason).__name__ if isinstance(reason, BaseException) else text] += 1
            if len(self.reasons) < self.keep:
                self.reasons.append((str(path), text))
            count = self.count
        log.warning("%s: skipping sample %s (%s); %d skipped so far", self.name, path, text, count)

    def summary(self) -> str:
        with self._lock:
            return f"{self.name}: {self.count} samples skipped" + (
                f" ({dict(self.by_reason)})" if self.count else "")

    def __repr__(self) -> str:
        return f"MediaSkipCounter(name={self.name!r}, count={self.count})"
