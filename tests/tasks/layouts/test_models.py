"""Layout / appearance / fusion models: spec card §9 invariants on tiny configs, paper sizes on meta."""

import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm

from modalbridge.core.registry import create_model, list_models, model_entry
from modalbridge.core.weights import load_state_dict
from modalbridge.nn.video_backbones import build_backbone, convert_hara_r3d_state_dict
from modalbridge.tasks.layouts.appearance import AppearanceTrunk
from modalbridge.tasks.layouts.models import example_batch

MODELS = ["stlt", "stlt_joint", "r3d", "r3d_transformer", "pff", "pbf", "ef", "vatf", "lcf", "caf", "cacnf"]
LAYOUT_KEYS = ("categories", "boxes", "scores")
ATOL = 1e-5


def tiny(name, **kwargs):
    torch.manual_seed(0)
    return create_model(name, heads={"action": 6}, preset="tiny", **kwargs)


def clip_alone(batch, i):
    """Clip ``i`` as a batch of one, cut to its own frames and used object slots."""
    length = int(batch["lengths"][i])
    slots = int((batch["categories"][i, :length] != 0).sum(-1).max())
    out = {k: v[i: i + 1] for k, v in batch.items()}
    for k in (*LAYOUT_KEYS, "frame_types", "frames"):
        out[k] = out[k][:, :length]
    for k in LAYOUT_KEYS:
        out[k] = out[k][:, :, :slots]
    return out


def padded(batch, frames=2, slots=3):
    """The same clips with ``frames`` more padding frames and ``slots`` more pad objects per frame."""
    b, t, m = batch["categories"].shape
    out = dict(batch)
    out["categories"] = torch.zeros(b, t + frames, m + slots, dtype=torch.long)
    out["categories"][:, :, 0] = batch["categories"][0, 0, 0]  # padding frames keep a class object
    out["categories"][:, :t, :m] = batch["categories"]
    out["boxes"] = torch.zeros(b, t + frames, m + slots, 4)
    out["boxes"][:, :, 0] = torch.tensor([0.0, 0.0, 1.0, 1.0])
    out["boxes"][:, :t, :m] = batch["boxes"]
    out["scores"] = torch.zeros(b, t + frames, m + slots)
    out["scores"][:, :t, :m] = batch["scores"]
    out["frame_types"] = torch.cat([batch["frame_types"], torch.zeros(b, frames, dtype=torch.long)], dim=1)
    out["frames"] = torch.cat([batch["frames"], torch.zeros(b, frames, *batch["frames"].shape[2:])], dim=1)
    return out


@pytest.fixture(scope="module")
def batch():
    return example_batch(batch_size=3, frames=6, slots=4, lengths=[6, 4, 2], seed=1)


def _close(a, b):
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=ATOL, rtol=0, msg=lambda m, k=k: f"{k}: {m}")


def test_registry_lists_every_layout_model_with_its_inputs():
    assert set(list_models("layouts")) == set(MODELS)
    kinds = {n: model_entry(n).inputs for n in MODELS}
    assert kinds["stlt"] == kinds["stlt_joint"] == "layout"
    assert kinds["r3d"] == kinds["r3d_transformer"] == "video_batch"
    assert all(kinds[n] == "video+layout" for n in MODELS[4:])
    with pytest.raises(TypeError, match="unknown layout model option"):
        create_model("stlt", preset="tiny", hiden=3)


@pytest.mark.parametrize("name", MODELS)
def test_clip_alone_equals_clip_in_a_padded_batch(name, batch):
    """A clip's logits do not depend on the batch: padding frames/objects and other clips change nothing."""
    model = tiny(name).eval()
    with torch.no_grad():
        together = model(batch)
        more_padding = model(padded(batch))
        for i in range(3):
            alone = model(clip_alone(batch, i))
            _close(alone, {k: v[i: i + 1] for k, v in together.items()})
    _close(more_padding, together)


@pytest.mark.parametrize("name", ["stlt", "stlt_joint"])
def test_permuting_objects_within_frames_changes_nothing(name, batch):
    model = tiny(name).eval()
    perm = torch.tensor([0, 3, 1, 2])  # slot 0 (class object) stays first
    shuffled = dict(batch)
    for k in LAYOUT_KEYS:
        shuffled[k] = batch[k][:, :, perm]
    with torch.no_grad():
        _close(model(shuffled), model(batch))


