"""Exercises that check themselves: property checks on seeded random inputs, hints that name the mistake.

Each ``check_<name>(student_fn, seed=0)`` runs the student's function on randomised cases (edge
cases included: non-square layers, ``G = 1``, odd channel counts that must stay dense) and returns a
:class:`CheckResult`, which prints (and renders in a notebook) as ``passed: N randomised cases`` or
as the first failing case with a readable message and, when the function behaves like a known
wrong version, a hint naming that mistake. A student's exception is reported, never raised.

Exercises (signatures as the notebooks state them):

* ``shufflenet_permutation(channels, groups)``, ``inverse_permutation(perm)``
* ``block_mask(cout, cin, groups)`` (``U_G``), ``separation_levels(cout, cin)`` (``k(a, b)``),
  ``groups_for(s_permuted, keep)`` (largest ``G`` with ``f(G) >= keep``)
* ``p_step_cost(S, R, Q)`` (``M = R S[:, Q]^T``), ``q_step_cost(S, R, P)`` (``M = S[P, :]^T R``),
  ``solve_p_step_lp(cost)`` (the doubly-stochastic LP, written with cvxpy)
* ``unpermuted_penalty(R_g, P, Q)`` (``R_g[P_inv][:, Q_inv]``), ``grouped_weight(W, P, Q, G)``,
  ``model_sparsity(sizes, groups)``
* ``complementary(masks, perms)`` (IGC-V2: exactly one path between every input and output)
* ``lambda_update(lam, sparsity, prev_sparsity, target, epochs_left, dlam)``, ``finetune_lr(epoch, epochs,
  base_lr)``, ``outputs_agree(a, b, tol)`` (notebook 04: :mod:`.schedule`)
* ``conv_params(...)``, ``conv_macs(...)``, ``compressed_cost(layers, groups)`` (05: :mod:`.counts`)
* ``t_interval(values, level)``, ``welch_p(a, b)``, ``kaiming_fan_out_std(weight_shape)`` (06: :mod:`.statistics`)
* ``median_iqr(times)``, ``paired_speedup(reference, candidate)``, ``interleaved_order(n_variants, repeats)``
  (07: :mod:`.timing`)
"""
from __future__ import annotations

from typing import Callable

from .core import CheckResult, as_array, check
from .registry import EXERCISES, SOLUTIONS

__all__ = ["EXERCISES", "SOLUTIONS", "CheckResult", "as_array", "check_exercise",
           *(f"check_{name}" for name in EXERCISES)]


def check_exercise(name: str, student_fn: Callable, *, seed: int = 0) -> CheckResult:
    """Check ``student_fn`` against the exercise called ``name`` (see ``EXERCISES``)."""
    try:
        ex = EXERCISES[name]
    except KeyError:
        raise KeyError(f"no exercise {name!r}; exercises: {', '.join(EXERCISES)}") from None
    return check(ex, student_fn, seed=seed)


def _checker(name: str) -> Callable[..., CheckResult]:
    ex = EXERCISES[name]

    def checker(student_fn: Callable, *, seed: int = 0) -> CheckResult:
        return check(ex, student_fn, seed=seed)

    checker.__name__ = checker.__qualname__ = f"check_{name}"
    checker.__doc__ = (
        f"Check a student's ``{ex.signature}`` on seeded random cases; returns a CheckResult "
        "(pass, or the first failing case with a hint when a typical mistake is recognised)."
    )
    return checker


# One ``check_<name>`` per exercise of the registry (``ex.check_block_mask(fn)``, ...), made here so that
# an exercise added to the registry gets its checker without a second list to keep in step.
globals().update({f"check_{name}": _checker(name) for name in EXERCISES})
