"""Scene metrics (spec §6, §9 "metrics"): golden values, mirror max and flip handling, padding invariance,
summaries, scene completion and the Text2Scene protocol."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from modalbridge.tasks.scenes import vocab
from modalbridge.tasks.scenes.metrics import (
    absolute_similarity,
    common_clipart_similarity,
    completion_scores,
    flip_accuracy,
    group_mask,
    object_precision_recall,
    pose_expression_accuracy,
    relative_similarity,
    scene_scores,
    summarise,
    text2scene_metrics,
    welch_comparison,
)

GT3 = torch.tensor([[[100.0, 100.0], [300.0, 200.0], [450.0, 350.0]]])
PRED3 = torch.tensor([[[110.0, 110.0], [290.0, 210.0], [450.0, 350.0]]])
ALL3 = torch.ones(1, 3, dtype=torch.bool)


def _random_layout(n, seed, batch=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, n, 2, generator=g, dtype=torch.float64) * torch.tensor([500.0, 400.0],
                                                                                       dtype=torch.float64)


def _ids(*names):
    return [vocab.clipart_id(n) for n in names]


def _per_scene_reference(pred, gt, sigma=0.2):
    """Straight per-scene numpy transcription of the spec's formulas (N valid clip-arts only)."""
    scale = np.array([500.0, 400.0])
    p, g = np.asarray(pred) / scale, np.asarray(gt) / scale
    n = len(p)
    d = np.sqrt(((p - g) ** 2).sum(-1) + 1e-15)
    s_abs = np.mean([math.exp(-d[i] / (2 * sigma)) for i in range(n)])
    total = sum(math.exp(-abs(np.linalg.norm(g[i] - g[j]) - np.linalg.norm(p[i] - p[j])) / (2 * sigma))
                for i in range(n) for j in range(n) if i != j)
    return s_abs, total / (n - 1) ** 2, total / (n * (n - 1))


def test_golden_three_clipart_scene():
    assert float(absolute_similarity(PRED3, GT3, ALL3)) == pytest.approx(0.948720, abs=5e-7)
    assert float(relative_similarity(PRED3, GT3, ALL3)) == pytest.approx(1.414570, abs=5e-7)
    rel_mean = float(relative_similarity(PRED3, GT3, ALL3, normalisation="mean"))
    assert rel_mean == pytest.approx(0.943046, abs=5e-7)
    # the card's two S_rel numbers are one sum (5.658278) over the (N−1)² = 4 and N(N−1) = 6 normalisers
    assert float(relative_similarity(PRED3, GT3, ALL3)) * 4 == pytest.approx(
        float(relative_similarity(PRED3, GT3, ALL3, normalisation="mean")) * 6)


def test_perfect_layout_of_six():
    gt = _random_layout(6, 0)
    mask = torch.ones(1, 6, dtype=torch.bool)
    s_abs = float(absolute_similarity(gt, gt, mask))
    assert s_abs == pytest.approx(1.0, abs=1e-7)
    assert s_abs == pytest.approx(0.99999992, abs=5e-9)  # the reference's +1e-15 under the root, float64
    assert float(relative_similarity(gt, gt, mask)) == pytest.approx(1.2, abs=1e-12)
    assert float(relative_similarity(gt, gt, mask, normalisation="mean")) == pytest.approx(1.0, abs=1e-12)


def test_mirrored_prediction_wins_through_the_mirror_max_and_flips_are_inverted():
    gt = _random_layout(6, 1)
    mirrored = gt.clone()
    mirrored[..., 0] = 500 - mirrored[..., 0]
    mask = torch.ones(1, 6, dtype=torch.bool)
    result = absolute_similarity(mirrored, gt, mask, return_mirrored=True)
    assert float(result.score) == pytest.approx(1.0, abs=1e-7)
    assert result.mirrored.tolist() == [True]
    assert float(absolute_similarity(mirrored, gt, mask, mirror=False)) < 0.99
    assert float(relative_similarity(mirrored, gt, mask)) == pytest.approx(1.2)  # mirror-invariant
    gt_o = torch.tensor([[0, 1, 1, 0, 0, 1]])
    pred_o = 1 - gt_o  # a mirrored scene faces the other way
    assert float(flip_accuracy(pred_o, gt_o, mask, result.mirrored)) == 1.0
    assert float(flip_accuracy(pred_o, gt_o, mask)) == 0.0
    straight = absolute_similarity(gt, gt, mask, return_mirrored=True)
    assert straight.mirrored.tolist() == [False]


