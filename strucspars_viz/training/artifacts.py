"""Reading the weights a run wrote (for ``compress --run``, ``permute --run``, the ablation runner).

Payload formats (all written with :func:`.checkpoint.torch_save_atomic` or
:func:`.checkpoint.save_checkpoint`, so a ``<file>.sha256`` sidecar sits next to each; all read
with ``torch.load(..., weights_only=True)``):

``sparsified.pt``, ``final.pt``, ``compressed_model.pt`` -- a *weights payload*, a dict with

    ``"model"``        (:data:`MODEL_NAME_KEY`)  registered model name, e.g. ``"resnet56"``
    ``"num_classes"``  (:data:`NUM_CLASSES_KEY`) int
    ``"mode"``         (:data:`MODE_KEY`)        ``"strucspars"`` or ``"dense"``
    ``"config"``       (:data:`CONFIG_KEY`)      the run's ``TrainConfig.to_dict()``
    ``"state_dict"``   (:data:`STATE_KEY`)       ``{name: Tensor}`` of the model
    ``"sparsifier"``   (:data:`SPARSIFIER_KEY`)  ``StructuredSparsifier.state_dict()`` or ``None`` (dense)

  ``sparsified.pt``: end of the sparsification phase (P, Q, G decided, masks applied, not
  finetuned); ``final.pt``: the finetuned masked *dense-shaped* model (loads into
  ``build_model(model, num_classes=...)``); ``compressed_model.pt``: the compressed model, whose
  grouped convolutions do *not* load into the registry's dense model (``Weights.kind`` says so).

``checkpoint.pt`` -- the trainer's resume state: ``"config"`` (with ``"model"`` inside it),
  ``"model"`` (:data:`CHECKPOINT_STATE_KEY`: the model's state dict), ``"sparsifier"``, optimiser,
  RNG, phase... ``num_classes`` is read from the classifier (the last 2-D weight).

A plain ``{name: Tensor}`` state dict (or ``{"state_dict": {...}}``) is accepted too, with
``model = None``.

A run folder reads ``final.pt``: the finished run's finetuned masked model with its sparsifier
state, from which the compressed model can always be rebuilt (``export.compress``); the
compressed file alone cannot be turned back into a registry model. An unfinished run folder is an
error that lists the files it does hold, so that the caller picks one explicitly.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch

from ..errors import CheckpointError
from .checkpoint import torch_load_verified

__all__ = [
    "CHECKPOINT_STATE_KEY",
    "CONFIG_KEY",
    "MODEL_NAME_KEY",
    "MODE_KEY",
    "NUM_CLASSES_KEY",
    "SPARSIFIER_KEY",
    "STATE_KEY",
    "Weights",
    "read_weights",
    "weights_payload",
]

MODEL_NAME_KEY = "model"
NUM_CLASSES_KEY = "num_classes"
MODE_KEY = "mode"
CONFIG_KEY = "config"
STATE_KEY = "state_dict"
SPARSIFIER_KEY = "sparsifier"
CHECKPOINT_STATE_KEY = "model"  # in checkpoint.pt "model" is the state dict; the name is in config["model"]

RUN_WEIGHTS_FILE = "final.pt"
SUFFIXES = (".pt", ".pth")
_RUN_PT_FILES = ("final.pt", "sparsified.pt", "checkpoint.pt", "checkpoint.prev.pt", "compressed_model.pt")


@dataclass(frozen=True)
class Weights:
    """Model weights read from a run folder or a ``.pt`` file.

    ``kind``: ``"final"`` / ``"sparsified"`` / ``"compressed"`` (weights payloads by file name),
    ``"weights"`` (a weights payload under another name), ``"checkpoint"`` or ``"state_dict"``
    (a plain state dict). Only ``"compressed"`` state dicts hold grouped convs.
    """

    model: str | None
    num_classes: int | None
    state_dict: dict[str, torch.Tensor]
    sparsifier: dict | None
    source: Path
    kind: str = "state_dict"
    config: dict | None = field(default=None, repr=False)


def weights_payload(model: str, num_classes: int, state_dict: Mapping[str, torch.Tensor], *, mode: str,
                    config: Mapping[str, Any] | None, sparsifier: Mapping[str, Any] | None) -> dict:
    """The dict :func:`read_weights` expects in ``sparsified.pt`` / ``final.pt`` / ``compressed_model.pt``."""
    return {MODEL_NAME_KEY: str(model), NUM_CLASSES_KEY: int(num_classes), MODE_KEY: str(mode),
            CONFIG_KEY: dict(config) if config is not None else None,
            SPARSIFIER_KEY: dict(sparsifier) if sparsifier is not None else None,
            STATE_KEY: {k: v.detach().cpu() for k, v in state_dict.items()}}


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and len(obj) > 0 and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def _strip_module(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the ``module.`` prefix DistributedDataParallel adds, if every key has it."""
    if sd and all(k.startswith("module.") for k in sd):
        return {k[len("module."):]: v for k, v in sd.items()}
    return dict(sd)


