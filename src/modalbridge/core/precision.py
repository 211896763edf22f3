"""Numeric precision: ``precision: auto`` picks bf16 mixed precision where the hardware computes bf16 natively.

Lightning's ``bf16-mixed`` keeps the parameters, gradients, optimiser state and checkpoints in fp32 and runs the
forward pass under ``torch.autocast(device, dtype=torch.bfloat16)``. On a CPU with AVX512-bf16 or AMX, or a CUDA
GPU with bf16 (Ampere and newer), that roughly halves a video model's train step (``make bench`` prints the
ratios); elsewhere bf16 is emulated and slower than fp32, so ``auto`` keeps fp32 there.

Losses, softmax/KL of distillation, ECE and ensemble weights are computed in fp32 whatever the precision: the
modules cast their logits with ``.float()`` before any loss, and evaluation rows are cast to fp32 when they are
collected (:meth:`modalbridge.core.engine.TaskModule._collect`).

>>> resolve_precision("32-true", "cpu")
'32-true'
>>> resolve_precision("auto", "cpu") in ("bf16-mixed", "32-true")
True
"""

from __future__ import annotations

import contextlib
import functools
import platform
from pathlib import Path
from typing import Any

import torch

__all__ = ["AUTO", "autocast", "cpu_computes_bf16", "describe_precision", "resolve_precision"]

AUTO = "auto"
#: /proc/cpuinfo flags of CPUs that compute bf16 natively: x86 AVX512-bf16 and AMX, ARMv8.6 BF16
_CPU_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})


@functools.cache
def cpu_computes_bf16() -> bool:
    """Whether this CPU has bf16 arithmetic in hardware (Linux: the ``flags``/``Features`` of /proc/cpuinfo)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: Apple silicon M2 and newer have BF16, older Macs and Windows are left at fp32
        return platform.system() == "Darwin" and platform.machine() == "arm64" and "M1" not in platform.processor()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return bool(_CPU_BF16_FLAGS & set(value.split()))
    return False


def _device_type(accelerator: Any) -> str:
    name = str(accelerator or "auto").lower()
    if name in ("auto", "gpu"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return "cuda" if name.startswith("cuda") else name


def resolve_precision(precision: Any, accelerator: Any = "auto") -> Any:
    """``"auto"`` → ``"bf16-mixed"`` where the device computes bf16 natively (CUDA with bf16, a CPU with
    AVX512-bf16/AMX/ARM BF16), else ``"32-true"``; any other value is returned unchanged (Lightning checks it)."""
    if precision is None or str(precision).lower() != AUTO:
        return precision
    device = _device_type(accelerator)
    if device == "cuda":
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "32-true"
    if device == "cpu":
        return "bf16-mixed" if cpu_computes_bf16() else "32-true"
    return "32-true"


def describe_precision(precision: Any, accelerator: Any = "auto") -> str:
    """One line for a run's log and report: the precision in use and, for ``auto``, why."""
    resolved = resolve_precision(precision, accelerator)
    if precision is None or str(precision).lower() != AUTO:
        return f"precision {resolved}"
    device = _device_type(accelerator)
    native = "computes bf16 natively" if resolved == "bf16-mixed" else "has no native bf16 (fp32 is faster there)"
    return f"precision {resolved} (auto: the {device.upper()} {native})"


def autocast(precision: Any, device: str | torch.device = "cpu") -> contextlib.AbstractContextManager:
    """The forward-pass context of ``precision`` on ``device`` for code outside a Trainer (inference verbs,
    benchmarks): ``torch.autocast(..., bfloat16)`` for ``bf16-mixed``/``bf16``, fp16 for ``16-mixed``, a no-op
    for fp32. ``"auto"`` is resolved first."""
    device_type = torch.device(device).type
    resolved = str(resolve_precision(precision, device_type))
    if resolved.startswith("bf16"):
        return torch.autocast(device_type, dtype=torch.bfloat16)
    if resolved.startswith("16"):
        return torch.autocast(device_type, dtype=torch.float16)
    return contextlib.nullcontext()
