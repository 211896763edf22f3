"""Training objectives of the fact linkers (spec ``fact_linking.md`` §4).

* :func:`candidate_pools` — the per-batch candidate pools of the pre-ranker: the entity pool is the batch's
  de-duplicated gold subjects and objects (one pool shared by the s and o slots, so a gold of another row is
  never a false negative of its own) plus ``e`` random KG entities that are not batch golds; the predicate pool
  likewise with ``p`` random predicates. Random negatives come from the whole KG every batch (inference searches
  the whole KG). Defaults e = 256, p = 32 (the reference leaves both unset; the card's estimate).
* :func:`infonce_per_slot` — thesis eq. 5.1: per slot i ∈ {s, r, o} the cross-entropy of the scaled cosines
  ``exp(λ) · ô_i · k̂`` over the slot's pool (entities for s and o, predicates for r), target = the gold's pool
  index; L = mean over the batch of (L_s + L_r + L_o) / 3. With all logits equal each term is ``log |pool|``.
* :func:`rerank_loss` — the cross-encoder's binary cross-entropy with logits (label 1 = the uncorrupted fact).

Ids are whatever the caller uses — Wikidata strings (``"Q41421"``) or integer KG row numbers; a KG given as an
``int`` N means the rows ``0 … N-1`` (no 5.8 M-element id array per batch).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["CandidatePools", "candidate_pools", "infonce_per_slot", "infonce_slot_losses", "rerank_loss",
           "sample_others"]


def _rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _kg_size(ids: Sequence[Any] | np.ndarray | int) -> int:
    return int(ids) if isinstance(ids, (int, np.integer)) else len(ids)


def _take(ids: Sequence[Any] | np.ndarray | int, rows: np.ndarray) -> np.ndarray:
    """``ids[rows]`` for an id array, a plain list (no conversion of a multi-million list) or an ``int`` N."""
    if isinstance(ids, (int, np.integer)):
        return rows.astype(np.int64)
    if isinstance(ids, np.ndarray):
        return ids[rows]
    return np.asarray([ids[i] for i in rows.tolist()])


def _join(golds: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Golds then random others (an empty draw keeps the golds' dtype)."""
    return np.concatenate([golds, others]) if others.size else golds


def sample_others(ids: Sequence[Any] | np.ndarray | int, exclude: Any, n: int,
                  rng: np.random.Generator | int | None = None) -> np.ndarray:
    """Up to ``n`` distinct KG ids drawn uniformly from ``ids`` (a KG's id list, or an ``int`` N for rows
    ``0 … N-1``) that are not in ``exclude``; fewer only when the KG has fewer such ids. O(n + |exclude|)
    work for any KG size (numpy's set-based sampling without replacement)."""
    if n < 0:
        raise ValueError(f"the number of random negatives must be >= 0, got {n}")
    rng = _rng(rng)
    exclude = np.unique(np.asarray(exclude).reshape(-1))
    size = _kg_size(ids)
    if n == 0 or size == 0:
        return _take(ids, np.zeros(0, dtype=np.int64))
    rows = rng.choice(size, size=min(size, n + exclude.size), replace=False)
    picked = _take(ids, rows)
    if exclude.size:
        picked = picked[~np.isin(picked, exclude)]
    return picked[:n]


class CandidatePools(NamedTuple):
    """One batch's pools: ``entities`` (Ne,) and ``predicates`` (Np,) ids — the batch golds first, then the
    random negatives — and ``targets`` (B, 3) int64 pool indices (columns s, o into ``entities``, r into
    ``predicates``)."""

    entities: np.ndarray
    predicates: np.ndarray
    targets: np.ndarray


