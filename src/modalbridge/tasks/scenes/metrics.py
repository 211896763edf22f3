"""Scene metrics of SR-BERT (spec §6): absolute and relative similarity, orientation ("flip") accuracy, the
scene-completion protocol, the Text2Scene protocol of Table 3.4, and per-scene summaries with standard errors.

Every function is vectorised over a batch of B scenes with N clip-art slots and a ``(B, N)`` validity mask
(True on real clip-arts, False on padding), takes pixels on the 500×400 canvas and computes in float64.
Coordinates are normalised per axis (x/500, y/400) and distances turned into similarities with the kernel
``exp(−d / (2σ))``, σ = 0.2, the distance *not* squared (as Text2Scene and the reference do):

* **absolute similarity** ``S_abs = (1/N) Σ_i exp(−‖p̂_i − p_i‖ / (2σ))``, computed against the ground truth
  and against the ground truth mirrored (x ← 500 − x); the larger of the two counts. The reference adds
  1e-15 under the square root; so do we (a perfect layout scores 0.99999992, not 1).
* **relative similarity** over ordered pairs i ≠ j of ``exp(−|M_ij − M̂_ij| / (2σ))`` where ``M`` are the
  pairwise normalised distances of the ground truth and ``M̂`` those of the prediction. Two normalisations:
  ``"reference"`` divides the sum by ``(N−1)²`` like the reference (so a perfect layout of N = 6 scores
  6/5 = 1.2 — the number reported in the thesis, ``rel_sim``), ``"mean"`` by ``N(N−1)``, the true mean
  (``rel_sim_mean``, perfect = 1).
* **orientation accuracy** over valid clip-arts; where the mirrored ground truth won S_abs the predicted flips
  are inverted first (the reference's full-decoding rule).

A NaN in a per-scene tensor marks a scene where a metric is undefined (no clip-art; S_rel of a single
clip-art; a completion group the scene lacks; no clip-art common to prediction and ground truth);
:func:`summarise` and :func:`welch_comparison` leave such scenes out.

>>> gt = torch.tensor([[[100., 100.], [300., 200.], [450., 350.]]])
>>> pred = torch.tensor([[[110., 110.], [290., 210.], [450., 350.]]])
>>> mask = torch.ones(1, 3, dtype=torch.bool)
>>> round(float(absolute_similarity(pred, gt, mask)), 6), round(float(relative_similarity(pred, gt, mask)), 6)
(0.94872, 1.41457)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import torch

from modalbridge.metrics.uncertainty import standard_error, welch_t_test
from modalbridge.tasks.scenes import vocab

__all__ = ["SIGMA", "AbsSimilarity", "absolute_similarity", "common_clipart_similarity", "completion_scores",
           "flip_accuracy", "group_mask", "object_precision_recall", "pose_expression_accuracy",
           "relative_similarity", "scene_scores", "summarise", "text2scene_metrics", "welch_comparison"]

SIGMA = 0.2
_EPS = 1e-15  # under the square root, as the reference
_CANVAS = torch.tensor([vocab.CANVAS_W, vocab.CANVAS_H], dtype=torch.float64)

#: (127,) pose / expression of each 1-based clip-art id, −1 for non-people (:func:`vocab.pose_expression`)
_POSE = torch.full((vocab.NUM_CLIPARTS + 1,), -1, dtype=torch.long)
_EXPRESSION = torch.full((vocab.NUM_CLIPARTS + 1,), -1, dtype=torch.long)
for _i in [*vocab.MIKE_IDS, *vocab.JENNY_IDS]:
    _POSE[_i], _EXPRESSION[_i] = vocab.pose_expression(vocab.clipart_name(_i))
#: 1-based ids of the 56 object (non-Mike/Jenny) clip-arts Table 3.4's precision/recall counts
_OBJECT_IDS = torch.tensor(vocab.OBJECT_INDICES, dtype=torch.long) + 1


class AbsSimilarity(NamedTuple):
    """:func:`absolute_similarity` with ``return_mirrored=True``: ``score`` (B,) float64 and ``mirrored`` (B,)
    bool, True where the mirrored ground truth scored strictly higher."""

    score: torch.Tensor
    mirrored: torch.Tensor


def _f64(t) -> torch.Tensor:
    return torch.as_tensor(t).to(torch.float64)


def _mask(mask) -> torch.Tensor:
    return torch.as_tensor(mask).bool()


def _normalised(px) -> torch.Tensor:
    """(…, 2) pixels → (…, 2) canvas units (x/500, y/400)."""
    p = _f64(px)
    return p / _CANVAS.to(p.device)


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, N) values, (B, N) bool → (B,) mean over the True entries (NaN where there are none)."""
    return (values * mask).sum(-1) / mask.sum(-1)


