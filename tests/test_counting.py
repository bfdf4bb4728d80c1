"""Parameter and MAC counts against closed forms and the published ResNet-50 totals."""
import pytest
import torch
import torchvision
from torch import nn

import strucspars_viz as sv
from strucspars_viz.counting import count_params_macs


def test_conv_and_linear_macs_closed_form():
    # conv: Cout * Cin/G * kh * kw per output pixel; linear: in * out
    model = nn.Sequential(nn.Conv2d(8, 16, 3, padding=1, groups=4, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))
    cost = count_params_macs(model, (2, 8, 6, 6))  # MACs are per forward of the whole batch
    conv = 16 * (8 // 4) * 9 * 36
    assert cost.macs == 2 * (conv + 16 * 10)
    assert cost.params == 16 * 2 * 9 + 2 * 16 + 16 * 10 + 10
    assert count_params_macs(model, (8, 6, 6)).macs == conv + 160  # (C, H, W) means N = 1


def test_input_validation_and_modes_restored():
    conv = nn.Conv2d(3, 4, 1).train()
    with pytest.raises(ValueError, match="input_size"):
        count_params_macs(conv, (8, 8))
    with pytest.raises(ValueError, match="input_size"):
        count_params_macs(conv, (1, 3, 0, 8))
    with pytest.raises(ValueError, match="unknown counter 'fvcore'"):
        count_params_macs(conv, (3, 8, 8), counter="fvcore")
    count_params_macs(conv, (3, 8, 8))
    assert conv.training


def test_resnet50_conv_linear_total():
    cost = count_params_macs(torchvision.models.resnet50(), (3, 224, 224))
    assert cost.params == 25_557_032
    assert cost.macs == pytest.approx(4.089e9, rel=2e-4)


def test_thop_adds_batchnorm_and_pooling_and_leaves_the_model_alone():
    pytest.importorskip("thop")
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
    before = {k for k, _ in model.named_buffers()}
    plain = count_params_macs(model, (3, 4, 4))
    full = count_params_macs(model, (3, 4, 4), counter="thop")
    assert full.params == plain.params
    assert full.macs - plain.macs == 4 * 8 * 16  # thop: an affine BN costs 4 per output element, ReLU 0
    assert {k for k, _ in model.named_buffers()} == before  # thop's total_ops buffers went on a copy


@pytest.mark.slow
def test_resnet50_thop_matches_the_papers_total_with_a_constant_offset():
    pytest.importorskip("thop")
    model = torchvision.models.resnet50().eval()
    dense_t, dense_h = (count_params_macs(model, (3, 224, 224), counter=c) for c in ("torch", "thop"))
    assert dense_h.macs == pytest.approx(4.134e9, rel=2e-4)  # the paper's dense ResNet-50 "GFLOPs"
    offset = dense_h.macs - dense_t.macs
    assert offset == pytest.approx(44.6e6, rel=2e-3)
    sp = sv.StructuredSparsifier(model)
    sp.set_groups({n: min(4, st.max_groups) for n, st in sp.layers.items()})
    small = sv.compress(sp)
    comp_t, comp_h = (count_params_macs(small, (3, 224, 224), counter=c) for c in ("torch", "thop"))
    assert comp_t.macs < 0.4 * dense_t.macs
    assert comp_h.macs - comp_t.macs == offset  # grouping changes only the convs
