"""An automatic stand-in for the thesis's user study: do a layout's clip-arts satisfy the spatial relations
its description states? **Ours, not in the thesis** (spec §6 "Automatic proxy" [P]).

The thesis asked people to tick, for 100 rendered test scenes, the spatial sentences that hold (ground truth
88 %, discrete HC 74.6 %, continuous HO 71.3 %). Here a sentence — or its ``subject=relation=object`` tuple
from ``TuplesText`` — is parsed into *subject(s), relation, object*, the words are mapped to the scene's
clip-arts with :data:`vocab.WORDS` (plus a few synonyms: "boy"/"he" → Mike, "girl"/"she" → Jenny, "ball" →
any ball, "tree" → any tree when no plain tree is there, plurals and articles tolerated), and the relation
becomes a geometric predicate on the clip-arts' pixel centres (y grows downward, the viewer's left/right) and,
for "facing", on the subject's flip (0 faces right, as in the real PNGs):

==============================================  ============================================================
relation words                                  predicate (``Thresholds`` holds the numbers)
==============================================  ============================================================
left of, to the left of, on the left (of)       ``x_s < x_o − margin``; without an object: left half
right of, …                                     ``x_s > x_o + margin``; without an object: right half
above, over, on top of, atop, higher than       ``y_s < y_o − margin``
below, under, underneath, beneath, lower than   ``y_s > y_o + margin``
on, sitting on, standing on                     ``y_s < y_o`` (not below the object's centre)
near, next to, beside, by, with, close to, in,  normalised distance (x/500, y/400) ``< near``
at, against; kicking, holding, throwing,
catching, playing with, eating, petting, …
far from, away from                             normalised distance ``≥ near``
wearing, wears, has on                          clothing just above the person: ``|x_s − x_o| ≤ wear_dx``
                                                and ``wear_dy[0] ≤ y_s − y_o ≤ wear_dy[1]``
in/over/on the sky or air; on the grass/ground  region: ``y < horizon_y`` (sky) / ``y > ground_min_y``
facing, looking at, watching, waving at, …      the subject faces the object's side: flip 0 and ``x_s < x_o``,
                                                or flip 1 and ``x_s > x_o`` (needs flips in the layout)
==============================================  ============================================================

Anything else is **not checkable** and not counted: relations the checker cannot decide from centres (in front
of, behind, between, across from, …; facing without flips), negated sentences, words that name no clip-art of
the layout, a subject and object that are the same clip-art. When a word names several clip-arts of the
layout (two balls) the relation holds if any pair does; "Mike and Jenny are near the tree" needs both.
:func:`relation_accuracy` macro-averages over scenes the fraction of checkable relations that hold (the user
study's per-scene macro-average); :func:`ground_truth_calibration` scores the ground-truth layouts, the
proxy's ceiling to compare with the 88 % human acceptance of ground truth.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from modalbridge.tasks.scenes import vocab

__all__ = ["THESIS_HUMAN_GT_ACCEPTANCE", "RelationCheck", "Thresholds", "check_relations", "check_statement",
           "ground_truth_calibration", "relation_accuracy", "relation_report", "scene_statements"]

#: share of ground-truth spatial sentences the thesis's raters accepted
THESIS_HUMAN_GT_ACCEPTANCE = 0.88

SKY, GROUND = "<sky>", "<ground>"  # pseudo clip-arts: regions of the background
_REGIONS = {"sky": SKY, "air": SKY, "grass": GROUND, "ground": GROUND}


@dataclass(frozen=True)
class Thresholds:
    """The numbers of the predicates (pixels on the 500×400 canvas unless stated). ``near`` is a normalised
    distance (x/500, y/400); ``horizon_y`` is where the real background's sky meets the grass (y ≈ 190)."""

    margin_px: float = 10.0
    near: float = 0.4
    wear_dx_px: float = 60.0
    wear_dy_px: tuple[float, float] = (10.0, 140.0)
    horizon_y: float = 190.0
    ground_min_y: float = 130.0


@dataclass(frozen=True)
class RelationCheck:
    """One statement judged on one layout. ``holds`` is None when it is not checkable (``reason`` says why);
    ``subjects``/``object`` are the clip-art names (or ``<sky>``/``<ground>``) the words were mapped to."""

    text: str
    key: str
    predicate: str | None
    subjects: tuple[str, ...]
    object: str | None
    holds: bool | None
    reason: str = ""

    @property
    def checkable(self) -> bool:
        return self.holds is not None


