"""Model registry (timm-style): builders register under a name; CLI, notebooks and tests list them."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import nn

__all__ = ["ModelEntry", "build_model", "list_models", "register_model"]


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Callable[..., nn.Module]
    dataset: str  # "cifar" or "imagenet": which input size and data the model expects
    input_size: tuple[int, int, int]


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, dataset: str, input_size: tuple[int, int, int]):
    def decorator(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = ModelEntry(name, fn, dataset, input_size)
        return fn

    return decorator


def list_models(dataset: str | None = None) -> list[str]:
    return sorted(n for n, e in _REGISTRY.items() if dataset is None or e.dataset == dataset)


def model_entry(name: str) -> ModelEntry:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; registered: {', '.join(list_models())}") from None


def build_model(name: str, **kwargs) -> nn.Module:
    """Build a registered model by name, e.g. ``build_model("resnet56", num_classes=10)``."""
    return model_entry(name).builder(**kwargs)
