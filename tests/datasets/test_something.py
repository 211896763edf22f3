"""Something-Something V2 / Something-Else split readers on small files in the published schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modalbridge.core.errors import DataError
from modalbridge.datasets.something import (
    VARIANTS,
    SomethingSomething,
    SomethingVideo,
    read_labels,
    read_split,
    template_key,
)

LABELS = {"Holding something next to something": "0", "Putting something on a surface": "1",
          "Pushing something from left to right": "2"}
TRAIN = [
    {"id": "78687", "label": "holding potato next to vicks vaporub bottle",
     "template": "Holding [something] next to [something]", "placeholders": ["potato", "vicks vaporub bottle"]},
    {"id": "42326", "label": "putting a cup on a surface", "template": "Putting [something] on a surface",
     "placeholders": ["a cup"]},
]
VALIDATION = [{"id": 74225, "label": "pushing a pen from left to right",
               "template": "Pushing [something] from left to right", "placeholders": ["a pen"]}]
TEST = [{"id": "1420"}, {"id": "1421"}]


def _dump(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def _ssv2(root: Path) -> Path:
    _dump(root / "something-something-v2-labels.json", LABELS)
    _dump(root / "something-something-v2-train.json", TRAIN)
    _dump(root / "something-something-v2-validation.json", VALIDATION)
    _dump(root / "something-something-v2-test.json", TEST)
    return root


def test_template_key():
    assert template_key("Holding [something] next to [something]") == "Holding something next to something"


def test_read_labels_accepts_str_and_int_values(tmp_path):
    assert read_labels(_dump(tmp_path / "a.json", LABELS))["Putting something on a surface"] == 1
    assert read_labels(_dump(tmp_path / "b.json", {"b": 1, "a": 0})) == {"b": 1, "a": 0}


@pytest.mark.parametrize(("data", "message"), [
    ({"a": "0", "b": "2"}, "contiguous 0..1; missing \\[1\\]"),
    ({"a": "0", "b": "0"}, "field 'b': class id 0 used twice"),
    ({"a": "zero"}, "field 'a': expected an integer class id"),
    ({"a": True}, "expected an integer"),
    ([["a", 0]], "expected a non-empty JSON object"),
])
def test_read_labels_errors(tmp_path, data, message):
    with pytest.raises(DataError, match=message):
        read_labels(_dump(tmp_path / "labels.json", data))


def test_read_labels_bad_json_names_position(tmp_path):
    path = tmp_path / "labels.json"
    path.write_text('{"a": "0",\n "b": }')
    with pytest.raises(DataError, match=r"labels.json: invalid JSON at line 2 column"):
        read_labels(path)


def test_read_split_resolves_class_ids(tmp_path):
    videos = read_split(_dump(tmp_path / "train.json", TRAIN), read_labels(_dump(tmp_path / "l.json", LABELS)))
    assert videos[0] == SomethingVideo(id="78687", label="holding potato next to vicks vaporub bottle",
                                       template="Holding [something] next to [something]",
                                       placeholders=["potato", "vicks vaporub bottle"], class_id=0)
    assert [v.class_id for v in videos] == [0, 1]
    (test_video, _) = read_split(_dump(tmp_path / "test.json", TEST), None)
    assert test_video == SomethingVideo(id="1420", label="", template="", placeholders=[], class_id=-1)


def test_unknown_template_names_entry_and_nearest(tmp_path):
    entries = [*TRAIN, {"id": "5", "label": "x", "template": "Putting [something] onto a surface",
                        "placeholders": ["x"]}]
    path = _dump(tmp_path / "train.json", entries)
    with pytest.raises(DataError) as info:
        read_split(path, read_labels(_dump(tmp_path / "l.json", LABELS)))
    message = str(info.value)
    assert message.startswith(f"{path}: field [2].template: video 5: unknown template")
    assert "'Putting [something] onto a surface'" in message
    assert "nearest known template: 'Putting something on a surface'" in message


def test_read_split_collects_every_problem(tmp_path):
    entries = [TRAIN[0], {"label": "no id"}, TRAIN[1], dict(TRAIN[1]), {"id": "9", "placeholders": "x"}, 7]
    errors: list[DataError] = []
    videos = read_split(_dump(tmp_path / "s.json", entries), read_labels(_dump(tmp_path / "l.json", LABELS)),
                        errors=errors)
    assert [v.id for v in videos] == ["78687", "42326"]
    assert [e.field for e in errors] == ["[1].id", "[3].id", "[4].placeholders", "[5]"]
    assert "duplicate video id '42326' (first at [2])" in str(errors[1])
    with pytest.raises(DataError, match="missing 'template'"):
        read_split(_dump(tmp_path / "t.json", TEST), read_labels(tmp_path / "l.json"))
    with pytest.raises(DataError, match="expected a JSON list"):
        read_split(_dump(tmp_path / "d.json", {"id": "1"}))


def test_ssv2_folder(tmp_path):
    data = SomethingSomething(_ssv2(tmp_path))
    assert data.num_classes == 3
    assert data.classes == list(LABELS)
    assert [v.id for v in data.videos("validation")] == ["74225"]
    assert data.videos("validation")[0].class_id == 2
    assert [v.class_id for v in data.videos("test")] == [-1, -1]
    assert data.videos("train") is data.videos("train")
    with pytest.raises(ValueError, match="unknown split 'val'"):
        data.videos("val")
    with pytest.raises(DataError, match="video 78687 not found"):
        data.video_path("78687")
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "78687.mp4").touch()
    assert data.video_path("78687") == tmp_path / "videos" / "78687.mp4"
    (tmp_path / "videos" / "78687.webm").touch()
    assert data.video_path("78687") == tmp_path / "videos" / "78687.webm"


def test_something_else_variants(tmp_path):
    labels = {template_key(e["template"]): i for i, e in enumerate([*TRAIN, *VALIDATION])}
    _dump(tmp_path / "compositional" / "labels.json", labels)
    _dump(tmp_path / "compositional" / "train.json", TRAIN)
    _dump(tmp_path / "compositional" / "validation.json", VALIDATION)
    _dump(tmp_path / "fewshot" / "finetune_labels.json", {"Pushing something from left to right": 0})
    _dump(tmp_path / "fewshot" / "finetune_5shot_training.json", VALIDATION)
    _dump(tmp_path / "fewshot" / "finetune_5shot_validation.json", VALIDATION)
    compositional = SomethingSomething(tmp_path, variant="something-else/compositional")
    assert [v.class_id for v in compositional.videos("train")] == [0, 1]
    assert compositional.videos("validation")[0].class_id == 2
    fewshot = SomethingSomething(tmp_path, variant="something-else/fewshot-5shot")
    assert fewshot.num_classes == 1 and fewshot.videos("train")[0].class_id == 0
    with pytest.raises(DataError, match="finetune_10shot_train.json: file not found"):
        SomethingSomething(tmp_path, variant="something-else/fewshot-10shot").videos("train")
    with pytest.raises(DataError, match="base_labels.json: file not found"):
        _ = SomethingSomething(tmp_path, variant="something-else/fewshot-base").classes
    with pytest.raises(ValueError, match="unknown variant"):
        SomethingSomething(tmp_path, variant="sthelse")
    assert set(VARIANTS) >= {"ssv2", "something-else/compositional", "something-else/fewshot-base",
                             "something-else/fewshot-5shot", "something-else/fewshot-10shot"}


def test_flow_dir_default_custom_root_and_missing_folder(tmp_path):
    data = SomethingSomething(_ssv2(tmp_path))
    assert data.flow_root == tmp_path / "flow"
    with pytest.raises(DataError) as info:
        data.flow_dir("78687")
    assert str(tmp_path / "flow" / "78687") in str(info.value) and "modalbridge data flow" in str(info.value)
    (tmp_path / "flow" / "78687").mkdir(parents=True)
    assert data.flow_dir("78687") == tmp_path / "flow" / "78687"
    elsewhere = SomethingSomething(tmp_path, flow_root=tmp_path / "ssv2_flow")
    with pytest.raises(DataError, match="ssv2_flow"):
        elsewhere.flow_dir("78687")
