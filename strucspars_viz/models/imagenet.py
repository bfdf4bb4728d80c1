"""ImageNet models from torchvision, randomly initialised (no weights are downloaded at run time).

Sparsified layers (SPEC §5): every conv but the stem, ResNet 1x1 downsample convs and DenseNet
dense-layer and transition convs included; never the classifier. That is the sparsifier's default.
"""
from __future__ import annotations

import torchvision
from torch import nn

from .registry import register_model


@register_model("resnet50", "imagenet", (3, 224, 224))
def resnet50(num_classes: int = 1000) -> nn.Module:
    return torchvision.models.resnet50(weights=None, num_classes=num_classes)


@register_model("resnet101", "imagenet", (3, 224, 224))
def resnet101(num_classes: int = 1000) -> nn.Module:
    return torchvision.models.resnet101(weights=None, num_classes=num_classes)


@register_model("densenet201", "imagenet", (3, 224, 224))
def densenet201(num_classes: int = 1000) -> nn.Module:
    # memory_efficient=False: checkpointed dense layers would hide convs from the forward graph used
    # for MAC counting; it changes nothing about the weights.
    return torchvision.models.densenet201(weights=None, num_classes=num_classes)
