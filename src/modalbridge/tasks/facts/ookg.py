"""Out-of-KG detection (spec ``fact_linking.md`` §3.6, §4): does a slot's concept exist in the KG at all?

All detectors sit on a frozen pre-ranker (:class:`~.models.SlotLinker`) and decide per slot; True = in-KG.

* **Confidence@1** — p = softmax of the top-5 pre-ranker cosines c1…c5 (no temperature); in-KG iff max p ≥ θc.
* **Entropy** — H = −Σ p ln p in nats (uniform top-5: ln 5 ≈ 1.609, the maximum); in-KG iff H ≤ θH.
  Thresholds per slot, grid-searched on a hold-out by :func:`tune_threshold` (macro in/out accuracy). The
  reference's hard-coded values (:data:`REFERENCE_THRESHOLDS`) were tuned for its slot-axis-normalised vectors
  and do not transfer to this package's per-vector normalisation.
* **QKV** cross-attention (:class:`QKVDetector`) — for slot i with vector o_i and the KG vectors K of its type
  (entities for s and o, predicates for r): a_i = softmax((W_q^i o_i)(W_k K)^T)(W_v K), h_i = o_i + a_i,
  score_i = mean_j h_i · k_j over the raw KG vectors, P(in-KG) = σ(score_i). All maps are Linear(D, D)
  initialised to the identity (zero bias). Training (§4): the KG of each batch is ``e`` random entities and
  ``p`` random predicates (not batch golds) plus every batch gold kept with probability 0.5; a slot's label is
  1 iff its gold was kept (:func:`qkv_kg_sample`); loss = mean over slots of BCE with logits (:func:`qkv_loss`).
* **Random** — a fair coin per slot (:func:`random_in_kg`): 50 % per slot, 12.5 % per fact on the protocol of
  :func:`~.metrics.ookg_metrics`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .losses import _join, _rng, sample_others

__all__ = ["REFERENCE_THRESHOLDS", "QKVDetector", "confidence_in_kg", "confidence_scores", "entropy_in_kg",
           "entropy_scores", "qkv_kg_sample", "qkv_loss", "random_in_kg", "top_softmax", "tune_threshold"]

#: the reference code's hard-coded thresholds per slot (s, r, o) — for comparison only (module docstring)
REFERENCE_THRESHOLDS = {"entropy": (1.60, 1.58, 1.60), "confidence": (0.235, 0.260, 0.235)}


def top_softmax(top5: Any) -> np.ndarray:
    """``(..., k)`` top-k cosines (k = 5 in the thesis; numpy or torch) → their softmax over the last axis
    (float64)."""
    if isinstance(top5, torch.Tensor):
        top5 = top5.detach().cpu().numpy()
    c = np.asarray(top5, dtype=np.float64)
    if c.ndim == 0 or c.shape[-1] < 2:
        raise ValueError(f"expected (..., k >= 2) top-k scores, got shape {c.shape}")
    if not np.isfinite(c).all():
        raise ValueError("top-k scores hold NaN or inf (an index padded with missing results?)")
    z = np.exp(c - c.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


def confidence_scores(top5: Any) -> np.ndarray:
    """``(...)`` max softmax probability of the top-k cosines (in [1/k, 1])."""
    return top_softmax(top5).max(-1)


def entropy_scores(top5: Any) -> np.ndarray:
    """``(...)`` entropy in nats of the softmax of the top-k cosines (in [0, ln k])."""
    p = top_softmax(top5)
    return -(p * np.log(np.clip(p, 1e-300, None))).sum(-1)


def confidence_in_kg(top5: Any, threshold: Any) -> np.ndarray:
    """``(...)`` bool: in-KG iff the confidence ≥ ``threshold`` (a number, or per slot (3,) for (n, 3, k)
    input)."""
    return confidence_scores(top5) >= np.asarray(threshold, dtype=np.float64)


def entropy_in_kg(top5: Any, threshold: Any) -> np.ndarray:
    """``(...)`` bool: in-KG iff the entropy ≤ ``threshold`` (nats; a number or per slot (3,))."""
    return entropy_scores(top5) <= np.asarray(threshold, dtype=np.float64)


def random_in_kg(shape: int | Sequence[int], rng: np.random.Generator | int | None = None) -> np.ndarray:
    """The Random detector: bool decisions of a fair coin."""
    return _rng(rng).random(shape) < 0.5


def tune_threshold(scores: Any, in_kg: Any, higher_is_in: bool = True,
                   grid: Sequence[float] | None = None) -> tuple[float, float]:
    """Grid-search the threshold that maximises the macro in/out accuracy ``(acc_in + acc_out) / 2`` (%).

    Args:
        scores: ``(n,)`` detector scores of one slot (confidence: ``higher_is_in=True``, in-KG iff score ≥ θ;
            entropy: ``higher_is_in=False``, in-KG iff score ≤ θ).
        in_kg: ``(n,)`` bool truth (both classes must occur).
        grid: thresholds to try; default the exact search — the midpoints between consecutive distinct scores
            and one value beyond each end.

    Returns:
        ``(threshold, macro accuracy %)``; the first best threshold of the grid (ascending) on a tie.
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    y = np.asarray(in_kg).reshape(-1).astype(bool)
    if s.shape != y.shape:
        raise ValueError(f"scores ({s.size}) and in_kg ({y.size}) differ in length")
    if not np.isfinite(s).all():
        raise ValueError("scores hold NaN or inf")
    if y.all() or not y.any():
        raise ValueError("tune_threshold needs both in-KG and out-of-KG examples")
    if grid is None:
        u = np.unique(s)
        grid = np.concatenate([[u[0] - 1.0], (u[1:] + u[:-1]) / 2, [u[-1] + 1.0]])
    theta = np.sort(np.asarray(grid, dtype=np.float64).reshape(-1))
    inside, outside = np.sort(s[y]), np.sort(s[~y])
    if higher_is_in:  # in iff s >= θ
        acc_in = 1 - np.searchsorted(inside, theta, "left") / inside.size
        acc_out = np.searchsorted(outside, theta, "left") / outside.size
    else:  # in iff s <= θ
        acc_in = np.searchsorted(inside, theta, "right") / inside.size
        acc_out = 1 - np.searchsorted(outside, theta, "right") / outside.size
    macro = 50.0 * (acc_in + acc_out)
    best = int(np.argmax(macro))
    return float(theta[best]), float(macro[best])


