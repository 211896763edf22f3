"""FaLB facets → batches of the facts task (spec ``fact_linking.md`` §2–§4): :class:`FacetRecords` (one facet file
held as string columns, gold ids resolved to KG rows), :class:`QueryDataset` and :class:`FactsDataModule`.

A facet is read once with :func:`~modalbridge.tasks.facts.falb.iter_falb` (streamed: FaLB's 2.3 GB
``train_full.json`` is never parsed as one document) into :class:`~modalbridge.tasks.facts.kg.StringColumn` s — the
texts of all records in one UTF-8 byte array per field, no Python object per record — and an ``(n, 3)`` array of
gold KG rows. A record whose gold id is not in the KG is a counted, logged skip naming the file and record (``data
check facts`` lists them all); ``max_records`` keeps the first records of each facet (smoke runs).

.. _facts-batch:

**Query batch** (B records, T query tokens):

================  ================  =========================================================================
key               shape/dtype       meaning
================  ================  =========================================================================
``index``         (B,) long         record ordinal in its facet (evaluation de-duplicates by it)
``gold``          (B, 3) long       gold KG rows: subject (entity row), predicate (predicate row), object
``query_ids``     (B, T) long       ``"<SUBJ> s <PRED> r <OBJ> o"`` (+ ``" <SENT> " sentence`` with ``context``)
``query_mask``    (B, T) bool       real tokens
``marker_pos``    (B, 3) long       positions of <SUBJ>, <PRED>, <OBJ>
``triples``       list of B tuples  the surface triples (s, r, o) as strings (baselines, re-ranker, reports)
================  ================  =========================================================================

KG entries are tokenised on demand (:meth:`FactsDataModule.entry_batch`): the pre-ranker's ``"label <ENT>
description"`` / ``"label <REL> description"`` or the zero-shot ``"label; description"``, 32 tokens.

KG scope (``kg_scope``): ``large`` — the whole KG file; ``brkg`` — the benchmark-restricted KG: the entities
referenced by any fact of the train, val and test facets (card §2.1; the reference builds it from the same
files) with the KG's full predicate inventory (the thesis's relation columns are identical for both KG sizes).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from modalbridge.core.data import SeededDataModule
from modalbridge.core.errors import DataError
from modalbridge.core.worlds import resolve_root
from modalbridge.io.records import SkipCounter
from modalbridge.nn.bert import load_tokenizer
from modalbridge.tasks.facts.falb import facets, find_kg, iter_falb
from modalbridge.tasks.facts.kg import KnowledgeGraph, StringColumn
from modalbridge.tasks.facts.models import (
    MARKER_TOKENS,
    add_marker_tokens,
    format_entry,
    format_query,
    tokenize_entries,
    tokenize_queries,
    zero_shot_entry_text,
)

log = logging.getLogger(__name__)

__all__ = ["KG_SCOPES", "FacetRecords", "FactsDataModule", "QueryCollator", "QueryDataset", "facts_tokenizer"]

KG_SCOPES = ("large", "brkg")
_FIELDS = ("sentence", "subject", "relation", "object", "org_subject", "org_object")


def facts_tokenizer(name: str = "minilm-l6"):
    """The BERT tokenizer ``name`` (:func:`~modalbridge.nn.bert.load_tokenizer`) with every marker token of the
    task added (:data:`~.models.MARKER_TOKENS`, in that order), so its size equals the models' default embedding
    table (vocabulary + 8)."""
    tokenizer = load_tokenizer(name)
    add_marker_tokens(tokenizer, tokens=MARKER_TOKENS)
    return tokenizer


class FacetRecords:
    """One FaLB facet as columns: ``texts[field]`` (:class:`StringColumn` per field of ``_FIELDS``; ``org_*`` are
    ``""`` when the record has no ``org_extraction``), ``gold`` (n, 3) int64 KG rows, ``numbers`` (n,) the
    records' positions in the file.

    Args:
        path: the facet file. kg: the KG the gold ids are resolved against. max_records: keep the first ones.
        counts: skip counts by kind (``id not in KG`` added to the reader's kinds).
    """

    def __init__(self, path: str | Path, kg: KnowledgeGraph, *, max_records: int | None = None,
                 counts: dict | None = None):
        self.path = Path(path)
        counts = {} if counts is None else counts
        skip = SkipCounter(counts, None, log)
        columns: dict[str, list[str]] = {f: [] for f in _FIELDS}
        ids: list[list[str]] = []
        numbers: list[int] = []
        batch: list[tuple[int, dict]] = []

        def flush() -> None:
            if not batch:
                return
            facts = [r["fact_ids"] for _, r in batch]
            rows = np.stack([kg.entities.indices_of([f[0] for f in facts]),
                             kg.predicates.indices_of([f[1] for f in facts]),
                             kg.entities.indices_of([f[2] for f in facts])], axis=1)
            for (number, record), row in zip(batch, rows):
                if (row < 0).any():
                    absent = [i for i, r in zip(record["fact_ids"], row) if r < 0]
                    skip("id not in KG", self.path, None, f"record {number}: fact id(s) {absent} are not in the KG",
                         "fact_ids")
                    continue
                s, r, o = record["extraction"]
                org = record.get("org_extraction") or ("", "", "")
                for field, value in zip(_FIELDS, (record.get("sentence") or "", s, r, o, org[0], org[2])):
                    columns[field].append(value)
                ids.append(row)
                numbers.append(number)
            batch.clear()

        for number, record in iter_falb(self.path, counts=counts):
            if max_records is not None and len(numbers) + len(batch) >= max_records:
                break
            batch.append((number, record))
            if len(batch) >= 4096:
                flush()
        flush()
        self.texts = {f: StringColumn.from_strings(v) for f, v in columns.items()}
        self.gold = np.asarray(ids, dtype=np.int64).reshape(-1, 3)
        self.numbers = np.asarray(numbers, dtype=np.int64)
        self.counts = counts
        if counts:
            log.info("%s: %d records kept; skipped %s", self.path.name, len(self),
                     ", ".join(f"{v} {k}" for k, v in counts.items()))

    def __len__(self) -> int:
        return len(self.gold)

    def triple(self, i: int) -> tuple[str, str, str]:
        return self.texts["subject"][i], self.texts["relation"][i], self.texts["object"][i]

    def query_text(self, i: int, context: bool) -> str:
        """Record ``i``'s pre-ranker query (:func:`~.models.format_query`; with its sentence when ``context``)."""
        s, r, o = self.triple(i)
        if not context:
            return format_query(s, r, o)
        original = (self.texts["org_subject"][i], r, self.texts["org_object"][i])
        return format_query(s, r, o, self.texts["sentence"][i], original=original if original[0] else None)


class QueryDataset(Dataset):
    """Items ``{"index", "gold", "text", "triple"}`` of a :class:`FacetRecords` (collated by
    :class:`QueryCollator`)."""

    def __init__(self, records: FacetRecords, context: bool = False):
        self.records, self.context = records, bool(context)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"index": int(i), "gold": self.records.gold[i], "text": self.records.query_text(i, self.context),
                "triple": self.records.triple(i)}


