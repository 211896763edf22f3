"""Appearance-only models on the RGB clip ``batch["rgb"]: (B, 3, T, S, S)`` (spec card §3.3).

* :class:`AppearanceTrunk` — any backbone of :mod:`modalbridge.nn.video_backbones` used as a feature-map
  extractor ``(B, 3, T, S, S) -> (B, D, t, h, w)``, with every BatchNorm frozen (affine parameters not
  trained, running statistics fixed: the BN layers stay in eval mode even in ``model.train()``).
  Paper trunk: ``r3d_50_hara`` (46.2 M params; 3x32x112x112 -> 2048x2x4x4).
* :class:`R3D` — trunk -> global average pool -> ``Linear(D, C)`` per head.
* :class:`R3DTransformer` — trunk -> ``Conv3d 1x1x1 (D -> H)`` -> ``t*h*w`` tokens -> learned class
  token and position embedding (zero init) -> 4 post-LN encoder layers (ReLU) -> class state;
  ``Linear(H, C)`` per head. ≈76.2 M params at paper size (33 tokens for 32x112x112 clips).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from modalbridge.nn.heads import MultiHead
from modalbridge.nn.transformers import encoder
from modalbridge.nn.video_backbones import build_backbone

log = logging.getLogger(__name__)


def clip_of(batch: Mapping[str, torch.Tensor] | torch.Tensor) -> torch.Tensor:
    """The RGB clip ``(B, 3, T, S, S)`` of a batch dict (key ``"rgb"``), or the tensor itself."""
    return batch if isinstance(batch, torch.Tensor) else batch["rgb"]


class FrozenBatchNormMixin:
    """``train()`` that keeps every BatchNorm of the module in eval mode (fixed running statistics) once
    :meth:`freeze_batchnorm` was called (at the end of ``__init__``)."""

    bn_frozen = False

    def freeze_batchnorm(self) -> None:
        self.bn_frozen = True
        for m in self.modules():
            if isinstance(m, _BatchNorm):
                m.requires_grad_(False)
        self.train(self.training)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.bn_frozen:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self


class AppearanceTrunk(FrozenBatchNormMixin, nn.Module):
    """A video backbone as feature-map extractor with frozen BatchNorm.

    ``forward(rgb: (B, 3, T, S, S)) -> (B, D, t, h, w)``; ``weights``: optional checkpoint of the
    backbone (torchvision keys or Hara et al.'s 3D-ResNets-PyTorch keys, e.g. ``r3d50_KMS_200ep.pth``).
    ``freeze_bn=False`` trains BatchNorm as usual (for trunks trained from scratch, e.g. in CPU worlds).
    """

    def __init__(self, backbone: str = "r3d_50_hara", weights: str | None = None, freeze_bn: bool = True):
        super().__init__()
        self.backbone = build_backbone(backbone)
        self.out_dim = self.backbone.out_dim
        if weights:
            missing, unexpected = self.backbone.load_pretrained(weights)
            log.info("loaded %s weights from %s (%d missing, %d unexpected keys)", backbone, weights,
                     len(missing), len(unexpected))
        if freeze_bn:
            self.freeze_batchnorm()

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        return self.backbone.forward_map(rgb)

    @torch.no_grad()
    def map_shape(self, frames: int, size: int) -> tuple[int, int, int, int]:
        """``(D, t, h, w)`` of the feature map of a ``3 x frames x size x size`` clip, computed on the meta
        device (no real compute, works for models built on the meta device too)."""
        state = {k: torch.empty_like(v, device="meta") for k, v in [*self.named_parameters(),
                                                                   *self.named_buffers()]}
        x = torch.empty(1, 3, frames, size, size, device="meta")
        try:
            shape = torch.func.functional_call(self, state, (x,)).shape
        except (NotImplementedError, RuntimeError):  # an op without a meta kernel: run it for real
            shape = self(torch.zeros(1, 3, frames, size, size, device=next(self.parameters()).device)).shape
        return tuple(shape[1:])


class R3D(nn.Module):
    """Appearance baseline: ``forward(batch) -> {head: (B, C_head)}``; ``forward_features -> (B, D)``."""

    def __init__(self, heads: Mapping[str, int], *, backbone: str = "r3d_50_hara", weights: str | None = None,
                 freeze_bn: bool = True):
        super().__init__()
        self.trunk = AppearanceTrunk(backbone, weights, freeze_bn)
        self.head = MultiHead(self.trunk.out_dim, dict(heads))

    def forward_features(self, batch: Mapping[str, torch.Tensor] | torch.Tensor) -> torch.Tensor:
        return self.trunk(clip_of(batch)).mean(dim=(2, 3, 4))

    def forward(self, batch: Mapping[str, torch.Tensor] | torch.Tensor) -> dict[str, torch.Tensor]:
        return self.head(self.forward_features(batch))


class R3DTransformer(nn.Module):
    """Appearance branch of LCF/CAF/CACNF: a transformer over the trunk's feature-map cells.

    The position table has ``1 + t*h*w`` rows, ``t*h*w`` computed from ``frames`` x ``size`` at build
    time (``frames=32, size=112`` with R3D-50: ``2*4*4 = 32`` cells -> 33 tokens); other clip sizes are
    rejected at run time. ``heads=None`` builds the branch without classifier.
    """

    def __init__(self, heads: Mapping[str, int] | None = None, *, backbone: str = "r3d_50_hara",
                 weights: str | None = None, hidden: int = 768, num_heads: int = 12, layers: int = 4,
                 dropout: float = 0.1, frames: int = 32, size: int = 112, freeze_bn: bool = True):
        super().__init__()
        self.trunk = AppearanceTrunk(backbone, weights, freeze_bn)
        dim, t, h, w = self.trunk.map_shape(frames, size)
        self.num_tokens = t * h * w
        self.proj = nn.Conv3d(dim, hidden, kernel_size=1)
        self.cls = nn.Parameter(torch.zeros(1, 1, hidden))
        self.positions = nn.Parameter(torch.zeros(1, 1 + self.num_tokens, hidden))
        self.encoder = encoder(hidden, layers, num_heads, dropout=dropout, activation="relu")
        self.head = MultiHead(hidden, dict(heads)) if heads else None

    def forward_tokens(self, batch: Mapping[str, torch.Tensor] | torch.Tensor) -> torch.Tensor:
        """``-> (B, 1 + N, H)``: class state first, then the ``N`` feature-map cells (t, h, w order)."""
        x = self.proj(self.trunk(clip_of(batch))).flatten(2).transpose(1, 2)  # (B, N, H)
        if x.shape[1] != self.num_tokens:
            raise ValueError(f"the clip gives {x.shape[1]} appearance tokens but this model was built for "
                             f"{self.num_tokens}; build it with the clip's frames/size")
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.positions
        return self.encoder(x)

    def forward_features(self, batch: Mapping[str, torch.Tensor] | torch.Tensor) -> torch.Tensor:
        return self.forward_tokens(batch)[:, 0]

    def forward(self, batch: Mapping[str, torch.Tensor] | torch.Tensor) -> dict[str, torch.Tensor]:
        if self.head is None:
            raise RuntimeError("R3DTransformer built without heads: use forward_features/forward_tokens")
        return self.head(self.forward_features(batch))


__all__ = ["R3D", "AppearanceTrunk", "FrozenBatchNormMixin", "R3DTransformer", "clip_of"]
