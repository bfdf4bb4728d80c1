"""Static figures: heat maps with U_G blocks, the B_3 polytope, model-level views; no global state."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (only to check that no figures are registered)
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from strucspars_viz import birkhoff_lp, groups_for, kept_fractions, learn_permutations, objective  # noqa: E402
from strucspars_viz.counting import ModelCost  # noqa: E402
from strucspars_viz import planted_matrix  # noqa: E402
from strucspars_viz.viz import (  # noqa: E402
    TIE_COST,
    birkhoff3_vertices,
    block_segments,
    display_matrix,
    figure_to_array,
    plot_birkhoff3,
    plot_layer_groups,
    plot_model_costs,
    plot_norm_matrix,
    plot_permutation_pair,
    project_birkhoff3,
)


@pytest.fixture(scope="module")
def planted():
    s, _, _ = planted_matrix(32, 32, 4, noise=0.02, seed=3)
    p, q, hist = learn_permutations(s)
    return s, p, q, hist


def _image(ax) -> np.ndarray:
    return np.asarray(ax.get_images()[0].get_array())


def _grid(ax) -> np.ndarray:
    (coll,) = [c for c in ax.collections if c.get_gid() == "block-grid"]
    return np.asarray(coll.get_segments())


def test_display_matrix_is_exact_at_integer_positions():
    rng = np.random.default_rng(0)
    s = rng.uniform(size=(8, 12))
    p, q = rng.permutation(8), rng.permutation(12)
    # one pixel per channel: exactly S[P][:, Q]
    np.testing.assert_array_equal(display_matrix(s, np.argsort(p), np.argsort(q), max_display=None), s[p][:, q])
    # integer upsampling repeats every entry
    up = display_matrix(s, np.argsort(p), np.argsort(q), max_display=48)
    np.testing.assert_array_equal(up, np.repeat(np.repeat(s[p][:, q], 6, 0), 4, 1))
    # downsampling is an area average (2x2 blocks here)
    down = display_matrix(s, None, None, max_display=4)
    assert down.shape == (4, 4)
    np.testing.assert_allclose(down[0, 0], s[:2, :3].mean())


def test_block_segments_coordinates():
    segs = block_segments(8, 16, 4)
    assert segs.shape == (16, 2, 2)
    # block r is [r*Cin/G, (r+1)*Cin/G] x [r*Cout/G, (r+1)*Cout/G]
    corners = {(x, y) for seg in segs for (x, y) in seg}
    assert corners == {(4.0 * r, 2.0 * r) for r in range(5)} | {(4.0 * (r + 1), 2.0 * r) for r in range(4)} | {
        (4.0 * r, 2.0 * (r + 1)) for r in range(4)}
    assert block_segments(8, 8, 1).shape == (0, 2, 2)


def test_norm_matrix_heatmap(planted):
    s, p, q, _ = planted
    before = plt.get_fignums()
    fig = plot_norm_matrix(s, p, q, keep=0.9)
    assert isinstance(fig, Figure)
    sp = s[p][:, q]
    g = groups_for(sp, 0.9)
    ax = fig.axes[0]
    title = ax.get_title()
    assert f"G = {g}" in title and f"f(G) = {kept_fractions(sp)[g]:.3f}" in title
    assert f"J = {objective(s, p, q):.4g}" in title
    # drawn image = S' (upsampled 4x to 128 px), grid = the G diagonal blocks in channel units
    np.testing.assert_array_equal(_image(ax), np.repeat(np.repeat(sp, 4, 0), 4, 1))
    np.testing.assert_array_equal(_grid(ax), block_segments(32, 32, g))
    assert len(fig.axes) == 2  # matrix + colour bar
    assert plt.get_fignums() == before


def test_norm_matrix_log_and_given_groups(planted):
    s, p, q, _ = planted
    fig = plot_norm_matrix(s, p, q, groups=2, scale="log", max_display=None, colorbar=False)
    ax = fig.axes[0]
    assert "G = 2" in ax.get_title() and len(fig.axes) == 1
    assert ax.get_images()[0].norm.__class__.__name__ == "LogNorm"
    assert len(_grid(ax)) == 8
    with pytest.raises(ValueError, match="colour scale"):
        plot_norm_matrix(s, scale="cubic")


def test_permutation_pair_same_groups_both_panels(planted):
    s, p, q, _ = planted
    fig = plot_permutation_pair(s, p, q, keep=0.9)
    ax0, ax1 = fig.axes[:2]
    g = groups_for(s[p][:, q], 0.9)
    assert g == 4
    assert f"G = {g}" in ax0.get_title() and f"G = {g}" in ax1.get_title()
    f0 = kept_fractions(s)[g]
    assert f"f(G) = {f0:.3f}" in ax0.get_title()
    np.testing.assert_array_equal(_image(ax0), np.repeat(np.repeat(s, 4, 0), 4, 1))
    np.testing.assert_array_equal(_image(ax1), np.repeat(np.repeat(s[p][:, q], 4, 0), 4, 1))


def test_figures_are_deterministic_and_leave_no_state(planted):
    s, p, q, _ = planted
    before = plt.get_fignums()
    a = figure_to_array(plot_permutation_pair(s, p, q))
    b = figure_to_array(plot_permutation_pair(s, p, q))
    np.testing.assert_array_equal(a, b)
    assert plt.get_fignums() == before


def test_birkhoff3_projection_is_faithful_for_the_objective():
    perms, mats = birkhoff3_vertices()
    assert len(perms) == 6 and (mats.sum(1) == 1).all() and (mats.sum(2) == 1).all()
    cost = np.array([[4.0, 1.0, 3.0], [2.0, 0.0, 5.0], [3.0, 2.0, 2.0]])
    xy = project_birkhoff3(mats, cost)
    # x coordinate is the objective <C, X>, so level sets are vertical lines
    np.testing.assert_allclose(xy[:, 0], np.einsum("kij,ij->k", mats, cost))
    # linear: the barycentre of the vertices projects to the barycentre of the projections
    np.testing.assert_allclose(project_birkhoff3(mats.mean(0), cost)[0], xy.mean(0), atol=1e-12)


def test_birkhoff3_tie_highs_vertex_vs_clarabel_barycentre():
    highs = birkhoff_lp(TIE_COST, solver="HIGHS").plan
    clarabel = birkhoff_lp(TIE_COST, solver="CLARABEL").plan
    _, mats = birkhoff3_vertices()
    xy = project_birkhoff3(mats, TIE_COST)
    opt = np.flatnonzero(np.isclose(xy[:, 0], xy[:, 0].min()))
    assert len(opt) == 2
    # the optimal face is spread out (not collapsed to a point) and Clarabel sits at its midpoint
    assert abs(xy[opt[0], 1] - xy[opt[1], 1]) > 0.1
    np.testing.assert_allclose(project_birkhoff3(clarabel, TIE_COST)[0], xy[opt].mean(0), atol=1e-4)
    h = project_birkhoff3(highs, TIE_COST)[0]
    assert min(np.linalg.norm(h - xy[k]) for k in opt) < 1e-6
    fig = plot_birkhoff3(TIE_COST, {"HiGHS": highs, "Clarabel": clarabel})
    ax = fig.axes[0]
    assert "tie" in ax.get_title() and "= 0" in ax.get_title()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["HiGHS", "Clarabel"]


def test_birkhoff3_figure_draws_given_plans_without_solving(monkeypatch):
    from strucspars_viz import birkhoff as bk
    from strucspars_viz.viz import DEFAULT_COST, birkhoff3_figure

    panels = [(c, bk.lp_plans(c), head) for c, head in ((DEFAULT_COST, "generic"), (TIE_COST, "tied"))]
    monkeypatch.setattr(bk, "birkhoff_lp", lambda *a, **k: pytest.fail("the figure must not solve"))
    fig = birkhoff3_figure(panels)
    assert [ax.get_title().splitlines()[0] for ax in fig.axes] == ["generic", "tied"]
    assert [t.get_text() for t in fig.axes[1].get_legend().get_texts()] == list(bk.LP_SOLVERS)
    with pytest.raises(ValueError, match="at least one"):
        birkhoff3_figure([])


def test_layer_groups_and_costs():
    groups = {"layer1.0.conv1": 2, "layer2.0.conv1": 4, "layer3.0.downsample.0": 1}
    kept = {"layer1.0.conv1": 0.95, "layer2.0.conv1": 0.91, "layer3.0.downsample.0": 1.0}
    fig = plot_layer_groups(groups, kept, {n: 16 for n in groups}, keep=0.9)
    assert len(fig.axes) == 2
    bars = [r for r in fig.axes[0].patches if r.get_facecolor()[3] > 0]
    assert [round(r.get_height()) for r in bars] == [2, 4, 1]
    assert [t.get_text() for t in fig.axes[1].get_xticklabels()] == ["l1.0.c1", "l2.0.c1", "l3.0.ds"]
    fig = plot_model_costs(ModelCost(272474, 40813184), ModelCost(136000, 20000000))
    assert [ax.get_title() for ax in fig.axes] == ["parameters (M)", "MACs (M)"]
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert any("2.00x fewer" in t for t in texts)


def test_outlines_only_on_permuted_matrices(planted):
    """Blocks are outlined on S[P][:, Q], never on S in its own order (they would suggest absent blocks)."""
    from strucspars_viz.viz.matrices import draw_matrix
    from strucspars_viz.viz.style import new_figure

    s, p, q, _ = planted
    fig = plot_permutation_pair(s, p, q, keep=0.9)
    assert not [c for c in fig.axes[0].collections if c.get_gid() == "block-grid"]
    assert len(_grid(fig.axes[1])) == 4 * groups_for(s[p][:, q], 0.9)
    ax = new_figure().add_subplot()
    _, grid = draw_matrix(ax, s, groups=4)
    assert grid is None and not ax.collections
    _, grid = draw_matrix(ax, s[p][:, q], groups=4, outline=True)
    np.testing.assert_array_equal(grid.get_segments(), block_segments(32, 32, 4))


def test_layer_groups_chart_goes_horizontal_for_deep_models():
    names = [f"layer{i // 10 + 1}.{i % 10}.conv1" for i in range(52)]
    groups = {n: 2 ** (i % 4) for i, n in enumerate(names)}
    fig = plot_layer_groups(groups, {n: 0.95 for n in names}, {n: 16 for n in names}, keep=0.9)
    w, h = fig.get_size_inches()
    assert w * fig.dpi <= 993  # legible at a notebook's display width, not shrunk from 2083 px
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels[0] == "l1.0.c1" and len(labels) == 52
    bars = [r for r in fig.axes[0].patches if r.get_facecolor()[3] > 0]
    assert [round(r.get_width()) for r in bars] == [groups[n] for n in names]
    with pytest.raises(ValueError, match="orientation"):
        plot_layer_groups(groups, orientation="diagonal")


def test_matrix_grid_has_axes_and_colour_bars():
    from strucspars_viz.viz import plot_matrix_grid

    m = np.arange(12.0).reshape(3, 4)
    fig = plot_matrix_grid({"A": m, "B": m.T}, axis_labels={"A": ("slot a", "row i")})
    assert len(fig.axes) == 4  # two panels, two colour bars
    assert fig.axes[0].get_xlabel() == "row i" and fig.axes[0].get_ylabel() == "slot a"
    assert fig.axes[1].get_xlabel() == "column"
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["0", "1", "2", "3"]
    assert len(plot_matrix_grid({"A": m}, colorbar=False).axes) == 1
