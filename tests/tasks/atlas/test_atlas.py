"""The atlas loader and geometry (spec text2atlas.md §2.1, §6, §9 "Atlas loader", §10): a tiny SIO stack in
the real on-disk format (natural ≠ lexical slice order, 17 header lines), distances against brute force,
sampling, centres of a hollow shell, merges, npz round trip, NIfTI + table, and the checker."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial.distance import cdist

from modalbridge.core.errors import DataError
from modalbridge.tasks.atlas.atlas import (
    Atlas,
    check_atlas_files,
    parse_label_table,
    read_atlas,
    read_nifti,
    read_sio,
)

tifffile = pytest.importorskip("tifffile")

SHAPE = (41, 44, 30)  # centre (20.5, 22.0, 15.0): x is a half-integer
CENTER = np.array([20.5, 22.0, 15.0])
#: (name, labels, box x0, x1, y0, y1, z0, z1 — inclusive); the colon is a shell, the kidney an ellipsoid
CLASSES = [
    ("liver", [5], (26, 38, 2, 12, 2, 12)),
    ("left lung", [7, 8], None),
    ("right lung", [9], (26, 38, 29, 40, 14, 27)),
    ("left kidney", [3], None),
    ("left renal medulla", [4], None),
    ("stomach", [11], (14, 22, 27, 33, 2, 12)),
    ("cardia", [12], (14, 22, 34, 40, 2, 12)),
    ("duodenum (retroperitoneal part)", [13], (1, 10, 27, 40, 15, 27)),
    ("small intestine", [14], (11, 22, 27, 40, 15, 27)),
    ("transverse colon", [20], None),
    ("left rib 3", [30], (39, 40, 0, 3, 20, 25)),
    ("thoracic vertebra T5", [31], (39, 40, 5, 8, 20, 25)),
    ("abdominal aorta", [32], (39, 40, 10, 12, 0, 29)),
]
ORGANS = ["liver", "small intestine", "stomach", "colon", "kidney", "lung", "duodenum"]


def _volume() -> np.ndarray:
    vol = np.zeros(SHAPE, dtype=np.uint16)
    for _name, labels, box in CLASSES:
        if box:
            x0, x1, y0, y1, z0, z1 = box
            vol[x0:x1 + 1, y0:y1 + 1, z0:z1 + 1] = labels[0]
    vol[26:39, 15:26, 14:21] = 7  # lung: upper label 7, lower label 8 (along z)
    vol[26:39, 15:26, 21:28] = 8
    x, y, z = np.ogrid[:SHAPE[0], :SHAPE[1], :SHAPE[2]]
    ellipsoid = ((x - 6) / 5.0) ** 2 + ((y - 33) / 6.0) ** 2 + ((z - 6) / 4.0) ** 2 <= 1
    vol[ellipsoid] = 3
    vol[ellipsoid & (((x - 6) / 2.5) ** 2 + ((y - 33) / 3.0) ** 2 + ((z - 6) / 2.0) ** 2 <= 1)] = 4
    shell = np.zeros(SHAPE, dtype=bool)
    shell[1:24, 1:24, 1:24] = True
    shell[2:23, 2:23, 2:23] = False  # 1-voxel wall; the lumen centre (12, 12, 12) is 11 mm from it
    vol[shell] = 20
    return vol


def _slice_marker(k: int) -> int:
    return 100 + k  # slice_<k>.tif carries 100 + k in its corner voxel (x = 40, y = 43)


def write_sio(folder, vol: np.ndarray, header_lines: int = 17):
    """The SIO layout: innerorgans/labels/slice_<k>.tif (k = 1 … n, natural order = REVERSED z) and
    innerorgans/objectlist.txt."""
    root = folder / "innerorgans"
    (root / "labels").mkdir(parents=True)
    n = vol.shape[2]
    for k in range(1, n + 1):
        image = np.ascontiguousarray(vol[:, :, n - k])
        image[40, 43] = _slice_marker(k)
        tifffile.imwrite(root / "labels" / f"slice_{k}.tif", image)
    header = [f'"header {i}" junk {i}' if i % 3 == 0 else f"VOXEL-MAN header line {i}"
              for i in range(header_lines)]
    rows = [f'"{name}" {" ".join(map(str, labels))}' for name, labels, _ in CLASSES]
    (root / "objectlist.txt").write_text("\n".join(header + rows) + "\n")
    return root


@pytest.fixture(scope="module")
def sio(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sio")
    vol = _volume()
    root = write_sio(folder, vol)
    expected = vol.copy()
    expected[40, 43, :] = [_slice_marker(SHAPE[2] - z) for z in range(SHAPE[2])]
    return root, expected


@pytest.fixture(scope="module")
def atlas(sio) -> Atlas:
    return read_sio(sio[0].parent)  # the parent of innerorgans/ works too


def _brute(atlas: Atlas, p: np.ndarray, targets: list[list[int]]) -> np.ndarray:
    """The card's rule with a full norm over every voxel of every target organ."""
    at = atlas.organ_at(p)
    out = np.full(len(p), np.inf)
    for i, (point, organs) in enumerate(zip(p, targets)):
        if at[i] in organs:
            out[i] = 0.0
            continue
        for organ in organs:
            out[i] = min(out[i], cdist(point[None], atlas.points_mm(organ).astype(np.float64)).min())
    return out


