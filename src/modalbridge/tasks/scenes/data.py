"""Processed Abstract Scenes JSON → SR-BERT samples and :ref:`scene batches <scene-batch>`.

One sample is one scene: its sentences tokenised once (WordPiece, no special tokens) and joined per draw as
``[CLS] s_1 … s_k [SEP]`` (joining token lists equals tokenising the space-joined text: WordPiece splits at
white space), its clip-art ids and position bins. Training draws (spec §4), seeded by ``(seed, epoch, scene)``
so that a resumed run and any worker process draw the same:

* the sentence order is shuffled;
* with p = 0.5 the scene is mirrored (``x_bin ← 25 − x_bin``, ``o ← 1 − o``, the reference's bin mirror);
* with p = 0.5 the whole scene is shifted along both axes by a random amount that keeps every bin in range;
* **masked position modelling**: each clip-art is selected with p = ``mask_prob`` (0.15); a selected one is
  masked (80 %), given a random position and flip (10 %) or left as is (10 %); labels are its true bins, and
  ``IGNORE`` for unselected clip-arts and padding. The random flip is drawn from {0, 1} (the reference draws
  ``randint(0, 1)``, which is always 0 — fixed here).

Evaluation samples carry the ground-truth bins both as inputs and as labels (the decoders hide what they
predict) and no augmentation. ``no_description`` replaces the text with ``[CLS] [SEP]`` (the thesis's
no-description ablation).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from modalbridge.core.data import SeededDataModule
from modalbridge.core.errors import DataError
from modalbridge.core.worlds import resolve_root
from modalbridge.nn.bert import load_tokenizer
from modalbridge.tasks.scenes import vocab as V

log = logging.getLogger(__name__)

__all__ = ["SceneDataModule", "SceneSamples", "collate_scenes", "load_tokenizer", "split_file"]


def split_file(root: Path, split: str) -> Path:
    """The processed JSON of a split: ``<root>/<split>_dataset.json`` (train/val/test, ``tan/test``) or
    ``<root>/<split>.json`` (derived subsets such as ``test_ood_default``)."""
    for candidate in (root / f"{split}_dataset.json", root / f"{split}.json"):
        if candidate.is_file():
            return candidate
    prepared = root / "processed"
    raw = (root / "Scenes_10020.txt").is_file() or (root / "AbstractScenes_v1.1").is_dir()
    if any((prepared / name).is_file() for name in (f"{split}_dataset.json", f"{split}.json")):
        hint = f"; the processed files are in its processed/ folder: give {prepared}"
    elif raw:
        hint = (f"; this is the raw release: run `modalbridge data prepare scenes {root}` and use its processed/ "
                "folder")
    else:
        hint = "; give the folder written by `modalbridge data prepare scenes <raw root> --out <folder>`"
    raise DataError(f"no processed split {split!r} (looked for {split}_dataset.json and {split}.json){hint}",
                    path=root)


MASKINGS = ("bernoulli", "uniform")


class SceneSamples(Dataset):
    """Scenes of one processed split as tensors (see the module docstring).

    Args:
        scenes: processed scene dicts (``elements``, ``sentences``).
        tokenizer: a Hugging Face BERT tokenizer (only ``cls/sep_token_id`` and ``__call__`` are used).
        train: draw augmentation and masking (else ground truth in, ground truth out).
        masking: ``"bernoulli"`` — each clip-art selected with p = ``mask_prob`` (the paper); ``"uniform"`` (ours,
            mask-predict style) — per scene a share r ~ U(0, 1] is drawn and each clip-art selected with p = r, at
            least one: training then sees every context size the iterative decoders meet, from an all-masked
            scene (one-step decoding) to one hidden clip-art (the last step), and more targets per scene.
        mask_prob: share of clip-arts selected for masked position modelling; ``1.0`` selects every clip-art
            (the one-pass baselines learn every position).
        augment: mirror and shift (training only). no_description: text is ``[CLS] [SEP]``.
        max_text_tokens: sentences are dropped from the end of a draw beyond this many tokens (specials included).
        seed: augmentation seed (draws depend on ``(seed, epoch, index)`` only).
    """

    epoch_indexed = True

    def __init__(self, scenes: list[dict], tokenizer, *, train: bool, mask_prob: float = 0.15, masking: str = "bernoulli",
                 augment: bool = True, no_description: bool = False, max_text_tokens: int = 256, seed: int = 0):
        if masking not in MASKINGS:
            raise ValueError(f"masking must be one of {'|'.join(MASKINGS)}, got {masking!r}")
        self.train, self.mask_prob, self.masking, self.augment = train, mask_prob, masking, augment and train
        self.no_description, self.max_text_tokens, self.seed = no_description, max_text_tokens, seed
        self.cls, self.sep = tokenizer.cls_token_id, tokenizer.sep_token_id
        self.sentences: list[list[list[int]]] = []
        self.cliparts, self.x_px, self.y_px, self.flips = [], [], [], []
        texts = [[s for key in sorted(scene["sentences"]) for s in scene["sentences"][key]] for scene in scenes]
        flat = [s for t in texts for s in t]
        ids = tokenizer(flat, add_special_tokens=False)["input_ids"] if flat else []
        at = 0
        for scene, text in zip(scenes, texts):
            self.sentences.append(ids[at:at + len(text)])
            at += len(text)
            elements = scene["elements"]
            self.cliparts.append(np.array([V.clipart_id(e["visual_name"]) for e in elements], dtype=np.int64))
            self.x_px.append(np.array([e["x"] for e in elements], dtype=np.float64))
            self.y_px.append(np.array([e["y"] for e in elements], dtype=np.float64))
            self.flips.append(np.array([e["flip"] for e in elements], dtype=np.int64))
        self.scenes = scenes

    def __len__(self) -> int:
        return len(self.cliparts)

    def text_ids(self, index: int, rng: np.random.Generator | None) -> list[int]:
        """``[CLS] sentences… [SEP]`` of one scene, in a shuffled order when ``rng`` is given."""
        if self.no_description:
            return [self.cls, self.sep]
        sentences = self.sentences[index]
        order = rng.permutation(len(sentences)) if rng is not None else range(len(sentences))
        out = [self.cls]
        for k in order:
            if len(out) + len(sentences[k]) + 1 > self.max_text_tokens:
                break
            out += sentences[k]
        return out + [self.sep]

    def __getitem__(self, i: int) -> dict[str, Any]:
        epoch, index = divmod(int(i), len(self))
        rng = np.random.default_rng([self.seed, epoch, index]) if self.train else None
        xb, yb = V.x_bin(self.x_px[index]), V.y_bin(self.y_px[index])
        o = self.flips[index].copy()
        if self.augment:
            xb, yb, o = augment_bins(xb, yb, o, rng)
        if self.train:
            share = self.mask_prob if self.masking == "bernoulli" else 1.0 - rng.random()  # U(0, 1]
            x_in, y_in, o_in, x_lab, y_lab, o_lab = mask_positions(xb, yb, o, rng, share,
                                                                   at_least_one=self.masking == "uniform")
        else:
            x_in, y_in, o_in, x_lab, y_lab, o_lab = xb, yb, o, xb, yb, o
        return {"index": index, "input_ids": self.text_ids(index, rng), "cliparts": self.cliparts[index],
                "x": x_in, "y": y_in, "o": o_in, "x_label": x_lab, "y_label": y_lab, "o_label": o_lab,
                "x_px": np.clip(self.x_px[index], 0, V.CANVAS_W), "y_px": np.clip(self.y_px[index], 0, V.CANVAS_H),
                "o_gt": self.flips[index]}


def augment_bins(xb: np.ndarray, yb: np.ndarray, o: np.ndarray, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mirror (p = 0.5: ``x ← 25 − x``, ``o ← 1 − o``) then shift both axes (p = 0.5) by amounts that keep every
    bin in ``[0, 25] × [0, 20]`` (the reference's translation; the thesis describes one direction at a time)."""
    xb, yb, o = xb.copy(), yb.copy(), o.copy()
    if rng.random() < 0.5:
        xb, o = (V.X_BINS - 1) - xb, 1 - o
    if rng.random() < 0.5 and len(xb):
        xb = xb + _shift(rng, int(xb.min()), V.X_BINS - 1 - int(xb.max()))
        yb = yb + _shift(rng, int(yb.min()), V.Y_BINS - 1 - int(yb.max()))
    return xb, yb, o


