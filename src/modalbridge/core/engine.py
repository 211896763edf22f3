"""The engine every task's LightningModule stands on: :class:`TaskModule`.

It owns what does not depend on the task:

* **optimisation** from config — ``optimizer`` (``adamw`` with no decay on biases/norms, ``adam``, ``sgd``),
  ``lr``, ``weight_decay`` and a per-step ``schedule`` (``linear``: linear warm-up then linear decay to 0,
  ``cosine``: warm-up then cosine decay, ``constant``: warm-up then flat) whose length is the run's real
  number of optimiser steps (``max_epochs`` or ``max_steps``, whichever ends the run); the warm-up is
  ``warmup_steps`` or ``warmup_epochs`` epochs. Manual optimisation (``automatic_optimization = False``)
  gets the same optimiser and scheduler from ``self.optimizers()`` / ``self.lr_schedulers()``.
* **evaluation collection**: ``evaluation_step`` returns per-sample tensors (first dimension = batch); the
  engine keeps them per evaluation dataloader, gathers them across DDP ranks, drops the duplicates a
  padded distributed sampler adds (by the sample id the data module names, ``sample_id_key``, default
  ``index``) and calls ``compute_metrics`` once per loader — then ``combine_metrics`` across loaders (e.g.
  the GZSL harmonic mean of a seen and an unseen loader). One loader logs ``val/<metric>``; several log
  ``val/<loader>/<metric>`` (names from the data module's ``eval_loader_names``) plus the combined ones.
* **the monitored metric and its direction** (``monitor``, ``monitor_mode``): the CLI's best checkpoint
  follows them; ``metric_mode(name)`` tells reports which way a curve is better.
* **exact resume**: torch/numpy RNG states travel in checkpoints (tensors only: ``weights_only=True``). The
  training order resumes exactly when the sampler is seeded per epoch (:class:`~modalbridge.core.data.EpochSampler`
  of a ``SeededDataModule``, or Lightning's ``DistributedSampler`` under DDP); a plain ``DataLoader(shuffle=True)``
  on one process reshuffles from the global RNG, which a resumed run's sanity check has already advanced.
* **skips**: batches a skip-aware collation emptied (``{"skipped": n}``) are counted, not trained on.

A task implements ``training_loss(batch) -> (loss, logs)`` (or its own ``training_step``),
``evaluation_step(batch, dataloader_idx) -> {name: (B, ...) tensor}`` and ``compute_metrics``.
:class:`~modalbridge.core.classifier.ClassifierModule` is the subclass for multi-head classifiers.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import nn

OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULES = ("linear", "cosine", "constant")

#: words of a metric name (split at ``_``, ``@``, ``-``) that make lower values better (reports, the
#: checkpoint direction defaults): ``val/action_ece``, ``train/ce_verb``, ``val/mean_distance``, ``val/loss`` …
LOWER_IS_BETTER = frozenset({"loss", "error", "err", "ece", "distance", "rank", "nll", "mse", "mae", "rmse",
                             "perplexity", "ce", "bce", "kd", "kl", "l1", "l2"})


def warmup_linear_schedule(total_steps: int, warmup_steps: int):
    """LR multiplier: linear 0→1 over ``warmup_steps``, then linear 1→0 at ``total_steps``."""

    def fn(step: int) -> float:
        if warmup_steps > 0 and step < warmup_steps:
            return (step + 1) / warmup_steps
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return fn


def warmup_cosine_schedule(total_steps: int, warmup_steps: int):
    """LR multiplier: linear 0→1 over ``warmup_steps``, then half a cosine 1→0 at ``total_steps``."""

    def fn(step: int) -> float:
        if warmup_steps > 0 and step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return fn


def warmup_constant_schedule(total_steps: int, warmup_steps: int):
    """LR multiplier: linear 0→1 over ``warmup_steps``, then 1."""

    def fn(step: int) -> float:
        return (step + 1) / warmup_steps if warmup_steps > 0 and step < warmup_steps else 1.0

    return fn


_SCHEDULE_FNS = {"linear": warmup_linear_schedule, "cosine": warmup_cosine_schedule,
                 "constant": warmup_constant_schedule}


def param_groups(module: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: no decay on biases and 1-D parameters (norms), ``weight_decay`` elsewhere."""
    decay, no_decay = [], []
    for name, p in module.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 or name.endswith(".bias") else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def is_empty_batch(batch: Any) -> bool:
    """A batch whose every sample a skip-aware collation dropped: ``{"skipped": n}`` and nothing else."""
    return isinstance(batch, dict) and set(batch) <= {"skipped"}


