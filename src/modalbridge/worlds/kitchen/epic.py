"""The EPIC-KITCHENS-100 part of the world (``ek100/``): planning every segment of every video (real
narration, timing, palette, occlusion), rendering one video per job (MP4 + AAC, analytic flow JPEGs,
hand-object boxes; :func:`render_ek_video` runs in a worker process) and writing the annotation CSVs."""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from modalbridge.worlds.kitchen.audio import noun_pitches, noun_tone, verb_sound
from modalbridge.worlds.kitchen.compositor import (
    Layer,
    fit_offset,
    hsv,
    noise_bank,
    paint_static,
    phase,
    render,
    static_layer,
    texture,
)
from modalbridge.worlds.kitchen.config import EK_COLUMNS, EK_NOUNS, KitchenWorldConfig
from modalbridge.worlds.kitchen.narrations import Narration, NarrationSampler, Vocabulary, asset_text
from modalbridge.worlds.kitchen.painters import SHAPES
from modalbridge.worlds.kitchen.writers import VideoWriter, quantise_flow, write_csv


# --------------------------------------------------------------------------------------------- planning
def plan_ek(cfg: KitchenWorldConfig, rng: np.random.Generator, vocab: Vocabulary) -> dict[str, Any]:
    """Choose labels, timings and appearance of every EPIC segment (no rendering)."""
    sampler = NarrationSampler(vocab, cfg.class_temperature)
    videos = []
    for split, ids, count in (("train", cfg.train_videos, cfg.train_segments),
                              ("validation", cfg.val_videos, cfg.val_segments)):
        per_video = [count // len(ids) + (i < count % len(ids)) for i in range(len(ids))]
        noisy = set()
        if split == "train" and cfg.label_noise > 0:
            noisy = set(rng.choice(count, size=round(cfg.label_noise * count), replace=False).tolist())
        k = 0
        for video_id, m in zip(ids, per_video):
            participant = video_id.split("_")[0]
            fps = cfg.fps_of(video_id)
            novel = split == "validation" and (cfg.ek_novel_colours == "validation" or (
                cfg.ek_novel_colours == "unseen" and participant in cfg.unseen_participants))
            segments, cursor = [], 0
            for j in range(m):
                gap = max(1, round(rng.uniform(*cfg.gap_seconds) * fps))
                frames = max(4, round(rng.uniform(*cfg.segment_seconds) * fps))
                truth = sampler.draw(rng)
                label = truth
                if k in noisy:
                    others = [v for v in sampler.verbs if v != truth.verb_class]
                    label = sampler.draw(rng, verb=others[rng.integers(len(others))])
                start = cursor + gap
                segments.append({
                    "narration_id": f"{video_id}_{j}", "start": start, "frames": frames,
                    "verb": vocab.verb_keys[truth.verb_class], "noun": vocab.noun_keys[truth.noun_class],
                    "truth": truth, "label": label, "noisy": k in noisy, "palette": "novel" if novel else "seen",
                    "occluded": bool(rng.random() < cfg.occlusion_prob),
                    "narration_offset": rng.uniform(0.0, 0.5),
                })
                cursor, k = start + frames, k + 1
            total = cursor + max(1, round(rng.uniform(*cfg.gap_seconds) * fps))
            videos.append({"split": split, "video_id": video_id, "participant": participant, "fps": fps,
                           "frames": total, "segments": segments, "seed": int(rng.integers(2**63))})
    return {"videos": videos}


# --------------------------------------------------------------------------------------------- rendering
def _noun_palettes(nouns: Sequence[str]) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """noun → (main, secondary) colour in the ``seen`` palette and in the disjoint ``novel`` palette."""
    seen, novel = {}, {}
    m = len(nouns)
    for i, noun in enumerate(nouns):
        hue = 360.0 * i / m + 10.0
        seen[noun] = (hsv(hue, 0.8, 0.92), hsv(hue, 0.8, 0.45))
        # novel: shifted by half a step in hue, desaturated, and assigned to another noun
        hue_b = 360.0 * ((i + m // 2) % m) / m + 10.0 + 180.0 / m
        novel[noun] = (hsv(hue_b, 0.45, 0.62), hsv(hue_b, 0.3, 0.95))
    return {"seen": seen, "novel": novel}


def _ek_layers(verb: str, noun: str, n: int, fps: float, width: int, height: int, rng: np.random.Generator,
               colours: tuple[np.ndarray, np.ndarray], skin: np.ndarray, contrast: float, occluded: bool
               ) -> tuple[list[Layer], dict[str, Any]]:
    """Object + hand (+ occluder) layers of one EPIC segment of ``n`` frames and its audio cues.

    Returns the layers in paint order and ``cues`` = {"freq": shake/chop Hz or None, "hits": seconds of
    chop contacts, "land": fraction of the segment when the motion ends}.
    """
    unit = height / 96.0
    shape, base = EK_NOUNS[noun]
    r = base * unit * rng.uniform(0.9, 1.15)
    rh = 6.5 * unit * rng.uniform(0.9, 1.1)
    t = np.arange(n, dtype=np.float64) / fps
    tau = np.arange(n, dtype=np.float64) / max(n - 1, 1)
    ramp = phase(tau, 0.05, 0.9)
    ox, oy, scale = np.zeros(n), np.zeros(n), np.ones(n)
    angle = rng.uniform(0.0, 2.0 * np.pi)
    direction = np.array([np.cos(angle), np.sin(angle)])
    grip = 0.85 * r
    cues: dict[str, Any] = {"freq": None, "hits": [], "land": 0.9}
    drift = rng.uniform(-0.05, 0.05) * width
    if verb in ("take", "put"):
        lift = rng.uniform(0.22, 0.34) * height * (-1.0 if verb == "take" else 1.0)
        oy, ox = lift * ramp, drift * ramp
    elif verb == "wash":
        f, a = rng.uniform(2.5, 3.5), rng.uniform(4.0, 7.0) * unit
        ox = a * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
        oy = 0.3 * a * np.sin(4 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
        cues["freq"] = f
    elif verb in ("open", "close"):
        g = rng.uniform(1.45, 1.8)
        scale = 1.0 + (g - 1.0) * (ramp if verb == "open" else 1.0 - ramp)
        ox = 0.3 * drift * ramp
    elif verb == "cut":
        f, a = rng.uniform(2.0, 3.0), rng.uniform(0.5, 0.8) * r
        chop = a * np.abs(np.sin(np.pi * f * t))
        cues["freq"] = f
        cues["hits"] = [k / f for k in range(1, int(t[-1] * f) + 1)]
        grip = 0.9 * r + 0.6 * rh
    else:  # pragma: no cover - guarded by the config check
        raise ValueError(verb)
    if verb == "cut":
        hx = ox + direction[0] * (grip + chop)
        hy = oy + direction[1] * (grip + chop)
    else:
        hx, hy = ox + direction[0] * grip * scale, oy + direction[1] * grip * scale
    ex, ey = SHAPES[shape][1]
    hex_, hey = SHAPES["hand"][1]
    lo_x = np.minimum(ox - ex * r * scale, hx - hex_ * rh)
    hi_x = np.maximum(ox + ex * r * scale, hx + hex_ * rh)
    lo_y = np.minimum(oy - ey * r * scale, hy - hey * rh)
    hi_y = np.maximum(oy + ey * r * scale, hy + hey * rh)
    dx, dy = fit_offset(lo_x, hi_x, width, 1.0, rng), fit_offset(lo_y, hi_y, height, 1.0, rng)
    jitter = rng.normal(0.0, 6.0, 3)
    main = np.clip(colours[0] + jitter, 0, 255).astype(np.float32)
    second = np.clip(colours[1] + jitter, 0, 255).astype(np.float32)
    visible = np.ones(n, bool)
    obj = Layer(shape, r, main, second, (ox + dx).astype(np.float32), (oy + dy).astype(np.float32),
                scale.astype(np.float32), visible, contrast, "object")
    hand_colour = np.clip(skin + rng.normal(0.0, 5.0, 3), 0, 255).astype(np.float32)
    hand = Layer("hand", rh, hand_colour, 0.85 * hand_colour, (hx + dx).astype(np.float32),
                 (hy + dy).astype(np.float32), np.ones(n, np.float32), visible.copy(), 1.0, "hand")
    layers = [obj, hand]
    if occluded:
        k = int(rng.uniform(0.3, 0.7) * (n - 1))
        grey = rng.uniform(70, 150) + rng.normal(0, 10, 3)
        slab = static_layer("slab", r * rng.uniform(0.6, 0.9), grey, 0.8 * grey, obj.cx[k] + rng.normal(0, 2),
                            obj.cy[k] + rng.normal(0, 2), n, role="occluder")
        layers = [obj, slab, hand]
    return layers, cues


def render_ek_video(job: dict[str, Any]) -> dict[str, Any]:
    """Render one EPIC video: MP4 (+AAC), flow JPEGs and hand-object boxes. Runs in a worker process."""
    cfg: KitchenWorldConfig = job["config"]
    rng = np.random.default_rng(job["seed"])
    width, height, fps, total = cfg.width, cfg.height, job["fps"], job["frames"]
    root = Path(job["root"])
    participant, video_id = job["participant"], job["video_id"]
    # kitchen: textured counter, faint tiles and static clutter
    base = rng.uniform(95, 165) + rng.normal(0, 18, 3)
    background = texture(rng, width, height, base, 12.0)
    tile = rng.integers(14, 22)
    background[::tile, :, :] -= 10.0
    background[:, ::tile, :] -= 10.0
    for _ in range(cfg.clutter):
        shape = ("square", "oval", "bar", "slab")[rng.integers(4)]
        grey = base + rng.normal(0, 22, 3)
        layer = static_layer(shape, rng.uniform(6, 16) * height / 96.0, grey, grey * 0.85,
                             rng.uniform(0, width), rng.uniform(0, height), 1, alpha=0.45, role="clutter")
        paint_static(background, layer)
    noise = noise_bank(rng, width, height, cfg.noise_std)
    skin = np.array([205.0, 150.0, 120.0]) + rng.normal(0, 8, 3)
    # audio: background noise + per-segment verb sound and noun tone
    sr = cfg.audio_rate
    audio = rng.normal(0.0, cfg.audio_noise_level, round(total / fps * sr)).astype(np.float32)
    palettes = _noun_palettes(cfg.nouns)
    pitches = noun_pitches(cfg.nouns)

    video_path = root / participant / "videos" / f"{video_id}.MP4"
    flow_dir = root / participant / "flow_frames" / video_id
    for component in ("u", "v"):
        (flow_dir / component).mkdir(parents=True, exist_ok=True)
    video_path.parent.mkdir(parents=True, exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, int(cfg.flow_jpeg_quality)]
    zero_jpeg = cv2.imencode(".jpg", np.full((height, width), 128, np.uint8), params)[1].tobytes()

    # plan the timeline and the audio first (audio must be complete before it is interleaved)
    pieces = []
    cursor = 0
    for seg in job["segments"]:
        if seg["start"] > cursor:
            pieces.append(("gap", cursor, seg["start"] - cursor, None))
        layers, cues = _ek_layers(seg["verb"], seg["noun"], seg["frames"], fps, width, height, rng,
                                  palettes[seg["palette"]][seg["noun"]], skin, cfg.object_contrast, seg["occluded"])
        seg["colour"] = [round(float(c), 1) for c in layers[0].colour]
        pieces.append(("segment", seg["start"], seg["frames"], layers))
        a, m = round(seg["start"] / fps * sr), round(seg["frames"] / fps * sr)
        m = min(m, len(audio) - a)
        audio[a:a + m] += verb_sound(seg["verb"], m, sr, rng, cues)
        audio[a:a + m] += noun_tone(pitches[seg["noun"]], m, sr, cfg.audio_noun_level)
        cursor = seg["start"] + seg["frames"]
    if total > cursor:
        pieces.append(("gap", cursor, total - cursor, None))
    np.clip(audio, -1.0, 1.0, out=audio)

    writer = VideoWriter(video_path, width, height, fps, audio=audio, audio_rate=sr)
    boxes: dict[str, list[dict[str, Any]]] = {}
    for kind, start, n, layers in pieces:
        starts = [t for t in range(n) if (start + t) % 2 == 0]
        frames, flows = render(background, layers or [], n, noise, rng, starts if layers else ())
        writer.write(frames)
        for t in starts:
            index = (start + t) // 2 + 1
            names = [flow_dir / c / f"frame_{index:010d}.jpg" for c in ("u", "v")]
            if t in flows and np.any(flows[t]):
                q = quantise_flow(flows[t], cfg.flow_bound)
                for c, name in enumerate(names):
                    name.write_bytes(cv2.imencode(".jpg", np.ascontiguousarray(q[..., c]), params)[1].tobytes())
            else:
                for name in names:
                    name.write_bytes(zero_jpeg)
        if kind == "segment":
            for t in range(n):
                entries = []
                for layer in layers:
                    if layer.role not in ("object", "hand"):
                        continue
                    x1, y1, x2, y2 = layer.box(t)
                    x1, x2 = max(x1, 0.0), min(x2, width - 1.0)
                    y1, y2 = max(y1, 0.0), min(y2, height - 1.0)
                    if x2 - x1 < 1 or y2 - y1 < 1:
                        continue
                    entry = {"box": [round(x1, 2), round(y1, 2), round(x2, 2), round(y2, 2)],
                             "category": layer.role, "score": 1.0}
                    if layer.role == "hand":
                        entry.update(side="right", state=3)
                    entries.append(entry)
                boxes[str(start + t + 1)] = entries
    writer.close()
    box_path = root / participant / "hand-objects" / f"{video_id}.json"
    box_path.parent.mkdir(parents=True, exist_ok=True)
    box_path.write_text(json.dumps(boxes, separators=(",", ":")))
    return {"video_id": video_id, "frames": writer.frames, "colours": [s["colour"] for s in job["segments"]]}


# ------------------------------------------------------------------------------------------- annotation files
def _timestamp(seconds: float, decimals: int) -> str:
    """Seconds → ``HH:MM:SS.ss`` (EPIC format; 3 decimals for narration_timestamp)."""
    scale = 10**decimals
    whole, fraction = divmod(round(seconds * scale), scale)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{fraction:0{decimals}d}"


def _duration_text(frames: int, fps: float) -> str:
    """Duration with 6 decimals such that ``ceil(duration · fps) == frames`` (what readers compute)."""
    value = math.floor(frames / fps * 1e6) / 1e6
    while math.ceil(value * fps) > frames:
        value -= 1e-6
    while math.ceil(value * fps) < frames:
        value += 1e-6
    return f"{value:.6f}"


def _tail(counts: Counter, num_classes: int, fraction: float) -> list[int]:
    """Rarest classes holding at most ``fraction`` of the instances (at least one class)."""
    order = sorted(range(num_classes), key=lambda c: (counts[c], c))
    total, acc, tail = sum(counts.values()), 0, []
    for c in order:
        acc += counts[c]
        if tail and acc > fraction * total:
            break
        tail.append(c)
    return sorted(tail)


def write_ek(root: Path, cfg: KitchenWorldConfig, plan: dict[str, Any], vocab: Vocabulary,
             results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Write the EPIC annotation files of ``plan`` into ``root/ek100`` next to the rendered videos
    (``results``: video id → :func:`render_ek_video` result) and return the counts that WORLD.md reports."""
    ek = root / "ek100"
    rows = {"train": [], "validation": []}
    truth_rows = []
    for video in plan["videos"]:
        fps = video["fps"]
        colours = results[video["video_id"]]["colours"]
        for seg, colour in zip(video["segments"], colours):
            first, last = seg["start"] + 1, seg["start"] + seg["frames"]
            start_s, stop_s = (first - 1) / fps, last / fps
            label: Narration = seg["label"]
            truth: Narration = seg["truth"]
            rows[video["split"]].append([
                seg["narration_id"], video["participant"], video["video_id"],
                _timestamp(start_s + seg["narration_offset"] * (stop_s - start_s), 3),
                _timestamp(start_s, 2), _timestamp(stop_s, 2), first, last, label.narration, label.verb,
                label.verb_class, label.noun, label.noun_class, repr([label.noun]), repr([label.noun_class])])
            truth_rows.append([seg["narration_id"], video["split"], truth.verb_class, truth.noun_class,
                               int(seg["noisy"]), seg["palette"], *colour, int(seg["occluded"])])
    write_csv(ek / "EPIC_100_train.csv", EK_COLUMNS, rows["train"])
    write_csv(ek / "EPIC_100_validation.csv", EK_COLUMNS, rows["validation"])
    write_csv(ek / "world_truth.csv", ["narration_id", "split", "verb_class", "noun_class", "label_noisy",
                                       "palette", "colour_r", "colour_g", "colour_b", "occluded"], truth_rows)
    for kind, keys, cats in (("verb", vocab.verb_keys, vocab.verb_categories),
                             ("noun", vocab.noun_keys, vocab.noun_categories)):
        instances: dict[int, Counter] = defaultdict(Counter)
        for r in vocab.rows:
            instances[getattr(r, f"{kind}_class")][getattr(r, kind)] += r.count
        table = [[i, key, repr([w for w, _ in instances[i].most_common()]), cats[i]] for i, key in enumerate(keys)]
        write_csv(ek / f"EPIC_100_{kind}_classes.csv", ["id", "key", "instances", "category"], table)
    verb_counts = Counter(r[10] for r in rows["train"])
    noun_counts = Counter(r[12] for r in rows["train"])
    tail_verbs = _tail(verb_counts, len(vocab.verb_keys), cfg.tail_fraction)
    tail_nouns = _tail(noun_counts, len(vocab.noun_keys), cfg.tail_fraction)
    write_csv(ek / "EPIC_100_tail_verbs.csv", ["verb"], [[v] for v in tail_verbs])
    write_csv(ek / "EPIC_100_tail_nouns.csv", ["noun"], [[n] for n in tail_nouns])
    write_csv(ek / "EPIC_100_unseen_participant_ids_validation.csv", ["participant_id"],
              [[p] for p in cfg.unseen_participants])
    write_csv(ek / "EPIC_100_video_info.csv", ["video_id", "duration", "fps", "resolution"],
              [[v["video_id"], _duration_text(v["frames"], v["fps"]), repr(float(v["fps"])),
                f"{cfg.width}x{cfg.height}"] for v in sorted(plan["videos"], key=lambda v: v["video_id"])])
    for name in ("license.txt", "SOURCE.txt"):
        (ek / name).write_text(asset_text(name), encoding="utf-8")
    return {"train_segments": len(rows["train"]), "validation_segments": len(rows["validation"]),
            "tail_verbs": tail_verbs, "tail_nouns": tail_nouns, "verb_counts": dict(sorted(verb_counts.items())),
            "noun_counts": dict(sorted(noun_counts.items()))}
