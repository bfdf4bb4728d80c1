"""Build the bundled CIFAR-10 sample ``strucspars_viz/data/sample/cifar-10-batches-py/`` (package data).

Reads a full ``cifar-10-batches-py`` folder and writes, in the same python batch layout
(protocol-2 pickles whose keys are Python-2 strings, like the originals, so both
``encoding='bytes'`` and torchvision's ``encoding='latin1'`` readers work):

* ``data_batch_1``: 150 train images per class (1,500), picked from the 50,000 with
  ``strucspars_viz.data.balanced_subset(labels, 150, seed)``, kept in original order;
* ``test_batch``: 50 test images per class (500), same rule;
* ``batches.meta``: a byte copy of the source file.

Usage (from the repository root)::

    .venv/bin/python scripts/make_cifar_sample.py --src ../shared/data/cifar10

Prints the md5 of each written file (recorded in ``strucspars_viz/data/sample/README.md``).
"""
from __future__ import annotations

import argparse
import hashlib
import pickle
import shutil
import struct
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from strucspars_viz.data import SAMPLE_ROOT, balanced_subset, find_cifar, load_cifar, read_pickle  # noqa: E402

TRAIN_PER_CLASS = 150
TEST_PER_CLASS = 50
SEED = 0


class _Py2Pickler(pickle._Pickler):
    """Writes ``bytes`` as Python-2 ``str`` (SHORT_BINSTRING / BINSTRING), as in the original files.

    Python 3's own protocol-2 encoding of bytes goes through a latin-1 unicode string, which
    would load as ``bytes`` under ``encoding='latin1'`` (breaking torchvision's ``entry['data']``)
    and would inflate the pixel buffer by about 1.5x.
    """

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj: bytes) -> None:
        n = len(obj)
        if n < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([n]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", n) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str


def _read_raw(path: Path) -> dict:
    return read_pickle(path)  # the restricted unpickler: the source is validated, never executed


def _write(path: Path, batch_label: bytes, data: np.ndarray, labels: np.ndarray, filenames: list) -> None:
    obj = {
        b"batch_label": batch_label,
        b"labels": [int(x) for x in labels],
        b"data": np.ascontiguousarray(data, dtype=np.uint8),
        b"filenames": list(filenames),
    }
    with open(path, "wb") as f:
        _Py2Pickler(f, protocol=2).dump(obj)


def _select(src: Path, files: list[str], per_class: int, what: str) -> tuple[np.ndarray, np.ndarray, list]:
    raws = [_read_raw(src / f) for f in files]
    data = np.concatenate([r[b"data"] for r in raws])
    labels = np.concatenate([np.asarray(r[b"labels"], dtype=np.int64) for r in raws])
    names = [n for r in raws for n in r[b"filenames"]]
    idx = balanced_subset(labels, per_class, SEED)
    print(f"{what}: {len(idx)} of {len(labels)} images ({per_class} per class, seed {SEED})")
    return data[idx], labels[idx], [names[i] for i in idx]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", default="../shared/data/cifar10", help="full CIFAR-10 (any layout find_cifar accepts)")
    ap.add_argument("--out", default=str(SAMPLE_ROOT), help="sample root to write (default: the package's)")
    args = ap.parse_args(argv)

    src = find_cifar("cifar10", args.src)
    # Validates the full source with the package loader before sampling from it.
    for train in (True, False):
        full = load_cifar("cifar10", src, train=train, allow_sample=False)
        print(f"source {src} ({'train' if train else 'test'}): {len(full.labels)} images, OK")

    out = Path(args.out) / "cifar-10-batches-py"
    out.mkdir(parents=True, exist_ok=True)
    train_files = [f"data_batch_{i}" for i in range(1, 6)]
    d, lab, names = _select(src, train_files, TRAIN_PER_CLASS, "train")
    _write(out / "data_batch_1", b"sample training batch 1 of 1 (150 per class, seed 0)", d, lab, names)
    d, lab, names = _select(src, ["test_batch"], TEST_PER_CLASS, "test")
    _write(out / "test_batch", b"sample testing batch 1 of 1 (50 per class, seed 0)", d, lab, names)
    shutil.copyfile(src / "batches.meta", out / "batches.meta")

    # Read back with the package reader (load_cifar wants five train batches outside the package sample).
    for fname, n in (("data_batch_1", 10 * TRAIN_PER_CLASS), ("test_batch", 10 * TEST_PER_CLASS)):
        back = read_pickle(out / fname)
        labels = np.asarray(back[b"labels"])
        ok = back[b"data"].shape == (n, 3072) and np.all(np.bincount(labels, minlength=10) == n // 10)
        if not ok:
            raise SystemExit(f"sample check failed for {out / fname}")
    for f in sorted(out.iterdir()):
        md5 = hashlib.md5(f.read_bytes()).hexdigest()
        print(f"| {f.relative_to(out.parent)} | {f.stat().st_size} | {md5} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
