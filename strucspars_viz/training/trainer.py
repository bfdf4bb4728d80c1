"""Algorithm 1 end to end (SPEC §2-§6) as a small state machine, one method per phase.

Phases (one method each; :data:`TRANSITIONS` lists who may follow whom):

* ``init`` -> sparsify: ``initial_rounds`` P/Q rounds on the fresh model, the criterion's ``G``;
* ``sparsify`` -> sparsify | to_finetune: one epoch per call, SGD (momentum, constant lr) with
  ``sparsifier.regularize(lam)`` after every backward; after the epoch ``epoch_rounds`` P/Q rounds,
  ``update_groups(keep)`` and one :class:`~strucspars_viz.controller.LambdaController` step;
* ``to_finetune`` -> finetune: evaluate, ``reach_target(target)``, ``apply_masks()``, evaluate, new
  optimiser (weight decay, step / cosine schedule); writes ``sparsified.pt``;
* ``finetune`` -> finetune | export: one epoch per call, masks enforced after every step;
* ``export`` -> done: compress, check equivalence, count, evaluate (:mod:`.summary`); writes
  ``final.pt``, ``compressed_model.pt``, ``summary.json``.

``--mode dense`` runs the same phases and schedule with the :class:`~.method.Dense` strategy
(nothing sparsified); every mode difference lives in :mod:`.method`.

The run folder (:class:`~.rundir.RunDir`: locked, a used folder refused unless ``--overwrite``)
receives ``config.json``, ``metrics.jsonl``, ``layer_norms.npz`` (:class:`~strucspars_viz.trace.
LayerTrace`), ``checkpoint.pt`` after every epoch (checksummed, previous kept), ``sparsified.pt``,
``final.pt``, ``compressed_model.pt`` and ``summary.json``. ``--resume`` continues bit for bit
(per-epoch seeding of data order and augmentation, RNG states in the checkpoint) and refuses a
checkpoint whose result-affecting options differ from the command line's.
"""
from __future__ import annotations

import contextlib
import math
import os
import time
import warnings
from typing import Any, Callable, Mapping

import torch

from ..data import build_datasets, make_loaders
from ..errors import CheckpointError, NonFiniteLossError, RunFolderError
from ..models import build_model
from ..seeding import seed_everything
from ..sparsifier import StructuredSparsifier
from ..trace import LayerTrace
from .artifacts import weights_payload
from .config import TrainConfig, resume_mismatches
from .distributed import DistContext
from .io import MetricsLog, load_checkpoint, rng_state, save_checkpoint, set_rng_state, torch_save_atomic, write_json
from .loop import evaluate, train_one_epoch
from .method import make_method
from .optim import make_optimizer
from .rundir import RunDir

__all__ = ["PHASES", "StopTraining", "Trainer", "run_training"]

#: phase -> the phases it may hand over to (itself = one more epoch)
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "init": ("sparsify",),
    "sparsify": ("sparsify", "to_finetune"),
    "to_finetune": ("finetune",),
    "finetune": ("finetune", "export"),
    "export": ("done",),
}
PHASES = tuple(TRANSITIONS) + ("done",)
CHECKPOINT_FORMAT = 2


class StopTraining(Exception):
    """Raised by a callback to stop after the current epoch's checkpoint (a simulated interruption)."""


