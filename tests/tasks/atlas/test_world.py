"""The embedded atlas worlds (spec ``text2atlas.md`` §9): the torso written in the real SIO + BioASQ formats and
read back by the library's readers, deterministic per seed; the glossary's removals and merges; the hollow colon;
what the corpus holds (multi-organ articles, sub-region words, regions, decoys, animal studies, skips); the
model-free geometry behind the claims; the brain world from nilearn's wheel."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from modalbridge.core.paths import natural_key
from modalbridge.tasks.atlas.world import (
    BRAIN_REGIONS,
    COLON_LINE,
    COLON_RADIUS,
    SUBREGIONS,
    TORSO_ARTICLES,
    TORSO_REGIONS,
    TORSO_SHAPE,
    TORSO_TOPICS,
    torso_volume,
    torso_world,
    write_torso,
)

A = pytest.importorskip("modalbridge.tasks.atlas.atlas", reason="atlas.py (helper A) not written yet")
B = pytest.importorskip("modalbridge.tasks.atlas.bioasq", reason="bioasq.py (helper B) not written yet")
pytest.importorskip("modalbridge.tasks.atlas.prepare", reason="prepare.py (helper B) not written yet")

FIELDS = {"pmid", "title", "journal", "year", "abstractText", "meshMajor"}
ORGANS = {"lung", "bronchi", "trachea", "larynx", "esophagus", "diaphragm", "liver", "gallbladder", "stomach",
          "duodenum", "small intestine", "caecum", "colon", "rectum", "kidney", "urinary bladder", "spleen", "atrium",
          "ventricle", "myocardium", "pericardium", "pancreas", "prostate", "seminal gland"}


@pytest.fixture(scope="module")
def world() -> tuple[Path, float]:
    """The default torso world (built once per session in the test MODALBRIDGE_HOME) and its build time."""
    tic = time.perf_counter()
    root = torso_world()
    return root, time.perf_counter() - tic


@pytest.fixture(scope="module")
def atlas(world):
    return A.read_sio(world[0])


@pytest.fixture(scope="module")
def articles(world) -> list[tuple[str, int, str]]:
    """``(file, line, raw line)`` of every ndjson line of the corpus."""
    out = []
    for path in sorted((world[0] / "bioasq").glob("*.ndjson"), key=lambda p: natural_key(p.name)):
        out += [(path.name, i, line) for i, line in enumerate(path.read_text().splitlines(), 1)]
    return out


def _hashes(folder: Path, parts=("innerorgans", "bioasq")) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for part in parts for p in sorted((folder / part).rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------------------ files
def test_world_builds_fast_and_is_deterministic_per_seed(world, tmp_path):
    root, seconds = world
    assert seconds < 30, seconds  # ≈ 5 s on 2 cores (3 s of it: prepare's tokenizer and corpus build)
    assert json.loads((root / ".complete").read_text())["seed"] == 0
    again = write_torso(tmp_path / "again", seed=0)
    assert _hashes(again) == _hashes(root)  # same seed, same bytes (TIFFs, object list, ndjson)
    other, _ = torso_volume(seed=1)
    vol, _ = torso_volume(seed=0)
    assert other.shape == vol.shape and (other != vol).mean() > 0.001
    from modalbridge.tasks.atlas.world import TORSO_CORPUS, _articles, _long_torso

    first = [a.get("abstractText") for a in _articles(TORSO_CORPUS, 40, 0, _long_torso)]
    assert first == [a.get("abstractText") for a in _articles(TORSO_CORPUS, 40, 0, _long_torso)]
    assert first != [a.get("abstractText") for a in _articles(TORSO_CORPUS, 40, 1, _long_torso)]


def test_sio_layout_slices_reversed_and_natural_order(world, atlas):
    labels = world[0] / "innerorgans" / "labels"
    names = [p.name for p in labels.iterdir()]
    depth = TORSO_SHAPE[2]
    assert sorted(names, key=natural_key) == [f"slice_{k}.tif" for k in range(1, depth + 1)]
    assert sorted(names) != sorted(names, key=natural_key)  # lexical order differs: natural sort needed
    import tifffile

    vol, objects = torso_volume(0)
    assert atlas.labels.shape == TORSO_SHAPE and atlas.labels.dtype == np.uint8
    np.testing.assert_array_equal(atlas.labels, vol)  # read back exactly through natural sort + reversal
    np.testing.assert_array_equal(tifffile.imread(labels / "slice_1.tif"), vol[:, :, depth - 1])  # top slice
    np.testing.assert_array_equal(tifffile.imread(labels / f"slice_{depth}.tif"), vol[:, :, 0])
    assert atlas.center.tolist() == [48.0, 80.5, 112.0]  # shape / 2: a half-integer y, as in the SIO
    lines = (world[0] / "innerorgans" / "objectlist.txt").read_text().splitlines()
    assert len(lines) == 17 + len(objects)
    assert all(re.fullmatch(r'"[^"]+"( \d+)+', line) for line in lines[17:])
    raw = A.read_sio(world[0], glossary=None)  # every object under its own name
    assert {o: raw.organ_labels[o] for o in raw.organs} == objects


def test_glossary_removals_and_merges_took_effect(atlas):
    _, objects = torso_volume(0)
    assert set(atlas.organs) == ORGANS
    assert len(objects) > 80  # bones, discs, ribs, right-side copies, vessels and muscles are in the raw list
    for dropped in ("right lung", "right kidney", "right renal medulla", "right atrium", "right ventricle",
                    "descending aorta", "inferior vena cava", "thoracic vertebra T12", "left psoas", "sternum",
                    "left rib 6", "intervertebral disc T12/L1", "sacrum"):
        assert dropped in objects and dropped not in atlas.organs
    labels = atlas.organ_labels
    assert sorted(labels["lung"]) == objects["left lung"] and len(labels["lung"]) == 2
    assert sorted(labels["kidney"]) == sorted(objects["left kidney"] + objects["left renal medulla"])
    assert sorted(labels["trachea"]) == sorted(objects["trachea"] + objects["trachea lumen"])
    stomach = ("fundus of stomach", "cardia", "body of stomach", "greater curvature", "lesser curvature", "stomach")
    assert sorted(labels["stomach"]) == sorted(v for part in stomach for v in objects[part])
    colon = ("ascending colon", "right colic flexure", "transverse colon", "left colic flexure", "descending colon",
             "sigmoid colon")
    assert sorted(labels["colon"]) == sorted(v for part in colon for v in objects[part])
    assert labels["duodenum"] == objects["duodenum (retroperitoneal part)"]
    assert "cecum" in atlas.aliases["caecum"] and "colon, sigmoid" in atlas.aliases["colon"]
    assert all(len(atlas.voxels(i)) > 400 for i in range(atlas.num_organs))


def test_colon_is_a_hollow_tube_whose_lumen_centre_is_over_a_centimetre_from_the_wall(atlas):
    from scipy.spatial import cKDTree

    colon = atlas.organ_index("colon")
    wall = atlas.voxels(colon).astype(float)  # (K, 3) voxel indices
    line = np.asarray(COLON_LINE, float)
    t = np.linspace(0, 1, 40)[:, None]
    centre_line = np.concatenate([a + t * (b - a) for a, b in zip(line[:-1], line[1:])])
    nearest, _ = cKDTree(wall).query(centre_line)
    assert nearest.min() > 10.0, nearest.min()
    assert nearest.min() > COLON_RADIUS - 1.5
    lumen = atlas.labels[tuple(np.round(centre_line).astype(int).T)]
    assert (lumen == 0).mean() > 0.75  # the lumen is empty (caecum and rectum cap the two ends)
    assert atlas.organ_at(atlas.centre(colon)[None])[0] == colon  # the deep-inside centre is on the thin wall


def test_duodenum_touches_the_small_intestine(atlas):
    from scipy import ndimage

    organs = atlas.organ_volume()
    duodenum = organs == atlas.organ_index("duodenum")
    grown = ndimage.binary_dilation(duodenum, ndimage.generate_binary_structure(3, 1))
    assert (grown & (organs == atlas.organ_index("small intestine"))).sum() > 20  # the merge experiment's pair


def test_anatomy_behind_the_subregion_words(atlas):
    _, objects = torso_volume(0)

    def mean_of(*names):
        return np.argwhere(np.isin(atlas.labels, [v for n in names for v in objects[n]])).mean(0)

    upper, lower = (np.argwhere(atlas.labels == v).mean(0) for v in objects["left lung"])
    assert upper[2] > lower[2] + 20  # "upper lobe"/"apex" vs "base": along z
    assert mean_of("fundus of stomach")[2] > mean_of("stomach")[2] + 15  # fundus above the antrum
    assert mean_of("ascending colon")[1] + 80 < mean_of("descending colon")[1]  # right vs left (y)
    assert mean_of("sigmoid colon")[2] < mean_of("transverse colon")[2] - 30
    assert mean_of("transverse colon")[0] < mean_of("descending colon")[0]  # anterior
    assert mean_of("liver")[1] < mean_of("spleen")[1] - 60  # the liver on the right, the spleen on the left
    for phrase, (organ, axis, sign) in SUBREGIONS.items():
        assert organ in ORGANS and axis in (0, 1, 2) and sign in (-1, 1), phrase


# ----------------------------------------------------------------------------------------- corpus
def test_corpus_is_bioasq_ndjson_with_the_skip_cases(articles):
    parsed, bad = [], []
    for name, line, text in articles:
        assert re.fullmatch(r"part_\d+\.ndjson", name)
        try:
            parsed.append(json.loads(text))
        except json.JSONDecodeError:
            bad.append((name, line))
    assert len(articles) == TORSO_ARTICLES and len(bad) == 1  # one truncated line
    assert all(set(a) <= FIELDS and {"pmid", "title", "journal", "year"} <= set(a) for a in parsed)
    assert len({a["pmid"] for a in parsed}) == len(parsed)
    assert all(isinstance(a["pmid"], str) and re.fullmatch(r"\d{4}", a["year"]) for a in parsed)
    assert sum("abstractText" not in a or not a["abstractText"] for a in parsed) == 4
    assert sum(not isinstance(a.get("meshMajor"), list) for a in parsed) == 3
    complete = [a for a in parsed if a.get("abstractText") and isinstance(a.get("meshMajor"), list)]
    sentences = [len(re.findall(r"[.!?](?:\s|$)", a["abstractText"])) for a in complete]
    assert Counter(2 <= n <= 5 for n in sentences)[True] >= len(complete) - 2  # two over-long articles


def test_corpus_holds_what_the_claims_need(articles):
    docs = [json.loads(t) for _, _, t in articles if t.endswith("}")]
    docs = [d for d in docs if d.get("abstractText") and isinstance(d.get("meshMajor"), list)]
    texts = " ".join(d["abstractText"] for d in docs)
    mesh = Counter(m for d in docs for m in d["meshMajor"])
    organ_of = {m: t.organ for t in TORSO_TOPICS for m in t.mesh} | {m: "colon" for m in (
        "Colon, Sigmoid", "Colon, Ascending", "Colon, Transverse", "Colon, Descending")}
    organs_per_doc = [len({organ_of[m] for m in d["meshMajor"] if m in organ_of}) for d in docs]
    assert sum(n >= 2 for n in organs_per_doc) > 0.2 * len(docs)  # multi-organ articles
    assert sum(n == 0 for n in organs_per_doc) > 0.02 * len(docs)  # articles without an atlas organ
    assert mesh["Liver"] > mesh["Seminal Vesicles"] * 3  # a skewed organ distribution
    for term in ("Liver", "Lung", "Kidney", "Colon, Sigmoid", "Heart Ventricles", "Cecum", "Humans", "Animals",
                 "Rats", "Mice", "Ovary", "Tomography, X-Ray Computed"):
        assert mesh[term] > 0, term
    for phrase in SUBREGIONS:
        assert texts.count(phrase) >= 5, phrase
    for region in TORSO_REGIONS:
        assert region in texts.lower(), region
    for decoy in ("delivered", "colonies", "tachycardia", "gallbladder", "ovary"):
        assert decoy in texts, decoy
    assert re.search(r"(?:^|\. )(Liver|Lung|Stomach|Pancreas|Kidney)\b", texts)  # capitalised at sentence start
    assert sum("Animals" in d["meshMajor"] for d in docs) > 0.04 * len(docs)


def test_processed_world(world, atlas):
    processed = world[0] / "processed"
    summary = json.loads((processed / "prepare_summary.json").read_text())
    assert summary["organs"] == len(ORGANS)
    assert summary["animal"] > 100 and summary["bad json"] == 1 and summary["missing fields"] == 7
    assert summary["too long"] == 2 and summary["without organ"] > 50 and summary.get("over cap", 0) == 0
    records = {s: B.read_records(processed / f"dataset_{s}.json", organs=atlas.organs) for s in ("train", "val",
                                                                                               "test")}
    n = sum(map(len, records.values()))
    assert n > 0.8 * TORSO_ARTICLES and len(records["test"]) > 350
    every = [r for part in records.values() for r in part]
    assert sum(len(r["organ_indices"]) > 1 for r in every) > 0.2 * n
    assert all(set(r["organ_names"]) <= ORGANS for r in every)
    assert sum(bool(r["occ_organ_indices"]) for r in every) > 0.6 * n  # self-supervised targets for most
    assert set(atlas.organs) == set(A.Atlas.load(processed / "atlas.npz").organs)


def test_world_geometry_makes_the_claims_measurable(world):
    """Model-free: SOD's ideal point (an organ's deep-inside centre) is inside every record's target set, the
    MSE regressor's (the mean of the target organs' points) misses many multi-organ records, and the atlas
    centre (the Center baseline) lies over a centimetre from every organ."""
    from modalbridge.tasks.atlas.metrics import grounding_metrics

    processed = world[0] / "processed"
    atlas = A.Atlas.load(processed / "atlas.npz")
    records = json.loads((processed / "dataset_test.json").read_text())
    width = max(len(r["organ_indices"]) for r in records)
    targets = np.full((len(records), width), -1)
    for i, r in enumerate(records):
        targets[i, :len(r["organ_indices"])] = r["organ_indices"]
    valid = targets >= 0
    means = np.stack([atlas.points_mm(o).mean(0) for o in range(atlas.num_organs)])
    centres = np.stack([atlas.centre(o) for o in range(atlas.num_organs)])
    mse = (means[np.where(valid, targets, 0)] * valid[..., None]).sum(1) / valid.sum(1, keepdims=True)
    sod = grounding_metrics(atlas.distance(centres[targets[:, 0]], targets))
    mse_all = grounding_metrics(atlas.distance(mse, targets))
    multi = valid.sum(1) > 1
    mse_multi = grounding_metrics(atlas.distance(mse[multi], targets[multi]))
    assert sod["ior"] == 100.0 and sod["nvd"] == 0.0
    assert mse_multi["ior"] < 70 and mse_all["ior"] < 92 and mse_all["nvd"] > 0.25, (mse_all, mse_multi)
    to_origin = atlas.distance(np.zeros((atlas.num_organs, 3)), np.arange(atlas.num_organs)[:, None])
    assert to_origin.min() > 10.0, dict(zip(atlas.organs, to_origin.round(1)))


# ------------------------------------------------------------------------------------------ brain
@pytest.mark.skipif(importlib.util.find_spec("nilearn") is None, reason="the brain world reads nilearn's data")
def test_brain_world_from_nilearns_wheel():
    from modalbridge.tasks.atlas.world import BRAIN_SUBREGIONS, brain_world

    root = brain_world()
    atlas = A.read_atlas(root / "atlas" / "brain_regions.nii.gz")
    assert atlas.shape == (197, 233, 189) and atlas.spacing.tolist() == [1.0, 1.0, 1.0]
    assert atlas.organs == list(BRAIN_REGIONS)
    assert all(len(atlas.voxels(i)) > 300 for i in range(atlas.num_organs))
    assert len(atlas.organ_labels["default mode network"]) > 40  # one label value per ROI, grouped by name
    gz = (root / "atlas" / "brain_regions.nii.gz").read_bytes()
    assert gz[:2] == b"\x1f\x8b" and gz[4:8] == b"\0\0\0\0"  # gzip without a timestamp: reproducible bytes
    # hemispheres: "left X" regions lie at smaller x (MNI left → right)
    hippocampus = atlas.voxels(atlas.organ_index("hippocampus"))
    assert (hippocampus[:, 0] < 98).any() and (hippocampus[:, 0] > 98).any()
    assert BRAIN_SUBREGIONS["left hippocampus"] == ("hippocampus", 0, -1)
    summary = json.loads((root / "processed" / "prepare_summary.json").read_text())
    assert summary["records"] > 1000 and summary["animal"] > 0
    meta = json.loads((root / "world.json").read_text())
    assert meta["real"].startswith("volume") and "corpus" in meta["templated"]
