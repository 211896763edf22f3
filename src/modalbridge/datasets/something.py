"""Readers for Something-Something V2 and the Something-Else re-splits (JSON lists in the SSv2 schema).

* labels file: ``{"Holding something next to something": "12", …}`` — key = template without brackets,
  value = class index (string in SSv2, int in Something-Else); values must be exactly ``0..n-1``.
* split file: ``[{"id": "78687", "label": "holding potato next to vicks vaporub bottle",
  "template": "Holding [something] next to [something]", "placeholders": ["potato", "vicks vaporub bottle"]},
  …]``; test lists hold only ``{"id": …}``.

Optical flow (no official release; our layout, see :mod:`modalbridge.io.flow`):
``<root>/flow/<video_id>/{u,v}/frame_%010d.jpg``, quantised JPEG pairs (128 = no motion, ±20 px), one
flow frame per decoded RGB frame: 0-based decode index ``i`` reads flow frame ``i + 1``. Written by
``modalbridge data flow`` (:func:`~modalbridge.io.flow.extract_flow_tree`).

Errors are :class:`~modalbridge.core.errors.DataError` naming the file and the place in it as a JSON path:
``field [5].template`` is the ``template`` of the 6th entry (index 5, 0-based as in the JSON list).
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modalbridge.core.errors import DataError
from modalbridge.core.paths import first_existing

PathLike = str | os.PathLike

__all__ = ["VARIANTS", "SomethingSomething", "SomethingVideo", "read_json", "read_labels", "read_split",
           "template_key"]

#: variant → (labels file, {split: list file}), relative to the dataset root.
VARIANTS: dict[str, tuple[str, dict[str, str]]] = {
    "ssv2": ("something-something-v2-labels.json", {
        "train": "something-something-v2-train.json",
        "validation": "something-something-v2-validation.json",
        "test": "something-something-v2-test.json",
    }),
    "something-else/compositional": ("compositional/labels.json", {
        "train": "compositional/train.json",
        "validation": "compositional/validation.json",
    }),
    "something-else/fewshot-base": ("fewshot/base_labels.json", {
        "train": "fewshot/base_training_set.json",
        "validation": "fewshot/base_validation_set.json",
    }),
    "something-else/fewshot-5shot": ("fewshot/finetune_labels.json", {
        "train": "fewshot/finetune_5shot_training.json",
        "validation": "fewshot/finetune_5shot_validation.json",
    }),
    "something-else/fewshot-10shot": ("fewshot/finetune_labels.json", {
        "train": "fewshot/finetune_10shot_train.json",
        "validation": "fewshot/finetune_10shot_validation.json",
    }),
}
#: Splits that may lack labels (only ids): read without a label lookup.
UNLABELLED_SPLITS = {"test"}
VIDEO_EXTENSIONS = (".webm", ".mp4")


def template_key(template: str) -> str:
    """The labels-file key of a template: brackets removed (``"Holding [something]"`` → ``"Holding something"``)."""
    return template.replace("[", "").replace("]", "")


def read_json(path: PathLike) -> Any:
    """``json.load`` with a DataError naming the file (and line/column of a syntax error)."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise DataError("file not found", path=path) from None
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}", path=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read file: {exc}", path=path) from None


def read_labels(path: PathLike) -> dict[str, int]:
    """Labels JSON → ``template key → class id``; ids (int or numeric string) must be exactly ``0..n-1``."""
    data = read_json(path)
    if not isinstance(data, dict) or not data:
        raise DataError(f"expected a non-empty JSON object template → class id, got {type(data).__name__}",
                        path=path)
    labels: dict[str, int] = {}
    owner: dict[int, str] = {}
    for key, value in data.items():
        try:
            if isinstance(value, bool):
                raise ValueError
            class_id = int(value.strip()) if isinstance(value, str) else value.__index__()
        except (ValueError, AttributeError, TypeError):
            raise DataError(f"expected an integer class id, got {value!r}", path=path, field=repr(key)) from None
        if class_id in owner:
            raise DataError(f"class id {class_id} used twice (also by {owner[class_id]!r})", path=path,
                            field=repr(key))
        owner[class_id] = key
        labels[key] = class_id
    missing = sorted(set(range(len(labels))) - set(owner))
    if missing:
        raise DataError(f"class ids must be contiguous 0..{len(labels) - 1}; missing {missing[:10]}", path=path)
    return labels


@dataclass(frozen=True)
class SomethingVideo:
    """One entry of a split list. ``class_id`` is -1 when the list or the reader has no labels."""

    id: str
    label: str = ""
    template: str = ""
    placeholders: list[str] = field(default_factory=list)
    class_id: int = -1


def read_split(path: PathLike, labels: Mapping[str, int] | None = None, *,
               errors: list[DataError] | None = None) -> list[SomethingVideo]:
    """Read a split list. With ``labels``, every entry must carry a ``template`` known to the labels file
    (the error names the nearest known template); without, only ``id`` is required (test lists).

    Ids may be strings or integers in the file; they are returned as strings. Duplicate ids are errors.
    ``errors``: ``None`` → raise the first problem; a list → append every problem and skip bad entries.
    """
    try:
        data = read_json(path)
        if not isinstance(data, list):
            raise DataError(f"expected a JSON list of videos, got {type(data).__name__}", path=path)
    except DataError as exc:
        if errors is None:
            raise
        errors.append(exc)
        return []
    known = list(labels) if labels is not None else []
    videos: list[SomethingVideo] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(data):
        try:
            video = _parse_entry(entry, index, path, labels, known)
            if video.id in seen:
                raise DataError(f"duplicate video id {video.id!r} (first at [{seen[video.id]}])", path=path,
                                field=f"[{index}].id")
        except DataError as exc:
            if errors is None:
                raise
            errors.append(exc)
            continue
        seen[video.id] = index
        videos.append(video)
    return videos


