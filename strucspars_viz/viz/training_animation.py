"""Animation of one layer over training: its ``S`` epoch by epoch while the structured regulariser
drives it block-diagonal (the per-epoch trace of :class:`strucspars_viz.trace.LayerTrace`).

Built on :class:`~strucspars_viz.viz.animation.MatrixAnimation` like the permutation animation; show it
with ``IPython.display.HTML(anim.to_jshtml())`` or save it with :func:`~strucspars_viz.viz.animation.save_gif`.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.animation import FuncAnimation
from matplotlib.ticker import FuncFormatter, MaxNLocator

from ..hierarchy import kept_fractions
from .animation import MatrixAnimation, ease
from .matrices import as_matrix, block_segments, display_matrix, draw_matrix
from .style import ACCENT, ANIM_FIGSIZE, PALETTE, legible_text, new_figure

__all__ = ["animate_training"]


def animate_training(
    norm_matrices: Sequence,
    lam: Sequence[float],
    sparsity: Sequence[float],
    groups: Sequence[int],
    *,
    row_perms: Sequence | None = None,
    col_perms: Sequence | None = None,
    keep: float | None = None,
    layer: str | None = None,
    normalize: bool = True,
    scale: str = "log",
    frames_between: int = 4,
    max_frames: int = 60,
    max_display: int = 128,
    interval: int = 120,
    dpi: float = 96,
    epochs: Sequence[int] | None = None,
    phases: Sequence[str] | None = None,
) -> FuncAnimation:
    """One layer's ``S`` epoch by epoch while the structured regulariser drives it block-diagonal.

    Parameters
    ----------
    norm_matrices : per epoch, the layer's ``S`` (``E`` arrays ``(Cout, Cin)``). Shown as given unless
        ``row_perms`` / ``col_perms`` (per epoch) are passed, in which case they are in the weight's
        own order and drawn as ``S[P_e][:, Q_e]``, sliding between epochs when the order changes.
    lam, sparsity, groups : per epoch: the regularisation strength, the model sparsity and this
        layer's group count ``G`` (its ``U_G`` is outlined).
    keep : if given, the title also reports ``f(G)`` and the ``keep`` used.
    epochs, phases : per entry, the epoch number and phase of the trace (``LayerTrace.epoch`` /
        ``.phase``); the x axis and the titles then use the run's own epoch numbering, the one of
        ``metrics.jsonl`` and :func:`plot_training_curves` (``init`` is epoch 0; ``masked`` shares the
        last sparsification epoch). Default: entries numbered 1..E.
    normalize : scale each epoch's ``S`` by its maximum (shows structure while norms shrink).
    scale : colour scale, ``"log"`` by default (off-block norms decay by orders of magnitude).

    Between epochs ``frames_between`` frames cross-fade the values (and slide channels when the
    order changes); total frames are capped at ``max_frames``.
    """
    mats = [as_matrix(x) for x in norm_matrices]
    n_ep = len(mats)
    if n_ep == 0:
        raise ValueError("animate_training needs at least one epoch")
    if not (len(lam) == len(sparsity) == len(groups) == n_ep):
        raise ValueError(f"per-epoch series must all have {n_ep} entries: lam {len(lam)}, "
                         f"sparsity {len(sparsity)}, groups {len(groups)}")
    if epochs is not None and len(epochs) != n_ep:
        raise ValueError(f"epochs must have one entry per matrix ({n_ep}), got {len(epochs)}")
    if phases is not None and len(phases) != n_ep:
        raise ValueError(f"phases must have one entry per matrix ({n_ep}), got {len(phases)}")
    if normalize:
        mats = [x / x.max() if x.max() > 0 else x for x in mats]
    cout, cin = mats[0].shape
    ident_r, ident_c = np.arange(cout, dtype=float), np.arange(cin, dtype=float)
    rslots = [np.argsort(np.asarray(p)).astype(float) for p in row_perms] if row_perms is not None else [ident_r] * n_ep
    cslots = [np.argsort(np.asarray(q)).astype(float) for q in col_perms] if col_perms is not None else [ident_c] * n_ep
    between = max(0, min(frames_between, (max_frames - 2 * n_ep) // max(n_ep - 1, 1)))
    schedule: list[tuple[int, float]] = []
    if n_ep > max_frames // 2:
        show = np.unique(np.round(np.linspace(0, n_ep - 1, max_frames // 2)).astype(int))
        between = 0
    else:
        show = np.arange(n_ep)
    for idx, e in enumerate(show):
        schedule += [(int(e), 0.0)] * 2
        if idx + 1 < len(show):
            schedule += [(int(e), (k + 1) / (between + 1)) for k in range(between)]
    schedule += [(int(show[-1]), 0.0)] * 3
    schedule = schedule[:max_frames - 1] + [(int(show[-1]), 0.0)] if len(schedule) > max_frames else schedule
    nxt = {int(e): int(show[i + 1]) for i, e in enumerate(show[:-1])}

    fig = new_figure(ANIM_FIGSIZE, dpi=dpi, layout=None, animation=True)
    gs = fig.add_gridspec(3, 2, width_ratios=[1.05, 1.0], left=0.07, right=0.97, bottom=0.12, top=0.80,
                          wspace=0.3, hspace=0.35)
    ax_m = fig.add_subplot(gs[:, 0])
    ax_l = fig.add_subplot(gs[0, 1])
    ax_s = fig.add_subplot(gs[1, 1], sharex=ax_l)
    ax_g = fig.add_subplot(gs[2, 1], sharex=ax_l)
    vmax = 1.0 if normalize else max(float(x.max()) for x in mats)
    im, grid = draw_matrix(ax_m, mats[0], row_pos=rslots[0], col_pos=cslots[0], groups=int(groups[0]),
                           scale=scale, vmax=vmax, max_display=max_display, ticks=True, outline=True)
    xs = np.arange(1, n_ep + 1, dtype=float) if epochs is None else np.asarray(epochs, dtype=float)
    series = [(ax_l, np.asarray(lam, float), "$\\lambda$", PALETTE[2]),
              (ax_s, np.asarray(sparsity, float), "sparsity", PALETTE[1]),
              (ax_g, np.asarray(groups, float), "G (layer)", PALETTE[0])]
    markers = []
    for ax, ys, label, color in series:
        ax.plot(xs, ys, "-o", color=color, ms=3, lw=1.5)
        ax.set_ylabel(label)
        ax.grid(True, axis="y", color="#eeeeee")
        markers.append(ax.axvline(xs[0], color=ACCENT, lw=1.5, alpha=0.8))
    lam_max = float(np.max(lam)) if len(lam) else 0.0
    ax_l.set_ylim(0, lam_max * 1.3 if lam_max > 0 else 1.0)
    ax_l.yaxis.set_major_locator(MaxNLocator(3))
    ax_l.yaxis.set_major_formatter(FuncFormatter(lambda v, _: "0" if v == 0 else f"{v:.0e}".replace("e-0", "e-")))
    ax_g.set_yscale("log", base=2)
    gmax = max(int(max(groups)), 2)
    ax_g.set_yticks([2**k for k in range(int(np.log2(gmax)) + 1)])
    ax_g.set_yticklabels([str(2**k) for k in range(int(np.log2(gmax)) + 1)])
    ax_g.set_ylim(0.8, gmax * 1.25)
    ax_s.set_ylim(-0.02, max(0.1, float(np.max(sparsity)) * 1.15))
    ax_g.set_xlabel("epoch")
    ax_g.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in (ax_l, ax_s):
        ax.tick_params(labelbottom=False)
    fig.suptitle(f"Structured regularisation{' · ' + layer if layer else ''}  ({cout} x {cin})", fontsize=11, y=0.975)

    what = "$S / \\max S$" if normalize else "$S$"

    def update(k: int):
        e, t = schedule[k]
        f = nxt.get(e, e)
        w = ease(t) if t > 0 else 0.0
        mat = (1 - w) * mats[e] + w * mats[f]
        rpos = (1 - w) * rslots[e] + w * rslots[f]
        cpos = (1 - w) * cslots[e] + w * cslots[f]
        disp = display_matrix(mat, rpos, cpos, max_display)
        if im.norm.__class__.__name__ == "LogNorm":
            disp = np.where(np.isfinite(disp), np.maximum(disp, im.norm.vmin), disp)
        im.set_data(disp)
        shown = f if w >= 0.5 else e
        g = int(groups[shown])
        grid.set_segments(block_segments(cout, cin, g))
        for mk in markers:
            mk.set_xdata([xs[e] + w * (xs[f] - xs[e])] * 2)
        if epochs is None:
            head = f"epoch {shown + 1}/{n_ep}:  G = {g}"
        else:
            phase = f" ({phases[shown]})" if phases is not None else ""
            head = f"epoch {int(xs[shown])}/{int(xs.max())}{phase}:  G = {g}"
        if keep is not None:
            sp = mats[shown][np.argsort(rslots[shown]).astype(int)][:, np.argsort(cslots[shown]).astype(int)]
            head += f",  f(G) = {kept_fractions(sp)[g]:.3f}  (keep {keep:g})"
        ax_m.set_title(f"{what} in learned order\n{head}", fontsize=10)
        return im, grid, *markers

    update(0)
    legible_text(fig)
    anim = MatrixAnimation(fig, update, frames=len(schedule), interval=interval, blit=False, repeat=True)
    anim._draw_was_started = True
    anim.update = update
    anim.image_artist = im
    anim.grid_artists = (grid,)
    anim.schedule = schedule
    anim.frame_count = len(schedule)
    anim.max_display = max_display
    return anim
