"""Training losses of the atlas task (spec ``text2atlas.md`` §3–§4).

* :func:`sod_loss` — the Soft Organ Distance. For sample ``b`` with real target organs ``o`` (``organ_mask``) and
  ``N`` points ``y_{o,i}`` sampled from each organ (normalised space, ``y / CENTER``), ``d_{o,i} = ‖ŷ − y_{o,i}‖₂``:

  ``L_o = Σ_i d_{o,i} · softmax_i(−d_{o,·} / γ_p)`` (a soft minimum of the distances to organ ``o``),
  ``L_b = Σ_o L_o · softmax_o(−L_· / γ_o)`` over the real organs only (a soft minimum over the sample's organs),
  and the batch loss is the mean of ``L_b``. ``min_i d ≤ L_o ≤ mean_i d``; γ → 0 gives the hard minimum, γ → ∞
  the mean. Padded organs get ``−inf`` logits before the organ softmax, so they carry no weight whatever their
  (zero-padded) points are — the reference instead scales their distances by 1e15, which gives a padded organ a
  loss of 0 (and the whole weight) when ŷ is exactly at the origin.
* :func:`mse_point_loss` — the MSE baseline: ``MSE(ŷ, mean of the real sampled points of all target organs)``
  (the reference's mean also counted the zero padding).
* :func:`batch_all_triplet_loss` — the Siamese baseline's batch-all online triplet loss on Euclidean distances
  (positives: samples with identical label rows, i.e. identical organ sets as multi-hot rows).

Distances are in the anisotropic normalised units of the card (``x/165, y/286.5, z/387`` for SIO), so γ is in
those units too. Every loss runs in fp32 (inputs are cast), whatever the autocast precision of the model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["batch_all_triplet_loss", "mse_point_loss", "pairwise_distances", "sod_loss", "sod_per_sample"]


def _check_targets(pred: torch.Tensor, points: torch.Tensor, organ_mask: torch.Tensor) -> None:
    if pred.ndim != 2 or points.ndim != 4 or organ_mask.ndim != 2 or points.shape[-1] != pred.shape[-1] \
            or points.shape[:2] != organ_mask.shape or points.shape[0] != pred.shape[0]:
        raise ValueError("expected pred (B, D), points (B, M, N, D) and organ_mask (B, M); got "
                         f"{tuple(pred.shape)}, {tuple(points.shape)} and {tuple(organ_mask.shape)}")


def sod_per_sample(pred: torch.Tensor, points: torch.Tensor, organ_mask: torch.Tensor, gamma_p: float = 0.1,
                   gamma_o: float = 1.0) -> torch.Tensor:
    """The Soft Organ Distance of every sample (module docstring).

    Args:
        pred: ``(B, 3)`` predicted points ŷ (normalised space).
        points: ``(B, M, N, 3)`` points sampled from each target organ (padded organs: anything finite).
        organ_mask: ``(B, M)`` bool, True for real target organs.
        gamma_p, gamma_o: temperatures of the point and organ soft minima (> 0).

    Returns:
        ``(B,)`` fp32 ``L_b``; a sample without any real organ gets 0 (:func:`sod_loss` leaves it out).
    """
    _check_targets(pred, points, organ_mask)
    if gamma_p <= 0 or gamma_o <= 0:
        raise ValueError(f"temperatures must be positive, got gamma_p={gamma_p}, gamma_o={gamma_o}")
    mask = organ_mask.bool()
    d = torch.linalg.vector_norm(pred.float()[:, None, None, :] - points.float(), dim=-1)  # (B, M, N)
    per_organ = (d * torch.softmax(-d / gamma_p, dim=-1)).sum(-1)  # (B, M) L_o
    has_organ = mask.any(dim=1, keepdim=True)  # (B, 1); an all-padded row would make the softmax NaN
    logits = (-per_organ / gamma_o).masked_fill(~mask, float("-inf")).masked_fill(~has_organ, 0.0)
    weights = torch.softmax(logits, dim=-1) * mask  # (B, M), zero on padded organs
    return (per_organ * weights).sum(-1)


def sod_loss(pred: torch.Tensor, points: torch.Tensor, organ_mask: torch.Tensor, gamma_p: float = 0.1,
             gamma_o: float = 1.0) -> torch.Tensor:
    """Scalar SOD loss: the mean of :func:`sod_per_sample` over the samples with at least one real organ
    (0, still attached to the graph, when there is none)."""
    per_sample = sod_per_sample(pred, points, organ_mask, gamma_p, gamma_o)
    real = organ_mask.bool().any(dim=1)
    return (per_sample * real).sum() / real.sum().clamp(min=1)


def mse_point_loss(pred: torch.Tensor, points: torch.Tensor, organ_mask: torch.Tensor) -> torch.Tensor:
    """``MSE(ŷ, ȳ)`` with ``ȳ`` the mean of the real organs' sampled points (``(B, M, N, 3)``, padding
    excluded), averaged over the coordinates of the samples that have a real organ."""
    _check_targets(pred, points, organ_mask)
    mask = organ_mask.bool()
    weight = mask.float()[..., None, None]  # (B, M, 1, 1)
    count = (mask.sum(dim=1).float() * points.shape[2]).clamp(min=1)  # (B,) real points per sample
    target = (points.float() * weight).sum(dim=(1, 2)) / count[:, None]  # (B, 3)
    real = mask.any(dim=1)
    error = F.mse_loss(pred.float(), target, reduction="none").mean(-1)  # (B,)
    return (error * real).sum() / real.sum().clamp(min=1)


def pairwise_distances(emb: torch.Tensor, eps: float = 1e-16) -> torch.Tensor:
    """``(B, d)`` → ``(B, B)`` Euclidean distances with a finite gradient everywhere (also at distance 0)."""
    sq = emb.pow(2).sum(-1)
    d2 = (sq[:, None] + sq[None, :] - 2.0 * emb @ emb.T).clamp(min=eps)
    return d2.sqrt()


def batch_all_triplet_loss(emb: torch.Tensor, labels: torch.Tensor, margin: float = 2.0) -> torch.Tensor:
    """Batch-all online triplet loss (Siamese baseline, spec §3).

    Every triplet (anchor a, positive p ≠ a with the same label, negative n with another label) of the batch
    contributes ``max(0, d(a, p) − d(a, n) + margin)`` (Euclidean distances); the loss is the mean over the
    triplets whose term is positive (0, attached to the graph, when there is none).

    Args:
        emb: ``(B, d)`` embeddings (L2-normalised by the Siamese model).
        labels: ``(B,)`` class ids, or ``(B, K)`` rows (e.g. the multi-hot organ sets): samples are positives
            of each other when their rows are identical.
        margin: the margin (2.0 in the thesis's recipe, on unit vectors).
    """
    if emb.ndim != 2 or labels.shape[0] != emb.shape[0]:
        raise ValueError(f"expected emb (B, d) and labels (B,) or (B, K); got {tuple(emb.shape)}, "
                         f"{tuple(labels.shape)}")
    flat = labels.reshape(labels.shape[0], -1)
    same = (flat[:, None, :] == flat[None, :, :]).all(-1)  # (B, B)
    eye = torch.eye(len(emb), dtype=torch.bool, device=emb.device)
    positive_pair, negative_pair = same & ~eye, ~same
    d = pairwise_distances(emb.float())
    terms = d[:, :, None] - d[:, None, :] + margin  # (a, p, n)
    valid = positive_pair[:, :, None] & negative_pair[:, None, :]
    terms = F.relu(terms) * valid
    active = (terms > 1e-16).sum()
    return terms.sum() / active.clamp(min=1)
