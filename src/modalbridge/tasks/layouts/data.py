"""Data of the layouts task: the shared layout data modules (:mod:`modalbridge.datasets.datamodules`; the
distillation task's object teacher reads the same layouts) — Something-Something V2 / Something-Else with
annotated ("oracle") or detected boxes, layout only or with RGB clips, and Action Genome on Charades
(multi-label). Batches follow the contract in :mod:`modalbridge.tasks.layouts`.
"""

from modalbridge.datasets.datamodules import ActionGenomeDataModule, SomethingLayoutDataModule

__all__ = ["ActionGenomeDataModule", "SomethingLayoutDataModule"]
