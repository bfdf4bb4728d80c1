"""Ablation arms (SPEC §7), statistics, report schema, baselines, CLI errors (issue 10)."""
import json
import math

import numpy as np
import pytest
import torch
from scipy import stats as st

from strucspars_viz.ablation import arms as A
from strucspars_viz.ablation.baselines import narrow_model, prune_to_params, target_params
from strucspars_viz.ablation.report import COLUMNS, cost_points, read_csv, write_report
from strucspars_viz.ablation.stats import spread, welch_p
from strucspars_viz.export import compress
from strucspars_viz.hierarchy import block_mask
from strucspars_viz.models import build_model
from strucspars_viz.sparsifier import StructuredSparsifier
from strucspars_viz.training.artifacts import read_weights, weights_payload
from strucspars_viz.training.config import resolve_config
from strucspars_viz.training.io import torch_save_atomic


def make_sparsified(folder, seed=0):
    """A sparsified.pt without training: random learned P, Q, G = 4 where possible (else max), masked."""
    torch.manual_seed(seed)
    model = build_model("resnet20")
    with torch.no_grad():  # non-default BN stats/affine, so that a reset is visible
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_()
    sp = StructuredSparsifier(model)
    rng = np.random.default_rng(seed)
    sp.set_permutations({n: (rng.permutation(s.cout), rng.permutation(s.cin)) for n, s in sp.layers.items()})
    sp.set_groups({n: min(4, s.max_groups) for n, s in sp.layers.items()})
    sp.apply_masks()
    cfg = resolve_config({"model": "resnet20", "quick": True, "target": 0.75, "train_subset": 64, "test_subset": 40,
                          "batch_size": 32, "progress": False, "threads": 1, "out": str(folder)})
    folder.mkdir(parents=True, exist_ok=True)
    torch_save_atomic(weights_payload("resnet20", 10, model.state_dict(), mode="strucspars", config=cfg.to_dict(),
                                      sparsifier=sp.state_dict()), folder / "sparsified.pt")
    return folder


@pytest.fixture(scope="module")
def start(tmp_path_factory):
    return read_weights(make_sparsified(tmp_path_factory.mktemp("run")) / "sparsified.pt")


@pytest.fixture(scope="module")
def built(start):
    return {arm: A.build_arm(start, arm, seed=3) for arm in A.ARMS}


def test_finetune_keeps_weights_and_perms(start, built):
    model, sp = built["finetune"]
    for k, v in start.state_dict.items():
        assert torch.equal(model.state_dict()[k], v), k
    for n, entry in start.sparsifier["layers"].items():
        assert np.array_equal(sp.layers[n].row_perm, entry["row_perm"].numpy())
        assert np.array_equal(sp.layers[n].col_perm, entry["col_perm"].numpy())


@pytest.mark.parametrize("arm", ["fromscratch", "shufflenet", "random", "noshuffle"])
def test_reinitialised_arms(start, built, arm):
    model, sp = built[arm]
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            assert torch.equal(m.running_mean, torch.zeros_like(m.running_mean)), name
            assert torch.equal(m.running_var, torch.ones_like(m.running_var)), name
            assert torch.equal(m.weight.data, torch.ones_like(m.weight)) and not m.bias.abs().any(), name
    # Kaiming normal fan_out: std = sqrt(2 / (Cout kh kw)), on the kept (unmasked) weights of a big conv
    conv = dict(model.named_modules())["layer3.2.conv2"]
    kept = conv.weight[sp.mask("layer3.2.conv2").expand_as(conv.weight) == 1]
    expect = math.sqrt(2.0 / (64 * 9))
    assert abs(kept.std().item() / expect - 1) < 0.05
    assert not torch.equal(conv.weight, start.state_dict["layer3.2.conv2.weight"])


