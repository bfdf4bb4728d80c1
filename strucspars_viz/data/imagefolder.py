"""ImageNet-style data: a torchvision ``ImageFolder`` root with the SPEC §5 augmentation.

Layout: ``train/<class>/<image>`` and ``val/<class>/<image>`` (the usual ``ILSVRC2012`` layout after
sorting the validation images into class folders), under the data root itself or under
``<root>/imagenet/``. The root follows :mod:`strucspars_viz.data.roots` (named root >
``$STRUCSPARS_DATA`` > ``./data``; there is no bundled ImageNet sample). Nothing is downloaded:
ImageNet cannot be fetched automatically.

Train: ``RandomResizedCrop(size)`` + horizontal flip; eval: resize ``round(size * 256/224)`` then
centre crop ``size`` (256 / 224 at the default ``size=224``); both normalised with the ImageNet
mean/std. torchvision's transforms draw from torch's global RNG, so :class:`SeededImageFolder`
runs them inside :func:`torch.random.fork_rng` seeded from its own ``generator``: the crops of an
epoch then follow the one seeding rule like CIFAR's, and the caller's global RNG is untouched.
"""
from __future__ import annotations

from pathlib import Path

import torch

from .roots import SAMPLE, data_root_candidates, not_found, unnamed_tried

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "find_imagefolder", "imagenet_datasets",
           "imagenet_transforms"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _find_in(base: Path) -> tuple[Path, Path] | None:
    for folder in (base, base / "imagenet"):
        if (folder / "train").is_dir() and (folder / "val").is_dir():
            return folder / "train", folder / "val"
    return None


def find_imagefolder(root: str | Path | None = None) -> tuple[Path, Path]:
    """``(train_dir, val_dir)`` under the data root; ``FileNotFoundError`` naming the paths tried."""
    tried: list[Path] = []
    named = None
    for choice in data_root_candidates(root):
        if choice.origin == SAMPLE:
            continue
        named = choice if choice.named else None
        found = _find_in(choice.path)
        if found is not None:
            return found
        tried += [choice.path / "train", choice.path / "val", choice.path / "imagenet" / "train"]
    cwd = Path.cwd() / "data"
    tried = unnamed_tried(tried, [cwd / "train", cwd / "val", cwd / "imagenet" / "train"])
    fix = ("pass --data-root <folder holding train/ and val/> (root=...) or set $STRUCSPARS_DATA to it; "
           "ImageNet cannot be downloaded automatically")
    raise not_found("ImageFolder dataset", tried, "train/<class>/<image> and val/<class>/<image>", fix, named)


def imagenet_transforms(size: int = 224, train: bool = True):
    """SPEC §5: train = RandomResizedCrop(size) + flip; eval = Resize(size * 256/224) + CenterCrop(size)."""
    from torchvision import transforms as T

    if int(size) < 1:
        raise ValueError(f"image_size must be a positive number of pixels, got {size}")
    norm = T.Normalize(IMAGENET_MEAN, IMAGENET_STD)
    if train:
        return T.Compose([T.RandomResizedCrop(size), T.RandomHorizontalFlip(), T.ToTensor(), norm])
    return T.Compose([T.Resize(int(round(size * 256 / 224))), T.CenterCrop(size), T.ToTensor(), norm])


def imagenet_datasets(root: str | Path | None = None, size: int = 224, *, train_subset: int | None = None,
                      val_subset: int | None = None, seed: int = 0, generator: torch.Generator | None = None):
    """``(train, val)`` :class:`SeededImageFolder` datasets with the SPEC §5 transforms.

    ``train_subset`` / ``val_subset``: class-balanced subsets (:func:`strucspars_viz.data.subset_indices`
    with ``seed``); ``generator`` drives the train augmentation. Raises ``ValueError`` if the two
    splits have different class folders, ``FileNotFoundError`` if the layout is missing.
    """
    from .imagefolder_dataset import SeededImageFolder  # torchvision: slow import, only when used

    train_dir, val_dir = find_imagefolder(root)
    train = SeededImageFolder(train_dir, imagenet_transforms(size, True), train_subset, seed, generator)
    val = SeededImageFolder(val_dir, imagenet_transforms(size, False), val_subset, seed)
    if train.classes != val.classes:
        only_t = sorted(set(train.classes) - set(val.classes))[:5]
        only_v = sorted(set(val.classes) - set(train.classes))[:5]
        raise ValueError(f"{train_dir} and {val_dir} have different class folders ({len(train.classes)} vs "
                         f"{len(val.classes)}; only in train: {only_t}, only in val: {only_v})")
    return train, val
