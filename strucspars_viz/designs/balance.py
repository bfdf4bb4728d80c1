"""The balance condition of IGC-V2 and the parameter count as a function of the number of kernels.

IGC-V2 (SPEC §10): ``x' = P_L W_L ... P_1 W_1 x`` on ``C`` channels, ``W_1`` a depthwise ``k x k``
(``k^2 C`` weights), ``W_l`` (``l >= 2``) 1x1 group convs whose groups hold ``K_l`` channels
(``C K_l`` weights each). Complementary needs ``prod_l K_l = C``. With ``s = L - 1`` 1x1 stages the
count is

.. math:: N(s) = k^2 C + C \\sum_{l=2}^{L} K_l \\;\\ge\\; k^2 C + s\\, C\\, C^{1/s}

(AM-GM; equality iff all ``K_l = C^{1/s}``: the **balance condition**). ``d/ds [s C^{1/s}] =
C^{1/s} (1 - ln C / s)`` vanishes at ``s = ln C``: the balanced block is cheapest near ``L - 1 = ln C``.
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Sequence

import numpy as np

__all__ = [
    "balanced_branch_sizes",
    "factor_branch_sizes",
    "igcv1_param_count",
    "igcv2_param_count",
    "balanced_param_count",
    "optimal_stages",
    "balance_curve",
    "integer_root",
]


def integer_root(n: int, s: int) -> int | None:
    """``K`` with ``K**s == n`` if it exists, else None (exact integer arithmetic)."""
    if n < 1 or s < 1:
        return None
    k = int(round(n ** (1.0 / s)))
    for cand in (k - 1, k, k + 1):
        if cand >= 1 and cand**s == n:
            return cand
    return None


def balanced_branch_sizes(channels: int, stages: int) -> tuple[int, ...]:
    """The balance condition: ``stages`` equal branch sizes ``K`` with ``K**stages == channels``.

    ``stages`` is the number of 1x1 group convs after the depthwise one (``L - 1``); the result is the
    ``branch_sizes`` argument of :class:`~strucspars_viz.designs.IGCV2Block`. Raises a ValueError naming
    the nearest valid choices when ``channels`` is not a perfect ``stages``-th power.
    """
    c, s = int(channels), int(stages)
    if c < 1 or s < 1:
        raise ValueError(f"balanced_branch_sizes: channels ({channels}) and stages ({stages}) must be >= 1")
    k = integer_root(c, s)
    if k is not None:
        return (k,) * s
    lo = max(1, int(math.floor(c ** (1.0 / s))))
    while (lo + 1) ** s <= c:
        lo += 1
    while lo > 1 and lo**s > c:
        lo -= 1
    hi = lo + 1
    valid_stages = [t for t in range(1, max(2, c.bit_length()) + 1) if integer_root(c, t) is not None]
    raise ValueError(
        f"balanced_branch_sizes: channels={c} is not a perfect power K**{s} (stages={s}); nearest valid "
        f"channel counts for {s} stages: {lo**s} (K={lo}) and {hi**s} (K={hi}); stage counts that balance "
        f"C={c}: {valid_stages}; or use factor_branch_sizes({c}, {s}) for the most balanced unequal sizes"
    )


@lru_cache(maxsize=None)
def _factorisations(n: int, s: int, smallest: int) -> tuple[tuple[int, ...], ...]:
    if s == 1:
        return ((n,),) if n >= smallest else ()
    out = []
    for d in range(smallest, int(round(n ** (1.0 / s))) + 2):
        if n % d == 0 and d <= n // d:
            out += [(d, *rest) for rest in _factorisations(n // d, s - 1, d)]
    return tuple(out)


def factor_branch_sizes(channels: int, stages: int) -> tuple[int, ...]:
    """The cheapest ``(K_2, ..., K_L)`` with ``prod K_l = channels``: least ``sum K_l`` (ties: the most even).

    Equals :func:`balanced_branch_sizes` when ``channels`` is a perfect power; otherwise the most
    balanced unequal factorisation (e.g. ``48, 2 -> (6, 8)``), sorted in increasing order.
    """
    c, s = int(channels), int(stages)
    if c < 1 or s < 1:
        raise ValueError(f"factor_branch_sizes: channels ({channels}) and stages ({stages}) must be >= 1")
    options = _factorisations(c, s, 1)
    return min(options, key=lambda f: (sum(f), max(f)))


def igcv1_param_count(channels: int, primary_groups: int, secondary_groups: int, kernel_size: int = 3,
                      bn: bool = False) -> int:
    """IGC-V1 block weights: primary ``k^2 C M`` + secondary ``C L`` (+ ``2C`` BatchNorm), ``C = L M``."""
    c, lg, mg = int(channels), int(primary_groups), int(secondary_groups)
    return c * mg * kernel_size**2 + c * lg + (2 * c if bn else 0)


def igcv2_param_count(channels: int, branch_sizes: Sequence[int], kernel_size: int = 3, bn: bool = False) -> int:
    """IGC-V2 block weights: ``k^2 C + C sum_l K_l`` (+ ``2C`` BatchNorm)."""
    c = int(channels)
    return c * kernel_size**2 + c * int(sum(int(k) for k in branch_sizes)) + (2 * c if bn else 0)


def balanced_param_count(channels: int, stages, kernel_size: int = 3) -> np.ndarray | float:
    """The balanced curve ``k^2 C + s C C^{1/s}``, for real ``s = L - 1 > 0`` (scalar or array)."""
    s = np.asarray(stages, dtype=np.float64)
    if np.any(s <= 0):
        raise ValueError(f"balanced_param_count: stages must be > 0, got {stages}")
    c = float(channels)
    out = kernel_size**2 * c + s * c * c ** (1.0 / s)
    return float(out) if out.ndim == 0 else out


def optimal_stages(channels: int) -> float:
    """The real minimiser ``s* = ln C`` of the balanced curve (``L - 1 = ln C``)."""
    if channels < 2:
        raise ValueError(f"optimal_stages: channels must be >= 2, got {channels}")
    return math.log(channels)


def balance_curve(channels: int, max_stages: int | None = None, kernel_size: int = 3, points: int = 200) -> dict:
    """Data for the parameter-vs-L plot.

    Returns ``{"s": real grid, "params": balanced curve on it, "s_int": 1..max_stages,
    "params_int": balanced curve at integers, "exact": mask of integers where C is a perfect power
    (a real block exists), "s_opt": ln C, "params_opt": curve at ln C, "channels": C}``.
    """
    c = int(channels)
    top = int(max_stages) if max_stages is not None else max(3, int(math.ceil(2.5 * math.log(c))))
    grid = np.linspace(0.6, top, points)
    s_int = np.arange(1, top + 1)
    return {
        "channels": c,
        "kernel_size": kernel_size,
        "s": grid,
        "params": balanced_param_count(c, grid, kernel_size),
        "s_int": s_int,
        "params_int": balanced_param_count(c, s_int, kernel_size),
        "exact": np.array([integer_root(c, int(t)) is not None for t in s_int]),
        "s_opt": optimal_stages(c),
        "params_opt": balanced_param_count(c, optimal_stages(c), kernel_size),
    }