def test_padding_does_not_change_a_scene_score():
    small, big = _random_layout(3, 2), _random_layout(7, 3)
    small_pred, big_pred = _random_layout(3, 4), _random_layout(7, 5)
    pad = torch.zeros(1, 4, 2, dtype=torch.float64)
    pred = torch.cat([torch.cat([small_pred, pad + 123.0], 1), big_pred])  # padding slots hold junk
    gt = torch.cat([torch.cat([small, pad], 1), big])
    mask = torch.tensor([[1, 1, 1, 0, 0, 0, 0], [1] * 7], dtype=torch.bool)
    for metric in (absolute_similarity, relative_similarity):
        batched = metric(pred, gt, mask)
        assert float(batched[0]) == pytest.approx(float(metric(small_pred, small, mask[:1, :3])), abs=1e-14)
        assert float(batched[1]) == pytest.approx(float(metric(big_pred, big, mask[1:])), abs=1e-14)
    o = torch.tensor([[1, 0, 1, 3, 3, 3, 3], [0] * 7])
    assert flip_accuracy(o, torch.tensor([[1, 0, 0, 0, 0, 0, 0], [0] * 7]), mask).tolist() == [2 / 3, 1.0]


def test_batched_metrics_match_a_per_scene_transcription():
    n_per_scene = [3, 6, 17, 9]
    gt, pred = _random_layout(17, 6, batch=4), _random_layout(17, 7, batch=4)
    mask = torch.arange(17)[None, :] < torch.tensor(n_per_scene)[:, None]
    s_abs = absolute_similarity(pred, gt, mask, mirror=False)
    s_rel = relative_similarity(pred, gt, mask)
    s_mean = relative_similarity(pred, gt, mask, normalisation="mean")
    for b, n in enumerate(n_per_scene):
        expected = _per_scene_reference(pred[b, :n], gt[b, :n])
        assert (float(s_abs[b]), float(s_rel[b]), float(s_mean[b])) == pytest.approx(expected, rel=1e-12)


def test_undefined_scenes_are_nan_and_bad_options_raise():
    one = torch.tensor([[[10.0, 10.0], [0.0, 0.0]]])
    mask = torch.tensor([[True, False]])
    assert math.isnan(float(relative_similarity(one, one, mask)))
    with pytest.raises(ValueError, match="normalisation"):
        relative_similarity(PRED3, GT3, ALL3, normalisation="sum")
    with pytest.raises(ValueError, match="unknown group"):
        group_mask(torch.tensor([[1]]), "robots")


def test_scene_scores_reads_a_scene_batch_and_summarise_gives_standard_errors():
    gt = _random_layout(6, 8, batch=3)
    batch = {"cliparts": torch.tensor([[1, 24, 59, 104, 0, 0], [5, 6, 7, 8, 9, 10], [30, 70, 95, 0, 0, 0]]),
             "x_px": gt[..., 0].float(), "y_px": gt[..., 1].float(),
             "o_gt": torch.tensor([[0, 1, 0, 1, 0, 0], [1, 1, 1, 0, 0, 0], [0, 0, 1, 0, 0, 0]])}
    pred = gt + 15.0
    scores = scene_scores(pred, batch["o_gt"], batch)
    assert set(scores) == {"abs_sim", "rel_sim", "rel_sim_mean", "flip_acc"}
    assert all(v.shape == (3,) and v.dtype == torch.float64 for v in scores.values())
    assert scores["flip_acc"].tolist() == [1.0, 1.0, 1.0]
    assert torch.allclose(scores["rel_sim"], scores["rel_sim_mean"] * torch.tensor([4 / 3, 6 / 5, 3 / 2],
                                                                                   dtype=torch.float64))
    summary = summarise(scores)
    values = scores["abs_sim"].numpy()
    assert summary["abs_sim"] == pytest.approx(values.mean())
    assert summary["abs_sim_se"] == pytest.approx(np.std(values, ddof=1) / math.sqrt(3))
    with_nan = summarise({"m": torch.tensor([0.2, float("nan"), 0.4, 0.9])})
    assert with_nan["m"] == pytest.approx(0.5)
    assert with_nan["m_se"] == pytest.approx(np.std([0.2, 0.4, 0.9], ddof=1) / math.sqrt(3))


def test_welch_comparison_of_two_systems():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.60, 0.1, 300), rng.normal(0.57, 0.1, 300)
    result = welch_comparison(torch.tensor(a), torch.tensor(np.append(b, np.nan)))
    reference = stats.ttest_ind(a, b, equal_var=False)
    assert result["p"] == pytest.approx(reference.pvalue)
    assert result["significant"] == (reference.pvalue < 0.01)
    assert result["mean_b"] == pytest.approx(b.mean())


