"""Robust summaries of repeated wall times (pure: numbers in, numbers out).

Machine noise on a shared host is bursty and one-sided (a time is never *shorter* than the work),
so we report the median and the inter-quartile range ``IQR = q3 - q1`` rather than mean and std.
Speed-ups are taken two ways: ``median(t_ref) / median(t_v)`` and the median over rounds of the
paired ratio ``t_ref[r] / t_v[r]`` (both measured in the same interleaved round ``r``, so a burst
of load that hits one round hits both numbers alike).
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

__all__ = ["Summary", "paired_speedup", "summarize"]


class Summary(NamedTuple):
    n: int
    median: float
    q1: float
    q3: float
    iqr: float
    min: float


def summarize(times: Sequence[float]) -> Summary:
    """Median, quartiles (linear interpolation, numpy's default), IQR and minimum of ``times``."""
    t = np.asarray(list(times), dtype=np.float64)
    if t.size == 0:
        raise ValueError("summarize: no timings given")
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        raise ValueError(f"summarize: timings must be finite and >= 0, got {t.tolist()}")
    q1, med, q3 = np.percentile(t, [25, 50, 75])
    return Summary(int(t.size), float(med), float(q1), float(q3), float(q3 - q1), float(t.min()))


def paired_speedup(reference: Sequence[float], candidate: Sequence[float]) -> float:
    """``median_r (reference[r] / candidate[r])`` over rounds measured together."""
    ref, cand = np.asarray(reference, np.float64), np.asarray(candidate, np.float64)
    if ref.shape != cand.shape or ref.size == 0:
        raise ValueError(f"paired_speedup: need equally many rounds, got {ref.size} and {cand.size}")
    if np.any(cand <= 0):
        raise ValueError("paired_speedup: candidate timings must be > 0")
    return float(np.median(ref / cand))
