"""A structured sparse convolution (SSC-style), with **our** filter pattern (SPEC §10).

SSC (Verma et al., WACV 2023) fixes a structured-sparse filter pattern that contains depthwise,
groupwise and pointwise convolution as special cases and trains it from scratch. Its exact pattern
could not be confirmed from any source available to us (the code repository holds only a README; the
paper's method section was not retrievable), so this module implements a pattern family of **our own
choosing**, stated here precisely:

* Input channels form ``G`` contiguous groups of ``Cin/G``, filters (output channels) ``G`` contiguous
  groups of ``Cout/G``. Filter ``o`` lies in filter group ``r = o // (Cout/G)``.
* Filter group ``r`` keeps **full** ``k x k`` kernels on the ``f`` input groups
  ``r, r+1, ..., r+f-1`` (mod ``G``), **centre-only** (one tap at the kernel centre, a 1x1 weight)
  on the next ``h`` input groups ``r+f, ..., r+f+h-1`` (mod ``G``), and **no** weights elsewhere.
  The window shifts cyclically by one input group from one filter group to the next.
  (``f = full_span``, ``h = centre_span``, ``1 <= f + h <= G``.)
* Parameters: ``Cout * (Cin/G) * (f k^2 + h)`` (:func:`ssc_param_count`).

Special cases (exact, tested against ``nn.Conv2d``):

* depthwise: ``Cin = Cout = G = C``, ``f = 1``, ``h = 0``  -> ``nn.Conv2d(C, C, k, groups=C)``;
* groupwise: ``G`` groups, ``f = 1``, ``h = 0``            -> ``nn.Conv2d(Cin, Cout, k, groups=G)``;
* pointwise: ``G = 1``, ``f = 0``, ``h = 1``                -> ``nn.Conv2d(Cin, Cout, 1)``
  (every input channel is seen through the centre tap only; we store it with ``k = 1``).

Forward, without loops over filters: the full part is one grouped ``k x k`` conv (``G`` groups, each
reading the ``f`` gathered input groups of its window) and the centre part one grouped 1x1 conv on
another gather, with the same stride. With padding ``k // 2`` (``k`` odd) the centre tap of output
``y`` reads input ``y * stride``, which is exactly what the strided 1x1 conv reads, so the sum is the
dense conv with :meth:`StructuredSparseConv2d.dense_weight`. Both parts are ordinary ``nn.Conv2d``
modules (counted by the MAC counter, seen by :mod:`strucspars_viz.designs.paths`).

Speed: the gathers and narrow grouped convs are slow on a CPU (a training step about 11x a dense
ResNet-20 step for ``G = 16, f = 3, h = 8``). So by default (``dense_forward=True``) the layer scatters its
weights into the dense ``(Cout, Cin, k, k)`` kernel (differentiably) and runs one dense conv: the same
function at the speed of its dense equivalent. ``dense_forward=False`` runs the two structured parts, and
:func:`strucspars_viz.counting.count_params_macs` counts them (the pattern's own multiply-accumulates).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["StructuredSparseConv2d", "ssc_param_count", "ssc_pattern", "check_ssc_pattern"]


def check_ssc_pattern(in_channels: int, out_channels: int, kernel_size: int, groups: int,
                      full_span: int, centre_span: int) -> None:
    """Raise a ValueError naming the sizes when the pattern is not one of the family."""
    where = (f"StructuredSparseConv2d(in_channels={in_channels}, out_channels={out_channels}, "
             f"kernel_size={kernel_size}, groups={groups}, full_span={full_span}, centre_span={centre_span})")
    if min(in_channels, out_channels, kernel_size, groups) < 1:
        raise ValueError(f"{where}: channels, kernel_size and groups must be >= 1")
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"{where}: groups={groups} must divide in_channels={in_channels} and "
                         f"out_channels={out_channels}")
    if kernel_size % 2 == 0:
        raise ValueError(f"{where}: kernel_size must be odd so that the kernel has a centre tap")
    if full_span < 0 or centre_span < 0:
        raise ValueError(f"{where}: full_span and centre_span must be >= 0")
    if full_span + centre_span == 0:
        raise ValueError(f"{where}: full_span + centre_span = 0 leaves every output channel with no input; "
                         f"allowed: 1 <= full_span + centre_span <= groups")
    if full_span + centre_span > groups:
        raise ValueError(f"{where}: the window spans full_span + centre_span = {full_span + centre_span} input "
                         f"groups but only groups={groups} exist; allowed: 1 <= full_span + centre_span <= groups")


def ssc_param_count(in_channels: int, out_channels: int, kernel_size: int, groups: int = 1,
                    full_span: int = 1, centre_span: int = 0) -> int:
    """Closed form ``Cout * (Cin / G) * (f k^2 + h)`` of the pattern's weights (no bias)."""
    check_ssc_pattern(in_channels, out_channels, kernel_size, groups, full_span, centre_span)
    return out_channels * (in_channels // groups) * (full_span * kernel_size**2 + centre_span)


def _window_index(in_channels: int, groups: int, start: int, span: int) -> np.ndarray:
    """Gather index ``(G * span * Cin/G,)``: block ``r`` lists input groups ``r+start .. r+start+span-1`` (mod G)."""
    cig = in_channels // groups
    r = np.arange(groups)[:, None, None]
    d = np.arange(start, start + span)[None, :, None]
    j = np.arange(cig)[None, None, :]
    return (((r + d) % groups) * cig + j).reshape(-1).astype(np.int64)


def ssc_pattern(in_channels: int, out_channels: int, kernel_size: int, groups: int = 1,
                full_span: int = 1, centre_span: int = 0) -> np.ndarray:
    """The pattern as a ``(Cout, Cin)`` int array: 2 = full ``k x k`` kernel, 1 = centre tap only, 0 = none."""
    check_ssc_pattern(in_channels, out_channels, kernel_size, groups, full_span, centre_span)
    kind = np.zeros((out_channels, in_channels), dtype=np.int64)
    rows = np.arange(out_channels)[:, None]
    filter_group = np.arange(out_channels) // (out_channels // groups)
    width = in_channels // groups
    for start, span, value in ((0, full_span, 2), (full_span, centre_span, 1)):
        if span:
            idx = _window_index(in_channels, groups, start, span).reshape(groups, span * width)
            kind[rows, idx[filter_group]] = value
    return kind


class StructuredSparseConv2d(nn.Module):
    """Conv with the structured-sparse filter pattern described in the module docstring (ours).

    Parameters: ``in_channels, out_channels, kernel_size`` (odd), ``groups`` ``G``, ``full_span`` ``f``,
    ``centre_span`` ``h``, ``stride``, ``bias``. Submodules ``full`` (grouped ``k x k``, or None when
    ``f = 0``) and ``centre`` (grouped 1x1, or None when ``h = 0``) hold the weights; buffers
    ``full_index`` / ``centre_index`` are their input gathers.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, groups: int = 1,
                 full_span: int = 1, centre_span: int = 0, stride: int = 1, bias: bool = False) -> None:
        super().__init__()
        check_ssc_pattern(in_channels, out_channels, kernel_size, groups, full_span, centre_span)
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size, self.groups, self.stride = int(kernel_size), int(groups), int(stride)
        self.full_span, self.centre_span = int(full_span), int(centre_span)
        width = in_channels // groups
        self.full: nn.Conv2d | None = None
        self.centre: nn.Conv2d | None = None
        if full_span:
            self.full = nn.Conv2d(groups * full_span * width, out_channels, kernel_size, stride,
                                  kernel_size // 2, groups=groups, bias=bias)
        if centre_span:
            # the bias lives in one part only
            self.centre = nn.Conv2d(groups * centre_span * width, out_channels, 1, stride, 0,
                                    groups=groups, bias=bias and not full_span)
        identity = {}
        for name, start, span in (("full_index", 0, full_span), ("centre_index", full_span, centre_span)):
            idx = _window_index(in_channels, groups, start, span)
            self.register_buffer(name, torch.as_tensor(idx, dtype=torch.long))
            # A gather that is the identity (e.g. f = 1, or G = 1) is skipped in forward.
            identity[name] = bool(np.array_equal(idx, np.arange(in_channels)))
        self._full_identity, self._centre_identity = identity["full_index"], identity["centre_index"]
        self.dense_forward = True

    # ------------------------------------------------------------------ the three special cases
    @classmethod
    def depthwise(cls, channels: int, kernel_size: int = 3, stride: int = 1, bias: bool = False) -> "StructuredSparseConv2d":
        """``nn.Conv2d(C, C, k, groups=C)``: ``G = C``, ``f = 1``, ``h = 0``."""
        return cls(channels, channels, kernel_size, channels, 1, 0, stride, bias)

    @classmethod
    def groupwise(cls, in_channels: int, out_channels: int, kernel_size: int = 3, groups: int = 1,
                  stride: int = 1, bias: bool = False) -> "StructuredSparseConv2d":
        """``nn.Conv2d(Cin, Cout, k, groups=G)``: ``f = 1``, ``h = 0``."""
        return cls(in_channels, out_channels, kernel_size, groups, 1, 0, stride, bias)

    @classmethod
    def pointwise(cls, in_channels: int, out_channels: int, stride: int = 1, bias: bool = False) -> "StructuredSparseConv2d":
        """``nn.Conv2d(Cin, Cout, 1)``: ``G = 1``, ``f = 0``, ``h = 1`` (centre taps only; stored with ``k = 1``)."""
        return cls(in_channels, out_channels, 1, 1, 0, 1, stride, bias)

    # ------------------------------------------------------------------ views
    def pattern(self) -> np.ndarray:
        """``(Cout, Cin)``: 2 = full kernel, 1 = centre tap only, 0 = none (see :func:`ssc_pattern`)."""
        return ssc_pattern(self.in_channels, self.out_channels, self.kernel_size, self.groups,
                           self.full_span, self.centre_span)

    def param_count(self) -> int:
        return ssc_param_count(self.in_channels, self.out_channels, self.kernel_size, self.groups,
                               self.full_span, self.centre_span)

    def _dense(self) -> torch.Tensor:
        """The dense ``(Cout, Cin, k, k)`` kernel, zeros included, differentiable in the layer's weights."""
        ref = self.full.weight if self.full is not None else self.centre.weight
        k, cout = self.kernel_size, self.out_channels
        dense = torch.zeros(cout, self.in_channels, k, k, dtype=ref.dtype, device=ref.device)
        rows = torch.arange(cout, device=ref.device)[:, None]
        filter_group = torch.arange(cout, device=ref.device) // (cout // self.groups)
        if self.full is not None:
            cols = self.full_index.view(self.groups, -1)[filter_group]
            dense[rows, cols] = self.full.weight
        if self.centre is not None:
            cols = self.centre_index.view(self.groups, -1)[filter_group]
            dense[rows, cols, k // 2, k // 2] = self.centre.weight[:, :, 0, 0]
        return dense

    def dense_weight(self) -> torch.Tensor:
        """The equivalent dense ``(Cout, Cin, k, k)`` weight, zeros included (a detached copy)."""
        return self._dense().detach()

    def _bias(self) -> torch.Tensor | None:
        """The bias (it lives in one part only), or None."""
        parts = [part for part in (self.full, self.centre) if part is not None and part.bias is not None]
        return parts[0].bias if parts else None

    def dense_bias(self) -> torch.Tensor | None:
        bias = self._bias()
        return None if bias is None else bias.detach().clone()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != self.in_channels:
            raise ValueError(f"StructuredSparseConv2d expects {self.in_channels} input channels, got {x.shape[1]}")
        if self.dense_forward:
            return F.conv2d(x, self._dense(), self._bias(), self.stride, self.kernel_size // 2)
        out = None
        if self.full is not None:
            out = self.full(x if self._full_identity else x.index_select(1, self.full_index))
        if self.centre is not None:
            c = self.centre(x if self._centre_identity else x.index_select(1, self.centre_index))
            out = c if out is None else out + c
        return out

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, groups={self.groups}, "
                f"full_span={self.full_span}, centre_span={self.centre_span}, stride={self.stride}")
