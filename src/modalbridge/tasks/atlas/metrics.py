"""Text2Atlas evaluation (spec ``text2atlas.md`` §6): IOR / NVD / NVD-O with standard errors, the per-organ
table, IGR (inside the convex hull of a functional group) and Recall@K for retrieval by 3-D or embedding
distance, and the one-sided Wilcoxon signed-rank test.

Every function takes the per-sample distances ``dist_mm`` that :meth:`~.atlas.Atlas.distance` returns (mm; 0
when the prediction's rounded voxel lies in a target organ, otherwise the exact nearest-voxel distance).

* **IOR** = 100 · mean[dist < 10 mm] — strict: 9.99 mm is a hit, exactly 10.0 mm a miss (hollow organs
  exclude their lumen, hence the 1 cm allowance).
* **NVD** = mean(dist) / 10, in cm (raw distances: the 1 cm allowance does not apply).
* **NVD-O** = Σ dist / #{dist > 0} / 10, in cm: the denominator counts every sample that is not EXACTLY
  inside, the < 1 cm hits included. With no sample outside it is 0.0 (nothing to average; a perfect model's
  row stays printable).
* **standard errors** = std(ddof=1) / √n of the 0/1 hit vector × 100 (IOR), of dist / 10 (NVD) and of the
  non-zero distances / 10 (NVD-O); NaN below two values.

>>> m = grounding_metrics([0.0, 0.0, 5.0, 9.99, 10.0, 30.0])
>>> round(m["ior"], 2), round(m["nvd"], 5), round(m["nvdo"], 5)
(66.67, 0.9165, 1.37475)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

__all__ = ["HIT_MM", "grounding_metrics", "igr", "inside_hull", "per_organ_metrics", "recall_at_k",
           "recall_at_k_naive", "standard_error", "wilcoxon_less"]

#: a prediction closer than this (strictly) to a target organ is "inside" for IOR
HIT_MM = 10.0


def _array(x: Any, name: str, ndim: int | None = None) -> np.ndarray:
    """``x`` as a float64 numpy array (torch tensors are detached and moved to the CPU)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    out = np.asarray(x, dtype=np.float64)
    if ndim is not None and out.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {out.shape}")
    if not np.isfinite(out).all():
        raise ValueError(f"{name} holds NaN or inf")
    return out


def _distances(dist_mm: Any) -> np.ndarray:
    d = _array(dist_mm, "dist_mm").reshape(-1)
    if (d < 0).any():
        raise ValueError("dist_mm must be non-negative distances in mm")
    return d


def standard_error(values: Any) -> float:
    """std(ddof=1) / √n of ``values`` (1-D); NaN for fewer than two values."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    return float(v.std(ddof=1) / math.sqrt(v.size)) if v.size >= 2 else math.nan


def grounding_metrics(dist_mm: Any) -> dict[str, float]:
    """IOR %, NVD cm, NVD-O cm and their standard errors over ``dist_mm`` ``(P,)`` (mm).

    Returns ``{"ior", "ior_se", "nvd", "nvd_se", "nvdo", "nvdo_se", "n"}`` (``n`` = P, a float like the rest);
    every value is NaN when P = 0.
    """
    d = _distances(dist_mm)
    n = d.size
    if n == 0:
        return dict.fromkeys(("ior", "ior_se", "nvd", "nvd_se", "nvdo", "nvdo_se"), math.nan) | {"n": 0.0}
    hits = (d < HIT_MM) * 100.0
    cm = d / 10.0
    outside = cm[d > 0]
    return {"ior": float(hits.mean()), "ior_se": standard_error(hits),
            "nvd": float(cm.mean()), "nvd_se": standard_error(cm),
            "nvdo": float(cm.sum() / outside.size) if outside.size else 0.0,
            "nvdo_se": standard_error(outside), "n": float(n)}


def _targets(targets: Any, n: int) -> np.ndarray:
    """``(P, M)`` int64 organ indices padded with -1 (from an array or a list of lists)."""
    if hasattr(targets, "detach"):
        targets = targets.detach().cpu().numpy()
    if isinstance(targets, np.ndarray):
        out = targets.astype(np.int64)
        out = out[:, None] if out.ndim == 1 else out
    else:
        rows = [list(t) for t in targets]
        width = max((len(r) for r in rows), default=0)
        out = np.full((len(rows), width), -1, dtype=np.int64)
        if rows and width:
            lengths = np.array([len(r) for r in rows])
            out[np.arange(width)[None, :] < lengths[:, None]] = np.concatenate([r for r in rows if r])
    if out.shape[0] != n:
        raise ValueError(f"targets has {out.shape[0]} rows for {n} distances")
    return out


def _grouped_se(values: np.ndarray, groups: np.ndarray, count: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Per-group std(ddof=1) / √n (two-pass: squared deviations from the group mean); NaN where n < 2."""
    k = count.size
    ss = np.bincount(groups, weights=(values - mean[groups]) ** 2, minlength=k)
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.sqrt(ss / (count - 1) / count)
    return np.where(count >= 2, se, np.nan)


