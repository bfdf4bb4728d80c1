"""Which convs a model's sparsifier handles, and the per-layer state it keeps (SPEC §2-§5).

:func:`sparsifiable_convs` picks the convs (every ungrouped ``nn.Conv2d`` but the stem, or ``fnmatch``
patterns); :class:`LayerState` holds one conv's channel counts, kernel size, ``P``, ``Q`` and ``G``
and derives its mask ``U_G[P_inv][:, Q_inv]``. Re-exported by :mod:`strucspars_viz.sparsifier`.
"""
from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatch
from typing import Iterable

import numpy as np
import torch
from torch import nn

from .hierarchy import block_mask, max_groups
from .permutation import inverse_permutation

__all__ = ["LayerState", "sparsifiable_convs"]


@dataclass
class LayerState:
    """Per-layer state: channel counts, kernel size, learned ``P`` / ``Q`` and current ``G``."""

    name: str
    cout: int
    cin: int
    kernel: int  # kh * kw, the real kernel size (SPEC §9: never guessed from the layer name)
    row_perm: np.ndarray
    col_perm: np.ndarray
    groups: int = 1
    learned: bool = False

    @property
    def max_groups(self) -> int:
        return max_groups(self.cout, self.cin)

    @property
    def size(self) -> int:
        """``n_l = Cout * Cin * kh * kw``."""
        return self.cout * self.cin * self.kernel

    @property
    def row_inv(self) -> np.ndarray:
        return inverse_permutation(self.row_perm)

    @property
    def col_inv(self) -> np.ndarray:
        return inverse_permutation(self.col_perm)

    def unpermute(self, matrix: torch.Tensor) -> torch.Tensor:
        """Map a matrix given in permuted order back to the weight's order: ``M[P_inv][:, Q_inv]``."""
        rows = torch.as_tensor(self.row_inv, device=matrix.device)
        cols = torch.as_tensor(self.col_inv, device=matrix.device)
        return matrix[rows][:, cols]

    def mask(self, *, dtype=torch.float32, device=None) -> torch.Tensor:
        """``U_G[P_inv][:, Q_inv]``: the block mask in the weight's own channel order (a tensor)."""
        u = torch.as_tensor(block_mask(self.cout, self.cin, self.groups), dtype=dtype, device=device)
        return self.unpermute(u)

    def mask_array(self) -> np.ndarray:
        """``U_G[P_inv][:, Q_inv]`` as a float64 numpy array (for the pure math and the figures)."""
        return block_mask(self.cout, self.cin, self.groups)[self.row_inv][:, self.col_inv]


def _patterns(value: str | Iterable[str] | None, what: str) -> list[str] | None:
    """A single string is ONE ``fnmatch`` pattern (never iterated character by character)."""
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    patterns = list(value)
    bad = [p for p in patterns if not isinstance(p, str)]
    if bad:
        raise TypeError(f"{what} must be a pattern string or a list of pattern strings, got {bad!r}")
    return patterns


def sparsifiable_convs(
    model: nn.Module,
    include: str | Iterable[str] | None = None,
    exclude: str | Iterable[str] | None = None,
) -> tuple[dict[str, nn.Conv2d], dict[str, str]]:
    """The convs to sparsify and, for the others, why not.

    Default: every ``nn.Conv2d`` except the stem (the first conv in module order) and convs that are
    already grouped. ``include`` / ``exclude`` are ``fnmatch`` patterns on module names, a list of
    them or one string (``include="layer1*"`` is the single pattern ``layer1*``); an explicit
    ``include`` may select the stem. Linear layers (the classifier) are never sparsified.
    """
    convs = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError(f"{type(model).__name__} has no nn.Conv2d layers: nothing to sparsify")
    include = _patterns(include, "include")
    exclude = _patterns(exclude, "exclude") or []
    stem = convs[0][0]
    chosen: dict[str, nn.Conv2d] = {}
    skipped: dict[str, str] = {}
    for name, conv in convs:
        if include is not None and not any(fnmatch(name, p) for p in include):
            skipped[name] = "not matched by include"
        elif include is None and name == stem:
            skipped[name] = "stem (first conv)"
        elif any(fnmatch(name, p) for p in exclude):
            skipped[name] = "matched by exclude"
        elif conv.groups != 1:
            skipped[name] = f"already grouped (groups={conv.groups})"
        else:
            chosen[name] = conv
    if not chosen:
        raise ValueError(
            f"nothing to sparsify in {type(model).__name__}: convs found {[n for n, _ in convs]}, "
            f"skipped {skipped}. Sparsifiable convs are ungrouped nn.Conv2d other than the stem."
        )
    return chosen, skipped
