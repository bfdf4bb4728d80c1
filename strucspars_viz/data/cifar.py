"""CIFAR-10 / CIFAR-100 in the python batch layout: find, read safely, validate.

Layout: a ``cifar-10-batches-py`` (``data_batch_1..5``, ``test_batch``, ``batches.meta``) or
``cifar-100-python`` (``train``, ``test``, ``meta``) folder, accepted as the root itself,
``root/<folder>`` or ``root/<name>/<folder>``, with the root chosen by the rule of
:mod:`strucspars_viz.data.roots` (named root > ``$STRUCSPARS_DATA`` > ``./data`` > bundled sample).

Safety: the batch files are pickles, and :func:`pickle.load` runs whatever a crafted file asks
for (``os.system`` through ``__reduce__``). They are read with :class:`RestrictedUnpickler`,
whose ``find_class`` resolves only the globals that numpy arrays in the official files need:
``numpy.core.multiarray._reconstruct`` (written by numpy 1; ``numpy._core.multiarray._reconstruct``
by numpy 2), ``numpy.ndarray`` and ``numpy.dtype``, plus ``_codecs.encode`` limited to latin-1
text (how Python 3 writes ``bytes`` in protocol-2 pickles; the official files use byte strings). The dicts, lists, ints and byte strings around
them need no global. Any other global raises :class:`pickle.UnpicklingError`, reported as a
``ValueError`` naming the file and the refused global, before anything it names is imported.

Validation: shapes, dtypes, label counts and ranges are checked and every error names the file;
there is no md5 check, so rebuilt copies whose bytes differ from the official archive load fine.
Nothing is downloaded unless ``download=True``.
"""
from __future__ import annotations

import io
import pickle
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .roots import SAMPLE, SAMPLE_ROOT, announce_sample, data_root_candidates, not_found, unnamed_tried

