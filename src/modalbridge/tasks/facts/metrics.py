"""Fact-linking evaluation (spec ``fact_linking.md`` §6), in percent.

Per slot i ∈ {subj, rel, obj}, n records, gold y_i, ranked list R_i:

* accuracy_i = 100 · mean 1[R_i[0] = y_i] (= Recall@1); Recall@k_i = 100 · mean 1[y_i ∈ R_i[:k]];
* fact accuracy = all three top-1s right; Fact@k = every gold inside its own slot's top-k;
* error bar = the standard error of the mean of the 0/1 hit vector, 100 · sd(ddof=1) / √n;
* out-of-KG (:func:`ookg_metrics`): "inside" scenario (the golds are in the index; a slot is right iff the
  detector says in-KG) and "outside" (every gold removed; right iff it says out-of-KG); per slot and fact
  (all three decisions right) the score is (acc_inside + acc_outside) / 2 with error (SE_inside + SE_outside) / 2.

A ranking shorter than k counts what it holds (the re-ranker's k³ lists); ``None`` entries (padding, an
out-of-KG ∅) never hit.

>>> m = link_metrics([[["Q1"], ["P1"], ["Q2"]], [["Q1"], ["P2"], ["Q3"]]], [["Q1", "P1", "Q2"]] * 2, ks=(1,))
>>> m["subj_acc"], m["rel_acc"], m["fact_acc"]
(100.0, 50.0, 50.0)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from modalbridge.metrics.uncertainty import standard_error

__all__ = ["KS", "SLOTS", "link_metrics", "ookg_metrics", "slot_hits"]

SLOTS = ("subj", "rel", "obj")
#: the thesis's recall cut-offs
KS = (1, 5, 10, 100)


def _rankings(pred: Any, n: int) -> np.ndarray:
    """``(n, 3, L)`` object array of ranked ids from an array or from n records of three (ragged) lists,
    padded with ``None``."""
    if hasattr(pred, "detach"):
        pred = pred.detach().cpu().numpy()
    try:  # equal-length rankings become one (n, 3, L) array; ragged ones an (n, 3) array of lists
        out = pred if isinstance(pred, np.ndarray) else np.asarray(pred, dtype=object)
    except ValueError:
        out = np.empty(0)
    if out.ndim != 3:
        rows = [[list(np.atleast_1d(np.asarray(slot, dtype=object))) for slot in record] for record in pred]
        if any(len(r) != 3 for r in rows):
            raise ValueError("pred must hold three ranked lists (subj, rel, obj) per record")
        width = max((len(s) for r in rows for s in r), default=0)
        out = np.full((len(rows), 3, width), None, dtype=object)
        for i, record in enumerate(rows):
            for j, slot in enumerate(record):
                out[i, j, :len(slot)] = slot
    if out.shape[:2] != (n, 3):
        raise ValueError(f"pred must be (n, 3, k) rankings for the {n} gold facts, got shape {out.shape}")
    return out


def slot_hits(pred: Any, gold: Any) -> np.ndarray:
    """``(n, 3)`` int64 rank (0-based) of each gold id in its slot's ranking, −1 where it is absent.

    Args:
        pred: ``(n, 3, k)`` ranked ids (array or tensor), or n records of three ranked lists.
        gold: ``(n, 3)`` gold ``[subject, predicate, object]`` ids.
    """
    gold = np.asarray(gold.detach().cpu().numpy() if hasattr(gold, "detach") else gold)
    if gold.ndim != 2 or gold.shape[1] != 3:
        raise ValueError(f"gold must be (n, 3) fact ids, got shape {gold.shape}")
    ranked = _rankings(pred, gold.shape[0])
    if ranked.shape[2] == 0:
        return np.full(gold.shape, -1, dtype=np.int64)
    hit = ranked == gold[:, :, None]  # (n, 3, L); None never equals an id
    hit = np.asarray(hit, dtype=bool)
    return np.where(hit.any(-1), hit.argmax(-1), -1).astype(np.int64)


def _add(out: dict[str, float], name: str, hits: np.ndarray) -> None:
    x = hits.astype(np.float64) * 100.0
    out[name] = float(x.mean()) if x.size else float("nan")
    out[name + "_se"] = standard_error(x)


def link_metrics(pred: Any, gold: Any, ks: Iterable[int] = KS) -> dict[str, float]:
    """Linking accuracy and Recall@k per slot and fact, with standard errors (module docstring).

    Returns ``{"subj_acc", "rel_acc", "obj_acc", "fact_acc", "<slot>_r<k>" and "fact_r<k>" for k in ks, each
    with "<name>_se", "recall_sum" (the sum of all slot and fact recalls: the reference's model-selection
    score), "n"}``.
    """
    ks = sorted({int(k) for k in ks})
    if not ks or ks[0] < 1:
        raise ValueError(f"ks must be positive cut-offs, got {ks}")
    rank = slot_hits(pred, gold)  # (n, 3)
    found = rank >= 0
    out: dict[str, float] = {}
    for j, slot in enumerate(SLOTS):
        _add(out, f"{slot}_acc", found[:, j] & (rank[:, j] == 0))
    _add(out, "fact_acc", (found & (rank == 0)).all(1))
    total = 0.0
    for k in ks:
        within = found & (rank < k)
        for j, slot in enumerate(SLOTS):
            _add(out, f"{slot}_r{k}", within[:, j])
            total += out[f"{slot}_r{k}"]
        _add(out, f"fact_r{k}", within.all(1))
        total += out[f"fact_r{k}"]
    out["recall_sum"] = total
    out["n"] = float(rank.shape[0])
    return out


def _decisions(x: Any, name: str) -> np.ndarray:
    d = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x)
    if d.ndim != 2 or d.shape[1] != 3 or d.shape[0] == 0:
        raise ValueError(f"{name} must be (n > 0, 3) in-KG decisions (True = in the KG), got shape {d.shape}")
    if d.dtype != bool and not np.isin(d, (0, 1)).all():
        raise ValueError(f"{name} must be bool or 0/1 decisions")
    return d.astype(bool)


def ookg_metrics(inside: Any, outside: Any) -> dict[str, float]:
    """Out-of-KG detection scores (module docstring).

    Args:
        inside: ``(n, 3)`` the detector's in-KG decisions (True = in the KG) with every gold in the index.
        outside: ``(m, 3)`` its decisions with every gold removed from the index.

    Returns:
        ``{"subj", "rel", "obj", "fact"}`` macro scores with ``"<name>_se"``, plus ``"<name>_inside"`` and
        ``"<name>_outside"`` accuracies, ``"n_inside"``, ``"n_outside"``.
    """
    right_in = _decisions(inside, "inside")
    right_out = ~_decisions(outside, "outside")
    out: dict[str, float] = {}
    columns = [(slot, right_in[:, j], right_out[:, j]) for j, slot in enumerate(SLOTS)]
    for name, hit_in, hit_out in [*columns, ("fact", right_in.all(1), right_out.all(1))]:
        a_in, a_out = 100.0 * hit_in.mean(), 100.0 * hit_out.mean()
        out[name] = float((a_in + a_out) / 2)
        out[name + "_se"] = (standard_error(hit_in * 100.0) + standard_error(hit_out * 100.0)) / 2
        out[name + "_inside"], out[name + "_outside"] = float(a_in), float(a_out)
    out["n_inside"], out["n_outside"] = float(len(right_in)), float(len(right_out))
    return out