def _kernel(distance: torch.Tensor, sigma: float) -> torch.Tensor:
    return torch.exp(-distance / (2 * sigma))


def _point_similarity(pred_px, gt_px, sigma: float) -> torch.Tensor:
    """(B, N, 2), (B, N, 2) pixels → (B, N) per-clip-art ``exp(−d/(2σ))``."""
    d = torch.sqrt(((_normalised(pred_px) - _normalised(gt_px)) ** 2).sum(-1) + _EPS)
    return _kernel(d, sigma)


def _mirror(px) -> torch.Tensor:
    """Mirror pixels about the vertical centre line of the canvas: x ← 500 − x."""
    out = _f64(px).clone()
    out[..., 0] = vocab.CANVAS_W - out[..., 0]
    return out


def absolute_similarity(pred_px, gt_px, mask, *, mirror: bool = True, sigma: float = SIGMA,
                        return_mirrored: bool = False):
    """S_abs per scene.

    ``pred_px``, ``gt_px``: (B, N, 2) pixel centres; ``mask``: (B, N) bool. Returns (B,) float64, or an
    :class:`AbsSimilarity` ``(score, mirrored)`` when ``return_mirrored``. With ``mirror`` the score is the
    max of the similarity to the ground truth and to its mirror image; ``mirrored`` is True where the mirror
    was strictly better (the reference breaks exact ties towards the mirror; ties need an exactly symmetric
    scene). Without ``mirror``, ``mirrored`` is all False.
    """
    mask = _mask(mask)
    straight = _masked_mean(_point_similarity(pred_px, gt_px, sigma), mask)
    if mirror:
        flipped = _masked_mean(_point_similarity(pred_px, _mirror(gt_px), sigma), mask)
        mirrored = flipped > straight
        score = torch.where(mirrored, flipped, straight)
    else:
        mirrored = torch.zeros_like(straight, dtype=torch.bool)
        score = straight
    return AbsSimilarity(score, mirrored) if return_mirrored else score


def _pairwise_distance(px) -> torch.Tensor:
    """(B, N, 2) pixels → (B, N, N) normalised Euclidean distances (1e-15 under the root)."""
    p = _normalised(px)
    return torch.sqrt(((p[:, :, None, :] - p[:, None, :, :]) ** 2).sum(-1) + _EPS)


def _pair_similarity(pred_px, gt_px, sigma: float) -> torch.Tensor:
    """(B, N, N): ``exp(−|M_ij − M̂_ij| / (2σ))``."""
    return _kernel((_pairwise_distance(gt_px) - _pairwise_distance(pred_px)).abs(), sigma)


def _off_diagonal_pairs(mask: torch.Tensor) -> torch.Tensor:
    """(B, N) bool → (B, N, N) bool: both slots valid and i ≠ j."""
    n = mask.shape[-1]
    return mask[:, :, None] & mask[:, None, :] & ~torch.eye(n, dtype=torch.bool, device=mask.device)


