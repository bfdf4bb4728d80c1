"""Exercises on the dyadic hierarchy of blocks: ``U_G``, separation levels, the grouping criterion.

Notation (notebook 01): a ``Cout x Cin`` layer, ``L`` = how many times both counts can be halved
(0 for an odd count: the layer stays dense), ``G = 2^m`` groups with ``m <= L``.

* ``U_G[a, b] = 1  iff  floor(a G / Cout) == floor(b G / Cin)``: ``Cout*Cin/G`` ones;
* ``k(a, b)`` = the smallest ``k in 1..L`` with ``floor(a 2^k / Cout) != floor(b 2^k / Cin)``,
  infinity inside the finest blocks; level ``k`` occurs ``Cout*Cin/2^k`` times, infinity
  ``Cout*Cin/2^L`` times;
* ``f(G) = <S', U_G> / sum(S')``; a layer takes the largest ``G`` with ``f(G) >= keep``.
"""
from __future__ import annotations

import numpy as np

from .. import hierarchy
from ..permutation import planted_matrix
from .core import Case, Exercise, Failure, Mistake, as_array, expect_shape, numeric_array, require

__all__ = ["BLOCK_MASK", "GROUPS_FOR", "SEPARATION_LEVELS"]


def _level(cout: int, cin: int) -> int:
    return hierarchy.max_level(cout, cin)


# ----------------------------------------------------------------------------- U_G
def _mask_cases(rng: np.random.Generator) -> list[Case]:
    triples = [(8, 8, 2), (8, 8, 4), (4, 8, 2), (16, 8, 4), (6, 12, 2), (8, 8, 1), (3, 8, 1), (16, 16, 16), (2, 16, 2)]
    for _ in range(3):
        cout, cin = (int(2 ** rng.integers(1, 5) * rng.choice([1, 3])) for _ in range(2))
        triples.append((cout, cin, int(2 ** rng.integers(0, _level(cout, cin) + 1))))
    return [Case(t, f"Cout={t[0]}, Cin={t[1]}, G={t[2]}") for t in triples]


def _reference_mask(cout: int, cin: int, groups: int) -> np.ndarray:
    return as_array(hierarchy.block_mask(cout, cin, groups)).astype(np.float64)


def _verify_mask(output, case: Case) -> None:
    cout, cin, groups = case.args
    mask = numeric_array(output, f"a ({cout}, {cin}) 0/1 matrix")
    expect_shape(mask, (cout, cin), "U_G", "(rows index output channels, columns input channels)")
    mask = mask.astype(np.float64)
    odd = mask[(mask != 0) & (mask != 1)]
    require(odd.size == 0, f"U_G must hold only 0 and 1, found {odd[0] if odd.size else ''}")
    ones = int(mask.sum())
    require(
        ones == cout * cin // groups,
        f"your mask has {ones} ones; U_G has G diagonal blocks of Cout/G x Cin/G, i.e. Cout*Cin/G = "
        f"{cout * cin // groups} ones",
    )
    expected = _reference_mask(cout, cin, groups)
    bad = np.argwhere(mask != expected)
    if len(bad):
        a, b = (int(v) for v in bad[0])
        ra, cb = a * groups // cout, b * groups // cin
        same = "the same block" if ra == cb else "different blocks"
        raise Failure(
            f"entry [{a}, {b}] is {mask[a, b]:g}, but row slot a = {a} lies in block floor(a*G/Cout) = {ra} and column "
            f"slot b = {b} in block floor(b*G/Cin) = {cb}: {same}"
        )


