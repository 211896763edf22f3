"""The shared blocks' CPU bf16 autocast paths (:mod:`modalbridge.nn.autocast`): fp32 results are bit-identical
to the stock torchvision / PyTorch modules, bf16 results stay close to fp32, and the layouts oneDNN needs are
used (channels-last 3D ResNet maps, bf16 Swin attention)."""

import torch
from torchvision.models.video import swin_transformer as tv_swin

from modalbridge.nn.autocast import cpu_bf16_autocast
from modalbridge.nn.transformers import CrossModalLayer
from modalbridge.nn.video_backbones import build_backbone


def _bf16():
    return torch.autocast("cpu", dtype=torch.bfloat16)


def test_cpu_bf16_autocast_flag():
    assert not cpu_bf16_autocast()
    with _bf16():
        assert cpu_bf16_autocast()
    with torch.autocast("cpu", dtype=torch.float16):
        assert not cpu_bf16_autocast()


def test_swin_fp32_is_torchvision_and_bf16_attention_stays_bf16(monkeypatch):
    torch.manual_seed(0)
    ours = build_backbone("swin3d_tiny", drop_path=0.0)
    torch.manual_seed(0)
    stock = tv_swin.SwinTransformer3d(patch_size=[2, 4, 4], embed_dim=32, depths=[1, 1, 2, 1], num_heads=[1, 2, 4, 8],
                                      window_size=[4, 4, 4], stochastic_depth_prob=0.0, num_classes=1)
    stock.head = torch.nn.Identity()
    assert all(torch.equal(a, b) for a, b in zip(ours.trunk.state_dict().values(), stock.state_dict().values()))
    x = torch.randn(2, 3, 8, 32, 32)
    ours(x).sum().backward()
    stock(x).sum().backward()
    assert torch.equal(ours(x), stock(x))
    assert all(torch.equal(a.grad, b.grad) for a, b in zip(ours.trunk.parameters(), stock.parameters()))

    softmax_dtypes = []
    softmax = tv_swin.F.softmax

    def spy(attn, *args, **kwargs):
        softmax_dtypes.append(attn.dtype)
        return softmax(attn, *args, **kwargs)

    monkeypatch.setattr(tv_swin.F, "softmax", spy)
    with torch.no_grad(), _bf16():
        y = ours(x)
    assert softmax_dtypes and set(softmax_dtypes) == {torch.bfloat16}  # stock torchvision: fp32 logits
    monkeypatch.undo()
    torch.testing.assert_close(y.float(), stock(x).detach(), atol=0.05, rtol=0.05)


def test_3d_resnet_runs_channels_last_under_bf16_only():
    torch.manual_seed(0)
    net = build_backbone("r3d_tiny").eval()
    x = torch.randn(1, 3, 8, 32, 32)
    with torch.no_grad():
        fp32 = net.forward_map(x)
        assert torch.equal(fp32, net.trunk.stages(net.trunk.stem(x)))
        with _bf16():
            bf16 = net.forward_map(x)
            pooled = net(x)
    assert bf16.is_contiguous(memory_format=torch.channels_last_3d) and bf16.dtype == torch.bfloat16
    torch.testing.assert_close(bf16.float(), fp32, atol=0.1, rtol=0.05)
    assert pooled.shape == (1, 128)


def test_cross_modal_layer_bf16_close_to_fp32():
    torch.manual_seed(0)
    layer = CrossModalLayer(32, 4, dropout=0.0).eval()
    a, b = torch.randn(2, 5, 32), torch.randn(2, 7, 32)
    with torch.no_grad():
        fp32 = layer(a, b)
        with _bf16():
            bf16 = layer(a, b)
    for x, y in zip(fp32, bf16):
        torch.testing.assert_close(y.float(), x, atol=0.1, rtol=0.05)
