"""Rebuild a registry model with the channel counts of a state dict (pruned or narrower models).

Structured pruning (Torch-Pruning) and the narrow baseline change only the channel counts of convs,
BatchNorms and linear layers; the module tree and the forward code stay those of the registry model.
:func:`fit_to_state_dict` replaces every such module whose shape differs from the state dict's by a
fresh one of the state dict's shape, so that ``load_state_dict`` works and the run folder needs to
hold nothing but tensors (``weights_only=True`` loading).
"""
from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

__all__ = ["fit_to_state_dict"]


def _set(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, module)


def _resized(m: nn.Module, name: str, w: torch.Tensor) -> nn.Module:
    if isinstance(m, nn.Conv2d):
        if m.groups != 1:
            raise ValueError(f"{name}: cannot resize a grouped conv (groups={m.groups})")
        if w.ndim != 4 or tuple(w.shape[2:]) != tuple(m.kernel_size):
            raise ValueError(f"{name}: state dict weight {tuple(w.shape)} does not fit a {m.kernel_size} conv")
        return nn.Conv2d(w.shape[1], w.shape[0], m.kernel_size, m.stride, m.padding, m.dilation,
                         bias=m.bias is not None)
    if isinstance(m, nn.BatchNorm2d):
        return nn.BatchNorm2d(w.shape[0], m.eps, m.momentum, m.affine, m.track_running_stats)
    if isinstance(m, nn.Linear):
        return nn.Linear(w.shape[1], w.shape[0], bias=m.bias is not None)
    raise ValueError(f"{name}: a {type(m).__name__} cannot be resized to {tuple(w.shape)}")


def fit_to_state_dict(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> nn.Module:
    """Resize (in place) the convs / BNs / linears of ``model`` whose ``weight`` shape differs from
    ``state_dict``; returns ``model``. Parameters are fresh: load the state dict afterwards.

    >>> m = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8))
    >>> sd = nn.Sequential(nn.Conv2d(3, 5, 3), nn.BatchNorm2d(5)).state_dict()
    >>> fit_to_state_dict(m, sd)[1].num_features
    5
    """
    for name, m in list(model.named_modules()):
        w = state_dict.get(f"{name}.weight")
        own = getattr(m, "weight", None)
        if w is None or not isinstance(own, torch.Tensor) or tuple(own.shape) == tuple(w.shape):
            continue
        _set(model, name, _resized(m, name, w))
    return model
