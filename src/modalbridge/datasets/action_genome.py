"""Action Genome on Charades (``spec/layout_fusion.md`` §2.6): the two annotation pickles, the Charades
CSVs, the converter to the unified layout JSON, and a small fixture writer in the real formats.

Files:

* ``annotations/object_bbox_and_relationship.pkl``: ``{"VID.mp4/000089.png": [{"class": "chair",
  "bbox": [x, y, w, h] | None, "visible": bool, "attention_relationship": […], "spatial_relationship":
  […], "contacting_relationship": […], "metadata": {"tag": …, "set": "train" | "test"}}, …]}``;
* ``annotations/person_bbox.pkl``: same keys → ``{"bbox": ndarray (k, 4) xyxy, "bbox_score": ndarray (k,),
  "bbox_size": (w, h), "bbox_mode": "xyxy", "keypoints": …}``;
* ``Charades_v1_train.csv`` / ``Charades_v1_test.csv``: columns ``id, subject, scene, quality, relevance,
  verified, script, objects, descriptions, actions, length`` with ``actions`` like
  ``"c092 11.90 21.20;c147 0.00 12.60"`` (may be empty).

Pickles can run arbitrary code when loaded, so :func:`load_pickle` needs ``allow_pickle=True`` and even
then only rebuilds builtin containers and numpy arrays (a restricted unpickler refuses every other class).
"""

from __future__ import annotations

import _compat_pickle
import csv
import io
import json
import logging
import os
import pickle
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from modalbridge.core.errors import DataError
from modalbridge.core.paths import natural_key
from modalbridge.datasets.boxes import Box, VideoLayout, write_layouts
from modalbridge.datasets.epic_kitchens import csv_rows
from modalbridge.datasets.layouts import AG_OBJECT_CLASSES

PathLike = str | os.PathLike
log = logging.getLogger(__name__)

__all__ = ["CHARADES_COLUMNS", "NUM_CHARADES_CLASSES", "CharadesAction", "CharadesVideo", "action_codes",
           "charades_class_names", "convert_action_genome", "load_pickle", "multi_hot", "natural_key",
           "prepare_action_genome", "read_charades_csv", "video_sizes", "write_action_genome_fixture"]

NUM_CHARADES_CLASSES = 157
CHARADES_COLUMNS = ("id", "subject", "scene", "quality", "relevance", "verified", "script", "objects",
                    "descriptions", "actions", "length")
OBJECTS_PICKLE = "object_bbox_and_relationship.pkl"
PERSONS_PICKLE = "person_bbox.pkl"
_ACTION_CODE = re.compile(r"c\d{3}")

# (module, name) pairs a restricted unpickler may rebuild: plain containers/scalars and numpy arrays.
_SAFE_GLOBALS = {
    ("builtins", name) for name in ("dict", "list", "tuple", "set", "frozenset", "str", "bytes", "bytearray",
                                    "int", "float", "complex", "bool", "slice", "range")
} | {
    ("_codecs", "encode"),  # how protocol-2 pickles store bytes (numpy array buffers)
    *((module, name) for module in ("numpy.core.multiarray", "numpy._core.multiarray")
      for name in ("_reconstruct", "scalar")),
    *((module, "_frombuffer") for module in ("numpy.core.numeric", "numpy._core.numeric")),
    ("numpy", "ndarray"), ("numpy", "dtype"),
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        # Python 2 names in protocol <= 2 pickles (``__builtin__.bytes``), as pickle itself maps them
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        if (module, name) in _SAFE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only builtin containers and numpy "
                                     "arrays are allowed in annotation pickles")


