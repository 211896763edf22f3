"""Object boxes: the Something-Else box annotations, the unified layout JSON, and the box-cleaning rules.

Formats (see ``spec/layout_fusion.md`` §2.3–2.4 and ``spec/distillation.md`` §2.4):

* Something-Else ``bounding_box_smthsmth_part{1..4}.json``: ``{video_id: [record per frame]}`` with
  ``record = {"name": "2/0001.jpg", "labels": [{"box2d": {"x1", "y1", "x2", "y2"}, "category": "hand" | noun,
  "standard_category": "hand" | "0000", …}], …}``; ``0001.jpg`` is frame index 0.
* ``videoid2size.json``: ``{video_id: [width, height]}``.
* Unified layout JSON, two variants read alike: ``[{"id", "template" | "actions", "frames": [{"frame_objects":
  [{"category", "x1", "y1", "x2", "y2", "score"}], "frame_id"?}]}]`` (STLT repository) and ``[{"id",
  "template", "size": [w, h], "frames": [[{…box…}, …], …]}]`` (distillation repository).

Errors are :class:`~modalbridge.core.errors.DataError` with the place in the JSON as the field, e.g.
``field 78687[3].labels[0].box2d.x1`` (video 78687, 4th frame record, first box; indices 0-based).
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from modalbridge.core.errors import DataError
from modalbridge.datasets.something import SomethingVideo, read_json, read_split

PathLike = str | os.PathLike
log = logging.getLogger(__name__)

__all__ = ["Box", "VideoLayout", "clean_box", "clean_boxes", "coarse_category", "convert_something_else",
           "find_box_parts", "normalise_box", "read_box_annotations", "read_layouts", "read_video_sizes",
           "write_layouts"]

BOX_PARTS_GLOB = "bounding_box_smthsmth_part*.json"


@dataclass(frozen=True, slots=True)
class Box:
    """An object box in pixels (``x1, y1`` top-left, ``x2, y2`` bottom-right), its category and score."""

    x1: float
    y1: float
    x2: float
    y2: float
    category: str
    score: float = 1.0

    def to_json(self) -> dict[str, Any]:
        return {"category": self.category, "x1": self.x1, "y1": self.y1, "x2": self.x2, "y2": self.y2,
                "score": self.score}


@dataclass
class VideoLayout:
    """One video's boxes, frame by frame (``frames[i]`` = boxes of frame index ``i``, possibly empty).

    ``template`` is set for SSv2/Something-Else, ``actions`` (Charades codes) for Action Genome; ``size`` is
    ``(width, height)`` in pixels when known; ``frame_ids`` keeps the per-frame ids of the AG variant.
    """

    id: str
    template: str | None = None
    actions: list[str] | None = None
    size: tuple[int, int] | None = None
    frames: list[list[Box]] = field(default_factory=list)
    frame_ids: list[str] | None = None


def coarse_category(category: str) -> str:
    """Object-agnostic category: ``"hand"`` if the name contains "hand", else ``"object"``.

    This is the reference rule, substring match included, so a "door handle" becomes a hand — kept for
    checkpoint compatibility; pass ``use_standard_category=True`` to :func:`read_box_annotations` to decide
    from ``standard_category == "hand"`` instead.
    """
    return "hand" if "hand" in category.lower() else "object"


# --------------------------------------------------------------------------------------------- cleaning
def _check_frame(width: int, height: int) -> None:
    if int(width) < 1 or int(height) < 1:
        raise ValueError(f"frame size must be positive, got {width}x{height}")


def clean_box(x1: float, y1: float, x2: float, y2: float, width: int, height: int) -> tuple[int, int, int, int]:
    """Integer box inside a ``width × height`` frame, by the reference's rules, in this order:

    truncate to int and clamp at ≥ 0; swap if ``x1 > x2`` (``y1 > y2``); clamp x to ``width-1`` and y to
    ``height-1``; if ``x1 == x2 == 0`` set ``x2 = 1`` (same for y); if still ``x1 == x2`` decrement ``x1``.

    >>> clean_box(10.7, 20.2, 5.3, 300, 100, 240)
    (5, 20, 10, 239)
    """
    _check_frame(width, height)
    xs = _clean_axis(x1, x2, int(width))
    ys = _clean_axis(y1, y2, int(height))
    return xs[0], ys[0], xs[1], ys[1]


def _clean_axis(a: float, b: float, size: int) -> tuple[int, int]:
    if not (math.isfinite(a) and math.isfinite(b)):
        raise ValueError(f"box coordinates must be finite, got {a}, {b}")
    lo, hi = max(int(a), 0), max(int(b), 0)
    if lo > hi:
        lo, hi = hi, lo
    lo, hi = min(lo, size - 1), min(hi, size - 1)
    if lo == hi == 0:
        hi = 1
    if lo == hi:
        lo -= 1
    return lo, hi


def normalise_box(x1: float, y1: float, x2: float, y2: float, width: int, height: int
                  ) -> tuple[float, float, float, float]:
    """:func:`clean_box`, then divide by ``[width, height, width, height]``.

    >>> [round(v, 4) for v in normalise_box(10.7, 20.2, 5.3, 300, 100, 240)]
    [0.05, 0.0833, 0.1, 0.9958]
    """
    cx1, cy1, cx2, cy2 = clean_box(x1, y1, x2, y2, width, height)
    return cx1 / width, cy1 / height, cx2 / width, cy2 / height


def clean_boxes(boxes: np.ndarray, width: int | np.ndarray, height: int | np.ndarray) -> np.ndarray:
    """Vectorised :func:`clean_box`: ``(N, 4)`` float pixel boxes → ``(N, 4)`` int64 cleaned boxes.

    ``width``/``height`` are scalars or ``(N,)`` arrays (one frame size per box).
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"expected boxes of shape (N, 4), got {boxes.shape}")
    if not np.isfinite(boxes).all():
        raise ValueError("box coordinates must be finite")
    width = np.broadcast_to(np.asarray(width, dtype=np.int64), boxes.shape[:1])
    height = np.broadcast_to(np.asarray(height, dtype=np.int64), boxes.shape[:1])
    if (width < 1).any() or (height < 1).any():
        raise ValueError("frame sizes must be positive")
    out = np.empty(boxes.shape, dtype=np.int64)
    for lo_col, hi_col, size in ((0, 2, width), (1, 3, height)):
        a = np.maximum(np.trunc(boxes[:, lo_col]).astype(np.int64), 0)
        b = np.maximum(np.trunc(boxes[:, hi_col]).astype(np.int64), 0)
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        lo, hi = np.minimum(lo, size - 1), np.minimum(hi, size - 1)
        hi = np.where((lo == 0) & (hi == 0), 1, hi)
        lo = np.where(lo == hi, lo - 1, lo)
        out[:, lo_col], out[:, hi_col] = lo, hi
    return out


