"""Notebook 04's exercises against the code they teach: the lambda controller, the finetuning step
schedule (the real MultiStepLR of make_optimizer) and the NaN-safe equivalence rule."""
from __future__ import annotations

import itertools
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from strucspars_viz import exercises as ex
from strucspars_viz.controller import LambdaController
from strucspars_viz.exercises import schedule
from strucspars_viz.exercises.core import _call, _print_of, fingerprints_match
from strucspars_viz.export import EQUIVALENCE_TOL, is_equivalent
from strucspars_viz.training.optim import make_optimizer

NAMES = ("lambda_update", "finetune_lr", "outputs_agree")


# ----------------------------------------------------------------------------- what a student writes
def student_lambda_update(lam, sparsity, prev_sparsity, target, epochs_left, dlam):
    gain = 0.0 if prev_sparsity is None else sparsity - prev_sparsity
    if sparsity < target and gain < (target - sparsity) / epochs_left:
        return lam + dlam
    if sparsity >= target:
        return max(lam - dlam, 0.0)
    return lam


def student_finetune_lr(epoch, epochs, base_lr):
    milestones = {max(1, round(epochs / 2)), max(1, round(3 * epochs / 4))}
    return base_lr * 0.1 ** sum(epoch >= m for m in milestones)


def student_outputs_agree(a, b, tol):
    diff = (a - b).abs().max().item()
    return math.isfinite(diff) and diff < tol * max(1.0, a.abs().max().item())


STUDENT = {"lambda_update": student_lambda_update, "finetune_lr": student_finetune_lr,
           "outputs_agree": student_outputs_agree}


def test_registered_with_checkers_and_solutions():
    for name in NAMES:
        assert name in ex.EXERCISES and name in ex.SOLUTIONS
        assert callable(getattr(ex, f"check_{name}"))
    assert [e.name for e in schedule.EXERCISES] == list(NAMES)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("seed", range(4))
def test_natural_solutions_pass_on_several_seeds(name, seed):
    for fn in (STUDENT[name], ex.SOLUTIONS[name]):
        result = ex.check_exercise(name, fn, seed=seed)
        assert result.passed and result.cases >= 8, str(result)


@pytest.mark.parametrize("name", NAMES)
def test_mistakes_differ_from_each_other_and_from_the_solution(name):
    exercise = ex.EXERCISES[name]
    cases = exercise.make_cases(np.random.default_rng(0))

    def prints(fn):
        return [_print_of(exercise, _call(fn, c), c) for c in cases]

    versions = {"solution": prints(ex.SOLUTIONS[name])} | {m.name: prints(m.fn) for m in exercise.mistakes}
    for (na, pa), (nb, pb) in itertools.combinations(versions.items(), 2):
        assert not all(fingerprints_match(x, y) for x, y in zip(pa, pb)), f"{na} and {nb} behave alike"


@pytest.mark.parametrize("seed", range(3))
def test_each_mistake_named_on_other_seeds(seed):
    for name in NAMES:
        for mistake in ex.EXERCISES[name].mistakes:
            result = ex.check_exercise(name, mistake.fn, seed=seed)
            assert not result.passed and result.mistake == mistake.name, (name, mistake.name, str(result))


@pytest.mark.parametrize("name", NAMES)
def test_wrong_return_types_fail_readably(name):
    assert "returned None" in ex.check_exercise(name, lambda *a: None).message
    assert not ex.check_exercise(name, lambda *a: "yes").passed


def test_outputs_agree_wants_a_bool():
    result = ex.check_outputs_agree(lambda a, b, tol: 1)
    assert not result.passed and "True or False" in result.message


# ----------------------------------------------------------------------------- lambda controller
@pytest.mark.parametrize("seed", range(8))
def test_lambda_update_reproduces_a_whole_controller_run(seed):
    rng = np.random.default_rng(seed)
    total, warmup = int(rng.integers(5, 40)), int(rng.integers(0, 5))
    target = float(rng.uniform(0.2, 0.8))
    dlam = float(rng.choice([1e-4, 2e-6]))
    ctrl = LambdaController(target=target, total_epochs=total, warmup_epochs=warmup, lam0=3 * dlam, dlam=dlam)
    # a sparsity that creeps up, stalls, jumps past the target, falls back; exact hits of the target too
    steps = rng.choice([0.0, 0.002, 0.02, 0.1, -0.03], size=total)
    sparsity = np.clip(np.cumsum(steps), 0, 0.95)
    sparsity[rng.integers(total)] = target
    lam, prev = ctrl.lam, None
    for t, s in enumerate(sparsity.tolist(), start=1):
        got = ctrl.step(s)
        if t > warmup:
            want = student_lambda_update(lam, s, prev, target, max(total - t, 1), dlam)
            assert got == pytest.approx(want, rel=1e-12, abs=1e-15), (t, ctrl.history[-1])
            assert schedule.lambda_update(lam, s, prev, target, max(total - t, 1), dlam) == pytest.approx(got)
        lam, prev = got, s
    actions = {h["action"] for h in ctrl.history}
    assert actions <= {"warmup", "start", "increase", "decrease", "keep"}


