"""Training-step benchmark: our Lightning engine vs the bare loop, and the backbone's achieved GFLOP/s.

1. engine overhead — the same torchvision video model, the same in-memory batches, the same AdamW:
   (a) ``ActionRecognitionModule`` driven by ``lightning.Trainer`` (logging every step, LR schedule,
   grad clipping), vs (b) a bare ``forward / CE / backward / step`` loop. Target: overhead ≤ 10 %.
2. headroom — achieved GFLOP/s of the backbone's forward+backward (FLOPs counted by
   ``torch.utils.flop_counter.FlopCounterMode``) vs a plain large matmul on the same machine.

Run: ``python -m modalbridge.tasks.actions.bench_train_step [--quick]`` or ``modalbridge bench train_step``.
"""

from __future__ import annotations

import argparse
import time

import lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from torch.utils.flop_counter import FlopCounterMode

from modalbridge.tasks.actions.module import ActionRecognitionModule

HEADS = {"verb": 6, "noun": 8}


class _InMemory(Dataset):
    def __init__(self, n: int, shape: tuple[int, ...]):
        g = torch.Generator().manual_seed(0)
        self.video = torch.randn(n, *shape, generator=g)
        self.verb = torch.randint(0, 6, (n,), generator=g)
        self.noun = torch.randint(0, 8, (n,), generator=g)

    def __len__(self):
        return len(self.video)

    def __getitem__(self, i):
        return {"rgb": self.video[i], "verb": self.verb[i], "noun": self.noun[i], "index": i}


WARMUP_STEPS = 2  # steps excluded from timing in both paths (allocator warm-up, Trainer start-up)


def _bare(module: ActionRecognitionModule, loader: DataLoader) -> float:
    """Seconds per step of a plain loop, steps after WARMUP_STEPS."""
    model = module.model
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
    model.train()
    for i, batch in enumerate(loader):
        if i == WARMUP_STEPS:
            t0 = time.perf_counter()
        out = model(batch["rgb"])
        loss = (F.cross_entropy(out["verb"], batch["verb"]) + F.cross_entropy(out["noun"], batch["noun"])) / 2
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return (time.perf_counter() - t0) / (len(loader) - WARMUP_STEPS)


class _StepTimer(L.Callback):
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == WARMUP_STEPS:
            self.t0 = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module):
        self.elapsed = time.perf_counter() - self.t0


def _engine(module: ActionRecognitionModule, loader: DataLoader) -> float:
    """Seconds per step through lightning.Trainer (+ our module's logging/schedule), same step range."""
    timer = _StepTimer()
    trainer = L.Trainer(max_epochs=1, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, log_every_n_steps=1,
                        gradient_clip_val=5.0, num_sanity_val_steps=0, limit_val_batches=0, callbacks=[timer])
    trainer.fit(module, train_dataloaders=loader)
    return timer.elapsed / (len(loader) - WARMUP_STEPS)


def _gflops(fn, flops: float, repeats: int) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    return flops * repeats / (time.perf_counter() - t0) / 1e9


def run(quick: bool = False) -> dict:
    torch.set_num_threads(2)
    shape, batch, steps = (3, 8, 64, 64), 8, (6 if quick else 20)
    loader = DataLoader(_InMemory(batch * steps, shape), batch_size=batch)
    # warm both paths once, then alternate measurements (noise hits both alike)
    times = {"engine": [], "bare": []}
    for rep in range(2 if quick else 3):
        for kind in ("bare", "engine") if rep % 2 == 0 else ("engine", "bare"):
            torch.manual_seed(0)
            module = ActionRecognitionModule("swin3d_tiny", HEADS, lr=1e-4, warmup_epochs=0)
            t = (_engine if kind == "engine" else _bare)(module, loader)
            if rep > 0 or quick:
                times[kind].append(t)
    engine, bare = min(times["engine"]), min(times["bare"])

    module = ActionRecognitionModule("swin3d_tiny", HEADS).model
    x = torch.randn(batch, *shape)

    def step():
        out = module(x)
        (out["verb"].sum() + out["noun"].sum()).backward()

    with FlopCounterMode(display=False) as fc:
        step()
    flops = fc.get_total_flops()
    backbone_gflops = _gflops(step, flops, 2 if quick else 5)
    n = 1024 if quick else 2048
    a, b = torch.randn(n, n), torch.randn(n, n)
    matmul_gflops = _gflops(lambda: a @ b, 2 * n**3, 5 if quick else 20)

    result = {
        "engine_s_per_step": engine, "bare_s_per_step": bare, "engine_overhead_pct": 100 * (engine / bare - 1),
        "backbone_gflop_per_step": flops / 1e9, "backbone_gflops_per_s": backbone_gflops,
        "matmul_gflops_per_s": matmul_gflops, "backbone_vs_matmul": backbone_gflops / matmul_gflops,
    }
    print(f"engine step {engine * 1e3:.1f} ms vs bare {bare * 1e3:.1f} ms  -> overhead "
          f"{result['engine_overhead_pct']:+.1f}% (target <= 10%)")
    print(f"swin3d_tiny fwd+bwd {backbone_gflops:.1f} GFLOP/s vs {n}^2 matmul {matmul_gflops:.1f} GFLOP/s "
          f"-> {100 * result['backbone_vs_matmul']:.0f}% of matmul peak")
    return result


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    run(ap.parse_args().quick)
