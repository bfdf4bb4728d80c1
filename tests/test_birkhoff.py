import itertools
import warnings

import numpy as np
import pytest

import strucspars_viz as sv
from strucspars_viz.birkhoff import assignment_cost


def brute_force(cost):
    n = cost.shape[0]
    return min(cost[np.arange(n), list(p)].sum() for p in itertools.permutations(range(n)))


def tie_heavy_cost(n, rng):
    """Block-structured costs like the P-step's M = R S^T: many exact ties."""
    return rng.integers(0, 3, size=(n, n)).astype(float)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6, 7])
@pytest.mark.parametrize("method", ["lsa", "emd", "cvxpy"])
def test_every_method_matches_brute_force(n, method):
    rng = np.random.default_rng(n)
    for cost in (rng.uniform(size=(n, n)), tie_heavy_cost(n, rng)):
        perm = sv.solve_assignment(cost, method=method)
        assert perm.dtype == np.int64 and sorted(perm.tolist()) == list(range(n))
        assert assignment_cost(cost, perm) == pytest.approx(brute_force(cost), abs=1e-9)


def test_methods_agree_on_larger_block_cost():
    rng = np.random.default_rng(1)
    s = rng.uniform(size=(32, 32))
    cost = sv.penalty_matrix(32, 32) @ s.T
    values = {m: assignment_cost(cost, sv.solve_assignment(cost, m)) for m in ("lsa", "emd", "cvxpy")}
    assert max(values.values()) - min(values.values()) < 1e-9


def test_birkhoff_lp_highs_returns_vertex_even_with_ties():
    rng = np.random.default_rng(2)
    for n in (3, 6, 12):
        cost = tie_heavy_cost(n, rng)
        plan, status = sv.birkhoff_lp(cost)
        assert status == "optimal"
        assert sv.is_permutation_matrix(plan, tol=1e-6)
        np.testing.assert_allclose(plan.sum(0), 1, atol=1e-8)
        # ground truth: brute force for small n, an independent exact solver (scipy's LAPJV) for n = 12
        from scipy.optimize import linear_sum_assignment

        rows, cols = linear_sum_assignment(cost)
        best = brute_force(cost) if n <= 6 else cost[rows, cols].sum()
        assert (plan * cost).sum() == pytest.approx(best, abs=1e-9)


def test_interior_point_returns_barycentre_on_full_tie():
    # Every permutation is optimal: the relative interior of the optimal face is the barycentre J/n.
    plan, status = sv.birkhoff_lp(np.ones((3, 3)), solver="CLARABEL")
    assert status.startswith("optimal")
    assert not sv.is_permutation_matrix(plan)
    np.testing.assert_allclose(plan, np.full((3, 3), 1 / 3), atol=1e-4)


def test_is_permutation_matrix():
    assert sv.is_permutation_matrix(np.eye(4)[[2, 0, 3, 1]])
    assert not sv.is_permutation_matrix(np.full((2, 2), 0.5))
    assert not sv.is_permutation_matrix(np.ones((2, 3)))


@pytest.mark.parametrize("bad,match", [
    (np.ones((2, 3)), "square"),
    (np.array([[0.0, np.nan], [1.0, 0.0]]), "NaN"),
    (np.ones(4), "square"),
])
def test_bad_costs_raise_clear_errors(bad, match):
    for method in ("lsa", "emd", "cvxpy"):
        with pytest.raises(ValueError, match=match):
            sv.solve_assignment(bad, method)


def test_unknown_method_and_missing_solver():
    with pytest.raises(ValueError, match="allowed: lsa, emd, cvxpy"):
        sv.solve_assignment(np.eye(2), "hungarian")
    with pytest.raises(ValueError, match="not installed; installed solvers"):
        sv.birkhoff_lp(np.eye(2), solver="NO_SUCH_SOLVER")


def test_emd_exact_at_large_n_with_raised_cap():
    rng = np.random.default_rng(3)
    cost = rng.uniform(size=(300, 300))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        emd = sv.solve_assignment(cost, "emd")
    assert assignment_cost(cost, emd) == pytest.approx(assignment_cost(cost, sv.solve_assignment(cost)), abs=1e-9)


def test_birkhoff_lp_never_returns_an_infeasible_plan_as_a_success():
    """SCS stopped after one iteration used to return row sums of 3.1-13.2 with status 'optimal_inaccurate'."""
    rng = np.random.default_rng(4)
    cost = rng.uniform(size=(12, 12))
    with pytest.raises(RuntimeError, match=r"SCS.*not doubly stochastic.*row sums"):
        sv.birkhoff_lp(cost, solver="SCS", max_iters=1)
    plan, status = sv.birkhoff_lp(cost, solver="SCS")  # converged: feasible within the tolerance
    np.testing.assert_allclose(plan.sum(0), 1, atol=1e-3)
    np.testing.assert_allclose(plan.sum(1), 1, atol=1e-3)
