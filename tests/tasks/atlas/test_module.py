"""The atlas LightningModule (spec ``text2atlas.md`` §4–§6) on a hand-built atlas and a dozen records, with a tiny
random-init BERT: a 2-epoch SOD fit logs ``val/nvd`` and resumes exactly from its epoch-0 checkpoint; the
classifier's and the Siamese model's fits; the naive baselines and the pooled encoder through ``Trainer.test``
without training (the centre's distances are those of (0, 0, 0), the frequency baseline lands in the most frequent
organ, the occurrence baseline inside the named organs); the evaluation draws depend on the document only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from modalbridge.core.errors import DataError
from modalbridge.core.trainer import Trainer
from modalbridge.nn.bert import TINY_BERT

pytest.importorskip("modalbridge.tasks.atlas.atlas")
pytest.importorskip("modalbridge.tasks.atlas.metrics")

from modalbridge.tasks.atlas.data import AtlasDataModule  # noqa: E402
from modalbridge.tasks.atlas.module import (  # noqa: E402
    AtlasModule,
    OrganPoints,
    padded_organ_sets,
    sample_uniforms,
)

from .test_data import KIDNEY, LUNG, ORGANS, tiny_atlas, write_processed  # noqa: E402

TINY = {"bert_config": TINY_BERT}


@pytest.fixture(scope="module")
def processed(tmp_path_factory):
    return write_processed(tmp_path_factory.mktemp("atlas") / "processed")


def datamodule(root, **kwargs) -> AtlasDataModule:
    return AtlasDataModule(root=str(root), **{"points": 8, "batch_size": 4, "max_length": 32, **kwargs})


def trainer(tmp_path, epochs: int = 1, **kwargs) -> Trainer:
    return Trainer(max_epochs=epochs, precision="32-true", logger=False, enable_progress_bar=False,
                   enable_model_summary=False, default_root_dir=tmp_path, reload_dataloaders_every_n_epochs=1,
                   num_sanity_val_steps=0, **{"enable_checkpointing": False, **kwargs})


# -- pieces --------------------------------------------------------------------------------------------------------
def test_evaluation_draws_depend_on_the_document_only():
    index = np.arange(1000)
    u = sample_uniforms(7, index)
    assert ((0 <= u) & (u < 1)).all() and abs(u.mean() - 0.5) < 0.05
    assert np.array_equal(sample_uniforms(7, index[500:510]), u[500:510])  # any batch composition
    assert np.array_equal(sample_uniforms(7, torch.tensor([3, 1])), u[[3, 1]])
    assert not np.array_equal(sample_uniforms(8, index), u)
    assert not np.array_equal(sample_uniforms(7, index, stream=1), u)


def test_organ_points_lie_inside_their_organs():
    atlas = tiny_atlas()
    points = OrganPoints(atlas)
    organs = np.array([0, 1, 2, 2, 3, 4, 5])
    voxels = points.random_voxel(organs, sample_uniforms(0, np.arange(7)))
    assert (atlas.organ_at(voxels) == organs).all()
    assert (atlas.organ_at(points.centre(organs)) == organs).all()
    assert points.counts.tolist() == [len(atlas.voxels(k)) for k in range(6)]
    # u → 1 picks the organ's last voxel, u = 0 its first
    first_last = points.random_voxel(np.array([2, 2]), np.array([0.0, 1 - 1e-12]))
    assert set(map(tuple, atlas.to_index(first_last))) == {tuple(atlas.voxels(2)[0]), tuple(atlas.voxels(2)[-1])}


def test_padded_organ_sets_have_a_fixed_width():
    organs = torch.tensor([[3, 1, -1], [2, 2, 0], [-1, -1, -1]])
    assert padded_organ_sets(organs, 5).tolist() == [[1, 3, -1, -1, -1], [0, 2, -1, -1, -1], [-1] * 5]


def test_module_arguments_are_checked():
    with pytest.raises(ValueError, match="outputs"):
        AtlasModule("sod_regressor", TINY, loss="bce")
    with pytest.raises(ValueError, match="number of organs"):
        AtlasModule("organ_classifier", TINY)
    with pytest.raises(ValueError, match="classifier_point"):
        AtlasModule("centre", classifier_point="middle")
    assert AtlasModule("organ_classifier", TINY, heads={"organ": 6}).model.num_organs == 6
    siamese = AtlasModule("siamese", {**TINY, "dim": 3})
    assert (siamese.loss_name, siamese.monitor, siamese.monitor_mode) == ("triplet", "val/r@1", "max")
    sod = AtlasModule("sod_regressor", TINY)
    assert (sod.loss_name, sod.monitor, sod.monitor_mode) == ("sod", "val/nvd", "min")
    assert sod.metric_mode("test/nvdo") == "min" and sod.metric_mode("test/ior") == "max"


@pytest.mark.parametrize(("model", "kwargs", "loss"), [("sod_regressor", TINY, "sod"), ("sod_regressor", TINY, "mse"),
                                                      ("organ_classifier", {**TINY, "num_organs": 6}, "bce"),
                                                      ("siamese", {**TINY, "dim": 3}, "triplet")])
def test_every_loss_is_finite_and_reaches_the_encoder(processed, model, kwargs, loss):
    from modalbridge.tasks.atlas.data import collate_atlas

    dm = datamodule(processed)
    dm.setup("fit")
    batch = collate_atlas([dm.train_set[i] for i in (0, 2, 8, 5)])  # 2 and 8: both {lung}, triplet positives
    module = AtlasModule(model, kwargs, loss=loss)
    value, _ = module.training_loss(batch)
    value.backward()
    assert torch.isfinite(value) and float(value.detach()) > 0
    grads = [p.grad for p in module.model.bert.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


# -- fitting --------------------------------------------------------------------------------------------------------
def _state(module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_sod_fit_logs_val_nvd_and_resumes_exactly(processed, tmp_path):
    from lightning.pytorch.callbacks import ModelCheckpoint

    torch.manual_seed(0)
    full = AtlasModule("sod_regressor", TINY, lr=1e-3)
    start = _state(full)
    every_epoch = ModelCheckpoint(dirpath=tmp_path / "ckpt", filename="{epoch}", save_top_k=-1, monitor=None,
                                  save_on_train_epoch_end=True)
    run = trainer(tmp_path / "full", 2, enable_checkpointing=True, callbacks=[every_epoch])
    run.fit(full, datamodule=datamodule(processed))
    metrics = dict(full.last_eval_metrics)
    for key in ("val/ior", "val/nvd", "val/nvdo", "val/ior_se", "val/nvd_se", "val/num_docs"):
        assert np.isfinite(metrics[key]), key
    assert metrics["val/num_docs"] == 12 and "val/nvd" in run.callback_metrics
    rows = full.last_eval_rows["loader0"]
    assert rows["point"].shape == (12, 3) and rows["distance"].shape == (12,)
    assert float(rows["distance"].mean()) / 10 == pytest.approx(metrics["val/nvd"], rel=1e-6)
    assert any(not torch.equal(start[k], v) for k, v in full.state_dict().items())

    torch.manual_seed(123)  # the resumed run restores every RNG state from the checkpoint
    resumed = AtlasModule("sod_regressor", TINY, lr=1e-3)
    trainer(tmp_path / "resumed", 2).fit(resumed, datamodule=datamodule(processed),
                                         ckpt_path=str(tmp_path / "ckpt" / "epoch=0.ckpt"))
    for key, value in full.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key
    assert resumed.last_eval_metrics == pytest.approx(metrics)


def test_classifier_and_siamese_fit(processed, tmp_path):
    dm = datamodule(processed)
    classifier = AtlasModule("organ_classifier", TINY, heads=dm.heads, lr=1e-3, classifier_point="centre")
    trainer(tmp_path / "cls").fit(classifier, datamodule=dm)
    rows = classifier.last_eval_rows["loader0"]
    assert rows["organ"].min() >= 0  # the argmax organ's deep-inside centre
    assert (tiny_atlas().organ_at(rows["point"].numpy()) == rows["organ"].numpy()).all()
    assert classifier.last_eval_metrics["val/num_docs"] == 12

    siamese = AtlasModule("siamese", {**TINY, "dim": 3}, lr=1e-3)
    trainer(tmp_path / "siamese").fit(siamese, datamodule=datamodule(processed))
    metrics = siamese.last_eval_metrics
    assert {"val/r@1", "val/r@5", "val/r@10", "val/r@1_se"} <= set(metrics) and "val/nvd" not in metrics
    assert 0 <= metrics["val/r@1"] <= metrics["val/r@5"] <= metrics["val/r@10"] <= 100


# -- evaluation without training ------------------------------------------------------------------------------------
def _test(module, dm, tmp_path) -> dict[str, float]:
    trainer(tmp_path).test(module, datamodule=dm)
    return dict(module.last_eval_metrics)


def test_naive_baselines_through_trainer_test(processed, tmp_path):
    atlas = tiny_atlas()
    targets = [r for r in datamodule(processed).records("test")]
    centre = AtlasModule("centre")
    metrics = _test(centre, datamodule(processed), tmp_path)
    expected = atlas.distance(np.zeros((12, 3)), [r["organ_indices"] for r in targets])
    rows = centre.last_eval_rows["loader0"]
    assert np.allclose(rows["distance"].numpy(), expected)
    assert metrics["test/nvd"] == pytest.approx(expected.mean() / 10)
    assert {"test/r@1", "test/r@5", "test/r@10"} <= set(metrics)  # point models: recall by location on test

    frequency = AtlasModule("frequency")
    metrics = _test(frequency, datamodule(processed), tmp_path)
    rows = frequency.last_eval_rows["loader0"]
    assert (rows["organ"] == LUNG).all() and (atlas.organ_at(rows["point"].numpy()) == LUNG).all()
    with_lung = np.array([LUNG in r["organ_indices"] for r in targets])
    assert (rows["distance"].numpy()[with_lung] == 0).all() and (rows["distance"].numpy()[~with_lung] > 0).all()
    assert metrics["test/ior"] >= 100 * with_lung.mean()

    random = AtlasModule("random_organ")
    metrics = _test(random, datamodule(processed), tmp_path)
    first = random.last_eval_rows["loader0"]["point"].clone()
    assert 0 <= metrics["test/ior"] <= 100 and np.isfinite(metrics["test/nvd"])
    assert len(set(random.last_eval_rows["loader0"]["organ"].tolist())) > 1
    again = AtlasModule("random_organ")
    _test(again, datamodule(processed, batch_size=5), tmp_path)  # other batches: the same draws
    assert torch.equal(again.last_eval_rows["loader0"]["point"], first)


def test_occurrence_baseline_needs_occurrence_targets(processed, tmp_path):
    occ = AtlasModule("occurrence_random")
    metrics = _test(occ, datamodule(processed, targets="occ"), tmp_path)
    rows = occ.last_eval_rows["loader0"]
    organs, dist = rows["organ"].numpy(), rows["distance"].numpy()
    assert organs[6] == -1 and rows["point"][6].abs().sum() == 0  # no organ named: the centre
    named = np.arange(12) != 6
    assert (dist[named] == 0).all()  # a voxel of an organ the text names, which here is a MeSH organ too
    assert dist[6] == pytest.approx(tiny_atlas().distance(np.zeros((1, 3)), [[KIDNEY]])[0])
    assert metrics["test/ior"] >= 100 * 11 / 12
    with pytest.raises(DataError, match="targets='occ'"):
        trainer(tmp_path).test(AtlasModule("occurrence_random"), datamodule=datamodule(processed))


def test_pooled_encoder_is_evaluated_not_trained(processed, tmp_path):
    pooled = AtlasModule("pooled_encoder", TINY)
    metrics = _test(pooled, datamodule(processed), tmp_path)
    assert 0 <= metrics["test/r@1"] <= 100 and metrics["test/num_docs"] == 12
    with pytest.raises(DataError, match="nothing to train"):
        trainer(tmp_path).fit(AtlasModule("pooled_encoder", TINY), datamodule=datamodule(processed))
    with pytest.raises(DataError, match="nothing to train"):
        trainer(tmp_path).fit(AtlasModule("centre"), datamodule=datamodule(processed))
    assert len(ORGANS) == 6