# --------------------------------------------------------------------------------------------- Something-Else
def find_box_parts(root: PathLike) -> list[Path]:
    """The ``bounding_box_smthsmth_part*.json`` files in ``root`` or ``root/boxes``, sorted by name."""
    root = Path(root)
    return sorted([*root.glob(BOX_PARTS_GLOB), *(root / "boxes").glob(BOX_PARTS_GLOB)])


def _number(value: Any, path: PathLike, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise DataError(f"expected a finite number, got {value!r}", path=path, field=where)
    return float(value)


def _frame_index(record: Mapping[str, Any], position: int, path: PathLike, where: str) -> int:
    """``"2/0001.jpg"`` → 0; records without a ``name`` keep their list position."""
    name = record.get("name")
    if name is None:
        return position
    stem = Path(str(name)).stem
    if not stem.isdigit() or int(stem) < 1:
        raise DataError(f"expected a frame file name like '<video>/0001.jpg' (1-based), got {name!r}",
                        path=path, field=f"{where}.name")
    return int(stem) - 1


def _parse_box_video(video_id: str, records: Any, path: PathLike, *, use_standard_category: bool,
                     keep_scores: bool, coarse: bool) -> list[list[Box]]:
    if not isinstance(records, list):
        raise DataError(f"expected a list of per-frame records, got {type(records).__name__}", path=path,
                        field=video_id)
    frames: dict[int, list[Box]] = {}
    for position, record in enumerate(records):
        where = f"{video_id}[{position}]"
        if not isinstance(record, dict):
            raise DataError(f"expected a frame record object, got {type(record).__name__}", path=path, field=where)
        index = _frame_index(record, position, path, where)
        labels = record.get("labels", [])
        if not isinstance(labels, list):
            raise DataError(f"expected a list of labels, got {type(labels).__name__}", path=path,
                            field=f"{where}.labels")
        boxes = frames.setdefault(index, [])
        for j, label in enumerate(labels):
            at = f"{where}.labels[{j}]"
            if not isinstance(label, dict) or not isinstance(label.get("box2d"), dict):
                raise DataError("expected an object with a 'box2d' object", path=path, field=at)
            box2d = label["box2d"]
            x1, y1, x2, y2 = (_number(box2d.get(k), path, f"{at}.box2d.{k}") for k in ("x1", "y1", "x2", "y2"))
            category = label.get("category")
            if not isinstance(category, str):
                raise DataError(f"expected a category name, got {category!r}", path=path, field=f"{at}.category")
            if use_standard_category:
                category = "hand" if str(label.get("standard_category", "")).lower() == "hand" else "object"
            elif coarse:
                category = coarse_category(category)
            score = _number(label.get("score", 1.0), path, f"{at}.score") if keep_scores else 1.0
            boxes.append(Box(x1, y1, x2, y2, category, score))
    length = max(frames) + 1 if frames else 0
    return [frames.get(i, []) for i in range(length)]


def read_box_annotations(paths: PathLike | Sequence[PathLike], *, ids: Iterable[str] | None = None,
                         use_standard_category: bool = False, keep_scores: bool = False,
                         coarse: bool = True, errors: list[DataError] | None = None) -> dict[str, list[list[Box]]]:
    """Read Something-Else box files → ``video_id → frames`` (``frames[i]`` = boxes of ``000{i+1}.jpg``).

    Frames missing from the records become empty lists. When a video is in several parts the first part
    wins. Args: ``ids`` — keep only these videos (saves memory on the 180k-video release);
    ``coarse`` — collapse categories with :func:`coarse_category` (or, with ``use_standard_category``, from
    ``standard_category``); ``keep_scores`` — keep a label's ``score`` (the reference sets 1.0);
    ``errors`` — ``None`` raises the first problem, a list collects every problem (one per bad video, which
    is then skipped).
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    wanted = None if ids is None else set(ids)
    result: dict[str, list[list[Box]]] = {}
    for path in paths:
        try:
            data = read_json(path)
            if not isinstance(data, dict):
                raise DataError(f"expected a JSON object video_id → frame records, got {type(data).__name__}",
                                path=path)
        except DataError as exc:
            if errors is None:
                raise
            errors.append(exc)
            continue
        for video_id, records in data.items():
            if video_id in result or (wanted is not None and video_id not in wanted):
                continue
            try:
                result[video_id] = _parse_box_video(video_id, records, path, coarse=coarse, keep_scores=keep_scores,
                                                    use_standard_category=use_standard_category)
            except DataError as exc:
                if errors is None:
                    raise
                errors.append(exc)
        del data
    return result


def _size(value: Any, path: PathLike, where: str) -> tuple[int, int]:
    ok = isinstance(value, list | tuple) and len(value) == 2 and all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v >= 1
        and float(v).is_integer() for v in value)
    if not ok:
        raise DataError(f"expected [width, height] in pixels, got {value!r}", path=path, field=where)
    return int(value[0]), int(value[1])


def read_video_sizes(path: PathLike) -> dict[str, tuple[int, int]]:
    """``videoid2size.json`` → ``video_id → (width, height)``."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise DataError(f"expected a JSON object video_id → [width, height], got {type(data).__name__}",
                        path=path)
    return {str(video_id): _size(value, path, str(video_id)) for video_id, value in data.items()}


