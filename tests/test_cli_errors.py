"""The command line speaks to people: every expected failure ends in ONE ``modalbridge: error:`` line naming the
file, row or key (what was expected, how to fix it) and a non-zero exit, without a Python traceback unless
``--debug`` / ``MODALBRIDGE_DEBUG=1``. Scenarios: bad videos and checkpoints for ``recognize``, misspelled config
keys and bad values for ``fit``, a dataset root without annotations, unknown datasets/worlds/benchmarks/demos, a
truncated video (a warning, not a failure), and ``data check``'s closing summary."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from cli_checks import one_error
from modalbridge.cli import main
from modalbridge.core.errors import DataError
from modalbridge.io.video import write_video

REPO = Path(__file__).resolve().parents[1]
CONFIG = str(REPO / "configs" / "actions" / "world.yaml")
HEADS = {"verb": 3, "noun": 4}


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch):
    monkeypatch.delenv("MODALBRIDGE_DEBUG", raising=False)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    """A good checkpoint of a tiny classifier, laid out as `modalbridge fit` writes it (Lightning's state_dict and
    hyper_parameters, plus the module class and the data module's class names and sampling hparams)."""
    from modalbridge.core.classifier import ModalityClassifierModule

    torch.manual_seed(0)
    module = ModalityClassifierModule("r3d_tiny", HEADS)
    path = tmp_path_factory.mktemp("ckpt") / "last.ckpt"
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams),
                "modalbridge_class": "ModalityClassifierModule",
                "modalbridge_data": {"class_names": {"verb": ["take", "put", "wash"],
                                                     "noun": ["cup", "plate", "tap", "knife"]},
                                     "hparams": {"num_frames": 4, "stride": 2, "size": 32}}}, path)
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    frames = np.random.default_rng(0).integers(0, 255, (24, 32, 32, 3), dtype=np.uint8)
    return write_video(tmp_path_factory.mktemp("video") / "clip.mp4", frames, fps=12)


# -- recognize: videos and checkpoints -------------------------------------------------------------------
def test_recognize_with_a_good_checkpoint_and_video_prints_the_labels(ckpt, clip, capsys):
    assert main(["recognize", str(clip), "--ckpt", str(ckpt), "--top", "2"]) == 0
    out = capsys.readouterr().out
    assert "verb:" in out and "noun:" in out


@pytest.mark.parametrize("kind, expected", [("empty", "empty file (0 bytes)"),
                                            ("text", "cannot open as a media file"),
                                            ("missing", "file not found")])
def test_recognize_a_bad_video(kind, expected, ckpt, tmp_path, capsys):
    video = tmp_path / f"{kind}.mp4"
    if kind == "empty":
        video.write_bytes(b"")
    elif kind == "text":
        video.write_text("shopping list: eggs, milk\n" * 20)
    assert main(["recognize", str(video), "--ckpt", str(ckpt)]) != 0
    one_error(capsys, video, expected)


@pytest.mark.parametrize("kind, expected", [("missing", "checkpoint not found"),
                                            ("folder", "is a folder, expected a .ckpt file"),
                                            ("text", "not a PyTorch checkpoint (a text file"),
                                            ("zip", "not a readable Lightning checkpoint")])
def test_recognize_a_bad_checkpoint(kind, expected, clip, tmp_path, capsys):
    path = tmp_path / ("run" if kind == "folder" else "last.ckpt")
    if kind == "folder":
        path.mkdir()
    elif kind == "text":
        path.write_text("not a checkpoint\n")
    elif kind == "zip":  # a zip archive that is not a torch.save file (e.g. a truncated download of one)
        import zipfile

        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("notes.txt", "hello")
    assert main(["recognize", str(clip), "--ckpt", str(path)]) != 0
    one_error(capsys, path, expected)


