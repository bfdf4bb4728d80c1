"""The one dataset builder: CIFAR-10, CIFAR-100 and ImageFolder (ImageNet) behind one call.

``build_datasets`` returns a :class:`DataBundle` with parallel names for both splits
(``train_set`` / ``test_set``, ``n_train`` / ``n_test`` in ``description``). The demo, the
notebooks and ``strucspars-viz train`` all build their data here, and feed it to
:func:`strucspars_viz.data.make_loaders`, so one seed gives one data stream everywhere.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import Dataset

from .cifar import CIFAR_NAMES, cifar_mean_std, load_cifar
from .cifar_dataset import CifarTensorDataset
from .subsets import subset_indices

__all__ = ["DATASETS", "DataBundle", "build_datasets"]

DATASETS = (*CIFAR_NAMES, "imagenet")


@dataclass(frozen=True)
class DataBundle:
    """What :func:`build_datasets` built.

    ``train_set`` / ``test_set``: torch datasets of ``(float32 (3, H, W), int)``; ``num_classes``;
    ``input_size``: ``(3, H, W)``; ``description``: strict-JSON-able dict (``dataset``, ``source``,
    ``is_sample``, ``n_train``, ``n_test``, ``num_classes``, ``input_size``, ``train_subset``,
    ``test_subset``, ``seed``); ``aug_generator``: the generator the train augmentation draws from
    (reseeded by :meth:`Loaders.set_epoch`); ``classes``: class names in label order.
    """

    train_set: Dataset
    test_set: Dataset
    num_classes: int
    input_size: tuple[int, int, int]
    description: dict
    aug_generator: torch.Generator | None = None
    classes: tuple[str, ...] = field(default=())

    @property
    def n_train(self) -> int:
        return len(self.train_set)  # type: ignore[arg-type]

    @property
    def n_test(self) -> int:
        return len(self.test_set)  # type: ignore[arg-type]


def _check_subset(name: str, n: int | None) -> None:
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"{name} must be a positive integer or None (everything), got {n!r}")


def build_datasets(dataset: str, root: str | Path | None = None, *, train_subset: int | None = None,
                   test_subset: int | None = None, seed: int = 0, image_size: int = 224, download: bool = False,
                   num_workers: int = 0) -> DataBundle:
    """Train and test datasets of ``dataset`` ("cifar10" | "cifar100" | "imagenet"), SPEC §5 augmentation.

    ``root`` follows the data-root rule (:mod:`strucspars_viz.data.roots`): a named root that does not
    hold the data raises ``FileNotFoundError``; only with nothing named does CIFAR-10 fall back to the
    bundled sample (announced once). ``train_subset`` / ``test_subset``: class-balanced subsets of
    about that many images (:func:`subset_indices` with ``seed``; ``None`` or more than the split:
    everything). ``image_size``: ImageFolder crop size (CIFAR is always 32). ``download``: CIFAR only,
    never unless asked. ``num_workers`` is accepted for symmetry with :func:`make_loaders`: the
    augmentation generator is reseeded per worker there, so the datasets do not depend on it.
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {list(DATASETS)}")
    _check_subset("train_subset", train_subset)
    _check_subset("test_subset", test_subset)
    if int(num_workers) < 0:
        raise ValueError(f"num_workers must be >= 0, got {num_workers}")
    gen = torch.Generator()
    if dataset == "imagenet":
        return _build_imagefolder(root, train_subset, test_subset, seed, int(image_size), download, gen)
    train_arr = load_cifar(dataset, root, train=True, download=download)
    test_arr = load_cifar(dataset, root, train=False, download=download)
    mean, std = cifar_mean_std(dataset)
    train = CifarTensorDataset(train_arr, subset_indices(train_arr.labels, train_subset, seed), True, mean, std, gen)
    test = CifarTensorDataset(test_arr, subset_indices(test_arr.labels, test_subset, seed), False, mean, std)
    desc = {"dataset": dataset, "source": str(train_arr.source), "is_sample": bool(train_arr.is_sample),
            "n_train": len(train), "n_test": len(test), "num_classes": len(train_arr.classes),
            "input_size": [3, 32, 32], "train_subset": train_subset, "test_subset": test_subset, "seed": int(seed)}
    return DataBundle(train, test, len(train_arr.classes), (3, 32, 32), desc, gen, tuple(train_arr.classes))


def _build_imagefolder(root, train_subset, test_subset, seed, size, download, gen) -> DataBundle:
    from .imagefolder import find_imagefolder, imagenet_datasets

    if download:
        raise ValueError("download=True is not possible for imagenet: it cannot be fetched automatically; "
                         "pass --data-root <folder holding train/ and val/>")
    train, test = imagenet_datasets(root, size, train_subset=train_subset, val_subset=test_subset, seed=seed,
                                    generator=gen)
    train_dir, _ = find_imagefolder(root)
    desc = {"dataset": "imagenet", "source": str(train_dir.parent), "is_sample": False,
            "n_train": len(train), "n_test": len(test), "num_classes": len(train.classes),
            "input_size": [3, size, size], "train_subset": train_subset, "test_subset": test_subset,
            "seed": int(seed)}
    return DataBundle(train, test, len(train.classes), (3, size, size), desc, gen, tuple(train.classes))
