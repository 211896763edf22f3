"""The atlas losses (spec ``text2atlas.md`` §4, golden checks of §9): the SOD loss's hand-computed values and its
invariants (bounds, permutations, padding — also with ŷ exactly at the origin, where the reference's 1e15 padding
fails —, translation, batch mean, gradients, an SGD step), the MSE baseline's real-points target and the
batch-all triplet loss against a naive triple loop."""

from __future__ import annotations

import itertools

import pytest
import torch

from modalbridge.tasks.atlas.losses import (
    batch_all_triplet_loss,
    mse_point_loss,
    pairwise_distances,
    sod_loss,
    sod_per_sample,
)


def one(pred, organs, gamma_p=0.1, gamma_o=1.0):
    """SOD of one sample: ``pred`` (3,), ``organs`` a list of (N, 3) point lists (same N)."""
    points = torch.tensor([organs], dtype=torch.float32)
    mask = torch.ones(1, len(organs), dtype=torch.bool)
    return float(sod_loss(torch.tensor([pred], dtype=torch.float32), points, mask, gamma_p, gamma_o))


def test_single_point_single_organ_is_the_euclidean_distance():
    assert one([0.0, 0.0, 0.0], [[[3.0, 4.0, 0.0]]]) == pytest.approx(5.0, abs=1e-6)


def test_two_points_golden_values():
    organ = [[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]]  # distances (0, 1) from the origin
    assert one([0, 0, 0], organ, gamma_p=1.0) == pytest.approx(0.2689414, abs=1e-7)
    assert one([0, 0, 0], organ, gamma_p=0.1) == pytest.approx(4.5398e-5, rel=1e-4)


def test_two_organs_golden_values():
    organ_a = [[0.2, 0.0, 0.0], [0.0, 0.4, 0.0]]  # distances (0.2, 0.4)
    organ_b = [[0.0, 0.0, 0.1], [0.9, 0.0, 0.0]]  # distances (0.1, 0.9)
    assert one([0, 0, 0], [organ_a]) == pytest.approx(0.2238406, abs=1e-7)
    assert one([0, 0, 0], [organ_b]) == pytest.approx(0.1002683, abs=1e-7)
    assert one([0, 0, 0], [organ_a, organ_b], gamma_o=1.0) == pytest.approx(0.1582418, abs=1e-7)


