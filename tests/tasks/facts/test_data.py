"""The facts data module (spec ``fact_linking.md`` §2–§4): facets read as string columns with gold ids resolved to
KG rows, the query texts (± context), counted skips (ids the KG lacks, broken records, a truncated file), facet
and KG errors, the benchmark-restricted KG, the query batch table and KG entry batches — on a hand-written FaLB
folder with a six-entry KG, and on the facts world."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from modalbridge.core.errors import DataError
from modalbridge.tasks.facts.data import (
    FacetRecords,
    FactsDataModule,
    QueryCollator,
    QueryDataset,
    facts_tokenizer,
)
from modalbridge.tasks.facts.kg import KnowledgeGraph
from modalbridge.tasks.facts.models import MARKER_TOKENS, QUERY_MARKERS

from .conftest import tiny_datamodule

#: a six-entry KG: Q5 is referenced by no record, P3 neither, P1 has no description
KG = {
    "Q1": {"label": "Ada Lovelace", "description": "English mathematician", "aliases": ["Ada", "Countess Lovelace"]},
    "Q2": {"label": "London", "description": "capital of England", "aliases": []},
    "Q3": {"label": "Analytical Engine", "description": "mechanical computer", "aliases": ["the Engine"]},
    "Q4": {"label": "Charles Babbage", "description": "English polymath", "aliases": ["Babbage"]},
    "Q5": {"label": "Paris", "description": "capital of France", "aliases": []},
    "P1": {"label": "place of birth", "description": "", "aliases": ["birthplace"]},
    "P2": {"label": "notable work", "description": "a work the subject is known for", "aliases": []},
    "P3": {"label": "employer", "description": "who pays the subject", "aliases": []},
}


def rec(sentence, extraction, fact_ids, org=None) -> dict:
    out = {"sentence": sentence, "extraction": extraction, "fact_ids": fact_ids}
    if org is not None:
        out["org_extraction"] = org
    return out


TRAIN = [
    rec("Ada Lovelace was born in London in 1815.", ["Ada", "was born in", "London"], ["Q1", "P1", "Q2"],
        ["Ada Lovelace", "was born in", "London"]),
    rec("Charles Babbage designed the Analytical Engine.", ["Babbage", "designed", "Analytical Engine"],
        ["Q4", "P2", "Q3"], ["Charles Babbage", "designed", "Analytical Engine"]),
    rec("Ada Lovelace wrote about the engine.", ["Ada Lovelace", "wrote about", "the engine"],
        ["Q1", "P2", "Q77"]),  # Q77 is not in the KG
    rec("Babbage was born in London.", ["Babbage", "was born in", "London"], ["Q4", "P1", "Q2"]),  # no org
]
VAL = [rec("Babbage lived in London.", ["Babbage", "lived in", "London"], ["Q4", "P1", "Q2"])]
TEST = [rec("", ["the Engine", "is the work of", "Ada"], ["Q3", "P2", "Q1"])]


def write_array(path: Path, records: list[dict]) -> Path:
    """A FaLB file: one JSON array, one record per line (the world's and FaLB's layout)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("[\n" + ",\n".join(json.dumps(r) for r in records) + "\n]\n")
    return path


@pytest.fixture
def root(tmp_path) -> Path:
    folder = tmp_path / "falb_root"
    (folder / "kg").mkdir(parents=True)
    (folder / "kg" / "wikidata_processed.json").write_text(json.dumps(KG))
    for name, records in (("train_full", TRAIN), ("val_full", VAL), ("test_small", TEST)):
        write_array(folder / "falb" / f"{name}.json", records)
    return folder


def datamodule(root: Path, **kwargs) -> FactsDataModule:
    return FactsDataModule(**{"root": str(root), "train": "train_full", "val": "val_full", "test": ("test_small",),
                              "batch_size": 2, **kwargs})


