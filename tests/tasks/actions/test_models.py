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
