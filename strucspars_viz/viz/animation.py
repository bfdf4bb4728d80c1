"""Animations: the permutation search sliding rows and columns into blocks (a layer over training is
in :mod:`.training_animation`), and GIF export.

Both animations return :class:`matplotlib.animation.FuncAnimation` objects built on a pyplot-free Figure.
Show them in a notebook with ``IPython.display.HTML(anim.to_jshtml())`` and save them with
:func:`save_gif`. Each animation carries its frame data for inspection and tests:

* ``anim.update(k)`` draws frame ``k`` (what the writer calls);
* ``anim.image_artist`` is the matrix ``AxesImage`` (``get_array()`` gives the drawn pixels);
* ``anim.schedule`` lists ``(state, t)`` per frame: between state ``state`` and ``state + 1`` at
  fraction ``t`` of the move (``t = 0``: exactly at ``state``);
* ``anim.frame_count``.

Cost (measured on this project's 2-core CI machine, see ``tests/test_viz_animation.py``): a
256 x 256 matrix, shown at 128 x 128 pixels, 57 frames at dpi 72: 3.6-6.5 s to render with
``to_jshtml()`` (JPEG frames, see :class:`MatrixAnimation`), 1.9 MB of HTML (4.4 MB with PNG
frames); the GIF takes about 5 s and 0.8 MB. Timings vary with the machine's load.
"""
from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.animation import FuncAnimation, PillowWriter
from matplotlib.collections import LineCollection

from ..hierarchy import groups_for, kept_fractions
from ..permutation import HistoryStep, objective
from .matrices import as_matrix, block_segments, display_matrix, draw_matrix
from .player import offline_player
from .style import ACCENT, ANIM_FIGSIZE, GRID_COLOR, PALETTE, legible_text, new_figure

__all__ = [
    "MatrixAnimation",
    "PermutationState",
    "permutation_states",
    "frame_schedule",
    "ease",
    "animate_permutation",
    "save_gif",
    "gif_bytes",
    "anim_to_gif_base64",
]


class MatrixAnimation(FuncAnimation):
    """A :class:`~matplotlib.animation.FuncAnimation` whose ``to_jshtml()`` embeds JPEG frames by default.

    PNG frames of a noisy matrix compress poorly (about 75 kB each); JPEG frames (quality 75) are
    about 3x smaller, so 60 frames embed in about 1.5-2 MB. Pass ``frame_format="png"`` for lossless
    frames. The player's Font Awesome link (a CDN) is replaced by inline icons
    (:func:`~strucspars_viz.viz.player.offline_player`), so the buttons show offline. Everything
    else is FuncAnimation's.
    """

    frame_format = "jpeg"

    def to_jshtml(self, fps=None, embed_frames=True, default_mode=None, frame_format: str | None = None):
        import matplotlib as mpl

        with mpl.rc_context({"animation.frame_format": frame_format or self.frame_format}):
            html = super().to_jshtml(fps=fps, embed_frames=embed_frames, default_mode=default_mode)
        return offline_player(html)[0]


def ease(t: float) -> float:
    """Smoothstep ``3t^2 - 2t^3``: motion starts and stops gently; maps [0, 1] onto [0, 1] monotonically."""
    t = float(np.clip(t, 0.0, 1.0))
    return t * t * (3.0 - 2.0 * t)


@dataclass(frozen=True)
class PermutationState:
    """One displayed state: permutations, objective, label, and the criterion's ``G`` and ``f(G)``."""

    row_perm: np.ndarray
    col_perm: np.ndarray
    objective: float
    label: str
    groups: int
    fraction: float
    history_index: int  # index on the objective panel's x axis


