"""Exercises on comparing ablation arms over seeds, and on the arms' fresh weights (notebook 06).

* The two-sided ``level`` t confidence interval of the mean of ``x_1..x_n`` (``n >= 2``):
  ``mean +- t_{(1 + level)/2, n-1} s / sqrt(n)`` with the sample sd
  ``s = sqrt(sum (x_i - mean)^2 / (n - 1))`` (:func:`strucspars_viz.ablation.stats.spread`); all
  values equal: ``s = 0`` and the interval is the point ``[mean, mean]``.
* Welch's unequal-variance t-test of two arms ``a, b``: with ``v = s^2 / n`` per arm,
  ``t = (mean_a - mean_b) / sqrt(v_a + v_b)``, Welch-Satterthwaite
  ``df = (v_a + v_b)^2 / (v_a^2 / (n_a - 1) + v_b^2 / (n_b - 1))`` and the two-sided
  ``p = 2 P(T_df > |t|)`` (``scipy.stats.ttest_ind(a, b, equal_var=False).pvalue``).
* The re-initialised arms draw conv weights with ``nn.init.kaiming_normal_(w, mode="fan_out",
  nonlinearity="relu")`` (:func:`strucspars_viz.ablation.arms.reinitialise_`): normal with
  ``std = gain / sqrt(fan_out) = sqrt(2 / (C_out k_h k_w))`` for a weight of shape
  ``(C_out, C_in, k_h, k_w)``.
"""
from __future__ import annotations

import math
import warnings
from typing import Callable

import numpy as np
import torch
from scipy import stats as st
from torch import nn

from ..ablation.stats import spread, welch_p
from .core import Case, Exercise, Failure, Mistake, as_array, fmt, number_print, numeric_array, one_number, require

__all__ = ["EXERCISES", "KAIMING_FAN_OUT_STD", "SOLUTIONS", "T_INTERVAL", "WELCH_P"]


def _sample(rng: np.random.Generator, n: int, mean: float, sd: float) -> np.ndarray:
    """``n`` values with sample mean ``mean`` and sample sd ``sd`` (up to rounding), in random order."""
    z = rng.standard_normal(n)
    z = (z - z.mean()) / z.std(ddof=1)
    return mean + sd * z


# ----------------------------------------------------------------------------- t confidence interval
def _interval_cases(rng: np.random.Generator) -> list[Case]:
    specs = [(5, 0.95), (3, 0.95), (2, 0.95), (10, 0.90), (4, 0.99), (30, 0.95), (6, 0.80), (3, 0.5)]
    cases = []
    for n, level in specs:
        x = _sample(rng, n, float(rng.uniform(85, 92)), float(rng.uniform(0.1, 1.0)))
        cases.append(Case((x, level), f"n = {n} values {fmt(np.round(x, 3), 6)}, level = {level}"))
    cases.insert(5, Case((np.full(4, 91.25), 0.95), "n = 4 equal values (91.25 each), level = 0.95"))
    return cases


def _verify_interval(output, case: Case) -> None:
    x, level = case.args
    n = len(x)
    arr = numeric_array(output, "the two ends (low, high) of the interval")
    require(arr.size == 2, f"return the two ends (low, high) of the interval, got {arr.size} number(s)")
    low, high = (float(v) for v in arr.ravel())
    ref = spread(x, level)
    mean, sd = ref.mean, ref.sd
    tq = float(st.t.ppf((1 + level) / 2, n - 1))
    if not (math.isfinite(low) and math.isfinite(high)):
        extra = (" All values are equal, so s = 0 and the interval is the single point [mean, mean] "
                 "(scipy.stats.t.interval returns NaN for scale = 0)." if sd == 0 else "")
        raise Failure(f"your interval ({low}, {high}) is not finite; the t interval of {n} values always is.{extra}")
    require(low <= high, f"low = {low:.6g} exceeds high = {high:.6g}; return (mean - half-width, mean + half-width)")
    tol = 1e-7 * max(1.0, abs(mean))  # float32 answers pass; every mistake is off by far more
    mid, half = (low + high) / 2, (high - low) / 2
    require(abs(mid - mean) <= tol,
            f"the interval is centred on the sample mean {mean:.8g}; the centre of yours is {mid:.8g}")
    want = ref.ci_high - mean
    require(abs(half - want) <= 1e-5 * want + tol,
            f"your half-width is {half:.6g}; the {level:g} t interval's is t_(1+level)/2, n-1 * s / sqrt(n) = "
            f"{tq:.4g} * {sd:.4g} / sqrt({n}) = {want:.6g} (two-sided quantile {(1 + level) / 2:g} of Student's t "
            f"with n - 1 = {n - 1} degrees of freedom; sample sd s with n - 1 in the denominator)")


