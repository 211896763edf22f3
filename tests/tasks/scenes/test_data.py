"""Processed JSON → SR-BERT samples and scene batches (spec §4, §9): masked position modelling frequencies over
1e5 draws, the mirror and shift augmentations, seeded draws per (seed, epoch, scene), evaluation samples,
the no-description text, collation padding and finding the processed split files."""

import numpy as np
import pytest
import torch

from modalbridge.core.errors import DataError
from modalbridge.core.worlds import resolve_root
from modalbridge.tasks.scenes import vocab as V
from modalbridge.tasks.scenes.abstract_scenes import read_processed
from modalbridge.tasks.scenes.data import (
    SceneDataModule,
    SceneSamples,
    augment_bins,
    collate_scenes,
    load_tokenizer,
    mask_positions,
    split_file,
)

DRAWS = 100_000


@pytest.fixture(scope="module")
def processed():
    return resolve_root("world://scenes/processed")


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer("minilm-l6")


@pytest.fixture(scope="module")
def scenes(processed):
    return read_processed(processed / "val_dataset.json")[:8]


def plain(sample: dict) -> dict:
    """A sample with its arrays as lists (comparable with ==)."""
    return {k: np.asarray(v).tolist() for k, v in sample.items()}


# -- masked position modelling -----------------------------------------------------------------------------------
def test_masking_frequencies_over_1e5_draws():
    """Clip-arts at (25, 20, 1): values the random replacement (x 0–24, y 0–19) never draws, so the three
    actions are told apart from the inputs alone."""
    xb, yb, o = np.full(DRAWS, 25), np.full(DRAWS, 20), np.ones(DRAWS, dtype=np.int64)
    x_in, y_in, o_in, x_lab, y_lab, o_lab = mask_positions(xb, yb, o, np.random.default_rng(0), 0.15)
    selected = x_lab != V.IGNORE
    assert (selected == (y_lab != V.IGNORE)).all() and (selected == (o_lab != V.IGNORE)).all()
    assert abs(selected.mean() - 0.15) < 0.005
    assert (x_lab[selected] == 25).all() and (y_lab[selected] == 20).all() and (o_lab[selected] == 1).all()

    masked = x_in == V.X_MASK
    assert ((y_in == V.Y_MASK) == masked).all() and ((o_in == V.O_MASK) == masked).all()
    randomised = ~masked & (x_in != 25)
    kept = selected & ~masked & ~randomised
    assert not (masked & ~selected).any() and not (randomised & ~selected).any()
    # unselected clip-arts keep their inputs and carry no label
    assert (x_in[~selected] == 25).all() and (y_in[~selected] == 20).all() and (o_in[~selected] == 1).all()
    n = selected.sum()
    assert abs(masked.sum() / n - 0.8) < 0.02
    assert abs(randomised.sum() / n - 0.1) < 0.015 and abs(kept.sum() / n - 0.1) < 0.015
    # random replacements: x in [0, 24], y in [0, 19] (never the original 20), flips from {0, 1}
    assert x_in[randomised].min() == 0 and x_in[randomised].max() == 24
    assert y_in[randomised].min() == 0 and y_in[randomised].max() == 19
    assert set(o_in[randomised].tolist()) == {0, 1}  # the reference's randint(0, 1) only ever gives 0
    assert 0.4 < o_in[randomised].mean() < 0.6


def test_mask_prob_one_selects_every_clipart_and_zero_none(scenes, tokenizer):
    for prob, labelled in ((1.0, True), (0.0, False)):
        data = SceneSamples(scenes, tokenizer, train=True, mask_prob=prob, seed=0)
        for i in range(len(data)):
            sample = data[i]
            assert ((sample["x_label"] != V.IGNORE) == labelled).all(), prob


# -- augmentation ------------------------------------------------------------------------------------------------
class ScriptedRng:
    """Stands in for a numpy Generator: ``random()`` returns the scripted values in turn, ``integers(lo, hi)``
    the largest value (``hi - 1``)."""

    def __init__(self, *randoms: float):
        self.randoms = list(randoms)

    def random(self) -> float:
        return self.randoms.pop(0)

    def integers(self, low: int, high: int) -> int:
        return high - 1


MIRROR, NO_MIRROR, SHIFT, NO_SHIFT, BEFORE, AFTER = 0.1, 0.9, 0.1, 0.9, 0.1, 0.9


def random_scene(rng: np.random.Generator, n: int):
    return rng.integers(0, V.X_BINS, n), rng.integers(0, V.Y_BINS, n), rng.integers(0, 2, n)


