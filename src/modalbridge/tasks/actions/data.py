"""Data of the actions task: the shared EPIC-KITCHENS-100 and Something-Something V2 / Something-Else
data modules (:mod:`modalbridge.datasets.datamodules`; the distillation and layout tasks use them too).

Batches are dicts ``{"rgb": (B, 3, T, S, S), "index": (B,), "skipped": int, <labels>}`` with labels
``verb``/``noun`` (EK) or ``action`` (SSv2/Something-Else).
"""

from modalbridge.datasets.datamodules import EpicKitchensDataModule, SomethingDataModule

__all__ = ["EpicKitchensDataModule", "SomethingDataModule"]
