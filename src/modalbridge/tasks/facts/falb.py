"""FaLB — the fact-linking benchmark's files (spec ``fact_linking.md`` §2): a streaming record reader, facet
discovery, triple strings, alias augmentation, and ``modalbridge data check|prepare facts``.

**Records** (card §2.3)::

    {"sentence": "Michael Jordan, who was born in Brooklyn, played for Chicago Bulls.",
     "extraction": ["M. J.", "played for", "the Bulls"],              # the (possibly alias-augmented) OIE triple
     "fact_ids": ["Q41421", "P54", "Q128109"],                       # gold [subject Q, predicate P, object Q]
     "org_extraction": ["Michael Jordan", "played for", "Chicago Bulls"]}   # optional: the OIE before aliasing

A facet file (``train_full.json``, ``test_transductive.json``, …) is ONE JSON array of records; our own files
may also be JSON Lines (``*.jsonl``, or a ``.json`` whose first character is ``{``); ``.gz`` / ``.bz2`` are
read through the decompressor. :func:`iter_falb` streams them (FaLB's ``train_full.json`` is 2.3 GB: it is never
loaded whole) and validates each record: ``extraction`` and ``fact_ids`` are required, ``extraction`` (and
``org_extraction`` when present) are 3 non-empty strings, ``fact_ids`` is ``[Q…, P…, Q…]`` (``Q``/``P`` then
ASCII letters, digits, ``_`` or ``-``), ``sentence`` is a string (``""`` when missing); unknown keys are
dropped. A bad record is a counted, logged skip (``counts`` kinds: ``bad json``, ``truncated file``, ``not an
object``, ``missing field``, ``bad extraction``, ``bad fact_ids``, ``bad org_extraction``, ``bad sentence``)
naming file, record and line, or a :class:`DataError` with ``strict=True``. After a malformed record the reader
resumes at the next line (files written one record per line lose only that record; a one-line array loses
the rest of the line).

**Facets** (:func:`facets`): found by glob, not a hard list — the FaLB files under ``root/falb/`` (the world's
layout), else directly under the root, else under each subfolder (``rebel/``, ``synthie/``: names
``rebel/test_inductive``). JSON files that are not FaLB files (``wikidata*``, ``*summary``, ``world``, …) are
left out.
**KG** (:func:`find_kg`): ``kg/wikidata_processed.json``, the ``kg/`` folder (KG JSON shards or a saved KG),
``wikidata_processed.json``, ``wikidata/`` or ``data/wikidata/`` under the root (read by
:meth:`~modalbridge.tasks.facts.kg.KnowledgeGraph.read`).

**Alias augmentation** (:func:`augment_aliases`, card §2.1): for an aligned record, every combination of
(the subject mention or one of the subject entity's usable aliases) × (the object mention or one of the object
entity's usable aliases), except the original pair, becomes a new record with the relation text, sentence and
``fact_ids`` unchanged and ``org_extraction`` = the original extraction: ``(|A_s| + 1)(|A_o| + 1) − 1`` new
records. Usable alias (the reference's filter): every character a letter, whitespace or ASCII punctuation
(aliases with digits are dropped) and, with a tokenizer, fewer than ``max_tokens`` (30) token ids, special
tokens included. Repeated aliases and an alias equal to the mention itself are left out (they would only
repeat a record).
"""

from __future__ import annotations

import json
import logging
import re
import string
from collections.abc import Callable, Iterable, Iterator, Mapping
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np

from modalbridge.core.errors import DataError
from modalbridge.datasets.check import MAX_LISTED, CheckReport
from modalbridge.io.records import (
    CHUNK_SIZE,
    SkipCounter,
    create_text,
    iter_json_array,
    iter_json_lines,
    open_text,
)
from modalbridge.tasks.facts.kg import KnowledgeGraph, convert_wikidata, parse_shard

__all__ = ["DEFAULTS", "FACET_SUFFIXES", "MAX_ALIAS_TOKENS", "SLOTS", "AliasFilter", "PreparedFacts",
           "alias_ok", "augment_aliases", "check_facts", "facets", "find_falb", "find_kg", "iter_augmented",
           "iter_falb", "parse_triple", "prepare_facts", "read_falb", "validate_record", "write_falb"]

log = logging.getLogger(__name__)

