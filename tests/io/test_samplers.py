"""Frame samplers: spec goldens (distillation §4/§9.2, layout_fusion §4) and properties."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modalbridge.io.samplers import appearance_indices, ek_clip_indices, layout_indices, tsn_indices

SAMPLERS = [ek_clip_indices, tsn_indices, layout_indices, appearance_indices]


# ----------------------------------------------------------------------------------- goldens


def test_ek_eval_golden_long_clip():
    assert ek_clip_indices(100, train=False).tolist() == list(range(18, 81, 2))


def test_ek_eval_golden_short_clip_repeats_last_valid():
    out = ek_clip_indices(40, train=False).tolist()
    assert out == list(range(0, 39, 2)) + [38] * 12
    assert len(out) == 32


def test_tsn_eval_golden():
    assert tsn_indices(48, train=False).tolist() == [1, 4, 7, 10, 13, 16, 19, 22, 25, 27, 30, 33, 36, 39, 42, 45]


@pytest.mark.parametrize("length, expected", [
    (48, list(range(1, 47, 3))),
    (20, [0, 1, 3, 4, 5, 6, 8, 9, 10, 11, 13, 14, 15, 16, 18, 19]),
    (10, list(range(10))),
])
def test_layout_eval_goldens(length, expected):
    assert layout_indices(length, train=False).tolist() == expected


@pytest.mark.parametrize("length, expected", [
    (100, list(range(18, 81, 2))),
    (45, [0, 1, 3, 4, 6, 7, 8, 10, 11, 12, 14, 15, 17, 18, 19, 21, 22, 24, 25, 26, 28, 29, 31, 32, 33, 35,
          36, 37, 39, 40, 42, 43]),
    (1, [0] * 32),
])
def test_appearance_eval_goldens(length, expected):
    assert appearance_indices(length, train=False).tolist() == expected


def test_dtype_is_int64():
    for sampler in SAMPLERS:
        assert sampler(50, train=False).dtype == np.int64
        assert sampler(50, train=True, rng=np.random.default_rng(0)).dtype == np.int64


def test_train_is_reproducible_with_seeded_rng():
    for sampler in SAMPLERS:
        a = sampler(300, train=True, rng=np.random.default_rng(7))
        b = sampler(300, train=True, rng=np.random.default_rng(7))
        np.testing.assert_array_equal(a, b)


def test_train_varies_across_draws():
    rng = np.random.default_rng(0)
    for sampler in SAMPLERS:
        draws = {tuple(sampler(500, train=True, rng=rng)) for _ in range(10)}
        assert len(draws) > 1, sampler.__name__


def test_invalid_length_raises():
    for sampler in SAMPLERS:
        with pytest.raises(ValueError):
            sampler(0, train=False)


# -------------------------------------------------------------------------------- properties

lengths = st.integers(min_value=1, max_value=2000)
seeds = st.integers(min_value=0, max_value=2**32 - 1)


@settings(max_examples=60, deadline=None)
@given(length=lengths, num=st.integers(1, 64), stride=st.integers(1, 4), train=st.booleans(), seed=seeds)
def test_ek_properties(length, num, stride, train, seed):
    out = ek_clip_indices(length, num, stride, train=train, rng=np.random.default_rng(seed))
    assert out.shape == (num,)
    assert out.min() >= 0 and out.max() < length
    assert np.all(np.diff(out) >= 0)
    steps = np.diff(out)
    assert set(steps.tolist()) <= {0, stride}  # regular stride, then a run of repeats
    if len(steps) and (steps == 0).any():
        assert np.all(steps[np.argmax(steps == 0):] == 0)
    span = num * stride
    if train:
        assert out[0] <= max(length - span, 0)
    else:
        assert out[0] == max(int((length - span + 1) / 2), 0)


@settings(max_examples=60, deadline=None)
@given(length=lengths, num=st.integers(1, 32), train=st.booleans(), seed=seeds)
def test_tsn_properties(length, num, train, seed):
    out = tsn_indices(length, num, train=train, rng=np.random.default_rng(seed))
    assert out.shape == (num,)
    assert out.min() >= 0 and out.max() < length
    if not train:
        assert np.all(np.diff(out) >= 0)
    seg = (length - 1) / num
    bounds = np.round(seg * np.arange(num + 1))
    assert np.all(out >= bounds[:-1]) and np.all(out <= bounds[1:])  # each draw inside its segment


@settings(max_examples=60, deadline=None)
@given(length=lengths, num=st.integers(1, 32), train=st.booleans(), seed=seeds)
def test_layout_properties(length, num, train, seed):
    out = layout_indices(length, num, train=train, rng=np.random.default_rng(seed))
    expected_len = num if (train or length > num) else length
    assert out.shape == (expected_len,)
    assert out.min() >= 0 and out.max() < length
    assert np.all(np.diff(out) >= 0)
    if train:
        seg = length / num
        i = np.arange(num)
        assert np.all(out >= np.floor(i * seg)) and np.all(out <= np.floor((i + 1) * seg))


@settings(max_examples=60, deadline=None)
@given(length=lengths, num=st.integers(1, 40), stride=st.integers(1, 3), train=st.booleans(), seed=seeds)
def test_appearance_properties(length, num, stride, train, seed):
    out = appearance_indices(length, num, stride, train=train, rng=np.random.default_rng(seed))
    assert out.shape == (num,)
    assert out.min() >= 0 and out.max() < length
    assert np.all(np.diff(out) >= 0)
    span = num * stride
    if length > span:
        assert np.all(np.diff(out) == stride)
        assert out[0] <= length - span - 1 if train else out[0] == (length - span) // 2
    elif train and length - 2 >= num:
        assert len(set(out.tolist())) == num and out.max() < length - 2
