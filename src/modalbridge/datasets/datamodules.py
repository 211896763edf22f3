"""Lightning data modules for EPIC-KITCHENS-100 and Something-Something V2 / Something-Else clips
(real on-disk formats; datasets in :mod:`modalbridge.datasets.clips`). Shared by every video task (the
actions baseline, distillation, layouts), hence here and not in a task folder.

Batches are dicts ``{"rgb": (B, 3, T, S, S), "index": (B,), "skipped": int, <labels>}`` with labels
``verb``/``noun`` (EK) or ``action`` (SSv2/Something-Else); ``index`` lets metrics look up per-clip
split masks (EK Unseen/Tail) and de-duplicate clips a distributed sampler padded. The layout modules
(:class:`SomethingLayoutDataModule`, :class:`ActionGenomeDataModule`) produce the layout batch contract
of :mod:`modalbridge.tasks.layouts`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from modalbridge.core.data import SeededDataModule
from modalbridge.core.errors import DataError
from modalbridge.core.worlds import resolve_root
from modalbridge.datasets.action_genome import (
    NUM_CHARADES_CLASSES,
    charades_class_names,
    multi_hot,
    prepare_action_genome,
)
from modalbridge.datasets.boxes import (
    BOX_PARTS_GLOB,
    convert_something_else,
    read_box_annotations,
    read_layouts,
    read_video_sizes,
)
from modalbridge.datasets.clips import EpicClips, SomethingClips
from modalbridge.datasets.epic_kitchens import EpicKitchens100
from modalbridge.datasets.layouts import ACTION_GENOME, SSV2, LayoutClips, collate_layouts
from modalbridge.datasets.something import SomethingSomething
from modalbridge.io.memory import enable_media_cache

log = logging.getLogger(__name__)


class VideoDataModule(SeededDataModule):
    """What the video data modules share beyond :class:`~modalbridge.core.data.SeededDataModule`: the
    decoded-media cache (``cache_media_gb``) and held-out training items for ensemble calibration (thesis
    Ch. 7: ``holdout`` items, a seeded choice, kept out of training and served by :meth:`holdout_dataloader`).
    Subclasses implement ``make_dataset(split, train=..., part=...)`` with ``part`` in train|holdout|all."""

    holdout: int = 0

    def __init__(self, *, batch_size: int, num_workers: int, seed: int, holdout: int = 0,
                 cache_media_gb: float = 0.0):
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed)
        self.holdout = holdout
        if cache_media_gb > 0:
            enable_media_cache(cache_media_gb, num_workers)

    def holdout_part(self, items: list, part: str) -> list:
        """``items`` (the training split) minus the ``holdout`` held-out ones (``part="train"``), only those
        (``"holdout"``), or all (``"all"``); the choice is seeded by the data module's seed."""
        if not self.holdout or part == "all":
            return list(items)
        held = set(np.random.default_rng([self.seed, 7]).permutation(len(items))[: self.holdout].tolist())
        return [x for i, x in enumerate(items) if (i in held) == (part == "holdout")]

    def holdout_dataloader(self):
        """Eval-transform loader over the held-out training items (identical on every DDP rank)."""
        if not self.holdout:
            raise ValueError("no held-out clips: set holdout > 0 (data.init_args.holdout)")
        ds = self.make_dataset(self.hparams.train_split, train=False, part="holdout")
        return DataLoader(ds, batch_size=self.batch_size, num_workers=self.num_workers, collate_fn=self.collate_fn)


