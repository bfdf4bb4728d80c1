"""Every registered model (timm-style: a new model is tested the moment it is registered): builds, runs on
its registry input size, the sparsifier finds the expected convs, and compressed == masked."""
import pytest
import torch
from torch import nn

import strucspars_viz as sv
from conftest import randomize_bn
from strucspars_viz.models import build_model, list_models, model_entry


def _params():
    """ImageNet models and CIFAR models over 0.5 M parameters (the deeper ResNets) are slow."""
    for name in list_models():
        entry = model_entry(name)
        slow = entry.dataset == "imagenet" or sum(p.numel() for p in entry.builder().parameters()) > 500_000
        yield pytest.param(name, id=name, marks=[pytest.mark.slow] if slow else [])


@pytest.mark.parametrize("name", list(_params()))
def test_registered_model(name):
    entry = model_entry(name)
    model = build_model(name).eval()
    randomize_bn(model, seed=3)
    x = torch.randn(2, *entry.input_size)
    with torch.no_grad():
        y = model(x)
    assert y.shape[0] == 2 and y.ndim == 2 and torch.isfinite(y).all()

    convs = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    expected = [n for n, m in convs[1:] if m.groups == 1]  # every ungrouped conv but the stem
    if not expected:
        with pytest.raises(ValueError, match="nothing to sparsify"):
            sv.StructuredSparsifier(model)
        return
    sp = sv.StructuredSparsifier(model)
    assert list(sp.layers) == expected
    assert convs[0][0] in sp.skipped
    assert not any(isinstance(model.get_submodule(n), nn.Linear) for n in sp.layers)

    # a small target, reached with real (if brief) permutation learning
    sp, result = sv.export.sparsify_to_target(model, 0.2, iters=1, init="identity")
    assert result.sparsity >= 0.2
    report = sv.export.compress_and_check(model, sp.state_dict(), x[:1] if entry.dataset == "imagenet" else x)
    assert report.equivalent, (report.max_abs_diff, report.rel_diff)
    assert report.rel_diff < 1e-5
    assert report.after.params < report.before.params