# -- facets as columns --------------------------------------------------------------------------------------------
def test_facet_records_are_columns_with_gold_kg_rows(root, caplog):
    dm = datamodule(root)
    with caplog.at_level(logging.WARNING):
        records = dm.records("train_full")
    assert len(records) == 3 and records.numbers.tolist() == [0, 1, 3]  # record 2 lacks Q77
    assert records.texts["subject"].tolist() == ["Ada", "Babbage", "Babbage"]
    assert records.texts["relation"].tolist() == ["was born in", "designed", "was born in"]
    assert records.texts["object"].tolist() == ["London", "Analytical Engine", "London"]
    assert records.texts["org_subject"].tolist() == ["Ada Lovelace", "Charles Babbage", ""]  # no org_extraction
    assert records.texts["sentence"][1] == TRAIN[1]["sentence"]
    assert records.gold.dtype == np.int64 and records.gold.shape == (3, 3)
    kg = dm.kg
    ids = [[kg.entity_ids[s], kg.predicate_ids[p], kg.entity_ids[o]] for s, p, o in records.gold.tolist()]
    assert ids == [TRAIN[n]["fact_ids"] for n in (0, 1, 3)]
    assert records.counts == {"id not in KG": 1}
    skipped = [r for r in caplog.records if "id not in KG" in r.getMessage()]
    assert len(skipped) == 1 and "train_full.json" in skipped[0].getMessage()
    assert "record 2" in skipped[0].getMessage() and "Q77" in skipped[0].getMessage()
    assert records.triple(2) == ("Babbage", "was born in", "London")


def test_max_records_keeps_the_first_records_of_every_facet(root):
    dm = datamodule(root, max_records=2)
    assert dm.records("train_full").numbers.tolist() == [0, 1]
    assert len(dm.records("val_full")) == 1


def test_world_facet_matches_its_file(facts_root):
    dm = tiny_datamodule(facts_root, max_records=200)
    records = dm.records("test_polysemous")
    raw = json.loads((facts_root / "falb" / "test_polysemous.json").read_text())[:200]
    assert len(records) == 200 and records.numbers.tolist() == list(range(200))
    assert [records.triple(i) for i in range(200)] == [tuple(r["extraction"]) for r in raw]
    assert records.texts["org_object"].tolist() == [r["org_extraction"][2] for r in raw]
    kg = dm.kg
    for col, table in ((0, kg.entities), (1, kg.predicates), (2, kg.entities)):
        assert table.ids.take(records.gold[:, col]).tolist() == [r["fact_ids"][col] for r in raw]


# -- query texts --------------------------------------------------------------------------------------------------
def test_query_texts_with_and_without_context(root):
    plain = QueryDataset(datamodule(root).records("train_full"))
    assert plain[0]["text"] == "<SUBJ> Ada <PRED> was born in <OBJ> London"
    context = datamodule(root, context=True)
    records = context.records("train_full")
    # the sentence's "Ada Lovelace" becomes the alias mention "Ada" of the extraction
    assert records.query_text(0, True) == ("<SUBJ> Ada <PRED> was born in <OBJ> London <SENT> Ada was born in "
                                           "London in 1815.")
    assert records.query_text(1, True) == ("<SUBJ> Babbage <PRED> designed <OBJ> Analytical Engine <SENT> Babbage "
                                           "designed the Analytical Engine.")
    # no org_extraction: the sentence as it is
    assert records.query_text(2, True).endswith("<SENT> Babbage was born in London.")
    context.setup("fit")
    item = context.train_set[0]
    assert item["text"].count("<SENT>") == 1 and item["triple"] == ("Ada", "was born in", "London")
    # a record without a sentence gets no <SENT> part
    assert context.records("test_small").query_text(0, True) == "<SUBJ> the Engine <PRED> is the work of <OBJ> Ada"


