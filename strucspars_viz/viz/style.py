"""One consistent look for every figure: colours, colour scales, figure creation (Agg-safe).

Figures are created with :class:`matplotlib.figure.Figure` and an explicit Agg canvas, never through
``pyplot``: nothing is registered in pyplot's global figure manager, so library calls cannot leak
figures (``plt.get_fignums()`` does not grow) and work the same in scripts, tests and notebooks.
"""
from __future__ import annotations

import io

import numpy as np
from matplotlib import colors as mcolors
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = [
    "CMAP",
    "GRID_COLOR",
    "ACCENT",
    "PALETTE",
    "new_figure",
    "color_norm",
    "figure_to_png",
    "figure_to_array",
    "ANIM_FIGSIZE",
    "MIN_FONT_PT",
    "legible_text",
]

#: sequential map of weight norms: near-white = 0, dark purple/black = large
CMAP = "magma_r"
#: block boundaries of ``U_G`` drawn over heat maps
GRID_COLOR = "#00a5cf"
#: highlight (current point, optimum)
ACCENT = "#e4572e"
#: qualitative colours (before / after, series)
PALETTE = ("#2e4057", "#00a5cf", "#e4572e", "#76b041", "#ffc914", "#8d6a9f")

#: animations: inches at dpi 96 (768 x 360 px, shown 1:1 by ``to_jshtml``)
ANIM_FIGSIZE = (8.0, 3.75)
#: smallest text in animations, points (12 px at dpi 96): a smaller frame with larger text, since
#: a frame's pixel count is most of its render time
MIN_FONT_PT = 9.0

_RC = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
}


class _FrameCanvas(FigureCanvasAgg):
    """Agg canvas for animations: ``draw_idle`` is a no-op.

    ``Animation.save`` / ``to_jshtml`` call ``draw_idle()`` after every frame and then ``savefig``,
    which draws again; on a non-interactive canvas the first draw is wasted (half the render time).
    """

    def draw_idle(self, *args, **kwargs) -> None:
        return None


def new_figure(figsize=(6.0, 4.0), dpi: float = 100, layout: str | None = "constrained",
               animation: bool = False) -> Figure:
    """A fresh Figure with an Agg canvas, outside pyplot's registry, styled like every other figure."""
    import matplotlib as mpl

    with mpl.rc_context(_RC):
        fig = Figure(figsize=figsize, dpi=dpi, layout=layout)
    (_FrameCanvas if animation else FigureCanvasAgg)(fig)
    return fig


def style_axes(ax) -> None:
    """Apply the house style to an Axes (created outside :func:`new_figure`'s rc context)."""
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=8)
    ax.title.set_fontsize(10)
    ax.xaxis.label.set_fontsize(9)
    ax.yaxis.label.set_fontsize(9)


def legible_text(fig: Figure, minimum: float = MIN_FONT_PT) -> None:
    """Raise every text of ``fig`` (tick labels, labels, titles, annotations) to at least ``minimum`` points."""
    from matplotlib.text import Text

    for text in fig.findobj(Text):
        if text.get_fontsize() < minimum:
            text.set_fontsize(minimum)
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                if tick.label1.get_fontsize() < minimum:
                    ax.tick_params(axis="x" if axis is ax.xaxis else "y", which="both", labelsize=minimum)
                    break


def color_norm(data: np.ndarray, scale: str = "linear", vmax: float | None = None) -> tuple[np.ndarray, mcolors.Normalize]:
    """Data prepared for ``imshow`` and its colour normalisation.

    ``scale``: ``"linear"`` (0..max), ``"sqrt"`` (power 0.5, shows small norms better) or ``"log"``
    (three decades below the maximum; zeros and smaller values are clipped to the floor).
    """
    arr = np.asarray(data, dtype=np.float64)
    finite = arr[np.isfinite(arr)]
    top = float(vmax) if vmax is not None else (float(finite.max()) if finite.size else 1.0)
    if top <= 0:
        top = 1.0
    if scale == "linear":
        return arr, mcolors.Normalize(0.0, top)
    if scale == "sqrt":
        return arr, mcolors.PowerNorm(0.5, 0.0, top)
    if scale == "log":
        positive = finite[finite > 0]
        floor = max(top * 1e-3, float(positive.min()) if positive.size else top * 1e-3)
        floor = min(floor, top * 0.5)
        return np.where(np.isfinite(arr), np.maximum(arr, floor), arr), mcolors.LogNorm(floor, top)
    raise ValueError(f"unknown colour scale {scale!r}; use 'linear', 'sqrt' or 'log'")


def figure_to_png(fig: Figure, dpi: float | None = None) -> bytes:
    """PNG bytes of a figure."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def figure_to_array(fig: Figure) -> np.ndarray:
    """The rendered RGBA pixels of a figure, ``(H, W, 4)`` uint8."""
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba()).copy()
