"""The reference knowledge graph of the facts task (spec ``fact_linking.md`` §2.1, §2.3, §10): a columnar,
memory-lean store of KG entries, its JSON reader/writer and the Wikidata dump converter.

**KG JSON** (the reference's ``wikidata_processed.json``, what :meth:`KnowledgeGraph.from_json` reads and
:meth:`KnowledgeGraph.to_json` writes): one JSON object ``{"Q41421": {"label": str, "description": str,
"aliases": [str, …]}, "P54": {…}, …}``. Keys starting with ``Q`` are entities, with ``P`` predicates; other keys
are skipped, counted and logged. The file is streamed (:func:`~modalbridge.io.records.iter_json_object`; 634 MiB
for the Large KG), ``.gz`` / ``.bz2`` are read through the decompressor. Literal ``<s>`` / ``</s>`` (left by the
reference's token decoding) are stripped from labels, descriptions and aliases; a missing description is ``""``
(:meth:`KnowledgeGraph.entry_text` writes it as ``None``, as the reference does), missing aliases ``[]``. An entry
without a label, a non-object entry, non-string fields and a repeated id are :class:`DataError` naming the id.

**Store** (:class:`KnowledgeGraph`): entities and predicates in two :class:`EntryTable` s, each a set of
:class:`StringColumn` s (all strings of a column UTF-8 encoded in one byte array plus an (n+1,) int64 offset
array; aliases as one column plus per-entry offsets). No Python object per entry: the 5.8 M-entity Large KG
takes ≈ 1 GB instead of the 5–8 GB of a dict of dicts. Ids are found by binary search in a sorted fixed-width
byte array (:meth:`EntryTable.indices_of`, vectorised). :meth:`KnowledgeGraph.save` writes the columns as
``.npy`` files (no pickle) that :meth:`KnowledgeGraph.load` memory-maps, for instant reloads of a large KG;
:meth:`KnowledgeGraph.read` takes either form (or a folder of KG JSON shards).

**Wikidata dump** (:func:`convert_wikidata`): ``latest-all.json.bz2`` / ``.gz`` — a JSON array written one
entity per line (``[``, ``{…},`` …, ``]``). Lines are streamed; ``shard=(i, n)`` keeps the lines whose 0-based
line number is ``i`` mod ``n`` (every shard still decompresses the whole stream; the JSON parsing, the dominant
cost, is split), so ``n`` processes convert the dump in parallel, each writing its own KG JSON (read them back
together with :meth:`KnowledgeGraph.read` on their folder). Items (``Q…``) and properties (``P…``) with a label
in ``language`` are kept with that language's description and aliases; other entity types (lexemes, …),
entities without such a label and lines that are not valid JSON (a cut download) are counted and skipped. A
finished shard writes ``<name>.summary.json`` beside its output, and a second run with the same dump, shard and
language returns that summary without work (resumable per shard).

Deviation from the reference: entry texts of a missing description use ``None`` like the reference, but the
description is not truncated to ~29 tokens here (the encoder's 32-token limit cuts it).
"""

from __future__ import annotations

import bz2
import gzip
import json
import logging
import os
import re
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

from modalbridge.core.errors import DataError
from modalbridge.core.paths import natural_key
from modalbridge.io.records import CHUNK_SIZE, MAX_LOGGED, create_text, iter_json_object

__all__ = ["ENT_TOKEN", "KINDS", "REL_TOKEN", "EntryTable", "KnowledgeGraph", "StringColumn", "clean_text",
           "convert_wikidata", "kind_of", "parse_shard", "write_kg_json"]

log = logging.getLogger(__name__)

#: the entry kinds, in the order of :attr:`KnowledgeGraph.tables`
KINDS = ("entity", "predicate")
#: the marker between label and description of an entity / predicate entry text (card §3)
ENT_TOKEN, REL_TOKEN = "<ENT>", "<REL>"
_MARKERS = {"entity": ENT_TOKEN, "predicate": REL_TOKEN}
_PREFIX = {"Q": "entity", "P": "predicate"}
#: literal sequence markers the reference's token decoding leaves in descriptions
_SEQ_MARKERS = re.compile(r"</?s>")
#: the file of a saved column store
META_FILE = "kg_columns.json"
_COLUMNS = ("ids", "labels", "descriptions", "aliases")


def clean_text(text: str) -> str:
    """``text`` without literal ``<s>`` / ``</s>`` and surrounding whitespace."""
    return _SEQ_MARKERS.sub("", text).strip() if "<" in text else text.strip()


