"""The facts task's KG store (spec ``fact_linking.md`` §2.3, §9, §10): the mini real-id KG, columns, lookups,
subsets, KG JSON round trips, bad KG files and the Wikidata dump converter with sharding."""

from __future__ import annotations

import bz2
import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from modalbridge.core.errors import DataError
from modalbridge.tasks.facts import kg as K
from modalbridge.tasks.facts.kg import KnowledgeGraph, StringColumn

FIXTURES = Path(__file__).parents[2] / "fixtures" / "facts"
MINI_KG = FIXTURES / "mini_kg.json"


@pytest.fixture(scope="module")
def kg() -> KnowledgeGraph:
    return KnowledgeGraph.from_json(MINI_KG)


def entries(graph: KnowledgeGraph) -> list:
    return list(graph.items())


# ============================================================================================ the mini KG
def test_mini_kg_reads_with_real_ids(kg):
    raw = json.loads(MINI_KG.read_text(encoding="utf-8"))
    assert len(kg.entities) == sum(k.startswith("Q") for k in raw) == 23
    assert len(kg.predicates) == 10 and len(kg) == len(raw)
    assert list(kg.entity_ids)[:3] == ["Q41421", "Q3308205", "Q128109"]  # file order
    assert kg.label("Q41421") == "Michael Jordan" and kg.label("P54") == "member of sports team"
    assert kg.aliases("Q128109") == ["Bulls", "The Bulls", "CHI"]
    assert kg.description("Q5372") == "team sport played by throwing a ball through a raised hoop"  # <s> </s> gone
    assert kg.description("Q45") == "" and kg.aliases("P17") == ["sovereign state"]
    assert kg.entry_text("Q41421") == "Michael Jordan <ENT> American basketball player, born 1963"
    assert kg.entry_text("P19", "predicate") == ("place of birth <REL> most specific known place where the "
                                                 "subject was born")
    assert kg.entry_text("Q45", "entity") == "Portugal <ENT> None"  # a missing description reads None
    assert kg.entry_texts("predicate", [1, 0]) == [kg.entry_text("P19"), kg.entry_text("P54")]
    assert len(kg.entry_texts("entity")) == 23
    assert kg.stats() == {"entities": 23, "entity aliases": 54, "entities without description": 1,
                          "predicates": 10, "predicate aliases": 24, "predicates without description": 0}


def test_polysemy_two_ids_share_a_mention(kg):
    assert kg.surface_ids("Michael Jordan") == ["Q41421", "Q3308205"]  # label of one, alias of the other
    assert kg.surface_ids("  barcelona ") == ["Q7156", "Q1492"]  # case-folded, spaces collapsed
    assert kg.surface_ids("Chicago") == ["Q1297"] and kg.surface_ids("Air Jordan") == ["Q41421"]
    assert kg.surface_ids("played for", "predicate") == ["P54"] and kg.surface_ids("nobody") == []


def test_lookups(kg):
    assert kg.index_of("Q3308205") == 1 and kg.index_of("P19") == 1
    assert "Q41421" in kg and "Q1" not in kg and "X1" not in kg and "P54" in kg
    rows = kg.indices_of(["Q60", "Q6000000000000", "P54", "Q41421", ""], "entity")
    assert rows.tolist() == [6, -1, -1, 0, -1]  # a P id is not an entity
    assert kg.indices_of(["P31", "P54"], "predicate").tolist() == [9, 0]
    with pytest.raises(KeyError, match="unknown KG id 'Q1'"):
        kg.label("Q1")
    with pytest.raises(KeyError, match="unknown"):
        kg.aliases("Z5")
    with pytest.raises(KeyError, match="a predicate id"):
        kg.entry_text("P54", "entity")


