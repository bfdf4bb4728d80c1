"""Pick a network width whose parameter count lands near a target (for matched-size comparisons)."""
from __future__ import annotations

from typing import Callable, Iterable, NamedTuple

from torch import nn

__all__ = ["WidthMatch", "count_params", "match_width"]


class WidthMatch(NamedTuple):
    width: int
    params: int
    target: int

    @property
    def rel_error(self) -> float:
        """``(params - target) / target``."""
        return (self.params - self.target) / self.target


def count_params(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def match_width(build: Callable[[int], nn.Module], target: int, widths: Iterable[int], *,
                tol: float = 0.05) -> WidthMatch:
    """The width among ``widths`` whose model has the parameter count closest to ``target``.

    ``build(width)`` returns the network; widths it rejects (ValueError: sizes not divisible) are
    skipped. Raises a ValueError naming the closest candidates when none lands within ``tol``.
    """
    if target < 1:
        raise ValueError(f"match_width: target must be >= 1 parameter, got {target}")
    tried: list[WidthMatch] = []
    for w in widths:
        try:
            model = build(int(w))
        except ValueError:
            continue
        tried.append(WidthMatch(int(w), count_params(model), int(target)))
    if not tried:
        raise ValueError("match_width: no candidate width builds a valid network")
    best = min(tried, key=lambda m: (abs(m.params - target), m.width))
    if abs(best.rel_error) > tol:
        near = sorted(tried, key=lambda m: abs(m.params - target))[:3]
        raise ValueError(f"match_width: no width within {tol:.0%} of {target} parameters; closest: "
                         + ", ".join(f"width {m.width} -> {m.params} ({m.rel_error:+.1%})" for m in near))
    return best