# -- lexicon -------------------------------------------------------------------------------------------------
_SYNONYMS = {  # ours: common words for the clip-arts beyond vocab.WORDS
    "boy": "mike", "he": "mike", "him": "mike", "girl": "jenny", "she": "jenny",
    "puppy": "dog", "kitten": "cat", "kitty": "cat", "burger": "hamburger", "hotdog": "hot dog",
    "plane": "airplane", "jet": "airplane", "sand box": "sandbox", "barbecue": "grill", "bbq": "grill",
    "campfire": "fire", "mitt": "glove", "soda": "drink", "cup": "drink", "juice": "drink",
    "lightning": "lightning cloud", "rain": "rain cloud",
}
_NOT_HEAD_ALIAS = {"dog"}  # "hot dog" must not answer to "dog"


def _build_lexicon() -> dict[str, tuple[frozenset[str], frozenset[str]]]:
    """phrase → (exact clip-art names, fallback names used only when no exact one is in the layout)."""
    exact: dict[str, set[str]] = {}
    for name, word in vocab.WORDS.items():
        exact.setdefault(word, set()).add(name)
    fallback: dict[str, set[str]] = {}
    for name, word in vocab.WORDS.items():
        head = word.split()[-1]
        if " " in word and head not in _NOT_HEAD_ALIAS:
            fallback.setdefault(head, set()).add(name)  # "tree" → pine/apple tree, "hat" → every hat
        if word.endswith("ball") and word != "ball":
            fallback.setdefault("ball", set()).add(name)  # baseball, basketball, football, … → "ball"
    fallback["balloon"] = exact["hot air balloon"] | exact["balloons"]
    fallback["bird"] = exact["duck"] | exact["owl"]
    fallback["helmet"] = exact["viking helmet"]
    for synonym, word in _SYNONYMS.items():
        exact.setdefault(synonym, set()).update(exact[word])
    phrases = set(exact) | set(fallback)
    return {p: (frozenset(exact.get(p, ())), frozenset(fallback.get(p, set()) - exact.get(p, set())))
            for p in phrases}


_LEXICON = _build_lexicon()


def _alternation(phrases: Iterable[str], plural: bool) -> re.Pattern:
    """Longest phrase first, whole words, optional plural ending."""
    ordered = sorted(phrases, key=len, reverse=True)
    suffix = r"(?:s|es)?" if plural else ""
    words = "|".join(re.escape(p).replace(r"\ ", r"\s+") + suffix for p in ordered)
    return re.compile(r"\b(" + words + r")\b")


_ENTITY_RE = _alternation([*_LEXICON, *_REGIONS], plural=True)

_NEAR_WORDS = ("near", "nearby", "next to", "beside", "besides", "by", "close to", "with", "adjacent to",
               "against", "in", "inside", "inside of", "at", "kicking", "kicks", "kick", "kicked", "holding",
               "holds", "hold", "throwing", "throws", "catching", "catches", "playing with", "plays with",
               "eating", "eats", "drinking", "drinks", "petting", "pets", "hugging", "hugs", "feeding",
               "feeds", "riding", "rides", "grilling on", "cooking on")
_FACING_WORDS = ("facing", "faces", "face", "looking at", "looks at", "watching", "watches", "staring at",
                 "pointing at", "waving at", "waving to", "yelling at", "smiling at", "talking to",
                 "looking toward", "looking towards")
_UNDECIDABLE = ("in front of", "behind", "between", "across from", "across", "around", "through", "along",
                "toward", "towards", "looking", "chasing", "chases", "following", "beyond", "outside",
                "under the shade of")
_RELATIONS: dict[str, str | None] = {
    **{w: "left" for w in ("left of", "to the left of", "on the left of", "on the left side of",
                           "to the left", "on the left", "left")},
    **{w: "right" for w in ("right of", "to the right of", "on the right of", "on the right side of",
                            "to the right", "on the right", "right")},
    **{w: "above" for w in ("above", "over", "on top of", "atop", "higher than", "up above")},
    **{w: "below" for w in ("below", "under", "underneath", "beneath", "lower than")},
    **{w: "on" for w in ("on", "onto", "sitting on", "standing on")},
    **{w: "near" for w in _NEAR_WORDS},
    **{w: "far" for w in ("far from", "away from", "far away from")},
    **{w: "wear" for w in ("wearing", "wears", "wear", "has on", "have on")},
    **{w: "facing" for w in _FACING_WORDS},
    **{w: None for w in _UNDECIDABLE},  # recognised, but not decidable from centres
}
_RELATION_RE = _alternation(_RELATIONS, plural=False)
_NEGATION_RE = re.compile(r"\b(not|never|no|nobody|nothing)\b")
_JOINERS = {"and", "the", "a", "an", "both", "his", "her", "their"}
_MAX_OBJECT_GAP = 3  # words allowed between the relation and its object ("next to the big tree")


