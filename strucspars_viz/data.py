"""CIFAR-10 / CIFAR-100 loading from the python batch layout, without torchvision's md5 check.

Data are looked up under a *data root* (see :func:`resolve_data_root`): the ``root`` argument, then
``$STRUCSPARS_DATA``, then ``./data``, then the ``data/`` folder of this repository. Inside it the
usual ``cifar-10-batches-py`` / ``cifar-100-python`` folders are accepted at a few depths
(:func:`find_cifar`). The files are read directly with :mod:`pickle` and validated (shapes, dtypes,
label ranges), so rebuilt copies whose bytes differ from the official archive load fine.

If no CIFAR-10 is found, :func:`load_cifar` falls back to the small balanced sample bundled in
``data/cifar10-sample/`` (1,500 train / 500 test images) and warns; see ``data/README.md``.
Nothing is downloaded unless ``download=True`` is passed.
"""
from __future__ import annotations

import os
import pickle
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

__all__ = [
    "DATA_ENV",
    "REPO_DATA_DIR",
    "SAMPLE_ROOT",
    "CifarArrays",
    "CifarInfo",
    "CifarTensorDataset",
    "balanced_subset",
    "cifar_loaders",
    "cifar_mean_std",
    "find_cifar",
    "load_cifar",
    "resolve_data_root",
    "subset_indices",
]

DATA_ENV = "STRUCSPARS_DATA"
REPO_DATA_DIR = Path(__file__).resolve().parents[1] / "data"
SAMPLE_ROOT = REPO_DATA_DIR / "cifar10-sample"

_IMAGE_BYTES = 3 * 32 * 32


@dataclass(frozen=True)
class _Spec:
    folder: str
    train_files: tuple[str, ...]
    test_file: str
    meta_file: str
    label_key: bytes
    names_key: bytes
    num_classes: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


_SPECS: dict[str, _Spec] = {
    "cifar10": _Spec(
        folder="cifar-10-batches-py",
        train_files=tuple(f"data_batch_{i}" for i in range(1, 6)),
        test_file="test_batch",
        meta_file="batches.meta",
        label_key=b"labels",
        names_key=b"label_names",
        num_classes=10,
        mean=(0.4914, 0.4822, 0.4465),
        std=(0.2470, 0.2435, 0.2616),
    ),
    "cifar100": _Spec(
        folder="cifar-100-python",
        train_files=("train",),
        test_file="test",
        meta_file="meta",
        label_key=b"fine_labels",
        names_key=b"fine_label_names",
        num_classes=100,
        mean=(0.5071, 0.4865, 0.4409),
        std=(0.2673, 0.2564, 0.2762),
    ),
}


def _spec(name: str) -> _Spec:
    try:
        return _SPECS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; expected one of {sorted(_SPECS)}") from None


