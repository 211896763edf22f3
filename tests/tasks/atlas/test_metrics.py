"""Text2Atlas metrics (spec ``text2atlas.md`` §6, §9): IOR's strict 1 cm rule, NVD-O's denominator, standard
errors by hand, per-organ rows (corrected and reference denominators), IGR on a cube, Recall@K by hand on a
6-document toy with ties, duplicates and a query without relevant document, vectorised == naive, Wilcoxon."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
import torch

from modalbridge.tasks.atlas.metrics import (
    HIT_MM,
    grounding_metrics,
    igr,
    inside_hull,
    per_organ_metrics,
    recall_at_k,
    recall_at_k_naive,
    standard_error,
    wilcoxon_less,
)


def se(values) -> float:
    """Standard error by hand: sample standard deviation / √n."""
    return statistics.stdev(values) / math.sqrt(len(values))


# ------------------------------------------------------------------------------------------ IOR / NVD / NVD-O
def test_strict_one_centimetre_rule():
    assert HIT_MM == 10.0
    assert grounding_metrics([9.99])["ior"] == 100.0
    assert grounding_metrics([10.0])["ior"] == 0.0
    assert grounding_metrics([0.0])["ior"] == 100.0  # inside the organ: distance 0, a hit
    assert grounding_metrics([np.nextafter(10.0, 0.0)])["ior"] == 100.0


def test_grounding_metrics_and_standard_errors_by_hand():
    dist = [0.0, 0.0, 5.0, 9.99, 10.0, 30.0]
    m = grounding_metrics(dist)
    hits = [100.0, 100.0, 100.0, 100.0, 0.0, 0.0]
    cm = [d / 10 for d in dist]
    outside = [d / 10 for d in dist if d > 0]
    assert m["n"] == 6
    assert m["ior"] == pytest.approx(400 / 6)
    assert m["ior_se"] == pytest.approx(se(hits))
    assert m["ior_se"] == pytest.approx(21.0818510, abs=1e-6)
    assert m["nvd"] == pytest.approx(54.99 / 60)
    assert m["nvd_se"] == pytest.approx(se(cm))
    assert m["nvdo"] == pytest.approx(54.99 / 4 / 10)  # 4 samples not exactly inside
    assert m["nvdo_se"] == pytest.approx(se(outside))


def test_nvdo_denominator_excludes_only_exact_inside_samples():
    # the 0.4 mm sample is a hit but not EXACTLY inside: it counts in the denominator
    m = grounding_metrics([0.0, 0.4, 15.0])
    assert m["nvdo"] == pytest.approx((0.4 + 15.0) / 2 / 10)
    assert m["nvd"] == pytest.approx((0.4 + 15.0) / 3 / 10)
    assert m["ior"] == pytest.approx(200 / 3)
    perfect = grounding_metrics([0.0, 0.0, 0.0])
    assert (perfect["ior"], perfect["nvd"], perfect["nvdo"]) == (100.0, 0.0, 0.0)
    assert math.isnan(perfect["nvdo_se"]) and perfect["nvd_se"] == 0.0


def test_small_samples_and_bad_input():
    one = grounding_metrics(np.array([3.0]))
    assert one["ior"] == 100.0 and math.isnan(one["ior_se"]) and math.isnan(one["nvd_se"])
    empty = grounding_metrics([])
    assert empty["n"] == 0 and all(math.isnan(v) for k, v in empty.items() if k != "n")
    assert grounding_metrics(torch.tensor([0.0, 20.0]))["ior"] == 50.0
    assert math.isnan(standard_error([1.0]))
    with pytest.raises(ValueError, match="NaN or inf"):
        grounding_metrics([1.0, float("nan")])
    with pytest.raises(ValueError, match="non-negative"):
        grounding_metrics([-1.0])


# ----------------------------------------------------------------------------------------------- per organ
ORGANS = ["liver", "lung", "colon", "kidney"]
DIST = [0.0, 5.0, 20.0, 12.0]
TARGETS = [[0], [0, 1], [1], [2]]  # sample 1 counts for liver AND lung


@pytest.mark.parametrize("targets", [TARGETS, np.array([[0, -1], [0, 1], [1, -1], [2, -1]]),
                                     torch.tensor([[0, -1], [1, 0], [-1, 1], [2, -1]])])
def test_per_organ_rows_count_multi_target_samples_for_each_organ(targets):
    rows = per_organ_metrics(DIST, targets, ORGANS)
    assert [r["organ"] for r in rows] == ["liver", "lung", "colon"]  # kidney never occurs: no row
    liver, lung, colon = rows
    assert (liver["n"], lung["n"], colon["n"]) == (2, 2, 1)
    assert (liver["ior"], lung["ior"], colon["ior"]) == (100.0, 50.0, 0.0)
    assert liver["nvd"] == pytest.approx(0.25) and lung["nvd"] == pytest.approx(1.25)
    assert liver["nvdo"] == pytest.approx(0.5) and lung["nvdo"] == pytest.approx(1.25)
    assert colon["nvdo"] == pytest.approx(1.2)
    assert lung["ior_se"] == pytest.approx(se([100.0, 0.0])) == pytest.approx(50.0)
    assert lung["nvd_se"] == pytest.approx(se([0.5, 2.0]))
    assert lung["nvdo_se"] == pytest.approx(se([0.5, 2.0]))
    assert liver["ior_se"] == 0.0 and math.isnan(liver["nvdo_se"]) and math.isnan(colon["ior_se"])


def test_per_organ_reference_denominator_is_the_global_count():
    rows = per_organ_metrics(DIST, TARGETS, ORGANS, reference_denominator=True)
    global_outside = 3  # 5, 20 and 12 mm
    expected = {"liver": 0.5 / global_outside, "lung": 2.5 / global_outside, "colon": 1.2 / global_outside}
    assert {r["organ"]: r["nvdo"] for r in rows} == pytest.approx(expected)


def test_per_organ_matches_grounding_metrics_for_single_organ_samples():
    rng = np.random.default_rng(0)
    dist = rng.exponential(8.0, 200) * (rng.random(200) < 0.6)
    organ = rng.integers(0, 4, 200)
    rows = {r["index"]: r for r in per_organ_metrics(dist, organ[:, None], ORGANS)}
    for i in range(4):
        ref = grounding_metrics(dist[organ == i])
        assert {k: rows[i][k] for k in ref if k != "n"} == pytest.approx({k: v for k, v in ref.items() if k != "n"})


def test_per_organ_bad_input():
    with pytest.raises(ValueError, match="organ index 5"):
        per_organ_metrics([1.0], [[5]], ORGANS)
    with pytest.raises(ValueError, match="2 rows for 1 distances"):
        per_organ_metrics([1.0], [[0], [1]], ORGANS)
    with pytest.raises(ValueError, match="padded with -1"):
        per_organ_metrics([1.0], np.array([[-3]]), ORGANS)


# ----------------------------------------------------------------------------------------------------- IGR
def test_inside_hull_on_a_cube():
    cube = np.stack(np.meshgrid(*[np.arange(11)] * 3, indexing="ij"), -1).reshape(-1, 3)  # voxels of [0,10]³
    points = np.array([[5, 5, 5], [0.5, 9.5, 0.5], [10, 10, 10], [10.5, 5, 5], [-0.1, 5, 5], [5, 5, 11],
                       [9.9, 9.9, 9.9], [20, 20, 20]])
    assert inside_hull(points, cube).tolist() == [True, True, True, False, False, False, True, False]
    assert igr(points, cube) == pytest.approx(50.0)
    assert math.isnan(igr(np.zeros((0, 3)), cube))


def test_inside_hull_needs_a_volume():
    flat = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]], dtype=float)
    with pytest.raises(ValueError, match="span no 3-D volume"):
        inside_hull([[0.5, 0.5, 0.0]], flat)


# ----------------------------------------------------------------------------------------------- Recall@K
# Six documents on a line (x, 0, 0): 1 and 2 share a position (a tie for query 0), 3 and 4 share a position and
# an organ set given in two orders, 1's and 5's organ sets occur nowhere else (no relevant document).
TOY_X = [0.0, 1.0, 1.0, 3.0, 3.0, 10.0]
TOY_SETS = [[1], [2], [1], [2, 1], [1, 2], [7]]
# query 0: others by distance 1(1) 2(1) 3(3) 4(3) 5(10); the tie 1/2 goes to the lower index → relevant 2 at rank 1
# query 1: no relevant document (its set [2] ≠ [1, 2]) → miss everywhere
# query 2: 1(0) 0(1) 3(2) 4(2) 5(9) → relevant 0 at rank 1
# query 3: 4(0) … → rank 0; query 4: 3(0) … → rank 0; query 5: none → miss
TOY_HITS = {1: [0, 0, 0, 100, 100, 0], 5: [100, 0, 100, 100, 100, 0], 10: [100, 0, 100, 100, 100, 0]}


def toy_embeddings() -> np.ndarray:
    x = np.zeros((6, 3))
    x[:, 0] = TOY_X
    return x


@pytest.mark.parametrize("fn", [recall_at_k, recall_at_k_naive])
def test_recall_at_k_by_hand_on_the_toy(fn):
    out = fn(toy_embeddings(), TOY_SETS)
    assert set(out) == {1, 5, 10}
    for k, hits in TOY_HITS.items():
        assert out[k] == pytest.approx((sum(hits) / 6, se(hits))), k
    assert out[1][0] == pytest.approx(100 / 3)


def test_recall_at_k_ties_go_to_the_lower_index():
    # swap the organ sets of the tied documents 1 and 2: query 0's relevant document now wins the tie
    sets = [[1], [1], [2], [2, 1], [1, 2], [7]]
    assert recall_at_k(toy_embeddings(), sets, ks=(1,))[1][0] == pytest.approx(300 / 6)  # queries 0, 3, 4
    assert recall_at_k_naive(toy_embeddings(), sets, ks=(1,))[1][0] == pytest.approx(300 / 6)


@pytest.mark.parametrize("d,block", [(3, 7), (3, 1024), (100, 16)])
def test_recall_at_k_vectorised_equals_naive_on_random_data(d, block):
    rng = np.random.default_rng(d)
    n = 80
    if d == 3:  # a small integer grid: many exact ties, and duplicated documents
        x = rng.integers(0, 3, (n, d)).astype(float)
    else:
        x = rng.normal(size=(n, d))
    choices = [[0], [1], [2], [0, 1], [1, 2], [3], [0, 1, 2]]
    sets = [list(rng.permutation(choices[i])) for i in rng.integers(0, len(choices), n)]
    fast = recall_at_k(torch.tensor(x), sets, ks=(1, 3, 5, 10), block=block)
    slow = recall_at_k_naive(x, sets, ks=(1, 3, 5, 10))
    assert fast == slow  # same hit vectors, same arithmetic
    assert 0 < fast[1][0] < fast[10][0] < 100


def test_recall_at_k_bad_input():
    with pytest.raises(ValueError, match="5 organ sets for 6"):
        recall_at_k(toy_embeddings(), TOY_SETS[:5])
    with pytest.raises(ValueError, match="positive integers"):
        recall_at_k(toy_embeddings(), TOY_SETS, ks=(0,))
    with pytest.raises(ValueError, match="2 dimension"):
        recall_at_k(np.zeros(6), TOY_SETS)


# ------------------------------------------------------------------------------------------------ Wilcoxon
def test_wilcoxon_less_one_sided_paired():
    a = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    assert wilcoxon_less(a, a + np.arange(1, 7)) == pytest.approx(1 / 64)  # every difference negative
    assert wilcoxon_less(a + np.arange(1, 7), a) == pytest.approx(1.0)
    # one zero difference is dropped (scipy's zero_method="wilcox"): 5 negative pairs left → 1/32
    assert wilcoxon_less(a, a + np.array([0, 1, 2, 3, 4, 5])) == pytest.approx(1 / 32)
    assert wilcoxon_less(a, a) == 1.0
    assert math.isnan(wilcoxon_less([], []))
    with pytest.raises(ValueError, match="same length"):
        wilcoxon_less([1.0, 2.0], [1.0])
