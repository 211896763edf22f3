"""Compositor: analytic layers and how they become frames.

:class:`Layer` is one shape following a per-frame path; :func:`render` paints layers in order over a
background (alpha blending, additive noise) and returns, on request, the analytic optical flow of the
top-most layer at each pixel. Also here: the background and colour helpers (:func:`texture`,
:func:`noise_bank`, :func:`hsv`, :func:`static_layer`) and the easing / placement helpers that motion paths
are built from (:func:`smoothstep`, :func:`phase`, :func:`fit_range`, :func:`fit_offset`).
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from modalbridge.worlds.kitchen.painters import SHAPES


@dataclass
class Layer:
    """One rendered layer of a clip following an analytic path; arrays are per frame, shape (n,)."""

    shape: str
    radius: float
    colour: np.ndarray  # (3,) float32, 0..255
    colour2: np.ndarray  # (3,) secondary (pattern) colour
    cx: np.ndarray
    cy: np.ndarray
    scale: np.ndarray
    visible: np.ndarray  # bool
    alpha: float = 1.0
    role: str = "object"  # object | hand | occluder | distractor | obj0 | obj1
    raw_boxes: np.ndarray | None = None  # bool (n,): keep the box unclipped (annotation runs off-frame)
    flipped: np.ndarray | None = None  # bool (n,): drawn upside down, its underside (colours swapped) showing

    def box(self, t: int) -> tuple[float, float, float, float]:
        """Tight axis-aligned box (x1, y1, x2, y2) in pixels at frame ``t`` (unclipped)."""
        ex, ey = SHAPES[self.shape][1]
        r, cx, cy = float(self.radius * self.scale[t]), float(self.cx[t]), float(self.cy[t])
        return cx - ex * r, cy - ey * r, cx + ex * r, cy + ey * r


def _paint(out: np.ndarray, layer: Layer, flow_slot: np.ndarray | None = None,
           flows: np.ndarray | None = None) -> None:
    """Alpha-blend ``layer`` into the float frames ``out`` (n, H, W, 3) in place, all frames at once.

    The shape is evaluated on one crop per frame, (n, h, w), sized for the largest radius and placed at the
    layer's centre in each frame. When ``flows`` (m, H, W, 2) is given, ``flow_slot`` (n,) maps frame ``t``
    to its flow slot (-1 = none) and the layer's analytic displacement from frame ``t`` to ``t+2`` is written
    where it covers frame ``t`` (zero when it is gone at ``t+2``); painting layers in order leaves the
    top-most layer's motion at each pixel.
    """
    n, height, width = out.shape[:3]
    fn, (ex, ey) = SHAPES[layer.shape]
    r = (layer.radius * layer.scale).astype(np.float32)
    half_w, half_h = ex * float(r.max()), ey * float(r.max())
    xx = np.floor(layer.cx - half_w).astype(np.int64)[:, None] - 1 + np.arange(2 * math.ceil(half_w) + 3)
    yy = np.floor(layer.cy - half_h).astype(np.int64)[:, None] - 1 + np.arange(2 * math.ceil(half_h) + 3)
    u = ((xx - layer.cx[:, None]) / r[:, None]).astype(np.float32)[:, None, :]  # (n, 1, w)
    v = ((yy - layer.cy[:, None]) / r[:, None]).astype(np.float32)[:, :, None]  # (n, h, 1)
    if layer.flipped is not None:  # mirror the shape vertically (same box: extents are symmetric)
        v = v * np.where(layer.flipped, -1.0, 1.0).astype(np.float32)[:, None, None]
    mask, part = fn(u, v)
    mask = (mask & layer.visible[:, None, None] & ((yy >= 0) & (yy < height))[:, :, None]
            & ((xx >= 0) & (xx < width))[:, None, :])
    ti, yi, xi = np.nonzero(mask)
    if len(ti) == 0:
        return
    ys, xs = yy[ti, yi], xx[ti, xi]
    second = np.broadcast_to(part, mask.shape)[ti, yi, xi]
    if layer.flipped is not None:
        second = second ^ layer.flipped[ti]
    colour = np.where(second[:, None], layer.colour2, layer.colour)
    pixels = out[ti, ys, xs]
    out[ti, ys, xs] = pixels + np.float32(layer.alpha) * (colour - pixels)
    if flows is None:
        return
    sel = flow_slot[ti] >= 0
    ft, fy, fx = ti[sel], ys[sel], xs[sel]
    nxt = np.minimum(np.arange(n) + 2, n - 1)
    moving = (np.arange(n) + 2 < n) & layer.visible[nxt]
    k = np.where(moving, layer.scale[nxt] / layer.scale, 0.0)[ft]
    on = moving[ft]
    flows[flow_slot[ft], fy, fx, 0] = np.where(on, layer.cx[nxt][ft] + k * (fx - layer.cx[ft]) - fx, 0.0)
    flows[flow_slot[ft], fy, fx, 1] = np.where(on, layer.cy[nxt][ft] + k * (fy - layer.cy[ft]) - fy, 0.0)


def paint_static(image: np.ndarray, layer: Layer) -> None:
    """Draw a one-frame ``layer`` into a float image (H, W, 3) in place."""
    _paint(image[None], layer)


def render(background: np.ndarray, layers: Sequence[Layer], n: int, noise: np.ndarray,
           rng: np.random.Generator, flow_starts: Sequence[int] = ()) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Render ``n`` frames of ``layers`` (painted in order) over ``background`` (H, W, 3) float32, or one
    background per frame (n, H, W, 3).

    ``noise`` is a bank (K, H, W, 3) of additive noise images, one drawn per frame. For every local frame
    ``t`` in ``flow_starts`` the analytic displacement from frame ``t`` to ``t+2`` of the top-most layer at
    each pixel is returned as ``flows[t]`` (H, W, 2) float32 (dx, dy) in pixels. Returns frames uint8
    (n, H, W, 3) and the flow dict.
    """
    height, width = background.shape[-3:-1]
    out = np.empty((n, height, width, 3), np.float32)
    out[:] = background
    starts = sorted(set(flow_starts))
    flow_slot = np.full(n, -1, np.int64)
    flow_slot[starts] = np.arange(len(starts))
    flows = np.zeros((len(starts), height, width, 2), np.float32)
    for layer in layers:
        _paint(out, layer, flow_slot, flows)
    out += noise[rng.integers(len(noise), size=n)]
    np.clip(out, 0, 255, out=out)
    return out.astype(np.uint8), {t: flows[i] for i, t in enumerate(starts)}


