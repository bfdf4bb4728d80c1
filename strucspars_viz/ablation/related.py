"""The related-designs table (issue 9, SPEC §10): StrucSpars beside IGC-V2, SSC and a narrow network.

Every row is a set of finished jobs of ablation sweeps (``SWEEP/<arm>/seed<k>/``, :mod:`.jobs`): the
StrucSpars arms of SPEC §7 and the baselines of :mod:`.baselines`, all trained by the same trainer with
the same schedule and seeds, at the StrucSpars model's parameter count. The table gives per row the
top-1 mean +- sd over seeds, Welch's p against the learned structure (:data:`REFERENCE`), parameters,
MACs (the designs counted by their structured-sparse ops) and the median CPU latency of seed 0's
deployable model, timed by :func:`..timing.run_sweep` (interleaved rounds, warm-up) in eval mode. The
design networks are timed twice: as built (their dense-equivalent forward: IGC-V2's 1x1 stages multiplied
into one dense 1x1, SSC's kernel scattered into a dense conv) and with ``dense_forward=False`` (their
structured ops: grouped convs and channel gathers).

Outputs in ``OUT``: ``related.csv`` (one row per job), ``related.md`` (the table), ``related.png``
(accuracy vs latency) and ``timing/`` (the harness's ``summary.csv``, ``raw.csv``, ``environment.json``).
"""
from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Iterable, Sequence

from torch import nn

from .report import collect_rows
from .stats import spread, welch_p

__all__ = ["ROWS", "REFERENCE", "find_rows", "run_model", "time_rows", "related_table", "related_markdown",
           "write_related"]

#: (arm or baseline, label) in table order
ROWS: tuple[tuple[str, str], ...] = (
    ("fromscratch", "StrucSpars: learned G, P, Q (FROMSCRATCH arm)"),
    ("shufflenet", "same grouped net, ShuffleNet shuffle P = Q (SHUFFLENET arm)"),
    ("channelshuffle", "same grouped net, ShuffleNet shuffle between convs: P = I, Q = shuffle (ours)"),
    ("igcv2", "IGC-V2 blocks (igcv2_resnet20)"),
    ("ssc", "structured sparse conv, our pattern (ssc_resnet20)"),
    ("shufflenet_units", "ShuffleNet units (shufflenet_resnet20)"),
    ("narrow", "narrow dense ResNet-20"),
    ("finetune", "StrucSpars FINETUNE arm (also inherits the sparsification phase)"),
)
REFERENCE = "fromscratch"
CSV_COLUMNS = ("arm", "seed", "top1", "top5", "params", "macs", "finetune_epochs", "sweep")
#: rows whose networks can also run their structured ops (``dense_forward=False``)
STRUCTURED = ("igcv2", "ssc")


def find_rows(sweeps: Iterable[str | Path]) -> list[dict]:
    """The finished jobs of :data:`ROWS` in ``sweeps`` (``collect_rows`` rows plus ``sweep``, ``folder``).

    An arm found in two sweeps is a ValueError naming both (a row mixes no protocols); a sweep
    folder that does not exist is a FileNotFoundError.
    """
    wanted = {arm for arm, _ in ROWS}
    rows, origin = [], {}
    for sweep in map(Path, sweeps):
        if not sweep.is_dir():
            raise FileNotFoundError(f"related designs: sweep folder {sweep} does not exist")
        for r in collect_rows(sweep):
            if r["arm"] not in wanted:
                continue
            if origin.setdefault(r["arm"], sweep) != sweep:
                raise ValueError(f"related designs: {r['arm']} has finished jobs in {origin[r['arm']]} and in {sweep}; "
                                 "give each row from one sweep")
            rows.append({**r, "sweep": str(sweep), "folder": str(sweep / r["arm"] / f"seed{r['seed']}")})
    if not any(r["arm"] == REFERENCE for r in rows):
        raise ValueError(f"related designs: no finished {REFERENCE} job in {', '.join(map(str, sweeps))}; "
                         "the table compares every row with it")
    return rows


def run_model(folder: str | Path) -> nn.Module:
    """The deployable model of a finished job: its ``final.pt`` (grouped convs for StrucSpars arms)."""
    from ..export import compress
    from ..models import build_model
    from ..models.shapes import fit_to_state_dict
    from ..training.artifacts import read_weights

    w = read_weights(Path(folder) / "final.pt")
    model = fit_to_state_dict(build_model(w.model, num_classes=w.num_classes), w.state_dict)
    model.load_state_dict(w.state_dict)
    model.eval()
    return compress(model, w.sparsifier, fold=True) if w.sparsifier else model


def _structured(model: nn.Module) -> nn.Module:
    from ..counting import set_dense_forward

    out = copy.deepcopy(model)
    set_dense_forward(out, False)
    return out


