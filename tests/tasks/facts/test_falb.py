"""FaLB files (spec ``fact_linking.md`` §2, §9): the streaming record reader (array JSON and JSON Lines), bad
records, facets by glob, triple strings, alias augmentation (golden counts and invariants), polysemy in the
mini real-id KG, ``data check facts`` and ``data prepare facts``."""

from __future__ import annotations

import json
import logging
import shutil
from argparse import Namespace
from pathlib import Path

import pytest

from modalbridge.core.errors import DataError
from modalbridge.datasets.check import CheckReport
from modalbridge.tasks.facts import falb as F
from modalbridge.tasks.facts.kg import KnowledgeGraph

FIXTURES = Path(__file__).parents[2] / "fixtures" / "facts"
MINI_KG, MINI_FALB = FIXTURES / "mini_kg.json", FIXTURES / "mini_falb.json"
#: new records per mini_falb record: (|A_s| + 1)(|A_o| + 1) − 1 with the filtered aliases
#: 0: Jordan 4 (MJ23 dropped) × Bulls 3 → 19; 1: Jordan 4 × Brooklyn 2 → 14; 2: M. I. Jordan 2 (the alias equal
#: to the mention left out) × Berkeley 3 → 11; 3: Messi 3 × FC Barcelona 2 ("Barcelona" = the mention) → 11;
#: 4: Ronaldo 1 (CR7 dropped) × Real Madrid 1 → 3; 5: Messi 3 × Spain 2 → 11
GOLDEN_COUNTS = [19, 14, 11, 11, 3, 11]


@pytest.fixture(scope="module")
def kg() -> KnowledgeGraph:
    return KnowledgeGraph.from_json(MINI_KG)


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return F.read_falb(MINI_FALB)


def record(**changes) -> dict:
    base = {"sentence": "Michael Jordan played for the Chicago Bulls.",
            "extraction": ["Michael Jordan", "played for", "Chicago Bulls"], "fact_ids": ["Q41421", "P54", "Q128109"]}
    return {**base, **changes}


# ============================================================================================ reading
def test_mini_falb_reads(records):
    raw = json.loads(MINI_FALB.read_text(encoding="utf-8"))
    assert len(records) == 6
    assert records[0] == raw[0]
    assert "org_extraction" not in records[1] and records[2]["org_extraction"] == raw[2]["org_extraction"]
    assert "source" not in records[4]  # unknown keys are dropped
    assert [n for n, _ in F.iter_falb(MINI_FALB, chunk_size=16)] == list(range(6))


@pytest.mark.parametrize("name, jsonl", [("t.json", False), ("t.jsonl", True), ("t.json.gz", False),
                                         ("t.jsonl.bz2", True), ("lines.json", True)])
def test_round_trip_array_and_jsonl(records, tmp_path, name, jsonl):
    path = tmp_path / name
    assert F.write_falb(path, records, jsonl=jsonl) == 6
    head = path.read_bytes()[:1] if not name.endswith((".gz", ".bz2")) else None
    if head is not None:
        assert head == (b"{" if jsonl else b"[")
    assert F.read_falb(path) == records  # a .json holding JSON Lines is recognised by its first character


BAD_RECORDS = [
    record(extraction=["Michael Jordan", "played for"]),                      # 1: a missing slot
    record(extraction=["Michael Jordan", " ", "Chicago Bulls"]),               # 2: an empty slot
    {"sentence": "no ids", "extraction": ["a", "b", "c"]},                      # 3: no fact_ids
    record(fact_ids=["Q41421", "Q54", "Q128109"]),                              # 4: predicate is not P…
    record(fact_ids=["41421", "P54", "Q128109"]),                               # 5: entity is not Q…
    record(org_extraction=["a", "b"]),                                          # 6: bad org_extraction
    ["not", "an", "object"],                                                    # 7
    record(sentence=7),                                                         # 8
    record(extraction="Michael Jordan | played for | Chicago Bulls"),           # 9: a string, not a list
]
KINDS = {"bad extraction": 3, "missing field": 1, "bad fact_ids": 2, "bad org_extraction": 1,
         "not an object": 1, "bad sentence": 1}


