"""``modalbridge demo``: the distillation claims of Ch. 7 end to end on the embedded kitchen world, over seeds.

The world (``world://kitchen-distill``) has 30 % noisy training verbs, verb-only audio and an unseen-colour
validation participant. For every seed, through the Lightning Trainer and the library's modules:

1. train the RGB model (r3d_tiny; it is also the **CE-only student**: same network, data and recipe) and the
   card's low-capacity flow and audio teachers (§9.1 a: linear heads on the clip pooled to 3×8×4×4, lr 1e-2)
   on ``views`` augmented views of the training clips, decoded once (:mod:`~modalbridge.tasks.distill.views`);
2. calibrate the ensemble weights ``softmax(−CE/γ)`` on the held-out training clips;
3. distil the ensemble (its logits of each view, cached) into an RGB student with ``λ`` and ``τ``;
4. score everything on the validation split (verb/noun/action top-1, ECE with 15 bins).

The language teacher (frozen MiniLM + linear heads on the narration) is trained once and reported apart: the
world's narrations name the label, so it is an oracle. The two claims — distilled student > CE-only student on
action top-1 (Table 7.2) and calibrated-ensemble ECE < RGB-model ECE (Table 7.1) — are reported as the mean over
seeds with two 95 % intervals (paired bootstrap over validation clips; Student's t over seeds) and a verdict in
words. Training precision is ``auto`` (bf16 autocast where the CPU/GPU computes bf16 natively).
"""

from __future__ import annotations

import html
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import matplotlib.pyplot as plt
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from modalbridge.core.claims import Claim, choose_config, claim_table_text, measure_claim
from modalbridge.core.classifier import ModalityClassifierModule
from modalbridge.core.paths import runs_dir
from modalbridge.core.precision import describe_precision
from modalbridge.core.report import (
    per_class_change_plot,
    reliability_plot,
    save_figure,
    table_html,
    write_report,
)
from modalbridge.core.trainer import Trainer
from modalbridge.datasets.datamodules import EpicKitchensDataModule
from modalbridge.io.video import read_frames
from modalbridge.metrics import reliability_bins
from modalbridge.metrics.calibration import expected_calibration_error
from modalbridge.metrics.uncertainty import seed_interval
from modalbridge.tasks.distill.compute import compute_table
from modalbridge.tasks.distill.module import (
    DistillModule,
    EnsembleModule,
    LanguageTeacherModule,
    Teacher,
    teacher_errors,
)
from modalbridge.tasks.distill.views import DecodedViews, ViewsDataModule, decode_views, ensemble_view_logits

log = logging.getLogger(__name__)

MODALITIES = ("rgb", "flow", "audio")
#: the names of the models in the tables (the CE-only student IS the RGB model)
RGB, ENSEMBLE, KD, TEXT = "RGB model = CE-only student", "teacher ensemble", "distilled student", "text teacher"


@dataclass
class DemoConfig:
    """The demo's recipe (defaults: the 15-minute run; :meth:`long`: the GPU study's recipe, :meth:`quick`: a
    smoke test)."""

    root: str = "world://kitchen-distill/ek100"
    backbone: str = "r3d_tiny"  # the RGB model (= the CE-only student) and the distilled student
    # the card's low-capacity teachers (§9.1 a); modalities not listed use ``backbone`` / ``lr``
    teacher_backbones: dict = field(default_factory=lambda: {"flow": "pooled", "audio": "pooled"})
    teacher_lrs: dict = field(default_factory=lambda: {"flow": 1e-2, "audio": 1e-2})
    lr: float = 5e-3
    num_frames: int = 8
    stride: int = 4
    size: int = 64
    audio_size: int = 64
    batch_size: int = 16
    num_workers: int = 2  # decoding processes (the views are decoded once)
    holdout: int = 60
    views: int = 6  # augmented training views decoded once; epoch e trains on view e mod views
    # the RGB model and the student train on the first rgb_views of them (None: all): on 2 views the RGB model
    # memorises its (noisy) labels within the budget and is over-confident, as a Swin-T is on EPIC-KITCHENS
    rgb_views: int | None = 2
    epochs: int = 60  # the RGB model and the distilled student
    teacher_epochs: int = 60  # the flow/audio teachers
    language_epochs: int = 10
    gamma: float = 1.0
    lam: float = 1.0
    tau: float = 1.0
    seeds: tuple[int, ...] = (0, 1, 2)
    precision: str = "auto"
    bootstrap: int = 1000
    use_language_teacher: bool = True

    @classmethod
    def quick(cls, **overrides: Any) -> DemoConfig:
        return cls(**{"views": 1, "epochs": 1, "teacher_epochs": 1, "language_epochs": 1, "holdout": 30,
                      "seeds": (0,), "bootstrap": 200, **overrides})

    @classmethod
    def long(cls, **overrides: Any) -> DemoConfig:
        """The GPU study's recipe (docs/distill.md, "At GPU budgets"): 8 views, 120 epochs."""
        return cls(**{"views": 8, "rgb_views": None, "epochs": 120, "teacher_epochs": 120, **overrides})


