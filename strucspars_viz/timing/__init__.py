"""Wall time of models on CPU and CUDA, done carefully (issue 12).

Interleaved rounds (:func:`interleaved_order`), warm-up, ``perf_counter`` / CUDA events, medians and
IQRs, peak memory, a per-layer split from ``torch.profiler``, the out-of-the-box variants (dense,
StrucSpars, Torch-Pruning at equal MACs, ShuffleNet shuffle) and the latency-aware target.
"""
from .backends import BACKENDS, DTYPES, LAYOUTS, Config, Unsupported, prepare
from .breakdown import CATEGORIES, categorize, layer_breakdown
from .env import environment, load_average
from .harness import SweepResult, Variant, interleaved_order, measure, run_sweep
from .memory import peak_memory, running_peak
from .results import read_csv, write_csv
from .stats import Summary, paired_speedup, summarize
from .sweep import breakdown_rows, configs_for, save_sweep

__all__ = [
    "BACKENDS", "CATEGORIES", "Config", "DTYPES", "LAYOUTS", "Summary", "SweepResult", "Unsupported", "Variant",
    "breakdown_rows", "categorize", "configs_for", "environment", "interleaved_order", "layer_breakdown",
    "load_average", "measure", "paired_speedup", "peak_memory", "prepare", "read_csv", "run_sweep",
    "running_peak", "save_sweep", "summarize", "write_csv",
]
