"""Text-only EPIC-KITCHENS-100 data for LanViKD stage 1 (the language teacher): narrations and their
verb/noun classes, read from the annotation CSVs — no video is decoded.

Batches are ``{"text": [B strings], "verb": (B,), "noun": (B,), "index": (B,), "skipped": 0}``; ``index``
is the row of the sample in its split (train or eval), as the metrics of
:class:`~modalbridge.core.classifier.ClassifierModule` expect.

Two ways to get a train/eval split:

* ``eval_csv`` given: train on ``train_csv`` (default ``EPIC_100_train.csv``), evaluate on ``eval_csv``
  (the official split, e.g. ``EPIC_100_validation.csv``).
* otherwise: rows of ``csv`` are split by group (``split_by``: participant or video). The eval groups are
  ``eval_participants`` when given, else a seeded ``eval_fraction`` of the groups (chosen by ``seed``).
  Useful where only the validation CSV is available (it is the only real one shipped with the
  repository) — held-out participants are then "unseen kitchens" for the text classifier.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from modalbridge.core.data import SeededDataModule
from modalbridge.core.worlds import resolve_root
from modalbridge.datasets.epic_kitchens import EpicKitchens100, EpicSegment, read_segments
from modalbridge.metrics import majority_baseline

__all__ = ["NarrationDataModule", "NarrationDataset"]

SPLIT_KEYS = ("participant", "video")


class NarrationDataset(Dataset):
    """``{"text", "verb", "noun", "index"}`` per EPIC segment (labels only, no media)."""

    def __init__(self, segments: Sequence[EpicSegment]):
        self.segments = list(segments)
        self.texts = [s.narration for s in self.segments]
        self.verbs = torch.tensor([s.verb_class for s in self.segments], dtype=torch.long)
        self.nouns = torch.tensor([s.noun_class for s in self.segments], dtype=torch.long)

    def __len__(self) -> int:
        return len(self.segments)

    def __getitem__(self, i: int) -> dict[str, Any]:
        i = int(i)
        return {"text": self.texts[i], "verb": int(self.verbs[i]), "noun": int(self.nouns[i]), "index": i}


class NarrationDataModule(SeededDataModule):
    """EPIC-KITCHENS-100 narrations → verb/noun labels (see module docstring).

    Args:
        root: folder with the ``EPIC_100_*.csv`` files (or its ``epic-kitchens-100-annotations`` subfolder),
            or ``world://kitchen/ek100``.
        csv: the segment CSV split by group when ``eval_csv`` is not given.
        split_by: ``participant`` or ``video`` (grouping of the seeded split).
        eval_participants: eval groups (participant ids, or video ids with ``split_by: video``); default a
            seeded ``eval_fraction`` of the groups present in ``csv`` (at least one, never all).
        eval_fraction: share of groups held out when ``eval_participants`` is not given.
        train_csv / eval_csv: use two files as they are (official split) instead of splitting ``csv``;
            ``train_csv`` defaults to ``EPIC_100_train.csv``.
        annotations_root: where the CSVs are when not in ``root``.
        batch_size, num_workers, seed: loaders (seeded :class:`~modalbridge.core.data.EpochSampler`).

    Attributes:
        heads: ``{"verb": V, "noun": N}`` from the class tables (97/300 on the real data).
        class_names: class keys ordered by id.
        eval_groups: the held-out groups (sorted; ``[]`` when ``eval_csv`` is used).
    """

    def __init__(self, root: str = "world://kitchen/ek100", *, csv: str = "EPIC_100_validation.csv",
                 split_by: str = "participant", eval_participants: list[str] | None = None,
                 eval_fraction: float = 0.2, train_csv: str | None = None, eval_csv: str | None = None,
                 annotations_root: str | None = None, batch_size: int = 256, num_workers: int = 0,
                 seed: int = 0):
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed)
        self.save_hyperparameters()
        if split_by not in SPLIT_KEYS:
            raise ValueError(f"split_by must be one of {SPLIT_KEYS}, got {split_by!r}")
        if not 0.0 < eval_fraction < 1.0:
            raise ValueError(f"eval_fraction must be in (0, 1), got {eval_fraction}")
        if eval_csv is not None and eval_participants is not None:
            raise ValueError("give either eval_csv (use train_csv/eval_csv as they are) or eval_participants "
                             "(split csv by group), not both")
        if train_csv is not None and eval_csv is None:
            raise ValueError("train_csv needs eval_csv; without eval_csv the rows of `csv` are split by group")
        self.root = resolve_root(root)
        self.dataset = EpicKitchens100(self.root, annotations_root=annotations_root)
        self.heads = {"verb": len(self.dataset.verbs), "noun": len(self.dataset.nouns)}
        self.class_names = {"verb": list(self.dataset.verbs), "noun": list(self.dataset.nouns)}
        self.eval_groups: list[str] = []
        self._train_segments: list[EpicSegment] | None = None
        self._eval_segments: list[EpicSegment] | None = None

    # ------------------------------------------------------------------ rows
    def _read(self, name: str) -> list[EpicSegment]:
        path = self.dataset.annotation_file(name, what="narrations and labels")
        segments = read_segments(path, num_verbs=self.heads["verb"], num_nouns=self.heads["noun"])
        if segments and not segments[0].labelled:
            raise ValueError(f"{path} has no labels (test timestamps?); pick a train/validation CSV")
        return segments

    def _group(self, s: EpicSegment) -> str:
        return s.participant_id if self.hparams.split_by == "participant" else s.video_id

    def _split(self) -> None:
        if self._train_segments is not None:
            return
        hp = self.hparams
        if hp.eval_csv is not None:
            self._train_segments = self._read(hp.train_csv or "EPIC_100_train.csv")
            self._eval_segments = self._read(hp.eval_csv)
            return
        rows = self._read(hp.csv)
        groups = sorted({self._group(s) for s in rows})
        if len(groups) < 2:
            raise ValueError(f"{hp.csv} has {len(groups)} {hp.split_by}(s); a {hp.split_by} split needs >= 2")
        if hp.eval_participants is not None:
            chosen = sorted(set(hp.eval_participants))
            unknown = [g for g in chosen if g not in groups]
            if unknown:
                raise ValueError(f"eval_participants {unknown} not in {hp.csv} (has {', '.join(groups)})")
            if not chosen or len(chosen) == len(groups):
                raise ValueError("eval_participants must hold out at least one and not every "
                                 f"{hp.split_by}")
        else:
            n = min(len(groups) - 1, max(1, round(hp.eval_fraction * len(groups))))
            pick = np.random.default_rng([hp.seed, 20]).choice(len(groups), size=n, replace=False)
            chosen = sorted(groups[i] for i in pick)
        self.eval_groups = chosen
        held = set(chosen)
        self._train_segments = [s for s in rows if self._group(s) not in held]
        self._eval_segments = [s for s in rows if self._group(s) in held]

    def segments(self, part: str) -> list[EpicSegment]:
        """Segments of ``"train"`` or ``"eval"``."""
        self._split()
        if part not in ("train", "eval"):
            raise ValueError(f"part must be 'train' or 'eval', got {part!r}")
        return self._train_segments if part == "train" else self._eval_segments  # type: ignore[return-value]

    # ------------------------------------------------------------------ Lightning
    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            self.train_set = NarrationDataset(self.segments("train"))
        if self.val_set is None:
            self.val_set = NarrationDataset(self.segments("eval"))

    def split_masks(self) -> dict[str, torch.Tensor]:
        """Tail verb/noun/action masks over the eval rows (when the tail lists exist)."""
        from modalbridge.datasets.epic_kitchens import TAIL_NOUNS_FILE, TAIL_VERBS_FILE

        if not (self.dataset.has_file(TAIL_VERBS_FILE) and self.dataset.has_file(TAIL_NOUNS_FILE)):
            return {}
        rows = self.segments("eval")
        tv, tn = self.dataset.tail_verbs, self.dataset.tail_nouns
        verb = torch.tensor([s.verb_class in tv for s in rows], dtype=torch.bool)
        noun = torch.tensor([s.noun_class in tn for s in rows], dtype=torch.bool)
        return {"tail_verb": verb, "tail_noun": noun, "tail_action_or": verb | noun}

    # ------------------------------------------------------------------ reference
    def majority_baseline(self) -> dict[str, float]:
        """Accuracy (%) on the eval rows of always predicting the most frequent training verb, noun and
        (verb, noun) pair (ties → smallest id)."""
        train, evals = self.segments("train"), self.segments("eval")
        n_noun = self.heads["noun"]

        def labels(rows: list[EpicSegment]) -> dict[str, torch.Tensor]:
            v = torch.tensor([s.verb_class for s in rows], dtype=torch.long)
            n = torch.tensor([s.noun_class for s in rows], dtype=torch.long)
            return {"verb": v, "noun": n, "action": v * n_noun + n}

        tr, ev = labels(train), labels(evals)
        return {h: majority_baseline(tr[h], ev[h]) for h in ("verb", "noun", "action")}
