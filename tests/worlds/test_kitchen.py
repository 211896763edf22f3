"""The embedded kitchen world: real formats, determinism, and the signals the three systems rely on.

One small world is generated per module (``world`` fixture); the default-size world is generated once to
time it. Media are decoded with PyAV directly and flow JPEGs with OpenCV, independently of ``modalbridge.io``.
"""

from __future__ import annotations

import ast
import csv
import json
import math
import re
import time
from collections import defaultdict
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from modalbridge.worlds.kitchen import (
    EK_COLUMNS,
    MOTION_TEMPLATES,
    SSV2_TEMPLATES,
    WORLD_VERSION,
    KitchenWorldConfig,
    config_hash,
    kitchen_world,
    make_kitchen_world,
)

REAL_EK = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "epic_kitchens_100"

SMALL = KitchenWorldConfig(train_videos=("P01_101", "P02_101"), val_videos=("P01_104", "P18_101"),
                           train_segments=72, val_segments=48, ss_train_clips=64, ss_val_clips=32)
TINY = KitchenWorldConfig(train_videos=("P02_101",), val_videos=("P18_101",), train_segments=6, val_segments=4,
                          ss_train_clips=8, ss_val_clips=8)
TIMESTAMP = re.compile(r"(\d\d):(\d\d):(\d\d)\.(\d+)")


# --------------------------------------------------------------------------------------------- helpers
@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    return make_kitchen_world(tmp_path_factory.mktemp("kitchen") / "world", seed=0, config=SMALL)


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _seconds(text: str) -> float:
    h, m, s, frac = TIMESTAMP.fullmatch(text).groups()
    return int(h) * 3600 + int(m) * 60 + int(s) + int(frac) / 10 ** len(frac)


def _segments(world: Path, split: str) -> list[dict[str, str]]:
    return _csv(world / "ek100" / f"EPIC_100_{split}.csv")


def _video_path(world: Path, video_id: str) -> Path:
    return world / "ek100" / video_id.split("_")[0] / "videos" / f"{video_id}.MP4"


def _decode_video(path: Path) -> tuple[np.ndarray, float]:
    """All frames (T, H, W, 3) uint8 and the stream's frame rate."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(stream)])
        return frames, float(stream.average_rate)


def _probe_video(path: Path) -> tuple[int, float, tuple[int, int]]:
    """Decoded frame count, frame rate and (width, height), without converting frames to RGB."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        count = sum(1 for _ in container.decode(stream))
        return count, float(stream.average_rate), (stream.codec_context.width, stream.codec_context.height)


def _first_frame(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return next(container.decode(video=0)).to_ndarray(format="rgb24")


def _decode_audio(path: Path) -> tuple[np.ndarray, int]:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        chunks = [f.to_ndarray().reshape(-1) for f in container.decode(stream)]
        return np.concatenate(chunks).astype(np.float64), stream.rate


def _fps(world: Path) -> dict[str, float]:
    return {r["video_id"]: float(r["fps"]) for r in _csv(world / "ek100" / "EPIC_100_video_info.csv")}


def _truth(world: Path) -> dict[str, dict[str, str]]:
    return {r["narration_id"]: r for r in _csv(world / "ek100" / "world_truth.csv")}


def _softmax_fit_predict(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, classes: int,
                         iters: int = 3000, lr: float = 0.5, l2: float = 1e-3) -> np.ndarray:
    """Multinomial logistic regression (a linear classifier) by gradient descent on standardised features."""
    mu, sd = x_train.mean(0), x_train.std(0) + 1e-6
    a = np.c_[(x_train - mu) / sd, np.ones(len(x_train))]
    b = np.c_[(x_test - mu) / sd, np.ones(len(x_test))]
    w = np.zeros((a.shape[1], classes))
    target = np.eye(classes)[y_train]
    for _ in range(iters):
        z = a @ w
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        w -= lr * (a.T @ (p - target) / len(a) + l2 * w)
    return (b @ w).argmax(1)


def _clean(x1: float, y1: float, x2: float, y2: float, w: int, h: int) -> tuple[int, int, int, int]:
    """Box cleaning of the layout reference (spec layout_fusion §2.7), re-implemented for the test."""
    def axis(a, b, size):
        lo, hi = max(int(a), 0), max(int(b), 0)
        lo, hi = min(lo, hi), max(lo, hi)
        lo, hi = min(lo, size - 1), min(hi, size - 1)
        if lo == hi == 0:
            hi = 1
        if lo == hi:
            lo -= 1
        return lo, hi
    (a, c), (b, d) = axis(x1, x2, w), axis(y1, y2, h)
    return a, b, c, d


# --------------------------------------------------------------------------------------------- config, cache
def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="even"):
        KitchenWorldConfig(width=127)
    with pytest.raises(ValueError, match="unknown verbs"):
        KitchenWorldConfig(verbs=("take", "fly"))
    with pytest.raises(ValueError, match="PXX_1YY"):
        KitchenWorldConfig(train_videos=("P01_01",))
    with pytest.raises(ValueError, match="unseen"):
        KitchenWorldConfig(train_videos=("P18_101",), val_videos=("P01_104",))
    assert config_hash(TINY, 0) != config_hash(TINY, 1) != config_hash(SMALL, 1)