_INTENSIFIER_RE = re.compile(  # "right next to", "just by": adverbs before a relation (not after "the")
    r"(?<!the )\b(right|just|directly|also|still|now) (?=(next|near|beside|by|under|over|above|below|beneath|"
    r"underneath|behind|in|on|at|sitting|standing|close|looking|facing|across|between|there|here|flying|"
    r"playing|holding|kicking)\b)")
_HAS_ON_HEAD_RE = re.compile(r"\b(has|have|had) (.+?) on (his|her|their|its) head\b")


def _normalise(text: str) -> str:
    """Lower-case, "n't" → " not", every non-alphanumeric character → space; drop adverbs before a relation
    ("*right* next to" is not "right of"); "has X on his head" → "is wearing X"."""
    text = re.sub(r"[^a-z0-9]+", " ", text.lower().replace("n't", " not")).strip()
    text = _INTENSIFIER_RE.sub("", text)
    return _HAS_ON_HEAD_RE.sub(r"is wearing \2", text)


@dataclass(frozen=True)
class _Mention:
    start: int
    end: int
    phrase: str


def _mentions(text: str) -> list[_Mention]:
    found = []
    for m in _ENTITY_RE.finditer(text):
        phrase = re.sub(r"\s+", " ", m.group(1))
        if phrase not in _LEXICON and phrase not in _REGIONS:  # plural form → singular entry
            phrase = next(p for p in (phrase[:-2], phrase[:-1]) if p in _LEXICON or p in _REGIONS)
        found.append(_Mention(m.start(), m.end(), phrase))
    return found


def _masked(text: str, mentions: list[_Mention]) -> str:
    """The text with mention spans blanked by '_' (same length), so relation words inside names ("hot
    *air* balloon") are not read as relations."""
    chars = list(text)
    for m in mentions:
        chars[m.start:m.end] = "_" * (m.end - m.start)
    return "".join(chars)


def _words(text: str) -> list[str]:
    return text.split()


# -- parsing -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Parsed:
    subjects: tuple[str, ...]  # phrases
    predicate: str | None
    object: str | None  # phrase, or None for a relation without object


def _subject_clause(text: str, before: list[_Mention]) -> list[_Mention]:
    """The last mention before the relation, with those joined to it by "and"/articles ("mike and jenny")."""
    clause = [before[-1]]
    for prev in reversed(before[:-1]):
        gap = _words(text[prev.end:clause[0].start])
        if any(w not in _JOINERS for w in gap):
            break
        clause.insert(0, prev)
    return clause


def _parse(text: str, subject_end: int | None) -> _Parsed | str:
    """Parse normalised ``text``; ``subject_end``: for a tuple, where its subject field ends (subjects are the
    mentions inside it), for a sentence None (subjects = the clause before the relation). A string is the
    reason it cannot be parsed."""
    if _NEGATION_RE.search(text):
        return "negated"
    mentions = _mentions(text)
    masked = _masked(text, mentions)
    for rel in _RELATION_RE.finditer(masked):
        if subject_end is not None and rel.start() < subject_end:
            continue
        before = [m for m in mentions if m.end <= (subject_end if subject_end is not None else rel.start())]
        if not before:
            continue
        subjects = before if subject_end is not None else _subject_clause(text, before)
        predicate = _RELATIONS[re.sub(r"\s+", " ", rel.group(1))]
        after = [m for m in mentions if m.start >= rel.end()]
        obj = None
        if after and len(_words(text[rel.end():after[0].start])) <= _MAX_OBJECT_GAP:
            obj = after[0].phrase
        return _Parsed(tuple(m.phrase for m in subjects), predicate, obj)
    if not mentions:
        return "no clip-art named"
    return "no relation word after a clip-art"


# -- geometry ------------------------------------------------------------------------------------------------
_CANVAS = np.array([vocab.CANVAS_W, vocab.CANVAS_H], dtype=np.float64)


