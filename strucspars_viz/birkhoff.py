"""One half-step of the permutation search: a linear program on the Birkhoff polytope (SPEC §2).

Given a square cost ``C`` (``n x n``; ``C[a, i]`` = cost of sending row ``a`` to column ``i``), the
relaxed problem is

.. math::

    \\min_{X \\in \\mathcal{B}_n} \\langle C, X \\rangle_F, \\qquad
    \\mathcal{B}_n = \\{X \\ge 0,\\; X \\mathbf{1} = \\mathbf{1},\\; X^\\top \\mathbf{1} = \\mathbf{1}\\}.

The objective is linear, so an optimum sits at a vertex, and by the Birkhoff-von Neumann theorem the
vertices of :math:`\\mathcal{B}_n` are exactly the permutation matrices: the LP *is* the linear
assignment problem. ``solve_assignment`` returns the permutation; ``birkhoff_lp`` returns the plan
itself (for teaching: HiGHS' simplex lands on a vertex, interior-point solvers such as Clarabel or
SCS return the barycentre of the optimal face when costs tie).
"""
from __future__ import annotations

import warnings
from typing import Literal, NamedTuple

import numpy as np

from .norms import as_matrix

__all__ = [
    "METHODS",
    "BirkhoffLPResult",
    "assignment_cost",
    "birkhoff_lp",
    "is_permutation_matrix",
    "lp_plans",
    "plan_to_permutation",
    "solve_assignment",
    "solve_transport",
]

METHODS = ("lsa", "emd", "cvxpy")
Method = Literal["lsa", "emd", "cvxpy"]


def _check_cost(cost) -> np.ndarray:
    try:
        c = as_matrix(cost, what="assignment cost")
    except ValueError as err:
        raise ValueError(f"the assignment cost must be a square (n, n) matrix: {err}") from None
    if c.shape[0] != c.shape[1]:
        raise ValueError(f"the assignment cost must be a square (n, n) matrix, got shape {c.shape}")
    if c.shape[0] == 0:
        raise ValueError("the assignment cost is empty (n = 0)")
    if not np.isfinite(c).all():
        bad = int((~np.isfinite(c)).sum())
        raise ValueError(f"the assignment cost has {bad} NaN/inf entries of {c.size}; all must be finite")
    return c


def assignment_cost(cost, perm) -> float:
    """``sum_i cost[i, perm[i]]``."""
    c = _check_cost(cost)
    return float(c[np.arange(c.shape[0]), np.asarray(perm)].sum())


def is_permutation_matrix(plan, tol: float = 1e-6) -> bool:
    """True iff ``plan`` is (within ``tol``) a 0/1 matrix with exactly one 1 per row and column."""
    x = np.asarray(plan, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] != x.shape[1]:
        return False
    near_one = np.abs(x - 1.0) <= tol
    near_zero = np.abs(x) <= tol
    return bool(
        (near_one | near_zero).all()
        and (near_one.sum(axis=0) == 1).all()
        and (near_one.sum(axis=1) == 1).all()
    )


def plan_to_permutation(plan) -> np.ndarray:
    """Nearest permutation to a (possibly fractional) doubly-stochastic plan: ``argmax_perm <X, perm>``.

    Exact for a vertex; for a fractional plan it is the assignment that keeps the most plan mass.
    """
    from scipy.optimize import linear_sum_assignment

    x = np.asarray(plan, dtype=np.float64)
    _, cols = linear_sum_assignment(-x)
    return cols.astype(np.int64)


class BirkhoffLPResult(NamedTuple):
    """Doubly-stochastic optimum of the relaxed LP and the solver's status string (``"optimal"``...)."""

    plan: np.ndarray
    status: str


def _require_solver(solver: str) -> str:
    import cvxpy as cp

    name = str(solver).upper()
    installed = cp.installed_solvers()
    if name not in installed:
        raise ValueError(
            f"cvxpy solver {solver!r} is not installed; installed solvers: {', '.join(sorted(installed))}"
        )
    return name


