"""The Lightning ``Trainer`` every verb uses: Lightning's own, with ``precision="auto"`` (the default) resolved by
:func:`modalbridge.core.precision.resolve_precision` — bf16 mixed precision where the device computes bf16
natively, fp32 elsewhere. Any precision Lightning knows (``32-true``, ``bf16-mixed``, ``16-mixed`` …) passes
through unchanged, so ``--trainer.precision 32-true`` restores fp32."""

from __future__ import annotations

from typing import Any

import lightning as L

from modalbridge.core.precision import AUTO, describe_precision, resolve_precision

__all__ = ["Trainer"]


class Trainer(L.Trainer):
    """``lightning.Trainer`` whose ``precision`` also takes ``"auto"`` (the default).

    Args:
        precision: ``"auto"``, or any value of ``lightning.Trainer(precision=...)``.
        **kwargs: every other ``lightning.Trainer`` argument.
    """

    def __init__(self, *args: Any, precision: str | int | None = AUTO, **kwargs: Any) -> None:
        accelerator = kwargs.get("accelerator", "auto")
        #: the requested precision and the line saying what it resolved to (run log, report)
        self.requested_precision = precision
        self.precision_note = describe_precision(precision, accelerator)
        super().__init__(*args, precision=resolve_precision(precision, accelerator), **kwargs)
