"""``strucspars-viz demo --quick``: runs end to end (as a subprocess, the way a user starts it), prints
non-increasing objectives, writes the report and the layer trace."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from strucspars_viz import demo
from strucspars_viz.trace import LayerTrace


def _command() -> list[str]:
    script = Path(sys.executable).with_name("strucspars-viz")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "strucspars_viz.cli"]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    env = {k: v for k, v in os.environ.items() if k != "STRUCSPARS_DATA"}  # the bundled sample, announced
    proc = subprocess.run([*_command(), "demo", "--quick", "--out", str(out)], capture_output=True, text=True,
                          env={**env, "MPLBACKEND": "Agg"}, cwd=out, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "bundled CIFAR-10 sample" in proc.stderr  # the fallback is announced, not silent
    return out, proc.stdout


def _objective_runs(text: str) -> list[list[float]]:
    """Consecutive 'round k  J = v' lines form one run (one learn_permutations call)."""
    runs, current = [], []
    for line in text.splitlines():
        m = re.match(r"\s+round\s+(\d+)\s+J = ([-+0-9.eE]+)", line)
        if m:
            if int(m.group(1)) == 0 and current:
                runs.append(current)
                current = []
            current.append(float(m.group(2)))
        elif current:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    return runs


@pytest.mark.slow  # one quick demo run: ~30 s on 2 idle cores, ~60 s under load
def test_demo_prints_non_increasing_objectives_and_groups(quick_run):
    _, text = quick_run
    runs = _objective_runs(text)
    assert len(runs) == 3  # planted (identity start), planted (default), the trained layer
    for values in runs:
        assert len(values) >= 2
        assert all(b <= a + 1e-9 for a, b in zip(values, values[1:])), values
    assert "groups found: G = 4 (planted 4)" in text
    assert re.search(r"layer3\.0\.conv2\s+G =\s+\d+", text)
    assert "Report:" in text and "report.html" in text


@pytest.mark.slow  # one quick demo run: ~30 s on 2 idle cores, ~60 s under load
def test_demo_report_is_self_contained(quick_run):
    out, _ = quick_run
    report = out / "report.html"
    assert report.is_file()
    html = report.read_text()
    # animations as base64 GIFs, figures as base64 PNGs, nothing fetched from elsewhere
    assert len(re.findall(r'<img src="data:image/gif;base64,', html)) >= 3
    assert len(re.findall(r'<img src="data:image/png;base64,', html)) >= 4
    assert 'id="anim-planted-0"' in html and 'id="anim-training"' in html
    # nothing is loaded from elsewhere (links a reader may follow, e.g. to the paper, are fine)
    assert not re.search(r'src="(https?:)?//', html)
    assert not re.search(r'<link[^>]*href="(https?:)?//', html)
    assert 'href="https://arxiv.org/abs/2002.08127"' in html
    # tables: per-layer groups and parameters / MACs before / after, objective per round
    assert 'id="table-groups"' in html and "layer3.0.conv2" in html
    assert 'id="table-costs"' in html and "MACs" in html and "parameters" in html
    assert "objective per round" in html
    for name in ("planted_permutation_0.gif", "training.gif", "layer_before_after.png", "groups.png", "costs.png",
                 "norm_matrices.npz", "layer_norms.npz"):
        assert (out / name).is_file(), name


@pytest.mark.slow  # one quick demo run: ~30 s on 2 idle cores, ~60 s under load
def test_demo_writes_the_layer_trace(quick_run):
    out, text = quick_run
    trace = LayerTrace.load(out)
    assert trace.layer == "layer3.0.conv2" and trace.phase == ["sparsify"] and trace.epoch == [1]
    assert trace.lam == [6e-3] and trace.norms[0].shape == (64, 64)
    assert re.search(rf"layer3\.0\.conv2: G = {trace.groups[0]} ", text)  # the printed G is the traced one


def test_cli_wires_the_demo():
    from strucspars_viz.cli import COMMANDS

    assert COMMANDS["demo"][0] == "strucspars_viz.demo"
    assert demo.add_arguments is demo.add_demo_arguments and demo.main is demo.demo_main
