"""Top-k, action, mean-class accuracy and baselines: goldens, scikit-learn agreement, invariants."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, balanced_accuracy_score, top_k_accuracy_score

from modalbridge.metrics import (
    action_accuracy,
    binomial_stderr,
    epic_metrics,
    majority_baseline,
    mean_class_accuracy,
    per_class_accuracy,
    topk_accuracy,
    topk_correct,
)

SIZES = dict(n=st.integers(1, 60), c=st.integers(3, 12), seed=st.integers(0, 2**31 - 1))


def _random(n, c, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, generator=g), torch.randint(0, c, (n,), generator=g)


def test_topk_golden():
    logits = torch.tensor([[0.1, 0.5, 0.2, 0.0],    # target 2 is 2nd
                           [0.9, 0.0, 0.05, 0.05],   # target 0 is 1st
                           [0.0, 0.1, 0.2, 0.3]])    # target 0 is 4th
    targets = torch.tensor([2, 0, 0])
    assert topk_accuracy(logits, targets, ks=(1, 2, 3, 4)) == pytest.approx(
        {1: 100 / 3, 2: 200 / 3, 3: 200 / 3, 4: 100.0})
    assert topk_correct(logits, targets, 2).tolist() == [True, True, False]


def test_k_is_clipped_and_numpy_accepted():
    logits, targets = _random(20, 3, 0)
    acc = topk_accuracy(logits.numpy(), targets.numpy(), ks=(1, 5))
    assert acc[5] == 100.0
    assert isinstance(acc[1], float)


def test_ties_follow_topk_order():
    logits = torch.zeros(4, 5)
    targets = torch.arange(4)
    expected = (logits.topk(1, dim=1).indices[:, 0] == targets).double().mean().item() * 100
    assert topk_accuracy(logits, targets, ks=(1,))[1] == expected


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.UndefinedMetricWarning")  # k >= C
@settings(max_examples=60, deadline=None)
@given(**SIZES)
def test_topk_matches_sklearn(n, c, seed):
    logits, targets = _random(n, c, seed)
    ks = (1, 2, 5)
    ours = topk_accuracy(logits, targets, ks)
    assert ours[1] == pytest.approx(100 * accuracy_score(targets, logits.argmax(1)))
    for k in ks:
        ref = top_k_accuracy_score(targets.numpy(), logits.numpy(), k=min(k, c), labels=np.arange(c))
        assert ours[k] == pytest.approx(100 * ref)
    assert ours[1] <= ours[2] <= ours[5]


@pytest.mark.filterwarnings("ignore::UserWarning")  # sklearn: absent/single labels
@settings(max_examples=60, deadline=None)
@given(**SIZES)
def test_mean_class_accuracy_matches_balanced_accuracy(n, c, seed):
    logits, targets = _random(n, c, seed)
    preds = logits.argmax(1)
    # sklearn ignores classes that are predicted but absent from y_true (with a warning), as we do
    ref = balanced_accuracy_score(targets.numpy(), preds.numpy())
    assert mean_class_accuracy(logits, targets) == pytest.approx(100 * ref)
    assert mean_class_accuracy(preds, targets, num_classes=c) == pytest.approx(100 * ref)


def test_per_class_accuracy_nan_for_absent_classes():
    logits = torch.tensor([[1.0, 0, 0], [1.0, 0, 0], [0, 1.0, 0]])
    targets = torch.tensor([0, 1, 1])
    per_class = per_class_accuracy(logits, targets)
    assert per_class[:2].tolist() == [100.0, 50.0]
    assert torch.isnan(per_class[2])
    assert mean_class_accuracy(logits, targets) == 75.0


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 60), cv=st.integers(2, 9), cn=st.integers(2, 9), seed=st.integers(0, 2**31 - 1))
def test_action_accuracy_invariants(n, cv, cn, seed):
    vl, vt = _random(n, cv, seed)
    nl, nt = _random(n, cn, seed + 1)
    action = action_accuracy(vl, nl, vt, nt)
    verb, noun = topk_accuracy(vl, vt, (1,))[1], topk_accuracy(nl, nt, (1,))[1]
    assert action <= min(verb, noun) + 1e-9
    both = (vl.argmax(1) == vt) & (nl.argmax(1) == nt)
    assert action == pytest.approx(100 * both.double().mean().item())


def test_action_accuracy_golden():
    vl = torch.tensor([[1.0, 0], [1.0, 0], [0, 1.0], [0, 1.0]])
    nl = torch.tensor([[1.0, 0], [0, 1.0], [0, 1.0], [1.0, 0]])
    vt = torch.tensor([0, 0, 0, 1])
    nt = torch.tensor([0, 0, 1, 0])
    # verb right: 1,1,0,1  noun right: 1,0,1,1  both: 1,0,0,1
    assert action_accuracy(vl, nl, vt, nt) == 50.0


def test_epic_metrics_keys_masks_and_no_nan():
    vl, vt = _random(30, 8, 1)
    nl, nt = _random(30, 10, 2)
    unseen = torch.zeros(30, dtype=torch.bool)
    unseen[:10] = True
    masks = {"unseen": unseen, "tail": torch.zeros(30, dtype=torch.bool)}
    out = epic_metrics(vl, nl, vt, nt, masks)
    assert set(out) == {"verb_top1", "verb_top5", "noun_top1", "noun_top5", "action_top1",
                        "unseen/verb_top1", "unseen/noun_top1", "unseen/action_top1"}
    assert all(np.isfinite(v) for v in out.values())
    assert out["verb_top1"] == topk_accuracy(vl, vt, (1,))[1]
    assert out["noun_top5"] == topk_accuracy(nl, nt, (5,))[5]
    assert out["action_top1"] == action_accuracy(vl, nl, vt, nt)
    assert out["unseen/action_top1"] == action_accuracy(vl[:10], nl[:10], vt[:10], nt[:10])
    assert out["verb_top5"] >= out["verb_top1"] and out["noun_top5"] >= out["noun_top1"]
    assert epic_metrics(vl, nl, vt, nt) == {k: v for k, v in out.items() if "/" not in k}


def test_epic_metrics_rejects_bad_mask():
    vl, vt = _random(5, 3, 0)
    with pytest.raises(ValueError, match="mask 'x'"):
        epic_metrics(vl, vl, vt, vt, {"x": torch.ones(4, dtype=torch.bool)})


def test_one_sample_is_not_averaged():
    logits = torch.tensor([[0.0, 2.0, 1.0]])
    assert topk_accuracy(logits, torch.tensor([1]), (1, 5)) == {1: 100.0, 5: 100.0}
    assert topk_accuracy(logits, torch.tensor([2]), (1, 2)) == {1: 0.0, 2: 100.0}


def test_majority_baseline():
    train = torch.tensor([2, 2, 1, 0, 2, 1])
    assert majority_baseline(train, torch.tensor([2, 1, 2, 0])) == 50.0
    assert majority_baseline(np.array([1, 0]), np.array([0, 0, 1])) == pytest.approx(200 / 3)  # tie -> 0


def test_binomial_stderr():
    assert binomial_stderr(50.0, 100) == 5.0
    assert binomial_stderr(100.0, 7) == 0.0


@pytest.mark.parametrize("bad", [
    dict(logits=torch.zeros(3), targets=torch.zeros(3, dtype=torch.long)),
    dict(logits=torch.zeros(3, 2), targets=torch.zeros(2, dtype=torch.long)),
    dict(logits=torch.zeros(3, 2), targets=torch.tensor([0, 1, 2])),
    dict(logits=torch.zeros(3, 2), targets=torch.zeros(3)),
    dict(logits=torch.zeros(0, 2), targets=torch.zeros(0, dtype=torch.long)),
])
def test_bad_inputs_raise(bad):
    with pytest.raises(ValueError):
        topk_accuracy(bad["logits"], bad["targets"])
