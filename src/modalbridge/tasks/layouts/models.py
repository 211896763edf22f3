"""Registered layout / appearance / fusion models (thesis Ch. 6, Table 6.1).

==================  =====================  ============================================================
name                registry ``inputs``    model
==================  =====================  ============================================================
``stlt``            ``layout``             STLT (:class:`~.stlt.STLT`)
``stlt_joint``      ``layout``             S&TLT (:class:`~.stlt.STLTJoint`, spatial+temporal layers)
``r3d``             ``video_batch``        R3D-50 + linear head (:class:`~.appearance.R3D`)
``r3d_transformer`` ``video_batch``        R3D-50 + 4-layer transformer (:class:`~.appearance.R3DTransformer`)
``pff`` ``pbf``     ``video+layout``       STLT + per-frame / per-box 2D-CNN features (``batch["frames"]``)
``ef`` ``vatf``     ``video+layout``       early fusion / Video-Action-Transformer fusion (``batch["rgb"]``)
``lcf`` ``caf``     ``video+layout``       two-branch late / cross-attention fusion (``batch["rgb"]``)
``cacnf``           ``video+layout``       CAF + branch heads; ``{h}`` = mean of ``{h}_layout``,
                                           ``{h}_appearance``, ``{h}_fusion``
==================  =====================  ============================================================

Every builder takes ``heads`` (default ``{"action": 174}``), ``preset`` (``"paper"`` = the sizes
below, ``"tiny"`` = :data:`TINY` for CPU worlds) and any option of :data:`PAPER` as override; options a
model does not use are ignored, so one config serves all models. Unknown options raise ``TypeError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import torch

from modalbridge.core.registry import register_model
from modalbridge.tasks.layouts.appearance import R3D, AppearanceTrunk, R3DTransformer
from modalbridge.tasks.layouts.fusion import CACNF, CAF, EF, LCF, PBF, PFF, VATF
from modalbridge.tasks.layouts.stlt import STLT, STLTJoint

#: paper sizes (spec card §3): every model option and its default
PAPER: dict[str, Any] = {
    "hidden": 768, "num_heads": 12, "spatial_layers": 4, "temporal_layers": 8, "dropout": 0.1,
    "fusion_layers": 4,          # CAF/CACNF fusion layers, VATF decoder layers
    "appearance_layers": 4,      # R3D-Transformer encoder layers
    "joint_layers": None,        # S&TLT depth; None = spatial_layers + temporal_layers
    "num_categories": 4,         # SSv2 pad/hand/object/cls; Action Genome 38
    "num_frame_types": 5,        # SSv2 pad/start/regular/empty/extract (AG uses 4 of them)
    "use_scores": False,         # Action Genome: embed detector scores
    "max_frames": 256,           # rows of the frame-position tables
    "backbone": "r3d_50_hara",   # appearance trunk (any name of modalbridge.nn.video_backbones)
    "weights": None,             # checkpoint of the appearance trunk (e.g. r3d50_KMS_200ep.pth)
    "freeze_bn": True,           # BatchNorm of the 3D/2D CNNs in eval mode with fixed affine params
    "appearance_frames": 32, "appearance_size": 112,  # clip size the appearance token count is built for
    "frame_backbone": "resnet152",  # PFF/PBF 2D CNN (torchvision resnet name or "tiny")
    "frame_weights": None, "train_frame_backbone": False,
    "reference_compat": False,   # CAF/CACNF: the released checkpoints' fusion layers
}

#: CPU-world sizes (H=64, 2+2 layers, narrow 3D ResNet on 8x32x32 clips, tiny 2D CNN); the CNNs are
#: trained from scratch there, so their BatchNorm is trained and the 2D CNN is not frozen
TINY: dict[str, Any] = {
    "hidden": 64, "num_heads": 4, "spatial_layers": 2, "temporal_layers": 2, "fusion_layers": 2,
    "appearance_layers": 2, "backbone": "r3d_tiny", "appearance_frames": 8, "appearance_size": 32,
    "frame_backbone": "tiny", "train_frame_backbone": True, "freeze_bn": False,
}

PRESETS: dict[str, dict[str, Any]] = {"paper": {}, "tiny": TINY}

DEFAULT_HEADS = {"action": 174}


def model_options(preset: str = "paper", **overrides: Any) -> SimpleNamespace:
    """Paper defaults <- preset <- overrides, as attributes."""
    if preset not in PRESETS:
        raise KeyError(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
    unknown = set(overrides) - set(PAPER)
    if unknown:
        raise TypeError(f"unknown layout model option(s) {sorted(unknown)}; known: {', '.join(PAPER)}")
    return SimpleNamespace(**{**PAPER, **PRESETS[preset], **overrides})


def _stlt(o: SimpleNamespace, heads: Mapping[str, int] | None = None, prefix: bool = False) -> STLT:
    return STLT(heads, hidden=o.hidden, num_heads=o.num_heads, spatial_layers=o.spatial_layers,
                temporal_layers=o.temporal_layers, dropout=o.dropout, num_categories=o.num_categories,
                num_frame_types=o.num_frame_types + int(prefix), use_scores=o.use_scores, max_frames=o.max_frames,
                prefix_type=o.num_frame_types if prefix else None)


def _r3d_transformer(o: SimpleNamespace, heads: Mapping[str, int] | None = None) -> R3DTransformer:
    return R3DTransformer(heads, backbone=o.backbone, weights=o.weights, hidden=o.hidden, num_heads=o.num_heads,
                          layers=o.appearance_layers, dropout=o.dropout, frames=o.appearance_frames,
                          size=o.appearance_size, freeze_bn=o.freeze_bn)


def _trunk(o: SimpleNamespace) -> AppearanceTrunk:
    return AppearanceTrunk(o.backbone, o.weights, o.freeze_bn)


def _fusion_kwargs(o: SimpleNamespace) -> dict[str, Any]:
    return {"num_heads": o.num_heads, "layers": o.fusion_layers, "dropout": o.dropout,
            "reference_compat": o.reference_compat}


@register_model("stlt", task="layouts", inputs="layout", example=lambda: example_batch(), tiny={"preset": "tiny"})
def stlt(heads: Mapping[str, int] | None = None, preset: str = "paper", **options: Any) -> STLT:
    """STLT: spatial transformer per frame, causal temporal transformer over frames (layout only)."""
    return _stlt(model_options(preset, **options), heads or DEFAULT_HEADS)


@register_model("stlt_joint", task="layouts", inputs="layout", example=lambda: example_batch(), tiny={"preset": "tiny"})
def stlt_joint(heads: Mapping[str, int] | None = None, preset: str = "paper", **options: Any) -> STLTJoint:
    """S&TLT: one transformer over every object of every frame (layout only)."""
    o = model_options(preset, **options)
    return STLTJoint(heads or DEFAULT_HEADS, hidden=o.hidden, num_heads=o.num_heads,
                     layers=o.joint_layers or o.spatial_layers + o.temporal_layers, dropout=o.dropout,
                     num_categories=o.num_categories, use_scores=o.use_scores, max_frames=o.max_frames)


@register_model("r3d", task="layouts", inputs="video_batch", example=lambda: example_batch(), tiny={"preset": "tiny"})
def r3d(heads: Mapping[str, int] | None = None, preset: str = "paper", **options: Any) -> R3D:
    """R3D: 3D ResNet trunk, global average pool, linear head (appearance only)."""
    o = model_options(preset, **options)
    return R3D(heads or DEFAULT_HEADS, backbone=o.backbone, weights=o.weights, freeze_bn=o.freeze_bn)


@register_model("r3d_transformer", task="layouts", inputs="video_batch", example=lambda: example_batch(), tiny={"preset": "tiny"})
def r3d_transformer(heads: Mapping[str, int] | None = None, preset: str = "paper",
                    **options: Any) -> R3DTransformer:
    """R3D-Transformer: 3D ResNet map tokens + class token through a 4-layer transformer (appearance only)."""
    return _r3d_transformer(model_options(preset, **options), heads or DEFAULT_HEADS)


@register_model("pff", task="layouts", inputs="video+layout", example=lambda: example_batch(), tiny={"preset": "tiny"})
def pff(heads: Mapping[str, int] | None = None, preset: str = "paper", **options: Any) -> PFF:
    """PFF: per-frame 2D-CNN features added to STLT's frame embeddings."""
    o = model_options(preset, **options)
    return PFF(_stlt(o), heads or DEFAULT_HEADS, frame_backbone=o.frame_backbone, frame_weights=o.frame_weights,
               train_frame_backbone=o.train_frame_backbone, freeze_bn=o.freeze_bn)


