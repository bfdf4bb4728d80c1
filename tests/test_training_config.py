"""TrainConfig: precedence, strict YAML, generated flags, the resume comparison, the shipped configs."""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pytest

from strucspars_viz.training.config import (
    RESULT_AFFECTING,
    TrainConfig,
    add_arguments,
    config_from_args,
    load_yaml_config,
    resolve_config,
    resume_mismatches,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _no_quick_env(monkeypatch):
    monkeypatch.delenv("STRUCSPARS_QUICK", raising=False)


def _yaml(tmp_path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    add_arguments(p)
    return p


# ------------------------------------------------------------------------------ precedence
def test_precedence_defaults_dataset_quick_file_overrides(tmp_path, monkeypatch):
    cifar = resolve_config({"model": "resnet20"})
    assert (cifar.warmup_epochs, cifar.sparsify_epochs, cifar.finetune_epochs, cifar.batch_size) == (10, 100, 160, 64)
    assert cifar.lr_schedule == "step" and cifar.iter_rounds_every == 0 and cifar.lam0 == cifar.dlam == 2e-6
    assert cifar.name == "resnet20_cifar10_strucspars_50" and cifar.out == str(Path("runs") / cifar.name)
    imnet = resolve_config({"model": "resnet50", "dataset": "imagenet"})
    assert (imnet.warmup_epochs, imnet.sparsify_epochs, imnet.finetune_epochs, imnet.batch_size) == (5, 60, 120, 256)
    assert imnet.lr_schedule == "cosine" and imnet.lr_warmup_epochs == 5 and imnet.iter_rounds_every == 500

    quick = resolve_config({"model": "resnet20", "quick": True})
    assert (quick.sparsify_epochs, quick.train_subset, quick.lam0, quick.dlam) == (2, 320, 1e-3, 1e-3)
    assert quick.name.endswith("_quick")
    monkeypatch.setenv("STRUCSPARS_QUICK", "1")
    assert resolve_config({"model": "resnet20"}).quick  # quick also via the environment

    f = _yaml(tmp_path, "model: resnet20\nfinetune-epochs: 7\nbatch_size: 16\nlam0: 5.0e-4\ntarget: 0.3\n")
    cfg = resolve_config({"batch_size": 8, "train_subset": None}, f)
    assert cfg.finetune_epochs == 7                  # file over the quick preset
    assert cfg.sparsify_epochs == 2                  # quick preset over the dataset preset
    assert cfg.batch_size == 8                       # override over file
    assert cfg.lam0 == 5e-4 and cfg.dlam == 1e-3     # quick's dlam is a preset value, not derived
    assert cfg.train_subset == 320                   # None override = not given
    assert cfg.name == "resnet20_cifar10_strucspars_30_quick"


def test_after_resolution_preset_fields_are_concrete():
    for kw in ({"model": "resnet20"}, {"model": "resnet50", "dataset": "imagenet", "quick": True}):
        cfg = resolve_config(kw)
        for name in ("warmup_epochs", "sparsify_epochs", "finetune_epochs", "lr_schedule", "lr_warmup_epochs",
                     "batch_size", "iter_rounds_every", "dlam", "name", "out"):
            assert getattr(cfg, name) is not None, name
    direct = TrainConfig(model="resnet20", lam0=3e-6)   # direct construction fills the same way
    assert direct.sparsify_epochs == 100 and direct.dlam == 3e-6


def test_frozen_to_dict_from_dict_replace():
    cfg = resolve_config({"model": "resnet20"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.lr = 0.2  # type: ignore[misc]
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg["lr"] == cfg.lr  # item access kept for notebooks
    assert cfg.replace(lr=0.05).lr == 0.05 and cfg.lr == 0.1
    with pytest.raises(ValueError, match="target"):
        cfg.replace(target=1.5)  # re-validated
    with pytest.raises(ValueError, match="lrr"):
        cfg.replace(lrr=1)
    with pytest.raises(ValueError, match="bogus"):
        TrainConfig.from_dict({**cfg.to_dict(), "bogus": 1})


# ------------------------------------------------------------------------------ strict YAML
@pytest.mark.parametrize("key, text", [
    ("resume", 'resume: "false"'),
    ("quick", 'quick: "no"'),
    ("quick", "quick: no"),          # YAML 1.1 "no" is not a boolean here
    ("deterministic", 'deterministic: "false"'),
    ("progress", "progress: 0"),
])
def test_bool_fields_accept_only_true_false(tmp_path, key, text):
    with pytest.raises(ValueError, match=rf"'{key}'.*true or false"):
        resolve_config({"model": "resnet20"}, _yaml(tmp_path, text + "\n"))


def test_bool_fields_true_false(tmp_path):
    cfg = resolve_config({}, _yaml(tmp_path, "model: resnet20\ndeterministic: true\nprogress: false\n"))
    assert cfg.deterministic is True and cfg.progress is False


@pytest.mark.parametrize("text, key, expected", [
    ('target: "0.5"', "target", "a number"),
    ("lr: [0.1]", "lr", "a number"),
    ("batch_size: 64.0", "batch_size", "an integer"),
    ('seed: "3"', "seed", "an integer"),
    ("finetune_epochs: 1.5", "finetune_epochs", "an integer"),
    ("model: 20", "model", "a string"),
    ("keep:", "keep", "a number"),
])
def test_type_errors_name_the_key_and_the_type(tmp_path, text, key, expected):
    with pytest.raises(ValueError, match=rf"c\.yaml.*'{key}'.*expected {expected}"):
        resolve_config({}, _yaml(tmp_path, text + "\n"))


def test_float_fields_accept_ints_and_yaml12_exponents(tmp_path):
    cfg = resolve_config({}, _yaml(tmp_path, "model: resnet20\nlr: 1\nlam0: 2e-6\nchannels_last: on\n"))
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float)
    assert cfg.lam0 == 2e-6                  # PyYAML alone reads 2e-6 as a string
    assert cfg.channels_last == "on"         # and unquoted on as True


def test_unknown_keys_are_listed_with_the_known_ones(tmp_path):
    with pytest.raises(ValueError, match=r"modle.*known:.*'model'"):
        resolve_config({}, _yaml(tmp_path, "modle: resnet20\n"))
    with pytest.raises(ValueError, match="lrr"):
        resolve_config({"lrr": 0.1})


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    path = _yaml(tmp_path, "model: resnet20\nlr: [0.1\nseed: 1\n")
    with pytest.raises(ValueError, match=r"c\.yaml:\d+:\d+: invalid YAML"):
        load_yaml_config(path)
    with pytest.raises(ValueError, match=r"c\.yaml:2:\d+: invalid YAML"):
        load_yaml_config(_yaml(tmp_path, "model: resnet20\n\tlr: 0.1\n"))
    with pytest.raises(ValueError, match="duplicate key 'lr'"):
        load_yaml_config(_yaml(tmp_path, "lr: 0.1\nlr: 0.2\n"))
    with pytest.raises(ValueError, match="mapping"):
        load_yaml_config(_yaml(tmp_path, "- 1\n- 2\n"))
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        resolve_config({}, tmp_path / "nope.yaml")


@pytest.mark.parametrize("overrides, match", [
    ({"threads": -1}, "threads must be >= 1"),
    ({"threads": 0}, "threads must be >= 1"),
    ({"batch_size": 0}, "batch_size must be >= 1"),
    ({"eval_batch_size": 0}, "eval_batch_size must be >= 1"),
    ({"target": 1.0}, r"\[0, 1\)"),
    ({"keep": 0.0}, r"\(0, 1\]"),
    ({"decay": 2.0}, r"decay must lie in \(0, 1\]"),
    ({"lr": -0.1}, "lr must be >= 0"),
    ({"sparsify_epochs": 0}, "sparsify_epochs must be >= 1 in strucspars mode"),
    ({"amp": "fp8"}, r"'amp' must be one of \['none', 'bf16', 'fp16'\]"),
    ({"model": "resnet7"}, "resnet20"),
    ({"model": "resnet50"}, "imagenet model but dataset is 'cifar10'"),
    ({"model": "resnet20", "dataset": "imagenet"}, "cifar model but dataset is 'imagenet'"),
])
def test_range_validation(overrides, match):
    with pytest.raises(ValueError, match=match):
        resolve_config({"model": "resnet20", **overrides})


# ------------------------------------------------------------------------------ argparse
def test_every_field_has_a_flag_with_help():
    parser = _parser()
    actions = {a.dest: a for a in parser._actions}
    for f in dataclasses.fields(TrainConfig):
        assert f.name in actions, f.name
        assert actions[f.name].help and len(actions[f.name].help) > 10, f.name
        assert actions[f.name].default is argparse.SUPPRESS, f.name
    parser.format_help()  # help strings are valid %-format strings


def test_unset_flags_do_not_override_yaml_and_set_flags_do(tmp_path):
    f = _yaml(tmp_path, "model: resnet20\nlr: 0.05\nbatch_size: 16\ndeterministic: true\n")
    args = _parser().parse_args(["--config", str(f), "--batch-size", "8", "--no-progress"])
    assert "lr" not in vars(args)
    cfg = config_from_args(args)
    assert (cfg.lr, cfg.batch_size, cfg.deterministic, cfg.progress) == (0.05, 8, True, False)
    cfg = config_from_args(_parser().parse_args(["--config", str(f), "--no-deterministic"]))
    assert cfg.deterministic is False
    with pytest.raises(SystemExit):
        _parser().parse_args(["--threads", "x"])


# ------------------------------------------------------------------------------ resume
def test_resume_mismatches_lists_result_affecting_changes_only():
    saved = resolve_config({"model": "resnet20", "quick": True}).to_dict()
    now = TrainConfig.from_dict(saved).replace(lr=0.05, batch_size=16, train_subset=100, keep=0.8, decay=0.25,
                                               out="elsewhere", progress=False, resume=True, threads=3)
    problems = resume_mismatches(saved, now)
    assert [p.split(":")[0] for p in problems] == ["batch_size", "decay", "keep", "lr", "train_subset"]
    assert "lr: checkpoint 0.1, now 0.05" in problems
    assert resume_mismatches(saved, TrainConfig.from_dict(saved)) == []
    assert {"out", "name", "resume", "overwrite", "progress", "threads", "stop_after_epochs"}.isdisjoint(RESULT_AFFECTING)
    assert {"model", "dataset", "seed", "lam0", "dlam", "pq_method", "amp", "deterministic"} <= RESULT_AFFECTING


# ------------------------------------------------------------------------------ shipped configs
@pytest.mark.parametrize("path", sorted(p for p in (REPO / "configs").glob("*.yaml")
                                        if not p.name.startswith("designs_")), ids=lambda p: p.name)
def test_every_shipped_config_loads(path):
    cfg = resolve_config({}, path)
    assert cfg.model in path.name and cfg.dataset in path.name
