"""Interactive explorer: pick a matrix (planted or a model layer), ``keep``, ``decay``, solver and shuffle.

The logic is three pure functions that tests and notebooks call directly:

* :func:`explore_state` ``(S, keep, decay, solver, shuffle, ...) -> dict``: permutations (the expensive
  part when ``shuffle="learned"``), then :func:`regroup`;
* :func:`regroup` ``(state, keep) -> dict``: the cheap part, the grouping criterion at a new ``keep``
  (``f(G)`` for all ``G``, the chosen ``G``, the mask) without touching ``P, Q``;
* :func:`render` ``(state) -> Figure``: ``S``, ``S'`` with ``U_G``, the mask in the weight's order and
  ``f(G)`` against ``keep``.

:class:`Explorer` wires them to ipywidgets: moving ``keep`` only regroups and redraws; a learned
shuffle is (re)solved when **Solve** is pressed, never on a slider move. The cheap shuffles
(ShuffleNet / random / none) are recomputed at once. ipywidgets is imported lazily, so the pure
functions work without it.

Shuffles (``shuffle=``):

* ``"learned"``: :func:`~strucspars_viz.learn_permutations` with ``method=solver`` (``lsa``/``emd``/``cvxpy``);
* ``"shufflenet"``: ``P = shufflenet_permutation(Cout, g)``, ``Q = shufflenet_permutation(Cin, g)`` with
  ``g = shuffle_groups`` (default ``min(4, 2^L)``);
* ``"random"``: ``P = random_permutation(Cout, seed)``, ``Q = random_permutation(Cin, seed + 1)``;
* ``"none"``: identities.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Mapping

import numpy as np
from matplotlib.figure import Figure

from ..hierarchy import block_mask, groups_for, kept_fractions, max_groups
from ..permutation import learn_permutations, objective, random_permutation, shufflenet_permutation
from .matrices import as_matrix, draw_matrix
from .style import ACCENT, PALETTE, figure_to_png, new_figure

__all__ = ["SHUFFLES", "SOLVERS", "shuffle_permutations", "explore_state", "regroup", "render",
           "explorer_sources", "Explorer"]

SHUFFLES = ("learned", "shufflenet", "random", "none")
SOLVERS = ("lsa", "emd", "cvxpy")


def default_shuffle_groups(cout: int, cin: int) -> int:
    """``min(4, 2^L)``: the ShuffleNet group count used when none is given."""
    return min(4, max_groups(cout, cin))


def shuffle_permutations(
    s,
    shuffle: str = "learned",
    *,
    solver: str = "lsa",
    decay: float = 0.5,
    iters: int = 20,
    shuffle_groups: int | None = None,
    seed: int = 0,
):
    """``(row_perm, col_perm, history)`` for a shuffle type (see the module docstring); history is
    ``None`` except for ``"learned"``."""
    m = as_matrix(s)
    cout, cin = m.shape
    if shuffle == "learned":
        if solver not in SOLVERS:
            raise ValueError(f"unknown solver {solver!r}; choose from {SOLVERS}")
        p, q, hist = learn_permutations(m, iters=iters, method=solver, decay=decay, seed=seed)
        return p, q, hist
    if shuffle == "shufflenet":
        g = int(shuffle_groups) if shuffle_groups is not None else default_shuffle_groups(cout, cin)
        return shufflenet_permutation(cout, g), shufflenet_permutation(cin, g), None
    if shuffle == "random":
        return random_permutation(cout, seed), random_permutation(cin, seed + 1), None
    if shuffle == "none":
        return np.arange(cout, dtype=np.int64), np.arange(cin, dtype=np.int64), None
    raise ValueError(f"unknown shuffle {shuffle!r}; choose from {SHUFFLES}")


def regroup(state: Mapping, keep: float) -> dict:
    """The grouping criterion at ``keep`` for fixed ``P, Q`` (cheap: no solve). Returns a new state.

    Adds ``keep``, ``S_perm = S[P][:, Q]``, ``fractions = {G: f(G)}``, ``groups`` (largest ``G`` with
    ``f(G) >= keep``), ``kept_fraction = f(groups)``, ``mask = U_G`` (learned order) and
    ``weight_mask = U_G[P_inv][:, Q_inv]`` (the weight's own order: what masking zeroes).
    """
    new = dict(state)
    m = state["S"]
    sp = m[state["row_perm"]][:, state["col_perm"]]
    fractions = kept_fractions(sp)
    g = groups_for(sp, keep)
    mask = block_mask(*m.shape, g).numpy().astype(np.float64)
    new.update(keep=float(keep), S_perm=sp, fractions=fractions, groups=g, kept_fraction=fractions[g], mask=mask,
               weight_mask=mask[np.argsort(state["row_perm"])][:, np.argsort(state["col_perm"])])
    return new


def explore_state(
    s,
    keep: float = 0.9,
    decay: float = 0.5,
    solver: str = "lsa",
    shuffle: str = "learned",
    *,
    iters: int = 20,
    shuffle_groups: int | None = None,
    seed: int = 0,
    name: str = "",
) -> dict:
    """Everything the explorer shows for one setting (pure: same inputs, same dict).

    Keys: ``S, name, shuffle, solver, decay, iters, seed, shuffle_groups, row_perm, col_perm, history,
    objective`` (``J = <S', R_L>`` at ``decay``), ``objective_input`` (``J`` of the input order),
    ``seconds`` (permutation time), plus those of :func:`regroup`.
    """
    m = as_matrix(s)
    t0 = time.perf_counter()
    p, q, hist = shuffle_permutations(m, shuffle, solver=solver, decay=decay, iters=iters,
                                      shuffle_groups=shuffle_groups, seed=seed)
    secs = time.perf_counter() - t0
    cout, cin = m.shape
    state = dict(
        S=m, name=name, shuffle=shuffle, solver=solver, decay=float(decay), iters=int(iters), seed=int(seed),
        shuffle_groups=(int(shuffle_groups) if shuffle_groups is not None else default_shuffle_groups(cout, cin))
        if shuffle == "shufflenet" else None,
        row_perm=np.asarray(p, np.int64), col_perm=np.asarray(q, np.int64), history=hist,
        objective=objective(m, p, q, decay), objective_input=objective(m, np.arange(cout), np.arange(cin), decay),
        seconds=secs,
    )
    return regroup(state, keep)


def render(state: Mapping, *, scale: str = "linear", dpi: float = 80) -> Figure:
    """Four panels: ``S``; ``S' = S[P][:, Q]`` with ``U_G``; the mask in the weight's order; ``f(G)`` vs ``keep``."""
    m, g = state["S"], state["groups"]
    cout, cin = m.shape
    fig = new_figure((13.0, 3.9), dpi=dpi)
    axes = fig.subplots(1, 4, width_ratios=[1, 1, 1, 1.05])
    vmax = float(m.max()) if m.size else 1.0
    draw_matrix(axes[0], m, groups=g, scale=scale, vmax=vmax, max_display=128)
    axes[0].set_title(f"S (input order)\nf(G) = {kept_fractions(m)[g]:.3f},  J = {state['objective_input']:.4g}")
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


def explorer_sources(
    models: tuple[str, ...] = ("resnet20",),
    *,
    planted: bool = True,
    demo_dir: str | Path | None = None,
    seed: int = 0,
) -> dict[str, dict[str, np.ndarray]]:
    """Matrices to explore: ``{source: {layer: S}}``.

    * planted matrices (block-diagonal, scrambled; see :func:`strucspars_viz.planted_matrix`);
    * every sparsified conv of each registered model in ``models`` at its random initialisation
      (no structure to find: a useful contrast);
    * if ``demo_dir`` holds ``norm_matrices.npz`` (written by ``strucspars-viz demo``), the layers of the
      briefly trained ResNet-20.
    """
    from ..permutation import planted_matrix

    sources: dict[str, dict[str, np.ndarray]] = {}
    if planted:
        sources["planted"] = {
            "64x64, 8 blocks, noise 0.03": planted_matrix(64, 64, 8, 0.03, seed)[0],
            "64x64, 4 blocks, noise 0.2": planted_matrix(64, 64, 4, 0.2, seed + 1)[0],
            "32x64, 4 blocks (non-square)": planted_matrix(32, 64, 4, 0.03, seed + 2)[0],
            "16x16, 4 blocks": planted_matrix(16, 16, 4, 0.02, seed + 3)[0],
        }
    if demo_dir is not None:
        path = Path(demo_dir) / "norm_matrices.npz"
        if path.is_file():
            with np.load(path) as data:
                sources["resnet20 (demo-trained)"] = {k: data[k] for k in data.files}
    if models:
        import torch

        from ..models import build_model
        from ..sparsifier import StructuredSparsifier

        for name in models:
            torch.manual_seed(seed)
            model = build_model(name)
            sparsifier = StructuredSparsifier(model)
            sources[f"{name} (untrained)"] = sparsifier.norm_matrices()
    return sources


class Explorer:
    """The ipywidgets front end; ``Explorer(sources).widget`` is the box to display.

    Attributes ``state`` (the current :func:`explore_state` dict), ``controls`` (name -> widget) and
    ``output`` (the figure area) are public so that notebooks and tests can drive it.
    """

    def __init__(self, sources: Mapping[str, Mapping[str, np.ndarray]] | None = None, *, keep: float = 0.9,
                 decay: float = 0.5, solver: str = "lsa", shuffle: str = "learned", scale: str = "linear") -> None:
        import ipywidgets as w

        self.sources = dict(sources) if sources is not None else explorer_sources()
        if not self.sources:
            raise ValueError("Explorer needs at least one source of matrices")
        self.scale = scale
        first = next(iter(self.sources))
        layout = w.Layout(width="290px")
        style = {"description_width": "70px"}
        self.controls = {
            "source": w.Dropdown(options=list(self.sources), value=first, description="source", layout=layout,
                                 style=style),
            "layer": w.Dropdown(options=list(self.sources[first]), description="layer", layout=layout, style=style),
            "keep": w.FloatSlider(value=keep, min=0.5, max=1.0, step=0.01, description="keep", continuous_update=False,
                                  readout_format=".2f", layout=layout, style=style),
            "decay": w.FloatSlider(value=decay, min=0.1, max=1.0, step=0.05, description="decay",
                                   continuous_update=False, layout=layout, style=style),
            "solver": w.Dropdown(options=list(SOLVERS), value=solver, description="solver", layout=layout, style=style),
            "shuffle": w.Dropdown(options=list(SHUFFLES), value=shuffle, description="shuffle", layout=layout,
                                  style=style),
            "shuffle_groups": w.Dropdown(options=[1, 2, 4, 8, 16], value=4, description="ShuffleNet g",
                                         layout=layout, style=style),
        }
        self.solve_button = w.Button(description="Solve", button_style="primary", icon="play",
                                     tooltip="learn P, Q with the chosen solver (the expensive step)")
        self.status = w.HTML()
        self.output = w.Output(layout=w.Layout(min_height="330px"))
        for key in ("source", "layer", "decay", "solver", "shuffle", "shuffle_groups"):
            self.controls[key].observe(self._on_setting, names="value")
        self.controls["source"].observe(self._on_source, names="value")
        self.controls["keep"].observe(self._on_keep, names="value")
        self.solve_button.on_click(lambda _: self.solve())
        c = self.controls
        columns = [w.VBox([c["source"], c["layer"], c["keep"]]),
                   w.VBox([c["decay"], c["solver"], c["shuffle"]]),
                   w.VBox([c["shuffle_groups"], self.solve_button, self.status])]
        self.widget = w.VBox([w.HBox(columns), self.output])
        self.state: dict | None = None
        self.solve()

    # ------------------------------------------------------------------ callbacks
    def matrix(self) -> np.ndarray:
        c = self.controls
        return np.asarray(self.sources[c["source"].value][c["layer"].value], dtype=np.float64)

    def _settings(self) -> dict:
        c = self.controls
        m = self.matrix()
        sg = min(int(c["shuffle_groups"].value), max_groups(*m.shape))
        return dict(keep=c["keep"].value, decay=c["decay"].value, solver=c["solver"].value,
                    shuffle=c["shuffle"].value, shuffle_groups=sg, name=f"{c['source'].value} / {c['layer'].value}")

    def solve(self) -> dict:
        """Recompute permutations for the current settings (the button) and redraw."""
        self.status.value = "<i>solving...</i>"
        self.state = explore_state(self.matrix(), **self._settings())
        extra = f" in {self.state['seconds']:.2f} s" if self.state["shuffle"] == "learned" else ""
        self.status.value = f"P, Q from <b>{self.state['shuffle']}</b>{extra}"
        self.redraw()
        return self.state

    def _on_source(self, change) -> None:
        layer = self.controls["layer"]
        layer.options = list(self.sources[change["new"]])
        layer.value = layer.options[0]

    def _on_setting(self, change) -> None:
        if self.controls["shuffle"].value == "learned":
            self.status.value = "<b style='color:#e4572e'>settings changed: press Solve</b>"
        else:
            self.solve()  # ShuffleNet / random / none cost nothing

    def _on_keep(self, change) -> None:
        if self.state is not None:
            self.state = regroup(self.state, change["new"])
            self.redraw()

    def redraw(self) -> None:
        from IPython.display import Image, clear_output, display

        png = figure_to_png(render(self.state, scale=self.scale, dpi=72))
        with self.output:
            clear_output(wait=True)
            display(Image(data=png, format="png"))
