"""The atlas task's LightningModule (spec ``text2atlas.md`` §4–§6): :class:`AtlasModule` trains and evaluates every
registered atlas model on :ref:`atlas batches <atlas-batch>`.

Training losses (``loss``; default: the model's own): ``sod`` (the Soft Organ Distance, γ_p = 0.1, γ_o = 1 — the
thesis's best setting, not the reference CLI's 1/1), ``mse`` (the MSE baseline), ``bce`` (the classifier's BCE on
multi-hot organ sets), ``triplet`` (the Siamese baseline's batch-all triplet loss, margin 2) or ``none`` (models
that are only evaluated: the pooled encoder and the naive baselines, through ``modalbridge test`` / ``Trainer.test``
without a checkpoint). Optimiser (card): AdamW, lr 1e-5, weight decay 0.01 on all parameters, no schedule; the
gradient-norm clip 2.0 is the configs' ``trainer.gradient_clip_val``.

Evaluation turns every model's output into one point in centred mm per document:

* regressors: ``ŷ · CENTER · spacing``;
* the classifier: a voxel of its argmax organ — a random one (``classifier_point="random_voxel"``, the reference
  since July 2020) or the organ's deep-inside centre (``"centre"``);
* the naive organ baselines: an organ drawn from their ``organ_probs`` (the atlas centre for a row of zeros), then a
  voxel as for the classifier.

Random draws of evaluation depend on ``(eval_seed, document index)`` only (a counter-based hash, no generator
state), so they are the same in any batch composition, worker or DDP rank. Metrics per evaluation loader (spec §6;
:mod:`~modalbridge.tasks.atlas.metrics`): IOR %, NVD cm, NVD-O cm and their standard errors from
:meth:`Atlas.distance` against the evaluation atlas's MeSH organs — exact nearest-voxel distances in validation too
(the reference validated against 1000-point summaries, which inflate distances); Recall@1/5/10 (``r@k`` and
``r@k_se``) by Euclidean distance between the test documents' points (point models, test only) or embeddings
(retrieval models, which select their best epoch on ``val/r@1`` instead of ``val/nvd``). The per-document points,
targets, distances and predicted organs stay in ``last_eval_rows`` (reports, claims, significance tests).
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from modalbridge.core.engine import TaskModule
from modalbridge.core.errors import DataError
from modalbridge.core.registry import create_model, model_entry
from modalbridge.tasks.atlas import models as _models  # noqa: F401  (registers the atlas models)
from modalbridge.tasks.atlas.losses import batch_all_triplet_loss, mse_point_loss, sod_loss

log = logging.getLogger(__name__)

__all__ = ["LOSSES", "AtlasModule", "OrganPoints", "padded_organ_sets", "sample_uniforms"]

#: loss → the model output it trains (``none``: not trained)
LOSSES = {"sod": "point", "mse": "point", "bce": "logits", "triplet": "embedding", "none": None}
CLASSIFIER_POINTS = ("random_voxel", "centre")
KS = (1, 5, 10)

_MASK64 = (1 << 64) - 1


def _splitmix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64's output function on a uint64 array (wrap-around arithmetic)."""
    with np.errstate(over="ignore"):
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def sample_uniforms(seed: int, index: Any, stream: int = 0) -> np.ndarray:
    """``(B,)`` float64 uniforms in [0, 1), one per document ``index``, that depend on ``(seed, index, stream)``
    only (a counter-based SplitMix64 hash: no generator state, no loop over documents)."""
    index = np.asarray(index.cpu() if isinstance(index, torch.Tensor) else index, dtype=np.int64).astype(np.uint64)
    base = _splitmix64(np.asarray([seed & _MASK64], dtype=np.uint64))
    key = (index << np.uint64(8)) | np.uint64(stream & 0xFF)
    z = _splitmix64(_splitmix64(key ^ base))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


