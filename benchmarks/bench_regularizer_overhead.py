"""Per-step overhead of the structured regulariser and of mask enforcement (CIFAR ResNet-56, CPU).

Times the production training step (:func:`strucspars_viz.training.train_one_epoch` over one batch
of 64, 32x32: forward, loss, backward, hooks, SGD step, on-device accumulation) plain, with the
sparsification hook ``after_backward = sparsifier.regularize(lam)``, and as a masked finetuning step
(``apply_masks()`` gradient hooks + ``after_step = enforce_masks()``). Prints the ratios from one
run, interleaving the variants so machine load affects them alike. Target: regulariser < 10 %.

    python benchmarks/bench_regularizer_overhead.py [--steps 20]
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch

import strucspars_viz as sv
from strucspars_viz.models import build_model
from strucspars_viz.training import train_one_epoch


def step_time(model, opt, batch, after_backward=None, after_step=None) -> float:
    """Seconds of one production step: ``train_one_epoch`` over a one-batch loader."""
    t0 = time.perf_counter()
    train_one_epoch(model, [batch], opt, after_backward=after_backward, after_step=after_step)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    torch.manual_seed(0)
    x, y = torch.randn(args.batch, 3, 32, 32), torch.randint(0, 10, (args.batch,))

    plain = build_model("resnet56")
    reg = copy.deepcopy(plain)
    masked = copy.deepcopy(plain)
    sp_reg = sv.StructuredSparsifier(reg)
    sp_reg.update_permutations(iters=2)
    sp_reg.update_groups(keep=0.5)
    sp_mask = sv.StructuredSparsifier(masked)
    sp_mask.load_state_dict(sp_reg.state_dict())
    sp_mask.apply_masks()
    variants = {
        "plain": (plain, None, None),
        "regularize": (reg, lambda step: sp_reg.regularize(1e-4), None),
        "masked": (masked, None, lambda step: sp_mask.enforce_masks()),
    }
    opts = {k: torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9) for k, (m, _, _) in variants.items()}
    times = {k: [] for k in variants}
    for i in range(args.steps + 3):
        for k, (m, ab, ast) in variants.items():
            t = step_time(m, opts[k], (x, y), ab, ast)
            if i >= 3:  # warm-up
                times[k].append(t)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"ResNet-56, batch {args.batch}, {args.steps} steps, torch threads = {torch.get_num_threads()}")
    for k, v in med.items():
        print(f"  {k:<11} median step {v * 1e3:7.1f} ms")
    print(f"  regulariser overhead: {100 * (med['regularize'] / med['plain'] - 1):+.1f} %  (target < 10 %)")
    print(f"  masked-step overhead: {100 * (med['masked'] / med['plain'] - 1):+.1f} %")


if __name__ == "__main__":
    main()
