"""The SIO glossary rules (spec text2atlas.md §2.1) on the VOXEL-MAN object names, alias clean-up, and the IGR
functional groups (§6)."""

from __future__ import annotations

import pytest

from modalbridge.tasks.atlas.glossary import (
    FUNCTIONAL_GROUPS,
    SIO_GLOSSARY,
    Glossary,
    apply_glossary,
    clean_alias,
    functional_groups_for,
    group_of,
)

#: object names of the VOXEL-MAN inner-organs list as the reference's glossary notes give them (a subset of
#: the bones etc.), plus a few organs the notes do not mention
SIO_NAMES = [
    "bones of the left hand", "cervical vertebra C5", "coccyx", "grey matter", "intervertebral disc T4/T5",
    "left rib 1", "right rib 12", "left ulna", "right femur", "left clavicle", "muscles of the left arm",
    "lumbar vertebra L1", "marker 1", "skin of the right arm", "thoracic vertebra T10", "unclassified bones",
    "unclassified tissue of the left arm", "unclassified veins", "white matter", "sternum", "sacrum",
    "left costal cartilage 6-9", "right costal cartilage 1", "left clavicular cartilage",
    "right clavicular cartilage",
    "left atrium", "right atrium", "left ventricle", "right ventricle", "myocardium", "pericardium",
    "left lung", "right lung", "bronchi", "trachea", "trachea lumen", "larynx", "diaphragm",
    "liver", "gallbladder", "pancreas", "spleen", "cystic duct",
    "fundus of stomach", "greater curvature", "lesser curvature", "body of stomach", "cardia", "stomach",
    "duodenum (retroperitoneal part)", "small intestine", "caecum", "ascending colon", "transverse colon",
    "descending colon", "sigmoid colon", "left colic flexure", "right colic flexure", "rectum", "ampulla",
    "left kidney", "left renal medulla", "right kidney", "right renal medulla", "urinary bladder",
    "seminal gland", "penis", "corpus cavernosum penis", "corpus spongiosum penis", "scrotum", "prostate",
    "left psoas", "right psoas", "left iliacus", "right external oblique", "left internal oblique",
    "left rectus abdominis", "right transversus abdominis", "left obturator internus", "ischiocavernosus",
    "pelvic diaphragm", "rectus sheath", "visceral fat",
    "superior vena cava", "inferior vena cava", "superior mesenteric vein", "splenic vein", "pulmonary veins",
    "pulmonary trunk", "pulmonary arteries", "portal vein", "left subclavian vein", "right jugular vein",
    "hepatic veins", "descending aorta", "arch of aorta", "abdominal aorta", "ascending aorta",
    "brachiocephalic vein", "azygos vein", "left renal vein", "right renal vein", "inferior mesenteric vein",
    "right adrenal gland",
]
RAW = {name: [i + 1] for i, name in enumerate(SIO_NAMES)}
#: the names the reference code relies on (card §2.1)
CARD_ORGANS = {"lung", "bronchi", "trachea", "larynx", "diaphragm", "liver", "gallbladder", "pancreas",
               "stomach", "duodenum", "small intestine", "caecum", "colon", "rectum", "ampulla", "kidney",
               "urinary bladder", "atrium", "ventricle", "myocardium", "pericardium", "seminal gland",
               "penis"}


@pytest.fixture(scope="module")
def glossary():
    return apply_glossary(RAW, SIO_GLOSSARY)


def test_sio_glossary_keeps_exactly_the_organs(glossary):
    organs, labels, aliases = glossary
    assert set(organs) == CARD_ORGANS | {"spleen", "prostate", "right adrenal gland"}
    assert len(organs) == len(set(organs)) == 26
    # reference order: untouched objects in file order, then merged, then renamed organs
    assert organs[:5] == ["myocardium", "pericardium", "bronchi", "larynx", "diaphragm"]
    assert organs[-9:] == ["stomach", "colon", "penis", "trachea", "ventricle", "atrium", "kidney", "lung",
                           "duodenum"]


def test_merges_take_every_label(glossary):
    _, labels, aliases = glossary
    assert sorted(labels["stomach"]) == sorted(RAW[n][0] for n in (
        "fundus of stomach", "greater curvature", "lesser curvature", "body of stomach", "cardia", "stomach"))
    assert sorted(labels["colon"]) == sorted(RAW[n][0] for n in (
        "ascending colon", "transverse colon", "descending colon", "sigmoid colon", "left colic flexure",
        "right colic flexure"))
    assert sorted(labels["penis"]) == sorted(RAW[n][0] for n in (
        "penis", "corpus cavernosum penis", "corpus spongiosum penis"))
    assert labels["trachea"] == [RAW["trachea"][0], RAW["trachea lumen"][0]]
    assert labels["kidney"] == [RAW["left kidney"][0], RAW["left renal medulla"][0]]
    assert labels["lung"] == RAW["left lung"] and labels["duodenum"] == RAW["duodenum (retroperitoneal part)"]


