"""``data prepare atlas`` / ``data check atlas`` on a tiny atlas (saved as atlas.npz) and a few ndjson files."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from modalbridge.core.errors import DataError
from modalbridge.tasks.atlas import bioasq as B
from modalbridge.tasks.atlas import prepare as P

atlas_module = pytest.importorskip("modalbridge.tasks.atlas.atlas")
Atlas = atlas_module.Atlas

ORGANS = ["liver", "kidney", "small intestine", "stomach", "colon", "urinary bladder", "gallbladder"]
LABELS = {"liver": [1], "kidney": [2], "small intestine": [3, 4], "stomach": [5], "colon": [6],
          "urinary bladder": [7], "gallbladder": [8]}
ALIASES = {"liver": ["liver"], "kidney": ["kidney", "renal medulla"],
           "small intestine": ["small intestine", "intestine, small", "jejunum", "ileum"], "stomach": ["stomach", "cardia"],
           "colon": ["colon"], "urinary bladder": ["urinary bladder", "bladder"], "gallbladder": ["gallbladder"]}
MESH = {"liver": "Liver", "kidney": "Kidney", "small intestine": "Intestine, Small", "stomach": "Stomach",
        "colon": "Colon", "urinary bladder": "Urinary Bladder", "gallbladder": "Gallbladder"}


def tiny_atlas() -> Atlas:
    labels = np.zeros((12, 14, 16), dtype=np.uint8)
    for value in range(1, 9):  # one slab of 2 voxels along z per label value
        labels[2:9, 3:11, 2 * value - 1:2 * value + 1] = value
    return Atlas(labels, ORGANS, LABELS, ALIASES, meta={"source": "test"})


def write_corpus(folder, n_files=3):
    """Articles from templates: single and multi-organ, animal ones, decoys, one too long, and bad lines."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    articles, pmid = [], 0
    for organ in ORGANS:
        for k in range(8):
            pmid += 1
            mesh = [MESH[organ], "Humans"] + (["Rats"] if k == 7 else [])
            text = f"We studied the {organ} of {k + 1} patients. Drug delivery was fine."
            articles.append({"pmid": str(pmid), "title": f"On the {organ}", "journal": "J Test", "year": "2019",
                             "abstractText": text, "meshMajor": mesh})
    for _ in range(6):
        pmid += 1
        pair = rng.choice(len(ORGANS), 2, replace=False)
        articles.append({"pmid": str(pmid), "title": "two", "journal": "J", "year": 2020,
                         "abstractText": f"The {ORGANS[pair[0]]} and the {ORGANS[pair[1]]} in the gallbladder.",
                         "meshMajor": [MESH[ORGANS[p]] for p in pair]})
    pmid += 1
    articles.append({"pmid": str(pmid), "title": "long", "journal": "J", "year": 2020,
                     "abstractText": "the kidney " * 40, "meshMajor": ["Kidney", "Gallbladder"]})
    lines = [json.dumps(a) for a in articles]
    lines.insert(5, '{"pmid": "999", "abstractText": "cut')  # a truncated line
    lines.insert(9, json.dumps({"pmid": "998", "meshMajor": ["Liver"]}))  # no abstractText
    for i in range(n_files):
        (folder / f"part_{i}.ndjson").write_text("\n".join(lines[i::n_files]) + "\n", encoding="utf-8")
    return articles


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("atlas_raw")
    atlas_file = tiny_atlas().save(root / "elsewhere" / "my_atlas.npz")
    write_corpus(root / "bioasq")
    args = argparse.Namespace(atlas=str(atlas_file), cap=5, seed=0, tokenizer="minilm-l6", max_tokens=64,
                              bioasq=None)
    try:
        written = P.prepare_atlas(root, None, args)
    except Exception as exc:
        if "weights" in type(exc).__name__.lower():
            pytest.skip(f"MiniLM tokenizer not available: {exc}")
        raise
    return root, written


def test_prepare_writes_the_processed_folder(prepared):
    root, written = prepared
    out = root / "processed"
    for name in ("atlas.npz", "dataset.json", "dataset_train.json", "dataset_val.json", "dataset_test.json",
                 "prepare_summary.json", "organs/organ2ind.json", "organs/ind2organ.json",
                 "organs/organ2summary.json", "organs/organ2center.json"):
        assert (out / name).is_file(), name
    assert written["dataset_train"] == out / "dataset_train.json" and written["atlas"] == out / "atlas.npz"
    assert json.loads((out / "organs" / "ind2organ.json").read_text())["2"] == "small intestine"
    atlas = Atlas.load(out / "atlas.npz")
    assert atlas.organs == ORGANS and atlas.aliases["kidney"] == ["kidney", "renal medulla"]
    summary = json.loads((out / "prepare_summary.json").read_text())
    assert summary == json.loads(json.dumps(written.summary))
    assert summary["bad json"] == 1 and summary["missing fields"] == 1
    assert summary["animal"] == len(ORGANS) and summary["too long"] == 1
    assert summary["articles"] == 7 * 8 + 6 + 1 + 1  # every parsed object, the one without abstract included
    everything = B.read_records(out / "dataset.json", organs=atlas.organs)
    assert len(everything) == summary["records"] == sum(summary["splits"].values())
    assert summary["splits"] == {name: len(part) for name, part in B.split_records(everything, 0).items()}
    parts = {s: B.read_records(out / f"dataset_{s}.json", organs=atlas.organs) for s in P.SPLITS}
    assert sorted(r["pmid"] for p in parts.values() for r in p) == sorted(r["pmid"] for r in everything)
    single = [r["organ_names"][0] for r in everything if len(r["organ_indices"]) == 1]
    assert max(single.count(o) for o in ORGANS) == 5  # cap 5 per organ in the single-organ pool
    assert all(not B.is_animal(r["mesh_terms"]) for r in everything)
    assert all("delivery" not in r["keywords"] for r in everything)  # the deliver patch
    decoyed = [r for r in everything if "liver" not in r["organ_names"] and "delivery" in r["text"]
               and "liver" not in r["text"].replace("delivery", "")]
    assert decoyed and all("liver" not in r["occ_organ_names"] for r in decoyed)
    assert summary["patched deliver"] == len(decoyed)
    for r in everything:  # records follow the atlas' order and the card's format
        assert list(r) == list(B.RECORD_FIELDS)
        assert r["organ_names"] == [ORGANS[i] for i in r["organ_indices"]]


