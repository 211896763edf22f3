"""Action Genome (layout_fusion §2.6): restricted pickle loading, the Charades CSV reader, the converter to
the unified layout JSON, multi-hot labels, the fixture writer and the AG layout data module."""

from __future__ import annotations

import json
import pickle
import shutil

import numpy as np
import pytest
import torch

from modalbridge.core.errors import DataError
from modalbridge.datasets.action_genome import (
    CHARADES_COLUMNS,
    CharadesVideo,
    convert_action_genome,
    load_pickle,
    multi_hot,
    natural_key,
    prepare_action_genome,
    read_charades_csv,
    video_sizes,
    write_action_genome_fixture,
)
from modalbridge.datasets.boxes import read_layouts, write_layouts
from modalbridge.datasets.datamodules import ActionGenomeDataModule
from modalbridge.datasets.layouts import AG_CATEGORIES


def _obj(cls, bbox, visible=True):
    return {"class": cls, "bbox": bbox, "visible": visible, "attention_relationship": ["looking_at"],
            "spatial_relationship": ["beneath"], "contacting_relationship": ["holding"],
            "metadata": {"tag": "x", "set": "train"}}


def _person(boxes, scores, size=(480, 270)):
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    return {"bbox": boxes, "bbox_score": np.asarray(scores, dtype=np.float32), "bbox_size": size,
            "bbox_mode": "xyxy"}


OBJECTS = {
    "AAA01.mp4/000010.png": [_obj("chair", [10, 20, 30, 40]), _obj("cup/glass/bottle", None, visible=False)],
    "AAA01.mp4/000009.png": [_obj("book", [1.5, 2.5, 3.0, 4.0]), _obj("table", [0, 0, 5, 5], visible=False)],
    "AAA01.mp4/000011.png": [_obj("door", None, visible=False)],  # nothing visible, no person → dropped
    "BBB02.mp4/000100.png": [_obj("bed", [5, 5, 10, 10])],
    "CCC03.mp4/000001.png": [_obj("bed", None, visible=False)],  # only frame, dropped → video dropped
}
PERSONS = {
    "AAA01.mp4/000010.png": _person([[1, 2, 3, 4]], [0.75]),
    "AAA01.mp4/000009.png": _person([[1, 2, 3, 4], [5, 6, 7, 8]], [0.9, 0.8]),  # two persons → none
    "AAA01.mp4/000011.png": _person(np.zeros((0, 4)), []),
    "BBB02.mp4/000100.png": _person([[0, 0, 9, 9]], [0.25], size=(270, 480)),
    "BBB02.mp4/000099.png": _person([[2, 2, 4, 4]], [0.5], size=(270, 480)),  # person only: kept
    "CCC03.mp4/000001.png": _person(np.zeros((0, 4)), [], size=(320, 240)),
}
EXPECTED = [
    {"id": "AAA01", "actions": ["c092", "c147"], "frames": [
        {"frame_objects": [{"category": "book", "x1": 1.5, "y1": 2.5, "x2": 4.5, "y2": 6.5, "score": 1.0}],
         "frame_id": "000009.png"},
        {"frame_objects": [{"category": "chair", "x1": 10.0, "y1": 20.0, "x2": 40.0, "y2": 60.0, "score": 1.0},
                           {"category": "person", "x1": 1.0, "y1": 2.0, "x2": 3.0, "y2": 4.0, "score": 0.75}],
         "frame_id": "000010.png"}]},
    {"id": "BBB02", "actions": [], "frames": [
        {"frame_objects": [{"category": "person", "x1": 2.0, "y1": 2.0, "x2": 4.0, "y2": 4.0, "score": 0.5}],
         "frame_id": "000099.png"},
        {"frame_objects": [{"category": "bed", "x1": 5.0, "y1": 5.0, "x2": 15.0, "y2": 15.0, "score": 1.0},
                           {"category": "person", "x1": 0.0, "y1": 0.0, "x2": 9.0, "y2": 9.0, "score": 0.25}],
         "frame_id": "000100.png"}]},
]


def test_converter_golden(tmp_path):
    videos = [CharadesVideo("AAA01", actions=read_charades_csv(_csv(tmp_path, "c092 1.0 2.0;c147 0.0 3.0"))[0].actions),
              CharadesVideo("BBB02"), CharadesVideo("CCC03"), CharadesVideo("ZZZ99")]
    dropped: list[str] = []
    layouts = convert_action_genome(OBJECTS, PERSONS, videos, dropped=dropped)
    assert dropped == ["CCC03", "ZZZ99"]
    written = json.loads(write_layouts(tmp_path / "out.json", layouts).read_text())
    assert written == EXPECTED
    assert video_sizes(PERSONS) == {"AAA01": [480, 270], "BBB02": [270, 480], "CCC03": [320, 240]}


def test_natural_sort():
    keys = ["A.mp4/10.png", "A.mp4/9.png", "A.mp4/100.png", "A.mp4/09b.png"]
    assert sorted(keys, key=natural_key) == ["A.mp4/9.png", "A.mp4/09b.png", "A.mp4/10.png", "A.mp4/100.png"]
    objects = {k: [_obj("bed", [0, 0, 1, 1])] for k in ("V.mp4/10.png", "V.mp4/9.png", "V.mp4/100.png")}
    (layout,) = convert_action_genome(objects, {}, [CharadesVideo("V")])
    assert layout.frame_ids == ["9.png", "10.png", "100.png"]


def test_multi_hot():
    vector = multi_hot(["c092", "c147", "c000"])
    assert vector.shape == (157,) and vector.dtype == np.float32
    assert np.flatnonzero(vector).tolist() == [0, 92, 147]
    assert multi_hot([]).sum() == 0
    with pytest.raises(DataError, match="c157"):
        multi_hot(["c157"])


