"""LightningModule of the RGB action-recognition baseline: video classifier trained with CE.

EK: one CE per head (verb, noun), averaged; SSv2/Something-Else: CE on the single action head.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from modalbridge.core.engine import ClassifierModule
from modalbridge.core.registry import create_model


class ActionRecognitionModule(ClassifierModule):
    """Args:
        model: registered model name (``swin3d_t``, ``swin3d_tiny``, ``r3d_18``, ``r3d_50``).
        heads: ``{head: num_classes}``; linked from the data module by the CLI.
        weights: optional path to a torchvision-format backbone checkpoint (e.g. Kinetics-400).
        model_kwargs: extra backbone arguments (e.g. ``{"drop_path": 0.2}``).
        label_smoothing: CE label smoothing (paper: 0).
        lr, weight_decay, warmup_epochs: see :class:`~modalbridge.core.engine.ClassifierModule`.
    """

    def __init__(self, model: str = "swin3d_t", heads: dict[str, int] | None = None, *,
                 weights: str | None = None, model_kwargs: dict[str, Any] | None = None,
                 label_smoothing: float = 0.0, lr: float = 1e-4, weight_decay: float = 0.05,
                 warmup_epochs: float = 3.0, ece_bins: int = 15):
        super().__init__(lr=lr, weight_decay=weight_decay, warmup_epochs=warmup_epochs, ece_bins=ece_bins)
        self.save_hyperparameters()
        self.heads = dict(heads or {"action": 174})
        self.model = create_model(model, heads=self.heads, weights=weights, **(model_kwargs or {}))
        self.label_smoothing = label_smoothing

    def label_heads(self) -> list[str]:
        return list(self.heads)

    def forward(self, batch: dict[str, Any] | torch.Tensor) -> dict[str, torch.Tensor]:
        video = batch["rgb"] if isinstance(batch, dict) else batch
        return self.model(video)

    def loss(self, outputs, batch):
        losses = {h: F.cross_entropy(outputs[h], batch[h], label_smoothing=self.label_smoothing)
                  for h in self.heads}
        return torch.stack(list(losses.values())).mean(), {f"ce_{h}": v for h, v in losses.items()}

    def predict_step(self, batch, batch_idx):
        outputs = self(batch)
        return {"index": batch["index"], **{h: o.softmax(-1) for h, o in outputs.items()}}
