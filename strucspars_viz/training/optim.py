"""Optimisers and learning-rate schedules of the two phases (SPEC §4-§5).

* sparsification: SGD, momentum, ``sparsify_weight_decay`` (paper: 0), constant ``lr``;
* finetuning: SGD, momentum, ``weight_decay``, ``finetune_lr`` with the ``lr_schedule``:
  ``step`` (x0.1 after 50 % and 75 % of the epochs), ``cosine`` (linear warm-up over
  ``lr_warmup_epochs``, then ``0.5 (1 + cos(pi t / T))``) or ``constant``.
"""
from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["make_optimizer"]


def make_optimizer(model: nn.Module, cfg, phase: str):
    """``(optimizer, scheduler or None)`` of ``phase`` ("sparsify" or "finetune") for ``cfg``."""
    if phase == "sparsify":
        opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                              weight_decay=cfg.sparsify_weight_decay)
        return opt, None
    opt = torch.optim.SGD(model.parameters(), lr=cfg.finetune_lr, momentum=cfg.momentum,
                          weight_decay=cfg.weight_decay)
    epochs = max(cfg.finetune_epochs, 1)
    if cfg.lr_schedule == "step":
        milestones = sorted({max(1, int(round(0.5 * epochs))), max(1, int(round(0.75 * epochs)))})
        return opt, torch.optim.lr_scheduler.MultiStepLR(opt, milestones=milestones, gamma=0.1)
    if cfg.lr_schedule == "cosine":
        warm = cfg.lr_warmup_epochs or 0

        def factor(e: int) -> float:
            if e < warm:
                return (e + 1) / (warm + 1)
            return 0.5 * (1 + math.cos(math.pi * (e - warm) / max(epochs - warm, 1)))

        return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)
    return opt, None
