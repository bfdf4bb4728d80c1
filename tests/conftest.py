import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    np.random.seed(0)
    yield


def planted_matrix(cout: int, cin: int, groups: int, rng: np.random.Generator, noise: float = 0.0):
    """A block-diagonal norm matrix with ``groups`` blocks, scrambled by random row/column permutations.

    Returns ``(S_scrambled, row_perm, col_perm)`` with ``S_scrambled = S_planted[row_perm][:, col_perm]``.
    """
    s = np.zeros((cout, cin))
    bo, bi = cout // groups, cin // groups
    for r in range(groups):
        s[r * bo:(r + 1) * bo, r * bi:(r + 1) * bi] = rng.uniform(0.5, 1.5, (bo, bi))
    s += noise * rng.uniform(0.0, 1.0, (cout, cin))
    p, q = rng.permutation(cout), rng.permutation(cin)
    return s[p][:, q], p, q


def randomize_bn(model: torch.nn.Module, seed: int = 0) -> None:
    """Non-trivial BN statistics so that equivalence checks cannot pass by accident."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) * 0.2 - 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=g) * 0.2 - 0.1)
