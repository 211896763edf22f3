"""Readers for the published EPIC-KITCHENS-100 annotation files (stdlib ``csv`` + numpy, no pandas).

Files (``epic-kitchens-100-annotations`` repository):

* ``EPIC_100_train.csv`` / ``EPIC_100_validation.csv`` — one action segment per row: ``narration_id,
  participant_id, video_id, narration_timestamp, start_timestamp, stop_timestamp, start_frame, stop_frame,
  narration, verb, verb_class, noun, noun_class, all_nouns, all_noun_classes`` (the last two are Python list
  literals such as ``['plate']`` / ``[2]``). ``EPIC_100_test_timestamps.csv`` has no label columns; its
  segments get ``verb_class = noun_class = -1``.
* ``EPIC_100_verb_classes.csv`` / ``EPIC_100_noun_classes.csv`` — ``id,key,instances,category``.
* ``EPIC_100_unseen_participant_ids_{validation,test}.csv`` (``participant_id``),
  ``EPIC_100_tail_verbs.csv`` (``verb``), ``EPIC_100_tail_nouns.csv`` (``noun``).
* ``EPIC_100_video_info.csv`` — ``video_id,duration,fps,resolution`` (``1920x1080``).

Every reader raises :class:`~modalbridge.core.errors.DataError` naming the file, the row and the field.
**Row numbers are line numbers in the file, the header being line 1** (so the first data row is row 2, as
a text editor shows it). A quoted field spanning several lines is reported at the line where its row starts.

Frame numbering (measured on the real validation file): ``start_frame``/``stop_frame`` index the released
RGB frames, which for the original EPIC-KITCHENS-55 recordings (``PXX_YY``) were extracted at 60 fps
whatever the native rate in ``video_info`` says (29.97, 47.95, 59.94 or 90 fps); see :func:`rgb_frame_rate`.
"""

from __future__ import annotations

import ast
import csv
import math
import os
import pickle
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from modalbridge.core.errors import DataError
from modalbridge.core.paths import first_existing

PathLike = str | os.PathLike

__all__ = [
    "ANNOTATION_FILES",
    "EpicKitchens100",
    "EpicSegment",
    "format_timestamp",
    "parse_timestamp",
    "read_annotations_pickle",
    "read_class_ids",
    "read_class_table",
    "read_id_list",
    "read_segment_rows",
    "read_segments",
    "read_video_info",
    "rgb_frame_rate",
]

#: Columns every segment file has (train, validation and test).
SEGMENT_COLUMNS = ("narration_id", "participant_id", "video_id", "start_timestamp", "stop_timestamp",
                   "start_frame", "stop_frame")
#: Label columns: all present (train/validation) or all absent (test timestamps).
LABEL_COLUMNS = ("narration", "verb", "verb_class", "noun", "noun_class", "all_nouns", "all_noun_classes")

#: split name → annotation file name.
ANNOTATION_FILES = {
    "train": "EPIC_100_train.csv",
    "validation": "EPIC_100_validation.csv",
    "test": "EPIC_100_test_timestamps.csv",
}
VERB_CLASSES_FILE = "EPIC_100_verb_classes.csv"
NOUN_CLASSES_FILE = "EPIC_100_noun_classes.csv"
TAIL_VERBS_FILE = "EPIC_100_tail_verbs.csv"
TAIL_NOUNS_FILE = "EPIC_100_tail_nouns.csv"
VIDEO_INFO_FILE = "EPIC_100_video_info.csv"
UNSEEN_FILES = {
    "validation": "EPIC_100_unseen_participant_ids_validation.csv",
    "test": "EPIC_100_unseen_participant_ids_test.csv",
}

_TIMESTAMP = re.compile(r"(\d+):([0-5]\d):([0-5]\d(?:\.\d*)?)")
_EK55_VIDEO = re.compile(r"P\d+_\d{2}")


# --------------------------------------------------------------------------------------------- timestamps
def parse_timestamp(text: str) -> float:
    """``"HH:MM:SS.ss"`` → seconds (float). Raises ``ValueError`` on anything else.

    >>> parse_timestamp("00:01:02.50")
    62.5
    """
    match = _TIMESTAMP.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"expected a timestamp HH:MM:SS.ss, got {text!r}")
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def format_timestamp(seconds: float, decimals: int = 2) -> str:
    """Seconds → ``"HH:MM:SS.ss"`` (rounded to ``decimals``), the inverse of :func:`parse_timestamp`.

    >>> format_timestamp(62.5)
    '00:01:02.50'
    """
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"expected a finite, non-negative number of seconds, got {seconds!r}")
    scale = 10**decimals
    whole, fraction = divmod(round(seconds * scale), scale)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{text}.{fraction:0{decimals}d}" if decimals else text