def test_stlt_temporal_states_are_causal(batch):
    model = tiny("stlt").eval()
    with torch.no_grad():
        ref = model.forward_tokens(batch)
        for t in range(1, 5):
            changed = dict(batch)
            changed["boxes"] = batch["boxes"].clone()
            changed["boxes"][:, t, 0] = torch.tensor([0.2, 0.1, 0.6, 0.9])  # the frame's class object box
            new = model.forward_tokens(changed)
            torch.testing.assert_close(new[:, :t], ref[:, :t], atol=ATOL, rtol=0)
            assert not torch.allclose(new[0, t], ref[0, t], atol=1e-3)


def test_stlt_joint_objects_see_only_past_frames(batch):
    model = tiny("stlt_joint").eval()
    per_frame = batch["categories"].shape[2] - 1  # object tokens per frame (class slot dropped)
    with torch.no_grad():
        ref = model.forward_tokens(batch)
        changed = dict(batch)
        changed["boxes"] = batch["boxes"].clone()
        changed["boxes"][:, 2, 1:] = changed["boxes"][:, 2, 1:].flip(-1)
        new = model.forward_tokens(changed)
    torch.testing.assert_close(new[:, : 2 * per_frame], ref[:, : 2 * per_frame], atol=ATOL, rtol=0)
    assert not torch.allclose(new[0, -1], ref[0, -1], atol=1e-3)  # the class token sees frame 2


def test_stlt_uses_scores_for_action_genome():
    batch = example_batch(num_categories=38, cls_category=1, extract_type=2, regular_type=1)
    model = tiny("stlt", num_categories=38, use_scores=True).eval()
    with torch.no_grad():
        out = model(batch)["action"]
        batch["scores"] = batch["scores"] * 0.5
        assert not torch.allclose(model(batch)["action"], out)
    del batch["scores"]
    with pytest.raises(KeyError, match="scores"):
        model(batch)


def test_cacnf_prediction_is_the_mean_of_its_three_heads(batch):
    model = tiny("cacnf").eval()
    with torch.no_grad():
        out = model(batch)
    assert set(out) == {"action", "action_layout", "action_appearance", "action_fusion"}
    mean = (out["action_layout"] + out["action_appearance"] + out["action_fusion"]) / 3
    torch.testing.assert_close(out["action"], mean, atol=ATOL, rtol=0)


def test_multi_head_outputs():
    model = create_model("cacnf", heads={"verb": 3, "noun": 5}, preset="tiny").eval()
    with torch.no_grad():
        out = model(example_batch())
    assert {k: v.shape[1] for k, v in out.items()} == {
        **{k: 3 for k in ("verb", "verb_layout", "verb_appearance", "verb_fusion")},
        **{k: 5 for k in ("noun", "noun_layout", "noun_appearance", "noun_fusion")}}


@pytest.mark.parametrize("name", MODELS)
def test_one_training_step(name, batch):
    """Loss is finite and every trainable parameter gets a finite, non-zero gradient."""
    model = tiny(name).train()
    out = model(batch)
    target = torch.tensor([0, 3, 5])
    loss = sum(torch.nn.functional.cross_entropy(v, target) for v in out.values())
    loss.backward()
    assert torch.isfinite(loss)
    for n, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and torch.isfinite(p.grad).all(), n
            assert p.grad.abs().sum() > 0, n


def test_r3d_50_hara_map_and_appearance_tokens():
    """3x32x112x112 -> 2048x2x4x4 (checked on the meta device), so R3D-Transformer has 1 + 32 tokens; one
    real forward on a smaller clip agrees with the meta shape arithmetic."""
    trunk = AppearanceTrunk("r3d_50_hara").eval()
    assert trunk.map_shape(32, 112) == (2048, 2, 4, 4)
    assert abs(sum(p.numel() for p in trunk.parameters()) / 1e6 - 46.2) < 0.05
    with torch.no_grad():
        real = trunk(torch.randn(1, 3, 8, 64, 64))
    assert tuple(real.shape[1:]) == trunk.map_shape(8, 64) == (2048, 1, 2, 2)
    with torch.device("meta"):
        model = create_model("r3d_transformer")
        tokens = model.forward_tokens(torch.empty(2, 3, 32, 112, 112))
    assert model.num_tokens == 32 and tokens.shape == (2, 33, 768)


def _bn_state(model):
    return {k: v.clone() for m_name, m in model.named_modules() if isinstance(m, _BatchNorm)
            for k, v in m.state_dict(prefix=m_name + ".").items()}


