"""The automatic relation checker (ours): each predicate holds and fails on crafted layouts, unknown words are
not checkable, layouts can be given by slot, name or array, and ground-truth layouts score high."""

import math

import numpy as np
import pytest

from modalbridge.tasks.scenes.relations import (
    THESIS_HUMAN_GT_ACCEPTANCE,
    Thresholds,
    check_relations,
    check_statement,
    ground_truth_calibration,
    relation_accuracy,
    relation_report,
    scene_statements,
)

# Mike left, Jenny right, the dog between them, the sun high up, a crown on Mike's head, a soccer ball at
# Mike's feet, a tree far left.
LAYOUT = {"hb0_3s.png": (150, 280), "hb1_0s.png": (350, 280), "a_2s.png": (250, 330), "s_3s.png": (420, 70),
          "c_1s.png": (150, 190), "t_4s.png": (180, 350), "p_8s.png": (40, 200)}
PLACED = [(name, np.array(xy, dtype=float)) for name, xy in LAYOUT.items()]


def _scene(sentences, relations=None, layout=LAYOUT):
    return {"index": 0, "elements": [{"visual_name": n, "x": x, "y": y, "z": 0, "flip": 0}
                                     for n, (x, y) in layout.items()],
            "sentences": {f"{i}_file1": [s] for i, s in enumerate(sentences)},
            "relations": {f"{i}_file1": [r] for i, r in enumerate(relations or []) if r}}


def _holds(text, placed=PLACED):
    return check_statement(text, placed).holds


@pytest.mark.parametrize("sentence, expected", [
    ("Mike is to the left of Jenny.", True),
    ("jenny is left of mike.", False),
    ("Jenny is to the right of the dog.", True),
    ("The dog is on the right of Jenny.", False),
    ("The sun is above Mike.", True),
    ("The soccer ball is over the dog.", False),
    ("The ball is below Mike.", True),
    ("The sun is under the tree.", False),
    ("The crown is on top of Mike.", True),
    ("The crown is on the ball.", True),
    ("The dog is on the crown.", False),
    ("The dog is next to Mike and Jenny.", True),
    ("The sun is near the tree.", False),
    ("Mike is kicking the soccer ball.", True),
    ("Jenny is holding the crown.", False),
    ("The sun is far from the dog.", True),
    ("Mike is wearing a crown.", True),
    ("Jenny is wearing a crown.", False),
    ("The sun is in the sky.", True),
    ("The dog is in the sky.", False),
    ("The dog is standing on the grass.", True),
    ("Mike and Jenny are below the sun.", True),
    ("Mike and the sun are on the left.", False),  # "and" joins subjects: both must hold
    ("The boy is on the left.", True),
    ("The girl is next to the puppy.", True),
    ("The trees are to the left of mike.", True),  # plural, and "tree" names the tree
    ("The dog is right next to Jenny.", True),  # "right" as an adverb is not "right of"
    ("The sun is on the right side of the sky.", True),
    ("Mike has a crown on his head.", True),  # = is wearing
])
def test_predicates_hold_and_fail(sentence, expected):
    assert _holds(sentence) is expected


def test_tuples_use_their_fields():
    assert _holds("mike=is to the left of=jenny") is True
    assert _holds(["jenny", "is to the left of", "mike"]) is False
    assert _holds("mike=kicks=ball") is True
    assert _holds("sun=is in=sky") is True
    result = check_statement("mike=wearing=crown", PLACED, key="3_file2")
    assert (result.predicate, result.subjects, result.object, result.key) == ("wear", ("hb0_3s.png",),
                                                                             "c_1s.png", "3_file2")


@pytest.mark.parametrize("sentence, reason", [
    ("Jenny is in front of the dog.", "not decidable"),
    ("The bear is near Mike.", "subject names no clip-art"),
    ("Mike is next to the pizza.", "object names no clip-art"),
    ("Mike is not near the dog.", "negated"),
    ("It is a sunny day.", "no clip-art"),
    ("Mike is very angry.", "no relation"),
    ("Mike is near.", "no object"),
    ("Mike is right behind Jenny.", "not decidable"),  # "right" before a relation is an adverb
    ("The sky is blue above mike.", "subject names no clip-art"),
])
def test_what_cannot_be_checked_is_not_counted(sentence, reason):
    result = check_statement(sentence, PLACED)
    assert result.holds is None and not result.checkable
    assert reason in result.reason


def test_names_inside_clipart_words_are_not_relations_and_fallbacks_apply():
    placed = [("s_1s.png", np.array([250.0, 60.0])), ("hb1_3s.png", np.array([250.0, 300.0])),
              ("p_7s.png", np.array([400.0, 200.0]))]
    assert _holds("The hot air balloon is above Jenny.", placed) is True  # "air" is part of the name
    assert _holds("The balloon is in the sky.", placed) is True  # "balloon" → hot air balloon
    assert _holds("Jenny is to the left of the tree.", placed) is True  # no plain tree → the pine tree
    hot_dog = [("e_2s.png", np.array([250.0, 300.0]))]
    assert check_statement("The dog is near jenny.", hot_dog + placed).holds is None  # a hot dog is no dog


def test_wearing_needs_the_clothing_just_above_the_person():
    at_feet = [("hb0_3s.png", np.array([150.0, 280.0])), ("c_1s.png", np.array([150.0, 370.0]))]
    assert _holds("Mike is wearing a crown.", at_feet) is False
    too_high = [("hb0_3s.png", np.array([150.0, 280.0])), ("c_1s.png", np.array([150.0, 60.0]))]
    assert _holds("Mike is wearing a crown.", too_high) is False
    glove = check_statement("Mike is wearing a glove.", [PLACED[0], ("t_10s.png", np.array([190.0, 290.0]))])
    assert (glove.predicate, glove.holds) == ("near", True)  # not clothing: held, so "near"


