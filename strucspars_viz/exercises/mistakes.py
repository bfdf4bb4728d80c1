"""The library of typical wrong versions, one tuple per exercise (used by the checkers and the tests).

Each :class:`~strucspars_viz.exercises.core.Mistake` is a deliberately wrong implementation with the
hint shown when a student's function behaves exactly like it on every case. The wrong versions live
beside their exercise (``shuffle.py``, ``blocks.py``, ...); this module only collects them.
"""
from __future__ import annotations

from .core import Mistake
from .registry import EXERCISES

__all__ = ["MISTAKES", "mistakes_of"]

#: ``{exercise name: (Mistake, ...)}``
MISTAKES: dict[str, tuple[Mistake, ...]] = {name: ex.mistakes for name, ex in EXERCISES.items()}


def mistakes_of(name: str) -> tuple[Mistake, ...]:
    """The typical wrong versions of one exercise."""
    try:
        return MISTAKES[name]
    except KeyError:
        raise KeyError(f"no exercise {name!r}; exercises: {', '.join(MISTAKES)}") from None