class QueryCollator:
    """Items → a :ref:`query batch <facts-batch>` (one batched tokenizer call; picklable for loader workers)."""

    def __init__(self, tokenizer, max_length: int = 128):
        self.tokenizer, self.max_length = tokenizer, int(max_length)

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        batch = tokenize_queries(self.tokenizer, [it["text"] for it in items], self.max_length)
        batch["index"] = torch.as_tensor([it["index"] for it in items], dtype=torch.long)
        batch["gold"] = torch.as_tensor(np.stack([it["gold"] for it in items]), dtype=torch.long)
        batch["triples"] = [it["triple"] for it in items]
        return batch


class FactsDataModule(SeededDataModule):
    """FaLB facets and their KG (``modalbridge data prepare facts`` output, a FaLB download, or ``world://facts``).

    Args:
        root: a FaLB folder (facet files under ``root``, ``root/falb`` or ``root/<dataset>/``) with its KG
            (:func:`~.falb.find_kg`), e.g. ``world://facts``.
        train, val: facet names of the training and validation files (e.g. ``rebel/train_full``).
        test: facet names evaluated by ``modalbridge test`` (one test loader each, logged ``test/<facet>/…``).
        kg: the KG file or folder (default: found under ``root``). kg_scope: ``large`` | ``brkg`` (module
            docstring).
        tokenizer: BERT folder or alias (must match the model's encoder). context: queries carry their sentence
            (the "+ Context" model). query_max_length, entry_max_length: token limits (reference: 128, 32).
        max_records: keep the first records of every facet (smoke runs).
    """

    eval_split = "val"

    def __init__(self, root: str = "world://facts", train: str = "train_full", val: str = "val_full",
                 test: Sequence[str] = ("test_transductive", "test_inductive", "test_polysemous"),
                 kg: str | None = None, kg_scope: str = "large", tokenizer: str = "minilm-l6", context: bool = False,
                 query_max_length: int = 128, entry_max_length: int = 32, max_records: int | None = None,
                 batch_size: int = 16, num_workers: int = 0, seed: int = 0):
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed)
        if kg_scope not in KG_SCOPES:
            raise ValueError(f"kg_scope must be one of {'|'.join(KG_SCOPES)}, got {kg_scope!r}")
        if isinstance(test, str):
            test = (test,)
        self.save_hyperparameters()
        self.test_sets: list[QueryDataset] = []
        self._tokenizer = None
        self._kg: KnowledgeGraph | None = None
        self._facets: dict[str, Path] | None = None
        self._records: dict[str, FacetRecords] = {}

    # -- what the data is ---------------------------------------------------------------------------------------
    @property
    def root(self) -> Path:
        root = resolve_root(self.hparams.root)
        if not root.exists():
            raise DataError("FaLB dataset folder not found (a folder of facet files such as train_full.json, or "
                            "world://facts)", path=root)
        return root

    @property
    def facet_files(self) -> dict[str, Path]:
        if self._facets is None:
            self._facets = facets(self.root)
        return self._facets

    def facet_path(self, name: str) -> Path:
        files = self.facet_files
        if name not in files:
            raise DataError(f"no facet {name!r} (found: {', '.join(sorted(files)) or 'none'})", path=self.root,
                            field="data.init_args")
        return files[name]

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            self._tokenizer = facts_tokenizer(self.hparams.tokenizer)
        return self._tokenizer

    @property
    def kg(self) -> KnowledgeGraph:
        """The KG of this run (``kg_scope`` applied)."""
        if self._kg is None:
            path = Path(self.hparams.kg).expanduser() if self.hparams.kg else find_kg(self.root)
            if path is None:
                raise DataError("no KG found beside the FaLB files (expected kg/wikidata_processed.json, a kg/ "
                                "folder or wikidata_processed.json; or give data.init_args.kg)", path=self.root)
            kg = KnowledgeGraph.read(path)
            if self.hparams.kg_scope == "brkg":
                kg = self._restricted(kg)
            self._kg = kg
        return self._kg

    def _restricted(self, kg: KnowledgeGraph) -> KnowledgeGraph:
        """The entities referenced by the train/val/test facets, and every predicate."""
        h = self.hparams
        wanted: set[str] = set()
        for name in dict.fromkeys([h.train, h.val, *h.test]):
            for _, record in iter_falb(self.facet_path(name)):
                wanted.update((record["fact_ids"][0], record["fact_ids"][2]))
        return kg.subset([*wanted, *kg.predicate_ids], strict=False)

    def records(self, name: str) -> FacetRecords:
        """A facet's records (cached)."""
        if name not in self._records:
            self._records[name] = FacetRecords(self.facet_path(name), self.kg, max_records=self.hparams.max_records)
            if not len(self._records[name]):
                raise DataError(f"facet {name!r} has no usable record", path=self.facet_path(name))
        return self._records[name]

    def entry_texts(self, kind: str, rows: np.ndarray | Sequence[int], style: str = "linker") -> list[str]:
        """KG entry texts of ``rows`` of the ``kind`` table: ``style="linker"`` (``"label <ENT> description"``)
        or ``"zero_shot"`` (``"label; description"``)."""
        table = self.kg.table(kind)
        rows = np.asarray(rows, dtype=np.int64)
        labels, descriptions = table.labels.take(rows), table.descriptions.take(rows)
        if style == "zero_shot":
            return [zero_shot_entry_text(lab, desc) for lab, desc in zip(labels, descriptions)]
        return [format_entry(lab, desc, kind) for lab, desc in zip(labels, descriptions)]

    def entry_batch(self, kind: str, rows: np.ndarray | Sequence[int], style: str = "linker") -> dict[str, torch.Tensor]:
        """``{"entry_ids" (K, T'), "entry_mask" (K, T')}`` of ``rows`` (:meth:`entry_texts`)."""
        return tokenize_entries(self.tokenizer, self.entry_texts(kind, rows, style), self.hparams.entry_max_length)

    def train_gold(self) -> np.ndarray:
        """``(m, 3)`` gold KG rows of the training facet (the Frequency baseline)."""
        return self.records(self.hparams.train).gold

    # -- Lightning -------------------------------------------------------------------------------------------------
    @property
    def collate_fn(self):  # noqa: D102  (an instance collator: it holds the tokenizer)
        return QueryCollator(self.tokenizer, self.hparams.query_max_length)

    @property
    def eval_loader_names(self) -> list[str]:
        trainer = getattr(self, "trainer", None)
        if trainer is not None and trainer.testing:
            return list(self.hparams.test)
        return [self.hparams.val]

    def split_names(self) -> tuple[str, str]:
        return self.hparams.train, self.hparams.val

    def make_dataset(self, split: str, *, train: bool) -> QueryDataset:
        return QueryDataset(self.records(split), context=self.hparams.context)

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit", "validate"):
            super().setup(stage)
        if stage in (None, "test", "predict") and not self.test_sets:
            self.test_sets = [self.make_dataset(name, train=False) for name in self.hparams.test]

    def test_dataloader(self):
        return [self.loader(d, shuffle=False) for d in self.test_sets]
