"""Connectivity, path counts and the complementary condition of composed blocks (SPEC §10).

A composed block ``x' = P_L W_L ... P_1 W_1 x`` is read from its **actual modules in forward order**
(:func:`linear_stages`): every conv contributes its channel matrix, every
:class:`~strucspars_viz.designs.permute.ChannelPermutation` its permutation matrix ``Pi``
(``Pi[a, perm[a]] = 1``), channel-wise modules (BatchNorm, ReLU, ...) the identity.

* Connectivity of a conv: ``A[i, j] = 1`` iff its dense weight has a nonzero entry for output ``i``,
  input ``j`` (groups expanded, zero weights respected): ``A = [S > 0]`` with ``S`` the weight-norm
  matrix of the dense weight (SPEC §0).
* **Path counts**: ``N = A_L' ... A_1'`` (``A'`` the 0/1 matrices of convs and permutations in forward
  order); ``N[o, i]`` is the number of channel sequences ``i -> ... -> o`` through the block.
* **Complementary condition**: ``N`` is the all-ones matrix (exactly one path between every input and
  every output channel).
* **Effective S**: the same product with the L1 weight-norm matrices ``S_l`` in place of ``A_l``.

The identity shortcut of a residual unit is not part of the product: these functions read ``block.body``
when the block has one (IGC blocks, ShuffleNet unit) and the module itself otherwise.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from torch import nn

from .permute import ChannelPermutation, permutation_matrix
from .ssc import StructuredSparseConv2d

__all__ = [
    "Stage",
    "PathViolation",
    "dense_norm_matrix",
    "connectivity",
    "linear_stages",
    "stage_matrices",
    "path_counts",
    "partial_path_counts",
    "effective_norm_matrix",
    "find_violation",
    "is_complementary",
    "check_complementary",
]

#: modules that act on each channel separately: identity in the channel product
CHANNELWISE = (nn.BatchNorm2d, nn.ReLU, nn.ReLU6, nn.Identity, nn.Dropout, nn.Dropout2d, nn.Hardswish, nn.SiLU)


class Stage(NamedTuple):
    """One factor of a block's product: ``kind`` is ``"conv"`` or ``"perm"``; ``name`` its module path."""

    kind: str
    name: str
    module: nn.Module


class PathViolation(NamedTuple):
    """A pair of channels that breaks the complementary condition: ``paths`` is 0 or >= 2."""

    output: int
    input: int
    paths: int

    def __str__(self) -> str:
        return f"output channel {self.output} is reached from input channel {self.input} by {self.paths} paths (need exactly 1)"