def _pair_holds(predicate: str, s: np.ndarray, o: np.ndarray, t: Thresholds) -> bool | None:
    """Binary predicate on two ``(x, y, flip)`` clip-arts (pixels; flip NaN when unknown → ``facing`` is
    undecidable, None)."""
    dx, dy = s[0] - o[0], s[1] - o[1]
    if predicate == "left":
        return dx < -t.margin_px
    if predicate == "right":
        return dx > t.margin_px
    if predicate == "above":
        return dy < -t.margin_px
    if predicate == "below":
        return dy > t.margin_px
    if predicate == "on":
        return dy < 0
    if predicate == "facing":  # flip 0 faces right (the real PNGs and the world's), flip 1 faces left
        return None if np.isnan(s[2]) else bool(dx < 0) == (s[2] == 0)
    distance = float(np.hypot(*((s[:2] - o[:2]) / _CANVAS)))
    if predicate == "near":
        return distance < t.near
    if predicate == "far":
        return distance >= t.near
    if predicate == "wear":  # s = person, o = clothing above the person's centre
        return abs(dx) <= t.wear_dx_px and t.wear_dy_px[0] <= dy <= t.wear_dy_px[1]
    raise ValueError(f"unknown predicate {predicate!r}")


_REGION_TESTS = {(SKY, "on"): SKY, (SKY, "near"): SKY, (SKY, "above"): SKY,
                 (GROUND, "on"): GROUND, (GROUND, "near"): GROUND, (GROUND, "below"): GROUND,
                 (GROUND, "above"): SKY}


def _region_holds(region: str, s: np.ndarray, t: Thresholds) -> bool:
    return s[1] < t.horizon_y if region == SKY else s[1] > t.ground_min_y


def _half_holds(predicate: str, s: np.ndarray) -> bool:
    """left/right without an object (or of the sky): which half of the canvas."""
    return s[0] < vocab.CANVAS_W / 2 if predicate == "left" else s[0] > vocab.CANVAS_W / 2


# -- layouts -------------------------------------------------------------------------------------------------
def _png(name: str) -> str:
    return name if name.endswith(".png") else f"{name}.png"


def _xyf(value) -> np.ndarray:
    """(x, y) or (x, y, flip) → float64 (3,), flip NaN when not given."""
    v = np.asarray(value, dtype=np.float64).reshape(-1)
    if v.shape not in ((2,), (3,)):
        raise ValueError(f"a clip-art position must be (x, y) or (x, y, flip), got {v.tolist()}")
    return v if len(v) == 3 else np.append(v, np.nan)


def _placed(scene: Mapping, layout_px) -> list[tuple[str, np.ndarray]]:
    """The clip-arts judged, ``[(name, (x, y, flip))]``.

    ``layout_px`` None: the scene's elements at their ground truth (with their flips). A mapping: slot index
    (int, or a digit string from JSON) or clip-art name → (x, y) or (x, y, flip); names may be clip-arts the
    scene does not have (a generated scene). An (N, 2) or (N, 3) array aligned with the elements.
    """
    elements = scene.get("elements", [])
    names = [e["visual_name"] for e in elements]
    if layout_px is None:
        return [(e["visual_name"], _xyf((e["x"], e["y"], e.get("flip", np.nan)))) for e in elements]
    if isinstance(layout_px, Mapping):
        placed = []
        for key, xy in layout_px.items():
            if isinstance(key, str) and key.isdigit():
                key = int(key)
            if isinstance(key, int | np.integer):
                if not 0 <= key < len(names):
                    raise IndexError(f"layout slot {key} out of range: the scene has {len(names)} clip-arts")
                name = names[key]
            else:
                name = _png(str(key))
            placed.append((name, _xyf(xy)))
        return placed
    xy = np.asarray(layout_px, dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] not in (2, 3) or len(xy) < len(names):
        raise ValueError(f"layout array must be (N, 2) or (N, 3) with N ≥ {len(names)} clip-arts, "
                         f"got {xy.shape}")
    return [(name, _xyf(row)) for name, row in zip(names, xy, strict=False)]


def _candidates(phrase: str, placed: list[tuple[str, np.ndarray]]) -> list[int]:
    """Indices into ``placed`` of the clip-arts a phrase names (exact names first, then its fallbacks)."""
    exact, fallback = _LEXICON[phrase]
    for names in (exact, fallback):
        hits = [i for i, (name, _) in enumerate(placed) if name in names]
        if hits:
            return hits
    return []


