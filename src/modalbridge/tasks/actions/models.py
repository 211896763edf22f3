"""Video classifiers: a torchvision video backbone + one linear head per label space.

Registered models (``modalbridge.core.registry``):

* ``video_classifier`` — generic: ``backbone=`` any name of :mod:`modalbridge.nn.video_backbones`.
* ``swin3d_t`` / ``swin3d_tiny`` / ``r3d_18`` / ``r3d_50`` / ``r3d_tiny`` / ``pooled`` — the same with that
  backbone fixed (``pooled``: linear heads on the pooled clip, a low-capacity teacher).

Builders take ``heads`` (e.g. ``{"verb": 97, "noun": 300}``), optional ``weights`` (a path to a
torchvision-format checkpoint of the backbone, e.g. Kinetics-400) and backbone keyword arguments.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from modalbridge.core.registry import register_model
from modalbridge.nn.heads import MultiHead
from modalbridge.nn.video_backbones import build_backbone

log = logging.getLogger(__name__)


class VideoClassifier(nn.Module):
    """``forward(video: (B, 3, T, H, W)) -> {head: logits (B, C_head)}``.

    ``forward_features`` returns the pooled backbone features ``(B, D)`` (used e.g. by LanViKD's
    regression head).
    """

    def __init__(self, backbone: str, heads: dict[str, int], *, weights: str | None = None,
                 head_dropout: float = 0.0, **backbone_kwargs):
        super().__init__()
        self.backbone = build_backbone(backbone, **backbone_kwargs)
        if weights:
            missing, unexpected = self.backbone.load_pretrained(weights)
            log.info("loaded %s backbone weights from %s (%d missing, %d unexpected keys)",
                     backbone, weights, len(missing), len(unexpected))
        self.head = MultiHead(self.backbone.out_dim, dict(heads), dropout=head_dropout)

    @property
    def feature_dim(self) -> int:
        return self.backbone.out_dim

    def forward_features(self, video: torch.Tensor) -> torch.Tensor:
        return self.backbone(video)

    def forward(self, video: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.head(self.forward_features(video))


@register_model("video_classifier", task="actions")
def video_classifier(backbone: str = "swin3d_t", heads: dict[str, int] | None = None, **kwargs) -> VideoClassifier:
    """Any video backbone + linear heads."""
    return VideoClassifier(backbone, heads or {"action": 174}, **kwargs)


def _fixed(backbone: str):
    def builder(heads: dict[str, int] | None = None, **kwargs) -> VideoClassifier:
        return VideoClassifier(backbone, heads or {"action": 174}, **kwargs)

    builder.__doc__ = f"{backbone} video backbone + linear heads."
    return builder


for _name in ("swin3d_t", "swin3d_tiny", "r3d_18", "r3d_50", "r3d_tiny", "pooled"):
    register_model(_name, task="actions")(_fixed(_name))
