"""The run configuration of ``strucspars-viz train``: one typed, frozen dataclass.

Every option is a field of :class:`TrainConfig`; its ``metadata`` carries the help text, the allowed
choices and whether the option is *result-affecting* (changes the numbers a run produces, so a
``--resume`` must use the value the checkpoint was made with). The command-line flags
(:func:`add_arguments`), the YAML reader (:func:`load_yaml_config`) and the resume check
(:func:`resume_mismatches`) are all generated from these fields: there is no second list of names.

Precedence, lowest first (:func:`resolve_config`):

1. the field defaults,
2. the dataset preset (the paper's CIFAR or ImageNet schedule, SPEC §4-§5),
3. the quick preset (``quick=True`` or ``$STRUCSPARS_QUICK=1``: tiny balanced subset, 1-2 epochs),
4. the YAML file,
5. explicit overrides (command-line flags; ``None`` means "not given").

>>> cfg = resolve_config({"model": "resnet20"})
>>> (cfg.lr_schedule, cfg.dlam == cfg.lam0)
('step', True)
>>> (cfg.sparsify_epochs, cfg.finetune_epochs) == ((2, 2) if cfg.quick else (100, 160))  # paper's CIFAR schedule
True
>>> cfg.name.startswith("resnet20_cifar10_strucspars_50")
True
>>> cfg.replace(lr=0.05).lr
0.05
"""
from __future__ import annotations

import argparse
import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..config import quick_mode
from .strict import base_type, check_type, read_yaml_mapping

__all__ = [
    "DATASETS",
    "RESULT_AFFECTING",
    "TrainConfig",
    "add_arguments",
    "config_from_args",
    "dataset_family",
    "load_yaml_config",
    "resolve_config",
    "resume_mismatches",
]

DATASETS = ("cifar10", "cifar100", "imagenet")


def _opt(default: Any, help: str, *, result: bool, choices: tuple | None = None) -> Any:
    """A field with its help text, allowed choices and result-affecting flag in ``metadata``."""
    return field(default=default, metadata={"help": help, "choices": choices, "result_affecting": result})


