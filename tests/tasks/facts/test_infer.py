"""``modalbridge link`` as a user runs it on the facts world with the tiny pre-ranker: one triple → JSON Lines
with KG ids, a FaLB file with ``--gold`` marks, a saved index reloaded (identical rankings) and refused when
another encoder built it, Qdrant agreeing with FAISS, ``--sentence`` through the open-IE extractor, ``--kg``,
a re-ranker checkpoint, and the mistakes a user makes (one message, no traceback)."""

from __future__ import annotations

import contextlib
import io
import json

import pytest
import torch

from cli_checks import one_error
from modalbridge.cli import main
from modalbridge.tasks.facts.kg import KnowledgeGraph

from .conftest import TINY, tiny_datamodule

FAST = ["--precision", "32-true"]


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def kg(facts_root) -> KnowledgeGraph:
    return KnowledgeGraph.read(facts_root / "kg" / "wikidata_processed.json")


@pytest.fixture(scope="module")
def records(facts_root) -> list[dict]:
    """The first six records of the world's transductive test facet."""
    return json.loads((facts_root / "falb" / "test_transductive.json").read_text())[:6]


@pytest.fixture(scope="module")
def falb_file(records, tmp_path_factory):
    path = tmp_path_factory.mktemp("falb_in") / "six.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def gold_run(tiny_linker_ckpt, falb_file, tmp_path_factory) -> dict:
    """The six records linked with ``--gold --save-index``: ``{"index": folder, "out": JSONL, "printed": stdout}``
    (the index and rankings the other tests compare with)."""
    folder = tmp_path_factory.mktemp("link_index")
    run = {"index": folder / "index", "out": folder / "built.jsonl"}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert link(tiny_linker_ckpt, falb_file, "--gold", "--ookg", "none", "--out", run["out"], "--report", "",
                    "--save-index", run["index"]) == 0
    run["printed"] = printed.getvalue()
    return run


def link(ckpt, *argv) -> int:
    return main(["link", *map(str, argv), "--ckpt", str(ckpt), *FAST])


def test_one_triple_is_linked_to_kg_ids(tiny_linker_ckpt, records, kg, tmp_path, capsys):
    s, r, o = records[0]["extraction"]
    out, page = tmp_path / "one.jsonl", tmp_path / "one.html"
    assert link(tiny_linker_ckpt, f"{s} | {r} | {o}", "-k", 3, "--out", out, "--report", page) == 0
    printed = capsys.readouterr().out
    assert f"{s} | {r} | {o}" in printed and "slot_linker@" in printed and "fact " in printed
    [record] = read_jsonl(out)
    assert record["extraction"] == [s, r, o] and record["sentence"] is None
    assert set(record["links"]) == set(record["in_kg"]) == {"subj", "rel", "obj"}
    for slot, table in (("subj", kg.entities), ("rel", kg.predicates), ("obj", kg.entities)):
        links = record["links"][slot]
        assert len(links) == 3 and [x["score"] for x in links] == sorted((x["score"] for x in links), reverse=True)
        for entry in links:
            assert table.labels[table.index_of(entry["id"])] == entry["label"]
        assert isinstance(record["in_kg"][slot], bool)
    assert record["fact"] == [None if not record["in_kg"][slot] else record["links"][slot][0]["id"]
                              for slot in ("subj", "rel", "obj")]
    assert "<table>" in page.read_text(encoding="utf-8")


def test_falb_file_with_gold_marks_each_link_and_saves_the_index(gold_run, records):
    printed = gold_run["printed"]
    assert "accuracy over 6 FaLB records" in printed and ("✓" in printed or "✗" in printed)
    linked = read_jsonl(gold_run["out"])
    assert len(linked) == 6
    for record, gold in zip(linked, records):
        assert record["gold"] == gold["fact_ids"] and record["sentence"] == gold["sentence"]
        expected = {slot: record["links"][slot][0]["id"] == g for slot, g in zip(("subj", "rel", "obj"),
                                                                                  gold["fact_ids"])}
        assert record["correct"] == {**expected, "fact": all(expected.values())}
    for name in ("meta.json", "faiss_index_entity", "index2entity.json", "entity_embeddings.npy",
                 "faiss_index_rel", "index2rel.json", "relation_embeddings.npy"):
        assert (gold_run["index"] / name).is_file(), name