# -- scene completion ----------------------------------------------------------------------------------------
def test_group_mask_and_completion_scores():
    ids = torch.tensor([_ids("s_3s.png", "hb0_0s.png", "hb1_5s.png", "a_2s.png") + [0],
                        _ids("p_8s.png", "a_0s.png", "t_4s.png") + [0, 0]])
    mask = ids != 0
    people = group_mask(ids, "people")
    assert people.tolist() == [[False, True, True, False, False], [False] * 5]
    gt = _random_layout(5, 9, batch=2)
    pred = gt.clone()
    pred[0, 1, 0] += 50.0  # Mike placed 50 px (0.1 canvas widths) off
    gt_o = torch.tensor([[0, 1, 0, 1, 0], [0, 0, 0, 0, 0]])
    pred_o = torch.tensor([[0, 0, 0, 1, 0], [0, 0, 0, 0, 0]])
    scores = completion_scores(pred, pred_o, gt, gt_o, mask, people)
    assert all(math.isnan(float(v[1])) for v in scores.values())  # no person in scene 2
    assert float(scores["abs_sim"][0]) == pytest.approx((math.exp(-0.1 / 0.4) + 1.0) / 2, abs=1e-7)
    assert float(scores["flip_acc"][0]) == 0.5
    # rel: member rows averaged over the other 3 valid clip-arts, then over the 2 members
    p, g = pred[0, :4] / torch.tensor([500.0, 400.0]), gt[0, :4] / torch.tensor([500.0, 400.0])
    sim = torch.exp(-(torch.cdist(p, p) - torch.cdist(g, g)).abs() / 0.4)
    expected = ((sim[1].sum() - sim[1, 1]) / 3 + (sim[2].sum() - sim[2, 2]) / 3) / 2
    assert float(scores["rel_sim"][0]) == pytest.approx(float(expected), abs=1e-9)
    assert summarise(scores)["abs_sim"] == pytest.approx(float(scores["abs_sim"][0]))


# -- Text2Scene protocol (Table 3.4) -------------------------------------------------------------------------
def test_object_precision_recall_counts_only_the_56_objects():
    gt = torch.tensor([_ids("hb0_0s.png", "hb1_0s.png", "a_2s.png", "s_3s.png", "t_4s.png") + [0],
                       _ids("hb0_7s.png", "p_8s.png", "c_1s.png", "e_5s.png", "a_0s.png", "s_2s.png")])
    pred = torch.tensor([_ids("hb0_3s.png", "hb1_0s.png", "a_2s.png", "s_3s.png", "t_0s.png") + [0] * 2,
                         _ids("hb0_7s.png", "p_8s.png", "c_1s.png", "a_0s.png", "t_1s.png", "t_2s.png",
                              "t_3s.png")])
    precision, recall = object_precision_recall(pred, gt)
    assert precision == pytest.approx(100 * 5 / 9)  # tp: a_2s s_3s | p_8s c_1s a_0s ; predicted objects 3 + 6
    assert recall == pytest.approx(100 * 5 / 8)  # GT objects 3 + 5
    assert len(vocab.OBJECT_INDICES) == 56


def test_pose_and_expression_accuracy():
    gt = torch.tensor([_ids("hb0_7s.png", "hb1_12s.png"), _ids("hb0_0s.png", "a_2s.png")])
    pred = torch.tensor([_ids("hb0_9s.png", "hb1_12s.png"), _ids("a_2s.png", "s_3s.png")])
    pose, expression = pose_expression_accuracy(pred, gt)
    # Mike 7 vs 9: pose 1 = 1, expression 2 ≠ 4; Jenny exact; scene 2: no Mike predicted → wrong
    assert pose == pytest.approx(100 * 2 / 3)
    assert expression == pytest.approx(100 * 1 / 3)
    no_people = torch.tensor([_ids("a_2s.png")] * 2)
    assert all(math.isnan(v) for v in pose_expression_accuracy(pred[:, 1:], no_people))


def test_common_clipart_similarity_uses_exact_ids_and_configurable_mirror():
    gt_ids = torch.tensor([_ids("hb0_7s.png", "a_2s.png", "s_3s.png")])
    gt_px = torch.tensor([[[100.0, 300.0], [200.0, 320.0], [400.0, 60.0]]])
    pred_ids = torch.tensor([_ids("s_3s.png", "hb0_8s.png", "a_2s.png", "t_0s.png")])  # Mike: other pose
    pred_px = torch.tensor([[[400.0, 60.0], [100.0, 300.0], [200.0, 320.0], [50.0, 50.0]]])
    assert float(common_clipart_similarity(pred_ids, pred_px, gt_ids, gt_px)) == pytest.approx(1.0, abs=1e-7)
    mirrored = pred_px.clone()
    mirrored[..., 0] = 500 - mirrored[..., 0]
    no_mirror = float(common_clipart_similarity(pred_ids, mirrored, gt_ids, gt_px))
    with_mirror = float(common_clipart_similarity(pred_ids, mirrored, gt_ids, gt_px, mirror=True))
    assert no_mirror < 0.7 and with_mirror == pytest.approx(1.0, abs=1e-7)
    nothing = common_clipart_similarity(torch.tensor([_ids("t_9s.png")]), pred_px[:, :1], gt_ids, gt_px)
    assert math.isnan(float(nothing))
    table = text2scene_metrics(pred_ids, pred_px, gt_ids, gt_px)
    assert set(table) == {"precision", "recall", "pose_acc", "expr_acc", "abs_sim", "abs_sim_se"}
    assert table["precision"] == pytest.approx(200 / 3) and table["recall"] == 100.0
