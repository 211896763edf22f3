"""Packed HDF5 files: the on-disk format the distillation papers' authors trained from (spec card
``distillation.md`` §2.4). :func:`pack_epic` / :func:`pack_something` write it from our raw layouts
(``modalbridge data pack``); :class:`PackedEpic` / :class:`PackedSomething` read it back as the raw
readers do (same shapes, dtypes and value ranges; pixels differ only by JPEG re-encoding).

A packed folder holds any subset of three files:

``rgb.hdf5``
    EPIC-KITCHENS-100: a group per ``video_id``, a dataset per ``narration_id`` (key
    ``"<video_id>/<narration_id>"``, :func:`epic_key`); element ``k`` is the JPEG of annotation frame
    ``start_frame + k``, so the dataset has ``stop_frame - start_frame + 1`` elements.
    SSv2 / Something-Else: a dataset per video id; element ``n`` is the JPEG of decoded frame ``n``
    (every frame of the video, as many as its header states).
``flow.hdf5``
    EPIC-KITCHENS-100: the same keys; ``2 · (stop_frame - start_frame + 1)`` single-channel JPEGs
    interleaved ``[u0, v0, u1, v1, …]``, pair ``k`` being flow frame ``ceil((start_frame + k) / 2)``
    of the release (:func:`~modalbridge.io.flow.rgb_to_flow_index`), its JPEG files copied byte for byte.
    SSv2 / Something-Else: element ``n`` is one 3-channel JPEG ``(u, v, 0)`` holding flow frame
    ``n + 1`` of the stride-1 folder (:func:`~modalbridge.io.flow.decode_to_flow_index`), chroma not
    subsampled (4:4:4) so u and v keep their resolution.
``audio.hdf5`` (EPIC-KITCHENS-100)
    a dataset per ``video_id``: float32 mono waveform of the whole video at 24 kHz (attribute
    ``sample_rate``; files without it are read as 24 kHz, the reference's rate).

JPEG elements are written as variable-length uint8 arrays (``h5py.vlen_dtype(np.uint8)``); the
readers also accept the fixed-length byte strings (``|S<max>``) the reference's packer used. Keys
are written in natural order (``P01_9`` before ``P01_10``) and nothing depends on time or randomness,
so packing the same data twice gives the same datasets.

Readers open each file read-only on first use **in each process** and never pickle the handle, so a
reader can be handed to DataLoader workers. Every bad input raises
:class:`~modalbridge.core.errors.MediaError` naming the file, the key and what was expected.
h5py is optional: ``pip install 'modalbridge[hdf5]'``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from modalbridge.core.errors import DataError, MediaError
from modalbridge.core.paths import natural_key
from modalbridge.core.progress import progress as show_progress
from modalbridge.datasets.epic_kitchens import ANNOTATION_FILES, EpicKitchens100, EpicSegment
from modalbridge.datasets.something import SomethingSomething, SomethingVideo
from modalbridge.io.audio import load_audio, resample_audio
from modalbridge.io.flow import (
    count_flow_frames,
    decode_to_flow_index,
    flow_frame_path,
    read_flow_frames,
    rgb_to_flow_index,
)
from modalbridge.io.video import probe, read_frames

__all__ = ["PACKED_FILES", "PACKED_AUDIO_RATE", "PackedFolder", "PackedEpic", "PackedSomething", "PackSummary",
           "epic_key", "encode_jpeg", "decode_jpeg", "pack_epic", "pack_something"]

log = logging.getLogger(__name__)

#: modality → file name inside a packed folder.
PACKED_FILES = {"rgb": "rgb.hdf5", "flow": "flow.hdf5", "audio": "audio.hdf5"}
#: sample rate of the packed EPIC audio (the reference's, spec §2.1).
PACKED_AUDIO_RATE = 24000
#: frames decoded and encoded at a time while packing (bounds memory on long full-HD segments).
_CHUNK = 128


def _h5py():
    """The h5py module, or an ImportError saying how to install it."""
    try:
        import h5py
    except ImportError as exc:
        raise ImportError("packed HDF5 files need h5py: pip install 'modalbridge[hdf5]'") from exc
    return h5py


def epic_key(video_id: str, narration_id: str) -> str:
    """HDF5 key of an EPIC-KITCHENS segment: ``"P01_01", "P01_01_0"`` → ``"P01_01/P01_01_0"``."""
    return f"{video_id}/{narration_id}"


# --------------------------------------------------------------------------------------------- JPEG
def encode_jpeg(image: np.ndarray, quality: int = 90, *, full_chroma: bool = False) -> np.ndarray:
    """RGB ``(H, W, 3)`` or grey ``(H, W)`` uint8 → JPEG bytes as a 1-D uint8 array.

    ``full_chroma`` keeps colour at full resolution (4:4:4 instead of 4:2:0), for images whose
    channels are not colours (flow ``(u, v, 0)``).
    """
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    if full_chroma:
        params += [cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]
    array = np.ascontiguousarray(image)
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)  # OpenCV writes BGR
    ok, buffer = cv2.imencode(".jpg", array, params)
    if not ok:
        raise ValueError(f"could not encode a {image.shape} {image.dtype} image as JPEG")
    return buffer.reshape(-1)


def decode_jpeg(buffer: np.ndarray | bytes, *, grey: bool = False) -> np.ndarray | None:
    """JPEG bytes → RGB ``(H, W, 3)`` (or grey ``(H, W)``) uint8; ``None`` when undecodable."""
    data = np.frombuffer(buffer, dtype=np.uint8)
    if data.size == 0:
        return None
    image = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE if grey else cv2.IMREAD_COLOR)
    if image is None or grey:
        return image
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


# --------------------------------------------------------------------------------------------- reading
class _LazyH5:
    """One HDF5 file, opened read-only on first use in each process (the pid is checked, so a handle
    inherited through ``fork`` is never used, and pickling drops it)."""

    def __init__(self, path: Path):
        self.path = path
        self._file = None
        self._pid: int | None = None

    def __getstate__(self) -> dict:
        return {"path": self.path, "_file": None, "_pid": None}

    def dataset(self, key: str):
        """The dataset at ``key``; MediaError naming the file and the key when there is none."""
        if self._file is None or self._pid != os.getpid():
            try:
                self._file = _h5py().File(self.path, "r")
            except OSError as exc:
                raise MediaError(f"cannot open HDF5 file ({exc})", path=self.path) from exc
            self._pid = os.getpid()
        node = self._file.get(key)
        if node is None or not hasattr(node, "dtype"):
            what = "no dataset" if node is None else "a group, not a dataset,"
            raise MediaError(f"{what} at key {key!r} (was this clip packed?)", path=self.path)
        return node

    def jpegs(self, key: str, indices: np.ndarray, *, grey: bool) -> np.ndarray:
        """Decode the JPEG elements ``indices`` ``(T,)`` of dataset ``key`` → ``(T, H, W)`` (grey) or
        ``(T, H, W, 3)`` RGB uint8. Each distinct element is read and decoded once."""
        ds = self.dataset(key)
        if ds.ndim != 1 or not (ds.dtype.kind == "S" or _h5py().check_vlen_dtype(ds.dtype) == np.uint8):
            raise MediaError(f"dataset {key!r} holds {ds.dtype} {ds.shape}; expected a 1-D array of JPEGs "
                             "(variable-length uint8 or fixed-length bytes |S<n>)", path=self.path)
        wanted = np.asarray(indices, dtype=np.int64).reshape(-1)
        bad = wanted[(wanted < 0) | (wanted >= len(ds))]
        if bad.size:
            raise MediaError(f"element {int(bad[0])} of dataset {key!r} is out of range: it holds {len(ds)} "
                             f"elements (0..{len(ds) - 1})", path=self.path)
        unique, inverse = np.unique(wanted, return_inverse=True)
        buffers = ds[unique] if unique.size else []  # h5py reads increasing indices only
        images = []
        for index, buffer in zip(unique.tolist(), buffers):
            image = decode_jpeg(buffer, grey=grey)
            if image is None:
                raise MediaError(f"element {index} of dataset {key!r} is not a decodable JPEG", path=self.path)
            images.append(image)
        if not images:
            return np.empty((0, 0, 0) if grey else (0, 0, 0, 3), dtype=np.uint8)
        if len({image.shape for image in images}) > 1:
            raise MediaError(f"dataset {key!r} mixes JPEG sizes {sorted({i.shape for i in images})}",
                             path=self.path)
        return np.stack(images)[inverse]


class PackedFolder:
    """The packed files present in ``folder`` (``rgb.hdf5``, ``flow.hdf5``, ``audio.hdf5``; any subset,
    at least one). Subclasses say how flow is stored (:attr:`flow_per_frame` elements per RGB frame)."""

    #: flow elements per RGB frame (EPIC: u and v JPEGs; SSv2: one (u, v, 0) JPEG)
    flow_per_frame = 1

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder).expanduser()
        self.files = {m: _LazyH5(self.folder / name) for m, name in PACKED_FILES.items()
                      if (self.folder / name).is_file()}
        if not self.files:
            raise DataError(f"no packed files ({', '.join(PACKED_FILES.values())}) in this folder; write them "
                            "with `modalbridge data pack`", path=self.folder)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.folder)!r}, modalities={sorted(self.files)})"

    def has(self, modality: str) -> bool:
        """Whether the folder holds the file of ``modality`` (``rgb``, ``flow`` or ``audio``)."""
        return modality in self.files

    def _file(self, modality: str) -> _LazyH5:
        if modality not in self.files:
            raise DataError(f"no {PACKED_FILES[modality]} in this packed folder", path=self.folder)
        return self.files[modality]

    def num_frames(self, key: str) -> int:
        """RGB frames packed under ``key`` (from ``rgb.hdf5``, else ``flow.hdf5``)."""
        if self.has("rgb"):
            return len(self._file("rgb").dataset(key))
        return len(self._file("flow").dataset(key)) // self.flow_per_frame

    def read_rgb(self, key: str, offsets) -> torch.Tensor:
        """RGB frames at 0-based ``offsets`` ``(T,)`` of ``key`` → uint8 ``(T, H, W, 3)``, like
        :func:`~modalbridge.io.video.read_frames`."""
        return torch.from_numpy(self._file("rgb").jpegs(key, np.asarray(offsets), grey=False))

    def read_flow(self, key: str, offsets) -> torch.Tensor:
        """Quantised flow at 0-based RGB ``offsets`` ``(T,)`` of ``key`` → uint8 ``(T, H, W, 2)`` (u, v),
        like :func:`~modalbridge.io.flow.read_flow_frames`."""
        raise NotImplementedError

    def read_audio(self, video_id: str, sample_rate: int = 16000) -> torch.Tensor:
        """The whole video's mono waveform resampled to ``sample_rate`` → float32 ``(N,)``, like
        :func:`~modalbridge.io.audio.load_audio` on the video file."""
        h5 = self._file("audio")
        ds = h5.dataset(video_id)
        if ds.ndim != 1 or ds.dtype.kind != "f":
            raise MediaError(f"dataset {video_id!r} holds {ds.dtype} {ds.shape}; expected a 1-D float waveform",
                             path=h5.path)
        if len(ds) == 0:
            raise MediaError(f"dataset {video_id!r} holds no audio samples", path=h5.path)
        stored = int(ds.attrs.get("sample_rate", PACKED_AUDIO_RATE))
        return resample_audio(ds[()], stored, sample_rate)


class PackedEpic(PackedFolder):
    """Reader of a packed EPIC-KITCHENS-100 folder. Keys are :func:`epic_key` ``(video_id, narration_id)``;
    offsets are annotation frame numbers minus the segment's ``start_frame``."""

    flow_per_frame = 2

    def read_flow(self, key: str, offsets) -> torch.Tensor:
        pairs = 2 * np.asarray(offsets, dtype=np.int64).reshape(-1)
        planes = self._file("flow").jpegs(key, np.stack([pairs, pairs + 1], axis=1).reshape(-1), grey=True)
        if planes.shape[0] == 0:
            return torch.empty((0, 0, 0, 2), dtype=torch.uint8)
        t, h, w = len(pairs), *planes.shape[1:]
        return torch.from_numpy(planes.reshape(t, 2, h, w).transpose(0, 2, 3, 1).copy())


