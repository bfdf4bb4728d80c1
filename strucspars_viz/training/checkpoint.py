"""Torch files and checkpoints that can be trusted: checksummed, kept twice, loaded without code.

* :func:`torch_save_atomic` writes any ``.pt`` through the one atomic writer (:mod:`.io`) with a
  sidecar ``<file>.sha256`` (JSON: file, bytes, sha256 of the bytes written);
* :func:`save_checkpoint` additionally keeps the current checkpoint -- if its digest verifies --
  as ``<stem>.prev.pt`` (with its sidecar) before replacing it, so at every moment at least one
  verified checkpoint exists;
* loading always uses ``torch.load(..., weights_only=True)`` (a crafted pickle cannot run code)
  and checks size and sha256; :func:`load_checkpoint` reports a bad file (flipped byte, truncated,
  not loadable) in a ``RuntimeWarning`` and uses the previous one; neither good -> ``CheckpointError``.

Payloads must therefore hold only tensors and primitives (dict / list / tuple / str / int / float /
bool / None): :func:`rng_state` gives the RNG states in that form, and every save refuses (at save
time, not at resume time) a payload that ``weights_only`` could not load.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import random
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import CheckpointError
from .io import atomic_write_bytes, write_json

__all__ = ["checksum_path", "file_sha256", "load_checkpoint", "previous_path", "rng_state", "save_checkpoint",
           "set_rng_state", "torch_load_verified", "torch_save_atomic"]

def checksum_path(path: str | Path) -> Path:
    """``checkpoint.pt`` -> ``checkpoint.pt.sha256``."""
    path = Path(path)
    return path.with_name(path.name + ".sha256")


def previous_path(path: str | Path) -> Path:
    """``checkpoint.pt`` -> ``checkpoint.prev.pt``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def file_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _short_error(err: BaseException) -> str:
    """The informative line of a torch.load error (its weights_only message is a page long)."""
    text = str(err)
    marker = "WeightsUnpickler error:"
    if marker in text:
        text = text.split(marker, 1)[1].strip().split(" Please use", 1)[0]
    text = text.strip().splitlines()[0] if text.strip() else ""
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _serialise(obj: Any, path: Path) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)  # into memory: a full disk then fails in our writer, with our message
    data = buf.getvalue()
    try:
        torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 -- any failure means the payload is unsafe to pickle
        raise TypeError(f"refusing to write {path}: the payload would not load with torch.load(weights_only=True) "
                        f"({_short_error(err)}); store only tensors and primitives "
                        "(see strucspars_viz.training.checkpoint)") from None
    return data


def torch_save_atomic(obj: Any, path: str | Path, *, checksum: bool = True) -> str:
    """``torch.save`` atomically; with ``checksum`` also writes the ``.sha256`` sidecar. Returns the digest."""
    path = Path(path)
    data = _serialise(obj, path)
    digest = file_sha256(data)
    atomic_write_bytes(path, data)
    if checksum:
        write_json(checksum_path(path), {"file": path.name, "bytes": len(data), "sha256": digest})
    return digest


def _verify(path: Path) -> tuple[bytes | None, str | None]:
    """``(bytes, None)`` if ``path`` exists and matches its sidecar, else ``(None, why not)``."""
    if not path.is_file():
        return None, "missing"
    data = path.read_bytes()
    side = checksum_path(path)
    try:
        meta = json.loads(side.read_text())
        want_bytes, want = int(meta["bytes"]), str(meta["sha256"])
    except FileNotFoundError:
        return None, f"its checksum file {side.name} is missing"
    except (ValueError, KeyError, TypeError):
        return None, f"its checksum file {side.name} is unreadable"
    if len(data) != want_bytes:
        return None, f"truncated or resized: {len(data)} bytes, {want_bytes} were written"
    if file_sha256(data) != want:
        return None, "sha256 mismatch: the file changed after it was written"
    return data, None


def _torch_load_bytes(data: bytes, map_location: Any) -> tuple[Any, str | None]:
    try:
        return torch.load(io.BytesIO(data), map_location=map_location, weights_only=True), None
    except Exception as err:  # noqa: BLE001 -- unpickling / zip / storage errors all mean "unusable"
        return None, f"cannot be loaded with torch.load(weights_only=True): {_short_error(err)}"


