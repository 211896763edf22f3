"""Atlas benchmark (``modalbridge bench atlas``), every comparison measured side by side in one run
(:func:`~modalbridge.core.benchmark.interleaved_ms`; ratios are the claims, absolute times are this machine's):

1. **SOD loss** — forward + backward of the batched loss (:func:`~.losses.sod_loss`) vs a straightforward loop over
   samples and organs, at batch 128, 3 organs, N = 100 and 1000 points (target ≥ 10×); both give the same value.
2. **nearest organ** — exact distances of 10k points to their target organs in a full-size (330 × 573 × 774)
   synthetic atlas: build time (organ volume + boundary KD-trees), query time, peak memory of the process; and,
   on a 1M-voxel ellipsoid, boundary KD-tree vs brute force over every voxel (the reference's way).
3. **grounding** — documents/s of the SOD regressor on 2 cores (tiny random-init BERT and all-MiniLM-L6-v2) at
   L = 128/256/512, and one training step fp32 vs bf16 autocast.

``quick``: small sizes, a smoke run of the benchmark, not a measurement.
"""

from __future__ import annotations

import resource
import time

import numpy as np
import torch

from modalbridge.core.benchmark import interleaved_ms
from modalbridge.core.precision import autocast, cpu_computes_bf16
from modalbridge.core.registry import create_model
from modalbridge.nn.bert import TINY_BERT
from modalbridge.tasks.atlas import models as _models  # noqa: F401  (registers the atlas models)
from modalbridge.tasks.atlas.atlas import Atlas
from modalbridge.tasks.atlas.losses import sod_loss

#: the SIO atlas' shape (x, y, z), 1 mm voxels
FULL_SHAPE = (330, 573, 774)


def sod_loss_loop(pred: torch.Tensor, points: torch.Tensor, organ_mask: torch.Tensor, gamma_p: float = 0.1,
                  gamma_o: float = 1.0) -> torch.Tensor:
    """The SOD loss written plainly, one sample and one organ at a time (the benchmark's baseline)."""
    totals = []
    for b in range(pred.shape[0]):
        organ_losses = []
        for m in range(points.shape[1]):
            if not organ_mask[b, m]:
                continue
            d = torch.linalg.vector_norm(points[b, m] - pred[b], dim=-1)  # (N,)
            organ_losses.append((d * torch.softmax(-d / gamma_p, 0)).sum())
        losses = torch.stack(organ_losses)
        totals.append((losses * torch.softmax(-losses / gamma_o, 0)).sum())
    return torch.stack(totals).mean()


def sod(batch: int = 128, organs: int = 3, points: tuple[int, ...] = (100, 1000), repeats: int = 5) -> dict:
    out = {}
    g = torch.Generator().manual_seed(0)
    for n in points:
        pred0 = torch.rand(batch, 3, generator=g) * 2 - 1
        pts = torch.rand(batch, organs, n, 3, generator=g) * 2 - 1
        mask = torch.rand(batch, organs, generator=g) < 0.7
        mask[:, 0] = True  # every sample has at least one organ

        def step(fn, pred0=pred0, pts=pts, mask=mask):
            def run():
                pred = pred0.clone().requires_grad_(True)
                fn(pred, pts, mask).backward()
                return pred.grad
            return run

        ms = interleaved_ms({"batched": step(sod_loss), "loop": step(sod_loss_loop)}, repeats)
        same = torch.allclose(sod_loss(pred0, pts, mask), sod_loss_loop(pred0, pts, mask), atol=1e-6)
        out[f"N={n}"] = {"batched_ms": ms["batched"]["median_ms"], "loop_ms": ms["loop"]["median_ms"],
                         "speedup": ms["loop"]["median_ms"] / ms["batched"]["median_ms"], "same_value": bool(same)}
    return out


