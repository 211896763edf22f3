"""Processed atlas corpora → samples and :ref:`atlas batches <atlas-batch>` (spec ``text2atlas.md`` §4).

One sample is one document of a processed split (``dataset_<split>.json``, records as
:func:`~modalbridge.tasks.atlas.bioasq.read_records` validates them). Its text is WordPiece-encoded once, up front
(one batched tokenizer call): ``[CLS] … [SEP]``; a text longer than ``max_length`` ids keeps its first
``max_length − 1`` ids and the final ``[SEP]``. Every fetch of a training sample draws, from a generator seeded by
``(seed, epoch, document)`` only (so a resumed run and any worker process draw the same):

* ``N`` points per loss-target organ, uniformly from the organ's full voxel cloud (without replacement when it
  has at least ``N`` voxels), in normalised space — a fresh draw every epoch;
* with ``masking`` ("+M", training only): one Bernoulli(0.5) per distinct keyword, every word equal to a chosen
  keyword replaced by ``[MASK]``, and the masked text encoded again.

Evaluation samples draw their points once (epoch 0) and are never masked. Loss targets are the MeSH organs
(``targets="mesh"``, supervised) or the organs whose names occur in the text (``"occ"``, self-supervised);
evaluation targets are always the MeSH organs of the evaluation atlas. A training record without any loss-target
organ cannot be trained on (the reference would crash on it): it is skipped, counted and logged; an evaluation
record is kept whatever its loss targets.

.. _atlas-batch:

Batch (:func:`collate_atlas`); B documents, T tokens, M loss-target organs (padded), N points, M' evaluation
organs (padded), K organs of the training atlas:

==================  ===================  ===============================================================
key                 shape / dtype        meaning
==================  ===================  ===============================================================
``index``           (B,) long            document ordinal in its split's record list
``input_ids``       (B, T) long          WordPiece ids ``[CLS] … [SEP]``, 0-padded
``attention_mask``  (B, T) bool          real tokens
``points``          (B, M, N, 3) float   normalised points sampled from each loss-target organ
``organ_mask``      (B, M) bool          real (not padded) loss-target organs
``organs``          (B, M) long          loss-target organ indices (training atlas), -1 padded
``eval_organs``     (B, M') long         MeSH organ indices (evaluation atlas), -1 padded
``multi_hot``       (B, K) float         the loss-target organs as a multi-hot row (classifier, triplets)
==================  ===================  ===============================================================

:class:`AtlasDataModule` also runs the thesis's two organ protocols (§4):

* **within-organ** (``merge={"lung+stomach": ["lung", "stomach"]}``): the training atlas merges each group into a
  super-organ (``Atlas.merged``), records' organ indices are remapped into it and de-duplicated; training keeps
  the training records that contain a merged organ; validation and test keep the records whose MeSH organ set is
  exactly one merged organ ({A} or {B}), scored against the UNMERGED atlas. ``merge_targets=False`` keeps the
  same selections with unmerged targets (the thesis's "SOD-Unmerged").
* **held-out organ** (``held_out="liver"``): training drops the records whose only organ is the held-out one and
  strips it from the others' targets; validation drops every record that mentions it (no model selection on the
  held-out organ); the test keeps the records whose only organ is it.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import Dataset

from modalbridge.core.data import SeededDataModule
from modalbridge.core.errors import DataError
from modalbridge.core.worlds import resolve_root
from modalbridge.nn.bert import load_tokenizer
from modalbridge.tasks.atlas.bioasq import mask_keywords, read_records

log = logging.getLogger(__name__)

__all__ = ["AtlasDataModule", "AtlasSamples", "TARGETS", "collate_atlas", "encode_texts", "split_path"]

TARGETS = ("mesh", "occ")
_TARGET_FIELD = {"mesh": "organ_indices", "occ": "occ_organ_indices"}


def encode_texts(tokenizer, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """WordPiece ids ``[CLS] … [SEP]`` of every text (one batched call); longer than ``max_length``: the first
    ``max_length − 1`` ids and the final ``[SEP]`` (the tokenizer's own truncation does exactly that)."""
    if not texts:
        return []
    return tokenizer(list(texts), add_special_tokens=True, truncation=True, max_length=max_length)["input_ids"]


def _index_array(values: Sequence[int]) -> np.ndarray:
    return np.asarray(values, dtype=np.int64).reshape(-1)


class AtlasSamples(Dataset):
    """The documents of one split as samples (module docstring).

    Args:
        records: processed records (``text``, ``keywords``, ``organ_indices``, ``occ_organ_indices``; indices in the
            evaluation atlas's order).
        atlas: the atlas the loss-target points are sampled from (the training atlas; merged organs under the
            within-organ protocol).
        tokenizer: a Hugging Face BERT tokenizer.
        train: draw fresh points every epoch, mask (if ``masking``) and skip records without loss targets.
        targets: ``"mesh"`` (``organ_indices``) or ``"occ"`` (``occ_organ_indices``) as loss targets.
        points: N, points sampled per loss-target organ.
        masking: "+M" keyword masking (training only).
        max_length: WordPiece ids per document, ``[CLS]``/``[SEP]`` included.
        seed: draws depend on ``(seed, epoch, document)`` only.
        remap: ``(K_eval,)`` record organ index → ``atlas`` organ index (-1: not a target, e.g. the held-out organ);
            default the identity. Remapped targets are de-duplicated (two organs merged into one count once).
    """

    epoch_indexed = True

    def __init__(self, records: Sequence[dict], atlas, tokenizer, *, train: bool, targets: str = "mesh",
                 points: int = 100, masking: bool = False, max_length: int = 512, seed: int = 0,
                 remap: np.ndarray | None = None):
        if targets not in TARGETS:
            raise ValueError(f"targets must be one of {'|'.join(TARGETS)}, got {targets!r}")
        if points < 1:
            raise ValueError(f"points must be at least 1, got {points}")
        if max_length < 2:
            raise ValueError(f"max_length must leave room for [CLS] and [SEP], got {max_length}")
        self.atlas, self.tokenizer, self.train, self.targets = atlas, tokenizer, train, targets
        self.points, self.masking, self.max_length, self.seed = points, masking and train, max_length, seed
        self.num_organs = int(atlas.num_organs)
        self.remap = None if remap is None else np.asarray(remap, dtype=np.int64)
        field = _TARGET_FIELD[targets]
        targets_of = [self._targets(r[field]) for r in records]
        keep = [i for i, t in enumerate(targets_of) if t.size or not train]
        self.skipped = len(records) - len(keep)
        if self.skipped:
            log.info("%d of %d training records have no %s target organ and are skipped", self.skipped,
                     len(records), targets)
        #: positions (in ``records``) of the samples: the batch's ``index``
        self.ordinals = np.asarray(keep, dtype=np.int64)
        self.records = [records[i] for i in keep]
        self.target_organs = [targets_of[i] for i in keep]
        self.eval_organs = [_index_array(r["organ_indices"]) for r in self.records]
        ids = encode_texts(tokenizer, [r["text"] for r in self.records], max_length)
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        #: every document's ids, concatenated (int32; a document is ``ids[starts[i]:starts[i + 1]]``)
        self.ids = np.fromiter(itertools.chain.from_iterable(ids), dtype=np.int32, count=int(lengths.sum()))
        self.starts = np.concatenate([[0], np.cumsum(lengths)])

    def _targets(self, indices: Sequence[int]) -> np.ndarray:
        """Record organ indices → unique loss-target organ indices of ``atlas`` (order of first appearance)."""
        idx = _index_array(indices)
        if self.remap is not None:
            idx = self.remap[idx]
            idx = idx[idx >= 0]
        _, first = np.unique(idx, return_index=True)
        return idx[np.sort(first)]

    def __len__(self) -> int:
        return len(self.records)

    def sample_points(self, organs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``(M, N, 3)`` float32 normalised points, ``N`` from each organ (a loop over one document's few organs)."""
        if not organs.size:
            return np.zeros((0, self.points, 3), dtype=np.float32)
        return np.stack([self.atlas.sample(int(o), self.points, rng) for o in organs]).astype(np.float32)

    def text_ids(self, position: int, rng: np.random.Generator | None = None) -> np.ndarray:
        """The document's ids; masked and re-encoded when ``rng`` is given and masking is on."""
        ids = self.ids[self.starts[position]:self.starts[position + 1]]
        if rng is None or not self.masking:
            return ids
        record = self.records[position]
        masked = mask_keywords(record["text"], record.get("keywords") or [], rng)
        if masked == record["text"]:
            return ids
        return np.asarray(encode_texts(self.tokenizer, [masked], self.max_length)[0], dtype=np.int32)

    def __getitem__(self, i: int) -> dict[str, Any]:
        epoch, position = divmod(int(i), len(self))
        if not self.train:
            epoch = 0
        key = [self.seed, epoch, int(self.ordinals[position])]
        point_rng = np.random.default_rng(key + [0])
        mask_rng = np.random.default_rng(key + [1]) if self.train else None
        organs = self.target_organs[position]
        hot = np.zeros(self.num_organs, dtype=np.float32)
        hot[organs] = 1.0
        return {"index": int(self.ordinals[position]),
                "input_ids": np.asarray(self.text_ids(position, mask_rng), dtype=np.int64),
                "points": self.sample_points(organs, point_rng), "organs": organs,
                "eval_organs": self.eval_organs[position], "multi_hot": hot}


def collate_atlas(samples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Pad samples into an atlas batch (module docstring's table)."""
    def padded(key: str, value: float, dtype: torch.dtype) -> torch.Tensor:
        parts = [torch.as_tensor(s[key], dtype=dtype) for s in samples]
        return pad_sequence(parts, batch_first=True, padding_value=value)

    input_ids = padded("input_ids", 0, torch.long)
    organs = padded("organs", -1, torch.long)
    return {"index": torch.as_tensor([s["index"] for s in samples], dtype=torch.long),
            "input_ids": input_ids, "attention_mask": input_ids != 0,
            "points": padded("points", 0.0, torch.float32), "organ_mask": organs >= 0, "organs": organs,
            "eval_organs": padded("eval_organs", -1, torch.long),
            "multi_hot": torch.as_tensor(np.stack([s["multi_hot"] for s in samples]), dtype=torch.float32)}


def split_path(root: Path, split: str) -> Path:
    """The processed records of a split: ``<root>/dataset_<split>.json`` (``data prepare atlas``)."""
    path = root / f"dataset_{split}.json"
    if path.is_file():
        return path
    if (root / "processed" / path.name).is_file():
        hint = f"; the processed files are in its processed/ folder: give {root / 'processed'}"
    else:
        hint = "; give the folder written by `modalbridge data prepare atlas <raw root>` (or world://atlas/processed)"
    raise DataError(f"no processed split {split!r} (looked for {path.name}){hint}", path=root)


class AtlasDataModule(SeededDataModule):
    """Processed atlas corpora (``modalbridge data prepare atlas`` or ``world://atlas/processed``).

    Args:
        root: the processed folder: ``atlas.npz`` and ``dataset_{train,val,test}.json``.
        tokenizer: BERT folder or alias for :func:`~modalbridge.nn.bert.load_tokenizer` (must match the model's).
        targets, points, masking, max_length: see :class:`AtlasSamples` (paper: ``mesh``, 100, off, 512).
        merge: within-organ protocol, ``{super-organ name: [organ names]}`` (module docstring).
        merge_targets: under ``merge``, train on the merged organs (False: same selections, unmerged targets).
        held_out: held-out-organ protocol, the organ's name (module docstring).
        max_records: keep only the first records of every split after the protocol's selection (smoke runs).

    Attributes: ``atlas`` (the evaluation atlas), ``train_atlas`` (the atlas loss targets are sampled from and
    classifiers predict over), ``heads = {"organ": train_atlas.num_organs}``.
    """

    collate_fn = staticmethod(collate_atlas)
    eval_split, test_split = "val", "test"

    def __init__(self, root: str = "world://atlas/processed", tokenizer: str = "minilm-l6", targets: str = "mesh",
                 points: int = 100, masking: bool = False, max_length: int = 512,
                 merge: dict[str, list[str]] | None = None, merge_targets: bool = True, held_out: str | None = None,
                 max_records: int | None = None, batch_size: int = 128, num_workers: int = 0, seed: int = 0):
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed)
        if targets not in TARGETS:
            raise ValueError(f"targets must be one of {'|'.join(TARGETS)}, got {targets!r}")
        if merge and held_out:
            raise ValueError("merge (within-organ protocol) and held_out (held-out organ protocol) are separate "
                             "experiments; give one of them")
        self.save_hyperparameters()
        self.test_set: AtlasSamples | None = None
        self._tokenizer = None
        self._atlas = None
        self._train_atlas = None

    # -- what the data is ---------------------------------------------------------------------------------------
    @property
    def root(self) -> Path:
        root = resolve_root(self.hparams.root)
        if not root.is_dir():
            raise DataError("processed atlas folder not found (run `modalbridge data prepare atlas <raw root>` or "
                            "use world://atlas/processed)", path=root)
        return root

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.hparams.tokenizer)
        return self._tokenizer

    @property
    def atlas(self):
        """The evaluation atlas (``<root>/atlas.npz``; unmerged)."""
        if self._atlas is None:
            from modalbridge.tasks.atlas.atlas import Atlas

            path = self.root / "atlas.npz"
            if not path.is_file():
                raise DataError("no atlas.npz in the processed folder (written by `modalbridge data prepare atlas`)",
                                path=path)
            self._atlas = Atlas.load(path)
            if self.hparams.held_out is not None:
                self._atlas.organ_index(self.hparams.held_out)  # a DataError listing the organs if unknown
        return self._atlas

    @property
    def train_atlas(self):
        """The atlas loss targets are sampled from: ``atlas.merged(merge)`` under the within-organ protocol."""
        if self._train_atlas is None:
            merge = self.hparams.merge
            self._train_atlas = self.atlas.merged(dict(merge)) if merge and self.hparams.merge_targets \
                else self.atlas
        return self._train_atlas

    @property
    def heads(self) -> dict[str, int]:
        """``{"organ": K}``: the classifier's output size (the CLI links it into the module's ``heads``)."""
        return {"organ": int(self.train_atlas.num_organs)}

    def remap(self) -> np.ndarray | None:
        """``(K_eval,)`` evaluation-atlas organ index → training-atlas index under ``merge``
        (``Atlas.index_map_after_merge``), else None."""
        if not self.hparams.merge or not self.hparams.merge_targets:
            return None
        return self.atlas.index_map_after_merge(dict(self.hparams.merge))

    def _merged_members(self) -> np.ndarray:
        return np.asarray(sorted({self.atlas.organ_index(n) for names in self.hparams.merge.values() for n in names}),
                          dtype=np.int64)

    # -- records and protocols ------------------------------------------------------------------------------------
    def records(self, split: str) -> list[dict]:
        """A split's validated records (indices checked against the evaluation atlas's organs)."""
        counts: dict[str, int] = {}
        records = read_records(split_path(self.root, split), organs=self.atlas.organs, counts=counts)
        if counts:
            log.info("%s split: skipped %s", split, ", ".join(f"{v} {k}" for k, v in counts.items()))
        return records

    def protocol_records(self, split: str, *, train: bool) -> tuple[list[dict], np.ndarray | None]:
        """``(records, remap)`` of a split under the configured protocol (module docstring)."""
        h = self.hparams
        records = self.records(split)
        remap = self.remap()
        sets = [set(r["organ_indices"]) for r in records]
        if h.merge:
            members = set(self._merged_members().tolist())
            if train:
                keep = [bool(s & members) for s in sets]
            else:
                keep = [len(s) == 1 and s <= members for s in sets]
            records = [r for r, k in zip(records, keep) if k]
        elif h.held_out is not None:
            o = self.atlas.organ_index(h.held_out)
            if train:
                records = [r for r, s in zip(records, sets) if s != {o}]
                remap = np.arange(self.atlas.num_organs, dtype=np.int64)
                remap[o] = -1  # stripped from the remaining records' targets
            elif split == self.test_split:
                records = [r for r, s in zip(records, sets) if s == {o}]
            else:
                records = [r for r, s in zip(records, sets) if o not in s]
        if h.max_records:
            records = records[: h.max_records]
        if not records:
            raise DataError(f"the {split} split has no record for this protocol "
                            f"(merge={h.merge}, held_out={h.held_out!r})", path=split_path(self.root, split))
        return records, remap

    def make_dataset(self, split: str, *, train: bool) -> AtlasSamples:
        h = self.hparams
        records, remap = self.protocol_records(split, train=train)
        return AtlasSamples(records, self.train_atlas, self.tokenizer, train=train, targets=h.targets, points=h.points,
                            masking=h.masking, max_length=h.max_length, seed=h.seed, remap=remap)

    def train_organ_counts(self) -> np.ndarray:
        """``(K,)`` how many training records (of this protocol) have each training-atlas organ among their MeSH
        organs (the frequency baseline)."""
        records, remap = self.protocol_records("train", train=True)
        k = self.train_atlas.num_organs
        lists = [r["organ_indices"] for r in records]
        idx = _index_array([i for organs in lists for i in organs])
        doc = np.repeat(np.arange(len(lists)), [len(organs) for organs in lists])
        if remap is not None:
            idx = remap[idx]
        pairs = np.unique(doc[idx >= 0] * k + idx[idx >= 0])  # one count per record and organ
        return np.bincount(pairs % k, minlength=k)

    # -- Lightning -------------------------------------------------------------------------------------------------
    def split_names(self) -> tuple[str, str]:
        return "train", self.eval_split

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit", "validate"):
            super().setup(stage)
        if stage in (None, "test", "predict") and self.test_set is None:
            self.test_set = self.make_dataset(self.test_split, train=False)

    def test_dataloader(self):
        return self.loader(self.test_set, shuffle=False)

    predict_dataloader = test_dataloader