@pytest.mark.parametrize("name", ["r3d", "pbf"])
def test_batchnorm_is_frozen(name, batch):
    assert all(m.training for m in tiny(name).train().modules())  # tiny preset: trained from scratch
    model = tiny(name, freeze_bn=True).train()
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert bns and not any(m.training for m in bns)
    assert not any(p.requires_grad for m in bns for p in m.parameters())
    before = _bn_state(model)
    others = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(2):
        opt.zero_grad()
        sum(v.sum() for v in model(batch).values()).backward()
        opt.step()
    after = _bn_state(model)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert any(not torch.equal(p, others[n]) for n, p in model.named_parameters() if p.requires_grad)


PAPER_SIZES = {  # millions of parameters, spec card §3 / §10 (CAF/CACNF: reference fusion structure)
    "stlt": 85.3 + 0.73, "r3d_transformer": 76.2, "lcf": 163, "caf": 220, "cacnf": 221}


@pytest.mark.parametrize("name", sorted(PAPER_SIZES))
def test_paper_parameter_counts(name):
    with torch.device("meta"):
        model = create_model(name, heads={"action": 174}, reference_compat=True)
    millions = sum(p.numel() for p in model.parameters()) / 1e6
    assert abs(millions - PAPER_SIZES[name]) / PAPER_SIZES[name] < 0.01, millions
    if name == "stlt":
        head = sum(p.numel() for p in model.heads.parameters()) / 1e6
        assert abs(millions - head - 85.3) < 0.05 and abs(head - 0.73) < 0.01


def test_default_fusion_layers_are_separate_and_larger():
    """Our default CACNF (separate cross-attention per direction, proper FFNs): +18.9 M over the reference."""
    with torch.device("meta"):
        ours = create_model("cacnf", heads={"action": 174})
    millions = sum(p.numel() for p in ours.parameters()) / 1e6
    assert abs(millions - 239.8) < 0.1


def _to_hara(sd):
    """torchvision VideoResNet keys -> 3D-ResNets-PyTorch keys (the inverse of the converter)."""
    out = {}
    for k, v in sd.items():
        parts = k.split(".")
        if parts[0] == "stem":
            k = {"0": "conv1", "1": "bn1"}[parts[1]] + "." + ".".join(parts[2:])
        elif parts[2].startswith("conv"):
            kind = "conv" if parts[3] == "0" else "bn"
            k = ".".join([parts[0], parts[1], kind + parts[2][4:], *parts[4:]])
        out["module." + k] = v
    return out


def test_hara_checkpoint_loads_into_r3d_50_hara(tmp_path):
    torch.manual_seed(0)
    src = build_backbone("r3d_50_hara").trunk.state_dict()
    hara = _to_hara(src)
    assert "module.layer1.0.bn2.running_var" in hara and "module.layer4.0.downsample.1.weight" in hara
    hara["module.fc.weight"], hara["module.fc.bias"] = torch.zeros(1139, 2048), torch.zeros(1139)
    torch.save({"epoch": 200, "arch": "resnet-50", "state_dict": hara}, tmp_path / "r3d50_KMS_200ep.pth")
    assert set(convert_hara_r3d_state_dict({"state_dict": hara})) == set(src)
    assert set(convert_hara_r3d_state_dict(load_state_dict(tmp_path / "r3d50_KMS_200ep.pth"))) == set(src)
    trunk = AppearanceTrunk("r3d_50_hara", weights=str(tmp_path / "r3d50_KMS_200ep.pth"))
    loaded = trunk.backbone.trunk.state_dict()
    assert set(loaded) == set(src)
    assert all(torch.equal(loaded[k], src[k]) for k in src)


def test_stlt_temporal_attention_is_a_distribution_over_real_frames():
    from modalbridge.core.registry import create_model
    from modalbridge.tasks.layouts.models import example_batch

    torch.manual_seed(0)
    model = create_model("stlt", heads={"action": 5}, preset="tiny").eval()
    batch = example_batch(3, frames=6, slots=4, lengths=[6, 4, 2])
    weights = model.temporal_attention(batch)
    assert weights.shape == (3, 6)
    assert torch.allclose(weights.sum(-1), torch.ones(3), atol=1e-5)
    for b, length in enumerate([6, 4, 2]):
        assert torch.all(weights[b, length:] == 0)  # batch padding gets no attention