# ------------------------------------------------------------------------------------------------ reader
def test_sio_volume_order_reversal_and_transpose(sio, atlas):
    _, expected = sio
    assert atlas.shape == SHAPE and atlas.labels.dtype == np.uint16
    np.testing.assert_array_equal(atlas.labels, expected)
    # slice_<k>.tif (natural order, k = 1 … 30) sits at z = n - k: slice_1 is the LAST z; slice_10 is not
    # where lexical order would put it
    markers = atlas.labels[40, 43, :]
    assert markers[SHAPE[2] - 1] == _slice_marker(1) and markers[0] == _slice_marker(SHAPE[2])
    assert markers[SHAPE[2] - 10] == _slice_marker(10)
    np.testing.assert_array_equal(atlas.center, CENTER)
    assert atlas.meta["source"] == "sio" and "anatomical signs not checked" in atlas.meta["axes"]


def test_sio_glossary_merges_drops_renames(atlas):
    assert atlas.organs == ORGANS
    assert atlas.organ_labels["lung"] == [7, 8] and atlas.organ_labels["kidney"] == [3, 4]
    assert sorted(atlas.organ_labels["stomach"]) == [11, 12] and atlas.organ_labels["colon"] == [20]
    assert atlas.aliases["kidney"] == ["kidney", "renal medulla"]
    assert {"stomach", "cardia"} <= set(atlas.aliases["stomach"])
    assert {"colon", "transverse colon", "hepatic flexure"} <= set(atlas.aliases["colon"])
    assert set(atlas.aliases["small intestine"]) == {"small intestine", "jejunum", "ileum", "intestine, small"}
    # bone, vertebra, aorta and the right lung are gone, their voxels belong to no organ
    for value in (9, 30, 31, 32):
        x, y, z = np.argwhere(atlas.labels == value)[0]
        assert atlas.organ_volume()[x, y, z] == -1
    # both lung labels count as lung
    lung = atlas.organ_index("lung")
    assert atlas.organ_volume()[30, 20, 15] == lung and atlas.organ_volume()[30, 20, 25] == lung
    with pytest.raises(DataError, match="unknown organ 'bone'.*liver"):
        atlas.organ_index("bone")


def test_sio_without_glossary_keeps_every_class(sio):
    raw = read_sio(sio[0], glossary=None)
    assert raw.organs == [name for name, _, _ in CLASSES]
    assert read_atlas(sio[0].parent).organs == ORGANS


def test_sio_other_dtype(tmp_path):
    vol = _volume().astype(np.int32)
    root = write_sio(tmp_path, vol)
    atlas = read_sio(root)
    assert atlas.labels.dtype == np.int32 and atlas.organs == ORGANS
    assert atlas.voxels(atlas.organ_index("liver")).shape == (13 * 11 * 11, 3)