def _interval_with(quantile: Callable[[float, int], float], ddof: int = 1, sqrt_n: bool = True):
    def wrong(values, level):
        x = np.asarray(values, dtype=np.float64)
        n = len(x)
        half = quantile(level, n) * x.std(ddof=ddof) / (math.sqrt(n) if sqrt_n else 1.0)
        return x.mean() - half, x.mean() + half
    return wrong


def _t_quantile(level: float, n: int) -> float:
    return float(st.t.ppf((1 + level) / 2, n - 1))


def _scipy_interval(values, level):
    x = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return st.t.interval(level, len(x) - 1, loc=x.mean(), scale=x.std(ddof=1) / math.sqrt(len(x)))


T_INTERVAL = Exercise(
    name="t_interval",
    signature="t_interval(values, level) -> (low, high)",
    make_cases=_interval_cases,
    verify=_verify_interval,
    fingerprint=lambda output, case: None if output is None else as_array(output).astype(np.float64).ravel(),
    mistakes=(
        Mistake("z_quantile",
                "You used the normal quantile z (1.96 for 95 %). With n seeds the standardised mean follows Student's "
                "t with n - 1 degrees of freedom, whose quantile is much larger for small n (t_0.975,2 = 4.30): "
                "scipy.stats.t.ppf((1 + level) / 2, n - 1).",
                _interval_with(lambda level, n: float(st.norm.ppf((1 + level) / 2)))),
        Mistake("population_sd",
                "Your sd divides by n (np.std's default ddof=0); the sample sd of the interval divides by n - 1: "
                "np.std(x, ddof=1).",
                _interval_with(_t_quantile, ddof=0)),
        Mistake("no_sqrt_n",
                "Your half-width is t * s, the spread of single values; the interval is for the mean, whose standard "
                "error is s / sqrt(n).",
                _interval_with(_t_quantile, sqrt_n=False)),
        Mistake("df_n",
                "Your t quantile has n degrees of freedom; estimating the mean uses one, leaving n - 1: "
                "t.ppf((1 + level) / 2, n - 1).",
                _interval_with(lambda level, n: float(st.t.ppf((1 + level) / 2, n)))),
        Mistake("one_sided_quantile",
                "You took the quantile at level itself (t.ppf(level, n - 1)); a two-sided interval leaves "
                "(1 - level) / 2 in each tail, so the quantile is at (1 + level) / 2.",
                _interval_with(lambda level, n: float(st.t.ppf(level, n - 1)))),
        Mistake("level_ignored",
                "Your interval is the 95 % one whatever the level: use the quantile (1 + level) / 2, not 0.975.",
                _interval_with(lambda level, n: float(st.t.ppf(0.975, n - 1)))),
        Mistake("scipy_nan_when_equal",
                "scipy.stats.t.interval returns NaN when its scale s / sqrt(n) is 0 (all values equal); the interval "
                "is then the point [mean, mean]. Compute mean -+ t * s / sqrt(n) yourself (or handle s = 0).",
                _scipy_interval),
    ),
)


# ----------------------------------------------------------------------------- Welch's t-test
def _welch_cases(rng: np.random.Generator) -> list[Case]:
    # (n_a, mean_a, sd_a, n_b, mean_b, sd_b): signs of t both ways, unequal sizes and variances, n = 2,
    # a large separation (tiny p), near-equal means (p near 1) and one constant arm
    specs = [(3, 91.0, 0.3, 3, 90.2, 0.5), (5, 89.5, 0.4, 3, 90.6, 0.6), (2, 90.0, 0.5, 2, 89.0, 0.3),
             (4, 90.0, 0.1, 8, 89.3, 1.0), (6, 90.0, 0.5, 6, 90.05, 0.5), (10, 88.0, 0.5, 10, 90.0, 0.5),
             (3, 89.0, 0.8, 7, 90.5, 0.2), (7, 91.0, 1.2, 3, 90.0, 0.1)]
    cases = []
    for na, ma, sa, nb, mb, sb in specs:
        a, b = _sample(rng, na, ma, sa), _sample(rng, nb, mb, sb)
        cases.append(Case((a, b), f"a: {na} values (mean {ma:g}, sd {sa:g}), b: {nb} values (mean {mb:g}, sd {sb:g})"))
    b = _sample(rng, 4, 90.8, 0.4)
    cases.insert(4, Case((np.full(3, 90.0), b), "a: 3 equal values 90.0 (sd 0), b: 4 values (mean 90.8, sd 0.4)"))
    return cases


