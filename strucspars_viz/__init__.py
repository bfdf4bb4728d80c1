"""strucspars-viz: structured sparsification (StrucSpars, UAI 2021) made visible.

The public API below is a contract used by notebooks, docs and outside checks (SPEC.md notation).
"""
from .birkhoff import BirkhoffLPResult, birkhoff_lp, is_permutation_matrix, solve_assignment
from .counting import ModelCost, count_params_macs
from .export import ChannelPermute, PermutedGroupConv2d, compress, max_output_difference
from .hierarchy import (
    block_mask,
    groups_for,
    kept_fraction,
    kept_fractions,
    max_groups,
    model_sparsity,
    penalty_matrix,
    separation_levels,
)
from .norms import norm_matrix
from .permutation import (
    HistoryStep,
    inverse_permutation,
    learn_permutations,
    objective,
    planted_matrix,
    random_permutation,
    shufflenet_permutation,
    spectral_order,
)
from .sparsifier import LayerState, StructuredSparsifier, TargetResult

__version__ = "0.1.0"

__all__ = [
    "BirkhoffLPResult",
    "ChannelPermute",
    "HistoryStep",
    "LayerState",
    "ModelCost",
    "PermutedGroupConv2d",
    "StructuredSparsifier",
    "TargetResult",
    "birkhoff_lp",
    "block_mask",
    "compress",
    "count_params_macs",
    "groups_for",
    "inverse_permutation",
    "is_permutation_matrix",
    "kept_fraction",
    "kept_fractions",
    "learn_permutations",
    "max_groups",
    "max_output_difference",
    "model_sparsity",
    "norm_matrix",
    "objective",
    "penalty_matrix",
    "planted_matrix",
    "random_permutation",
    "separation_levels",
    "shufflenet_permutation",
    "solve_assignment",
    "spectral_order",
]
