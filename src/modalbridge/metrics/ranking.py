"""Ranking metrics: average precision, Charades-protocol mAP, recall@k for retrieval.

Average precision follows the Charades protocol (spec ``layout_fusion.md`` §6): sort the samples by
score, descending; ``prec@k = TP(k) / k``; ``AP = (1 / P) * sum of prec@k over the ranks k that hold a
positive``. Without tied scores this equals scikit-learn's ``average_precision_score``; tied scores
are ranked in input order (a stable sort), whereas scikit-learn groups ties into one threshold.

>>> average_precision([0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0])  # (1 + 2/3) / 2
0.8333333333333333
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from modalbridge.metrics.classification import as_tensor

__all__ = ["average_precision", "charades_map", "per_class_average_precision", "recall_at_k"]


def _binary(labels: torch.Tensor, name: str = "labels") -> torch.Tensor:
    if labels.dtype == torch.bool:
        return labels
    if ((labels != 0) & (labels != 1)).any():
        raise ValueError(f"{name} must be bool or 0/1")
    return labels != 0


def per_class_average_precision(scores: Any, labels: Any) -> torch.Tensor:
    """Average precision of every column, as a fraction in [0, 1]; NaN for columns without positives.

    Args:
        scores: ``(N, C)`` scores (higher = more likely positive).
        labels: ``(N, C)`` bool or 0/1 ground truth.

    Returns:
        ``(C,)`` float64 tensor.
    """
    scores, labels = as_tensor(scores), as_tensor(labels)
    if scores.ndim != 2 or labels.shape != scores.shape:
        raise ValueError(f"scores and labels must both have shape (N, C); got {tuple(scores.shape)} "
                         f"and {tuple(labels.shape)}")
    labels = _binary(labels).to(scores.device)
    order = scores.sort(dim=0, descending=True, stable=True).indices  # (N, C)
    ranked = labels.gather(0, order).double()  # ranked[k, c] = label of the k-th best sample for c
    ranks = torch.arange(1, scores.shape[0] + 1, dtype=torch.float64, device=scores.device)[:, None]
    precision_at_k = ranked.cumsum(dim=0) / ranks
    positives = ranked.sum(dim=0)
    ap = (precision_at_k * ranked).sum(dim=0) / positives.clamp(min=1)
    return torch.where(positives > 0, ap, torch.full_like(ap, math.nan))


def average_precision(scores: Any, labels: Any) -> float:
    """Average precision (fraction in [0, 1]) of one ranking; NaN when there is no positive.

    Args:
        scores: ``(N,)`` scores; labels: ``(N,)`` bool or 0/1.
    """
    scores, labels = as_tensor(scores), as_tensor(labels)
    if scores.ndim != 1 or labels.shape != scores.shape:
        raise ValueError(f"scores and labels must both have shape (N,); got {tuple(scores.shape)} "
                         f"and {tuple(labels.shape)}")
    return per_class_average_precision(scores[:, None], labels[:, None])[0].item()


def charades_map(scores: Any, labels: Any) -> float:
    """Charades-protocol mean average precision over classes, in percent.

    Videos whose ground-truth row is all zero are ranked last in every class (the reference gives
    them score -inf); they are then negatives below every positive, so they are simply dropped here.
    The mean is taken over classes with at least one positive: the reference's plain mean turns into
    NaN as soon as one class has no positive; we use ``nanmean`` (spec ``layout_fusion.md`` §6).

    Args:
        scores: ``(N, C)`` scores per video and class.
        labels: ``(N, C)`` bool or 0/1 multi-label ground truth.

    Raises:
        ValueError: if no class has a positive (the mAP is undefined).
    """
    scores, labels = as_tensor(scores), as_tensor(labels)
    if scores.ndim != 2 or labels.shape != scores.shape:
        raise ValueError(f"scores and labels must both have shape (N, C); got {tuple(scores.shape)} "
                         f"and {tuple(labels.shape)}")
    labels = _binary(labels).to(scores.device)
    keep = labels.any(dim=1)
    if not keep.any():
        raise ValueError("charades_map: no class has a positive label, the mAP is undefined")
    return per_class_average_precision(scores[keep], labels[keep]).nanmean().item() * 100.0


def recall_at_k(similarity: Any, positives: Any, ks: Iterable[int] = (1, 5, 10)) -> dict[int, float]:
    """Retrieval recall@k in percent: the share of queries with a positive among their top-k gallery items.

    Args:
        similarity: ``(Nq, Ng)`` query-to-gallery scores (higher = more similar).
        positives: ``(Nq, Ng)`` bool/0-1 relevance, or ``(Nq,)`` integer index of the single relevant
            gallery item of each query.
        ks: the ``k`` values; each is clipped to ``Ng`` (the key stays the requested ``k``).

    Returns:
        ``{k: recall}``. Queries without any positive are left out; ties follow :func:`torch.topk`.
    """
    sim, pos = as_tensor(similarity), as_tensor(positives)
    if sim.ndim != 2 or sim.shape[1] == 0:
        raise ValueError(f"similarity must have shape (Nq, Ng) with Ng > 0, got {tuple(sim.shape)}")
    if pos.ndim == 1 and not pos.dtype.is_floating_point and pos.dtype != torch.bool:
        if pos.shape[0] != sim.shape[0] or pos.min() < 0 or pos.max() >= sim.shape[1]:
            raise ValueError(f"positives as indices must have shape ({sim.shape[0]},) and lie in "
                             f"[0, {sim.shape[1]})")
        pos = torch.nn.functional.one_hot(pos.long(), sim.shape[1]).bool()
    elif pos.shape != sim.shape:
        raise ValueError(f"positives must have shape {tuple(sim.shape)} or ({sim.shape[0]},), "
                         f"got {tuple(pos.shape)}")
    pos = _binary(pos, "positives").to(sim.device)
    ks = tuple(ks)
    if not ks or min(ks) < 1:
        raise ValueError(f"ks must be non-empty positive integers, got {ks}")
    has_pos = pos.any(dim=1)
    if not has_pos.any():
        raise ValueError("recall_at_k: no query has a positive")
    sim, pos = sim[has_pos], pos[has_pos]
    top = sim.topk(min(max(ks), sim.shape[1]), dim=1).indices  # (Nq, kmax)
    hits = pos.gather(1, top)  # hits[q, j]: is the j-th best gallery item of q relevant
    return {k: hits[:, :k].any(dim=1).double().mean().item() * 100.0 for k in ks}
