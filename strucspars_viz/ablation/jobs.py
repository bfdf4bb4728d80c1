"""Every (arm, seed) of a sweep as an independent, locked, resumable job.

A job is a normal run folder ``OUT/<arm>/seed<k>/`` written by the trainer (``config.json``,
``metrics.jsonl``, ``checkpoint.pt``, ``sparsified.pt`` = the state the finetuning really started
from, ``final.pt`` with the sparsifier state really used, ``summary.json``), plus ``start.pt`` (the
start payload this module prepares: :mod:`.arms`, :mod:`.baselines`) and, for baselines,
``baseline.json`` (how the model was matched to the parameter target). The pruning baselines prune a
dense model trained for the sparsification phase's length (a run folder as well): Network Slimming
its own, with L1 on the BN scales, in ``OUT/slimming/seed<k>/pretrain/``; Taylor and magnitude one
shared plain model per seed, ``OUT/pretrain/seed<k>/`` (the same seed gives the same model, so it is
trained once, and the two criteria are compared on the very same network). Two workers that need
the same shared model queue on a blocking lock beside it; the second finds it finished. The
pretraining does not depend on the target, so a sweep at another target may reuse a finished sweep's
pretrained models instead of training its own (``pretrained=``, ``--pretrained SWEEP``); their stored
configuration must equal the one this sweep would train, up to the keys in :data:`REUSE_IGNORES`.

Resume rule: ``summary.json`` present -> the job is skipped; a checkpoint present -> the trainer's
``--resume``; neither -> a fresh start (``--overwrite`` of this job's own run files only, e.g. a
``config.json`` left by a crash before the first checkpoint). Every event is appended to
``OUT/jobs.jsonl`` (``{"job", "event": start|resume|skip|done, "time", "pid"}``).
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from ..training.artifacts import read_weights, weights_payload
from ..training.config import TrainConfig
from ..training.io import torch_save_atomic, write_json
from .arms import ARMS, arm_payload, reinitialise_
from .baselines import BASELINES, DESIGNS, PRUNERS, cost, design_model, narrow_model, prune_to_params, target_params

__all__ = ["Job", "JOB_LOG", "REUSE_IGNORES", "SLIMMING_L1", "job_dir", "pretrain_dir", "is_done", "plan_jobs",
           "run_job", "read_job_log"]

JOB_LOG = "jobs.jsonl"
#: Network Slimming's sparsity strength on CIFAR (Liu et al. 2017: lambda = 1e-4)
SLIMMING_L1 = 1e-4
SPARSIFIED = "sparsified.pt"
#: configuration keys that may differ between a reused pretrained model and this sweep's: where it was
#: written, the target (unused by dense training), and run bookkeeping that does not change the weights
REUSE_IGNORES = frozenset({"out", "target", "resume", "overwrite", "stop_after_epochs", "progress"})


@dataclass(frozen=True)
class Job:
    """One (arm, seed) of a sweep; a plain record so that it pickles for processes and submitit."""

    arm: str
    seed: int
    out: str  # the sweep folder OUT
    run: str  # the sparsification run folder (holds sparsified.pt)
    finetune_epochs: int | None = None
    threads: int | None = None
    stop_after_epochs: int | None = None  # testing: interrupt the job after this many epochs
    pretrained: str | None = None  # a finished sweep whose dense pretrained models are reused

    @property
    def dir(self) -> Path:
        return job_dir(self.out, self.arm, self.seed)

    @property
    def name(self) -> str:
        return f"{self.arm}/seed{self.seed}"

    def to_dict(self) -> dict:
        return asdict(self)


def job_dir(out: str | Path, arm: str, seed: int) -> Path:
    return Path(out) / arm / f"seed{seed}"


def pretrain_dir(job: Job) -> Path:
    """The dense model a pruning baseline prunes: its own for ``slimming``, shared per seed otherwise;
    in this sweep's folder, or in ``job.pretrained``'s when it reuses another sweep's."""
    root = Path(job.pretrained or job.out)
    if job.arm == "slimming":
        return job_dir(root, job.arm, job.seed) / "pretrain"
    return root / "pretrain" / f"seed{job.seed}"


def _check_reused(cfg: TrainConfig, folder: Path) -> None:
    """A reused pretrained model must be finished and trained with ``cfg`` (up to :data:`REUSE_IGNORES`)."""
    if not (folder / "summary.json").is_file() or not (folder / "final.pt").is_file():
        raise FileNotFoundError(f"--pretrained: {folder} holds no finished pretraining (summary.json, final.pt); "
                                "run that sweep's baseline for this seed first")
    stored = json.loads((folder / "config.json").read_text())
    wanted = cfg.to_dict()
    diff = sorted(k for k in set(stored) | set(wanted) if k not in REUSE_IGNORES and stored.get(k) != wanted.get(k))
    if diff:
        raise ValueError(f"--pretrained: {folder} was trained with another configuration ("
                         + ", ".join(f"{k}: {stored.get(k)!r} there, {wanted.get(k)!r} here" for k in diff) + ")")


