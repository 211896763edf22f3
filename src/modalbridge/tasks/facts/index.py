"""Vector indexes over KG entry embeddings (card §5 inference, §2.3 index layout, §10 scale).

One interface, :class:`VectorIndex`, three back-ends:

* :class:`FaissIndex` — FAISS in-process: ``kind="flat"`` exact inner product (``IndexFlatIP``, the reference's),
  ``"flat16"`` fp16 scalar quantizer (half the memory, scores to ~1e-3), ``"ivfpq"`` inverted lists + product
  quantization (``nlist``, ``m`` bytes per vector, ``nprobe`` lists searched) for Wikidata scale;
* :class:`QdrantIndex` — qdrant-client: local in-process (``":memory:"``, tests), on-disk local (``path=``) or a
  server (``url=``);
* :class:`TorchIndex` — plain ``torch.matmul`` + ``topk`` blockwise over the stored matrix (the baseline; CPU or
  GPU, fp32/fp16/bf16 storage).

Vectors are ``(n, dim)`` float32, L2-normalised by the caller (score = inner product = cosine). Ids are strings
(``"Q41421"``, ``"P54"``), mapped by an :class:`IdMap` to the integer labels a back-end stores; FAISS's −1
padding never becomes an id (the reference's ``idx > 0`` bug dropped row 0 instead). ``search`` returns
``(scores (q, k'), ids)`` with ``k' = min(k, len(index))``; a row may hold fewer than ``k'`` ids when an
approximate index finds fewer (IVF with a small ``nprobe``) — its missing scores are ``-inf``.

On disk (``save(folder, kind="entity"|"rel")``), the reference's layout plus a ``meta.json``::

    folder/meta.json               {"format": "modalbridge-vector-index", "version": 1,
                                    "entity": {"backend", "index", "dim", "count", "fingerprint", "options"},
                                    "rel": {...}}
    folder/faiss_index_entity      faiss.write_index (FAISS back-end; a plain IndexFlatIP for kind="flat")
    folder/index2entity.json       {"0": "Q…", …}: the label FAISS returns → id (rows 0..n-1 for flat kinds)
    folder/entity_embeddings.npy   float32 (n, dim), row r ↔ index2entity["r"] (torch/qdrant always; FAISS on
                                   request) — and faiss_index_rel / index2rel.json / relation_embeddings.npy

A folder written by the reference (no ``meta.json``) loads too. ``fingerprint`` names the encoder that built the
index (:func:`encoder_fingerprint`: name + hash of its weights); ``load(..., expect_fingerprint=fp)`` refuses an
index built by another encoder with a :class:`~modalbridge.core.errors.DataError` naming both.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from modalbridge.core.errors import DataError

__all__ = ["BACKENDS", "FaissIndex", "IdMap", "QdrantIndex", "TorchIndex", "VectorIndex", "encoder_fingerprint",
           "index_files", "load_index", "make_index", "matmul_topk"]

log = logging.getLogger(__name__)

META = "meta.json"
FORMAT = "modalbridge-vector-index"
VERSION = 1
#: kind → (FAISS index file, id map file, embeddings file), the reference's names
_FILES = {"entity": ("faiss_index_entity", "index2entity.json", "entity_embeddings.npy"),
          "rel": ("faiss_index_rel", "index2rel.json", "relation_embeddings.npy")}
#: rows per chunk when vectors stream between files and back-ends (≈ 50 MB at 200-d)
_CHUNK = 65_536


def index_files(folder: str | os.PathLike[str], kind: str = "entity") -> tuple[Path, Path, Path]:
    """``(faiss file, id map json, embeddings npy)`` of ``kind`` ("entity" | "rel") under ``folder``."""
    if kind not in _FILES:
        raise ValueError(f"kind must be 'entity' or 'rel', got {kind!r}")
    folder = Path(folder)
    return tuple(folder / name for name in _FILES[kind])  # type: ignore[return-value]


def encoder_fingerprint(name: str, weights: Any = None) -> str:
    """``"name@<16 hex>"``: the encoder's name and a SHA-256 of its weights — an ``nn.Module`` (its state dict),
    a mapping name → tensor/array, or raw bytes; ``None`` → ``name`` alone (no hash)."""
    if weights is None:
        return name
    h = hashlib.sha256()
    if isinstance(weights, (bytes, bytearray, memoryview)):
        h.update(weights)
    else:
        state = weights.state_dict() if hasattr(weights, "state_dict") else weights
        if not isinstance(state, Mapping):
            raise TypeError(f"weights must be a module, a mapping of tensors or bytes, not {type(weights).__name__}")
        for key in sorted(state):
            value = state[key]
            h.update(key.encode())
            if hasattr(value, "detach"):  # a torch tensor (any dtype, bf16 included): hash its raw bytes
                import torch

                t = value.detach().cpu().contiguous().reshape(-1)
                h.update(f"{t.dtype}{tuple(value.shape)}".encode())
                h.update(t.view(torch.uint8).numpy().tobytes())
            else:
                a = np.ascontiguousarray(value)
                h.update(f"{a.dtype}{a.shape}".encode())
                h.update(a.tobytes())
    return f"{name}@{h.hexdigest()[:16]}"


# ---------------------------------------------------------------------------------------------------- id map
def _id_array(ids: Sequence[str] | np.ndarray) -> np.ndarray:
    """``ids`` as a 1-D numpy string array: bytes (``S``, 1 byte per character) when all ASCII, else unicode."""
    arr = np.asarray(ids)
    if arr.size == 0:
        return np.empty(0, dtype="S1")
    if arr.ndim != 1 or arr.dtype.kind not in "US":
        raise DataError(f"ids must be a flat sequence of strings, got {arr.dtype} of shape {arr.shape}", field="ids")
    if arr.dtype.kind == "U":
        try:
            arr = arr.astype("S")
        except UnicodeEncodeError:
            pass
    lengths = np.char.str_len(arr)
    if (lengths == 0).any():
        raise DataError(f"empty id at position {int(np.argmax(lengths == 0))}", field="ids")
    width = int(lengths.max())
    return arr if arr.dtype.itemsize == width * (4 if arr.dtype.kind == "U" else 1) else arr.astype(
        f"{arr.dtype.kind}{width}")  # no padding: np.char.add / astype("S") make wide arrays


def _as_str(arr: np.ndarray) -> np.ndarray:
    return arr.astype("U") if arr.dtype.kind == "S" else arr


class IdMap:
    """String ids ↔ int64 labels (what a back-end stores and returns), vectorised for millions of ids.

    Arrays: ``ids`` by label (ASCII ids stored as bytes), an ``alive`` mask, and the permutation sorting
    ``ids`` (binary search for look-ups and duplicate checks) — ≈ (chars + 9) bytes per id, no Python object per
    id. Labels are handed out in order (0, 1, …). ``remove(renumber=True)`` mirrors back-ends whose removal
    shifts later rows down (FAISS flat codes, :class:`TorchIndex`): labels stay ``0..n-1``;
    ``renumber=False`` (IVF, Qdrant: labels stored with the vectors) only marks labels dead.
    """

    def __init__(self) -> None:
        self._ids = np.empty(0, dtype="S1")
        self._alive = np.empty(0, dtype=bool)
        self._order = np.empty(0, dtype=np.int64)

    @classmethod
    def from_pairs(cls, labels: np.ndarray, ids: Sequence[str] | np.ndarray, *,
                   path: str | os.PathLike[str] | None = None) -> IdMap:
        """A map with given (possibly sparse) ``labels`` (unique, ≥ 0) ↔ ``ids`` (unique)."""
        labels = np.asarray(labels, dtype=np.int64)
        arr = _id_array(ids)
        if len(labels) != len(arr):
            raise DataError(f"{len(labels)} labels for {len(arr)} ids", path=path)
        out = cls()
        if len(arr) == 0:
            return out
        if labels.min() < 0:
            raise DataError(f"negative label {int(labels.min())}", path=path)
        uniq, counts = np.unique(labels, return_counts=True)
        if (counts > 1).any():
            raise DataError(f"label {int(uniq[counts > 1][0])} appears twice", path=path)
        _check_unique(arr, path=path)
        size = int(labels.max()) + 1
        out._ids = np.zeros(size, dtype=arr.dtype)
        out._ids[labels] = arr
        out._alive = np.zeros(size, dtype=bool)
        out._alive[labels] = True
        out._order = np.argsort(out._ids, kind="stable")
        return out

    def __len__(self) -> int:
        return int(self._alive.sum())

    @property
    def size(self) -> int:
        """Labels handed out so far (the next new label); dead ones included."""
        return len(self._ids)

    @property
    def nbytes(self) -> int:
        return self._ids.nbytes + self._alive.nbytes + self._order.nbytes

    def ids(self) -> list[str]:
        """The ids in the index, in label order."""
        return _as_str(self._ids[self._alive]).tolist()

    def labels(self) -> np.ndarray:
        """The live labels, ascending."""
        return np.flatnonzero(self._alive)

    def is_compact(self) -> bool:
        """Whether the live labels are exactly ``0..n-1``."""
        return bool(self._alive.all())

    def find(self, ids: Sequence[str] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(labels, found)`` of ``ids``: the live label of each (−1 where absent) and the found mask."""
        arr = _id_array(ids)
        labels = np.full(len(arr), -1, dtype=np.int64)
        if len(arr) == 0 or self.size == 0:
            return labels, labels >= 0
        dtype = np.promote_types(arr.dtype, self._ids.dtype)
        arr, keys = arr.astype(dtype, copy=False), self._ids.astype(dtype, copy=False)
        lo = np.searchsorted(keys, arr, side="left", sorter=self._order)
        hi = np.searchsorted(keys, arr, side="right", sorter=self._order)
        single = hi - lo == 1  # the common case: one entry with this id (alive or dead)
        first = self._order[np.minimum(lo, self.size - 1)]
        labels[single] = np.where(self._alive[first[single]], first[single], -1)
        for i in np.flatnonzero(hi - lo > 1):  # an id removed and added again: several entries, ≤ 1 alive
            run = self._order[lo[i]:hi[i]]
            live = run[self._alive[run]]
            labels[i] = live[0] if len(live) else -1
        return labels, labels >= 0

    def add(self, ids: Sequence[str] | np.ndarray) -> np.ndarray:
        """New labels ``size..size+n-1`` for ``ids``; DataError for a duplicate (in ``ids`` or already live)."""
        arr = _id_array(ids)
        if len(arr) == 0:
            return np.empty(0, dtype=np.int64)
        _check_unique(arr)
        _, found = self.find(arr)
        if found.any():
            raise DataError(f"id {_as_str(arr[found][:1]).tolist()[0]!r} is already in the index (remove it first)",
                            field="ids")
        labels = np.arange(self.size, self.size + len(arr), dtype=np.int64)
        dtype = np.promote_types(arr.dtype, self._ids.dtype)
        keys = self._ids.astype(dtype, copy=False)
        new_order = np.argsort(arr, kind="stable")
        pos = np.searchsorted(keys, arr[new_order].astype(dtype), side="right", sorter=self._order)
        self._order = np.insert(self._order, pos, labels[new_order])
        self._ids = np.concatenate([keys, arr.astype(dtype, copy=False)])
        self._alive = np.concatenate([self._alive, np.ones(len(arr), dtype=bool)])
        return labels

    def remove(self, ids: Sequence[str] | np.ndarray, *, renumber: bool, missing_ok: bool = False) -> np.ndarray:
        """Drop ``ids``; returns their labels (ascending, as they were before any renumbering). An id not in the
        map → DataError unless ``missing_ok``. ``renumber``: later labels shift down (the back-end compacts)."""
        arr = np.unique(_id_array(ids))
        labels, found = self.find(arr)
        if not found.all() and not missing_ok:
            raise DataError(f"id {_as_str(arr[~found][:1]).tolist()[0]!r} is not in the index", field="ids")
        labels = np.sort(labels[found])
        if renumber:
            if not self.is_compact():
                raise RuntimeError("renumbering removal on a map with dead labels")
            dead = np.zeros(self.size, dtype=bool)
            dead[labels] = True
            self._ids, self._alive = self._ids[~dead], self._alive[~dead]
            order = self._order[~dead[self._order]]
            self._order = order - np.searchsorted(labels, order)
        else:
            self._alive[labels] = False
        return labels

    def lookup(self, labels: np.ndarray) -> tuple[list[list[str]], np.ndarray]:
        """``(ids per row, valid (q, k) mask)`` of back-end labels ``(q, k)``; −1 padding (and any label not
        live) is dropped, never mapped to an id."""
        labels = np.asarray(labels, dtype=np.int64)
        valid = (labels >= 0) & (labels < self.size)
        if self.size == 0:
            return [[] for _ in range(len(labels))], valid
        safe = np.where(valid, labels, 0)
        valid &= self._alive[safe]
        names = _as_str(self._ids[safe])
        return [row[ok].tolist() for row, ok in zip(names, valid)], valid


