"""One call for a whole sweep: (quick sparsification run,) plan, launch, report."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from .arms import SPEC_ARMS
from .jobs import check_run, plan_jobs
from .launch import launch
from .report import write_report

__all__ = ["QUICK_BASELINES", "QUICK_FINETUNE_EPOCHS", "quick_run", "run_ablation"]

QUICK_FINETUNE_EPOCHS = 1
QUICK_BASELINES = ("magnitude",)


def quick_run(out: str | Path, *, threads: int | None = None) -> Path:
    """A tiny ResNet-20 StrucSpars run on the bundled sample (quick preset) in ``OUT/sparsify``."""
    from ..training.config import resolve_config
    from ..training.trainer import run_training

    folder = Path(out) / "sparsify"
    if (folder / "sparsified.pt").is_file():
        return folder
    resume = (folder / "checkpoint.pt").is_file()
    cfg = resolve_config({"model": "resnet20", "quick": True, "target": 0.75, "out": str(folder),
                          "progress": False, "resume": resume, "overwrite": not resume, "threads": threads})
    run_training(cfg)
    return folder


def run_ablation(run: str | Path | None, out: str | Path, *, arms: Sequence[str] = SPEC_ARMS,
                 seeds: Sequence[int] = (0, 1, 2), baselines: Sequence[str] = (),
                 baseline_seeds: Sequence[int] | None = None, finetune_epochs: int | None = None,
                 launcher: str = "local", n_jobs: int = 1, quick: bool = False, threads: int | None = None,
                 compare: Sequence[str | Path] = (), pretrained: str | Path | None = None) -> list[dict]:
    """Run every (arm, seed) job (skipping finished ones, resuming an unfinished one); write the report.

    ``quick``: with no ``run``, a tiny sparsification run is trained first (``OUT/sparsify``), and
    the finetuning defaults to :data:`QUICK_FINETUNE_EPOCHS` epochs. ``pretrained``: a finished
    sweep whose dense pretrained models the pruning baselines reuse. Returns the CSV rows.
    """
    if run is None:
        if not quick:
            raise ValueError("--run RUN_DIR is required (a `strucspars-viz train` run folder), unless --quick")
        run = quick_run(out, threads=threads)
    check_run(run)
    if quick and finetune_epochs is None:
        finetune_epochs = QUICK_FINETUNE_EPOCHS
    jobs = plan_jobs(run, out, list(arms), [int(s) for s in seeds], list(baselines),
                     None if baseline_seeds is None else [int(s) for s in baseline_seeds],
                     finetune_epochs=finetune_epochs, threads=threads, pretrained=pretrained)
    launch(jobs, launcher=launcher, n_jobs=n_jobs)
    return write_report(out, compare)
