"""Data modules of the toy tasks."""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from modalbridge.core.data import SeededDataModule
from modalbridge.core.worlds import resolve_root


class Rows(Dataset):
    """``{"x": (D,), "y": scalar or int, "index": i}`` per row."""

    def __init__(self, x: np.ndarray, y: np.ndarray):
        self.x, self.y = torch.as_tensor(x), torch.as_tensor(y)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        return {"x": self.x[i], "y": self.y[i], "index": i}


class RegressionData(L.LightningDataModule):
    """A plain LightningDataModule with plain DataLoaders (fixed order, so a resumed run sees the same batches;
    a ``shuffle=True`` loader would reshuffle from the global RNG): under DDP Lightning gives it a
    DistributedSampler."""

    def __init__(self, root: str = "world://toy", batch_size: int = 8):
        super().__init__()
        self.root, self.batch_size = root, batch_size

    def setup(self, stage: str | None = None) -> None:
        z = np.load(resolve_root(self.root) / "regression.npz")
        self.train_set, self.val_set = Rows(z["x_train"], z["y_train"]), Rows(z["x_val"], z["y_val"])

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=self.batch_size)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=self.batch_size)

    test_dataloader = val_dataloader


class RetrievalData(SeededDataModule):
    """Queries of the seen classes for training; two evaluation loaders: ``seen`` and ``unseen`` queries."""

    eval_loader_names = ("seen", "unseen")

    def __init__(self, root: str = "world://toy", seen_classes: int = 4, batch_size: int = 16, seed: int = 0):
        super().__init__(batch_size=batch_size, num_workers=0, seed=seed)
        self.save_hyperparameters()

    def setup(self, stage: str | None = None) -> None:
        z = np.load(resolve_root(self.hparams.root) / "retrieval.npz")
        self.protos = torch.as_tensor(z["protos"])
        q, y = z["queries"], z["labels"]
        seen = y < self.hparams.seen_classes
        n_train = int(seen.sum()) // 2
        train = np.flatnonzero(seen)[:n_train]
        self.train_set = Rows(q[train], y[train])
        self.eval_sets = [Rows(q[np.flatnonzero(seen)[n_train:]], y[np.flatnonzero(seen)[n_train:]]),
                          Rows(q[~seen], y[~seen])]

    def val_dataloader(self) -> list[DataLoader]:
        return [self.loader(ds, shuffle=False) for ds in self.eval_sets]

    test_dataloader = val_dataloader
