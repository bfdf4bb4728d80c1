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
    for extra in ("notebooks", "test"):
        wanted |= set(project["optional-dependencies"][extra])
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
