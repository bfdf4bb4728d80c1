"""Every notebook runs headless in quick mode within its stated time budget (replaces ``pytest --nbmake``).

``test_notebook_runs_within_budget[NAME]`` (marker ``notebook``) executes one notebook through
``scripts/run_notebooks.py``'s ``execute_notebook`` -- the same function ``make site`` uses -- writes the
executed copy to ``build/executed/`` (the site test and ``make site`` reuse it, so each notebook runs once
per ``make test``) and records its wall time in ``build/executed/timings.json``.
The other tests check the budget logic on tiny synthetic notebooks.
"""
from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "run_notebooks.py"

_spec = importlib.util.spec_from_file_location("run_notebooks", SCRIPT)
rn = importlib.util.module_from_spec(_spec)
sys.modules.setdefault(_spec.name, rn)  # dataclasses look their module up there
_spec.loader.exec_module(rn)

#: where the executed copies go; STRUCSPARS_EXECUTED overrides (the site test reads the same variable)
EXECUTED = Path(os.environ.get("STRUCSPARS_EXECUTED", rn.DEFAULT_OUT))
NOTEBOOKS = sorted(p.name for p in rn.NOTEBOOKS.glob("*.ipynb"))
GOOD_META = {"tier": "cpu", "budget_quick_s": 120, "budget_full_s": None, "full_measured_s": None}


@pytest.mark.notebook
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_within_budget(name):
    result = rn.execute_notebook(rn.NOTEBOOKS / name, EXECUTED)
    rn.record_timings(EXECUTED, [result])
    assert result.ok, result.message


# --- the budget logic, on synthetic notebooks ------------------------------------------------------


def _nb(*sources: str, meta: dict | None = GOOD_META) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    if meta is not None:
        nb.metadata["strucspars"] = dict(meta)
    nb.cells = [nbformat.v4.new_markdown_cell("# t")] + [nbformat.v4.new_code_cell(s) for s in sources]
    return nb


def test_missing_budget_says_what_to_add():
    with pytest.raises(rn.BudgetMetadataError) as err:
        rn.read_budget(_nb(meta=None), "03_x.ipynb")
    msg = str(err.value)
    assert "03_x.ipynb" in msg and '"strucspars"' in msg and "budget_quick_s" in msg and "tier" in msg


@pytest.mark.parametrize("meta, key", [
    ({"tier": "tpu", "budget_quick_s": 5}, "tier"),
    ({"tier": "cpu"}, "budget_quick_s"),
    ({"tier": "cpu", "budget_quick_s": 0}, "budget_quick_s"),
    ({"tier": "cpu", "budget_quick_s": True}, "budget_quick_s"),
    ({"tier": "cpu", "budget_quick_s": "60"}, "budget_quick_s"),
    ({"tier": "gpu", "budget_quick_s": 5, "budget_full_s": float("nan")}, "budget_full_s"),
    ({"tier": "cpu", "budget_quick_s": 5, "budget_ful_s": 9}, "budget_ful_s"),
])
def test_malformed_budget_names_the_key(meta, key):
    with pytest.raises(rn.BudgetMetadataError, match=key) as err:
        rn.read_budget(_nb(meta=meta), "05_y.ipynb")
    assert "05_y.ipynb" in str(err.value)


def test_budget_read_and_compared():
    b = rn.read_budget(_nb(meta={"tier": "gpu", "budget_quick_s": 30, "budget_full_s": 600, "full_measured_s": 512.5}), "n")
    assert b == rn.Budget("gpu", 30.0, 600.0, 512.5)
    assert rn.budget_failure("n", b, 29.9, full=False) is None
    msg = rn.budget_failure("07_t.ipynb", b, 31.24, full=False)
    assert "07_t.ipynb" in msg and "31.2 s" in msg and "30 s" in msg and "quick" in msg
    assert "600 s" in rn.budget_failure("n", b, 601, full=True)
    no_full = rn.read_budget(_nb(meta={"tier": "cpu", "budget_quick_s": 30}), "n")
    assert rn.budget_failure("n", no_full, 1e6, full=True) is None  # no full budget stated: nothing to break


