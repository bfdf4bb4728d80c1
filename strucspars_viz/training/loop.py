"""THE training step and evaluation pass: used by the trainer, the demo, notebook 03 and the
regulariser-overhead benchmark, so that every number comes from the same code.

One step (SPEC §4)::

    loss = cross_entropy(model(x), y)
    optimizer.zero_grad(); loss.backward()
    after_backward(step)        # sparsification: sparsifier.regularize(lam), grad += lam sign(W) R_g[P^-1][:, Q^-1]
    optimizer.step()
    after_step(step)            # finetuning: sparsifier.enforce_masks(); ImageNet: P/Q rounds every N steps

Loss and accuracy are accumulated on the device and read once per epoch: a ``float()`` per step
would force a GPU synchronisation every iteration.

Non-finite loss: on CPU it is checked at every step (``torch.isfinite`` costs nothing there). On
CUDA reading it back is a synchronisation, so the index of the first non-finite step is tracked on
the device (``torch.where``, no sync) and read every :data:`CUDA_CHECK_EVERY` steps and at the end of
the epoch; the error then still names the exact iteration (the few steps in between do not matter:
the run stops and the last good checkpoint is the previous epoch's).
"""
from __future__ import annotations

import sys
from typing import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..errors import NonFiniteLossError

__all__ = ["CUDA_CHECK_EVERY", "evaluate", "train_one_epoch"]

#: on CUDA, the non-finite-loss flag is read back every this many steps (one sync per window)
CUDA_CHECK_EVERY = 50

Hook = Callable[[int], None]
Reduce = Callable[[list[float]], list[float]]


def _prepare(x: torch.Tensor, y: torch.Tensor, device: torch.device, channels_last: bool):
    x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, y


def _raise_non_finite(epoch, step: int, n_steps: int, optimizer) -> None:
    lr = optimizer.param_groups[0].get("lr") if optimizer.param_groups else None
    where = f"epoch {epoch}, " if epoch is not None else ""
    of = f" of {n_steps}" if n_steps >= 0 else ""
    rate = f" (learning rate {lr:g})" if isinstance(lr, (int, float)) else ""
    raise NonFiniteLossError(f"training loss became non-finite (nan or inf) in {where}iteration {step + 1}{of}: "
                             f"the run diverged{rate}; lower the learning rate (or lam) and start again")


def train_one_epoch(
    model: nn.Module,
    loader: Iterable,
    optimizer: torch.optim.Optimizer,
    *,
    device: torch.device | str = "cpu",
    after_backward: Hook | None = None,
    after_step: Hook | None = None,
    amp_dtype: torch.dtype | None = None,
    scaler: torch.amp.GradScaler | None = None,
    channels_last: bool = False,
    epoch: int | str | None = None,
    progress: bool = False,
    desc: str | None = None,
    reduce: Reduce | None = None,
    check_every: int | None = None,
) -> dict:
    """One pass over ``loader``; returns ``{"train_loss", "train_top1", "seen"}``.

    ``after_backward(step)`` runs after ``loss.backward()`` (and, with a ``scaler``, after the
    gradients are unscaled), ``after_step(step)`` after ``optimizer.step()``; ``step`` is 0-based
    within the epoch. ``model`` may be wrapped in DDP: the hooks then see all-reduced gradients.
    ``reduce`` sums ``[loss_sum, correct, seen]`` over processes (distributed runs). ``epoch`` only
    labels the progress bar and the error message. ``check_every``: steps between reads of the
    non-finite flag (default 1 on CPU, :data:`CUDA_CHECK_EVERY` on CUDA).

    Raises :class:`~strucspars_viz.errors.NonFiniteLossError` naming the epoch and iteration.
    """
    device = torch.device(device)
    model.train()
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    first_bad = torch.full((), -1, dtype=torch.int64, device=device)
    if check_every is None:
        check_every = 1 if device.type == "cpu" else CUDA_CHECK_EVERY
    n_steps = len(loader) if hasattr(loader, "__len__") else -1
    seen = 0
    bar = tqdm(loader, desc=desc or (f"epoch {epoch}" if epoch is not None else "train"), leave=False,
               disable=not progress, file=sys.stderr)
    step = -1
    for step, (x, y) in enumerate(bar):
        x, y = _prepare(x, y, device, channels_last)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            logits = model(x)
            loss = F.cross_entropy(logits, y)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)  # the hooks see true gradients
        else:
            loss.backward()
        if after_backward is not None:
            after_backward(step)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        if after_step is not None:
            after_step(step)
        loss = loss.detach()
        first_bad = torch.where((first_bad < 0) & ~torch.isfinite(loss), torch.full_like(first_bad, step), first_bad)
        if (step + 1) % check_every == 0 and int(first_bad) >= 0:
            _raise_non_finite(epoch, int(first_bad), n_steps, optimizer)
        n = len(y)
        loss_sum += loss.double() * n
        correct += (logits.detach().argmax(1) == y).sum()
        seen += n
        if progress:  # a sync per step, acceptable only when a person is watching the bar
            bar.set_postfix(loss=f"{float(loss_sum) / seen:.3f}", acc=f"{int(correct) / seen:.3f}")
    if step >= 0 and int(first_bad) >= 0:
        _raise_non_finite(epoch, int(first_bad), n_steps, optimizer)
    totals = [float(loss_sum), float(correct), float(seen)]
    if reduce is not None:
        totals = reduce(totals)
    loss_total, correct_total, seen_total = totals
    return {"train_loss": loss_total / max(seen_total, 1), "train_top1": correct_total / max(seen_total, 1),
            "seen": int(seen_total)}


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable,
    *,
    device: torch.device | str = "cpu",
    amp_dtype: torch.dtype | None = None,
    channels_last: bool = False,
    reduce: Reduce | None = None,
) -> dict:
    """Mean cross-entropy, top-1 and top-5 accuracy of ``model`` over ``loader`` (mode restored).

    Returns ``{"loss", "top1", "top5"}``; with ``reduce``, counts are summed over processes first.
    """
    device = torch.device(device)
    was = model.training
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    c1 = torch.zeros((), dtype=torch.int64, device=device)
    c5 = torch.zeros((), dtype=torch.int64, device=device)
    n = 0
    try:
        for x, y in loader:
            x, y = _prepare(x, y, device, channels_last)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                logits = model(x)
            logits = logits.float()
            loss_sum += F.cross_entropy(logits, y, reduction="sum").double()
            top = logits.topk(min(5, logits.shape[1]), dim=1).indices
            hit = top.eq(y[:, None])
            c1 += hit[:, :1].sum()
            c5 += hit.any(dim=1).sum()
            n += len(y)
    finally:
        model.train(was)
    totals = [float(loss_sum), float(c1), float(c5), float(n)]
    if reduce is not None:
        totals = reduce(totals)
    loss_total, c1_total, c5_total, n_total = totals
    n_total = max(n_total, 1)
    return {"loss": loss_total / n_total, "top1": c1_total / n_total, "top5": c5_total / n_total}