#: the slots of a triple, in order
SLOTS = ("subject", "relation", "object")
#: file endings of FaLB files (in order of preference when one facet has several)
FACET_SUFFIXES = (".json", ".jsonl", ".json.gz", ".jsonl.gz", ".json.bz2", ".jsonl.bz2")
#: file names (without suffix) next to FaLB files that are not FaLB files
_NOT_FACET = re.compile(r"^(wikidata.*|.*summary|index2.*|kg_columns|config|world|meta)$")
ENTITY_ID = re.compile(r"Q[0-9A-Za-z_-]+")
PREDICATE_ID = re.compile(r"P[0-9A-Za-z_-]+")
#: the reference keeps aliases shorter than this many tokenizer ids
MAX_ALIAS_TOKENS = 30
_ASCII_PUNCTUATION = frozenset(string.punctuation)
#: fact_ids checked against the KG per vectorised batch
_BATCH = 1 << 16
#: ``data prepare facts`` options and their defaults (``args`` may lack any of them)
DEFAULTS = {"wikidata": None, "shard": "0/1", "language": "en", "sitelink": None, "brkg": True}
KG_NAME = "wikidata_processed"


# ============================================================================================ records
def _triple_problem(value: Any, name: str) -> str | None:
    if not isinstance(value, list) or len(value) != 3:
        got = f"{len(value)} items" if isinstance(value, list) else type(value).__name__
        return f"{name} must be a list of 3 strings [subject, relation, object], got {got}"
    for slot, text in zip(SLOTS, value):
        if not isinstance(text, str):
            return f"{name} {slot} must be a string, got {type(text).__name__}"
        if not text.strip():
            return f"{name} {slot} is empty"
    return None


def validate_record(record: Any) -> tuple[dict | None, tuple[str, str, str] | None]:
    """``(clean record, None)`` or ``(None, (skip kind, field, message))`` for one FaLB record (module
    docstring)."""
    if not isinstance(record, dict):
        return None, ("not an object", "record", f"expected a JSON object, got {type(record).__name__}")
    missing = [name for name in ("extraction", "fact_ids") if name not in record]
    if missing:
        return None, ("missing field", missing[0], f"no {' and '.join(missing)} (a FaLB record needs sentence, "
                                                    "extraction, fact_ids)")
    problem = _triple_problem(record["extraction"], "extraction")
    if problem:
        return None, ("bad extraction", "extraction", problem)
    ids = record["fact_ids"]
    if not isinstance(ids, list) or len(ids) != 3 or not all(isinstance(i, str) for i in ids):
        return None, ("bad fact_ids", "fact_ids", f"must be 3 id strings [Q…, P…, Q…], got {ids!r:.80}")
    for slot, pattern, entry_id in zip(SLOTS, (ENTITY_ID, PREDICATE_ID, ENTITY_ID), ids):
        if not pattern.fullmatch(entry_id):
            want = "a predicate id P…" if pattern is PREDICATE_ID else "an entity id Q…"
            return None, ("bad fact_ids", "fact_ids", f"{slot} id {entry_id!r} is not {want}")
    sentence = record.get("sentence", "")
    if not isinstance(sentence, str):
        return None, ("bad sentence", "sentence", f"must be a string, got {type(sentence).__name__}")
    out = {"sentence": sentence, "extraction": list(record["extraction"]), "fact_ids": list(ids)}
    org = record.get("org_extraction")
    if org is not None:
        problem = _triple_problem(org, "org_extraction")
        if problem:
            return None, ("bad org_extraction", "org_extraction", problem)
        out["org_extraction"] = list(org)
    return out, None


def _is_jsonl(path: Path) -> bool:
    if ".jsonl" in path.suffixes:
        return True
    with open_text(path, "a FaLB file") as fh:
        while True:
            chunk = fh.read(4096)
            if not chunk:
                return False
            stripped = chunk.lstrip()
            if stripped:
                return stripped[0] == "{"


