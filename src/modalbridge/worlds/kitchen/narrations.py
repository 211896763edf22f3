"""The real EPIC-KITCHENS-100 narrations behind the world's labels: the shipped subset in
``modalbridge/assets/epic_kitchens_100`` (:func:`asset_text`), its classes renumbered for the world
(:func:`load_vocabulary` → :class:`Vocabulary`) and the seeded draw of a (narration, verb, noun) triple per
segment (:class:`NarrationSampler`). How the subset was chosen: see the package docstring ("Selection")."""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

import numpy as np

_ASSETS = ("modalbridge", "assets/epic_kitchens_100")


@dataclass(frozen=True)
class Narration:
    """One real narration row of the shipped subset, with world class ids and its number of occurrences."""

    narration: str
    verb: str
    verb_class: int  # world id
    noun: str
    noun_class: int  # world id
    count: int


@dataclass
class Vocabulary:
    """The chosen EPIC classes renumbered 0..V-1 / 0..N-1 (ordered by real id) and their narrations."""

    verb_keys: list[str]  # world id → real key
    noun_keys: list[str]
    verb_real_ids: list[int]
    noun_real_ids: list[int]
    verb_categories: list[str]
    noun_categories: list[str]
    rows: list[Narration]


def asset_text(name: str) -> str:
    """Text of a file shipped in ``modalbridge/assets/epic_kitchens_100``."""
    return resources.files(_ASSETS[0]).joinpath(_ASSETS[1], name).read_text(encoding="utf-8")


def load_vocabulary(verbs: Sequence[str], nouns: Sequence[str]) -> Vocabulary:
    """Read the shipped EPIC subset and renumber the chosen classes 0..V-1 / 0..N-1 (ordered by real id)."""
    def classes(name: str, keys: Sequence[str]):
        table = {r["key"]: (int(r["id"]), r["category"]) for r in csv.DictReader(asset_text(name).splitlines())}
        chosen = sorted((table[k][0], k, table[k][1]) for k in keys)
        return [c[1] for c in chosen], [c[0] for c in chosen], [c[2] for c in chosen]

    verb_keys, verb_ids, verb_cats = classes("EPIC_100_verb_classes.csv", verbs)
    noun_keys, noun_ids, noun_cats = classes("EPIC_100_noun_classes.csv", nouns)
    verb_map = {real: i for i, real in enumerate(verb_ids)}
    noun_map = {real: i for i, real in enumerate(noun_ids)}
    rows = []
    for r in csv.DictReader(asset_text("narrations.csv").splitlines()):
        vc, nc = int(r["verb_class"]), int(r["noun_class"])
        if vc in verb_map and nc in noun_map:
            rows.append(Narration(r["narration"], r["verb"], verb_map[vc], r["noun"], noun_map[nc], int(r["count"])))
    present = {r.verb_class for r in rows}
    missing = [verb_keys[v] for v in range(len(verb_keys)) if v not in present]
    if missing:
        raise ValueError(f"no narration with verbs {missing} and the chosen nouns {list(nouns)}")
    return Vocabulary(verb_keys, noun_keys, verb_ids, noun_ids, verb_cats, noun_cats, rows)


class NarrationSampler:
    """Draws real narrations: verb ∝ count^T, noun | verb ∝ count(verb, noun)^T, narration ∝ count."""

    def __init__(self, vocab: Vocabulary, temperature: float):
        self.by_pair: dict[tuple[int, int], list[Narration]] = defaultdict(list)
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

    def draw(self, rng: np.random.Generator, verb: int | None = None) -> Narration:
        """One narration; ``verb`` (a world id) fixes its verb class instead of drawing it."""
        if verb is None:
            verb = self.verbs[rng.choice(len(self.verbs), p=self.verb_p)]
        noun = self.nouns_of[verb][rng.choice(len(self.nouns_of[verb]), p=self.noun_p[verb])]
        rows = self.by_pair[(verb, noun)]
        return rows[rng.choice(len(rows), p=_normalise([r.count for r in rows]))]


def _normalise(weights) -> np.ndarray:
    w = np.asarray(weights, np.float64)
    return w / w.sum()
