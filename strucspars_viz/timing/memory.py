"""Peak memory of one forward pass.

CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``, minus the memory held
before the call (weights, input): the activations and workspaces of the pass (method ``"cuda_max_allocated"``).

CPU: ``tracemalloc`` does not see torch's allocator and ``ru_maxrss`` is a process-lifetime maximum,
so we use ``torch.profiler(profile_memory=True)``: events in start order, each top-level op
contributing its net allocation (``cpu_memory_usage``, children included) and each stand-alone
``[memory]`` event its free; the peak of that running sum is reported (method
``"profiler_net_per_op"``). Temporaries that an op allocates and frees inside itself are not
seen, so this is a lower bound on the true peak.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

__all__ = ["peak_memory", "running_peak"]


def running_peak(deltas_in_time_order) -> float:
    """``max(0, max_k sum_{i<=k} delta_i)`` (pure)."""
    d = np.asarray(list(deltas_in_time_order), dtype=np.float64)
    return float(max(0.0, np.cumsum(d).max())) if d.size else 0.0


def peak_memory(fn: Callable[[], object], device: torch.device) -> tuple[float, str]:
    """(peak MiB during one call of ``fn``, method name)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - base) / 2**20, "cuda_max_allocated"
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = [e for e in prof.events() if e.cpu_parent is None]
    events.sort(key=lambda e: e.time_range.start)
    return running_peak(e.cpu_memory_usage for e in events) / 2**20, "profiler_net_per_op"
