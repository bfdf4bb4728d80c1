"""Where the time of one eager forward goes: grouped convs, dense convs, gathers and the rest.

Forward pre/post hooks open a ``torch.profiler.record_function`` span named ``cat::<category>``
around every leaf module of a timed category; the profiler's CPU (or CUDA) time of those spans,
summed per category, is the split, and ``rest = total - sum(categories)`` (BN, ReLU, additions,
pooling, the classifier, Python overhead). A gather is a :class:`~strucspars_viz.ChannelPermute`,
any module with an ``index`` buffer used as a channel gather, or a channel shuffle.
"""
from __future__ import annotations

import copy
from collections import defaultdict

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile, record_function

__all__ = ["CATEGORIES", "categorize", "layer_breakdown"]

CATEGORIES = ("grouped_conv", "dense_conv", "gather", "rest")


def categorize(module: nn.Module) -> str | None:
    """The timed category of a leaf module, or None (counted in ``rest``)."""
    if isinstance(module, nn.Conv2d):
        return "grouped_conv" if module.groups > 1 else "dense_conv"
    if isinstance(module, nn.ChannelShuffle) or getattr(module, "is_gather", False):
        return "gather"
    if type(module).__name__ == "ChannelPermute":
        return "gather"
    kind = getattr(module, "timing_category", None)  # deploy modules say what they are
    return kind if kind in CATEGORIES else None


def _install(model: nn.Module) -> list:
    handles = []
    for m in model.modules():
        cat = categorize(m)
        if cat is None:
            continue
        state: dict = {}

        def pre(mod, args, cat=cat, state=state):
            state["span"] = record_function(f"cat::{cat}")
            state["span"].__enter__()

        def post(mod, args, out, state=state):
            state.pop("span").__exit__(None, None, None)

        handles += [m.register_forward_pre_hook(pre), m.register_forward_hook(post)]
    return handles


@torch.inference_mode()
def layer_breakdown(model: nn.Module, x: torch.Tensor, *, repeats: int = 3) -> dict[str, float]:
    """Milliseconds per forward spent in each of :data:`CATEGORIES` (means over ``repeats``)."""
    m = copy.deepcopy(model).eval()
    handles = _install(m)
    cuda = x.is_cuda
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    try:
        m(x)  # warm-up outside the profile
        with profile(activities=acts) as prof:
            with record_function("cat::total"):
                for _ in range(repeats):
                    m(x)
            if cuda:
                torch.cuda.synchronize()
    finally:
        for h in handles:
            h.remove()
    totals: dict[str, float] = defaultdict(float)
    for e in prof.events():
        if e.name.startswith("cat::"):
            t = e.device_time_total if cuda and e.device_time_total else e.cpu_time_total
            totals[e.name[5:]] += t / 1e3 / repeats
    out = {c: totals.get(c, 0.0) for c in CATEGORIES[:-1]}
    out["rest"] = max(0.0, totals.get("total", 0.0) - sum(out.values()))
    return out
