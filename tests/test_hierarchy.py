import numpy as np
import pytest
import torch

import strucspars_viz as sv
from strucspars_viz.hierarchy import INF_LEVEL, max_level, separation_levels


def brute_level(a, b, cout, cin):
    for k in range(1, max_level(cout, cin) + 1):
        if (a * 2**k) // cout != (b * 2**k) // cin:
            return k
    return INF_LEVEL


@pytest.mark.parametrize("cout,cin,expected", [(64, 64, 64), (64, 256, 64), (48, 32, 16), (3, 64, 1), (7, 7, 1), (2048, 512, 512)])
def test_max_groups(cout, cin, expected):
    assert sv.max_groups(cout, cin) == expected


@pytest.mark.parametrize("cout,cin", [(8, 8), (8, 4), (12, 24), (16, 2), (5, 10)])
def test_separation_levels_match_definition(cout, cin):
    k = separation_levels(cout, cin)
    for a in range(cout):
        for b in range(cin):
            assert k[a, b] == brute_level(a, b, cout, cin)


def test_spec_penalty_example_8x8_level2():
    r = sv.penalty_matrix(8, 8, groups=2)
    assert isinstance(r, np.ndarray) and r.dtype == np.float64
    expected = np.zeros((8, 8))
    expected[:4, 4:] = expected[4:, :4] = 1.0
    for blk in (0, 4):
        expected[blk:blk + 2, blk + 2:blk + 4] = expected[blk + 2:blk + 4, blk:blk + 2] = 0.5
    np.testing.assert_array_equal(r, expected)


def test_penalty_full_depth_and_decay():
    r = sv.penalty_matrix(8, 8, decay=0.25)  # R = R_L, L = 3
    assert r[0, 4] == 1.0 and r[0, 2] == 0.25 and r[0, 1] == 0.0625 and r[0, 0] == 0.0
    # R_g at the maximum group count equals the full-depth R
    np.testing.assert_array_equal(sv.penalty_matrix(8, 8, groups=8), sv.penalty_matrix(8, 8))
    # a dense (odd) layer has nothing to penalise
    assert np.abs(sv.penalty_matrix(3, 8)).sum() == 0


def test_penalty_zero_exactly_inside_current_blocks():
    for g in (1, 2, 4, 8):
        r = sv.penalty_matrix(16, 32, groups=g)
        u = sv.block_mask(16, 32, g)
        finer = sv.block_mask(16, 32, min(2 * g, 16))
        assert np.all(r[u == 0] > 0), "every connection outside the current blocks is penalised"
        assert np.all(r[finer == 1] == 0), "connections kept at 2G groups are not penalised"


def test_block_mask_non_square_and_nested():
    u = sv.block_mask(8, 4, 2)
    assert isinstance(u, np.ndarray) and u.dtype == np.float64
    assert u.shape == (8, 4) and u.sum() == 16
    assert np.array_equal(u[:4, :2], np.ones((4, 2))) and u[:4, 2:].sum() == 0
    for g in (1, 2):
        assert np.all(sv.block_mask(8, 4, 2 * g) <= sv.block_mask(8, 4, g))
    assert sv.block_mask(8, 4, 2, dtype=bool).dtype == bool


@pytest.mark.parametrize("groups", [3, 0, 16, -2, 2.5, "2", True])
def test_block_mask_rejects_bad_groups(groups):
    with pytest.raises(ValueError, match=r"8x4|Cout=8"):  # the message names the layer size
        sv.block_mask(8, 4, groups)


def test_block_mask_non_integer_groups_is_an_error_not_a_truncation():
    # int(2.5) == 2 used to give the G = 2 mask silently
    with pytest.raises(ValueError, match=r"integer power of two.*2\.5.*8x8"):
        sv.block_mask(8, 8, 2.5)
    np.testing.assert_array_equal(sv.block_mask(8, 8, 2.0), sv.block_mask(8, 8, 2))  # integral floats are fine
    with pytest.raises(ValueError, match="integer"):
        sv.kept_fraction(np.ones((8, 8)), 1.5)


def test_groups_for_criterion():
    s = np.ones((8, 8))
    assert sv.groups_for(s, keep=0.9) == 1
    assert sv.groups_for(s, keep=0.5) == 2 and sv.groups_for(s, keep=0.25) == 4
    assert sv.groups_for(np.eye(8), keep=0.9) == 8
    assert sv.groups_for(np.ones((3, 8)), keep=0.0) == 1  # odd channels: dense, no crash
    assert sv.groups_for(np.zeros((4, 4))) == 4  # a dead layer can take any grouping


def test_kept_fraction_brute_force():
    rng = np.random.default_rng(0)
    s = rng.uniform(size=(16, 8))
    for g in (1, 2, 4, 8):
        u = sv.block_mask(16, 8, g)
        assert sv.kept_fraction(s, g) == pytest.approx((s * u).sum() / s.sum())


def test_model_sparsity_formula():
    assert sv.model_sparsity([100, 300], [2, 4]) == pytest.approx(1 - (50 + 75) / 400)


def test_norm_matrix_l1_l2_and_modules():
    w = torch.randn(6, 4, 3, 3)
    s1 = sv.norm_matrix(w)
    assert s1.shape == (6, 4)
    assert torch.allclose(s1[2, 3], w[2, 3].abs().sum())
    assert torch.allclose(sv.norm_matrix(w, p=2)[1, 1], w[1, 1].norm())
    lin = torch.nn.Linear(5, 3)
    assert torch.allclose(sv.norm_matrix(lin), lin.weight.abs())
    conv = torch.nn.Conv2d(4, 6, 3)
    assert sv.norm_matrix(conv).shape == (6, 4)
    with pytest.raises(TypeError, match="nn.Conv2d"):
        sv.norm_matrix(torch.nn.ReLU())
    with pytest.raises(ValueError, match="p must be 1 or 2"):
        sv.norm_matrix(w, p=3)
