"""The Birkhoff polytope ``B_3`` (3 x 3 doubly-stochastic matrices) and a linear objective on it.

``B_3`` lives in the 4-dimensional affine space ``{X : X 1 = 1, X^T 1 = 1}`` of ``R^{3x3}``; its six
vertices are the permutation matrices, and every pair of them is joined by an edge (15 edges).
The even permutations form an equilateral triangle and the odd ones another, in orthogonal 2-planes.

**Projection used here** (linear, so faithful for lines, segments and level sets): the horizontal
coordinate is the objective itself, ``x = <C, X>``, so level sets ``<C, X> = const`` are exactly
vertical lines and the optimum is the leftmost point; the vertical coordinate is the leading
principal component of the six vertices after removing the cost direction (within the affine hull,
centred at the barycentre ``J/3``); when several vertices tie at the optimum, the leading principal
component of those optimal vertices, so the optimal face is spread out, not collapsed. For a cost with no component inside the affine hull (all
vertices tie) the first two principal directions are used.
"""
from __future__ import annotations

from itertools import permutations
from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from .style import ACCENT, PALETTE, new_figure

__all__ = [
    "birkhoff3_vertices",
    "birkhoff3_projection",
    "project_birkhoff3",
    "plot_birkhoff3",
    "birkhoff3_figure",
    "DEFAULT_COST",
    "TIE_COST",
]

#: a generic cost with a unique optimal vertex
DEFAULT_COST = np.array([[4.0, 1.0, 3.0], [2.0, 0.0, 5.0], [3.0, 2.0, 2.0]])
#: a tied cost: the identity and the swap (0 1) are both optimal (objective 0), so the optimal face
#: is the edge between them; HiGHS returns one vertex, Clarabel the edge's midpoint
TIE_COST = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]])


def birkhoff3_vertices() -> tuple[list[tuple[int, ...]], np.ndarray]:
    """The six permutations of ``{0, 1, 2}`` (row ``i`` -> column ``sigma[i]``) and their matrices ``(6, 3, 3)``."""
    perms = list(permutations(range(3)))
    mats = np.zeros((6, 3, 3))
    for k, p in enumerate(perms):
        mats[k, np.arange(3), p] = 1.0
    return perms, mats


def _tangent(c: np.ndarray) -> np.ndarray:
    """Projection onto the tangent space ``{rows and columns sum to 0}`` (double centring)."""
    return c - c.mean(1, keepdims=True) - c.mean(0, keepdims=True) + c.mean()


def birkhoff3_projection(cost) -> tuple[np.ndarray, np.ndarray]:
    """``(u_cost, u_y)``: unit 3x3 directions of the projection (see the module docstring)."""
    c = np.asarray(cost, dtype=np.float64).reshape(3, 3)
    _, mats = birkhoff3_vertices()
    centred = (mats - 1.0 / 3.0).reshape(6, 9)
    ct = _tangent(c).ravel()
    norm = np.linalg.norm(ct)
    if norm < 1e-12:
        _, _, vt = np.linalg.svd(centred)
        return vt[0].reshape(3, 3), vt[1].reshape(3, 3)
    u1 = ct / norm
    resid = centred - np.outer(centred @ u1, u1)
    # With ties at the optimum, spread the optimal face first (otherwise it may project to a point).
    vals = centred @ ct
    optimal = np.flatnonzero(vals <= vals.min() + 1e-9 * max(1.0, np.abs(vals).max()))
    if len(optimal) > 1:
        face = resid[optimal] - resid[optimal].mean(0)
        _, _, vt = np.linalg.svd(face)
    else:
        _, _, vt = np.linalg.svd(resid)
    u2 = vt[0]
    # deterministic sign: the identity sits in the upper half
    if (centred[0] @ u2) < 0:
        u2 = -u2
    return u1.reshape(3, 3), u2.reshape(3, 3)


def project_birkhoff3(points, cost) -> np.ndarray:
    """2-D coordinates ``(<C, X>, <X - J/3, u_y>)`` of 3x3 matrices ``points`` (``(k, 3, 3)`` or ``(3, 3)``)."""
    c = np.asarray(cost, dtype=np.float64).reshape(3, 3)
    x = np.asarray(points, dtype=np.float64).reshape(-1, 3, 3)
    _, u2 = birkhoff3_projection(c)
    obj = np.einsum("kij,ij->k", x, c)
    y = np.einsum("kij,ij->k", x - 1.0 / 3.0, u2)
    return np.stack([obj, y], axis=1)


def _fmt_matrix(x: np.ndarray) -> str:
    rows = []
    for r in np.asarray(x):
        rows.append(" ".join(f"{v:.2g}".rjust(4) if abs(v - round(v)) > 1e-6 else f"{int(round(v))}".rjust(4) for v in r))
    return "\n".join(rows)


