"""Models of the facts task (spec ``fact_linking.md`` §3): the slot linker (pre-ranker bi-encoder, ± context),
the fact re-ranker (cross-encoder), the zero-shot sentence encoder and the Random / Frequency baselines.

Input formats (§3, the reference code's token names):

* OIE query — ``"<SUBJ> s <PRED> r <OBJ> o"``, with context ``+ " <SENT> " + sentence`` where the sentence's
  first occurrence of the original subject / object (``org_extraction``; whole words, an optional ``s``/``es``
  suffix, matched literally) is replaced by the (alias) mention of ``extraction`` (:func:`format_query`);
* KG entry — ``"label <ENT> description"`` / ``"label <REL> description"`` (:func:`format_entry`);
* fact pair (re-ranker) — ``"<SUBJ> s <PRED> r <OBJ> o <FACT> <SUBJ> L_s <DESC> D_s <PRED> L_p <DESC> D_p
  <OBJ> L_o <DESC> D_o"`` (:func:`format_fact_pair`; no sentence);
* zero-shot — slot ``"s; None"``, entry ``"label; description"`` (:func:`zero_shot_query_texts`).

Marker strings typed inside a user's text (a mention containing ``"<SUBJ>"``) lose their brackets, so every
query holds each marker exactly once (the reference's marker pooling assumed it without checking).

Tensors: a query batch is ``query_ids (B, T) long``, ``query_mask (B, T) bool`` and ``marker_pos (B, 3) long``
(the positions of <SUBJ>, <PRED>, <OBJ>; :func:`tokenize_queries` builds all three); KG entries are
``entry_ids (K, T') long`` and ``entry_mask (K, T') bool`` (:func:`tokenize_entries`). The encoder is any BERT
folder :func:`~modalbridge.nn.bert.load_bert` resolves (default MiniLM-L6; the reference: distilroberta-base);
its embedding table grows by the marker tokens (``vocab_size``: pass ``len(tokenizer)`` after
:func:`add_marker_tokens`; default the BERT's vocabulary + all 8 markers of :data:`MARKER_TOKENS`, which fits a
tokenizer of the BERT's folder holding any of them).

Deviations from the reference code: slot vectors are L2-normalised per vector (the reference normalised the
(B, 3, D) query over the slot axis); the zero-shot encoder uses its own tokenizer and L2-normalises (the
reference paired a BERT tokenizer with a RoBERTa model and compared raw vectors).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from modalbridge.core.registry import register_model
from modalbridge.nn.bert import DEFAULT_BERT, TINY_BERT, load_bert, masked_mean

from .losses import _kg_size, _rng, _take
from .ookg import QKVDetector

__all__ = [
    "DESC",
    "FACT",
    "LINKER_TOKENS",
    "MARKER_TOKENS",
    "MODEL_KINDS",
    "QUERY_MARKERS",
    "RERANKER_TOKENS",
    "SENT",
    "FactReranker",
    "FrequencyLinker",
    "RandomLinker",
    "SlotLinker",
    "ZeroShotEncoder",
    "add_marker_tokens",
    "best_facts",
    "context_sentence",
    "corrupt_fact",
    "enumerate_candidates",
    "example_pair_batch",
    "example_query_batch",
    "format_entry",
    "format_fact_pair",
    "format_query",
    "frequency_links",
    "mask_fact",
    "marker_positions",
    "nearest_neighbours",
    "random_links",
    "tokenize_entries",
    "tokenize_queries",
    "zero_shot_entry_text",
    "zero_shot_query_texts",
]

#: the query markers, in slot order s, r, o
QUERY_MARKERS = ("<SUBJ>", "<PRED>", "<OBJ>")
#: the KG-entry markers by kind
ENTRY_MARKERS = {"entity": "<ENT>", "predicate": "<REL>"}
SENT, FACT, DESC = "<SENT>", "<FACT>", "<DESC>"
#: the slot linker's added tokens
LINKER_TOKENS = (*QUERY_MARKERS, "<ENT>", "<REL>", SENT)
#: the re-ranker's added tokens
RERANKER_TOKENS = (*QUERY_MARKERS, FACT, DESC)
#: every marker of the task: the encoders' embedding tables grow by this many rows by default, so one tokenizer
#: holding any of them (in any order) fits both models
MARKER_TOKENS = tuple(dict.fromkeys(LINKER_TOKENS + RERANKER_TOKENS))
_MARKER_RE = re.compile("|".join(re.escape(t) for t in MARKER_TOKENS))
SLOTS = ("subj", "rel", "obj")
#: registered model → what the facts module does with it (train/evaluate as a pre-ranker, a baseline …)
MODEL_KINDS = {"slot_linker": "linker", "zero_shot_linker": "zero_shot", "random_linker": "ranking",
               "frequency_linker": "ranking", "fact_reranker": "reranker", "qkv_detector": "qkv"}


# -- text formats ------------------------------------------------------------------------------------------------
def add_marker_tokens(tokenizer, context: bool = True, tokens: Sequence[str] | None = None) -> dict[str, int]:
    """Add the marker tokens to ``tokenizer`` as special tokens (never split, never lower-cased) and return
    ``{token: id}``. Default: :data:`LINKER_TOKENS` (without ``<SENT>`` when ``context`` is False); the
    re-ranker passes ``tokens=RERANKER_TOKENS``. Idempotent: tokens already present keep their ids."""
    wanted = list(tokens if tokens is not None else LINKER_TOKENS if context else LINKER_TOKENS[:-1])
    tokenizer.add_tokens(wanted, special_tokens=True)
    ids = tokenizer.convert_tokens_to_ids(wanted)
    return dict(zip(wanted, ids, strict=True))


def _clean(text: Any) -> str:
    """One slot / sentence text: ``str`` with marker strings defused (``"<SUBJ>"`` → ``"SUBJ"``)."""
    return _MARKER_RE.sub(lambda m: m.group(0)[1:-1], "" if text is None else str(text))


def context_sentence(sentence: str, original: Sequence[str] | None, mention: Sequence[str]) -> str:
    """``sentence`` with the first occurrence of the original subject and object (``original[0]``,
    ``original[2]``) replaced by the mentions ``mention[0]`` / ``mention[2]``: whole-word matches (no word
    character on either side), an optional ``s``/``es`` suffix included in the replaced span, the text matched
    literally. The object's first occurrence outside the subject's replaced span is taken; unmatched
    originals change nothing."""
    if original is None:
        return sentence
    spans = []
    for slot in (0, 2):
        old, new = str(original[slot]), str(mention[slot])
        if not old or old == new:
            continue
        for found in re.finditer(rf"(?<!\w){re.escape(old)}(?:es|s)?(?!\w)", sentence):
            if not any(found.start() < end and start < found.end() for start, end, _ in spans):
                spans.append((found.start(), found.end(), new))
                break
    for start, end, new in sorted(spans, reverse=True):
        sentence = sentence[:start] + new + sentence[end:]
    return sentence


def format_query(s: str, r: str, o: str, sentence: str | None = None, *,
                 original: Sequence[str] | None = None) -> str:
    """The pre-ranker's query text ``"<SUBJ> s <PRED> r <OBJ> o"``, plus ``" <SENT> " + sentence`` when a sentence
    is given (context model); ``original``: the record's ``org_extraction`` whose subject/object mentions in the
    sentence become ``s`` / ``o`` (:func:`context_sentence`)."""
    s, r, o = _clean(s), _clean(r), _clean(o)
    text = f"<SUBJ> {s} <PRED> {r} <OBJ> {o}"
    if sentence:
        original = None if original is None else [_clean(x) for x in original]
        text += f" {SENT} " + context_sentence(_clean(sentence), original, (s, r, o))
    return text


def _description(description: Any) -> str:
    text = _clean(description).strip()
    return text if text else "None"


def format_entry(label: str, description: str | None, kind: str) -> str:
    """A KG entry's text: ``"label <ENT> description"`` (``kind="entity"``) or ``"label <REL> description"``
    (``kind="predicate"``); a missing description reads ``"None"``."""
    if kind not in ENTRY_MARKERS:
        raise ValueError(f"kind must be 'entity' or 'predicate', got {kind!r}")
    return f"{_clean(label)} {ENTRY_MARKERS[kind]} {_description(description)}"


def format_fact_pair(triple: Sequence[str], fact: Sequence[tuple[str, str | None]]) -> str:
    """The re-ranker's input: the OIE ``triple`` (s, r, o) and a candidate ``fact`` given as its three
    ``(label, description)`` pairs (subject, predicate, object) — §3.5's single string."""
    if len(triple) != 3 or len(fact) != 3:
        raise ValueError("format_fact_pair needs a 3-slot triple and a 3-slot fact of (label, description)")
    s, r, o = (_clean(x) for x in triple)
    (ls, ds), (lp, dp), (lo, do) = ((_clean(label), _description(desc)) for label, desc in fact)
    return (f"<SUBJ> {s} <PRED> {r} <OBJ> {o} {FACT} <SUBJ> {ls} {DESC} {ds} <PRED> {lp} {DESC} {dp} "
            f"<OBJ> {lo} {DESC} {do}")


