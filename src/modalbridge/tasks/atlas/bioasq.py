"""The BioASQ corpus of text2atlas (spec ``text2atlas.md`` §2.2, §4): a streaming reader of the BioASQ Task a
training data, the corpus build rules, the processed-record reader and the keyword masking of "+M".

**Raw input** (:func:`iter_bioasq`): BioASQ articles with the fields ``pmid, title, journal, year,
abstractText, meshMajor: [str]``, as

* a folder of ``*.ndjson`` files (one article per line, the layout the reference reads; natural-sorted), or
  one ``.ndjson`` file;
* the official one-file JSON ``{"articles": [{…}, {…}, …]}`` (``allMeSH_2020.json``, tens of GB) — parsed
  incrementally by :func:`~modalbridge.io.records.iter_json_array` (:class:`json.JSONDecoder` ``raw_decode``
  over a sliding text window read in 1 MB chunks), so memory stays bounded by the chunk and the largest
  single article (64 M characters at most); a bare JSON list of articles too.

``.gz`` (and ``.bz2``) files are read through the decompressor. Text is decoded as UTF-8 with undecodable bytes replaced; raw control
characters (tabs) inside strings are accepted (``strict=False``). What the reader skips, counts (``counts``:
``bad json``, ``not an object``, ``truncated file``) and logs with ``file:line`` (the reference skips nothing
and crashes): a line that is not valid JSON (a truncated line included), a line that is not a JSON object, a
truncated or malformed article of the one-file JSON (the reader resynchronises at the next line, as the
official file holds one article per line). :func:`build_corpus` skips, counts (``missing fields``) and logs
articles without a non-empty ``abstractText`` string or a ``meshMajor`` list of strings; the reference has no
such check.

**Build** (:func:`build_corpus`, the reference's ``allmesh_dataset.py``, dusan branch), in the card's order:

1. MeSH targets: an organ is a target when a lower-cased ``meshMajor`` term equals one of its aliases;
   articles without a target are dropped;
2. animal filter: articles with any :data:`ANIMAL_MESH` term are dropped;
3. a seeded shuffle, then a single-organ and a multi-organ pool; each pool is walked greedily, keeping an
   article when any of its organs is still under ``cap`` in that pool, and then counting it for all its organs;
4. length filter: ``len(tokenizer(text)["input_ids"]) < max_tokens`` ([CLS]/[SEP] included);
5. ``keywords`` (:func:`find_keywords`), 6. occurrence organs (:func:`occurring_organs`), 7. the patches of
   known false hits (:func:`apply_patches`).

**Records** (what :func:`build_corpus` returns and :func:`read_records` reads): JSON objects with ``pmid,
title, journal, year, text, mesh_terms, organ_names, organ_indices, keywords, occ_organ_names,
occ_organ_indices``; the index lists follow the atlas' organ order.

Deviations from the reference, and why:

* the seeds: shuffle and split (:func:`split_records`, 70/15/15 with scikit-learn's rounding) are seeded, the
  reference's split is not reproducible;
* aliases are searched as literal text (``re.escape``), so an alias with regex characters is matched as
  written (the reference pastes the alias into the pattern);
* :data:`ANIMAL_MESH`: the card names Animals, Rats, Mice, Dogs, Swine, rat and mouse strains and Disease
  Models, Animal; the rest of the 21 is our choice of the common animal headings. Terms are compared
  lower-cased with commas and repeated spaces removed, so "Disease Models, Animal" and "Disease Models Animal"
  are the same term;
* the patches' details are not published; ours are written out at :data:`PATCHES`;
* the masking tokeniser is a regex (words, hyphenated words, single punctuation marks) instead of NLTK's
  ``word_tokenize`` (needs the punkt download); the text is rebuilt with its own spacing, so only the masked
  words change.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from modalbridge.core.errors import DataError
from modalbridge.core.paths import natural_key
from modalbridge.io.records import (
    CHUNK_SIZE,
    SkipCounter,
    iter_json_array,
    iter_json_lines,
    read_json_file,
)

__all__ = ["ANIMAL_MESH", "PATCHES", "RECORD_FIELDS", "AliasIndex", "Patch", "alias_lists", "apply_patches",
           "article_problem", "bioasq_files", "build_corpus", "find_keywords", "is_animal", "iter_bioasq",
           "mask_keywords", "mesh_organs", "occurring_organs", "read_records", "split_records", "word_tokens"]

log = logging.getLogger(__name__)

#: the 21 animal MeSH headings whose articles are dropped (step 2). The card names Animals, Rats, Mice, Dogs,
#: Swine, the rat/mouse strains and Disease Models, Animal; Cattle … Zebrafish are our choice.
ANIMAL_MESH: tuple[str, ...] = (
    "Animals", "Rats", "Mice", "Dogs", "Swine", "Rats, Sprague-Dawley", "Rats, Wistar", "Mice, Inbred C57BL",
    "Mice, Knockout", "Mice, Inbred BALB C", "Disease Models, Animal", "Cattle", "Sheep", "Rabbits", "Cats",
    "Guinea Pigs", "Cricetinae", "Horses", "Primates", "Macaca mulatta", "Zebrafish")

#: the fields of a processed record, in the reference's order
RECORD_FIELDS = ("pmid", "title", "journal", "year", "text", "mesh_terms", "organ_names", "organ_indices",
                 "keywords", "occ_organ_names", "occ_organ_indices")
#: fields :func:`read_records` requires (the others default to "" / [])
REQUIRED_FIELDS = ("text", "organ_indices", "occ_organ_indices", "keywords")
#: the masking tokeniser: words (hyphen/apostrophe-joined parts kept together) and single punctuation marks
WORD_TOKEN = re.compile(r"\w+(?:[-'’]\w+)*|[^\w\s]")
MASK = "[MASK]"


def _term_key(term: str) -> str:
    """A MeSH term compared for the animal filter: lower-case, commas dropped, single spaces."""
    return " ".join(term.lower().replace(",", " ").split())


_ANIMAL_KEYS = frozenset(map(_term_key, ANIMAL_MESH))


def is_animal(mesh_terms: Iterable[str]) -> bool:
    """Whether any MeSH term is one of :data:`ANIMAL_MESH` (commas, case and spacing ignored)."""
    return any(_term_key(t) in _ANIMAL_KEYS for t in mesh_terms)


# ============================================================================================ reading
def _is_ndjson(path: Path) -> bool:
    return path.name.endswith((".ndjson", ".ndjson.gz", ".jsonl", ".jsonl.gz"))


def bioasq_files(path: str | Path) -> list[Path]:
    """The files :func:`iter_bioasq` reads: a folder's ``*.ndjson`` (natural order; else its ``*.json``), or
    the file itself."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError("BioASQ data not found (give a folder of *.ndjson, one .ndjson, or the one-file JSON "
                        '{"articles": [...]})', path=path)
    for patterns in (("*.ndjson", "*.ndjson.gz", "*.jsonl"), ("*.json", "*.json.gz")):
        files = sorted((f for p in patterns for f in path.glob(p) if f.is_file()),
                       key=lambda f: natural_key(f.name))
        if files:
            return files
    raise DataError("no *.ndjson (or *.json) BioASQ files in this folder", path=path)


