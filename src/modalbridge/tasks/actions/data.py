"""Clip datasets and Lightning data modules for EPIC-KITCHENS-100 and Something-Something V2 /
Something-Else, reading the real on-disk formats (videos decoded with PyAV).

Batches are dicts::

    {"video": (B, 3, T, H, W) float, "index": (B,) long, "skipped": int,
     "verb": (B,), "noun": (B,)}           # EPIC-KITCHENS-100
     "action": (B,)}                       # Something-Something / Something-Else

``index`` is the position of the clip in its split, so metrics can look up per-clip split masks
(EK Unseen/Tail) and de-duplicate clips that a distributed sampler padded.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate

from modalbridge.core.errors import DataError
from modalbridge.core.worlds import resolve_root
from modalbridge.io.epic_kitchens import EpicKitchens100, EpicSegment
from modalbridge.io.samplers import ek_clip_indices, tsn_indices
from modalbridge.io.something import SomethingSomething, SomethingVideo
from modalbridge.io.transforms import ClipTransform
from modalbridge.io.video import probe, read_frames

log = logging.getLogger(__name__)

ON_ERROR = ("raise", "skip")


class EpochSampler(Sampler[int]):
    """Seeded, epoch-aware and rank-aware sampler.

    The order of epoch ``e`` depends only on ``(seed, e)``, so a run resumed from a checkpoint sees the
    same batches as an uninterrupted one; under DDP each rank takes every ``world_size``-th index of
    the (padded) permutation. ``set_epoch`` also tells the dataset the epoch, so augmentation draws
    are a function of ``(seed, epoch, index)`` whatever the worker layout.
    """

    def __init__(self, dataset: ClipDataset, *, shuffle: bool, seed: int = 0, rank: int = 0,
                 world_size: int = 1):
        self.dataset, self.shuffle, self.seed = dataset, shuffle, seed
        self.rank, self.world_size, self.epoch = rank, world_size, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.dataset.epoch = epoch

    def _indices(self) -> np.ndarray:
        n = len(self.dataset)
        order = (np.random.default_rng([self.seed, self.epoch]).permutation(n) if self.shuffle
                 else np.arange(n))
        pad = (-n) % self.world_size
        if pad:
            order = np.concatenate([order, order[:pad]])
        return order[self.rank::self.world_size]

    def __iter__(self):
        return iter(self._indices().tolist())

    def __len__(self) -> int:
        return -(-len(self.dataset) // self.world_size)


def collate_skipping(samples: list[dict[str, Any] | None]) -> dict[str, Any]:
    """Default collation that drops samples the dataset skipped (``None``) and counts them."""
    kept = [s for s in samples if s is not None]
    skipped = len(samples) - len(kept)
    if not kept:
        return {"skipped": skipped}
    batch = default_collate(kept)
    batch["skipped"] = skipped
    return batch


class ClipDataset(Dataset):
    """Base: decode the sampled frames of item ``i``, augment them, attach labels.

    Subclasses implement ``_clip(i) -> (video_path, frame_indices (T,) 0-based, labels dict)``.
    ``on_error="skip"`` turns an undecodable clip into a logged, counted skip instead of an exception.
    """

    def __init__(self, *, transform: ClipTransform, train: bool, seed: int = 0, on_error: str = "raise"):
        if on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
        self.transform, self.train, self.seed, self.on_error = transform, train, seed, on_error
        self.epoch = 0

    def rng(self, index: int) -> np.random.Generator | None:
        return np.random.default_rng([self.seed, self.epoch, index]) if self.train else None

    def _clip(self, index: int, rng: np.random.Generator | None) -> tuple[Path, np.ndarray, dict[str, int]]:
        raise NotImplementedError

    def __getitem__(self, index: int) -> dict[str, Any] | None:
        rng = self.rng(index)
        path, frames, labels = self._clip(index, rng)
        try:
            video = read_frames(path, frames)
        except (DataError, OSError) as exc:
            if self.on_error == "raise":
                raise
            log.warning("skipping clip %d (%s): %s", index, path, exc)
            return None
        clip = self.transform(video, rng=rng if rng is not None else np.random.default_rng(0))
        return {"video": clip, "index": index, **labels}


class EpicClipDataset(ClipDataset):
    """EPIC-KITCHENS-100 segments: ``num_frames`` frames at ``stride`` inside [start_frame, stop_frame]."""

    def __init__(self, dataset: EpicKitchens100, segments: list[EpicSegment], *, num_frames: int = 32,
                 stride: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.ek, self.segments = dataset, segments
        self.num_frames, self.stride = num_frames, stride

    def __len__(self) -> int:
        return len(self.segments)

    def _clip(self, index, rng):
        seg = self.segments[index]
        offsets = ek_clip_indices(seg.stop_frame - seg.start_frame + 1, self.num_frames, self.stride,
                                  train=self.train, rng=rng)
        return self.ek.video_path(seg.video_id), seg.start_frame - 1 + offsets, {
            "verb": seg.verb_class, "noun": seg.noun_class}


class SomethingClipDataset(ClipDataset):
    """SSv2 / Something-Else videos: ``num_segments`` TSN segments covering the whole video."""

    def __init__(self, dataset: SomethingSomething, videos: list[SomethingVideo], *, num_segments: int = 16,
                 **kwargs):
        super().__init__(**kwargs)
        self.ss, self.videos, self.num_segments = dataset, videos, num_segments

    def __len__(self) -> int:
        return len(self.videos)

    def _clip(self, index, rng):
        video = self.videos[index]
        path = self.ss.video_path(video.id)
        length = probe(path).num_frames
        return path, tsn_indices(length, self.num_segments, train=self.train, rng=rng), {"action": video.class_id}


class _ClipDataModule(L.LightningDataModule):
    """Shared loader plumbing: seeded epoch sampler (rank-aware under DDP), skip-aware collation."""

    heads: dict[str, int]

    def __init__(self, *, batch_size: int, num_workers: int, seed: int, on_error: str):
        super().__init__()
        self.batch_size, self.num_workers, self.seed, self.on_error = batch_size, num_workers, seed, on_error
        self.train_set: ClipDataset | None = None
        self.val_set: ClipDataset | None = None

    def _loader(self, dataset: ClipDataset, *, shuffle: bool) -> DataLoader:
        rank, world = (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)
        sampler = EpochSampler(dataset, shuffle=shuffle, seed=self.seed, rank=rank, world_size=world)
        return DataLoader(dataset, batch_size=self.batch_size, sampler=sampler, num_workers=self.num_workers,
                          collate_fn=collate_skipping, persistent_workers=False,
                          pin_memory=torch.cuda.is_available())

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self.val_dataloader()

    def predict_dataloader(self) -> DataLoader:
        return self.val_dataloader()

    def split_masks(self) -> dict[str, torch.Tensor]:
        """Named boolean masks over the evaluation split (empty if the dataset has none)."""
        return {}


class EpicKitchensDataModule(_ClipDataModule):
    """EPIC-KITCHENS-100 (verb + noun heads).

    Args:
        root: dataset folder (annotation CSVs + ``<participant>/videos/<video_id>.MP4``) or ``world://...``.
        num_frames, stride: clip sampling (paper: 32 frames, stride 2).
        size: crop size (paper 224); flip: horizontal flip in training (EK: on).
        train_split / eval_split: CSV split names.
        on_error: "raise" or "skip" undecodable clips (logged and counted).
    """

    def __init__(self, root: str = "world://kitchen/ek100", *, num_frames: int = 32, stride: int = 2,
                 size: int = 224, scale_range: tuple[float, float] = (1.15, 1.43), flip: bool = True,
                 train_split: str = "train", eval_split: str = "validation", batch_size: int = 16,
                 num_workers: int = 2, seed: int = 0, on_error: str = "raise", annotations_root: str | None = None):
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed, on_error=on_error)
        self.save_hyperparameters()
        self.root = resolve_root(root)
        self.dataset = EpicKitchens100(self.root, annotations_root=annotations_root)
        self.heads = {"verb": len(self.dataset.verbs), "noun": len(self.dataset.nouns)}
        self.class_names = {"verb": self.dataset.verbs, "noun": self.dataset.nouns}

    def setup(self, stage: str | None = None) -> None:
        hp = self.hparams
        common = {"num_frames": hp.num_frames, "stride": hp.stride, "seed": hp.seed, "on_error": hp.on_error}
        if stage in (None, "fit") and self.train_set is None:
            self.train_set = EpicClipDataset(
                self.dataset, self.dataset.segments(hp.train_split), train=True,
                transform=ClipTransform(hp.size, train=True, scale_range=tuple(hp.scale_range), flip=hp.flip),
                **common)
        if self.val_set is None:
            self.val_set = EpicClipDataset(self.dataset, self.dataset.segments(hp.eval_split), train=False,
                                           transform=ClipTransform(hp.size, train=False), **common)

    def split_masks(self) -> dict[str, torch.Tensor]:
        masks = self.dataset.split_masks(self.dataset.segments(self.hparams.eval_split))
        return {k: torch.as_tensor(np.asarray(v, dtype=bool)) for k, v in masks.items() if k != "regular"}


class SomethingDataModule(_ClipDataModule):
    """Something-Something V2 or Something-Else (single ``action`` head; no flips: left/right classes).

    ``variant``: "ssv2" or "something-else/compositional" (see :class:`modalbridge.io.something.SomethingSomething`).
    """

    def __init__(self, root: str = "world://kitchen/ssv2", *, variant: str = "ssv2", num_segments: int = 16,
                 size: int = 224, scale_range: tuple[float, float] = (1.15, 1.43), train_split: str = "train",
                 eval_split: str = "validation", batch_size: int = 16, num_workers: int = 2, seed: int = 0,
                 on_error: str = "raise"):
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed, on_error=on_error)
        self.save_hyperparameters()
        self.root = resolve_root(root)
        self.dataset = SomethingSomething(self.root, variant=variant)
        self.heads = {"action": self.dataset.num_classes}
        self.class_names = {"action": self.dataset.classes}

    def setup(self, stage: str | None = None) -> None:
        hp = self.hparams
        common = {"num_segments": hp.num_segments, "seed": hp.seed, "on_error": hp.on_error}
        if stage in (None, "fit") and self.train_set is None:
            self.train_set = SomethingClipDataset(
                self.dataset, self.dataset.videos(hp.train_split), train=True,
                transform=ClipTransform(hp.size, train=True, scale_range=tuple(hp.scale_range), flip=False),
                **common)
        if self.val_set is None:
            self.val_set = SomethingClipDataset(self.dataset, self.dataset.videos(hp.eval_split), train=False,
                                                transform=ClipTransform(hp.size, train=False), **common)
