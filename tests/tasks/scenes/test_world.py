"""The embedded Abstract Scenes world: real raw layout, determinism, scenes that obey their sentences, the
edge cases the reader must meet, and the real clip-art folder's names (spec ``sr_bert.md`` §9)."""

from __future__ import annotations

import json
import re
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from modalbridge.tasks.scenes import abstract_scenes as A
from modalbridge.tasks.scenes import vocab as V
from modalbridge.tasks.scenes.world import (
    ARRANGEMENTS,
    DEFAULT_SETS,
    VERSION,
    Placed,
    SetPlan,
    draw_cliparts,
    plan_set,
    sample_scene,
    scenes_world,
    write_release,
)

SHARED_DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"
REAL_PNGS = SHARED_DATA / "abstract_scenes_cliparts" / "Pngs"
RAW_FILES = (A.SCENES_FILE, *A.SENTENCE_FILES, *A.TUPLE_FILES)


@pytest.fixture(scope="module")
def world() -> tuple[Path, float]:
    """The default world (built once per session in the test MODALBRIDGE_HOME) and its build time."""
    tic = time.perf_counter()
    root = scenes_world()
    return root, time.perf_counter() - tic


@pytest.fixture(scope="module")
def release(world) -> A.RawRelease:
    return A.read_release(world[0])


# ------------------------------------------------------------------------------------------ files
def test_same_seed_same_bytes_other_seed_other_scenes(tmp_path):
    a, b, c = (write_release(tmp_path / name, seed=seed, sets=4)
               for name, seed in (("a", 3), ("b", 3), ("c", 4)))
    for name in RAW_FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert (a / A.SCENES_FILE).read_bytes() != (c / A.SCENES_FILE).read_bytes()
    for png in (a / A.PNGS_DIR).iterdir():
        assert png.read_bytes() == (b / A.PNGS_DIR / png.name).read_bytes(), png.name


def test_cliparts_are_drawn_with_real_names_groups_and_sizes(tmp_path):
    folder = draw_cliparts(tmp_path / "Pngs")
    assert sorted(p.name for p in folder.iterdir()) == sorted([*V.CLIPARTS, *V.UI_FILES])
    images = {name: Image.open(folder / name) for name in V.CLIPARTS}
    assert all(im.mode == "RGBA" and im.getpixel((0, 0))[3] == 0 for name, im in images.items()
               if V.prefix(name) in ("hb0", "hb1", "s", "a")), "transparent corners"
    assert images["hb0_0s.png"].size == (59, 111) and images["hb1_0s.png"].size == (66, 107)  # people ~60×110
    assert all(max(images[n].size) <= 190 for n in V.CLIPARTS if V.group_of(n) == "large")
    assert max(images["t_5s.png"].size) < 15  # tennis ball
    assert 25 <= max(images["t_4s.png"].size) <= 40  # soccer ball
    pixels = {name: im.tobytes() for name, im in images.items()}
    assert len(set(pixels.values())) == 126, "every clip-art looks different"
    assert pixels["hb0_0s.png"] != pixels["hb0_1s.png"] != pixels["hb0_5s.png"]  # expression, pose
    background = Image.open(folder / "background.png")
    assert background.size == (500, 400)
    sky, grass = background.getpixel((250, 50)), background.getpixel((250, 300))
    assert sky[2] > sky[1] > sky[0] and grass[1] > grass[0] and grass[1] > grass[2]


def test_world_is_cached_and_rebuilt_for_another_version(tmp_path, monkeypatch):
    monkeypatch.setenv("MODALBRIDGE_HOME", str(tmp_path))
    root = scenes_world(seed=5, sets=2)
    assert root == tmp_path / "worlds" / "scenes-5-2sets"
    marker = root / ".complete"
    assert json.loads(marker.read_text()) == {"version": VERSION, "seed": 5, "sets": 2}
    stamp = marker.stat().st_mtime_ns
    assert scenes_world(seed=5, sets=2) == root and marker.stat().st_mtime_ns == stamp
    marker.write_text(json.dumps({"version": VERSION - 1, "seed": 5, "sets": 2}))
    scenes_world(seed=5, sets=2)
    assert json.loads(marker.read_text())["version"] == VERSION
    assert not [p for p in root.parent.iterdir() if p.name.startswith(".")], "no temporary folder left"