class PackedSomething(PackedFolder):
    """Reader of a packed SSv2 / Something-Else folder. Keys are video ids; offsets are decode indices."""

    def read_flow(self, key: str, offsets) -> torch.Tensor:
        images = self._file("flow").jpegs(key, np.asarray(offsets), grey=False)  # (T, H, W, 3) = (u, v, 0)
        return torch.from_numpy(np.ascontiguousarray(images[..., :2]))


# --------------------------------------------------------------------------------------------- writing
@dataclass
class PackSummary:
    """What a packer wrote: ``files`` (modality → path), ``datasets`` (modality → HDF5 datasets),
    ``elements`` (modality → JPEGs or audio samples) and the wall time."""

    files: dict[str, Path] = field(default_factory=dict)
    datasets: dict[str, int] = field(default_factory=dict)
    elements: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


class _PackFile:
    """Writes ``out_dir/<file>`` through ``<file>.partial``, renamed when complete (an interrupted run
    never leaves a file that looks finished)."""

    def __init__(self, out_dir: Path, modality: str, summary: PackSummary, **attrs):
        self.path = out_dir / PACKED_FILES[modality]
        self.partial = self.path.with_name(self.path.name + ".partial")
        self.modality, self.summary, self.attrs = modality, summary, attrs

    def __enter__(self) -> _PackFile:
        self.h5 = _h5py().File(self.partial, "w")
        self.h5.attrs.update({"format": "modalbridge packed v1", **self.attrs})
        self.summary.datasets[self.modality] = self.summary.elements[self.modality] = 0
        return self

    def __exit__(self, kind, exc, tb) -> None:
        self.h5.close()
        if kind is not None:
            self.partial.unlink(missing_ok=True)
            return
        os.replace(self.partial, self.path)
        self.summary.files[self.modality] = self.path

    def jpegs(self, key: str, buffers: list[np.ndarray]) -> None:
        """A 1-D variable-length uint8 dataset of JPEG buffers at ``key``."""
        h5py = _h5py()
        column = np.empty(len(buffers), dtype=object)
        for i, buffer in enumerate(buffers):  # element-wise: numpy would make equal-length buffers 2-D
            column[i] = buffer
        self.h5.create_dataset(key, data=column, dtype=h5py.vlen_dtype(np.uint8))
        self._count(len(buffers))

    def waveform(self, key: str, wave: torch.Tensor, sample_rate: int) -> None:
        ds = self.h5.create_dataset(key, data=np.asarray(wave, dtype=np.float32))
        ds.attrs["sample_rate"] = int(sample_rate)
        self._count(len(wave))

    def _count(self, elements: int) -> None:
        self.summary.datasets[self.modality] += 1
        self.summary.elements[self.modality] += elements


