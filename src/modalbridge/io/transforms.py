"""Clip-level augmentation: one parameter draw per clip, applied to every frame at once.

A :class:`ClipParams` holds everything random about a view of a clip (resize, crop box, flip,
colour-jitter factors and their order). :class:`ClipTransform` samples it once per clip and
applies it to the whole ``(T, H, W, 3)`` clip with batched tensor ops (no per-frame loop), and
:func:`apply_flow` applies the geometric part of the *same* params to optical flow, so RGB and
flow of one sample stay aligned (distillation spec §4 "Consistency").

Outputs use the channels-first video layout of torchvision's video models: ``(3, T, S, S)``.

Recipe (distillation spec §4): train — short side resized to ``round_down(S · U(1.15, 1.43))``,
random ``S×S`` crop, optional horizontal flip (p = 0.5; EPIC only, never SSv2), colour jitter
(brightness, contrast, saturation factors ∈ [0.75, 1.25], hue ∈ [-0.1, 0.1], random order);
eval — short side ``S``, centre crop. Then ImageNet mean/std normalisation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

__all__ = ["ClipParams", "ClipTransform", "apply_flow", "adjust_hue", "IMAGENET_MEAN", "IMAGENET_STD"]

#: ImageNet RGB mean / std (in [0, 1] units): the normalisation of every clip the video models see
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_JITTER_RANGE = (0.75, 1.25)
_HUE_RANGE = (-0.1, 0.1)


@dataclass
class ClipParams:
    """One random draw shared by all frames (and all spatial modalities) of a clip.

    ``scale``: short side after resizing divided by the output size (1.0 in eval);
    ``resized``: ``(h, w)`` the clip is resized to; ``crop``: ``(top, left, height, width)`` in
    the resized frame; ``flip``: horizontal flip; ``jitter``: ``(brightness, contrast,
    saturation, hue)`` factors or ``None`` (no colour jitter); ``order``: the order in which the
    four jitter ops are applied (indices into ``jitter``).
    """

    scale: float
    resized: tuple[int, int]
    crop: tuple[int, int, int, int]
    flip: bool = False
    jitter: tuple[float, float, float, float] | None = None
    order: tuple[int, ...] = (0, 1, 2, 3)


def resized_size(height: int, width: int, short: int) -> tuple[int, int]:
    """Size with the short side ``short`` and the aspect ratio kept (long side rounded down)."""
    if height <= width:
        return short, max(short, int(short * width / height))
    return max(short, int(short * height / width)), short


class ClipTransform:
    """Augment a uint8 clip ``(T, H, W, 3)`` into a normalised float ``(3, T, size, size)``.

    ``sample_params`` draws a :class:`ClipParams` for a frame size; ``__call__`` applies given
    params (or draws new ones from ``rng``). Pass the same params to :func:`apply_flow` for the
    flow of the same sample, or to a second ``ClipTransform`` for a teacher's view.
    """

    def __init__(self, size: int = 224, *, train: bool, scale_range: tuple[float, float] = (1.15, 1.43),
                 flip: bool = False, color_jitter: bool = True,
                 mean: tuple[float, float, float] = IMAGENET_MEAN, std: tuple[float, float, float] = IMAGENET_STD):
        if min(scale_range) < 1.0:
            raise ValueError(f"scale_range must be >= 1 so that the crop fits, got {scale_range}")
        self.size = int(size)
        self.train = train
        self.scale_range = (float(scale_range[0]), float(scale_range[1]))
        self.flip = flip
        self.color_jitter = color_jitter
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)

    def __repr__(self) -> str:
        return (f"ClipTransform(size={self.size}, train={self.train}, scale_range={self.scale_range}, "
                f"flip={self.flip}, color_jitter={self.color_jitter})")

    def sample_params(self, height: int, width: int, rng: np.random.Generator | None = None) -> ClipParams:
        """Draw the params for a clip of ``height × width`` frames.

        Eval is deterministic and ignores ``rng``; in training ``rng=None`` uses a fresh,
        OS-seeded generator.
        """
        size = self.size
        if not self.train:
            rh, rw = resized_size(height, width, size)
            top, left = int(round((rh - size) / 2.0)), int(round((rw - size) / 2.0))
            return ClipParams(scale=1.0, resized=(rh, rw), crop=(top, left, size, size))
        rng = rng if rng is not None else np.random.default_rng()
        scale = float(rng.uniform(*self.scale_range))
        rh, rw = resized_size(height, width, int(size * scale))
        top = int(rng.integers(0, rh - size, endpoint=True))
        left = int(rng.integers(0, rw - size, endpoint=True))
        flip = bool(self.flip and rng.random() < 0.5)
        jitter, order = None, (0, 1, 2, 3)
        if self.color_jitter:
            b, c, s = (float(v) for v in rng.uniform(*_JITTER_RANGE, size=3))
            jitter = (b, c, s, float(rng.uniform(*_HUE_RANGE)))
            order = tuple(int(i) for i in rng.permutation(4))
        return ClipParams(scale=scale, resized=(rh, rw), crop=(top, left, size, size), flip=flip,
                          jitter=jitter, order=order)

    def __call__(self, clip: torch.Tensor | np.ndarray, params: ClipParams | None = None,
                 rng: np.random.Generator | None = None) -> torch.Tensor:
        """``clip`` uint8 ``(T, H, W, 3)`` (or float in [0, 1]) → float32 ``(3, T, size, size)``.

        Without ``params`` they are drawn by :meth:`sample_params` from ``rng``.
        """
        x = torch.as_tensor(clip)
        if x.ndim != 4 or x.shape[-1] != 3:
            raise ValueError(f"expected a clip (T, H, W, 3), got shape {tuple(x.shape)}")
        if params is None:
            params = self.sample_params(int(x.shape[1]), int(x.shape[2]), rng)
        clip_is_uint8 = x.dtype == torch.uint8
        x = _geometry(x.permute(0, 3, 1, 2), params)  # (T, 3, s, s), same dtype
        # A contiguous (T, 3, s, s) float copy: the per-channel jitter ops are 2-4x faster on it.
        x = x.to(torch.float32, memory_format=torch.contiguous_format)
        if clip_is_uint8:
            x = x.div_(255.0)
        if params.jitter is not None:
            x = _color_jitter(x, params.jitter, params.order)
        x = TF.normalize(x, list(self.mean), list(self.std))
        return x.permute(1, 0, 2, 3).contiguous()


def _geometry(x: torch.Tensor, params: ClipParams) -> torch.Tensor:
    """Resize ``(T, C, H, W)`` to ``params.resized``, crop, flip — one op each for the clip."""
    if tuple(x.shape[-2:]) != tuple(params.resized):
        x = TF.resize(x, list(params.resized), interpolation=InterpolationMode.BILINEAR, antialias=True)
    top, left, height, width = params.crop
    x = x[..., top:top + height, left:left + width]
    if params.flip:
        x = x.flip(-1)
    return x


def _color_jitter(x: torch.Tensor, factors: tuple[float, float, float, float],
                  order: tuple[int, ...]) -> torch.Tensor:
    """Apply brightness/contrast/saturation/hue to float ``(T, 3, H, W)`` in [0, 1]."""
    ops = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, adjust_hue)
    for i in order:
        x = ops[i](x, factors[i])
    return x


def adjust_hue(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Rotate the HSV hue of float RGB ``(..., 3, H, W)`` in [0, 1] by ``factor`` turns.

    Same result as ``torchvision.transforms.v2.functional.adjust_hue`` (to ~1e-6) about 4× faster
    on CPU: it never materialises HSV, using ``c = V - C · clamp(min(k, 4 - k), 0, 1)`` with
    ``k = (n + 6h) mod 6`` (n = 5, 3, 1 for R, G, B), ``V`` = max, ``C`` = max - min.
    """
    if not -0.5 <= factor <= 0.5:
        raise ValueError(f"hue factor must be in [-0.5, 0.5], got {factor}")
    r, g, b = x.unbind(-3)
    maxc = torch.maximum(torch.maximum(r, g), b)
    chroma = maxc - torch.minimum(torch.minimum(r, g), b)
    safe = torch.where(chroma > 0, chroma, torch.ones_like(chroma))
    hue6 = torch.where(maxc == r, (g - b) / safe,
                       torch.where(maxc == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0))
    hue6 = torch.remainder(hue6 + 6.0 * factor, 6.0)
    channels = []
    for n in (5.0, 3.0, 1.0):
        k = torch.remainder(hue6 + n, 6.0)
        channels.append(maxc - chroma * torch.minimum(k, 4.0 - k).clamp_(0.0, 1.0))
    return torch.stack(channels, dim=-3)


