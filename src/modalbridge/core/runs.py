"""Run directories: ``runs/<task>/<name>/`` with the resolved config (``config.yaml``, written by the
CLI), ``metrics.jsonl``, ``checkpoints/`` (Lightning ``.ckpt`` for exact resume), ``weights.safetensors``,
``figures/`` and ``report.html``."""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import time
from pathlib import Path

import lightning as L
import torch
import yaml

from modalbridge.core.report import plot_curves, read_jsonl, table_html, write_report
from modalbridge.core.weights import save_safetensors


def _floats(metrics: dict) -> dict[str, float]:
    out = {}
    for k, v in metrics.items():
        if isinstance(v, torch.Tensor) and v.numel() == 1:
            v = v.item()
        if isinstance(v, int | float) and math.isfinite(float(v)):
            out[k] = float(v)
    return out


class RunDirCallback(L.Callback):
    """Writes ``metrics.jsonl`` (one JSON line per train/val epoch and per test), exports the final and
    best weights to safetensors and renders ``report.html`` with curves when fitting/testing ends.
    Only rank 0 writes."""

    def __init__(self, title: str | None = None):
        self.title = title

    def _dir(self, trainer: L.Trainer) -> Path:
        d = Path(trainer.default_root_dir)
        d.mkdir(parents=True, exist_ok=True)
        return d

    def _append(self, trainer: L.Trainer, record: dict) -> None:
        if trainer.is_global_zero and not trainer.sanity_checking:
            with open(self._dir(trainer) / "metrics.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")

    def on_train_start(self, trainer, pl_module) -> None:
        # runs after a checkpoint's loop state was restored, so current_epoch is the resumed epoch
        if not trainer.is_global_zero:
            return
        path = self._dir(trainer) / "metrics.jsonl"
        # resumed run: drop records of epochs that will be re-run, so the file reads as one run
        kept = [r for r in read_jsonl(path) if r.get("epoch", -1) < trainer.current_epoch and "epoch" in r]
        path.write_text("".join(json.dumps(r) + "\n" for r in kept))
        self._t0 = time.time()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        m = {k: v for k, v in _floats(trainer.callback_metrics).items()
             if k.startswith("train/") or k in ("skipped_clips", "teacher_fallbacks")}
        self._append(trainer, {"epoch": trainer.current_epoch, "step": trainer.global_step, "stage": "train", **m})

    def on_validation_end(self, trainer, pl_module) -> None:
        # after the module's on_validation_epoch_end, which logs the epoch's metrics
        if trainer.state.fn != "fit":
            return
        m = {k: v for k, v in _floats(trainer.callback_metrics).items() if k.startswith("val/")}
        self._append(trainer, {"epoch": trainer.current_epoch, "step": trainer.global_step, "stage": "val", **m})

    def on_test_end(self, trainer, pl_module) -> None:
        m = {k: v for k, v in _floats(trainer.callback_metrics).items() if k.startswith("test/")}
        self._append(trainer, {"stage": "test", **m})
        if trainer.is_global_zero:
            self.write_report(trainer)

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
        self.write_report(trainer)

    def write_report(self, trainer: L.Trainer) -> Path:
        d = self._dir(trainer)
        records = read_jsonl(d / "metrics.jsonl")
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
        png = plot_curves(records, d / "figures" / "curves.png")
        if png is not None:
            sections.append(("Training curves", '<img src="figures/curves.png">'))
        cfg = d / "config.yaml"
        if cfg.exists():
            sections.append(("Resolved config", f"<pre>{yaml.safe_dump(yaml.safe_load(cfg.read_text()))}</pre>"))
        return write_report(d / "report.html", self.title or f"modalbridge run {d}", sections)


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
