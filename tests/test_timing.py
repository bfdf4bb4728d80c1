"""The timing harness: correctness only (interleaving, statistics, CSV schema, categories); no speed asserts."""
import argparse

import numpy as np
import pytest
import torch
from torch import nn

import strucspars_viz as sv
from strucspars_viz.timing import (
    Config, Unsupported, Variant, categorize, interleaved_order, layer_breakdown, paired_speedup, peak_memory,
    read_csv, run_sweep, running_peak, save_sweep, summarize, write_csv,
)
from strucspars_viz.timing.results import SUMMARY_COLUMNS
from strucspars_viz.timing.variants import parse_kind, shuffle_modules


def test_interleaved_order_round_robin_and_rotated():
    order = interleaved_order(3, 4)
    assert len(order) == 12
    for r in range(4):
        block = order[3 * r:3 * r + 3]
        assert [rr for rr, _ in block] == [r] * 3  # rounds are consecutive blocks
        assert sorted(i for _, i in block) == [0, 1, 2]  # each variant once per round
        assert block[0][1] == r % 3  # start rotates: no variant always first
    with pytest.raises(ValueError, match="at least one"):
        interleaved_order(0, 3)


def test_summarize_closed_form():
    s = summarize([5.0, 1.0, 3.0, 2.0, 4.0])
    assert (s.n, s.median, s.q1, s.q3, s.iqr, s.min) == (5, 3.0, 2.0, 4.0, 2.0, 1.0)
    with pytest.raises(ValueError, match="no timings"):
        summarize([])
    with pytest.raises(ValueError, match="finite"):
        summarize([1.0, float("nan")])


def test_paired_speedup_is_median_of_round_ratios():
    # a load burst in round 2 hits both: the paired ratio stays 2, the ratio of medians does not care
    ref = [2.0, 2.0, 20.0, 2.0]
    cand = [1.0, 1.0, 10.0, 1.0]
    assert paired_speedup(ref, cand) == 2.0
    with pytest.raises(ValueError, match="equally many"):
        paired_speedup([1.0], [1.0, 2.0])


def _fake_variants():
    m = nn.Identity()
    return [Variant("a:dense", m, (3, 4, 4)), Variant("a:ss65", m, (3, 4, 4), family="strucspars", reference="a:dense"),
            Variant("a:onnx", m, (3, 4, 4), family="strucspars", reference="a:dense")]


def test_run_sweep_interleaves_and_summarises_synthetic_times():
    calls = []
    # synthetic "times": each variant has a fixed list of durations, handed out in call order
    durations = {"a:dense": iter([4.0, 6.0, 5.0, 100.0, 5.0]), "a:ss65": iter([2.0, 3.0, 2.5, 50.0, 2.5])}

    def preparer(model, size, cfg, device):
        name = preparer.names.pop(0)
        if name == "a:onnx":
            raise Unsupported("no runtime")
        return lambda name=name: calls.append(name) or name

    preparer.names = ["a:dense", "a:ss65", "a:onnx"]

    def timer(fn, device):
        return next(durations[fn()])

    res = run_sweep(_fake_variants(), [Config(2)], repeats=5, warmup=0, memory=False, progress=False,
                    timer=timer, preparer=preparer)
    assert calls == ["a:dense", "a:ss65", "a:ss65", "a:dense"] * 2 + ["a:dense", "a:ss65"]
    assert [r["round"] for r in res.raw] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    rows = {r["variant"]: r for r in res.summary}
    assert rows["a:dense"]["median_ms"] == pytest.approx(5000.0)
    assert rows["a:ss65"]["median_ms"] == pytest.approx(2500.0)
    assert rows["a:ss65"]["iqr_ms"] == pytest.approx(500.0)
    assert rows["a:ss65"]["speedup"] == pytest.approx(2.0)
    assert rows["a:ss65"]["speedup_paired"] == pytest.approx(2.0)
    assert rows["a:onnx"]["status"] == "skipped: no runtime" and "median_ms" not in rows["a:onnx"]


@pytest.mark.parametrize("bad,match", [(Config(0), "batch size"), (Config(1, layout="nhwc"), "unknown layout"),
                                       (Config(1, backend="tvm"), "unknown backend")])
def test_run_sweep_rejects_bad_configs(bad, match):
    with pytest.raises(ValueError, match=match):
        run_sweep(_fake_variants()[:1], [bad], repeats=1, progress=False)