# ------------------------------------------------------------------------------------------ default world
def test_default_world_layout_and_build_time(world):
    root, seconds = world
    assert root.name == "scenes-0" and (root / ".complete").is_file()
    for name in RAW_FILES:
        assert (root / A.RELEASE_DIR / name).is_file()
    assert A.clipart_folder(root / "processed") == root / A.RELEASE_DIR / A.PNGS_DIR
    problems, summary = A.check_scenes(root)
    assert problems == [] and summary["scenes"] == 10 * DEFAULT_SETS and summary["clip-art PNGs"] == 126
    assert A.check_scenes(root / "processed").problems == []
    print(f"default world built in {seconds:.2f} s")  # a cache hit when another test built it first


def test_world_scenes_follow_the_release_conventions(release):
    scenes = release.scenes
    assert release.declared == len(scenes) == 10 * DEFAULT_SETS
    assert [s.set_idx for s in scenes] == [i // 10 for i in range(len(scenes))]
    assert not scenes[3].elements and all(s.elements for i, s in enumerate(scenes) if i != 3)
    assert 14 not in release.sentences and 3 in release.sentences
    elements = [e for s in scenes for e in s.elements]
    for scene in scenes[:3] + scenes[4:]:
        names = [e.name for e in scene.elements]
        assert 6 <= len(names) <= 9 and len(set(names)) == len(names)
        groups = [V.GROUPS.index(V.group_of(n)) for n in names]
        assert groups == sorted(groups), names
    for e in elements:
        assert (V.TYPE_PREFIXES[e.type_idx], e.obj_idx) == (V.prefix(e.name), int(e.name.split("_")[1][:-5]))
        assert e.z in (0, 1, 2) and e.flip in (0, 1)
    off = sum(not (0 <= e.x <= 500 and 0 <= e.y <= 400) for e in elements)
    assert 5 <= off <= 0.01 * len(elements), off  # a few off-canvas coordinates, most on the canvas
    prefixes = [[V.prefix(e.name) for e in s.elements] for s in scenes]
    both = sum(p.count("hb0") == 1 == p.count("hb1") for p in prefixes)
    assert both >= 0.85 * len(scenes)
    sky = [e.y for e in elements if V.group_of(e.name) == "sky"]
    people = [e.y for e in elements if V.group_of(e.name) == "people"]
    assert max(sky) <= 150 and min(people) > 240


def test_every_sentence_has_a_tuple_that_is_spatial_when_the_sentence_is(release):
    for ordinal, keyed in release.sentences.items():
        assert sorted(keyed) == sorted(f"{i}_file{k}" for k in (1, 2) for i in range(3))
        for key, (sentence,) in keyed.items():
            (relation,) = release.relations[ordinal][key]
            verb = relation.split("=")[1]
            assert V.is_explicit(sentence) == V.is_explicit(verb), (sentence, relation)


def _element(scene: list[A.RawElement], phrase: str) -> A.RawElement:
    """The clip-art a noun phrase names ("mike", "the big apple tree", "a crown", "sunglasses")."""
    phrase = re.sub(r"^(the|an?) ", "", phrase.strip())
    if phrase in ("mike", "jenny"):
        return next(e for e in scene if V.prefix(e.name) == ("hb0" if phrase == "mike" else "hb1"))
    found = [e for e in scene if phrase == V.WORDS[e.name] or phrase.endswith(" " + V.WORDS[e.name])]
    return max(found, key=lambda e: len(V.WORDS[e.name]))


MOD = r"(?:(?:now|also|still|just|right) )?"
CHECKS = {  # pattern → predicate on (subject, object) elements (None: checked in the test)
    "left of": (rf"^(\w+) is {MOD}(?:to the )?(left|right) of (\w+)\.?$", None),
    "side": (rf"^(.+?) is {MOD}on the (left|right)(?: side)?(?: of the sky)?\.?$", None),
    "middle": (rf"^(.+?) is {MOD}in the (?:middle|center)\.?$", None),
    "height": (rf"^(.+?) is {MOD}(high|low) in the sky\.?$", None),
    "sky": (rf"^(.+?) is {MOD}(?:flying )?in the sky\.?$", None),
    "depth": (rf"^(.+?) is {MOD}(?:standing )?in the (front|back)\.?$|^(.+?) is {MOD}(close|far away)\.?$",
              None),
    "next to": (rf"^(\w+) is {MOD}(?:next to|beside|near|standing beside) (mike|jenny)\.?$",
                lambda s, o: 60 <= abs(s.x - o.x) <= 120),
    "across": (rf"^(\w+) is {MOD}(?:across from|far from|far away from) (mike|jenny)\.?$",
               lambda s, o: abs(s.x - o.x) >= 280),
    "at large": (rf"^(mike|jenny) is {MOD}(?:(?:standing )?under|(?:standing )?by|in front of|at) "
                 rf"(the .+?)\.?$",
                 lambda s, o: 75 <= abs(s.x - o.x) <= 125),
    "above": (rf"^(the .+?) is {MOD}(?:above|over) (the .+?)\.?$",
              lambda s, o: abs(s.x - o.x) <= 20 and s.y < o.y),
    "animal": (rf"^(the .+?) is {MOD}(?:next to|beside|near|sitting by) (mike|jenny)\.?$",
               lambda s, o: abs(s.x - o.x) <= 70 and s.y > o.y),
    "under": (rf"^(the .+?) is {MOD}(?:under|below|beneath) (the .+?)\.?$",
              lambda s, o: abs(s.x - o.x) <= 40 and s.y > o.y + 50),
    "wearing": (rf"^(mike|jenny) (?:is {MOD}wearing|wears|has) (.+?) on (?:his|her) head\.?$|"
                rf"^(mike|jenny) (?:is {MOD}wearing|wears) (.+?)\.?$",
                lambda s, o: abs(s.x - o.x) <= 10 and s.y - 62 <= o.y < s.y - 20),
    "kicking": (rf"^(mike|jenny) (?:is {MOD}kicking|kicks) (.+?)\.?$",
                lambda s, o: o.y > s.y + 30 and (o.x - s.x) * (1 - 2 * s.flip) > 0),
    "holding": (rf"^(mike|jenny) is {MOD}(?:holding|carrying) (.+?)\.?$",
                lambda s, o: 0 < (o.x - s.x) * (1 - 2 * s.flip) <= 40),
    "facing": (rf"^(mike|jenny) is {MOD}(?:facing|looking at) (mike|jenny)\.?$",
               lambda s, o: (o.x - s.x) * (1 - 2 * s.flip) > 0),
}


def test_world_scenes_obey_their_sentences(world):
    checked = dict.fromkeys(CHECKS, 0)
    processed = world[0] / "processed"
    scenes = [s for name in A.SPLITS for s in A.read_processed(processed / f"{name}_dataset.json")]
    for scene in scenes:
        elements = [A.RawElement(e["visual_name"], 0, 0, e["x"], e["y"], e["z"], e["flip"])
                    for e in scene["elements"]]
        for sentence in (s for values in scene["sentences"].values() for s in values):
            for kind, (pattern, holds) in CHECKS.items():
                match = re.match(pattern, sentence)
                if not match:
                    continue
                groups = [g for g in match.groups() if g is not None]
                subject = _element(elements, groups[0])
                if kind == "left of":
                    other = _element(elements, groups[2])
                    assert (subject.x < other.x) == (groups[1] == "left"), sentence
                elif kind == "side":
                    left = groups[1] == "left"
                    middle = 250 if V.group_of(subject.name) == "large" else (180 if left else 320)
                    assert (subject.x < middle) if groups[1] == "left" else (subject.x > middle), sentence
                elif kind == "middle":
                    assert V.group_of(subject.name) == "large" and abs(subject.x - 250) <= 25, sentence
                elif kind == "height":
                    high = groups[1] == "high"
                    assert V.group_of(subject.name) == "sky" and (subject.y < 90) == high, sentence
                elif kind == "depth":  # the large object's or a person's depth: z and height on the canvas
                    back = groups[1] in ("back", "far away")
                    top = 190 if V.group_of(subject.name) == "large" else 285
                    assert (subject.z > 0) == back and (subject.y < top) == back, sentence
                elif kind == "sky":
                    assert V.group_of(subject.name) == "sky" and subject.y <= 150, sentence
                else:
                    assert holds(subject, _element(elements, groups[1])), (sentence, elements)
                checked[kind] += 1
                break
    assert min(checked.values()) >= 50, checked


def test_prepared_world_splits_and_subsets(world):
    summary = json.loads((world[0] / "processed" / "prepare_summary.json").read_text())
    n = 10 * DEFAULT_SETS
    assert (summary["kept"], summary["dropped_empty"], summary["dropped_without_sentences"]) == (n - 2, 1, 1)
    splits = summary["splits"]
    assert (splits["train_dataset"], splits["val_dataset"], splits["test_dataset"]) == (n - 2 - 600, 300, 300)
    assert 0.1 * 300 <= splits["test_ood_default"] <= 0.6 * 300  # the OOD subset is measurable
    assert splits["test_ood_ood"] == splits["test_ood_id"] == splits["test_ood_default"]
    bins = [splits[f"test_explicit_{name}"] for name, _, _ in A.EXPLICIT_BINS]
    assert sum(bins) == 300 and sum(b >= 10 for b in bins) >= 3, bins
    tan = [splits[f"tan/{name}_dataset"] for name in A.SPLITS]
    assert tan == [round(8500 * n / 10020), n - 2 - round(8500 * n / 10020) - tan[2], 299]


@pytest.mark.skipif(not REAL_PNGS.is_dir(), reason="the real clip-art folder ../shared/data/... is not here")
def test_real_cliparts_folder_has_exactly_the_vocabulary_names():
    names = {p.name for p in REAL_PNGS.iterdir()}
    assert names == {*V.CLIPARTS, *V.UI_FILES}
    assert A.clipart_folder(REAL_PNGS) == REAL_PNGS


# ----------------------------------------------------------------------------------- claims, model-free
def _layouts(scenes: list[list[Placed]]) -> np.ndarray:
    """(K, N, 2) normalised positions (clamped to the canvas) in a fixed clip-art order; people keyed by
    hb0/hb1 so that a changed expression is the same person."""
    def key(p: Placed) -> str:
        return V.prefix(p.name) if V.group_of(p.name) == "people" else p.name

    order = sorted(key(p) for p in scenes[0])
    out = np.zeros((len(scenes), len(order), 2))
    for k, scene in enumerate(scenes):
        where = {key(p): (min(max(p.x, 0), 500) / 500, min(max(p.y, 0), 400) / 400) for p in scene}
        out[k] = [where[name] for name in order]
    return out


def _abs_sim(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """S_abs with the mirror max: pred (..., N, 2) against gt (..., N, 2) → (...)."""
    mirrored = gt * np.array([-1.0, 1.0]) + np.array([1.0, 0.0])
    return np.maximum(*(np.exp(-np.linalg.norm(pred - g, axis=-1) / 0.4).mean(-1) for g in (gt, mirrored)))


def _replan(plan: SetPlan, rng: np.random.Generator) -> SetPlan:
    """The same clip-arts with the set's relations drawn anew (what a model reading no text cannot tell)."""
    roles = list(plan.people)
    arrangements = ARRANGEMENTS if len(roles) == 2 else ("at_large", "alone")
    return replace(plan, arrangement=str(rng.choice(arrangements)),
                   order=tuple(rng.permutation(roles)), sky_above=bool(rng.random() < 0.5),
                   faces={r: len(roles) == 2 and bool(rng.random() < 0.5) for r in roles},
                   animals=[(n, str(rng.choice([*roles, "large"]))) for n, _ in plan.animals],
                   clothing=[(n, str(rng.choice(roles))) for n, _ in plan.clothing],
                   items=[(n, h, m) for (n, _, m), h in zip(plan.items, rng.permutation(roles))])


def test_world_carries_the_information_both_claims_need():
    """No model trained: the best layout (minimum Bayes risk over samples) of someone who knows a set's
    relations — which the sentences state — beats that of someone who knows only its clip-arts by far (text
    helps), and a joint layout beats each clip-art's own most frequent bin (what one-step decoding does)."""
    rng = np.random.default_rng(0)
    informed, uninformed, per_clipart = [], [], []
    for _ in range(25):
        plan = plan_set(rng)
        truth = _layouts([sample_scene(plan, rng)[0]])[0]
        same = _layouts([sample_scene(plan, rng)[0] for _ in range(60)])
        other = _layouts([sample_scene(_replan(plan, rng), rng)[0] for _ in range(60)])
        for pool, out in ((same, informed), (other, uninformed)):
            risk = _abs_sim(pool[:, None], pool[None]).mean(1)  # (K,) expected S_abs of each sample
            out.append(_abs_sim(pool[int(risk.argmax())], truth))
            if out is informed:
                bins = np.floor(pool * np.array([25, 20])).clip(0, [24, 19])
                code = bins[..., 0] * 20 + bins[..., 1]  # (K, N)
                mode = np.array([np.bincount(code[:, j].astype(int)).argmax() for j in range(code.shape[1])])
                centres = (np.stack([mode // 20, mode % 20], -1) + 0.5) / np.array([25, 20])
                per_clipart.append(_abs_sim(centres, truth))
    informed_mean, uninformed_mean = float(np.mean(informed)), float(np.mean(uninformed))
    assert informed_mean - uninformed_mean > 0.08, (informed_mean, uninformed_mean)
    assert informed_mean - float(np.mean(per_clipart)) > 0.03, (informed_mean, np.mean(per_clipart))
