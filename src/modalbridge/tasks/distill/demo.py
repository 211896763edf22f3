"""``modalbridge demo``: the distillation pipeline end to end on the embedded kitchen world.

1. train one teacher per modality with CE — RGB, optical flow, audio (log-mel windows) and language
   (frozen MiniLM + linear heads on the narration) — on the training clips minus a held-out set;
2. calibrate the ensemble weights ``softmax(−CE/γ)`` on the held-out clips;
3. distil the ensemble into an RGB-only student (λ, τ) — the CE-only student is the RGB teacher
   itself (same model, data and recipe: the thesis's "RGB baseline");
4. evaluate everything on the validation split, whose unseen participant (P18) shows objects in
   colours never seen in training (the compositional split): verb/noun/action top-1, ECE;
5. measure the compute cost (params, FLOPs, ms/clip) and write ``runs/demo/report.html``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from modalbridge.core.classifier import ModalityClassifierModule
from modalbridge.core.paths import runs_dir
from modalbridge.core.report import bar_plot, table_html, write_report
from modalbridge.core.runs import RunDirCallback
from modalbridge.datasets.datamodules import EpicKitchensDataModule
from modalbridge.io.memory import MEDIA_CACHE
from modalbridge.io.video import read_frames
from modalbridge.tasks.distill.compute import compute_table
from modalbridge.tasks.distill.module import (
    DistillModule,
    EnsembleModule,
    LanguageTeacherModule,
    load_teacher,
)

log = logging.getLogger(__name__)


@dataclass
class DemoConfig:
    # the distillation variant of the kitchen world: 30 % noisy training labels, verb-only audio
    root: str = "world://kitchen-distill/ek100"
    backbone: str = "r3d_tiny"  # the RGB teacher (= the CE-only student) and the distilled student
    # per-modality teacher backbone / lr, e.g. {"flow": "pooled", "audio": "pooled"} with lr 1e-2: the card's
    # low-capacity teachers (§9.1 a); modalities not listed use ``backbone`` / ``lr`` (docs/distill.md)
    teacher_backbones: dict = field(default_factory=dict)
    teacher_lrs: dict = field(default_factory=dict)
    num_frames: int = 8
    stride: int = 4
    size: int = 64
    audio_size: int = 64
    batch_size: int = 16
    num_workers: int = 0  # with the media cache: the world is decoded once, by this process, for every stage
    cache_media_gb: float = 4.0
    holdout: int = 60
    teacher_epochs: int = 5
    language_epochs: int = 10
    student_epochs: int = 5
    lr: float = 1e-3
    gamma: float = 1.0
    lam: float = 0.8
    tau: float = 1.0
    modal_teachers: tuple[str, ...] = ("rgb", "flow", "audio")
    use_language_teacher: bool = True   # trained and evaluated (LanViKD stage 1)
    language_in_ensemble: bool = False  # the world's narrations name the label: an oracle teacher
    seed: int = 0
    extra: dict = field(default_factory=dict)

    @classmethod
    def quick(cls) -> DemoConfig:
        return cls(teacher_epochs=1, language_epochs=2, student_epochs=1, holdout=30)


def _data(cfg: DemoConfig, modalities: tuple[str, ...]) -> EpicKitchensDataModule:
    return EpicKitchensDataModule(
        cfg.root, modalities=modalities, num_frames=cfg.num_frames, stride=cfg.stride, size=cfg.size,
        scale_range=(1.0, 1.15), flip=False, audio_size=cfg.audio_size, batch_size=cfg.batch_size,
        num_workers=cfg.num_workers, seed=cfg.seed, holdout=cfg.holdout, cache_media_gb=cfg.cache_media_gb)


def _teacher_backbone(cfg: DemoConfig, modality: str) -> str:
    return "MiniLM" if modality == "text" else cfg.teacher_backbones.get(modality, cfg.backbone)


def _trainer(run_dir: Path, epochs: int) -> L.Trainer:
    return L.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, logger=False, default_root_dir=str(run_dir),
                     reload_dataloaders_every_n_epochs=1,
                     gradient_clip_val=5.0, use_distributed_sampler=False, enable_model_summary=False,
                     num_sanity_val_steps=0, log_every_n_steps=10, enable_progress_bar=True,
                     callbacks=[RunDirCallback(), ModelCheckpoint(save_last=True, save_top_k=0, save_on_train_epoch_end=True)])


def _fit(module: L.LightningModule, dm: EpicKitchensDataModule, run_dir: Path, epochs: int, label: str) -> Path:
    print(f"[demo] training {label} ({epochs} epochs) → {run_dir}", flush=True)
    t0 = time.time()
    L.seed_everything(0, workers=True)
    _trainer(run_dir, epochs).fit(module, datamodule=dm)
    print(f"[demo]   done in {time.time() - t0:.0f} s", flush=True)
    return run_dir / "checkpoints" / "last.ckpt"


def evaluate(models: dict[str, L.LightningModule], dm: EpicKitchensDataModule) -> dict[str, dict[str, float]]:
    """Validation metrics of several classifiers (teachers, the ensemble, students) through the engine: one
    ``Trainer.validate`` each, scored by :func:`~modalbridge.metrics.score_classification` (verb/noun/action
    top-1 and ECE, and the EK seen/unseen splits of the world's validation participants)."""
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, enable_checkpointing=False)
    keep = ("verb_top1", "noun_top1", "action_top1", "verb_ece", "noun_ece", "action_ece")
    results = {}
    for name, module in models.items():
        trainer.validate(module, datamodule=dm, verbose=False)
        m = {k.partition("/")[2]: v for k, v in module.last_eval_metrics.items()}
        r = {k: m[k] for k in keep}
        for split in ("unseen", "seen"):
            if f"{split}/action_top1" in m and "unseen/action_top1" in m:
                r[f"{split}_action_top1"] = m[f"{split}/action_top1"]
        results[name] = r
    return results