def _welch_parts(a, b, ddof: int = 1) -> tuple[float, float]:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    va, vb = a.var(ddof=ddof) / a.size, b.var(ddof=ddof) / b.size
    t = (a.mean() - b.mean()) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (a.size - 1) + vb ** 2 / (b.size - 1))
    return float(t), float(df)


def _verify_welch(output, case: Case) -> None:
    a, b = case.args
    p = one_number(output, "the p-value")
    t, df = _welch_parts(a, b)
    want = welch_p(a, b)  # the package's own test (scipy.stats.ttest_ind, equal_var=False)
    require(math.isfinite(p) and 0.0 <= p <= 1.0, f"a p-value is a probability in [0, 1], got {p:.6g} (here t = {t:.4g})")
    require(abs(p - want) <= 1e-6 * want + 1e-12,
            f"got p = {p:.6g}; Welch's test gives t = (mean_a - mean_b) / sqrt(s_a^2/n_a + s_b^2/n_b) = {t:.4g}, "
            f"Welch-Satterthwaite df = {df:.4g} and the two-sided p = 2 P(T_df > |t|) = {want:.6g} "
            "(scipy.stats.ttest_ind(a, b, equal_var=False))")


def _welch_wrong(tail: Callable[[float, float], float], ddof: int = 1, df_of: Callable | None = None):
    def wrong(a, b):
        t, df = _welch_parts(a, b, ddof)
        if df_of is not None:
            df = df_of(len(a), len(b))
        return float(tail(t, df))
    return wrong


def _pooled(a, b) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(st.ttest_ind(a, b, equal_var=True).pvalue)


WELCH_P = Exercise(
    name="welch_p",
    signature="welch_p(a, b) -> float (two-sided p-value of Welch's t-test)",
    make_cases=_welch_cases,
    verify=_verify_welch,
    fingerprint=number_print,
    mistakes=(
        Mistake("pooled_student",
                "You ran Student's t-test with a pooled variance (equal_var=True). Welch's test keeps each arm's own "
                "variance, se = sqrt(s_a^2/n_a + s_b^2/n_b), and uses the Welch-Satterthwaite degrees of freedom.",
                _pooled),
        Mistake("one_sided",
                "Your p-value is one-sided, P(T > |t|). The test asks whether the means differ in either direction: "
                "p = 2 P(T_df > |t|) = 2 * t.sf(|t|, df).",
                _welch_wrong(lambda t, df: st.t.sf(abs(t), df))),
        Mistake("normal_tail",
                "You used the normal distribution's tail; with a handful of seeds the statistic follows Student's t "
                "with the Welch-Satterthwaite df, whose tails are much heavier: 2 * scipy.stats.t.sf(|t|, df).",
                _welch_wrong(lambda t, df: 2 * st.norm.sf(abs(t)))),
        Mistake("df_pooled",
                "Your t is Welch's but your degrees of freedom n_a + n_b - 2 are Student's. Welch's test uses "
                "df = (v_a + v_b)^2 / (v_a^2/(n_a - 1) + v_b^2/(n_b - 1)) with v = s^2 / n.",
                _welch_wrong(lambda t, df: 2 * st.t.sf(abs(t), df), df_of=lambda na, nb: na + nb - 2)),
        Mistake("signed_t",
                "You took the tail beyond t itself: when mean_a < mean_b, t is negative and 2 * t.sf(t, df) exceeds 1. "
                "Use |t|: p = 2 * t.sf(|t|, df).",
                _welch_wrong(lambda t, df: 2 * st.t.sf(t, df))),
        Mistake("population_var",
                "Your variances divide by n (np.var's default ddof=0); Welch's test uses the sample variances "
                "s^2 = np.var(x, ddof=1), which divide by n - 1.",
                _welch_wrong(lambda t, df: 2 * st.t.sf(abs(t), df), ddof=0)),
    ),
)


# ----------------------------------------------------------------------------- Kaiming fan_out std
def _kaiming_cases(rng: np.random.Generator) -> list[Case]:
    shapes = [(16, 3, 3, 3), (32, 16, 3, 3), (16, 16, 3, 3), (64, 32, 1, 1), (4, 8, 3, 1), (8, 4, 1, 5),
              (64, 16, 3, 3), (1, 1, 1, 1)]
    for _ in range(2):
        cout, cin = (int(v) for v in 2 ** rng.integers(2, 7, 2))
        kh, kw = (int(v) for v in rng.choice([1, 3, 5, 7], 2))
        shapes.append((cout, cin, kh, kw))
    labels = {(16, 3, 3, 3): "the stem conv of a CIFAR ResNet", (64, 16, 3, 3): "a grouped conv's weight (G = 4)",
              (1, 1, 1, 1): "a single weight"}
    return [Case((s,), f"weight_shape = {s}" + (f" ({labels[s]})" if s in labels else "")) for s in shapes]


