"""The data-root rule (issue 8, item 6) and the bundled sample (package data)."""
from __future__ import annotations

import hashlib
import pickle
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from strucspars_viz.data import (
    DATA_ENV,
    SAMPLE_ROOT,
    build_datasets,
    cifar_loaders,
    find_cifar,
    find_imagefolder,
    load_cifar,
    resolve_data_root,
)
from strucspars_viz.data.fake import write_fake_cifar

SAMPLE = SAMPLE_ROOT / "cifar-10-batches-py"
PACKAGE = Path(__import__("strucspars_viz").__file__).resolve().parent


def _sample_warnings(record) -> list:
    return [w for w in record if issubclass(w.category, UserWarning) and "bundled CIFAR-10" in str(w.message)]


# ---------------------------------------------------------------- resolution order


def test_root_resolution_order(tmp_path, no_data_env, monkeypatch):
    arg, env, cwd = tmp_path / "arg", tmp_path / "env", no_data_env
    # nothing set and no ./data: the bundled sample (inside the installed package)
    assert resolve_data_root() == SAMPLE_ROOT
    (cwd / "data").mkdir()
    assert resolve_data_root() == cwd / "data"
    monkeypatch.setenv(DATA_ENV, str(env))
    assert resolve_data_root() == env
    assert resolve_data_root(arg) == arg
    assert resolve_data_root(str(arg)) == arg


def test_sample_root_is_package_data_not_repo_folder():
    assert SAMPLE_ROOT.is_relative_to(PACKAGE / "data")
    assert sorted(p.name for p in SAMPLE.iterdir()) == ["batches.meta", "data_batch_1", "test_batch"]


def test_env_var_used_by_loader(tmp_path, no_data_env, monkeypatch):
    folder = write_fake_cifar(tmp_path / "cifar10", n_train=20, n_test=10)
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    assert load_cifar(allow_sample=False).source == folder
    assert build_datasets("cifar10").description["source"] == str(folder)


def test_dot_data_used_before_sample(no_data_env):
    folder = write_fake_cifar(no_data_env / "data", n_train=20, n_test=10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no sample announcement
        arr = load_cifar()
    assert arr.source == folder and not arr.is_sample


def test_explicit_root_beats_env(tmp_path, no_data_env, monkeypatch):
    a = write_fake_cifar(tmp_path / "a", n_train=20, n_test=10)
    write_fake_cifar(tmp_path / "b", n_train=30, n_test=10)
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "b"))
    assert load_cifar(root=tmp_path / "a").source == a


# ---------------------------------------------------------------- no silent fallback


@pytest.mark.parametrize("how", ["argument", "env"])
def test_named_root_without_data_is_an_error_not_the_sample(tmp_path, no_data_env, monkeypatch, how):
    missing = tmp_path / "typo" / "cifar"
    root = None
    if how == "env":
        monkeypatch.setenv(DATA_ENV, str(missing))
    else:
        root = missing
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        for call in (lambda: load_cifar("cifar10", root), lambda: find_cifar("cifar10", root),
                     lambda: build_datasets("cifar10", root), lambda: cifar_loaders(root=root)):
            with pytest.raises(FileNotFoundError) as err:
                call()
            msg = str(err.value)
            assert str(missing) in msg and "No fallback to the bundled sample" in msg
            assert (DATA_ENV if how == "env" else "root argument") in msg
    assert not _sample_warnings(record)


def test_named_root_without_imagefolder_is_an_error(tmp_path, no_data_env):
    with pytest.raises(FileNotFoundError, match=r"train/<class>.*\n.*typo"):
        find_imagefolder(tmp_path / "typo")
    with pytest.raises(FileNotFoundError, match="ImageFolder dataset not found"):
        build_datasets("imagenet", tmp_path / "typo")
    with pytest.raises(FileNotFoundError, match="data-root"):
        build_datasets("imagenet")  # nothing named, no ./data: no ImageNet sample exists


def test_sample_fallback_only_when_nothing_named_and_announced_once(no_data_env):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        tr = load_cifar("cifar10", train=True)
        te = load_cifar("cifar10", train=False)
        bundle = build_datasets("cifar10", train_subset=100)
    found = _sample_warnings(record)
    assert len(found) == 1, [str(w.message) for w in record]
    msg = str(found[0].message)
    assert str(SAMPLE_ROOT) in msg and "1,500 train / 500 test" in msg
    assert tr.is_sample and te.is_sample and tr.source == SAMPLE
    assert bundle.description["is_sample"] is True and bundle.description["n_train"] == 100
    assert tr.images.shape == (1500, 32, 32, 3) and te.images.shape == (500, 32, 32, 3)
    assert np.bincount(tr.labels, minlength=10).tolist() == [150] * 10
    assert np.bincount(te.labels, minlength=10).tolist() == [50] * 10
    assert tr.classes[0] == "airplane" and tr.classes[9] == "truck"


def test_dot_data_without_cifar_falls_back(no_data_env):
    (no_data_env / "data").mkdir()  # e.g. the repository's data/ holding only README.md
    with pytest.warns(UserWarning, match="bundled CIFAR-10"):
        assert load_cifar().is_sample
    with pytest.raises(FileNotFoundError, match=str(no_data_env / "data")):
        load_cifar(allow_sample=False)
    with pytest.raises(FileNotFoundError, match="cifar-100-python"):
        load_cifar("cifar100")  # no sample for CIFAR-100


def test_download_only_when_asked(tmp_path, no_data_env, monkeypatch):
    from strucspars_viz.data import cifar

    calls = []

    def fake_download(name, base, train):
        calls.append((name, base))
        write_fake_cifar(base, name, n_train=20, n_test=10)

    monkeypatch.setattr(cifar, "_download", fake_download)
    with pytest.raises(FileNotFoundError):
        load_cifar("cifar10", tmp_path / "dl")
    assert calls == []
    arr = load_cifar("cifar10", tmp_path / "dl", download=True)
    assert calls == [("cifar10", tmp_path / "dl")] and not arr.is_sample and len(arr.labels) == 20


# ---------------------------------------------------------------- the sample itself


def test_sample_direct_and_latin1_compatible():
    arr = load_cifar("cifar10", SAMPLE, train=True, allow_sample=False)
    assert arr.is_sample and len(arr.labels) == 1500
    # keys are Python-2 strings like the originals: readable with torchvision's encoding too
    with open(SAMPLE / "test_batch", "rb") as f:
        obj = pickle.load(f, encoding="latin1")
    assert set(obj) == {"batch_label", "labels", "data", "filenames"}
    assert obj["data"].shape == (500, 3072) and obj["data"].dtype == np.uint8


def test_sample_files_match_readme_md5_and_size_limit():
    readme = (SAMPLE_ROOT / "README.md").read_text()
    rows = re.findall(r"\| (cifar-10-batches-py/\S+) \| (\d+) \| ([0-9a-f]{32}) \|", readme)
    assert {Path(r[0]).name for r in rows} == {"data_batch_1", "test_batch", "batches.meta"}
    for rel, size, md5 in rows:
        path = SAMPLE_ROOT / rel
        assert path.stat().st_size == int(size) < 5_000_000
        assert hashlib.md5(path.read_bytes()).hexdigest() == md5
    # the repository-level data/README.md points at it
    repo_readme = Path(__file__).resolve().parents[1] / "data" / "README.md"
    if repo_readme.is_file():
        assert "strucspars_viz/data/sample/README.md" in repo_readme.read_text()
