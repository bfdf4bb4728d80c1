"""Figures of the related designs (SPEC §10): products of sparse kernels, path counts, balance curve, SSC patterns.

Drawing only: every function takes arrays (computed by :mod:`strucspars_viz.designs`) and returns a
:class:`~matplotlib.figure.Figure`; nothing here builds layers, solves or trains.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure

from .matrices import as_matrix, draw_matrix
from .style import ACCENT, PALETTE, new_figure

__all__ = [
    "plot_product",
    "plot_path_counts",
    "plot_effective_connectivity",
    "plot_balance_curve",
    "plot_ssc_patterns",
]


def _annotate(ax, m: np.ndarray, hi: float, fmt: str = "{:g}") -> None:
    size = 7 if max(m.shape) <= 8 else 5.5
    for (a, b), v in np.ndenumerate(m):
        ax.text(b + 0.5, a + 0.5, fmt.format(v), ha="center", va="center", fontsize=size,
                color="white" if hi and v > 0.6 * hi else "#1d2733")


def _counts_image(ax, m: np.ndarray, vmax: float | None = None, annotate: bool | None = None, cmap: str = "Blues"):
    hi = float(vmax if vmax is not None else (m.max() if m.size else 1.0)) or 1.0
    im = ax.imshow(m, cmap=cmap, vmin=0, vmax=hi, extent=(0, m.shape[1], m.shape[0], 0), interpolation="nearest")
    if annotate if annotate is not None else max(m.shape) <= 16:
        _annotate(ax, m, hi)
    ax.set_xticks([])
    ax.set_yticks([])
    return im


def plot_product(factors: Sequence[tuple[str, object]], product: tuple[str, object] | None = None, *,
                 suptitle: str | None = None, panel_size: float = 2.2, annotate: bool | None = None) -> Figure:
    """0/1 factors of a block and their product, drawn in matrix order: ``A_L x ... x A_1 = N``.

    ``factors`` are given in **forward order** (``[(name, A_1), ..., (name, A_L)]``, e.g. from
    ``designs.stage_matrices(block)``); the figure shows them right to left as in ``x' = A_L ... A_1 x``,
    then ``=`` and ``product`` (e.g. ``designs.path_counts(block)``).
    """
    items = [(str(t), as_matrix(m)) for t, m in factors]
    if not items:
        raise ValueError("plot_product: no factors to draw")
    panels = items[::-1] + ([(str(product[0]), as_matrix(product[1]))] if product is not None else [])
    fig = new_figure((panel_size * len(panels) + 0.3 * len(panels), panel_size + 0.6))
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for k, (ax, (title, m)) in enumerate(zip(axes, panels)):
        is_product = product is not None and k == len(panels) - 1
        _counts_image(ax, m, annotate=annotate, cmap="Oranges" if is_product else "Blues")
        ax.set_title(title, fontsize=9)
        if k < len(panels) - 1:
            sign = "=" if product is not None and k == len(panels) - 2 else "\u00d7"
            ax.annotate(sign, xy=(1.0, 0.5), xycoords="axes fraction", xytext=(6, 0), textcoords="offset points",
                        ha="left", va="center", fontsize=14, color="#444444")
    if suptitle:
        fig.suptitle(suptitle, fontsize=11)
    return fig


def plot_path_counts(counts, *, title: str | None = None, note: str | None = None, ax=None,
                     annotate: bool | None = None) -> Figure:
    """Heat map of ``N[o, i]``, the number of paths from input ``i`` to output ``o`` (all ones iff complementary).

    ``note`` (e.g. ``str(designs.find_violation(N))``) is written under the title.
    """
    n = as_matrix(counts)
    if ax is None:
        fig = new_figure((4.2, 3.8))
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    im = _counts_image(ax, n, vmax=max(2.0, float(n.max()) if n.size else 1.0), annotate=annotate, cmap="Oranges")
    all_ones = bool(n.size) and bool(np.all(n == 1))
    head = title if title is not None else "paths input -> output"
    sub = note if note is not None else ("all ones: complementary" if all_ones else
                                         f"min {n.min():g}, max {n.max():g}: not complementary")
    ax.set_title(f"{head}\n{sub}", fontsize=9)
    ax.set_xlabel("input channel")
    ax.set_ylabel("output channel")
    cb = fig.colorbar(im, ax=ax, shrink=0.8, pad=0.02)
    cb.set_label("number of paths", fontsize=8)
    cb.outline.set_visible(False)
    return fig


def plot_effective_connectivity(connectivity, effective_s, learned_s=None, *, learned_groups: int = 1,
                                titles: Sequence[str] | None = None, suptitle: str | None = None,
                                max_display: int | None = 128) -> Figure:
    """Side by side: a block's path counts, its effective ``S``, and (optionally) a StrucSpars layer's ``S[P][:, Q]``.

    ``connectivity``: ``designs.path_counts(block)``; ``effective_s``: ``designs.effective_norm_matrix(block)``;
    ``learned_s``: a learned layer's permuted norm matrix (already ``S[P][:, Q]``), with its ``learned_groups``
    blocks outlined.
    """
    c, s = as_matrix(connectivity), as_matrix(effective_s)
    panels = 3 if learned_s is not None else 2
    default = ["effective connectivity (paths)", "effective S = product of |W| norms and permutations",
               f"StrucSpars: learned S[P][:, Q]  (G = {learned_groups})"]
    names = list(titles) if titles is not None else default[:panels]
    fig = new_figure((3.9 * panels, 3.9))
    axes = np.atleast_1d(fig.subplots(1, panels))
    im0 = _counts_image(axes[0], c, vmax=max(2.0, float(c.max()) if c.size else 1.0), annotate=False, cmap="Oranges")
    fig.colorbar(im0, ax=axes[0], shrink=0.75, pad=0.02).outline.set_visible(False)
    draw_matrix(axes[1], s, colorbar=True, max_display=max_display)
    if learned_s is not None:
        draw_matrix(axes[2], as_matrix(learned_s), groups=int(learned_groups), colorbar=True,
                    max_display=max_display, outline=True)
    for ax, t in zip(axes, names):
        ax.set_title(t, fontsize=9)
    if suptitle:
        fig.suptitle(suptitle, fontsize=11)
    return fig


def plot_balance_curve(curve: Mapping[str, object], *, measured: Mapping[int, int] | None = None,
                       ax=None, title: str | None = None) -> Figure:
    """Parameters of a balanced IGC-V2 block against the number of 1x1 stages ``L - 1``.

    ``curve`` is ``designs.balance_curve(C)``: the real curve ``k^2 C + s C C^{1/s}``, its integer points
    (filled where ``C`` is a perfect power, i.e. a real block exists) and the minimiser ``s = ln C``.
    ``measured``: ``{stages: parameter count of a built block}`` drawn as crosses.
    """
    if ax is None:
        fig = new_figure((5.4, 3.6))
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    s, p = np.asarray(curve["s"]), np.asarray(curve["params"])
    s_int, p_int = np.asarray(curve["s_int"]), np.asarray(curve["params_int"])
    exact = np.asarray(curve["exact"], dtype=bool)
    ax.plot(s, p, color=PALETTE[0], lw=1.6, label="balanced: $k^2C + s\\,C\\,C^{1/s}$")
    ax.scatter(s_int[exact], p_int[exact], color=PALETTE[1], zorder=3, label="integer K exists")
    ax.scatter(s_int[~exact], p_int[~exact], facecolors="white", edgecolors=PALETTE[1], zorder=3,
               label="K not an integer")
    ax.axvline(float(curve["s_opt"]), color=ACCENT, ls="--", lw=1.0)
    ax.annotate(f"min at ln C = {float(curve['s_opt']):.2f}", xy=(float(curve["s_opt"]), float(curve["params_opt"])),
                xytext=(8, 18), textcoords="offset points", color=ACCENT, fontsize=8)
    if measured:
        ms = sorted(measured)
        ax.scatter(ms, [measured[k] for k in ms], marker="x", color=PALETTE[2], zorder=4, s=40,
                   label="built block (counted)")
    ax.set_yscale("log")
    ax.set_xlabel("number of 1x1 stages  $s = L - 1$")
    ax.set_ylabel("weights in the block")
    ax.set_title(title if title is not None else f"IGC-V2 balance condition, C = {curve['channels']}", fontsize=10)
    ax.legend(loc="upper right")
    return fig


_SSC_COLORS = ListedColormap(["#f4f4f4", PALETTE[1], PALETTE[0]])


def plot_ssc_patterns(patterns: Mapping[str, object], *, suptitle: str | None = None, panel_size: float = 2.6) -> Figure:
    """SSC filter patterns as ``(Cout, Cin)`` maps: 2 = full ``k x k`` kernel, 1 = centre tap, 0 = none.

    ``patterns``: ``{title: designs.ssc_pattern(...)}`` (or ``conv.pattern()``).
    """
    items = [(str(t), as_matrix(m)) for t, m in dict(patterns).items()]
    if not items:
        raise ValueError("plot_ssc_patterns: nothing to plot")
    fig = new_figure((panel_size * len(items) + 1.2, panel_size + 0.7))
    axes = np.atleast_1d(fig.subplots(1, len(items)))
    norm = BoundaryNorm([-0.5, 0.5, 1.5, 2.5], _SSC_COLORS.N)
    im = None
    for ax, (title, m) in zip(axes, items):
        im = ax.imshow(m, cmap=_SSC_COLORS, norm=norm, extent=(0, m.shape[1], m.shape[0], 0), interpolation="nearest")
        ax.set_title(f"{title}\n{m.shape[0]} x {m.shape[1]}", fontsize=9)
        ax.set_xlabel("input channel", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0].set_ylabel("filter (output channel)", fontsize=8)
    cb = fig.colorbar(im, ax=axes, ticks=[0, 1, 2], shrink=0.8, pad=0.02)
    cb.ax.set_yticklabels(["none", "centre tap (1x1)", "full k x k"], fontsize=7)
    cb.outline.set_visible(False)
    if suptitle:
        fig.suptitle(suptitle, fontsize=11)
    return fig
