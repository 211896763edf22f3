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

Package layout (one concern per module): :mod:`.config` (the config, the world's vocabulary, the cache key),
:mod:`.painters` (shapes), :mod:`.compositor` (layers, rendering, analytic flow), :mod:`.audio` (verb sounds,
noun tones), :mod:`.writers` (video encoder, flow quantisation, CSV / JSON), :mod:`.narrations` (the real EPIC
narrations), :mod:`.epic` and :mod:`.ssv2` (plan, render and write each part), :mod:`.world_md` (WORLD.md)
and :mod:`.build` (the world builders). The names below are the public API. Everything above the "Selection"
paragraph is copied into the WORLD.md of every world (:mod:`.world_md`).
"""

from __future__ import annotations

from modalbridge.worlds.kitchen.build import (
    DISTILL_CONFIG,
    LAYOUTS_CONFIG,
    distill_kitchen_world,
    kitchen_world,
    layouts_kitchen_world,
    make_kitchen_world,
)
from modalbridge.worlds.kitchen.config import (
    CAMERA_TEMPLATES,
    EK_COLUMNS,
    MOTION_TEMPLATES,
    SSV2_TEMPLATES,
    WORLD_VERSION,
    KitchenWorldConfig,
    config_hash,
)

__all__ = ["CAMERA_TEMPLATES", "DISTILL_CONFIG", "EK_COLUMNS", "LAYOUTS_CONFIG", "MOTION_TEMPLATES",
           "SSV2_TEMPLATES", "WORLD_VERSION", "KitchenWorldConfig", "config_hash", "distill_kitchen_world",
           "kitchen_world", "layouts_kitchen_world", "make_kitchen_world"]
