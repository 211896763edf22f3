"""Layout tensors for STLT and its fusions (``spec/layout_fusion.md`` §2.7, §4): id tables, the
tensoriser, the padding collate and the :class:`LayoutClips` dataset.

One clip's layout of ``n`` sampled frames becomes ``n + 1`` frames of ``M = max_objects + 1`` slots:

* slot 0 of every frame is the frame's class object (category ``cls``, box ``[0, 0, 1, 1]``, score 1);
* then the frame's objects whose score is ``>= score_threshold`` (boxes cleaned by
  :func:`~modalbridge.datasets.boxes.clean_boxes` and divided by ``[W, H, W, H]``), then padding
  (category 0, box 0, score 0);
* a frame whose raw object list is empty (before the score filter) has type ``empty``, others
  ``regular``; the ``n + 1``-th frame is the ``extract`` frame (class object only).

:func:`collate_layouts` pads the frame axis to the longest clip with frames of type ``pad`` whose slot 0
is still a class object (so no attention row is fully masked); the masks are ``categories == 0``
(objects) and ``frame_types == 0`` (frames). The batch keys are listed in
:mod:`modalbridge.tasks.layouts`.

Layouts are encoded once per split into flat numpy arrays (all kept boxes of all videos, cleaned and
normalised in one vectorised pass), so a layout-only sample is a few array gathers and never touches a
video file.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from modalbridge.core.errors import DataError
from modalbridge.datasets.boxes import VideoLayout, clean_boxes, coarse_category
from modalbridge.io.flow import FlowFrameCounts, decode_to_flow_index, read_flow_frames
from modalbridge.io.samplers import appearance_indices, layout_indices
from modalbridge.io.transforms import ClipParams, ClipTransform, apply_flow, resized_size
from modalbridge.io.video import probe, read_frames

log = logging.getLogger(__name__)

__all__ = ["ACTION_GENOME", "AG_CATEGORIES", "AG_FRAME_TYPES", "AG_OBJECT_CLASSES", "LAYOUT_MODALITIES",
           "LayoutClips", "LayoutScheme", "LayoutTensoriser", "SSV2", "SSV2_CATEGORIES", "SSV2_FRAME_TYPES",
           "collate_layouts", "tensorise_layout"]

#: Something-Something / Something-Else category ids (§2.7).
SSV2_CATEGORIES: dict[str, int] = {"pad": 0, "hand": 1, "object": 2, "cls": 3}
#: Something-Something / Something-Else frame types (``start`` is defined but never produced).
SSV2_FRAME_TYPES: dict[str, int] = {"pad": 0, "start": 1, "regular": 2, "empty": 3, "extract": 4}
#: The 35 Action Genome object classes in the order of their ids 2..36 (§2.6); ``person`` is 37.
AG_OBJECT_CLASSES: tuple[str, ...] = (
    "chair", "book", "medicine", "vacuum", "food", "groceries", "floor", "mirror", "closet/cabinet", "doorway",
    "paper/notebook", "picture", "phone/camera", "sofa/couch", "sandwich", "cup/glass/bottle", "towel", "box",
    "blanket", "television", "bag", "refrigerator", "table", "light", "broom", "shoe", "doorknob", "bed",
    "window", "shelf", "door", "pillow", "laptop", "dish", "clothes")
#: Action Genome category ids: pad 0, cls 1, objects 2..36, person 37 (38 ids).
AG_CATEGORIES: dict[str, int] = {"pad": 0, "cls": 1, **{name: i + 2 for i, name in enumerate(AG_OBJECT_CLASSES)},
                                 "person": 37}
#: Action Genome frame types.
AG_FRAME_TYPES: dict[str, int] = {"pad": 0, "regular": 1, "extract": 2, "empty": 3}

LAYOUT_MODALITIES = ("layout", "rgb", "flow", "frames")
ON_ERROR = ("raise", "skip")
#: appearance recipe (§4): short side resized to ⌊size · 1.15⌋ in training and evaluation
RESIZE_SCALE = 1.15
MEAN_STD = (0.5, 0.5, 0.5)


def _squash(name: str) -> str:
    """Lookup key tolerant to case, spaces and the slash spelling of AG classes ("closetcabinet")."""
    return "".join(ch for ch in name.lower() if ch.isalnum())


@dataclass(frozen=True)
class LayoutScheme:
    """A dataset's category and frame-type id tables.

    ``coarse``: unknown category names fall back to :func:`~modalbridge.datasets.boxes.coarse_category`
    (hand/object, Something-Else); otherwise an unknown name is a :class:`DataError`.
    ``use_scores``: whether models should feed detector scores (a score embedding; AG only).
    """

    name: str
    categories: Mapping[str, int]
    frame_types: Mapping[str, int]
    coarse: bool = False
    use_scores: bool = False
    _lookup: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        lookup = {_squash(k): v for k, v in self.categories.items() if k not in ("pad", "cls")}
        object.__setattr__(self, "_lookup", lookup)

    @property
    def cls(self) -> int:
        return self.categories["cls"]

    @property
    def num_categories(self) -> int:
        """Rows of a category embedding table (max id + 1)."""
        return max(self.categories.values()) + 1

    @property
    def num_frame_types(self) -> int:
        """Rows of a frame-type embedding table (max id + 1)."""
        return max(self.frame_types.values()) + 1

    def category_id(self, name: str) -> int | None:
        """Id of a category name (``None`` when unknown and the scheme is not coarse)."""
        found = self._lookup.get(_squash(name))
        if found is None and self.coarse:
            found = self.categories[coarse_category(name)]
        return found


SSV2 = LayoutScheme("something", SSV2_CATEGORIES, SSV2_FRAME_TYPES, coarse=True, use_scores=False)
ACTION_GENOME = LayoutScheme("action_genome", AG_CATEGORIES, AG_FRAME_TYPES, coarse=False, use_scores=True)


# --------------------------------------------------------------------------------------------- tensoriser
class LayoutTensoriser:
    """The layouts of one split, encoded once into flat arrays; ``self(video, indices)`` builds a sample.

    Args:
        layouts: the split's videos; each needs ``size = (W, H)`` and at least one frame.
        scheme: :data:`SSV2` or :data:`ACTION_GENOME`.
        score_threshold: objects with ``score >= score_threshold`` are kept.
        max_objects: slots per frame minus one; ``None`` scans the split (max kept objects in a frame, the
            reference behaviour). A smaller value than the scan keeps each frame's first objects (logged).
    """

    def __init__(self, layouts: Sequence[VideoLayout], scheme: LayoutScheme = SSV2, *,
                 score_threshold: float = 0.5, max_objects: int | None = None):
        self.scheme, self.score_threshold = scheme, float(score_threshold)
        self.ids = [layout.id for layout in layouts]
        frames_per_video = np.array([len(layout.frames) for layout in layouts], dtype=np.int64)
        for layout, count in zip(layouts, frames_per_video):
            if count == 0:
                raise DataError("layout has no frames", field=layout.id)
            if layout.size is None:
                raise DataError("unknown frame size (no entry in videoid2size.json?)", field=layout.id)
        self.video_start = np.concatenate([[0], np.cumsum(frames_per_video)])
        coords, names, scores, raw_counts, sizes = _flatten(layouts)
        frame_of = np.repeat(np.arange(len(raw_counts)), raw_counts)
        self.frame_empty = raw_counts == 0
        keep = scores >= self.score_threshold
        kept_counts = np.bincount(frame_of[keep], minlength=len(raw_counts))
        self.frame_start = np.concatenate([[0], np.cumsum(kept_counts)]).astype(np.int64)
        self.scanned_max_objects = int(kept_counts.max()) if len(kept_counts) else 0
        if max_objects is None:
            max_objects = self.scanned_max_objects
        elif max_objects < self.scanned_max_objects:
            log.warning("max_objects=%d but a frame has %d objects above the score threshold; keeping the "
                        "first %d of such frames", max_objects, self.scanned_max_objects, max_objects)
        if max_objects < 0:
            raise ValueError(f"max_objects must be >= 0, got {max_objects}")
        self.max_objects = int(max_objects)

        categories = self._category_ids(names, frame_of)
        box_sizes = np.repeat(sizes, frames_per_video, axis=0)[frame_of]  # (K, 2) = (W, H) per box
        kept_sizes = box_sizes[keep]
        try:
            cleaned = clean_boxes(coords[keep], kept_sizes[:, 0], kept_sizes[:, 1])
        except ValueError as exc:
            raise DataError(str(exc)) from None
        boxes = (cleaned / np.concatenate([kept_sizes, kept_sizes], axis=1)).astype(np.float32)
        # one dummy row at the end so gathers stay valid when a split has no objects at all
        self.boxes = np.concatenate([boxes, np.zeros((1, 4), np.float32)])
        self.categories = np.concatenate([categories[keep], [0]]).astype(np.int64)
        self.scores = np.concatenate([scores[keep], [0.0]]).astype(np.float32)

    def _category_ids(self, names: list[str], frame_of: np.ndarray) -> np.ndarray:
        table: dict[str, int] = {}
        ids = np.empty(len(names), dtype=np.int64)
        for k, name in enumerate(names):
            found = table.get(name)
            if found is None:
                found = self.scheme.category_id(name)
                if found is None:
                    video = int(np.searchsorted(self.video_start, frame_of[k], side="right") - 1)
                    frame = int(frame_of[k] - self.video_start[video])
                    raise DataError(f"unknown {self.scheme.name} category {name!r}",
                                    field=f"{self.ids[video]}.frames[{frame}]")
                table[name] = found
            ids[k] = found
        return ids

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def slots(self) -> int:
        """``M = max_objects + 1``."""
        return self.max_objects + 1

    def num_frames(self, video: int) -> int:
        """Length of video ``video``'s annotation list."""
        return int(self.video_start[video + 1] - self.video_start[video])

    def __call__(self, video: int, indices: Sequence[int] | np.ndarray) -> dict[str, Any]:
        """Tensors of video ``video`` at frame ``indices`` (n,): ``categories`` (n+1, M) int64, ``boxes``
        (n+1, M, 4) float32, ``scores`` (n+1, M) float32, ``frame_types`` (n+1,) int64, ``length`` n+1."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        count = self.num_frames(video)
        if idx.size and (idx.min() < 0 or idx.max() >= count):
            raise IndexError(f"frame indices must lie in [0, {count}), got {idx.min()}..{idx.max()}")
        rows = idx + self.video_start[video]
        n, m = len(idx), self.slots
        starts = self.frame_start[rows]
        counts = np.minimum(self.frame_start[rows + 1] - starts, m - 1)
        valid = np.arange(m - 1)[None, :] < counts[:, None]  # (n, M-1)
        src = np.where(valid, starts[:, None] + np.arange(m - 1)[None, :], len(self.categories) - 1)
        categories = np.zeros((n + 1, m), np.int64)
        categories[:, 0] = self.scheme.cls
        categories[:n, 1:] = self.categories[src]  # the dummy row is all zeros
        boxes = np.zeros((n + 1, m, 4), np.float32)
        boxes[:, 0] = (0.0, 0.0, 1.0, 1.0)
        boxes[:n, 1:] = self.boxes[src]
        scores = np.zeros((n + 1, m), np.float32)
        scores[:, 0] = 1.0
        scores[:n, 1:] = self.scores[src]
        types = self.scheme.frame_types
        frame_types = np.where(self.frame_empty[rows], types["empty"], types["regular"]).astype(np.int64)
        frame_types = np.append(frame_types, types["extract"])
        return {"categories": categories, "boxes": boxes, "scores": scores, "frame_types": frame_types,
                "length": n + 1}


def _flatten(layouts: Sequence[VideoLayout]) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray, np.ndarray]:
    """All boxes of all frames: coords (K, 4) float64, names [K], scores (K,), objects per frame (F,),
    frame sizes per video (V, 2) int64."""
    coords: list[tuple[float, float, float, float]] = []
    names: list[str] = []
    scores: list[float] = []
    raw_counts: list[int] = []
    for layout in layouts:
        for frame in layout.frames:
            raw_counts.append(len(frame))
            for box in frame:
                coords.append((box.x1, box.y1, box.x2, box.y2))
                names.append(box.category)
                scores.append(box.score)
    sizes = np.array([layout.size for layout in layouts], dtype=np.int64).reshape(-1, 2)
    return (np.asarray(coords, dtype=np.float64).reshape(-1, 4), names, np.asarray(scores, dtype=np.float64),
            np.asarray(raw_counts, dtype=np.int64), sizes)


def tensorise_layout(layout: VideoLayout, indices: Sequence[int] | np.ndarray, scheme: LayoutScheme = SSV2, *,
                     score_threshold: float = 0.5, max_objects: int | None = None) -> dict[str, Any]:
    """One video's tensors at frame ``indices`` (see :meth:`LayoutTensoriser.__call__`); ``max_objects``
    defaults to this video's own maximum."""
    tensoriser = LayoutTensoriser([layout], scheme, score_threshold=score_threshold, max_objects=max_objects)
    return tensoriser(0, indices)


