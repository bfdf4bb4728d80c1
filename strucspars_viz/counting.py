"""Parameters and multiply-accumulates (MACs), group-aware, via ``torch.utils.flop_counter``.

The paper's "GFLOPs" are MACs (ResNet-50: 4.1 G at 224x224, 25.6 M parameters; SPEC §6).
``FlopCounterMode`` counts 2 FLOPs per multiply-accumulate of convolutions and matrix products
from the real weight shapes, so grouped convs are counted correctly; MACs = FLOPs / 2.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["ModelCost", "count_params_macs"]


class ModelCost(NamedTuple):
    params: int
    macs: int

    def __str__(self) -> str:
        return f"{self.params / 1e6:.3f} M params, {self.macs / 1e9:.4f} G MACs"


@torch.no_grad()
def count_params_macs(model: nn.Module, input_size: Sequence[int] = (1, 3, 224, 224)) -> ModelCost:
    """Parameter count and MACs of one forward pass on an input of ``input_size``.

    ``input_size`` is ``(N, C, H, W)`` or ``(C, H, W)`` (then ``N = 1``). The model runs once in eval
    mode (its mode is restored), on the device and dtype of its first parameter.
    """
    size = tuple(int(s) for s in input_size)
    if len(size) == 3:
        size = (1, *size)
    if len(size) != 4:
        raise ValueError(f"input_size must be (N, C, H, W) or (C, H, W), got {tuple(input_size)}")
    params = sum(p.numel() for p in model.parameters())
    first = next(model.parameters(), None)
    x = torch.zeros(size, device=first.device if first is not None else None,
                    dtype=first.dtype if first is not None else torch.float32)
    was_training = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
    return ModelCost(int(params), int(counter.get_total_flops() // 2))
