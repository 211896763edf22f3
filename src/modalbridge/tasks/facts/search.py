"""Slot search over one KG encoding (spec ``fact_linking.md`` §5): :class:`KGSearch` holds an entity index and a
predicate index (any :mod:`~modalbridge.tasks.facts.index` back-end) and answers the three slots of many queries
at once — subject and object against the entities, the relation against the predicates.

>>> import numpy as np
>>> e = np.eye(3, dtype=np.float32); p = np.eye(3, dtype=np.float32)[:2]
>>> kg = KGSearch.build(["Q1", "Q2", "Q3"], e, ["P1", "P2"], p, backend="torch")
>>> scores, ids = kg.search(np.stack([e[[2, 1, 0]]]), k=2)
>>> ids[0].tolist()
[['Q3', 'Q1'], ['P2', 'P1'], ['Q1', 'Q2']]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from modalbridge.tasks.facts.index import make_index

__all__ = ["INDEX_KINDS", "SLOT_TABLES", "KGSearch"]

#: the two indexes of a KG: (their name on disk — the reference's ``faiss_index_entity`` / ``faiss_index_rel`` —,
#: the KG table they hold)
INDEX_KINDS = (("entity", "entity"), ("rel", "predicate"))
#: the KG table each slot (subject, relation, object) is linked in
SLOT_TABLES = ("entity", "predicate", "entity")


def _table(scores: np.ndarray, ids: list[list[str]], k: int) -> tuple[np.ndarray, np.ndarray]:
    """A back-end's ragged result → ``(scores (n, k) −inf padded, ids (n, k) object None padded)``."""
    out_ids = np.full((len(ids), k), None, dtype=object)
    out_scores = np.full((len(ids), k), -np.inf, dtype=np.float32)
    for i, row in enumerate(ids):
        out_ids[i, :len(row)] = row
    width = min(k, scores.shape[1])
    out_scores[:, :width] = scores[:, :width]
    return out_scores, out_ids


class KGSearch:
    """An entity index and a predicate index of one KG encoding.

    Args:
        entities, predicates: vector indexes (``add``/``search``/``remove``) over unit KG entry vectors.
    """

    def __init__(self, entities: Any, predicates: Any):
        self.entities, self.predicates = entities, predicates

    @classmethod
    def build(cls, entity_ids: Sequence[str], entity_vectors: np.ndarray, predicate_ids: Sequence[str],
              predicate_vectors: np.ndarray, backend: str = "faiss", fingerprint: str | None = None,
              **options: Any) -> KGSearch:
        """Two new indexes of ``backend`` ("faiss" exact inner product by default, "qdrant", "torch") filled with
        the vectors (``options``: the back-end's, e.g. ``kind="flat16"``)."""
        dim = int(np.asarray(entity_vectors).shape[1])
        indexes = []
        for ids, vectors in ((entity_ids, entity_vectors), (predicate_ids, predicate_vectors)):
            index = make_index(backend, dim, fingerprint=fingerprint, **options)
            index.add(list(ids), np.ascontiguousarray(vectors, dtype=np.float32))
            indexes.append(index)
        return cls(*indexes)

    def remove(self, entity_ids: Sequence[str] = (), predicate_ids: Sequence[str] = ()) -> None:
        """Remove ids (the out-of-KG "outside" scenario); ids not in the index are ignored."""
        if len(entity_ids):
            self.entities.remove(list(entity_ids), missing_ok=True)
        if len(predicate_ids):
            self.predicates.remove(list(predicate_ids), missing_ok=True)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` per slot of ``queries`` (n, 3, D) unit slot vectors → ``(scores (n, 3, k) float32, ids (n, 3,
        k) object)``, best first; missing results (a KG smaller than k) are −inf / None."""
        q = np.asarray(queries, dtype=np.float32)
        if q.ndim != 3 or q.shape[1] != 3:
            raise ValueError(f"queries must be (n, 3, D) slot vectors, got shape {q.shape}")
        n = len(q)
        scores = np.full((n, 3, k), -np.inf, dtype=np.float32)
        ids = np.full((n, 3, k), None, dtype=object)
        if n == 0:
            return scores, ids
        ent_scores, ent_ids = _table(*self.entities.search(np.ascontiguousarray(np.concatenate([q[:, 0], q[:, 2]])),
                                                           k), k)
        scores[:, 0], ids[:, 0] = ent_scores[:n], ent_ids[:n]
        scores[:, 2], ids[:, 2] = ent_scores[n:], ent_ids[n:]
        scores[:, 1], ids[:, 1] = _table(*self.predicates.search(np.ascontiguousarray(q[:, 1]), k), k)
        return scores, ids