def kind_of(entry_id: str) -> str:
    """``"entity"`` for a ``Q…`` id, ``"predicate"`` for a ``P…`` id; KeyError for anything else."""
    kind = _PREFIX.get(entry_id[:1]) if isinstance(entry_id, str) else None
    if kind is None:
        raise KeyError(f"unknown KG id {entry_id!r} (KG ids start with Q for entities, P for predicates)")
    return kind


# ============================================================================================ columns
def _ranges(starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The concatenated ranges ``starts[i] … starts[i] + lengths[i] - 1`` (flat int64 indices) and the (k+1,)
    offsets of each range in the result."""
    lengths = np.asarray(lengths, dtype=np.int64)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.repeat(np.asarray(starts, dtype=np.int64) - offsets[:-1], lengths) + np.arange(offsets[-1])
    return flat, offsets


class StringColumn(Sequence):
    """``n`` strings stored as UTF-8 in one byte array: string ``i`` is ``data[offsets[i]:offsets[i + 1]]``.

    ``data``: (total bytes,) uint8; ``offsets``: (n + 1,) int64, ``offsets[0] == 0``. Both may be read-only
    memory maps. Indexing with an int gives a ``str``, with a slice or an index array a new column."""

    def __init__(self, data: np.ndarray, offsets: np.ndarray):
        self.data, self.offsets = data, offsets

    @classmethod
    def from_strings(cls, strings: Iterable[str]) -> StringColumn:
        builder = _ColumnBuilder()
        for s in strings:
            builder.append(s)
        return builder.build()

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i):
        if isinstance(i, slice):
            return self.take(np.arange(len(self))[i])
        if isinstance(i, (np.ndarray, list)):
            return self.take(np.asarray(i, dtype=np.int64))
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"row {i} out of range for {n} strings")
        i = int(i) % n
        return self.data[self.offsets[i]:self.offsets[i + 1]].tobytes().decode("utf-8")

    def __iter__(self) -> Iterator[str]:
        return iter(self.tolist())

    def __repr__(self) -> str:
        head = ", ".join(repr(s) for s in self[:3]) if len(self) else ""
        return f"StringColumn({len(self)} strings: {head}{', …' if len(self) > 3 else ''})"

    def tolist(self) -> list[str]:
        text, o = self.data.tobytes(), self.offsets.tolist()
        return [text[o[i]:o[i + 1]].decode("utf-8") for i in range(len(o) - 1)]

    def lengths(self) -> np.ndarray:
        """(n,) int64 byte lengths."""
        return np.diff(self.offsets)

    def take(self, rows: np.ndarray) -> StringColumn:
        """The strings at ``rows`` ((k,) int), as a new column (vectorised gather)."""
        rows = np.asarray(rows, dtype=np.int64)
        flat, offsets = _ranges(self.offsets[rows], self.offsets[rows + 1] - self.offsets[rows])
        return StringColumn(np.asarray(self.data)[flat], offsets)

    @classmethod
    def concat(cls, columns: Sequence[StringColumn]) -> StringColumn:
        if not columns:
            return StringColumn(np.zeros(0, np.uint8), np.zeros(1, np.int64))
        shifts = np.cumsum([0] + [len(c.data) for c in columns[:-1]])
        offsets = np.concatenate([columns[0].offsets[:1]] + [c.offsets[1:] + s for c, s in zip(columns, shifts)])
        return StringColumn(np.concatenate([np.asarray(c.data) for c in columns]), offsets.astype(np.int64))

    def keys(self) -> np.ndarray:
        """(n,) fixed-width bytes array ``S<w>`` of the strings (w = the longest), for sorting / searching."""
        lengths = self.lengths()
        width = max(1, int(lengths.max())) if len(lengths) else 1
        matrix = np.zeros((len(self), width), dtype=np.uint8)
        rows = np.repeat(np.arange(len(self)), lengths)
        cols = np.arange(len(self.data)) - np.repeat(self.offsets[:-1], lengths)
        matrix[rows, cols] = self.data
        return matrix.view(f"S{width}").ravel()


class _ColumnBuilder:
    """Appends strings into a growing byte buffer and offset array (no Python object kept per string)."""

    def __init__(self):
        self.data, self.offsets = bytearray(), array("q", [0])

    def append(self, text: str) -> None:
        self.data += text.encode("utf-8")
        self.offsets.append(len(self.data))

    def build(self) -> StringColumn:
        return StringColumn(np.frombuffer(bytes(self.data), dtype=np.uint8).copy(),
                            np.frombuffer(self.offsets, dtype=np.int64).copy())


# ============================================================================================ tables
class EntryTable:
    """The entries of one kind (``"entity"`` or ``"predicate"``), columnar: row ``i`` has id ``ids[i]``, label
    ``labels[i]``, description ``descriptions[i]`` ("" when missing) and aliases ``alias_text[alias_offsets[i]
    : alias_offsets[i + 1]]``. ``alias_offsets``: (n + 1,) int64."""

    def __init__(self, kind: str, ids: StringColumn, labels: StringColumn, descriptions: StringColumn,
                 alias_text: StringColumn, alias_offsets: np.ndarray, *, index: tuple | None = None):
        self.kind, self.ids, self.labels, self.descriptions = kind, ids, labels, descriptions
        self.alias_text, self.alias_offsets = alias_text, alias_offsets
        self._index = index  # (sorted keys (n,) S<w>, order (n,) int64): ids[order[j]] == keys[j]
        self._surface: dict[str, list[int]] | None = None

    @classmethod
    def empty(cls, kind: str) -> EntryTable:
        return _TableBuilder(kind).build()

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        return f"EntryTable({self.kind}, {len(self)} entries)"

    def aliases(self, row: int) -> list[str]:
        start, stop = int(self.alias_offsets[row]), int(self.alias_offsets[row + 1])
        return [self.alias_text[j] for j in range(start, stop)]

    def alias_counts(self) -> np.ndarray:
        """(n,) int64 number of aliases per entry."""
        return np.diff(self.alias_offsets)

    # ------------------------------------------------------------------ lookup
    def index(self) -> tuple[np.ndarray, np.ndarray]:
        """The id search index ``(sorted keys, order)``, built on first use; a repeated id is a DataError."""
        if self._index is None:
            keys = self.ids.keys()
            order = np.argsort(keys, kind="stable")
            keys = keys[order]
            same = np.flatnonzero(keys[1:] == keys[:-1]) if len(keys) > 1 else np.zeros(0, np.int64)
            if len(same):
                first = keys[same[0]].decode("utf-8")
                raise DataError(f"id {first} occurs {int((keys == keys[same[0]]).sum())} times in the KG "
                                f"({len(same)} repeated id(s) in all); each id may appear once")
            self._index = (keys, order.astype(np.int64))
        return self._index

    def indices_of(self, ids: Sequence[str]) -> np.ndarray:
        """(k,) int64 rows of ``ids``, ``-1`` for an id not in the table (vectorised binary search)."""
        keys, order = self.index()
        out = np.full(len(ids), -1, dtype=np.int64)
        if not len(ids) or not len(keys):
            return out
        encoded = [str(i).encode("utf-8") for i in ids]
        width = keys.dtype.itemsize
        fits = np.array([len(e) <= width for e in encoded], dtype=bool)
        query = np.array([e if f else b"" for e, f in zip(encoded, fits)], dtype=keys.dtype)
        pos = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
        hit = fits & (keys[pos] == query)
        out[hit] = order[pos[hit]]
        return out

    def index_of(self, entry_id: str) -> int:
        """The row of ``entry_id``, -1 when absent."""
        return int(self.indices_of([entry_id])[0])

    def surface_rows(self, text: str) -> list[int]:
        """Rows whose label or an alias equals ``text`` (case-folded, spaces collapsed). The surface map is
        built on first use (one dict entry per distinct label/alias: fine for a BRKG or a world, ≈ 1–2 GB for
        the Large KG)."""
        if self._surface is None:
            surface: dict[str, list[int]] = {}
            counts = self.alias_counts()
            owners = np.repeat(np.arange(len(self)), counts).tolist()
            for row, label in enumerate(self.labels.tolist()):
                surface.setdefault(_fold(label), []).append(row)
            for row, alias in zip(owners, self.alias_text.tolist()):
                rows = surface.setdefault(_fold(alias), [])
                if not rows or rows[-1] != row:
                    rows.append(row)
            self._surface = surface
        return sorted(set(self._surface.get(_fold(text), ())))

    # ------------------------------------------------------------------ transforms
    def take(self, rows: np.ndarray) -> EntryTable:
        """The entries at ``rows`` ((k,) int, distinct), as a new table."""
        rows = np.asarray(rows, dtype=np.int64)
        alias_rows, alias_offsets = _ranges(self.alias_offsets[rows], self.alias_offsets[rows + 1] -
                                            self.alias_offsets[rows])
        return EntryTable(self.kind, self.ids.take(rows), self.labels.take(rows), self.descriptions.take(rows),
                          self.alias_text.take(alias_rows), alias_offsets)

    @classmethod
    def concat(cls, tables: Sequence[EntryTable]) -> EntryTable:
        kind = tables[0].kind
        shifts = np.cumsum([0] + [len(t.alias_text) for t in tables[:-1]])
        alias_offsets = np.concatenate([np.zeros(1, np.int64)] + [t.alias_offsets[1:] + s
                                                                  for t, s in zip(tables, shifts)])
        table = EntryTable(kind, StringColumn.concat([t.ids for t in tables]),
                           StringColumn.concat([t.labels for t in tables]),
                           StringColumn.concat([t.descriptions for t in tables]),
                           StringColumn.concat([t.alias_text for t in tables]), alias_offsets.astype(np.int64))
        table.index()  # refuses repeated ids
        return table

    def columns(self) -> dict[str, StringColumn]:
        return {"ids": self.ids, "labels": self.labels, "descriptions": self.descriptions,
                "aliases": self.alias_text}


def _fold(text: str) -> str:
    return " ".join(text.casefold().split())


class _TableBuilder:
    """Streams entries of one kind into columns."""

    def __init__(self, kind: str):
        self.kind = kind
        self.ids, self.labels, self.descriptions, self.aliases = (_ColumnBuilder() for _ in range(4))
        self.alias_offsets = array("q", [0])

    def add(self, entry_id: str, label: str, description: str, aliases: Iterable[str]) -> None:
        self.ids.append(entry_id)
        self.labels.append(label)
        self.descriptions.append(description)
        n = 0
        for alias in aliases:
            self.aliases.append(alias)
            n += 1
        self.alias_offsets.append(self.alias_offsets[-1] + n)

    def build(self) -> EntryTable:
        return EntryTable(self.kind, self.ids.build(), self.labels.build(), self.descriptions.build(),
                          self.aliases.build(), np.frombuffer(self.alias_offsets, dtype=np.int64).copy())


def _entry_fields(entry_id: str, value: Any, path: Path | str | None) -> tuple[str, str, list[str]]:
    """``(label, description, aliases)`` of one KG JSON entry, cleaned; a DataError naming the id otherwise."""
    if not isinstance(value, Mapping):
        raise DataError(f"KG entry {entry_id}: expected an object with label, description, aliases, got "
                        f"{type(value).__name__}", path=path, field=entry_id)
    label = value.get("label")
    if not isinstance(label, str) or not clean_text(label):
        got = "no label" if label is None or isinstance(label, str) else f"a label of type {type(label).__name__}"
        raise DataError(f"KG entry {entry_id} has {got} (every entity and predicate needs a non-empty label)",
                        path=path, field=f"{entry_id}.label")
    description = value.get("description")
    if description is None:
        description = ""
    elif not isinstance(description, str):
        raise DataError(f"KG entry {entry_id}: description must be a string, got {type(description).__name__}",
                        path=path, field=f"{entry_id}.description")
    aliases = value.get("aliases")
    if aliases is None:
        aliases = []
    elif not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise DataError(f"KG entry {entry_id}: aliases must be a list of strings", path=path,
                        field=f"{entry_id}.aliases")
    cleaned = [clean_text(a) for a in aliases]
    return clean_text(label), clean_text(description), [a for a in cleaned if a]


# ============================================================================================ the KG
class KnowledgeGraph:
    """Entities (``Q…``) and predicates (``P…``) with label, description and aliases (module docstring).

    Lookups by id (``label``, ``description``, ``aliases``, ``index_of``, ``entry_text``) raise ``KeyError``
    (``"unknown KG id …"``) for an id the KG lacks. Rows are positions in the id's own table
    (:attr:`entities` or :attr:`predicates`), the order of :attr:`entity_ids` / :attr:`predicate_ids`."""

    def __init__(self, entities: EntryTable | None = None, predicates: EntryTable | None = None):
        self.entities = entities if entities is not None else EntryTable.empty("entity")
        self.predicates = predicates if predicates is not None else EntryTable.empty("predicate")

    # ------------------------------------------------------------------ building
    @classmethod
    def from_entries(cls, entries: Iterable[tuple[str, Any]], *, path: Path | str | None = None,
                     counts: dict | None = None) -> KnowledgeGraph:
        """Build from ``(id, {"label", "description", "aliases"})`` pairs (a mapping's ``.items()`` or a
        streamed KG JSON). Keys other than ``Q…`` / ``P…`` are skipped and counted (``counts["not a Q/P
        id"]``)."""
        counts = {} if counts is None else counts
        builders = {kind: _TableBuilder(kind) for kind in KINDS}
        for entry_id, value in entries:
            kind = _PREFIX.get(entry_id[:1]) if isinstance(entry_id, str) and len(entry_id) > 1 else None
            if kind is None:
                n = counts["not a Q/P id"] = counts.get("not a Q/P id", 0) + 1
                if n <= MAX_LOGGED:
                    log.warning("%s: skipped KG key %r (ids start with Q or P)", path or "KG", entry_id)
                continue
            builders[kind].add(entry_id, *_entry_fields(entry_id, value, path))
        kg = cls(builders["entity"].build(), builders["predicate"].build())
        try:
            kg.entities.index()
            kg.predicates.index()
        except DataError as exc:
            raise DataError(exc.message, path=path) from None
        return kg

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> KnowledgeGraph:
        """Build from an in-memory KG JSON object ``{"Q1": {"label": …}, …}``."""
        return cls.from_entries(data.items())

    @classmethod
    def from_json(cls, path: str | Path, *, counts: dict | None = None,
                  chunk_size: int = CHUNK_SIZE) -> KnowledgeGraph:
        """Read a KG JSON (module docstring), streamed."""
        path = Path(path)
        pairs = iter_json_object(path, chunk_size=chunk_size, what='the KG JSON {"Q…": {"label": …}, …}')
        return cls.from_entries(pairs, path=path, counts=counts)

    @classmethod
    def concat(cls, graphs: Sequence[KnowledgeGraph]) -> KnowledgeGraph:
        """The entries of all ``graphs`` in order (e.g. the shards of a converted dump); a repeated id is a
        DataError."""
        if not graphs:
            return cls()
        return cls(EntryTable.concat([g.entities for g in graphs]),
                   EntryTable.concat([g.predicates for g in graphs]))

    @classmethod
    def read(cls, path: str | Path, *, counts: dict | None = None, mmap: bool = True) -> KnowledgeGraph:
        """A KG from a KG JSON file, a folder written by :meth:`save`, or a folder of KG JSON files (shards,
        read in natural order and concatenated; ``*.summary.json`` files are ignored)."""
        path = Path(path)
        if path.is_file():
            return cls.from_json(path, counts=counts)
        if (path / META_FILE).is_file():
            return cls.load(path, mmap=mmap)
        if path.is_dir():
            files = sorted((f for pattern in ("*.json", "*.json.gz", "*.json.bz2") for f in path.glob(pattern)
                            if not f.name.endswith(".summary.json")), key=lambda f: natural_key(f.name))
            if files:
                return cls.concat([cls.from_json(f, counts=counts) for f in files])
            raise DataError(f"no KG here: expected a KG JSON file (*.json) or a saved KG ({META_FILE})",
                            path=path)
        raise DataError("KG not found (expected wikidata_processed.json, a folder of KG JSON shards or a saved "
                        "KG folder)", path=path)

    # ------------------------------------------------------------------ access
    @property
    def tables(self) -> tuple[EntryTable, EntryTable]:
        return self.entities, self.predicates

    def table(self, kind: str) -> EntryTable:
        """:attr:`entities` for ``"entity"``, :attr:`predicates` for ``"predicate"``."""
        if kind == "entity":
            return self.entities
        if kind == "predicate":
            return self.predicates
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")

    @property
    def entity_ids(self) -> StringColumn:
        """The entity ids in row order (a sequence of str; ``list(kg.entity_ids)`` materialises it)."""
        return self.entities.ids

    @property
    def predicate_ids(self) -> StringColumn:
        return self.predicates.ids

    def __len__(self) -> int:
        return len(self.entities) + len(self.predicates)

    def __contains__(self, entry_id: object) -> bool:
        try:
            self._locate(entry_id)  # type: ignore[arg-type]
        except KeyError:
            return False
        return True

    def __repr__(self) -> str:
        return f"KnowledgeGraph({len(self.entities)} entities, {len(self.predicates)} predicates)"

    def _locate(self, entry_id: str, kind: str | None = None) -> tuple[EntryTable, int]:
        own = kind_of(entry_id)
        if kind is not None and kind != own:
            raise KeyError(f"unknown {kind} {entry_id!r} (a {own} id)")
        table = self.table(own)
        row = table.index_of(entry_id)
        if row < 0:
            raise KeyError(f"unknown KG id {entry_id!r} (not among the {len(table)} {own} entries of the KG)")
        return table, row

    def index_of(self, entry_id: str) -> int:
        """The row of ``entry_id`` in its own table (entities or predicates)."""
        return self._locate(entry_id)[1]

    def indices_of(self, ids: Sequence[str], kind: str) -> np.ndarray:
        """(k,) int64 rows of ``ids`` in the ``kind`` table, -1 where absent (vectorised)."""
        return self.table(kind).indices_of(ids)

    def label(self, entry_id: str) -> str:
        table, row = self._locate(entry_id)
        return table.labels[row]

    def description(self, entry_id: str) -> str:
        """The description, ``""`` when the KG has none."""
        table, row = self._locate(entry_id)
        return table.descriptions[row]

    def aliases(self, entry_id: str) -> list[str]:
        table, row = self._locate(entry_id)
        return table.aliases(row)

    def entry_text(self, entry_id: str, kind: str | None = None) -> str:
        """The KG entry text the pre-ranker encodes (card §3): ``"label <ENT> description"`` for an entity,
        ``"label <REL> description"`` for a predicate; a missing description reads ``None``. ``kind``
        ("entity" / "predicate"), when given, must be the id's kind."""
        table, row = self._locate(entry_id, kind)
        return f"{table.labels[row]} {_MARKERS[table.kind]} {table.descriptions[row] or 'None'}"

    def entry_texts(self, kind: str, rows: Sequence[int] | np.ndarray | None = None) -> list[str]:
        """The entry texts of ``rows`` (default: all) of the ``kind`` table, in that order — what an index
        build encodes in batches (``rows=range(start, stop)``)."""
        table = self.table(kind)
        if rows is not None:
            table = table.take(np.asarray(rows, dtype=np.int64))
        marker = _MARKERS[kind]
        return [f"{label} {marker} {description or 'None'}"
                for label, description in zip(table.labels.tolist(), table.descriptions.tolist())]

    def surface_ids(self, text: str, kind: str = "entity") -> list[str]:
        """Ids of the ``kind`` entries whose label or alias equals ``text`` (case-folded): more than one =
        a polysemous mention (card §2.2)."""
        table = self.table(kind)
        return [table.ids[row] for row in table.surface_rows(text)]

    def stats(self) -> dict[str, int]:
        """Entry, alias and missing-description counts."""
        out = {}
        for kind, table in zip(KINDS, self.tables):
            plural = "entities" if kind == "entity" else "predicates"
            out[plural] = len(table)
            out[f"{kind} aliases"] = len(table.alias_text)
            out[f"{plural} without description"] = int((table.descriptions.lengths() == 0).sum())
        return out

    # ------------------------------------------------------------------ subsets
    def subset(self, ids: Iterable[str], *, strict: bool = True) -> KnowledgeGraph:
        """The KG restricted to ``ids`` (entities and predicates mixed; repeats ignored) in this KG's row
        order — a benchmark-restricted KG (BRKG, card §2.1). An id the KG lacks is a DataError (naming the
        first ones) with ``strict``, else left out and counted in the log."""
        wanted: dict[str, list[str]] = {"entity": [], "predicate": []}
        bad = []
        for entry_id in dict.fromkeys(ids):
            kind = _PREFIX.get(entry_id[:1]) if isinstance(entry_id, str) else None
            (wanted[kind] if kind else bad).append(entry_id)
        tables = {}
        missing = list(bad)
        for kind in KINDS:
            rows = self.table(kind).indices_of(wanted[kind])
            missing += [i for i, r in zip(wanted[kind], rows.tolist()) if r < 0]
            tables[kind] = self.table(kind).take(np.unique(rows[rows >= 0]))
        if missing:
            message = (f"{len(missing)} id(s) are not in the KG ({len(self.entities)} entities, "
                       f"{len(self.predicates)} predicates), e.g. {', '.join(map(repr, missing[:5]))}")
            if strict:
                raise DataError(message)
            log.warning("subset: %s; left out", message)
        return KnowledgeGraph(tables["entity"], tables["predicate"])

    # ------------------------------------------------------------------ writing
    def items(self) -> Iterator[tuple[str, str, str, list[str]]]:
        """``(id, label, description, aliases)`` of every entry, entities first."""
        for table in self.tables:
            counts = table.alias_counts().tolist()
            aliases = table.alias_text.tolist()
            start = 0
            for entry_id, label, description, n in zip(table.ids.tolist(), table.labels.tolist(),
                                                       table.descriptions.tolist(), counts):
                yield entry_id, label, description, aliases[start:start + n]
                start += n

    def to_json(self, path: str | Path) -> Path:
        """Write the KG JSON (module docstring; one entry per line; ``.gz`` / ``.bz2`` compressed by suffix)."""
        return write_kg_json(path, self.items())

    def save(self, folder: str | Path) -> Path:
        """Write the columns as ``.npy`` files (and the id index) plus ``kg_columns.json``; no pickle."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        meta: dict = {"format": "modalbridge KG columns", "version": 1}
        for table in self.tables:
            keys, order = table.index()
            arrays = {f"{name}.{part}": getattr(column, part) for name, column in table.columns().items()
                      for part in ("data", "offsets")}
            arrays.update({"alias_offsets": table.alias_offsets, "keys": keys, "order": order})
            for name, values in arrays.items():
                np.save(folder / f"{table.kind}.{name}.npy", np.asarray(values), allow_pickle=False)
            meta[table.kind] = len(table)
        (folder / META_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")
        return folder

    @classmethod
    def load(cls, folder: str | Path, *, mmap: bool = True) -> KnowledgeGraph:
        """Read a folder written by :meth:`save` (memory-mapped unless ``mmap=False``)."""
        folder = Path(folder)
        if not (folder / META_FILE).is_file():
            raise DataError(f"not a saved KG (no {META_FILE})", path=folder)
        mode = "r" if mmap else None
        tables = []
        for kind in KINDS:
            def arr(name: str, kind: str = kind) -> np.ndarray:
                file = folder / f"{kind}.{name}.npy"
                try:
                    return np.load(file, mmap_mode=mode, allow_pickle=False)
                except (OSError, ValueError) as exc:
                    raise DataError(f"cannot read the saved KG column ({exc})", path=file) from None

            columns = [StringColumn(arr(f"{c}.data"), arr(f"{c}.offsets")) for c in _COLUMNS]
            tables.append(EntryTable(kind, *columns[:3], columns[3], arr("alias_offsets"),
                                     index=(arr("keys"), arr("order"))))
        return cls(*tables)


# ============================================================================================ KG JSON writing
def write_kg_json(path: str | Path, entries: Iterable[tuple[str, str, str, Sequence[str]]]) -> Path:
    """Write ``(id, label, description, aliases)`` entries as a KG JSON object, one entry per line, streamed
    (written to ``<path>.part`` and renamed when complete; ``.gz`` / ``.bz2`` compressed by suffix)."""
    path = Path(path)
    compressed = path.suffix if path.suffix in (".gz", ".bz2") else ""
    part = path.with_name(path.name.removesuffix(compressed) + ".part" + compressed)  # same compression
    with create_text(part) as fh:
        fh.write("{")
        sep = "\n"
        for entry_id, label, description, aliases in entries:
            entry = {"label": label, "description": description, "aliases": list(aliases)}
            fh.write(f"{sep}{json.dumps(entry_id)}: {json.dumps(entry, ensure_ascii=False)}")
            sep = ",\n"
        fh.write("\n}\n")
    os.replace(part, path)
    return path


# ============================================================================================ Wikidata
def parse_shard(shard: str | Sequence[int] | None) -> tuple[int, int]:
    """``"i/n"`` (or ``(i, n)``, or None = ``(0, 1)``) → ``(i, n)`` with ``0 ≤ i < n``."""
    if shard is None:
        return 0, 1
    try:
        i, n = (int(x) for x in (shard.split("/") if isinstance(shard, str) else shard))
    except (ValueError, TypeError):
        raise DataError(f"--shard must be i/n (e.g. 0/8), got {shard!r}") from None
    if n < 1 or not 0 <= i < n:
        raise DataError(f"--shard i/n needs 0 ≤ i < n, got {i}/{n}")
    return i, n


def _open_dump(path: Path) -> IO[bytes]:
    if path.suffix == ".bz2":
        return bz2.open(path, "rb")
    if path.suffix == ".gz":
        return gzip.open(path, "rb")
    return open(path, "rb")  # noqa: SIM115 (closed by the caller's with)


_CLAIMS = b',"claims":'


def _parse_entity(line: bytes) -> dict:
    """One dump line → the entity object. Only the part before ``"claims"`` is parsed when the label fields
    come first (the dumps' key order; ``,"claims":`` cannot occur inside a JSON string), else the whole line."""
    cut = line.find(_CLAIMS)
    if cut > 0:
        try:
            head = json.loads(line[:cut] + b"}")
        except json.JSONDecodeError:
            head = None
        if isinstance(head, dict) and "labels" in head:
            return head
    return json.loads(line)


def _language_value(field: Any, language: str) -> str:
    value = field.get(language) if isinstance(field, dict) else None
    text = value.get("value") if isinstance(value, dict) else None
    return clean_text(text) if isinstance(text, str) else ""


def _convert_lines(fh: IO[bytes], shard: tuple[int, int], language: str, counts: dict, dump: Path,
                   sitelink: str | None = None) -> Iterator[tuple[str, str, str, list[str]]]:
    i, n = shard
    site = re.compile(rb'"site":\s*"' + re.escape(sitelink.encode()) + rb'"') if sitelink else None
    for number, line in enumerate(fh):
        counts["lines"] += 1
        if number % n != i:
            continue
        line = line.strip()
        if line.endswith(b","):
            line = line[:-1]
        if line in (b"", b"[", b"]"):
            continue
        counts["lines read"] += 1
        try:
            entity = _parse_entity(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            k = counts["bad json"] = counts["bad json"] + 1
            if k <= MAX_LOGGED:
                log.warning("%s:%d: skipped (not valid JSON: %s)", dump, number + 1, exc)
            continue
        entry_id = entity.get("id") if isinstance(entity, dict) else None
        kind = _PREFIX.get(entry_id[:1]) if isinstance(entry_id, str) else None
        if kind is None or entity.get("type") not in ("item", "property"):
            counts["other type"] += 1
            continue
        if site is not None and kind == "entity" and not site.search(line):
            counts["no sitelink"] += 1
            continue
        label = _language_value(entity.get("labels"), language)
        if not label:
            counts["no label"] += 1
            continue
        aliases = entity.get("aliases")
        aliases = aliases.get(language, []) if isinstance(aliases, dict) else []
        names = [clean_text(a["value"]) for a in aliases if isinstance(a, dict) and isinstance(a.get("value"), str)]
        counts["entities" if kind == "entity" else "predicates"] += 1
        yield entry_id, label, _language_value(entity.get("descriptions"), language), [a for a in names if a]


def _summary_path(out: Path) -> Path:
    name = out.name
    for suffix in (".gz", ".bz2", ".json"):
        name = name.removesuffix(suffix)
    return out.with_name(name + ".summary.json")


def convert_wikidata(dump: str | Path, out: str | Path, shard: str | Sequence[int] | None = (0, 1),
                     language: str = "en", *, sitelink: str | None = None, resume: bool = True) -> dict:
    """Convert a Wikidata JSON dump (module docstring) into the KG JSON ``out``. ``shard``: ``(i, n)`` or
    ``"i/n"``. Returns the summary (also written to ``<out name>.summary.json``): lines, lines read, entities,
    predicates, skips (``no label``, ``other type``, ``bad json``, ``no sitelink``). ``sitelink`` (e.g.
    ``"enwiki"``): keep only items with a sitelink to that wiki — the card's "entities having a Wikipedia page"
    (the BLINK set; the reference's frequency filter is not applied). With ``resume``, a shard already converted
    from the same dump (path and size), shard, language and sitelink is not converted again."""
    dump, out = Path(dump), Path(out)
    i, n = parse_shard(shard)
    if not dump.is_file():
        raise DataError("Wikidata dump not found (expected latest-all.json.bz2 or .gz)", path=dump)
    source = {"dump": str(dump.resolve()), "dump bytes": dump.stat().st_size, "shard": f"{i}/{n}",
              "language": language, "sitelink": sitelink}
    summary_file = _summary_path(out)
    if resume and out.is_file() and summary_file.is_file():
        try:
            done = json.loads(summary_file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            done = {}
        if all(done.get(k) == v for k, v in source.items()):
            log.info("%s: already converted (%s); skipped", out, summary_file.name)
            return {**done, "resumed": 1}
    counts = dict.fromkeys(("lines", "lines read", "entities", "predicates", "no label", "other type",
                            "bad json", "no sitelink"), 0)
    try:
        with _open_dump(dump) as fh:
            write_kg_json(out, _convert_lines(fh, (i, n), language, counts, dump, sitelink))
    except (OSError, EOFError) as exc:  # a corrupt / truncated compressed stream
        raise DataError(f"cannot read the dump ({exc}); is the download complete?", path=dump) from None
    if counts["lines read"] and counts["bad json"] == counts["lines read"]:
        out.unlink(missing_ok=True)
        raise DataError(f"no Wikidata entity on the {counts['lines read']} line(s) read (all {counts['bad json']}"
                        " invalid JSON): is this a Wikidata JSON dump?", path=dump)
    summary = {**source, "out": str(out), **counts}
    summary_file.write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return summary