# --------------------------------------------------------------------------------------------- Charades CSV
def _csv(tmp_path, *actions, name="charades.csv"):
    path = tmp_path / name
    rows = [",".join(CHARADES_COLUMNS)]
    for i, text in enumerate(actions):
        rows.append(f'V{i:04d},S1,Kitchen,6,,Yes,"a script, with comma",cup;table,desc,{text},12.5')
    path.write_text("\n".join(rows) + "\n")
    return path


def test_read_charades_csv(tmp_path):
    first, second = read_charades_csv(_csv(tmp_path, "c092 11.90 21.20;c147 0.00 12.60", ""))
    assert first.id == "V0000" and first.codes == ["c092", "c147"]
    assert (first.actions[0].start, first.actions[0].end) == (11.90, 21.20)
    assert first.quality == 6 and first.relevance is None and first.objects == ["cup", "table"]
    assert first.script == "a script, with comma" and first.length == 12.5
    assert second.actions == []


def test_charades_bad_row_names_file_row_and_field(tmp_path):
    path = _csv(tmp_path, "c092 1 2", "c092 11.90")
    with pytest.raises(DataError) as info:
        read_charades_csv(path)
    assert (info.value.path, info.value.row, info.value.field) == (path, 3, "actions")
    assert str(path) in str(info.value) and "row 3" in str(info.value)
    path.write_text("id,actions\nV1,c001 0 1\n")
    with pytest.raises(DataError, match="missing column"):
        read_charades_csv(path)


# --------------------------------------------------------------------------------------------- pickles
class _Evil:
    def __reduce__(self):
        return (shutil.copyfile, (__file__, self.target))


class _Plain:
    pass


def test_pickles_need_allow_pickle_and_only_rebuild_safe_types(tmp_path):
    safe = tmp_path / "safe.pkl"
    payload = {"a.mp4/1.png": [{"bbox": np.arange(4.0), "score": np.float32(0.5), "size": (3, 4)}]}
    for protocol in (2, pickle.HIGHEST_PROTOCOL):
        safe.write_bytes(pickle.dumps(payload, protocol=protocol))
        with pytest.raises(DataError, match="allow_pickle=True"):
            load_pickle(safe)
        loaded = load_pickle(safe, allow_pickle=True)
        np.testing.assert_array_equal(loaded["a.mp4/1.png"][0]["bbox"], np.arange(4.0))
    evil = _Evil()
    evil.target = str(tmp_path / "pwned")
    bad = tmp_path / "evil.pkl"
    bad.write_bytes(pickle.dumps(evil))
    with pytest.raises(DataError, match="refusing to load shutil.copyfile"):
        load_pickle(bad, allow_pickle=True)
    assert not (tmp_path / "pwned").exists()
    bad.write_bytes(pickle.dumps({"x": _Plain()}))
    with pytest.raises(DataError, match="refusing to load"):
        load_pickle(bad, allow_pickle=True)
    bad.write_bytes(b"\x80\x04garbage")
    with pytest.raises(DataError, match="evil.pkl"):
        load_pickle(bad, allow_pickle=True)


# --------------------------------------------------------------------------------------------- fixture
def test_fixture_prepare_and_datamodule(tmp_path):
    root = tmp_path / "ag"
    paths = write_action_genome_fixture(root, seed=3, videos=4)
    assert {p.name for p in paths.values()} == {"object_bbox_and_relationship.pkl", "person_bbox.pkl",
                                                 "Charades_v1_train.csv", "Charades_v1_test.csv"}
    with pytest.raises(DataError, match="allow_pickle"):
        ActionGenomeDataModule(str(root), num_workers=0).setup("fit")
    written = prepare_action_genome(root, allow_pickle=True)
    train, val = read_layouts(written["train"]), read_layouts(written["val"])
    assert len(train) == len(val) == 2
    # videos 0, 2 (train) and 3 (test) have actions; video 1 (test) has none and is kept
    assert all(v.actions for v in train) and [bool(v.actions) for v in val] == [False, True]
    assert all(len(v.frames) <= 5 for v in train + val)  # the fixture's last frame has nothing and is dropped
    categories = {box.category for v in train + val for f in v.frames for box in f}
    assert "person" in categories and categories <= set(AG_CATEGORIES)
    assert len(json.loads(written["labels"].read_text())) == 157
    sizes = json.loads(written["sizes"].read_text())
    assert set(sizes) == {v.id for v in train + val}

    dm = ActionGenomeDataModule(str(root), batch_size=4, num_workers=0)
    dm.setup("fit")
    assert dm.heads == {"action": 157} and len(dm.class_names["action"]) == 157
    batch = next(iter(dm.train_dataloader()))
    assert batch["action"].shape == (2, 157) and batch["action"].dtype == torch.float32
    assert batch["action"].sum(1).tolist() == [float(len(v.actions)) for v in (train[i] for i in batch["index"])]
    assert set(batch["categories"].unique().tolist()) <= set(range(38))
    assert (batch["categories"][:, :, 0] == 1).all()  # AG cls id
    types = batch["frame_types"]
    assert (types[torch.arange(2), batch["lengths"] - 1] == 2).all()  # AG extract id
    assert ((batch["scores"] >= 0.5) | (batch["scores"] == 0)).all()
    val_batch = next(iter(dm.val_dataloader()))
    assert val_batch["action"].sum(1).tolist() == [float(len(v.actions)) for v in (val[i] for i in val_batch["index"])]
