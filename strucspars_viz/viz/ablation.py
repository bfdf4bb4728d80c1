"""Figures of the ablation tables (issue 10): drawing only, from plain numbers.

* :func:`plot_ablation` -- top-1 per arm: every seed as a dot, the mean as a bar with its 95 % t
  interval (arms of the StrucSpars ablation and the baselines in two colours);
* :func:`plot_accuracy_vs_cost` -- the paper's "Accuracy vs. Complexity" plot: mean top-1 against
  parameters and against MACs (log axes), one line per method across targets, sd as whiskers;
* :func:`plot_related` -- the related-designs table (issue 9): mean top-1 (sd whiskers) against CPU
  latency, with an arrow from the same network's structured ops where it has both forwards;
* :func:`plot_arm_orders` -- one layer's ``S' = S[P][:, Q]`` under several orders (learned,
  ShuffleNet, random, identity) with the same ``G``'s block grid.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

from .matrices import plot_norm_matrix
from .style import new_figure

__all__ = ["plot_ablation", "plot_accuracy_vs_cost", "plot_related", "plot_arm_orders"]


def plot_ablation(values: Mapping[str, Sequence[float]], ci: Mapping[str, tuple[float, float]] | None = None, *,
                  baselines: Sequence[str] = (), title: str | None = None, ylabel: str = "top-1 (%)") -> Figure:
    """``values``: ``{arm: [top-1 of each seed]}`` in table order; ``ci``: ``{arm: (low, high)}``."""
    names = list(values)
    fig = new_figure((1.0 + 0.9 * max(len(names), 1), 3.8))
    ax = fig.add_subplot()
    for i, name in enumerate(names):
        v = np.asarray(values[name], dtype=float)
        colour = "#999999" if name in baselines else "#3b6ea8"
        mean = float(v.mean()) if v.size else np.nan
        ax.bar(i, mean, width=0.6, color=colour, alpha=0.35)
        ax.scatter(np.full(v.size, i) + np.linspace(-0.12, 0.12, v.size) * (v.size > 1), v, s=14,
                   color=colour, zorder=3)
        if ci and name in ci and np.all(np.isfinite(ci[name])):
            lo, hi = ci[name]
            ax.errorbar(i, mean, yerr=[[mean - lo], [hi - mean]], color="k", capsize=4, lw=1, zorder=4)
    allv = np.concatenate([np.asarray(v, dtype=float) for v in values.values()]) if names else np.zeros(1)
    if allv.size and np.isfinite(allv).any():
        lo, hi = np.nanmin(allv), np.nanmax(allv)
        pad = max(0.5, 0.15 * (hi - lo))
        ax.set_ylim(lo - 3 * pad, hi + pad)
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title or "ablation: seeds (dots), mean (bar), 95 % CI (whisker)", fontsize=10)
    return fig


def plot_accuracy_vs_cost(points: Sequence[Mapping[str, float]], *, title: str | None = None) -> Figure:
    """``points``: one mapping per (method, target) with ``arm``, ``params``, ``macs``, ``mean`` (top-1 %)
    and ``sd`` (NaN for one seed), as :func:`strucspars_viz.ablation.report.cost_points` returns them."""
    fig = new_figure((10.5, 3.8))
    axes = fig.subplots(1, 2)
    for name in dict.fromkeys(p["arm"] for p in points):
        arr = np.asarray([(p["params"], p["macs"], p["mean"], p["sd"]) for p in points if p["arm"] == name],
                         dtype=float)
        for ax, col in zip(axes, (0, 1)):
            order = np.argsort(arr[:, col])
            ax.errorbar(arr[order, col], arr[order, 2], yerr=np.nan_to_num(arr[order, 3]), marker="o", ms=4,
                        lw=1, capsize=3, label=name)
    axes[0].set_xlabel("parameters")
    axes[1].set_xlabel("MACs (conv + linear)")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_ylabel("top-1 (%)")
        ax.grid(alpha=0.3, which="both")
        ax.xaxis.set_minor_formatter(NullFormatter())  # labelled minor log ticks collide at this width
    axes[1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.suptitle(title or "accuracy vs. complexity", fontsize=11)
    return fig


def plot_related(table: Sequence[Mapping], *, batch: int = 64, title: str | None = None) -> Figure:
    """``table``: rows with ``arm``, ``mean``, ``sd`` and ``latency`` ``{(variant, batch): ms}``, as
    :func:`strucspars_viz.ablation.related.related_table` returns them; rows without a time are skipped."""
    fig = new_figure((7.5, 4.0))
    ax = fig.add_subplot()
    for t in table:
        own = t["latency"].get((t["arm"], batch))
        if own is None:
            continue
        line = ax.errorbar(own, t["mean"], yerr=np.nan_to_num(t["sd"]), marker="o", ms=5, capsize=3, lw=1,
                           label=t["arm"])
        slow = t["latency"].get((f"{t['arm']}:structured", batch))
        if slow is not None:
            ax.annotate("", xy=(own, t["mean"]), xytext=(slow, t["mean"]),
                        arrowprops={"arrowstyle": "->", "color": line[0].get_color(), "lw": 1})
            ax.plot(slow, t["mean"], marker="o", ms=5, mfc="none", color=line[0].get_color())
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))  # labelled 1-2-5 steps: one decade spans the rows
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(f"CPU latency, batch {batch} (ms, median; log)")
    ax.set_ylabel("top-1 (%)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    ax.set_title(title or "related designs: accuracy vs latency (hollow: the designs' structured ops)", fontsize=10)
    return fig


def plot_arm_orders(s, orders: Mapping[str, tuple[Sequence[int], Sequence[int]]], groups: int, *,
                    decay: float = 0.5, suptitle: str | None = None) -> Figure:
    """``S' = S[P][:, Q]`` for each ``{label: (P, Q)}``, all with the block grid of ``groups``."""
    fig = new_figure((3.6 * max(len(orders), 1), 3.9))
    axes = np.atleast_1d(fig.subplots(1, max(len(orders), 1)))
    for ax, (label, (p, q)) in zip(axes, orders.items()):
        plot_norm_matrix(s, p, q, groups=groups, decay=decay, title=label, ax=ax, colorbar=False)
    if suptitle:
        fig.suptitle(suptitle, fontsize=11)
    return fig
