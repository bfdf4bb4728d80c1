"""CIFAR batch files: layouts, validation errors, the restricted unpickler, the full shared copy.
Fake copies are written to tmp_path (as torchvision's dataset tests do). No network."""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from strucspars_viz.data import DATA_ENV, balanced_subset, find_cifar, load_cifar, read_pickle
from strucspars_viz.data.fake import dump_batch, write_fake_cifar

FULL = [Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10"]


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    monkeypatch.delenv(DATA_ENV, raising=False)


def make_fake_cifar10(root: Path, per_batch: int = 4, n_test: int = 6) -> Path:
    return write_fake_cifar(root, "cifar10", n_train=5 * per_batch, n_test=n_test, balanced=False)


def _rewrite(path: Path, **changes) -> None:
    with open(path, "rb") as f:
        obj = pickle.load(f, encoding="bytes")  # our own fake file: trusted
    for k, v in changes.items():
        if v is None:
            del obj[k.encode()]
        else:
            obj[k.encode()] = v
    dump_batch(path, obj)


def _raw(path: Path) -> dict:
    with open(path, "rb") as f:
        return pickle.load(f, encoding="bytes")


# ---------------------------------------------------------------- loading


def test_fake_cifar10_shapes_labels_classes(tmp_path):
    folder = make_fake_cifar10(tmp_path)
    tr = load_cifar("cifar10", tmp_path, train=True, allow_sample=False)
    te = load_cifar("cifar10", tmp_path, train=False, allow_sample=False)
    assert tr.images.shape == (20, 32, 32, 3) and tr.images.dtype == np.uint8
    assert te.images.shape == (6, 32, 32, 3)
    assert tr.labels.dtype == np.int64 and tr.labels.shape == (20,)
    assert tr.classes == [f"c{i}" for i in range(10)]
    assert tr.source == folder and not tr.is_sample
    # batches are concatenated in order 1..5
    expect = np.concatenate([_raw(folder / f"data_batch_{i}")[b"labels"] for i in range(1, 6)])
    np.testing.assert_array_equal(tr.labels, expect)


def test_hwc_layout_planted_pixels(tmp_path):
    folder = make_fake_cifar10(tmp_path)
    data = np.zeros((4, 3072), dtype=np.uint8)
    # rows are R, G, B planes of 32x32, row-major: plane c, row y, column x -> c*1024 + y*32 + x
    data[2, 0 * 1024 + 1 * 32 + 2] = 255
    data[2, 1 * 1024 + 5 * 32 + 7] = 200
    data[2, 2 * 1024 + 31 * 32 + 0] = 99
    _rewrite(folder / "data_batch_1", data=data)
    img = load_cifar("cifar10", tmp_path, allow_sample=False).images[2]
    assert img[1, 2, 0] == 255 and img[5, 7, 1] == 200 and img[31, 0, 2] == 99
    assert int(img.astype(int).sum()) == 255 + 200 + 99


def test_fake_cifar100(tmp_path):
    write_fake_cifar(tmp_path / "cifar100", "cifar100", n_train=12, n_test=5)
    tr = load_cifar("cifar100", tmp_path, train=True)
    te = load_cifar("cifar100", tmp_path, train=False)
    assert tr.images.shape == (12, 32, 32, 3) and te.images.shape == (5, 32, 32, 3)
    assert len(tr.classes) == 100 and tr.classes[7] == "f07"
    assert tr.labels.max() < 100 and not tr.is_sample


@pytest.mark.parametrize("where", ["batches", "root", "named"])
def test_find_cifar_layouts(tmp_path, where):
    if where == "named":
        folder = make_fake_cifar10(tmp_path / "cifar10")
        root = tmp_path
    else:
        folder = make_fake_cifar10(tmp_path)
        root = folder if where == "batches" else tmp_path
    assert find_cifar("cifar10", root) == folder
    assert load_cifar("cifar10", root, allow_sample=False).source == folder


def test_missing_folder_names_paths_tried(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        find_cifar("cifar10", tmp_path)
    msg = str(err.value)
    for p in (tmp_path, tmp_path / "cifar-10-batches-py", tmp_path / "cifar10" / "cifar-10-batches-py"):
        assert str(p) in msg
    assert "root=" in msg and "STRUCSPARS_DATA" in msg and "download=True" in msg
    with pytest.raises(FileNotFoundError):
        load_cifar("cifar10", tmp_path, allow_sample=False)
    with pytest.raises(FileNotFoundError, match="cifar-100-python"):
        load_cifar("cifar100", tmp_path)  # no sample for CIFAR-100


def test_unknown_name(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset"):
        load_cifar("mnist", tmp_path)


def _corrupt_pickle(folder):
    (folder / "data_batch_2").write_bytes(b"\x80\x02this is not a pickle")


def _wrong_width(folder):
    _rewrite(folder / "data_batch_2", data=np.zeros((4, 3000), dtype=np.uint8))


def _wrong_dtype(folder):
    _rewrite(folder / "data_batch_2", data=np.zeros((4, 3072), dtype=np.float32))


def _label_out_of_range(folder):
    _rewrite(folder / "data_batch_2", labels=[0, 1, 10, 2])


def _negative_label(folder):
    _rewrite(folder / "data_batch_2", labels=[0, -1, 3, 2])


def _label_count(folder):
    _rewrite(folder / "data_batch_2", labels=[0, 1, 2])


def _missing_key(folder):
    _rewrite(folder / "data_batch_2", data=None)


def _missing_file(folder):
    (folder / "data_batch_2").unlink()


def _not_a_dict(folder):
    dump_batch(folder / "data_batch_2", [1, 2, 3])


def _meta_classes(folder):
    _rewrite(folder / "batches.meta", label_names=[b"a", b"b"])


def _truncated(folder):
    path = folder / "data_batch_2"
    path.write_bytes(path.read_bytes()[:500])


@pytest.mark.parametrize(
    "break_it, file, match",
    [
        (_corrupt_pickle, "data_batch_2", "could not unpickle"),
        (_truncated, "data_batch_2", "could not unpickle"),
        (_wrong_width, "data_batch_2", "3072"),
        (_wrong_dtype, "data_batch_2", "uint8"),
        (_label_out_of_range, "data_batch_2", r"\[0, 9\]"),
        (_negative_label, "data_batch_2", r"\[0, 9\]"),
        (_label_count, "data_batch_2", "3 labels for 4 images"),
        (_missing_key, "data_batch_2", "missing key"),
        (_missing_file, "data_batch_2", "missing batch file"),
        (_not_a_dict, "data_batch_2", "dict"),
        (_meta_classes, "batches.meta", "expected 10 class names"),
    ],
)
def test_malformed_files_raise_value_error(tmp_path, break_it, file, match):
    folder = make_fake_cifar10(tmp_path)
    break_it(folder)
    with pytest.raises(ValueError, match=match) as err:
        load_cifar("cifar10", tmp_path, train=True)  # a broken copy must not fall back to the sample
    assert file in str(err.value)


def test_cifar100_labels_out_of_range(tmp_path):
    folder = write_fake_cifar(tmp_path, "cifar100", n_train=12, n_test=5)
    _rewrite(folder / "test", fine_labels=[0, 1, 2, 3, 100])
    with pytest.raises(ValueError, match=r"test.*\[0, 99\]"):
        load_cifar("cifar100", tmp_path, train=False)


# ---------------------------------------------------------------- restricted unpickler (issue 8, item 4)


class _Exploit:
    """Unpickling this calls os.system(cmd): what a crafted batches.meta can do under pickle.load."""

    def __init__(self, cmd: str) -> None:
        self.cmd = cmd

    def __reduce__(self):
        return (os.system, (self.cmd,))


@pytest.mark.parametrize("victim", ["batches.meta", "data_batch_3", "test_batch"])
def test_crafted_pickle_raises_and_runs_nothing(tmp_path, victim):
    folder = make_fake_cifar10(tmp_path / "root")
    marker = tmp_path / "marker"
    payload = {b"label_names": [b"c%d" % i for i in range(10)], b"data": _Exploit(f"touch {marker}")}
    dump_batch(folder / victim, payload)
    # The payload is live: plain pickle.load would run it (this is what the old loader did).
    with pytest.raises(ValueError, match=r"refused to unpickle.*(posix|os|nt)\.system") as err:
        load_cifar("cifar10", tmp_path / "root", train=victim != "test_batch")
    assert victim in str(err.value)
    assert not marker.exists()
    _raw(folder / victim)
    assert marker.exists(), "the crafted payload was inert: the test proves nothing"


class _Rot13:
    def __reduce__(self):
        import codecs

        return (codecs.encode, ("abc", "rot13"))


def test_unpickler_refuses_other_numpy_and_builtin_globals(tmp_path):
    for obj in ({b"f": np.random.default_rng}, {b"e": eval}, {b"x": np.int64(3)}, {b"c": _Rot13()}):
        path = tmp_path / "p"
        dump_batch(path, obj)
        with pytest.raises(ValueError, match="is not allowed"):
            read_pickle(path)


def test_unpickler_reads_numpy_arrays_of_both_numpy_module_names(tmp_path):
    arr = np.arange(12, dtype=np.uint8).reshape(3, 4)
    path = tmp_path / "p"
    dump_batch(path, {b"data": arr, b"labels": [1, 2, 3], b"name": b"x"})
    raw = path.read_bytes()
    # numpy 2 writes numpy._core.multiarray; the official (numpy 1) files say numpy.core.multiarray.
    other = raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray") if b"numpy._core" in raw \
        else raw.replace(b"numpy.core.multiarray", b"numpy._core.multiarray")
    assert other != raw
    for data in (raw, other):
        path.write_bytes(data)
        obj = read_pickle(path)
        np.testing.assert_array_equal(obj[b"data"], arr)
        assert obj[b"labels"] == [1, 2, 3] and obj[b"name"] == b"x"


# ---------------------------------------------------------------- full shared copy


@pytest.mark.skipif(not any(p.is_dir() for p in FULL), reason="full CIFAR-10 copy not present")
def test_full_shared_cifar10():
    from strucspars_viz.data import SAMPLE_ROOT

    root = next(p for p in FULL if p.is_dir())
    tr = load_cifar("cifar10", root, train=True, allow_sample=False)
    te = load_cifar("cifar10", root, train=False, allow_sample=False)
    assert tr.images.shape == (50000, 32, 32, 3) and te.images.shape == (10000, 32, 32, 3)
    assert np.bincount(tr.labels).tolist() == [5000] * 10
    assert np.bincount(te.labels).tolist() == [1000] * 10
    assert not tr.is_sample and tr.classes[0] == "airplane"
    # the sample's images are exact copies of the full set's images
    sample = load_cifar("cifar10", SAMPLE_ROOT, train=False)
    idx = balanced_subset(te.labels, 50, seed=0)
    np.testing.assert_array_equal(sample.images, te.images[idx])
