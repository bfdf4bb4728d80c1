"""The teaching notebooks are stored clean (executed in CI by ``pytest --nbmake notebooks/`` in quick mode)."""
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
#: every notebook in notebooks/ (the student copies in notebooks/student/ are generated and checked elsewhere)
ALL = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def test_notebooks_exist():
    assert len(ALL) >= 6, ALL


@pytest.mark.parametrize("name", ALL)
def test_notebook_is_stored_stripped_and_valid(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"] == KERNELSPEC
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code), "outputs must be stripped"
    source = "\n".join(c.source for c in code)
    assert "strucspars_viz" in source
    assert "plt.show()" not in source
    # thin notebooks: prose explains, the package computes
    assert sum(c.cell_type == "markdown" for c in nb.cells) >= 3


@pytest.mark.parametrize("name", [n for n in ALL if "explorer" not in n])
def test_heavy_notebooks_honour_quick_mode(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    assert "quick_mode()" in "\n".join(c.source for c in nb.cells if c.cell_type == "code")


_HIGHS_SOLVE = """
import numpy as np, cvxpy as cp
{pre}
c = np.random.default_rng(0).uniform(size=(4, 4))
x = cp.Variable((4, 4), nonneg=True)
cp.Problem(cp.Minimize(cp.sum(cp.multiply(c, x))), [cp.sum(x, 0) == 1, cp.sum(x, 1) == 1]).solve(solver=cp.HIGHS)
print("solved")
"""


@pytest.mark.parametrize("silenced", [False, True])
def test_notebook_style_highs_solve_prints_no_banner(silenced):
    """Notebook 02's solves print nothing once ``silence_highs_banner`` ran (the banner is once per process,
    hence a fresh interpreter; the unsilenced run shows the check can fail)."""
    import subprocess
    import sys

    pytest.importorskip("highspy")
    pre = "from strucspars_viz.solver_output import silence_highs_banner; silence_highs_banner()" if silenced else ""
    out = subprocess.run([sys.executable, "-c", _HIGHS_SOLVE.format(pre=pre)], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip().endswith("solved")
    assert ("HiGHS" in out) is (not silenced), out


@pytest.mark.parametrize("name", ALL)
def test_notebook_states_its_tier_and_budgets(name):
    """Tier line at the top and ``metadata["strucspars"]`` as scripts/run_notebooks.py reads it."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    meta = nb.metadata.get("strucspars")
    assert isinstance(meta, dict), f"{name}: no metadata['strucspars']"
    assert set(meta) == {"tier", "budget_quick_s", "budget_full_s", "full_measured_s"}, meta
    assert meta["tier"] in ("cpu", "gpu")
    assert isinstance(meta["budget_quick_s"], (int, float)) and meta["budget_quick_s"] > 0
    for key in ("budget_full_s", "full_measured_s"):
        assert meta[key] is None or meta[key] > 0
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith(f"**Tier: {meta['tier'].upper()}**")
    assert "SPEC §" not in "\n".join(c.source for c in nb.cells), f"{name} cites SPEC sections not in the repository"