def test_real_sweep_on_tiny_models_writes_the_csv_schema(tmp_path):
    dense = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 1)).eval()
    grouped = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), sv.ChannelPermute(np.arange(8)[::-1].copy()),
                            nn.Conv2d(8, 8, 1, groups=2)).eval()
    vs = [Variant("t:dense", dense, (3, 8, 8), base="t"),
          Variant("t:ss", grouped, (3, 8, 8), family="strucspars", base="t", reference="t:dense")]
    res = run_sweep(vs, [Config(1), Config(2, "cl")], repeats=2, warmup=1, progress=False)
    assert len(res.raw) == 2 * 2 * 2
    assert all(r["status"] == "ok" and r["median_ms"] > 0 and r["peak_mem_mb"] >= 0 for r in res.summary)
    bd = [{"variant": "t:ss", "batch": 1, "layout": "nchw", "device": "cpu", "category": c, "ms": ms, "share": 0.25}
          for c, ms in layer_breakdown(grouped, torch.randn(1, 3, 8, 8), repeats=1).items()]
    paths = save_sweep(tmp_path, res, bd, command="test", figure=True)
    rows = read_csv(paths["summary"])
    assert list(rows[0]) == list(SUMMARY_COLUMNS)
    assert rows[1]["speedup"] is not None and rows[0]["speedup"] is None  # dense has no reference
    assert (tmp_path / "timing.png").stat().st_size > 0
    assert '"command": "test"' in paths["environment"].read_text()


def test_write_csv_rejects_unknown_columns(tmp_path):
    with pytest.raises(ValueError, match="unexpected columns"):
        write_csv(tmp_path / "x.csv", [{"a": 1, "zzz": 2}], ("a",))


def test_running_peak_closed_form():
    assert running_peak([10, -4, 8, -20, 3]) == 14.0
    assert running_peak([-5]) == 0.0


def test_peak_memory_sees_an_allocation():
    n = 1 << 20  # 4 MiB of float32 allocated and kept by the call
    keep = []
    mb, method = peak_memory(lambda: keep.append(torch.empty(n).fill_(1.0)), torch.device("cpu"))
    assert method == "profiler_net_per_op"
    assert 3.9 <= mb <= 8.1


def test_categories_and_breakdown_zero_where_absent():
    assert categorize(nn.Conv2d(4, 4, 1, groups=2)) == "grouped_conv"
    assert categorize(nn.Conv2d(4, 4, 1)) == "dense_conv"
    assert categorize(sv.ChannelPermute(np.arange(4))) == "gather"
    assert categorize(nn.ChannelShuffle(2)) == "gather"
    assert categorize(nn.ReLU()) is None
    split = layer_breakdown(nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU()), torch.randn(1, 3, 4, 4), repeats=1)
    assert split["grouped_conv"] == 0.0 and split["gather"] == 0.0 and split["dense_conv"] > 0.0


def test_shuffle_modules_replace_gathers_exactly():
    c, g = 12, 3
    idx = sv.shufflenet_permutation(c, g)
    model = nn.Sequential(sv.ChannelPermute(idx), nn.Conv2d(c, c, 1), sv.ChannelPermute(np.arange(c)[::-1].copy()))
    x = torch.randn(2, c, 3, 3)
    before = model(x)
    assert shuffle_modules(model) == 1  # the reversal is no ShuffleNet shuffle and stays a gather
    assert isinstance(model[0], nn.ChannelShuffle) and isinstance(model[2], sv.ChannelPermute)
    assert torch.equal(model(x), before)


@pytest.mark.parametrize("kind,parsed", [("dense", ("dense", None)), ("ss65", ("ss", 0.65)), ("tp35", ("tp", 0.35))])
def test_parse_kind(kind, parsed):
    assert parse_kind(kind) == parsed


@pytest.mark.parametrize("argv,match", [
    (["--models", "resnet20:ss650"], "unknown variant kind"),
    (["--models", "resnet20:dense", "--batch", "0"], "positive"),
    (["--models", "nosuchnet"], "unknown model"),
    (["--models", "resnet20:dense", "--layouts", "nhwc"], "unknown layout"),
    (["--models", "resnet20:dense", "--batch", "a"], "--batch"),
])
def test_cli_errors_are_clear(argv, match, tmp_path, capsys):
    from strucspars_viz.cli import main

    assert main(["time", *argv, "--out", str(tmp_path)]) == 2
    assert match in capsys.readouterr().err


def test_cli_times_a_tiny_sweep(tmp_path):
    """`strucspars-viz time` end to end: two variants, one batch size, one round; CSVs and figure written."""
    import csv

    from strucspars_viz.cli import main

    assert main(["time", "--models", "resnet20:dense,resnet20:ss65", "--batch", "1", "--repeats", "1",
                 "--warmup", "0", "--no-breakdown", "--no-memory", "--threads", "1", "--out", str(tmp_path)]) == 0
    files = {p.name for p in tmp_path.iterdir()}
    assert {"summary.csv", "raw.csv"} <= files, files
    with open(tmp_path / "summary.csv") as f:
        variants = {row["variant"] for row in csv.DictReader(f)}
    assert variants == {"resnet20:dense", "resnet20:ss65"}, variants
