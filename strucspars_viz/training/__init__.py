"""Algorithm 1 end to end (SPEC §2-§6): the experiment layer behind ``strucspars-viz train``.

One concept per module:

* :mod:`.config` -- :class:`TrainConfig` (typed, frozen; flags and strict YAML generated from it);
* :mod:`.io` -- the one atomic writer, strict JSON, the metrics log, verified checkpoints;
* :mod:`.rundir` -- the locked run folder; :mod:`.artifacts` -- reading the weights a run wrote;
* :mod:`.distributed` -- rank / device / collectives; :mod:`.optim` -- optimisers and schedules;
* :mod:`.loop` -- THE training step (:func:`train_one_epoch`, hooks after backward / after step)
  and :func:`evaluate`;
* :mod:`.method` -- what StrucSpars adds to plain training (vs the dense baseline);
* :mod:`.trainer` -- the Algorithm 1 state machine; :mod:`.summary` -- its export phase;
* :mod:`.cli` -- ``strucspars-viz train``.
"""
from ..controller import LambdaController
from .config import RESULT_AFFECTING, TrainConfig, load_yaml_config, resolve_config, resume_mismatches
from .io import load_metrics
from .loop import evaluate, train_one_epoch
from .trainer import PHASES, StopTraining, Trainer, run_training

__all__ = [
    "PHASES",
    "RESULT_AFFECTING",
    "LambdaController",
    "StopTraining",
    "TrainConfig",
    "Trainer",
    "evaluate",
    "load_metrics",
    "load_yaml_config",
    "resolve_config",
    "resume_mismatches",
    "run_training",
    "train_one_epoch",
]
