"""LightningModules of the toy tasks, on the trunk's :class:`~modalbridge.core.engine.TaskModule`."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from modalbridge.core.engine import TaskModule


class RegressionModule(TaskModule):
    """An MLP regressor; the best checkpoint is the epoch with the LOWEST validation MSE. Under DDP every
    rank writes the training sample indices it saw per epoch to ``<run>/seen/rank<r>_epoch<e>.json``."""

    monitor, monitor_mode = "val/mse", "min"

    def __init__(self, dim: int = 24, hidden: int = 256, lr: float = 3e-2, weight_decay: float = 0.0,
                 optimizer: str = "adam", schedule: str = "constant", warmup_epochs: float = 0.0,
                 warmup_steps: int | None = None):
        super().__init__(lr=lr, weight_decay=weight_decay, optimizer=optimizer, schedule=schedule,
                         warmup_epochs=warmup_epochs, warmup_steps=warmup_steps)
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, 1))
        self._seen: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)

    def training_loss(self, batch):
        self._seen += batch["index"].tolist()
        return F.mse_loss(self(batch["x"]), batch["y"]), {}

    def on_train_epoch_end(self) -> None:
        folder = Path(self.trainer.default_root_dir) / "seen"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"rank{self.global_rank}_epoch{self.current_epoch}.json").write_text(json.dumps(self._seen))
        self._seen = []

    def evaluation_step(self, batch, dataloader_idx: int = 0):
        return {"pred": self(batch["x"]), "target": batch["y"]}

    def compute_metrics(self, outputs, loader):
        err = outputs["pred"] - outputs["target"]
        return {"mse": float((err ** 2).mean()), "mae": float(err.abs().mean()), "num_samples": float(len(err))}


class RetrievalModule(TaskModule):
    """Queries and class prototypes embedded by one MLP, cosine scores against every class; trained with
    manual optimisation (CE over the seen classes). Per evaluation loader: recall@1 over all classes; across
    loaders: their harmonic mean (the GZSL way), which selects the best checkpoint."""

    monitor, monitor_mode = "val/hm", "max"
    automatic_optimization = False

    def __init__(self, dim: int = 24, embed: int = 32, seen_classes: int = 4, lr: float = 1e-2,
                 weight_decay: float = 0.0, optimizer: str = "adamw", schedule: str = "linear",
                 warmup_epochs: float = 0.5, warmup_steps: int | None = None):
        super().__init__(lr=lr, weight_decay=weight_decay, optimizer=optimizer, schedule=schedule,
                         warmup_epochs=warmup_epochs, warmup_steps=warmup_steps)
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(dim, 64), nn.ReLU(), nn.Linear(64, embed))
        self.seen_classes = seen_classes

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        protos = self.trainer.datamodule.protos.to(x)
        return F.normalize(self.net(x), dim=-1) @ F.normalize(self.net(protos), dim=-1).T * 10.0

    def training_step(self, batch, batch_idx):
        optimizer, scheduler = self.optimizers(), self.lr_schedulers()
        loss = F.cross_entropy(self.scores(batch["x"])[:, : self.seen_classes], batch["y"])
        optimizer.zero_grad()
        self.manual_backward(loss)
        optimizer.step()
        scheduler.step()
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["x"]))

    def evaluation_step(self, batch, dataloader_idx: int = 0):
        return {"top1": self.scores(batch["x"]).argmax(-1), "target": batch["y"]}

    def compute_metrics(self, outputs, loader):
        return {"recall@1": 100.0 * float((outputs["top1"] == outputs["target"]).float().mean()),
                "num_samples": float(len(outputs["target"]))}

    def combine_metrics(self, per_loader):
        s, u = per_loader["seen"]["recall@1"], per_loader["unseen"]["recall@1"]
        return {"hm": 0.0 if s + u == 0 else 2 * s * u / (s + u)}
