"""Exercises on one half-step of the permutation search (notebook 02).

``J(P, Q) = <S[P][:, Q], R> = sum_ab S[P_a, Q_b] R_ab``. With ``Q`` fixed it is linear in the
assignment of original rows ``i`` to slots ``a``:

* P-step cost ``M = R S[:, Q]^T`` (``Cout x Cout``), ``sum_a M[a, P_a] = J(P, Q)`` for every ``P``;
* Q-step cost ``M = S[P, :]^T R`` (``Cin x Cin``), ``sum_b M[Q_b, b] = J(P, Q)`` for every ``Q``;
* the LP over doubly-stochastic ``X`` (``X >= 0``, rows and columns sum to 1) has the assignment
  optimum as its value. Its optimal plans are often not unique (ties), so a plan is checked by
  feasibility, by its objective against ``solve_assignment``'s optimum and by complementary
  slackness with an optimal dual ``(u, v)``: ``X_ai > 0`` only where ``M_ai - u_a - v_i = 0``.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import linprog

from ..birkhoff import assignment_cost, solve_assignment
from ..hierarchy import penalty_matrix
from ..permutation import planted_matrix
from .core import Case, Exercise, Failure, Mistake, as_array, expect_shape, fmt, numeric_array, require

__all__ = ["P_STEP_COST", "Q_STEP_COST", "SOLVE_P_STEP_LP", "lp_dual"]


def _objective(s: np.ndarray, r: np.ndarray, p: np.ndarray, q: np.ndarray) -> float:
    return float((s[p][:, q] * r).sum())


def _cost_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for cout, cin, structured in ((4, 6, False), (6, 4, False), (5, 5, False), (8, 8, True), (4, 8, True),
                                  (1, 3, False), (3, 1, False)):
        s = rng.uniform(0, 1, (cout, cin))
        r = as_array(penalty_matrix(cout, cin)).astype(np.float64) if structured else rng.uniform(0, 1, (cout, cin))
        kind = "R = R_L" if structured else "random R"
        cases.append((s, r, rng.permutation(cout), rng.permutation(cin), f"S {cout}x{cin}, {kind}"))
    s = rng.uniform(0, 1, (6, 6))
    cases.append((s, rng.uniform(0, 1, (6, 6)), np.arange(6), np.arange(6), "S 6x6, random R, identity P and Q"))
    return cases


# ----------------------------------------------------------------------------- P-step cost
def _p_cases(rng: np.random.Generator) -> list[Case]:
    return [Case((s, r, q.astype(np.int64)), f"{label}, Q = {fmt(q)}") for s, r, _, q, label in _cost_cases(rng)]


def _verify_p_cost(output, case: Case) -> None:
    s, r, q = case.args
    cout, cin = s.shape
    m = numeric_array(output, f"a ({cout}, {cout}) cost matrix").astype(np.float64)
    expect_shape(m, (cout, cout), "M", "(one row per slot a, one column per original row i)")
    require(np.isfinite(m).all(), "M contains NaN or inf")
    rng = np.random.default_rng(cout * 31 + cin)
    for p in [np.arange(cout)] + [rng.permutation(cout) for _ in range(3)]:
        via_m, direct = float(m[np.arange(cout), p].sum()), _objective(s, r, p, q)
        require(
            np.isclose(via_m, direct, rtol=1e-9, atol=1e-9),
            f"for P = {fmt(p)}: sum_a M[a, P_a] = {via_m:.6g}, but J(P, Q) = <S[P][:, Q], R> = {direct:.6g}; "
            "M[a, i] must be the cost of putting original row i at slot a",
        )
    expected = r @ s[:, q].T
    bad = np.argwhere(~np.isclose(m, expected, rtol=1e-9, atol=1e-9))
    if len(bad):  # same sums for every P but other entries: M shifted by constants
        a, i = (int(v) for v in bad[0])
        raise Failure(f"M[{a}, {i}] = {m[a, i]:.6g}; the cost of original row {i} at slot {a} is "
                      f"sum_b R[{a}, b] S[{i}, Q_b] = {expected[a, i]:.6g}")
    best = solve_assignment(m)
    require(np.isclose(assignment_cost(m, best), assignment_cost(expected, solve_assignment(expected))),
            "the assignment optimum of your M differs from the P-step optimum")


P_STEP_COST = Exercise(
    name="p_step_cost",
    signature="p_step_cost(S, R, Q) -> (Cout, Cout) matrix M",
    make_cases=_p_cases,
    verify=_verify_p_cost,
    mistakes=(
        Mistake(
            "transposed",
            "Your M is the transpose of the P-step cost: rows must index slots a, columns original rows i "
            "(M[a, i] = cost of row i at slot a).",
            lambda s, r, q: (r @ s[:, q].T).T,
        ),
        Mistake(
            "ignored_q",
            "You used S in its original column order: with Q fixed, column slot b holds original column Q_b, "
            "so take the columns of S in the order Q first.",
            lambda s, r, q: r @ s.T,
        ),
        Mistake(
            "inverse_q",
            "You ordered the columns by Q_inv = argsort(Q); slot b holds original column Q_b, use Q itself.",
            lambda s, r, q: r @ s[:, np.argsort(q)].T,
        ),
        Mistake(
            "q_step",
            "That is the shape of the Q-step cost (Cin x Cin, for permuting columns); the P-step cost compares "
            "rows with slots: Cout x Cout.",
            lambda s, r, q: s.T @ r,
        ),
    ),
)


# ----------------------------------------------------------------------------- Q-step cost
def _q_cases(rng: np.random.Generator) -> list[Case]:
    return [Case((s, r, p.astype(np.int64)), f"{label}, P = {fmt(p)}") for s, r, p, _, label in _cost_cases(rng)]


def _verify_q_cost(output, case: Case) -> None:
    s, r, p = case.args
    cout, cin = s.shape
    m = numeric_array(output, f"a ({cin}, {cin}) cost matrix").astype(np.float64)
    expect_shape(m, (cin, cin), "M", "(one row per original column j, one column per slot b)")
    require(np.isfinite(m).all(), "M contains NaN or inf")
    rng = np.random.default_rng(cout * 17 + cin)
    for q in [np.arange(cin)] + [rng.permutation(cin) for _ in range(3)]:
        via_m, direct = float(m[q, np.arange(cin)].sum()), _objective(s, r, p, q)
        require(
            np.isclose(via_m, direct, rtol=1e-9, atol=1e-9),
            f"for Q = {fmt(q)}: sum_b M[Q_b, b] = {via_m:.6g}, but J(P, Q) = <S[P][:, Q], R> = {direct:.6g}; "
            "M[j, b] must be the cost of putting original column j at slot b",
        )
    expected = s[p, :].T @ r
    bad = np.argwhere(~np.isclose(m, expected, rtol=1e-9, atol=1e-9))
    if len(bad):
        j, b = (int(v) for v in bad[0])
        raise Failure(f"M[{j}, {b}] = {m[j, b]:.6g}; the cost of original column {j} at slot {b} is "
                      f"sum_a S[P_a, {j}] R[a, {b}] = {expected[j, b]:.6g}")


Q_STEP_COST = Exercise(
    name="q_step_cost",
    signature="q_step_cost(S, R, P) -> (Cin, Cin) matrix M",
    make_cases=_q_cases,
    verify=_verify_q_cost,
    mistakes=(
        Mistake(
            "transposed",
            "Your M is the transpose of the Q-step cost: rows must index original columns j, columns slots b "
            "(M[j, b] = cost of column j at slot b).",
            lambda s, r, p: (s[p, :].T @ r).T,
        ),
        Mistake(
            "ignored_p",
            "You used S in its original row order: with P fixed, row slot a holds original row P_a, so take the "
            "rows of S in the order P first.",
            lambda s, r, p: s.T @ r,
        ),
        Mistake(
            "inverse_p",
            "You ordered the rows by P_inv = argsort(P); slot a holds original row P_a, use P itself.",
            lambda s, r, p: s[np.argsort(p), :].T @ r,
        ),
    ),
)


# ----------------------------------------------------------------------------- the LP
def lp_dual(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An optimal dual ``(u, v)`` of the assignment LP: ``max sum u + sum v`` s.t. ``u_a + v_i <= M_ai``.

    Solved with scipy's HiGHS (``linprog`` marginals); any optimal dual certifies every optimal plan.
    """
    c = np.asarray(cost, dtype=np.float64)
    n = c.shape[0]
    rows = np.kron(np.eye(n), np.ones((1, n)))  # sum_i X_ai = 1
    cols = np.kron(np.ones((1, n)), np.eye(n))  # sum_a X_ai = 1
    res = linprog(c.ravel(), A_eq=np.vstack([rows, cols]), b_eq=np.ones(2 * n), bounds=(0, None), method="highs")
    if res.status != 0:
        raise RuntimeError(f"HiGHS could not solve the {n}x{n} reference assignment LP: {res.message}")
    duals = np.asarray(res.eqlin.marginals)
    return duals[:n], duals[n:]