@contextlib.contextmanager
def _queue(folder: Path):
    """Wait (blocking ``flock``) for any other worker training the shared model ``folder``."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.queue", "a+", encoding="utf-8") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def is_done(job: Job) -> bool:
    return (job.dir / "summary.json").is_file()


def check_run(run: str | Path) -> Path:
    """The ``sparsified.pt`` of a train run folder, or a one-line error."""
    path = Path(run)
    if not path.is_dir():
        raise FileNotFoundError(f"--run {path}: no such run folder")
    file = path / SPARSIFIED
    if not file.is_file():
        raise ValueError(f"--run {path}: no {SPARSIFIED} (the sparsification state the arms start from); "
                         "the run has not finished its sparsification phase, or it is not a strucspars run")
    return file


def plan_jobs(run: str | Path, out: str | Path, arms: list[str], seeds: list[int], baselines: list[str] = (),
              baseline_seeds: list[int] | None = None, *, finetune_epochs: int | None = None,
              threads: int | None = None, pretrained: str | Path | None = None) -> list[Job]:
    """All jobs of a sweep, arms first; names and seed lists checked (one-line errors)."""
    check_run(run)
    if pretrained is not None and not Path(pretrained).is_dir():
        raise FileNotFoundError(f"--pretrained {pretrained}: no such sweep folder")
    bad = [a for a in arms if a not in ARMS]
    if bad:
        raise ValueError(f"unknown arm(s) {', '.join(bad)}; allowed: {', '.join(ARMS)} (or all)")
    bad = [b for b in baselines if b not in BASELINES]
    if bad:
        raise ValueError(f"unknown baseline(s) {', '.join(bad)}; allowed: {', '.join(BASELINES)}")
    if not seeds:
        raise ValueError("empty seed list: give at least one seed, e.g. --seeds 0,1,2")
    bseeds = list(seeds if baseline_seeds is None else baseline_seeds)
    if baselines and not bseeds:
        raise ValueError("empty baseline seed list: give at least one seed, e.g. --baseline-seeds 0,1")
    if not arms and not baselines:
        raise ValueError("nothing to run: no arms and no baselines")
    common = dict(out=str(out), run=str(run), finetune_epochs=finetune_epochs, threads=threads,
                  pretrained=None if pretrained is None else str(pretrained))
    return ([Job(a, int(k), **common) for a in arms for k in seeds]
            + [Job(b, int(k), **common) for b in baselines for k in bseeds])


def log_event(out: str | Path, job: Job, event: str, **extra: Any) -> None:
    line = json.dumps({"job": job.name, "event": event, "time": time.time(), "pid": os.getpid(), **extra})
    Path(out).mkdir(parents=True, exist_ok=True)
    with open(Path(out) / JOB_LOG, "a", encoding="utf-8") as fh:  # one short O_APPEND write per event
        fh.write(line + "\n")


def read_job_log(out: str | Path) -> list[dict]:
    path = Path(out) / JOB_LOG
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _base_config(job: Job, start) -> TrainConfig:
    if not start.config:
        raise ValueError(f"{start.source}: holds no run configuration; re-run `strucspars-viz train`")
    cfg = TrainConfig.from_dict({**start.config, "resume": False, "overwrite": False, "start_from": None,
                                 "stop_after_epochs": None})
    changes: dict[str, Any] = {"seed": job.seed, "progress": False}
    if job.finetune_epochs is not None:
        changes["finetune_epochs"] = job.finetune_epochs
    if job.threads is not None:
        changes["threads"] = job.threads
    return cfg.replace(**changes)


def _train(cfg: TrainConfig, folder: Path, stop: int | None) -> dict | None:
    """Run (fresh or resumed) one run folder with the trainer; ``None`` if stopped early."""
    from ..training.trainer import run_training

    if (folder / "summary.json").is_file():
        return json.loads((folder / "summary.json").read_text())
    resume = (folder / "checkpoint.pt").is_file() or (folder / "checkpoint.prev.pt").is_file()
    cfg = cfg.replace(out=str(folder), resume=resume, overwrite=not resume, stop_after_epochs=stop)
    return run_training(cfg)[1]


def _example_and_grads(cfg: TrainConfig, input_size):
    """A zero example batch for Torch-Pruning's graph trace, and a Taylor gradient function on
    ``TAYLOR_BATCHES`` training batches of the run's data."""
    from ..data import build_datasets, make_loaders

    def grad_fn(model: torch.nn.Module) -> None:
        data = build_datasets(cfg.dataset, cfg.data_root, train_subset=cfg.train_subset, seed=cfg.seed,
                              image_size=cfg.image_size)
        loaders = make_loaders(data, cfg.batch_size, seed=cfg.seed)
        loaders.set_epoch(0)
        model.train()
        for i, (x, y) in enumerate(loaders.train):
            if i == TAYLOR_BATCHES:
                break
            torch.nn.functional.cross_entropy(model(x), y).backward()

    return torch.zeros(1, *input_size), grad_fn


