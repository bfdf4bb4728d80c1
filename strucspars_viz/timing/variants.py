"""The variants timed out of the box, built with random weights (timing does not need training).

``<model>:<kind>`` with kind
- ``dense``: the registered model;
- ``ss35`` / ``ss65`` / ``ss85`` (any ``ssNN``): StrucSpars at NN % sparsity: ``StructuredSparsifier``,
  a few P/Q rounds, ``reach_target``, ``apply_masks``, ``compress(fold=True)``;
- ``tpNN``: Torch-Pruning magnitude (L1) channel pruning whose MACs match ``ssNN`` within 2 %;
- ``shuffleNN``: ``ssNN``'s group counts with the fixed ShuffleNet shuffle ``P = Q`` (SPEC §7),
  whose remaining gathers are one reshape-transpose (``nn.ChannelShuffle``) each.
"""
from __future__ import annotations

import copy
import re
import warnings
from functools import lru_cache

import numpy as np
import torch
from torch import nn

from ..counting import count_params_macs
from ..export import ChannelPermute, compress
from ..models import build_model, model_entry
from ..permutation import shufflenet_permutation
from ..sparsifier import StructuredSparsifier
from .harness import Variant

__all__ = ["DEFAULT_KINDS", "QUICK_KINDS", "build_variant", "build_variants", "learned_sparsifier", "parse_kind", "prune_to_macs",
           "shuffle_modules", "strucspars_model"]

DEFAULT_KINDS = ("dense", "ss35", "ss65", "ss85", "tp65", "shuffle65")
QUICK_KINDS = ("dense", "ss65", "tp65", "shuffle65")
_KIND = re.compile(r"^(dense|ss|tp|shuffle)(\d{1,2})?$")


def parse_kind(kind: str) -> tuple[str, float | None]:
    """``"ss65" -> ("ss", 0.65)``, ``"dense" -> ("dense", None)``; ValueError otherwise."""
    m = _KIND.match(kind)
    if not m or (m.group(1) == "dense") != (m.group(2) is None):
        raise ValueError(f"unknown variant kind {kind!r}: use dense, ssNN, tpNN or shuffleNN (NN = target %, e.g. ss65)")
    return m.group(1), (int(m.group(2)) / 100 if m.group(2) else None)