def _encoded_frames(video: Path, indices: np.ndarray, quality: int) -> list[np.ndarray]:
    """JPEGs of the decoded frames ``indices`` of ``video``, decoded ``_CHUNK`` at a time."""
    return [encode_jpeg(frame, quality) for start in range(0, len(indices), _CHUNK)
            for frame in read_frames(video, indices[start:start + _CHUNK]).numpy()]


def _check_modalities(modalities: Iterable[str], allowed: tuple[str, ...]) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(modalities))
    unknown = [m for m in chosen if m not in allowed]
    if unknown or not chosen:
        raise ValueError(f"modalities must be a non-empty subset of {allowed}, got {chosen}")
    return chosen


Progress = Callable[[str, int, int, str], None]
"""``progress(modality, position, total, key)`` after each dataset written; without one, the packers show
progress with :func:`~modalbridge.core.progress.progress` (a bar on a terminal, a few lines otherwise)."""


def _each(items: list, modality: str, key: Callable, progress: Progress | None, unit: str = "video") -> Iterator:
    if progress is None:
        yield from show_progress(items, f"pack {modality}", total=len(items), unit=unit)
        return
    for position, item in enumerate(items, 1):
        yield item
        progress(modality, position, len(items), key(item))


def pack_epic(root_or_dataset: str | os.PathLike | EpicKitchens100, out_dir: str | os.PathLike, *,
              modalities: Iterable[str] = ("rgb", "flow", "audio"), splits: Iterable[str] | None = None,
              segments: Iterable[EpicSegment] | None = None, quality: int = 90,
              progress: Progress | None = None) -> PackSummary:
    """Pack an EPIC-KITCHENS-100 folder (videos, flow JPEG folders) into ``out_dir/{rgb,flow,audio}.hdf5``.

    ``segments`` (default: every segment of ``splits``, by default every split whose annotation CSV is
    present) are packed once each, in natural order of ``(video_id, narration_id)``. RGB frames are
    decoded from the video at the same decode indices as :class:`~modalbridge.datasets.clips.EpicClips` and
    stored as JPEG at ``quality``; flow JPEGs are copied from ``flow_frames/`` unchanged; audio is the
    video's soundtrack at 24 kHz. A missing or unreadable file raises :class:`MediaError` naming it and
    leaves no finished-looking file behind.
    """
    ek = root_or_dataset if isinstance(root_or_dataset, EpicKitchens100) else EpicKitchens100(root_or_dataset)
    modalities = _check_modalities(modalities, ("rgb", "flow", "audio"))
    if segments is None:
        names = list(splits) if splits is not None else [s for s, f in ANNOTATION_FILES.items() if ek.has_file(f)]
        if not names:
            raise DataError(f"no segment CSV ({', '.join(ANNOTATION_FILES.values())}): nothing to pack",
                            path=ek.annotations_root)
        segments = [seg for split in names for seg in ek.segments(split)]
    unique = {seg.narration_id: seg for seg in segments}
    chosen = sorted(unique.values(), key=lambda s: (natural_key(s.video_id), natural_key(s.narration_id)))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = PackSummary()
    started = time.perf_counter()

    def key_of(seg: EpicSegment) -> str:
        return epic_key(seg.video_id, seg.narration_id)

    if "rgb" in modalities:
        with _PackFile(out, "rgb", summary, dataset="epic-kitchens-100", quality=int(quality)) as pack:
            for seg in _each(chosen, "rgb", key_of, progress, "segment"):
                _, decode = ek.frame_times(seg.video_id, np.arange(seg.start_frame, seg.stop_frame + 1))
                pack.jpegs(key_of(seg), _encoded_frames(ek.video_path(seg.video_id), decode, quality))
    if "flow" in modalities:
        with _PackFile(out, "flow", summary, dataset="epic-kitchens-100") as pack:
            for seg in _each(chosen, "flow", key_of, progress, "segment"):
                pack.jpegs(key_of(seg), _epic_flow_jpegs(ek.flow_dir(seg.video_id), seg))
    if "audio" in modalities:
        videos = sorted({seg.video_id for seg in chosen}, key=natural_key)
        with _PackFile(out, "audio", summary, dataset="epic-kitchens-100") as pack:
            for video_id in _each(videos, "audio", str, progress):
                wave = load_audio(ek.video_path(video_id), PACKED_AUDIO_RATE)
                pack.waveform(video_id, wave, PACKED_AUDIO_RATE)
    summary.seconds = time.perf_counter() - started
    return summary


