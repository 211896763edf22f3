"""The facts LightningModule (spec ``fact_linking.md`` §4–§6) on the facts world with a tiny random-init BERT: the
pre-ranker's loss falls on a repeated batch; validation logs the slot/fact accuracies, recalls and out-of-KG
scores and tunes the out-of-KG thresholds into checkpointed buffers (testing only reads them); the zero-shot,
Random and Frequency baselines through ``Trainer.test`` (Frequency checked against counts taken from the facet
files); the three index back-ends agree; the re-ranker and the QKV detector train on a frozen pre-ranker and
reload without its checkpoint file; arguments that cannot work are refused."""

from __future__ import annotations

import json
import math
import shutil
from collections import Counter

import lightning as L
import numpy as np
import pytest
import torch

from modalbridge.core.errors import DataError
from modalbridge.nn.bert import TINY_BERT
from modalbridge.tasks.facts.metrics import SLOTS
from modalbridge.tasks.facts.module import FactsModule
from modalbridge.tasks.facts.search import KGSearch

from .conftest import TINY, tiny_datamodule

CROSS = {"bert_config": TINY_BERT}  # a tiny cross-encoder: no projection dim


def trainer(**kwargs) -> L.Trainer:
    options = {"max_epochs": 1, "limit_train_batches": 2, "limit_val_batches": 1, "num_sanity_val_steps": 0,
               "logger": False, "enable_progress_bar": False, "enable_model_summary": False,
               "enable_checkpointing": False, "accelerator": "cpu", "devices": 1, "precision": "32-true"}
    return L.Trainer(**{**options, **kwargs})


def run_test(module: FactsModule, root, **data) -> dict[str, float]:
    trainer().test(module, tiny_datamodule(root, **data), verbose=False)
    return dict(module.last_eval_metrics)


