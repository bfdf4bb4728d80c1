"""The CIFAR torch dataset (normalisation, SPEC §5 augmentation) and the balanced subset draw.
Loading: test_data_cifar.py; roots and sample: test_data_roots.py; builder/loaders: test_data_loaders.py."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from strucspars_viz.data import CifarArrays, CifarTensorDataset, balanced_subset, cifar_mean_std


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
    assert len(ds) == 2 and ds[0][1] == 5 and ds[1][1] == 1 and ds.targets == [5, 1]


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


def test_cifar_loaders_subset_on_sample(no_data_env):
    from strucspars_viz.data import cifar_loaders

    with pytest.warns(UserWarning, match="bundled CIFAR-10"):
        train, test, info = cifar_loaders(batch_size=50, train_subset=200, test_subset=100)
    assert info.is_sample and info.n_train == 200 and info.n_test == 100
    labels = torch.cat([y for _, y in test])
    assert torch.bincount(labels, minlength=10).tolist() == [10] * 10
    x, y = next(iter(train))
    assert x.shape == (50, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
