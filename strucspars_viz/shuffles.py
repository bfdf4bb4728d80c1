"""Permutations as index arrays, the fixed shuffles of SPEC §7, and planted ground truth.

A permutation is an int64 index array: ``S' = S[P][:, Q]``, ``P_inv = argsort(P)``. The shuffle set
``SHUFFLES`` (learned, ShuffleNet, random, none) is what the ablations compare; only ``"learned"``
depends on the weights (:func:`strucspars_viz.permutation.learn_permutations`), the others come from
:func:`fixed_shuffle`. Re-exported by :mod:`strucspars_viz.permutation`.
"""
from __future__ import annotations

import numpy as np

from .hierarchy import check_groups, max_level

__all__ = [
    "SHUFFLES",
    "check_permutation",
    "default_shuffle_groups",
    "fixed_shuffle",
    "inverse_permutation",
    "planted_matrix",
    "random_permutation",
    "shufflenet_permutation",
]


#: the shuffle set of SPEC §7: learned ``P, Q`` and the three fixed baselines
SHUFFLES = ("learned", "shufflenet", "random", "none")


def check_permutation(perm, n: int, what: str = "permutation") -> np.ndarray:
    """``perm`` as an int64 array if it is a permutation of ``range(n)``; a ValueError naming the flaw.

    >>> check_permutation([2, 0, 1], 3).tolist()
    [2, 0, 1]
    >>> check_permutation([0, 0, 2], 3, "row_perm")
    Traceback (most recent call last):
    ...
    ValueError: row_perm is not a permutation of range(3): index 0 appears 2 times (and 1 indices are missing)
    """
    arr = np.asarray(perm)
    if arr.shape != (n,):
        raise ValueError(f"{what} must be a permutation of range({n}), got shape {arr.shape}")
    if n and arr.dtype.kind not in "iu":
        raise ValueError(f"{what} must hold integers, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    out_of_range = arr[(arr < 0) | (arr >= n)]
    if out_of_range.size:
        raise ValueError(f"{what} must be a permutation of range({n}): index {int(out_of_range[0])} is out of range")
    counts = np.bincount(arr, minlength=n)
    if (counts > 1).any():
        dup = int(np.flatnonzero(counts > 1)[0])
        raise ValueError(f"{what} is not a permutation of range({n}): index {dup} appears {int(counts[dup])} times "
                         f"(and {int((counts == 0).sum())} indices are missing)")
    return arr


def inverse_permutation(perm) -> np.ndarray:
    """``P_inv = argsort(P)``, so that ``P_inv[P[a]] = a``."""
    return np.argsort(np.asarray(perm)).astype(np.int64)


def shufflenet_permutation(channels: int, groups: int) -> np.ndarray:
    """ShuffleNet's channel shuffle as an index array (SPEC §7, §10).

    Channels viewed as ``(groups, channels // groups)``, transposed, flattened: slot ``j*g + i`` takes
    channel ``i*n + j``. Its inverse is the shuffle with ``n = channels // groups`` groups.

    >>> shufflenet_permutation(6, 2).tolist()
    [0, 3, 1, 4, 2, 5]
    """
    if groups < 1 or channels % groups:
        raise ValueError(f"ShuffleNet shuffle: groups={groups} must divide channels={channels}")
    return np.arange(channels).reshape(groups, channels // groups).T.reshape(-1).astype(np.int64)


def random_permutation(n: int, rng: np.random.Generator | int | None = None) -> np.ndarray:
    """A uniformly random permutation of ``range(n)``."""
    return np.random.default_rng(rng).permutation(n).astype(np.int64)


def default_shuffle_groups(cout: int, cin: int) -> int:
    """``min(4, 2^L)``: the ShuffleNet group count used when none is given.

    >>> default_shuffle_groups(64, 64), default_shuffle_groups(6, 4)
    (4, 2)
    """
    return min(4, 2 ** max_level(cout, cin))


def fixed_shuffle(
    kind: str, cout: int, cin: int, groups: int | None = None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``(row_perm, col_perm)`` of a fixed (not learned) shuffle of SPEC §7.

    * ``"shufflenet"``: ``P = shufflenet_permutation(Cout, g)``, ``Q = shufflenet_permutation(Cin, g)``
      with ``g = groups`` (default :func:`default_shuffle_groups`); ``g`` must divide both counts;
    * ``"random"``: ``P = random_permutation(Cout, seed)``, ``Q = random_permutation(Cin, seed + 1)``;
    * ``"none"``: identities.

    ``"learned"`` depends on the weights: use :func:`learn_permutations`.

    >>> [p.tolist() for p in fixed_shuffle("shufflenet", 4, 4, 2)]
    [[0, 2, 1, 3], [0, 2, 1, 3]]
    """
    if kind == "learned":
        raise ValueError("the 'learned' shuffle is not fixed: it depends on the weights; "
                         "use learn_permutations(S, ...) (or StructuredSparsifier.update_permutations)")
    if kind == "shufflenet":
        g = default_shuffle_groups(cout, cin) if groups is None else int(groups)
        if g < 1 or cout % g or cin % g:
            raise ValueError(f"ShuffleNet shuffle: groups={groups} must divide both Cout={cout} and Cin={cin}")
        return shufflenet_permutation(cout, g), shufflenet_permutation(cin, g)
    if kind == "random":
        return random_permutation(cout, seed), random_permutation(cin, seed + 1)
    if kind == "none":
        return np.arange(cout, dtype=np.int64), np.arange(cin, dtype=np.int64)
    raise ValueError(f"unknown shuffle {kind!r}; allowed: {', '.join(SHUFFLES)}")


def planted_matrix(
    cout: int, cin: int, groups: int, noise: float = 0.0, seed: np.random.Generator | int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A scrambled block-diagonal weight-norm matrix: ground truth for permutation learning.

    ``groups`` diagonal blocks of size ``Cout/G x Cin/G`` with entries uniform in ``[0.5, 1.5]``,
    plus ``noise * U[0, 1]`` everywhere, then rows and columns shuffled. Returns
    ``(S, row_perm, col_perm)`` with ``S = S_planted[row_perm][:, col_perm]``. ``groups`` must be a
    power of two dividing both channel counts (the block hierarchy of SPEC §1).

    >>> planted_matrix(64, 64, 7)
    Traceback (most recent call last):
    ...
    ValueError: planted matrix: groups must be a power of two (1, 2, 4, ...), got 7 for a 64x64 layer
    """
    for what, n in (("Cout", cout), ("Cin", cin)):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"planted matrix: {what} must be a positive integer, got {n!r}")
    try:
        check_groups(cout, cin, groups)
    except ValueError as err:
        raise ValueError(f"planted matrix: {err}") from None
    if not np.isfinite(noise) or noise < 0:
        raise ValueError(f"planted matrix: noise must be a finite number >= 0, got {noise}")
    rng = np.random.default_rng(seed)
    s = np.zeros((cout, cin))
    bo, bi = cout // groups, cin // groups
    for r in range(groups):
        s[r * bo:(r + 1) * bo, r * bi:(r + 1) * bi] = rng.uniform(0.5, 1.5, (bo, bi))
    s += noise * rng.uniform(0.0, 1.0, (cout, cin))
    p, q = rng.permutation(cout), rng.permutation(cin)
    return s[p][:, q], p, q