# --------------------------------------------------------------------------------------------- collate
def collate_layouts(samples: Sequence[dict[str, Any] | None]) -> dict[str, Any]:
    """Pad and stack samples (``None`` = skipped, counted in ``batch["skipped"]``).

    Frames past a clip's length become ``pad`` frames (type 0) holding only a class object (slot 0
    copied from the clip's own slot 0, box ``[0, 0, 1, 1]``, score 1); the slot axis is padded to the
    widest clip with category 0. ``frames`` (T, 3, S, S) is zero-padded on the frame axis. Labels: ints →
    (B,) int64, arrays → (B, C) float32. ``rgb``/``flow`` appearance clips are stacked to (B, 3, T, S, S).
    """
    kept = [s for s in samples if s is not None]
    batch: dict[str, Any] = {"skipped": len(samples) - len(kept)}
    if not kept:
        return batch
    first = kept[0]
    if "categories" in first:
        batch.update(_pad_layouts(kept))
    for key in ("rgb", "flow"):
        if key in first:
            batch[key] = torch.stack([torch.as_tensor(s[key]) for s in kept])
    if "frames" in first:
        frames = [torch.as_tensor(s["frames"]) for s in kept]
        out = frames[0].new_zeros((len(kept), max(f.shape[0] for f in frames), *frames[0].shape[1:]))
        for b, f in enumerate(frames):
            out[b, : f.shape[0]] = f
        batch["frames"] = out
    for key, value in first.items():
        if key in batch or key in ("categories", "boxes", "scores", "frame_types", "length"):
            continue
        values = [s[key] for s in kept]
        if isinstance(value, str):
            batch[key] = values
        elif isinstance(value, int | np.integer):
            batch[key] = torch.as_tensor(np.asarray(values, dtype=np.int64))
        else:
            batch[key] = torch.as_tensor(np.stack([np.asarray(v, dtype=np.float32) for v in values]))
    return batch


