"""The related designs of SPEC §10 as real layers: IGC-V1/V2 blocks, ShuffleNet units, a structured sparse conv.

StrucSpars *learns* a group structure and a shuffle; these designs fix them by hand. Every block is a
product of convolutions and channel permutations in forward order, so the same weight-norm views apply:
:func:`path_counts` (the complementary condition), :func:`effective_norm_matrix` (the effective ``S``),
and the balance condition (:func:`balanced_branch_sizes`, :func:`balance_curve`).
"""
from .balance import (
    balance_curve,
    balanced_branch_sizes,
    balanced_param_count,
    factor_branch_sizes,
    igcv1_param_count,
    igcv2_param_count,
    optimal_stages,
)
from .igc import IGCV1Block, IGCV2Block
from .matching import WidthMatch, count_params, match_width
from .paths import (
    PathViolation,
    check_complementary,
    connectivity,
    dense_norm_matrix,
    effective_norm_matrix,
    find_violation,
    is_complementary,
    linear_stages,
    partial_path_counts,
    path_counts,
    stage_matrices,
)
from .permute import ChannelPermutation, permutation_matrix
from .shufflenet import ShuffleNetUnit, shufflenet_unit_param_count
from .ssc import StructuredSparseConv2d, ssc_param_count, ssc_pattern

__all__ = [
    "ChannelPermutation",
    "IGCV1Block",
    "IGCV2Block",
    "PathViolation",
    "ShuffleNetUnit",
    "StructuredSparseConv2d",
    "WidthMatch",
    "balance_curve",
    "balanced_branch_sizes",
    "balanced_param_count",
    "check_complementary",
    "connectivity",
    "count_params",
    "dense_norm_matrix",
    "effective_norm_matrix",
    "factor_branch_sizes",
    "find_violation",
    "igcv1_param_count",
    "igcv2_param_count",
    "is_complementary",
    "linear_stages",
    "match_width",
    "optimal_stages",
    "partial_path_counts",
    "path_counts",
    "permutation_matrix",
    "shufflenet_unit_param_count",
    "ssc_param_count",
    "ssc_pattern",
    "stage_matrices",
]
