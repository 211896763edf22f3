"""The embedded Abstract Scenes world (``modalbridge world scenes``, ``world://scenes/processed``).

:func:`scenes_world` writes, in a few seconds, ``<worlds>/scenes-<seed>/`` holding

* ``AbstractScenes_v1.1/`` in the exact raw layout of the release (:mod:`.abstract_scenes`):
  ``Scenes_10020.txt``, ``SimpleSentences/SimpleSentences{1,2}_10020.txt``,
  ``SimpleSentences/tuples/TuplesText{1,2}_10020.txt`` and ``Pngs/`` (all 126 clip-art names,
  ``background.png`` and the 4 interface images, drawn here with Pillow: plain shapes with the real images'
  groups, facing direction — flip 0 faces right, as in the real PNGs — and about 0.55× their sizes, people
  ≈ 60×110 px whose pose and expression change the drawing);
* ``processed/`` — the same files after :func:`~.abstract_scenes.prepare_abstract_scenes` (splits, OOD and
  explicit-ratio subsets, the Text2Scene split, ``visual_dicts/``).

**Scenes.** ``sets`` semantic sets (default 300) of 10 scenes, like the release's 1,002 × 10. A set is a
core description that 10 "annotators" draw: 6–9 clip-arts — one sky object, one large object, Mike (hb0)
and Jenny (hb1) in 90 % of the sets (otherwise one of them), 1–2 animals, 0–2 hats or glasses worn by a
person, 0–2 food or toy items held (balls may be kicked, a kite flown, a fire sat by) — and core relations:

* an **arrangement** of the people (a third of the sets each): *at the large object* (large object near one
  edge, one person beside it towards the middle, the other person next to that one: ``large | A | B``),
  *apart* (one person near each edge, the large object in the middle) or *together* (side by side on the
  other half of the canvas from the large object, which stands near an edge);
* whether each person faces the other; whether the sky object is above the large object or anywhere in the
  sky; next to which person (on the side away from the other) or under the large object each animal is;
  who wears and who holds what.

Each of the 10 scenes re-draws every position from these. Coin flips per scene: the large object's side;
the people's left-right order where the arrangement leaves it open; the sky object's height (high or low in
the sky) and, when free, its x; the large object's depth (far away: higher up, z 1–2; or in the front) and
each person's (in the back: higher up, z 1; or in the front). Everything else follows with a few pixels of
jitter (sky objects in the upper band, people and animals on the ground band, hats just above the wearer's
head, a kicked ball at the kicker's feet on the side they face, held items at the hand on that side).
Expressions change in a quarter of the scenes. Objects are listed in group order (sky, large, people,
animals, clothing, food, toys) with the real ``type_idx``/``obj_idx`` fields, z ∈ {0, 1, 2}, flip ∈ {0, 1}.

**Sentences.** Two files, 3 sentences each (sent_idx 0–2). File 1 opens with the set's arrangement ("Mike is
standing under the tree.", "Mike is across from Jenny.", "Jenny is next to Mike."); the other sentences are
drawn by weight from the true statements about *that* scene — relations ("The dog is beside Jenny.",
"Jenny is wearing a crown.", "Mike is kicking the soccer ball.", "Mike is facing Jenny.", "The sun is above
the tree."), placements ("The tree is on the left.", "The tree is in the middle.", "The sun is low in the
sky.", "The tree is far away.", "Jenny is in the back.") and, less often, non-spatial ones ("Mike is
smiling.", "Jenny is sitting."). Each comes in one of a few wordings, now and then with an adjective ("the
big tree") or a modifier ("is now next to"), and has a TuplesText line (subject, relation[, object]) whose
relation holds the spatial word when the sentence has one. Capitals and a missing final "." here and there
exercise the normalisation.

**Why it makes the paper's claims measurable.** S_abs takes the better of the ground truth and its mirror
image and S_rel only compares distances, so a model gains nothing from knowing *which* side things are on —
only from how they stand relative to each other, to the canvas' middle and in height.

* *Text helps* (SR-BERT vs the no-description model, Tables 3.1/3.3): the clip-art set does not say the
  arrangement (large object near an edge or in the middle; people beside it, at opposite edges or side by
  side), who stands by the large object, whether the sky object is above it, which person wears the hat,
  holds the pizza or has the dog — the sentences do (the arrangement in every scene). And since masked
  position modelling lets a model read most relative placements off the clip-arts left visible, some
  placements depend on no other clip-art and only the sentences give them: the sky object's height, the
  large object's and each person's depth.
* *Iterative decoding beats one step* (HO/HC/RO vs SS): absolute positions stay bimodal where the relations
  are relative (the large object's side and the people's order are coin flips, stated in only some scenes).
  One step takes every clip-art's marginal mode independently and breaks the relations (Mike and Jenny both
  on the left in an "apart" scene, the dog under a tree placed on the other side, a hat beside its wearer);
  placing one clip-art and conditioning the rest on it keeps them. Facing makes the flip depend on where the
  other person was put.
* Measured without any model (``tests/tasks/scenes/test_world.py``; minimum-Bayes-risk layouts over samples
  of the generator, S_abs): knowing a set's relations gives ≈ 0.75, knowing only its clip-arts ≈ 0.62; each
  clip-art's own most frequent bin ≈ 0.67 against the joint layout's 0.75. A model needs enough training to
  get there: the thesis's recipe trains for many epochs.
* *OOD and explicit/implicit subsets* are non-trivial: wordings, adjectives and noun pairs make some relation
  strings rare (about a third of the test scenes have ≥ 2 unseen ones), and non-spatial sentences mix with
  spatial ones, so the explicit ratio spreads over the bins (the [0, .25] bin stays small: every scene opens
  with a spatial sentence).
* *Clip-art prediction* (Table 3.4): sentences name the objects, expressions and poses.

**Edge cases** the reader must handle (spec §9): about 1 % of the sky and large objects lie partly off the
canvas (x < 0 or x > 500); scene 3 is empty (``n_objects`` 0; its sentences are kept in the files, the reader
drops the scene); scene 14 has no sentences.
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from modalbridge.core.paths import worlds_dir
from modalbridge.core.worlds import build_world
from modalbridge.tasks.scenes import vocab as V
from modalbridge.tasks.scenes.abstract_scenes import (
    PNGS_DIR,
    RELEASE_DIR,
    SCENES_FILE,
    SENTENCE_FILES,
    TUPLE_FILES,
    prepare_abstract_scenes,
)

__all__ = ["ARRANGEMENTS", "DEFAULT_SETS", "VERSION", "Placed", "SetPlan", "clipart_size", "draw_cliparts",
           "head_offset", "plan_set", "sample_scene", "scenes_world", "write_release"]

VERSION = 3  # v3: depths (large object, people) and arrangements stated by the text; v1 had relations only
DEFAULT_SETS = 300
SCENES_PER_SET = 10
SENTENCES_PER_FILE = 3
EMPTY_SCENE, SILENT_SCENE = 3, 14  # ordinals of the empty scene and of the scene without sentences

# ============================================================================================ clip-art images
#: sizes (w, h) of the real images (``Pngs/`` of the release); ours are about 0.55× these, capped per group
_REAL_SIZES = {
    "a": ((178, 258), (62, 82), (142, 106), (76, 72), (46, 66), (104, 70)),
    "c": ((78, 46), (70, 54), (90, 76), (90, 42), (70, 50), (66, 40), (90, 76), (76, 52), (62, 22), (62, 16)),
    "e": ((62, 30), (88, 32), (54, 30), (16, 40), (16, 40), (38, 28), (30, 34)),
    "p": ((98, 110), (248, 262), (380, 118), (72, 92), (360, 304), (424, 200), (270, 114), (368, 766),
          (290, 508), (376, 428)),
    "s": ((196, 110), (136, 186), (170, 102), (148, 148), (158, 188), (176, 206), (118, 108), (230, 122)),
    "t": ((78, 54), (46, 72), (78, 78), (60, 60), (62, 60), (20, 20), (60, 42), (64, 30), (50, 124),
          (108, 232),
          (54, 50), (34, 60), (96, 104), (310, 264), (88, 118)),
    # people by pose (5 expressions each)
    "hb0": ((108, 202), (116, 220), (146, 206), (102, 202), (156, 150), (180, 142), (120, 200)),
    "hb1": ((120, 194), (116, 200), (142, 196), (116, 192), (138, 144), (168, 146), (138, 194)),
}
_SCALE = 0.55
_CAP = {"s": 110, "p": 190, "a": 90, "t": 90, "c": 60, "e": 50, "hb0": 130, "hb1": 130}


def clipart_size(name: str) -> tuple[int, int]:
    """(w, h) in pixels of the world's image of a clip-art."""
    group, k = V.prefix(name), int(name.split("_")[1][:-5])
    w, h = _REAL_SIZES[group][k // 5 if group in ("hb0", "hb1") else k]
    scale = min(_SCALE, _CAP[group] / max(w, h))
    return max(8, round(w * scale)), max(8, round(h * scale))


def head_offset(name: str) -> int:
    """Vertical offset (pixels, negative = up) from a person's image centre to the centre of its head."""
    _, h = clipart_size(name)
    return -h // 2 + _head_radius(h) + 2


def _head_radius(h: int) -> int:
    return max(8, round(0.13 * min(h, 112)))


def _rgb(hue: float, sat: float = 0.7, val: float = 0.9) -> tuple[int, int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(hue % 1.0, sat, val)
    return round(r * 255), round(g * 255), round(b * 255), 255


BLACK, WHITE, GREY = (30, 30, 30, 255), (250, 250, 250, 255), (150, 150, 160, 255)
BROWN, GREEN, YELLOW = (130, 85, 40, 255), (60, 150, 60, 255), (250, 215, 40, 255)
RED, ORANGE, BLUE = (220, 50, 40, 255), (245, 140, 30, 255), (60, 110, 220, 255)

# Shapes in unit coordinates of the image box: ("ellipse" | "rect", (x0, y0, x1, y1), fill),
# ("poly", [(x, y), …], fill), ("line", [(x, y), …], fill, width in px). Flip 0 faces right.
_CLOUD = [("ellipse", (0.05, 0.35, 0.5, 0.8), None), ("ellipse", (0.3, 0.15, 0.75, 0.7), None),
          ("ellipse", (0.5, 0.35, 0.95, 0.85), None)]


def _cloud(fill, extra=()):
    return [(kind, box, fill) for kind, box, _ in _CLOUD] + list(extra)


_SHAPES: dict[str, list] = {
    # sky
    "s_0s.png": [
        ("ellipse", (0.3, 0.3, 0.85, 0.8), (110, 130, 70, 255)),
        ("line", [(0.35, 0.55), (0.02, 0.45)], (110, 130, 70, 255), 4),
        ("line", [(0.1, 0.15), (0.95, 0.15)], BLACK, 3),
        ("line", [(0.55, 0.15), (0.55, 0.3)], BLACK, 3),
        ("line", [(0.35, 0.95), (0.85, 0.95)], BLACK, 2),
    ],
    "s_1s.png": [
        ("ellipse", (0.05, 0.0, 0.95, 0.7), RED),
        ("ellipse", (0.3, 0.0, 0.7, 0.7), YELLOW),
        ("line", [(0.2, 0.6), (0.38, 0.85)], BLACK, 2),
        ("line", [(0.8, 0.6), (0.62, 0.85)], BLACK, 2),
        ("rect", (0.36, 0.82, 0.64, 1.0), BROWN),
    ],
    "s_2s.png": _cloud(WHITE),
    "s_3s.png": [
        ("poly", [(0.5, 0.0), (0.62, 0.3), (1.0, 0.5), (0.62, 0.7), (0.5, 1.0), (0.38, 0.7), (0.0, 0.5),
                  (0.38, 0.3)], ORANGE),
        ("ellipse", (0.2, 0.2, 0.8, 0.8), YELLOW),
    ],
    "s_4s.png": _cloud((110, 110, 125, 255), [("poly", [(0.5, 0.6), (0.38, 0.82), (0.5, 0.8), (0.42, 1.0),
                                                        (0.62, 0.74), (0.5, 0.76), (0.6, 0.6)], YELLOW)]),
    "s_5s.png": _cloud((150, 150, 165, 255), [("line", [(x, 0.78), (x - 0.05, 0.98)], BLUE, 2)
                                              for x in (0.25, 0.4, 0.55, 0.7)]),
    "s_6s.png": [
        ("rect", (0.15, 0.35, 0.75, 0.65), WHITE),
        ("poly", [(0.75, 0.35), (1.0, 0.5), (0.75, 0.65)], RED),
        ("poly", [(0.15, 0.35), (0.0, 0.15), (0.3, 0.35)], RED),
        ("poly", [(0.15, 0.65), (0.0, 0.85), (0.3, 0.65)], RED),
        ("ellipse", (0.45, 0.42, 0.58, 0.58), BLUE),
    ],
    "s_7s.png": [
        ("ellipse", (0.0, 0.4, 1.0, 0.62), WHITE),
        ("poly", [(0.4, 0.5), (0.55, 0.5), (0.3, 1.0), (0.2, 1.0)], GREY),
        ("poly", [(0.4, 0.5), (0.55, 0.5), (0.3, 0.0), (0.2, 0.0)], GREY),
        ("poly", [(0.02, 0.45), (0.12, 0.45), (0.05, 0.2)], RED),
        ("ellipse", (0.85, 0.44, 0.95, 0.52), BLUE),
    ],
    # large objects
    "p_0s.png": [
        ("ellipse", (0.1, 0.3, 0.85, 0.9), YELLOW),
        ("rect", (0.35, 0.3, 0.45, 0.9), BLACK),
        ("rect", (0.6, 0.3, 0.7, 0.9), BLACK),
        ("ellipse", (0.25, 0.0, 0.6, 0.35), (200, 230, 255, 200)),
        ("ellipse", (0.8, 0.5, 1.0, 0.7), BLACK),
    ],
    "p_1s.png": [
        ("line", [(0.1, 1.0), (0.25, 0.1)], GREY, 4),
        ("line", [(0.3, 1.0), (0.4, 0.1)], GREY, 4),
        *[("line", [(0.12 + 0.03 * i, 0.9 - 0.2 * i), (0.32 + 0.02 * i, 0.9 - 0.2 * i)], GREY, 3)
          for i in range(4)],
        ("poly", [(0.35, 0.1), (0.45, 0.1), (1.0, 0.95), (0.88, 1.0)], RED),
    ],
    "p_2s.png": [
        ("rect", (0.0, 0.3, 1.0, 1.0), BROWN),
        ("rect", (0.05, 0.35, 0.95, 0.9), (235, 205, 130, 255)),
    ],
    "p_3s.png": [
        ("ellipse", (0.05, 0.0, 0.95, 0.6), BLACK),
        ("rect", (0.05, 0.0, 0.95, 0.3), (0, 0, 0, 0)),
        ("line", [(0.3, 0.5), (0.15, 1.0)], BLACK, 3),
        ("line", [(0.7, 0.5), (0.85, 1.0)], BLACK, 3),
        ("line", [(0.1, 0.3), (0.9, 0.3)], GREY, 2),
    ],
    "p_4s.png": [
        ("line", [(0.05, 1.0), (0.2, 0.0), (0.35, 1.0)], RED, 5),
        ("line", [(0.65, 1.0), (0.8, 0.0), (0.95, 1.0)], RED, 5),
        ("line", [(0.2, 0.02), (0.8, 0.02)], RED, 5),
        ("line", [(0.42, 0.02), (0.42, 0.7)], BLACK, 2),
        ("line", [(0.58, 0.02), (0.58, 0.7)], BLACK, 2),
        ("rect", (0.38, 0.68, 0.62, 0.76), BROWN),
    ],
    "p_5s.png": [
        ("poly", [(0.0, 1.0), (0.5, 0.0), (1.0, 1.0)], ORANGE),
        ("poly", [(0.4, 1.0), (0.5, 0.45), (0.6, 1.0)], BROWN),
    ],
    "p_6s.png": [
        ("rect", (0.0, 0.1, 1.0, 0.3), BROWN),
        ("rect", (0.08, 0.3, 0.16, 1.0), BROWN),
        ("rect", (0.84, 0.3, 0.92, 1.0), BROWN),
    ],
    "p_7s.png": [
        ("rect", (0.42, 0.8, 0.58, 1.0), BROWN),
        ("poly", [(0.5, 0.0), (0.8, 0.35), (0.2, 0.35)], GREEN),
        ("poly", [(0.5, 0.2), (0.9, 0.6), (0.1, 0.6)], GREEN),
        ("poly", [(0.5, 0.4), (1.0, 0.82), (0.0, 0.82)], GREEN),
    ],
    "p_8s.png": [
        ("rect", (0.4, 0.65, 0.6, 1.0), BROWN),
        ("ellipse", (0.0, 0.0, 1.0, 0.72), (70, 140, 50, 255)),
    ],
    "p_9s.png": [
        ("rect", (0.42, 0.65, 0.58, 1.0), BROWN),
        ("ellipse", (0.0, 0.0, 1.0, 0.72), (50, 160, 70, 255)),
        *[("ellipse", (x, y, x + 0.08, y + 0.08), RED)
          for x, y in ((0.2, 0.25), (0.5, 0.15), (0.7, 0.4), (0.35, 0.45), (0.6, 0.55))],
    ],
    # clothing (hats sit on a head: bottom of the image = forehead)
    "c_0s.png": [("ellipse", (0.1, 0.1, 0.8, 1.2), BLUE), ("rect", (0.5, 0.75, 1.0, 0.95), BLUE)],
    "c_1s.png": [
        ("poly", [(0.05, 1.0), (0.05, 0.2), (0.28, 0.55), (0.5, 0.1), (0.72, 0.55), (0.95, 0.2), (0.95, 1.0)],
         YELLOW),
    ],
    "c_2s.png": [("rect", (0.25, 0.6, 0.75, 1.0), WHITE), ("ellipse", (0.05, 0.0, 0.95, 0.7), WHITE)],
    "c_3s.png": [("ellipse", (0.0, 0.2, 1.0, 1.4), BLACK), ("ellipse", (0.42, 0.45, 0.58, 0.7), WHITE)],
    "c_4s.png": [("ellipse", (0.1, 0.25, 0.9, 1.5), RED), ("ellipse", (0.4, 0.0, 0.6, 0.3), WHITE)],
    "c_5s.png": [
        ("ellipse", (0.1, 0.35, 0.9, 1.6), (80, 180, 220, 255)),
        ("line", [(0.5, 0.4), (0.5, 0.12)], BLACK, 2),
        ("line", [(0.15, 0.1), (0.85, 0.14)], RED, 3),
    ],
    "c_6s.png": [
        ("poly", [(0.1, 1.0), (0.55, 0.0), (0.9, 1.0)], (120, 60, 180, 255)),
        ("ellipse", (0.45, 0.4, 0.6, 0.55), YELLOW),
    ],
    "c_7s.png": [
        ("ellipse", (0.2, 0.3, 0.8, 1.5), GREY),
        ("poly", [(0.22, 0.8), (0.0, 0.0), (0.3, 0.6)], WHITE),
        ("poly", [(0.78, 0.8), (1.0, 0.0), (0.7, 0.6)], WHITE),
    ],
    "c_8s.png": [
        ("ellipse", (0.05, 0.1, 0.45, 0.9), (200, 230, 255, 120)),
        ("ellipse", (0.55, 0.1, 0.95, 0.9), (200, 230, 255, 120)),
        ("line", [(0.45, 0.5), (0.55, 0.5)], BLACK, 2),
    ],
    "c_9s.png": [
        ("ellipse", (0.05, 0.05, 0.45, 0.95), BLACK),
        ("ellipse", (0.55, 0.05, 0.95, 0.95), BLACK),
        ("line", [(0.45, 0.4), (0.55, 0.4)], BLACK, 2),
    ],
    # food
    "e_0s.png": [
        ("ellipse", (0.0, 0.2, 1.0, 1.0), BROWN),
        ("ellipse", (0.1, 0.25, 0.9, 0.7), (230, 180, 110, 255)),
    ],
    "e_1s.png": [
        ("poly", [(0.0, 0.1), (1.0, 0.5), (0.0, 0.9)], (240, 200, 90, 255)),
        *[("ellipse", (x, y, x + 0.12, y + 0.25), RED) for x, y in ((0.1, 0.3), (0.35, 0.4), (0.15, 0.55))],
    ],
    "e_2s.png": [
        ("ellipse", (0.0, 0.25, 1.0, 0.95), (225, 170, 90, 255)),
        ("ellipse", (0.05, 0.4, 0.95, 0.7), RED),
    ],
    "e_3s.png": [("rect", (0.1, 0.25, 0.9, 1.0), RED), ("rect", (0.35, 0.0, 0.65, 0.25), WHITE)],
    "e_4s.png": [("rect", (0.1, 0.25, 0.9, 1.0), YELLOW), ("rect", (0.35, 0.0, 0.65, 0.25), RED)],
    "e_5s.png": [
        ("ellipse", (0.0, 0.0, 1.0, 0.5), (215, 150, 70, 255)),
        ("rect", (0.0, 0.4, 1.0, 0.6), BROWN),
        ("rect", (0.0, 0.55, 1.0, 0.65), GREEN),
        ("ellipse", (0.0, 0.6, 1.0, 1.0), (215, 150, 70, 255)),
    ],
    "e_6s.png": [
        ("poly", [(0.1, 0.2), (0.9, 0.2), (0.75, 1.0), (0.25, 1.0)], (250, 100, 150, 255)),
        ("line", [(0.55, 0.25), (0.75, 0.0)], WHITE, 2),
    ],
    # toys
    "t_0s.png": [
        ("ellipse", (0.15, 0.0, 0.85, 1.0), WHITE),
        ("line", [(0.3, 0.1), (0.3, 0.9)], RED, 2),
        ("line", [(0.7, 0.1), (0.7, 0.9)], RED, 2),
    ],
    "t_1s.png": [
        ("poly", [(0.0, 0.2), (1.0, 0.2), (0.85, 1.0), (0.15, 1.0)], (240, 90, 60, 255)),
        ("line", [(0.1, 0.2), (0.5, 0.0), (0.9, 0.2)], BLACK, 2),
    ],
    "t_2s.png": [
        ("ellipse", (0.0, 0.0, 1.0, 1.0), RED),
        ("poly", [(0.5, 0.0), (0.75, 0.5), (0.5, 1.0)], YELLOW),
        ("poly", [(0.5, 0.0), (0.25, 0.5), (0.5, 1.0)], BLUE),
    ],
    "t_3s.png": [
        ("ellipse", (0.0, 0.0, 1.0, 1.0), ORANGE),
        ("line", [(0.5, 0.0), (0.5, 1.0)], BLACK, 2),
        ("line", [(0.0, 0.5), (1.0, 0.5)], BLACK, 2),
    ],
    "t_4s.png": [
        ("ellipse", (0.0, 0.0, 1.0, 1.0), WHITE),
        ("poly", [(0.5, 0.3), (0.68, 0.45), (0.6, 0.68), (0.4, 0.68), (0.32, 0.45)], BLACK),
    ],
    "t_5s.png": [("ellipse", (0.0, 0.0, 1.0, 1.0), (200, 230, 60, 255))],
    "t_6s.png": [("ellipse", (0.0, 0.1, 1.0, 0.9), BROWN), ("line", [(0.35, 0.5), (0.65, 0.5)], WHITE, 2)],
    "t_7s.png": [("ellipse", (0.0, 0.2, 1.0, 0.8), (240, 60, 160, 255))],
    "t_8s.png": [("line", [(0.3, 1.0), (0.7, 0.0)], BROWN, 6)],
    "t_9s.png": [
        ("line", [(0.5, 1.0), (0.25, 0.35)], BLACK, 1),
        ("line", [(0.5, 1.0), (0.75, 0.35)], BLACK, 1),
        ("ellipse", (0.0, 0.0, 0.5, 0.4), RED),
        ("ellipse", (0.5, 0.05, 1.0, 0.45), BLUE),
        ("ellipse", (0.25, 0.15, 0.75, 0.55), YELLOW),
    ],
    "t_10s.png": [
        ("ellipse", (0.0, 0.1, 1.0, 1.0), (160, 90, 40, 255)),
        ("rect", (0.1, 0.0, 0.3, 0.5), (160, 90, 40, 255)),
    ],
    "t_11s.png": [
        ("line", [(0.5, 0.0), (0.5, 0.6)], BROWN, 3),
        ("poly", [(0.1, 0.6), (0.9, 0.6), (0.5, 1.0)], GREY),
    ],
    "t_12s.png": [
        ("ellipse", (0.1, 0.0, 0.9, 0.6), (40, 160, 200, 255)),
        ("ellipse", (0.2, 0.08, 0.8, 0.52), (0, 0, 0, 0)),
        ("line", [(0.5, 0.6), (0.5, 1.0)], BLACK, 4),
    ],
    "t_13s.png": [
        ("poly", [(0.5, 0.0), (0.85, 0.35), (0.5, 0.75), (0.15, 0.35)], (230, 60, 90, 255)),
        ("line", [(0.5, 0.75), (0.4, 0.85), (0.55, 0.92), (0.45, 1.0)], BLACK, 2),
    ],
    "t_14s.png": [
        ("line", [(0.1, 0.95), (0.9, 0.8)], BROWN, 5),
        ("line", [(0.1, 0.8), (0.9, 0.95)], BROWN, 5),
        ("poly", [(0.15, 0.85), (0.3, 0.3), (0.45, 0.55), (0.55, 0.0), (0.7, 0.5), (0.85, 0.85)], ORANGE),
        ("poly", [(0.35, 0.85), (0.5, 0.45), (0.65, 0.85)], YELLOW),
    ],
}

_ANIMALS = {  # body colour, head colour, body box, head box (unit coords); flip 0 faces right
    "a_0s.png": ((120, 80, 40, 255), (120, 80, 40, 255), (0.0, 0.35, 0.8, 1.0), (0.55, 0.05, 1.0, 0.45)),
    "a_1s.png": ((240, 150, 50, 255), (240, 150, 50, 255), (0.0, 0.45, 0.75, 0.95), (0.55, 0.1, 1.0, 0.55)),
    "a_2s.png": ((200, 160, 100, 255), (190, 145, 85, 255), (0.0, 0.35, 0.75, 0.85), (0.6, 0.05, 1.0, 0.45)),
    "a_3s.png": ((250, 220, 40, 255), (250, 220, 40, 255), (0.0, 0.45, 0.8, 1.0), (0.5, 0.0, 0.9, 0.45)),
    "a_4s.png": ((150, 110, 80, 255), (170, 130, 95, 255), (0.1, 0.35, 0.9, 1.0), (0.1, 0.0, 0.9, 0.5)),
    "a_5s.png": ((60, 160, 60, 255), (60, 160, 60, 255), (0.0, 0.6, 0.85, 0.9), (0.75, 0.45, 1.0, 0.75)),
}


def _paint_shapes(draw: ImageDraw.ImageDraw, w: int, h: int, shapes: Sequence) -> None:
    def xy(points):
        return [(px * (w - 1), py * (h - 1)) for px, py in points]

    for shape in shapes:
        kind, geometry, fill = shape[:3]
        if kind == "ellipse":
            outline = BLACK if fill != (0, 0, 0, 0) else None  # a transparent fill cuts a hole
            draw.ellipse(xy([geometry[:2], geometry[2:]]), fill=fill, outline=outline)
        elif kind == "rect":
            draw.rectangle(xy([geometry[:2], geometry[2:]]), fill=fill)
        elif kind == "poly":
            draw.polygon(xy(geometry), fill=fill, outline=BLACK)
        else:
            draw.line(xy(geometry), fill=fill, width=shape[3])


def _paint_animal(draw: ImageDraw.ImageDraw, w: int, h: int, name: str) -> None:
    body, head, body_box, head_box = _ANIMALS[name]
    if name == "a_5s.png":  # snake: a wavy line with a head
        points = [(0.05 + 0.1 * i, 0.75 + (0.12 if i % 2 else -0.12)) for i in range(9)]
        _paint_shapes(draw, w, h, [("line", points, body, max(3, h // 6)), ("ellipse", head_box, head)])
        return
    legs = [("line", [(x, 0.8), (x, 1.0)], BLACK, 2) for x in (0.15, 0.35, 0.5, 0.65)]
    eye = (head_box[0] + 0.6 * (head_box[2] - head_box[0]), head_box[1] + 0.3 * (head_box[3] - head_box[1]))
    nose = (head_box[2] - 0.04, head_box[1] + 0.55 * (head_box[3] - head_box[1]))
    _paint_shapes(draw, w, h, [*legs, ("ellipse", body_box, body), ("ellipse", head_box, head),
                               ("ellipse", (eye[0] - 0.04, eye[1] - 0.04, eye[0] + 0.04, eye[1] + 0.04),
                                BLACK),
                               ("ellipse", (nose[0] - 0.05, nose[1] - 0.04, nose[0] + 0.03, nose[1] + 0.04),
                                ORANGE if name == "a_3s.png" else BLACK)])


def _paint_person(draw: ImageDraw.ImageDraw, w: int, h: int, name: str) -> None:
    """A stick figure facing right: Mike in a blue shirt with brown hair, Jenny in a pink dress with yellow
    pigtails; the pose (k // 5) moves arms and legs, the expression (k % 5) the mouth and brows."""
    pose, expression = V.pose_expression(name)
    jenny = V.prefix(name) == "hb1"
    r = _head_radius(h)
    cx, hy = w / 2, r + 2
    neck, hip = hy + r, hy + r + 0.36 * min(h, 112)
    foot = h - 2
    shirt = (240, 110, 170, 255) if jenny else (60, 110, 220, 255)
    skin = (240, 200, 160, 255)
    line = {"fill": BLACK, "width": 3}
    # legs
    if pose in (4, 5):  # legs crossed / sitting: legs forward (to the right) on the ground
        draw.line([(cx, hip), (cx + 0.4 * w, hip), (cx + 0.45 * w, foot)] if pose == 5 else
                  [(cx, hip), (cx + 0.3 * w, foot), (cx - 0.3 * w, foot - 4)], **line)
        draw.line([(cx, hip), (cx + 0.45 * w, hip + 4)] if pose == 5 else [(cx, hip), (cx - 0.3 * w, foot),
                                                                           (cx + 0.3 * w, foot - 4)], **line)
    else:
        spread = {2: (0.05, 0.48), 3: (0.4, 0.4)}.get(pose, (0.15, 0.15))
        draw.line([(cx, hip), (cx - spread[0] * w, foot)], **line)
        end = (cx + spread[1] * w, hip + 0.35 * (foot - hip)) if pose == 2 else (cx + spread[1] * w, foot)
        draw.line([(cx, hip), end], **line)
    # body
    if jenny:
        dress = [(cx, neck), (cx + 0.3 * w, hip + 4), (cx - 0.3 * w, hip + 4)]
        draw.polygon(dress, fill=shirt, outline=BLACK)
    else:
        draw.rectangle([(cx - 0.18 * w, neck), (cx + 0.18 * w, hip)], fill=shirt, outline=BLACK)
    # arms
    shoulder = neck + 0.25 * (hip - neck)
    arms = {0: [(0.45, 0.0), (0.4, 0.1)], 1: [(0.3, -1.0), (-0.3, -1.0)], 2: [(0.35, 0.3), (-0.35, 0.3)],
            3: [(0.4, -0.3), (-0.4, 0.5)], 4: [(0.35, 0.6), (-0.35, 0.6)], 5: [(0.35, 0.6), (-0.3, 0.6)],
            6: [(0.35, -1.1), (-0.3, 0.8)]}[pose]
    for ax, ay in arms:
        draw.line([(cx, shoulder), (cx + ax * w, shoulder + ay * (hip - neck))], **line)
    # head, hair, face (the face looks right)
    draw.ellipse([(cx - r, hy - r), (cx + r, hy + r)], fill=skin, outline=BLACK)
    hair = (250, 210, 60, 255) if jenny else (110, 70, 30, 255)
    draw.chord([(cx - r, hy - r), (cx + r, hy + r)], 180, 360, fill=hair, outline=BLACK)
    if jenny:
        draw.ellipse([(cx - r - 4, hy - 2), (cx - r + 3, hy + 6)], fill=hair)
        draw.ellipse([(cx + r - 3, hy - 2), (cx + r + 4, hy + 6)], fill=hair)
    ex, ey = cx + 0.35 * r, hy + 0.1 * r
    draw.ellipse([(ex - 1.5, ey - 1.5), (ex + 1.5, ey + 1.5)], fill=BLACK)
    draw.ellipse([(cx + 0.85 * r, hy + 0.2 * r), (cx + 1.1 * r, hy + 0.45 * r)], fill=skin, outline=BLACK)
    mx, my, mw = cx + 0.35 * r, hy + 0.6 * r, 0.35 * r
    if expression == 0:  # angry: flat mouth, slanted brow
        draw.line([(mx - mw, my), (mx + mw, my)], fill=BLACK, width=2)
        draw.line([(ex - 3, ey - 5), (ex + 3, ey - 3)], fill=BLACK, width=2)
    elif expression == 1:  # big smile: open mouth
        draw.chord([(mx - mw, my - mw), (mx + mw, my + mw)], 0, 180, fill=RED, outline=BLACK)
    elif expression == 2:  # smiling
        draw.arc([(mx - mw, my - mw), (mx + mw, my + 0.5 * mw)], 20, 160, fill=BLACK, width=2)
    elif expression == 3:  # sad
        draw.arc([(mx - mw, my - 0.2 * mw), (mx + mw, my + mw)], 200, 340, fill=BLACK, width=2)
    else:  # scared: small open "o" and raised brow
        draw.ellipse([(mx - 0.5 * mw, my - 0.5 * mw), (mx + 0.5 * mw, my + 0.6 * mw)], fill=BLACK)
        draw.line([(ex - 3, ey - 4), (ex + 3, ey - 6)], fill=BLACK, width=2)


def _clipart_image(name: str) -> Image.Image:
    w, h = clipart_size(name)
    image = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    group = V.prefix(name)
    if group in ("hb0", "hb1"):
        _paint_person(draw, w, h, name)
    elif group == "a":
        _paint_animal(draw, w, h, name)
    else:
        _paint_shapes(draw, w, h, _SHAPES[name])
    return image


def _background() -> Image.Image:
    """500×400: a sky fading from cyan to pale down to the horizon at y = 190, grass below."""
    image = Image.new("RGBA", (V.CANVAS_W, V.CANVAS_H), (90, 160, 85, 255))
    draw = ImageDraw.Draw(image)
    for y in range(190):
        t = max(0.0, (y - 60) / 130)
        colour = (round(65 + 120 * t), round(225 - 5 * t), round(230 - 10 * t), 255)
        draw.line([(0, y), (V.CANVAS_W, y)], fill=colour)
    return image


def draw_cliparts(folder: str | Path) -> Path:
    """Write the world's ``Pngs/`` into ``folder``: the 126 clip-arts (RGBA, transparent), ``background.png``
    and the 4 interface images. Returns ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name in V.CLIPARTS:
        _clipart_image(name).save(folder / name)
    _background().save(folder / "background.png")
    for i, (name, size) in enumerate((("selected.png", (70, 70)), ("buttons.png", (68, 120)),
                                      ("MikeJenny.png", (68, 62)), ("title.png", (400, 21)))):
        image = Image.new("RGBA", size, _rgb(0.15 * i, 0.4, 0.95))
        ImageDraw.Draw(image).rectangle([(0, 0), (size[0] - 1, size[1] - 1)], outline=BLACK, width=2)
        image.save(folder / name)
    return folder


# ============================================================================================ set plans
_BALLS = ("t_0s.png", "t_2s.png", "t_3s.png", "t_4s.png", "t_5s.png", "t_6s.png")
_FLYING = ("s_0s.png", "s_1s.png", "s_6s.png", "s_7s.png")
_TREES = ("p_7s.png", "p_8s.png", "p_9s.png")
_GLASSES = ("c_8s.png", "c_9s.png")
_KICKING_POSE = 2
#: how a set's people stand (module docstring): at the large object / far apart / together
ARRANGEMENTS = ("at_large", "apart", "together")


@dataclass
class SetPlan:
    """The core description a set's 10 scenes share (roles: ``"mike"``, ``"jenny"``, ``"large"``)."""

    sky: str
    large: str
    people: dict[str, tuple[int, int]]  # role → (pose, expression)
    arrangement: str  # one of ARRANGEMENTS ("alone" for a single person away from the large object)
    order: tuple[str, ...]  # at_large: (the person at the large object, the other)
    faces: dict[str, bool]  # person → faces the other person
    sky_above: bool  # the sky object is above the large object (else anywhere in the sky)
    animals: list[tuple[str, str]] = field(default_factory=list)  # (name, target role: person or "large")
    clothing: list[tuple[str, str]] = field(default_factory=list)  # (name, wearer)
    #: (name, holder, "hold" | "kick" | "fly" | "by")
    items: list[tuple[str, str, str]] = field(default_factory=list)


def _pick(rng: np.random.Generator, options: Sequence, k: int | None = None):
    if k is None:
        return options[int(rng.integers(len(options)))]
    return [options[i] for i in rng.choice(len(options), size=k, replace=False)]


def _names(prefix: str) -> list[str]:
    return [n for n in V.CLIPARTS if V.prefix(n) == prefix]


def plan_set(rng: np.random.Generator) -> SetPlan:
    """Draw one set's core description (see the module docstring)."""
    roll = rng.random()
    roles = ["mike", "jenny"] if roll < 0.9 else (["mike"] if roll < 0.95 else ["jenny"])
    people = {role: (int(rng.integers(7)), int(rng.integers(5))) for role in roles}
    if len(roles) == 2:
        arrangement = _pick(rng, ARRANGEMENTS)
    else:
        arrangement = _pick(rng, ("at_large", "alone"))
    order = tuple(_pick(rng, (roles, roles[::-1])))
    faces = {role: len(roles) == 2 and bool(rng.random() < 0.5) for role in roles}
    plan = SetPlan(_pick(rng, _names("s")), _pick(rng, _names("p")), people, arrangement, order, faces,
                   bool(rng.random() < 0.5))
    capacity_clothing, capacity_items = min(2, 2 * len(roles)), len(roles)
    n_total = min(int(rng.integers(6, 10)), 2 + len(roles) + 2 + capacity_clothing + capacity_items)
    extra = n_total - 2 - len(roles)  # animals + clothing + items
    n_animals = 2 if extra - 1 > capacity_clothing + capacity_items else int(rng.integers(1, 3))
    rest = extra - n_animals
    n_clothing = min(capacity_clothing, int(rng.integers(0, rest + 1)))
    n_items = rest - n_clothing
    if n_items > capacity_items:
        n_items, n_clothing = capacity_items, rest - capacity_items
    for name in _pick(rng, _names("a"), n_animals):
        plan.animals.append((name, _pick(rng, (*roles, "large"))))
    hats = iter(_pick(rng, [n for n in _names("c") if n not in _GLASSES], 2))
    glasses = iter(_pick(rng, _GLASSES, 2))
    wearers = [(role, kind) for role in roles for kind in ("hat", "glasses")]
    for role, kind in _pick(rng, wearers, n_clothing):  # a hat and/or glasses per person, all different
        plan.clothing.append((next(hats if kind == "hat" else glasses), role))
    for holder, name in zip(_pick(rng, roles, n_items), _pick(rng, _names("e") + _names("t"), n_items)):
        mode = {"t_13s.png": "fly", "t_14s.png": "by"}.get(name, "hold")
        if name in _BALLS and rng.random() < 0.6:
            mode = "kick"
            people[holder] = (_KICKING_POSE, people[holder][1])
        elif mode == "hold" and people[holder][0] == _KICKING_POSE:
            people[holder] = (0, people[holder][1])
        plan.items.append((name, holder, mode))
    return plan


# ============================================================================================ scenes
@dataclass
class Placed:
    """One clip-art of a scene (pixels, depth, flip)."""

    name: str
    x: int
    y: int
    z: int = 0
    flip: int = 0


def _person_name(role: str, pose: int, expression: int) -> str:
    return f"{'hb0' if role == 'mike' else 'hb1'}_{5 * pose + expression}s.png"


def _clamp(v: float, low: int = 15, high: int = 485) -> int:
    return int(min(max(round(v), low), high))


def _people_x(plan: SetPlan, large_x: int, side: int, rng: np.random.Generator) -> dict[str, int]:
    """Where the people stand along x (module docstring); ``side``: the large object's (-1 left, +1 right)."""
    ri, roles = rng.integers, list(plan.people)
    if plan.arrangement == "at_large":  # large | first | second, from the edge towards the middle
        first = large_x - side * int(ri(90, 111))
        xs = {plan.order[0]: first}
        if len(roles) == 2:
            xs[plan.order[1]] = first - side * int(ri(80, 101))
        return xs
    if plan.arrangement == "apart":  # one person near each edge, the large object in between
        left, right = _pick(rng, (roles, roles[::-1]))
        return {left: 250 - int(ri(150, 191)), right: 250 + int(ri(150, 191))}
    if plan.arrangement == "together":  # side by side, on the other half of the canvas from the large object
        centre, gap = 250 - side * int(ri(20, 101)), int(ri(80, 101))
        left, right = _pick(rng, (roles, roles[::-1]))
        return {left: centre - gap // 2, right: centre + gap // 2}
    return {roles[0]: int(ri(80, 421))}


def sample_scene(plan: SetPlan, rng: np.random.Generator) -> tuple[list[Placed], dict[str, Placed]]:
    """One annotator's drawing of ``plan``: the clip-arts in group order and ``{role or name: Placed}``."""
    ri = rng.integers
    at: dict[str, Placed] = {}
    side = int(_pick(rng, (-1, 1)))  # the large object's side: -1 left, +1 right (a coin flip per scene)
    if plan.arrangement == "apart":
        large_x = 250 + int(ri(-25, 26))
    else:
        large_x = 250 + side * int(ri(150, 181))
        if rng.random() < 0.01:
            large_x = 250 + side * int(ri(252, 266))  # partly off the canvas
    far = bool(rng.random() < 0.5)  # the large object stands far away (higher up, smaller depth) or up front
    large_y, large_z = (int(ri(165, 186)), int(ri(1, 3))) if far else (int(ri(230, 251)), 0)
    large = at["large"] = Placed(plan.large, large_x, large_y, large_z, int(ri(0, 2)))
    high = bool(rng.random() < 0.5)
    sky_y = int(ri(35, 71)) if high else int(ri(110, 151))
    sky_x = large.x + int(ri(-20, 21)) if plan.sky_above else int(ri(40, 461))
    if not plan.sky_above and rng.random() < 0.02:
        sky_x = int(_pick(rng, (ri(-25, 0), ri(501, 526))))  # partly off the canvas
    at["sky"] = Placed(plan.sky, sky_x, sky_y, int(ri(0, 3)), int(ri(0, 2)))

    roles = list(plan.people)
    xs = _people_x(plan, large.x, side, rng)
    for role in roles:
        pose, expression = plan.people[role]
        if rng.random() < 0.25:
            expression = int(ri(5))
        name = _person_name(role, pose, expression)
        back = bool(rng.random() < 0.5)  # each person stands in the back (higher up) or in the front
        y = (int(ri(250, 263)) if back else int(ri(300, 316))) + (18 if pose in (4, 5) else 0)
        at[role] = Placed(name, _clamp(xs[role] + int(ri(-5, 6))), y, int(back), int(ri(0, 2)))
    for role in roles:
        other = next((r for r in roles if r != role), None)
        if plan.faces[role] and other is not None:
            at[role].flip = 0 if at[other].x > at[role].x else 1

    def facing(role: str) -> int:
        return 1 if at[role].flip == 0 else -1

    for name, target in plan.animals:
        if target == "large":
            x, y = _clamp(large.x + int(ri(-35, 36))), large.y + int(ri(60, 86))
            animal = Placed(name, x, y, int(ri(0, 2)), int(ri(0, 2)))
        else:  # beside the person, on the side away from the other person (either side when alone)
            person, other = at[target], next((at[r] for r in roles if r != target), None)
            d = int(_pick(rng, (-1, 1))) if other is None else (1 if person.x >= other.x else -1)
            x = _clamp(person.x + d * int(ri(50, 66)))
            animal = Placed(name, x, person.y + int(ri(20, 36)), person.z, 0 if person.x > x else 1)
        at[name] = animal
    for name, wearer in plan.clothing:
        person = at[wearer]
        dy = head_offset(person.name) + (1 if name in _GLASSES else -10)
        dx = facing(wearer) * (4 if name in _GLASSES else 3) + int(ri(-2, 3))
        at[name] = Placed(name, person.x + dx, person.y + dy + int(ri(-2, 3)), person.z, person.flip)
    for name, holder, mode in plan.items:
        person, d = at[holder], facing(holder)
        if mode == "kick":
            x, y = person.x + d * int(ri(32, 43)), person.y + int(ri(40, 51))
        elif mode == "fly":
            x, y = person.x + d * int(ri(50, 91)), int(ri(70, 131))
        elif mode == "by":
            x, y = person.x + d * int(ri(50, 71)), person.y + int(ri(20, 31))
        else:
            x = person.x + d * int(ri(26, 35))
            y = person.y + (-45 if name == "t_9s.png" else int(ri(-12, -1)))  # balloons float above the hand
        at[name] = Placed(name, _clamp(x, 5, 495), y, person.z, person.flip)
    placed = [at["sky"], large] + [at[r] for r in roles] + [at[n] for n, _ in plan.animals] + \
        [at[n] for n, _ in plan.clothing] + [at[n] for n, _, _ in plan.items]
    placed.sort(key=lambda p: V.GROUPS.index(V.group_of(p.name)))  # stable: Mike before Jenny
    return placed, at


# ============================================================================================ sentences
@dataclass
class Statement:
    """Something true of a scene, in a few wordings ``(sentence, (subject, relation[, object]))``; ``core``:
    it states the set's arrangement (file 1 always opens with one)."""

    weight: float
    wordings: list[tuple[str, tuple[str, ...]]]
    core: bool = False


_EXPRESSION_WORDS = (("angry", "mad"), ("laughing", "very happy"), ("smiling", "happy"), ("sad", "crying"),
                     ("scared", "afraid"))
_POSE_WORDS = (("reaching out",), ("raising {his} arms",), ("kicking",), ("running",),
               ("sitting with {his} legs crossed",), ("sitting", "sitting down"), ("waving",))


def _proper(role: str) -> str:
    return role.capitalize()


#: adjectives an annotator may put before a noun (``ADJECTIVE_P`` of the time): they make some relation
#: strings rare, so the out-of-distribution test subset is not empty
_ADJECTIVES = {"a": ("little", "big", "cute", "brown", "happy", "fluffy"),
               "p": ("big", "tall", "large", "huge", "old", "nice"),
               "s": ("big", "bright", "little", "white", "shiny", "far"),
               "c": ("funny", "big", "nice", "new", "shiny", "silly"),
               "e": ("big", "little", "yummy", "hot", "tasty", "fresh"),
               "t": ("big", "little", "new", "red", "shiny", "old")}
ADJECTIVE_P = 0.3
#: words an annotator may put after "is" (``MODIFIER_P`` of the time; the spatial ones in spatial relations)
_MODIFIERS, _SPATIAL_MODIFIERS = ("now", "also", "still"), ("right", "just")
MODIFIER_P = 0.35


def _noun(name: str, rng: np.random.Generator) -> str:
    word = V.WORDS[name]
    return f"{_pick(rng, _ADJECTIVES[V.prefix(name)])} {word}" if rng.random() < ADJECTIVE_P else word


def _the(name: str, rng: np.random.Generator) -> str:
    return f"the {_noun(name, rng)}"


def _a(name: str, rng: np.random.Generator) -> str:
    word = _noun(name, rng)
    return word if name in _GLASSES else f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


def _relation(weight: float, subject: str, relations: Sequence[str], obj: str,
              core: bool = False) -> Statement:
    """``subject relation obj.`` in each of the ``relations`` wordings."""
    return Statement(weight, [(f"{subject} {rel} {obj}.", (subject, rel, obj)) for rel in relations], core)


def _people_statements(plan: SetPlan, at: dict[str, Placed], large_w: str) -> list[Statement]:
    """The arrangement (core), the people's order and facing."""
    roles, out = list(plan.people), []
    if plan.arrangement == "at_large":
        at_large = (["is under", "is standing under", "is by"] if plan.large in _TREES
                    else ["is by", "is standing by", "is in front of", "is at"])
        out.append(_relation(4.0, _proper(plan.order[0]), at_large, large_w, core=True))
        if len(roles) == 2:
            out.append(_relation(2.0, _proper(plan.order[1]), ["is next to", "is beside", "is near"],
                                 _proper(plan.order[0])))
    if len(roles) < 2:
        return out
    a, b = _proper(plan.order[0]), _proper(plan.order[1])
    if plan.arrangement == "apart":
        out.append(_relation(4.0, a, ["is across from", "is far from", "is far away from"], b, core=True))
    elif plan.arrangement == "together":
        together = ["is next to", "is beside", "is standing beside", "is near"]
        out.append(_relation(4.0, a, together, b, core=True))
    left, right = (_proper(r) for r in sorted(roles, key=lambda r: at[r].x))
    if plan.arrangement == "apart":
        out.append(Statement(1.0, [(f"{left} is on the left.", (left, "is on", "the left")),
                                   (f"{right} is on the right.", (right, "is on", "the right")),
                                   (f"{left} is on the left side.", (left, "is on", "the left side"))]))
    else:
        out.append(Statement(1.0, [(f"{left} is left of {right}.", (left, "is left of", right)),
                                   (f"{left} is to the left of {right}.", (left, "is to the left of", right)),
                                   (f"{right} is right of {left}.", (right, "is right of", left)),
                                   (f"{right} is to the right of {left}.",
                                    (right, "is to the right of", left))]))
    for role in roles:
        if plan.faces[role]:
            other = _proper(next(r for r in roles if r != role))
            out.append(_relation(2.0, _proper(role), ["is facing", "is looking at"], other))
    return out


def _statements(plan: SetPlan, at: dict[str, Placed], rng: np.random.Generator) -> list[Statement]:
    """Every true statement about one scene as one annotator would word it (module docstring)."""
    out: list[Statement] = []
    sky, large = at["sky"], at["large"]
    sky_w, large_w = _the(plan.sky, rng), _the(plan.large, rng)
    in_sky = ["is in", "is flying in"] if plan.sky in _FLYING else ["is in"]
    out.append(_relation(1.0, sky_w, in_sky, "the sky"))
    height = "high" if sky.y < 90 else "low"
    out.append(_relation(2.0, sky_w, [f"is {height} in"], "the sky"))
    if large.z:  # far away
        out.append(Statement(2.5, [(f"{large_w} is in the back.", (large_w, "is in", "the back")),
                                   (f"{large_w} is far away.", (large_w, "is far away"))]))
    else:
        out.append(Statement(2.5, [(f"{large_w} is in the front.", (large_w, "is in", "the front")),
                                   (f"{large_w} is close.", (large_w, "is close"))]))
    if plan.sky_above:
        out.append(_relation(2.5, sky_w, ["is above", "is over"], large_w))
    elif sky.x < 180 or sky.x > 320:
        where = "left" if sky.x < 180 else "right"
        out.append(Statement(1.5, [(f"{sky_w} is on the {where}.", (sky_w, "is on", f"the {where}")),
                                   (f"{sky_w} is on the {where} side of the sky.",
                                    (sky_w, "is on", f"the {where} side"))]))
    if plan.arrangement == "apart":
        out.append(Statement(2.5, [(f"{large_w} is in the middle.", (large_w, "is in", "the middle")),
                                   (f"{large_w} is in the center.", (large_w, "is in", "the center"))]))
    else:
        where = "left" if large.x < 250 else "right"
        out.append(Statement(2.0, [(f"{large_w} is on the {where}.", (large_w, "is on", f"the {where}")),
                                   (f"{large_w} is on the {where} side.",
                                    (large_w, "is on", f"the {where} side"))],
                             core=plan.arrangement == "alone"))
    out += _people_statements(plan, at, large_w)
    for name, target in plan.animals:
        if target == "large":
            rels = (["is under", "is below", "is beneath", "is in front of"] if plan.large in _TREES
                    else ["is in front of", "is near", "is by"])
            out.append(_relation(3.0, _the(name, rng), rels, large_w))
        else:
            beside = ["is next to", "is beside", "is near", "is sitting by"]
            out.append(_relation(3.0, _the(name, rng), beside, _proper(target)))
    for name, wearer in plan.clothing:
        s, his, o = _proper(wearer), "his" if wearer == "mike" else "her", _a(name, rng)
        out.append(Statement(3.0, [(f"{s} is wearing {o}.", (s, "is wearing", o)),
                                   (f"{s} wears {o}.", (s, "wears", o)),
                                   (f"{s} has {o} on {his} head.", (s, "has on", o))]))
    for name, holder, mode in plan.items:
        s, o, a = _proper(holder), _the(name, rng), _a(name, rng)
        wordings = {"kick": [("is kicking", o), ("kicks", o)], "fly": [("is flying", a), ("is flying", o)],
                    "by": [("is sitting by", o), ("is next to", o)],
                    "hold": [("is holding", o), ("has", a), ("is carrying", o)]}[mode]
        out.append(Statement(3.0, [(f"{s} {rel} {obj}.", (s, rel, obj)) for rel, obj in wordings]))
    for role in plan.people:
        s, his = _proper(role), "his" if role == "mike" else "her"
        where = "back" if at[role].z else "front"
        out.append(Statement(1.5, [(f"{s} is in the {where}.", (s, "is in", f"the {where}")),
                                   (f"{s} is standing in the {where}.",
                                    (s, "is standing in", f"the {where}"))]))
        pose, expression = V.pose_expression(at[role].name)
        out.append(Statement(1.0, [(f"{s} is {w}.", (s, f"is {w}")) for w in _EXPRESSION_WORDS[expression]]))
        if pose != _KICKING_POSE:
            out.append(Statement(0.7, [(f"{s} is {w}.", (s, f"is {w}"))
                                       for w in (w.format(his=his) for w in _POSE_WORDS[pose])]))
    return out


def _describe(statements: list[Statement], rng: np.random.Generator, *, core_first: bool
              ) -> list[tuple[str, tuple[str, ...]]]:
    """One annotator's 3 sentences: with ``core_first`` a core statement, then statements drawn by weight
    without replacement; one wording each, the first letter capitalised, now and then no final "."."""
    first = [i for i, s in enumerate(statements) if s.core][:1] if core_first else []
    rest = [i for i in range(len(statements)) if i not in first]
    weights = np.array([statements[i].weight for i in rest])
    size = min(SENTENCES_PER_FILE - len(first), len(rest))
    drawn = rng.choice(len(rest), size=size, replace=False, p=weights / weights.sum())
    chosen = first + [rest[i] for i in drawn]
    out = []
    for i in chosen:
        sentence, fields = _pick(rng, statements[i].wordings)
        relation = fields[1] if len(fields) == 3 else ""
        if relation.startswith("is ") and rng.random() < MODIFIER_P:
            sided = any(w in " ".join(fields[1:]) for w in ("left", "right"))
            spatial = _SPATIAL_MODIFIERS if V.is_explicit(relation) and not sided else ()
            modifier = _pick(rng, _MODIFIERS + spatial)
            fields = (fields[0], f"is {modifier} {relation[3:]}", fields[2])
            sentence = sentence.replace(f" {relation} ", f" {fields[1]} ", 1)
        sentence = sentence[0].upper() + sentence[1:]
        if rng.random() < 0.1:
            sentence = sentence.rstrip(".")
        out.append((sentence, tuple(f[0].upper() + f[1:] if k == 0 else f for k, f in enumerate(fields))))
    return out


# ============================================================================================ files
def _type_fields(name: str) -> tuple[int, int]:
    """The raw ``type_idx`` (0..7 = s, p, hb0, hb1, a, c, e, t) and ``obj_idx`` (the number in the name)."""
    return V.TYPE_PREFIXES.index(V.prefix(name)), int(name.split("_")[1][:-5])


def write_release(root: str | Path, *, seed: int = 0, sets: int = DEFAULT_SETS) -> Path:
    """Write the world's raw release into ``root/AbstractScenes_v1.1/`` (see the module docstring) and return
    that folder. Deterministic: the same ``(seed, sets)`` gives the same bytes."""
    if sets < 1:
        raise ValueError(f"sets must be at least 1, got {sets}")
    release = Path(root) / RELEASE_DIR
    rng = np.random.default_rng(seed)
    scene_lines = [str(sets * SCENES_PER_SET)]
    sentence_lines: list[list[str]] = [[], []]
    tuple_lines: list[list[str]] = [[], []]
    ordinal = 0
    for set_idx in range(sets):
        plan = plan_set(rng)
        previous: list[list[tuple[str, tuple[str, ...]]]] = []
        for _ in range(SCENES_PER_SET):
            placed, at = sample_scene(plan, rng)
            files = [_describe(_statements(plan, at, rng), rng, core_first=k == 0) for k in range(2)]
            if ordinal == EMPTY_SCENE:  # an annotator who wrote sentences but left the canvas empty
                placed, files = [], previous or files
            scene_lines.append(f"{set_idx}\t{len(placed)}")
            for p in placed:
                type_idx, obj_idx = _type_fields(p.name)
                scene_lines.append(f"{p.name}\t{type_idx}\t{obj_idx}\t{p.x}\t{p.y}\t{p.z}\t{p.flip}")
            if ordinal != SILENT_SCENE:
                for k, described in enumerate(files):
                    for sent_idx, (sentence, fields) in enumerate(described):
                        sentence_lines[k].append(f"{ordinal}\t{sent_idx}\t{sentence}")
                        tuple_lines[k].append("\t".join((str(ordinal), str(sent_idx), *fields)))
                    sentence_lines[k].append("")
                    tuple_lines[k].append("")
            previous = files
            ordinal += 1
    release.mkdir(parents=True, exist_ok=True)
    (release / SCENES_FILE).write_text("\n".join(scene_lines) + "\n", encoding="utf-8")
    for k in range(2):
        for name, lines in ((SENTENCE_FILES[k], sentence_lines[k]), (TUPLE_FILES[k], tuple_lines[k])):
            (release / name).parent.mkdir(parents=True, exist_ok=True)
            (release / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    draw_cliparts(release / PNGS_DIR)
    return release


def scenes_world(seed: int = 0, sets: int = DEFAULT_SETS) -> Path:
    """The cached world (``world://scenes``): ``<worlds>/scenes-<seed>`` (``scenes-<seed>-<sets>sets`` for a
    non-default size) holding ``AbstractScenes_v1.1/`` and ``processed/``. Built on first use into a temporary
    sibling renamed into place, a ``.complete`` marker written last; a folder from another world version is
    rebuilt."""
    name = f"scenes-{seed}" if sets == DEFAULT_SETS else f"scenes-{seed}-{sets}sets"

    def write(folder: Path) -> None:
        write_release(folder, seed=seed, sets=sets)
        prepare_abstract_scenes(folder, folder / "processed")

    return build_world(worlds_dir() / name, {"version": VERSION, "seed": seed, "sets": sets}, write)