def iter_bioasq(path: str | Path, *, counts: dict | None = None, errors: list[DataError] | None = None,
                chunk_size: int = CHUNK_SIZE) -> Iterator[tuple[Path, int, dict]]:
    """Stream BioASQ articles (module docstring): yields ``(file, line, article dict)`` where ``line`` is the
    1-based line the article starts on. Skips (bad JSON, non-objects, truncated articles) are counted in
    ``counts`` under their kind, logged, and appended to ``errors`` when given."""
    skip = SkipCounter(counts, errors, log)
    for file in bioasq_files(path):
        yield from _articles(file, skip, chunk_size)


def _articles(path: Path, skip: SkipCounter, chunk_size: int) -> Iterator[tuple[Path, int, dict]]:
    """One file's articles: ndjson line by line, or the official ``{"articles": [...]}`` (or a bare list)
    parsed incrementally (:mod:`modalbridge.io.records`); bad articles are skipped and the reader resynchronises
    at the next line."""

    def bad(ordinal: int, line: int, error: str | None) -> None:
        if error is None:
            skip("truncated file", path, line, "the articles list ends without ']'")
        else:
            skip("bad json", path, line, f"not valid JSON ({error}; truncated or malformed article)")

    if _is_ndjson(path):
        items = iter_json_lines(path, on_bad=bad, what="the BioASQ articles", noun="article")
    else:
        items = iter_json_array(path, key="articles", chunk_size=chunk_size, on_bad=bad, lines=True,
                                what='the BioASQ one-file JSON {"articles": [...]}')
    for _, line, article in items:
        if not isinstance(article, dict):
            skip("not an object", path, line, f"expected a JSON object, got {type(article).__name__}")
            continue
        yield path, line, article