__all__ = ["CIFAR_NAMES", "CifarArrays", "RestrictedUnpickler", "cifar_mean_std", "find_cifar", "load_cifar",
           "read_pickle"]

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
    "cifar10": _Spec("cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)), "test_batch",
                     "batches.meta", b"labels", b"label_names", 10,
                     (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": _Spec("cifar-100-python", ("train",), "test", "meta", b"fine_labels", b"fine_label_names", 100,
                      (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}
CIFAR_NAMES = tuple(_SPECS)


def _spec(name: str) -> _Spec:
    try:
        return _SPECS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; expected one of {sorted(_SPECS)}") from None


# ---------------------------------------------------------------- restricted unpickling


def _numpy_reconstruct():
    try:  # numpy >= 2
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


def _latin1_bytes(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as Python 3 protocol-2 pickles use it for ``bytes``, limited to latin-1."""
    if not isinstance(text, str) or encoding.lower().replace("-", "").replace("_", "") not in ("latin1", "iso88591"):
        raise pickle.UnpicklingError(f"global '_codecs.encode' with encoding {encoding!r} is not allowed "
                                     "(only latin-1 text, as Python 3 writes bytes)")
    return text.encode("latin1")


_ALLOWED = {
    # Python 3 writes bytes in protocol-2 pickles as _codecs.encode(str, "latin1").
    ("_codecs", "encode"): _latin1_bytes,
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct(),
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct(),
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that can rebuild numpy arrays and plain containers, and nothing else.

    >>> import pickle, numpy as np
    >>> RestrictedUnpickler(io.BytesIO(pickle.dumps({b"x": np.arange(3, dtype=np.uint8)}))).load()
    {b'x': array([0, 1, 2], dtype=uint8)}
    >>> RestrictedUnpickler(io.BytesIO(pickle.dumps(print))).load()
    Traceback (most recent call last):
    ...
    _pickle.UnpicklingError: global 'builtins.print' is not allowed in a CIFAR batch file (allowed: numpy arrays)
    """

    def __init__(self, file: io.BufferedIOBase) -> None:
        super().__init__(file, encoding="bytes")

    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"global '{module}.{name}' is not allowed in a CIFAR batch file (allowed: numpy arrays)"
            ) from None


def read_pickle(path: Path) -> dict:
    """The dict pickled in ``path``, read with :class:`RestrictedUnpickler`; ``ValueError`` naming the
    file if it is missing, corrupt, refers to a forbidden global, or is not a dict."""
    if not path.is_file():
        raise ValueError(f"{path}: batch file is missing")
    try:
        with open(path, "rb") as f:
            obj = RestrictedUnpickler(f).load()
    except pickle.UnpicklingError as err:
        if "is not allowed" in str(err):
            raise ValueError(f"{path}: refused to unpickle: {err}. The file is not a genuine CIFAR batch "
                             "(it asks to run or build arbitrary objects)") from err
        raise ValueError(f"{path}: could not unpickle (UnpicklingError: {err})") from err
    except Exception as err:  # corrupt input raises many types (EOFError, ValueError, KeyError, ...)
        raise ValueError(f"{path}: could not unpickle ({type(err).__name__}: {err})") from err
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a pickled dict, got {type(obj).__name__}")
    return obj


# ---------------------------------------------------------------- validation


def _require(obj: dict, path: Path, keys: tuple[bytes, ...]) -> None:
    missing = [k.decode() for k in keys if k not in obj]
    if missing:
        found = sorted(k.decode("latin1") if isinstance(k, bytes) else str(k) for k in obj)
        raise ValueError(f"{path}: missing key(s) {missing}; found {found}")


def _read_batch(path: Path, spec: _Spec) -> tuple[np.ndarray, np.ndarray]:
    """Data ``(n, 3072)`` uint8 and labels ``(n,)`` int64 of one batch file, validated."""
    obj = read_pickle(path)
    _require(obj, path, (b"data", spec.label_key))
    data = np.asarray(obj[b"data"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _IMAGE_BYTES:
        raise ValueError(f"{path}: 'data' must be uint8 of shape (n, {_IMAGE_BYTES}), got {data.dtype} {data.shape}")
    labels = np.asarray(obj[spec.label_key])
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{path}: labels must be a 1-D list of ints, got {labels.dtype} {labels.shape}")
    if len(labels) != len(data):
        raise ValueError(f"{path}: {len(labels)} labels for {len(data)} images")
    if len(labels) and (labels.min() < 0 or labels.max() >= spec.num_classes):
        raise ValueError(f"{path}: labels must lie in [0, {spec.num_classes - 1}], "
                         f"got range [{labels.min()}, {labels.max()}]")
    return data, labels.astype(np.int64)


def _read_classes(folder: Path, spec: _Spec) -> list[str]:
    path = folder / spec.meta_file
    obj = read_pickle(path)
    _require(obj, path, (spec.names_key,))
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in obj[spec.names_key]]
    if len(names) != spec.num_classes:
        raise ValueError(f"{path}: expected {spec.num_classes} class names, got {len(names)}")
    return names


# ---------------------------------------------------------------- finding


def _find_in(name: str, base: Path) -> Path | None:
    spec = _spec(name)
    # base itself only counts if it looks like the batches folder, else any data root would match.
    if base.is_dir() and (base.name == spec.folder or (base / spec.meta_file).is_file()):
        return base
    for path in (base / spec.folder, base / name / spec.folder):
        if path.is_dir():
            return path
    return None


def _tried(name: str, base: Path) -> list[Path]:
    folder = _spec(name).folder
    return [base, base / folder, base / name / folder]


def _locate(name: str, root: str | Path | None, allow_sample: bool) -> tuple[Path | None, list[Path], object]:
    """(folder or None, paths tried, the named RootChoice or None) under the data-root rule."""
    tried: list[Path] = []
    named = None
    for choice in data_root_candidates(root):
        if choice.origin == SAMPLE and not (allow_sample and name == "cifar10"):
            continue
        named = choice if choice.named else None
        folder = _find_in(name, choice.path)
        if folder is not None:
            if choice.origin == SAMPLE:
                announce_sample("CIFAR-10")
            return folder, tried, named
        tried += _tried(name, choice.path)
    return None, unnamed_tried(tried, _tried(name, Path.cwd() / "data")), named


def _not_found(name: str, tried: list[Path], named) -> FileNotFoundError:
    spec = _spec(name)
    fix = (f"pass root=<folder holding {spec.folder}> (--data-root), set $STRUCSPARS_DATA to it, "
           "or pass download=True (--download) if internet is available")
    return not_found(name, tried, f"the '{spec.folder}' folder", fix, named)


def find_cifar(name: str, root: str | Path | None = None, *, allow_sample: bool = True) -> Path:
    """The batches folder (``cifar-10-batches-py`` or ``cifar-100-python``) of dataset ``name``.

    Accepted layouts under each candidate root: the root itself is the batches folder,
    ``root/<folder>``, or ``root/<name>/<folder>``. A named root (``root`` or ``$STRUCSPARS_DATA``)
    is the only candidate; otherwise ``./data`` then (CIFAR-10, ``allow_sample``) the bundled sample.

    Raises
    ------
    FileNotFoundError
        naming every path tried and how to point the loader at the data.
    """
    folder, tried, named = _locate(name, root, allow_sample)
    if folder is None:
        raise _not_found(name, tried, named)
    return folder


# ---------------------------------------------------------------- loading


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


def _is_bundled_sample(folder: Path) -> bool:
    return folder.resolve().is_relative_to(SAMPLE_ROOT.resolve())


def _train_files(folder: Path, spec: _Spec, is_sample: bool) -> tuple[str, ...]:
    # The bundled sample keeps only data_batch_1; everywhere else all five batches are required.
    if is_sample and spec.folder == "cifar-10-batches-py":
        present = sorted((p.name for p in folder.iterdir() if re.fullmatch(r"data_batch_\d+", p.name)),
                         key=lambda s: int(s.rsplit("_", 1)[1]))
        return tuple(present) or spec.train_files[:1]
    return spec.train_files


def _load_folder(folder: Path, spec: _Spec, train: bool) -> CifarArrays:
    is_sample = _is_bundled_sample(folder)
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


def load_cifar(name: str = "cifar10", root: str | Path | None = None, train: bool = True,
               download: bool = False, allow_sample: bool = True) -> CifarArrays:
    """Load one split of CIFAR-10 or CIFAR-100 into memory.

    Parameters
    ----------
    name : "cifar10" or "cifar100"
    root : data root or batches folder; ``None`` applies the data-root rule (see the module docstring).
    train : the training split (50,000 images) or the test split (10,000).
    download : if the data are not found, fetch them with torchvision (network) into the named root,
        or into ``./data`` if none was named. Never done unless asked.
    allow_sample : if no root was named and CIFAR-10 is not in ``./data``, use the bundled sample
        (``is_sample=True``; announced once per process).

    Raises
    ------
    FileNotFoundError : data not found (a named root never falls back to the sample).
    ValueError : a file is missing, unreadable, malformed or not a genuine batch; the message names it.
    """
    spec = _spec(name)
    # Downloading replaces the sample fallback: look without it first.
    folder, tried, named = _locate(name, root, allow_sample and not download)
    if folder is None and download:
        base = named.path if named is not None else Path.cwd() / "data"
        _download(name, base, train)
        folder = _find_in(name, base)
    if folder is None:
        raise _not_found(name, tried, named)
    return _load_folder(folder, spec, train)


def cifar_mean_std(name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel (R, G, B) mean and std of the training set, in [0, 1] units.

    >>> cifar_mean_std("cifar10")[0]
    (0.4914, 0.4822, 0.4465)
    """
    spec = _spec(name)
    return spec.mean, spec.std