def test_aliases(glossary):
    _, _, aliases = glossary
    assert aliases["kidney"] == ["kidney", "renal medulla"]
    assert aliases["ampulla"] == ["ampulla", "ampulla of vater"]
    assert aliases["lung"] == ["lung"] and aliases["duodenum"] == ["duodenum"]
    assert set(aliases["small intestine"]) == {"small intestine", "jejunum", "ileum", "intestine, small"}
    assert set(aliases["atrium"]) == {"atrium", "heart atria"}
    assert set(aliases["ventricle"]) == {"ventricle", "heart ventricles"}
    assert set(aliases["caecum"]) == {"caecum", "cecum"}
    assert set(aliases["seminal gland"]) == {"seminal gland", "seminal vesicles"}
    assert set(aliases["bronchi"]) == {"bronchi", "bronchus"}
    assert set(aliases["colon"]) == {"colon", "ascending colon", "transverse colon", "descending colon",
                                     "sigmoid colon", "colon, ascending", "colon, descending",
                                     "colon, transverse", "colon, sigmoid", "hepatic flexure",
                                     "splenic flexure", "colic flexure"}
    assert set(aliases["stomach"]) == {"stomach", "fundus of stomach", "greater curvature",
                                       "lesser curvature", "body of stomach", "cardia"}
    assert set(aliases["penis"]) == {"penis", "corpus cavernosum penis", "corpus spongiosum penis"}


DROPPED = ["left rib 3", "Right Rib 11", "thoracic vertebra T5", "intervertebral disc L1/L2", "grey matter",
           "White Matter", "unclassified muscles", "marker 2", "sternum", "sacrum", "left costal cartilage 2",
           "skin of the left arm", "left psoas", "rectus sheath", "scrotum", "visceral fat", "cystic duct",
           "portal vein", "ascending aorta", "pulmonary arteries", "Inferior Vena Cava", "pulmonary trunk"]


@pytest.mark.parametrize("name", DROPPED)
def test_drop_rules(name):
    assert SIO_GLOSSARY.dropped(name)


@pytest.mark.parametrize("name", ["liver", "lung", "diaphragm", "larynx", "urinary bladder",
                                  "small intestine", "seminal gland", "pericardium", "prostate", "spleen"])
def test_organs_not_dropped(name):
    assert not SIO_GLOSSARY.dropped(name)


def test_right_copies_need_a_counterpart():
    organs, _, _ = apply_glossary({"lung": [1], "right lung": [2], "right adrenal gland": [3],
                                   "Left Kidney": [4], "Right Kidney": [5]}, SIO_GLOSSARY)
    assert organs == ["lung", "right adrenal gland", "kidney"]
    kept, _, _ = apply_glossary({"left lung": [1], "right lung": [2]}, Glossary())
    assert kept == ["left lung", "right lung"]


def test_missing_merge_parts_and_umls():
    organs, labels, aliases = apply_glossary({"stomach": [1], "cardia": [2], "liver": [3]}, SIO_GLOSSARY,
                                             umls={"liver": ["Liver", "Hepatic structure", "Liver, NOS",
                                                             "Liver [Ambiguous]", "segment 4 of liver"]})
    assert organs == ["liver", "stomach"] and labels["stomach"] == [2, 1]  # merge-list order
    assert aliases["liver"] == ["liver", "hepatic"]


@pytest.mark.parametrize("alias, cleaned", [
    ("kidney (body structure)", "kidney"), ("Kidney, NOS", "Kidney"), ("kidney nos", "kidney"),
    ("structure of kidney", "kidney"), ("renal structure", "renal"), ("lung [Ambiguous]", "lung"),
    ("diagnos", "diagnos"), ("substructure", "substructure"), ("entire > kidney", None),
    ("T10 vertebra", None), ("(structure)", None), ("heart atria", "heart atria"),
])
def test_clean_alias(alias, cleaned):
    assert clean_alias(alias) == cleaned


def test_functional_groups():
    assert set(FUNCTIONAL_GROUPS["respiratory"]) == {"bronchi", "diaphragm", "trachea", "lung", "larynx"}
    assert set(FUNCTIONAL_GROUPS["digestive-solid"]) == {"gallbladder", "liver", "pancreas"}
    assert {"duodenum", "stomach", "small intestine", "colon", "rectum", "caecum", "ampulla"} <= set(
        FUNCTIONAL_GROUPS["digestive-hollow"])
    members = [o for group in FUNCTIONAL_GROUPS.values() for o in group]
    assert len(members) == len(set(members))  # one group per organ
    assert CARD_ORGANS <= set(members)
    assert group_of("kidney") == "urinary" and group_of("spleen") is None
    assert functional_groups_for(["liver", "lung", "spleen", "trachea"]) == {
        "respiratory": ["lung", "trachea"], "digestive-solid": ["liver"]}


def test_a_glossary_file_replaces_or_extends_the_built_in_rules(tmp_path):
    import json

    from modalbridge.core.errors import DataError
    from modalbridge.tasks.atlas.glossary import SIO_GLOSSARY, load_glossary

    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"extend": True, "renames": {"liver": "hepar"}, "drop": ["spleen"]}))
    rules = load_glossary(path)
    assert rules.renames["liver"] == "hepar" and rules.renames["left lung"] == "lung"  # extended, kept
    assert rules.dropped("spleen") and rules.dropped("sternum")
    path.write_text(json.dumps({"merges": {"heart": ["left atrium", "left ventricle"]}}))
    assert dict(load_glossary(path).merges) == {"heart": ("left atrium", "left ventricle")}
    assert load_glossary(path).drop == SIO_GLOSSARY.drop  # keys not given stay the built-in ones
    path.write_text(json.dumps({"merge": {}}))
    with pytest.raises(DataError, match="unknown glossary key"):
        load_glossary(path)
