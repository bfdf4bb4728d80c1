"""The dyadic hierarchy of diagonal blocks (SPEC §1, §3).

Notation (SPEC §0-§1): a layer has ``Cout`` output and ``Cin`` input channels; its permuted
weight-norm matrix is ``S' = S[P][:, Q]``. ``L(Cout, Cin)`` is the largest ``k`` with ``2^k`` dividing
both counts; a layer can have ``G = 2^m`` groups for ``m <= L``. The paper's group *level* ``g`` has
``G = 2^(g-1)`` groups; public functions here take the group count ``G``.

* separation level ``k(a, b)`` = smallest ``k in 1..L`` with
  ``floor(a 2^k / Cout) != floor(b 2^k / Cin)``, ``inf`` if none;
* block mask ``U_G[a, b] = 1  iff  floor(a G / Cout) == floor(b G / Cin)``  (``iff k(a, b) > log2 G``);
* penalty ``R_g[a, b] = decay^(k(a,b) - 1)`` if ``k(a, b) <= g`` else 0;
* kept fraction ``f(G) = <S', U_G> / sum(S')``; a layer's group count is the largest ``G`` with
  ``f(G) >= keep``.

All functions are pure: arrays in, numpy arrays out (float64 unless a numpy ``dtype`` is given);
tensors are accepted wherever a matrix comes in (through :func:`~strucspars_viz.norms.as_matrix`).
The sparsifier converts to torch where it needs tensors.
"""
from __future__ import annotations

import numbers

import numpy as np
from numpy.typing import DTypeLike

from .norms import as_matrix

__all__ = [
    "INF_LEVEL",
    "max_level",
    "max_groups",
    "check_groups",
    "check_decay",
    "separation_levels",
    "block_mask",
    "penalty_matrix",
    "kept_fractions",
    "kept_fraction",
    "groups_for",
    "model_sparsity",
]

#: value used for ``k(a, b) = infinity`` (position inside the finest diagonal block)
INF_LEVEL = np.iinfo(np.int64).max


def max_level(cout: int, cin: int) -> int:
    """``L(Cout, Cin)``: how many times both channel counts can be halved (0 if one is odd)."""
    if int(cout) < 1 or int(cin) < 1:
        raise ValueError(f"channel counts must be positive, got Cout={cout}, Cin={cin}")
    level = 0
    while cout % 2 == 0 and cin % 2 == 0:
        cout //= 2
        cin //= 2
        level += 1
    return level


def max_groups(cout: int, cin: int) -> int:
    """``2^L``: the largest power-of-two group count dividing both ``Cout`` and ``Cin``.

    >>> max_groups(64, 256), max_groups(3, 64)
    (64, 1)
    """
    return 2 ** max_level(int(cout), int(cin))


def check_groups(cout: int, cin: int, groups: int) -> int:
    """Validate a group count: a power of two dividing both channel counts; returns ``log2 G``.

    >>> check_groups(8, 8, 4)
    2
    >>> check_groups(8, 8, 2.5)
    Traceback (most recent call last):
    ...
    ValueError: groups must be an integer power of two (1, 2, 4, ...), got 2.5 for a 8x8 layer
    """
    integral = isinstance(groups, numbers.Integral) or (
        isinstance(groups, numbers.Real) and float(groups).is_integer()
    )
    if isinstance(groups, bool) or not integral:
        raise ValueError(
            f"groups must be an integer power of two (1, 2, 4, ...), got {groups!r} for a {cout}x{cin} layer"
        )
    groups = int(groups)
    if groups < 1 or groups & (groups - 1):
        raise ValueError(
            f"groups must be a power of two (1, 2, 4, ...), got {groups} for a {cout}x{cin} layer"
        )
    if cout % groups or cin % groups:
        raise ValueError(
            f"groups={groups} does not divide both channel counts Cout={cout} and Cin={cin}; "
            f"allowed: powers of two up to {max_groups(cout, cin)}"
        )
    return groups.bit_length() - 1


def separation_levels(cout: int, cin: int) -> np.ndarray:
    """Matrix ``k(a, b)`` of separation levels, int64 ``(Cout, Cin)``; ``INF_LEVEL`` inside the finest blocks."""
    level_max = max_level(cout, cin)
    a = np.arange(cout)[:, None]
    b = np.arange(cin)[None, :]
    k = np.full((cout, cin), INF_LEVEL, dtype=np.int64)
    # Coarsest level first so that each entry keeps the *smallest* separating k.
    for level in range(level_max, 0, -1):
        split = (a * 2**level) // cout != (b * 2**level) // cin
        k[split] = level
    return k


