"""Study: when is the calibrated teacher ensemble better calibrated than the RGB model? (docs/distill.md)

The thesis (Table 7.1) finds the held-out-weighted RGB&OF&A ensemble far better calibrated than the RGB model
(ECE 2–10 vs 17–27). On the distillation world at demo budgets the order is reversed. This script measures why,
fast: it decodes a few augmented training views of the world once with the library's data module, then trains
the library's modules on those tensors through the engine (Lightning Trainer, ``ModalityClassifierModule`` /
``DistillModule``, ``teacher_errors`` + ``EnsembleModule`` for the calibrated ensemble, the shared scoring; epoch
e reads view e mod V, so nothing is decoded per epoch), and prints validation top-1 / ECE per head:

* the RGB model (``--rgb-model r3d_tiny``, the demo's, or ``pixel_mlp``, a model that memorises its training set
  in seconds — over-confident like a Swin-T trained to convergence on EPIC-KITCHENS);
* flow and audio teachers (``--teacher-model r3d_tiny`` or ``pooled``, the card's §9.1 a low-capacity teacher);
* the ensemble ``softmax(−CE/γ)``-weighted on held-out clips, for each ``--gammas``;
* optionally (``--students``) CE and distilled RGB students of the same family.

Each row also reports how far a model fits its own (noisy) training labels ("train action"); ``--json-out``
appends the rows to a JSON-lines file as they come (a run cut by a time limit keeps what it finished).

Usage: ``python studies/distill_calibration.py [--quick] [--device cuda] [--rgb-epochs 30] ...``
(``--help``); ``studies/distill_calibration_gpu.sh`` is the GPU study. Numbers in docs/distill.md.
"""

from __future__ import annotations

import argparse
import json
import time

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader

from modalbridge.core.classifier import ModalityClassifierModule
from modalbridge.core.registry import list_models, register_model
from modalbridge.core.trainer import Trainer
from modalbridge.datasets.datamodules import EpicKitchensDataModule
from modalbridge.nn.distillation import calibration_weights
from modalbridge.tasks.distill.module import DistillModule, EnsembleModule, Teacher, teacher_errors
from modalbridge.tasks.distill.views import DecodedViews, ViewsDataModule, decode_views

MODALITIES = ("rgb", "flow", "audio")
HEADS = ("verb", "noun")