@register_model("pbf", task="layouts", inputs="video+layout", example=lambda: example_batch(), tiny={"preset": "tiny"})
def pbf(heads: Mapping[str, int] | None = None, preset: str = "paper", **options: Any) -> PBF:
    """PBF: per-box RoIAlign 2D-CNN features added to STLT's object embeddings."""
    o = model_options(preset, **options)
    return PBF(_stlt(o), heads or DEFAULT_HEADS, frame_backbone=o.frame_backbone, frame_weights=o.frame_weights,
               train_frame_backbone=o.train_frame_backbone, freeze_bn=o.freeze_bn)


@register_model("ef", task="layouts", inputs="video+layout", example=lambda: example_batch(), tiny={"preset": "tiny"})
def ef(heads: Mapping[str, int] | None = None, preset: str = "paper", **options: Any) -> EF:
    """EF: the clip's 3D-CNN vector as STLT's first temporal token."""
    o = model_options(preset, **options)
    return EF(_stlt(o, prefix=True), _trunk(o), heads or DEFAULT_HEADS)


@register_model("vatf", task="layouts", inputs="video+layout", example=lambda: example_batch(), tiny={"preset": "tiny"})
def vatf(heads: Mapping[str, int] | None = None, preset: str = "paper", **options: Any) -> VATF:
    """VATF: central-frame box queries decoded against the 3D-CNN feature map."""
    o = model_options(preset, **options)
    return VATF(_trunk(o), heads or DEFAULT_HEADS, hidden=o.hidden,
                num_heads=o.num_heads, layers=o.fusion_layers, dropout=o.dropout, num_categories=o.num_categories,
                use_scores=o.use_scores, frames=o.appearance_frames, size=o.appearance_size)