# ============================================================================================ columns
def test_string_column_take_and_concat_match_python():
    words = ["", "é", "Barça", "x" * 40, "日本", "a b"]
    col = StringColumn.from_strings(words)
    assert list(col) == words and len(col) == 6 and col[-1] == "a b"
    rows = np.array([5, 1, 1, 0, 4])
    assert col.take(rows).tolist() == [words[i] for i in rows]
    assert col[1:4].tolist() == words[1:4] and col.take(np.zeros(0, np.int64)).tolist() == []
    both = StringColumn.concat([col, StringColumn.from_strings(["z"]), col[2:3]])
    assert both.tolist() == words + ["z", "Barça"]
    keys = col.keys()
    assert keys.dtype == np.dtype("S40") and keys[2] == "Barça".encode()
    with pytest.raises(IndexError):
        col[6]


# ============================================================================================ round trips
@pytest.mark.parametrize("name", ["kg.json", "kg.json.gz", "kg.json.bz2"])
def test_json_round_trip(kg, tmp_path, name):
    path = kg.to_json(tmp_path / name)
    again = KnowledgeGraph.from_json(path, chunk_size=7)
    assert entries(again) == entries(kg)
    assert not list(tmp_path.glob("*.part*"))  # written to a part file, then renamed


def test_save_and_memory_mapped_load(kg, tmp_path):
    folder = kg.save(tmp_path / "cols")
    loaded = KnowledgeGraph.read(folder)
    assert isinstance(loaded.entities.labels.data, np.memmap)
    assert entries(loaded) == entries(kg)
    assert loaded.label("Q18419") == "Brooklyn" and loaded.index_of("P31") == 9
    assert loaded.surface_ids("Michael Jordan") == ["Q41421", "Q3308205"]
    assert entries(KnowledgeGraph.load(folder, mmap=False)) == entries(kg)
    with pytest.raises(DataError, match="not a saved KG"):
        KnowledgeGraph.load(tmp_path)


def test_subset_is_a_brkg(kg):
    ids = ["Q128109", "P54", "Q41421", "Q41421", "P19", "Q18419"]
    brkg = kg.subset(ids)
    assert list(brkg.entity_ids) == ["Q41421", "Q128109", "Q18419"]  # the KG's order, repeats once
    assert list(brkg.predicate_ids) == ["P54", "P19"]
    for entry_id in set(ids):
        assert brkg.entry_text(entry_id) == kg.entry_text(entry_id)
        assert brkg.aliases(entry_id) == kg.aliases(entry_id)
    assert brkg.index_of("Q18419") == 2
    with pytest.raises(DataError, match=r"2 id\(s\) are not in the KG .*'Q999', 'P999'"):
        kg.subset(ids + ["Q999", "P999"])
    assert len(kg.subset(["Q999", "Q5"], strict=False)) == 1


def test_folder_of_shards_and_repeated_ids(kg, tmp_path):
    rows = list(kg.items())
    K.write_kg_json(tmp_path / "shards" / "kg.shard-0-of-2.json", rows[::2])
    K.write_kg_json(tmp_path / "shards" / "kg.shard-1-of-2.json", rows[1::2])
    (tmp_path / "shards" / "kg.shard-0-of-2.summary.json").write_text("{}")  # ignored
    merged = KnowledgeGraph.read(tmp_path / "shards")
    assert sorted(entries(merged)) == sorted(entries(kg))
    K.write_kg_json(tmp_path / "shards" / "kg.shard-2-of-2.json", rows[3:4])
    with pytest.raises(DataError, match=f"id {rows[3][0]} occurs 2 times"):
        KnowledgeGraph.read(tmp_path / "shards")
    with pytest.raises(DataError, match="KG not found"):
        KnowledgeGraph.read(tmp_path / "nothing")


