"""GPU check (run on a CUDA machine): the paper-size Video Swin-T training step through our engine
vs the bare loop, fp32 vs bf16-mixed, and achieved TFLOP/s. Prints ratios measured in one run.

    python benchmarks/gpu_check.py [--steps 20] [--batch 8]
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

HEADS = {"verb": 97, "noun": 300}


class _Synthetic(Dataset):
    def __init__(self, n, shape):
        self.n, self.shape = n, shape

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return {"rgb": torch.randn(*self.shape, generator=g), "verb": i % 97, "noun": i % 300, "index": i}


class _Timer(L.Callback):
    def __init__(self, skip):
        self.skip = skip

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == self.skip:
            torch.cuda.synchronize()
            self.t0 = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module):
        torch.cuda.synchronize()
        self.elapsed = time.perf_counter() - self.t0


def engine(loader, precision, skip):
    torch.manual_seed(0)
    module = ActionRecognitionModule("swin3d_t", HEADS, model_kwargs={"drop_path": 0.2}, warmup_epochs=0)
    timer = _Timer(skip)
    trainer = L.Trainer(max_epochs=1, accelerator="gpu", devices=1, precision=precision, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        gradient_clip_val=5.0, limit_val_batches=0, num_sanity_val_steps=0, callbacks=[timer],
                        use_distributed_sampler=False)
    trainer.fit(module, train_dataloaders=loader)
    return timer.elapsed / (len(loader) - skip)


def bare(loader, precision, skip):
    torch.manual_seed(0)
    model = ActionRecognitionModule("swin3d_t", HEADS, model_kwargs={"drop_path": 0.2}).model.cuda()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    dtype = torch.bfloat16 if precision.startswith("bf16") else None
    for i, b in enumerate(loader):
        if i == skip:
            torch.cuda.synchronize()
            t0 = time.perf_counter()
        x = b["rgb"].cuda(non_blocking=True)
        with torch.autocast("cuda", dtype=dtype or torch.float32, enabled=dtype is not None):
            out = model(x)
            loss = (F.cross_entropy(out["verb"], b["verb"].cuda()) + F.cross_entropy(out["noun"], b["noun"].cuda())) / 2
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / (len(loader) - skip)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=8)
    args = ap.parse_args()
    print(torch.__version__, torch.cuda.get_device_name(0))
    shape = (3, 32, 224, 224)
    loader = DataLoader(_Synthetic(args.batch * args.steps, shape), batch_size=args.batch, num_workers=8,
                        pin_memory=True)
    model = ActionRecognitionModule("swin3d_t", HEADS).model.cuda()
    x = torch.randn(1, *shape, device="cuda")
    with FlopCounterMode(display=False) as fc:
        model(x)["verb"].sum().backward()
    step_flops = fc.get_total_flops() * args.batch
    with FlopCounterMode(display=False) as fc2, torch.no_grad():
        model(x)
    print(f"swin3d_t forward: {fc2.get_total_flops() / 1e9:.1f} GFLOPs per 32x224^2 clip (thesis: 140.33)")
    del model
    for precision in ("32-true", "bf16-mixed"):
        e, b = engine(loader, precision, 3), bare(loader, precision, 3)
        print(f"{precision}: engine {e * 1e3:.1f} ms/step vs bare {b * 1e3:.1f} ms/step -> overhead "
              f"{100 * (e / b - 1):+.1f}%; {step_flops / e / 1e12:.1f} TFLOP/s achieved (engine), "
              f"{args.batch / e:.1f} clips/s")


if __name__ == "__main__":
    main()
