"""EPIC-KITCHENS-100 readers: the real annotation files, and deliberately broken copies of them."""

from __future__ import annotations

import csv
import pickle
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from modalbridge.core.errors import DataError
from modalbridge.datasets.epic_kitchens import (
    EpicKitchens100,
    EpicSegment,
    format_timestamp,
    parse_timestamp,
    read_annotations_pickle,
    read_class_ids,
    read_class_table,
    read_id_list,
    read_segment_rows,
    read_segments,
    read_video_info,
    rgb_frame_rate,
)

EK_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "epic_kitchens_100"
VAL = EK_DIR / "EPIC_100_validation.csv"
needs_real = pytest.mark.skipif(not VAL.is_file(), reason="shared EPIC-KITCHENS-100 annotations not present")


def _rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    return rows[0], rows[1:]


def _write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _broken_copy(tmp_path: Path, edits: dict[tuple[int, str], str]) -> Path:
    """Copy of the real validation CSV with ``(data row index, column) → new text`` applied.

    Data row index i sits on line i + 2 of the file (header = line 1).
    """
    header, rows = _rows(VAL)
    for (i, column), value in edits.items():
        rows[i][header.index(column)] = value
    return _write(tmp_path / "EPIC_100_validation.csv", header, rows)


# --------------------------------------------------------------------------------------------- timestamps
def test_parse_timestamp_examples():
    assert parse_timestamp("00:00:01.89") == pytest.approx(1.89)
    assert parse_timestamp("01:02:03.5") == pytest.approx(3723.5)
    assert parse_timestamp("00:17:50") == 1070.0
    for bad in ("", "1.5", "00:61:00.00", "00:00:60.00", "aa:bb:cc", "00:00:01,50"):
        with pytest.raises(ValueError):
            parse_timestamp(bad)


@given(st.integers(min_value=0, max_value=99 * 3600 * 100))
def test_timestamp_text_round_trip(centiseconds):
    text = format_timestamp(centiseconds / 100)
    assert format_timestamp(parse_timestamp(text)) == text
    assert parse_timestamp(text) == pytest.approx(centiseconds / 100, abs=1e-6)


@given(st.floats(min_value=0, max_value=360000, allow_nan=False))
def test_timestamp_seconds_round_trip(seconds):
    assert parse_timestamp(format_timestamp(seconds)) == pytest.approx(seconds, abs=0.005 + 1e-9)
    assert parse_timestamp(format_timestamp(seconds, 3)) == pytest.approx(seconds, abs=0.0005 + 1e-9)


def test_rgb_frame_rate():
    assert rgb_frame_rate("P09_07", 29.97) == 60.0  # EK-55 recording: frames extracted at 60 fps
    assert rgb_frame_rate("P01_101", 50.0) == 50.0  # EK-100 extension: native rate


# --------------------------------------------------------------------------------------------- real files
@needs_real
def test_real_validation_parses_fast():
    start = time.perf_counter()
    segments = read_segments(VAL, num_verbs=97, num_nouns=300)
    elapsed = time.perf_counter() - start
    assert len(segments) == 9668
    assert elapsed < 2.0, f"reading 9,668 rows took {elapsed:.2f} s"  # ~0.35 s on the 2-core dev machine
    first = segments[0]
    assert first == EpicSegment(
        narration_id="P01_11_0", participant_id="P01", video_id="P01_11", narration_timestamp="00:00:00.560",
        start_timestamp="00:00:00.00", stop_timestamp="00:00:01.89", start_time=0.0, stop_time=1.89,
        start_frame=1, stop_frame=113, narration="take plate", verb="take", verb_class=0, noun="plate",
        noun_class=2, all_nouns=["plate"], all_noun_classes=[2])
    assert first.num_frames == 113 and first.labelled
    assert all(0 <= s.verb_class < 97 and 0 <= s.noun_class < 300 for s in segments)
    assert len({s.narration_id for s in segments}) == 9668
    assert sum(s.narration_timestamp == "" for s in segments) == 70  # real rows with an empty narration time