# ------------------------------------------------------------------------------------ reader errors
@pytest.fixture()
def sio_copy(sio, tmp_path):
    return shutil.copytree(sio[0], tmp_path / "innerorgans")


def test_sio_missing_slice(sio_copy):
    (sio_copy / "labels" / "slice_7.tif").unlink()
    with pytest.raises(DataError, match=r"labels: missing slice numbers 7 \(the slices run from 1 to 30"):
        read_sio(sio_copy)


def test_sio_mismatched_slice(sio_copy):
    tifffile.imwrite(sio_copy / "labels" / "slice_12.tif", np.zeros((41, 40), np.uint16))
    with pytest.raises(DataError, match=r"slice_12\.tif: slice is 41x40 uint16, expected 41x44 uint16"):
        read_sio(sio_copy)
    tifffile.imwrite(sio_copy / "labels" / "slice_12.tif", np.zeros((41, 44), np.uint8))
    with pytest.raises(DataError, match=r"slice_12\.tif: slice is 41x44 uint8, expected 41x44 uint16"):
        read_sio(sio_copy)


def test_sio_bad_class_line(sio_copy):
    path = sio_copy / "objectlist.txt"
    lines = path.read_text().splitlines()
    lines[19] = '"stomach 11'  # line 20
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"objectlist\.txt: row 20: expected '\"<organ name>\" <label>"):
        read_sio(sio_copy)
    lines[19] = '"stomach" 11 twelve'
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"row 20: field labels: label values must be integers"):
        read_sio(sio_copy)


def test_sio_organ_without_voxels(sio_copy):
    with open(sio_copy / "objectlist.txt", "a") as f:
        f.write('"gallbladder" 77\n')
    with pytest.raises(DataError, match=r"objectlist\.txt: organs without any voxel.*gallbladder \(labels "
                                        r"\[77\]\)"):
        read_sio(sio_copy)


def test_sio_empty_labels_and_missing_class_list(tmp_path):
    (tmp_path / "innerorgans" / "labels").mkdir(parents=True)
    with pytest.raises(DataError, match=r"labels: no label slices"):
        read_sio(tmp_path)
    tifffile.imwrite(tmp_path / "innerorgans" / "labels" / "s1.tif", np.ones((3, 3), np.uint8))
    with pytest.raises(DataError, match="no class list: expected objectlist.txt"):
        read_sio(tmp_path)
    with pytest.raises(DataError, match="expected the SIO innerorgans/ folder"):
        read_sio(tmp_path / "nowhere")


def test_classes_txt_without_header(tmp_path):
    root = write_sio(tmp_path, _volume())
    (root / "objectlist.txt").rename(root / "classes.txt")
    lines = (root / "classes.txt").read_text().splitlines()[17:]
    (root / "classes.txt").write_text("\n".join(lines))
    assert read_sio(root).organs == ORGANS


# --------------------------------------------------------------------------------------------- geometry
def test_center_and_index_rounding(atlas):
    assert atlas.points_mm(atlas.organ_index("colon"))[0].tolist() == [1 - 20.5, 1 - 22.0, 1 - 15.0]
    # half to even: 20.5 + 0 → 20; 20.5 + 1 → 22; 22 + 0.5 → 22; 22 + 1.5 → 24; clipping at the border
    p = np.array([[0.0, 0.5, 0.0], [1.0, 1.5, 0.0], [-1000.0, 1000.0, 0.4], [20.6, -22.6, 14.6]])
    np.testing.assert_array_equal(atlas.to_index(p), [[20, 22, 15], [22, 24, 15], [0, 43, 15], [40, 0, 29]])
    assert atlas.to_index(p).dtype == np.int64
    assert atlas.organ_at(atlas.to_mm(np.array([[30, 5, 5], [0, 0, 0]]))).tolist() == [0, -1]


