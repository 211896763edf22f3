"""Lightning data modules for EPIC-KITCHENS-100 and Something-Something V2 / Something-Else clips
(real on-disk formats; datasets in :mod:`modalbridge.io.clips`). Shared by every video task (the
actions baseline, distillation, layouts), hence here and not in a task folder.

Batches are dicts ``{"rgb": (B, 3, T, S, S), "index": (B,), "skipped": int, <labels>}`` with labels
``verb``/``noun`` (EK) or ``action`` (SSv2/Something-Else); ``index`` lets metrics look up per-clip
split masks (EK Unseen/Tail) and de-duplicate clips a distributed sampler padded.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch.utils.data import DataLoader

from modalbridge.core.data import SeededDataModule, collate_skipping
from modalbridge.core.errors import DataError
from modalbridge.core.worlds import resolve_root
from modalbridge.io.clips import EpicClips, SomethingClips
from modalbridge.io.epic_kitchens import EpicKitchens100
from modalbridge.io.something import SomethingSomething

log = logging.getLogger(__name__)


class EpicKitchensDataModule(SeededDataModule):
    """EPIC-KITCHENS-100 (verb + noun heads).

    Args:
        root: dataset folder (annotation CSVs + ``<participant>/videos/<video_id>.MP4``) or ``world://...``.
        modalities: which inputs each sample carries (``rgb``, ``flow``, ``audio``, ``text``).
        num_frames, stride: clip sampling (paper: 32 frames, stride 2).
        size: crop size (paper 224); scale_range: training short-side scale; flip: horizontal flips (EK: on).
        audio_size: spectrogram image size (paper 224).
        train_split / eval_split: CSV split names.
        on_error: "raise" or "skip" unreadable clips (logged and counted).
        holdout: number of training clips (seeded choice) kept out of training for ensemble
            calibration (thesis Ch. 7: Z = 1000); served by :meth:`holdout_dataloader`.
    """

    def __init__(self, root: str = "world://kitchen/ek100", *, modalities: tuple[str, ...] = ("rgb",),
                 num_frames: int = 32, stride: int = 2, size: int = 224,
                 scale_range: tuple[float, float] = (1.15, 1.43), flip: bool = True, color_jitter: bool = True,
                 audio_size: int = 224, train_split: str = "train", eval_split: str = "validation",
                 batch_size: int = 16, num_workers: int = 2, seed: int = 0, on_error: str = "raise",
                 annotations_root: str | None = None, holdout: int = 0):
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed)
        self.save_hyperparameters()
        self.root = resolve_root(root)
        self.dataset = EpicKitchens100(self.root, annotations_root=annotations_root)
        self.heads = {"verb": len(self.dataset.verbs), "noun": len(self.dataset.nouns)}
        self.class_names = {"verb": list(self.dataset.verbs), "noun": list(self.dataset.nouns)}

    def segments(self, split: str, part: str = "all") -> list:
        """Segments of ``split``; for the train split ``part`` selects "train" (minus held-out) or "holdout"."""
        segs = self.dataset.segments(split)
        if split != self.hparams.train_split or not self.hparams.holdout or part == "all":
            return segs
        held = set(np.random.default_rng([self.hparams.seed, 7]).permutation(len(segs))[: self.hparams.holdout])
        return [s for i, s in enumerate(segs) if (i in held) == (part == "holdout")]

    def make_dataset(self, split: str, *, train: bool, part: str = "all") -> EpicClips:
        hp = self.hparams
        if split == hp.train_split and part == "all" and train:
            part = "train"
        return EpicClips(self.dataset, self.segments(split, part), modalities=tuple(hp.modalities),
                         num_frames=hp.num_frames, stride=hp.stride, size=hp.size, train=train,
                         scale_range=tuple(hp.scale_range), flip=hp.flip and train,
                         color_jitter=hp.color_jitter, audio_size=hp.audio_size, seed=hp.seed,
                         on_error=hp.on_error)

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit") and self.train_set is None:
            self.train_set = self.make_dataset(self.hparams.train_split, train=True)
        if self.val_set is None:
            self.val_set = self.make_dataset(self.hparams.eval_split, train=False)

    def holdout_dataloader(self) -> DataLoader:
        """Eval-transform loader over the held-out training clips (identical on every DDP rank)."""
        if not self.hparams.holdout:
            raise ValueError("no held-out clips: set holdout > 0 (data.init_args.holdout)")
        ds = self.make_dataset(self.hparams.train_split, train=False, part="holdout")
        return DataLoader(ds, batch_size=self.batch_size, num_workers=self.num_workers, collate_fn=collate_skipping)

    def split_masks(self) -> dict[str, torch.Tensor]:
        """EK Unseen/Seen/Tail masks over the eval split; {} (with a warning) when the optional lists
        (unseen participants, tail classes) are not in the dataset folder."""
        try:
            masks = self.dataset.split_masks(self.dataset.segments(self.hparams.eval_split))
        except (DataError, FileNotFoundError) as exc:
            log.warning("no Unseen/Tail split metrics: %s", exc)
            return {}
        return {k: torch.as_tensor(np.asarray(v, dtype=bool)) for k, v in masks.items() if k != "regular"}


class SomethingDataModule(SeededDataModule):
    """Something-Something V2 or Something-Else (single ``action`` head; never flipped).

    ``variant``: "ssv2" or "something-else/compositional" (see :class:`~modalbridge.io.something.SomethingSomething`).
    """

    def __init__(self, root: str = "world://kitchen/ssv2", *, variant: str = "ssv2",
                 modalities: tuple[str, ...] = ("rgb",), num_segments: int = 16, size: int = 224,
                 scale_range: tuple[float, float] = (1.15, 1.43), color_jitter: bool = True,
                 train_split: str = "train", eval_split: str = "validation", batch_size: int = 16,
                 num_workers: int = 2, seed: int = 0, on_error: str = "raise"):
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed)
        self.save_hyperparameters()
        self.root = resolve_root(root)
        self.dataset = SomethingSomething(self.root, variant=variant)
        self.heads = {"action": self.dataset.num_classes}
        self.class_names = {"action": list(self.dataset.classes)}

    def make_dataset(self, split: str, *, train: bool) -> SomethingClips:
        hp = self.hparams
        return SomethingClips(self.dataset, self.dataset.videos(split), modalities=tuple(hp.modalities),
                              num_segments=hp.num_segments, size=hp.size, train=train,
                              scale_range=tuple(hp.scale_range), color_jitter=hp.color_jitter, seed=hp.seed,
                              on_error=hp.on_error)

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit") and self.train_set is None:
            self.train_set = self.make_dataset(self.hparams.train_split, train=True)
        if self.val_set is None:
            self.val_set = self.make_dataset(self.hparams.eval_split, train=False)
