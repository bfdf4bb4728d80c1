"""The exercise checkers: the package's implementations pass, every typical mistake gets its own hint,
an unknown wrong function gets a generic failure, and a student's exception never escapes."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from strucspars_viz import exercises as ex
from strucspars_viz.exercises.complementary import group_mask, is_complementary, path_counts
from strucspars_viz.exercises.core import as_array
from strucspars_viz.exercises.mistakes import MISTAKES, mistakes_of
from strucspars_viz.hierarchy import INF_LEVEL
from strucspars_viz.permutation import shufflenet_permutation

NAMES = list(ex.EXERCISES)
ALL_MISTAKES = [(name, m) for name, ms in MISTAKES.items() for m in ms]


def test_every_exercise_has_a_checker_a_solution_and_mistakes():
    for name in NAMES:
        assert callable(getattr(ex, f"check_{name}")), name
        assert name in ex.SOLUTIONS
        assert len(mistakes_of(name)) >= 3, f"{name}: a small library of typical wrong versions"
        hints = [m.hint for m in mistakes_of(name)]
        assert len(set(hints)) == len(hints), f"{name}: each mistake has its own hint"


@pytest.mark.parametrize("name", NAMES)
def test_package_implementation_passes(name):
    result = getattr(ex, f"check_{name}")(ex.SOLUTIONS[name])
    assert result.passed, str(result)
    assert result.cases >= 8
    assert f"passed: {result.cases} randomised cases" in str(result)
    assert "passed" in result._repr_html_()


@pytest.mark.parametrize(("name", "mistake"), ALL_MISTAKES, ids=[f"{n}-{m.name}" for n, m in ALL_MISTAKES])
def test_each_wrong_version_gets_its_specific_hint(name, mistake):
    result = ex.check_exercise(name, mistake.fn)
    assert not result.passed
    assert result.mistake == mistake.name, str(result)
    assert result.hint == mistake.hint
    assert mistake.hint in str(result) and "Hint" in result._repr_html_()
    assert result.case is not None and result.message


def _perturb(solution, amount=0.37):
    """A wrong function no library entry describes: the right answer with one entry changed."""
    def wrong(*args):
        out = as_array(solution(*args)).astype(np.float64).copy()
        out.flat[-1] += amount
        return out
    return wrong


def _swap_last_two(solution):
    def wrong(*args):
        out = as_array(solution(*args)).copy()
        if out.size >= 2:
            out[[-1, -2]] = out[[-2, -1]]
        return out
    return wrong


RANDOM_WRONG = {
    "shufflenet_permutation": _swap_last_two(ex.SOLUTIONS["shufflenet_permutation"]),
    "inverse_permutation": _swap_last_two(ex.SOLUTIONS["inverse_permutation"]),
    "block_mask": lambda cout, cin, g: np.triu(np.ones((cout, cin))),
    "separation_levels": lambda cout, cin: np.ones((cout, cin), dtype=np.int64),
    "groups_for": lambda s, keep: 1 if s.sum() > 20 else 2 ** (s.shape[0] % 3),
    "p_step_cost": _perturb(ex.SOLUTIONS["p_step_cost"]),
    "q_step_cost": _perturb(ex.SOLUTIONS["q_step_cost"]),
    "solve_p_step_lp": lambda cost: np.full(cost.shape, 1.0 / len(cost)),
    "unpermuted_penalty": _perturb(ex.SOLUTIONS["unpermuted_penalty"]),
    "grouped_weight": _perturb(ex.SOLUTIONS["grouped_weight"]),
    "model_sparsity": lambda sizes, groups: 0.5,
    "complementary": lambda masks, perms: len(masks) % 2 == 0,
    "t_interval": lambda v, level: (np.mean(v) - 0.1, np.mean(v) + 0.1),
    "welch_p": [lambda a, b: 0.5, lambda a, b: min(1.0, ex.SOLUTIONS["welch_p"](a, b) * 1.1)],
    "kaiming_fan_out_std": [lambda shape: 0.1, lambda shape: ex.SOLUTIONS["kaiming_fan_out_std"](shape) * 1.2],
    "lambda_update": lambda lam, s, prev, target, n, dlam: 1.37 * ex.SOLUTIONS["lambda_update"](lam, s, prev, target, n, dlam) + 1e-3,
    "finetune_lr": lambda e, n, b: b * 0.5 ** sum(e >= m for m in (n // 3, 2 * n // 3)),
    "outputs_agree": lambda a, b, tol: bool(a.shape[1] % 2 == 0),
    "conv_params": [_perturb(ex.SOLUTIONS["conv_params"]),
                    lambda cin, cout, k, g, b: ex.SOLUTIONS["conv_params"](cin, cout, k, g, b) + (cin % 3 == 0)],
    "conv_macs": [_perturb(ex.SOLUTIONS["conv_macs"]), lambda *a: ex.SOLUTIONS["conv_macs"](*a) + a[4] % 2],
    "compressed_cost": _perturb(ex.SOLUTIONS["compressed_cost"]),
    "median_iqr": [lambda t: (float(np.min(t)), 1.0), _perturb(ex.SOLUTIONS["median_iqr"]),
                   lambda t: (float(np.median(t)) * 1.01, 0.5)],
    "paired_speedup": [lambda ref, cand: 1.0 + len(ref) / 100, _perturb(ex.SOLUTIONS["paired_speedup"])],
    "interleaved_order": [lambda n, r: [(k, (k * 7 + v) % n) for k in range(r) for v in range(n)][::-1],
                          _perturb(ex.SOLUTIONS["interleaved_order"]), _swap_last_two(ex.SOLUTIONS["interleaved_order"]),
                          lambda n, repeats: [(r, (r * 2 + k) % n) for r in range(repeats) for k in range(n)]],
}


@pytest.mark.parametrize("name", NAMES)
def test_unknown_wrong_function_gets_a_generic_failure(name):
    wrongs = RANDOM_WRONG[name] if isinstance(RANDOM_WRONG[name], list) else [RANDOM_WRONG[name]]
    for wrong in wrongs:
        result = ex.check_exercise(name, wrong)
        assert not result.passed and result.mistake is None and result.hint is None, str(result)
        assert result.message and "Hint" not in str(result)


@pytest.mark.parametrize("name", NAMES)
def test_student_exceptions_become_failing_cases(name):
    def crashes(*args):
        raise IndexError("index 99 is out of bounds for axis 0")

    result = ex.check_exercise(name, crashes)
    assert not result.passed and result.case_index == 1
    assert "IndexError: index 99 is out of bounds" in result.message
    assert "line" in result.message  # points at the student's line


def test_untouched_stub_is_reported_as_not_implemented():
    def stub(channels, groups):
        raise NotImplementedError("your code here")

    result = ex.check_shufflenet_permutation(stub)
    assert not result.passed and result.not_implemented
    assert "not implemented yet" in str(result)


def test_non_callable_and_none_outputs_fail_readably():
    assert "expected a function" in ex.check_block_mask(np.ones((2, 2))).message
    result = ex.check_block_mask(lambda cout, cin, g: None)
    assert not result.passed and "returned None" in result.message


def test_cases_are_seeded():
    first = ex.check_inverse_permutation(RANDOM_WRONG["inverse_permutation"], seed=3)
    again = ex.check_inverse_permutation(RANDOM_WRONG["inverse_permutation"], seed=3)
    assert str(first) == str(again)
    cases = [c.label for c in ex.EXERCISES["inverse_permutation"].make_cases(np.random.default_rng(4))]
    other = [c.label for c in ex.EXERCISES["inverse_permutation"].make_cases(np.random.default_rng(5))]
    assert cases != other


def test_edge_cases_are_covered():
    labels = " | ".join(c.label for c in ex.EXERCISES["block_mask"].make_cases(np.random.default_rng(0)))
    assert "G=1" in labels and "Cout=3" in labels and "Cout=4, Cin=8" in labels
    levels = ex.EXERCISES["separation_levels"].make_cases(np.random.default_rng(0))
    assert any(c.label.endswith("L=0") for c in levels)


@pytest.mark.parametrize("convert", [lambda a: torch.as_tensor(as_array(a)), lambda a: as_array(a)],
                         ids=["torch", "numpy"])
def test_outputs_may_be_numpy_or_torch(convert):
    for name in ("block_mask", "separation_levels", "unpermuted_penalty", "p_step_cost"):
        sol = ex.SOLUTIONS[name]
        assert ex.check_exercise(name, lambda *a, sol=sol: convert(sol(*a))).passed, name


def test_levels_accept_inf_or_int_max():
    def with_float_inf(cout, cin):
        k = as_array(ex.SOLUTIONS["separation_levels"](cout, cin)).astype(float)
        k[k == INF_LEVEL] = np.inf
        return k

    assert ex.check_separation_levels(with_float_inf).passed


def test_lp_accepts_any_optimal_plan_not_only_the_reference_one():
    from strucspars_viz.birkhoff import birkhoff_lp, solve_assignment

    def averaged(cost):
        # the mean of two optimal vertices (HiGHS' and scipy's) is optimal, and fractional when they differ
        a = birkhoff_lp(cost).plan
        b = np.zeros_like(cost)
        b[np.arange(len(cost)), solve_assignment(cost)] = 1.0
        return (a + b) / 2

    assert ex.check_solve_p_step_lp(averaged).passed
    uniform_when_tied = lambda cost: np.full(cost.shape, 1.0 / len(cost))  # noqa: E731
    result = ex.check_solve_p_step_lp(uniform_when_tied)
    assert not result.passed and "not optimal" in result.message and "reduced cost" in result.message


def test_complementary_reference_counts_paths_by_brute_force():
    c = 8
    masks = [np.eye(c, dtype=int), group_mask(c, 2), group_mask(c, 4)]
    perms = [np.arange(c), shufflenet_permutation(c, 4), shufflenet_permutation(c, 2)]

    def paths(i, o):  # enumerate every channel sequence through the stages
        frontier = {i: 1}
        for mask, perm in zip(masks, perms):
            after_conv: dict[int, int] = {}
            for ch, n in frontier.items():
                for out in np.flatnonzero(mask[:, ch]):
                    after_conv[int(out)] = after_conv.get(int(out), 0) + n
            frontier = {slot: after_conv.get(int(perm[slot]), 0) for slot in range(c)}
        return frontier.get(o, 0)

    t = path_counts(masks, perms)
    assert all(t[o, i] == paths(i, o) for o in range(c) for i in range(c))
    assert is_complementary(masks, perms)  # prod K = 2 * 4 = C with ShuffleNet shuffles
    assert not is_complementary(masks, [np.arange(c)] * 3)  # no shuffle: groups never mix
    assert not is_complementary(masks[:2], perms[:2])  # prod K = 2 < C: missing paths
