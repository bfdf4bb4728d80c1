"""Exercises on the schedules of Algorithm 1 and the final equivalence check (notebook 04).

* One step of the **lambda controller** after epoch ``t`` of the sparsification phase (after the
  warm-up), with ``s_t`` the model sparsity, ``gain = s_t - s_(t-1)`` (0 when there is no previous
  sparsity) and ``expected = (target - s_t) / epochs_left``, ``epochs_left = max(E - t, 1)``::

      s_t <  target and gain < expected :  lam + dlam           (sparsifying too slowly)
      s_t >= target                     :  max(lam - dlam, 0)   (at or past the target)
      otherwise                         :  lam

  (:class:`~strucspars_viz.controller.LambdaController`).
* The **finetuning step schedule** (``lr_schedule: step``, :func:`~strucspars_viz.training.optim.make_optimizer`):
  milestones ``m1 = max(1, round(E / 2))`` and ``m2 = max(1, round(3 E / 4))`` (Python's ``round``, a
  milestone that appears twice counts once); in the 0-based epoch ``e`` the learning rate is
  ``base_lr * 0.1 ** #{m in {m1, m2}: m <= e}``.
* The **equivalence rule** of :func:`~strucspars_viz.export.compress_and_check`: the compressed model's
  output ``b`` agrees with the masked model's output ``a`` iff
  ``max |a - b| < tol * max(1, max |a|)``, and a NaN (or inf) never counts as agreement.
"""
from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Callable

import numpy as np
import torch

from ..controller import LambdaController
from ..export import EQUIVALENCE_TOL, is_equivalent
from ..training.optim import make_optimizer
from .core import Case, Exercise, Failure, Mistake, as_array, number_print, one_number, require

__all__ = ["EXERCISES", "FINETUNE_LR", "LAMBDA_UPDATE", "OUTPUTS_AGREE", "SOLUTIONS",
           "finetune_lr", "lambda_update", "outputs_agree"]


# ----------------------------------------------------------------------------- lambda controller step
def lambda_update(lam: float, sparsity: float, prev_sparsity: float | None, target: float,
                  epochs_left: int, dlam: float) -> float:
    """The ``lam`` for the next epoch: one post-warm-up step of :class:`LambdaController`.

    ``epochs_left = max(E - t, 1)`` for epoch ``t`` (1-based) of ``E``; ``prev_sparsity`` is ``None``
    when no earlier epoch was measured (no warm-up), which counts as a gain of 0.
    """
    t = 2  # any epoch after a one-epoch warm-up: the controller then only increases, decreases or keeps
    ctrl = LambdaController(target=float(target), total_epochs=t + int(epochs_left), warmup_epochs=1,
                            lam0=0.0, dlam=float(dlam), lam=float(lam), epochs_done=t - 1,
                            prev_sparsity=None if prev_sparsity is None else float(prev_sparsity))
    return ctrl.step(float(sparsity))


def _lambda_cases(rng: np.random.Generator) -> list[Case]:
    d = float(rng.choice([1e-4, 2e-6, 5e-4]))
    lam = lambda k: round(float(k) * d, 12)  # noqa: E731  (lam as a multiple of dlam)
    specs = [
        # lam, s_t, s_(t-1), target, epochs_left, dlam, label
        (lam(3), 0.20, 0.195, 0.5, 30, d, "too slow: gain 0.005 < expected 0.3 / 30 = 0.01"),
        (lam(4), 0.30, 0.25, 0.5, 10, d, "on track: gain 0.05 >= expected 0.02"),
        (lam(5), 0.56, 0.50, 0.5, 20, d, "past the target"),
        (lam(2), 0.5, 0.45, 0.5, 10, d, "exactly at the target (s_t == target)"),
        (0.3 * d, 0.62, 0.58, 0.6, 5, d, "past the target, lam < dlam (lam near 0)"),
        (0.0, 0.7, 0.7, 0.7, 8, d, "lam = 0 exactly at the target"),
        (lam(6), 0.25, 0.125, 0.5, 2, d, "gain exactly equals the expected gain 0.25 / 2"),
        (lam(1), 0.10, None, 0.5, 40, d, "no previous sparsity (prev_sparsity=None, first epoch, no warm-up)"),
        (lam(7), 0.40, 0.38, 0.5, 1, d, "last epoch (epochs_left = 1)"),
        (lam(3), 0.28, 0.31, 0.5, 12, d, "sparsity fell (negative gain)"),
        (lam(2), 0.48, 0.40, 0.5, 5, d, "a big jump to just below the target (gain 0.08 > target - s_t)"),
    ]
    # random epochs: one too slow, one on track, one past the target
    for kind in ("slow", "on track", "past"):
        target = float(np.round(rng.uniform(0.3, 0.8), 3))
        n = int(rng.integers(2, 60))
        if kind == "past":
            s = float(np.round(target + rng.uniform(0.001, 0.1), 4))
            prev = float(np.round(s - rng.uniform(-0.02, 0.05), 4))
        else:
            s = float(np.round(rng.uniform(0.05, target - 0.05), 4))
            expected = (target - s) / n
            gain = expected * (rng.uniform(0.1, 0.6) if kind == "slow" else rng.uniform(1.5, 0.9 * n))
            prev = float(np.round(s - gain, 6))
        specs.append((lam(int(rng.integers(0, 20))), s, prev, target, n, d, f"random epoch ({kind})"))
    cases = []
    for lam_, s, prev, target, n, dlam, label in specs:
        cases.append(Case((lam_, s, prev, target, n, dlam),
                          f"{label}: lam={lam_:.3g}, sparsity={s:g}, prev_sparsity={prev}, target={target:g}, "
                          f"epochs_left={n}, dlam={dlam:g}"))
    return cases