def _all_any(verdicts: list[list[bool | None]]) -> bool | None:
    """Every subject must hold with some candidate pair; None when a subject's pairs are all undecidable."""
    per_subject = []
    for pairs in verdicts:
        known = [v for v in pairs if v is not None]
        if not known:
            return None
        per_subject.append(any(known))
    return all(per_subject)


# -- checking ------------------------------------------------------------------------------------------------
def check_statement(text: str | Sequence[str], placed: Sequence[tuple[str, Sequence[float]]], *,
                    key: str = "", is_tuple: bool | None = None, thresholds: Thresholds = Thresholds()) -> RelationCheck:
    """Judge one sentence, or one relation tuple (``"mike=kicks=ball"`` or a list of fields), on clip-arts
    ``placed`` = ``[(name, (x, y) or (x, y, flip))]`` in pixels. ``is_tuple`` defaults to "contains '='"."""
    if isinstance(text, str):
        fields = text.split("=") if (("=" in text) if is_tuple is None else is_tuple) else None
    else:
        fields = list(text)
    shown = text if isinstance(text, str) else "=".join(text)
    if fields is not None:
        subject = _normalise(fields[0])
        parsed = _parse(f"{subject} {_normalise(' '.join(fields[1:]))}".strip(), len(subject))
    else:
        parsed = _parse(_normalise(text), None)
    placed = [(name, _xyf(xy)) for name, xy in placed]

    def verdict(holds, reason="", predicate=None, subjects=(), obj=None):
        if holds is None and not reason:
            reason = "no facing direction (flip) in the layout"
        return RelationCheck(shown, key, predicate, tuple(subjects), obj, holds, reason)

    if isinstance(parsed, str):
        return verdict(None, parsed)
    predicate = parsed.predicate
    if predicate is None:
        return verdict(None, "relation not decidable from positions")
    subject_sets = [_candidates(p, placed) if p not in _REGIONS else [] for p in parsed.subjects]
    if not all(subject_sets):
        return verdict(None, "a subject names no clip-art of the layout", predicate)
    subjects = [placed[i][0] for s in subject_sets for i in s]
    if any(not np.isfinite(placed[i][1][:2]).all() for s in subject_sets for i in s):
        return verdict(None, "a clip-art has no position", predicate, subjects)
    region = _REGIONS.get(parsed.object)
    if predicate in ("left", "right") and (parsed.object is None or region is not None):
        holds = _all_any([[_half_holds(predicate, placed[i][1]) for i in s] for s in subject_sets])
        return verdict(holds, "", predicate, subjects, region)  # "on the left (side of the sky)"
    if parsed.object is None:
        return verdict(None, "no object", predicate, subjects)
    if region is not None:
        test = _REGION_TESTS.get((region, predicate))
        if test is None:
            return verdict(None, "relation to a region not decidable", predicate, subjects, region)
        holds = _all_any([[_region_holds(test, placed[i][1], thresholds) for i in s] for s in subject_sets])
        return verdict(holds, "", predicate, subjects, test)
    objects = _candidates(parsed.object, placed)
    if not objects:
        return verdict(None, "the object names no clip-art of the layout", predicate, subjects)
    if any(not np.isfinite(placed[j][1][:2]).all() for j in objects):
        return verdict(None, "a clip-art has no position", predicate, subjects)
    if predicate == "wear" and not all(vocab.group_of(placed[j][0]) == "clothing" for j in objects):
        predicate = "near"  # "wearing a glove": held, not worn on the head
    pairs = [[(i, j) for i in s for j in objects if i != j] for s in subject_sets]
    if not all(pairs):
        return verdict(None, "subject and object are the same clip-art", predicate, subjects)
    holds = _all_any([[_pair_holds(predicate, placed[i][1], placed[j][1], thresholds) for i, j in ps]
                      for ps in pairs])
    return verdict(holds, "", predicate, subjects, placed[objects[0]][0])


def _as_list(value) -> list:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


