"""One call from specs to files: build variants, run the sweep, the per-layer split, write CSVs
and a figure. Shared by the CLI, the benchmark and notebook 07."""
from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Sequence

import torch

from .backends import Config, example_input
from .breakdown import layer_breakdown
from .env import environment
from .harness import SweepResult, Variant, run_sweep
from .results import BREAKDOWN_COLUMNS, RAW_COLUMNS, SUMMARY_COLUMNS, write_csv, write_environment

__all__ = ["breakdown_rows", "configs_for", "default_device", "save_sweep", "parse_list"]


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def parse_list(text: str | Sequence[str], what: str, cast=str) -> list:
    """``"1,16"`` -> ``[1, 16]`` (also accepts a list of such strings); ValueError naming ``what``."""
    parts = [p for t in ([text] if isinstance(text, str) else text) for p in str(t).split(",") if p.strip()]
    if not parts:
        raise ValueError(f"{what}: empty list")
    try:
        return [cast(p.strip()) for p in parts]
    except ValueError:
        raise ValueError(f"{what}: cannot read {text!r} as a comma-separated list of {cast.__name__}") from None


def configs_for(batches, layouts=("nchw",), dtypes=("fp32",), backends=("eager",)) -> list[Config]:
    """The full grid, batch-major (each configuration is timed as one interleaved block)."""
    for b in batches:
        if not isinstance(b, int) or b < 1:
            raise ValueError(f"batch sizes must be positive integers, got {b!r}")
    return [Config(b, lay, dt, be) for be in backends for dt in dtypes for lay in layouts for b in batches]


def breakdown_rows(variants: Sequence[Variant], batches, layouts, device: str, repeats: int = 3) -> list[dict]:
    rows = []
    dev = torch.device(device)
    for v in variants:
        m = v.model.to(dev)
        for b in batches:
            for lay in layouts:
                x = example_input(v.input_size, Config(b, lay), dev)
                mm = m.to(memory_format=torch.channels_last if lay == "cl" else torch.contiguous_format)
                split = layer_breakdown(mm, x, repeats=repeats)
                total = sum(split.values()) or 1.0
                rows += [{"variant": v.name, "batch": b, "layout": lay, "device": dev.type, "category": c,
                          "ms": ms, "share": ms / total} for c, ms in split.items()]
        v.model.to("cpu").to(memory_format=torch.contiguous_format)
    return rows


def save_sweep(out: str | Path, result: SweepResult, breakdown: Sequence[dict] = (), *,
               command: str | None = None, figure: bool = True) -> dict[str, Path]:
    """Write ``summary.csv``, ``raw.csv``, ``breakdown.csv``, ``environment.json`` and ``timing.png``."""
    out = Path(out)
    if command is None:  # the program's name, not this machine's path to it (results are committed)
        prog = Path(sys.argv[0]).name
        prog = "strucspars-viz" if prog in ("cli.py", "__main__.py") else prog
        command = " ".join(shlex.quote(a) for a in [prog, *sys.argv[1:]])
    paths = {
        "summary": write_csv(out / "summary.csv", result.summary, SUMMARY_COLUMNS),
        "raw": write_csv(out / "raw.csv", result.raw, RAW_COLUMNS),
        "environment": write_environment(out / "environment.json", environment(command)),
    }
    if breakdown:
        paths["breakdown"] = write_csv(out / "breakdown.csv", breakdown, BREAKDOWN_COLUMNS)
    if figure:
        from ..viz.timing import plot_timing

        fig = plot_timing(result.summary, breakdown)
        fig.savefig(out / "timing.png", dpi=120)
        paths["figure"] = out / "timing.png"
    return paths
