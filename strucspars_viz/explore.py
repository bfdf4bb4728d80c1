"""The explorer's state: permutations, grouping and masks for one matrix and one setting (not viz).

Two pure functions that the ipywidgets app (:mod:`strucspars_viz.explorer`), notebooks and tests call:

* :func:`explore_state` ``(S, keep, decay, solver, shuffle, ...) -> dict``: the permutations (the
  expensive part when ``shuffle="learned"``), then :func:`regroup`;
* :func:`regroup` ``(state, keep) -> dict``: the cheap part, the grouping criterion at a new ``keep``
  (``f(G)`` for all ``G``, the chosen ``G``, the masks) without touching ``P, Q``.

The figure is :func:`strucspars_viz.viz.explorer.render` ``(state)``. Shuffles (``shuffle=``, the
set :data:`~strucspars_viz.permutation.SHUFFLES` of SPEC §7): ``"learned"`` is
:func:`~strucspars_viz.learn_permutations` with ``method=solver``; the fixed ones come from
:func:`~strucspars_viz.permutation.fixed_shuffle`.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Mapping

import numpy as np

from .birkhoff import METHODS
from .hierarchy import block_mask, groups_for, kept_fractions
from .norms import as_matrix
from .permutation import SHUFFLES, default_shuffle_groups, fixed_shuffle, learn_permutations, objective
from .sparsifier import LayerState

__all__ = ["SHUFFLES", "SOLVERS", "explore_state", "explorer_sources", "regroup", "shuffle_permutations", "shufflenet_hidden"]

SOLVERS = METHODS


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
    """``(row_perm, col_perm, history)`` for a shuffle of SPEC §7; history is ``None`` except for ``"learned"``."""
    m = as_matrix(s)
    if shuffle == "learned":
        if solver not in SOLVERS:
            raise ValueError(f"unknown solver {solver!r}; choose from {SOLVERS}")
        return learn_permutations(m, iters=iters, method=solver, decay=decay, seed=seed)
    p, q = fixed_shuffle(shuffle, *m.shape, shuffle_groups, seed)
    return p, q, None


def regroup(state: Mapping, keep: float) -> dict:
    """The grouping criterion at ``keep`` for fixed ``P, Q`` (cheap: no solve). Returns a new dict.

    Adds ``keep``, ``S_perm = S[P][:, Q]``, ``fractions = {G: f(G)}``, ``groups`` (largest ``G`` with
    ``f(G) >= keep``), ``kept_fraction = f(groups)``, ``mask = U_G`` (learned order) and
    ``weight_mask = U_G[P_inv][:, Q_inv]`` (the weight's own order: what masking zeroes, computed by
    :meth:`LayerState.mask_array`, the sparsifier's own rule).
    """
    m = state["S"]
    sp = m[state["row_perm"]][:, state["col_perm"]]
    fractions = kept_fractions(sp)
    g = groups_for(sp, keep)
    layer = LayerState(str(state.get("name", "")), m.shape[0], m.shape[1], 1,
                       np.asarray(state["row_perm"]), np.asarray(state["col_perm"]), g)
    return {**state, "keep": float(keep), "S_perm": sp, "fractions": fractions, "groups": g,
            "kept_fraction": fractions[g], "mask": block_mask(*m.shape, g), "weight_mask": layer.mask_array()}


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
    cout, cin = m.shape
    if shuffle == "shufflenet" and shuffle_groups is None:
        shuffle_groups = default_shuffle_groups(cout, cin)
    t0 = time.perf_counter()
    p, q, hist = shuffle_permutations(m, shuffle, solver=solver, decay=decay, iters=iters,
                                      shuffle_groups=shuffle_groups, seed=seed)
    secs = time.perf_counter() - t0
    state = dict(
        S=m, name=name, shuffle=shuffle, solver=solver, decay=float(decay), iters=int(iters), seed=int(seed),
        shuffle_groups=int(shuffle_groups) if shuffle == "shufflenet" else None,
        row_perm=np.asarray(p, np.int64), col_perm=np.asarray(q, np.int64), history=hist,
        objective=objective(m, p, q, decay), objective_input=objective(m, np.arange(cout), np.arange(cin), decay),
        seconds=secs,
    )
    return regroup(state, keep)


def shufflenet_hidden(cout: int, cin: int, groups: int, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """A block-diagonal matrix whose blocks a ShuffleNet shuffle hides: ``S`` with
    ``S[P][:, Q] = S_planted`` for ``P, Q = fixed_shuffle("shufflenet", Cout, Cin, groups)``, so only
    the ShuffleNet view (and a learned one) show the blocks, unlike a random scramble."""
    from .permutation import inverse_permutation, planted_matrix

    s, row, col = planted_matrix(cout, cin, groups, noise, seed)
    blocks = s[inverse_permutation(row)][:, inverse_permutation(col)]  # undo the random scramble
    p, q = fixed_shuffle("shufflenet", cout, cin, groups)
    return blocks[inverse_permutation(p)][:, inverse_permutation(q)]


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
    from .permutation import planted_matrix

    sources: dict[str, dict[str, np.ndarray]] = {}
    if planted:
        sources["planted"] = {
            "64x64, 8 blocks, noise 0.03": planted_matrix(64, 64, 8, 0.03, seed)[0],
            "64x64, 4 blocks, noise 0.2": planted_matrix(64, 64, 4, 0.2, seed + 1)[0],
            "32x64, 4 blocks (non-square)": planted_matrix(32, 64, 4, 0.03, seed + 2)[0],
            "16x16, 4 blocks": planted_matrix(16, 16, 4, 0.02, seed + 3)[0],
            "64x64, 4 blocks behind a ShuffleNet shuffle": shufflenet_hidden(64, 64, 4, 0.03, seed + 4),
        }
    if demo_dir is not None:
        path = Path(demo_dir) / "norm_matrices.npz"
        if path.is_file():
            with np.load(path) as data:
                sources["resnet20 (demo-trained)"] = {k: data[k] for k in data.files}
    if models:
        import torch

        from .models import build_model
        from .sparsifier import StructuredSparsifier

        for name in models:
            torch.manual_seed(seed)
            sources[f"{name} (untrained)"] = StructuredSparsifier(build_model(name)).norm_matrices()
    return sources
