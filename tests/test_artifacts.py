"""read_weights: every file a run writes, a run folder, a plain state dict; clear errors otherwise."""
from __future__ import annotations

import os
import pickle

import pytest
import torch

from strucspars_viz.errors import CheckpointError
from strucspars_viz.models import build_model
from strucspars_viz.training.artifacts import (
    CHECKPOINT_STATE_KEY,
    CONFIG_KEY,
    MODEL_NAME_KEY,
    STATE_KEY,
    read_weights,
    weights_payload,
)
from strucspars_viz.training.config import resolve_config
from strucspars_viz.training.io import save_checkpoint, torch_save_atomic


@pytest.fixture(scope="module")
def resnet20():
    torch.manual_seed(0)
    return build_model("resnet20", num_classes=10)


def _payload(model, name="resnet20", sparsifier=None):
    cfg = resolve_config({"model": name, "quick": True}).to_dict()
    return weights_payload(name, 10, model.state_dict(), mode="strucspars", config=cfg, sparsifier=sparsifier)


def test_run_folder_reads_final_pt_into_the_registry_model(tmp_path, resnet20):
    sparsifier = {"decay": 0.5, "layers": {}}
    torch_save_atomic(_payload(resnet20, sparsifier=sparsifier), tmp_path / "final.pt")
    w = read_weights(tmp_path)
    assert (w.model, w.num_classes, w.kind, w.source) == ("resnet20", 10, "final", tmp_path / "final.pt")
    assert w.sparsifier == sparsifier and w.config["model"] == "resnet20"
    fresh = build_model(w.model, num_classes=w.num_classes)
    fresh.load_state_dict(w.state_dict)  # strict: every key and shape matches
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(fresh.eval()(x), resnet20.eval()(x))


def test_unfinished_run_folder_lists_what_it_holds(tmp_path, resnet20):
    save_checkpoint({"config": {"model": "resnet20"}, CHECKPOINT_STATE_KEY: resnet20.state_dict()},
                    tmp_path / "checkpoint.pt")
    with pytest.raises(CheckpointError, match=r"no final\.pt .*holds checkpoint\.pt: pass one of them"):
        read_weights(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="holds none of"):
        read_weights(tmp_path / "empty")


def test_checkpoint_sparsified_compressed_and_plain_state_dict(tmp_path, resnet20):
    sd = resnet20.state_dict()
    save_checkpoint({"format": 2, CONFIG_KEY: {"model": "resnet20"}, CHECKPOINT_STATE_KEY: sd,
                     "sparsifier": {"decay": 0.5}, "optimizer": {"state": {}, "param_groups": []}},
                    tmp_path / "checkpoint.pt")
    ck = read_weights(tmp_path / "checkpoint.pt")
    assert (ck.model, ck.num_classes, ck.kind, ck.sparsifier) == ("resnet20", 10, "checkpoint", {"decay": 0.5})
    assert set(ck.state_dict) == set(sd)
    torch_save_atomic(_payload(resnet20), tmp_path / "sparsified.pt")
    assert read_weights(tmp_path / "sparsified.pt").kind == "sparsified"
    torch_save_atomic(_payload(resnet20), tmp_path / "compressed_model.pt")
    assert read_weights(tmp_path / "compressed_model.pt").kind == "compressed"
    torch.save({f"module.{k}": v for k, v in sd.items()}, tmp_path / "plain.pt")  # DDP-prefixed, no sidecar
    plain = read_weights(tmp_path / "plain.pt")
    assert (plain.model, plain.num_classes, plain.kind, plain.sparsifier) == (None, 10, "state_dict", None)
    assert set(plain.state_dict) == set(sd)
    torch.save({STATE_KEY: sd}, tmp_path / "wrapped.pth")
    assert read_weights(tmp_path / "wrapped.pth").model is None


def _bad_file(tmp_path, case):
    path = tmp_path / {"txt": "w.txt", "npy": "w.npy"}.get(case, "w.pt")
    if case == "txt":
        path.write_text("hello")
    elif case == "npy":
        path.write_bytes(b"\x93NUMPY")
    elif case == "garbage":
        path.write_bytes(b"garbage bytes")
    elif case == "no_tensors":
        torch.save({"epoch": 3, "name": "x"}, path)
    elif case == "list":
        torch.save([torch.zeros(1)], path)
    elif case == "empty_dict":
        torch.save({}, path)
    return path


@pytest.mark.parametrize("case, match", [
    ("missing", "no such file or folder"),
    ("txt", r"expected a run folder or a \.pt"),
    ("npy", r"got a \.npy file"),
    ("garbage", r"cannot be loaded with torch\.load\(weights_only=True\)"),
    ("no_tensors", r"no tensors found .*keys: \['epoch', 'name'\]"),
    ("list", "holds a list"),
    ("empty_dict", "no tensors found"),
])
def test_bad_inputs_are_checkpoint_errors_naming_the_path(tmp_path, case, match):
    path = _bad_file(tmp_path, case)
    with pytest.raises(CheckpointError, match=match) as info:
        read_weights(path)
    assert str(path) in str(info.value)


def test_corrupted_weights_file_is_refused(tmp_path, resnet20):
    path = tmp_path / "final.pt"
    torch_save_atomic(_payload(resnet20), path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256 mismatch"):
        read_weights(tmp_path)


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_crafted_pickle_is_not_run(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({MODEL_NAME_KEY: "resnet20", STATE_KEY: {"w": torch.zeros(1)}, "x": _Evil(marker)}, path)
    with pytest.raises(CheckpointError, match="weights_only"):
        read_weights(path)
    (tmp_path / "old.pt").write_bytes(pickle.dumps(_Evil(marker), protocol=2))
    with pytest.raises(CheckpointError):
        read_weights(tmp_path / "old.pt")
    assert not marker.exists()