# ============================================================================================ organ matching
def alias_lists(aliases: Mapping[str, Sequence[str]] | Sequence[Sequence[str]],
                 organs: Sequence[str] | None = None) -> list[list[str]]:
    """Alias lists indexed by organ: ``aliases[organs[i]]`` (the organ's own name when it has none), or the
    mapping's values in its order, or the sequence itself."""
    if isinstance(aliases, Mapping):
        if organs is None:
            return [list(v) for v in aliases.values()]
        return [list(aliases.get(name) or [name]) for name in organs]
    return [list(v) for v in aliases]


class AliasIndex:
    """The organ aliases prepared once for fast matching: ``alias_lists[i]`` are organ i's aliases.

    ``mesh`` — MeSH targets (lower-cased term == alias); ``keywords`` — :func:`find_keywords`; ``occurring`` —
    :func:`occurring_organs`."""

    def __init__(self, alias_lists: Sequence[Sequence[str]]):
        self.alias_lists = [list(dict.fromkeys(a for a in v if a)) for v in alias_lists]
        self.lookup: dict[str, list[int]] = {}
        for organ, names in enumerate(self.alias_lists):
            for alias in names:
                self.lookup.setdefault(alias.lower(), []).append(organ)
        ordered = dict.fromkeys(a for names in self.alias_lists for a in names)
        self.patterns = {a: re.compile(r"\w*" + re.escape(a) + r"\w*") for a in ordered}

    def mesh(self, mesh_terms: Iterable[str]) -> list[int]:
        return sorted({o for t in mesh_terms if isinstance(t, str) for o in self.lookup.get(t.lower(), ())})

    def keywords(self, text: str) -> list[str]:
        words: dict[str, None] = {}
        for alias, pattern in self.patterns.items():
            if alias not in text:  # the pattern matches exactly when the alias occurs: skip the regex
                continue
            for match in pattern.findall(text):
                for word in match.split():
                    word = word.strip(",.")
                    if word:
                        words[word] = None
        return list(words)

    def occurring(self, text: str) -> list[int]:
        return [o for o, names in enumerate(self.alias_lists) if any(text.find(a) != -1 for a in names)]


def mesh_organs(mesh_terms: Iterable[str], aliases) -> list[int]:
    """Sorted indices of the organs one of whose aliases equals a lower-cased MeSH term (step 1).
    ``aliases``: ``{organ: [alias, …]}`` in organ order, or alias lists indexed by organ."""
    return AliasIndex(alias_lists(aliases)).mesh(mesh_terms)


def find_keywords(text: str, aliases) -> list[str]:
    """The reference's keywords (step 5): each alias searched as ``\\w*alias\\w*`` in the RAW text
    (case-sensitive, substrings: "Liver" is missed, "deliver" hits liver), each match split on whitespace and
    stripped of ','/'.' ("small intestine" gives "small" and "intestine"). Distinct, in order of discovery."""
    return AliasIndex(alias_lists(aliases)).keywords(text)


def occurring_organs(text: str, aliases) -> list[int]:
    """Sorted indices of the organs with an alias occurring in ``text`` (``str.find``, case-sensitive)."""
    return AliasIndex(alias_lists(aliases)).occurring(text)


# ============================================================================================ patches
@dataclass(frozen=True)
class Patch:
    """A known false occurrence hit: words matching ``decoy`` (case-insensitive) contain an alias of
    ``organ`` without being about it. The organ is removed from the occurrence targets unless it is a MeSH
    target or an alias of it still occurs once the decoy words are blanked out; with ``drop_keywords`` the
    decoy words also leave the keywords."""

    name: str
    organ: str
    decoy: str
    drop_keywords: bool = False

    @property
    def regex(self) -> re.Pattern:
        return re.compile(self.decoy, re.IGNORECASE)