@needs_real
def test_real_class_tables_and_lists():
    verbs = read_class_table(EK_DIR / "EPIC_100_verb_classes.csv")
    nouns = read_class_table(EK_DIR / "EPIC_100_noun_classes.csv")
    assert (len(verbs), len(nouns)) == (97, 300)
    assert verbs[:2] == ["take", "put"] and nouns[:2] == ["tap", "spoon"]
    assert read_id_list(EK_DIR / "EPIC_100_unseen_participant_ids_validation.csv", "participant_id") == ["P18", "P32"]
    assert len(read_class_ids(EK_DIR / "EPIC_100_tail_verbs.csv", "verb", 97)) == 86
    assert len(read_class_ids(EK_DIR / "EPIC_100_tail_nouns.csv", "noun", 300)) == 228
    info = read_video_info(EK_DIR / "EPIC_100_video_info.csv")
    assert len(info) == 700
    duration, fps, size = info["P01_01"]
    assert duration == pytest.approx(1652.152817) and fps == pytest.approx(59.94, abs=1e-3) and size == (1920, 1080)


@needs_real
def test_real_dataset_splits():
    dataset = EpicKitchens100(EK_DIR)
    segments = dataset.segments("validation")
    assert dataset.segments("validation") is segments  # cached
    assert (len(dataset.verbs), len(dataset.nouns)) == (97, 300)
    assert dataset.unseen_participants == {"P18", "P32"}
    assert (len(dataset.tail_verbs), len(dataset.tail_nouns)) == (86, 228)

    with open(VAL, newline="") as handle:
        direct = sum(row["participant_id"] in {"P18", "P32"} for row in csv.DictReader(handle))
    masks = dataset.split_masks(segments)
    assert int(masks["unseen"].sum()) == direct == 1065  # the thesis' number holds on the real file
    assert int(masks["seen"].sum()) == 9668 - 1065 and masks["regular"].all()
    for name in ("tail_verb", "tail_noun", "tail_action_and", "tail_action_or"):
        assert masks[name].dtype == np.bool_ and masks[name].shape == (9668,)
    assert np.array_equal(masks["tail_action_and"], masks["tail_verb"] & masks["tail_noun"])
    assert np.array_equal(masks["tail_action_or"], masks["tail_verb"] | masks["tail_noun"])
    assert {k: int(v.sum()) for k, v in masks.items() if k.startswith("tail")} == {
        "tail_verb": 1760, "tail_noun": 1900, "tail_action_and": 555, "tail_action_or": 3105}

    assert dataset.fps("P09_07") == pytest.approx(29.97, abs=1e-2)
    assert dataset.frame_rate("P09_07") == 60.0
    assert all(s.stop_frame <= dataset.num_frames(s.video_id) + 1 for s in segments)
    with pytest.raises(DataError, match="unknown video"):
        dataset.fps("P99_99")
    with pytest.raises(DataError, match="EPIC_100_train.csv"):
        dataset.segments("train")  # not shipped here
    with pytest.raises(ValueError, match="unknown split"):
        dataset.segments("val")


# --------------------------------------------------------------------------------------------- broken copies
@needs_real
@pytest.mark.parametrize(("edit", "line", "field", "text"), [
    (((100, "verb_class"), "x7"), 102, "verb_class", "expected an integer"),
    (((2000, "stop_frame"), "5"), 2002, "stop_frame", "is before start_frame"),
    (((3, "start_timestamp"), "00:00:3.x"), 5, "start_timestamp", "expected a timestamp"),
    (((9667, "stop_timestamp"), "00:00:00.00"), 9669, "stop_timestamp", "is before start_timestamp"),
    (((42, "all_nouns"), "['plate'"), 44, "all_nouns", "expected a list literal"),
    (((43, "all_noun_classes"), "[2, 'x']"), 45, "all_noun_classes", "list of ints"),
    (((44, "all_nouns"), "__import__('os')"), 46, "all_nouns", "expected a list literal"),
    (((10, "start_frame"), "0"), 12, "start_frame", "1-based"),
    (((11, "noun_class"), "300"), 13, "noun_class", "out of range 0..299"),
    (((12, "narration_id"), "P01_11_0"), 14, "narration_id", "duplicate narration_id 'P01_11_0' (first at row 2)"),
    (((13, "video_id"), "P02_11"), 15, "video_id", "does not belong to participant"),
])
def test_broken_row_is_named(tmp_path, edit, line, field, text):
    path = _broken_copy(tmp_path, dict([edit]))
    with pytest.raises(DataError) as info:
        read_segments(path, num_verbs=97, num_nouns=300)
    error = info.value
    assert (error.path, error.row, error.field) == (path, line, field)
    assert str(error).startswith(f"{path}: row {line}: field {field}: ")
    assert text in str(error)