def per_organ_metrics(dist_mm: Any, targets: Any, organ_names: Sequence[str], *,
                      reference_denominator: bool = False) -> list[dict[str, Any]]:
    """The per-organ table: every sample counts toward each of its target organs.

    Args:
        dist_mm: ``(P,)`` distances in mm (one per sample, to its whole target set).
        targets: ``(P, M)`` organ indices padded with -1, or a list of P index lists.
        organ_names: the atlas organs (``targets`` index into it).
        reference_denominator: NVD-O of organ o as the reference computes it: Σ over o's samples of dist
            divided by the GLOBAL #{dist > 0} over all P samples (spec §6 calls it wrong). Default: the
            corrected denominator, #{dist > 0} among o's samples.

    Returns:
        one row per organ that occurs, in organ-index order: ``{"organ", "index", "n", "ior", "ior_se", "nvd",
        "nvd_se", "nvdo", "nvdo_se"}`` (percent / cm as in :func:`grounding_metrics`).
    """
    d = _distances(dist_mm)
    t = _targets(targets, d.size)
    k = len(organ_names)
    if (t < -1).any():
        raise ValueError("targets must be organ indices >= 0, padded with -1")
    sample, slot = np.nonzero(t >= 0)
    organ = t[sample, slot]
    if organ.size and organ.max() >= k:
        raise ValueError(f"targets hold organ index {int(organ.max())} but only {k} organ names were given")
    # a sample listing the same organ twice counts once for it
    pair = np.unique(sample * max(k, 1) + organ)
    sample, organ = pair // max(k, 1), pair % max(k, 1)
    dist = d[sample]
    count = np.bincount(organ, minlength=k).astype(np.float64)
    hit = (dist < HIT_MM) * 100.0
    cm = dist / 10.0
    outside = dist > 0
    n_out = np.bincount(organ, weights=outside, minlength=k)
    with np.errstate(divide="ignore", invalid="ignore"):
        ior = np.bincount(organ, weights=hit, minlength=k) / count
        cm_sum = np.bincount(organ, weights=cm, minlength=k)
        nvd = cm_sum / count
        denominator = np.full(k, float((d > 0).sum())) if reference_denominator else n_out
        nvdo = np.where(denominator > 0, cm_sum / np.maximum(denominator, 1), 0.0)
        out_mean = np.bincount(organ[outside], weights=cm[outside], minlength=k) / n_out
    ior_se = _grouped_se(hit, organ, count, np.nan_to_num(ior))
    nvd_se = _grouped_se(cm, organ, count, np.nan_to_num(nvd))
    nvdo_se = _grouped_se(cm[outside], organ[outside], n_out, np.nan_to_num(out_mean))
    return [{"organ": organ_names[i], "index": i, "n": int(count[i]), "ior": float(ior[i]),
             "ior_se": float(ior_se[i]), "nvd": float(nvd[i]), "nvd_se": float(nvd_se[i]),
             "nvdo": float(nvdo[i]), "nvdo_se": float(nvdo_se[i])}
            for i in np.flatnonzero(count)]


