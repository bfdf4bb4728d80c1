"""The output contract of a sweep: ``OUT/ablation.csv``, ``OUT/ablation.md``, ``OUT/ablation.png``.

``ablation.csv``: one row per finished (arm, seed) with at least ``arm,seed,top1,top5,params,macs,
sparsity`` (top-1 / top-5 in %, of the compressed model for the arms; ``sparsity`` is the StrucSpars
model sparsity for the arms and ``1 - params / params_dense`` for the baselines), plus ``target``,
``params_ratio``, ``macs_ratio``, ``finetune_epochs``, ``kind`` (arm | baseline).

``ablation.md``: per arm ``n``, mean +- sd, the 95 % t interval, and Welch's p-value: an arm against
the row above (neighbouring arms, in the order of SPEC §7); a baseline against the StrucSpars arm
with the same training budget (:data:`BUDGET_PEER`).
``accuracy_vs_cost.md`` / ``.png`` are added when rows of two or more targets are given (``compare``):
per (arm, target) the mean parameters, MACs and top-1 +- sd over seeds (:func:`cost_points`).
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Iterable, Sequence

from .arms import ARMS
from .baselines import BASELINES, DESIGNS
from .stats import spread, welch_p

__all__ = ["BUDGET_PEER", "COLUMNS", "ORDER", "collect_rows", "cost_points", "write_csv", "read_csv",
           "summary_table", "markdown_table", "cost_markdown", "write_report"]

COLUMNS = ("arm", "seed", "top1", "top5", "params", "macs", "sparsity", "target", "params_ratio", "macs_ratio",
           "finetune_epochs", "kind")
ORDER = ARMS + BASELINES
#: the arm each baseline is compared with: the one trained for as many epochs from the same kind of start
#: (a pruned baseline's dense pretraining is as long as the sparsification phase FINETUNE inherits;
#: dense and narrow are re-initialised and get the finetuning epochs only, as FROMSCRATCH)
BUDGET_PEER = {"slimming": "finetune", "taylor": "finetune", "magnitude": "finetune",
               "dense": "fromscratch", "narrow": "fromscratch",
               **{design: "fromscratch" for design in DESIGNS}}


def _pct(x) -> float:
    return math.nan if x is None else 100.0 * float(x)


def collect_rows(out: str | Path) -> list[dict]:
    """One row per ``OUT/<arm>/seed<k>/summary.json`` (arm order of :data:`ORDER`, then seed)."""
    out = Path(out)
    rows = []
    for arm in ORDER:
        for folder in sorted((out / arm).glob("seed*"), key=lambda p: int(p.name[4:]) if p.name[4:].isdigit() else 0):
            file = folder / "summary.json"
            if not file.is_file():
                continue
            s = json.loads(file.read_text())
            base = arm in BASELINES
            ratio = s.get("params_ratio") or s["params"] / s["params_dense"]
            macs_ratio = s.get("macs_ratio") or math.nan
            info = folder / "baseline.json"
            reference = json.loads(info.read_text()) if info.is_file() else {}
            if "params_dense" in reference:  # a design network: its run's dense reference is itself
                ratio = s["params"] / reference["params_dense"]
                macs_ratio = s["macs"] / reference["macs_dense"]
            cfg = json.loads((folder / "config.json").read_text()) if (folder / "config.json").is_file() else {}
            rows.append({
                "arm": arm, "seed": int(folder.name[4:]), "top1": _pct(s.get("top1")), "top5": _pct(s.get("top5")),
                "params": int(s["params"]), "macs": int(s["macs"]),
                "sparsity": (1.0 - ratio) if base else float(s.get("sparsity", math.nan)),
                "target": float(cfg.get("target", math.nan)), "params_ratio": ratio,
                "macs_ratio": macs_ratio, "finetune_epochs": s.get("epochs", {}).get("finetune"),
                "kind": "baseline" if base else "arm",
            })
    return rows


def write_csv(rows: Sequence[dict], path: str | Path) -> None:
    from ..training.io import atomic_write_text
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: r.get(k) for k in COLUMNS})
    atomic_write_text(path, buf.getvalue())


def read_csv(path: str | Path) -> list[dict]:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        for k in ("top1", "top5", "sparsity", "target", "params_ratio", "macs_ratio"):
            r[k] = float(r[k]) if r.get(k) not in (None, "") else math.nan
        for k in ("seed", "params", "macs"):
            r[k] = int(float(r[k]))
    return rows


def summary_table(rows: Sequence[dict], metric: str = "top1") -> list[dict]:
    """Per arm (table order): n, mean, sd, 95 % CI, mean params / MACs, and Welch's p against ``vs``:
    the row above for an arm, :data:`BUDGET_PEER` for a baseline (``None`` where that row is absent)."""
    by: dict[str, list[dict]] = {}
    for r in rows:
        by.setdefault(r["arm"], []).append(r)
    table: list[dict] = []
    for arm in [a for a in ORDER if a in by] + sorted(set(by) - set(ORDER)):
        vals = [r[metric] for r in by[arm]]
        sp = spread(vals)
        vs = BUDGET_PEER.get(arm) if arm in BASELINES else (table[-1]["arm"] if table else None)
        vs = vs if vs in by else None
        table.append({"arm": arm, "n": sp.n, "mean": sp.mean, "sd": sp.sd, "ci_low": sp.ci_low, "ci_high": sp.ci_high,
                      "params": sum(r["params"] for r in by[arm]) / sp.n, "macs": sum(r["macs"] for r in by[arm]) / sp.n,
                      "values": vals, "vs": vs,
                      "p": welch_p([r[metric] for r in by[vs]], vals) if vs else math.nan})
    return table


def _f(x: float, fmt: str = "{:.2f}") -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else fmt.format(x)


def markdown_table(table: Sequence[dict], title: str = "Ablation (top-1 %, compressed models)") -> str:
    lines = [f"## {title}", "",
             "| arm | n | top-1 mean | sd | 95 % CI | params | MACs | Welch p (vs) |",
             "|---|---|---|---|---|---|---|---|"]
    for t in table:
        ci = f"[{_f(t['ci_low'])}, {_f(t['ci_high'])}]" if not math.isnan(t["ci_low"]) else "n/a"
        p = f"{_f(t['p'], '{:.3g}')} ({t['vs']})" if t["vs"] else ""
        lines.append(f"| {t['arm']} | {t['n']} | {_f(t['mean'])} | {_f(t['sd'])} | {ci} | {t['params']:,.0f} | "
                     f"{t['macs']:,.0f} | {p} |")
    lines += ["", "sd: sample standard deviation over seeds; CI: mean +- t(0.975, n-1) sd / sqrt(n); p: Welch's "
              "t-test (scipy.stats.ttest_ind, equal_var=False), for an arm against the row above, for a baseline "
              "against the arm with the same training budget (pruned baselines: finetune, whose sparsification "
              "phase is as long as their dense pretraining; dense and narrow: fromscratch); n/a where n < 2."]
    if any(t["arm"] in DESIGNS for t in table):
        lines.append("Related designs (igcv2, ssc, shufflenet_units) are re-initialised like narrow: "
                     "against fromscratch.")
    return "\n".join(lines) + "\n"


def cost_points(rows: Sequence[dict], metric: str = "top1") -> list[dict]:
    """Per (arm, target), table order then target: ``n``, mean params and MACs, mean and sd of ``metric``."""
    by: dict[tuple[str, float], list[dict]] = {}
    for r in rows:
        if not math.isnan(r["target"]):
            by.setdefault((r["arm"], round(r["target"], 4)), []).append(r)
    rank = {a: i for i, a in enumerate(ORDER)}
    points = []
    for arm, target in sorted(by, key=lambda k: (rank.get(k[0], len(rank)), k[0], k[1])):
        sel = by[arm, target]
        sp = spread([r[metric] for r in sel])
        points.append({"arm": arm, "target": target, "n": sp.n, "params": sum(r["params"] for r in sel) / sp.n,
                       "macs": sum(r["macs"] for r in sel) / sp.n, "mean": sp.mean, "sd": sp.sd})
    return points


def cost_markdown(points: Sequence[dict]) -> str:
    lines = ["## Accuracy vs. complexity (top-1 %, mean +- sd over seeds)", "",
             "| arm | target | n | params | MACs | top-1 |", "|---|---|---|---|---|---|"]
    for p in points:
        sd = "" if math.isnan(p["sd"]) else f" +- {p['sd']:.2f}"
        lines.append(f"| {p['arm']} | {p['target']:g} | {p['n']} | {p['params']:,.0f} | {p['macs']:,.0f} | "
                     f"{p['mean']:.2f}{sd} |")
    return "\n".join(lines + ["", "target: the StrucSpars run's parameter target that the row was matched to "
                              "(the dense model is not pruned; it sits in the sweep of its run)."]) + "\n"


def write_report(out: str | Path, compare: Iterable[str | Path] = ()) -> list[dict]:
    """Write ``ablation.csv`` / ``.md`` / ``.png`` (and ``accuracy_vs_cost.md`` / ``.png`` when the rows
    of ``out`` and ``compare`` span two or more targets); returns the rows of ``out``."""
    from ..training.io import atomic_write_text
    from ..viz.ablation import plot_ablation, plot_accuracy_vs_cost

    out = Path(out)
    rows = collect_rows(out)
    if not rows:
        raise ValueError(f"{out}: no finished job (no <arm>/seed<k>/summary.json) to report")
    write_csv(rows, out / "ablation.csv")
    table = summary_table(rows)
    atomic_write_text(out / "ablation.md", markdown_table(table))
    fig = plot_ablation({t["arm"]: t["values"] for t in table}, {t["arm"]: (t["ci_low"], t["ci_high"]) for t in table},
                        baselines=BASELINES)
    fig.savefig(out / "ablation.png", dpi=120)
    points = cost_points(list(rows) + [r for c in compare for r in read_csv(Path(c) / "ablation.csv")])
    if len({p["target"] for p in points}) >= 2:
        atomic_write_text(out / "accuracy_vs_cost.md", cost_markdown(points))
        plot_accuracy_vs_cost(points).savefig(out / "accuracy_vs_cost.png", dpi=120)
    import matplotlib.pyplot as plt

    plt.close("all")
    return rows