@dataclass(frozen=True)
class TrainConfig:
    """All options of one training run (Algorithm 1, or the dense baseline with ``mode="dense"``).

    Build it with :func:`resolve_config` (full precedence of presets, YAML and overrides) or
    :func:`config_from_args`. Constructing it directly works too: fields left ``None`` that a preset
    supplies are filled from the dataset preset (and the quick preset if ``quick``), ``dlam``
    defaults to ``lam0``, ``name`` / ``out`` are derived, and every value is type- and range-checked.
    After construction no preset-filled field is ``None``: ``cfg.warmup_epochs`` is an ``int``.

    ``cfg["lr"]`` (read-only item access) is kept for notebooks written against the old dict config.
    """

    # -- bookkeeping (not result-affecting)
    name: str | None = _opt(None, "run name (default <model>_<dataset>_<mode>[_<target%>][_quick])", result=False)
    out: str | None = _opt(None, "output folder (default runs/<name>)", result=False)
    # -- what is trained
    model: str = _opt("resnet56", "registered model (see `strucspars-viz compress --help` or models.list_models())",
                      result=True)
    dataset: str = _opt("cifar10", "cifar10 | cifar100 | imagenet (an ImageFolder root with train/ and val/)",
                        result=True, choices=DATASETS)
    # The data *location* may move between a run and its resume (another disk, another machine); what
    # must match is the data itself, which the trainer records in its data description. So: not compared.
    data_root: str | None = _opt(None, "dataset folder (default $STRUCSPARS_DATA, then ./data, then the bundled "
                                 "CIFAR-10 sample)", result=False)
    download: bool = _opt(False, "download CIFAR into --data-root if missing", result=False)
    mode: str = _opt("strucspars", "strucspars (Algorithm 1) or dense (same schedule, no sparsification: the baseline)",
                     result=True, choices=("strucspars", "dense"))
    # -- the method (SPEC §1-§5)
    target: float = _opt(0.5, "target model sparsity in [0, 1)", result=True)
    keep: float = _opt(0.9, "fraction p of L1 mass the grouping criterion keeps during sparsification, in (0, 1]",
                       result=True)
    decay: float = _opt(0.5, "damping of finer hierarchy levels in the penalty, in (0, 1]", result=True)
    # -- schedule (None = from the dataset preset)
    warmup_epochs: int | None = _opt(None, "epochs with lam = 0 at the start of the sparsification phase "
                                     "(CIFAR 10, ImageNet 5)", result=True)
    sparsify_epochs: int | None = _opt(None, "sparsification epochs incl. warm-up (CIFAR 100, ImageNet 60)", result=True)
    finetune_epochs: int | None = _opt(None, "finetuning epochs (CIFAR 160, ImageNet 120)", result=True)
    lr: float = _opt(0.1, "constant learning rate of the sparsification phase", result=True)
    sparsify_weight_decay: float = _opt(0.0, "sparsification-phase weight decay (paper: 0)", result=True)
    finetune_lr: float = _opt(0.1, "initial finetuning learning rate", result=True)
    weight_decay: float = _opt(1e-4, "finetuning weight decay", result=True)
    momentum: float = _opt(0.9, "SGD momentum (both phases), in [0, 1)", result=True)
    lr_schedule: str | None = _opt(None, "finetuning schedule: step (x0.1 at 50% and 75%; CIFAR), cosine (with "
                                   "--lr-warmup-epochs; ImageNet), constant", result=True,
                                   choices=("step", "cosine", "constant"))
    lr_warmup_epochs: int | None = _opt(None, "linear warm-up epochs of the cosine schedule (ImageNet 5)", result=True)
    batch_size: int | None = _opt(None, "training batch size per process (CIFAR 64, ImageNet 256)", result=True)
    eval_batch_size: int = _opt(256, "evaluation batch size per process", result=True)
    lam0: float = _opt(2e-6, "lam when the warm-up ends (SPEC §4)", result=True)
    dlam: float | None = _opt(None, "controller step of lam (default lam0)", result=True)
    initial_rounds: int = _opt(20, "P/Q rounds before training", result=True)
    epoch_rounds: int = _opt(10, "P/Q rounds after every sparsification epoch", result=True)
    iter_rounds: int = _opt(5, "P/Q rounds every --iter-rounds-every iterations", result=True)
    iter_rounds_every: int | None = _opt(None, "also run --iter-rounds P/Q rounds every this many iterations "
                                         "(ImageNet 500; 0 = off)", result=True)
    pq_method: str = _opt("lsa", "assignment solver of a P/Q round", result=True, choices=("lsa", "emd", "cvxpy"))
    pq_init: str = _opt("best", "first P/Q call: best of identity and spectral starts, or a single start "
                        "(identity = the paper)", result=True, choices=("best", "identity", "spectral"))
    image_size: int = _opt(224, "ImageNet crop size", result=True)
    train_subset: int | None = _opt(None, "use a class-balanced subset of this many training images", result=True)
    test_subset: int | None = _opt(None, "use a class-balanced subset of this many test images", result=True)
    seed: int = _opt(0, "seed of initialisation, data order and augmentation", result=True)
    # -- starting point of a finetune-only run (the ablations of SPEC §7 and the pruning baselines)
    start_from: str | None = _opt(None, "a sparsified.pt-format weights payload: load its model state (modules "
                                  "resized to its shapes) and, in strucspars mode, its sparsifier state (masks "
                                  "applied); skip init / sparsify / reach-target and only finetune, then export",
                                  result=True)
    bn_l1: float = _opt(0.0, "dense mode: L1 penalty on BatchNorm scales during the sparsification-phase "
                        "epochs (Network Slimming's training phase)", result=True)
    # -- runtime
    deterministic: bool = _opt(False, "torch.use_deterministic_algorithms(True): resumed runs equal "
                               "uninterrupted ones bit for bit", result=True)
    # Thread count only changes speed (and, at most, float summation order in non-deterministic
    # kernels): not compared, so a run can be resumed on a machine with other cores.
    threads: int | None = _opt(None, "torch.set_num_threads (default: torch's choice)", result=False)
    # Workers change the augmentation stream (a per-worker generator instead of the shared one): compared.
    num_workers: int = _opt(0, "DataLoader worker processes", result=True)
    amp: str = _opt("none", "autocast dtype on CUDA (fp16 adds a GradScaler)", result=True,
                    choices=("none", "bf16", "fp16"))
    channels_last: str = _opt("auto", "channels-last memory format (auto = on CUDA only)", result=True,
                              choices=("auto", "on", "off"))
    # The tracked layer does not change the model, but a resume with another layer would mix two
    # layers' matrices in one layer_norms.npz trace: compared.
    track_layer: str | None = _opt(None, "layer whose norm matrix S is saved per epoch in layer_norms.npz "
                                   "(default: the largest sparsified conv)", result=True)
    # -- control of this invocation (not result-affecting)
    resume: bool = _opt(False, "continue from <out>/checkpoint.pt (every result-affecting option must match)",
                        result=False)
    overwrite: bool = _opt(False, "reuse an output folder that holds another run's files (removes only those files)",
                           result=False)
    stop_after_epochs: int | None = _opt(None, "stop after this many epochs in this call (checkpoint written; "
                                         "for testing resume)", result=False)
    progress: bool = _opt(True, "progress bars", result=False)
    # quick only selects presets; the values it selects are compared field by field.
    quick: bool = _opt(False, "tiny balanced subset, 1-2 epochs per phase (also $STRUCSPARS_QUICK=1)", result=False)

    # ------------------------------------------------------------------ construction
    def __post_init__(self) -> None:
        hints = _hints()
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, check_type(f.name, getattr(self, f.name), hints[f.name]))
        dataset = self.dataset
        if dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {list(DATASETS)}, got {dataset!r}")
        presets = dict(_DATASET_PRESETS[dataset_family(dataset)])
        if self.quick:
            presets.update(_QUICK_PRESETS[dataset_family(dataset)])
        for key, value in presets.items():
            if getattr(self, key) is None:
                object.__setattr__(self, key, value)
        if self.dlam is None:
            object.__setattr__(self, "dlam", self.lam0)
        _validate(self)
        if self.name is None:
            suffix = f"_{int(round(self.target * 100))}" if self.mode == "strucspars" else ""
            object.__setattr__(self, "name", f"{self.model}_{self.dataset}_{self.mode}{suffix}"
                               + ("_quick" if self.quick else ""))
        if self.out is None:
            object.__setattr__(self, "out", str(Path("runs") / self.name))

    def to_dict(self) -> dict[str, Any]:
        """All fields as a plain dict of str / int / float / bool / None (strict-JSON-able)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def replace(self, **changes: Any) -> "TrainConfig":
        """A copy with ``changes`` applied, type- and range-checked again.

        Presets are not re-applied and ``name`` / ``out`` stay as they are: ``replace`` is for
        small changes (``out``, ``resume``, ``lr``), not for switching the dataset.
        """
        unknown = sorted(set(changes) - set(FIELD_NAMES))
        if unknown:
            raise ValueError(f"unknown option(s) {unknown}; known: {sorted(FIELD_NAMES)}")
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TrainConfig":
        """Inverse of :meth:`to_dict` (e.g. a run's ``config.json``); unknown keys are an error."""
        if not isinstance(data, Mapping):
            raise ValueError(f"expected a mapping of option names to values, got {type(data).__name__}")
        data = {str(k).replace("-", "_"): v for k, v in data.items()}
        unknown = sorted(set(data) - set(FIELD_NAMES))
        if unknown:
            raise ValueError(f"unknown option(s) {unknown}; known: {sorted(FIELD_NAMES)}")
        return cls(**data)

    def __getitem__(self, key: str) -> Any:
        if key not in FIELD_NAMES:
            raise KeyError(f"{key!r} is not an option; known: {sorted(FIELD_NAMES)}")
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key) if key in FIELD_NAMES else default


FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(TrainConfig))

#: options whose value changes a run's numbers: a ``--resume`` must use the checkpoint's values
RESULT_AFFECTING: frozenset[str] = frozenset(
    f.name for f in dataclasses.fields(TrainConfig) if f.metadata["result_affecting"])

_DATASET_PRESETS: dict[str, dict[str, Any]] = {  # SPEC §5
    "cifar": {"warmup_epochs": 10, "sparsify_epochs": 100, "finetune_epochs": 160, "lr_schedule": "step",
              "lr_warmup_epochs": 0, "batch_size": 64, "iter_rounds_every": 0},
    "imagenet": {"warmup_epochs": 5, "sparsify_epochs": 60, "finetune_epochs": 120, "lr_schedule": "cosine",
                 "lr_warmup_epochs": 5, "batch_size": 256, "iter_rounds_every": 500},
}

_QUICK_PRESETS: dict[str, dict[str, Any]] = {
    "cifar": {"warmup_epochs": 1, "sparsify_epochs": 2, "finetune_epochs": 2, "batch_size": 32,
              "train_subset": 320, "test_subset": 200, "initial_rounds": 3, "epoch_rounds": 2,
              "lam0": 1e-3, "dlam": 1e-3},
    "imagenet": {"warmup_epochs": 0, "sparsify_epochs": 1, "finetune_epochs": 1, "batch_size": 16,
                 "image_size": 64, "lr_warmup_epochs": 0, "initial_rounds": 2, "epoch_rounds": 1,
                 "iter_rounds_every": 0, "lam0": 1e-3, "dlam": 1e-3, "eval_batch_size": 32, "lr": 0.01,
                 "finetune_lr": 0.01, "pq_init": "identity"},
}


