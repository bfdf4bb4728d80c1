"""The sweep: interleaved, warmed-up wall times of named variants over configurations.

Per configuration every variant is prepared, warmed up, then timed in *rounds*: round ``r`` runs
each variant once, in an order rotated by ``r`` (round-robin), so slow drifts and bursts of load
from other processes fall on all variants alike and no variant always runs first. CPU times use
``time.perf_counter``; CUDA times use ``torch.cuda.Event`` pairs after a ``synchronize``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from .backends import Config, Unsupported, check_config, prepare
from .env import load_average
from .memory import peak_memory
from .stats import paired_speedup, summarize

__all__ = ["Variant", "SweepResult", "interleaved_order", "measure", "run_sweep"]


@dataclass
class Variant:
    """A named model to time. ``reference`` names the variant speed-ups are taken against."""

    name: str
    model: nn.Module
    input_size: tuple[int, int, int]
    family: str = "dense"
    base: str = ""
    target: float | None = None
    reference: str | None = None
    params: int = 0
    macs: int = 0
    info: dict = field(default_factory=dict)


@dataclass
class SweepResult:
    raw: list[dict]
    summary: list[dict]


def interleaved_order(n_variants: int, repeats: int) -> list[tuple[int, int]]:
    """``[(round, variant_index), ...]``: every round runs each variant once, rotated by the round."""
    if n_variants < 1 or repeats < 1:
        raise ValueError(f"need at least one variant and one repeat, got {n_variants} and {repeats}")
    return [(r, (r + k) % n_variants) for r in range(repeats) for k in range(n_variants)]


def measure(fn: Callable[[], object], device: torch.device) -> float:
    """Seconds of one call of ``fn`` (CUDA: event pair, synchronised before and after)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run_sweep(
    variants: Sequence[Variant],
    configs: Iterable[Config],
    *,
    repeats: int = 10,
    warmup: int = 2,
    device: str | torch.device = "cpu",
    memory: bool = True,
    progress: bool = True,
    timer: Callable[[Callable[[], object], torch.device], float] = measure,
    preparer: Callable[..., Callable[[], object]] = prepare,
) -> SweepResult:
    """Time every variant under every configuration; one raw row per call, one summary row per
    (variant, configuration). Configurations a backend cannot run are summarised with a
    ``status`` naming the reason and no time."""
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but torch.cuda.is_available() is False")
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise ValueError(f"variant names must be unique, got {names}")
    configs = [check_config(c) for c in configs]
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got {repeats} and {warmup}")
    raw: list[dict] = []
    summary: list[dict] = []
    bar = tqdm(total=len(configs) * len(variants), desc="timing sweep", disable=not progress)
    for cfg in configs:
        load_start = load_average()
        fns: dict[str, Callable[[], object]] = {}
        status: dict[str, str] = {}
        for v in variants:
            try:
                fns[v.name] = preparer(v.model, v.input_size, cfg, device)
            except Unsupported as err:
                status[v.name] = f"skipped: {err}"
        live = [v for v in variants if v.name in fns]
        for _ in range(warmup):
            for v in live:
                fns[v.name]()
        times: dict[str, list[float]] = {v.name: [] for v in live}
        for r, i in interleaved_order(len(live), repeats) if live else []:
            v = live[i]
            t = timer(fns[v.name], device)
            times[v.name].append(t)
            raw.append({"variant": v.name, **cfg.as_dict(), "device": device.type, "round": r, "time_ms": t * 1e3})
        load_end = load_average()
        for v in variants:
            row = {"variant": v.name, "family": v.family, "base": v.base, "target": v.target,
                   "params": v.params, "macs": v.macs, **cfg.as_dict(), "device": device.type,
                   "load1_start": load_start, "load1_end": load_end}
            if v.name in times:
                s = summarize(times[v.name])
                row.update(status="ok", repeats=s.n, median_ms=s.median * 1e3, q1_ms=s.q1 * 1e3,
                           q3_ms=s.q3 * 1e3, iqr_ms=s.iqr * 1e3, min_ms=s.min * 1e3)
                ref = v.reference
                if ref in times:
                    row["speedup"] = summarize(times[ref]).median / s.median
                    row["speedup_paired"] = paired_speedup(times[ref], times[v.name])
                if memory and cfg.backend not in ("onnxruntime", "openvino"):
                    row["peak_mem_mb"], row["mem_method"] = peak_memory(fns[v.name], device)
            else:
                row["status"] = status.get(v.name, "skipped")
            summary.append(row)
            bar.update()
        del fns
    bar.close()
    return SweepResult(raw, summary)