def _reference_std(shape) -> float:
    fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    return nn.init.calculate_gain("relu") / math.sqrt(fan_out)


def _measured_std(shape) -> tuple[float, int]:
    """Std of ``kaiming_normal_`` draws on a weight with the same fan_out (C_in widened to >= 200k entries)."""
    cout, cin, kh, kw = shape
    wide = max(cin, -(-200_000 // (cout * kh * kw)))
    w = torch.empty(cout, wide, kh, kw, dtype=torch.float64)
    nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu", generator=torch.Generator().manual_seed(0))
    return float(w.std()), w.numel()


def _verify_kaiming(output, case: Case) -> None:
    (shape,) = case.args
    value = one_number(output, "the standard deviation")
    cout, cin, kh, kw = shape
    want = _reference_std(shape)
    measured, draws = _measured_std(shape)
    formula = (f"std = gain / sqrt(fan_out) with the ReLU gain sqrt(2) and fan_out = C_out k_h k_w = "
               f"{cout} * {kh} * {kw} = {cout * kh * kw}, i.e. {want:.6g}")
    require(math.isfinite(value) and abs(value - measured) <= 0.03 * measured,
            f"got {value:.6g}, but nn.init.kaiming_normal_(w, mode='fan_out', nonlinearity='relu') on a weight of "
            f"shape {shape} draws values whose std is {measured:.4g} (measured on {draws:,} draws): {formula}")
    require(abs(value - want) <= 1e-6 * want,
            f"got {value:.8g}, close to the measured std of kaiming_normal_ but not exact: {formula}")


def _kaiming_wrong(std: Callable[[int, int, int, int], float]):
    return lambda shape: float(std(*shape))


KAIMING_FAN_OUT_STD = Exercise(
    name="kaiming_fan_out_std",
    signature="kaiming_fan_out_std(weight_shape) -> float",
    make_cases=_kaiming_cases,
    verify=_verify_kaiming,
    fingerprint=number_print,
    mistakes=(
        Mistake("fan_in",
                "You divided by fan_in = C_in k_h k_w (PyTorch's default mode); reinitialise_ uses mode='fan_out', "
                "fan_out = C_out k_h k_w (weight_shape[0] times the kernel's positions).",
                _kaiming_wrong(lambda co, ci, kh, kw: math.sqrt(2 / (ci * kh * kw)))),
        Mistake("gain_one",
                "You left out the ReLU gain: std = gain / sqrt(fan_out) with gain = sqrt(2) for ReLU (a ReLU zeroes "
                "about half of its inputs; the factor 2 keeps the signal's variance from shrinking layer by layer).",
                _kaiming_wrong(lambda co, ci, kh, kw: math.sqrt(1 / (co * kh * kw)))),
        Mistake("variance",
                "You returned the variance 2 / fan_out; kaiming_normal_ draws with the standard deviation "
                "sqrt(2 / fan_out).",
                _kaiming_wrong(lambda co, ci, kh, kw: 2 / (co * kh * kw))),
        Mistake("no_kernel",
                "fan_out counts the kernel's positions as well: C_out k_h k_w, not C_out alone (each input value "
                "reaches C_out k_h k_w weights).",
                _kaiming_wrong(lambda co, ci, kh, kw: math.sqrt(2 / co))),
        Mistake("square_kernel",
                "Kernels need not be square: fan_out = C_out k_h k_w with k_h = weight_shape[2] and "
                "k_w = weight_shape[3], not k_h squared.",
                _kaiming_wrong(lambda co, ci, kh, kw: math.sqrt(2 / (co * kh * kh)))),
        Mistake("glorot",
                "That is Xavier/Glorot's std sqrt(2 / (fan_in + fan_out)), made for tanh-like layers. Kaiming's "
                "fan_out mode for ReLU uses fan_out alone with the gain sqrt(2): sqrt(2 / fan_out).",
                _kaiming_wrong(lambda co, ci, kh, kw: math.sqrt(2 / ((ci + co) * kh * kw)))),
    ),
)


#: this module's exercises, in teaching order
EXERCISES: tuple[Exercise, ...] = (T_INTERVAL, WELCH_P, KAIMING_FAN_OUT_STD)
#: {name: the package's implementation with the exercise's signature}
SOLUTIONS: dict[str, Callable] = {
    "t_interval": lambda values, level: tuple(spread(values, level)[3:5]),
    "welch_p": welch_p,
    "kaiming_fan_out_std": _reference_std,
}
