"""Algorithm 1 end to end (SPEC §2-§5): sparsify, reach the target, mask, finetune, compress.

Phases, one function each (see :class:`Trainer`):

1. ``initial_permutations`` -- ``initial_rounds`` (20) P/Q rounds on the freshly initialised model.
2. ``sparsify`` epochs -- SGD (momentum 0.9, weight decay 0, constant lr 0.1); after every
   ``loss.backward()`` the structured L1 subgradient ``lam * sign(W) * R_g`` is added
   (:meth:`StructuredSparsifier.regularize`). After every epoch: ``epoch_rounds`` (10) P/Q rounds,
   ``update_groups(keep)`` and one step of the :class:`LambdaController` (SPEC §4). ImageNet also
   runs ``iter_rounds`` (5) rounds every ``iter_rounds_every`` (500) iterations.
3. ``to_finetune`` -- evaluate the dense model, ``reach_target(target)`` (bisection over ``keep``),
   ``apply_masks()``, evaluate again, new optimiser (weight decay 1e-4, step or cosine schedule).
4. ``finetune`` epochs -- masks enforced after every optimiser step.
5. ``export`` -- ``compress(sparsifier)``, equivalence check (``max_output_difference`` < 1e-4),
   parameters / MACs before and after, accuracy of the compressed model.

Every run writes into its output folder: ``config.json`` (resolved), ``metrics.jsonl`` (one line
per epoch), ``layer_norms.npz`` (``S`` of one tracked layer per epoch, with ``P, Q, G``),
``checkpoint.pt`` (atomic, every epoch; ``--resume`` continues exactly), ``summary.json`` and
``compressed_model.pt``. ``--mode dense`` trains the same model under the same schedule without
sparsification, for the baseline.

Multi-GPU: launch with ``torchrun --nproc_per_node N -m strucspars_viz.cli train ...``; P/Q/G are
computed on rank 0 and broadcast (the sparsifier's ``state_dict``), the regulariser runs on every
rank after DDP has all-reduced the gradients.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import random
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler
from tqdm.auto import tqdm

from .config import quick_mode
from .counting import count_params_macs
from .export import compress, max_output_difference
from .models import build_model, list_models, model_entry
from .sparsifier import StructuredSparsifier

__all__ = [
    "DEFAULTS",
    "LambdaController",
    "Trainer",
    "add_arguments",
    "atomic_save",
    "load_metrics",
    "main",
    "resolve_config",
    "run_training",
]

DATASETS = ("cifar10", "cifar100", "imagenet")
EQUIVALENCE_TOL = 1e-4

# ---------------------------------------------------------------------------------------------
# The lambda controller (SPEC §4): pure, no torch.
# ---------------------------------------------------------------------------------------------


@dataclass
class LambdaController:
    """Schedule of the regularisation strength ``lam`` over the sparsification phase (SPEC §4).

    ``lam = 0`` during the first ``warmup_epochs`` epochs; it is set to ``lam0`` when the warm-up
    ends. After each later epoch ``t`` (1-based) of ``total_epochs``, with ``s_t`` the model
    sparsity at ``keep``, ``gain = s_t - s_(t-1)`` and ``expected = (target - s_t) / (E - t)``:

    * ``s_t < target`` and ``gain < expected``: ``lam += dlam``  (sparsifying too slowly)
    * ``s_t >= target``: ``lam -= dlam``, clipped at 0           (at or past the target)
    * otherwise ``lam`` is kept.

    ``step(s_t)`` is called once after every epoch (warm-up epochs included, so that ``s_(t-1)`` is
    known) and returns the ``lam`` for the next epoch.
    """

    target: float
    total_epochs: int
    warmup_epochs: int = 10
    lam0: float = 2e-6
    dlam: float = 2e-6
    lam: float = 0.0
    epochs_done: int = 0
    prev_sparsity: float | None = None
    history: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not 0.0 <= self.target < 1.0:
            raise ValueError(f"target sparsity must lie in [0, 1), got {self.target}")
        if self.total_epochs < 1 or self.warmup_epochs < 0:
            raise ValueError(f"need total_epochs >= 1 and warmup_epochs >= 0, got {self.total_epochs}, {self.warmup_epochs}")
        if self.lam0 < 0 or self.dlam < 0:
            raise ValueError(f"lam0 and dlam must be >= 0, got {self.lam0}, {self.dlam}")
        if self.epochs_done == 0 and self.warmup_epochs == 0 and self.lam == 0.0:
            self.lam = float(self.lam0)

    def step(self, sparsity: float) -> float:
        t = self.epochs_done + 1
        s = float(sparsity)
        gain = None if self.prev_sparsity is None else s - self.prev_sparsity
        expected = (self.target - s) / max(self.total_epochs - t, 1)
        action = "keep"
        if t < self.warmup_epochs:
            self.lam, action = 0.0, "warmup"
        elif t == self.warmup_epochs:
            self.lam, action = float(self.lam0), "start"
        elif s < self.target and (gain if gain is not None else 0.0) < expected:
            self.lam, action = self.lam + self.dlam, "increase"
        elif s >= self.target:
            self.lam, action = max(self.lam - self.dlam, 0.0), "decrease"
        self.history.append({"epoch": t, "sparsity": s, "gain": gain, "expected": expected,
                             "action": action, "lam": self.lam})
        self.prev_sparsity = s
        self.epochs_done = t
        return self.lam

    def state_dict(self) -> dict:
        return {k: copy.deepcopy(getattr(self, k)) for k in
                ("target", "total_epochs", "warmup_epochs", "lam0", "dlam", "lam", "epochs_done", "prev_sparsity", "history")}

    def load_state_dict(self, state: dict) -> None:
        for k, v in state.items():
            setattr(self, k, copy.deepcopy(v))


# ---------------------------------------------------------------------------------------------
# Configuration: defaults < dataset defaults < quick mode < YAML file < command-line flags.
# ---------------------------------------------------------------------------------------------

DEFAULTS: dict[str, Any] = {
    "name": None,               # run name; default "<model>_<dataset>_<mode>[_<target>]"
    "out": None,                # output folder; default runs/<name>
    "model": "resnet56",
    "dataset": "cifar10",
    "data_root": None,
    "download": False,
    "mode": "strucspars",       # or "dense": same schedule, no sparsification
    "target": 0.5,
    "keep": 0.9,
    "decay": 0.5,
    "warmup_epochs": None,      # CIFAR 10, ImageNet 5 (lam = 0)
    "sparsify_epochs": None,    # CIFAR 100, ImageNet 60 (warm-up included)
    "finetune_epochs": None,    # CIFAR 160, ImageNet 120
    "lr": 0.1,                  # sparsification phase, constant
    "sparsify_weight_decay": 0.0,
    "finetune_lr": 0.1,
    "weight_decay": 1e-4,       # finetuning
    "momentum": 0.9,
    "lr_schedule": None,        # CIFAR "step" (x0.1 at 50% and 75%), ImageNet "cosine"
    "lr_warmup_epochs": None,   # cosine schedule only; ImageNet 5
    "batch_size": None,         # CIFAR 64, ImageNet 256 (per process)
    "eval_batch_size": 256,
    "lam0": 2e-6,
    "dlam": None,               # default lam0
    "initial_rounds": 20,
    "epoch_rounds": 10,
    "iter_rounds": 5,
    "iter_rounds_every": None,  # ImageNet 500, CIFAR 0 (off)
    "pq_method": "lsa",
    "pq_init": "best",          # first P/Q call: best of identity + spectral starts, or "identity" (the paper)
    "image_size": 224,          # ImageNet only
    "train_subset": None,
    "test_subset": None,
    "seed": 0,
    "deterministic": False,
    "threads": None,
    "num_workers": 0,
    "amp": "none",              # none | bf16 | fp16 (CUDA only)
    "channels_last": "auto",    # auto (CUDA only) | on | off
    "track_layer": None,        # layer whose S is saved per epoch; default: the largest sparsified conv
    "resume": False,
    "stop_after_epochs": None,  # stop (after checkpointing) once this many epochs ran in this call
    "progress": True,
    "quick": False,
}

_DATASET_DEFAULTS = {
    "cifar": {"warmup_epochs": 10, "sparsify_epochs": 100, "finetune_epochs": 160, "lr_schedule": "step",
              "lr_warmup_epochs": 0, "batch_size": 64, "iter_rounds_every": 0},
    "imagenet": {"warmup_epochs": 5, "sparsify_epochs": 60, "finetune_epochs": 120, "lr_schedule": "cosine",
                 "lr_warmup_epochs": 5, "batch_size": 256, "iter_rounds_every": 500},
}

_QUICK = {
    "cifar": {"warmup_epochs": 1, "sparsify_epochs": 2, "finetune_epochs": 2, "batch_size": 32,
              "train_subset": 320, "test_subset": 200, "initial_rounds": 3, "epoch_rounds": 2,
              "lam0": 1e-3, "dlam": 1e-3},
    "imagenet": {"warmup_epochs": 0, "sparsify_epochs": 1, "finetune_epochs": 1, "batch_size": 16,
                 "image_size": 64, "lr_warmup_epochs": 0, "initial_rounds": 2, "epoch_rounds": 1,
                 "iter_rounds_every": 0, "lam0": 1e-3, "dlam": 1e-3, "eval_batch_size": 32, "lr": 0.01,
                 "finetune_lr": 0.01, "pq_init": "identity"},
}

_CHOICES = {"dataset": DATASETS, "mode": ("strucspars", "dense"), "lr_schedule": ("step", "cosine", "constant"),
            "amp": ("none", "bf16", "fp16"), "channels_last": ("auto", "on", "off"), "pq_method": ("lsa", "emd", "cvxpy"),
            "pq_init": ("best", "identity", "spectral")}


def _family(dataset: str) -> str:
    return "imagenet" if dataset == "imagenet" else "cifar"


def load_yaml_config(path: str | Path) -> dict:
    """Read a YAML (or JSON) config file: a flat mapping of option names (``-`` or ``_``) to values."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of option names to values, got {type(data).__name__}")
    out = {str(k).replace("-", "_"): v for k, v in data.items()}
    unknown = sorted(set(out) - set(DEFAULTS) - {"config"})
    if unknown:
        raise ValueError(f"{path}: unknown option(s) {unknown}; known: {sorted(DEFAULTS)}")
    out.pop("config", None)
    return out