def rgb_frame_rate(video_id: str, native_fps: float) -> float:
    """Rate at which ``start_frame``/``stop_frame`` of ``video_id`` count frames.

    EPIC-KITCHENS-55 recordings (``PXX_YY``, two-digit video number) were frame-extracted at 60 fps even
    when recorded at 29.97/47.95/90 fps (stop_frame / stop_time ≈ 60.0 on every validation video); the
    EPIC-KITCHENS-100 extension recordings (``PXX_1YY``) keep their native rate (50 fps).
    """
    return 60.0 if _EK55_VIDEO.fullmatch(video_id) else float(native_fps)


# --------------------------------------------------------------------------------------------- segments
@dataclass(frozen=True)
class EpicSegment:
    """One annotated action segment. Frames are 1-based and inclusive (``stop_frame`` is part of it)."""

    narration_id: str
    participant_id: str
    video_id: str
    narration_timestamp: str
    start_timestamp: str
    stop_timestamp: str
    start_time: float
    stop_time: float
    start_frame: int
    stop_frame: int
    narration: str
    verb: str
    verb_class: int
    noun: str
    noun_class: int
    all_nouns: list[str]
    all_noun_classes: list[int]

    @property
    def num_frames(self) -> int:
        """``stop_frame - start_frame + 1``."""
        return self.stop_frame - self.start_frame + 1

    @property
    def labelled(self) -> bool:
        """False for test segments (no verb/noun labels)."""
        return self.verb_class >= 0


@lru_cache(maxsize=1 << 16)
def _literal_list(text: str, item_type: type) -> tuple:
    """Parse a stringified list (``"['a', 'b']"``, ``"[1, 2]"``) safely; cached since values repeat a lot."""
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise ValueError(f"expected a list literal such as {_LIST_EXAMPLE[item_type]}, got {text!r}") from None
    return _check_list(value, item_type, text)


_LIST_EXAMPLE = {str: "['plate', 'tap']", int: "[2, 0]"}


def _check_list(value: Any, item_type: type, shown: Any) -> tuple:
    if not isinstance(value, list | tuple):
        raise ValueError(f"expected a list such as {_LIST_EXAMPLE[item_type]}, got {shown!r}")
    if item_type is int:
        try:
            return tuple(_as_int(v) for v in value)
        except (TypeError, ValueError):
            raise ValueError(f"expected a list of ints, got {shown!r}") from None
    if not all(isinstance(v, str) for v in value):
        raise ValueError(f"expected a list of strings, got {shown!r}")
    return tuple(value)


def _as_int(value: Any) -> int:
    """int from an int-like value or a decimal string; bools and non-integral floats are refused."""
    if isinstance(value, str):
        return int(value.strip())
    if isinstance(value, bool):
        raise TypeError("bool is not an int")
    if isinstance(value, float | np.floating):
        if not float(value).is_integer():
            raise ValueError(f"{value!r} is not an integer")
        return int(value)
    return int(value.__index__())


class _RowParser:
    """Converts one record (CSV strings, or native values from a pickle) and collects its field problems."""

    def __init__(self, record: Mapping[str, Any], path: PathLike, row: int | None):
        self.record, self.path, self.row = record, path, row
        self.problems: list[DataError] = []

    def fail(self, field: str, message: str) -> None:
        self.problems.append(DataError(message, path=self.path, row=self.row, field=field))

    def text(self, field: str, *, required: bool = True) -> str:
        value = self.record.get(field, "")
        if type(value) is not str:  # native values from a pickle
            value = "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
        if required and (not value or value.isspace()):
            self.fail(field, "expected a non-empty value, got an empty field")
        return value

    def integer(self, field: str) -> int | None:
        value = self.record.get(field)
        try:
            return _as_int(value)
        except (TypeError, ValueError, AttributeError):
            self.fail(field, f"expected an integer, got {value!r}")
            return None

    def timestamp(self, field: str, *, required: bool = True) -> tuple[str, float | None]:
        text = self.text(field, required=required)
        if not text.strip():
            return text, None
        try:
            return text, parse_timestamp(text)
        except ValueError:
            self.fail(field, f"expected a timestamp HH:MM:SS.ss, got {text!r}")
            return text, None

    def literal_list(self, field: str, item_type: type) -> list | None:
        value = self.record.get(field)
        try:
            if isinstance(value, str):
                return list(_literal_list(value, item_type))
            return list(_check_list(value, item_type, value))
        except ValueError as exc:
            self.fail(field, str(exc))
            return None

    def class_id(self, field: str, num_classes: int | None) -> int | None:
        value = self.integer(field)
        if value is not None and not _in_range(value, num_classes):
            self.fail(field, f"class id {value} out of range 0..{_max_id(num_classes)}")
            return None
        return value