def block_mask(cout: int, cin: int, groups: int, *, dtype: DTypeLike = np.float64) -> np.ndarray:
    """Block-diagonal 0/1 mask ``U_G`` of shape ``(Cout, Cin)`` (numpy, float64 by default).

    ``U_G[a, b] = 1  iff  floor(a G / Cout) == floor(b G / Cin)``; the blocks are ``Cout/G x Cin/G``.
    ``G`` must be a power of two dividing both counts (:func:`check_groups`).

    >>> block_mask(4, 2, 2).tolist()
    [[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]
    """
    groups = 2 ** check_groups(cout, cin, groups)
    rows = np.arange(cout) * groups // cout
    cols = np.arange(cin) * groups // cin
    return (rows[:, None] == cols[None, :]).astype(dtype)


def penalty_matrix(
    cout: int,
    cin: int,
    groups: int | None = None,
    decay: float = 0.5,
    *,
    dtype: DTypeLike = np.float64,
) -> np.ndarray:
    """Hierarchical penalty ``R_g`` for a layer that currently has ``groups = G = 2^(g-1)`` groups.

    .. math:: R_g[a, b] = \\mathrm{decay}^{k(a,b) - 1} \\; [k(a, b) \\le g]

    ``groups=None`` gives the full-depth cost ``R = R_L`` of the permutation LP (SPEC §1). Coarse
    separations cost 1; each finer level is damped by another factor ``decay``.

    >>> penalty_matrix(8, 8, groups=2)[0].tolist()
    [0.0, 0.0, 0.5, 0.5, 1.0, 1.0, 1.0, 1.0]
    """
    check_decay(decay)
    k = separation_levels(cout, cin)
    if groups is None:
        g = max_level(cout, cin)
    else:
        g = check_groups(cout, cin, groups) + 1
    hit = k <= g
    r = np.zeros((cout, cin), dtype=np.float64)
    r[hit] = float(decay) ** (k[hit] - 1)
    return r.astype(dtype, copy=False)


def check_decay(decay: float) -> float:
    """``decay`` as a float if it lies in ``(0, 1]`` (SPEC §1); a ValueError otherwise."""
    try:
        value = float(decay)
    except (TypeError, ValueError):
        raise ValueError(f"decay must be a number in (0, 1], got {decay!r}") from None
    if not 0.0 < value <= 1.0:  # NaN fails this too
        raise ValueError(f"decay must lie in (0, 1], got {decay}")
    return value


def kept_fractions(s_permuted) -> dict[int, float]:
    """``{G: f(G)}`` for every admissible ``G = 2^m, m = 0..L``; ``f(G) = <S', U_G> / sum(S')``.

    An all-zero matrix keeps everything (``f = 1``): a dead layer can take any grouping.
    """
    s = as_matrix(s_permuted, finite=True, what="weight-norm matrix")
    cout, cin = s.shape
    total = float(s.sum())
    fractions = {}
    for m in range(max_level(cout, cin) + 1):
        groups = 2**m
        if total <= 0.0:
            fractions[groups] = 1.0
            continue
        # Sum of the diagonal blocks without materialising U_G.
        blocks = s.reshape(groups, cout // groups, groups, cin // groups)
        fractions[groups] = float(np.einsum("iaib->", blocks) / total)
    return fractions


def kept_fraction(s_permuted, groups: int) -> float:
    """``f(G) = <S', U_G> / sum(S')`` for a single ``G``."""
    s = as_matrix(s_permuted, finite=True, what="weight-norm matrix")
    g = 2 ** check_groups(*s.shape, groups)
    return kept_fractions(s)[g]


def groups_for(s_permuted, keep: float = 0.9) -> int:
    """Grouping criterion (SPEC §3): the largest ``G = 2^m`` (``m <= L``) with ``f(G) >= keep``.

    ``f`` is non-increasing in ``G`` (the masks are nested), so this is the last ``G`` passing.

    >>> groups_for(np.eye(4), keep=0.9)
    4
    """
    if not 0.0 <= keep <= 1.0:
        raise ValueError(f"keep must lie in [0, 1], got {keep}")
    best = 1
    for groups, fraction in kept_fractions(s_permuted).items():
        if fraction >= keep - 1e-12:
            best = groups
        else:
            break
    return best


def model_sparsity(sizes: list[int], groups: list[int]) -> float:
    """Fraction of groupable-conv parameters removed: ``1 - sum_l n_l / G_l / sum_l n_l`` (SPEC §3)."""
    total = float(sum(sizes))
    if total == 0:
        return 0.0
    return 1.0 - sum(n / g for n, g in zip(sizes, groups)) / total