def test_distance_inside_and_9_99_mm(atlas):
    liver = atlas.organ_index("liver")
    inside = atlas.to_mm(np.array([[32, 7, 7], [26, 2, 2]]))
    np.testing.assert_array_equal(atlas.distance(inside, [[liver], [liver]]), [0.0, 0.0])
    # 9.99 mm below the liver's face y = 2, outside the volume (the UNCLIPPED point counts)
    p = atlas.to_mm(np.array([[32.0, 2 - 9.99, 7.0], [32.0, 2 - 10.0, 7.0]]))
    np.testing.assert_allclose(atlas.distance(p, np.array([[liver], [liver]])), [9.99, 10.0], rtol=1e-12)
    # a point rounding to a voxel of ANOTHER organ is not inside
    stomach = atlas.organ_index("stomach")
    d = atlas.distance(atlas.to_mm(np.array([[18, 30, 7]])), [[liver]])
    assert d[0] > 0 and atlas.organ_at(atlas.to_mm(np.array([[18, 30, 7]])))[0] == stomach


def test_distance_multi_target_takes_the_minimum(atlas):
    liver, stomach, lung = (atlas.organ_index(o) for o in ("liver", "stomach", "lung"))
    p = atlas.to_mm(np.array([[24.0, 7.0, 7.0], [10.0, 2.0, 40.0]]))
    one = [atlas.distance(p, [[o], [o]]) for o in (liver, stomach, lung)]
    both = atlas.distance(p, [[liver, stomach, lung], [lung, -1, -1]])
    np.testing.assert_allclose(both, [np.min(one, axis=0)[0], one[2][1]])
    assert both[0] == pytest.approx(2.0)  # 2 voxels from the liver's face x = 26
    ragged = atlas.distance(p, [[liver, stomach, lung], [lung]])
    np.testing.assert_array_equal(ragged, both)


def test_distance_equals_brute_force_on_random_points(atlas):
    rng = np.random.default_rng(0)
    idx = rng.uniform(-8, np.array(SHAPE) + 8, size=(1000, 3))  # includes points outside the volume
    idx[:100] = np.round(idx[:100])  # voxel centres (inside tests, half-way ties)
    p = atlas.to_mm(idx)
    targets = [sorted(rng.choice(atlas.num_organs, size=rng.integers(1, 4), replace=False).tolist())
               for _ in range(len(p))]
    got = atlas.distance(p, targets)
    np.testing.assert_allclose(got, _brute(atlas, p, targets), rtol=1e-12, atol=1e-12)
    assert (got == 0).sum() > 20 and (got > 0).sum() > 500
    order, dist = atlas.nearest_organs(p[:200], k=3)
    full = np.stack([_brute(atlas, p[:200], [[o]] * 200) for o in range(atlas.num_organs)], axis=1)
    np.testing.assert_allclose(dist, np.sort(full, axis=1)[:, :3], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.take_along_axis(full, order, axis=1), dist, rtol=1e-12, atol=1e-12)
    order9, dist9 = atlas.nearest_organs(p[:2], k=9)
    assert order9.shape == (2, 9) and (order9[:, 7:] == -1).all() and np.isinf(dist9[:, 7:]).all()


def test_distance_bad_input(atlas):
    with pytest.raises(DataError, match=r"\(P, 3\)"):
        atlas.distance(np.zeros((4, 2)), [[0]] * 4)
    with pytest.raises(DataError, match=r"target organ indices must lie in \[0, 7\)"):
        atlas.distance(np.zeros((1, 3)), [[7]])


def test_centre_inside_even_for_the_hollow_shell(atlas):
    for organ in range(atlas.num_organs):
        c = atlas.centre(organ)
        assert atlas.organ_at(c[None])[0] == organ, atlas.organs[organ]
    liver = atlas.centre(atlas.organ_index("liver"))
    np.testing.assert_allclose(liver, np.array([32.0, 7.0, 7.0]) - CENTER)
    colon = atlas.centre(atlas.organ_index("colon"))
    lumen = np.array([12.0, 12.0, 12.0]) - CENTER
    assert np.linalg.norm(colon - lumen) == pytest.approx(11.0)  # the wall voxel nearest the lumen centre


