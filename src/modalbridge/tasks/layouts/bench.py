"""Layouts benchmark (issue: fusion): clips/s of STLT, CACNF and LCF vs the appearance model R3D, for a
training step (forward + backward + AdamW) and for inference, measured side by side in one run.

1. models — fixed synthetic inputs (16 layout frames + the extract frame x 8 slots; 32 x 112² RGB for the
   appearance branch), paper sizes (STLT H=768 4+8 layers, R3D-50 in the Hara layout) or the tiny preset with
   ``--quick``; batch 4 (paper) / 8 (quick); params and GFLOPs per clip (``FlopCounterMode``).
2. end to end on the world — the same loop fed by the real data modules (``world://kitchen-layouts``):
   layout-only STLT reads box JSON and never decodes video, the R3D pipeline decodes and augments webm
   clips. Target (issue): STLT training >= 4x the clips/s of R3D training.

Run: ``python -m modalbridge.tasks.layouts.bench [--quick]`` or ``modalbridge bench layouts``.
"""

from __future__ import annotations

import argparse
import itertools
import time

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from modalbridge.core.registry import create_model
from modalbridge.tasks.layouts.models import example_batch

HEADS = {"action": 174}


def _step_fn(model, batch, train: bool):
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)

    def step():
        if train:
            out = model(batch)
            loss = sum(F.cross_entropy(v, batch["action"]) for k, v in out.items() if k != "action" or len(out) == 1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        else:
            with torch.no_grad():
                model(batch)
    return step


def _clips_per_s(step, batch_size: int, repeats: int) -> float:
    step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(repeats):
        step()
    return batch_size * repeats / (time.perf_counter() - t0)


def models(quick: bool) -> dict:
    preset, bs, repeats = ("tiny", 8, 3) if quick else ("paper", 4, 2)
    frames, size = (8, 32) if quick else (32, 112)
    batch = example_batch(bs, frames=17, slots=8, lengths=[17] * bs, rgb_frames=frames, size=size)
    batch["action"] = torch.randint(0, 174, (bs,))
    result = {}
    for name in ("stlt", "r3d", "lcf", "cacnf"):
        torch.manual_seed(0)
        model = create_model(name, heads=HEADS, preset=preset, appearance_frames=frames, appearance_size=size)
        # train mode: the eval-mode transformer fast path is a fused kernel the FLOP counter cannot see
        with FlopCounterMode(display=False) as fc, torch.no_grad():
            model.train()(batch)
        infer, train = _step_fn(model, batch, False), _step_fn(model, batch, True)
        speeds = {"infer": [], "train": []}
        for _ in range(2):  # two rounds, best of each: noise on a shared machine only slows things down
            model.eval()
            speeds["infer"].append(_clips_per_s(infer, bs, repeats))
            model.train()
            speeds["train"].append(_clips_per_s(train, bs, repeats))
        row = {"params_m": sum(p.numel() for p in model.parameters()) / 1e6,
               "gflops_per_clip": fc.get_total_flops() / 1e9 / bs,
               "infer_clips_per_s": max(speeds["infer"]), "train_clips_per_s": max(speeds["train"])}
        result[name] = row
        print(f"{name:6s} {row['params_m']:7.2f} M  {row['gflops_per_clip']:7.2f} GFLOPs/clip  "
              f"train {row['train_clips_per_s']:7.2f} clips/s  infer {row['infer_clips_per_s']:7.2f} clips/s")
    for name in ("stlt", "lcf", "cacnf"):
        for kind in ("train", "infer"):
            result[f"{name}_vs_r3d_{kind}"] = result[name][f"{kind}_clips_per_s"] / result["r3d"][f"{kind}_clips_per_s"]
    print(f"STLT vs R3D training clips/s: {result['stlt_vs_r3d_train']:.1f}x (target >= 4x); "
          f"CACNF vs R3D: {result['cacnf_vs_r3d_train']:.2f}x")
    return result


def end_to_end(quick: bool) -> dict:
    from modalbridge.datasets.datamodules import SomethingLayoutDataModule

    steps = 4 if quick else 10
    common = {"root": "world://kitchen-layouts/ssv2", "batch_size": 16, "num_workers": 2, "seed": 0}
    runs = {"stlt": (("layout",), {}), "r3d": (("rgb",), {"appearance_frames": 16, "size": 64})}
    result = {}
    for name, (modalities, data_kwargs) in runs.items():
        dm = SomethingLayoutDataModule(modalities=modalities, **common, **data_kwargs)
        dm.setup("fit")
        torch.manual_seed(0)
        model = create_model(name, heads=dm.heads, preset="tiny", appearance_frames=16, appearance_size=64).train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        loader = dm.train_dataloader()
        it = iter(loader)
        next(it)  # workers started, first batch ready
        t0, clips = time.perf_counter(), 0
        for batch in itertools.islice(it, steps):
            loss = F.cross_entropy(model(batch)["action"], batch["action"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            clips += len(batch["index"])
        result[f"{name}_train_clips_per_s"] = clips / (time.perf_counter() - t0)
    result["stlt_vs_r3d_train"] = result["stlt_train_clips_per_s"] / result["r3d_train_clips_per_s"]
    print(f"world, data loading included (tiny models): STLT {result['stlt_train_clips_per_s']:.0f} clips/s vs "
          f"R3D {result['r3d_train_clips_per_s']:.0f} clips/s -> {result['stlt_vs_r3d_train']:.1f}x")
    return result


def run(quick: bool = False) -> dict:
    torch.set_num_threads(2)
    return {"models": models(quick), "world": end_to_end(quick)}


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    run(ap.parse_args().quick)
