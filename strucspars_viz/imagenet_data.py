"""ImageNet-style data: a torchvision ``ImageFolder`` root with the SPEC §5 augmentation.

Layout expected under ``root``: ``train/<class>/*.JPEG`` and ``val/<class>/*.JPEG`` (the usual
``ILSVRC2012`` folder layout after sorting the validation images into class folders). Train:
random-resized crop + horizontal flip; eval: resize ``256/224 * size`` then centre crop ``size``
(256 / 224 at the default ``size=224``). Nothing is downloaded: ImageNet cannot be fetched
automatically.

:func:`make_fake_imagefolder` writes a tiny procedurally generated ImageFolder (coloured shapes
with noise, one shape/colour combination per class) so that notebooks and tests exercise the
real loader code in quick mode.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "find_imagefolder", "imagenet_datasets", "imagenet_transforms",
           "make_fake_imagefolder"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def find_imagefolder(root: str | Path) -> tuple[Path, Path]:
    """``(train_dir, val_dir)`` under ``root``; raises ``FileNotFoundError`` naming the paths tried."""
    base = Path(root).expanduser()
    train, val = base / "train", base / "val"
    missing = [p for p in (train, val) if not p.is_dir()]
    if missing:
        raise FileNotFoundError(
            f"ImageFolder dataset not found: missing {', '.join(str(p) for p in missing)}. "
            f"Expected {base}/train/<class>/<image> and {base}/val/<class>/<image> "
            "(pass --data-root <folder holding train/ and val/>)."
        )
    return train, val


def imagenet_transforms(size: int = 224, train: bool = True):
    """SPEC §5: train = RandomResizedCrop(size) + flip; eval = Resize(size * 256/224) + CenterCrop(size)."""
    from torchvision import transforms as T

    norm = T.Normalize(IMAGENET_MEAN, IMAGENET_STD)
    if train:
        return T.Compose([T.RandomResizedCrop(size), T.RandomHorizontalFlip(), T.ToTensor(), norm])
    return T.Compose([T.Resize(int(round(size * 256 / 224))), T.CenterCrop(size), T.ToTensor(), norm])


def imagenet_datasets(root: str | Path, size: int = 224):
    """``(train_dataset, val_dataset)`` as torchvision ``ImageFolder`` objects with the SPEC §5 transforms."""
    from torchvision.datasets import ImageFolder

    train_dir, val_dir = find_imagefolder(root)
    train = ImageFolder(str(train_dir), imagenet_transforms(size, True))
    val = ImageFolder(str(val_dir), imagenet_transforms(size, False))
    if train.classes != val.classes:
        raise ValueError(f"{train_dir} and {val_dir} have different class folders: {len(train.classes)} vs {len(val.classes)}")
    return train, val


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
