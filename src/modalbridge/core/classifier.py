"""Multi-head classifiers on the engine: :class:`ClassifierModule` and :class:`ModalityClassifierModule`.

A classifier's model returns ``{head: logits (B, C_head)}``; its data module names the heads
(``heads = {"verb": 97, "noun": 300}`` or ``{"action": 174}``; the CLI links them into ``model.heads``)
and puts one integer label per head in every batch. Evaluation records the logits and targets of every
sample and scores them with :func:`~modalbridge.metrics.score_classification` (top-1/5 and ECE per head;
the EPIC-KITCHENS verb∧noun action and the data module's ``split_masks`` — Unseen/Tail — where a
``verb`` and a ``noun`` head exist).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from modalbridge.core.engine import TaskModule
from modalbridge.metrics import score_classification


class ClassifierModule(TaskModule):
    """Base LightningModule for multi-head classifiers (see the module docstring).

    Subclasses implement :meth:`forward` (``batch -> {head: logits}``) and :meth:`label_heads`; the default
    loss is cross-entropy per labelled head, averaged. The best checkpoint follows ``val/action_top1``
    (EK verb∧noun or the single ``action`` head), else the first head's top-1.

    Args:
        lr, weight_decay, optimizer, schedule, warmup_epochs, warmup_steps: see
            :class:`~modalbridge.core.engine.TaskModule` (the papers: AdamW, linear warm-up + decay).
        ece_bins: bins for the expected calibration error.
    """

    monitor_mode = "max"
    label_smoothing: float = 0.0

    def __init__(self, *, lr: float = 1e-4, weight_decay: float = 0.05, warmup_epochs: float = 3.0,
                 ece_bins: int = 15, optimizer: str = "adamw", schedule: str = "linear",
                 warmup_steps: int | None = None):
        super().__init__(lr=lr, weight_decay=weight_decay, optimizer=optimizer, schedule=schedule,
                         warmup_epochs=warmup_epochs, warmup_steps=warmup_steps)
        self.ece_bins = ece_bins

    @property
    def monitor(self) -> str:  # type: ignore[override]
        heads = self.label_heads() if hasattr(self, "heads") else ["action"]
        if "action" in heads or {"verb", "noun"} <= set(heads):
            return "val/action_top1"
        return f"val/{heads[0]}_top1"

    # -- to implement -------------------------------------------------------------------------
    def label_heads(self) -> list[str]:
        """Heads that have ground-truth labels in the batch (e.g. ``["verb", "noun"]``)."""
        raise NotImplementedError

    def loss(self, outputs: dict[str, torch.Tensor], batch: dict[str, Any]) -> tuple[torch.Tensor, dict]:
        """Default: cross-entropy per labelled head, averaged (EK: verb and noun; SSv2: action); in fp32 under
        bf16 autocast."""
        losses = {h: F.cross_entropy(outputs[h].float(), batch[h], label_smoothing=self.label_smoothing)
                  for h in self.label_heads()}
        return torch.stack(list(losses.values())).mean(), {f"ce_{h}": v for h, v in losses.items()}

    def training_forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """The logits a training step scores (default: ``self(batch)``, as in evaluation)."""
        return self(batch)

    def eval_logits(self, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Outputs recorded for evaluation (default: one per labelled head; models with auxiliary heads add
        theirs)."""
        return {h: outputs[h] for h in self.label_heads()}

    # -- engine hooks ---------------------------------------------------------------------------
    def training_loss(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict]:
        return self.loss(self.training_forward(batch), batch)

    def evaluation_step(self, batch: dict[str, Any], dataloader_idx: int = 0) -> dict[str, torch.Tensor]:
        rows = {f"logits/{name}": z.float() for name, z in self.eval_logits(self(batch)).items()}
        rows.update({f"target/{h}": batch[h] for h in self.label_heads()})
        return rows

    def split_masks(self, ev: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``{name: (N,) bool}`` subsets of the evaluated samples (the data module's ``split_masks`` over its
        evaluation split, looked up by sample index), scored separately for EK verb/noun heads."""
        dm = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        masks = dm.split_masks() if dm is not None and hasattr(dm, "split_masks") else {}
        return {n: m[ev["index"]] for n, m in masks.items()}

    def compute_metrics(self, ev: dict[str, torch.Tensor], loader: str = "") -> dict[str, float]:
        logits = {k.partition("/")[2]: v for k, v in ev.items() if k.startswith("logits/")}
        targets = {k.partition("/")[2]: v for k, v in ev.items() if k.startswith("target/")}
        masks = self.split_masks(ev) if "verb" in logits and "noun" in logits else None
        out = score_classification(logits, targets, ece_bins=self.ece_bins, masks=masks)
        out["num_clips"] = float(len(ev["index"]))
        return out


class ModalityClassifierModule(ClassifierModule):
    """A registered model trained with cross-entropy on ONE input of the batch (``modality``: ``rgb``,
    ``flow``, ``audio``, …). EK: one CE per head (verb, noun) averaged; SSv2: CE on ``action``.

    Args:
        model: registered model name (e.g. ``swin3d_t``, ``r3d_tiny``).
        heads: ``{head: num_classes}`` (linked from the data module by the CLI).
        modality: batch key holding the input ``(B, 3, T, H, W)``.
        weights: optional path to backbone weights (torchvision format).
        model_kwargs: extra builder arguments. label_smoothing: CE smoothing (papers: 0).
    """

    def __init__(self, model: str = "swin3d_t", heads: dict[str, int] | None = None, *, modality: str = "rgb",
                 weights: str | None = None, model_kwargs: dict[str, Any] | None = None,
                 label_smoothing: float = 0.0, lr: float = 1e-4, weight_decay: float = 0.05,
                 warmup_epochs: float = 3.0, ece_bins: int = 15, optimizer: str = "adamw",
                 schedule: str = "linear", warmup_steps: int | None = None):
        super().__init__(lr=lr, weight_decay=weight_decay, warmup_epochs=warmup_epochs, ece_bins=ece_bins,
                         optimizer=optimizer, schedule=schedule, warmup_steps=warmup_steps)
        self.save_hyperparameters()
        from modalbridge.core.registry import create_model

        self.heads = dict(heads or {"action": 174})
        self.modality = modality
        self.model = create_model(model, heads=self.heads, weights=weights, **(model_kwargs or {}))
        self.label_smoothing = label_smoothing

    def label_heads(self) -> list[str]:
        return list(self.heads)

    def forward(self, batch: dict[str, Any] | torch.Tensor) -> dict[str, torch.Tensor]:
        x = batch[self.modality] if isinstance(batch, dict) else batch
        return self.model(x)

    def predict_step(self, batch, batch_idx):
        outputs = self(batch)
        return {"index": batch["index"], **{h: o.float().softmax(-1) for h, o in outputs.items()}}
