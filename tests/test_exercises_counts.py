"""Notebook 05's counting exercises against ground truth: real convs, FlopCounterMode, the package's counter and
the package's compressed models (beyond the generic checks of test_exercises.py)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from strucspars_viz import exercises as ex
from strucspars_viz.counting import count_params_macs
from strucspars_viz.exercises import counts
from strucspars_viz.export import compress
from strucspars_viz.models import build_model
from strucspars_viz.sparsifier import StructuredSparsifier

NAMES = [e.name for e in counts.EXERCISES]


# the natural student solutions, as notebook 05 stores them
def conv_params(in_channels, out_channels, kernel_size, groups, bias):
    weights = out_channels * (in_channels // groups) * kernel_size * kernel_size
    return weights + (out_channels if bias else 0)


def conv_macs(in_channels, out_channels, kernel_size, groups, height, width, stride, padding):
    h_out = (height + 2 * padding - kernel_size) // stride + 1
    w_out = (width + 2 * padding - kernel_size) // stride + 1
    return out_channels * (in_channels // groups) * kernel_size * kernel_size * h_out * w_out


def compressed_cost(layers, groups):
    params = macs = 0
    for (cin, cout, k, h_out, w_out), g in zip(layers, groups):
        n = cout * (cin // g) * k * k
        params += n
        macs += n * h_out * w_out
    return params, macs


NATURAL = {"conv_params": conv_params, "conv_macs": conv_macs, "compressed_cost": compressed_cost}


def test_registered_with_checkers():
    assert NAMES == ["conv_params", "conv_macs", "compressed_cost"]
    for name in NAMES:
        assert name in ex.EXERCISES and name in ex.SOLUTIONS and callable(getattr(ex, f"check_{name}"))


@pytest.mark.parametrize("name", NAMES)
def test_natural_solutions_pass_on_several_seeds(name):
    for seed in (0, 1, 2):
        result = ex.check_exercise(name, NATURAL[name], seed=seed)
        assert result.passed and result.cases >= 8, str(result)


@pytest.mark.parametrize("name", NAMES)
def test_float_and_tensor_answers_are_accepted(name):
    fn = NATURAL[name]
    as_float = lambda *a: np.asarray(fn(*a), dtype=np.float64)  # noqa: E731  (e.g. a student who used `/`)
    as_tensor = lambda *a: torch.as_tensor(np.asarray(fn(*a), dtype=np.int64))  # noqa: E731
    assert ex.check_exercise(name, as_float).passed
    assert ex.check_exercise(name, as_tensor).passed


def test_failure_messages_state_the_rule():
    msg = ex.check_conv_params(lambda cin, cout, k, g, b: cout * cin * k * k).message
    assert "(Cout, Cin/G, k, k)" in msg
    msg = ex.check_conv_macs(lambda *a: 2 * conv_macs(*a)).message
    assert "FlopCounterMode" in msg and "floor((H + 2p - k) / s) + 1" in msg
    msg = ex.check_compressed_cost(lambda layers, groups: (compressed_cost(layers, groups)[0], 0)).message
    assert msg.startswith("MACs: got 0") and "fractions kept" in msg
    result = ex.check_compressed_cost(lambda layers, groups: compressed_cost(layers, groups)[0])
    assert not result.passed and "pair (params, macs)" in result.message


def test_edge_cases_are_covered():
    rng = np.random.default_rng(0)
    params = counts.CONV_PARAMS.make_cases(rng)
    assert any(c.args[3] == 1 for c in params) and any(c.args[3] == c.args[0] == c.args[1] > 1 for c in params)
    assert any(c.args[2] == 1 for c in params) and any(c.args[4] for c in params) and any(c.args[0] != c.args[1] for c in params)
    macs = counts.CONV_MACS.make_cases(rng)
    assert any(c.args[6] == 2 for c in macs) and any(c.args[4] != c.args[5] for c in macs)
    assert any(c.args[3] == c.args[0] == c.args[1] > 1 for c in macs) and any(c.args[2] == 1 for c in macs)
    cost = counts.COMPRESSED_COST.make_cases(rng)
    assert any(set(c.args[1]) == {1} for c in cost)
    assert any(len(set(c.args[1])) > 1 for c in cost) and any(len(c.args[0]) >= 50 for c in cost)
    assert any(r[3] != r[4] for c in cost for r in c.args[0])


@pytest.mark.parametrize("seed", range(4))
def test_closed_forms_match_torch_on_random_real_convs(seed):
    """Real CPU convs (not meta), with bias, random groups, strides, paddings and non-square inputs."""
    rng = np.random.default_rng(seed)
    for _ in range(6):
        g = int(2 ** rng.integers(0, 4))
        cin, cout = g * int(rng.integers(1, 6)), g * int(rng.integers(1, 6))
        k = int(rng.choice([1, 3, 5, 7]))
        s, p = int(rng.integers(1, 4)), int(rng.integers(0, k // 2 + 1))
        h, w = int(rng.integers(k, 30)), int(rng.integers(k, 30))
        bias = bool(rng.integers(2))
        conv = nn.Conv2d(cin, cout, k, stride=s, padding=p, groups=g, bias=bias)
        assert conv_params(cin, cout, k, g, bias) == sum(q.numel() for q in conv.parameters())
        with FlopCounterMode(display=False) as flops, torch.no_grad():
            out = conv(torch.randn(1, cin, h, w))
        assert conv_macs(cin, cout, k, g, h, w, s, p) == flops.get_total_flops() // 2
        assert compressed_cost([(cin, cout, k, out.shape[2], out.shape[3])], [g])[1] == flops.get_total_flops() // 2
        # the registered references agree with the closed forms
        assert ex.SOLUTIONS["conv_params"](cin, cout, k, g, bias) == conv_params(cin, cout, k, g, bias)
        assert ex.SOLUTIONS["conv_macs"](cin, cout, k, g, h, w, s, p) == conv_macs(cin, cout, k, g, h, w, s, p)


def _every_conv(model: nn.Module, size):
    """(conv, input H, W) of every nn.Conv2d, stem and grouped ones included, from one forward with hooks."""
    seen = []
    hooks = [m.register_forward_hook(lambda m, a, o: seen.append((m, a[0].shape[2], a[0].shape[3])))
             for m in model.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        model.eval()(torch.zeros(1, *size))
    for h in hooks:
        h.remove()
    return seen


@pytest.mark.parametrize(("name", "size"), [("resnet20", (3, 32, 32)), ("resnet50", (3, 64, 48))])
def test_conv_sums_equal_the_package_counter_on_whole_models(name, size):
    """count_params_macs counts conv + linear MACs: the sum of conv_macs over every conv plus the classifier's
    in x out equals it; the same for parameters (plus BatchNorm's and the classifier's)."""
    torch.manual_seed(0)
    model = build_model(name)
    total = count_params_macs(model, size)
    convs = _every_conv(model, size)
    fc = [m for m in model.modules() if isinstance(m, nn.Linear)]
    macs = sum(conv_macs(c.in_channels, c.out_channels, c.kernel_size[0], c.groups, h, w, c.stride[0], c.padding[0])
               for c, h, w in convs)
    assert macs + sum(m.in_features * m.out_features for m in fc) == total.macs
    params = sum(conv_params(c.in_channels, c.out_channels, c.kernel_size[0], c.groups, c.bias is not None)
                 for c, _, _ in convs)
    others = sum(p.numel() for m in model.modules() if not isinstance(m, nn.Conv2d) for p in m.parameters(recurse=False))
    assert params + others == total.params


def test_conv_params_on_every_conv_of_densenet201():
    with torch.device("meta"):
        model = build_model("densenet201")
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) > 190
    for c in convs:
        assert conv_params(c.in_channels, c.out_channels, c.kernel_size[0], c.groups, c.bias is not None) == \
            sum(p.numel() for p in c.parameters())


@pytest.mark.parametrize(("name", "size", "seed"), [("resnet20", (3, 32, 32), 0), ("resnet20", (3, 32, 32), 1),
                                                    ("resnet50", (3, 64, 64), 0)])
def test_compressed_cost_matches_the_packages_compressed_model(name, size, seed):
    """compress() replaces each sparsified conv by a grouped one (plus parameter-free shuffles): the counts of
    the compressed model differ from the dense ones by exactly compressed_cost(groups) - compressed_cost(1)."""
    torch.manual_seed(seed)
    model = build_model(name).eval()
    sp = StructuredSparsifier(model)
    table = counts.layer_table(model, size)
    assert list(table) == list(sp.layers)
    rng = np.random.default_rng(seed)
    groups = dict(zip(table, counts._random_groups(rng, list(table.values()), most=16)))
    assert len(set(groups.values())) > 2
    sp.set_groups(groups)
    # non-trivial shuffles: the gathers they add are parameter- and MAC-free
    sp.set_permutations({n: (rng.permutation(st.cout), rng.permutation(st.cin)) for n, st in sp.layers.items()})
    dense, small = count_params_macs(model, size), count_params_macs(compress(sp), size)
    rows, g = list(table.values()), [groups[n] for n in table]
    for fn in (compressed_cost, ex.SOLUTIONS["compressed_cost"]):
        (p_g, m_g), (p_1, m_1) = fn(rows, g), fn(rows, [1] * len(rows))
        assert dense.params - p_1 + p_g == small.params
        assert dense.macs - m_1 + m_g == small.macs
    assert small.macs / dense.macs != pytest.approx(small.params / dense.params, abs=1e-3)


def test_layer_table_leaves_the_model_alone():
    model = build_model("resnet20")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    table = counts.layer_table(model, (3, 32, 20))
    assert all(p.device.type == "cpu" for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert table["layer1.0.conv1"] == (16, 16, 3, 32, 20)
    assert table["layer3.0.downsample.0"] == (32, 64, 1, 8, 5)
    assert "conv1" not in table  # the stem is not sparsified
