"""Exercise on IGC-V2's complementary condition, with its own reference check.

An IGC-V2 block computes ``x' = P_L W_L ... P_1 W_1 x`` on ``C`` channels: ``W_1`` depthwise, ``W_l``
(``l >= 2``) 1x1 group convs whose groups hold ``K_l`` channels, each followed by a channel shuffle.
As 0/1 connectivity matrices (``mask[o, i] = 1`` iff output ``o`` of the stage reads input ``i``) and
permutation matrices (``x[perm]``: slot ``s`` takes channel ``perm[s]``, i.e. ``Pi[s, perm[s]] = 1``),

.. math:: T = \\Pi_L M_L \\cdots \\Pi_1 M_1, \\qquad T[o, i] = \\#\\{\\text{paths from input } i \\text{ to output } o\\}.

The block is **complementary** iff there is exactly one path between every input and every output:
``T`` is all ones (which needs ``prod_l K_l = C``).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..permutation import shufflenet_permutation
from .core import Case, Exercise, Failure, Mistake, as_array, require

__all__ = ["COMPLEMENTARY", "group_mask", "is_complementary", "path_counts"]


def group_mask(channels: int, group_size: int) -> np.ndarray:
    """0/1 connectivity of a 1x1 group conv whose groups hold ``group_size`` consecutive channels."""
    if group_size < 1 or channels % group_size:
        raise ValueError(f"group_size={group_size} must divide channels={channels}")
    block = np.arange(channels) // group_size
    return (block[:, None] == block[None, :]).astype(np.int64)


def _perm_matrix(perm: np.ndarray) -> np.ndarray:
    n = len(perm)
    m = np.zeros((n, n), dtype=np.int64)
    m[np.arange(n), np.asarray(perm)] = 1
    return m


def path_counts(masks: Sequence, perms: Sequence) -> np.ndarray:
    """``T = Pi_L M_L ... Pi_1 M_1``: number of paths from every input channel to every output channel."""
    if len(masks) != len(perms) or not masks:
        raise ValueError(f"need one permutation per stage and at least one stage; got {len(masks)} masks, {len(perms)} perms")
    channels = as_array(masks[0]).shape[0]
    t = np.eye(channels, dtype=np.int64)
    for stage, (mask, perm) in enumerate(zip(masks, perms)):
        m = as_array(mask).astype(np.int64)
        if m.shape != (channels, channels):
            raise ValueError(f"stage {stage}: mask of shape {m.shape}, expected ({channels}, {channels})")
        t = _perm_matrix(as_array(perm)) @ m @ t
    return t


def is_complementary(masks: Sequence, perms: Sequence) -> bool:
    """IGC-V2's complementary condition: exactly one path from every input to every output."""
    return bool((path_counts(masks, perms) == 1).all())


def _stages(channels: int, sizes: Sequence[int], shuffle: str, rng: np.random.Generator):
    masks = [np.eye(channels, dtype=np.int64)]  # W_1: depthwise
    perms = [np.arange(channels)]
    for k in sizes:
        masks.append(group_mask(channels, k))
        if shuffle == "shufflenet":
            perms.append(shufflenet_permutation(channels, channels // k))
        elif shuffle == "inverse":
            perms.append(np.argsort(shufflenet_permutation(channels, channels // k)))
        elif shuffle == "random":
            perms.append(rng.permutation(channels))
        else:
            perms.append(np.arange(channels))
    return masks, [np.asarray(p, dtype=np.int64) for p in perms]


def _cases(rng: np.random.Generator) -> list[Case]:
    specs = [
        (8, (2, 2, 2), "shufflenet"), (8, (2, 4), "shufflenet"), (12, (3, 4), "shufflenet"), (16, (4, 4), "shufflenet"),
        (9, (3, 3), "shufflenet"), (8, (8,), "none"), (8, (2, 2, 2), "none"), (8, (2, 2), "shufflenet"),
        (8, (4, 4), "shufflenet"), (8, (2, 4), "inverse"), (12, (4, 3), "inverse"), (4, (1, 1), "none"),
        (8, (2, 4), "random"), (16, (4, 4), "random"), (16, (2, 2, 2, 2), "shufflenet"),
    ]
    cases = []
    for channels, sizes, shuffle in specs:
        masks, perms = _stages(channels, sizes, shuffle, rng)
        cases.append(Case((masks, perms), f"C = {channels}, depthwise then groups of K = {sizes}, {shuffle} shuffles"))
    return cases


def _verify(output, case: Case) -> None:
    masks, perms = case.args
    require(output is not None, "your function returned None; it should return True or False")
    arr = as_array(output)
    require(arr.ndim == 0 and arr.dtype.kind == "b",
            f"return a single True/False, got {type(output).__name__}"
            + (f" of shape {arr.shape}" if arr.ndim else f" {output!r}"))
    t = path_counts(masks, perms)
    expected = bool((t == 1).all())
    if bool(arr) == expected:
        return
    if expected:
        raise Failure("here every input channel reaches every output channel by exactly one path (complementary), "
                      "but you returned False")
    zero, many = int((t == 0).sum()), int((t > 1).sum())
    detail = []
    if zero:
        detail.append(f"{zero} input/output pairs have no path")
    if many:
        detail.append(f"{many} pairs are joined by several paths (up to {int(t.max())})")
    raise Failure(f"this block is not complementary ({' and '.join(detail)}), but you returned True")


def _counts_scatter(masks, perms):
    return path_counts(masks, [np.argsort(p) for p in perms])


COMPLEMENTARY = Exercise(
    name="complementary",
    signature="complementary(masks, perms) -> bool",
    make_cases=_cases,
    verify=_verify,
    fingerprint=lambda output, case: None if output is None else repr(as_array(output).tolist()),
    mistakes=(
        Mistake("at_least_one",
                "You accept several paths between a pair of channels; complementary means exactly one path from "
                "every input to every output.",
                lambda masks, perms: bool((path_counts(masks, perms) >= 1).all())),
        Mistake("ignored_perms",
                "You left out the shuffles between the stages; without them a group conv's outputs only ever meet "
                "the inputs of their own group.",
                lambda masks, perms: bool((path_counts(masks, [np.arange(len(p)) for p in perms]) == 1).all())),
        Mistake("total_count",
                "You checked the total number of paths (C^2); it is C * prod K_l for any shuffle. Every single "
                "(input, output) pair needs exactly one path.",
                lambda masks, perms: bool(path_counts(masks, perms).sum() == len(perms[0]) ** 2)),
        Mistake("scatter_perms",
                "Your permutations act the wrong way round (transposed permutation matrices, or the stages multiplied "
                "in reverse order): x[perm] means slot s takes channel perm[s], so the matrix has its 1 at row s, "
                "column perm[s], and stage 1 acts first: T = Pi_L M_L ... Pi_1 M_1.",
                lambda masks, perms: bool((_counts_scatter(masks, perms) == 1).all())),
    ),
)
