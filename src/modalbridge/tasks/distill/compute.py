"""Compute report: parameters, FLOPs (``torch.utils.flop_counter.FlopCounterMode``; 1 MAC = 2 FLOPs) and
measured CPU latency per clip for the student, each teacher and the ensemble (including the optical
flow extraction the flow teacher needs at test time) — the thesis's "the student costs ~24 % of the
ensemble" claim, measured here."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from modalbridge.io.flow import compute_flow


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def count_flops(fn: Callable[[], object]) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def time_ms(fn: Callable[[], object], repeats: int = 5) -> float:
    """Median wall time of ``fn`` in ms after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


@torch.no_grad()
def model_cost(model: nn.Module, example: torch.Tensor, repeats: int = 5) -> dict[str, float]:
    """Params (M), GFLOPs per clip and ms per clip (batch 1) of ``model(example)``."""
    model = model.eval()
    return {"params_m": count_params(model) / 1e6, "gflops": count_flops(lambda: model(example)) / 1e9,
            "ms": time_ms(lambda: model(example), repeats)}


def flow_extraction_cost(frames: torch.Tensor, method: str = "dis", repeats: int = 3) -> dict[str, float]:
    """Latency of OpenCV flow on the clip's frames (uint8 ``(T, H, W, 3)``); FLOPs are not counted
    for OpenCV (reported as NaN)."""
    return {"params_m": 0.0, "gflops": float("nan"), "ms": time_ms(lambda: compute_flow(frames, method), repeats)}


def compute_table(student: nn.Module, teachers: dict[str, tuple[nn.Module, torch.Tensor]], rgb: torch.Tensor,
                  raw_frames: torch.Tensor | None = None, repeats: int = 5) -> list[dict]:
    """Rows for the student, each teacher, flow extraction and the ensemble (sum of its parts)."""
    rows = [{"model": "student (RGB)", **model_cost(student, rgb, repeats)}]
    ens = {"params_m": 0.0, "gflops": 0.0, "ms": 0.0}
    for name, (model, example) in teachers.items():
        row = {"model": f"teacher {name}", **model_cost(model, example, repeats)}
        rows.append(row)
        for k in ens:
            ens[k] += row[k]
        if name == "flow" and raw_frames is not None:
            fl = {"model": "flow extraction (OpenCV DIS)", **flow_extraction_cost(raw_frames)}
            rows.append(fl)
            ens["ms"] += fl["ms"]
    if teachers:
        rows.append({"model": "ensemble (all teachers + flow)", **ens})
        rows.append({"model": "student / ensemble", "params_m": rows[0]["params_m"] / ens["params_m"],
                     "gflops": rows[0]["gflops"] / ens["gflops"], "ms": rows[0]["ms"] / ens["ms"]})
    return rows
