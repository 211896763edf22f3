"""Box cleaning goldens (layout_fusion §2.7), Something-Else box files and the unified layout JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from modalbridge.core.errors import DataError
from modalbridge.datasets.boxes import (
    Box,
    VideoLayout,
    clean_box,
    clean_boxes,
    coarse_category,
    convert_something_else,
    find_box_parts,
    normalise_box,
    read_box_annotations,
    read_layouts,
    read_video_sizes,
    write_layouts,
)
from modalbridge.datasets.something import SomethingVideo


# --------------------------------------------------------------------------------------------- cleaning
def test_clean_box_goldens():
    assert clean_box(10.7, 20.2, 5.3, 300, 100, 240) == (5, 20, 10, 239)
    assert normalise_box(10.7, 20.2, 5.3, 300, 100, 240) == pytest.approx((0.05, 0.0833, 0.10, 0.9958), abs=5e-5)
    assert clean_box(0, 0, 0, 0, 100, 240) == (0, 0, 1, 1)
    assert clean_box(50, 50, 50, 50, 100, 240) == (49, 49, 50, 50)


def test_clean_box_edges():
    assert clean_box(-5.5, -1, -3, -0.2, 100, 100) == (0, 0, 1, 1)  # everything clamps to 0
    assert clean_box(120, 130, 150, 170, 100, 100) == (98, 98, 99, 99)  # both past the edge
    assert clean_box(0.9, 0, 0.2, 3.7, 10, 10) == (0, 0, 1, 3)  # truncation, not rounding
    with pytest.raises(ValueError):
        clean_box(float("nan"), 0, 1, 1, 10, 10)
    with pytest.raises(ValueError):
        clean_box(0, 0, 1, 1, 0, 10)


coordinate = st.floats(min_value=-50, max_value=2000, allow_nan=False)
side = st.integers(min_value=2, max_value=1920)


@given(coordinate, coordinate, coordinate, coordinate, side, side)
def test_clean_box_is_a_proper_box_inside_the_frame(x1, y1, x2, y2, width, height):
    cx1, cy1, cx2, cy2 = clean_box(x1, y1, x2, y2, width, height)
    assert 0 <= cx1 < cx2 <= width - 1
    assert 0 <= cy1 < cy2 <= height - 1
    nx1, ny1, nx2, ny2 = normalise_box(x1, y1, x2, y2, width, height)
    assert 0 <= nx1 < nx2 < 1 and 0 <= ny1 < ny2 < 1


@given(st.lists(st.tuples(coordinate, coordinate, coordinate, coordinate, side, side), min_size=1, max_size=20))
def test_clean_boxes_matches_scalar(rows):
    boxes = np.array([r[:4] for r in rows])
    widths, heights = np.array([r[4] for r in rows]), np.array([r[5] for r in rows])
    expected = [clean_box(*r) for r in rows]
    assert clean_boxes(boxes, widths, heights).tolist() == [list(e) for e in expected]


def test_clean_boxes_goldens_vectorised():
    out = clean_boxes(np.array([[10.7, 20.2, 5.3, 300], [0, 0, 0, 0], [50, 50, 50, 50]]), 100, 240)
    assert out.dtype == np.int64
    assert out.tolist() == [[5, 20, 10, 239], [0, 0, 1, 1], [49, 49, 50, 50]]


def test_coarse_category():
    assert coarse_category("hand") == "hand"
    assert coarse_category("left Hand") == "hand"
    assert coarse_category("potato") == "object"
    assert coarse_category("door handle") == "hand"  # the reference's substring rule, kept on purpose


# --------------------------------------------------------------------------------------------- Something-Else
def _label(x1, y1, x2, y2, category, standard):
    return {"box2d": {"x1": x1, "y1": y1, "x2": x2, "y2": y2}, "category": category,
            "standard_category": standard, "gt_annotation": f"object {standard}"}


PART1 = {
    "2": [
        {"name": "2/0001.jpg", "labels": [_label(10.5, 20, 60, 90, "hand", "hand"),
                                          _label(30, 40, 80, 100, "door handle", "0000")],
         "gt_placeholders": ["door handle"], "nr_instances": 2},
        {"name": "2/0003.jpg", "labels": [_label(11, 21, 61, 91, "hand", "hand")],
         "gt_placeholders": ["door handle"], "nr_instances": 2},
    ],
    "5": [{"name": "5/0001.jpg", "labels": [], "gt_placeholders": [], "nr_instances": 0}],
}
PART2 = {"7": [{"name": "7/0001.jpg", "labels": [_label(1, 2, 3, 4, "potato", "0000")]}],
         "2": [{"name": "2/0001.jpg", "labels": []}]}


def _parts(root: Path) -> list[Path]:
    paths = [root / "bounding_box_smthsmth_part1.json", root / "bounding_box_smthsmth_part2.json"]
    paths[0].write_text(json.dumps(PART1))
    paths[1].write_text(json.dumps(PART2))
    return paths


def test_read_box_annotations(tmp_path):
    boxes = read_box_annotations(_parts(tmp_path))
    assert set(boxes) == {"2", "5", "7"}
    frames = boxes["2"]  # part1 wins over part2 for video 2
    assert len(frames) == 3 and frames[1] == []  # 0002.jpg has no record → empty frame
    assert frames[0] == [Box(10.5, 20.0, 60.0, 90.0, "hand", 1.0), Box(30.0, 40.0, 80.0, 100.0, "hand", 1.0)]
    assert boxes["5"] == [[]]
    assert boxes["7"][0][0].category == "object"
    strict = read_box_annotations(_parts(tmp_path), use_standard_category=True, ids=["2"])
    assert set(strict) == {"2"} and strict["2"][0][1].category == "object"
    raw = read_box_annotations(tmp_path / "bounding_box_smthsmth_part2.json", coarse=False)
    assert raw["7"][0][0].category == "potato"
    assert find_box_parts(tmp_path) == sorted(_parts(tmp_path))


@pytest.mark.parametrize(("mutate", "field", "text"), [
    (lambda d: d["2"][1]["labels"][0]["box2d"].update(x2="61"), "2[1].labels[0].box2d.x2", "finite number"),
    (lambda d: d["2"][0]["labels"][1].pop("box2d"), "2[0].labels[1]", "box2d"),
    (lambda d: d["2"][1].update(name="2/frame.jpg"), "2[1].name", "0001.jpg"),
    (lambda d: d["5"][0].update(labels={}), "5[0].labels", "list of labels"),
    (lambda d: d.update({"9": {"name": "x"}}), "9", "per-frame records"),
])
def test_box_file_errors_name_video_and_field(tmp_path, mutate, field, text):
    data = json.loads(json.dumps(PART1))
    mutate(data)
    path = tmp_path / "part.json"
    path.write_text(json.dumps(data))
    with pytest.raises(DataError) as info:
        read_box_annotations([path])
    assert info.value.field == field and text in str(info.value) and str(path) in str(info.value)
    errors: list[DataError] = []
    kept = read_box_annotations([path], errors=errors)
    bad_video = field.split("[")[0]
    assert set(kept) == set(data) - {bad_video} and len(errors) == 1


def test_read_video_sizes(tmp_path):
    path = tmp_path / "videoid2size.json"
    path.write_text(json.dumps({"2": [427, 240], "5": [320.0, 240]}))
    assert read_video_sizes(path) == {"2": (427, 240), "5": (320, 240)}
    path.write_text(json.dumps({"2": [427]}))
    with pytest.raises(DataError, match="field 2: expected \\[width, height\\]"):
        read_video_sizes(path)


# --------------------------------------------------------------------------------------------- layouts
def test_layout_variants_read_alike(tmp_path):
    box = {"category": "hand", "x1": 1, "y1": 2, "x2": 30, "y2": 40, "score": 1.0}
    stlt = [{"id": "2", "template": "Pushing [something]", "frames": [{"frame_objects": [box]}, {"frame_objects": []}]}]
    nested = [{"id": "2", "template": "Pushing [something]", "size": [427, 240], "frames": [[box], []]}]
    (tmp_path / "a.json").write_text(json.dumps(stlt))
    (tmp_path / "b.json").write_text(json.dumps(nested))
    (a,), (b,) = read_layouts(tmp_path / "a.json"), read_layouts(tmp_path / "b.json")
    assert a.frames == b.frames == [[Box(1.0, 2.0, 30.0, 40.0, "hand", 1.0)], []]
    assert (a.size, b.size) == (None, (427, 240)) and a.template == b.template


@pytest.mark.parametrize("style", ["frame_objects", "nested"])
def test_layout_round_trip(tmp_path, style):
    layouts = [
        VideoLayout(id="2", template="Pushing [something]", size=(427, 240),
                    frames=[[Box(1.5, 2, 30, 40, "hand"), Box(5, 6, 7, 8, "object", 0.7)], []]),
        VideoLayout(id="ag1", actions=["c092", "c147"], frames=[[Box(0, 0, 9, 9, "person", 0.9)]],
                    frame_ids=["000089.png"] if style == "frame_objects" else None),
    ]
    path = write_layouts(tmp_path / "sub" / "layouts.json", layouts, style=style)
    assert read_layouts(path) == layouts


def test_layout_errors(tmp_path):
    path = tmp_path / "l.json"
    path.write_text(json.dumps([{"id": "2", "frames": [[{"category": "hand", "x1": 0, "y1": 0, "x2": 1}]]}]))
    with pytest.raises(DataError, match=r"field \[0\].frames\[0\]\[0\].y2: expected a finite number"):
        read_layouts(path)
    path.write_text(json.dumps([{"id": "2", "frames": [{"objects": []}]}]))
    with pytest.raises(DataError, match=r"\[0\].frames\[0\].frame_objects"):
        read_layouts(path)
    with pytest.raises(ValueError, match="unknown style"):
        write_layouts(path, [], style="flat")  # type: ignore[arg-type]


def test_convert_something_else(tmp_path):
    parts = _parts(tmp_path)
    sizes = tmp_path / "videoid2size.json"
    sizes.write_text(json.dumps({"2": [427, 240], "7": [320, 240]}))
    split = tmp_path / "validation.json"
    split.write_text(json.dumps([{"id": "2", "label": "x", "template": "Pushing [something]", "placeholders": []},
                                 {"id": "3", "label": "y", "template": "Pushing [something]", "placeholders": []},
                                 {"id": "7", "label": "z", "template": "Holding [something]", "placeholders": []}]))
    dropped: list[str] = []
    layouts = convert_something_else(split, parts, sizes, dropped=dropped)
    assert [layout.id for layout in layouts] == ["2", "7"] and dropped == ["3"]
    assert layouts[0].size == (427, 240) and layouts[0].template == "Pushing [something]"
    assert [b.category for b in layouts[0].frames[0]] == ["hand", "hand"]
    again = convert_something_else([SomethingVideo(id="7"), "5"], read_box_annotations(parts))
    assert [layout.id for layout in again] == ["7"] and again[0].template is None  # "5" has only an empty record
    write_layouts(tmp_path / "val_dataset.json", layouts)
    assert read_layouts(tmp_path / "val_dataset.json") == layouts