def _check_unique(arr: np.ndarray, path: str | os.PathLike[str] | None = None) -> None:
    uniq, counts = np.unique(arr, return_counts=True)
    if (counts > 1).any():
        raise DataError(f"id {_as_str(uniq[counts > 1][:1]).tolist()[0]!r} appears more than once", path=path, field="ids")


# ---------------------------------------------------------------------------------------------- interface
@runtime_checkable
class VectorIndex(Protocol):
    """A searchable set of ``(id, vector)``; vectors ``(n, dim)`` float32, L2-normalised by the caller."""

    dim: int
    fingerprint: str | None

    @property
    def ids(self) -> list[str]: ...

    def add(self, ids: Sequence[str], vectors: np.ndarray) -> None: ...

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, list[list[str]]]: ...

    def remove(self, ids: Sequence[str]) -> None: ...

    def save(self, folder: str | os.PathLike[str], *, kind: str = "entity") -> None: ...

    @classmethod
    def load(cls, folder: str | os.PathLike[str], *, kind: str = "entity",
             expect_fingerprint: str | None = None) -> VectorIndex: ...


class _Index:
    """What the back-ends share: id map, input checks, result mapping, meta.json and id-map files."""

    backend: ClassVar[str] = ""
    #: whether removing rows shifts later labels down (see :class:`IdMap`)
    renumbers: bool = True

    def __init__(self, dim: int, fingerprint: str | None = None) -> None:
        if int(dim) < 1:
            raise ValueError(f"dim must be ≥ 1, got {dim}")
        self.dim, self.fingerprint = int(dim), fingerprint
        self._map = IdMap()

    # -- state
    @property
    def ids(self) -> list[str]:
        """The ids in the index, in label (insertion) order."""
        return self._map.ids()

    def __len__(self) -> int:
        return len(self._map)

    def __contains__(self, id_: str) -> bool:
        return bool(self._map.find([id_])[1][0])

    @property
    def nbytes(self) -> int:
        """Bytes held: vectors/codes of the back-end + the id map."""
        return self._store_nbytes() + self._map.nbytes

    @property
    def id_map_nbytes(self) -> int:
        """Bytes of the id map alone (≈ characters + 9 per id)."""
        return self._map.nbytes

    def describe(self) -> str:
        return f"{type(self).__name__}({self.kind_name}, {len(self)} × {self.dim}, encoder {self.fingerprint})"

    @property
    def kind_name(self) -> str:
        return self.backend

    # -- operations
    def add(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        """Add ``vectors (n, dim)`` float32 (L2-normalised) under ``ids`` (new, unique strings)."""
        x = self._check_vectors(vectors, len(ids))
        labels = self._map.add(ids)
        try:
            self._add(labels, x)
        except BaseException:
            self._map.remove(ids, renumber=self.renumbers)
            raise

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, list[list[str]]]:
        """Top-``k`` by inner product: ``(scores (q, k') float32, ids per query)``, ``k' = min(k, len)``, best
        first; where a row has fewer than ``k'`` results its ids list is shorter and its missing scores −inf."""
        q = self._check_queries(queries)
        if int(k) < 1:
            raise ValueError(f"k must be ≥ 1, got {k}")
        k = min(int(k), len(self))
        if k == 0:
            return np.zeros((len(q), 0), dtype=np.float32), [[] for _ in range(len(q))]
        scores, labels = self._search(q, k)
        ids, valid = self._map.lookup(labels)
        return np.where(valid, scores, -np.inf).astype(np.float32), ids

    def remove(self, ids: Sequence[str], *, missing_ok: bool = False) -> int:
        """Remove ``ids`` (the out-of-KG "outside" scenario); returns how many were removed. An id not in the
        index → DataError unless ``missing_ok``."""
        arr = _id_array(ids)
        labels, found = self._map.find(arr)
        if not found.all() and not missing_ok:
            raise DataError(f"id {_as_str(arr[~found][:1]).tolist()[0]!r} is not in the index", field="ids")
        labels = np.unique(labels[found])
        if len(labels):
            self._remove(labels)  # the back-end first: the map's labels are still the back-end's
            self._map.remove(arr[found], renumber=self.renumbers)
        return len(labels)

    # -- back-end hooks
    def _add(self, labels: np.ndarray, x: np.ndarray) -> None:
        raise NotImplementedError

    def _search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(scores (q, k) float, labels (q, k) int64 with −1 padding)``."""
        raise NotImplementedError

    def _remove(self, labels: np.ndarray) -> None:
        raise NotImplementedError

    def _store_nbytes(self) -> int:
        raise NotImplementedError

    def _options(self) -> dict:
        return {}

    # -- checks
    def _check_vectors(self, vectors: Any, n_ids: int) -> np.ndarray:
        x = np.ascontiguousarray(vectors, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise DataError(f"vectors must be (n, {self.dim}), got shape {x.shape}" + self._built_by(),
                            field="vectors")
        if len(x) != n_ids:
            raise DataError(f"{n_ids} ids for {len(x)} vectors", field="ids")
        finite = np.isfinite(x).all(axis=1)
        if not finite.all():
            raise DataError(f"vector {int(np.argmin(finite))} of this batch is not finite", field="vectors")
        return x

    def _check_queries(self, queries: Any) -> np.ndarray:
        q = np.ascontiguousarray(queries, dtype=np.float32)
        if q.ndim != 2 or q.shape[1] != self.dim:
            got = q.shape[-1] if q.ndim else "scalar"
            raise DataError(f"queries are {got}-d (shape {q.shape}) but the index holds {self.dim}-d vectors"
                            + self._built_by() + "; encode the queries with the index's encoder",
                            field="queries")
        return q

    def _built_by(self) -> str:
        return f" (built by encoder {self.fingerprint!r})" if self.fingerprint else ""

    # -- files
    def _write_common(self, folder: Path, kind: str, labels: np.ndarray, ids: Sequence[str] | np.ndarray) -> None:
        _write_id_map(index_files(folder, kind)[1], labels, ids)
        _update_meta(folder, kind, {"backend": self.backend, "index": self.kind_name, "dim": self.dim,
                                    "count": len(self), "fingerprint": self.fingerprint,
                                    "options": self._options()})

    def _write_embeddings(self, path: Path, chunks: Iterator[np.ndarray]) -> None:
        """``float32 (n, dim)`` npy from ``chunks`` in label order, written through a memory map."""
        tmp = path.with_name(path.name + ".tmp.npy")
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(len(self), self.dim))
        start = 0
        for chunk in chunks:
            out[start:start + len(chunk)] = chunk
            start += len(chunk)
        out.flush()
        del out
        os.replace(tmp, path)


# ----------------------------------------------------------------------------------------------- file helpers
def _write_id_map(path: Path, labels: np.ndarray, ids: Sequence[str] | np.ndarray) -> None:
    """``{"label": "id", …}`` written in chunks (no dict of millions of entries)."""
    ids = _as_str(np.asarray(ids)) if len(ids) else np.empty(0, dtype="U1")
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("{")
        for start in range(0, len(ids), _CHUNK):
            part = dict(zip(np.asarray(labels[start:start + _CHUNK]).astype(str).tolist(),
                            ids[start:start + _CHUNK].tolist()))
            f.write(("," if start else "") + json.dumps(part, ensure_ascii=False)[1:-1])
        f.write("}")
    os.replace(tmp, path)


def _read_id_map(path: Path) -> IdMap:
    if not path.is_file():
        raise DataError("id map not found (expected the reference's index2entity.json / index2rel.json)",
                        path=path)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise DataError(f"not valid JSON ({e.msg} at line {e.lineno} column {e.colno})", path=path) from None
    if not isinstance(data, dict):
        raise DataError(f"expected one JSON object {{\"0\": \"Q…\", …}}, got {type(data).__name__}", path=path)
    keys = list(data)
    try:
        labels = np.asarray([int(key) for key in keys], dtype=np.int64)
    except ValueError:
        bad = next(key for key in keys if not key.lstrip("-").isdigit())
        raise DataError("keys must be integer labels", path=path, field=bad) from None
    values = list(data.values())
    for key, value in zip(keys, values):
        if not isinstance(value, str):
            raise DataError(f"expected an id string, got {type(value).__name__}", path=path, field=key)
    return IdMap.from_pairs(labels, values, path=path)


def _read_meta(folder: Path, kind: str, expect_fingerprint: str | None) -> dict:
    """The ``kind`` entry of ``folder/meta.json`` (``{}`` for a reference folder without one), after the
    fingerprint check."""
    path = folder / META
    entry: dict = {}
    if path.is_file():
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise DataError(f"not valid JSON ({e.msg} at line {e.lineno})", path=path) from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise DataError(f"not a {FORMAT} meta file", path=path, field="format")
        if kind not in meta:
            have = sorted(k for k in meta if k in _FILES)
            raise DataError(f"no {kind!r} index in this folder (has: {', '.join(have) or 'none'})", path=path)
        entry = meta[kind]
    elif not folder.is_dir():
        raise FileNotFoundError(2, "index folder not found", str(folder))
    built = entry.get("fingerprint")
    if expect_fingerprint is not None:
        if built is None:
            log.warning("%s: %s index has no encoder fingerprint (%s); cannot check it was built by %s", folder,
                        kind, "a reference-layout folder" if not entry else "built without one", expect_fingerprint)
        elif built != expect_fingerprint:
            raise DataError(f"the {kind} index was built by encoder {built!r}, but the encoder in use is "
                            f"{expect_fingerprint!r}: rebuild the index with this encoder", path=path,
                            field="fingerprint")
    return entry


def _update_meta(folder: Path, kind: str, entry: dict) -> None:
    path = folder / META
    meta = {"format": FORMAT, "version": VERSION}
    if path.is_file():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(old, dict) and old.get("format") == FORMAT:
                meta.update({k: v for k, v in old.items() if k in _FILES})
        except json.JSONDecodeError:
            pass
    meta[kind] = entry
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _check_count(path: Path, n_vectors: int, n_ids: int) -> None:
    if n_vectors != n_ids:
        raise DataError(f"holds {n_vectors} vectors but the id map has {n_ids} ids", path=path)


def _stored_vectors(folder: Path, kind: str, entry: dict) -> tuple[np.ndarray | Any, IdMap, Path]:
    """``(vectors (n, dim) — npy memory map or a FAISS flat index's reconstruction, id map, source path)`` for
    the back-ends that keep raw vectors. Rows are labels ``0..n-1``."""
    faiss_path, map_path, npy_path = index_files(folder, kind)
    idmap = _read_id_map(map_path)
    if npy_path.is_file():
        vectors = np.load(npy_path, mmap_mode="r")
        source = npy_path
        if vectors.ndim != 2:
            raise DataError(f"expected a (n, dim) matrix, got shape {vectors.shape}", path=npy_path)
    elif faiss_path.is_file():
        import faiss

        index = faiss.read_index(str(faiss_path))
        if not isinstance(index, faiss.IndexFlatCodes):
            raise DataError(f"{type(index).__name__} keeps no raw vectors and {npy_path.name} is missing: load "
                            "it with FaissIndex", path=faiss_path)
        vectors = _Reconstructed(index)
        source = faiss_path
    else:
        raise DataError(f"neither {npy_path.name} nor {faiss_path.name} found", path=folder)
    _check_count(source, vectors.shape[0], len(idmap))
    if not idmap.is_compact():
        raise DataError("labels must be 0..n-1 to match the rows of the vectors", path=map_path)
    if entry.get("dim") not in (None, vectors.shape[1]):
        raise DataError(f"meta.json says dim {entry['dim']} but the vectors are {vectors.shape[1]}-d", path=source)
    return vectors, idmap, source


class _Reconstructed:
    """Rows of a FAISS flat-codes index as a read-only ``(n, d)`` array-like (``x[a:b]``)."""

    def __init__(self, index: Any) -> None:
        self.index, self.shape = index, (index.ntotal, index.d)

    def __getitem__(self, s: slice) -> np.ndarray:
        start, stop, _ = s.indices(self.shape[0])
        return self.index.reconstruct_n(start, stop - start)


# ----------------------------------------------------------------------------------------------------- FAISS
_FAISS_KINDS = ("flat", "flat16", "ivfpq")


class FaissIndex(_Index):
    """FAISS, inner product. ``kind``: ``"flat"`` exact (``IndexFlatIP``, 4·dim bytes/vector), ``"flat16"`` fp16
    scalar quantizer (2·dim bytes), ``"ivfpq"`` ``IVF{nlist},PQ{m}x{nbits}`` (m·nbits/8 bytes + 8-byte label;
    trained on the first ``add`` — or :meth:`train` on a sample — with up to ``train_size`` vectors; searches
    ``nprobe`` of the ``nlist`` lists).

    Flat kinds store rows in order: their label is the row (the reference's layout), and removal shifts later
    rows down. IVF stores each vector's label; removal leaves gaps.

    >>> ix = FaissIndex(4)
    >>> ix.add(["Q1", "Q2"], np.eye(4, dtype=np.float32)[:2])
    >>> ix.search(np.eye(4, dtype=np.float32)[1:2], k=5)[1]
    [['Q2', 'Q1']]
    """

    backend = "faiss"

    def __init__(self, dim: int, kind: str = "flat", *, nlist: int = 1024, m: int | None = None, nbits: int = 8,
                 nprobe: int = 16, train_size: int | None = None, fingerprint: str | None = None,
                 seed: int = 0) -> None:
        import faiss

        super().__init__(dim, fingerprint)
        if kind not in _FAISS_KINDS:
            raise ValueError(f"kind must be one of {', '.join(_FAISS_KINDS)}, got {kind!r}")
        self.kind, self.seed = kind, seed
        self.nlist, self.nbits = int(nlist), int(nbits)
        self.m = int(m) if m is not None else _default_m(self.dim)
        if kind == "ivfpq" and self.dim % self.m:
            raise ValueError(f"ivfpq: m={self.m} must divide dim={self.dim}")
        self.train_size = int(train_size) if train_size else max(40 * self.nlist, 10_000)
        spec = {"flat": "Flat", "flat16": "SQfp16", "ivfpq": f"IVF{self.nlist},PQ{self.m}x{self.nbits}"}[kind]
        self._set_index(faiss.index_factory(self.dim, spec, faiss.METRIC_INNER_PRODUCT))
        if kind == "ivfpq":  # the factory turns on polysemous training (slow, unused: we search by PQ distance)
            faiss.downcast_index(self._ivf()).do_polysemous_training = False
        self.nprobe = nprobe

    def _set_index(self, index: Any) -> None:
        import faiss

        self._index = index
        self.renumbers = isinstance(index, faiss.IndexFlatCodes)

    @property
    def index(self) -> Any:
        """The FAISS index object itself."""
        return self._index

    @property
    def kind_name(self) -> str:
        return self.kind

    @property
    def nprobe(self) -> int | None:
        ivf = self._ivf()
        return None if ivf is None else int(ivf.nprobe)

    @nprobe.setter
    def nprobe(self, value: int | None) -> None:
        ivf = self._ivf()
        if ivf is not None and value is not None:
            ivf.nprobe = int(value)

    def _ivf(self) -> Any:
        import faiss

        try:
            return faiss.extract_index_ivf(self._index)
        except RuntimeError:
            return None

    @property
    def is_trained(self) -> bool:
        return bool(self._index.is_trained)

    def train(self, vectors: np.ndarray) -> None:
        """Train the IVF coarse quantizer and PQ codebooks on ``vectors (n, dim)`` (a sample of at most
        ``train_size`` random rows is used); no-op for trained indexes."""
        if self.is_trained:
            return
        x = self._check_vectors(vectors, len(vectors))
        need = max(self.nlist, 2 ** self.nbits)
        if len(x) < need:
            raise DataError(f"ivfpq (nlist={self.nlist}, {2 ** self.nbits} PQ centroids) needs ≥ {need} training "
                            f"vectors (≥ {39 * need} recommended), got {len(x)}: train() on a larger sample or "
                            "add more vectors at once", field="vectors")
        if len(x) > self.train_size:
            rows = np.sort(np.random.default_rng(self.seed).choice(len(x), self.train_size, replace=False))
            x = x[rows]
        self._index.train(x)

    def reserve(self, n: int) -> None:
        """Allocate storage for ``n`` vectors in total up front (flat kinds; no-op for IVF). Without it the
        storage grows by reallocation, which at Large-KG size briefly holds the old and the new copy
        (≈ 1.7× the index's memory at peak)."""
        if self.renumbers and n > self._index.ntotal:
            codes, size = self._index.codes, self._index.codes.size()
            codes.resize(int(n) * self._index.code_size)
            codes.resize(size)  # std::vector keeps its capacity

    def _add(self, labels: np.ndarray, x: np.ndarray) -> None:
        if not self.is_trained:
            self.train(x)
        if self.renumbers:
            if labels[0] != self._index.ntotal:
                raise RuntimeError(f"row labels out of step: next row {self._index.ntotal}, label {labels[0]}")
            self._index.add(x)
        else:
            self._index.add_with_ids(x, labels)

    def _search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores, labels = self._index.search(q, k)
        return scores, labels

    def _remove(self, labels: np.ndarray) -> None:
        self._index.remove_ids(np.ascontiguousarray(labels, dtype=np.int64))

    def _store_nbytes(self) -> int:
        return _faiss_nbytes(self._index)

    def _options(self) -> dict:
        if self.kind != "ivfpq":
            return {}
        return {"nlist": self.nlist, "m": self.m, "nbits": self.nbits, "nprobe": self.nprobe}

    def vectors(self) -> Iterator[np.ndarray]:
        """Stored vectors in label order, in chunks (flat kinds only; fp16 ones rounded)."""
        if not self.renumbers:
            raise ValueError(f"a {self.kind} index keeps lossy codes, not vectors: save the encoder's embeddings")
        for start in range(0, self._index.ntotal, _CHUNK):
            yield self._index.reconstruct_n(start, min(_CHUNK, self._index.ntotal - start))

    def save(self, folder: str | os.PathLike[str], *, kind: str = "entity", embeddings: bool = False) -> None:
        """``faiss_index_<kind>`` + ``index2<kind>.json`` + ``meta.json`` (+ ``<kind>_embeddings.npy`` when
        ``embeddings``: flat kinds only — a kind="flat" folder is then exactly the reference's)."""
        import faiss

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        faiss_path, _, npy_path = index_files(folder, kind)
        if embeddings:
            self._write_embeddings(npy_path, self.vectors())
        tmp = faiss_path.with_name(faiss_path.name + ".tmp")
        faiss.write_index(self._index, str(tmp))
        os.replace(tmp, faiss_path)
        labels = self._map.labels()
        self._write_common(folder, kind, labels, self._map.ids())

    @classmethod
    def load(cls, folder: str | os.PathLike[str], *, kind: str = "entity", expect_fingerprint: str | None = None,
             index_kind: str | None = None, nprobe: int | None = None, **options: Any) -> FaissIndex:
        """An index saved by :meth:`save` or the reference; from ``<kind>_embeddings.npy`` alone (e.g. saved by
        another back-end) a new ``index_kind`` (default ``"flat"``) index is built. ``nprobe`` overrides the
        saved one."""
        import faiss

        folder = Path(folder)
        entry = _read_meta(folder, kind, expect_fingerprint)
        faiss_path, map_path, _ = index_files(folder, kind)
        fingerprint = entry.get("fingerprint")
        saved = dict(entry.get("options") or {})
        if not faiss_path.is_file():
            vectors, idmap, _ = _stored_vectors(folder, kind, entry)
            saved = {**(saved if entry.get("backend") == "faiss" else {}), **options}
            if nprobe is not None:
                saved["nprobe"] = nprobe
            out = cls(vectors.shape[1], index_kind or "flat", fingerprint=fingerprint, **saved)
            ids = idmap.ids()
            for start in range(0, len(ids), _CHUNK):
                out.add(ids[start:start + _CHUNK], np.asarray(vectors[start:start + _CHUNK]))
            return out
        try:
            index = faiss.read_index(str(faiss_path))
        except RuntimeError as e:
            raise DataError(f"not a readable FAISS index ({str(e).splitlines()[0]})", path=faiss_path) from None
        if entry.get("dim") not in (None, index.d):
            raise DataError(f"meta.json says dim {entry['dim']} but the index is {index.d}-d", path=faiss_path)
        idmap = _read_id_map(map_path)
        _check_count(faiss_path, index.ntotal, len(idmap))
        out = cls.__new__(cls)
        _Index.__init__(out, index.d, fingerprint)
        out._set_index(index)
        if out.renumbers and not idmap.is_compact():
            raise DataError(f"a {type(index).__name__} labels its rows 0..n-1, but the keys are not", path=map_path)
        out._map = idmap
        out.kind = entry.get("index") or _faiss_kind(index)
        ivf = out._ivf()
        out.nlist = int(ivf.nlist) if ivf is not None else int(saved.get("nlist", 1024))
        out.m = int(saved.get("m", _default_m(index.d)))
        out.nbits = int(saved.get("nbits", 8))
        out.train_size, out.seed = max(40 * out.nlist, 10_000), 0
        out.nprobe = nprobe if nprobe is not None else saved.get("nprobe")
        return out


def _default_m(dim: int) -> int:
    """PQ sub-quantizers: one per 4 dimensions (the largest divisor of ``dim`` ≤ dim/4)."""
    return next(m for m in range(max(dim // 4, 1), 0, -1) if dim % m == 0)


def _faiss_kind(index: Any) -> str:
    import faiss

    if isinstance(index, faiss.IndexFlat):
        return "flat"
    if isinstance(index, faiss.IndexScalarQuantizer):
        return "flat16"
    if isinstance(index, faiss.IndexIVFPQ):
        return "ivfpq"
    return type(index).__name__


def _faiss_nbytes(index: Any) -> int:
    """Bytes of codes + labels + quantizers of a FAISS index (computed, no serialisation copy)."""
    import faiss

    index = faiss.downcast_index(index)
    if isinstance(index, faiss.IndexFlatCodes):
        return int(index.ntotal) * int(index.code_size)
    if isinstance(index, faiss.IndexIVF):
        lists = index.invlists.compute_ntotal() * (index.code_size + 8)
        extra = index.pq.M * index.pq.ksub * index.pq.dsub * 4 if isinstance(index, faiss.IndexIVFPQ) else 0
        return int(lists + _faiss_nbytes(index.quantizer) + extra)
    if isinstance(index, (faiss.IndexIDMap, faiss.IndexIDMap2)):
        return int(_faiss_nbytes(index.index) + 8 * index.ntotal)
    return int(faiss.serialize_index(index).nbytes)


# ----------------------------------------------------------------------------------------------------- torch
def matmul_topk(queries: Any, blocks: Sequence[Any], k: int, block_rows: int = 65_536) -> tuple[Any, Any]:
    """Exact top-``k`` inner products of ``queries (q, d)`` over the rows of ``blocks`` (each ``(r_i, d)``,
    concatenated in order) with ``torch.matmul`` + ``topk``, ``block_rows`` rows at a time (score memory
    q·block_rows·4 bytes). fp16/bf16 blocks on CPU are upcast per slice (scores in fp32).
    Returns ``(scores (q, k'), rows (q, k') int64)``, ``k' = min(k, rows)``, best first (torch tensors)."""
    import torch

    q = torch.as_tensor(queries)
    device = blocks[0].device if len(blocks) else q.device
    q = q.to(device=device, dtype=torch.float32)
    best_s = torch.empty((len(q), 0), dtype=torch.float32, device=device)
    best_r = torch.empty((len(q), 0), dtype=torch.int64, device=device)
    offset = 0
    for block in blocks:
        for start in range(0, len(block), block_rows):
            part = block[start:start + block_rows]
            if part.dtype != torch.float32:
                part = part.float() if device.type == "cpu" else part
            scores = torch.matmul(q.to(part.dtype), part.T).float()  # (q, r)
            s, r = scores.topk(min(k, scores.shape[1]), dim=1)
            best_s, best_r = torch.cat([best_s, s], 1), torch.cat([best_r, r + (offset + start)], 1)
            if best_s.shape[1] > k:
                best_s, keep = best_s.topk(k, dim=1)
                best_r = best_r.gather(1, keep)
        offset += len(block)
    best_s, order = best_s.sort(dim=1, descending=True)
    return best_s, best_r.gather(1, order)


class TorchIndex(_Index):
    """The plain baseline: vectors in torch tensors (``dtype`` float32/float16/bfloat16, on ``device``), exact
    search by :func:`matmul_topk`. Rows in insertion order (label = row); removal compacts."""

    backend = "torch"
    renumbers = True

    def __init__(self, dim: int, *, dtype: str = "float32", device: str = "cpu", block_rows: int = 65_536,
                 fingerprint: str | None = None) -> None:
        import torch

        super().__init__(dim, fingerprint)
        if dtype not in ("float32", "float16", "bfloat16"):
            raise ValueError(f"dtype must be float32, float16 or bfloat16, got {dtype!r}")
        self.dtype, self.device, self.block_rows = dtype, torch.device(device), int(block_rows)
        self._blocks: list[Any] = []

    @property
    def kind_name(self) -> str:
        return f"matmul-{self.dtype}"

    def add(self, ids: Sequence[str], vectors: Any, *, copy: bool = True) -> None:
        """As :meth:`VectorIndex.add`; ``vectors`` may also be a torch tensor, or a numpy/torch array already
        in the index's ``dtype`` — with ``copy=False`` such an array is then shared, not copied (the caller
        must leave it unchanged)."""
        import torch

        t = vectors if isinstance(vectors, torch.Tensor) or copy else torch.from_numpy(np.asarray(vectors))
        if not copy and t.dtype == getattr(torch, self.dtype) and t.device == self.device:
            if t.ndim != 2 or t.shape[1] != self.dim or len(t) != len(ids):
                raise DataError(f"vectors must be ({len(ids)}, {self.dim}), got {tuple(t.shape)}", field="vectors")
            finite = torch.isfinite(t).all(dim=1)
            if not bool(finite.all()):
                raise DataError(f"vector {int((~finite).nonzero()[0])} of this batch is not finite",
                                field="vectors")
            self._map.add(ids)
            self._blocks.append(t)
            return
        if isinstance(t, torch.Tensor):
            t = t.detach().cpu().float().numpy()
        super().add(ids, t)

    def _add(self, labels: np.ndarray, x: np.ndarray) -> None:
        import torch

        owned = not x.flags.writeable  # e.g. a read-only memory map: copy it once here
        src = torch.from_numpy(x.copy() if owned else x)
        t = src.to(device=self.device, dtype=getattr(torch, self.dtype))
        self._blocks.append(t.clone() if t.data_ptr() == src.data_ptr() and not owned else t)  # never the caller's

    def _search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores, rows = matmul_topk(q, self._blocks, k, self.block_rows)
        return scores.cpu().numpy(), rows.cpu().numpy()

    def _remove(self, labels: np.ndarray) -> None:
        import torch

        kept, offset = [], 0
        for block in self._blocks:
            local = labels[(labels >= offset) & (labels < offset + len(block))] - offset
            if len(local):
                keep = torch.ones(len(block), dtype=torch.bool, device=block.device)
                keep[torch.as_tensor(local, device=block.device)] = False
                block_kept = block[keep]
            else:
                block_kept = block
            offset += len(block)
            if len(block_kept):
                kept.append(block_kept)
        self._blocks = kept

    def _store_nbytes(self) -> int:
        return int(sum(b.element_size() * b.nelement() for b in self._blocks))

    def _options(self) -> dict:
        return {"dtype": self.dtype}

    def vectors(self) -> Iterator[np.ndarray]:
        """Stored vectors in label order, float32, in chunks."""
        for block in self._blocks:
            for start in range(0, len(block), _CHUNK):
                yield block[start:start + _CHUNK].float().cpu().numpy()

    def save(self, folder: str | os.PathLike[str], *, kind: str = "entity") -> None:
        """``<kind>_embeddings.npy`` (float32) + ``index2<kind>.json`` + ``meta.json``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self._write_embeddings(index_files(folder, kind)[2], self.vectors())
        self._write_common(folder, kind, np.arange(len(self)), self._map.ids())

    @classmethod
    def load(cls, folder: str | os.PathLike[str], *, kind: str = "entity", expect_fingerprint: str | None = None,
             **options: Any) -> TorchIndex:
        """From ``<kind>_embeddings.npy`` (or a FAISS flat index file) + the id map; ``options`` as the
        constructor's (``dtype``, ``device``, ``block_rows``)."""
        folder = Path(folder)
        entry = _read_meta(folder, kind, expect_fingerprint)
        vectors, idmap, _ = _stored_vectors(folder, kind, entry)
        out = cls(vectors.shape[1], fingerprint=entry.get("fingerprint"), **options)
        ids = idmap.ids()
        for start in range(0, len(ids), _CHUNK):
            out.add(ids[start:start + _CHUNK], np.asarray(vectors[start:start + _CHUNK]))
        return out


# ---------------------------------------------------------------------------------------------------- Qdrant
class QdrantIndex(_Index):
    """Qdrant through qdrant-client: ``location=":memory:"`` (local, in-process — tests), ``path=`` (local,
    on disk) or ``url=`` (a server; ``api_key``). One ``collection`` (recreated empty on construction),
    ``distance`` "dot" (the caller's normalised vectors: identical to FAISS inner product) or "cosine"
    (Qdrant normalises). Ids map to integer point ids (= labels); upserts go in batches of ``batch_size``.
    :meth:`save` writes the vectors (read back from the collection) in the npy layout; :meth:`load` upserts
    them into a fresh collection."""

    backend = "qdrant"
    renumbers = False

    def __init__(self, dim: int, location: str = ":memory:", *, path: str | os.PathLike[str] | None = None,
                 url: str | None = None, api_key: str | None = None, collection: str = "vectors",
                 distance: str = "dot", batch_size: int = 1024, fingerprint: str | None = None) -> None:
        from qdrant_client import QdrantClient, models

        super().__init__(dim, fingerprint)
        if distance not in ("dot", "cosine"):
            raise ValueError(f"distance must be 'dot' or 'cosine', got {distance!r}")
        self.distance, self.collection, self.batch_size = distance, collection, int(batch_size)
        self.location = url or (os.fspath(path) if path is not None else location)
        if url is not None:
            self.client = QdrantClient(url=url, api_key=api_key)
        elif path is not None:
            self.client = QdrantClient(path=os.fspath(path))
        else:
            self.client = QdrantClient(location=location, api_key=api_key)
        if self.client.collection_exists(collection):
            self.client.delete_collection(collection)
        metric = models.Distance.DOT if distance == "dot" else models.Distance.COSINE
        self.client.create_collection(collection, vectors_config=models.VectorParams(size=self.dim,
                                                                                     distance=metric))

    @property
    def kind_name(self) -> str:
        return f"qdrant-{self.distance}"

    def close(self) -> None:
        self.client.close()

    def _add(self, labels: np.ndarray, x: np.ndarray) -> None:
        from qdrant_client import models

        for start in range(0, len(x), self.batch_size):
            end = start + self.batch_size
            self.client.upsert(self.collection, points=models.Batch(ids=labels[start:end].tolist(),
                                                                    vectors=x[start:end].tolist()), wait=True)

    def _search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        from qdrant_client import models

        scores = np.full((len(q), k), -np.inf, dtype=np.float32)
        labels = np.full((len(q), k), -1, dtype=np.int64)
        for start in range(0, len(q), self.batch_size):
            requests = [models.QueryRequest(query=row.tolist(), limit=k) for row in q[start:start + self.batch_size]]
            for i, response in enumerate(self.client.query_batch_points(self.collection, requests=requests),
                                         start):
                points = response.points[:k]
                labels[i, :len(points)] = [p.id for p in points]
                scores[i, :len(points)] = [p.score for p in points]
        return scores, labels

    def _remove(self, labels: np.ndarray) -> None:
        from qdrant_client import models

        for start in range(0, len(labels), self.batch_size):
            self.client.delete(self.collection, points_selector=models.PointIdsList(
                points=labels[start:start + self.batch_size].tolist()), wait=True)

    def _store_nbytes(self) -> int:
        """Raw vector bytes (count × dim × 4) — Qdrant's own overhead (graph, payload index) not counted."""
        return len(self) * self.dim * 4

    def _options(self) -> dict:
        return {"distance": self.distance}

    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """``(labels ascending, vectors (n, dim) float32)`` read back from the collection."""
        labels, rows, offset = [], [], None
        while True:
            points, offset = self.client.scroll(self.collection, limit=self.batch_size, offset=offset,
                                                with_vectors=True, with_payload=False)
            labels += [p.id for p in points]
            rows += [p.vector for p in points]
            if offset is None:
                break
        labels_arr = np.asarray(labels, dtype=np.int64)
        order = np.argsort(labels_arr)
        x = np.asarray(rows, dtype=np.float32).reshape(-1, self.dim)
        return labels_arr[order], x[order]

    def save(self, folder: str | os.PathLike[str], *, kind: str = "entity") -> None:
        """``<kind>_embeddings.npy`` + ``index2<kind>.json`` (labels renumbered 0..n-1, rows in label order) +
        ``meta.json``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        labels, x = self.vectors()
        names, _ = self._map.lookup(labels[None])
        self._write_embeddings(index_files(folder, kind)[2], iter([x]))
        self._write_common(folder, kind, np.arange(len(labels)), names[0])

    @classmethod
    def load(cls, folder: str | os.PathLike[str], *, kind: str = "entity", expect_fingerprint: str | None = None,
             **options: Any) -> QdrantIndex:
        """A fresh collection (``options`` as the constructor's: ``location``, ``path``, ``url``,
        ``collection``, ``distance`` …) filled from ``<kind>_embeddings.npy`` (or a FAISS flat index file)."""
        folder = Path(folder)
        entry = _read_meta(folder, kind, expect_fingerprint)
        vectors, idmap, _ = _stored_vectors(folder, kind, entry)
        if entry.get("backend") == "qdrant":
            options = {**(entry.get("options") or {}), **options}
        out = cls(vectors.shape[1], fingerprint=entry.get("fingerprint"), **options)
        ids = idmap.ids()
        for start in range(0, len(ids), _CHUNK):
            out.add(ids[start:start + _CHUNK], np.asarray(vectors[start:start + _CHUNK]))
        return out


# --------------------------------------------------------------------------------------------------- factory
BACKENDS: dict[str, type[_Index]] = {"faiss": FaissIndex, "qdrant": QdrantIndex, "torch": TorchIndex}


def make_index(backend: str, dim: int, **options: Any) -> FaissIndex | QdrantIndex | TorchIndex:
    """A new empty index: ``backend`` "faiss" | "qdrant" | "torch", ``options`` its constructor's
    (``kind="ivfpq", nlist=…`` for FAISS; ``location``/``url`` for Qdrant; ``dtype`` for torch)."""
    if backend not in BACKENDS:
        raise KeyError(f"unknown index backend {backend!r}; known: {', '.join(BACKENDS)}")
    return BACKENDS[backend](dim, **options)  # type: ignore[return-value]


def load_index(folder: str | os.PathLike[str], *, kind: str = "entity", backend: str | None = None,
               expect_fingerprint: str | None = None, **options: Any) -> FaissIndex | QdrantIndex | TorchIndex:
    """Load ``kind``'s index from ``folder`` with ``backend`` (default: the one that saved it — from
    ``meta.json`` — or FAISS for a reference folder)."""
    folder = Path(folder)
    if backend is None:
        entry = _read_meta(folder, kind, None) if (folder / META).is_file() else {}
        backend = entry.get("backend", "faiss")
        if backend == "faiss" and not index_files(folder, kind)[0].is_file():
            backend = "torch" if index_files(folder, kind)[2].is_file() else "faiss"
    if backend not in BACKENDS:
        raise KeyError(f"unknown index backend {backend!r}; known: {', '.join(BACKENDS)}")
    return BACKENDS[backend].load(folder, kind=kind, expect_fingerprint=expect_fingerprint,  # type: ignore[attr-defined]
                                  **options)
