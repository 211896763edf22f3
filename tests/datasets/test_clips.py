"""Multimodal clip datasets over the kitchen world: shared time steps and crops across modalities,
epoch-encoded indices, corrupt media as a clear error or a counted skip, and SSv2 optical flow (stride-1
folders written by :func:`~modalbridge.io.flow.extract_flow_tree`)."""

import shutil

import numpy as np
import pytest
import torch

from modalbridge.core.data import EpochSampler, collate_skipping
from modalbridge.core.errors import DataError
from modalbridge.core.worlds import resolve_root
from modalbridge.datasets import clips as clips_module
from modalbridge.datasets.clips import EpicClips, SomethingClips
from modalbridge.datasets.datamodules import SomethingDataModule
from modalbridge.datasets.epic_kitchens import EpicKitchens100
from modalbridge.datasets.something import SomethingSomething
from modalbridge.io.flow import extract_flow_tree, read_flow_frames
from modalbridge.io.transforms import apply_flow
from modalbridge.io.video import probe


@pytest.fixture(scope="module")
def ek():
    return EpicKitchens100(resolve_root("world://kitchen/ek100"))


def _clips(ek, **kw):
    args = dict(modalities=("rgb", "flow", "audio", "text"), num_frames=4, stride=4, size=48, audio_size=32,
                scale_range=(1.0, 1.1), train=True, seed=0)
    args.update(kw)
    return EpicClips(ek, ek.segments("train")[:6], **args)


def test_sample_has_every_modality_with_shared_time_steps(ek):
    s = _clips(ek)[0]
    assert s["rgb"].shape == (3, 4, 48, 48) and s["flow"].shape == (3, 4, 48, 48)
    assert s["audio"].shape == (3, 4, 32, 32) and isinstance(s["text"], str)
    assert torch.all(s["flow"][2] == 0)  # the zero third flow channel is not normalised


def test_epoch_is_decoded_from_the_index(ek):
    ds = _clips(ek, modalities=("rgb",))
    n = len(ds)
    a, b, a_again = ds[1], ds[n + 1], ds[1]
    assert a["index"] == b["index"] == 1
    assert torch.equal(a["rgb"], a_again["rgb"]) and not torch.equal(a["rgb"], b["rgb"])
    sampler = EpochSampler(ds, shuffle=True, seed=0, encode_epoch=True)
    sampler.set_epoch(2)
    assert all(2 * n <= i < 3 * n for i in sampler)


def test_corrupt_video_raises_or_is_counted(ek, tmp_path):
    root = tmp_path / "ek100"
    shutil.copytree(ek.root, root, ignore=shutil.ignore_patterns("flow_frames"))
    broken = EpicKitchens100(root)
    seg = broken.segments("train")[0]
    broken.video_path(seg.video_id).write_bytes(b"not a video at all")
    strict = EpicClips(broken, [seg], modalities=("rgb",), num_frames=4, stride=4, size=48, train=False)
    with pytest.raises(DataError, match=seg.video_id):
        strict[0]
    lenient = EpicClips(broken, [seg, broken.segments("train")[-1]], modalities=("rgb",), num_frames=4,
                        stride=4, size=48, train=False, on_error="skip")
    batch = collate_skipping([lenient[0], lenient[1]])
    assert batch["skipped"] == 1 and batch["rgb"].shape[0] == 1


# --------------------------------------------------------------------------------------------- SSv2 flow
@pytest.fixture
def ssv2_flow(tiny_ssv2):
    """The 4-video SSv2 folder with stride-1 flow extracted into ``<root>/flow``."""
    data = SomethingSomething(tiny_ssv2)
    ids = [v.id for split in ("train", "validation") for v in data.videos(split)]
    summary = extract_flow_tree(ids, data.video_path, data.flow_root)
    assert len(summary.done) == 4
    return data


def _ss_clips(data, **kw):
    args = dict(modalities=("rgb", "flow"), num_segments=4, size=32, scale_range=(1.0, 1.2), train=True, seed=3)
    args.update(kw)
    return SomethingClips(data, data.videos("train"), **args)


def test_something_rgb_and_flow_share_time_steps_and_crop(ssv2_flow, forbid_video):
    both = _ss_clips(ssv2_flow)
    s = both[1]
    assert s["rgb"].shape == s["flow"].shape == (3, 4, 32, 32)
    assert torch.all(s["flow"][2] == 0) and s["flow"].abs().max() <= 1
    ref = both._locate(1, both.rng(1))
    np.testing.assert_array_equal(ref["flow_frames"], ref["frames"] + 1)  # decode index i -> flow frame i + 1
    # evaluation view: the flow is exactly the RGB frames' flow under the RGB clip's resize/crop
    video = ssv2_flow.videos("train")[1].id
    val = _ss_clips(ssv2_flow, train=False)
    frames = val._locate(1, val.rng(1))["frames"]
    flow = read_flow_frames(ssv2_flow.flow_dir(video), frames + 1)
    info = probe(ssv2_flow.video_path(video))
    params = val.transform.sample_params(info.height, info.width)
    torch.testing.assert_close(val[1]["flow"], apply_flow(flow, params))
    # flow alone: same time steps and crop draw (lengths from the flow folder), no video opened
    expected = [both[i]["flow"] for i in range(len(both))]
    forbid_video(clips_module, dataset=ssv2_flow)
    only = _ss_clips(ssv2_flow, modalities=("flow",))
    for i in range(len(only)):
        assert set(only[i]) == {"index", "clip_id", "action", "flow"}
        assert torch.equal(only[i]["flow"], expected[i])


def test_something_missing_flow_folder_names_it(ssv2_flow):
    video = ssv2_flow.videos("train")[0].id
    shutil.rmtree(ssv2_flow.flow_root / video)
    with pytest.raises(DataError) as info:
        _ss_clips(ssv2_flow)[0]
    assert str(ssv2_flow.flow_root / video) in str(info.value)
    lenient = _ss_clips(ssv2_flow, modalities=("flow",), on_error="skip")
    assert lenient[0] is None and lenient[1]["flow"].shape == (3, 4, 32, 32)
    assert _ss_clips(ssv2_flow, modalities=("rgb",))[0]["rgb"].shape == (3, 4, 32, 32)  # RGB needs no flow


def test_something_datamodule_flow_root_and_holdout(ssv2_flow, tmp_path):
    moved = tmp_path / "elsewhere"
    shutil.move(ssv2_flow.flow_root, moved)
    dm = SomethingDataModule(str(ssv2_flow.root), modalities=("flow",), flow_root=str(moved), num_segments=4,
                             size=32, scale_range=(1.0, 1.2), batch_size=2, num_workers=0, holdout=1)
    dm.setup("fit")
    held = dm.make_dataset("train", train=False, part="holdout")
    assert len(dm.train_set) == 2 and len(held) == 1
    assert {v.id for v in held.videos}.isdisjoint(v.id for v in dm.train_set.videos)
    batch = next(iter(dm.train_dataloader()))
    assert batch["flow"].shape == (2, 3, 4, 32, 32) and batch["action"].shape == (2,)
    assert next(iter(dm.holdout_dataloader()))["flow"].shape[0] == 1
    with pytest.raises(DataError, match="no optical flow"):
        SomethingDataModule(str(ssv2_flow.root), modalities=("flow",), num_workers=0).make_dataset(
            "validation", train=False)[0]