#: the card's four patches: (a) words containing "cardia" beyond the stomach part itself (cardiac, myocardial,
#: tachycardia, …) are heart words, not the stomach's cardia; (b) deliver* contains "liver" (and leaves the
#: keywords, as the card says); (c) colonisation/colonies/colony contain "colon"; (d) "gallbladder" and
#: "gall bladder" contain "bladder", an alias of the urinary bladder.
PATCHES: tuple[Patch, ...] = (
    Patch("cardia", "stomach", r"\w+cardia\w*|cardia\w+"),
    Patch("deliver", "liver", r"\w*deliver\w*", drop_keywords=True),
    Patch("colonies", "colon", r"\w*(?:coloni[sz]|colonies|colony)\w*"),
    Patch("gallbladder", "urinary bladder", r"\w*gall[- ]?bladder\w*"),
)


def apply_patches(record: dict, aliases: Mapping[str, Sequence[str]] | None = None,
                  counts: dict | None = None) -> dict:
    """Remove the known false occurrence hits of :data:`PATCHES` from ``record`` (in place; returned).
    ``aliases`` ({organ: [alias, …]}) lets a patched organ stay when another alias of it still occurs;
    without it the organ goes whenever a decoy word is present. ``counts["patched <name>"]`` counts removals.
    """
    text = record["text"]
    mesh = set(record.get("organ_names", ()))
    for patch in PATCHES:
        regex = patch.regex
        if not regex.search(text):
            continue
        if patch.drop_keywords:
            record["keywords"] = [k for k in record.get("keywords", []) if not regex.fullmatch(k)]
        names = record.get("occ_organ_names", [])
        if patch.organ not in names or patch.organ in mesh:
            continue
        if aliases is not None:
            blanked = regex.sub(lambda m: " " * len(m.group()), text)
            if any(blanked.find(a) != -1 for a in aliases.get(patch.organ, ()) if a):
                continue
        keep = [i for i, name in enumerate(names) if name != patch.organ]
        record["occ_organ_names"] = [names[i] for i in keep]
        record["occ_organ_indices"] = [record["occ_organ_indices"][i] for i in keep]
        if counts is not None:
            counts[f"patched {patch.name}"] = counts.get(f"patched {patch.name}", 0) + 1
    return record


# ============================================================================================ corpus
def article_problem(article: dict) -> tuple[str, str] | None:
    """``(field, what is wrong)`` for an article the build cannot use, else None."""
    text = article.get("abstractText")
    if not isinstance(text, str) or not text.strip():
        return "abstractText", "no abstractText (expected a non-empty string)"
    mesh = article.get("meshMajor")
    if not isinstance(mesh, list) or not all(isinstance(t, str) for t in mesh):
        return "meshMajor", "no meshMajor list of strings"
    return None


def _token_lengths(texts: list[str], tokenizer, batch: int = 256) -> np.ndarray:
    """(n,) int64: ``len(tokenizer(text)["input_ids"])`` per text, special tokens included (batched calls)."""
    from modalbridge.nn.bert import quiet_transformers

    lengths = np.zeros(len(texts), dtype=np.int64)
    with quiet_transformers():
        for start in range(0, len(texts), batch):
            ids = tokenizer(texts[start:start + batch])["input_ids"]
            lengths[start:start + batch] = [len(x) for x in ids]
    return lengths


def _greedy_cap(pool: list[tuple[int, list[int]]], cap: int) -> list[int]:
    """Step 3 on one pool in shuffled order: keep an article when any of its organs is under ``cap``, then
    count it for all its organs. Returns the kept article ids."""
    counts: dict[int, int] = {}
    kept = []
    for article, organs in pool:
        if any(counts.get(o, 0) < cap for o in organs):
            kept.append(article)
            for o in organs:
                counts[o] = counts.get(o, 0) + 1
    return kept