def relative_similarity(pred_px, gt_px, mask, *, normalisation: str = "reference",
                        sigma: float = SIGMA) -> torch.Tensor:
    """S_rel per scene, (B,) float64 (NaN for scenes with fewer than 2 clip-arts).

    Sums ``exp(−|M_ij − M̂_ij| / (2σ))`` over ordered pairs of valid clip-arts i ≠ j and divides by
    ``(N−1)²`` for ``normalisation="reference"`` (``rel_sim``: the thesis's numbers; a perfect layout scores
    N/(N−1)) or by ``N(N−1)`` for ``"mean"`` (``rel_sim_mean``: the true mean, perfect = 1). Mirror-invariant,
    so no mirror max.
    """
    mask = _mask(mask)
    total = (_pair_similarity(pred_px, gt_px, sigma) * _off_diagonal_pairs(mask)).sum((-2, -1))
    n = mask.sum(-1).to(torch.float64)
    if normalisation == "reference":
        denominator = (n - 1) ** 2
    elif normalisation == "mean":
        denominator = n * (n - 1)
    else:
        raise ValueError(f"normalisation must be 'reference' or 'mean', got {normalisation!r}")
    return torch.where(n >= 2, total / denominator, float("nan"))


def flip_accuracy(pred_o, gt_o, mask, mirrored=None) -> torch.Tensor:
    """Orientation accuracy per scene, (B,) float64 in [0, 1].

    ``pred_o``, ``gt_o``: (B, N) flips (0/1); ``mask``: (B, N) bool; ``mirrored``: (B,) bool from
    :func:`absolute_similarity` — in those scenes predicted flips 0/1 are inverted before comparing (a
    mirrored layout faces the other way). Predicted MASK/PAD ids never match.
    """
    mask = _mask(mask)
    pred_o, gt_o = torch.as_tensor(pred_o).long(), torch.as_tensor(gt_o).long()
    if mirrored is not None:
        invert = torch.as_tensor(mirrored).bool()[:, None] & (pred_o <= 1)
        pred_o = torch.where(invert, 1 - pred_o, pred_o)
    return _masked_mean((pred_o == gt_o).to(torch.float64), mask)


def scene_scores(pred_px, pred_o, batch: Mapping[str, torch.Tensor], *, sigma: float = SIGMA,
                 mirror: bool = True) -> dict[str, torch.Tensor]:
    """Per-scene ``abs_sim``, ``rel_sim`` (÷(N−1)²), ``rel_sim_mean`` (÷N(N−1)) and ``flip_acc`` of a decoded
    layout against a :ref:`scene batch <scene-batch>` (its ``cliparts``, ``x_px``, ``y_px``, ``o_gt``).

    ``pred_px``: (B, N, 2) predicted pixel centres; ``pred_o``: (B, N) predicted flips. Values: (B,) float64.
    """
    mask = torch.as_tensor(batch["cliparts"]) != 0
    gt_px = torch.stack([_f64(batch["x_px"]), _f64(batch["y_px"])], -1)
    absolute = absolute_similarity(pred_px, gt_px, mask, mirror=mirror, sigma=sigma, return_mirrored=True)
    return {
        "abs_sim": absolute.score,
        "rel_sim": relative_similarity(pred_px, gt_px, mask, normalisation="reference", sigma=sigma),
        "rel_sim_mean": relative_similarity(pred_px, gt_px, mask, normalisation="mean", sigma=sigma),
        "flip_acc": flip_accuracy(pred_o, batch["o_gt"], mask, absolute.mirrored),
    }


def summarise(per_scene: Mapping[str, torch.Tensor]) -> dict[str, float]:
    """Mean and standard error (std with ddof=1 / √n) over scenes of each per-scene metric: ``{name: mean,
    name + "_se": se}``. NaN entries (metric undefined for that scene) are left out of both and of n."""
    out: dict[str, float] = {}
    for name, values in per_scene.items():
        v = _f64(values).flatten()
        v = v[~torch.isnan(v)]
        out[name] = float(v.mean()) if v.numel() else float("nan")
        out[f"{name}_se"] = standard_error(v)
    return out


