"""The atlas models (spec ``text2atlas.md`` §3): every one registered under task ``atlas`` and building at its tiny
size; output keys, shapes and ranges; the pooled encoder ignores padding (the reference pooled over it); the
Siamese embedding is unit-norm; the naive baselines' organ distributions (uniform, the training's most frequent
organ, the text's occurrence organs or the centre) and their refusal to run without statistics."""

from __future__ import annotations

import pytest
import torch

from modalbridge.core.registry import create_model, list_models, model_entry
from modalbridge.nn.bert import TINY_BERT
from modalbridge.tasks.atlas import models as M

NAMES = ("sod_regressor", "organ_classifier", "siamese", "pooled_encoder", "centre", "random_organ", "frequency",
         "occurrence_random")


def test_every_model_is_registered_for_the_atlas_task():
    assert set(NAMES) <= set(list_models("atlas"))
    for name in NAMES:
        assert model_entry(name).task == "atlas" and model_entry(name).example is not None


@pytest.mark.parametrize("name", NAMES)
def test_tiny_models_return_their_output_with_the_right_shape(name):
    entry = model_entry(name)
    model = create_model(name, **entry.tiny).eval()
    batch = entry.example_input()
    with torch.no_grad():
        out = model(batch)
    (key,) = out
    assert key == model.output and torch.isfinite(out[key]).all()
    b = batch["input_ids"].shape[0]
    if key == "point":
        assert out[key].shape == (b, 3) and out[key].abs().max() < 1
    elif key == "embedding":
        assert out[key].shape[0] == b
        assert torch.allclose(out[key].norm(dim=-1), torch.ones(b), atol=1e-5)
    elif key == "logits":
        assert out[key].shape == (b, 5)
    else:
        assert torch.allclose(out[key].sum(1)[out[key].sum(1) > 0], torch.ones(1, dtype=out[key].dtype))
    # positional (input_ids, attention_mask, organs) gives the same as the batch dict
    with torch.no_grad():
        again = model(batch["input_ids"], batch["attention_mask"], batch["organs"])
    assert torch.equal(again[key], out[key])


def test_regressor_and_classifier_read_the_cls_state_and_ignore_padding():
    model = M.SODRegressor(bert_config=TINY_BERT).eval()
    batch = M.example_batch()
    padded = {k: torch.cat([v, torch.zeros(v.shape[0], 3, dtype=v.dtype)], dim=1)
              if k in ("input_ids", "attention_mask") else v for k, v in batch.items()}
    with torch.no_grad():
        assert torch.allclose(model(batch)["point"], model(padded)["point"], atol=1e-5)
    assert sum(p.numel() for p in model.head.parameters()) == model.hidden * 3 + 3


def test_pooled_encoder_pools_real_tokens_only():
    model = M.PooledEncoder(bert_config=TINY_BERT).eval()
    batch = M.example_batch()
    ids, mask = batch["input_ids"], batch["attention_mask"]
    with torch.no_grad():
        emb = model(ids, mask)["embedding"]
        states = model.states(ids, mask)
        padded_ids = torch.cat([ids, torch.zeros(2, 4, dtype=torch.long)], 1)
        padded_mask = torch.cat([mask, torch.zeros(2, 4, dtype=torch.bool)], 1)
        assert torch.allclose(model(padded_ids, padded_mask)["embedding"], emb, atol=1e-5)
    h = model.hidden
    assert emb.shape == (2, 3 * h)
    real = states[1, : int(mask[1].sum())]  # document 1 is shorter than the batch: padding must not count
    expected = torch.cat([states[1, 0], real.max(0).values, real.mean(0)])
    assert torch.allclose(emb[1], expected / expected.norm(), atol=1e-5)


def test_siamese_dimension_and_classifier_size():
    assert create_model("siamese", bert_config=TINY_BERT, dim=3).head.out_features == 3
    assert create_model("siamese", bert_config=TINY_BERT).dim == 768  # the thesis's two sizes: 3 and 768
    with pytest.raises(ValueError, match="num_organs"):
        M.OrganClassifier(0, bert_config=TINY_BERT)


class _Stats:
    """What the naive baselines read from a data module."""

    class train_atlas:  # noqa: N801 - stands in for an Atlas
        num_organs = 4

    @staticmethod
    def train_organ_counts():
        return [3, 1, 7, 7]


def test_naive_baselines_distributions():
    batch = M.example_batch()  # organs: [[0, 3], [1, -1]]
    random = M.RandomOrganBaseline()
    assert not random.fitted
    with pytest.raises(RuntimeError, match="fit_statistics"):
        random(batch)
    probs = random.fit_statistics(_Stats)(batch)["organ_probs"]
    assert torch.allclose(probs, torch.full((2, 4), 0.25))

    freq = M.FrequencyBaseline()
    with pytest.raises(RuntimeError, match="training counts"):
        freq(batch)
    probs = freq.fit_statistics(_Stats)(batch)["organ_probs"]
    assert probs.tolist() == [[0, 0, 1, 0]] * 2  # the first of the tied most frequent organs
    assert "counts" in freq.state_dict()

    occ = M.OccurrenceRandomBaseline(num_organs=4)
    assert occ.needs_occurrences
    probs = occ(batch)["organ_probs"]
    assert probs.tolist() == [[0.5, 0, 0, 0.5], [0, 1, 0, 0]]
    none = dict(batch, organs=torch.full((2, 2), -1))
    assert occ(none)["organ_probs"].sum().item() == 0  # no occurrence: a zero row, i.e. the centre
    with pytest.raises(ValueError, match="occurrence organs"):
        occ(batch["input_ids"], batch["attention_mask"])

    centre = M.CentreBaseline()
    assert centre(batch)["point"].abs().sum() == 0 and not list(centre.parameters())
