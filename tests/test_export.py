import numpy as np
import pytest
import torch
import torchvision
from torch import nn

import strucspars_viz as sv
from conftest import randomize_bn
from strucspars_viz.models import build_model


def random_structure(sp, seed=0):
    """Random permutations and mixed group counts (1 .. max) on every layer."""
    rng = np.random.default_rng(seed)
    sp.set_permutations({n: (rng.permutation(st.cout), rng.permutation(st.cin)) for n, st in sp.layers.items()})
    for st in sp.layers.values():
        st.groups = int(2 ** rng.integers(0, int(np.log2(st.max_groups)) + 1))
    sp._invalidate()


def closed_form_params(model, sp):
    """Dense parameter count minus the weights outside the kept blocks: sum_l n_l (1 - 1/G_l)."""
    dense = sum(p.numel() for p in model.parameters())
    return dense - sum(st.size - st.size // st.groups for st in sp.layers.values())


@pytest.mark.parametrize("name,size", [("resnet20", (2, 3, 32, 32)), ("resnet50", (1, 3, 96, 96))])
def test_compress_equals_masked_model(name, size):
    model = build_model(name).eval()
    randomize_bn(model)
    sp = sv.StructuredSparsifier(model)
    random_structure(sp)
    assert len({st.groups for st in sp.layers.values()}) > 2
    sp.apply_masks()
    compressed = sv.compress(sp).eval()
    x = torch.randn(*size)
    assert sv.max_output_difference(model, compressed, x) < 1e-4
    grouped = [m for m in compressed.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
    assert len(grouped) == sum(st.groups > 1 for st in sp.layers.values())
    assert sum(p.numel() for p in compressed.parameters()) == closed_form_params(model, sp)


def test_compress_without_prior_masking_matches_masked_copy_and_leaves_input_untouched():
    model = build_model("resnet20").eval()
    randomize_bn(model, seed=1)
    sp = sv.StructuredSparsifier(model)
    random_structure(sp, seed=3)
    dense_before = {k: v.clone() for k, v in model.state_dict().items()}
    compressed = sv.compress(sp)
    for k, v in model.state_dict().items():
        assert torch.equal(v, dense_before[k])
    sp.apply_masks()
    assert sv.max_output_difference(model, compressed, torch.randn(2, 3, 32, 32)) < 1e-4


def test_compress_from_model_and_state():
    model = build_model("resnet20").eval()
    sp = sv.StructuredSparsifier(model)
    random_structure(sp, seed=5)
    sp.apply_masks()
    a = sv.compress(sp)
    b = sv.compress(model, state=sp.state_dict())
    x = torch.randn(2, 3, 32, 32)
    assert sv.max_output_difference(a, b, x) == 0.0
    with pytest.raises(ValueError, match="needs the per-layer permutations"):
        sv.compress(model)


def test_grouped_weight_blocks():
    w = torch.arange(4 * 4, dtype=torch.float32).reshape(4, 4, 1, 1)
    g = sv.export.grouped_weight(w, np.arange(4), np.arange(4), 2)
    assert g.shape == (4, 2, 1, 1)
    assert g[:, :, 0, 0].tolist() == [[0, 1], [4, 5], [10, 11], [14, 15]]


def test_conv_bias_and_identity_permutations():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3, bias=True))
    sp = sv.StructuredSparsifier(model)
    sp.layers["2"].groups = 2
    sp.apply_masks()
    out = sv.compress(sp)
    assert isinstance(out[2].gather, nn.Identity) and isinstance(out[2].scatter, nn.Identity)
    assert sv.max_output_difference(model, out, torch.randn(2, 3, 10, 10)) < 1e-5


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet101", "densenet201"])
def test_compress_torchvision_models(name):
    model = build_model(name).eval()
    randomize_bn(model)
    sp = sv.StructuredSparsifier(model)
    random_structure(sp, seed=7)
    sp.apply_masks()
    compressed = sv.compress(sp)
    x = torch.randn(1, 3, 64, 64)
    assert sv.max_output_difference(model, compressed, x) < 1e-4
    assert sum(p.numel() for p in compressed.parameters()) == closed_form_params(model, sp)


def test_count_params_macs_resnet50_reference():
    cost = sv.count_params_macs(torchvision.models.resnet50(), (3, 224, 224))
    assert round(cost.params / 1e6, 1) == 25.6
    assert round(cost.macs / 1e9, 1) == 4.1


def test_macs_are_group_aware():
    dense = nn.Conv2d(16, 32, 3, padding=1, bias=False)
    grouped = nn.Conv2d(16, 32, 3, padding=1, bias=False, groups=4)
    d = sv.count_params_macs(dense, (16, 8, 8))
    g = sv.count_params_macs(grouped, (16, 8, 8))
    assert d.macs == 32 * 16 * 9 * 64 and g.macs * 4 == d.macs
    assert g.params * 4 == d.params
    with pytest.raises(ValueError, match="input_size"):
        sv.count_params_macs(dense, (8, 8))


