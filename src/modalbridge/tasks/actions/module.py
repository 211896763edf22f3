"""LightningModule of the RGB action-recognition baseline: a video classifier trained with CE on the
``rgb`` input (EK: CE per head — verb, noun — averaged; SSv2/Something-Else: CE on ``action``).

It is :class:`~modalbridge.core.classifier.ModalityClassifierModule` with ``modality="rgb"``; the class
exists so configs and checkpoints name the task's module explicitly.
"""

from __future__ import annotations

from typing import Any

from modalbridge.core.classifier import ModalityClassifierModule


class ActionRecognitionModule(ModalityClassifierModule):
    """Args:
        model: registered model name (``swin3d_t``, ``swin3d_tiny``, ``r3d_18``, ``r3d_50``, ``r3d_tiny``).
        heads: ``{head: num_classes}``; linked from the data module by the CLI.
        weights: optional path to a torchvision-format backbone checkpoint (e.g. Kinetics-400).
        model_kwargs: extra backbone arguments (e.g. ``{"drop_path": 0.2}``).
        label_smoothing: CE label smoothing (paper: 0).
        lr, weight_decay, warmup_epochs: see :class:`~modalbridge.core.classifier.ClassifierModule`.
    """

    def __init__(self, model: str = "swin3d_t", heads: dict[str, int] | None = None, *,
                 weights: str | None = None, model_kwargs: dict[str, Any] | None = None,
                 label_smoothing: float = 0.0, lr: float = 1e-4, weight_decay: float = 0.05,
                 warmup_epochs: float = 3.0, ece_bins: int = 15,
                 optimizer: str = "adamw", schedule: str = "linear", warmup_steps: int | None = None):
        super().__init__(model, heads, modality="rgb", weights=weights, model_kwargs=model_kwargs,
                         label_smoothing=label_smoothing, lr=lr, weight_decay=weight_decay,
                         warmup_epochs=warmup_epochs, ece_bins=ece_bins,
                         optimizer=optimizer, schedule=schedule, warmup_steps=warmup_steps)