def metric_mode(name: str) -> str:
    """``"min"`` for metric names with a word that reads as an error (:data:`LOWER_IS_BETTER`), else
    ``"max"`` (accuracies, recalls, mAP, counts)."""
    words = re.split(r"[_@\-]", name.rpartition("/")[2].lower())
    return "min" if LOWER_IS_BETTER.intersection(words) else "max"


def dedupe_rows(rows: dict[str, Any], key: str) -> dict[str, Any]:
    """Keep one row per sample id ``rows[key]`` (ids: an int tensor or a list of strings), sorted by id."""
    ids = rows[key]
    values = ids.cpu().numpy() if isinstance(ids, torch.Tensor) else np.asarray(ids, dtype=object)
    if values.dtype == object:
        first: dict[Any, int] = {}
        for position, value in enumerate(values.tolist()):
            first.setdefault(value, position)
        keep = [first[v] for v in sorted(first)]
    else:
        keep = np.unique(values, return_index=True)[1].tolist()
    index = torch.as_tensor(keep, dtype=torch.long)
    return {k: (v[index] if isinstance(v, torch.Tensor) else [v[i] for i in keep]) for k, v in rows.items()}


def _concat(parts: list[Any]) -> Any:
    if isinstance(parts[0], torch.Tensor):
        return torch.cat([p.cpu() for p in parts])
    return [x for p in parts for x in p]


