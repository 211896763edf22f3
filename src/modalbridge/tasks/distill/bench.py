"""Distillation benchmark (issue: transference).

1. inference — the RGB student alone vs the RGB&OF&A teacher ensemble it replaces, batch 1, one clip:
   the ensemble runs three video models (RGB, flow, audio spectrograms) AND extracts optical flow from the
   clip's frames (OpenCV DIS here; RAFT in the thesis). Reported: ms/clip of both, the time ratio
   student/ensemble, the FLOP ratio (``FlopCounterMode``; OpenCV flow has no FLOP count, so the FLOP ratio
   covers the networks only) and how far the time ratio is from the FLOP ratio (thesis: 140.33 vs 584.36
   GFLOPs → 0.24 with RAFT counted; three Swin-T alone → 0.33).
2. training — one distillation step (student forward + backward + AdamW) with teachers run live on the
   batch vs teacher logits read from a precomputed cache (``modalbridge distill-cache``): the ratio says
   what caching buys a user with 90k clips.

Both comparisons are measured side by side in one run, alternating the two paths.
Run: ``python -m modalbridge.tasks.distill.bench [--quick]`` or ``modalbridge bench distill``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from modalbridge.core.classifier import ModalityClassifierModule
from modalbridge.io.flow import compute_flow
from modalbridge.tasks.distill.compute import model_cost, time_ms
from modalbridge.tasks.distill.module import DistillModule, Teacher

HEADS = {"verb": 97, "noun": 300}
MODALITIES = ("rgb", "flow", "audio")


def _moving_frames(t: int, h: int, w: int) -> np.ndarray:
    """uint8 ``(t, h, w, 3)``: a smooth random texture translating 2 px per frame (flow has work to do)."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (h // 8 + 1, (w + 2 * t) // 8 + 2, 3), dtype=np.uint8)
    big = np.kron(base, np.ones((8, 8, 1), np.uint8))[:h]
    return np.stack([big[:, 2 * i:2 * i + w] for i in range(t)])


def _teachers(backbone: str, kwargs: dict) -> list[Teacher]:
    out = []
    for m in MODALITIES:
        torch.manual_seed(len(out))
        module = ModalityClassifierModule(backbone, HEADS, modality=m, model_kwargs=kwargs)
        out.append(Teacher(module, m, m))
    return out


def inference(backbone: str, frames: int, size: int, flow_hw: tuple[int, int], repeats: int, kwargs: dict) -> dict:
    teachers = _teachers(backbone, kwargs)
    torch.manual_seed(9)
    student = ModalityClassifierModule(backbone, HEADS, model_kwargs=kwargs).model.eval()
    x = torch.randn(1, 3, frames, size, size)
    raw = torch.from_numpy(_moving_frames(frames + 1, *flow_hw))
    s = model_cost(student, x, repeats)
    t_costs = [model_cost(t.module.model, x, repeats) for t in teachers]
    flow_ms = time_ms(lambda: compute_flow(raw), repeats)
    ens_ms = sum(c["ms"] for c in t_costs) + flow_ms
    ens_gflops = sum(c["gflops"] for c in t_costs)
    time_ratio, flop_ratio = s["ms"] / ens_ms, s["gflops"] / ens_gflops
    result = {"backbone": backbone, "clip": f"{frames}x{size}^2", "student_ms": s["ms"], "ensemble_ms": ens_ms,
              "flow_ms": flow_ms, "student_gflops": s["gflops"], "ensemble_gflops_networks": ens_gflops,
              "time_ratio": time_ratio, "flop_ratio": flop_ratio,
              "time_vs_flop_ratio_pct": 100 * (time_ratio / flop_ratio - 1)}
    print(f"inference {backbone} {frames}x{size}^2: student {s['ms']:.1f} ms vs ensemble {ens_ms:.1f} ms "
          f"(incl. flow {flow_ms:.1f} ms at {flow_hw[0]}x{flow_hw[1]}) -> time ratio {time_ratio:.3f}; "
          f"FLOP ratio {flop_ratio:.3f} ({s['gflops']:.2f} / {ens_gflops:.2f} GFLOPs); "
          f"time ratio is {result['time_vs_flop_ratio_pct']:+.0f}% off the FLOP ratio (target within 20%)")
    return result


def _step_time(module: DistillModule, batches: list[dict], repeats: int) -> float:
    opt = torch.optim.AdamW(module.model.parameters(), lr=1e-4)
    module.model.train()

    def step(batch):
        loss = module.training_step(batch, 0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step(batches[0])  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for b in batches:
            step(b)
        times.append((time.perf_counter() - t0) / len(batches))
    return min(times)


def training(backbone: str, frames: int, size: int, batch: int, steps: int, repeats: int, kwargs: dict) -> dict:
    teachers = _teachers(backbone, kwargs)
    n = batch * steps
    g = torch.Generator().manual_seed(0)
    data = {m: torch.randn(n, 3, frames, size, size, generator=g) for m in MODALITIES}
    labels = {h: torch.randint(0, c, (n,), generator=g) for h, c in HEADS.items()}
    batches = [{**{m: data[m][i:i + batch] for m in MODALITIES}, **{h: y[i:i + batch] for h, y in labels.items()},
                "index": torch.arange(i, i + batch), "clip_id": [f"clip{k}" for k in range(i, i + batch)]}
               for i in range(0, n, batch)]
    weights = {h: torch.full((3,), 1 / 3) for h in HEADS}
    with torch.no_grad():
        cache = {h: torch.cat([sum(w * t(b)[h] for w, t in zip(weights[h], teachers)) for b in batches])
                 for h in HEADS}
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "logits.safetensors")
        save_file(cache, path, metadata={"clip_ids": json.dumps([f"clip{k}" for k in range(n)])})
        modules = {}
        for kind in ("live", "cached"):
            torch.manual_seed(0)
            m = DistillModule(backbone, HEADS, lam=0.8, teacher_cache=path if kind == "cached" else None,
                              student_kwargs=kwargs)
            if kind == "live":
                m._teachers = teachers  # in-memory teachers (checkpoint loading is not what is timed)
                m.set_ensemble_weights(weights)
            m.log = lambda *a, **k: None  # no Trainer attached
            modules[kind] = m
        times = {"live": [], "cached": []}
        for rep in range(2):  # alternate the order: noise hits both alike
            for kind in (("live", "cached") if rep == 0 else ("cached", "live")):
                times[kind].append(_step_time(modules[kind], batches, repeats))
    live, cached = min(times["live"]), min(times["cached"])
    result = {"backbone": backbone, "batch": batch, "live_ms_per_step": 1e3 * live,
              "cached_ms_per_step": 1e3 * cached, "speedup_cached_vs_live": live / cached}
    print(f"distillation step {backbone} batch {batch}: live teachers {1e3 * live:.0f} ms vs cached logits "
          f"{1e3 * cached:.0f} ms -> cached is {live / cached:.2f}x faster")
    return result


def run(quick: bool = False) -> dict:
    torch.set_num_threads(2)
    if quick:
        inf = inference("r3d_tiny", 8, 64, (64, 64), 3, {})
        trn = training("r3d_tiny", 8, 64, 4, 3, 2, {})
    else:  # the paper's inference setting (Swin-T, 32 x 224^2, flow at RAFT's 256 x 456); training at CPU size
        inf = inference("swin3d_t", 32, 224, (256, 456), 2, {})
        trn = training("swin3d_tiny", 16, 112, 4, 4, 2, {})
    return {"inference": inf, "training": trn}


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    run(ap.parse_args().quick)
