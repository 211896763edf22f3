"""Audio decoding and the log-mel "spectrogram images" of the EPIC-KITCHENS audio teacher.

* :func:`load_audio` decodes the audio stream of any file FFmpeg reads (a video's soundtrack,
  wav, flac, …) with PyAV and resamples it to mono float32 at ``sample_rate``;
  :func:`resample_audio` does the same resampling (FFmpeg's) for a waveform already in memory.
* :class:`MelSpectrogram` reproduces ``torchaudio.transforms.MelSpectrogram``'s defaults with
  ``torch.stft`` and a filterbank built here (torchaudio ≥ 2.9 is not needed).
* :func:`spectrogram_windows` cuts one window per sampled video frame and turns each into a
  ``(3, 224, 224)`` image, all windows in one batched STFT (distillation spec §3.2).

The reference feeds 24 kHz audio into a mel transform built for 16 kHz (its bug 4); here the
waveform is resampled to 16 kHz first (``load_audio(..., sample_rate=16000)``), and window
centres are times in seconds computed from each video's own fps (its bug 3).
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F

from modalbridge.core.errors import MediaError
from modalbridge.io.memory import MEDIA_CACHE

__all__ = ["load_audio", "resample_audio", "MelSpectrogram", "mel_filterbank", "hz_to_mel", "mel_to_hz",
           "power_to_db", "spectrogram_windows"]


def load_audio(path: str | Path, sample_rate: int = 16000) -> torch.Tensor:
    """Decode the first audio stream of ``path`` to mono float32 ``(N,)`` at ``sample_rate`` Hz.

    Channels are down-mixed by FFmpeg's resampler. Raises :class:`MediaError` naming the file if
    it cannot be opened, has no audio stream, or yields no samples. Kept (and served) by
    :data:`~modalbridge.io.memory.MEDIA_CACHE` when it is enabled.
    """
    path = str(path)
    if (hit := MEDIA_CACHE.get(("audio", path, int(sample_rate)))) is not None:
        return hit
    if not Path(path).is_file():
        raise MediaError("file not found", path=path)
    try:
        container = av.open(path)
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise MediaError(f"cannot open media file ({exc})", path=path) from exc
    chunks: list[np.ndarray] = []
    try:
        if not container.streams.audio:
            raise MediaError("no audio stream", path=path)
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=int(sample_rate))
        try:
            for frame in container.decode(stream):
                frame.pts = None  # let the resampler keep its own continuous clock
                chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(frame))
        except av.error.FFmpegError as exc:
            if not chunks:
                raise MediaError(f"cannot decode audio ({exc})", path=path) from exc
        chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(None))
    finally:
        container.close()
    if not chunks:
        raise MediaError("audio stream holds no samples", path=path)
    waveform = torch.from_numpy(np.concatenate(chunks).astype(np.float32, copy=False))
    MEDIA_CACHE.put(("audio", path, int(sample_rate)), waveform)
    return waveform


def resample_audio(waveform: torch.Tensor | np.ndarray, from_rate: int, to_rate: int) -> torch.Tensor:
    """Resample a mono waveform ``(N,)`` from ``from_rate`` to ``to_rate`` Hz → float32 ``(≈ N · to / from,)``.

    FFmpeg's resampler (through PyAV), the one :func:`load_audio` uses, so a waveform stored at 24 kHz
    and resampled here matches decoding the file at the target rate up to resampling error.
    """
    wave = np.ascontiguousarray(np.asarray(waveform, dtype=np.float32).reshape(1, -1))
    if int(from_rate) == int(to_rate):
        return torch.from_numpy(wave[0].copy())
    frame = av.AudioFrame.from_ndarray(wave, format="flt", layout="mono")
    frame.sample_rate = int(from_rate)
    resampler = av.AudioResampler(format="flt", layout="mono", rate=int(to_rate))
    chunks = [out.to_ndarray().reshape(-1) for out in (*resampler.resample(frame), *resampler.resample(None))]
    return torch.from_numpy(np.concatenate(chunks).astype(np.float32, copy=False)) if chunks \
        else torch.zeros(0, dtype=torch.float32)


# ------------------------------------------------------------------------------------- mel scale


def hz_to_mel(freq: torch.Tensor | float) -> torch.Tensor:
    """HTK mel scale: ``2595 · log10(1 + f / 700)``."""
    return 2595.0 * torch.log10(1.0 + torch.as_tensor(freq, dtype=torch.float64) / 700.0)


def mel_to_hz(mel: torch.Tensor | float) -> torch.Tensor:
    """Inverse of :func:`hz_to_mel`: ``700 · (10^(m / 2595) - 1)``."""
    return 700.0 * (10.0 ** (torch.as_tensor(mel, dtype=torch.float64) / 2595.0) - 1.0)


def mel_filterbank(n_freqs: int, n_mels: int, sample_rate: int, f_min: float = 0.0,
                   f_max: float | None = None) -> torch.Tensor:
    """Triangular HTK mel filters without area normalisation, shape ``(n_freqs, n_mels)``.

    The ``n_mels + 2`` edge frequencies are equally spaced in mel between ``f_min`` and
    ``f_max`` (default ``sample_rate / 2``); filter ``m`` rises linearly from edge ``m`` to
    edge ``m+1`` and falls to edge ``m+2``, evaluated at the STFT bin frequencies
    ``linspace(0, sample_rate // 2, n_freqs)`` — torchaudio's ``melscale_fbanks`` with
    ``norm=None, mel_scale="htk"``.
    """
    f_max = sample_rate / 2 if f_max is None else f_max
    bins = torch.linspace(0, sample_rate // 2, n_freqs, dtype=torch.float64)  # (n_freqs,)
    edges = mel_to_hz(torch.linspace(float(hz_to_mel(f_min)), float(hz_to_mel(f_max)), n_mels + 2,
                                     dtype=torch.float64))  # (n_mels + 2,)
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bins[:, None] - lower) / (centre - lower)
    falling = (upper - bins[:, None]) / (upper - centre)
    return torch.clamp(torch.minimum(rising, falling), min=0.0).float()


class MelSpectrogram(torch.nn.Module):
    """Power mel spectrogram ``(..., N)`` → ``(..., n_mels, 1 + N // hop_length)``.

    Defaults are the reference's torchaudio settings: 16 kHz mel scale, ``n_fft=1024``,
    periodic Hann window of ``win_length=160`` zero-padded to ``n_fft``, ``hop_length=80``,
    centred frames with reflect padding, power 2, 128 HTK mels from 0 Hz to ``sr/2``, no
    filter normalisation.
    """

    def __init__(self, sample_rate: int = 16000, n_fft: int = 1024, win_length: int = 160,
                 hop_length: int = 80, n_mels: int = 128, f_min: float = 0.0,
                 f_max: float | None = None, power: float = 2.0, center: bool = True,
                 pad_mode: str = "reflect"):
        super().__init__()
        self.sample_rate, self.n_fft, self.win_length = sample_rate, n_fft, win_length
        self.hop_length, self.n_mels, self.power = hop_length, n_mels, power
        self.center, self.pad_mode = center, pad_mode
        self.register_buffer("window", torch.hann_window(win_length), persistent=False)
        self.register_buffer("fb", mel_filterbank(n_fft // 2 + 1, n_mels, sample_rate, f_min, f_max),
                             persistent=False)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        shape = waveform.shape
        flat = waveform.reshape(-1, shape[-1]).float()
        spec = torch.stft(flat, n_fft=self.n_fft, hop_length=self.hop_length, win_length=self.win_length,
                          window=self.window, center=self.center, pad_mode=self.pad_mode,
                          onesided=True, return_complex=True)  # (B, n_freqs, frames)
        power = spec.abs().pow(self.power) if self.power != 2.0 else spec.real.square() + spec.imag.square()
        mel = torch.matmul(power.transpose(-1, -2), self.fb).transpose(-1, -2)  # (B, n_mels, frames)
        return mel.reshape(*shape[:-1], self.n_mels, mel.shape[-1])


def power_to_db(x: torch.Tensor, amin: float = 1e-10) -> torch.Tensor:
    """``10 · log10(max(x, amin))`` (torchaudio ``AmplitudeToDB`` defaults: power, ref 1, no top_db)."""
    return 10.0 * torch.log10(torch.clamp(x, min=amin))


_MEL_CACHE: dict[int, MelSpectrogram] = {}


def spectrogram_windows(waveform: torch.Tensor, sample_rate: int, centres_s: torch.Tensor, *,
                        window_s: float = 1.116, size: int = 224, mean: float = -28.1125,
                        std: float = 16.5627, interpolation: str = "nearest") -> torch.Tensor:
    """One standardised log-mel image per window centre: ``(T, 3, size, size)`` float32.

    ``waveform`` is mono ``(N,)`` (16 kHz for the papers' setting); ``centres_s`` ``(T,)`` holds
    window centres in seconds, typically ``frame_index / video_fps``. Each window has
    ``n = round(window_s · sample_rate)`` samples (17,856 at 16 kHz → 224 STFT frames),
    starting ``n // 2`` samples before the centre sample ``round(t · sr)``; samples outside the
    waveform are zeros. Then mel power → dB → resize the ``(n_mels, frames)`` image to
    ``size × size`` → ``(x - mean) / std`` → repeated to 3 channels.

    ``interpolation="nearest"`` (default) is what the reference uses (``F.interpolate`` with no
    mode), so its checkpoints see the same inputs; with nearest the dB/resize order does not
    matter. ``"bilinear"`` is offered for new models (applied to the dB image).
    """
    wave = torch.as_tensor(waveform, dtype=torch.float32).reshape(-1)
    centres = torch.as_tensor(centres_s, dtype=torch.float64).reshape(-1)
    n = int(round(window_s * sample_rate))
    starts = torch.round(centres * sample_rate).long() - n // 2  # (T,)
    padded = F.pad(wave, (n, n))
    # Clamp so windows entirely outside the waveform read only the zero padding.
    offsets = torch.clamp(starts + n, 0, padded.numel() - n)
    gather = offsets[:, None] + torch.arange(n)  # (T, n)
    windows = padded[gather]

    mel_module = _MEL_CACHE.get(sample_rate)
    if mel_module is None:
        mel_module = _MEL_CACHE.setdefault(sample_rate, MelSpectrogram(sample_rate=sample_rate))
    db = power_to_db(mel_module.to(windows.device)(windows))  # (T, n_mels, frames)
    if interpolation == "nearest":
        image = F.interpolate(db[:, None], size=(size, size), mode="nearest")
    elif interpolation == "bilinear":
        image = F.interpolate(db[:, None], size=(size, size), mode="bilinear", align_corners=False)
    else:
        raise ValueError(f"interpolation must be 'nearest' or 'bilinear', got {interpolation!r}")
    image = (image - mean) / std  # (T, 1, size, size)
    return image.expand(-1, 3, -1, -1).contiguous()

