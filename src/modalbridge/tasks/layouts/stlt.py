"""Layout-only models: STLT (spatial then temporal transformer) and S&TLT (one joint transformer).

Both read the layout part of the batch (see :mod:`modalbridge.tasks.layouts`): ``categories (B, T, M)``,
``boxes (B, T, M, 4)``, ``scores (B, T, M)`` (only with ``use_scores``), ``frame_types (B, T)`` and
``lengths (B,)``. Slot 0 of every frame is the frame's class object; the last real frame (index
``lengths - 1``) is the "extract" frame whose temporal state classifies the clip.

Sizes of the paper (spec card §3.1): ``hidden=768``, 12 heads, 4 spatial + 8 temporal layers, dropout
0.1 — 85.3 M backbone parameters, plus 0.73 M for a 174-way :class:`ClassificationHead`.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from modalbridge.nn.transformers import ClassificationHead, causal_mask, encoder

Batch = Mapping[str, torch.Tensor]


class LayoutEmbedding(nn.Module):
    """Objects to vectors: ``Emb(category) + Linear(4, H)(box) [+ Linear(1, H)(score)] [+ extra]``, then
    LayerNorm and Dropout. Category 0 is padding (a zero row).

    ``forward(categories: (..., M), boxes: (..., M, 4), scores: (..., M) | None = None,
    extra: (..., M, H) | None = None) -> (..., M, H)``; ``extra`` is added before the LayerNorm (PBF's
    RoI features, S&TLT's frame positions, VATF's query features).
    """

    def __init__(self, hidden: int, num_categories: int, use_scores: bool = False, dropout: float = 0.1,
                 eps: float = 1e-12):
        super().__init__()
        self.category = nn.Embedding(num_categories, hidden, padding_idx=0)
        self.box = nn.Linear(4, hidden)
        self.score = nn.Linear(1, hidden) if use_scores else None
        self.norm = nn.LayerNorm(hidden, eps=eps)
        self.dropout = nn.Dropout(dropout)

    def forward(self, categories: torch.Tensor, boxes: torch.Tensor, scores: torch.Tensor | None = None,
                extra: torch.Tensor | None = None) -> torch.Tensor:
        x = self.category(categories) + self.box(boxes)
        if self.score is not None:
            if scores is None:
                raise KeyError("this model embeds detector scores (use_scores=True): the batch needs 'scores'")
            x = x + self.score(scores.unsqueeze(-1).to(x.dtype))
        if extra is not None:
            x = x + extra
        return self.dropout(self.norm(x))


def last_state(states: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``states[b, index[b]]``: ``(B, T, H), (B,) -> (B, H)``."""
    return states[torch.arange(states.shape[0], device=states.device), index]


def real_frames(batch: Batch) -> torch.Tensor:
    """``(B, T)`` bool: the sampled layout frames, i.e. neither the extract frame nor batch padding."""
    t = torch.arange(batch["frame_types"].shape[1], device=batch["frame_types"].device)
    return t[None, :] < (batch["lengths"] - 1)[:, None]