@pytest.mark.parametrize("jsonl", [False, True])
def test_bad_records_are_counted_skips_or_errors(tmp_path, caplog, jsonl):
    path = tmp_path / ("bad.jsonl" if jsonl else "bad.json")
    F.write_falb(path, [record()] + BAD_RECORDS + [record(sentence="last")], jsonl=jsonl)
    counts, errors = {}, []
    with caplog.at_level(logging.WARNING):
        got = list(F.iter_falb(path, counts=counts, errors=errors))
    assert [n for n, _ in got] == [0, 10] and counts == KINDS
    assert [e.row for e in errors] == (list(range(2, 11)) if jsonl else list(range(3, 12)))  # the lines
    assert str(errors[0]) == (f"{path}: row {errors[0].row}: field extraction: skipped (bad extraction): record 1: "
                              "extraction must be a list of 3 strings [subject, relation, object], got 2 items")
    assert "record 4: relation id 'Q54' is not a predicate id P…" in str(errors[3])
    assert "record 5: subject id '41421' is not an entity id Q…" in str(errors[4])
    assert f"{path}:{errors[0].row}: skipped (bad extraction)" in caplog.text
    with pytest.raises(DataError, match=r"record 1: extraction must be a list of 3 strings") as info:
        list(F.iter_falb(path, strict=True))
    assert info.value.path == path and info.value.field == "extraction"


@pytest.mark.parametrize("jsonl", [False, True])
def test_truncated_files(records, tmp_path, jsonl):
    path = tmp_path / ("cut.jsonl" if jsonl else "cut.json")
    F.write_falb(path, records, jsonl=jsonl)
    text = path.read_text(encoding="utf-8")
    cut = text.rstrip().rstrip("]").rstrip()[:-25]  # inside the last record
    path.write_text(cut, encoding="utf-8")
    counts, errors = {}, []
    assert len(list(F.iter_falb(path, counts=counts, errors=errors))) == 5
    assert counts == {"bad json": 1} and "record 5: not valid JSON" in str(errors[0])
    with pytest.raises(DataError, match=r"record 5: not valid JSON") as info:
        list(F.iter_falb(path, strict=True))
    assert info.value.row == (6 if jsonl else 7) and info.value.path == path
    if not jsonl:  # cut between records: the array has no ']'
        path.write_text(text[:text.rindex(",\n")], encoding="utf-8")
        counts = {}
        assert len(list(F.iter_falb(path, counts=counts))) == 5 and counts == {"truncated file": 1}
        with pytest.raises(DataError, match=r"ends without '\]' after record 4"):
            list(F.iter_falb(path, strict=True))
    with pytest.raises(DataError, match="not found"):
        list(F.iter_falb(tmp_path / "missing.json"))


# ============================================================================================ triples
def test_parse_triple():
    assert F.parse_triple(" Michael Jordan | played for |Chicago Bulls ") == ("Michael Jordan", "played for",
                                                                            "Chicago Bulls")
    for bad, message in [("Michael Jordan | played for Chicago Bulls", "found 1"), ("a | b | c | d", "found 3"),
                         ("a ; b ; c", "found 0"), ("a |  | c", "the relation of"), ("| b | c", "the subject of")]:
        with pytest.raises(DataError, match=message) as info:
            F.parse_triple(bad, path="triples.txt", row=4)
        assert str(info.value).startswith("triples.txt: row 4: ")


# ============================================================================================ aliases
def test_alias_character_filter():
    assert F.alias_ok("Air Jordan") and F.alias_ok("M. I. Jordan") and F.alias_ok("Barça")
    assert F.alias_ok("Lionel Andrés Messi") and F.alias_ok("Wilmington, NC") and F.alias_ok("Chi-Town")
    assert not F.alias_ok("MJ23") and not F.alias_ok("CR7") and not F.alias_ok("  ") and not F.alias_ok("a™")