# ------------------------------------------------------------------------------------------------- IGR
def inside_hull(points: Any, hull_points: Any) -> np.ndarray:
    """``(P,)`` bool: does each point ``(P, 3)`` lie in the convex hull of ``hull_points`` ``(H, 3)`` (on its
    boundary counts as inside)? Same units for both (e.g. centred mm).

    ``scipy.spatial.Delaunay(hull).find_simplex(p) >= 0`` (spec §6), triangulating only the hull's vertices
    (``ConvexHull`` first: the same hull, fast for the 10⁵–10⁶ voxels of a functional group)."""
    from scipy.spatial import ConvexHull, Delaunay, QhullError

    p = _array(points, "points", 2)
    h = _array(hull_points, "hull_points", 2)
    if p.shape[1] != h.shape[1]:
        raise ValueError(f"points are {p.shape[1]}-D but hull_points {h.shape[1]}-D")
    try:
        vertices = h[ConvexHull(h).vertices]
        return Delaunay(vertices).find_simplex(p) >= 0
    except (QhullError, ValueError) as exc:
        raise ValueError(f"the hull points ({h.shape[0]}) span no {h.shape[1]}-D volume (all on a plane, a line "
                         f"or fewer than {h.shape[1] + 1} points): {str(exc).splitlines()[0]}") from exc


def igr(points: Any, hull_points: Any) -> float:
    """IGR %: the share of predictions ``(P, 3)`` inside the convex hull of ``hull_points`` (all voxels of the
    held-out organ's functional group). NaN for P = 0."""
    inside = inside_hull(points, hull_points)
    return float(inside.mean() * 100.0) if inside.size else math.nan


# ------------------------------------------------------------------------------------------- retrieval
def _set_ids(organ_sets: Iterable[Sequence[int]], n: int) -> np.ndarray:
    """``(n,)`` ids equal exactly when the SORTED organ lists are equal (duplicates inside a list count, as
    in the reference's list comparison; two empty lists are equal)."""
    rows = [np.sort(np.asarray(list(s), dtype=np.int64)) for s in organ_sets]
    if len(rows) != n:
        raise ValueError(f"{len(rows)} organ sets for {n} embeddings")
    width = max((r.size for r in rows), default=0)
    padded = np.full((n, width + 1), -1, dtype=np.int64)  # +1 column: the length, so [] != [-1, …] padding
    lengths = np.array([r.size for r in rows], dtype=np.int64)
    if width:
        filled = np.arange(width)[None, :] < lengths[:, None]
        padded[:, :width][filled] = np.concatenate([r for r in rows if r.size] or [np.zeros(0, np.int64)])
    padded[:, width] = lengths
    return np.unique(padded, axis=0, return_inverse=True)[1].reshape(-1) if n else np.zeros(0, np.int64)


def _check_ks(ks: Iterable[int]) -> tuple[int, ...]:
    ks = tuple(int(k) for k in ks)
    if not ks or min(ks) < 1:
        raise ValueError(f"ks must be positive integers, got {ks}")
    return ks


def _summary(rank: np.ndarray, ks: tuple[int, ...]) -> dict[int, tuple[float, float]]:
    out = {}
    for k in ks:
        hits = (rank < k) * 100.0
        out[k] = (float(hits.mean()) if hits.size else math.nan, standard_error(hits))
    return out