def _lp_cases(rng: np.random.Generator) -> list[Case]:
    from ..solver_output import silence_highs_banner

    silence_highs_banner()  # the student's cvxpy + HiGHS solve would print its banner into the notebook
    costs = [(np.array([[3.0]]), "n = 1"), (np.array([[4.0, 1.0], [2.0, 8.0]]), "n = 2")]
    costs += [(rng.uniform(0, 1, (n, n)), f"random {n}x{n}") for n in (3, 5, 7)]
    costs.append((rng.integers(0, 3, (6, 6)).astype(np.float64), "integer 6x6 with ties"))
    s, _, _ = planted_matrix(8, 8, 2, noise=0.03, seed=int(rng.integers(1 << 30)))
    costs.append((as_array(penalty_matrix(8, 8)).astype(np.float64) @ s.T, "P-step cost of a planted 8x8 (ties)"))
    costs.append((np.ones((4, 4)), "constant 4x4 (every plan optimal)"))
    return [Case((c,), label) for c, label in costs]


def _verify_lp(output, case: Case) -> None:
    (cost,) = case.args
    n = cost.shape[0]
    require(output is not None,
            "your function returned None: is `return X.value` missing, or did the solve fail? (cvxpy leaves "
            "X.value at None when the problem is infeasible or unbounded, e.g. without X >= 0)")
    x = numeric_array(output, f"an ({n}, {n}) plan").astype(np.float64)
    expect_shape(x, (n, n), "the plan X", "(X[a, i]: how much of original row i goes to slot a)")
    require(np.isfinite(x).all(), "the plan contains NaN or inf")
    tol = 1e-6
    neg = np.argwhere(x < -tol)
    if len(neg):
        a, i = (int(v) for v in neg[0])
        raise Failure(f"X[{a}, {i}] = {x[a, i]:.3g} < 0: a plan is non-negative (declare the variable nonneg=True)")
    for axis, name in ((1, "row"), (0, "column")):
        sums = x.sum(axis=axis)
        off = np.flatnonzero(np.abs(sums - 1) > tol)
        require(off.size == 0, f"{name} {off[0] if off.size else 0} of X sums to {sums[off[0]] if off.size else 0:.6g}; "
                               f"every {name} of a doubly-stochastic plan sums to 1")
    optimum = assignment_cost(cost, solve_assignment(cost))
    value = float((cost * x).sum())
    if value > optimum + tol * max(1.0, abs(optimum)):
        u, v = lp_dual(cost)
        reduced = cost - u[:, None] - v[None, :]
        slack = np.argwhere((x > tol) & (reduced > 1e-7))
        where = ""
        if len(slack):
            a, i = (int(t) for t in slack[0])
            where = (f" X puts {x[a, i]:.3g} on ({a}, {i}), whose reduced cost M[a, i] - u_a - v_i = {reduced[a, i]:.3g} "
                     "is positive for an optimal dual (u, v), so X cannot be optimal.")
        raise Failure(f"X is feasible but not optimal: <M, X> = {value:.6g}, the assignment optimum is {optimum:.6g}."
                      + where)