# -- building blocks ------------------------------------------------------------------------------------------
def _data(cfg: DemoConfig, modalities: tuple[str, ...], seed: int = 0) -> EpicKitchensDataModule:
    return EpicKitchensDataModule(
        cfg.root, modalities=modalities, num_frames=cfg.num_frames, stride=cfg.stride, size=cfg.size,
        scale_range=(1.0, 1.15), flip=False, audio_size=cfg.audio_size, batch_size=cfg.batch_size,
        num_workers=cfg.num_workers, seed=seed, holdout=cfg.holdout)


def _trainer(cfg: DemoConfig, run_dir: Path | None, epochs: int) -> L.Trainer:
    """The library's recipe around the modules' AdamW + warm-up/decay: clipping 5, ``cfg.precision``; the
    models are scored once, at the end, so no per-epoch validation."""
    callbacks = [ModelCheckpoint(dirpath=run_dir / "checkpoints", save_last=True, save_top_k=0)] if run_dir else []
    return Trainer(max_epochs=epochs, accelerator="cpu", devices=1, precision=cfg.precision, logger=False,
                   enable_checkpointing=run_dir is not None, callbacks=callbacks, default_root_dir=run_dir,
                   gradient_clip_val=5.0, limit_val_batches=0, num_sanity_val_steps=0, enable_progress_bar=False,
                   enable_model_summary=False, reload_dataloaders_every_n_epochs=1)


def _fit(cfg: DemoConfig, module: L.LightningModule, data: L.LightningDataModule, run_dir: Path, epochs: int,
         label: str) -> L.LightningModule:
    t0 = time.time()
    _trainer(cfg, run_dir, epochs).fit(module, datamodule=data)
    print(f"[demo]   {label}: {epochs} epochs in {time.time() - t0:.0f} s → {run_dir}", flush=True)
    return module.eval()


def evaluate(models: dict[str, L.LightningModule], data: L.LightningDataModule, precision: str = "auto"
             ) -> dict[str, dict[str, Any]]:
    """Validation metrics and per-clip rows of several classifiers through the engine (one
    ``Trainer.validate`` each): ``{name: {"metrics": {...}, "rows": {logits/<h>, target/<h>, index}}}``."""
    trainer = Trainer(accelerator="cpu", devices=1, precision=precision, logger=False, enable_progress_bar=False,
                      enable_model_summary=False, enable_checkpointing=False)
    out = {}
    for name, module in models.items():
        trainer.validate(module, datamodule=data, verbose=False)
        metrics = {k.partition("/")[2]: v for k, v in module.last_eval_metrics.items()}
        out[name] = {"metrics": metrics, "rows": next(iter(module.last_eval_rows.values()))}
    return out