def test_a_truncated_video_warns_how_many_frames_were_read_and_still_answers(ckpt, tmp_path, caplog, capsys):
    frames = np.random.default_rng(1).integers(0, 255, (48, 32, 32, 3), dtype=np.uint8)
    data = write_video(tmp_path / "whole.mp4", frames, fps=12).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with caplog.at_level(logging.WARNING, logger="modalbridge.io.video"):
        assert main(["recognize", str(cut), "--ckpt", str(ckpt)]) == 0
    assert "verb:" in capsys.readouterr().out
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert str(cut) in warning and "requested frames" in warning and "repeat frame" in warning


# -- fit: config keys and values --------------------------------------------------------------------------
def test_misspelled_key_on_the_command_line_names_it_and_the_closest_valid_key(tmp_path, capsys):
    assert main(["fit", "--config", CONFIG, "--model.init_args.lrr", "0.1"]) != 0
    line = one_error(capsys, "'model.init_args.lrr'", "on the command line", "did you mean 'model.init_args.lr'?")
    assert "Valid keys of " in line and "(model.init_args)" in line and "weight_decay" in line  # the model's class
    assert "NoneType" not in line


def test_misspelled_key_in_a_yaml_file_names_the_file(tmp_path, capsys):
    extra = tmp_path / "mine.yaml"
    extra.write_text("data:\n  init_args:\n    batch_sise: 4\n")
    assert main(["fit", "--config", CONFIG, "--config", str(extra)]) != 0
    one_error(capsys, "'data.init_args.batch_sise'", f"(in {extra})", "did you mean 'data.init_args.batch_size'?")


def test_misspelled_trainer_key_is_not_taken_as_an_abbreviation(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["fit", "--config", CONFIG, "--trainer.max_epoch", "2", "--trainer.default_root_dir", str(run)]) != 0
    line = one_error(capsys, "'trainer.max_epoch'", "did you mean 'trainer.max_epochs'?")
    assert "Valid keys of trainer" in line and "limit_train_batches" in line
    assert not run.exists()


def test_misspelled_top_level_key_in_a_yaml_file(tmp_path, capsys):
    extra = tmp_path / "top.yaml"
    extra.write_text("trainerr:\n  max_epochs: 2\n")
    assert main(["fit", "--config", CONFIG, "--config", str(extra)]) != 0
    one_error(capsys, "'trainerr.max_epochs'", str(extra), "did you mean 'trainer'?")


def test_a_value_of_the_wrong_type_says_what_was_expected(capsys):
    assert main(["fit", "--config", CONFIG, "--trainer.max_epochs", "two"]) != 0
    one_error(capsys, "'trainer.max_epochs'", "got 'two'", "expected int")


def test_a_missing_config_file(tmp_path, capsys):
    assert main(["fit", "--config", str(tmp_path / "nope.yaml")]) != 0
    one_error(capsys, "config file not found", tmp_path / "nope.yaml")


@pytest.mark.parametrize("kind", ["empty", "missing"])
def test_fit_on_a_root_without_annotations_names_the_missing_file(kind, tmp_path, capsys):
    root = tmp_path / "data"
    if kind == "empty":
        root.mkdir()
    run = tmp_path / "run"
    assert main(["fit", "--config", CONFIG, "--data.init_args.root", str(root), "--data.init_args.num_workers", "0",
                 "--trainer.default_root_dir", str(run)]) != 0
    line = one_error(capsys, root / "EPIC_100_verb_classes.csv", "missing annotation file")
    assert (f"the folder {root} does not exist" in line) == (kind == "missing")
    assert not run.exists()


