"""Models of the scenes task (spec §3): SR-BERT (discrete and continuous), the clip-art predictor, the two
attention baselines of Table 3.1 and three naive baselines.

Every scene model takes ``forward(input_ids, text_mask, cliparts, x, y, o)`` (or one :ref:`scene batch
<scene-batch>` dict holding those keys) and returns the contract's output dict (see
:mod:`modalbridge.tasks.scenes`):

* discrete models (``kind = "discrete"``): ``{"x": (B, N, 28), "y": (B, N, 23), "o": (B, N, 4)}``
  log-probabilities over the full vocabularies (special ids included; baselines that cannot predict a class
  give it ``-inf``);
* continuous models (``kind = "continuous"``): ``{"xy": (B, N, 2)`` real-valued bins in [0, 25] × [0, 20],
  ``"o": (B, N, 4)}`` log-probabilities.

SR-BERT's input sequence is ``[CLS] words [SEP]`` (0-padded to the batch's T) followed by the N clip-art
tokens. A text token is WordEmb + PosEmb(t) + TypeEmb(0); a clip-art token is CEmbed(c) +
Dropout(LN((XEmbed(x) + YEmbed(y) + OEmbed(o)) / 3)) + TypeEmb(1), with **no** sequence position, so the
model is permutation-equivariant over clip-arts and invariant to padding. BERT's own LayerNorm and dropout
follow, then its encoder under the padding mask; the heads read the last states of the clip-art block.

Deviations (documented in ``docs/scenes.md``): BERT is built without its pooler (never used; BERT-base has
590,592 fewer parameters than the spec's totals); the attention baselines read the batch's WordPiece ids
(a 30,522-row embedding table) instead of an nltk word vocabulary with frequency ≥ 5 (nltk is not a
dependency); their GRUs are packed, so padding never reaches a state.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from modalbridge.core.registry import register_model
from modalbridge.core.weights import load_state_dict, resolve_weights, strip_prefixes
from modalbridge.nn.bert import DEFAULT_BERT, TINY_BERT, bidirectional_mask, load_bert
from modalbridge.nn.transformers import ClassificationHead
from modalbridge.tasks.scenes.vocab import (
    CANVAS_H,
    CANVAS_W,
    CLIPARTS,
    EXPRESSIONS,
    JENNY_IDS,
    MIKE_IDS,
    NUM_CLIPARTS,
    O_MASK,
    O_PAD,
    O_VOCAB,
    OBJECT_INDICES,
    POSES,
    WORDS,
    X_BINS,
    X_MASK,
    X_PAD,
    X_VOCAB,
    Y_BINS,
    Y_MASK,
    Y_PAD,
    Y_VOCAB,
    pose_expression,
    x_bin,
    y_bin,
)

__all__ = [
    "AttentionBaseline",
    "CentreBaseline",
    "ClipartPredictor",
    "MeanPositionBaseline",
    "RNNAttentionBaseline",
    "RandomBaseline",
    "SRBertContinuous",
    "SRBertDiscrete",
    "SceneModel",
    "example_batch",
    "load_bert",
    "load_reference_checkpoint",
    "load_reference_state_dict",
    "predict_cliparts",
]

PREDICTOR_THRESHOLD = 0.35
#: real-valued bin range of the continuous heads: x̂ = 25·σ, ŷ = 20·σ
XY_SCALE = (X_BINS - 1, Y_BINS - 1)
SCENE_KEYS = ("input_ids", "text_mask", "cliparts", "x", "y", "o")


# -- shared pieces ----------------------------------------------------------------------------------------------
class SceneModel(nn.Module):
    """Base of the scene models: ``forward`` takes the six scene tensors or one scene-batch dict and calls
    :meth:`arrange`, which subclasses implement. ``kind`` is ``"discrete"`` or ``"continuous"``."""

    kind: str = "discrete"

    def forward(self, input_ids, text_mask=None, cliparts=None, x=None, y=None, o=None) -> dict[str, torch.Tensor]:
        if isinstance(input_ids, Mapping):
            return self.arrange(*(input_ids[k] for k in SCENE_KEYS))
        return self.arrange(input_ids, text_mask, cliparts, x, y, o)

    def arrange(self, input_ids: torch.Tensor, text_mask: torch.Tensor, cliparts: torch.Tensor,
                x: torch.Tensor, y: torch.Tensor, o: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError


def _scale_xy(logits: torch.Tensor) -> torch.Tensor:
    """(…, 2) logits → real-valued bins (25·σ, 20·σ)."""
    return torch.sigmoid(logits.float()) * logits.new_tensor(XY_SCALE, dtype=torch.float32)


# -- SR-BERT ----------------------------------------------------------------------------------------------------
class _SRBert(SceneModel):
    """BERT reading ``[text; clip-arts]`` (module docstring); subclasses add the heads.

    Attributes:
        bert: the ``BertModel`` (no pooler); ``hidden`` its hidden size H.
        clipart_embed (127, H), x_embed (28, H), y_embed (23, H), o_embed (4, H): new tables, N(0, 1) init
            with their padding row zeroed; position_norm / position_dropout: the LN + dropout of the summed
            position embedding.

    ``clipart_init``: ``"normal"`` — every clip-art row N(0, 1), as the reference (parity); ``"words"`` (ours) — each
    row starts from the BERT word embeddings of the clip-art's words (:data:`~.vocab.WORDS`, plus the pose and
    expression words for Mike and Jenny), rescaled to the norm of an N(0, 1) row and mixed with N(0, 1) noise
    (0.8 : 0.6) so the 35 Mikes stay apart. The clip-art token then starts out meaning its name, which a
    pretrained encoder can match with the sentences from the first step; with little training (a CPU run of a few
    minutes) this is the difference between using the text and ignoring it.
    """

    def __init__(self, bert: str | os.PathLike[str] = DEFAULT_BERT, bert_config: dict | None = None,
                 layers: int | None = None, clipart_init: str = "normal"):
        super().__init__()
        if clipart_init not in ("normal", "words"):
            raise ValueError(f"clipart_init must be normal | words, got {clipart_init!r}")
        self.bert = load_bert(bert, bert_config, layers)
        config = self.bert.config
        self.hidden = h = int(config.hidden_size)
        self.clipart_embed = nn.Embedding(NUM_CLIPARTS + 1, h, padding_idx=0)
        self.x_embed = nn.Embedding(X_VOCAB, h, padding_idx=X_PAD)
        self.y_embed = nn.Embedding(Y_VOCAB, h, padding_idx=Y_PAD)
        self.o_embed = nn.Embedding(O_VOCAB, h, padding_idx=O_PAD)
        self.position_norm = nn.LayerNorm(h, eps=config.layer_norm_eps)
        self.position_dropout = nn.Dropout(config.hidden_dropout_prob)
        if clipart_init == "words":
            self._init_from_words(Path(resolve_weights(bert)))

    @torch.no_grad()
    def _init_from_words(self, folder: Path) -> None:
        """``clipart_init="words"`` (class docstring)."""
        from transformers import BertTokenizerFast

        tokenizer = BertTokenizerFast.from_pretrained(str(folder), local_files_only=True)
        words = self.bert.embeddings.word_embeddings.weight
        table = self.clipart_embed.weight
        for index, name in enumerate(CLIPARTS, start=1):
            text = WORDS[name]
            if name.startswith("hb"):
                pose, expression = pose_expression(name)
                text = f"{text} {POSES[pose]} {EXPRESSIONS[expression]}"
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            meaning = words[ids].float().mean(0)
            meaning = meaning / meaning.norm().clamp(min=1e-6) * math.sqrt(table.shape[1])
            table[index] = 0.8 * meaning + 0.6 * table[index]

    def embed(self, input_ids: torch.Tensor, cliparts: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
              o: torch.Tensor) -> torch.Tensor:
        """(B, T) text ids + (B, N) clip-art tokens → (B, T + N, H) input embeddings (after BERT's LN + dropout)."""
        emb = self.bert.embeddings
        types = emb.token_type_embeddings.weight  # row 0: text, row 1: clip-arts
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        text = emb.word_embeddings(input_ids) + emb.position_embeddings(positions) + types[0]
        place = self.position_norm((self.x_embed(x) + self.y_embed(y) + self.o_embed(o)) / 3)
        clip = self.clipart_embed(cliparts) + self.position_dropout(place) + types[1]
        return emb.dropout(emb.LayerNorm(torch.cat([text, clip], dim=1)))

    def clipart_states(self, input_ids: torch.Tensor, text_mask: torch.Tensor, cliparts: torch.Tensor,
                       x: torch.Tensor, y: torch.Tensor, o: torch.Tensor) -> torch.Tensor:
        """Last-layer states of the clip-art block: (B, N, H)."""
        hidden = self.embed(input_ids, cliparts, x, y, o)
        mask = torch.cat([text_mask.bool(), cliparts != 0], dim=1)  # (B, T + N), True = attend
        states = self.bert.encoder(hidden, attention_mask=bidirectional_mask(self.bert, hidden, mask))
        return states.last_hidden_state[:, input_ids.shape[1]:]


class SRBertDiscrete(_SRBert):
    """SR-BERT with three MLM-style heads (Linear → GELU → LayerNorm → Linear) and log-softmax over the x
    (28), y (23) and o (4) vocabularies: ``forward(...) -> {"x", "y", "o"}`` (B, N, V) log-probs."""

    kind = "discrete"

    def __init__(self, bert: str | os.PathLike[str] = DEFAULT_BERT, bert_config: dict | None = None,
                 layers: int | None = None, clipart_init: str = "normal"):
        super().__init__(bert, bert_config, layers, clipart_init)
        eps = self.bert.config.layer_norm_eps
        self.x_head = ClassificationHead(self.hidden, X_VOCAB, eps=eps)
        self.y_head = ClassificationHead(self.hidden, Y_VOCAB, eps=eps)
        self.o_head = ClassificationHead(self.hidden, O_VOCAB, eps=eps)

    def arrange(self, input_ids, text_mask, cliparts, x, y, o):
        h = self.clipart_states(input_ids, text_mask, cliparts, x, y, o)
        return {k: torch.log_softmax(head(h).float(), dim=-1)
                for k, head in (("x", self.x_head), ("y", self.y_head), ("o", self.o_head))}


class SRBertContinuous(_SRBert):
    """SR-BERT with one 2-way head → sigmoid → (25·σ, 20·σ) real-valued bins and the 4-way orientation head:
    ``forward(...) -> {"xy": (B, N, 2), "o": (B, N, 4) log-probs}``."""

    kind = "continuous"

    def __init__(self, bert: str | os.PathLike[str] = DEFAULT_BERT, bert_config: dict | None = None,
                 layers: int | None = None, clipart_init: str = "normal"):
        super().__init__(bert, bert_config, layers, clipart_init)
        eps = self.bert.config.layer_norm_eps
        self.xy_head = ClassificationHead(self.hidden, 2, eps=eps)
        self.o_head = ClassificationHead(self.hidden, O_VOCAB, eps=eps)

    def arrange(self, input_ids, text_mask, cliparts, x, y, o):
        h = self.clipart_states(input_ids, text_mask, cliparts, x, y, o)
        return {"xy": _scale_xy(self.xy_head(h)), "o": torch.log_softmax(self.o_head(h).float(), dim=-1)}


# -- clip-art predictor -----------------------------------------------------------------------------------------
class ClipartPredictor(nn.Module):
    """Which clip-arts a description mentions: BERT's last [CLS] state → Linear(H, 126) logits (sigmoid in the
    loss and in :func:`predict_cliparts`). ``forward(input_ids (B, T), text_mask (B, T)) -> (B, 126)``, or
    ``forward(batch)``; output ``j`` is clip-art id ``j + 1``."""

    kind = "predictor"

    def __init__(self, bert: str | os.PathLike[str] = DEFAULT_BERT, bert_config: dict | None = None,
                 layers: int | None = None):
        super().__init__()
        self.bert = load_bert(bert, bert_config, layers)
        self.classifier = nn.Linear(int(self.bert.config.hidden_size), NUM_CLIPARTS)

    def forward(self, input_ids, text_mask=None) -> torch.Tensor:
        if isinstance(input_ids, Mapping):
            input_ids, text_mask = input_ids["input_ids"], input_ids["text_mask"]
        if text_mask is None:
            text_mask = input_ids != 0
        states = self.bert(input_ids=input_ids, attention_mask=text_mask.long()).last_hidden_state
        return self.classifier(states[:, 0])


def predict_cliparts(logits: torch.Tensor, threshold: float = PREDICTOR_THRESHOLD) -> torch.Tensor:
    """The predictor's decision rule: (B, 126) logits → (B, N) long 1-based clip-art ids, ascending, 0-padded.

    Per scene: every non-human clip-art with σ(logit) > ``threshold``, plus exactly one Mike (the argmax over
    ids 24–58) and one Jenny (the argmax over ids 59–93), always added.
    """
    b = logits.shape[0]
    chosen = torch.zeros(b, NUM_CLIPARTS, dtype=torch.bool, device=logits.device)
    objects = torch.as_tensor(OBJECT_INDICES, device=logits.device)
    chosen[:, objects] = torch.sigmoid(logits[:, objects].float()) > threshold
    rows = torch.arange(b, device=logits.device)
    for people in (MIKE_IDS, JENNY_IDS):  # two fixed blocks, not a loop over scenes
        first = people.start - 1  # 0-based output index of the block's first id
        chosen[rows, first + logits[:, first:people.stop - 1].argmax(dim=1)] = True
    ids = torch.arange(1, NUM_CLIPARTS + 1, device=logits.device).expand(b, -1)
    keys = torch.where(chosen, ids, NUM_CLIPARTS + 1)  # unchosen sort after every chosen id
    width = int(chosen.sum(dim=1).max())
    picked = keys.sort(dim=1).values[:, :width]
    return torch.where(picked > NUM_CLIPARTS, 0, picked)


# -- attention baselines (Table 3.1) ----------------------------------------------------------------------------
def _run_gru(gru: nn.GRU, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """A batch-first GRU over right-padded sequences, packed so padding never enters a state:
    (B, L, D), (B,) lengths → (B, L, D_out), zeros on padding."""
    packed = pack_padded_sequence(inputs, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
    out, _ = gru(packed)
    return pad_packed_sequence(out, batch_first=True, total_length=inputs.shape[1])[0]


def _pad_log_probs(log_probs: torch.Tensor, vocab: int) -> torch.Tensor:
    """(…, V) log-probs over the real classes → (…, vocab) with ``-inf`` on the special ids."""
    pad = log_probs.new_full((*log_probs.shape[:-1], vocab - log_probs.shape[-1]), -math.inf)
    return torch.cat([log_probs, pad], dim=-1)


class AttentionBaseline(SceneModel):
    """Table 3.1's "Attention" baseline: a bi-GRU over word embeddings, a bi-GRU over clip-art embeddings, and
    for every clip-art an additive attention over the words (``w_u · tanh(W_v·text + W_h·clip)``, softmax over
    real words) giving a context z_i; linear heads read ``[clip_state_i; z_i]`` (4·hidden). One pass; the
    x/y/o inputs are ignored.

    Args:
        kind: ``"discrete"`` (x 26-, y 21-, o 2-way, returned padded to the 28/23/4 vocabularies with
            ``-inf``) or ``"continuous"`` (sigmoid·25 / sigmoid·20 and 2-way o).
        hidden: GRU and embedding size (256 in the paper).
        vocab_size: rows of the word table; the batch's WordPiece ids are the words (see module docstring).
    """

    rnn = False

    def __init__(self, kind: str = "discrete", hidden: int = 256, vocab_size: int = 30522):
        super().__init__()
        if kind not in ("discrete", "continuous"):
            raise ValueError(f"kind must be 'discrete' or 'continuous', got {kind!r}")
        self.kind = kind
        self.word_embed = nn.Embedding(vocab_size, hidden, padding_idx=0)
        self.text_rnn = nn.GRU(hidden, hidden, batch_first=True, bidirectional=True)
        self.clipart_embed = nn.Embedding(NUM_CLIPARTS + 1, hidden, padding_idx=0)
        self.clipart_rnn = nn.GRU(hidden, hidden, batch_first=True, bidirectional=True)
        self.w_v = nn.Linear(2 * hidden, hidden)
        self.w_h = nn.Linear(2 * hidden, hidden)
        self.w_u = nn.Linear(hidden, 1, bias=False)
        self.decoder = nn.GRU(4 * hidden, hidden, batch_first=True) if self.rnn else None
        width = hidden if self.rnn else 4 * hidden
        sizes = {"x": X_BINS, "y": Y_BINS, "o": 2} if kind == "discrete" else {"xy": 2, "o": 2}
        self.heads = nn.ModuleDict({k: nn.Linear(width, v) for k, v in sizes.items()})

    def features(self, input_ids: torch.Tensor, text_mask: torch.Tensor, cliparts: torch.Tensor) -> torch.Tensor:
        """(B, N, 4·hidden) ``[clip_state; context]`` per clip-art (or the decoder GRU's (B, N, hidden))."""
        text_mask = text_mask.bool()
        n_clip = (cliparts != 0).sum(dim=1)
        text = _run_gru(self.text_rnn, self.word_embed(input_ids), text_mask.sum(dim=1))  # (B, T, 2h)
        clip = _run_gru(self.clipart_rnn, self.clipart_embed(cliparts), n_clip)  # (B, N, 2h)
        scores = self.w_u(torch.tanh(self.w_v(text)[:, None] + self.w_h(clip)[:, :, None])).squeeze(-1)  # (B, N, T)
        weights = torch.softmax(scores.masked_fill(~text_mask[:, None], -math.inf), dim=-1)
        feats = torch.cat([clip, weights @ text], dim=-1)
        return _run_gru(self.decoder, feats, n_clip) if self.decoder is not None else feats

    def arrange(self, input_ids, text_mask, cliparts, x, y, o):
        h = self.features(input_ids, text_mask, cliparts)
        o_lp = _pad_log_probs(torch.log_softmax(self.heads["o"](h).float(), dim=-1), O_VOCAB)
        if self.kind == "continuous":
            return {"xy": _scale_xy(self.heads["xy"](h)), "o": o_lp}
        return {"x": _pad_log_probs(torch.log_softmax(self.heads["x"](h).float(), dim=-1), X_VOCAB),
                "y": _pad_log_probs(torch.log_softmax(self.heads["y"](h).float(), dim=-1), Y_VOCAB), "o": o_lp}


class RNNAttentionBaseline(AttentionBaseline):
    """Table 3.1's "RNN + Attention" baseline: :class:`AttentionBaseline` whose ``[clip_state; context]``
    sequence goes through a left-to-right GRU (hidden) before the heads."""

    rnn = True


# -- naive baselines --------------------------------------------------------------------------------------------
def _one_hot_log_probs(bins: torch.Tensor, vocab: int) -> torch.Tensor:
    """(B, N) chosen classes → (B, N, vocab) log-probs with all mass on them (0 there, ``-inf`` elsewhere)."""
    out = torch.full((*bins.shape, vocab), -math.inf, device=bins.device)
    return out.scatter_(-1, bins[..., None], 0.0)


def _fixed_outputs(x: torch.Tensor, y: torch.Tensor, o: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"x": _one_hot_log_probs(x, X_VOCAB), "y": _one_hot_log_probs(y, Y_VOCAB),
            "o": _one_hot_log_probs(o, O_VOCAB)}


class CentreBaseline(SceneModel):
    """Every clip-art at the canvas centre (bins 12, 10 = pixel centres 250, 210), facing o = 0."""

    kind = "discrete"

    def arrange(self, input_ids, text_mask, cliparts, x, y, o):
        zero = torch.zeros_like(cliparts)
        return _fixed_outputs(zero + int(x_bin(CANVAS_W / 2)), zero + int(y_bin(CANVAS_H / 2)), zero)


class RandomBaseline(SceneModel):
    """Uniformly random on-canvas bins (x 0–24, y 0–19) and flips, from its own seeded generator (the same
    ``seed`` gives the same sequence of layouts)."""

    kind = "discrete"

    def __init__(self, seed: int = 0):
        super().__init__()
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)

    def arrange(self, input_ids, text_mask, cliparts, x, y, o):
        g, shape = self.generator, cliparts.shape
        draws = [torch.randint(high, shape, generator=g) for high in (X_BINS - 1, Y_BINS - 1, 2)]
        return _fixed_outputs(*(d.to(cliparts.device) for d in draws))


class MeanPositionBaseline(SceneModel):
    """Each clip-art at its training-mean pixel position (as a bin) with its majority flip; clip-arts never
    seen in training go to the canvas centre facing o = 0.

    Buffers ``sums (127, 3)`` (Σ x_px, Σ y_px, Σ flip per id) and ``counts (127,)`` are filled by :meth:`fit`
    (or set directly); they travel in the state dict.
    """

    kind = "discrete"

    def __init__(self):
        super().__init__()
        self.register_buffer("sums", torch.zeros(NUM_CLIPARTS + 1, 3, dtype=torch.float64))
        self.register_buffer("counts", torch.zeros(NUM_CLIPARTS + 1, dtype=torch.float64))

    @torch.no_grad()
    def fit(self, data) -> MeanPositionBaseline:
        """Accumulate the per-clip-art sums over the training data: a dataset (``len`` + indexing, e.g. the
        data module's ``train_set``) or any iterable of scene batches or samples — dicts with ``cliparts``,
        ``x_px``, ``y_px``, ``o_gt`` (0 = padding slot). Call once over the training set."""
        items = (data[i] for i in range(len(data))) if hasattr(data, "__getitem__") and hasattr(data, "__len__") \
            else data
        for item in items:
            cliparts = torch.as_tensor(item["cliparts"])
            valid = cliparts != 0
            ids = cliparts[valid].to(self.counts.device)
            values = torch.stack([torch.as_tensor(item[k], dtype=torch.float64)[valid]
                                  for k in ("x_px", "y_px", "o_gt")], dim=-1)
            self.sums.index_add_(0, ids, values.to(self.sums))
            self.counts.index_add_(0, ids, torch.ones_like(ids, dtype=self.counts.dtype))
        return self

    #: the name the LightningModule calls on fit start
    fit_statistics = fit

    def arrange(self, input_ids, text_mask, cliparts, x, y, o):
        seen = self.counts > 0
        mean = self.sums / self.counts.clamp(min=1)[:, None]
        centre = mean.new_tensor([CANVAS_W / 2, CANVAS_H / 2, 0.0])
        mean = torch.where(seen[:, None], mean, centre)[cliparts]  # (B, N, 3)
        return _fixed_outputs(x_bin(mean[..., 0]), y_bin(mean[..., 1]), (mean[..., 2] >= 0.5).long())


# -- reference checkpoints (spec §8) -----------------------------------------------------------------------------
#: reference (``gorjanradevski/sr-bert``) prefix → ours
_REFERENCE_PREFIXES = (
    ("cliparts_embeddings.", "clipart_embed."),
    ("x_embeddings.", "x_embed."),
    ("y_embeddings.", "y_embed."),
    ("o_embeddings.", "o_embed."),
    ("pos_layer_norm.", "position_norm."),
    ("projector.", "classifier."),  # the clip-art predictor's Linear(H, 126)
)
#: inside ``<x|y|o|xy>_head.``: transformers' ``BertOnlyMLMHead`` names → :class:`ClassificationHead`'s
_REFERENCE_HEAD = (
    ("predictions.transform.dense.", "dense."),
    ("predictions.transform.LayerNorm.", "norm."),
    ("predictions.decoder.weight", "out.weight"),
    ("predictions.decoder.bias", "out.bias"),  # tied to predictions.bias in the reference's transformers
    ("predictions.bias", "out.bias"),
)
_REFERENCE_HEADS = ("x_head.", "y_head.", "o_head.", "xy_head.")
_REFERENCE_DROPPED = ("bert.pooler.", "bert.embeddings.position_ids")


def _rename_reference_key(key: str) -> str | None:
    """Our name for one reference key; ``None`` for keys we drop; unknown keys are returned unchanged."""
    if key.startswith(_REFERENCE_DROPPED):
        return None
    for old, new in _REFERENCE_PREFIXES:
        if key.startswith(old):
            return new + key[len(old):]
    for head in _REFERENCE_HEADS:
        if key.startswith(head):
            rest = key[len(head):]
            for old, new in _REFERENCE_HEAD:
                if rest.startswith(old):
                    return head + new + rest[len(old):]
    return key


def load_reference_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a reference checkpoint (``discrete_15p.pt``, ``continuous_15p.pt``, the clip-art predictor) to
    our module names; load the result with ``model.load_state_dict(..., strict=True)``.

    What is assumed (from the reference's model code, not from a real checkpoint, none being reachable here):
    ``DataParallel``'s ``module.`` prefix; the new tables ``cliparts_embeddings`` (127 rows), ``x_embeddings``,
    ``y_embeddings``, ``o_embeddings``, ``pos_layer_norm``; the stock ``bert.*`` names of transformers 3.0.2
    (identical to today's), whose pooler and ``position_ids`` buffer we drop; heads ``x_head``, ``y_head``,
    ``o_head`` / ``xy_head`` as transformers' ``BertOnlyMLMHead`` (``predictions.transform.dense``,
    ``predictions.transform.LayerNorm``, ``predictions.decoder.weight``, ``predictions.bias`` — also saved as
    the tied ``predictions.decoder.bias``); the predictor's ``projector``. Keys matching none of these are kept
    unchanged, so a strict load names them.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in strip_prefixes(state_dict, ("module.",)).items():
        new = _rename_reference_key(key)
        if new is None:
            continue
        if new in out and not torch.equal(out[new], value):
            raise ValueError(f"reference checkpoint: {key!r} and another key both map to {new!r} with "
                             "different values")
        out[new] = value
    return out


def load_reference_checkpoint(model: nn.Module, path: str | os.PathLike[str]) -> nn.Module:
    """Load a reference ``.pt`` checkpoint (read with ``weights_only=True``) into ``model``, strictly."""
    model.load_state_dict(load_reference_state_dict(load_state_dict(path)), strict=True)
    return model


# -- registry ---------------------------------------------------------------------------------------------------


def example_batch(batch_size: int = 2, text_len: int = 6, slots: int = 3, seed: int = 0) -> dict[str, torch.Tensor]:
    """A small ragged scene batch (the registry's example input): scene ``b`` has ``slots - b`` clip-arts
    (at least 1) and ``text_len - b`` WordPiece tokens (at least 2), every position masked as at decoding."""
    g = torch.Generator().manual_seed(seed)
    input_ids = torch.zeros(batch_size, text_len, dtype=torch.long)
    cliparts = torch.zeros(batch_size, slots, dtype=torch.long)
    for b in range(batch_size):  # a handful of rows: building the example, not a hot path
        t, n = max(text_len - b, 2), max(slots - b, 1)
        input_ids[b, 0], input_ids[b, t - 1] = 101, 102
        input_ids[b, 1:t - 1] = torch.randint(1000, 30000, (t - 2,), generator=g)
        cliparts[b, :n] = torch.randperm(NUM_CLIPARTS, generator=g)[:n] + 1
    valid = cliparts != 0
    x_px = torch.randint(0, CANVAS_W + 1, cliparts.shape, generator=g).float() * valid
    y_px = torch.randint(0, CANVAS_H + 1, cliparts.shape, generator=g).float() * valid
    o_gt = torch.randint(0, 2, cliparts.shape, generator=g) * valid
    ignore = torch.full_like(cliparts, -100)
    return {
        "index": torch.arange(batch_size), "input_ids": input_ids, "text_mask": input_ids != 0,
        "cliparts": cliparts,
        "x": torch.where(valid, X_MASK, X_PAD), "y": torch.where(valid, Y_MASK, Y_PAD),
        "o": torch.where(valid, O_MASK, O_PAD),
        "x_label": torch.where(valid, x_bin(x_px), ignore), "y_label": torch.where(valid, y_bin(y_px), ignore),
        "o_label": torch.where(valid, o_gt, ignore),
        "x_px": x_px, "y_px": y_px, "o_gt": o_gt,
    }


_SCENE = {"task": "scenes", "inputs": "scene", "example": example_batch}


@register_model("sr_bert_discrete", tiny={"bert_config": TINY_BERT}, **_SCENE)
def sr_bert_discrete(bert: str = DEFAULT_BERT, bert_config: dict | None = None, layers: int | None = None,
                     clipart_init: str = "normal") -> SRBertDiscrete:
    """SR-BERT, discrete heads (x 28, y 23, o 4 log-probs)."""
    return SRBertDiscrete(bert, bert_config, layers, clipart_init)


@register_model("sr_bert_continuous", tiny={"bert_config": TINY_BERT}, **_SCENE)
def sr_bert_continuous(bert: str = DEFAULT_BERT, bert_config: dict | None = None, layers: int | None = None,
                       clipart_init: str = "normal") -> SRBertContinuous:
    """SR-BERT, continuous (x̂, ŷ) head + orientation head."""
    return SRBertContinuous(bert, bert_config, layers, clipart_init)


@register_model("clipart_predictor", tiny={"bert_config": TINY_BERT}, **_SCENE)
def clipart_predictor(bert: str = DEFAULT_BERT, bert_config: dict | None = None, layers: int | None = None) -> ClipartPredictor:
    """BERT [CLS] → 126 clip-art logits (which objects a description mentions)."""
    return ClipartPredictor(bert, bert_config, layers)


def _register_attention(name: str, cls: type[AttentionBaseline], kind: str) -> None:
    def build(hidden: int = 256, vocab_size: int = 30522) -> AttentionBaseline:
        return cls(kind, hidden=hidden, vocab_size=vocab_size)

    build.__doc__ = f"{cls.__name__} ({kind}): Table 3.1's {'RNN + ' if cls.rnn else ''}attention baseline."
    register_model(name, tiny={"hidden": 16}, **_SCENE)(build)


for _kind in ("discrete", "continuous"):
    _register_attention(f"scene_attention_{_kind}", AttentionBaseline, _kind)
    _register_attention(f"scene_rnn_attention_{_kind}", RNNAttentionBaseline, _kind)


@register_model("scene_centre", **_SCENE)
def scene_centre() -> CentreBaseline:
    """Naive baseline: every clip-art at the canvas centre."""
    return CentreBaseline()


@register_model("scene_random", **_SCENE)
def scene_random(seed: int = 0) -> RandomBaseline:
    """Naive baseline: seeded uniformly random bins."""
    return RandomBaseline(seed)


@register_model("scene_mean_position", **_SCENE)
def scene_mean_position() -> MeanPositionBaseline:
    """Naive baseline: each clip-art at its training-mean position (fit() it on the training batches)."""
    return MeanPositionBaseline()
