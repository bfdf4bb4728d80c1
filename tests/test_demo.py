"""``strucspars-viz demo --quick``: runs end to end, prints non-increasing objectives, writes the report."""
import argparse
import re

import pytest

from strucspars_viz import demo


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    parser = argparse.ArgumentParser()
    demo.add_demo_arguments(parser)
    args = parser.parse_args(["--quick", "--out", str(out)])
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert demo.demo_main(args) == 0
    return out, buf.getvalue()


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


def test_demo_report_is_self_contained(quick_run):
    out, _ = quick_run
    report = out / "report.html"
    assert report.is_file()
    html = report.read_text()
    # animations as base64 GIFs, figures as base64 PNGs, nothing fetched from elsewhere
    assert len(re.findall(r'<img src="data:image/gif;base64,', html)) >= 3
    assert len(re.findall(r'<img src="data:image/png;base64,', html)) >= 4
    assert 'id="anim-planted-0"' in html and 'id="anim-training"' in html
    assert not re.search(r'(src|href)="(https?:)?//', html)
    # tables: per-layer groups and parameters / MACs before / after, objective per round
    assert 'id="table-groups"' in html and "layer3.0.conv2" in html
    assert 'id="table-costs"' in html and "MACs" in html and "parameters" in html
    assert "objective per round" in html
    for name in ("planted_permutation_0.gif", "training.gif", "layer_before_after.png", "groups.png", "costs.png",
                 "norm_matrices.npz"):
        assert (out / name).is_file(), name


def test_cli_wires_the_demo():
    from strucspars_viz.cli import COMMANDS

    assert COMMANDS["demo"][0] == "strucspars_viz.demo"
    assert demo.add_arguments is demo.add_demo_arguments and demo.main is demo.demo_main