@needs_real
def test_all_problems_collected_and_good_rows_kept(tmp_path):
    path = _broken_copy(tmp_path, {(100, "verb_class"): "seven", (2000, "stop_frame"): "5",
                                   (3, "start_timestamp"): "nope", (42, "all_nouns"): "['plate'",
                                   (42, "noun_class"): "-3"})
    errors: list[DataError] = []
    segments = read_segments(path, num_verbs=97, num_nouns=300, errors=errors)
    assert len(segments) == 9668 - 4
    assert [(e.row, e.field) for e in errors] == [
        (5, "start_timestamp"), (44, "noun_class"), (44, "all_nouns"), (102, "verb_class"), (2002, "stop_frame")]


@needs_real
def test_missing_column_named(tmp_path):
    header, rows = _rows(VAL)
    drop = header.index("noun_class")
    path = _write(tmp_path / "v.csv", header[:drop] + header[drop + 1:], [r[:drop] + r[drop + 1:] for r in rows])
    with pytest.raises(DataError, match="missing column.*noun_class") as info:
        read_segments(path)
    assert (info.value.path, info.value.row) == (path, 1)
    errors: list[DataError] = []
    assert read_segments(path, errors=errors) == [] and len(errors) == 1


@needs_real
def test_row_numbers_follow_multiline_fields_and_blank_lines(tmp_path):
    header, rows = _rows(VAL)
    rows = rows[:6]
    rows[1][header.index("narration")] = "take\nplate"  # quoted field over two lines
    rows[4][header.index("verb_class")] = "bad"
    path = tmp_path / "v.csv"
    _write(path, header, rows[:3])
    with open(path, "a", newline="") as handle:
        handle.write("\n")  # a blank line is skipped but still counted
        csv.writer(handle).writerows(rows[3:])
    # header 1, rows on 2, 3-4, 5, blank 6, then 7, 8 (bad), 9
    with pytest.raises(DataError) as info:
        read_segments(path)
    assert info.value.row == 8
    lines = [line for line, _ in read_segment_rows(path, errors=[])]
    assert lines == [2, 3, 5, 7, 9]


