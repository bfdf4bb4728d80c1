"""The ShuffleNet unit (Zhang et al., CVPR 2018), with the package's channel shuffle (SPEC §10).

``body``: grouped 1x1 (``Cin -> mid``, ``g`` groups) -> BN -> ReLU -> shuffle
(:func:`~strucspars_viz.permutation.shufflenet_permutation` with ``g`` groups) -> depthwise 3x3
(stride) -> BN -> grouped 1x1 (``mid -> Cout``, ``g`` groups) -> BN. The unit returns
``ReLU(body(x) + shortcut(x))``: the identity when shapes allow (stride 1, ``Cin = Cout``); otherwise
``shortcut="project"`` adds a 1x1 conv + BN projection (as the CIFAR ResNets here do) and ``"none"`` no
shortcut. (ShuffleNet's own stride-2 unit concatenates an average-pooled input instead; the projection
keeps the networks of :mod:`strucspars_viz.models.designs` on one residual skeleton.)
"""
from __future__ import annotations

import torch
from torch import nn

from ..permutation import shufflenet_permutation
from .permute import ChannelPermutation

__all__ = ["ShuffleNetUnit", "shufflenet_unit_param_count"]


def shufflenet_unit_param_count(in_channels: int, out_channels: int, groups: int, mid_channels: int,
                                projection: bool = False, bn: bool = True) -> int:
    """Closed form: ``Cin mid / g + 9 mid + mid Cout / g`` (+ BN ``2 (2 mid + Cout)``; + projection ``Cin Cout + 2 Cout``)."""
    n = in_channels * mid_channels // groups + 9 * mid_channels + mid_channels * out_channels // groups
    if bn:
        n += 2 * (2 * mid_channels + out_channels)
    if projection:
        n += in_channels * out_channels + (2 * out_channels if bn else 0)
    return n


class ShuffleNetUnit(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, groups: int, mid_channels: int | None = None, *,
                 stride: int = 1, shortcut: str = "auto") -> None:
        super().__init__()
        mid = int(mid_channels) if mid_channels is not None else out_channels // 4
        where = (f"ShuffleNetUnit(in_channels={in_channels}, out_channels={out_channels}, groups={groups}, "
                 f"mid_channels={mid})")
        if groups < 1 or mid < 1:
            raise ValueError(f"{where}: groups and mid_channels must be >= 1")
        if in_channels % groups or mid % groups or out_channels % groups:
            raise ValueError(f"{where}: groups={groups} must divide in_channels, mid_channels and out_channels")
        if shortcut not in ("auto", "project", "none"):
            raise ValueError(f"{where}: shortcut={shortcut!r}; allowed: 'auto', 'project', 'none'")
        self.in_channels, self.out_channels, self.groups, self.mid_channels = in_channels, out_channels, groups, mid
        self.body = nn.Sequential()
        self.body.add_module("gconv1", nn.Conv2d(in_channels, mid, 1, groups=groups, bias=False))
        self.body.add_module("bn1", nn.BatchNorm2d(mid))
        self.body.add_module("relu1", nn.ReLU(inplace=True))
        self.body.add_module("shuffle", ChannelPermutation(shufflenet_permutation(mid, groups)))
        self.body.add_module("dwconv", nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False))
        self.body.add_module("bn2", nn.BatchNorm2d(mid))
        self.body.add_module("gconv2", nn.Conv2d(mid, out_channels, 1, groups=groups, bias=False))
        self.body.add_module("bn3", nn.BatchNorm2d(out_channels))
        same = stride == 1 and in_channels == out_channels
        self.shortcut: nn.Module | None
        if shortcut == "none" or (shortcut == "auto" and not same):
            self.shortcut = None
        elif same and shortcut == "auto":
            self.shortcut = nn.Identity()
        else:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                          nn.BatchNorm2d(out_channels))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return self.relu(out)