def _verify_lambda(output, case: Case) -> None:
    lam, s, prev, target, n, dlam = case.args
    got = one_number(output, "the new lam")
    want = lambda_update(*case.args)
    gain = 0.0 if prev is None else s - prev
    expected = (target - s) / n
    if math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-15):
        return
    gain_text = "gain = 0 (no previous sparsity)" if prev is None else f"gain = s_t - s_(t-1) = {gain:.4g}"
    if s < target and gain < expected:
        why = (f"s_t = {s:g} is below the target {target:g} and the {gain_text} is below the expected gain "
               f"(target - s_t) / epochs_left = {expected:.4g}: the sparsity grows too slowly, so lam rises by "
               f"dlam to {want:.4g}")
    elif s >= target:
        why = (f"s_t = {s:g} is at or past the target {target:g}: lam falls by dlam, but never below 0 "
               f"(max(lam - dlam, 0) = {want:.4g})")
    else:
        why = (f"s_t = {s:g} is below the target {target:g}, but the {gain_text} already reaches the expected "
               f"gain (target - s_t) / epochs_left = {expected:.4g}: the sparsity is on track, so lam stays "
               f"{want:.4g}")
    raise Failure(f"got lam = {got:.4g}; {why}")


def _lambda_rule(lam, s, prev, target, n, dlam, *, clip=True, at_target_decreases=True, use_gain=True,
                 divide=True):
    gain = 0.0 if prev is None else s - prev
    expected = (target - s) / (n if divide else 1)
    if s < target and (not use_gain or gain < expected):
        return lam + dlam
    if s > target or (at_target_decreases and s == target):
        return max(lam - dlam, 0.0) if clip else lam - dlam
    return lam


def _swapped(lam, s, prev, target, n, dlam):
    gain = 0.0 if prev is None else s - prev
    if s < target and gain < (target - s) / n:
        return max(lam - dlam, 0.0)
    if s >= target:
        return lam + dlam
    return lam


LAMBDA_UPDATE = Exercise(
    name="lambda_update",
    signature="lambda_update(lam, sparsity, prev_sparsity, target, epochs_left, dlam) -> float",
    make_cases=_lambda_cases,
    verify=_verify_lambda,
    fingerprint=number_print,
    mistakes=(
        Mistake("no_clip",
                "lam is the strength of a penalty and must stay >= 0: when it falls by dlam, clip at 0 "
                "(max(lam - dlam, 0)).",
                lambda *a: _lambda_rule(*a, clip=False)),
        Mistake("strict_target",
                "Reaching the target exactly (s_t == target) already counts as 'at or past the target': lam "
                "must fall there too (>=, not >).",
                lambda *a: _lambda_rule(*a, at_target_decreases=False)),
        Mistake("ignore_gain",
                "Below the target, lam rises only when the epoch's gain s_t - s_(t-1) falls short of the expected "
                "gain (target - s_t) / epochs_left; a run that is on track keeps its lam.",
                lambda *a: _lambda_rule(*a, use_gain=False)),
        Mistake("whole_distance",
                "The expected gain of one epoch is the remaining distance spread over the remaining epochs, "
                "(target - s_t) / epochs_left, not the whole distance target - s_t.",
                lambda *a: _lambda_rule(*a, divide=False)),
        Mistake("swapped",
                "Increase and decrease are swapped: a slow run (below the target, small gain) needs a stronger "
                "penalty (lam + dlam); at or past the target the penalty is relaxed (lam - dlam, clipped at 0).",
                _swapped),
    ),
)