def test_mirror_is_an_involution():
    xb, yb, o = random_scene(np.random.default_rng(0), 7)
    mx, my, mo = augment_bins(xb, yb, o, ScriptedRng(MIRROR, NO_SHIFT))
    assert mx.tolist() == (25 - xb).tolist() and my.tolist() == yb.tolist() and mo.tolist() == (1 - o).tolist()
    back = augment_bins(mx, my, mo, ScriptedRng(MIRROR, NO_SHIFT))
    assert [b.tolist() for b in back] == [xb.tolist(), yb.tolist(), o.tolist()]
    nothing = augment_bins(xb, yb, o, ScriptedRng(NO_MIRROR, NO_SHIFT))
    assert [b.tolist() for b in nothing] == [xb.tolist(), yb.tolist(), o.tolist()]


def test_largest_shifts_move_the_scene_to_the_border():
    xb, yb, o = np.array([3, 10, 20]), np.array([5, 9, 12]), np.array([0, 1, 0])
    left_up = augment_bins(xb, yb, o, ScriptedRng(NO_MIRROR, SHIFT, BEFORE, BEFORE))
    assert left_up[0].tolist() == [0, 7, 17] and left_up[1].tolist() == [0, 4, 7]
    right_down = augment_bins(xb, yb, o, ScriptedRng(NO_MIRROR, SHIFT, AFTER, AFTER))
    assert right_down[0].tolist() == [8, 15, 25] and right_down[1].tolist() == [13, 17, 20]


def test_augmentation_keeps_bins_in_range_and_pairwise_offsets():
    for seed in range(300):
        rng = np.random.default_rng(seed)
        xb, yb, o = random_scene(rng, int(rng.integers(1, 10)))
        ax, ay, ao = augment_bins(xb, yb, o, rng)
        assert ax.min() >= 0 and ax.max() <= V.X_BINS - 1 and ay.min() >= 0 and ay.max() <= V.Y_BINS - 1
        mirrored = (ao == 1 - o).all()  # flips tell a mirrored draw apart (o ∈ {0, 1}: ao is o or 1 − o)
        dx, adx = xb[:, None] - xb[None], ax[:, None] - ax[None]
        assert (adx == (-dx if mirrored else dx)).all(), seed
        assert ((ay[:, None] - ay[None]) == (yb[:, None] - yb[None])).all(), seed


# -- samples -----------------------------------------------------------------------------------------------------
def test_draws_depend_on_seed_epoch_and_index_only(scenes, tokenizer):
    a = SceneSamples(scenes, tokenizer, train=True, seed=3)
    b = SceneSamples(scenes, tokenizer, train=True, seed=3)
    n = len(a)
    for i in range(n):
        assert plain(a[i]) == plain(b[i]) == plain(a[i])
        assert plain(a[2 * n + i]) == plain(b[2 * n + i])
    epoch1 = sum(plain(a[i]) != plain(a[n + i]) for i in range(n))
    other_seed = sum(plain(a[i]) != plain(SceneSamples(scenes, tokenizer, train=True, seed=4)[i]) for i in range(n))
    assert epoch1 >= n - 1 and other_seed >= n - 1
    assert a[n + 5]["index"] == 5  # the sample id is the scene, whatever the epoch


def test_evaluation_samples_carry_ground_truth_in_and_out(scenes, tokenizer):
    data = SceneSamples(scenes, tokenizer, train=False)
    for i, scene in enumerate(scenes):
        s = data[i]
        x = np.array([e["x"] for e in scene["elements"]])
        y = np.array([e["y"] for e in scene["elements"]])
        flips = [e["flip"] for e in scene["elements"]]
        assert s["x"].tolist() == s["x_label"].tolist() == V.x_bin(x).tolist()
        assert s["y"].tolist() == s["y_label"].tolist() == V.y_bin(y).tolist()
        assert s["o"].tolist() == s["o_label"].tolist() == s["o_gt"].tolist() == flips
        assert s["x_px"].tolist() == np.clip(x, 0, 500).tolist() and s["y_px"].tolist() == np.clip(y, 0, 400).tolist()
        assert s["cliparts"].tolist() == [V.clipart_id(e["visual_name"]) for e in scene["elements"]]
        text = " ".join(t for key in sorted(scene["sentences"]) for t in scene["sentences"][key])
        assert s["input_ids"] == tokenizer(text)["input_ids"]  # [CLS] sentences in file order [SEP]
        assert plain(s) == plain(data[i])


def test_training_draws_shuffle_the_sentences(scenes, tokenizer):
    data = SceneSamples(scenes, tokenizer, train=True, seed=0)
    truth = SceneSamples(scenes, tokenizer, train=False)[0]["input_ids"]
    draws = [data[k * len(data)]["input_ids"] for k in range(6)]
    assert all(sorted(d) == sorted(truth) and d[0] == tokenizer.cls_token_id for d in draws)
    assert any(d != truth for d in draws)


def test_no_description_is_cls_sep_only(scenes, tokenizer):
    for train in (True, False):
        data = SceneSamples(scenes, tokenizer, train=train, no_description=True)
        assert data[1]["input_ids"] == [tokenizer.cls_token_id, tokenizer.sep_token_id]