def test_centre_matches_the_erosion_loop():
    rng = np.random.default_rng(3)
    blob = ndimage.binary_dilation(rng.random((18, 20, 16)) > 0.93, iterations=2)
    labels = blob.astype(np.uint8)
    atlas = Atlas(labels, ["blob"], {"blob": [1]})
    mask, last = blob.copy(), blob
    while mask.any():
        last, mask = mask, ndimage.binary_erosion(mask, ndimage.generate_binary_structure(3, 1))
    comp, _ = ndimage.label(last, structure=np.ones((3, 3, 3)))
    biggest = comp == np.argmax(np.bincount(comp.ravel())[1:]) + 1
    expected = np.argwhere(biggest).mean(axis=0) - atlas.center
    got = atlas.centre(0)
    if atlas.organ_at(expected[None])[0] == 0:
        np.testing.assert_allclose(got, expected)
    else:
        assert atlas.organ_at(got[None])[0] == 0


# --------------------------------------------------------------------------------------------- sampling
def test_sample_subset_unique_seeded_and_round_trip(atlas):
    lung = atlas.organ_index("lung")
    u = atlas.sample(lung, 100, np.random.default_rng(5))
    assert u.shape == (100, 3) and u.dtype == np.float32 and np.abs(u).max() <= 1
    idx = atlas.to_index(atlas.denormalise(u))
    assert (atlas.organ_volume()[tuple(idx.T)] == lung).all()
    assert len(np.unique(idx, axis=0)) == 100
    np.testing.assert_array_equal(u, atlas.sample(lung, 100, np.random.default_rng(5)))
    assert not np.array_equal(u, atlas.sample(lung, 100, np.random.default_rng(6)))
    # round trip: exactly the voxel drawn
    drawn = atlas._draw(lung, 100, np.random.default_rng(5))
    np.testing.assert_array_equal(idx, drawn)
    np.testing.assert_allclose(atlas.denormalise(atlas.normalise(atlas.to_mm(drawn))), atlas.to_mm(drawn))
    # every voxel once when n = K; with replacement when n > K
    k = len(atlas.voxels(lung))
    everything = atlas.to_index(atlas.denormalise(atlas.sample(lung, k, np.random.default_rng(0))))
    assert len(np.unique(everything, axis=0)) == k
    more = atlas.to_index(atlas.denormalise(atlas.sample(lung, k + 50, np.random.default_rng(0))))
    assert more.shape == (k + 50, 3) and (atlas.organ_volume()[tuple(more.T)] == lung).all()
    s = atlas.summary(lung, 1000, seed=0)
    assert s.shape == (1000, 3) and s.dtype == np.float32
    np.testing.assert_array_equal(s, atlas.summary(lung, 1000, seed=0))
    np.testing.assert_array_equal((s + CENTER) % 1, 0)  # centred voxel centres


# ------------------------------------------------------------------------------------- merged / without
def test_merged_and_without(atlas):
    groups = {"lung+stomach": ["lung", "stomach"], "intestine": ["duodenum", "small intestine"]}
    mapping = atlas.index_map_after_merge(groups)
    merged = atlas.merged(groups)
    assert merged.organs == ["liver", "colon", "kidney", "lung+stomach", "intestine"]
    assert mapping.tolist() == [0, 4, 3, 1, 2, 3, 4]
    assert sorted(merged.organ_labels["lung+stomach"]) == [7, 8, 11, 12]
    parts = set(atlas.aliases["duodenum"]) | set(atlas.aliases["small intestine"])
    assert set(merged.aliases["intestine"]) == parts
    assert len(merged.voxels(3)) == len(atlas.voxels(5)) + len(atlas.voxels(2))
    p = atlas.to_mm(np.array([[30.0, 14.0, 30.0], [5.0, 30.0, 3.0]]))
    np.testing.assert_allclose(merged.distance(p, [[3], [3]]), atlas.distance(p, [[5, 2], [5, 2]]))
    assert Atlas.remap([5, 2, 0], mapping) == [3, 0]
    assert merged.meta["merged"]["intestine"] == ["duodenum", "small intestine"]
    with pytest.raises(DataError, match="in two merge groups"):
        atlas.merged({"a": ["lung"], "b": ["lung", "liver"]})
    with pytest.raises(DataError, match="already names of organs"):
        atlas.merged({"liver": ["lung", "stomach"]})
    held_out = atlas.without(["liver"])
    assert held_out.organs == ORGANS[1:]
    assert atlas.index_map_after_without("liver").tolist() == [-1, 0, 1, 2, 3, 4, 5]
    assert held_out.organ_at(atlas.to_mm(np.array([[30, 5, 5]])))[0] == -1
    np.testing.assert_array_equal(held_out.voxels(0), atlas.voxels(1))


