"""``cifar_loaders``: the older one-call API, now a thin wrapper over ``build_datasets`` + ``make_loaders``.

It yields exactly the stream of ``make_loaders(build_datasets(...), ...)`` at epoch 0, so the demo,
notebook 03 and ``train`` agree for one seed. For more than one epoch use :func:`make_loaders` and
call :meth:`Loaders.set_epoch` (the loaders returned here stay at epoch 0's order).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch.utils.data import DataLoader

from .builder import build_datasets
from .cifar import cifar_mean_std
from .loaders import make_loaders

__all__ = ["CifarInfo", "cifar_loaders"]


@dataclass
class CifarInfo:
    """What :func:`cifar_loaders` loaded: dataset name, class names, batches folder, whether it is
    the bundled sample, the number of train/test images used and the normalisation constants."""

    name: str
    classes: list[str]
    source: Path
    is_sample: bool
    n_train: int
    n_test: int
    mean: tuple[float, ...]
    std: tuple[float, ...]


def cifar_loaders(name: str = "cifar10", root: str | Path | None = None, batch_size: int = 128,
                  train_subset: int | None = None, test_subset: int | None = None, num_workers: int = 0,
                  seed: int = 0, download: bool = False) -> tuple[DataLoader, DataLoader, CifarInfo]:
    """Train and test loaders with the standard CIFAR recipe (see :func:`build_datasets`).

    Train: pad-4 random crop + flip, normalised, shuffled; test: normalised, in order, batches of
    ``batch_size``. Subsets are class-balanced; shuffling and augmentation follow the one seeding
    rule at epoch 0.
    """
    if name not in ("cifar10", "cifar100"):
        raise ValueError(f"unknown dataset {name!r}; expected one of ['cifar10', 'cifar100']")
    bundle = build_datasets(name, root, train_subset=train_subset, test_subset=test_subset, seed=seed,
                            download=download, num_workers=num_workers)
    loaders = make_loaders(bundle, batch_size, batch_size, seed=seed, num_workers=num_workers)
    mean, std = cifar_mean_std(name)
    d = bundle.description
    info = CifarInfo(name=name, classes=list(bundle.classes), source=Path(d["source"]), is_sample=d["is_sample"],
                     n_train=d["n_train"], n_test=d["n_test"], mean=mean, std=std)
    return loaders.train, loaders.test, info