def resolve_data_root(root: str | Path | None = None) -> Path:
    """The data root: ``root`` if given, else ``$STRUCSPARS_DATA``, else ``./data`` if it exists,
    else the repository's ``data/`` folder (next to the package)."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    local = Path.cwd() / "data"
    if local.is_dir():
        return local
    return REPO_DATA_DIR


def _candidates(name: str, root: Path) -> list[Path]:
    folder = _spec(name).folder
    return [root, root / folder, root / name / folder]


def find_cifar(name: str, root: str | Path | None = None) -> Path:
    """The batches folder (``cifar-10-batches-py`` or ``cifar-100-python``) of dataset ``name``.

    Accepted layouts, with ``root`` resolved by :func:`resolve_data_root`: ``root`` itself is the
    batches folder, ``root/<folder>``, or ``root/<name>/<folder>``.

    Raises
    ------
    FileNotFoundError
        naming every path tried and how to point the loader at the data.
    """
    spec = _spec(name)
    base = resolve_data_root(root)
    tried = _candidates(name, base)
    # root itself only counts if it looks like the batches folder, else any data root would match.
    if base.is_dir() and (base.name == spec.folder or (base / spec.meta_file).is_file()):
        return base
    for path in tried[1:]:
        if path.is_dir():
            return path
    lines = "\n".join(f"  - {p}" for p in tried)
    raise FileNotFoundError(
        f"{name} not found. Looked for the '{spec.folder}' folder at:\n{lines}\n"
        f"Fix: pass root=<folder holding {spec.folder}>, set ${DATA_ENV} to it, "
        "or pass download=True if internet is available."
    )


@dataclass
class CifarArrays:
    """One split of CIFAR in memory.

    ``images``: uint8 ``(N, 32, 32, 3)`` (HWC, RGB); ``labels``: int64 ``(N,)``; ``classes``: class
    names from the meta file; ``source``: the batches folder read; ``is_sample``: True if this is the
    bundled 1,500/500-image sample rather than the full dataset.
    """

    images: np.ndarray
    labels: np.ndarray
    classes: list[str]
    source: Path
    is_sample: bool


def _read_pickle(path: Path) -> dict:
    if not path.is_file():
        raise ValueError(f"{path}: batch file is missing")
    try:
        with open(path, "rb") as f:
            obj = pickle.load(f, encoding="bytes")
    except Exception as err:  # pickle raises many types on corrupt input
        raise ValueError(f"{path}: could not unpickle ({type(err).__name__}: {err})") from err
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a pickled dict, got {type(obj).__name__}")
    return obj


def _require(obj: dict, path: Path, keys: tuple[bytes, ...]) -> None:
    missing = [k.decode() for k in keys if k not in obj]
    if missing:
        found = sorted(k.decode("latin1") if isinstance(k, bytes) else str(k) for k in obj)
        raise ValueError(f"{path}: missing key(s) {missing}; found {found}")


def _read_batch(path: Path, spec: _Spec) -> tuple[np.ndarray, np.ndarray]:
    """Data ``(n, 3072)`` uint8 and labels ``(n,)`` int64 of one batch file, validated."""
    obj = _read_pickle(path)
    _require(obj, path, (b"data", spec.label_key))
    data = np.asarray(obj[b"data"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _IMAGE_BYTES:
        raise ValueError(
            f"{path}: 'data' must be uint8 of shape (n, {_IMAGE_BYTES}), "
            f"got {data.dtype} {data.shape}"
        )
    labels = np.asarray(obj[spec.label_key])
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{path}: labels must be a 1-D list of ints, got {labels.dtype} {labels.shape}")
    if len(labels) != len(data):
        raise ValueError(f"{path}: {len(labels)} labels for {len(data)} images")
    if len(labels) and (labels.min() < 0 or labels.max() >= spec.num_classes):
        raise ValueError(
            f"{path}: labels must lie in [0, {spec.num_classes - 1}], "
            f"got range [{labels.min()}, {labels.max()}]"
        )
    return data, labels.astype(np.int64)


def _read_classes(folder: Path, spec: _Spec) -> list[str]:
    path = folder / spec.meta_file
    obj = _read_pickle(path)
    _require(obj, path, (spec.names_key,))
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in obj[spec.names_key]]
    if len(names) != spec.num_classes:
        raise ValueError(f"{path}: expected {spec.num_classes} class names, got {len(names)}")
    return names


def _is_bundled_sample(folder: Path) -> bool:
    return folder.resolve().is_relative_to(SAMPLE_ROOT.resolve())


def _train_files(folder: Path, spec: _Spec, is_sample: bool) -> tuple[str, ...]:
    # The bundled sample keeps only data_batch_1; everywhere else all five batches are required.
    if is_sample and spec.folder == "cifar-10-batches-py":
        present = sorted(
            (p.name for p in folder.iterdir() if re.fullmatch(r"data_batch_\d+", p.name)),
            key=lambda s: int(s.rsplit("_", 1)[1]),
        )
        return tuple(present) or spec.train_files[:1]
    return spec.train_files


def _load_folder(folder: Path, spec: _Spec, train: bool, is_sample: bool) -> CifarArrays:
    files = _train_files(folder, spec, is_sample) if train else (spec.test_file,)
    # Check all files exist before reading any, so the error names every missing one at once.
    missing = [f for f in files if not (folder / f).is_file()]
    if missing:
        raise ValueError(f"{folder}: missing batch file(s) {missing}")
    classes = _read_classes(folder, spec)
    parts = [_read_batch(folder / f, spec) for f in files]
    data = np.concatenate([d for d, _ in parts])
    labels = np.concatenate([lab for _, lab in parts])
    images = np.ascontiguousarray(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return CifarArrays(images=images, labels=labels, classes=classes, source=folder, is_sample=is_sample)


def _download(name: str, base: Path, train: bool) -> None:
    import torchvision  # local import: only needed for downloads

    cls = torchvision.datasets.CIFAR10 if name == "cifar10" else torchvision.datasets.CIFAR100
    base.mkdir(parents=True, exist_ok=True)
    cls(str(base), train=train, download=True)


def load_cifar(
    name: str = "cifar10",
    root: str | Path | None = None,
    train: bool = True,
    download: bool = False,
    allow_sample: bool = True,
) -> CifarArrays:
    """Load one split of CIFAR-10 or CIFAR-100 into memory.

    Parameters
    ----------
    name : "cifar10" or "cifar100"
    root : data root or batches folder; ``None`` uses :func:`resolve_data_root`.
    train : the training split (50,000 images) or the test split (10,000).
    download : if the data are not found, fetch them with torchvision into the data root (network).
    allow_sample : if CIFAR-10 is not found, use the bundled sample (``is_sample=True``) and warn.

    Raises
    ------
    FileNotFoundError : data not found (and no fallback applies).
    ValueError : a file is missing, unreadable or malformed; the message names it.
    """
    spec = _spec(name)
    base = resolve_data_root(root)
    try:
        folder = find_cifar(name, base)
    except FileNotFoundError as err:
        if download:
            _download(name, base, train)
            folder = find_cifar(name, base)
        elif allow_sample and name == "cifar10" and (SAMPLE_ROOT / spec.folder).is_dir():
            warnings.warn(
                f"{err}\nUsing the bundled CIFAR-10 sample in {SAMPLE_ROOT} instead "
                "(1,500 train / 500 test images, 150/50 per class): fine for smoke tests, "
                "not for accuracy numbers.",
                UserWarning,
                stacklevel=2,
            )
            folder = SAMPLE_ROOT / spec.folder
        else:
            raise
    return _load_folder(folder, spec, train, _is_bundled_sample(folder))


def cifar_mean_std(name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel (R, G, B) mean and std of the training set, in [0, 1] units."""
    spec = _spec(name)
    return spec.mean, spec.std


