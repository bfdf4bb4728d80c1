"""The five ablation arms of SPEC §7 and one of ours, each a start payload made from one ``sparsified.pt``.

All arms keep the sparsification run's per-layer ``G``; they differ in the weights and in ``P, Q``:

==============  ======================  ==========================================================
arm             weights                 ``P, Q``
==============  ======================  ==========================================================
finetune        trained (kept)          learned
fromscratch     re-initialised          learned
shufflenet      re-initialised          ``arange(C).reshape(G, C // G).T.flatten()`` for that layer's ``G``
random          re-initialised          uniformly random (seeded per arm seed and layer)
noshuffle       re-initialised          identities
channelshuffle  re-initialised          ``P`` identity, ``Q`` the shuffle above (ours, see below)
==============  ======================  ==========================================================

The first five are SPEC §7's (``--arms all``). With ``P = Q`` the SHUFFLENET arm aligns the groups of
consecutive equal convs exactly as NOSHUFFLE does (conv ``l``'s output blocks, in its row order, are conv
``l+1``'s input blocks in its column order), so it never moves a channel across groups. ``channelshuffle``
(ours, asked for by name) is ShuffleNet's channel shuffle *between* consecutive group convs: outputs stay
in natural order and every conv reads its inputs through the shuffle, so each of its groups takes
channels from every group of the conv before.

Re-initialisation: convs Kaiming normal (``fan_out``, ReLU gain: ``std = sqrt(2 / (Cout kh kw))``),
bias 0; BatchNorm ``gamma = 1``, ``beta = 0``, running statistics reset; linear layers PyTorch's
default. Masks ``U_G[P_inv][:, Q_inv]`` are then recomputed by the sparsifier from the new ``P, Q``
(inverses derived on every use, never stored: SPEC §9's SHUFFLENET defect cannot recur) and applied.
"""
from __future__ import annotations

import copy
from typing import Mapping

import numpy as np
import torch
from torch import nn

from ..models import build_model
from ..permutation import fixed_shuffle
from ..sparsifier import StructuredSparsifier
from ..training.artifacts import Weights, weights_payload

__all__ = ["ARMS", "SPEC_ARMS", "ARM_SHUFFLE", "arm_permutations", "build_arm", "reinitialise_", "arm_payload"]

SPEC_ARMS = ("finetune", "fromscratch", "shufflenet", "random", "noshuffle")
ARMS = SPEC_ARMS + ("channelshuffle",)
#: arm -> which shuffle of permutation.SHUFFLES it uses (channelshuffle: only Q, see the module docstring)
ARM_SHUFFLE = {"finetune": "learned", "fromscratch": "learned", "shufflenet": "shufflenet",
               "random": "random", "noshuffle": "none", "channelshuffle": "shufflenet"}


def reinitialise_(model: nn.Module, seed: int) -> nn.Module:
    """Fresh weights (see the module docstring), drawn from ``seed`` without touching the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                m.reset_parameters()  # gamma 1, beta 0, running mean 0 / var 1, batch count 0
            elif isinstance(m, nn.Linear):
                m.reset_parameters()
    return model


def arm_permutations(arm: str, sparsifier: StructuredSparsifier, seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{layer: (P, Q)}`` that arm ``arm`` installs (empty for the learned-shuffle arms)."""
    kind = ARM_SHUFFLE[_check_arm(arm)]
    if kind == "learned":
        return {}
    out = {}
    for i, (name, st) in enumerate(sparsifier.layers.items()):
        # random: distinct streams per layer and per arm seed (P from s, Q from s + 1)
        p, q = fixed_shuffle(kind, st.cout, st.cin, st.groups, seed=seed * 100_003 + 2 * i)
        out[name] = (np.arange(st.cout, dtype=np.int64), q) if arm == "channelshuffle" else (p, q)
    return out


def _check_arm(arm: str) -> str:
    if arm not in ARMS:
        raise ValueError(f"unknown ablation arm {arm!r}; allowed: {', '.join(ARMS)}")
    return arm


def build_arm(start: Weights, arm: str, seed: int) -> tuple[nn.Module, StructuredSparsifier]:
    """The masked model and sparsifier of ``arm`` from a ``sparsified.pt`` (:class:`Weights`)."""
    _check_arm(arm)
    if start.sparsifier is None or start.model is None:
        raise ValueError(f"{start.source}: not a StrucSpars sparsification state (no sparsifier state or model "
                         "name); pass the run folder of a `strucspars-viz train --mode strucspars` run")
    model = build_model(start.model, num_classes=start.num_classes)
    model.load_state_dict(start.state_dict)
    state = copy.deepcopy(dict(start.sparsifier))
    state["masked"] = False  # masks are re-derived below, after weights and P, Q are final
    sp = StructuredSparsifier(model, decay=float(state.get("decay", 0.5)), keep=float(state.get("keep", 0.9)))
    sp.load_state_dict(state)
    if arm != "finetune":
        reinitialise_(model, seed)
        perms = arm_permutations(arm, sp, seed)
        if perms:
            sp.set_permutations(perms)
    sp.apply_masks()
    return model, sp


def arm_payload(start: Weights, arm: str, seed: int, config: Mapping | None = None) -> dict:
    """The ``sparsified.pt``-format payload a finetune-only run (``start_from``) of ``arm`` starts from."""
    model, sp = build_arm(start, arm, seed)
    return weights_payload(start.model, start.num_classes, model.state_dict(), mode="strucspars",
                           config=config if config is not None else start.config, sparsifier=sp.state_dict())