class OrganPoints:
    """Points of an atlas's organs in centred mm: a random voxel or the deep-inside centre of given organs.

    The voxels of every organ (``Atlas.voxels``, int16) are concatenated once into one array grouped by organ, so
    picking voxels for a batch of organs is one gather; organ centres are computed on first use (one
    ``Atlas.centre`` per organ)."""

    def __init__(self, atlas):
        self.atlas = atlas
        clouds = [atlas.voxels(k) for k in range(atlas.num_organs)]  # once per atlas
        self.voxels = np.concatenate(clouds) if clouds else np.zeros((0, 3), np.int16)
        self.counts = np.array([len(c) for c in clouds], dtype=np.int64)
        self.offsets = np.cumsum(self.counts) - self.counts
        self._centres: np.ndarray | None = None

    def random_voxel(self, organs: np.ndarray, u: np.ndarray) -> np.ndarray:
        """``(B, 3)`` centred mm of voxel ``⌊u · |organ|⌋`` of each organ (``u`` uniforms in [0, 1))."""
        organs = np.asarray(organs, dtype=np.int64)
        counts = self.counts[organs]
        if (counts == 0).any():
            empty = sorted({self.atlas.organs[o] for o in organs[counts == 0]})
            raise DataError(f"organ(s) {empty} have no voxel in the atlas")
        pick = self.offsets[organs] + np.minimum((np.asarray(u) * counts).astype(np.int64), counts - 1)
        return self.atlas.to_mm(self.voxels[pick])

    def centre(self, organs: np.ndarray) -> np.ndarray:
        """``(B, 3)`` centred mm of each organ's deep-inside point (``Atlas.centre``)."""
        if self._centres is None:
            self._centres = np.stack([np.asarray(self.atlas.centre(k), dtype=np.float64)
                                      for k in range(self.atlas.num_organs)])
        return self._centres[np.asarray(organs, dtype=np.int64)]


def padded_organ_sets(organs: torch.Tensor, width: int) -> torch.Tensor:
    """``(B, M)`` organ indices (-1 padded, duplicates allowed) → ``(B, width)`` the distinct organs ascending,
    -1 padded (a fixed width, so evaluation rows of all batches concatenate); ``width`` ≥ the largest index + 1."""
    b = organs.shape[0]
    hot = torch.zeros(b, width + 1, dtype=torch.bool, device=organs.device)
    hot.scatter_(1, torch.where(organs >= 0, organs, width).long(), True)
    ids = torch.arange(width, device=organs.device).expand(b, -1)
    ordered = torch.where(hot[:, :width], ids, width).sort(dim=1).values
    return torch.where(ordered < width, ordered, -1)