class EpicKitchensDataModule(VideoDataModule):
    """EPIC-KITCHENS-100 (verb + noun heads).

    Args:
        root: dataset folder (annotation CSVs + ``<participant>/videos/<video_id>.MP4``) or ``world://...``.
        modalities: which inputs each sample carries (``rgb``, ``flow``, ``audio``, ``text``).
        num_frames, stride: clip sampling (paper: 32 frames, stride 2).
        size: crop size (paper 224); scale_range: training short-side scale; flip: horizontal flips (EK: on).
        audio_size: spectrogram image size (paper 224).
        train_split / eval_split: CSV split names.
        on_error: "raise" or "skip" unreadable clips (logged and counted).
        holdout: number of training clips (seeded choice) kept out of training for ensemble
            calibration (thesis Ch. 7: Z = 1000); served by :meth:`holdout_dataloader`.
        cache_media_gb: keep decoded frames, flow and audio in memory up to this many GiB (process-wide,
            :mod:`modalbridge.io.memory`; use with ``num_workers=0``): small datasets trained many epochs.
        packed: folder of packed HDF5 files (``rgb.hdf5``, ``flow.hdf5``, ``audio.hdf5``, any subset; the
            reference's format, written by ``modalbridge data pack``). Modalities with a file there are read
            from it, the others from ``root``; annotations always come from ``root``.
    """

    def __init__(self, root: str = "world://kitchen/ek100", *, modalities: tuple[str, ...] = ("rgb",),
                 num_frames: int = 32, stride: int = 2, size: int = 224,
                 scale_range: tuple[float, float] = (1.15, 1.43), flip: bool = True, color_jitter: bool = True,
                 audio_size: int = 224, train_split: str = "train", eval_split: str = "validation",
                 batch_size: int = 16, num_workers: int = 2, seed: int = 0, on_error: str = "raise",
                 annotations_root: str | None = None, holdout: int = 0, cache_media_gb: float = 0.0,
                 packed: str | None = None):
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed, holdout=holdout,
                         cache_media_gb=cache_media_gb)
        self.save_hyperparameters()
        self.root = resolve_root(root)
        self.dataset = EpicKitchens100(self.root, annotations_root=annotations_root)
        self.heads = {"verb": len(self.dataset.verbs), "noun": len(self.dataset.nouns)}
        self.class_names = {"verb": list(self.dataset.verbs), "noun": list(self.dataset.nouns)}

    def segments(self, split: str, part: str = "all") -> list:
        """Segments of ``split``; for the train split ``part`` selects "train" (minus held-out) or "holdout"."""
        segs = self.dataset.segments(split)
        return self.holdout_part(segs, part) if split == self.hparams.train_split else segs

    def make_dataset(self, split: str, *, train: bool, part: str = "all") -> EpicClips:
        hp = self.hparams
        if split == hp.train_split and part == "all" and train:
            part = "train"
        return EpicClips(self.dataset, self.segments(split, part), modalities=tuple(hp.modalities),
                         num_frames=hp.num_frames, stride=hp.stride, size=hp.size, train=train,
                         scale_range=tuple(hp.scale_range), flip=hp.flip and train,
                         color_jitter=hp.color_jitter, audio_size=hp.audio_size, seed=hp.seed,
                         on_error=hp.on_error, packed=hp.packed)

    def split_masks(self) -> dict[str, torch.Tensor]:
        """EK Unseen/Seen/Tail masks over the eval split; {} (with a warning) when the optional lists
        (unseen participants, tail classes) are not in the dataset folder."""
        try:
            masks = self.dataset.split_masks(self.dataset.segments(self.hparams.eval_split))
        except (DataError, FileNotFoundError) as exc:
            log.warning("no Unseen/Tail split metrics: %s", exc)
            return {}
        return {k: torch.as_tensor(np.asarray(v, dtype=bool)) for k, v in masks.items() if k != "regular"}


class _SomethingLists:
    """The SSv2 / Something-Else label and split lists behind a data module (one ``action`` head)."""

    def _read_something(self, root: str, variant: str, flow_root: str | None = None) -> None:
        self.root = resolve_root(root)
        self.dataset = SomethingSomething(self.root, variant=variant, flow_root=flow_root)
        self.heads = {"action": self.dataset.num_classes}
        self.class_names = {"action": list(self.dataset.classes)}


