"""Spread and significance over seeds (SPEC §7): mean, sd, 95 % t interval, Welch's t-test.

For values ``x_1..x_n`` of one arm: ``mean``, ``sd = sqrt(sum (x_i - mean)^2 / (n - 1))``, and the
interval ``mean +- t_{0.975, n-1} sd / sqrt(n)``. Two arms are compared with Welch's unequal-variance
t-test (``scipy.stats.ttest_ind(equal_var=False)``); with fewer than two values on a side every
spread statistic is NaN (never a made-up zero).
"""
from __future__ import annotations

import math
import warnings
from typing import NamedTuple, Sequence

import numpy as np
from scipy import stats as _st

__all__ = ["Spread", "spread", "welch_p"]


class Spread(NamedTuple):
    n: int
    mean: float
    sd: float
    ci_low: float
    ci_high: float


def spread(values: Sequence[float], level: float = 0.95) -> Spread:
    """Mean, sample sd and the two-sided ``level`` t confidence interval of the mean."""
    x = np.asarray(values, dtype=np.float64)
    n = int(x.size)
    if n == 0:
        raise ValueError("spread of an empty list of values")
    mean = float(x.mean())
    if n < 2:
        return Spread(n, mean, math.nan, math.nan, math.nan)
    sd = float(x.std(ddof=1))
    half = float(_st.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    return Spread(n, mean, sd, mean - half, mean + half)


def welch_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided p-value of Welch's t-test for equal means (NaN if a side has < 2 values or no spread)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.size < 2 or b.size < 2:
        return math.nan
    if a.std() == 0 and b.std() == 0:
        return math.nan if a.mean() != b.mean() else 1.0
    with warnings.catch_warnings():  # scipy warns about precision when one side has (near) zero spread
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(_st.ttest_ind(a, b, equal_var=False).pvalue)
