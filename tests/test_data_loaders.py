"""One builder, one subset rule, one seeding rule: build_datasets / make_loaders / Loaders.set_epoch."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from strucspars_viz.data import (
    CifarTensorDataset,
    ShardSampler,
    build_datasets,
    cifar_loaders,
    load_cifar,
    make_loaders,
    subset_indices,
)
from strucspars_viz.data.fake import make_fake_imagefolder, write_fake_cifar
from strucspars_viz.seeding import augment_seed, shuffle_seed


def _first(loader):
    return next(iter(loader))


def _epoch(loaders, e):
    loaders.set_epoch(e)
    return [(x.clone(), y.clone()) for x, y in loaders.train]


def _same(a, b) -> bool:
    return all(torch.equal(x1, x2) and torch.equal(y1, y2) for (x1, y1), (x2, y2) in zip(a, b)) and len(a) == len(b)


def test_same_seed_same_stream_and_epochs_differ(fake_cifar10):
    la = make_loaders(build_datasets("cifar10", fake_cifar10, seed=5), 16, seed=5)
    lb = make_loaders(build_datasets("cifar10", fake_cifar10, seed=5), 16, seed=5)
    e0a, e0b = _epoch(la, 0), _epoch(lb, 0)
    e3a, e3b = _epoch(la, 3), _epoch(lb, 3)
    assert _same(e0a, e0b) and _same(e3a, e3b)
    assert not torch.equal(e0a[0][1], e3a[0][1])  # another order
    other = make_loaders(build_datasets("cifar10", fake_cifar10, seed=6), 16, seed=6)
    assert not _same(e0a, _epoch(other, 0))


def test_set_epoch_after_fresh_build_reproduces_that_epoch(fake_cifar10):
    run = make_loaders(build_datasets("cifar10", fake_cifar10), 16, seed=2)
    epochs = [_epoch(run, e) for e in range(4)]
    resumed = make_loaders(build_datasets("cifar10", fake_cifar10), 16, seed=2)
    assert _same(_epoch(resumed, 3), epochs[3])
    assert _same(_epoch(resumed, 1), epochs[1])
    # iterating twice within one epoch without set_epoch continues the augmentation stream
    assert not _same(epochs[3], [(x, y) for x, y in run.train])


def test_stream_is_the_seeding_rule(fake_cifar10):
    """Ground truth from strucspars_viz.seeding, recomputed by hand: order and crops of epoch 2."""
    seed, e, n = 3, 2, 100
    loaders = make_loaders(build_datasets("cifar10", fake_cifar10, seed=seed), n, seed=seed)
    loaders.set_epoch(e)
    x, y = _first(loaders.train)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(shuffle_seed(seed, e))).tolist()
    arr = load_cifar("cifar10", fake_cifar10)
    np.testing.assert_array_equal(y.numpy(), arr.labels[order])
    ref = CifarTensorDataset(arr, train_augment=True, generator=torch.Generator().manual_seed(augment_seed(seed, e)))
    expect = torch.stack([ref[i][0] for i in order])
    torch.testing.assert_close(x, expect, rtol=0, atol=0)


def test_seed0_order_is_the_old_trainers(fake_cifar10):
    """The committed runs (seed 0) used DistributedSampler(seed=0).set_epoch(e): the same order."""
    from torch.utils.data import DistributedSampler

    bundle = build_datasets("cifar10", fake_cifar10)
    loaders = make_loaders(bundle, 10, seed=0)
    old = DistributedSampler(bundle.train_set, num_replicas=1, rank=0, shuffle=True, seed=0)
    for e in (0, 4):
        loaders.set_epoch(e)
        old.set_epoch(e)
        assert list(loaders.train_sampler) == list(old)


def test_demo_wrapper_gives_the_train_stream(fake_cifar10):
    train, test, info = cifar_loaders("cifar10", fake_cifar10, batch_size=16, seed=4)
    loaders = make_loaders(build_datasets("cifar10", fake_cifar10, seed=4), 16, 16, seed=4)
    assert _same([(x, y) for x, y in train], _epoch(loaders, 0))
    assert info.n_train == 100 and info.n_test == 50 and not info.is_sample
    assert info.classes == [f"c{i}" for i in range(10)]
    assert sum(len(b[1]) for b in test) == 50


def test_ranks_partition_train_and_test(fake_cifar10):
    bundle = build_datasets("cifar10", fake_cifar10)
    seen_train, seen_test = [], []
    for rank in range(2):
        loaders = make_loaders(bundle, 10, 7, seed=1, rank=rank, world=2)
        loaders.set_epoch(1)
        seen_train.append(list(loaders.train_sampler))
        seen_test += list(loaders.test.sampler)
    assert sorted(seen_train[0] + seen_train[1]) == list(range(100))  # 100 / 2: no padding
    assert sorted(seen_test) == list(range(50))
    assert list(ShardSampler(5, 1, 2)) == [1, 3]


def test_workers_seeded_per_epoch_and_reproducible(fake_cifar10):
    def run(e):
        loaders = make_loaders(build_datasets("cifar10", fake_cifar10), 25, seed=0, num_workers=2)
        return _epoch(loaders, e)

    a, b = run(1), run(1)
    assert _same(a, b)
    # worker w's crops come from worker_seed(...): not the single-process stream, and not shared by workers
    single = _epoch(make_loaders(build_datasets("cifar10", fake_cifar10), 25, seed=0), 1)
    assert [torch.equal(p[1], q[1]) for p, q in zip(a, single)] == [True] * 4
    assert not _same(a, single)


# ---------------------------------------------------------------- subsets: one rule for CIFAR and ImageFolder


def test_class_balanced_subsets_cifar(fake_cifar10):
    bundle = build_datasets("cifar10", fake_cifar10, train_subset=50, test_subset=20, seed=1)
    assert bundle.n_train == 50 and bundle.n_test == 20
    assert torch.bincount(bundle.train_set.labels, minlength=10).tolist() == [5] * 10
    assert torch.bincount(bundle.test_set.labels, minlength=10).tolist() == [2] * 10
    full = build_datasets("cifar10", fake_cifar10, train_subset=10_000)
    assert full.n_train == 100 and full.description["n_train"] == 100


def test_class_balanced_subsets_imagefolder(fake_imagefolder):
    bundle = build_datasets("imagenet", fake_imagefolder, train_subset=8, test_subset=4, image_size=32, seed=0)
    assert bundle.num_classes == 4 and bundle.input_size == (3, 32, 32)
    assert np.bincount(bundle.train_set.targets).tolist() == [2] * 4
    assert np.bincount(bundle.test_set.targets).tolist() == [1] * 4
    # the same rule as CIFAR: the kept files are subset_indices of the folder's labels
    whole = build_datasets("imagenet", fake_imagefolder, image_size=32)
    assert whole.n_train == 32 and whole.n_test == 16
    idx = subset_indices(np.array(whole.train_set.targets), 8, seed=0)
    assert [s[0] for s in bundle.train_set.samples] == [whole.train_set.samples[i][0] for i in idx]
    assert build_datasets("imagenet", fake_imagefolder, train_subset=1000, image_size=32).n_train == 32


def test_subset_rule_on_unequal_classes():
    labels = np.array([0] * 10 + [1] * 3 + [2] * 7)
    idx = subset_indices(labels, 12, seed=0)  # 12 // 3 = 4 per class, capped by the smallest class (3)
    assert np.bincount(labels[idx]).tolist() == [3, 3, 3]
    assert subset_indices(labels, 20) is None and subset_indices(labels, None) is None
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="positive integer"):
            subset_indices(labels, bad)


# ---------------------------------------------------------------- ImageFolder augmentation is seeded too


def test_imagefolder_stream_seeded_and_global_rng_untouched(tmp_path):
    root = make_fake_imagefolder(tmp_path / "im", num_classes=2, train_per_class=4, val_per_class=2, size=24)
    loaders = make_loaders(build_datasets("imagenet", root, image_size=16), 8, seed=1)
    a = _epoch(loaders, 2)
    before = torch.get_rng_state()
    b = _epoch(make_loaders(build_datasets("imagenet", root, image_size=16), 8, seed=1), 2)
    assert torch.equal(torch.get_rng_state(), before)
    assert _same(a, b) and a[0][0].shape == (8, 3, 16, 16)
    assert not _same(a, _epoch(loaders, 3))
    x, y = _first(loaders.test)
    assert x.shape == (4, 3, 16, 16) and y.tolist() == [0, 0, 1, 1]


# ---------------------------------------------------------------- bundle contents and bad input


def test_bundle_description_is_strict_json(fake_cifar100):
    bundle = build_datasets("cifar100", fake_cifar100, train_subset=100)
    d = json.loads(json.dumps(bundle.description, allow_nan=False))
    assert d["dataset"] == "cifar100" and d["num_classes"] == 100 and d["n_train"] == 100
    assert d["n_test"] == 100 and d["is_sample"] is False and d["input_size"] == [3, 32, 32]
    assert bundle.num_classes == 100 and len(bundle.classes) == 100
    x, y = bundle.train_set[0]
    assert x.shape == (3, 32, 32) and isinstance(y, int)


def test_bad_arguments_are_named(fake_cifar10):
    with pytest.raises(ValueError, match="unknown dataset 'mnist'"):
        build_datasets("mnist")
    with pytest.raises(ValueError, match="train_subset"):
        build_datasets("cifar10", fake_cifar10, train_subset=0)
    with pytest.raises(ValueError, match="download=True is not possible for imagenet"):
        build_datasets("imagenet", fake_cifar10, download=True)
    bundle = build_datasets("cifar10", fake_cifar10)
    with pytest.raises(ValueError, match="batch_size"):
        make_loaders(bundle, 0)
    with pytest.raises(ValueError, match="rank"):
        make_loaders(bundle, 4, rank=2, world=2)
    with pytest.raises(ValueError, match="epoch"):
        make_loaders(bundle, 4).set_epoch(-1)


def test_write_fake_cifar_balanced_labels(tmp_path):
    write_fake_cifar(tmp_path, n_train=30, n_test=20)
    assert np.bincount(load_cifar("cifar10", tmp_path).labels).tolist() == [3] * 10
