"""Run directories: ``runs/<task>/<name>/`` with the resolved config (``config.yaml``, written by the
CLI), ``metrics.jsonl`` (written by :class:`MetricsLogger`), ``checkpoints/`` (Lightning ``.ckpt`` for exact
resume), ``weights.safetensors``, ``figures/`` and ``report.html`` (written by :class:`RunDirCallback`)."""

from __future__ import annotations

import html
import json
import logging
import math
import multiprocessing
import os
from argparse import Namespace
from pathlib import Path
from typing import Any

import lightning as L
import torch
import yaml
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_only

from modalbridge.core.report import (
    MAX_CURVE_PANELS,
    STAGES,
    curve_panels,
    plot_curves,
    read_jsonl,
    table_html,
    write_report,
)
from modalbridge.core.weights import save_safetensors

log = logging.getLogger(__name__)

#: what :class:`MetricsLogger` writes, in a run folder
METRICS_FILE = "metrics.jsonl"


def _floats(metrics: dict) -> dict[str, float]:
    out = {}
    for k, v in metrics.items():
        if isinstance(v, torch.Tensor) and v.numel() == 1:
            v = v.item()
        if isinstance(v, int | float) and math.isfinite(float(v)):
            out[k] = float(v)
    return out


def metric_stage(key: str) -> str | None:
    """``"train"``, ``"val"`` or ``"test"`` from a metric name's prefix; ``None`` for names without one
    (counters such as ``skipped_clips`` or ``teacher_fallbacks``)."""
    stage, sep, _ = key.partition("/")
    return stage if sep and stage in STAGES else None


def train_epoch_values(metrics: dict) -> dict[str, float]:
    """The values of a ``train`` record among ``metrics``: the finite scalars named ``train/*`` and the
    counters without a stage prefix."""
    return {k: v for k, v in _floats(metrics).items() if metric_stage(k) in ("train", None)}


