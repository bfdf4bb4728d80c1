"""The run folder: one run at a time (a lock), and a fresh run never touches another run's files.

``with RunDir(out, resume=..., overwrite=...) as rd:`` creates ``out``, takes an exclusive
``fcntl.flock`` on ``out/.lock`` and writes the holder (pid, host, start time) into it:

* a second run on the same folder (another process, or the same process) fails at once with a
  :class:`~strucspars_viz.errors.RunFolderError` naming the holder;
* a lock file that still names a holder but whose flock is free was left by a run that died
  (SIGKILL, power loss): it is taken over with a ``RuntimeWarning`` naming the dead pid. The
  kernel drops a flock when its process dies, so "flock free" is the reliable liveness test;
  the pid is only for the message. The lock file is never deleted (deleting it would let two
  runs lock two different inodes of the same name); a clean exit empties it.

The used-folder rule, checked under the lock:

* a fresh run (``resume=False``) refuses a folder that holds any file a run writes
  (:data:`RUN_FILES`) unless ``overwrite=True``, which removes exactly those files and nothing else;
* ``resume=True`` requires a checkpoint (``checkpoint.pt`` or ``checkpoint.prev.pt``) there.
"""
from __future__ import annotations

import datetime as _dt
import errno
import fcntl
import json
import os
import re
import socket
import warnings
from pathlib import Path
from typing import IO, Any

from ..errors import CheckpointError, RunFolderError

__all__ = ["LOCK_FILE", "RUN_FILES", "RunDir"]

LOCK_FILE = ".lock"

#: the files a run writes (attribute of :class:`RunDir` -> file name)
PATHS: dict[str, str] = {
    "config": "config.json",
    "metrics": "metrics.jsonl",
    "trace": "layer_norms.npz",
    "checkpoint": "checkpoint.pt",
    "sparsified": "sparsified.pt",
    "final": "final.pt",
    "compressed": "compressed_model.pt",
    "summary": "summary.json",
}


#: every file name a run may leave in its folder (``--overwrite`` removes these and only these):
#: the files above plus the ``.sha256`` sidecars of the ``.pt`` files and the kept previous
#: checkpoint (the names :func:`.checkpoint.checksum_path` and :func:`.checkpoint.previous_path`
#: give; listed here so that this module stays free of torch and starts fast).
RUN_FILES: tuple[str, ...] = (
    *PATHS.values(),
    "checkpoint.pt.sha256", "checkpoint.prev.pt", "checkpoint.prev.pt.sha256",
    "sparsified.pt.sha256", "final.pt.sha256", "compressed_model.pt.sha256",
)
# Temporary files of the atomic writer (``.<name>.<random>.tmp``) and of the checkpoint rotation.
_TEMP_RE = re.compile(r"^\.(?P<name>.+?)\.[^.]+\.tmp$|^\.(?P<link>.+)\.link$")