def resolve_config(overrides: dict | None = None, config_file: str | Path | None = None) -> dict:
    """The full run configuration.

    Precedence, lowest first: :data:`DEFAULTS`, per-dataset defaults (CIFAR / ImageNet schedule of the
    paper), quick-mode defaults (``quick=True`` or ``$STRUCSPARS_QUICK=1``), the YAML file, ``overrides``
    (command-line flags). Validates names and ranges with messages that say what is allowed.
    """
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = sorted(set(overrides) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown}; known: {sorted(DEFAULTS)}")
    from_file = load_yaml_config(config_file) if config_file else {}
    explicit = {**from_file, **overrides}
    cfg = dict(DEFAULTS)
    dataset = explicit.get("dataset", cfg["dataset"])
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {list(DATASETS)}")
    fam = _family(dataset)
    cfg.update(_DATASET_DEFAULTS[fam])
    quick = bool(explicit.get("quick", False)) or quick_mode()
    if quick:
        cfg.update(_QUICK[fam])
    cfg.update(explicit)
    cfg["quick"] = quick
    if cfg["dlam"] is None:
        cfg["dlam"] = cfg["lam0"]
    _validate(cfg)
    if cfg["name"] is None:
        suffix = f"_{int(round(cfg['target'] * 100))}" if cfg["mode"] == "strucspars" else ""
        cfg["name"] = f"{cfg['model']}_{cfg['dataset']}_{cfg['mode']}{suffix}" + ("_quick" if quick else "")
    if cfg["out"] is None:
        cfg["out"] = str(Path("runs") / cfg["name"])
    return cfg


