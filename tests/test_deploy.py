"""The deploy path equals the masked model (fp32, eval, non-trivial BN); no timing asserts."""
import copy

import numpy as np
import pytest
import torch
from torch import nn

import strucspars_viz as sv
from conftest import randomize_bn
from strucspars_viz.deploy import BatchedGroupConv1x1, Gather, coarser_conv, dense_equivalent, optimize_for_inference
from strucspars_viz.export import PermutedGroupConv2d
from strucspars_viz.models import build_model


def masked_and_compressed(name, seed=0):
    model = build_model(name).eval()
    randomize_bn(model, seed)
    sp = sv.StructuredSparsifier(model)
    rng = np.random.default_rng(seed)
    sp.set_permutations({n: (rng.permutation(st.cout), rng.permutation(st.cin)) for n, st in sp.layers.items()})
    sp.set_groups({n: int(2 ** rng.integers(0, int(np.log2(st.max_groups)) + 1)) for n, st in sp.layers.items()})
    sp.apply_masks()
    return model, sv.compress(sp, fold=True).eval()


def _diff(ref, cand, x):
    with torch.no_grad():
        y = ref(x)
        return float((y - cand(x)).abs().max()), float(y.abs().max())


@pytest.mark.parametrize("name", ["resnet20", pytest.param("resnet56", marks=pytest.mark.slow)])
@pytest.mark.parametrize("layout", ["nchw", "cl"])
def test_deploy_equals_masked_model(name, layout):
    masked, compressed = masked_and_compressed(name)
    x = torch.randn(2, 3, 32, 32)
    xx = x.contiguous(memory_format=torch.channels_last) if layout == "cl" else x
    deployed, rep = optimize_for_inference(compressed, xx, repeats=1, return_report=True)
    diff, scale = _diff(masked, deployed, xx)
    assert scale > 1e-2 and diff < 1e-4
    assert rep.bn_folded > 0 and rep.gathers_after <= rep.gathers_before
    assert set(rep.model_ms) == {"fold/BN/push", "kernel choice"}
    grouped = {n for n, m in compressed.named_modules() if isinstance(m, PermutedGroupConv2d)}
    assert set(rep.choices) == grouped or (not rep.choices and rep.notes)  # chosen, or not kept (said so)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in deployed.modules())
    assert _diff(masked, compressed, x)[0] < 1e-4  # the input model is untouched


def test_deploy_without_choice_and_on_dense_model():
    masked, compressed = masked_and_compressed("resnet20", seed=1)
    x = torch.randn(1, 3, 32, 32)
    assert _diff(masked, optimize_for_inference(compressed, x, choose=False), x)[0] < 1e-4
    assert _diff(masked, optimize_for_inference(masked, x), x)[0] < 1e-4  # no grouped convs: BN folding only


