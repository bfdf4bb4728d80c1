"""Figures of the related designs: built from arrays, no pyplot leaks, drawing-only imports."""
import ast
from pathlib import Path

import numpy as np
import pytest
from matplotlib import pyplot as plt
from matplotlib.figure import Figure

from strucspars_viz import designs as D
from strucspars_viz.viz import designs as V


def test_product_and_path_count_figures():
    before = plt.get_fignums()
    block = D.IGCV2Block(8, (2, 2, 2))
    stages = D.stage_matrices(block)
    fig = V.plot_product(stages, ("paths", D.path_counts(block)))
    assert isinstance(fig, Figure) and len(fig.axes) == len(stages) + 1
    assert [a.get_title() for a in fig.axes[:-1]] == [n for n, _ in stages][::-1]  # matrix order A_L ... A_1
    fig = V.plot_path_counts(D.path_counts(block))
    assert "all ones: complementary" in fig.axes[0].get_title()
    block.body.p2.set_permutation(np.arange(8))
    counts = D.path_counts(block)
    fig = V.plot_path_counts(counts, note=str(D.find_violation(counts)))
    assert "need exactly 1" in fig.axes[0].get_title()
    assert plt.get_fignums() == before


def test_effective_connectivity_balance_and_ssc_figures():
    block = D.IGCV2Block(16, (4, 4))
    learned = np.random.default_rng(0).random((16, 16))
    fig = V.plot_effective_connectivity(D.path_counts(block), D.effective_norm_matrix(block), learned, learned_groups=4)
    assert any(c.get_gid() == "block-grid" and len(c.get_segments()) == 16 for c in fig.axes[2].collections)
    curve = D.balance_curve(64)
    fig = V.plot_balance_curve(curve, measured={2: 1600})
    line = fig.axes[0].lines[0]
    np.testing.assert_allclose(line.get_ydata(), curve["params"])
    pats = {"general": D.ssc_pattern(8, 8, 3, 4, 1, 2), "depthwise": D.StructuredSparseConv2d.depthwise(8).pattern()}
    fig = V.plot_ssc_patterns(pats)
    np.testing.assert_array_equal(fig.axes[0].images[0].get_array(), pats["general"])
    with pytest.raises(ValueError, match="nothing to plot"):
        V.plot_ssc_patterns({})


def test_viz_designs_imports_drawing_only():
    tree = ast.parse(Path(V.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(("." * node.level) + (node.module or ""))
    forbidden = ("cvxpy", "torch", "birkhoff", "sparsifier", "models", "designs", "permutation", "training")
    assert not [m for m in imported if any(f in m for f in forbidden)], imported