# ------------------------------------------------------------------------------------------------ files
def test_save_load_round_trip(atlas, tmp_path):
    path = atlas.save(tmp_path / "atlas")
    assert path.name == "atlas.npz"
    with np.load(path, allow_pickle=False) as z:
        assert z["labels"].dtype == np.uint16 and z["voxels"].dtype == np.int16
    back = Atlas.load(path)
    np.testing.assert_array_equal(back.labels, atlas.labels)
    assert back.organs == atlas.organs and back.organ_labels == atlas.organ_labels
    assert back.aliases == atlas.aliases and back.meta == json.loads(json.dumps(atlas.meta))
    np.testing.assert_array_equal(back.spacing, atlas.spacing)
    for organ in range(atlas.num_organs):
        np.testing.assert_array_equal(back.voxels(organ), atlas.voxels(organ))
    assert read_atlas(tmp_path).organs == atlas.organs  # a folder holding atlas.npz
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="bad.npz: unreadable atlas.npz"):
        Atlas.load(tmp_path / "bad.npz")


def test_export_dicts(atlas, tmp_path):
    paths = atlas.export_dicts(tmp_path / "organs")
    assert {p.name for p in paths} == {"organ2ind.json", "ind2organ.json", "organ2label.json",
                                       "organ2alias.json", "organ2center.json", "organ2summary.json"}
    ind2organ = json.loads((tmp_path / "organs" / "ind2organ.json").read_text())
    assert ind2organ == {str(i): o for i, o in enumerate(ORGANS)}
    centers = json.loads((tmp_path / "organs" / "organ2center.json").read_text())
    assert all(atlas.organ_at(np.array([c]))[0] == atlas.organ_index(o) for o, c in centers.items())
    summary = json.loads((tmp_path / "organs" / "organ2summary.json").read_text())
    assert all(len(v) == 1000 for v in summary.values())
    assert not (tmp_path / "organs" / "organ2voxels.json").exists()


# ------------------------------------------------------------------------------------------------ NIfTI
def test_read_nifti_with_table_and_without(tmp_path):
    nib = pytest.importorskip("nibabel")
    vol = np.zeros((10, 12, 8), dtype=np.int16)
    vol[1:4, 1:4, 1:4] = 1
    vol[5:9, 5:9, 2:6] = 2
    vol[5:9, 9:11, 2:6] = 3
    image = nib.Nifti1Image(vol, np.diag([2.0, 1.5, 1.0, 1.0]))
    nib.save(image, tmp_path / "brain.nii.gz")
    with pytest.raises(DataError, match=r"brain\.nii\.gz: no label table.*put brain\.tsv beside it"
                                        r".*label<TAB>name"):
        read_nifti(tmp_path / "brain.nii.gz")
    (tmp_path / "brain.tsv").write_text("index\tname\n0\tbackground\n1\tThalamus\n2\tcortex\n3\tcortex\n"
                                        "4\tabsent\n")
    atlas = read_nifti(tmp_path / "brain.nii.gz")
    assert atlas.organs == ["Thalamus", "cortex"] and atlas.organ_labels["cortex"] == [2, 3]
    assert atlas.aliases["Thalamus"] == ["Thalamus", "thalamus"] and atlas.meta["absent"] == ["absent"]
    np.testing.assert_array_equal(atlas.spacing, [2.0, 1.5, 1.0])
    np.testing.assert_array_equal(atlas.center * atlas.spacing, [10.0, 9.0, 4.0])
    # 2 mm along x: the nearest thalamus voxel is 2 voxels = 4 mm away
    p = atlas.to_mm(np.array([[5.0, 2.0, 2.0]]))
    assert atlas.distance(p, [[0]])[0] == pytest.approx(4.0)
    assert read_atlas(tmp_path / "brain.nii.gz").organs == atlas.organs
    # FSL LUT lines
    lut = tmp_path / "lut.txt"
    lut.write_text("# FSL LUT\n0 Unknown 0 0 0 0\n1 Left-Thalamus 0 118 14 0\n2 Cortex 205 62 78 0\n")
    assert read_nifti(tmp_path / "brain.nii.gz", table=lut).organs == ["Left-Thalamus", "Cortex"]
    bad = tmp_path / "bad.csv"
    bad.write_text("label,name\n1,liver\nx,lung\n")
    raw, problems = parse_label_table(bad)
    assert raw == {"liver": [1]}
    assert "bad.csv: row 3: field label: label must be an integer" in str(problems[0])


