"""The out-of-the-box variants: Torch-Pruning at equal MACs, ShuffleNet-shuffle model equals its masked model."""
import warnings

import pytest
import torch

import strucspars_viz as sv
from strucspars_viz.timing.variants import build_variants, shuffle_modules, strucspars_model


@pytest.mark.slow
def test_torch_pruning_matches_strucspars_macs_within_2_percent():
    pytest.importorskip("torch_pruning")
    vs = {v.name: v for v in build_variants(["resnet20:ss65", "resnet20:tp65"], iters=1)}
    ss, tp, dense = vs["resnet20:ss65"], vs["resnet20:tp65"], vs["resnet20:dense"]
    assert abs(tp.macs - ss.macs) / ss.macs <= 0.02
    assert tp.reference == ss.reference == "resnet20:dense"
    assert sv.count_params_macs(tp.model, (1, 3, 32, 32)).macs == tp.macs < dense.macs
    assert tp.model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.slow
def test_shufflenet_variant_equals_its_masked_model_and_has_no_gathers_left():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compressed, sp = strucspars_model("resnet20", 0.65, iters=1, shuffle="shufflenet")
    before = sv.export.count_permutes(compressed)
    replaced = shuffle_modules(compressed)
    assert replaced > 0 and sv.export.count_permutes(compressed) == before - replaced
    x = torch.randn(2, 3, 32, 32)
    assert sv.max_output_difference(sp.model, compressed, x) < 1e-4