def dataset_family(dataset: str) -> str:
    """``"imagenet"`` or ``"cifar"``: which preset and which model family a dataset takes."""
    return "imagenet" if dataset == "imagenet" else "cifar"


# ---------------------------------------------------------------------------------------------
# Types: one strict checker (.strict) for YAML values, overrides and from_dict
# ---------------------------------------------------------------------------------------------

_HINTS: dict[str, Any] | None = None


def _hints() -> dict[str, Any]:
    global _HINTS
    if _HINTS is None:
        _HINTS = typing.get_type_hints(TrainConfig)
    return _HINTS


def _validate(cfg: TrainConfig) -> None:
    """Ranges and choices, with messages that say what is allowed."""
    from ..models import list_models, model_entry

    for f in dataclasses.fields(cfg):
        allowed = f.metadata["choices"]
        value = getattr(cfg, f.name)
        if allowed is not None and value is not None and value not in allowed:
            raise ValueError(f"option {f.name!r} must be one of {list(allowed)}, got {value!r}")
    entry = model_entry(cfg.model)  # unknown model -> ValueError naming the registered ones
    fam = dataset_family(cfg.dataset)
    if entry.dataset != fam:
        raise ValueError(f"model {cfg.model!r} is an {entry.dataset} model but dataset is {cfg.dataset!r}; "
                         f"{fam} models: {', '.join(list_models(fam))}")
    if not 0.0 <= cfg.target < 1.0:
        raise ValueError(f"target sparsity must lie in [0, 1), got {cfg.target}")
    if not 0.0 < cfg.keep <= 1.0:
        raise ValueError(f"keep must lie in (0, 1], got {cfg.keep}")
    if not 0.0 < cfg.decay <= 1.0:
        raise ValueError(f"decay must lie in (0, 1], got {cfg.decay}")
    if not 0.0 <= cfg.momentum < 1.0:
        raise ValueError(f"momentum must lie in [0, 1), got {cfg.momentum}")
    for key in ("sparsify_epochs", "finetune_epochs", "warmup_epochs", "lr_warmup_epochs", "initial_rounds",
                "epoch_rounds", "iter_rounds", "iter_rounds_every", "num_workers", "seed"):
        if getattr(cfg, key) < 0:
            raise ValueError(f"{key} must be >= 0, got {getattr(cfg, key)}")
    if cfg.mode == "strucspars" and cfg.sparsify_epochs < 1:
        raise ValueError("sparsify_epochs must be >= 1 in strucspars mode")
    for key in ("batch_size", "eval_batch_size", "image_size"):
        if getattr(cfg, key) < 1:
            raise ValueError(f"{key} must be >= 1, got {getattr(cfg, key)}")
    for key in ("threads", "train_subset", "test_subset", "stop_after_epochs"):
        value = getattr(cfg, key)
        if value is not None and value < 1:
            raise ValueError(f"{key} must be >= 1 (or left unset), got {value}")
    if cfg.bn_l1 and cfg.mode != "dense":
        raise ValueError(f"bn_l1 is the Network Slimming penalty of dense mode; mode is {cfg.mode!r}")
    for key in ("lr", "finetune_lr", "lam0", "dlam", "weight_decay", "sparsify_weight_decay", "bn_l1"):
        if getattr(cfg, key) < 0:
            raise ValueError(f"{key} must be >= 0, got {getattr(cfg, key)}")


def load_yaml_config(path: str | Path) -> dict[str, Any]:
    """Read a YAML (or JSON) config file: a flat mapping of option names (``-`` or ``_``) to values.

    Returns the options found, each checked against its field's type; a ``config`` key is ignored.
    Scalars follow YAML 1.2 (:mod:`.strict`): only ``true`` / ``false`` are booleans (``yes``, ``no``,
    ``on``, ``off`` are strings, so ``quick: no`` is an error, not False) and ``2e-6`` is a float.
    Raises FileNotFoundError if ``path`` is missing and ValueError (naming the file, and the line
    or the key) for YAML syntax errors, unknown keys and wrongly typed values.
    """
    out = read_yaml_mapping(path)
    out.pop("config", None)
    unknown = sorted(set(out) - set(FIELD_NAMES))
    if unknown:
        raise ValueError(f"{path}: unknown option(s) {unknown}; known: {sorted(FIELD_NAMES)}")
    hints = _hints()
    try:
        return {k: check_type(k, v, hints[k]) for k, v in out.items()}
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None