def test_same_seed_same_world_whatever_the_workers(tmp_path):
    a = make_kitchen_world(tmp_path / "a", seed=3, config=TINY, workers=1)
    b = make_kitchen_world(tmp_path / "b", seed=3, config=TINY, workers=2)
    c = make_kitchen_world(tmp_path / "c", seed=4, config=TINY, workers=1)
    texts = sorted(p.relative_to(a) for p in a.rglob("*") if p.suffix in (".csv", ".json", ".md"))
    assert len(texts) > 15
    for rel in texts:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    for rel in sorted(p.relative_to(a) for p in a.rglob("*") if p.suffix in (".MP4", ".webm")):
        assert np.array_equal(_first_frame(a / rel), _first_frame(b / rel)), rel
    flows = sorted(p.relative_to(a) for p in a.rglob("frame_*.jpg"))
    assert flows and all((a / r).read_bytes() == (b / r).read_bytes() for r in flows[::7])
    assert (a / "ek100" / "EPIC_100_train.csv").read_bytes() != (c / "ek100" / "EPIC_100_train.csv").read_bytes()


def test_label_noise_flips_exactly_the_requested_train_fraction(tmp_path):
    config = KitchenWorldConfig(**{**TINY.__dict__, "train_segments": 10, "label_noise": 0.3, "ss_label_noise": 0.25})
    root = make_kitchen_world(tmp_path / "noisy", seed=0, config=config, workers=1)
    truth = _truth(root)
    train = _segments(root, "train")
    noisy = [r for r in train if truth[r["narration_id"]]["label_noisy"] == "1"]
    assert len(noisy) == 3
    assert all(int(r["verb_class"]) != int(truth[r["narration_id"]]["verb_class"]) for r in noisy)
    assert all(truth[r["narration_id"]]["label_noisy"] == "0" for r in _segments(root, "validation"))
    ss_truth = json.loads((root / "ssv2" / "world_truth.json").read_text())["clips"]
    entries = {e["id"]: e for e in json.loads((root / "ssv2" / "something-something-v2-train.json").read_text())}
    flipped = [i for i, c in ss_truth.items() if c["label_noisy"]]
    assert len(flipped) == 2 and all(entries[i]["template"] != ss_truth[i]["template"] for i in flipped)


def test_kitchen_world_is_cached_atomically(tmp_path):
    root = kitchen_world(TINY, seed=1, cache_dir=tmp_path, workers=1)
    assert root.name == f"kitchen-v{WORLD_VERSION}-{config_hash(TINY, 1)}"
    marker = json.loads((root / ".complete").read_text())
    assert marker["seed"] == 1 and marker["config"]["train_segments"] == 6
    tic = time.perf_counter()
    assert kitchen_world(TINY, seed=1, cache_dir=tmp_path) == root
    assert time.perf_counter() - tic < 1.0
    assert [p.name for p in tmp_path.iterdir()] == [root.name]  # no temporary folder left behind


def test_default_world_generation_time(capsys):
    """Builds (or finds) the session's default world — the one ``world://kitchen/...`` resolves to — and
    reports the generation time recorded in its ``.complete`` marker."""
    tic = time.perf_counter()
    root = kitchen_world()
    elapsed = time.perf_counter() - tic
    seconds = json.loads((root / ".complete").read_text())["seconds"]
    cached = " (built earlier in this session)" if elapsed < 0.5 * seconds else ""
    with capsys.disabled():
        print(f"\n[kitchen world] default config generated in {seconds:.1f} s{cached}")
    assert len(_segments(root, "train")) == 300 and len(_segments(root, "validation")) == 150
    assert len(json.loads((root / "ssv2" / "videoid2size.json").read_text())) == 360
    assert seconds < 60


