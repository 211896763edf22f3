"""The scenes LightningModules (spec §4–§6): the discrete and continuous losses (hand-computed on a 2-scene
example), and through the real CLI on the world with a tiny random-init BERT — fit → test with several decoding
strategies and the report's samples figure, a continuous model refused for hc, the naive baselines tested
without a checkpoint (the training-mean one with training statistics), and the clip-art predictor's fit."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from cli_checks import one_error
from modalbridge.cli import main
from modalbridge.tasks.scenes import vocab as V
from modalbridge.tasks.scenes.models import TINY_BERT
from modalbridge.tasks.scenes.module import continuous_loss, discrete_loss

REPO = Path(__file__).resolve().parents[3]
CONFIGS = REPO / "configs" / "scenes"
TINY = ["--model.init_args.model_kwargs", json.dumps({"bert_config": TINY_BERT})]
IG = V.IGNORE


# -- shared runs -------------------------------------------------------------------------------------------------
def fit_once(tmp_path_factory, name: str, config: str, *extra: str) -> Path:
    """Run folder of a 1-epoch fit of ``configs/scenes/<config>`` on 32 world scenes (batch 16), made once per test
    session (test_cli shares it) in the session's temporary folder."""
    run = tmp_path_factory.getbasetemp() / "scenes-runs" / name
    if not (run / "checkpoints" / "last.ckpt").is_file():
        assert main(["fit", "--config", str(CONFIGS / config), "--trainer.max_epochs", "1",
                     "--data.init_args.max_scenes", "32", "--data.init_args.batch_size", "16",
                     "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(run), *extra]) == 0
    return run


def tiny_sr_bert(tmp_path_factory) -> Path:
    """SR-BERT discrete with a tiny random-init BERT (2 layers, hidden 64), fitted one epoch on the world."""
    return fit_once(tmp_path_factory, "sr_bert_tiny", "world.yaml", *TINY)


def records(run: Path, stage: str) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r.get("stage") == stage]


@pytest.fixture(scope="module")
def sr_bert_run(tmp_path_factory) -> Path:
    return tiny_sr_bert(tmp_path_factory)


# -- losses ------------------------------------------------------------------------------------------------------
def log_probs(*shape: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g).log_softmax(-1).requires_grad_()


def test_discrete_loss_averages_over_selected_cliparts_only():
    out = {"x": log_probs(2, 3, V.X_VOCAB, seed=0), "y": log_probs(2, 3, V.Y_VOCAB, seed=1),
           "o": log_probs(2, 3, V.O_VOCAB, seed=2)}
    labels = {"x_label": torch.tensor([[4, IG, 25], [IG, 0, IG]]), "y_label": torch.tensor([[1, IG, 20], [IG, 7, IG]]),
              "o_label": torch.tensor([[0, IG, 1], [IG, 1, IG]])}
    loss, parts = discrete_loss(out, labels)
    selected = [(0, 0), (0, 2), (1, 1)]
    expected = {axis: -sum(float(out[axis][b, n, int(labels[f"{axis}_label"][b, n])]) for b, n in selected) / 3
                for axis in ("x", "y", "o")}
    for axis, value in expected.items():
        assert float(parts[f"nll_{axis}"]) == pytest.approx(value, rel=1e-6)
    assert float(loss) == pytest.approx(sum(expected.values()), rel=1e-6)
    loss.backward()
    for axis in ("x", "y", "o"):  # unselected clip-arts get no gradient
        assert out[axis].grad[0, 1].abs().sum() == 0 and out[axis].grad[1, 0].abs().sum() == 0
        assert out[axis].grad[0, 0].abs().sum() > 0


def test_discrete_loss_with_nothing_selected_is_zero_and_differentiable():
    out = {"x": log_probs(2, 3, V.X_VOCAB), "y": log_probs(2, 3, V.Y_VOCAB), "o": log_probs(2, 3, V.O_VOCAB)}
    none = torch.full((2, 3), IG)
    loss, _ = discrete_loss(out, {"x_label": none, "y_label": none, "o_label": none})
    assert float(loss) == 0.0 and loss.requires_grad
    loss.backward()
    assert all(out[axis].grad is not None and out[axis].grad.abs().sum() == 0 for axis in ("x", "y", "o"))


def continuous_example() -> tuple[dict, dict]:
    """Two scenes in bin units. Scene 0: 3 clip-arts, 0 and 1 selected — predicted (0, 0) and (6, 8) for labels
    (3, 4) and (6, 8). Scene 1: 2 clip-arts and a padding slot, clip-art 0 selected — predicted (1, 1) for
    (1, 4). Unselected predictions are far off (they must not count). Flip log-probs uniform (NLL ln 4)."""
    xy = torch.tensor([[[0.0, 0.0], [6.0, 8.0], [25.0, 20.0]],
                       [[1.0, 1.0], [20.0, 0.0], [13.0, 3.0]]], requires_grad=True)
    o = torch.full((2, 3, V.O_VOCAB), -math.log(V.O_VOCAB), requires_grad=True)
    batch = {"cliparts": torch.tensor([[104, 94, 38], [38, 70, 0]]),
             "x_label": torch.tensor([[3, 6, IG], [1, IG, IG]]), "y_label": torch.tensor([[4, 8, IG], [4, IG, IG]]),
             "o_label": torch.tensor([[1, 0, IG], [1, IG, IG]])}
    return {"xy": xy, "o": o}, batch


def test_continuous_loss_matches_a_hand_computation():
    """Per scene: L_abs = Σ_{i∈M} ‖p̂_i − p_i‖ / n, L_rel = Σ_{i,j∈M} |D̂_ij − D_ij| / n², then the batch mean.
    Scene 0 (n = 3): L_abs = (5 + 0) / 3; D̂_01 = 10, D_01 = 5 → L_rel = 2·5 / 9. Scene 1 (n = 2): L_abs = 3 / 2,
    L_rel = 0 (one selected clip-art). Means: L_abs = 19/12, L_rel = 5/9; L_o = ln 4."""
    out, batch = continuous_example()
    loss, parts = continuous_loss(out, batch)
    assert float(parts["l_abs"]) == pytest.approx(19 / 12, abs=1e-6)  # 1.583333
    assert float(parts["l_rel"]) == pytest.approx(5 / 9, abs=1e-6)  # 0.555556
    assert float(parts["nll_o"]) == pytest.approx(math.log(4), abs=1e-6)  # 1.386294
    assert float(loss) == pytest.approx(3.525184, abs=1e-5)
    weighted, _ = continuous_loss(out, batch, o_weight=10.0)
    assert float(weighted) == pytest.approx(19 / 12 + 5 / 9 + 10 * math.log(4), abs=1e-5)  # 16.001833
    loss.backward()
    grad = out["xy"].grad
    assert torch.isfinite(grad).all()
    assert grad[0, 2].abs().sum() == 0 and grad[1, 1:].abs().sum() == 0  # unselected and padding: no gradient
    assert grad[0, 0].abs().sum() > 0 and grad[1, 0].abs().sum() > 0


def test_continuous_loss_with_nothing_selected_is_zero_and_differentiable():
    out, batch = continuous_example()
    batch = {**batch, **{k: torch.full((2, 3), IG) for k in ("x_label", "y_label", "o_label")}}
    loss, _ = continuous_loss(out, batch)
    assert float(loss) == pytest.approx(0.0, abs=1e-6) and loss.requires_grad
    loss.backward()
    assert out["xy"].grad.abs().sum() == 0 and out["o"].grad is not None


# -- through the CLI ---------------------------------------------------------------------------------------------
def test_fit_then_test_logs_every_strategy_and_draws_samples(sr_bert_run, tmp_path):
    val = records(sr_bert_run, "val")[-1]  # leave-one-out validation selects the epoch
    assert {"val/abs_sim", "val/rel_sim", "val/flip_acc", "val/selection"} <= set(val)
    assert val["val/num_scenes"] == 32
    assert (sr_bert_run / "figures" / "samples.png").is_file()

    test_dir = tmp_path / "test"
    strategies = ["hc-beam", "ss", "ho", "ro", "le"]  # configs/scenes/world.yaml's (the checkpoint's hparams rule)
    assert main(["test", "--config", str(sr_bert_run / "config.yaml"), "--ckpt_path",
                 str(sr_bert_run / "checkpoints" / "last.ckpt"), "--data.init_args.max_scenes", "16",
                 "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(test_dir)]) == 0
    test = records(test_dir, "test")[-1]
    assert test["test/num_scenes"] == 16
    for key in ("abs_sim", "rel_sim", "rel_sim_mean", "flip_acc", "abs_sim_se"):
        assert 0 <= test[f"test/{key}"] <= 1.5, key
        for strategy in strategies:
            assert f"test/{strategy}/{key}" in test, (strategy, key)
    assert test["test/abs_sim"] == test["test/hc-beam/abs_sim"]  # the first strategy is also the plain name
    report = (test_dir / "report.html").read_text()
    assert "Samples" in report and 'src="figures/samples.png"' in report
    assert (test_dir / "figures" / "samples.png").stat().st_size > 10_000


def test_continuous_model_with_hc_decoding_is_refused(tmp_path, capsys):
    code = main(["fit", "--config", str(CONFIGS / "world_continuous.yaml"), *TINY, "--model.init_args.decoding", "hc",
                 "--trainer.default_root_dir", str(tmp_path)])
    assert code == 2
    one_error(capsys, "hc", "continuous")


def naive_test(model: str, run_dir: Path) -> dict:
    assert main(["test", "--config", str(CONFIGS / "world.yaml"), "--model.init_args.model", model,
                 "--model.init_args.model_kwargs", "{}", "--model.init_args.decoding", "ss",
                 "--data.init_args.max_scenes", "16", "--trainer.enable_progress_bar", "false",
                 "--trainer.default_root_dir", str(run_dir)]) == 0
    return records(run_dir, "test")[-1]


def test_naive_baselines_are_tested_without_a_checkpoint(tmp_path):
    """The centre baseline needs nothing; the training-mean one reads the training split's positions at test
    start — without them it would put every clip-art at the centre too and score exactly as the centre."""
    centre = naive_test("scene_centre", tmp_path / "centre")
    mean = naive_test("scene_mean_position", tmp_path / "mean")
    assert centre["test/num_scenes"] == mean["test/num_scenes"] == 16
    assert mean["test/abs_sim"] > centre["test/abs_sim"] + 0.02
    assert mean["test/flip_acc"] != centre["test/flip_acc"]


def test_fit_of_a_model_without_parameters_says_there_is_nothing_to_train(tmp_path, capsys):
    code = main(["fit", "--config", str(CONFIGS / "world.yaml"), "--model.init_args.model", "scene_centre",
                 "--model.init_args.model_kwargs", "{}", "--model.init_args.decoding", "ss",
                 "--data.init_args.max_scenes", "16", "--trainer.enable_progress_bar", "false",
                 "--trainer.default_root_dir", str(tmp_path)])
    assert code == 2
    one_error(capsys, "nothing to train", "modalbridge test")


def test_clipart_predictor_fits_and_logs_its_metrics(tmp_path_factory):
    run = fit_once(tmp_path_factory, "cliparts_tiny", "world_cliparts.yaml", *TINY)
    val = records(run, "val")[-1]
    for key in ("precision", "recall", "f1", "pose_acc", "expr_acc", "selection"):
        assert math.isfinite(val[f"val/{key}"]), key
    assert 0 <= val["val/f1"] <= 100 and 0 <= val["val/pose_acc"] <= 100
    assert val["val/num_scenes"] == 32
    assert records(run, "train")[-1]["train/loss"] > 0