def test_lambda_update_edge_cases_by_hand():
    f = ex.SOLUTIONS["lambda_update"]
    assert f(1.0, 0.5, 0.4, 0.5, 10, 0.5) == 0.5          # exactly at the target: decrease
    assert f(0.2, 0.6, 0.5, 0.5, 10, 0.5) == 0.0          # past it, lam < dlam: clipped at 0
    assert f(1.0, 0.25, 0.125, 0.5, 2, 0.5) == 1.0        # gain == expected: keep
    assert f(1.0, 0.1, None, 0.5, 40, 0.5) == 1.5         # no previous sparsity: gain 0 < expected
    assert f(1.0, 0.3, 0.25, 0.5, 10, 0.5) == 1.0         # on track: keep


def test_lambda_cases_cover_the_edges():
    labels = " | ".join(c.label for c in ex.EXERCISES["lambda_update"].make_cases(np.random.default_rng(0)))
    for needle in ("exactly at the target", "lam < dlam", "prev_sparsity=None", "epochs_left = 1",
                   "gain exactly equals"):
        assert needle in labels


# ----------------------------------------------------------------------------- finetuning schedule
def _multistep_lrs(epochs: int, base: float) -> list[float]:
    cfg = SimpleNamespace(finetune_lr=base, momentum=0.9, weight_decay=1e-4, finetune_epochs=epochs,
                          lr_schedule="step")
    opt, sched = make_optimizer(torch.nn.Linear(2, 2), cfg, "finetune")
    lrs = []
    for _ in range(epochs):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


@pytest.mark.parametrize("epochs", [*range(1, 41), 99, 160, 161, 250])
def test_finetune_lr_equals_multisteplr(epochs):
    base = 0.1
    lrs = _multistep_lrs(epochs, base)
    assert [student_finetune_lr(e, epochs, base) for e in range(epochs)] == pytest.approx(lrs, rel=1e-12)
    for e in sorted({0, epochs // 2, epochs - 1}):
        assert ex.SOLUTIONS["finetune_lr"](e, epochs, base) == pytest.approx(lrs[e], rel=1e-12)


def test_finetune_lr_quirks_are_in_the_cases():
    assert _multistep_lrs(3, 1.0) == pytest.approx([1.0, 1.0, 0.1])         # both milestones at 2: one decay
    assert _multistep_lrs(7, 1.0)[3:5] == pytest.approx([1.0, 0.1])         # round(3.5) = 4 (not int: 3)
    cases = {c.args[:2] for c in ex.EXERCISES["finetune_lr"].make_cases(np.random.default_rng(0))}
    assert {(2, 3), (3, 7), (7, 10), (0, 1)} <= cases


# ----------------------------------------------------------------------------- equivalence rule
def _t(*values):
    return torch.tensor(values, dtype=torch.float32)


@pytest.mark.parametrize(("a", "b", "tol", "want"), [
    (_t(1.0, 2.0), _t(1.0, 2.0), 1e-4, True),
    (_t(0.5, -0.2), _t(0.5, -0.2 + 5e-5), 1e-4, True),         # absolute below 1
    (_t(0.01, 0.0), _t(0.01, 5e-5), 1e-4, True),               # tiny outputs: still absolute (not 1e-6)
    (_t(0.5, 0.0), _t(0.5, 2e-4), 1e-4, False),
    (_t(1e5, 3.0), _t(1e5, 3.5), 1e-4, True),                  # large outputs: relative bound 10
    (_t(1e5, 3.0), _t(1e5, 23.0), 1e-4, False),
    (_t(1.0, 2.0), _t(1.0, float("nan")), 1e-4, False),        # NaN never agrees
    (_t(float("nan"), 2.0), _t(float("nan"), 2.0), 1e-4, False),
    (_t(float("inf"), 2.0), _t(float("inf"), 2.0), 1e-4, False),  # inf - inf = NaN
    (_t(1.0, 2.0), _t(float("inf"), 2.0), 1e-4, False),
    (_t(0.0, 0.0), _t(0.0, 2.0 ** -13), 2.0 ** -13, False),   # strict bound
    (torch.zeros(100), torch.cat([torch.zeros(99), _t(0.01)]), 1e-4, False),  # max, not mean
])
def test_outputs_agree_by_hand(a, b, tol, want):
    assert ex.SOLUTIONS["outputs_agree"](a, b, tol) is want
    assert student_outputs_agree(a, b, tol) is want


def test_outputs_agree_is_the_export_rule():
    gen = torch.Generator().manual_seed(0)
    for scale in (1e-3, 0.5, 1.0, 3.0, 1e3, 1e6):
        a = torch.randn(8, 10, generator=gen) * scale
        for rel in (1e-6, 5e-5, 2e-4, 1e-2):
            b = a + torch.randn(8, 10, generator=gen) * rel * max(1.0, scale)
            want = is_equivalent(float((a - b).abs().max()), EQUIVALENCE_TOL, float(a.abs().max()))
            assert ex.SOLUTIONS["outputs_agree"](a, b, EQUIVALENCE_TOL) is want


def test_outputs_agree_cases_cover_nan_inf_and_large_outputs():
    cases = ex.EXERCISES["outputs_agree"].make_cases(np.random.default_rng(0))
    assert any(torch.isnan(c.args[1]).any() for c in cases)
    assert any(torch.isinf(c.args[0]).any() for c in cases)
    assert any(float(c.args[0].abs().max()) > 1e3 for c in cases)
    answers = [ex.SOLUTIONS["outputs_agree"](*c.args) for c in cases]
    assert 3 <= sum(answers) <= len(answers) - 3  # both answers occur often
