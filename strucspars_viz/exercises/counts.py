"""Exercises on counting parameters and multiply-accumulates (notebook 05), checked against torch.

* Parameters of ``nn.Conv2d(Cin, Cout, k, groups=G, bias=b)``: the weight is ``(Cout, Cin/G, k, k)``,
  so ``Cout Cin k^2 / G``, plus ``Cout`` biases when ``b`` (the bias is not grouped).
* MACs of one image through it: every output pixel of every output channel takes ``Cin/G k^2``
  multiply-accumulates, on an output map of ``H_out = floor((H + 2p - k) / s) + 1`` by
  ``W_out = floor((W + 2p - k) / s) + 1``: ``Cout Cin k^2 / G * H_out W_out``. (FLOPs, as
  ``torch.utils.flop_counter`` reports them, are ``2 x`` MACs: a multiply and an add.)
* The sparsified convs of a model after compression, given per layer ``(Cin, Cout, k, H_out, W_out)``
  and ``G_l``: ``params = sum_l n_l / G_l`` with ``n_l = Cout Cin k^2``, ``MACs = sum_l n_l H_out W_out / G_l``.
  Both shrink by ``G_l`` layer by layer, but the layers weigh differently: a layer on a large map has
  few parameters and many MACs, so the fraction of MACs kept is not the fraction of parameters kept.

The ground truth of every check is torch itself: the parameter count of a real ``nn.Conv2d`` and the
FLOPs that ``FlopCounterMode`` counts for it (on the ``meta`` device: shapes only, no arithmetic).
"""
from __future__ import annotations

import copy
from functools import lru_cache
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ..layers import sparsifiable_convs
from .core import Case, Exercise, Mistake, fmt, numeric_array, one_number, require

__all__ = ["COMPRESSED_COST", "CONV_MACS", "CONV_PARAMS", "EXERCISES", "SOLUTIONS", "layer_table"]


# ----------------------------------------------------------------------------- ground truth (torch)
def _torch_conv(cin: int, cout: int, k: int, groups: int, *, stride: int = 1, padding: int = 0,
                bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=stride, padding=padding, groups=groups, bias=bias, device="meta")


def _torch_params(cin: int, cout: int, k: int, groups: int, bias: bool) -> int:
    return int(sum(p.numel() for p in _torch_conv(cin, cout, k, groups, bias=bias).parameters()))