# --------------------------------------------------------------------------------------------- EPIC format
def test_ek_csvs_have_real_columns_and_consistent_frames(world):
    fps = _fps(world)
    decoded = {v: _probe_video(_video_path(world, v)) for v in fps}
    info = {r["video_id"]: r for r in _csv(world / "ek100" / "EPIC_100_video_info.csv")}
    videos = {}
    for split in ("train", "validation"):
        with (world / "ek100" / f"EPIC_100_{split}.csv").open() as f:
            assert tuple(next(csv.reader(f))) == EK_COLUMNS
        rows = _segments(world, split)
        videos[split] = {r["video_id"] for r in rows}
        by_video = defaultdict(list)
        for r in rows:
            video, rate = r["video_id"], fps[r["video_id"]]
            assert r["participant_id"] == video.split("_")[0]
            assert r["narration_id"].rsplit("_", 1)[0] == video
            first, last = int(r["start_frame"]), int(r["stop_frame"])
            start, stop = _seconds(r["start_timestamp"]), _seconds(r["stop_timestamp"])
            assert len(r["start_timestamp"].split(".")[1]) == 2 and len(r["narration_timestamp"].split(".")[1]) == 3
            assert first == round(start * rate) + 1 and last == round(stop * rate), r["narration_id"]
            assert start <= _seconds(r["narration_timestamp"]) <= stop
            assert 1 <= first < last <= decoded[video][0]
            assert ast.literal_eval(r["all_nouns"]) == [r["noun"]]
            assert ast.literal_eval(r["all_noun_classes"]) == [int(r["noun_class"])]
            by_video[video].append((first, last))
        for spans in by_video.values():  # consecutive, non-overlapping segments with gaps
            assert all(a[1] < b[0] for a, b in zip(spans, spans[1:]))
    assert not videos["train"] & videos["validation"]
    for video, (count, rate, (width, height)) in decoded.items():
        assert math.ceil(float(info[video]["duration"]) * fps[video]) == count
        assert rate == pytest.approx(fps[video])
        assert info[video]["resolution"] == f"{width}x{height}" == "128x96"
    assert {fps[v] for v in fps if v.startswith("P02")} == {25.0} and fps["P01_101"] == 30.0


def test_ek_class_tables_splits_and_real_narrations(world):
    ek = world / "ek100"
    verbs, nouns = _csv(ek / "EPIC_100_verb_classes.csv"), _csv(ek / "EPIC_100_noun_classes.csv")
    assert list(verbs[0]) == ["id", "key", "instances", "category"]
    assert [int(r["id"]) for r in verbs] == list(range(6)) and [int(r["id"]) for r in nouns] == list(range(8))
    assert [r["key"] for r in verbs] == ["take", "put", "wash", "open", "close", "cut"]
    verb_instances = {int(r["id"]): ast.literal_eval(r["instances"]) for r in verbs}
    noun_instances = {int(r["id"]): ast.literal_eval(r["instances"]) for r in nouns}
    rows = _segments(world, "train") + _segments(world, "validation")
    for r in rows:
        assert r["verb"] in verb_instances[int(r["verb_class"])]
        assert r["noun"] in noun_instances[int(r["noun_class"])]
    unseen = {r["participant_id"] for r in _csv(ek / "EPIC_100_unseen_participant_ids_validation.csv")}
    assert unseen == {"P18"}
    assert unseen <= {r["participant_id"] for r in _segments(world, "validation")}
    assert not unseen & {r["participant_id"] for r in _segments(world, "train")}
    tail_verbs = {int(r["verb"]) for r in _csv(ek / "EPIC_100_tail_verbs.csv")}
    tail_nouns = {int(r["noun"]) for r in _csv(ek / "EPIC_100_tail_nouns.csv")}
    counts = np.bincount([int(r["verb_class"]) for r in _segments(world, "train")], minlength=6)
    assert tail_verbs and max(counts[list(tail_verbs)]) <= min(np.delete(counts, list(tail_verbs)))
    assert tail_nouns and tail_nouns <= set(range(8))
    assert "Creative Commons" in (ek / "license.txt").read_text()
    if not REAL_EK.is_dir():
        pytest.skip("real EPIC-KITCHENS-100 annotations not available")
    real = _csv(REAL_EK / "EPIC_100_validation.csv")
    triples = {(r["narration"], r["verb"], r["noun"]) for r in real}
    assert all((r["narration"], r["verb"], r["noun"]) in triples for r in rows)
    real_keys = {r["key"] for r in _csv(REAL_EK / "EPIC_100_verb_classes.csv")}
    assert {r["key"] for r in verbs} <= real_keys


