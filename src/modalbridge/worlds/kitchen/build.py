"""Building worlds: :func:`make_kitchen_world` (plan both parts from one seed, render videos and clips in
worker processes, write the annotation files and WORLD.md), the cached :func:`kitchen_world` and its
variants for distillation (:func:`distill_kitchen_world`) and layout fusion
(:func:`layouts_kitchen_world`)."""

from __future__ import annotations

import json
import logging
import math
import multiprocessing
import os
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from modalbridge.core.paths import worlds_dir
from modalbridge.core.progress import progress
from modalbridge.worlds.kitchen.config import CAMERA_TEMPLATES, WORLD_VERSION, KitchenWorldConfig, config_hash
from modalbridge.worlds.kitchen.epic import plan_ek, render_ek_video, write_ek
from modalbridge.worlds.kitchen.narrations import load_vocabulary
from modalbridge.worlds.kitchen.ssv2 import plan_ss, render_ss_clips, write_ss
from modalbridge.worlds.kitchen.world_md import write_world_md

_RANDOM_STREAM = 1  # part of the master seed; kept at 1 so v1 and v2 worlds hold identical clips
log = logging.getLogger(__name__)


def _run_jobs(ek_jobs: list[dict[str, Any]], ss_jobs: list[dict[str, Any]], workers: int
              ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Render every EPIC video and every chunk of Something-Else clips, in ``workers`` processes (in this one
    when ``workers`` ≤ 1); results in job order. Progress (videos, then clip chunks) goes to stderr."""
    ek_desc, ss_desc = "kitchen world: EPIC videos", "kitchen world: Something-Else clip chunks"
    if workers <= 1:
        return ([render_ek_video(j) for j in progress(ek_jobs, ek_desc, unit="video")],
                [render_ss_clips(j) for j in progress(ss_jobs, ss_desc, unit="chunk")])
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        ek_futures = [pool.submit(render_ek_video, j) for j in ek_jobs]
        ss_futures = [pool.submit(render_ss_clips, j) for j in ss_jobs]
        return ([f.result() for f in progress(ek_futures, ek_desc, unit="video")],
                [f.result() for f in progress(ss_futures, ss_desc, unit="chunk")])


def make_kitchen_world(root: str | os.PathLike, *, seed: int = 0, config: KitchenWorldConfig | None = None,
                       workers: int | None = None) -> Path:
    """Write the kitchen world into ``root`` (created; existing files are overwritten) and return it.

    ``workers`` = processes used for rendering (default: up to 2, bounded by the CPU count); it does not
    change the output — every video is rendered from its own seed drawn from ``seed``.
    """
    cfg = config or KitchenWorldConfig()
    root = Path(root)
    tic = time.perf_counter()
    if workers is None:
        workers = min(2, os.cpu_count() or 1)
    if multiprocessing.current_process().daemon:  # e.g. inside a DataLoader worker: no child processes
        workers = 1
    (root / "ek100").mkdir(parents=True, exist_ok=True)
    (root / "ssv2" / "videos").mkdir(parents=True, exist_ok=True)
    master = np.random.default_rng(np.random.SeedSequence([int(seed), _RANDOM_STREAM]))
    vocab = load_vocabulary(cfg.verbs, cfg.nouns)
    ek_plan = plan_ek(cfg, master, vocab)
    ss_plan = plan_ss(cfg, master)

    ek_jobs = [{"config": cfg, "root": str(root / "ek100"), "video_id": v["video_id"], "participant": v["participant"],
                "fps": v["fps"], "frames": v["frames"], "seed": v["seed"],
                "segments": [{k: s[k] for k in ("start", "frames", "verb", "noun", "palette", "occluded")}
                             for s in v["segments"]]} for v in ek_plan["videos"]]
    chunk = max(1, math.ceil(len(ss_plan["clips"]) / max(4 * workers, 1)))
    ss_jobs = [{"config": cfg, "root": str(root / "ssv2"), "clips": ss_plan["clips"][i:i + chunk]}
               for i in range(0, len(ss_plan["clips"]), chunk)]
    ek_results, ss_chunks = _run_jobs(ek_jobs, ss_jobs, workers)
    ss_results: dict[str, dict] = {"boxes": {}, "detections": {}, "sizes": {}, "frames": {}}
    for part in ss_chunks:
        for key in ss_results:
            ss_results[key].update(part[key])
    for video, result in zip(ek_plan["videos"], ek_results):
        if result["frames"] != video["frames"]:  # pragma: no cover - internal consistency
            raise RuntimeError(f"{video['video_id']}: rendered {result['frames']} frames, planned {video['frames']}")
    ek_summary = write_ek(root, cfg, ek_plan, vocab, {r["video_id"]: r for r in ek_results})
    ss_summary = write_ss(root, ss_plan, ss_results)
    write_world_md(root, cfg, seed, vocab, ek_plan, ss_plan, ek_summary, ss_summary)
    log.info("kitchen world written to %s in %.1f s (%d workers)", root, time.perf_counter() - tic, workers)
    return root


def kitchen_world(config: KitchenWorldConfig | None = None, *, seed: int = 0,
                  cache_dir: str | os.PathLike | None = None, workers: int | None = None) -> Path:
    """The cached kitchen world for (config, seed): ``<cache_dir or worlds_dir()>/kitchen-v<WORLD_VERSION>-<hash>``.

    Generated on first use into a temporary sibling folder that is renamed into place once complete (a
    ``.complete`` marker is written last), so concurrent callers never see a half-written world; later calls
    return at once.
    """
    cfg = config or KitchenWorldConfig()
    base = Path(cache_dir) if cache_dir is not None else worlds_dir()
    root = base / f"kitchen-v{WORLD_VERSION}-{config_hash(cfg, seed)}"
    if (root / ".complete").is_file():
        return root
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=base))
    try:
        tic = time.perf_counter()
        make_kitchen_world(tmp, seed=seed, config=cfg, workers=workers)
        marker = {"seed": seed, "config": asdict(cfg), "seconds": round(time.perf_counter() - tic, 2)}
        (tmp / ".complete").write_text(json.dumps(marker, sort_keys=True))
        try:
            os.rename(tmp, root)
        except OSError:
            if (root / ".complete").is_file():  # another process finished first
                shutil.rmtree(tmp, ignore_errors=True)
                return root
            shutil.rmtree(root, ignore_errors=True)  # stale, incomplete folder
            os.rename(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root


#: The distillation variant (thesis Ch. 7 / card §9.1 recipe a): 30 % of training annotations replaced by
#: another verb's narration, and a verb-only audio track, so a teacher that hears the verb can correct the
#: RGB student's noisy verb labels without handing it noun information that RGB cannot see.
DISTILL_CONFIG = KitchenWorldConfig(label_noise=0.3, audio_noun_level=0.0)


def distill_kitchen_world() -> Path:
    """The cached distillation variant of the kitchen world (``world://kitchen-distill``)."""
    return kitchen_world(DISTILL_CONFIG)


#: The layout-fusion variant (thesis Ch. 6): 640 train / 240 validation Something-Else clips (the
#: compositional split: object set A in train, disjoint set B in validation) of ten templates, two of which
#: (camera turns) only pixels tell apart from two others, with clutter on the tables, and a small EPIC part.
LAYOUTS_CONFIG = KitchenWorldConfig(train_segments=60, val_segments=30, ss_train_clips=600, ss_val_clips=240,
                                    ss_templates=CAMERA_TEMPLATES, ss_clutter=4)


def layouts_kitchen_world() -> Path:
    """The cached layout-fusion variant of the kitchen world (``world://kitchen-layouts``)."""
    return kitchen_world(LAYOUTS_CONFIG)