class CifarTensorDataset(Dataset):
    """Torch dataset over :class:`CifarArrays`; items are ``(float32 (3, 32, 32) tensor, int)``.

    Parameters
    ----------
    arrays : the loaded split.
    indices : optional subset (e.g. from :func:`balanced_subset`).
    train_augment : CIFAR pad-4 random crop + random horizontal flip.
    mean, std : normalisation; default from :func:`cifar_mean_std` (chosen by the class count).
    generator : torch RNG for augmentation; ``None`` uses the global RNG, which DataLoader
        seeds per worker. Do not share one generator with ``num_workers > 0``: every worker
        would get a copy in the same state and produce the same crops.
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
        default_mean, default_std = cifar_mean_std("cifar100" if len(arrays.classes) == 100 else "cifar10")
        self.mean = torch.tensor(mean or default_mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std or default_std, dtype=torch.float32).view(3, 1, 1)
        self.train_augment = train_augment
        self.generator = generator

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


def balanced_subset(labels: np.ndarray, per_class: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of ``per_class`` examples of every class in ``labels``, drawn without
    replacement with ``numpy.random.default_rng(seed)``, classes visited in increasing order.

    Raises ``ValueError`` if a class has fewer than ``per_class`` examples.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    picks = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if len(idx) < per_class:
            raise ValueError(f"class {c} has {len(idx)} examples, fewer than per_class={per_class}")
        picks.append(rng.choice(idx, size=per_class, replace=False))
    return np.sort(np.concatenate(picks)) if picks else np.zeros(0, dtype=np.int64)


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


def subset_indices(labels: np.ndarray, n: int | None, seed: int = 0) -> np.ndarray | None:
    """Class-balanced indices of about ``n`` images (``n // classes`` per class), ``None`` for "all"."""
    if n is None or n >= len(labels):
        return None
    counts = np.bincount(labels)
    per_class = max(1, min(n // len(np.unique(labels)), int(counts[counts > 0].min())))
    return balanced_subset(labels, per_class, seed)


def cifar_loaders(
    name: str = "cifar10",
    root: str | Path | None = None,
    batch_size: int = 128,
    train_subset: int | None = None,
    test_subset: int | None = None,
    num_workers: int = 0,
    seed: int = 0,
    download: bool = False,
) -> tuple[DataLoader, DataLoader, CifarInfo]:
    """Train and test loaders with the standard CIFAR recipe.

    Train: pad-4 random crop + flip, normalised, shuffled. Test: normalised only, in order.
    ``train_subset`` / ``test_subset`` (total image counts) take a class-balanced subset
    (``n // num_classes`` per class, capped by the smallest class) drawn with ``seed``; ``None``
    or a count at least the split size uses everything. Shuffling and augmentation are seeded
    from ``seed``. Falls back to the bundled sample like :func:`load_cifar`.
    """
    train_arr = load_cifar(name, root, train=True, download=download)
    test_arr = load_cifar(name, root, train=False, download=download)
    mean, std = cifar_mean_std(name)
    # With workers, the global RNG is seeded per worker by DataLoader from `loader_gen`.
    aug_gen = torch.Generator().manual_seed(seed + 1) if num_workers == 0 else None
    train_ds = CifarTensorDataset(
        train_arr, subset_indices(train_arr.labels, train_subset, seed), True, mean, std, aug_gen
    )
    test_ds = CifarTensorDataset(test_arr, subset_indices(test_arr.labels, test_subset, seed), False, mean, std)
    loader_gen = torch.Generator().manual_seed(seed)
    common = dict(num_workers=num_workers, pin_memory=torch.cuda.is_available(),
                  persistent_workers=num_workers > 0)
    train_loader = DataLoader(train_ds, batch_size=batch_size, shuffle=True, generator=loader_gen, **common)
    test_loader = DataLoader(test_ds, batch_size=batch_size, shuffle=False, **common)
    info = CifarInfo(
        name=name, classes=train_arr.classes, source=train_arr.source,
        is_sample=train_arr.is_sample, n_train=len(train_ds), n_test=len(test_ds), mean=mean, std=std,
    )
    return train_loader, test_loader, info
