"""Temporary compatibility alias: the ImageFolder code lives in :mod:`strucspars_viz.data.imagefolder`
and the fake writer in :mod:`strucspars_viz.data.fake`. Remove once notebook 05 and the old trainer
import from there."""
from .data.fake import make_fake_imagefolder  # noqa: F401
from .data.imagefolder import (  # noqa: F401
    IMAGENET_MEAN,
    IMAGENET_STD,
    find_imagefolder,
    imagenet_datasets,
    imagenet_transforms,
)

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "find_imagefolder", "imagenet_datasets", "imagenet_transforms",
           "make_fake_imagefolder"]
