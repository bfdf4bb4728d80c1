"""A channel permutation as a module, so that a composed block's forward order is its module order.

SPEC §0 convention: permutations are index arrays and ``y = x[:, perm]``, i.e. output slot ``a``
takes input channel ``perm[a]``. As a matrix acting on channel vectors this is ``Pi`` with
``Pi[a, perm[a]] = 1`` (:func:`permutation_matrix`), so ``y = Pi x``.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["ChannelPermutation", "permutation_matrix", "check_permutation"]


def check_permutation(perm, channels: int | None = None, what: str = "permutation") -> np.ndarray:
    """``perm`` as an int64 array, checked to be a permutation of ``range(channels)``."""
    arr = np.asarray(perm)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{what} must be a 1-D integer index array, got shape {arr.shape}, dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    n = arr.size if channels is None else int(channels)
    if arr.size != n or not np.array_equal(np.sort(arr), np.arange(n)):
        raise ValueError(f"{what} must be a permutation of range({n}), got {arr.tolist() if arr.size <= 16 else arr.shape}")
    return arr


def permutation_matrix(perm) -> np.ndarray:
    """The 0/1 matrix ``Pi`` (``C x C``, int64) of ``y = x[:, perm]``: ``Pi[a, perm[a]] = 1``."""
    p = check_permutation(perm)
    m = np.zeros((p.size, p.size), dtype=np.int64)
    m[np.arange(p.size), p] = 1
    return m


class ChannelPermutation(nn.Module):
    """``y = x[:, perm]`` on an ``(N, C, H, W)`` (or ``(N, C)``) tensor; ``perm`` is a buffer.

    No parameters; the index moves with ``.to(device)`` and is saved in the ``state_dict``.
    """

    def __init__(self, perm) -> None:
        super().__init__()
        p = check_permutation(perm)
        self.channels = int(p.size)
        self.register_buffer("perm", torch.as_tensor(p, dtype=torch.long))

    def set_permutation(self, perm) -> None:
        """Replace the permutation (same channel count), e.g. to break a block on purpose in tests."""
        p = check_permutation(perm, self.channels)
        self.perm.copy_(torch.as_tensor(p, dtype=torch.long))

    def as_array(self) -> np.ndarray:
        return self.perm.detach().cpu().numpy().astype(np.int64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != self.channels:
            raise ValueError(f"ChannelPermutation over {self.channels} channels got an input with {x.shape[1]}")
        return x.index_select(1, self.perm)

    def extra_repr(self) -> str:
        return f"channels={self.channels}"
