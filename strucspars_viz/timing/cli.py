"""``strucspars-viz time``: wall time of dense, StrucSpars, Torch-Pruning and ShuffleNet-shuffle
variants over batch sizes, layouts, dtypes and backends; CSVs, environment and a figure in ``--out``."""
from __future__ import annotations

import argparse

import torch

from .backends import BACKENDS, DTYPES, LAYOUTS, check_config
from .harness import run_sweep
from .sweep import breakdown_rows, configs_for, default_device, parse_list, save_sweep
from .variants import DEFAULT_KINDS, QUICK_KINDS, build_variants, parse_kind

__all__ = ["add_arguments", "main"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models", default=None,
                   help="comma-separated MODEL or MODEL:KIND (KIND: dense, ssNN, tpNN, shuffleNN); "
                        f"MODEL alone means kinds {','.join(DEFAULT_KINDS)} "
                        "(default resnet56,resnet50; --quick: resnet20 with dense,ss65,tp65,shuffle65)")
    p.add_argument("--batch", default="1,16", help="comma-separated batch sizes (default 1,16)")
    p.add_argument("--layouts", default="nchw", help=f"comma-separated, from {','.join(LAYOUTS)}")
    p.add_argument("--dtypes", default="fp32", help=f"comma-separated, from {','.join(DTYPES)}")
    p.add_argument("--backends", default="eager", help=f"comma-separated, from {','.join(BACKENDS)}")
    p.add_argument("--repeats", type=int, default=None, help="interleaved rounds per configuration (default 10; quick 3)")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls per variant before timing")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (cuda when available)")
    p.add_argument("--iters", type=int, default=2, help="P/Q rounds when building StrucSpars variants")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None,
                   help="torch.set_num_threads (default: torch's; 1 is steadier on a shared machine)")
    p.add_argument("--no-breakdown", action="store_true", help="skip the torch.profiler per-layer split")
    p.add_argument("--no-memory", action="store_true", help="skip peak-memory measurement")
    p.add_argument("--quick", action="store_true", help="small models, 3 rounds (CI / smoke test)")
    p.add_argument("--out", required=True, help="output folder")


def main(args: argparse.Namespace) -> int:
    device = default_device() if args.device == "auto" else args.device
    if device not in ("cpu", "cuda"):
        raise ValueError(f"--device must be cpu, cuda or auto, got {args.device!r}")
    specs = parse_list(args.models, "--models") if args.models else (["resnet20"] if args.quick else ["resnet56", "resnet50"])
    batches = parse_list(args.batch, "--batch", int)
    layouts = parse_list(args.layouts, "--layouts")
    dtypes = parse_list(args.dtypes, "--dtypes")
    backends = parse_list(args.backends, "--backends")
    configs = configs_for(batches, layouts, dtypes, backends)
    for c in configs:  # validate everything before the (slow) model building
        check_config(c)
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    repeats = args.repeats if args.repeats is not None else (3 if args.quick else 10)
    if repeats < 1:
        raise ValueError(f"--repeats must be >= 1, got {repeats}")
    for spec in specs:
        if ":" in spec:
            parse_kind(spec.partition(":")[2])
    variants = build_variants(specs, seed=args.seed, iters=args.iters,
                              kinds=QUICK_KINDS if args.quick else DEFAULT_KINDS)
    result = run_sweep(variants, configs, repeats=repeats, warmup=args.warmup, device=device,
                       memory=not args.no_memory)
    rows = [] if args.no_breakdown else breakdown_rows(variants, batches, layouts, device)
    paths = save_sweep(args.out, result, rows)
    for r in result.summary:
        if r["status"] == "ok":
            sp = f"  speed-up {r['speedup']:.2f}x" if r.get("speedup") else ""
            print(f"{r['variant']:<22} b{r['batch']:<4} {r['layout']:<4} {r['dtype']} {r['backend']:<8} "
                  f"{r['median_ms']:9.2f} ms (IQR {r['iqr_ms']:.2f}){sp}")
        else:
            print(f"{r['variant']:<22} b{r['batch']:<4} {r['layout']:<4} {r['dtype']} {r['backend']:<8} {r['status']}")
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return 0
