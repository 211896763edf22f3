"""Out-of-KG detectors (spec ``fact_linking.md`` §3.6, §4, §9): entropy of a uniform top-5 = ln 5, the confidence
and entropy decisions, the exact threshold search against a brute force, the QKV detector (identity init,
shapes, its formula by hand, training batches whose labels say which golds stayed in the KG, gradients
reaching every map), and the seeded
Random detector at ≈ 50 / 12.5 on the inside/outside protocol."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from modalbridge.tasks.facts import ookg as O
from modalbridge.tasks.facts.metrics import ookg_metrics

pytestmark = pytest.mark.usefixtures("one_thread")


def test_entropy_and_confidence_of_top5():
    assert O.entropy_scores([0.3] * 5) == pytest.approx(math.log(5))
    assert O.confidence_scores([0.3] * 5) == pytest.approx(0.2)
    peaked = [50.0, 0.0, 0.0, 0.0, 0.0]
    assert O.entropy_scores(peaked) < 1e-15 and O.confidence_scores(peaked) == pytest.approx(1.0)
    c = np.array([0.9, 0.5, 0.4, 0.3, 0.1])
    p = np.exp(c) / np.exp(c).sum()
    assert O.entropy_scores(c) == pytest.approx(-(p * np.log(p)).sum())
    assert O.entropy_scores(torch.tensor(c)) == pytest.approx(O.entropy_scores(c))
    with pytest.raises(ValueError, match="NaN or inf"):
        O.entropy_scores([0.5, np.nan, 0.1, 0.1, 0.1])


def test_decisions_per_slot():
    top5 = np.array([[[0.9, 0.1, 0.1, 0.1, 0.1], [0.2] * 5, [0.5, 0.49, 0.1, 0.1, 0.1]]])  # (1, 3, 5)
    h = O.entropy_scores(top5)
    assert h.shape == (1, 3)
    np.testing.assert_allclose(h, [[1.5427, math.log(5), 1.5901]], atol=1e-4)  # cosines: a flat softmax
    np.testing.assert_array_equal(O.entropy_in_kg(top5, [1.6, 1.6, 1.58]), [[True, False, False]])
    np.testing.assert_array_equal(O.entropy_in_kg(top5, math.log(5) + 1e-12), [[True, True, True]])  # H ≤ θ
    np.testing.assert_array_equal(O.confidence_in_kg(top5, [0.25, 0.2, 0.25]), [[True, True, False]])
    assert O.random_in_kg((4, 3), rng=0).dtype == bool


def _brute(scores, labels, higher_is_in):
    best = (-1.0, None)
    for t in np.sort(np.unique(np.concatenate([scores, [scores.min() - 1, scores.max() + 1]]))):
        for theta in (t - 1e-9, t + 1e-9):
            pred = scores >= theta if higher_is_in else scores <= theta
            macro = 50 * (pred[labels].mean() + (~pred[~labels]).mean())
            best = max(best, (macro, theta), key=lambda x: x[0])
    return best


@pytest.mark.parametrize("higher_is_in", [True, False])
def test_threshold_search_is_exact(higher_is_in):
    rng = np.random.default_rng(int(higher_is_in))
    labels = rng.random(300) < 0.4
    scores = np.round(rng.normal(size=300) + np.where(labels == higher_is_in, 0.8, 0.0), 1)  # with ties
    theta, macro = O.tune_threshold(scores, labels, higher_is_in=higher_is_in)
    assert macro == pytest.approx(_brute(scores, labels, higher_is_in)[0])
    pred = scores >= theta if higher_is_in else scores <= theta
    assert 50 * (pred[labels].mean() + (~pred[~labels]).mean()) == pytest.approx(macro)


def test_threshold_on_separable_entropies_and_bad_input():
    h = np.array([0.2, 0.4, 0.5, 1.5, 1.6])  # in-KG: confident, low entropy
    theta, macro = O.tune_threshold(h, [True, True, True, False, False], higher_is_in=False)
    assert macro == 100.0 and 0.5 < theta < 1.5
    theta, macro = O.tune_threshold(h, [True, True, True, False, False], higher_is_in=False, grid=[0.45, 1.0])
    assert (theta, macro) == (1.0, 100.0)
    with pytest.raises(ValueError, match="both in-KG and out-of-KG"):
        O.tune_threshold(h, [True] * 5)
    with pytest.raises(ValueError, match="differ in length"):
        O.tune_threshold(h, [True, False])


def test_qkv_identity_init_shapes_and_formula():
    det = O.QKVDetector(dim=6)
    eye = torch.eye(6)
    for layer in [*det.w_q, det.w_k_entity, det.w_v_entity, det.w_k_predicate, det.w_v_predicate]:
        assert torch.equal(layer.weight.data, eye) and torch.equal(layer.bias.data, torch.zeros(6))
    g = torch.Generator().manual_seed(0)
    q = F.normalize(torch.randn(4, 3, 6, generator=g), dim=-1)
    ents, preds = F.normalize(torch.randn(9, 6, generator=g), dim=-1), F.normalize(torch.randn(2, 6, generator=g), dim=-1)
    logits = det(q, ents, preds)
    assert logits.shape == (4, 3) and logits.dtype == torch.float32

    def by_hand(o, kg):  # identity maps: a = softmax(o K^T) K, h = o + a, score = mean_j h · k_j
        h = o + torch.softmax(o @ kg.T, -1) @ kg
        return (h @ kg.T).mean(-1)

    expected = torch.stack([by_hand(q[:, 0], ents), by_hand(q[:, 1], preds), by_hand(q[:, 2], ents)], 1)
    torch.testing.assert_close(logits, expected)
    assert torch.equal(det.in_kg(q, ents, preds), logits > 0)
    with pytest.raises(ValueError, match="expected query"):
        det(q[..., :5], ents, preds)


def test_qkv_training_batch_and_loss():
    gold = np.array([["Q1", "P1", "Q2"], ["Q2", "P2", "Q3"], ["Q4", "P1", "Q1"]])
    kg_e, kg_p = [f"Q{i}" for i in range(500)], [f"P{i}" for i in range(40)]
    for seed in range(5):
        ents, preds, labels = O.qkv_kg_sample(gold, kg_e, kg_p, e=20, p=5, rng=seed)
        assert labels.shape == (3, 3) and labels.dtype == np.float32
        kept = set(ents) | set(preds)
        np.testing.assert_array_equal(labels, np.isin(gold, list(kept)))  # label 1 iff its gold is in the KG
        golds = set(gold.ravel())
        assert len([x for x in ents if x not in golds]) == 20 and len([x for x in preds if x not in golds]) == 5
        assert labels[0, 0] == labels[2, 2] and labels[0, 2] == labels[1, 0]  # one decision per distinct gold
    assert O.qkv_kg_sample(gold, kg_e, kg_p, keep=1.0, rng=0)[2].all()
    assert not O.qkv_kg_sample(gold, kg_e, kg_p, keep=0.0, rng=0)[2].any()
    assert O.qkv_loss(torch.zeros(2, 3), np.ones((2, 3))).item() == pytest.approx(math.log(2))


def test_qkv_loss_trains_every_map():
    g = torch.Generator().manual_seed(0)
    kg = F.normalize(torch.randn(60, 8, generator=g), dim=-1)
    det = O.QKVDetector(dim=8)
    gold = np.random.default_rng(0).choice(60, size=(16, 3))
    ents, preds, labels = O.qkv_kg_sample(gold, 60, 60, e=20, p=20, rng=0)
    loss = O.qkv_loss(det(kg[torch.as_tensor(gold)], kg[torch.as_tensor(ents)], kg[torch.as_tensor(preds)]), labels)
    loss.backward()
    for name, param in det.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name  # every map gets a gradient


def test_random_detector_scores_half_per_slot_and_an_eighth_per_fact():
    m = ookg_metrics(O.random_in_kg((20000, 3), rng=0), O.random_in_kg((20000, 3), rng=1))
    for slot in ("subj", "rel", "obj"):
        assert m[slot] == pytest.approx(50.0, abs=1.0)
    assert m["fact"] == pytest.approx(12.5, abs=1.0)
