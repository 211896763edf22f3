"""The process-wide decoded-media cache: LRU budget, and the three readers serving from it."""

import numpy as np
import pytest
import torch

import modalbridge.io.audio as audio_io
import modalbridge.io.video as video_io
from modalbridge.io.audio import load_audio
from modalbridge.io.flow import read_flow_frames, write_flow_frames
from modalbridge.io.memory import MEDIA_CACHE, MediaCache, enable_media_cache
from modalbridge.io.video import read_frames, write_video


@pytest.fixture
def media_cache():
    MEDIA_CACHE.configure(64 * 2**20)
    MEDIA_CACHE.clear()
    yield MEDIA_CACHE
    MEDIA_CACHE.configure(0)
    MEDIA_CACHE.clear()


def test_cache_is_off_by_default_and_evicts_least_recently_used():
    off = MediaCache()
    off.put("a", np.zeros(10, np.uint8))
    assert off.get("a") is None and len(off) == 0
    cache = MediaCache(max_bytes=300)
    for key in "abc":
        cache.put(key, np.zeros(100, np.uint8))
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("d", torch.zeros(25, dtype=torch.float32))  # 100 bytes: evicts b, the least recent
    assert cache.get("b") is None and cache.get("c") is not None and cache.get("d") is not None
    assert cache.bytes == 300
    cache.put("huge", np.zeros(301, np.uint8))  # larger than the budget: not kept, nothing evicted
    assert cache.get("huge") is None and len(cache) == 3
    cache.configure(100)
    assert len(cache) == 1 and cache.bytes == 100
    assert cache.stats()["hits"] >= 3
    with pytest.raises(TypeError):
        cache.put("x", [1, 2])


def test_read_frames_from_the_cache_equals_decoding_and_keeps_the_span(tmp_path, media_cache, monkeypatch):
    frames = (np.arange(40, dtype=np.uint8)[:, None, None, None] * 6).repeat(16, 1).repeat(16, 2).repeat(3, 3)
    path = write_video(tmp_path / "v.mp4", frames, fps=10)
    MEDIA_CACHE.configure(0)
    plain = dict(zip([3, 4, 9, 12, 20], read_frames(path, [3, 4, 9, 12, 20])))
    MEDIA_CACHE.configure(64 * 2**20)
    first = read_frames(path, [3, 9, 9, 20])
    assert torch.equal(first, torch.stack([plain[3], plain[9], plain[9], plain[20]]))
    assert len(media_cache) == 18  # every frame decoded between 3 and 20 is kept

    def no_decoding(*args, **kwargs):
        raise AssertionError("the file was opened although every frame is cached")

    monkeypatch.setattr(video_io, "_open", no_decoding)
    again = read_frames(path, [20, 4, 12])  # 4 and 12 were never asked for, but lie inside the span
    assert torch.equal(again, torch.stack([plain[20], plain[4], plain[12]]))
    assert media_cache.stats()["hits"] >= 3


def test_flow_and_audio_are_read_once(tmp_path, media_cache, monkeypatch):
    write_flow_frames(torch.full((3, 2, 8, 8), 100, dtype=torch.uint8), tmp_path / "flow")
    first = read_flow_frames(tmp_path / "flow", [1, 3])
    for p in (tmp_path / "flow").rglob("*.jpg"):
        p.unlink()
    assert torch.equal(read_flow_frames(tmp_path / "flow", [3, 1]), first.flip(0))

    tone = np.sin(np.linspace(0, 200, 16000)).astype(np.float32) * 0.5
    path = write_video(tmp_path / "a.mp4", np.zeros((10, 16, 16, 3), np.uint8), 10, audio=tone)
    wave = load_audio(path)
    monkeypatch.setattr(audio_io.av, "open", lambda *a, **k: (_ for _ in ()).throw(AssertionError("decoded")))
    assert load_audio(path) is wave


def test_data_module_option_enables_the_cache_and_keeps_a_larger_budget(media_cache, caplog):
    enable_media_cache(0.01, num_workers=0)
    assert MEDIA_CACHE.max_bytes == 64 * 2**20  # the larger budget already set stays
    enable_media_cache(0.5, num_workers=2)
    assert MEDIA_CACHE.max_bytes == 2**29
    assert "num_workers=0" in caplog.text
