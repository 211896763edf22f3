"""Precision benchmark (issue: bf16 mixed precision): fp32 vs bf16 autocast, measured side by side in one run,
for a layout transformer, a fusion model and two video backbones at paper sizes.

Per model: the training step (forward — under ``torch.autocast(cpu, bfloat16)`` for bf16, as Lightning's
``bf16-mixed`` runs it — then the loss in fp32, backward, gradient clipping at norm 5, the engine's AdamW;
parameters, gradients and optimiser state stay fp32) and inference (eval mode, ``no_grad``). fp32 and bf16
repetitions are interleaved (A B, B A, … :func:`modalbridge.core.benchmark.interleaved_ms`), warm-up excluded,
median ms; ratio = fp32 ms / bf16 ms. To explain a ratio, each row also has the forward + backward ratio alone
(each step minus its own clip-norm + AdamW part, which is fp32 work of the same size in both precisions), that
part's ms, and the AdamW step alone, fused (the engine's) against PyTorch's default for-loop implementation.
Beside the bf16 step's clips/s: the clips/s of the
model's real data pipeline (decode + transform + collate of its data module on the embedded world, 2 loader
workers as on a 2-core machine, measured alone), so a user sees whether decoding becomes the bottleneck once
the step is faster. The world's videos are 128x96: real 456x256 EPIC clips decode several times slower
(``modalbridge bench clip_pipeline``).

=========  ==========================================================  =====  ======================================
model      paper size                                                  batch  data pipeline (world)
=========  ==========================================================  =====  ======================================
STLT       H=768, 4+8 layers; 16 layout frames + extract frame x 8     8      layouts, ``world://kitchen-layouts``
           slots
CACNF      STLT + R3D-50 (Hara, BN frozen) -> 4-layer transformer,     2      layouts + RGB 32x112² stride 2
           4 fusion layers; RGB 32x112²
R3D-50     the layouts task's appearance model (Hara R3D-50, BN        2      RGB 32x112² stride 2
           frozen) on 32x112²
Swin-T     Video Swin-T (actions task), EK-100 verb+noun heads,        1      EK-100 32x224² stride 2,
           32x224²                                                            ``world://kitchen/ek100``
=========  ==========================================================  =====  ======================================

``quick=True``: tiny presets at small clip sizes, one thread, one timed round, data without loader workers
(seconds in all; the ratios mean nothing there). Target (issue): bf16 train step >= 1.8x faster than fp32 on
a CPU with AMX/AVX512-bf16. Where the CPU has no native bf16, bf16 is emulated and slower.

Run: ``modalbridge bench precision [--quick]`` or ``python -m modalbridge.tasks.layouts.bench_precision``.
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from modalbridge.core.benchmark import interleaved_ms, loader_clips_per_s
from modalbridge.core.engine import param_groups
from modalbridge.core.precision import autocast, cpu_computes_bf16
from modalbridge.core.registry import create_model, model_entry
from modalbridge.tasks.layouts.bench import HEADS
from modalbridge.tasks.layouts.models import example_batch

EK_HEADS = {"verb": 97, "noun": 300}
PRECISIONS = ("32-true", "bf16-mixed")
TARGET = 1.8  # issue: bf16 train step at least this much faster than fp32
CLIP_NORM, WEIGHT_DECAY = 5.0, 1e-3
LAYOUT_FRAMES, SLOTS = 17, 8  # 16 sampled layout frames + the extract frame; 8 box slots per frame
WARMUP = 1  # untimed steps of each precision


@dataclass(frozen=True)
class Case:
    """One row of the table: registry name + builder options, batch, RGB clip (frames, size; None: layout
    only), heads, timed rounds, and the data module (class name in :mod:`modalbridge.datasets.datamodules`,
    options) that feeds the model."""

    label: str
    model: str
    options: dict
    batch_size: int
    clip: tuple[int, int] | None
    heads: dict
    repeats: int
    data: tuple[str, dict]


def cases(quick: bool) -> list[Case]:
    """The four rows at paper sizes, or at tiny sizes (``quick``)."""
    world = {"root": "world://kitchen-layouts/ssv2", "layout_frames": LAYOUT_FRAMES - 1}
    ek = {"root": "world://kitchen/ek100"}
    if quick:
        model = {"preset": "tiny", "appearance_frames": 8, "appearance_size": 32}
        clip, rgb = (8, 32), {"appearance_frames": 8, "appearance_stride": 2, "size": 32}
        sizes = {"stlt": 2, "video": 1, "swin": ("swin3d_tiny", 1, (8, 32), {"num_frames": 8, "stride": 4, "size": 32})}
        repeats = (1, 1)
    else:
        model = {"preset": "paper", "appearance_frames": 32, "appearance_size": 112}
        clip, rgb = (32, 112), {"appearance_frames": 32, "appearance_stride": 2, "size": 112}
        sizes = {"stlt": 8, "video": 2, "swin": ("swin3d_t", 1, (32, 224), {"num_frames": 32, "stride": 2, "size": 224})}
        repeats = (7, 5)
    layouts = "SomethingLayoutDataModule"
    swin, swin_batch, swin_clip, swin_data = sizes["swin"]
    return [
        Case("STLT", "stlt", model, sizes["stlt"], None, HEADS, repeats[0],
             (layouts, {**world, "modalities": ("layout",)})),
        Case("CACNF", "cacnf", model, sizes["video"], clip, HEADS, repeats[1],
             (layouts, {**world, **rgb, "modalities": ("layout", "rgb")})),
        Case("R3D-50", "r3d", model, sizes["video"], clip, HEADS, repeats[1],
             (layouts, {**world, **rgb, "modalities": ("rgb",)})),
        Case("Swin-T", swin, {}, swin_batch, swin_clip, EK_HEADS, repeats[1], ("EpicKitchensDataModule", {**ek, **swin_data})),
    ]


def _inputs(case: Case) -> tuple[Any, dict[str, torch.Tensor]]:
    """The model's input (a layout batch dict, or a clip tensor for ``video`` models) and the labels."""
    g = torch.Generator().manual_seed(0)
    labels = {h: torch.randint(0, c, (case.batch_size,), generator=g) for h, c in case.heads.items()}
    if model_entry(case.model).inputs == "video":
        return torch.randn(case.batch_size, 3, case.clip[0], case.clip[1], case.clip[1], generator=g), labels
    frames, size = case.clip or (1, 8)  # layout-only models never read the clip: keep it small
    batch = example_batch(case.batch_size, frames=LAYOUT_FRAMES, slots=SLOTS,
                          lengths=[LAYOUT_FRAMES] * case.batch_size, rgb_frames=frames, size=size)
    return {**batch, **labels}, labels


