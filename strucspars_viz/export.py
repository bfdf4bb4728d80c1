"""Materialising the compressed model: real grouped convolutions plus explicit shuffles (SPEC §6).

A sparsified conv with ``G > 1`` becomes

    x  --gather Q-->  Conv2d(Cin, Cout, groups=G) with W' = blockdiag(W[P][:, Q])  --scatter P_inv-->  y

Check: ``y'[a] = sum_b W[P_a, Q_b] x[Q_b] = y[P_a]`` on the kept blocks, so ``y = y'[P_inv]`` and every
layer boundary keeps the original channel order (BN, residual sums and concatenations untouched).
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Iterable

import numpy as np
import torch
from torch import nn

from .birkhoff import Method
from .counting import ModelCost, count_params_macs
from .sparsifier import LayerState, StructuredSparsifier, TargetResult, sparsifiable_convs

__all__ = [
    "EQUIVALENCE_TOL",
    "ChannelPermute",
    "CompressionReport",
    "PermutedGroupConv2d",
    "compress",
    "check_state_matches",
    "compress_and_check",
    "count_permutes",
    "fold_shuffles",
    "grouped_weight",
    "is_equivalent",
    "max_output_difference",
    "sparsify_to_target",
]

#: default bound on ``max |masked(x) - compressed(x)|`` for float32 models (SPEC §6)
EQUIVALENCE_TOL = 1e-4


class ChannelPermute(nn.Module):
    """``x[:, index]``: gathers channels by an index buffer (a learned shuffle)."""

    def __init__(self, index) -> None:
        super().__init__()
        self.register_buffer("index", torch.as_tensor(np.asarray(index), dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.index_select(1, self.index)

    def extra_repr(self) -> str:
        return f"channels={self.index.numel()}"


class PermutedGroupConv2d(nn.Sequential):
    """``scatter(conv(gather(x)))`` with ``gather = x[:, Q]`` and ``scatter = out[:, P_inv]``.

    An identity permutation is stored as ``nn.Identity`` (no copy at run time).
    """

    def __init__(self, gather: nn.Module, conv: nn.Conv2d, scatter: nn.Module) -> None:
        super().__init__()
        self.gather, self.conv, self.scatter = gather, conv, scatter


def _permute_or_identity(index: np.ndarray) -> nn.Module:
    return nn.Identity() if np.array_equal(index, np.arange(len(index))) else ChannelPermute(index)


def grouped_weight(weight: torch.Tensor, row_perm, col_perm, groups: int) -> torch.Tensor:
    """Diagonal blocks of ``W[P][:, Q]`` stacked as a grouped-conv weight ``(Cout, Cin/G, kh, kw)``.

    Block ``r`` holds rows ``r Cout/G .. (r+1) Cout/G`` and columns ``r Cin/G .. (r+1) Cin/G``.
    """
    cout, cin = weight.shape[:2]
    rest = weight.shape[2:]
    wp = weight[torch.as_tensor(np.asarray(row_perm))][:, torch.as_tensor(np.asarray(col_perm))]
    blocks = wp.reshape(groups, cout // groups, groups, cin // groups, *rest)
    # diagonal() moves the block index last: (Cout/G, Cin/G, *rest, G)
    diag = blocks.diagonal(dim1=0, dim2=2)
    return diag.permute(-1, *range(diag.dim() - 1)).reshape(cout, cin // groups, *rest).contiguous()


def _grouped_module(conv: nn.Conv2d, st: LayerState) -> nn.Module:
    g = st.groups
    new = nn.Conv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        groups=g,
        bias=conv.bias is not None,
        padding_mode=conv.padding_mode,
        device=conv.weight.device,
        dtype=conv.weight.dtype,
    )
    with torch.no_grad():
        new.weight.copy_(grouped_weight(conv.weight.detach(), st.row_perm, st.col_perm, g))
        if conv.bias is not None:
            new.bias.copy_(conv.bias.detach()[torch.as_tensor(st.row_perm)])
    return PermutedGroupConv2d(_permute_or_identity(st.col_perm), new, _permute_or_identity(st.row_inv))


def _set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


def check_state_matches(model: nn.Module, state: dict) -> None:
    """Raise a ValueError unless ``state`` (a sparsifier's ``state_dict()``) was made for ``model``.

    The state's conv list (``state["convs"]``: every ``nn.Conv2d`` with ``[Cout, Cin]``) must equal
    the model's, names and shapes; states without that list (older files) are compared with the
    model's default sparsifiable convs. The message lists the missing and unexpected layers.
    """
    if not isinstance(state, dict) or not isinstance(state.get("layers"), dict):
        raise ValueError("state must be a sparsifier state_dict(): a dict with a 'layers' dict")
    convs = {n: m for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    saved = state.get("convs")
    if saved is not None:
        expected = {n: [int(v) for v in shape] for n, shape in saved.items()}
        actual = {n: [m.out_channels, m.in_channels] for n, m in convs.items()}
        what = "convs"
    else:
        expected = {n: None for n in state["layers"]}
        actual = {n: None for n in sparsifiable_convs(model)[0]}
        what = "sparsifiable convs (the state lists no 'convs'; pass a StructuredSparsifier made with the same include/exclude)"
    missing = sorted(set(actual) - set(expected))
    unexpected = sorted(set(expected) - set(actual))
    shapes = [f"{n}: state {expected[n][0]}x{expected[n][1]}, model {actual[n][0]}x{actual[n][1]}"
              for n in expected if n in actual and expected[n] != actual[n]]
    not_conv = sorted(set(state["layers"]) - set(convs))
    if missing or unexpected or shapes or not_conv:
        parts = []
        if missing:
            parts.append(f"{len(missing)} model layers missing from the state: {_short(missing)}")
        if unexpected or not_conv:
            parts.append(f"unexpected layers in the state: {_short(sorted(set(unexpected) | set(not_conv)))}")
        if shapes:
            parts.append(f"shape mismatches: {_short(shapes)}")
        raise ValueError(f"sparsifier state does not match the {type(model).__name__} ({what}): " + "; ".join(parts))


def _short(items: list[str], limit: int = 8) -> str:
    return ", ".join(items[:limit]) + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")


def compress(
    sparsifier_or_model: StructuredSparsifier | nn.Module, state: dict | None = None, *, fold: bool = False
) -> nn.Module:
    """A deployable copy of the model with every ``G > 1`` conv as a real grouped conv (SPEC §6).

    Parameters
    ----------
    sparsifier_or_model : a :class:`StructuredSparsifier` (its model and per-layer ``P, Q, G`` are
        used), or a model together with ``state = sparsifier.state_dict()``.

    Returns
    -------
    A new module (the input is not modified) whose outputs equal those of the masked dense model
    (``W * U_G[P_inv][:, Q_inv]``): weights outside the kept blocks are dropped, whether or not
    the dense model was masked first. ``fold=True`` also applies :func:`fold_shuffles`.
    """
    if isinstance(sparsifier_or_model, StructuredSparsifier):
        if state is not None:
            raise ValueError("compress(sparsifier) takes no state: the sparsifier carries it")
        model, layers = sparsifier_or_model.model, sparsifier_or_model.layers
    elif isinstance(sparsifier_or_model, nn.Module):
        if state is None:
            raise ValueError(
                "compress(model) needs the per-layer permutations and groups: pass the StructuredSparsifier, "
                "or compress(model, state=sparsifier.state_dict())"
            )
        model = sparsifier_or_model
        check_state_matches(model, state)
        # Reuse the sparsifier's own validation and bookkeeping rather than re-parsing the state here.
        helper = StructuredSparsifier(model, include=list(state["layers"]))
        helper.load_state_dict({**state, "masked": False})
        layers = helper.layers
    else:
        raise TypeError(f"compress expects a StructuredSparsifier or nn.Module, got {type(sparsifier_or_model).__name__}")

    out = copy.deepcopy(model)
    for name, st in layers.items():
        if st.groups > 1:
            conv = out.get_submodule(name)
            _set_submodule(out, name, _grouped_module(conv, st))
    return fold_shuffles(out) if fold else out


#: Blocks whose forward is known to be ``conv_a -> bn -> ReLU -> conv_b`` with no other consumer of
#: ``conv_a``'s output: (conv_a, bn, conv_b) attribute names. torchvision's BasicBlock / Bottleneck
#: and our CIFAR BasicBlock use conv1/bn1/conv2 (and conv2/bn2/conv3); DenseNet's _DenseLayer uses
#: conv1/norm2/conv2.
_FOLDABLE = {
    "BasicBlock": [("conv1", "bn1", "conv2")],
    "Bottleneck": [("conv1", "bn1", "conv2"), ("conv2", "bn2", "conv3")],
    "_DenseLayer": [("conv1", "norm2", "conv2")],
}


@torch.no_grad()
def fold_shuffles(model: nn.Module) -> nn.Module:
    """Merge the scatter of conv ``l`` and the gather of conv ``l+1`` inside known blocks (SPEC §6).

    With ``y' = y[:, P_l]`` the grouped conv's raw output, ``x[:, Q_{l+1}] = y'[:, P_l^{-1}[Q_{l+1}]]``
    after a per-channel BN (whose parameters are permuted by ``P_l``) and ReLU. So conv ``l`` drops its
    scatter and conv ``l+1`` gathers once with the composed index, or not at all when that index is
    the identity. Residual streams and concatenations keep the original order. In place; returns
    ``model``.
    """
    for block in model.modules():
        for conv_a, bn_name, conv_b in _FOLDABLE.get(type(block).__name__, []):
            a, bn, b = (getattr(block, n, None) for n in (conv_a, bn_name, conv_b))
            if not (isinstance(a, PermutedGroupConv2d) and isinstance(b, PermutedGroupConv2d)
                    and isinstance(bn, nn.BatchNorm2d) and not isinstance(a.scatter, nn.Identity)):
                continue
            scatter = a.scatter.index  # P_l^{-1}
            order = torch.argsort(scatter)  # P_l
            for tensor in (bn.weight, bn.bias, bn.running_mean, bn.running_var):
                if tensor is not None:
                    tensor.copy_(tensor[order])
            gather = b.gather.index if isinstance(b.gather, ChannelPermute) else torch.arange(len(scatter))
            a.scatter = nn.Identity()
            b.gather = _permute_or_identity(scatter[gather].cpu().numpy())
    return model


def count_permutes(model: nn.Module) -> int:
    """Number of channel-gather modules, i.e. index copies per forward pass."""
    return sum(isinstance(m, ChannelPermute) for m in model.modules())


@torch.no_grad()
def max_output_difference(reference: nn.Module, candidate: nn.Module, x: torch.Tensor) -> float:
    """``max |reference(x) - candidate(x)|`` in eval mode (modes are restored)."""
    modes = reference.training, candidate.training
    reference.eval(), candidate.eval()
    try:
        return float((reference(x) - candidate(x)).abs().max())
    finally:
        reference.train(modes[0]), candidate.train(modes[1])


@dataclass(frozen=True)
class CompressionReport:
    """What :func:`compress_and_check` found.

    ``before`` / ``after``: parameters and MACs of one sample (``N = 1``) through the masked dense
    and the compressed model; ``max_abs_diff = max |masked(x) - compressed(x)|`` on the example
    batch; ``rel_diff = max_abs_diff / max |masked(x)|``; ``equivalent`` is True iff
    ``max_abs_diff`` is finite and below ``tol * max(1, max |masked(x)|)`` (:func:`is_equivalent`;
    a NaN or inf never counts as equivalent).
    """

    compressed: nn.Module
    before: ModelCost
    after: ModelCost
    max_abs_diff: float
    rel_diff: float
    equivalent: bool
    tol: float = EQUIVALENCE_TOL

    def to_dict(self) -> dict:
        """Everything but the module, as plain Python numbers (non-finite diffs become ``None``)."""
        def finite(v: float) -> float | None:
            return float(v) if math.isfinite(v) else None

        return {
            "params_before": self.before.params, "macs_before": self.before.macs,
            "params_after": self.after.params, "macs_after": self.after.macs,
            "params_ratio": self.after.params / max(self.before.params, 1),
            "macs_ratio": self.after.macs / max(self.before.macs, 1),
            "max_abs_diff": finite(self.max_abs_diff), "rel_diff": finite(self.rel_diff),
            "equivalent": self.equivalent, "tol": self.tol,
        }


def is_equivalent(max_abs_diff: float, tol: float = EQUIVALENCE_TOL, scale: float = 1.0) -> bool:
    """``max_abs_diff < tol * max(1, scale)``, with NaN / inf judged *not* equivalent (a plain
    ``diff >= tol`` alarm misses NaN, since ``NaN >= tol`` is False).

    ``scale = max |masked(x)|``: float32 rounding grows with the outputs (a deep net with large
    activations differs by ~1e-7 relative), so above 1 the bound is relative; below it, absolute.

    >>> is_equivalent(1e-6), is_equivalent(float("nan")), is_equivalent(float("inf"))
    (True, False, False)
    >>> is_equivalent(0.06, scale=4e5), is_equivalent(0.06, scale=1.0), is_equivalent(1e-5, scale=float("nan"))
    (True, False, False)
    """
    return math.isfinite(max_abs_diff) and math.isfinite(scale) and max_abs_diff < tol * max(1.0, scale)


@torch.no_grad()
def compress_and_check(
    model: nn.Module,
    state: dict | StructuredSparsifier,
    example: torch.Tensor,
    *,
    tol: float = EQUIVALENCE_TOL,
    fold: bool = False,
    counter: str = "torch",
) -> CompressionReport:
    """Compress ``model`` with ``state`` and prove the result equals the masked dense model (SPEC §6).

    Parameters
    ----------
    model : the dense model (masked or not: :func:`compress` drops the weights outside the kept
        blocks either way; the reference output is that of ``model`` with the masks applied).
    state : ``sparsifier.state_dict()`` (or the sparsifier itself) naming every sparsified conv's
        ``P``, ``Q`` and ``G``; checked against ``model`` by :func:`compress`.
    example : an input batch ``(N, C, H, W)``; the costs are counted for one sample of its shape.
    tol : bound on ``max |masked(x) - compressed(x)|``, relative to ``max |masked(x)|`` when that
        exceeds 1 (:func:`is_equivalent`).
    fold : also merge shuffles inside blocks (:func:`fold_shuffles`).
    counter : ``"torch"`` (conv + linear MACs) or ``"thop"`` (also BatchNorm and pooling: the paper's
        totals); see :mod:`strucspars_viz.counting`.

    Returns
    -------
    :class:`CompressionReport`. ``model`` is not modified.
    """
    if isinstance(state, StructuredSparsifier):
        state = state.state_dict()
    if not isinstance(example, torch.Tensor) or example.dim() != 4:
        shape = tuple(example.shape) if isinstance(example, torch.Tensor) else type(example).__name__
        raise ValueError(f"compress_and_check: example must be an (N, C, H, W) tensor batch, got {shape}")
    compressed = compress(model, state=state, fold=fold)
    # The reference is the *masked* dense model: a masked copy, so an unmasked input stays untouched.
    reference = copy.deepcopy(model)
    helper = StructuredSparsifier(reference, include=list(state["layers"]))
    helper.load_state_dict({**state, "masked": False})
    helper.enforce_masks()
    first = next(reference.parameters(), None)
    x = example.to(device=first.device if first is not None else None,
                   dtype=first.dtype if first is not None else None)
    diff = max_output_difference(reference, compressed, x)
    was_training = reference.training
    reference.eval()
    try:
        scale = float(reference(x).abs().max())
    finally:
        reference.train(was_training)
    rel = diff / max(scale, 1e-12) if math.isfinite(scale) else float("nan")
    size = (1, *example.shape[1:])
    return CompressionReport(
        compressed=compressed,
        before=count_params_macs(reference, size, counter=counter),
        after=count_params_macs(compressed, size, counter=counter),
        max_abs_diff=diff,
        rel_diff=rel,
        equivalent=is_equivalent(diff, tol, scale),
        tol=float(tol),
    )


def sparsify_to_target(
    model: nn.Module,
    target: float,
    *,
    iters: int = 20,
    method: Method = "lsa",
    init: str | None = None,
    progress: bool = False,
    decay: float = 0.5,
    keep: float = 0.9,
    include: str | Iterable[str] | None = None,
    exclude: str | Iterable[str] | None = None,
    tol: float = 0.01,
) -> tuple[StructuredSparsifier, TargetResult]:
    """Learn ``P, Q`` on every sparsifiable conv, reach the model ``target`` sparsity, mask (SPEC §2, §5).

    One-shot (no training): ``iters`` P/Q rounds per layer on the current weights
    (:meth:`StructuredSparsifier.update_permutations`, ``init`` as in
    :func:`~strucspars_viz.permutation.learn_permutations`), then one global ``keep`` chosen so the
    sparsity ``1 - sum n_l / G_l / sum n_l`` lands in ``[target, target + tol]``
    (:meth:`StructuredSparsifier.reach_target`), then ``W <- W * U_G[P_inv][:, Q_inv]`` in place.

    Returns the sparsifier (masked) and the :class:`TargetResult`, whose ``fractions`` hold every
    layer's kept fractions ``f(G)`` computed *before* masking (after masking they are all 1 up to
    the chosen ``G``).
    """
    sp = StructuredSparsifier(model, decay=decay, keep=keep, include=include, exclude=exclude)
    sp.update_permutations(iters, method, progress=progress, init=init)
    result = sp.reach_target(target, tol)
    sp.apply_masks()
    return sp, result