def load_pickle(path: PathLike, *, allow_pickle: bool = False) -> Any:
    """Load an annotation pickle with a restricted unpickler (builtins and numpy arrays only).

    ``allow_pickle`` must be ``True``: unpickling a file can execute code, so reading one is an explicit
    choice (the restriction blocks the known attack, but only load files from a source you trust).
    """
    if not allow_pickle:
        raise DataError("refusing to read a pickle without allow_pickle=True: loading pickles can execute "
                        "arbitrary code. Pass allow_pickle=True (CLI: --allow-pickle) for files from a trusted "
                        "source (the official Action Genome release); only builtins and numpy arrays are "
                        "rebuilt", path=path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise DataError("file not found", path=path) from None
    except OSError as exc:
        raise DataError(f"cannot read file: {exc}", path=path) from None
    try:
        return _RestrictedUnpickler(io.BytesIO(data)).load()
    except pickle.UnpicklingError as exc:
        raise DataError(f"cannot unpickle: {exc}", path=path) from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as exc:
        raise DataError(f"corrupt pickle: {type(exc).__name__}: {exc}", path=path) from None


# --------------------------------------------------------------------------------------------- Charades
@dataclass(frozen=True)
class CharadesAction:
    code: str
    start: float
    end: float


@dataclass(frozen=True)
class CharadesVideo:
    """One row of a Charades CSV (text columns kept as strings)."""

    id: str
    actions: list[CharadesAction] = field(default_factory=list)
    length: float = 0.0
    subject: str = ""
    scene: str = ""
    quality: int | None = None
    relevance: int | None = None
    verified: str = ""
    script: str = ""
    objects: list[str] = field(default_factory=list)
    descriptions: str = ""

    @property
    def codes(self) -> list[str]:
        return [a.code for a in self.actions]


def _parse_actions(text: str, path: PathLike, row: int) -> list[CharadesAction]:
    actions = []
    for entry in filter(None, (part.strip() for part in text.split(";"))):
        tokens = entry.split()
        try:
            if len(tokens) != 3 or not _ACTION_CODE.fullmatch(tokens[0]):
                raise ValueError
            start, end = float(tokens[1]), float(tokens[2])
        except ValueError:
            raise DataError(f"expected 'cNNN start end' entries separated by ';', got {entry!r}", path=path,
                            row=row, field="actions") from None
        if int(tokens[0][1:]) >= NUM_CHARADES_CLASSES:
            raise DataError(f"action code {tokens[0]} is not one of c000..c{NUM_CHARADES_CLASSES - 1:03d}",
                            path=path, row=row, field="actions")
        actions.append(CharadesAction(tokens[0], start, end))
    return actions


def _optional_int(text: str, path: PathLike, row: int, name: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    try:
        return int(float(text))
    except ValueError:
        raise DataError(f"expected an integer or nothing, got {text!r}", path=path, row=row, field=name) from None


def read_charades_csv(path: PathLike) -> list[CharadesVideo]:
    """Read ``Charades_v1_{train,test}.csv``; rows are numbered by CSV line (header = row 1)."""
    rows = csv_rows(path)
    first = next(rows, None)
    if first is None:
        raise DataError(f"empty file, expected a header with columns {', '.join(CHARADES_COLUMNS)}", path=path)
    header = [name.strip() for name in first[1]]
    missing = [c for c in CHARADES_COLUMNS if c not in header]
    if missing:
        raise DataError(f"missing column(s) {', '.join(missing)} in the header (found: {', '.join(header)})",
                        path=path, row=1)
    videos, seen = [], {}
    for line, fields in rows:
        if len(fields) != len(header):
            raise DataError(f"expected {len(header)} fields, found {len(fields)}", path=path, row=line)
        rec = dict(zip(header, fields))
        video_id = rec["id"].strip()
        if not video_id:
            raise DataError("empty video id", path=path, row=line, field="id")
        if video_id in seen:
            raise DataError(f"duplicate video id {video_id!r} (first on row {seen[video_id]})", path=path,
                            row=line, field="id")
        seen[video_id] = line
        try:
            length = float(rec["length"]) if rec["length"].strip() else 0.0
        except ValueError:
            raise DataError(f"expected a duration in seconds, got {rec['length']!r}", path=path, row=line,
                            field="length") from None
        videos.append(CharadesVideo(
            id=video_id, actions=_parse_actions(rec["actions"], path, line), length=length,
            subject=rec["subject"], scene=rec["scene"], quality=_optional_int(rec["quality"], path, line, "quality"),
            relevance=_optional_int(rec["relevance"], path, line, "relevance"), verified=rec["verified"],
            script=rec["script"], objects=[o for o in rec["objects"].split(";") if o],
            descriptions=rec["descriptions"]))
    return videos


def action_codes(codes: Iterable[str]) -> np.ndarray:
    """``["c092", "c147"]`` → class ids ``(k,)`` int64 (``int(code[1:])``)."""
    ids = []
    for code in codes:
        if not _ACTION_CODE.fullmatch(code) or int(code[1:]) >= NUM_CHARADES_CLASSES:
            raise DataError(f"expected a Charades action code c000..c{NUM_CHARADES_CLASSES - 1:03d}, got {code!r}")
        ids.append(int(code[1:]))
    return np.asarray(ids, dtype=np.int64)


def multi_hot(codes: Iterable[str], num_classes: int = NUM_CHARADES_CLASSES) -> np.ndarray:
    """Multi-hot float32 ``(num_classes,)`` vector of Charades action codes."""
    vector = np.zeros(num_classes, dtype=np.float32)
    vector[action_codes(codes)] = 1.0
    return vector


def charades_class_names(path: PathLike | None = None) -> list[str]:
    """Class names from ``Charades_v1_classes.txt`` (``"c000 Holding some clothes"`` per line), or the bare
    codes ``c000..c156`` when ``path`` is ``None`` or missing."""
    names = [f"c{i:03d}" for i in range(NUM_CHARADES_CLASSES)]
    if path is None or not Path(path).is_file():
        return names
    for line_no, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        code, _, name = line.strip().partition(" ")
        if not _ACTION_CODE.fullmatch(code) or int(code[1:]) >= NUM_CHARADES_CLASSES:
            raise DataError(f"expected 'cNNN class name', got {line!r}", path=path, row=line_no)
        names[int(code[1:])] = f"{code} {name.strip()}".strip()
    return names


# --------------------------------------------------------------------------------------------- converter
def _split_key(key: str) -> tuple[str, str]:
    """``"001YG.mp4/000089.png"`` → ``("001YG", "000089.png")``."""
    video, sep, frame = key.partition("/")
    if not sep or not frame:
        raise DataError(f"expected a frame key like 'VID.mp4/000089.png', got {key!r}")
    return (video[:-4] if video.lower().endswith(".mp4") else video), frame


def _frame_boxes(key: str, objects: Any, person: Any) -> list[Box]:
    boxes: list[Box] = []
    for k, obj in enumerate(objects or []):
        if not isinstance(obj, Mapping):
            raise DataError(f"expected an object record, got {type(obj).__name__}", field=f"{key}[{k}]")
        if not obj.get("visible") or obj.get("bbox") is None:
            continue
        try:
            x, y, w, h = (float(v) for v in obj["bbox"])
        except (TypeError, ValueError):
            raise DataError(f"expected bbox [x, y, w, h], got {obj['bbox']!r}", field=f"{key}[{k}].bbox") from None
        category = obj.get("class")
        if not isinstance(category, str):
            raise DataError(f"expected a class name, got {category!r}", field=f"{key}[{k}].class")
        boxes.append(Box(x, y, x + w, y + h, category, 1.0))
    if person is not None:
        person_boxes = np.asarray(person.get("bbox", np.zeros((0, 4))), dtype=np.float64).reshape(-1, 4)
        if len(person_boxes) == 1:
            scores = np.asarray(person.get("bbox_score", [1.0]), dtype=np.float64).reshape(-1)
            x1, y1, x2, y2 = (float(v) for v in person_boxes[0])
            boxes.append(Box(x1, y1, x2, y2, "person", float(scores[0]) if scores.size else 1.0))
    return boxes


def convert_action_genome(objects: Mapping[str, Any], persons: Mapping[str, Any],
                          videos: Sequence[CharadesVideo], *, dropped: list[str] | None = None
                          ) -> list[VideoLayout]:
    """Unified layouts of the Charades ``videos`` that have Action Genome frames (reference converter).

    Frame keys (the union of both pickles) are natural-sorted; per frame: visible objects with a box
    (``xywh → xyxy``, score 1.0), plus the person box when there is exactly one (score ``bbox_score``);
    frames without any object are dropped, and so are videos left without frames (ids appended to
    ``dropped``). ``actions`` are the row's codes (an empty list when the row has none).
    """
    frames_of: dict[str, list[tuple[str, list[Box]]]] = {}
    for key in sorted(set(objects) | set(persons), key=natural_key):
        video_id, frame_id = _split_key(key)
        boxes = _frame_boxes(key, objects.get(key), persons.get(key))
        if boxes:
            frames_of.setdefault(video_id, []).append((frame_id, boxes))
    layouts, missing = [], []
    for video in videos:
        frames = frames_of.get(video.id)
        if not frames:
            missing.append(video.id)
            continue
        layouts.append(VideoLayout(id=video.id, actions=video.codes, frames=[boxes for _, boxes in frames],
                                   frame_ids=[frame_id for frame_id, _ in frames]))
    if missing:
        log.info("%d of %d Charades videos have no Action Genome boxes; dropped", len(missing), len(videos))
        if dropped is not None:
            dropped.extend(missing)
    return layouts


def video_sizes(persons: Mapping[str, Any]) -> dict[str, list[int]]:
    """``videoid2size`` from the person pickle's ``bbox_size`` (``(w, h)``; first frame of each video)."""
    sizes: dict[str, list[int]] = {}
    for key, record in persons.items():
        video_id, _ = _split_key(key)
        if video_id in sizes or not isinstance(record, Mapping) or record.get("bbox_size") is None:
            continue
        try:
            width, height = (int(v) for v in record["bbox_size"])
        except (TypeError, ValueError):
            raise DataError(f"expected bbox_size (w, h), got {record['bbox_size']!r}", field=f"{key}.bbox_size") \
                from None
        sizes[video_id] = [width, height]
    return sizes


def _find(root: Path, name: str) -> Path:
    for folder in (root, root / "annotations", root / "Charades"):
        if (folder / name).is_file():
            return folder / name
    raise DataError(f"{name} not found in {root}, {root / 'annotations'} or {root / 'Charades'}", path=root)


def prepare_action_genome(root: PathLike, out_dir: PathLike | None = None, *, allow_pickle: bool = False
                          ) -> dict[str, Path]:
    """Convert an Action Genome folder (the two pickles + ``Charades_v1_{train,test}.csv``, found in
    ``root``, ``root/annotations`` or ``root/Charades``) into ``train_dataset.json``, ``val_dataset.json``
    (test CSV), ``videoid2size.json`` and ``labels.json`` (157 codes → id) in ``out_dir`` (default root).
    """
    root = Path(root)
    out = Path(out_dir) if out_dir is not None else root
    objects = load_pickle(_find(root, OBJECTS_PICKLE), allow_pickle=allow_pickle)
    persons = load_pickle(_find(root, PERSONS_PICKLE), allow_pickle=allow_pickle)
    for name, data in ((OBJECTS_PICKLE, objects), (PERSONS_PICKLE, persons)):
        if not isinstance(data, Mapping):
            raise DataError(f"expected a dict frame key → records, got {type(data).__name__}", path=name)
    written = {}
    for split, csv_name in (("train", "Charades_v1_train.csv"), ("val", "Charades_v1_test.csv")):
        layouts = convert_action_genome(objects, persons, read_charades_csv(_find(root, csv_name)))
        written[split] = write_layouts(out / f"{split}_dataset.json", layouts)
    out.mkdir(parents=True, exist_ok=True)
    written["sizes"] = out / "videoid2size.json"
    written["sizes"].write_text(json.dumps(video_sizes(persons)), encoding="utf-8")
    written["labels"] = out / "labels.json"
    written["labels"].write_text(json.dumps({f"c{i:03d}": i for i in range(NUM_CHARADES_CLASSES)}), encoding="utf-8")
    return written


# --------------------------------------------------------------------------------------------- fixture
def _fixture_id(rng: np.random.Generator) -> str:
    alphabet = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"))
    return "".join(rng.choice(alphabet, size=5))


def write_action_genome_fixture(root: PathLike, seed: int = 0, videos: int = 2, *, frames: int = 6
                                ) -> dict[str, Path]:
    """Write a small Action Genome release into ``root`` in the real formats.

    ``root/annotations/{object_bbox_and_relationship,person_bbox}.pkl`` and
    ``root/Charades_v1_{train,test}.csv``; videos alternate train/test. Every video has ``frames`` key
    frames (keys ``"ID.mp4/%06d.png"``) with 1–3 objects from the AG classes (some invisible, bbox
    ``None``), mostly one person box with a score; frame 1 has two person boxes (so no person) and the
    last frame no visible object and no person (so it is dropped). Videos 1, 5, 9, … (test split) have no
    actions.
    Returns the four paths.
    """
    rng = np.random.default_rng(seed)
    root = Path(root)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    objects: dict[str, list[dict[str, Any]]] = {}
    persons: dict[str, dict[str, Any]] = {}
    rows: dict[str, list[list[str]]] = {"train": [], "test": []}
    ids: set[str] = set()
    for v in range(videos):
        video_id = _fixture_id(rng)
        while video_id in ids:
            video_id = _fixture_id(rng)
        ids.add(video_id)
        width, height = (480, 270) if v % 2 == 0 else (270, 480)
        numbers = np.sort(rng.choice(np.arange(1, 40 * frames), size=frames, replace=False)) * 3
        for f, number in enumerate(numbers):
            key = f"{video_id}.mp4/{int(number):06d}.png"
            records = []
            for _ in range(int(rng.integers(1, 4))):
                visible = f != frames - 1 and rng.random() < 0.8
                x, y = float(rng.uniform(0, width * 0.7)), float(rng.uniform(0, height * 0.7))
                w, h = float(rng.uniform(10, width * 0.3)), float(rng.uniform(10, height * 0.3))
                records.append({
                    "class": str(rng.choice(AG_OBJECT_CLASSES)),
                    "bbox": [x, y, w, h] if visible else None,
                    "visible": bool(visible),
                    "attention_relationship": ["looking_at"] if visible else None,
                    "spatial_relationship": ["in_front_of"] if visible else None,
                    "contacting_relationship": ["holding"] if visible else None,
                    "metadata": {"tag": key, "set": "train" if v % 2 == 0 else "test"},
                })
            objects[key] = records
            k = 0 if f == frames - 1 else (2 if f == 1 else 1)
            x1, y1 = rng.uniform(0, width / 2, size=(k, 1)), rng.uniform(0, height / 2, size=(k, 1))
            bbox = np.concatenate([x1, y1, x1 + width / 3, y1 + height / 3], axis=1).astype(np.float32)
            persons[key] = {"bbox": bbox, "bbox_score": rng.uniform(0.3, 1.0, size=k).astype(np.float32),
                            "bbox_size": (width, height), "bbox_mode": "xyxy",
                            "keypoints": np.zeros((k, 17, 3), np.float32),
                            "keypoints_logits": np.zeros((k, 17), np.float32)}
        if v % 4 != 1:  # videos 1, 5, 9, … (all in the test split) have no actions
            codes = rng.choice(NUM_CHARADES_CLASSES, size=int(rng.integers(1, 4)), replace=False)
            actions = ";".join(f"c{c:03d} {s:.2f} {s + 5:.2f}" for c, s in zip(codes, rng.uniform(0, 20, len(codes))))
        else:
            actions = ""
        rows["train" if v % 2 == 0 else "test"].append(
            [video_id, "SUBJ", "Kitchen", "6", "7", "Yes", "A person holds a cup.", "cup;table",
             "A person is holding a cup.", actions, "30.00"])
    paths = {"objects": root / "annotations" / OBJECTS_PICKLE, "persons": root / "annotations" / PERSONS_PICKLE}
    with open(paths["objects"], "wb") as handle:
        pickle.dump(objects, handle, protocol=2)
    with open(paths["persons"], "wb") as handle:
        pickle.dump(persons, handle, protocol=2)
    for split in ("train", "test"):
        paths[split] = root / f"Charades_v1_{split}.csv"
        with open(paths[split], "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(CHARADES_COLUMNS)
            writer.writerows(rows[split])
    return paths
