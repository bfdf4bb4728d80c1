"""IGC-V1 / IGC-V2 / ShuffleNet blocks, path counts and the complementary / balance conditions (SPEC §10).

Ground truth: paths enumerated one by one through edges read from the weights with explicit loops,
the forward pass itself (Jacobian support, the linear map of a 1x1 product), closed forms and a
numerical minimiser.
"""
import itertools
import math

import numpy as np
import pytest
import torch
from scipy.optimize import minimize_scalar
from torch import nn

from strucspars_viz.designs import (
    ChannelPermutation,
    IGCV1Block,
    IGCV2Block,
    ShuffleNetUnit,
    balance_curve,
    balanced_branch_sizes,
    balanced_param_count,
    check_complementary,
    effective_norm_matrix,
    factor_branch_sizes,
    find_violation,
    igcv1_param_count,
    igcv2_param_count,
    is_complementary,
    linear_stages,
    optimal_stages,
    path_counts,
    shufflenet_unit_param_count,
)
from strucspars_viz.permutation import shufflenet_permutation


# ---------------------------------------------------------------- brute force
def _edges(stage) -> dict[int, list[int]]:
    """out channel -> input channels with a nonzero weight, read with loops (independent of paths.py)."""
    mod = stage.module
    if stage.kind == "perm":
        return {a: [int(p)] for a, p in enumerate(mod.perm.tolist())}
    w = np.abs(mod.weight.detach().numpy())
    cout, cin, g = mod.out_channels, mod.in_channels, mod.groups
    edges = {}
    for o in range(cout):
        r = o // (cout // g)
        edges[o] = [r * (cin // g) + j for j in range(cin // g) if w[o, j].sum() > 0]
    return edges


def _enumerate_paths(block) -> np.ndarray:
    """Count paths input -> output by listing every one of them (depth-first)."""
    stages = [_edges(s) for s in linear_stages(block)]
    cout = len(stages[-1])
    cin = max(max(v, default=-1) for v in stages[0].values()) + 1
    counts = np.zeros((cout, cin), dtype=np.int64)

    def back(o_top: int, level: int, channel: int) -> None:
        if level < 0:
            counts[o_top, channel] += 1
            return
        for src in stages[level][channel]:
            back(o_top, level - 1, src)

    for o in range(cout):
        back(o, len(stages) - 1, o)
    return counts


def _jacobian_support(body: nn.Module, cin: int) -> np.ndarray:
    """|d y_o / d x_i| summed over space > 0, from the forward pass of an affine block (eval, no ReLU)."""
    body.eval()
    x = torch.randn(1, cin, 5, 5, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda t: body(t).sum((0, 2, 3)), x)  # (Cout, 1, Cin, 5, 5)
    return (jac.abs().sum((1, 3, 4)) > 1e-12).numpy()


# ---------------------------------------------------------------- IGC-V1
@pytest.mark.parametrize("lg,mg", [(2, 4), (4, 2), (3, 4), (1, 6), (6, 1)])
def test_igcv1_is_complementary_and_paths_match_enumeration(lg, mg):
    block = IGCV1Block(lg * mg, lg, mg)
    counts = path_counts(block)
    np.testing.assert_array_equal(counts, _enumerate_paths(block))
    assert counts.shape == (lg * mg, lg * mg)
    assert is_complementary(block) and (counts == 1).all()
    assert block(torch.randn(2, lg * mg, 6, 6)).shape == (2, lg * mg, 6, 6)


def test_igcv1_params_closed_form_and_bad_width():
    block = IGCV1Block(12, 3, 4)
    assert sum(p.numel() for p in block.parameters()) == igcv1_param_count(12, 3, 4, bn=True) == 9 * 12 * 4 + 12 * 3 + 24
    with pytest.raises(ValueError, match=r"channels=12 .* 3 \* 5 = 15"):
        IGCV1Block(12, 3, 5)


def test_igcv1_without_interleave_is_not_complementary():
    block = IGCV1Block(8, 2, 4)
    block.body.interleave.set_permutation(np.arange(8))  # the secondary groups now read one primary group
    counts = path_counts(block)
    np.testing.assert_array_equal(counts, _enumerate_paths(block))
    assert not is_complementary(block)
    v = find_violation(counts)
    assert _enumerate_paths(block)[v.output, v.input] == v.paths != 1


# ---------------------------------------------------------------- IGC-V2
@pytest.mark.parametrize("c,sizes", [(8, (2, 2, 2)), (16, (4, 4)), (24, (2, 3, 4)), (24, (4, 3, 2)), (12, (6, 2)), (30, (2, 3, 5))])
def test_igcv2_product_is_all_ones(c, sizes):
    block = IGCV2Block(c, sizes)
    counts = path_counts(block)
    np.testing.assert_array_equal(counts, _enumerate_paths(block))
    assert (counts == 1).all() and is_complementary(block)
    check_complementary(block)  # no error
    # the permutations are SPEC §10's shuffles with C / K_l groups
    perms = [s.module.perm.numpy() for s in linear_stages(block) if s.kind == "perm"]
    for k, p in zip(sizes, perms):
        np.testing.assert_array_equal(p, shufflenet_permutation(c, c // k))


def test_igcv2_broken_permutation_names_a_bad_pair():
    block = IGCV2Block(8, (2, 2, 2))
    block.body.p2.set_permutation(np.arange(8))  # stage 3 then mixes the same digit again
    counts = path_counts(block)
    truth = _enumerate_paths(block)
    np.testing.assert_array_equal(counts, truth)
    assert not is_complementary(block)
    v = find_violation(counts)
    assert truth[v.output, v.input] == v.paths and v.paths in (0, 2)
    with pytest.raises(ValueError, match=f"output channel {v.output} .* input channel {v.input} by {v.paths} paths"):
        check_complementary(block)


def test_path_support_matches_the_forward_pass():
    """Which outputs depend on which inputs, from the forward pass, equals path_counts > 0 (permutation order)."""
    for block in (IGCV2Block(8, (2, 2, 2), relu=False), IGCV1Block(8, 2, 4, relu=False)):
        block.double()
        for s in linear_stages(block):  # break it so the support is not trivially all ones
            if s.kind == "perm":
                s.module.set_permutation(np.roll(np.arange(8), 1) if s.name.endswith("2") else np.arange(8))
        np.testing.assert_array_equal(_jacobian_support(block.body, 8), path_counts(block) > 0)


def test_planted_zero_weights_remove_paths():
    block = IGCV2Block(8, (2, 2, 2))
    with torch.no_grad():
        block.body.w3.weight[5] = 0.0  # output 5 of stage 3 reads nothing
    counts = path_counts(block)
    np.testing.assert_array_equal(counts, _enumerate_paths(block))
    assert (counts == 0).sum() > 0 and not is_complementary(block)


def test_effective_s_of_a_complementary_1x1_product_is_the_linear_map():
    """With one path per pair, |W_eff[o, i]| is that path's product of |w|: the effective S exactly."""
    block = IGCV2Block(8, (2, 2, 2), kernel_size=1, relu=False).double().eval()
    eye = torch.eye(8, dtype=torch.float64).reshape(8, 8, 1, 1)
    bn_scale = 1.0 / math.sqrt(1.0 + block.body.bn.eps)  # fresh BN in eval: running var 1, mean 0
    linear_map = block.body(eye)[:, :, 0, 0].T / bn_scale  # column i = response to input channel i
    np.testing.assert_allclose(np.abs(linear_map.detach().numpy()), effective_norm_matrix(block), rtol=1e-10)


def test_igcv2_bad_sizes_are_named():
    with pytest.raises(ValueError, match=r"prod K_l = 32 != C = 64"):
        IGCV2Block(64, (4, 8))
    with pytest.raises(ValueError, match=r"divisor of C=24; \[5\]"):
        IGCV2Block(24, (5, 4))
    with pytest.raises(ValueError, match="empty"):
        IGCV2Block(8, ())


# ---------------------------------------------------------------- balance condition
def test_balanced_branch_sizes():
    assert balanced_branch_sizes(64, 3) == (4, 4, 4)
    assert balanced_branch_sizes(64, 2) == (8, 8)
    assert balanced_branch_sizes(64, 6) == (2,) * 6
    assert balanced_branch_sizes(7, 1) == (7,)
    assert is_complementary(IGCV2Block(27, balanced_branch_sizes(27, 3)))
    with pytest.raises(ValueError, match=r"channels=48 .* 36 \(K=6\) and 49 \(K=7\)"):
        balanced_branch_sizes(48, 2)
    with pytest.raises(ValueError, match=r"C=64: \[1, 2, 3, 6\]"):
        balanced_branch_sizes(64, 4)


@pytest.mark.parametrize("c,s", [(48, 2), (24, 3), (64, 4), (30, 2), (7, 2), (96, 3)])
def test_factor_branch_sizes_is_the_cheapest_factorisation(c, s):
    divisors = [d for d in range(1, c + 1) if c % d == 0]
    best = min((f for f in itertools.product(divisors, repeat=s) if math.prod(f) == c), key=sum)
    got = factor_branch_sizes(c, s)
    assert math.prod(got) == c and sum(got) == sum(best)


def test_param_count_closed_forms_match_the_modules():
    for c, sizes in [(64, (8, 8)), (64, (4, 4, 4)), (24, (2, 3, 4)), (64, (64,))]:
        block = IGCV2Block(c, sizes)
        assert sum(p.numel() for p in block.parameters()) == igcv2_param_count(c, sizes, bn=True)
        if len(set(sizes)) == 1:
            assert balanced_param_count(c, len(sizes)) == pytest.approx(igcv2_param_count(c, sizes))


def test_balance_curve_minimum_near_ln_c():
    for c in (64, 256, 1024):
        res = minimize_scalar(lambda s: balanced_param_count(c, s), bounds=(0.5, 30), method="bounded")
        assert res.x == pytest.approx(optimal_stages(c), abs=1e-3) and optimal_stages(c) == pytest.approx(math.log(c))
        curve = balance_curve(c)
        best_int = int(curve["s_int"][np.argmin(curve["params_int"])])
        assert best_int in (math.floor(math.log(c)), math.ceil(math.log(c)))
        assert curve["params"].min() >= curve["params_opt"] - 1e-6
    curve = balance_curve(64, 8)
    assert curve["exact"].tolist() == [True, True, True, False, False, True, False, False]


# ---------------------------------------------------------------- ShuffleNet unit
def test_shufflenet_unit_paths_params_and_residual():
    unit = ShuffleNetUnit(32, 32, 4, 16)
    counts = path_counts(unit)
    np.testing.assert_array_equal(counts, _enumerate_paths(unit))
    assert (counts == 16 // 4**2).all()  # the shuffle spreads each group evenly: mid / g^2 paths per pair
    np.testing.assert_array_equal(unit.body.shuffle.perm.numpy(), shufflenet_permutation(16, 4))
    assert sum(p.numel() for p in unit.parameters()) == shufflenet_unit_param_count(32, 32, 4, 16)
    unit.eval()
    x = torch.randn(2, 32, 6, 6)
    torch.testing.assert_close(unit(x), torch.relu(unit.body(x) + x))  # identity shortcut when shapes allow
    unit2 = ShuffleNetUnit(16, 32, 4, 8, stride=2, shortcut="project")
    assert unit2(torch.randn(2, 16, 8, 8)).shape == (2, 32, 4, 4)
    assert sum(p.numel() for p in unit2.parameters()) == shufflenet_unit_param_count(16, 32, 4, 8, projection=True)
    assert ShuffleNetUnit(16, 32, 4, 8, stride=2).shortcut is None  # "auto": no identity possible
    # without the shuffle, a group's outputs only see that group's inputs
    unit.body.shuffle.set_permutation(np.arange(16))
    assert (path_counts(unit) == 0).sum() == 32 * 32 * 3 // 4


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match=r"groups=3 must divide in_channels, mid_channels and out_channels"):
        ShuffleNetUnit(16, 16, 3, 6)
    with pytest.raises(ValueError, match=r"permutation of range\(8\)"):
        ChannelPermutation(np.arange(8)).set_permutation([0, 0, 1, 2, 3, 4, 5, 6])
    with pytest.raises(ValueError, match=r"cannot read the channel action of 1 \(Linear\)"):
        path_counts(nn.Sequential(nn.Conv2d(4, 4, 1), nn.Linear(4, 4)))


def test_partial_path_counts_fill_up_to_all_ones():
    from strucspars_viz.designs import partial_path_counts

    block = IGCV2Block(8, (2, 2, 2))
    steps = partial_path_counts(block)
    assert [n for n, _ in steps] == [s.name for s in linear_stages(block)]
    np.testing.assert_array_equal(steps[-1][1], path_counts(block))
    # after each 1x1 stage (and its shuffle) every input reaches twice as many outputs: 1, 2, 4, 8
    reach = [int((m > 0).sum(0)[0]) for n, m in steps if n.split(".")[-1].startswith("p") or n.endswith("w1")]
    assert reach == [1, 2, 4, 8]


def test_a_compressed_strucspars_layer_reads_as_a_composed_block():
    """gather Q -> grouped conv -> scatter P_inv: its effective S is the masked layer's S, its paths U_G unpermuted."""
    from strucspars_viz import StructuredSparsifier, norm_matrix
    from strucspars_viz.export import PermutedGroupConv2d, compress

    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.Conv2d(8, 8, 3, padding=1, bias=False))
    sp = StructuredSparsifier(model)
    rng = np.random.default_rng(0)
    sp.set_permutations({"1": (rng.permutation(8), rng.permutation(8))})
    sp.set_groups({"1": 4})
    sp.apply_masks()
    layer = [m for m in compress(sp).modules() if isinstance(m, PermutedGroupConv2d)][0]
    np.testing.assert_allclose(effective_norm_matrix(layer), norm_matrix(model[1]).double().numpy(), rtol=1e-6)
    np.testing.assert_array_equal(path_counts(layer), sp.mask("1").reshape(8, 8).numpy().astype(int))