def _classes_from(sd: Mapping[str, torch.Tensor]) -> int | None:
    last = [v for k, v in sd.items() if k.endswith("weight") and v.ndim == 2]
    return int(last[-1].shape[0]) if last else None


def _kind_of(path: Path) -> str:
    name = path.name
    if name.startswith("checkpoint"):
        return "checkpoint"
    if name.startswith("compressed"):
        return "compressed"
    if name in ("final.pt", "sparsified.pt"):
        return path.stem
    return "weights"


def _resolve_path(path: Path) -> Path:
    if path.is_dir():
        target = path / RUN_WEIGHTS_FILE
        if target.is_file():
            return target
        present = [n for n in _RUN_PT_FILES if (path / n).is_file()]
        held = f"it holds {', '.join(present)}: pass one of them explicitly" if present else \
            "it holds none of final.pt, sparsified.pt, checkpoint.pt"
        raise CheckpointError(f"run folder {path} has no {RUN_WEIGHTS_FILE} (the run has not finished); {held}")
    if not path.exists():
        raise CheckpointError(f"{path}: no such file or folder (expected a run folder or a .pt file written by "
                              "`strucspars-viz train`, or a state_dict saved with torch.save)")
    if path.suffix not in SUFFIXES:
        raise CheckpointError(f"{path}: expected a run folder or a {' / '.join(SUFFIXES)} file "
                              f"(torch.save), got a {path.suffix or 'suffix-less'} file")
    return path


def read_weights(path: str | Path, map_location: Any = "cpu") -> Weights:
    """The weights in a run folder (``final.pt``), a ``.pt`` file the trainer wrote, or a plain state dict.

    Always ``weights_only=True``; the ``.sha256`` sidecar is verified when present. A missing path,
    a file that is not a torch file, or one without tensors -> CheckpointError naming the path and
    what was expected.
    """
    path = _resolve_path(Path(path))
    obj = torch_load_verified(path, map_location)
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path}: holds a {type(obj).__name__}; expected a dict with a state dict")
    kind = _kind_of(path)
    if _is_state_dict(obj):
        sd = _strip_module(dict(obj))
        return Weights(None, _classes_from(sd), sd, None, path, "state_dict")
    config = obj.get(CONFIG_KEY) if isinstance(obj.get(CONFIG_KEY), Mapping) else None
    sparsifier = obj.get(SPARSIFIER_KEY) if isinstance(obj.get(SPARSIFIER_KEY), Mapping) else None
    if _is_state_dict(obj.get(STATE_KEY)):  # a weights payload (or {"state_dict": ...} of other tools)
        sd = _strip_module(dict(obj[STATE_KEY]))
        name = obj.get(MODEL_NAME_KEY)
        name = name if isinstance(name, str) else (config or {}).get("model")
        classes = obj.get(NUM_CLASSES_KEY)
        classes = int(classes) if isinstance(classes, int) and not isinstance(classes, bool) else _classes_from(sd)
        return Weights(name, classes, sd, dict(sparsifier) if sparsifier else None, path,
                       kind if kind != "checkpoint" else "weights", dict(config) if config else None)
    if _is_state_dict(obj.get(CHECKPOINT_STATE_KEY)):  # a training checkpoint
        sd = _strip_module(dict(obj[CHECKPOINT_STATE_KEY]))
        name = (config or {}).get("model")
        return Weights(name if isinstance(name, str) else None, _classes_from(sd), sd,
                       dict(sparsifier) if sparsifier else None, path, "checkpoint", dict(config) if config else None)
    raise CheckpointError(f"{path}: no tensors found under {STATE_KEY!r} or {CHECKPOINT_STATE_KEY!r} and it is not a "
                          f"state dict (keys: {sorted(map(str, obj))[:12]}); expected a file written by "
                          "`strucspars-viz train` or torch.save(model.state_dict())")