class RunDir:
    """A locked run folder (use as a context manager); ``.config``, ``.metrics``, ... are its paths."""

    config: Path
    metrics: Path
    trace: Path
    checkpoint: Path
    sparsified: Path
    final: Path
    compressed: Path
    summary: Path

    def __init__(self, path: str | Path, *, resume: bool = False, overwrite: bool = False) -> None:
        self.path = Path(path)
        self.resume = bool(resume)
        self.overwrite = bool(overwrite)
        self.lock_path = self.path / LOCK_FILE
        for attr, name in PATHS.items():
            setattr(self, attr, self.path / name)
        self._lock: IO[str] | None = None

    # ------------------------------------------------------------------ context manager
    def __enter__(self) -> "RunDir":
        self.open()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def locked(self) -> bool:
        return self._lock is not None

    @property
    def has_checkpoint(self) -> bool:
        """A checkpoint to resume from: ``checkpoint.pt`` or its kept previous version."""
        return self.checkpoint.exists() or (self.path / "checkpoint.prev.pt").exists()

    def run_files(self) -> list[Path]:
        """The files of a run present in the folder (temporary files of interrupted writes included)."""
        if not self.path.is_dir():
            return []
        found = []
        for p in sorted(self.path.iterdir()):
            m = _TEMP_RE.match(p.name)
            temp_of = m and (m.group("name") or m.group("link"))
            if p.is_file() and (p.name in RUN_FILES or temp_of in RUN_FILES):
                found.append(p)
        return found

    def open(self) -> "RunDir":
        """Create the folder, take the lock, apply the used-folder rule (see the module docstring)."""
        if self.resume and self.overwrite:
            raise RunFolderError("--resume continues the run in the folder and --overwrite replaces it: pass one")
        self._create()
        self._take_lock()
        try:
            self._check_use()
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Empty the lock file and release the lock (idempotent)."""
        f, self._lock = self._lock, None
        if f is None:
            return
        try:
            f.seek(0)
            f.truncate()
            f.flush()
        except OSError:
            pass
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
            f.close()

    # ------------------------------------------------------------------ steps
    def _create(self) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except PermissionError as err:
            raise RunFolderError(f"cannot create the run folder {self.path}: permission denied "
                                 f"({err.filename}); choose a writable --out") from None
        except FileExistsError:
            raise RunFolderError(f"run folder {self.path} exists and is not a folder") from None
        except OSError as err:
            raise RunFolderError(f"cannot create the run folder {self.path}: {err.strerror}") from None
        if not os.access(self.path, os.W_OK | os.X_OK):
            raise RunFolderError(f"run folder {self.path} is not writable; choose a writable --out")

    def _take_lock(self) -> None:
        try:
            f = open(self.lock_path, "a+", encoding="utf-8")
        except PermissionError:
            raise RunFolderError(f"run folder {self.path} is not writable (cannot open {self.lock_path}); "
                                 "choose a writable --out") from None
        except OSError as err:
            raise RunFolderError(f"cannot open the lock file {self.lock_path}: {err.strerror}") from None
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            holder = _read_holder(f)
            f.close()
            if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise RunFolderError(f"run folder {self.path} is in use by {_describe(holder)} (lock {self.lock_path}); "
                                     "wait for it to finish or choose another --out") from None
            raise RunFolderError(f"cannot lock {self.lock_path}: {err.strerror}") from None
        stale = _read_holder(f)
        if stale:
            warnings.warn(f"run folder {self.path}: taking over the lock left by {_describe(stale)}, which no "
                          "longer holds it (the process died)", RuntimeWarning, stacklevel=3)
        me = {"pid": os.getpid(), "host": socket.gethostname(),
              "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
        try:
            f.seek(0)
            f.truncate()
            f.write(json.dumps(me) + "\n")
            f.flush()
            os.fsync(f.fileno())
        except OSError as err:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
            f.close()
            raise RunFolderError(f"cannot write the lock file {self.lock_path}: {err.strerror}") from None
        self._lock = f

    def _check_use(self) -> None:
        found = self.run_files()
        if self.resume:
            if not self.has_checkpoint:
                what = f"it holds {', '.join(p.name for p in found)}" if found else "it holds no run files"
                raise CheckpointError(f"--resume: no checkpoint in {self.path} ({what}); drop --resume to start "
                                      "a fresh run there")
            return
        if not found:
            return
        if not self.overwrite:
            raise RunFolderError(f"run folder {self.path} already holds a run ({', '.join(p.name for p in found)}); "
                                 "pass --resume to continue it, --overwrite to replace it, or choose another --out")
        for p in found:
            try:
                p.unlink()
            except FileNotFoundError:
                pass
            except OSError as err:
                raise RunFolderError(f"--overwrite: cannot remove {p}: {err.strerror}") from None


def _read_holder(f: IO[str]) -> dict | None:
    try:
        f.seek(0)
        text = f.read().strip()
    except OSError:
        return None
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return {"raw": text[:200]}
    return data if isinstance(data, dict) else {"raw": text[:200]}


def _describe(holder: dict | None) -> str:
    if not holder:
        return "another run (holder unknown)"
    if "pid" not in holder:
        return f"another run (lock file says {holder.get('raw')!r})"
    return f"pid {holder.get('pid')} on host {holder.get('host', '?')} (started {holder.get('started', '?')})"
