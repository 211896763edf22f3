"""Test-wide settings: offline hub, 2 threads, and an isolated MODALBRIDGE_HOME shared by the session
(so the embedded world is generated once per test session)."""

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
torch.set_num_threads(2)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def _modalbridge_home(tmp_path_factory):
    if "MODALBRIDGE_TEST_HOME" in os.environ:  # reuse a warm cache between local runs
        os.environ["MODALBRIDGE_HOME"] = os.environ["MODALBRIDGE_TEST_HOME"]
    else:
        os.environ["MODALBRIDGE_HOME"] = str(tmp_path_factory.mktemp("mbhome"))
    yield


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module's tests (tiny models run 5–100× faster on one thread than on two on a
    loaded 2-core machine); the task folders' conftests make it automatic."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def forbid_video(monkeypatch):
    """``forbid_video(module, ..., dataset=None)``: the modules' ``probe``/``read_frames`` and the dataset's
    ``video_path`` raise, so a test shows a code path never opens a video file."""

    def refuse(*args, **kwargs):
        raise AssertionError("a video was opened where none should be")

    def forbid(*modules, dataset=None):
        for module in modules:
            monkeypatch.setattr(module, "probe", refuse)
            monkeypatch.setattr(module, "read_frames", refuse)
        if dataset is not None:
            monkeypatch.setattr(dataset, "video_path", refuse)

    return forbid


@pytest.fixture
def tiny_ssv2(tmp_path):
    """A 4-video SSv2 folder (3 train, 1 validation) copied from the embedded world's ``ssv2`` part: the
    labels file, trimmed split lists and the four ``videos/<id>.webm``; no optical flow yet."""
    import json
    import shutil

    from modalbridge.core.worlds import resolve_root

    world = resolve_root("world://kitchen/ssv2")
    root = tmp_path / "ssv2"
    (root / "videos").mkdir(parents=True)
    shutil.copy(world / "something-something-v2-labels.json", root)
    for split, count in (("train", 3), ("validation", 1)):
        name = f"something-something-v2-{split}.json"
        entries = json.loads((world / name).read_text())[:count]
        (root / name).write_text(json.dumps(entries))
        for entry in entries:
            shutil.copy(world / "videos" / f"{entry['id']}.webm", root / "videos")
    return root


@pytest.fixture
def tiny_ek(tmp_path):
    """A 5-segment EPIC-KITCHENS-100 folder (3 train, 2 validation rows of the embedded world): the class
    tables and video info copied, trimmed split CSVs, and the segments' videos and flow folders linked
    (symlinks into the world cache, read-only)."""
    import csv
    import shutil

    from modalbridge.core.worlds import resolve_root

    world = resolve_root("world://kitchen/ek100")
    root = tmp_path / "ek100"
    root.mkdir()
    for name in ("EPIC_100_verb_classes.csv", "EPIC_100_noun_classes.csv", "EPIC_100_video_info.csv"):
        shutil.copy(world / name, root)
    videos = set()
    for split, count in (("train", 3), ("validation", 2)):
        name = f"EPIC_100_{split}.csv"
        with (world / name).open(newline="") as handle:
            rows = list(csv.reader(handle))
        with (root / name).open("w", newline="") as handle:
            csv.writer(handle).writerows(rows[:count + 1])
        videos |= {row[rows[0].index("video_id")] for row in rows[1:count + 1]}
    for video in videos:
        participant = video.split("_")[0]
        for sub, name in (("videos", f"{video}.MP4"), ("flow_frames", video)):
            (root / participant / sub).mkdir(parents=True, exist_ok=True)
            (root / participant / sub / name).symlink_to(world / participant / sub / name)
    return root