def birkhoff_lp(cost, solver: str = "HIGHS", *, feasibility_tol: float = 1e-3, **solver_opts) -> BirkhoffLPResult:
    """Solve the relaxed assignment LP over doubly-stochastic matrices with cvxpy.

    .. math:: X^\\star \\in \\arg\\min_{X \\ge 0,\\, X\\mathbf 1 = \\mathbf 1,\\, X^\\top \\mathbf 1 = \\mathbf 1} \\langle C, X\\rangle

    Parameters
    ----------
    cost : (n, n) array-like, finite
    solver : a cvxpy solver name. ``"HIGHS"`` (simplex: returns a vertex, i.e. a permutation matrix)
        is the default; ``"CLARABEL"`` / ``"SCS"`` (interior point / first order) return a point in the
        relative interior of the optimal face, fractional when costs tie.
    feasibility_tol : largest accepted ``max |X 1 - 1|, |X^T 1 - 1|``; a plan outside it (an
        early-stopped or inaccurate solve) raises a RuntimeError instead of being returned.
    solver_opts : passed to ``problem.solve`` (e.g. ``max_iters``).

    Returns
    -------
    BirkhoffLPResult(plan, status): ``plan`` is an ``(n, n)`` float array; ``status`` is cvxpy's status.

    >>> plan, status = birkhoff_lp([[0.0, 1.0], [1.0, 0.0]])
    >>> status, is_permutation_matrix(plan)
    ('optimal', True)
    """
    import cvxpy as cp

    from .solver_output import silence_highs_banner

    c = _check_cost(cost)
    name = _require_solver(solver)
    if name == cp.HIGHS:
        silence_highs_banner()  # its once-per-process licence banner would land in notebook output
    n = c.shape[0]
    x = cp.Variable((n, n), nonneg=True)
    problem = cp.Problem(
        cp.Minimize(cp.sum(cp.multiply(c, x))),
        [cp.sum(x, axis=1) == 1, cp.sum(x, axis=0) == 1],
    )
    try:
        problem.solve(solver=name, **solver_opts)
    except cp.error.SolverError as exc:
        raise RuntimeError(f"cvxpy solver {name} failed on a {n}x{n} assignment LP: {exc}") from exc
    if x.value is None or problem.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
        raise RuntimeError(f"cvxpy solver {name} returned status {problem.status!r} on a {n}x{n} assignment LP")
    plan = np.clip(np.asarray(x.value, dtype=np.float64), 0.0, None)
    # An inaccurate or early-stopped solve can report a status but return a point far outside the
    # polytope; never hand that back as a solution.
    rows, cols = plan.sum(axis=1), plan.sum(axis=0)
    err = max(float(np.abs(rows - 1).max()), float(np.abs(cols - 1).max()))
    if not np.isfinite(err) or err > feasibility_tol:
        raise RuntimeError(
            f"cvxpy solver {name} (status {problem.status!r}) returned a plan that is not doubly stochastic on a "
            f"{n}x{n} assignment LP: row sums in [{rows.min():.3g}, {rows.max():.3g}], column sums in "
            f"[{cols.min():.3g}, {cols.max():.3g}] (tolerance {feasibility_tol:g}); raise the solver's iteration "
            "limit or use HIGHS"
        )
    return BirkhoffLPResult(plan, str(problem.status))


#: the two solver families whose plans differ on ties: a vertex (simplex) vs the face's interior
LP_SOLVERS = {"HiGHS (simplex)": "HIGHS", "Clarabel (interior point)": "CLARABEL"}


def lp_plans(cost, solvers: dict[str, str] | None = None) -> dict[str, np.ndarray]:
    """``{label: plan}``: :func:`birkhoff_lp` of ``cost`` with each solver (default :data:`LP_SOLVERS`).

    The figures of :mod:`strucspars_viz.viz.birkhoff` draw these plans; they never solve.
    """
    return {label: birkhoff_lp(cost, solver=name).plan for label, name in (solvers or LP_SOLVERS).items()}