def time_rows(rows: Sequence[dict], *, batches: Sequence[int] = (1, 64), repeats: int = 20,
              progress: bool = True):
    """Time seed 0's model of every row (lowest seed present) under eager fp32 NCHW on the CPU."""
    from ..timing import Variant, configs_for, run_sweep

    first: dict[str, dict] = {}
    for r in sorted(rows, key=lambda r: r["seed"]):
        first.setdefault(r["arm"], r)
    variants = []
    for arm, _ in ROWS:
        if arm not in first:
            continue
        row = first[arm]  # its params / MACs are the run's own count of this very model
        model = run_model(row["folder"])
        variants.append(Variant(arm, model, (3, 32, 32), family=arm, reference=REFERENCE,
                                params=row["params"], macs=row["macs"]))
        if arm in STRUCTURED:
            variants.append(Variant(f"{arm}:structured", _structured(model), (3, 32, 32), family=arm,
                                    reference=REFERENCE, params=row["params"], macs=row["macs"]))
    return run_sweep(variants, configs_for(batches), repeats=repeats, device="cpu", memory=False, progress=progress)


def related_table(rows: Sequence[dict], timing: Sequence[dict] = ()) -> list[dict]:
    """Per row of :data:`ROWS` present: n, mean, sd, Welch p vs :data:`REFERENCE`, params, MACs, and
    ``latency[(variant, batch)] = median ms`` from the timing summary."""
    by: dict[str, list[dict]] = {}
    for r in rows:
        by.setdefault(r["arm"], []).append(r)
    ref = [r["top1"] for r in by.get(REFERENCE, [])]
    lat = {(t["variant"], int(t["batch"])): float(t["median_ms"]) for t in timing if t.get("status") == "ok"}
    table = []
    for arm, label in ROWS:
        if arm not in by:
            continue
        vals = [r["top1"] for r in by[arm]]
        sp = spread(vals)
        table.append({"arm": arm, "label": label, "n": sp.n, "mean": sp.mean, "sd": sp.sd, "values": vals,
                      "p": math.nan if arm == REFERENCE else welch_p(ref, vals),
                      "params": sum(r["params"] for r in by[arm]) / sp.n,
                      "macs": sum(r["macs"] for r in by[arm]) / sp.n,
                      "latency": {k: v for k, v in lat.items() if k[0].split(":")[0] == arm}})
    return table


def _ms(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def related_markdown(table: Sequence[dict], batches: Sequence[int] = (1, 64)) -> str:
    head = " | ".join(f"CPU ms, batch {b}" for b in batches)
    lines = ["## Related designs at matched parameters (top-1 %, full CIFAR-10 test set)", "",
             f"| network | n | top-1 mean | sd | Welch p vs learned | params | MACs | {head} |",
             "|---|---|---|---|---|---|---|" + "---|" * len(batches)]
    for t in table:
        sd = "n/a" if math.isnan(t["sd"]) else f"{t['sd']:.2f}"
        p = "" if t["arm"] == REFERENCE else ("n/a" if math.isnan(t["p"]) else f"{t['p']:.3g}")
        cells = []
        for b in batches:
            own = t["latency"].get((t["arm"], b))
            slow = t["latency"].get((f"{t['arm']}:structured", b))
            cells.append(_ms(own) + ("" if slow is None else f" ({_ms(slow)} structured)"))
        lines.append(f"| {t['label']} | {t['n']} | {t['mean']:.2f} | {sd} | {p} | {t['params']:,.0f} | "
                     f"{t['macs']:,.0f} | " + " | ".join(cells) + " |")
    lines += ["", "sd: sample standard deviation over seeds; p: Welch's t-test (scipy.stats.ttest_ind, "
              "equal_var=False) against the first row; n/a where n < 2. MACs: convolutions and linear layers, "
              "the designs counted by their structured-sparse ops. Latency: median over interleaved rounds of seed 0's "
              "model in eval mode (eager, fp32, NCHW, this machine's CPU; see timing/), the designs as built (their "
              "dense-equivalent forward) and, in brackets, through their structured ops (dense_forward=False)."]
    return "\n".join(lines) + "\n"


def write_related(out: str | Path, sweeps: Iterable[str | Path], *, batches: Sequence[int] = (1, 64),
                  repeats: int = 20, progress: bool = True) -> list[dict]:
    """Collect, time and write ``related.csv``, ``related.md``, ``related.png`` and ``timing/`` in ``out``."""
    from ..timing import save_sweep
    from ..timing.results import write_csv
    from ..training.io import atomic_write_text
    from ..viz.ablation import plot_related

    out = Path(out)
    sweeps = list(sweeps)
    rows = find_rows(sweeps)
    result = time_rows(rows, batches=batches, repeats=repeats, progress=progress)
    save_sweep(out / "timing", result, figure=False)
    write_csv(out / "related.csv", [{k: r[k] for k in CSV_COLUMNS} for r in rows], CSV_COLUMNS)
    table = related_table(rows, result.summary)
    atomic_write_text(out / "related.md", related_markdown(table, batches))
    plot_related(table, batch=max(batches)).savefig(out / "related.png", dpi=120)
    return table
