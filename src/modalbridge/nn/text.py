"""Sentence encoder over a pretrained transformer (default: all-MiniLM-L6-v2, 384-d).

Used as a frozen language teacher (LanViKD regresses video features onto narration embeddings) and
as the text side of tasks that need a sentence vector. Weights come from
:func:`modalbridge.core.weights.resolve_weights` and are loaded with ``local_files_only=True``:
nothing is downloaded here.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from modalbridge.core.weights import resolve_weights
from modalbridge.nn.bert import masked_mean

__all__ = ["TextEncoder"]

POOLINGS = ("mean", "cls")


def _load_pretrained(path):
    """``(tokenizer, model)`` from a local Hugging Face folder, without transformers' progress bar."""
    try:
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging
    except ImportError as e:  # pragma: no cover - transformers is a core dependency
        raise ImportError("TextEncoder needs transformers: pip install transformers tokenizers") from e
    bar_was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModel.from_pretrained(path, local_files_only=True)
    finally:
        if bar_was_on:
            hf_logging.enable_progress_bar()
    return tokenizer, model


class TextEncoder(nn.Module):
    """Encode sentences into fixed-size vectors with a pretrained transformer and pooling.

    Args:
        weights: anything :func:`~modalbridge.core.weights.resolve_weights` accepts (an alias such as
            ``"minilm-l6"``, a local folder, a cached name).
        pooling: ``"mean"`` (average of the last hidden states over real tokens, as sentence-transformers
            does for MiniLM) or ``"cls"`` (the first token's state).
        max_length: sentences are truncated to this many tokens (special tokens included).
        frozen: eval mode that survives ``.train()``, no gradients, and a cache in :meth:`encode`.
        normalize: L2-normalise the output vectors.
        cache_size: most sentences kept by :meth:`encode`'s cache (least recently used are evicted).

    Attributes:
        dim: output size (``hidden_size`` of the model; 384 for MiniLM).
        cache_hits, cache_misses: counters of :meth:`encode`'s cache.

    >>> enc = TextEncoder()                                    # doctest: +SKIP
    >>> enc(["cut onion", "open the fridge"]).shape             # doctest: +SKIP
    torch.Size([2, 384])
    """

    def __init__(self, weights: str = "minilm-l6", *, pooling: str = "mean", max_length: int = 64,
                 frozen: bool = True, normalize: bool = False, cache_size: int = 100_000):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if max_length < 2:
            raise ValueError(f"max_length must be >= 2 (room for the special tokens), got {max_length}")
        self.weights_path = resolve_weights(weights)
        self.tokenizer, self.model = _load_pretrained(self.weights_path)
        self.dim: int = int(self.model.config.hidden_size)
        self.pooling, self.max_length, self.normalize = pooling, max_length, normalize
        self.frozen, self.cache_size = frozen, cache_size
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self.cache_hits = self.cache_misses = 0
        if frozen:
            self.model.requires_grad_(False)
        self.train(False)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def train(self, mode: bool = True) -> TextEncoder:
        """Switch train/eval mode; a frozen encoder always stays in eval mode (no dropout)."""
        return super().train(mode and not self.frozen)

    def _embed(self, texts: list[str]) -> torch.Tensor:
        """``B`` strings -> ``(B, dim)`` pooled embeddings (gradients follow the caller's mode)."""
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                               return_tensors="pt").to(self.device)
        hidden = self.model(**batch).last_hidden_state  # (B, T, dim)
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            pooled = masked_mean(hidden, batch["attention_mask"])
        if self.normalize:
            pooled = nn.functional.normalize(pooled, dim=-1)
        return pooled

    def forward(self, texts: Sequence[str] | str) -> torch.Tensor:
        """Embed a batch of sentences.

        Args:
            texts: ``B`` strings (a single string counts as ``B = 1``).

        Returns:
            ``(B, dim)`` float tensor on the model's device.
        """
        texts = [texts] if isinstance(texts, str) else list(texts)
        if not texts:
            return torch.empty(0, self.dim, device=self.device)
        if self.frozen:
            with torch.no_grad():
                return self._embed(texts)
        return self._embed(texts)

    def encode(self, texts: Sequence[str] | str, batch_size: int = 64) -> torch.Tensor:
        """Embed any number of sentences in batches of ``batch_size``.

        When frozen, the same sentence always gives the same vector, so vectors are cached by text
        (up to ``cache_size`` sentences, least recently used evicted) and only unseen sentences go
        through the model. Clear the cache with :meth:`clear_cache` after changing the weights.

        Args:
            texts: ``N`` strings, repeats allowed.
            batch_size: sentences per forward pass.

        Returns:
            ``(N, dim)`` tensor on the model's device.
        """
        texts = [texts] if isinstance(texts, str) else list(texts)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not self.frozen:  # weights may change between calls: no cache
            chunks = [self(texts[i:i + batch_size]) for i in range(0, len(texts), batch_size)]
            return torch.cat(chunks) if chunks else torch.empty(0, self.dim, device=self.device)

        unique = list(dict.fromkeys(texts))
        missing = [t for t in unique if t not in self._cache]
        self.cache_misses += len(missing)
        self.cache_hits += len(texts) - len(missing)
        vectors: dict[str, torch.Tensor] = {t: self._cache[t] for t in unique if t in self._cache}
        for i in range(0, len(missing), batch_size):
            chunk = missing[i:i + batch_size]
            vectors.update(zip(chunk, (v.clone() for v in self(chunk).unbind(0))))  # own storage
        for t in unique:  # refresh recency, insert new ones, evict the oldest
            self._cache[t] = vectors[t]
            self._cache.move_to_end(t)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        if not texts:
            return torch.empty(0, self.dim, device=self.device)
        return torch.stack([vectors[t] for t in texts]).to(self.device)

    def clear_cache(self) -> None:
        """Forget every cached sentence vector and reset the counters."""
        self._cache.clear()
        self.cache_hits = self.cache_misses = 0

    def extra_repr(self) -> str:
        return (f"weights={str(self.weights_path)!r}, dim={self.dim}, pooling={self.pooling!r}, "
                f"max_length={self.max_length}, frozen={self.frozen}")
