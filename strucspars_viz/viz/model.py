"""Model-level views: per-layer group counts and kept fractions; parameters and MACs before / after."""
from __future__ import annotations

from typing import Mapping

import numpy as np
from matplotlib.figure import Figure

from .style import ACCENT, PALETTE, new_figure

__all__ = ["plot_layer_groups", "plot_model_costs", "short_layer_name"]


def short_layer_name(name: str) -> str:
    """``layer2.0.downsample.0`` -> ``l2.0.ds``; ``layer3.1.conv2`` -> ``l3.1.c2`` (tick labels)."""
    return (name.replace("layer", "l").replace("downsample.0", "ds").replace("downsample", "ds")
            .replace("conv", "c"))


def plot_layer_groups(
    groups: Mapping[str, int],
    kept: Mapping[str, float] | None = None,
    max_groups: Mapping[str, int] | None = None,
    *,
    keep: float | None = None,
    title: str | None = None,
    orientation: str = "auto",
) -> Figure:
    """Bar chart of each layer's group count ``G`` (log2 axis) and, below, its kept fraction ``f(G)``.

    ``max_groups`` (optional) draws the admissible maximum ``2^L`` as hollow bars behind; ``keep`` draws
    the criterion's threshold on the kept-fraction panel. ``orientation``: ``"vertical"`` (layers along
    x), ``"horizontal"`` (layers down the y axis, ``G`` and ``f(G)`` side by side: stays legible at a
    notebook's width for deep models) or ``"auto"`` (horizontal above 24 layers).
    """
    names = list(groups)
    if not names:
        raise ValueError("plot_layer_groups: no layers")
    if orientation not in ("auto", "vertical", "horizontal"):
        raise ValueError(f"orientation must be 'auto', 'vertical' or 'horizontal', got {orientation!r}")
    if orientation == "horizontal" or (orientation == "auto" and len(names) > 24):
        return _layer_groups_horizontal(names, groups, kept, max_groups, keep=keep, title=title)
    g = np.array([groups[n] for n in names], dtype=float)
    x = np.arange(len(names))
    two = kept is not None
    fig = new_figure((max(6.0, 0.36 * len(names) + 2.0), 4.6 if two else 3.2))
    axes = fig.subplots(2, 1, sharex=True, height_ratios=[1.6, 1.0]) if two else [fig.add_subplot()]
    ax = axes[0]
    if max_groups is not None:
        mg = np.array([max_groups[n] for n in names], dtype=float)
        ax.bar(x, mg, width=0.75, facecolor="none", edgecolor="#c5ccd3", linewidth=1.0, label="max $2^L$")
    bars = ax.bar(x, g, width=0.75, color=PALETTE[1], label="groups G")
    ax.set_yscale("log", base=2)
    top = int(max(g.max(), (max(max_groups.values()) if max_groups else 1), 2))
    ticks = [2**k for k in range(int(np.log2(top)) + 1)]
    ax.set_yticks(ticks)
    ax.set_yticklabels([str(t) for t in ticks])
    ax.set_ylim(0.7, top * 4)
    for rect, val in zip(bars, g):
        ax.text(rect.get_x() + rect.get_width() / 2, val * 1.08, f"{int(val)}", ha="center", va="bottom", fontsize=7)
    ax.set_ylabel("groups G")
    ax.legend(loc="upper left", ncols=2)
    ax.grid(True, axis="y", color="#eeeeee")
    ax.set_axisbelow(True)
    ax.set_title(title or "Groups per layer")
    if two:
        axk = axes[1]
        f = np.array([kept[n] for n in names], dtype=float)
        axk.vlines(x, 0, f, color="#c5ccd3", lw=1.0)
        axk.scatter(x, f, color=PALETTE[0], s=22, zorder=3, label="kept fraction f(G)")
        if keep is not None:
            axk.axhline(keep, color=ACCENT, lw=1.2, ls="--", label=f"keep = {keep:g}")
        lo = min(float(f.min()), keep if keep is not None else 1.0)
        axk.set_ylim(max(0.0, lo - 0.05), 1.01)
        axk.set_ylabel("f(G)")
        axk.legend(loc="lower left", ncols=2)
        axk.grid(True, axis="y", color="#eeeeee")
    last = axes[-1]
    last.set_xticks(x)
    last.set_xticklabels([short_layer_name(n) for n in names], rotation=60, ha="right", fontsize=7)
    last.set_xlim(-0.6, len(names) - 0.4)
    return fig


def _log2_ticks(top: int) -> list[int]:
    return [2**k for k in range(int(np.log2(max(top, 2))) + 1)]


