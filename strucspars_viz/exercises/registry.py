"""All exercises by name, and the solutions (the package's own implementations in exercise form)."""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from .. import export, hierarchy, permutation
from ..birkhoff import birkhoff_lp
from ..sparsifier import LayerState
from . import counts, schedule, statistics, timing
from .blocks import BLOCK_MASK, GROUPS_FOR, SEPARATION_LEVELS
from .complementary import COMPLEMENTARY, is_complementary
from .compression import GROUPED_WEIGHT, MODEL_SPARSITY, UNPERMUTED_PENALTY
from .core import Exercise
from .lp import P_STEP_COST, Q_STEP_COST, SOLVE_P_STEP_LP
from .shuffle import INVERSE_PERMUTATION, SHUFFLENET_PERMUTATION

__all__ = ["EXERCISES", "SOLUTIONS"]

#: later notebooks' exercises: 04 (schedule), 05 (counts), 06 (statistics), 07 (timing); each module holds
#: its exercises and their solutions
_LATER = (schedule, counts, statistics, timing)

def _by_name(exercises) -> dict[str, Exercise]:
    out: dict[str, Exercise] = {}
    for ex in exercises:
        if ex.name in out:  # a silent replacement would drop an exercise and its checker
            raise ValueError(f"two exercises are called {ex.name!r}; exercise names must be unique")
        out[ex.name] = ex
    return out


#: ``{name: Exercise}`` in teaching order (notebooks 01, 02, 03, the related designs, then 04-07)
EXERCISES: dict[str, Exercise] = _by_name((
    SHUFFLENET_PERMUTATION, INVERSE_PERMUTATION, BLOCK_MASK, SEPARATION_LEVELS, GROUPS_FOR,
    P_STEP_COST, Q_STEP_COST, SOLVE_P_STEP_LP,
    UNPERMUTED_PENALTY, GROUPED_WEIGHT, MODEL_SPARSITY,
    COMPLEMENTARY,
    *(ex for module in _LATER for ex in module.EXERCISES),
))


def _unpermute(r, p, q):
    st = LayerState("solution", r.shape[0], r.shape[1], 1, np.asarray(p), np.asarray(q))
    return st.unpermute(torch.as_tensor(r))


#: ``{name: the package's implementation with the exercise's signature}``: every one passes its checker
SOLUTIONS: dict[str, Callable] = {
    "shufflenet_permutation": permutation.shufflenet_permutation,
    "inverse_permutation": permutation.inverse_permutation,
    "block_mask": hierarchy.block_mask,
    "separation_levels": hierarchy.separation_levels,
    "groups_for": hierarchy.groups_for,
    "p_step_cost": lambda s, r, q: r @ s[:, q].T,
    "q_step_cost": lambda s, r, p: s[p, :].T @ r,
    "solve_p_step_lp": lambda cost: birkhoff_lp(cost).plan,
    "unpermuted_penalty": _unpermute,
    "grouped_weight": export.grouped_weight,
    "model_sparsity": hierarchy.model_sparsity,
    "complementary": is_complementary,
    **{name: fn for module in _LATER for name, fn in module.SOLUTIONS.items()},
}
