"""Transformer building blocks shared by the layout and audio-visual tasks.

Everything is ``batch_first`` and post-LN (PyTorch's default: sublayer -> dropout -> residual add ->
LayerNorm), with BERT's LayerNorm epsilon ``1e-12``.

* :func:`encoder` — a stack of ``nn.TransformerEncoderLayer`` without the nested-tensor conversion, so
  padded positions hold ordinary (finite) values in train and eval mode alike.
* :func:`decoder` — the matching ``nn.TransformerDecoder`` stack.
* :func:`causal_mask` — boolean mask where position ``i`` sees positions ``<= i``.
* :class:`ClassificationHead` — ``Linear(H, H) -> GELU -> LayerNorm -> Linear(H, C)``.
* :class:`FusionHead` — the same on the concatenation of two ``H``-d states.
* :class:`CrossModalLayer` / :class:`CrossModalFusion` — two token streams that attend to each other
  (the CAF fusion of the layout task), then to themselves, then through per-stream FFNs.

Masks follow ``nn.MultiheadAttention``: boolean, ``True`` = "may not attend".
"""

from __future__ import annotations

import torch
from torch import nn

from modalbridge.nn.autocast import cpu_bf16_autocast


def encoder(hidden: int, layers: int, heads: int, ffn_mult: int = 4, dropout: float = 0.1,
            activation: str = "gelu", eps: float = 1e-12) -> nn.TransformerEncoder:
    """A post-LN transformer encoder: ``forward(x: (B, N, H), mask=(N, N) | (B*heads, N, N),
    src_key_padding_mask=(B, N)) -> (B, N, H)``.

    ``enable_nested_tensor=False``: with nested tensors the eval-mode fast path drops padded positions
    and returns zeros there, which would make outputs at padded positions differ between modes.
    """
    layer = nn.TransformerEncoderLayer(hidden, heads, dim_feedforward=ffn_mult * hidden, dropout=dropout,
                                       activation=activation, layer_norm_eps=eps, batch_first=True)
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


def decoder(hidden: int, layers: int, heads: int, ffn_mult: int = 4, dropout: float = 0.1,
            activation: str = "gelu", eps: float = 1e-12) -> nn.TransformerDecoder:
    """A post-LN transformer decoder: ``forward(queries: (B, Q, H), memory: (B, N, H),
    tgt_key_padding_mask=(B, Q), memory_key_padding_mask=(B, N)) -> (B, Q, H)``."""
    layer = nn.TransformerDecoderLayer(hidden, heads, dim_feedforward=ffn_mult * hidden, dropout=dropout,
                                       activation=activation, layer_norm_eps=eps, batch_first=True)
    return nn.TransformerDecoder(layer, layers)


def causal_mask(n: int, device: torch.device | str | None = None) -> torch.Tensor:
    """``(n, n)`` bool, ``True`` above the diagonal: position ``i`` attends to positions ``<= i``.

    >>> causal_mask(3).int().tolist()
    [[0, 1, 1], [0, 0, 1], [0, 0, 0]]
    """
    return torch.ones(n, n, dtype=torch.bool, device=device).triu(1)


class ClassificationHead(nn.Module):
    """``Linear(D, H) -> GELU -> LayerNorm -> Linear(H, C)``; ``forward((B, D)) -> (B, C)``.

    ``D = in_dim`` defaults to ``hidden``.
    """

    def __init__(self, hidden: int, classes: int, in_dim: int | None = None, eps: float = 1e-12):
        super().__init__()
        self.dense = nn.Linear(in_dim or hidden, hidden)
        self.act = nn.GELU()
        self.norm = nn.LayerNorm(hidden, eps=eps)
        self.out = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.norm(self.act(self.dense(x))))


class FusionHead(ClassificationHead):
    """:class:`ClassificationHead` over two concatenated states: ``forward((B, 2H)) -> (B, C)``."""

    def __init__(self, hidden: int, classes: int, eps: float = 1e-12):
        super().__init__(hidden, classes, in_dim=2 * hidden, eps=eps)


def _seq_first_layout(x: torch.Tensor) -> torch.Tensor:
    """``(B, N, H)`` with the same values, stored as a contiguous ``(N, B, H)``."""
    return x.transpose(0, 1).contiguous().transpose(0, 1)