def candidate_pools(gold: Any, entity_ids: Sequence[Any] | np.ndarray | int,
                    predicate_ids: Sequence[Any] | np.ndarray | int, e: int = 256, p: int = 32,
                    rng: np.random.Generator | int | None = None) -> CandidatePools:
    """The candidate pools of one batch (module docstring).

    Args:
        gold: ``(B, 3)`` gold ``[subject, predicate, object]`` ids of the batch.
        entity_ids, predicate_ids: the KG's entity / predicate ids (sequences or arrays), or their counts
            (``int``: ids are row numbers).
        e, p: random non-gold entities / predicates added per batch.
        rng: a numpy Generator or seed.
    """
    gold = np.asarray(gold)
    if gold.ndim != 2 or gold.shape[1] != 3:
        raise ValueError(f"gold must be (B, 3) [subject, predicate, object] ids, got shape {gold.shape}")
    rng = _rng(rng)
    b = gold.shape[0]
    ent_gold, ent_inverse = np.unique(np.concatenate([gold[:, 0], gold[:, 2]]), return_inverse=True)
    pred_gold, pred_inverse = np.unique(gold[:, 1], return_inverse=True)
    entities = _join(ent_gold, sample_others(entity_ids, ent_gold, e, rng))
    predicates = _join(pred_gold, sample_others(predicate_ids, pred_gold, p, rng))
    ent_inverse = ent_inverse.reshape(-1)
    targets = np.stack([ent_inverse[:b], pred_inverse.reshape(-1), ent_inverse[b:]], axis=1).astype(np.int64)
    return CandidatePools(entities, predicates, targets)


def infonce_slot_losses(q: torch.Tensor, entity_pool: torch.Tensor, predicate_pool: torch.Tensor,
                        targets: torch.Tensor, scale: torch.Tensor | float) -> torch.Tensor:
    """``(3,)`` fp32 batch-mean InfoNCE of the s, r and o slots.

    Args:
        q: ``(B, 3, D)`` L2-normalised slot vectors ô_s, ô_r, ô_o.
        entity_pool: ``(Ne, D)`` L2-normalised entity vectors (shared by the s and o slots).
        predicate_pool: ``(Np, D)`` L2-normalised predicate vectors.
        targets: ``(B, 3)`` long pool indices of the golds (s, o into ``entity_pool``, r into ``predicate_pool``).
        scale: the logit multiplier 1/τ = exp(λ) (:attr:`~.models.SlotLinker.scale`), not λ itself.
    """
    if q.ndim != 3 or q.shape[1] != 3 or entity_pool.ndim != 2 or predicate_pool.ndim != 2 \
            or entity_pool.shape[1] != q.shape[2] or predicate_pool.shape[1] != q.shape[2]:
        raise ValueError("expected q (B, 3, D), entity_pool (Ne, D) and predicate_pool (Np, D); got "
                         f"{tuple(q.shape)}, {tuple(entity_pool.shape)} and {tuple(predicate_pool.shape)}")
    targets = torch.as_tensor(targets, device=q.device).long()
    if targets.shape != q.shape[:2]:
        raise ValueError(f"targets must be (B, 3) pool indices, got shape {tuple(targets.shape)}")
    sizes = torch.tensor([len(entity_pool), len(predicate_pool), len(entity_pool)], device=q.device)
    if bool(((targets < 0) | (targets >= sizes)).any()):
        raise ValueError(f"targets hold pool indices outside the pools (entities {len(entity_pool)}, "
                         f"predicates {len(predicate_pool)})")
    q, entities, predicates = q.float(), entity_pool.float(), predicate_pool.float()
    ent_logits = scale * torch.einsum("bsd,nd->bsn", q[:, [0, 2]], entities)  # (B, 2, Ne)
    pred_logits = scale * q[:, 1] @ predicates.T  # (B, Np)
    subj = F.cross_entropy(ent_logits[:, 0], targets[:, 0])
    obj = F.cross_entropy(ent_logits[:, 1], targets[:, 2])
    rel = F.cross_entropy(pred_logits, targets[:, 1])
    return torch.stack([subj, rel, obj])


def infonce_per_slot(q: torch.Tensor, entity_pool: torch.Tensor, predicate_pool: torch.Tensor,
                     targets: torch.Tensor, scale: torch.Tensor | float) -> torch.Tensor:
    """Scalar pre-ranker loss: the mean over the s, r, o slots of :func:`infonce_slot_losses` (thesis eq. 5.1;
    equal logits give ``(2 log Ne + log Np) / 3``)."""
    return infonce_slot_losses(q, entity_pool, predicate_pool, targets, scale).mean()


def rerank_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Re-ranker loss: mean binary cross-entropy with logits, ``−[y log σ(f) + (1−y) log(1−σ(f))]``.

    Args:
        logits: ``(B,)`` cross-encoder logits f.
        labels: ``(B,)`` 1 for the gold fact, 0 for a corrupted one (:func:`~.models.corrupt_fact`).
    """
    labels = torch.as_tensor(labels, device=logits.device)
    if logits.shape != labels.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and labels {tuple(labels.shape)} differ in shape")
    return F.binary_cross_entropy_with_logits(logits.float(), labels.float())
