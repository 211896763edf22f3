"""``modalbridge link``: open-IE surface triples → knowledge-graph facts with a trained facts model (spec
``fact_linking.md`` §5).

    modalbridge link "Michael Jordan | played for | Chicago Bulls" --ckpt runs/facts/world/checkpoints/best-….ckpt
    modalbridge link --sentence "Michael Jordan, who was born in Brooklyn, played for Chicago Bulls." --ckpt …
    modalbridge link falb/test_transductive.json --gold --ckpt … --save-index index/   # later runs: --index index/

Steps (:class:`Linker`): the checkpoint's module (a ``slot_linker``, its "+ Context" variant, a ``fact_reranker``
or the zero-shot encoder) and the data module it was trained with (same KG and tokenizer; ``--kg`` swaps the KG)
are rebuilt; every KG entity and predicate is encoded into two vector indexes (FAISS exact inner product by
default, Qdrant in-process or at ``--qdrant-url``, or torch) — or the indexes are loaded from ``--index``, refused
when another encoder built them (:func:`~.index.encoder_fingerprint` of the searched encoder's weights); each
triple's three slot vectors are searched (subject and object among the entities, relation among the predicates);
each slot gets an out-of-KG verdict from the entropy (or confidence) of its top-5 cosines with the thresholds tuned
in the checkpoint's validation; a re-ranker checkpoint then scores the ``rerank_k``³ facts built from each slot's
top ``rerank_k`` and keeps the best (σ(logit) is its probability). A slot judged out of the KG is ∅ (``None``) in
the linked fact.

Inputs: triples ``"s | r | o"`` as arguments (``--context``: their sentence), files of them (``.txt``: one per
line, ``#`` comments; ``.json`` / ``.jsonl``: a JSON array or JSON Lines of triple strings, ``[s, r, o]`` lists or
objects with ``extraction`` and optional ``sentence`` — FaLB records, whose ``fact_ids`` ``--gold`` marks the links
against), and ``--sentence TEXT`` (triples extracted first by :func:`~.oie.extract_triples`).

Outputs: a table on stdout; ``--out`` JSON Lines, one object per triple::

    {"extraction": [s, r, o], "sentence": str | null,
     "links": {"subj": [{"id", "label", "score"}, … top -k], "rel": [...], "obj": [...]},
     "in_kg": {"subj": bool | null, "rel": …, "obj": …},        # null: no verdict (a KG of < 5 entries)
     "ookg_score": {"subj": float, …},                          # entropy (nats) or confidence; not with none
     "fact": [id | null, id | null, id | null],                 # top-1 (re-ranked), null where out of the KG
     "fact_probability": float,                                 # re-ranker only: σ(logit) of the fact
     "gold": [Q…, P…, Q…], "correct": {"subj", "rel", "obj", "fact": bool}}   # --gold only

and ``--report``: a self-contained HTML table of the linked facts (✓/✗ with ``--gold``). A gold id absent from
the KG expects ∅ (the slot judged out of the KG).
"""

from __future__ import annotations

import inspect
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from modalbridge.core.errors import DataError
from modalbridge.tasks.facts.metrics import SLOTS
from modalbridge.tasks.facts.search import INDEX_KINDS, SLOT_TABLES, KGSearch

log = logging.getLogger(__name__)

__all__ = ["OOKG_METHODS", "Linker", "Query", "link_cli", "read_queries"]

#: out-of-KG verdicts: the entropy or confidence heuristic on the top-5 cosines, or none (every slot linked)
OOKG_METHODS = ("entropy", "confidence", "none")
#: triples encoded and searched per step
BATCH = 64
#: KG entries encoded and added to an index per step (bounds memory at Wikidata scale)
ENCODE_CHUNK = 65_536
#: (triple, candidate fact) pairs per re-ranker forward pass
PAIR_BATCH = 256
#: triples printed in detail (the rest are only in --out and --report)
PRINT_LIMIT = 50
_LINKING_KINDS = ("linker", "reranker", "zero_shot")
_INPUT_SUFFIXES = (".txt", ".json", ".jsonl")