# --------------------------------------------------------------------------------------------- layout JSON
def _box_from_json(obj: Any, path: PathLike, where: str) -> Box:
    if not isinstance(obj, dict):
        raise DataError(f"expected a box object, got {type(obj).__name__}", path=path, field=where)
    category = obj.get("category")
    if not isinstance(category, str):
        raise DataError(f"expected a category name, got {category!r}", path=path, field=f"{where}.category")
    coords = [_number(obj.get(k), path, f"{where}.{k}") for k in ("x1", "y1", "x2", "y2")]
    score = _number(obj.get("score", 1.0), path, f"{where}.score")
    return Box(*coords, category=category, score=score)


def read_layouts(path: PathLike) -> list[VideoLayout]:
    """Read a unified layout JSON (either variant, even mixed per frame) into :class:`VideoLayout` s."""
    data = read_json(path)
    if not isinstance(data, list):
        raise DataError(f"expected a JSON list of videos, got {type(data).__name__}", path=path)
    layouts = []
    for i, entry in enumerate(data):
        where = f"[{i}]"
        if not isinstance(entry, dict):
            raise DataError(f"expected a video object, got {type(entry).__name__}", path=path, field=where)
        video_id = entry.get("id")
        if isinstance(video_id, bool) or not isinstance(video_id, str | int):
            raise DataError(f"expected a video id, got {video_id!r}", path=path, field=f"{where}.id")
        template, actions = entry.get("template"), entry.get("actions")
        if template is not None and not isinstance(template, str):
            raise DataError(f"expected a string, got {template!r}", path=path, field=f"{where}.template")
        if actions is not None and not (isinstance(actions, list) and all(isinstance(a, str) for a in actions)):
            raise DataError(f"expected a list of action codes, got {actions!r}", path=path, field=f"{where}.actions")
        size = _size(entry["size"], path, f"{where}.size") if entry.get("size") is not None else None
        raw_frames = entry.get("frames")
        if not isinstance(raw_frames, list):
            raise DataError(f"expected a list of frames, got {raw_frames!r:.60}", path=path, field=f"{where}.frames")
        frames: list[list[Box]] = []
        frame_ids: list[str] = []
        for f, frame in enumerate(raw_frames):
            at = f"{where}.frames[{f}]"
            if isinstance(frame, dict):
                objects = frame.get("frame_objects")
                if "frame_id" in frame:
                    frame_ids.append(str(frame["frame_id"]))
                at += ".frame_objects"
            else:
                objects = frame
            if not isinstance(objects, list):
                raise DataError("expected a list of boxes or an object with 'frame_objects'", path=path, field=at)
            frames.append([_box_from_json(obj, path, f"{at}[{k}]") for k, obj in enumerate(objects)])
        if frame_ids and len(frame_ids) != len(frames):
            raise DataError("'frame_id' given for some frames only", path=path, field=f"{where}.frames")
        layouts.append(VideoLayout(id=str(video_id), template=template, actions=actions, size=size, frames=frames,
                                   frame_ids=frame_ids or None))
    return layouts


