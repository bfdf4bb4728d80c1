"""Checksum manifests of committed results: what a notebook draws is what the run wrote.

Every results folder (``results/<name>/``) carries a ``SHA256SUMS`` file in the format of GNU
``sha256sum`` (one ``<64 hex digits>  <path relative to the folder>`` line per file, sorted), so
``cd results/<name> && sha256sum -c SHA256SUMS`` checks it without this package as well.
:func:`verify_manifest` is called by the notebooks before they draw a committed result (CPU tier:
they cannot re-run it), and by ``strucspars-viz manifest FOLDER``; ``--write`` records a folder
after a run has finished. The resumable state of a run (``checkpoint*.pt`` and their sidecars, the
lock), the sweep's event log ``jobs.jsonl`` and submitit's folder are not results and are not listed.
"""
from __future__ import annotations

import argparse
import fnmatch
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .errors import UserInputError
from .training.io import atomic_write_text

__all__ = ["MANIFEST", "ManifestError", "Verified", "manifest_files", "verify_manifest", "write_manifest",
           "add_arguments", "main"]

MANIFEST = "SHA256SUMS"
#: names (any folder level) that are run state or logs, not results
TRANSIENT = ("checkpoint*.pt", "checkpoint*.pt.sha256", ".lock", "jobs.jsonl", "submitit", "__pycache__",
             ".*.tmp", MANIFEST)
_LINE = re.compile(r"^([0-9a-f]{64}) [ *](.+)$")


class ManifestError(UserInputError):
    """A results folder does not match its ``SHA256SUMS`` (or has none, or the file is malformed)."""


@dataclass(frozen=True)
class Verified:
    """A folder that matched its manifest: the files checked, and files present but not listed."""

    folder: Path
    files: tuple[str, ...]
    unlisted: tuple[str, ...]

    def __str__(self) -> str:
        extra = f"; {len(self.unlisted)} file(s) not in the manifest: {', '.join(self.unlisted[:5])}" \
            if self.unlisted else ""
        return f"{self.folder}: {len(self.files)} file(s) match {MANIFEST}{extra}"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _folder(folder: str | Path) -> Path:
    path = Path(folder)
    if not path.is_dir():
        raise ManifestError(f"{path}: no such results folder")
    return path


def manifest_files(folder: str | Path) -> list[str]:
    """The files of ``folder`` a manifest lists: every regular file below it, as sorted POSIX paths
    relative to it, except :data:`TRANSIENT` names (at any level) and symbolic links."""
    root = _folder(folder)
    out = []
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if any(fnmatch.fnmatch(part, pat) for part in rel.parts for pat in TRANSIENT):
            continue
        if path.is_file() and not path.is_symlink():
            out.append(rel.as_posix())
    return sorted(out)


def write_manifest(folder: str | Path) -> Path:
    """Write ``folder/SHA256SUMS`` (atomically) for :func:`manifest_files`; returns its path."""
    root = _folder(folder)
    lines = [f"{_sha256(root / rel)}  {rel}\n" for rel in manifest_files(root)]
    atomic_write_text(root / MANIFEST, "".join(lines))
    return root / MANIFEST


def _read(root: Path) -> dict[str, str]:
    file = root / MANIFEST
    if not file.is_file():
        raise ManifestError(f"{root}: no {MANIFEST}; record the folder with `strucspars-viz manifest {root} --write`")
    entries: dict[str, str] = {}
    for no, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
        m = _LINE.match(line)
        if not m:
            raise ManifestError(f"{file}:{no}: not a sha256sum line (64 hex digits, two spaces, a path): {line[:80]!r}")
        rel = PurePosixPath(m.group(2))
        if rel.is_absolute() or ".." in rel.parts:
            raise ManifestError(f"{file}:{no}: {rel} is outside the folder; paths are relative, without '..'")
        entries[str(rel)] = m.group(1)
    return entries


def verify_manifest(folder: str | Path) -> Verified:
    """Check every file listed in ``folder/SHA256SUMS``; raises :class:`ManifestError` naming each
    file that is missing or whose sha256 differs. Files present but unlisted are returned, not errors
    (a sweep may be adding jobs to the folder)."""
    root = _folder(folder)
    entries = _read(root)
    missing = [rel for rel in entries if not (root / rel).is_file()]
    changed = [rel for rel, digest in entries.items() if rel not in missing and _sha256(root / rel) != digest]
    if missing or changed:
        parts = ([f"missing: {', '.join(missing)}"] if missing else []) + \
                ([f"sha256 differs: {', '.join(changed)}"] if changed else [])
        raise ManifestError(f"{root}: does not match its {MANIFEST} ({'; '.join(parts)}); the committed result "
                            "was changed or is incomplete (git checkout restores it)")
    unlisted = tuple(rel for rel in manifest_files(root) if rel not in entries)
    return Verified(root, tuple(sorted(entries)), unlisted)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folders", nargs="+", metavar="FOLDER", help="results folders (e.g. results/cifar10_resnet20)")
    parser.add_argument("--write", action="store_true", help=f"(re)write FOLDER/{MANIFEST} instead of checking it")


def main(args: argparse.Namespace) -> int:
    for folder in args.folders:
        if args.write:
            path = write_manifest(folder)
            print(f"{path}: {len(_read(path.parent))} file(s)")
        else:
            print(verify_manifest(folder))
    return 0
