"""A small Action Genome world: the release's two pickles and the Charades CSV pair written in the real
formats by :func:`modalbridge.datasets.action_genome.write_action_genome_fixture`, converted once to the unified
layout JSON the :class:`~modalbridge.datasets.datamodules.ActionGenomeDataModule` reads.

Its boxes and Charades actions are drawn independently, so it exercises the multi-label path (BCE, mAP over
the classes that have positives, videos without actions) but carries no learnable signal: expect chance-level
mAP. The pickles are ours, so converting them with ``allow_pickle=True`` is safe here.
"""

from __future__ import annotations

from pathlib import Path

from modalbridge.core.paths import worlds_dir
from modalbridge.core.worlds import build_world
from modalbridge.datasets.action_genome import prepare_action_genome, write_action_genome_fixture

VERSION = 2  # v2: test videos with actions (v1 had none, so its mAP was undefined)
VIDEOS = 80
FRAMES = 10


def action_genome_world(seed: int = 0) -> Path:
    """The cached world (``world://action-genome``): raw release + ``train_dataset.json``/``val_dataset.json``."""

    def write(folder: Path) -> None:
        write_action_genome_fixture(folder, seed=seed, videos=VIDEOS, frames=FRAMES)
        prepare_action_genome(folder, allow_pickle=True)

    return build_world(worlds_dir() / f"action-genome-v{VERSION}-s{seed}",
                       {"seed": seed, "videos": VIDEOS, "frames": FRAMES}, write)