def test_alias_augmentation_golden_counts_and_invariants(kg, records):
    keep = F.AliasFilter()
    for rec, golden in zip(records, GOLDEN_COUNTS):
        new = F.augment_aliases(rec, kg, alias_filter=keep)
        s_id, _, o_id = rec["fact_ids"]
        a_s = keep.usable(kg, s_id, rec["extraction"][0])
        a_o = keep.usable(kg, o_id, rec["extraction"][2])
        assert len(new) == (len(a_s) + 1) * (len(a_o) + 1) - 1 == golden
        pairs = [(r["extraction"][0], r["extraction"][2]) for r in new]
        assert len(set(pairs)) == len(pairs) and (rec["extraction"][0], rec["extraction"][2]) not in pairs
        for r in new:
            assert r["extraction"][1] == rec["extraction"][1] and r["fact_ids"] == rec["fact_ids"]
            assert r["sentence"] == rec["sentence"] and r["org_extraction"] == rec["extraction"]
            assert r["extraction"][0] in [rec["extraction"][0], *a_s]
            assert r["extraction"][2] in [rec["extraction"][2], *a_o]
            assert not any(ch.isdigit() for ch in r["extraction"][0] + r["extraction"][2])
    assert rec["fact_ids"] == ["Q615", "P27", "Q29"]  # inputs untouched
    everything = list(F.iter_augmented(records, kg))
    assert len(everything) == len(records) + sum(GOLDEN_COUNTS) == 75
    first = F.augment_aliases(records[0], kg)
    assert [r["extraction"][0] for r in first[:4]] == ["Michael Jordan"] * 3 + ["Air Jordan"]  # subject-major
    assert {r["extraction"][2] for r in first} == {"Chicago Bulls", "Bulls", "The Bulls", "CHI"}


def test_alias_token_length_filter(kg, records):
    def tokenizer(text):  # 2 special tokens + one id per word
        return {"input_ids": [0] * (len(text.split()) + 2)}

    new = F.augment_aliases(records[0], kg, tokenizer=tokenizer, max_tokens=4)  # keep ≤ 1 word
    subjects = {r["extraction"][0] for r in new}
    assert subjects == {"Michael Jordan", "MJ"}  # "Air Jordan" (4 ids) is not < 4
    assert len(new) == 2 * 3 - 1  # Bulls, CHI kept; "The Bulls" dropped → A_o = 2
    assert F.augment_aliases(record(fact_ids=["Q7777777", "P54", "Q128109"]), kg) != []  # absent subject: no aliases
    assert len(F.augment_aliases(record(fact_ids=["Q7777777", "P54", "Q7777778"]), kg)) == 0


def test_polysemous_mentions_in_the_mini_kg(kg, records):
    jordan = [r for r in records if r["extraction"][0] == "Michael Jordan"]
    assert {r["fact_ids"][0] for r in jordan} == {"Q41421", "Q3308205"}  # same mention, two gold entities
    assert kg.surface_ids("Michael Jordan") == ["Q41421", "Q3308205"]
    assert kg.surface_ids(records[3]["extraction"][2]) == ["Q7156", "Q1492"]  # "Barcelona": club or city
    assert kg.surface_ids(records[5]["extraction"][2]) == ["Q29"]  # monosemous


# ============================================================================================ folders
def make_root(tmp_path: Path, layout: str = "world") -> Path:
    root = tmp_path / "data"
    falb = root / "falb" if layout == "world" else root
    falb.mkdir(parents=True)
    shutil.copy(MINI_FALB, falb / "train_full.json")
    F.write_falb(falb / "test_transductive.jsonl.gz", F.read_falb(MINI_FALB)[:2])
    (root / "kg").mkdir()
    shutil.copy(MINI_KG, root / "kg" / "wikidata_processed.json")
    (root / "world.json").write_text('{"version": 1}')  # build_world's metadata is not a facet
    return root


def test_facets_by_glob(tmp_path):
    root = make_root(tmp_path)
    assert F.facets(root) == {"test_transductive": root / "falb" / "test_transductive.jsonl.gz",
                              "train_full": root / "falb" / "train_full.json"}
    assert F.find_falb(root) == root / "falb" and F.find_kg(root) == root / "kg" / "wikidata_processed.json"
    assert F.find_kg(root / "falb") == root / "kg" and F.find_kg(tmp_path) is None
    flat = tmp_path / "flat"
    for name in ("val_polysemous.json", "test_out_of_kg.jsonl", "wikidata_processed.json", "facts_summary.json",
                 "notes.txt"):
        (flat / name).parent.mkdir(exist_ok=True)
        (flat / name).write_text("[]")
    assert sorted(F.facets(flat)) == ["test_out_of_kg", "val_polysemous"]
    assert F.find_kg(flat) == flat / "wikidata_processed.json"
    hf = tmp_path / "hf"
    for sub in ("rebel", "synthie"):
        (hf / sub).mkdir(parents=True)
        (hf / sub / "test_inductive.json").write_text("[]")
    assert sorted(F.facets(hf)) == ["rebel/test_inductive", "synthie/test_inductive"]
    assert F.facets(flat / "val_polysemous.json") == {"val_polysemous": flat / "val_polysemous.json"}