def test_every_ek_video_has_an_aac_track_covering_it(world):
    for video, fps in _fps(world).items():
        path = _video_path(world, video)
        with av.open(str(path)) as container:
            assert container.streams.audio, path
            audio = container.streams.audio[0]
            assert audio.codec_context.name == "aac" and audio.rate == 16000 and audio.channels == 1
            frames = container.streams.video[0].frames
        samples, rate = _decode_audio(path)
        assert len(samples) / rate == pytest.approx(frames / fps, abs=0.1)
        assert np.abs(samples).max() > 0.1


def test_ek_flow_frames_count_and_quantisation(world):
    info = {r["video_id"]: r for r in _csv(world / "ek100" / "EPIC_100_video_info.csv")}
    rows = _segments(world, "train") + _segments(world, "validation")
    for video, fps in _fps(world).items():
        frames = math.ceil(float(info[video]["duration"]) * fps)
        flow_dir = world / "ek100" / video.split("_")[0] / "flow_frames" / video
        for component in ("u", "v"):
            names = sorted(p.name for p in (flow_dir / component).iterdir())
            assert names == [f"frame_{k:010d}.jpg" for k in range(1, math.ceil(frames / 2) + 1)]
        first = min(int(r["start_frame"]) for r in rows if r["video_id"] == video)
        gap = cv2.imread(str(flow_dir / "u" / "frame_0000000001.jpg"), cv2.IMREAD_UNCHANGED)
        assert gap.shape == (96, 128) and gap.dtype == np.uint8
        if first > 3:  # the leading gap is static: exactly no motion
            assert np.all(np.abs(gap.astype(int) - 128) <= 1)
    moving = 0
    for r in rows[:40]:
        flow_dir = world / "ek100" / r["participant_id"] / "flow_frames" / r["video_id"]
        k = (int(r["start_frame"]) + int(r["stop_frame"])) // 4
        planes = [cv2.imread(str(flow_dir / c / f"frame_{k:010d}.jpg"), cv2.IMREAD_GRAYSCALE) for c in "uv"]
        moving += any(np.abs(p.astype(int) - 128).max() > 3 for p in planes)
    assert moving >= 30


def test_ek_hand_object_boxes_cover_segment_frames(world):
    rows = _segments(world, "validation")
    video = rows[0]["video_id"]
    boxes = json.loads((world / "ek100" / video.split("_")[0] / "hand-objects" / f"{video}.json").read_text())
    for r in (r for r in rows if r["video_id"] == video):
        for frame in range(int(r["start_frame"]), int(r["stop_frame"]) + 1):
            entries = boxes[str(frame)]
            assert {e["category"] for e in entries} <= {"hand", "object"} and entries
            for e in entries:
                x1, y1, x2, y2 = e["box"]
                assert 0 <= x1 < x2 <= 127 and 0 <= y1 < y2 <= 95 and e["score"] == 1.0
    assert str(int(rows[0]["start_frame"]) - 1) not in boxes  # gaps have no boxes


# --------------------------------------------------------------------------------------------- SSv2 format
def test_ssv2_labels_lists_videos_and_box_records(world):
    ss = world / "ssv2"
    labels = json.loads((ss / "something-something-v2-labels.json").read_text())
    assert sorted(labels.values(), key=int) == [str(i) for i in range(len(MOTION_TEMPLATES))]
    assert set(labels) == {t.replace("[", "").replace("]", "") for t in MOTION_TEMPLATES}
    assert json.loads((ss / "compositional" / "labels.json").read_text()) == {k: int(v) for k, v in labels.items()}
    sizes = json.loads((ss / "videoid2size.json").read_text())
    boxes = json.loads((ss / "bounding_box_smthsmth_part1.json").read_text())
    lists = {}
    for split in ("train", "validation"):
        entries = json.loads((ss / f"something-something-v2-{split}.json").read_text())
        assert entries == json.loads((ss / "compositional" / f"{split}.json").read_text())
        lists[split] = entries
        for e in entries:
            assert set(e) == {"id", "label", "template", "placeholders"}
            assert e["template"].replace("[", "").replace("]", "") in labels
            assert len(e["placeholders"]) == e["template"].count("[something]")
            filled = e["template"]
            for p in e["placeholders"]:
                filled = filled.replace("[something]", p, 1)
            assert e["label"] == filled.lower()
    assert (len(lists["train"]), len(lists["validation"])) == (64, 32)
    assert not {e["id"] for e in lists["train"]} & {e["id"] for e in lists["validation"]}
    for e in lists["train"][:12] + lists["validation"][:12]:
        frames, fps = _decode_video(ss / "videos" / f"{e['id']}.webm")
        assert fps == 12 and 24 <= len(frames) <= 36
        assert [frames.shape[2], frames.shape[1]] == sizes[e["id"]]
        records = boxes[e["id"]]
        assert len(records) == len(frames)
        assert [r["name"] for r in records] == [f"{e['id']}/{i:04d}.jpg" for i in range(1, len(frames) + 1)]
        for r in records:
            assert r["gt_placeholders"] == e["placeholders"] and r["nr_instances"] == len(e["placeholders"]) + 1
            for label in r["labels"]:
                assert set(label["box2d"]) == {"x1", "y1", "x2", "y2"}
                tag = (label["standard_category"], label["gt_annotation"])
                assert tag in {("hand", "object hand"), ("0000", "object 0"), ("0001", "object 1")}
                expected = "hand" if tag[0] == "hand" else e["placeholders"][int(tag[0])]
                assert label["category"] == expected


