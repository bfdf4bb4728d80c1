"""A latency-aware target (beyond the paper): spend a budget of measured time, not of parameters.

The paper bisects one global ``keep`` until the parameter count fits (SPEC §5). Here each layer
``l`` has a measured latency ``t_l(G)`` for every admissible ``G`` (powers of two up to
``max_groups``), measured once per device on the layer's real input shape and cached. The model's
predicted latency is ``T(G) = t_fixed + sum_l t_l(G_l)``.

Search, in the criterion's order (the one ``reach_target`` promotes layers in: candidates
``(l, G)`` by decreasing kept fraction ``f_l(G)``, ties smaller layer first): lowering the threshold
``kappa`` past ``f_l(G)`` makes ``G`` admissible for layer ``l``; each layer then runs at its fastest
admissible level, ``G_l(kappa) = argmin_{G : f_l(G) >= kappa} t_l(G)`` (``G = 1`` always admissible).
We stop at the first ``kappa`` with ``T <= budget``. Among *all* assignments within the budget this
maximises ``keep(G) = min_{l : G_l > 1} f_l(G_l)`` (proof: an optimal assignment's levels are all
admissible at its own keep, so ``G(kappa*)`` is no slower and the scan stops no later), and it never
picks a finer grouping that does not pay in time.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
from pathlib import Path
from typing import Callable, Mapping, NamedTuple

import numpy as np
import torch
from torch import nn

__all__ = ["LatencyResult", "admissible_groups", "latency_search", "latency_target", "layer_signatures",
           "measure_latency_table", "predicted_latency", "default_cache_dir"]


class LatencyResult(NamedTuple):
    groups: dict[str, int]
    latency: float  # predicted, seconds
    keep: float  # the threshold kappa where the scan stopped (1.0: dense already fits)
    met: bool  # False: even the fastest admissible assignment exceeds the budget


def admissible_groups(cout: int, cin: int) -> list[int]:
    from ..hierarchy import max_groups

    top = max_groups(cout, cin)
    return [2 ** k for k in range(int(np.log2(top)) + 1)]


def predicted_latency(groups: Mapping[str, int], table: Mapping[str, Mapping[int, float]], fixed: float = 0.0) -> float:
    return float(fixed + sum(table[n][int(g)] for n, g in groups.items()))


def latency_search(fractions: Mapping[str, Mapping[int, float]], sizes: Mapping[str, int],
                   table: Mapping[str, Mapping[int, float]], budget: float, fixed: float = 0.0) -> LatencyResult:
    """The criterion-ordered scan of the module docstring (pure: dicts in, assignment out)."""
    missing = [(n, g) for n, fr in fractions.items() for g in fr if g not in table.get(n, {})]
    if missing or set(fractions) - set(table):
        raise ValueError(f"latency table lacks entries for (layer, G): {missing[:5] or sorted(set(fractions) - set(table))}")
    if budget <= 0:
        raise ValueError(f"latency budget must be > 0 seconds, got {budget}")
    groups = {n: 1 for n in fractions}
    total = predicted_latency(groups, table, fixed)
    if total <= budget:
        return LatencyResult(groups, total, 1.0, True)
    candidates = sorted(((f, sizes[n], g, n) for n, fr in fractions.items() for g, f in fr.items() if g > 1),
                        key=lambda c: (-c[0], c[1], c[2]))
    keep = 1.0
    for f, _, g, name in candidates:
        keep = f
        if table[name][g] < table[name][groups[name]]:
            groups[name] = g
            total = predicted_latency(groups, table, fixed)  # re-summed: no drift from increments
            if total <= budget:
                return LatencyResult(dict(groups), float(total), float(f), True)
    return LatencyResult(dict(groups), float(total), float(keep), False)


# ----------------------------------------------------------------------------- measuring and caching
def default_cache_dir() -> Path:
    return Path(os.environ.get("STRUCSPARS_CACHE", Path.home() / ".cache" / "strucspars_viz")) / "latency"


def layer_signatures(sparsifier, example_input: torch.Tensor) -> dict[str, str]:
    """``layer -> "cout,cin,kh,kw,stride,padding,N,H,W"`` from one forward with hooks (equal
    signatures share one measurement)."""
    sig: dict[str, str] = {}
    hooks = []
    for name, conv in sparsifier.modules.items():
        def hook(m, args, out, name=name):
            n, _, h, w = args[0].shape
            sig[name] = ",".join(map(str, (m.out_channels, m.in_channels, *m.kernel_size, *m.stride, *m.padding, n, h, w)))
        hooks.append(conv.register_forward_hook(hook))
    try:
        with torch.inference_mode():
            sparsifier.model.eval()(example_input)
    finally:
        for h in hooks:
            h.remove()
    return sig


def _device_key(device: torch.device, layout: str) -> dict:
    from .env import _cpu_name

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name()
    return {"device": name, "machine": platform.machine(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "layout": layout}


def _layer_module(sig: str, g: int, device: torch.device) -> nn.Module:
    from ..export import ChannelPermute, PermutedGroupConv2d

    cout, cin, kh, kw, sh, sw, ph, pw = map(int, sig.split(",")[:8])
    conv = nn.Conv2d(cin, cout, (kh, kw), (sh, sw), (ph, pw), groups=g, bias=False)
    if g == 1:  # an unsparsified layer needs no gathers
        return conv.eval().to(device)
    gen = np.random.default_rng(0)
    return PermutedGroupConv2d(ChannelPermute(gen.permutation(cin)), conv, ChannelPermute(gen.permutation(cout))).eval().to(device)


def measure_latency_table(sparsifier, example_input: torch.Tensor, *, device: str | torch.device = "cpu",
                          layout: str = "nchw", cache_dir: str | Path | None = None, repeats: int = 5,
                          timer: Callable | None = None) -> dict[str, dict[int, float]]:
    """``{layer: {G: seconds}}`` for every sparsified layer and admissible ``G`` (the grouped conv with
    its two gathers; ``G = 1`` the dense conv), minimum over ``repeats`` interleaved rounds.

    Cached in ``cache_dir/<key>.json`` (key: sha1 of device name, torch version, threads, layout);
    entries are per layer signature (shape, stride, input size), so only new shapes are measured.
    """
    from .harness import interleaved_order, measure

    timer = timer or measure
    device = torch.device(device)
    if layout not in ("nchw", "cl"):
        raise ValueError(f"layout must be 'nchw' or 'cl', got {layout!r}")
    sigs = layer_signatures(sparsifier, example_input)
    meta = _device_key(device, layout)
    key = hashlib.sha1(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:16]
    path = Path(cache_dir or default_cache_dir()) / f"{key}.json"
    cache = json.loads(path.read_text()) if path.exists() else {"meta": meta, "entries": {}}
    entries: dict = cache["entries"]
    fmt = torch.channels_last if layout == "cl" else torch.contiguous_format
    todo = sorted({s for s in sigs.values() if s not in entries})
    for sig in todo:
        cout, cin = map(int, sig.split(",")[:2])
        n, h, w = map(int, sig.split(",")[8:])
        x = torch.randn(n, cin, h, w, device=device).contiguous(memory_format=fmt)
        gs = admissible_groups(cout, cin)
        mods = [_layer_module(sig, g, device).to(memory_format=fmt) for g in gs]
        best = [float("inf")] * len(gs)
        with torch.inference_mode():
            for m in mods:
                m(x)
            for _, i in interleaved_order(len(gs), repeats):
                best[i] = min(best[i], timer(lambda m=mods[i]: m(x), device))
        entries[sig] = {str(g): t for g, t in zip(gs, best)}
    if todo:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(cache, indent=1, sort_keys=True))
        tmp.replace(path)
    return {name: {int(g): float(t) for g, t in entries[sig].items()} for name, sig in sigs.items()}


def latency_target(sparsifier, table: Mapping[str, Mapping[int, float]], budget: float, fixed: float = 0.0) -> LatencyResult:
    """Choose every layer's ``G`` by :func:`latency_search` on the sparsifier's kept fractions and
    set them (``StructuredSparsifier.set_groups``)."""
    fractions = {n: {g: f for g, f in fr.items() if g in table[n]} for n, fr in sparsifier.kept_fractions().items()}
    sizes = {n: st.size for n, st in sparsifier.layers.items()}
    res = latency_search(fractions, sizes, table, budget, fixed)
    sparsifier.set_groups(res.groups)
    return res
