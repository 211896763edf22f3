"""Pictures of scenes: a layout drawn with the clip-art PNGs, and the figures built from such drawings
(ground truth beside a prediction with its sentences, a position heat-map, a grid of samples for reports).

:func:`render_scene` pastes each clip-art PNG centred at its (x, y) on ``background.png`` — mirrored when its
flip is 1, in list order, depth ignored (as the reference's renderer) — taking the images from a ``Pngs/``
folder: the real Abstract Scenes one or the embedded world's. It never fails for want of images: without a
folder, or for a file that is missing, it draws a labelled box instead (the clip-art's word, Mike's and
Jenny's pose), and without ``background.png`` a two-tone sky/grass canvas. Figures are matplotlib (Agg) PNGs
written with :func:`modalbridge.core.report.save_figure`.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

from modalbridge.core.report import save_figure  # importing it selects the Agg backend
from modalbridge.tasks.scenes import vocab

__all__ = ["SamplePair", "grid_of_samples", "heatmap_figure", "render_processed_scene", "render_scene",
           "side_by_side"]

PathLike = str | os.PathLike

_SKY_RGB, _GRASS_RGB, _HORIZON_Y = (150, 222, 228), (89, 163, 84), 191  # like the real background.png
#: placeholder box (width, height) and colour per group, roughly the real images' sizes at depth 0
_PLACEHOLDER = {"sky": ((110, 80), (255, 236, 140)), "large": ((150, 200), (190, 160, 120)),
                "people": ((100, 190), (120, 170, 230)), "animals": ((90, 70), (210, 150, 110)),
                "clothing": ((60, 40), (230, 120, 200)), "food": ((50, 40), (240, 180, 90)),
                "toys": ((50, 50), (240, 110, 100))}
_UNKNOWN_PLACEHOLDER = ((60, 60), (200, 200, 200))


def _as_list(values) -> list:
    if values is None:
        return []
    if hasattr(values, "tolist"):
        return values.tolist()
    return list(values)


def _name(clipart) -> str | None:
    """A clip-art given as a PNG name, a bare name or a 1-based id → PNG name; 0 (padding) → None."""
    if isinstance(clipart, str):
        return clipart if clipart.endswith(".png") else f"{clipart}.png"
    index = int(clipart)
    return vocab.clipart_name(index) if index > 0 else None


@lru_cache(maxsize=512)
def _read_png(path: str, mtime_ns: int) -> Image.Image | None:
    """An RGBA image, cached per file version; None if it cannot be read."""
    try:
        with Image.open(path) as image:
            return image.convert("RGBA")
    except OSError:
        return None


def _load_png(png_dir: PathLike | None, name: str) -> Image.Image | None:
    if png_dir is None:
        return None
    path = Path(png_dir) / name
    try:
        stat = path.stat()
    except OSError:
        return None
    return _read_png(str(path), stat.st_mtime_ns)


def _font(size: int = 12) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _canvas(png_dir: PathLike | None, background: bool) -> Image.Image:
    """(500×400) RGB: the folder's background.png, else a drawn sky/grass, or white without background."""
    size = (vocab.CANVAS_W, vocab.CANVAS_H)
    if not background:
        return Image.new("RGB", size, "white")
    image = _load_png(png_dir, "background.png")
    if image is not None:
        return image.convert("RGB").resize(size) if image.size != size else image.convert("RGB")
    canvas = Image.new("RGB", size, _GRASS_RGB)
    ImageDraw.Draw(canvas).rectangle([0, 0, size[0], _HORIZON_Y - 1], fill=_SKY_RGB)
    return canvas


def _label(name: str) -> str:
    word = vocab.WORDS.get(name, Path(name).stem)
    if vocab.prefix(name) in ("hb0", "hb1") and name in vocab.WORDS:
        pose, expression = vocab.pose_expression(name)
        return f"{word}\n{vocab.POSES[pose]}\n{vocab.EXPRESSIONS[expression]}"
    return word


