"""Lightning plumbing shared by every classification-style task.

:class:`ClassifierModule` owns what does not depend on the method: the AdamW optimiser with the
papers' per-step linear warm-up + linear decay schedule, collection of evaluation logits across
batches and DDP ranks (de-duplicated by clip index), the standard metrics (top-1/top-5 per head,
action = verb∧noun, ECE, per-split accuracies) and RNG state in checkpoints so a resumed run
continues exactly. Subclasses implement :meth:`forward` (``batch -> {head: logits}``) and
:meth:`loss` (``outputs, batch -> (loss, logs)``).
"""

from __future__ import annotations

import inspect
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from modalbridge.metrics import (
    action_accuracy,
    action_ece,
    epic_metrics,
    expected_calibration_error,
    topk_accuracy,
)


def warmup_linear_schedule(total_steps: int, warmup_steps: int):
    """LR multiplier: linear 0→1 over ``warmup_steps``, then linear 1→0 at ``total_steps``."""

    def fn(step: int) -> float:
        if warmup_steps > 0 and step < warmup_steps:
            return (step + 1) / warmup_steps
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return fn


def param_groups(module: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: no decay on biases and 1-D parameters (norms), ``weight_decay`` elsewhere."""
    decay, no_decay = [], []
    for name, p in module.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 or name.endswith(".bias") else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


class ClassifierModule(L.LightningModule):
    """Base LightningModule for multi-head classifiers (see module docstring).

    Args:
        lr: peak learning rate. weight_decay: AdamW decoupled decay.
        warmup_epochs: linear warm-up length in epochs (fractional allowed).
        ece_bins: bins for the expected calibration error.
    """

    def __init__(self, *, lr: float = 1e-4, weight_decay: float = 0.05, warmup_epochs: float = 3.0,
                 ece_bins: int = 15):
        super().__init__()
        self.lr, self.weight_decay, self.warmup_epochs, self.ece_bins = lr, weight_decay, warmup_epochs, ece_bins
        self._eval: dict[str, list[torch.Tensor]] = {}
        self.skipped_clips = 0

    # -- to implement -------------------------------------------------------------------------
    label_smoothing: float = 0.0

    def loss(self, outputs: dict[str, torch.Tensor], batch: dict[str, Any]) -> tuple[torch.Tensor, dict]:
        """Default: cross-entropy per labelled head, averaged (EK: verb and noun; SSv2: action)."""
        losses = {h: F.cross_entropy(outputs[h], batch[h], label_smoothing=self.label_smoothing)
                  for h in self.label_heads()}
        return torch.stack(list(losses.values())).mean(), {f"ce_{h}": v for h, v in losses.items()}

    def label_heads(self) -> list[str]:
        """Heads that have ground-truth labels in the batch (e.g. ``["verb", "noun"]``)."""
        raise NotImplementedError

    # -- optimisation --------------------------------------------------------------------------
    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(param_groups(self, self.weight_decay), lr=self.lr)
        total = int(self.trainer.estimated_stepping_batches)
        epochs = max(1, self.trainer.max_epochs or 1)
        warmup = int(round(self.warmup_epochs * total / epochs))
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_linear_schedule(total, warmup))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # -- steps -------------------------------------------------------------------------------------
    def training_step(self, batch: dict[str, Any], batch_idx: int):
        self._count_skips(batch)
        if "index" not in batch:
            return None  # every clip of this batch was skipped
        outputs = self.training_forward(batch)
        loss, logs = self.loss(outputs, batch)
        bs = len(batch["index"])
        self.log("train/loss", loss, prog_bar=True, batch_size=bs)
        for k, v in logs.items():
            self.log(f"train/{k}", v, batch_size=bs)
        return loss

    def training_forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """The logits a training step scores (default: ``self(batch)``, as in evaluation)."""
        return self(batch)

    def _count_skips(self, batch: dict[str, Any]) -> None:
        skipped = int(batch.get("skipped", 0))
        if skipped:
            self.skipped_clips += skipped
            self.log("skipped_clips", float(self.skipped_clips), reduce_fx="max")

    def _eval_step(self, batch: dict[str, Any]) -> None:
        self._count_skips(batch)
        if "index" not in batch:
            return
        outputs = self(batch)
        self._eval.setdefault("index", []).append(batch["index"].detach())
        for name, logits in self.eval_logits(outputs).items():
            self._eval.setdefault(f"logits/{name}", []).append(logits.detach().float())
        for head in self.label_heads():
            self._eval.setdefault(f"target/{head}", []).append(batch[head].detach())

    def eval_logits(self, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Outputs recorded for evaluation (default: one per labelled head; models with auxiliary heads add
        theirs)."""
        return {h: outputs[h] for h in self.label_heads()}

    def validation_step(self, batch, batch_idx):
        self._eval_step(batch)

    def test_step(self, batch, batch_idx):
        self._eval_step(batch)

    def on_validation_epoch_start(self) -> None:
        self._eval = {}

    on_test_epoch_start = on_validation_epoch_start

    def on_validation_epoch_end(self) -> None:
        self._log_eval("val")

    def on_test_epoch_end(self) -> None:
        self._log_eval("test")

    # -- evaluation -----------------------------------------------------------------------------
    def gathered_eval(self) -> dict[str, torch.Tensor]:
        """Concatenate this epoch's eval tensors over batches and ranks; keep one row per clip index."""
        if not self._eval:
            return {}
        local = {k: torch.cat(v) for k, v in self._eval.items()}
        if self._trainer is not None and self.trainer.world_size > 1:
            # ranks may hold different counts (skipped clips): pad to the longest with index -1, gather, drop
            n = torch.tensor(len(local["index"]), device=self.device)
            longest = int(self.all_gather(n).max())
            pad = longest - len(local["index"])
            if pad:
                local = {k: torch.cat([v, v.new_full((pad, *v.shape[1:]), -1 if k == "index" else 0)])
                         for k, v in local.items()}
            local = {k: self.all_gather(v).flatten(0, 1) for k, v in local.items()}
            keep = local["index"] >= 0
            local = {k: v[keep] for k, v in local.items()}
        index = local["index"].cpu().numpy()
        _, first = np.unique(index, return_index=True)
        keep = torch.as_tensor(first)
        return {k: v.cpu()[keep] for k, v in local.items()}

    def compute_metrics(self, ev: dict[str, torch.Tensor]) -> dict[str, float]:
        heads = self.label_heads()
        out: dict[str, float] = {}
        for h in heads:
            acc = topk_accuracy(ev[f"logits/{h}"], ev[f"target/{h}"], ks=(1, 5))
            out[f"{h}_top1"], out[f"{h}_top5"] = acc[1], acc[5]
            probs = ev[f"logits/{h}"].softmax(-1)
            out[f"{h}_ece"] = expected_calibration_error(probs, ev[f"target/{h}"], n_bins=self.ece_bins)
        if "verb" in heads and "noun" in heads:
            args = (ev["logits/verb"], ev["logits/noun"], ev["target/verb"], ev["target/noun"])
            out["action_top1"] = action_accuracy(*args)
            out["action_ece"] = action_ece(ev["logits/verb"].softmax(-1), ev["logits/noun"].softmax(-1),
                                           ev["target/verb"], ev["target/noun"], n_bins=self.ece_bins)
            dm = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
            masks = dm.split_masks() if dm is not None and hasattr(dm, "split_masks") else {}
            split = epic_metrics(*args, masks={n: m[ev["index"]] for n, m in masks.items()})
            out.update({k: v for k, v in split.items() if "/" in k})
        out["num_clips"] = float(len(ev["index"]))
        return out

    def _log_eval(self, stage: str) -> None:
        ev = self.gathered_eval()
        if not ev:
            return
        metrics = self.compute_metrics(ev)
        self.last_eval_metrics = {f"{stage}/{k}": v for k, v in metrics.items()}
        for k, v in metrics.items():
            self.log(f"{stage}/{k}", float(v), prog_bar=k in ("action_top1",), rank_zero_only=False,
                     sync_dist=False)
        self._eval = {}

    # -- exact resume ----------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["modalbridge_class"] = type(self).__name__
        # stored as tensors/ints only, so the checkpoint loads with torch.load(weights_only=True)
        name, keys, pos, has_gauss, gauss = np.random.get_state()
        checkpoint["modalbridge_rng"] = {"torch": torch.get_rng_state(), "numpy_keys": torch.from_numpy(
            keys.astype(np.int64)), "numpy_pos": int(pos), "numpy_gauss": [int(has_gauss), float(gauss)]}
        dm = getattr(self.trainer, "datamodule", None)
        if dm is not None:
            checkpoint["modalbridge_data"] = {"class_names": getattr(dm, "class_names", None),
                                              "hparams": dict(getattr(dm, "hparams", {}))}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("modalbridge_rng")
        if state is not None:
            torch.set_rng_state(state["torch"])
            has_gauss, gauss = state["numpy_gauss"]
            np.random.set_state(("MT19937", state["numpy_keys"].numpy().astype(np.uint32), state["numpy_pos"],
                                 int(has_gauss), float(gauss)))


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
                 warmup_epochs: float = 3.0, ece_bins: int = 15):
        super().__init__(lr=lr, weight_decay=weight_decay, warmup_epochs=warmup_epochs, ece_bins=ece_bins)
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
        return {"index": batch["index"], **{h: o.softmax(-1) for h, o in outputs.items()}}


def load_module_checkpoint(ckpt: str, cls: type[L.LightningModule], **overrides: Any
                           ) -> tuple[L.LightningModule, dict]:
    """Rebuild ``cls`` from a Lightning checkpoint with ``torch.load(weights_only=True)`` (no code is
    unpickled) and return ``(module in eval mode, checkpoint's "modalbridge_data" dict)``;
    ``overrides`` replace hyper-parameters (e.g. ``teachers=None`` to load a student alone)."""
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    hp = {k: v for k, v in dict(state["hyper_parameters"]).items() if not k.startswith("_")}
    accepted = inspect.signature(cls.__init__).parameters
    hp = {k: v for k, v in hp.items() if k in accepted}  # e.g. a subclass's fixed arguments
    for key in ("weights", "init_from"):  # the checkpoint already holds the trained weights
        if key in hp:
            hp[key] = None
    hp.update(overrides)
    module = cls(**hp)
    module.load_state_dict(state["state_dict"], strict=not overrides)
    return module.eval(), state.get("modalbridge_data") or {}
