"""The checking engine: run a student's function on seeded random cases, test properties, name mistakes.

An :class:`Exercise` bundles

* ``make_cases(rng) -> list[Case]``: seeded inputs, including the edge cases (non-square layers,
  ``G = 1``, odd channel counts that must stay dense);
* ``verify(output, case)``: the properties a correct answer has (shape, dtype, an inverse composes
  to the identity, the closed-form counts, the grouped conv equals the masked dense conv, ...);
  it raises :class:`Failure` with a readable message that explains the property, never the code;
* ``mistakes``: typical wrong versions. When the student's function fails, it is run beside every
  wrong version on the same inputs; if it behaves exactly like one of them (same fingerprint on
  every case), that mistake's hint is shown.

A student's exception never escapes: it becomes a failing case that quotes the exception and the
offending line.
"""
from __future__ import annotations

import copy
import html
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch

__all__ = [
    "Case",
    "CheckResult",
    "Exercise",
    "Failure",
    "Mistake",
    "as_array",
    "check",
    "fingerprints_match",
    "number_print",
    "one_number",
]


class Failure(Exception):
    """Raised by an exercise's ``verify`` with a message for the student."""


def as_array(x: Any) -> np.ndarray:
    """THE converter of this package: numpy array, torch tensor, list or scalar -> ``np.ndarray``.

    Used on the student's outputs *and* on the package's reference functions, so the checks do not
    depend on whether a function returns numpy arrays or torch tensors.
    """
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    if isinstance(x, (list, tuple)) and any(isinstance(v, torch.Tensor) for v in x):
        return np.asarray([as_array(v) for v in x])
    return np.asarray(x)


@dataclass(frozen=True)
class Case:
    """One input: the positional arguments and a short description shown when it fails."""

    args: tuple
    label: str


@dataclass(frozen=True)
class Mistake:
    """A typical wrong version of an exercise, recognised by behaviour and named by ``hint``."""

    name: str
    hint: str
    fn: Callable[..., Any]


def _default_fingerprint(output: Any, case: Case) -> Any:
    if output is None:
        return None
    try:
        arr = as_array(output)
    except Exception:  # an object numpy cannot convert: compare its repr
        return repr(output)
    if arr.dtype == object:
        return repr(output)
    return arr


@dataclass(frozen=True)
class Exercise:
    """What a checker needs: cases, properties, typical mistakes."""

    name: str
    signature: str
    make_cases: Callable[[np.random.Generator], list[Case]]
    verify: Callable[[Any, Case], None]
    mistakes: tuple[Mistake, ...] = ()
    fingerprint: Callable[[Any, Case], Any] = _default_fingerprint


@dataclass(frozen=True)
class CheckResult:
    """Outcome of a check; prints as text and renders as HTML in a notebook."""

    exercise: str
    passed: bool
    cases: int
    message: str = ""
    case: str | None = None
    case_index: int | None = None
    mistake: str | None = None
    hint: str | None = None
    not_implemented: bool = False

    def __bool__(self) -> bool:
        return self.passed

    def summary(self) -> str:
        if self.passed:
            return f"{self.exercise}: passed: {self.cases} randomised cases"
        if self.not_implemented:
            return f"{self.exercise}: not implemented yet"
        return f"{self.exercise}: failed on case {self.case_index} of {self.cases} ({self.case})"

    def __str__(self) -> str:
        lines = [("\u2713 " if self.passed else "\u2717 ") + self.summary()]
        if self.message:
            lines.append("  " + self.message.replace("\n", "\n  "))
        if self.hint:
            lines.append("  Hint: " + self.hint)
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        colour, border = ("#e6f4ea", "#34a853") if self.passed else ("#fdecea", "#d93025")
        parts = [f"<b>{html.escape(('✓ ' if self.passed else '✗ ') + self.summary())}</b>"]
        if self.message:
            parts.append(f"<pre style='white-space: pre-wrap; margin: 4px 0'>{html.escape(self.message)}</pre>")
        if self.hint:
            parts.append(f"<div><b>Hint:</b> {html.escape(self.hint)}</div>")
        return (
            f"<div style='background: {colour}; border-left: 4px solid {border}; padding: 6px 10px'>"
            + "".join(parts)
            + "</div>"
        )


@dataclass
class _Outcome:
    output: Any = None
    error: BaseException | None = None
    where: str = ""


def _call(fn: Callable, case: Case) -> _Outcome:
    # Deep copies: a function that edits its inputs in place must not change the next call's inputs.
    args = copy.deepcopy(case.args)
    try:
        return _Outcome(output=fn(*args))
    except Exception as exc:  # the student's error becomes a failing case, never a crash
        frames = traceback.extract_tb(exc.__traceback__)
        where = ""
        if frames:
            last = frames[-1]
            where = f" (line {last.lineno}: {last.line})" if last.line else f" (line {last.lineno})"
        return _Outcome(error=exc, where=where)


def _error_print(outcome: _Outcome) -> tuple[str, str]:
    assert outcome.error is not None
    return ("raised", type(outcome.error).__name__)


