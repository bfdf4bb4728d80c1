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


@pytest.mark.parametrize("name", [n for n in ALL if not n.startswith("00_")])
def test_heavy_notebooks_honour_quick_mode(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    assert "quick_mode()" in "\n".join(c.source for c in nb.cells if c.cell_type == "code")