def _validate(cfg: dict) -> None:
    for key, allowed in _CHOICES.items():
        if cfg[key] not in allowed:
            raise ValueError(f"{key} must be one of {list(allowed)}, got {cfg[key]!r}")
    entry = model_entry(cfg["model"])  # unknown model -> ValueError naming the registered ones
    if entry.dataset != _family(cfg["dataset"]):
        raise ValueError(
            f"model {cfg['model']!r} is an {entry.dataset} model but dataset is {cfg['dataset']!r}; "
            f"{_family(cfg['dataset'])} models: {', '.join(list_models(_family(cfg['dataset'])))}"
        )
    if not 0.0 <= float(cfg["target"]) < 1.0:
        raise ValueError(f"target sparsity must lie in [0, 1), got {cfg['target']}")
    if not 0.0 < float(cfg["keep"]) <= 1.0:
        raise ValueError(f"keep must lie in (0, 1], got {cfg['keep']}")
    for key in ("sparsify_epochs", "finetune_epochs", "warmup_epochs", "initial_rounds", "epoch_rounds",
                "iter_rounds", "iter_rounds_every", "num_workers"):
        if int(cfg[key]) < 0:
            raise ValueError(f"{key} must be >= 0, got {cfg[key]}")
    if cfg["mode"] == "strucspars" and int(cfg["sparsify_epochs"]) < 1:
        raise ValueError("sparsify_epochs must be >= 1 in strucspars mode")
    if int(cfg["batch_size"]) < 1:
        raise ValueError(f"batch_size must be >= 1, got {cfg['batch_size']}")
    for key in ("lr", "finetune_lr", "lam0", "dlam", "weight_decay", "sparsify_weight_decay"):
        if float(cfg[key]) < 0:
            raise ValueError(f"{key} must be >= 0, got {cfg[key]}")


# ---------------------------------------------------------------------------------------------
# Small utilities: atomic checkpoints, RNG state, distributed helpers, metrics.
# ---------------------------------------------------------------------------------------------


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temporary file in the same folder, fsync, then ``os.replace``.

    A crash at any point leaves either the previous file or the new one, never a torn file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, Path):
        return str(x)
    return x


