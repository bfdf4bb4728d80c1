"""Datasets: CIFAR-10/100 and ImageFolder behind one builder, one subset rule, one seeding rule.

* :func:`build_datasets` -> :class:`DataBundle`; :func:`make_loaders` -> :class:`Loaders`
  (``set_epoch`` applies :mod:`strucspars_viz.seeding`);
* :mod:`.roots` -- the data-root rule (named root > ``$STRUCSPARS_DATA`` > ``./data`` > bundled
  sample; a named root never falls back) and :data:`SAMPLE_ROOT` (package data);
* :mod:`.cifar` -- CIFAR batch files, read with a restricted unpickler and validated;
* :mod:`.imagefolder` -- ImageNet-style folders; :mod:`.subsets` -- the class-balanced subset rule;
* :mod:`.fake` -- tiny on-disk fakes for tests (imported explicitly: ``strucspars_viz.data.fake``).
"""
from .builder import DATASETS, DataBundle, build_datasets
from .cifar import CifarArrays, RestrictedUnpickler, cifar_mean_std, find_cifar, load_cifar, read_pickle
from .cifar_dataset import CifarTensorDataset
from .compat import CifarInfo, cifar_loaders
from .imagefolder import IMAGENET_MEAN, IMAGENET_STD, find_imagefolder, imagenet_datasets, imagenet_transforms
from .loaders import Loaders, ShardSampler, make_loaders, worker_seed
from .roots import DATA_ENV, SAMPLE_ROOT, data_root_candidates, resolve_data_root
from .subsets import balanced_subset, subset_indices

__all__ = [
    "DATASETS", "DATA_ENV", "IMAGENET_MEAN", "IMAGENET_STD", "SAMPLE_ROOT",
    "CifarArrays", "CifarInfo", "CifarTensorDataset", "DataBundle", "Loaders", "RestrictedUnpickler", "ShardSampler",
    "balanced_subset", "build_datasets", "cifar_loaders", "cifar_mean_std", "data_root_candidates", "find_cifar",
    "find_imagefolder", "imagenet_datasets", "imagenet_transforms", "load_cifar", "make_loaders", "read_pickle",
    "resolve_data_root", "subset_indices", "worker_seed",
]