def _epic_flow_jpegs(flow_dir: Path, seg: EpicSegment) -> list[np.ndarray]:
    """``[u0, v0, u1, v1, …]``: the release's JPEG bytes of flow frame ``ceil((start_frame + k) / 2)``."""
    flow_indices = rgb_to_flow_index(np.arange(seg.start_frame, seg.stop_frame + 1))
    files: dict[Path, np.ndarray] = {}  # RGB frames 2j-1 and 2j share flow frame j: read each file once
    out = []
    for index in flow_indices.tolist():
        for component in ("u", "v"):
            path = flow_frame_path(flow_dir, component, index)
            if path not in files:
                try:
                    files[path] = np.frombuffer(path.read_bytes(), dtype=np.uint8)
                except FileNotFoundError:
                    raise MediaError(f"missing flow frame (segment {seg.narration_id})", path=path) from None
            out.append(files[path])
    return out


def pack_something(root_or_dataset: str | os.PathLike | SomethingSomething, out_dir: str | os.PathLike, *,
                   variant: str = "ssv2", modalities: Iterable[str] = ("rgb",), splits: Iterable[str] | None = None,
                   videos: Iterable[SomethingVideo] | None = None, flow_root: str | os.PathLike | None = None,
                   quality: int = 90, progress: Progress | None = None) -> PackSummary:
    """Pack SSv2 / Something-Else videos into ``out_dir/rgb.hdf5`` (and ``flow.hdf5`` with ``"flow"``).

    ``videos`` (default: every video of ``splits``, by default every split whose list is present) are packed
    once each, in natural order of their ids. RGB: every frame the header announces
    (:func:`~modalbridge.io.video.probe`), decoded as :class:`~modalbridge.datasets.clips.SomethingClips` does,
    JPEG at ``quality``. Flow: the stride-1 folder ``flow_root/<id>`` (``modalbridge data flow``), one
    ``(u, v, 0)`` JPEG per RGB frame. Something-Else shares SSv2's videos, so one pack serves both.
    """
    ss = root_or_dataset if isinstance(root_or_dataset, SomethingSomething) else SomethingSomething(
        root_or_dataset, variant=variant, flow_root=flow_root)
    modalities = _check_modalities(modalities, ("rgb", "flow"))
    if videos is None:
        names = list(splits) if splits is not None else [s for s in ss.splits if ss.split_path(s).is_file()]
        videos = [v for split in names for v in ss.videos(split)]
    ids = sorted({v.id for v in videos}, key=natural_key)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = PackSummary()
    started = time.perf_counter()
    lengths: dict[str, int] = {}

    def length(video_id: str) -> int:  # RGB frames = the header's count, as SomethingClips samples them
        if video_id not in lengths:
            lengths[video_id] = probe(ss.video_path(video_id)).num_frames
        return lengths[video_id]

    if "rgb" in modalities:
        with _PackFile(out, "rgb", summary, dataset=ss.variant, quality=int(quality)) as pack:
            for video_id in _each(ids, "rgb", str, progress):
                indices = np.arange(length(video_id))
                pack.jpegs(video_id, _encoded_frames(ss.video_path(video_id), indices, quality))
    if "flow" in modalities:
        with _PackFile(out, "flow", summary, dataset=ss.variant, quality=int(quality)) as pack:
            for video_id in _each(ids, "flow", str, progress):
                pack.jpegs(video_id, _something_flow_jpegs(ss.flow_dir(video_id), length(video_id), quality))
    summary.seconds = time.perf_counter() - started
    return summary


def _something_flow_jpegs(flow_dir: Path, num_frames: int, quality: int) -> list[np.ndarray]:
    """One ``(u, v, 0)`` JPEG per RGB frame ``0 … num_frames - 1`` of a stride-1 flow folder."""
    indices = decode_to_flow_index(np.arange(num_frames), count_flow_frames(flow_dir))
    out = []
    for start in range(0, num_frames, _CHUNK):
        uv = read_flow_frames(flow_dir, indices[start:start + _CHUNK]).numpy()  # (t, H, W, 2)
        uv0 = np.concatenate([uv, np.zeros_like(uv[..., :1])], axis=-1)
        out.extend(encode_jpeg(image, quality, full_chroma=True) for image in uv0)
    return out
