"""Clip transforms: one draw per clip, RGB/flow alignment, flow flip, eval determinism."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision.transforms.v2 import functional as TF

from modalbridge.io.transforms import ClipParams, ClipTransform, adjust_hue, apply_flow


def random_clip(t=4, h=60, w=80, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (t, h, w, 3), dtype=np.uint8))


def test_output_shape_dtype_train_and_eval():
    clip = random_clip(5, 90, 120)
    for train in (True, False):
        out = ClipTransform(32, train=train, flip=True)(clip, rng=np.random.default_rng(0))
        assert out.shape == (3, 5, 32, 32) and out.dtype == torch.float32
        assert torch.isfinite(out).all()


def test_one_draw_for_all_frames():
    frame = random_clip(1, 70, 90)
    clip = frame.repeat(6, 1, 1, 1)
    transform = ClipTransform(40, train=True, flip=True, color_jitter=True)
    for seed in range(5):
        out = transform(clip, rng=np.random.default_rng(seed))
        for t in range(1, 6):
            torch.testing.assert_close(out[:, t], out[:, 0], rtol=0, atol=0)


def test_eval_is_deterministic_and_ignores_rng():
    clip = random_clip(3, 64, 100)
    transform = ClipTransform(48, train=False, flip=True)
    a = transform(clip, rng=np.random.default_rng(1))
    b = transform(clip, rng=np.random.default_rng(2))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    params = transform.sample_params(64, 100)
    assert params.resized == (48, 75) and params.crop == (0, 14, 48, 48)
    assert not params.flip and params.jitter is None


def test_eval_identity_when_clip_already_has_output_size():
    clip = random_clip(2, 32, 32)
    out = ClipTransform(32, train=False, mean=(0, 0, 0), std=(1, 1, 1))(clip)
    torch.testing.assert_close(out, clip.permute(3, 0, 1, 2).float() / 255)


def test_train_params_follow_the_recipe():
    transform = ClipTransform(224, train=True, flip=True)
    rng = np.random.default_rng(0)
    flips = []
    for _ in range(200):
        p = transform.sample_params(256, 456, rng)
        short = min(p.resized)
        assert int(224 * 1.15) <= short <= int(224 * 1.43)
        assert p.resized[1] == int(short * 456 / 256)
        top, left, h, w = p.crop
        assert (h, w) == (224, 224) and 0 <= top <= p.resized[0] - 224 and 0 <= left <= p.resized[1] - 224
        b, c, s, hue = p.jitter
        assert all(0.75 <= f <= 1.25 for f in (b, c, s)) and -0.1 <= hue <= 0.1
        assert sorted(p.order) == [0, 1, 2, 3]
        flips.append(p.flip)
    assert 60 < sum(flips) < 140
    assert not any(ClipTransform(224, train=True, flip=False).sample_params(256, 456, rng).flip
                   for _ in range(50))


def test_flip_mirrors_the_clip():
    clip = random_clip(2, 40, 40)
    params = ClipParams(scale=1.0, resized=(40, 40), crop=(0, 0, 40, 40), flip=True)
    transform = ClipTransform(40, train=True, color_jitter=False)
    unflipped = ClipParams(scale=1.0, resized=(40, 40), crop=(0, 0, 40, 40), flip=False)
    torch.testing.assert_close(transform(clip, params), transform(clip.flip(2), unflipped))


def test_params_are_shared_between_rgb_and_flow():
    """RGB and flow built from the same image give the same crop (mean/std 0.5 ⇒ same scale)."""
    rng = np.random.default_rng(3)
    pattern = rng.integers(0, 256, (3, 50, 70), dtype=np.uint8)
    rgb = torch.from_numpy(np.repeat(pattern[..., None], 3, axis=-1))
    flow = torch.from_numpy(np.stack([pattern, pattern], axis=-1))
    transform = ClipTransform(24, train=True, flip=True, color_jitter=False, mean=(0.5,) * 3, std=(0.5,) * 3)
    for _ in range(5):
        params = transform.sample_params(50, 70, rng)
        rgb_out = transform(rgb, params)
        flow_out = apply_flow(flow, params)
        u = -flow_out[0] if params.flip else flow_out[0]
        torch.testing.assert_close(u, rgb_out[0], atol=0.02, rtol=0)
        torch.testing.assert_close(flow_out[1], rgb_out[1], atol=0.02, rtol=0)


def test_flow_flip_negates_u_and_third_channel_is_zero():
    rng = np.random.default_rng(0)
    flow = torch.from_numpy(rng.integers(0, 256, (3, 30, 30, 2), dtype=np.uint8))
    plain = ClipParams(scale=1.0, resized=(30, 30), crop=(2, 3, 20, 20), flip=False)
    flipped = ClipParams(scale=1.0, resized=(30, 30), crop=(2, 3, 20, 20), flip=True)
    a, b = apply_flow(flow, plain), apply_flow(flow, flipped)
    assert a.shape == (3, 3, 20, 20) and a.dtype == torch.float32
    torch.testing.assert_close(b[0], -a[0].flip(-1))
    torch.testing.assert_close(b[1], a[1].flip(-1))
    assert torch.count_nonzero(a[2]) == 0 and torch.count_nonzero(b[2]) == 0
    # quantised u -> 255 - u is the same as negating after scaling
    mirrored = flow.clone()
    mirrored[..., 0] = 255 - mirrored[..., 0]
    mirrored_box = ClipParams(scale=1.0, resized=(30, 30), crop=(2, 30 - 3 - 20, 20, 20))
    torch.testing.assert_close(b[0], apply_flow(mirrored.flip(2), mirrored_box)[0])


def test_flow_value_scaling():
    params = ClipParams(scale=1.0, resized=(4, 4), crop=(0, 0, 4, 4))
    q = torch.full((1, 4, 4, 2), 255, dtype=torch.uint8)
    q[..., 1] = 0
    out = apply_flow(q, params)
    assert out[0].eq(1.0).all() and out[1].eq(-1.0).all()
    pixels = torch.full((1, 4, 4, 2), 10.0)
    pixels[..., 1] = -50.0
    out = apply_flow(pixels, params, bound=20.0)
    assert torch.allclose(out[0], torch.tensor(0.5)) and out[1].eq(-1.0).all()  # clipped at the bound


def test_adjust_hue_matches_torchvision():
    x = torch.rand(2, 3, 16, 16)
    x[0, :, :4] = 0.3  # grey pixels (zero chroma)
    for factor in (-0.5, -0.1, 0.0, 0.07, 0.5):
        torch.testing.assert_close(adjust_hue(x, factor), TF.adjust_hue(x, factor), atol=1e-5, rtol=0)


def test_rejects_bad_input():
    with pytest.raises(ValueError):
        ClipTransform(32, train=True)(torch.zeros(3, 32, 32))
    with pytest.raises(ValueError):
        ClipTransform(32, train=True, scale_range=(0.8, 1.2))
    with pytest.raises(ValueError):
        apply_flow(torch.zeros(2, 8, 8, 3), ClipParams(1.0, (8, 8), (0, 0, 8, 8)))


@settings(max_examples=25, deadline=None)
@given(h=st.integers(8, 200), w=st.integers(8, 200), size=st.integers(4, 48), t=st.integers(1, 3),
       train=st.booleans(), seed=st.integers(0, 2**31))
def test_any_frame_size_gives_the_requested_output(h, w, size, t, train, seed):
    rng = np.random.default_rng(seed)
    clip = torch.from_numpy(rng.integers(0, 256, (t, h, w, 3), dtype=np.uint8))
    transform = ClipTransform(size, train=train, flip=True)
    params = transform.sample_params(h, w, rng)
    assert min(params.resized) >= size
    out = transform(clip, params)
    assert out.shape == (3, t, size, size) and torch.isfinite(out).all()
    flow = apply_flow(torch.from_numpy(rng.integers(0, 256, (t, h, w, 2), dtype=np.uint8)), params)
    assert flow.shape == (3, t, size, size)