def action_confidence(rows: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per clip: action confidence ``max p(verb) · max p(noun)`` and correctness (both heads right), as the
    engine's action ECE defines them."""
    conf, hit = torch.ones(len(rows["index"]), dtype=torch.float64), torch.ones(len(rows["index"]), dtype=torch.bool)
    for head in ("verb", "noun"):
        p, pred = rows[f"logits/{head}"].double().softmax(-1).max(-1)
        conf, hit = conf * p, hit & (pred == rows[f"target/{head}"])
    return conf, hit


# -- one seed ---------------------------------------------------------------------------------------------------
def _train_seed(cfg: DemoConfig, seed: int, source: EpicKitchensDataModule, views: list, holdout: list, val: list,
                out: Path) -> dict[str, Any]:
    print(f"[demo] seed {seed}", flush=True)
    heads = dict(source.heads)
    frames = views[0]["rgb"].shape[2]
    val_data = ViewsDataModule(source, None, DecodedViews(val), batch_size=64, seed=seed)

    def data(teacher=None, rgb: bool = False) -> ViewsDataModule:
        used = views[:cfg.rgb_views] if rgb and cfg.rgb_views else views
        return ViewsDataModule(source, DecodedViews(used, teacher), DecodedViews(val), batch_size=cfg.batch_size,
                               seed=seed)

    members = {}
    for m in MODALITIES:
        kind = cfg.teacher_backbones.get(m, cfg.backbone) if m != "rgb" else cfg.backbone
        L.seed_everything(seed, workers=True, verbose=False)
        module = ModalityClassifierModule(kind, heads, modality=m, lr=cfg.teacher_lrs.get(m, cfg.lr),
                                          weight_decay=0.0, warmup_epochs=0.5,
                                          model_kwargs={"frames": frames} if kind == "pooled" else {})
        epochs = cfg.epochs if m == "rgb" else cfg.teacher_epochs
        members[m] = _fit(cfg, module, data(rgb=m == "rgb"), out / f"teacher_{m}", epochs, f"{m} teacher ({kind})")
    teachers = [Teacher(members[m], m, m) for m in MODALITIES]
    errors = teacher_errors(teachers, torch.utils.data.DataLoader(DecodedViews(holdout), batch_size=64),
                            list(heads))
    weights = {h: torch.softmax(-e / cfg.gamma, dim=0) for h, e in errors.items()}
    ensemble = EnsembleModule(teachers, weights)
    calibration = [{"teacher": t.name, **{f"held-out CE {h}": float(errors[h][i]) for h in errors},
                    **{f"weight {h}": float(weights[h][i]) for h in weights}} for i, t in enumerate(teachers)]

    L.seed_everything(seed + 1000, workers=True, verbose=False)
    student = DistillModule(cfg.backbone, heads, lam=cfg.lam, tau=cfg.tau, lr=cfg.lr, weight_decay=0.0,
                            warmup_epochs=0.5)
    student_views = views[:cfg.rgb_views] if cfg.rgb_views else views
    targets = ensemble_view_logits(ensemble, student_views, precision=cfg.precision)
    _fit(cfg, student, data(targets, rgb=True), out / "student_distilled", cfg.epochs,
         f"distilled RGB student (λ={cfg.lam:g}, τ={cfg.tau:g}, γ={cfg.gamma:g})")
    models = {RGB: members["rgb"], "flow teacher": members["flow"], "audio teacher": members["audio"],
              ENSEMBLE: ensemble, KD: student}
    return {"eval": evaluate(models, val_data, cfg.precision), "calibration": calibration, "student": student,
            "teachers": teachers}


def _language_teacher(cfg: DemoConfig, seed: int, out: Path) -> dict[str, Any]:
    dm = _data(cfg, ("text",), seed)
    L.seed_everything(seed, workers=True, verbose=False)
    module = LanguageTeacherModule(dm.heads, lr=1e-2, warmup_epochs=0)
    _fit(cfg, module, dm, out / "teacher_text", cfg.language_epochs, "language teacher (MiniLM)")
    return evaluate({TEXT: module}, dm, cfg.precision)[TEXT]


# -- claims ------------------------------------------------------------------------------------------------------
def claims(per_seed: list[dict[str, Any]], resamples: int) -> list[Claim]:
    """The two claims, measured on the same validation clips for every seed (paired)."""
    rows = [s["eval"] for s in per_seed]
    kd_hit = torch.stack([action_confidence(r[KD]["rows"])[1] for r in rows]).double()
    ce_hit = torch.stack([action_confidence(r[RGB]["rows"])[1] for r in rows]).double()
    gain = (kd_hit - ce_hit).mean(0) * 100  # (N,) seed-mean gain per clip

    accuracy = measure_claim("distilled student > CE-only student (action top-1)", "Table 7.2: +1 to +5 points",
                             lambda idx: gain[idx].mean(-1), len(gain),
                             [float(v) for v in (kd_hit - ce_hit).mean(1) * 100], resamples=resamples)
    conf = {m: [action_confidence(r[m]["rows"]) for r in rows] for m in (RGB, ENSEMBLE)}

    def ece_gap(idx: torch.Tensor) -> float:  # mean over seeds of ECE(RGB) − ECE(ensemble) on the clips idx
        gaps = [expected_calibration_error(confidences=c_rgb[idx], correct=h_rgb[idx])
                - expected_calibration_error(confidences=c_ens[idx], correct=h_ens[idx])
                for (c_rgb, h_rgb), (c_ens, h_ens) in zip(conf[RGB], conf[ENSEMBLE])]
        return sum(gaps) / len(gaps)

    n = len(gain)
    per_seed_gap = [r[RGB]["metrics"]["action_ece"] - r[ENSEMBLE]["metrics"]["action_ece"] for r in rows]
    calibration = measure_claim("calibrated ensemble ECE < RGB model ECE (action)",
                                "Table 7.1: ensemble 2–10 vs RGB 17–27", ece_gap, n, per_seed_gap,
                                resamples=resamples)  # ECE is not vectorised: one call per resample
    return [accuracy, calibration]


# -- run ---------------------------------------------------------------------------------------------------------
def run_demo(quick: bool = False, out: str | Path | None = None, config: DemoConfig | None = None, *,
             seeds: list[int] | None = None, long: bool = False) -> Path:
    """Run the demo; returns the path of ``report.html``. ``seeds`` overrides the config's; ``long`` selects
    :meth:`DemoConfig.long` and ``quick`` :meth:`DemoConfig.quick` (ignored when ``config`` is given)."""
    cfg = choose_config(DemoConfig, config, quick=quick, long=long, seeds=seeds)
    out = Path(out) if out is not None else runs_dir() / "demo"
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    print(f"[demo] {describe_precision(cfg.precision, 'cpu')}; seeds {', '.join(map(str, cfg.seeds))}; "
          f"{cfg.views} view(s), {cfg.epochs} epochs → {out}", flush=True)

    # decode once: the training views (seed 0's augmentation draws), the held-out and the validation clips
    source = _data(cfg, MODALITIES, seed=0)
    source.setup("fit")
    keys = (*MODALITIES, "verb", "noun")
    clips = 32 if quick else None
    views = decode_views(source.train_set, keys=keys, views=cfg.views, clips=clips, num_workers=cfg.num_workers,
                         desc="training views")
    holdout = decode_views(source.make_dataset("train", train=False, part="holdout"), keys=keys, clips=clips,
                           num_workers=cfg.num_workers, desc="held-out clips")
    val = decode_views(source.val_set, keys=keys, num_workers=cfg.num_workers, desc="validation clips")
    print(f"[demo] decoded {cfg.views} view(s) of {len(views[0]['index'])} training clips, "
          f"{len(holdout[0]['index'])} held-out, {len(val[0]['index'])} validation in {time.time() - t_start:.0f} s",
          flush=True)

    per_seed = [_train_seed(cfg, s, source, views, holdout, val, out / f"seed{s}") for s in cfg.seeds]
    text = _language_teacher(cfg, cfg.seeds[0], out / f"seed{cfg.seeds[0]}") if cfg.use_language_teacher else None
    found = claims(per_seed, cfg.bootstrap)
    elapsed = time.time() - t_start
    report = _write(cfg, out, per_seed, text, found, source, val, elapsed)
    print("\n" + claim_table_text(found))
    print(f"\n[demo] finished in {elapsed / 60:.1f} min; report: {report}")
    return report


def _summary(per_seed: list[dict], text: dict | None) -> list[dict[str, Any]]:
    """Mean ± 95 % (t over seeds) of every model's metrics."""
    keys = ("verb_top1", "noun_top1", "action_top1", "verb_ece", "noun_ece", "action_ece")
    rows = []
    for name in per_seed[0]["eval"]:
        row: dict[str, Any] = {"model": name}
        for k in keys:
            mean, low, high = seed_interval([s["eval"][name]["metrics"][k] for s in per_seed])
            row[k] = f"{mean:.1f}" if low != low else f"{mean:.1f} ± {(high - low) / 2:.1f}"
        rows.append(row)
    if text is not None:
        rows.append({"model": f"{TEXT} (oracle, one seed)", **{k: f"{text['metrics'][k]:.1f}" for k in keys}})
    return rows


def _accuracy_figure(per_seed: list[dict], text: dict | None, path: Path) -> Path:
    """Action top-1 of every model (mean over seeds, 95 % t interval), the oracle text teacher in its own panel."""
    names = list(per_seed[0]["eval"])
    stats = [seed_interval([s["eval"][n]["metrics"]["action_top1"] for s in per_seed]) for n in names]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), gridspec_kw={"width_ratios": [len(names), 1.3]})
    means = [m for m, _, _ in stats]
    errs = [0 if lo != lo else (hi - lo) / 2 for _, lo, hi in stats]
    axes[0].bar(range(len(names)), means, yerr=errs, capsize=4, color="#4a7bb7")
    axes[0].set_xticks(range(len(names)), names, rotation=25, ha="right", fontsize=8)
    axes[0].set_ylabel("action top-1 (%)")
    axes[0].set_title(f"validation, mean of {len(per_seed)} seed(s) (95 % t interval)", fontsize=9)
    if text is not None:
        axes[1].bar([0], [text["metrics"]["action_top1"]], color="#999")
        axes[1].set_xticks([0], ["text teacher\n(oracle)"], fontsize=8)
        axes[1].set_title("apart: reads the label", fontsize=9)
    else:
        axes[1].axis("off")
    return save_figure(fig, path)


