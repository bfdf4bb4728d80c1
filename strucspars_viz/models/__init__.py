"""Model zoo: CIFAR ResNets and torchvision ImageNet models, selectable by name."""
from . import cifar_resnet, imagenet  # noqa: F401  (importing registers the builders)
from . import designs as _designs  # noqa: F401  (registers the SPEC §10 design networks)
from .cifar_resnet import CifarResNet
from .registry import ModelEntry, build_model, list_models, model_entry, register_model

__all__ = ["CifarResNet", "ModelEntry", "build_model", "list_models", "model_entry", "register_model"]