def _layer_groups_horizontal(names, groups, kept, max_groups, *, keep, title) -> Figure:
    """Layers top to bottom; left: ``G`` (log2 axis), right: ``f(G)``. 9.6 in wide at any depth."""
    g = np.array([groups[n] for n in names], dtype=float)
    y = np.arange(len(names))
    two = kept is not None
    fig = new_figure((9.6, 0.2 * len(names) + 1.4))
    axes = fig.subplots(1, 2, sharey=True, width_ratios=[1.5, 1.0]) if two else [fig.add_subplot()]
    ax = axes[0]
    if max_groups is not None:
        mg = np.array([max_groups[n] for n in names], dtype=float)
        ax.barh(y, mg, height=0.75, facecolor="none", edgecolor="#c5ccd3", linewidth=1.0, label="max $2^L$")
    bars = ax.barh(y, g, height=0.75, color=PALETTE[1], label="groups G")
    ax.set_xscale("log", base=2)
    top = int(max(g.max(), (max(max_groups.values()) if max_groups else 1), 2))
    ticks = _log2_ticks(top)
    ax.set_xticks(ticks)
    ax.set_xticklabels([str(t) for t in ticks])
    ax.set_xlim(0.7, top * 3)
    for rect, val in zip(bars, g):
        ax.text(val * 1.08, rect.get_y() + rect.get_height() / 2, f"{int(val)}", ha="left", va="center", fontsize=8)
    ax.set_xlabel("groups G")
    ax.set_yticks(y)
    ax.set_yticklabels([short_layer_name(n) for n in names], fontsize=8)
    ax.set_ylim(len(names) - 0.4, -0.6)  # first layer on top
    ax.legend(loc="lower right", ncols=2)
    ax.grid(True, axis="x", color="#eeeeee")
    ax.set_axisbelow(True)
    if two:
        axk = axes[1]
        f = np.array([kept[n] for n in names], dtype=float)
        axk.hlines(y, 0, f, color="#c5ccd3", lw=1.0)
        axk.scatter(f, y, color=PALETTE[0], s=18, zorder=3, label="kept fraction f(G)")
        if keep is not None:
            axk.axvline(keep, color=ACCENT, lw=1.2, ls="--", label=f"keep = {keep:g}")
        lo = min(float(f.min()), keep if keep is not None else 1.0)
        axk.set_xlim(max(0.0, lo - 0.05), 1.01)
        axk.set_xlabel("f(G)")
        axk.legend(loc="lower left", ncols=1)
        axk.grid(True, axis="x", color="#eeeeee")
        axk.tick_params(labelleft=False)
    fig.suptitle(title or "Groups per layer", fontsize=11)
    return fig


def _cost_pair(cost) -> tuple[float, float]:
    if isinstance(cost, Mapping):
        return float(cost["params"]), float(cost["macs"])
    return float(cost.params), float(cost.macs)


def plot_model_costs(before, after, *, title: str | None = None, labels=("dense", "compressed")) -> Figure:
    """Parameters and MACs before and after compression (``ModelCost`` or ``{"params", "macs"}``).

    Each panel annotates the reduction factor. MACs are multiply-accumulates (the paper's "FLOPs").
    """
    pb, mb = _cost_pair(before)
    pa, ma = _cost_pair(after)
    fig = new_figure((6.4, 3.0))
    axes = fig.subplots(1, 2)
    for ax, (vb, va), unit, what in ((axes[0], (pb, pa), 1e6, "parameters (M)"),
                                     (axes[1], (mb, ma), 1e6, "MACs (M)")):
        vals = [vb / unit, va / unit]
        bars = ax.bar([0, 1], vals, color=[PALETTE[0], PALETTE[1]], width=0.6)
        for rect, v in zip(bars, vals):
            ax.text(rect.get_x() + rect.get_width() / 2, v, f"{v:.3g}", ha="center", va="bottom", fontsize=8)
        ax.set_xticks([0, 1])
        ax.set_xticklabels(labels)
        ax.set_title(what)
        ax.set_ylim(0, max(vals) * 1.25 if max(vals) > 0 else 1)
        ratio = vb / va if va > 0 else float("inf")
        ax.text(0.97, 0.97, f"{ratio:.2f}x fewer\n(-{100 * (1 - va / vb):.1f}%)" if vb > 0 else "",
                transform=ax.transAxes, ha="right", va="top", fontsize=8, color=ACCENT)
        ax.grid(True, axis="y", color="#eeeeee")
        ax.set_axisbelow(True)
    fig.suptitle(title or "Model cost before and after compression", fontsize=11)
    return fig
