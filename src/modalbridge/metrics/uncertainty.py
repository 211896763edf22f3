"""Uncertainty of a comparison between two models: paired bootstrap over samples, spread over seeds.

A claim such as "the distilled student beats the CE-only student by 3 points" is measured on one evaluation set
with a few training seeds. Two intervals say how much to trust it:

* :func:`paired_bootstrap` — resample the evaluation clips with replacement (the same clips for both models and
  every seed, so the comparison stays paired) and recompute the seed-mean difference; the 2.5/97.5 percentiles
  are the 95 % interval of the **evaluation-set** noise.
* :func:`seed_interval` — Student's t interval of the per-seed differences: the **training** noise
  (initialisation, order), ``mean ± t_{0.975, S-1} · sd / √S``.

>>> round(seed_interval([1.0, 2.0, 3.0])[1], 3)  # mean 2, sd 1, t_{0.975,2} = 4.303 → 2 − 2.484
-0.484
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from scipy import stats

__all__ = ["bootstrap_indices", "paired_bootstrap", "seed_interval", "standard_error", "welch_t_test"]


def bootstrap_indices(n: int, resamples: int = 1000, seed: int = 0) -> torch.Tensor:
    """``(resamples, n)`` indices drawn with replacement from ``range(n)`` (a fixed generator: reproducible)."""
    if n < 1:
        raise ValueError("bootstrap needs at least one sample")
    g = torch.Generator().manual_seed(seed)
    return torch.randint(n, (resamples, n), generator=g)


def paired_bootstrap(statistic: Callable[[torch.Tensor], torch.Tensor | float], n: int, *, resamples: int = 1000,
                     level: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """``(estimate, low, high)``: ``statistic(index)`` on all ``n`` samples and the percentile interval of it
    over ``resamples`` bootstrap index sets.

    ``statistic`` receives a ``(n,)`` index tensor, or a ``(R, n)`` batch of them if it is vectorised — it is
    first called with the ``(R, n)`` batch and must then return ``(R,)``; a statistic that cannot take a batch
    raises ``TypeError``/``ValueError``/``RuntimeError`` there and is called once per resample instead. Index the
    same positions in every model's and every seed's per-sample values to keep the comparison paired.
    """
    estimate = float(statistic(torch.arange(n)))
    idx = bootstrap_indices(n, resamples, seed)
    try:
        values = torch.as_tensor(statistic(idx), dtype=torch.float64)
        if values.shape != (resamples,):
            raise ValueError("not vectorised")
    except (TypeError, ValueError, RuntimeError, IndexError):
        values = torch.tensor([float(statistic(i)) for i in idx], dtype=torch.float64)
    alpha = (1 - level) / 2
    low, high = torch.quantile(values, torch.tensor([alpha, 1 - alpha], dtype=torch.float64)).tolist()
    return estimate, low, high


def seed_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """``(mean, low, high)``: Student's t interval of the mean of per-seed values; one seed gives ``(v, nan, nan)``."""
    x = [float(v) for v in values]
    if not x:
        raise ValueError("seed_interval needs at least one value")
    mean = sum(x) / len(x)
    if len(x) < 2:
        return mean, float("nan"), float("nan")
    sd = math.sqrt(sum((v - mean) ** 2 for v in x) / (len(x) - 1))
    half = float(stats.t.ppf(1 - (1 - level) / 2, len(x) - 1)) * sd / math.sqrt(len(x))
    return mean, mean - half, mean + half


def standard_error(values) -> float:
    """Standard error of the mean of per-sample values, ``std(ddof=1) / √n`` (the "±" of a mean over
    evaluation samples); ``nan`` for fewer than two values. ``values``: any 1-D sequence, array or tensor.

    >>> round(standard_error([1.0, 2.0, 3.0, 4.0]), 4)  # sd 1.2910 / √4
    0.6455
    """
    x = torch.as_tensor(values, dtype=torch.float64).flatten()
    if x.numel() < 2:
        return float("nan")
    return float(x.std(correction=1) / math.sqrt(x.numel()))


def welch_t_test(a, b) -> tuple[float, float]:
    """``(t, p)`` of Welch's two-sample t-test (unequal variances, two-sided) between the per-sample values of
    two systems, ``t > 0`` when ``a`` has the larger mean. Unpaired: it does not assume the samples align."""
    x = torch.as_tensor(a, dtype=torch.float64).flatten().cpu().numpy()
    y = torch.as_tensor(b, dtype=torch.float64).flatten().cpu().numpy()
    if len(x) < 2 or len(y) < 2:
        raise ValueError(f"welch_t_test needs at least two values per system, got {len(x)} and {len(y)}")
    result = stats.ttest_ind(x, y, equal_var=False)
    return float(result.statistic), float(result.pvalue)
