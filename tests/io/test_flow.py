"""Optical flow: recovery of a known shift, EPIC quantisation, JPEG layout, index mapping, and the
stride-1 Something-Something tree (one flow frame per decoded frame, shards, skips, failures)."""

import shutil

import cv2
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from modalbridge.core.errors import MediaError
from modalbridge.io.flow import (
    compute_flow,
    count_flow_frames,
    decode_to_flow_index,
    dequantise_flow,
    extract_ek_flow,
    extract_flow_tree,
    flow_frame_path,
    quantise_flow,
    read_flow_frames,
    rgb_to_flow_index,
    write_flow_frames,
)
from modalbridge.io.video import probe, write_video


def translating_square(num=4, shift=(3, 2), size=(96, 128)):
    """A textured square moving by ``shift = (dx, dy)`` pixels per frame on a flat background."""
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.integers(0, 256, (40, 40), dtype=np.uint8), (0, 0), 1.5)
    texture = cv2.normalize(texture, None, 30, 230, cv2.NORM_MINMAX)
    frames = np.full((num, *size, 3), 90, np.uint8)
    for t in range(num):
        x, y = 30 + shift[0] * t, 25 + shift[1] * t
        frames[t, y:y + 40, x:x + 40] = texture[..., None]
    return frames


@pytest.mark.parametrize("method", ["dis", "farneback"])
def test_recovers_the_shift_of_a_translating_square(method):
    frames = translating_square(shift=(3, 2))
    flow = compute_flow(frames, method)
    assert flow.shape == (3, 2, 96, 128) and flow.dtype == torch.float32
    inner = flow[:, :, 35:55, 40:60]  # inside the square for all frames
    assert float(inner[:, 0].mean()) == pytest.approx(3.0, abs=0.5)
    assert float(inner[:, 1].mean()) == pytest.approx(2.0, abs=0.5)


def test_unknown_method_and_tvl1_message():
    frames = translating_square(num=2)
    with pytest.raises(ValueError, match="unknown flow method"):
        compute_flow(frames, "magic")
    if not hasattr(cv2, "optflow"):
        with pytest.raises(ImportError, match="opencv-contrib-python-headless"):
            compute_flow(frames, "tvl1")


def test_single_frame_gives_empty_flow():
    assert compute_flow(translating_square(num=1)).shape == (0, 2, 96, 128)


def test_quantisation_anchors():
    q = quantise_flow(torch.tensor([0.0, 20.0, -20.0, 100.0, -100.0, 20.0 / 127.5]))
    assert q.dtype == torch.uint8
    assert q.tolist() == [128, 255, 0, 255, 0, 128]  # 128.5 rounds half-to-even to 128


@settings(max_examples=50, deadline=None)
@given(values=st.lists(st.floats(-20.0, 20.0, allow_nan=False), min_size=1, max_size=50),
       bound=st.sampled_from([10.0, 20.0, 40.0]))
def test_quantise_round_trip_within_one_step(values, bound):
    d = torch.tensor(values).clamp(-bound, bound)
    back = dequantise_flow(quantise_flow(d, bound), bound)
    assert float((back - d).abs().max()) <= bound / 127.5 + 1e-5


def test_jpeg_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    flow = quantise_flow(torch.from_numpy(rng.normal(0, 3, (3, 2, 24, 32))).float())
    flow = torch.from_numpy(cv2.GaussianBlur(flow.numpy().reshape(-1, 32), (0, 0), 2).reshape(3, 2, 24, 32))
    assert write_flow_frames(flow, tmp_path, start_index=5) == 3
    assert flow_frame_path(tmp_path, "u", 5) == tmp_path / "u" / "frame_0000000005.jpg"
    assert (tmp_path / "v" / "frame_0000000007.jpg").is_file()
    back = read_flow_frames(tmp_path, [7, 5, 5])
    assert back.shape == (3, 24, 32, 2) and back.dtype == torch.uint8
    expected = flow[[2, 0, 0]].permute(0, 2, 3, 1).int()
    assert int((back.int() - expected).abs().max()) <= 3  # JPEG q95 on smooth content


def test_missing_flow_frame_names_the_file(tmp_path):
    write_flow_frames(torch.full((1, 2, 8, 8), 128, dtype=torch.uint8), tmp_path)
    with pytest.raises(MediaError) as info:
        read_flow_frames(tmp_path, [1, 2])
    assert "frame_0000000002.jpg" in str(info.value)


def test_rgb_to_flow_index_golden():
    assert [rgb_to_flow_index(i) for i in (1, 2, 3, 4, 5)] == [1, 1, 2, 2, 3]
    assert rgb_to_flow_index(np.array([1, 2, 3, 100])).tolist() == [1, 1, 2, 50]
    assert isinstance(rgb_to_flow_index(np.int64(3)), int)