def _in_range(value: int, num_classes: int | None) -> bool:
    return value >= 0 and (num_classes is None or value < num_classes)


def _max_id(num_classes: int | None) -> str:
    return "" if num_classes is None else str(num_classes - 1)


def _parse_segment(record: Mapping[str, Any], *, labelled: bool, path: PathLike, row: int | None,
                   num_verbs: int | None, num_nouns: int | None) -> tuple[EpicSegment | None, list[DataError]]:
    p = _RowParser(record, path, row)
    narration_id = p.text("narration_id")
    participant_id = p.text("participant_id")
    video_id = p.text("video_id")
    if participant_id and video_id and not video_id.startswith(participant_id + "_"):
        p.fail("video_id", f"video {video_id!r} does not belong to participant {participant_id!r}")
    if narration_id and video_id and not narration_id.startswith(video_id + "_"):
        p.fail("narration_id", f"narration id {narration_id!r} does not start with its video id {video_id!r}")
    narration_timestamp, _ = p.timestamp("narration_timestamp", required=False)
    start_timestamp, start_time = p.timestamp("start_timestamp")
    stop_timestamp, stop_time = p.timestamp("stop_timestamp")
    start_frame, stop_frame = p.integer("start_frame"), p.integer("stop_frame")
    if start_frame is not None and start_frame < 1:
        p.fail("start_frame", f"frames are 1-based, got start_frame {start_frame}")
    if start_frame is not None and stop_frame is not None and stop_frame < start_frame:
        p.fail("stop_frame", f"stop_frame {stop_frame} is before start_frame {start_frame}")
    if start_time is not None and stop_time is not None and stop_time < start_time:
        p.fail("stop_timestamp", f"stop_timestamp {stop_timestamp} is before start_timestamp {start_timestamp}")
    if labelled:
        narration, verb, noun = p.text("narration"), p.text("verb"), p.text("noun")
        verb_class = p.class_id("verb_class", num_verbs)
        noun_class = p.class_id("noun_class", num_nouns)
        all_nouns = p.literal_list("all_nouns", str)
        all_noun_classes = p.literal_list("all_noun_classes", int)
        if all_noun_classes is not None:
            bad = [c for c in all_noun_classes if not _in_range(c, num_nouns)]
            if bad:
                p.fail("all_noun_classes", f"class ids {bad} out of range 0..{_max_id(num_nouns)}")
            if all_nouns is not None and len(all_nouns) != len(all_noun_classes):
                p.fail("all_noun_classes", f"{len(all_noun_classes)} classes for {len(all_nouns)} nouns "
                       f"in all_nouns")
    else:
        narration, verb, noun = "", "", ""
        verb_class = noun_class = -1
        all_nouns, all_noun_classes = [], []
    if p.problems:
        return None, p.problems
    segment = EpicSegment(
        narration_id=narration_id, participant_id=participant_id, video_id=video_id,
        narration_timestamp=narration_timestamp, start_timestamp=start_timestamp,
        stop_timestamp=stop_timestamp, start_time=start_time, stop_time=stop_time,  # type: ignore[arg-type]
        start_frame=start_frame, stop_frame=stop_frame,  # type: ignore[arg-type]
        narration=narration, verb=verb, verb_class=verb_class, noun=noun, noun_class=noun_class,  # type: ignore[arg-type]
        all_nouns=all_nouns, all_noun_classes=all_noun_classes,  # type: ignore[arg-type]
    )
    return segment, []


class _Collector:
    """``errors is None`` → raise the first problem; otherwise append to ``errors``."""

    def __init__(self, errors: list[DataError] | None):
        self.errors = errors

    def add(self, problems: Iterable[DataError]) -> None:
        for problem in problems:
            if self.errors is None:
                raise problem
            self.errors.append(problem)


