"""Where datasets are looked up: the data-root rule, and the bundled CIFAR-10 sample.

The rule, highest priority first:

1. an explicit ``root`` argument (``--data-root`` on the command line);
2. the environment variable ``$STRUCSPARS_DATA``;
3. ``./data`` in the current working directory, if it exists;
4. the bundled CIFAR-10 sample (:data:`SAMPLE_ROOT`, CIFAR-10 only).

A root the user *named* (1 or 2) must hold the dataset: if it does not, the loaders raise
``FileNotFoundError`` naming the path, never falling back to the sample (a mistyped path must not
silently train on 1,500 images). Only when nothing was named, and ``./data`` does not hold the
dataset either, is the sample used, announced once per process by a ``UserWarning``.

The sample is package data (``strucspars_viz/data/sample/``) found through
:mod:`importlib.resources`, so a non-editable (wheel) install finds it too.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

__all__ = ["DATA_ENV", "SAMPLE_ROOT", "SAMPLE_SIZES", "RootChoice", "announce_sample", "data_root_candidates",
           "not_found", "resolve_data_root", "unnamed_tried"]

DATA_ENV = "STRUCSPARS_DATA"
# A regular (non-zip) install: the package folder is a real directory, so the resource is a Path.
SAMPLE_ROOT = Path(os.fspath(resources.files(__package__) / "sample"))
SAMPLE_SIZES = {"n_train": 1500, "n_test": 500, "per_class_train": 150, "per_class_test": 50}

ARGUMENT, ENV, CWD, SAMPLE = "root argument", f"${DATA_ENV}", "./data", "bundled sample"

_announced: set[str] = set()


@dataclass(frozen=True)
class RootChoice:
    """One candidate data root and where it came from (``origin``: argument, env var, ./data, sample)."""

    path: Path
    origin: str

    @property
    def named(self) -> bool:
        """True if the user named this root (argument or env var): then it must hold the data."""
        return self.origin in (ARGUMENT, ENV)


def data_root_candidates(root: str | Path | None = None) -> list[RootChoice]:
    """The roots to try, in order: the named one alone, else ``./data`` (if a folder) then the sample.

    >>> [c.origin for c in data_root_candidates("/some/where")]
    ['root argument']
    """
    if root is not None and str(root) != "":
        return [RootChoice(Path(root).expanduser(), ARGUMENT)]
    env = os.environ.get(DATA_ENV)
    if env:
        return [RootChoice(Path(env).expanduser(), ENV)]
    local = Path.cwd() / "data"
    out = [RootChoice(local, CWD)] if local.is_dir() else []
    return out + [RootChoice(SAMPLE_ROOT, SAMPLE)]


def resolve_data_root(root: str | Path | None = None) -> Path:
    """The first candidate of :func:`data_root_candidates`: ``root``, else ``$STRUCSPARS_DATA``, else
    ``./data`` if it exists, else :data:`SAMPLE_ROOT`."""
    return data_root_candidates(root)[0].path


def announce_sample(what: str) -> None:
    """Warn, once per process, that the bundled sample is used because no data root was named."""
    if what in _announced:
        return
    _announced.add(what)
    warnings.warn(
        f"no data root named (argument / ${DATA_ENV}) and none found in ./data: using the bundled {what} "
        f"sample in {SAMPLE_ROOT} ({SAMPLE_SIZES['n_train']:,} train / {SAMPLE_SIZES['n_test']:,} test images, "
        f"{SAMPLE_SIZES['per_class_train']}/{SAMPLE_SIZES['per_class_test']} per class): fine for smoke tests, "
        f"not for accuracy numbers. Set ${DATA_ENV} or pass a root to use the full dataset.",
        UserWarning,
        stacklevel=3,
    )


def _reset_announcements() -> None:
    """Forget what was announced (tests: each one may expect its own warning)."""
    _announced.clear()


def unnamed_tried(tried: list[Path], paths: list[Path]) -> list[Path]:
    """``tried``, or ``paths`` (the ``./data`` layouts) if nothing was tried because ``./data`` is absent."""
    return tried or paths


def not_found(what: str, tried: list[Path], layout: str, fix: str, named: RootChoice | None) -> FileNotFoundError:
    """The error for ``what`` missing: every path tried, where the root came from, and how to fix it."""
    lines = "\n".join(f"  - {p}" for p in tried)
    by = "the root argument" if named is not None and named.origin == ARGUMENT else ENV
    where = f" under {named.path} (named by {by})" if named is not None else ""
    tail = " No fallback to the bundled sample because a data root was named." if named is not None else ""
    return FileNotFoundError(f"{what} not found{where}. Looked for {layout} at:\n{lines}\nFix: {fix}.{tail}")
