"""Golden values of the distillation card (spec/distillation.md §9.2)."""

import pytest
import torch

from modalbridge.nn.distillation import (
    LogitEnsemble,
    calibration_weights,
    distillation_objective,
    kd_loss,
    per_sample_weights,
)


@pytest.mark.parametrize("tau,expected", [(1.0, 0.43304), (2.0, 0.49314), (3.0, 0.48952)])
def test_kd_golden(tau, expected):
    t, s = torch.tensor([[2.0, 0.0, 0.0]]), torch.tensor([[0.0, 0.0, 0.0]])
    assert kd_loss(s, t, tau).item() == pytest.approx(expected, abs=1e-5)


def test_kd_zero_with_zero_gradient_when_equal():
    z = torch.randn(4, 7, requires_grad=True)
    loss = kd_loss(z, z.detach().clone(), tau=2.0)
    loss.backward()
    assert loss.item() == pytest.approx(0.0, abs=1e-6)
    assert z.grad.abs().max().item() < 1e-6


def test_kd_non_negative():
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        assert kd_loss(torch.randn(8, 5, generator=g), torch.randn(8, 5, generator=g), 1.5).item() >= 0


def test_lambda_extremes():
    g = torch.Generator().manual_seed(1)
    s = {"verb": torch.randn(6, 4, generator=g), "noun": torch.randn(6, 5, generator=g)}
    t = {"verb": torch.randn(6, 4, generator=g), "noun": torch.randn(6, 5, generator=g)}
    y = {"verb": torch.randint(0, 4, (6,), generator=g), "noun": torch.randint(0, 5, (6,), generator=g)}
    ce, _ = distillation_objective(s, y, None, lam=0.0, tau=1.0)
    ce0, _ = distillation_objective(s, y, t, lam=0.0, tau=1.0)
    kd, _ = distillation_objective(s, y, t, lam=1.0, tau=1.0)
    expected_kd = (kd_loss(s["verb"], t["verb"]) + kd_loss(s["noun"], t["noun"])) / 2
    assert ce0.item() == pytest.approx(ce.item()) and kd.item() == pytest.approx(expected_kd.item())


@pytest.mark.parametrize("gamma,expected", [(1, [0.81757, 0.18243]), (30, [0.51250, 0.48750]),
                                            (3, [0.62246, 0.37754]), (0.33, [0.98950, 0.01050])])
def test_calibration_weight_goldens(gamma, expected):
    w = calibration_weights(torch.tensor([0.5, 2.0]), gamma)
    assert w.tolist() == pytest.approx(expected, abs=1e-5)
    assert w.sum().item() == pytest.approx(1.0)


def test_ensemble_averages_logits():
    w = calibration_weights(torch.tensor([0.5, 2.0]), 1.0)
    ens = LogitEnsemble(["a", "b"], {"action": w})
    out = ens([{"action": torch.tensor([[2.0, 0.0, 0.0]])}, {"action": torch.tensor([[0.0, 1.0, 0.0]])}])
    assert out["action"][0].tolist() == pytest.approx([1.63515, 0.18243, 0.0], abs=1e-5)


def test_identical_teachers_give_the_teacher_and_nan_is_refused():
    z = {"action": torch.randn(3, 4)}
    ens = LogitEnsemble(["a", "b"], {"action": torch.tensor([0.3, 0.7])})
    assert torch.allclose(ens([z, z])["action"], z["action"], atol=1e-6)
    with pytest.raises(FloatingPointError, match="teacher"):
        ens([z, {"action": torch.full((3, 4), float("nan"))}])


def test_per_sample_weights_golden_and_per_clip():
    # two teachers, two clips: teacher a is right on clip 0, teacher b on clip 1
    z = torch.tensor([[[2.0, 0.0], [2.0, 0.0]], [[0.0, 1.0], [0.0, 1.0]]])  # (M=2, B=2, C=2)
    w = per_sample_weights(z, torch.tensor([0, 1]), gamma=1.0)
    assert w[:, 0].tolist() == pytest.approx([0.76608, 0.23392], abs=1e-5)
    assert w[0, 1] < 0.5 < w[1, 1] and torch.allclose(w.sum(0), torch.ones(2))
    # gamma -> infinity: the plain mean; gamma -> 0: the teacher with the lower CE on that clip
    assert torch.allclose(per_sample_weights(z, torch.tensor([0, 1]), 1e6), torch.full((2, 2), 0.5), atol=1e-5)
    assert per_sample_weights(z, torch.tensor([0, 1]), 1e-3).round().tolist() == [[1.0, 0.0], [0.0, 1.0]]


def test_per_sample_ensemble_uses_labels_only_when_given():
    a, b = {"action": torch.tensor([[2.0, 0.0]])}, {"action": torch.tensor([[0.0, 1.0]])}
    ens = LogitEnsemble(["a", "b"], {"action": torch.tensor([0.5, 0.5])}, per_sample_gamma=1.0)
    assert ens([a, b])["action"][0].tolist() == pytest.approx([1.0, 0.5])  # no labels: the fixed weights
    out = ens([a, b], {"action": torch.tensor([0])})["action"][0]
    assert out.tolist() == pytest.approx([2 * 0.76608, 0.23392], abs=1e-4)
