"""Layout tensors (layout_fusion §2.7): id tables, tensoriser goldens, padding collate, the LayoutClips
dataset (layout-only never decodes video; optical flow of the appearance clip) and the Something-Else layout
data module on the kitchen world."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
import torch

import modalbridge.datasets.layouts as layouts_module
from modalbridge.core.errors import DataError
from modalbridge.datasets.boxes import Box, VideoLayout, normalise_box, write_layouts
from modalbridge.datasets.datamodules import SomethingLayoutDataModule
from modalbridge.datasets.layouts import (
    ACTION_GENOME,
    AG_CATEGORIES,
    AG_FRAME_TYPES,
    AG_OBJECT_CLASSES,
    SSV2,
    SSV2_CATEGORIES,
    SSV2_FRAME_TYPES,
    LayoutClips,
    LayoutTensoriser,
    centre_params,
    collate_layouts,
    tensorise_layout,
)
from modalbridge.io.flow import extract_flow_tree, read_flow_frames
from modalbridge.io.samplers import appearance_indices, layout_indices
from modalbridge.io.transforms import apply_flow
from modalbridge.io.video import read_frames

BATCH_KEYS = {"categories", "boxes", "scores", "frame_types", "lengths", "action", "index", "video_id", "skipped"}


# --------------------------------------------------------------------------------------------- tables
def test_id_tables():
    assert SSV2_CATEGORIES == {"pad": 0, "hand": 1, "object": 2, "cls": 3}
    assert SSV2_FRAME_TYPES == {"pad": 0, "start": 1, "regular": 2, "empty": 3, "extract": 4}
    assert AG_FRAME_TYPES == {"pad": 0, "regular": 1, "extract": 2, "empty": 3}
    assert len(AG_OBJECT_CLASSES) == 35 and len(AG_CATEGORIES) == 38
    assert AG_CATEGORIES["pad"] == 0 and AG_CATEGORIES["cls"] == 1 and AG_CATEGORIES["person"] == 37
    assert [AG_CATEGORIES[c] for c in ("chair", "closet/cabinet", "cup/glass/bottle", "clothes")] == [2, 10, 17, 36]
    assert sorted(AG_CATEGORIES.values()) == list(range(38))
    assert (SSV2.num_categories, SSV2.num_frame_types, SSV2.cls) == (4, 5, 3)
    assert (ACTION_GENOME.num_categories, ACTION_GENOME.num_frame_types, ACTION_GENOME.cls) == (38, 4, 1)
    assert SSV2.category_id("door handle") == 1 and SSV2.category_id("potato") == 2  # reference substring rule
    assert ACTION_GENOME.category_id("closetcabinet") == 10 and ACTION_GENOME.category_id("potato") is None


# --------------------------------------------------------------------------------------------- tensoriser
def _golden_layout() -> VideoLayout:
    return VideoLayout(id="v1", template="x", size=(100, 240), frames=[
        [Box(10.7, 20.2, 5.3, 300, "hand"), Box(0, 0, 0, 0, "potato"), Box(50, 50, 50, 50, "object")],
        [],  # empty
        [Box(1, 1, 20, 20, "object", score=0.3)],  # regular, but its only box is below the threshold
    ])


def test_tensoriser_goldens():
    out = tensorise_layout(_golden_layout(), [0, 1, 2])
    assert out["length"] == 4
    np.testing.assert_array_equal(out["categories"], [[3, 1, 2, 2], [3, 0, 0, 0], [3, 0, 0, 0], [3, 0, 0, 0]])
    np.testing.assert_array_equal(out["frame_types"], [2, 3, 2, 4])
    assert out["categories"].dtype == np.int64 and out["boxes"].dtype == np.float32
    assert out["boxes"].shape == (4, 4, 4) and out["scores"].shape == (4, 4)
    np.testing.assert_allclose(out["boxes"][:, 0], np.tile([0, 0, 1, 1], (4, 1)))  # the class object
    np.testing.assert_allclose(out["boxes"][0, 1], [0.05, 20 / 240, 0.10, 239 / 240], atol=1e-6)
    np.testing.assert_allclose(out["boxes"][0, 1], [0.05, 0.0833, 0.10, 0.9958], atol=5e-5)
    np.testing.assert_allclose(out["boxes"][0, 2], [0, 0, 1 / 100, 1 / 240], atol=1e-7)  # (0,0,0,0) → (0,0,1,1)
    np.testing.assert_allclose(out["boxes"][0, 3], [0.49, 49 / 240, 0.50, 50 / 240], atol=1e-7)
    np.testing.assert_array_equal(out["boxes"][1:, 1:], 0)
    np.testing.assert_array_equal(out["scores"], [[1, 1, 1, 1], [1, 0, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0]])


def test_score_threshold_and_max_objects():
    layout = _golden_layout()
    low = tensorise_layout(layout, [2], score_threshold=0.2)
    np.testing.assert_array_equal(low["categories"], [[3, 2, 0, 0], [3, 0, 0, 0]])
    np.testing.assert_allclose(low["scores"][0], [1, 0.3, 0, 0], atol=1e-7)
    assert LayoutTensoriser([layout]).max_objects == 3
    assert LayoutTensoriser([layout], score_threshold=2.0).max_objects == 0  # nothing passes
    wide = tensorise_layout(layout, [1], max_objects=5)
    assert wide["categories"].shape == (2, 6)
    narrow = tensorise_layout(layout, [0], max_objects=1)  # truncation keeps each frame's first objects
    np.testing.assert_array_equal(narrow["categories"], [[3, 1], [3, 0]])


def test_action_genome_scheme():
    layout = VideoLayout(id="ag", actions=["c001"], size=(480, 270), frames=[
        [Box(1, 2, 30, 40, "closet/cabinet"), Box(5, 5, 50, 50, "person", score=0.9)],
        [Box(5, 5, 50, 50, "person", score=0.4)],
    ])
    out = tensorise_layout(layout, [0, 1], ACTION_GENOME)
    np.testing.assert_array_equal(out["categories"], [[1, 10, 37], [1, 0, 0], [1, 0, 0]])
    np.testing.assert_array_equal(out["frame_types"], [1, 1, 2])  # frame 1 is not empty: raw list non-empty
    np.testing.assert_allclose(out["scores"][0], [1, 1, 0.9], atol=1e-7)
    bad = VideoLayout(id="bad", size=(10, 10), frames=[[], [Box(0, 0, 1, 1, "dragon")]])
    with pytest.raises(DataError, match=r"bad\.frames\[1\].*dragon"):
        LayoutTensoriser([bad], ACTION_GENOME)


def test_tensoriser_needs_size_and_frames():
    with pytest.raises(DataError, match="size"):
        LayoutTensoriser([VideoLayout(id="a", frames=[[]])])
    with pytest.raises(DataError, match="no frames"):
        LayoutTensoriser([VideoLayout(id="a", size=(10, 10), frames=[])])


def test_vectorised_boxes_match_the_scalar_rules_and_stay_in_unit_range():
    rng = np.random.default_rng(0)
    sizes = [(100, 240), (427, 240), (2, 3)]
    layouts = []
    for v, size in enumerate(sizes):
        coords = rng.uniform(-50, 500, size=(40, 4)).round(rng.integers(0, 3))
        coords[:5] = coords[:5, :1]  # degenerate boxes
        frames = [[Box(*c, category="object") for c in coords[i:i + 4]] for i in range(0, 40, 4)]
        layouts.append(VideoLayout(id=str(v), size=size, frames=frames))
    tensoriser = LayoutTensoriser(layouts)
    for v, layout in enumerate(layouts):
        out = tensoriser(v, np.arange(10))
        real = out["categories"][:-1, 1:] > 0
        assert real.all()
        boxes = out["boxes"][:-1, 1:][real]
        assert (boxes >= 0).all() and (boxes <= 1).all()
        expected = [normalise_box(b.x1, b.y1, b.x2, b.y2, *layout.size) for f in layout.frames for b in f]
        np.testing.assert_allclose(boxes, expected, atol=1e-6)


# --------------------------------------------------------------------------------------------- collate
def test_collate_pads_frames_with_class_objects():
    layout = _golden_layout()
    a = {**tensorise_layout(layout, [0, 1, 2]), "action": 3, "index": 0, "video_id": "a"}
    b = {**tensorise_layout(layout, [1], max_objects=5), "action": 1, "index": 1, "video_id": "b"}
    batch = collate_layouts([a, None, b])
    assert batch["skipped"] == 1 and batch["video_id"] == ["a", "b"]
    assert batch["categories"].shape == (2, 4, 6) and batch["boxes"].shape == (2, 4, 6, 4)
    assert batch["lengths"].tolist() == [4, 2] and batch["action"].dtype == torch.int64
    assert batch["frame_types"][1].tolist() == [3, 4, 0, 0]
    assert torch.equal(batch["categories"][1, 2:, 0], torch.tensor([3, 3]))  # pad frames keep a cls object
    assert torch.equal(batch["boxes"][1, 2:, 0], torch.tensor([[0.0, 0, 1, 1]] * 2))
    assert torch.equal(batch["scores"][1, 2:], torch.tensor([[1.0, 0, 0, 0, 0, 0]] * 2))
    object_mask, frame_mask = batch["categories"] == 0, batch["frame_types"] == 0
    assert not object_mask.all(-1).any()  # no fully masked attention row
    assert frame_mask.sum(1).tolist() == [0, 2]
    assert torch.equal(batch["categories"][0, :, :4], torch.as_tensor(a["categories"]))
    assert (batch["categories"][0, :, 4:] == 0).all()
    hot = collate_layouts([{**a, "action": np.eye(5, dtype=np.float32)[1]}, {**b, "action": np.ones(5)}])
    assert hot["action"].dtype == torch.float32 and hot["action"].shape == (2, 5)
    assert collate_layouts([None]) == {"skipped": 1}


# --------------------------------------------------------------------------------------------- datasets
@pytest.fixture(scope="module")
def layout_dm():
    dm = SomethingLayoutDataModule(batch_size=8, num_workers=0)
    dm.setup("fit")
    return dm


def test_layout_only_batches_match_the_contract_and_open_no_video(layout_dm, forbid_video):
    forbid_video(layouts_module, dataset=layout_dm.dataset)
    assert layout_dm.heads == {"action": layout_dm.dataset.num_classes}
    assert len(layout_dm.class_names["action"]) == layout_dm.heads["action"]
    loader = layout_dm.train_dataloader()
    assert loader.collate_fn is collate_layouts
    batch = next(iter(loader))
    assert set(batch) == BATCH_KEYS
    b, t, m = batch["categories"].shape
    assert b == 8 and t == 17 and m == layout_dm.train_set.max_objects + 1
    assert batch["boxes"].shape == (b, t, m, 4) and batch["boxes"].dtype == torch.float32
    assert batch["scores"].shape == (b, t, m) and batch["frame_types"].shape == (b, t)
    assert batch["categories"].dtype == batch["frame_types"].dtype == batch["lengths"].dtype == torch.int64
    assert batch["action"].shape == (b,) and batch["action"].dtype == torch.int64
    assert (batch["boxes"] >= 0).all() and (batch["boxes"] <= 1).all()
    assert set(batch["categories"].unique().tolist()) <= {0, 1, 2, 3}
    assert (batch["frame_types"][torch.arange(b), batch["lengths"] - 1] == 4).all()
    for batch in layout_dm.val_dataloader():  # a whole evaluation epoch, still no video
        assert batch["skipped"] == 0


def test_sampling_is_seeded_per_index_and_epoch(layout_dm):
    train, val = layout_dm.train_set, layout_dm.val_set
    n = len(train)
    a, a_again, b = train[2], train[2], train[n + 2]
    assert a["index"] == b["index"] == 2
    assert np.array_equal(a["boxes"], a_again["boxes"]) and not np.array_equal(a["boxes"], b["boxes"])
    expected = layout_indices(val.tensoriser.num_frames(0), 16, train=False)
    np.testing.assert_array_equal(val[0]["boxes"][:-1], val.tensoriser(0, expected)["boxes"][:-1])
    assert np.array_equal(val[len(val)]["boxes"], val[0]["boxes"])  # evaluation ignores the epoch


def test_unified_json_and_missing_detections(layout_dm, tmp_path):
    unified = tmp_path / "layouts.json"
    write_layouts(unified, layout_dm.layouts("validation"))
    other = SomethingLayoutDataModule(batch_size=8, num_workers=0, boxes=str(unified))
    val = other.make_dataset("validation", train=False)
    assert len(val) == len(layout_dm.val_set)
    assert np.array_equal(val[3]["boxes"], layout_dm.val_set[3]["boxes"])
    root = tmp_path / "ssv2"
    shutil.copytree(layout_dm.root, root, ignore=shutil.ignore_patterns("videos", "detections_*"))
    with pytest.raises(DataError, match="detections"):
        SomethingLayoutDataModule(str(root), boxes="detections").box_source()


def test_detections_keep_their_scores(layout_dm):
    dm = SomethingLayoutDataModule(batch_size=8, num_workers=0, boxes="detections")
    assert [p.name for p in dm.box_source()] == ["detections_smthsmth_part1.json"]
    ds = dm.make_dataset("validation", train=False)
    scores = ds.tensoriser.scores[:-1]
    assert scores.min() >= 0.5 and scores.max() <= 1 and (scores < 1).any()  # weak detections dropped
    assert not np.array_equal(ds[0]["boxes"], layout_dm.val_set[0]["boxes"])


def test_appearance_and_layout_frames(layout_dm):
    ds = layout_dm.make_dataset("validation", train=False)
    clips = LayoutClips(list(zip(ds.layouts[:2], ds.labels[:2])), train=False, modalities=("layout", "rgb", "frames"),
                        size=32, video_path=layout_dm.dataset.video_path)
    s = clips[0]
    assert s["rgb"].shape == (3, 32, 32, 32) and s["rgb"].dtype == torch.float32
    assert s["frames"].shape == (s["length"], 3, 32, 32) and (s["frames"][-1] == 0).all()
    assert -1 <= s["rgb"].min() and s["rgb"].max() <= 1
    # layout frame i is decoded frame i, with the evaluation view (short side ⌊32·1.15⌋ = 36, centre crop)
    idx = layout_indices(clips.tensoriser.num_frames(0), 16, train=False)
    video = read_frames(layout_dm.dataset.video_path(clips.layouts[0].id), idx[:2])
    params = centre_params(video.shape[1], video.shape[2], 32, 36)
    torch.testing.assert_close(s["frames"][:2], clips.transform(video, params).permute(1, 0, 2, 3))
    train = LayoutClips(list(zip(ds.layouts[:2], ds.labels[:2])), train=True, modalities=("rgb",), size=32,
                        appearance_frames=8, appearance_stride=2, video_path=layout_dm.dataset.video_path)
    t = train[1]
    assert t["rgb"].shape == (3, 8, 32, 32) and "categories" not in t
    assert torch.equal(t["rgb"], train[1]["rgb"])
    batch = collate_layouts([s, clips[1]])
    assert batch["rgb"].shape == (2, 3, 32, 32, 32) and batch["frames"].shape[:2] == batch["categories"].shape[:2]


def test_unreadable_video_raises_or_is_skipped(layout_dm, tmp_path):
    ds = layout_dm.make_dataset("validation", train=False)
    layout = ds.layouts[0]
    broken = tmp_path / f"{layout.id}.webm"
    broken.write_bytes(b"not a video")
    good = layout_dm.dataset.video_path(ds.layouts[1].id)
    shutil.copy(good, tmp_path / good.name)
    items = list(zip(ds.layouts[:2], ds.labels[:2]))
    strict = LayoutClips(items, train=False, modalities=("layout", "rgb"), size=32, appearance_frames=4,
                         video_path=lambda vid: tmp_path / f"{vid}.webm")
    with pytest.raises(DataError, match=layout.id):
        strict[0]
    lenient = LayoutClips(items, train=False, modalities=("layout", "rgb"), size=32, appearance_frames=4,
                          video_path=lambda vid: tmp_path / f"{vid}.webm", on_error="skip")
    batch = collate_layouts([lenient[0], lenient[1]])
    assert batch["skipped"] == 1 and batch["rgb"].shape[0] == 1 and batch["index"].tolist() == [1]


def test_bad_arguments():
    layout = _golden_layout()
    with pytest.raises(ValueError, match="modalities"):
        LayoutClips([(layout, 0)], train=False, modalities=("audio",))
    with pytest.raises(ValueError, match="video_path"):
        LayoutClips([(layout, 0)], train=False, modalities=("layout", "rgb"))
    with pytest.raises(ValueError, match="flow_dir"):
        LayoutClips([(layout, 0)], train=False, modalities=("layout", "flow"))


def test_layout_datamodule_holds_out_training_videos_for_calibration():
    """Held-out videos (ensemble calibration when a layout model is a distillation teacher) leave the training
    set, are the same for the same seed, and are served with the evaluation transform."""
    from modalbridge.datasets.datamodules import SomethingLayoutDataModule

    dm = SomethingLayoutDataModule("world://kitchen/ssv2", holdout=20, num_workers=0, batch_size=8)
    train = dm.make_dataset("train", train=True)
    held = dm.make_dataset("train", train=False, part="holdout")
    ids = {x.id for x in train.layouts}
    held_ids = {x.id for x in held.layouts}
    assert len(held_ids) == 20 and not ids & held_ids
    assert len(ids) + 20 == len(dm.layouts("train"))
    again = SomethingLayoutDataModule("world://kitchen/ssv2", holdout=20, num_workers=0)
    assert {x.id for x in again.make_dataset("train", train=False, part="holdout").layouts} == held_ids
    batch = next(iter(dm.holdout_dataloader()))
    assert batch["categories"].shape[0] == 8 and "index" in batch


def test_appearance_flow_shares_frames_and_crop_with_rgb(tmp_path, forbid_video):
    """``flow`` next to ``rgb``: (3, Ta, S, S) flow of the same appearance frames under the same crop; flow
    alone gives the same tensors without opening a video; a missing flow folder is an error naming it."""
    dm = SomethingLayoutDataModule(batch_size=2, num_workers=0, modalities=("layout", "rgb", "flow"), size=32,
                                   appearance_frames=8, flow_root=str(tmp_path / "flow"))
    val = dm.make_dataset("validation", train=False)
    ids = [layout.id for layout in val.layouts[:2]]
    assert extract_flow_tree(ids, dm.dataset.video_path, tmp_path / "flow").done == ids
    s = val[0]
    assert s["rgb"].shape == s["flow"].shape == (3, 8, 32, 32) and "categories" in s
    assert torch.all(s["flow"][2] == 0) and s["flow"].abs().max() <= 1
    # evaluation view: flow frame i + 1 of each appearance frame i, short side ⌊32·1.15⌋ = 36, centre crop
    video = read_frames(dm.dataset.video_path(ids[0]), [0])
    length = len(list((tmp_path / "flow" / ids[0] / "u").iterdir()))
    frames = appearance_indices(length, 8, 2, train=False)
    params = centre_params(video.shape[1], video.shape[2], 32, 36)
    expected = apply_flow(read_flow_frames(tmp_path / "flow" / ids[0], frames + 1), params)
    torch.testing.assert_close(s["flow"], expected)
    batch = collate_layouts([s, val[1]])
    assert batch["flow"].shape == batch["rgb"].shape == (2, 3, 8, 32, 32)

    items = list(zip(val.layouts[:2], val.labels[:2]))
    kwargs = dict(train=True, size=32, appearance_frames=8, video_path=dm.dataset.video_path,
                  flow_dir=dm.dataset.flow_dir, seed=5)
    with_rgb = LayoutClips(items, modalities=("rgb", "flow"), **kwargs)
    expected = [with_rgb[i]["flow"] for i in range(2)]
    forbid_video(layouts_module)
    alone = LayoutClips(items, modalities=("flow",), **kwargs)
    for i in range(2):
        assert torch.equal(alone[i]["flow"], expected[i]) and "rgb" not in alone[i]
    with pytest.raises(DataError, match=re.escape(str(tmp_path / "flow" / val.layouts[2].id))):
        val[2]