def test_check_facts_clean_and_broken(tmp_path):
    root = make_root(tmp_path)
    report = F.check_facts(root)
    assert isinstance(report, CheckReport) and report.problems == []
    assert report.summary["facets"] == 2 and report.summary["records"] == 8
    assert report.summary["train_full records"] == 6 and report.summary["kg entities"] == 23
    assert report.summary["records with ids the KG lacks"] == 0
    bad = root / "falb" / "val_full.json"
    F.write_falb(bad, [record(), record(fact_ids=["Q424242", "P54", "Q128109"]),
                       record(fact_ids=["Q41421", "P999", "Q8"]), record(extraction=["x", "y"])])
    bad.write_text(bad.read_text()[:-30])  # and truncated inside the last record
    report = F.check_facts(root)
    messages = [str(p) for p in report.problems]
    assert f"{bad}: field fact_ids: record 1: the KG has no subject Q424242" in messages
    assert f"{bad}: field fact_ids: record 2: the KG has no relation P999, object Q8" in messages
    assert any(m.startswith(f"{bad}: row 5: skipped (bad json): record 3: not valid JSON") for m in messages)
    assert report.summary["records with ids the KG lacks"] == 2 and report.summary["val_full records"] == 3
    assert report.summary["bad json"] == 1
    (root / "kg" / "wikidata_processed.json").unlink()
    report = F.check_facts(root)
    assert any("no KG" in str(p) and "--wikidata" in str(p) for p in report.problems)
    assert "records with ids the KG lacks" not in report.summary
    (root / "kg" / "wikidata_processed.json").write_text('{"Q1": {"description": "unlabelled"}}')
    assert any("KG entry Q1 has no label" in str(p) for p in F.check_facts(root).problems)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert any("no FaLB files" in str(p) for p in F.check_facts(empty).problems)
    with pytest.raises(DataError, match="dataset folder not found"):
        F.check_facts(tmp_path / "missing")


def test_check_facts_caps_listed_problems(tmp_path):
    root = make_root(tmp_path)
    many = [record(fact_ids=[f"Q9{i:05d}", "P54", "Q128109"]) for i in range(F.MAX_LISTED + 7)]
    F.write_falb(root / "falb" / "val_full.json", many)
    report = F.check_facts(root)
    assert len(report.problems) == F.MAX_LISTED + 1
    assert str(report.problems[-1]).endswith("... and 7 more problems in this file")
    assert report.summary["records with ids the KG lacks"] == F.MAX_LISTED + 7


def test_prepare_facts_indexes_the_folder(tmp_path):
    root = make_root(tmp_path)
    written = F.prepare_facts(root, tmp_path / "out", Namespace())
    summary = json.loads(written["summary"].read_text())
    assert summary["facets"]["train_full"]["records"] == 6 and summary["problems"] == 0
    brkg = KnowledgeGraph.read(written["brkg"])
    referenced = {i for r in F.read_falb(MINI_FALB) for i in r["fact_ids"]}
    assert set(brkg.entity_ids) | set(brkg.predicate_ids) == referenced
    assert written.summary["brkg entities"] == 10 and written.summary["brkg predicates"] == 4
    no_brkg = F.prepare_facts(root, tmp_path / "out2", Namespace(brkg=False))
    assert "brkg" not in no_brkg
    (tmp_path / "nothing").mkdir()
    with pytest.raises(DataError, match="no FaLB files"):
        F.prepare_facts(tmp_path / "nothing")


def test_prepare_facts_converts_a_wikidata_shard(tmp_path):
    from tests.tasks.facts.test_kg import EXPECTED, write_dump

    dump = write_dump(tmp_path / "latest-all.json.bz2")
    for i in range(2):
        written = F.prepare_facts(tmp_path, tmp_path / "out", Namespace(wikidata=str(dump), shard=f"{i}/2"))
        assert written["kg"] == tmp_path / "out" / "kg" / f"wikidata_processed.shard-{i}-of-2.json"
        assert written.summary["shard"] == f"{i}/2"
    assert sorted(KnowledgeGraph.read(F.find_kg(tmp_path / "out")).items()) == sorted(EXPECTED)
    with pytest.raises(DataError, match="--shard"):
        F.prepare_facts(tmp_path, tmp_path / "out", Namespace(wikidata=str(dump), shard="2/2"))