def _shift(rng: np.random.Generator, room_before: int, room_after: int) -> int:
    """Left/up by U{0..room_before} or right/down by U{0..room_after}, each direction with p = 0.5."""
    if rng.random() < 0.5:
        return -int(rng.integers(0, room_before + 1))
    return int(rng.integers(0, room_after + 1))


def mask_positions(xb: np.ndarray, yb: np.ndarray, o: np.ndarray, rng: np.random.Generator, mask_prob: float,
                   at_least_one: bool = False):
    """Masked position modelling on one scene → ``(x_in, y_in, o_in, x_label, y_label, o_label)``.

    Each clip-art is selected with p = ``mask_prob``; selected: 80 % masked, 10 % random bins (x in [0, 24],
    y in [0, 19] as the reference, flip in {0, 1}), 10 % unchanged. Labels: true bins where selected, else
    ``IGNORE``."""
    n = len(xb)
    selected = rng.random(n) < mask_prob
    if at_least_one and n and not selected.any():
        selected[rng.integers(n)] = True
    action = rng.random(n)
    masked, randomised = selected & (action < 0.8), selected & (action >= 0.8) & (action < 0.9)
    x_in = np.where(masked, V.X_MASK, np.where(randomised, rng.integers(0, V.X_BINS - 1, n), xb))
    y_in = np.where(masked, V.Y_MASK, np.where(randomised, rng.integers(0, V.Y_BINS - 1, n), yb))
    o_in = np.where(masked, V.O_MASK, np.where(randomised, rng.integers(0, 2, n), o))
    ignore = np.full(n, V.IGNORE)
    return (x_in, y_in, o_in, np.where(selected, xb, ignore), np.where(selected, yb, ignore),
            np.where(selected, o, ignore))