class STLT(nn.Module):
    """Spatio-Temporal Layout Transformer.

    * Spatial: every frame's ``M`` objects are embedded (:class:`LayoutEmbedding`) and encoded
      independently (pad objects masked); the state of slot 0 is the frame vector ``s_i``.
    * Frame embedding: ``LayerNorm(s_i + P[i] + F[type_i] [+ frame_extra_i])`` -> Dropout, with a learned
      position table ``P`` (``max_frames`` rows, index = position in the padded sequence) and a
      frame-type table ``F`` (row 0 = padding).
    * Temporal: a causal encoder over the frames (frame padding masked); the clip state is the output at
      index ``lengths - 1`` (the extract frame, which sees every sampled frame).

    ``heads`` (e.g. ``{"action": 174}``) adds one :class:`ClassificationHead` each; fusion models build
    STLT without heads and use :meth:`forward_tokens` / :meth:`forward_features`.

    ``prefix_type``: frame-type id of an optional extra first temporal token (EF's clip appearance
    vector, passed as ``prefix``); frames then take positions ``1..T``.
    """

    def __init__(self, heads: Mapping[str, int] | None = None, *, hidden: int = 768, num_heads: int = 12,
                 spatial_layers: int = 4, temporal_layers: int = 8, dropout: float = 0.1, num_categories: int = 4,
                 num_frame_types: int = 5, use_scores: bool = False, max_frames: int = 256,
                 prefix_type: int | None = None):
        super().__init__()
        self.hidden = hidden
        self.prefix_type = prefix_type
        self.objects = LayoutEmbedding(hidden, num_categories, use_scores, dropout)
        self.spatial = encoder(hidden, spatial_layers, num_heads, dropout=dropout)
        self.positions = nn.Embedding(max_frames, hidden)
        self.frame_types = nn.Embedding(num_frame_types, hidden, padding_idx=0)
        self.frame_norm = nn.LayerNorm(hidden, eps=1e-12)
        self.frame_dropout = nn.Dropout(dropout)
        self.temporal = encoder(hidden, temporal_layers, num_heads, dropout=dropout)
        self.heads = nn.ModuleDict({name: ClassificationHead(hidden, n) for name, n in (heads or {}).items()})

    def frame_vectors(self, batch: Batch, object_extra: torch.Tensor | None = None) -> torch.Tensor:
        """Spatial transformer: ``-> (B, T, H)``, the class-object state of every frame."""
        categories = batch["categories"]
        b, t, m = categories.shape
        scores = batch.get("scores") if self.objects.score is not None else None
        x = self.objects(categories, batch["boxes"], scores, object_extra).reshape(b * t, m, self.hidden)
        padding = (categories == 0).reshape(b * t, m)
        padding[:, 0] = False  # the class object is always attended to: no attention row is empty
        return self.spatial(x, src_key_padding_mask=padding)[:, 0].reshape(b, t, self.hidden)

    def forward_tokens(self, batch: Batch, *, object_extra: torch.Tensor | None = None,
                       frame_extra: torch.Tensor | None = None, prefix: torch.Tensor | None = None
                       ) -> torch.Tensor:
        """Temporal states ``(B, T, H)`` (``(B, 1 + T, H)`` with a ``prefix``).

        ``object_extra: (B, T, M, H)`` is added to the object embeddings, ``frame_extra: (B, T, H)`` to
        the frame embeddings, ``prefix: (B, H)`` becomes the first temporal token.
        """
        x, mask, padding = self.temporal_inputs(batch, object_extra=object_extra, frame_extra=frame_extra,
                                                prefix=prefix)
        return self.temporal(x, mask=mask, src_key_padding_mask=padding)

    def temporal_inputs(self, batch: Batch, *, object_extra: torch.Tensor | None = None,
                        frame_extra: torch.Tensor | None = None, prefix: torch.Tensor | None = None
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Frame embeddings ``(B, T', H)``, the causal mask ``(T', T')`` and the padding mask ``(B, T')`` that
        the temporal encoder takes (``T' = T`` or ``1 + T`` with a prefix token)."""
        types = batch["frame_types"]
        x = self.frame_vectors(batch, object_extra)
        if frame_extra is not None:
            x = x + frame_extra
        padding = types == 0
        if prefix is not None:
            if self.prefix_type is None:
                raise ValueError("this STLT was built without prefix_type, so it takes no prefix token")
            x = torch.cat([prefix[:, None], x], dim=1)
            types = torch.cat([torch.full_like(types[:, :1], self.prefix_type), types], dim=1)
            padding = torch.cat([torch.zeros_like(padding[:, :1]), padding], dim=1)
        n = x.shape[1]
        positions = torch.arange(n, device=x.device)
        x = self.frame_dropout(self.frame_norm(x + self.positions(positions)[None] + self.frame_types(types)))
        return x, causal_mask(n, x.device), padding

    @torch.no_grad()
    def temporal_attention(self, batch: Batch) -> torch.Tensor:
        """``(B, T)``: how the extract frame attends over the frames in the last temporal layer (mean over
        heads; each row sums to 1, zero on batch padding) — the picture's "which frames mattered"."""
        x, mask, padding = self.temporal_inputs(batch)
        layers = self.temporal.layers
        for layer in layers[:-1]:
            x = layer(x, src_mask=mask, src_key_padding_mask=padding)
        _, weights = layers[-1].self_attn(x, x, x, attn_mask=mask, key_padding_mask=padding, need_weights=True,
                                          average_attn_weights=True)
        return last_state(weights, batch["lengths"] - 1)

    def forward_features(self, batch: Batch, **extras: torch.Tensor | None) -> torch.Tensor:
        """Clip state ``(B, H)``: the temporal state of the extract frame."""
        states = self.forward_tokens(batch, **extras)
        offset = states.shape[1] - batch["frame_types"].shape[1]  # 1 with a prefix token
        return last_state(states, batch["lengths"] - 1 + offset)

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        """``-> {head: logits (B, C_head)}``."""
        features = self.forward_features(batch)
        return {name: head(features) for name, head in self.heads.items()}


class STLTJoint(nn.Module):
    """S&TLT: one transformer over all objects of all sampled frames (spec card §3.2).

    Tokens: every real object of every sampled frame (the per-frame class objects and the extract frame
    are dropped), embedded as ``LayerNorm(Emb(category) + Linear(box) [+ score] + P[frame index])``, plus
    one learned class token appended at the end. Attention: an object of frame ``i`` sees every object of
    frames ``<= i``; the class token sees every object; padded objects are never attended to (each
    token also sees itself, so no attention row is empty). The class token's output is the clip state.

    Complexity ``O(n^2 m^2)`` for ``n`` frames of ``m`` objects (STLT: ``O(n m^2 + n^2)``).
    """

    def __init__(self, heads: Mapping[str, int] | None = None, *, hidden: int = 768, num_heads: int = 12,
                 layers: int = 12, dropout: float = 0.1, num_categories: int = 4, use_scores: bool = False,
                 max_frames: int = 256):
        super().__init__()
        self.hidden = hidden
        self.num_heads = num_heads
        self.objects = LayoutEmbedding(hidden, num_categories, use_scores, dropout)
        self.positions = nn.Embedding(max_frames, hidden)
        self.cls = nn.Parameter(torch.empty(hidden).normal_(std=0.02))
        self.encoder = encoder(hidden, layers, num_heads, dropout=dropout)
        self.heads = nn.ModuleDict({name: ClassificationHead(hidden, n) for name, n in (heads or {}).items()})

    @staticmethod
    def attention_mask(frame: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """``frame, real: (B, N)`` (frame index and realness of every object token) ->
        ``(B, N + 1, N + 1)`` bool, ``True`` = blocked, for the object tokens followed by the class token."""
        b, n = frame.shape
        allowed = torch.zeros(b, n + 1, n + 1, dtype=torch.bool, device=frame.device)
        allowed[:, :n, :n] = (frame[:, None, :] <= frame[:, :, None]) & real[:, None, :]
        allowed[:, n, :n] = real
        allowed |= torch.eye(n + 1, dtype=torch.bool, device=frame.device)
        return ~allowed

    def forward_tokens(self, batch: Batch) -> torch.Tensor:
        """``-> (B, N + 1, H)`` with ``N = T * (M - 1)`` object tokens then the class token."""
        categories = batch["categories"][:, :, 1:]
        b, t, m = categories.shape
        frame = torch.arange(t, device=categories.device)[None, :, None].expand(b, t, m)
        real = (categories != 0) & real_frames(batch)[:, :, None]
        scores = batch.get("scores") if self.objects.score is not None else None
        scores = scores[:, :, 1:] if scores is not None else None
        x = self.objects(categories, batch["boxes"][:, :, 1:], scores, self.positions(frame))
        x = torch.cat([x.reshape(b, t * m, self.hidden), self.cls.expand(b, 1, -1)], dim=1)
        mask = self.attention_mask(frame.reshape(b, t * m), real.reshape(b, t * m))
        return self.encoder(x, mask=mask.repeat_interleave(self.num_heads, dim=0))

    def forward_features(self, batch: Batch) -> torch.Tensor:
        """Clip state ``(B, H)``: the class token's output."""
        return self.forward_tokens(batch)[:, -1]

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        features = self.forward_features(batch)
        return {name: head(features) for name, head in self.heads.items()}


__all__ = ["STLT", "LayoutEmbedding", "STLTJoint", "last_state", "real_frames"]