def test_ssv2_object_identities_are_disjoint_between_splits(world):
    ss = world / "ssv2"
    objects_a = set(json.loads((ss / "compositional" / "objectsA.json").read_text()))
    objects_b = set(json.loads((ss / "compositional" / "objectsB.json").read_text()))
    assert objects_a and objects_b and not objects_a & objects_b
    train = {p for e in json.loads((ss / "compositional" / "train.json").read_text()) for p in e["placeholders"]}
    val = {p for e in json.loads((ss / "compositional" / "validation.json").read_text()) for p in e["placeholders"]}
    assert train <= objects_a and val <= objects_b
    truth = json.loads((ss / "world_truth.json").read_text())
    train_clips = [c for c in truth["clips"].values() if c["split"] == "train"]
    by_object = defaultdict(list)
    for clip in train_clips:
        by_object[clip["objects"][0]].append(clip["template"])
    shortcut = sum(max(map(ts.count, ts)) for ts in by_object.values()) / len(train_clips)
    assert shortcut >= 0.6  # in train the moved object's identity predicts the template (a tempting shortcut)
    shapes = {k: {o["shape"] for o in truth["objects"][k]} for k in "AB"}
    assert not shapes["A"] & shapes["B"]
    colours = {k: np.array([c for clip in truth["clips"].values() if clip["split"] == s for c in clip["colours"]])
               for k, s in (("A", "train"), ("B", "validation"))}
    distance = np.linalg.norm(colours["B"][:, None] - colours["A"][None], axis=-1)
    assert distance.min() > 30  # no validation object colour is (nearly) a train object colour


def test_ssv2_boxes_are_mostly_clean_with_a_few_dirty_ones(world):
    sizes = json.loads((world / "ssv2" / "videoid2size.json").read_text())
    boxes = json.loads((world / "ssv2" / "bounding_box_smthsmth_part1.json").read_text())
    total = valid = swapped = off_frame = empty = 0
    for video, records in boxes.items():
        w, h = sizes[video]
        for r in records:
            empty += not r["labels"]
            for label in r["labels"]:
                b = label["box2d"]
                total += 1
                swapped += b["x1"] > b["x2"]
                off_frame += min(b["x1"], b["y1"]) < 0 or max(b["x1"], b["x2"]) > w or max(b["y1"], b["y2"]) > h
                valid += 0 <= b["x1"] < b["x2"] <= w and 0 <= b["y1"] < b["y2"] <= h
                x1, y1, x2, y2 = _clean(b["x1"], b["y1"], b["x2"], b["y2"], w, h)
                assert 0 <= x1 < x2 <= w - 1 and 0 <= y1 < y2 <= h - 1
    assert valid / total >= 0.95
    assert swapped >= 1 and off_frame >= 1 and empty >= 1


def test_ssv2_detections_are_a_noisy_copy_of_the_annotations(world):
    """The "obj. predictions" boxes: same videos and frames, detector classes only, scores, some misses and
    false positives, and boxes near the annotated ones."""
    oracle = json.loads((world / "ssv2" / "bounding_box_smthsmth_part1.json").read_text())
    detected = json.loads((world / "ssv2" / "detections_smthsmth_part1.json").read_text())
    assert detected.keys() == oracle.keys()
    n_oracle = n_detected = low = 0
    for video, records in oracle.items():
        assert [r["name"] for r in detected[video]] == [r["name"] for r in records]
        for r, d in zip(records, detected[video]):
            n_oracle += len(r["labels"])
            n_detected += len(d["labels"])
            for label in d["labels"]:
                assert label["category"] in ("hand", "object") and 0.0 < label["score"] < 1.0
                low += label["score"] < 0.5
    assert 0.8 < n_detected / n_oracle < 1.0  # misses outnumber false positives
    assert low >= 1


