"""Materialising the compressed model: real grouped convolutions plus explicit shuffles (SPEC §6).

A sparsified conv with ``G > 1`` becomes

    x  --gather Q-->  Conv2d(Cin, Cout, groups=G) with W' = blockdiag(W[P][:, Q])  --scatter P_inv-->  y

Check: ``y'[a] = sum_b W[P_a, Q_b] x[Q_b] = y[P_a]`` on the kept blocks, so ``y = y'[P_inv]`` and every
layer boundary keeps the original channel order (BN, residual sums and concatenations untouched).
"""
from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from .sparsifier import LayerState, StructuredSparsifier

__all__ = [
    "ChannelPermute",
    "PermutedGroupConv2d",
    "compress",
    "count_permutes",
    "fold_shuffles",
    "grouped_weight",
    "max_output_difference",
]


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
        modules = {n: m for n, m in model.named_modules() if n in state["layers"]}
        missing = sorted(set(state["layers"]) - set(modules))
        if missing:
            raise ValueError(f"state names layers the model does not have: {missing}")
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
