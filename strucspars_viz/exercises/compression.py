"""Exercises on regularising, masking and compressing a layer (notebook 03).

* The penalty that ``regularize`` adds lives in the weight's own channel order:
  ``R_g[P_inv][:, Q_inv]``, so that ``sum_ij pen_ij |W_ij| = sum_ab R_g[a, b] |W[P][:, Q]_ab|``.
* The grouped weight ``(Cout, Cin/G, kh, kw)`` stacks the diagonal blocks of ``W' = W[P][:, Q]``;
  ``x[:, Q] -> nn.Conv2d(Cin, Cout, groups=G) -> out[:, P_inv]`` equals the dense conv with the
  masked weight ``W * U_G[P_inv][:, Q_inv]``.
* Model sparsity ``1 - sum_l n_l / G_l / sum_l n_l`` with ``n_l = Cout Cin kh kw``.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .. import export, hierarchy
from ..permutation import inverse_permutation
from ..sparsifier import LayerState
from .core import Case, Exercise, Failure, Mistake, as_array, expect_shape, fmt, numeric_array, require

__all__ = ["GROUPED_WEIGHT", "MODEL_SPARSITY", "UNPERMUTED_PENALTY"]


# ----------------------------------------------------------------------------- un-permuted penalty
def _reference_unpermute(r: np.ndarray, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    st = LayerState("exercise", r.shape[0], r.shape[1], 1, np.asarray(p), np.asarray(q))
    return as_array(st.unpermute(torch.as_tensor(r))).astype(np.float64)


def _penalty_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for cout, cin, groups in ((8, 8, 2), (8, 16, 4), (16, 8, 1), (4, 4, 2)):
        r = as_array(hierarchy.penalty_matrix(cout, cin, groups)).astype(np.float64)
        cases.append((r, rng.permutation(cout), rng.permutation(cin), f"R_g of a {cout}x{cin} layer with G = {groups}"))
    for cout, cin in ((6, 4), (4, 6), (5, 5), (7, 7)):
        cases.append((rng.uniform(0, 1, (cout, cin)), rng.permutation(cout), rng.permutation(cin), f"random {cout}x{cin} matrix"))
    cases.append((rng.uniform(0, 1, (4, 4)), np.arange(4), np.arange(4), "random 4x4, identity P and Q"))
    return [Case((r, p.astype(np.int64), q.astype(np.int64)), f"{label}, P = {fmt(p)}, Q = {fmt(q)}")
            for r, p, q, label in cases]


def _verify_penalty(output, case: Case) -> None:
    r, p, q = case.args
    cout, cin = r.shape
    pen = numeric_array(output, f"a ({cout}, {cin}) matrix").astype(np.float64)
    expect_shape(pen, (cout, cin), "the penalty", "(the weight's own order: rows output channels, columns input)")
    w = np.random.default_rng(cout * 7 + cin).standard_normal((cout, cin))
    loss, want = float((pen * np.abs(w)).sum()), float((r * np.abs(w[p][:, q])).sum())
    require(np.isclose(loss, want, rtol=1e-9, atol=1e-12),
            f"on a random weight W, sum_ij pen[i, j] |W_ij| = {loss:.6g}, but the structured penalty of the permuted "
            f"weight, sum_ab R_g[a, b] |W[P][:, Q]_ab|, is {want:.6g}")
    back = pen[p][:, q]
    bad = np.argwhere(~np.isclose(back, r))
    if len(bad):
        a, b = (int(v) for v in bad[0])
        raise Failure(f"permuting your matrix again, pen[P][:, Q], should give back R_g; it differs at slot [{a}, {b}]")


UNPERMUTED_PENALTY = Exercise(
    name="unpermuted_penalty",
    signature="unpermuted_penalty(R_g, P, Q) -> (Cout, Cin) penalty in the weight's own channel order",
    make_cases=_penalty_cases,
    verify=_verify_penalty,
    mistakes=(
        Mistake("not_unpermuted",
                "You returned R_g in the permuted order. The regulariser multiplies it with W in the weight's own "
                "channel order, so the penalty must be un-permuted first.",
                lambda r, p, q: np.array(r, copy=True)),
        Mistake("forward_perm",
                "You indexed with P and Q; un-permuting needs the inverses, P_inv = argsort(P) and Q_inv = argsort(Q).",
                lambda r, p, q: r[p][:, q]),
        Mistake("rows_only", "You un-permuted the rows only; the columns need Q_inv as well.",
                lambda r, p, q: r[np.argsort(p)]),
        Mistake("cols_only", "You un-permuted the columns only; the rows need P_inv as well.",
                lambda r, p, q: r[:, np.argsort(q)]),
        Mistake("swapped",
                "P acts on rows (output channels) and Q on columns (input channels); you applied them the other way "
                "round.",
                lambda r, p, q: r[np.argsort(q)][:, np.argsort(p)]),
    ),
)


# ----------------------------------------------------------------------------- grouped weight
def _reference_grouped(w: torch.Tensor, p, q, groups: int) -> np.ndarray:
    return as_array(export.grouped_weight(w, p, q, groups)).astype(np.float64)


def _weight_cases(rng: np.random.Generator) -> list[Case]:
    specs = [(8, 8, 3, 2), (8, 16, 1, 4), (16, 8, 3, 8), (4, 4, 3, 1), (6, 12, 1, 2), (8, 8, 3, 8), (12, 6, 3, 2)]
    cases = []
    gen = torch.Generator().manual_seed(int(rng.integers(1 << 30)))
    for cout, cin, k, groups in specs:
        w = torch.randn(cout, cin, k, k, generator=gen)
        cases.append(Case((w, rng.permutation(cout).astype(np.int64), rng.permutation(cin).astype(np.int64), groups),
                          f"W of shape {(cout, cin, k, k)}, G = {groups}"))
    w = torch.randn(8, 8, 3, 3, generator=gen)
    cases.append(Case((w, np.arange(8), np.arange(8), 4), "W of shape (8, 8, 3, 3), G = 4, identity P and Q"))
    return cases


def _verify_grouped(output, case: Case) -> None:
    w, p, q, groups = case.args
    cout, cin, kh, kw = w.shape
    gw = numeric_array(output, f"a ({cout}, {cin // groups}, {kh}, {kw}) weight").astype(np.float32)
    expect_shape(gw, (cout, cin // groups, kh, kw), "the grouped weight",
                 f"(a conv with G = {groups} groups stores (Cout, Cin/G, kh, kw))")
    conv = nn.Conv2d(cin, cout, (kh, kw), padding=(kh // 2, kw // 2), groups=groups, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(gw))
    mask = as_array(hierarchy.block_mask(cout, cin, groups)).astype(np.float32)
    mask = mask[inverse_permutation(p)][:, inverse_permutation(q)]
    x = torch.randn(2, cin, 6, 6, generator=torch.Generator().manual_seed(cout * 13 + cin))
    with torch.no_grad():
        dense = nn.functional.conv2d(x, w * torch.from_numpy(mask)[:, :, None, None], padding=(kh // 2, kw // 2))
        grouped = conv(x[:, torch.as_tensor(q)])[:, torch.as_tensor(inverse_permutation(p))]
    diff = float((dense - grouped).abs().max())
    if diff > 1e-4 * max(1.0, float(dense.abs().max())):
        wrong = np.flatnonzero(np.abs(gw - _reference_grouped(w, p, q, groups)).reshape(groups, -1).max(axis=1) > 1e-6)
        block = f" The first wrong block is group r = {wrong[0]} (rows {wrong[0] * cout // groups}.." \
                f"{(wrong[0] + 1) * cout // groups - 1} of the grouped weight)." if wrong.size else ""
        raise Failure(
            f"x[:, Q] -> nn.Conv2d(groups={groups}) with your weight -> out[:, P_inv] differs from the dense conv with "
            f"the masked weight W * U_G[P_inv][:, Q_inv] by up to {diff:.3g} on random inputs.{block}"
        )


def _first_block_column(w, p, q, groups):
    cout, cin = w.shape[:2]
    wp = w[torch.as_tensor(p)][:, torch.as_tensor(q)]
    return wp[:, : cin // groups]


def _group_size_confused(w, p, q, groups):
    cin = w.shape[1]
    return _reference_grouped(w, p, q, cin // groups)


GROUPED_WEIGHT = Exercise(
    name="grouped_weight",
    signature="grouped_weight(W, P, Q, G) -> (Cout, Cin/G, kh, kw) weight of nn.Conv2d(Cin, Cout, k, groups=G)",
    make_cases=_weight_cases,
    verify=_verify_grouped,
    mistakes=(
        Mistake("no_permutation",
                "You cut the diagonal blocks out of W in its own channel order; the blocks are diagonal only after "
                "permuting, in W' = W[P][:, Q].",
                lambda w, p, q, g: _reference_grouped(w, np.arange(w.shape[0]), np.arange(w.shape[1]), g)),
        Mistake("inverse_perms",
                "You permuted with P_inv and Q_inv; the compressed layer gathers its input by Q and its weight is cut "
                "from W' = W[P][:, Q].",
                lambda w, p, q, g: _reference_grouped(w, inverse_permutation(p), inverse_permutation(q), g)),
        Mistake("first_block_column",
                "Every group r must take its own diagonal block (input columns r Cin/G .. (r+1) Cin/G - 1 of W'), "
                "not the first block's columns.",
                _first_block_column),
        Mistake("group_size",
                "Your weight has G input channels per group; with G groups each group holds Cin/G input channels "
                "(group count and group size swapped).",
                _group_size_confused),
    ),
)


# ----------------------------------------------------------------------------- model sparsity
def _sparsity_cases(rng: np.random.Generator) -> list[Case]:
    cases = [([576, 576], [1, 1], "dense"), ([576, 576], [2, 2], "equal sizes, G = 2"),
             ([9216, 36864, 4096], [4, 2, 1], "ResNet-like sizes"), ([128], [8], "one layer")]
    for _ in range(4):
        n = int(rng.integers(2, 7))
        sizes = [int(c) * int(d) * k for c, d, k in zip(2 ** rng.integers(3, 8, n), 2 ** rng.integers(3, 8, n),
                                                         rng.choice([1, 9], n))]
        cases.append((sizes, [int(g) for g in 2 ** rng.integers(0, 4, n)], f"{n} random layers"))
    return [Case((s, g), f"{label}: sizes {s}, groups {g}") for s, g, label in cases]


def _verify_sparsity(output, case: Case) -> None:
    sizes, groups = case.args
    require(output is not None, "your function returned None; it should return the sparsity (a float in [0, 1))")
    value = as_array(output)
    require(value.ndim == 0 and value.dtype.kind in "iuf", f"return one number, got {output!r}")
    value = float(value)
    kept = sum(n / g for n, g in zip(sizes, groups))
    expected = float(hierarchy.model_sparsity(list(sizes), list(groups)))
    require(np.isclose(value, expected, rtol=1e-9, atol=1e-12),
            f"got {value:.6g}; the layers keep sum_l n_l / G_l = {kept:g} of sum_l n_l = {sum(sizes)} parameters, "
            "and the sparsity is the fraction removed")


MODEL_SPARSITY = Exercise(
    name="model_sparsity",
    signature="model_sparsity(sizes, groups) -> float",
    make_cases=_sparsity_cases,
    verify=_verify_sparsity,
    fingerprint=lambda output, case: None if output is None else float(as_array(output)),
    mistakes=(
        Mistake("unweighted",
                "You averaged the layers' sparsities 1 - 1/G_l; a large layer removes more parameters, so weight "
                "each layer by its size n_l.",
                lambda sizes, groups: float(np.mean([1 - 1 / g for g in groups]))),
        Mistake("kept_fraction",
                "You returned the fraction of parameters kept; the sparsity is the fraction removed.",
                lambda sizes, groups: sum(n / g for n, g in zip(sizes, groups)) / sum(sizes)),
        Mistake("times_groups",
                "A layer with G groups keeps n_l / G of its n_l weights (one block in G per row), not n_l * G.",
                lambda sizes, groups: 1 - sum(n * g for n, g in zip(sizes, groups)) / sum(sizes)),
    ),
)
