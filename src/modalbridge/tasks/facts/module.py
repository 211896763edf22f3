"""The facts task's LightningModule (spec ``fact_linking.md`` §4–§6): :class:`FactsModule` trains and evaluates
every registered fact-linking model on :ref:`query batches <facts-batch>`.

Models (``model``, by the registered model's ``kind``):

* ``slot_linker`` (pre-ranker; with ``data.init_args.context: true`` the "+ Context" model) — InfoNCE per slot over
  the batch's candidate pools (gold entities/predicates of the batch + ``negatives_e`` random KG entities and
  ``negatives_p`` random predicates, drawn from the whole KG each step; card defaults 256 / 32). Validation
  re-encodes the KG into a fresh exact index every epoch and selects the epoch by the sum of the 16 recalls
  (``val/recall_sum``, the reference's rule).
* ``zero_shot_linker``, ``random_linker``, ``frequency_linker`` — baselines, evaluated only (``modalbridge
  test``).
* ``fact_reranker`` — the cross-encoder on top of a trained pre-ranker (``linker_ckpt``; kept frozen inside this
  module, so its checkpoint serves alone): trained with BCE on gold facts whose slots are each replaced with
  probability ``corrupt_p`` (0.2) by one of the entry's ``neighbours`` (10) nearest KG entries under the
  pre-ranker, descriptions (thesis) or labels (reference) masked with ``mask_p``; the epoch is selected by
  validation binary accuracy at σ > 0.5; testing re-ranks the pre-ranker's top-``rerank_k``³ candidate facts.
* ``qkv_detector`` — the QKV out-of-KG detector on a frozen pre-ranker (``linker_ckpt``): each step's KG is
  ``negatives_e`` / ``negatives_p`` random entries plus every batch gold kept with probability ``qkv_keep`` (0.5),
  label = the gold was kept.

Evaluation (every loader; ``test/<facet>/<metric>`` with several test facets): ``subj_acc``, ``rel_acc``,
``obj_acc``, ``fact_acc``, Recall@k per slot and fact (``subj_r10`` …), standard errors (``*_se``) and
``recall_sum`` (:func:`~.metrics.link_metrics`), searched with the ``index`` back-end (``faiss`` exact inner
product by default; ``qdrant`` in-process; ``torch``). Out-of-KG (pre-ranker): every validation tunes the
entropy and confidence thresholds per slot on the validation facet's "inside" (whole KG) vs "outside" (its golds
removed from the index) top-5 cosines — a hold-out of in-KG facts, as the thesis's REBEL-val hold-out — and
stores them in the checkpoint (buffers ``ookg_entropy``, ``ookg_confidence``); a test facet whose name holds
``out_of_kg`` is scored with the inside/outside protocol (``ookg_entropy_fact`` …, and the fair-coin
``ookg_random_*``). Per-record rankings stay in ``last_eval_rows`` (``pred`` ids, ``gold`` ids).
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from modalbridge.core.engine import TaskModule, load_module_checkpoint
from modalbridge.core.errors import DataError
from modalbridge.core.registry import create_model, model_entry
from modalbridge.tasks.facts import models as _models  # noqa: F401  (registers the facts models)
from modalbridge.tasks.facts.losses import candidate_pools, infonce_slot_losses, rerank_loss
from modalbridge.tasks.facts.metrics import KS, SLOTS, link_metrics, ookg_metrics
from modalbridge.tasks.facts.models import (
    MODEL_KINDS,
    best_facts,
    corrupt_fact,
    enumerate_candidates,
    format_fact_pair,
    mask_fact,
    nearest_neighbours,
    tokenize_entries,
    zero_shot_query_texts,
)
from modalbridge.tasks.facts.ookg import (
    confidence_scores,
    entropy_scores,
    qkv_kg_sample,
    qkv_loss,
    random_in_kg,
    tune_threshold,
)
from modalbridge.tasks.facts.search import SLOT_TABLES, KGSearch

log = logging.getLogger(__name__)

__all__ = ["INDEX_BACKENDS", "MASK_PARTS", "FactsModule"]

INDEX_BACKENDS = ("faiss", "qdrant", "torch")
MASK_PARTS = ("description", "label")
_ENCODE_CHUNK = 256


class FactsModule(TaskModule):
    """Trains and evaluates a registered facts model (module docstring).

    Args:
        model: registry name (``slot_linker``, ``zero_shot_linker``, ``random_linker``, ``frequency_linker``,
            ``fact_reranker``, ``qkv_detector``). model_kwargs: its builder's arguments.
        negatives_e, negatives_p: random KG entities / predicates per training step (pre-ranker, QKV).
        index: search back-end of evaluation (``faiss`` | ``qdrant`` | ``torch``); index_options: its constructor's
            options (``{"kind": "flat16"}``: FAISS with float16 storage, the Large KG in 2.3 GB). search_k:
            ranking length.
        dropout: the trained model's dropout probability while training (``None``: the encoder's own, 0.1 for
            MiniLM and distilroberta, as the reference; ``0``: none — short CPU runs learn faster).
        ks: Recall@k cut-offs. linker_ckpt: the trained pre-ranker under a re-ranker or QKV detector.
        linker_kwargs: the pre-ranker's builder arguments (filled from ``linker_ckpt``; lets a saved re-ranker or
            detector rebuild it without the file).
        rerank_k: re-ranked top-k per slot (k³ candidates). corrupt_p, neighbours: re-ranker negatives.
        mask_part, mask_p: re-ranker masking (``description`` 0.5: thesis; ``label`` 0.8: reference code).
        qkv_keep: probability that a batch gold stays in a QKV training step's KG.
        eval_seed: seed of evaluation draws (validation corruptions, the Random baselines).
        lr, weight_decay, optimizer, schedule, warmup_epochs, warmup_steps: :class:`TaskModule`'s (card: AdamW,
            5e-5, 1e-3, no schedule).
    """

    monitor, monitor_mode = "val/recall_sum", "max"

    def __init__(self, model: str = "slot_linker", model_kwargs: dict[str, Any] | None = None, *,
                 negatives_e: int = 256, negatives_p: int = 32, index: str = "faiss",
                 index_options: dict[str, Any] | None = None, search_k: int = 100, dropout: float | None = None,
                 ks: tuple[int, ...] = KS, linker_ckpt: str | None = None, linker_kwargs: dict | None = None,
                 rerank_k: int = 3, corrupt_p: float = 0.2, neighbours: int = 10, mask_part: str = "description",
                 mask_p: float = 0.5, qkv_keep: float = 0.5, eval_seed: int = 0, lr: float = 5e-5,
                 weight_decay: float = 1e-3, optimizer: str = "adamw", schedule: str = "constant",
                 warmup_epochs: float = 0.0, warmup_steps: int | None = None):
        super().__init__(lr=lr, weight_decay=weight_decay, optimizer=optimizer, schedule=schedule,
                         warmup_epochs=warmup_epochs, warmup_steps=warmup_steps)
        if index not in INDEX_BACKENDS:
            raise ValueError(f"index must be one of {'|'.join(INDEX_BACKENDS)}, got {index!r}")
        if mask_part not in MASK_PARTS:
            raise ValueError(f"mask_part must be one of {'|'.join(MASK_PARTS)}, got {mask_part!r}")
        if search_k < max(ks) or rerank_k < 1 or search_k < rerank_k:
            raise ValueError(f"search_k ({search_k}) must cover the largest recall cut-off {max(ks)} and rerank_k "
                             f"({rerank_k} >= 1)")
        if model not in MODEL_KINDS:
            model_entry(model)  # a KeyError listing the registered models when the name is unknown
            raise ValueError(f"model {model!r} is not a facts model (one of {', '.join(MODEL_KINDS)})")
        self.kind = MODEL_KINDS[model]
        if self.kind == "reranker":
            self.monitor, self.monitor_mode = "val/bin_acc", "max"
        elif self.kind == "qkv":
            self.monitor, self.monitor_mode = "val/ookg_qkv_macro", "max"
        self.linker = None
        if self.kind in ("reranker", "qkv"):
            if linker_kwargs is None and linker_ckpt is None:
                raise ValueError(f"model {model!r} sits on a trained pre-ranker: give linker_ckpt=<slot_linker .ckpt>")
            self.linker, linker_kwargs = _load_linker(linker_ckpt, linker_kwargs)
        self.save_hyperparameters()
        self.hparams.linker_kwargs = linker_kwargs
        kwargs = dict(model_kwargs or {})
        if self.kind == "qkv":
            kwargs.setdefault("dim", int(self.linker.dim))
        self.model = None if self.kind == "ranking" else create_model(model, **kwargs)
        self._model_kwargs = kwargs
        if dropout is not None and self.model is not None:
            if not 0.0 <= dropout < 1.0:
                raise ValueError(f"dropout must be in [0, 1), got {dropout}")
            for layer in self.model.modules():
                if isinstance(layer, torch.nn.Dropout):
                    layer.p = float(dropout)
        if self.kind == "ranking" and _needs_nothing(model, kwargs):
            self.model = create_model(model, **kwargs)
        self.register_buffer("ookg_entropy", torch.full((3,), math.log(5.0)))
        self.register_buffer("ookg_confidence", torch.zeros(3))
        self._search: KGSearch | None = None
        self._kg_vectors: tuple[torch.Tensor, torch.Tensor] | None = None
        self._neighbours: tuple[np.ndarray, np.ndarray] | None = None

    # -- data and models --------------------------------------------------------------------------------------
    @property
    def datamodule(self):
        dm = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        if dm is None:
            dm = getattr(self, "_datamodule", None)
        if dm is None:
            raise RuntimeError("FactsModule needs a FactsDataModule: run it through a Trainer with one, or call "
                               "attach(datamodule)")
        return dm

    def attach(self, datamodule) -> FactsModule:
        """Use ``datamodule`` (KG, tokenizer) outside a Trainer (inference, notebooks)."""
        self._datamodule = datamodule
        self._search, self._kg_vectors = None, None
        return self

    @property
    def encoder(self):
        """The pre-ranker whose vectors are searched (this module's model, or the frozen one under it)."""
        return self.linker if self.linker is not None else self.model

    def _build_ranking_model(self) -> None:
        if self.model is not None:
            return
        dm, kwargs = self.datamodule, dict(self._model_kwargs)
        if self.hparams.model == "random_linker":
            kwargs.setdefault("num_entities", len(dm.kg.entities))
            kwargs.setdefault("num_predicates", len(dm.kg.predicates))
            kwargs.setdefault("seed", self.hparams.eval_seed)
        elif self.hparams.model == "frequency_linker":
            kwargs.setdefault("train_gold", dm.train_gold())
        kwargs.setdefault("k", self.hparams.search_k)
        self.model = create_model(self.hparams.model, **kwargs).to(self.device)

    def optimizer_parameters(self) -> list[dict[str, Any]]:
        params = [p for n, p in self.named_parameters() if p.requires_grad and not n.startswith("linker.")]
        return [{"params": params, "weight_decay": self.weight_decay}]

    def on_fit_start(self) -> None:
        # from_pretrained encoders arrive in eval mode and Lightning keeps modes as they are: train with dropout,
        # as the reference does (a frozen pre-ranker stays in eval mode, see train())
        self.train()
        if self.kind in ("ranking", "zero_shot"):
            raise DataError(f"model {self.hparams.model!r} has nothing to train; evaluate it with `modalbridge "
                            "test --config …` (no --ckpt_path needed)", field="model.init_args.model")
        if self.kind == "reranker":
            ent, pred = self.kg_vectors()
            k = self.hparams.neighbours
            self._neighbours = (nearest_neighbours(ent.cpu().numpy(), k), nearest_neighbours(pred.cpu().numpy(), k))

    def on_test_start(self) -> None:
        if self.kind == "ranking":
            self._build_ranking_model()

    on_validation_start = on_test_start  # `modalbridge validate` of a baseline (fit refuses them first)

    def on_validation_epoch_start(self) -> None:
        super().on_validation_epoch_start()
        self._search = None
        if self.kind != "qkv":  # the QKV detector's pre-ranker is frozen: its KG vectors never change
            self._kg_vectors = None

    on_test_epoch_start = on_validation_epoch_start

    def _context(self):
        trainer = self._trainer
        return trainer.precision_plugin.forward_context() if trainer is not None else contextlib.nullcontext()

    def _step_rng(self, stream: int) -> np.random.Generator:
        rank = self.global_rank if self._trainer is not None else 0
        return np.random.default_rng((int(self.datamodule.seed), stream, int(self.global_step), int(rank)))

    # -- KG encoding and search ---------------------------------------------------------------------------------
    @torch.no_grad()
    def encode_entries(self, kind: str, rows: np.ndarray) -> torch.Tensor:
        """``(len(rows), D)`` unit vectors of KG entries ``rows`` of ``kind`` under the searched encoder."""
        dm, encoder = self.datamodule, self.encoder
        zero_shot = getattr(encoder, "kind", None) == "zero_shot"
        parts = []
        for start in range(0, len(rows), _ENCODE_CHUNK):
            batch = dm.entry_batch(kind, rows[start:start + _ENCODE_CHUNK], "zero_shot" if zero_shot else "linker")
            ids, mask = batch["entry_ids"].to(self.device), batch["entry_mask"].to(self.device)
            with self._context():
                parts.append((encoder.encode(ids, mask) if zero_shot else encoder.encode_entries(ids, mask)).float())
        dim = encoder.hidden if zero_shot else encoder.dim
        return torch.cat(parts) if parts else torch.zeros(0, dim, device=self.device)

    def kg_vectors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(entity vectors (Ne, D), predicate vectors (Np, D))`` of the whole KG (cached until the next
        evaluation epoch)."""
        if self._kg_vectors is None:
            kg = self.datamodule.kg
            self._kg_vectors = tuple(self.encode_entries(kind, np.arange(len(kg.table(kind))))
                                     for kind in ("entity", "predicate"))
        return self._kg_vectors

    def kg_search(self, without: tuple[np.ndarray, np.ndarray] | None = None) -> KGSearch:
        """The KG's entity and predicate indexes (``index`` back-end); ``without``: (entity ids, predicate ids)
        removed (a fresh index, the out-of-KG "outside" scenario)."""
        if without is None and self._search is not None:
            return self._search
        kg = self.datamodule.kg
        ent, pred = (v.cpu().numpy() for v in self.kg_vectors())
        search = KGSearch.build(kg.entity_ids.tolist(), ent, kg.predicate_ids.tolist(), pred,
                                backend=self.hparams.index, **dict(self.hparams.index_options or {}))
        if without is not None:
            search.remove(*without)
            return search
        self._search = search
        return search

    def gold_ids(self, gold: torch.Tensor | np.ndarray) -> np.ndarray:
        """``(n, 3)`` KG rows → ``(n, 3)`` object array of KG ids."""
        gold = np.asarray(gold.cpu() if isinstance(gold, torch.Tensor) else gold, dtype=np.int64)
        kg = self.datamodule.kg
        out = np.empty(gold.shape, dtype=object)
        for col, kind in enumerate(SLOT_TABLES):
            out[:, col] = kg.table(kind).ids.take(gold[:, col]).tolist()
        return out

    def row_ids(self, ranking: torch.Tensor) -> np.ndarray:
        """``(n, 3, k)`` KG rows (−1 = none) → object array of ids (None for −1)."""
        ranking = np.asarray(ranking.cpu(), dtype=np.int64)
        kg = self.datamodule.kg
        out = np.full(ranking.shape, None, dtype=object)
        for col, kind in enumerate(SLOT_TABLES):
            rows = ranking[:, col]
            ok = rows >= 0
            out[:, col][ok] = kg.table(kind).ids.take(rows[ok]).tolist()
        return out

    # -- model --------------------------------------------------------------------------------------------------
    def encode_queries(self, batch: dict[str, Any]) -> torch.Tensor:
        """``(B, 3, D)`` unit slot vectors of a query batch under the searched encoder."""
        encoder = self.encoder
        if getattr(encoder, "kind", None) == "zero_shot":
            texts = [t for triple in batch["triples"] for t in zero_shot_query_texts(*triple)]
            enc = self.datamodule.tokenizer(texts, padding=True, truncation=True,
                                            max_length=self.datamodule.hparams.entry_max_length, return_tensors="pt")
            vectors = encoder.encode(enc["input_ids"].to(self.device), enc["attention_mask"].to(self.device))
            return vectors.float().view(len(batch["triples"]), 3, -1)
        return encoder.encode_queries(batch["query_ids"], batch["query_mask"], batch["marker_pos"]).float()

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        return {"query": self.encode_queries(batch)}

    def _pair_batch(self, triples: list[tuple[str, str, str]], facts: np.ndarray,
                    rng: np.random.Generator | None = None) -> dict[str, torch.Tensor]:
        """Re-ranker inputs of (triple, candidate fact rows) pairs; masked with ``rng`` (training)."""
        dm = self.datamodule
        facts = np.asarray(facts, dtype=np.int64)
        columns = []  # per slot: (labels, descriptions) of the candidates' KG rows, one gather each
        for col, kind in enumerate(SLOT_TABLES):
            table = dm.kg.table(kind)
            columns.append((table.labels.take(facts[:, col]).tolist(), table.descriptions.take(facts[:, col]).tolist()))
        texts = []
        for i, triple in enumerate(triples):
            pairs = [(labels[i], descriptions[i]) for labels, descriptions in columns]
            if rng is not None:
                pairs = mask_fact(pairs, rng, self.hparams.mask_p, self.hparams.mask_part, dm.tokenizer.mask_token)
            texts.append(format_fact_pair(triple, pairs))
        enc = dm.tokenizer(texts, padding=True, truncation=True, max_length=dm.hparams.query_max_length,
                           return_tensors="pt")
        return {"input_ids": enc["input_ids"].to(self.device), "attention_mask": enc["attention_mask"].to(self.device)}

    # -- training -----------------------------------------------------------------------------------------------
    def training_loss(self, batch):
        if self.kind == "linker":
            return self._linker_loss(batch)
        if self.kind == "reranker":
            gold = batch["gold"].cpu().numpy()
            rng = self._step_rng(1)
            facts, labels = corrupt_fact(gold, self._neighbours, self.hparams.corrupt_p, rng)
            logits = self.model(self._pair_batch(batch["triples"], facts, rng))["logits"]
            return rerank_loss(logits, torch.as_tensor(labels, device=self.device)), {}
        if self.kind == "qkv":
            with torch.no_grad():
                q = self.encode_queries(batch)
            ent, pred = self.kg_vectors()
            entities, predicates, labels = qkv_kg_sample(batch["gold"].cpu().numpy(), len(ent), len(pred),
                                                         self.hparams.negatives_e, self.hparams.negatives_p,
                                                         self.hparams.qkv_keep, self._step_rng(2))
            logits = self.model(q, ent[torch.as_tensor(entities)], pred[torch.as_tensor(predicates)])
            return qkv_loss(logits, torch.as_tensor(labels, device=self.device)), {}
        raise RuntimeError(f"model {self.hparams.model!r} does not train")

    def _linker_loss(self, batch):
        dm, h = self.datamodule, self.hparams
        kg = dm.kg
        pools = candidate_pools(batch["gold"].cpu().numpy(), len(kg.entities), len(kg.predicates), h.negatives_e,
                                h.negatives_p, self._step_rng(0))
        texts = dm.entry_texts("entity", pools.entities) + dm.entry_texts("predicate", pools.predicates)
        entries = tokenize_entries(dm.tokenizer, texts, dm.hparams.entry_max_length)
        q = self.model.encode_queries(batch["query_ids"], batch["query_mask"], batch["marker_pos"])
        vectors = self.model.encode_entries(entries["entry_ids"].to(self.device),
                                            entries["entry_mask"].to(self.device))
        n = len(pools.entities)
        slots = infonce_slot_losses(q, vectors[:n], vectors[n:], torch.as_tensor(pools.targets, device=self.device),
                                    self.model.scale)
        logs = {f"loss_{slot}": value.detach() for slot, value in zip(SLOTS, slots)}
        logs["scale"] = self.model.scale.detach()
        return slots.mean(), logs

    # -- evaluation ---------------------------------------------------------------------------------------------
    def _testing(self) -> bool:
        return self._trainer is not None and self.trainer.testing

    def evaluation_step(self, batch, dataloader_idx: int = 0):
        rows: dict[str, Any] = {"gold": batch["gold"].cpu()}
        if self.kind == "ranking":
            rows["ranking"] = self.model(batch)["ranking"].cpu()
        elif self.kind == "reranker" and not self._testing():
            gold = batch["gold"].cpu().numpy()
            rng = np.random.default_rng((int(self.hparams.eval_seed), int(batch["index"][0])))
            facts, labels = corrupt_fact(gold, self._neighbours or self._fresh_neighbours(),
                                         self.hparams.corrupt_p, rng)
            rows["logit"] = self.model(self._pair_batch(batch["triples"], facts))["logits"].float().cpu()
            rows["label"] = torch.as_tensor(labels)
        elif self.kind == "reranker":
            rows.update(self._rerank(batch))
        else:
            rows["query"] = self.encode_queries(batch).cpu()
        return rows

    def _fresh_neighbours(self) -> tuple[np.ndarray, np.ndarray]:
        ent, pred = self.kg_vectors()
        k = self.hparams.neighbours
        self._neighbours = (nearest_neighbours(ent.cpu().numpy(), k), nearest_neighbours(pred.cpu().numpy(), k))
        return self._neighbours

    def _rerank(self, batch) -> dict[str, torch.Tensor]:
        """The pre-ranker's top-k per slot → k³ candidate facts → cross-encoder scores → the best fact."""
        k = self.hparams.rerank_k
        q = self.encode_queries(batch)
        ent, pred = self.kg_vectors()
        top = torch.stack([(q[:, 0] @ ent.T).topk(k, dim=1).indices, (q[:, 1] @ pred.T).topk(k, dim=1).indices,
                           (q[:, 2] @ ent.T).topk(k, dim=1).indices], dim=1)  # (B, 3, k)
        candidates = enumerate_candidates(top, k)  # (B, k³, 3)
        b, c = candidates.shape[:2]
        triples = [t for t in batch["triples"] for _ in range(c)]
        logits = self.model(self._pair_batch(triples, candidates.reshape(-1, 3).cpu().numpy()))["logits"]
        ranked, _ = best_facts(candidates, logits.float().view(b, c))
        return {"fact": ranked[:, 0].cpu(), "pre": top[:, :, 0].cpu()}

    def compute_metrics(self, outputs: dict[str, Any], loader: str) -> dict[str, float]:
        gold = self.gold_ids(outputs["gold"])
        ks = tuple(self.hparams.ks)
        if "label" in outputs:  # re-ranker validation: binary accuracy of σ(logit) > 0.5
            hit = ((outputs["logit"] > 0) == outputs["label"].bool()).double().numpy() * 100.0
            from modalbridge.metrics.uncertainty import standard_error

            return {"bin_acc": float(hit.mean()), "bin_acc_se": standard_error(hit), "n": float(len(hit))}
        if "fact" in outputs:  # re-ranker test: the re-ranked fact; the pre-ranker's top-1 beside it
            metrics = link_metrics(self.row_ids(outputs["fact"][:, :, None]), gold, ks=(1,))
            pre = link_metrics(self.row_ids(outputs["pre"][:, :, None]), gold, ks=(1,))
            metrics.update({f"pre_{k}": v for k, v in pre.items() if k.endswith("acc") or k.endswith("acc_se")})
            return metrics
        if "ranking" in outputs:
            outputs["pred"] = pred = self.row_ids(outputs["ranking"])
            return link_metrics(pred, gold, ks)
        if self.kind == "qkv":
            return self._qkv_metrics(outputs, gold)
        queries = outputs["query"].numpy()
        scores, pred = self.kg_search().search(queries, self.hparams.search_k)
        outputs["pred"] = pred
        metrics = link_metrics(pred, gold, ks)
        if self.kind == "linker":
            metrics.update(self._ookg_metrics(queries, scores[..., :5], gold, loader, outputs))
        return metrics

    def _outside_top5(self, queries: np.ndarray, gold: np.ndarray) -> np.ndarray:
        """Top-5 cosines with every gold entity and predicate of ``gold`` removed from the index."""
        without = (np.unique(np.concatenate([gold[:, 0], gold[:, 2]]).astype(str)), np.unique(gold[:, 1].astype(str)))
        return self.kg_search(without=without).search(queries, 5)[0]

    def _ookg_metrics(self, queries: np.ndarray, inside: np.ndarray, gold: np.ndarray, loader: str,
                      outputs: dict[str, Any]) -> dict[str, float]:
        """Out-of-KG scores of one loader (module docstring); each detector's per-record fact score (0, 50 or 100:
        (inside right + outside right) / 2, whose mean is the ``ookg_<detector>_fact`` metric) is added to
        ``outputs`` as ``ookg_<detector>_fact`` (paired comparisons of detectors)."""
        testing = self._testing()
        if testing and "out_of_kg" not in loader:
            return {}
        outside = self._outside_top5(queries, gold)
        if not (np.isfinite(inside).all() and np.isfinite(outside).all()):
            log.warning("out-of-KG scores skipped on %s: the KG has fewer than 5 entries of a kind", loader)
            return {}
        scores = {"entropy": (entropy_scores(inside), entropy_scores(outside)),
                  "confidence": (confidence_scores(inside), confidence_scores(outside))}
        if not testing:  # tune the thresholds on this hold-out of in-KG facts (inside vs outside)
            truth = np.concatenate([np.ones(len(inside), bool), np.zeros(len(outside), bool)])
            for name, (s_in, s_out) in scores.items():
                buffer = getattr(self, f"ookg_{name}")
                for j in range(3):
                    theta, _ = tune_threshold(np.concatenate([s_in[:, j], s_out[:, j]]), truth,
                                              higher_is_in=name == "confidence")
                    buffer[j] = theta
        out: dict[str, float] = {}
        entropy, confidence = self.ookg_entropy.cpu().numpy(), self.ookg_confidence.cpu().numpy()
        decisions = {"entropy": (scores["entropy"][0] <= entropy, scores["entropy"][1] <= entropy),
                     "confidence": (scores["confidence"][0] >= confidence, scores["confidence"][1] >= confidence),
                     "random": (random_in_kg(inside.shape[:2], rng=self.hparams.eval_seed),
                                random_in_kg(outside.shape[:2], rng=self.hparams.eval_seed + 1))}
        for name, (d_in, d_out) in decisions.items():
            outputs[f"ookg_{name}_fact"] = torch.as_tensor((d_in.all(1).astype(np.float64)
                                                            + (~d_out).all(1).astype(np.float64)) * 50.0)
            for key, value in ookg_metrics(d_in, d_out).items():
                if not key.startswith("n_"):
                    out[f"ookg_{name}_{key}"] = value
        return out

    def _qkv_metrics(self, outputs: dict[str, Any], gold: np.ndarray) -> dict[str, float]:
        """The QKV detector on the inside (whole KG) and outside (golds removed) scenarios."""
        ent, pred = self.kg_vectors()
        q = outputs["query"].to(ent.device)
        rows = np.asarray(outputs["gold"], dtype=np.int64)
        keep_e = torch.ones(len(ent), dtype=torch.bool)
        keep_e[torch.as_tensor(np.unique(np.concatenate([rows[:, 0], rows[:, 2]])))] = False
        keep_p = torch.ones(len(pred), dtype=torch.bool)
        keep_p[torch.as_tensor(np.unique(rows[:, 1]))] = False
        with torch.no_grad():
            inside = self.model.in_kg(q, ent, pred).cpu().numpy()
            outside = self.model.in_kg(q, ent[keep_e.to(ent.device)], pred[keep_p.to(pred.device)]).cpu().numpy()
        metrics = {f"ookg_qkv_{k}": v for k, v in ookg_metrics(inside, outside).items() if not k.startswith("n_")}
        metrics["ookg_qkv_macro"] = float(np.mean([metrics[f"ookg_qkv_{s}"] for s in SLOTS]))
        return metrics

    def metric_mode(self, name: str) -> str:
        if name.endswith("_se"):
            return "min"
        return "max"

    def train(self, mode: bool = True) -> FactsModule:
        """Train mode for the trained model only: a frozen pre-ranker under a re-ranker or detector stays in eval
        mode (no dropout)."""
        super().train(mode)
        if self.linker is not None:
            self.linker.eval()
        return self


def _needs_nothing(model: str, kwargs: dict) -> bool:
    """Whether a ranking baseline's builder can run with ``kwargs`` alone (no data module statistics)."""
    params = inspect.signature(model_entry(model).builder).parameters
    required = [n for n, p in params.items() if p.default is inspect.Parameter.empty]
    return all(n in kwargs for n in required) and (model != "frequency_linker" or "train_gold" in kwargs)


def _load_linker(ckpt: str | None, kwargs: dict | None):
    """``(frozen SlotLinker, its builder kwargs)`` from a pre-ranker checkpoint, or a skeleton from ``kwargs``
    (the weights then come from the enclosing module's state dict)."""
    if kwargs is not None:
        linker = create_model("slot_linker", **kwargs)
    else:
        path = Path(ckpt).expanduser()
        if not path.is_file():
            raise DataError("pre-ranker checkpoint not found (train one with `modalbridge fit --config "
                            "configs/facts/world.yaml`)", path=path, field="model.init_args.linker_ckpt")
        module, _ = load_module_checkpoint(str(path), FactsModule)
        if module.kind != "linker":
            raise DataError(f"linker_ckpt holds a {module.hparams.model!r} model, not a slot_linker", path=path,
                            field="model.init_args.linker_ckpt")
        linker, kwargs = module.model, dict(module.hparams.model_kwargs or {})
    for p in linker.parameters():
        p.requires_grad_(False)
    return linker.eval(), kwargs
