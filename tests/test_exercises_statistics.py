"""Notebook 06's exercises (t interval, Welch's p-value, Kaiming fan_out std) against ground truth:
scipy, ``strucspars_viz.ablation.stats`` and the weights ``reinitialise_`` actually draws."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from scipy import stats as st
from torch import nn

from strucspars_viz import exercises as ex
from strucspars_viz.ablation.arms import reinitialise_
from strucspars_viz.ablation.stats import spread, welch_p
from strucspars_viz.exercises import statistics

NAMES = ("t_interval", "welch_p", "kaiming_fan_out_std")


# ----------------------------------------------------------------------------- the natural student code
def student_t_interval(values, level):
    x = np.asarray(values, dtype=float)
    n = len(x)
    half = st.t.ppf((1 + level) / 2, n - 1) * x.std(ddof=1) / np.sqrt(n)
    return x.mean() - half, x.mean() + half


def student_welch_p(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    t = (a.mean() - b.mean()) / np.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    return 2 * st.t.sf(abs(t), df)


def student_kaiming(weight_shape):
    c_out, c_in, kh, kw = weight_shape
    return np.sqrt(2.0 / (c_out * kh * kw))


STUDENT = {"t_interval": student_t_interval, "welch_p": student_welch_p, "kaiming_fan_out_std": student_kaiming}


def test_registered_with_checkers():
    assert [e.name for e in statistics.EXERCISES] == list(NAMES)
    for name in NAMES:
        assert name in ex.EXERCISES and name in ex.SOLUTIONS and callable(getattr(ex, f"check_{name}"))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("name", NAMES)
def test_solutions_and_natural_student_code_pass_on_several_seeds(name, seed):
    for fn in (ex.SOLUTIONS[name], STUDENT[name]):
        result = ex.check_exercise(name, fn, seed=seed)
        assert result.passed and result.cases >= 8, str(result)


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("name", NAMES)
def test_mistakes_recognised_on_other_seeds_too(name, seed):
    for mistake in ex.EXERCISES[name].mistakes:
        result = ex.check_exercise(name, mistake.fn, seed=seed)
        assert not result.passed and result.mistake == mistake.name, (mistake.name, str(result))


@pytest.mark.parametrize("name", NAMES)
def test_torch_outputs_are_accepted(name):
    def as_torch(*args):
        out = STUDENT[name](*args)
        return tuple(torch.tensor(float(v)) for v in out) if isinstance(out, tuple) else torch.tensor(float(out))

    assert ex.check_exercise(name, as_torch).passed


def test_edge_cases_are_covered():
    rng = np.random.default_rng(0)
    cases = statistics.T_INTERVAL.make_cases(rng)
    assert any(len(c.args[0]) == 2 for c in cases)
    assert any(np.ptp(c.args[0]) == 0 for c in cases)
    assert len({c.args[1] for c in cases}) >= 4  # several levels, not only 95 %
    welch = statistics.WELCH_P.make_cases(rng)
    t_signs = {np.sign(np.mean(a) - np.mean(b)) for a, b in (c.args for c in welch)}
    assert t_signs == {-1.0, 1.0}
    assert any(len(a) != len(b) for a, b in (c.args for c in welch))
    assert any(np.ptp(a) == 0 for a, b in (c.args for c in welch))
    shapes = [c.args[0] for c in statistics.KAIMING_FAN_OUT_STD.make_cases(rng)]
    assert any(s[2] != s[3] for s in shapes) and any(s[0] != s[1] for s in shapes)


# ----------------------------------------------------------------------------- ground truth
def _samples(seed: int, count: int = 200):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        n = int(rng.integers(2, 25))
        yield rng.normal(rng.uniform(-5, 95), rng.uniform(0.01, 3.0), n)


def test_t_interval_matches_scipy_and_spread():
    rng = np.random.default_rng(1)
    for x in _samples(0):
        level = float(rng.choice([0.5, 0.8, 0.9, 0.95, 0.99]))
        want = st.t.interval(level, len(x) - 1, loc=x.mean(), scale=st.sem(x))
        sp = spread(x, level)
        for fn in (ex.SOLUTIONS["t_interval"], student_t_interval):
            low, high = fn(x, level)
            assert np.allclose((low, high), want, rtol=1e-12, atol=1e-12)
            assert np.allclose((low, high), (sp.ci_low, sp.ci_high), rtol=1e-12, atol=1e-12)
    low, high = student_t_interval(np.full(3, 7.5), 0.95)
    assert low == high == 7.5 and ex.SOLUTIONS["t_interval"](np.full(3, 7.5), 0.95) == (7.5, 7.5)


def test_t_interval_covers_the_mean_at_its_level():
    rng = np.random.default_rng(2)
    hits = sum(lo <= 0.0 <= hi for lo, hi in (student_t_interval(rng.normal(0, 1, 3), 0.9) for _ in range(4000)))
    assert abs(hits / 4000 - 0.9) < 0.02  # n = 3: the z interval would cover far less often


def test_welch_p_matches_scipy_and_the_package():
    rng = np.random.default_rng(3)
    for a in _samples(4):
        b = rng.normal(a.mean() + rng.normal(0, 2), rng.uniform(0.01, 3.0), int(rng.integers(2, 25)))
        want = st.ttest_ind(a, b, equal_var=False).pvalue
        assert np.isclose(welch_p(a, b), want, rtol=1e-12, atol=1e-300)
        assert np.isclose(student_welch_p(a, b), want, rtol=1e-9, atol=1e-300)
        assert np.isclose(student_welch_p(a, b), student_welch_p(b, a), rtol=1e-12)


def test_welch_p_is_uniform_under_the_null():
    rng = np.random.default_rng(5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ps = np.array([student_welch_p(rng.normal(0, 1, 3), rng.normal(0, 4, 6)) for _ in range(4000)])
    assert abs((ps < 0.05).mean() - 0.05) < 0.015


def test_kaiming_std_is_torch_init_and_what_reinitialise_draws():
    for shape in [(16, 3, 3, 3), (64, 32, 1, 1), (4, 8, 3, 1), (128, 8, 5, 5)]:
        fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
        assert fan_out == shape[0] * shape[2] * shape[3]
        assert math.isclose(ex.SOLUTIONS["kaiming_fan_out_std"](shape), math.sqrt(2 / fan_out), rel_tol=1e-12)
        assert math.isclose(student_kaiming(shape), math.sqrt(2 / fan_out), rel_tol=1e-12)
    model = nn.Sequential(nn.Conv2d(64, 256, 3), nn.ReLU(), nn.Conv2d(256, 32, (3, 1)))
    reinitialise_(model, seed=0)
    for conv in (model[0], model[2]):
        want = ex.SOLUTIONS["kaiming_fan_out_std"](tuple(conv.weight.shape))
        assert abs(float(conv.weight.detach().std()) / want - 1) < 0.02, conv
