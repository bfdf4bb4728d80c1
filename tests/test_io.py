"""The one atomic writer, strict JSON, the metrics log, verified checkpoints, RNG state round trip."""
from __future__ import annotations

import errno
import json
import os
import pickle
import random
import shutil
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from strucspars_viz.errors import CheckpointError
from strucspars_viz.training import io as rio
from strucspars_viz.training.io import (
    DiskFullError,
    MetricsLog,
    WritePermissionError,
    atomic_write_text,
    checksum_path,
    load_checkpoint,
    load_metrics,
    previous_path,
    rng_state,
    save_checkpoint,
    save_npz,
    set_rng_state,
    torch_load_verified,
    torch_save_atomic,
    write_json,
)


def _strict_loads(text: str):
    def refuse(name):
        raise AssertionError(f"non-standard JSON constant {name}")
    return json.loads(text, parse_constant=refuse)


# ------------------------------------------------------------------------------ atomic writer
def test_crash_during_replace_leaves_the_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "summary.json"
    write_json(path, {"v": 1})

    def crash(*args, **kwargs):
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(rio.os, "replace", crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        write_json(path, {"v": 2})
    with pytest.raises(RuntimeError):
        save_npz(tmp_path / "layer_norms.npz", a=np.zeros(3))
    monkeypatch.undo()
    assert _strict_loads(path.read_text()) == {"v": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]


def test_strict_json_writes_null_for_non_finite_and_converts_types(tmp_path):
    path = tmp_path / "s.json"
    write_json(path, {"nan": float("nan"), "inf": np.float64("inf"), "arr": np.array([1.0, np.nan]),
                      "t": torch.tensor([2, 3]), "np": np.int64(4), "tup": (1, 2), "p": Path("a/b"), 5: "k"})
    data = _strict_loads(path.read_text())
    assert data == {"nan": None, "inf": None, "arr": [1.0, None], "t": [2, 3], "np": 4, "tup": [1, 2],
                    "p": "a/b", "5": "k"}
    with pytest.raises(TypeError, match=r"object at \$\.x"):
        write_json(path, {"x": object()})


def test_disk_full_names_path_operation_and_free_space(tmp_path, monkeypatch):
    real_fdopen = os.fdopen

    class Full:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(rio.os, "fdopen", lambda fd, mode: Full(real_fdopen(fd, mode)))
    target = tmp_path / "checkpoint.pt"
    with pytest.raises(DiskFullError) as info:
        save_checkpoint({"w": torch.zeros(4)}, target)
    msg = str(info.value)
    assert isinstance(info.value, OSError) and info.value.errno == errno.ENOSPC
    assert str(target) in msg and "writing" in msg and "MiB free" in msg and "--resume" in msg
    assert "inline_container" not in msg
    assert list(tmp_path.iterdir()) == []  # no temp file left behind


def test_permission_error_is_translated(tmp_path, monkeypatch):
    def denied(*a, **k):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(rio.tempfile, "mkstemp", denied)
    with pytest.raises(WritePermissionError, match=r"permission denied while writing .*x\.txt.*free") as info:
        atomic_write_text(tmp_path / "x.txt", "hi")
    assert isinstance(info.value, PermissionError)


# ------------------------------------------------------------------------------ metrics log
def test_metrics_log_append_read_truncate(tmp_path):
    log = MetricsLog(tmp_path / "metrics.jsonl")
    for e in range(1, 5):
        log.append({"global_epoch": e, "loss": float("nan") if e == 4 else 1.0 / e})
    assert [r["global_epoch"] for r in load_metrics(tmp_path)] == [1, 2, 3, 4]
    assert load_metrics(tmp_path)[-1]["loss"] is None
    for line in (tmp_path / "metrics.jsonl").read_text().splitlines():
        _strict_loads(line)
    kept = log.truncate_after(2)
    assert [r["global_epoch"] for r in kept] == [1, 2] == [r["global_epoch"] for r in log.read()]
    with open(log.path, "a") as f:  # a crash in the middle of an append
        f.write('{"global_epoch": 3, "lo')
    with pytest.warns(RuntimeWarning, match="incomplete last line"):
        assert len(log.read()) == 2
    with pytest.raises(FileNotFoundError, match="metrics.jsonl"):
        load_metrics(tmp_path / "nowhere")


# ------------------------------------------------------------------------------ checkpoints
def _payload(v: float) -> dict:
    return {"global_epoch": int(v), "w": torch.full((64, 64), float(v)), "rng": rng_state()}


def _flip_byte_in_tensor(path: Path) -> None:
    """Flip one byte inside the stored data of the (only) large tensor of a torch zip file."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
        header = info.header_offset
    # local file header: 30 bytes + name + extra; torch stores uncompressed, so data follows.
    name_len = int.from_bytes(data[header + 26:header + 28], "little")
    extra_len = int.from_bytes(data[header + 28:header + 30], "little")
    offset = header + 30 + name_len + extra_len + 100
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_checkpoint_keeps_previous_and_sidecars(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(_payload(1), path)
    assert not previous_path(path).exists()
    save_checkpoint(_payload(2), path)
    assert load_checkpoint(path)["global_epoch"] == 2
    assert torch_load_verified(previous_path(path))["global_epoch"] == 1
    meta = json.loads(checksum_path(path).read_text())
    assert meta["bytes"] == path.stat().st_size and len(meta["sha256"]) == 64


def test_flipped_byte_is_detected_and_previous_used(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(_payload(1), path)
    save_checkpoint(_payload(2), path)
    _flip_byte_in_tensor(path)
    assert torch.load(path, weights_only=True)["global_epoch"] == 2  # torch alone loads it silently
    with pytest.warns(RuntimeWarning, match=r"checkpoint\.pt is unusable \(sha256 mismatch.*checkpoint\.prev\.pt"):
        state = load_checkpoint(path)
    assert state["global_epoch"] == 1 and bool((state["w"] == 1.0).all())
    save_checkpoint(_payload(3), path)  # a bad current is not rotated over the good previous
    assert torch_load_verified(previous_path(path))["global_epoch"] == 1


def test_truncated_checkpoint_falls_back_and_both_bad_raise(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(_payload(1), path)
    save_checkpoint(_payload(2), path)
    path.write_bytes(path.read_bytes()[:500])
    with pytest.warns(RuntimeWarning, match="truncated"):
        assert load_checkpoint(path)["global_epoch"] == 1
    prev = previous_path(path)
    prev.write_bytes(b"garbage")
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    msg = str(info.value)
    assert "checkpoint.pt: truncated" in msg and "checkpoint.prev.pt: truncated" in msg
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "other.pt")


def test_unloadable_but_checksummed_file_is_reported(tmp_path):
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(b"not a zip at all")
    write_json(checksum_path(path), {"file": path.name, "bytes": 16, "sha256": rio.file_sha256(b"not a zip at all")})
    with pytest.raises(CheckpointError, match=r"cannot be loaded with torch.load\(weights_only=True\)"):
        load_checkpoint(path)


class _Evil:
    marker = ""

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_crafted_pickle_is_refused_and_does_not_run(tmp_path):
    marker = tmp_path / "pwned"
    evil = _Evil()
    evil.marker = str(marker)
    path = tmp_path / "checkpoint.pt"
    # A legacy (non-zip) torch pickle and a zip file built by torch.save with the object inside.
    with open(path, "wb") as f:
        torch.save({"model": {}, "x": evil}, f, _use_new_zipfile_serialization=True)
    data = path.read_bytes()
    write_json(checksum_path(path), {"file": path.name, "bytes": len(data), "sha256": rio.file_sha256(data)})
    with pytest.raises(CheckpointError, match="weights_only"):
        load_checkpoint(path)
    plain = tmp_path / "plain.pt"
    plain.write_bytes(pickle.dumps({"x": evil}, protocol=2))
    with pytest.raises(CheckpointError):
        torch_load_verified(plain)
    assert not marker.exists()
    with pytest.raises(TypeError, match="weights_only"):  # and such a payload is never written
        save_checkpoint({"x": evil}, tmp_path / "c2.pt")
    assert not marker.exists()


def test_rng_state_round_trips_exactly_through_weights_only(tmp_path):
    torch.manual_seed(3), np.random.seed(4), random.seed(5)
    np.random.randn()  # leaves a cached Gaussian in numpy's state
    random.gauss(0, 1)
    path = tmp_path / "checkpoint.pt"
    save_checkpoint({"rng": rng_state()}, path)
    expected = (torch.rand(5), np.random.rand(5), np.random.randn(3), [random.random() for _ in range(3)],
                random.gauss(0, 1))
    torch.manual_seed(0), np.random.seed(0), random.seed(0)
    set_rng_state(load_checkpoint(path)["rng"])
    got = (torch.rand(5), np.random.rand(5), np.random.randn(3), [random.random() for _ in range(3)],
           random.gauss(0, 1))
    assert torch.equal(expected[0], got[0])
    assert np.array_equal(expected[1], got[1]) and np.array_equal(expected[2], got[2])
    assert expected[3] == got[3] and expected[4] == got[4]


def test_torch_save_atomic_sidecar_is_verified(tmp_path):
    path = tmp_path / "final.pt"
    torch_save_atomic({"state_dict": {"w": torch.ones(3)}}, path)
    assert torch_load_verified(path)["state_dict"]["w"].sum() == 3
    shutil.copy(path, tmp_path / "copy.pt")  # no sidecar: loads (weights_only) unless required
    assert torch_load_verified(tmp_path / "copy.pt")["state_dict"]["w"].sum() == 3
    with pytest.raises(CheckpointError, match="checksum file"):
        torch_load_verified(tmp_path / "copy.pt", require_checksum=True)
    _flip_byte_in_tensor(path)
    with pytest.raises(CheckpointError, match="sha256 mismatch"):
        torch_load_verified(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        save_npz(tmp_path / "a.npz", x=np.arange(3))
    assert np.load(tmp_path / "a.npz")["x"].tolist() == [0, 1, 2]


def test_atomic_writes_get_the_umask_permissions(tmp_path):
    """mkstemp makes 0600 files; a run's outputs must be readable as a plain open() would leave them."""
    import os
    import stat

    from strucspars_viz.training.io import atomic_write_text

    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.json", "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o644