class SomethingDataModule(_SomethingLists, VideoDataModule):
    """Something-Something V2 or Something-Else (single ``action`` head; never flipped).

    Args:
        root: dataset folder (split lists + ``videos/``) or ``world://...``.
        variant: "ssv2" or "something-else/compositional" (see :class:`~modalbridge.datasets.something.SomethingSomething`).
        modalities: ``rgb``, ``flow`` (stride-1 u/v JPEGs written by ``modalbridge data flow``), ``text``.
        flow_root: folder of ``<video_id>/{u,v}/`` flow (default ``root/flow``).
        holdout: training videos (seeded choice) kept out of training for ensemble calibration (thesis
            Ch. 7: Z = 1000); served by :meth:`holdout_dataloader`.
        cache_media_gb: decoded-media cache budget (see :class:`EpicKitchensDataModule`).
        packed: folder of packed HDF5 files (``rgb.hdf5``, ``flow.hdf5``; written by ``modalbridge data
            pack``): modalities with a file there are read from it, the others from ``root``/``flow_root``.
    """

    def __init__(self, root: str = "world://kitchen/ssv2", *, variant: str = "ssv2",
                 modalities: tuple[str, ...] = ("rgb",), num_segments: int = 16, size: int = 224,
                 scale_range: tuple[float, float] = (1.15, 1.43), color_jitter: bool = True,
                 train_split: str = "train", eval_split: str = "validation", batch_size: int = 16,
                 num_workers: int = 2, seed: int = 0, on_error: str = "raise", flow_root: str | None = None,
                 holdout: int = 0, cache_media_gb: float = 0.0, packed: str | None = None):
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed, holdout=holdout,
                         cache_media_gb=cache_media_gb)
        self.save_hyperparameters()
        self._read_something(root, variant, flow_root)

    def make_dataset(self, split: str, *, train: bool, part: str = "all") -> SomethingClips:
        hp = self.hparams
        videos = self.dataset.videos(split)
        if split == hp.train_split:
            videos = self.holdout_part(videos, "train" if train and part == "all" else part)
        return SomethingClips(self.dataset, videos, modalities=tuple(hp.modalities),
                              num_segments=hp.num_segments, size=hp.size, train=train,
                              scale_range=tuple(hp.scale_range), color_jitter=hp.color_jitter, seed=hp.seed,
                              on_error=hp.on_error, packed=hp.packed)


# --------------------------------------------------------------------------------------------- layouts
DETECTION_PARTS_GLOB = "detections_smthsmth_part*.json"


