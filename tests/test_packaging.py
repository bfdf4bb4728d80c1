"""Packaging contracts: environment.yml mirrors pyproject.toml; CLI and public API exist."""
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"])
    for extra in project["optional-dependencies"].values():  # `make` installs every extra
        wanted |= set(extra)
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert set(pip) - {"-e ."} == wanted
    pyver = project["requires-python"]
    assert any(str(d).startswith("python=3.11") for d in env["dependencies"]) and "3.13" in pyver


def test_console_script_and_public_api():
    out = subprocess.run([sys.executable, "-m", "strucspars_viz.cli", "--help"], capture_output=True, text=True, check=True)
    for cmd in ("demo", "permute", "compress", "train"):
        assert cmd in out.stdout
    import strucspars_viz as sv

    for name in ("norm_matrix", "max_groups", "block_mask", "penalty_matrix", "solve_assignment", "birkhoff_lp",
                 "is_permutation_matrix", "learn_permutations", "groups_for", "StructuredSparsifier", "compress",
                 "count_params_macs"):
        assert callable(getattr(sv, name)), name
    import strucspars_viz.data as data

    assert callable(data.load_cifar)


def test_cli_permute_planted(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "strucspars_viz.cli", "permute", "--planted", "32x32:4", "--save", str(tmp_path / "p.npz")],
        capture_output=True, text=True, check=True,
    )
    assert "groups at keep=0.9: 4" in out.stdout
    import numpy as np

    saved = np.load(tmp_path / "p.npz")
    assert np.all(np.diff(saved["objective"]) <= 0)


def test_cli_errors_are_clear():
    out = subprocess.run([sys.executable, "-m", "strucspars_viz.cli", "permute", "--planted", "32by32"],
                         capture_output=True, text=True)
    assert out.returncode != 0 and "COUTxCIN:GROUPS" in out.stderr
    out = subprocess.run([sys.executable, "-m", "strucspars_viz.cli", "permute", "--model", "resnet20", "--layer", "nope"],
                         capture_output=True, text=True)
    assert out.returncode != 0 and "layer1.0.conv1" in out.stderr and "Traceback" not in out.stderr


# ---------------------------------------------------------------- the wheel ships the CIFAR-10 sample

_CHECK = r"""
import sys, warnings
from pathlib import Path
import strucspars_viz, strucspars_viz.data as D
venv = Path(sys.argv[1]).resolve()
pkg = Path(strucspars_viz.__file__).resolve().parent
assert pkg.is_relative_to(venv), f"imported {pkg}, not the wheel installed in {venv}"
assert D.SAMPLE_ROOT.resolve().is_relative_to(pkg), D.SAMPLE_ROOT
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    tr = D.load_cifar()
    te = D.load_cifar(train=False)
assert tr.is_sample and len(tr.labels) == 1500 and len(te.labels) == 500, (len(tr.labels), len(te.labels))
assert sum("bundled CIFAR-10" in str(x.message) for x in w) == 1
print("OK", pkg)
"""


def test_wheel_install_finds_bundled_sample(tmp_path):
    """A non-editable install, run from another folder, finds the sample through importlib.resources."""
    import os
    import shutil
    import sysconfig
    import zipfile

    src = tmp_path / "src"  # build from a copy: the build writes build/ and *.egg-info next to the sources
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "strucspars_viz", src / "strucspars_viz",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(wheels), str(src)], check=True, capture_output=True, text=True)
    wheel = next(wheels.glob("strucspars_viz-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for f in ("batches.meta", "data_batch_1", "test_batch"):
        assert f"strucspars_viz/data/sample/cifar-10-batches-py/{f}" in names
    assert "strucspars_viz/data/sample/README.md" in names
    venv = tmp_path / "v"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q", str(wheel)],
                   check=True, capture_output=True, text=True)
    # torch / numpy from this environment's site-packages (a PYTHONPATH entry: its .pth files, the
    # editable install among them, are not processed), the package only from the wheel.
    env = {**os.environ, "PYTHONPATH": sysconfig.get_paths()["purelib"]}
    env.pop("STRUCSPARS_DATA", None)
    run = tmp_path / "elsewhere"
    run.mkdir()
    out = subprocess.run([str(py), "-c", _CHECK, str(venv)], cwd=run, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.startswith("OK")
