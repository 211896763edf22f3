"""``modalbridge data check <dataset> <root>``: validate a dataset folder and list every problem.

Each checker returns a :class:`CheckReport` ``(problems, summary)``: every problem as a
:class:`~modalbridge.core.errors.DataError` (none = the folder is usable) instead of stopping at the first one,
and what was found (``{"splits": 2, "segments": 180, …}``, printed by the CLI as ``found: 2 splits, 180
segments, …``). :func:`check_dataset` returns the problems alone (a list). A root that is not a folder raises
:class:`~modalbridge.core.errors.DataError` (nothing can be checked). What is required:

* ``epic-kitchens-100`` — the verb and noun class tables and at least one segment CSV. By default the
  splits checked are those whose CSV exists, so an annotation-only root with just the validation file (as
  released for this project) is valid; ask for ``splits=["train"]`` to make a missing train CSV a problem.
  Optional tables (tail lists, unseen participants, video_info) are checked when present. Media are checked
  only when the folder kind exists at all (any ``*/videos``, ``*/rgb_frames``, ``*/flow_frames``): then
  every video used by a segment must have its file / frame folder (or ``.tar``), and extracted frame folders
  must reach the last frame a segment needs. With video_info, ``stop_frame`` must not pass the end of the
  video: ``stop_frame > duration · frame_rate + 1`` is a problem, ``frame_rate`` being the rate of the RGB
  frame numbering (60 fps for EPIC-KITCHENS-55 recordings, see :func:`~modalbridge.datasets.epic_kitchens.rgb_frame_rate`).
* ``ssv2`` — labels, train and validation lists (test when present); videos when ``videos/`` exists.
* ``something-else`` — every split variant whose labels file exists (at least one), the box part files and
  ``videoid2size.json`` (sizes must cover every boxed video of the splits); videos when ``videos/`` exists.

Missing-video problems are listed one by one up to :data:`MAX_LISTED` per split, then summarised. Loops over
many videos and the box files show progress (:func:`~modalbridge.core.progress.progress`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

from modalbridge.core.errors import DataError
from modalbridge.core.progress import progress
from modalbridge.datasets import boxes as box_io
from modalbridge.datasets import epic_kitchens as ek
from modalbridge.datasets import something as sth

PathLike = str | os.PathLike

__all__ = ["MAX_LISTED", "CheckReport", "check_dataset", "check_epic_kitchens_100",
           "check_something_else", "check_ssv2", "dataset_checkers", "format_report", "format_summary"]

MAX_LISTED = 50
#: loops over at least this many videos show progress (shorter ones finish at once)
PROGRESS_MIN = 100


class CheckReport(NamedTuple):
    """What a checker returns: every problem, and what was found (``{"splits": 2, "videos": 12, …}``)."""

    problems: list[DataError]
    summary: dict[str, int]


def _root(root: PathLike) -> Path:
    """``root`` as a Path; a missing root (or a file) is an error, not a problem list."""
    root = Path(root)
    if not root.is_dir():
        what = "is a file, expected the dataset folder" if root.exists() else "dataset folder not found"
        raise DataError(f"{what} (give the folder that holds the annotation files)", path=root)
    return root


def _guard(problems: list[DataError], load: Callable[[], object]) -> object | None:
    """Run ``load``; on DataError record it and return None."""
    try:
        return load()
    except DataError as exc:
        problems.append(exc)
        return None


# --------------------------------------------------------------------------------------------- EPIC
def check_epic_kitchens_100(root: PathLike, *, splits: Sequence[str] | None = None,
                            annotations_root: PathLike | None = None) -> CheckReport:
    """Every problem of an EPIC-KITCHENS-100 folder (see the module docstring for what is required), and the
    splits, segments, verb/noun classes and videos found."""
    root = _root(root)
    dataset = ek.EpicKitchens100(root, annotations_root=annotations_root)
    ann = dataset.annotations_root
    problems: list[DataError] = []

    num_classes: dict[str, int | None] = {}
    for kind, name in (("verb", ek.VERB_CLASSES_FILE), ("noun", ek.NOUN_CLASSES_FILE)):
        path = ann / name
        if not path.is_file():
            problems.append(DataError(f"missing required file ({kind} class names)", path=path))
            num_classes[kind] = None
            continue
        table = _guard(problems, lambda path=path: ek.read_class_table(path))
        num_classes[kind] = len(table) if table is not None else None
    for name, column, kind in ((ek.TAIL_VERBS_FILE, "verb", "verb"), (ek.TAIL_NOUNS_FILE, "noun", "noun")):
        if (ann / name).is_file():
            _guard(problems, lambda n=name, c=column, k=kind: ek.read_class_ids(ann / n, c, num_classes[k]))
    for name in ek.UNSEEN_FILES.values():
        if (ann / name).is_file():
            _guard(problems, lambda n=name: ek.read_id_list(ann / n, "participant_id"))
    info = None
    if (ann / ek.VIDEO_INFO_FILE).is_file():
        info = _guard(problems, lambda: ek.read_video_info(ann / ek.VIDEO_INFO_FILE))

    if splits is None:
        chosen = [s for s, name in ek.ANNOTATION_FILES.items() if (ann / name).is_file()]
        if not chosen:
            problems.append(DataError("no segment CSV found; expected one of "
                                      f"{', '.join(ek.ANNOTATION_FILES.values())}", path=ann))
    else:
        unknown = [s for s in splits if s not in ek.ANNOTATION_FILES]
        if unknown:
            raise ValueError(f"unknown split(s) {unknown}; expected {', '.join(ek.ANNOTATION_FILES)}")
        chosen = list(splits)

    first_seen: dict[str, tuple[Path, int]] = {}
    found_splits, segments, videos = 0, 0, set()
    for split in chosen:
        path = ann / ek.ANNOTATION_FILES[split]
        if not path.is_file():
            problems.append(DataError(f"missing {split} segments file", path=path))
            continue
        rows = ek.read_segment_rows(path, num_verbs=num_classes["verb"], num_nouns=num_classes["noun"],
                                    errors=problems)
        found_splits, segments = found_splits + 1, segments + len(rows)
        videos.update(segment.video_id for _, segment in rows)
        for line, segment in rows:
            if segment.narration_id in first_seen:
                other, other_line = first_seen[segment.narration_id]
                problems.append(DataError(f"narration_id {segment.narration_id!r} also in {other.name} row "
                                          f"{other_line}", path=path, row=line, field="narration_id"))
            else:
                first_seen[segment.narration_id] = (path, line)
        if info is not None:
            problems += _check_against_video_info(path, rows, info)  # type: ignore[arg-type]
        problems += _check_epic_media(dataset, path, rows)
    summary = {"splits": found_splits, "segments": segments, "verb classes": num_classes["verb"],
               "noun classes": num_classes["noun"], "videos": len(videos)}
    return CheckReport(problems, {k: v for k, v in summary.items() if v is not None})


def _check_against_video_info(path: Path, rows: list[tuple[int, ek.EpicSegment]],
                              info: dict[str, tuple[float, float, tuple[int, int]]]) -> list[DataError]:
    problems: list[DataError] = []
    unknown: set[str] = set()
    for line, segment in rows:
        video_id = segment.video_id
        if video_id not in info:
            if video_id not in unknown:
                unknown.add(video_id)
                problems.append(DataError(f"video {video_id} is not in {ek.VIDEO_INFO_FILE}", path=path, row=line,
                                          field="video_id"))
            continue
        duration, fps, _size = info[video_id]
        rate = ek.rgb_frame_rate(video_id, fps)
        if segment.stop_frame > duration * rate + 1:
            problems.append(DataError(
                f"stop_frame {segment.stop_frame} is past the end of video {video_id} ({duration:.2f} s "
                f"= {duration * rate:.0f} frames at {rate:g} fps)", path=path, row=line, field="stop_frame"))
    return problems


def _media_present(root: Path, kind: str) -> bool:
    return (kind == "videos" and (root / "videos").is_dir()) or any(p.is_dir() for p in root.glob(f"*/{kind}"))


def _check_epic_media(dataset: ek.EpicKitchens100, path: Path,
                      rows: list[tuple[int, ek.EpicSegment]]) -> list[DataError]:
    """One problem per video whose media is missing (named at the first row that needs it)."""
    if not rows:
        return []
    videos: dict[str, tuple[int, int, int]] = {}  # video → (first line, segment count, max stop_frame)
    for line, segment in rows:
        first, count, last = videos.get(segment.video_id, (line, 0, 0))
        videos[segment.video_id] = (first, count + 1, max(last, segment.stop_frame))
    root = dataset.root
    check_video = _media_present(root, "videos")
    check_rgb = _media_present(root, "rgb_frames")
    check_flow = _media_present(root, "flow_frames")
    problems = []
    if not (check_video or check_rgb or check_flow):
        return problems
    for video_id, (line, count, last) in progress(videos.items(), f"check media of {path.name}", unit="video",
                                                  min_items=PROGRESS_MIN):
        def problem(message: str, line: int = line, count: int = count, video_id: str = video_id) -> DataError:
            return DataError(f"video {video_id}: {message} (needed by {count} segment(s))", path=path, row=line,
                             field="video_id")

        if check_video and not any(p.is_file() for p in dataset.video_candidates(video_id)):
            tried = dataset.video_candidates(video_id)[0]
            problems.append(problem(f"no video file ({tried} or .mp4, or under {root / 'videos'})"))
        if check_rgb:
            problems += _frames_problem(dataset.rgb_frames_dir(video_id), [f"frame_{last:010d}.jpg"], problem)
        if check_flow:
            flow_last = math.ceil(last / 2)
            names = [f"u/frame_{flow_last:010d}.jpg", f"v/frame_{flow_last:010d}.jpg"]
            problems += _frames_problem(dataset.flow_dir(video_id), names, problem)
    return problems


def _frames_problem(folder: Path, needed: list[str], problem: Callable[[str], DataError]) -> list[DataError]:
    if folder.is_dir():
        missing = [n for n in needed if not (folder / n).is_file()]
        return [problem(f"{folder / missing[0]} is missing (the frames end too early)")] if missing else []
    if folder.with_name(folder.name + ".tar").is_file():
        return []  # packed release: contents not inspected
    return [problem(f"no frame folder {folder} (or {folder.name}.tar)")]


# --------------------------------------------------------------------------------------------- SSv2 / SthElse
def _video_listing(root: Path) -> set[str] | None:
    """Names of the files in ``root/videos`` and ``root/20bn-something-something-v2``; None if neither exists."""
    folders = [root / "videos", root / "20bn-something-something-v2"]
    if not any(f.is_dir() for f in folders):
        return None
    return {name for f in folders if f.is_dir() for name in os.listdir(f)}


def _missing_videos(path: Path, videos: Iterable[sth.SomethingVideo], listing: set[str]) -> list[DataError]:
    missing = [v.id for v in videos if not any(f"{v.id}{ext}" in listing for ext in sth.VIDEO_EXTENSIONS)]
    problems = [DataError(f"video {vid}: no file videos/{vid}.webm (or .mp4)", path=path) for vid in missing[:MAX_LISTED]]
    if len(missing) > MAX_LISTED:
        problems.append(DataError(f"... and {len(missing) - MAX_LISTED} more videos of this list without a file",
                                  path=path))
    return problems


def _check_variant(root: Path, variant: str, splits: Sequence[str] | None, problems: list[DataError],
                   listing: set[str] | None) -> tuple[dict[str, int] | None, dict[str, list[sth.SomethingVideo]]]:
    """``(labels, {split: videos})`` of one variant; its problems go to ``problems``."""
    labels_file, split_files = sth.VARIANTS[variant]
    labels = _guard(problems, lambda: sth.read_labels(root / labels_file))
    wanted = list(splits) if splits is not None else [s for s in split_files if s not in sth.UNLABELLED_SPLITS]
    if splits is None:  # optional unlabelled lists are checked when present
        wanted += [s for s in split_files if s in sth.UNLABELLED_SPLITS and (root / split_files[s]).is_file()]
    out = {}
    for split in wanted:
        if split not in split_files:
            raise ValueError(f"unknown split {split!r} for {variant}; expected {', '.join(split_files)}")
        path = root / split_files[split]
        use_labels = None if split in sth.UNLABELLED_SPLITS else labels
        videos = sth.read_split(path, use_labels, errors=problems)  # type: ignore[arg-type]
        out[split] = videos
        if listing is not None and videos:
            problems += _missing_videos(path, videos, listing)
    return labels, out  # type: ignore[return-value]


def _something_summary(labels: Iterable[dict[str, int] | None], split_videos: Iterable[list[sth.SomethingVideo]],
                       listing: set[str] | None) -> dict[str, int]:
    """splits, videos (distinct ids), labelled videos, classes (distinct templates), video files found."""
    lists = list(split_videos)
    ids = {v.id for videos in lists for v in videos}
    summary = {"splits": len(lists), "videos": len(ids),
               "labelled videos": len({v.id for videos in lists for v in videos if v.class_id >= 0}),
               "classes": len({template for table in labels if table for template in table})}
    if listing is not None:
        summary["video files"] = sum(any(f"{vid}{ext}" in listing for ext in sth.VIDEO_EXTENSIONS) for vid in ids)
    return summary


def check_ssv2(root: PathLike, *, splits: Sequence[str] | None = None) -> CheckReport:
    """Every problem of a Something-Something V2 folder, and the splits, videos, labels, classes and video files
    found."""
    root = _root(root)
    problems: list[DataError] = []
    listing = _video_listing(root)
    labels, split_videos = _check_variant(root, "ssv2", splits, problems, listing)
    return CheckReport(problems, _something_summary([labels], split_videos.values(), listing))


SOMETHING_ELSE_VARIANTS = [v for v in sth.VARIANTS if v.startswith("something-else/")]
SIZES_FILE = "videoid2size.json"


def check_something_else(root: PathLike, *, splits: Sequence[str] | None = None) -> CheckReport:
    """Every problem of a Something-Else folder (split variants, box parts, video sizes, videos), and the splits,
    videos, classes, boxed videos and boxes found."""
    root = _root(root)
    problems: list[DataError] = []
    present = [v for v in SOMETHING_ELSE_VARIANTS if (root / sth.VARIANTS[v][0]).is_file()]
    if not present:
        expected = ", ".join(sth.VARIANTS[v][0] for v in SOMETHING_ELSE_VARIANTS)
        problems.append(DataError(f"no split labels file found; expected one of {expected}", path=root))
    listing = _video_listing(root)
    split_videos: dict[str, list[sth.SomethingVideo]] = {}
    tables = []
    for variant in present:
        labels, found = _check_variant(root, variant, splits, problems, listing)
        tables.append(labels)
        for split, videos in found.items():
            split_videos[f"{sth.VARIANTS[variant][1][split]}"] = videos

    parts = box_io.find_box_parts(root)
    if not parts:
        problems.append(DataError(f"no box annotations ({box_io.BOX_PARTS_GLOB}) in the folder or in boxes/",
                                  path=root))
    wanted = {v.id for videos in split_videos.values() for v in videos}
    boxed: dict[str, list] = {}
    for part in progress(parts, "read box files", unit="file", min_items=2):  # the release's parts: ~GB each
        boxed.update(box_io.read_box_annotations(part, ids=wanted - boxed.keys(), errors=problems))  # first wins
    summary = _something_summary(tables, split_videos.values(), listing)
    summary.update({"boxed videos": len(boxed),
                    "boxes": sum(len(frame) for frames in boxed.values() for frame in frames)})
    report = CheckReport(problems, summary)
    sizes_path = root / SIZES_FILE
    if not sizes_path.is_file():
        problems.append(DataError("missing video sizes (needed to normalise boxes)", path=sizes_path))
        return report
    sizes = _guard(problems, lambda: box_io.read_video_sizes(sizes_path))
    if sizes is None:
        return report
    for name, videos in split_videos.items():
        unsized = [v.id for v in videos if v.id in boxed and v.id not in sizes]  # type: ignore[operator]
        problems += [DataError(f"video {vid} has boxes but no size in {SIZES_FILE}", path=root / name)
                     for vid in unsized[:MAX_LISTED]]
        if len(unsized) > MAX_LISTED:
            problems.append(DataError(f"... and {len(unsized) - MAX_LISTED} more boxed videos without a size",
                                      path=root / name))
    return report


# --------------------------------------------------------------------------------------------- entry points
def dataset_checkers() -> dict[str, Callable[..., object]]:
    """``{dataset name: checker}`` of every task plugin's datasets (:mod:`modalbridge.core.plugins`): this
    module's EPIC / SSv2 / Something-Else checkers and those of any other task."""
    from modalbridge.core.plugins import all_datasets, load_target

    return {name: load_target(entry.check) for name, entry in all_datasets().items() if entry.check}