def _dense(model_name: str, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    entry = model_entry(model_name)
    model = build_model(model_name, num_classes=10 if entry.dataset == "cifar" else 1000)
    return model.eval()


@lru_cache(maxsize=4)
def _learned_state(model_name: str, seed: int, iters: int) -> tuple[dict, dict]:
    """Random weights and learned P, Q (shared by every target of one model)."""
    model = _dense(model_name, seed)
    sp = StructuredSparsifier(model)
    sp.update_permutations(iters=iters)
    return copy.deepcopy(model.state_dict()), sp.state_dict()


def learned_sparsifier(model_name: str, *, seed: int = 0, iters: int = 2) -> StructuredSparsifier:
    """A fresh random-weight model's sparsifier with learned P, Q, every ``G = 1`` (cached per model)."""
    weights, state = _learned_state(model_name, seed, iters)
    model = _dense(model_name, seed)
    model.load_state_dict(weights)
    sp = StructuredSparsifier(model, include=list(state["layers"]))
    sp.load_state_dict(state)
    return sp


def _sparsifier_state(model_name: str, target: float, seed: int, iters: int) -> tuple[dict, dict]:
    sp = learned_sparsifier(model_name, seed=seed, iters=iters)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "promoted layers singly": fine for timing
        sp.reach_target(target)
    return _learned_state(model_name, seed, iters)[0], sp.state_dict()


def strucspars_model(model_name: str, target: float, *, seed: int = 0, iters: int = 2,
                     shuffle: str = "learned") -> tuple[nn.Module, StructuredSparsifier]:
    """(compressed model, masked sparsifier) at ``target`` sparsity; ``shuffle="shufflenet"`` replaces
    the learned P, Q by the ShuffleNet shuffle for each layer's G (same group counts)."""
    weights, state = _sparsifier_state(model_name, target, seed, iters)
    model = _dense(model_name, seed)
    model.load_state_dict(weights)
    sp = StructuredSparsifier(model, include=list(state["layers"]))
    sp.load_state_dict({**state, "masked": False})
    if shuffle == "shufflenet":
        sp.set_permutations({n: (shufflenet_permutation(st.cout, st.groups), shufflenet_permutation(st.cin, st.groups))
                             for n, st in sp.layers.items() if st.groups > 1})
    elif shuffle != "learned":
        raise ValueError(f"shuffle must be 'learned' or 'shufflenet', got {shuffle!r}")
    sp.apply_masks()
    return compress(sp, fold=True), sp


def _shuffle_groups(index: np.ndarray) -> int | None:
    c = len(index)
    for g in range(2, c):
        if c % g == 0 and np.array_equal(index, shufflenet_permutation(c, g)):
            return g
    return None


def shuffle_modules(model: nn.Module) -> int:
    """Replace every gather whose index is a ShuffleNet shuffle by ``nn.ChannelShuffle`` (in place:
    ``x[:, shuffle(C, g)] == channel_shuffle(x, g)``); returns how many were replaced."""
    n = 0
    for name, mod in list(model.named_modules()):
        if isinstance(mod, ChannelPermute):
            g = _shuffle_groups(mod.index.cpu().numpy())
            if g is not None:
                parent, _, child = name.rpartition(".")
                setattr(model.get_submodule(parent) if parent else model, child, nn.ChannelShuffle(g))
                n += 1
    return n


def prune_to_macs(model: nn.Module, input_size, target_macs: int, *, tol: float = 0.02,
                  max_steps: int = 25) -> nn.Module:
    """Torch-Pruning L1-magnitude channel pruning, bisecting its ratio until MACs are within ``tol``
    (relative) of ``target_macs`` (MACs by :func:`count_params_macs`). The classifier is kept."""
    import torch_pruning as tp

    size = (1, *input_size)
    example = torch.zeros(size)
    best: tuple[float, nn.Module] | None = None
    # uniform per-layer ratios first (the usual Torch-Pruning recipe); where channel counts are too
    # coarse to land within tol (CIFAR ResNet-20's 16-channel layers), global ranking, which moves
    # MACs in finer steps
    for global_pruning in (False, True):
        lo, hi = 0.0, 0.95
        for _ in range(max_steps):
            ratio = (lo + hi) / 2
            m = copy.deepcopy(model).eval()
            classifier = [mod for mod in m.modules() if isinstance(mod, nn.Linear)][-1:]
            pruner = tp.pruner.MagnitudePruner(m, example, importance=tp.importance.MagnitudeImportance(p=1),
                                               pruning_ratio=ratio, ignored_layers=classifier,
                                               global_pruning=global_pruning)
            pruner.step()
            macs = count_params_macs(m, size).macs
            err = (macs - target_macs) / target_macs
            if best is None or abs(err) < abs(best[0]):
                best = (err, m)
            if abs(err) <= tol:
                return m
            lo, hi = (ratio, hi) if macs > target_macs else (lo, ratio)
    raise ValueError(f"Torch-Pruning could not reach {target_macs / 1e6:.1f} M MACs within {tol:.0%}; "
                     f"closest was {best[0]:+.1%}")


def build_variant(model_name: str, kind: str, *, seed: int = 0, iters: int = 2) -> Variant:
    family, target = parse_kind(kind)
    entry = model_entry(model_name)
    size = entry.input_size
    if family == "dense":
        model = _dense(model_name, seed)
    elif family == "ss":
        model, _ = strucspars_model(model_name, target, seed=seed, iters=iters)
    elif family == "shuffle":
        model, _ = strucspars_model(model_name, target, seed=seed, iters=iters, shuffle="shufflenet")
        shuffle_modules(model)
    else:
        ss, _ = strucspars_model(model_name, target, seed=seed, iters=iters)
        model = prune_to_macs(_dense(model_name, seed), size, count_params_macs(ss, (1, *size)).macs)
    cost = count_params_macs(model, (1, *size))
    names = {"dense": "dense", "ss": "strucspars", "tp": "torchpruning", "shuffle": "shufflenet"}
    return Variant(name=f"{model_name}:{kind}", model=model.eval(), input_size=size, family=names[family],
                   base=model_name, target=target, reference=None if family == "dense" else f"{model_name}:dense",
                   params=cost.params, macs=cost.macs)


def build_variants(specs, *, seed: int = 0, iters: int = 2, kinds=DEFAULT_KINDS) -> list[Variant]:
    """Variants from specs ``"resnet56"`` (all ``kinds``) or ``"resnet56:ss65"``; a dense reference
    is added for every model that has compressed variants."""
    wanted: list[tuple[str, str]] = []
    for spec in specs:
        model_name, _, kind = spec.partition(":")
        model_entry(model_name)  # ValueError naming the registered models
        for k in ([kind] if kind else kinds):
            parse_kind(k)
            if (model_name, k) not in wanted:
                wanted.append((model_name, k))
    for model_name in {m for m, _ in wanted}:
        if (model_name, "dense") not in wanted:
            wanted.insert(0, (model_name, "dense"))
    return [build_variant(m, k, seed=seed, iters=iters) for m, k in wanted]
