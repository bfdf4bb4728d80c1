"""Exercises on timing models on a noisy machine (notebook 07).

* ``median_iqr(times) -> (median, iqr)``: the robust summary of repeated wall times
  (:func:`strucspars_viz.timing.summarize`): the median, and ``IQR = q3 - q1`` with the quartiles of
  numpy's default linear interpolation, ``q1, q3 = np.percentile(times, [25, 75])``. Noise on a
  shared machine is one-sided (a call is never faster than its work), so the median and the IQR
  describe the typical call where the mean and the standard deviation follow the slowest ones.
* ``paired_speedup(reference, candidate) -> float``: ``median_r reference[r] / candidate[r]``
  (:func:`strucspars_viz.timing.paired_speedup`), the ratio taken *within* each interleaved round
  ``r`` before the median. A burst of load that multiplies both timings of a round by the same
  factor cancels in that round's ratio, so the paired speed-up does not change with such bursts.
* ``interleaved_order(n_variants, repeats) -> [(round, variant), ...]``
  (:func:`strucspars_viz.timing.interleaved_order`): round after round, every round runs each
  variant once, rotated by the round: position ``k`` of round ``r`` runs variant ``(r + k) mod n``,
  so round ``r`` starts with variant ``r mod n`` and, when ``repeats`` is a multiple of ``n``, every
  variant holds every position equally often.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..timing import interleaved_order as _interleaved_order
from ..timing import paired_speedup as _paired_speedup
from ..timing import summarize
from .core import Case, Exercise, Failure, Mistake, as_array, fmt, one_number, require

__all__ = ["EXERCISES", "INTERLEAVED_ORDER", "MEDIAN_IQR", "PAIRED_SPEEDUP", "SOLUTIONS"]


def _time(value: Any, what: str) -> float:
    """One finite number (timings are finite, so is their summary)."""
    number = one_number(value, what)
    require(np.isfinite(number), f"{what} is {number}; timings are finite, so is their summary")
    return number


def _close(a: float, b: float) -> bool:
    return bool(np.isclose(a, b, rtol=1e-9, atol=1e-12))


# ----------------------------------------------------------------------------- median and IQR
def _median_iqr_cases(rng: np.random.Generator) -> list[Case]:
    quiet = 10.0 + rng.gamma(2.0, 0.15, 9)  # ms: a quiet run, one-sided noise
    outlier = quiet.copy()
    outlier[int(rng.integers(9))] += 40.0  # one call hit by another process
    cases = [
        ([12.5], "n = 1"),
        (list(outlier), "n = 9, one outlier (a burst of load)"),
        ([5.0, 1.0, 4.0, 2.0, 3.0], "n = 5, unsorted"),
        ([10.0, 14.0], "n = 2"),
        ([1.0, 2.0, 3.0, 4.0], "n = 4, sorted"),
        ([8.0, 8.0, 8.0, 9.5, 8.0, 11.0], "n = 6 with ties"),
        (list(quiet), "n = 9, quiet machine"),
    ]
    for n in (int(rng.integers(6, 12)) * 2, int(rng.integers(6, 12)) * 2 + 1):
        t = 3.0 + rng.gamma(1.5, 0.4, n)
        t[rng.choice(n, 2, replace=False)] *= rng.uniform(2.0, 5.0, 2)
        cases.append((list(np.round(t, 4)), f"n = {n}, random, two slow calls"))
    return [Case((t,), f"{label}: times {fmt(t, 12)}") for t, label in cases]


def _pair(output: Any) -> tuple[float, float]:
    require(output is not None, "your function returned None; it should return (median, iqr) (is a `return` missing?)")
    require(isinstance(output, (tuple, list)) or (isinstance(output, np.ndarray) and output.shape == (2,)),
            f"return a pair (median, iqr), got {type(output).__name__}")
    require(len(output) == 2, f"return a pair (median, iqr), got {len(output)} values")
    return _time(output[0], "the median"), _time(output[1], "the IQR")


def _verify_median_iqr(output, case: Case) -> None:
    (times,) = case.args
    med, iqr = _pair(output)
    s = summarize(times)
    t = np.sort(np.asarray(times, np.float64))
    require(t[0] <= med <= t[-1], f"your median {med:g} lies outside the times' range [{t[0]:g}, {t[-1]:g}]")
    if not _close(med, s.median):
        n = len(t)
        middle = (f"the middle value of the sorted times, t[{n // 2}] = {t[n // 2]:g}" if n % 2
                  else f"the mean of the two middle values of the sorted times, ({t[n // 2 - 1]:g} + {t[n // 2]:g}) / 2")
        raise Failure(
            f"median: got {med:g}, expected {s.median:g}, {middle} (sorted: {fmt(t, 12)}). The median is what a "
            "typical call costs: one call slowed down by another process cannot move it, unlike the mean.")
    require(iqr >= 0, f"the IQR q3 - q1 cannot be negative, got {iqr:g}")
    if not _close(iqr, s.iqr):
        raise Failure(
            f"IQR: got {iqr:g}, expected q3 - q1 = {s.q3:g} - {s.q1:g} = {s.iqr:g}, with the quartiles of numpy's "
            "default linear interpolation (np.percentile(times, [25, 75])). The IQR is the spread of the middle half "
            "of the calls: a few slow calls on a busy machine hardly change it.")


def _halves(times) -> float:
    t = np.sort(np.asarray(times, np.float64))
    n = len(t)
    if n < 2:
        return 0.0
    return float(np.median(t[(n + 1) // 2:]) - np.median(t[: n // 2]))


def _iqr(times) -> float:
    return summarize(times).iqr


MEDIAN_IQR = Exercise(
    name="median_iqr",
    signature="median_iqr(times) -> (median, iqr)",
    make_cases=_median_iqr_cases,
    verify=_verify_median_iqr,
    fingerprint=lambda output, case: tuple(float(as_array(v)) for v in output),
    mistakes=(
        Mistake("mean_std",
                "You returned the mean and the standard deviation. One slow call (another process took the core) "
                "pulls both far up; the median and the inter-quartile range q3 - q1 describe the typical call.",
                lambda t: (float(np.mean(t)), float(np.std(t)))),
        Mistake("range",
                "Your IQR is max - min, the full range, which the single slowest call decides. The IQR is q3 - q1, "
                "the spread of the middle half: np.percentile(times, [25, 75]).",
                lambda t: (float(np.median(t)), float(np.max(t) - np.min(t)))),
        Mistake("unsorted_middle",
                "Your median is the middle element of the list as given. The median is the middle of the *sorted* "
                "times (np.median sorts for you).",
                lambda t: (float(t[len(t) // 2]), _iqr(t))),
        Mistake("upper_middle",
                "For an even number of times your median is the upper of the two middle values; the median is "
                "their mean (np.median does this).",
                lambda t: (float(np.sort(t)[len(t) // 2]), _iqr(t))),
        Mistake("tukey_halves",
                "Your quartiles are the medians of the lower and upper halves. That is a valid textbook definition, "
                "but summarize (and this notebook) uses numpy's linear interpolation: np.percentile(times, [25, 75]).",
                lambda t: (float(np.median(t)), _halves(t))),
    ),
)


# ----------------------------------------------------------------------------- paired speed-up
def _speedup_cases(rng: np.random.Generator) -> list[Case]:
    """Reference and candidate times of the same rounds; some rounds hit by load bursts."""
    cases = []

    def quiet(n: int, ref_ms: float, speed: float):
        ref = ref_ms * (1 + rng.gamma(2.0, 0.02, n))
        cand = ref_ms / speed * (1 + rng.gamma(2.0, 0.02, n))
        return ref, cand

    cases.append(([8.0], [5.0], "one round"))
    for n, bursts, factor in ((7, 3, 3.0), (9, 4, 2.5), (10, 4, 4.0), (12, 5, 2.0)):
        ref, cand = quiet(n, float(rng.uniform(5, 20)), float(rng.uniform(1.2, 2.5)))
        hit = np.sort(rng.choice(n, bursts, replace=False))
        load = np.ones(n)
        load[hit] = factor * rng.uniform(0.8, 1.2, bursts)
        cases.append((ref * load, cand * load,
                      f"{n} rounds, rounds {fmt(hit)} slowed down by a load burst (both calls of a round alike)"))
    ref, cand = quiet(8, 12.0, 0.8)
    cand[int(rng.integers(8))] *= 6.0
    cases.append((ref, cand, "8 rounds, candidate slower than the reference, one candidate call hit alone"))
    ref, cand = quiet(11, 6.0, 3.0)
    load = 1 + np.linspace(0, 2, 11)  # a slow drift (another job ramping up)
    ref, cand = ref * load, cand * load
    cand[int(rng.integers(11))] *= 5.0
    cases.append((ref, cand, "11 rounds, load drifting up over the run, one candidate call hit alone"))
    ref, cand = quiet(7, 10.0, 1.6)
    cases.append((ref, cand, "7 rounds on a quiet machine"))
    cases.append(([8.0, 9.0], [4.0, 6.0], "two rounds"))
    return [Case(([round(float(v), 5) for v in r], [round(float(v), 5) for v in c]),
                 f"{label}: reference {fmt(np.round(r, 3), 12)}, candidate {fmt(np.round(c, 3), 12)}")
            for r, c, label in cases]


def _verify_speedup(output, case: Case) -> None:
    ref, cand = (np.asarray(a, np.float64) for a in case.args)
    value = _time(output, "your speed-up")
    expected = _paired_speedup(ref, cand)
    if _close(value, expected):
        return
    ratios = ref / cand
    msg = (f"got {value:.6g}, expected {expected:.6g}: the median over rounds of the ratios reference[r] / "
           f"candidate[r] = {fmt(np.round(ratios, 4), 12)} (a speed-up > 1 means the candidate is faster).")
    if "burst" in case.label or "drift" in case.label:
        msg += (" Here the load changes from round to round. It multiplies both timings of a round alike, so "
                "each round's ratio is what a quiet machine would give and their median does not change with the "
                "load; the medians or means of the two lists taken separately do.")
    raise Failure(msg)


def _ratio(ref, cand) -> np.ndarray:
    return np.asarray(ref, np.float64) / np.asarray(cand, np.float64)


PAIRED_SPEEDUP = Exercise(
    name="paired_speedup",
    signature="paired_speedup(reference, candidate) -> float",
    make_cases=_speedup_cases,
    verify=_verify_speedup,
    fingerprint=lambda output, case: None if output is None else float(as_array(output)),
    mistakes=(
        Mistake("ratio_of_medians",
                "You divided the two medians, median(reference) / median(candidate): the unpaired speed-up. When "
                "load bursts hit some rounds, they move the two medians differently; take the ratio within each "
                "round first (reference[r] / candidate[r]), then the median of those ratios.",
                lambda ref, cand: float(np.median(ref) / np.median(cand))),
        Mistake("inverted",
                "Your ratio is upside down: the speed-up is reference time / candidate time, above 1 when the "
                "candidate is faster.",
                lambda ref, cand: float(np.median(_ratio(cand, ref)))),
        Mistake("mean_of_ratios",
                "You averaged the per-round ratios. A call hit by load on its own makes one ratio extreme and drags "
                "the mean; take the median of the ratios.",
                lambda ref, cand: float(np.mean(_ratio(ref, cand)))),
        Mistake("ratio_of_means",
                "You divided the mean times, mean(reference) / mean(candidate): unpaired, and the slowest rounds "
                "weigh most. Take the ratio within each round, then the median of the ratios.",
                lambda ref, cand: float(np.mean(ref) / np.mean(cand))),
        Mistake("sorted_separately",
                "You sorted the two lists separately before dividing, which breaks the pairing: reference[r] must "
                "be divided by the candidate time of the same round r, measured under the same load.",
                lambda ref, cand: float(np.median(_ratio(np.sort(ref), np.sort(cand))))),
    ),
)


# ----------------------------------------------------------------------------- interleaved order
def _order_cases(rng: np.random.Generator) -> list[Case]:
    pairs = [(1, 1), (1, 3), (4, 1), (2, 4), (3, 6), (3, 5), (4, 8), (5, 3), (6, 12)]
    pairs += [(int(rng.integers(2, 7)), int(rng.integers(2, 13))) for _ in range(2)]
    return [Case((n, r), f"n_variants={n}, repeats={r}") for n, r in pairs]


def _as_pairs(output: Any) -> np.ndarray:
    """The output as an ``(N, 2)`` int array of (round, variant) rows, or a Failure."""
    require(output is not None, "your function returned None; it should return a list of (round, variant) pairs "
                                "(is a `return` missing?)")
    try:
        rows = [tuple(p) for p in output]
    except TypeError:
        raise Failure(f"return a list of (round, variant) pairs, got {type(output).__name__}") from None
    require(all(len(p) == 2 for p in rows), "every entry should be a pair (round, variant)")
    try:
        values = np.asarray([[float(as_array(v)) for v in p] for p in rows], dtype=np.float64).reshape(len(rows), 2)
    except (TypeError, ValueError):
        raise Failure("the rounds and variants should be integers (indices)") from None
    odd = values[values != np.round(values)]
    require(odd.size == 0, f"the rounds and variants should be integers (indices), got {fmt(odd[:4])}")
    return values.astype(np.int64)


def _verify_order(output, case: Case) -> None:
    n, repeats = case.args
    order = _as_pairs(output)
    require(len(order) == n * repeats,
            f"{repeats} rounds of {n} variants are {n * repeats} calls, got {len(order)} pairs")
    rounds, variants = order[:, 0], order[:, 1]
    bad = np.flatnonzero((variants < 0) | (variants >= n))
    if bad.size:
        raise Failure(f"entry {bad[0]} runs variant {variants[bad[0]]}, which is not a variant index 0..{n - 1}")
    want_rounds = np.repeat(np.arange(repeats), n)
    bad = np.flatnonzero(rounds != want_rounds)
    if bad.size:
        i = int(bad[0])
        raise Failure(
            f"entry {i} belongs to round {rounds[i]}, but calls {i - i % n}..{i - i % n + n - 1} should all be round "
            f"{want_rounds[i]}: the rounds run one after the other (0, 1, ..., {repeats - 1}), all the calls of one "
            "round together, so that a burst of load from another process falls on every variant of that round "
            "alike (and cancels in the paired ratios).")
    for r in range(repeats):
        got = variants[r * n:(r + 1) * n]
        if sorted(got.tolist()) != list(range(n)):
            missing = sorted(set(range(n)) - set(got.tolist()))
            raise Failure(
                f"round {r} runs variants {fmt(got)}: every round must run each of the {n} variants exactly once "
                f"(missing: {fmt(missing)}), or the variants are not timed under the same conditions.")
    if repeats % n == 0 and n > 1:
        positions = np.zeros((n, n), dtype=np.int64)  # [variant, position]
        for r in range(repeats):
            positions[variants[r * n:(r + 1) * n], np.arange(n)] += 1
        if (positions != repeats // n).any():
            v, p = (int(a) for a in np.argwhere(positions != repeats // n)[0])
            raise Failure(
                f"variant {v} runs at position {p} of its round in {positions[v, p]} of the {repeats} rounds; with "
                f"repeats a multiple of n_variants every variant should hold every position equally often "
                f"({repeats // n} times). The first call of a round is often slower (caches cold, the clock ramping "
                "up after a pause), so a variant that is always first pays for it every time.")
    for r in range(repeats):
        got = variants[r * n:(r + 1) * n]
        want = (r + np.arange(n)) % n
        if (got != want).any():
            raise Failure(
                f"round {r} runs variants {fmt(got)}, expected {fmt(want)}: position k of round r runs variant "
                f"(r + k) mod {n}, so round r starts with variant r mod {n} and the order rotates by one each round "
                "(every variant takes its turn at being first).")


INTERLEAVED_ORDER = Exercise(
    name="interleaved_order",
    signature="interleaved_order(n_variants, repeats) -> list of (round, variant)",
    make_cases=_order_cases,
    verify=_verify_order,
    fingerprint=lambda output, case: _as_pairs(output),
    mistakes=(
        Mistake("no_rotation",
                "Every round runs the variants in the same order 0, 1, ..., n-1, so variant 0 is always first and "
                "pays for the cold start of every round. Rotate by the round: position k runs (r + k) mod n.",
                lambda n, repeats: [(r, k) for r in range(repeats) for k in range(n)]),
        Mistake("variant_major",
                "You timed all rounds of variant 0, then all rounds of variant 1, ...: a slow drift (another job "
                "starting, the CPU heating up) then falls on one variant only. Loop over the rounds outside and the "
                "variants inside.",
                lambda n, repeats: [(r, v) for v in range(n) for r in range(repeats)]),
        Mistake("wrong_direction",
                "You rotated the other way: round r should start with variant r mod n (position k runs "
                "(r + k) mod n), yours starts with (-r) mod n.",
                lambda n, repeats: [(r, (k - r) % n) for r in range(repeats) for k in range(n)]),
        Mistake("counting_down",
                "Your rounds start with variant r mod n but then count down; position k of round r runs "
                "(r + k) mod n, counting up.",
                lambda n, repeats: [(r, (r - k) % n) for r in range(repeats) for k in range(n)]),
    ),
)


#: this module's exercises, in teaching order
EXERCISES: tuple[Exercise, ...] = (MEDIAN_IQR, PAIRED_SPEEDUP, INTERLEAVED_ORDER)
#: {name: the package's implementation with the exercise's signature}
SOLUTIONS: dict[str, Callable] = {
    "median_iqr": lambda times: (summarize(times).median, summarize(times).iqr),
    "paired_speedup": _paired_speedup,
    "interleaved_order": _interleaved_order,
}