def iter_falb(path: str | Path, *, counts: dict | None = None, errors: list[DataError] | None = None,
              strict: bool = False, chunk_size: int = CHUNK_SIZE) -> Iterator[tuple[int, dict]]:
    """Stream the valid records of one FaLB file (module docstring): yields ``(record number, record)``
    (0-based position in the file, skipped records counted). Bad records are skipped, counted in ``counts``,
    logged and appended to ``errors`` (when given) — or raise a DataError with ``strict``."""
    path = Path(path)
    skip = SkipCounter(counts, errors, log)

    def bad(number: int, line: int, error: str | None) -> None:
        if error is None:
            skip("truncated file", path, line, f"the array ends without ']' after record {number - 1}")
        else:
            skip("bad json", path, line, f"record {number}: not valid JSON ({error})")

    on_bad = None if strict else bad
    if _is_jsonl(path):
        items = iter_json_lines(path, on_bad=on_bad, what="a FaLB JSON Lines file", noun="record")
    else:
        items = iter_json_array(path, chunk_size=chunk_size, on_bad=on_bad, lines=True, noun="record",
                                what="a FaLB file (a JSON array of records, or JSON Lines)")
    for number, line, record in items:
        clean, problem = validate_record(record)
        if problem is None:
            yield number, clean
            continue
        kind, field, message = problem
        if strict:
            raise DataError(f"record {number}: {message}", path=path, row=line, field=field)
        skip(kind, path, line, f"record {number}: {message}", field)


def read_falb(path: str | Path, **kwargs) -> list[dict]:
    """All valid records of a (small) FaLB file: ``[record for _, record in iter_falb(path, **kwargs)]``."""
    return [record for _, record in iter_falb(path, **kwargs)]


def write_falb(path: str | Path, records: Iterable[Mapping], *, jsonl: bool | None = None) -> int:
    """Write records as a FaLB file, streamed: one JSON array with one record per line, or JSON Lines
    (``jsonl``; default: by the ``.jsonl`` suffix); ``.gz`` / ``.bz2`` compressed by suffix. Returns the
    number of records written."""
    path = Path(path)
    jsonl = ".jsonl" in path.suffixes if jsonl is None else jsonl
    n = 0
    with create_text(path) as fh:
        if not jsonl:
            fh.write("[")
        for record in records:
            text = json.dumps(dict(record) if isinstance(record, Mapping) else record, ensure_ascii=False)
            fh.write(f"{text}\n" if jsonl else f"{',' if n else ''}\n{text}")
            n += 1
        if not jsonl:
            fh.write("\n]\n")
    return n


# ============================================================================================ triples
def parse_triple(text: str, *, path: str | Path | None = None, row: int | None = None) -> tuple[str, str, str]:
    """``"Michael Jordan | played for | Chicago Bulls"`` → ``("Michael Jordan", "played for", "Chicago
    Bulls")`` (slots stripped). Anything but exactly two ``|`` or an empty slot is a DataError (``path`` /
    ``row`` say where the text came from)."""
    if not isinstance(text, str):
        raise DataError(f"expected a triple string 'subject | relation | object', got {type(text).__name__}",
                        path=path, row=row)
    parts = text.split("|")
    if len(parts) != 3:
        raise DataError(f"expected 'subject | relation | object' (exactly two '|'), found {len(parts) - 1} "
                        f"in {text!r}", path=path, row=row)
    slots = tuple(p.strip() for p in parts)
    for slot, value in zip(SLOTS, slots):
        if not value:
            raise DataError(f"the {slot} of {text!r} is empty", path=path, row=row)
    return slots  # type: ignore[return-value]


# ============================================================================================ aliases
def alias_ok(alias: str) -> bool:
    """The reference's character filter: non-blank, every character a letter (any script), whitespace or
    ASCII punctuation — so aliases with digits or symbols are unusable."""
    return bool(alias.strip()) and all(c.isalpha() or c.isspace() or c in _ASCII_PUNCTUATION for c in alias)


class AliasFilter:
    """The alias filter (module docstring) with a memo of its answers (token counts are costly):
    ``AliasFilter(tokenizer=None, max_tokens=30)(alias) -> bool``. ``tokenizer``: a Hugging Face tokenizer (or
    any callable returning ``{"input_ids": [...]}``); None keeps the character filter only."""

    MEMO = 1 << 20

    def __init__(self, tokenizer: Callable | None = None, max_tokens: int = MAX_ALIAS_TOKENS):
        self.tokenizer, self.max_tokens = tokenizer, int(max_tokens)
        self._memo: dict[str, bool] = {}

    def __call__(self, alias: str) -> bool:
        keep = self._memo.get(alias)
        if keep is None:
            keep = alias_ok(alias) and (self.tokenizer is None or
                                        len(self.tokenizer(alias)["input_ids"]) < self.max_tokens)
            if len(self._memo) < self.MEMO:
                self._memo[alias] = keep
        return keep

    def usable(self, kg: KnowledgeGraph, entity_id: str, mention: str) -> list[str]:
        """The usable aliases of ``entity_id`` (none when the KG lacks it), without repeats or ``mention``."""
        if entity_id not in kg:
            return []
        return [a for a in dict.fromkeys(kg.aliases(entity_id)) if a != mention and self(a)]