def _pad_layouts(samples: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
    lengths = np.array([s["length"] for s in samples], dtype=np.int64)
    b, t = len(samples), int(lengths.max())
    m = max(s["categories"].shape[1] for s in samples)
    categories = np.zeros((b, t, m), np.int64)
    boxes = np.zeros((b, t, m, 4), np.float32)
    scores = np.zeros((b, t, m), np.float32)
    frame_types = np.zeros((b, t), np.int64)
    boxes[:, :, 0] = (0.0, 0.0, 1.0, 1.0)
    scores[:, :, 0] = 1.0
    for i, s in enumerate(samples):
        n, w = s["categories"].shape
        categories[i, :, 0] = s["categories"][0, 0]  # the class object, also in pad frames
        categories[i, :n, :w] = s["categories"]
        boxes[i, :n, :w] = s["boxes"]
        scores[i, :n, :w] = s["scores"]
        frame_types[i, :n] = s["frame_types"]
    return {"categories": torch.from_numpy(categories), "boxes": torch.from_numpy(boxes),
            "scores": torch.from_numpy(scores), "frame_types": torch.from_numpy(frame_types),
            "lengths": torch.from_numpy(lengths)}


# --------------------------------------------------------------------------------------------- dataset
def centre_params(height: int, width: int, size: int, short: int) -> ClipParams:
    """Evaluation view: short side resized to ``short``, centre ``size × size`` crop (torchvision rounding)."""
    rh, rw = resized_size(height, width, short)
    top, left = int(round((rh - size) / 2.0)), int(round((rw - size) / 2.0))
    return ClipParams(scale=short / size, resized=(rh, rw), crop=(top, left, size, size))


class LayoutClips(Dataset):
    """Layout clips of one split, optionally with appearance.

    ``items``: ``(VideoLayout, label)`` pairs; the label is a class index (int) or a multi-hot vector.
    A sample holds the tensoriser output at ``layout_indices`` over the annotation list (training:
    segment sampling seeded by ``(seed, epoch, index)``; evaluation: deterministic), ``label_key`` → the
    label, ``index`` and ``video_id``; with ``"rgb"`` in ``modalities`` the appearance clip
    ``(3, appearance_frames, size, size)`` at :func:`~modalbridge.io.samplers.appearance_indices` over the
    decoded frames; with ``"flow"`` the optical flow of the same appearance frames, ``(3, appearance_frames,
    size, size)`` with channels (u, v, 0) in [-1, 1] (:func:`~modalbridge.io.transforms.apply_flow`; stride-1
    folders from ``flow_dir(video_id)``: decoded frame ``i`` → flow frame ``i + 1``); with ``"frames"`` the
    RGB frames at the layout indices ``(n + 1, 3, size, size)`` (layout frame ``i`` = decoded frame ``i``;
    the extract frame is zeros). Augmentation (§4): short side ``⌊size · 1.15⌋``, one random crop and one
    colour jitter per clip (train), centre crop (eval), mean/std 0.5, no flip; ``rgb``, ``flow`` and
    ``frames`` share the draw (colour jitter does not apply to flow). Without ``"rgb"``/``"frames"`` no
    video file is ever opened: flow alone takes the appearance frames over the flow folder's frame count.
    Unreadable media: :class:`DataError`, or ``None`` with ``on_error="skip"``.

    Indices ``epoch * len(self) + index`` (from :class:`~modalbridge.core.data.EpochSampler`) select the
    epoch of the training draws.
    """

    #: the shuffled loader passes ``epoch * len(self) + index`` (see core.data.EpochSampler)
    epoch_indexed = True

    def __init__(self, items: Sequence[tuple[VideoLayout, int | np.ndarray]], *, train: bool,
                 scheme: LayoutScheme = SSV2, modalities: Sequence[str] = ("layout",), num_frames: int = 16,
                 score_threshold: float = 0.5, max_objects: int | None = None, appearance_frames: int = 32,
                 appearance_stride: int = 2, size: int = 112, color_jitter: bool = True,
                 video_path: Callable[[str], Path] | None = None, flow_dir: Callable[[str], Path] | None = None,
                 label_key: str = "action", seed: int = 0, on_error: str = "raise"):
        modalities = tuple(modalities)
        unknown = set(modalities) - set(LAYOUT_MODALITIES)
        if unknown or not modalities:
            raise ValueError(f"modalities must be a non-empty subset of {LAYOUT_MODALITIES}, got {modalities}")
        if on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
        self.needs_video = "rgb" in modalities or "frames" in modalities
        if self.needs_video and video_path is None:
            raise ValueError("modalities 'rgb'/'frames' need video_path (video id -> file)")
        if "flow" in modalities and flow_dir is None:
            raise ValueError("modality 'flow' needs flow_dir (video id -> folder of u/ and v/ JPEGs)")
        self.layouts = [layout for layout, _ in items]
        self.labels = [label for _, label in items]
        self.tensoriser = LayoutTensoriser(self.layouts, scheme, score_threshold=score_threshold,
                                           max_objects=max_objects)
        self.scheme, self.modalities, self.train = scheme, modalities, train
        self.num_frames, self.appearance_frames, self.appearance_stride = num_frames, appearance_frames, \
            appearance_stride
        self.size, self.video_path, self.flow_dir, self.label_key = int(size), video_path, flow_dir, label_key
        self.seed, self.on_error = seed, on_error
        self.transform = ClipTransform(self.size, train=train, scale_range=(RESIZE_SCALE, RESIZE_SCALE),
                                       flip=False, color_jitter=color_jitter, mean=MEAN_STD, std=MEAN_STD)
        self._lengths: dict[str, int] = {}
        self._flow_length = FlowFrameCounts()

    @property
    def max_objects(self) -> int:
        return self.tensoriser.max_objects

    def __len__(self) -> int:
        return len(self.layouts)

    def clip_ids(self) -> list[str]:
        """Video ids in dataset order (the ``video_id`` of each sample; keys of cached teacher logits)."""
        return [layout.id for layout in self.layouts]

    def rng(self, index: int, epoch: int = 0) -> np.random.Generator:
        return np.random.default_rng([self.seed, epoch if self.train else 0, index])

    def __getitem__(self, index: int) -> dict[str, Any] | None:
        epoch, index = divmod(int(index), len(self))
        rng = self.rng(index, epoch)
        layout = self.layouts[index]
        frames = layout_indices(self.tensoriser.num_frames(index), self.num_frames, train=self.train,
                                rng=rng if self.train else None)
        sample: dict[str, Any] = {}
        if "layout" in self.modalities:
            sample.update(self.tensoriser(index, frames))
        label = self.labels[index]
        sample[self.label_key] = int(label) if isinstance(label, int | np.integer) else label
        sample["index"], sample["video_id"] = index, layout.id
        if not self.needs_video and "flow" not in self.modalities:
            return sample
        try:
            sample.update(self._appearance(layout.id, frames, rng))
        except (DataError, OSError) as exc:
            if self.on_error == "raise":
                raise
            log.warning("skipping sample %d (video %s): %s", index, layout.id, exc)
            return None
        return sample

    def _decoded_length(self, path: Path) -> int:
        key = str(path)
        if key not in self._lengths:
            self._lengths[key] = probe(path).num_frames
        return self._lengths[key]

    def _appearance(self, video_id: str, layout_frames: np.ndarray, rng: np.random.Generator
                    ) -> dict[str, torch.Tensor]:
        """``rgb``/``flow`` (3, Ta, S, S) and ``frames`` (n + 1, 3, S, S) of one video, one crop draw for all."""
        path = self.video_path(video_id) if self.needs_video else None
        folder = self.flow_dir(video_id) if "flow" in self.modalities else None
        appearance = None
        if "rgb" in self.modalities or folder is not None:
            # the decoded length when the video is read anyway, else the flow folder's (no video opened)
            length = self._decoded_length(path) if path is not None else self._flow_length(folder)
            appearance = appearance_indices(max(length, 1), self.appearance_frames, self.appearance_stride,
                                            train=self.train, rng=rng if self.train else None)
        video = None
        if path is not None:
            wanted = [appearance] if "rgb" in self.modalities else []
            if "frames" in self.modalities:
                wanted.append(layout_frames)
            video = read_frames(path, np.concatenate(wanted))  # (T, H, W, 3) uint8, one decode for both
        flow = None
        if folder is not None:
            flow = read_flow_frames(folder, decode_to_flow_index(appearance, self._flow_length(folder)))
        height, width = (int(x) for x in (video if video is not None else flow).shape[1:3])
        if self.train:
            params = self.transform.sample_params(height, width, rng)
        else:
            params = centre_params(height, width, self.size, int(self.size * RESIZE_SCALE))
        out: dict[str, torch.Tensor] = {}
        start = 0
        if "rgb" in self.modalities:
            out["rgb"] = self.transform(video[: self.appearance_frames], params)  # (3, Ta, S, S)
            start = self.appearance_frames
        if flow is not None:
            out["flow"] = apply_flow(flow, params)  # (3, Ta, S, S): u, v, 0
        if "frames" in self.modalities:
            per_frame = self.transform(video[start:], params).permute(1, 0, 2, 3)  # (n, 3, S, S)
            out["frames"] = torch.cat([per_frame, per_frame.new_zeros((1, *per_frame.shape[1:]))])
        return out
