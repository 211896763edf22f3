"""Data-loading plumbing shared by every task: a seeded epoch/rank-aware sampler, skip-aware collation
and a LightningDataModule base that wires them together.

Under DDP the Trainer runs with Lightning's ``use_distributed_sampler=True`` (the CLI's default): a loader
whose sampler is already distributed — :class:`EpochSampler` is a :class:`~torch.utils.data.DistributedSampler`
— is left alone, any other loader (a plain ``DataLoader`` over a ``TensorDataset``) gets Lightning's
``DistributedSampler``, so no data module trains on the whole data on every rank."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, default_collate

log = logging.getLogger(__name__)


class EpochSampler(DistributedSampler):
    """Seeded, epoch-aware and rank-aware sampler that can tell the dataset the epoch through the index.

    The order of epoch ``e`` depends only on ``(seed, e)``, so a run resumed from a checkpoint sees the
    same batches as an uninterrupted one; under DDP rank ``r`` takes every ``world_size``-th index of the
    permutation padded (by wrapping) to a multiple of ``world_size``. With ``encode_epoch`` it yields
    ``epoch * len(dataset) + index`` so the dataset (e.g. :class:`~modalbridge.datasets.clips.ClipDataset`)
    derives its augmentation draws from ``(seed, epoch, index)`` in whatever worker process it runs —
    no shared state whose update could race with worker start-up (as ``set_epoch`` does on resume).
    Encoding is opt-in: a dataset asks for it with the class attribute ``epoch_indexed = True``
    (:class:`SeededDataModule` reads it); every other dataset gets plain indices.

    It subclasses :class:`~torch.utils.data.DistributedSampler` only so that Lightning recognises it as
    already distributed (``DistributedSampler.__init__`` is not called: it would need a process group).

    ``epoch_fn`` (e.g. ``lambda: trainer.current_epoch``) is read when iteration starts; without it the
    value given to :meth:`set_epoch` is used.
    """

    def __init__(self, dataset: Dataset, *, shuffle: bool, seed: int = 0, rank: int = 0, world_size: int = 1,
                 encode_epoch: bool = False, epoch_fn: Callable[[], int] | None = None):
        self.dataset, self.shuffle, self.seed = dataset, shuffle, seed
        self.rank, self.world_size, self.epoch = rank, world_size, 0
        self.num_replicas, self.drop_last = world_size, False  # DistributedSampler's attribute names
        self.encode_epoch, self.epoch_fn = encode_epoch, epoch_fn

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def indices(self, epoch: int | None = None) -> np.ndarray:
        epoch = self.epoch if epoch is None else epoch
        n = len(self.dataset)
        order = np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle else np.arange(n)
        pad = (-n) % self.world_size
        if pad:
            order = np.concatenate([order, np.resize(order, pad)])
        order = order[self.rank::self.world_size]
        return order + epoch * n if self.encode_epoch else order

    def __iter__(self):
        epoch = self.epoch_fn() if self.epoch_fn is not None else self.epoch
        return iter(self.indices(epoch).tolist())

    def __len__(self) -> int:
        return -(-len(self.dataset) // self.world_size)


def _epoch_for_sampling(trainer) -> int:
    """The epoch whose batches are about to be drawn, from the number of training batches completed.

    Neither ``current_epoch`` nor the epoch progress counters are reliable at the moment Lightning
    creates the train iterator after resuming from a checkpoint: the restored epoch is first closed and
    the iterator, already made, serves the next one (whose order must not repeat the previous epoch's).
    The count of completed batches is restored exactly, so ``completed // batches_per_epoch`` is right in
    fresh and resumed runs alike.
    """
    per_epoch = trainer.num_training_batches
    done = trainer.fit_loop.epoch_loop.batch_progress.total.completed
    if isinstance(per_epoch, int) and per_epoch > 0:
        return int(done // per_epoch)
    return int(trainer.current_epoch)


def collate_skipping(samples: list[dict[str, Any] | None]) -> dict[str, Any]:
    """``default_collate`` that drops samples a dataset skipped (``None``) and counts them in
    ``batch["skipped"]``; string fields (e.g. narrations) become lists."""
    kept = [s for s in samples if s is not None]
    batch: dict[str, Any] = default_collate(kept) if kept else {}
    batch["skipped"] = len(samples) - len(kept)
    return batch


class SeededDataModule(L.LightningDataModule):
    """Base data module: subclasses fill ``train_set``/``val_set`` in ``setup`` (or implement
    ``make_dataset(split, train=...)`` and :meth:`split_names`); classifier data modules also define
    ``heads`` (``{head: num_classes}``, linked into the model by the CLI) and ``class_names``. Loaders use
    :class:`EpochSampler` (rank-aware: Lightning leaves it in place under DDP).

    Datasets whose items depend on the epoch (random augmentation) set ``epoch_indexed = True`` and receive
    ``epoch * len(dataset) + index`` from the shuffled loader (``epoch, index = divmod(i, len(self))``, see
    :class:`~modalbridge.datasets.clips.ClipDataset`); any other dataset (a ``TensorDataset``) gets plain
    indices. Set ``reload_dataloaders_every_n_epochs=1`` on the Trainer (the CLI does) for exact resume.

    ``sample_id_key`` names the batch field that identifies a sample (evaluation de-duplicates by it).
    """

    heads: dict[str, int]
    class_names: dict[str, list[str]]
    #: batch field naming each sample (see :class:`~modalbridge.core.engine.TaskModule`)
    sample_id_key: str = "index"
    #: batch collation of every loader (a module-level function, so worker processes can pickle it)
    collate_fn: Callable[[list[Any]], dict[str, Any]] = staticmethod(collate_skipping)

    def __init__(self, *, batch_size: int, num_workers: int, seed: int):
        super().__init__()
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None

    def loader(self, dataset: Dataset, *, shuffle: bool, batch_size: int | None = None) -> DataLoader:
        trainer = getattr(self, "trainer", None)
        rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        sampler = EpochSampler(dataset, shuffle=shuffle, seed=self.seed, rank=rank, world_size=world,
                               encode_epoch=shuffle and bool(getattr(dataset, "epoch_indexed", False)),
                               epoch_fn=(lambda: _epoch_for_sampling(trainer)) if trainer is not None else None)
        return DataLoader(dataset, batch_size=batch_size or self.batch_size, sampler=sampler,
                          num_workers=self.num_workers, collate_fn=self.collate_fn, persistent_workers=False,
                          pin_memory=torch.cuda.is_available())

    def split_names(self) -> tuple[str, str]:
        """(training split, evaluation split) that :meth:`setup` builds with ``make_dataset``."""
        return self.hparams.train_split, self.hparams.eval_split

    def make_dataset(self, split: str, *, train: bool) -> Dataset:
        raise NotImplementedError(f"{type(self).__name__} must fill train_set/val_set in setup() or implement "
                                  "make_dataset(split, train=...)")

    def setup(self, stage: str | None = None) -> None:
        """Build ``train_set`` (fitting only) and ``val_set`` with the subclass's
        ``make_dataset(split, train=...)``; subclasses with other datasets override this."""
        train_split, eval_split = self.split_names()
        if stage in (None, "fit") and self.train_set is None:
            self.train_set = self.make_dataset(train_split, train=True)
        if self.val_set is None:
            self.val_set = self.make_dataset(eval_split, train=False)

    def train_dataloader(self) -> DataLoader:
        return self.loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self.loader(self.val_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self.val_dataloader()

    def predict_dataloader(self) -> DataLoader:
        return self.val_dataloader()