def permutation_states(
    history: Sequence[HistoryStep],
    s,
    *,
    keep: float = 0.9,
    decay: float = 0.5,
    from_input: bool = True,
) -> list[PermutationState]:
    """The states an animation passes through: (optionally) the input order, then every history step.

    ``from_input=True`` prepends the identity order ("input") when the history's start is not the
    identity (e.g. the spectral start chosen by :func:`~strucspars_viz.learn_permutations`), so the
    animation begins from ``S`` as given.
    """
    m = as_matrix(s)
    cout, cin = m.shape
    if not history:
        raise ValueError("empty permutation history")
    states = []
    ident_r, ident_c = np.arange(cout), np.arange(cin)
    first = history[0]
    offset = 0
    if from_input and not (np.array_equal(first.row_perm, ident_r) and np.array_equal(first.col_perm, ident_c)):
        sp = m
        g = groups_for(sp, keep)
        states.append(PermutationState(ident_r, ident_c, objective(m, ident_r, ident_c, decay), "input order",
                                       g, kept_fractions(sp)[g], 0))
        offset = 1
    for i, step in enumerate(history):
        sp = m[step.row_perm][:, step.col_perm]
        g = groups_for(sp, keep)
        label = "start" if step.half == "start" else f"round {step.round}, {step.half}-step"
        states.append(PermutationState(np.asarray(step.row_perm), np.asarray(step.col_perm), float(step.objective),
                                       label, g, kept_fractions(sp)[g], i + offset))
    return states


