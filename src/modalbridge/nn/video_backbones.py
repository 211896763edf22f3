"""Video backbones from torchvision, exposed as feature extractors ``(B, 3, T, H, W) -> (B, D)``.

Every backbone here is a torchvision model with its classification head removed, so a user's
torchvision-format checkpoint (e.g. ``Swin3D_T_Weights.KINETICS400_V1`` saved to disk) loads as is.

=================  =====================================================  ======  =========
name               architecture                                           D       params
=================  =====================================================  ======  =========
``swin3d_t``       Video Swin-T: patch (2,4,4), C=96, depths 2-2-6-2,     768     27.9 M
                   heads 3-6-12-24, window (8,7,7), drop-path 0.2
``swin3d_tiny``    same family, C=32, depths 1-1-2-1, window (4,4,4)      256     1.4 M
                   (for embedded worlds on a CPU)
``r3d_18``         3D ResNet-18 (torchvision ``r3d_18``)                  512     33.2 M
``r3d_50``         3D ResNet-50: torchvision VideoResNet with Bottleneck  2048    46.2 M
                   blocks [3,4,6,3] and the R3D stem (3x7x7 conv)
``r3d_50_hara``    the same with Hara et al.'s stem (7x7x7 conv stride    2048    46.2 M
                   (1,2,2) + 3x3x3 max-pool stride 2): the layout task's
                   appearance trunk; 3x32x112x112 -> 2048x2x4x4 map
``r3d_tiny``       narrow 3D ResNet from torchvision's BasicBlock, one    128     ~0.9 M
                   block per stage, widths 16-32-64-128 (CPU worlds)
``pooled``         no trunk: the clip average-pooled to (C, 8, 4, 4) and  384     768
                   layer-normed — with a linear head, the distillation
                   card's low-capacity teacher (§9.1 a), too small to
                   memorise noisy labels
=================  =====================================================  ======  =========

``VideoBackbone.forward_map`` returns the trunk's last feature map ``(B, D, t, h, w)`` (before pooling)
for every backbone above. ``load_pretrained`` also reads checkpoints of Hara et al.'s
``3D-ResNets-PyTorch`` (e.g. ``r3d50_KMS_200ep.pth``), converting their key names with
:func:`convert_hara_r3d_state_dict`.

Under CPU bf16 autocast (``precision: bf16-mixed``) two layouts change, fp32 runs are untouched: a 3D ResNet
gets its clip channels-last (oneDNN's bf16 convolutions work in NDHWC and otherwise reorder every input and
output), and Swin's window attention keeps its attention logits in bf16 (torchvision adds the fp32
relative-position bias and shift mask to them, which turns every windows x heads x N x N matrix into fp32 and
back) — ``modalbridge bench precision`` measures both.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

import torch
from torch import nn
from torchvision.models.video import resnet as tv_resnet
from torchvision.models.video import swin_transformer as tv_swin

from modalbridge.core.weights import load_state_dict, strip_prefixes
from modalbridge.nn.autocast import cpu_bf16_autocast


class VideoBackbone(nn.Module):
    """Wraps a torchvision video model whose head was replaced by ``nn.Identity``.

    Shapes: ``forward(x: (B, 3, T, H, W)) -> (B, out_dim)``.
    """

    def __init__(self, trunk: nn.Module, out_dim: int, name: str):
        super().__init__()
        self.trunk = trunk
        self.out_dim = out_dim
        self.name = name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(self._input_layout(x))

    def _input_layout(self, x: torch.Tensor) -> torch.Tensor:
        """The clip channels-last for a 3D ResNet under CPU bf16 autocast, else as is."""
        if isinstance(self.trunk, tv_resnet.VideoResNet | _NarrowR3D) and x.device.type == "cpu" \
                and cpu_bf16_autocast():
            return x.contiguous(memory_format=torch.channels_last_3d)
        return x

    def forward_map(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map before global pooling: ``(B, 3, T, H, W) -> (B, out_dim, t, h, w)``."""
        trunk = self.trunk
        x = self._input_layout(x)
        if isinstance(trunk, tv_resnet.VideoResNet):
            x = trunk.stem(x)
            return trunk.layer4(trunk.layer3(trunk.layer2(trunk.layer1(x))))
        if isinstance(trunk, _NarrowR3D):
            return trunk.stages(trunk.stem(x))
        if isinstance(trunk, tv_swin.SwinTransformer3d):
            x = trunk.norm(trunk.features(trunk.pos_drop(trunk.patch_embed(x))))  # (B, t, h, w, D)
            return x.permute(0, 4, 1, 2, 3)
        raise NotImplementedError(f"{self.name}: no feature map for trunk {type(trunk).__name__}")

    def load_pretrained(self, path: str) -> tuple[list[str], list[str]]:
        """Load a torchvision-format (or Hara 3D-ResNets-PyTorch) state dict, head keys ignored;
        returns (missing, unexpected)."""
        sd = strip_prefixes(load_state_dict(path), prefixes=("module.", "_orig_mod.", "backbone.", "trunk."))
        if is_hara_r3d_state_dict(sd):
            sd = convert_hara_r3d_state_dict(sd)
        sd = {k: v for k, v in sd.items() if not k.startswith(("head.", "fc."))}
        result = self.trunk.load_state_dict(sd, strict=False)
        if len(result.missing_keys) == len(self.trunk.state_dict()):
            raise ValueError(
                f"{path}: none of its {len(sd)} tensors match the {self.name} backbone; expected torchvision "
                "key names (e.g. 'features.0.0.weight' for Swin3D, 'layer1.0.conv1.0.weight' for R3D)"
            )
        return list(result.missing_keys), list(result.unexpected_keys)


