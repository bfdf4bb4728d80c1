"""CIFAR networks built from the SPEC §10 designs: registered, trainable, sparsifiable, parameter-matched."""
import pytest
import torch

from strucspars_viz import StructuredSparsifier
from strucspars_viz.designs import IGCV2Block, ShuffleNetUnit, StructuredSparseConv2d, count_params, is_complementary, match_width
from strucspars_viz.models import build_model, list_models, model_entry
from strucspars_viz.models.designs import DEFAULT_WIDTHS, DESIGN_BUILDERS, TARGET_PARAMS, WIDTH_CANDIDATES, matched_width

NAMES = sorted(DESIGN_BUILDERS)


def test_registered_for_cifar():
    assert set(NAMES) <= set(list_models("cifar"))
    for name in NAMES:
        assert model_entry(name).input_size == (3, 32, 32)


@pytest.mark.parametrize("name", NAMES)
def test_forward_backward_and_sparsifier(name):
    model = build_model(name, num_classes=10)
    x = torch.randn(2, 3, 32, 32)
    out = model(x)
    assert out.shape == (2, 10)
    torch.nn.functional.cross_entropy(out, torch.tensor([1, 7])).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    sp = StructuredSparsifier(model)  # works: ungrouped convs besides the stem (projections, 1x1s)
    assert sp.layers and all(sp.modules[n].groups == 1 for n in sp.layers)
    expected = {"igcv2_resnet20": IGCV2Block, "ssc_resnet20": StructuredSparseConv2d,
                "shufflenet_resnet20": ShuffleNetUnit}.get(name)
    if expected is not None:
        assert any(isinstance(m, expected) for m in model.modules())


@pytest.mark.parametrize("name", NAMES)
def test_parameter_count_matches_the_target(name):
    """Default width: within 5 % of the StrucSpars ResNet-20 50 % model, and the closest of its neighbours."""
    params = count_params(build_model(name))
    assert abs(params - TARGET_PARAMS) <= 0.05 * TARGET_PARAMS
    w, step = DEFAULT_WIDTHS[name], WIDTH_CANDIDATES[name].step
    near = matched_width(name, widths=range(max(step, w - 2 * step), w + 2 * step + 1, step))
    assert (near.width, near.params) == (w, params)


def test_igcv2_network_blocks_are_complementary():
    model = build_model("igcv2_resnet20")
    blocks = [m for m in model.modules() if isinstance(m, IGCV2Block)]
    assert len(blocks) == 18 and all(is_complementary(b) for b in blocks)


def test_match_width_picks_the_closest_and_refuses_misses():
    from torch import nn

    build = lambda w: nn.Linear(w, w, bias=False)  # w^2 parameters
    assert match_width(build, 100, range(5, 15)).width == 10
    assert match_width(build, 110, range(5, 15), tol=0.1).width == 10  # 100 (-9.1 %) beats 121 (+10 %)
    assert match_width(build, 150, range(5, 13)).width == 12  # 144: -4 %, inside the 5 % window
    with pytest.raises(ValueError, match=r"no width within 5% of 200 parameters; closest: width 12 -> 144"):
        match_width(build, 200, range(5, 13))
