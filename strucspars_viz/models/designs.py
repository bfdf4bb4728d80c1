"""CIFAR networks built from the related designs (SPEC §10), at matched parameter count.

All four share the CIFAR ResNet-20 skeleton of :mod:`.cifar_resnet` (3x3 stem, three stages of widths
``w, 2w, 4w``, three residual units per stage, stride 2 at the start of stages 2 and 3, global average
pool, linear classifier); only the inside of the residual units and the width ``w`` differ:

* ``igcv2_resnet20``: each 3x3 conv of a BasicBlock becomes an :class:`~..designs.IGCV2Block` with two
  1x1 stages (``factor_branch_sizes(C, 2)``; balanced where ``C`` is a square); a transition unit puts a
  dense 1x1 conv ``C -> 2C`` between its two blocks.
* ``ssc_resnet20``: each 3x3 conv becomes a :class:`~..designs.StructuredSparseConv2d` with ``G = 16``
  groups, full 3x3 kernels on a window of 3 input groups (its own and the next two), centre taps on
  the next 8 and nothing on the last 5 (our pattern, see :mod:`..designs.ssc`): ``(3 * 9 + 8) / (16 * 9)
  = 24.3 %`` of the dense weights, at ResNet-20's own widths (16, 32, 64). Of the spans with centre
  taps, ``f = 3, h = 8`` is the one closest to the target at width 16 (``h = 7``: -2.6 %, ``h = 9``:
  +2.7 %); with ``G = 4`` no multiple-of-4 width lands within 5 % (12: -30 %, 16: +24 % for ``f = 1, h = 2``).
* ``shufflenet_resnet20``: each unit is a :class:`~..designs.ShuffleNetUnit` (``g = 4``, bottleneck
  ``mid = Cout / 4`` rounded to a multiple of ``g``).
* ``resnet20_narrow``: the dense ResNet-20 with a smaller ``w``.

Shape-changing units use a 1x1 conv + BN projection shortcut. Every network thus keeps ungrouped
convs besides the stem (projections, transition 1x1s, or all of them), so ``StructuredSparsifier`` can
be built on it; the design's own grouped convs are left alone (the sparsifier skips grouped convs).

**Target**: the StrucSpars ResNet-20 of the 75 % ablation sweep
(``results/ablation_cifar10_resnet20/README.md``) has **70,106** parameters after compression
(:data:`TARGET_PARAMS`); that sweep's FROMSCRATCH, SHUFFLENET and narrow rows are the other rows of the
related-designs table (``results/designs_cifar10_resnet20/``). The default widths below
(:data:`DEFAULT_WIDTHS`) are what :func:`matched_width` picks for that target (within 5 %); the test
suite asserts it.
"""
from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import nn

from ..designs import IGCV2Block, ShuffleNetUnit, StructuredSparseConv2d, factor_branch_sizes, match_width
from ..designs.matching import WidthMatch
from .cifar_resnet import CifarResNet
from .registry import register_model

__all__ = ["TARGET_PARAMS", "DEFAULT_WIDTHS", "WIDTH_CANDIDATES", "DesignResNet", "DESIGN_BUILDERS", "matched_width"]

#: parameters of the StrucSpars ResNet-20 at 75 % (results/ablation_cifar10_resnet20/README.md)
TARGET_PARAMS = 70_106

SSC_GROUPS, SSC_FULL_SPAN, SSC_CENTRE_SPAN = 16, 3, 8
SHUFFLE_GROUPS = 4
IGC_STAGES = 2


def _projection(c_in: int, c_out: int, stride: int) -> nn.Module | None:
    if stride == 1 and c_in == c_out:
        return None
    return nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))


