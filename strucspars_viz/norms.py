"""Weight-norm matrices (SPEC §0).

For a conv weight ``W`` of shape ``(Cout, Cin, kh, kw)`` the weight-norm matrix is

.. math:: S_{ij} = \\sum_{u,v} |W_{ij uv}|        (p = 1, the default and the paper's choice)

or :math:`S_{ij} = (\\sum_{u,v} W_{ijuv}^2)^{1/2}` for ``p = 2``. For a linear layer
:math:`S = |W|`. No normalisation is applied.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["as_matrix", "norm_matrix", "weight_of"]


def as_matrix(x, *, finite: bool = False, what: str = "matrix") -> np.ndarray:
    """THE converter from a tensor / array-like to a float64 ``(rows, cols)`` numpy array.

    The pure math (``hierarchy``, ``permutation``, ``birkhoff``) and the figures all take their
    matrices through here, so a CUDA / float32 / requires-grad tensor and a nested list behave alike.
    Always a new array (never a view of the input). ``finite=True`` also rejects NaN / inf.

    >>> as_matrix(torch.ones(2, 3, dtype=torch.float16)).dtype
    dtype('float64')
    >>> as_matrix([1.0, 2.0])
    Traceback (most recent call last):
    ...
    ValueError: the matrix must be 2-D (Cout, Cin), got shape (2,)
    """
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu", torch.float64).numpy()
    m = np.array(x, dtype=np.float64)
    if m.ndim != 2:
        raise ValueError(f"the {what} must be 2-D (Cout, Cin), got shape {m.shape}")
    if finite and not np.isfinite(m).all():
        bad = int((~np.isfinite(m)).sum())
        raise ValueError(f"the {what} of shape {m.shape} has {bad} NaN/inf entries; all must be finite")
    return m


def weight_of(w: nn.Module | torch.Tensor) -> torch.Tensor:
    """The weight tensor of a ``Conv2d`` / ``Linear`` module, or ``w`` itself if it is a tensor."""
    if isinstance(w, torch.Tensor):
        return w
    if isinstance(w, (nn.Conv2d, nn.Linear)):
        return w.weight
    raise TypeError(
        f"norm_matrix expects an nn.Conv2d, nn.Linear or a weight tensor, got {type(w).__name__}"
    )


def norm_matrix(w: nn.Module | torch.Tensor, p: int = 1) -> torch.Tensor:
    """Weight-norm matrix ``S`` of shape ``(Cout, Cin)``.

    Parameters
    ----------
    w : nn.Conv2d, nn.Linear or tensor of shape (Cout, Cin[, kh, kw])
    p : 1 (L1 over the kernel, default) or 2 (L2 over the kernel)

    Returns
    -------
    S : float tensor (Cout, Cin), detached, on the weight's device, in float32 or float64.

    >>> norm_matrix(torch.ones(4, 2, 3, 3)).tolist()[0]
    [9.0, 9.0]
    """
    if p not in (1, 2):
        raise ValueError(f"norm_matrix: p must be 1 or 2, got {p!r}")
    weight = weight_of(w).detach()
    if weight.dim() not in (2, 4):
        raise ValueError(
            f"norm_matrix: weight must have shape (Cout, Cin) or (Cout, Cin, kh, kw), got {tuple(weight.shape)}"
        )
    if not weight.is_floating_point() or weight.dtype in (torch.float16, torch.bfloat16):
        weight = weight.float()
    flat = weight.reshape(weight.shape[0], weight.shape[1], -1)
    return flat.abs().sum(-1) if p == 1 else flat.pow(2).sum(-1).sqrt()