class MetricsLogger(Logger):
    """A Lightning logger writing ``metrics.jsonl`` in the run folder: one JSON object per line, read by
    :class:`RunDirCallback`'s report and by the tests. It can sit beside other loggers
    (``Trainer(logger=[MetricsLogger(), CSVLogger(...)])``). Only rank 0 writes.

    Records (keys exactly as logged, values finite floats):

    * ``{"epoch", "step", "stage": "val", "val/<metric>": …}`` — one per validation run of ``fit`` (none
      during the sanity check, none for a separate ``validate``), from the single call in which Lightning
      hands the loggers a validation epoch's metrics;
    * ``{"epoch", "step", "stage": "train", "train/<metric>": …, "<counter>": …}`` — one per training epoch:
      the ``train/*`` values and the counters a module logs without a stage prefix (``skipped_clips``,
      ``teacher_fallbacks``) as ``trainer.callback_metrics`` holds them when the epoch ends — the epoch
      aggregate of metrics logged with ``on_epoch=True``, the last batch's value of those logged per step
      only (Lightning's default in ``training_step``). :class:`RunDirCallback` hands them over at each
      epoch's end (:meth:`log_train_epoch`), because Lightning itself sends step-only metrics to loggers
      just every ``log_every_n_steps`` batches and sends nothing at the end of an epoch that logged none
      with ``on_epoch``. Without the callback the record is assembled from what Lightning sends (the
      latest value of each key) and written when the next epoch logs something or when the run ends;
    * ``{"stage": "test", "test/<metric>": …}`` — one per test run (no epoch/step).

    ``epoch`` is ``trainer.current_epoch``, ``step`` is ``trainer.global_step`` (optimiser steps so far).
    Per-step calls of evaluation loops (Lightning passes them without an ``epoch``) and logs from
    callbacks that write to loggers directly (e.g. ``LearningRateMonitor``) make no record. When ``fit``
    writes its first record the file keeps only the records of earlier epochs, so a resumed run drops
    those of the epochs it re-runs and the file reads as one run (a fresh run into the folder starts a new
    file).

    Args:
        save_dir: the run folder; ``None``: the Trainer's ``default_root_dir`` (handed over by
            :class:`RunDirCallback` in ``setup``, or taken from the module when Lightning calls
            :meth:`log_graph` at the start of a run).

    ``name`` and ``version`` are empty, so Lightning's checkpoints land in ``<save_dir>/checkpoints`` when
    this is the first logger. Hyper-parameters are not written (the CLI writes ``config.yaml``).
    """

    def __init__(self, save_dir: str | os.PathLike | None = None):
        super().__init__()
        self._given_dir = None if save_dir is None else str(save_dir)
        self._trainer: L.Trainer | None = None
        self._reset()

    def _reset(self) -> None:
        self._fresh = True  # the first record a fit writes truncates the file to earlier epochs
        self._pending: dict[str, Any] | None = None  # train record assembled from Lightning's calls
        self._closed_epoch = -1  # the last epoch whose train record was written

    # -- Logger API ------------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return ""

    @property
    def version(self) -> str:
        return ""

    @property
    def save_dir(self) -> str | None:
        if self._given_dir is not None:
            return self._given_dir
        return str(self._trainer.default_root_dir) if self._trainer is not None else None

    @property
    def root_dir(self) -> str | None:
        return self.save_dir

    @property
    def log_dir(self) -> str | None:
        return self.save_dir

    @property
    def metrics_path(self) -> Path:
        if self.save_dir is None:
            raise RuntimeError("MetricsLogger has no folder yet: give save_dir, or let the Trainer start a run "
                               "(its default_root_dir is used)")
        return Path(self.save_dir) / METRICS_FILE

    def bind(self, trainer: L.Trainer) -> None:
        """Attach the run's trainer (its ``default_root_dir``, ``global_step``, entry point) at the start of
        a run; called by :class:`RunDirCallback` in ``setup`` and by :meth:`log_graph`."""
        self._trainer = trainer
        self._reset()

    def log_graph(self, model: Any, input_array: Any = None) -> None:
        # Lightning calls this on every logger when a run starts (after the callbacks' setup)
        try:
            trainer = model.trainer
        except (AttributeError, RuntimeError):
            return
        if trainer is not None:
            self.bind(trainer)

    @rank_zero_only
    def log_hyperparams(self, params: dict[str, Any] | Namespace, *args: Any, **kwargs: Any) -> None:
        """Nothing is written: the CLI saves the resolved config as ``config.yaml`` in the run folder."""

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        values = _floats(metrics)
        epoch = values.pop("epoch", None)
        if epoch is None or self._sanity_checking():
            return  # an evaluation loop's per-step log, or a direct log without an epoch
        epoch, fn = int(epoch), self._entry_point()
        step = self._trainer.global_step if self._trainer is not None else (None if step is None else step + 1)
        by_stage: dict[str | None, dict[str, float]] = {}
        for k, v in values.items():
            by_stage.setdefault(metric_stage(k), {})[k] = v
        train = {**by_stage.get("train", {}), **by_stage.get(None, {})}
        if fn == "fit":
            if self._pending is not None and self._pending["epoch"] < epoch:
                self._flush()
            if by_stage.get("val"):
                self._write({"epoch": epoch, "step": step, "stage": "val", **by_stage["val"]})
            if train and epoch > self._closed_epoch:
                if self._pending is None:
                    self._pending = {"epoch": epoch, "step": step, "stage": "train"}
                self._pending.update(train, step=step)
        if by_stage.get("test"):
            self._write({"stage": "test", **by_stage["test"]})

    @rank_zero_only
    def log_train_epoch(self, metrics: dict[str, Any], epoch: int, step: int) -> None:
        """Write the ``train`` record of ``epoch`` from ``metrics`` (see :func:`train_epoch_values`); what
        Lightning sends later for that epoch is already in it and is ignored."""
        if self._sanity_checking():
            return
        self._pending = None
        self._closed_epoch = max(self._closed_epoch, int(epoch))
        self._write({"epoch": int(epoch), "step": int(step), "stage": "train", **train_epoch_values(metrics)})

    @rank_zero_only
    def finalize(self, status: str) -> None:
        self._flush()

    # -- helpers -------------------------------------------------------------------------------------
    def _sanity_checking(self) -> bool:
        return self._trainer is not None and self._trainer.sanity_checking

    def _entry_point(self) -> str:
        fn = getattr(getattr(self._trainer, "state", None), "fn", None)
        return str(getattr(fn, "value", fn)) if fn is not None else "fit"

    def _flush(self) -> None:
        if self._pending is not None:
            record, self._pending = self._pending, None
            self._closed_epoch = max(self._closed_epoch, record["epoch"])
            self._write(record)

    def _write(self, record: dict[str, Any]) -> None:
        if rank_zero_only.rank != 0:
            return
        path = self.metrics_path
        path.parent.mkdir(parents=True, exist_ok=True)
        if self._fresh and "epoch" in record and self._entry_point() == "fit":
            # resumed run: drop the records of the epochs it re-runs, so the file reads as one run
            kept = [r for r in read_jsonl(path) if "epoch" in r and r["epoch"] < record["epoch"]]
            path.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
            self._fresh = False
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


