"""``data check``: dataset folders are validated and every problem is listed with its file and row."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from modalbridge.core.errors import DataError
from modalbridge.datasets import check
from modalbridge.datasets.check import MAX_LISTED, CheckReport, check_dataset, dataset_checkers, format_report

EK_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "epic_kitchens_100"
needs_real = pytest.mark.skipif(not (EK_DIR / "EPIC_100_validation.csv").is_file(),
                                reason="shared EPIC-KITCHENS-100 annotations not present")

EK_HEADER = ("narration_id,participant_id,video_id,narration_timestamp,start_timestamp,stop_timestamp,start_frame,"
             "stop_frame,narration,verb,verb_class,noun,noun_class,all_nouns,all_noun_classes")


def _ek_row(video: str, i: int, start: int, stop: int) -> str:
    return (f"{video}_{i},{video.split('_')[0]},{video},00:00:00.500,00:00:{start // 60:02d}.00,"
            f"00:00:{stop // 60:02d}.00,{start},{stop},take plate,take,0,plate,2,['plate'],[2]")


def _tiny_ek(root: Path) -> Path:
    """Tiny class tables + a 4-row validation CSV + video_info for its two videos."""
    root.mkdir(parents=True, exist_ok=True)
    for name, keys in (("EPIC_100_verb_classes.csv", ["take", "put"]), ("EPIC_100_noun_classes.csv", ["tap", "x", "plate"])):
        lines = ["id,key,instances,category"] + [f"{i},{k},[],c" for i, k in enumerate(keys)]
        (root / name).write_text("\n".join(lines) + "\n")
    rows = [_ek_row("P01_11", 0, 1, 113), _ek_row("P01_11", 1, 120, 300), _ek_row("P02_03", 0, 61, 590),
            _ek_row("P02_03", 1, 600, 900)]
    (root / "EPIC_100_validation.csv").write_text("\n".join([EK_HEADER, *rows]) + "\n")
    (root / "EPIC_100_video_info.csv").write_text(
        "video_id,duration,fps,resolution\nP01_11,10.0,59.94,1920x1080\nP02_03,20.0,29.97,1920x1080\n")
    return root


# --------------------------------------------------------------------------------------------- EPIC
@needs_real
def test_real_epic_root_has_no_problems():
    assert check_dataset("epic-kitchens-100", EK_DIR) == []
    assert format_report([]) == "no problems found"
    problems, summary = check_dataset("epic-kitchens-100", EK_DIR, summary=True)
    assert problems == [] and summary["verb classes"] == 97 and summary["noun classes"] == 300
    assert summary["splits"] >= 1 and summary["segments"] > 0 and summary["videos"] > 0


@needs_real
def test_missing_train_only_when_asked():
    (problem,) = check_dataset("epic-kitchens-100", EK_DIR, splits=["train"])
    assert problem.path == EK_DIR / "EPIC_100_train.csv" and "missing train" in str(problem)
    with pytest.raises(ValueError, match="unknown split"):
        check_dataset("epic-kitchens-100", EK_DIR, splits=["val"])


@needs_real
def test_broken_real_copy_lists_every_row(tmp_path):
    for path in EK_DIR.glob("*.csv"):
        shutil.copy(path, tmp_path / path.name)
    val = tmp_path / "EPIC_100_validation.csv"
    with open(val, newline="") as handle:
        rows = list(csv.reader(handle))
    header = rows[0]
    rows[10][header.index("verb_class")] = "97"  # out of range: 97 verbs
    rows[20][header.index("start_timestamp")] = "0:0:1"
    rows[30][header.index("stop_frame")] = "99999999"  # past the end of the video
    with open(val, "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    (tmp_path / "EPIC_100_tail_nouns.csv").write_text("noun\n56\n300\n")

    problems = check_dataset("epic-kitchens-100", tmp_path)
    assert [(p.path.name, p.row, p.field) for p in problems] == [
        ("EPIC_100_tail_nouns.csv", 3, "noun"),
        ("EPIC_100_validation.csv", 11, "verb_class"),
        ("EPIC_100_validation.csv", 21, "start_timestamp"),
        ("EPIC_100_validation.csv", 31, "stop_frame"),
    ]
    assert "past the end of video" in str(problems[-1])
    report = format_report(problems).splitlines()
    assert len(report) == 5 and report[-1] == "4 problems found"
    assert report[1] == f"{val}: row 11: field verb_class: class id 97 out of range 0..96"


def test_epic_required_files(tmp_path):
    root = tmp_path / "ek"
    root.mkdir()
    problems = check_dataset("epic-kitchens-100", root)
    assert {p.path.name for p in problems} == {"EPIC_100_verb_classes.csv", "EPIC_100_noun_classes.csv", "ek"}
    assert "no segment CSV found" in format_report(problems)


@pytest.mark.parametrize("name", sorted(dataset_checkers()))
def test_a_root_that_is_not_a_folder_is_an_error_naming_it(name, tmp_path):
    with pytest.raises(DataError, match="dataset folder not found") as info:
        check_dataset(name, tmp_path / "nope")
    assert info.value.path == tmp_path / "nope"
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="is a file, expected the dataset folder"):
        check_dataset(name, tmp_path / "file")


def test_epic_summary_counts_splits_segments_classes_and_videos(tmp_path):
    root = _tiny_ek(tmp_path / "ek")
    report = dataset_checkers()["epic-kitchens-100"](root)
    assert isinstance(report, CheckReport) and isinstance(report, tuple)  # the CLI unpacks (problems, summary)
    problems, summary = report
    assert problems == []
    assert summary == {"splits": 1, "segments": 4, "verb classes": 2, "noun classes": 3, "videos": 2}
    assert check_dataset("epic-kitchens-100", root, summary=True) == report
    assert format_report(problems, summary).splitlines() == [
        "no problems found", "found: 1 splits, 4 segments, 2 verb classes, 3 noun classes, 2 videos"]


def test_epic_media_check_over_many_videos_shows_progress(tmp_path, monkeypatch, capsys):
    root = _tiny_ek(tmp_path / "ek")
    (root / "videos").mkdir()
    monkeypatch.setenv("MODALBRIDGE_PROGRESS", "lines")
    monkeypatch.setattr(check, "PROGRESS_MIN", 2)
    problems = check_dataset("epic-kitchens-100", root)
    assert [p.field for p in problems] == ["video_id", "video_id"]  # neither video file exists
    err = capsys.readouterr().err
    assert "check media of EPIC_100_validation.csv: 2/2 videos" in err
    monkeypatch.setattr(check, "PROGRESS_MIN", 3)  # two videos: too few for progress
    check_dataset("epic-kitchens-100", root)
    assert capsys.readouterr().err == ""


def test_epic_frames_past_video_end_use_rgb_frame_rate(tmp_path):
    root = _tiny_ek(tmp_path / "ek")
    # P02_03 is a 29.97 fps EK-55 recording whose frames are numbered at 60 fps: 20 s → 1200 frames, so 900 is fine
    assert check_dataset("epic-kitchens-100", root) == []
    (root / "EPIC_100_video_info.csv").write_text(
        "video_id,duration,fps,resolution\nP01_11,4.0,59.94,1920x1080\n")
    problems = check_dataset("epic-kitchens-100", root)
    assert [(p.row, p.field) for p in problems] == [(3, "stop_frame"), (4, "video_id")]
    assert "stop_frame 300 is past the end of video P01_11 (4.00 s = 240 frames at 60 fps)" in str(problems[0])
    assert "P02_03 is not in EPIC_100_video_info.csv" in str(problems[1])


def test_epic_media_checked_only_when_present(tmp_path):
    root = _tiny_ek(tmp_path / "ek")
    (root / "P01" / "videos").mkdir(parents=True)
    (root / "P01" / "videos" / "P01_11.MP4").touch()
    frames = root / "P01" / "rgb_frames" / "P01_11"
    frames.mkdir(parents=True)
    (frames / "frame_0000000299.jpg").touch()  # the last segment needs frame 300
    (root / "P02" / "rgb_frames").mkdir(parents=True)
    (root / "P02" / "rgb_frames" / "P02_03.tar").touch()  # packed release is accepted as is
    problems = check_dataset("epic-kitchens-100", root)
    assert [(p.row, p.field) for p in problems] == [(2, "video_id"), (4, "video_id")]
    assert "frame_0000000300.jpg is missing" in str(problems[0])
    assert "video P02_03: no video file" in str(problems[1]) and "needed by 2 segment(s)" in str(problems[1])
    (frames / "frame_0000000300.jpg").touch()
    (root / "videos").mkdir()
    (root / "videos" / "P02_03.mp4").touch()
    flow = root / "P01" / "flow_frames" / "P01_11"
    for axis in "uv":
        (flow / axis).mkdir(parents=True)
        (flow / axis / "frame_0000000150.jpg").touch()  # flow frame = ceil(300 / 2)
    problems = check_dataset("epic-kitchens-100", root)
    assert [str(p).split(": ", 3)[-1] for p in problems] == [
        f"video P02_03: no frame folder {root / 'P02' / 'flow_frames' / 'P02_03'} (or P02_03.tar) "
        "(needed by 2 segment(s))"]


# --------------------------------------------------------------------------------------------- SSv2 / SthElse
LABELS = {"Holding something": "0", "Pushing something": "1"}
ENTRIES = [{"id": "1", "label": "holding a cup", "template": "Holding [something]", "placeholders": ["a cup"]},
           {"id": "2", "label": "pushing a pen", "template": "Pushing [something]", "placeholders": ["a pen"]}]


def _dump(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def _ssv2(root: Path) -> Path:
    _dump(root / "something-something-v2-labels.json", LABELS)
    _dump(root / "something-something-v2-train.json", ENTRIES[:1])
    _dump(root / "something-something-v2-validation.json", ENTRIES[1:])
    return root


def test_ssv2_checker(tmp_path):
    root = _ssv2(tmp_path / "ssv2")
    assert check_dataset("ssv2", root) == []
    assert check_dataset("ssv2", root, summary=True).summary == {
        "splits": 2, "videos": 2, "labelled videos": 2, "classes": 2}
    _dump(root / "something-something-v2-test.json", [{"id": "3"}, {"id": "3"}])
    bad = [*ENTRIES, {"id": "4", "label": "x", "template": "Holding [something] up", "placeholders": []}]
    _dump(root / "something-something-v2-train.json", bad)
    problems = check_dataset("ssv2", root)
    assert [(p.path.name, p.field) for p in problems] == [
        ("something-something-v2-train.json", "[2].template"), ("something-something-v2-test.json", "[1].id")]
    assert "nearest known template: 'Holding something'" in str(problems[0])
    (root / "videos").mkdir()
    for vid in ("1", "2"):
        (root / "videos" / f"{vid}.webm").touch()
    problems, summary = check_dataset("ssv2", root, summary=True)
    assert [p.message for p in problems[2:]] == ["video 3: no file videos/3.webm (or .mp4)"]
    # train (2 good entries of 3), validation, test (id 3, unlabelled; its duplicate is a problem)
    assert summary == {"splits": 3, "videos": 3, "labelled videos": 2, "classes": 2, "video files": 2}
    (root / "something-something-v2-labels.json").unlink()
    assert "file not found" in str(check_dataset("ssv2", root)[0])


def test_missing_video_listing_is_capped(tmp_path):
    root = _ssv2(tmp_path / "ssv2")
    (root / "videos").mkdir()
    _dump(root / "something-something-v2-validation.json",
          [{"id": str(i), "label": "x", "template": "Holding [something]", "placeholders": []}
           for i in range(100, 100 + MAX_LISTED + 7)])
    problems = check_dataset("ssv2", root)
    assert len(problems) == 1 + MAX_LISTED + 1  # train's video + the first MAX_LISTED + one summary
    assert problems[-1].message == "... and 7 more videos of this list without a file"


def _something_else(root: Path) -> Path:
    _dump(root / "compositional" / "labels.json", {"Holding something": 0, "Pushing something": 1})
    _dump(root / "compositional" / "train.json", ENTRIES[:1])
    _dump(root / "compositional" / "validation.json", ENTRIES[1:])
    box = {"box2d": {"x1": 1.0, "y1": 2.0, "x2": 30.0, "y2": 40.0}, "category": "hand", "standard_category": "hand"}
    _dump(root / "bounding_box_smthsmth_part1.json", {"1": [{"name": "1/0001.jpg", "labels": [box]}]})
    _dump(root / "boxes" / "bounding_box_smthsmth_part2.json", {"2": [{"name": "2/0001.jpg", "labels": [box]}]})
    _dump(root / "videoid2size.json", {"1": [427, 240], "2": [320, 240]})
    return root


def test_something_else_checker(tmp_path):
    root = _something_else(tmp_path / "se")
    assert check_dataset("something-else", root) == []
    assert check_dataset("something-else", root, summary=True).summary == {
        "splits": 2, "videos": 2, "labelled videos": 2, "classes": 2, "boxed videos": 2, "boxes": 2}
    _dump(root / "videoid2size.json", {"1": [427, 240]})
    (problem,) = check_dataset("something-else", root)
    assert problem.message == "video 2 has boxes but no size in videoid2size.json"
    _dump(root / "boxes" / "bounding_box_smthsmth_part2.json", {"2": [{"name": "2/0001.jpg", "labels": [{}]}]})
    (problem,) = check_dataset("something-else", root)
    assert problem.field == "2[0].labels[0]"
    (root / "videoid2size.json").unlink()
    _dump(root / "fewshot" / "base_labels.json", {"Holding something": 0})
    problems = check_dataset("something-else", root)
    assert [Path(p.path).name for p in problems] == [
        "base_training_set.json", "base_validation_set.json", "bounding_box_smthsmth_part2.json",
        "videoid2size.json"]
    empty = tmp_path / "empty"
    empty.mkdir()
    messages = format_report(check_dataset("something-else", empty))
    assert "no split labels file found" in messages and "no box annotations" in messages


def test_check_dataset_unknown_name_lists_known(tmp_path):
    with pytest.raises(ValueError, match="atlas, epic-kitchens-100, facts, scenes, something-else, ssv2"):
        check_dataset("kinetics", tmp_path)
    assert {"atlas", "epic-kitchens-100", "facts", "ssv2", "something-else", "scenes"} <= set(dataset_checkers())


def test_format_report():
    assert format_report([]) == "no problems found"
    assert format_report([], {"splits": 2, "videos": 12}) == "no problems found\nfound: 2 splits, 12 videos"
    problems = [DataError("bad", path="a.csv", row=3, field="x"), DataError("missing", path="b.csv")]
    assert format_report(problems) == "a.csv: row 3: field x: bad\nb.csv: missing\n2 problems found"
    assert format_report(problems[:1]).endswith("1 problem found")