class AtlasModule(TaskModule):
    """Trains and evaluates a registered atlas model (module docstring).

    Args:
        model: registry name (``sod_regressor``, ``organ_classifier``, ``siamese``, ``pooled_encoder``, ``centre``,
            ``random_organ``, ``frequency``, ``occurrence_random``). model_kwargs: its builder's arguments.
        heads: ``{"organ": K}`` from the data module (the CLI links it): the classifier's and the naive baselines'
            number of organs unless ``model_kwargs`` gives ``num_organs``.
        loss: ``sod`` | ``mse`` | ``bce`` | ``triplet`` | ``none``; default the model's own.
        gamma_p, gamma_o: SOD temperatures. margin: triplet margin.
        classifier_point: ``random_voxel`` | ``centre``: the point of a predicted organ.
        eval_seed: seed of the evaluation draws (random voxels, the naive baselines' organs).
        atlas: an atlas file (``atlas.npz`` …) for use without a data module (the data module's wins when attached).
        lr, weight_decay, optimizer, schedule, warmup_epochs, warmup_steps: :class:`TaskModule`'s (card: AdamW,
            1e-5, 0.01 on every parameter, constant).
    """

    monitor, monitor_mode = "val/nvd", "min"

    def __init__(self, model: str = "sod_regressor", model_kwargs: dict[str, Any] | None = None, *,
                 heads: dict[str, int] | None = None, loss: str | None = None, gamma_p: float = 0.1,
                 gamma_o: float = 1.0, margin: float = 2.0, classifier_point: str = "random_voxel",
                 eval_seed: int = 0, atlas: str | None = None, lr: float = 1e-5, weight_decay: float = 0.01,
                 optimizer: str = "adamw", schedule: str = "constant", warmup_epochs: float = 0.0,
                 warmup_steps: int | None = None):
        super().__init__(lr=lr, weight_decay=weight_decay, optimizer=optimizer, schedule=schedule,
                         warmup_epochs=warmup_epochs, warmup_steps=warmup_steps)
        if classifier_point not in CLASSIFIER_POINTS:
            raise ValueError(f"classifier_point must be one of {'|'.join(CLASSIFIER_POINTS)}, got {classifier_point!r}")
        self.save_hyperparameters()
        kwargs = dict(model_kwargs or {})
        accepts = inspect.signature(model_entry(model).builder).parameters
        if "num_organs" in accepts and "num_organs" not in kwargs and heads and "organ" in heads:
            kwargs["num_organs"] = int(heads["organ"])
        needs = accepts.get("num_organs")
        if needs is not None and needs.default is inspect.Parameter.empty and "num_organs" not in kwargs:
            raise ValueError(f"model {model!r} needs the number of organs: give heads={{'organ': K}} (the CLI links "
                             "it from the data module) or model_kwargs.num_organs")
        self.model = create_model(model, **kwargs)
        self.output = self.model.output
        self.loss_name = loss or self.model.default_loss
        if self.loss_name not in LOSSES:
            raise ValueError(f"loss must be one of {'|'.join(LOSSES)}, got {self.loss_name!r}")
        wanted = LOSSES[self.loss_name]
        if wanted is not None and wanted != self.output:
            raise ValueError(f"loss {self.loss_name!r} trains a model that outputs {wanted!r}, but {model!r} outputs "
                             f"{self.output!r}")
        if self.output == "embedding":  # retrieval models have no point: they select on recall
            self.monitor, self.monitor_mode = "val/r@1", "max"
        self._atlases: tuple[Any, Any] | None = None
        self._organ_points: OrganPoints | None = None

    # -- atlases ------------------------------------------------------------------------------------------------
    def set_atlas(self, atlas, train_atlas=None) -> None:
        """Use these atlases (evaluation, training) instead of the data module's (inference, notebooks)."""
        self._atlases = (atlas, train_atlas if train_atlas is not None else atlas)
        self._organ_points = None

    def atlases(self) -> tuple[Any, Any]:
        """``(evaluation atlas, training atlas)``: set ones, else the data module's, else the ``atlas`` file's."""
        if self._atlases is not None:
            return self._atlases
        dm = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        if dm is not None and hasattr(dm, "atlas"):
            return dm.atlas, dm.train_atlas
        if self.hparams.atlas:
            from modalbridge.tasks.atlas.atlas import read_atlas

            self.set_atlas(read_atlas(self.hparams.atlas))
            return self._atlases
        raise RuntimeError("AtlasModule has no atlas: run it with an AtlasDataModule, give atlas=<atlas.npz> or call "
                           "set_atlas(atlas)")

    def organ_points(self) -> OrganPoints:
        train_atlas = self.atlases()[1]
        if self._organ_points is None or self._organ_points.atlas is not train_atlas:
            self._organ_points = OrganPoints(train_atlas)
        return self._organ_points

    # -- model --------------------------------------------------------------------------------------------------
    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        organs = batch["organs"] if self.model.needs_occurrences else None
        return self.model(batch["input_ids"], batch["attention_mask"], organs)

    def optimizer_parameters(self) -> list[dict[str, Any]]:
        """One group: weight decay on every trainable parameter (the card's AdamW recipe)."""
        return [{"params": [p for p in self.parameters() if p.requires_grad], "weight_decay": self.weight_decay}]

    def _check_data(self) -> None:
        dm = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        if self.model.needs_occurrences and dm is not None and getattr(dm.hparams, "targets", "occ") != "occ":
            raise DataError(f"model {self.hparams.model!r} reads each document's organ-name occurrences, which the "
                            "batches carry only with the data module's targets='occ' (it is then evaluated against "
                            "the MeSH organs as usual)", field="data.init_args.targets")
        fit = getattr(self.model, "fit_statistics", None)
        if callable(fit) and not self.model.fitted:
            if dm is None:
                raise RuntimeError(f"model {self.hparams.model!r} needs training statistics: run it with an "
                                   "AtlasDataModule or call model.fit_statistics(datamodule)")
            fit(dm)

    def on_fit_start(self) -> None:
        if self.loss_name == "none" or not any(p.requires_grad for p in self.model.parameters()):
            raise DataError(f"model {self.hparams.model!r} (loss {self.loss_name!r}) has nothing to train; evaluate it "
                            "directly with `modalbridge test --config …` (no --ckpt_path needed)",
                            field="model.init_args.model")
        self._check_data()

    def on_validation_start(self) -> None:
        self._check_data()

    def on_test_start(self) -> None:
        self._check_data()

    # -- training -----------------------------------------------------------------------------------------------
    def training_loss(self, batch):
        out = self(batch)
        name = self.loss_name
        if name == "sod":
            loss = sod_loss(out["point"], batch["points"], batch["organ_mask"], self.hparams.gamma_p,
                            self.hparams.gamma_o)
        elif name == "mse":
            loss = mse_point_loss(out["point"], batch["points"], batch["organ_mask"])
        elif name == "bce":
            loss = F.binary_cross_entropy_with_logits(out["logits"].float(), batch["multi_hot"].float())
        elif name == "triplet":
            loss = batch_all_triplet_loss(out["embedding"], batch["multi_hot"], self.hparams.margin)
        else:
            raise RuntimeError(f"loss {name!r} does not train")
        return loss, {}

    # -- evaluation ---------------------------------------------------------------------------------------------
    def predict_points(self, out: dict[str, torch.Tensor], index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A model's outputs → ``(points (B, 3) float64 centred mm, organs (B,) long)``; ``organs`` is the predicted
        organ of the training atlas (-1 for point models and the centre fallback)."""
        atlas = self.atlases()[0]
        b = len(index)
        if "point" in out:
            scale = torch.as_tensor(np.asarray(atlas.center, np.float64) * np.asarray(atlas.spacing, np.float64))
            return out["point"].detach().double().cpu() * scale, torch.full((b,), -1, dtype=torch.long)
        seed, ids = int(self.hparams.eval_seed), index.cpu()
        if "logits" in out:
            organs = out["logits"].detach().float().argmax(dim=1).cpu().numpy()
            chosen = np.ones(b, dtype=bool)
        else:  # organ_probs: draw one organ per document
            probs = out["organ_probs"].detach().double().cpu().numpy()
            total = probs.sum(axis=1)
            chosen = total > 0
            cdf = np.cumsum(probs, axis=1) / np.where(chosen, total, 1.0)[:, None]
            u = sample_uniforms(seed, ids, stream=1)
            organs = np.minimum((cdf <= u[:, None]).sum(axis=1), probs.shape[1] - 1)
        picker = self.organ_points()
        points = np.zeros((b, 3))
        if chosen.any():
            if self.hparams.classifier_point == "centre":
                points[chosen] = picker.centre(organs[chosen])
            else:
                points[chosen] = picker.random_voxel(organs[chosen], sample_uniforms(seed, ids, stream=0)[chosen])
        return torch.from_numpy(points), torch.from_numpy(np.where(chosen, organs, -1).astype(np.int64))

    def evaluation_step(self, batch, dataloader_idx: int = 0):
        out = self(batch)
        eval_atlas = self.atlases()[0]
        rows = {"eval_organs": padded_organ_sets(batch["eval_organs"], int(eval_atlas.num_organs))}
        if "embedding" in out:
            rows["embedding"] = out["embedding"].detach().float()
        else:
            rows["point"], rows["organ"] = self.predict_points(out, batch["index"])
        return rows

    def compute_metrics(self, outputs: dict[str, Any], loader: str) -> dict[str, float]:
        """Grounding and retrieval metrics of one loader; adds per-document ``distance`` (mm) to ``outputs``, which
        the engine keeps as ``last_eval_rows``."""
        from modalbridge.tasks.atlas.metrics import grounding_metrics, recall_at_k

        targets = outputs["eval_organs"].numpy()
        targets = targets[:, : max(1, int((targets >= 0).sum(axis=1).max()))]
        metrics: dict[str, float] = {"num_docs": float(len(targets))}
        if "point" in outputs:
            dist = np.asarray(self.atlases()[0].distance(outputs["point"].double().numpy(), targets), np.float64)
            outputs["distance"] = torch.from_numpy(dist)
            metrics.update({k: v for k, v in grounding_metrics(dist).items() if k != "n"})
        testing = self._trainer is not None and self.trainer.testing
        vectors = outputs.get("embedding") if "embedding" in outputs else (outputs["point"] if testing else None)
        if vectors is not None and len(targets) > 1:
            sets = [row[row >= 0] for row in targets]
            for k, (value, se) in recall_at_k(vectors.double().numpy(), sets, KS).items():
                metrics[f"r@{k}"], metrics[f"r@{k}_se"] = value, se
        return metrics

    def metric_mode(self, name: str) -> str:
        leaf = name.rpartition("/")[2]
        if leaf in ("nvd", "nvdo") or leaf.endswith("_se"):
            return "min"
        return super().metric_mode(name)
