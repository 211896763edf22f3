"""Atlas samples, batches and the data module (spec ``text2atlas.md`` §4): the batch table (keys, shapes, dtypes),
truncation to the first 511 ids + [SEP], per-(seed, epoch, document) point draws (fresh every epoch, reproducible,
inside the organ, no duplicates), "+M" masking on training samples only, skipped records without loss targets,
and the within-organ (merge) and held-out-organ protocols' selections and remapping, on a hand-built atlas and a
dozen hand-written records in the processed on-disk format.

Also the shared fixtures of ``test_module.py``: :func:`tiny_atlas`, :func:`records`, :func:`write_processed`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from modalbridge.core.errors import DataError

atlas_module = pytest.importorskip("modalbridge.tasks.atlas.atlas")
pytest.importorskip("modalbridge.tasks.atlas.bioasq")

from modalbridge.nn.bert import load_tokenizer  # noqa: E402
from modalbridge.tasks.atlas.data import AtlasDataModule, AtlasSamples, collate_atlas, encode_texts  # noqa: E402

ORGANS = ["liver", "kidney", "lung", "stomach", "duodenum", "small intestine"]
LIVER, KIDNEY, LUNG, STOMACH, DUODENUM, SMALL = range(6)


def tiny_atlas():
    """(12, 16, 20) voxels at 1 mm; six box organs with background between them; the lung has two labels (upper
    and lower half along z); duodenum and small intestine touch."""
    labels = np.zeros((12, 16, 20), dtype=np.uint8)
    labels[1:5, 1:7, 1:9] = 1  # liver
    labels[7:11, 1:7, 1:9] = 2  # kidney
    labels[1:5, 9:15, 11:15] = 3  # lung, lower label
    labels[1:5, 9:15, 15:19] = 4  # lung, upper label
    labels[7:11, 9:15, 11:19] = 5  # stomach
    labels[1:6, 9:15, 1:9] = 6  # duodenum
    labels[6:11, 9:15, 1:9] = 7  # small intestine
    organ_labels = {"liver": [1], "kidney": [2], "lung": [3, 4], "stomach": [5], "duodenum": [6],
                    "small intestine": [7]}
    return atlas_module.Atlas(labels, ORGANS, organ_labels, {o: [o] for o in ORGANS})


#: (text, MeSH organs, occurrence organs, keywords)
_DOCS = [
    ("Liver fibrosis and portal pressure in the liver.", [LIVER], [LIVER], ["liver"]),
    ("Renal cysts of the kidney in adults.", [KIDNEY], [KIDNEY], ["kidney"]),
    ("The lung apex and upper lobe nodules of the lung.", [LUNG], [LUNG], ["lung"]),
    ("Gastric ulcer of the stomach antrum.", [STOMACH], [STOMACH], ["stomach"]),
    ("The duodenum and the small intestine share a wall.", [DUODENUM, SMALL], [DUODENUM, SMALL],
     ["duodenum", "small", "intestine"]),
    ("Metastases from the liver to the lung.", [LIVER, LUNG], [LIVER, LUNG], ["liver", "lung"]),
    ("Delivered doses in an unnamed organ.", [KIDNEY], [], []),  # no occurrence organ
    ("Small intestine transit time.", [SMALL], [SMALL], ["small", "intestine"]),
    ("Lung base consolidation.", [LUNG], [LUNG], ["lung"]),
    ("Stomach and lung in reflux disease.", [STOMACH, LUNG], [STOMACH, LUNG], ["stomach", "lung"]),
    ("Duodenum ulcer bleeding.", [DUODENUM], [DUODENUM], ["duodenum"]),
    ("Kidney stones. " * 40, [KIDNEY], [KIDNEY], ["kidney"]),  # long: truncated
]


def records(rows=None) -> list[dict]:
    return [{"pmid": str(i), "title": "", "journal": "", "year": 2020, "text": text, "mesh_terms": [],
             "organ_indices": mesh, "occ_organ_indices": occ, "keywords": keywords}
            for i, (text, mesh, occ, keywords) in enumerate(_DOCS if rows is None else rows)]


def write_processed(root: Path, atlas=None) -> Path:
    """A processed folder (``atlas.npz`` + ``dataset_{train,val,test}.json``): every split holds all 12 records."""
    root.mkdir(parents=True, exist_ok=True)
    (atlas or tiny_atlas()).save(root / "atlas.npz")
    for split in ("train", "val", "test"):
        (root / f"dataset_{split}.json").write_text(json.dumps(records()))
    return root


@pytest.fixture(scope="module")
def atlas():
    return tiny_atlas()


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer("minilm-l6")


@pytest.fixture(scope="module")
def processed(tmp_path_factory) -> Path:
    return write_processed(tmp_path_factory.mktemp("atlas") / "processed")


def samples(atlas, tokenizer, **kwargs) -> AtlasSamples:
    kwargs = {"train": True, "points": 5, "seed": 3, **kwargs}
    return AtlasSamples(records(), atlas, tokenizer, **kwargs)


# -- samples and batches -------------------------------------------------------------------------------------------
def test_batch_has_the_documented_keys_shapes_and_dtypes(atlas, tokenizer):
    ds = samples(atlas, tokenizer, max_length=32)
    batch = collate_atlas([ds[i] for i in (0, 4, 5)])
    assert set(batch) == {"index", "input_ids", "attention_mask", "points", "organ_mask", "organs", "eval_organs",
                          "multi_hot"}
    b, t = batch["input_ids"].shape
    assert b == 3 and batch["input_ids"].dtype == torch.long and batch["attention_mask"].dtype == torch.bool
    assert batch["points"].shape == (3, 2, 5, 3) and batch["points"].dtype == torch.float32
    assert batch["organs"].tolist() == [[LIVER, -1], [DUODENUM, SMALL], [LIVER, LUNG]]
    assert batch["organ_mask"].tolist() == [[True, False], [True, True], [True, True]]
    assert batch["eval_organs"].tolist() == [[LIVER, -1], [DUODENUM, SMALL], [LIVER, LUNG]]
    assert batch["multi_hot"].shape == (3, 6) and batch["multi_hot"].dtype == torch.float32
    assert batch["multi_hot"][1].tolist() == [0, 0, 0, 0, 1, 1]
    assert batch["index"].tolist() == [0, 4, 5]
    assert torch.equal(batch["attention_mask"], batch["input_ids"] != 0)
    assert (batch["input_ids"][:, 0] == tokenizer.cls_token_id).all()
    assert batch["points"][0, 1].abs().sum() == 0  # padding organ


def test_long_texts_keep_the_first_ids_and_the_final_sep(atlas, tokenizer):
    long_text = _DOCS[-1][0]
    full = tokenizer(long_text)["input_ids"]
    assert len(full) > 32
    ids = samples(atlas, tokenizer, max_length=32)[11]["input_ids"].tolist()
    assert len(ids) == 32 and ids[:31] == full[:31] and ids[-1] == tokenizer.sep_token_id
    assert encode_texts(tokenizer, [long_text], 512)[0] == full  # shorter than max_length: untouched


def test_points_are_fresh_each_epoch_reproducible_and_inside_their_organ(atlas, tokenizer):
    ds = samples(atlas, tokenizer, points=40)
    n = len(ds)
    first, again, next_epoch = ds[5]["points"], ds[5]["points"], ds[n + 5]["points"]
    assert np.array_equal(first, again)
    assert not np.array_equal(first, next_epoch)
    assert np.array_equal(samples(atlas, tokenizer, points=40)[n + 5]["points"], next_epoch)  # a fresh object
    assert not np.array_equal(samples(atlas, tokenizer, points=40, seed=4)[5]["points"], first)
    for m, organ in enumerate((LIVER, LUNG)):
        mm = atlas.denormalise(first[m])
        assert (np.abs(first[m]) <= 1).all()
        assert (atlas.organ_at(mm) == organ).all()
        assert len(np.unique(first[m], axis=0)) == 40  # without replacement (the organs hold ≥ 40 voxels)
    evaluation = samples(atlas, tokenizer, train=False, points=40)
    assert np.array_equal(evaluation[5]["points"], evaluation[5]["points"])


def test_masking_changes_training_texts_only(atlas, tokenizer):
    mask_id = tokenizer.mask_token_id
    plain = samples(atlas, tokenizer)
    masked = samples(atlas, tokenizer, masking=True)
    evaluation = samples(atlas, tokenizer, masking=True, train=False)
    n = len(plain)
    draws = [masked[epoch * n + 0]["input_ids"] for epoch in range(12)]  # "liver" twice, one keyword type
    hits = [mask_id in d for d in draws]
    assert 2 <= sum(hits) <= 10  # Bernoulli(0.5) per keyword type
    assert all((d == mask_id).sum() in (0, 1) for d in draws)  # "liver", not the capitalised "Liver"
    assert all(mask_id not in plain[epoch * n]["input_ids"] for epoch in range(12))
    assert all(mask_id not in evaluation[i]["input_ids"] for i in range(n))
    # masking draws from its own stream: the points are those of the unmasked dataset
    assert np.array_equal(masked[3 * n + 0]["points"], plain[3 * n + 0]["points"])


def test_records_without_loss_targets_are_skipped_in_training_only(atlas, tokenizer, caplog):
    with caplog.at_level("INFO"):
        train = samples(atlas, tokenizer, targets="occ")
    assert train.skipped == 1 and len(train) == 11 and 6 not in train.ordinals.tolist()
    assert "no occ target organ" in caplog.text
    evaluation = samples(atlas, tokenizer, targets="occ", train=False)
    assert len(evaluation) == 12 and evaluation.skipped == 0
    item = evaluation[6]
    assert item["points"].shape == (0, 5, 3) and item["eval_organs"].tolist() == [KIDNEY]
    batch = collate_atlas([item])
    assert batch["points"].shape == (1, 0, 5, 3) and batch["organs"].shape == (1, 0)


def test_bad_arguments_are_refused(atlas, tokenizer):
    with pytest.raises(ValueError, match="targets"):
        samples(atlas, tokenizer, targets="both")
    with pytest.raises(ValueError, match="points"):
        samples(atlas, tokenizer, points=0)


# -- the data module ----------------------------------------------------------------------------------------------
def datamodule(root: Path, **kwargs) -> AtlasDataModule:
    return AtlasDataModule(root=str(root), points=4, batch_size=4, **kwargs)


def test_datamodule_loaders_and_counts(processed):
    dm = datamodule(processed)
    dm.setup("fit")
    assert dm.heads == {"organ": 6} and dm.train_atlas is dm.atlas
    assert len(dm.train_set) == len(dm.val_set) == 12
    batch = next(iter(dm.train_dataloader()))
    assert batch["input_ids"].shape[0] == 4 and batch["points"].shape[2:] == (4, 3)
    assert dm.train_organ_counts().tolist() == [2, 3, 4, 2, 2, 2]


def test_merge_protocol_selects_and_remaps(processed):
    dm = datamodule(processed, merge={"lung+stomach": ["lung", "stomach"]})
    dm.setup()
    assert dm.train_atlas.organs[-1] == "lung+stomach" and dm.atlas.num_organs == 6
    merged = dm.train_atlas.organ_index("lung+stomach")
    train_docs = [r["text"] for r in dm.train_set.records]
    assert len(train_docs) == 5 and all("ung" in t or "tomach" in t for t in train_docs)
    stomach_and_lung = dm.train_set[train_docs.index("Stomach and lung in reflux disease.")]
    assert stomach_and_lung["organs"].tolist() == [merged]  # remapped and de-duplicated
    assert stomach_and_lung["eval_organs"].tolist() == [STOMACH, LUNG]
    assert stomach_and_lung["multi_hot"].shape == (5,)
    tested = [r["organ_indices"] for r in dm.test_set.records]
    assert tested == [[LUNG], [STOMACH], [LUNG]]  # exactly {A} or {B}: evaluated against the unmerged organs
    assert dm.heads == {"organ": 5}
    unmerged = datamodule(processed, merge={"lung+stomach": ["lung", "stomach"]}, merge_targets=False)
    unmerged.setup("fit")
    assert unmerged.train_atlas is unmerged.atlas and len(unmerged.train_set) == 5
    assert unmerged.train_set[train_docs.index("Stomach and lung in reflux disease.")]["organs"].tolist() == [
        STOMACH, LUNG]


def test_held_out_protocol_drops_strips_and_tests_the_organ(processed):
    dm = datamodule(processed, held_out="lung")
    dm.setup()
    train = {r["text"]: i for i, r in enumerate(dm.train_set.records)}
    assert "Lung base consolidation." not in train and len(train) == 10
    mixed = dm.train_set[train["Metastases from the liver to the lung."]]
    assert mixed["organs"].tolist() == [LIVER] and mixed["eval_organs"].tolist() == [LIVER, LUNG]
    assert all(LUNG not in r["organ_indices"] for r in dm.val_set.records) and len(dm.val_set) == 8
    assert [r["organ_indices"] for r in dm.test_set.records] == [[LUNG], [LUNG]]
    assert dm.train_organ_counts()[LUNG] == 0


def test_data_module_errors_name_what_is_wrong(processed, tmp_path):
    with pytest.raises(DataError, match="unknown organ 'spleen'"):
        datamodule(processed, held_out="spleen").setup("fit")
    with pytest.raises(ValueError, match="separate"):
        datamodule(processed, held_out="lung", merge={"x": ["lung", "stomach"]})
    with pytest.raises(DataError, match="dataset_train.json"):
        (tmp_path / "empty").mkdir()
        (tiny_atlas()).save(tmp_path / "empty" / "atlas.npz")
        datamodule(tmp_path / "empty").setup("fit")
    with pytest.raises(DataError, match="not found"):
        datamodule(tmp_path / "missing").setup("fit")
