"""Multimodal clip datasets over the real formats: one sample = the same sampled time steps seen
through several modalities, with one augmentation draw shared by the spatial ones.

Modalities (keys of a sample):

* ``rgb``   — float ``(3, T, S, S)``: decoded with PyAV, :class:`~modalbridge.io.transforms.ClipTransform`.
* ``flow``  — float ``(3, T, S, S)``: u/v JPEGs, the SAME time steps and resize/crop/flip as ``rgb``
  (u negated on flips), third channel zero. EK: flow frame ``ceil(i/2)`` of RGB frame ``i`` (1-based);
  SSv2 / Something-Else: flow frame ``i + 1`` of decode index ``i`` (stride-1 layout, :mod:`modalbridge.io.flow`).
* ``audio`` — float ``(3, T, A, A)``: a log-mel window (1.116 s) centred on each sampled frame's time.
* ``text``  — the narration (EK) or the label with object names (SSv2), a ``str``.

With ``packed=<folder>`` the modalities whose file is in the folder (``rgb.hdf5``, ``flow.hdf5``,
``audio.hdf5``; :mod:`modalbridge.datasets.packed`) are read from it at the same time steps, the others from the
raw layout; samples have the same shapes, dtypes and value ranges either way.

plus labels (``verb``/``noun`` or ``action``) and ``index`` (position in the split). A sample whose
media cannot be read raises :class:`~modalbridge.core.errors.DataError` (``on_error="raise"``) or is
logged and returned as ``None`` (``on_error="skip"``; :func:`~modalbridge.core.data.collate_skipping`
counts it). Augmentation draws are a function of ``(seed, epoch, index)``: a sampler passes the epoch
encoded in the index (``epoch * len(dataset) + index``, see :class:`~modalbridge.core.data.EpochSampler`).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from modalbridge.core.errors import DataError
from modalbridge.datasets.epic_kitchens import EpicKitchens100, EpicSegment
from modalbridge.datasets.packed import PackedEpic, PackedFolder, PackedSomething, epic_key
from modalbridge.datasets.something import SomethingSomething, SomethingVideo
from modalbridge.io.audio import load_audio, spectrogram_windows
from modalbridge.io.flow import FlowFrameCounts, decode_to_flow_index, read_flow_frames, rgb_to_flow_index
from modalbridge.io.samplers import ek_clip_indices, tsn_indices
from modalbridge.io.transforms import ClipTransform, apply_flow
from modalbridge.io.video import probe, read_frames

log = logging.getLogger(__name__)

MODALITIES = ("rgb", "flow", "audio", "text")
ON_ERROR = ("raise", "skip")


class _AudioCache:
    """Small per-process LRU of decoded waveforms (one entry per video)."""

    def __init__(self, size: int = 8):
        self.size, self._items = size, OrderedDict()

    def get(self, source: Path | str, sample_rate: int, load=load_audio) -> torch.Tensor:
        """``load(source, sample_rate)`` (a video file, or a packed video id), remembered."""
        key = (str(source), sample_rate)
        if key in self._items:
            self._items.move_to_end(key)
        else:
            self._items[key] = load(source, sample_rate)
            if len(self._items) > self.size:
                self._items.popitem(last=False)
        return self._items[key]


class ClipDataset(Dataset):
    """Base class: subclasses implement ``_locate(index, rng)`` returning a :class:`ClipRef`-like dict
    ``{"video": Path, "frames": 0-based decode indices (T,), "times": seconds (T,) (``None`` allowed
    without audio), "flow_dir": Path|None, "flow_frames": 1-based flow indices (T,) | None, "text": str,
    "labels": {head: int}}``, plus, when ``self.packed`` is set, ``"packed_key"`` (HDF5 key of the clip),
    ``"packed_offsets"`` (0-based element indices (T,)) and ``"audio_key"`` (the packed audio's key).
    Raw-only entries may be ``None`` for modalities the packed folder serves."""

    packed: PackedFolder | None = None

    #: the shuffled loader passes ``epoch * len(self) + index`` (see core.data.EpochSampler)
    epoch_indexed = True

    def __init__(self, *, modalities: tuple[str, ...] = ("rgb",), size: int = 224, train: bool,
                 scale_range: tuple[float, float] = (1.15, 1.43), flip: bool = False, color_jitter: bool = True,
                 audio_size: int = 224, audio_rate: int = 16000, flow_bound: float = 20.0, seed: int = 0,
                 on_error: str = "raise"):
        unknown = set(modalities) - set(MODALITIES)
        if unknown:
            raise ValueError(f"unknown modalities {sorted(unknown)}; choose from {MODALITIES}")
        if on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
        self.modalities, self.train, self.seed, self.on_error = tuple(modalities), train, seed, on_error
        self.transform = ClipTransform(size, train=train, scale_range=tuple(scale_range), flip=flip,
                                       color_jitter=color_jitter)
        self.audio_size, self.audio_rate, self.flow_bound = audio_size, audio_rate, flow_bound
        self._audio = _AudioCache()

    def rng(self, index: int, epoch: int = 0) -> np.random.Generator:
        return np.random.default_rng([self.seed, epoch if self.train else 0, index])

    def clip_id(self, index: int) -> str:
        """The dataset's own name of clip ``index`` (EK ``narration_id``, SSv2 video id): what keys cached
        teacher logits, so a cache written over a whole split serves any subset of it."""
        raise NotImplementedError

    def clip_ids(self) -> list[str]:
        return [self.clip_id(i) for i in range(len(self))]

    def _locate(self, index: int, rng: np.random.Generator) -> dict[str, Any]:
        raise NotImplementedError

    def from_packed(self, modality: str) -> bool:
        """Whether ``modality`` is requested and read from the packed folder."""
        return modality in self.modalities and self.packed is not None and self.packed.has(modality)

    def raw_modalities(self) -> set[str]:
        """Requested media modalities read from the raw layout (not from the packed folder)."""
        return {m for m in ("rgb", "flow", "audio") if m in self.modalities and not self.from_packed(m)}

    def __getitem__(self, index: int) -> dict[str, Any] | None:
        # an EpochSampler(encode_epoch=True) passes epoch * len(self) + index
        epoch, index = divmod(int(index), len(self))
        rng = self.rng(index, epoch)
        try:
            return self._load(index, self._locate(index, rng), rng)
        except (DataError, OSError) as exc:
            if self.on_error == "raise":
                raise
            log.warning("skipping sample %d: %s", index, exc)
            return None

    def _load(self, index: int, ref: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        sample: dict[str, Any] = {"index": index, "clip_id": self.clip_id(index), **ref["labels"]}
        params = None
        if "rgb" in self.modalities:
            video = self._read_rgb(ref)  # (T, H, W, 3) uint8
            params = self.transform.sample_params(int(video.shape[1]), int(video.shape[2]), rng)
            sample["rgb"] = self.transform(video, params)
        if "flow" in self.modalities:
            flow = self._read_flow(ref)  # (T, H, W, 2) uint8
            if params is None:
                params = self.transform.sample_params(int(flow.shape[1]), int(flow.shape[2]), rng)
            sample["flow"] = apply_flow(flow, params, bound=self.flow_bound)
        if "audio" in self.modalities:
            spec = spectrogram_windows(self._read_audio(ref), self.audio_rate, torch.as_tensor(ref["times"]),
                                       size=self.audio_size)
            sample["audio"] = spec.permute(1, 0, 2, 3).contiguous()  # (3, T, A, A)
        if "text" in self.modalities:
            sample["text"] = ref["text"]
        return sample

    def _read_rgb(self, ref: dict[str, Any]) -> torch.Tensor:
        """uint8 ``(T, H, W, 3)``: packed JPEGs, or frames decoded from the video."""
        if self.from_packed("rgb"):
            return self.packed.read_rgb(ref["packed_key"], ref["packed_offsets"])
        return read_frames(ref["video"], ref["frames"])

    def _read_flow(self, ref: dict[str, Any]) -> torch.Tensor:
        """uint8 ``(T, H, W, 2)`` quantised (u, v): packed, or the raw u/v JPEG folders."""
        if self.from_packed("flow"):
            return self.packed.read_flow(ref["packed_key"], ref["packed_offsets"])
        if ref.get("flow_dir") is None:
            raise DataError("this dataset has no optical flow frames", path=ref["video"])
        return read_flow_frames(ref["flow_dir"], ref["flow_frames"])

    def _read_audio(self, ref: dict[str, Any]) -> torch.Tensor:
        """The whole video's mono waveform at ``audio_rate``, float32 ``(N,)`` (cached per video)."""
        if self.from_packed("audio"):
            return self._audio.get(ref["audio_key"], self.audio_rate, self.packed.read_audio)
        return self._audio.get(ref["video"], self.audio_rate)


class EpicClips(ClipDataset):
    """EPIC-KITCHENS-100 segments: ``num_frames`` frames ``stride`` apart inside [start_frame, stop_frame]
    (train: random offset; eval: centred). Annotation frame numbers are converted to decode indices of
    the video file with the video's native fps (EK-55 numbering runs at 60 fps, see
    :meth:`EpicKitchens100.frame_rate`). ``packed``: a folder written by
    :func:`~modalbridge.datasets.packed.pack_epic`; its modalities are read at element ``frame - start_frame``
    and the video is opened only for modalities it lacks."""

    def __init__(self, dataset: EpicKitchens100, segments: list[EpicSegment], *, num_frames: int = 32,
                 stride: int = 2, packed: str | Path | None = None, **kwargs):
        super().__init__(**kwargs)
        self.ek, self.segments, self.num_frames, self.stride = dataset, segments, num_frames, stride
        self.packed = PackedEpic(packed) if packed is not None else None

    def __len__(self) -> int:
        return len(self.segments)

    def clip_id(self, index: int) -> str:
        return self.segments[index].narration_id

    def _locate(self, index, rng):
        seg = self.segments[index]
        offsets = ek_clip_indices(seg.num_frames, self.num_frames, self.stride, train=self.train,
                                  rng=rng if self.train else None)
        frames = seg.start_frame + offsets  # 1-based annotation frame numbers
        raw = self.raw_modalities()
        need_times = "audio" in self.modalities or "rgb" in raw
        times, decode = self.ek.frame_times(seg.video_id, frames) if need_times else (None, None)
        need_video = bool({"rgb", "audio"} & raw)
        return {
            "video": self.ek.video_path(seg.video_id) if need_video else self.ek.flow_dir(seg.video_id),
            "frames": decode,
            "times": times,
            "flow_dir": self.ek.flow_dir(seg.video_id) if "flow" in raw else None,
            "flow_frames": rgb_to_flow_index(frames),
            "packed_key": epic_key(seg.video_id, seg.narration_id),
            "packed_offsets": offsets,
            "audio_key": seg.video_id,
            "text": seg.narration,
            "labels": {"verb": seg.verb_class, "noun": seg.noun_class},
        }


class SomethingClips(ClipDataset):
    """SSv2 / Something-Else videos: ``num_segments`` TSN segments over the whole video (no flips:
    left/right classes). ``text`` is the label with the object names filled in.

    ``flow`` reads ``dataset.flow_dir(id)`` (stride-1 layout: decode index ``i`` → flow frame ``i + 1``,
    clamped to the folder's last frame) at the RGB time steps with the RGB crop. The TSN segments span
    the video header's frame count, except when ``flow`` is requested without ``rgb``/``audio``: then
    they span the flow folder's frame count and the video file is never opened (the two counts agree
    for folders written by ``modalbridge data flow``, so flow-only teachers see the same time steps).

    ``packed``: a folder written by :func:`~modalbridge.datasets.packed.pack_something`; its modalities are read
    at element = decode index, the segments span its frame count (the header's, as packed), and the video
    is opened only for modalities it lacks."""

    def __init__(self, dataset: SomethingSomething, videos: list[SomethingVideo], *, num_segments: int = 16,
                 packed: str | Path | None = None, **kwargs):
        kwargs["flip"] = False
        super().__init__(**kwargs)
        self.ss, self.videos, self.num_segments = dataset, videos, num_segments
        self.packed = PackedSomething(packed) if packed is not None else None
        self._lengths: dict[str, tuple[int, float]] = {}
        self._flow_length = FlowFrameCounts()
        raw = self.raw_modalities()
        # where the clip length comes from: the packed file, else the video header, else the flow folder
        self.length_from_packed = self.from_packed("rgb") or self.from_packed("flow")
        self.reads_video = bool({"rgb", "audio"} & raw) or not (self.length_from_packed or "flow" in raw)

    def __len__(self) -> int:
        return len(self.videos)

    def clip_id(self, index: int) -> str:
        return self.videos[index].id

    def _info(self, path: Path) -> tuple[int, float]:
        key = str(path)
        if key not in self._lengths:
            info = probe(path)
            self._lengths[key] = (info.num_frames, info.fps)
        return self._lengths[key]

    def _locate(self, index, rng):
        video = self.videos[index]
        flow_dir = self.ss.flow_dir(video.id) if "flow" in self.raw_modalities() else None
        if self.reads_video:
            path = self.ss.video_path(video.id)
            length, fps = self._info(path)
        else:  # no video opened: the flow folder (or the packed file, below) gives the length
            path, length, fps = flow_dir, None, None
        if self.length_from_packed:
            length = self.packed.num_frames(video.id)
        elif length is None:
            length = self._flow_length(flow_dir)
        frames = tsn_indices(length, self.num_segments, train=self.train, rng=rng if self.train else None)
        flow_frames = decode_to_flow_index(frames, self._flow_length(flow_dir)) if flow_dir is not None else None
        times = frames / fps if fps is not None else None  # seconds, only needed by audio
        return {"video": path, "frames": frames, "times": times, "flow_dir": flow_dir, "flow_frames": flow_frames,
                "packed_key": video.id, "packed_offsets": frames, "audio_key": video.id,
                "text": video.label, "labels": {"action": video.class_id}}