class _WindowAttention3d(tv_swin.ShiftedWindowAttention3d):
    """torchvision's shifted-window attention (same parameters and state-dict keys); under CPU bf16 autocast
    its input and relative-position bias are cast to bf16, so the shift mask (built from the input's dtype),
    the attention logits and the softmax stay bf16 instead of being promoted to fp32 by the fp32 bias."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type == "cpu" and cpu_bf16_autocast():
            x = x.to(torch.bfloat16)
        return super().forward(x)

    def get_relative_position_bias(self, window_size: list[int]) -> torch.Tensor:
        bias = super().get_relative_position_bias(window_size)
        return bias.to(torch.bfloat16) if bias.device.type == "cpu" and cpu_bf16_autocast() else bias


def _swin_block(*args, attn_layer: Callable | None = None, **kwargs) -> nn.Module:
    """torchvision's Swin block with :class:`_WindowAttention3d` (torchvision passes its own ``attn_layer``)."""
    return tv_swin.SwinTransformerBlock(*args, attn_layer=_WindowAttention3d, **kwargs)


def _swin(embed_dim: int, depths: list[int], heads: list[int], window: list[int], drop_path: float) -> nn.Module:
    model = tv_swin.SwinTransformer3d(
        patch_size=[2, 4, 4], embed_dim=embed_dim, depths=depths, num_heads=heads, window_size=window,
        stochastic_depth_prob=drop_path, num_classes=1,
        block=_swin_block,
    )
    model.head = nn.Identity()
    return model


def swin3d_t(drop_path: float = 0.2) -> VideoBackbone:
    return VideoBackbone(_swin(96, [2, 2, 6, 2], [3, 6, 12, 24], [8, 7, 7], drop_path), 768, "swin3d_t")


def swin3d_tiny(drop_path: float = 0.1, embed_dim: int = 32) -> VideoBackbone:
    return VideoBackbone(_swin(embed_dim, [1, 1, 2, 1], [1, 2, 4, 8], [4, 4, 4], drop_path), embed_dim * 8,
                         "swin3d_tiny")


class _R3DStem(nn.Sequential):
    """3D ResNet stem of Hara et al.: conv 3x7x7 stride (1,2,2), BN, ReLU (torchvision R3D layout)."""

    def __init__(self) -> None:
        super().__init__(
            nn.Conv3d(3, 64, kernel_size=(3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3), bias=False),
            nn.BatchNorm3d(64), nn.ReLU(inplace=True),
        )


class _HaraStem(nn.Sequential):
    """Stem of Hara et al.'s 3D ResNets: conv 7x7x7 stride (1,2,2), BN, ReLU, max-pool 3x3x3 stride 2."""

    def __init__(self) -> None:
        super().__init__(
            nn.Conv3d(3, 64, kernel_size=7, stride=(1, 2, 2), padding=3, bias=False),
            nn.BatchNorm3d(64), nn.ReLU(inplace=True),
            nn.MaxPool3d(kernel_size=3, stride=2, padding=1),
        )


def r3d_18() -> VideoBackbone:
    model = tv_resnet.r3d_18()
    model.fc = nn.Identity()
    return VideoBackbone(model, 512, "r3d_18")


class _NarrowR3D(nn.Module):
    """A narrow 3D ResNet assembled from torchvision's ``BasicBlock``/``Conv3DSimple`` (one block per
    stage, widths ``widths``): the CPU-sized member of the R3D family used by embedded worlds.

    ``forward(x: (B, 3, T, H, W)) -> (B, widths[-1])``.
    """

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64, 128)):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv3d(3, widths[0], kernel_size=(3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3), bias=False),
            nn.BatchNorm3d(widths[0]), nn.ReLU(inplace=True))
        stages, inplanes = [], widths[0]
        for i, width in enumerate(widths):
            stride = 1 if i == 0 else 2
            down = None
            if stride != 1 or inplanes != width:
                down = nn.Sequential(nn.Conv3d(inplanes, width, 1, stride=stride, bias=False), nn.BatchNorm3d(width))
            stages.append(tv_resnet.BasicBlock(inplanes, width, tv_resnet.Conv3DSimple, stride, down))
            inplanes = width
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool3d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.stages(self.stem(x))).flatten(1)


def r3d_tiny(widths: tuple[int, ...] = (16, 32, 64, 128)) -> VideoBackbone:
    return VideoBackbone(_NarrowR3D(tuple(widths)), widths[-1], "r3d_tiny")