def _per_class(per_seed: list[dict], source: EpicKitchensDataModule, figs: Path) -> list[str]:
    """Per-class accuracy change CE-only → distilled student (mean over seeds), verbs and nouns."""
    out = []
    for head in ("verb", "noun"):
        n_classes = source.heads[head]
        acc = {}
        for model in (RGB, KD):
            hits = torch.zeros(n_classes, dtype=torch.float64)
            counts = torch.zeros(n_classes, dtype=torch.float64)
            for s in per_seed:
                r = s["eval"][model]["rows"]
                target = r[f"target/{head}"]
                hit = (r[f"logits/{head}"].argmax(-1) == target).double()
                hits += torch.bincount(target, weights=hit, minlength=n_classes)
                counts += torch.bincount(target, minlength=n_classes).double()
            acc[model] = hits / counts.clamp(min=1) * 100
        present = (counts > 0).nonzero().flatten().tolist()
        names = source.class_names.get(head) or [str(i) for i in range(n_classes)]
        per_class_change_plot([names[i] for i in present], acc[RGB][present], acc[KD][present],
                              figs / f"per_class_{head}.png", labels=("CE-only student", "distilled student"),
                              title=f"{head} accuracy per class: CE-only → distilled")
        out.append(f'<img src="figures/per_class_{head}.png">')
    return out