def mask_fact(fact: Sequence[tuple[str, str | None]], rng: np.random.Generator | int | None = None,
              p: float = 0.5, part: str = "description", mask_token: str = "[MASK]") -> list[tuple[str, str]]:
    """Re-ranker training masking, each slot independently with probability ``p``: ``part="description"``
    (the thesis: descriptions, p 0.5, the default) or ``"label"`` (the reference code: labels, p 0.8)."""
    if part not in ("description", "label"):
        raise ValueError(f"part must be 'description' or 'label', got {part!r}")
    hit = _rng(rng).random(3) < p
    column = 1 if part == "description" else 0
    out = []
    for (label, desc), masked in zip(fact, hit, strict=True):
        pair = [label, desc if desc else "None"]
        if masked:
            pair[column] = mask_token
        out.append((pair[0], pair[1]))
    return out


def zero_shot_query_texts(s: str, r: str, o: str) -> list[str]:
    """The zero-shot encoder's three slot texts ``["s; None", "r; None", "o; None"]``."""
    return [f"{_clean(x)}; None" for x in (s, r, o)]


def zero_shot_entry_text(label: str, description: str | None) -> str:
    """The zero-shot encoder's KG entry text ``"label; description"``."""
    return f"{_clean(label)}; {_description(description)}"


