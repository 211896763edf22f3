"""Fact-linking losses (spec ``fact_linking.md`` §4, §9): InfoNCE per slot (equal logits = log |pool|, a golden
against a hand-written softmax, the shared entity pool), the candidate pools (de-duplicated golds shared by s and
o, random negatives never golds, targets pointing back at the golds), the re-ranker's BCE, and a tiny slot
linker whose loss falls within a few optimiser steps on a toy set."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from modalbridge.tasks.facts.losses import (
    candidate_pools,
    infonce_per_slot,
    infonce_slot_losses,
    rerank_loss,
    sample_others,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: 1 torch thread is far faster on 2 busy cores


def test_equal_logits_give_log_pool_size():
    q = torch.zeros(4, 3, 8)  # every cosine 0 → every logit equal
    ent, pred = F.normalize(torch.randn(7, 8), dim=-1), F.normalize(torch.randn(7, 8), dim=-1)
    targets = torch.tensor([[0, 1, 2], [3, 4, 5], [6, 0, 1], [2, 3, 4]])
    assert infonce_per_slot(q, ent, pred, targets, scale=1 / 0.07).item() == pytest.approx(math.log(7))
    per_slot = infonce_slot_losses(q, ent, pred[:3], targets.clamp(max=2), scale=14.3)
    assert per_slot.tolist() == pytest.approx([math.log(7), math.log(3), math.log(7)])


def test_infonce_matches_a_hand_written_softmax():
    g = torch.Generator().manual_seed(0)
    q = F.normalize(torch.randn(2, 3, 5, generator=g), dim=-1)
    ent, pred = F.normalize(torch.randn(4, 5, generator=g), dim=-1), F.normalize(torch.randn(3, 5, generator=g), dim=-1)
    targets = torch.tensor([[1, 2, 3], [0, 0, 1]])
    scale = torch.tensor(5.0)

    def nll(vec, pool, t):
        logits = scale * pool @ vec
        return -(logits[t] - torch.logsumexp(logits, 0))

    expected = sum(nll(q[b, 0], ent, targets[b, 0]) + nll(q[b, 1], pred, targets[b, 1])
                   + nll(q[b, 2], ent, targets[b, 2]) for b in range(2)) / 6
    assert infonce_per_slot(q, ent, pred, targets, scale).item() == pytest.approx(expected.item(), rel=1e-5)
    # a perfect, confident linker has (almost) no loss
    ent, pred = torch.eye(4, 5), torch.eye(3, 5)  # orthogonal pools, slot vectors on their golds
    perfect = torch.stack([ent[[1, 0]], pred[[2, 0]], ent[[3, 1]]], dim=1)
    assert infonce_per_slot(perfect, ent, pred, targets, 100.0).item() < 1e-6


def test_infonce_refuses_bad_targets_and_shapes():
    q, pool = torch.zeros(2, 3, 4), torch.zeros(3, 4)
    with pytest.raises(ValueError, match="outside the pools"):
        infonce_per_slot(q, pool, pool, torch.tensor([[0, 0, 3], [0, 0, 0]]), 1.0)
    with pytest.raises(ValueError, match=r"q \(B, 3, D\)"):
        infonce_per_slot(torch.zeros(2, 2, 4), pool, pool, torch.zeros(2, 3), 1.0)
    with pytest.raises(ValueError, match=r"\(B, 3\) pool indices"):
        infonce_per_slot(q, pool, pool, torch.zeros(2, 2), 1.0)


def test_candidate_pools_share_deduplicated_golds_and_add_random_non_golds():
    kg_entities = [f"Q{i}" for i in range(1000)]
    kg_predicates = [f"P{i}" for i in range(50)]
    gold = np.array([["Q1", "P1", "Q2"], ["Q2", "P1", "Q3"], ["Q1", "P7", "Q3"]])
    pools = candidate_pools(gold, kg_entities, kg_predicates, e=256, p=32, rng=0)
    ents, preds, targets = pools
    assert sorted(ents[:3]) == ["Q1", "Q2", "Q3"] and sorted(preds[:2]) == ["P1", "P7"]
    assert len(ents) == 3 + 256 and len(preds) == 2 + 32
    assert len(set(ents)) == len(ents) and len(set(preds)) == len(preds)  # no duplicate: no false negative
    assert not set(ents[3:]) & {"Q1", "Q2", "Q3"} and not set(preds[2:]) & {"P1", "P7"}
    assert targets.shape == (3, 3) and targets.dtype == np.int64
    np.testing.assert_array_equal(ents[targets[:, 0]], gold[:, 0])
    np.testing.assert_array_equal(preds[targets[:, 1]], gold[:, 1])
    np.testing.assert_array_equal(ents[targets[:, 2]], gold[:, 2])
    assert targets[0, 0] == targets[2, 0] and targets[0, 2] == targets[1, 0]  # Q1 twice, Q2 as s and o: one row
    again = candidate_pools(gold, kg_entities, kg_predicates, e=256, p=32, rng=0)
    np.testing.assert_array_equal(again.entities, ents)


def test_candidate_pools_on_row_numbers_and_a_small_kg():
    gold = np.array([[0, 1, 2], [3, 0, 4]])
    ents, preds, targets = candidate_pools(gold, 8, 2, e=256, p=32, rng=np.random.default_rng(1))
    assert sorted(ents.tolist()) == list(range(8)) and sorted(preds.tolist()) == [0, 1]  # capped by the KG
    np.testing.assert_array_equal(ents[targets[:, 0]], gold[:, 0])
    with pytest.raises(ValueError, match=r"\(B, 3\)"):
        candidate_pools(gold[:, :2], 8, 2)
    only_golds = candidate_pools(np.array([["Q1", "P1", "Q2"]]), ["Q1", "Q2", "Q3"], ["P1"], e=0, p=0)
    assert only_golds.entities.tolist() == ["Q1", "Q2"] and only_golds.predicates.tolist() == ["P1"]
    picked = sample_others(np.arange(100, 200), exclude=[100, 101], n=98, rng=0)
    assert sorted(picked.tolist()) == list(range(102, 200))


def test_rerank_loss_is_bce_with_logits():
    assert rerank_loss(torch.zeros(4), torch.tensor([1, 0, 1, 0])).item() == pytest.approx(math.log(2))
    logits, labels = torch.tensor([2.0, -1.0]), torch.tensor([1.0, 0.0])
    expected = -(math.log(torch.sigmoid(logits[0]).item()) + math.log(1 - torch.sigmoid(logits[1]).item())) / 2
    assert rerank_loss(logits, labels).item() == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="differ in shape"):
        rerank_loss(torch.zeros(3), torch.zeros(2))


def test_the_slot_linker_loss_falls_on_a_toy_set():
    from modalbridge.nn.bert import TINY_BERT, load_tokenizer
    from modalbridge.tasks.facts import models as M

    torch.manual_seed(0)
    tok = load_tokenizer()
    M.add_marker_tokens(tok)
    model = M.SlotLinker(bert_config={**TINY_BERT, "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0},
                         dim=16, vocab_size=len(tok))
    facts = [("michael jordan", "played for", "chicago bulls"), ("marie curie", "born in", "warsaw"),
             ("ada lovelace", "worked with", "charles babbage"), ("alan turing", "born in", "london")]
    entities = sorted({x for s, _, o in facts for x in (s, o)})
    predicates = sorted({r for _, r, _ in facts})
    queries = M.tokenize_queries(tok, [M.format_query(*f) for f in facts])
    ent_batch = M.tokenize_entries(tok, [M.format_entry(x, None, "entity") for x in entities])
    pred_batch = M.tokenize_entries(tok, [M.format_entry(x, None, "predicate") for x in predicates])
    targets = torch.tensor([[entities.index(s), predicates.index(r), entities.index(o)] for s, r, o in facts])
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(8):
        q = model.encode_queries(**{k: queries[k] for k in ("query_ids", "query_mask", "marker_pos")})
        loss = infonce_per_slot(q, model.encode_entries(**ent_batch), model.encode_entries(**pred_batch), targets,
                                model.scale)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    chance = (2 * math.log(len(entities)) + math.log(len(predicates))) / 3
    assert losses[-1] < 0.75 * min(losses[0], chance), losses  # below the uniform guess, not just a λ fix
