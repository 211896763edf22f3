"""Study: when is the calibrated teacher ensemble better calibrated than the RGB model? (docs/distill.md)

The thesis (Table 7.1) finds the held-out-weighted RGB&OF&A ensemble far better calibrated than the RGB model
(ECE 2–10 vs 17–27). On the distillation world at demo budgets the order is reversed. This script measures why,
fast: it decodes a few augmented training views of the world once with the library's data module, then trains
the models in a plain loop over those tensors (same model builders, optimiser, schedule, losses and metrics as
the library; no decoding per epoch), and prints validation top-1 / ECE per head:

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
import math
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Subset

from modalbridge.core.data import collate_skipping
from modalbridge.core.engine import param_groups, warmup_linear_schedule
from modalbridge.core.registry import create_model
from modalbridge.datasets.datamodules import EpicKitchensDataModule
from modalbridge.metrics import score_classification
from modalbridge.nn.distillation import LogitEnsemble, calibration_weights, distillation_objective

MODALITIES = ("rgb", "flow", "audio")


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


def build(kind: str, heads: dict[str, int], frames: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    if kind == "pixel_mlp":
        return PixelMLP(heads, frames=frames)
    if kind == "pooled":  # the library's low-capacity teacher: linear heads on the clip pooled to (3, T, 4, 4)
        return create_model(kind, heads=heads, frames=frames)
    return create_model(kind, heads=heads)


def decode(dm: EpicKitchensDataModule, dataset, indices: list[int]) -> dict[str, torch.Tensor]:
    """Samples ``indices`` of ``dataset`` stacked per key (media as float16 to halve the memory)."""
    out: dict[str, list[torch.Tensor]] = {k: [] for k in (*MODALITIES, "verb", "noun")}
    loader = DataLoader(Subset(dataset, indices), batch_size=32, num_workers=dm.num_workers,
                        collate_fn=collate_skipping)
    for batch in loader:
        for k in out:
            out[k].append(batch[k].half() if k in MODALITIES else batch[k])
    return {k: torch.cat(v) for k, v in out.items()}


def fit(model: nn.Module, views: list[dict], modality: str, epochs: int, *, lr: float, batch_size: int,
        device: str, seed: int, teacher: list[dict] | None = None, lam: float = 0.0) -> nn.Module:
    """The library's recipe (AdamW, no decay on norms/biases, linear warm-up 0.5 epoch then linear decay, clip 5)
    on pre-decoded views; epoch e uses view e mod len(views). ``teacher``: ensemble logits per view (KD)."""
    model.to(device).train()
    n = len(views[0]["verb"])
    steps = math.ceil(n / batch_size)
    optimiser = torch.optim.AdamW(param_groups(model, 0.0), lr=lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, warmup_linear_schedule(steps * epochs, steps // 2))
    generator = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        view = views[epoch % len(views)]
        order = torch.randperm(n, generator=generator)
        for s in range(steps):
            idx = order[s * batch_size:(s + 1) * batch_size]
            out = model(view[modality][idx].to(device).float())
            targets = {h: view[h][idx].to(device) for h in ("verb", "noun")}
            target_logits = ({h: teacher[epoch % len(views)][h][idx].to(device) for h in targets}
                             if teacher is not None else None)
            loss, _ = distillation_objective(out, targets, target_logits, lam=lam, tau=1.0)
            optimiser.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimiser.step()
            schedule.step()
    return model.eval()


@torch.no_grad()
def logits(model: nn.Module, clips: torch.Tensor, device: str) -> dict[str, torch.Tensor]:
    outs = [model(clips[i:i + 64].to(device).float()) for i in range(0, len(clips), 64)]
    return {h: torch.cat([o[h] for o in outs]).cpu() for h in outs[0]}


def scores(z: dict[str, torch.Tensor], y: dict[str, torch.Tensor]) -> dict[str, float]:
    """Top-1 and ECE per head and for the action, by the library's scoring function."""
    m = score_classification(z, y, ks=(1,))
    return {"verb": m["verb_top1"], "verb ECE": m["verb_ece"], "noun": m["noun_top1"], "noun ECE": m["noun_ece"],
            "action": m["action_top1"], "action ECE": m["action_ece"]}


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
    args = p.parse_args(argv)
    if args.quick:
        args.views, args.rgb_epochs, args.teacher_epochs = 1, 1, 1
    t0 = time.time()
    dm = EpicKitchensDataModule(args.world, modalities=MODALITIES, num_frames=8, stride=4, size=args.size,
                                scale_range=(1.0, 1.15), flip=False, audio_size=64, batch_size=16,
                                num_workers=0 if args.quick else args.workers, seed=args.seed, holdout=60)
    dm.setup("fit")
    n = 16 if args.quick else len(dm.train_set)
    views = [decode(dm, dm.train_set, [e * len(dm.train_set) + i for i in range(n)]) for e in range(args.views)]
    holdout_set = dm.make_dataset("train", train=False, part="holdout")
    holdout = decode(dm, holdout_set, list(range(min(len(holdout_set), 16 if args.quick else 10**9))))
    val_set = dm.val_set
    val = decode(dm, val_set, list(range(min(len(val_set), 16 if args.quick else 10**9))))
    print(f"decoded {args.views} view(s) of {n} clips, {len(holdout['verb'])} held-out, {len(val['verb'])} "
          f"validation in {time.time() - t0:.0f} s", flush=True)
    # the decoded views live on the training device (a few hundred MB at 64 px): no host→device copy per step
    views, holdout, val = ([{k: t.to(args.device) for k, t in d.items()} for d in views],
                           *({k: t.to(args.device) for k, t in d.items()} for d in (holdout, val)))

    frames = views[0]["rgb"].shape[2]
    kind = {"rgb": args.rgb_model, "flow": args.teacher_model, "audio": args.teacher_model}
    epochs = {"rgb": args.rgb_epochs, "flow": args.teacher_epochs, "audio": args.teacher_epochs}
    lrs = {"rgb": args.lr, "flow": args.teacher_lr or args.lr, "audio": args.teacher_lr or args.lr}
    y = {h: val[h].cpu() for h in ("verb", "noun")}
    rows: list[dict] = []

    def record(name: str, z: dict[str, torch.Tensor], model: nn.Module | None = None, modality: str = "rgb") -> None:
        rows.append({"model": name, **scores(z, y)})
        print(f"  {name}: action {rows[-1]['action']:.1f} ECE {rows[-1]['action ECE']:.1f} "
              f"({time.time() - t0:.0f} s)", flush=True)
        if model is not None:  # how far it fits its (noisy) training labels: the first view, as trained on
            fitted = scores(logits(model, views[0][modality], args.device), {h: views[0][h].cpu() for h in y})
            rows[-1]["train action"] = fitted["action"]
        if args.json_out:
            with open(args.json_out, "a") as f:
                f.write(json.dumps({**rows[-1], "args": vars(args), "seconds": round(time.time() - t0)}) + "\n")

    models = {}
    for m in MODALITIES:
        models[m] = fit(build(kind[m], dm.heads, frames, args.seed), views, m, epochs[m], lr=lrs[m],
                        batch_size=args.batch_size, device=args.device, seed=args.seed)
        record(f"{m} ({kind[m]}, {epochs[m]} ep)", logits(models[m], val[m], args.device), models[m], m)
    held = {m: logits(models[m], holdout[m], args.device) for m in MODALITIES}
    for gamma in args.gammas:
        ensemble = LogitEnsemble(list(MODALITIES), {h: calibration_weights(
            torch.stack([F.cross_entropy(held[m][h], holdout[h].cpu()) for m in MODALITIES]), gamma)
            for h in ("verb", "noun")})
        record(f"ensemble γ={gamma:g}", ensemble([logits(models[m], val[m], args.device) for m in MODALITIES]))
        teacher = [ensemble([logits(models[m], v[m], args.device) for m in MODALITIES]) for v in views]
        for lam in args.students:
            student = fit(build(kind["rgb"], dm.heads, frames, args.seed + 1), views, "rgb", args.rgb_epochs,
                          lr=args.lr, batch_size=args.batch_size, device=args.device, seed=args.seed + 1,
                          teacher=teacher, lam=lam)
            record(f"  student λ={lam:g} from γ={gamma:g}", logits(student, val["rgb"], args.device), student)
    cols = ["verb", "verb ECE", "noun", "noun ECE", "action", "action ECE", "train action"]
    print(f"{'model':<34}" + "".join(f"{c:>13}" for c in cols))
    for r in rows:
        print(f"{r['model']:<34}" + "".join(f"{r[c]:>13.1f}" if c in r else f"{'':>13}" for c in cols))
    print(f"({time.time() - t0:.0f} s, seed {args.seed}, device {args.device})")
    return rows


if __name__ == "__main__":
    main()