def scene_statements(scene: Mapping, source: str = "auto") -> list[tuple[str, str | list[str], bool]]:
    """``[(key, statement, is_tuple)]`` of a processed scene (``sentences``/``relations`` keyed
    ``"<k>_file<f>"``, or plain lists). ``source``: ``"relations"`` (tuples), ``"sentences"``, or ``"auto"``
    — per key the tuple when the scene has one, else the sentence (never both: one statement each)."""
    if source not in ("auto", "relations", "sentences"):
        raise ValueError(f"source must be 'auto', 'relations' or 'sentences', got {source!r}")

    def keyed(field: str) -> dict[str, list]:
        value = scene.get(field) or {}
        if isinstance(value, Mapping):
            return {str(k): _as_list(v) for k, v in value.items()}
        return {str(i): [v] for i, v in enumerate(_as_list(value))}

    sentences, relations = keyed("sentences"), keyed("relations")
    out = []
    for key in dict.fromkeys([*sentences, *relations]):
        use_tuples = source == "relations" or (source == "auto" and relations.get(key))
        items = relations.get(key, []) if use_tuples else sentences.get(key, [])
        out += [(key, item, bool(use_tuples)) for item in items]
    return out


def check_relations(scene: Mapping, layout_px=None, *, source: str = "auto",
                    thresholds: Thresholds = Thresholds()) -> list[RelationCheck]:
    """Judge every statement of a processed scene dict on a layout.

    ``layout_px``: None (the scene's own ground-truth positions and flips), a mapping slot index or clip-art
    name → (x, y) or (x, y, flip) pixels, or an (N, 2) / (N, 3) array aligned with ``scene["elements"]``
    ("facing" needs the flips). ``source``: see
    :func:`scene_statements`. Returns one :class:`RelationCheck` per statement, ``holds=None`` where not
    checkable.
    """
    placed = _placed(scene, layout_px)
    return [check_statement(text, placed, key=key, is_tuple=is_tuple, thresholds=thresholds)
            for key, text, is_tuple in scene_statements(scene, source)]


def _layouts(scenes: Sequence[Mapping], layouts) -> list:
    if layouts is None:
        return [None] * len(scenes)
    layouts = list(layouts)
    if len(layouts) != len(scenes):
        raise ValueError(f"{len(scenes)} scenes but {len(layouts)} layouts")
    return layouts


def relation_report(scenes: Sequence[Mapping], layouts=None, *, source: str = "auto",
                    thresholds: Thresholds = Thresholds()) -> dict[str, float | int | dict[str, float]]:
    """The proxy over a set of scenes: ``accuracy`` (per-scene fraction of checkable statements that hold,
    averaged over scenes with at least one), ``scenes_scored``, ``checked``, ``not_checkable``, ``held``,
    and ``per_predicate`` (micro fraction holding per predicate). ``layouts``: one per scene as in
    :func:`check_relations`, or None for the ground truth."""
    per_scene, by_predicate = [], {}
    checked = unchecked = held = 0
    for scene, layout in zip(scenes, _layouts(scenes, layouts), strict=True):
        results = check_relations(scene, layout, source=source, thresholds=thresholds)
        judged = [r for r in results if r.checkable]
        unchecked += len(results) - len(judged)
        checked += len(judged)
        held += sum(r.holds for r in judged)
        for r in judged:
            by_predicate.setdefault(r.predicate, []).append(r.holds)
        if judged:
            per_scene.append(sum(r.holds for r in judged) / len(judged))
    return {"accuracy": float(np.mean(per_scene)) if per_scene else math.nan, "scenes_scored": len(per_scene),
            "checked": checked, "not_checkable": unchecked, "held": held,
            "per_predicate": {p: float(np.mean(v)) for p, v in sorted(by_predicate.items())}}


def relation_accuracy(scenes: Sequence[Mapping], layouts=None, *, source: str = "auto",
                      thresholds: Thresholds = Thresholds()) -> float:
    """Fraction of checkable relations that hold on the layouts, macro-averaged over scenes (NaN when no scene
    has a checkable relation). See :func:`relation_report` for the counts behind it."""
    return relation_report(scenes, layouts, source=source, thresholds=thresholds)["accuracy"]


def ground_truth_calibration(scenes: Sequence[Mapping], *, source: str = "auto",
                             thresholds: Thresholds = Thresholds()) -> dict:
    """:func:`relation_report` of the ground-truth layouts — the proxy's ceiling on this data — with the
    thesis's human acceptance of ground truth (``thesis_human_gt`` = 0.88) beside it for comparison."""
    return {**relation_report(scenes, None, source=source, thresholds=thresholds),
            "thesis_human_gt": THESIS_HUMAN_GT_ACCEPTANCE}