# ============================================================================================ bad KG files
@pytest.mark.parametrize("data, message", [
    ({"Q1": {"label": "a"}, "Q2": {"description": "no label"}}, r"field Q2.label: KG entry Q2 has no label"),
    ({"Q1": {"label": " <s></s> "}}, r"KG entry Q1 has no label"),
    ({"P7": {"label": 5}}, r"KG entry P7 has a label of type int"),
    ({"Q1": {"label": "a", "aliases": "b"}}, r"KG entry Q1: aliases must be a list of strings"),
    ({"Q1": {"label": "a", "description": ["x"]}}, r"description must be a string"),
    ({"Q1": ["a"]}, r"KG entry Q1: expected an object"),
])
def test_bad_entries_name_file_and_id(tmp_path, data, message):
    path = tmp_path / "wikidata_processed.json"
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match=message) as info:
        KnowledgeGraph.from_json(path)
    assert info.value.path == path


def test_other_keys_are_counted_and_truncated_files_refused(tmp_path, caplog):
    path = tmp_path / "kg.json"
    path.write_text(json.dumps({"Q1": {"label": "a"}, "L5": {"label": "lexeme"}, "meta": 1, "P2": {"label": "b"}}))
    counts = {}
    graph = KnowledgeGraph.from_json(path, counts=counts)
    assert counts == {"not a Q/P id": 2} and len(graph) == 2 and "skipped KG key 'L5'" in caplog.text
    text = MINI_KG.read_text(encoding="utf-8")
    path.write_text(text[: text.index('"Q18419"') + 30])
    with pytest.raises(DataError, match=r"entry 3 \(after key 'Q128109'\): the value of 'Q18419' is not valid "
                                        r"JSON .*truncated") as info:
        KnowledgeGraph.from_json(path)
    assert info.value.row == 5
    path.write_text('{"Q1": {"label": "a"},\n"Q1": {"label": "b"}}')
    with pytest.raises(DataError, match="id Q1 occurs 2 times") as info:
        KnowledgeGraph.from_json(path)
    assert info.value.path == path


# ============================================================================================ Wikidata dumps
def item(entity_id, label=None, description=None, aliases=(), claims_first=False, sitelink=True, kind="item"):
    entity = {"type": kind, "id": entity_id}
    claims = {"P31": [{"mainsnak": {"datavalue": {"value": {"id": "Q5"}}}}]}
    if claims_first:
        entity["claims"] = claims
    entity["labels"] = {"fr": {"language": "fr", "value": "étiquette"}}
    if label:
        entity["labels"]["en"] = {"language": "en", "value": label}
    entity["descriptions"] = {"en": {"language": "en", "value": description}} if description else {}
    entity["aliases"] = {"en": [{"language": "en", "value": a} for a in aliases]} if aliases else {}
    if not claims_first:
        entity["claims"] = claims
    entity["sitelinks"] = {"enwiki": {"site": "enwiki", "title": label or "x"}} if sitelink else {}
    return json.dumps(entity, separators=(",", ":"), ensure_ascii=False)


DUMP_LINES = [
    item("Q41421", "Michael Jordan", "American basketball player", ["Air Jordan", "MJ"]),
    item("Q3308205", "Michael I. Jordan", "computer scientist", ["Michael Jordan"], claims_first=True),
    item("P54", "member of sports team", "team the subject plays for", kind="property", sitelink=False),
    json.dumps({"type": "lexeme", "id": "L1", "lemmas": {}}),
    item("Q99", None, "only a French label"),
    item("Q128109", 'Chicago Bulls ,"claims": </s>', None, ["Bulls"], sitelink=False),
    '{"type":"item","id":"Q7","labels":{"en":',
    item("P19", "place of birth", None, ["birthplace"], kind="property", sitelink=False),
]
EXPECTED = [("Q41421", "Michael Jordan", "American basketball player", ["Air Jordan", "MJ"]),
            ("Q3308205", "Michael I. Jordan", "computer scientist", ["Michael Jordan"]),
            ("Q128109", 'Chicago Bulls ,"claims":', "", ["Bulls"]),
            ("P54", "member of sports team", "team the subject plays for", []),
            ("P19", "place of birth", "", ["birthplace"])]


def write_dump(path: Path, lines=DUMP_LINES) -> Path:
    text = "[\n" + ",\n".join(lines) + "\n]\n"
    opener = bz2.open if path.suffix == ".bz2" else gzip.open
    with opener(path, "wt", encoding="utf-8") as fh:
        fh.write(text)
    return path