def dense_norm_matrix(conv: nn.Module, p: int = 1) -> np.ndarray:
    """``S`` (``Cout x Cin``, float64) of a conv's **dense** weight: groups expanded, SPEC §0 norms.

    ``nn.Conv2d`` with ``groups = g`` stores ``(Cout, Cin/g, kh, kw)``; output ``o`` of group
    ``r = o // (Cout/g)`` reads inputs ``r*Cin/g .. (r+1)*Cin/g - 1``. A
    :class:`StructuredSparseConv2d` is read through its ``dense_weight()``.
    """
    if p not in (1, 2):
        raise ValueError(f"dense_norm_matrix: p must be 1 or 2, got {p!r}")
    if isinstance(conv, StructuredSparseConv2d):
        w = conv.dense_weight().detach().double().cpu()
        flat = w.reshape(w.shape[0], w.shape[1], -1)
        return (flat.abs().sum(-1) if p == 1 else flat.pow(2).sum(-1).sqrt()).numpy()
    if not isinstance(conv, nn.Conv2d):
        raise TypeError(f"dense_norm_matrix expects nn.Conv2d or StructuredSparseConv2d, got {type(conv).__name__}")
    w = conv.weight.detach().double().cpu()
    flat = w.reshape(w.shape[0], w.shape[1], -1)
    s_grouped = (flat.abs().sum(-1) if p == 1 else flat.pow(2).sum(-1).sqrt()).numpy()  # (Cout, Cin/g)
    cout, cin, g = conv.out_channels, conv.in_channels, conv.groups
    dense = np.zeros((cout, cin))
    rows = np.arange(cout)[:, None]
    cols = (np.arange(cout) // (cout // g))[:, None] * (cin // g) + np.arange(cin // g)[None, :]
    dense[rows, cols] = s_grouped
    return dense


def connectivity(conv: nn.Module) -> np.ndarray:
    """0/1 int64 ``(Cout, Cin)``: 1 where the dense weight has any nonzero tap."""
    return (dense_norm_matrix(conv) > 0).astype(np.int64)


def linear_stages(block: nn.Module) -> list[Stage]:
    """The convs and permutations of ``block`` (its ``body`` if it has one) in forward order.

    Walks ``nn.Sequential`` containers recursively (so a compressed StrucSpars layer,
    ``export.PermutedGroupConv2d`` = gather, grouped conv, scatter, reads as a composed block too);
    channel-wise modules are skipped. Any other module
    (whose channel action is unknown) raises a ValueError naming it, rather than being ignored.
    """
    root = getattr(block, "body", block)
    stages: list[Stage] = []

    def walk(mod: nn.Module, name: str) -> None:
        if isinstance(mod, (nn.Conv2d, StructuredSparseConv2d)):
            stages.append(Stage("conv", name or type(mod).__name__, mod))
        elif isinstance(mod, ChannelPermutation) or _is_export_permute(mod):
            stages.append(Stage("perm", name or "perm", mod))
        elif isinstance(mod, CHANNELWISE):
            return
        elif isinstance(mod, nn.Sequential):
            for child_name, child in mod.named_children():
                walk(child, f"{name}.{child_name}" if name else child_name)
        else:
            raise ValueError(
                f"linear_stages: cannot read the channel action of {name or 'block'} ({type(mod).__name__}); "
                f"allowed: nn.Conv2d, StructuredSparseConv2d, ChannelPermutation, channel-wise modules "
                f"({', '.join(c.__name__ for c in CHANNELWISE)}) inside nn.Sequential"
            )

    walk(root, "body" if root is not block else "")
    if not any(s.kind == "conv" for s in stages):
        raise ValueError(f"{type(block).__name__} has no convolution to compose")
    return stages


def _is_export_permute(mod: nn.Module) -> bool:
    """The gather/scatter of a compressed StrucSpars layer (``export.ChannelPermute``), read the same way."""
    from ..export import ChannelPermute  # lazy: the sparsifier stack is only needed for compressed models

    return isinstance(mod, ChannelPermute)


def _perm_of(mod: nn.Module) -> np.ndarray:
    if isinstance(mod, ChannelPermutation):
        return mod.as_array()
    return mod.index.detach().cpu().numpy().astype(np.int64)  # export.ChannelPermute: y = x[:, index]


def _stage_matrix(stage: Stage, weighted: bool) -> np.ndarray:
    if stage.kind == "perm":
        return permutation_matrix(_perm_of(stage.module)).astype(np.float64 if weighted else np.int64)
    return dense_norm_matrix(stage.module) if weighted else connectivity(stage.module)


def stage_matrices(block: nn.Module, weighted: bool = False) -> list[tuple[str, np.ndarray]]:
    """``[(name, matrix)]`` in forward order: 0/1 connectivity (or ``S`` if ``weighted``) and ``Pi``."""
    return [(s.name, _stage_matrix(s, weighted)) for s in linear_stages(block)]


def _product(mats: list[np.ndarray]) -> np.ndarray:
    out = mats[0]
    for i, m in enumerate(mats[1:], start=1):
        if m.shape[1] != out.shape[0]:
            raise ValueError(f"stage {i} takes {m.shape[1]} channels but the previous stage gives {out.shape[0]}")
        out = m @ out
    return out


def path_counts(block: nn.Module) -> np.ndarray:
    """``N = A_L' ... A_1'`` (int64, ``Cout x Cin``): paths from every input to every output channel."""
    return _product([m for _, m in stage_matrices(block)])


def partial_path_counts(block: nn.Module) -> list[tuple[str, np.ndarray]]:
    """``[(name, A_l' ... A_1')]`` after every stage: how the path-count matrix fills up, stage by stage."""
    out, acc = [], None
    for name, m in stage_matrices(block):
        acc = m if acc is None else _product([acc, m])
        out.append((name, acc))
    return out


def effective_norm_matrix(block: nn.Module) -> np.ndarray:
    """Effective ``S`` of the block: the product of its ``|W|`` norm matrices and permutations."""
    return _product([m for _, m in stage_matrices(block, weighted=True)])


def find_violation(counts) -> PathViolation | None:
    """The first pair (row-major: output, then input) whose path count is not 1, or None."""
    n = np.asarray(counts)
    bad = np.argwhere(n != 1)
    if bad.size == 0:
        return None
    o, i = (int(v) for v in bad[0])
    return PathViolation(o, i, int(n[o, i]))


def is_complementary(block: nn.Module) -> bool:
    """True iff exactly one path joins every input channel to every output channel."""
    return find_violation(path_counts(block)) is None


def check_complementary(block: nn.Module) -> None:
    """Raise a ValueError naming a pair of channels with zero or several paths, if there is one."""
    counts = path_counts(block)
    v = find_violation(counts)
    if v is not None:
        zero, many = int((counts == 0).sum()), int((counts > 1).sum())
        raise ValueError(f"{type(block).__name__} is not complementary: {v}; {zero} pairs have no path, "
                         f"{many} have several (of {counts.size})")
