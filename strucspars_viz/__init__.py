"""strucspars-viz: structured sparsification (StrucSpars, UAI 2021) made visible.

The public API below is a contract used by notebooks, docs and outside checks (SPEC.md notation).
"""
from .birkhoff import BirkhoffLPResult, birkhoff_lp, is_permutation_matrix, solve_assignment
from .counting import ModelCost, count_params_macs
from .deploy import optimize_for_inference
from .export import (
    ChannelPermute,
    CompressionReport,
    PermutedGroupConv2d,
    compress,
    compress_and_check,
    max_output_difference,
    sparsify_to_target,
)
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
from .norms import as_matrix, norm_matrix
from .permutation import (
    SHUFFLES,
    HistoryStep,
    fixed_shuffle,
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
    "SHUFFLES",
    "BirkhoffLPResult",
    "ChannelPermute",
    "CompressionReport",
    "HistoryStep",
    "LayerState",
    "ModelCost",
    "PermutedGroupConv2d",
    "StructuredSparsifier",
    "TargetResult",
    "birkhoff_lp",
    "block_mask",
    "as_matrix",
    "compress",
    "compress_and_check",
    "count_params_macs",
    "fixed_shuffle",
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
    "optimize_for_inference",
    "objective",
    "penalty_matrix",
    "planted_matrix",
    "random_permutation",
    "separation_levels",
    "shufflenet_permutation",
    "solve_assignment",
    "sparsify_to_target",
    "spectral_order",
]