def augment_aliases(record: Mapping, kg: KnowledgeGraph, *, tokenizer: Callable | None = None,
                    max_tokens: int = MAX_ALIAS_TOKENS, alias_filter: AliasFilter | None = None) -> list[dict]:
    """The alias-augmented copies of one aligned record (module docstring; the original is not included):
    ``(|A_s| + 1)(|A_o| + 1) − 1`` records, subject-major. ``alias_filter`` (reuse one across records for its
    memo) overrides ``tokenizer`` / ``max_tokens``. An entity the KG lacks has no aliases."""
    keep = alias_filter if alias_filter is not None else AliasFilter(tokenizer, max_tokens)
    subject, relation, obj = record["extraction"]
    subject_id, _, object_id = record["fact_ids"]
    subjects = [subject, *keep.usable(kg, subject_id, subject)]
    objects = [obj, *keep.usable(kg, object_id, obj)]
    original = list(record.get("org_extraction") or record["extraction"])
    out = []
    for i, (s, o) in enumerate(product(subjects, objects)):
        if i:  # (0, 0) is the original pair
            out.append({"sentence": record.get("sentence", ""), "extraction": [s, relation, o],
                        "fact_ids": list(record["fact_ids"]), "org_extraction": list(original)})
    return out


def iter_augmented(records: Iterable[Mapping], kg: KnowledgeGraph, **kwargs) -> Iterator[dict]:
    """Each record followed by its alias-augmented copies (:func:`augment_aliases`; ``kwargs`` go there, one
    :class:`AliasFilter` is shared)."""
    if "alias_filter" not in kwargs:
        kwargs["alias_filter"] = AliasFilter(kwargs.pop("tokenizer", None),
                                             kwargs.pop("max_tokens", MAX_ALIAS_TOKENS))
    for record in records:
        yield dict(record)
        yield from augment_aliases(record, kg, **kwargs)


# ============================================================================================ folders
def _facet_name(path: Path) -> str | None:
    for suffix in sorted(FACET_SUFFIXES, key=len, reverse=True):
        if path.name.endswith(suffix):
            name = path.name[:-len(suffix)]
            return None if not name or _NOT_FACET.match(name) else name
    return None


