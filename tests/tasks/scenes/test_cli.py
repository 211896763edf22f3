"""The scenes task's command-line verbs, in-process: ``world scenes``, ``data prepare scenes``, ``data check
scenes`` (a clean release and a broken copy), and ``scene`` — a description, named clip-arts, a predictor, a
heat-map, scene completion — with a tiny SR-BERT fitted once on the world; every bad input ends in one
``modalbridge: error:`` line and a non-zero exit, without a traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from modalbridge.cli import main
from modalbridge.core.worlds import resolve_root
from modalbridge.tasks.scenes import vocab as V
from modalbridge.tasks.scenes.abstract_scenes import read_processed
from modalbridge.tasks.scenes.models import TINY_BERT

from .test_module import one_error, tiny_sr_bert  # noqa: F401  (tiny_sr_bert: a fixture)

TEXT = "mike is left of the tree. the sun is in the sky."


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch):
    monkeypatch.delenv("MODALBRIDGE_DEBUG", raising=False)


@pytest.fixture(scope="module")
def world() -> Path:
    return resolve_root("world://scenes")


@pytest.fixture(scope="module")
def test_file(world) -> Path:
    return world / "processed" / "test_dataset.json"


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return tiny_sr_bert(tmp_path_factory) / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="module")
def predictor_ckpt(tmp_path_factory) -> Path:
    """A tiny random-init clip-art predictor saved the way `modalbridge fit` writes checkpoints."""
    from modalbridge.tasks.scenes.module import ClipartPredictorModule

    torch.manual_seed(0)
    module = ClipartPredictorModule("clipart_predictor", {"bert_config": TINY_BERT})
    path = tmp_path_factory.mktemp("predictor") / "last.ckpt"
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams),
                "modalbridge_class": "ClipartPredictorModule",
                "modalbridge_data": {"class_names": None, "hparams": {"tokenizer": "minilm-l6"}}}, path)
    return path


@pytest.fixture(scope="module")
def continuous_ckpt(tmp_path_factory) -> Path:
    """A tiny random-init continuous SR-BERT saved the way `modalbridge fit` writes checkpoints."""
    from modalbridge.tasks.scenes.module import SceneLayoutModule

    torch.manual_seed(0)
    module = SceneLayoutModule("sr_bert_continuous", {"bert_config": TINY_BERT}, decoding=["ho", "ss"])
    path = tmp_path_factory.mktemp("continuous") / "last.ckpt"
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams),
                "modalbridge_class": "SceneLayoutModule",
                "modalbridge_data": {"class_names": None, "hparams": {"tokenizer": "minilm-l6"}}}, path)
    return path


def scene(capsys, *argv: str) -> tuple[int, str]:
    code = main(["scene", *argv])
    return code, capsys.readouterr().out


def png_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        assert image.format == "PNG"
        return image.size


# -- world and data ----------------------------------------------------------------------------------------------
def test_world_prints_its_folder(world, capsys):
    assert main(["world", "scenes"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(world)


def test_data_prepare_writes_the_processed_files(world, tmp_path, capsys):
    out = tmp_path / "processed"
    assert main(["data", "prepare", "scenes", str(world / "AbstractScenes_v1.1"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for name in ("train_dataset.json", "val_dataset.json", "test_dataset.json", "test_ood_default.json",
                 "tan/test_dataset.json", "visual_dicts/visual2index.json"):
        assert (out / name).is_file(), name
        assert str(out / name) in printed, name
    assert (out / "train_dataset.json").read_text() == (world / "processed" / "train_dataset.json").read_text()


def test_data_check_passes_on_the_world_release(world, capsys):
    assert main(["data", "check", "scenes", str(world / "AbstractScenes_v1.1")]) == 0
    out = capsys.readouterr().out
    assert "no problems found" in out and "3000 scenes" in out


def test_data_check_lists_every_problem_of_a_broken_release(world, tmp_path, capsys):
    raw = tmp_path / "AbstractScenes_v1.1"
    shutil.copytree(world / "AbstractScenes_v1.1", raw, ignore=shutil.ignore_patterns("Pngs"))
    (raw / "Pngs").symlink_to(world / "AbstractScenes_v1.1" / "Pngs")
    scenes_file = raw / "Scenes_10020.txt"
    lines = scenes_file.read_text().splitlines()
    lines[2] = "\t".join(lines[2].split("\t")[:6])  # line 3: an object line with 6 fields
    name = lines[3].split("\t")[0]
    lines[3] = lines[3].replace(name, "q_6s.png")  # line 4: an unknown clip-art
    scenes_file.write_text("\n".join(lines) + "\n")
    sentences = raw / "SimpleSentences" / "SimpleSentences1_10020.txt"
    lines = sentences.read_text().splitlines()
    lines[1] = "5000\t1\tMike is next to Jenny."  # line 2: a scene index beyond the 3000 scenes
    sentences.write_text("\n".join(lines) + "\n")

    assert main(["data", "check", "scenes", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    problems = [line for line in captured.out.splitlines() if line.startswith(str(raw))]
    assert len(problems) == 3, captured.out
    assert f"{scenes_file}: row 3: field object: expected 7 fields" in problems[0]
    assert f"{scenes_file}: row 4: field png_name: unknown clip-art 'q_6s.png'" in problems[1]
    assert f"{sentences}: row 2: field scene_idx: scene index 5000 out of range" in problems[2]
    assert "3 problems found" in captured.out


# -- scene: the happy paths --------------------------------------------------------------------------------------
def test_scene_places_the_cliparts_a_text_names_and_draws_them(ckpt, tmp_path, capsys):
    picture = tmp_path / "out" / "scene.png"
    code, out = scene(capsys, TEXT, "--ckpt", str(ckpt), "--picture", str(picture))
    assert code == 0
    assert "3 clip-arts placed by hc-beam" in out
    rows = {line.split()[1]: line.split() for line in out.splitlines() if ".png" in line and "drawn" not in line}
    assert set(rows) == {"hb0_2s.png", "p_8s.png", "s_3s.png"}  # mike (default pose, smiling), tree, sun
    for row in rows.values():
        x, y, flip = int(row[-3]), int(row[-2]), int(row[-1])
        assert (x - 10) % 20 == 0 and (y - 10) % 20 == 0 and flip in (0, 1)  # bin centres
    assert png_size(picture) == (V.CANVAS_W, V.CANVAS_H)


def test_scene_with_named_cliparts_and_a_heatmap(ckpt, tmp_path, capsys):
    picture = tmp_path / "named.png"
    code, out = scene(capsys, TEXT, "--ckpt", str(ckpt), "--cliparts", "hb0_0s,p_8s", "--heatmap", "tree",
                      "--decoding", "ho", "--picture", str(picture))
    assert code == 0
    assert "2 clip-arts placed by ho" in out and "hb0_0s.png" in out and "p_8s.png" in out
    assert "s_3s.png" not in out  # the sun is named by the text, but --cliparts decides
    heatmap = tmp_path / "named_heatmap.png"
    assert f"where the tree could go: {heatmap}" in out
    png_size(picture)
    png_size(heatmap)


def test_scene_with_a_clipart_predictor(ckpt, predictor_ckpt, tmp_path, capsys):
    code, out = scene(capsys, TEXT, "--ckpt", str(ckpt), "--predictor", str(predictor_ckpt), "--decoding", "ss",
                      "--picture", str(tmp_path / "p.png"))
    assert code == 0
    placed = [line.split()[1] for line in out.splitlines() if ".png" in line and "drawn" not in line]
    assert sum(n.startswith("hb0_") for n in placed) == 1 and sum(n.startswith("hb1_") for n in placed) == 1
    png_size(tmp_path / "p.png")


def test_scene_completes_a_group_of_a_dataset_scene(ckpt, test_file, tmp_path, capsys):
    picture = tmp_path / "complete.png"
    code, out = scene(capsys, "--ckpt", str(ckpt), "--complete", str(test_file), "--scene", "0", "--group", "people",
                      "--picture", str(picture))
    assert code == 0
    first = read_processed(test_file)[0]
    people = [e for e in first["elements"] if V.group_of(e["visual_name"]) == "people"]
    assert "people of scene 0 placed given the rest" in out and "S_abs" in out
    for e in people:
        assert f"truth ({e['x']}, {e['y']}) flip {e['flip']}" in out
    width, height = png_size(picture)
    assert width > height  # ground truth | prediction side by side


# -- scene: bad input --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def missing_group(test_file) -> tuple[int, str]:
    """(scene, group) of the first test scene that has no clip-art of a group."""
    for i, s in enumerate(read_processed(test_file)):
        groups = {V.group_of(e["visual_name"]) for e in s["elements"]}
        missing = [g for g in V.GROUPS if g not in groups]
        if missing:
            return i, missing[0]
    raise AssertionError("every test scene has every group")


BAD = {
    "no known clip-art": (["the weather is nice today.", "--ckpt", "{ckpt}"], ["names no clip-art", "--cliparts"]),
    "empty text": (["   ", "--ckpt", "{ckpt}"], ["description is empty"]),
    "no text": (["--ckpt", "{ckpt}"], ["description is empty"]),
    "unknown clip-art": ([TEXT, "--ckpt", "{ckpt}", "--cliparts", "hb0_0s,zz_1s"], ["zz_1s", "--cliparts"]),
    "missing ckpt": ([TEXT, "--ckpt", "{tmp}/nope.ckpt"], ["nope.ckpt", "checkpoint not found"]),
    "predictor as ckpt": ([TEXT, "--ckpt", "{predictor}"], ["clip-art predictor checkpoint", "--predictor"]),
    "text file as ckpt": ([TEXT, "--ckpt", "{tmp}/notes.txt"], ["notes.txt", "not a PyTorch checkpoint"]),
    "other task's ckpt": ([TEXT, "--ckpt", "{tmp}/layouts.ckpt"], ["not a scenes checkpoint", "LayoutModule"]),
    "ckpt as predictor": ([TEXT, "--ckpt", "{ckpt}", "--predictor", "{ckpt}"], ["--predictor must be"]),
    "scene out of range": (["--ckpt", "{ckpt}", "--complete", "{test}", "--scene", "300"],
                           ["--scene 300 is out of range", "300 scenes"]),
    "group not in scene": (["--ckpt", "{ckpt}", "--complete", "{test}", "--scene", "{scene}", "--group", "{group}"],
                           ["has no {group} clip-art"]),
    "unknown group": (["--ckpt", "{ckpt}", "--complete", "{test}", "--group", "robots"], ["unknown group 'robots'"]),
    "complete a text file": (["--ckpt", "{ckpt}", "--complete", "{tmp}/notes.txt"], ["not a processed scene JSON"]),
    "complete a missing file": (["--ckpt", "{ckpt}", "--complete", "{tmp}/none.json"], ["scene file not found"]),
    "unknown decoding": ([TEXT, "--ckpt", "{ckpt}", "--decoding", "best"], ["unknown decoding strategy 'best'"]),
    "hc of a continuous model": ([TEXT, "--ckpt", "{continuous}", "--decoding", "hc"], ["hc needs a discrete",
                                                                                      "--decoding"]),
    "heat-map of a continuous model": ([TEXT, "--ckpt", "{continuous}", "--heatmap", "tree"], ["heat-map needs"]),
    "heatmap of an absent clip-art": ([TEXT, "--ckpt", "{ckpt}", "--heatmap", "dog"], ["--heatmap 'dog'", "mike"]),
    "picture without a suffix": ([TEXT, "--ckpt", "{ckpt}", "--picture", "{tmp}/scene"], ["--picture", ".png"]),
}


@pytest.mark.parametrize("case", BAD)
def test_scene_bad_input_is_one_clear_error(case, ckpt, predictor_ckpt, continuous_ckpt, test_file, missing_group,
                                            tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("not a checkpoint\n")
    torch.save({"state_dict": {}, "hyper_parameters": {}, "modalbridge_class": "LayoutModule"},
               tmp_path / "layouts.ckpt")
    scene_no, group = missing_group
    fill = {"ckpt": ckpt, "predictor": predictor_ckpt, "continuous": continuous_ckpt, "test": test_file,
            "tmp": tmp_path, "scene": scene_no, "group": group}
    argv, words = BAD[case]
    picture = tmp_path / "picture.png"
    argv = [a.format(**fill) for a in argv]
    if "--picture" not in argv:
        argv += ["--picture", str(picture)]
    assert main(["scene", *argv]) == 2
    one_error(capsys, *(w.format(**fill) for w in words))
    assert not picture.exists()  # nothing drawn


def test_scene_with_a_continuous_model_decodes_with_its_own_strategy(continuous_ckpt, tmp_path, capsys):
    code, out = scene(capsys, TEXT, "--ckpt", str(continuous_ckpt), "--picture", str(tmp_path / "c.png"))
    assert code == 0 and "3 clip-arts placed by ho" in out
    png_size(tmp_path / "c.png")


def test_scene_rejects_an_unknown_precision(ckpt, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["scene", TEXT, "--ckpt", str(ckpt), "--precision", "fp8"])
    assert exit_.value.code == 2
    assert "invalid choice: 'fp8'" in capsys.readouterr().err


def test_scene_ckpt_of_the_world_config_names_its_tokenizer(ckpt):
    """The checkpoint carries the data module's tokenizer (the scene verb tokenises with it)."""
    data = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert data["modalbridge_class"] == "SceneLayoutModule"
    assert data["modalbridge_data"]["hparams"]["tokenizer"] == "minilm-l6"
    assert json.loads(json.dumps(data["hyper_parameters"]["model_kwargs"]))["bert_config"] == TINY_BERT