# ----------------------------------------------------------------------------------------------- check
def test_check_atlas_files(sio_copy):
    problems, summary = check_atlas_files(sio_copy)
    assert problems == [] and summary["slices"] == 30 and summary["shape"] == "41x44x30"
    assert summary["organs"] == 7 and summary["unlisted label values"] == 30
    assert summary["voxels"] == int(np.isin(_volume(), [5, 7, 8, 3, 4, 11, 12, 13, 14, 20]).sum())
    (sio_copy / "labels" / "slice_7.tif").unlink()
    tifffile.imwrite(sio_copy / "labels" / "slice_12.tif", np.zeros((41, 40), np.uint16))
    lines = (sio_copy / "objectlist.txt").read_text().splitlines()
    lines[20] = "cardia 12"
    (sio_copy / "objectlist.txt").write_text("\n".join(lines))
    problems, summary = check_atlas_files(sio_copy.parent)
    text = "\n".join(map(str, problems))
    assert "missing slice numbers 7 " in text
    assert "slice_12.tif: slice is 41x40 uint16; the other slices are 41x44 uint16" in text
    assert "objectlist.txt: row 21: expected" in text
    assert len(problems) == 3 and summary["slices"] == 29


def test_check_nifti_and_npz(atlas, tmp_path):
    nib = pytest.importorskip("nibabel")
    vol = np.zeros((6, 6, 6), dtype=np.uint8)
    vol[1:3, 1:3, 1:3] = 1
    image = nib.Nifti1Image(vol, np.eye(4))
    image.header["pixdim"][1:4] = [np.nan, 1.0, np.inf]
    nib.save(image, tmp_path / "roi.nii")
    problems, _ = check_atlas_files(tmp_path / "roi.nii")
    assert len(problems) == 2 and "roi.nii: no label table for this NIfTI: put roi.tsv" in str(problems[0])
    (tmp_path / "roi.tsv").write_text("1\tblob\n2\n")
    problems, summary = check_atlas_files(tmp_path)  # the folder's only NIfTI
    text = "\n".join(map(str, problems))
    assert "roi.nii: field pixdim: voxel sizes must be 3 finite positive mm values, got [nan, 1.0, inf]" \
        in text
    assert "roi.tsv: row 2: field name: expected 'label<TAB>name'" in text
    assert len(problems) == 2 and summary["organs"] == 1 and summary["voxels"] == 8
    with pytest.raises(DataError, match="pixdim"):
        read_nifti(tmp_path / "roi.nii")
    path = atlas.save(tmp_path / "npz" / "atlas.npz")
    problems, summary = check_atlas_files(path.parent)
    assert problems == [] and summary == {"shape": "41x44x30", "organs": 7, "voxels": int(
        (atlas.organ_volume() >= 0).sum())}