# ----------------------------------------------------------------------------- finetuning step schedule
def finetune_lr(epoch: int, epochs: int, base_lr: float) -> float:
    """The learning rate of finetuning epoch ``epoch`` (0-based) of ``epochs`` with ``lr_schedule: step``:
    the real ``MultiStepLR`` of :func:`make_optimizer`, stepped once after every earlier epoch."""
    cfg = SimpleNamespace(finetune_lr=float(base_lr), momentum=0.9, weight_decay=0.0,
                          finetune_epochs=int(epochs), lr_schedule="step")
    opt, sched = make_optimizer(torch.nn.Linear(1, 1), cfg, "finetune")
    for _ in range(int(epoch)):
        opt.step()  # no gradients: nothing moves, but the scheduler sees the usual call order
        sched.step()
    return float(opt.param_groups[0]["lr"])


def _milestones(epochs: int) -> list[int]:
    e = max(int(epochs), 1)
    return sorted({max(1, int(round(0.5 * e))), max(1, int(round(0.75 * e)))})


def _lr_cases(rng: np.random.Generator) -> list[Case]:
    base = float(rng.choice([0.1, 0.05, 0.01]))
    points = [
        (0, 160, "first epoch"), (79, 160, "last epoch before 50 %"), (80, 160, "first epoch after 50 %"),
        (120, 160, "first epoch after 75 %"), (159, 160, "last epoch"),
        (2, 3, "E = 3: both milestones at epoch 2"), (3, 7, "E = 7: round(3.5) = 4"),
        (4, 7, "E = 7, epoch 4"), (7, 10, "E = 10: round(7.5) = 8"), (0, 1, "a single epoch"),
        (1, 2, "E = 2, epoch 1"),
    ]
    for _ in range(3):
        epochs = int(rng.integers(4, 300))
        points.append((int(rng.integers(0, epochs)), epochs, "random"))
    return [Case((e, n, base), f"{label}: epoch={e}, epochs={n}, base_lr={base:g}") for e, n, label in points]


def _verify_lr(output, case: Case) -> None:
    epoch, epochs, base = case.args
    got = one_number(output, "the learning rate")
    want = finetune_lr(epoch, epochs, base)
    if math.isclose(got, want, rel_tol=1e-6, abs_tol=0.0):
        return
    m1, m2 = max(1, int(round(0.5 * epochs))), max(1, int(round(0.75 * epochs)))
    ms = _milestones(epochs)
    passed = [m for m in ms if m <= epoch]
    dup = " (the same epoch twice: it counts once)" if m1 == m2 else ""
    raise Failure(
        f"got lr = {got:.6g}; with E = {epochs} the milestones are round(E/2) = {m1} and round(3E/4) = {m2}{dup}, "
        f"and the 0-based epoch {epoch} has reached {len(passed)} of them (a milestone m counts from epoch m on), "
        f"so the lr is base_lr * 0.1^{len(passed)} = {want:.6g}"
    )


def _lr_rule(epoch, epochs, base, *, rounding=round, after=False, gamma=0.1, fractions=(0.5, 0.75),
             unique=True):
    ms = [max(1, int(rounding(f * epochs))) for f in fractions]
    if unique:
        ms = sorted(set(ms))
    k = sum((epoch > m) if after else (epoch >= m) for m in ms)
    return base * gamma ** k