# -- training -----------------------------------------------------------------------------------------------------
def test_linker_loss_falls_on_a_repeated_batch(facts_root):
    torch.manual_seed(0)
    dm = tiny_datamodule(facts_root, max_records=8, batch_size=8)
    dm.setup("fit")
    batch = dm.collate_fn([dm.train_set[i] for i in range(8)])
    no_dropout = {**TINY_BERT, "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
    module = FactsModule("slot_linker", {**TINY, "bert_config": no_dropout}, negatives_e=16, negatives_p=4)
    module.attach(dm).train()
    optimizer = torch.optim.AdamW(module.optimizer_parameters(), lr=1e-3)
    losses = []
    for _ in range(10):
        loss, logs = module.training_loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert set(logs) == {"loss_subj", "loss_rel", "loss_obj", "scale"}
    assert float(logs["scale"]) == pytest.approx(1 / 0.07, rel=0.05)
    # a pool holds the batch's distinct golds and the random negatives: chance is log(pool size) at most
    assert losses[0] <= math.log(8 * 2 + 16) + 0.5
    assert losses[-1] < 0.7 * losses[0], losses


def test_validation_metrics_and_tuned_out_of_kg_thresholds(facts_root, tmp_path):
    torch.manual_seed(0)
    module = FactsModule("slot_linker", TINY, negatives_e=16, negatives_p=4)
    assert module.ookg_entropy.tolist() == pytest.approx([math.log(5)] * 3)
    assert module.ookg_confidence.tolist() == [0, 0, 0]
    run = trainer(limit_val_batches=2)
    run.fit(module, tiny_datamodule(facts_root))
    metrics = module.last_eval_metrics
    for slot in (*SLOTS, "fact"):
        assert 0 <= metrics[f"val/{slot}_acc"] <= metrics[f"val/{slot}_r5"] <= metrics[f"val/{slot}_r100"] <= 100
        assert f"val/ookg_random_{slot}" in metrics
    for slot in SLOTS:  # tuned on this very hold-out: at least the 50 % of a constant answer
        assert metrics[f"val/ookg_entropy_{slot}"] >= 50 and metrics[f"val/ookg_confidence_{slot}"] >= 50
    assert metrics["val/n"] == 32
    recalls = [metrics[f"val/{s}_r{k}"] for s in (*SLOTS, "fact") for k in (1, 5, 10, 100)]
    assert metrics["val/recall_sum"] == pytest.approx(sum(recalls))
    assert "val/recall_sum" in run.callback_metrics
    rows = module.last_eval_rows["val_full"]
    assert rows["pred"].shape == (32, 3, 100) and rows["query"].shape == (32, 3, 16)
    assert torch.allclose(rows["query"].norm(dim=-1), torch.ones(32, 3), atol=1e-4)
    tuned = module.ookg_entropy.clone(), module.ookg_confidence.clone()
    assert not torch.allclose(tuned[0], torch.full((3,), math.log(5)))
    assert not torch.allclose(tuned[1], torch.zeros(3))
    # the thresholds travel in the checkpoint, and testing uses them without tuning again
    run.save_checkpoint(tmp_path / "linker.ckpt")
    loaded = FactsModule.load_from_checkpoint(tmp_path / "linker.ckpt")
    assert torch.equal(loaded.ookg_entropy, tuned[0]) and torch.equal(loaded.ookg_confidence, tuned[1])
    metrics = run_test(loaded, facts_root, test=("test_out_of_kg",))
    assert torch.equal(loaded.ookg_entropy, tuned[0]) and torch.equal(loaded.ookg_confidence, tuned[1])
    assert {f"test/ookg_{d}_{s}" for d in ("entropy", "confidence", "random") for s in (*SLOTS, "fact")} <= set(
        metrics)
    polysemous = run_test(loaded, facts_root, test=("test_polysemous",))
    assert "test/subj_acc" in polysemous and not any("ookg" in k for k in polysemous)  # not an out-of-KG facet


# -- baselines ----------------------------------------------------------------------------------------------------
def _most_frequent(values: list[str], order: list[str]) -> str:
    """The most frequent value; a tie goes to the one first in ``order`` (the KG's row order)."""
    counts = Counter(values)
    best = max(counts.values())
    return min((v for v, c in counts.items() if c == best), key=order.index)


def test_frequency_baseline_matches_counts_from_the_files(facts_root):
    n = 64
    falb = facts_root / "falb"
    train = json.loads((falb / "train_full_no_aliases.json").read_text())[:n]
    order = list(json.loads((facts_root / "kg" / "wikidata_processed.json").read_text()))
    top = [_most_frequent([r["fact_ids"][col] for r in train], order) for col in range(3)]

    def expected(facet: str) -> dict[str, float]:
        records = json.loads((falb / f"{facet}.json").read_text())[:n]
        return {slot: 100 * np.mean([r["fact_ids"][col] == top[col] for r in records])
                for col, slot in enumerate(SLOTS)}

    wanted = expected("test_transductive")
    assert wanted["rel"] > 0 and wanted["subj"] > 0  # the check means something on this facet
    module = FactsModule("frequency_linker")
    metrics = run_test(module, facts_root, test=("test_transductive",), max_records=n)
    for slot in SLOTS:
        assert metrics[f"test/{slot}_acc"] == pytest.approx(wanted[slot]), slot
    pred = module.last_eval_rows["test_transductive"]["pred"]
    assert (pred[:, :, 0] == pred[0, :, 0]).all()  # one answer for every query
    # `modalbridge validate` of a baseline: the same model on the validation facet
    validating = FactsModule("frequency_linker")
    trainer(limit_val_batches=None).validate(validating, tiny_datamodule(facts_root, max_records=n), verbose=False)
    wanted = expected("val_full")
    for slot in SLOTS:
        assert validating.last_eval_metrics[f"val/{slot}_acc"] == pytest.approx(wanted[slot]), slot


def test_random_and_zero_shot_baselines_are_tested_without_training(facts_root):
    random = FactsModule("random_linker")
    metrics = run_test(random, facts_root, test=("test_polysemous",))
    assert metrics["test/n"] == 64 and metrics["test/fact_acc"] == 0
    assert metrics["test/subj_acc"] <= 5 and metrics["test/rel_acc"] <= 10
    assert metrics["test/rel_r100"] == 100  # the ranking lists every one of the world's 73 predicates
    first = random.last_eval_rows["test_polysemous"]["pred"]
    assert (first[:, 0] != None).sum(1).min() == 100  # noqa: E711  entities: 100 candidates, not capped at 73
    assert (first[:, 1] != None).sum(1).max() == 73  # noqa: E711  predicates: all 73, then padding
    assert len({tuple(p) for p in first[:, 0, :3]}) > 60  # a different draw per record …
    again = FactsModule("random_linker")
    run_test(again, facts_root, test=("test_polysemous",), batch_size=5)
    assert (again.last_eval_rows["test_polysemous"]["pred"] == first).all()  # … whatever the batches

    zero_shot = FactsModule("zero_shot_linker", CROSS)
    metrics = run_test(zero_shot, facts_root, test=("test_polysemous",))
    for slot in (*SLOTS, "fact"):
        assert 0 <= metrics[f"test/{slot}_acc"] <= metrics[f"test/{slot}_r100"] <= 100
    assert zero_shot.last_eval_rows["test_polysemous"]["query"].shape == (64, 3, TINY_BERT["hidden_size"])


@pytest.mark.parametrize("model, kwargs", [("random_linker", {}), ("zero_shot_linker", CROSS)])
def test_baselines_have_nothing_to_train(facts_root, model, kwargs):
    with pytest.raises(DataError, match="nothing to train"):
        trainer().fit(FactsModule(model, kwargs), tiny_datamodule(facts_root))


# -- index back-ends ----------------------------------------------------------------------------------------------
def test_index_back_ends_give_the_same_metrics(facts_root, tiny_linker_ckpt):
    results = {}
    for index in ("faiss", "qdrant", "torch"):
        module = FactsModule.load_from_checkpoint(tiny_linker_ckpt, index=index)
        results[index] = (run_test(module, facts_root, test=("test_polysemous",)),
                          module.last_eval_rows["test_polysemous"]["pred"][:, :, :10])
    faiss_metrics, faiss_top = results["faiss"]
    assert faiss_metrics["test/recall_sum"] > 0
    for index in ("qdrant", "torch"):
        metrics, top = results[index]
        assert metrics == pytest.approx(faiss_metrics), index
        assert (top[:, :, 0] == faiss_top[:, :, 0]).all(), index


@pytest.mark.parametrize("backend", ["faiss", "torch", "qdrant"])
def test_kg_search_answers_each_slot_from_its_own_index(backend):
    rng = np.random.default_rng(0)

    def unit(n: int) -> np.ndarray:
        v = rng.normal(size=(n, 8)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    entities, predicates, queries = unit(40), unit(3), unit(30).reshape(10, 3, 8)
    entity_ids, predicate_ids = [f"Q{i}" for i in range(40)], [f"P{i}" for i in range(3)]
    search = KGSearch.build(entity_ids, entities, predicate_ids, predicates, backend=backend)
    scores, ids = search.search(queries, k=5)
    assert scores.shape == ids.shape == (10, 3, 5)
    for slot, (table, names) in enumerate(((entities, entity_ids), (predicates, predicate_ids),
                                           (entities, entity_ids))):
        exact = queries[:, slot] @ table.T
        order = np.argsort(-exact, axis=1, kind="stable")[:, :5]
        width = min(5, len(names))
        assert ids[:, slot, :width].tolist() == [[names[j] for j in row[:width]] for row in order]
        assert np.allclose(scores[:, slot, :width], np.take_along_axis(exact, order[:, :width], 1), atol=1e-5)
    assert ids[:, 1, 3:].tolist() == [[None, None]] * 10 and np.isneginf(scores[:, 1, 3:]).all()  # 3 predicates
    gone = sorted({i for i in ids[:, 0, 0]} | {"Q999"})  # an unknown id is ignored
    search.remove(gone, ["P0"])
    _, after = search.search(queries, k=5)
    assert not set(after[:, [0, 2]].ravel().tolist()) & set(gone)
    assert "P0" not in after[:, 1].ravel().tolist()
    assert None not in after[:, 1, :2].ravel().tolist() and after[:, 1, 2:].tolist() == [[None] * 3] * 10
    with pytest.raises(ValueError, match=r"\(n, 3, D\)"):
        search.search(queries[:, :2], k=5)
    empty_scores, empty_ids = search.search(np.zeros((0, 3, 8), np.float32), k=2)
    assert empty_scores.shape == empty_ids.shape == (0, 3, 2)


# -- models on a frozen pre-ranker --------------------------------------------------------------------------------
def _linker_state(path) -> dict[str, torch.Tensor]:
    state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    return {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")}


@pytest.mark.parametrize("model, kwargs", [("fact_reranker", CROSS), ("qkv_detector", {})])
def test_models_on_a_frozen_pre_ranker_train_test_and_reload_alone(model, kwargs, facts_root, tiny_linker_ckpt,
                                                                   tmp_path):
    linker_file = tmp_path / "linker.ckpt"
    shutil.copy(tiny_linker_ckpt, linker_file)
    torch.manual_seed(0)
    module = FactsModule(model, kwargs, linker_ckpt=str(linker_file), negatives_e=16, negatives_p=4, neighbours=5)
    frozen = _linker_state(linker_file)
    assert module.hparams.linker_kwargs == TINY
    run = trainer()
    test = ("test_out_of_kg",) if model == "qkv_detector" else ("test_polysemous",)
    run.fit(module, tiny_datamodule(facts_root, test=test))
    val = module.last_eval_metrics
    if model == "fact_reranker":
        assert module.monitor == "val/bin_acc" and 0 <= val["val/bin_acc"] <= 100 and val["val/n"] == 16
    else:
        assert module.monitor == "val/ookg_qkv_macro"
        assert val["val/ookg_qkv_macro"] == pytest.approx(np.mean([val[f"val/ookg_qkv_{s}"] for s in SLOTS]))
    for name, value in module.linker.state_dict().items():  # the pre-ranker did not move
        assert torch.equal(value, frozen[name]), name
    assert not module.linker.training and not any(p.requires_grad for p in module.linker.parameters())
    trained = {k: v.clone() for k, v in module.model.state_dict().items()}
    run.save_checkpoint(tmp_path / "model.ckpt")
    metrics = run_test(module, facts_root, test=test)

    linker_file.unlink()  # the saved model carries its pre-ranker
    loaded = FactsModule.load_from_checkpoint(tmp_path / "model.ckpt")
    for name, value in loaded.linker.state_dict().items():
        assert torch.equal(value, frozen[name]), name
    for name, value in loaded.model.state_dict().items():
        assert torch.equal(value, trained[name]), name
    assert run_test(loaded, facts_root, test=test) == pytest.approx(metrics)
    if model == "fact_reranker":
        assert {"test/subj_acc", "test/fact_acc", "test/pre_subj_acc", "test/pre_fact_acc"} <= set(metrics)
    else:
        assert {f"test/ookg_qkv_{s}" for s in (*SLOTS, "fact")} <= set(metrics)


def test_reranker_top1_is_the_pre_rankers_answer(facts_root, tiny_linker_ckpt):
    linker = FactsModule.load_from_checkpoint(tiny_linker_ckpt)
    plain = run_test(linker, facts_root, test=("test_polysemous",))
    reranker = FactsModule("fact_reranker", CROSS, linker_ckpt=str(tiny_linker_ckpt), rerank_k=1)
    metrics = run_test(reranker, facts_root, test=("test_polysemous",))
    for slot in (*SLOTS, "fact"):  # one candidate per slot: nothing to re-rank
        assert metrics[f"test/{slot}_acc"] == pytest.approx(plain[f"test/{slot}_acc"])
        assert metrics[f"test/pre_{slot}_acc"] == pytest.approx(plain[f"test/{slot}_acc"])


# -- refused arguments --------------------------------------------------------------------------------------------
def test_arguments_that_cannot_work_are_refused(tmp_path, tiny_linker_ckpt):
    with pytest.raises(ValueError, match="linker_ckpt"):
        FactsModule("fact_reranker", CROSS)
    with pytest.raises(ValueError, match="linker_ckpt"):
        FactsModule("qkv_detector")
    with pytest.raises(DataError, match="pre-ranker checkpoint not found"):
        FactsModule("fact_reranker", CROSS, linker_ckpt=str(tmp_path / "missing.ckpt"))
    with pytest.raises(ValueError, match="index must be one of faiss|qdrant|torch"):
        FactsModule("slot_linker", TINY, index="milvus")
    with pytest.raises(ValueError, match="search_k"):
        FactsModule("slot_linker", TINY, search_k=10)
    with pytest.raises(ValueError, match="mask_part"):
        FactsModule("fact_reranker", CROSS, linker_ckpt=str(tiny_linker_ckpt), mask_part="sentence")
    with pytest.raises(KeyError, match="no_such_model"):
        FactsModule("no_such_model")
    reranker = FactsModule("fact_reranker", CROSS, linker_ckpt=str(tiny_linker_ckpt))
    path = tmp_path / "reranker.ckpt"
    torch.save({"state_dict": reranker.state_dict(), "hyper_parameters": dict(reranker.hparams)}, path)
    with pytest.raises(DataError, match="not a slot_linker"):
        FactsModule("qkv_detector", linker_ckpt=str(path))
