"""Train / test loaders over a :class:`DataBundle`, seeded by the one seeding rule.

:meth:`Loaders.set_epoch` re-derives every random stream of epoch ``e`` from ``(seed, e, rank)``
(:mod:`strucspars_viz.seeding`), which is what lets a resumed run equal an uninterrupted one:

* order: a :class:`~torch.utils.data.DistributedSampler` (``world`` replicas, this ``rank``) whose
  permutation is drawn from ``torch.Generator().manual_seed(shuffle_seed(seed, e))``;
* augmentation, ``num_workers == 0``: the bundle's ``aug_generator`` reseeded with
  ``augment_seed(seed, e, rank)``;
* augmentation, ``num_workers > 0``: each worker ``w`` reseeds its copy of the dataset's generator
  (and torch / numpy / random) with ``augment_seed(seed, e, rank) * 1000 + w`` in ``worker_init_fn``.

Evaluation: rank ``r`` of ``w`` takes indices ``r, r + w, ...`` in order (no padding, no repeats).
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler, Sampler

from ..seeding import augment_seed, shuffle_seed
from .builder import DataBundle

__all__ = ["Loaders", "ShardSampler", "make_loaders", "worker_seed"]

_MAX_WORKERS = 1000


def worker_seed(seed: int, epoch: int, rank: int, worker_id: int) -> int:
    """Seed of DataLoader worker ``worker_id`` in ``epoch`` on ``rank`` (distinct for every tuple).

    >>> worker_seed(0, 0, 0, 0), worker_seed(0, 0, 0, 1)
    (1000, 1001)
    """
    if not 0 <= int(worker_id) < _MAX_WORKERS:
        raise ValueError(f"worker_id must lie in [0, {_MAX_WORKERS - 1}], got {worker_id}")
    return augment_seed(seed, epoch, rank) * _MAX_WORKERS + int(worker_id)


class ShardSampler(Sampler[int]):
    """Evaluation sampler: rank ``r`` of ``w`` takes indices ``r, r + w, ...`` (no padding, no repeats).

    >>> list(ShardSampler(7, rank=1, world=3))
    [1, 4]
    """

    def __init__(self, n: int, rank: int = 0, world: int = 1) -> None:
        if not 0 <= rank < world:
            raise ValueError(f"rank must lie in [0, world={world}), got {rank}")
        self.indices = list(range(rank, n, world))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def _generator_holder(ds):
    # Unwrap torch Subset-like wrappers to the dataset that owns the augmentation generator.
    while not hasattr(ds, "generator") and hasattr(ds, "dataset"):
        ds = ds.dataset
    return ds


@dataclass
class _WorkerSeeder:
    """``worker_init_fn``: picklable; reads ``epoch`` as set by :meth:`Loaders.set_epoch` before iteration."""

    seed: int
    rank: int
    epoch: int = 0

    def __call__(self, worker_id: int) -> None:
        s = worker_seed(self.seed, self.epoch, self.rank, worker_id)
        torch.manual_seed(s)
        np.random.seed(s % 2**32)
        random.seed(s)
        info = torch.utils.data.get_worker_info()
        gen = getattr(_generator_holder(info.dataset), "generator", None) if info is not None else None
        if isinstance(gen, torch.Generator):
            gen.manual_seed(s)


@dataclass
class Loaders:
    """``train`` / ``test`` DataLoaders of one bundle; call :meth:`set_epoch` before every epoch."""

    train: DataLoader
    test: DataLoader
    train_sampler: DistributedSampler
    bundle: DataBundle
    seed: int
    rank: int = 0
    world: int = 1
    epoch: int = 0
    loader_generator: torch.Generator = field(default_factory=torch.Generator)
    _worker_seeder: _WorkerSeeder | None = None

    def set_epoch(self, epoch: int) -> None:
        """Seed the order and the augmentation of (0-based) ``epoch`` by the one seeding rule."""
        if isinstance(epoch, bool) or int(epoch) != epoch or epoch < 0:
            raise ValueError(f"epoch must be a non-negative integer, got {epoch!r}")
        e = int(epoch)
        self.epoch = e
        # DistributedSampler draws its permutation from manual_seed(sampler.seed + sampler.epoch).
        self.train_sampler.seed = shuffle_seed(self.seed, e) - e
        self.train_sampler.set_epoch(e)
        # Base seed of DataLoader workers (the per-worker streams are set by _WorkerSeeder).
        self.loader_generator.manual_seed(shuffle_seed(self.seed, e))
        if self.bundle.aug_generator is not None:
            self.bundle.aug_generator.manual_seed(augment_seed(self.seed, e, self.rank))
        if self._worker_seeder is not None:
            self._worker_seeder.epoch = e


def make_loaders(bundle: DataBundle, batch_size: int, eval_batch_size: int = 256, *, seed: int = 0,
                 num_workers: int = 0, rank: int = 0, world: int = 1, pin_memory: bool = False) -> Loaders:
    """Loaders over ``bundle`` for ``rank`` of ``world`` processes, already set to epoch 0.

    Train: shuffled by a ``DistributedSampler`` (``drop_last=False``: the last batch may be short;
    with ``world > 1`` the sampler pads by repeating a few indices, as torch does). Test: in order,
    sharded by :class:`ShardSampler`. ``num_workers > 0`` uses non-persistent workers so that each
    epoch's workers are seeded from that epoch.
    """
    for name, v in (("batch_size", batch_size), ("eval_batch_size", eval_batch_size), ("world", world)):
        if isinstance(v, bool) or int(v) != v or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if not 0 <= int(num_workers) < _MAX_WORKERS:
        raise ValueError(f"num_workers must lie in [0, {_MAX_WORKERS - 1}], got {num_workers}")
    if not 0 <= rank < world:
        raise ValueError(f"rank must lie in [0, world={world}), got {rank}")
    if len(bundle.train_set) == 0:  # type: ignore[arg-type]
        raise ValueError(f"the training set of {bundle.description.get('dataset')} is empty")
    sampler = DistributedSampler(bundle.train_set, num_replicas=world, rank=rank, shuffle=True, seed=0,
                                 drop_last=False)
    gen = torch.Generator()
    seeder = _WorkerSeeder(int(seed), int(rank)) if num_workers > 0 else None
    common = {"num_workers": int(num_workers), "pin_memory": bool(pin_memory), "persistent_workers": False,
              "worker_init_fn": seeder}
    train = DataLoader(bundle.train_set, batch_size=int(batch_size), sampler=sampler, generator=gen,
                       drop_last=False, **common)
    test = DataLoader(bundle.test_set, batch_size=int(eval_batch_size),
                      sampler=ShardSampler(len(bundle.test_set), rank, world), **common)  # type: ignore[arg-type]
    loaders = Loaders(train, test, sampler, bundle, int(seed), int(rank), int(world), 0, gen, seeder)
    loaders.set_epoch(0)
    return loaders
