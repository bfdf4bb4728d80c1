"""Tiny fake datasets written to disk in the real layouts, so tests and quick-mode notebooks exercise
the real loader code (as torchvision's own dataset tests do).

* :func:`write_fake_cifar` -- ``cifar-10-batches-py`` / ``cifar-100-python`` with random pixels;
* :func:`make_fake_imagefolder` -- ``train/`` and ``val/`` class folders of procedurally drawn PNGs
  (a shape and colour per class, plus noise), learnable enough for a smoke run.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from .cifar import _spec

__all__ = ["dump_batch", "make_fake_imagefolder", "write_fake_cifar"]


def dump_batch(path: str | Path, obj: object) -> None:
    """Pickle ``obj`` with protocol 2, as the official CIFAR batch files are."""
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def _labels(n: int, num_classes: int, balanced: bool, rng: np.random.Generator) -> list[int]:
    if balanced:  # every class as often as possible (n // C or one more), in random order
        return [int(x) for x in rng.permutation(np.arange(n) % num_classes)]
    return [int(x) for x in rng.integers(0, num_classes, n)]


def _batch(labels: list[int], label_key: bytes, rng: np.random.Generator) -> dict:
    n = len(labels)
    return {
        b"batch_label": b"fake",
        label_key: labels,
        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        b"filenames": [b"f%d.png" % i for i in range(n)],
    }


def write_fake_cifar(root: str | Path, name: str = "cifar10", n_train: int = 20, n_test: int = 10, *,
                     seed: int = 0, balanced: bool = True) -> Path:
    """Write a fake ``name`` ("cifar10" | "cifar100") under ``root``; returns the batches folder.

    CIFAR-10: ``n_train`` images split as evenly as possible over ``data_batch_1..5``; CIFAR-100: one
    ``train`` file (with ``coarse_labels = fine // 5``). Labels cycle through the classes in a random
    order if ``balanced`` (so each class has ``n // C`` or one more), else are uniform draws.

    >>> import tempfile
    >>> from strucspars_viz.data import load_cifar
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     folder = write_fake_cifar(tmp, n_train=30, n_test=10)
    ...     load_cifar("cifar10", tmp, allow_sample=False).images.shape
    (30, 32, 32, 3)
    """
    spec = _spec(name)
    folder = Path(root) / spec.folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    train_labels = _labels(n_train, spec.num_classes, balanced, rng)
    if name == "cifar10":
        for i, part in enumerate(np.array_split(np.arange(n_train), len(spec.train_files))):
            dump_batch(folder / spec.train_files[i], _batch([train_labels[j] for j in part], spec.label_key, rng))
        dump_batch(folder / spec.test_file, _batch(_labels(n_test, 10, balanced, rng), spec.label_key, rng))
        dump_batch(folder / spec.meta_file, {spec.names_key: [b"c%d" % i for i in range(10)],
                                             b"num_cases_per_batch": n_train // 5, b"num_vis": 3072})
        return folder
    for fname, labels in ((spec.train_files[0], train_labels), (spec.test_file, _labels(n_test, 100, balanced, rng))):
        b = _batch(labels, spec.label_key, rng)
        b[b"coarse_labels"] = [x // 5 for x in labels]
        dump_batch(folder / fname, b)
    dump_batch(folder / spec.meta_file, {spec.names_key: [b"f%02d" % i for i in range(100)],
                                         b"coarse_label_names": [b"k%d" % i for i in range(20)]})
    return folder


def _draw(cls: int, rng: np.random.Generator, size: int) -> np.ndarray:
    """One ``size x size`` RGB uint8 image of class ``cls``: a shape (disc, square, bar) in a class colour."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    cy, cx = rng.uniform(0.35, 0.65, 2)
    r = rng.uniform(0.15, 0.3)
    shape = cls % 3
    if shape == 0:
        mask = (yy - cy) ** 2 + (xx - cx) ** 2 < r**2
    elif shape == 1:
        mask = (abs(yy - cy) < r) & (abs(xx - cx) < r)
    else:
        mask = abs(yy - cy) < r / 3
    hue = (cls * 0.61803) % 1.0
    colour = 255 * np.array([abs(np.sin(np.pi * (hue + k / 3))) for k in range(3)])
    img = rng.normal(110, 30, (size, size, 3))
    img[mask] = colour + rng.normal(0, 20, (int(mask.sum()), 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def make_fake_imagefolder(root: str | Path, num_classes: int = 4, train_per_class: int = 8,
                          val_per_class: int = 4, size: int = 64, seed: int = 0) -> Path:
    """Write ``root/{train,val}/class_XX/img_YYY.png`` with procedurally generated images; returns ``root``."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    base = Path(root)
    for split, n in (("train", train_per_class), ("val", val_per_class)):
        for c in range(num_classes):
            folder = base / split / f"class_{c:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                Image.fromarray(_draw(c, rng, size)).save(folder / f"img_{i:03d}.png")
    return base