def precision_note(trainer: L.Trainer) -> str:
    """The precision a trainer runs in and, for ``auto``, why (:class:`modalbridge.core.trainer.Trainer`)."""
    return getattr(trainer, "precision_note", None) or f"precision {trainer.precision}"


class RunDirCallback(L.Callback):
    """The run folder's other contents: at the end of ``fit`` the final (and best) weights as safetensors
    and, under DDP, ``ranks/rank<i>.json`` (every rank's last evaluation metrics); ``report.html`` with the
    metric tables, the task's own sections and the learning curves (``figures/curves.png``) at the end of
    ``fit`` and ``test`` (rank 0).

    ``metrics.jsonl`` is written by the trainer's :class:`MetricsLogger`: in ``setup`` this callback hands it
    the run folder (a ``MetricsLogger`` without ``save_dir`` writes into ``default_root_dir``) and adds one
    when the trainer has none (``logger=False``, or other loggers only), and at the end of every training
    epoch it hands it the epoch's ``train`` values (see :class:`MetricsLogger`)."""

    def __init__(self, title: str | None = None):
        self.title = title

    def _dir(self, trainer: L.Trainer) -> Path:
        d = Path(trainer.default_root_dir)
        d.mkdir(parents=True, exist_ok=True)
        return d

    @staticmethod
    def metrics_loggers(trainer: L.Trainer) -> list[MetricsLogger]:
        return [lg for lg in trainer.loggers if isinstance(lg, MetricsLogger)]

    def setup(self, trainer, pl_module, stage: str) -> None:
        loggers = self.metrics_loggers(trainer)
        if not loggers:  # metrics.jsonl and the report need one; appended, so loggers[0] stays the user's
            loggers = [MetricsLogger()]
            trainer.loggers = [*trainer.loggers, *loggers]
        for lg in loggers:
            lg.bind(trainer)
        if stage == "fit" and trainer.is_global_zero:
            log.info("%s: %s", type(pl_module).__name__, precision_note(trainer))

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        # the callback_metrics hold this epoch's aggregates (on_epoch) and last-batch values (on_step only)
        for lg in self.metrics_loggers(trainer):
            lg.log_train_epoch(trainer.callback_metrics, epoch=trainer.current_epoch, step=trainer.global_step)

    def on_test_end(self, trainer, pl_module) -> None:
        if trainer.is_global_zero:  # the logger has written the test record
            self.write_report(trainer, pl_module)

    def on_fit_end(self, trainer, pl_module) -> None:
        d = self._dir(trainer)
        if trainer.world_size > 1:  # every rank records what it computed, so agreement can be checked
            (d / "ranks").mkdir(exist_ok=True)
            (d / "ranks" / f"rank{trainer.global_rank}.json").write_text(
                json.dumps(getattr(pl_module, "last_eval_metrics", {}), indent=1))
        if not trainer.is_global_zero:
            return
        save_safetensors(pl_module.state_dict(), d / "weights.safetensors", metadata={"kind": "last"})
        ckpt = trainer.checkpoint_callback
        best = getattr(ckpt, "best_model_path", "") if ckpt is not None else ""
        if best and Path(best).exists():
            state = torch.load(best, map_location="cpu", weights_only=True)["state_dict"]
            save_safetensors(state, d / "best.safetensors", metadata={"kind": "best", "from": Path(best).name})
        self.write_report(trainer, pl_module)

    def write_report(self, trainer: L.Trainer, pl_module: L.LightningModule | None = None) -> Path:
        """``report.html`` in the run folder from ``metrics.jsonl``: the last validation and test metrics,
        the sections of the module's ``report_sections(run_dir) -> [(heading, html), ...]`` if it has one,
        the learning curves (every logged metric, one panel per family, directions from the module's
        ``metric_mode``) and the resolved config."""
        d = self._dir(trainer)
        pl_module = pl_module if pl_module is not None else trainer.lightning_module
        loggers = self.metrics_loggers(trainer)
        records = read_jsonl(loggers[0].metrics_path if loggers else d / METRICS_FILE)
        sections = []
        val = [r for r in records if r.get("stage") == "val"]
        test = [r for r in records if r.get("stage") == "test"]
        if val:
            last = val[-1]
            sections.append(("Final validation metrics", table_html(
                [{"metric": k, "value": v} for k, v in last.items() if k.startswith("val/")])))
        if test:
            sections.append(("Test metrics", table_html(
                [{"metric": k, "value": v} for k, v in test[-1].items() if k.startswith("test/")])))
        sections += self._task_sections(pl_module, d)
        modes = self._modes(pl_module, records)
        png = plot_curves(records, d / "figures" / "curves.png", modes=modes)
        if png is not None:
            panels = curve_panels(records, modes=modes)
            hidden = len(panels) - MAX_CURVE_PANELS
            note = f"<p>{hidden} more metric families are only in metrics.jsonl.</p>" if hidden > 0 else ""
            sections.append(("Training curves", f'<img src="figures/curves.png">{note}'))
        sections.append(("Run", f"<p>{html.escape(precision_note(trainer))}; {trainer.world_size} process(es), "
                                f"accelerator {type(trainer.accelerator).__name__}.</p>"))
        cfg = d / "config.yaml"
        if cfg.exists():
            sections.append(("Resolved config", f"<pre>{yaml.safe_dump(yaml.safe_load(cfg.read_text()))}</pre>"))
        return write_report(d / "report.html", self.title or f"modalbridge run {d}", sections)

    @staticmethod
    def _task_sections(pl_module, run_dir: Path) -> list[tuple[str, str]]:
        hook = getattr(pl_module, "report_sections", None)
        if not callable(hook):
            return []
        try:
            return [(str(h), str(body)) for h, body in hook(run_dir)]
        except Exception as exc:  # the run's weights are saved: a broken report section must not fail it
            log.exception("%s.report_sections failed", type(pl_module).__name__)
            return [("Task sections", f"<p>report_sections failed: {html.escape(repr(exc))}</p>")]

    @staticmethod
    def _modes(pl_module, records: list[dict]) -> dict[str, str]:
        """Which way each logged metric is better: the module's ``metric_mode`` if it has one, else
        :func:`modalbridge.core.engine.metric_mode`."""
        from modalbridge.core.engine import metric_mode

        mode_of = getattr(pl_module, "metric_mode", None)
        mode_of = mode_of if callable(mode_of) else metric_mode
        keys = {k for r in records for k in r if metric_stage(k) is not None}
        return {k: mode_of(k) for k in sorted(keys)}


class KillAtEpoch(L.Callback):
    """Fault injection for resume tests: kills the job when epoch ``epoch`` starts, like a preempted node —
    its DataLoader workers (SIGKILL) and then the process itself (``os._exit``, no cleanup). Killing the
    workers first matters: an orphaned worker can outlive its parent and hold the job's stdout open.
    Enabled by the CLI when ``$MODALBRIDGE_KILL_AT_EPOCH`` is set."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch == self.epoch:
            for child in multiprocessing.active_children():
                child.kill()
            os._exit(17)