@pytest.mark.parametrize("name,size", [("resnet20", (2, 3, 32, 32)), ("resnet50", (1, 3, 64, 64)), ("densenet201", (1, 3, 64, 64))])
def test_folded_shuffles_equivalent_and_fewer(name, size):
    model = build_model(name).eval()
    randomize_bn(model, seed=2)
    sp = sv.StructuredSparsifier(model)
    random_structure(sp, seed=11)
    for st in sp.layers.values():  # every layer grouped, so every block has a pair to fold
        st.groups = max(2, st.groups) if st.max_groups > 1 else 1
    sp._invalidate()
    sp.apply_masks()
    plain = sv.compress(sp).eval()
    folded = sv.compress(sp, fold=True).eval()
    x = torch.randn(*size)
    assert sv.max_output_difference(model, folded, x) < 1e-4
    assert sv.export.count_permutes(folded) < sv.export.count_permutes(plain)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_compress_equivalence_on_cuda():
    model = build_model("resnet20").eval().cuda()
    randomize_bn(model)
    sp = sv.StructuredSparsifier(model)
    random_structure(sp, seed=13)
    sp.apply_masks()
    compressed = sv.compress(sp, fold=True)
    x = torch.randn(8, 3, 32, 32, device="cuda")
    assert sv.max_output_difference(model, compressed, x) < 1e-3  # TF32 / cuDNN algorithm differences


# ---------------------------------------------------------------- compress_and_check / sparsify_to_target
def test_compress_and_check_reports_equivalence_and_closed_form_costs():
    model = build_model("resnet20").eval()
    randomize_bn(model, seed=4)
    sp = sv.StructuredSparsifier(model)
    random_structure(sp, seed=17)
    dense_before = {k: v.clone() for k, v in model.state_dict().items()}
    report = sv.export.compress_and_check(model, sp.state_dict(), torch.randn(2, 3, 32, 32))
    # the input model is not masked or otherwise changed
    assert all(torch.equal(v, dense_before[k]) for k, v in model.state_dict().items())
    assert report.equivalent and report.max_abs_diff < 1e-4 and report.rel_diff < 1e-4
    assert report.before.params == sum(p.numel() for p in model.parameters())
    assert report.after.params == closed_form_params(model, sp)
    # MACs of the convs drop by exactly n_l (1 - 1/G_l) * H_l W_l: compare with a masked-free count
    assert report.after.macs < report.before.macs
    d = report.to_dict()
    assert d["params_after"] == report.after.params and d["equivalent"] is True
    sp.apply_masks()
    assert sv.max_output_difference(model, report.compressed, torch.randn(2, 3, 32, 32)) < 1e-4


def test_compress_and_check_nan_is_not_equivalent():
    model = build_model("resnet20").eval()
    sp = sv.StructuredSparsifier(model)
    random_structure(sp, seed=1)
    with torch.no_grad():
        model.fc.weight.fill_(float("nan"))
    report = sv.export.compress_and_check(model, sp.state_dict(), torch.randn(2, 3, 32, 32))
    assert report.equivalent is False  # NaN >= tol is False, so a naive check would pass
    assert report.to_dict()["max_abs_diff"] is None
    assert not sv.export.is_equivalent(float("inf")) and sv.export.is_equivalent(0.0)


def test_compress_and_check_detects_a_wrong_compression(monkeypatch):
    model = build_model("resnet20").eval()
    randomize_bn(model, seed=2)
    sp = sv.StructuredSparsifier(model)
    random_structure(sp, seed=3)
    real = sv.export.grouped_weight
    monkeypatch.setattr(sv.export, "grouped_weight", lambda w, p, q, g: real(w, p[::-1].copy(), q, g))
    report = sv.export.compress_and_check(model, sp.state_dict(), torch.randn(2, 3, 32, 32))
    assert not report.equivalent and report.max_abs_diff > 1e-3


def test_sparsify_to_target_lands_in_window_and_masks():
    model = build_model("resnet20").eval()
    sp, result = sv.export.sparsify_to_target(model, 0.5, iters=2)
    assert sp.masked and result.sparsity >= 0.5
    assert result.sparsity <= 0.5 + 0.01 + 1e-9 or not result.exact
    assert result.groups == sp.groups()
    # fractions are those before masking: after masking every f(G <= chosen G) is 1
    after = sp.kept_fractions()
    layer = next(n for n, g in sp.groups().items() if g > 1)
    g = sp.groups()[layer]
    assert after[layer][g] == pytest.approx(1.0)
    assert result.fractions[layer][g] < 1.0 - 1e-6
    for n, st in sp.layers.items():
        if st.groups > 1:
            w = sp.modules[n].weight
            assert torch.all(w[sp.mask(n).expand_as(w) == 0] == 0)


def test_compress_rejects_a_state_of_another_architecture():
    r20 = sv.StructuredSparsifier(build_model("resnet20"))
    r56 = build_model("resnet56")
    with pytest.raises(ValueError, match=r"missing from the state: .*layer1\.3\.conv1"):
        sv.compress(r56, state=r20.state_dict())
    # states without the conv list (older files) are compared with the default sparsifiable convs
    old = {k: v for k, v in r20.state_dict().items() if k != "convs"}
    with pytest.raises(ValueError, match="missing from the state"):
        sv.compress(r56, state=old)
    # same names, other widths: a shape mismatch naming the layer
    wide = sv.models.CifarResNet(20, width=32)
    with pytest.raises(ValueError, match=r"shape mismatches: conv1: state 16x3, model 32x3"):
        sv.compress(wide, state=r20.state_dict())
    with pytest.raises(ValueError, match="unexpected layers"):
        sv.compress(build_model("resnet20"), state=sv.StructuredSparsifier(r56).state_dict())


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_compress_and_check_on_cuda():
    model = build_model("resnet20").eval().cuda()
    randomize_bn(model)
    sp = sv.StructuredSparsifier(model)
    random_structure(sp, seed=19)
    report = sv.export.compress_and_check(model, sp.state_dict(), torch.randn(8, 3, 32, 32), tol=1e-3)
    assert report.equivalent and next(report.compressed.parameters()).is_cuda