class SomethingLayoutDataModule(_SomethingLists, VideoDataModule):
    """Something-Else / SSv2 layouts (STLT and fusions; ``spec/layout_fusion.md`` §2, §4), single
    ``action`` head. Batches follow the contract of :mod:`modalbridge.tasks.layouts`
    (:func:`~modalbridge.datasets.layouts.collate_layouts`).

    Args:
        root: dataset folder (split lists, ``videos/``, box files, ``videoid2size.json``) or ``world://...``.
        variant: split files, see :class:`~modalbridge.datasets.something.SomethingSomething`.
        boxes: ``"oracle"`` (``bounding_box_smthsmth_part*.json``), ``"detections"``
            (``detections_smthsmth_part*.json``), or a path to a box-part JSON, a folder of parts (annotation
            parts if any, else detection parts), or a unified layout JSON. Videos without boxes are
            dropped (reference behaviour; count logged, ids in ``self.dropped[split]``).
        modalities: ``("layout",)`` (never opens a video), plus ``"rgb"`` (appearance clip), ``"flow"`` (the
            appearance clip's optical flow, from ``flow_root``) and/or ``"frames"`` (RGB at the layout frames).
        flow_root: folder of ``<video_id>/{u,v}/`` stride-1 flow (default ``root/flow``; ``modalbridge data flow``).
        layout_frames: sampled layout frames (16); appearance_frames/appearance_stride: 32 / 2; size: 112.
        score_threshold: objects kept at ``score >= threshold``.
        detection_scores: keep the ``score`` of box-part labels; ``None`` = only for ``boxes="detections"``
            (so the threshold drops weak detections). ``False`` is the reference (every SSv2 score 1.0);
            unified layout JSONs always keep their scores.
        max_objects: slots per frame minus one; ``None`` scans each split.
        holdout: training videos (seeded choice) kept out of training for ensemble calibration when a layout
            or fusion model is a distillation teacher; served by :meth:`holdout_dataloader`.
    """

    collate_fn = staticmethod(collate_layouts)

    def __init__(self, root: str = "world://kitchen/ssv2", *, variant: str = "something-else/compositional",
                 boxes: str = "oracle", modalities: tuple[str, ...] = ("layout",), layout_frames: int = 16,
                 appearance_frames: int = 32, appearance_stride: int = 2, size: int = 112,
                 score_threshold: float = 0.5, detection_scores: bool | None = None, max_objects: int | None = None,
                 train_split: str = "train", eval_split: str = "validation", batch_size: int = 64,
                 num_workers: int = 2, seed: int = 0, on_error: str = "raise", holdout: int = 0,
                 flow_root: str | None = None):
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed, holdout=holdout)
        self.save_hyperparameters()
        self._read_something(root, variant, flow_root)
        self._boxes: dict[str, list] | None = None
        self._sizes: dict[str, tuple[int, int]] = {}
        self.dropped: dict[str, list[str]] = {}

    def box_source(self) -> list[Path]:
        """The box files ``boxes`` names (DataError when there are none)."""
        choice = self.hparams.boxes
        if choice in ("oracle", "detections"):
            pattern = BOX_PARTS_GLOB if choice == "oracle" else DETECTION_PARTS_GLOB
            parts = sorted([*self.root.glob(pattern), *(self.root / "boxes").glob(pattern)])
            if not parts:
                raise DataError(f"no {choice} box files ({pattern}) in {self.root} or {self.root / 'boxes'}",
                                path=self.root)
            return parts
        path = Path(choice).expanduser()
        if path.is_dir():  # annotation parts, else detection parts (never both mixed)
            parts = sorted(path.glob(BOX_PARTS_GLOB)) or sorted(path.glob(DETECTION_PARTS_GLOB))
            if not parts:
                raise DataError(f"no box files ({BOX_PARTS_GLOB} or {DETECTION_PARTS_GLOB}) in this folder",
                                path=path)
            return parts
        if not path.is_file():
            raise DataError("box file not found (boxes must be 'oracle', 'detections' or a path)", path=path)
        return [path]

    def _load_boxes(self) -> dict[str, list]:
        """``video_id → frames`` of both splits, and the frame sizes."""
        if self._boxes is not None:
            return self._boxes
        hp = self.hparams
        ids = {v.id for split in (hp.train_split, hp.eval_split) for v in self.dataset.videos(split)}
        boxes: dict[str, list] = {}
        parts = []
        for path in self.box_source():
            with path.open("rb") as handle:
                head = handle.read(64).lstrip()
            if head.startswith(b"["):  # unified layout JSON
                for layout in read_layouts(path):
                    if layout.id in ids and layout.id not in boxes:
                        boxes[layout.id] = layout.frames
                        if layout.size is not None:
                            self._sizes[layout.id] = layout.size
            else:
                parts.append(path)
        if parts:
            keep = hp.detection_scores if hp.detection_scores is not None else hp.boxes == "detections"
            found = read_box_annotations(parts, ids=ids, keep_scores=keep)
            boxes.update({k: v for k, v in found.items() if k not in boxes})
        sizes_file = self.root / "videoid2size.json"
        if sizes_file.is_file():
            self._sizes = {**read_video_sizes(sizes_file), **self._sizes}
        self._boxes = boxes
        return boxes

    def layouts(self, split: str) -> list:
        """The split's :class:`~modalbridge.datasets.boxes.VideoLayout` s (videos without boxes dropped)."""
        boxes = self._load_boxes()
        videos = self.dataset.videos(split)
        dropped: list[str] = []
        layouts = convert_something_else(videos, boxes, self._sizes, dropped=dropped)
        unsized = [layout.id for layout in layouts if layout.size is None]
        if unsized:
            raise DataError(f"no frame size for {len(unsized)} video(s) (e.g. {unsized[0]}); add them to "
                            "videoid2size.json", path=self.root / "videoid2size.json")
        if dropped:
            log.warning("%s/%s: dropped %d of %d videos without boxes", self.hparams.variant, split, len(dropped),
                        len(videos))
        self.dropped[split] = dropped
        return layouts

    def make_dataset(self, split: str, *, train: bool, part: str = "all") -> LayoutClips:
        hp = self.hparams
        classes = {v.id: v.class_id for v in self.dataset.videos(split)}
        items = [(layout, classes[layout.id]) for layout in self.layouts(split)]
        if split == hp.train_split:
            items = self.holdout_part(items, "train" if train and part == "all" else part)
        return LayoutClips(items, train=train, scheme=SSV2, modalities=tuple(hp.modalities),
                           num_frames=hp.layout_frames, score_threshold=hp.score_threshold,
                           max_objects=hp.max_objects, appearance_frames=hp.appearance_frames,
                           appearance_stride=hp.appearance_stride, size=hp.size, video_path=self.dataset.video_path,
                           flow_dir=self.dataset.flow_dir, seed=hp.seed, on_error=hp.on_error)