def _torch_macs(cin: int, cout: int, k: int, groups: int, h: int, w: int, stride: int, padding: int) -> tuple[int, int, int]:
    """``(MACs, H_out, W_out)`` of one image through the conv, from FlopCounterMode (FLOPs / 2)."""
    conv = _torch_conv(cin, cout, k, groups, stride=stride, padding=padding)
    with FlopCounterMode(display=False) as counter:
        out = conv(torch.empty(1, cin, h, w, device="meta"))
    return int(counter.get_total_flops() // 2), int(out.shape[2]), int(out.shape[3])


def _count(output, what: str) -> int | float:
    """The output as one number, an int when it is integral (counts are compared exactly)."""
    value = one_number(output, what)
    return int(value) if value.is_integer() else value


def layer_table(model: nn.Module, input_size: Sequence[int]) -> dict[str, tuple[int, int, int, int, int]]:
    """``{name: (Cin, Cout, k, H_out, W_out)}`` of the model's sparsifiable convs (the sparsifier's default
    list: every ungrouped conv but the stem) for one image of ``input_size = (C, H, W)``.

    One forward pass with hooks on a ``meta`` copy of the model (shapes only: fast, nothing computed).
    """
    convs, _ = sparsifiable_convs(model)
    if any(c.kernel_size[0] != c.kernel_size[1] for c in convs.values()):
        raise ValueError("layer_table describes square kernels only")
    meta = _meta_copy(model)
    rows: dict[str, tuple[int, int, int, int, int]] = {}
    hooks = [meta.get_submodule(name).register_forward_hook(
        lambda m, args, out, name=name: rows.__setitem__(
            name, (m.in_channels, m.out_channels, m.kernel_size[0], int(out.shape[2]), int(out.shape[3]))))
        for name in convs]
    try:
        with torch.no_grad():
            meta.eval()(torch.empty(1, *input_size, device="meta"))
    finally:
        for h in hooks:
            h.remove()
    return {name: rows[name] for name in convs}


def _meta_copy(model: nn.Module) -> nn.Module:
    return copy.deepcopy(model).to("meta")


@lru_cache(maxsize=None)
def _registered_table(name: str, size: tuple[int, int, int]) -> tuple[tuple[int, int, int, int, int], ...]:
    from ..models import build_model

    with torch.device("meta"):  # no weights are initialised for real: only the shapes are needed
        model = build_model(name)
    return tuple(layer_table(model, size).values())


# ----------------------------------------------------------------------------- 1. conv parameters
def _params_cases(rng: np.random.Generator) -> list[Case]:
    specs = [
        (64, 64, 3, 1, False, "dense 3x3 (G = 1)"),
        (64, 64, 3, 64, False, "depthwise (G = Cin = Cout)"),
        (32, 64, 1, 1, True, "1x1 with bias"),
        (16, 48, 3, 4, True, "non-square layer, G = 4, with bias"),
        (3, 16, 7, 1, False, "7x7 stem-like conv on RGB"),
        (256, 128, 1, 8, False, "1x1, G = 8"),
        (8, 8, 5, 2, True, "5x5, G = 2, with bias"),
    ]
    for _ in range(3):
        g = int(2 ** rng.integers(0, 4))
        cin, cout = g * int(rng.integers(1, 9)), g * int(rng.integers(1, 9))
        specs.append((cin, cout, int(rng.choice([1, 3, 5])), g, bool(rng.integers(2)), "random layer"))
    return [Case((cin, cout, k, g, b), f"{label}: Cin={cin}, Cout={cout}, k={k}, groups={g}, bias={b}")
            for cin, cout, k, g, b, label in specs]


def _verify_params(output, case: Case) -> None:
    cin, cout, k, groups, bias = case.args
    got = _count(output, "the number of parameters")
    want = _torch_params(cin, cout, k, groups, bias)
    weights = cout * (cin // groups) * k * k
    require(got == want,
            f"got {got}; nn.Conv2d({cin}, {cout}, {k}, groups={groups}, bias={bias}) has {want} parameters: its weight "
            f"has shape (Cout, Cin/G, k, k) = ({cout}, {cin // groups}, {k}, {k}), {weights} entries"
            + (f", plus {cout} biases (one per output channel)" if bias else ", and no bias"))


CONV_PARAMS = Exercise(
    name="conv_params",
    signature="conv_params(in_channels, out_channels, kernel_size, groups, bias) -> int",
    make_cases=_params_cases,
    verify=_verify_params,
    mistakes=(
        Mistake("no_groups",
                "You counted the dense weight Cout Cin k^2. In a grouped conv each output channel reads only the "
                "Cin/G input channels of its group: the weight is (Cout, Cin/G, k, k), so divide by G.",
                lambda cin, cout, k, g, b: cout * cin * k * k + (cout if b else 0)),
        Mistake("groups_twice",
                "You divided by G twice (Cout/G x Cin/G). That is one diagonal block; the conv keeps G such blocks, "
                "so its weight is (Cout, Cin/G, k, k): Cout Cin k^2 / G.",
                lambda cin, cout, k, g, b: (cout // g) * (cin // g) * k * k + (cout if b else 0)),
        Mistake("no_bias",
                "With bias=True the conv also holds one bias per output channel: add Cout (the bias is not grouped).",
                lambda cin, cout, k, g, b: cout * (cin // g) * k * k),
        Mistake("k_not_squared",
                "A k x k kernel has k^2 weights per (output, input) channel pair, not k.",
                lambda cin, cout, k, g, b: cout * (cin // g) * k + (cout if b else 0)),
    ),
)


# ----------------------------------------------------------------------------- 2. conv MACs
def _macs_cases(rng: np.random.Generator) -> list[Case]:
    specs = [
        (64, 64, 3, 1, 56, 56, 1, 1, "dense 3x3, 'same' padding"),
        (64, 64, 3, 64, 56, 56, 1, 1, "depthwise (G = Cin = Cout)"),
        (64, 128, 3, 1, 56, 56, 2, 1, "stride 2"),
        (256, 64, 1, 4, 14, 14, 1, 0, "1x1, G = 4"),
        (3, 64, 7, 1, 224, 224, 2, 3, "ResNet stem: 7x7, stride 2, padding 3"),
        (16, 32, 3, 2, 33, 20, 2, 1, "non-square odd-sized input, stride 2"),
        (8, 8, 5, 2, 15, 9, 1, 0, "5x5 without padding, non-square"),
    ]
    for _ in range(3):
        g = int(2 ** rng.integers(0, 4))
        k = int(rng.choice([1, 3, 5]))
        specs.append((g * int(rng.integers(1, 9)), g * int(rng.integers(1, 9)), k, g, int(rng.integers(k + 2, 40)),
                      int(rng.integers(k + 2, 40)), int(rng.integers(1, 3)), int(rng.integers(0, k // 2 + 1)),
                      "random layer"))
    return [Case((cin, cout, k, g, h, w, s, p),
                 f"{label}: Cin={cin}, Cout={cout}, k={k}, groups={g}, input {h}x{w}, stride={s}, padding={p}")
            for cin, cout, k, g, h, w, s, p, label in specs]


def _verify_macs(output, case: Case) -> None:
    cin, cout, k, groups, h, w, stride, padding = case.args
    got = _count(output, "the number of multiply-accumulates")
    want, h_out, w_out = _torch_macs(*case.args)
    per_pixel = cout * (cin // groups) * k * k
    require(got == want,
            f"got {got}; FlopCounterMode counts {2 * want} FLOPs = {want} MACs for this conv. The output map is "
            f"H_out x W_out = {h_out} x {w_out} (floor((H + 2p - k) / s) + 1 each), and each output pixel costs "
            f"Cout Cin/G k^2 = {per_pixel} multiply-accumulates")


def _out(size: int, k: int, s: int, p: int) -> int:
    return (size + 2 * p - k) // s + 1


CONV_MACS = Exercise(
    name="conv_macs",
    signature="conv_macs(in_channels, out_channels, kernel_size, groups, height, width, stride, padding) -> int",
    make_cases=_macs_cases,
    verify=_verify_macs,
    mistakes=(
        Mistake("flops",
                "Your count is twice too large: that is the FLOP count (a multiply and an add per "
                "multiply-accumulate). torch.utils.flop_counter reports FLOPs = 2 x MACs; return the MACs.",
                lambda ci, co, k, g, h, w, s, p: 2 * co * (ci // g) * k * k * _out(h, k, s, p) * _out(w, k, s, p)),
        Mistake("input_size",
                "You multiplied by the input's H x W. The conv computes one value per position of its *output* "
                "map, H_out = floor((H + 2p - k) / s) + 1 (and W_out alike): stride and padding change it.",
                lambda ci, co, k, g, h, w, s, p: co * (ci // g) * k * k * h * w),
        Mistake("no_groups",
                "You counted a dense conv. With G groups each output pixel reads only the Cin/G input channels of "
                "its group: divide by G.",
                lambda ci, co, k, g, h, w, s, p: co * ci * k * k * _out(h, k, s, p) * _out(w, k, s, p)),
        Mistake("no_padding",
                "Your output map ignores the padding: the padded input is H + 2p wide, so "
                "H_out = floor((H + 2p - k) / s) + 1.",
                lambda ci, co, k, g, h, w, s, p: co * (ci // g) * k * k * _out(h, k, s, 0) * _out(w, k, s, 0)),
    ),
)


# ----------------------------------------------------------------------------- 3. compressed model cost
def _random_groups(rng: np.random.Generator, table, most: int = 8) -> list[int]:
    """A power of two per layer, dividing both channel counts, at most ``most``."""
    out = []
    for cin, cout, *_ in table:
        top = 1
        while top < most and cin % (2 * top) == 0 and cout % (2 * top) == 0:
            top *= 2
        out.append(int(2 ** rng.integers(0, top.bit_length())))
    return out


def _cost_cases(rng: np.random.Generator) -> list[Case]:
    cases = [
        ([(64, 64, 3, 32, 32)], [1], "one dense layer"),
        ([(64, 64, 3, 56, 56), (64, 256, 1, 56, 56)], [64, 4], "a depthwise 3x3 and a 1x1, G = 4"),
        ([(64, 64, 3, 56, 56), (512, 512, 3, 7, 7)], [4, 4], "a large map and a small one, same G"),
        ([(128, 128, 3, 28, 28), (512, 2048, 1, 7, 7)], [8, 2], "a large map and a small one, different G"),
        ([(16, 32, 3, 17, 9), (32, 16, 1, 17, 9), (16, 16, 5, 9, 5)], [2, 1, 16], "non-square maps"),
    ]
    resnet20 = _registered_table("resnet20", (3, 32, 32))
    cases.append((list(resnet20), _random_groups(rng, resnet20), "ResNet-20 at 32x32, random groups"))
    cases.append((list(resnet20), [1] * len(resnet20), "ResNet-20 at 32x32, dense (all G = 1)"))
    resnet50 = _registered_table("resnet50", (3, 224, 224))
    cases.append((list(resnet50), _random_groups(rng, resnet50), "ResNet-50 at 224x224, random groups"))
    for _ in range(2):
        n = int(rng.integers(2, 6))
        table = []
        for _ in range(n):
            k = int(rng.choice([1, 3]))
            table.append((int(2 ** rng.integers(3, 8)), int(2 ** rng.integers(3, 8)), k,
                          int(rng.integers(4, 60)), int(rng.integers(4, 60))))
        cases.append((table, _random_groups(rng, table, most=16), f"{n} random layers"))
    out = []
    for table, groups, label in cases:
        rows = f"layers {table}" if len(table) <= 3 else f"{len(table)} layers"
        out.append(Case(([tuple(r) for r in table], list(groups)), f"{label}: {rows}, groups {fmt(groups)}"))
    return out


def _truth_cost(table, groups) -> tuple[int, int]:
    params = macs = 0
    for (cin, cout, k, h_out, w_out), g in zip(table, groups):
        params += _torch_params(cin, cout, k, g, False)
        macs += _torch_macs(cin, cout, k, g, h_out, w_out, 1, k // 2)[0]  # odd k, 'same' padding: H_out x W_out
    return params, macs


def _verify_cost(output, case: Case) -> None:
    table, groups = case.args
    require(output is not None, "your function returned None; it should return the pair (params, macs)")
    arr = numeric_array(output, "the pair (params, macs)")
    require(arr.shape == (2,), f"return the pair (params, macs), got an array of shape {arr.shape}")
    params, macs = (_count(v, "a count") for v in arr)
    want_p, want_m = _truth_cost(table, groups)
    dense_p, dense_m = _truth_cost(table, [1] * len(table))
    require(params == want_p,
            f"params: got {params}; the compressed convs nn.Conv2d(Cin_l, Cout_l, k_l, groups=G_l, bias=False) hold "
            f"sum_l Cout_l Cin_l k_l^2 / G_l = {want_p} weights (the dense ones hold {dense_p})")
    require(macs == want_m,
            f"MACs: got {macs}; FlopCounterMode counts {want_m} MACs for these grouped convs, "
            f"sum_l (Cout_l Cin_l k_l^2 / G_l) H_out,l W_out,l (the dense ones: {dense_m}). Note the fractions "
            f"kept: {want_p / dense_p:.4f} of the parameters but {want_m / dense_m:.4f} of the MACs")


def _cost(table, groups, *, power: int = 1, spatial: bool = True) -> tuple[int, int]:
    params = macs = 0
    for (cin, cout, k, h, w), g in zip(table, groups):
        n = cout * cin * k * k // g ** power
        params += n
        macs += n * (h * w if spatial else 1)
    return params, macs


def _params_ratio(table, groups):
    params, _ = _cost(table, groups)
    dense_p, dense_m = _cost(table, [1] * len(table))
    return params, dense_m * params / dense_p


COMPRESSED_COST = Exercise(
    name="compressed_cost",
    signature="compressed_cost(layers, groups) -> (params, macs) of the sparsified convs after compression",
    make_cases=_cost_cases,
    verify=_verify_cost,
    mistakes=(
        Mistake("dense_macs",
                "Your MACs are those of the dense convs. A grouped conv saves MACs as well as parameters: each "
                "output pixel reads only Cin/G input channels, so layer l costs n_l H_out W_out / G_l.",
                lambda table, groups: (_cost(table, groups)[0], _cost(table, [1] * len(table))[1])),
        Mistake("params_ratio",
                "You scaled the dense MACs by the fraction of parameters kept. Layers weigh differently in the two "
                "counts (a layer on a large map has few parameters but many MACs), so divide each layer's own MACs "
                "n_l H_out W_out by its own G_l and sum.",
                _params_ratio),
        Mistake("no_spatial",
                "Your MACs equal your parameter count: a conv applies every weight once per output pixel, so layer "
                "l costs n_l / G_l x H_out W_out multiply-accumulates.",
                lambda table, groups: _cost(table, groups, spatial=False)),
        Mistake("groups_squared",
                "You divided by G_l^2 (Cout/G x Cin/G is one diagonal block). The compressed conv keeps G such "
                "blocks: its weight is (Cout, Cin/G, k, k), n_l / G_l.",
                lambda table, groups: _cost(table, groups, power=2)),
    ),
)


# ----------------------------------------------------------------------------- solutions
def _conv_params(in_channels, out_channels, kernel_size, groups, bias):
    """The package's way: build the conv (on the meta device) and count its parameters."""
    return _torch_params(in_channels, out_channels, kernel_size, groups, bias)


def _conv_macs(in_channels, out_channels, kernel_size, groups, height, width, stride, padding):
    """torch's FlopCounterMode, as :func:`strucspars_viz.counting.count_params_macs` uses it (FLOPs / 2)."""
    return _torch_macs(in_channels, out_channels, kernel_size, groups, height, width, stride, padding)[0]


def _compressed_cost(layers, groups):
    """Closed form: ``sum_l n_l / G_l`` and ``sum_l n_l H_out W_out / G_l``."""
    return _cost(layers, groups)


#: this module's exercises, in teaching order
EXERCISES: tuple[Exercise, ...] = (CONV_PARAMS, CONV_MACS, COMPRESSED_COST)
#: {name: the package's implementation (or a small torch-based reference) with the exercise's signature}
SOLUTIONS: dict[str, Callable] = {
    "conv_params": _conv_params,
    "conv_macs": _conv_macs,
    "compressed_cost": _compressed_cost,
}
