"""AP, Charades mAP (incl. the NaN fix) and recall@k: spec golden, scikit-learn, brute force."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score

from modalbridge.metrics import average_precision, charades_map, per_class_average_precision, recall_at_k


def test_spec_golden():
    # layout_fusion.md §6: (1 + 2/3) / 2
    assert average_precision(torch.tensor([0.9, 0.8, 0.7, 0.6]), torch.tensor([1, 0, 1, 0])) == pytest.approx(
        0.8333333, abs=1e-6)


def test_no_positive_gives_nan():
    assert math.isnan(average_precision([0.3, 0.2], [0, 0]))


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 80), seed=st.integers(0, 2**31 - 1))
def test_matches_sklearn_without_ties(n, seed):
    rng = np.random.default_rng(seed)
    scores = rng.permutation(n).astype(float) + rng.uniform(0, 0.5, n)  # distinct
    labels = rng.uniform(size=n) < 0.4
    labels[rng.integers(n)] = True
    assert average_precision(scores, labels) == pytest.approx(average_precision_score(labels, scores))


def test_charades_map_nan_fix_and_empty_rows():
    scores = torch.tensor([[0.9, 0.1, 0.5, 0.0],
                           [0.8, 0.2, 0.4, 0.0],
                           [0.7, 0.3, 0.3, 0.0],
                           [0.6, 0.4, 0.2, 0.0],
                           [1.0, 1.0, 1.0, 1.0]])  # a video without any label: ranked last, so no effect
    labels = torch.tensor([[1, 0, 0, 0],
                           [0, 0, 0, 1],
                           [1, 1, 0, 0],
                           [0, 0, 0, 1],
                           [0, 0, 0, 0]])  # class 2 has no positive: the reference's plain mean is NaN
    per_class = per_class_average_precision(scores[:4], labels[:4])
    # class 0 ranks + - + -: (1 + 2/3)/2; class 1 ranks (rows 3, 2, 1, 0) - + - -: 1/2
    assert per_class[0] == pytest.approx(5 / 6) and per_class[1] == pytest.approx(0.5)
    assert torch.isnan(per_class[2])
    # class 3: all four tie at 0.0 -> stable order keeps rows 0..3: - + - +  -> (1/2 + 2/4)/2
    assert per_class[3] == pytest.approx(0.5)
    expected = 100 * (5 / 6 + 0.5 + 0.5) / 3
    assert charades_map(scores, labels) == pytest.approx(expected)
    assert charades_map(scores[:4], labels[:4]) == pytest.approx(expected)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 40), c=st.integers(1, 8), seed=st.integers(0, 2**31 - 1))
def test_charades_map_matches_sklearn_per_class(n, c, seed):
    g = torch.Generator().manual_seed(seed)
    scores = torch.rand(n, c, generator=g)
    labels = torch.rand(n, c, generator=g) < 0.3
    labels[0, 0] = True
    keep = labels.any(1)
    ref = [average_precision_score(labels[keep, j].numpy(), scores[keep, j].numpy())
           for j in range(c) if labels[:, j].any()]
    assert charades_map(scores, labels) == pytest.approx(100 * np.mean(ref))


def test_charades_map_without_positives_raises():
    with pytest.raises(ValueError, match="no class"):
        charades_map(torch.rand(3, 2), torch.zeros(3, 2))


def test_recall_at_k_golden():
    sim = torch.tensor([[0.9, 0.1, 0.5, 0.0],
                        [0.1, 0.2, 0.3, 0.4],
                        [0.0, 0.0, 0.1, 0.9]])
    gt = torch.tensor([0, 1, 2])  # ranks 1, 3, 2
    assert recall_at_k(sim, gt, ks=(1, 2, 3, 10)) == pytest.approx({1: 100 / 3, 2: 200 / 3, 3: 100.0, 10: 100.0})
    dense = torch.nn.functional.one_hot(gt, 4).bool()
    assert recall_at_k(sim, dense, ks=(1, 2)) == recall_at_k(sim, gt, ks=(1, 2))


@settings(max_examples=40, deadline=None)
@given(nq=st.integers(1, 20), ng=st.integers(1, 30), seed=st.integers(0, 2**31 - 1))
def test_recall_at_k_matches_bruteforce(nq, ng, seed):
    g = torch.Generator().manual_seed(seed)
    sim = torch.rand(nq, ng, generator=g)
    pos = torch.rand(nq, ng, generator=g) < 0.2
    pos[0, 0] = True
    ks = (1, 5, 10)
    valid = [q for q in range(nq) if pos[q].any()]
    expected = {}
    for k in ks:
        order = [torch.argsort(sim[q], descending=True)[:k] for q in valid]
        expected[k] = 100 * np.mean([bool(pos[q][o].any()) for q, o in zip(valid, order)])
    ours = recall_at_k(sim, pos, ks)
    assert ours == pytest.approx(expected)
    assert ours[1] <= ours[5] <= ours[10]
