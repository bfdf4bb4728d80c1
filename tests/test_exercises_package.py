"""The exercises' definitions are what the package actually does: the un-permuted penalty is the one
``regularize`` adds, the grouped weight is the one ``compress`` builds, the sparsity the sparsifier's."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from strucspars_viz import compress, penalty_matrix
from strucspars_viz.exercises import SOLUTIONS, as_array
from strucspars_viz.export import PermutedGroupConv2d
from strucspars_viz.sparsifier import StructuredSparsifier


def _sparsifier() -> StructuredSparsifier:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 16, 3, padding=1, bias=False),
                          nn.Conv2d(16, 8, 1, bias=False))
    sp = StructuredSparsifier(model)
    rng = np.random.default_rng(0)
    sp.set_permutations({n: (rng.permutation(st.cout), rng.permutation(st.cin)) for n, st in sp.layers.items()})
    sp.set_groups({"1": 4, "2": 2})
    return sp


def test_unpermuted_penalty_is_what_regularize_adds():
    sp = _sparsifier()
    model = sp.model
    for name, st in sp.layers.items():
        w = sp.modules[name].weight
        w.grad = torch.zeros_like(w)
        r_g = as_array(penalty_matrix(st.cout, st.cin, st.groups)).astype(np.float64)
        expected = as_array(SOLUTIONS["unpermuted_penalty"](r_g, st.row_perm, st.col_perm))
        sp.regularize(1.0)  # grad = sign(W) * R_g[P_inv][:, Q_inv]
        added = as_array(w.grad) / np.sign(as_array(w.detach()))
        assert np.allclose(added, expected[:, :, None, None]), name
        for other in model.parameters():
            other.grad = None


def test_grouped_weight_is_what_compress_builds():
    sp = _sparsifier()
    compressed = compress(sp)
    for name, st in sp.layers.items():
        module = dict(compressed.named_modules())[name]
        assert isinstance(module, PermutedGroupConv2d) and module.conv.groups == st.groups
        built = SOLUTIONS["grouped_weight"](sp.modules[name].weight.detach(), st.row_perm, st.col_perm, st.groups)
        assert torch.equal(module.conv.weight.detach(), torch.as_tensor(as_array(built))), name


def test_model_sparsity_is_the_sparsifiers():
    sp = _sparsifier()
    sizes = [st.size for st in sp.layers.values()]
    groups = [st.groups for st in sp.layers.values()]
    closed_form = 1 - (8 * 16 * 9 / 4 + 16 * 8 / 2) / (8 * 16 * 9 + 16 * 8)
    assert np.isclose(SOLUTIONS["model_sparsity"](sizes, groups), closed_form)
    assert np.isclose(sp.sparsity(), closed_form)
