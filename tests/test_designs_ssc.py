"""StructuredSparseConv2d: our SSC-style pattern, its three reductions, dense equivalence, closed forms."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from strucspars_viz.designs import StructuredSparseConv2d, connectivity, ssc_param_count, ssc_pattern


def _numel(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def _pattern_by_rule(cin, cout, groups, f, h):
    """The documented rule, filter by filter: full on groups r..r+f-1, centre on r+f..r+f+h-1 (mod G)."""
    kind = np.zeros((cout, cin), dtype=int)
    for o in range(cout):
        r = o // (cout // groups)
        for d in range(f + h):
            g = (r + d) % groups
            kind[o, g * (cin // groups):(g + 1) * (cin // groups)] = 2 if d < f else 1
    return kind


@pytest.mark.parametrize("stride", [1, 2])
def test_depthwise_equals_nn_conv2d(stride):
    ssc = StructuredSparseConv2d.depthwise(8, 3, stride=stride)
    ref = nn.Conv2d(8, 8, 3, stride, 1, groups=8, bias=False)
    with torch.no_grad():
        ssc.full.weight.copy_(ref.weight)
    x = torch.randn(2, 8, 9, 9)
    torch.testing.assert_close(ssc(x), ref(x))
    assert _numel(ssc) == ssc_param_count(8, 8, 3, 8, 1, 0) == 8 * 9
    dense = torch.zeros(8, 8, 3, 3)
    for o in range(8):
        dense[o, o] = ref.weight[o, 0].detach()
    torch.testing.assert_close(ssc.dense_weight(), dense)


@pytest.mark.parametrize("cin,cout,groups,stride", [(8, 12, 4, 1), (12, 8, 2, 2), (6, 6, 1, 1)])
def test_groupwise_equals_nn_conv2d(cin, cout, groups, stride):
    ssc = StructuredSparseConv2d.groupwise(cin, cout, 5, groups, stride=stride)
    ref = nn.Conv2d(cin, cout, 5, stride, 2, groups=groups, bias=False)
    with torch.no_grad():
        ssc.full.weight.copy_(ref.weight)
    x = torch.randn(2, cin, 10, 10)
    torch.testing.assert_close(ssc(x), ref(x))
    assert _numel(ssc) == ssc_param_count(cin, cout, 5, groups) == cout * (cin // groups) * 25
    dense = torch.zeros(cout, cin, 5, 5)
    for o in range(cout):
        r = o // (cout // groups)
        dense[o, r * (cin // groups):(r + 1) * (cin // groups)] = ref.weight[o].detach()
    torch.testing.assert_close(ssc.dense_weight(), dense)


def test_pointwise_equals_nn_conv2d():
    ssc = StructuredSparseConv2d.pointwise(6, 10, stride=2)
    ref = nn.Conv2d(6, 10, 1, 2, bias=False)
    with torch.no_grad():
        ssc.centre.weight.copy_(ref.weight)
    x = torch.randn(2, 6, 7, 7)
    torch.testing.assert_close(ssc(x), ref(x))
    assert _numel(ssc) == ssc_param_count(6, 10, 1, 1, 0, 1) == 60
    torch.testing.assert_close(ssc.dense_weight(), ref.weight.detach())
    # the same reduction through a 3x3 pattern: centre taps only, G = 1, equals the 1x1 conv
    ssc3 = StructuredSparseConv2d(6, 10, 3, groups=1, full_span=0, centre_span=1, stride=2)
    with torch.no_grad():
        ssc3.centre.weight.copy_(ref.weight)
    torch.testing.assert_close(ssc3(x), ref(x))
    assert (ssc3.pattern() == 1).all()


@pytest.mark.parametrize("cin,cout,k,groups,f,h,stride", [
    (8, 8, 3, 4, 1, 2, 1), (8, 12, 3, 4, 2, 1, 2), (12, 6, 5, 3, 1, 2, 1), (8, 8, 3, 4, 0, 3, 1), (6, 6, 3, 2, 1, 1, 2),
])
def test_general_pattern_is_its_dense_weight(cin, cout, k, groups, f, h, stride):
    ssc = StructuredSparseConv2d(cin, cout, k, groups, f, h, stride=stride, bias=True)
    x = torch.randn(2, cin, 9, 9)
    dense = F.conv2d(x, ssc.dense_weight(), ssc.dense_bias(), stride=stride, padding=k // 2)
    torch.testing.assert_close(ssc(x), dense, rtol=1e-5, atol=1e-5)
    kind = _pattern_by_rule(cin, cout, groups, f, h)
    np.testing.assert_array_equal(ssc.pattern(), kind)
    np.testing.assert_array_equal(ssc_pattern(cin, cout, k, groups, f, h), kind)
    w = ssc.dense_weight().abs() > 0  # the weights where the pattern says, and nowhere else
    centre = torch.zeros(k, k, dtype=torch.bool)
    centre[k // 2, k // 2] = True
    assert w[torch.as_tensor(kind == 2)].all()
    assert (w[torch.as_tensor(kind == 1)] == centre).all()
    assert not w[torch.as_tensor(kind == 0)].any()
    np.testing.assert_array_equal(connectivity(ssc), (kind > 0).astype(int))
    n_weights = cout * (cin // groups) * (f * k * k + h)
    assert ssc_param_count(cin, cout, k, groups, f, h) == n_weights == _numel(ssc) - cout


def test_forward_has_no_loop_over_filters():
    """Structured ops: two convolutions per forward whatever the number of filters (full part + centre
    part); the default dense-equivalent forward: one."""
    for cout in (8, 64):
        ssc = StructuredSparseConv2d(16, cout, 3, 4, 1, 2)
        for dense, convs in ((False, 2), (True, 1)):
            ssc.dense_forward = dense
            with torch.autograd.profiler.profile() as prof:
                ssc(torch.randn(1, 16, 8, 8))
            assert sum(e.name == "aten::conv2d" for e in prof.function_events) == convs


@pytest.mark.parametrize("kwargs,match", [
    (dict(in_channels=10, out_channels=8, groups=4), r"groups=4 must divide in_channels=10 and out_channels=8"),
    (dict(in_channels=8, out_channels=8, groups=4, full_span=0, centre_span=0), r"no input"),
    (dict(in_channels=8, out_channels=8, groups=2, full_span=2, centre_span=1), r"spans full_span \+ centre_span = 3 input groups but only groups=2"),
    (dict(in_channels=8, out_channels=8, kernel_size=2), r"kernel_size must be odd"),
])
def test_bad_patterns_are_named(kwargs, match):
    args = dict(in_channels=8, out_channels=8, kernel_size=3, groups=1, full_span=1, centre_span=0) | kwargs
    with pytest.raises(ValueError, match=match):
        StructuredSparseConv2d(**args)