def _parse_entry(entry: Any, index: int, path: PathLike, labels: Mapping[str, int] | None,
                 known: list[str]) -> SomethingVideo:
    def fail(message: str, key: str | None = None) -> DataError:
        return DataError(message, path=path, field=f"[{index}]" + (f".{key}" if key else ""))

    if not isinstance(entry, dict):
        raise fail(f"expected an object with an 'id', got {type(entry).__name__}")
    raw_id = entry.get("id")
    if isinstance(raw_id, bool) or not isinstance(raw_id, str | int) or str(raw_id).strip() == "":
        raise fail(f"expected a video id (string or integer), got {raw_id!r}", "id")
    video_id = str(raw_id).strip()
    template = entry.get("template", "")
    label = entry.get("label", "")
    placeholders = entry.get("placeholders", [])
    if not isinstance(template, str):
        raise fail(f"expected a string, got {template!r}", "template")
    if not isinstance(label, str):
        raise fail(f"expected a string, got {label!r}", "label")
    if not isinstance(placeholders, list) or not all(isinstance(p, str) for p in placeholders):
        raise fail(f"expected a list of strings, got {placeholders!r}", "placeholders")
    class_id = -1
    if labels is not None:
        if not template:
            raise fail(f"video {video_id}: missing 'template' (a labelled split needs one per video)", "template")
        key = template_key(template)
        if key not in labels:
            nearest = difflib.get_close_matches(key, known, n=1, cutoff=0.0)
            hint = f"; nearest known template: {nearest[0]!r}" if nearest else ""
            raise fail(f"video {video_id}: unknown template {template!r} (looked up as {key!r}){hint}",
                       "template")
        class_id = labels[key]
    return SomethingVideo(id=video_id, label=label, template=template, placeholders=placeholders,
                          class_id=class_id)


class SomethingSomething:
    """A Something-Something V2 or Something-Else folder.

    ``variant`` picks the files (see :data:`VARIANTS`): ``"ssv2"`` reads
    ``something-something-v2-{labels,train,validation,test}.json`` from ``root``;
    ``"something-else/compositional"`` reads ``compositional/{labels,train,validation}.json`` and the
    ``"something-else/fewshot-{base,5shot,10shot}"`` variants read the few-shot files under ``fewshot/``.
    Videos live in ``root/videos/<id>.webm`` (``.mp4`` also accepted), or in the official archive folder
    ``root/20bn-something-something-v2/``. Optical flow lives in ``flow_root/<id>/{u,v}/`` (default
    ``flow_root = root/flow``; Something-Else may point it at the SSv2 flow folder, the videos are the same).
    Files are read lazily and cached.
    """

    def __init__(self, root: PathLike, *, variant: str = "ssv2", flow_root: PathLike | None = None):
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; expected one of {', '.join(VARIANTS)}")
        self.root = Path(root)
        self.flow_root = Path(flow_root).expanduser() if flow_root is not None else self.root / "flow"
        self.variant = variant
        self.labels_file, self.split_files = VARIANTS[variant]
        self._labels: dict[str, int] | None = None
        self._videos: dict[str, list[SomethingVideo]] = {}

    def __repr__(self) -> str:
        return f"SomethingSomething(root={str(self.root)!r}, variant={self.variant!r})"

    @property
    def splits(self) -> list[str]:
        return list(self.split_files)

    def split_path(self, split: str) -> Path:
        if split not in self.split_files:
            raise ValueError(f"unknown split {split!r} for {self.variant}; expected one of "
                             f"{', '.join(self.split_files)}")
        return self.root / self.split_files[split]

    @property
    def labels(self) -> dict[str, int]:
        """Template key → class id."""
        if self._labels is None:
            self._labels = read_labels(self.root / self.labels_file)
        return self._labels

    @property
    def classes(self) -> list[str]:
        """Template keys ordered by class id."""
        return sorted(self.labels, key=self.labels.__getitem__)

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def videos(self, split: str) -> list[SomethingVideo]:
        """Entries of ``split`` (``train``, ``validation``, and ``test`` for SSv2), with class ids resolved."""
        if split not in self._videos:
            path = self.split_path(split)
            self._videos[split] = read_split(path, None if split in UNLABELLED_SPLITS else self.labels)
        return self._videos[split]

    def video_candidates(self, video_id: str) -> list[Path]:
        folders = (self.root / "videos", self.root / "20bn-something-something-v2")
        return [folder / f"{video_id}{ext}" for folder in folders for ext in VIDEO_EXTENSIONS]

    def video_path(self, video_id: str) -> Path:
        """The video file of ``video_id``; DataError listing the places tried when absent."""
        return first_existing(self.video_candidates(video_id), f"video {video_id}", root=self.root)

    def flow_dir(self, video_id: str) -> Path:
        """``flow_root/<video_id>`` (holding ``u/`` and ``v/``); DataError naming it when the folder is absent."""
        path = self.flow_root / video_id
        if not path.is_dir():
            raise DataError(f"no optical flow for video {video_id}; extract it with `modalbridge data flow --root "
                            f"{self.root} --variant {self.variant} --out {self.flow_root}`", path=path)
        return path