def _lp_fingerprint(output, case: Case):
    if output is None:
        return None
    (cost,) = case.args
    x = as_array(output).astype(np.float64)
    if x.shape != cost.shape:
        return ("shape", str(x.shape))
    return (bool(np.allclose(x.sum(1), 1, atol=1e-6)), bool(np.allclose(x.sum(0), 1, atol=1e-6)),
            bool((x >= -1e-6).all()), float((cost * x).sum()))


def _linprog_plan(cost: np.ndarray, *, sense: float = 1.0, rows: bool = True, cols: bool = True) -> np.ndarray:
    # The wrong versions use scipy's HiGHS directly: same optima as cvxpy + HiGHS, much faster.
    n = cost.shape[0]
    blocks = ([np.kron(np.eye(n), np.ones((1, n)))] if rows else []) + ([np.kron(np.ones((1, n)), np.eye(n))] if cols else [])
    res = linprog(sense * cost.ravel(), A_eq=np.vstack(blocks), b_eq=np.ones(n * len(blocks)), bounds=(0, None),
                  method="highs")
    return res.x.reshape(n, n)


SOLVE_P_STEP_LP = Exercise(
    name="solve_p_step_lp",
    signature="solve_p_step_lp(cost) -> (n, n) doubly-stochastic plan X (written with cvxpy)",
    make_cases=_lp_cases,
    verify=_verify_lp,
    fingerprint=_lp_fingerprint,
    mistakes=(
        Mistake("maximise", "Your plan maximises <M, X>: the P-step minimises the cost (cp.Minimize).",
                lambda c: _linprog_plan(c, sense=-1.0)),
        Mistake("rows_only",
                "Only the rows of your plan sum to 1: each original row must also be placed exactly once, so the "
                "columns of X must sum to 1 as well.",
                lambda c: _linprog_plan(c, cols=False)),
        Mistake("cols_only",
                "Only the columns of your plan sum to 1: each slot must also take exactly one row, so the rows of X "
                "must sum to 1 as well.",
                lambda c: _linprog_plan(c, rows=False)),
    ),
)
