"""Figures of measured wall time (drawing only: rows from :mod:`strucspars_viz.timing` in, Figure out)."""
from __future__ import annotations

from collections import defaultdict
from typing import Sequence

from matplotlib.figure import Figure

from .style import new_figure, style_axes

__all__ = ["plot_breakdown", "plot_macs_vs_latency", "plot_timing"]

_COLORS = {"dense": "0.3", "strucspars": "tab:blue", "torchpruning": "tab:orange", "shufflenet": "tab:green"}


def plot_macs_vs_latency(ax, summary: Sequence[dict], *, paper: bool = True) -> None:
    """Speed-up over dense (y) against MAC reduction (x) per compressed variant; ``y = x`` is what
    MACs promise. ``paper`` adds the authors' ResNet-50 wall times (SPEC §8)."""
    dense_macs = {r["base"]: r["macs"] for r in summary if r["family"] == "dense"}
    for r in summary:
        if (r.get("speedup") in (None, "") or r["family"] == "dense" or r["base"] not in dense_macs
                or not r["macs"]):
            continue
        x = dense_macs[r["base"]] / r["macs"]
        ax.scatter(x, r["speedup"], color=_COLORS.get(r["family"], "k"), s=25,
                   marker="o" if r["backend"] == "eager" else "s")
    if paper:
        macs = [4.14, 3.12, 1.67, 0.90]
        ms = [80.2, 68.2, 61.3, 53.5]
        ax.plot([macs[0] / m for m in macs], [ms[0] / t for t in ms], "k--", lw=1, label="paper ResNet-50 (SPEC §8)")
    hi = max([*ax.get_xlim(), *ax.get_ylim()])
    ax.plot([1, hi], [1, hi], ":", color="0.6", lw=1, label="speed-up = MAC reduction")
    for fam, c in _COLORS.items():
        if fam != "dense":
            ax.scatter([], [], color=c, label=fam)
    ax.set_xlabel("MAC reduction (dense MACs / variant MACs)")
    ax.set_ylabel("measured speed-up over dense")
    ax.legend(fontsize=7)
    style_axes(ax)


def plot_breakdown(ax, breakdown: Sequence[dict]) -> None:
    """Stacked bars: ms per forward in grouped convs, dense convs, gathers and the rest."""
    cats = ("dense_conv", "grouped_conv", "gather", "rest")
    per: dict[str, dict[str, float]] = defaultdict(dict)
    for r in breakdown:
        per[f"{r['variant']} b{r['batch']} {r['layout']}"][r["category"]] = float(r["ms"])
    labels = list(per)
    bottom = [0.0] * len(labels)
    colors = {"dense_conv": "0.5", "grouped_conv": "tab:blue", "gather": "tab:red", "rest": "0.85"}
    for c in cats:
        vals = [per[k].get(c, 0.0) for k in labels]
        ax.barh(labels, vals, left=bottom, color=colors[c], label=c)
        bottom = [b + v for b, v in zip(bottom, vals)]
    ax.set_xlabel("ms per forward (torch.profiler)")
    ax.tick_params(axis="y", labelsize=7)
    ax.legend(fontsize=7)
    style_axes(ax)


def plot_timing(summary: Sequence[dict], breakdown: Sequence[dict] = ()) -> Figure:
    """MACs vs speed-up, median time per batch size and (if given) the per-layer split."""
    ok = [r for r in summary if r.get("status") == "ok"]
    n = 3 if breakdown else 2
    fig = new_figure(figsize=(5.0 * n, 4.0))
    axes = fig.subplots(1, n)
    plot_macs_vs_latency(axes[0], ok)
    ax = axes[1]
    series: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for r in ok:
        series[f"{r['variant']} {r['layout']} {r['dtype']} {r['backend']}"].append((int(r["batch"]), float(r["median_ms"]) / int(r["batch"])))
    for label, pts in series.items():
        pts.sort()
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", lw=1, label=label)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("batch size")
    ax.set_ylabel("median ms per image")
    ax.legend(fontsize=5)
    style_axes(ax)
    if breakdown:
        plot_breakdown(axes[2], breakdown)
    return fig
