"""Heat maps of weight-norm matrices ``S`` and ``S' = S[P][:, Q]`` with the blocks of ``U_G``.

Axes are in channel units: cell ``(a, b)`` covers ``[b, b+1) x [a, a+1)`` (``imshow`` extent
``(0, Cin, Cout, 0)``), so the boundary of diagonal block ``r`` of ``U_G`` lies exactly at
``x = r Cin / G`` and ``y = r Cout / G`` whatever the displayed resolution.

Large matrices are *displayed* downsampled by area averaging (:func:`display_matrix`), small ones
upsampled by repetition, so every panel has about ``max_display`` pixels a side; the numbers shown
in titles (``f(G)``, ``J``) are always computed on the full matrix.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from ..hierarchy import groups_for, kept_fractions
from ..norms import as_matrix  # the one tensor / array-like -> float64 matrix converter
from ..permutation import objective
from .style import CMAP, GRID_COLOR, color_norm, new_figure

__all__ = [
    "as_matrix",
    "display_scale",
    "splat_weights",
    "display_matrix",
    "block_segments",
    "draw_matrix",
    "plot_norm_matrix",
    "plot_permutation_pair",
    "plot_matrix_grid",
]


def display_scale(n: int, max_display: int | None) -> float:
    """Display pixels per channel: ``max_display / n`` when downsampling, an integer ``>= 1`` otherwise."""
    if max_display is None or n == max_display:
        return 1.0
    if n > max_display:
        return max_display / n
    return float(max(1, max_display // n))


def splat_weights(positions: np.ndarray, scale: float, out_px: int) -> np.ndarray:
    """Area weights ``(out_px, n)``: item ``i`` covers ``[pos_i, pos_i + 1)`` channel units.

    ``weights[y, i]`` is the overlap of item ``i``'s band, mapped to display pixels
    (``[pos_i * scale, (pos_i + 1) * scale)``), with pixel ``[y, y+1)``. At integer positions and
    integer ``scale`` the weights are exactly 0/1 (pure repetition); at fractional positions a band
    straddles two pixels (linear interpolation), and bands that overlap are averaged.
    """
    lo = np.asarray(positions, dtype=np.float64)[None, :] * scale
    hi = lo + scale
    y = np.arange(out_px, dtype=np.float64)[:, None]
    return np.clip(np.minimum(hi, y + 1.0) - np.maximum(lo, y), 0.0, None)


def _fill_index(covered: np.ndarray) -> np.ndarray:
    """For every pixel, the index of the nearest covered pixel (itself if covered)."""
    idx = np.flatnonzero(covered)
    if idx.size == 0 or idx.size == covered.size:
        return np.arange(covered.size)
    pos = np.arange(covered.size)
    right = np.searchsorted(idx, pos).clip(0, idx.size - 1)
    left = (right - 1).clip(0, idx.size - 1)
    pick_left = np.abs(pos - idx[left]) <= np.abs(idx[right] - pos)
    return np.where(pick_left, idx[left], idx[right])


def display_matrix(
    s: np.ndarray,
    row_pos: np.ndarray | None = None,
    col_pos: np.ndarray | None = None,
    max_display: int | None = 128,
    fill_gaps: bool = True,
) -> np.ndarray:
    """Resample ``S`` for display with original row ``i`` drawn at (fractional) slot ``row_pos[i]``.

    ``row_pos = argsort(P)`` (i.e. ``P_inv``) draws ``S[P]``; interpolating positions between two
    permutations slides the rows continuously. Where bands overlap they are averaged; display rows
    (columns) that no band reaches mid-move are filled from the nearest covered one
    (``fill_gaps=False``: left NaN, drawn as background). At integer positions nothing is filled.
    Returns an array of about ``max_display`` pixels a side (``None``: one pixel per channel).
    """
    from scipy import sparse

    m = np.asarray(s, dtype=np.float64)
    cout, cin = m.shape
    row_pos = np.arange(cout) if row_pos is None else np.asarray(row_pos, dtype=np.float64)
    col_pos = np.arange(cin) if col_pos is None else np.asarray(col_pos, dtype=np.float64)
    sr, sc = display_scale(cout, max_display), display_scale(cin, max_display)
    hr, wc = int(round(cout * sr)), int(round(cin * sc))
    # The weights are sparse (a band touches at most ceil(scale) + 1 pixels); sparse products avoid
    # multi-threaded BLAS, which is slow for these small shapes on a busy machine.
    wr = sparse.csr_matrix(splat_weights(row_pos, sr, hr))
    wcol = sparse.csr_matrix(splat_weights(col_pos, sc, wc))
    num = np.asarray((wcol @ (wr @ m).T).T)
    rsum = np.asarray(wr.sum(1)).ravel()
    csum = np.asarray(wcol.sum(1)).ravel()
    den = np.outer(rsum, csum)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(den > 1e-12, num / np.where(den > 1e-12, den, 1.0), np.nan)
    if fill_gaps:
        out = out[_fill_index(rsum > 1e-12)][:, _fill_index(csum > 1e-12)]
    return out


def block_segments(cout: int, cin: int, groups: int) -> np.ndarray:
    """Outline segments of the ``G`` diagonal blocks of ``U_G``, ``(4G, 2, 2)`` in (x, y) channel units.

    Block ``r`` is the rectangle ``[r Cin/G, (r+1) Cin/G] x [r Cout/G, (r+1) Cout/G]``.
    ``G = 1`` gives no segments (the whole matrix is one block).
    """
    if groups <= 1:
        return np.zeros((0, 2, 2))
    bo, bi = cout / groups, cin / groups
    segs = []
    for r in range(groups):
        x0, x1, y0, y1 = r * bi, (r + 1) * bi, r * bo, (r + 1) * bo
        segs += [[(x0, y0), (x1, y0)], [(x1, y0), (x1, y1)], [(x1, y1), (x0, y1)], [(x0, y1), (x0, y0)]]
    return np.asarray(segs, dtype=np.float64)


def draw_matrix(
    ax,
    s: np.ndarray,
    *,
    row_pos=None,
    col_pos=None,
    groups: int = 1,
    scale: str = "linear",
    vmax: float | None = None,
    cmap: str = CMAP,
    max_display: int | None = 128,
    colorbar: bool = False,
    ticks: bool = True,
    outline: bool | None = None,
):
    """Draw ``S`` (rows at ``row_pos``, columns at ``col_pos``) on ``ax`` with the blocks of ``U_G``.

    ``outline`` (default: only when ``row_pos`` or ``col_pos`` is given) draws the ``G`` diagonal blocks.
    Outlines on a matrix in its own, unpermuted order would suggest blocks that the learned order has
    and this order has not, so they are drawn there only when asked for (``outline=True``: the caller
    knows ``S`` is already in the order whose blocks it means, e.g. an ``S[P][:, Q]`` passed in).

    Returns ``(image, grid)``: the ``AxesImage`` and the block-outline ``LineCollection`` (gid
    ``"block-grid"``), or ``None`` for ``grid`` when no outline is drawn.
    """
    m = as_matrix(s)
    cout, cin = m.shape
    disp = display_matrix(m, row_pos, col_pos, max_display)
    data, norm = color_norm(disp, scale, vmax=vmax if vmax is not None else float(np.nanmax(m)) if m.size else 1.0)
    import matplotlib as mpl

    cm = mpl.colormaps[cmap].with_extremes(bad="#f4f4f4")
    im = ax.imshow(
        data, cmap=cm, norm=norm, extent=(0, cin, cout, 0), interpolation="nearest", aspect="equal"
    )
    if outline is None:
        outline = row_pos is not None or col_pos is not None
    grid = None
    if outline:
        grid = LineCollection(block_segments(cout, cin, groups), colors=GRID_COLOR, linewidths=1.4, gid="block-grid")
        ax.add_collection(grid)
    ax.set_xlim(0, cin)
    ax.set_ylim(cout, 0)
    for side in ax.spines.values():
        side.set_visible(True)
        side.set_color("#bbbbbb")
    if ticks:
        ax.set_xlabel("input channel slot  (Q order)" if col_pos is not None else "input channel")
        ax.set_ylabel("output channel slot  (P order)" if row_pos is not None else "output channel")
        _channel_ticks(ax, cout, cin)
    else:
        ax.set_xticks([])
        ax.set_yticks([])
    if colorbar:
        cb = ax.figure.colorbar(im, ax=ax, shrink=0.8, pad=0.02)
        cb.set_label("weight norm  $S_{ij}=\\sum|W_{ij}|$", fontsize=8)
        cb.ax.tick_params(labelsize=7)
        cb.outline.set_visible(False)
    return im, grid


def _channel_ticks(ax, cout: int, cin: int) -> None:
    def nice(n: int) -> list[int]:
        # 0, quarter, half, ... : at most 5 labels (text is most of a frame's render time)
        step = max(1, 2 ** int(np.ceil(np.log2(max(n / 4, 1)))))
        return list(range(0, n + 1, step))

    ax.set_xticks(nice(cin))
    ax.set_yticks(nice(cout))
    ax.tick_params(length=2, labelsize=7)


def _index_ticks(ax, rows: int, cols: int) -> None:
    """0-based index ticks at cell centres, at most about 5 per axis."""
    def centres(n: int) -> list[int]:
        step = max(1, int(np.ceil(n / 5)))
        return list(range(0, n, step))

    xs, ys = centres(cols), centres(rows)
    ax.set_xticks([x + 0.5 for x in xs], [str(x) for x in xs])
    ax.set_yticks([y + 0.5 for y in ys], [str(y) for y in ys])
    ax.tick_params(length=2, labelsize=7)


def _stats(m: np.ndarray, row_perm, col_perm, groups, keep, decay):
    sp = m[np.asarray(row_perm)][:, np.asarray(col_perm)]
    fr = kept_fractions(sp)
    g = int(groups) if groups is not None else groups_for(sp, keep)
    return sp, g, fr[g], objective(m, row_perm, col_perm, decay)


def plot_norm_matrix(
    s,
    row_perm: Sequence[int] | None = None,
    col_perm: Sequence[int] | None = None,
    *,
    groups: int | None = None,
    keep: float = 0.9,
    decay: float = 0.5,
    scale: str = "linear",
    title: str | None = None,
    ax=None,
    colorbar: bool = True,
    max_display: int | None = 128,
    cmap: str = CMAP,
) -> Figure:
    """Heat map of ``S' = S[P][:, Q]`` with the diagonal blocks of ``U_G`` outlined.

    ``groups=None`` picks ``G`` by the grouping criterion (largest ``G`` with ``f(G) >= keep``).
    The title reports ``G``, the kept fraction ``f(G) = <S', U_G> / sum S'`` and the objective
    ``J = <S', R_L>`` (``decay`` sets ``R_L``). Without permutations ``S`` is drawn as given.
    Returns the Figure (``ax``'s figure if an Axes is given).
    """
    m = as_matrix(s)
    cout, cin = m.shape
    p = np.arange(cout) if row_perm is None else np.asarray(row_perm)
    q = np.arange(cin) if col_perm is None else np.asarray(col_perm)
    _, g, f, j = _stats(m, p, q, groups, keep, decay)
    if ax is None:
        fig = new_figure((4.6, 4.0))
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    permuted = row_perm is not None or col_perm is not None
    draw_matrix(
        ax, m,
        row_pos=np.argsort(p) if permuted else None,
        col_pos=np.argsort(q) if permuted else None,
        groups=g, scale=scale, colorbar=colorbar, max_display=max_display, cmap=cmap,
        outline=True,  # G and f(G) in the title are those of the drawn order
    )
    head = title if title is not None else ("$S' = S[P][:, Q]$" if permuted else "$S$")
    ax.set_title(f"{head}\nG = {g},  f(G) = {f:.3f},  J = {j:.4g}", fontsize=10)
    return fig


def plot_permutation_pair(
    s,
    row_perm: Sequence[int],
    col_perm: Sequence[int],
    *,
    groups: int | None = None,
    keep: float = 0.9,
    decay: float = 0.5,
    scale: str = "linear",
    titles: tuple[str, str] = ("S  (original channel order)", "S' = S[P][:, Q]  (learned order)"),
    suptitle: str | None = None,
    max_display: int | None = 128,
) -> Figure:
    """Side by side: ``S`` in its own order and ``S' = S[P][:, Q]``, each with ``G``, ``f(G)``, ``J``.

    Both titles report the *same* ``G``: in the original order its blocks catch little mass (``f(G)``
    on the left), which is the point of learning the shuffle. Only the permuted panel is outlined:
    outlines on the original order would suggest blocks that are not there.
    """
    m = as_matrix(s)
    cout, cin = m.shape
    p, q = np.asarray(row_perm), np.asarray(col_perm)
    _, g, f, j = _stats(m, p, q, groups, keep, decay)
    _, _, f0, j0 = _stats(m, np.arange(cout), np.arange(cin), g, keep, decay)
    fig = new_figure((9.2, 4.3))
    axes = fig.subplots(1, 2)
    vmax = float(m.max()) if m.size else 1.0
    draw_matrix(axes[0], m, groups=g, scale=scale, vmax=vmax, max_display=max_display)
    im, _ = draw_matrix(axes[1], m, row_pos=np.argsort(p), col_pos=np.argsort(q), groups=g,
                        scale=scale, vmax=vmax, max_display=max_display)
    axes[0].set_title(f"{titles[0]}\nG = {g},  f(G) = {f0:.3f},  J = {j0:.4g}")
    axes[1].set_title(f"{titles[1]}\nG = {g},  f(G) = {f:.3f},  J = {j:.4g}")
    cb = fig.colorbar(im, ax=axes, shrink=0.75, pad=0.02)
    cb.set_label("weight norm $S_{ij}$", fontsize=8)
    cb.outline.set_visible(False)
    if suptitle:
        fig.suptitle(suptitle, fontsize=11)
    return fig


def plot_matrix_grid(
    matrices,
    *,
    annotate: bool | None = None,
    cmap: str = "Blues",
    fmt: str = "{:g}",
    groups: Mapping[str, int] | None = None,
    suptitle: str | None = None,
    panel_size: float = 2.6,
    vmin: float | None = 0.0,
    vmax: float | None = None,
    skip_zeros: bool = False,
    colorbar: bool = True,
    axis_labels: Mapping[str, tuple[str, str]] | None = None,
) -> Figure:
    """Small matrices side by side (``{title: matrix}``), optionally with their values written in.

    For the hierarchy (``U_G``, ``R_g``, ``k(a, b)``), LP plans, and the like. ``annotate`` defaults to
    True for matrices up to 16 x 16; infinite entries are written as ``inf``. ``groups`` may give a
    ``G`` per title whose ``U_G`` blocks are outlined; ``skip_zeros`` leaves zero entries unlabelled.
    Every panel has index axes (0-based row / column, ``axis_labels`` gives ``(ylabel, xlabel)`` per
    title, default ``("row", "column")``) and, with ``colorbar``, its own colour bar.
    """
    import matplotlib as mpl

    items = [(k, as_matrix(v)) for k, v in dict(matrices).items()]
    if not items:
        raise ValueError("plot_matrix_grid: nothing to plot")
    width = (panel_size + (0.55 if colorbar else 0.0)) * len(items) + 0.4
    fig = new_figure((width, panel_size + 0.8))
    axes = np.atleast_1d(fig.subplots(1, len(items)))
    labels = dict(axis_labels or {})
    for ax, (title, m) in zip(axes, items):
        finite = np.where(np.isfinite(m), m, np.nan)
        hi = vmax if vmax is not None else (np.nanmax(finite) if np.isfinite(finite).any() else 1.0)
        cm = mpl.colormaps[cmap].with_extremes(bad="#fde0c5")
        im = ax.imshow(finite, cmap=cm, vmin=vmin, vmax=hi if hi > (vmin or 0) else (vmin or 0) + 1,
                       extent=(0, m.shape[1], m.shape[0], 0), interpolation="nearest")
        show = annotate if annotate is not None else max(m.shape) <= 16
        if show:
            for (a, b), v in np.ndenumerate(m):
                if skip_zeros and v == 0:
                    continue
                txt = "inf" if not np.isfinite(v) else fmt.format(v)
                dark = np.isfinite(v) and hi and v > 0.6 * hi
                ax.text(b + 0.5, a + 0.5, txt, ha="center", va="center", fontsize=7 if max(m.shape) <= 8 else 5.5,
                        color="white" if dark else "#1d2733")
        if groups and title in groups:
            ax.add_collection(LineCollection(block_segments(*m.shape, groups[title]), colors=GRID_COLOR,
                                             linewidths=1.6, gid="block-grid"))
        ax.set_title(title, fontsize=9)
        _index_ticks(ax, *m.shape)
        ylabel, xlabel = labels.get(title, ("row", "column"))
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        if colorbar:
            cb = fig.colorbar(im, ax=ax, shrink=0.75, pad=0.03)
            cb.ax.tick_params(labelsize=7)
            cb.outline.set_visible(False)
    if suptitle:
        fig.suptitle(suptitle, fontsize=11)
    return fig
