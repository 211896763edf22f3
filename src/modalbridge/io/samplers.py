"""Frame-index samplers of the papers' recipes (pure numpy, vectorised).

Every sampler maps a clip length ``L`` (number of frames, ``L >= 1``) to an ``int64`` array of
0-based frame indices in ``[0, L-1]``, sorted ascending. ``train=True`` draws random positions
from ``rng`` (a fresh ``np.random.default_rng()`` if none is given); ``train=False`` is
deterministic and ignores ``rng``.

=======================  ===================================================================
``ek_clip_indices``      EPIC-KITCHENS: ``num_frames`` frames every ``stride`` inside one window
``tsn_indices``          SSv2 / Something-Else (Swin students): one frame per equal segment
``layout_indices``       STLT layout frames (layout_fusion §4)
``appearance_indices``   R3D appearance frames (layout_fusion §4)
=======================  ===================================================================
"""

from __future__ import annotations

import numpy as np

__all__ = ["ek_clip_indices", "tsn_indices", "layout_indices", "appearance_indices"]


def _check(length: int, count: int, name: str) -> None:
    if length < 1:
        raise ValueError(f"clip length must be >= 1, got {length}")
    if count < 1:
        raise ValueError(f"{name} must be >= 1, got {count}")


def _rng(rng: np.random.Generator | None) -> np.random.Generator:
    return rng if rng is not None else np.random.default_rng()


def ek_clip_indices(length: int, num_frames: int = 32, stride: int = 2, *, train: bool,
                    rng: np.random.Generator | None = None) -> np.ndarray:
    """EPIC-KITCHENS clip: ``num_frames`` positions ``offset + k*stride`` (shape ``(num_frames,)``).

    The window spans ``num_frames * stride`` frames. Train: ``offset ~ U{0, …, max(L - span, 0)}``;
    eval: centred, ``offset = max(int((L - span + 1) / 2), 0)``. Positions ``>= L`` repeat the
    last valid position (the largest ``offset + k*stride < L``), so a short clip ends with a
    run of identical frames. Golden: ``L=100`` eval → ``18, 20, …, 80``; ``L=40`` → ``0, 2, …,
    38`` then ``38`` repeated up to 32 positions.
    """
    _check(length, num_frames, "num_frames")
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    span = num_frames * stride
    if train:
        offset = int(_rng(rng).integers(0, max(length - span, 0), endpoint=True))
    else:
        offset = max(int((length - span + 1) / 2), 0)
    positions = offset + stride * np.arange(num_frames, dtype=np.int64)
    last_valid = offset + stride * ((length - 1 - offset) // stride)
    return np.minimum(positions, last_valid)


def tsn_indices(length: int, num_segments: int = 16, *, train: bool,
                rng: np.random.Generator | None = None) -> np.ndarray:
    """TSN-style segment sampling over ``[0, L-1]`` (shape ``(num_segments,)``).

    With ``s = (L - 1) / num_segments`` segment ``i`` covers the integer range
    ``[a_i, b_i]`` with ``a_i = round(i*s)``, ``b_i = round((i+1)*s)`` (numpy round-half-even).
    Train draws ``U{a_i, …, b_i}`` (both ends inclusive, so neighbouring segments share a
    boundary frame); eval takes ``(a_i + b_i) // 2``. This is the formula that reproduces the
    distillation spec's golden ``L=48`` → ``[1, 4, 7, 10, 13, 16, 19, 22, 25, 27, 30, …, 45]``
    (the one step of 2 comes from the half-even rounding of ``8*47/16 = 23.5`` to 24).
    """
    _check(length, num_segments, "num_segments")
    seg = (length - 1) / num_segments
    bounds = np.round(seg * np.arange(num_segments + 1)).astype(np.int64)
    start, end = bounds[:-1], bounds[1:]
    if train:
        return _rng(rng).integers(start, end, endpoint=True).astype(np.int64)
    return (start + end) // 2


def layout_indices(length: int, num_frames: int = 16, *, train: bool,
                   rng: np.random.Generator | None = None) -> np.ndarray:
    """STLT layout frames over an annotation list of ``N = length`` frames.

    Train: ``⌊i·N/F + U(0, N/F)⌋`` for ``i < F = num_frames`` (repeats when ``N < F``).
    Eval: ``⌊(N/F)/2 + i·N/F⌋`` when ``N > F``, else all ``N`` frames — so the eval output has
    ``min(N, F)`` entries (the STLT pads short layouts). Goldens: ``N=48`` → ``1, 4, …, 46``;
    ``N=20`` → ``0, 1, 3, 4, 5, 6, 8, 9, 10, 11, 13, 14, 15, 16, 18, 19``; ``N=10`` → ``0..9``.
    """
    _check(length, num_frames, "num_frames")
    seg = length / num_frames
    base = seg * np.arange(num_frames)
    if train:
        positions = np.floor(base + _rng(rng).uniform(0.0, seg, size=num_frames)).astype(np.int64)
        return np.minimum(positions, length - 1)
    if length <= num_frames:
        return np.arange(length, dtype=np.int64)
    return np.floor(seg / 2 + base).astype(np.int64)


def appearance_indices(length: int, num_frames: int = 32, stride: int = 2, *, train: bool,
                       rng: np.random.Generator | None = None) -> np.ndarray:
    """R3D appearance frames over ``N = length`` decoded frames (shape ``(num_frames,)``).

    With ``span = num_frames * stride``: if ``N > span`` take every ``stride``-th frame of a
    ``span`` window at offset ``U{0, …, N-span-1}`` (train) or ``⌊(N-span)/2⌋`` (eval). Otherwise
    eval takes ``round(linspace(0, N-2, num_frames))`` (round-half-even, as Python's ``round``);
    train takes the same linspace when ``N-2 < num_frames`` and else ``num_frames`` sorted distinct
    random positions from ``[0, N-2)``. Negative positions clamp to 0. Goldens (eval): ``N=100`` →
    ``18, 20, …, 80``; ``N=45`` → ``0, 1, 3, 4, 6, 7, 8, 10, …, 42, 43``; ``N=1`` → all 0.
    """
    _check(length, num_frames, "num_frames")
    span = num_frames * stride
    if length > span:
        if train:
            offset = int(_rng(rng).integers(0, length - span))
        else:
            offset = (length - span) // 2
        return offset + stride * np.arange(num_frames, dtype=np.int64)
    if train and length - 2 >= num_frames:
        chosen = _rng(rng).choice(length - 2, size=num_frames, replace=False)
        return np.sort(chosen).astype(np.int64)
    positions = np.round(np.linspace(0, length - 2, num_frames)).astype(np.int64)
    return np.maximum(positions, 0)
