"""The interactive explorer (ipywidgets): pick a matrix, ``keep``, ``decay``, solver and shuffle.

``Explorer(sources).widget`` is the box to display. Moving ``keep`` only regroups and redraws
(:func:`~strucspars_viz.explore.regroup`); a learned shuffle is (re)solved when **Solve** is pressed,
never on a slider move; the fixed shuffles (ShuffleNet / random / none) are recomputed at once.
State: :mod:`strucspars_viz.explore`; figure: :func:`strucspars_viz.viz.explorer.render`.

While a solve runs every control is disabled, and when it ends the settings it used are compared
with the controls: if they moved meanwhile (a message queued before the lock took effect), the
state is recomputed for a fixed shuffle, or the status asks for another Solve for a learned one.
So the figure never shows another setting than the controls.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from .explore import SHUFFLES, SOLVERS, explore_state, explorer_sources, regroup
from .hierarchy import max_groups
from .viz.explorer import render
from .viz.style import figure_to_png

__all__ = ["Explorer"]

_WARN = "<b style='color:#e4572e'>{}</b>"


class Explorer:
    """The ipywidgets front end; ``Explorer(sources).widget`` is the box to display.

    Attributes ``state`` (the current :func:`explore_state` dict), ``controls`` (name -> widget) and
    ``output`` (the figure area) are public so that notebooks and tests can drive it.
    """

    def __init__(self, sources: Mapping[str, Mapping[str, np.ndarray]] | None = None, *, keep: float = 0.9,
                 decay: float = 0.5, solver: str = "lsa", shuffle: str = "learned", scale: str = "linear",
                 dpi: float = 96) -> None:
        import ipywidgets as w

        self.sources = dict(sources) if sources is not None else explorer_sources()
        if not self.sources or not all(self.sources.values()):
            raise ValueError("Explorer needs at least one source, each with at least one matrix")
        self.scale, self.dpi = scale, dpi
        first = next(iter(self.sources))
        layout = w.Layout(width="330px")
        style = {"description_width": "115px"}  # fits "ShuffleNet g" at JupyterLab's 13 px font
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
        self.busy = False
        self._switching = False
        self._used: dict | None = None  # the settings self.state was computed with
        for key in ("layer", "decay", "solver", "shuffle", "shuffle_groups"):
            self.controls[key].observe(self._on_setting, names="value")
        self.controls["source"].observe(self._on_source, names="value")
        self.controls["keep"].observe(self._on_keep, names="value")
        self.solve_button.on_click(lambda _: self.solve())
        c = self.controls
        columns = [w.VBox([c["source"], c["layer"], c["keep"]]),
                   w.VBox([c["decay"], c["solver"], c["shuffle"]]),
                   w.VBox([c["shuffle_groups"], self.solve_button, self.status])]
        self.widget = w.VBox([w.HBox(columns, layout=w.Layout(flex_flow="row wrap")), self.output])
        self.state: dict | None = None
        self.solve()

    # ------------------------------------------------------------------ settings
    def matrix(self) -> np.ndarray:
        c = self.controls
        return np.asarray(self.sources[c["source"].value][c["layer"].value], dtype=np.float64)

    def _settings(self) -> dict:
        c = self.controls
        m = self.matrix()
        sg = min(int(c["shuffle_groups"].value), max_groups(*m.shape))
        return dict(decay=c["decay"].value, solver=c["solver"].value, shuffle=c["shuffle"].value,
                    shuffle_groups=sg, name=f"{c['source'].value} / {c['layer'].value}")

    def _lock(self, locked: bool) -> None:
        self.busy = locked
        for control in (*self.controls.values(), self.solve_button):
            control.disabled = locked

    # ------------------------------------------------------------------ actions
    def solve(self) -> dict:
        """Recompute permutations for the current settings (the button) and redraw."""
        if self.busy:
            return self.state
        self.status.value = "<i>solving...</i>"
        self._lock(True)
        try:
            settings = self._settings()
            self.state = explore_state(self.matrix(), keep=self.controls["keep"].value, **settings)
            self._used = settings
        except Exception as err:
            self.status.value = _WARN.format(f"error: {err}")
            raise
        finally:
            self._lock(False)
        extra = f" in {self.state['seconds']:.2f} s" if self.state["shuffle"] == "learned" else ""
        self.status.value = f"P, Q from <b>{self.state['shuffle']}</b>{extra}"
        self.redraw()
        self._recheck()
        return self.state

    def _recheck(self) -> None:
        """After a solve: if a control moved while it ran, bring the state up to date (or say so)."""
        if self._used == self._settings():
            if self.state is not None and self.state["keep"] != self.controls["keep"].value:
                self._on_keep({"new": self.controls["keep"].value})
            return
        self._changed()

    def _changed(self) -> None:
        if self.controls["shuffle"].value == "learned":
            self.status.value = _WARN.format("settings changed: press Solve")
        else:
            self.solve()  # ShuffleNet / random / none cost nothing

    # ------------------------------------------------------------------ callbacks
    def _on_source(self, change) -> None:
        # The layer list must follow the source before anything reads the matrix: setting the
        # options fires a layer change, which is ignored here and handled once below.
        layer = self.controls["layer"]
        self._switching = True
        try:
            layer.options = list(self.sources[change["new"]])
            layer.value = layer.options[0]
        finally:
            self._switching = False
        if not self.busy:
            self._changed()

    def _on_setting(self, change) -> None:
        if self._switching or self.busy:
            return  # handled by _on_source, or by _recheck when the running solve ends
        self._changed()

    def _on_keep(self, change) -> None:
        if self.state is not None and not self.busy:
            self.state = regroup(self.state, change["new"])
            self.redraw()

    def redraw(self) -> None:
        from IPython.display import Image, clear_output, display

        png = figure_to_png(render(self.state, scale=self.scale, dpi=self.dpi))
        with self.output:
            clear_output(wait=True)
            display(Image(data=png, format="png"))