@register_model("lcf", task="layouts", inputs="video+layout", example=lambda: example_batch(), tiny={"preset": "tiny"})
def lcf(heads: Mapping[str, int] | None = None, preset: str = "paper", **options: Any) -> LCF:
    """LCF: STLT and R3D-Transformer class states concatenated into a fusion head."""
    o = model_options(preset, **options)
    return LCF(_stlt(o), _r3d_transformer(o), heads or DEFAULT_HEADS)


@register_model("caf", task="layouts", inputs="video+layout", example=lambda: example_batch(), tiny={"preset": "tiny"})
def caf(heads: Mapping[str, int] | None = None, preset: str = "paper", **options: Any) -> CAF:
    """CAF: cross-attention fusion layers over STLT and R3D-Transformer tokens."""
    o = model_options(preset, **options)
    return CAF(_stlt(o), _r3d_transformer(o), heads or DEFAULT_HEADS, **_fusion_kwargs(o))


@register_model("cacnf", task="layouts", inputs="video+layout", example=lambda: example_batch(), tiny={"preset": "tiny"})
def cacnf(heads: Mapping[str, int] | None = None, preset: str = "paper", **options: Any) -> CACNF:
    """CACNF: CAF plus per-branch heads; prediction = mean of layout, appearance and fusion logits."""
    o = model_options(preset, **options)
    return CACNF(_stlt(o), _r3d_transformer(o), heads or DEFAULT_HEADS, **_fusion_kwargs(o))


def example_batch(batch_size: int = 2, frames: int = 5, slots: int = 4, *, lengths: list[int] | None = None,
                  rgb_frames: int = 8, size: int = 32, num_categories: int = 4, cls_category: int = 3,
                  extract_type: int = 4, regular_type: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    """A random batch following the task's batch contract (for tests, benchmarks and shape checks).

    ``lengths`` (default: ``frames`` for the first clip, fewer for the others) count the extract frame;
    frames past a clip's length are batch padding (type 0, slot 0 still a class object).
    """
    g = torch.Generator().manual_seed(seed)
    if lengths is None:
        lengths = [max(1, frames - i) for i in range(batch_size)]
    categories = torch.zeros(batch_size, frames, slots, dtype=torch.long)
    boxes = torch.zeros(batch_size, frames, slots, 4)
    scores = torch.zeros(batch_size, frames, slots)
    types = torch.zeros(batch_size, frames, dtype=torch.long)
    pictures = torch.zeros(batch_size, frames, 3, size, size)
    object_ids = [c for c in range(1, num_categories) if c != cls_category]
    for b, length in enumerate(lengths):
        categories[b, :, 0] = cls_category
        boxes[b, :, 0] = torch.tensor([0.0, 0.0, 1.0, 1.0])
        scores[b, :length, 0] = 1.0
        types[b, : length - 1] = regular_type
        types[b, length - 1] = extract_type
        for t in range(length - 1):
            n = int(torch.randint(0, slots, (), generator=g))
            categories[b, t, 1: n + 1] = torch.tensor(object_ids)[torch.randint(len(object_ids), (n,), generator=g)]
            corners = torch.rand(n, 2, 2, generator=g).sort(dim=1).values  # (n, [min, max], [x, y])
            boxes[b, t, 1: n + 1] = corners.reshape(n, 4)  # x1, y1, x2, y2
            scores[b, t, 1: n + 1] = torch.rand(n, generator=g) * 0.5 + 0.5
            pictures[b, t] = torch.rand(3, size, size, generator=g)
    return {"categories": categories, "boxes": boxes, "scores": scores, "frame_types": types,
            "lengths": torch.tensor(lengths), "rgb": torch.rand(batch_size, 3, rgb_frames, size, size, generator=g),
            "frames": pictures, "index": torch.arange(batch_size)}


__all__ = ["PAPER", "PRESETS", "TINY", "example_batch", "model_options"]
