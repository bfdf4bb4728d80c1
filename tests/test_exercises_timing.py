"""Notebook 07's exercises (``strucspars_viz.exercises.timing``) against ground truth: numpy and plain
Python on many random inputs, the load-factor invariance of the paired speed-up, the interleaved order's
properties, and wrong functions that no mistake describes."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from strucspars_viz import exercises as ex
from strucspars_viz.exercises import timing as ex_timing
from strucspars_viz.timing import interleaved_order, paired_speedup, summarize

NAMES = ("median_iqr", "paired_speedup", "interleaved_order")


def _percentile(sorted_t: list[float], q: float) -> float:
    """numpy's default (linear) percentile, written out: position q (n - 1) between neighbours."""
    pos = q * (len(sorted_t) - 1)
    lo = int(np.floor(pos))
    hi = min(lo + 1, len(sorted_t) - 1)
    return sorted_t[lo] + (pos - lo) * (sorted_t[hi] - sorted_t[lo])


def test_registered_under_their_own_names():
    for exercise in ex_timing.EXERCISES:
        assert ex.EXERCISES[exercise.name] is exercise
        assert ex.SOLUTIONS[exercise.name] is ex_timing.SOLUTIONS[exercise.name]
        assert callable(getattr(ex, f"check_{exercise.name}"))
    assert tuple(e.name for e in ex_timing.EXERCISES) == NAMES


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("name", NAMES)
def test_solution_passes_and_mistakes_are_named_for_other_seeds(name, seed):
    assert ex.check_exercise(name, ex.SOLUTIONS[name], seed=seed).passed
    for mistake in ex.EXERCISES[name].mistakes:
        result = ex.check_exercise(name, mistake.fn, seed=seed)
        assert not result.passed and result.mistake == mistake.name, str(result)


# ----------------------------------------------------------------------------- median_iqr
def test_median_iqr_solution_matches_numpy_and_plain_python():
    rng = np.random.default_rng(0)
    solution = ex.SOLUTIONS["median_iqr"]
    for _ in range(300):
        n = int(rng.integers(1, 40))
        t = list(rng.gamma(2.0, 1.0, n) * (rng.integers(1, 3, n) if rng.random() < 0.5 else 1))
        if rng.random() < 0.3:
            t = list(np.round(t, 0))  # ties
        med, iqr = solution(t)
        assert med == pytest.approx(np.median(t)) and iqr == pytest.approx(np.subtract(*np.percentile(t, [75, 25])))
        s = sorted(t)
        plain_median = s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2
        assert med == pytest.approx(plain_median)
        assert iqr == pytest.approx(_percentile(s, 0.75) - _percentile(s, 0.25))


def test_median_iqr_is_robust_to_one_outlier_unlike_mean_and_std():
    t = [10.0, 10.2, 10.1, 10.3, 10.15, 10.25, 10.05]
    slow = t[:3] + [60.0] + t[4:]
    med, iqr = ex.SOLUTIONS["median_iqr"](t)
    med_slow, iqr_slow = ex.SOLUTIONS["median_iqr"](slow)
    assert abs(med_slow - med) < 0.1 and abs(iqr_slow - iqr) < 0.1
    assert np.mean(slow) - np.mean(t) > 5 and np.std(slow) > 10 * np.std(t)


def test_median_iqr_accepts_numpy_torch_and_list_outputs():
    def as_numpy(times):
        return np.array([np.median(times), np.subtract(*np.percentile(times, [75, 25]))])

    def as_torch(times):
        t = torch.as_tensor(times, dtype=torch.float64)
        return torch.quantile(t, 0.5), torch.quantile(t, 0.75) - torch.quantile(t, 0.25)

    def as_list(times):
        return [float(np.median(times)), float(np.percentile(times, 75) - np.percentile(times, 25))]

    for fn in (as_numpy, as_torch, as_list):
        assert ex.check_median_iqr(fn).passed, fn.__name__


def test_median_iqr_wrong_shapes_fail_readably():
    result = ex.check_median_iqr(lambda t: float(np.median(t)))
    assert not result.passed and "pair (median, iqr)" in result.message
    result = ex.check_median_iqr(lambda t: None)
    assert not result.passed and "returned None" in result.message
    result = ex.check_median_iqr(lambda t: (np.median(t), np.percentile(t, 25), np.percentile(t, 75)))
    assert not result.passed and "3 values" in result.message


# ----------------------------------------------------------------------------- paired_speedup
def test_paired_speedup_solution_matches_numpy():
    rng = np.random.default_rng(1)
    for _ in range(300):
        n = int(rng.integers(1, 30))
        ref, cand = rng.uniform(1, 20, n), rng.uniform(1, 20, n)
        assert ex.SOLUTIONS["paired_speedup"](list(ref), list(cand)) == pytest.approx(np.median(ref / cand))