def check_dataset(name: str, root: PathLike, *, summary: bool = False,
                  **options: object) -> list[DataError] | CheckReport:
    """The problems the checker of dataset ``name`` finds in ``root`` (``options``, e.g. ``splits=["train"]``, go
    to it); ``summary=True``: the whole :class:`CheckReport` ``(problems, summary)`` (a checker that returns
    a bare list has an empty summary)."""
    checkers = dataset_checkers()
    if name not in checkers:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(sorted(checkers))}")
    result = checkers[name](Path(root), **options)
    report = CheckReport(*result) if isinstance(result, tuple) else CheckReport(list(result), {})
    return report if summary else report.problems


def format_report(problems: Sequence[DataError], summary: dict[str, int] | None = None) -> str:
    """One line per problem, then the total (``"no problems found"`` for a clean folder), then with ``summary``
    what was found (``"found: 2 splits, 180 segments, …"``)."""
    lines = [str(problem) for problem in problems]
    count = len(problems)
    lines.append(f"{count} problem{'s' if count != 1 else ''} found" if count else "no problems found")
    if summary:
        lines.append(format_summary(summary))
    return "\n".join(lines)


def format_summary(summary: dict[str, int]) -> str:
    """``{"splits": 2, "videos": 12}`` → ``"found: 2 splits, 12 videos"`` (the CLI's wording)."""
    return "found: " + ", ".join(f"{value} {name}" for name, value in summary.items())