def test_long_texts_are_cut_at_sentence_boundaries(scenes, tokenizer):
    data = SceneSamples(scenes, tokenizer, train=False, max_text_tokens=12)
    ids = data[0]["input_ids"]
    assert len(ids) <= 12 and ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
    assert ids[1:-1] == [t for s in data.sentences[0] for t in s][:len(ids) - 2]


# -- collation ---------------------------------------------------------------------------------------------------
def test_collate_pads_every_field(tokenizer):
    scenes = [{"sentences": {"0_file1": ["mike is left of the tree."], "1_file1": ["the sun is in the sky."]},
               "elements": [{"visual_name": n, "x": x, "y": 100, "z": 0, "flip": 1}
                            for n, x in (("s_3s.png", 40), ("p_8s.png", 600), ("hb0_0s.png", -10))]},
              {"sentences": {"0_file1": ["a dog."]}, "elements": [{"visual_name": "a_2s.png", "x": 260, "y": 390,
                                                                  "z": 0, "flip": 0}]}]
    batch = collate_scenes([SceneSamples(scenes, tokenizer, train=False)[i] for i in range(2)])
    t_long, t_short = (len(tokenizer(" ".join(v for vs in s["sentences"].values() for v in vs))["input_ids"])
                       for s in scenes)
    assert batch["input_ids"].shape == (2, t_long) and batch["cliparts"].shape == (2, 3)
    assert (batch["input_ids"][1, t_short:] == 0).all() and (batch["input_ids"][1, :t_short] != 0).all()
    assert batch["text_mask"].tolist() == (batch["input_ids"] != 0).tolist()
    assert batch["index"].tolist() == [0, 1]
    pads = {"cliparts": 0, "x": V.X_PAD, "y": V.Y_PAD, "o": V.O_PAD, "x_label": V.IGNORE, "y_label": V.IGNORE,
            "o_label": V.IGNORE, "x_px": 0.0, "y_px": 0.0, "o_gt": 0}
    for key, pad in pads.items():
        assert (batch[key][1, 1:] == pad).all(), key
        assert batch[key].dtype == (torch.float32 if key.endswith("_px") else torch.long), key
    assert batch["cliparts"][0].tolist() == [V.clipart_id("s_3s.png"), V.clipart_id("p_8s.png"),
                                             V.clipart_id("hb0_0s.png")]
    assert batch["x"][0].tolist() == [2, 25, 0] and batch["x_px"][0].tolist() == [40.0, 500.0, 0.0]
    assert batch["x"][1, 0] == 13 and batch["y"][1, 0] == 19 and batch["o"][1, 0] == 0


# -- files -------------------------------------------------------------------------------------------------------
def test_split_file_finds_split_and_subset_files(processed):
    assert split_file(processed, "train") == processed / "train_dataset.json"
    assert split_file(processed, "test_ood_default") == processed / "test_ood_default.json"
    assert split_file(processed, "tan/test") == processed / "tan" / "test_dataset.json"
    with pytest.raises(DataError, match="no processed split 'nope'"):
        split_file(processed, "nope")


def test_split_file_on_a_raw_folder_says_to_prepare_it(tmp_path):
    with pytest.raises(DataError, match="raw release: run `modalbridge data prepare scenes"):
        split_file(resolve_root("world://scenes") / "AbstractScenes_v1.1", "train")
    (tmp_path / "AbstractScenes_v1.1").mkdir()  # the release's parent, not prepared yet
    with pytest.raises(DataError, match="raw release: run `modalbridge data prepare scenes"):
        split_file(tmp_path, "train")


def test_split_file_above_a_processed_folder_points_at_it():
    root = resolve_root("world://scenes")
    with pytest.raises(DataError, match=f"give {root / 'processed'}"):
        split_file(root, "test_ood_default")


def test_split_file_elsewhere_names_the_prepare_command(tmp_path):
    with pytest.raises(DataError, match="modalbridge data prepare scenes") as err:
        split_file(tmp_path, "train")
    assert "raw release" not in str(err.value)


def test_data_module_without_a_processed_folder(tmp_path):
    with pytest.raises(DataError, match="processed scenes folder not found"):
        SceneDataModule(root=str(tmp_path / "missing")).scenes("train")


def test_data_module_builds_batches_of_the_contract(processed):
    dm = SceneDataModule(root=str(processed), max_scenes=6, batch_size=4)
    dm.setup("fit")
    assert len(dm.train_set) == len(dm.val_set) == 6
    batch = next(iter(dm.val_dataloader()))
    assert set(batch) == {"index", "input_ids", "text_mask", "cliparts", "x", "y", "o", "x_label", "y_label",
                          "o_label", "x_px", "y_px", "o_gt"}
    assert batch["index"].tolist() == [0, 1, 2, 3]
    assert dm.clipart_dir() is not None and (dm.clipart_dir() / "background.png").is_file()