@pytest.mark.parametrize("num", [9, 10])
def test_extract_ek_flow_layout_and_motion(tmp_path, num):
    frames = translating_square(num=num, shift=(2, 0))
    video = write_video(tmp_path / "clip.mp4", frames, fps=25)
    out = tmp_path / "flow"
    written = extract_ek_flow(video, out, stride=2)
    assert written == -(-num // 2)  # ceil(N / 2): every RGB frame has a flow frame
    assert len(list((out / "u").glob("*.jpg"))) == written
    flow = dequantise_flow(read_flow_frames(out, rgb_to_flow_index(np.arange(1, num + 1))))
    assert flow.shape == (num, 96, 128, 2)
    # flow frame 1 = RGB 1 -> 3, i.e. two steps of 2 px
    assert float(flow[0, 35:55, 50:60, 0].mean()) == pytest.approx(4.0, abs=0.7)


def test_extract_ek_flow_errors(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(MediaError):
        extract_ek_flow(bad, tmp_path / "flow")


# --------------------------------------------------------------------------- SSv2 layout: stride 1, whole trees
def test_decode_to_flow_index_golden():
    assert decode_to_flow_index(np.array([0, 1, 5]), 5).tolist() == [1, 2, 5]  # clamped to the last frame
    assert decode_to_flow_index(np.arange(4), 4).tolist() == [1, 2, 3, 4]


def test_stride_one_tree_has_a_flow_frame_per_decoded_frame_with_the_right_sign(tmp_path):
    """A square moving 3 px right per frame: N flow frames for N frames, u ≈ +3, v ≈ 0, the last repeated."""
    num = 5
    video = write_video(tmp_path / "clip.mp4", translating_square(num=num, shift=(3, 0)), fps=12)
    summary = extract_flow_tree(["clip"], lambda vid: tmp_path / f"{vid}.mp4", tmp_path / "flow")
    assert summary.done == ["clip"] and summary.total == 1 and not summary.failed
    folder = tmp_path / "flow" / "clip"
    assert count_flow_frames(folder) == num == probe(video).num_frames
    assert not list((tmp_path / "flow").glob(".*"))  # no partial folder left behind
    flow = dequantise_flow(read_flow_frames(folder, decode_to_flow_index(np.arange(num), num)))  # (N, H, W, 2)
    inner = flow[:, 35:55, 45:65]  # inside the square in frames 0..4
    assert inner[..., 0].mean(dim=(1, 2)).tolist() == pytest.approx([3.0] * num, abs=0.6)  # u: to the right
    assert inner[..., 1].mean(dim=(1, 2)).abs().max() < 0.4  # v ≈ 0
    assert torch.equal(flow[-1], flow[-2])  # flow frame N repeats N-1


def test_count_flow_frames_errors(tmp_path):
    with pytest.raises(MediaError, match="no frames"):
        count_flow_frames(tmp_path / "absent")
    write_flow_frames(torch.full((3, 2, 8, 8), 128, dtype=torch.uint8), tmp_path)
    assert count_flow_frames(tmp_path) == 3
    (tmp_path / "v" / "frame_0000000003.jpg").unlink()
    with pytest.raises(MediaError, match="u holds 3 flow frames but v holds 2"):
        count_flow_frames(tmp_path)


def test_flow_tree_shards_cover_every_video_once_skip_done_ones_and_count_failures(tmp_path):
    videos = {}
    for k in range(3):
        videos[f"v{k}"] = write_video(tmp_path / f"v{k}.mp4", translating_square(num=3 + k), fps=12)
    videos["broken"] = tmp_path / "broken.webm"
    videos["broken"].write_bytes(b"not a video")
    ids = ["v0", "broken", "v1", "v2", "v1"]  # a duplicate is extracted once
    out = tmp_path / "flow"
    first = extract_flow_tree(ids, videos.__getitem__, out, shard=(0, 2))
    second = extract_flow_tree(ids, videos.__getitem__, out, shard=(1, 2))
    assert sorted(first.done + second.done) == ["v0", "v1", "v2"]
    assert first.total + second.total == 4
    assert list({**first.failed, **second.failed}) == ["broken"]
    assert sorted(p.name for p in out.iterdir()) == ["v0", "v1", "v2"]  # failures leave no folder
    assert [count_flow_frames(out / f"v{k}") for k in range(3)] == [3, 4, 5]

    seen = []
    again = extract_flow_tree(ids, videos.__getitem__, out, progress=lambda *a: seen.append(a))
    assert again.done == [] and sorted(again.skipped) == ["v0", "v1", "v2"] and list(again.failed) == ["broken"]
    assert [(p, t, o) for p, t, _, o in seen] == [(1, 4, "skipped"), (2, 4, "failed"), (3, 4, "skipped"),
                                                (4, 4, "skipped")]
    (out / "v1" / "u" / "frame_0000000004.jpg").unlink()  # incomplete: extracted again
    shutil.rmtree(out / "v2")
    redo = extract_flow_tree(["v0", "v1", "v2"], videos.__getitem__, out)
    assert redo.done == ["v1", "v2"] and redo.skipped == ["v0"] and count_flow_frames(out / "v1") == 4
    assert extract_flow_tree(["v0"], videos.__getitem__, out, overwrite=True).done == ["v0"]


def test_flow_tree_rejects_bad_arguments_before_touching_a_video(tmp_path):
    def never(video_id):
        raise AssertionError("no video should be located")

    with pytest.raises(ValueError, match="shard"):
        extract_flow_tree(["a"], never, tmp_path, shard=(2, 2))
    with pytest.raises(ValueError, match="unknown flow method"):
        extract_flow_tree(["a"], never, tmp_path, method="magic")