class ActionGenomeDataModule(SeededDataModule):
    """Action Genome layouts (multi-label ``action`` head over the 157 Charades classes, layout only).

    ``root`` holds the unified layout JSONs ``train_dataset.json`` / ``val_dataset.json`` and
    ``videoid2size.json`` (written by :func:`~modalbridge.datasets.action_genome.prepare_action_genome`); when
    they are missing but the raw release is there (the two pickles + Charades CSVs), they are converted
    into ``root`` — which needs ``allow_pickle=True``. Class names come from ``Charades_v1_classes.txt``
    when present (else the codes). Labels are multi-hot float vectors; scores feed the model
    (:data:`~modalbridge.datasets.layouts.ACTION_GENOME` ``use_scores``).
    """

    collate_fn = staticmethod(collate_layouts)

    def __init__(self, root: str, *, layout_frames: int = 16, score_threshold: float = 0.5,
                 max_objects: int | None = None, train_file: str = "train_dataset.json",
                 val_file: str = "val_dataset.json", allow_pickle: bool = False, batch_size: int = 64,
                 num_workers: int = 2, seed: int = 0, on_error: str = "raise"):
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed)
        self.save_hyperparameters()
        self.root = resolve_root(root)
        self.heads = {"action": NUM_CHARADES_CLASSES}
        classes = [p for p in (self.root / "Charades_v1_classes.txt", self.root / "Charades" / "Charades_v1_classes.txt")
                   if p.is_file()]
        self.class_names = {"action": charades_class_names(classes[0] if classes else None)}

    def _ensure_prepared(self) -> None:
        hp = self.hparams
        needed = [self.root / hp.train_file, self.root / hp.val_file, self.root / "videoid2size.json"]
        if all(p.is_file() for p in needed):
            return
        if not hp.allow_pickle:
            missing = ", ".join(p.name for p in needed if not p.is_file())
            raise DataError(f"missing {missing}; convert the Action Genome pickles first (prepare_action_genome, "
                            "or allow_pickle=True to convert them here — pickles can run code, so only for "
                            "trusted files)", path=self.root)
        prepare_action_genome(self.root, allow_pickle=True)

    def make_dataset(self, split: str, *, train: bool) -> LayoutClips:
        hp = self.hparams
        self._ensure_prepared()
        sizes = read_video_sizes(self.root / "videoid2size.json")
        path = self.root / (hp.train_file if split == "train" else hp.val_file)
        items = []
        for layout in read_layouts(path):
            if not layout.frames:
                continue
            if layout.size is None:
                if layout.id not in sizes:
                    raise DataError(f"no frame size for video {layout.id}", path=self.root / "videoid2size.json")
                layout.size = sizes[layout.id]
            try:
                label = multi_hot(layout.actions or [])
            except DataError as exc:
                raise DataError(exc.message, path=path, field=f"{layout.id}.actions") from None
            items.append((layout, label))
        return LayoutClips(items, train=train, scheme=ACTION_GENOME, modalities=("layout",),
                           num_frames=hp.layout_frames, score_threshold=hp.score_threshold,
                           max_objects=hp.max_objects, seed=hp.seed, on_error=hp.on_error)

    def split_names(self) -> tuple[str, str]:
        return "train", "val"