def _placeholder(name: str, flip: int) -> Image.Image:
    """A translucent labelled box standing in for a missing PNG; a notch marks the side it faces, which
    moves to the other side when flipped."""
    try:
        (w, h), colour = _PLACEHOLDER[vocab.group_of(name)]
    except KeyError:
        (w, h), colour = _UNKNOWN_PLACEHOLDER
    box = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(box)
    draw.rectangle([0, 0, w - 1, h - 1], fill=(*colour, 210), outline=(40, 40, 40, 255), width=2)
    notch = [(w - 1, h // 2 - 6), (w - 9, h // 2), (w - 1, h // 2 + 6)]
    if flip:
        notch = [(w - 1 - x, y) for x, y in notch]
    draw.polygon(notch, fill=(40, 40, 40, 255))
    draw.multiline_text((w / 2, h / 2), _label(name), fill=(0, 0, 0, 255), font=_font(11), anchor="mm",
                        align="center")
    return box


def render_scene(cliparts: Sequence, xy_px, flips=None, *, png_dir: PathLike | None = None,
                 background: bool = True) -> Image.Image:
    """Draw one layout, a 500×400 RGB :class:`PIL.Image.Image`.

    ``cliparts``: N clip-arts as PNG names (``"hb0_14s.png"``), bare names or 1-based ids (0 = padding,
    skipped); ``xy_px``: (N, 2) pixel centres (may lie off the canvas: the image is clipped); ``flips``: (N,)
    0/1, None = all 0; ``png_dir``: a ``Pngs/`` folder, None to draw placeholders; ``background``: paste on
    ``background.png`` (or a drawn sky/grass), else on white. Clip-arts are drawn in list order.
    """
    names = [_name(c) for c in _as_list(cliparts)]
    xy = np.asarray(_as_list(xy_px), dtype=np.float64).reshape(-1, 2)
    flip_list = _as_list(flips) or [0] * len(names)
    if not (len(names) == len(xy) == len(flip_list)):
        raise ValueError(f"render_scene got {len(names)} clip-arts, {len(xy)} positions and "
                         f"{len(flip_list)} flips")
    canvas = _canvas(png_dir, background)
    for name, (x, y), flip in zip(names, xy, flip_list, strict=True):
        if name is None or not np.isfinite([x, y]).all():
            continue
        image = _load_png(png_dir, name)
        if image is None:
            image = _placeholder(name, int(flip))
        elif int(flip) == 1:
            image = ImageOps.mirror(image)
        corner = (int(round(x - image.width / 2)), int(round(y - image.height / 2)))
        canvas.paste(image, corner, image)  # the alpha channel as mask; off-canvas parts are clipped
    return canvas


def render_processed_scene(scene: dict, *, png_dir: PathLike | None = None, xy_px=None, flips=None,
                           background: bool = True) -> Image.Image:
    """Draw a processed scene dict (``elements`` with ``visual_name``, ``x``, ``y``, ``flip``) at its own
    positions, or at ``xy_px`` (N, 2) / ``flips`` (N,) of a prediction aligned with its elements."""
    elements = scene["elements"]
    names = [e["visual_name"] for e in elements]
    xy = [(e["x"], e["y"]) for e in elements] if xy_px is None else xy_px
    flip_list = [e.get("flip", 0) for e in elements] if flips is None else flips
    return render_scene(names, xy, flip_list, png_dir=png_dir, background=background)


def _text_block(sentences: Sequence[str], width: int = 90) -> str:
    lines = []
    for sentence in sentences:
        lines += textwrap.wrap(f"• {sentence}", width) or [""]
    return "\n".join(lines)


def _pair_row(fig, grid_row, gt_image, pred_image, sentences, labels, caption=""):
    """Two image axes (ground truth | prediction) on ``grid_row`` of a GridSpec and the sentences below."""
    images_spec, text_spec = grid_row
    for column, (image, label) in enumerate(((gt_image, labels[0]), (pred_image, labels[1]))):
        ax = fig.add_subplot(images_spec[column])
        ax.imshow(np.asarray(image))
        ax.set_title(f"{caption} — {label}" if caption and column == 0 else label, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    ax = fig.add_subplot(text_spec[:])
    ax.axis("off")
    ax.text(0.0, 1.0, _text_block(sentences), va="top", ha="left", fontsize=9, transform=ax.transAxes)


def side_by_side(gt_image: Image.Image, pred_image: Image.Image, sentences: Sequence[str], path: PathLike,
                 title: str | None = None, *,
                 labels: tuple[str, str] = ("ground truth", "prediction")) -> Path:
    """One PNG: the ground-truth drawing | the predicted one, the sentences below; returns the path."""
    pair = SamplePair(gt_image, pred_image, list(sentences))
    return grid_of_samples([pair], path, title=title, labels=labels)


class SamplePair(NamedTuple):
    """One row of :func:`grid_of_samples`: two drawings, the sentences and an optional caption."""

    gt: Image.Image
    pred: Image.Image
    sentences: Sequence[str]
    caption: str = ""


def grid_of_samples(items: Sequence[SamplePair | tuple], path: PathLike, *, title: str | None = None,
                    labels: tuple[str, str] = ("ground truth", "prediction")) -> Path:
    """A report figure: one row per item — ground truth | prediction, its sentences below. ``items``:
    :class:`SamplePair` or ``(gt_image, pred_image, sentences[, caption])`` tuples. Returns the path."""
    pairs = [item if isinstance(item, SamplePair) else SamplePair(*item) for item in items]
    if not pairs:
        raise ValueError("grid_of_samples needs at least one item")
    text_heights = [0.25 + 0.17 * max(1, _text_block(p.sentences).count("\n") + 1) for p in pairs]
    fig = plt.figure(figsize=(9, sum(3.4 + h for h in text_heights) + (0.4 if title else 0)))
    ratios = [r for h in text_heights for r in (3.4, h)]
    outer = fig.add_gridspec(2 * len(pairs), 2, height_ratios=ratios)
    for i, pair in enumerate(pairs):
        _pair_row(fig, (outer[2 * i, :].subgridspec(1, 2), outer[2 * i + 1, :].subgridspec(1, 1)),
                  pair.gt, pair.pred, pair.sentences, labels, pair.caption)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path, rect=(0, 0, 1, 0.97) if title else None)


def heatmap_figure(prob_grid, scene_image: Image.Image, path: PathLike, *, title: str | None = None,
                   marker_xy: tuple[float, float] | None = None) -> Path:
    """Overlay a position distribution on a drawn scene and save it as a PNG.

    ``prob_grid``: (21, 26) or (20, 25) probabilities indexed [y bin, x bin] — p(y) ⊗ p(x) of one clip-art,
    numpy or torch; each bin is upsampled to 20×20 pixels (bins past the canvas edge are cropped).
    ``marker_xy``: optional (x, y) pixels to mark with a cross (e.g. the ground truth).
    """
    if hasattr(prob_grid, "detach"):  # torch
        prob_grid = prob_grid.detach().cpu()
    grid = np.asarray(prob_grid, dtype=np.float64)
    if grid.shape not in ((vocab.Y_BINS, vocab.X_BINS), (vocab.Y_BINS - 1, vocab.X_BINS - 1)):
        raise ValueError(f"prob_grid must be ({vocab.Y_BINS}, {vocab.X_BINS}) or "
                         f"({vocab.Y_BINS - 1}, {vocab.X_BINS - 1}) [y, x], got {grid.shape}")
    upsampled = np.kron(grid, np.ones((vocab.BIN, vocab.BIN)))[:vocab.CANVAS_H, :vocab.CANVAS_W]
    fig, ax = plt.subplots(figsize=(6.2, 4.6))
    ax.imshow(np.asarray(scene_image), extent=(0, vocab.CANVAS_W, vocab.CANVAS_H, 0))
    peak = upsampled.max() if upsampled.max() > 0 else 1.0
    colours = plt.get_cmap("inferno")(upsampled / peak)
    colours[..., 3] = 0.8 * upsampled / peak  # opacity grows with probability: unlikely places stay visible
    ax.imshow(colours, extent=(0, vocab.CANVAS_W, vocab.CANVAS_H, 0))
    scale = plt.cm.ScalarMappable(cmap="inferno", norm=plt.Normalize(0, peak))
    fig.colorbar(scale, ax=ax, fraction=0.035, label="p(x, y)")
    if marker_xy is not None:
        ax.plot([marker_xy[0]], [marker_xy[1]], marker="x", color="cyan", markersize=12, mew=3)
    ax.set_xlim(0, vocab.CANVAS_W)
    ax.set_ylim(vocab.CANVAS_H, 0)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=10)
    return save_figure(fig, path)
