"""The atlas task from the command line, as a user runs it: ``world``, ``data prepare/check atlas``, ``fit`` on the
world recipe (tiny BERT), ``test`` of a naive baseline, ``ground`` (point, nearest organs, picture, 3-D view),
``ground --retrieve`` (by organ, point and text) and the mistakes a user makes (one message, no traceback)."""

import json
import re
import shutil

import pytest

from cli_checks import one_error
from modalbridge.cli import main
from modalbridge.core.worlds import resolve_root
from modalbridge.nn.bert import TINY_BERT

pytestmark = pytest.mark.e2e

TINY = json.dumps({"bert": "minilm-l6", "bert_config": TINY_BERT})
CONFIG = "configs/atlas/world.yaml"


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    run = tmp_path_factory.mktemp("atlas_run")
    assert main(["fit", "--config", CONFIG, "--model.init_args.model_kwargs", TINY, "--model.init_args.lr", "1e-3",
                 "--data.init_args.max_records", "96", "--trainer.max_epochs", "1",
                 "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(run)]) == 0
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("val/nvd" in m for m in metrics)
    return run / "checkpoints" / "last.ckpt"


def test_ground_prints_the_point_and_nearest_organs_and_draws_them(ckpt, tmp_path, capsys):
    png, page = tmp_path / "g.png", tmp_path / "g.html"
    assert main(["ground", "Resection of hepatocellular carcinoma in the liver.", "--ckpt", str(ckpt),
                 "--picture", str(png), "--html", str(page)]) == 0
    out = capsys.readouterr().out
    assert "point (centred mm)" in out and "nearest organs:" in out and " mm" in out
    assert png.stat().st_size > 10_000
    html = page.read_text()
    assert "plotly" in html.lower() and not re.search(r"<script[^>]*\bsrc=", html)  # plotly.js inlined: offline
    assert len(html) > 1_000_000


def test_ground_retrieve_by_organ_point_and_text(ckpt, capsys):
    for query in (["--organ", "kidney"], ["--xyz", "0,0,0"], ["liver disease"]):
        assert main(["ground", "--retrieve", "--ckpt", str(ckpt), "-k", "3", *query]) == 0
        out = capsys.readouterr().out
        assert out.count("pmid") == 3, out


@pytest.mark.parametrize("argv, needles", [
    (["ground", "", "--ckpt", "{ckpt}"], ["text is empty"]),
    (["ground", "--retrieve", "--ckpt", "{ckpt}"], ["exactly one query"]),
    (["ground", "--retrieve", "--organ", "kidneyz", "--ckpt", "{ckpt}"], ["unknown organ 'kidneyz'", "kidney"]),
    (["ground", "--retrieve", "--xyz", "1,2", "--ckpt", "{ckpt}"], ["--xyz", "three finite numbers"]),
    (["ground", "liver", "--picture", "x.gif", "--ckpt", "{ckpt}"], [".png"]),
    (["ground", "liver", "--ckpt", "/nonexistent/x.ckpt"], ["checkpoint not found"]),
    (["ground", "liver", "--ckpt", "{ckpt}", "--atlas", "/nonexistent/atlas.npz"], ["atlas not found"]),
])
def test_ground_mistakes_are_one_line(argv, needles, ckpt, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main([a.replace("{ckpt}", str(ckpt)) for a in argv]) != 0
    one_error(capsys, *needles)


def test_a_naive_baseline_is_tested_without_training(tmp_path):
    run = tmp_path / "centre"
    assert main(["test", "--config", "configs/atlas/world_centre.yaml", "--data.init_args.max_records", "64",
                 "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(run)]) == 0


def test_data_prepare_and_check_from_the_raw_release(tmp_path, capsys):
    world = resolve_root("world://atlas")
    raw = tmp_path / "raw"
    shutil.copytree(world / "innerorgans", raw / "innerorgans")
    shutil.copytree(world / "bioasq", raw / "bioasq")
    out = tmp_path / "processed"
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"extend": True, "renames": {"liver": "hepar"}}))
    assert main(["data", "prepare", "atlas", str(raw), "--out", str(out), "--cap", "20", "--seed", "3",
                 "--glossary", str(rules)]) == 0
    assert "hepar" in json.loads((out / "organs" / "organ2ind.json").read_text())
    assert {"atlas.npz", "dataset_train.json", "dataset_val.json", "dataset_test.json"} <= {
        p.name for p in out.iterdir()}
    capsys.readouterr()
    assert main(["data", "check", "atlas", str(out)]) == 0
    # a missing slice: one problem naming the file
    slices = sorted((raw / "innerorgans" / "labels").glob("*.tif"))
    slices[len(slices) // 2].unlink()
    assert main(["data", "check", "atlas", str(raw)]) == 1
    assert "slice" in capsys.readouterr().out
