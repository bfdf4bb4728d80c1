"""The one seeding rule of the package: every random stream is derived from ``(seed, epoch, rank)``.

Re-deriving each stream at the start of every epoch (instead of carrying one generator through the
run) is what makes a resumed run equal an uninterrupted one: epoch ``e`` draws the same shuffling
order and the same augmentations whether or not the process restarted before it.

* :func:`seed_everything` -- Python, NumPy and torch global generators, once per run;
* :func:`shuffle_seed` -- the order in which epoch ``e`` visits the training set;
* :func:`augment_seed` -- the random crops / flips of epoch ``e`` on rank ``r``.
"""
from __future__ import annotations

import random

import numpy as np
import torch

__all__ = ["augment_seed", "seed_everything", "shuffle_seed"]


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's legacy global generator and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def shuffle_seed(seed: int, epoch: int) -> int:
    """Seed of the training-set order in (0-based) ``epoch``.

    >>> shuffle_seed(0, 3), shuffle_seed(1, 0)
    (3, 100003)
    """
    return int(seed) * 100003 + int(epoch)


def augment_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """Seed of the augmentation stream of ``epoch`` on ``rank`` (distinct per rank under DDP).

    >>> augment_seed(0, 0), augment_seed(0, 1, rank=1)
    (1, 1002)
    """
    return (int(seed) * 1000 + int(epoch)) * 1000 + int(rank) + 1
