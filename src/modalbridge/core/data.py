"""Data-loading plumbing shared by every task: a seeded epoch/rank-aware sampler, skip-aware collation
and a LightningDataModule base that wires them together."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate

log = logging.getLogger(__name__)


class EpochSampler(Sampler[int]):
    """Seeded, epoch-aware and rank-aware sampler that tells the dataset the epoch through the index.

    The order of epoch ``e`` depends only on ``(seed, e)``, so a run resumed from a checkpoint sees the
    same batches as an uninterrupted one; under DDP rank ``r`` takes every ``world_size``-th index of the
    permutation padded (by wrapping) to a multiple of ``world_size``. With ``encode_epoch`` it yields
    ``epoch * len(dataset) + index`` so the dataset (e.g. :class:`~modalbridge.io.clips.ClipDataset`)
    derives its augmentation draws from ``(seed, epoch, index)`` in whatever worker process it runs —
    no shared state whose update could race with worker start-up (as ``set_epoch`` does on resume).

    ``epoch_fn`` (e.g. ``lambda: trainer.current_epoch``) is read when iteration starts; without it the
    value given to :meth:`set_epoch` is used.
    """

    def __init__(self, dataset: Dataset, *, shuffle: bool, seed: int = 0, rank: int = 0, world_size: int = 1,
                 encode_epoch: bool = False, epoch_fn: Callable[[], int] | None = None):
        self.dataset, self.shuffle, self.seed = dataset, shuffle, seed
        self.rank, self.world_size, self.epoch = rank, world_size, 0
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
    """Base data module: subclasses fill ``train_set``/``val_set`` in ``setup`` and define ``heads``
    (``{head: num_classes}``) and ``class_names``; loaders use :class:`EpochSampler` (rank-aware, so the
    Trainer must run with ``use_distributed_sampler=False`` — the CLI sets it).

    Contract for datasets: the shuffled (training) loader passes ``epoch * len(dataset) + index``; a
    dataset recovers both with ``epoch, index = divmod(i, len(self))`` (see :class:`~modalbridge.io.clips.ClipDataset`).
    Set ``reload_dataloaders_every_n_epochs=1`` on the Trainer (the CLI does) for exact resume."""

    heads: dict[str, int]
    class_names: dict[str, list[str]]
    #: batch collation of every loader (a module-level function, so worker processes can pickle it)
    collate_fn: Callable[[list[Any]], dict[str, Any]] = staticmethod(collate_skipping)

    def __init__(self, *, batch_size: int, num_workers: int, seed: int, cache_media_gb: float = 0.0):
        super().__init__()
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        if cache_media_gb > 0:
            enable_media_cache(cache_media_gb, num_workers)

    def loader(self, dataset: Dataset, *, shuffle: bool, batch_size: int | None = None) -> DataLoader:
        trainer = getattr(self, "trainer", None)
        rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        sampler = EpochSampler(dataset, shuffle=shuffle, seed=self.seed, rank=rank, world_size=world,
                               encode_epoch=shuffle,
                               epoch_fn=(lambda: _epoch_for_sampling(trainer)) if trainer is not None else None)
        return DataLoader(dataset, batch_size=batch_size or self.batch_size, sampler=sampler,
                          num_workers=self.num_workers, collate_fn=self.collate_fn, persistent_workers=False,
                          pin_memory=torch.cuda.is_available())

    def split_names(self) -> tuple[str, str]:
        """(training split, evaluation split) that :meth:`setup` builds with ``make_dataset``."""
        return self.hparams.train_split, self.hparams.eval_split

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

    def split_masks(self) -> dict[str, torch.Tensor]:
        """Named boolean masks over the evaluation split (e.g. EK Unseen/Tail); empty by default."""
        return {}

    # -- held-out training items (ensemble calibration, thesis Ch. 7) --------------------------------
    holdout: int = 0

    def holdout_part(self, items: list, part: str) -> list:
        """``items`` (the training split) minus the ``holdout`` held-out ones (``part="train"``), only those
        (``"holdout"``), or all (``"all"``); the choice is seeded by the data module's seed."""
        if not self.holdout or part == "all":
            return list(items)
        held = set(np.random.default_rng([self.seed, 7]).permutation(len(items))[: self.holdout].tolist())
        return [x for i, x in enumerate(items) if (i in held) == (part == "holdout")]

    def holdout_dataloader(self) -> DataLoader:
        """Eval-transform loader over the held-out training items (identical on every DDP rank); the
        subclass's ``make_dataset(split, train=False, part="holdout")`` builds it."""
        if not self.holdout:
            raise ValueError("no held-out clips: set holdout > 0 (data.init_args.holdout)")
        ds = self.make_dataset(self.hparams.train_split, train=False, part="holdout")
        return DataLoader(ds, batch_size=self.batch_size, num_workers=self.num_workers, collate_fn=self.collate_fn)


def enable_media_cache(gb: float, num_workers: int = 0) -> None:
    """Turn on the process-wide decoded-media cache (:mod:`modalbridge.io.memory`) with a budget of at
    least ``gb`` GiB (a larger budget already set is kept)."""
    from modalbridge.io.memory import MEDIA_CACHE

    MEDIA_CACHE.configure(max(MEDIA_CACHE.max_bytes, int(gb * 2**30)))
    if num_workers > 0:
        log.warning("cache_media_gb with num_workers=%d: every worker process fills its own cache and loses "
                    "it when the loader is rebuilt; the cache pays off with num_workers=0", num_workers)
