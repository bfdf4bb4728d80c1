"""Parameters and multiply-accumulates (MACs), group-aware.

Two counters, named by ``counter=``:

* ``"torch"`` (default): ``torch.utils.flop_counter.FlopCounterMode``, which counts 2 FLOPs per
  multiply-accumulate of convolutions and matrix products (linear layers) from the real weight
  shapes, so grouped convs are counted correctly; MACs = FLOPs / 2. **Only convolution and linear
  MACs**: BatchNorm, ReLU, pooling and the residual additions are not counted. Modules with a
  ``dense_forward`` switch (IGC-V2 blocks, structured sparse convs) run a dense-equivalent forward by
  default; they are counted with the switch off, by their structured-sparse ops.
  Dense ResNet-50 at 224x224: 4.089 G MACs, 25.557 M parameters.
* ``"thop"``: Ultralytics THOP (``pip install ultralytics-thop``), the counter behind the paper's
  "GFLOPs" (which are MACs, SPEC §6). Besides conv and linear it adds BatchNorm (4 per output element
  of an affine BN in THOP's rule) and pooling. Dense ResNet-50: 4.134 G. The difference is a constant 44.6 M for
  every ResNet-50 variant (grouping changes only the convs), which is about 5 % of the compressed
  total at the paper's 85 % target: compare the paper's numbers with ``counter="thop"``.
"""
from __future__ import annotations

import copy
from typing import Literal, NamedTuple, Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["COUNTERS", "ModelCost", "count_params_macs", "set_dense_forward"]

COUNTERS = ("torch", "thop")
Counter = Literal["torch", "thop"]


class ModelCost(NamedTuple):
    params: int
    macs: int

    def __str__(self) -> str:
        return f"{self.params / 1e6:.3f} M params, {self.macs / 1e9:.4f} G MACs"


def set_dense_forward(model: nn.Module, on: bool) -> list[nn.Module]:
    """Set the ``dense_forward`` switch of every module that has one (IGC-V2 blocks, structured sparse
    convs) to ``on``; returns the modules whose switch changed, so that a caller can put them back."""
    changed = [m for m in model.modules() if getattr(m, "dense_forward", None) not in (None, on)]
    for m in changed:
        m.dense_forward = on
    return changed


def _input_size(input_size: Sequence[int]) -> tuple[int, ...]:
    size = tuple(int(s) for s in input_size)
    if len(size) == 3:
        size = (1, *size)
    if len(size) != 4 or min(size) < 1:
        raise ValueError(f"input_size must be (N, C, H, W) or (C, H, W) with positive sizes, got {tuple(input_size)}")
    return size


def _thop_macs(model: nn.Module, x: torch.Tensor) -> int:
    try:
        from thop import profile
    except ImportError:
        raise ImportError("counter='thop' needs Ultralytics THOP: pip install ultralytics-thop") from None
    # thop registers hooks and `total_ops` buffers on every module: count a copy, never the caller's model.
    macs, _ = profile(copy.deepcopy(model), inputs=(x,), verbose=False)
    return int(macs)


@torch.no_grad()
def count_params_macs(
    model: nn.Module, input_size: Sequence[int] = (1, 3, 224, 224), *, counter: Counter = "torch"
) -> ModelCost:
    """Parameter count and MACs of one forward pass on an input of ``input_size``.

    ``input_size`` is ``(N, C, H, W)`` or ``(C, H, W)`` (then ``N = 1``). The model runs once in eval
    mode (its mode is restored), on the device and dtype of its first parameter. ``counter`` picks
    what is counted (see the module docstring): ``"torch"`` conv + linear MACs, ``"thop"`` also
    BatchNorm and pooling (the paper's totals).

    >>> count_params_macs(nn.Conv2d(4, 8, 3, bias=False, groups=2), (4, 5, 5))
    ModelCost(params=144, macs=1296)
    """
    if counter not in COUNTERS:
        raise ValueError(f"unknown counter {counter!r}; allowed: {', '.join(COUNTERS)}")
    size = _input_size(input_size)
    params = sum(p.numel() for p in model.parameters())
    first = next(model.parameters(), None)
    x = torch.zeros(size, device=first.device if first is not None else None,
                    dtype=first.dtype if first is not None else torch.float32)
    was_training = model.training
    model.eval()
    switches = set_dense_forward(model, False)
    try:
        if counter == "thop":
            return ModelCost(int(params), _thop_macs(model, x))
        with FlopCounterMode(display=False) as flops:
            model(x)
    finally:
        model.train(was_training)
        for m in switches:
            m.dense_forward = True
    return ModelCost(int(params), int(flops.get_total_flops() // 2))
