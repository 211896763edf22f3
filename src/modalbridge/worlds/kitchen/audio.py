"""Sound of the EPIC videos: the verb sound of a segment (take = rising chirp, put = thud, wash = water
noise, open = creak, close = bang, cut = one click per chop) and the faint tone whose pitch encodes the noun.
:func:`.epic.render_ek_video` mixes them over background noise into the AAC track."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from modalbridge.worlds.kitchen.compositor import smoothstep


def verb_sound(verb: str, m: int, sr: int, rng: np.random.Generator, cues: dict[str, Any]) -> np.ndarray:
    """Verb-specific sound (m,) float32 for a segment of ``m`` samples (see the package docstring)."""
    t = np.arange(m) / sr
    dur = m / sr
    env = smoothstep((t / dur - 0.08) / 0.1) * smoothstep((0.92 - t / dur) / 0.1)
    jitter = rng.uniform(0.9, 1.1)
    if verb == "take":
        f0, f1 = 500.0 * jitter, 1500.0 * jitter
        y = np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t * t / (2 * dur))) * env
    elif verb in ("put", "close"):
        onset = cues["land"] * dur
        after = np.clip(t - onset, 0.0, None)
        decay = np.exp(-after / (0.06 if verb == "put" else 0.09)) * (t >= onset)
        low = 140.0 if verb == "put" else 85.0
        noise = rng.normal(0.0, 1.0, m) * np.exp(-after / 0.015) * (t >= onset)
        y = decay * np.sin(2 * np.pi * low * jitter * after) + (0.3 if verb == "put" else 0.8) * noise
    elif verb == "wash":
        spectrum = np.fft.rfft(rng.normal(0.0, 1.0, m))
        freqs = np.fft.rfftfreq(m, 1.0 / sr)
        spectrum[(freqs < 1500.0) | (freqs > 4000.0)] = 0.0
        y = np.fft.irfft(spectrum, m)
        y = y / (np.abs(y).max() + 1e-9) * env * (0.6 + 0.4 * np.sin(2 * np.pi * cues["freq"] * t))
    elif verb == "open":
        f = 220.0 * jitter * (1.0 + 0.4 * t / dur)
        saw = 2.0 * ((np.cumsum(f) / sr) % 1.0) - 1.0
        y = 0.7 * saw * (0.6 + 0.4 * np.sign(np.sin(2 * np.pi * 25.0 * t))) * env
    elif verb == "cut":
        y = np.zeros(m)
        for hit in cues["hits"]:
            after = t - hit
            on = after >= 0
            y += on * np.exp(-np.clip(after, 0, None) / 0.01) * (
                rng.normal(0.0, 0.6, m) + np.sin(2 * np.pi * 2200.0 * jitter * after))
    else:  # pragma: no cover
        raise ValueError(verb)
    peak = np.abs(y).max()
    return (0.45 * rng.uniform(0.75, 1.0) * y / peak if peak > 0 else y).astype(np.float32)


def noun_pitches(nouns: Sequence[str]) -> dict[str, float]:
    """noun → pitch (Hz) of its tone: ``nouns`` spread evenly over the octave above 300 Hz."""
    return {noun: 300.0 * 2 ** (i / len(nouns)) for i, noun in enumerate(nouns)}


def noun_tone(pitch: float, m: int, sr: int, level: float) -> np.ndarray:
    """The noun tone (m,) float32 of a segment of ``m`` samples: a sine at ``pitch`` Hz under a Hann window,
    peak amplitude ``level``."""
    tone = np.sin(2 * np.pi * pitch * np.arange(m) / sr)
    return (level * tone * np.hanning(m)).astype(np.float32)