def run_demo(quick: bool = False, out: str | Path | None = None, config: DemoConfig | None = None) -> Path:
    """Run the whole pipeline; returns the path of ``report.html``. The decoded-media cache it fills
    (``cache_media_gb``) is emptied and its previous budget restored when it returns."""
    budget = MEDIA_CACHE.max_bytes
    try:
        return _run_demo(quick, out, config)
    finally:
        MEDIA_CACHE.configure(0)
        MEDIA_CACHE.clear()
        MEDIA_CACHE.configure(budget)


def _run_demo(quick: bool, out: str | Path | None, config: DemoConfig | None) -> Path:
    cfg = config or (DemoConfig.quick() if quick else DemoConfig())
    out = Path(out) if out is not None else runs_dir() / "demo"
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    t_start = time.time()
    L.seed_everything(cfg.seed, workers=True)

    # 1. teachers ------------------------------------------------------------------------------
    ckpts: dict[str, Path] = {}
    for modality in cfg.modal_teachers:
        dm = _data(cfg, (modality,))
        backbone = _teacher_backbone(cfg, modality)
        module = ModalityClassifierModule(backbone, dm.heads, modality=modality,
                                          lr=cfg.teacher_lrs.get(modality, cfg.lr), warmup_epochs=0.5)
        ckpts[modality] = _fit(module, dm, out / f"teacher_{modality}", cfg.teacher_epochs,
                               f"{modality} teacher ({backbone})")
    if cfg.use_language_teacher:
        dm = _data(cfg, ("text",))
        module = LanguageTeacherModule(dm.heads, lr=1e-2, warmup_epochs=0)
        ckpts["text"] = _fit(module, dm, out / "teacher_text", cfg.language_epochs, "language teacher (MiniLM)")

    # 2. calibrate the ensemble on held-out training clips ---------------------------------------------
    ensemble_members = [m for m in ckpts if m != "text" or cfg.language_in_ensemble]
    modalities = ("rgb", *[m for m in ensemble_members if m != "rgb"])
    dm_all = _data(cfg, modalities)
    teacher_paths = [str(ckpts[m]) for m in ensemble_members]
    student = DistillModule(cfg.backbone, dm_all.heads, teachers=teacher_paths, weighting="calibrated",
                            gamma=cfg.gamma, lam=cfg.lam, tau=cfg.tau, lr=cfg.lr, warmup_epochs=0.5)
    errors = student.calibrate(dm_all.holdout_dataloader())
    weights = {h: student.ensemble.weight(h).clone() for h in student.heads}
    names = [t.name for t in student.teachers]
    calib_rows = [{"teacher": n, **{f"held-out CE {h}": float(errors[h][i]) for h in errors},
                   **{f"weight {h}": float(weights[h][i]) for h in weights}} for i, n in enumerate(names)]

    # 3. distil into the RGB student -----------------------------------------------------------------
    student_ckpt = _fit(student, dm_all, out / "student_distilled", cfg.student_epochs,
                        f"distilled RGB student (λ={cfg.lam}, τ={cfg.tau}, γ={cfg.gamma})")
    del student_ckpt

    # 4. evaluate -----------------------------------------------------------------------------------------
    teachers = {t.name: t for t in (load_teacher(p) for p in teacher_paths)}
    models: dict[str, L.LightningModule] = {f"teacher {n}": t.module for n, t in teachers.items()}
    if "text" in ckpts and "text" not in teachers:  # evaluated alone (needs the text input)
        dm_all = _data(cfg, (*modalities, "text"))
        models["teacher text (not in ensemble)"] = load_teacher(ckpts["text"]).module
    models["student CE-only (= RGB teacher)"] = teachers["rgb"].module
    models["student distilled"] = student
    models["teacher ensemble"] = EnsembleModule(list(teachers.values()), weights)
    results = evaluate(models, dm_all)

    # 5. compute ----------------------------------------------------------------------------------------------
    seg = dm_all.dataset.segments("validation")[0]
    sample = dm_all.val_set[0]
    raw = read_frames(dm_all.dataset.video_path(seg.video_id),
                      torch.arange(seg.start_frame - 1, seg.start_frame - 1 + cfg.num_frames * cfg.stride).tolist())
    teacher_models = {n: (t.module.model, sample[n][None]) for n, t in teachers.items() if n != "text"}
    compute = compute_table(student.model, teacher_models, sample["rgb"][None], raw_frames=raw)

    # report ----------------------------------------------------------------------------------------------------
    rows = [{"model": n, **r} for n, r in results.items()]
    cols = ["model", "verb_top1", "noun_top1", "action_top1", "seen_action_top1", "unseen_action_top1",
            "verb_ece", "noun_ece", "action_ece"]
    figs = out / "figures"
    bar_plot([r["model"] for r in rows], [r["action_top1"] for r in rows], figs / "action_top1.png",
             ylabel="action top-1 (%)", title="validation (compositional split)")
    comp_rows = [r for r in compute if not r["model"].startswith("student /")]
    bar_plot([r["model"] for r in comp_rows], [r["ms"] for r in comp_rows], figs / "latency.png",
             ylabel="ms / clip (batch 1, CPU)", title="inference cost")
    (out / "results.json").write_text(json.dumps({"config": asdict(cfg), "results": results, "compute": compute,
                                                  "calibration": calib_rows}, indent=1, default=str))
    elapsed = time.time() - t_start
    report = write_report(out / "report.html", "modalbridge demo — multimodal → RGB distillation on the kitchen world", [
        ("What ran", f"<p>Teachers ({', '.join(f'{n}: {_teacher_backbone(cfg, n)}' for n in names)}) "
                     f"trained with CE; ensemble weights softmax(−CE/γ) "
                     f"from {cfg.holdout} held-out training clips (γ={cfg.gamma}); RGB student distilled with "
                     f"λ={cfg.lam}, τ={cfg.tau}. The CE-only student is the RGB teacher (same backbone "
                     f"{cfg.backbone}, data and recipe). Validation = the world's compositional split "
                     f"(participant P18 = unseen colours). Total time {elapsed / 60:.1f} min.</p>"),
        ("Accuracy and calibration (validation, %)", table_html(rows, cols)),
        ("Action accuracy", '<img src="figures/action_top1.png">'),
        ("Ensemble calibration", table_html(calib_rows)),
        ("Compute (params M, GFLOPs per clip, ms per clip on this CPU)", table_html(compute)),
        ("Latency", '<img src="figures/latency.png">'),
        ("Runs", "<ul>" + "".join(f'<li><a href="{p.parent.parent.name}/report.html">{p.parent.parent.name}</a></li>'
                                   for p in [*ckpts.values(), out / "student_distilled" / "checkpoints" / "x"]) + "</ul>"),
    ])
    print(f"[demo] finished in {elapsed / 60:.1f} min")
    return report
