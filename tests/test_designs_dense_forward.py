"""The dense-equivalent forward of IGC-V2 blocks and SSC convs (the default) computes the same function as
their structured ops (values and gradients), and the MAC counter counts the structured ops."""
import copy

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from strucspars_viz import count_params_macs
from strucspars_viz.designs import IGCV2Block, StructuredSparseConv2d

CASES = {
    "igcv2 C=36 K=(6,6) stride 2": lambda: IGCV2Block(36, (6, 6), stride=2),
    "igcv2 C=24 K=(2,3,4)": lambda: IGCV2Block(24, (2, 3, 4), relu=False),
    "ssc G=16 f=3 h=8 stride 2": lambda: StructuredSparseConv2d(16, 32, 3, 16, 3, 8, stride=2, bias=True),
    "ssc G=4 f=1 h=2": lambda: StructuredSparseConv2d(12, 8, 3, 4, 1, 2),
    "ssc pointwise": lambda: StructuredSparseConv2d.pointwise(8, 6, bias=True),
    "ssc depthwise 5x5": lambda: StructuredSparseConv2d.depthwise(6, 5),
}


def _pair(make):
    torch.manual_seed(0)
    fast = make().train()
    with torch.no_grad():  # BN affine away from 1 / 0, so that a wrong path through it shows
        for p in fast.parameters():
            p.add_(0.1 * torch.randn_like(p))
    slow = copy.deepcopy(fast)
    slow.dense_forward = False
    return fast, slow


@pytest.mark.parametrize("case", list(CASES))
def test_dense_forward_equals_the_structured_ops(case):
    fast, slow = _pair(CASES[case])
    cin = fast.channels if isinstance(fast, IGCV2Block) else fast.in_channels
    x = torch.randn(3, cin, 11, 11, generator=torch.Generator().manual_seed(1))
    y_fast, y_slow = fast(x), slow(x)  # training mode: dense path vs structured path
    assert torch.allclose(y_fast, y_slow, atol=1e-5, rtol=1e-4)
    w = torch.randn_like(y_fast)
    (y_fast * w).sum().backward()
    (y_slow * w).sum().backward()
    for (name, a), (_, b) in zip(fast.named_parameters(), slow.named_parameters()):
        assert torch.allclose(a.grad, b.grad, atol=1e-4, rtol=1e-3), name
    for (name, a), (_, b) in zip(fast.named_buffers(), slow.named_buffers()):  # BN running statistics
        assert torch.allclose(a.float(), b.float(), atol=1e-6), name


@pytest.mark.parametrize("case", list(CASES))
def test_eval_outputs_agree_and_the_counter_counts_the_structured_ops(case):
    fast, slow = _pair(CASES[case])
    cin = fast.channels if isinstance(fast, IGCV2Block) else fast.in_channels
    x = torch.randn(2, cin, 7, 7)
    fast.eval(), slow.eval()
    with torch.no_grad():
        assert torch.allclose(fast(x), slow(x), atol=1e-5, rtol=1e-4)
    out = fast(x).shape[-1]
    macs = count_params_macs(fast, (cin, 7, 7)).macs
    assert fast.dense_forward is True  # the counter restores the switch
    assert macs == count_params_macs(slow, (cin, 7, 7)).macs
    if isinstance(fast, StructuredSparseConv2d):
        assert macs == fast.param_count() * out * out  # closed form: kept weights x output positions
    else:
        k2 = fast.body.w1.kernel_size[0] ** 2
        assert macs == (k2 * fast.channels + fast.channels * sum(fast.branch_sizes)) * out * out
    with torch.no_grad(), FlopCounterMode(display=False) as flops:  # what the dense path really runs
        fast(torch.zeros(1, cin, 7, 7))
    if "pointwise" in case:  # the pattern is already dense
        assert flops.get_total_flops() // 2 == macs
    else:
        assert flops.get_total_flops() // 2 > macs


def test_set_dense_forward_reports_only_the_switches_it_changed():
    from strucspars_viz.counting import set_dense_forward

    net = torch.nn.Sequential(IGCV2Block(4, (2, 2)), StructuredSparseConv2d(4, 4, 3, 2, 1, 1), torch.nn.ReLU())
    net[1].dense_forward = False
    assert set_dense_forward(net, False) == [net[0]]
    assert not net[0].dense_forward and not net[1].dense_forward
    assert set_dense_forward(net, True) == [net[0], net[1]] and set_dense_forward(net, True) == []
