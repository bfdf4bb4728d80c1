"""Baselines at matched cost (issue 10): structured pruning through Torch-Pruning, dense, narrow.

* ``slimming`` -- Network Slimming: a training phase with L1 on the BN scales (the trainer's
  ``bn_l1``), then Torch-Pruning's ``BNScalePruner`` with ``BNScaleImportance`` (channels of small
  ``|gamma|`` go), ranked globally over all layers as in Liu et al. 2017;
* ``taylor`` -- ``TaylorImportance`` (first-order ``|w * dL/dw|`` on a few training batches), ranked
  globally as in Molchanov et al. 2019;
* ``magnitude`` -- ``MagnitudeImportance(p=2)`` (L2 norm of a channel's weights), the same ratio in
  every layer (so its shapes are the narrow model's, but its weights come from the trained model);
* ``dense`` -- the unpruned model, re-initialised (trained with the re-initialised arms' budget);
* ``narrow`` -- the same network with every width scaled uniformly (``CifarResNet(depth, width=w)``),
  re-initialised, ``w`` the closest to the parameter target;
* ``igcv2``, ``ssc``, ``shufflenet_units`` -- the related designs of SPEC §10 (issue 9): the
  ResNet-20 skeleton built from IGC-V2 blocks, our structured-sparse-conv pattern, or ShuffleNet units
  (:mod:`strucspars_viz.models.designs`), at the registered width, which must land within
  :data:`DESIGN_TOL` of the target; re-initialised and trained as ``narrow``.

Each pruned baseline is brought to the StrucSpars model's parameter count ``N*`` (the compressed
model of ``sparsified.pt``, :func:`target_params`) by bisecting Torch-Pruning's ``pruning_ratio``
(per layer, or over all channels under global ranking; the classifier is never pruned); a count
outside ``N* (1 +- 2 %)`` is a ValueError naming the closest count reached.
"""
from __future__ import annotations

import copy
from typing import Callable, Iterable

import torch
from torch import nn

from ..counting import count_params_macs
from ..export import compress
from ..models import build_model
from ..models.cifar_resnet import CifarResNet
from ..training.artifacts import Weights

__all__ = ["BASELINES", "PRUNERS", "DESIGNS", "GLOBAL", "PARAM_TOL", "NARROW_TOL", "DESIGN_TOL", "target_params",
           "prune_to_params", "narrow_model", "design_model", "torch_pruning_version"]

PRUNERS = ("slimming", "taylor", "magnitude")
#: baseline name -> the registered design network (models/designs.py) it trains
DESIGNS = {"igcv2": "igcv2_resnet20", "ssc": "ssc_resnet20", "shufflenet_units": "shufflenet_resnet20"}
BASELINES = PRUNERS + ("dense", "narrow") + tuple(DESIGNS)
GLOBAL = ("slimming", "taylor")
#: under global ranking no layer loses more than this share of its channels (none is cut to nothing)
MAX_LAYER_RATIO = 0.9
PARAM_TOL = 0.02
#: a uniform width moves the count in steps of ~2/w (about 15-25 % at CIFAR widths)
NARROW_TOL = 0.15
#: issue 9: the related designs are compared at the StrucSpars model's parameter count within 5 %
DESIGN_TOL = 0.05


def torch_pruning_version() -> str:
    import torch_pruning as tp

    return str(tp.__version__)