def texture(rng: np.random.Generator, width: int, height: int, base: np.ndarray, amplitude: float) -> np.ndarray:
    """Smooth random texture (H, W, 3) float32 around ``base``: bicubic upsampling of a 4×5 grid."""
    grid = rng.normal(0.0, 1.0, (4, 5, 3)).astype(np.float32)
    smooth = cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
    return (base[None, None, :] + amplitude * smooth).astype(np.float32)


def noise_bank(rng: np.random.Generator, width: int, height: int, std: float, k: int = 12) -> np.ndarray:
    """(k, H, W, 3) float32 Gaussian pixel noise; one image is added to each rendered frame."""
    return rng.standard_normal((k, height, width, 3), dtype=np.float32) * np.float32(std)


def hsv(h: float, s: float, v: float) -> np.ndarray:
    """RGB (3,) float32 in 0..255 of hue ``h`` (degrees, wrapped), saturation ``s`` and value ``v`` (0..1)."""
    return np.array(colorsys.hsv_to_rgb((h % 360) / 360.0, s, v), np.float32) * 255.0


def static_layer(shape, radius, colour, colour2, x, y, n, *, alpha=1.0, role="object") -> Layer:
    """A layer of ``n`` frames that stays at (x, y) at scale 1, visible in every frame."""
    return Layer(shape, radius, np.asarray(colour, np.float32), np.asarray(colour2, np.float32),
                 np.full(n, x, np.float32), np.full(n, y, np.float32), np.ones(n, np.float32),
                 np.ones(n, bool), alpha, role)


def smoothstep(x: np.ndarray) -> np.ndarray:
    """Cubic 0→1 ease ``3x² - 2x³`` of ``x`` clipped to [0, 1] (same shape as ``x``)."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def phase(tau: np.ndarray, start: float, stop: float) -> np.ndarray:
    """Smooth 0→1 ramp of normalised time ``tau`` between ``start`` and ``stop``."""
    return smoothstep((tau - start) / (stop - start))


def fit_range(lo: np.ndarray, hi: np.ndarray, first: float, last: float, rng: np.random.Generator) -> float:
    """Random shift that moves the interval [min(lo), max(hi)] inside [first, last] (centred if too long)."""
    low, high = first - float(np.min(lo)), last - float(np.max(hi))
    return rng.uniform(low, high) if low <= high else 0.5 * (low + high)


def fit_offset(lo: np.ndarray, hi: np.ndarray, size: float, margin: float, rng: np.random.Generator) -> float:
    """Random shift that keeps [min(lo), max(hi)] inside [margin, size - margin]."""
    return fit_range(lo, hi, margin, size - margin, rng)
