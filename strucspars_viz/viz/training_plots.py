"""Figures of a training run (``strucspars-viz train`` output folder): curves and per-epoch norms.

Inputs are what :mod:`strucspars_viz.training` writes: the records of ``metrics.jsonl``
(:func:`strucspars_viz.training.load_metrics`) and the layer trace ``layer_norms.npz``
(:meth:`strucspars_viz.trace.LayerTrace.load`; its :meth:`~strucspars_viz.trace.LayerTrace.animation_kwargs`
feed :func:`strucspars_viz.viz.animate_training`). Pure drawing, no method.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from .model import short_layer_name
from .style import CMAP, GRID_COLOR, new_figure, style_axes

if TYPE_CHECKING:  # pragma: no cover
    from ..trace import LayerTrace

__all__ = ["plot_layer_norm_grid", "plot_training_curves"]


def _phase_boundary(records: Sequence[Mapping]) -> float | None:
    ft = [r["global_epoch"] for r in records if r["phase"] == "finetune"]
    return min(ft) - 0.5 if ft and len(ft) < len(records) else None


def plot_training_curves(records: Sequence[Mapping], *, title: str | None = None,
                         baseline: Sequence[Mapping] | None = None) -> Figure:
    """Four panels over epochs: test top-1 / top-5, ``lam``, model sparsity, per-layer ``log2 G``.

    ``records``: ``metrics.jsonl`` rows. ``baseline``: optional rows of a dense run, drawn dashed on the
    accuracy panel. A vertical line marks the start of finetuning (masks applied).
    """
    if not records:
        raise ValueError("plot_training_curves: no epoch records")
    x = np.array([r["global_epoch"] for r in records])
    fig = new_figure((11.0, 6.2))
    axes = fig.subplots(2, 2)
    ax = axes[0, 0]
    ax.plot(x, [100 * r["top1"] for r in records], "o-", label="top-1")
    ax.plot(x, [100 * r["top5"] for r in records], "s-", ms=3, label="top-5")
    if baseline:
        ax.plot([r["global_epoch"] for r in baseline], [100 * r["top1"] for r in baseline], "k--", label="dense top-1")
    ax.set(xlabel="epoch", ylabel="test accuracy (%)", title="accuracy")
    ax.legend(fontsize=8)
    ax = axes[0, 1]
    ax.step(x, [r["lam"] for r in records], where="mid", color="C3")
    ax.set(xlabel="epoch", ylabel="lambda (used in epoch)", title="regularisation strength")
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    ax = axes[1, 0]
    ax.plot(x, [100 * r["sparsity"] for r in records], "o-", color="C2")
    ax.set(xlabel="epoch", ylabel="model sparsity (%)", title="sparsity (at keep during sparsification)")
    ax = axes[1, 1]
    names = list(records[-1]["groups"])
    grid = np.array([[np.log2(max(r["groups"].get(n, 1), 1)) for r in records] for n in names])
    im = ax.imshow(grid, aspect="auto", cmap="viridis", interpolation="nearest",
                   extent=(x[0] - 0.5, x[-1] + 0.5, len(names) - 0.5, -0.5))
    ax.set_yticks(range(len(names)), [short_layer_name(n) for n in names], fontsize=6)
    ax.set(xlabel="epoch", title="per-layer groups (log2 G)")
    fig.colorbar(im, ax=ax, shrink=0.8)
    boundary = _phase_boundary(records)
    for a in axes.flat:
        style_axes(a)
        if boundary is not None:
            a.axvline(boundary, color="0.5", lw=0.8, ls=":")
    if title:
        fig.suptitle(title)
    return fig


def plot_layer_norm_grid(trace: "LayerTrace", *, max_panels: int = 12, log: bool = True) -> Figure:
    """Grid of heat-maps of one layer's ``S[P_e][:, Q_e]`` (learned order) epoch by epoch, ``U_G`` outlined.

    ``trace``: a :class:`~strucspars_viz.trace.LayerTrace` (e.g. ``LayerTrace.load(run_dir)``).
    """
    mats, rows, cols, groups = trace.norms, trace.row_perm, trace.col_perm, trace.groups
    if not len(mats):
        raise ValueError(f"plot_layer_norm_grid: the trace of {trace.layer!r} is empty")
    idx = np.unique(np.linspace(0, len(mats) - 1, min(max_panels, len(mats))).round().astype(int))
    ncol = min(4, len(idx))
    nrow = int(np.ceil(len(idx) / ncol))
    fig = new_figure((2.6 * ncol, 2.5 * nrow + 0.4))
    axes = np.atleast_1d(fig.subplots(nrow, ncol)).ravel()
    for ax, i in zip(axes, idx):
        s = mats[i][rows[i]][:, cols[i]].astype(float)
        s = s / max(s.max(), 1e-12)
        shown = np.log10(np.maximum(s, 1e-4)) if log else s
        # the colour direction of every other S plot (style.CMAP: light = small, dark = large)
        im = ax.imshow(shown, cmap=CMAP, vmin=-4 if log else 0, vmax=0 if log else 1, interpolation="nearest")
        g = int(groups[i])
        cout, cin = s.shape
        for r in range(g):
            ax.add_patch(_rect(r * cin / g - 0.5, r * cout / g - 0.5, cin / g, cout / g))
        ax.set_title(f"{trace.phase[i]} ep {int(trace.epoch[i])}, G={g}", fontsize=8)
        ax.set_xticks([]), ax.set_yticks([])
    for ax in axes[len(idx):]:
        ax.axis("off")
    cb = fig.colorbar(im, ax=list(axes), shrink=0.8, pad=0.02)
    cb.set_label("$\\log_{10}(S / \\max S)$" if log else "$S / \\max S$", fontsize=9)
    cb.outline.set_visible(False)
    fig.suptitle(f"{trace.layer}: S in learned order ({'log10, ' if log else ''}scaled to max 1)", fontsize=10)
    return fig


def _rect(x, y, w, h):
    from matplotlib.patches import Rectangle

    return Rectangle((x, y), w, h, fill=False, edgecolor=GRID_COLOR, lw=0.9)
