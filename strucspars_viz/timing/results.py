"""Writing and reading a sweep's files: ``summary.csv``, ``raw.csv``, ``breakdown.csv`` and
``environment.json`` (hardware, software, load average and the command, beside every CSV)."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Iterable

__all__ = ["RAW_COLUMNS", "SUMMARY_COLUMNS", "BREAKDOWN_COLUMNS", "read_csv", "write_csv", "write_environment"]

RAW_COLUMNS = ("variant", "batch", "layout", "dtype", "backend", "device", "round", "time_ms")
SUMMARY_COLUMNS = (
    "variant", "family", "base", "target", "params", "macs", "batch", "layout", "dtype", "backend", "device",
    "status", "repeats", "median_ms", "q1_ms", "q3_ms", "iqr_ms", "min_ms", "speedup", "speedup_paired",
    "peak_mem_mb", "mem_method", "load1_start", "load1_end",
)
BREAKDOWN_COLUMNS = ("variant", "batch", "layout", "device", "category", "ms", "share")


def _cell(v) -> object:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    return v


def write_csv(path: str | Path, rows: Iterable[dict], columns: tuple[str, ...]) -> Path:
    """CSV with exactly ``columns`` (missing keys empty; unknown keys are an error)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = list(rows)
    for r in rows:
        extra = set(r) - set(columns)
        if extra:
            raise ValueError(f"{path.name}: unexpected columns {sorted(extra)}; allowed {list(columns)}")
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(columns))
        w.writeheader()
        for r in rows:
            w.writerow({c: _cell(r.get(c)) for c in columns})
    tmp.replace(path)
    return path


def read_csv(path: str | Path) -> list[dict]:
    """Rows as dicts of strings converted to int/float where they parse (empty -> None)."""
    def conv(v: str):
        if v == "":
            return None
        for t in (int, float):
            try:
                return t(v)
            except ValueError:
                pass
        return v

    with open(path, newline="") as fh:
        return [{k: conv(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def write_environment(path: str | Path, env: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(env, indent=2, allow_nan=False) + "\n")
    return path
