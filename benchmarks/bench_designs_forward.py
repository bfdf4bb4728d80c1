"""Training-step speed of the related designs' dense-equivalent forward (CIFAR, CPU, one thread).

Times the production training step (:func:`strucspars_viz.training.train_one_epoch` over one batch of
128, 32x32, channels-last as the CPU configs train) of ``igcv2_resnet20`` and ``ssc_resnet20`` with their
structured ops (``dense_forward=False``: IGC-V2's chain of grouped 1x1 convs and gathers, SSC's gathers
and grouped convs) and with the default training path (IGC-V2's 1x1 stages multiplied into one dense
1x1, SSC's kernel scattered into one dense conv), next to the dense ResNet-20. Prints each variant's
median step relative to the dense ResNet-20 from one run, the variants interleaved so machine load
affects them alike. Target (issue 9): the SSC network at least as fast as its dense equivalent
(ratio <= 1.1 with this noise), IGC-V2 well below its staged cost.

    python benchmarks/bench_designs_forward.py [--steps 10] [--threads 1]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from strucspars_viz.counting import set_dense_forward
from strucspars_viz.models import build_model
from strucspars_viz.training import train_one_epoch


def structured(model: torch.nn.Module) -> torch.nn.Module:
    set_dense_forward(model, False)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    batch = (torch.randn(args.batch, 3, 32, 32).to(memory_format=torch.channels_last),
             torch.randint(0, 10, (args.batch,)))
    variants = {
        "resnet20 (dense)": build_model("resnet20"),
        "igcv2_resnet20, staged": structured(build_model("igcv2_resnet20")),
        "igcv2_resnet20, dense 1x1 product": build_model("igcv2_resnet20"),
        "ssc_resnet20, gathers + grouped": structured(build_model("ssc_resnet20")),
        "ssc_resnet20, dense kernel": build_model("ssc_resnet20"),
    }
    opts = {}
    for name, model in variants.items():
        variants[name] = model.to(memory_format=torch.channels_last).train()
        opts[name] = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        train_one_epoch(variants[name], [batch], opts[name])  # warm-up
    times = {name: [] for name in variants}
    names = list(variants)
    for step in range(args.steps):
        for k in range(len(names)):  # rotate the order every round
            name = names[(step + k) % len(names)]
            t0 = time.perf_counter()
            train_one_epoch(variants[name], [batch], opts[name])
            times[name].append(time.perf_counter() - t0)
    base = statistics.median(times[names[0]])
    print(f"median training step, batch {args.batch}, {args.threads} thread(s), {args.steps} interleaved rounds")
    for name in names:
        med = statistics.median(times[name])
        print(f"  {name:36s} {med * 1e3:8.1f} ms   {med / base:5.2f}x the dense ResNet-20")


if __name__ == "__main__":
    main()