def welch_comparison(a, b, *, alpha: float = 0.01) -> dict[str, float | bool]:
    """Is system A different from system B? Welch's t-test (as the thesis, p < 0.01) on two systems'
    per-scene values of one metric (NaNs dropped): ``{"t", "p", "significant", "mean_a", "mean_b"}``."""
    x, y = _f64(a).flatten(), _f64(b).flatten()
    x, y = x[~torch.isnan(x)], y[~torch.isnan(y)]
    t, p = welch_t_test(x, y)
    return {"t": t, "p": p, "significant": bool(p < alpha),
            "mean_a": float(x.mean()), "mean_b": float(y.mean())}


# -- scene completion (Table 3.2) ----------------------------------------------------------------------------
def group_mask(cliparts, group: str) -> torch.Tensor:
    """(B, N) 1-based clip-art ids → (B, N) bool: slots holding a member of ``group`` (one of
    :data:`vocab.GROUPS`); padding is never a member."""
    if group not in vocab.GROUPS:
        raise ValueError(f"unknown group {group!r}; expected one of {', '.join(vocab.GROUPS)}")
    ids = torch.as_tensor(cliparts).long()
    return torch.as_tensor(vocab.GROUP_OF_ID, device=ids.device)[ids] == vocab.GROUPS.index(group)


def completion_scores(pred_px, pred_o, gt_px, gt_o, mask, members, *,
                      sigma: float = SIGMA) -> dict[str, torch.Tensor]:
    """Scene-completion metrics per scene (the reference's protocol): ``abs_sim``, ``rel_sim``, ``flip_acc``,
    each (B,) float64, NaN in scenes without a member (the dataset average is over scenes containing the
    group — :func:`summarise` drops the NaNs).

    ``pred_px`` (B, N, 2) / ``pred_o`` (B, N): the completed layout — members at their predictions, the other
    clip-arts at the ground truth they were given; ``gt_px``, ``gt_o``: ground truth; ``mask``: (B, N) valid
    slots; ``members``: (B, N) bool slots of the completed group (e.g. :func:`group_mask`).

    * ``abs_sim``: mean over members of ``exp(−d/(2σ))`` (no mirror max: the rest of the scene fixes the
      side);
    * ``rel_sim``: for each member i the mean of ``exp(−|M_ij − M̂_ij|/(2σ))`` over the other valid clip-arts
      j ≠ i (the reference's "average over non-zero off-diagonal entries" of member rows), averaged over
      members;
    * ``flip_acc``: orientation accuracy over members (no mirror inversion).
    """
    mask = _mask(mask)
    members = _mask(members) & mask
    present = members.any(-1)
    pairs = _off_diagonal_pairs(mask)
    rows = (_pair_similarity(pred_px, gt_px, sigma) * pairs).sum(-1) / pairs.sum(-1).clamp(min=1)
    scores = {
        "abs_sim": _masked_mean(_point_similarity(pred_px, gt_px, sigma), members),
        "rel_sim": _masked_mean(rows, members & (pairs.sum(-1) > 0)),
        "flip_acc": flip_accuracy(pred_o, gt_o, members),
    }
    return {k: torch.where(present, v, float("nan")) for k, v in scores.items()}


# -- Text2Scene protocol (Table 3.4) -------------------------------------------------------------------------
def _multi_hot(ids) -> torch.Tensor:
    """(B, N) 1-based ids (0 = padding) → (B, 127) bool presence on the CPU (column 0 = padding, always
    False)."""
    ids = torch.as_tensor(ids).long().cpu()
    hot = torch.zeros(ids.shape[0], vocab.NUM_CLIPARTS + 1, dtype=torch.bool)
    hot.scatter_(1, ids, True)
    hot[:, 0] = False
    return hot


def object_precision_recall(pred_ids, gt_ids) -> tuple[float, float]:
    """Micro precision and recall (percent) of the predicted object clip-arts against the ground truth, over
    the 56 non-Mike/Jenny clip-arts only (Table 3.4). ``pred_ids``, ``gt_ids``: (B, Np) / (B, Ng) 1-based ids,
    0-padded (a clip-art listed twice counts once). No prediction → precision NaN; no object in the ground
    truth → recall NaN."""
    pred = _multi_hot(pred_ids)[:, _OBJECT_IDS]
    gt = _multi_hot(gt_ids)[:, _OBJECT_IDS]
    tp = float((pred & gt).sum())
    n_pred, n_gt = float(pred.sum()), float(gt.sum())
    precision = 100 * tp / n_pred if n_pred else float("nan")
    recall = 100 * tp / n_gt if n_gt else float("nan")
    return precision, recall