def synthetic_atlas(shape: tuple[int, int, int], organs: int = 25, seed: int = 0) -> Atlas:
    """``organs`` random ellipsoids (radii 10–60 mm at full size, scaled with the shape; later ones drawn over
    earlier ones) in a uint8 volume."""
    rng = np.random.default_rng(seed)
    scale = min(shape) / FULL_SHAPE[0]
    labels = np.zeros(shape, dtype=np.uint8)
    names, organ_labels = [], {}
    for k in range(organs):
        radii = rng.uniform(10, 60, 3) * scale
        c = rng.uniform(radii, np.asarray(shape) - radii)
        lo = np.maximum(np.floor(c - radii).astype(int), 0)
        hi = np.minimum(np.ceil(c + radii).astype(int) + 1, shape)
        axes = np.ogrid[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
        inside = sum(((a - ci) / r) ** 2 for a, ci, r in zip(axes, c, radii)) <= 1.0
        labels[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]][inside] = k + 1
        names.append(f"organ {k}")
        organ_labels[f"organ {k}"] = [k + 1]
    present = [n for n in names if (labels == organ_labels[n][0]).any()]
    return Atlas(labels, present, {n: organ_labels[n] for n in present}, {n: [n] for n in present})


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def nearest(shape: tuple[int, int, int] = FULL_SHAPE, queries: int = 10_000, brute_queries: int = 200,
            ellipsoid_radius: float = 62.0) -> dict:
    rss0 = _peak_rss_mb()
    t0 = time.perf_counter()
    atlas = synthetic_atlas(shape)
    made = time.perf_counter() - t0
    rng = np.random.default_rng(1)
    points = (rng.uniform(0, 1, (queries, 3)) * np.asarray(shape) - atlas.center).astype(np.float64)
    targets = rng.integers(0, atlas.num_organs, (queries, 2))
    t0 = time.perf_counter()
    atlas.organ_volume()
    atlas.distance(points[:1], np.arange(atlas.num_organs)[None])  # builds every organ's boundary tree
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    dist = atlas.distance(points, targets)
    query = time.perf_counter() - t0
    out = {"shape": list(shape), "organs": atlas.num_organs, "volume_s": made, "build_s": build, "query_s": query,
           "queries_per_s": queries / query, "peak_rss_mb": _peak_rss_mb(), "rss_before_mb": rss0,
           "finite": bool(np.isfinite(dist).all())}
    del atlas
    # KD-tree over boundary voxels vs brute force over all voxels, one ≈1M-voxel ellipsoid
    side = int(2 * ellipsoid_radius + 8)
    grid = np.ogrid[:side, :side, :side]
    ball = (sum((a - side / 2) ** 2 for a in grid) <= ellipsoid_radius ** 2).astype(np.uint8)
    one = Atlas(ball, ["ball"], {"ball": [1]}, {"ball": ["ball"]})
    voxels = one.points_mm(0).astype(np.float64)  # (K, 3)
    far = rng.normal(0, side, (brute_queries, 3))
    far = far[np.linalg.norm(far, axis=1) > ellipsoid_radius + 2]
    zeros = np.zeros((len(far), 1), dtype=np.int64)

    def brute():
        return np.array([np.sqrt(((voxels - p) ** 2).sum(1)).min() for p in far])

    one.distance(far[:1], zeros[:1])
    ms = interleaved_ms({"kdtree": lambda: one.distance(far, zeros), "brute": brute}, repeats=3)
    out["ellipsoid"] = {"voxels": int(len(voxels)), "queries": int(len(far)),
                        "kdtree_queries_per_s": len(far) / ms["kdtree"]["median_ms"] * 1e3,
                        "brute_queries_per_s": len(far) / ms["brute"]["median_ms"] * 1e3,
                        "speedup": ms["brute"]["median_ms"] / ms["kdtree"]["median_ms"],
                        "same": bool(np.allclose(one.distance(far, zeros), brute(), atol=1e-4))}
    return out


def grounding(lengths: tuple[int, ...], encoders: dict[str, dict], batch: int = 16, repeats: int = 3) -> dict:
    out: dict = {}
    for name, kwargs in encoders.items():
        torch.manual_seed(0)
        model = create_model("sod_regressor", **kwargs).eval()
        for length in lengths:
            ids = torch.randint(1000, 30000, (batch, length))
            ids[:, 0], ids[:, -1] = 101, 102
            mask = torch.ones_like(ids, dtype=torch.bool)

            def infer(ids=ids, mask=mask, model=model):
                with torch.inference_mode(), autocast("auto", "cpu"):
                    return model(ids, mask)["point"]

            ms = interleaved_ms({"ground": infer}, repeats)
            out[f"{name} L={length}"] = batch / ms["ground"]["median_ms"] * 1e3
    return out


