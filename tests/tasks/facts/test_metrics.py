"""Fact-linking metrics (spec ``fact_linking.md`` §6, §9): goldens on a hand-made 5-record prediction table (slot
and fact accuracy, Recall@k / Fact@k, SEM with ddof=1), invariants (recall monotone in k, fact ≤ min slot), the
input forms (arrays, ragged lists, ``None`` padding) and the out-of-KG inside/outside protocol."""

from __future__ import annotations

import math

import numpy as np
import pytest

from modalbridge.tasks.facts.metrics import link_metrics, ookg_metrics, slot_hits

GOLD = [["Q1", "P1", "Q2"], ["Q3", "P2", "Q4"], ["Q5", "P1", "Q6"], ["Q7", "P3", "Q8"], ["Q9", "P2", "Q10"]]
# gold ranks per slot:   r0 (0,0,0)  r1 (1,0,0)  r2 (0,2,0)  r3 (absent,0,1)  r4 (0,0,0)
PRED = [
    [["Q1", "Q3", "Q5"], ["P1", "P2", "P3"], ["Q2", "Q1", "Q9"]],
    [["Q9", "Q3", "Q1"], ["P2", "P1", "P3"], ["Q4", "Q6", "Q8"]],
    [["Q5", "Q7", "Q1"], ["P9", "P8", "P1"], ["Q6", "Q2", "Q4"]],
    [["Q1", "Q2", "Q3"], ["P3", "P2", "P1"], ["Q1", "Q8", "Q2"]],
    [["Q9", "Q1", "Q2"], ["P2", "P1", "P3"], ["Q10", "Q1", "Q2"]],
]


def test_golden_table():
    m = link_metrics(PRED, GOLD, ks=(1, 2, 3))
    assert (m["subj_acc"], m["rel_acc"], m["obj_acc"], m["fact_acc"]) == (60.0, 80.0, 80.0, 40.0)
    assert (m["subj_r2"], m["rel_r2"], m["obj_r2"], m["fact_r2"]) == (80.0, 80.0, 100.0, 60.0)
    assert (m["subj_r3"], m["rel_r3"], m["obj_r3"], m["fact_r3"]) == (80.0, 100.0, 100.0, 80.0)
    assert m["subj_r1"] == m["subj_acc"] and m["n"] == 5.0
    # SEM of the 0/1 (×100) hit vector with ddof=1: [100, 0, 100, 0, 100] → sd √3000, / √5
    assert m["subj_acc_se"] == pytest.approx(math.sqrt(3000 / 5))
    assert m["fact_acc_se"] == pytest.approx(np.std([100, 0, 0, 0, 100], ddof=1) / math.sqrt(5))
    assert m["obj_r3_se"] == 0.0
    assert m["recall_sum"] == pytest.approx(sum(m[f"{s}_r{k}"] for s in ("subj", "rel", "obj", "fact")
                                                for k in (1, 2, 3)))
    np.testing.assert_array_equal(slot_hits(PRED, GOLD), [[0, 0, 0], [1, 0, 0], [0, 2, 0], [-1, 0, 1], [0, 0, 0]])


def test_recall_is_monotone_and_fact_is_at_most_the_weakest_slot():
    rng = np.random.default_rng(0)
    gold = np.stack([rng.integers(0, 30, 200), rng.integers(0, 8, 200), rng.integers(0, 30, 200)], 1).astype(str)
    pred = np.stack([np.stack([rng.permutation(30)[:20] for _ in range(200)]),
                     np.stack([np.resize(rng.permutation(8), 20) for _ in range(200)]),
                     np.stack([rng.permutation(30)[:20] for _ in range(200)])], 1).astype(str)
    m = link_metrics(pred, gold, ks=(1, 5, 10, 20))
    for name in ("subj", "rel", "obj", "fact"):
        values = [m[f"{name}_r{k}"] for k in (1, 5, 10, 20)]
        assert values == sorted(values)
    for k in (1, 5, 10, 20):
        assert m[f"fact_r{k}"] <= min(m[f"{s}_r{k}"] for s in ("subj", "rel", "obj"))
    assert m["fact_acc"] <= min(m["subj_acc"], m["rel_acc"], m["obj_acc"])
    assert m["rel_r10"] == 100.0  # every predicate sits in a 20-long ranking of the 8


def test_ragged_lists_short_rankings_and_none_never_hit():
    gold = [["Q1", "P1", "Q2"], ["Q3", "P2", "Q4"]]
    pred = [[["Q1"], ["P9", "P1"], [None, "Q2"]], [["Q3", "Q1", "Q4"], ["P2"], []]]
    m = link_metrics(pred, gold, ks=(1, 5))
    assert (m["subj_acc"], m["rel_acc"], m["obj_acc"], m["fact_acc"]) == (100.0, 50.0, 0.0, 0.0)
    assert (m["rel_r5"], m["obj_r5"], m["fact_r5"]) == (100.0, 50.0, 50.0)
    arr = np.array([[["Q1", "Q3"], ["P1", "P2"], ["Q2", "Q4"]]] * 2)
    assert link_metrics(arr, gold, ks=(1, 2))["fact_r2"] == 100.0


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match=r"\(n, 3\)"):
        link_metrics(PRED, [g[:2] for g in GOLD])
    with pytest.raises(ValueError, match="5 gold facts"):
        link_metrics(PRED[:4], GOLD)
    with pytest.raises(ValueError, match=r"\(n, 3, k\)"):
        link_metrics([[["Q1"], ["P1"]]], [["Q1", "P1", "Q2"]])
    with pytest.raises(ValueError, match="positive"):
        link_metrics(PRED, GOLD, ks=(0,))


def test_ookg_inside_outside_protocol():
    inside = np.array([[1, 1, 1], [1, 0, 1], [1, 1, 0], [0, 1, 1]], dtype=bool)  # True = "in the KG"
    outside = np.array([[0, 0, 0], [0, 1, 0], [1, 0, 0], [0, 0, 0]], dtype=bool)
    m = ookg_metrics(inside, outside)
    assert m["subj_inside"] == 75.0 and m["subj_outside"] == 75.0 and m["subj"] == 75.0
    assert m["rel"] == (75.0 + 75.0) / 2 and m["obj"] == (75.0 + 100.0) / 2
    assert m["fact_inside"] == 25.0 and m["fact_outside"] == 50.0 and m["fact"] == 37.5
    se = lambda x: np.std(np.asarray(x, float) * 100, ddof=1) / 2  # noqa: E731  (n = 4 → √n = 2)
    assert m["subj_se"] == pytest.approx((se([1, 1, 1, 0]) + se([1, 1, 0, 1])) / 2)
    assert m["obj_se"] == pytest.approx(se([1, 1, 0, 1]) / 2)  # outside all right: SE 0
    assert m["n_inside"] == 4.0 and m["n_outside"] == 4.0
    with pytest.raises(ValueError, match="outside must be"):
        ookg_metrics(inside, outside[:, :2])
    with pytest.raises(ValueError, match="bool or 0/1"):
        ookg_metrics(inside, outside * 2)
