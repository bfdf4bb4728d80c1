"""CIFAR ResNet-20/56/110 (He et al. 2016, section 4.2), with the released code's defects fixed (SPEC §9).

Stem: 3x3 conv, padding 1 (the authors' code used a 1x1 conv with padding 1, giving 34x34 maps).
Stages of 16/32/64 channels, ``n = (depth - 2) / 6`` BasicBlocks each; the first block of stages 2
and 3 downsamples with a 1x1 projection shortcut (conv + BN), which is sparsified like the others.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from .registry import register_model

__all__ = ["BasicBlock", "CifarResNet", "cifar_resnet"]


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class CifarResNet(nn.Module):
    """The CIFAR ResNet of He et al. (3x3 stem, three stages of ``(depth - 2) / 6`` residual units at
    ``width``, ``2 width``, ``4 width`` channels, global pooling, linear classifier).

    ``unit(c_in, c_out, stride) -> nn.Module`` builds each residual unit (default :class:`BasicBlock`;
    the related designs of :mod:`strucspars_viz.models.designs` pass their own blocks).
    """

    def __init__(self, depth: int = 20, num_classes: int = 10, width: int = 16,
                 unit: Callable[[int, int, int], nn.Module] = BasicBlock) -> None:
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(f"CIFAR ResNet depth must be 6n+2 (20, 32, 44, 56, 110, ...), got {depth}")
        if width < 1:
            raise ValueError(f"CIFAR ResNet width must be >= 1, got {width}")
        n = (depth - 2) // 6
        self.width = int(width)
        self.conv1 = nn.Conv2d(3, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        planes, layers = width, []
        in_planes = width
        for stage in range(3):
            blocks = []
            for i in range(n):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(unit(in_planes, planes, stride))
                in_planes = planes
            layers.append(nn.Sequential(*blocks))
            planes *= 2
        self.layer1, self.layer2, self.layer3 = layers
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_planes, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def cifar_resnet(depth: int, num_classes: int = 10) -> CifarResNet:
    return CifarResNet(depth, num_classes)


@register_model("resnet20", "cifar", (3, 32, 32))
def resnet20(num_classes: int = 10) -> CifarResNet:
    return CifarResNet(20, num_classes)


@register_model("resnet56", "cifar", (3, 32, 32))
def resnet56(num_classes: int = 10) -> CifarResNet:
    return CifarResNet(56, num_classes)


@register_model("resnet110", "cifar", (3, 32, 32))
def resnet110(num_classes: int = 10) -> CifarResNet:
    return CifarResNet(110, num_classes)