# -- skips and errors ---------------------------------------------------------------------------------------------
def test_broken_records_and_a_truncated_file_are_counted_skips(root):
    kg = KnowledgeGraph.read(root / "kg")
    bad = [rec("s", ["Ada", "was born in"], ["Q1", "P1", "Q2"]),  # a missing slot
           {"sentence": "no ids", "extraction": ["Ada", "was born in", "London"]},
           TRAIN[0]]
    path = write_array(root / "falb" / "val_broken.json", bad)
    records = FacetRecords(path, kg)
    assert len(records) == 1 and records.numbers.tolist() == [2]
    assert records.counts == {"bad extraction": 1, "missing field": 1}
    whole = write_array(root / "falb" / "val_cut.json", [TRAIN[0], TRAIN[1], TRAIN[3]])
    text = whole.read_text()
    whole.write_text(text[:text.index(json.dumps(TRAIN[3]))])  # cut after the second record's comma
    cut = FacetRecords(whole, kg)
    assert len(cut) == 2 and cut.counts == {"truncated file": 1}
    assert cut.texts["subject"].tolist() == ["Ada", "Babbage"]


def test_unknown_facet_and_empty_facet_are_data_errors(root):
    dm = datamodule(root)
    with pytest.raises(DataError, match=r"no facet 'test_nope' \(found: test_small, train_full, val_full\)"):
        dm.records("test_nope")
    write_array(root / "falb" / "test_empty.json", [rec("x", ["a", "b", "c"], ["Q9", "P1", "Q1"])])
    with pytest.raises(DataError, match="facet 'test_empty' has no usable record"):
        datamodule(root).records("test_empty")  # a fresh module: the facet list is read once


def test_kg_errors_name_the_entry_or_the_folder(root, tmp_path):
    (root / "kg" / "wikidata_processed.json").write_text(json.dumps({**KG, "Q6": {"description": "no label"}}))
    with pytest.raises(DataError, match="KG entry Q6 has no label") as info:
        _ = datamodule(root).kg
    assert "wikidata_processed.json" in str(info.value)
    (root / "kg" / "wikidata_processed.json").unlink()
    with pytest.raises(DataError, match="no KG found"):
        _ = datamodule(root).kg
    with pytest.raises(DataError, match="dataset folder not found"):
        datamodule(tmp_path / "missing").records("train_full")
    with pytest.raises(ValueError, match="kg_scope"):
        datamodule(root, kg_scope="small")


# -- KG scope -----------------------------------------------------------------------------------------------------
def test_brkg_keeps_referenced_entities_and_every_predicate(root):
    dm = datamodule(root, kg_scope="brkg")
    kg = dm.kg
    # Q1–Q4 are referenced by train/val/test (Q77 is not in the KG), Q5 by nothing; P3 by nothing but kept
    assert kg.entity_ids.tolist() == ["Q1", "Q2", "Q3", "Q4"]
    assert kg.predicate_ids.tolist() == ["P1", "P2", "P3"]
    records = dm.records("test_small")
    assert [kg.entity_ids[records.gold[0, 0]], kg.entity_ids[records.gold[0, 2]]] == ["Q3", "Q1"]


def test_world_brkg_is_the_referenced_part_of_the_large_kg(facts_root):
    large = tiny_datamodule(facts_root).kg
    dm = tiny_datamodule(facts_root, kg_scope="brkg")
    referenced = set()
    for name in (dm.hparams.train, dm.hparams.val, *dm.hparams.test):
        for r in json.loads((facts_root / "falb" / f"{name}.json").read_text()):
            referenced.update((r["fact_ids"][0], r["fact_ids"][2]))
    assert set(dm.kg.entity_ids.tolist()) == referenced
    assert len(dm.kg.entities) < len(large.entities)
    assert dm.kg.predicate_ids.tolist() == large.predicate_ids.tolist()


