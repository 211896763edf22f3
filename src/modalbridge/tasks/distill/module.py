"""LightningModules of the distillation task.

* :class:`LanguageTeacherModule` — LanViKD stage 1 (frozen MiniLM + linear heads, CE on the narration).
* :class:`OmnivoreModule` — the Omnivore-style baseline: one model, a random modality per training batch
  (RGB, flow, audio, or the layout's boxes drawn on a canvas), RGB at test.
* :class:`DistillModule` — an RGB student trained from frozen teachers: ensemble logits
  ``z = Σ_m w_m z_m`` (weights uniform, given, calibrated ``softmax(−CE_m/γ)`` on held-out clips, or the
  reference's per-sample ``softmax(−CE_m(x, y)/γ)`` computed online for each training clip),
  loss ``λ·τ²·KL + (1−λ)·CE`` (+ ``α·smooth-L1`` onto the language teacher's text embedding).
  Teachers run live on every augmented view (the thesis's setting) or come from a logit cache written
  by :func:`precompute_teacher_logits` (one eval view per clip; what a user with 90k clips wants).

Teacher checkpoints are the Lightning ``.ckpt`` files written by ``modalbridge fit`` for
:class:`~modalbridge.core.classifier.ModalityClassifierModule` (RGB/flow/audio; the actions task's RGB
baseline is one) or :class:`LanguageTeacherModule`; they load with ``weights_only=True``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from modalbridge.core.classifier import ClassifierModule, ModalityClassifierModule
from modalbridge.core.engine import load_module_checkpoint, read_checkpoint
from modalbridge.core.precision import autocast
from modalbridge.core.progress import progress
from modalbridge.core.registry import create_model
from modalbridge.datasets.layouts import SSV2_CATEGORIES
from modalbridge.nn.distillation import LogitEnsemble, calibration_weights, distillation_objective
from modalbridge.tasks.distill.models import BoxCanvas, RegressionHead

log = logging.getLogger(__name__)

#: how the ensemble teacher weighs its members (see :class:`DistillModule`)
WEIGHTINGS = ("calibrated", "uniform", "given", "per_sample")


class LanguageTeacherModule(ClassifierModule):
    """LanViKD stage 1: CE on linear heads over a frozen sentence encoder reading ``batch["text"]``.

    Args: heads (linked from data), text_weights (weights resolver name/path; default MiniLM-L6),
    pooling ("mean" | "cls"), lr/weight_decay/warmup_epochs (the paper trains 10 epochs).
    """

    input_key = "text"

    def __init__(self, heads: dict[str, int] | None = None, *, text_weights: str = "minilm-l6",
                 pooling: str = "mean", lr: float = 1e-3, weight_decay: float = 0.0, warmup_epochs: float = 0.0,
                 ece_bins: int = 15, optimizer: str = "adamw", schedule: str = "linear",
                 warmup_steps: int | None = None):
        super().__init__(lr=lr, weight_decay=weight_decay, warmup_epochs=warmup_epochs, ece_bins=ece_bins,
                         optimizer=optimizer, schedule=schedule, warmup_steps=warmup_steps)
        self.save_hyperparameters()
        self.heads = dict(heads or {"action": 174})
        self.model = create_model("language_teacher", heads=self.heads, weights=text_weights, pooling=pooling)

    def label_heads(self) -> list[str]:
        return list(self.heads)

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        return self.model(list(batch["text"]))


class OmnivoreModule(ModalityClassifierModule):
    """Omnivore-style baseline (thesis Ch. 7, Table 7.7): ONE video model trained on every modality, each
    training batch fed through a single modality drawn at random, then evaluated on ``modality`` (RGB) alone —
    the alternative to distillation for using extra modalities at training time only.

    Every modality enters the model as a 3-channel clip ``(B, 3, T, S, S)``: flow as ``(u, v, 0)``, audio as
    log-mel windows (``audio_size``), and ``boxes`` — the Something-Else object modality — as the layout's
    boxes drawn on a white canvas (:class:`~modalbridge.tasks.distill.models.BoxCanvas`: 2-px outlines, hands
    blue, objects red, ``canvas_size`` pixels; one canvas frame per layout frame, the layout's final extract
    frame dropped) from the layout batch's ``boxes``/``categories`` (data: the layouts task's
    ``SomethingLayoutDataModule`` with ``modalities: [layout, rgb, ...]``). The draw for global step ``k`` is
    ``rng([seed, k])`` (reproducible, and identical on every DDP rank). The thesis trains M× the epochs of a
    single-modality model (set ``trainer.max_epochs``). The data module loads every listed modality for every
    batch; only the drawn one is used (simple, up to M× the decoding).

    Args:
        train_modalities: the modalities drawn from (uniformly): ``rgb``, ``flow``, ``audio``, ``boxes``.
        seed: the draw's seed. canvas_size: side of the box canvas (the RGB crop size, e.g. 224).
        The rest as :class:`~modalbridge.core.classifier.ModalityClassifierModule` (``modality``: the test input).
    """

    def __init__(self, model: str = "swin3d_t", heads: dict[str, int] | None = None, *,
                 train_modalities: tuple[str, ...] = ("rgb", "flow", "audio"), modality: str = "rgb", seed: int = 0,
                 canvas_size: int = 224, weights: str | None = None, model_kwargs: dict[str, Any] | None = None,
                 lr: float = 1e-4, weight_decay: float = 0.05, warmup_epochs: float = 3.0, ece_bins: int = 15,
                 optimizer: str = "adamw", schedule: str = "linear", warmup_steps: int | None = None):
        super().__init__(model, heads, modality=modality, weights=weights, model_kwargs=model_kwargs, lr=lr,
                         weight_decay=weight_decay, warmup_epochs=warmup_epochs, ece_bins=ece_bins,
                         optimizer=optimizer, schedule=schedule, warmup_steps=warmup_steps)
        self.save_hyperparameters()
        if not train_modalities:
            raise ValueError("train_modalities must name at least one modality")
        self.train_modalities, self.seed = tuple(train_modalities), seed
        self.canvas = BoxCanvas(canvas_size, hand_id=SSV2_CATEGORIES["hand"], object_id=SSV2_CATEGORIES["object"])

    def training_modality(self, step: int) -> str:
        """The modality of global step ``step``."""
        draw = np.random.default_rng([self.seed, step]).integers(len(self.train_modalities))
        return self.train_modalities[int(draw)]

    def training_forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        name = self.training_modality(self.global_step)
        if name == "boxes":
            if "boxes" not in batch:
                raise KeyError("the batch has no layout boxes; train on a layout data module with "
                               "modalities: [layout, rgb, ...]")
            return self.model(self.canvas(batch["boxes"][:, :-1], batch["categories"][:, :-1]))
        if name not in batch:
            raise KeyError(f"the batch has no {name!r} input; add it to data.init_args.modalities")
        return self.model(batch[name])


TEACHER_CLASSES: dict[str, type[ClassifierModule]] = {
    "ModalityClassifierModule": ModalityClassifierModule,
    "ActionRecognitionModule": ModalityClassifierModule,  # the actions task's RGB baseline
    "LanguageTeacherModule": LanguageTeacherModule,
}


class Teacher(nn.Module):
    """A frozen teacher: ``forward(batch) -> {head: logits}`` reading its own input key of the batch."""

    def __init__(self, module: nn.Module, name: str, input_key: str):
        super().__init__()
        self.module, self.name, self.input_key = module.eval(), name, input_key
        for p in self.module.parameters():
            p.requires_grad_(False)

    @property
    def heads(self) -> dict[str, int]:
        return dict(self.module.heads)

    def train(self, mode: bool = True):  # frozen teachers stay in eval mode (dropout/BN off)
        return super().train(False)

    @torch.no_grad()
    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        return {h: z.float() for h, z in self.module(batch).items()}


class RegisteredModelTeacher(nn.Module):
    """A registered model rebuilt from another task's checkpoint by name (no import of that task's package):
    the object (STLT) teacher of Ch. 7 is a ``layouts`` checkpoint. ``forward(batch) -> {head: logits}``."""

    #: registry input kind -> the batch key whose presence says the teacher's input is there
    INPUT_KEYS = {"layout": "categories", "video+layout": "categories", "video_batch": "rgb"}

    def __init__(self, state: dict[str, Any], ckpt: str | Path):
        super().__init__()
        from modalbridge.core.registry import model_entry

        hp = dict(state.get("hyper_parameters") or {})
        if hp.get("multilabel"):
            raise ValueError(f"{ckpt}: a multi-label (Action Genome) model cannot be a distillation teacher")
        entry = model_entry(hp["model"])
        self.heads = dict(hp["heads"])
        self.model = create_model(hp["model"], heads=self.heads, **(hp.get("model_kwargs") or {}))
        body = {k[len("model."):]: v for k, v in state["state_dict"].items() if k.startswith("model.")}
        self.model.load_state_dict(body)
        self.input_key = self.INPUT_KEYS.get(entry.inputs, "rgb")

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        out = self.model(batch)
        return {h: out[h] for h in self.heads}


#: checkpoints of other tasks' modules whose model is rebuilt from the registry
REGISTRY_TEACHERS = ("LayoutModule",)


def load_teacher(ckpt: str | Path, name: str | None = None) -> Teacher:
    """Load a teacher from a ``modalbridge fit`` checkpoint (class taken from an allow-list)."""
    state = read_checkpoint(ckpt)
    kind = state.get("modalbridge_class", "ModalityClassifierModule")
    if kind in REGISTRY_TEACHERS:
        module = RegisteredModelTeacher(state, ckpt)
        key = module.input_key
        return Teacher(module, name or ("objects" if key == "categories" else key), key)
    if kind not in TEACHER_CLASSES:
        raise ValueError(f"{ckpt}: a {kind} checkpoint cannot be a teacher; expected one of "
                         f"{sorted([*TEACHER_CLASSES, *REGISTRY_TEACHERS])}")
    module, _ = load_module_checkpoint(str(ckpt), TEACHER_CLASSES[kind])
    key = getattr(module, "input_key", None) or getattr(module, "modality", "rgb")
    return Teacher(module, name or key, key)


def check_teacher_heads(teacher: Teacher, heads: dict[str, int], where: str = "") -> None:
    """Clear error when a teacher's label spaces do not match the dataset's."""
    if teacher.heads != dict(heads):
        raise ValueError(f"teacher {teacher.name!r}{where} predicts {teacher.heads} but the dataset has {dict(heads)}; "
                         "train the teacher on the same class lists")


class EnsembleModule(ClassifierModule):
    """The teacher ensemble as an evaluable classifier: ``forward(batch) = Σ_m w_m · z_m`` through
    :class:`~modalbridge.nn.distillation.LogitEnsemble` (how the demo and the studies score the ensemble with
    the engine's metrics, ``Trainer.validate``). Nothing is trained."""

    def __init__(self, teachers: list[Teacher], weights: dict[str, torch.Tensor], ece_bins: int = 15):
        super().__init__(ece_bins=ece_bins)
        self.members = nn.ModuleList(teachers)
        self.heads = dict(teachers[0].heads)
        self.ensemble = LogitEnsemble([t.name for t in teachers], weights)

    def label_heads(self) -> list[str]:
        return list(self.heads)

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        return self.ensemble([t(batch) for t in self.members])


@torch.no_grad()
def teacher_errors(teachers: list[Teacher], loader, heads: list[str]) -> dict[str, torch.Tensor]:
    """Mean CE of each teacher per head on a held-out loader: ``{head: (M,)}`` (the e_m of the card)."""
    totals = {h: torch.zeros(len(teachers), dtype=torch.float64) for h in heads}
    n = 0
    device = next(iter(teachers[0].parameters())).device
    for batch in loader:
        if "index" not in batch:
            continue
        batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
        for m, t in enumerate(teachers):
            out = t(batch)
            for h in heads:
                totals[h][m] += F.cross_entropy(out[h].float(), batch[h], reduction="sum").double().cpu()
        n += len(batch["index"])
    if n == 0:
        raise ValueError("the held-out loader yielded no clips; set data.init_args.holdout > 0")
    return {h: (v / n).float() for h, v in totals.items()}


class DistillModule(ClassifierModule):
    """RGB student distilled from frozen teachers (see module docstring).

    Args:
        student: registered video model of the student (``swin3d_t`` in the papers).
        heads: linked from the data module.
        teachers: teacher checkpoint paths (any mix of RGB/flow/audio/language).
        weighting: ``calibrated`` (softmax(−CE/γ) on the data module's held-out clips), ``uniform``,
            ``given`` (``teacher_weights``), or ``per_sample`` (softmax(−CE/γ) of each teacher on each training
            clip against its label; the reference's option, not evaluated in the thesis; needs live teachers,
            and where no label is at hand — evaluating the ensemble — it is the uniform mean).
        gamma: calibration temperature γ (thesis main tables 30 ≈ uniform; best EK 1).
        teacher_weights: ``{head: [w_1..w_M]}`` for ``weighting="given"``.
        lam: λ, the KD weight (λ=0 ≡ CE-only student; λ=1 pure KD). tau: KD temperature.
        regression_weight: α of LanViKD's smooth-L1 regression onto the language teacher's text embedding
            (0 disables the regression head).
        teacher_cache: a safetensors file of precomputed ensemble logits (``precompute_teacher_logits``);
            when set, teachers are not run during training. A batch may also carry each sample's ensemble
            logits itself as ``teacher/<head>`` (e.g. logits of pre-decoded augmented views); they win.
        missing_modality: ``raise`` or ``fallback`` (renormalise over the teachers whose input the batch has).
    """

    def __init__(self, student: str = "swin3d_t", heads: dict[str, int] | None = None, *,
                 teachers: list[str] | None = None, weighting: str = "calibrated", gamma: float = 30.0,
                 teacher_weights: dict[str, list[float]] | None = None, lam: float = 1.0, tau: float = 1.0,
                 regression_weight: float = 0.0, teacher_cache: str | None = None,
                 missing_modality: str = "raise", student_kwargs: dict[str, Any] | None = None,
                 weights: str | None = None, lr: float = 1e-4, weight_decay: float = 0.05,
                 warmup_epochs: float = 3.0, ece_bins: int = 15,
                 optimizer: str = "adamw", schedule: str = "linear", warmup_steps: int | None = None):
        super().__init__(lr=lr, weight_decay=weight_decay, warmup_epochs=warmup_epochs, ece_bins=ece_bins,
                         optimizer=optimizer, schedule=schedule, warmup_steps=warmup_steps)
        self.save_hyperparameters()
        if weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {'|'.join(WEIGHTINGS)}, got {weighting!r}")
        if weighting == "per_sample" and teacher_cache:
            raise ValueError("weighting per_sample weighs every training clip by its teachers' loss on it, so it "
                             "needs live teachers; a teacher_cache holds one fixed ensemble per clip")
        if missing_modality not in ("raise", "fallback"):
            raise ValueError(f"missing_modality must be raise|fallback, got {missing_modality!r}")
        self.heads = dict(heads or {"action": 174})
        self.model = create_model(student, heads=self.heads, weights=weights, **(student_kwargs or {}))
        self.lam, self.tau, self.gamma, self.weighting = lam, tau, gamma, weighting
        self.regression_weight, self.missing_modality = regression_weight, missing_modality
        # teachers are frozen and NOT part of the student's state_dict (kept in a plain list)
        self._teachers: list[Teacher] = [load_teacher(p) for p in (teachers or [])]
        for t in self._teachers:
            check_teacher_heads(t, self.heads)
        self.ensemble: LogitEnsemble | None = None
        if teacher_weights is not None:
            self.set_ensemble_weights({h: torch.tensor(w) for h, w in teacher_weights.items()})
        elif weighting in ("uniform", "per_sample") and self._teachers:
            m = len(self._teachers)
            self.set_ensemble_weights({h: torch.full((m,), 1.0 / m) for h in self.heads})
        self.reg_head = None
        if regression_weight > 0:
            lang = [t for t in self._teachers if t.input_key == "text"]
            if not lang:
                raise ValueError("regression_weight > 0 needs a language teacher among the teachers")
            self._language = lang[0]
            self.reg_head = RegressionHead(self.model.feature_dim, lang[0].module.model.text_dim)
        self._cache, self._cache_rows = load_logit_cache(teacher_cache) if teacher_cache else (None, {})
        self.fallbacks = 0

    # ------------------------------------------------------------------ teachers and ensemble
    @property
    def teachers(self) -> list[Teacher]:
        return self._teachers

    def set_ensemble_weights(self, weights: dict[str, torch.Tensor]) -> None:
        gamma = self.gamma if self.weighting == "per_sample" else None
        self.ensemble = LogitEnsemble([t.name for t in self._teachers], weights, per_sample_gamma=gamma)
        for h, w in weights.items():
            log.info("ensemble weights (%s): %s", h, dict(zip(self.ensemble.names, [round(float(x), 4) for x in w])))

    def calibrate(self, loader) -> dict[str, torch.Tensor]:
        """Held-out CEs → weights ``softmax(−e/γ)`` per head; returns the CEs."""
        errors = teacher_errors(self._teachers, loader, list(self.heads))
        self.set_ensemble_weights({h: calibration_weights(e, self.gamma) for h, e in errors.items()})
        return errors

    def on_fit_start(self) -> None:
        for t in self._teachers:
            t.to(self.device)
        if self.ensemble is None and self._teachers and self._cache is None:
            dm = self.trainer.datamodule
            if not hasattr(dm, "holdout_dataloader"):
                raise ValueError("calibrated weighting needs a data module with held-out clips (holdout > 0)")
            self.calibrate(dm.holdout_dataloader())
        if self.ensemble is not None:
            self.ensemble.to(self.device)

    def teacher_logits(self, batch: dict[str, Any]) -> dict[str, torch.Tensor] | None:
        if all(f"teacher/{h}" in batch for h in self.heads):  # the caller put each sample's ensemble logits in
            return {h: batch[f"teacher/{h}"].float() for h in self.heads}
        if self._cache is not None:
            clips = batch.get("clip_id", batch.get("video_id"))
            if clips is None:
                raise KeyError("cached teacher logits are looked up by clip id; the batch has no clip_id/video_id")
            try:
                idx = torch.tensor([self._cache_rows[c] for c in clips])
            except KeyError as exc:
                raise KeyError(f"clip {exc.args[0]!r} is not in the teacher cache {self.hparams.teacher_cache} "
                               "(computed over another split or dataset?)") from None
            return {h: self._cache[h][idx].to(self.device) for h in self.heads}
        if not self._teachers:
            return None
        present = [i for i, t in enumerate(self._teachers) if t.input_key in batch]
        if len(present) < len(self._teachers):
            missing = [self._teachers[i].name for i in range(len(self._teachers)) if i not in present]
            if self.missing_modality == "raise" or not present:
                raise KeyError(f"batch lacks the input(s) of teacher(s) {missing}; provide those modalities or "
                               "set missing_modality: fallback")
            self.fallbacks += 1
            self.log("teacher_fallbacks", float(self.fallbacks), reduce_fx="max")
        outs = [self._teachers[i](batch) for i in present]
        targets = {h: batch[h] for h in self.heads} if all(h in batch for h in self.heads) else None
        if len(present) == len(self._teachers):
            return self.ensemble(outs, targets)
        weights = {h: self.ensemble.weight(h)[present] for h in self.heads}
        weights = {h: w / w.sum() for h, w in weights.items()}
        subset = LogitEnsemble([self._teachers[i].name for i in present], weights,
                               per_sample_gamma=self.ensemble.per_sample_gamma)
        return subset.to(self.device)(outs, targets)

    # ------------------------------------------------------------------ student
    def label_heads(self) -> list[str]:
        return list(self.heads)

    def forward(self, batch: dict[str, Any] | torch.Tensor) -> dict[str, torch.Tensor]:
        return self.model(batch["rgb"] if isinstance(batch, dict) else batch)

    def training_loss(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if self.reg_head is None:
            student = self.model(batch["rgb"])
        else:  # LanViKD: the regression head reads the student's pooled features
            feats = self.model.forward_features(batch["rgb"])
            student = self.model.head(feats)
        teacher = self.teacher_logits(batch) if self.lam > 0 else None
        targets = {h: batch[h] for h in self.heads}
        loss, parts = distillation_objective(student, targets, teacher, lam=self.lam, tau=self.tau)
        if self.reg_head is not None:
            target = self._language.module.model.embed(list(batch["text"])).to(feats)
            reg = F.smooth_l1_loss(self.reg_head(feats), target, beta=1.0)
            loss = loss + self.regression_weight * reg
            parts["smooth_l1"] = reg.detach()
        return loss, parts

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        if self.ensemble is not None:
            checkpoint["modalbridge_ensemble"] = {h: self.ensemble.weight(h).cpu() for h in self.ensemble.heads}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        if "modalbridge_ensemble" in checkpoint and self._teachers:
            self.set_ensemble_weights(checkpoint["modalbridge_ensemble"])


@torch.no_grad()
def precompute_teacher_logits(teachers: list[Teacher], weights: dict[str, torch.Tensor], dataset, out: str | Path,
                              *, shard: tuple[int, int] = (0, 1), batch_size: int = 16,
                              num_workers: int = 0, collate_fn=None, precision: str = "auto") -> Path:
    """Ensemble logits of every clip of ``dataset`` (use an eval-transform dataset) → safetensors
    ``{head: (N, C)}``, row ``k`` = clip ``k`` of ``dataset``, with the clips' ids (``dataset.clip_ids()``:
    EK narration ids, SSv2 video ids) in the file's metadata: training looks rows up by id, so a cache over a
    whole split serves a training set with held-out clips removed. ``shard=(i, n)`` computes rows ``i::n`` only
    (rows of other shards are NaN) so any launcher can fan out; merge shards with :func:`merge_logit_shards`.
    ``collate_fn``: the data module's (layout batches need theirs; default :func:`collate_skipping`).
    ``precision``: the teachers' forward pass (:func:`modalbridge.core.precision.autocast`); the ensemble
    average and the stored logits are fp32."""
    from torch.utils.data import DataLoader, Subset

    from modalbridge.core.data import collate_skipping

    if not hasattr(dataset, "clip_ids"):
        raise TypeError(f"{type(dataset).__name__} has no clip_ids(): cached logits are keyed by clip id")
    i, n = shard
    ids = list(range(i, len(dataset), n))
    device = next(iter(teachers[0].parameters())).device
    ensemble = LogitEnsemble([t.name for t in teachers], weights)
    result: dict[str, torch.Tensor] = {}
    loader = DataLoader(Subset(dataset, ids), batch_size=batch_size, num_workers=num_workers,
                        collate_fn=collate_fn or collate_skipping)
    for batch in progress(loader, f"teacher logits (shard {i}/{n})", unit="batch"):
        if "index" not in batch:
            continue
        with autocast(precision, device):
            member_logits = [t(batch) for t in teachers]
        z = ensemble([{h: v.float() for h, v in out.items()} for out in member_logits])
        for h, v in z.items():
            if h not in result:
                result[h] = torch.full((len(dataset), v.shape[1]), float("nan"))
            result[h][batch["index"]] = v.cpu()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(result, str(out), metadata={"shard": f"{i}/{n}", "teachers": ",".join(t.name for t in teachers),
                                          "clip_ids": json.dumps(list(dataset.clip_ids()))})
    return out


def merge_logit_shards(paths: list[str | Path], out: str | Path) -> Path:
    """Merge shard files of :func:`precompute_teacher_logits` (each row must come from exactly one shard)."""
    merged: dict[str, torch.Tensor] = {}
    metas = [_cache_metadata(p) for p in paths]
    if any(m.get("clip_ids") != metas[0].get("clip_ids") for m in metas):
        raise ValueError("the shards were computed over different clip lists (other split, root or filter)")
    for p in paths:
        for h, v in load_file(str(p)).items():
            if h not in merged:
                merged[h] = v.clone()
            else:
                rows = ~torch.isnan(v).any(1)
                merged[h][rows] = v[rows]
    missing = {h: int(torch.isnan(v).any(1).sum()) for h, v in merged.items()}
    if any(missing.values()):
        raise ValueError(f"rows missing after merging {len(paths)} shard(s): {missing}")
    meta = {k: metas[0][k] for k in ("teachers", "clip_ids") if k in metas[0]}
    save_file(merged, str(out), metadata=meta)
    return Path(out)


def _cache_metadata(path: str | Path) -> dict[str, str]:
    with safe_open(str(path), framework="pt") as f:
        return dict(f.metadata() or {})


def load_logit_cache(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, int]]:
    """A merged :func:`precompute_teacher_logits` file → ``({head: (N, C)}, {clip id: row})``."""
    meta = _cache_metadata(path)
    if "clip_ids" not in meta:
        raise ValueError(f"{path}: teacher cache without clip ids (written before caches were keyed by clip); "
                         "re-run modalbridge distill-cache")
    rows = {clip: k for k, clip in enumerate(json.loads(meta["clip_ids"]))}
    return load_file(str(path)), rows