def build_corpus(articles: Iterable, organs: Sequence[str], aliases: Mapping[str, Sequence[str]], *,
                 cap: int = 500, seed: int = 0, tokenizer: Callable | None = None, max_tokens: int = 512,
                 summary: dict | None = None) -> list[dict]:
    """BioASQ articles → records (module docstring, steps 1–7). ``articles``: what :func:`iter_bioasq`
    yields, or plain article dicts. ``organs``/``aliases``: the atlas' (organ order = index order).
    ``tokenizer=None`` skips the length filter. Counts go into ``summary``. Only the articles with a MeSH
    organ are kept in memory (without their other fields)."""
    summary = {} if summary is None else summary
    skip = SkipCounter(summary, logger=log)
    index = AliasIndex(alias_lists(aliases, organs))
    for key in ("articles", "without organ", "animal"):
        summary.setdefault(key, 0)
    candidates: list[dict] = []
    targets: list[list[int]] = []
    for position, item in enumerate(articles):
        path, line, article = item if isinstance(item, tuple) else ("articles", position, item)
        summary["articles"] += 1
        problem = article_problem(article) if isinstance(article, dict) else ("article", "not an object")
        if problem is not None:
            skip("missing fields", path, line, problem[1], field=problem[0])
            continue
        found = index.mesh(article["meshMajor"])
        if not found:
            summary["without organ"] += 1
            continue
        if is_animal(article["meshMajor"]):
            summary["animal"] += 1
            continue
        candidates.append({"pmid": article.get("pmid"), "title": article.get("title") or "",
                           "journal": article.get("journal") or "", "year": article.get("year"),
                           "text": article["abstractText"], "mesh_terms": list(article["meshMajor"])})
        targets.append(found)
    order = np.random.default_rng(seed).permutation(len(candidates))
    single = [(int(i), targets[i]) for i in order if len(targets[i]) == 1]
    multi = [(int(i), targets[i]) for i in order if len(targets[i]) > 1]
    kept = _greedy_cap(single, cap) + _greedy_cap(multi, cap)
    summary.update({"single-organ candidates": len(single), "multi-organ candidates": len(multi),
                    "over cap": len(candidates) - len(kept)})
    if tokenizer is not None and kept:
        lengths = _token_lengths([candidates[i]["text"] for i in kept], tokenizer)
        summary["too long"] = int((lengths >= max_tokens).sum())
        kept = [i for i, n in zip(kept, lengths) if n < max_tokens]
    alias_map = dict(zip(organs, index.alias_lists))
    records = []
    for i in kept:
        article, found = candidates[i], targets[i]
        occ = index.occurring(article["text"])
        record = {**article, "organ_names": [organs[o] for o in found], "organ_indices": found,
                  "keywords": index.keywords(article["text"]),
                  "occ_organ_names": [organs[o] for o in occ], "occ_organ_indices": occ}
        apply_patches(record, alias_map, summary)
        records.append({name: record[name] for name in RECORD_FIELDS})
    summary["records"] = len(records)
    summary["single-organ records"] = sum(len(r["organ_indices"]) == 1 for r in records)
    summary["without occurrence organs"] = sum(not r["occ_organ_indices"] for r in records)
    return records


def split_records(records: Sequence[dict], seed: int = 0) -> dict[str, list[dict]]:
    """70 % train, then the rest halved into val and test, after a seeded shuffle. Sizes follow scikit-learn's
    ``train_test_split`` (the test part of each cut is rounded up): test = ⌈0.3 n⌉ → val = ⌊rest/2⌋."""
    n = len(records)
    held = math.ceil(0.3 * n)
    n_test = math.ceil(held / 2)
    n_train, n_val = n - held, held - n_test
    order = np.random.default_rng(seed).permutation(n)
    parts = np.split(order, [n_train, n_train + n_val])
    return {name: [records[i] for i in part] for name, part in zip(("train", "val", "test"), parts)}


# ============================================================================================ records
def _index_list(value, organs: Sequence[str] | None, fail) -> list[int]:
    if not isinstance(value, list):
        raise fail(f"expected a list of organ indices, got {type(value).__name__}")
    for j, x in enumerate(value):
        if isinstance(x, float) and math.isnan(x):
            raise fail(f"element {j} is NaN; expected an integer organ index")
        if isinstance(x, bool) or not isinstance(x, int):
            raise fail(f"element {j} is {x!r}; expected an integer organ index")
        if organs is not None and not 0 <= x < len(organs):
            raise fail(f"organ index {x} is not in the atlas, which has organs 0..{len(organs) - 1}")
    return value