def random_batch(b=4, m=3, n=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    pred = torch.rand(b, 3, generator=g) * 2 - 1
    points = torch.rand(b, m, n, 3, generator=g) * 2 - 1
    mask = torch.ones(b, m, dtype=torch.bool)
    if m == 3:
        mask[1, 2] = mask[2, 1:] = False
    return pred, points, mask


@pytest.mark.parametrize("gamma", [0.01, 0.1, 1.0, 10.0])
def test_loss_lies_between_the_minimum_and_the_mean_distance(gamma):
    pred, points, _ = random_batch(m=1)
    d = torch.linalg.vector_norm(pred[:, None, None] - points, dim=-1)[:, 0]  # (B, N)
    loss = sod_per_sample(pred, points, torch.ones(4, 1, dtype=torch.bool), gamma_p=gamma)
    assert (d.min(1).values - 1e-6 <= loss).all() and (loss <= d.mean(1) + 1e-6).all()
    hard = sod_per_sample(pred, points, torch.ones(4, 1, dtype=torch.bool), gamma_p=1e-4)
    assert torch.allclose(hard, d.min(1).values, atol=1e-4)  # γ → 0: the hard minimum


def test_inside_an_organ_the_loss_is_small_but_not_zero():
    organ = [[[0.0, 0.0, 0.0], [0.01, 0.0, 0.0], [0.0, 0.02, 0.0]]]
    value = one([0.0, 0.0, 0.0], organ)
    assert 0 < value < 0.01


def test_invariant_to_permutations_of_points_and_organs():
    pred, points, mask = random_batch()
    base = sod_per_sample(pred, points, mask)
    shuffled = points[:, :, torch.randperm(points.shape[2])]
    assert torch.allclose(sod_per_sample(pred, shuffled, mask), base, atol=1e-6)
    order = torch.tensor([2, 0, 1])
    assert torch.allclose(sod_per_sample(pred, points[:, order], mask[:, order]), base, atol=1e-6)


@pytest.mark.parametrize("at_origin", [False, True])
def test_invariant_to_added_padded_organs(at_origin):
    """Zero-padded organs change nothing — also with ŷ exactly at the origin, where the reference's 1e15 scaling
    gives a padded organ loss 0 and lets it win the organ soft-min."""
    pred, points, mask = random_batch()
    if at_origin:
        pred = torch.zeros_like(pred)
    base = sod_per_sample(pred, points, mask)
    padded = torch.cat([points, torch.zeros(4, 2, points.shape[2], 3)], dim=1)
    padded_mask = torch.cat([mask, torch.zeros(4, 2, dtype=torch.bool)], dim=1)
    assert torch.allclose(sod_per_sample(pred, padded, padded_mask), base, atol=1e-6)
    assert (base > 0.01).all()


def test_invariant_to_translating_prediction_and_points_together():
    pred, points, mask = random_batch()
    shift = torch.tensor([0.3, -0.7, 0.2])
    assert torch.allclose(sod_per_sample(pred + shift, points + shift, mask), sod_per_sample(pred, points, mask),
                          atol=1e-5)


def test_batch_value_is_the_mean_of_single_sample_values():
    pred, points, mask = random_batch()
    singles = [float(sod_loss(pred[i:i + 1], points[i:i + 1], mask[i:i + 1], 0.5, 0.5)) for i in range(4)]
    assert float(sod_loss(pred, points, mask, 0.5, 0.5)) == pytest.approx(sum(singles) / 4, rel=1e-6)


def test_a_sample_without_organs_is_left_out_of_the_mean():
    pred, points, mask = random_batch()
    mask[3] = False
    assert float(sod_per_sample(pred, points, mask)[3]) == 0.0
    full = sod_per_sample(pred, points, mask)[:3].mean()
    assert float(sod_loss(pred, points, mask)) == pytest.approx(float(full), rel=1e-6)


def test_gradients_are_finite_and_an_sgd_step_moves_towards_the_nearest_organ():
    pred = torch.zeros(1, 3, requires_grad=True)  # exactly at the origin, with padded organs: no NaN
    near = torch.tensor([[0.3, 0.0, 0.0], [0.4, 0.1, 0.0], [0.35, -0.05, 0.0]])
    far = torch.tensor([[-0.9, 0.0, 0.0], [-0.8, 0.1, 0.0], [-0.85, 0.0, 0.1]])
    points = torch.stack([near, far, torch.zeros(3, 3)])[None]  # (1, 3, 3, 3); organ 2 is padding
    mask = torch.tensor([[True, True, False]])
    loss = sod_loss(pred, points, mask)
    loss.backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0
    with torch.no_grad():
        moved = pred - 0.1 * pred.grad
    nearest = near.mean(0)
    assert torch.linalg.vector_norm(moved - nearest) < torch.linalg.vector_norm(pred.detach() - nearest)
    assert float(sod_loss(moved, points, mask)) < float(loss.detach())


def test_bad_shapes_and_temperatures_are_refused():
    pred, points, mask = random_batch()
    with pytest.raises(ValueError, match="organ_mask"):
        sod_loss(pred, points[:, :2], mask)
    with pytest.raises(ValueError, match="positive"):
        sod_loss(pred, points, mask, gamma_p=0.0)


def test_mse_targets_the_mean_of_the_real_points_only():
    pred = torch.tensor([[0.0, 0.0, 0.0]])
    points = torch.tensor([[[[1.0, 0.0, 0.0], [3.0, 0.0, 0.0]],
                            [[0.0, 2.0, 0.0], [0.0, 4.0, 0.0]],
                            [[9.0, 9.0, 9.0], [9.0, 9.0, 9.0]]]])  # organ 2 is padding
    mask = torch.tensor([[True, True, False]])
    # target (1, 1.5, 0): MSE = (1 + 2.25 + 0) / 3
    assert float(mse_point_loss(pred, points, mask)) == pytest.approx(3.25 / 3, rel=1e-6)


def naive_triplet(emb: torch.Tensor, labels: list, margin: float) -> float:
    d = torch.cdist(emb.double(), emb.double())
    terms = []
    for a, p, n in itertools.product(range(len(emb)), repeat=3):
        if a != p and labels[a] == labels[p] and labels[a] != labels[n]:
            terms.append(max(0.0, float(d[a, p] - d[a, n]) + margin))
    positive = [t for t in terms if t > 1e-16]
    return sum(positive) / max(1, len(positive))


@pytest.mark.parametrize("margin", [0.2, 2.0])
def test_batch_all_triplet_loss_matches_a_triple_loop(margin):
    g = torch.Generator().manual_seed(1)
    emb = torch.nn.functional.normalize(torch.randn(7, 5, generator=g), dim=-1)
    sets = [(0,), (0,), (1, 2), (1, 2), (1,), (0,), (3,)]
    hot = torch.zeros(7, 4)
    for i, s in enumerate(sets):
        hot[i, list(s)] = 1.0
    value = float(batch_all_triplet_loss(emb, hot, margin))
    assert value == pytest.approx(naive_triplet(emb, sets, margin), rel=1e-5)
    ids = torch.tensor([0, 0, 5, 5, 1, 0, 3])  # the same grouping as class ids
    assert float(batch_all_triplet_loss(emb, ids, margin)) == pytest.approx(value, rel=1e-6)


def test_triplet_loss_without_positives_is_zero_and_differentiable():
    emb = torch.randn(4, 3, requires_grad=True)
    loss = batch_all_triplet_loss(emb, torch.arange(4))
    assert float(loss.detach()) == 0.0
    loss.backward()
    assert torch.isfinite(emb.grad).all()
    identical = torch.ones(3, 3, requires_grad=True)  # zero distances: the gradient stays finite
    pairwise_distances(identical).sum().backward()
    assert torch.isfinite(identical.grad).all()
