"""ECE: spec golden, both call forms, a brute-force reference, reliability bins, action ECE."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from modalbridge.metrics import action_ece, expected_calibration_error, reliability_bins


def _ece_loop(conf, correct, n_bins=15):
    """Textbook ECE with explicit (lo, hi] bins, x100 -- an independent reference."""
    conf, correct = np.asarray(conf, dtype=float), np.asarray(correct, dtype=float)
    edges = np.arange(n_bins + 1) / n_bins
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        in_bin = (conf > lo) & (conf <= hi)
        if in_bin.any():
            total += in_bin.mean() * abs(correct[in_bin].mean() - conf[in_bin].mean())
    return 100 * total


def test_spec_golden():
    # distillation.md §9.2: 0.4375 -> x100
    ece = expected_calibration_error(confidences=[0.9, 0.8, 0.6, 0.55], correct=[1, 0, 1, 1], n_bins=15)
    assert ece == pytest.approx(43.75)
    assert ece == pytest.approx(_ece_loop([0.9, 0.8, 0.6, 0.55], [1, 0, 1, 1]))


def test_perfectly_calibrated_is_zero():
    # 10 samples at confidence 0.7 with 7 correct, 4 at 0.25 with 1 correct
    conf = torch.tensor([0.7] * 10 + [0.25] * 4, dtype=torch.float64)
    correct = torch.tensor([True] * 7 + [False] * 3 + [True] + [False] * 3)
    assert expected_calibration_error(confidences=conf, correct=correct) == pytest.approx(0.0, abs=1e-9)
    probs = torch.eye(3)[torch.tensor([0, 1, 2])]  # certain and right
    assert expected_calibration_error(probs, torch.tensor([0, 1, 2])) == 0.0


def test_probs_form_uses_top_label():
    probs = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.45, 0.55]])
    targets = torch.tensor([0, 0, 1, 1])  # correctness 1, 0, 1, 1 -> the golden
    assert expected_calibration_error(probs, targets) == pytest.approx(43.75)
    assert expected_calibration_error(probs.numpy(), targets.numpy()) == pytest.approx(43.75)


@settings(max_examples=50, deadline=None)
@given(n=st.integers(1, 200), n_bins=st.integers(1, 20), seed=st.integers(0, 2**31 - 1))
def test_matches_bruteforce(n, n_bins, seed):
    rng = np.random.default_rng(seed)
    conf = rng.uniform(0.05, 1.0, n)
    conf[: n // 4] = np.round(conf[: n // 4] * n_bins) / n_bins  # include values on bin edges
    correct = rng.uniform(size=n) < conf
    ours = expected_calibration_error(confidences=conf, correct=correct, n_bins=n_bins)
    assert ours == pytest.approx(_ece_loop(conf, correct, n_bins), abs=1e-9)
    assert 0.0 <= ours <= 100.0


def test_bins_are_left_open_right_closed():
    out = reliability_bins(confidences=[0.2, 0.2000001, 1.0], correct=[1, 0, 1], n_bins=5)
    assert out["count"].tolist() == [1, 1, 0, 0, 1]  # 0.2 in (0, 0.2]; just above in (0.2, 0.4]


def test_reliability_bins():
    out = reliability_bins(confidences=[0.9, 0.8, 0.6, 0.55], correct=[1, 0, 1, 1], n_bins=10)
    assert out["edges"].shape == (11,)
    assert out["count"].sum() == 4 and out["count"][5] == 2  # 0.55, 0.6 in (0.5, 0.6]
    assert out["accuracy"][5] == 1.0 and out["confidence"][5] == pytest.approx(0.575)
    assert torch.isnan(out["accuracy"][0]) and torch.isnan(out["confidence"][0])
    assert out["ece"] == pytest.approx(43.75)


def test_call_form_errors():
    with pytest.raises(ValueError, match="confidences=.*correct="):
        expected_calibration_error([0.9, 0.8], [1, 0])  # 1-D probs: must use the keyword form
    with pytest.raises(ValueError, match="not both"):
        expected_calibration_error(torch.eye(2), torch.arange(2), confidences=[0.5, 0.5], correct=[1, 1])
    with pytest.raises(ValueError, match="softmax"):
        expected_calibration_error(torch.tensor([[2.0, -1.0]]), torch.tensor([0]))
    with pytest.raises(ValueError, match="0/1"):
        expected_calibration_error(confidences=[0.5], correct=[2])


def test_action_ece_definition():
    verb = torch.tensor([[0.9, 0.1], [0.6, 0.4]])
    noun = torch.tensor([[0.5, 0.5], [0.2, 0.8]])
    vt, nt = torch.tensor([0, 1]), torch.tensor([0, 1])
    # confidence = 0.9 * 0.5, 0.6 * 0.8; correct = (verb ok and noun ok) = 1 (topk picks class 0), 0
    conf = torch.tensor([0.45, 0.48])
    noun_first = noun.topk(1, dim=1).indices[:, 0] == nt
    correct = torch.tensor([True, False]) & noun_first
    assert action_ece(verb, noun, vt, nt) == pytest.approx(
        expected_calibration_error(confidences=conf, correct=correct))


def test_action_ece_bounded_by_one():
    g = torch.Generator().manual_seed(0)
    verb = torch.randn(100, 5, generator=g).softmax(1)
    noun = torch.randn(100, 7, generator=g).softmax(1)
    vt, nt = torch.randint(0, 5, (100,), generator=g), torch.randint(0, 7, (100,), generator=g)
    assert 0.0 <= action_ece(verb, noun, vt, nt) <= 100.0


def test_reliability_bins_hand_computed_from_probs():
    # top-label confidences 0.7, 0.65, 0.9, 0.95, correct 1, 0, 1, 0; 4 bins (0, .25], ..., (.75, 1]
    probs = torch.tensor([[0.7, 0.3], [0.35, 0.65], [0.1, 0.9], [0.95, 0.05]])
    out = reliability_bins(probs, torch.tensor([0, 0, 1, 1]), n_bins=4)
    assert out["edges"].tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert out["count"].tolist() == [0, 0, 2, 2]
    assert out["accuracy"][2:].tolist() == [0.5, 0.5]
    assert out["confidence"][2:].tolist() == pytest.approx([0.675, 0.925])
    assert torch.isnan(out["accuracy"][:2]).all() and torch.isnan(out["confidence"][:2]).all()
    # 2/4 * |0.5 - 0.675| + 2/4 * |0.5 - 0.925| = 0.3
    assert out["ece"] == pytest.approx(30.0)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 200), n_classes=st.integers(2, 12), n_bins=st.integers(1, 20),
       seed=st.integers(0, 2**31 - 1))
def test_reliability_bins_agree_with_ece(n, n_classes, n_bins, seed):
    g = torch.Generator().manual_seed(seed)
    probs = (torch.randn(n, n_classes, generator=g) * 3).softmax(1)
    targets = torch.randint(0, n_classes, (n,), generator=g)
    out = reliability_bins(probs, targets, n_bins=n_bins)
    assert out["ece"] == expected_calibration_error(probs, targets, n_bins=n_bins)  # one binning, same bits
    seen = out["count"] > 0
    weighted = (out["count"][seen] / n * (out["accuracy"][seen] - out["confidence"][seen]).abs()).sum()
    assert out["ece"] == pytest.approx(100 * weighted.item(), abs=1e-9)
    assert out["count"].sum() == n