def solve_assignment(cost, method: Method = "lsa") -> np.ndarray:
    """Optimal permutation of the linear assignment problem.

    .. math:: \\pi^\\star = \\arg\\min_{\\pi \\in S_n} \\sum_i C[i, \\pi(i)]

    Parameters
    ----------
    cost : (n, n) array-like, finite
    method :
        ``"lsa"``  scipy's ``linear_sum_assignment`` (exact, Jonker-Volgenant; default, fastest);
        ``"emd"``  POT's network simplex ``ot.emd`` with the iteration cap raised to ``1e7`` (the
        authors' choice; at its default cap it stops early on 2048-channel layers, SPEC §9). A
        warning is raised if the solver still reports an early stop;
        ``"cvxpy"`` the explicit LP of :func:`birkhoff_lp` with HiGHS. If the returned plan is not a
        vertex it is rounded by an assignment solve on the plan, with a warning.

    Returns
    -------
    perm : int64 array (n,), row ``i`` goes to column ``perm[i]``. All methods reach the same optimal
        value; with ties they may return different optimal permutations.

    >>> solve_assignment([[4.0, 1.0], [2.0, 8.0]]).tolist()
    [1, 0]
    """
    c = _check_cost(cost)
    n = c.shape[0]
    if method == "lsa":
        from scipy.optimize import linear_sum_assignment

        _, cols = linear_sum_assignment(c)
        return cols.astype(np.int64)
    if method == "emd":
        import ot

        ones = np.ones(n, dtype=np.float64)
        plan, log = ot.emd(ones, ones, c, numItermax=10_000_000, log=True)
        if log.get("warning"):
            warnings.warn(f"ot.emd on a {n}x{n} cost: {log['warning']}", RuntimeWarning, stacklevel=2)
        if not is_permutation_matrix(plan, tol=1e-6):
            warnings.warn(f"ot.emd returned a non-vertex plan for n={n}; rounded to a permutation", RuntimeWarning, stacklevel=2)
        return plan_to_permutation(plan)
    if method == "cvxpy":
        plan, _ = birkhoff_lp(c, solver="HIGHS")
        if not is_permutation_matrix(plan, tol=1e-6):
            warnings.warn(
                f"the HiGHS plan for n={n} is not a vertex of the Birkhoff polytope; rounded to a permutation",
                RuntimeWarning,
                stacklevel=2,
            )
        return plan_to_permutation(plan)
    raise ValueError(f"unknown assignment method {method!r}; allowed: {', '.join(METHODS)}")


def solve_transport(cost, capacity: int, method: Method = "lsa") -> np.ndarray:
    r"""Assign ``n = B * capacity`` items to ``B`` bins holding ``capacity`` items each.

    .. math:: \min_{\beta} \sum_i C[i, \beta(i)] \quad \text{s.t. } |\beta^{-1}(b)| = \mathrm{capacity}

    This is the assignment problem in which the ``capacity`` slots of a bin are interchangeable
    (the half-steps of SPEC §2 whenever a finest diagonal block holds several rows or columns).
    Solved exactly as a transportation problem: POT's network simplex for ``"lsa"`` and ``"emd"``
    (scipy's LAPJV is ~40x slower on the equivalent degenerate ``n x n`` cost, 6.6 s vs 0.15 s at
    n = 2048; see ``benchmarks/``), the explicit LP with HiGHS for ``"cvxpy"``. A vertex of the
    transportation polytope with integer margins is integral.

    Parameters
    ----------
    cost : (n, B) array, ``cost[i, b]`` = cost of item ``i`` in bin ``b``; ``n = B * capacity``.

    Returns
    -------
    bins : int64 array (n,), the bin of every item.
    """
    c = np.asarray(cost, dtype=np.float64)
    if c.ndim != 2 or c.shape[0] != c.shape[1] * int(capacity):
        raise ValueError(f"transport cost must be (B * capacity, B) = ({c.shape[1] * capacity}, {c.shape[1]}), got {c.shape}")
    if not np.isfinite(c).all():
        raise ValueError("the transport cost has NaN/inf entries; all must be finite")
    n, bins = c.shape
    if method in ("lsa", "emd"):
        import ot

        plan, log = ot.emd(np.ones(n), np.full(bins, float(capacity)), c, numItermax=10_000_000, log=True)
        if log.get("warning"):
            warnings.warn(f"ot.emd on a {n}x{bins} transport: {log['warning']}", RuntimeWarning, stacklevel=2)
    elif method == "cvxpy":
        import cvxpy as cp

        x = cp.Variable((n, bins), nonneg=True)
        problem = cp.Problem(cp.Minimize(cp.sum(cp.multiply(c, x))), [cp.sum(x, axis=1) == 1, cp.sum(x, axis=0) == capacity])
        problem.solve(solver=_require_solver("HIGHS"))
        if x.value is None:
            raise RuntimeError(f"HiGHS returned status {problem.status!r} on a {n}x{bins} transport LP")
        plan = np.asarray(x.value)
    else:
        raise ValueError(f"unknown assignment method {method!r}; allowed: {', '.join(METHODS)}")
    result = plan.argmax(axis=1).astype(np.int64)
    if not np.allclose(plan.max(axis=1), 1.0, atol=1e-6) or np.bincount(result, minlength=bins).max() != capacity:
        # A fractional plan (should not happen at a vertex): round with an exact assignment on the
        # expanded plan so capacities hold.
        warnings.warn(f"fractional transport plan for n={n}; rounded", RuntimeWarning, stacklevel=2)
        result = plan_to_permutation(np.repeat(plan / capacity, capacity, axis=1)) // capacity
    return result
