"""Multimodal clip datasets over the kitchen world: shared time steps and crops across modalities,
epoch-encoded indices, and corrupt media as a clear error or a counted skip."""

import shutil

import pytest
import torch

from modalbridge.core.data import EpochSampler, collate_skipping
from modalbridge.core.errors import DataError
from modalbridge.core.worlds import resolve_root
from modalbridge.io.clips import EpicClips
from modalbridge.io.epic_kitchens import EpicKitchens100


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
