"""The embedded kitchen world: a small, seeded dataset written in the REAL EPIC-KITCHENS-100 and
Something-Something-V2 / Something-Else on-disk formats.

It is the shared embedded dataset of three systems — the RGB action-recognition baseline, multimodal→RGB
knowledge distillation (teachers on RGB, optical flow, audio, object boxes and narration text) and
layout/video fusion — so it is built to make their claims measurable:

* **Noun visible in RGB.** Each EPIC noun has its own shape (plate = disc with a rim, knife = blade with a
  handle, cupboard = tall panel with a knob, …) and, in the *seen* colour palette, its own two-tone colour.
  Validation videos of the unseen participant (P18) use a *novel* palette (same shapes, other colours), so
  an RGB model that latched onto colour fails there while one that uses shape survives.
* **Verb visible in motion, not in a single frame.** Each verb is a motion pattern of the object and a
  skin-coloured "hand" blob: take = object lifted (moves up), put = object moves down, wash = fast horizontal
  shake, open = object grows (door swings towards the camera), close = object shrinks, cut = object still
  while the hand chops back and forth along a random axis. Start positions and hand placement are random,
  the object is semi-transparent (``object_contrast``) over textured, cluttered backgrounds with per-frame
  noise, and a fraction of segments have a static occluder in front of the object.
* **Verb audible.** The AAC track carries a verb sound inside each segment: take = rising chirp, put = thud
  when the object lands, wash = band-passed water noise modulated at the shake rate, open = creak (buzzy
  rising tone), close = bang at the end, cut = one click per chop (in sync with the hand). A faint tone whose
  pitch encodes the noun and low background noise are mixed in.
* **Narration text is real.** Every EPIC segment carries a real (narration, verb, noun) triple from the
  EPIC-KITCHENS-100 validation annotations (see "Selection" below); class ids are re-numbered to be
  contiguous within the world (0..V-1 / 0..N-1, ordered by the real EPIC id) and keep the real keys.
* **Optical flow ground truth.** EPIC flow JPEGs are the analytic motion of the rendered layers (no flow
  estimator): flow frame ``k`` (1-based) is the displacement from RGB frame ``2k-1`` to ``2k+1`` of the
  top-most layer at each pixel of frame ``2k-1`` (zero where that layer is gone at ``2k+1``, on the
  background, in gaps, and for the last flow frame when ``2k+1`` is past the end), quantised as in
  :mod:`modalbridge.io.flow`: ``q = round((d / 20 + 1) · 127.5)`` clipped to 0..255 (128 = no motion).
  A video of ``T`` frames has ``ceil(T / 2)`` flow frames.
* **Something-Else part.** 8 real SSv2 templates defined only by how the hand and the objects move relative to
  each other (left→right, right→left, putting into, taking out of, pushing so it falls off the table,
  moving closer to, moving away from, pretending to pick up) and, on request (``ss_templates``), 4 more whose
  boxes equal those of another template, so only pixels decide them — the kind of class where appearance adds
  to layouts: the camera turning left / right while the hand holds the object (the whole scene pans; boxes as
  in moving it left→right / right→left; the layouts world has these two), and turning something upside down
  vs pretending to (the object's underside — mirrored shape, swapped colours — shows from mid-clip on).
  Object identity (placeholder noun, shape and colour) comes from set A in train and the disjoint set B in validation (``objectsA.json`` /
  ``objectsB.json``); in train each template prefers one object of set A (``ss_spurious``), which tempts an
  appearance model while a box-layout model generalises. Boxes follow the Something-Else JSON format with a
  few dirty boxes (``x1 > x2``, slightly out of frame) and empty frames to exercise the cleaning rules.

Layout written under ``root`` (see :func:`make_kitchen_world`)::

    WORLD.md                                     design, seed, config, counts
    ek100/EPIC_100_{train,validation}.csv        all 15 columns in the real order
    ek100/EPIC_100_{verb,noun}_classes.csv       id,key,instances,category (ids 0..V-1 / 0..N-1)
    ek100/EPIC_100_unseen_participant_ids_validation.csv, EPIC_100_tail_{verbs,nouns}.csv
    ek100/EPIC_100_video_info.csv                video_id,duration,fps,resolution
    ek100/PXX/videos/PXX_1YY.MP4                 H.264 + AAC mono (audio_rate Hz)
    ek100/PXX/flow_frames/PXX_1YY/{u,v}/frame_%010d.jpg
    ek100/PXX/hand-objects/PXX_1YY.json          {"<frame>": [{"box", "category", "score", ...}]}
    ek100/world_truth.csv                        true labels, colours, occlusion (not an EPIC file)
    ek100/license.txt, ek100/SOURCE.txt          CC BY-NC 4.0 of the real narrations
    ssv2/videos/<id>.webm                        VP9, ss_fps
    ssv2/something-something-v2-{labels,train,validation}.json
    ssv2/compositional/{labels,train,validation}.json, ssv2/compositional/objects{A,B}.json
    ssv2/fewshot/{base,finetune}_labels.json, base_{training,validation}_set.json,
                 finetune_{5shot,10shot}_{training|train,validation}.json   few-shot split (even / odd sorted templates)
    ssv2/bounding_box_smthsmth_part1.json, ssv2/videoid2size.json       annotated ("oracle") boxes, frame sizes
    ssv2/detections_smthsmth_part1.json          a detector's boxes in the same format (+ "score"): jittered,
                                                 missed and false-positive boxes, classes hand/object only
    ssv2/world_truth.json                        true templates, object identities (not an SSv2 file)

Video ids use the EPIC-KITCHENS-100 extension pattern ``PXX_1YY`` so that readers take ``start_frame`` /
``stop_frame`` at the native fps of ``EPIC_100_video_info.csv`` (EK-55 ids ``PXX_YY`` are counted at 60 fps).
Frames are 1-based and inclusive; frame ``n`` is shown at ``(n-1)/fps`` seconds, so a segment covers
``[(start_frame-1)/fps, stop_frame/fps)``: ``start_timestamp = (start_frame-1)/fps`` and ``stop_timestamp =
stop_frame/fps``, both rounded to 0.01 s, hence ``start_frame == round(start_s·fps) + 1`` and ``stop_frame ==
round(stop_s·fps)`` exactly for fps ≤ 50.

Selection of the real annotations shipped in ``modalbridge/assets/epic_kitchens_100`` (done once by hand
from ``EPIC_100_validation.csv``; no script is shipped): the 6 verb classes take, put, wash, open, close, cut
(the 5 most frequent validation verbs plus cut, which is visually distinct) and the 8 noun classes spoon,
plate, cupboard, knife, lid, drawer, onion, potato (frequent nouns chosen so that every verb has at least two
nouns and lid co-occurs with five verbs, which weakens the noun→verb shortcut); rows with exactly one noun
whose (verb, noun) pair occurs at least 3 times; duplicates collapsed with a ``count``; at most the 8 most
frequent narrations per pair. A world segment draws its verb with weight ``count(verb)^class_temperature``,
its noun with ``count(verb, noun)^class_temperature`` and its narration with ``count``.
"""

from __future__ import annotations

import colorsys
import csv
import hashlib
import json
import logging
import math
import multiprocessing
import os
import shutil
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from fractions import Fraction
from importlib import resources
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from modalbridge.core.paths import worlds_dir

__all__ = ["CAMERA_TEMPLATES", "EK_COLUMNS", "MOTION_TEMPLATES", "SSV2_TEMPLATES", "WORLD_VERSION",
           "KitchenWorldConfig", "config_hash", "kitchen_world", "make_kitchen_world"]

WORLD_VERSION = 3  # file-format version (cache key); v2 added the detections file, v3 the few-shot lists
_RANDOM_STREAM = 1  # part of the master seed; kept at 1 so v1 and v2 worlds hold identical clips

#: Columns of EPIC_100_{train,validation}.csv, in the real order.
EK_COLUMNS = ("narration_id", "participant_id", "video_id", "narration_timestamp", "start_timestamp",
              "stop_timestamp", "start_frame", "stop_frame", "narration", "verb", "verb_class", "noun",
              "noun_class", "all_nouns", "all_noun_classes")