def _pgc(cin=8, cout=8, k=1, stride=1, g=2, seed=0):
    gen = torch.Generator().manual_seed(seed)
    conv = nn.Conv2d(cin, cout, k, stride, k // 2, groups=g, bias=True)
    return PermutedGroupConv2d(sv.ChannelPermute(torch.randperm(cin, generator=gen).numpy()), conv,
                               sv.ChannelPermute(torch.randperm(cout, generator=gen).numpy())).eval()


@pytest.mark.parametrize("k,stride", [(1, 1), (3, 1), (3, 2), (1, 2)])
def test_dense_equivalent_equals_grouped_layer(k, stride):
    pgc = _pgc(k=k, stride=stride, g=4)
    x = torch.randn(2, 8, 7, 7)
    assert torch.allclose(dense_equivalent(pgc)(x), pgc(x), atol=1e-5)


@pytest.mark.parametrize("coarse", [1, 2, 4])
def test_coarser_conv_equals_finer_grouping(coarse):
    conv = nn.Conv2d(16, 8, 3, padding=1, groups=8).eval()
    x = torch.randn(2, 16, 5, 5)
    with torch.no_grad():
        c = coarser_conv(conv, coarse)
        assert c.groups == coarse and torch.allclose(c(x), conv(x), atol=1e-5)
    with pytest.raises(ValueError, match="must divide"):
        coarser_conv(conv, 3)


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("cl", [False, True])
def test_batched_1x1_equals_grouped_conv(stride, cl):
    conv = nn.Conv2d(8, 12, 1, stride, groups=4).eval()
    x = torch.randn(2, 8, 5, 5)
    x = x.contiguous(memory_format=torch.channels_last) if cl else x
    with torch.no_grad():
        assert torch.allclose(BatchedGroupConv1x1(conv)(x), conv(x), atol=1e-5)


def test_gather_keep_cl_preserves_layout_and_values():
    x = torch.randn(2, 6, 3, 3).contiguous(memory_format=torch.channels_last)
    idx = torch.tensor([5, 3, 1, 0, 2, 4])
    y = Gather(idx, "keep_cl")(x)
    assert y.is_contiguous(memory_format=torch.channels_last) and torch.equal(y, x[:, idx])
    assert Gather(idx)(x).is_contiguous()  # plain index_select returns NCHW (why keep_cl exists)
    with pytest.raises(ValueError, match="mode"):
        Gather(idx, "nhwc")


class _Chain(nn.Module):
    """A grouped conv whose scatter feeds, through ReLU, a dense conv, which feeds a grouped conv's gather."""

    def __init__(self):
        super().__init__()
        self.a = _pgc(seed=1)
        self.relu = nn.ReLU()
        self.b = nn.Conv2d(8, 8, 3, padding=1)
        self.c = _pgc(seed=2)

    def forward(self, x):
        return self.c(self.relu(self.b(self.relu(self.a(x)))))


def test_permutations_pushed_into_dense_neighbours():
    m = _Chain().eval()
    x = torch.randn(2, 8, 6, 6)
    deployed, rep = optimize_for_inference(m, x, choose=False, return_report=True)
    assert rep.gathers_before == 4 and rep.gathers_pushed == 2 and rep.gathers_after == 2
    assert _diff(m, deployed, x)[0] < 1e-5


def test_deploy_keeps_shufflenet_reshape_transposes_exact():
    import warnings

    from strucspars_viz.timing.variants import shuffle_modules, strucspars_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compressed, sp = strucspars_model("resnet20", 0.65, iters=1, shuffle="shufflenet")
    randomize_bn(sp.model)
    compressed = sv.compress(sp, fold=True).eval()
    assert shuffle_modules(compressed) > 0
    x = torch.randn(2, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    assert _diff(sp.model.eval(), optimize_for_inference(compressed, x, repeats=1), x)[0] < 1e-4


def test_deploy_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        optimize_for_inference(nn.Conv2d(3, 3, 1), torch.randn(3, 4, 4))


@pytest.mark.slow
def test_deploy_equals_masked_torchvision_resnet50():
    masked, compressed = masked_and_compressed("resnet50")
    x = torch.randn(1, 3, 96, 96).contiguous(memory_format=torch.channels_last)
    deployed = optimize_for_inference(compressed, x, repeats=1)
    diff, scale = _diff(masked, deployed, x)
    assert scale > 1e-3 and diff < 1e-4


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_onnx_backends_equal_masked_model(backend):
    pytest.importorskip(backend)
    import onnx  # noqa: F401  (the exporter needs it)

    from strucspars_viz.timing.backends import Config, example_input, prepare

    masked, compressed = masked_and_compressed("resnet20", seed=2)
    cfg = Config(2, backend=backend)
    run = prepare(compressed, (3, 32, 32), cfg, torch.device("cpu"))
    out = run()
    y = np.asarray(out[0] if isinstance(out, (list, tuple)) else next(iter(out.values())))
    with torch.no_grad():
        ref = masked(example_input((3, 32, 32), cfg, torch.device("cpu"))).numpy()
    assert np.abs(y - ref).max() < 1e-4


@pytest.mark.slow
def test_deploy_compile_path_equals_masked_model():
    masked, compressed = masked_and_compressed("resnet20", seed=3)
    x = torch.randn(2, 3, 32, 32)
    compiled = optimize_for_inference(compressed, x, choose=False, compile=True)
    assert _diff(masked, compiled, x)[0] < 1e-4