_PAD = {"x": V.X_PAD, "y": V.Y_PAD, "o": V.O_PAD, "x_label": V.IGNORE, "y_label": V.IGNORE,
        "o_label": V.IGNORE, "cliparts": 0, "x_px": 0.0, "y_px": 0.0, "o_gt": 0}


def collate_scenes(samples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Pad a list of samples into a scene batch (text to the longest text, clip-arts to the most clip-arts)."""
    b = len(samples)
    t = max(len(s["input_ids"]) for s in samples)
    n = max(len(s["cliparts"]) for s in samples)
    input_ids = torch.zeros(b, t, dtype=torch.long)
    for row, s in enumerate(samples):
        input_ids[row, : len(s["input_ids"])] = torch.as_tensor(s["input_ids"])
    batch: dict[str, torch.Tensor] = {"index": torch.as_tensor([s["index"] for s in samples]),
                                      "input_ids": input_ids, "text_mask": input_ids != 0}
    for key, pad in _PAD.items():
        dtype = torch.float32 if isinstance(pad, float) else torch.long
        out = torch.full((b, n), pad, dtype=dtype)
        for row, s in enumerate(samples):
            out[row, : len(s[key])] = torch.as_tensor(s[key], dtype=dtype)
        batch[key] = out
    return batch


class SceneDataModule(SeededDataModule):
    """Processed Abstract Scenes splits (``modalbridge data prepare scenes`` or ``world://scenes/processed``).

    Args:
        root: the processed folder (``train_dataset.json``, ``val_dataset.json``, ``test_dataset.json`` …).
        tokenizer: BERT folder or alias for :func:`load_tokenizer` (must match the model's ``bert``).
        train_split, eval_split, test_split: split names (:func:`split_file`), e.g. ``test_ood_default``.
        mask_prob, masking, augment, no_description, max_text_tokens: see :class:`SceneSamples`.
        max_scenes: keep only the first scenes of every split (smoke runs).
    """

    collate_fn = staticmethod(collate_scenes)

    def __init__(self, root: str = "world://scenes/processed", tokenizer: str = "minilm-l6",
                 train_split: str = "train", eval_split: str = "val", test_split: str = "test",
                 mask_prob: float = 0.15, masking: str = "bernoulli", augment: bool = True, no_description: bool = False,
                 max_text_tokens: int = 256, max_scenes: int | None = None, batch_size: int = 64,
                 num_workers: int = 0, seed: int = 0):
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed)
        self.save_hyperparameters()
        self.test_set: SceneSamples | None = None
        self._tokenizer = None

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.hparams.tokenizer)
        return self._tokenizer

    def clipart_dir(self) -> Path | None:
        """The clip-art PNGs next to the processed folder (``<raw root>/Pngs``), if any (rendering)."""
        from modalbridge.tasks.scenes.abstract_scenes import clipart_folder

        root = resolve_root(self.hparams.root)
        for candidate in (root, root.parent):
            found = clipart_folder(candidate)
            if found is not None:
                return found
        return None

    def scenes(self, split: str) -> list[dict]:
        from modalbridge.tasks.scenes.abstract_scenes import read_processed

        root = resolve_root(self.hparams.root)
        if not root.is_dir():
            raise DataError("processed scenes folder not found (run `modalbridge data prepare scenes <raw root>` "
                            "or use world://scenes/processed)", path=root)
        scenes = read_processed(split_file(root, split))
        return scenes[: self.hparams.max_scenes] if self.hparams.max_scenes else scenes

    def make_dataset(self, split: str, *, train: bool) -> SceneSamples:
        h = self.hparams
        return SceneSamples(self.scenes(split), self.tokenizer, train=train, mask_prob=h.mask_prob, masking=h.masking,
                            augment=h.augment, no_description=h.no_description,
                            max_text_tokens=h.max_text_tokens, seed=h.seed)

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit", "validate"):
            super().setup(stage)
        if stage in (None, "test", "predict") and self.test_set is None:
            self.test_set = self.make_dataset(self.hparams.test_split, train=False)

    def test_dataloader(self):
        return self.loader(self.test_set, shuffle=False)

    predict_dataloader = test_dataloader