def test_paired_speedup_is_invariant_to_a_per_round_load_factor():
    rng = np.random.default_rng(2)
    solution = ex.SOLUTIONS["paired_speedup"]
    unpaired = next(m.fn for m in ex_timing.PAIRED_SPEEDUP.mistakes if m.name == "ratio_of_medians")
    changed = 0
    for _ in range(200):
        n = int(rng.integers(3, 16))
        ref = 10 * (1 + rng.gamma(2, 0.02, n))
        cand = ref / rng.uniform(1.2, 2.5) * (1 + rng.gamma(2, 0.02, n))
        load = np.where(rng.random(n) < 0.4, rng.uniform(2, 5, n), 1.0)
        assert solution(ref * load, cand * load) == pytest.approx(solution(ref, cand), rel=1e-12)
        changed += not np.isclose(unpaired(ref * load, cand * load), unpaired(ref, cand), rtol=1e-3)
    assert changed > 100  # the unpaired speed-up does move with the load


def test_checker_cases_make_the_load_matter():
    cases = ex_timing.PAIRED_SPEEDUP.make_cases(np.random.default_rng(0))
    burst = [c for c in cases if "load burst" in c.label]
    assert len(burst) >= 3 and len(cases) >= 8
    unpaired = next(m.fn for m in ex_timing.PAIRED_SPEEDUP.mistakes if m.name == "ratio_of_medians")
    for case in burst:
        assert not np.isclose(unpaired(*case.args), paired_speedup(*case.args), rtol=1e-3), case.label
    assert any(paired_speedup(*c.args) < 1 for c in cases)  # a candidate slower than the reference
    assert any(len(c.args[0]) == 1 for c in cases) and any(len(c.args[0]) % 2 == 0 for c in cases)


def test_paired_speedup_failure_on_a_load_case_explains_the_invariance():
    result = ex.check_paired_speedup(lambda ref, cand: float(np.median(ref) / np.median(cand)))
    assert not result.passed and "load burst" in result.case
    assert "multiplies both timings of a round alike" in result.message
    assert result.mistake == "ratio_of_medians"


# ----------------------------------------------------------------------------- interleaved_order
@pytest.mark.parametrize("n", range(1, 8))
@pytest.mark.parametrize("repeats", [1, 2, 3, 5, 7, 12, 14])
def test_interleaved_order_properties(n, repeats):
    order = ex.SOLUTIONS["interleaved_order"](n, repeats)
    assert len(order) == n * repeats
    assert [r for r, _ in order] == sorted(r for r, _ in order)  # rounds in order, each one contiguous
    for r in range(repeats):
        variants = [v for rr, v in order if rr == r]
        assert sorted(variants) == list(range(n))  # every variant exactly once per round
        assert variants[0] == r % n  # rotated by the round
        assert all((b - a) % n == 1 % n for a, b in zip(variants, variants[1:]))  # counting up
    if repeats % n == 0:
        positions = np.zeros((n, n), dtype=int)
        for i, (_, v) in enumerate(order):
            positions[v, i % n] += 1
        assert (positions == repeats // n).all()


def test_interleaved_order_accepts_arrays_and_numpy_ints():
    def as_array_rows(n, repeats):
        r, k = np.meshgrid(np.arange(repeats), np.arange(n), indexing="ij")
        return np.stack([r.ravel(), ((r + k) % n).ravel()], axis=1)

    assert ex.check_interleaved_order(as_array_rows).passed
    assert ex.check_interleaved_order(lambda n, repeats: [list(p) for p in interleaved_order(n, repeats)]).passed


def test_interleaved_order_failures_name_the_property():
    missing = ex.check_interleaved_order(lambda n, repeats: [(r, 0) for r in range(repeats) for _ in range(n)])
    assert not missing.passed and "exactly once" in missing.message and missing.mistake is None
    short = ex.check_interleaved_order(lambda n, repeats: interleaved_order(n, repeats)[:-1])
    assert not short.passed and "calls" in short.message
    outside = ex.check_interleaved_order(lambda n, repeats: [(r, (r + k) % n + 1) for r in range(repeats)
                                                             for k in range(n)])
    assert not outside.passed and "not a variant index" in outside.message


@pytest.mark.parametrize("name", NAMES)
def test_stub_is_not_implemented(name):
    def stub(*args):
        raise NotImplementedError("your code here")

    result = ex.check_exercise(name, stub)
    assert not result.passed and result.not_implemented


def test_summarize_is_the_reference_of_median_iqr():
    t = [3.0, 1.0, 2.0, 10.0]
    s = summarize(t)
    assert ex.SOLUTIONS["median_iqr"](t) == (s.median, s.iqr)
