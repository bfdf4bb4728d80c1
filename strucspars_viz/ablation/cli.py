"""``strucspars-viz ablate``: the ablation tables of SPEC §7 and the matched-cost baselines."""
from __future__ import annotations

import argparse

from ..config import quick_mode
from .arms import ARMS
from .baselines import BASELINES
from .launch import LAUNCHERS

__all__ = ["add_arguments", "main", "parse_names", "parse_seeds"]


def parse_names(text: str, allowed: tuple[str, ...], what: str) -> list[str]:
    """``all`` or a comma list of names from ``allowed`` (lower case); unknown names -> ValueError."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if names == ["all"]:
        return list(allowed)
    if names == ["none"]:
        return []
    bad = [n for n in names if n not in allowed]
    if bad:
        raise ValueError(f"unknown {what}(s) {', '.join(bad)}; allowed: {', '.join(allowed)} (or all)")
    return names


def parse_seeds(text: str, what: str = "--seeds") -> list[int]:
    items = [s.strip() for s in text.split(",") if s.strip()]
    if not items:
        raise ValueError(f"{what}: empty seed list; give e.g. 0,1,2")
    try:
        seeds = [int(s) for s in items]
    except ValueError:
        raise ValueError(f"{what}: seeds must be integers, got {text!r}") from None
    if len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ValueError(f"{what}: seeds must be distinct non-negative integers, got {text!r}")
    return seeds


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", metavar="RUN_DIR", help="a `strucspars-viz train` run folder holding sparsified.pt "
                        "(optional with --quick: a tiny run is trained into OUT/sparsify)")
    parser.add_argument("--out", required=True, metavar="OUT", help="sweep folder: OUT/<arm>/seed<k>/ run folders, "
                        "ablation.csv / .md / .png")
    parser.add_argument("--arms", default="all", help=f"all or a comma list of {', '.join(ARMS)} (or none)")
    parser.add_argument("--seeds", default=None, help="comma list of seeds [default: 0,1,2; quick: 0,1]")
    parser.add_argument("--baselines", default="", help=f"comma list of {', '.join(BASELINES)} [default: none; "
                        "quick: magnitude]")
    parser.add_argument("--baseline-seeds", default=None, help="seeds of the baselines [default: --seeds]")
    parser.add_argument("--finetune-epochs", type=int, default=None,
                        help="finetuning epochs of every job [default: the run's; quick: 1]")
    parser.add_argument("--jobs", type=int, default=1, metavar="N", help="parallel processes (local launcher)")
    parser.add_argument("--launcher", choices=LAUNCHERS, default="local",
                        help="local (in series / --jobs processes), slurm (submitit job array), submitit-local")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per job")
    parser.add_argument("--pretrained", default=None, metavar="SWEEP", help="reuse the dense pretrained models of "
                        "a finished sweep (e.g. at another target) for slimming, taylor and magnitude")
    parser.add_argument("--compare", default="", help="comma list of other sweep folders (other targets) for "
                        "accuracy_vs_cost.png")
    parser.add_argument("--quick", action="store_true", help="bundled sample, tiny run, 2 seeds, 1 epoch "
                        "(also $STRUCSPARS_QUICK=1)")


def main(args: argparse.Namespace) -> int:
    from .sweep import QUICK_BASELINES, run_ablation

    quick = bool(args.quick) or quick_mode()
    arms = parse_names(args.arms, ARMS, "arm")
    seeds = parse_seeds(args.seeds if args.seeds is not None else ("0,1" if quick else "0,1,2"))
    if args.baselines:
        baselines = parse_names(args.baselines, BASELINES, "baseline")
    else:
        baselines = list(QUICK_BASELINES) if quick else []
    bseeds = parse_seeds(args.baseline_seeds, "--baseline-seeds") if args.baseline_seeds is not None else None
    if args.finetune_epochs is not None and args.finetune_epochs < 0:
        raise ValueError(f"--finetune-epochs must be >= 0, got {args.finetune_epochs}")
    rows = run_ablation(args.run, args.out, arms=arms, seeds=seeds, baselines=baselines, baseline_seeds=bseeds,
                        finetune_epochs=args.finetune_epochs, launcher=args.launcher, n_jobs=args.jobs,
                        quick=quick, threads=args.threads,
                        compare=[c for c in args.compare.split(",") if c.strip()], pretrained=args.pretrained)
    print(f"{len(rows)} job(s) reported: {args.out}/ablation.csv, ablation.md, ablation.png")
    print(open(f"{args.out}/ablation.md").read())
    return 0