def _facet_files(folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    files = [f for f in folder.iterdir() if f.is_file()] if folder.is_dir() else []
    rank = {suffix: i for i, suffix in enumerate(FACET_SUFFIXES)}
    for file in sorted(files, key=lambda f: (min((rank[s] for s in FACET_SUFFIXES if f.name.endswith(s)),
                                                 default=len(rank)), f.name)):
        name = _facet_name(file)
        if name is None:
            continue
        if name in found:
            log.warning("%s: facet %r already read from %s; ignored", file, name, found[name].name)
            continue
        found[name] = file
    return dict(sorted(found.items()))


def facets(root: str | Path) -> dict[str, Path]:
    """``{facet name: file}`` of a FaLB folder (module docstring); a single file gives itself."""
    root = Path(root)
    if root.is_file():
        name = _facet_name(root)
        return {name or root.name: root}
    for folder in (root / "falb", root):
        found = _facet_files(folder)
        if found:
            return found
    nested = {}
    if root.is_dir():
        for sub in sorted(p for p in root.iterdir() if p.is_dir() and p.name not in ("kg", "wikidata")):
            nested.update({f"{sub.name}/{name}": file for name, file in _facet_files(sub).items()})
    return nested


def find_falb(root: str | Path) -> Path:
    """The folder (or file) whose :func:`facets` are read: ``root`` or ``root/falb``."""
    root = Path(root)
    return root / "falb" if _facet_files(root / "falb") else root


def find_kg(root: str | Path) -> Path | None:
    """Where the KG of a FaLB root is (module docstring), or None."""
    root = Path(root)
    candidates = [root / "kg" / f"{KG_NAME}{s}" for s in (".json", ".json.gz", ".json.bz2")]
    candidates.append(root / "kg")
    candidates += [folder / f"{KG_NAME}{s}" for folder in (root, root / "wikidata", root / "data" / "wikidata")
                   for s in (".json", ".json.gz", ".json.bz2")]
    if root.name == "falb":
        candidates.append(root.parent / "kg")
    for path in candidates:
        if path.is_file():
            return path
        if path.is_dir() and any(f.name == "kg_columns.json" or (f.suffix in (".json", ".gz", ".bz2")
                                                                  and not f.name.endswith(".summary.json"))
                                 for f in path.iterdir() if f.is_file()):
            return path
    return None


# ============================================================================================ check
class _Capped(list):
    """A problem list that keeps the first ``cap`` problems and counts the rest (``extra``), so a multi-GB file
    with millions of bad records does not fill the memory with errors."""

    def __init__(self, cap: int):
        super().__init__()
        self.cap, self.extra = cap, 0

    def append(self, problem: DataError) -> None:
        if len(self) < self.cap:
            super().append(problem)
        else:
            self.extra += 1


class _Scan:
    """One pass over every facet: records per facet, skips, and fact ids the KG lacks."""

    def __init__(self, root: Path, kg: KnowledgeGraph | None, problems: list[DataError],
                 collect_ids: bool = False):
        self.root, self.kg, self.problems = root, kg, problems
        self.counts: dict[str, int] = {}
        self.records: dict[str, int] = {}
        self.absent = 0
        self.ids: set[str] | None = set() if collect_ids else None

    def facet(self, name: str, path: Path) -> None:
        found = _Capped(MAX_LISTED)
        batch: list[tuple[int, list[str]]] = []
        n = 0
        try:
            for number, record in iter_falb(path, counts=self.counts, errors=found):
                n += 1
                batch.append((number, record["fact_ids"]))
                if len(batch) >= _BATCH:
                    self._check_ids(path, batch, found)
                    batch = []
        except DataError as exc:
            found.append(exc)
        self._check_ids(path, batch, found)
        self.records[name] = n
        self.problems.extend(found)
        if found.extra:
            self.problems.append(DataError(f"... and {found.extra} more problems in this file", path=path))

    def _check_ids(self, path: Path, batch: list[tuple[int, list[str]]], found: _Capped) -> None:
        if self.ids is not None:
            self.ids.update(i for _, ids in batch for i in ids)
        if self.kg is None or not batch:
            return
        entities = self.kg.entities.indices_of([ids[j] for _, ids in batch for j in (0, 2)]).reshape(-1, 2)
        predicates = self.kg.predicates.indices_of([ids[1] for _, ids in batch])
        rows = np.stack([entities[:, 0], predicates, entities[:, 1]], axis=1)  # (batch, 3), -1 = absent
        lacking_rows = np.flatnonzero((rows < 0).any(axis=1))
        self.absent += len(lacking_rows)
        for k in lacking_rows.tolist():
            number, ids = batch[k]
            lacking = [f"{slot} {i}" for slot, i, r in zip(SLOTS, ids, rows[k]) if r < 0]
            if len(found) < found.cap:
                found.append(DataError(f"record {number}: the KG has no {', '.join(lacking)}", path=path,
                                       field="fact_ids"))
            else:
                found.extra += 1


def _load_kg(root: Path, problems: list[DataError], summary: dict) -> KnowledgeGraph | None:
    path = find_kg(root)
    if path is None:
        problems.append(DataError("no KG: expected kg/wikidata_processed.json (the reference's KG JSON), a kg/ "
                                  "folder of KG JSON shards, or wikidata_processed.json here; convert a Wikidata "
                                  "dump with `modalbridge data prepare facts <root> --wikidata "
                                  "latest-all.json.bz2`", path=root))
        return None
    try:
        counts: dict = {}
        kg = KnowledgeGraph.read(path, counts=counts)
    except DataError as exc:
        problems.append(exc)
        return None
    summary.update({f"kg {k}": v for k, v in kg.stats().items()})
    summary.update({f"kg keys skipped ({k})": v for k, v in counts.items()})
    return kg


def _scan(root: Path, collect_ids: bool = False) -> tuple[list[DataError], dict, _Scan,
                                                           KnowledgeGraph | None]:
    if not root.is_dir():
        what = "is a file, expected the dataset folder" if root.exists() else "dataset folder not found"
        raise DataError(f"{what} (a FaLB folder: facet files such as train_full.json, and kg/)", path=root)
    problems: list[DataError] = []
    summary: dict = {}
    found = facets(root)
    if not found:
        problems.append(DataError("no FaLB files (*.json / *.jsonl arrays of records such as train_full.json, "
                                  "test_transductive.json) here, in falb/ or in its subfolders", path=root))
    kg = _load_kg(root if root.is_dir() else root.parent, problems, summary)
    scan = _Scan(root, kg, problems, collect_ids)
    for name, path in found.items():
        scan.facet(name, path)
    summary["facets"] = len(found)
    summary["records"] = sum(scan.records.values())
    summary.update({f"{name} records": n for name, n in scan.records.items()})
    summary.update(scan.counts)
    if kg is not None:
        summary["records with ids the KG lacks"] = scan.absent
    return problems, summary, scan, kg


def check_facts(root: str | Path) -> CheckReport:
    """``modalbridge data check facts <root>``: every problem of a FaLB folder and its KG — bad or truncated
    JSON, records that are not FaLB records (missing field or slot, bad ids), fact ids the KG lacks (per
    file, the first :data:`~modalbridge.datasets.check.MAX_LISTED` listed, then summarised), a missing or bad
    KG — and a summary (facets, records per facet, skips, KG entries)."""
    problems, summary, _, _ = _scan(Path(root))
    return CheckReport(problems, summary)


# ============================================================================================ prepare
class PreparedFacts(dict):
    """``{name: written path}`` (what ``data prepare`` prints); ``.summary``: the counts written."""

    summary: dict


def _option(args, name: str):
    value = getattr(args, name, None) if args is not None else None
    return DEFAULTS[name] if value is None else value


def prepare_facts(root: str | Path, out: str | Path | None = None, args=None) -> PreparedFacts:
    """``modalbridge data prepare facts <root>``. ``args`` (any attribute may be missing: :data:`DEFAULTS`):

    * with ``wikidata`` (a dump): convert it (:func:`~modalbridge.tasks.facts.kg.convert_wikidata`, options
      ``shard`` "i/n", ``language``, ``sitelink``) into ``<out>/kg/wikidata_processed.json`` — or
      ``wikidata_processed.shard-<i>-of-<n>.json`` for a shard; the KG reader reads the shards of ``kg/``
      together;
    * else: validate and index the FaLB folder — ``<out>/facts_summary.json`` (facets with their files and
      record counts, skips, KG size, ids the KG lacks, the first problems) and, with a KG and ``brkg``, the
      benchmark-restricted KG of every referenced id as a saved column store ``<out>/kg/brkg/``.

    ``out`` defaults to ``root``. A folder without any FaLB file is a DataError."""
    root = Path(root)
    out = Path(out) if out is not None else root
    written = PreparedFacts()
    dump = _option(args, "wikidata")
    if dump is not None:
        i, n = parse_shard(_option(args, "shard"))
        name = f"{KG_NAME}.json" if n == 1 else f"{KG_NAME}.shard-{i}-of-{n}.json"
        summary = convert_wikidata(dump, out / "kg" / name, (i, n), str(_option(args, "language")),
                                   sitelink=_option(args, "sitelink"))
        written["kg"] = out / "kg" / name
        written.summary = summary
        return written
    problems, summary, scan, kg = _scan(root, collect_ids=bool(_option(args, "brkg")))
    if not summary["facets"]:
        raise problems[0]
    found = facets(root)
    report = {"root": str(root), "facets": {name: {"path": str(path), "records": scan.records.get(name, 0)}
                                            for name, path in found.items()},
              "counts": summary, "problems": len(problems), "first problems": [str(p) for p in problems[:20]]}
    if kg is not None and scan.ids is not None:
        brkg = kg.subset(scan.ids, strict=False)
        written["brkg"] = brkg.save(out / "kg" / "brkg")
        report["brkg"] = brkg.stats()
        summary.update({f"brkg {k}": v for k, v in brkg.stats().items()})
    out.mkdir(parents=True, exist_ok=True)
    path = out / "facts_summary.json"
    path.write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
    written["summary"] = path
    written.summary = summary
    for problem in problems[:5]:
        log.warning("%s", problem)
    return written