def r3d_50() -> VideoBackbone:
    model = tv_resnet.VideoResNet(
        block=tv_resnet.Bottleneck, conv_makers=[tv_resnet.Conv3DSimple] * 4, layers=[3, 4, 6, 3], stem=_R3DStem,
    )
    model.fc = nn.Identity()
    return VideoBackbone(model, 2048, "r3d_50")


def r3d_50_hara() -> VideoBackbone:
    """Hara et al.'s R3D-50 (3D-ResNets-PyTorch, shortcut B): Bottleneck [3,4,6,3], stride on the 3x3x3 conv."""
    model = tv_resnet.VideoResNet(
        block=tv_resnet.Bottleneck, conv_makers=[tv_resnet.Conv3DSimple] * 4, layers=[3, 4, 6, 3], stem=_HaraStem,
    )
    model.fc = nn.Identity()
    return VideoBackbone(model, 2048, "r3d_50_hara")


_HARA_BLOCK_KEY = re.compile(r"^(layer\d+\.\d+)\.(conv|bn)(\d)\.([a-z_]+)$")


def is_hara_r3d_state_dict(sd: Mapping[str, torch.Tensor]) -> bool:
    """True when ``sd`` uses Hara's key names (``conv1.weight``, ``layer1.0.bn1.weight``, ...)."""
    return "conv1.weight" in sd or any(_HARA_BLOCK_KEY.match(k) for k in sd)


def convert_hara_r3d_state_dict(sd: Mapping) -> dict[str, torch.Tensor]:
    """Rename a 3D-ResNets-PyTorch (Hara et al.) ResNet state dict to torchvision ``VideoResNet`` keys.

    ``conv1`` / ``bn1`` -> ``stem.0`` / ``stem.1``; ``layerX.Y.convK`` / ``layerX.Y.bnK`` ->
    ``layerX.Y.convK.0`` / ``layerX.Y.convK.1``; ``downsample.{0,1}`` unchanged; ``fc.*`` dropped.
    Accepts the whole checkpoint (weights under ``state_dict``) and DataParallel's ``module.`` prefix.

    >>> sorted(convert_hara_r3d_state_dict({"module.bn1.bias": 0, "module.layer2.1.conv3.weight": 1,
    ...                                     "module.fc.weight": 2}))
    ['layer2.1.conv3.0.weight', 'stem.1.bias']
    """
    if "state_dict" in sd and isinstance(sd["state_dict"], Mapping):
        sd = sd["state_dict"]
    out: dict[str, torch.Tensor] = {}
    for key, value in strip_prefixes(sd, prefixes=("module.",)).items():
        if key.startswith("fc."):
            continue
        if key.startswith("conv1."):
            key = "stem.0." + key[len("conv1."):]
        elif key.startswith("bn1."):
            key = "stem.1." + key[len("bn1."):]
        elif m := _HARA_BLOCK_KEY.match(key):
            block, kind, k, rest = m.groups()
            key = f"{block}.conv{k}.{0 if kind == 'conv' else 1}.{rest}"
        out[key] = value
    return out


class _PooledClip(nn.Module):
    """``(B, C, T, H, W) -> (B, C·t·g·g)``: adaptive average pooling to ``(t, g, g)``, flatten, LayerNorm."""

    def __init__(self, channels: int, frames: int, grid: int):
        super().__init__()
        self.channels = channels
        self.pool = nn.AdaptiveAvgPool3d((frames, grid, grid))
        self.norm = nn.LayerNorm(channels * frames * grid * grid)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != self.channels:
            raise ValueError(f"pooled backbone built for {self.channels} input channels, got a clip of shape "
                             f"{tuple(x.shape)}; pass channels={x.shape[1]}")
        return self.norm(self.pool(x).flatten(1))


def pooled(frames: int = 8, grid: int = 4, channels: int = 3) -> VideoBackbone:
    """Pooled pixels as features (no learnt trunk): with linear heads, a teacher of low capacity."""
    return VideoBackbone(_PooledClip(channels, frames, grid), channels * frames * grid * grid, "pooled")


BACKBONES: dict[str, Callable[..., VideoBackbone]] = {
    "swin3d_t": swin3d_t,
    "swin3d_tiny": swin3d_tiny,
    "r3d_18": r3d_18,
    "r3d_50": r3d_50,
    "r3d_50_hara": r3d_50_hara,
    "r3d_tiny": r3d_tiny,
    "pooled": pooled,
}


def build_backbone(name: str, **kwargs) -> VideoBackbone:
    """Build a backbone by name (see the table in this module's docstring)."""
    if name not in BACKBONES:
        raise KeyError(f"unknown video backbone {name!r}; known: {', '.join(sorted(BACKBONES))}")
    return BACKBONES[name](**kwargs)


__all__ = ["BACKBONES", "VideoBackbone", "build_backbone", "convert_hara_r3d_state_dict", "is_hara_r3d_state_dict"]
