"""Run folders: ``metrics.jsonl`` written by :class:`MetricsLogger` (beside other loggers), the report of
:class:`RunDirCallback` and its learning curves. A tiny module on random tensors, in-process."""

import csv
import json
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader, TensorDataset

from modalbridge.core.report import curve_panels, plot_curves
from modalbridge.core.runs import MetricsLogger, RunDirCallback

BATCHES = 5  # training batches per epoch (40 samples, batch 8)


class Tiny(L.LightningModule):
    """Logs like the tasks do: ``train/loss`` per step only (Lightning's default in ``training_step``),
    ``train/acc`` as an epoch mean, a ``skipped_clips`` counter, ``val/*`` and ``test/*``."""

    def __init__(self):
        super().__init__()
        self.net = torch.nn.Linear(4, 2)
        self.last_loss: dict[int, float] = {}  # epoch -> the loss of its last training batch
        self.val_runs = 0

    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self.net(x)
        loss = torch.nn.functional.cross_entropy(logits, y)
        self.log("train/loss", loss)
        self.log("train/acc", (logits.argmax(1) == y).float().mean(), on_step=False, on_epoch=True)
        self.log("skipped_clips", float(batch_idx), reduce_fx="max")
        self.last_loss[self.current_epoch] = loss.item()
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val/loss", torch.nn.functional.cross_entropy(self.net(x), y))
        self.log("val/top1", (self.net(x).argmax(1) == y).float().mean() * 100)

    def on_validation_epoch_end(self):
        self.val_runs += 1

    def test_step(self, batch, batch_idx):
        x, y = batch
        self.log("test/top1", (self.net(x).argmax(1) == y).float().mean() * 100)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class Reporting(Tiny):
    def report_sections(self, run_dir: Path) -> list[tuple[str, str]]:
        return [("Confusions", f"<p>tiny section from {run_dir.name}</p>")]

    def metric_mode(self, name: str) -> str:
        return "min" if name.endswith("loss") else "max"


def _loader() -> DataLoader:
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(40, 4, generator=g), torch.randint(0, 2, (40,), generator=g))
    return DataLoader(data, batch_size=8)


def _trainer(root: Path, *, logger=None, callbacks=None, epochs: int = 2, log_every: int = 50) -> L.Trainer:
    L.seed_everything(0, verbose=False)
    return L.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, default_root_dir=root,
                     logger=MetricsLogger() if logger is None else logger,
                     callbacks=[RunDirCallback()] if callbacks is None else callbacks,
                     log_every_n_steps=log_every, enable_progress_bar=False, enable_model_summary=False,
                     num_sanity_val_steps=2)


def _records(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / "metrics.jsonl").read_text().splitlines()]


def test_one_record_per_stage_and_epoch_none_for_the_sanity_check(tmp_path):
    module = Tiny()
    trainer = _trainer(tmp_path, epochs=2)
    trainer.fit(module, _loader(), _loader())
    trainer.test(module, _loader(), verbose=False)
    records = _records(tmp_path)
    assert module.val_runs == 3  # the sanity check ran validation, and it left no record
    assert [(r.get("epoch"), r.get("step"), r["stage"]) for r in records] == [
        (0, BATCHES, "val"), (0, BATCHES, "train"), (1, 2 * BATCHES, "val"), (1, 2 * BATCHES, "train"),
        (None, None, "test")]
    val, train, test = records[2], records[3], records[4]
    assert set(val) == {"epoch", "step", "stage", "val/loss", "val/top1"}
    assert set(train) == {"epoch", "step", "stage", "train/loss", "train/acc", "skipped_clips"}
    assert set(test) == {"stage", "test/top1"}
    # a step-only metric: the epoch's last batch (log_every_n_steps=50 never sent it to the loggers)
    assert train["train/loss"] == pytest.approx(module.last_loss[1])
    assert train["skipped_clips"] == BATCHES - 1  # counters without a stage prefix go with the train record
    assert 0 <= train["train/acc"] <= 1 and 0 <= test["test/top1"] <= 100


def test_resumed_run_drops_the_records_of_the_epochs_it_reruns(tmp_path):
    every_epoch = ModelCheckpoint(save_top_k=-1, filename="{epoch}", save_on_train_epoch_end=True)
    _trainer(tmp_path, epochs=3, callbacks=[RunDirCallback(), every_epoch]).fit(Tiny(), _loader(), _loader())
    full = _records(tmp_path)
    assert [r["epoch"] for r in full] == [0, 0, 1, 1, 2, 2]
    with open(tmp_path / "metrics.jsonl", "a") as f:  # a record of an epoch the resumed run will redo
        f.write(json.dumps({"epoch": 2, "step": 99, "stage": "val", "val/loss": -1.0}) + "\n")
    ckpt = tmp_path / "checkpoints" / "epoch=0.ckpt"
    _trainer(tmp_path, epochs=3).fit(Tiny(), _loader(), _loader(), ckpt_path=str(ckpt))
    resumed = _records(tmp_path)
    assert [(r["epoch"], r["stage"]) for r in resumed] == [(r["epoch"], r["stage"]) for r in full]
    assert resumed[:2] == full[:2]  # epoch 0 kept, epochs 1 and 2 written once, by the resumed run
    assert all(r["step"] != 99 for r in resumed)