def _swapped_sizes_mask(cout: int, cin: int, groups: int) -> np.ndarray:
    return (np.arange(cout)[:, None] * groups // cin == np.arange(cin)[None, :] * groups // cout).astype(float)


def _block_size_mask(cout: int, cin: int, groups: int) -> np.ndarray:
    return (np.arange(cout)[:, None] // groups == np.arange(cin)[None, :] // groups).astype(float)


def _float_division_mask(cout: int, cin: int, groups: int) -> np.ndarray:
    return (np.arange(cout)[:, None] * groups / cout == np.arange(cin)[None, :] * groups / cin).astype(float)


BLOCK_MASK = Exercise(
    name="block_mask",
    signature="block_mask(cout, cin, groups) -> (Cout, Cin) 0/1 matrix U_G",
    make_cases=_mask_cases,
    verify=_verify_mask,
    mistakes=(
        Mistake(
            "transposed",
            "Your mask is the transpose of U_G: rows index output channels (Cout of them), columns input channels (Cin).",
            lambda cout, cin, g: _reference_mask(cout, cin, g).T,
        ),
        Mistake(
            "swapped_sizes",
            "You divided the row index by Cin and the column index by Cout: row slot a belongs to block "
            "floor(a G / Cout), column slot b to block floor(b G / Cin).",
            _swapped_sizes_mask,
        ),
        Mistake(
            "block_size",
            "Your blocks are G channels tall: G is the number of groups (blocks), each block is Cout/G x Cin/G.",
            _block_size_mask,
        ),
        Mistake(
            "complement",
            "Your mask is 1 off the diagonal blocks and 0 on them: U_G keeps (is 1 on) the connections inside the blocks.",
            lambda cout, cin, g: 1.0 - _reference_mask(cout, cin, g),
        ),
        Mistake(
            "float_division",
            "Compare block indices, not fractions: a*G/Cout == b*G/Cin holds only on a few exact points; "
            "round both down (integer division //) first.",
            _float_division_mask,
        ),
    ),
)


# ----------------------------------------------------------------------------- separation levels
def _levels_cases(rng: np.random.Generator) -> list[Case]:
    pairs = [(8, 8), (4, 8), (16, 8), (12, 12), (6, 4), (3, 8), (2, 2), (16, 16), (1, 5)]
    for _ in range(3):
        pairs.append(tuple(int(2 ** rng.integers(1, 5) * rng.choice([1, 3])) for _ in range(2)))
    return [Case(p, f"Cout={p[0]}, Cin={p[1]}, L={_level(*p)}") for p in pairs]


def _as_levels(output) -> np.ndarray:
    """Levels as float64 with ``inf`` for the finest blocks (accepts ``INF_LEVEL`` or ``np.inf``)."""
    k = numeric_array(output, "a (Cout, Cin) matrix of levels").astype(np.float64)
    k[k >= 2.0**62] = np.inf
    return k


def _reference_levels(cout: int, cin: int) -> np.ndarray:
    return _as_levels(hierarchy.separation_levels(cout, cin))


def _verify_levels(output, case: Case) -> None:
    cout, cin = case.args
    level = _level(cout, cin)
    k = _as_levels(output)
    expect_shape(k, (cout, cin), "k", "(rows index output slots a, columns input slots b)")
    allowed = np.isinf(k) | ((k == np.round(k)) & (k >= 1) & (k <= level))
    if not allowed.all():
        a, b = (int(v) for v in np.argwhere(~allowed)[0])
        raise Failure(
            f"k[{a}, {b}] = {k[a, b]:g}; a level is an integer 1..L (here L = {level}) or infinity (INF_LEVEL) "
            "inside the finest diagonal blocks"
        )
    for lev in list(range(1, level + 1)) + [np.inf]:
        got = int((k == lev).sum())
        want = cout * cin // 2 ** (level if np.isinf(lev) else int(lev))
        require(
            got == want,
            f"level {lev:g} occurs {got} times; a {cout}x{cin} layer has Cout*Cin/2^k = {want} positions first "
            f"separated at level k = {lev:g}" if not np.isinf(lev) else
            f"infinity occurs {got} times; the 2^L finest diagonal blocks hold Cout*Cin/2^L = {want} positions",
        )
    expected = _reference_levels(cout, cin)
    bad = np.argwhere(k != expected)
    if len(bad):
        a, b = (int(v) for v in bad[0])
        got = k[a, b]
        probe = int(got) if np.isfinite(got) else level
        ra, cb = a * 2**probe // cout, b * 2**probe // cin
        raise Failure(
            f"k[{a}, {b}] = {got:g}, but at level {probe} row slot {a} is in block floor(a*2^k/Cout) = {ra} and column "
            f"slot {b} in block floor(b*2^k/Cin) = {cb}; k(a, b) is the first level at which the two blocks differ"
        )


def _levels_from(cout: int, cin: int, rows_by: int, cols_by: int, *, finest: bool = False) -> np.ndarray:
    level = _level(cout, cin)
    a, b = np.arange(cout)[:, None], np.arange(cin)[None, :]
    k = np.full((cout, cin), np.inf)
    order = range(1, level + 1) if finest else range(level, 0, -1)
    for lev in order:  # the last assignment wins
        k[(a * 2**lev) // rows_by != (b * 2**lev) // cols_by] = lev
    return k


def _with_finest(value):
    def wrong(cout: int, cin: int) -> np.ndarray:
        k = _reference_levels(cout, cin)
        k[np.isinf(k)] = value if value is not None else _level(cout, cin) + 1
        return k
    return wrong


SEPARATION_LEVELS = Exercise(
    name="separation_levels",
    signature="separation_levels(cout, cin) -> (Cout, Cin) int matrix k(a, b), INF_LEVEL in the finest blocks",
    make_cases=_levels_cases,
    verify=_verify_levels,
    fingerprint=lambda output, case: _as_levels(output),
    mistakes=(
        Mistake(
            "zero_based",
            "Your levels are one too low: the first halving (into G = 2 blocks) is level k = 1. (The paper's level g "
            "of a layer with G = 2^(g-1) groups also counts from 1.)",
            lambda cout, cin: _reference_levels(cout, cin) - 1,
        ),
        Mistake(
            "group_count",
            "You returned the group count 2^k at which a and b get separated; k(a, b) is the level, the exponent k.",
            lambda cout, cin: 2.0 ** _reference_levels(cout, cin),
        ),
        Mistake(
            "finest",
            "You kept the last (finest) level at which a and b are in different blocks; once separated they stay "
            "separated, so that is always L. k(a, b) is the first (smallest) such level.",
            lambda cout, cin: _levels_from(cout, cin, cout, cin, finest=True),
        ),
        Mistake(
            "zero_for_inf",
            "Inside the finest diagonal blocks no level separates a and b: k is infinity (INF_LEVEL), not 0.",
            _with_finest(0.0),
        ),
        Mistake(
            "l_plus_one",
            "The finest blocks get k = infinity, not L + 1: with L + 1 the penalty R_g of a layer at the finest level "
            "would charge connections that are never cut.",
            _with_finest(None),
        ),
        Mistake(
            "swapped_sizes",
            "You divided the row index by Cin and the column index by Cout: row slot a belongs to block "
            "floor(a 2^k / Cout), column slot b to block floor(b 2^k / Cin).",
            lambda cout, cin: _levels_from(cout, cin, cin, cout),
        ),
        Mistake(
            "transposed",
            "Your matrix is the transpose of k: rows index output slots a (Cout of them), columns input slots b (Cin).",
            lambda cout, cin: _reference_levels(cout, cin).T,
        ),
    ),
)


# ----------------------------------------------------------------------------- grouping criterion
def _fractions(s: np.ndarray) -> dict[int, float]:
    """``{G: f(G)}`` written independently of the package (nested diagonal block sums)."""
    cout, cin = s.shape
    total = s.sum()
    return {
        2**m: float(np.einsum("iaib->", s.reshape(2**m, cout // 2**m, 2**m, cin // 2**m)) / total)
        for m in range(_level(cout, cin) + 1)
    }


def _threshold_matrix(cout: int, cin: int, groups: int) -> np.ndarray:
    """``f(G) = 3/4`` exactly for ``2 <= G <= groups`` and ``f(2 groups) = 0`` (dyadic: no rounding)."""
    s = np.zeros((cout, cin))
    a = 0
    b = cin // groups // 2  # same block at G = groups, separated at 2 * groups
    s[a, b] = 3.0
    s[0, cin - 1] = 1.0  # separated at level 1
    return s


def _groups_cases(rng: np.random.Generator) -> list[Case]:
    cases: list[Case] = []

    def add(s: np.ndarray, keep: float, label: str) -> None:
        cases.append(Case((np.asarray(s, dtype=np.float64), float(keep)), f"{label}, shape {s.shape}, keep={keep}"))

    for cout, cin, g in ((16, 16, 4), (8, 16, 2), (16, 8, 4)):
        s, p, q = planted_matrix(cout, cin, g, noise=0.03, seed=int(rng.integers(1 << 30)))
        # planted_matrix scrambles; undo it so that S' is block-diagonal in the given order
        s_blocks = s[np.argsort(p)][:, np.argsort(q)]
        add(s_blocks, 0.9, f"{g} planted blocks")
    add(_threshold_matrix(8, 8, 2), 0.75, "f(2) = keep exactly")
    add(_threshold_matrix(16, 8, 4), 0.75, "f(4) = keep exactly")
    add(np.eye(8), 1.0, "identity, f(8) = keep = 1")
    add(np.eye(8), 0.9, "identity (f = 1 for every G)")
    add(rng.uniform(0, 1, (8, 8)), 0.9, "uniform random")
    add(rng.uniform(0, 1, (8, 8)), 0.0, "uniform random, keep 0")
    add(rng.uniform(0, 1, (3, 8)), 0.5, "odd Cout: dense only")
    add(np.kron(np.eye(4), np.ones((2, 4))) + 0.05 * rng.uniform(0, 1, (8, 16)), 0.7, "4 noisy blocks")
    return cases


def _verify_groups(output, case: Case) -> None:
    s, keep = case.args
    cout, cin = s.shape
    require(output is not None, "your function returned None; it should return the group count G (an int)")
    arr = as_array(output)
    require(arr.ndim == 0 and arr.dtype.kind in "iuf", f"return one group count G (an int), got {output!r}")
    value = float(arr)
    require(np.isfinite(value) and value == int(value), f"G must be a whole number, got {value:g}")
    g = int(value)
    top = 2 ** _level(cout, cin)
    require(g >= 1 and g & (g - 1) == 0, f"G = {g} is not a power of two (1, 2, 4, ...)")
    require(g <= top, f"G = {g} exceeds 2^L = {top}, the most groups a {cout}x{cin} layer can have")
    expected = int(hierarchy.groups_for(s, keep))
    if g == expected:
        return
    fractions = _fractions(s)
    if g > expected:
        raise Failure(f"with G = {g} only f(G) = {fractions[g]:.4g} of the mass lies on the diagonal blocks, "
                      f"below keep = {keep:g}")
    passing = max(G for G, f in fractions.items() if f >= keep)
    raise Failure(f"G = {passing} still keeps f(G) = {fractions[passing]:.4g} >= keep = {keep:g}, and the criterion "
                  f"takes the largest such G; you returned {g}")


def _walk(s, keep, *, strict=False, mass=lambda f, s: f, overshoot=False) -> int:
    best = 1
    for g, f in _fractions(np.asarray(s)).items():
        value = mass(f, np.asarray(s))
        if (value > keep) if strict else (value >= keep):
            best = g
        else:
            return g if overshoot else best
    return 2 * best if overshoot else best


GROUPS_FOR = Exercise(
    name="groups_for",
    signature="groups_for(s_permuted, keep) -> int G",
    make_cases=_groups_cases,
    verify=_verify_groups,
    fingerprint=lambda output, case: float(as_array(output)) if output is not None else None,
    mistakes=(
        Mistake(
            "strict",
            "At f(G) == keep exactly your function rejects G: the criterion is f(G) >= keep, equality passes.",
            lambda s, keep: _walk(s, keep, strict=True),
        ),
        Mistake(
            "overshoot",
            "You return the first G that fails (one doubling too far); return the last G that still passes.",
            lambda s, keep: _walk(s, keep, overshoot=True),
        ),
        Mistake(
            "exponent",
            "You returned m = log2 G; return the group count G = 2^m itself.",
            lambda s, keep: int(np.log2(_walk(s, keep))),
        ),
        Mistake(
            "paper_level",
            "You returned the paper's level g (a layer at level g has G = 2^(g-1) groups); return the group count G.",
            lambda s, keep: int(np.log2(_walk(s, keep))) + 1,
        ),
        Mistake(
            "off_block_mass",
            "f(G) is the fraction of the mass ON the diagonal blocks, <S', U_G> / sum(S'); you used the mass off them.",
            lambda s, keep: _walk(s, keep, mass=lambda f, m: 1.0 - f),
        ),
        Mistake(
            "unnormalised",
            "You compared the kept mass <S', U_G> itself with keep; f(G) divides it by the total sum(S').",
            lambda s, keep: _walk(s, keep, mass=lambda f, m: f * m.sum()),
        ),
    ),
)