def count_params(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def target_params(start: Weights) -> int:
    """``N*``: parameters of the compressed StrucSpars model (grouped convs) of a ``sparsified.pt``."""
    if start.sparsifier is None or start.model is None:
        raise ValueError(f"{start.source}: no sparsifier state; the parameter target comes from a StrucSpars run")
    model = build_model(start.model, num_classes=start.num_classes)
    model.load_state_dict(start.state_dict)
    return count_params(compress(model, dict(start.sparsifier)))


def _importance(method: str):
    import torch_pruning as tp

    if method == "slimming":
        return tp.importance.BNScaleImportance()
    if method == "taylor":
        return tp.importance.TaylorImportance()
    if method == "magnitude":
        return tp.importance.MagnitudeImportance(p=2)
    raise ValueError(f"unknown pruning baseline {method!r}; allowed: {', '.join(PRUNERS)}")


def _gradients(model: nn.Module, grad_fn: Callable[[nn.Module], None]) -> dict[str, torch.Tensor]:
    """``dL/dw`` of every parameter, by ``grad_fn`` on a copy (once; Taylor importance reads ``.grad``)."""
    m = copy.deepcopy(model)
    m.zero_grad(set_to_none=True)
    grad_fn(m)
    return {n: p.grad.detach().clone() for n, p in m.named_parameters() if p.grad is not None}


def _prune_once(model: nn.Module, example: torch.Tensor, method: str, ratio: float,
                grads: dict[str, torch.Tensor] | None) -> nn.Module:
    import torch_pruning as tp

    m = copy.deepcopy(model)
    m.eval()
    ignored = [mod for mod in m.modules() if isinstance(mod, nn.Linear)]
    # Slimming and Taylor rank channels across all layers, as their papers do (one global threshold:
    # the widths follow the importances); magnitude keeps one ratio per layer (uniform widths, as in
    # Li et al.'s filter pruning), so it yields the narrow baseline's shapes with trained weights.
    glob = method in GLOBAL
    kwargs = dict(importance=_importance(method), pruning_ratio=ratio, ignored_layers=ignored, global_pruning=glob,
                  max_pruning_ratio=MAX_LAYER_RATIO if glob else 1.0)
    pruner_cls = tp.pruner.BNScalePruner if method == "slimming" else tp.pruner.MetaPruner
    pruner = pruner_cls(m, example, **kwargs)
    if grads is not None:
        for n, p in m.named_parameters():
            p.grad = grads[n].clone() if n in grads else None
    pruner.step()
    m.zero_grad(set_to_none=True)
    return m


def prune_to_params(model: nn.Module, example: torch.Tensor, method: str, target: int, *,
                    grad_fn: Callable[[nn.Module], None] | None = None, tol: float = PARAM_TOL,
                    iters: int = 14) -> tuple[nn.Module, dict]:
    """A pruned copy of ``model`` with ``|params / target - 1| <= tol`` (bisection on the ratio).

    Returns the pruned model and ``{"ratio", "params", "target", "rel_diff"}``; ValueError if the
    closest count is outside the window (e.g. a target above the model or below what pruning leaves).
    """
    if method not in PRUNERS:
        raise ValueError(f"unknown pruning baseline {method!r}; allowed: {', '.join(PRUNERS)}")
    dense = count_params(model)
    if target >= dense * (1 + tol) or target <= 0:
        raise ValueError(f"{method}: parameter target {target:,} cannot be matched by pruning a model of "
                         f"{dense:,} parameters")
    grads = None
    if method == "taylor":
        if grad_fn is None:
            raise ValueError("taylor pruning needs gradients: pass grad_fn (loss.backward on training batches)")
        grads = _gradients(model, grad_fn)
    lo, hi = 0.0, 0.95
    best: tuple[float, nn.Module, float] | None = None
    for _ in range(iters):
        ratio = (lo + hi) / 2
        pruned = _prune_once(model, example, method, ratio, grads)
        n = count_params(pruned)
        rel = n / target - 1
        if best is None or abs(rel) < abs(best[2]):
            best = (ratio, pruned, rel)
        if abs(rel) <= tol / 2:
            break
        lo, hi = (ratio, hi) if n > target else (lo, ratio)
    ratio, pruned, rel = best
    n = count_params(pruned)
    if abs(rel) > tol:
        raise ValueError(f"{method}: cannot match the parameter target {target:,} within {tol:.0%}: the closest "
                         f"pruned model has {n:,} parameters ({rel:+.1%}, pruning ratio {ratio:.3f})")
    return pruned, {"ratio": ratio, "params": n, "target": int(target), "rel_diff": rel}


def narrow_model(model_name: str, num_classes: int, target: int, *, widths: Iterable[int] = range(2, 65),
                 tol: float = NARROW_TOL) -> tuple[nn.Module, dict]:
    """The uniformly narrower CIFAR ResNet (``width`` = stem width, stages ``w, 2w, 4w``) closest to ``target``."""
    ref = build_model(model_name, num_classes=num_classes)
    if not isinstance(ref, CifarResNet):
        raise ValueError(f"narrow baseline: {model_name!r} is not a CIFAR ResNet (the narrow model scales "
                         "CifarResNet's width); use the pruning baselines for this model")
    depth = 2 + 6 * len(ref.layer1)
    cands = [(abs(count_params(CifarResNet(depth, num_classes, width=w)) / target - 1), w) for w in widths]
    rel, width = min(cands)
    if rel > tol:
        raise ValueError(f"narrow baseline: no width of {model_name} lands within {tol:.0%} of {target:,} "
                         f"parameters (closest: width {width}, {rel:+.1%})")
    model = CifarResNet(depth, num_classes, width=width)
    n = count_params(model)
    return model, {"width": width, "params": n, "target": int(target), "rel_diff": n / target - 1}


def design_model(design: str, model_name: str, num_classes: int, target: int, *,
                 tol: float = DESIGN_TOL) -> tuple[nn.Module, dict]:
    """The registered design network of baseline ``design`` (:data:`DESIGNS`), checked against ``target``.

    The trainer rebuilds a network from its registered name, so only the registered width can be
    trained: it must be the width :func:`~strucspars_viz.models.designs.matched_width` picks for
    ``target`` (within ``tol``), else a ValueError says which width the target needs.
    """
    from ..models.designs import DEFAULT_WIDTHS, TARGET_PARAMS, matched_width

    name = DESIGNS[design]
    if model_name != "resnet20":
        raise ValueError(f"{design} baseline: the design networks share the CIFAR ResNet-20 skeleton; this sweep's "
                         f"model is {model_name!r} (allowed: resnet20)")
    try:
        match = matched_width(name, target, num_classes, tol=tol)
    except ValueError as err:
        raise ValueError(f"{design} baseline: {err}") from None
    if match.width != DEFAULT_WIDTHS[name]:
        raise ValueError(f"{design} baseline: {target:,} parameters need {name} at width {match.width}, but it is "
                         f"registered at width {DEFAULT_WIDTHS[name]} (matched to {TARGET_PARAMS:,}); the trainer "
                         "builds registered networks only")
    model = build_model(name, num_classes=num_classes)
    return model, {"design": name, "width": match.width, "params": match.params, "target": int(target),
                   "rel_diff": match.rel_error}


def cost(model: nn.Module, input_size) -> dict:
    c = count_params_macs(model, input_size)
    return {"params": c.params, "macs": c.macs}
