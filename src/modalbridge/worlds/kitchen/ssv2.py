"""The Something-Something-V2 / Something-Else part of the world (``ssv2/``): planning every clip (template,
objects of set A or B, size, length; :func:`plan_ss`), the hand and object motion of each template
(:func:`ss_layers`), rendering clips in chunks (WebM + annotated and detected boxes; :func:`render_ss_clips`
runs in a worker process) and writing the label, split, few-shot and box JSON files (:func:`write_ss`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from modalbridge.worlds.kitchen.compositor import (
    Layer,
    fit_offset,
    fit_range,
    hsv,
    noise_bank,
    paint_static,
    phase,
    render,
    static_layer,
    texture,
)
from modalbridge.worlds.kitchen.config import SSV2_TEMPLATES, KitchenWorldConfig
from modalbridge.worlds.kitchen.painters import SHAPES
from modalbridge.worlds.kitchen.writers import VideoWriter, write_json

#: camera-turn motion -> the motion whose hand and object boxes it reproduces
_CAMERA_MOTIONS = {"camera_left": "left_to_right", "camera_right": "right_to_left"}
_TWO_OBJECT_MOTIONS = {"into", "out_of", "closer", "away"}

#: Something-Else object sets: (placeholder noun, shape); colours are assigned by hue.
SS_OBJECTS_A = (("pen", "bar"), ("mug", "square"), ("book", "triangle"), ("bottle", "bullseye"),
                ("remote control", "bar"), ("box", "square"), ("phone", "triangle"), ("wallet", "bullseye"))
SS_OBJECTS_B = (("cup", "ring"), ("shoe", "oval"), ("scissors", "cross"), ("lighter", "diamond"),
                ("toy car", "oval"), ("apple", "ring"), ("marker", "cross"), ("key", "diamond"))


# --------------------------------------------------------------------------------------------- planning
def ss_objects(names_shapes: Sequence[tuple[str, str]], hue_offset: float, saturation: float,
               value: float) -> list[dict[str, Any]]:
    """An object set as dicts {name, shape, colour, colour2} (RGB 0..255, rounded): hues evenly spaced from
    ``hue_offset``; odd objects get a pale complementary secondary colour, even ones a darker shade."""
    objects = []
    for i, (name, shape) in enumerate(names_shapes):
        hue = 360.0 * i / len(names_shapes) + hue_offset
        main = hsv(hue, saturation, value)
        second = hsv(hue + 180.0, 0.25, 0.95) if i % 2 else 0.5 * main
        objects.append({"name": name, "shape": shape, "colour": [round(float(c), 1) for c in main],
                        "colour2": [round(float(c), 1) for c in second]})
    return objects


def plan_ss(cfg: KitchenWorldConfig, rng: np.random.Generator) -> dict[str, Any]:
    """Choose template, objects, size and length of every Something-Else clip (no rendering)."""
    templates = sorted(cfg.ss_templates)
    objects = {"A": ss_objects(SS_OBJECTS_A, 0.0, 0.85, 0.95), "B": ss_objects(SS_OBJECTS_B, 22.5, 0.5, 0.6)}
    ids = rng.choice(np.arange(1, 220848), size=cfg.ss_train_clips + cfg.ss_val_clips, replace=False)
    clips = []
    for split, count, offset in (("train", cfg.ss_train_clips, 0), ("validation", cfg.ss_val_clips, cfg.ss_train_clips)):
        pool = objects["A" if split == "train" else "B"]
        flips = set()
        if split == "train" and cfg.ss_label_noise > 0:
            flips = set(rng.choice(count, size=round(cfg.ss_label_noise * count), replace=False).tolist())
        for i in range(count):
            template_index = i % len(templates) if i < count - count % len(templates) else rng.integers(len(templates))
            template = templates[int(template_index)]
            motion = SSV2_TEMPLATES[template]
            if split == "train" and rng.random() < cfg.ss_spurious:
                a = int(template_index) % len(pool)
            else:
                a = int(rng.integers(len(pool)))
            rest = [j for j in range(len(pool)) if j != a]
            b = int(rest[rng.integers(len(rest))]) if motion in _TWO_OBJECT_MOTIONS else None
            d = None
            if motion not in _TWO_OBJECT_MOTIONS and rng.random() < cfg.ss_distractor_prob:
                d = int(rest[rng.integers(len(rest))])
            placeholders = [pool[a]["name"]] + ([pool[b]["name"]] if b is not None else [])
            label_template, label_placeholders = template, placeholders
            if i in flips:
                label_template = templates[int(rng.choice([t for t in range(len(templates)) if t != template_index]))]
                want = label_template.count("[something]")
                extra = [p["name"] for p in pool if p["name"] not in placeholders]
                label_placeholders = (placeholders + extra)[:want]
            clips.append({
                "id": str(int(ids[offset + i])), "split": split, "template": template, "motion": motion,
                "label_template": label_template, "label_placeholders": label_placeholders,
                "true_placeholders": placeholders, "noisy": i in flips,
                "obj0": pool[a], "obj1": pool[b] if b is not None else None,
                "distractor": pool[d] if d is not None else None,
                "width": int(cfg.ss_widths[rng.integers(len(cfg.ss_widths))]),
                "frames": max(8, round(rng.uniform(*cfg.ss_seconds) * cfg.ss_fps)),
                "seed": int(rng.integers(2**63)),
            })
    order = rng.permutation(len(clips))  # shuffle the listing order of each split, as in the real lists
    clips = [clips[i] for i in order]
    return {"clips": clips, "templates": templates, "objects": objects}


# --------------------------------------------------------------------------------------------- rendering
def ss_layers(motion: str, n: int, width: int, height: int, rng: np.random.Generator, obj_a: dict, obj_b: dict | None,
              distractor: dict | None, skin: np.ndarray) -> list[Layer]:
    """Layers (paint order) of one Something-Else clip: [distractor], [obj1], obj0, hand."""
    unit = height / 96.0
    tau = np.linspace(0.0, 1.0, n)
    ra = rng.uniform(9.0, 12.0) * unit
    rb = ra * rng.uniform(1.5, 1.8) if motion in ("into", "out_of") else rng.uniform(9.0, 12.0) * unit
    rh = 6.5 * unit * rng.uniform(0.9, 1.1)
    ex_a, ey_a = SHAPES[obj_a["shape"]][1]
    ex_b, ey_b = SHAPES[obj_b["shape"]][1] if obj_b else (1.0, 1.0)
    side = rng.choice([-1.0, 1.0])
    ax, ay, a_scale = np.zeros(n), np.zeros(n), np.ones(n)
    a_visible = np.ones(n, bool)
    bx = by = 0.0
    carry = phase(tau, 0.2, 0.8)  # the object moves while the hand carries it
    grab, release = 0.2, 0.8
    travel = rng.uniform(0.35, 0.5) * width
    fit_until = n
    camera = motion in _CAMERA_MOTIONS  # the scene pans exactly as the object moves in the paired template
    motion = _CAMERA_MOTIONS.get(motion, motion)
    if motion in ("left_to_right", "right_to_left"):
        sign = 1.0 if motion == "left_to_right" else -1.0
        ax = sign * travel * carry
        ay = -3.0 * unit * np.sin(np.pi * carry)
    elif motion in ("closer", "away"):
        near = side * (ex_a * ra + ex_b * rb + rng.uniform(3.0, 8.0) * unit)
        far = near + side * rng.uniform(0.3, 0.4) * width
        start, stop = (far, near) if motion == "closer" else (near, far)
        ax = start + (stop - start) * carry
        ay = rng.uniform(-0.1, 0.1) * height * (1.0 - carry if motion == "closer" else carry)
    elif motion in ("into", "out_of"):
        outside = np.array([side * rng.uniform(0.3, 0.4) * width, rng.uniform(-0.15, 0.05) * height])
        inside = np.array([0.0, -0.1 * rb])
        if motion == "into":
            move = phase(tau, 0.2, 0.7)
            ax = outside[0] + (inside[0] - outside[0]) * move
            ay = outside[1] + (inside[1] - outside[1]) * move
            a_scale = 1.0 - 0.45 * phase(tau, 0.6, 0.75)
            a_visible = tau < 0.75
            release = 0.72
        else:
            move = phase(tau, 0.3, 0.85)
            ax = inside[0] + (outside[0] - inside[0]) * move
            ay = inside[1] + (outside[1] - inside[1]) * move
            a_scale = 0.55 + 0.45 * phase(tau, 0.3, 0.45)
            a_visible = tau >= 0.25
            grab, release = 0.25, 0.85
    elif motion == "push_off":
        edge = side * rng.uniform(0.25, 0.4) * width
        push = phase(tau, 0.2, 0.6)
        ax = (edge + side * ra * ex_a) * push
        fit_until = max(int(np.searchsorted(tau, 0.6)), 1)
        release = 0.6
    elif motion == "pretend_pick":
        grab, release = 0.3, 0.45
    elif motion in ("turn_over", "pretend_turn"):  # lifted a little and put back, in both templates
        ay = -rng.uniform(0.08, 0.15) * height * np.sin(np.pi * phase(tau, 0.3, 0.7))
        grab, release = 0.25, 0.75
    else:  # pragma: no cover
        raise ValueError(motion)
    # place the scene: objects fit inside the frame (the falling part of push_off is added afterwards)
    lo_x = ax[:fit_until] - ex_a * ra * a_scale[:fit_until]
    hi_x = ax[:fit_until] + ex_a * ra * a_scale[:fit_until]
    lo_y = ay[:fit_until] - ey_a * ra * a_scale[:fit_until]
    hi_y = ay[:fit_until] + ey_a * ra * a_scale[:fit_until]
    if obj_b is not None:
        lo_x, hi_x = np.append(lo_x, bx - ex_b * rb), np.append(hi_x, bx + ex_b * rb)
        lo_y, hi_y = np.append(lo_y, by - ey_b * rb), np.append(hi_y, by + ey_b * rb)
    dx = fit_offset(lo_x, hi_x, width, 2.0, rng)
    dy = fit_range(lo_y, hi_y, 0.25 * height, height - 2.0, rng)  # objects rest below the top quarter
    ax, ay, bx, by = ax + dx, ay + dy, bx + dx, by + dy
    raw = np.zeros(n, bool)
    if motion == "push_off":
        fall = phase(tau, 0.6, 0.95) ** 2
        ax = ax + side * 0.15 * width * phase(tau, 0.6, 1.0)
        ay = ay + (height + 3.0 * ra - ay[0]) * fall
        a_visible = ay - ey_a * ra < height
        raw = tau > 0.6
    # hand: approaches the grip point, follows it while carrying, then leaves upwards
    if motion == "push_off":  # behind the object, pushing it towards the edge
        hx, hy = ax - side * (ex_a * ra + 0.6 * rh), ay.copy()
    else:  # on top of the object, grabbing it
        hx = ax + rng.uniform(-0.3, 0.3) * ex_a * ra
        hy = ay - (ey_a * ra * a_scale + 0.6 * rh)
    if motion == "pretend_pick":
        hy = hy - rng.uniform(0.25, 0.4) * height * phase(tau, 0.45, 0.85)
    i_grab = min(int(np.searchsorted(tau, grab)), n - 1)
    i_rel = min(int(np.searchsorted(tau, release)), n - 1)
    start = np.array([hx[i_grab] + rng.uniform(-0.3, 0.3) * width, rng.uniform(0.05, 0.2) * height])
    leave = np.array([hx[i_rel] + rng.uniform(-0.3, 0.3) * width, rng.uniform(0.05, 0.2) * height])
    come = phase(tau, 0.0, grab)[:, None]
    go = np.zeros((n, 1))
    if motion not in ("pretend_pick", "push_off"):  # these hands stay in view after the action
        go = phase(tau, release, min(release + 0.2, 1.0))[:, None]
    held = np.stack([np.clip(hx, rh, width - rh), np.clip(hy, rh, height - rh)], axis=1)
    held[tau < grab] = held[i_grab]
    if motion != "pretend_pick":  # the pretending hand keeps rising after it let go
        held[tau > release] = held[i_rel]
    hand_xy = start + (held - start) * come
    hand_xy = hand_xy + (leave - hand_xy) * go
    layers = []
    if distractor is not None:
        for _ in range(20):
            x, y = rng.uniform(12, width - 12), rng.uniform(0.3 * height, height - 12)
            if min(np.hypot(ax - x, ay - y).min(), math.hypot(bx - x, by - y) if obj_b else 1e9) > 2.5 * ra:
                layers.append(static_layer(distractor["shape"], rng.uniform(8, 11) * unit, distractor["colour"],
                                           distractor["colour2"], x, y, n, role="distractor"))
                if camera:  # static in the scene, so it moves in the picture
                    layers[-1].cx, layers[-1].cy = x + (ax - ax[0]).astype(np.float32), y + (ay - ay[0]).astype(np.float32)
                break
    if obj_b is not None:
        layers.append(static_layer(obj_b["shape"], rb, obj_b["colour"], obj_b["colour2"], bx, by, n, role="obj1"))
    a_layer = Layer(obj_a["shape"], ra, np.asarray(obj_a["colour"], np.float32),
                    np.asarray(obj_a["colour2"], np.float32), ax.astype(np.float32), ay.astype(np.float32),
                    a_scale.astype(np.float32), a_visible, 1.0, "obj0", raw,
                    flipped=tau >= 0.5 if motion == "turn_over" else None)
    hand_colour = np.clip(skin + rng.normal(0, 5, 3), 0, 255).astype(np.float32)
    hand = Layer("hand", rh, hand_colour, 0.85 * hand_colour, hand_xy[:, 0].astype(np.float32),
                 hand_xy[:, 1].astype(np.float32), np.ones(n, np.float32), np.ones(n, bool), 1.0, "hand")
    return [*layers, a_layer, hand]


def _scene_clutter(background: np.ndarray, count: int, table_top: int, rng: np.random.Generator) -> None:
    """Paint ``count`` static, unannotated, half-transparent blobs on the table of a scene (H, W, 3) in place:
    scene texture that shows when the camera moves."""
    height, width = background.shape[:2]
    for _ in range(count):
        colour = rng.uniform(40, 220, 3)
        layer = static_layer(("slab", "potato", "plate")[rng.integers(3)], rng.uniform(3, 6) * height / 96.0,
                             colour, 0.6 * colour, rng.uniform(8, width - 8), rng.uniform(table_top + 6, height - 6),
                             1, alpha=float(rng.uniform(0.5, 0.8)), role="clutter")
        paint_static(background, layer)


def render_ss_clips(job: dict[str, Any]) -> dict[str, Any]:
    """Render a chunk of Something-Else clips (webm + box records). Runs in a worker process."""
    cfg: KitchenWorldConfig = job["config"]
    out: dict[str, Any] = {"boxes": {}, "detections": {}, "sizes": {}, "frames": {}}
    for clip in job["clips"]:
        rng = np.random.default_rng(clip["seed"])
        width, height, n = clip["width"], cfg.ss_height, clip["frames"]
        camera = clip["motion"] in _CAMERA_MOTIONS
        margin = width // 2 + 8 if camera else 0  # a wider scene for the camera to pan over
        base = rng.uniform(60, 200, 3)
        background = texture(rng, width + 2 * margin, height + 2 * margin, base, 14.0)
        table_top = int(rng.uniform(0.3, 0.45) * height) + margin
        background[table_top:] = 0.6 * background[table_top:] + 0.4 * (rng.uniform(60, 200, 3))
        _scene_clutter(background, cfg.ss_clutter, table_top, np.random.default_rng([clip["seed"], 2]))
        skin = np.array([205.0, 150.0, 120.0]) + rng.normal(0, 10, 3)
        layers = ss_layers(clip["motion"], n, width, height, rng, clip["obj0"], clip.get("obj1"),
                           clip.get("distractor"), skin)
        if camera:  # the scene moves with the held object: crop the wide scene along the object's path
            obj = next(layer for layer in layers if layer.role == "obj0")
            background = np.stack([cv2.warpAffine(background, np.float32([[1, 0, dx - margin], [0, 1, dy - margin]]),
                                                  (width, height), flags=cv2.INTER_LINEAR)
                                   for dx, dy in zip(obj.cx - obj.cx[0], obj.cy - obj.cy[0])])
        frames, _ = render(background, layers, n, noise_bank(rng, width, height, cfg.ss_noise_std, 4), rng)
        writer = VideoWriter(Path(job["root"]) / "videos" / f"{clip['id']}.webm", width, height, cfg.ss_fps)
        writer.write(frames)
        writer.close()
        names = {"obj0": clip["obj0"]["name"], "hand": "hand"}
        if clip.get("obj1"):
            names["obj1"] = clip["obj1"]["name"]
        out["boxes"][clip["id"]] = _ss_box_records(clip["id"], layers, n, width, height, names,
                                                   clip["true_placeholders"], cfg, rng)
        out["detections"][clip["id"]] = _ss_detections(out["boxes"][clip["id"]], width, height,
                                                       np.random.default_rng([clip["seed"], 1]))
        out["sizes"][clip["id"]] = [width, height]
        out["frames"][clip["id"]] = writer.frames
    return out


def _ss_box_records(video_id: str, layers: Sequence[Layer], n: int, width: int, height: int, names: dict[str, str],
                    placeholders: list[str], cfg: KitchenWorldConfig, rng: np.random.Generator) -> list[dict]:
    """Per-frame Something-Else records (list index i ↔ frame ``%04d.jpg % (i+1)``)."""
    tags = {"obj0": ("0000", "object 0"), "obj1": ("0001", "object 1"), "hand": ("hand", "object hand")}
    annotated = [layer for layer in layers if layer.role in tags]
    records = []
    for t in range(n):
        labels = []
        if rng.random() >= cfg.ss_empty_frame_prob:
            for layer in annotated:
                if not layer.visible[t]:
                    continue
                x1, y1, x2, y2 = layer.box(t)
                full = (x2 - x1) * (y2 - y1)
                cx1, cy1, cx2, cy2 = max(x1, 0.0), max(y1, 0.0), min(x2, width - 1.0), min(y2, height - 1.0)
                if cx2 <= cx1 or cy2 <= cy1 or (cx2 - cx1) * (cy2 - cy1) < 0.3 * full:
                    continue  # mostly out of view: annotators skip it
                if layer.raw_boxes is None or not layer.raw_boxes[t]:
                    x1, y1, x2, y2 = cx1, cy1, cx2, cy2
                if rng.random() < cfg.ss_dirty_box_prob:  # annotation slips: swapped corners or off-frame
                    if rng.random() < 0.5:
                        x1, x2 = x2, x1
                    else:
                        x2, y2 = x2 + rng.uniform(1, 4), y2 + rng.uniform(1, 4)
                standard, gt = tags[layer.role]
                labels.append({"box2d": {"x1": round(float(x1), 2), "y1": round(float(y1), 2),
                                         "x2": round(float(x2), 2), "y2": round(float(y2), 2)},
                               "category": names[layer.role], "standard_category": standard, "gt_annotation": gt})
        records.append({"name": f"{video_id}/{t + 1:04d}.jpg", "labels": labels, "gt_placeholders": placeholders,
                        "nr_instances": len(annotated)})
    return records


def _ss_detections(records: list[dict], width: int, height: int, rng: np.random.Generator) -> list[dict]:
    """A detector's view of the clip (the "obj. predictions" setting): the annotated boxes with corner jitter,
    misses (10 % of objects, 5 % of hands), a false positive in 5 % of frames, only the detector's two classes
    ``hand`` / ``object``, and a ``score`` per box (some false positives fall below the 0.5 threshold)."""
    out = []
    for record in records:
        labels = []
        for label in record["labels"]:
            hand = label["standard_category"] == "hand"
            if rng.random() < (0.05 if hand else 0.1):
                continue
            b = label["box2d"]
            x1, x2 = sorted((b["x1"], b["x2"]))
            y1, y2 = sorted((b["y1"], b["y2"]))
            jx, jy = 0.08 * (x2 - x1) + 1.0, 0.08 * (y2 - y1) + 1.0
            x1, x2 = x1 + rng.normal(0, jx), x2 + rng.normal(0, jx)
            y1, y2 = y1 + rng.normal(0, jy), y2 + rng.normal(0, jy)
            box = [float(np.clip(v, 0, lim - 1)) for v, lim in ((x1, width), (y1, height), (x2, width), (y2, height))]
            labels.append(_detection(box, "hand" if hand else "object", rng.uniform(0.6, 0.99)))
        if rng.random() < 0.05:
            r = rng.uniform(6, 12) * height / 96.0
            cx, cy = rng.uniform(r, width - r), rng.uniform(r, height - r)
            labels.append(_detection([cx - r, cy - r, cx + r, cy + r], "object", rng.uniform(0.3, 0.8)))
        out.append({"name": record["name"], "labels": labels})
    return out


def _detection(box: list[float], category: str, score: float) -> dict[str, Any]:
    standard, gt = ("hand", "object hand") if category == "hand" else ("0000", "object 0")
    return {"box2d": dict(zip(("x1", "y1", "x2", "y2"), (round(v, 2) for v in box))), "category": category,
            "standard_category": standard, "gt_annotation": gt, "score": round(float(score), 3)}


# ------------------------------------------------------------------------------------------- annotation files
def _fill_template(template: str, placeholders: Sequence[str]) -> str:
    text = template
    for name in placeholders:
        text = text.replace("[something]", name, 1)
    return text.lower()


def write_ss(root: Path, plan: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    """Write the Something-Else annotation files of ``plan`` into ``root/ssv2`` next to the rendered clips
    (``results``: the merged :func:`render_ss_clips` outputs) and return the clip counts."""
    ss = root / "ssv2"
    templates = plan["templates"]
    labels = {t.replace("[", "").replace("]", ""): str(i) for i, t in enumerate(templates)}
    write_json(ss / "something-something-v2-labels.json", labels, indent=1)
    write_json(ss / "compositional" / "labels.json", {k: int(v) for k, v in labels.items()}, indent=1)
    lists: dict[str, list] = {"train": [], "validation": []}
    truth = {}
    for clip in plan["clips"]:
        lists[clip["split"]].append({"id": clip["id"],
                                     "label": _fill_template(clip["label_template"], clip["label_placeholders"]),
                                     "template": clip["label_template"], "placeholders": clip["label_placeholders"]})
        truth[clip["id"]] = {"split": clip["split"], "template": clip["template"], "label_noisy": clip["noisy"],
                             "objects": [o["name"] for o in (clip["obj0"], clip["obj1"]) if o],
                             "colours": [o["colour"] for o in (clip["obj0"], clip["obj1"]) if o],
                             "distractor": clip["distractor"]["name"] if clip["distractor"] else None}
    for split, name in (("train", "train"), ("validation", "validation")):
        write_json(ss / f"something-something-v2-{name}.json", lists[split], indent=1)
        write_json(ss / "compositional" / f"{name}.json", lists[split], indent=1)
    for key in ("A", "B"):
        write_json(ss / "compositional" / f"objects{key}.json", [o["name"] for o in plan["objects"][key]], indent=1)
    _write_fewshot(ss / "fewshot", templates, lists)
    order = [c["id"] for c in plan["clips"]]
    write_json(ss / "bounding_box_smthsmth_part1.json", {i: results["boxes"][i] for i in order})
    write_json(ss / "detections_smthsmth_part1.json", {i: results["detections"][i] for i in order})
    write_json(ss / "videoid2size.json", {i: results["sizes"][i] for i in order})
    write_json(ss / "world_truth.json", {"objects": plan["objects"], "clips": truth}, indent=1)
    return {"train_clips": len(lists["train"]), "validation_clips": len(lists["validation"])}


def _write_fewshot(folder: Path, templates: Sequence[str], lists: dict[str, list]) -> None:
    """Something-Else few-shot files: templates at even positions of the sorted list are the base classes,
    the others the novel ones (labels indexed within each labels file, as in the real release); the 5-/10-shot
    training lists take the first 5/10 training clips of each novel template; validation = the novel
    templates' validation clips (their objects are unseen, as in the compositional split)."""
    base, novel = list(templates[0::2]), list(templates[1::2])
    key = {t: t.replace("[", "").replace("]", "") for t in templates}
    write_json(folder / "base_labels.json", {key[t]: i for i, t in enumerate(base)}, indent=1)
    write_json(folder / "finetune_labels.json", {key[t]: i for i, t in enumerate(novel)}, indent=1)
    of = {split: {t: [e for e in entries if e["template"] == t] for t in templates} for split, entries in lists.items()}
    write_json(folder / "base_training_set.json", [e for t in base for e in of["train"][t]], indent=1)
    write_json(folder / "base_validation_set.json", [e for t in base for e in of["validation"][t]], indent=1)
    novel_val = [e for t in novel for e in of["validation"][t]]
    for shots, train_name in ((5, "finetune_5shot_training.json"), (10, "finetune_10shot_train.json")):
        write_json(folder / train_name, [e for t in novel for e in of["train"][t][:shots]], indent=1)
        write_json(folder / f"finetune_{shots}shot_validation.json", novel_val, indent=1)
