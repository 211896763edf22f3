"""Classification metrics: top-k, EPIC-KITCHENS action accuracy, mean-class accuracy, baselines.

Every function takes torch tensors (numpy arrays and lists are converted), works on whole batches
without Python loops over samples, and returns Python floats in **percent** (0-100).

Conventions
-----------
- ``logits`` are scores of shape ``(N, C)``; any monotone transform (probabilities, log-probs) gives
  the same result. ``targets`` are integer class ids of shape ``(N,)``.
- Top-k uses :func:`torch.topk`, so ties between equal scores are resolved by ``topk``'s order
  (spec ``layout_fusion.md`` §6). Top-1 is ``topk(k=1)`` rather than ``argmax`` for the same reason.
- ``k`` larger than the number of classes is clipped to ``C`` (top-k then equals 100 %).
- Empty inputs raise :class:`ValueError`: an accuracy of nothing is undefined.

>>> import torch
>>> logits = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1]])
>>> topk_accuracy(logits, torch.tensor([1, 2]), ks=(1, 2))
{1: 50.0, 2: 50.0}
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch

__all__ = [
    "action_accuracy",
    "as_tensor",
    "binomial_stderr",
    "epic_metrics",
    "majority_baseline",
    "mean_class_accuracy",
    "per_class_accuracy",
    "topk_accuracy",
    "topk_correct",
]


def as_tensor(x: Any) -> torch.Tensor:
    """Return ``x`` as a torch tensor (tensors unchanged; numpy arrays and lists are converted, float64 kept)."""
    if isinstance(x, torch.Tensor):
        return x
    # lists go through numpy so Python floats stay float64 (torch.as_tensor would make float32)
    return torch.from_numpy(np.ascontiguousarray(np.asarray(x)))


def _check_logits_targets(logits: Any, targets: Any) -> tuple[torch.Tensor, torch.Tensor]:
    logits, targets = as_tensor(logits), as_tensor(targets)
    if logits.ndim != 2:
        raise ValueError(f"logits must have shape (N, C), got {tuple(logits.shape)}")
    if targets.ndim != 1 or targets.shape[0] != logits.shape[0]:
        raise ValueError(f"targets must have shape (N,) = ({logits.shape[0]},), got {tuple(targets.shape)}")
    if logits.shape[0] == 0:
        raise ValueError("cannot compute an accuracy on zero samples")
    if targets.dtype.is_floating_point or targets.dtype == torch.bool:
        raise ValueError(f"targets must be integer class ids, got dtype {targets.dtype}")
    targets = targets.to(device=logits.device, dtype=torch.long)
    if targets.min() < 0 or targets.max() >= logits.shape[1]:
        raise ValueError(f"targets must lie in [0, {logits.shape[1]}), got range "
                         f"[{int(targets.min())}, {int(targets.max())}]")
    return logits, targets


def _percent(mask: torch.Tensor) -> float:
    """Mean of a boolean tensor, in percent."""
    return mask.double().mean().item() * 100.0


def topk_correct(logits: Any, targets: Any, k: int) -> torch.Tensor:
    """Whether each target is among the ``k`` highest scores.

    Args:
        logits: ``(N, C)`` scores.
        targets: ``(N,)`` integer class ids.
        k: how many top classes count as a hit; clipped to ``C``.

    Returns:
        ``(N,)`` bool tensor on ``logits``' device.
    """
    logits, targets = _check_logits_targets(logits, targets)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    top = logits.topk(min(k, logits.shape[1]), dim=1).indices  # (N, k)
    return (top == targets[:, None]).any(dim=1)


def topk_accuracy(logits: Any, targets: Any, ks: Iterable[int] = (1, 5)) -> dict[int, float]:
    """Top-k accuracy for each ``k`` in ``ks``, in percent.

    Args:
        logits: ``(N, C)`` scores.
        targets: ``(N,)`` integer class ids.
        ks: the ``k`` values; each is clipped to ``C`` (the key stays the requested ``k``).

    Returns:
        ``{k: accuracy}``.
    """
    logits, targets = _check_logits_targets(logits, targets)
    ks = tuple(ks)
    if not ks or min(ks) < 1:
        raise ValueError(f"ks must be non-empty positive integers, got {ks}")
    # one topk call for the largest k; the first k columns are the top-k for smaller k
    top = logits.topk(min(max(ks), logits.shape[1]), dim=1).indices  # (N, kmax)
    hits = top == targets[:, None]
    return {k: _percent(hits[:, :k].any(dim=1)) for k in ks}


def action_accuracy(verb_logits: Any, noun_logits: Any, verb_targets: Any, noun_targets: Any) -> float:
    """EPIC-KITCHENS action top-1: fraction of samples with BOTH verb and noun top-1 correct, in percent.

    There is no joint action head (spec ``distillation.md`` §6).

    Args:
        verb_logits: ``(N, Cv)``; noun_logits: ``(N, Cn)``; verb_targets, noun_targets: ``(N,)``.
    """
    both = topk_correct(verb_logits, verb_targets, 1) & topk_correct(noun_logits, noun_targets, 1).to(
        as_tensor(verb_logits).device)
    return _percent(both)


def per_class_accuracy(logits: Any, targets: Any, num_classes: int | None = None) -> torch.Tensor:
    """Top-1 recall of every class, in percent; NaN for classes absent from ``targets``.

    Args:
        logits: ``(N, C)`` scores, or ``(N,)`` integer predicted class ids.
        targets: ``(N,)`` integer class ids.
        num_classes: number of classes; defaults to ``C`` for logits, else ``max(pred, target) + 1``.

    Returns:
        ``(num_classes,)`` float64 tensor.
    """
    logits, targets = as_tensor(logits), as_tensor(targets)
    if logits.ndim == 2:
        logits, targets = _check_logits_targets(logits, targets)
        preds = logits.topk(1, dim=1).indices[:, 0]
        num_classes = num_classes or logits.shape[1]
    elif logits.ndim == 1:
        if logits.dtype.is_floating_point or targets.shape != logits.shape or logits.numel() == 0:
            raise ValueError("with 1-D input, pass integer predictions and targets of the same shape (N,), N > 0")
        preds, targets = logits.long(), targets.to(logits.device).long()
        num_classes = num_classes or int(max(preds.max(), targets.max())) + 1
    else:
        raise ValueError(f"logits must have shape (N, C) or (N,), got {tuple(logits.shape)}")
    support = torch.bincount(targets, minlength=num_classes).double()
    hits = torch.bincount(targets, weights=(preds == targets).double(), minlength=num_classes)
    return torch.where(support > 0, hits / support.clamp(min=1) * 100.0, torch.full_like(support, math.nan))


def mean_class_accuracy(logits: Any, targets: Any, num_classes: int | None = None) -> float:
    """Mean over classes present in ``targets`` of the per-class top-1 recall, in percent.

    Equals scikit-learn's ``balanced_accuracy_score``. See :func:`per_class_accuracy` for the inputs.
    """
    return per_class_accuracy(logits, targets, num_classes).nanmean().item()


def epic_metrics(
    verb_logits: Any,
    noun_logits: Any,
    verb_targets: Any,
    noun_targets: Any,
    masks: Mapping[str, Any] | None = None,
) -> dict[str, float]:
    """All EPIC-KITCHENS accuracies for one evaluation, in percent.

    Args:
        verb_logits: ``(N, Cv)``; noun_logits: ``(N, Cn)``; verb_targets, noun_targets: ``(N,)``.
        masks: optional subsets of the samples, ``{name: (N,) bool}`` (e.g. ``"unseen"``, ``"tail"``).

    Returns:
        ``verb_top1``, ``verb_top5``, ``noun_top1``, ``noun_top5``, ``action_top1`` over all samples and,
        for each mask ``m`` selecting at least one sample, ``m/verb_top1``, ``m/noun_top1``,
        ``m/action_top1``. Empty masks are skipped, so no value is NaN.
    """
    vl, vt = _check_logits_targets(verb_logits, verb_targets)
    nl, nt = _check_logits_targets(noun_logits, noun_targets)
    if vl.shape[0] != nl.shape[0]:
        raise ValueError(f"verb and noun inputs disagree on N: {vl.shape[0]} vs {nl.shape[0]}")
    verb_hits = vl.topk(min(5, vl.shape[1]), dim=1).indices == vt[:, None]  # (N, k)
    noun_hits = (nl.topk(min(5, nl.shape[1]), dim=1).indices == nt[:, None]).to(vl.device)
    verb1, noun1 = verb_hits[:, 0], noun_hits[:, 0]
    action1 = verb1 & noun1
    out = {
        "verb_top1": _percent(verb1),
        "verb_top5": _percent(verb_hits.any(dim=1)),
        "noun_top1": _percent(noun1),
        "noun_top5": _percent(noun_hits.any(dim=1)),
        "action_top1": _percent(action1),
    }
    for name, mask in (masks or {}).items():
        mask = as_tensor(mask).to(vl.device)
        if mask.dtype != torch.bool or mask.shape != verb1.shape:
            raise ValueError(f"mask {name!r} must be a bool tensor of shape ({vl.shape[0]},), "
                             f"got {mask.dtype} {tuple(mask.shape)}")
        if not mask.any():
            continue
        out[f"{name}/verb_top1"] = _percent(verb1[mask])
        out[f"{name}/noun_top1"] = _percent(noun1[mask])
        out[f"{name}/action_top1"] = _percent(action1[mask])
    return out


def majority_baseline(train_targets: Any, eval_targets: Any) -> float:
    """Accuracy (percent) on ``eval_targets`` of always predicting the most frequent training class.

    Ties between equally frequent classes go to the smallest class id.

    Args:
        train_targets: ``(N_train,)`` integer class ids; eval_targets: ``(N_eval,)``.
    """
    train, evals = as_tensor(train_targets).long(), as_tensor(eval_targets).long()
    if train.numel() == 0 or evals.numel() == 0:
        raise ValueError("majority_baseline needs non-empty train and eval targets")
    majority = torch.bincount(train.flatten()).argmax()
    return _percent(evals.flatten() == majority.to(evals.device))


def binomial_stderr(percent: float, n: int) -> float:
    """Standard error ``sqrt(p (100 - p) / n)`` of an accuracy ``p`` in percent measured on ``n`` samples.

    The reference implementation prints accuracies as ``p ± binomial_stderr(p, n)``.

    >>> binomial_stderr(50.0, 100)
    5.0
    """
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    return math.sqrt(percent * (100.0 - percent) / n)


def score_classification(logits: Mapping[str, Any], targets: Mapping[str, Any], *, ks: Iterable[int] = (1, 5),
                         ece_bins: int = 15, masks: Mapping[str, Any] | None = None) -> dict[str, float]:
    """The scoring every classifier of the library reports (engine, demo, studies): per head ``h`` of
    ``logits`` (``(N, C)``, scored against ``targets[h]``; extra heads scored against ``targets[base]`` where
    ``h`` is ``base_<suffix>``) ``h_top<k>`` and ``h_ece`` (%, ``ece_bins`` bins); where a ``verb`` and a
    ``noun`` head are both there, the EPIC-KITCHENS action (verb∧noun) ``action_top1`` / ``action_ece`` and,
    per mask of ``masks`` (``{name: (N,) bool}``, e.g. unseen participants), ``name/{verb,noun,action}_top1``.
    """
    from modalbridge.metrics.calibration import action_ece, expected_calibration_error

    ks = tuple(ks)
    out: dict[str, float] = {}
    for h, z in logits.items():
        base = h if h in targets else next((t for t in targets if h.startswith(t + "_")), None)
        if base is None:
            raise KeyError(f"no targets for head {h!r} (targets: {sorted(targets)})")
        acc = topk_accuracy(z, targets[base], ks=ks)
        out.update({f"{h}_top{k}": acc[k] for k in ks})
        if h == base:
            out[f"{h}_ece"] = expected_calibration_error(as_tensor(z).softmax(-1), targets[h], n_bins=ece_bins)
    if "verb" in logits and "noun" in logits:
        args = (logits["verb"], logits["noun"], targets["verb"], targets["noun"])
        out["action_top1"] = action_accuracy(*args)
        out["action_ece"] = action_ece(as_tensor(logits["verb"]).softmax(-1), as_tensor(logits["noun"]).softmax(-1),
                                       targets["verb"], targets["noun"], n_bins=ece_bins)
        if masks:
            split = epic_metrics(*args, masks=masks)
            out.update({k: v for k, v in split.items() if "/" in k})
    return out