def frame_schedule(moving: Sequence[float], max_frames: int = 60, hold: int = 2, end_hold: int = 6,
                   min_move: int = 3) -> list[tuple[int, float]]:
    """Frames ``(state, t)`` for ``len(moving) + 1`` states.

    ``moving[i]`` is how much transition ``i -> i+1`` moves (e.g. the fraction of channels changing
    slot; ``0`` or ``False``: nothing moves). Each state is held ``hold`` frames (the last one
    ``end_hold``); moving transitions share the remaining budget in proportion to the square root of
    their movement, at least ``min_move`` interpolated frames each; static ones get none. The total
    stays within ``max_frames`` whenever ``hold``/``min_move`` allow it (callers thin the states first,
    see :func:`animate_permutation`).
    """
    weights = np.sqrt(np.clip(np.asarray(moving, dtype=np.float64), 0.0, None))
    n_states = len(weights) + 1
    n_moves = int((weights > 0).sum())
    holds = hold * (n_states - 1) + end_hold
    if n_moves and holds + min_move * n_moves > max_frames:
        hold = max(1, (max_frames - end_hold - min_move * n_moves) // max(n_states - 1, 1))
        holds = hold * (n_states - 1) + end_hold
    spare = max(0, max_frames - holds - min_move * n_moves)
    extra = np.zeros(len(weights), dtype=int)
    if n_moves and spare:
        share = weights / weights.sum() * spare
        extra = np.floor(share).astype(int)
    frames: list[tuple[int, float]] = []
    for i in range(n_states - 1):
        frames += [(i, 0.0)] * hold
        if weights[i] > 0:
            n = min_move + int(extra[i])
            frames += [(i, (k + 1) / (n + 1)) for k in range(n)]
    frames += [(n_states - 1, 0.0)] * end_hold
    return frames


def _thin_states(states: list[PermutationState], max_states: int) -> list[PermutationState]:
    """Drop states that do not move channels (except first and last), then subsample evenly."""
    keep = [states[0]]
    for st in states[1:-1]:
        prev = keep[-1]
        if not (np.array_equal(st.row_perm, prev.row_perm) and np.array_equal(st.col_perm, prev.col_perm)):
            keep.append(st)
    if len(states) > 1:
        keep.append(states[-1])
    if len(keep) > max_states:
        idx = np.unique(np.round(np.linspace(0, len(keep) - 1, max_states)).astype(int))
        keep = [keep[i] for i in idx]
    return keep


def _grid_colors(segs_from: int, alpha: float) -> np.ndarray:
    import matplotlib.colors as mcolors

    rgba = np.array(mcolors.to_rgba(GRID_COLOR))
    out = np.tile(rgba, (segs_from, 1))
    out[:, 3] = alpha
    return out


def animate_permutation(
    history: Sequence[HistoryStep],
    s,
    *,
    keep: float = 0.9,
    decay: float = 0.5,
    from_input: bool = True,
    scale: str = "linear",
    max_frames: int = 60,
    max_display: int = 128,
    interval: int = 90,
    dpi: float = 96,
    title: str | None = None,
) -> FuncAnimation:
    """Replay a :func:`~strucspars_viz.learn_permutations` history: rows and columns slide into blocks.

    Left: ``S`` drawn with original row ``i`` at slot ``P_inv[i]`` and column ``j`` at ``Q_inv[j]``;
    between two half-steps the slots are interpolated (eased), so channels visibly slide instead of
    jumping. The outlines of ``U_G`` (``G`` = :func:`~strucspars_viz.groups_for` ``(S', keep)`` of each
    state) fade in as the group count grows. Right: ``J`` per half-step, the current one highlighted.

    Frames are capped at ``max_frames`` (states that move nothing are merged, long histories
    subsampled) and the matrix is displayed at about ``max_display`` pixels a side, so a 256 x 256
    matrix animates in a few seconds and its ``to_jshtml()`` stays under ~2 MB. The last frame shows
    exactly ``S[P][:, Q]`` of the final step.
    """
    m = as_matrix(s)
    cout, cin = m.shape
    all_states = permutation_states(history, m, keep=keep, decay=decay, from_input=from_input)
    budget_states = max(2, max_frames // 4)
    states = _thin_states(all_states, budget_states)
    moving = [  # fraction of channels that change slot
        (np.count_nonzero(a.row_perm != b.row_perm) + np.count_nonzero(a.col_perm != b.col_perm)) / (cout + cin)
        for a, b in zip(states[:-1], states[1:])
    ]
    schedule = frame_schedule(moving, max_frames=max_frames)
    row_slots = [np.argsort(st.row_perm).astype(np.float64) for st in states]
    col_slots = [np.argsort(st.col_perm).astype(np.float64) for st in states]

    fig = new_figure(ANIM_FIGSIZE, dpi=dpi, layout=None, animation=True)
    gs = fig.add_gridspec(1, 2, width_ratios=[1.05, 1.0], left=0.07, right=0.97, bottom=0.12, top=0.80, wspace=0.28)
    ax_m = fig.add_subplot(gs[0])
    ax_j = fig.add_subplot(gs[1])
    vmax = float(m.max()) if m.size else 1.0
    im, grid_from = draw_matrix(ax_m, m, row_pos=row_slots[0], col_pos=col_slots[0], groups=states[0].groups,
                                scale=scale, vmax=vmax, max_display=max_display, outline=True)
    grid_to = LineCollection(np.zeros((0, 2, 2)), colors=GRID_COLOR, linewidths=1.4, gid="block-grid-next")
    ax_m.add_collection(grid_to)

    xs = np.arange(len(all_states))
    js = np.array([st.objective for st in all_states])
    ax_j.plot(xs, js, "-", color=PALETTE[0], lw=1.5, zorder=1)
    ax_j.scatter(xs, js, s=14, color=PALETTE[0], zorder=2)
    current = ax_j.scatter([xs[states[0].history_index]], [states[0].objective], s=90, color=ACCENT,
                           zorder=3, edgecolor="white", linewidth=1.2)
    labels = [_short_label(st.label) for st in all_states]
    step = max(1, len(labels) // 10)
    ax_j.set_xticks(xs[::step])
    ax_j.set_xticklabels(labels[::step], rotation=0, fontsize=7)
    ax_j.set_xlabel("half-step")
    ax_j.set_ylabel("objective  $J = \\langle S[P][:, Q], R\\rangle$")
    ax_j.grid(True, axis="y", color="#eeeeee")
    pad = 0.05 * (js.max() - js.min() + 1e-12)
    ax_j.set_ylim(js.min() - pad, js.max() + pad)
    info = ax_j.text(0.98, 0.96, "", transform=ax_j.transAxes, ha="right", va="top", fontsize=9,
                     bbox=dict(boxstyle="round,pad=0.4", fc="white", ec="#dddddd"))
    fig.suptitle(title or f"Learning the channel shuffle  ({cout} x {cin})", fontsize=11, y=0.975)

    def update(k: int):
        i, t = schedule[k]
        a = states[i]
        b = states[min(i + 1, len(states) - 1)]
        e = ease(t) if t > 0 else 0.0
        rpos = (1 - e) * row_slots[i] + e * row_slots[min(i + 1, len(states) - 1)]
        cpos = (1 - e) * col_slots[i] + e * col_slots[min(i + 1, len(states) - 1)]
        disp = display_matrix(m, rpos, cpos, max_display)
        if im.norm.__class__.__name__ == "LogNorm":
            disp = np.where(np.isfinite(disp), np.maximum(disp, im.norm.vmin), disp)
        im.set_data(disp)
        # Block outlines: the current state's G, the next state's fading in as the move proceeds.
        grid_from.set_segments(block_segments(cout, cin, a.groups))
        grid_from.set_color(_grid_colors(len(grid_from.get_segments()) or 1, 1.0 - e if b.groups != a.groups else 1.0))
        if b.groups != a.groups and e > 0:
            grid_to.set_segments(block_segments(cout, cin, b.groups))
            grid_to.set_color(_grid_colors(len(grid_to.get_segments()) or 1, e))
        else:
            grid_to.set_segments(np.zeros((0, 2, 2)))
        shown = b if e >= 0.5 else a
        current.set_offsets([[xs[shown.history_index], shown.objective]])
        ax_m.set_title(f"$S[P][:, Q]$ · {shown.label}\nG = {shown.groups},  f(G) = {shown.fraction:.3f},  "
                       f"J = {shown.objective:.4g}", fontsize=10)
        info.set_text(f"{shown.label}\nJ = {shown.objective:.4g}\nG = {shown.groups} (keep {keep:g})")
        return im, grid_from, grid_to, current, info

    update(0)
    legible_text(fig)
    anim = MatrixAnimation(fig, update, frames=len(schedule), interval=interval, blit=False, repeat=True)
    anim._draw_was_started = True  # inspecting frames without rendering is fine: no deletion warning
    anim.update = update
    anim.image_artist = im
    anim.grid_artists = (grid_from, grid_to)
    anim.schedule = schedule
    anim.states = states
    anim.frame_count = len(schedule)
    anim.max_display = max_display
    return anim


def _short_label(label: str) -> str:
    if label == "input order":
        return "in"
    if label == "start":
        return "start"
    # "round 3, P-step" -> "P3"
    parts = label.replace(",", "").split()
    return f"{parts[2][0]}{parts[1]}" if len(parts) >= 3 else label


def gif_bytes(anim: FuncAnimation, fps: float | None = None, dpi: float | None = None) -> bytes:
    """The animation as GIF bytes (Pillow writer), via a temporary file."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "anim.gif"
        save_gif(anim, path, fps=fps, dpi=dpi)
        return path.read_bytes()


def save_gif(anim: FuncAnimation, path, fps: float | None = None, dpi: float | None = None) -> Path:
    """Save an animation as a looping GIF with matplotlib's Pillow writer; returns the path.

    ``fps`` defaults to ``1000 / interval`` of the animation; ``dpi`` to the figure's.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fps is None:
        fps = 1000.0 / float(getattr(anim, "_interval", 100) or 100)
    anim.save(str(path), writer=PillowWriter(fps=fps), dpi=dpi)
    return path


def anim_to_gif_base64(anim: FuncAnimation, fps: float | None = None) -> str:
    """``data:image/gif;base64,...`` URI of the animation (for self-contained HTML)."""
    return "data:image/gif;base64," + base64.b64encode(gif_bytes(anim, fps=fps)).decode("ascii")


