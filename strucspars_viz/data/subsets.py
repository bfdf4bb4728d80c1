"""The one subset rule of the package: class-balanced, seeded, used for CIFAR and ImageFolder alike.

``subset_indices(labels, n, seed)`` keeps ``k = min(max(1, n // C), m)`` images of every one of the
``C`` classes present (``m`` = size of the smallest class), drawn without replacement by
``numpy.random.default_rng(seed)``, classes visited in increasing label order, indices sorted.
``n = None`` or ``n >= len(labels)`` keeps everything (``None`` is returned). So ``n`` images when
``C`` divides ``n`` and the classes are large enough; fewer when the smallest class caps ``k``.
"""
from __future__ import annotations

import numpy as np

__all__ = ["balanced_subset", "subset_indices"]


def balanced_subset(labels: np.ndarray, per_class: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of ``per_class`` examples of every class in ``labels``, drawn without
    replacement with ``numpy.random.default_rng(seed)``, classes visited in increasing order.

    Raises ``ValueError`` if a class has fewer than ``per_class`` examples.

    >>> balanced_subset(np.array([0, 0, 1, 1, 1]), 1, seed=0).size
    2
    """
    labels = np.asarray(labels)
    if int(per_class) < 0:
        raise ValueError(f"per_class must be >= 0, got {per_class}")
    rng = np.random.default_rng(seed)
    picks = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if len(idx) < per_class:
            raise ValueError(f"class {c} has {len(idx)} examples, fewer than per_class={per_class}")
        picks.append(rng.choice(idx, size=per_class, replace=False))
    return np.sort(np.concatenate(picks)) if picks else np.zeros(0, dtype=np.int64)


def subset_indices(labels: np.ndarray, n: int | None, seed: int = 0) -> np.ndarray | None:
    """Class-balanced indices of about ``n`` images (the rule in the module docstring); ``None`` for "all".

    >>> labels = np.repeat(np.arange(4), 10)
    >>> np.bincount(labels[subset_indices(labels, 8, seed=0)]).tolist()
    [2, 2, 2, 2]
    >>> subset_indices(labels, 40) is None and subset_indices(labels, None) is None
    True
    """
    if n is None:
        return None
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise ValueError(f"subset size must be a positive integer or None (everything), got {n!r}")
    labels = np.asarray(labels, dtype=np.int64)
    if n >= len(labels):
        return None
    counts = np.bincount(labels)
    present = counts[counts > 0]
    per_class = max(1, min(int(n) // len(present), int(present.min())))
    return balanced_subset(labels, per_class, seed)
