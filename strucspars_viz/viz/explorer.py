"""The explorer's figure: :func:`render` ``(state) -> Figure`` (draws only).

``state`` is the dict of :func:`strucspars_viz.explore.explore_state` / :func:`~strucspars_viz.explore.regroup`;
four panels: ``S``; ``S' = S[P][:, Q]`` with ``U_G``; the mask ``U_G[P_inv][:, Q_inv]`` in the weight's
order; ``f(G)`` against ``keep``. The ipywidgets app is :class:`strucspars_viz.explorer.Explorer`.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
from matplotlib.figure import Figure

from ..hierarchy import kept_fractions
from .matrices import draw_matrix
from .style import ACCENT, PALETTE, new_figure

__all__ = ["render"]


def render(state: Mapping, *, scale: str = "linear", dpi: float = 80) -> Figure:
    """Four panels: ``S``; ``S' = S[P][:, Q]`` with ``U_G``; the mask in the weight's order; ``f(G)`` vs ``keep``."""
    m, g = state["S"], state["groups"]
    cout, cin = m.shape
    fig = new_figure((13.0, 3.9), dpi=dpi)
    axes = fig.subplots(1, 4, width_ratios=[1, 1, 1, 1.05])
    vmax = float(m.max()) if m.size else 1.0
    draw_matrix(axes[0], m, groups=g, scale=scale, vmax=vmax, max_display=128)
    axes[0].set_title(f"S (input order; blocks not outlined)\nf(G) = {kept_fractions(m)[g]:.3f},  J = {state['objective_input']:.4g}")
    im, _ = draw_matrix(axes[1], m, row_pos=np.argsort(state["row_perm"]), col_pos=np.argsort(state["col_perm"]),
                        groups=g, scale=scale, vmax=vmax, max_display=128)
    axes[1].set_title(f"S' = S[P][:, Q]  ({state['shuffle']})\nf(G) = {state['kept_fraction']:.3f},  "
                      f"J = {state['objective']:.4g}")
    from matplotlib.colors import ListedColormap

    axes[2].imshow(state["weight_mask"], cmap=ListedColormap(["#f1f3f5", PALETTE[0]]), vmin=0, vmax=1,
                   extent=(0, cin, cout, 0), interpolation="nearest")
    axes[2].set_title(f"mask $U_G[P^{{-1}}][:, Q^{{-1}}]$, G = {g}\n(weight order; dark = kept)")
    axes[2].set_xlabel("input channel")
    axes[2].set_ylabel("output channel")
    axes[2].set_xticks([0, cin])
    axes[2].set_yticks([0, cout])
    ax = axes[3]
    gs = sorted(state["fractions"])
    fs = [state["fractions"][k] for k in gs]
    colors = [ACCENT if k == g else (PALETTE[1] if f >= state["keep"] - 1e-12 else "#c5ccd3") for k, f in zip(gs, fs)]
    ax.bar(range(len(gs)), fs, color=colors, width=0.7)
    ax.axhline(state["keep"], color=PALETTE[0], ls="--", lw=1.2)
    ax.text(len(gs) - 0.5, state["keep"], f"keep = {state['keep']:.2f}", ha="right", va="bottom", fontsize=8,
            color=PALETTE[0])
    ax.set_xticks(range(len(gs)))
    ax.set_xticklabels([str(k) for k in gs])
    ax.set_xlabel("groups G")
    ax.set_ylabel("kept fraction f(G)")
    ax.set_ylim(0, 1.05)
    ax.set_title(f"largest G with f(G) $\\geq$ keep\nchosen G = {g}")
    ax.grid(True, axis="y", color="#eeeeee")
    ax.set_axisbelow(True)
    cb = fig.colorbar(im, ax=axes[:2], shrink=0.7, pad=0.02)
    cb.outline.set_visible(False)
    cb.ax.tick_params(labelsize=7)
    solver = f", solver {state['solver']}" if state["shuffle"] == "learned" else ""
    sg = f" (g = {state['shuffle_groups']})" if state.get("shuffle_groups") else ""
    fig.suptitle(f"{state.get('name') or f'{cout}x{cin} matrix'}:  shuffle {state['shuffle']}{sg}{solver}, "
                 f"decay {state['decay']:g}  ->  G = {g},  f(G) = {state['kept_fraction']:.3f},  "
                 f"J = {state['objective']:.4g}", fontsize=11)
    return fig
