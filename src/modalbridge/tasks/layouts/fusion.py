"""Fusions of layouts and appearance (spec card §3.4-3.5, thesis Table 6.1).

One-branch fusions inject appearance into STLT (or layouts into an appearance model):

* :class:`PFF` — per-frame 2D-CNN features of ``batch["frames"]`` added to STLT's frame embeddings.
* :class:`PBF` — RoIAlign features of every box (2D CNN map of its frame) added to the object embeddings.
* :class:`EF` — the clip's 3D-CNN vector as the first temporal token of STLT.
* :class:`VATF` — box queries (RoIAlign on the time-averaged 3D-CNN map) decoded against the map.

Two-branch fusions run STLT and :class:`~.appearance.R3DTransformer` side by side:

* :class:`LCF` — late concatenation of the two class states -> :class:`FusionHead`.
* :class:`CAF` — cross-attention fusion layers over both token sequences -> :class:`FusionHead`.
* :class:`CACNF` — CAF plus a classifier per branch; output ``h`` is the mean of the three logits.

Every model maps the batch dict to ``{head: logits (B, C)}`` (CACNF adds ``{head}_layout``,
``{head}_appearance`` and ``{head}_fusion``). RGB frames at the layout frames, ``batch["frames"]:
(B, T, 3, S, S)``, are only read for the sampled layout frames (not the extract frame or padding).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import torch
import torchvision
from torch import nn
from torchvision.ops import roi_align

from modalbridge.core.weights import load_state_dict
from modalbridge.nn.transformers import ClassificationHead, CrossModalFusion, FusionHead, causal_mask, decoder
from modalbridge.tasks.layouts.appearance import (
    AppearanceTrunk,
    FrozenBatchNormMixin,
    R3DTransformer,
    clip_of,
)
from modalbridge.tasks.layouts.stlt import STLT, LayoutEmbedding, last_state, real_frames

log = logging.getLogger(__name__)

Batch = Mapping[str, torch.Tensor]


def _heads(make, heads: Mapping[str, int]) -> nn.ModuleDict:
    if not heads:
        raise ValueError("at least one head is required, e.g. {'action': 174}")
    return nn.ModuleDict({name: make(n) for name, n in heads.items()})


class FrameBackbone(FrozenBatchNormMixin, nn.Module):
    """A 2D CNN over single frames: ``forward((N, 3, S, S)) -> (N, D, h, w)`` (last feature map).

    ``name``: a torchvision ResNet (``"resnet18"`` ... ``"resnet152"``, the paper's PFF uses ResNet-152
    ImageNet features) or ``"tiny"`` (four strided 3x3 conv-BN-ReLU blocks, 16-32-64-64 channels, for CPU
    worlds). ``weights``: a torchvision-format checkpoint (``fc.*`` ignored). The weights are trained only
    with ``trainable=True`` (the paper used precomputed, i.e. frozen, features); BatchNorm is frozen
    unless ``freeze_bn=False`` and ``trainable=True``.
    """

    def __init__(self, name: str = "resnet152", weights: str | None = None, trainable: bool = False,
                 freeze_bn: bool = True):
        super().__init__()
        self.name = name
        if name == "tiny":
            layers, cin = [], 3
            for cout in (16, 32, 64, 64):
                layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout),
                           nn.ReLU(inplace=True)]
                cin = cout
            self.net, self.out_dim = nn.Sequential(*layers), cin
        elif name.startswith("resnet") and hasattr(torchvision.models, name):
            self.net = getattr(torchvision.models, name)(weights=None)
            self.out_dim = self.net.fc.in_features
            self.net.fc = nn.Identity()
        else:
            raise KeyError(f"unknown frame backbone {name!r}; use a torchvision resnet name or 'tiny'")
        if weights:
            sd = {k: v for k, v in load_state_dict(weights).items() if not k.startswith("fc.")}
            missing, unexpected = self.net.load_state_dict(sd, strict=False)
            log.info("loaded %s weights from %s (%d missing, %d unexpected keys)", name, weights,
                     len(missing), len(unexpected))
        self.net.requires_grad_(trainable)
        if freeze_bn or not trainable:
            self.freeze_batchnorm()

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        net = self.net
        if self.name == "tiny":
            return net(frames)
        x = net.maxpool(net.relu(net.bn1(net.conv1(frames))))
        return net.layer4(net.layer3(net.layer2(net.layer1(x))))


def roi_features(fmap: torch.Tensor, boxes: torch.Tensor, output_size: int = 7) -> torch.Tensor:
    """Mean-pooled RoIAlign features: ``fmap: (N, D, h, w)``, normalised ``boxes: (N, K, 4)`` ->
    ``(N, K, D)`` (boxes are scaled to the map's size; ``aligned=True``)."""
    n, k = boxes.shape[:2]
    h, w = fmap.shape[-2:]
    scale = boxes.new_tensor([w, h, w, h])
    index = torch.arange(n, device=boxes.device, dtype=boxes.dtype).repeat_interleave(k)[:, None]
    rois = torch.cat([index, (boxes * scale).reshape(n * k, 4)], dim=1).to(fmap.dtype)
    pooled = roi_align(fmap, rois, output_size, spatial_scale=1.0, sampling_ratio=2, aligned=True)
    return pooled.mean(dim=(2, 3)).reshape(n, k, -1)


class _FrameFusion(nn.Module):
    """Shared part of PFF/PBF: STLT + a 2D CNN run on the sampled layout frames only."""

    def __init__(self, layout: STLT, heads: Mapping[str, int], frame_backbone: str, frame_weights: str | None,
                 train_frame_backbone: bool, freeze_bn: bool):
        super().__init__()
        self.layout = layout
        self.frames = FrameBackbone(frame_backbone, frame_weights, train_frame_backbone, freeze_bn)
        self.proj = nn.Linear(self.frames.out_dim, layout.hidden)
        self.heads = _heads(lambda n: ClassificationHead(layout.hidden, n), heads)

    def _frame_maps(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """``-> (real (B, T) bool, maps (K, D, h, w))`` for the ``K`` sampled layout frames."""
        real = real_frames(batch)
        return real, self.frames(batch["frames"][real])

    def _extras(self, batch: Batch) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        features = self.layout.forward_features(batch, **self._extras(batch))
        return {name: head(features) for name, head in self.heads.items()}


class PFF(_FrameFusion):
    """Per-frame fusion: ``t_i = Dropout(LN(s_i + P[i] + F[type_i] + Linear(D, H)(GAP(CNN(frame_i)))))``;
    the extract frame and padding get no appearance term."""

    def __init__(self, layout: STLT, heads: Mapping[str, int], *, frame_backbone: str = "resnet152",
                 frame_weights: str | None = None, train_frame_backbone: bool = False, freeze_bn: bool = True):
        super().__init__(layout, heads, frame_backbone, frame_weights, train_frame_backbone, freeze_bn)

    def _extras(self, batch: Batch) -> dict[str, torch.Tensor]:
        real, maps = self._frame_maps(batch)
        feats = self.proj(maps.mean(dim=(2, 3)))  # (K, H)
        extra = feats.new_zeros(*real.shape, feats.shape[-1])
        extra[real] = feats
        return {"frame_extra": extra}


class PBF(_FrameFusion):
    """Per-box fusion: ``o_j = Dropout(LN(Emb(c_j) + Linear(box_j) + Linear(D, H)(RoIAlign_j)))``; the class
    object's box is the whole frame, so it gets the whole-frame feature. RoIAlign 7x7 on the 2D CNN's
    last map, mean-pooled; pad objects, the extract frame and padding frames get no appearance term."""

    def __init__(self, layout: STLT, heads: Mapping[str, int], *, frame_backbone: str = "resnet152",
                 frame_weights: str | None = None, train_frame_backbone: bool = False, freeze_bn: bool = True,
                 roi_size: int = 7):
        super().__init__(layout, heads, frame_backbone, frame_weights, train_frame_backbone, freeze_bn)
        self.roi_size = roi_size

    def _extras(self, batch: Batch) -> dict[str, torch.Tensor]:
        real, maps = self._frame_maps(batch)
        feats = self.proj(roi_features(maps, batch["boxes"][real], self.roi_size))  # (K, M, H)
        feats = feats * (batch["categories"][real] != 0)[..., None]
        extra = feats.new_zeros(*batch["categories"].shape, feats.shape[-1])
        extra[real] = feats
        return {"object_extra": extra}


class EF(nn.Module):
    """Early fusion: ``Linear(D, H)(mean_{t,h,w} trunk(rgb))`` is STLT's first temporal token (own frame
    type, position 0; frames shifted by one), seen by every frame through the causal mask."""

    def __init__(self, layout: STLT, trunk: AppearanceTrunk, heads: Mapping[str, int]):
        super().__init__()
        if layout.prefix_type is None:
            raise ValueError("EF needs an STLT built with prefix_type (a frame-type id for the video token)")
        self.layout = layout
        self.trunk = trunk
        self.proj = nn.Linear(trunk.out_dim, layout.hidden)
        self.heads = _heads(lambda n: ClassificationHead(layout.hidden, n), heads)

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        video = self.proj(self.trunk(clip_of(batch)).mean(dim=(2, 3, 4)))
        features = self.layout.forward_features(batch, prefix=video)
        return {name: head(features) for name, head in self.heads.items()}


class VATF(nn.Module):
    """Video-Action-Transformer-style fusion.

    Memory: the trunk's map averaged over time, ``(B, D, h, w) -> (B, h*w, H)`` (linear projection plus a
    learned position table sized at build time from ``frames`` x ``size``). Queries: the objects of the
    temporally central sampled layout frame (index ``n // 2`` of ``n = lengths - 1``), slot 0 being the
    whole frame, embedded as ``LN(Emb(c) + Linear(box) + Linear(D, H)(RoIAlign 7x7 mean))``. A
    transformer decoder (self-attention over queries, cross-attention to the memory, FFN); the
    classifier reads the whole-frame query.
    """

    def __init__(self, trunk: AppearanceTrunk, heads: Mapping[str, int], *, hidden: int = 768,
                 num_heads: int = 12, layers: int = 4, dropout: float = 0.1, num_categories: int = 4,
                 use_scores: bool = False, frames: int = 32, size: int = 112, roi_size: int = 7):
        super().__init__()
        self.trunk = trunk
        self.roi_size = roi_size
        _, _, h, w = trunk.map_shape(frames, size)
        self.memory_proj = nn.Linear(trunk.out_dim, hidden)
        self.memory_positions = nn.Parameter(torch.zeros(1, h * w, hidden))
        self.roi_proj = nn.Linear(trunk.out_dim, hidden)
        self.queries = LayoutEmbedding(hidden, num_categories, use_scores, dropout)
        self.decoder = decoder(hidden, layers, num_heads, dropout=dropout)
        self.heads = _heads(lambda n: ClassificationHead(hidden, n), heads)

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        fmap = self.trunk(clip_of(batch)).mean(dim=2)  # (B, D, h, w)
        memory = self.memory_proj(fmap.flatten(2).transpose(1, 2))
        if memory.shape[1] != self.memory_positions.shape[1]:
            raise ValueError(f"the clip gives a {tuple(fmap.shape[-2:])} map but this model was built for "
                             f"{self.memory_positions.shape[1]} cells; build it with the clip's frames/size")
        memory = memory + self.memory_positions
        rows = torch.arange(fmap.shape[0], device=fmap.device)
        central = (batch["lengths"] - 1) // 2
        categories, boxes = batch["categories"][rows, central], batch["boxes"][rows, central]  # (B, M), (B, M, 4)
        scores = batch["scores"][rows, central] if self.queries.score is not None else None
        rois = self.roi_proj(roi_features(fmap, boxes, self.roi_size))
        queries = self.queries(categories, boxes, scores, rois)
        padding = categories == 0
        padding[:, 0] = False
        out = self.decoder(queries, memory, tgt_key_padding_mask=padding)
        return {name: head(out[:, 0]) for name, head in self.heads.items()}


class LCF(nn.Module):
    """Late concatenation fusion: ``FusionHead([STLT clip state ‖ R3D-Transformer class state])``."""

    def __init__(self, layout: STLT, appearance: R3DTransformer, heads: Mapping[str, int]):
        super().__init__()
        self.layout = layout
        self.appearance = appearance
        self.heads = _heads(lambda n: FusionHead(layout.hidden, n), heads)

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        features = torch.cat([self.layout.forward_features(batch), self.appearance.forward_features(batch)], -1)
        return {name: head(features) for name, head in self.heads.items()}


class CAF(nn.Module):
    """Cross-attention fusion: STLT temporal states ``(B, T, H)`` and R3D-Transformer tokens
    ``(B, 1 + N, H)`` -> :class:`CrossModalFusion` (layout self-attention causal with the frame padding
    mask; the appearance tokens attend to the layout tokens with that padding mask) ->
    ``FusionHead([layout state at lengths - 1 ‖ appearance state at 0])``.

    ``reference_compat=True`` builds the released checkpoints' fusion layers (shared cross-attention,
    self-attention instead of the appearance FFN).
    """

    def __init__(self, layout: STLT, appearance: R3DTransformer, heads: Mapping[str, int], *, num_heads: int = 12,
                 layers: int = 4, dropout: float = 0.1, reference_compat: bool = False):
        super().__init__()
        self.layout = layout
        self.appearance = appearance
        self.fusion = CrossModalFusion(layout.hidden, num_heads, layers, dropout=dropout,
                                       reference_compat=reference_compat)
        self.heads = _heads(lambda n: FusionHead(layout.hidden, n), heads)

    def branch_tokens(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """``-> (layout (B, T, H), appearance (B, 1 + N, H))`` before fusion."""
        return self.layout.forward_tokens(batch), self.appearance.forward_tokens(batch)

    def fused_features(self, batch: Batch, layout: torch.Tensor, appearance: torch.Tensor) -> torch.Tensor:
        """``-> (B, 2H)``: fused layout state at ``lengths - 1`` ‖ fused appearance class state."""
        padding = batch["frame_types"] == 0
        layout, appearance = self.fusion(layout, appearance, a_mask=causal_mask(layout.shape[1], layout.device),
                                         a_padding=padding)
        return torch.cat([last_state(layout, batch["lengths"] - 1), appearance[:, 0]], dim=-1)

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        features = self.fused_features(batch, *self.branch_tokens(batch))
        return {name: head(features) for name, head in self.heads.items()}


class CACNF(CAF):
    """CAF plus CentralNet-style branch classifiers (:class:`ClassificationHead` on the STLT clip state and
    on the appearance class state, before fusion).

    Outputs per head ``h``: ``h_layout``, ``h_appearance``, ``h_fusion`` and ``h`` = their mean (the
    ensemble used for prediction).
    """

    def __init__(self, layout: STLT, appearance: R3DTransformer, heads: Mapping[str, int], **kwargs):
        super().__init__(layout, appearance, heads, **kwargs)
        self.layout_heads = _heads(lambda n: ClassificationHead(layout.hidden, n), heads)
        self.appearance_heads = _heads(lambda n: ClassificationHead(layout.hidden, n), heads)

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        layout, appearance = self.branch_tokens(batch)
        fused = self.fused_features(batch, layout, appearance)
        layout_state, appearance_state = last_state(layout, batch["lengths"] - 1), appearance[:, 0]
        out: dict[str, torch.Tensor] = {}
        for name in self.heads:
            parts = {"layout": self.layout_heads[name](layout_state),
                     "appearance": self.appearance_heads[name](appearance_state),
                     "fusion": self.heads[name](fused)}
            out[name] = torch.stack(list(parts.values())).mean(dim=0)
            out.update({f"{name}_{kind}": logits for kind, logits in parts.items()})
        return out


__all__ = ["CACNF", "CAF", "EF", "LCF", "PBF", "PFF", "VATF", "FrameBackbone", "roi_features"]
