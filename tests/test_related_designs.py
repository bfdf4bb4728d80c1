"""The related designs as ablation baselines and the related-designs table (issue 9)."""
import json
import math
import shutil

import pytest

from strucspars_viz.ablation.baselines import DESIGNS, design_model
from strucspars_viz.ablation.related import REFERENCE, find_rows, related_markdown, related_table
from strucspars_viz.ablation.stats import welch_p
from strucspars_viz.designs import count_params
from strucspars_viz.models.designs import DEFAULT_WIDTHS, TARGET_PARAMS

from test_ablation import make_sparsified


@pytest.mark.parametrize("design", list(DESIGNS))
def test_design_model_is_the_registered_matched_network(design):
    model, info = design_model(design, "resnet20", 10, TARGET_PARAMS)
    assert info["width"] == DEFAULT_WIDTHS[DESIGNS[design]] and info["params"] == count_params(model)
    assert abs(info["params"] / TARGET_PARAMS - 1) <= 0.05


def test_design_model_errors_name_the_sizes():
    with pytest.raises(ValueError, match=r"igcv2 baseline: .* model is 'resnet56' \(allowed: resnet20\)"):
        design_model("igcv2", "resnet56", 10, TARGET_PARAMS)
    with pytest.raises(ValueError, match=r"igcv2 baseline: 129,626 parameters need igcv2_resnet20 at width 52, but it "
                                         r"is registered at width 36"):
        design_model("igcv2", "resnet20", 10, 129_626)
    with pytest.raises(ValueError, match=r"ssc baseline: match_width: no width within 5% of 20000 parameters; closest"):
        design_model("ssc", "resnet20", 10, 20_000)


def _row(arm, seed, top1):
    return {"arm": arm, "seed": seed, "top1": top1, "params": 70_000, "macs": 10_000_000, "finetune_epochs": 5}


def test_related_table_statistics_and_latency():
    rows = [_row("fromscratch", s, v) for s, v in enumerate([73.0, 74.0, 72.5])]
    rows += [_row("igcv2", s, v) for s, v in enumerate([70.0, 71.5])] + [_row("narrow", 0, 69.0)]
    timing = [{"variant": "fromscratch", "batch": 1, "median_ms": 2.0, "status": "ok"},
              {"variant": "igcv2", "batch": 1, "median_ms": 5.0, "status": "ok"},
              {"variant": "igcv2:structured", "batch": 1, "median_ms": 3.0, "status": "ok"},
              {"variant": "narrow", "batch": 1, "median_ms": None, "status": "skipped: x"}]
    table = related_table(rows, timing)
    assert [t["arm"] for t in table] == ["fromscratch", "igcv2", "narrow"]  # table order, absent rows left out
    ig = table[1]
    assert ig["n"] == 2 and ig["mean"] == pytest.approx(70.75) and ig["sd"] == pytest.approx(math.sqrt(1.125))
    assert ig["p"] == pytest.approx(welch_p([73.0, 74.0, 72.5], [70.0, 71.5]))
    assert math.isnan(table[0]["p"]) and math.isnan(table[2]["p"]) and math.isnan(table[2]["sd"])
    assert ig["latency"] == {("igcv2", 1): 5.0, ("igcv2:structured", 1): 3.0} and table[2]["latency"] == {}
    md = related_markdown(table, batches=(1,))
    assert "| IGC-V2 blocks (igcv2_resnet20) | 2 | 70.75 | 1.06 | " in md and "| 5.00 (3.00 structured) |" in md
    assert "| narrow dense ResNet-20 | 1 | 69.00 | n/a | n/a | 70,000 | 10,000,000 | n/a |" in md


@pytest.mark.slow
def test_design_baselines_train_and_the_table_is_written(tmp_path):
    from strucspars_viz.ablation.jobs import plan_jobs, run_job
    from strucspars_viz.ablation.related import write_related
    from strucspars_viz.ablation.report import collect_rows

    run = make_sparsified(tmp_path / "run")
    out = tmp_path / "out"
    for job in plan_jobs(run, out, ["fromscratch"], [0], ["igcv2", "ssc"], [0], finetune_epochs=1, threads=1):
        run_job(job)
    for design in ("igcv2", "ssc"):
        folder = out / design / "seed0"
        summary = json.loads((folder / "summary.json").read_text())
        info = json.loads((folder / "baseline.json").read_text())
        assert json.loads((folder / "config.json").read_text())["model"] == DESIGNS[design]
        matched = count_params(design_model(design, "resnet20", 10, TARGET_PARAMS)[0])
        assert summary["params"] == info["params"] == matched
        assert info["params_dense"] == 272_474  # the sweep's dense ResNet-20
    rows = {r["arm"]: r for r in collect_rows(out)}
    assert rows["ssc"]["params_ratio"] == pytest.approx(rows["ssc"]["params"] / 272_474)
    assert rows["ssc"]["sparsity"] == pytest.approx(1 - rows["ssc"]["params"] / 272_474)
    table = write_related(tmp_path / "table", [out], batches=(1,), repeats=2, progress=False)
    assert [t["arm"] for t in table] == ["fromscratch", "igcv2", "ssc"]
    assert set(table[1]["latency"]) == {("igcv2", 1), ("igcv2:structured", 1)}
    assert {"related.csv", "related.md", "related.png", "timing"} <= {p.name for p in (tmp_path / "table").iterdir()}
    with pytest.raises(ValueError, match=r"fromscratch has finished jobs in .* and in"):
        shutil.copytree(out / "fromscratch", tmp_path / "other" / "fromscratch")
        find_rows([out, tmp_path / "other"])
    with pytest.raises(FileNotFoundError, match=r"sweep folder .*nowhere does not exist"):
        find_rows([tmp_path / "nowhere"])
    with pytest.raises(ValueError, match=f"no finished {REFERENCE} job"):
        find_rows([tmp_path / "table"])


def test_related_cli_reports_bad_input_in_one_line(tmp_path, capsys):
    from strucspars_viz.cli import main

    assert main(["related", "--sweeps", str(tmp_path / "nowhere"), "--out", str(tmp_path / "t")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("strucspars-viz related: error: related designs: sweep folder") and "\n" not in err
    assert main(["related", "--sweeps", str(tmp_path), "--out", str(tmp_path / "t"), "--repeats", "0"]) == 2
    assert "--repeats must be >= 1" in capsys.readouterr().err
