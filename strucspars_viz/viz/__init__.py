"""Figures and animations of structured sparsification (pure functions: data in, Figure / FuncAnimation out).

Nothing here computes the method; it draws what :mod:`strucspars_viz` returns (norm matrices,
permutation histories, per-epoch logs, solver plans, model costs); ``tests/test_viz_purity.py``
checks that no module here imports a solver, cvxpy, the sparsifier or the model builders. The
explorer's state lives in :mod:`strucspars_viz.explore`, its widget app in :mod:`strucspars_viz.explorer`. Figures are created outside
pyplot's registry on an Agg canvas, so calling these functions never leaves figures behind and never
calls ``plt.show()``. In a notebook, a returned ``Figure`` displays itself as the last expression of a
cell (after ``%matplotlib inline``); an animation is shown with ``HTML(anim.to_jshtml())``.
"""
from . import explorer
from .training_animation import animate_training
from .animation import (
    MatrixAnimation,
    PermutationState,
    anim_to_gif_base64,
    animate_permutation,
    ease,
    frame_schedule,
    gif_bytes,
    permutation_states,
    save_gif,
)
from .birkhoff import (
    DEFAULT_COST,
    TIE_COST,
    birkhoff3_figure,
    birkhoff3_projection,
    birkhoff3_vertices,
    plot_birkhoff3,
    project_birkhoff3,
)
from .explorer import render
from .matrices import (
    block_segments,
    display_matrix,
    draw_matrix,
    plot_matrix_grid,
    plot_norm_matrix,
    plot_permutation_pair,
)
from .model import plot_layer_groups, plot_model_costs
from .style import color_norm, figure_to_array, figure_to_png, new_figure

__all__ = [
    "explorer",
    "render",
    "MatrixAnimation",
    "DEFAULT_COST",
    "TIE_COST",
    "PermutationState",
    "anim_to_gif_base64",
    "animate_permutation",
    "animate_training",
    "birkhoff3_figure",
    "birkhoff3_projection",
    "birkhoff3_vertices",
    "block_segments",
    "color_norm",
    "display_matrix",
    "draw_matrix",
    "ease",
    "figure_to_array",
    "figure_to_png",
    "frame_schedule",
    "gif_bytes",
    "new_figure",
    "permutation_states",
    "plot_birkhoff3",
    "plot_layer_groups",
    "plot_matrix_grid",
    "plot_model_costs",
    "plot_norm_matrix",
    "plot_permutation_pair",
    "project_birkhoff3",
    "save_gif",
]