# -- batches ------------------------------------------------------------------------------------------------------
def test_query_batch_keys_shapes_and_dtypes(facts_root):
    dm = tiny_datamodule(facts_root, max_records=16, batch_size=5)
    dm.setup("fit")
    batch = next(iter(dm.val_dataloader()))
    assert set(batch) == {"index", "gold", "query_ids", "query_mask", "marker_pos", "triples"}
    b, t = batch["query_ids"].shape
    assert b == 5 and t <= dm.hparams.query_max_length
    assert batch["index"].tolist() == [0, 1, 2, 3, 4] and batch["index"].dtype == torch.long
    assert batch["gold"].shape == (5, 3) and batch["gold"].dtype == torch.long
    assert batch["gold"].tolist() == dm.val_set.records.gold[:5].tolist()
    assert batch["query_ids"].dtype == torch.long and batch["query_mask"].dtype == torch.bool
    assert batch["query_mask"].shape == (b, t)
    pad = dm.tokenizer.pad_token_id
    assert torch.equal(batch["query_mask"], batch["query_ids"] != pad)
    assert batch["marker_pos"].shape == (5, 3) and batch["marker_pos"].dtype == torch.long
    markers = dm.tokenizer.convert_tokens_to_ids(list(QUERY_MARKERS))
    found = batch["query_ids"].gather(1, batch["marker_pos"])
    assert found.tolist() == [markers] * 5
    assert batch["triples"] == [dm.val_set.records.triple(i) for i in range(5)]
    assert all(isinstance(t, tuple) and len(t) == 3 for t in batch["triples"])


def test_queries_are_truncated_to_max_length_and_keep_their_markers(root):
    dm = datamodule(root, context=True, query_max_length=16)
    collate = QueryCollator(dm.tokenizer, dm.hparams.query_max_length)
    items = [QueryDataset(dm.records("train_full"), context=True)[i] for i in range(3)]
    batch = collate(items)
    assert batch["query_ids"].shape[1] == 16
    markers = dm.tokenizer.convert_tokens_to_ids(list(QUERY_MARKERS))
    assert batch["query_ids"].gather(1, batch["marker_pos"]).tolist() == [markers] * 3


def test_entry_texts_and_batches(root):
    dm = datamodule(root, entry_max_length=6)
    kg = dm.kg
    ada, birth = kg.entities.index_of("Q1"), kg.predicates.index_of("P1")
    assert dm.entry_texts("entity", [ada]) == ["Ada Lovelace <ENT> English mathematician"]
    assert dm.entry_texts("predicate", [birth]) == ["place of birth <REL> None"]  # no description
    assert dm.entry_texts("entity", [ada], "zero_shot") == ["Ada Lovelace; English mathematician"]
    batch = dm.entry_batch("entity", np.arange(len(kg.entities)))
    assert set(batch) == {"entry_ids", "entry_mask"}
    assert batch["entry_ids"].shape == (5, 6) and batch["entry_ids"].dtype == torch.long
    assert batch["entry_mask"].dtype == torch.bool and bool(batch["entry_mask"][:, :6].all())  # all cut at 6
    ent = dm.tokenizer.convert_tokens_to_ids("<ENT>")
    short = datamodule(root).entry_batch("entity", [ada])
    assert ent in short["entry_ids"][0].tolist() and short["entry_ids"][0, 0] == dm.tokenizer.cls_token_id


def test_tokenizer_holds_every_marker_once():
    tokenizer = facts_tokenizer()
    ids = tokenizer.convert_tokens_to_ids(list(MARKER_TOKENS))
    assert len(set(ids)) == len(MARKER_TOKENS) and min(ids) >= tokenizer.vocab_size
    assert len(tokenizer) == tokenizer.vocab_size + len(MARKER_TOKENS)
    assert tokenizer.tokenize("<SUBJ> ada <PRED>") == ["<SUBJ>", "ada", "<PRED>"]


def test_loaders_follow_the_stage(root):
    dm = datamodule(root, test=("test_small", "val_full"))
    dm.setup("test")
    loaders = dm.test_dataloader()
    assert len(loaders) == 2 and [len(loader.dataset) for loader in loaders] == [1, 1]
    assert dm.train_set is None  # testing reads no training facet
    assert dm.eval_loader_names == ["val_full"]  # outside a testing trainer: the validation facet
    assert dm.train_gold().tolist() == dm.records("train_full").gold.tolist()