# ================================================================================================== inputs
@dataclass(frozen=True)
class Query:
    """One surface triple to link.

    ``triple``: (subject, relation, object) strings; ``sentence``: the sentence it comes from (the context of a
    "+ Context" model; None when unknown); ``original``: a FaLB record's ``org_extraction`` (the mentions the
    sentence holds); ``gold``: a FaLB record's ``fact_ids``; ``source``: where it was given (messages, table).
    """

    triple: tuple[str, str, str]
    sentence: str | None = None
    original: tuple[str, str, str] | None = None
    gold: tuple[str, str, str] | None = None
    source: str = ""


def _is_file(text: str) -> bool:
    try:
        return Path(text).expanduser().is_file()
    except (OSError, ValueError):  # a triple too long for a file name, a NUL byte …
        return False


def _input_suffix(path: Path) -> str:
    """``.txt`` / ``.json`` / ``.jsonl`` of ``path``, a ``.gz`` / ``.bz2`` ending looked through."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in (".gz", ".bz2"):
        suffixes.pop()
    return suffixes[-1] if suffixes else ""


def _as_triple(value: Any, path: Path, row: int, field: str) -> tuple[str, str, str]:
    """A JSON value (``"s | r | o"`` or ``[s, r, o]``) → a stripped triple; anything else is a DataError."""
    from modalbridge.tasks.facts.falb import parse_triple

    if isinstance(value, str):
        return parse_triple(value, path=path, row=row)
    if isinstance(value, (list, tuple)) and len(value) == 3 and all(isinstance(v, str) and v.strip() for v in value):
        return tuple(v.strip() for v in value)  # type: ignore[return-value]
    raise DataError(f"expected a triple 's | r | o' or [s, r, o] of non-empty strings, got {value!r:.80}",
                    path=path, row=row, field=field)


def _json_query(item: Any, path: Path, row: int, context: str | None) -> Query:
    """One item of a JSON input file → a :class:`Query` (module docstring: the accepted forms)."""
    from modalbridge.tasks.facts.falb import validate_record

    source = f"{path.name}:{row}"
    if not isinstance(item, dict):
        return Query(_as_triple(item, path, row, "triple"), context, source=source)
    if "fact_ids" in item:  # a FaLB record: the benchmark's own validation
        record, problem = validate_record(item)
        if problem is not None:
            raise DataError(problem[2], path=path, row=row, field=problem[1])
        original = record.get("org_extraction")
        return Query(tuple(record["extraction"]), record["sentence"] or context,
                     tuple(original) if original else None, tuple(record["fact_ids"]), source)
    if "extraction" not in item:
        raise DataError("an object needs an 'extraction' (a triple 's | r | o' or [s, r, o]; optional 'sentence', "
                        "'fact_ids')", path=path, row=row, field="extraction")
    sentence = item.get("sentence")
    if sentence is not None and not isinstance(sentence, str):
        raise DataError(f"must be a string, got {type(sentence).__name__}", path=path, row=row, field="sentence")
    return Query(_as_triple(item["extraction"], path, row, "extraction"), sentence or context, source=source)


def _read_file(path: Path, context: str | None) -> list[Query]:
    """The triples of a ``.txt`` or ``.json`` / ``.jsonl`` input file (module docstring)."""
    from modalbridge.io.records import iter_json_array, iter_json_lines, open_text
    from modalbridge.tasks.facts.falb import parse_triple

    suffix = _input_suffix(path)
    if suffix == ".txt":
        with open_text(path, "a text file of triples, one 'subject | relation | object' per line") as fh:
            lines = [(n, line.strip()) for n, line in enumerate(fh, start=1)]
        return [Query(parse_triple(text, path=path, row=n), context, source=f"{path.name}:{n}")
                for n, text in lines if text and not text.startswith("#")]
    if suffix not in (".json", ".jsonl"):
        raise DataError(f"unknown input file type {suffix or '(no suffix)'!r}: give a .txt file of triples (one per "
                        "line) or a .json / .jsonl file (triples or FaLB records)", path=path)
    with open_text(path, "a JSON / JSON Lines file of triples") as fh:
        head = fh.read(4096).lstrip()
    if head.startswith("["):
        items = iter_json_array(path, lines=True, what="a JSON array of triples or FaLB records", noun="record")
    else:
        items = iter_json_lines(path, what="a JSON Lines file of triples or FaLB records", noun="record")
    return [_json_query(item, path, row, context) for _, row, item in items]


def read_queries(triples: Sequence[str] = (), sentences: Sequence[str] = (), context: str | None = None
                 ) -> list[Query]:
    """The queries of the ``link`` verb's inputs: ``triples`` (``"s | r | o"`` or input files), then the triples
    the open-IE extractor finds in each of ``sentences``. ``context``: the sentence of the given triples."""
    from modalbridge.tasks.facts.falb import parse_triple
    from modalbridge.tasks.facts.oie import extract_triples

    queries: list[Query] = []
    for number, text in enumerate(triples, start=1):
        if _is_file(text):
            queries += _read_file(Path(text).expanduser(), context)
            continue
        if "|" not in text and _input_suffix(Path(text)) in _INPUT_SUFFIXES:
            raise DataError("input file not found (a .txt / .json / .jsonl file of triples)", path=text)
        try:
            triple = parse_triple(text)
        except DataError as exc:
            raise DataError(f"{exc.message}; give a triple 'subject | relation | object' or a .txt / .jsonl file "
                            "of them", field=f"triple argument {number}") from None
        queries.append(Query(triple, context, source=f"argument {number}"))
    for number, sentence in enumerate(sentences, start=1):
        found = extract_triples(sentence)
        if not found:
            log.warning("--sentence %d: the open-IE extractor found no triple in %r", number, sentence[:80])
        queries += [Query(e.triple, e.sentence, source=f"--sentence {number}") for e in found]
    return queries


# ================================================================================================== linker
def _load_module(ckpt: str | Path):
    """``(FactsModule in eval mode, the checkpoint's data hparams)``, or a DataError for a checkpoint that is
    not a facts linker / re-ranker (checked before anything is built)."""
    from modalbridge.core.engine import load_module_checkpoint, read_checkpoint
    from modalbridge.tasks.facts.models import MODEL_KINDS
    from modalbridge.tasks.facts.module import FactsModule

    state = read_checkpoint(ckpt)
    written_by = state.get("modalbridge_class")
    if written_by != "FactsModule":
        raise DataError(f"not a facts checkpoint (written by {written_by or 'an unknown module'}); give the .ckpt "
                        "of a slot_linker or fact_reranker from `modalbridge fit --config configs/facts/…`",
                        path=ckpt)
    model = dict(state.get("hyper_parameters") or {}).get("model", "slot_linker")
    kind = MODEL_KINDS.get(model)
    if kind not in _LINKING_KINDS:
        what = ("an out-of-KG detector (QKV): it judges links, it makes none" if kind == "qkv" else
                "a baseline that ranks without encoding the triple" if kind == "ranking" else "no facts model")
        raise DataError(f"this checkpoint holds a {model!r} model, {what}; give a slot_linker or fact_reranker "
                        "checkpoint", path=ckpt, field="--ckpt")
    module, data = load_module_checkpoint(str(ckpt), FactsModule)
    return module, dict(data.get("hparams") or {})


def _datamodule(hparams: dict, kg: str | Path | None, ckpt: str | Path):
    """The data module the checkpoint was trained with (its KG and tokenizer), its KG replaced by ``kg``."""
    from modalbridge.tasks.facts.data import FactsDataModule

    accepted = inspect.signature(FactsDataModule.__init__).parameters
    hp = {k: v for k, v in hparams.items() if k in accepted}
    if kg is not None:
        hp.update(kg=str(kg), kg_scope="large")
    elif not hp:
        raise DataError("this checkpoint does not record the data it was trained with; give the KG with --kg",
                        path=ckpt, field="--kg")
    dm = FactsDataModule(**hp)
    try:
        dm.kg  # noqa: B018  (read now: a missing KG is reported here, naming --kg)
    except DataError as exc:
        if kg is not None:
            raise
        raise DataError(f"the KG this checkpoint was trained with is not here ({exc}); give one with --kg",
                        field="--kg") from None
    return dm


def _untuned(entropy: torch.Tensor, confidence: torch.Tensor) -> bool:
    """Whether out-of-KG thresholds are still the constructor's (every slot in the KG)."""
    return bool(torch.allclose(entropy, torch.full_like(entropy, math.log(5.0))) and not confidence.any())


class Linker:
    """A trained facts model linking surface triples to a KG (module docstring).

    Args:
        module: a :class:`~.module.FactsModule` of kind linker, re-ranker or zero-shot.
        datamodule: its :class:`~.data.FactsDataModule` (KG, tokenizer, query format).
        backend: ``faiss`` | ``qdrant`` | ``torch`` vector index. index: a saved index folder to load instead
            of encoding the KG (refused when another encoder built it). qdrant_url: a Qdrant server (implies the
            ``qdrant`` back-end). precision: ``auto`` | ``bf16-mixed`` | ``32-true`` (encoders and re-ranker).
        device: ``cpu`` | ``cuda`` … (default: CUDA when available).
    """

    def __init__(self, module, datamodule, *, backend: str = "faiss", index: str | Path | None = None,
                 qdrant_url: str | None = None, precision: str = "auto", device: str | None = None):
        from modalbridge.core.precision import resolve_precision
        from modalbridge.tasks.facts.index import encoder_fingerprint

        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.module = module.to(self.device).eval()
        self.data = datamodule
        self.module.attach(datamodule)
        self.kg = datamodule.kg
        self.backend = "qdrant" if qdrant_url else backend
        self.qdrant_url = qdrant_url
        self.precision = resolve_precision(precision, self.device.type)
        self.context = bool(datamodule.hparams.context)
        self.encoder_name = "slot_linker" if module.linker is not None else module.hparams.model
        #: the searched encoder's identity: name @ hash of its weights (stored in and checked against indexes)
        self.fingerprint = encoder_fingerprint(self.encoder_name, module.encoder)
        self.thresholds = self._thresholds()
        self.index_source = str(index) if index is not None else None
        self.search = self._load_search(Path(index)) if index is not None else self._build_search()

    @classmethod
    def from_checkpoint(cls, ckpt: str | Path, *, kg: str | Path | None = None, backend: str = "faiss",
                        index: str | Path | None = None, qdrant_url: str | None = None, precision: str = "auto",
                        device: str | None = None) -> Linker:
        """A linker from a ``.ckpt`` of ``modalbridge fit --config configs/facts/…`` (a slot_linker, a
        fact_reranker or the zero-shot encoder), with the checkpoint's training KG or ``kg``."""
        module, hparams = _load_module(ckpt)
        return cls(module, _datamodule(hparams, kg, ckpt), backend=backend, index=index, qdrant_url=qdrant_url,
                   precision=precision, device=device)

    # -- set-up -------------------------------------------------------------------------------------------------
    @property
    def model_name(self) -> str:
        """The checkpoint's model (``slot_linker``, ``fact_reranker`` …)."""
        return self.module.hparams.model

    @property
    def reranks(self) -> bool:
        return self.module.kind == "reranker"

    def _autocast(self):
        from modalbridge.core.precision import autocast

        return autocast(self.precision, self.device.type)

    def _thresholds(self) -> dict[str, np.ndarray]:
        """Per-slot (3,) out-of-KG thresholds: the checkpoint's, or — for a re-ranker, whose own are never tuned
        — those of the pre-ranker checkpoint it was trained on, when that file is still here."""
        entropy, confidence = self.module.ookg_entropy.cpu(), self.module.ookg_confidence.cpu()
        linker_ckpt = self.module.hparams.get("linker_ckpt")
        if self.reranks and _untuned(entropy, confidence) and linker_ckpt and Path(linker_ckpt).is_file():
            from modalbridge.core.engine import read_checkpoint

            state = read_checkpoint(linker_ckpt)["state_dict"]
            entropy = state.get("ookg_entropy", entropy).float()
            confidence = state.get("ookg_confidence", confidence).float()
        if _untuned(entropy, confidence):
            log.warning("the out-of-KG thresholds of this checkpoint were never tuned (no validation): every slot "
                        "is judged in the KG")
        return {"entropy": entropy.numpy().astype(np.float64), "confidence": confidence.numpy().astype(np.float64)}

    def _index_options(self, kind: str) -> dict[str, Any]:
        """Back-end options of ``kind``'s index: Qdrant gets one collection per kind (on a server, the two
        would otherwise replace each other)."""
        if self.backend != "qdrant":
            return {}
        options: dict[str, Any] = {"collection": f"modalbridge-facts-{kind}"}
        if self.qdrant_url:
            options["url"] = self.qdrant_url
        return options

    def _build_search(self):
        """Encode every KG entry (``ENCODE_CHUNK`` rows at a time) into a new entity and predicate index."""
        from modalbridge.tasks.facts.index import make_index

        indexes = []
        for kind, table_kind in INDEX_KINDS:
            table = self.kg.table(table_kind)
            index = None
            for start in range(0, len(table), ENCODE_CHUNK):
                rows = np.arange(start, min(start + ENCODE_CHUNK, len(table)))
                with torch.inference_mode(), self._autocast():
                    vectors = self.module.encode_entries(table_kind, rows).float().cpu().numpy()
                if index is None:
                    index = make_index(self.backend, vectors.shape[1], fingerprint=self.fingerprint,
                                       **self._index_options(kind))
                    if hasattr(index, "reserve"):
                        index.reserve(len(table))
                index.add(table.ids.take(rows).tolist(), vectors)
            if index is None:
                raise DataError(f"the KG has no {table_kind}: nothing to link the slots to", field="--kg")
            indexes.append(index)
        return KGSearch(*indexes)

    def _load_search(self, folder: Path):
        """The entity and predicate indexes of ``folder``, checked against this encoder and this KG."""
        from modalbridge.tasks.facts.index import load_index

        indexes = []
        for kind, table_kind in INDEX_KINDS:
            index = load_index(folder, kind=kind, backend=self.backend, expect_fingerprint=self.fingerprint,
                               **self._index_options(kind))
            ids = index.ids
            unknown = np.flatnonzero(self.kg.table(table_kind).indices_of(ids) < 0)
            if len(unknown):
                raise DataError(f"the {kind} index holds {len(unknown)} ids the KG lacks (e.g. {ids[unknown[0]]!r}): "
                                "it was built from another KG; give that KG with --kg, or rebuild the index",
                                path=folder, field="--index")
            indexes.append(index)
        return KGSearch(*indexes)

    def save_index(self, folder: str | Path) -> Path:
        """Write both indexes to ``folder`` in the reference layout (faiss_index_entity, index2entity.json,
        entity_embeddings.npy … + meta.json with this encoder's fingerprint)."""
        folder = Path(folder)
        for (kind, _), index in zip(INDEX_KINDS, (self.search.entities, self.search.predicates)):
            if self.backend == "faiss":
                index.save(folder, kind=kind, embeddings=True)  # the reference's folder, readable by any back-end
            else:
                index.save(folder, kind=kind)
        return folder

    def describe(self) -> str:
        """One line: model, encoder fingerprint, KG, index and precision."""
        from modalbridge.core.precision import describe_precision

        where = f"loaded from {self.index_source}" if self.index_source else "built"
        server = f" at {self.qdrant_url}" if self.qdrant_url else ""
        return (f"{self.model_name} (encoder {self.fingerprint}) · KG {len(self.kg.entities)} entities, "
                f"{len(self.kg.predicates)} predicates · {self.backend}{server} index {where} · "
                f"{describe_precision(self.precision, self.device.type)}")

    # -- linking ------------------------------------------------------------------------------------------------
    def encode(self, triples: Sequence[tuple[str, str, str]], contexts: Sequence[str | None] | None = None,
               originals: Sequence[tuple[str, str, str] | None] | None = None) -> np.ndarray:
        """``(n, 3, D)`` float32 unit slot vectors of ``triples`` (with their sentences for a "+ Context"
        model; ``originals``: FaLB ``org_extraction`` s, the mentions inside those sentences)."""
        from modalbridge.tasks.facts.models import format_query, tokenize_queries

        contexts = contexts if contexts is not None else [None] * len(triples)
        originals = originals if originals is not None else [None] * len(triples)
        parts = []
        for start in range(0, len(triples), BATCH):
            chunk = [tuple(t) for t in triples[start:start + BATCH]]
            texts = [format_query(*t, c if self.context else None, original=o if self.context else None)
                     for t, c, o in zip(chunk, contexts[start:start + BATCH], originals[start:start + BATCH])]
            batch: dict[str, Any] = {k: v.to(self.device) for k, v in tokenize_queries(
                self.data.tokenizer, texts, self.data.hparams.query_max_length).items()}
            batch["triples"] = chunk
            with torch.inference_mode(), self._autocast():
                parts.append(self.module.encode_queries(batch).float().cpu().numpy())
        dim = self.search.entities.dim
        return np.concatenate(parts) if parts else np.zeros((0, 3, dim), dtype=np.float32)

    def verdicts(self, top5: np.ndarray, method: str = "entropy") -> tuple[np.ndarray, np.ndarray | None]:
        """``(in_kg (n, 3) object array of bool / None, scores (n, 3) float or None)`` of the top-5 cosines
        ``(n, 3, 5)``: entropy ≤ threshold or confidence ≥ threshold (per slot); ``none`` → every slot in the KG.
        A slot with fewer than 5 results (a tiny KG) gets no verdict (None)."""
        from modalbridge.tasks.facts.ookg import confidence_scores, entropy_scores

        if method not in OOKG_METHODS:
            raise ValueError(f"method must be one of {', '.join(OOKG_METHODS)}, got {method!r}")
        n = len(top5)
        if method == "none":
            return np.full((n, 3), True, dtype=object), None
        complete = np.isfinite(top5).all(-1) & (top5.shape[-1] >= 5)
        safe = np.where(complete[..., None], top5, 0.0)[..., :5]
        if method == "entropy":
            scores = entropy_scores(safe)
            inside = scores <= self.thresholds["entropy"]
        else:
            scores = confidence_scores(safe)
            inside = scores >= self.thresholds["confidence"]
        verdict = np.where(complete, inside, None).astype(object)
        return verdict, np.where(complete, scores, np.nan)

    def rerank(self, triples: Sequence[tuple[str, str, str]], ids: np.ndarray, k: int = 3
               ) -> tuple[np.ndarray, np.ndarray]:
        """The re-ranker's best of the ``k``³ facts built from each triple's top-``k`` per slot (``ids``
        (n, 3, K ≥ k) object array of KG ids) → ``(facts (n, 3) object array of ids, probabilities (n,))``."""
        from modalbridge.tasks.facts.models import best_facts, enumerate_candidates

        k = max(1, min(int(k), ids.shape[-1], len(self.kg.entities), len(self.kg.predicates)))
        tables = [self.kg.table(kind) for kind in SLOT_TABLES]
        rows = np.stack([table.indices_of(ids[:, slot, :k].reshape(-1).tolist()).reshape(len(ids), k)
                         for slot, table in enumerate(tables)], axis=1)  # (n, 3, k)
        candidates = enumerate_candidates(rows, k)  # (n, k³, 3)
        flat = candidates.reshape(-1, 3)
        pair_triples = [tuple(t) for t in triples for _ in range(candidates.shape[1])]
        logits = []
        for start in range(0, len(flat), PAIR_BATCH):
            batch = self.module._pair_batch(pair_triples[start:start + PAIR_BATCH], flat[start:start + PAIR_BATCH])
            with torch.inference_mode(), self._autocast():
                logits.append(self.module.model(batch)["logits"].float().reshape(-1).cpu().numpy())
        scores = np.concatenate(logits).reshape(candidates.shape[:2])
        ranked, order = best_facts(candidates, scores)
        best = ranked[:, 0]  # (n, 3) KG rows
        facts = np.array([[tables[j].ids[int(best[i, j])] for j in range(3)] for i in range(len(best))],
                         dtype=object).reshape(-1, 3)
        top_logit = np.take_along_axis(scores, order[:, :1], axis=1)[:, 0]
        return facts, 1.0 / (1.0 + np.exp(-top_logit))

    def _entry(self, slot: int, entry_id: str, score: float) -> dict[str, Any]:
        table = self.kg.table(SLOT_TABLES[slot])
        return {"id": entry_id, "label": table.labels[table.index_of(entry_id)], "score": round(float(score), 4)}

    def link(self, triples: Sequence[tuple[str, str, str]], contexts: Sequence[str | None] | None = None,
             k: int = 5, *, ookg: str = "entropy", rerank_k: int = 3,
             originals: Sequence[tuple[str, str, str] | None] | None = None) -> list[dict[str, Any]]:
        """Link ``triples`` ((s, r, o) strings; ``contexts``: their sentences) → one dict per triple (the JSON
        Lines object of the module docstring, without the ``--gold`` fields): the top-``k`` KG entries per slot,
        the out-of-KG verdicts (``ookg``: ``entropy`` | ``confidence`` | ``none``) and the linked fact —
        re-ranked over ``rerank_k``³ candidates with a re-ranker checkpoint."""
        if k < 1:
            raise DataError(f"-k {k}: give a positive number of candidates per slot", field="-k")
        triples = [tuple(t) for t in triples]
        for number, t in enumerate(triples):
            if len(t) != 3 or not all(isinstance(x, str) and x.strip() for x in t):
                raise DataError(f"triple {number} is not three non-empty strings: {t!r:.80}", field="triples")
        contexts = list(contexts) if contexts is not None else [None] * len(triples)
        if len(contexts) != len(triples):
            raise ValueError(f"{len(contexts)} contexts for {len(triples)} triples")
        depth = max(k, 5, rerank_k if self.reranks else 1)
        out: list[dict[str, Any]] = []
        for start in range(0, len(triples), BATCH):
            chunk, sentences = triples[start:start + BATCH], contexts[start:start + BATCH]
            q = self.encode(chunk, sentences, None if originals is None else originals[start:start + BATCH])
            scores, ids = self.search.search(q, depth)
            in_kg, ookg_scores = self.verdicts(scores[..., :5], ookg)
            facts, probability = ids[:, :, 0].copy(), None
            if self.reranks:
                facts, probability = self.rerank(chunk, ids, rerank_k)
            for i, triple in enumerate(chunk):
                record: dict[str, Any] = {"extraction": list(triple), "sentence": sentences[i]}
                record["links"] = {slot: [self._entry(j, e, s) for e, s in zip(ids[i, j, :k], scores[i, j, :k])
                                          if e is not None] for j, slot in enumerate(SLOTS)}
                record["in_kg"] = {slot: None if v is None else bool(v) for slot, v in zip(SLOTS, in_kg[i])}
                if ookg_scores is not None:
                    record["ookg_score"] = {slot: None if math.isnan(v) else round(float(v), 4)
                                            for slot, v in zip(SLOTS, ookg_scores[i])}
                record["fact"] = [None if v is not None and not v else f for f, v in zip(facts[i].tolist(), in_kg[i])]
                if probability is not None:
                    record["fact_probability"] = round(float(probability[i]), 4)
                out.append(record)
        return out

    def judge(self, record: dict[str, Any], gold: Sequence[str]) -> dict[str, bool]:
        """``{"subj", "rel", "obj", "fact": correct}`` of a linked ``record`` against the gold ids (a gold id
        absent from the KG expects ∅: the slot judged out of the KG)."""
        expected = [g if g in self.kg else None for g in gold]
        marks = {slot: record["fact"][j] == expected[j] for j, slot in enumerate(SLOTS)}
        marks["fact"] = all(marks.values())
        return marks


# ================================================================================================== the verb
def _mark(ok: bool | None) -> str:
    return "" if ok is None else ("✓" if ok else "✗")


def _verdict_text(value: bool | None) -> str:
    return "—" if value is None else ("in KG" if value else "out of KG")


def _print_record(number: int, query: Query, record: dict[str, Any]) -> None:
    correct = record.get("correct") or {}
    print(f"[{number}] {' | '.join(query.triple)}   ({query.source})")
    for slot in SLOTS:
        links = record["links"][slot]
        if not links:
            print(f"    {slot:<5} (no result)")
            continue
        top = links[0]
        print(f"    {slot:<5} {top['id']:<10} {top['label'][:36]:<36} {top['score']:>7.3f}  "
              f"{_verdict_text(record['in_kg'][slot]):<9} {_mark(correct.get(slot))}".rstrip())
        for alt in links[1:]:
            print(f"    {'':<5} {alt['id']:<10} {alt['label'][:36]:<36} {alt['score']:>7.3f}")
    fact = " · ".join(f if f is not None else "∅" for f in record["fact"])
    extra = f"   p {record['fact_probability']:.3f} (re-ranked)" if "fact_probability" in record else ""
    gold = f"   gold {' · '.join(record['gold'])} {_mark(correct.get('fact'))}" if "gold" in record else ""
    print(f"    fact  {fact}{extra}{gold}")


def _accuracy(records: list[dict[str, Any]]) -> dict[str, float] | None:
    judged = [r["correct"] for r in records if "correct" in r]
    if not judged:
        return None
    return {key: 100.0 * sum(c[key] for c in judged) / len(judged) for key in (*SLOTS, "fact")} | {"n": len(judged)}


def _report(path: Path, linker: Linker, queries: list[Query], records: list[dict[str, Any]],
            accuracy: dict[str, float] | None) -> Path:
    from modalbridge.core.report import table_html, write_report

    rows = []
    for number, (query, record) in enumerate(zip(queries, records), start=1):
        correct = record.get("correct") or {}
        row: dict[str, Any] = {"#": number, "triple": " | ".join(query.triple), "sentence": record["sentence"] or ""}
        for slot in SLOTS:
            top = record["links"][slot][0] if record["links"][slot] else None
            described = f"{top['id']} {top['label']} ({top['score']:.3f})" if top else "(no result)"
            if record["in_kg"][slot] is False:
                described = f"∅ (out of KG; nearest {described})"
            row[slot] = f"{described} {_mark(correct.get(slot))}".strip()
        row["fact"] = " · ".join(f if f is not None else "∅" for f in record["fact"])
        if "fact_probability" in record:
            row["p"] = record["fact_probability"]
        if "gold" in record:
            row["gold"] = " · ".join(record["gold"])
            row["correct"] = _mark(correct.get("fact"))
        rows.append(row)
    summary = [{"setting": "model", "value": linker.describe()}]
    if accuracy:
        summary += [{"setting": f"{key} accuracy %", "value": f"{accuracy[key]:.1f}"} for key in (*SLOTS, "fact")]
    return write_report(path, "Linked facts", [("Run", table_html(summary)),
                                              (f"{len(rows)} triples", table_html(rows))])


def link_cli(args) -> int:
    """``modalbridge link``: read the inputs, link them, print the table, write ``--out`` and ``--report``."""
    if args.top < 1:
        raise DataError(f"-k {args.top}: give a positive number of candidates per slot", field="-k")
    if args.rerank_k < 1:
        raise DataError(f"--rerank-k {args.rerank_k}: give a positive number", field="--rerank-k")
    if args.report and Path(args.report).suffix.lower() not in (".html", ".htm"):
        raise DataError(f"--report {args.report!r}: give a file name ending in .html (or '' to skip)",
                        field="--report")
    queries = read_queries(args.triples, args.sentence, args.context)
    if not queries:
        raise DataError("nothing to link: give triples 'subject | relation | object', a .txt / .jsonl file of them, "
                        "or --sentence TEXT" + (" (the open-IE extractor found no triple in the --sentence text)"
                                                if args.sentence else ""), field="triples")
    if args.gold and not any(q.gold for q in queries):
        raise DataError("--gold marks links against the fact_ids of FaLB records: give a FaLB file (records with "
                        "extraction and fact_ids)", field="--gold")
    linker = Linker.from_checkpoint(args.ckpt, kg=args.kg, backend=args.backend, index=args.index,
                                    qdrant_url=args.qdrant_url, precision=args.precision)
    print(linker.describe())
    if args.save_index:
        print(f"index saved in {linker.save_index(args.save_index)}")
    records = linker.link([q.triple for q in queries], [q.sentence for q in queries], args.top, ookg=args.ookg,
                          rerank_k=args.rerank_k, originals=[q.original for q in queries])
    if args.gold:
        for query, record in zip(queries, records):
            if query.gold is not None:
                record["gold"] = list(query.gold)
                record["correct"] = linker.judge(record, query.gold)
    thresholds = "" if args.ookg == "none" else " (thresholds s/r/o " + " / ".join(
        f"{t:.3f}" for t in linker.thresholds[args.ookg]) + ")"
    print(f"out-of-KG verdict: {args.ookg}{thresholds}")
    print(f"    {'slot':<5} {'id':<10} {'label':<36} {'cosine':>7}  verdict")
    for number, (query, record) in enumerate(zip(queries, records), start=1):
        if number > PRINT_LIMIT:
            print(f"… {len(records) - PRINT_LIMIT} more triples in the outputs")
            break
        _print_record(number, query, record)
    accuracy = _accuracy(records)
    if accuracy:
        print(f"accuracy over {accuracy['n']} FaLB records: " + ", ".join(f"{key} {accuracy[key]:.1f}%"
                                                                          for key in (*SLOTS, "fact")))
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", encoding="utf-8") as fh:
            for record in records:
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        print(f"{len(records)} linked triples written to {out}")
    if args.report:
        print(f"report: {_report(Path(args.report), linker, queries, records, accuracy)}")
    return 0
