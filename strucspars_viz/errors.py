"""Exceptions that mean "the user asked for something that cannot be done", not "the code is broken".

The command line (:mod:`strucspars_viz.cli`) prints these as ``strucspars-viz <command>: error: ...``
and exits with status 2; everything else is a bug and keeps its traceback.
"""
from __future__ import annotations

__all__ = ["UserInputError", "RunFolderError", "CheckpointError", "NonFiniteLossError"]


class UserInputError(ValueError):
    """Bad input (an option, a file, a size): the message says which and what is allowed."""


class RunFolderError(UserInputError):
    """A run folder is locked by another run, already used, or not writable."""


class CheckpointError(UserInputError):
    """A checkpoint (or weights file) is missing, corrupt, or does not match the run."""


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite: the run stops instead of training on garbage."""
