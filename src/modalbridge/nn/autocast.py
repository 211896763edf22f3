"""What the shared blocks do differently under CPU bf16 autocast (``precision: bf16-mixed`` on a CPU): memory
layouts that oneDNN's bf16 kernels need. Values are the same; fp32 runs never take these paths, so their results
are unchanged. ``modalbridge bench precision`` measures the effect.

>>> cpu_bf16_autocast()
False
"""

from __future__ import annotations

import torch

__all__ = ["cpu_bf16_autocast"]


def cpu_bf16_autocast() -> bool:
    """Whether the code runs under ``torch.autocast("cpu", dtype=torch.bfloat16)``."""
    return torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
