"""IGC-V1 and IGC-V2 blocks: interleaved structured-sparse convolutions (SPEC §10).

Both are products of group convolutions and channel permutations, built as one ``nn.Sequential``
``body`` in forward order, so :func:`~strucspars_viz.designs.paths.path_counts` reads exactly what
``forward`` computes. BatchNorm and ReLU follow the whole product (SPEC §10's IGC-V1 recipe: "... shuffle,
BN, ReLU"; we use the same for IGC-V2, keeping the product linear as in ``x' = P_L W_L ... P_1 W_1 x``).
``relu=False`` drops the final ReLU (for the second block of a residual unit, added before the sum).

Speed: an IGC-V2 block's 1x1 stages are linear, so by default (``dense_forward=True``) their product
``M = P_L W_L ... P_2 W_2`` is formed as one ``C x C`` matrix (autograd flows back to the sparse factors)
and applied as a single dense 1x1 conv. On a CPU a training step of ``igcv2_resnet20`` is about 3x faster
than through the chain of grouped convs and channel gathers (``dense_forward=False``); both compute the
same function (tested). :func:`strucspars_viz.counting.count_params_macs` counts the staged, structured-sparse ops.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..permutation import shufflenet_permutation
from .permute import ChannelPermutation

__all__ = ["IGCV1Block", "IGCV2Block"]


class IGCV1Block(nn.Module):
    """IGC-V1 (Zhang et al., ICCV 2017): ``C = L M`` channels.

    ``body``: primary ``k x k`` group conv with ``L`` groups (``M`` channels each) -> interleaving
    permutation (the ShuffleNet shuffle with ``L`` groups: slot ``j L + i`` takes channel ``i M + j``, so
    every secondary group holds one channel of each primary group) -> secondary 1x1 group conv with
    ``M`` groups (``L`` channels each) -> permutation back (the shuffle with ``M`` groups, the inverse)
    -> BN -> ReLU. Weights: ``k^2 C M + C L``.
    """

    def __init__(self, channels: int, primary_groups: int, secondary_groups: int, *, kernel_size: int = 3,
                 stride: int = 1, relu: bool = True) -> None:
        super().__init__()
        c, lg, mg = int(channels), int(primary_groups), int(secondary_groups)
        if lg < 1 or mg < 1 or lg * mg != c:
            raise ValueError(
                f"IGCV1Block: channels={c} must equal primary_groups * secondary_groups = {lg} * {mg} = {lg * mg}; "
                f"allowed: any L, M >= 1 with L * M = C (e.g. L={_near_divisor(c)}, M={c // _near_divisor(c)})"
            )
        self.channels, self.primary_groups, self.secondary_groups = c, lg, mg
        self.body = nn.Sequential()
        self.body.add_module("primary", nn.Conv2d(c, c, kernel_size, stride, kernel_size // 2, groups=lg, bias=False))
        self.body.add_module("interleave", ChannelPermutation(shufflenet_permutation(c, lg)))
        self.body.add_module("secondary", nn.Conv2d(c, c, 1, groups=mg, bias=False))
        self.body.add_module("back", ChannelPermutation(shufflenet_permutation(c, mg)))
        self.body.add_module("bn", nn.BatchNorm2d(c))
        if relu:
            self.body.add_module("relu", nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def _near_divisor(c: int) -> int:
    d = int(math.isqrt(c))
    while d > 1 and c % d:
        d -= 1
    return max(d, 1)


class IGCV2Block(nn.Module):
    """IGC-V2 (Xie et al., CVPR 2018): ``x' = P_L W_L ... P_1 W_1 x`` on ``C`` channels.

    ``W_1``: depthwise ``k x k`` (``P_1`` = identity: any permutation after a depthwise conv is
    equivalent to relabelling). For each ``K_l`` in ``branch_sizes = (K_2, ..., K_L)``: ``W_l`` a 1x1
    group conv with ``C / K_l`` groups of ``K_l`` channels, then ``P_l`` = the ShuffleNet shuffle with
    ``C / K_l`` groups (SPEC §10). Writing a channel index in mixed radix, ``W_l`` mixes its lowest digit
    (size ``K_l``) and ``P_l`` rotates that digit to the top, so each stage mixes a fresh digit and the
    product is all ones exactly when ``prod K_l = C`` (the complementary condition). Then BN, ReLU.
    Weights: ``k^2 C + C sum K_l``.
    """

    def __init__(self, channels: int, branch_sizes: Sequence[int], *, kernel_size: int = 3, stride: int = 1,
                 relu: bool = True) -> None:
        super().__init__()
        c = int(channels)
        sizes = tuple(int(k) for k in branch_sizes)
        if c < 1:
            raise ValueError(f"IGCV2Block: channels must be >= 1, got {channels}")
        if not sizes:
            raise ValueError(f"IGCV2Block(channels={c}): branch_sizes is empty; give (K_2, ..., K_L) with prod = {c}")
        bad = [k for k in sizes if k < 1 or c % k]
        if bad:
            raise ValueError(f"IGCV2Block(channels={c}, branch_sizes={sizes}): every K_l must be a divisor of "
                             f"C={c}; {bad} are not")
        if math.prod(sizes) != c:
            raise ValueError(
                f"IGCV2Block(channels={c}, branch_sizes={sizes}): prod K_l = {math.prod(sizes)} != C = {c}; the "
                f"complementary condition needs prod K_l = C (balanced: designs.balanced_branch_sizes({c}, {len(sizes)}), "
                f"or any factorisation: designs.factor_branch_sizes({c}, {len(sizes)}))"
            )
        self.channels, self.branch_sizes = c, sizes
        self.dense_forward = True
        self.body = nn.Sequential()
        self.body.add_module("w1", nn.Conv2d(c, c, kernel_size, stride, kernel_size // 2, groups=c, bias=False))
        for l, k in enumerate(sizes, start=2):
            self.body.add_module(f"w{l}", nn.Conv2d(c, c, 1, groups=c // k, bias=False))
            self.body.add_module(f"p{l}", ChannelPermutation(shufflenet_permutation(c, c // k)))
        self.body.add_module("bn", nn.BatchNorm2d(c))
        if relu:
            self.body.add_module("relu", nn.ReLU(inplace=True))

    def stage_product(self) -> torch.Tensor:
        """``M = P_L W_L ... P_2 W_2`` as a differentiable ``(C, C)`` matrix: ``y = M x`` per pixel."""
        m = None
        for l in range(2, len(self.branch_sizes) + 2):
            conv, perm = getattr(self.body, f"w{l}"), getattr(self.body, f"p{l}").perm
            g = conv.groups
            w = conv.weight.view(g, self.channels // g, self.channels // g)
            stage = torch.block_diag(*w)[perm]  # W_l, then y = x[:, perm]: rows picked by perm
            m = stage if m is None else stage @ m
        return m

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.dense_forward:
            return self.body(x)
        y = self.body.bn(F.conv2d(self.body.w1(x), self.stage_product()[:, :, None, None]))
        return self.body.relu(y) if hasattr(self.body, "relu") else y
