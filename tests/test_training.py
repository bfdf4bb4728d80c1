"""Algorithm 1 training pipeline: lambda controller, end-to-end quick run, resume, checkpoints, config.

The reliability findings of issue 8 (run-folder lock, strict YAML, resume mismatches, weights-only and
checksummed checkpoints, no silent sample fallback, diverged runs, user errors) are in
tests/test_training_reliability.py.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from strucspars_viz import cli
from strucspars_viz.training import (
    LambdaController,
    StopTraining,
    TrainConfig,
    load_metrics,
    resolve_config,
    run_training,
)
from strucspars_viz.training.io import torch_save_atomic

# A very small run on the bundled CIFAR-10 sample: 100 train / 50 test images.
TINY = dict(model="resnet20", dataset="cifar10", quick=True, train_subset=100, test_subset=50, batch_size=25,
            eval_batch_size=50, warmup_epochs=1, sparsify_epochs=2, finetune_epochs=2, initial_rounds=2,
            epoch_rounds=1, progress=False, threads=1)


def tiny_config(tmp_path: Path, **overrides) -> TrainConfig:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return resolve_config({**TINY, "out": str(tmp_path), **overrides})


def run_quiet(cfg, callbacks=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the bundled-sample fallback warning
        return run_training(cfg, callbacks)


# ------------------------------------------------------------------------------ lambda controller
def test_controller_warmup_keeps_lambda_zero_then_starts_at_lam0():
    c = LambdaController(target=0.5, total_epochs=10, warmup_epochs=3, lam0=2e-6, dlam=2e-6)
    assert c.lam == 0.0
    assert c.step(0.0) == 0.0 and c.step(0.0) == 0.0  # epochs 1, 2: warm-up
    assert c.step(0.0) == pytest.approx(2e-6)          # warm-up ends after epoch 3
    assert [h["action"] for h in c.history] == ["warmup", "warmup", "start"]


def test_controller_increases_when_below_target_and_gaining_too_slowly():
    c = LambdaController(target=0.5, total_epochs=10, warmup_epochs=1, lam0=1.0, dlam=0.5)
    c.step(0.0)                   # t=1: start, lam = 1
    assert c.step(0.01) == 1.5    # t=2: gain 0.01 < expected (0.49/8): increase
    assert c.history[-1]["action"] == "increase"


def test_controller_keeps_lambda_when_gaining_fast_enough():
    c = LambdaController(target=0.5, total_epochs=10, warmup_epochs=1, lam0=1.0, dlam=0.5)
    c.step(0.0)
    assert c.step(0.3) == 1.0     # gain 0.3 >= expected (0.2/8): keep
    assert c.history[-1]["action"] == "keep"


def test_controller_decreases_at_or_above_target_and_clips_at_zero():
    c = LambdaController(target=0.5, total_epochs=10, warmup_epochs=1, lam0=0.7, dlam=0.5)
    c.step(0.0)
    assert c.step(0.5) == pytest.approx(0.2)   # at the target: decrease
    assert c.step(0.6) == 0.0                  # above: decrease, clipped at 0
    assert c.step(0.6) == 0.0


def test_controller_expected_gain_uses_remaining_epochs_and_no_division_by_zero():
    c = LambdaController(target=0.5, total_epochs=3, warmup_epochs=0, lam0=1.0, dlam=1.0)
    assert c.lam == 1.0                         # no warm-up: lam0 from the first epoch
    c.step(0.1)                                  # t=1: expected (0.4)/2 = 0.2, gain unknown (0) -> increase
    assert c.history[-1]["expected"] == pytest.approx(0.2) and c.lam == 2.0
    c.step(0.2)                                  # t=2: expected 0.3/1
    c.step(0.25)                                 # t=3 = E: remaining clipped to 1
    assert c.history[-1]["expected"] == pytest.approx(0.25)


def test_controller_state_round_trip():
    c = LambdaController(target=0.4, total_epochs=5, warmup_epochs=1, lam0=1e-3, dlam=2e-3)
    for s in (0.0, 0.1, 0.2):
        c.step(s)
    d = LambdaController(target=0.0, total_epochs=1, warmup_epochs=0)
    d.load_state_dict(c.state_dict())
    assert d.step(0.3) == c.step(0.3) and d.history == c.history


@pytest.mark.parametrize("bad", [dict(target=1.0), dict(target=-0.1), dict(total_epochs=0), dict(dlam=-1.0)])
def test_controller_rejects_bad_arguments(bad):
    kwargs = dict(target=0.5, total_epochs=10) | bad
    with pytest.raises(ValueError):
        LambdaController(**kwargs)


# ------------------------------------------------------------------------------ config
def test_config_precedence_defaults_quick_file_flags(tmp_path, monkeypatch):
    monkeypatch.delenv("STRUCSPARS_QUICK", raising=False)
    full = resolve_config({"model": "resnet20"})
    assert (full.sparsify_epochs, full.finetune_epochs, full.batch_size) == (100, 160, 64)  # paper CIFAR
    assert full.lam0 == full.dlam == 2e-6 and full.warmup_epochs == 10
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("model: resnet20\nfinetune-epochs: 7\nbatch_size: 16\ntarget: 0.3\n")
    cfg = resolve_config({"batch_size": 8}, cfg_file)
    assert cfg.finetune_epochs == 7          # file over defaults ('-' spelling accepted)
    assert cfg.batch_size == 8               # flag over file
    assert cfg.target == 0.3 and cfg.name == "resnet20_cifar10_strucspars_30"
    assert cfg.out == str(Path("runs") / cfg.name)
    monkeypatch.setenv("STRUCSPARS_QUICK", "1")
    quick = resolve_config({}, cfg_file)
    assert quick.quick and quick.sparsify_epochs == 2 and quick.finetune_epochs == 7  # file over quick


def test_config_errors_are_clear(tmp_path):
    with pytest.raises(ValueError, match="resnet20"):
        resolve_config({"model": "resnet7"})
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        resolve_config({"model": "resnet20", "target": 1.0})
    with pytest.raises(ValueError, match="imagenet model"):
        resolve_config({"model": "resnet50", "dataset": "cifar10"})
    bad = tmp_path / "bad.yaml"
    bad.write_text("modle: resnet20\n")
    with pytest.raises(ValueError, match="modle"):
        resolve_config({}, bad)
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        resolve_config({}, tmp_path / "nope.yaml")


def test_cli_reports_bad_input(tmp_path, capsys):
    assert cli.main(["train", "--model", "resnet7", "--out", str(tmp_path / "a")]) == 2
    assert "registered: " in capsys.readouterr().err
    assert cli.main(["train", "--model", "resnet20", "--target", "1.5", "--out", str(tmp_path / "b")]) == 2
    assert "[0, 1)" in capsys.readouterr().err
    missing = tmp_path / "no_such_data"
    assert cli.main(["train", "--model", "resnet20", "--data-root", str(missing), "--out", str(tmp_path / "c")]) == 2
    assert str(missing) in capsys.readouterr().err


# ------------------------------------------------------------------------------ checkpoints
def test_atomic_save_crash_leaves_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    torch_save_atomic({"epoch": 1, "w": torch.arange(4)}, path, checksum=False)
    real_save = torch.save

    def crashing_save(obj, f, *a, **k):
        f.write(b"partial garbage")  # a torn write...
        raise KeyboardInterrupt("killed during save")  # ...then the process dies

    monkeypatch.setattr(torch, "save", crashing_save)
    with pytest.raises(KeyboardInterrupt):
        torch_save_atomic({"epoch": 2, "w": torch.zeros(4)}, path, checksum=False)
    monkeypatch.setattr(torch, "save", real_save)
    state = torch.load(path, weights_only=True)
    assert state["epoch"] == 1 and torch.equal(state["w"], torch.arange(4))
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no temp file left behind


# ------------------------------------------------------------------------------ end to end
def test_quick_end_to_end_run_writes_everything(tmp_path):
    cfg = tiny_config(tmp_path, target=0.5)
    trainer, summary = run_quiet(cfg)
    for name in ("config.json", "metrics.jsonl", "summary.json", "checkpoint.pt", "compressed_model.pt",
                 "layer_norms.npz", "sparsified.pt", "final.pt"):
        assert (tmp_path / name).is_file(), name
    for name in ("config.json", "summary.json"):  # strict JSON: a bare NaN / Infinity would fail here
        json.loads((tmp_path / name).read_text(), parse_constant=lambda c: pytest.fail(f"{name}: bare {c}"))
    assert json.loads((tmp_path / "config.json").read_text())["target"] == 0.5
    records = load_metrics(tmp_path)
    assert [(r["phase"], r["epoch"]) for r in records] == [("sparsify", 1), ("sparsify", 2), ("finetune", 1), ("finetune", 2)]
    for r in records:
        assert {"loss", "top1", "top5", "lam", "sparsity", "groups", "lr", "time"} <= set(r)
    assert records[0]["lam"] == 0.0 and records[1]["lam"] > 0  # warm-up, then the controller
    assert cfg.finetune_epochs == 2 and records[-1]["lr"] < records[-2]["lr"]  # step schedule: x0.1 at 50 %

    # sparsity reached (in the window, whether by one global keep or by single-layer promotions),
    # masks exact, compressed model equivalent
    reach = summary["reach_target"]
    assert 0.5 <= summary["sparsity"] <= 0.51 and reach["in_window"], reach
    assert reach["exact"] or reach["warnings"]  # a promotion is announced
    assert summary["equivalence_max_diff"] < 1e-4 and summary["equivalence_ok"]
    assert summary["masked_weights_exactly_zero"]
    sp = trainer.sparsifier
    for name, st in sp.layers.items():
        if st.groups > 1:
            w = sp.modules[name].weight.detach()
            assert torch.all(w[sp.mask(name).expand_as(w) == 0] == 0), name
    assert summary["params"] < summary["params_dense"] and summary["macs"] < summary["macs_dense"]
    for key in ("top1_dense_before_masking", "top1_compressed", "top1_finetuned"):
        assert 0.0 <= summary[key] <= 1.0
    assert summary["top1_compressed"] == pytest.approx(summary["top1_finetuned"], abs=0.021)

    # the compressed state dict rebuilds into a working model
    from strucspars_viz import compress
    from strucspars_viz.models import build_model
    from strucspars_viz.trace import LayerTrace
    from strucspars_viz.training.artifacts import read_weights

    saved = torch.load(tmp_path / "compressed_model.pt", weights_only=True)
    rebuilt = compress(build_model(saved["model"], num_classes=saved["num_classes"]), state=saved["sparsifier"])
    rebuilt.load_state_dict(saved["state_dict"])

    # the finetuned masked dense model and the end-of-sparsification model
    final = read_weights(tmp_path)
    assert final.kind == "final" and final.model == "resnet20"
    dense = build_model("resnet20", num_classes=final.num_classes)
    dense.load_state_dict(final.state_dict)
    for k, v in trainer.model.state_dict().items():
        assert torch.equal(final.state_dict[k], v.cpu()), k
    sparsified = read_weights(tmp_path / "sparsified.pt")
    assert sparsified.sparsifier["masked"] and sparsified.sparsifier["layers"].keys() == sp.layers.keys()
    name = next(n for n, st in sp.layers.items() if st.groups > 1)
    w = sparsified.state_dict[f"{name}.weight"]
    assert torch.all(w[sp.mask(name).expand_as(w) == 0] == 0)  # masked before finetuning
    assert not torch.equal(w, final.state_dict[f"{name}.weight"])  # ... and finetuned afterwards

    trace = LayerTrace.load(tmp_path)
    assert trace.phase == ["init", "sparsify", "sparsify", "masked", "finetune", "finetune"]
    assert trace.layer in sp.layers
    assert trace.lam[1:3] == [r["lam"] for r in records[:2]] and trace.sparsity[-1] == summary["sparsity"]


def test_dense_baseline_mode(tmp_path):
    cfg = tiny_config(tmp_path, mode="dense", sparsify_epochs=1, finetune_epochs=1)
    _, summary = run_quiet(cfg)
    assert summary["mode"] == "dense" and summary["params"] == summary["params_dense"]
    assert all(r["sparsity"] == 0.0 and r["lam"] == 0.0 for r in load_metrics(tmp_path))
    assert all(g == 1 for g in load_metrics(tmp_path)[-1]["groups"].values())


def _final_tensors(trainer) -> dict[str, torch.Tensor]:
    out = {f"model.{k}": v.detach().clone() for k, v in trainer.model.state_dict().items()}
    for n, st in trainer.sparsifier.layers.items():
        out[f"P.{n}"] = torch.as_tensor(st.row_perm)
        out[f"Q.{n}"] = torch.as_tensor(st.col_perm)
        out[f"G.{n}"] = torch.tensor(st.groups)
    for i, group in enumerate(trainer.optimizer.state_dict()["state"].values()):
        out[f"momentum.{i}"] = group["momentum_buffer"].clone()
    return out


@pytest.mark.slow
def test_resume_equals_uninterrupted(tmp_path):
    straight_dir, resumed_dir = tmp_path / "straight", tmp_path / "resumed"
    cfg = tiny_config(straight_dir, deterministic=True)
    straight, _ = run_quiet(cfg)

    # interrupted after 1 epoch (mid sparsification), then after the first finetune epoch
    # (across the mask step), each time resumed from the checkpoint by a fresh process state.
    _, s1 = run_quiet(tiny_config(resumed_dir, deterministic=True, stop_after_epochs=1))
    assert s1 is None and not (resumed_dir / "summary.json").exists()
    torch.manual_seed(1234)  # different global RNG state: the checkpoint must restore it
    _, s2 = run_quiet(tiny_config(resumed_dir, deterministic=True, resume=True, stop_after_epochs=2))
    assert s2 is None

    def crash_callback(trainer, record):  # an exception raised by user code also stops the run
        raise StopTraining("simulated crash")

    resumed, s3 = run_quiet(tiny_config(resumed_dir, deterministic=True, resume=True), [crash_callback])
    assert s3 is None
    resumed, _ = run_quiet(tiny_config(resumed_dir, deterministic=True, resume=True))

    a, b = _final_tensors(straight), _final_tensors(resumed)
    assert a.keys() == b.keys()
    unequal = [k for k in a if not torch.equal(a[k], b[k])]
    assert not unequal, unequal
    ma = [{k: v for k, v in r.items() if k not in ("time", "wall")} for r in load_metrics(straight_dir)]
    mb = [{k: v for k, v in r.items() if k not in ("time", "wall")} for r in load_metrics(resumed_dir)]
    assert ma == mb
    ca = torch.load(straight_dir / "compressed_model.pt", weights_only=True)["state_dict"]
    cb = torch.load(resumed_dir / "compressed_model.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(ca[k], cb[k]) for k in ca)


@pytest.mark.slow
def test_compressed_resnet50_at_65_percent_has_10_3_million_params():
    """SPEC §8: ResNet-50 StrucSpars-65% has 10.3 M parameters (random init, learned P/Q, exact 65%)."""
    from strucspars_viz import StructuredSparsifier, compress, count_params_macs
    from strucspars_viz.models import build_model

    torch.manual_seed(0)
    model = build_model("resnet50")
    sp = StructuredSparsifier(model)
    sp.update_permutations(iters=20)
    res = sp.reach_target(0.65)
    assert 0.65 <= res.sparsity <= 0.66
    sp.apply_masks()
    params = count_params_macs(compress(sp), (3, 224, 224)).params
    assert abs(params - 10.3e6) <= 0.2e6, params


def test_cli_train_quick_subprocess(tmp_path):
    """``strucspars-viz train --quick`` as a user starts it, on a tiny fake CIFAR-10: exit 0, every file."""
    import os
    import subprocess
    import sys

    from strucspars_viz.data.fake import write_fake_cifar

    write_fake_cifar(tmp_path / "data", "cifar10", n_train=40, n_test=20)
    script = Path(sys.executable).with_name("strucspars-viz")
    cmd = [str(script)] if script.is_file() else [sys.executable, "-m", "strucspars_viz.cli"]
    out = tmp_path / "run"
    proc = subprocess.run(
        [*cmd, "train", "--quick", "--model", "resnet20", "--data-root", str(tmp_path / "data"), "--out", str(out),
         "--train-subset", "20", "--test-subset", "10", "--batch-size", "10", "--warmup-epochs", "0",
         "--sparsify-epochs", "1", "--finetune-epochs", "1", "--initial-rounds", "1", "--epoch-rounds", "1",
         "--threads", "1", "--no-progress"],
        capture_output=True, text=True, timeout=600, env={**os.environ, "MPLBACKEND": "Agg"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    headline = json.loads(proc.stdout.strip().splitlines()[-2])
    summary = json.loads((out / "summary.json").read_text())
    assert headline["params"] == summary["params"] < summary["params_dense"]
    assert f"wrote {out}" in proc.stdout
    assert json.loads((out / "config.json").read_text())["quick"] is True
    assert not (out / ".lock").read_text().strip()  # lock released on exit
