"""Fact-linking models (spec ``fact_linking.md`` §3, §5, §9): the input formats (query, context sentence with the
mention substituted, KG entry, fact pair, zero-shot), marker tokens and their positions in tokenised queries,
the slot linker (λ = ln(1/0.07), unit vectors per slot, not over the slot axis), the re-ranker's k³ enumeration
(k = 1 reproduces the pre-ranker), hard-negative corruption, the zero-shot encoder's padding-free mean pool and
the Random / Frequency baselines."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import torch

from modalbridge.nn.bert import TINY_BERT, load_tokenizer
from modalbridge.tasks.facts import models as M

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: 1 torch thread is far faster on 2 busy cores


@pytest.fixture(scope="module")
def tokenizer():
    tok = load_tokenizer()
    M.add_marker_tokens(tok)
    return tok


@pytest.fixture(scope="module")
def linker(tokenizer):
    torch.manual_seed(0)
    return M.SlotLinker(bert_config=TINY_BERT, dim=24).eval()  # default vocab: + every marker


# -- formats -----------------------------------------------------------------------------------------------------
def test_query_and_entry_formats():
    assert M.format_query("M. J.", "played for", "the Bulls") == "<SUBJ> M. J. <PRED> played for <OBJ> the Bulls"
    assert M.format_entry("Michael Jordan", "basketball player", "entity") == \
        "Michael Jordan <ENT> basketball player"
    assert M.format_entry("member of sports team", "", "predicate") == "member of sports team <REL> None"
    with pytest.raises(ValueError, match="'entity' or 'predicate'"):
        M.format_entry("x", "y", "Q")
    assert M.zero_shot_query_texts("M. J.", "played for", "Bulls") == ["M. J.; None", "played for; None",
                                                                         "Bulls; None"]
    assert M.zero_shot_entry_text("Chicago Bulls", None) == "Chicago Bulls; None"


def test_context_sentence_substitutes_the_mentions():
    sentence = "Michael Jordan, who was born in Brooklyn, played for Chicago Bulls."
    original = ("Michael Jordan", "played for", "Chicago Bulls")
    assert M.format_query("M. J.", "played for", "the Bulls", sentence, original=original) == (
        "<SUBJ> M. J. <PRED> played for <OBJ> the Bulls <SENT> M. J., who was born in Brooklyn, played for the Bulls.")
    cs = M.context_sentence
    # first occurrence only; whole words; the optional s / es suffix goes with the match
    assert cs("Bull and Bull", ("Bull", "r", "x"), ("B", "r", "x")) == "B and Bull"
    assert cs("Bullshit, said the Bulls", ("Bull", "r", "x"), ("B", "r", "x")) == "Bullshit, said the B"
    assert cs("two Foxes ran", ("Fox", "r", "x"), ("F", "r", "x")) == "two F ran"
    # the original is matched literally, not as a regular expression
    assert cs("AxB met A.B.", ("A.B.", "r", "x"), ("ab", "r", "x")) == "AxB met ab"
    assert cs("C++ beats C", ("C++", "r", "C"), ("cpp", "r", "c-lang")) == "cpp beats c-lang"
    # the object occurrence is the first one outside the subject's span; no original, no change
    assert cs("New York is in New York State", ("New York State", "r", "York"), ("NYS", "r", "Y")) == \
        "New Y is in NYS"
    assert cs("same text", None, ("a", "b", "c")) == "same text"


def test_marker_strings_in_user_text_are_defused(tokenizer):
    text = M.format_query("a <SUBJ> b", "<PRED>", "c", "x <OBJ> y")
    assert text.count("<SUBJ>") == 1 and text.count("<PRED>") == 1 and text.count("<OBJ>") == 1
    batch = M.tokenize_queries(tokenizer, [text])
    ids = batch["query_ids"][0]
    for marker in M.QUERY_MARKERS:
        assert int((ids == tokenizer.convert_tokens_to_ids(marker)).sum()) == 1


def test_fact_pair_format():
    text = M.format_fact_pair(("MJ", "played for", "Bulls"),
                              [("Michael Jordan", "basketball player"), ("member of sports team", None),
                               ("Chicago Bulls", "basketball team")])
    assert text == ("<SUBJ> MJ <PRED> played for <OBJ> Bulls <FACT> <SUBJ> Michael Jordan <DESC> basketball player "
                    "<PRED> member of sports team <DESC> None <OBJ> Chicago Bulls <DESC> basketball team")
    fact = [("a", "da"), ("b", "db"), ("c", "dc")]
    assert M.mask_fact(fact, rng=0, p=1.0) == [("a", "[MASK]"), ("b", "[MASK]"), ("c", "[MASK]")]
    assert M.mask_fact(fact, rng=0, p=1.0, part="label") == [("[MASK]", "da"), ("[MASK]", "db"), ("[MASK]", "dc")]
    assert M.mask_fact(fact, rng=0, p=0.0) == fact


# -- tokens and positions ----------------------------------------------------------------------------------------
def test_marker_tokens_are_added_once_and_found_in_queries(tokenizer):
    ids = M.add_marker_tokens(tokenizer)  # again: idempotent
    assert list(ids) == list(M.LINKER_TOKENS)
    assert sorted(ids.values()) == list(range(30522, 30528)) and len(tokenizer) == 30528
    fresh = load_tokenizer()
    assert "<SENT>" not in M.add_marker_tokens(fresh, context=False)
    texts = [M.format_query("Michael Jordan", "played for", "Chicago Bulls", "He played for them."),
             M.format_query("x", "y", "z")]
    batch = M.tokenize_queries(tokenizer, texts)
    assert batch["marker_pos"].shape == (2, 3) and batch["query_mask"].dtype == torch.bool
    found = batch["query_ids"].gather(1, batch["marker_pos"])
    assert found.tolist() == [[30522, 30523, 30524]] * 2  # the markers sit where marker_pos says
    assert batch["marker_pos"][1].tolist() == [1, 3, 5]  # [CLS] <SUBJ> x <PRED> y <OBJ> z [SEP]
    entries = M.tokenize_entries(tokenizer, [M.format_entry("Chicago Bulls", "team", "entity")])
    assert int((entries["entry_ids"][0] == ids["<ENT>"]).sum()) == 1


def test_missing_markers_are_reported(tokenizer):
    long = M.format_query("word " * 40, "r", "o")
    with pytest.raises(ValueError, match=r"rows \[0\] lack a slot marker"):
        M.tokenize_queries(tokenizer, [long], max_length=16)
    with pytest.raises(ValueError, match="add_marker_tokens"):
        M.tokenize_queries(load_tokenizer(), ["<SUBJ> a <PRED> b <OBJ> c"])


# -- slot linker -------------------------------------------------------------------------------------------------
def test_slot_linker_scale_and_per_vector_normalisation(linker, tokenizer):
    assert linker.logit_scale.item() == pytest.approx(math.log(1 / 0.07))
    assert linker.scale.item() == pytest.approx(1 / 0.07, rel=1e-6)
    assert linker.bert.get_input_embeddings().num_embeddings == 30522 + len(M.MARKER_TOKENS) >= len(tokenizer)
    batch = M.tokenize_queries(tokenizer, [M.format_query("a b", "c", "d e f"), M.format_query("g", "h i", "j")])
    entries = M.tokenize_entries(tokenizer, [M.format_entry("k", "l", "entity"), M.format_entry("m", "", "predicate"),
                                             M.format_entry("n o p", "q", "entity")])
    with torch.no_grad():
        out = linker({**batch, **entries})
    q, e = out["query"], out["entry"]
    assert q.shape == (2, 3, 24) and e.shape == (3, 24) and q.dtype == torch.float32
    assert torch.allclose(q.norm(dim=-1), torch.ones(2, 3), atol=1e-5)  # every slot vector is a unit vector
    assert not torch.allclose(q.norm(dim=1), torch.ones(2, 24), atol=1e-3)  # not the reference's slot-axis norm
    assert torch.allclose(e.norm(dim=-1), torch.ones(3), atol=1e-5)
    with torch.no_grad():
        alone = linker.encode_queries(*[batch[k][1:] for k in ("query_ids", "query_mask", "marker_pos")])
    torch.testing.assert_close(alone[0], q[1], atol=1e-5, rtol=1e-5)  # padding does not leak in


def test_example_batch_and_vocab_size(linker):
    with torch.no_grad():
        out = linker(M.example_query_batch())
    assert out["query"].shape == (2, 3, 24) and out["entry"].shape == (3, 24)
    with pytest.raises(ValueError, match="smaller than"):
        M.SlotLinker(bert_config=TINY_BERT, vocab_size=100)


# -- re-ranker ---------------------------------------------------------------------------------------------------
def test_reranker_scores_fact_pairs():
    torch.manual_seed(0)
    model = M.FactReranker(bert_config=TINY_BERT).eval()
    with torch.no_grad():
        out = model(M.example_pair_batch(batch_size=3))
    assert out["logits"].shape == (3,) and torch.isfinite(out["logits"]).all()


@pytest.mark.parametrize("k", [1, 2, 3])
def test_enumeration_gives_k_cubed_candidates(k):
    rng = np.random.default_rng(k)
    topk = np.stack([np.stack([rng.permutation(50)[:5] for _ in range(3)]) for _ in range(4)])  # (4, 3, 5)
    cand = M.enumerate_candidates(topk, k)
    assert cand.shape == (4, k ** 3, 3)
    for b in range(4):
        assert len({tuple(f) for f in cand[b]}) == k ** 3  # all combinations, each once
        assert all(f[i] in topk[b, i, :k] for f in cand[b] for i in range(3))
    np.testing.assert_array_equal(cand[:, 0], topk[:, :, 0])  # candidate 0 = the pre-ranker's answer
    t = M.enumerate_candidates(torch.as_tensor(topk), k)
    assert isinstance(t, torch.Tensor) and t.tolist() == cand.tolist()


def test_k1_reranking_reproduces_the_pre_ranker():
    topk = np.array([[["Q1", "Q2"], ["P1", "P2"], ["Q3", "Q4"]]])
    cand = M.enumerate_candidates(topk, 1)
    ranked, order = M.best_facts(cand, np.array([[-3.2]]))
    assert ranked[0, 0].tolist() == ["Q1", "P1", "Q3"] and order.tolist() == [[0]]
    cand = M.enumerate_candidates(topk, 2)
    scores = np.zeros((1, 8))
    scores[0, 5] = 1.0  # ranks (1, 0, 1)
    ranked, _ = M.best_facts(cand, scores)
    assert ranked[0, 0].tolist() == ["Q2", "P1", "Q4"] and ranked[0, 1].tolist() == ["Q1", "P1", "Q3"]  # ties stable
    ranked_t, _ = M.best_facts(torch.as_tensor(np.arange(24).reshape(1, 8, 3)), torch.as_tensor(scores))
    assert ranked_t[0, 0].tolist() == [15, 16, 17]
    with pytest.raises(ValueError, match="K >= k"):
        M.enumerate_candidates(topk, 3)


def test_corruption_uses_hard_negatives_and_labels_untouched_facts():
    entity_nb = np.array([[1, 2], [0, -1], [0, 1], [-1, -1], [4, 4]])  # row 3: none; row 4: only itself
    predicate_nb = np.array([[1], [0]])
    gold = np.array([[0, 0, 1], [2, 1, 3], [4, 0, 0]] * 200)
    same, labels = M.corrupt_fact(gold, (entity_nb, predicate_nb), p=0.0, rng=0)
    assert (same == gold).all() and (labels == 1).all()
    facts, labels = M.corrupt_fact(gold, (entity_nb, predicate_nb), p=1.0, rng=0)
    assert (facts != gold).all() and (labels == 0).all()
    assert set(facts[0::3, 0]) <= {1, 2} and set(facts[0::3, 2]) == {0}  # from the neighbour lists
    assert set(facts[1::3, 1]) == {0}
    assert set(facts[1::3, 2]) <= {0, 1, 2, 4}  # no neighbours: any other entity
    assert set(facts[2::3, 0]) <= {0, 1, 2, 3}  # the only neighbour is itself: any other entity
    _, labels = M.corrupt_fact(np.zeros((20000, 3), dtype=int), (entity_nb, predicate_nb), p=0.2, rng=1)
    assert labels.mean() == pytest.approx(0.8 ** 3, abs=0.015)
    with pytest.raises(ValueError, match="outside the KG"):
        M.corrupt_fact([[0, 2, 0]], (entity_nb, predicate_nb))


def test_nearest_neighbours_match_brute_force():
    v = np.random.default_rng(0).normal(size=(30, 6)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    nb = M.nearest_neighbours(v, k=4, chunk=7)
    sims = v @ v.T
    np.fill_diagonal(sims, -np.inf)
    np.testing.assert_array_equal(nb, np.argsort(-sims, axis=1)[:, :4])
    assert (M.nearest_neighbours(v[:3], k=4)[:, 2:] == -1).all()


# -- zero-shot and naive baselines -------------------------------------------------------------------------------
def test_zero_shot_encoder_mean_pools_real_tokens_only(tokenizer):
    torch.manual_seed(0)
    model = M.ZeroShotEncoder(bert_config=TINY_BERT).eval()
    plain = load_tokenizer()
    enc = plain(["michael jordan; None", "a much longer text that pads the first one; None"], padding=True,
                return_tensors="pt")
    with torch.no_grad():
        both = model(dict(enc))["embedding"]
        alone = model.encode(enc["input_ids"][:1, :6], enc["attention_mask"][:1, :6])
    assert both.shape == (2, 64) and torch.allclose(both.norm(dim=-1), torch.ones(2), atol=1e-5)
    torch.testing.assert_close(alone[0], both[0], atol=1e-5, rtol=1e-5)


def test_random_links_draw_distinct_kg_ids():
    ents, preds = [f"Q{i}" for i in range(40)], [f"P{i}" for i in range(12)]
    links = M.random_links(500, ents, preds, k=10, rng=0)
    assert links.shape == (500, 3, 10)
    assert all(len(set(row)) == 10 for row in links.reshape(-1, 10))
    assert set(links[:, 1].ravel()) == set(preds) and set(links[:, [0, 2]].ravel()) == set(ents)
    np.testing.assert_array_equal(links, M.random_links(500, ents, preds, k=10, rng=0))
    top1 = Counter(links[:, 0, 0])
    assert max(top1.values()) < 30  # uniform: ≈ 12.5 per entity
    big = M.random_links(50, 10_000, 3, k=5, rng=1)
    assert big.shape == (50, 3, 3) and all(len(set(r)) == 3 for r in big.reshape(-1, 3))


def test_frequency_links_rank_training_counts():
    train = np.array([["Q1", "P1", "Q2"], ["Q1", "P2", "Q3"], ["Q4", "P2", "Q3"], ["Q3", "P2", "Q2"],
                      ["Q2", "P1", "Q3"]])
    links = M.frequency_links(train, n=2, k=3)
    assert links.shape == (2, 3, 3)
    assert links[0, 0].tolist() == ["Q1", "Q2", "Q3"]  # Q1 ×2, then ties by id
    assert links[0, 1].tolist() == ["P2", "P1", None]  # padded: never a hit
    assert links[1, 2].tolist() == ["Q3", "Q2", None]
    pooled = M.frequency_links(train, n=1, k=2, pooled=True)
    assert pooled[0, 0].tolist() == pooled[0, 2].tolist() == ["Q3", "Q2"]  # Q3 ×4, Q2 ×3 over s + o
    with pytest.raises(ValueError, match=r"\(m, 3\)"):
        M.frequency_links(train[:, :2], n=1)