def _describe_input(case: Case) -> str:
    parts = [f"{LAYOUT_FRAMES}x{SLOTS} boxes"] if "layout" in model_entry(case.model).inputs else []
    if case.clip is not None:
        parts.append(f"{case.clip[0]}x{case.clip[1]}²")
    return " + ".join(parts)


def _head_of(key: str, heads: Mapping[str, int]) -> str:
    return next(h for h in heads if key == h or key.startswith(h + "_"))


def _loss(out: Mapping[str, torch.Tensor], labels: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """fp32 cross-entropy summed over the trained outputs: the branch heads of a fusion model
    (``action_layout`` …, the thesis loss of CACNF; its ``action`` is their mean), else every head."""
    keys = [k for k in out if k not in labels] or list(out)
    return sum(F.cross_entropy(out[k].float(), labels[_head_of(k, labels)]) for k in keys)


class _Steps:
    """Train step and inference of one model in each precision. One AdamW (the engine's parameter groups,
    fused, as :class:`~modalbridge.core.engine.TaskModule` builds it on a CPU) serves both
    precisions: its step is the same fp32 work in both. ``optimizer_ms[precision]`` collects the
    clip-norm + AdamW part of every train step."""

    def __init__(self, model: torch.nn.Module, inputs: Any, labels: dict):
        self.model, self.inputs, self.labels = model, inputs, labels
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.opt = torch.optim.AdamW(param_groups(model, WEIGHT_DECAY), lr=1e-6, fused=True)
        self.optimizer_ms: dict[str, list[float]] = {p: [] for p in PRECISIONS}

    def train(self, precision: str) -> Callable[[], None]:
        def step():
            with autocast(precision, "cpu"):
                out = self.model(self.inputs)
            loss = _loss(out, self.labels)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            t0 = time.perf_counter()
            torch.nn.utils.clip_grad_norm_(self.params, CLIP_NORM)
            self.opt.step()
            self.optimizer_ms[precision].append(1e3 * (time.perf_counter() - t0))
        return step

    def infer(self, precision: str) -> Callable[[], None]:
        def step():
            with torch.no_grad(), autocast(precision, "cpu"):
                self.model(self.inputs)
        return step

    def adamw_ms(self, repeats: int) -> dict[str, float]:
        """``{"fused", "for-loop"}``: ms of one AdamW step alone on the current gradients, the engine's fused
        implementation vs PyTorch's default for-loop one (another optimiser state, freed after)."""
        for_loop = torch.optim.AdamW(param_groups(self.model, WEIGHT_DECAY), lr=1e-6)
        times = interleaved_ms({"fused": self.opt.step, "for-loop": for_loop.step}, repeats)
        del for_loop
        return {k: v["median_ms"] for k, v in times.items()}


def data_clips_per_s(case: Case, batches: int, workers: int = 2) -> float:
    """Clips/s of the case's data module (training transforms) on the world, first batch excluded."""
    from modalbridge.datasets import datamodules

    cls_name, options = case.data
    dm = getattr(datamodules, cls_name)(batch_size=case.batch_size, num_workers=workers, seed=0, **options)
    dm.setup("fit")
    return loader_clips_per_s(dm.train_dataloader(), batches)


def measure(case: Case, data_batches: int = 0, workers: int = 2) -> dict:
    """One row: train and inference ms in both precisions (interleaved medians), ratios, the clip-norm +
    AdamW share of the train step, the bf16 step's clips/s and (``data_batches > 0``) the data pipeline's."""
    torch.manual_seed(0)
    model = create_model(case.model, heads=dict(case.heads), **case.options)
    inputs, labels = _inputs(case)
    steps = _Steps(model, inputs, labels)
    model.train()
    train = interleaved_ms({p: steps.train(p) for p in PRECISIONS}, case.repeats, WARMUP)
    adamw = steps.adamw_ms(min(3, case.repeats))
    model.eval()
    infer = interleaved_ms({p: steps.infer(p) for p in PRECISIONS}, case.repeats, WARMUP)
    row: dict[str, Any] = {"model": case.model, "batch": case.batch_size, "input": _describe_input(case),
                           "params_m": sum(p.numel() for p in model.parameters()) / 1e6, "repeats": case.repeats}
    for kind, times in (("train", train), ("infer", infer)):
        for p, name in zip(PRECISIONS, ("fp32", "bf16")):
            row[f"{kind}_{name}_ms"] = times[p]["median_ms"]
            row[f"{kind}_{name}_samples_ms"] = times[p]["samples_ms"]
        row[f"{kind}_ratio"] = row[f"{kind}_fp32_ms"] / row[f"{kind}_bf16_ms"]
    # forward + backward alone: each train step minus its own clip-norm + AdamW part
    compute = {p: statistics.median(t - o for t, o in zip(train[p]["samples_ms"], steps.optimizer_ms[p][WARMUP:]))
               for p in PRECISIONS}
    row["optimizer_ms"] = statistics.median(steps.optimizer_ms["32-true"][WARMUP:] + steps.optimizer_ms["bf16-mixed"][WARMUP:])
    row["fwd_bwd_ratio"] = compute["32-true"] / compute["bf16-mixed"]
    row["adamw_ms"], row["adamw_for_loop_ms"] = adamw["fused"], adamw["for-loop"]
    row["train_bf16_clips_per_s"] = 1e3 * case.batch_size / row["train_bf16_ms"]
    del model, inputs, steps
    gc.collect()
    if data_batches:
        row["data_workers"] = workers
        row["data_clips_per_s"] = data_clips_per_s(case, data_batches, workers)
        row["data_bound"] = row["data_clips_per_s"] < row["train_bf16_clips_per_s"]
    return row


def _print_table(rows: dict[str, dict]) -> None:
    print(f"{'model':7s} {'batch':>5s}  {'input':24s} {'train fp32':>10s} {'bf16':>7s} {'ratio':>6s}  "
          f"{'fwd+bwd':>7s} {'AdamW+clip':>10s}  {'infer fp32':>10s} {'bf16':>7s} {'ratio':>6s}  "
          f"{'bf16 train':>10s} {'data':>8s}")
    print(f"{'':7s} {'':5s}  {'':24s} {'ms':>10s} {'ms':>7s} {'':6s}  {'ratio':>7s} {'ms':>10s}  "
          f"{'ms':>10s} {'ms':>7s} {'':6s}  {'clips/s':>10s} {'clips/s':>8s}")
    for label, r in rows.items():
        data = f"{r['data_clips_per_s']:8.1f}" if "data_clips_per_s" in r else f"{'-':>8s}"
        print(f"{label:7s} {r['batch']:5d}  {r['input']:24s} {r['train_fp32_ms']:10.0f} {r['train_bf16_ms']:7.0f} "
              f"{r['train_ratio']:5.2f}x  {r['fwd_bwd_ratio']:6.2f}x {r['optimizer_ms']:10.0f}  "
              f"{r['infer_fp32_ms']:10.0f} {r['infer_bf16_ms']:7.0f} {r['infer_ratio']:5.2f}x  "
              f"{r['train_bf16_clips_per_s']:10.2f} {data}" + ("  <- data-bound" if r.get("data_bound") else ""))


def run(quick: bool = False, data: bool = True) -> dict:
    """Measure every :func:`cases` row (``data=False``: without the data pipelines); print the table and
    return ``{"models": {label: row}, ...}`` (JSON-serialisable). Paper sizes run on 2 threads (the 2-core
    machine's), ``quick`` on 1: its tiny ops are overhead, and on a shared machine two threads mostly wait for
    each other. The caller's thread count is restored."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1 if quick else 2)
    try:
        return _run(quick, data)
    finally:
        torch.set_num_threads(threads)


def _run(quick: bool, data: bool) -> dict:
    native = cpu_computes_bf16()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {platform.machine()} CPU "
          f"{'computes bf16 natively (AVX512-bf16/AMX)' if native else 'has NO native bf16: bf16 is emulated'}"
          + (" [quick: tiny models, not the target's setting]" if quick else ""), flush=True)
    workers = 0 if quick else 2
    rows = {}
    for case in cases(quick):
        rows[case.label] = r = measure(case, data_batches=(2 if quick else 8) if data else 0, workers=workers)
        print(f"  {case.label} ({r['model']}, batch {r['batch']}, {r['input']}): train {r['train_ratio']:.2f}x, "
              f"inference {r['infer_ratio']:.2f}x", flush=True)
    _print_table(rows)
    short = [label for label, r in rows.items() if not r["train_ratio"] >= TARGET]
    print("fwd+bwd ratio: the train step without its clip-norm + AdamW part (fp32 in both precisions); data: "
          f"the model's data module on the world alone, {workers} loader workers")
    for label, r in rows.items():
        print(f"  {label}: AdamW step {r['adamw_ms']:.0f} ms fused (the engine's) vs {r['adamw_for_loop_ms']:.0f} ms "
              f"for-loop (PyTorch's default)")
    print(f"bf16 train step >= {TARGET}x fp32 (target): "
          + ("all models" if not short else f"NOT met by {', '.join(short)}"))
    return {"quick": quick, "torch": torch.__version__, "threads": torch.get_num_threads(), "cpu_bf16": native,
            "target_train_ratio": TARGET, "below_target": short, "models": rows}


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-data", action="store_true", help="skip the data-pipeline clips/s")
    args = ap.parse_args()
    run(args.quick, data=not args.no_data)
