"""LayoutModule: the losses of spec §4 (CE, BCE, CACNF thesis vs reference), the few-shot protocol
(backbone initialisation + freezing) and the multi-label metrics."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from modalbridge.tasks.layouts.models import example_batch
from modalbridge.tasks.layouts.module import LayoutModule, is_head_parameter

TINY = {"preset": "tiny", "appearance_frames": 8, "appearance_size": 32}


def _batch(classes: int = 5, multilabel: bool = False) -> dict:
    batch = example_batch(3, frames=5, slots=4, rgb_frames=8, size=32)
    g = torch.Generator().manual_seed(1)
    if multilabel:
        batch["action"] = (torch.rand(3, classes, generator=g) < 0.4).float()
    else:
        batch["action"] = torch.randint(0, classes, (3,), generator=g)
    return batch


def test_cacnf_thesis_loss_sums_the_three_branch_terms_and_reference_averages_four():
    torch.manual_seed(0)
    module = LayoutModule("cacnf", {"action": 5}, model_kwargs=TINY).eval()
    batch = _batch()
    out = module(batch)
    ce = {k: F.cross_entropy(out[k], batch["action"]) for k in out}
    loss, logs = module.loss(out, batch)
    assert torch.allclose(loss, ce["action_layout"] + ce["action_appearance"] + ce["action_fusion"])
    assert set(logs) == {"loss_action_layout", "loss_action_appearance", "loss_action_fusion"}
    module.loss_mode = "reference"
    loss, logs = module.loss(out, batch)
    assert torch.allclose(loss, torch.stack(list(ce.values())).mean())
    assert len(logs) == 4


def test_single_output_models_use_plain_ce_and_multilabel_uses_bce():
    torch.manual_seed(0)
    module = LayoutModule("stlt", {"action": 5}, model_kwargs=TINY).eval()
    batch = _batch()
    out = module(batch)
    assert torch.allclose(module.loss(out, batch)[0], F.cross_entropy(out["action"], batch["action"]))
    multi = LayoutModule("stlt", {"action": 5}, model_kwargs=TINY, multilabel=True).eval()
    batch = _batch(multilabel=True)
    out = multi(batch)
    assert torch.allclose(multi.loss(out, batch)[0], F.binary_cross_entropy_with_logits(out["action"],
                                                                                          batch["action"]))


def test_eval_metrics_cover_every_head_and_multilabel_gives_finite_map():
    torch.manual_seed(0)
    module = LayoutModule("cacnf", {"action": 5}, model_kwargs=TINY).eval()
    with torch.no_grad():
        module.validation_step(_batch(), 0)  # the engine's collection: rows of loader 0
    metrics = module.compute_metrics(module.gathered_eval(0))
    for name in ("action", "action_layout", "action_appearance", "action_fusion"):
        assert 0 <= metrics[f"{name}_top1"] <= metrics[f"{name}_top5"] <= 100
    multi = LayoutModule("stlt", {"action": 5}, model_kwargs=TINY, multilabel=True).eval()
    batch = _batch(multilabel=True)
    batch["action"][:, 4] = 0  # a class without positives must not turn the mAP into NaN
    with torch.no_grad():
        multi.validation_step(batch, 0)
    metrics = multi.compute_metrics(multi.gathered_eval(0))
    assert 0 < metrics["action_map"] <= 100


def test_few_shot_init_copies_the_backbone_and_freezing_trains_heads_only(tmp_path):
    torch.manual_seed(0)
    base = LayoutModule("stlt", {"action": 7}, model_kwargs=TINY)
    path = tmp_path / "base.ckpt"
    torch.save({"state_dict": base.state_dict()}, path)
    torch.manual_seed(1)
    novel = LayoutModule("stlt", {"action": 4}, model_kwargs=TINY, init_from=str(path), freeze_backbone=True)
    base_sd, novel_sd = base.model.state_dict(), novel.model.state_dict()
    backbone = [k for k in novel_sd if not is_head_parameter(k)]
    assert backbone and all(torch.equal(base_sd[k], novel_sd[k]) for k in backbone)
    trainable = [n for n, p in novel.model.named_parameters() if p.requires_grad]
    assert trainable and all(is_head_parameter(n) for n in trainable)
    novel.train()
    assert not any(m.training for n, m in novel.model.named_modules() if n and "head" not in n)
    before = {k: v.clone() for k, v in novel.model.state_dict().items()}
    opt = torch.optim.AdamW([p for p in novel.parameters() if p.requires_grad], lr=1e-2)
    loss, _ = novel.loss(novel(_batch(4)), _batch(4))
    loss.backward()
    opt.step()
    after = novel.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in backbone)
    assert any(not torch.equal(before[k], after[k]) for k in after if is_head_parameter(k))


def test_init_from_an_unrelated_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "other.ckpt"
    torch.save({"state_dict": {"foo.weight": torch.zeros(2, 2)}}, path)
    with pytest.raises(ValueError, match="no backbone tensor matches"):
        LayoutModule("stlt", {"action": 4}, model_kwargs=TINY, init_from=str(path))


def test_fusion_branches_start_from_unimodal_checkpoints(tmp_path):
    torch.manual_seed(0)
    stlt = LayoutModule("stlt", {"action": 5}, model_kwargs=TINY)
    r3d = LayoutModule("r3d_transformer", {"action": 5}, model_kwargs=TINY)
    paths = {}
    for name, module in (("layout", stlt), ("appearance", r3d)):
        paths[name] = str(tmp_path / f"{name}.ckpt")
        torch.save({"state_dict": module.state_dict()}, paths[name])
    torch.manual_seed(1)
    fused = LayoutModule("cacnf", {"action": 5}, model_kwargs=TINY, init_from=paths)
    sd = fused.model.state_dict()
    for prefix, source in (("layout", stlt.model.state_dict()), ("appearance", r3d.model.state_dict())):
        body = [k for k in source if not is_head_parameter(k)]
        assert body and all(torch.equal(sd[f"{prefix}.{k}"], source[k]) for k in body)
