"""Reliability findings of issue 8 on the train / demo side, each reproduced and shown fixed.

1 two runs into one --out; 2 strict YAML; 3 resume with changed options; 4 weights-only checkpoints;
5 flipped byte / truncated checkpoint / disk full; 6 a named data root never falls back to the sample;
7 a diverged run; 9 user errors are `strucspars-viz <cmd>: error: ...`, exit 2, no traceback.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from strucspars_viz import cli
from strucspars_viz.data.fake import write_fake_cifar
from strucspars_viz.errors import CheckpointError
from strucspars_viz.training import load_metrics, resolve_config, run_training
from strucspars_viz.training.io import checksum_path, file_sha256, previous_path

# The smallest run that still passes every phase: 20 train / 10 test images of a fake CIFAR-10.
TINY = dict(model="resnet20", dataset="cifar10", train_subset=20, test_subset=10, batch_size=10, eval_batch_size=10,
            warmup_epochs=0, sparsify_epochs=2, finetune_epochs=1, initial_rounds=1, epoch_rounds=1,
            progress=False, threads=1, deterministic=True)
FLAGS = ["--model", "resnet20", "--train-subset", "20", "--test-subset", "10", "--batch-size", "10",
         "--eval-batch-size", "10", "--warmup-epochs", "0", "--sparsify-epochs", "1", "--finetune-epochs", "1",
         "--initial-rounds", "1", "--epoch-rounds", "1", "--no-progress", "--threads", "1"]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_fake_cifar(root, "cifar10", n_train=40, n_test=20)
    return root


def _cfg(out: Path, data_root: Path, **overrides):
    return resolve_config({**TINY, "data_root": str(data_root), "out": str(out), **overrides})


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory, data_root) -> Path:
    """A run stopped after its 2 sparsification epochs: checkpoint.pt (epoch 2) and checkpoint.prev.pt (epoch 1)."""
    out = tmp_path_factory.mktemp("stopped") / "run"
    _, summary = run_training(_cfg(out, data_root, stop_after_epochs=2))
    assert summary is None and previous_path(out / "checkpoint.pt").is_file()
    return out


def _copy(run: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(run, dst)
    (dst / ".lock").unlink(missing_ok=True)
    return dst


def _train(argv, capsys) -> tuple[int, str]:
    rc = cli.main(["train", *argv])
    err = capsys.readouterr().err
    return rc, err


def _assert_user_error(rc: int, err: str, command: str = "train") -> None:
    assert rc == 2, err
    assert f"strucspars-viz {command}: error: " in err and "Traceback" not in err, err


# ------------------------------------------------------------------ 1. two runs, one folder
def test_second_run_into_a_locked_folder_fails_at_once_naming_the_holder(tmp_path, data_root, capsys):
    out = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from strucspars_viz.training.rundir import RunDir\n"
         f"with RunDir({str(out)!r}):\n    print('locked', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        (out / "metrics.jsonl").write_text('{"global_epoch": 1, "owner": "first run"}\n')
        t0 = time.perf_counter()
        rc, err = _train([*FLAGS, "--data-root", str(data_root), "--out", str(out)], capsys)
        assert time.perf_counter() - t0 < 10  # at once: before data, model or any training
    finally:
        holder.kill()
        holder.wait()
    _assert_user_error(rc, err)
    assert f"pid {holder.pid}" in err
    assert json.loads((out / "metrics.jsonl").read_text())["owner"] == "first run"  # untouched


def test_fresh_run_refuses_a_used_folder_and_deletes_nothing(tmp_path, data_root, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.jsonl").write_text('{"global_epoch": 3}\n')
    (out / "notes.txt").write_text("mine")
    rc, err = _train([*FLAGS, "--data-root", str(data_root), "--out", str(out)], capsys)
    _assert_user_error(rc, err)
    assert "--overwrite" in err and "metrics.jsonl" in err
    assert (out / "metrics.jsonl").read_text() == '{"global_epoch": 3}\n' and (out / "notes.txt").exists()


# ------------------------------------------------------------------ 2. strict YAML
@pytest.mark.parametrize("line, key", [('resume: "false"', "resume"), ("quick: no", "quick"),
                                       ('deterministic: "false"', "deterministic"), ('target: "0.5"', "target"),
                                       ("lr: [0.1]", "lr")])
def test_yaml_values_of_the_wrong_type_name_the_key(tmp_path, capsys, line, key):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"model: resnet20\n{line}\n")
    rc, err = _train(["--config", str(cfg), "--out", str(tmp_path / "run")], capsys)
    _assert_user_error(rc, err)
    assert repr(key) in err and str(cfg) in err
    assert not (tmp_path / "run").exists()  # nothing was started


def test_yaml_scanner_error_is_a_user_error(tmp_path, capsys):
    cfg = tmp_path / "broken.yaml"
    cfg.write_text("model: [resnet20\ntarget: 0.5\n")
    rc, err = _train(["--config", str(cfg)], capsys)
    _assert_user_error(rc, err)
    assert "broken.yaml" in err


# ------------------------------------------------------------------ 3. resume with other options
def test_resume_with_changed_options_is_refused_listing_each(stopped_run, tmp_path, data_root):
    run = _copy(stopped_run, tmp_path)
    config_before = (run / "config.json").read_bytes()
    was = dict(lr=0.1, batch_size=10, train_subset=20, keep=0.9, decay=0.5)
    now = dict(lr=0.05, batch_size=5, train_subset=30, keep=0.8, decay=0.25)
    with pytest.raises(CheckpointError) as info:
        run_training(_cfg(run, data_root, resume=True, **now))
    for key in now:
        assert f"{key}: checkpoint {was[key]!r}, now {now[key]!r}" in str(info.value)
    assert (run / "config.json").read_bytes() == config_before  # never rewritten with unused values
    assert len(load_metrics(run)) == 2


# ------------------------------------------------------------------ 4. checkpoints cannot run code
class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_crafted_checkpoint_does_not_run_code(stopped_run, tmp_path, data_root):
    run = _copy(stopped_run, tmp_path)
    marker = tmp_path / "pwned"
    for path in (run / "checkpoint.pt", previous_path(run / "checkpoint.pt")):
        torch.save({"config": {}, "payload": _Evil(marker)}, path)
        data = path.read_bytes()  # a matching checksum: only weights_only loading can stop it
        checksum_path(path).write_text(json.dumps({"file": path.name, "bytes": len(data), "sha256": file_sha256(data)}))
    with pytest.raises(CheckpointError, match="weights_only"):
        run_training(_cfg(run, data_root, resume=True))
    assert not marker.exists()


# ------------------------------------------------------------------ 5. corrupt checkpoints, full disk
def _flip_byte_in_a_weight(path: Path) -> None:
    data = bytearray(path.read_bytes())
    state = torch.load(path, weights_only=True)
    w = state["model"]["layer2.0.conv1.weight"].numpy().tobytes()
    at = bytes(data).find(w[:64])
    assert at > 0
    data[at + 17] ^= 0x40
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_damaged_checkpoint_falls_back_to_the_previous_one(stopped_run, tmp_path, data_root, damage):
    run = _copy(stopped_run, tmp_path)
    ckpt = run / "checkpoint.pt"
    if damage == "flip":
        _flip_byte_in_a_weight(ckpt)
    else:
        ckpt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    original = [{k: v for k, v in r.items() if k not in ("time", "wall")} for r in load_metrics(run)]
    with pytest.warns(RuntimeWarning, match=r"checkpoint\.pt.*checkpoint\.prev\.pt"):
        run_training(_cfg(run, data_root, resume=True, stop_after_epochs=1))
    redone = [{k: v for k, v in r.items() if k not in ("time", "wall")} for r in load_metrics(run)]
    assert redone == original  # epoch 2 repeated from the previous checkpoint, bit for bit


def test_both_checkpoints_bad_is_a_clear_error(stopped_run, tmp_path, data_root, capsys):
    run = _copy(stopped_run, tmp_path)
    for path in (run / "checkpoint.pt", previous_path(run / "checkpoint.pt")):
        path.write_bytes(path.read_bytes()[:100])
    rc, err = _train([*FLAGS, "--sparsify-epochs", "2", "--deterministic", "--data-root", str(data_root),
                      "--out", str(run), "--resume"], capsys)
    _assert_user_error(rc, err)
    assert "no usable checkpoint" in err and "checkpoint.prev.pt" in err


def test_disk_full_names_the_file_and_the_free_space(tmp_path, data_root, capsys, monkeypatch):
    def full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full)  # every atomic write ends in os.replace
    rc, err = _train([*FLAGS, "--data-root", str(data_root), "--out", str(tmp_path / "run")], capsys)
    _assert_user_error(rc, err)
    assert "no space left" in err and "free" in err and "config.json" in err
    assert "inline_container" not in err


# ------------------------------------------------------------------ 6. a named data root is used or fails
def test_wrong_strucspars_data_is_an_error_not_the_sample(tmp_path, monkeypatch, capsys):
    missing = tmp_path / "no_cifar_here"
    monkeypatch.setenv("STRUCSPARS_DATA", str(missing))
    rc, err = _train([*FLAGS, "--out", str(tmp_path / "run")], capsys)
    _assert_user_error(rc, err)
    assert str(missing) in err and not (tmp_path / "run" / "metrics.jsonl").exists()


def test_demo_with_a_missing_data_root_is_an_error(tmp_path, capsys):
    t0 = time.perf_counter()
    rc = cli.main(["demo", "--quick", "--data-root", "/missing/cifar", "--out", str(tmp_path / "demo")])
    err = capsys.readouterr().err
    _assert_user_error(rc, err, "demo")
    assert "/missing/cifar" in err and time.perf_counter() - t0 < 10  # before any work


# ------------------------------------------------------------------ 7. a diverged run
def test_diverged_run_stops_with_an_error_and_writes_no_bare_nan(tmp_path, data_root, capsys):
    out = tmp_path / "run"
    rc, err = _train([*FLAGS, "--finetune-lr", "1e6", "--finetune-epochs", "2", "--data-root", str(data_root),
                      "--out", str(out)], capsys)
    _assert_user_error(rc, err)
    assert "diverged" in err and "finetune" in err
    assert not (out / "summary.json").exists()

    def bare(constant):
        raise AssertionError(f"bare {constant} in a JSON file")

    json.loads((out / "config.json").read_text(), parse_constant=bare)
    for line in (out / "metrics.jsonl").read_text().splitlines():
        json.loads(line, parse_constant=bare)


# ------------------------------------------------------------------ 9. user errors, not tracebacks
def test_unwritable_out_is_a_user_error(tmp_path, data_root, capsys, monkeypatch):
    out = tmp_path / "ro" / "run"
    real_mkdir = Path.mkdir

    def denied(self, *a, **k):  # the tests run as root, for whom chmod does not deny anything
        if str(self).startswith(str(tmp_path / "ro")):
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_mkdir(self, *a, **k)

    monkeypatch.setattr(Path, "mkdir", denied)
    rc, err = _train([*FLAGS, "--data-root", str(data_root), "--out", str(out)], capsys)
    _assert_user_error(rc, err)
    assert str(out) in err and "writable" in err


@pytest.mark.parametrize("argv, needle", [(["--threads", "-1"], "threads"), (["--batch-size", "0"], "batch_size"),
                                          (["--target", "1.5"], "[0, 1)")])
def test_bad_train_options_are_user_errors(tmp_path, capsys, argv, needle):
    rc, err = _train(["--model", "resnet20", *argv, "--out", str(tmp_path / "run")], capsys)
    _assert_user_error(rc, err)
    assert needle in err


@pytest.mark.parametrize("argv, needle", [(["--epochs", "0"], "--epochs"), (["--train-images", "0"], "--train-images"),
                                          (["--keep", "1.5"], "--keep")])
def test_bad_demo_options_are_user_errors(tmp_path, capsys, argv, needle):
    rc = cli.main(["demo", *argv, "--out", str(tmp_path / "demo")])
    err = capsys.readouterr().err
    _assert_user_error(rc, err, "demo")
    assert needle in err


# ------------------------------------------------------------------ SIGKILL / SIGINT, then --resume
def _cli() -> list[str]:
    script = Path(sys.executable).with_name("strucspars-viz")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "strucspars_viz.cli"]


def _final_state(out: Path) -> dict:
    return torch.load(out / "final.pt", weights_only=True)["state_dict"]


def _records(out: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in ("time", "wall")} for r in load_metrics(out)]


@pytest.mark.slow
def test_sigkill_and_sigint_then_resume_equal_an_uninterrupted_run(tmp_path, data_root):
    import signal

    argv = [*FLAGS, "--sparsify-epochs", "2", "--finetune-epochs", "2", "--deterministic", "--data-root",
            str(data_root)]
    straight = tmp_path / "straight"
    subprocess.run([*_cli(), "train", *argv, "--out", str(straight)], check=True, capture_output=True, timeout=600)

    out = tmp_path / "interrupted"

    def start_and_kill(extra: list[str], sig: int, after_epochs: int) -> None:
        proc = subprocess.Popen([*_cli(), "train", *argv, "--out", str(out), *extra],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            done = 0
            while done < after_epochs:  # one "[phase n]" line per finished (checkpointed) epoch
                line = proc.stdout.readline()
                assert line, proc.stderr.read()[-2000:]
                done += line.startswith("[")
            proc.send_signal(sig)
            proc.wait(timeout=60)
        finally:
            proc.kill()
        assert proc.returncode != 0

    start_and_kill([], signal.SIGKILL, 1)                # killed: the lock file still names it
    start_and_kill(["--resume"], signal.SIGINT, 2)       # Ctrl-C: lock released on the way out
    proc = subprocess.run([*_cli(), "train", *argv, "--out", str(out), "--resume"], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _records(out) == _records(straight)
    a, b = _final_state(straight), _final_state(out)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