# -- tokenisation ------------------------------------------------------------------------------------------------
def marker_positions(query_ids: torch.Tensor, marker_ids: Sequence[int]) -> torch.Tensor:
    """``(B, 3)`` long: the first position of each marker (<SUBJ>, <PRED>, <OBJ> ids) in ``query_ids`` (B, T);
    ValueError naming the rows where one is missing (e.g. cut off by truncation)."""
    marker = torch.as_tensor(list(marker_ids), device=query_ids.device)
    hits = query_ids[:, None, :] == marker[None, :, None]  # (B, 3, T)
    missing = ~hits.any(-1)
    if bool(missing.any()):
        rows = torch.nonzero(missing.any(-1)).flatten().tolist()
        raise ValueError(f"query rows {rows[:10]} lack a slot marker (<SUBJ>/<PRED>/<OBJ>): truncated, or the "
                         "tokenizer lacks the markers (call add_marker_tokens first)")
    return hits.int().argmax(-1)


def _known(tokenizer, tokens: Sequence[str]) -> list[int]:
    ids = tokenizer.convert_tokens_to_ids(list(tokens))
    unk = getattr(tokenizer, "unk_token_id", None)
    if any(i is None or i == unk for i in ids):
        raise ValueError(f"the tokenizer lacks the marker tokens {list(tokens)}: call add_marker_tokens first")
    return ids


def tokenize_queries(tokenizer, texts: Sequence[str], max_length: int = 128) -> dict[str, torch.Tensor]:
    """Query texts (:func:`format_query`) → ``{"query_ids" (B, T), "query_mask" (B, T) bool, "marker_pos"
    (B, 3)}`` (padded to the batch's longest, truncated to ``max_length`` tokens: the reference's 128)."""
    enc = tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    ids = enc["input_ids"]
    return {"query_ids": ids, "query_mask": enc["attention_mask"].bool(),
            "marker_pos": marker_positions(ids, _known(tokenizer, QUERY_MARKERS))}


def tokenize_entries(tokenizer, texts: Sequence[str], max_length: int = 32) -> dict[str, torch.Tensor]:
    """KG entry texts (:func:`format_entry`) → ``{"entry_ids" (K, T'), "entry_mask" (K, T') bool}`` (the
    reference's 32 tokens)."""
    enc = tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    return {"entry_ids": enc["input_ids"], "entry_mask": enc["attention_mask"].bool()}


# -- encoders ----------------------------------------------------------------------------------------------------
def _bert_with_markers(bert, bert_config, layers, vocab_size: int | None) -> nn.Module:
    """A BERT whose embedding table has ``vocab_size`` rows (default: its vocabulary + every marker)."""
    model = load_bert(bert, bert_config, layers)
    size = int(vocab_size) if vocab_size is not None else int(model.config.vocab_size) + len(MARKER_TOKENS)
    if size < int(model.config.vocab_size):
        raise ValueError(f"vocab_size {size} is smaller than the BERT's vocabulary ({model.config.vocab_size})")
    model.resize_token_embeddings(size, mean_resizing=False)
    return model


def _tensors(first: Any, names: Sequence[str], rest: Sequence[Any]) -> list[Any]:
    """Positional tensors, or the named keys of one batch dict."""
    if isinstance(first, Mapping):
        return [first.get(name) for name in names]
    return [first, *rest]