# ---------------------------------------------------------------------------------------------
# Resolution and resume
# ---------------------------------------------------------------------------------------------


def resolve_config(overrides: Mapping[str, Any] | None = None,
                   config_file: str | Path | None = None) -> TrainConfig:
    """The full run configuration (precedence in the module docstring).

    ``overrides`` (e.g. command-line flags) with value ``None`` count as not given; keys may use
    ``-`` or ``_``. ``$STRUCSPARS_QUICK=1`` turns quick mode on even if the file says otherwise.
    """
    hints = _hints()
    given = {str(k).replace("-", "_"): v for k, v in (overrides or {}).items() if v is not None}
    unknown = sorted(set(given) - set(FIELD_NAMES))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown}; known: {sorted(FIELD_NAMES)}")
    given = {k: check_type(k, v, hints[k]) for k, v in given.items()}
    from_file = load_yaml_config(config_file) if config_file else {}
    explicit = {**from_file, **given}
    dataset = explicit.get("dataset", TrainConfig.__dataclass_fields__["dataset"].default)
    if dataset not in DATASETS:
        raise ValueError(f"option 'dataset' must be one of {list(DATASETS)}, got {dataset!r}")
    quick = bool(explicit.get("quick", False)) or quick_mode()
    values: dict[str, Any] = dict(_DATASET_PRESETS[dataset_family(dataset)])
    if quick:
        values.update(_QUICK_PRESETS[dataset_family(dataset)])
    values.update(explicit)
    values["quick"] = quick
    return TrainConfig(**values)


def resume_mismatches(saved: Mapping[str, Any], now: TrainConfig) -> list[str]:
    """Result-affecting options whose value differs between a checkpoint's config and ``now``.

    Each entry reads ``"lr: checkpoint 0.1, now 0.05"``; an empty list means the run may resume.
    An option missing from an older checkpoint is compared with its default.

    >>> a = resolve_config({"model": "resnet20"})
    >>> resume_mismatches(a.to_dict(), a.replace(lr=0.05, out="elsewhere", progress=False))
    ['lr: checkpoint 0.1, now 0.05']
    """
    out = []
    for key in sorted(RESULT_AFFECTING):
        default = TrainConfig.__dataclass_fields__[key].default
        old, new = saved.get(key, default), getattr(now, key)
        if old != new or isinstance(old, bool) != isinstance(new, bool):
            out.append(f"{key}: checkpoint {old!r}, now {new!r}")
    return out


# ---------------------------------------------------------------------------------------------
# Command line: one flag per field
# ---------------------------------------------------------------------------------------------


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config`` plus one flag per :class:`TrainConfig` field.

    Unset flags are absent from the namespace (``argparse.SUPPRESS``), so they never override the
    YAML file; booleans get ``--x`` / ``--no-x``.
    """
    from ..models import list_models

    parser.add_argument("--config", metavar="YAML", help="YAML file of options (flags override it)")
    hints = _hints()
    for f in dataclasses.fields(TrainConfig):
        typ, _ = base_type(hints[f.name])
        meta = f.metadata
        text = meta["help"].replace("%", "%%")  # argparse %-formats help strings
        if f.name == "model":
            text = f"registered model: {', '.join(list_models())}"
        if f.default is not None and typ is not bool:
            text += f" [default: {f.default}]"
        kwargs: dict[str, Any] = {"default": argparse.SUPPRESS, "help": text, "dest": f.name}
        if typ is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
            kwargs["help"] = text + f" [default: {'on' if f.default else 'off'}]"
        else:
            kwargs["type"] = typ
            if meta["choices"] is not None:
                kwargs["choices"] = meta["choices"]
            else:
                kwargs["metavar"] = {int: "N", float: "X", str: "STR"}[typ]
        parser.add_argument(_flag(f.name), **kwargs)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The :class:`TrainConfig` of a parsed command line (flags over ``--config`` over presets)."""
    opts = {k: v for k, v in vars(args).items() if k in FIELD_NAMES}
    return resolve_config(opts, getattr(args, "config", None))