class Trainer:
    """Runs Algorithm 1 (or the dense baseline) for one :class:`TrainConfig`.

    ``callbacks``: functions ``f(trainer, record)`` called on every rank after each epoch's
    checkpoint is written; raising :class:`StopTraining` ends the run there.
    Everything is built inside :meth:`run`, after the run folder is locked.
    """

    def __init__(self, cfg: TrainConfig | Mapping[str, Any], callbacks: list[Callable] | None = None) -> None:
        self.cfg = cfg if isinstance(cfg, TrainConfig) else TrainConfig.from_dict(cfg)
        self.callbacks = list(callbacks or [])
        self.ctx = DistContext.from_env()
        self.is_main = self.ctx.is_main
        self.phase, self.phase_epoch, self.global_epoch = "init", 0, 0
        self.extra: dict[str, Any] = {}
        self.summary: dict | None = None
        self._epochs_this_call = 0

    # ------------------------------------------------------------------ setup
    @property
    def progress(self) -> bool:
        return bool(self.cfg.progress) and self.ctx.is_main

    @property
    def controller(self):
        return getattr(self.method, "controller", None)

    def _setup(self) -> None:
        cfg, ctx = self.cfg, self.ctx
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        cuda = ctx.device.type == "cuda"
        if cfg.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False
        elif cuda:
            torch.backends.cudnn.benchmark = True
        if cfg.amp != "none" and not cuda:
            warnings.warn(f"--amp {cfg.amp} ignored: AMP is used on CUDA only", RuntimeWarning, stacklevel=3)
        self.amp_dtype = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[cfg.amp] if cuda else None
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None
        self.channels_last = cfg.channels_last == "on" or (cfg.channels_last == "auto" and cuda)
        seed_everything(cfg.seed)
        self.data = build_datasets(cfg.dataset, cfg.data_root, train_subset=cfg.train_subset,
                                   test_subset=cfg.test_subset, seed=cfg.seed, image_size=cfg.image_size,
                                   download=cfg.download, num_workers=cfg.num_workers)
        self.loaders = make_loaders(self.data, cfg.batch_size, cfg.eval_batch_size, seed=cfg.seed,
                                    num_workers=cfg.num_workers, rank=ctx.rank, world=ctx.world, pin_memory=cuda)
        self.model = build_model(cfg.model, num_classes=self.data.num_classes)
        self.start = None
        if cfg.start_from:  # before the sparsifier: it must see the payload's (e.g. pruned) shapes
            from ..models.shapes import fit_to_state_dict
            from .artifacts import read_weights

            self.start = read_weights(cfg.start_from)
            fit_to_state_dict(self.model, self.start.state_dict)
        self.model = self.model.to(ctx.device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.sparsifier = StructuredSparsifier(self.model, decay=cfg.decay, keep=cfg.keep)
        self.net = ctx.wrap(self.model)
        self.method = make_method(self)
        self.optimizer, self.scheduler = make_optimizer(self.model, cfg, "sparsify")
        layers = self.sparsifier.layers
        track = cfg.track_layer or max(layers, key=lambda n: (layers[n].size, n))
        if track not in layers:
            raise ValueError(f"track_layer {track!r} is not a sparsified layer; layers: {list(layers)}")
        self.trace = LayerTrace(track, decay=cfg.decay)

    # ------------------------------------------------------------------ the state machine
    def run(self) -> dict | None:
        """Run (or resume) to the end; returns the summary, or ``None`` if stopped early."""
        ctx = self.ctx
        with contextlib.ExitStack() as stack:
            self.rundir = self._enter_folder(stack)
            self._setup()
            resume = ctx.broadcast(bool(self.cfg.resume and self.rundir.checkpoint.exists()) if ctx.is_main else None)
            if resume:
                self._load_checkpoint()
            else:
                if ctx.is_main:
                    write_json(self.rundir.config, self.cfg.to_dict())
                if self.start is not None:
                    self._start_from_payload()
            try:
                while self.phase != "done":
                    nxt = getattr(self, f"_phase_{self.phase}")()
                    if nxt not in TRANSITIONS[self.phase]:  # a bug, not user input
                        raise RuntimeError(f"phase {self.phase} cannot hand over to {nxt}")
                    self.phase = nxt
            except StopTraining as stop:
                if ctx.is_main:
                    print(f"{stop}; resume with --resume", flush=True)
                return None
            ctx.barrier()
        return self.summary

    def _enter_folder(self, stack: contextlib.ExitStack):
        """Rank 0 locks the run folder; the other ranks learn whether that worked (and stop if not)."""
        ctx = self.ctx
        if not ctx.is_main:
            err = ctx.broadcast(None)
            if err:
                raise RunFolderError(f"rank 0 could not open the run folder: {err}")
            return _ReadOnlyRunDir(self.cfg.out)
        try:
            rundir = stack.enter_context(RunDir(self.cfg.out, resume=self.cfg.resume, overwrite=self.cfg.overwrite))
        except BaseException as err:
            if ctx.distributed:
                ctx.broadcast(str(err) or type(err).__name__)
            raise
        if ctx.distributed:
            ctx.broadcast("")
        return rundir

    def _phase_init(self) -> str:
        self.method.initial()
        self._record_trace("init", 0.0)
        return "sparsify"

    def _phase_sparsify(self) -> str:
        if self.phase_epoch >= self.cfg.sparsify_epochs:
            return "to_finetune"
        after_backward, after_step = self.method.sparsify_hooks()
        self._epoch(after_backward, after_step, end=self.method.end_sparsify_epoch, lam=self.method.lam)
        return "sparsify"

    def _phase_to_finetune(self) -> str:
        self.extra["dense_eval"] = self._evaluate()
        info = self.method.reach_target_and_mask()
        if info:
            self.extra["reach_target"] = info
        self.extra["masked_eval"] = self._evaluate()
        self.phase_epoch = 0
        self.optimizer, self.scheduler = make_optimizer(self.model, self.cfg, "finetune")
        self._record_trace("masked", 0.0)
        if self.ctx.is_main:
            torch_save_atomic(self._weights_payload(self.model), self.rundir.sparsified)
        self._save_checkpoint(phase="finetune")  # a resume starts finetuning, not the mask step, again
        return "finetune"

    def _start_from_payload(self) -> None:
        """``--start-from``: the payload's weights (and sparsifier state, masks applied) replace
        init / sparsify / to_finetune; the run continues at the first finetuning epoch."""
        w = self.start
        self.model.load_state_dict(w.state_dict)
        if self.method.sparsifies:
            if w.sparsifier is None:
                raise CheckpointError(f"{w.source}: no sparsifier state, but mode is strucspars "
                                      "(a start payload for strucspars mode must hold P, Q, G)")
            self.sparsifier.load_state_dict(w.sparsifier)
            if not self.sparsifier.masked:
                self.sparsifier.apply_masks()
        self.extra["start_from"] = str(w.source)
        self.extra["masked_eval"] = self._evaluate()
        self.phase, self.phase_epoch = "finetune", 0
        self.optimizer, self.scheduler = make_optimizer(self.model, self.cfg, "finetune")
        self._record_trace("masked", 0.0)
        if self.ctx.is_main:
            torch_save_atomic(self._weights_payload(self.model), self.rundir.sparsified)
        self._save_checkpoint(phase="finetune")

    def _phase_finetune(self) -> str:
        if self.phase_epoch >= self.cfg.finetune_epochs:
            return "export"
        sp = self.sparsifier
        self._epoch(None, (lambda step: sp.enforce_masks()) if sp.masked else None,
                    end=self.scheduler.step if self.scheduler is not None else None, lam=0.0)
        return "finetune"

    def _phase_export(self) -> str:
        from .summary import export_run

        self.summary = export_run(self)
        return "done"

    # ------------------------------------------------------------------ one epoch
    def _evaluate(self, model: torch.nn.Module | None = None) -> dict:
        return evaluate(self.model if model is None else model, self.loaders.test, device=self.ctx.device,
                        amp_dtype=self.amp_dtype, channels_last=self.channels_last, reduce=self.ctx.all_sum)

    def _epoch(self, after_backward, after_step, *, end, lam: float) -> None:
        t0 = time.time()
        lr = float(self.optimizer.param_groups[0]["lr"])
        label = f"{self.global_epoch + 1} ({self.phase} {self.phase_epoch + 1})"
        self.loaders.set_epoch(self.global_epoch)
        train = train_one_epoch(self.net, self.loaders.train, self.optimizer, device=self.ctx.device,
                                after_backward=after_backward, after_step=after_step, amp_dtype=self.amp_dtype,
                                scaler=self.scaler, channels_last=self.channels_last, epoch=label,
                                progress=self.progress, desc=f"{self.phase} {self.phase_epoch + 1}",
                                reduce=self.ctx.all_sum)
        self.ctx.sync_buffers(self.model)
        if end is not None:
            end()
        self.phase_epoch += 1
        self.global_epoch += 1
        ev = self._evaluate()
        if not math.isfinite(ev["loss"]):
            raise NonFiniteLossError(f"test loss became {ev['loss']} after epoch {label}: the run diverged "
                                     f"(learning rate {lr:g}); lower the learning rate (or lam) and start again")
        self._record_trace(self.phase, lam)
        record = {"phase": self.phase, "epoch": self.phase_epoch, "global_epoch": self.global_epoch,
                  "loss": ev["loss"], "top1": ev["top1"], "top5": ev["top5"],
                  "train_loss": train["train_loss"], "train_top1": train["train_top1"],
                  "lam": lam, "lam_next": self.method.lam if self.phase == "sparsify" else 0.0,
                  "keep": self.sparsifier.keep, "sparsity": self.method.sparsity(),
                  "groups": self.sparsifier.groups(), "lr": lr, "time": time.time() - t0, "wall": time.time()}
        if self.ctx.is_main:
            MetricsLog(self.rundir.metrics).append(record)
        self._save_checkpoint()
        self.ctx.barrier()
        if self.ctx.is_main:
            print(f"[{record['phase']} {record['epoch']}] top1 {record['top1']:.4f} top5 {record['top5']:.4f} "
                  f"train_loss {record['train_loss']:.4f} lam {lam:.3g} sparsity {record['sparsity']:.4f} "
                  f"lr {lr:.3g} ({record['time']:.0f} s)", flush=True)
        self._epochs_this_call += 1
        for cb in self.callbacks:
            cb(self, record)
        stop = self.cfg.stop_after_epochs
        if stop is not None and self._epochs_this_call >= stop:
            raise StopTraining(f"stopped after {self._epochs_this_call} epoch(s) (--stop-after-epochs)")

    def _record_trace(self, phase: str, lam: float) -> None:
        if self.ctx.is_main:
            self.trace.record(self.sparsifier, epoch=self.global_epoch, phase=phase, lam=lam,
                              sparsity=self.method.sparsity())
            self.trace.save(self.rundir.trace)

    # ------------------------------------------------------------------ checkpoints
    def _weights_payload(self, model: torch.nn.Module) -> dict:
        """What ``sparsified.pt`` / ``final.pt`` hold (read by :func:`.artifacts.read_weights`)."""
        return weights_payload(self.cfg.model, self.data.num_classes, model.state_dict(), mode=self.cfg.mode,
                               config=self.cfg.to_dict(), sparsifier=self.method.sparsifier_state())

    def _save_checkpoint(self, phase: str | None = None) -> None:
        if not self.ctx.is_main:
            return
        state = {
            "format": CHECKPOINT_FORMAT, "config": self.cfg.to_dict(), "data": self.data.description,
            "phase": phase or self.phase, "phase_epoch": self.phase_epoch, "global_epoch": self.global_epoch,
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "sparsifier": self.sparsifier.state_dict(), "method": self.method.state(), "extra": self.extra,
            "trace_len": len(self.trace), "rng": rng_state(),
        }
        save_checkpoint(state, self.rundir.checkpoint)

    def _load_checkpoint(self) -> None:
        ctx = self.ctx
        path = self.rundir.checkpoint
        state, error = None, None
        if ctx.is_main:
            try:  # CPU first: under DDP the state travels to the other ranks, whatever their device
                state = load_checkpoint(path, map_location="cpu")
                error = self._resume_problems(path, state)
            except CheckpointError as err:
                error = str(err)
        state, error = ctx.broadcast((state, error) if ctx.is_main else None)
        if error:
            raise CheckpointError(error)
        self.model.load_state_dict(state["model"])
        self.phase, self.phase_epoch, self.global_epoch = state["phase"], state["phase_epoch"], state["global_epoch"]
        self.sparsifier.load_state_dict(state["sparsifier"])  # re-installs the mask hooks when masked
        self.method.load_state(state["method"])
        self.extra = state["extra"]
        self.optimizer, self.scheduler = make_optimizer(self.model, self.cfg,
                                                        "sparsify" if self.phase == "sparsify" else "finetune")
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and state["scaler"] is not None:
            self.scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        if ctx.is_main:
            # Drop what was written after this checkpoint (a crash between the writes).
            MetricsLog(self.rundir.metrics).truncate_after(self.global_epoch)
            self.trace = LayerTrace.load(self.rundir.trace)
            if len(self.trace) < state["trace_len"]:
                raise CheckpointError(f"{self.rundir.trace} holds {len(self.trace)} entries, the checkpoint "
                                      f"expects {state['trace_len']}: the trace file is older than {path}")
            self.trace.truncate(state["trace_len"])

    def _resume_problems(self, path, state: dict) -> str | None:
        """Why ``state`` cannot continue this run (every differing result-affecting option), or None."""
        problems = []
        if state.get("format") != CHECKPOINT_FORMAT:
            problems.append(f"checkpoint format: {state.get('format')!r}, this version reads {CHECKPOINT_FORMAT}")
        problems += resume_mismatches(state.get("config") or {}, self.cfg)
        problems += _data_mismatches(state.get("data"), self.data.description)
        if not problems:
            return None
        return (f"cannot resume {path}: " + "; ".join(problems) + ". Resume with the checkpoint's values, or start "
                "a new run in another --out (or pass --overwrite to replace this one)")


class _ReadOnlyRunDir:
    """Paths of the run folder for ranks other than 0 (which never write it)."""

    def __init__(self, out) -> None:
        from pathlib import Path

        from .rundir import PATHS

        self.path = Path(out)
        for attr, name in PATHS.items():
            setattr(self, attr, self.path / name)


def _data_mismatches(saved: Mapping | None, now: Mapping) -> list[str]:
    """The data itself must match on resume (its location may move): every description entry but
    the path."""
    if saved is None:
        return []
    ignore = {"source", "root"}
    return [f"data {k}: checkpoint {saved.get(k)!r}, now {now.get(k)!r}"
            for k in sorted((set(saved) | set(now)) - ignore) if saved.get(k) != now.get(k)]


def run_training(cfg: TrainConfig | Mapping[str, Any],
                 callbacks: list[Callable] | None = None) -> tuple[Trainer, dict | None]:
    """Build a :class:`Trainer` for a resolved config and run it; returns ``(trainer, summary)``."""
    trainer = Trainer(cfg, callbacks)
    return trainer, trainer.run()
