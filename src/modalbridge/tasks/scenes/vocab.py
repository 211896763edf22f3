"""The fixed vocabulary of Abstract Scenes v1.1 that every part of the scenes task shares: the 126 clip-arts,
their groups, Mike's and Jenny's poses and expressions, the words the world and the relation checker use for
them, the canvas and the 20-pixel position bins with their special ids.

Clip-art ids are **1-based** (0 = padding), in natural-sort order of the PNG names with the 5 interface files
dropped — the reference's ``visual2index``::

    a_0s..a_5s (1-6)  c_0s..c_9s (7-16)  e_0s..e_6s (17-23)  hb0_0s..hb0_34s (24-58)  hb1_0s..hb1_34s (59-93)
    p_0s..p_9s (94-103)  s_0s..s_7s (104-111)  t_0s..t_14s (112-126)

>>> clipart_id("a_0s.png"), clipart_id("hb0_0s.png"), clipart_id("p_0s.png"), clipart_id("t_14s.png")
(1, 24, 94, 126)
>>> x_bin(np.array([-5, 0, 19, 20, 499, 500, 612])).tolist(), y_bin(np.array([400, 401])).tolist()
([0, 0, 0, 1, 24, 25, 25], [20, 20])
"""

from __future__ import annotations

import re

import numpy as np

from modalbridge.core.paths import natural_key

# -- canvas and position bins ---------------------------------------------------------------------------------
CANVAS_W, CANVAS_H = 500, 400
BIN = 20
X_BINS, Y_BINS = 26, 21  # x bins 0..25 (x > 500 → 25), y bins 0..20
X_MASK, X_PAD, X_VOCAB = 26, 27, 28
Y_MASK, Y_PAD, Y_VOCAB = 21, 22, 23
O_MASK, O_PAD, O_VOCAB = 2, 3, 4
IGNORE = -100  # label of clip-arts that carry no loss (unselected by masking, padding)


def x_bin(x):
    """Pixel x → bin: 0 if x < 0, 25 if x > 500, else ⌊x/20⌋ (numpy or torch, element-wise)."""
    return _bin(x, CANVAS_W, X_BINS - 1)


def y_bin(y):
    """Pixel y → bin: 0 if y < 0, 20 if y > 400, else ⌊y/20⌋."""
    return _bin(y, CANVAS_H, Y_BINS - 1)


