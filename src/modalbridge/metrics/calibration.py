"""Calibration: expected calibration error (ECE) and reliability-diagram bins.

Protocol (spec ``distillation.md`` §6): top-label confidence = max softmax probability, ``n_bins``
equal-width bins ``(lo, hi]`` over [0, 1], and

    ECE = sum_k |B_k| / N * |acc(B_k) - conf(B_k)|,   reported x100.

A confidence of exactly 0 is put in the first bin (it cannot occur for a softmax top label).

Two call forms, chosen by keyword so a 1-D tensor is never guessed at:

- ``expected_calibration_error(probs, targets)`` -- ``probs (N, C)`` probabilities and integer
  ``targets (N,)``; confidence = ``max(probs)``, correct = ``argmax(probs) == target``.
- ``expected_calibration_error(confidences=conf, correct=hit)`` -- ``(N,)`` confidences in [0, 1]
  and ``(N,)`` bool (or 0/1) correctness.

>>> expected_calibration_error(confidences=[0.9, 0.8, 0.6, 0.55], correct=[1, 0, 1, 1])
43.75
"""

from __future__ import annotations

from typing import Any

import torch

from modalbridge.metrics.classification import as_tensor

__all__ = ["action_ece", "expected_calibration_error", "reliability_bins"]


_TOL = 1e-6  # float32 rounding slack on the [0, 1] range check


def _check_probs(probs: torch.Tensor, name: str) -> None:
    if probs.ndim != 2 or probs.shape[0] == 0:
        raise ValueError(f"{name} must have shape (N, C) with N > 0, got {tuple(probs.shape)}")
    if probs.min() < -_TOL or probs.max() > 1 + _TOL:
        raise ValueError(f"{name} must be probabilities in [0, 1] (apply softmax to logits first)")


def _top_label(probs: Any, targets: Any, name: str = "probs") -> tuple[torch.Tensor, torch.Tensor]:
    """``(N, C)`` probabilities and ``(N,)`` targets -> ``(N,)`` top-label confidence and correctness."""
    probs, targets = as_tensor(probs).double(), as_tensor(targets)
    _check_probs(probs, name)
    if targets.shape != probs.shape[:1] or targets.dtype.is_floating_point:
        raise ValueError(f"targets for {name} must be integer class ids of shape ({probs.shape[0]},)")
    conf, pred = probs.topk(1, dim=1)
    return conf[:, 0].clamp(0.0, 1.0), pred[:, 0] == targets.to(pred.device).long()


def _confidences_and_correct(
    probs: Any, targets: Any, confidences: Any, correct: Any
) -> tuple[torch.Tensor, torch.Tensor]:
    """Resolve the two call forms into ``(N,)`` float64 confidences and ``(N,)`` bool correctness."""
    if probs is not None or targets is not None:
        if confidences is not None or correct is not None:
            raise ValueError("pass either probs and targets, or confidences= and correct=, not both")
        if probs is None or targets is None:
            raise ValueError("probs and targets must be given together")
        if as_tensor(probs).ndim != 2:
            raise ValueError("probs must have shape (N, C); for (N,) confidences call with "
                             "confidences=... and correct=... keywords")
        return _top_label(probs, targets)
    if confidences is None or correct is None:
        raise ValueError("pass probs and targets, or confidences= and correct=")
    conf, hit = as_tensor(confidences).double(), as_tensor(correct)
    if conf.ndim != 1 or conf.shape != hit.shape or conf.numel() == 0:
        raise ValueError(f"confidences and correct must have the same shape (N,), N > 0; got "
                         f"{tuple(conf.shape)} and {tuple(hit.shape)}")
    if conf.min() < -_TOL or conf.max() > 1 + _TOL:
        raise ValueError("confidences must lie in [0, 1]")
    conf = conf.clamp(0.0, 1.0)
    if not hit.dtype == torch.bool:
        if ((hit != 0) & (hit != 1)).any():
            raise ValueError("correct must be bool or 0/1")
        hit = hit != 0
    return conf, hit.to(conf.device)


