"""``SeededImageFolder``: torchvision's ``ImageFolder`` with a class-balanced subset and seeded transforms.

torchvision's random transforms draw from torch's global RNG. Each item here is transformed inside
:func:`torch.random.fork_rng` seeded by one draw from the dataset's own ``generator``, so the
augmentation of an epoch is fixed by that generator (reseeded per epoch by
:meth:`strucspars_viz.data.Loaders.set_epoch`) and the caller's global RNG is left untouched.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torchvision.datasets import ImageFolder

from .subsets import subset_indices

__all__ = ["SeededImageFolder"]


class SeededImageFolder(ImageFolder):
    """``ImageFolder`` over ``root/<class>/<image>``, optionally restricted to a class-balanced subset.

    Parameters
    ----------
    root : the split folder (``train/`` or ``val/``).
    transform : applied to each PIL image.
    subset : keep about this many images, class-balanced (:func:`subset_indices` with ``seed``);
        ``None`` or at least the folder size keeps everything.
    generator : drives the random transforms; ``None`` leaves them on torch's global RNG.

    Items are ``(transform(image), int)``.
    """

    def __init__(self, root: str | Path, transform=None, subset: int | None = None, seed: int = 0,
                 generator: torch.Generator | None = None) -> None:
        super().__init__(str(root), transform=transform)
        idx = subset_indices(self.targets, subset, seed) if len(self.targets) else None
        if idx is not None:
            self.samples = [self.samples[int(i)] for i in idx]
            self.targets = [s[1] for s in self.samples]
            self.imgs = self.samples
        self.generator = generator

    def __getitem__(self, index: int):
        if self.generator is None:
            return super().__getitem__(index)
        seed = int(torch.randint(0, 2**62, (1,), generator=self.generator))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return super().__getitem__(index)
