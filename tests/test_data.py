"""Tests for strucspars_viz.data: fake CIFAR copies in tmp_path (as torchvision's dataset tests do),
the bundled sample, and the full shared copy if present. No network."""
from __future__ import annotations

import hashlib
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from strucspars_viz import data as D
from strucspars_viz.data import (
    CifarArrays,
    CifarTensorDataset,
    balanced_subset,
    cifar_loaders,
    cifar_mean_std,
    find_cifar,
    load_cifar,
    resolve_data_root,
)

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "cifar10-sample" / "cifar-10-batches-py"
FULL = [Path("/work/shared/data/cifar10"), REPO.parent / "shared" / "data" / "cifar10"]


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    monkeypatch.delenv(D.DATA_ENV, raising=False)


# ---------------------------------------------------------------- fake copies


def _dump(path: Path, obj: dict) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def _batch(n: int, num_classes: int, label_key: bytes, rng: np.random.Generator) -> dict:
    return {
        b"batch_label": b"fake",
        label_key: [int(x) for x in rng.integers(0, num_classes, n)],
        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        b"filenames": [b"f%d.png" % i for i in range(n)],
    }


def make_fake_cifar10(root: Path, per_batch: int = 4, n_test: int = 6, seed: int = 0) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(1, 6):
        _dump(folder / f"data_batch_{i}", _batch(per_batch, 10, b"labels", rng))
    _dump(folder / "test_batch", _batch(n_test, 10, b"labels", rng))
    names = [b"c%d" % i for i in range(10)]
    _dump(folder / "batches.meta", {b"label_names": names, b"num_cases_per_batch": per_batch, b"num_vis": 3072})
    return folder