def test_a_saved_index_gives_the_same_rankings(tiny_linker_ckpt, falb_file, gold_run, tmp_path):
    out = tmp_path / "loaded.jsonl"
    assert link(tiny_linker_ckpt, falb_file, "--ookg", "none", "--index", gold_run["index"], "--out", out,
                "--report", "") == 0
    built, loaded = read_jsonl(gold_run["out"]), read_jsonl(out)
    assert len(built) == len(loaded) == 6
    for a, b in zip(built, loaded):
        assert a["links"] == b["links"] and a["fact"] == b["fact"]


def test_an_index_of_another_encoder_is_refused(tiny_linker_ckpt, facts_root, tmp_path, capsys):
    state = torch.load(tiny_linker_ckpt, map_location="cpu", weights_only=True)
    generator = torch.Generator().manual_seed(1)
    for name, value in state["state_dict"].items():
        if name.startswith("model.") and value.is_floating_point():
            value.add_(0.05 * torch.randn(value.shape, generator=generator))
    other = tmp_path / "other.ckpt"
    torch.save(state, other)
    folder = tmp_path / "other_index"
    assert link(other, "a | b | c", "--save-index", folder, "--out", "", "--report", "") == 0
    built_by = json.loads((folder / "meta.json").read_text())["entity"]["fingerprint"]
    capsys.readouterr()
    assert link(tiny_linker_ckpt, "a | b | c", "--index", folder, "--out", "", "--report", "") == 2
    line = one_error(capsys, "fingerprint", "was built by encoder", built_by)
    assert "rebuild the index" in line


def test_qdrant_gives_the_faiss_top5(tiny_linker_ckpt, falb_file, gold_run, tmp_path):
    pytest.importorskip("qdrant_client")
    built = gold_run["out"]
    out = tmp_path / "qdrant.jsonl"
    assert link(tiny_linker_ckpt, falb_file, "--backend", "qdrant", "--ookg", "none", "--out", out,
                "--report", "") == 0
    for a, b in zip(read_jsonl(built), read_jsonl(out)):
        for slot in ("subj", "rel", "obj"):
            assert [x["id"] for x in a["links"][slot]] == [x["id"] for x in b["links"][slot]]


def test_sentences_go_through_open_ie(tiny_linker_ckpt, tmp_path, capsys):
    pytest.importorskip("spacy")
    sentence = "Michael Jordan played for the Chicago Bulls."
    out = tmp_path / "sentence.jsonl"
    assert link(tiny_linker_ckpt, "--sentence", sentence, "--out", out, "--report", "") == 0
    linked = read_jsonl(out)
    assert linked and all(r["sentence"] == sentence for r in linked)
    assert ["Michael Jordan", "played for", "Chicago Bulls"] in [r["extraction"] for r in linked]
    assert "(--sentence 1)" in capsys.readouterr().out


def test_kg_option_links_against_another_kg(tiny_linker_ckpt, kg, records, tmp_path):
    keep = [*records[0]["fact_ids"], *kg.entity_ids.tolist()[:40], *kg.predicate_ids.tolist()[:10]]
    small = kg.subset(list(dict.fromkeys(keep)), strict=False).to_json(tmp_path / "small.json")
    txt, array = tmp_path / "triples.txt", tmp_path / "records.json"
    txt.write_text("# two triples\n" + "\n".join(" | ".join(r["extraction"]) for r in records[:2]) + "\n")
    array.write_text(json.dumps(records[2:4]))  # FaLB's own format: one JSON array
    out = tmp_path / "small.jsonl"
    assert link(tiny_linker_ckpt, txt, array, "--kg", small, "--out", out, "--report", "") == 0
    inside = set(KnowledgeGraph.read(small).entity_ids.tolist()) | set(KnowledgeGraph.read(small).predicate_ids)
    linked = read_jsonl(out)
    assert len(linked) == 4 and [r["sentence"] for r in linked] == [None, None, *(r["sentence"] for r in records[2:4])]
    assert all(x["id"] in inside for r in linked for slot in r["links"].values() for x in slot)