def test_facing_uses_the_flip_when_the_layout_has_it():
    mike, jenny = ("hb0_3s.png", (150.0, 280.0)), ("hb1_0s.png", (350.0, 280.0))
    facing_right = [("hb0_3s.png", (150.0, 280.0, 0.0)), ("hb1_0s.png", (350.0, 280.0, 0.0))]
    assert _holds("Mike is facing Jenny.", facing_right) is True
    assert _holds("Jenny is looking at Mike.", facing_right) is False
    assert _holds("jenny=is facing=mike", [facing_right[0], ("hb1_0s.png", (350.0, 280.0, 1.0))]) is True
    unknown = check_statement("Mike is facing Jenny.", [mike, jenny])
    assert unknown.holds is None and "flip" in unknown.reason
    scene = _scene(["mike is facing jenny."])
    scene["elements"][0]["flip"] = 1  # the ground truth carries flips: Mike turned away
    assert check_relations(scene)[0].holds is False
    assert check_relations(scene, np.array([(150, 280, 0), (350, 280, 0)] + [(0, 0, 0)] * 5))[0].holds is True


def test_thresholds_are_configurable():
    tight = Thresholds(near=0.05)
    assert check_statement("The dog is next to Mike.", PLACED, thresholds=tight).holds is False
    wide = Thresholds(margin_px=40)
    assert check_statement("Mike is left of the ball.", PLACED, thresholds=wide).holds is False


def test_layouts_by_slot_name_or_array_and_statement_sources():
    scene = _scene(["mike is to the left of jenny.", "the sun is in the sky."],
                   ["jenny=is to the left of=mike", None])
    assert [r.holds for r in check_relations(scene)] == [False, True]  # the tuple wins for key 0
    assert [r.holds for r in check_relations(scene, source="sentences")] == [True, True]
    assert [r.holds for r in check_relations(scene, source="relations")] == [False]
    swapped = {0: (350, 280), "1": (150, 280)}  # slots (int or JSON string): Mike and Jenny swap places
    assert [r.holds for r in check_relations(scene, swapped, source="sentences")] == [False, None]
    by_name = {"hb0_3s": (350, 280), "hb1_0s.png": (150, 280), "s_3s.png": (100, 300)}
    assert [r.holds for r in check_relations(scene, by_name, source="sentences")] == [False, False]
    array = np.array([xy for xy in LAYOUT.values()], dtype=float)
    assert [r.holds for r in check_relations(scene, array, source="sentences")] == [True, True]
    with pytest.raises(ValueError, match="source"):
        scene_statements(scene, "tuples")
    listed = {"elements": scene["elements"],
              "sentences": ["mike is left of jenny.", "jenny is near the dog."]}
    assert [k for k, _, _ in scene_statements(listed)] == ["0", "1"]


def test_a_generated_scene_is_judged_on_its_own_cliparts():
    scene = _scene(["mike is next to the dog."])
    generated = {"hb0_20s.png": (230, 300), "a_2s.png": (260, 320)}  # another Mike pose: still "mike"
    assert check_relations(scene, generated)[0].holds is True


def test_ground_truth_scores_high_and_a_scrambled_layout_lower():
    sentences = ["Mike is to the left of Jenny.", "The sun is in the sky.", "Mike is wearing a crown.",
                 "Mike is kicking the soccer ball.", "The dog is next to Jenny.", "The tree is left of Mike.",
                 "Jenny is in front of the dog."]
    scenes = [_scene(sentences)] * 3
    calibration = ground_truth_calibration(scenes)
    assert calibration["accuracy"] == 1.0 and calibration["thesis_human_gt"] == THESIS_HUMAN_GT_ACCEPTANCE
    assert calibration["checked"] == 18 and calibration["not_checkable"] == 3
    rng = np.random.default_rng(0)
    scrambled = [rng.uniform([0, 0], [500, 400], size=(7, 2)) for _ in scenes]
    assert relation_accuracy(scenes, scrambled) < 0.8
    report = relation_report(scenes, scrambled)
    assert report["scenes_scored"] == 3 and set(report["per_predicate"]) <= {"left", "near", "wear"}
    assert math.isnan(relation_accuracy([_scene(["it is a sunny day."])]))
    with pytest.raises(ValueError, match="layouts"):
        relation_accuracy(scenes, scrambled[:1])


def test_macro_average_over_scenes():
    good = _scene(["Mike is to the left of Jenny.", "The sun is in the sky."])
    half = _scene(["Jenny is to the left of Mike.", "The sun is in the sky."])
    assert relation_accuracy([good, half]) == pytest.approx((1.0 + 0.5) / 2)
    one = _scene(["Jenny is to the left of Mike."])
    assert relation_accuracy([good, half, one]) == pytest.approx((1.0 + 0.5 + 0.0) / 3)


def test_calibration_on_the_embedded_world():
    """The world's sentences are true of its layouts: the proxy accepts nearly all of them there, and random
    layouts far fewer (the proxy separates good layouts from bad ones)."""
    import json

    from modalbridge.tasks.scenes.world import scenes_world

    test = json.loads((scenes_world() / "processed" / "test_dataset.json").read_text())
    calibration = ground_truth_calibration(test)
    assert calibration["accuracy"] > 0.95 and calibration["checked"] > 2 * len(test)
    rng = np.random.default_rng(0)
    random_layouts = [rng.uniform(0, 1, (len(s["elements"]), 3)) * [500, 400, 1] for s in test]
    for layout in random_layouts:
        layout[:, 2] = layout[:, 2].round()  # flips 0/1
    assert relation_accuracy(test, random_layouts) < calibration["accuracy"] - 0.3
