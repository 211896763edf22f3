import pytest
import torch
from torch import nn

from modalbridge.nn.transformers import (
    ClassificationHead,
    CrossModalFusion,
    CrossModalLayer,
    FusionHead,
    causal_mask,
    encoder,
)


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_causal_mask_lets_position_i_see_positions_up_to_i():
    m = causal_mask(4)
    assert m.dtype == torch.bool
    for i in range(4):
        assert m[i].tolist() == [j > i for j in range(4)]


def test_encoder_is_post_ln_batch_first_with_bert_eps():
    enc = encoder(32, 2, 4, dropout=0.1)
    layer = enc.layers[0]
    assert layer.self_attn.batch_first and not layer.norm_first
    assert layer.norm1.eps == 1e-12 and layer.linear1.out_features == 128
    assert len(enc.layers) == 2
    assert encoder(32, 1, 4, activation="relu").layers[0].activation_relu_or_gelu == 1


def test_encoder_eval_fast_path_matches_train_semantics_with_padding():
    """Padded positions keep ordinary values in eval mode (no nested-tensor zeros) and match train mode."""
    torch.manual_seed(0)
    enc = encoder(32, 2, 4, dropout=0.0)
    x = torch.randn(3, 6, 32)
    pad = torch.zeros(3, 6, dtype=torch.bool)
    pad[1, 4:] = True
    pad[2, 2:] = True
    mask = causal_mask(6)
    train_out = enc.train()(x, mask=mask, src_key_padding_mask=pad)
    with torch.no_grad():
        eval_out = enc.eval()(x, mask=mask, src_key_padding_mask=pad)
    assert not eval_out.is_nested and torch.isfinite(eval_out).all()
    torch.testing.assert_close(eval_out, train_out.detach(), atol=1e-5, rtol=0)


def test_heads_structure_and_shapes():
    head = ClassificationHead(16, 5)
    assert [type(m) for m in head.children()] == [nn.Linear, nn.GELU, nn.LayerNorm, nn.Linear]
    assert head.norm.eps == 1e-12
    assert head(torch.randn(2, 16)).shape == (2, 5)
    fusion = FusionHead(16, 5)
    assert fusion.dense.in_features == 32
    assert fusion(torch.randn(2, 32)).shape == (2, 5)
    # the paper's 174-way STLT head: 0.73 M parameters
    assert _count(ClassificationHead(768, 174)) == 768 * 768 + 768 + 2 * 768 + 768 * 174 + 174


def test_cross_modal_layer_shapes_and_reference_compat_structure():
    a, b = torch.randn(2, 5, 32), torch.randn(2, 3, 32)
    layer = CrossModalLayer(32, 4, dropout=0.0).eval()
    out_a, out_b = layer(a, b)
    assert out_a.shape == a.shape and out_b.shape == b.shape
    assert layer.cross_a.sublayer is not layer.cross_b.sublayer
    compat = CrossModalLayer(32, 4, reference_compat=True)
    assert compat.cross_a.sublayer is compat.cross_b.sublayer
    assert isinstance(compat.ffn_b.sublayer, nn.MultiheadAttention)
    assert isinstance(compat.ffn_a.sublayer, nn.Sequential)


@pytest.mark.parametrize("compat, millions", [(True, 56.7), (False, 75.6)])
def test_paper_fusion_layer_sizes(compat, millions):
    """4 layers at H=768: 56.7 M in the reference structure (spec card §3.5); 75.6 M with separate
    cross-attention per direction and proper FFNs (our default)."""
    with torch.device("meta"):
        fusion = CrossModalFusion(768, 12, 4, reference_compat=compat)
    assert abs(_count(fusion) / 1e6 - millions) < 0.05


def test_cross_modal_layer_is_causal_on_a_and_ignores_padding():
    torch.manual_seed(0)
    layer = CrossModalFusion(32, 4, 1, dropout=0.0).eval()
    a, b = torch.randn(1, 6, 32), torch.randn(1, 3, 32)
    mask = causal_mask(6)
    with torch.no_grad():
        ref_a, ref_b = layer(a, b, a_mask=mask)
        a2 = a.clone()
        a2[:, 4] += 1.0
        new_a, _ = layer(a2, b, a_mask=mask)
        torch.testing.assert_close(new_a[:, :4], ref_a[:, :4], atol=1e-5, rtol=0)
        assert not torch.allclose(new_a[:, 4], ref_a[:, 4])
        # padded a tokens (and their values) change nothing for the real tokens
        padded = torch.cat([a, torch.randn(1, 2, 32)], dim=1)
        pad = torch.tensor([[False] * 6 + [True] * 2])
        pa, pb = layer(padded, b, a_mask=causal_mask(8), a_padding=pad)
    torch.testing.assert_close(pa[:, :6], ref_a, atol=1e-5, rtol=0)
    torch.testing.assert_close(pb, ref_b, atol=1e-5, rtol=0)