def apply_flow(flow: torch.Tensor | np.ndarray, params: ClipParams, *, bound: float = 20.0) -> torch.Tensor:
    """Apply the geometric part of ``params`` to optical flow.

    ``flow`` is ``(T, H, W, 2)`` with channels (u, v): either uint8 quantised (128 ≈ no motion,
    see :func:`modalbridge.io.flow.quantise_flow`) or float pixel displacements. Values are
    brought to ``[-1, 1]``: uint8 ``q → (q/255 - 0.5) / 0.5`` (the reference's ToTensor +
    mean/std 0.5, so 128 maps to 0.0039) and float ``d → clip(d / bound, -1, 1)`` (the same
    scale as dequantising). Then the same resize/crop/flip as the RGB clip; on a flip u is
    negated (for quantised input this equals ``u → 255 - u``; the reference forgets it, bug 5),
    and flow magnitudes are *not* rescaled by the resize factor (flow is treated as an image,
    as in the reference and its checkpoints).

    Returns float32 ``(3, T, size, size)`` with channels (u, v, 0). The third channel is exactly
    zero — it is not ImageNet-normalised (the reference normalises it to a constant, bug 6).
    """
    f = torch.as_tensor(flow)
    if f.ndim != 4 or f.shape[-1] != 2:
        raise ValueError(f"expected flow (T, H, W, 2), got shape {tuple(f.shape)}")
    if f.dtype == torch.uint8:
        f = f.float().div_(127.5).sub_(1.0)
    else:
        f = (f.float() / float(bound)).clamp_(-1.0, 1.0)
    f = _geometry(f.permute(0, 3, 1, 2), params)  # (T, 2, s, s)
    if params.flip:
        f = torch.cat([-f[:, :1], f[:, 1:]], dim=1)
    zeros = torch.zeros_like(f[:, :1])
    return torch.cat([f, zeros], dim=1).permute(1, 0, 2, 3).contiguous()