def _label_mode(columns: Iterable[str], path: PathLike) -> bool:
    """True when the file has labels; raises a DataError naming missing columns."""
    present = set(columns)
    missing = [c for c in SEGMENT_COLUMNS if c not in present]
    labels = [c for c in LABEL_COLUMNS if c in present]
    if labels:
        missing += [c for c in LABEL_COLUMNS if c not in present]
    if missing:
        raise DataError(f"missing column(s) {', '.join(missing)} in the header (found: {', '.join(columns)})",
                        path=path, row=1)
    return bool(labels)


def csv_rows(path: PathLike) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line, fields)`` for every row, header included (line 1). Blank lines are skipped.

    Raises DataError for a missing/unreadable file or a malformed CSV line.
    """
    try:
        handle = open(path, newline="", encoding="utf-8-sig")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        raise DataError("file not found", path=path) from None
    except OSError as exc:
        raise DataError(f"cannot open file: {exc.strerror or exc}", path=path) from None
    with handle:
        reader = csv.reader(handle)
        end = 0
        while True:
            start = end + 1
            try:
                fields = next(reader)
            except StopIteration:
                return
            except (csv.Error, UnicodeDecodeError) as exc:
                raise DataError(f"malformed CSV: {exc}", path=path, row=start) from None
            end = reader.line_num
            if fields:
                yield start, fields


class _Table:
    """A small CSV table: header + rows as dicts, with field-count checks, for the class/id/info files."""

    def __init__(self, path: PathLike, required: Iterable[str]):
        self.path = path
        rows = csv_rows(path)
        first = next(rows, None)
        if first is None:
            raise DataError(f"empty file, expected a header with column(s) {', '.join(required)}", path=path)
        self.header = [name.strip() for name in first[1]]
        missing = [c for c in required if c not in self.header]
        if missing:
            raise DataError(f"missing column(s) {', '.join(missing)} in the header "
                            f"(found: {', '.join(self.header)})", path=path, row=1)
        self._rows = rows

    def records(self, collect: _Collector) -> Iterator[tuple[int, dict[str, str]]]:
        width = len(self.header)
        for line, fields in self._rows:
            if len(fields) != width:
                collect.add([DataError(f"expected {width} fields, found {len(fields)}", path=self.path,
                                       row=line)])
                continue
            yield line, dict(zip(self.header, fields))


def read_segments(path: PathLike, *, num_verbs: int | None = None, num_nouns: int | None = None,
                  errors: list[DataError] | None = None) -> list[EpicSegment]:
    """Read an EPIC-KITCHENS-100 segment CSV (train, validation or test timestamps).

    Validates the header, every field, ``1 <= start_frame <= stop_frame``, ``start_time <= stop_time``,
    that ``video_id`` belongs to ``participant_id`` and ``narration_id`` to ``video_id``, class ids in
    ``0..num_verbs-1`` / ``0..num_nouns-1`` when given, and unique ``narration_id``. Extra columns (e.g.
    ``uid`` of older files) are ignored.

    Args:
        errors: ``None`` → raise the first problem as :class:`DataError`. A list → append every problem
            (file-level ones included) and return only the rows without problems.

    Row numbers in errors are line numbers in the file, header = line 1.
    """
    return [segment for _line, segment in read_segment_rows(path, num_verbs=num_verbs, num_nouns=num_nouns,
                                                             errors=errors)]


def read_segment_rows(path: PathLike, *, num_verbs: int | None = None, num_nouns: int | None = None,
                      errors: list[DataError] | None = None) -> list[tuple[int, EpicSegment]]:
    """:func:`read_segments`, each segment paired with its line number (header = line 1) for messages."""
    collect = _Collector(errors)
    try:
        rows = csv_rows(path)
        first = next(rows, None)
        if first is None:
            raise DataError("empty file, expected a header row", path=path)
        header = [name.strip() for name in first[1]]
        labelled = _label_mode(header, path)
    except DataError as exc:
        collect.add([exc])
        return []
    index = {name: i for i, name in enumerate(header)}
    width = len(header)
    segments: list[tuple[int, EpicSegment]] = []
    seen: dict[str, int] = {}
    try:
        for line, fields in rows:
            if len(fields) != width:
                collect.add([DataError(f"expected {width} fields, found {len(fields)}", path=path, row=line)])
                continue
            record = {name: fields[i] for name, i in index.items()}
            segment, problems = _parse_segment(record, labelled=labelled, path=path, row=line,
                                               num_verbs=num_verbs, num_nouns=num_nouns)
            if segment is not None and segment.narration_id in seen:
                problems = [DataError(f"duplicate narration_id {segment.narration_id!r} (first at row "
                                      f"{seen[segment.narration_id]})", path=path, row=line,
                                      field="narration_id")]
            if problems:
                collect.add(problems)
                continue
            seen[segment.narration_id] = line  # type: ignore[union-attr]
            segments.append((line, segment))  # type: ignore[arg-type]
    except DataError as exc:  # malformed CSV line: nothing after it can be trusted
        collect.add([exc])
    return segments


def read_annotations_pickle(path: PathLike, *, allow_pickle: bool = False, num_verbs: int | None = None,
                            num_nouns: int | None = None,
                            errors: list[DataError] | None = None) -> list[EpicSegment]:
    """Read the ``.pkl`` twin of an annotation CSV (a pandas DataFrame indexed by ``narration_id``).

    Unpickling runs arbitrary code from the file, so it is refused unless ``allow_pickle=True`` (an explicit
    opt-in of the Python API; the CLI reads CSVs only). Prefer the CSV, which holds the same data. Uses pandas when installed (needed for a
    DataFrame pickle); otherwise plain :mod:`pickle`, which can read a list of dicts or a dict
    ``narration_id → dict``. Rows are validated like :func:`read_segments`; here ``row`` in errors is the
    1-based position of the record in the table.
    """
    if not allow_pickle:
        raise DataError("refusing to unpickle: loading a pickle can execute arbitrary code. Use the CSV file "
                        "with the same name instead, or call read_annotations_pickle(..., allow_pickle=True) if you trust "
                        "this file", path=path)
    if not Path(path).is_file():
        raise DataError("file not found", path=path)
    try:
        import pandas as pd  # type: ignore[import-not-found]
    except ImportError:
        pd = None
    try:
        if pd is not None:
            data = pd.read_pickle(path)
        else:
            with open(path, "rb") as handle:
                data = pickle.load(handle)  # noqa: S301 - explicit opt-in above
    except Exception as exc:  # noqa: BLE001 - anything the unpickler raises becomes a DataError
        hint = " (a DataFrame pickle needs pandas installed)" if pd is None else ""
        raise DataError(f"cannot unpickle: {type(exc).__name__}: {exc}{hint}", path=path) from None
    records = list(_pickle_records(data, path))
    collect = _Collector(errors)
    try:
        labelled = _label_mode(list(records[0]) if records else list(SEGMENT_COLUMNS), path)
    except DataError as exc:
        collect.add([exc])
        return []
    segments, seen = [], set()
    for row, record in enumerate(records, start=1):
        segment, problems = _parse_segment(record, labelled=labelled, path=path, row=row,
                                           num_verbs=num_verbs, num_nouns=num_nouns)
        if segment is not None and segment.narration_id in seen:
            problems = [DataError(f"duplicate narration_id {segment.narration_id!r}", path=path, row=row,
                                  field="narration_id")]
        if problems:
            collect.add(problems)
            continue
        seen.add(segment.narration_id)  # type: ignore[union-attr]
        segments.append(segment)
    return segments


def _pickle_records(data: Any, path: PathLike) -> Iterator[dict[str, Any]]:
    if hasattr(data, "to_dict") and hasattr(data, "index"):  # pandas DataFrame indexed by narration_id
        index_name = getattr(data.index, "name", None) or "narration_id"
        for key, row in zip(data.index, data.to_dict("records")):
            yield {index_name: key, **row} if "narration_id" not in row else row
    elif isinstance(data, Mapping):
        for key, row in data.items():
            yield {"narration_id": key, **row}
    elif isinstance(data, list | tuple) and all(isinstance(r, Mapping) for r in data):
        yield from (dict(r) for r in data)
    else:
        raise DataError(f"expected a DataFrame, a dict or a list of dicts, got {type(data).__name__}", path=path)


# --------------------------------------------------------------------------------------------- small tables
def read_class_table(path: PathLike) -> list[str]:
    """``EPIC_100_{verb,noun}_classes.csv`` → class keys ordered by id (ids must be exactly 0..n-1)."""
    table = _Table(path, ("id", "key"))
    by_id: dict[int, tuple[str, int]] = {}
    collect = _Collector(None)
    for line, record in table.records(collect):
        p = _RowParser(record, path, line)
        class_id, key = p.integer("id"), p.text("key")
        if class_id is not None and class_id in by_id:
            p.fail("id", f"duplicate class id {class_id} (first at row {by_id[class_id][1]})")
        elif class_id is not None and class_id < 0:
            p.fail("id", f"class ids must be >= 0, got {class_id}")
        if p.problems:
            collect.add(p.problems)
            continue
        by_id[class_id] = (key, line)  # type: ignore[index]
    gaps = sorted(set(range(len(by_id))) - set(by_id))
    if gaps:
        raise DataError(f"class ids must be contiguous 0..{len(by_id) - 1}; missing id(s) {gaps[:10]}",
                        path=path, field="id")
    return [by_id[i][0] for i in range(len(by_id))]


def read_id_list(path: PathLike, column: str) -> list[str]:
    """One column of a one-id-per-row file (unseen participants: ``participant_id``; tail: ``verb``/``noun``).

    Returns the ids in file order; empty values and duplicates are errors.
    """
    return [value for _line, value in _id_rows(path, column)]


def _id_rows(path: PathLike, column: str) -> list[tuple[int, str]]:
    table = _Table(path, (column,))
    collect = _Collector(None)
    ids: dict[str, int] = {}
    for line, record in table.records(collect):
        value = record[column].strip()
        if not value:
            collect.add([DataError("expected an id, got an empty field", path=path, row=line, field=column)])
        if value in ids:
            collect.add([DataError(f"duplicate id {value!r} (first at row {ids[value]})", path=path, row=line,
                                   field=column)])
        ids[value] = line
    return [(line, value) for value, line in ids.items()]


def read_class_ids(path: PathLike, column: str, num_classes: int | None = None) -> set[int]:
    """Integer class ids of a tail list (``EPIC_100_tail_verbs.csv`` → ``verb``), range-checked when
    ``num_classes`` is given."""
    values = set()
    for line, text in _id_rows(path, column):
        try:
            value = int(text)
        except ValueError:
            raise DataError(f"expected an integer class id, got {text!r}", path=path, row=line,
                            field=column) from None
        if not _in_range(value, num_classes):
            raise DataError(f"class id {value} out of range 0..{_max_id(num_classes)}", path=path, row=line,
                            field=column)
        values.add(value)
    return values


def read_video_info(path: PathLike) -> dict[str, tuple[float, float, tuple[int, int]]]:
    """``EPIC_100_video_info.csv`` → ``video_id → (duration_s, fps, (width, height))``."""
    table = _Table(path, ("video_id", "duration", "fps", "resolution"))
    collect = _Collector(None)
    info: dict[str, tuple[float, float, tuple[int, int]]] = {}
    for line, record in table.records(collect):
        p = _RowParser(record, path, line)
        video_id = p.text("video_id")
        if video_id in info:
            p.fail("video_id", f"duplicate video id {video_id!r}")
        numbers = []
        for name in ("duration", "fps"):
            try:
                value = float(record[name])
                if not (math.isfinite(value) and value > 0):
                    raise ValueError
                numbers.append(value)
            except ValueError:
                p.fail(name, f"expected a positive number, got {record[name]!r}")
        match = re.fullmatch(r"\s*(\d+)\s*x\s*(\d+)\s*", record["resolution"])
        if match is None or 0 in (int(match[1]), int(match[2])):
            p.fail("resolution", f"expected WIDTHxHEIGHT such as 1920x1080, got {record['resolution']!r}")
        if p.problems:
            collect.add(p.problems)
            continue
        info[video_id] = (numbers[0], numbers[1], (int(match[1]), int(match[2])))  # type: ignore[index]
    return info


# --------------------------------------------------------------------------------------------- dataset
class EpicKitchens100:
    """An EPIC-KITCHENS-100 folder: annotations (required) and media (optional).

    Annotation files are looked up in ``annotations_root`` if given, else in ``root``, else in
    ``root/epic-kitchens-100-annotations`` (the annotation repository cloned inside the data root). Every
    file is read lazily on first use and cached; a missing file is reported only when something needs it.

    Media layout (official download scripts): ``root/PXX/videos/PXX_YY.MP4``,
    ``root/PXX/rgb_frames/PXX_YY/frame_0000000001.jpg`` (or the ``PXX_YY.tar`` release) and
    ``root/PXX/flow_frames/PXX_YY/{u,v}/frame_*.jpg``.
    """

    def __init__(self, root: PathLike, *, annotations_root: PathLike | None = None):
        self.root = Path(root)
        if annotations_root is not None:
            self.annotations_root = Path(annotations_root)
        else:
            nested = self.root / "epic-kitchens-100-annotations"
            has_here = any((self.root / name).exists() for name in ANNOTATION_FILES.values())
            self.annotations_root = nested if (not has_here and nested.is_dir()) else self.root
        self._segments: dict[str, list[EpicSegment]] = {}
        self._cache: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"EpicKitchens100(root={str(self.root)!r}, annotations_root={str(self.annotations_root)!r})"

    # -- files
    def annotation_file(self, name: str, *, what: str | None = None) -> Path:
        """Path of an annotation file, or a DataError saying what it is needed for and where to get it."""
        path = self.annotations_root / name
        if not path.is_file():
            need = f" (needed for {what})" if what else ""
            raise DataError(f"missing annotation file{need}; get it from "
                            f"https://github.com/epic-kitchens/epic-kitchens-100-annotations", path=path)
        return path

    def _cached(self, key: str, load: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = load()
        return self._cache[key]

    def has_file(self, name: str) -> bool:
        return (self.annotations_root / name).is_file()

    # -- annotations
    def segments(self, split: str) -> list[EpicSegment]:
        """Segments of ``"train"``, ``"validation"`` or ``"test"`` (validated; class ids range-checked when
        the class tables are present). Cached."""
        if split not in ANNOTATION_FILES:
            raise ValueError(f"unknown split {split!r}; expected one of {', '.join(ANNOTATION_FILES)}")
        if split not in self._segments:
            path = self.annotation_file(ANNOTATION_FILES[split], what=f"the {split} split")
            self._segments[split] = read_segments(path, num_verbs=self._num_classes(VERB_CLASSES_FILE),
                                                  num_nouns=self._num_classes(NOUN_CLASSES_FILE))
        return self._segments[split]

    def _num_classes(self, name: str) -> int | None:
        return len(self._class_table(name)) if self.has_file(name) else None

    def _class_table(self, name: str) -> list[str]:
        return self._cached(name, lambda: read_class_table(self.annotation_file(name, what="class names")))

    @property
    def verbs(self) -> list[str]:
        """Verb class keys ordered by id (97)."""
        return self._class_table(VERB_CLASSES_FILE)

    @property
    def nouns(self) -> list[str]:
        """Noun class keys ordered by id (300)."""
        return self._class_table(NOUN_CLASSES_FILE)

    def unseen_participants_of(self, split: str = "validation") -> set[str]:
        """Participants held out of training, for the ``validation`` or ``test`` split."""
        name = UNSEEN_FILES[split]
        return self._cached(name, lambda: set(read_id_list(
            self.annotation_file(name, what="the unseen-participant split"), "participant_id")))

    @property
    def unseen_participants(self) -> set[str]:
        """Unseen participants of the validation split (P18, P32)."""
        return self.unseen_participants_of("validation")

    @property
    def tail_verbs(self) -> set[int]:
        """Verb class ids of the tail (86)."""
        return self._cached(TAIL_VERBS_FILE, lambda: read_class_ids(
            self.annotation_file(TAIL_VERBS_FILE, what="the tail split"), "verb",
            self._num_classes(VERB_CLASSES_FILE)))

    @property
    def tail_nouns(self) -> set[int]:
        """Noun class ids of the tail (228)."""
        return self._cached(TAIL_NOUNS_FILE, lambda: read_class_ids(
            self.annotation_file(TAIL_NOUNS_FILE, what="the tail split"), "noun",
            self._num_classes(NOUN_CLASSES_FILE)))

    @property
    def video_info(self) -> dict[str, tuple[float, float, tuple[int, int]]]:
        """``video_id → (duration_s, fps, (width, height))``."""
        return self._cached(VIDEO_INFO_FILE, lambda: read_video_info(
            self.annotation_file(VIDEO_INFO_FILE, what="per-video fps and duration")))

    def _video_info_of(self, video_id: str) -> tuple[float, float, tuple[int, int]]:
        info = self.video_info
        if video_id not in info:
            raise DataError(f"unknown video {video_id!r} (not listed)", path=self.annotations_root / VIDEO_INFO_FILE)
        return info[video_id]

    def fps(self, video_id: str) -> float:
        """Native frame rate of the video file (from ``EPIC_100_video_info.csv``)."""
        return self._video_info_of(video_id)[1]

    def frame_rate(self, video_id: str) -> float:
        """Rate of the RGB frame numbering used by ``start_frame``/``stop_frame`` (see :func:`rgb_frame_rate`)."""
        return rgb_frame_rate(video_id, self.fps(video_id))

    def decode_rates(self, video_id: str) -> tuple[float, float]:
        """``(annotation frame rate, native fps)`` of a video: annotation frame ``f`` (1-based) is at
        ``(f - 1) / rate`` seconds, which is decode index ``floor(seconds · fps)`` of the video file. From
        ``EPIC_100_video_info.csv``; 1:1 at the video header's fps when that file is absent. Cached."""
        def load() -> tuple[float, float]:
            try:
                return self.frame_rate(video_id), self.fps(video_id)
            except (DataError, FileNotFoundError):
                from modalbridge.io.video import probe

                fps = probe(self.video_path(video_id)).fps
                return fps, fps

        return self._cached(f"rates/{video_id}", load)

    def frame_times(self, video_id: str, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """1-based annotation frame numbers ``(T,)`` → ``(seconds (T,) float, 0-based decode indices (T,) int64)``
        in the video file (see :meth:`decode_rates`)."""
        rate, fps = self.decode_rates(video_id)
        times = (np.asarray(frames, dtype=np.int64) - 1) / rate
        return times, np.floor(times * fps + 1e-6).astype(np.int64)

    def num_frames(self, video_id: str) -> int:
        """Number of RGB frames of the video implied by its duration: ``ceil(duration · frame_rate)``."""
        duration = self._video_info_of(video_id)[0]
        return math.ceil(duration * self.frame_rate(video_id))

    def split_masks(self, segments: list[EpicSegment], *, split: str = "validation") -> dict[str, np.ndarray]:
        """Boolean masks over ``segments`` for the evaluation splits.

        ``regular`` = all rows (the thesis' "Regular" = full validation set); ``unseen`` = participant in the
        unseen list of ``split``; ``seen`` = ``~unseen``; ``tail_verb`` / ``tail_noun`` = class in the tail
        list; ``tail_action_and`` = both tail, ``tail_action_or`` = either (the reference computes both since
        the papers do not say which "tail action" means).
        """
        unseen_ids = self.unseen_participants_of(split)
        tail_verbs, tail_nouns = self.tail_verbs, self.tail_nouns
        unseen = np.fromiter((s.participant_id in unseen_ids for s in segments), bool, len(segments))
        tail_verb = np.fromiter((s.verb_class in tail_verbs for s in segments), bool, len(segments))
        tail_noun = np.fromiter((s.noun_class in tail_nouns for s in segments), bool, len(segments))
        return {
            "regular": np.ones(len(segments), bool),
            "unseen": unseen,
            "seen": ~unseen,
            "tail_verb": tail_verb,
            "tail_noun": tail_noun,
            "tail_action_and": tail_verb & tail_noun,
            "tail_action_or": tail_verb | tail_noun,
        }

    # -- media
    @staticmethod
    def participant_of(video_id: str) -> str:
        """``"P01_11"`` → ``"P01"``."""
        return video_id.split("_", 1)[0]

    def video_candidates(self, video_id: str) -> list[Path]:
        """Where :meth:`video_path` looks, in order."""
        participant = self.participant_of(video_id)
        return [self.root / participant / "videos" / f"{video_id}.MP4",
                self.root / participant / "videos" / f"{video_id}.mp4",
                self.root / "videos" / f"{video_id}.MP4",
                self.root / "videos" / f"{video_id}.mp4"]

    def video_path(self, video_id: str) -> Path:
        """The video file; DataError listing the places tried when it is not there."""
        return first_existing(self.video_candidates(video_id), f"video {video_id}", root=self.root)

    def rgb_frames_dir(self, video_id: str) -> Path:
        """``root/PXX/rgb_frames/PXX_YY`` holding ``frame_0000000001.jpg`` … (1-based)."""
        return self.root / self.participant_of(video_id) / "rgb_frames" / video_id

    def flow_dir(self, video_id: str) -> Path:
        """``root/PXX/flow_frames/PXX_YY`` holding ``u/`` and ``v/`` (flow frame = ceil(rgb frame / 2))."""
        return self.root / self.participant_of(video_id) / "flow_frames" / video_id