class TaskModule(L.LightningModule):
    """Base LightningModule of every task (see the module docstring).

    Args:
        lr: peak learning rate. weight_decay: decoupled (AdamW) or L2 (Adam/SGD) decay.
        optimizer: ``adamw`` | ``adam`` | ``sgd`` (momentum 0.9).
        schedule: ``linear`` | ``cosine`` | ``constant`` after the warm-up (per optimiser step).
        warmup_epochs: warm-up length in epochs (fractional allowed); ``warmup_steps`` overrides it.
    """

    #: the metric that selects the best checkpoint, and whether lower (``min``) or higher is better
    monitor: str = "val/loss"
    monitor_mode: str = "min"

    def __init__(self, *, lr: float = 1e-4, weight_decay: float = 0.0, optimizer: str = "adamw",
                 schedule: str = "linear", warmup_epochs: float = 0.0, warmup_steps: int | None = None):
        super().__init__()
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {'|'.join(OPTIMIZERS)}, got {optimizer!r}")
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {'|'.join(SCHEDULES)}, got {schedule!r}")
        self.lr, self.weight_decay, self.optimizer_name, self.schedule = lr, weight_decay, optimizer, schedule
        self.warmup_epochs, self.warmup_steps = warmup_epochs, warmup_steps
        self._eval: dict[int, dict[str, list[Any]]] = {}
        self._eval_seen = 0
        self.skipped_clips = 0
        self.last_eval_metrics: dict[str, float] = {}

    # -- to implement ---------------------------------------------------------------------------
    def training_loss(self, batch: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``(loss, {name: value})`` of one training batch; the values are logged as ``train/<name>``."""
        raise NotImplementedError(f"{type(self).__name__} must implement training_loss or training_step")

    def evaluation_step(self, batch: Any, dataloader_idx: int = 0) -> dict[str, Any]:
        """Per-sample results of one evaluation batch: ``{name: (B, ...) tensor or list}``; the sample ids
        (``batch[sample_id_key]``) are added by the engine. Return ``{}`` to record nothing."""
        raise NotImplementedError(f"{type(self).__name__} must implement evaluation_step")

    def compute_metrics(self, outputs: dict[str, Any], loader: str) -> dict[str, float]:
        """Metrics of one evaluation loader from its gathered, de-duplicated ``outputs`` (every rank gets
        the same)."""
        raise NotImplementedError(f"{type(self).__name__} must implement compute_metrics")

    def combine_metrics(self, per_loader: dict[str, dict[str, float]]) -> dict[str, float]:
        """Metrics across several evaluation loaders (logged as ``<stage>/<name>``); none by default."""
        return {}

    def report_sections(self, run_dir: Path) -> list[tuple[str, str]]:
        """The task's own ``(heading, HTML)`` sections of the run's ``report.html`` (figures, tables)."""
        return []

    def metric_mode(self, name: str) -> str:
        """``"min"`` or ``"max"``: which way ``name`` is better (reports; the CLI's ``--monitor``)."""
        leaf = name.rpartition("/")[2]
        if leaf == self.monitor.rpartition("/")[2]:
            return self.monitor_mode
        return metric_mode(name)

    # -- optimisation ------------------------------------------------------------------------------
    def optimizer_parameters(self) -> list[dict[str, Any]]:
        """Parameter groups handed to the optimiser (default: every trainable parameter of the module)."""
        return param_groups(self, self.weight_decay)

    def schedule_lengths(self) -> tuple[int, int]:
        """``(total optimiser steps, warm-up steps)`` of this run, under ``max_epochs`` or ``max_steps``."""
        trainer = self.trainer
        total = int(trainer.estimated_stepping_batches)
        if self.warmup_steps is not None:
            return total, int(self.warmup_steps)
        batches = trainer.num_training_batches
        if isinstance(batches, int | float) and math.isfinite(batches) and batches > 0:
            per_epoch = max(1.0, batches / max(1, trainer.accumulate_grad_batches))
        else:  # an iterable dataset of unknown length: the epoch is the whole run
            per_epoch = total / max(1, trainer.max_epochs or 1)
        if trainer.max_steps in (None, -1):  # epoch-bounded: the same length the papers' recipes derive
            per_epoch = total / max(1, trainer.max_epochs or 1)
        return total, int(round(self.warmup_epochs * per_epoch))

    def fused_optimizer(self) -> bool:
        """Whether Adam/AdamW run as one fused kernel (``fused=True``: 4–5× faster optimiser steps on a CPU, the same
        update up to rounding): on CPU or CUDA parameters, except under fp16 mixed precision, whose gradient
        scaler Lightning cannot combine with gradient clipping of a fused optimiser."""
        devices = {p.device.type for p in self.parameters() if p.requires_grad}
        precision = str(self.trainer.precision) if self._trainer is not None else ""
        return bool(devices) and devices <= {"cpu", "cuda"} and not precision.startswith("16")

    def configure_optimizers(self):
        groups = self.optimizer_parameters()
        if self.optimizer_name == "adamw":
            optimizer = torch.optim.AdamW(groups, lr=self.lr, fused=self.fused_optimizer() or None)
        elif self.optimizer_name == "adam":
            optimizer = torch.optim.Adam(groups, lr=self.lr, fused=self.fused_optimizer() or None)
        else:
            optimizer = torch.optim.SGD(groups, lr=self.lr, momentum=0.9)
        total, warmup = self.schedule_lengths()
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _SCHEDULE_FNS[self.schedule](total, warmup))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None) -> None:
        """Lightning's mixed-precision plugin refuses to clip the gradients of a fused optimiser (it assumes one
        that unscales fp16 gradients itself). Without a gradient scaler (bf16-mixed) the gradients are already
        true gradients, so a fused optimiser's are clipped here directly; everything else goes to Lightning."""
        scaler = getattr(self.trainer.precision_plugin, "scaler", None)
        if gradient_clip_val and optimizer.defaults.get("fused") and scaler is None:
            params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
            if gradient_clip_algorithm == "value":
                torch.nn.utils.clip_grad_value_(params, gradient_clip_val)
            else:
                torch.nn.utils.clip_grad_norm_(params, gradient_clip_val)
            return
        super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)

    # -- training ------------------------------------------------------------------------------------
    def training_step(self, batch: Any, batch_idx: int):
        self._count_skips(batch)
        if is_empty_batch(batch):
            return None  # every sample of this batch was skipped (counted above)
        loss, logs = self.training_loss(batch)
        bs = self.batch_size_of(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=bs)
        for k, v in logs.items():
            self.log(f"train/{k}", v, batch_size=bs)
        return loss

    def batch_size_of(self, batch: Any) -> int | None:
        """Number of samples in ``batch`` (for logging averages); ``None`` lets Lightning infer it."""
        ids = batch.get(self.sample_id_key) if isinstance(batch, dict) else None
        return len(ids) if ids is not None else None

    def _count_skips(self, batch: Any) -> None:
        skipped = int(batch.get("skipped", 0)) if isinstance(batch, dict) else 0
        if skipped:
            self.skipped_clips += skipped
            self.log("skipped_clips", float(self.skipped_clips), reduce_fx="max")

    def on_train_start(self) -> None:
        self._check_distributed_sampler()

    def _check_distributed_sampler(self) -> None:
        """Under DDP every rank must read its own share of the training data."""
        if self._trainer is None or self.trainer.world_size <= 1:
            return
        from torch.utils.data import DistributedSampler

        loader = self.trainer.train_dataloader
        loaders = loader if isinstance(loader, Sequence) else [loader]
        for dl in loaders:
            sampler = getattr(dl, "sampler", None)
            batch_sampler = getattr(dl, "batch_sampler", None)
            inner = getattr(batch_sampler, "sampler", None)
            if not any(isinstance(s, DistributedSampler) for s in (sampler, inner, batch_sampler)):
                raise RuntimeError(
                    f"DDP with {self.trainer.world_size} processes but the training loader's sampler "
                    f"({type(sampler).__name__}) is not distributed: every rank would train on all the data. "
                    "Keep trainer.use_distributed_sampler=true (the default) or use a rank-aware sampler "
                    "(modalbridge.core.data.EpochSampler).")

    # -- evaluation ------------------------------------------------------------------------------------
    @property
    def sample_id_key(self) -> str:
        dm = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        return getattr(dm, "sample_id_key", "index")

    def _collect(self, batch: Any, dataloader_idx: int) -> None:
        self._count_skips(batch)
        if is_empty_batch(batch):
            return
        rows = self.evaluation_step(batch, dataloader_idx)
        if not rows:
            return
        key = self.sample_id_key
        ids = batch.get(key) if isinstance(batch, dict) else None
        if ids is None:
            if self._trainer is not None and self.trainer.world_size > 1:
                raise KeyError(f"evaluation batches have no {key!r} field: under DDP the engine de-duplicates "
                               "samples by it; add a sample id to the dataset's items (or set the data "
                               "module's sample_id_key)")
            n = len(next(iter(rows.values())))
            ids = torch.arange(self._eval_seen, self._eval_seen + n)
            self._eval_seen += n
        store = self._eval.setdefault(dataloader_idx, {})
        store.setdefault(key, []).append(ids.detach() if isinstance(ids, torch.Tensor) else list(ids))
        for name, value in rows.items():  # metrics in fp32 whatever the forward pass ran in (bf16 autocast)
            if isinstance(value, torch.Tensor):
                value = value.detach().float() if value.is_floating_point() else value.detach()
            else:
                value = list(value)
            store.setdefault(name, []).append(value)

    def validation_step(self, batch, batch_idx, dataloader_idx: int = 0):
        self._collect(batch, dataloader_idx)

    def test_step(self, batch, batch_idx, dataloader_idx: int = 0):
        self._collect(batch, dataloader_idx)

    def on_validation_epoch_start(self) -> None:
        self._eval, self._eval_seen = {}, 0

    on_test_epoch_start = on_validation_epoch_start

    def on_validation_epoch_end(self) -> None:
        self._log_eval("val")

    def on_test_epoch_end(self) -> None:
        self._log_eval("test")

    def _num_eval_loaders(self, stage: str) -> int:
        if self._trainer is None:
            return max(1, len(self._eval))
        batches = self.trainer.num_val_batches if stage == "val" else self.trainer.num_test_batches
        return max(1, len(batches) if isinstance(batches, Sequence) else 1)

    def eval_loader_names(self, stage: str) -> list[str]:
        """Names of the evaluation loaders (the data module's ``eval_loader_names``, else ``loader<i>``)."""
        n = self._num_eval_loaders(stage)
        dm = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        names = list(getattr(dm, "eval_loader_names", None) or [])
        return names[:n] if len(names) >= n else [f"loader{i}" for i in range(n)]

    def gathered_eval(self, dataloader_idx: int = 0) -> dict[str, Any]:
        """This epoch's rows of one evaluation loader, concatenated over batches and ranks, one per sample
        id (sorted by id). Every rank must call it (it is a collective under DDP)."""
        local = {k: _concat(v) for k, v in self._eval.get(dataloader_idx, {}).items()}
        if self._trainer is not None and self.trainer.world_size > 1:
            import torch.distributed as dist

            gathered: list[Any] = [None] * self.trainer.world_size
            dist.all_gather_object(gathered, local)
            parts = [g for g in gathered if g]
            local = {k: _concat([p[k] for p in parts]) for k in (parts[0] if parts else {})}
        if not local:
            return {}
        return dedupe_rows(local, self.sample_id_key)

    def _log_eval(self, stage: str) -> None:
        names = self.eval_loader_names(stage)
        per_loader: dict[str, dict[str, float]] = {}
        #: this evaluation's gathered rows per loader (per-sample outputs: bootstrap intervals, diagrams)
        self.last_eval_rows: dict[str, dict[str, Any]] = {}
        for i, name in enumerate(names):
            rows = self.gathered_eval(i)
            if rows:
                per_loader[name] = self.compute_metrics(rows, name)
                self.last_eval_rows[name] = rows
        self._eval = {}
        if not per_loader:
            return
        metrics: dict[str, float] = {}
        if len(names) == 1:
            metrics.update(next(iter(per_loader.values())))
        else:
            for name, values in per_loader.items():
                metrics.update({f"{name}/{k}": v for k, v in values.items()})
            metrics.update(self.combine_metrics(per_loader))
        self.last_eval_metrics = {f"{stage}/{k}": float(v) for k, v in metrics.items()}
        prog = self.monitor.partition("/")[2]
        for k, v in metrics.items():
            # every rank computed the same value from the gathered rows: no reduction needed
            self.log(f"{stage}/{k}", float(v), prog_bar=k == prog, rank_zero_only=False, sync_dist=False,
                     add_dataloader_idx=False)

    # -- exact resume ------------------------------------------------------------------------------------
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
            self._set_rng_state(state)

    @staticmethod
    def _set_rng_state(state: dict[str, Any]) -> None:
        torch.set_rng_state(state["torch"])
        has_gauss, gauss = state["numpy_gauss"]
        np.random.set_state(("MT19937", state["numpy_keys"].numpy().astype(np.uint32), state["numpy_pos"],
                             int(has_gauss), float(gauss)))


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """A Lightning checkpoint read with ``torch.load(weights_only=True, mmap=True)`` (no code unpickled), or a
    :class:`~modalbridge.core.errors.CheckpointError` saying what is wrong with the file."""
    from modalbridge.core.errors import CheckpointError

    path = Path(path)
    if not path.exists():
        raise CheckpointError("checkpoint not found (give the .ckpt written by `modalbridge fit`, e.g. "
                              "runs/<task>/<run>/checkpoints/last.ckpt)", path=path)
    if path.is_dir():
        found = sorted(path.rglob("*.ckpt"))
        hint = f"; checkpoints in it: {', '.join(str(p) for p in found[:3])}" if found else ""
        raise CheckpointError(f"is a folder, expected a .ckpt file{hint}", path=path)
    with path.open("rb") as handle:
        head = handle.read(4)
    if head != b"PK\x03\x04":  # torch.save writes a zip archive
        kind = "an empty file" if not head else ("a text file" if head.isascii() else "not a zip archive")
        raise CheckpointError(f"not a PyTorch checkpoint ({kind}; torch.save writes a zip archive); give the .ckpt "
                              "written by `modalbridge fit`", path=path)
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # a text file, a truncated download, a pickle with code in it …
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"not a readable Lightning checkpoint ({reason}); give the .ckpt written by "
                              "`modalbridge fit`", path=path) from None
    if not isinstance(state, dict) or "state_dict" not in state:
        raise CheckpointError("not a Lightning checkpoint (no state_dict); give the .ckpt written by "
                              "`modalbridge fit`", path=path)
    return state


def load_module_checkpoint(ckpt: str, cls: type[L.LightningModule], **overrides: Any
                           ) -> tuple[L.LightningModule, dict]:
    """Rebuild ``cls`` from a Lightning checkpoint with ``torch.load(weights_only=True)`` (no code is
    unpickled) and return ``(module in eval mode, checkpoint's "modalbridge_data" dict)``;
    ``overrides`` replace hyper-parameters (e.g. ``teachers=None`` to load a student alone)."""
    state = read_checkpoint(ckpt)
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
