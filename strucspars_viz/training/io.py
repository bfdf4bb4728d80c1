"""Durable files of a run: the one atomic writer, strict JSON, ``.npz``, the metrics log.

Every file a run writes goes through :func:`atomic_write_bytes`: the bytes are written to a
temporary file in the same folder, fsynced, renamed over the target (``os.replace``), and the
folder is fsynced. A crash at any moment leaves either the old file or the new one, never a torn
one. A full disk or a missing permission is reported as an ``OSError`` subclass whose message
names the file, the operation and the free space (not ``enforce fail at inline_container.cc``).

Torch files and checkpoints (sha256 sidecar, previous checkpoint kept, ``weights_only`` loading,
RNG states) live in :mod:`.checkpoint`, written through the same writer; their functions
(``save_checkpoint``, ``load_checkpoint``, ``torch_save_atomic``, ``rng_state``, ...) are also
importable from here.
"""
from __future__ import annotations

import dataclasses
import errno
import io
import json
import math
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "DiskFullError",
    "MetricsLog",
    "WriteError",
    "WritePermissionError",
    "atomic_write_bytes",
    "atomic_write_text",
    "load_metrics",
    "save_npz",
    "to_jsonable",
    "write_json",
]

METRICS_FILE = "metrics.jsonl"


# ---------------------------------------------------------------------------------------------
# The one atomic writer
# ---------------------------------------------------------------------------------------------


class WriteError(OSError):
    """Writing a run file failed; ``str(err)`` names the file, the operation and the free space."""

    def __str__(self) -> str:  # OSError would prefix "[Errno N]"
        return str(self.strerror)


class DiskFullError(WriteError):
    """No space left on the device (ENOSPC) or over quota (EDQUOT)."""


class WritePermissionError(WriteError, PermissionError):
    """The folder or file is not writable (EACCES, EPERM, EROFS)."""


def _free_space(folder: Path) -> str:
    for p in (folder, *folder.parents):
        try:
            usage = shutil.disk_usage(p)
        except OSError:
            continue
        return f"{usage.free / 2**20:.1f} MiB free of {usage.total / 2**30:.1f} GiB on {p}"
    return "free space unknown"


def _translate(err: OSError, path: Path, operation: str) -> WriteError:
    code = err.errno
    free = _free_space(path.parent)
    if code in (errno.ENOSPC, errno.EDQUOT):
        return DiskFullError(code, f"no space left while {operation} {path} ({free}); free some space and rerun "
                                   "(with --resume to continue from the last checkpoint)")
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return WritePermissionError(code, f"permission denied while {operation} {path}: {err.strerror}; "
                                          f"choose a writable folder ({free})")
    return WriteError(code, f"{operation} {path} failed: {err.strerror or err} ({free})")


def _fsync_dir(folder: Path) -> None:
    try:  # make the rename itself durable; not possible on every filesystem
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file + fsync + ``os.replace`` + folder fsync).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.bin"
    >>> atomic_write_bytes(p, b"abc"); p.read_bytes()
    b'abc'
    """
    path = Path(path)
    operation = "creating the folder of"
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        operation = "writing"
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        # mkstemp creates 0600; a run's files get the permissions a plain open() would give them
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        operation = "renaming the temporary file onto"
        os.replace(tmp, path)
        tmp = None
    except OSError as err:
        raise _translate(err, path, operation) from err
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    _fsync_dir(path.parent)


def atomic_write_text(path: str | Path, text: str) -> None:
    """:func:`atomic_write_bytes` of UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))


# ---------------------------------------------------------------------------------------------
# Strict JSON
# ---------------------------------------------------------------------------------------------


def to_jsonable(obj: Any, _where: str = "$") -> Any:
    """``obj`` as plain JSON types: numpy / torch scalars and arrays, Paths, tuples, sets and
    dataclasses converted, dict keys made strings, and non-finite floats (NaN, inf) as ``None``
    (JSON has no NaN: a bare ``NaN`` makes the file unreadable by strict parsers).

    >>> to_jsonable({"a": (1, float("nan")), 2: np.float32(0.5), "p": Path("x")})
    {'a': [1, None], '2': 0.5, 'p': 'x'}
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item(), _where)
    if isinstance(obj, (np.ndarray, torch.Tensor)):
        return to_jsonable(obj.tolist(), _where)
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v, f"{_where}.{k}") for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v, f"{_where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, (set, frozenset)):
        return [to_jsonable(v, _where) for v in sorted(obj, key=repr)]
    if hasattr(obj, "to_dict"):
        return to_jsonable(obj.to_dict(), _where)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj), _where)
    raise TypeError(f"cannot write {type(obj).__name__} at {_where} as JSON")


def dumps_strict(obj: Any, indent: int | None = None) -> str:
    """``json.dumps`` of :func:`to_jsonable` with ``allow_nan=False``."""
    return json.dumps(to_jsonable(obj), indent=indent, allow_nan=False)


def write_json(path: str | Path, obj: Any, indent: int = 2) -> None:
    """Write ``obj`` as strict JSON (see :func:`to_jsonable`), atomically."""
    atomic_write_text(path, dumps_strict(obj, indent) + "\n")


def save_npz(path: str | Path, **arrays: Any) -> None:
    """``numpy.savez`` of ``arrays``, atomically."""
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    atomic_write_bytes(path, buf.getvalue())


# ---------------------------------------------------------------------------------------------
# The metrics log
# ---------------------------------------------------------------------------------------------


class MetricsLog:
    """``metrics.jsonl``: one strict-JSON record per line, appended durably (fsync per line)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def append(self, record: dict) -> None:
        line = dumps_strict(record) + "\n"
        try:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
        except OSError as err:
            raise _translate(err, self.path, "appending to") from err

    def read(self) -> list[dict]:
        """The records; a torn last line (crash during an append) is skipped with a warning."""
        if not self.path.exists():
            return []
        text = self.path.read_text(encoding="utf-8")
        lines = text.split("\n")
        records = []
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                if i == len(lines) - 1:  # no newline after it: the append never finished
                    warnings.warn(f"{self.path}: ignoring an incomplete last line", RuntimeWarning, stacklevel=2)
                    break
                raise ValueError(f"{self.path}:{i + 1}: not a JSON record: {err}") from None
        return records

    def truncate_after(self, global_epoch: int) -> list[dict]:
        """Keep the records with ``global_epoch <= global_epoch`` (rewritten atomically); returns them.

        Used on resume: lines written after the checkpoint (a crash between the two writes) go.
        """
        kept = [r for r in self.read() if int(r.get("global_epoch", 0)) <= global_epoch]
        atomic_write_text(self.path, "".join(dumps_strict(r) + "\n" for r in kept))
        return kept


def load_metrics(run_dir: str | Path) -> list[dict]:
    """The epoch records of a run folder's ``metrics.jsonl`` (or of that file itself)."""
    path = Path(run_dir)
    if path.is_dir() or path.suffix != ".jsonl":
        path = path / METRICS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no metrics log at {path}")
    return MetricsLog(path).read()


# The checkpoint functions are part of this module's API; imported lazily (PEP 562) because
# .checkpoint itself writes through this module.
_CHECKPOINT_NAMES = frozenset({"checksum_path", "file_sha256", "load_checkpoint", "previous_path", "rng_state",
                               "save_checkpoint", "set_rng_state", "torch_load_verified", "torch_save_atomic"})


def __getattr__(name: str) -> Any:
    if name in _CHECKPOINT_NAMES:
        from . import checkpoint

        return getattr(checkpoint, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