def write_layouts(path: PathLike, layouts: Iterable[VideoLayout],
                  *, style: Literal["frame_objects", "nested"] = "frame_objects") -> Path:
    """Write layouts as JSON. ``style="frame_objects"`` is the STLT variant (``{"frame_objects": [...]}``
    per frame, ``frame_id`` when known), ``"nested"`` the distillation variant (a plain list per frame).
    ``template``/``actions``/``size`` are written when set. Returns the path."""
    if style not in ("frame_objects", "nested"):
        raise ValueError(f"unknown style {style!r}; expected 'frame_objects' or 'nested'")
    out = []
    for layout in layouts:
        entry: dict[str, Any] = {"id": layout.id}
        if layout.template is not None:
            entry["template"] = layout.template
        if layout.actions is not None:
            entry["actions"] = list(layout.actions)
        if layout.size is not None:
            entry["size"] = list(layout.size)
        frames = layout.frames
        if style == "nested":
            entry["frames"] = [[box.to_json() for box in frame] for frame in frames]
        else:
            entry["frames"] = []
            for f, frame in enumerate(frames):
                item: dict[str, Any] = {"frame_objects": [box.to_json() for box in frame]}
                if layout.frame_ids is not None:
                    item["frame_id"] = layout.frame_ids[f]
                entry["frames"].append(item)
        out.append(entry)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(out, handle)
    return path


def convert_something_else(split_list: PathLike | Iterable[SomethingVideo | str],
                           box_paths: Sequence[PathLike] | Mapping[str, list[list[Box]]],
                           sizes: PathLike | Mapping[str, tuple[int, int]] | None = None,
                           *, dropped: list[str] | None = None) -> list[VideoLayout]:
    """Build layouts for the videos of a split list from the box files (reference SSv2 converter).

    ``split_list`` is a split JSON path, :class:`SomethingVideo` s or bare ids; ``box_paths`` the box part
    files (or what :func:`read_box_annotations` returned); ``sizes`` a ``videoid2size.json`` path or dict.
    Categories are collapsed to hand/object, scores set to 1.0. Videos without boxes (absent from every part,
    or present with only empty frames) are dropped as in the reference: their count is logged and their ids
    appended to ``dropped`` when a list is given.
    """
    if isinstance(split_list, str | os.PathLike):
        split_list = read_split(split_list, None)
    videos = [v if isinstance(v, SomethingVideo) else SomethingVideo(id=str(v)) for v in split_list]
    if isinstance(box_paths, Mapping):
        boxes = box_paths
    else:
        boxes = read_box_annotations(box_paths, ids=[v.id for v in videos])
    if sizes is not None and not isinstance(sizes, Mapping):
        sizes = read_video_sizes(sizes)
    layouts, missing = [], []
    for video in videos:
        frames = boxes.get(video.id)
        if not frames or not any(frames):
            missing.append(video.id)
            continue
        size = sizes.get(video.id) if sizes is not None else None
        layouts.append(VideoLayout(id=video.id, template=video.template or None, size=size, frames=frames))
    if missing:
        log.info("dropped %d of %d videos without boxes", len(missing), len(videos))
        if dropped is not None:
            dropped.extend(missing)
    return layouts
