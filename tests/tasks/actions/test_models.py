import pytest
import torch

from modalbridge.core.weights import save_safetensors
from modalbridge.nn.video_backbones import build_backbone
from modalbridge.tasks.actions.models import VideoClassifier


def test_swin3d_t_matches_the_thesis_size():
    """Video Swin-T (patch 2x4x4, C 96, depths 2-2-6-2) has ~28 M parameters (thesis: 28.22 M with heads)."""
    model = VideoClassifier("swin3d_t", {"verb": 97, "noun": 300})
    n = sum(p.numel() for p in model.parameters()) / 1e6
    assert 27.5 < n < 28.5


def test_r3d_50_trunk_size_and_feature_dim():
    b = build_backbone("r3d_50")
    assert b.out_dim == 2048
    assert 46.0 < sum(p.numel() for p in b.parameters()) / 1e6 < 46.5


def test_backbone_weights_round_trip(tmp_path):
    src = VideoClassifier("swin3d_tiny", {"action": 4})
    save_safetensors(src.backbone.trunk.state_dict(), tmp_path / "k400.safetensors")
    dst = VideoClassifier("swin3d_tiny", {"action": 4}, weights=str(tmp_path / "k400.safetensors"))
    for (k, a), b in zip(src.backbone.state_dict().items(), dst.backbone.state_dict().values()):
        assert torch.equal(a, b), k


def test_foreign_checkpoint_is_rejected_with_a_clear_message(tmp_path):
    save_safetensors({"foo.weight": torch.zeros(3)}, tmp_path / "bad.safetensors")
    with pytest.raises(ValueError, match="none of its 1 tensors match"):
        VideoClassifier("swin3d_tiny", {"action": 4}, weights=str(tmp_path / "bad.safetensors"))


def test_pooled_backbone_is_layer_normed_block_means_of_the_clip():
    """The low-capacity teacher's features: means over (2, 8, 8) blocks of a 16×32×32 clip, layer-normed."""
    b = build_backbone("pooled")
    assert b.out_dim == 3 * 8 * 4 * 4 and sum(p.numel() for p in b.parameters()) == 2 * 384
    x = torch.randn(2, 3, 16, 32, 32)
    means = x.reshape(2, 3, 8, 2, 4, 8, 4, 8).mean((3, 5, 7)).flatten(1)
    torch.testing.assert_close(b(x), torch.nn.functional.layer_norm(means, (384,)), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="pass channels=2"):
        b(torch.randn(1, 2, 8, 32, 32))
    model = VideoClassifier("pooled", {"verb": 5, "noun": 7})
    assert sum(p.numel() for p in model.parameters()) == 2 * 384 + 384 * 12 + 12
