"""The run folder: lock (held / stale), used-folder rule, --overwrite, --resume, unwritable folders."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import strucspars_viz
from strucspars_viz.errors import CheckpointError, RunFolderError
from strucspars_viz.training.checkpoint import checksum_path, previous_path
from strucspars_viz.training.rundir import RUN_FILES, RunDir

PKG = Path(strucspars_viz.__file__).parent
# The child imports only rundir (not the training package, which imports torch): it starts in ms.
HOLDER = textwrap.dedent("""
    import sys, time, types
    for name, sub in (("strucspars_viz", ""), ("strucspars_viz.training", "/training")):
        pkg = types.ModuleType(name)
        pkg.__path__ = [sys.argv[2] + sub]
        sys.modules[name] = pkg
    from strucspars_viz.training.rundir import RunDir
    rd = RunDir(sys.argv[1]).open()
    print("locked", flush=True)
    time.sleep(120)
""")


def test_lock_held_by_another_process_then_stale_after_sigkill(tmp_path):
    out = tmp_path / "run"
    child = subprocess.Popen([sys.executable, "-c", HOLDER, str(out), str(PKG)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "locked"
        holder = json.loads((out / ".lock").read_text())
        assert holder["pid"] == child.pid and holder["host"] and holder["started"]
        with pytest.raises(RunFolderError, match=rf"in use by pid {child.pid} on host .* \(started "):
            RunDir(out).open()
        assert (out / ".lock").exists()  # the failed attempt changed nothing
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    with pytest.warns(RuntimeWarning, match=rf"taking over the lock left by pid {child.pid}"):
        with RunDir(out) as rd:
            assert rd.locked
            assert json.loads((out / ".lock").read_text())["pid"] == os.getpid()
    assert (out / ".lock").read_text() == ""  # a clean exit empties the lock file (never deletes it)


def test_second_rundir_in_the_same_process_fails(tmp_path):
    with RunDir(tmp_path / "r"):
        with pytest.raises(RunFolderError, match=rf"in use by pid {os.getpid()}"):
            RunDir(tmp_path / "r").open()
    with RunDir(tmp_path / "r") as again:  # released on exit: no warning, no error
        assert again.locked


def _write_run(folder: Path) -> None:
    for name in ("config.json", "metrics.jsonl", "checkpoint.pt", "checkpoint.pt.sha256", "summary.json",
                 ".checkpoint.pt.abc123.tmp"):
        (folder / name).write_text("x")


def test_used_folder_is_refused_and_overwrite_removes_only_run_files(tmp_path):
    folder = tmp_path / "r"
    folder.mkdir()
    _write_run(folder)
    (folder / "notes.txt").write_text("mine")
    (folder / "data").mkdir()
    (folder / "data" / "config.json").write_text("not a run file: in a sub-folder")
    with pytest.raises(RunFolderError, match=r"already holds a run \(.*config\.json.*metrics\.jsonl.*--overwrite"):
        RunDir(folder).open()
    assert (folder / "metrics.jsonl").exists()  # nothing deleted
    with RunDir(folder, overwrite=True):
        left = sorted(p.name for p in folder.iterdir())
    assert left == [".lock", "data", "notes.txt"]
    assert (folder / "data" / "config.json").exists()


def test_unrelated_files_do_not_block_a_fresh_run(tmp_path):
    (tmp_path / "README.md").write_text("hello")
    with RunDir(tmp_path) as rd:
        assert rd.config == tmp_path / "config.json" and rd.trace == tmp_path / "layer_norms.npz"
        assert rd.compressed.name == "compressed_model.pt" and rd.final.name == "final.pt"
    assert "config.json" in RUN_FILES and "notes.txt" not in RUN_FILES
    for name in ("checkpoint.pt", "sparsified.pt", "final.pt", "compressed_model.pt"):  # io's naming rules
        assert checksum_path(name).name in RUN_FILES
    prev = previous_path("checkpoint.pt")
    assert prev.name in RUN_FILES and checksum_path(prev).name in RUN_FILES


def test_resume_needs_a_checkpoint(tmp_path):
    folder = tmp_path / "r"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    with pytest.raises(CheckpointError, match=r"--resume: no checkpoint in .*config\.json.*drop --resume"):
        RunDir(folder, resume=True).open()
    assert (folder / ".lock").read_text() == ""  # the lock was released after the refusal
    (folder / "checkpoint.prev.pt").write_text("x")  # the kept previous checkpoint is enough
    with RunDir(folder, resume=True) as rd:
        assert rd.has_checkpoint
    with pytest.raises(RunFolderError, match="pass one"):
        RunDir(folder, resume=True, overwrite=True).open()


def test_unwritable_folder_is_a_run_folder_error(tmp_path, monkeypatch):
    folder = tmp_path / "r"
    folder.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == folder else real_access(p, mode))
    with pytest.raises(RunFolderError, match=rf"{folder} is not writable"):
        RunDir(folder).open()


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root can write into read-only folders")
def test_read_only_parent_is_a_run_folder_error(tmp_path):
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        with pytest.raises(RunFolderError, match=r"cannot create the run folder .*ro/run: permission denied"):
            RunDir(parent / "run").open()
        with pytest.raises(RunFolderError, match="not writable"):
            RunDir(parent).open()
    finally:
        parent.chmod(0o755)


def test_read_only_parent_simulated(tmp_path, monkeypatch):
    def denied(self, *a, **k):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", denied)
    with pytest.raises(RunFolderError, match=r"cannot create the run folder .*permission denied"):
        RunDir(tmp_path / "new").open()