#: Real SSv2 templates → the relative motion that defines them in this world.
SSV2_TEMPLATES: dict[str, str] = {
    "Moving [something] from left to right": "left_to_right",
    "Moving [something] from right to left": "right_to_left",
    "Putting [something] into [something]": "into",
    "Taking [something] out of [something]": "out_of",
    "Pushing [something] so that it falls off the table": "push_off",
    "Moving [something] closer to [something]": "closer",
    "Moving [something] away from [something]": "away",
    "Pretending to pick [something] up": "pretend_pick",
    "Turning the camera left while filming [something]": "camera_left",
    "Turning the camera right while filming [something]": "camera_right",
    "Turning [something] upside down": "turn_over",
    "Pretending to turn [something] upside down": "pretend_turn",
}
#: The eight templates of the default world: each is told apart by its boxes alone. The other four give
#: boxes that an earlier template also gives, so only the pixels tell them apart (as for many real SSv2
#: template pairs): camera turns (the hand holds the object while the whole scene pans: boxes as in moving it
#: left→right / right→left) and turning upside down vs pretending to (the object's underside shows).
MOTION_TEMPLATES: tuple[str, ...] = tuple(SSV2_TEMPLATES)[:8]
#: The templates of the layouts world: the eight plus the camera turns.
CAMERA_TEMPLATES: tuple[str, ...] = tuple(SSV2_TEMPLATES)[:10]
#: camera-turn motion -> the motion whose hand and object boxes it reproduces
_CAMERA_MOTIONS = {"camera_left": "left_to_right", "camera_right": "right_to_left"}
_TWO_OBJECT_MOTIONS = {"into", "out_of", "closer", "away"}

#: EPIC verb key → motion pattern (see module docstring).
_EK_VERBS = ("take", "put", "wash", "open", "close", "cut")
#: EPIC noun key → (shape, radius in px at 96 px frame height).
_EK_NOUNS: dict[str, tuple[str, float]] = {
    "spoon": ("spoon", 12.0), "plate": ("plate", 12.0), "cupboard": ("cupboard", 13.0),
    "knife": ("knife", 12.0), "lid": ("lid", 12.0), "drawer": ("drawer", 12.0),
    "onion": ("onion", 10.5), "potato": ("potato", 11.0),
}
#: Something-Else object sets: (placeholder noun, shape); colours are assigned by hue.
_SS_OBJECTS_A = (("pen", "bar"), ("mug", "square"), ("book", "triangle"), ("bottle", "bullseye"),
                 ("remote control", "bar"), ("box", "square"), ("phone", "triangle"), ("wallet", "bullseye"))
_SS_OBJECTS_B = (("cup", "ring"), ("shoe", "oval"), ("scissors", "cross"), ("lighter", "diamond"),
                 ("toy car", "oval"), ("apple", "ring"), ("marker", "cross"), ("key", "diamond"))