FINETUNE_LR = Exercise(
    name="finetune_lr",
    signature="finetune_lr(epoch, epochs, base_lr) -> float",
    make_cases=_lr_cases,
    verify=_verify_lr,
    fingerprint=number_print,
    mistakes=(
        Mistake("late_by_one",
                "The decay starts one epoch late: the scheduler steps after every epoch, so epoch e (0-based) "
                "already runs with the milestone m applied when e >= m.",
                lambda e, n, b: _lr_rule(e, n, b, after=True)),
        Mistake("single_decay",
                "The step schedule decays twice: x0.1 after 50 % and again after 75 % of the epochs.",
                lambda e, n, b: _lr_rule(e, n, b, fractions=(0.5,))),
        Mistake("gamma_001",
                "Each milestone multiplies the lr by 0.1 (gamma = 0.1), not by 0.01.",
                lambda e, n, b: _lr_rule(e, n, b, gamma=0.01)),
        Mistake("floor_milestones",
                "The milestones are rounded to the nearest epoch (Python's round, as optim.py does), not cut "
                "down with int(): for E = 7, round(3.5) = 4.",
                lambda e, n, b: _lr_rule(e, n, b, rounding=math.floor)),
        Mistake("duplicate_milestone",
                "When both milestones fall on the same epoch (few epochs, e.g. E = 3) the lr decays once there: "
                "the milestones are a set, so a repeated one counts once.",
                lambda e, n, b: _lr_rule(e, n, b, unique=False)),
    ),
)


# ----------------------------------------------------------------------------- equivalence rule
def outputs_agree(a: torch.Tensor, b: torch.Tensor, tol: float) -> bool:
    """Does the compressed model's output ``b`` equal the masked model's output ``a``?
    ``max |a - b| < tol * max(1, max |a|)``, NaN / inf never agreeing (:func:`is_equivalent`)."""
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    return is_equivalent(float((a - b).abs().max()), tol, float(a.abs().max()))


def _agree_cases(rng: np.random.Generator) -> list[Case]:
    gen = torch.Generator().manual_seed(int(rng.integers(1 << 30)))
    tol = EQUIVALENCE_TOL
    n = int(rng.integers(4, 9))

    def logits(scale: float) -> torch.Tensor:
        return (torch.randn(n, 10, generator=gen) * scale).float()

    def shifted(a: torch.Tensor, delta: float, where: tuple = (0, 0)) -> torch.Tensor:
        b = a.clone()
        b[where] += delta
        return b

    def noisy(a: torch.Tensor, size: float) -> torch.Tensor:
        return (a + (torch.rand(a.shape, generator=gen) * 2 - 1) * size).float()

    specs = []
    a = logits(3.0)
    specs.append((a, a.clone(), tol, "identical outputs"))
    a = logits(4.0)
    specs.append((a, noisy(a, 1e-6), tol, "float32 rounding noise (1e-6) on logits of size ~4"))
    a = logits(0.2)
    a = a / (a.abs().max() * 2)  # max |a| = 0.5: below 1, the bound is absolute
    specs.append((a, shifted(a, 2 * tol), tol, "outputs below 1, difference 2 tol"))
    specs.append((a, shifted(a, 0.9 * tol, (1, 3)), tol, "outputs below 1, difference 0.9 tol"))
    a = logits(1.0)
    a = a / a.abs().max() * 0.01  # max |a| = 0.01: a purely relative bound would be 1e-6
    specs.append((a, shifted(a, 0.5 * tol), tol, "tiny outputs (max |a| = 0.01), difference 0.5 tol"))
    a = logits(1.0)
    a = a / a.abs().max() * 2e4  # max |a| = 2e4: the bound is tol * 2e4 = 2
    specs.append((a, shifted(a, 0.5, (2, 5)), tol, "large outputs (max |a| = 2e4), difference 0.5"))
    specs.append((a, shifted(a, 4.0, (1, 1)), tol, "large outputs (max |a| = 2e4), difference 4"))
    a = logits(2.0)
    b = a.clone()
    b[0, 0] += 0.01  # one large difference among many zeros: the mean is tiny, the max is not
    specs.append((a, b, tol, "one entry differs by 0.01, all others equal"))
    a = logits(2.0)
    b = a.clone()
    b[1, 2] = float("nan")
    specs.append((a, b, tol, "a NaN in the compressed output"))
    a = logits(2.0)
    a[0, 4] = float("nan")
    specs.append((a, a.clone(), tol, "NaN at the same place in both outputs"))
    a = logits(2.0)
    a[2, 0] = float("inf")
    specs.append((a, a.clone(), tol, "inf at the same place in both outputs"))
    a = logits(2.0)
    specs.append((a, shifted(a, float("inf"), (0, 7)), tol, "an inf in the compressed output"))
    exact = 2.0 ** -13  # exactly representable: a difference exactly at the bound
    a = torch.zeros(n, 10)
    specs.append((a, shifted(a, exact, (0, 0)), exact, "zero outputs, difference exactly tol (tol = 2^-13)"))
    return [Case((a, b, float(t)), f"{label} (outputs {tuple(a.shape)}, tol = {t:g})") for a, b, t, label in specs]


