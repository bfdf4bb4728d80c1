"""What each deploy step buys: the same compressed model after 0, 1-3 and 1-4 steps of
:func:`strucspars_viz.deploy.optimize_for_inference`, as variants for one interleaved sweep."""
from __future__ import annotations

import torch

from ..deploy import optimize_for_inference
from .backends import Config, example_input
from .harness import Variant

__all__ = ["deploy_step_variants"]


def deploy_step_variants(v: Variant, batch: int = 1, layout: str = "nchw", repeats: int = 3) -> list[Variant]:
    """``v`` as compressed (eager), after fold + BN folding + permutation pushing, and after the
    measured per-layer kernel choice (made on an input of ``batch`` in ``layout``). Speed-ups are
    relative to the compressed model as given."""
    x = example_input(v.input_size, Config(batch, layout), torch.device("cpu"))
    m = v.model.to(memory_format=torch.channels_last if layout == "cl" else torch.contiguous_format)
    graph = optimize_for_inference(m, x, choose=False)
    chosen, report = optimize_for_inference(m, x, repeats=repeats, return_report=True)
    base = dict(family=v.family, base=v.base, target=v.target, params=v.params, macs=v.macs)
    return [
        Variant(f"{v.name} compressed", v.model, v.input_size, **base),
        Variant(f"{v.name} +fold/BN/push", graph, v.input_size, reference=f"{v.name} compressed", **base),
        Variant(f"{v.name} +kernel choice", chosen, v.input_size, reference=f"{v.name} compressed",
                info={"choices": report.choices}, **base),
    ]
