"""standard_error and welch_t_test: the formulas, and agreement with numpy/scipy."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from modalbridge.metrics.uncertainty import standard_error, welch_t_test


def test_standard_error_formula():
    values = [0.2, 0.5, 0.9, 0.4, 0.7]
    expected = np.std(values, ddof=1) / math.sqrt(len(values))
    assert standard_error(values) == pytest.approx(expected, rel=1e-12)
    assert standard_error(torch.tensor(values)) == pytest.approx(expected, rel=1e-6)  # float32 input
    assert standard_error(np.array(values)) == pytest.approx(expected, rel=1e-12)
    assert standard_error([1.0, 2.0, 3.0, 4.0]) == pytest.approx(math.sqrt(5 / 3) / 2)


def test_standard_error_needs_two_values():
    assert math.isnan(standard_error([1.0]))
    assert math.isnan(standard_error([]))
    assert standard_error([3.0, 3.0, 3.0]) == 0.0


def test_welch_matches_scipy_and_the_formula():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.6, 0.1, 40), rng.normal(0.55, 0.3, 25)
    t, p = welch_t_test(a, b)
    reference = stats.ttest_ind(a, b, equal_var=False)
    assert (t, p) == pytest.approx((reference.statistic, reference.pvalue), rel=1e-12)
    se = math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    assert t == pytest.approx((a.mean() - b.mean()) / se, rel=1e-12)
    assert welch_t_test(torch.tensor(b), torch.tensor(a))[0] == pytest.approx(-t)


def test_welch_separates_clearly_different_systems():
    rng = np.random.default_rng(1)
    _, p_far = welch_t_test(rng.normal(0.7, 0.05, 200), rng.normal(0.6, 0.05, 200))
    _, p_same = welch_t_test(rng.normal(0.6, 0.05, 200), rng.normal(0.6, 0.05, 200))
    assert p_far < 1e-6 < p_same
    with pytest.raises(ValueError, match="at least two"):
        welch_t_test([1.0], [1.0, 2.0])
