"""The torch dataset over in-memory CIFAR arrays, with the standard CIFAR augmentation (SPEC §5).

Train: pad 4 pixels with zeros, take a random 32x32 crop, flip horizontally with probability 1/2;
then ``x = (img / 255 - mean) / std`` per channel. Eval: normalisation only.
The random draws come from ``generator`` (reseeded per epoch by
:meth:`strucspars_viz.data.Loaders.set_epoch`, per worker by the loaders' ``worker_init_fn``).
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from .cifar import CifarArrays, cifar_mean_std

__all__ = ["CifarTensorDataset"]


class CifarTensorDataset(Dataset):
    """Torch dataset over :class:`CifarArrays`; items are ``(float32 (3, 32, 32) tensor, int)``.

    Parameters
    ----------
    arrays : the loaded split.
    indices : optional subset (e.g. from :func:`strucspars_viz.data.subset_indices`).
    train_augment : CIFAR pad-4 random crop + random horizontal flip.
    mean, std : normalisation; default from :func:`cifar_mean_std` (chosen by the class count).
    generator : torch RNG for augmentation; ``None`` uses the global RNG. With ``num_workers > 0``
        each worker holds a copy of it, which the loaders' ``worker_init_fn`` reseeds per worker
        (else every worker would produce the same crops).
    """

    def __init__(
        self,
        arrays: CifarArrays,
        indices: np.ndarray | None = None,
        train_augment: bool = False,
        mean: tuple[float, ...] | None = None,
        std: tuple[float, ...] | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        images, labels = arrays.images, arrays.labels
        if indices is not None:
            images, labels = images[indices], labels[indices]
        # CHW uint8 once up front: 4x smaller than float and the crop/flip work on it directly.
        self.images = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
        self.labels = torch.from_numpy(np.asarray(labels, dtype=np.int64))
        self.classes = list(arrays.classes)
        default_mean, default_std = cifar_mean_std("cifar100" if len(arrays.classes) == 100 else "cifar10")
        self.mean = torch.tensor(mean or default_mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std or default_std, dtype=torch.float32).view(3, 1, 1)
        self.train_augment = train_augment
        self.generator = generator

    @property
    def targets(self) -> list[int]:
        """Labels as a list, under the name torchvision datasets use."""
        return self.labels.tolist()

    def __len__(self) -> int:
        return len(self.labels)

    def _augment(self, img: torch.Tensor) -> torch.Tensor:
        padded = torch.nn.functional.pad(img, (4, 4, 4, 4))
        i, j = torch.randint(0, 9, (2,), generator=self.generator).tolist()
        out = padded[:, i : i + 32, j : j + 32]
        if torch.rand((), generator=self.generator).item() < 0.5:
            out = out.flip(2)
        return out

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        img = self.images[index]
        if self.train_augment:
            img = self._augment(img)
        x = (img.float() / 255.0 - self.mean) / self.std
        return x, int(self.labels[index])