class PixelMLP(nn.Module):
    """A clip average-pooled to ``(3, T, 16, 16)`` → LayerNorm → 256 GELU → linear heads: memorises its training
    set in seconds, over-confident like a Swin-T trained to convergence on EPIC-KITCHENS."""

    def __init__(self, heads: dict[str, int], *, frames: int, grid: int = 16, hidden: int = 256):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool3d((frames, grid, grid))
        dim = 3 * frames * grid * grid
        self.body = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, hidden), nn.GELU())
        self.heads = nn.ModuleDict({h: nn.Linear(hidden, n) for h, n in heads.items()})

    def forward(self, clip: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.body(self.pool(clip).flatten(1))
        return {h: head(features) for h, head in self.heads.items()}


if "pixel_mlp" not in list_models():
    register_model("pixel_mlp", task="studies")(lambda heads=None, frames=8, weights=None: PixelMLP(heads, frames=frames))


def trainer(epochs: int, device: str, *, validate_each_epoch: bool = False, precision: str = "32-true") -> L.Trainer:
    """The library's recipe around the modules' AdamW + warm-up/decay: gradient clipping 5, no checkpoints
    (training runs skip the per-epoch validation: the study scores each model once, at the end)."""
    return Trainer(max_epochs=epochs, accelerator="gpu" if device.startswith("cuda") else "cpu", devices=1,
                     precision=precision,
                     logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                     gradient_clip_val=5.0, limit_val_batches=None if validate_each_epoch else 0,
                     num_sanity_val_steps=0, reload_dataloaders_every_n_epochs=1)


def evaluate(module: L.LightningModule, source: EpicKitchensDataModule, data: dict[str, torch.Tensor], device: str
             ) -> dict[str, float]:
    """The engine's validation metrics of ``module`` on one decoded set."""
    dm = ViewsDataModule(source, None, DecodedViews([data]), batch_size=64, seed=0)
    trainer(1, device, validate_each_epoch=True).validate(module, datamodule=dm, verbose=False)
    return {k.partition("/")[2]: v for k, v in module.last_eval_metrics.items()}


def scores(m: dict[str, float]) -> dict[str, float]:
    """Top-1 and ECE per head and for the action, named as the study's table."""
    return {"verb": m["verb_top1"], "verb ECE": m["verb_ece"], "noun": m["noun_top1"], "noun ECE": m["noun_ece"],
            "action": m["action_top1"], "action ECE": m["action_ece"]}


def model_kwargs(kind: str, frames: int) -> dict:
    return {"frames": frames} if kind in ("pooled", "pixel_mlp") else {}


@torch.no_grad()
def ensemble_logits(ensemble: EnsembleModule, data: dict[str, torch.Tensor], device: str) -> dict[str, torch.Tensor]:
    """The ensemble's logits for every clip of one decoded set (KD targets of that view)."""
    ensemble.to(device).eval()
    n = len(data["verb"])
    outs = [ensemble({m: data[m][i:i + 64].to(device).float() for m in MODALITIES}) for i in range(0, n, 64)]
    return {h: torch.cat([o[h] for o in outs]).to(data["verb"].device) for h in HEADS}


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--world", default="world://kitchen-distill/ek100")
    p.add_argument("--views", type=int, default=6, help="augmented training views decoded (epoch e uses e mod V)")
    p.add_argument("--rgb-model", default="r3d_tiny", help="r3d_tiny | pixel_mlp | any registered video model")
    p.add_argument("--teacher-model", default="r3d_tiny", help="flow/audio teachers: r3d_tiny | pooled | ...")
    p.add_argument("--rgb-epochs", type=int, default=30)
    p.add_argument("--teacher-epochs", type=int, default=12)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--teacher-lr", type=float, default=None, help="flow/audio teachers' lr (default: --lr)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--size", type=int, default=64, help="RGB / flow crop side (px)")
    p.add_argument("--gammas", type=float, nargs="+", default=[1.0, 30.0])
    p.add_argument("--students", type=float, nargs="*", default=[], help="λ values of distilled students")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--workers", type=int, default=2, help="decoding processes")
    p.add_argument("--json-out", default=None, help="append each result row to this JSON-lines file as it comes")
    p.add_argument("--quick", action="store_true", help="tiny run (smoke test)")
    p.add_argument("--precision", default="32-true", help="training precision: 32-true | bf16-mixed | auto")
    args = p.parse_args(argv)
    if args.quick:
        args.views, args.rgb_epochs, args.teacher_epochs = 1, 1, 1
    t0 = time.time()
    dm = EpicKitchensDataModule(args.world, modalities=MODALITIES, num_frames=8, stride=4, size=args.size,
                                scale_range=(1.0, 1.15), flip=False, audio_size=64, batch_size=16,
                                num_workers=0 if args.quick else args.workers, seed=args.seed, holdout=60)
    dm.setup("fit")
    n = 16 if args.quick else len(dm.train_set)
    keys = (*MODALITIES, *HEADS)
    views = decode_views(dm.train_set, keys=keys, views=args.views, clips=n, num_workers=dm.num_workers)
    holdout_set = dm.make_dataset("train", train=False, part="holdout")
    holdout = decode_views(holdout_set, keys=keys, clips=16 if args.quick else None, num_workers=dm.num_workers)[0]
    val_set = dm.val_set
    val = decode_views(val_set, keys=keys, clips=16 if args.quick else None, num_workers=dm.num_workers)[0]
    print(f"decoded {args.views} view(s) of {n} clips, {len(holdout['verb'])} held-out, {len(val['verb'])} "
          f"validation in {time.time() - t0:.0f} s", flush=True)
    # the decoded views live on the training device (a few hundred MB at 64 px): no host→device copy per step
    views, holdout, val = ([{k: t.to(args.device) for k, t in d.items()} for d in views],
                           *({k: t.to(args.device) for k, t in d.items()} for d in (holdout, val)))

    frames = views[0]["rgb"].shape[2]
    kind = {"rgb": args.rgb_model, "flow": args.teacher_model, "audio": args.teacher_model}
    epochs = {"rgb": args.rgb_epochs, "flow": args.teacher_epochs, "audio": args.teacher_epochs}
    lrs = {"rgb": args.lr, "flow": args.teacher_lr or args.lr, "audio": args.teacher_lr or args.lr}
    heads = dict(dm.heads)
    rows: list[dict] = []

    def record(name: str, module: L.LightningModule, fitted_on: str | None = None) -> None:
        rows.append({"model": name, **scores(evaluate(module, dm, val, args.device))})
        print(f"  {name}: action {rows[-1]['action']:.1f} ECE {rows[-1]['action ECE']:.1f} "
              f"({time.time() - t0:.0f} s)", flush=True)
        if fitted_on is not None:  # how far it fits its (noisy) training labels: the first view, as trained on
            rows[-1]["train action"] = scores(evaluate(module, dm, views[0], args.device))["action"]
        if args.json_out:
            with open(args.json_out, "a") as f:
                f.write(json.dumps({**rows[-1], "args": vars(args), "seconds": round(time.time() - t0)}) + "\n")

    def fit(module: L.LightningModule, epochs: int, seed: int, teacher=None) -> L.LightningModule:
        dm_views = ViewsDataModule(dm, DecodedViews(views, teacher), DecodedViews([val]), batch_size=args.batch_size,
                                   seed=seed)
        trainer(epochs, args.device, precision=args.precision).fit(module, datamodule=dm_views)
        return module.eval()

    members = {}
    for m in MODALITIES:
        torch.manual_seed(args.seed)
        module = ModalityClassifierModule(kind[m], heads, modality=m, model_kwargs=model_kwargs(kind[m], frames),
                                          lr=lrs[m], weight_decay=0.0, warmup_epochs=0.5)
        members[m] = fit(module, epochs[m], args.seed)
        record(f"{m} ({kind[m]}, {epochs[m]} ep)", members[m], fitted_on=m)
    teachers = [Teacher(members[m], m, m) for m in MODALITIES]
    held_out = DataLoader(DecodedViews([holdout]), batch_size=64)
    errors = teacher_errors(teachers, held_out, list(HEADS))  # held-out CE per member and head (the card's e_m)
    for gamma in args.gammas:
        ensemble = EnsembleModule(teachers, {h: calibration_weights(e, gamma) for h, e in errors.items()})
        record(f"ensemble γ={gamma:g}", ensemble)
        teacher = [ensemble_logits(ensemble, v, args.device) for v in views]
        for lam in args.students:
            torch.manual_seed(args.seed + 1)
            student = DistillModule(kind["rgb"], heads, lam=lam, student_kwargs=model_kwargs(kind["rgb"], frames),
                                    lr=args.lr, weight_decay=0.0, warmup_epochs=0.5)
            record(f"  student λ={lam:g} from γ={gamma:g}", fit(student, args.rgb_epochs, args.seed + 1, teacher),
                   fitted_on="rgb")
    cols = ["verb", "verb ECE", "noun", "noun ECE", "action", "action ECE", "train action"]
    print(f"{'model':<34}" + "".join(f"{c:>13}" for c in cols))
    for r in rows:
        print(f"{r['model']:<34}" + "".join(f"{r[c]:>13.1f}" if c in r else f"{'':>13}" for c in cols))
    print(f"({time.time() - t0:.0f} s, seed {args.seed}, device {args.device})")
    return rows


if __name__ == "__main__":
    main()