# --------------------------------------------------------------------------------------------- signals
def _ek_box_features(world: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Per segment: object net motion, scale change, speed, path/net ratio, hand motion relative to object."""
    truth, fps_of = _truth(world), _fps(world)
    cache: dict[str, dict] = {}
    features, labels = [], []
    for r in _segments(world, split):
        video = r["video_id"]
        if video not in cache:
            cache[video] = json.loads((world / "ek100" / r["participant_id"] / "hand-objects" / f"{video}.json")
                                      .read_text())
        obj, hand = [], []
        for frame in range(int(r["start_frame"]), int(r["stop_frame"]) + 1):
            entries = {e["category"]: e["box"] for e in cache[video][str(frame)]}
            obj.append(entries.get("object", [np.nan] * 4))
            hand.append(entries.get("hand", [np.nan] * 4))
        obj, hand = np.array(obj), np.array(hand)
        oc = np.stack([(obj[:, 0] + obj[:, 2]) / 2, (obj[:, 1] + obj[:, 3]) / 2], 1)
        hc = np.stack([(hand[:, 0] + hand[:, 2]) / 2, (hand[:, 1] + hand[:, 3]) / 2], 1)
        area = (obj[:, 2] - obj[:, 0]) * (obj[:, 3] - obj[:, 1])
        step = np.nan_to_num(np.linalg.norm(np.diff(oc, axis=0), axis=1))
        rel = np.linalg.norm(hc - oc, axis=1)
        fps = fps_of[video]
        net = oc[-1] - oc[0]
        features.append([net[0] / 128, net[1] / 96, np.log(area[-1] / area[0]), step.mean() * fps,
                         step.sum() / (np.linalg.norm(net) + 1.0), np.nanstd(rel), np.nanstd(np.diff(rel)) * fps])
        labels.append(int(truth[r["narration_id"]]["verb_class"]))
    return np.nan_to_num(np.array(features)), np.array(labels)


def _ek_flow_features(world: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Per segment, from the flow JPEGs: mean/std of per-frame mean (dx, dy), |dx|, |dy|, divergence, area."""
    truth = _truth(world)
    features, labels = [], []
    ys, xs = np.mgrid[0:96, 0:128].astype(np.float64)
    for r in _segments(world, split):
        flow_dir = world / "ek100" / r["participant_id"] / "flow_frames" / r["video_id"]
        first, last = int(r["start_frame"]), int(r["stop_frame"])
        per_frame = []
        for k in range((first + 2) // 2, (last - 1) // 2 + 1):  # flow frames whose RGB pair is inside
            u, v = ((cv2.imread(str(flow_dir / c / f"frame_{k:010d}.jpg"), cv2.IMREAD_GRAYSCALE) / 127.5 - 1) * 20
                    for c in "uv")
            moving = np.hypot(u, v) > 0.35
            if moving.sum() < 5:
                per_frame.append([0.0] * 6)
                continue
            du, dv, x, y = u[moving], v[moving], xs[moving] - xs[moving].mean(), ys[moving] - ys[moving].mean()
            divergence = (x * du + y * dv).sum() / ((x * x + y * y).sum() + 1e-6)
            per_frame.append([du.mean(), dv.mean(), np.abs(du).mean(), np.abs(dv).mean(), divergence,
                              moving.mean()])
        p = np.array(per_frame)
        features.append(np.r_[p.mean(0), p.std(0)])
        labels.append(int(truth[r["narration_id"]]["verb_class"]))
    return np.array(features), np.array(labels)


def _ek_audio_features(world: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Per segment: log band energies (relative) and where the loudest moment is."""
    truth = _truth(world)
    audio: dict[str, tuple[np.ndarray, int]] = {}
    edges = np.geomspace(50, 8000, 13)
    features, labels = [], []
    for r in _segments(world, split):
        if r["video_id"] not in audio:
            audio[r["video_id"]] = _decode_audio(_video_path(world, r["video_id"]))
        samples, rate = audio[r["video_id"]]
        x = samples[int(_seconds(r["start_timestamp"]) * rate):int(_seconds(r["stop_timestamp"]) * rate)]
        power = np.abs(np.fft.rfft(x)) ** 2
        freqs = np.fft.rfftfreq(len(x), 1 / rate)
        bands = np.array([power[(freqs >= a) & (freqs < b)].sum() for a, b in zip(edges, edges[1:])])
        env = np.sqrt(np.convolve(x * x, np.ones(320) / 320, mode="same"))
        features.append(np.r_[np.log(bands / bands.sum() + 1e-9), env.argmax() / len(env),
                              env.max() / (env.mean() + 1e-9)])
        labels.append(int(truth[r["narration_id"]]["verb_class"]))
    return np.array(features), np.array(labels)


def _ek_single_frame_features(world: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Per segment: object and hand boxes of the middle frame only (what one RGB frame shows of the layout)."""
    truth = _truth(world)
    cache: dict[str, dict] = {}
    features, labels = [], []
    for r in _segments(world, split):
        video = r["video_id"]
        if video not in cache:
            cache[video] = json.loads((world / "ek100" / r["participant_id"] / "hand-objects" / f"{video}.json")
                                      .read_text())
        middle = (int(r["start_frame"]) + int(r["stop_frame"])) // 2
        entries = {e["category"]: np.array(e["box"]) for e in cache[video][str(middle)]}
        obj, hand = entries.get("object", np.zeros(4)), entries.get("hand", np.zeros(4))
        features.append([*obj, *hand, obj[2] - obj[0], obj[3] - obj[1], *(hand[:2] - obj[:2])])
        labels.append(int(truth[r["narration_id"]]["verb_class"]))
    return np.array(features), np.array(labels)


def test_verb_is_not_visible_in_a_single_frame_layout(world):
    """One frame's boxes (object shape/size/position, hand placement) carry little verb information beyond
    the noun→verb prior of the real narrations; the motion over the segment carries all of it."""
    single = _softmax_fit_predict(*_ek_single_frame_features(world, "train"),
                                  _ek_single_frame_features(world, "validation")[0], 6)
    motion = _softmax_fit_predict(*_ek_box_features(world, "train"), _ek_box_features(world, "validation")[0], 6)
    y_val = _ek_box_features(world, "validation")[1]
    single_acc, motion_acc = (single == y_val).mean(), (motion == y_val).mean()
    print(f"verb from one frame's boxes {single_acc:.3f} vs from the segment's motion {motion_acc:.3f}")
    assert single_acc <= 0.65 and motion_acc - single_acc >= 0.3


@pytest.mark.parametrize("modality", ["boxes", "flow", "audio"])
def test_verb_is_linearly_decodable_from_motion_and_audio(world, modality):
    extract = {"boxes": _ek_box_features, "flow": _ek_flow_features, "audio": _ek_audio_features}[modality]
    x_train, y_train = extract(world, "train")
    x_val, y_val = extract(world, "validation")
    accuracy = (_softmax_fit_predict(x_train, y_train, x_val, 6) == y_val).mean()
    print(f"verb from {modality}: linear val accuracy {accuracy:.3f}")
    assert accuracy >= 0.85


def test_noun_colour_shortcut_fails_on_unseen_participant(world):
    """Seen palette in train and for P01 validation, a novel one for P18: a colour→noun nearest-centroid
    classifier (what an RGB model latching onto colour learns) works on P01 and fails on P18."""
    rows = list(_truth(world).values())
    colour = {r["narration_id"]: np.array([float(r[f"colour_{c}"]) for c in "rgb"]) for r in rows}
    train = [r for r in rows if r["split"] == "train"]
    centroids = np.array([np.mean([colour[r["narration_id"]] for r in train if int(r["noun_class"]) == n], 0)
                          for n in range(8)])

    def accuracy(subset):
        guess = [np.linalg.norm(centroids - colour[r["narration_id"]], axis=1).argmin() for r in subset]
        return np.mean(np.array(guess) == [int(r["noun_class"]) for r in subset])

    seen = [r for r in rows if r["split"] == "validation" and r["narration_id"].startswith("P01")]
    unseen = [r for r in rows if r["split"] == "validation" and r["narration_id"].startswith("P18")]
    assert {r["palette"] for r in seen} == {"seen"} and {r["palette"] for r in unseen} == {"novel"}
    assert accuracy(seen) >= 0.95 and accuracy(unseen) <= 0.35
    train_colours = np.array([colour[r["narration_id"]] for r in train])
    gaps = [np.linalg.norm(train_colours - colour[r["narration_id"]], axis=1).min() for r in unseen]
    assert min(gaps) > 30  # the mean colour of an unseen-kitchen object never occurs in train


def _track_ends(track: dict[int, np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray, float, float]:
    """First and last centre of a box track {frame: centre}, the fraction of frames it is annotated in and
    the (normalised) frame it is last seen."""
    frames = sorted(track)
    if not frames:
        return np.zeros(2), np.zeros(2), 0.0, 0.0
    return track[frames[0]], track[frames[-1]], len(frames) / n, frames[-1] / n


def _ss_layout_features(world: Path, split: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    ss = world / "ssv2"
    truth = json.loads((ss / "world_truth.json").read_text())["clips"]
    sizes = json.loads((ss / "videoid2size.json").read_text())
    boxes = json.loads((ss / "bounding_box_smthsmth_part1.json").read_text())
    templates = sorted(MOTION_TEMPLATES)
    features, labels = [], []
    for entry in json.loads((ss / f"something-something-v2-{split}.json").read_text()):
        w, h = sizes[entry["id"]]
        tracks = defaultdict(dict)
        records = boxes[entry["id"]]
        for i, r in enumerate(records):
            for label in r["labels"]:
                b = label["box2d"]
                x1, y1, x2, y2 = _clean(b["x1"], b["y1"], b["x2"], b["y2"], w, h)
                tracks[label["standard_category"]][i] = np.array([(x1 + x2) / 2 / w, (y1 + y2) / 2 / h])
        n = len(records)
        a0, a1, a_seen, a_last = _track_ends(tracks["0000"], n)
        h0, h1, _, _ = _track_ends(tracks["hand"], n)
        has_b = bool(tracks["0001"])
        b0 = _track_ends(tracks["0001"], n)[0] if has_b else a0
        features.append([*(a1 - a0), a_seen, a_last, float(has_b), np.linalg.norm(a0 - b0), np.linalg.norm(a1 - b0),
                         *(h1 - h0)])
        labels.append(templates.index(truth[entry["id"]]["template"]))
    return np.array(features), np.array(labels), templates


def test_ssv2_template_is_decodable_from_layout_on_unseen_objects(world):
    x_train, y_train, templates = _ss_layout_features(world, "train")
    x_val, y_val, _ = _ss_layout_features(world, "validation")
    accuracy = (_softmax_fit_predict(x_train, y_train, x_val, len(templates)) == y_val).mean()
    print(f"template from boxes (unseen objects): linear val accuracy {accuracy:.3f}")
    assert accuracy >= 0.8


def test_turning_upside_down_differs_from_pretending_only_in_pixels():
    """The appearance-only pair: same random draws -> identical boxes in every frame, but from the flip on
    (mid-clip) the object is drawn mirrored with its colours swapped, so only pixels on the object differ."""
    from modalbridge.worlds.kitchen.compositor import render
    from modalbridge.worlds.kitchen.ssv2 import SS_OBJECTS_B, ss_layers, ss_objects

    assert {SSV2_TEMPLATES[t] for t in SSV2_TEMPLATES} >= {"turn_over", "pretend_turn"}
    assert set(MOTION_TEMPLATES) < set(SSV2_TEMPLATES)
    obj = ss_objects(SS_OBJECTS_B, 22.5, 0.5, 0.6)[5]  # "apple": a ring
    n, w, h = 30, 128, 96
    renders = {}
    for motion in ("turn_over", "pretend_turn"):
        rng = np.random.default_rng(7)
        layers = ss_layers(motion, n, w, h, rng, obj, None, None, np.array([205.0, 150.0, 120.0]))
        background = np.full((h, w, 3), 100.0, np.float32)
        frames, _ = render(background, layers, n, np.zeros((1, h, w, 3), np.float32), rng)
        renders[motion] = ([[layer.box(t) for t in range(n)] for layer in layers], frames.astype(int))
    (boxes_turn, turned), (boxes_pretend, pretended) = renders["turn_over"], renders["pretend_turn"]
    assert boxes_turn == boxes_pretend
    changed = np.abs(turned - pretended).sum(axis=(1, 2, 3))
    flip = int(np.searchsorted(np.linspace(0.0, 1.0, n), 0.5))
    assert (changed[:flip] == 0).all() and (changed[flip:] > 0).all()
    ys, xs = np.nonzero(np.abs(turned[flip] - pretended[flip]).sum(-1))
    x1, y1, x2, y2 = boxes_turn[0][flip]  # layer 0 = the object
    assert xs.min() >= math.floor(x1) and xs.max() <= math.ceil(x2) and ys.min() >= math.floor(y1)