class SlotLinker(nn.Module):
    """The pre-ranker (§3.3): one shared BERT for queries and KG entries. Query slot vectors = last-layer states
    at <SUBJ>, <PRED>, <OBJ>; entry vector = the [CLS] state; both → one shared ``Linear(H, dim)`` → L2-normalised
    per vector; score = dot product. ``logit_scale`` λ is learnable, initialised to ln(1/0.07) (CLIP style);
    :attr:`scale` = exp(λ) multiplies the cosines in the InfoNCE loss."""

    kind = "linker"

    def __init__(self, bert: str | os.PathLike[str] = DEFAULT_BERT, bert_config: dict | None = None,
                 layers: int | None = None, dim: int = 200, vocab_size: int | None = None):
        super().__init__()
        if dim < 1:
            raise ValueError(f"dim must be positive, got {dim}")
        self.bert = _bert_with_markers(bert, bert_config, layers, vocab_size)
        self.hidden, self.dim = int(self.bert.config.hidden_size), int(dim)
        self.head = nn.Linear(self.hidden, self.dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    @property
    def scale(self) -> torch.Tensor:
        """exp(λ) = 1/τ (a scalar tensor with gradient)."""
        return self.logit_scale.exp()

    def _states(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.bert(input_ids=ids, attention_mask=mask.long()).last_hidden_state  # (N, T, H)

    def _project(self, states: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.head(states).float(), dim=-1)

    def encode_queries(self, query_ids: torch.Tensor, query_mask: torch.Tensor,
                       marker_pos: torch.Tensor) -> torch.Tensor:
        """``(B, 3, dim)`` unit slot vectors ô_s, ô_r, ô_o (fp32)."""
        states = self._states(query_ids, query_mask)
        index = marker_pos.long()[..., None].expand(-1, -1, states.shape[-1])
        return self._project(states.gather(1, index))

    def encode_entries(self, entry_ids: torch.Tensor, entry_mask: torch.Tensor) -> torch.Tensor:
        """``(K, dim)`` unit KG entry vectors (fp32)."""
        return self._project(self._states(entry_ids, entry_mask)[:, 0])

    def forward(self, query_ids, query_mask=None, marker_pos=None, entry_ids=None, entry_mask=None):
        """``{"query": (B, 3, dim)}`` plus ``"entry": (K, dim)`` when entries are given; takes tensors or one
        batch dict with those keys."""
        query_ids, query_mask, marker_pos, entry_ids, entry_mask = _tensors(
            query_ids, ("query_ids", "query_mask", "marker_pos", "entry_ids", "entry_mask"),
            (query_mask, marker_pos, entry_ids, entry_mask))
        out = {"query": self.encode_queries(query_ids, query_mask, marker_pos)}
        if entry_ids is not None:
            out["entry"] = self.encode_entries(entry_ids, entry_mask)
        return out


class FactReranker(nn.Module):
    """The re-ranker (§3.5): a BERT cross-encoder over :func:`format_fact_pair` text, [CLS] → ``Linear(H, 1)``
    → logit (σ(logit) = the fact's match probability); trained with :func:`~.losses.rerank_loss`."""

    kind = "reranker"

    def __init__(self, bert: str | os.PathLike[str] = DEFAULT_BERT, bert_config: dict | None = None,
                 layers: int | None = None, vocab_size: int | None = None):
        super().__init__()
        self.bert = _bert_with_markers(bert, bert_config, layers, vocab_size)
        self.hidden = int(self.bert.config.hidden_size)
        self.head = nn.Linear(self.hidden, 1)

    def forward(self, input_ids, attention_mask=None):
        """``{"logits": (B,)}`` fp32; takes tensors or a batch dict (``input_ids``, ``attention_mask``)."""
        input_ids, attention_mask = _tensors(input_ids, ("input_ids", "attention_mask"), (attention_mask,))
        if attention_mask is None:
            attention_mask = input_ids != 0
        cls = self.bert(input_ids=input_ids, attention_mask=attention_mask.long()).last_hidden_state[:, 0]
        return {"logits": self.head(cls).float().squeeze(-1)}


class ZeroShotEncoder(nn.Module):
    """The zero-shot baseline (§3.2, SimCSE → MiniLM offline): mean-pooled last-layer states over the real
    tokens, L2-normalised; slots and entries in the :func:`zero_shot_query_texts` / :func:`zero_shot_entry_text`
    formats, compared by cosine. No training, no added tokens."""

    kind = "zero_shot"

    def __init__(self, bert: str | os.PathLike[str] = DEFAULT_BERT, bert_config: dict | None = None,
                 layers: int | None = None):
        super().__init__()
        self.bert = load_bert(bert, bert_config, layers)
        self.hidden = int(self.bert.config.hidden_size)

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """``(N, H)`` unit vectors (fp32)."""
        mask = attention_mask.bool()
        states = self.bert(input_ids=input_ids, attention_mask=mask.long()).last_hidden_state.float()
        return F.normalize(masked_mean(states, mask), dim=-1)

    def forward(self, input_ids, attention_mask=None):
        """``{"embedding": (N, H)}``; takes tensors or a batch dict (``input_ids``, ``attention_mask``)."""
        input_ids, attention_mask = _tensors(input_ids, ("input_ids", "attention_mask"), (attention_mask,))
        if attention_mask is None:
            attention_mask = input_ids != 0
        return {"embedding": self.encode(input_ids, attention_mask)}


# -- re-ranking --------------------------------------------------------------------------------------------------
def _combos(k: int) -> np.ndarray:
    """``(k³, 3)`` slot ranks in lexicographic order (row 0 = the three top-1s)."""
    return np.indices((k, k, k)).reshape(3, -1).T


def enumerate_candidates(topk: Any, k: int) -> Any:
    """All k³ candidate facts from each query's top-k per slot.

    Args:
        topk: ``(..., 3, K)`` ranked ids per slot (numpy array or torch tensor; K ≥ k), e.g. ``(B, 3, 100)``.
        k: how many of each slot's best to combine (thesis 3).

    Returns:
        ``(..., k³, 3)`` candidate facts (same type as ``topk``), lexicographic in the slot ranks: candidate 0
        is the pre-ranker's answer, so k = 1 reproduces it.
    """
    if k < 1 or topk.shape[-2] != 3 or topk.shape[-1] < k:
        raise ValueError(f"expected topk (..., 3, K >= k) and k >= 1; got shape {tuple(topk.shape)}, k={k}")
    combos = _combos(k)
    slots = np.arange(3)
    if isinstance(topk, torch.Tensor):
        combos, slots = torch.as_tensor(combos, device=topk.device), torch.as_tensor(slots, device=topk.device)
    return topk[..., slots, combos]


def best_facts(candidates: Any, scores: Any) -> tuple[Any, Any]:
    """Sort each query's candidates by the re-ranker's scores, best first (stable: ties keep the pre-ranker's
    lexicographic order). ``candidates`` (..., C, 3), ``scores`` (..., C) → ``(ranked (..., C, 3), order
    (..., C))``; ``ranked[..., 0, :]`` is the predicted fact."""
    if isinstance(scores, torch.Tensor):
        order = torch.sort(scores, dim=-1, descending=True, stable=True).indices
        return torch.gather(candidates, -2, order[..., None].expand(*order.shape, 3)), order
    scores = np.asarray(scores)
    order = np.argsort(-scores, axis=-1, kind="stable")
    return np.take_along_axis(np.asarray(candidates), order[..., None], axis=-2), order


def _pick_neighbour(gold: np.ndarray, table: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random hard negative per gold row index: uniform over its neighbour row (−1 padding and the gold
    itself excluded), else a uniform random other KG row; a one-row KG returns the gold."""
    n = len(table)
    rows = table[gold] if table.ndim == 2 and table.shape[1] else np.full((len(gold), 0), -1)
    valid = (rows >= 0) & (rows != gold[:, None])
    count = valid.sum(1)
    choice = (rng.random(len(gold)) * np.maximum(count, 1)).astype(np.int64)  # the choice-th valid entry
    rank = np.cumsum(valid, axis=1) - 1
    picked = np.where(valid & (rank == choice[:, None]), rows, -1).max(1, initial=-1)
    fallback = rng.integers(0, max(n - 1, 1), size=len(gold))
    fallback = np.where(n > 1, fallback + (fallback >= gold), gold)
    return np.where(count > 0, picked, fallback)


def corrupt_fact(gold: Any, neighbours: tuple[np.ndarray, np.ndarray], p: float = 0.2,
                 rng: np.random.Generator | int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The re-ranker's training pairs: each slot of each gold fact is replaced, independently with probability
    ``p``, by one of its hard negatives (thesis: uniform over the KG entry's nearest KG entries).

    Args:
        gold: ``(B, 3)`` int KG row indices [subject, predicate, object] (entities and predicates indexed
            separately).
        neighbours: ``(entity_table (Ne, k), predicate_table (Np, k))`` int row indices of each entry's nearest
            entries, −1 padded (:func:`nearest_neighbours`); a row without any falls back to a uniform random
            other entry. The tables' lengths are the KG sizes.
        p: corruption probability per slot (0.2: P(positive) = 0.8³ = 0.512).

    Returns:
        ``(facts (B, 3) int64, labels (B,) float32)`` — label 1 iff no slot changed.
    """
    gold = np.asarray(gold, dtype=np.int64)
    if gold.ndim != 2 or gold.shape[1] != 3:
        raise ValueError(f"gold must be (B, 3) KG row indices, got shape {gold.shape}")
    entity_table, predicate_table = (np.asarray(t, dtype=np.int64) for t in neighbours)
    for column, table in ((0, entity_table), (1, predicate_table), (2, entity_table)):
        if gold.size and (gold[:, column].min() < 0 or gold[:, column].max() >= len(table)):
            raise ValueError(f"gold column {column} holds a row index outside the KG's {len(table)} entries")
    rng = _rng(rng)
    facts = gold.copy()
    flip = rng.random(gold.shape) < p
    for column, table in ((0, entity_table), (1, predicate_table), (2, entity_table)):
        rows = np.flatnonzero(flip[:, column])
        facts[rows, column] = _pick_neighbour(gold[rows, column], table, rng)
    return facts, (facts == gold).all(1).astype(np.float32)


def nearest_neighbours(vectors: Any, k: int = 10, chunk: int = 4096) -> np.ndarray:
    """``(N, k)`` int64 rows of each vector's k nearest others by inner product (cosine for unit vectors),
    best first, −1 padded when N − 1 < k: the hard-negative table of :func:`corrupt_fact`. Exact, chunked
    (memory chunk × N); use the vector index for a Wikidata-size KG."""
    v = torch.as_tensor(np.asarray(vectors), dtype=torch.float32)
    n = v.shape[0]
    out = np.full((n, k), -1, dtype=np.int64)
    take = min(k, n - 1)
    if take <= 0:
        return out
    for start in range(0, n, chunk):
        sims = v[start:start + chunk] @ v.T
        rows = torch.arange(start, min(start + chunk, n))
        sims[rows - start, rows] = float("-inf")  # never your own neighbour
        out[start:start + len(rows), :take] = torch.topk(sims, take, dim=1).indices.numpy()
    return out


# -- naive baselines ---------------------------------------------------------------------------------------------
def _distinct_rows(rng: np.random.Generator, rows: int, size: int, k: int) -> np.ndarray:
    """``(rows, k)`` random row numbers < size, distinct within a row, in random order (k ≤ size)."""
    if size <= 4 * k:
        return np.argsort(rng.random((rows, size)), axis=1)[:, :k]
    out = rng.integers(0, size, size=(rows, k))
    while True:  # redraw repeats; converges in a few rounds since k ≤ size / 4
        order = np.argsort(out, axis=1, kind="stable")
        ranked = np.take_along_axis(out, order, axis=1)
        repeat = np.zeros_like(out, dtype=bool)
        np.put_along_axis(repeat, order[:, 1:], ranked[:, 1:] == ranked[:, :-1], axis=1)
        if not repeat.any():
            return out
        out[repeat] = rng.integers(0, size, size=int(repeat.sum()))


def random_links(n: int, entity_ids: Sequence[Any] | np.ndarray | int, predicate_ids: Sequence[Any] | np.ndarray | int,
                 k: int = 100, rng: np.random.Generator | int | None = None) -> np.ndarray:
    """The Random baseline: ``(n, 3, k)`` rankings of distinct uniformly random KG ids per slot (entities for s
    and o, predicates for r; ``k`` capped at the smaller KG side). Ids as given (``int`` KG size → rows)."""
    rng = _rng(rng)
    ne, np_ = _kg_size(entity_ids), _kg_size(predicate_ids)
    if ne == 0 or np_ == 0:
        raise ValueError("random_links needs a KG with at least one entity and one predicate")
    k = min(k, ne, np_)
    parts = [_take(ids, _distinct_rows(rng, n, size, k).reshape(-1)).reshape(n, k)
             for ids, size in ((entity_ids, ne), (predicate_ids, np_), (entity_ids, ne))]
    return np.stack(parts, axis=1)


def frequency_links(train_facts: Any, n: int, k: int = 100, pooled: bool = False) -> np.ndarray:
    """The Frequency baseline: every query gets, per slot, the training facts' ids ranked by how often they
    occur in that slot (ties: the smaller id first); ``pooled=True`` ranks entities by their count over the
    subject AND object columns together (the same list for s and o; the card leaves the choice open).

    Args:
        train_facts: ``(m, 3)`` training ``fact_ids``.
        n: number of queries.
        k: ranking length.

    Returns:
        ``(n, 3, k)`` object array; a slot with fewer than k distinct training ids is padded with ``None``
        (never a hit).
    """
    facts = np.asarray(train_facts)
    if facts.ndim != 2 or facts.shape[1] != 3 or len(facts) == 0:
        raise ValueError(f"train_facts must be a non-empty (m, 3) array of fact ids, got shape {facts.shape}")

    def ranking(values: np.ndarray) -> np.ndarray:
        ids, counts = np.unique(values, return_counts=True)
        best = ids[np.argsort(-counts, kind="stable")][:k]
        row = np.full(k, None, dtype=object)
        row[:len(best)] = best
        return row

    entities = np.concatenate([facts[:, 0], facts[:, 2]])
    rows = [ranking(entities) if pooled and c != 1 else ranking(facts[:, c]) for c in range(3)]
    return np.broadcast_to(np.stack(rows)[None], (n, 3, k)).copy()


# -- example inputs (for the registry, once the task registers these models) -------------------------------------
def example_query_batch(batch_size: int = 2, text_len: int = 9, entries: int = 3, seed: int = 0,
                        vocab: int = 30522) -> dict[str, torch.Tensor]:
    """A small ragged :class:`SlotLinker` batch: query ``b`` is ``text_len - b`` tokens long with the markers
    (ids ``vocab``, ``vocab + 1``, ``vocab + 2``) at positions 1, 3, 5; ``entries`` KG entries of 4 tokens."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.clamp(text_len - torch.arange(batch_size), min=7)
    positions = torch.arange(text_len)
    ids = torch.randint(1000, 30000, (batch_size, text_len), generator=g)
    ids[:, 0] = 101
    ids[:, [1, 3, 5]] = torch.tensor([vocab, vocab + 1, vocab + 2])
    ids = torch.where(positions == (lengths - 1)[:, None], 102, ids)
    mask = positions < lengths[:, None]
    entry_ids = torch.randint(1000, 30000, (entries, 4), generator=g)
    entry_ids[:, 0], entry_ids[:, -1] = 101, 102
    return {"query_ids": ids * mask, "query_mask": mask,
            "marker_pos": torch.tensor([[1, 3, 5]]).expand(batch_size, 3).clone(),
            "entry_ids": entry_ids, "entry_mask": torch.ones(entries, 4, dtype=torch.bool)}


def example_pair_batch(batch_size: int = 2, text_len: int = 8, seed: int = 0) -> dict[str, torch.Tensor]:
    """A small ragged ``{"input_ids", "attention_mask"}`` batch ([CLS] … [SEP]) for the re-ranker and the
    zero-shot encoder."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.clamp(text_len - torch.arange(batch_size), min=2)
    positions = torch.arange(text_len)
    ids = torch.randint(1000, 30000, (batch_size, text_len), generator=g)
    ids[:, 0] = 101
    ids = torch.where(positions == (lengths - 1)[:, None], 102, ids)
    mask = positions < lengths[:, None]
    return {"input_ids": ids * mask, "attention_mask": mask}


class RandomLinker(nn.Module):
    """The Random baseline as a model: per query and slot ``k`` distinct uniformly random KG rows (entities for s
    and o, predicates for r), drawn from ``(seed, record index)`` only — the same ranking in any batch, worker or
    DDP rank."""

    kind = "ranking"

    def __init__(self, num_entities: int, num_predicates: int, k: int = 100, seed: int = 0):
        super().__init__()
        if num_entities < 1 or num_predicates < 1:
            raise ValueError("the Random baseline needs a KG with at least one entity and one predicate")
        self.num_entities, self.num_predicates, self.k, self.seed = int(num_entities), int(num_predicates), k, seed

    def forward(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """``{"ranking": (B, 3, k) long}`` KG rows; a slot whose KG side has fewer than ``k`` entries ranks all of
        them, −1 padded (so the entity columns' Recall@100 is over 100 entities even with 73 predicates)."""
        out = np.full((len(batch["index"]), 3, self.k), -1, dtype=np.int64)
        for row, i in enumerate(batch["index"].tolist()):
            rng = np.random.default_rng((self.seed, int(i)))
            for slot, size in enumerate((self.num_entities, self.num_predicates, self.num_entities)):
                k = min(self.k, size)
                out[row, slot, :k] = _distinct_rows(rng, 1, size, k)[0]
        return {"ranking": torch.from_numpy(out)}


class FrequencyLinker(nn.Module):
    """The Frequency baseline as a model: every query gets, per slot, the training facts' KG rows ranked by their
    count in that slot (``pooled``: entities counted over subject and object together); −1 pads a slot with
    fewer than ``k`` distinct training rows. :meth:`fit` sets the rankings from the training golds."""

    kind = "ranking"

    def __init__(self, k: int = 100, pooled: bool = False, train_gold: Any = None):
        super().__init__()
        self.k, self.pooled = int(k), bool(pooled)
        self.register_buffer("ranking", torch.full((3, self.k), -1, dtype=torch.long))
        self.fitted = False
        if train_gold is not None:
            self.fit(train_gold)

    def fit(self, train_gold: Any) -> None:
        """Rankings from ``(m, 3)`` training gold KG rows."""
        table = frequency_links(np.asarray(train_gold), 1, self.k, self.pooled)[0]
        self.ranking.copy_(torch.as_tensor(np.where(table == None, -1, table).astype(np.int64)))  # noqa: E711
        self.fitted = True

    def forward(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """``{"ranking": (B, 3, k) long}`` — the same ranking for every query."""
        return {"ranking": self.ranking[None].expand(len(batch["index"]), -1, -1).clone()}


# -- registry ----------------------------------------------------------------------------------------------------
def _example_qkv(batch_size: int = 2, dim: int = 8, seed: int = 0) -> dict[str, torch.Tensor]:
    """A QKV detector input: unit slot vectors (B, 3, dim), 5 entity and 3 predicate vectors."""
    g = torch.Generator().manual_seed(seed)
    unit = lambda *shape: F.normalize(torch.randn(*shape, generator=g), dim=-1)  # noqa: E731
    return {"query": unit(batch_size, 3, dim), "entity_kg": unit(5, dim), "predicate_kg": unit(3, dim)}


def _example_ranking() -> dict[str, torch.Tensor]:
    return {"index": torch.arange(2)}


_FACTS = {"task": "facts", "inputs": "facts"}
_TINY = {"bert_config": TINY_BERT}


@register_model("slot_linker", tiny={**_TINY, "dim": 16}, example=example_query_batch, **_FACTS)
def slot_linker(bert: str = DEFAULT_BERT, bert_config: dict | None = None, layers: int | None = None,
                dim: int = 200, vocab_size: int | None = None) -> SlotLinker:
    """The pre-ranker bi-encoder: marker-token slot vectors and [CLS] KG entry vectors → Linear(H, 200), cosine."""
    return SlotLinker(bert, bert_config, layers, dim, vocab_size)


@register_model("fact_reranker", tiny=_TINY, example=example_pair_batch, **_FACTS)
def fact_reranker(bert: str = DEFAULT_BERT, bert_config: dict | None = None, layers: int | None = None,
                  vocab_size: int | None = None) -> FactReranker:
    """The re-ranker cross-encoder over (OIE triple, candidate fact) text: [CLS] → Linear(H, 1) logit."""
    return FactReranker(bert, bert_config, layers, vocab_size)


@register_model("zero_shot_linker", tiny=_TINY, example=example_pair_batch, **_FACTS)
def zero_shot_linker(bert: str = DEFAULT_BERT, bert_config: dict | None = None,
                     layers: int | None = None) -> ZeroShotEncoder:
    """The zero-shot sentence-embedding baseline (SimCSE in the thesis; MiniLM offline): mean pooling, cosine."""
    return ZeroShotEncoder(bert, bert_config, layers)


@register_model("random_linker", tiny={"num_entities": 7, "num_predicates": 3, "k": 5}, example=_example_ranking,
                **_FACTS)
def random_linker(num_entities: int, num_predicates: int, k: int = 100, seed: int = 0) -> RandomLinker:
    """Random baseline: uniformly random distinct KG entries per slot."""
    return RandomLinker(num_entities, num_predicates, k, seed)


@register_model("frequency_linker", tiny={"k": 4, "train_gold": [[0, 0, 1], [0, 1, 2], [3, 0, 1]]},
                example=_example_ranking, **_FACTS)
def frequency_linker(k: int = 100, pooled: bool = False, train_gold: Any = None) -> FrequencyLinker:
    """Frequency baseline: the training facts' most frequent KG entries per slot."""
    return FrequencyLinker(k, pooled, train_gold)


@register_model("qkv_detector", tiny={"dim": 8}, example=_example_qkv, **_FACTS)
def qkv_detector(dim: int = 200) -> QKVDetector:
    """Out-of-KG detector: per-slot query-key-value attention over the KG entries (identity-initialised)."""
    return QKVDetector(dim)
