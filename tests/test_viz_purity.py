"""``viz/`` draws only (DESIGN.md): no module under ``strucspars_viz/viz/`` imports a solver, cvxpy, the
sparsifier, the explorer state or a model builder. Checked on the source (AST), imports inside functions
included, relative imports resolved."""
import ast
from pathlib import Path

import pytest

VIZ = Path(__file__).resolve().parents[1] / "strucspars_viz" / "viz"

#: whole modules a figure function must not import
FORBIDDEN_MODULES = (
    "cvxpy",
    "ot",
    "scipy.optimize",
    "torchvision",
    "strucspars_viz.birkhoff",
    "strucspars_viz.models",
    "strucspars_viz.sparsifier",
    "strucspars_viz.export",
    "strucspars_viz.explore",
    "strucspars_viz.explorer",
    "strucspars_viz.training",
    "strucspars_viz.designs",
)
#: names that compute the method (solvers, searches, model builders), from whatever module
FORBIDDEN_NAMES = {
    "learn_permutations", "solve_assignment", "solve_transport", "birkhoff_lp", "lp_plans", "spectral_order",
    "fixed_shuffle", "planted_matrix", "build_model", "StructuredSparsifier", "compress", "sparsify_to_target",
    "explore_state", "explorer_sources", "regroup",
}


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")[: -node.level]
    return ".".join(base + ([node.module] if node.module else []))


def violations(path: Path) -> list[str]:
    module = "strucspars_viz.viz." + path.stem if path.stem != "__init__" else "strucspars_viz.viz.__init__"
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []

    def bad_module(name: str) -> bool:
        return any(name == m or name.startswith(m + ".") for m in FORBIDDEN_MODULES)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [f"line {node.lineno}: import {a.name}" for a in node.names if bad_module(a.name)]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, node)
            names = [a.name for a in node.names]
            if bad_module(target):
                found.append(f"line {node.lineno}: from {target} import {', '.join(names)}")
            else:
                found += [f"line {node.lineno}: from {target} import {n}" for n in names
                          if n in FORBIDDEN_NAMES or bad_module(f"{target}.{n}")]
    return found


MODULES = sorted(VIZ.glob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=[p.name for p in MODULES])
def test_viz_module_draws_only(path):
    assert violations(path) == [], f"{path.name} computes the method"


def test_the_check_catches_the_old_explorer_and_birkhoff_figure(tmp_path):
    """The checker itself: the pre-issue-8 viz/explorer.py and viz/birkhoff.py fail it."""
    old_explorer = tmp_path / "explorer.py"
    old_explorer.write_text(
        "from ..hierarchy import block_mask\n"
        "from ..permutation import learn_permutations, objective\n"
        "def explorer_sources():\n"
        "    from ..models import build_model\n"
        "    from ..sparsifier import StructuredSparsifier\n")
    old_birkhoff = tmp_path / "birkhoff.py"
    old_birkhoff.write_text("def birkhoff3_figure():\n    from ..birkhoff import birkhoff_lp\n")
    assert len(violations(old_explorer)) == 3
    assert violations(old_birkhoff) == ["line 2: from strucspars_viz.birkhoff import birkhoff_lp"]
    fine = tmp_path / "fine.py"
    fine.write_text("from ..hierarchy import kept_fractions\nfrom ..permutation import objective, HistoryStep\n")
    assert violations(fine) == []