def _bin_sums(conf: torch.Tensor, hit: torch.Tensor, n_bins: int) -> tuple[torch.Tensor, ...]:
    """Per-bin count, sum of correctness and sum of confidence; bins are ``(lo, hi]``."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    # k / n_bins by correctly rounded division (not linspace), so a confidence computed as k / n_bins
    # lies exactly on the edge and falls in the bin below, as (lo, hi] says
    edges = torch.arange(n_bins + 1, dtype=torch.float64, device=conf.device) / n_bins
    # bucketize(right=False) returns i with edges[i-1] < x <= edges[i]  ->  the (lo, hi] bin
    idx = torch.bucketize(conf, edges[1:-1], right=False)
    count = torch.bincount(idx, minlength=n_bins).double()
    acc_sum = torch.bincount(idx, weights=hit.double(), minlength=n_bins)
    conf_sum = torch.bincount(idx, weights=conf, minlength=n_bins)
    return edges, count, acc_sum, conf_sum


def expected_calibration_error(
    probs: Any = None,
    targets: Any = None,
    *,
    confidences: Any = None,
    correct: Any = None,
    n_bins: int = 15,
) -> float:
    """Expected calibration error of the top label, x100 (see the module docstring for both call forms).

    Args:
        probs: ``(N, C)`` probabilities (not logits).
        targets: ``(N,)`` integer class ids.
        confidences: ``(N,)`` confidences in [0, 1] (keyword only).
        correct: ``(N,)`` bool or 0/1 correctness (keyword only).
        n_bins: number of equal-width bins over [0, 1].

    Returns:
        ECE in percent; 0 for perfectly calibrated predictions.
    """
    return reliability_bins(probs, targets, confidences=confidences, correct=correct, n_bins=n_bins)["ece"]


def reliability_bins(
    probs: Any = None,
    targets: Any = None,
    *,
    confidences: Any = None,
    correct: Any = None,
    n_bins: int = 15,
) -> dict[str, Any]:
    """Per-bin statistics for a reliability diagram (same inputs as :func:`expected_calibration_error`,
    which is this function's ``ece``, so the diagram and the number share one binning).

    Returns:
        ``edges`` ``(n_bins + 1,)``; ``count`` ``(n_bins,)`` samples per bin; ``accuracy`` and
        ``confidence`` ``(n_bins,)`` mean correctness and mean confidence per bin, as fractions in
        [0, 1], NaN for empty bins (plotting libraries skip NaN); ``ece`` (float, percent).
        Tensors are float64.
    """
    conf, hit = _confidences_and_correct(probs, targets, confidences, correct)
    edges, count, acc_sum, conf_sum = _bin_sums(conf, hit, n_bins)
    nonempty = count > 0
    nan = torch.full_like(count, float("nan"))
    return {
        "edges": edges,
        "count": count,
        "accuracy": torch.where(nonempty, acc_sum / count.clamp(min=1), nan),
        "confidence": torch.where(nonempty, conf_sum / count.clamp(min=1), nan),
        # |B|/N * |acc(B) - conf(B)| = |sum_B(correct) - sum_B(conf)| / N
        "ece": ((acc_sum - conf_sum).abs().sum() / conf.numel()).item() * 100.0,
    }


def action_ece(
    verb_probs: Any,
    noun_probs: Any,
    verb_targets: Any,
    noun_targets: Any,
    n_bins: int = 15,
) -> float:
    """ECE (x100) of the EPIC-KITCHENS action, derived from the verb and noun heads.

    The spec asks for ECE per head including the action but there is no action head, so this is
    our definition: action confidence = ``max(verb_probs) * max(noun_probs)`` (the probability of
    the predicted (verb, noun) pair if the heads were independent) and action correct = verb AND
    noun top-1 correct (as in :func:`~modalbridge.metrics.classification.action_accuracy`).

    Args:
        verb_probs: ``(N, Cv)`` probabilities; noun_probs: ``(N, Cn)``; verb_targets, noun_targets: ``(N,)``.
        n_bins: number of equal-width bins over [0, 1].
    """
    verb_conf, verb_hit = _top_label(verb_probs, verb_targets, "verb_probs")
    noun_conf, noun_hit = _top_label(noun_probs, noun_targets, "noun_probs")
    if verb_conf.shape != noun_conf.shape:
        raise ValueError(f"verb and noun inputs disagree on N: {verb_conf.shape[0]} vs {noun_conf.shape[0]}")
    return expected_calibration_error(
        confidences=verb_conf * noun_conf.to(verb_conf.device),
        correct=verb_hit & noun_hit.to(verb_hit.device),
        n_bins=n_bins,
    )