def _name_list(value, fail, length: int | None = None) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise fail("expected a list of strings")
    if length is not None and len(value) != length:
        raise fail(f"has {len(value)} names for {length} organ indices")
    return value


def _validate_record(record, path: Path, position: int, organs: Sequence[str] | None) -> dict:
    def failure(name: str):
        return lambda message: DataError(f"record {position}: {message}", path=path, row=position, field=name)

    if not isinstance(record, dict):
        raise failure("record")(f"expected a JSON object, got {type(record).__name__}")
    missing = [name for name in REQUIRED_FIELDS if name not in record]
    if missing:
        raise failure(missing[0])(f"missing field(s) {', '.join(missing)} (a record needs "
                                  f"{', '.join(REQUIRED_FIELDS)})")
    out = {"pmid": record.get("pmid"), "title": record.get("title") or "",
           "journal": record.get("journal") or "", "year": record.get("year"), **record}
    if not isinstance(out["text"], str) or not out["text"].strip():
        raise failure("text")("expected a non-empty string")
    out["mesh_terms"] = _name_list(record.get("mesh_terms", []), failure("mesh_terms"))
    out["keywords"] = _name_list(record["keywords"], failure("keywords"))
    for prefix in ("", "occ_"):
        indices = _index_list(record[f"{prefix}organ_indices"], organs, failure(f"{prefix}organ_indices"))
        names_field = f"{prefix}organ_names"
        if names_field in record:
            names = _name_list(record[names_field], failure(names_field), len(indices))
            if organs is not None:
                wrong = [(n, organs[i]) for n, i in zip(names, indices) if n != organs[i]]
                if wrong:
                    raise failure(names_field)(f"name {wrong[0][0]!r} but the atlas' organ at that index is "
                                               f"{wrong[0][1]!r} (records from another atlas?)")
        else:
            out[names_field] = [organs[i] for i in indices] if organs is not None else []
    return out


def read_records(path: str | Path, *, organs: Sequence[str] | None = None, counts: dict | None = None,
                 errors: list[DataError] | None = None) -> list[dict]:
    """A processed split file → its records, validated (a DataError names the file, the record's 0-based
    position as ``row`` and the field). With ``organs`` (the atlas'), indices must be in range and names must
    match. Records with an empty ``organ_indices`` are skipped and counted (``counts["empty organ_indices"]``).
    With ``errors``, bad records are reported there and left out instead of raised."""
    path = Path(path)
    data = read_json_file(path, "record file")
    if not isinstance(data, list):
        raise DataError(f"expected a JSON list of records, got {type(data).__name__}", path=path)
    counts = {} if counts is None else counts
    records = []
    for position, record in enumerate(data):
        try:
            record = _validate_record(record, path, position, organs)
        except DataError as exc:
            if errors is None:
                raise
            errors.append(exc)
            continue
        if not record["organ_indices"]:
            counts["empty organ_indices"] = counts.get("empty organ_indices", 0) + 1
            log.debug("%s: record %d has no organ; skipped", path, position)
            continue
        records.append(record)
    return records


# ============================================================================================ masking
def word_tokens(text: str) -> list[str]:
    """The masking tokeniser's tokens: words (with inner hyphens/apostrophes) and punctuation marks."""
    return WORD_TOKEN.findall(text)


def mask_keywords(text: str, keywords: Sequence[str], rng: np.random.Generator, p: float = 0.5) -> str:
    """The "+M" masking (card §4): one Bernoulli(``p``) per DISTINCT keyword (drawn in order of first
    appearance), then every word token equal to a selected keyword becomes ``[MASK]``; the rest of the text,
    spacing included, is unchanged."""
    distinct = list(dict.fromkeys(keywords))
    if not distinct:
        return text
    chosen = {k for k, hit in zip(distinct, rng.random(len(distinct)) < p) if hit}
    if not chosen:
        return text
    return WORD_TOKEN.sub(lambda m: MASK if m.group() in chosen else m.group(), text)
