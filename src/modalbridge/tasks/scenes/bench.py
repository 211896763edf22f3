"""Scenes benchmark (``modalbridge bench scenes``), every comparison measured side by side in one run
(:func:`~modalbridge.core.benchmark.interleaved_ms`):

1. **batched decoding** — highest-confidence beam search (beam 3) over 64 world test scenes in one batch (scenes ×
   hypotheses as rows, per-scene done masks) vs the same model decoding one scene at a time, as the reference
   does; the placements must be identical. Also every strategy's scenes/s and forward passes per scene.
2. **training step** — SR-BERT forward + backward + clip 2.0 + fused Adam at batch 64, fp32 vs bf16 autocast.

The model is SR-BERT discrete on all-MiniLM-L6-v2 (the world's recipe); ``quick`` uses a 2-layer random-init BERT
and fewer scenes (a smoke run of the benchmark, not a measurement).
"""

from __future__ import annotations

import time

import torch

from modalbridge.core.benchmark import interleaved_ms
from modalbridge.core.precision import autocast, cpu_computes_bf16
from modalbridge.core.registry import create_model
from modalbridge.nn.bert import TINY_BERT


def _batch(scenes: int, train: bool) -> dict[str, torch.Tensor]:
    from modalbridge.tasks.scenes.data import SceneDataModule, collate_scenes

    dm = SceneDataModule(seed=0)
    data = dm.make_dataset("train" if train else "test", train=train)
    return collate_scenes([data[i] for i in range(min(scenes, len(data)))])


def _same(a, b) -> bool:
    return all(torch.equal(getattr(a, k), getattr(b, k)) for k in ("x", "y", "o"))


def decoding(model: torch.nn.Module, batch: dict, repeats: int) -> dict:
    from modalbridge.tasks.scenes.decoding import decode, decode_one_at_a_time

    model.eval()
    batched = decode(model, batch, "hc-beam")
    alone = decode_one_at_a_time(model, batch, "hc-beam")
    ms = interleaved_ms({"batched": lambda: decode(model, batch, "hc-beam"),
                         "one at a time": lambda: decode_one_at_a_time(model, batch, "hc-beam")}, repeats, warmup=1)
    scenes = len(batch["index"])
    out = {"scenes": scenes, "identical_placements": _same(batched, alone),
           "hc_beam_batched_ms": ms["batched"]["median_ms"], "hc_beam_one_at_a_time_ms": ms["one at a time"]["median_ms"]}
    out["batched_speedup"] = out["hc_beam_one_at_a_time_ms"] / out["hc_beam_batched_ms"]
    per_strategy = {}
    for strategy in ("ss", "ho", "hc", "le", "hc-beam"):
        t0 = time.perf_counter()
        result = decode(model, batch, strategy)
        elapsed = time.perf_counter() - t0
        per_strategy[strategy] = {"scenes_per_s": scenes / elapsed,
                                  "passes_per_scene": float(result.scene_passes.float().mean())}
    out["strategies"] = per_strategy
    return out


def training(model: torch.nn.Module, batch: dict, repeats: int) -> dict:
    from modalbridge.tasks.scenes.module import discrete_loss

    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=1e-6, fused=True)
    inputs = [batch[k] for k in ("input_ids", "text_mask", "cliparts", "x", "y", "o")]

    def step(precision: str):
        def run():
            with autocast(precision, "cpu"):
                out = model(*inputs)
            loss, _ = discrete_loss(out, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 2.0)
            optimizer.step()
        return run

    precisions = ["32-true"] + (["bf16-mixed"] if cpu_computes_bf16() else [])
    ms = interleaved_ms({p: step(p) for p in precisions}, repeats)
    out = {f"{p}_steps_per_s": 1e3 / ms[p]["median_ms"] for p in precisions}
    if "bf16-mixed" in ms:
        out["bf16_speedup"] = ms["32-true"]["median_ms"] / ms["bf16-mixed"]["median_ms"]
    else:
        out["bf16_speedup"] = None
        out["note"] = "this CPU does not compute bf16 natively: bf16 not measured (it would be emulated)"
    return out


def run(quick: bool = False) -> dict:
    torch.manual_seed(0)
    kwargs = {"bert_config": TINY_BERT} if quick else {}
    model = create_model("sr_bert_discrete", **kwargs)
    scenes = 8 if quick else 64
    print(f"[bench scenes] SR-BERT discrete ({'tiny random-init BERT' if quick else 'all-MiniLM-L6-v2'}), "
          f"{scenes} world test scenes", flush=True)
    results = {"decoding": decoding(model, _batch(scenes, train=False), repeats=1 if quick else 3)}
    d = results["decoding"]
    print(f"  hc-beam decoding: batched {d['hc_beam_batched_ms']:.0f} ms vs one scene at a time "
          f"{d['hc_beam_one_at_a_time_ms']:.0f} ms → {d['batched_speedup']:.1f}× (target ≥ 5× at batch 64); "
          f"identical placements: {d['identical_placements']}", flush=True)
    for name, row in d["strategies"].items():
        print(f"    {name:>7}: {row['scenes_per_s']:.1f} scenes/s, {row['passes_per_scene']:.1f} passes/scene")
    results["training"] = training(model, _batch(scenes, train=True), repeats=2 if quick else 5)
    t = results["training"]
    if t["bf16_speedup"] is not None:
        print(f"  training step (batch {scenes}): fp32 {t['32-true_steps_per_s']:.2f} steps/s, bf16 "
              f"{t['bf16-mixed_steps_per_s']:.2f} steps/s → {t['bf16_speedup']:.2f}×", flush=True)
    else:
        print(f"  training step: fp32 {t['32-true_steps_per_s']:.2f} steps/s; {t['note']}", flush=True)
    return results