def fingerprints_match(a: Any, b: Any, rtol: float = 1e-7, atol: float = 1e-9) -> bool:
    """Do two fingerprints agree? Arrays by shape and value (inf == inf), tuples elementwise."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(fingerprints_match(x, y, rtol, atol) for x, y in zip(a, b))
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    try:
        x, y = np.asarray(a), np.asarray(b)
        if x.shape != y.shape:
            return False
        if x.dtype == object or y.dtype == object:
            return bool(np.all(x == y))
        return bool(np.allclose(x.astype(np.float64), y.astype(np.float64), rtol=rtol, atol=atol, equal_nan=True))
    except (TypeError, ValueError):
        return False


def _print_of(ex: Exercise, outcome: _Outcome, case: Case) -> Any:
    if outcome.error is not None:
        return _error_print(outcome)
    try:
        return ex.fingerprint(outcome.output, case)
    except Exception:
        return ("unreadable", repr(outcome.output)[:80])


def _recognise(ex: Exercise, cases: Sequence[Case], student: Sequence[_Outcome]) -> Mistake | None:
    student_prints = [_print_of(ex, o, c) for o, c in zip(student, cases)]
    for mistake in ex.mistakes:
        if all(
            fingerprints_match(sp, _print_of(ex, _call(mistake.fn, c), c)) for sp, c in zip(student_prints, cases)
        ):
            return mistake
    return None


def check(ex: Exercise, student_fn: Callable, *, seed: int = 0) -> CheckResult:
    """Run ``student_fn`` on the exercise's cases (seeded); the first failing case and a hint, or a pass."""
    if not callable(student_fn):
        return CheckResult(
            ex.name, False, 0, f"expected a function {ex.signature}, got {type(student_fn).__name__}"
        )
    cases = ex.make_cases(np.random.default_rng(seed))
    outcomes: list[_Outcome] = []
    first: tuple[int, str] | None = None
    for index, case in enumerate(cases):
        outcome = _call(student_fn, case)
        outcomes.append(outcome)
        if first is not None:
            continue
        if isinstance(outcome.error, NotImplementedError):
            # An untouched stub: no point running the other cases or looking for mistakes.
            return CheckResult(
                ex.name, False, len(cases),
                f"{ex.signature} raised NotImplementedError: replace the `raise NotImplementedError` "
                "line of the stub with your code.",
                case=case.label, case_index=index + 1, not_implemented=True,
            )
        if outcome.error is not None:
            msg = f"your function raised {type(outcome.error).__name__}: {outcome.error}{outcome.where}"
        else:
            try:
                ex.verify(outcome.output, case)
                continue
            except Failure as exc:
                msg = str(exc)
            except Exception as exc:  # an output so odd that a property could not even be evaluated
                msg = f"could not read your output ({type(outcome.output).__name__}): {type(exc).__name__}: {exc}"
        first = (index, msg)
    if first is None:
        return CheckResult(ex.name, True, len(cases))
    index, msg = first
    mistake = None
    if any(o.error is None for o in outcomes):
        mistake = _recognise(ex, cases, outcomes)
    return CheckResult(
        ex.name, False, len(cases), msg, case=cases[index].label, case_index=index + 1,
        mistake=mistake.name if mistake else None,
        hint=mistake.hint if mistake else None,
    )


# ----------------------------------------------------------------------------- shared verify helpers
def require(condition: bool, message: str) -> None:
    """``raise Failure(message)`` unless ``condition``."""
    if not condition:
        raise Failure(message)


def numeric_array(output: Any, what: str) -> np.ndarray:
    """The output as a numeric numpy array, or a Failure saying what came back instead."""
    require(output is not None, f"your function returned None; it should return {what} (is a `return` missing?)")
    arr = as_array(output)
    require(arr.dtype != object, f"expected {what}, got {type(output).__name__} that is not a numeric array")
    require(arr.dtype.kind in "biuf", f"expected {what} with numbers, got dtype {arr.dtype}")
    return arr


def one_number(output: Any, what: str) -> float:
    """The output as one number (a Python number, a 0-d or one-element array or tensor), or a Failure
    saying what came back instead."""
    arr = numeric_array(output, what)
    require(arr.size == 1, f"expected {what} (one number), got an array of shape {arr.shape}")
    return float(arr.reshape(()))


def number_print(output: Any, case: Case) -> float | None:
    """Fingerprint of a one-number answer (``None`` stays ``None``)."""
    return None if output is None else float(as_array(output).reshape(()))


def expect_shape(arr: np.ndarray, shape: tuple, what: str, why: str = "") -> None:
    require(
        arr.shape == tuple(shape),
        f"{what} should have shape {tuple(shape)}{(' ' + why) if why else ''}, got {arr.shape}",
    )


def fmt(values: Any, limit: int = 16) -> str:
    """A short printed form of an index array or vector."""
    arr = np.asarray(values).ravel()
    text = ", ".join(f"{v:g}" if isinstance(v, (float, np.floating)) else str(v) for v in arr[:limit].tolist())
    return f"[{text}{', ...' if arr.size > limit else ''}]"