def test_select_notebooks_by_prefix(tmp_path):
    for n in ("01_a.ipynb", "02_b.ipynb", "10_c.ipynb"):
        nbformat.write(_nb(), tmp_path / n)
    assert [p.name for p in rn.select_notebooks(tmp_path, ["02", "01_a.ipynb"])] == ["01_a.ipynb", "02_b.ipynb"]
    assert len(rn.select_notebooks(tmp_path)) == 3
    with pytest.raises(ValueError, match="03.*01_a.ipynb, 02_b.ipynb, 10_c.ipynb"):
        rn.select_notebooks(tmp_path, ["03"])


def test_source_digest_ignores_outputs_not_code(tmp_path):
    a, b, c = tmp_path / "a.ipynb", tmp_path / "b.ipynb", tmp_path / "c.ipynb"
    nbformat.write(_nb("x = 1"), a)
    ran = _nb("x = 1")
    ran.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
    nbformat.write(ran, b)
    nbformat.write(_nb("x = 2"), c)
    assert rn.source_digest(a) == rn.source_digest(b) != rn.source_digest(c)


def test_cli_runs_times_and_fails_each_kind(tmp_path, capsys):
    """One real run over four tiny notebooks: ok, a raising cell, no budget, over budget."""
    src, out = tmp_path / "nb", tmp_path / "out"
    src.mkdir()
    (src / "data.txt").write_text("found")
    nbformat.write(_nb("import os, matplotlib\n"
                       "assert os.environ['STRUCSPARS_QUICK'] == '1', os.environ.get('STRUCSPARS_QUICK')\n"
                       "assert matplotlib.get_backend().lower() == 'agg', matplotlib.get_backend()\n"
                       "print(open('data.txt').read())  # the kernel runs in the notebook's folder"),
                   src / "01_ok.ipynb")
    nbformat.write(_nb("x = 1", "def f():\n    raise KeyError('layer3.0.conv2')\nf()", "print('never')"),
                   src / "02_raises.ipynb")
    nbformat.write(_nb("x = 1", meta=None), src / "03_nobudget.ipynb")
    nbformat.write(_nb("import time; time.sleep(0.3)", meta={"tier": "cpu", "budget_quick_s": 0.01}),
                   src / "04_slow.ipynb")

    assert rn.main(["--notebooks", str(src), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    timings = json.loads((out / "timings.json").read_text())["notebooks"]
    status = {name: t["quick"]["status"] for name, t in timings.items()}
    assert status == {"01_ok.ipynb": "ok", "02_raises.ipynb": "error", "03_nobudget.ipynb": "no_budget",
                      "04_slow.ipynb": "over_budget"}
    assert all(t["quick"]["seconds"] > 0 for t in timings.values())
    # the failing cell's source and traceback, as nbmake shows them
    assert "raise KeyError('layer3.0.conv2')" in err and "KeyError: 'layer3.0.conv2'" in err
    assert '"strucspars": {"tier"' in err and "this run took" in err  # what to add, and a time to start from
    assert "04_slow.ipynb: took" in err and "budget of 0.01 s" in err
    assert "01_ok" not in err
    ok = nbformat.read(out / "01_ok.ipynb", as_version=4)
    assert ok.cells[1].outputs[0]["text"].strip() == "found"
    assert ok.metadata["strucspars_run"]["source_sha256"] == rn.source_digest(src / "01_ok.ipynb")
    raised = nbformat.read(out / "02_raises.ipynb", as_version=4)
    assert raised.cells[3].outputs == []  # stopped at the error, as nbmake does

    # --only reruns one and merges into timings.json; a name that matches nothing is a usage error
    assert rn.main(["--notebooks", str(src), "--out", str(out), "--only", "01"]) == 0
    assert set(json.loads((out / "timings.json").read_text())["notebooks"]) == set(status)
    assert rn.main(["--notebooks", str(src), "--out", str(out), "--only", "99"]) == 2
    assert rn.main(["--notebooks", str(src), "--write-measured"]) == 2  # needs --full


def test_write_measured_keeps_the_rest(tmp_path):
    path = tmp_path / "n.ipynb"
    nbformat.write(_nb("x = 1", meta={"tier": "gpu", "budget_quick_s": 9, "budget_full_s": 900}), path)
    rn.write_measured(path, 123.456)
    meta = nbformat.read(path, as_version=4).metadata["strucspars"]
    assert meta == {"tier": "gpu", "budget_quick_s": 9, "budget_full_s": 900, "full_measured_s": 123.5}
