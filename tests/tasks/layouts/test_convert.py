"""Released checkpoints of the reference code load into our models (key names converted)."""

from __future__ import annotations

import torch

from modalbridge.tasks.layouts.convert import convert_reference_state_dict, is_reference_state_dict
from modalbridge.tasks.layouts.models import example_batch
from modalbridge.tasks.layouts.module import LayoutModule

# the reference's names (its modelling/models.py) for each of our STLT prefixes
TO_REFERENCE = (
    ("objects.category.", "frames_embeddings.layout_embedding.category_box_embeddings.category_embeddings."),
    ("objects.box.", "frames_embeddings.layout_embedding.category_box_embeddings.box_embedding."),
    ("objects.norm.", "frames_embeddings.layout_embedding.category_box_embeddings.layer_norm."),
    ("spatial.", "frames_embeddings.layout_embedding.transformer."),
    ("positions.", "frames_embeddings.position_embeddings."),
    ("frame_types.", "frames_embeddings.frame_type_embedding."),
    ("frame_norm.", "frames_embeddings.layer_norm."),
    ("temporal.", "transformer."),
    ("heads.action.dense.", "prediction_head.fc1."),
    ("heads.action.norm.", "prediction_head.layer_norm."),
    ("heads.action.out.", "prediction_head.fc2."),
)


def _as_reference(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in sd.items():
        ours, ref = next((o, r) for o, r in TO_REFERENCE if key.startswith(o))
        name = ref + key[len(ours):]
        out[name if name.startswith("prediction_head.") else "backbone." + name] = value
    # what the reference also saves: a spare template layer and the position-id buffer
    out["backbone.frames_embeddings.layout_embedding.encoder_layer.linear1.bias"] = torch.zeros(1)
    out["backbone.frames_embeddings.position_ids"] = torch.arange(3)[None]
    return out


def test_a_reference_stlt_checkpoint_loads_and_predicts_the_same(tmp_path):
    torch.manual_seed(0)
    source = LayoutModule("stlt", {"action": 6}, model_kwargs={"preset": "tiny"}).eval()
    reference = _as_reference(source.model.state_dict())
    assert is_reference_state_dict(reference) and not is_reference_state_dict(source.model.state_dict())
    path = tmp_path / "stlt_reference.pt"
    torch.save(reference, path)
    loaded = LayoutModule("stlt", {"action": 6}, model_kwargs={"preset": "tiny"}, init_from=str(path),
                          init_heads=True).eval()
    batch = example_batch(num_categories=4)
    with torch.no_grad():
        torch.testing.assert_close(loaded(batch)["action"], source(batch)["action"])
    backbone_only = LayoutModule("stlt", {"action": 6}, model_kwargs={"preset": "tiny"}, init_from=str(path)).eval()
    assert not torch.equal(backbone_only.model.heads.action.out.weight, source.model.heads.action.out.weight)
    assert torch.equal(backbone_only.model.temporal.layers[0].linear1.weight, source.model.temporal.layers[0].linear1.weight)


def test_fusion_and_appearance_names_convert():
    sd = {"layout_branch.transformer.layers.0.norm1.weight": 1, "appearance_branch.resnet.resnet.0.weight": 2,
          "appearance_branch.resnet.resnet.4.0.bn2.bias": 3, "appearance_branch.projector.weight": 4,
          "appearance_branch.cls_token": torch.zeros(1, 1, 8), "appearance_branch.pos_embed": torch.zeros(5, 1, 8),
          "appearance_branch.transformer.layers.1.linear2.bias": 5, "classifier.fc1.weight": 6}
    out = convert_reference_state_dict(sd)
    assert out["layout.temporal.layers.0.norm1.weight"] == 1
    assert out["appearance.trunk.backbone.trunk.stem.0.weight"] == 2
    assert out["appearance.trunk.backbone.trunk.layer1.0.conv2.1.bias"] == 3
    assert out["appearance.proj.weight"] == 4 and out["appearance.encoder.layers.1.linear2.bias"] == 5
    assert out["appearance.positions"].shape == (1, 5, 8) and out["appearance.cls"].shape == (1, 1, 8)
    assert out["heads.action.dense.weight"] == 6
    assert len(out) == len(sd)


def test_cacnf_fusion_layers_and_three_classifiers_convert():
    """A CACNF checkpoint under the reference's names fills every fusion-layer and head tensor of our
    ``reference_compat`` CACNF (the shared cross-attention lands in both directions)."""
    from modalbridge.tasks.layouts.models import cacnf

    model = cacnf({"action": 5}, preset="tiny", appearance_frames=8, appearance_size=32, reference_compat=True)
    ours = {k: v for k, v in model.state_dict().items() if k.startswith(("fusion.", "heads.", "layout_heads.",
                                                                         "appearance_heads."))}
    ref = {}
    for i in range(len(model.fusion.layers)):
        layer = f"fusion.layers.{i}."
        for theirs, mine in (("cross_attn.attn.", "cross_a.sublayer."), ("cross_attn.ln.", "cross_a.norm."),
                             ("layout_attn.attn.", "self_a.sublayer."), ("layout_attn.ln.", "self_a.norm."),
                             ("appearance_attn.attn.", "self_b.sublayer."), ("appearance_attn.ln.", "self_b.norm."),
                             ("layout_ffn.linear1.", "ffn_a.sublayer.0."), ("layout_ffn.linear2.", "ffn_a.sublayer.3."),
                             ("layout_ffn.ln.", "ffn_a.norm."), ("appearance_ffn.attn.", "ffn_b.sublayer."),
                             ("appearance_ffn.ln.", "ffn_b.norm.")):
            for k, v in ours.items():
                if k.startswith(layer + mine):
                    ref[f"backbone.mm_fusion.{i}.{theirs}{k[len(layer + mine):]}"] = v
    for theirs, mine in (("fusion_classifier.", "heads.action."), ("layout_classifier.", "layout_heads.action."),
                         ("appearance_classifier.", "appearance_heads.action.")):
        for a, b in (("fc1.", "dense."), ("layer_norm.", "norm."), ("fc2.", "out.")):
            for k, v in ours.items():
                if k.startswith(mine + b):
                    ref[theirs + a + k[len(mine + b):]] = v
    ref["backbone.layout_branch.transformer.layers.0.norm1.weight"] = torch.ones(64)
    out = convert_reference_state_dict(ref)
    missing = [k for k in ours if k not in out]
    assert not missing, missing
    for k, v in ours.items():
        if "cross_b.norm" not in k:  # ours keeps two LayerNorms where the reference shares one (copied to both)
            assert torch.equal(out[k], v), k
    assert out["layout.temporal.layers.0.norm1.weight"].shape == (64,)
