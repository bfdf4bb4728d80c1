"""The committed ablation reports are what the committed run folders give, not edited by hand.

For every sweep under ``results/ablation_*`` that has been committed (it has a manifest), the CSV, the
table and, across the sweeps of one network, the accuracy-vs-cost table are recomputed from the
``<arm>/seed<k>/summary.json`` files with the report functions and compared with the committed text.
"""
from pathlib import Path

import pytest

from strucspars_viz.ablation.report import (collect_rows, cost_markdown, cost_points, markdown_table, summary_table,
                                            write_csv)

REPO = Path(__file__).resolve().parents[1]
SWEEPS = sorted(p for p in (REPO / "results").glob("ablation_*") if (p / "SHA256SUMS").is_file())


@pytest.mark.skipif(not SWEEPS, reason="no committed ablation sweep")
@pytest.mark.parametrize("sweep", SWEEPS, ids=lambda p: p.name)
def test_committed_csv_and_table_come_from_the_run_folders(sweep, tmp_path):
    rows = collect_rows(sweep)
    assert rows, f"{sweep.name}: no finished job"
    write_csv(rows, tmp_path / "ablation.csv")
    assert (tmp_path / "ablation.csv").read_text() == (sweep / "ablation.csv").read_text()
    assert markdown_table(summary_table(rows)) == (sweep / "ablation.md").read_text()


def _network(sweep: Path) -> str:
    """The sweeps of one network share a name up to the ``_target`` suffix: one figure."""
    return sweep.name.split("_target")[0]


def test_committed_accuracy_vs_cost_spans_three_targets_and_comes_from_every_sweep():
    networks = {_network(s) for s in SWEEPS if (s / "accuracy_vs_cost.md").is_file()}
    if not networks:
        pytest.skip("no committed accuracy-vs-cost report")
    for name in networks:
        members = [s for s in SWEEPS if _network(s) == name]
        points = cost_points([r for s in members for r in collect_rows(s)])
        assert len({p["target"] for p in points}) >= 3
        for arm in ("finetune", "taylor", "slimming"):  # StrucSpars and the global pruners at every target
            assert len([p for p in points if p["arm"] == arm]) >= 3, arm
        expect = cost_markdown(points)
        for s in members:
            assert (s / "accuracy_vs_cost.md").read_text() == expect, s.name


DESIGNS_SWEEP = REPO / "results" / "designs_cifar10_resnet20"


@pytest.mark.skipif(not (DESIGNS_SWEEP / "SHA256SUMS").is_file(), reason="no committed related-designs table")
def test_committed_related_designs_table_comes_from_the_run_folders_and_the_timing():
    """Issue 9: every row at the StrucSpars model's parameter count within 5 %, 2 seeds or more, and the
    committed table is what the run folders and the committed timing summary give."""
    from strucspars_viz.ablation.related import find_rows, related_markdown, related_table
    from strucspars_viz.models.designs import TARGET_PARAMS
    from strucspars_viz.timing import read_csv

    rows = find_rows([REPO / "results" / "ablation_cifar10_resnet20", DESIGNS_SWEEP])
    timing = read_csv(DESIGNS_SWEEP / "timing" / "summary.csv")
    table = related_table(rows, timing)
    for arm in ("fromscratch", "shufflenet", "igcv2", "ssc", "narrow"):  # the rows issue 9 names
        assert arm in {t["arm"] for t in table}, arm
    for t in table:
        assert t["n"] >= 2 and abs(t["params"] / TARGET_PARAMS - 1) <= 0.05, t["arm"]
        assert t["latency"], f"{t['arm']}: not timed"
    batches = sorted({int(t["batch"]) for t in timing})
    assert related_markdown(table, batches) == (DESIGNS_SWEEP / "related.md").read_text()