def plot_birkhoff3(
    cost,
    plans: Mapping[str, np.ndarray] | None = None,
    *,
    ax=None,
    title: str | None = None,
    show_plan_text: bool = True,
) -> Figure:
    """``B_3`` projected (objective horizontally), level sets of ``<C, X>``, the optimal vertex or face.

    ``plans``: optional ``{label: 3x3 plan}`` (e.g. from ``birkhoff_lp(cost, solver="HIGHS")`` and
    ``solver="CLARABEL"``) drawn as markers; a fractional plan shows up inside the optimal face.
    """
    c = np.asarray(cost, dtype=np.float64).reshape(3, 3)
    perms, mats = birkhoff3_vertices()
    xy = project_birkhoff3(mats, c)
    vals = xy[:, 0]
    best = vals.min()
    optimal = np.flatnonzero(np.abs(vals - best) <= 1e-9 * max(1.0, abs(best)))
    if ax is None:
        fig = new_figure((6.2, 4.6))
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    span_x = vals.max() - vals.min() or 1.0
    span_y = xy[:, 1].max() - xy[:, 1].min() or 1.0
    x0, x1 = vals.min() - 0.12 * span_x, vals.max() + 0.12 * span_x
    y0, y1 = xy[:, 1].min() - 0.25 * span_y, xy[:, 1].max() + 0.25 * span_y
    # objective as a background gradient: level sets are vertical
    grad = np.linspace(x0, x1, 256)[None, :]
    ax.imshow(grad, extent=(x0, x1, y0, y1), origin="lower", aspect="auto", cmap="Blues_r", alpha=0.25,
              zorder=0, interpolation="bilinear")
    for v in np.unique(np.round(vals, 9)):
        ax.axvline(v, color="#7a8fa6", lw=0.8, ls=(0, (4, 3)), zorder=1)
        ax.text(v, y1 - 0.02 * span_y, f"{v:g}", ha="center", va="top", fontsize=7, color="#4a5f76",
                bbox=dict(fc="white", ec="none", alpha=0.7, pad=0.5))
    # all 15 pairs are edges of B_3
    for i in range(6):
        for j in range(i + 1, 6):
            ax.plot(xy[[i, j], 0], xy[[i, j], 1], color="#9aa5b1", lw=0.9, zorder=2)
    if len(optimal) > 1:
        face = xy[optimal]
        order = np.argsort(np.arctan2(face[:, 1] - face[:, 1].mean(), face[:, 0] - face[:, 0].mean()))
        ax.fill(face[order, 0], face[order, 1], color=ACCENT, alpha=0.25, zorder=2)
        for i in range(len(optimal)):
            for j in range(i + 1, len(optimal)):
                ax.plot(face[[i, j], 0], face[[i, j], 1], color=ACCENT, lw=3.0, zorder=3, solid_capstyle="round")
    even = {0, 3, 4}  # (0,1,2), (1,2,0), (2,0,1)
    labels: dict[tuple[float, float], list[str]] = {}
    for k, (p, (x, y)) in enumerate(zip(perms, xy)):
        is_opt = k in optimal
        ax.scatter([x], [y], s=170 if is_opt else 70, marker="*" if is_opt else "o",
                   color=ACCENT if is_opt else (PALETTE[0] if k in even else PALETTE[1]),
                   edgecolor="white", linewidth=1.0, zorder=5)
        # vertices that coincide in the projection share one label
        labels.setdefault((round(x, 6), round(y, 6)), []).append("".join(map(str, p)))
    for (x, y), names in labels.items():
        ax.annotate("$\\sigma$=" + ", ".join(names), (x, y), xytext=(6, 6), textcoords="offset points",
                    fontsize=8, color="#222222", zorder=6)
    markers = ["o", "D", "s", "^"]
    for n, (label, plan) in enumerate((plans or {}).items()):
        px, py = project_birkhoff3(plan, c)[0]
        ax.scatter([px], [py], s=260 if n == 0 else 90, marker=markers[n % 4],
                   facecolor="none" if n == 0 else PALETTE[3 + n % 3],
                   edgecolor=PALETTE[3 + n % 3], linewidth=2.0, zorder=7, label=label)
        if show_plan_text:
            ax.text(1.03, 1.0 - 0.34 * n, f"{label.split(' (')[0]} plan X\n{_fmt_matrix(plan)}",
                    transform=ax.transAxes, ha="left", va="top", fontsize=8, family="monospace",
                    color="#222222",
                    bbox=dict(fc="white", ec=PALETTE[3 + n % 3], lw=1.5, boxstyle="round,pad=0.4"))
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel("objective  $\\langle C, X\\rangle$   (level sets are vertical lines)")
    ax.set_ylabel("2nd coordinate (PC of vertices $\\perp$ C)")
    ax.set_yticks([])
    if plans:
        ax.legend(loc="lower right")
    n_opt = len(optimal)
    head = title or ("unique optimal vertex" if n_opt == 1 else f"tie: optimal face has {n_opt} vertices")
    ax.set_title(f"{head}\nmin $\\langle C, X\\rangle$ = {best:g}", fontsize=10)
    return fig


def birkhoff3_figure(panels: Sequence[tuple]) -> Figure:
    """One panel per ``(cost, plans, title)``: :func:`plot_birkhoff3` of already solved plans, side by side.

    ``plans`` is ``{label: 3x3 plan}`` as returned by :func:`strucspars_viz.birkhoff.lp_plans`
    (the caller solves; this function only draws), e.g.::

        panels = [(c, lp_plans(c), "generic cost") for c in (DEFAULT_COST, TIE_COST)]
        birkhoff3_figure(panels)
    """
    panels = list(panels)
    if not panels:
        raise ValueError("birkhoff3_figure needs at least one (cost, plans, title) panel")
    fig = new_figure((6.5 * len(panels), 4.8))
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, panel in zip(axes, panels):
        cost, plans, head = panel
        plot_birkhoff3(np.asarray(cost, dtype=float), plans, ax=ax, title=head)
    fig.suptitle("The Birkhoff polytope $B_3$: six permutation matrices, a linear objective, its optimum",
                 fontsize=11)
    return fig