class _Residual(nn.Module):
    """``LayerNorm(x + Dropout(f(x, ...)))`` around an attention or feed-forward sublayer."""

    def __init__(self, sublayer: nn.Module, hidden: int, dropout: float, eps: float):
        super().__init__()
        self.sublayer = sublayer
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(hidden, eps=eps)

    def forward(self, x: torch.Tensor, *context, **kwargs) -> torch.Tensor:
        if isinstance(self.sublayer, nn.MultiheadAttention):
            q = kv = x
            if context:
                kv = context[0]
            if x.device.type == "cpu" and cpu_bf16_autocast():
                # batch-first MHA transposes its inputs to (N, B, H); laid out that way in memory, the bf16 input
                # projections are plain matmuls instead of batched ones over a materialised copy of the weight
                q = _seq_first_layout(x)
                kv = q if kv is x else _seq_first_layout(kv)
            y = self.sublayer(q, kv, kv, need_weights=False, **kwargs)[0]
        else:
            y = self.sublayer(x)
        return self.norm(x + self.dropout(y))


def _feed_forward(hidden: int, ffn_mult: int, dropout: float) -> nn.Sequential:
    """``Linear(H, 4H) -> GELU -> Dropout -> Linear(4H, H)`` (the outer dropout is the residual's)."""
    return nn.Sequential(nn.Linear(hidden, ffn_mult * hidden), nn.GELU(), nn.Dropout(dropout),
                         nn.Linear(ffn_mult * hidden, hidden))


class CrossModalLayer(nn.Module):
    """One fusion layer over two token streams ``a: (B, Na, H)`` and ``b: (B, Nb, H)``.

    1. cross-attention: ``a`` queries ``b`` and ``b`` queries ``a`` (both from the inputs of the layer);
    2. self-attention per stream, with that stream's masks;
    3. feed-forward per stream (``H -> 4H -> H``, GELU).

    Every sublayer: MHA/FFN -> dropout -> residual add -> LayerNorm.

    ``reference_compat=True`` reproduces the released CAF checkpoints' structure: ONE cross-attention
    module serves both directions, and stream ``b``'s "feed-forward" is a second self-attention
    sublayer (attention over ``b`` without masks).
    """

    def __init__(self, hidden: int, heads: int, ffn_mult: int = 4, dropout: float = 0.1, eps: float = 1e-12,
                 reference_compat: bool = False):
        super().__init__()

        def attention() -> nn.MultiheadAttention:
            return nn.MultiheadAttention(hidden, heads, dropout=dropout, batch_first=True)

        def wrap(sublayer: nn.Module) -> _Residual:
            return _Residual(sublayer, hidden, dropout, eps)

        self.reference_compat = reference_compat
        cross = attention()
        self.cross_a = wrap(cross)
        self.cross_b = wrap(cross if reference_compat else attention())  # shared: LayerNorms stay separate
        self.self_a = wrap(attention())
        self.self_b = wrap(attention())
        self.ffn_a = wrap(_feed_forward(hidden, ffn_mult, dropout))
        self.ffn_b = wrap(attention() if reference_compat else _feed_forward(hidden, ffn_mult, dropout))

    def forward(self, a: torch.Tensor, b: torch.Tensor, *, a_mask: torch.Tensor | None = None,
                a_padding: torch.Tensor | None = None, b_mask: torch.Tensor | None = None,
                b_padding: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``a: (B, Na, H)``, ``b: (B, Nb, H)``; ``*_mask``: ``(N, N)`` self-attention masks;
        ``*_padding``: ``(B, N)`` key-padding masks (used whenever that stream is attended to).
        Returns the updated ``(a, b)`` with unchanged shapes."""
        a, b = (self.cross_a(a, b, key_padding_mask=b_padding),
                self.cross_b(b, a, key_padding_mask=a_padding))
        a = self.self_a(a, attn_mask=a_mask, key_padding_mask=a_padding)
        b = self.self_b(b, attn_mask=b_mask, key_padding_mask=b_padding)
        return self.ffn_a(a), self.ffn_b(b)


class CrossModalFusion(nn.Module):
    """A stack of :class:`CrossModalLayer`; same ``forward`` signature and shapes."""

    def __init__(self, hidden: int, heads: int, layers: int, ffn_mult: int = 4, dropout: float = 0.1,
                 eps: float = 1e-12, reference_compat: bool = False):
        super().__init__()
        self.layers = nn.ModuleList(CrossModalLayer(hidden, heads, ffn_mult, dropout, eps, reference_compat)
                                    for _ in range(layers))

    def forward(self, a: torch.Tensor, b: torch.Tensor, **masks: torch.Tensor | None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        for layer in self.layers:
            a, b = layer(a, b, **masks)
        return a, b


__all__ = ["ClassificationHead", "CrossModalFusion", "CrossModalLayer", "FusionHead", "causal_mask", "decoder",
           "encoder"]