def test_permutations_per_arm(start, built):
    learned = start.sparsifier["layers"]
    for n, st_ in built["shufflenet"][1].layers.items():
        g = st_.groups
        assert np.array_equal(st_.row_perm, np.arange(st_.cout).reshape(g, st_.cout // g).T.flatten())
        assert np.array_equal(st_.col_perm, np.arange(st_.cin).reshape(g, st_.cin // g).T.flatten())
    for n, st_ in built["noshuffle"][1].layers.items():
        assert np.array_equal(st_.row_perm, np.arange(st_.cout)) and np.array_equal(st_.col_perm, np.arange(st_.cin))
    for n, st_ in built["fromscratch"][1].layers.items():
        assert np.array_equal(st_.row_perm, learned[n]["row_perm"].numpy())
    rnd = built["random"][1]
    again = A.build_arm(start, "random", seed=3)[1]
    other = A.build_arm(start, "random", seed=4)[1]
    assert all(np.array_equal(rnd.layers[n].row_perm, again.layers[n].row_perm) for n in rnd.layers)
    assert any(not np.array_equal(rnd.layers[n].row_perm, other.layers[n].row_perm) for n in rnd.layers)
    assert sum(not np.array_equal(s.row_perm, np.arange(s.cout)) for s in rnd.layers.values()) == len(rnd.layers)


@pytest.mark.parametrize("arm", A.ARMS)
def test_same_groups_masks_and_compression(start, built, arm):
    model, sp = built[arm]
    assert sp.groups() == {n: e["groups"] for n, e in start.sparsifier["layers"].items()}
    modules = dict(model.named_modules())
    for n, s in sp.layers.items():
        # the mask recomputed here, independently: U_G[P_inv][:, Q_inv]
        u = block_mask(s.cout, s.cin, s.groups)[np.argsort(s.row_perm)][:, np.argsort(s.col_perm)]
        w = modules[n].weight.detach().abs().sum(dim=(2, 3)).numpy()
        assert np.all((w == 0) == (u == 0)), n
    model.eval()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    comp = compress(model, sp.state_dict()).eval()
    with torch.no_grad():
        assert torch.allclose(comp(x), model(x), atol=1e-4, rtol=1e-4)


def test_unknown_arm(start):
    with pytest.raises(ValueError, match="unknown ablation arm 'bogus'"):
        A.build_arm(start, "bogus", 0)


def test_spread_and_welch_by_hand():
    s = spread([1.0, 2.0, 3.0, 4.0])
    sd = math.sqrt(((1.5 ** 2) * 2 + (0.5 ** 2) * 2) / 3)
    half = 3.182446305284263 * sd / 2  # t(0.975, 3) from tables
    assert s.n == 4 and s.mean == 2.5 and s.sd == pytest.approx(sd)
    assert (s.ci_low, s.ci_high) == pytest.approx((2.5 - half, 2.5 + half))
    a, b = [1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0]
    va, vb = 1.0 / 3, (5.0 / 3) / 4  # s^2 / n
    t = (2.0 - 5.5) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / 2 + vb ** 2 / 3)  # Welch-Satterthwaite
    assert welch_p(a, b) == pytest.approx(2 * st.t.sf(abs(t), df), rel=1e-9)
    assert math.isnan(spread([5.0]).sd) and math.isnan(welch_p([1.0], [2.0, 3.0]))


def _fake_job(out, arm, seed, top1, params=1000):
    d = out / arm / f"seed{seed}"
    d.mkdir(parents=True)
    (d / "summary.json").write_text(json.dumps({"top1": top1, "top5": 0.9, "params": params, "macs": 5000,
                                                "params_dense": 4000, "sparsity": 0.75, "epochs": {"finetune": 2}}))
    (d / "config.json").write_text(json.dumps({"target": 0.75}))


def test_report_schema(tmp_path):
    for k, v in enumerate([0.90, 0.91, 0.92]):
        _fake_job(tmp_path, "finetune", k, v)
        _fake_job(tmp_path, "random", k, v - 0.05)
    _fake_job(tmp_path, "magnitude", 0, 0.88, params=1010)
    _fake_job(tmp_path, "magnitude", 1, 0.86, params=1010)
    _fake_job(tmp_path, "narrow", 0, 0.80)  # its budget peer (fromscratch) is absent: no p
    write_report(tmp_path)
    header = (tmp_path / "ablation.csv").read_text().splitlines()[0].split(",")
    assert header[:7] == ["arm", "seed", "top1", "top5", "params", "macs", "sparsity"] and tuple(header) == COLUMNS
    rows = read_csv(tmp_path / "ablation.csv")
    assert [(r["arm"], r["seed"]) for r in rows] == [("finetune", 0), ("finetune", 1), ("finetune", 2),
                                                     ("random", 0), ("random", 1), ("random", 2), ("magnitude", 0),
                                                     ("magnitude", 1), ("narrow", 0)]
    assert rows[0]["top1"] == pytest.approx(90.0) and rows[-2]["sparsity"] == pytest.approx(1 - 1010 / 4000)
    md = (tmp_path / "ablation.md").read_text().splitlines()
    p = welch_p([90.0, 91.0, 92.0], [85.0, 86.0, 87.0])  # random vs the row above
    assert [line for line in md if line.startswith("| random |")][0].endswith(f"| {p:.3g} (finetune) |")
    p = welch_p([90.0, 91.0, 92.0], [88.0, 86.0])  # magnitude vs finetune (equal budget), not vs random
    assert [line for line in md if line.startswith("| magnitude | 2 |")][0].endswith(f"| {p:.3g} (finetune) |")
    assert [line for line in md if line.startswith("| narrow | 1 |")][0].endswith("|  |")
    assert (tmp_path / "ablation.png").stat().st_size > 0


def test_accuracy_vs_cost_written_for_two_targets(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for out, target, params in ((a, 0.5, 2000), (b, 0.75, 1000)):
        for k in range(2):
            _fake_job(out, "finetune", k, 0.9 - k / 100 - (target - 0.5), params=params + 10 * k)
            (out / "finetune" / f"seed{k}" / "config.json").write_text(json.dumps({"target": target}))
    _fake_job(b, "narrow", 0, 0.7)
    write_report(a)
    assert not (a / "accuracy_vs_cost.png").exists() and not (a / "accuracy_vs_cost.md").exists()
    write_report(b, compare=[a])
    assert (b / "accuracy_vs_cost.png").stat().st_size > 0
    points = cost_points(read_csv(b / "ablation.csv") + read_csv(a / "ablation.csv"))
    assert [(p["arm"], p["target"], p["n"], p["params"]) for p in points] == [
        ("finetune", 0.5, 2, 2005), ("finetune", 0.75, 2, 1005), ("narrow", 0.75, 1, 1000)]
    assert points[0]["mean"] == pytest.approx(89.5) and points[1]["mean"] == pytest.approx(64.5)
    assert points[0]["sd"] == pytest.approx(2 ** -0.5) and math.isnan(points[2]["sd"])
    md = (b / "accuracy_vs_cost.md").read_text().splitlines()
    assert "| finetune | 0.5 | 2 | 2,005 | 5,000 | 89.50 +- 0.71 |" in md
    assert "| narrow | 0.75 | 1 | 1,000 | 5,000 | 70.00 |" in md


def test_magnitude_within_two_percent(start):
    target = target_params(start)
    model = build_model("resnet20")
    model.load_state_dict(start.state_dict)
    pruned, info = prune_to_params(model, torch.zeros(1, 3, 32, 32), "magnitude", target)
    n = sum(p.numel() for p in pruned.parameters())
    assert abs(n / target - 1) <= 0.02 and n == info["params"]
    assert pruned(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def _widths(model):
    return [m.out_channels for m in model.modules() if isinstance(m, torch.nn.Conv2d)]


def test_magnitude_is_uniform_and_slimming_global_on_planted_scales():
    """Planted BN scales: every channel of stage 3 near zero except 8, stages 1-2 near one. Global
    ranking (slimming) takes its channels from stage 3; magnitude cuts every layer by the same ratio,
    so its shapes are the narrow model's at the same count."""
    torch.manual_seed(0)
    model = build_model("resnet20")
    with torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.9, 1.0)
                if name.startswith("layer3"):
                    m.weight[8:].uniform_(0.0, 0.01)
    target = 120_000
    slim, _ = prune_to_params(model, torch.zeros(1, 3, 32, 32), "slimming", target)
    w = dict(zip([n for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)], _widths(slim)))
    assert all(v == 16 for k, v in w.items() if k.startswith("layer1")) and w["conv1"] == 16
    assert all(v < 64 for k, v in w.items() if k.startswith("layer3"))
    mag, _ = prune_to_params(model, torch.zeros(1, 3, 32, 32), "magnitude", 68_786)
    narrow, info = narrow_model("resnet20", 10, 68_786)
    assert info["width"] == 8 and _widths(mag) == _widths(narrow)


def test_unmatchable_targets():
    model = build_model("resnet20")
    with pytest.raises(ValueError, match="cannot be matched"):
        prune_to_params(model, torch.zeros(1, 3, 32, 32), "magnitude", 10 ** 7)
    with pytest.raises(ValueError, match="no width of resnet20 lands within"):
        narrow_model("resnet20", 10, 50, widths=range(8, 10))
    m, info = narrow_model("resnet20", 10, 70_000)
    assert abs(info["rel_diff"]) < 0.15 and sum(p.numel() for p in m.parameters()) == info["params"]


def test_target_params_is_compressed_count(start):
    """N* equals the closed form: dense params minus what the masks drop (n_l (1 - 1/G_l) per layer)."""
    dense = sum(p.numel() for p in build_model("resnet20").parameters())
    layers = start.sparsifier["layers"]
    model = build_model("resnet20")
    dropped = sum(m.weight.numel() * (1 - 1 / layers[n]["groups"]) for n, m in model.named_modules() if n in layers)
    assert target_params(start) == round(dense - dropped)


@pytest.mark.parametrize("argv, message", [
    (["--run", "{empty}", "--out", "{out}"], "no sparsified.pt"),
    (["--run", "{run}", "--out", "{out}", "--arms", "finetune,bogus"], "unknown arm(s) bogus"),
    (["--run", "{run}", "--out", "{out}", "--baselines", "prunefast"], "unknown baseline(s) prunefast"),
    (["--run", "{run}", "--out", "{out}", "--seeds", ","], "empty seed list"),
    (["--run", "{run}", "--out", "{out}", "--baseline-seeds", " ", "--baselines", "taylor"], "empty seed list"),
    (["--run", "{run}", "--out", "{out}", "--baselines", "taylor", "--pretrained", "{empty}/sweep"],
     "--pretrained {empty}/sweep: no such sweep folder"),
])
def test_cli_errors(tmp_path, capsys, argv, message):
    from strucspars_viz.cli import main

    (tmp_path / "empty").mkdir()
    run = make_sparsified(tmp_path / "run")
    args = [a.format(empty=tmp_path / "empty", out=tmp_path / "out", run=run) for a in argv]
    assert main(["ablate", *args]) == 2
    err = capsys.readouterr().err.strip()
    message = message.format(empty=tmp_path / "empty")
    assert err.startswith("strucspars-viz ablate: error:") and message in err and "\n" not in err


def test_cli_runs_one_arm_on_a_tiny_run(tmp_path, monkeypatch):
    """`strucspars-viz ablate` end to end on a tiny prepared run: one arm, one seed, one epoch."""
    from strucspars_viz.cli import main

    monkeypatch.delenv("STRUCSPARS_QUICK", raising=False)  # quick mode would add its default baseline

    run = make_sparsified(tmp_path / "run")
    out = tmp_path / "sweep"
    assert main(["ablate", "--run", str(run), "--arms", "noshuffle", "--seeds", "0", "--finetune-epochs", "1",
                 "--threads", "1", "--out", str(out)]) == 0
    rows = read_csv(out / "ablation.csv")
    assert [(r["arm"], int(r["seed"])) for r in rows] == [("noshuffle", 0)]
    assert (out / "ablation.md").is_file() and (out / "noshuffle" / "seed0" / "summary.json").is_file()


def _inputs_reached(sp, first: str, second: str) -> np.ndarray:
    """For each output channel of ``second``, how many input channels of ``first`` reach it through the
    two masks (channel connectivity of conv ``first`` followed by conv ``second``)."""
    m1 = (sp.mask(first).reshape(sp.layers[first].cout, sp.layers[first].cin, -1).sum(-1) > 0).double()
    m2 = (sp.mask(second).reshape(sp.layers[second].cout, sp.layers[second].cin, -1).sum(-1) > 0).double()
    return ((m2 @ m1) > 0).sum(1).numpy()


def test_shufflenet_arm_aligns_consecutive_groups_like_noshuffle(built):
    """P = Q = the ShuffleNet shuffle (SPEC §7) on two consecutive convs of equal width and G: conv1's
    output blocks are exactly conv2's input blocks, so no channel crosses groups, as with P = Q =
    identity (the two arms differ by a relabelling of channels). Random and learned orders do mix."""
    pairs = [(f"layer{s}.{b}.conv1", f"layer{s}.{b}.conv2") for s in (1, 2, 3) for b in range(3)]
    for arm in ("shufflenet", "noshuffle"):
        sp = built[arm][1]
        for first, second in pairs:
            cin, g = sp.layers[first].cin, sp.layers[first].groups
            assert g == sp.layers[second].groups == 4
            assert (_inputs_reached(sp, first, second) == cin // g).all(), (arm, first)
    for arm in ("random", "fromscratch"):
        sp = built[arm][1]
        assert any((_inputs_reached(sp, a, b) > sp.layers[a].cin // sp.layers[a].groups).any() for a, b in pairs), arm


def test_channelshuffle_arm_connects_every_group_to_every_group(built):
    """Ours: P = identity, Q = the ShuffleNet shuffle. Each group of conv2 reads channels of every output
    group of conv1, so every conv2 output is reached from all of conv1's inputs (C / G >= G here)."""
    sp = built["channelshuffle"][1]
    for s in (1, 2, 3):
        for b in range(3):
            first, second = f"layer{s}.{b}.conv1", f"layer{s}.{b}.conv2"
            st = sp.layers[first]
            assert np.array_equal(st.row_perm, np.arange(st.cout))
            assert np.array_equal(sp.layers[second].col_perm, np.arange(st.cout).reshape(4, -1).T.reshape(-1))
            assert (_inputs_reached(sp, first, second) == st.cin).all(), first


def test_all_means_the_five_spec_arms():
    from strucspars_viz.ablation.cli import parse_names

    assert parse_names("all", A.ARMS, "arm", A.SPEC_ARMS) == list(A.SPEC_ARMS)
    assert parse_names("channelshuffle,finetune", A.ARMS, "arm", A.SPEC_ARMS) == ["channelshuffle", "finetune"]