def test_a_reranker_checkpoint_reports_its_best_fact(tiny_linker_ckpt, facts_root, falb_file, tmp_path, capsys):
    import lightning as L

    from modalbridge.tasks.facts.module import FactsModule

    L.seed_everything(0, verbose=False)
    module = FactsModule("fact_reranker", {"bert_config": TINY["bert_config"]}, linker_ckpt=str(tiny_linker_ckpt),
                         rerank_k=2, search_k=100)
    trainer = L.Trainer(max_steps=1, limit_val_batches=0, num_sanity_val_steps=0, logger=False,
                        enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
                        accelerator="cpu", devices=1)
    trainer.fit(module, tiny_datamodule(facts_root, max_records=16))
    ckpt = tmp_path / "reranker.ckpt"
    trainer.save_checkpoint(ckpt)
    out = tmp_path / "rerank.jsonl"
    assert link(ckpt, falb_file, "--rerank-k", 2, "--out", out, "--report", "") == 0
    linker_thresholds = torch.load(tiny_linker_ckpt, weights_only=True)["state_dict"]["ookg_entropy"]
    assert " / ".join(f"{t:.3f}" for t in linker_thresholds.tolist()) in capsys.readouterr().out
    for record in read_jsonl(out):
        assert 0.0 < record["fact_probability"] < 1.0
        for slot, fact_id in zip(("subj", "rel", "obj"), record["fact"]):
            assert fact_id is None or fact_id in [x["id"] for x in record["links"][slot][:2]]


def test_the_library_links_and_a_context_model_reads_the_sentence(tiny_linker_ckpt, records, kg):
    from modalbridge.tasks.facts.infer import Linker

    linker = Linker.from_checkpoint(tiny_linker_ckpt, precision="32-true", device="cpu")
    triples = [tuple(r["extraction"]) for r in records[:2]]
    linked = linker.link(triples, k=2, ookg="confidence")
    assert [r["extraction"] for r in linked] == [list(t) for t in triples]
    assert all(len(r["links"]["rel"]) == 2 and r["links"]["rel"][0]["id"] in kg for r in linked)
    sentences = [r["sentence"] for r in records[:2]]
    assert (linker.encode(triples, sentences) == linker.encode(triples)).all()  # trained without context
    linker.context = True
    assert not (linker.encode(triples, sentences) == linker.encode(triples)).all()


@pytest.mark.parametrize("argv, needles", [
    (["Michael Jordan - played for - Chicago Bulls"], ["triple argument 1", "exactly two '|'"]),
    (["a | b | c", "--ckpt", "/nonexistent/linker.ckpt"], ["checkpoint not found", "/nonexistent/linker.ckpt"]),
    ([], ["nothing to link", "--sentence"]),
    (["missing.jsonl"], ["missing.jsonl", "not found"]),
    (["a | b | c", "--gold"], ["--gold", "fact_ids"]),
    (["a | b | c", "-k", "0"], ["-k 0"]),
    (["a | b | c", "--index", "/nonexistent/index"], ["/nonexistent/index", "not found"]),
    (["a | b | c", "--kg", "/nonexistent/kg.json"], ["/nonexistent/kg.json", "KG not found"]),
    (["a | b | c", "--report", "r.txt"], ["--report", ".html"]),
])
def test_link_mistakes_are_one_line(argv, needles, tiny_linker_ckpt, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["link", "--ckpt", str(tiny_linker_ckpt), *argv, *FAST]) == 2
    one_error(capsys, *needles)


@pytest.mark.parametrize("content, needles", [
    ({"state_dict": {}, "modalbridge_class": "AtlasModule", "hyper_parameters": {}},
     ["not a facts checkpoint", "AtlasModule"]),
    ({"state_dict": {}, "modalbridge_class": "FactsModule", "hyper_parameters": {"model": "qkv_detector"}},
     ["'qkv_detector'", "out-of-KG detector", "--ckpt"]),
    ("not a checkpoint", ["not a PyTorch checkpoint"]),
])
def test_a_checkpoint_that_links_nothing_is_refused(content, needles, tmp_path, capsys):
    ckpt = tmp_path / "other.ckpt"
    if isinstance(content, str):
        ckpt.write_text(content)
    else:
        torch.save(content, ckpt)
    assert main(["link", "a | b | c", "--ckpt", str(ckpt), *FAST]) == 2
    one_error(capsys, str(ckpt), *needles)