_ASSETS = ("modalbridge", "assets/epic_kitchens_100")
log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------- config
@dataclass(frozen=True)
class KitchenWorldConfig:
    """Everything that shapes the world (sizes, counts, difficulty). The defaults generate in about 20 s
    with 2 worker processes on 2 idle cores (17 s measured; ~140 MB on disk, most of it flow JPEGs).

    EPIC-KITCHENS-100 part:
        width, height: frame size of every EPIC video (even). fps / participant_fps: frame rate, per
        participant override (P02 records at 25 fps to exercise per-video rates). train_videos / val_videos:
        ``PXX_1YY`` ids, disjoint; train_segments / val_segments are spread evenly over them, each video
        holding consecutive segments of ``segment_seconds`` separated by gaps of ``gap_seconds``.
        unseen_participants: validation-only participants (listed in the unseen csv). verbs / nouns: EPIC keys
        (subsets of take/put/wash/open/close/cut and spoon/plate/cupboard/knife/lid/drawer/onion/potato).
        class_temperature: class frequencies follow the real counts raised to this power (0 = uniform).
        label_noise: fraction of train rows whose annotation is replaced by a narration of another verb (the
        video keeps the true action; see ``world_truth.csv``). occlusion_prob: fraction of segments with a
        static occluder in front of the object. object_contrast: object opacity over the background.
        noise_std: per-frame pixel noise. clutter: static background blobs per kitchen. ek_novel_colours:
        validation videos drawn with the novel noun palette: ``"unseen"`` (videos of unseen participants),
        ``"validation"`` (all) or ``"none"``. tail_fraction: tail csvs list the rarest train classes holding at
        most this fraction of the train instances (at least one class). audio_rate: AAC sample rate (mono).
        audio_noun_level / audio_noise_level: amplitude of the noun tone and of the background noise.
        flow_bound / flow_jpeg_quality: flow quantisation bound (pixels) and JPEG quality.

    Something-Else part:
        ss_train_clips / ss_val_clips, ss_fps, ss_height, ss_widths (each clip picks one), ss_seconds (clip
        length), ss_templates (class id = index in the sorted template list), ss_spurious (probability that a
        train clip uses its template's favourite set-A object), ss_label_noise, ss_distractor_prob (static,
        unannotated extra object in one-object clips), ss_dirty_box_prob, ss_empty_frame_prob, ss_noise_std,
        ss_clutter (static unannotated blobs on each table: scene texture that shows camera turns).
    """

    # -- EPIC-KITCHENS-100 part
    width: int = 128
    height: int = 96
    fps: float = 30.0
    participant_fps: tuple[tuple[str, float], ...] = (("P02", 25.0),)
    train_videos: tuple[str, ...] = ("P01_101", "P01_102", "P01_103", "P02_101", "P02_102", "P02_103")
    val_videos: tuple[str, ...] = ("P01_104", "P01_105", "P18_101", "P18_102")
    unseen_participants: tuple[str, ...] = ("P18",)
    train_segments: int = 300
    val_segments: int = 150
    segment_seconds: tuple[float, float] = (1.2, 2.0)
    gap_seconds: tuple[float, float] = (0.2, 0.5)
    verbs: tuple[str, ...] = _EK_VERBS
    nouns: tuple[str, ...] = tuple(_EK_NOUNS)
    class_temperature: float = 0.5
    label_noise: float = 0.0
    occlusion_prob: float = 0.25
    object_contrast: float = 0.8
    noise_std: float = 4.0
    clutter: int = 4
    ek_novel_colours: str = "unseen"
    tail_fraction: float = 0.2
    audio_rate: int = 16000
    audio_noun_level: float = 0.05
    audio_noise_level: float = 0.01
    flow_bound: float = 20.0
    flow_jpeg_quality: int = 90
    # -- Something-Something-V2 / Something-Else part
    ss_train_clips: int = 240
    ss_val_clips: int = 120
    ss_fps: int = 12
    ss_height: int = 96
    ss_widths: tuple[int, ...] = (128, 160)
    ss_seconds: tuple[float, float] = (2.0, 3.0)
    ss_templates: tuple[str, ...] = MOTION_TEMPLATES
    ss_spurious: float = 0.7
    ss_label_noise: float = 0.0
    ss_distractor_prob: float = 0.5
    ss_dirty_box_prob: float = 0.02
    ss_empty_frame_prob: float = 0.03
    ss_noise_std: float = 4.0
    ss_clutter: int = 0

    def __post_init__(self) -> None:
        problems = []
        sizes = [("width", self.width), ("height", self.height), ("ss_height", self.ss_height),
                 *((f"ss_widths[{i}]", w) for i, w in enumerate(self.ss_widths))]
        for name, value in sizes:
            if value < 16 or value % 2:
                problems.append(f"{name} must be an even number ≥ 16 (H.264/VP9 4:2:0), got {value}")
        unknown = sorted(set(self.verbs) - set(_EK_VERBS)) + sorted(set(self.nouns) - set(_EK_NOUNS))
        if unknown:
            problems.append(f"unknown verbs/nouns {unknown}; choose from {_EK_VERBS} and {tuple(_EK_NOUNS)}")
        bad = sorted(set(self.ss_templates) - set(SSV2_TEMPLATES))
        if bad:
            problems.append(f"unknown SSv2 templates {bad}; choose from {list(SSV2_TEMPLATES)}")
        overlap = set(self.train_videos) & set(self.val_videos)
        if overlap:
            problems.append(f"videos in both splits: {sorted(overlap)}")
        for video in (*self.train_videos, *self.val_videos):
            participant, _, number = video.partition("_")
            if not (participant[:1] == "P" and participant[1:].isdigit() and len(number) == 3 and number.isdigit()):
                problems.append(f"video id {video!r} must look like PXX_1YY (EPIC-100 extension naming)")
        train_participants = {v.split("_")[0] for v in self.train_videos}
        if set(self.unseen_participants) & train_participants:
            problems.append(f"unseen participants {self.unseen_participants} also appear in train_videos")
        if self.ek_novel_colours not in ("none", "unseen", "validation"):
            problems.append(f"ek_novel_colours must be none|unseen|validation, got {self.ek_novel_colours!r}")
        for name in ("label_noise", "ss_label_noise", "occlusion_prob", "ss_spurious", "ss_distractor_prob",
                     "ss_dirty_box_prob", "ss_empty_frame_prob", "tail_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                problems.append(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if min(self.train_segments, self.val_segments, self.ss_train_clips, self.ss_val_clips) < 1:
            problems.append("segment and clip counts must be ≥ 1")
        if not (self.train_videos and self.val_videos):
            problems.append("train_videos and val_videos must not be empty")
        if len(self.verbs) < 2 or len(self.nouns) < 2 or len(self.ss_templates) < 2:
            problems.append("need at least 2 verbs, 2 nouns and 2 templates")
        if problems:
            raise ValueError("invalid KitchenWorldConfig: " + "; ".join(problems))

    def fps_of(self, video_id: str) -> float:
        """Frame rate of an EPIC video (``participant_fps`` override, else ``fps``)."""
        return float(dict(self.participant_fps).get(video_id.split("_")[0], self.fps))


def config_hash(config: KitchenWorldConfig, seed: int) -> str:
    """12 hex digits identifying (world version, config, seed) — the cache folder suffix."""
    payload = json.dumps({"version": WORLD_VERSION, "seed": int(seed), "config": asdict(config)},
                         sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


# --------------------------------------------------------------------------------------------- shapes
# A shape maps local coordinates u (1, w) and v (h, 1), in units of the layer radius, to (mask, part):
# the pixels it covers and the pixels drawn in its secondary colour. Extents (ex, ey) bound |u| and |v|.
def _plate(u, v):
    r2 = u * u + v * v
    return r2 <= 1.0, (r2 >= 0.5) & (r2 <= 0.68)


def _spoon(u, v):
    head = ((u - 0.5) / 0.5) ** 2 + (v / 0.36) ** 2 <= 1.0
    handle = (u >= -1.2) & (u <= 0.05) & (np.abs(v) <= 0.11)
    return head | handle, handle & ~head


def _knife(u, v):
    blade = (u >= 0) & (u <= 1.3) & (v >= -0.17) & (v <= 0.17 - 0.3 * (u / 1.3) ** 2)
    handle = (u >= -0.75) & (u < 0) & (np.abs(v) <= 0.13)
    return blade | handle, handle


def _cupboard(u, v):
    body = (np.abs(u) <= 0.75) & (np.abs(v) <= 1.1)
    knob = (u - 0.42) ** 2 + v**2 <= 0.015
    frame = (np.abs(u) >= 0.62) | (np.abs(v) >= 0.97)
    return body, body & (frame | knob)


def _lid(u, v):
    body = (u / 1.1) ** 2 + ((v - 0.1) / 0.42) ** 2 <= 1.0
    knob = (np.abs(u) <= 0.2) & (v >= -0.7) & (v <= -0.25)
    return body | knob, knob


def _drawer(u, v):
    body = (np.abs(u) <= 1.2) & (np.abs(v) <= 0.55)
    handle = (np.abs(u) <= 0.45) & (np.abs(v) <= 0.09)
    return body, body & handle


def _onion(u, v):
    bulb = u * u + ((v - 0.15) / 0.9) ** 2 <= 0.72
    tip = (v >= -1.15) & (v <= -0.5) & (np.abs(u) <= 0.32 * (v + 1.15))
    return bulb | tip, bulb & (np.abs(np.sin(7.0 * u)) < 0.3)


def _potato(u, v):
    rho = np.sqrt((u / 1.1) ** 2 + (v / 0.75) ** 2)
    mask = rho <= 0.92 + 0.08 * np.sin(3.0 * np.arctan2(v, u) + 0.5)
    return mask, mask & (np.sin(9.0 * u) * np.sin(9.0 * v) > 0.7)


def _hand(u, v):
    palm = (u / 0.7) ** 2 + v**2 <= 1.0
    thumb = ((u - 0.62) / 0.3) ** 2 + ((v + 0.2) / 0.18) ** 2 <= 1.0
    return palm | thumb, palm & (v < -0.6)


def _square(u, v):
    body = (np.abs(u) <= 0.8) & (np.abs(v) <= 0.8)
    return body, (np.abs(u) <= 0.35) & (np.abs(v) <= 0.35)


def _bullseye(u, v):
    r2 = u * u + v * v
    return r2 <= 1.0, r2 <= 0.16


def _bar(u, v):
    body = (np.abs(u) <= 1.2) & (np.abs(v) <= 0.35)
    return body, body & (np.abs(u) >= 0.8)


def _triangle(u, v):
    body = (v <= 0.8) & (np.abs(u) <= (v + 0.9) * 0.6)
    return body, body & (v >= 0.45)


def _ring(u, v):
    r2 = u * u + v * v
    body = (r2 <= 1.0) & (r2 >= 0.25)
    return body, body & (u > 0)


def _diamond(u, v):
    d = np.abs(u) + np.abs(v)
    return d <= 1.0, d <= 0.4


def _cross(u, v):
    au, av_ = np.abs(u), np.abs(v)
    body = ((au <= 0.3) & (av_ <= 1.0)) | ((av_ <= 0.3) & (au <= 1.0))
    return body, (au <= 0.3) & (av_ <= 0.3)


def _oval(u, v):
    body = (u / 1.2) ** 2 + (v / 0.6) ** 2 <= 1.0
    return body, body & (v > 0)


def _slab(u, v):
    body = (np.abs(u) <= 1.0) & (np.abs(v) <= 1.0)
    return body, body & (np.abs(np.sin(4.0 * (u + v))) < 0.15)


_SHAPES: dict[str, tuple[Callable, tuple[float, float]]] = {
    "plate": (_plate, (1.0, 1.0)), "spoon": (_spoon, (1.2, 0.36)), "knife": (_knife, (1.3, 0.17)),
    "cupboard": (_cupboard, (0.75, 1.1)), "lid": (_lid, (1.1, 0.7)), "drawer": (_drawer, (1.2, 0.55)),
    "onion": (_onion, (0.85, 1.15)), "potato": (_potato, (1.1, 0.75)), "hand": (_hand, (0.92, 1.0)),
    "square": (_square, (0.8, 0.8)), "bullseye": (_bullseye, (1.0, 1.0)), "bar": (_bar, (1.2, 0.35)),
    "triangle": (_triangle, (1.02, 0.9)), "ring": (_ring, (1.0, 1.0)), "diamond": (_diamond, (1.0, 1.0)),
    "cross": (_cross, (1.0, 1.0)), "oval": (_oval, (1.2, 0.6)), "slab": (_slab, (1.0, 1.0)),
}


@dataclass
class _Layer:
    """One rendered layer of a clip following an analytic path; arrays are per frame, shape (n,)."""

    shape: str
    radius: float
    colour: np.ndarray  # (3,) float32, 0..255
    colour2: np.ndarray  # (3,) secondary (pattern) colour
    cx: np.ndarray
    cy: np.ndarray
    scale: np.ndarray
    visible: np.ndarray  # bool
    alpha: float = 1.0
    role: str = "object"  # object | hand | occluder | distractor | obj0 | obj1
    raw_boxes: np.ndarray | None = None  # bool (n,): keep the box unclipped (annotation runs off-frame)
    flipped: np.ndarray | None = None  # bool (n,): drawn upside down, its underside (colours swapped) showing

    def box(self, t: int) -> tuple[float, float, float, float]:
        """Tight axis-aligned box (x1, y1, x2, y2) in pixels at frame ``t`` (unclipped)."""
        ex, ey = _SHAPES[self.shape][1]
        r, cx, cy = float(self.radius * self.scale[t]), float(self.cx[t]), float(self.cy[t])
        return cx - ex * r, cy - ey * r, cx + ex * r, cy + ey * r


def _paint(out: np.ndarray, layer: _Layer, flow_slot: np.ndarray | None = None,
           flows: np.ndarray | None = None) -> None:
    """Alpha-blend ``layer`` into the float frames ``out`` (n, H, W, 3) in place, all frames at once.

    The shape is evaluated on one crop per frame, (n, h, w), sized for the largest radius and placed at the
    layer's centre in each frame. When ``flows`` (m, H, W, 2) is given, ``flow_slot`` (n,) maps frame ``t``
    to its flow slot (-1 = none) and the layer's analytic displacement from frame ``t`` to ``t+2`` is written
    where it covers frame ``t`` (zero when it is gone at ``t+2``); painting layers in order leaves the
    top-most layer's motion at each pixel.
    """
    n, height, width = out.shape[:3]
    fn, (ex, ey) = _SHAPES[layer.shape]
    r = (layer.radius * layer.scale).astype(np.float32)
    half_w, half_h = ex * float(r.max()), ey * float(r.max())
    xx = np.floor(layer.cx - half_w).astype(np.int64)[:, None] - 1 + np.arange(2 * math.ceil(half_w) + 3)
    yy = np.floor(layer.cy - half_h).astype(np.int64)[:, None] - 1 + np.arange(2 * math.ceil(half_h) + 3)
    u = ((xx - layer.cx[:, None]) / r[:, None]).astype(np.float32)[:, None, :]  # (n, 1, w)
    v = ((yy - layer.cy[:, None]) / r[:, None]).astype(np.float32)[:, :, None]  # (n, h, 1)
    if layer.flipped is not None:  # mirror the shape vertically (same box: extents are symmetric)
        v = v * np.where(layer.flipped, -1.0, 1.0).astype(np.float32)[:, None, None]
    mask, part = fn(u, v)
    mask = (mask & layer.visible[:, None, None] & ((yy >= 0) & (yy < height))[:, :, None]
            & ((xx >= 0) & (xx < width))[:, None, :])
    ti, yi, xi = np.nonzero(mask)
    if len(ti) == 0:
        return
    ys, xs = yy[ti, yi], xx[ti, xi]
    second = np.broadcast_to(part, mask.shape)[ti, yi, xi]
    if layer.flipped is not None:
        second = second ^ layer.flipped[ti]
    colour = np.where(second[:, None], layer.colour2, layer.colour)
    pixels = out[ti, ys, xs]
    out[ti, ys, xs] = pixels + np.float32(layer.alpha) * (colour - pixels)
    if flows is None:
        return
    sel = flow_slot[ti] >= 0
    ft, fy, fx = ti[sel], ys[sel], xs[sel]
    nxt = np.minimum(np.arange(n) + 2, n - 1)
    moving = (np.arange(n) + 2 < n) & layer.visible[nxt]
    k = np.where(moving, layer.scale[nxt] / layer.scale, 0.0)[ft]
    on = moving[ft]
    flows[flow_slot[ft], fy, fx, 0] = np.where(on, layer.cx[nxt][ft] + k * (fx - layer.cx[ft]) - fx, 0.0)
    flows[flow_slot[ft], fy, fx, 1] = np.where(on, layer.cy[nxt][ft] + k * (fy - layer.cy[ft]) - fy, 0.0)


def _paint_static(image: np.ndarray, layer: _Layer) -> None:
    """Draw a one-frame ``layer`` into a float image (H, W, 3) in place."""
    _paint(image[None], layer)


def _render(background: np.ndarray, layers: Sequence[_Layer], n: int, noise: np.ndarray,
            rng: np.random.Generator, flow_starts: Sequence[int] = ()) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Render ``n`` frames of ``layers`` (painted in order) over ``background`` (H, W, 3) float32, or one
    background per frame (n, H, W, 3).

    ``noise`` is a bank (K, H, W, 3) of additive noise images, one drawn per frame. For every local frame
    ``t`` in ``flow_starts`` the analytic displacement from frame ``t`` to ``t+2`` of the top-most layer at
    each pixel is returned as ``flows[t]`` (H, W, 2) float32 (dx, dy) in pixels. Returns frames uint8
    (n, H, W, 3) and the flow dict.
    """
    height, width = background.shape[-3:-1]
    out = np.empty((n, height, width, 3), np.float32)
    out[:] = background
    starts = sorted(set(flow_starts))
    flow_slot = np.full(n, -1, np.int64)
    flow_slot[starts] = np.arange(len(starts))
    flows = np.zeros((len(starts), height, width, 2), np.float32)
    for layer in layers:
        _paint(out, layer, flow_slot, flows)
    out += noise[rng.integers(len(noise), size=n)]
    np.clip(out, 0, 255, out=out)
    return out.astype(np.uint8), {t: flows[i] for i, t in enumerate(starts)}


def _texture(rng: np.random.Generator, width: int, height: int, base: np.ndarray, amplitude: float) -> np.ndarray:
    """Smooth random texture (H, W, 3) float32 around ``base``: bicubic upsampling of a 4×5 grid."""
    grid = rng.normal(0.0, 1.0, (4, 5, 3)).astype(np.float32)
    smooth = cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
    return (base[None, None, :] + amplitude * smooth).astype(np.float32)


def _noise_bank(rng: np.random.Generator, width: int, height: int, std: float, k: int = 12) -> np.ndarray:
    """(k, H, W, 3) float32 Gaussian pixel noise; one image is added to each rendered frame."""
    return rng.standard_normal((k, height, width, 3), dtype=np.float32) * np.float32(std)


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb((h % 360) / 360.0, s, v), np.float32) * 255.0


def _static_layer(shape, radius, colour, colour2, x, y, n, *, alpha=1.0, role="object") -> _Layer:
    return _Layer(shape, radius, np.asarray(colour, np.float32), np.asarray(colour2, np.float32),
                  np.full(n, x, np.float32), np.full(n, y, np.float32), np.ones(n, np.float32),
                  np.ones(n, bool), alpha, role)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _phase(tau: np.ndarray, start: float, stop: float) -> np.ndarray:
    """Smooth 0→1 ramp of normalised time ``tau`` between ``start`` and ``stop``."""
    return _smoothstep((tau - start) / (stop - start))


def _fit_range(lo: np.ndarray, hi: np.ndarray, first: float, last: float, rng: np.random.Generator) -> float:
    """Random shift that moves the interval [min(lo), max(hi)] inside [first, last] (centred if too long)."""
    low, high = first - float(np.min(lo)), last - float(np.max(hi))
    return rng.uniform(low, high) if low <= high else 0.5 * (low + high)


def _fit_offset(lo: np.ndarray, hi: np.ndarray, size: float, margin: float, rng: np.random.Generator) -> float:
    """Random shift that keeps [min(lo), max(hi)] inside [margin, size - margin]."""
    return _fit_range(lo, hi, margin, size - margin, rng)


# --------------------------------------------------------------------------------------------- EPIC palettes
def _noun_palettes(nouns: Sequence[str]) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """noun → (main, secondary) colour in the ``seen`` palette and in the disjoint ``novel`` palette."""
    seen, novel = {}, {}
    m = len(nouns)
    for i, noun in enumerate(nouns):
        hue = 360.0 * i / m + 10.0
        seen[noun] = (_hsv(hue, 0.8, 0.92), _hsv(hue, 0.8, 0.45))
        # novel: shifted by half a step in hue, desaturated, and assigned to another noun
        hue_b = 360.0 * ((i + m // 2) % m) / m + 10.0 + 180.0 / m
        novel[noun] = (_hsv(hue_b, 0.45, 0.62), _hsv(hue_b, 0.3, 0.95))
    return {"seen": seen, "novel": novel}


def _ss_objects(names_shapes, hue_offset: float, saturation: float, value: float) -> list[dict[str, Any]]:
    objects = []
    for i, (name, shape) in enumerate(names_shapes):
        hue = 360.0 * i / len(names_shapes) + hue_offset
        main = _hsv(hue, saturation, value)
        second = _hsv(hue + 180.0, 0.25, 0.95) if i % 2 else 0.5 * main
        objects.append({"name": name, "shape": shape, "colour": [round(float(c), 1) for c in main],
                        "colour2": [round(float(c), 1) for c in second]})
    return objects


# --------------------------------------------------------------------------------------------- EPIC annotations
@dataclass(frozen=True)
class _Narration:
    narration: str
    verb: str
    verb_class: int  # world id
    noun: str
    noun_class: int  # world id
    count: int


@dataclass
class _Vocabulary:
    verb_keys: list[str]  # world id → real key
    noun_keys: list[str]
    verb_real_ids: list[int]
    noun_real_ids: list[int]
    verb_categories: list[str]
    noun_categories: list[str]
    rows: list[_Narration]


def _asset_text(name: str) -> str:
    return resources.files(_ASSETS[0]).joinpath(_ASSETS[1], name).read_text(encoding="utf-8")


def _load_vocabulary(verbs: Sequence[str], nouns: Sequence[str]) -> _Vocabulary:
    """Read the shipped EPIC subset and renumber the chosen classes 0..V-1 / 0..N-1 (ordered by real id)."""
    def classes(name: str, keys: Sequence[str]):
        table = {r["key"]: (int(r["id"]), r["category"]) for r in csv.DictReader(_asset_text(name).splitlines())}
        chosen = sorted((table[k][0], k, table[k][1]) for k in keys)
        return [c[1] for c in chosen], [c[0] for c in chosen], [c[2] for c in chosen]

    verb_keys, verb_ids, verb_cats = classes("EPIC_100_verb_classes.csv", verbs)
    noun_keys, noun_ids, noun_cats = classes("EPIC_100_noun_classes.csv", nouns)
    verb_map = {real: i for i, real in enumerate(verb_ids)}
    noun_map = {real: i for i, real in enumerate(noun_ids)}
    rows = []
    for r in csv.DictReader(_asset_text("narrations.csv").splitlines()):
        vc, nc = int(r["verb_class"]), int(r["noun_class"])
        if vc in verb_map and nc in noun_map:
            rows.append(_Narration(r["narration"], r["verb"], verb_map[vc], r["noun"], noun_map[nc], int(r["count"])))
    present = {r.verb_class for r in rows}
    missing = [verb_keys[v] for v in range(len(verb_keys)) if v not in present]
    if missing:
        raise ValueError(f"no narration with verbs {missing} and the chosen nouns {list(nouns)}")
    return _Vocabulary(verb_keys, noun_keys, verb_ids, noun_ids, verb_cats, noun_cats, rows)


class _NarrationSampler:
    """Draws real narrations: verb ∝ count^T, noun | verb ∝ count(verb, noun)^T, narration ∝ count."""

    def __init__(self, vocab: _Vocabulary, temperature: float):
        self.by_pair: dict[tuple[int, int], list[_Narration]] = defaultdict(list)
        for row in vocab.rows:
            self.by_pair[(row.verb_class, row.noun_class)].append(row)
        pair_count = {p: sum(r.count for r in rs) for p, rs in self.by_pair.items()}
        verb_count = Counter()
        for (v, _), c in pair_count.items():
            verb_count[v] += c
        self.verbs = sorted(verb_count)
        self.verb_p = _normalise([verb_count[v] ** temperature for v in self.verbs])
        self.nouns_of = {v: sorted(n for (vv, n) in pair_count if vv == v) for v in self.verbs}
        self.noun_p = {v: _normalise([pair_count[(v, n)] ** temperature for n in self.nouns_of[v]])
                       for v in self.verbs}

    def draw(self, rng: np.random.Generator, verb: int | None = None) -> _Narration:
        if verb is None:
            verb = self.verbs[rng.choice(len(self.verbs), p=self.verb_p)]
        noun = self.nouns_of[verb][rng.choice(len(self.nouns_of[verb]), p=self.noun_p[verb])]
        rows = self.by_pair[(verb, noun)]
        return rows[rng.choice(len(rows), p=_normalise([r.count for r in rows]))]


def _normalise(weights) -> np.ndarray:
    w = np.asarray(weights, np.float64)
    return w / w.sum()


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


# --------------------------------------------------------------------------------------------- EPIC motion
def _ek_layers(verb: str, noun: str, n: int, fps: float, width: int, height: int, rng: np.random.Generator,
               colours: tuple[np.ndarray, np.ndarray], skin: np.ndarray, contrast: float, occluded: bool
               ) -> tuple[list[_Layer], dict[str, Any]]:
    """Object + hand (+ occluder) layers of one EPIC segment of ``n`` frames and its audio cues.

    Returns the layers in paint order and ``cues`` = {"freq": shake/chop Hz or None, "hits": seconds of
    chop contacts, "land": fraction of the segment when the motion ends}.
    """
    unit = height / 96.0
    shape, base = _EK_NOUNS[noun]
    r = base * unit * rng.uniform(0.9, 1.15)
    rh = 6.5 * unit * rng.uniform(0.9, 1.1)
    t = np.arange(n, dtype=np.float64) / fps
    tau = np.arange(n, dtype=np.float64) / max(n - 1, 1)
    ramp = _phase(tau, 0.05, 0.9)
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
    ex, ey = _SHAPES[shape][1]
    hex_, hey = _SHAPES["hand"][1]
    lo_x = np.minimum(ox - ex * r * scale, hx - hex_ * rh)
    hi_x = np.maximum(ox + ex * r * scale, hx + hex_ * rh)
    lo_y = np.minimum(oy - ey * r * scale, hy - hey * rh)
    hi_y = np.maximum(oy + ey * r * scale, hy + hey * rh)
    dx, dy = _fit_offset(lo_x, hi_x, width, 1.0, rng), _fit_offset(lo_y, hi_y, height, 1.0, rng)
    jitter = rng.normal(0.0, 6.0, 3)
    main = np.clip(colours[0] + jitter, 0, 255).astype(np.float32)
    second = np.clip(colours[1] + jitter, 0, 255).astype(np.float32)
    visible = np.ones(n, bool)
    obj = _Layer(shape, r, main, second, (ox + dx).astype(np.float32), (oy + dy).astype(np.float32),
                 scale.astype(np.float32), visible, contrast, "object")
    hand_colour = np.clip(skin + rng.normal(0.0, 5.0, 3), 0, 255).astype(np.float32)
    hand = _Layer("hand", rh, hand_colour, 0.85 * hand_colour, (hx + dx).astype(np.float32),
                  (hy + dy).astype(np.float32), np.ones(n, np.float32), visible.copy(), 1.0, "hand")
    layers = [obj, hand]
    if occluded:
        k = int(rng.uniform(0.3, 0.7) * (n - 1))
        grey = rng.uniform(70, 150) + rng.normal(0, 10, 3)
        slab = _static_layer("slab", r * rng.uniform(0.6, 0.9), grey, 0.8 * grey, obj.cx[k] + rng.normal(0, 2),
                             obj.cy[k] + rng.normal(0, 2), n, role="occluder")
        layers = [obj, slab, hand]
    return layers, cues


def _verb_sound(verb: str, m: int, sr: int, rng: np.random.Generator, cues: dict[str, Any]) -> np.ndarray:
    """Verb-specific sound (m,) float32 for a segment of ``m`` samples (see module docstring)."""
    t = np.arange(m) / sr
    dur = m / sr
    env = _smoothstep((t / dur - 0.08) / 0.1) * _smoothstep((0.92 - t / dur) / 0.1)
    jitter = rng.uniform(0.9, 1.1)
    if verb == "take":
        f0, f1 = 500.0 * jitter, 1500.0 * jitter
        y = np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t * t / (2 * dur))) * env
    elif verb in ("put", "close"):
        onset = cues["land"] * dur
        after = np.clip(t - onset, 0.0, None)
        decay = np.exp(-after / (0.06 if verb == "put" else 0.09)) * (t >= onset)
        low = 140.0 if verb == "put" else 85.0
        noise = rng.normal(0.0, 1.0, m) * np.exp(-after / 0.015) * (t >= onset)
        y = decay * np.sin(2 * np.pi * low * jitter * after) + (0.3 if verb == "put" else 0.8) * noise
    elif verb == "wash":
        spectrum = np.fft.rfft(rng.normal(0.0, 1.0, m))
        freqs = np.fft.rfftfreq(m, 1.0 / sr)
        spectrum[(freqs < 1500.0) | (freqs > 4000.0)] = 0.0
        y = np.fft.irfft(spectrum, m)
        y = y / (np.abs(y).max() + 1e-9) * env * (0.6 + 0.4 * np.sin(2 * np.pi * cues["freq"] * t))
    elif verb == "open":
        f = 220.0 * jitter * (1.0 + 0.4 * t / dur)
        saw = 2.0 * ((np.cumsum(f) / sr) % 1.0) - 1.0
        y = 0.7 * saw * (0.6 + 0.4 * np.sign(np.sin(2 * np.pi * 25.0 * t))) * env
    elif verb == "cut":
        y = np.zeros(m)
        for hit in cues["hits"]:
            after = t - hit
            on = after >= 0
            y += on * np.exp(-np.clip(after, 0, None) / 0.01) * (
                rng.normal(0.0, 0.6, m) + np.sin(2 * np.pi * 2200.0 * jitter * after))
    else:  # pragma: no cover
        raise ValueError(verb)
    peak = np.abs(y).max()
    return (0.45 * rng.uniform(0.75, 1.0) * y / peak if peak > 0 else y).astype(np.float32)


# --------------------------------------------------------------------------------------------- media writers
class _VideoWriter:
    """Streaming PyAV encoder: ``.MP4``/``.mp4`` → libx264 (ultrafast, yuv420p) + optional AAC mono;
    ``.webm`` → libvpx-vp9 (realtime), no audio. Frames are uint8 (n, H, W, 3) RGB."""

    def __init__(self, path: Path, width: int, height: int, fps: float, *, audio: np.ndarray | None = None,
                 audio_rate: int = 16000):
        mp4 = path.suffix.lower() == ".mp4"
        self.container = av.open(str(path), "w", format="mp4" if mp4 else "webm")
        self.fps = Fraction(fps).limit_denominator(1001)
        self.video = self.container.add_stream("libx264" if mp4 else "libvpx-vp9", rate=self.fps)
        self.video.width, self.video.height, self.video.pix_fmt = width, height, "yuv420p"
        self.video.options = ({"preset": "ultrafast", "crf": "23", "threads": "1"} if mp4 else
                              {"deadline": "realtime", "cpu-used": "8", "crf": "32", "b": "0", "threads": "1"})
        self.audio = None
        self.audio_data = audio
        self.audio_rate = audio_rate
        self.audio_done = 0
        if audio is not None:
            if not mp4:
                raise ValueError("audio is only written into MP4 files")
            self.audio = self.container.add_stream("aac", rate=audio_rate)
            self.audio.layout = "mono"
            self.audio.bit_rate = 32000
            self.audio.options = {"aac_coder": "fast"}
        self.frames = 0

    def write(self, frames: np.ndarray) -> None:
        for image in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts = self.frames
            self.frames += 1
            for packet in self.video.encode(frame):
                self.container.mux(packet)
        if self.audio is not None:
            self._write_audio(round(float(self.frames / self.fps) * self.audio_rate))

    def _write_audio(self, until: int, final: bool = False) -> None:
        step = 1024
        data = self.audio_data
        while self.audio_done + step <= until or (final and self.audio_done < len(data)):
            chunk = data[self.audio_done:self.audio_done + step]
            if len(chunk) < step:
                chunk = np.pad(chunk, (0, step - len(chunk)))
            frame = av.AudioFrame.from_ndarray(chunk[None, :].astype(np.float32), format="fltp", layout="mono")
            frame.sample_rate = self.audio_rate
            frame.time_base = Fraction(1, self.audio_rate)
            frame.pts = self.audio_done
            self.audio_done += step
            for packet in self.audio.encode(frame):
                self.container.mux(packet)

    def close(self) -> None:
        for packet in self.video.encode():
            self.container.mux(packet)
        if self.audio is not None:
            self._write_audio(len(self.audio_data), final=True)
            for packet in self.audio.encode():
                self.container.mux(packet)
        self.container.close()


def _quantise_flow(d: np.ndarray, bound: float) -> np.ndarray:
    """Pixels → uint8 as :func:`modalbridge.io.flow.quantise_flow`: ``round((d/bound + 1)·127.5)``."""
    return np.clip(np.round((d / bound + 1.0) * 127.5), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------- EPIC video job
def _render_ek_video(job: dict[str, Any]) -> dict[str, Any]:
    """Render one EPIC video: MP4 (+AAC), flow JPEGs and hand-object boxes. Runs in a worker process."""
    cfg: KitchenWorldConfig = job["config"]
    rng = np.random.default_rng(job["seed"])
    width, height, fps, total = cfg.width, cfg.height, job["fps"], job["frames"]
    root = Path(job["root"])
    participant, video_id = job["participant"], job["video_id"]
    # kitchen: textured counter, faint tiles and static clutter
    base = rng.uniform(95, 165) + rng.normal(0, 18, 3)
    background = _texture(rng, width, height, base, 12.0)
    tile = rng.integers(14, 22)
    background[::tile, :, :] -= 10.0
    background[:, ::tile, :] -= 10.0
    for _ in range(cfg.clutter):
        shape = ("square", "oval", "bar", "slab")[rng.integers(4)]
        grey = base + rng.normal(0, 22, 3)
        layer = _static_layer(shape, rng.uniform(6, 16) * height / 96.0, grey, grey * 0.85,
                              rng.uniform(0, width), rng.uniform(0, height), 1, alpha=0.45, role="clutter")
        _paint_static(background, layer)
    noise = _noise_bank(rng, width, height, cfg.noise_std)
    skin = np.array([205.0, 150.0, 120.0]) + rng.normal(0, 8, 3)
    # audio: background noise + per-segment verb sound and noun tone
    sr = cfg.audio_rate
    audio = rng.normal(0.0, cfg.audio_noise_level, round(total / fps * sr)).astype(np.float32)
    palettes = _noun_palettes(cfg.nouns)
    pitches = {noun: 300.0 * 2 ** (i / len(cfg.nouns)) for i, noun in enumerate(cfg.nouns)}

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
        audio[a:a + m] += _verb_sound(seg["verb"], m, sr, rng, cues)
        tone = np.sin(2 * np.pi * pitches[seg["noun"]] * np.arange(m) / sr)
        audio[a:a + m] += (cfg.audio_noun_level * tone * np.hanning(m)).astype(np.float32)
        cursor = seg["start"] + seg["frames"]
    if total > cursor:
        pieces.append(("gap", cursor, total - cursor, None))
    np.clip(audio, -1.0, 1.0, out=audio)

    writer = _VideoWriter(video_path, width, height, fps, audio=audio, audio_rate=sr)
    boxes: dict[str, list[dict[str, Any]]] = {}
    for kind, start, n, layers in pieces:
        starts = [t for t in range(n) if (start + t) % 2 == 0]
        frames, flows = _render(background, layers or [], n, noise, rng, starts if layers else ())
        writer.write(frames)
        for t in starts:
            index = (start + t) // 2 + 1
            names = [flow_dir / c / f"frame_{index:010d}.jpg" for c in ("u", "v")]
            if t in flows and np.any(flows[t]):
                q = _quantise_flow(flows[t], cfg.flow_bound)
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


# --------------------------------------------------------------------------------------------- SSv2 motion
def _ss_layers(motion: str, n: int, width: int, height: int, rng: np.random.Generator, obj_a: dict, obj_b: dict | None,
               distractor: dict | None, skin: np.ndarray) -> list[_Layer]:
    """Layers (paint order) of one Something-Else clip: [distractor], [obj1], obj0, hand."""
    unit = height / 96.0
    tau = np.linspace(0.0, 1.0, n)
    ra = rng.uniform(9.0, 12.0) * unit
    rb = ra * rng.uniform(1.5, 1.8) if motion in ("into", "out_of") else rng.uniform(9.0, 12.0) * unit
    rh = 6.5 * unit * rng.uniform(0.9, 1.1)
    ex_a, ey_a = _SHAPES[obj_a["shape"]][1]
    ex_b, ey_b = _SHAPES[obj_b["shape"]][1] if obj_b else (1.0, 1.0)
    side = rng.choice([-1.0, 1.0])
    ax, ay, a_scale = np.zeros(n), np.zeros(n), np.ones(n)
    a_visible = np.ones(n, bool)
    bx = by = 0.0
    carry = _phase(tau, 0.2, 0.8)  # the object moves while the hand carries it
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
            move = _phase(tau, 0.2, 0.7)
            ax = outside[0] + (inside[0] - outside[0]) * move
            ay = outside[1] + (inside[1] - outside[1]) * move
            a_scale = 1.0 - 0.45 * _phase(tau, 0.6, 0.75)
            a_visible = tau < 0.75
            release = 0.72
        else:
            move = _phase(tau, 0.3, 0.85)
            ax = inside[0] + (outside[0] - inside[0]) * move
            ay = inside[1] + (outside[1] - inside[1]) * move
            a_scale = 0.55 + 0.45 * _phase(tau, 0.3, 0.45)
            a_visible = tau >= 0.25
            grab, release = 0.25, 0.85
    elif motion == "push_off":
        edge = side * rng.uniform(0.25, 0.4) * width
        push = _phase(tau, 0.2, 0.6)
        ax = (edge + side * ra * ex_a) * push
        fit_until = max(int(np.searchsorted(tau, 0.6)), 1)
        release = 0.6
    elif motion == "pretend_pick":
        grab, release = 0.3, 0.45
    elif motion in ("turn_over", "pretend_turn"):  # lifted a little and put back, in both templates
        ay = -rng.uniform(0.08, 0.15) * height * np.sin(np.pi * _phase(tau, 0.3, 0.7))
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
    dx = _fit_offset(lo_x, hi_x, width, 2.0, rng)
    dy = _fit_range(lo_y, hi_y, 0.25 * height, height - 2.0, rng)  # objects rest below the top quarter
    ax, ay, bx, by = ax + dx, ay + dy, bx + dx, by + dy
    raw = np.zeros(n, bool)
    if motion == "push_off":
        fall = _phase(tau, 0.6, 0.95) ** 2
        ax = ax + side * 0.15 * width * _phase(tau, 0.6, 1.0)
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
        hy = hy - rng.uniform(0.25, 0.4) * height * _phase(tau, 0.45, 0.85)
    i_grab = min(int(np.searchsorted(tau, grab)), n - 1)
    i_rel = min(int(np.searchsorted(tau, release)), n - 1)
    start = np.array([hx[i_grab] + rng.uniform(-0.3, 0.3) * width, rng.uniform(0.05, 0.2) * height])
    leave = np.array([hx[i_rel] + rng.uniform(-0.3, 0.3) * width, rng.uniform(0.05, 0.2) * height])
    come = _phase(tau, 0.0, grab)[:, None]
    go = np.zeros((n, 1))
    if motion not in ("pretend_pick", "push_off"):  # these hands stay in view after the action
        go = _phase(tau, release, min(release + 0.2, 1.0))[:, None]
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
                layers.append(_static_layer(distractor["shape"], rng.uniform(8, 11) * unit, distractor["colour"],
                                            distractor["colour2"], x, y, n, role="distractor"))
                if camera:  # static in the scene, so it moves in the picture
                    layers[-1].cx, layers[-1].cy = x + (ax - ax[0]).astype(np.float32), y + (ay - ay[0]).astype(np.float32)
                break
    if obj_b is not None:
        layers.append(_static_layer(obj_b["shape"], rb, obj_b["colour"], obj_b["colour2"], bx, by, n, role="obj1"))
    a_layer = _Layer(obj_a["shape"], ra, np.asarray(obj_a["colour"], np.float32),
                     np.asarray(obj_a["colour2"], np.float32), ax.astype(np.float32), ay.astype(np.float32),
                     a_scale.astype(np.float32), a_visible, 1.0, "obj0", raw,
                     flipped=tau >= 0.5 if motion == "turn_over" else None)
    hand_colour = np.clip(skin + rng.normal(0, 5, 3), 0, 255).astype(np.float32)
    hand = _Layer("hand", rh, hand_colour, 0.85 * hand_colour, hand_xy[:, 0].astype(np.float32),
                  hand_xy[:, 1].astype(np.float32), np.ones(n, np.float32), np.ones(n, bool), 1.0, "hand")
    return [*layers, a_layer, hand]


def _ss_box_records(video_id: str, layers: Sequence[_Layer], n: int, width: int, height: int, names: dict[str, str],
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


def _scene_clutter(background: np.ndarray, count: int, table_top: int, rng: np.random.Generator) -> None:
    """Paint ``count`` static, unannotated, half-transparent blobs on the table of a scene (H, W, 3) in place:
    scene texture that shows when the camera moves."""
    height, width = background.shape[:2]
    for _ in range(count):
        colour = rng.uniform(40, 220, 3)
        layer = _static_layer(("slab", "potato", "plate")[rng.integers(3)], rng.uniform(3, 6) * height / 96.0,
                              colour, 0.6 * colour, rng.uniform(8, width - 8), rng.uniform(table_top + 6, height - 6),
                              1, alpha=float(rng.uniform(0.5, 0.8)), role="clutter")
        _paint_static(background, layer)


def _render_ss_clips(job: dict[str, Any]) -> dict[str, Any]:
    """Render a chunk of Something-Else clips (webm + box records). Runs in a worker process."""
    cfg: KitchenWorldConfig = job["config"]
    out: dict[str, Any] = {"boxes": {}, "detections": {}, "sizes": {}, "frames": {}}
    for clip in job["clips"]:
        rng = np.random.default_rng(clip["seed"])
        width, height, n = clip["width"], cfg.ss_height, clip["frames"]
        camera = clip["motion"] in _CAMERA_MOTIONS
        margin = width // 2 + 8 if camera else 0  # a wider scene for the camera to pan over
        base = rng.uniform(60, 200, 3)
        background = _texture(rng, width + 2 * margin, height + 2 * margin, base, 14.0)
        table_top = int(rng.uniform(0.3, 0.45) * height) + margin
        background[table_top:] = 0.6 * background[table_top:] + 0.4 * (rng.uniform(60, 200, 3))
        _scene_clutter(background, cfg.ss_clutter, table_top, np.random.default_rng([clip["seed"], 2]))
        skin = np.array([205.0, 150.0, 120.0]) + rng.normal(0, 10, 3)
        layers = _ss_layers(clip["motion"], n, width, height, rng, clip["obj0"], clip.get("obj1"),
                            clip.get("distractor"), skin)
        if camera:  # the scene moves with the held object: crop the wide scene along the object's path
            obj = next(layer for layer in layers if layer.role == "obj0")
            background = np.stack([cv2.warpAffine(background, np.float32([[1, 0, dx - margin], [0, 1, dy - margin]]),
                                                  (width, height), flags=cv2.INTER_LINEAR)
                                   for dx, dy in zip(obj.cx - obj.cx[0], obj.cy - obj.cy[0])])
        frames, _ = _render(background, layers, n, _noise_bank(rng, width, height, cfg.ss_noise_std, 4), rng)
        writer = _VideoWriter(Path(job["root"]) / "videos" / f"{clip['id']}.webm", width, height, cfg.ss_fps)
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


# --------------------------------------------------------------------------------------------- planning
def _plan_ek(cfg: KitchenWorldConfig, rng: np.random.Generator, vocab: _Vocabulary) -> dict[str, Any]:
    """Choose labels, timings and appearance of every EPIC segment (no rendering)."""
    sampler = _NarrationSampler(vocab, cfg.class_temperature)
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


def _plan_ss(cfg: KitchenWorldConfig, rng: np.random.Generator) -> dict[str, Any]:
    """Choose template, objects, size and length of every Something-Else clip (no rendering)."""
    templates = sorted(cfg.ss_templates)
    objects = {"A": _ss_objects(_SS_OBJECTS_A, 0.0, 0.85, 0.95), "B": _ss_objects(_SS_OBJECTS_B, 22.5, 0.5, 0.6)}
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


def _fill_template(template: str, placeholders: Sequence[str]) -> str:
    text = template
    for name in placeholders:
        text = text.replace("[something]", name, 1)
    return text.lower()


# --------------------------------------------------------------------------------------------- writing
def _write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _write_json(path: Path, data: Any, indent: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=indent, separators=None if indent else (",", ":")), encoding="utf-8")


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


def _write_ek(root: Path, cfg: KitchenWorldConfig, plan: dict[str, Any], vocab: _Vocabulary,
              results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    ek = root / "ek100"
    rows = {"train": [], "validation": []}
    truth_rows = []
    for video in plan["videos"]:
        fps = video["fps"]
        colours = results[video["video_id"]]["colours"]
        for seg, colour in zip(video["segments"], colours):
            first, last = seg["start"] + 1, seg["start"] + seg["frames"]
            start_s, stop_s = (first - 1) / fps, last / fps
            label: _Narration = seg["label"]
            truth: _Narration = seg["truth"]
            rows[video["split"]].append([
                seg["narration_id"], video["participant"], video["video_id"],
                _timestamp(start_s + seg["narration_offset"] * (stop_s - start_s), 3),
                _timestamp(start_s, 2), _timestamp(stop_s, 2), first, last, label.narration, label.verb,
                label.verb_class, label.noun, label.noun_class, repr([label.noun]), repr([label.noun_class])])
            truth_rows.append([seg["narration_id"], video["split"], truth.verb_class, truth.noun_class,
                               int(seg["noisy"]), seg["palette"], *colour, int(seg["occluded"])])
    _write_csv(ek / "EPIC_100_train.csv", EK_COLUMNS, rows["train"])
    _write_csv(ek / "EPIC_100_validation.csv", EK_COLUMNS, rows["validation"])
    _write_csv(ek / "world_truth.csv", ["narration_id", "split", "verb_class", "noun_class", "label_noisy",
                                        "palette", "colour_r", "colour_g", "colour_b", "occluded"], truth_rows)
    for kind, keys, cats in (("verb", vocab.verb_keys, vocab.verb_categories),
                             ("noun", vocab.noun_keys, vocab.noun_categories)):
        instances: dict[int, Counter] = defaultdict(Counter)
        for r in vocab.rows:
            instances[getattr(r, f"{kind}_class")][getattr(r, kind)] += r.count
        table = [[i, key, repr([w for w, _ in instances[i].most_common()]), cats[i]] for i, key in enumerate(keys)]
        _write_csv(ek / f"EPIC_100_{kind}_classes.csv", ["id", "key", "instances", "category"], table)
    verb_counts = Counter(r[10] for r in rows["train"])
    noun_counts = Counter(r[12] for r in rows["train"])
    tail_verbs = _tail(verb_counts, len(vocab.verb_keys), cfg.tail_fraction)
    tail_nouns = _tail(noun_counts, len(vocab.noun_keys), cfg.tail_fraction)
    _write_csv(ek / "EPIC_100_tail_verbs.csv", ["verb"], [[v] for v in tail_verbs])
    _write_csv(ek / "EPIC_100_tail_nouns.csv", ["noun"], [[n] for n in tail_nouns])
    _write_csv(ek / "EPIC_100_unseen_participant_ids_validation.csv", ["participant_id"],
               [[p] for p in cfg.unseen_participants])
    _write_csv(ek / "EPIC_100_video_info.csv", ["video_id", "duration", "fps", "resolution"],
               [[v["video_id"], _duration_text(v["frames"], v["fps"]), repr(float(v["fps"])),
                 f"{cfg.width}x{cfg.height}"] for v in sorted(plan["videos"], key=lambda v: v["video_id"])])
    for name in ("license.txt", "SOURCE.txt"):
        (ek / name).write_text(_asset_text(name), encoding="utf-8")
    return {"train_segments": len(rows["train"]), "validation_segments": len(rows["validation"]),
            "tail_verbs": tail_verbs, "tail_nouns": tail_nouns, "verb_counts": dict(sorted(verb_counts.items())),
            "noun_counts": dict(sorted(noun_counts.items()))}


def _write_ss(root: Path, plan: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    ss = root / "ssv2"
    templates = plan["templates"]
    labels = {t.replace("[", "").replace("]", ""): str(i) for i, t in enumerate(templates)}
    _write_json(ss / "something-something-v2-labels.json", labels, indent=1)
    _write_json(ss / "compositional" / "labels.json", {k: int(v) for k, v in labels.items()}, indent=1)
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
        _write_json(ss / f"something-something-v2-{name}.json", lists[split], indent=1)
        _write_json(ss / "compositional" / f"{name}.json", lists[split], indent=1)
    for key in ("A", "B"):
        _write_json(ss / "compositional" / f"objects{key}.json", [o["name"] for o in plan["objects"][key]], indent=1)
    _write_fewshot(ss / "fewshot", templates, lists)
    order = [c["id"] for c in plan["clips"]]
    _write_json(ss / "bounding_box_smthsmth_part1.json", {i: results["boxes"][i] for i in order})
    _write_json(ss / "detections_smthsmth_part1.json", {i: results["detections"][i] for i in order})
    _write_json(ss / "videoid2size.json", {i: results["sizes"][i] for i in order})
    _write_json(ss / "world_truth.json", {"objects": plan["objects"], "clips": truth}, indent=1)
    return {"train_clips": len(lists["train"]), "validation_clips": len(lists["validation"])}


def _write_fewshot(folder: Path, templates: Sequence[str], lists: dict[str, list]) -> None:
    """Something-Else few-shot files: templates at even positions of the sorted list are the base classes,
    the others the novel ones (labels indexed within each labels file, as in the real release); the 5-/10-shot
    training lists take the first 5/10 training clips of each novel template; validation = the novel
    templates' validation clips (their objects are unseen, as in the compositional split)."""
    base, novel = list(templates[0::2]), list(templates[1::2])
    key = {t: t.replace("[", "").replace("]", "") for t in templates}
    _write_json(folder / "base_labels.json", {key[t]: i for i, t in enumerate(base)}, indent=1)
    _write_json(folder / "finetune_labels.json", {key[t]: i for i, t in enumerate(novel)}, indent=1)
    of = {split: {t: [e for e in entries if e["template"] == t] for t in templates} for split, entries in lists.items()}
    _write_json(folder / "base_training_set.json", [e for t in base for e in of["train"][t]], indent=1)
    _write_json(folder / "base_validation_set.json", [e for t in base for e in of["validation"][t]], indent=1)
    novel_val = [e for t in novel for e in of["validation"][t]]
    for shots, train_name in ((5, "finetune_5shot_training.json"), (10, "finetune_10shot_train.json")):
        _write_json(folder / train_name, [e for t in novel for e in of["train"][t][:shots]], indent=1)
        _write_json(folder / f"finetune_{shots}shot_validation.json", novel_val, indent=1)


def _run_jobs(ek_jobs: list[dict[str, Any]], ss_jobs: list[dict[str, Any]], workers: int):
    if workers <= 1:
        return [_render_ek_video(j) for j in ek_jobs], [_render_ss_clips(j) for j in ss_jobs]
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        ek_futures = [pool.submit(_render_ek_video, j) for j in ek_jobs]
        ss_futures = [pool.submit(_render_ss_clips, j) for j in ss_jobs]
        return [f.result() for f in ek_futures], [f.result() for f in ss_futures]


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
    vocab = _load_vocabulary(cfg.verbs, cfg.nouns)
    ek_plan = _plan_ek(cfg, master, vocab)
    ss_plan = _plan_ss(cfg, master)

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
    ek_summary = _write_ek(root, cfg, ek_plan, vocab, {r["video_id"]: r for r in ek_results})
    ss_summary = _write_ss(root, ss_plan, ss_results)
    _write_world_md(root, cfg, seed, vocab, ek_plan, ss_plan, ek_summary, ss_summary)
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


# --------------------------------------------------------------------------------------------- WORLD.md
def _write_world_md(root: Path, cfg: KitchenWorldConfig, seed: int, vocab: _Vocabulary, ek_plan: dict,
                    ss_plan: dict, ek: dict, ss: dict) -> None:
    design = __doc__.split("Selection of the real annotations")[0].strip()
    videos = "\n".join(
        f"| {v['video_id']} | {v['split']} | {v['fps']:g} | {v['frames']} | {len(v['segments'])} | "
        f"{v['segments'][0]['palette'] if v['segments'] else '-'} |" for v in ek_plan["videos"])
    verbs = ", ".join(f"{i}={k} (EPIC {r})" for i, (k, r) in enumerate(zip(vocab.verb_keys, vocab.verb_real_ids)))
    nouns = ", ".join(f"{i}={k} (EPIC {r})" for i, (k, r) in enumerate(zip(vocab.noun_keys, vocab.noun_real_ids)))
    text = f"""# Kitchen world (modalbridge.worlds.kitchen, version {WORLD_VERSION})

Generated by `make_kitchen_world(root, seed={seed}, config=KitchenWorldConfig(**config))` with the seed and
config at the end of this file. The same seed and config give the same annotation files and the same decoded
frames whatever the number of worker processes.

## Contents
- EPIC-KITCHENS-100 part (`ek100/`): {ek['train_segments']} train and {ek['validation_segments']} validation
  segments. Verbs: {verbs}. Nouns: {nouns}. Tail verbs {ek['tail_verbs']}, tail nouns {ek['tail_nouns']}
  (rarest classes holding ≤ {cfg.tail_fraction:g} of the train instances). Unseen participants:
  {', '.join(cfg.unseen_participants)}. Train label counts: verbs {ek['verb_counts']}, nouns {ek['noun_counts']}.

| video | split | fps | frames | segments | noun palette |
|---|---|---|---|---|---|
{videos}

- Something-Else part (`ssv2/`): {ss['train_clips']} train and {ss['validation_clips']} validation clips at
  {cfg.ss_fps} fps, {len(ss_plan['templates'])} templates (class id = position in sorted order):
  {'; '.join(f"{i}: {t}" for i, t in enumerate(ss_plan['templates']))}.
  Train objects (set A): {', '.join(o['name'] for o in ss_plan['objects']['A'])}.
  Validation objects (set B): {', '.join(o['name'] for o in ss_plan['objects']['B'])}.

## Notes for readers
- EPIC hand-object boxes (`ek100/PXX/hand-objects/<video_id>.json`): `{{"<1-based frame>": [{{"box": [x1, y1,
  x2, y2] (pixels, clipped to the frame), "category": "object" | "hand", "score": 1.0, "side": "right",
  "state": 3 (hand only)}}]}}` for every frame inside a segment (frames in gaps have no key).
- `ek100/world_truth.csv` and `ssv2/world_truth.json` hold the true labels (they differ from the annotation
  files only where `label_noisy` is set), object colours and occlusion flags: for tests and analysis only.
- Audio: AAC mono at {cfg.audio_rate} Hz in every MP4, padded to a multiple of 1024 samples at the end.
- Something-Else `nr_instances` = number of annotated tracks of the video (placeholders + hand); about
  {cfg.ss_empty_frame_prob:.0%} of frames have no labels and about {cfg.ss_dirty_box_prob:.0%} of boxes are
  dirty (swapped x1/x2 or a few pixels off-frame); boxes of an object falling off the table run past the
  bottom of the frame.

## Design
{design}

## Seed and config
```json
{json.dumps({"seed": seed, "config": asdict(cfg)}, indent=1)}
```
"""
    (root / "WORLD.md").write_text(text, encoding="utf-8")


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
