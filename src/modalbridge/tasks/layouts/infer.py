"""``modalbridge recognize`` for layout and fusion checkpoints: one video + its boxes → top-k actions and a
picture (sampled frames with their boxes and the predicted label).

Boxes come from a JSON file next to the video (``<video>.json``) or ``--boxes``, in any of the formats the
library reads: the Something-Else per-video record list (``[{"name": "…/0001.jpg", "labels": [{"box2d": …,
"category": …}]}, …]``), a box part file (``{video_id: records}``) or a unified layout JSON (list of
``{"id", "frames": [{"frame_objects": […]}]}``). Layout frame ``i`` is decoded frame ``i``.
Sampling is the validation sampling of the checkpoint's data module (deterministic, centre crop).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from modalbridge.core.engine import load_module_checkpoint
from modalbridge.core.errors import DataError
from modalbridge.core.precision import autocast
from modalbridge.core.report import save_figure
from modalbridge.datasets.boxes import VideoLayout, read_box_annotations, read_layouts
from modalbridge.datasets.layouts import ACTION_GENOME, SSV2, LayoutClips, collate_layouts
from modalbridge.io.samplers import layout_indices
from modalbridge.io.video import probe, read_frames
from modalbridge.tasks.layouts.module import LayoutModule


def read_video_boxes(path: str | Path, video_id: str, size: tuple[int, int]) -> VideoLayout:
    """The layout of one video from a box JSON in any supported format (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise DataError("no box file for this video: pass --boxes or put <video>.json next to it", path=path)
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data, list) and data and isinstance(data[0], dict) and "frames" in data[0]:
        layouts = read_layouts(path)
        layout = next((x for x in layouts if x.id == video_id), layouts[0])
    else:
        if isinstance(data, list):  # one video's record list → a one-video part file
            with tempfile.TemporaryDirectory() as tmp:
                part = Path(tmp) / "boxes.json"
                part.write_text(json.dumps({video_id: data}))
                boxes = read_box_annotations([part])
        else:
            boxes = read_box_annotations([path])
            if video_id not in boxes and len(boxes) == 1:
                video_id = next(iter(boxes))
        if video_id not in boxes:
            raise DataError(f"video {video_id!r} is not in the box file", path=path)
        layout = VideoLayout(id=video_id, frames=boxes[video_id])
    layout.size = layout.size or size
    return layout


@torch.no_grad()
def recognize_layouts(video: str | Path, ckpt: str | Path, *, boxes: str | Path | None = None, top_k: int = 5,
                      picture: str | Path | None = None, precision: str = "auto") -> dict[str, list[tuple[str, float]]]:
    """Top-k ``(label, probability)`` per output of a layout/fusion checkpoint; optionally draws ``picture``."""
    module, data = load_module_checkpoint(str(ckpt), LayoutModule)
    hp: dict[str, Any] = data.get("hparams", {})
    video = Path(video)
    info = probe(video)
    layout = read_video_boxes(boxes or video.with_suffix(".json"), video.stem, (info.width, info.height))
    modalities = [m for m in hp.get("modalities", ("layout",)) if m in ("layout", "rgb", "frames")]
    scheme = ACTION_GENOME if module.multilabel else SSV2
    ds = LayoutClips([(layout, 0)], train=False, scheme=scheme, modalities=modalities,
                     num_frames=hp.get("layout_frames", 16), score_threshold=hp.get("score_threshold", 0.5),
                     appearance_frames=hp.get("appearance_frames", 32),
                     appearance_stride=hp.get("appearance_stride", 2), size=hp.get("size", 112),
                     video_path=lambda _id: video)
    batch = collate_layouts([ds[0]])
    with autocast(precision, "cpu"):
        outputs = module(batch)
    names = (data.get("class_names") or {}).get("action")
    result = {}
    for head, logits in outputs.items():
        logits = logits.float()
        probs = logits.sigmoid()[0] if module.multilabel else logits.softmax(-1)[0]
        p, idx = probs.topk(min(top_k, probs.numel()))
        labels = names or [str(i) for i in range(probs.numel())]
        result[head] = [(labels[i], float(q)) for q, i in zip(p.tolist(), idx.tolist())]
    if picture is not None:
        main = next(iter(result))
        indices = layout_indices(max(1, len(layout.frames)), hp.get("layout_frames", 16), train=False)
        draw_layout_prediction(video, layout, indices, f"{result[main][0][0]} ({100 * result[main][0][1]:.0f}%)",
                               picture, attention=layout_attention(module.model, batch))
    return result


def layout_attention(model: torch.nn.Module, batch: dict[str, Any]) -> np.ndarray | None:
    """Attention of the clip state over the sampled frames ``(n,)`` for models with a plain STLT (STLT, and the
    layout branch of LCF/CAF/CACNF); ``None`` for the others."""
    stlt = model if type(model).__name__ == "STLT" else None
    if type(model).__name__ in ("LCF", "CAF", "CACNF"):
        stlt = model.layout
    if stlt is None:
        return None
    n = int(batch["lengths"][0]) - 1  # the sampled frames, without the extract frame
    return stlt.temporal_attention(batch)[0, :n].cpu().numpy()


def draw_layout_prediction(video: str | Path, layout: VideoLayout, indices: np.ndarray, title: str,
                           out: str | Path, panels: int = 4, attention: np.ndarray | None = None) -> Path:
    """Save ``panels`` sampled frames with their boxes (hands blue, objects red) under ``title``; with
    ``attention`` (one weight per sampled frame) a bar chart below shows which frames the model attended to."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    picks = indices[np.linspace(0, len(indices) - 1, min(panels, len(indices))).round().astype(int)]
    n_video = probe(video).num_frames
    frames = read_frames(video, [min(int(i), n_video - 1) for i in picks]).numpy()
    rows = 2 if attention is not None else 1
    fig = plt.figure(figsize=(3.2 * len(picks), 2.8 + 1.6 * (rows - 1)))
    grid = fig.add_gridspec(rows, len(picks), height_ratios=[2.8, 1.6][:rows])
    for j, (frame, i) in enumerate(zip(frames, picks)):
        ax = fig.add_subplot(grid[0, j])
        ax.imshow(frame)
        for box in layout.frames[int(i)] if int(i) < len(layout.frames) else []:
            colour = "tab:blue" if box.category == "hand" else "tab:red"
            x1, x2 = sorted((box.x1, box.x2))
            y1, y2 = sorted((box.y1, box.y2))
            ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, lw=1.5, color=colour))
            ax.text(x1, y1 - 2, box.category, color=colour, fontsize=7)
        ax.set_title(f"frame {int(i)}", fontsize=8)
        ax.axis("off")
    if attention is not None:
        bar = fig.add_subplot(grid[1, :])
        bar.bar(np.arange(len(attention)), attention, color="tab:purple")
        bar.set_xticks(np.arange(len(attention)), [str(int(i)) for i in indices[:len(attention)]], fontsize=7)
        bar.set_xlabel("sampled frame")
        bar.set_ylabel("attention", fontsize=8)
        bar.set_title("clip state's attention over the frames (last temporal layer)", fontsize=8)
    fig.suptitle(title)
    return save_figure(fig, out)
