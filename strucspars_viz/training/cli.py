"""``strucspars-viz train``: flags generated from :class:`~.config.TrainConfig`, errors raised for
:mod:`strucspars_viz.cli` to report (``strucspars-viz train: error: ...``, exit status 2)."""
from __future__ import annotations

import argparse
import json

from . import config as _config
from .distributed import destroy

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config`` plus one flag per option (see ``strucspars-viz train --help``)."""
    _config.add_arguments(parser)


def main(args: argparse.Namespace) -> int:
    """Resolve the configuration, run (or resume) it, print the headline numbers."""
    from .io import to_jsonable
    from .trainer import run_training

    cfg = _config.config_from_args(args)
    try:
        trainer, summary = run_training(cfg)
    finally:
        destroy()
    if summary is not None and trainer.is_main:
        keys = ("top1", "params", "macs", "sparsity", "equivalence_max_diff")
        print(json.dumps(to_jsonable({k: summary.get(k) for k in keys}), allow_nan=False))
        print(f"wrote {cfg.out}")
    return 0