def test_wrong_field_count_and_missing_file(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("narration_id,participant_id,video_id,start_timestamp,stop_timestamp,start_frame,stop_frame\n"
                    "P01_01_0,P01,P01_01,00:00:00.00,00:00:01.00,1,60\n"
                    "P01_01_1,P01,P01_01,00:00:01.00\n")
    with pytest.raises(DataError, match="row 3: expected 7 fields, found 4"):
        read_segments(path)
    with pytest.raises(DataError, match="file not found"):
        read_segments(tmp_path / "nope.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="empty file"):
        read_segments(tmp_path / "empty.csv")


def test_test_timestamps_file_has_no_labels(tmp_path):
    path = tmp_path / "EPIC_100_test_timestamps.csv"
    path.write_text("narration_id,participant_id,video_id,start_timestamp,stop_timestamp,start_frame,stop_frame\n"
                    "P01_101_0,P01,P01_101,00:00:00.00,00:00:01.00,1,50\n")
    (segment,) = read_segments(path, num_verbs=97, num_nouns=300)
    assert (segment.verb_class, segment.noun_class, segment.all_nouns, segment.verb) == (-1, -1, [], "")
    assert not segment.labelled
    # one label column alone is not a test file: the others are reported missing
    path.write_text("narration_id,participant_id,video_id,start_timestamp,stop_timestamp,start_frame,stop_frame,"
                    "verb\nP01_101_0,P01,P01_101,00:00:00.00,00:00:01.00,1,50,take\n")
    with pytest.raises(DataError, match="missing column.*verb_class"):
        read_segments(path)


def test_class_table_validation(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("id,key,instances,category\n0,take,[],x\n2,put,[],x\n")
    with pytest.raises(DataError, match="contiguous 0..1; missing id.*1"):
        read_class_table(path)
    path.write_text("id,key\n1,put\n0,take\n")
    assert read_class_table(path) == ["take", "put"]
    path.write_text("id,key\n0,take\n0,put\n")
    with pytest.raises(DataError, match="row 3: field id: duplicate class id 0"):
        read_class_table(path)
    path.write_text("key\ntake\n")
    with pytest.raises(DataError, match="missing column.*id"):
        read_class_table(path)


def test_id_lists_and_video_info_validation(tmp_path):
    path = tmp_path / "tail.csv"
    path.write_text("verb\n10\n12\nten\n")
    with pytest.raises(DataError, match="row 4: field verb: expected an integer class id"):
        read_class_ids(path, "verb")
    path.write_text("verb\n10\n120\n")
    with pytest.raises(DataError, match="row 3: field verb: class id 120 out of range 0..96"):
        read_class_ids(path, "verb", 97)
    with pytest.raises(DataError, match="missing column.*noun"):
        read_id_list(path, "noun")
    info = tmp_path / "info.csv"
    info.write_text("video_id,duration,fps,resolution\nP01_01,10.0,50.0,1920x1080\nP01_02,-1,50,1920x1080\n")
    with pytest.raises(DataError, match="row 3: field duration: expected a positive number"):
        read_video_info(info)
    info.write_text("video_id,duration,fps,resolution\nP01_01,10.0,50.0,1920-1080\n")
    with pytest.raises(DataError, match="row 2: field resolution"):
        read_video_info(info)


# --------------------------------------------------------------------------------------------- pickle
def _records(n: int = 3) -> list[dict]:
    return [{"narration_id": f"P01_11_{i}", "participant_id": "P01", "video_id": "P01_11",
             "narration_timestamp": "00:00:00.560", "start_timestamp": "00:00:00.00",
             "stop_timestamp": "00:00:01.89", "start_frame": 1, "stop_frame": 113, "narration": "take plate",
             "verb": "take", "verb_class": 0, "noun": "plate", "noun_class": 2, "all_nouns": ["plate"],
             "all_noun_classes": [2]} for i in range(n)]


def test_pickle_needs_opt_in(tmp_path):
    path = tmp_path / "EPIC_100_validation.pkl"
    path.write_bytes(pickle.dumps(_records()))
    with pytest.raises(DataError, match="allow_pickle=True"):
        read_annotations_pickle(path)
    segments = read_annotations_pickle(path, allow_pickle=True)
    assert [s.narration_id for s in segments] == ["P01_11_0", "P01_11_1", "P01_11_2"]
    assert segments[0].all_nouns == ["plate"] and segments[0].stop_time == pytest.approx(1.89)
    by_id = {r.pop("narration_id"): r for r in _records(2)}
    path.write_bytes(pickle.dumps(by_id))
    assert len(read_annotations_pickle(path, allow_pickle=True)) == 2
    bad = _records(2)
    bad[1]["verb_class"] = "x"
    path.write_bytes(pickle.dumps(bad))
    with pytest.raises(DataError, match="row 2: field verb_class"):
        read_annotations_pickle(path, allow_pickle=True)


def test_pickle_dataframe(tmp_path):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(_records()).set_index("narration_id")
    path = tmp_path / "EPIC_100_validation.pkl"
    frame.to_pickle(path)
    segments = read_annotations_pickle(path, allow_pickle=True)
    assert [s.narration_id for s in segments] == ["P01_11_0", "P01_11_1", "P01_11_2"]


# --------------------------------------------------------------------------------------------- dataset folder
@needs_real
def test_dataset_media_paths_and_lazy_optional_files(tmp_path):
    for name in ("EPIC_100_validation.csv", "EPIC_100_verb_classes.csv", "EPIC_100_noun_classes.csv"):
        shutil.copy(EK_DIR / name, tmp_path / name)
    dataset = EpicKitchens100(tmp_path)
    assert len(dataset.segments("validation")) == 9668
    with pytest.raises(DataError, match="EPIC_100_tail_verbs.csv.*missing annotation file"):
        _ = dataset.tail_verbs
    with pytest.raises(DataError, match="EPIC_100_video_info.csv"):
        dataset.fps("P01_11")

    assert dataset.rgb_frames_dir("P01_11") == tmp_path / "P01" / "rgb_frames" / "P01_11"
    assert dataset.flow_dir("P01_11") == tmp_path / "P01" / "flow_frames" / "P01_11"
    with pytest.raises(DataError, match="video P01_11 not found"):
        dataset.video_path("P01_11")
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "P01_11.mp4").touch()
    assert dataset.video_path("P01_11") == tmp_path / "videos" / "P01_11.mp4"
    (tmp_path / "P01" / "videos").mkdir(parents=True)
    (tmp_path / "P01" / "videos" / "P01_11.MP4").touch()
    assert dataset.video_path("P01_11") == tmp_path / "P01" / "videos" / "P01_11.MP4"

    nested = tmp_path / "data"
    (nested / "epic-kitchens-100-annotations").mkdir(parents=True)
    shutil.copy(EK_DIR / "EPIC_100_verb_classes.csv", nested / "epic-kitchens-100-annotations")
    shutil.copy(VAL, nested / "epic-kitchens-100-annotations")
    assert EpicKitchens100(nested).verbs[0] == "take"
    assert EpicKitchens100(nested, annotations_root=EK_DIR).annotations_root == EK_DIR