def torch_load_verified(path: str | Path, map_location: Any = "cpu", *, require_checksum: bool = False) -> Any:
    """``torch.load(path, weights_only=True)``; the sidecar digest is verified when present
    (required with ``require_checksum``). Any failure -> CheckpointError naming the file and why."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    if checksum_path(path).exists() or require_checksum:
        data, why = _verify(path)
    else:
        data, why = path.read_bytes(), None
    if data is None:
        raise CheckpointError(f"{path}: {why}")
    obj, why = _torch_load_bytes(data, map_location)
    if why is not None:
        raise CheckpointError(f"{path}: {why}")
    return obj


def save_checkpoint(obj: dict, path: str | Path) -> str:
    """Write a checkpoint atomically with its sha256; the current one (if it verifies) is kept as
    ``<stem>.prev.pt`` first. Returns the digest of the new file."""
    path = Path(path)
    data = _serialise(obj, path)
    current, _ = _verify(path)
    if current is not None:
        prev = previous_path(path)
        # Order matters: each step leaves at least one file whose sidecar matches it.
        try:
            tmp = prev.with_name(f".{prev.name}.link")
            if tmp.exists():
                tmp.unlink()
            os.link(path, tmp)  # cheap: the old inode survives the replace below
            os.replace(tmp, prev)
        except OSError:
            atomic_write_bytes(prev, current)
        write_json(checksum_path(prev), {"file": prev.name, "bytes": len(current), "sha256": file_sha256(current)})
    digest = file_sha256(data)
    atomic_write_bytes(path, data)
    write_json(checksum_path(path), {"file": path.name, "bytes": len(data), "sha256": digest})
    return digest


def load_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict:
    """The payload of ``path`` (verified, ``weights_only=True``), else of ``<stem>.prev.pt`` with a
    RuntimeWarning saying why ``path`` was not used; CheckpointError with both reasons if neither is good."""
    path = Path(path)
    reasons = []
    for i, candidate in enumerate((path, previous_path(path))):
        data, why = _verify(candidate)
        obj = None
        if data is not None:
            obj, why = _torch_load_bytes(data, map_location)
            if why is None and not isinstance(obj, dict):
                why, obj = f"holds a {type(obj).__name__}, not a checkpoint dict", None
        if obj is not None:
            if i == 1:
                warnings.warn(f"checkpoint {path} is unusable ({reasons[0]}); using the previous checkpoint "
                              f"{candidate} instead (one epoch is repeated)", RuntimeWarning, stacklevel=2)
            return obj
        reasons.append(why)
    if reasons == ["missing", "missing"]:
        raise CheckpointError(f"no checkpoint at {path}")
    raise CheckpointError(f"no usable checkpoint: {path}: {reasons[0]}; {previous_path(path)}: {reasons[1]}")


# ---------------------------------------------------------------------------------------------
# RNG states in weights_only-loadable form
# ---------------------------------------------------------------------------------------------


def rng_state() -> dict:
    """The torch, CUDA, numpy (legacy global) and Python RNG states as tensors and plain ints.

    numpy's ``('MT19937', uint32[624], pos, has_gauss, cached_gaussian)`` is stored with the key as
    an int64 tensor; Python's ``(version, 625 ints, gauss_next)`` as a list of ints.
    """
    kind, key, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": str(kind), "key": torch.from_numpy(np.asarray(key, dtype=np.int64).copy()), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": {"version": int(version), "internal": [int(v) for v in internal], "gauss_next": gauss_next},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Inverse of :func:`rng_state` (CUDA states are restored only if CUDA is available)."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], np.asarray(n["key"].numpy() if isinstance(n["key"], torch.Tensor) else n["key"],
                                               dtype=np.uint32), int(n["pos"]), int(n["has_gauss"]),
                         float(n["cached_gaussian"])))
    p = state["python"]
    random.setstate((int(p["version"]), tuple(int(v) for v in p["internal"]), p["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])