def test_a_csv_logger_beside_it_receives_the_same_metrics(tmp_path):
    trainer = _trainer(tmp_path, logger=[MetricsLogger(), CSVLogger(tmp_path / "csv")], log_every=1)
    module = Tiny()
    trainer.fit(module, _loader(), _loader())
    trainer.test(module, _loader(), verbose=False)
    rows = list(csv.DictReader(open(tmp_path / "csv" / "lightning_logs" / "version_0" / "metrics.csv")))
    records = _records(tmp_path)

    def csv_values(key: str) -> list[float]:
        return [float(r[key]) for r in rows if r.get(key)]

    for key in ("val/loss", "val/top1", "train/acc"):
        assert csv_values(key) == pytest.approx([r[key] for r in records if key in r]), key
    assert csv_values("test/top1") == pytest.approx([records[-1]["test/top1"]])
    # per-step values go to the CSV; the train record holds each epoch's last one
    assert len(csv_values("train/loss")) == 2 * BATCHES
    assert csv_values("train/loss")[BATCHES - 1::BATCHES] == pytest.approx(
        [r["train/loss"] for r in records if r["stage"] == "train"])
    # the run folder keeps its layout: checkpoints under it, the other logger's files in its own folder
    assert (tmp_path / "checkpoints").is_dir() and (tmp_path / "report.html").exists()


def test_alone_it_builds_the_records_from_what_lightning_sends(tmp_path):
    """Without RunDirCallback the logger takes the run folder from the trainer and the train record from
    Lightning's calls; with a log every step it equals the callback's."""
    with_callback, alone = tmp_path / "with", tmp_path / "alone"
    _trainer(with_callback, log_every=1).fit(Tiny(), _loader(), _loader())
    _trainer(alone, log_every=1, callbacks=[]).fit(Tiny(), _loader(), _loader())
    assert _records(alone) == _records(with_callback)
    assert not (alone / "report.html").exists()


def test_logger_false_still_gets_metrics_and_a_validate_run_writes_no_record(tmp_path):
    module = Tiny()
    trainer = _trainer(tmp_path, logger=False)
    trainer.fit(module, _loader(), _loader())
    assert sum(isinstance(lg, MetricsLogger) for lg in trainer.loggers) == 1  # added by RunDirCallback
    assert (tmp_path / "checkpoints").is_dir()
    before = _records(tmp_path)
    assert len(before) == 4
    trainer.validate(module, _loader(), verbose=False)
    assert _records(tmp_path) == before  # as before: a separate validate leaves metrics.jsonl alone


def test_report_has_the_task_sections_after_the_metric_tables(tmp_path):
    trainer = _trainer(tmp_path)
    module = Reporting()
    trainer.fit(module, _loader(), _loader())
    trainer.test(module, _loader(), verbose=False)
    html = (tmp_path / "report.html").read_text()
    headings = [part.split("</h2>")[0] for part in html.split("<h2>")[1:]]
    assert headings == ["Final validation metrics", "Test metrics", "Confusions", "Training curves", "Run"]
    assert f"tiny section from {tmp_path.name}" in html
    assert (tmp_path / "figures" / "curves.png").stat().st_size > 0


def test_a_failing_report_section_does_not_fail_the_run(tmp_path):
    class Broken(Tiny):
        def report_sections(self, run_dir):
            raise ValueError("no confusion matrix today")

    _trainer(tmp_path, epochs=1).fit(Broken(), _loader(), _loader())
    assert "no confusion matrix today" in (tmp_path / "report.html").read_text()
    assert (tmp_path / "weights.safetensors").exists()


def test_curve_panels_one_per_metric_family_with_its_direction():
    records = [
        {"epoch": 0, "step": 5, "stage": "val", "val/loss": 1.0, "val/verb_top1": 20.0, "val/seen/verb_top1": 21.0},
        {"epoch": 0, "step": 5, "stage": "train", "train/loss": 1.2, "train/ce_verb": 0.9, "skipped_clips": 3.0},
        {"epoch": 1, "step": 10, "stage": "val", "val/loss": 0.8, "val/verb_top1": 30.0, "val/seen/verb_top1": 31.0},
        {"stage": "test", "test/verb_top1": 33.0},  # no epoch: not a curve
    ]
    panels = {p.family: p for p in curve_panels(records)}
    assert list(panels) == ["loss", "ce_verb", "seen/verb_top1", "skipped_clips", "verb_top1"]  # losses first
    assert panels["loss"].keys == ["train/loss", "val/loss"]
    assert panels["loss"].title == "loss (↓ better)"
    assert panels["verb_top1"].keys == ["val/verb_top1"] and panels["verb_top1"].title == "verb_top1 (↑ better)"
    assert panels["skipped_clips"].mode is None and panels["skipped_clips"].title == "skipped_clips"
    # the module's directions win over the name heuristic
    modes = {"train/ce_verb": "min", "val/verb_top1": "min"}
    panels = {p.family: p for p in curve_panels(records, modes=modes)}
    assert panels["ce_verb"].title == "ce_verb (↓ better)" and panels["verb_top1"].mode == "min"
    assert [p.family for p in curve_panels(records, keys=["val/verb_top1", "val/nothing"])] == ["verb_top1"]


def test_plot_curves_caps_the_panels(tmp_path):
    records = [{"epoch": e, "stage": "val", **{f"val/m{i:02d}": float(i + e) for i in range(40)}} for e in range(3)]
    assert plot_curves(records, tmp_path / "a.png", max_panels=12).exists()
    assert plot_curves([{"stage": "test", "test/top1": 1.0}], tmp_path / "b.png") is None