# -- other verbs ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv, names", [
    (["data", "check", "epic-kitchens-100", "/nonexistent/ek"], ["/nonexistent/ek", "dataset folder not found"]),
    (["data", "check", "nosuchdataset", "/tmp"], ["unknown dataset 'nosuchdataset'", "epic-kitchens-100"]),
    (["world", "nosuchtask"], ["unknown world 'nosuchtask'", "kitchen"]),
    (["bench", "nosuch"], ["unknown benchmark 'nosuch'", "clip_pipeline"]),
    (["demo", "nosuch"], ["no demo for task 'nosuch'", "distill"]),
    (["models", "--task", "nosuch"], ["unknown task 'nosuch'", "layouts"]),
])
def test_unknown_names_and_missing_roots(argv, names, capsys):
    assert main(argv) != 0
    one_error(capsys, *names)


def test_data_pack_of_a_folder_without_segment_csvs_writes_nothing(tmp_path, capsys):
    out = tmp_path / "packed"
    assert main(["data", "pack", "--dataset", "epic-kitchens-100", "--root", str(tmp_path), "--out", str(out)]) != 0
    one_error(capsys, tmp_path, "no segment CSV", "nothing to pack")
    assert not out.exists()


def test_data_check_ends_with_what_it_found(tmp_path, capsys):
    root = tmp_path / "ek"
    root.mkdir()
    for name, keys in (("EPIC_100_verb_classes.csv", ["take", "put"]), ("EPIC_100_noun_classes.csv", ["cup"])):
        (root / name).write_text("id,key,instances,category\n" + "".join(f"{i},{k},[],c\n" for i, k in enumerate(keys)))
    header = ("narration_id,participant_id,video_id,narration_timestamp,start_timestamp,stop_timestamp,"
              "start_frame,stop_frame,narration,verb,verb_class,noun,noun_class,all_nouns,all_noun_classes")
    rows = [f"P01_0{v}_{i},P01,P01_0{v},00:00:00.50,00:00:01.00,00:00:02.00,60,120,take cup,take,0,cup,0,['cup'],[0]"
            for v in (1, 2) for i in range(3)]
    (root / "EPIC_100_validation.csv").write_text("\n".join([header, *rows]) + "\n")
    assert main(["data", "check", "epic-kitchens-100", str(root)]) == 0
    assert capsys.readouterr().out.splitlines()[-2:] == [
        "no problems found", "found: 1 splits, 6 segments, 2 verb classes, 1 noun classes, 2 videos"]


# -- --debug / MODALBRIDGE_DEBUG ------------------------------------------------------------------------
def test_modalbridge_debug_raises_instead_of_one_line(monkeypatch):
    monkeypatch.setenv("MODALBRIDGE_DEBUG", "1")
    with pytest.raises(DataError, match="dataset folder not found"):
        main(["data", "check", "epic-kitchens-100", "/nonexistent/ek"])


def test_debug_flag_shows_the_traceback_in_a_subprocess(tmp_path):
    env = {**os.environ, "MODALBRIDGE_HOME": str(tmp_path / "home")}
    env.pop("MODALBRIDGE_DEBUG", None)
    argv = [sys.executable, "-m", "modalbridge.cli", "data", "check", "epic-kitchens-100", str(tmp_path / "nope")]
    plain = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    debug = subprocess.run([*argv[:3], "--debug", *argv[3:]], capture_output=True, text=True, env=env, timeout=120)
    assert plain.returncode != 0 and "Traceback" not in plain.stderr
    assert "modalbridge: error:" in plain.stderr and "--debug" in plain.stderr
    assert debug.returncode != 0 and "Traceback (most recent call last)" in debug.stderr
    assert "DataError" in debug.stderr and "dataset folder not found" in debug.stderr


def test_data_prepare_has_one_parser_per_dataset_with_its_own_options(capsys):
    """``data prepare <dataset>``: an unknown dataset is refused naming the known ones; a dataset's own options
    (``DatasetEntry.prepare_arguments``) appear in its help only."""
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "prepare", "nosuchdataset", "/tmp"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'nosuchdataset'" in err and "something-else" in err
    with pytest.raises(SystemExit):
        main(["data", "prepare", "something-else", "--help"])
    assert "--out" in capsys.readouterr().out
