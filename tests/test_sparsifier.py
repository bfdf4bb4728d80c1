import numpy as np
import pytest
import torch
from torch import nn

import strucspars_viz as sv
from strucspars_viz.models import build_model


def test_finds_all_convs_but_stem_never_classifier():
    model = build_model("resnet20")
    sp = sv.StructuredSparsifier(model)
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    assert list(sp.layers) == convs[1:]
    assert "conv1" in sp.skipped and "fc" not in sp.layers
    assert any(".downsample.0" in n for n in sp.layers)  # 1x1 projection shortcuts are sparsified
    assert {st.kernel for st in sp.layers.values()} == {9, 1}  # real kernel sizes (SPEC §9)


def test_include_exclude_and_nothing_to_sparsify():
    model = build_model("resnet20")
    sp = sv.StructuredSparsifier(model, exclude=["layer3.*"])
    assert not any(n.startswith("layer3") for n in sp.layers)
    sp = sv.StructuredSparsifier(model, include=["conv1", "layer1.0.conv1"])
    assert list(sp.layers) == ["conv1", "layer1.0.conv1"]
    with pytest.raises(ValueError, match="nothing to sparsify in Sequential"):
        sv.StructuredSparsifier(nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.LazyLinear(2)))
    with pytest.raises(ValueError, match="no nn.Conv2d"):
        sv.StructuredSparsifier(nn.Linear(4, 4))


def test_odd_channels_stay_dense_without_crashing():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(8, 7, 3), nn.Conv2d(7, 16, 1), nn.Conv2d(16, 16, 1))
    sp = sv.StructuredSparsifier(model)
    sp.update_permutations(iters=3)
    groups = sp.update_groups(keep=0.0)
    assert groups["1"] == 1 and groups["2"] == 1 and groups["3"] == 16
    sp.apply_masks()
    out = sv.compress(sp)
    x = torch.randn(2, 3, 12, 12)
    assert sv.max_output_difference(model, out, x) < 1e-5


def test_regularize_equals_gradient_of_penalty():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(8, 16, 3, padding=1))
    sp = sv.StructuredSparsifier(model)
    st = sp.layers["1"]
    rng = np.random.default_rng(0)
    sp.set_permutations({"1": (rng.permutation(16), rng.permutation(8))})
    st.groups = 2
    sp._invalidate()
    w = model[1].weight
    w.grad = torch.zeros_like(w)
    sp.regularize(0.3)
    # gradient of lam * sum_ij R_g[P_inv[i], Q_inv[j]] * |W_ij|_1, computed by autograd
    w2 = w.detach().clone().requires_grad_(True)
    r = torch.as_tensor(sv.penalty_matrix(16, 8, groups=2), dtype=torch.float32)
    r_unperm = r[torch.as_tensor(st.row_inv)][:, torch.as_tensor(st.col_inv)]
    (0.3 * (r_unperm[:, :, None, None] * w2.abs()).sum()).backward()
    torch.testing.assert_close(w.grad, w2.grad)
    assert torch.allclose(sp.regularization_loss(), (r_unperm[:, :, None, None] * w.abs()).sum())


def test_regularizer_drives_planted_layer_block_diagonal():
    torch.manual_seed(0)
    conv = nn.Conv2d(16, 16, 1, bias=False)
    model = nn.Sequential(nn.Conv2d(3, 16, 1), conv)
    sp = sv.StructuredSparsifier(model)
    sp.update_permutations(iters=5)
    sp.update_groups(keep=0.0)
    sp.layers["1"].groups = 2
    sp._invalidate()
    st = sp.layers["1"]
    off_block = (st.mask(dtype=torch.float32) == 0)[:, :, None, None]
    start_off = conv.weight.detach()[off_block].abs().sum()
    before = sp.kept_fractions()["1"][2]
    opt = torch.optim.SGD([conv.weight], lr=0.01)
    for _ in range(300):
        opt.zero_grad()
        conv.weight.grad = torch.zeros_like(conv.weight)
        sp.regularize(1.0)
        opt.step()
    # Plain subgradient steps leave off-block weights oscillating around 0 with amplitude <= lr * lam.
    assert conv.weight.detach()[off_block].abs().max() <= 0.01 + 1e-6
    assert conv.weight.detach()[off_block].abs().sum() < 0.1 * start_off
    assert sp.kept_fractions()["1"][2] > before + 0.2


def test_reach_target_bisection_lands_in_window():
    torch.manual_seed(0)
    model = build_model("resnet56")
    sp = sv.StructuredSparsifier(model)
    sp.update_permutations(iters=2)
    for target in (0.3, 0.5, 0.7):
        res = sp.reach_target(target)
        assert target <= res.sparsity <= target + 0.01 or not res.exact
        assert res.sparsity >= target and res.sparsity == pytest.approx(sp.sparsity())
        # reach_target's groups are what the criterion gives at its keep, when exact
        if res.exact:
            assert sp.groups() == {n: sv.groups_for(s, res.keep) for n, s in sp.norm_matrices(permuted=True).items()}
    with pytest.raises(ValueError, match="unreachable"):
        sp.reach_target(0.999)


def test_reach_target_lands_in_window_on_a_small_network():
    """ResNet-20: one layer going G -> 2G moves sparsity by up to ~7 %, so a single global keep often
    overshoots; the criterion-ordered single promotions must still land in [target, target + 0.01]."""
    torch.manual_seed(0)
    sp = sv.StructuredSparsifier(build_model("resnet20"))
    sp.update_permutations(iters=2)
    for target in (0.3, 0.4, 0.5, 0.6, 0.65, 0.7):
        res = sp.reach_target(target)
        assert target <= res.sparsity <= target + 0.01, (target, res)