def load_metrics(run_dir: str | Path) -> list[dict]:
    """The epoch records of a run's ``metrics.jsonl``."""
    path = Path(run_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class _ShardSampler(Sampler):
    """Evaluation sampler: rank ``r`` of ``w`` takes indices ``r, r + w, ...`` (no padding, no repeats)."""

    def __init__(self, n: int, rank: int, world: int) -> None:
        self.indices = list(range(rank, n, world))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def _accuracy_counts(logits: torch.Tensor, y: torch.Tensor) -> tuple[int, int]:
    k = min(5, logits.shape[1])
    top = logits.topk(k, dim=1).indices
    hit = top.eq(y[:, None])
    return int(hit[:, :1].sum()), int(hit.any(dim=1).sum())


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


@dataclass
class DataBundle:
    train_set: Dataset
    test_set: Dataset
    num_classes: int
    input_size: tuple[int, int, int]
    description: dict
    aug_generator: torch.Generator | None = None


def build_data(cfg: dict) -> DataBundle:
    """Train / test datasets for ``cfg['dataset']`` (SPEC §5 augmentation)."""
    if cfg["dataset"] == "imagenet":
        from .imagenet_data import imagenet_datasets

        if cfg["data_root"] is None:
            raise ValueError("dataset imagenet needs --data-root <folder holding train/ and val/>")
        train, test = imagenet_datasets(cfg["data_root"], int(cfg["image_size"]))
        train, test = _maybe_subset(train, cfg["train_subset"], cfg["seed"]), _maybe_subset(test, cfg["test_subset"], cfg["seed"])
        size = int(cfg["image_size"])
        desc = {"dataset": "imagenet", "root": str(cfg["data_root"]), "n_train": len(train), "n_test": len(test),
                "classes": len(_classes_of(train))}
        return DataBundle(train, test, len(_classes_of(train)), (3, size, size), desc)

    from .data import CifarTensorDataset, cifar_mean_std, load_cifar, subset_indices

    explicit_root = cfg["data_root"] is not None
    if explicit_root and not Path(cfg["data_root"]).expanduser().exists():
        raise FileNotFoundError(f"data root {cfg['data_root']} does not exist (--data-root)")
    # An explicit --data-root must be used or fail: only the implicit lookup falls back to the sample.
    train_arr = load_cifar(cfg["dataset"], cfg["data_root"], True, cfg["download"], allow_sample=not explicit_root)
    test_arr = load_cifar(cfg["dataset"], cfg["data_root"], False, cfg["download"], allow_sample=not explicit_root)
    mean, std = cifar_mean_std(cfg["dataset"])
    gen = torch.Generator()
    train = CifarTensorDataset(train_arr, subset_indices(train_arr.labels, cfg["train_subset"], cfg["seed"]), True, mean, std,
                               gen if int(cfg["num_workers"]) == 0 else None)
    test = CifarTensorDataset(test_arr, subset_indices(test_arr.labels, cfg["test_subset"], cfg["seed"]), False, mean, std)
    desc = {"dataset": cfg["dataset"], "source": str(train_arr.source), "is_sample": train_arr.is_sample,
            "n_train": len(train), "n_test": len(test)}
    return DataBundle(train, test, len(train_arr.classes), (3, 32, 32), desc,
                      gen if int(cfg["num_workers"]) == 0 else None)


def _classes_of(ds) -> list:
    while isinstance(ds, torch.utils.data.Subset):
        ds = ds.dataset
    return ds.classes


def _maybe_subset(ds, n, seed):
    if n is None or n >= len(ds):
        return ds
    idx = np.random.default_rng(seed).choice(len(ds), size=int(n), replace=False)
    return torch.utils.data.Subset(ds, np.sort(idx).tolist())


# ---------------------------------------------------------------------------------------------
# The trainer
# ---------------------------------------------------------------------------------------------

SPARSIFY, FINETUNE, DONE = "sparsify", "finetune", "done"


class StopTraining(Exception):
    """Raised by a callback to stop after the current epoch's checkpoint (simulated interruption)."""


class Trainer:
    """Runs Algorithm 1 (or the dense baseline) for one resolved config (see :func:`resolve_config`).

    ``callbacks``: functions ``f(trainer, record)`` called on every rank after each epoch's checkpoint
    is written; raising :class:`StopTraining` ends the run there (as an interruption would).
    """

    def __init__(self, cfg: dict, callbacks: list[Callable] | None = None) -> None:
        self.cfg = cfg
        self.callbacks = list(callbacks or [])
        self.out = Path(cfg["out"])
        self._setup_runtime()
        self._setup_data()
        self._setup_model()
        self.phase = SPARSIFY
        self.phase_epoch = 0       # epochs completed in the current phase
        self.global_epoch = 0      # epochs completed overall
        self.extra: dict[str, Any] = {}
        self._epochs_this_call = 0

    # ------------------------------------------------------------------ setup
    def _setup_runtime(self) -> None:
        cfg = self.cfg
        if cfg["threads"]:
            torch.set_num_threads(int(cfg["threads"]))
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.distributed = self.world > 1
        if torch.cuda.is_available():
            self.device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(self.device)
        else:
            self.device = torch.device("cpu")
        if self.distributed and not dist.is_initialized():
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        if cfg["deterministic"]:
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        elif self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        cuda = self.device.type == "cuda"
        self.amp_dtype = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[cfg["amp"]] if cuda else None
        if cfg["amp"] != "none" and not cuda:
            warnings.warn(f"--amp {cfg['amp']} ignored: AMP is used on CUDA only", RuntimeWarning, stacklevel=2)
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None
        self.channels_last = cfg["channels_last"] == "on" or (cfg["channels_last"] == "auto" and cuda)
        self.is_main = self.rank == 0
        random.seed(cfg["seed"])
        np.random.seed(cfg["seed"])
        torch.manual_seed(cfg["seed"])

    def _setup_data(self) -> None:
        cfg = self.cfg
        self.data = build_data(cfg)
        self.train_sampler = DistributedSampler(self.data.train_set, num_replicas=self.world, rank=self.rank,
                                                shuffle=True, seed=int(cfg["seed"]), drop_last=False)
        self.loader_generator = torch.Generator()
        common = {"num_workers": int(cfg["num_workers"]), "pin_memory": self.device.type == "cuda",
                  "persistent_workers": False}
        self.train_loader = DataLoader(self.data.train_set, batch_size=int(cfg["batch_size"]), sampler=self.train_sampler,
                                       generator=self.loader_generator, drop_last=False, **common)
        self.test_loader = DataLoader(self.data.test_set, batch_size=int(cfg["eval_batch_size"]),
                                      sampler=_ShardSampler(len(self.data.test_set), self.rank, self.world), **common)

    def _setup_model(self) -> None:
        cfg = self.cfg
        self.model = build_model(cfg["model"], num_classes=self.data.num_classes).to(self.device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.sparsifier = StructuredSparsifier(self.model, decay=float(cfg["decay"]), keep=float(cfg["keep"]))
        self.net = (nn.parallel.DistributedDataParallel(self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
                    if self.distributed else self.model)
        self.controller = LambdaController(float(cfg["target"]), int(cfg["sparsify_epochs"]), int(cfg["warmup_epochs"]),
                                           float(cfg["lam0"]), float(cfg["dlam"]))
        self.optimizer, self.scheduler = self._make_optimizer(SPARSIFY)
        layers = self.sparsifier.layers
        self.track_layer = cfg["track_layer"] or max(layers, key=lambda n: (layers[n].size, n))
        if self.track_layer not in layers:
            raise ValueError(f"track_layer {self.track_layer!r} is not a sparsified layer; layers: {list(layers)}")
        self.norm_history: dict[str, list] = {"norms": [], "row_perm": [], "col_perm": [], "groups": [],
                                              "epoch": [], "phase": []}

    @property
    def lam(self) -> float:
        return self.controller.lam if self.cfg["mode"] == "strucspars" else 0.0

    def _make_optimizer(self, phase: str):
        cfg = self.cfg
        params = self.model.parameters()
        if phase == SPARSIFY:
            opt = torch.optim.SGD(params, lr=float(cfg["lr"]), momentum=float(cfg["momentum"]),
                                  weight_decay=float(cfg["sparsify_weight_decay"]))
            return opt, None  # constant learning rate
        opt = torch.optim.SGD(params, lr=float(cfg["finetune_lr"]), momentum=float(cfg["momentum"]),
                              weight_decay=float(cfg["weight_decay"]))
        epochs = max(int(cfg["finetune_epochs"]), 1)
        if cfg["lr_schedule"] == "step":
            milestones = sorted({max(1, int(round(0.5 * epochs))), max(1, int(round(0.75 * epochs)))})
            sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=milestones, gamma=0.1)
        elif cfg["lr_schedule"] == "cosine":
            warm = int(cfg["lr_warmup_epochs"] or 0)

            def factor(e: int) -> float:
                if e < warm:
                    return (e + 1) / (warm + 1)
                return 0.5 * (1 + math.cos(math.pi * (e - warm) / max(epochs - warm, 1)))

            sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        else:
            sched = None
        return opt, sched

    # ------------------------------------------------------------------ distributed helpers
    def _sync_sparsifier(self) -> None:
        """Rank 0's ``P, Q, G`` (the sparsifier's ``state_dict``) to every rank."""
        if not self.distributed:
            return
        obj = [self.sparsifier.state_dict() if self.is_main else None]
        dist.broadcast_object_list(obj, src=0)
        if not self.is_main:
            self.sparsifier.load_state_dict(obj[0])

    def _all_sum(self, values: list[float]) -> list[float]:
        if not self.distributed:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=self.device if self.device.type == "cuda" else "cpu")
        dist.all_reduce(t)
        return t.tolist()

    def _sync_buffers(self) -> None:
        """Rank 0's BN running statistics to every rank (DDP broadcasts them only before each forward,
        so after the last step each rank holds statistics of its own last batch)."""
        if self.distributed:
            for buf in self.model.buffers():
                dist.broadcast(buf, src=0)

    def _barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    # ------------------------------------------------------------------ phase 1: initial permutations
    def update_permutations(self, rounds: int) -> None:
        """``rounds`` P/Q rounds on rank 0, then broadcast (SPEC §2)."""
        if self.cfg["mode"] != "strucspars" or rounds <= 0:
            return
        if self.is_main:
            init = None if self.cfg.get("pq_init", "best") == "best" else self.cfg["pq_init"]
            self.sparsifier.update_permutations(rounds, self.cfg["pq_method"], progress=self._progress_enabled(),
                                                init=init)
        self._sync_sparsifier()

    def initial_permutations(self) -> None:
        self.update_permutations(int(self.cfg["initial_rounds"]))
        if self.cfg["mode"] == "strucspars":
            if self.is_main:
                self.sparsifier.update_groups(float(self.cfg["keep"]))
            self._sync_sparsifier()
        self._record_norms(0, "init")

    # ------------------------------------------------------------------ one epoch of training / evaluation
    def _progress_enabled(self) -> bool:
        return bool(self.cfg["progress"]) and self.is_main

    def _seed_epoch(self) -> None:
        """Per-epoch seeding of shuffling and augmentation: resumable without replaying RNG streams."""
        e, seed = self.global_epoch, int(self.cfg["seed"])
        self.train_sampler.set_epoch(e)
        self.loader_generator.manual_seed(seed * 100003 + e)
        if self.data.aug_generator is not None:
            self.data.aug_generator.manual_seed((seed * 1000 + e) * 1000 + self.rank + 1)

    def train_epoch(self) -> dict:
        """One pass over the training data; regulariser after backward in the sparsification phase."""
        cfg = self.cfg
        self._seed_epoch()
        self.net.train()
        sparsify = self.phase == SPARSIFY and cfg["mode"] == "strucspars"
        lam = self.lam if sparsify else 0.0
        every = int(cfg["iter_rounds_every"]) if sparsify else 0
        # Accumulate on the device: a float()/int() per step would force a GPU sync every iteration.
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        seen = 0
        bar = tqdm(self.train_loader, desc=f"{self.phase} {self.phase_epoch + 1}", leave=False,
                   disable=not self._progress_enabled())
        for it, (x, y) in enumerate(bar):
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
                logits = self.net(x)
                loss = F.cross_entropy(logits, y)
            self.optimizer.zero_grad(set_to_none=True)
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
                self.scaler.unscale_(self.optimizer)
            else:
                loss.backward()
            if sparsify:
                self.sparsifier.regularize(lam)  # gradients are already all-reduced under DDP
            if self.scaler is not None:
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                self.optimizer.step()
            if self.sparsifier.masked:
                self.sparsifier.enforce_masks()
            n = len(y)
            loss_sum += loss.detach().double() * n
            correct += (logits.detach().argmax(1) == y).sum()
            seen += n
            if every and (it + 1) % every == 0:
                self.update_permutations(int(cfg["iter_rounds"]))
            if self._progress_enabled():
                bar.set_postfix(loss=f"{float(loss_sum) / seen:.3f}", acc=f"{int(correct) / seen:.3f}")
        self._sync_buffers()
        loss_sum, correct, seen = self._all_sum([float(loss_sum), int(correct), seen])
        return {"train_loss": loss_sum / max(seen, 1), "train_top1": correct / max(seen, 1)}

    @torch.no_grad()
    def evaluate(self, model: nn.Module | None = None) -> dict:
        """Top-1 / top-5 accuracy and loss on the test split (sharded over ranks, summed)."""
        model = self.model if model is None else model
        was = model.training
        model.eval()
        loss_sum, c1, c5, n = 0.0, 0, 0, 0
        for x, y in self.test_loader:
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
                logits = model(x)
            logits = logits.float()
            loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
            a1, a5 = _accuracy_counts(logits, y)
            c1, c5, n = c1 + a1, c5 + a5, n + len(y)
        model.train(was)
        loss_sum, c1, c5, n = self._all_sum([loss_sum, c1, c5, n])
        n = max(n, 1)
        return {"loss": loss_sum / n, "top1": c1 / n, "top5": c5 / n}

    # ------------------------------------------------------------------ phase 2: end of a sparsification epoch
    def end_sparsify_epoch(self) -> None:
        """10 P/Q rounds, ``update_groups(keep)``, then one controller step (SPEC §2-§4)."""
        if self.cfg["mode"] != "strucspars":
            return
        self.update_permutations(int(self.cfg["epoch_rounds"]))
        if self.is_main:
            self.sparsifier.update_groups(float(self.cfg["keep"]))
        self._sync_sparsifier()
        self.controller.step(self.sparsifier.sparsity())

    # ------------------------------------------------------------------ phase 3: reach the target and mask
    def to_finetune(self) -> None:
        """Evaluate the dense model, bisect ``keep`` to the target, mask, evaluate, new optimiser."""
        cfg = self.cfg
        self.extra["dense_eval"] = self.evaluate()
        if cfg["mode"] == "strucspars":
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                if self.is_main:
                    res = self.sparsifier.reach_target(float(cfg["target"]))
                    self.extra["reach_target"] = {"keep": res.keep, "sparsity": res.sparsity, "exact": res.exact}
                    self.extra["reach_target_warnings"] = [str(w.message) for w in caught]
            self._sync_sparsifier()
            if self.distributed:
                obj = [self.extra]
                dist.broadcast_object_list(obj, src=0)
                self.extra = obj[0]
            self.sparsifier.apply_masks()
            self.extra["masked_eval"] = self.evaluate()
        self.phase, self.phase_epoch = FINETUNE, 0
        self.optimizer, self.scheduler = self._make_optimizer(FINETUNE)
        self._record_norms(self.global_epoch, "masked")

    # ------------------------------------------------------------------ bookkeeping: metrics, norms, checkpoints
    def _current_lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def _record_norms(self, epoch: int, phase: str) -> None:
        if not self.is_main:
            return
        st = self.sparsifier.layers[self.track_layer]
        s = self.sparsifier.norm_matrices()[self.track_layer].astype(np.float32)
        h = self.norm_history
        h["norms"].append(s), h["row_perm"].append(st.row_perm.copy()), h["col_perm"].append(st.col_perm.copy())
        h["groups"].append(st.groups), h["epoch"].append(epoch), h["phase"].append(phase)
        self.out.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".layer_norms.", suffix=".npz", dir=self.out)
        with os.fdopen(fd, "wb") as f:
            np.savez(f, layer=np.array(self.track_layer), norms=np.stack(h["norms"]), row_perm=np.stack(h["row_perm"]),
                     col_perm=np.stack(h["col_perm"]), groups=np.array(h["groups"]), epoch=np.array(h["epoch"]),
                     phase=np.array(h["phase"]), decay=np.array(self.sparsifier.decay))
        os.replace(tmp, self.out / "layer_norms.npz")

    def _epoch_record(self, train_stats: dict, eval_stats: dict, lam_used: float, lr_used: float, seconds: float) -> dict:
        return {
            "phase": self.phase,
            "epoch": self.phase_epoch,           # 1-based within the phase (after completion)
            "global_epoch": self.global_epoch,   # 1-based over the run
            "loss": eval_stats["loss"],
            "top1": eval_stats["top1"],
            "top5": eval_stats["top5"],
            **train_stats,
            "lam": lam_used,
            "lam_next": self.lam if self.phase == SPARSIFY else 0.0,
            "keep": self.sparsifier.keep,
            "sparsity": self.sparsifier.sparsity() if self.cfg["mode"] == "strucspars" else 0.0,
            "groups": self.sparsifier.groups(),
            "lr": lr_used,
            "time": seconds,
            "wall": time.time(),
        }

    def _append_metrics(self, record: dict) -> None:
        if self.is_main:
            with open(self.out / "metrics.jsonl", "a") as f:
                f.write(json.dumps(_jsonable(record)) + "\n")
                f.flush()
                os.fsync(f.fileno())

    def checkpoint_path(self) -> Path:
        return self.out / "checkpoint.pt"

    def save_checkpoint(self) -> None:
        if not self.is_main:
            return
        state = {
            "format": 1,
            "config": self.cfg,
            "phase": self.phase,
            "phase_epoch": self.phase_epoch,
            "global_epoch": self.global_epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "sparsifier": self.sparsifier.state_dict(),
            "controller": self.controller.state_dict(),
            "extra": self.extra,
            "norm_history": self.norm_history,
            "rng": _rng_state(),
            "loader_generator": self.loader_generator.get_state(),
            "aug_generator": self.data.aug_generator.get_state() if self.data.aug_generator is not None else None,
        }
        atomic_save(state, self.checkpoint_path())

    def load_checkpoint(self, path: Path | None = None) -> None:
        path = path or self.checkpoint_path()
        state = torch.load(path, map_location=self.device, weights_only=False)
        saved, now = state["config"], self.cfg
        for key in ("model", "dataset", "mode", "target", "sparsify_epochs", "finetune_epochs", "seed"):
            if saved.get(key) != now.get(key):
                raise ValueError(f"cannot resume {path}: it was run with {key}={saved.get(key)!r}, now {now.get(key)!r}")
        self.model.load_state_dict(state["model"])
        self.phase, self.phase_epoch, self.global_epoch = state["phase"], state["phase_epoch"], state["global_epoch"]
        self.sparsifier.load_state_dict(state["sparsifier"])  # re-installs mask hooks when masked
        self.controller.load_state_dict(state["controller"])
        self.extra = state["extra"]
        self.norm_history = state["norm_history"]
        self.optimizer, self.scheduler = self._make_optimizer(SPARSIFY if self.phase == SPARSIFY else FINETUNE)
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and state["scaler"] is not None:
            self.scaler.load_state_dict(state["scaler"])
        _set_rng_state(state["rng"])
        self.loader_generator.set_state(state["loader_generator"])
        if self.data.aug_generator is not None and state["aug_generator"] is not None:
            self.data.aug_generator.set_state(state["aug_generator"])
        # Drop metric lines written after this checkpoint (a crash between the two writes).
        if self.is_main and (self.out / "metrics.jsonl").exists():
            kept = [r for r in load_metrics(self.out) if r.get("global_epoch", 0) <= self.global_epoch]
            _atomic_write_text(self.out / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in kept))

    def _after_epoch(self, record: dict) -> None:
        self._append_metrics(record)
        self.save_checkpoint()
        self._barrier()
        if self.is_main:
            print(f"[{record['phase']} {record['epoch']}] top1 {record['top1']:.4f} top5 {record['top5']:.4f} "
                  f"train_loss {record['train_loss']:.4f} lam {record['lam']:.3g} sparsity {record['sparsity']:.4f} "
                  f"lr {record['lr']:.3g} ({record['time']:.0f} s)", flush=True)
        self._epochs_this_call += 1
        for cb in self.callbacks:
            cb(self, record)
        stop = self.cfg["stop_after_epochs"]
        if stop is not None and self._epochs_this_call >= int(stop):
            raise StopTraining(f"stopped after {self._epochs_this_call} epoch(s) (--stop-after-epochs)")

    # ------------------------------------------------------------------ phase 5: export
    def export(self) -> dict:
        """Compress, check equivalence, count parameters / MACs, evaluate; write summary and model."""
        cfg = self.cfg
        input_size = self.data.input_size
        dense_ref = build_model(cfg["model"], num_classes=self.data.num_classes)
        before = count_params_macs(dense_ref, input_size)
        final_eval = self.evaluate()
        summary: dict[str, Any] = {
            "name": cfg["name"], "model": cfg["model"], "dataset": cfg["dataset"], "mode": cfg["mode"],
            "data": self.data.description, "epochs": {"sparsify": cfg["sparsify_epochs"], "finetune": cfg["finetune_epochs"]},
            "params_dense": before.params, "macs_dense": before.macs, "input_size": list(input_size),
            "world_size": self.world, "device": str(self.device),
        }
        if cfg["mode"] == "dense":
            summary.update({"top1": final_eval["top1"], "top5": final_eval["top5"],
                            "top1_after_phase1": self.extra.get("dense_eval", {}).get("top1"),
                            "params": before.params, "macs": before.macs})
            compressed = self.model
        else:
            cpu_model = copy.deepcopy(self.model).to("cpu", memory_format=torch.contiguous_format).float()
            helper = StructuredSparsifier(cpu_model, decay=self.sparsifier.decay, include=list(self.sparsifier.layers))
            helper.load_state_dict(self.sparsifier.state_dict())
            compressed = compress(helper)
            x = next(iter(DataLoader(self.data.test_set, batch_size=min(64, len(self.data.test_set)))))[0]
            diff = max_output_difference(cpu_model, compressed, x)
            with torch.no_grad():
                scale = float(cpu_model.eval()(x).abs().max())
            rel_diff = diff / max(scale, 1e-12)
            if diff >= EQUIVALENCE_TOL:
                warnings.warn(f"compressed model differs from the masked model by {diff:.3g} >= {EQUIVALENCE_TOL}",
                              RuntimeWarning, stacklevel=2)
            after = count_params_macs(compressed, input_size)
            masked_zero = all(bool((m.weight[self.sparsifier.mask(n).expand_as(m.weight) == 0] == 0).all())
                              for n, m in self.sparsifier.modules.items() if self.sparsifier.layers[n].groups > 1)
            comp_eval = self.evaluate(compressed.to(self.device))
            summary.update({
                "target": cfg["target"], "sparsity": self.sparsifier.sparsity(), "keep": self.sparsifier.keep,
                "reach_target": self.extra.get("reach_target"),
                "top1_dense_before_masking": self.extra["dense_eval"]["top1"],
                "top5_dense_before_masking": self.extra["dense_eval"]["top5"],
                "top1_masked_before_finetune": self.extra["masked_eval"]["top1"],
                "top1_finetuned": final_eval["top1"], "top5_finetuned": final_eval["top5"],
                "top1_compressed": comp_eval["top1"], "top5_compressed": comp_eval["top5"],
                "top1": comp_eval["top1"], "top5": comp_eval["top5"],
                "params": after.params, "macs": after.macs,
                "params_ratio": after.params / before.params, "macs_ratio": after.macs / before.macs,
                "equivalence_max_diff": diff, "equivalence_ok": diff < EQUIVALENCE_TOL,
                "equivalence_rel_diff": rel_diff,  # diff / max |output|: float rounding if a model diverged
                "masked_weights_exactly_zero": masked_zero,
                "groups": self.sparsifier.groups(), "layers": self.sparsifier.summary(),
                "lambda_history": self.controller.history,
            })
            compressed = compressed.cpu()
        if self.is_main:
            atomic_save({"model": cfg["model"], "num_classes": self.data.num_classes, "mode": cfg["mode"],
                         "sparsifier": self.sparsifier.state_dict() if cfg["mode"] == "strucspars" else None,
                         "state_dict": {k: v.cpu() for k, v in compressed.state_dict().items()}},
                        self.out / "compressed_model.pt")
            _atomic_write_text(self.out / "summary.json", json.dumps(_jsonable(summary), indent=2) + "\n")
        return summary

    # ------------------------------------------------------------------ the whole run
    def _run_phase_epoch(self) -> None:
        t0 = time.time()
        lam_used, lr_used = (self.lam if self.phase == SPARSIFY else 0.0), self._current_lr()
        train_stats = self.train_epoch()
        if self.phase == SPARSIFY:
            self.end_sparsify_epoch()
        elif self.scheduler is not None:
            self.scheduler.step()
        self.phase_epoch += 1
        self.global_epoch += 1
        eval_stats = self.evaluate()
        self._record_norms(self.global_epoch, self.phase)
        self._after_epoch(self._epoch_record(train_stats, eval_stats, lam_used, lr_used, time.time() - t0))

    def run(self) -> dict | None:
        """Run (or resume) to the end; returns the summary, or ``None`` if stopped early."""
        cfg = self.cfg
        if self.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
        self._barrier()
        resumed = False
        if cfg["resume"] and self.checkpoint_path().exists():
            self.load_checkpoint()
            resumed = True
        elif self.is_main:
            if (self.out / "metrics.jsonl").exists():
                (self.out / "metrics.jsonl").unlink()
        if self.is_main:
            _atomic_write_text(self.out / "config.json", json.dumps(_jsonable(cfg), indent=2) + "\n")
        try:
            if not resumed:
                self.initial_permutations()
            while self.phase == SPARSIFY and self.phase_epoch < int(cfg["sparsify_epochs"]):
                self._run_phase_epoch()
            if self.phase == SPARSIFY:
                self.to_finetune()
            while self.phase == FINETUNE and self.phase_epoch < int(cfg["finetune_epochs"]):
                self._run_phase_epoch()
        except StopTraining as stop:
            if self.is_main:
                print(f"{stop}; resume with --resume", flush=True)
            return None
        summary = self.export()
        self._barrier()
        return summary