def _verify_agree(output, case: Case) -> None:
    a, b, tol = case.args
    require(output is not None, "your function returned None; it should return True or False")
    value = as_array(output)
    require(value.ndim == 0 and value.dtype.kind == "b",
            f"return True or False (a bool), got {output!r}")
    got, want = bool(value), outputs_agree(a, b, tol)
    if got == want:
        return
    diff, scale = float((a - b).abs().max()), float(a.abs().max())
    bound = tol * max(1.0, scale) if math.isfinite(scale) else float("nan")
    if not math.isfinite(diff):
        raise Failure(f"you answered {got}, but max |a - b| = {diff} is not a finite number (a NaN, inf, or "
                      "inf - inf in the outputs): a diverged compressed model never counts as equal to the masked "
                      "one, so the answer is False")
    verdict = "below" if diff < bound else "not below"
    mean = float((a - b).abs().mean())
    extra = f" (the mean difference is only {mean:.3g}, but one wrong output is enough)" if not want and \
        mean < bound else ""
    raise Failure(f"you answered {got}; max |a - b| = {diff:.4g} and max |a| = {scale:.4g}, so the bound is "
                  f"tol * max(1, max |a|) = {bound:.4g}, and {diff:.4g} is {verdict} it{extra}: the answer is {want}")


def _agree_rule(a, b, tol, *, relative=True, absolute=True, nan_safe=True, reduce="max", inclusive=False):
    d = (torch.as_tensor(a) - torch.as_tensor(b)).abs()
    diff = float(d.max() if reduce == "max" else d.mean())
    scale = float(torch.as_tensor(a).abs().max())
    bound = tol * (max(1.0, scale) if relative and absolute else (scale if relative else 1.0))
    if not nan_safe:
        return not (diff > bound)
    return diff <= bound if inclusive else diff < bound


OUTPUTS_AGREE = Exercise(
    name="outputs_agree",
    signature="outputs_agree(a, b, tol) -> bool",
    make_cases=_agree_cases,
    verify=_verify_agree,
    fingerprint=lambda output, case: None if output is None else bool(as_array(output)),
    mistakes=(
        Mistake("absolute_only",
                "A fixed bound tol is too strict for large outputs: float32 rounding grows with the values, so "
                "above 1 the bound is relative, tol * max |a| (that is, tol * max(1, max |a|)).",
                lambda a, b, t: _agree_rule(a, b, t, relative=False)),
        Mistake("relative_only",
                "A purely relative bound tol * max |a| shrinks to nothing for small outputs; below 1 the bound "
                "stays tol (that is, tol * max(1, max |a|)).",
                lambda a, b, t: _agree_rule(a, b, t, absolute=False)),
        Mistake("nan_agrees",
                "A NaN compares False with everything, so 'not (diff > bound)' lets NaN outputs pass: ask "
                "'diff < bound' (or check math.isfinite) so that a diverged model never agrees.",
                lambda a, b, t: _agree_rule(a, b, t, nan_safe=False)),
        Mistake("mean_diff",
                "You averaged the differences; the rule bounds the largest one, max |a - b|: one wrong output "
                "among many equal ones is already a disagreement.",
                lambda a, b, t: _agree_rule(a, b, t, reduce="mean")),
        Mistake("inclusive",
                "The bound is strict: a difference exactly equal to tol * max(1, max |a|) does not agree "
                "(diff < bound, not <=).",
                lambda a, b, t: _agree_rule(a, b, t, inclusive=True)),
    ),
)


#: this module's exercises, in teaching order
EXERCISES: tuple[Exercise, ...] = (LAMBDA_UPDATE, FINETUNE_LR, OUTPUTS_AGREE)
#: {name: the package's implementation with the exercise's signature}
SOLUTIONS: dict[str, Callable] = {
    "lambda_update": lambda_update,
    "finetune_lr": finetune_lr,
    "outputs_agree": outputs_agree,
}
