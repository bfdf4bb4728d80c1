"""Exercises on permutations as index arrays: the ShuffleNet shuffle and the inverse permutation.

Conventions (notebook 01): a permutation is an index array, ``x[:, perm]`` puts channel ``perm[s]``
at slot ``s``; ``P_inv = argsort(P)`` undoes it, ``P_inv[P[a]] = a``. The ShuffleNet shuffle with
``g`` groups on ``C = g n`` channels views them as ``(g, n)``, transposes and flattens: slot
``j g + i`` takes channel ``i n + j``; its inverse is the shuffle with ``n`` groups.
"""
from __future__ import annotations

import numpy as np

from .. import permutation
from .core import Case, Exercise, Failure, Mistake, as_array, expect_shape, fmt, numeric_array, require

__all__ = ["INVERSE_PERMUTATION", "SHUFFLENET_PERMUTATION"]


def _index_array(output, n: int, what: str) -> np.ndarray:
    arr = numeric_array(output, f"an index array of {n} channels")
    expect_shape(arr, (n,), what, "(one entry per slot)")
    require(
        arr.dtype.kind in "iu",
        f"{what} has dtype {arr.dtype}; indices must be integers (an int64 array) so they can index channels",
    )
    outside = arr[(arr < 0) | (arr >= n)]
    if outside.size:
        raise Failure(f"{what} contains {int(outside[0])}, which is not a channel index 0..{n - 1}")
    counts = np.bincount(arr, minlength=n)
    if (counts != 1).any():
        c = int(np.argmax(counts != 1))
        raise Failure(f"{what} is not a permutation of range({n}): channel {c} appears {int(counts[c])} times "
                      "(each channel must appear exactly once)")
    return arr.astype(np.int64)


# ----------------------------------------------------------------------------- ShuffleNet shuffle
def _shuffle_cases(rng: np.random.Generator) -> list[Case]:
    pairs = [(6, 2), (6, 3), (12, 4), (8, 1), (5, 5), (1, 1), (16, 2)]
    for _ in range(5):
        g, n = rng.integers(2, 8, size=2)
        pairs.append((int(g * n), int(g)))
    return [Case((c, g), f"channels={c}, groups={g}") for c, g in pairs]


def _verify_shuffle(output, case: Case) -> None:
    channels, groups = case.args
    n = channels // groups
    perm = _index_array(output, channels, f"shufflenet_permutation({channels}, {groups})")
    expected = as_array(permutation.shufflenet_permutation(channels, groups))
    wrong = np.flatnonzero(perm != expected)
    if wrong.size:
        s = int(wrong[0])
        j, i = divmod(s, groups)
        raise_msg = (
            f"slot {s} (= j*g + i with j = {j}, i = {i}, g = {groups}) takes channel {perm[s]}; in the ShuffleNet "
            f"shuffle slot j*g + i takes channel i*n + j (n = channels // groups = {n}). "
            f"Your result: {fmt(perm)}"
        )
        raise Failure(raise_msg)


SHUFFLENET_PERMUTATION = Exercise(
    name="shufflenet_permutation",
    signature="shufflenet_permutation(channels, groups) -> int index array",
    make_cases=_shuffle_cases,
    verify=_verify_shuffle,
    mistakes=(
        Mistake(
            "inverse",
            "You built the inverse shuffle (the shuffle with n = channels // groups groups): the reshape order is "
            "swapped. View the channels as a (groups, channels // groups) array, then transpose and flatten.",
            lambda c, g: np.arange(c).reshape(c // g, g).T.reshape(-1),
        ),
        Mistake(
            "no_transpose",
            "Your result is the identity: reshaping and flattening alone moves nothing, the transpose in between "
            "is what interleaves the groups.",
            lambda c, g: np.arange(c).reshape(g, c // g).reshape(-1),
        ),
        Mistake(
            "one_based",
            "Your indices start at 1: Python indexes channels 0 .. channels - 1.",
            lambda c, g: np.arange(1, c + 1).reshape(g, c // g).T.reshape(-1),
        ),
    ),
)


# ----------------------------------------------------------------------------- inverse permutation
def _inverse_cases(rng: np.random.Generator) -> list[Case]:
    perms = [np.array([0]), np.array([1, 2, 0]), np.roll(np.arange(7), 2),
             np.asarray(permutation.shufflenet_permutation(12, 3))]
    perms += [rng.permutation(n) for n in (2, 5, 8, 13, 16, 32)]
    return [Case((p.astype(np.int64),), f"P = {fmt(p)}") for p in perms]


def _verify_inverse(output, case: Case) -> None:
    (perm,) = case.args
    n = len(perm)
    inv = _index_array(output, n, "P_inv")
    bad = np.flatnonzero(inv[perm] != np.arange(n))
    if bad.size:
        a = int(bad[0])
        raise Failure(f"P_inv[P[a]] should be a for every a; at a = {a}: P[a] = {perm[a]} but P_inv[{perm[a]}] = {inv[perm[a]]}")


INVERSE_PERMUTATION = Exercise(
    name="inverse_permutation",
    signature="inverse_permutation(perm) -> int index array",
    make_cases=_inverse_cases,
    verify=_verify_inverse,
    mistakes=(
        Mistake(
            "returned_input",
            "You returned P itself. P_inv undoes P (P_inv[P[a]] = a); only for involutions such as a single swap "
            "are the two equal.",
            lambda p: np.asarray(p).copy(),
        ),
        Mistake(
            "squared",
            "You composed P with itself (P[P]); the inverse is the array that P indexes back to the identity, "
            "P_inv[P[a]] = a.",
            lambda p: np.asarray(p)[np.asarray(p)],
        ),
        Mistake(
            "identity",
            "Every entry of your result equals its own index (the identity): you stored P[a] at position P[a]; "
            "position P[a] must hold a.",
            lambda p: np.arange(len(p)),
        ),
    ),
)
