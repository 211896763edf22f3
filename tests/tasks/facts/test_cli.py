"""The facts task from the command line, as a user runs it: ``fit`` of the world recipe (tiny BERT) and of the QKV
detector on its checkpoint, ``test`` of the Frequency baseline, ``data check facts`` on the world and on broken
copies, ``data prepare facts`` (summary + benchmark-restricted KG, and a Wikidata dump shard), and the mistakes a
user makes (argparse's exit 2 for a misspelled option, one message and no traceback for a wrong path)."""

import bz2
import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from cli_checks import one_error
from modalbridge.cli import main
from modalbridge.nn.bert import TINY_BERT
from modalbridge.tasks.facts.kg import KnowledgeGraph

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[3]
CONFIGS = REPO / "configs" / "facts"
TINY = json.dumps({"bert": "minilm-l6", "bert_config": TINY_BERT, "dim": 16})
QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]


def metrics_of(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> Path:
    """A run folder of `modalbridge fit --config configs/facts/world.yaml` made tiny (2 steps, 32 val records)."""
    run = tmp_path_factory.mktemp("facts_run")
    assert main(["fit", "--config", str(CONFIGS / "world.yaml"), "--model.init_args.model_kwargs", TINY,
                 "--model.init_args.negatives_e", "16", "--model.init_args.negatives_p", "4",
                 "--data.init_args.max_records", "32", "--data.init_args.batch_size", "16",
                 "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(run), *QUIET]) == 0
    return run


@pytest.fixture
def world_copy(facts_root, tmp_path) -> Path:
    copy = tmp_path / "world"
    shutil.copytree(facts_root / "falb", copy / "falb")
    shutil.copytree(facts_root / "kg", copy / "kg")
    return copy


# -- fit and test -------------------------------------------------------------------------------------------------
def test_fit_writes_a_checkpoint_and_validation_metrics(fitted):
    val = [m for m in metrics_of(fitted) if m.get("stage") == "val"]
    assert len(val) == 1 and val[0]["val/n"] == 32
    assert {"val/subj_acc", "val/rel_acc", "val/obj_acc", "val/fact_acc", "val/recall_sum",
            "val/ookg_entropy_fact"} <= set(val[0])
    assert any("train/loss" in m for m in metrics_of(fitted))
    ckpt = torch.load(fitted / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["hyper_parameters"]["model"] == "slot_linker"
    assert ckpt["hyper_parameters"]["model_kwargs"]["dim"] == 16
    assert ckpt["modalbridge_data"]["hparams"]["root"] == "world://facts"
    assert ckpt["state_dict"]["model.head.weight"].shape == (16, TINY_BERT["hidden_size"])
    assert not torch.allclose(ckpt["state_dict"]["ookg_entropy"], torch.full((3,), math.log(5)))


def test_qkv_detector_fits_on_the_fitted_pre_ranker(fitted, tmp_path):
    run = tmp_path / "qkv"
    assert main(["fit", "--config", str(CONFIGS / "world_qkv.yaml"),
                 "--model.init_args.linker_ckpt", str(fitted / "checkpoints" / "last.ckpt"),
                 "--model.init_args.negatives_e", "16", "--model.init_args.negatives_p", "4",
                 "--data.init_args.max_records", "32", "--data.init_args.batch_size", "16",
                 "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(run), *QUIET]) == 0
    val = [m for m in metrics_of(run) if m.get("stage") == "val"]
    assert val and 0 <= val[-1]["val/ookg_qkv_macro"] <= 100
    assert (run / "checkpoints" / "last.ckpt").is_file()


def test_frequency_baseline_is_tested_without_training(tmp_path, capsys):
    run = tmp_path / "frequency"
    assert main(["test", "--config", str(CONFIGS / "world_frequency.yaml"), "--data.init_args.max_records", "64",
                 "--trainer.default_root_dir", str(run), *QUIET]) == 0
    tested = [m for m in metrics_of(run) if m.get("stage") == "test"]
    assert len(tested) == 1
    facets = ("test_transductive", "test_inductive", "test_polysemous", "test_out_of_kg")
    for facet in facets:
        assert 0 <= tested[0][f"test/{facet}/rel_acc"] <= 100 and tested[0][f"test/{facet}/n"] == 64
    assert tested[0]["test/test_transductive/rel_acc"] > 0  # the most frequent training predicate occurs there
    assert "test/test_" in capsys.readouterr().out  # the results table
    assert not (run / "checkpoints").exists()


# -- data check / prepare -----------------------------------------------------------------------------------------
def test_data_check_passes_on_the_world(facts_root, capsys):
    assert main(["data", "check", "facts", str(facts_root)]) == 0
    out = capsys.readouterr().out
    assert "no problems found" in out and "16 facets" in out and "13299 train_full records" in out


def test_data_check_names_file_and_line_of_each_problem(world_copy, capsys):
    falb = world_copy / "falb"
    # a facet cut after its third record, and a record whose object the KG lacks
    cut = falb / "test_inductive_no_aliases.json"
    lines = cut.read_text().splitlines()
    cut.write_text("\n".join(lines[:4]) + "\n")  # "[", records 0–2 (the last one ends with ","), then EOF
    ghost = falb / "val_inductive.json"
    records = json.loads(ghost.read_text())
    records[1]["fact_ids"][2] = "Q999999"
    ghost.write_text("[\n" + ",\n".join(json.dumps(r) for r in records) + "\n]\n")
    assert main(["data", "check", "facts", str(world_copy)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert f"{cut}: row 5: skipped (truncated file): the array ends without ']' after record 2" in out
    assert f"{ghost}: field fact_ids: record 1: the KG has no object Q999999" in out
    assert "2 problems found" in out

    kg_file = world_copy / "kg" / "wikidata_processed.json"
    kg = json.loads(kg_file.read_text())
    unlabelled = next(iter(kg))
    del kg[unlabelled]["label"]
    kg_file.write_text(json.dumps(kg))
    assert main(["data", "check", "facts", str(world_copy)]) == 1
    out = capsys.readouterr().out
    assert f"{kg_file}: field {unlabelled}.label: KG entry {unlabelled} has no label" in out


def test_data_prepare_writes_the_summary_and_the_brkg(world_copy, facts_root, capsys):
    assert main(["data", "prepare", "facts", str(world_copy)]) == 0
    out = capsys.readouterr().out
    assert f"summary: {world_copy / 'facts_summary.json'}" in out and f"brkg: {world_copy / 'kg' / 'brkg'}" in out
    summary = json.loads((world_copy / "facts_summary.json").read_text())
    files = sorted((facts_root / "falb").glob("*.json"))
    assert len(summary["facets"]) == len(files) == 16 and summary["problems"] == 0
    referenced = set()
    for file in files:
        records = json.loads(file.read_text())
        assert summary["facets"][file.stem]["records"] == len(records)
        referenced.update(i for r in records for i in r["fact_ids"])
    brkg = KnowledgeGraph.read(world_copy / "kg" / "brkg")
    assert set(brkg.entity_ids.tolist()) | set(brkg.predicate_ids.tolist()) == referenced
    assert main(["data", "check", "facts", str(world_copy)]) == 0  # the prepared folder still checks clean


def _entity(entry_id: str, kind: str, label: dict[str, str], description: str = "", aliases=()) -> str:
    """One line of a Wikidata JSON dump (an entity object; claims after the terms, as in the dumps)."""
    entity = {"type": kind, "id": entry_id,
              "labels": {lang: {"language": lang, "value": text} for lang, text in label.items()},
              "descriptions": {"en": {"language": "en", "value": description}} if description else {},
              "aliases": {"en": [{"language": "en", "value": a} for a in aliases]},
              "claims": {"P31": [{"mainsnak": {"snaktype": "value"}}]}, "sitelinks": {}}
    return json.dumps(entity)


def test_data_prepare_converts_a_wikidata_dump_shard(tmp_path, capsys):
    dump = tmp_path / "dump.json.bz2"
    lines = ["[",
             _entity("Q10", "item", {"en": "Grace Hopper", "de": "Grace Hopper"}, "computer scientist",
                     ["Amazing Grace"]) + ",",
             _entity("P20", "property", {"en": "employer"}, "organisation the subject works for") + ",",
             _entity("Q30", "item", {"de": "nur deutsch"}) + ",",  # no English label: skipped
             _entity("Q40", "item", {"en": "COBOL"}, "programming language", ["Common Business Language"]),
             "]"]
    dump.write_bytes(bz2.compress(("\n".join(lines) + "\n").encode()))
    out = tmp_path / "out"
    assert main(["data", "prepare", "facts", "--wikidata", str(dump), "--shard", "0/2", str(out)]) == 0
    shard = out / "kg" / "wikidata_processed.shard-0-of-2.json"
    assert f"kg: {shard}" in capsys.readouterr().out
    kg = KnowledgeGraph.read(shard)  # lines 0, 2, 4 of the file: "[", P20, Q40
    assert kg.entity_ids.tolist() == ["Q40"] and kg.predicate_ids.tolist() == ["P20"]
    assert kg.aliases("Q40") == ["Common Business Language"] and kg.description("P20").startswith("organisation")
    assert main(["data", "prepare", "facts", "--wikidata", str(dump), "--shard", "1/2", str(out)]) == 0
    whole = KnowledgeGraph.read(out / "kg")  # both shards
    assert sorted(whole.entity_ids.tolist()) == ["Q10", "Q40"] and whole.label("Q10") == "Grace Hopper"
    assert whole.aliases("Q10") == ["Amazing Grace"]


# -- mistakes -----------------------------------------------------------------------------------------------------
def test_a_misspelled_option_is_an_argparse_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["data", "prepare", "facts", "--wikidta", "dump.json.bz2", str(tmp_path)])
    assert exit_.value.code == 2
    assert "unrecognized arguments: --wikidta" in capsys.readouterr().err
    assert main(["fit", "--config", str(CONFIGS / "world.yaml"), "--model.init_args.negatives_ee", "3"]) == 2
    one_error(capsys, "model.init_args.negatives_ee", "did you mean 'model.init_args.negatives_e'")


@pytest.mark.parametrize("argv, needles", [
    (["data", "check", "facts", "{tmp}/missing"], ["{tmp}/missing", "dataset folder not found"]),
    (["data", "prepare", "facts", "{tmp}/missing"], ["dataset folder not found"]),
    (["data", "prepare", "facts", "--wikidata", "{tmp}/latest-all.json.bz2", "{tmp}/out"],
     ["Wikidata dump not found"]),
    (["data", "prepare", "facts", "--wikidata", "{tmp}/latest-all.json.bz2", "--shard", "2/2", "{tmp}/out"],
     ["--shard", "2/2"]),
    (["fit", "--config", str(CONFIGS / "world.yaml"), "--data.init_args.root", "{tmp}/missing"],
     ["{tmp}/missing", "dataset folder not found"]),
    (["fit", "--config", str(CONFIGS / "world_reranker.yaml")],  # no pre-ranker trained in this folder yet
     ["linker_ckpt", "pre-ranker checkpoint not found"]),
    (["test", "--config", str(CONFIGS / "world_frequency.yaml"), "--data.init_args.test", "[test_nope]"],
     ["no facet 'test_nope'", "test_polysemous"]),
])
def test_wrong_paths_and_names_are_one_line(argv, needles, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main([*argv, *(QUIET if argv[0] in ("fit", "test") else [])]) == 2
    one_error(capsys, *(n.replace("{tmp}", str(tmp_path)) for n in needles))
