"""Student notebooks built from the solution notebooks; every stored solution passes its check."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "build_student_notebooks.py"

_spec = importlib.util.spec_from_file_location("build_student_notebooks", SCRIPT)
bsn = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = bsn  # dataclasses look their module up there
_spec.loader.exec_module(bsn)

SOLUTION = '''def inverse_permutation(perm):
    inv = np.empty(len(perm), dtype=np.int64)
    inv[np.asarray(perm)] = np.arange(len(perm))  # SOLUTION-MARKER
    return inv'''


def _code(source: str, tag: str | None = None, outputs: bool = False):
    cell = nbformat.v4.new_code_cell(source)
    if tag:
        cell.metadata["tags"] = [tag]
    if outputs:
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="old output\n")]
        cell.execution_count = 3
    return cell


def _notebook(solution: str = SOLUTION, stub: str | None = None):
    stub = stub or 'def inverse_permutation(perm):\n    raise NotImplementedError("your code here")'
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# A tiny notebook"),
        _code("%matplotlib inline\nimport numpy as np", outputs=True),
        _code("print('the notebook body')", outputs=True),
        nbformat.v4.new_markdown_cell("## Exercises\n**1.** Write `inverse_permutation(perm)`."),
        _code("from strucspars_viz import exercises as ex", "exercise-setup"),
        _code(stub, "exercise-stub"),
        _code(solution, "exercise-solution", outputs=True),
        _code("ex.check_inverse_permutation(inverse_permutation)", "exercise-check", outputs=True),
    ]
    return nb


def _write(folder: Path, nb, name: str = "01_tiny.ipynb") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / name)
    return folder / name


def test_student_version_has_stubs_and_checks_but_no_solution(tmp_path):
    src = tmp_path / "nbs"
    _write(src, _notebook())
    nbformat.write(nbformat.v4.new_notebook(), src / "02_no_exercises.ipynb")
    written = bsn.build(src, src / "student")
    assert [p.name for p in written] == ["01_tiny.ipynb"]  # only notebooks with exercises
    student = nbformat.read(src / "student" / "01_tiny.ipynb", as_version=4)
    nbformat.validate(student)
    text = nbformat.writes(student)
    assert "SOLUTION-MARKER" not in text and "inv[np.asarray(perm)]" not in text
    tags = [t for c in student.cells for t in c.metadata.get("tags", [])]
    assert tags == ["exercise-setup", "exercise-stub", "exercise-check"]
    code = [c for c in student.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert "Student version" in student.cells[0].source
    # the solution notebook itself is untouched
    assert "SOLUTION-MARKER" in (src / "01_tiny.ipynb").read_text()


def test_check_mode_passes_stored_solutions_and_catches_bad_ones(tmp_path, capsys):
    good = _write(tmp_path / "good", _notebook())
    assert bsn.main(["--src", str(good.parent), "--check"]) == 0
    assert "1 of 1 exercises pass" in capsys.readouterr().out

    wrong = "def inverse_permutation(perm):\n    return np.asarray(perm)"
    _write(tmp_path / "bad", _notebook(solution=wrong))
    assert bsn.main(["--src", str(tmp_path / "bad"), "--check"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "inverse_permutation" in out and "returned P itself" in out

    passing_stub = "def inverse_permutation(perm):\n    return np.argsort(perm)"
    _write(tmp_path / "stub", _notebook(stub=passing_stub))
    assert bsn.main(["--src", str(tmp_path / "stub"), "--check"]) == 1
    assert "bare stub already passes" in capsys.readouterr().out


def test_a_broken_import_cell_is_reported_not_raised(tmp_path, capsys):
    nb = _notebook()
    nb.cells[1].source = "import numpy as np\nraise RuntimeError('no data here')"
    _write(tmp_path, nb)
    assert bsn.main(["--src", str(tmp_path), "--check"]) == 1
    out = capsys.readouterr().out
    assert "import cell raised RuntimeError: no data here" in out and "cell 1" in out


def test_structure_errors_name_the_cell(tmp_path, capsys):
    nb = _notebook()
    del nb.cells[6]  # the solution
    _write(tmp_path, nb)
    assert bsn.main(["--src", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "01_tiny.ipynb" in err and "no exercise-solution cell" in err and "cell 5" in err


def test_stale_student_copies_are_removed_but_foreign_files_kept(tmp_path):
    src = tmp_path / "nbs"
    _write(src, _notebook())
    bsn.build(src, src / "student")
    foreign = src / "student" / "mine.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), foreign)
    _write(src, nbformat.v4.new_notebook())  # the exercises are gone from 01_tiny
    assert bsn.build(src, src / "student") == []
    assert not (src / "student" / "01_tiny.ipynb").exists() and foreign.exists()


def test_real_notebooks_solutions_pass():
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    with_exercises = [p for p in notebooks if bsn.exercises_of(nbformat.read(p, as_version=4), p.name)]
    if not with_exercises:
        pytest.skip("no notebook in notebooks/ has exercise cells yet")
    outcomes = bsn.check(ROOT / "notebooks", [str(p) for p in with_exercises])
    failed = [f"{o.exercise}: {o.detail}" for o in outcomes if not o.ok]
    assert outcomes and not failed, failed


def test_committed_student_copies_are_up_to_date(tmp_path):
    """notebooks/student/ is committed for students to open; it must be what the builder makes now."""
    committed = ROOT / "notebooks" / "student"
    built = bsn.build(ROOT / "notebooks", tmp_path / "student")
    if not built:
        pytest.skip("no notebook in notebooks/ has exercise cells yet")
    names = sorted(p.name for p in built)
    assert names == sorted(p.name for p in committed.glob("*.ipynb")), "run `make student`"
    for name in names:
        fresh = nbformat.read(tmp_path / "student" / name, as_version=4)
        stored = nbformat.read(committed / name, as_version=4)
        assert [c.source for c in fresh.cells] == [c.source for c in stored.cells], f"{name}: run `make student`"