class _ResidualUnit(nn.Module):
    """``ReLU(body(x) + shortcut(x))`` with an identity or 1x1 projection shortcut."""

    def __init__(self, body: nn.Module, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.body = body
        self.downsample = _projection(c_in, c_out, stride)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(self.body(x) + identity)


def _igcv2_body(c_in: int, c_out: int, stride: int) -> nn.Module:
    layers: list[nn.Module] = [IGCV2Block(c_in, factor_branch_sizes(c_in, IGC_STAGES), stride=stride)]
    if c_in != c_out:
        layers += [nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
    layers.append(IGCV2Block(c_out, factor_branch_sizes(c_out, IGC_STAGES), relu=False))
    return _ResidualUnit(nn.Sequential(*layers), c_in, c_out, stride)


def _ssc_body(c_in: int, c_out: int, stride: int) -> nn.Module:
    body = nn.Sequential(
        StructuredSparseConv2d(c_in, c_out, 3, SSC_GROUPS, SSC_FULL_SPAN, SSC_CENTRE_SPAN, stride),
        nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
        StructuredSparseConv2d(c_out, c_out, 3, SSC_GROUPS, SSC_FULL_SPAN, SSC_CENTRE_SPAN),
        nn.BatchNorm2d(c_out),
    )
    return _ResidualUnit(body, c_in, c_out, stride)


def _shufflenet_unit(c_in: int, c_out: int, stride: int) -> nn.Module:
    g = SHUFFLE_GROUPS
    mid = max(g, (c_out // 4) // g * g)
    return ShuffleNetUnit(c_in, c_out, g, mid, stride=stride, shortcut="auto" if stride == 1 and c_in == c_out else "project")


class DesignResNet(CifarResNet):
    """The CIFAR ResNet skeleton with ``unit(c_in, c_out, stride) -> nn.Module`` as residual units."""

    def __init__(self, unit: Callable[[int, int, int], nn.Module], width: int, depth: int = 20,
                 num_classes: int = 10) -> None:
        super().__init__(depth, num_classes, width, unit=unit)


def _igcv2(width: int, num_classes: int = 10) -> nn.Module:
    return DesignResNet(_igcv2_body, width, num_classes=num_classes)


def _ssc(width: int, num_classes: int = 10) -> nn.Module:
    if width % SSC_GROUPS:
        raise ValueError(f"ssc_resnet20: width={width} must be a multiple of the SSC groups ({SSC_GROUPS})")
    return DesignResNet(_ssc_body, width, num_classes=num_classes)


def _shufflenet(width: int, num_classes: int = 10) -> nn.Module:
    if width % SHUFFLE_GROUPS:
        raise ValueError(f"shufflenet_resnet20: width={width} must be a multiple of groups ({SHUFFLE_GROUPS})")
    return DesignResNet(_shufflenet_unit, width, num_classes=num_classes)


def _narrow(width: int, num_classes: int = 10) -> nn.Module:
    return CifarResNet(20, num_classes, width=width)


#: name -> builder(width, num_classes)
DESIGN_BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "igcv2_resnet20": _igcv2,
    "ssc_resnet20": _ssc,
    "shufflenet_resnet20": _shufflenet,
    "resnet20_narrow": _narrow,
}

#: candidate widths searched by matched_width
WIDTH_CANDIDATES: dict[str, range] = {
    "igcv2_resnet20": range(16, 97, 4),
    "ssc_resnet20": range(SSC_GROUPS, 65, SSC_GROUPS),
    "shufflenet_resnet20": range(32, 161, SHUFFLE_GROUPS),
    "resnet20_narrow": range(4, 17),
}

#: widths matched to TARGET_PARAMS (asserted by tests/test_designs_models.py)
DEFAULT_WIDTHS: dict[str, int] = {
    "igcv2_resnet20": 36,  # 72,370 params (+3.2 %); branch sizes (6, 6), (8, 9), (12, 12)
    "ssc_resnet20": 16,  # 70,170 params (+0.1 %)
    "shufflenet_resnet20": 60,  # 72,790 params (+3.8 %)
    "resnet20_narrow": 8,  # 68,786 params (-1.9 %): the 75 % sweep's narrow baseline
}


def matched_width(name: str, target: int = TARGET_PARAMS, num_classes: int = 10, tol: float = 0.05,
                  widths: Iterable[int] | None = None) -> WidthMatch:
    """The width of design network ``name`` whose parameter count is closest to ``target`` (within ``tol``).

    ``widths`` defaults to :data:`WIDTH_CANDIDATES` ``[name]``.
    """
    if name not in DESIGN_BUILDERS:
        raise ValueError(f"matched_width: unknown design network {name!r}; known: {', '.join(DESIGN_BUILDERS)}")
    build = DESIGN_BUILDERS[name]
    return match_width(lambda w: build(w, num_classes), target,
                       WIDTH_CANDIDATES[name] if widths is None else widths, tol=tol)


def _register(name: str) -> None:
    def builder(num_classes: int = 10, width: int | None = None) -> nn.Module:
        return DESIGN_BUILDERS[name](DEFAULT_WIDTHS[name] if width is None else int(width), num_classes)

    builder.__name__ = name
    builder.__doc__ = f"{name} (width {DEFAULT_WIDTHS[name]}: about {TARGET_PARAMS:,} parameters); see {__name__}."
    register_model(name, "cifar", (3, 32, 32))(builder)


for _name in DESIGN_BUILDERS:
    _register(_name)