def run_training(cfg: dict, callbacks: list[Callable] | None = None) -> tuple[Trainer, dict | None]:
    """Build a :class:`Trainer` for a resolved config and run it; returns ``(trainer, summary)``."""
    trainer = Trainer(cfg, callbacks)
    return trainer, trainer.run()


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------

_HELP = {
    "name": "run name (default <model>_<dataset>_<mode>_<target>)",
    "out": "output folder (default runs/<name>)",
    "model": f"registered model: {', '.join(list_models())}",
    "dataset": "cifar10 | cifar100 | imagenet (an ImageFolder root with train/ and val/)",
    "data_root": "dataset folder (CIFAR: default $STRUCSPARS_DATA, ./data, bundled sample)",
    "mode": "strucspars (Algorithm 1) or dense (same schedule, no sparsification: the baseline)",
    "target": "target model sparsity in [0, 1)",
    "keep": "fraction p of L1 mass the grouping criterion keeps during sparsification",
    "decay": "damping of finer hierarchy levels in the penalty",
    "warmup_epochs": "epochs with lam = 0 at the start of the sparsification phase (CIFAR 10, ImageNet 5)",
    "sparsify_epochs": "sparsification epochs incl. warm-up (CIFAR 100, ImageNet 60)",
    "finetune_epochs": "finetuning epochs (CIFAR 160, ImageNet 120)",
    "lr": "constant learning rate of the sparsification phase",
    "finetune_lr": "initial finetuning learning rate",
    "weight_decay": "finetuning weight decay",
    "sparsify_weight_decay": "sparsification-phase weight decay (paper: 0)",
    "lr_schedule": "finetuning schedule: step (x0.1 at 50%%/75%%), cosine (with --lr-warmup-epochs), constant",
    "lam0": "lam when the warm-up ends",
    "dlam": "controller step of lam (default lam0)",
    "initial_rounds": "P/Q rounds before training",
    "epoch_rounds": "P/Q rounds after every sparsification epoch",
    "iter_rounds_every": "also run --iter-rounds P/Q rounds every this many iterations (ImageNet 500; 0 = off)",
    "train_subset": "use a class-balanced subset of this many training images",
    "test_subset": "use a subset of this many test images",
    "deterministic": "torch.use_deterministic_algorithms(True): resumed runs equal uninterrupted ones",
    "threads": "torch.set_num_threads",
    "amp": "autocast dtype on CUDA (fp16 adds a GradScaler)",
    "channels_last": "channels-last memory format (auto = on CUDA only)",
    "track_layer": "layer whose norm matrix S is saved per epoch in layer_norms.npz",
    "pq_init": "first P/Q call: best of identity and spectral starts (default) or a single start (identity = the paper)",
    "resume": "continue from <out>/checkpoint.pt",
    "stop_after_epochs": "stop after this many epochs (checkpoint written; for testing resume)",
    "quick": "tiny balanced subset, 1-2 epochs per phase (also $STRUCSPARS_QUICK=1)",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags for every option in :data:`DEFAULTS`; unset flags do not override the config file."""
    parser.add_argument("--config", help="YAML file of options (flags override it)")
    for key, default in DEFAULTS.items():
        flag = "--" + key.replace("_", "-")
        help_text = _HELP.get(key, "") + (f" [default: {default}]" if default not in (None, False) else "")
        if key in _CHOICES:
            parser.add_argument(flag, choices=_CHOICES[key], default=argparse.SUPPRESS, help=help_text)
        elif isinstance(default, bool):
            if key == "progress":
                parser.add_argument("--no-progress", dest="progress", action="store_false", default=argparse.SUPPRESS,
                                    help="disable progress bars")
            else:
                parser.add_argument(flag, action="store_true", default=argparse.SUPPRESS, help=help_text)
        else:
            typ = {int: int, float: float}.get(type(default), str)
            if key in ("warmup_epochs", "sparsify_epochs", "finetune_epochs", "batch_size", "lr_warmup_epochs",
                       "iter_rounds_every", "train_subset", "test_subset", "threads", "stop_after_epochs"):
                typ = int
            elif key in ("dlam",):
                typ = float
            parser.add_argument(flag, type=typ, default=argparse.SUPPRESS, help=help_text)


def main(args: argparse.Namespace) -> int:
    opts = {k: v for k, v in vars(args).items() if not k.startswith("_") and k not in ("command", "config")}
    try:
        cfg = resolve_config(opts, getattr(args, "config", None))
        trainer, summary = run_training(cfg)
    except (ValueError, FileNotFoundError) as err:
        print(f"strucspars-viz train: error: {err}", file=sys.stderr)
        return 2
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    if summary is not None and trainer.is_main:
        keys = ("top1", "params", "macs", "sparsity", "equivalence_max_diff")
        print(json.dumps({k: summary.get(k) for k in keys}))
        print(f"wrote {cfg['out']}")
    return 0


# Aliases for the CLI's wiring convention.
add_train_arguments = add_arguments
train_main = main