def test_sparsity_uses_real_kernel_sizes():
    model = build_model("resnet20")
    sp = sv.StructuredSparsifier(model)
    for st in sp.layers.values():
        st.groups = 2
    assert sp.sparsity() == pytest.approx(0.5)
    sizes = {n: m.weight.numel() for n, m in sp.modules.items()}
    sp.layers["layer1.0.conv1"].groups = 4
    expected = 1 - sum(sizes[n] / sp.layers[n].groups for n in sizes) / sum(sizes.values())
    assert sp.sparsity() == pytest.approx(expected)


@pytest.mark.parametrize("opt_name", ["sgd", "adamw"])
def test_masked_training_keeps_zeros_exactly(opt_name):
    torch.manual_seed(0)
    model = build_model("resnet20")
    sp = sv.StructuredSparsifier(model)
    rng = np.random.default_rng(1)
    sp.set_permutations({n: (rng.permutation(st.cout), rng.permutation(st.cin)) for n, st in sp.layers.items()})
    for st in sp.layers.values():
        st.groups = 4
    sp.apply_masks()
    if opt_name == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=1e-2)
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(4, 3, 32, 32)).sum().backward()
        opt.step()
    for name, st in sp.layers.items():
        w = sp.modules[name].weight
        off = w[st.mask(dtype=w.dtype) == 0]
        assert torch.count_nonzero(off) == 0, name
        assert torch.count_nonzero(w) > 0
    with pytest.raises(RuntimeError, match="frozen"):
        sp.update_permutations(iters=1)


def test_state_dict_round_trip():
    model = build_model("resnet20")
    sp = sv.StructuredSparsifier(model)
    sp.update_permutations(iters=2)
    sp.update_groups(keep=0.6)
    state = sp.state_dict()
    other = sv.StructuredSparsifier(build_model("resnet20"))
    other.load_state_dict(state)
    for n in sp.layers:
        np.testing.assert_array_equal(sp.layers[n].row_perm, other.layers[n].row_perm)
        np.testing.assert_array_equal(sp.layers[n].col_perm, other.layers[n].col_perm)
        assert sp.layers[n].groups == other.layers[n].groups
    bad = {**state, "layers": {k: v for k, v in list(state["layers"].items())[1:]}}
    with pytest.raises(ValueError, match="missing"):
        other.load_state_dict(bad)


def test_set_permutations_recomputes_inverses_for_masks():
    """SPEC §9: the released SHUFFLENET ablation kept stale inverses; ours derives them on use."""
    model = build_model("resnet20")
    sp = sv.StructuredSparsifier(model)
    name = "layer2.0.conv2"
    st = sp.layers[name]
    st.groups = 4
    before = sp.mask(name).clone()
    p = sv.shufflenet_permutation(st.cout, 4)
    sp.set_permutations({name: (p, p)})
    expected = sv.block_mask(st.cout, st.cin, 4)[sv.inverse_permutation(p)][:, sv.inverse_permutation(p)]
    np.testing.assert_array_equal(sp.mask(name)[:, :, 0, 0].numpy(), expected)
    np.testing.assert_array_equal(st.mask_array(), expected)
    assert not torch.equal(before, sp.mask(name))


def test_include_string_is_one_pattern_not_characters():
    model = build_model("resnet20")
    sp = sv.StructuredSparsifier(model, include="layer1*")
    assert sp.layers and all(n.startswith("layer1.") for n in sp.layers)
    assert "conv1" not in sp.layers  # iterating "layer1*" by characters matched the stem via "*"
    sp = sv.StructuredSparsifier(model, exclude="layer3*")
    assert not any(n.startswith("layer3") for n in sp.layers) and any(n.startswith("layer2") for n in sp.layers)
    with pytest.raises(TypeError, match="pattern"):
        sv.StructuredSparsifier(model, include=[1, 2])


def test_load_state_dict_rejects_non_permutations_and_bad_groups():
    model = build_model("resnet20")
    sp = sv.StructuredSparsifier(model)
    good = sp.state_dict()
    name = "layer2.0.conv2"

    def with_entry(**changes):
        layers = {k: dict(v) for k, v in good["layers"].items()}
        layers[name].update(changes)
        return {**good, "layers": layers}

    dup = torch.arange(32)
    dup[5] = 3
    with pytest.raises(ValueError, match=r"layer layer2\.0\.conv2: row_perm is not a permutation.*index 3 appears 2 times"):
        sp.load_state_dict(with_entry(row_perm=dup))
    with pytest.raises(ValueError, match=r"layer2\.0\.conv2: col_perm .*index 39 is out of range"):
        sp.load_state_dict(with_entry(col_perm=torch.arange(32) + 8 * (torch.arange(32) == 31)))
    with pytest.raises(ValueError, match=r"layer2\.0\.conv2: .*power of two.*got 3"):
        sp.load_state_dict(with_entry(groups=3))
    with pytest.raises(ValueError, match=r"layer2\.0\.conv2: .*groups=64 does not divide"):
        sp.load_state_dict(with_entry(groups=64))
    # nothing was half-loaded by the failed attempts
    assert sp.groups() == {n: 1 for n in sp.layers}
    assert np.array_equal(sp.layers[name].row_perm, np.arange(32))
    with pytest.raises(ValueError, match="not a permutation"):
        sp.set_permutations({name: (dup.numpy(), np.arange(32))})