@pytest.mark.parametrize("suffix", [".bz2", ".gz"])
def test_convert_wikidata(tmp_path, suffix):
    dump = write_dump(tmp_path / f"latest-all.json{suffix}")
    summary = K.convert_wikidata(dump, tmp_path / "kg" / "wikidata_processed.json")
    assert entries(KnowledgeGraph.read(tmp_path / "kg")) == EXPECTED  # the summary file is not a shard
    assert {k: summary[k] for k in ("lines", "lines read", "entities", "predicates", "no label", "other type",
                                    "bad json")} == {"lines": 10, "lines read": 8, "entities": 3, "predicates": 2,
                                                     "no label": 1, "other type": 1, "bad json": 1}
    assert json.loads((tmp_path / "kg" / "wikidata_processed.summary.json").read_text())["entities"] == 3
    with_page = K.convert_wikidata(dump, tmp_path / "enwiki.json", sitelink="enwiki")
    assert with_page["no sitelink"] == 1  # Q128109 has no English Wikipedia page; properties are kept
    assert [e[0] for e in entries(KnowledgeGraph.from_json(tmp_path / "enwiki.json"))] == \
        ["Q41421", "Q3308205", "P54", "P19"]


def test_convert_wikidata_shards_partition_the_dump(tmp_path, monkeypatch):
    dump = write_dump(tmp_path / "latest-all.json.bz2")
    n = 3
    summaries = [K.convert_wikidata(dump, tmp_path / "kg" / f"kg.shard-{i}-of-{n}.json", f"{i}/{n}")
                 for i in range(n)]
    parts = [set(e[0] for e in entries(KnowledgeGraph.from_json(tmp_path / "kg" / f"kg.shard-{i}-of-{n}.json")))
             for i in range(n)]
    assert all(not (a & b) for i, a in enumerate(parts) for b in parts[i + 1:])
    assert sorted(entries(KnowledgeGraph.read(tmp_path / "kg"))) == sorted(EXPECTED)
    assert sum(s["lines read"] for s in summaries) == 8 and all(s["lines"] == 10 for s in summaries)
    # line k of the file goes to shard k mod n: line 1 (Q41421) → shard 1, line 3 (P54) → shard 0
    assert "Q41421" in parts[1] and "P54" in parts[0] and "Q3308205" in parts[2]
    # resumable: a finished shard is not converted again
    monkeypatch.setattr(K, "_convert_lines", lambda *a, **k: pytest.fail("converted again"))
    again = K.convert_wikidata(dump, tmp_path / "kg" / "kg.shard-1-of-3.json", (1, 3))
    assert again["resumed"] == 1 and again["entities"] == summaries[1]["entities"]


def test_convert_wikidata_bad_inputs(tmp_path):
    assert K.parse_shard("2/8") == (2, 8) and K.parse_shard(None) == (0, 1) and K.parse_shard((0, 1)) == (0, 1)
    for bad in ("8/8", "-1/2", "1", "a/b", "1/0"):
        with pytest.raises(DataError, match="--shard"):
            K.parse_shard(bad)
    with pytest.raises(DataError, match="Wikidata dump not found"):
        K.convert_wikidata(tmp_path / "missing.json.bz2", tmp_path / "out.json")
    not_a_dump = write_dump(tmp_path / "notes.json.bz2", ["hello", "world"])
    with pytest.raises(DataError, match="is this a Wikidata JSON dump"):
        K.convert_wikidata(not_a_dump, tmp_path / "out.json")
    assert not (tmp_path / "out.json").exists()
    cut = tmp_path / "cut.json.bz2"
    cut.write_bytes(bz2.compress(("[\n" + ",\n".join(DUMP_LINES)).encode())[:-30])
    with pytest.raises(DataError, match="is the download complete"):
        K.convert_wikidata(cut, tmp_path / "out.json")