def make_fake_cifar100(root: Path, n_train: int = 12, n_test: int = 5, seed: int = 0) -> Path:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for name, n in (("train", n_train), ("test", n_test)):
        b = _batch(n, 100, b"fine_labels", rng)
        b[b"coarse_labels"] = [x // 5 for x in b[b"fine_labels"]]
        _dump(folder / name, b)
    _dump(folder / "meta", {b"fine_label_names": [b"f%02d" % i for i in range(100)],
                            b"coarse_label_names": [b"k%d" % i for i in range(20)]})
    return folder


def _rewrite(path: Path, **changes) -> None:
    with open(path, "rb") as f:
        obj = pickle.load(f, encoding="bytes")
    for k, v in changes.items():
        if v is None:
            del obj[k.encode()]
        else:
            obj[k.encode()] = v
    _dump(path, obj)


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
    expect = np.concatenate([pickle.load(open(folder / f"data_batch_{i}", "rb"), encoding="bytes")[b"labels"]
                             for i in range(1, 6)])
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
    make_fake_cifar100(tmp_path / "cifar100")
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
    _dump(folder / "data_batch_2", [1, 2, 3])


def _meta_classes(folder):
    _rewrite(folder / "batches.meta", label_names=[b"a", b"b"])


@pytest.mark.parametrize(
    "break_it, file, match",
    [
        (_corrupt_pickle, "data_batch_2", "could not unpickle"),
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
    folder = make_fake_cifar100(tmp_path)
    _rewrite(folder / "test", fine_labels=[0, 1, 2, 3, 100])
    with pytest.raises(ValueError, match=r"test.*\[0, 99\]"):
        load_cifar("cifar100", tmp_path, train=False)


# ---------------------------------------------------------------- root resolution


def test_root_resolution_order(tmp_path, monkeypatch):
    arg, env, cwd = tmp_path / "arg", tmp_path / "env", tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    # nothing set and no ./data: the repository's data folder
    assert resolve_data_root() == D.REPO_DATA_DIR == REPO / "data"
    (cwd / "data").mkdir()
    assert resolve_data_root() == cwd / "data"
    monkeypatch.setenv(D.DATA_ENV, str(env))
    assert resolve_data_root() == env
    assert resolve_data_root(arg) == arg
    assert resolve_data_root(str(arg)) == arg


def test_env_var_used_by_loader(tmp_path, monkeypatch):
    folder = make_fake_cifar10(tmp_path / "cifar10")
    monkeypatch.setenv(D.DATA_ENV, str(tmp_path))
    assert load_cifar(allow_sample=False).source == folder


# ---------------------------------------------------------------- bundled sample


def test_sample_fallback_is_balanced(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./data here
    with pytest.warns(UserWarning, match="bundled CIFAR-10 sample"):
        tr = load_cifar("cifar10", tmp_path / "nowhere", train=True)
    with pytest.warns(UserWarning):
        te = load_cifar("cifar10", tmp_path / "nowhere", train=False)
    assert tr.is_sample and te.is_sample and tr.source == SAMPLE
    assert tr.images.shape == (1500, 32, 32, 3) and te.images.shape == (500, 32, 32, 3)
    assert np.bincount(tr.labels, minlength=10).tolist() == [150] * 10
    assert np.bincount(te.labels, minlength=10).tolist() == [50] * 10
    assert tr.classes[0] == "airplane" and tr.classes[9] == "truck"


def test_sample_direct_and_latin1_compatible():
    arr = load_cifar("cifar10", SAMPLE, train=True, allow_sample=False)
    assert arr.is_sample and len(arr.labels) == 1500
    # keys are Python-2 strings like the originals: readable with torchvision's encoding too
    with open(SAMPLE / "test_batch", "rb") as f:
        obj = pickle.load(f, encoding="latin1")
    assert set(obj) == {"batch_label", "labels", "data", "filenames"}
    assert obj["data"].shape == (500, 3072) and obj["data"].dtype == np.uint8


def test_sample_files_match_readme_md5_and_size_limit():
    readme = (REPO / "data" / "README.md").read_text()
    rows = re.findall(r"\| (cifar10-sample/\S+) \| (\d+) \| ([0-9a-f]{32}) \|", readme)
    assert {Path(r[0]).name for r in rows} == {"data_batch_1", "test_batch", "batches.meta"}
    for rel, size, md5 in rows:
        path = REPO / "data" / rel
        assert path.stat().st_size == int(size) < 5_000_000
        assert hashlib.md5(path.read_bytes()).hexdigest() == md5


# ---------------------------------------------------------------- torch dataset


def _arrays(n: int = 8, seed: int = 0) -> CifarArrays:
    rng = np.random.default_rng(seed)
    return CifarArrays(
        images=rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8),
        labels=np.arange(n, dtype=np.int64) % 10,
        classes=[str(i) for i in range(10)],
        source=Path("."),
        is_sample=False,
    )


def test_eval_mode_normalises_and_is_deterministic():
    arr = _arrays()
    ds = CifarTensorDataset(arr)
    x, y = ds[3]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and y == 3 and isinstance(y, int)
    mean, std = cifar_mean_std("cifar10")
    expect = (torch.from_numpy(arr.images[3]).permute(2, 0, 1).float() / 255
              - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)
    torch.testing.assert_close(x, expect)
    torch.testing.assert_close(ds[3][0], x)


def test_mean_std_constants():
    assert cifar_mean_std("cifar10") == ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
    assert cifar_mean_std("cifar100") == ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))
    arr = _arrays()
    arr.classes = [str(i) for i in range(100)]
    ds = CifarTensorDataset(arr)
    torch.testing.assert_close(ds.mean.flatten(), torch.tensor(cifar_mean_std("cifar100")[0]))


def test_indices_subset():
    arr = _arrays()
    ds = CifarTensorDataset(arr, indices=np.array([5, 1]))
    assert len(ds) == 2 and ds[0][1] == 5 and ds[1][1] == 1


def test_augmentation_is_pad4_crop_and_flip():
    arr = _arrays(n=1)
    ds = CifarTensorDataset(arr, train_augment=True, mean=(0, 0, 0), std=(1, 1, 1),
                            generator=torch.Generator().manual_seed(0))
    img = torch.from_numpy(arr.images[0]).permute(2, 0, 1)
    padded = torch.nn.functional.pad(img, (4, 4, 4, 4))
    flips, offsets = set(), set()
    for _ in range(60):
        x, _ = ds[0]
        assert x.shape == (3, 32, 32) and x.dtype == torch.float32
        out = torch.round(x * 255).to(torch.uint8)
        match = [(i, j, f) for i in range(9) for j in range(9) for f in (False, True)
                 if torch.equal(out, (lambda w: w.flip(2) if f else w)(padded[:, i:i + 32, j:j + 32]))]
        assert match, "augmented image is not a flipped/unflipped 32x32 window of the pad-4 image"
        flips.add(match[0][2])
        offsets.add(match[0][:2])
    assert flips == {False, True}
    assert len(offsets) > 5
    # eval mode on the same data gives the original image every time
    ev = CifarTensorDataset(arr, mean=(0, 0, 0), std=(1, 1, 1))
    assert torch.equal(torch.round(ev[0][0] * 255).to(torch.uint8), img)


# ---------------------------------------------------------------- subsets and loaders


def test_balanced_subset():
    labels = np.repeat(np.arange(10), 30)
    np.random.default_rng(1).shuffle(labels)
    idx = balanced_subset(labels, 7, seed=3)
    assert np.all(np.diff(idx) > 0)
    assert np.bincount(labels[idx]).tolist() == [7] * 10
    np.testing.assert_array_equal(idx, balanced_subset(labels, 7, seed=3))
    assert not np.array_equal(idx, balanced_subset(labels, 7, seed=4))
    with pytest.raises(ValueError, match="fewer than"):
        balanced_subset(labels, 31)


def test_cifar_loaders_on_fake_copy(tmp_path):
    make_fake_cifar10(tmp_path, per_batch=20, n_test=30)
    train, test, info = cifar_loaders("cifar10", tmp_path, batch_size=8, train_subset=None, test_subset=None)
    assert info.n_train == 100 and info.n_test == 30 and not info.is_sample
    assert info.classes == [f"c{i}" for i in range(10)] and info.mean == cifar_mean_std("cifar10")[0]
    x, y = next(iter(train))
    assert x.shape == (8, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert sum(len(b[1]) for b in test) == 30
    # same seed, same batches (shuffle and augmentation are seeded)
    x2, y2 = next(iter(cifar_loaders("cifar10", tmp_path, batch_size=8)[0]))
    assert torch.equal(x, x2) and torch.equal(y, y2)


def test_cifar_loaders_subset_on_sample(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.warns(UserWarning):
        train, test, info = cifar_loaders(root=tmp_path, batch_size=50, train_subset=200, test_subset=100)
    assert info.is_sample and info.n_train == 200 and info.n_test == 100
    labels = torch.cat([y for _, y in test])
    assert torch.bincount(labels, minlength=10).tolist() == [10] * 10


# ---------------------------------------------------------------- full shared copy


@pytest.mark.skipif(not any(p.is_dir() for p in FULL), reason="full CIFAR-10 copy not present")
def test_full_shared_cifar10():
    root = next(p for p in FULL if p.is_dir())
    tr = load_cifar("cifar10", root, train=True, allow_sample=False)
    te = load_cifar("cifar10", root, train=False, allow_sample=False)
    assert tr.images.shape == (50000, 32, 32, 3) and te.images.shape == (10000, 32, 32, 3)
    assert np.bincount(tr.labels).tolist() == [5000] * 10
    assert np.bincount(te.labels).tolist() == [1000] * 10
    assert not tr.is_sample and tr.classes[0] == "airplane"
    # the sample's images are exact copies of the full set's images
    sample = load_cifar("cifar10", SAMPLE, train=False)
    idx = balanced_subset(te.labels, 50, seed=0)
    np.testing.assert_array_equal(sample.images, te.images[idx])