def _bin(v, size: int, last: int):
    if hasattr(v, "clamp"):  # torch
        return (v.clamp(0, size) // BIN).long().clamp(max=last)
    return np.minimum(np.floor_divide(np.clip(np.asarray(v), 0, size), BIN), last).astype(np.int64)


def bin_centre(b):
    """Bin → pixel of its centre, 20·b + 10 (works for real-valued bins of the continuous model too)."""
    return b * BIN + BIN // 2


# -- clip-arts ------------------------------------------------------------------------------------------------
#: files of ``Pngs/`` that are not clip-arts
UI_FILES = ("background.png", "selected.png", "buttons.png", "MikeJenny.png", "title.png")
#: raw ``type_idx`` field of ``Scenes_10020.txt`` → name prefix
TYPE_PREFIXES = ("s", "p", "hb0", "hb1", "a", "c", "e", "t")
_COUNTS = {"a": 6, "c": 10, "e": 7, "hb0": 35, "hb1": 35, "p": 10, "s": 8, "t": 15}


CLIPARTS: tuple[str, ...] = tuple(sorted((f"{p}_{k}s.png" for p, n in _COUNTS.items() for k in range(n)),
                                         key=natural_key))
NUM_CLIPARTS = len(CLIPARTS)  # 126
_ID = {name: i + 1 for i, name in enumerate(CLIPARTS)}

#: groups in the dataset's own ("human") order: sky, large, people, animals, clothing, food, toys
GROUPS = ("sky", "large", "people", "animals", "clothing", "food", "toys")
GROUP_PREFIXES = {"sky": ("s",), "large": ("p",), "people": ("hb0", "hb1"), "animals": ("a",),
                  "clothing": ("c",), "food": ("e",), "toys": ("t",)}
_PREFIX_GROUP = {p: g for g, ps in GROUP_PREFIXES.items() for p in ps}


def prefix(name: str) -> str:
    """``"hb0_14s.png"`` → ``"hb0"``."""
    return name.partition("_")[0]


def clipart_id(name: str) -> int:
    """1-based id of a clip-art PNG name; ``KeyError`` for an unknown name."""
    return _ID[name]


def clipart_name(index: int) -> str:
    """Name of a 1-based clip-art id."""
    return CLIPARTS[index - 1]


def group_of(name: str) -> str:
    """Group (one of :data:`GROUPS`) of a clip-art name."""
    return _PREFIX_GROUP[prefix(name)]


#: (127,) long: group position in :data:`GROUPS` per 1-based id (row 0, padding, is 7 = after every group)
GROUP_OF_ID = np.array([len(GROUPS)] + [GROUPS.index(group_of(n)) for n in CLIPARTS], dtype=np.int64)

MIKE_IDS = range(clipart_id("hb0_0s.png"), clipart_id("hb0_34s.png") + 1)  # 24..58
JENNY_IDS = range(clipart_id("hb1_0s.png"), clipart_id("hb1_34s.png") + 1)  # 59..93
#: 0-based indices (as the predictor's 126 outputs) of clip-arts that are not Mike or Jenny (56 of them)
OBJECT_INDICES = tuple(i - 1 for i in range(1, NUM_CLIPARTS + 1) if i not in MIKE_IDS and i not in JENNY_IDS)

POSES = ("arms right", "arms up", "kicking", "running", "legs crossed", "sitting", "waving")
EXPRESSIONS = ("angry", "big smile", "smiling", "sad", "scared")


def pose_expression(name: str) -> tuple[int, int]:
    """``hbX_ks.png`` → (pose k // 5, expression k % 5)."""
    k = int(re.fullmatch(r"hb[01]_(\d+)s\.png", name).group(1))
    return k // 5, k % 5


#: the word(s) a sentence uses for each clip-art (people: "mike"/"jenny"). Animals and sky objects follow the
#: informal names in circulation; the rest are ours, from looking at the images (documented in docs/scenes.md).
WORDS: dict[str, str] = {
    **{f"a_{k}s.png": w for k, w in enumerate(("bear", "cat", "dog", "duck", "owl", "snake"))},
    **{f"c_{k}s.png": w for k, w in enumerate(("cap", "crown", "chef hat", "pirate hat", "beanie",
                                               "propeller hat", "wizard hat", "viking helmet", "glasses",
                                               "sunglasses"))},
    **{f"e_{k}s.png": w for k, w in enumerate(("pie", "pizza", "hot dog", "ketchup", "mustard", "hamburger",
                                               "drink"))},
    **{f"hb0_{k}s.png": "mike" for k in range(35)},
    **{f"hb1_{k}s.png": "jenny" for k in range(35)},
    **{f"p_{k}s.png": w for k, w in enumerate(("bee", "slide", "sandbox", "grill", "swing", "tent", "table",
                                               "pine tree", "tree", "apple tree"))},
    **{f"s_{k}s.png": w for k, w in enumerate(("helicopter", "hot air balloon", "cloud", "sun",
                                               "lightning cloud", "rain cloud", "rocket", "airplane"))},
    **{f"t_{k}s.png": w for k, w in enumerate(("baseball", "bucket", "beach ball", "basketball", "soccer ball",
                                               "tennis ball", "football", "frisbee", "bat", "balloons", "glove",
                                               "shovel", "racket", "kite", "fire"))},
}

#: the 37 spatial words that make a sentence "explicit" (thesis Ch. 3, case-insensitive, whole words)
SPATIAL_WORDS = ("on", "next to", "above", "over", "below", "behind", "along", "through", "in", "in front of",
                 "near", "beyond", "with", "by", "inside of", "on top of", "down", "up", "beneath", "inside",
                 "left", "right", "under", "across from", "underneath", "atop", "across", "beside", "around",
                 "outside", "next", "against", "at", "between", "front", "aside", "adjacent")
SPATIAL_RE = re.compile(r"\b(" + "|".join(re.escape(w) for w in sorted(SPATIAL_WORDS, key=len, reverse=True))
                        + r")\b", re.IGNORECASE)


def is_explicit(sentence: str) -> bool:
    """Whether a sentence names a spatial relation (one of :data:`SPATIAL_WORDS`)."""
    return SPATIAL_RE.search(sentence) is not None