def recall_at_k(embeddings: Any, organ_sets: Sequence[Sequence[int]], ks: Iterable[int] = (1, 5, 10),
                block: int = 1024) -> dict[int, tuple[float, float]]:
    """Recall@K (spec §6, ``inference_retrieval.py``): every document is a query against all OTHER documents;
    a document is relevant when its organ list, sorted, is identical to the query's; ranking by Euclidean
    distance between ``embeddings`` ``(n, d)`` (centred mm for SOD's 3-D points, the embedding otherwise).
    Recall@K = % of queries with a relevant document among their K nearest; queries without any relevant
    document count as misses. Returns ``{k: (percent, standard error)}``.

    **Ties** are broken by document index (a stable ranking: among equally distant documents the lower index
    comes first), like a stable sort of the distances. Instead of sorting, the rank of a query's best relevant
    document r* (nearest; lowest index among equally near ones) is counted directly, blockwise over ``block``
    queries at a time: rank = #{j ≠ q: d_j < d_r*} + #{j ≠ q: d_j = d_r*, j < r*}; a hit at K is rank < K.
    Distances: exact differences (Σ (q - x)², summed over dimensions in order) for d ≤ 64, where documents
    with identical embeddings tie exactly; for larger d the Gram expansion ‖q‖² + ‖x‖² - 2 q·x (one matrix
    product), where equal distances may differ by rounding and such ties fall to the rounding. Memory:
    O(block · n).
    """
    x = _array(embeddings, "embeddings", 2)
    n = x.shape[0]
    ks = _check_ks(ks)
    ids = _set_ids(organ_sets, n)
    if block < 1:
        raise ValueError(f"block must be >= 1, got {block}")
    rank = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    index = np.arange(n)
    norms = np.einsum("ij,ij->i", x, x) if x.shape[1] > 64 else None
    for start in range(0, n, block):
        q = slice(start, min(start + block, n))
        rows = index[q]
        if norms is None:
            dist = np.zeros((rows.size, n))
            for c in range(x.shape[1]):
                dist += (x[q, c, None] - x[None, :, c]) ** 2
        else:
            dist = np.maximum(norms[q, None] + norms[None, :] - 2.0 * (x[q] @ x.T), 0.0)
        dist[np.arange(rows.size), rows] = np.inf  # never retrieve the query itself
        relevant = (ids[rows, None] == ids[None, :]) & (rows[:, None] != index[None, :])
        has = relevant.any(axis=1)
        best_d = np.where(relevant, dist, np.inf).min(axis=1)  # (b,) distance of the nearest relevant doc
        best_r = np.where(relevant & (dist == best_d[:, None]), index[None, :], n).min(axis=1)  # lowest index
        ahead = (dist < best_d[:, None]) | ((dist == best_d[:, None]) & (index[None, :] < best_r[:, None]))
        rank[rows] = np.where(has, ahead.sum(axis=1), rank[rows])
    return _summary(rank, ks)


def recall_at_k_naive(embeddings: Any, organ_sets: Sequence[Sequence[int]],
                      ks: Iterable[int] = (1, 5, 10)) -> dict[int, tuple[float, float]]:
    """The obvious O(n²) reference of :func:`recall_at_k` (for tests): per query, a stable sort of the other
    documents by Euclidean distance, then the first K checked for an identical sorted organ list."""
    x = _array(embeddings, "embeddings", 2)
    ks = _check_ks(ks)
    sets = [sorted(s) for s in organ_sets]
    if len(sets) != x.shape[0]:
        raise ValueError(f"{len(sets)} organ sets for {x.shape[0]} embeddings")
    rank = []
    for q in range(x.shape[0]):
        others = [j for j in range(x.shape[0]) if j != q]
        dist = [float(np.sum((x[j] - x[q]) ** 2)) for j in others]
        order = [others[i] for i in sorted(range(len(others)), key=lambda i: dist[i])]  # stable: index order
        hits = [r for r, j in enumerate(order) if sets[j] == sets[q]]
        rank.append(hits[0] if hits else np.iinfo(np.int64).max)
    return _summary(np.asarray(rank, dtype=np.int64), ks)


# ----------------------------------------------------------------------------------------- significance
def wilcoxon_less(a: Any, b: Any) -> float:
    """One-sided paired Wilcoxon signed-rank p-value for "a is smaller than b" (spec §6: per-sample NVD of
    SOD < the classifier's; per organ in the held-out setting): ``scipy.stats.wilcoxon(a, b,
    alternative="less")``. Zero differences follow scipy's default ``zero_method="wilcox"`` (dropped before
    ranking); when every difference is zero the p-value is 1.0 (no evidence), for no pair NaN."""
    from scipy.stats import wilcoxon

    x, y = _array(a, "a", 1), _array(b, "b", 1)
    if x.shape != y.shape:
        raise ValueError(f"paired samples must have the same length, got {x.size} and {y.size}")
    if x.size == 0:
        return math.nan
    if not (x - y).any():
        return 1.0
    return float(wilcoxon(x, y, alternative="less").pvalue)