def pose_expression_accuracy(pred_ids, gt_ids) -> tuple[float, float]:
    """Pose and expression accuracy (percent) for every Mike and every Jenny of the ground truth (Table 3.4):
    the predicted Mike (Jenny) of the scene — the lowest predicted id in the block, as the reference's
    argmax — is compared on pose ``k // 5`` and expression ``k % 5``. A person the prediction lacks counts as
    wrong (the reference's predictor always emits one of each). NaN when no ground truth has a person."""
    pred, gt = _multi_hot(pred_ids), _multi_hot(gt_ids)
    pose_hits, expr_hits, total = 0.0, 0.0, 0.0
    for block in (vocab.MIKE_IDS, vocab.JENNY_IDS):
        cols = torch.arange(block.start, block.stop)
        g, p = gt[:, cols], pred[:, cols]
        has_gt, has_pred = g.any(1), p.any(1)
        gt_id = cols[g.to(torch.uint8).argmax(1)]  # first (lowest) id present
        pred_id = cols[p.to(torch.uint8).argmax(1)]
        ok = has_gt & has_pred
        pose_hits += float((ok & (_POSE[gt_id] == _POSE[pred_id])).sum())
        expr_hits += float((ok & (_EXPRESSION[gt_id] == _EXPRESSION[pred_id])).sum())
        total += float(has_gt.sum())
    if not total:
        return float("nan"), float("nan")
    return 100 * pose_hits / total, 100 * expr_hits / total


def common_clipart_similarity(pred_ids, pred_px, gt_ids, gt_px, *, mirror: bool = False,
                              sigma: float = SIGMA) -> torch.Tensor:
    """S_abs of a generated scene over the clip-arts present in both prediction and ground truth (exact id
    match, so a Mike with the wrong pose is left out; each predicted clip-art is compared with the first
    ground-truth slot of the same id). (B,) float64, NaN where nothing is in common.

    ``pred_ids`` (B, Np), ``pred_px`` (B, Np, 2), ``gt_ids`` (B, Ng), ``gt_px`` (B, Ng, 2). ``mirror``: the
    thesis reports Table 3.4 without the mirror max (default); the reference code at HEAD still takes it.
    """
    pred_ids, gt_ids = torch.as_tensor(pred_ids).long(), torch.as_tensor(gt_ids).long()
    valid = (pred_ids != 0)[:, :, None] & (gt_ids != 0)[:, None, :]
    same = (pred_ids[:, :, None] == gt_ids[:, None, :]) & valid  # (B, Np, Ng)
    matched = same.any(-1)  # (B, Np)
    first = same.to(torch.uint8).argmax(-1)  # (B, Np) first matching GT slot
    gt_for_pred = torch.gather(_f64(gt_px), 1, first[..., None].expand(-1, -1, 2))
    return absolute_similarity(pred_px, gt_for_pred, matched, mirror=mirror, sigma=sigma)


def text2scene_metrics(pred_ids, pred_px, gt_ids, gt_px, *, mirror: bool = False,
                       sigma: float = SIGMA) -> dict[str, float]:
    """Table 3.4 in one call: ``precision``, ``recall``, ``pose_acc``, ``expr_acc`` (percent) and ``abs_sim``
    with ``abs_sim_se`` (over scenes that share at least one clip-art with their ground truth)."""
    precision, recall = object_precision_recall(pred_ids, gt_ids)
    pose, expr = pose_expression_accuracy(pred_ids, gt_ids)
    similarity = summarise({"abs_sim": common_clipart_similarity(pred_ids, pred_px, gt_ids, gt_px,
                                                                 mirror=mirror, sigma=sigma)})
    return {"precision": precision, "recall": recall, "pose_acc": pose, "expr_acc": expr, **similarity}