def training(kwargs: dict, batch: int = 32, length: int = 128, repeats: int = 3) -> dict:
    torch.manual_seed(0)
    model = create_model("sod_regressor", **kwargs).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.01)
    ids = torch.randint(1000, 30000, (batch, length))
    mask = torch.ones_like(ids, dtype=torch.bool)
    pts = torch.rand(batch, 2, 100, 3) * 2 - 1
    organ_mask = torch.ones(batch, 2, dtype=torch.bool)
    precisions = ["32-true"] + (["bf16-mixed"] if cpu_computes_bf16() else [])

    def step(precision):
        def run():
            with autocast(precision, "cpu"):
                pred = model(ids, mask)["point"]
            loss = sod_loss(pred.float(), pts, organ_mask)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 2.0)
            opt.step()
        return run

    ms = interleaved_ms({p: step(p) for p in precisions}, repeats)
    out = {f"{p}_steps_per_s": 1e3 / ms[p]["median_ms"] for p in precisions}
    out["bf16_speedup"] = (ms["32-true"]["median_ms"] / ms["bf16-mixed"]["median_ms"]) if "bf16-mixed" in ms else None
    return out


def run(quick: bool = False) -> dict:
    results: dict = {}
    print("[bench atlas] SOD loss, batch 128 × 3 organs, forward + backward", flush=True)
    results["sod"] = sod(batch=32 if quick else 128, points=(100,) if quick else (100, 1000),
                         repeats=2 if quick else 5)
    for n, row in results["sod"].items():
        print(f"  {n}: batched {row['batched_ms']:.2f} ms vs per-sample loop {row['loop_ms']:.1f} ms → "
              f"{row['speedup']:.0f}× (target ≥ 10×); same value: {row['same_value']}", flush=True)
    shape = (66, 114, 154) if quick else FULL_SHAPE
    results["nearest"] = r = nearest(shape, queries=1000 if quick else 10_000, brute_queries=40 if quick else 200,
                                     ellipsoid_radius=20.0 if quick else 62.0)
    print(f"[bench atlas] nearest organ, {r['shape']} atlas, {r['organs']} organs: boundary trees built in "
          f"{r['build_s']:.1f} s, {r['queries_per_s']:.0f} exact queries/s, peak memory {r['peak_rss_mb']:.0f} MB "
          f"(process)", flush=True)
    e = r["ellipsoid"]
    print(f"  {e['voxels']:,}-voxel ellipsoid: boundary KD-tree {e['kdtree_queries_per_s']:.0f} vs brute force "
          f"{e['brute_queries_per_s']:.1f} queries/s → {e['speedup']:.0f}×; same distances: {e['same']}", flush=True)
    encoders = {"tiny": {"bert_config": TINY_BERT}} if quick else {"tiny": {"bert_config": TINY_BERT},
                                                                   "MiniLM-L6": {}}
    results["grounding_docs_per_s"] = g = grounding((128,) if quick else (128, 256, 512), encoders,
                                                    batch=4 if quick else 16, repeats=1 if quick else 3)
    print("[bench atlas] grounding (docs/s): " + ", ".join(f"{k} {v:.0f}" for k, v in g.items()), flush=True)
    results["training"] = t = training(encoders["tiny" if quick else "MiniLM-L6"], batch=8 if quick else 32,
                                       repeats=1 if quick else 3)
    if t["bf16_speedup"] is not None:
        print(f"  training step: fp32 {t['32-true_steps_per_s']:.2f} vs bf16 {t['bf16-mixed_steps_per_s']:.2f} "
              f"steps/s → {t['bf16_speedup']:.2f}×", flush=True)
    else:
        print(f"  training step: fp32 {t['32-true_steps_per_s']:.2f} steps/s (this CPU does not compute bf16 "
              "natively: bf16 not measured)", flush=True)
    return results