TAYLOR_BATCHES = 8


def _prepare_start(job: Job, start, cfg: TrainConfig) -> TrainConfig:
    """Write ``start.pt`` (once; atomic) and return the config of the job's finetuning run."""
    from ..models import build_model, model_entry

    folder = job.dir
    file = folder / "start.pt"
    cfg_job = cfg.replace(name=f"{job.arm}_seed{job.seed}", start_from=str(file))
    if job.arm in ARMS:
        cfg_job = cfg_job.replace(mode="strucspars")
        if not file.is_file():
            torch_save_atomic(arm_payload(start, job.arm, job.seed, cfg.to_dict()), file)
        return cfg_job
    cfg_job = cfg_job.replace(mode="dense", model=DESIGNS.get(job.arm, start.model))
    if file.is_file():
        return cfg_job
    target = target_params(start)
    info: dict[str, Any] = {"baseline": job.arm, "params_target": target}
    if job.arm == "dense":
        model = reinitialise_(build_model(start.model, num_classes=start.num_classes), job.seed)
    elif job.arm == "narrow":
        model, match = narrow_model(start.model, start.num_classes, target)
        reinitialise_(model, job.seed)
        info.update(match)
    elif job.arm in DESIGNS:
        model, match = design_model(job.arm, start.model, start.num_classes, target)
        reinitialise_(model, job.seed)
        # the sweep model's dense cost, for the CSV's ratios (the design's own run has no dense reference)
        dense = cost(build_model(start.model, num_classes=start.num_classes), model_entry(start.model).input_size)
        info.update(match, params_dense=dense["params"], macs_dense=dense["macs"])
    else:
        assert job.arm in PRUNERS
        slim = job.arm == "slimming"
        pre = cfg.replace(mode="dense", name=f"{'slimming' if slim else 'dense'}_seed{job.seed}_pretrain",
                          finetune_epochs=0, bn_l1=SLIMMING_L1 if slim else 0.0)
        pre_dir = pretrain_dir(job)
        if job.pretrained:
            _check_reused(pre, pre_dir)
        else:
            with _queue(pre_dir):
                if _train(pre, pre_dir, job.stop_after_epochs) is None:
                    raise _Stopped()
        dense = read_weights(pre_dir / "final.pt")
        model = build_model(dense.model, num_classes=dense.num_classes)
        model.load_state_dict(dense.state_dict)
        example, grad_fn = _example_and_grads(cfg, model_entry(start.model).input_size)
        model, match = prune_to_params(model, example, job.arm, target, grad_fn=grad_fn)
        info.update(match, pretrain=os.path.relpath(pre_dir, folder), pretrain_epochs=cfg.sparsify_epochs,
                    bn_l1=pre.bn_l1)
    info["params"] = sum(p.numel() for p in model.parameters())
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "baseline.json", info)
    torch_save_atomic(weights_payload(cfg_job.model, start.num_classes, model.state_dict(), mode="dense",
                                      config=cfg.to_dict(), sparsifier=None), file)
    return cfg_job


class _Stopped(Exception):
    pass


def run_job(spec: dict | Job) -> dict | None:
    """Run one job to its end (or resume it); returns its summary (``None`` if stopped early).

    Top-level and taking a plain dict, so that process pools and submitit can pickle it.
    """
    job = spec if isinstance(spec, Job) else Job(**spec)
    if is_done(job):
        log_event(job.out, job, "skip")
        return json.loads((job.dir / "summary.json").read_text())
    resumed = (job.dir / "checkpoint.pt").is_file() or (job.dir / "pretrain").is_dir()
    log_event(job.out, job, "resume" if resumed else "start")
    start = read_weights(check_run(job.run))
    if job.threads:
        torch.set_num_threads(job.threads)
    try:
        cfg = _prepare_start(job, start, _base_config(job, start))
    except _Stopped:
        log_event(job.out, job, "stopped")
        return None
    summary = _train(cfg, job.dir, job.stop_after_epochs)
    log_event(job.out, job, "done" if summary is not None else "stopped")
    return summary