def _identity_linear(dim: int) -> nn.Linear:
    layer = nn.Linear(dim, dim)
    with torch.no_grad():
        layer.weight.copy_(torch.eye(dim))
        layer.bias.zero_()
    return layer


class QKVDetector(nn.Module):
    """QKV cross-attention out-of-KG detector (module docstring): per-slot query maps ``w_q[0..2]`` (s, r, o),
    key/value maps ``w_k_entity``, ``w_v_entity``, ``w_k_predicate``, ``w_v_predicate``; all identity-initialised
    ``Linear(dim, dim)``."""

    kind = "qkv"

    def __init__(self, dim: int = 200):
        super().__init__()
        if dim < 1:
            raise ValueError(f"dim must be positive, got {dim}")
        self.dim = int(dim)
        self.w_q = nn.ModuleList(_identity_linear(self.dim) for _ in range(3))
        self.w_k_entity, self.w_v_entity = _identity_linear(self.dim), _identity_linear(self.dim)
        self.w_k_predicate, self.w_v_predicate = _identity_linear(self.dim), _identity_linear(self.dim)

    def _slot(self, slot: int, o: torch.Tensor, kg: torch.Tensor, w_k: nn.Linear, w_v: nn.Linear) -> torch.Tensor:
        attention = torch.softmax(self.w_q[slot](o) @ w_k(kg).T, dim=-1)  # (B, N)
        h = o + attention @ w_v(kg)  # (B, D)
        return h @ kg.mean(0)  # mean_j h · k_j over the raw KG vectors

    def forward(self, query: Any, entity_kg: torch.Tensor | None = None,
                predicate_kg: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, 3)`` fp32 logits (P(in-KG) = σ) from the pre-ranker's slot vectors ``query`` (B, 3, dim) and the
        current KG's entity (Ne, dim) and predicate (Np, dim) vectors (memory B × N per slot); also takes one dict
        with the keys ``query``, ``entity_kg``, ``predicate_kg``."""
        if isinstance(query, dict):
            query, entity_kg, predicate_kg = query["query"], query["entity_kg"], query["predicate_kg"]
        if query.ndim != 3 or query.shape[1:] != (3, self.dim) or entity_kg.shape[-1] != self.dim \
                or predicate_kg.shape[-1] != self.dim or len(entity_kg) == 0 or len(predicate_kg) == 0:
            raise ValueError(f"expected query (B, 3, {self.dim}), entity_kg (Ne > 0, {self.dim}) and predicate_kg "
                             f"(Np > 0, {self.dim}); got {tuple(query.shape)}, {tuple(entity_kg.shape)} and "
                             f"{tuple(predicate_kg.shape)}")
        q, ents, preds = query.float(), entity_kg.float(), predicate_kg.float()
        return torch.stack([self._slot(0, q[:, 0], ents, self.w_k_entity, self.w_v_entity),
                            self._slot(1, q[:, 1], preds, self.w_k_predicate, self.w_v_predicate),
                            self._slot(2, q[:, 2], ents, self.w_k_entity, self.w_v_entity)], dim=1)

    def in_kg(self, query: torch.Tensor, entity_kg: torch.Tensor, predicate_kg: torch.Tensor) -> torch.Tensor:
        """``(B, 3)`` bool decisions: P(in-KG) > 0.5."""
        return self(query, entity_kg, predicate_kg) > 0


def qkv_kg_sample(gold: Any, entity_ids: Sequence[Any] | np.ndarray | int,
                  predicate_ids: Sequence[Any] | np.ndarray | int, e: int = 256, p: int = 32, keep: float = 0.5,
                  rng: np.random.Generator | int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One QKV training batch's KG and labels (§4).

    Args:
        gold: ``(B, 3)`` gold fact ids of the batch.
        entity_ids, predicate_ids: the KG's ids, or their counts (``int``: row numbers).
        e, p: random non-gold entities / predicates in the batch's KG.
        keep: probability that each distinct batch gold is in the batch's KG.

    Returns:
        ``(entities (Ne,), predicates (Np,), labels (B, 3) float32)`` — the kept golds then the random ids; a
        slot's label is 1 iff its gold was kept (a gold shared by two rows or slots is kept or dropped once).
    """
    gold = np.asarray(gold)
    if gold.ndim != 2 or gold.shape[1] != 3:
        raise ValueError(f"gold must be (B, 3) [subject, predicate, object] ids, got shape {gold.shape}")
    rng = _rng(rng)
    ent_gold = np.unique(np.concatenate([gold[:, 0], gold[:, 2]]))
    pred_gold = np.unique(gold[:, 1])
    ent_kept = ent_gold[rng.random(ent_gold.size) < keep]
    pred_kept = pred_gold[rng.random(pred_gold.size) < keep]
    entities = _join(ent_kept, sample_others(entity_ids, ent_gold, e, rng))
    predicates = _join(pred_kept, sample_others(predicate_ids, pred_gold, p, rng))
    labels = np.stack([np.isin(gold[:, 0], ent_kept), np.isin(gold[:, 1], pred_kept),
                       np.isin(gold[:, 2], ent_kept)], axis=1)
    return entities, predicates, labels.astype(np.float32)


def qkv_loss(logits: torch.Tensor, labels: Any) -> torch.Tensor:
    """Mean over the slots (and batch) of BCE with logits; ``logits``, ``labels`` (B, 3)."""
    labels = torch.as_tensor(labels, device=logits.device).float()
    if logits.shape != labels.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and labels {tuple(labels.shape)} differ in shape")
    return F.binary_cross_entropy_with_logits(logits.float(), labels)
