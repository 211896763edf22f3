"""The Abstract Scenes v1.1 reader, ``data prepare scenes`` and ``data check scenes`` on small raw fixtures
written here, and prepare on a small world (spec ``sr_bert.md`` §2 and §9)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modalbridge.core.errors import DataError
from modalbridge.tasks.scenes import abstract_scenes as A
from modalbridge.tasks.scenes import vocab as V
from modalbridge.tasks.scenes.world import write_release

# ------------------------------------------------------------------------------------------ fixture helpers
#: two sets of three scenes: (set_idx, [(png_name, x, y, z, flip), …])
SCENES = [(0, [("s_3s.png", 60, 50, 0, 0), ("hb0_0s.png", 100, 300, 0, 0), ("hb1_7s.png", 180, 290, 0, 1)]),
          (0, [("p_8s.png", 400, 200, 1, 0), ("hb0_0s.png", 120, 300, 0, 0)]),
          (0, [("hb1_7s.png", 250, 280, 0, 0), ("a_2s.png", 300, 320, 1, 1)]),
          (1, [("s_3s.png", 460, 40, 2, 0), ("t_4s.png", -12, 512, 0, 0)]),
          (1, [("hb0_10s.png", 200, 300, 0, 0)]),
          (1, [("c_1s.png", 200, 250, 0, 1), ("hb1_0s.png", 200, 295, 0, 1)])]


def scenes_text(scenes=SCENES, count: int | None = None) -> str:
    lines = [str(len(scenes) if count is None else count)]
    for set_idx, elements in scenes:
        lines.append(f"{set_idx}\t{len(elements)}")
        for name, x, y, z, flip in elements:
            type_idx = V.TYPE_PREFIXES.index(V.prefix(name))
            lines.append(f"{name}\t{type_idx}\t{name.split('_')[1][:-5]}\t{x}\t{y}\t{z}\t{flip}")
    return "\n".join(lines) + "\n"


def sentences_text(file_no: int, scenes: range = range(6), *, blank: bool = True) -> str:
    """Two sentences per scene (the second of file 2 ends in "!"); a blank line after each scene."""
    lines = []
    for i in scenes:
        ending = "!" if file_no == 2 else ""
        lines += [f"{i}\t0\tMike is Next to Jenny  ", f"{i}\t1\tThe sun is in the sky{ending}"]
        if blank:
            lines.append("")
    return "\n".join(lines) + "\n"


def tuples_text(file_no: int, scenes: range = range(6)) -> str:
    lines = []
    for i in scenes:
        lines += [f"{i}\t0\tMike\tis next to\tJenny ", f"{i}\t1\tThe sun\tis in\tthe sky", ""]
    return "\n".join(lines) + "\n"


Texts = tuple[str | None, str | None]


def make_release(root: Path, *, scenes: str | None = None, sentences: Texts = (None, None),
                 tuples: Texts = (None, None), pngs: list[str] | None = None) -> Path:
    """``root/AbstractScenes_v1.1/`` with the default fixture unless a file's text is given; ``pngs``: names
    of (empty) images to write into ``Pngs/`` (none: no Pngs folder)."""
    release = root / A.RELEASE_DIR
    files = {A.SCENES_FILE: scenes if scenes is not None else scenes_text()}
    for k in range(2):
        files[A.SENTENCE_FILES[k]] = sentences[k] if sentences[k] is not None else sentences_text(k + 1)
        files[A.TUPLE_FILES[k]] = tuples[k] if tuples[k] is not None else tuples_text(k + 1)
    for name, text in files.items():
        (release / name).parent.mkdir(parents=True, exist_ok=True)
        (release / name).write_text(text)
    if pngs is not None:
        (release / A.PNGS_DIR).mkdir()
        for name in pngs:
            (release / A.PNGS_DIR / name).write_bytes(b"")
    return release


def replace_line(text: str, number: int, new: str) -> str:
    """``text`` with its 1-based line ``number`` replaced."""
    lines = text.split("\n")
    lines[number - 1] = new
    return "\n".join(lines)


def assert_names(exc: DataError, path_end: str, row: int, field: str | None) -> None:
    """The error names the file, the line and the field (and says so in its message)."""
    assert str(exc.path).endswith(path_end), exc.path
    assert exc.row == row and exc.field == field, (exc.row, exc.field, str(exc))
    assert path_end.split("/")[-1] in str(exc) and f"row {row}" in str(exc)


# ------------------------------------------------------------------------------------------ reader
def test_reads_scenes_sentences_and_tuples(tmp_path):
    release = A.read_release(make_release(tmp_path))
    assert release.declared == 6 and [s.set_idx for s in release.scenes] == [0, 0, 0, 1, 1, 1]
    first = release.scenes[0]
    assert (first.ordinal, first.line) == (0, 2)
    assert first.elements[2] == A.RawElement("hb1_7s.png", 3, 7, 180, 290, 0, 1)
    assert release.scenes[3].elements[1].x == -12  # off-canvas coordinates are data, not errors
    assert release.sentences[0] == {"0_file1": ["mike is next to jenny."],
                                    "1_file1": ["the sun is in the sky."],
                                    "0_file2": ["mike is next to jenny."],
                                    "1_file2": ["the sun is in the sky!"]}
    assert release.relations[5]["0_file2"] == ["mike=is next to=jenny"]


def test_root_may_be_the_release_folder_or_its_parent(tmp_path):
    release = make_release(tmp_path)
    assert A.find_release(tmp_path) == release == A.find_release(release)
    with pytest.raises(DataError, match="no Scenes_10020.txt"):
        A.find_release(tmp_path / A.RELEASE_DIR / "SimpleSentences")


def test_sentence_normalisation():
    assert A.normalise_sentence("Mike is Kicking the BALL  ") == "mike is kicking the ball."
    for ending in ("!", "?", '"', "."):
        assert A.normalise_sentence(f"Wow{ending}") == f"wow{ending}"


@pytest.mark.parametrize(("line", "new", "field", "message"), [
    (4, "hb0_0s.png\t2\t0\t100\t300\t0", "object", "expected 7 fields"),
    (4, "hb9_0s.png\t2\t0\t100\t300\t0\t0", "png_name", "unknown clip-art 'hb9_0s.png'"),
    (4, "hb0_0s.png\t2\t0\t100.5\t300\t0\t0", "x", "integer pixel coordinate, got '100.5'"),
    (4, "hb0_0s.png\t2\t0\t100\tlow\t0\t0", "y", "integer pixel coordinate"),
    (4, "hb0_0s.png\t2\t0\t100\t300\t0\t2", "flip", "expected 0 or 1, got 2"),
    (4, "hb0_0s.png\t2\t0\t100\t300\t3\t0", "z", "depth 0, 1 or 2"),
    (4, "hb0_0s.png\ttwo\t0\t100\t300\t0\t0", "type_idx", "expected an integer"),
    (1, "many", "count", "expected an integer"),
])
def test_bad_object_lines_name_file_line_and_field(tmp_path, line, new, field, message):
    make_release(tmp_path, scenes=replace_line(scenes_text(), line, new))
    with pytest.raises(DataError, match=message) as info:
        A.read_release(tmp_path)
    assert_names(info.value, A.SCENES_FILE, line, field)


def test_header_count_disagreeing_with_the_scenes_found(tmp_path):
    make_release(tmp_path, scenes=scenes_text(count=7))
    with pytest.raises(DataError, match="line 1 says 7 scenes but the file holds 6") as info:
        A.read_release(tmp_path)
    assert_names(info.value, A.SCENES_FILE, 1, "count")


def test_header_object_count_disagreeing_with_its_object_lines(tmp_path):
    text = replace_line(scenes_text(), 6, "0\t3")  # scene 1 announces 3 objects, 2 follow
    make_release(tmp_path, scenes=text)
    with pytest.raises(DataError, match="declares 3 objects but 2 object lines follow") as info:
        A.read_release(tmp_path)
    assert_names(info.value, A.SCENES_FILE, 6, "n_objects")


def test_sentence_scene_index_out_of_range(tmp_path):
    text = sentences_text(1) + "6\t0\tMike is sad.\n\n"  # the scenes file has scenes 0..5
    make_release(tmp_path, sentences=(text, None))
    message = r"scene index 6 out of range: Scenes_10020.txt has 6 scenes \(0..5\)"
    with pytest.raises(DataError, match=message) as info:
        A.read_release(tmp_path)
    assert_names(info.value, "SimpleSentences1_10020.txt", text.count("\n") - 1, "scene_idx")


def test_tuple_lines_need_three_fields_and_integer_sent_idx(tmp_path):
    make_release(tmp_path, tuples=(None, replace_line(tuples_text(2), 2, "0\t1")))
    with pytest.raises(DataError, match="expected TAB-separated <scene_idx>") as info:
        A.read_release(tmp_path)
    assert_names(info.value, "TuplesText2_10020.txt", 2, None)
    make_release(tmp_path, tuples=(None, replace_line(tuples_text(2), 2, "0\tone\tThe sun\tis in\tthe sky")))
    with pytest.raises(DataError, match="expected an integer, got 'one'") as info:
        A.read_release(tmp_path)
    assert_names(info.value, "TuplesText2_10020.txt", 2, "sent_idx")


def test_a_sentence_file_without_any_blank_separator_is_refused(tmp_path):
    make_release(tmp_path, sentences=(None, sentences_text(2, blank=False)))
    with pytest.raises(DataError, match="no blank line separates scene 0 from scene 1") as info:
        A.read_release(tmp_path)
    assert_names(info.value, "SimpleSentences2_10020.txt", 3, "separator")


def test_a_few_missing_separators_are_read_and_counted(tmp_path):
    text = sentences_text(1).replace("sky\n\n1\t0", "sky\n1\t0", 1)  # scene 0 → 1 without a blank line
    make_release(tmp_path, sentences=(text, None))
    release = A.read_release(tmp_path)
    assert release.counts["missing separators"] == 1 and len(release.sentences[1]) == 4


def test_blank_and_non_numeric_lines_are_skipped(tmp_path):
    text = "scene\tsentence\ttext\n\n" + sentences_text(1)
    make_release(tmp_path, sentences=(text, None))
    release = A.read_release(tmp_path)
    assert release.counts["skipped lines"] == 1
    assert release.sentences[0]["0_file1"] == ["mike is next to jenny."]


def test_empty_scene_and_scene_without_sentences_are_dropped_and_counted(tmp_path):
    scenes = [*SCENES[:2], (0, []), *SCENES[3:]]
    make_release(tmp_path, scenes=scenes_text(scenes),
                 sentences=(sentences_text(1, range(5)), sentences_text(2, range(5))))  # 5: no sentences
    written, summary = A.prepare_abstract_scenes(tmp_path, tmp_path / "out")
    counts = (summary.scenes_read, summary.kept, summary.dropped_empty, summary.dropped_without_sentences)
    assert counts == (6, 4, 1, 1)
    assert "dropped 1 empty and 1 without sentences" in str(summary)
    assert json.loads(written["summary"].read_text())["dropped_empty"] == 1
    test = json.loads(written["test_dataset"].read_text())
    assert [s["scene_idx"] for s in test] == [1, 4]  # set 1's last kept scene is 4


# ------------------------------------------------------------------------------------------ prepare
def test_prepare_writes_the_processed_format(tmp_path):
    make_release(tmp_path)
    result = A.prepare_scenes(tmp_path, None, None)
    assert result["train_dataset"] == tmp_path / "processed" / "train_dataset.json"
    assert result.summary.kept == 6 and result.summary.splits["train_dataset"] == 2
    train = A.read_processed(result["train_dataset"])
    assert [s["scene_idx"] for s in train] == [0, 3]
    scene = train[0]
    assert scene["index"] == 0
    assert scene["elements"][0] == {"visual_name": "s_3s.png", "x": 60, "y": 50, "z": 0, "flip": 0}
    names = [e["visual_name"] for e in scene["elements"]]
    assert names == ["s_3s.png", "hb0_0s.png", "hb1_7s.png"]  # file order
    assert list(scene["sentences"]) == ["0_file1", "1_file1", "0_file2", "1_file2"]
    assert scene["sentences"]["1_file2"] == ["the sun is in the sky!"]
    assert scene["relations"]["0_file1"] == ["mike=is next to=jenny"]
    for name in ("val_dataset", "test_dataset", "test_ood_default", "test_ood_ood", "test_ood_id",
                 "train_filtered", "val_filtered", "test_explicit_0-25", "test_explicit_75-100",
                 "tan/train_dataset",
                 "tan/test_dataset", "visual_dicts/visual2index", "visual_dicts/index2pose_hb1"):
        assert result[name].is_file(), name


def test_visual_dicts_follow_the_natural_sort_vocabulary(tmp_path):
    make_release(tmp_path)
    written, _ = A.prepare_abstract_scenes(tmp_path)
    table = json.loads(written["visual_dicts/visual2index"].read_text())
    assert len(table) == 126 and sorted(table.values()) == list(range(1, 127))
    assert (table["a_0s.png"], table["hb0_0s.png"], table["p_0s.png"], table["t_14s.png"]) == (1, 24, 94, 126)
    pose = json.loads(written["visual_dicts/index2pose_hb0"].read_text())
    expression = json.loads(written["visual_dicts/index2expression_hb1"].read_text())
    assert len(pose) == 35 and pose["23"] == 0 and pose[str(table["hb0_14s.png"] - 1)] == 2
    assert expression[str(table["hb1_14s.png"] - 1)] == 4


def test_split_is_8_1_1_per_set_on_the_world(tmp_path):
    write_release(tmp_path, seed=1, sets=4)
    _, summary = A.prepare_abstract_scenes(tmp_path)
    splits = {name: A.read_processed(tmp_path / "processed" / f"{name}_dataset.json") for name in A.SPLITS}
    per_set = {(name, s["index"]) for name, scenes in splits.items() for s in scenes}
    assert len(per_set) == 12  # every set is in every split
    counts = {name: [sum(s["index"] == k for s in scenes) for k in range(4)]
              for name, scenes in splits.items()}
    # set 0 holds the empty scene (3), set 1 the scene without sentences (14)
    assert counts == {"train": [7, 7, 8, 8], "val": [1] * 4, "test": [1] * 4}
    assert [s["scene_idx"] for s in splits["test"]] == [9, 19, 29, 39]
    assert [s["scene_idx"] for s in splits["val"]] == [8, 18, 28, 38]
    assert summary.dropped_empty == summary.dropped_without_sentences == 1


def _scene(index: int, relations: dict[str, str]) -> dict:
    element = {"visual_name": "a_0s.png", "x": 1, "y": 1, "flip": 0}
    return {"index": index, "scene_idx": index, "elements": [element],
            "sentences": {k: [f"sentence {k}."] for k in relations},
            "relations": {k: r.split("|") for k, r in relations.items()}}


def test_ood_subsets_follow_the_reference_definition():
    train = [_scene(0, {"0_file1": "mike=is near=jenny", "1_file1": "sun=is in=sky|dog=is=happy"}),
             _scene(1, {"0_file1": "dog=is under=tree", "1_file1": "mike=is=sad"})]
    val = [_scene(2, {"0_file1": "dog=is under=tree", "1_file1": "owl=is on=tree"})]
    unseen2 = _scene(3, {"0_file1": "mike=is near=jenny", "1_file1": "owl=is on=tree",
                         "2_file1": "cat=is=sad",
                         "0_file2": "sun=is in=sky"})  # "sun=is in=sky" alone ≠ the joined pair seen in train
    unseen1 = _scene(4, {"0_file1": "dog=is under=tree", "1_file1": "bear=is=big"})
    out = A.ood_subsets(train, val, [unseen2, unseen1])
    assert [s["index"] for s in out["test_ood_default"]] == [3]
    assert list(out["test_ood_ood"][0]["sentences"]) == ["1_file1", "2_file1", "0_file2"]
    assert list(out["test_ood_id"][0]["sentences"]) == ["0_file1"]
    assert list(out["test_ood_ood"][0]["relations"]) == ["1_file1", "2_file1", "0_file2"]
    assert out["test_ood_default"][0] is unseen2 and len(unseen2["sentences"]) == 4  # input not modified
    # filtered: train/val lose every sentence whose relation occurs in the default scenes; empty scenes go
    assert [list(s["sentences"]) for s in out["train_filtered"]] == [["1_file1"], ["0_file1", "1_file1"]]
    assert [list(s["sentences"]) for s in out["val_filtered"]] == [["0_file1"]]
    val_only = [_scene(5, {"0_file1": "owl=is on=tree"})]
    assert A.ood_subsets(train, val_only, [unseen2])["val_filtered"] == []


def test_explicit_ratio_bins():
    scene = {"sentences": {"0_file1": ["mike is next to jenny.", "mike is sad."],
                           "1_file1": ["jenny is happy."],
                           "0_file2": ["the sun is in the sky."]}}
    assert A.explicit_ratio(scene) == 0.5
    bins = A.explicit_bins([scene, {"sentences": {"0_file1": ["mike is sad."]}},
                            {"sentences": {"0_file1": ["the dog is under the tree."]}}])
    assert {name: len(scenes) for name, scenes in bins.items()} == {
        "test_explicit_0-25": 1, "test_explicit_25-50": 1, "test_explicit_50-75": 0,
        "test_explicit_75-100": 1}


def test_tan_split_reproduces_text2scene_and_scales_down():
    full = [{"scene_idx": i} for i in range(10020) if i not in (5, 8500)]  # two dropped scenes
    split = A.tan_split(full, 10020)
    assert len(split["test"]) == 999
    assert split["test"][0]["scene_idx"] == 8000 and split["test"][-1]["scene_idx"] == 8999
    assert len(split["train"]) == 8500 and split["train"][-1]["scene_idx"] == 9500
    assert len(split["val"]) == 10018 - 999 - 8500 and split["val"][0]["scene_idx"] == 9501
    small = A.tan_split([{"scene_idx": i} for i in range(100)], 100)
    assert [s["scene_idx"] for s in small["test"]] == list(range(79, 89))
    assert len(small["train"]) == 85 and len(small["val"]) == 5


# ------------------------------------------------------------------------------------------ processed JSON
def test_read_processed_names_file_and_scene_position(tmp_path):
    path = tmp_path / "test_dataset.json"
    good = _scene(0, {"0_file1": "a=b=c"})
    bad = json.loads(json.dumps(good))
    bad["elements"][0]["visual_name"] = "dragon.png"
    path.write_text(json.dumps([good, bad]))
    with pytest.raises(DataError, match="scene at position 1: unknown clip-art 'dragon.png'") as info:
        A.read_processed(path)
    assert (info.value.path, info.value.row, info.value.field) == (path, 1, "elements[0].visual_name")
    errors: list[DataError] = []
    assert len(A.read_processed(path, errors=errors)) == 1 and len(errors) == 1
    path.write_text("[{")
    with pytest.raises(DataError, match="not valid JSON"):
        A.read_processed(path)
    del good["relations"]
    path.write_text(json.dumps([good]))
    assert A.read_processed(path)[0]["relations"] == {}


# ------------------------------------------------------------------------------------------ check
def test_check_a_good_release_and_its_processed_folder(tmp_path):
    release = make_release(tmp_path, pngs=[*V.CLIPARTS, *V.UI_FILES])
    problems, summary = A.check_scenes(tmp_path)
    assert problems == []
    assert summary["scenes"] == 6 and summary["sets"] == 2 and summary["cliparts"] == 9
    assert summary["sentences"] == 24 and summary["tuples"] == 24 and summary["clip-art PNGs"] == 126
    assert A.check_scenes(release).summary == summary
    A.prepare_abstract_scenes(tmp_path)
    problems, summary = A.check_scenes(tmp_path / "processed")
    assert problems == [] and summary["train scenes"] == 2 and summary["test scenes"] == 2


def test_check_lists_every_problem_at_once(tmp_path):
    text = scenes_text()
    text = replace_line(text, 4, "hb0_0s.png\t2\t0\t100\t300\t0")  # 6 fields
    text = replace_line(text, 7, "p_8s.png\t1\t8\t400\t200\t1\t5")  # flip 5
    text = replace_line(text, 10, "zebra.png\t4\t9\t300\t320\t1\t1")  # unknown clip-art
    sentences = sentences_text(1) + "99\t0\tMike is sad.\n\n"
    make_release(tmp_path, scenes=text, sentences=(sentences, sentences_text(2, blank=False)),
                 pngs=[n for n in V.CLIPARTS if n not in ("s_3s.png", "hb1_7s.png")])
    problems, summary = A.check_scenes(tmp_path)
    messages = "\n".join(map(str, problems))
    assert len(problems) == 8, messages
    for expected in ("Scenes_10020.txt: row 4: field object: expected 7 fields",
                     "Scenes_10020.txt: row 7: field flip: expected 0 or 1, got 5",
                     "Scenes_10020.txt: row 10: field png_name: unknown clip-art 'zebra.png'",
                     "SimpleSentences1_10020.txt: row 19: field scene_idx: scene index 99 out of range",
                     "SimpleSentences2_10020.txt: row 3: field separator: no blank line",
                     "Pngs/s_3s.png: clip-art s_3s.png is used by the scene at line 2",
                     "Pngs/hb1_7s.png: clip-art hb1_7s.png is used by the scene at line 2",
                     "Pngs/background.png: missing"):
        assert expected in messages, expected
    assert summary["scenes"] == 6


def test_check_a_broken_processed_folder_and_a_bad_root(tmp_path):
    folder = tmp_path / "processed"
    folder.mkdir()
    (folder / "train_dataset.json").write_text(json.dumps([_scene(0, {"0_file1": "a=b"})]))
    (folder / "test_dataset.json").write_text(json.dumps([{"elements": [], "sentences": {}}]))
    problems, _ = A.check_scenes(tmp_path)
    messages = "\n".join(map(str, problems))
    assert "test_dataset.json: row 0: field elements" in messages and "missing the val split" in messages
    with pytest.raises(DataError, match="neither a raw release"):
        A.check_scenes(_empty(tmp_path))
    with pytest.raises(DataError, match="dataset folder not found"):
        A.check_scenes(tmp_path / "nowhere")


def _empty(tmp_path: Path) -> Path:
    folder = tmp_path / "empty"
    folder.mkdir()
    return folder


def test_clipart_folder_is_found_from_the_release_its_parent_or_processed(tmp_path):
    release = make_release(tmp_path, pngs=["background.png"])
    pngs = release / A.PNGS_DIR
    (tmp_path / "processed").mkdir()
    assert A.clipart_folder(tmp_path) == A.clipart_folder(release) == A.clipart_folder(pngs) == pngs
    assert A.clipart_folder(tmp_path / "processed") == pngs
    assert A.clipart_folder(tmp_path / "processed" / "nothing") is None