def _raw_clip(cfg: DemoConfig, source: EpicKitchensDataModule) -> torch.Tensor | None:
    """The first validation clip's decoded frames (what the flow teacher's OpenCV extraction would read), or None
    when the source has no video files (synthetic reports)."""
    dataset = getattr(source, "dataset", None)
    if dataset is None:
        return None
    seg = dataset.segments("validation")[0]
    start = seg.start_frame - 1
    return read_frames(dataset.video_path(seg.video_id), list(range(start, start + cfg.num_frames * cfg.stride)))


def _write(cfg: DemoConfig, out: Path, per_seed: list[dict], text: dict | None, found: list[Claim],
           source: EpicKitchensDataModule, val: list, elapsed: float) -> Path:
    figs = out / "figures"
    _accuracy_figure(per_seed, text, figs / "action_top1.png")
    pooled = {}
    for name in (RGB, ENSEMBLE, KD):
        conf, hit = zip(*(action_confidence(s["eval"][name]["rows"]) for s in per_seed))
        pooled[name if name != RGB else "RGB model\n= CE-only student"] = reliability_bins(
            confidences=torch.cat(conf), correct=torch.cat(hit), n_bins=15)
    reliability_plot(pooled, figs / "reliability.png",
                     title=f"action reliability, validation clips of {len(per_seed)} seed(s) pooled (15 bins)")
    per_class = _per_class(per_seed, source, figs)

    # compute cost of the first seed's models (batch 1, this CPU)
    first = per_seed[0]
    example = {k: t[:1].float() for k, t in val[0].items() if t.is_floating_point()}
    teacher_models = {t.name: (t.module.model, example[t.input_key]) for t in first["teachers"]}
    compute = compute_table(first["student"].model, teacher_models, example["rgb"], raw_frames=_raw_clip(cfg, source))

    claim_rows = [c.row() for c in found]
    results = {
        "config": asdict(cfg), "precision": describe_precision(cfg.precision, "cpu"),
        "claims": [{**asdict(c), "verdict": c.verdict} for c in found],
        "seeds": {str(s): {n: e["metrics"] for n, e in r["eval"].items()} for s, r in zip(cfg.seeds, per_seed)},
        "text_teacher": text["metrics"] if text is not None else None,
        "calibration": {str(s): r["calibration"] for s, r in zip(cfg.seeds, per_seed)},
        "compute": compute, "minutes": elapsed / 60,
    }
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    long_note = ("" if cfg.epochs >= DemoConfig.long().epochs else
                 "<p>A claim marked <i>within noise</i> or <i>does not hold</i> here is re-measured by "
                 "<code>modalbridge demo --long</code> (the GPU study's recipe: 8 views, 120 epochs; 21 min for 3 "
                 "seeds on 2 CPU cores in bf16, where both claims held in every seed: docs/distill.md).</p>")
    teachers = ", ".join(f"{m}: {cfg.teacher_backbones.get(m, cfg.backbone) if m != 'rgb' else cfg.backbone}"
                         for m in MODALITIES)
    seeds_dirs = "".join(f'<li>seed {s}: <code>seed{s}/</code> (checkpoints of every model)</li>' for s in cfg.seeds)
    sections = [
        ("Claims (mean over seeds, 95 % intervals)", table_html(claim_rows) + long_note),
        ("Reliability (Fig. 7.x: confidence vs accuracy)", '<img src="figures/reliability.png">'),
        ("Accuracy and calibration (validation, %, mean ± 95 % t over seeds)",
         table_html(_summary(per_seed, text))),
        ("Action accuracy", '<img src="figures/action_top1.png">'),
        ("Per-class change from the CE-only to the distilled student", "".join(per_class)),
        ("Ensemble weights (held-out clips)", "".join(
            f"<h3>seed {s}</h3>" + table_html(r["calibration"]) for s, r in zip(cfg.seeds, per_seed))),
        ("Compute (params M, GFLOPs per clip, ms per clip on this CPU, batch 1)", table_html(compute)),
        ("What ran", f"<p>Teachers ({html.escape(teachers)}) trained with CE on {cfg.views} augmented view(s) of "
                     f"the training clips, decoded once; RGB model "
                     f"and distilled student {cfg.epochs} epochs at lr {cfg.lr:g}, flow/audio teachers "
                     f"{cfg.teacher_epochs} epochs; ensemble weights softmax(−CE/γ), γ={cfg.gamma:g}, from "
                     f"{cfg.holdout} held-out training clips; student λ={cfg.lam:g}, τ={cfg.tau:g}. The CE-only "
                     f"student is the RGB model (same backbone {cfg.backbone}, data and recipe). Validation: "
                     f"{len(val[0]['index'])} clips of the world's compositional split (participant P18 = unseen colours). "
                     f"{html.escape(describe_precision(cfg.precision, 'cpu'))}. Seeds "
                     f"{', '.join(map(str, cfg.seeds))}; total {elapsed / 60:.1f} min.</p><ul>{seeds_dirs}</ul>"),
    ]
    return write_report(out / "report.html",
                        "modalbridge demo — multimodal → RGB distillation on the kitchen world (Ch. 7)", sections)