def test_prepare_is_reproducible_and_finds_sources_itself(prepared, tmp_path):
    root, _ = prepared
    other = tmp_path / "raw"
    (other / "bioasq").mkdir(parents=True)
    for part in (root / "bioasq").iterdir():
        (other / "bioasq" / part.name).write_bytes(part.read_bytes())
    tiny_atlas().save(other / "atlas.npz")  # found in the root without --atlas
    written = P.prepare_atlas(other, tmp_path / "out", argparse.Namespace(cap=5, max_tokens=64))
    assert (tmp_path / "out" / "dataset_test.json").read_bytes() == \
        (root / "processed" / "dataset_test.json").read_bytes()
    assert written.summary["seed"] == 0 and written.summary["tokenizer"] == "minilm-l6"
    loose = P.prepare_atlas(other, tmp_path / "loose", argparse.Namespace(cap=50, tokenizer="none"))
    assert loose.summary["records"] == 7 * 7 + 1 + 6  # no cap bite, the long one kept
    assert "too long" not in loose.summary


def test_prepare_arguments_defaults():
    """The plugin's `data prepare atlas` options default to what prepare_atlas assumes when they are absent."""
    from modalbridge.tasks.atlas.plugin import _prepare_arguments

    parser = argparse.ArgumentParser()
    _prepare_arguments(parser)
    args = parser.parse_args([])
    assert {k: getattr(args, k) for k in P.DEFAULTS} == P.DEFAULTS
    assert parser.parse_args(["--max-tokens", "128", "--cap", "7"]).max_tokens == 128


def test_prepare_errors(tmp_path):
    with pytest.raises(DataError, match="no atlas"):
        P.prepare_atlas(tmp_path, None, None)
    tiny_atlas().save(tmp_path / "atlas.npz")
    with pytest.raises(DataError, match="no BioASQ articles"):
        P.prepare_atlas(tmp_path, None, None)
    (tmp_path / "bioasq").mkdir()
    (tmp_path / "bioasq" / "a.ndjson").write_text(json.dumps(
        {"pmid": "1", "abstractText": "the heart", "meshMajor": ["Heart"]}) + "\n")
    with pytest.raises(DataError, match="no article kept"):
        P.prepare_atlas(tmp_path, None, argparse.Namespace(tokenizer="none"))


def test_check_processed_root_lists_a_bad_record(prepared, tmp_path):
    root, _ = prepared
    out = tmp_path / "processed"
    out.mkdir()
    for path in (root / "processed").glob("*.*"):
        (out / path.name).write_bytes(path.read_bytes())
    problems, summary = P.check_atlas(out)
    assert problems == []
    assert summary["organs"] == len(ORGANS) and summary["train records"] > summary["val records"] > 0
    records = json.loads((out / "dataset_val.json").read_text())
    records[1]["organ_indices"] = [99]
    records[1]["organ_names"] = ["x"]
    (out / "dataset_val.json").write_text(json.dumps(records))
    problems, summary = P.check_atlas(tmp_path)  # the parent of processed/ works too
    assert len(problems) == 1
    problem = problems[0]
    assert (problem.path, problem.row, problem.field) == (out / "dataset_val.json", 1, "organ_indices")
    assert "not in the atlas" in str(problem)
    assert summary["val records"] == len(records) - 1
    train = json.loads((out / "dataset_train.json").read_text())
    (out / "dataset_test.json").write_text(json.dumps(train[:1]))
    problems, _ = P.check_atlas(out)
    assert any("leaks" in str(p) for p in problems)


def test_check_raw_root(prepared, tmp_path):
    root, _ = prepared
    raw = tmp_path / "raw"
    (raw / "bioasq").mkdir(parents=True)
    for part in (root / "bioasq").iterdir():
        (raw / "bioasq" / part.name).write_bytes(part.read_bytes())
    tiny_atlas().save(raw / "atlas.npz")
    problems, summary = P.check_atlas(raw)
    rows = sorted((p.path.name, p.row) for p in problems)
    assert len(problems) == 2 and all(name.startswith("part_") and row >= 1 for name, row in rows)
    assert any(p.field == "abstractText" for p in problems)
    assert summary["articles"] == 7 * 8 + 6 + 1 + 1 and summary["bad json"] == 1
    assert summary["articles with an organ"] == 7 * 8 + 6 + 1
    with pytest.raises(DataError, match="not found"):
        P.check_atlas(tmp_path / "nowhere")
