"""``strucspars-viz ablate``: the ablation tables of SPEC §7 and the matched-cost baselines."""
from __future__ import annotations

import argparse

from ..config import quick_mode
from .arms import ARMS, SPEC_ARMS
from .baselines import BASELINES
from .launch import LAUNCHERS

__all__ = ["add_arguments", "add_related_arguments", "main", "parse_names", "parse_seeds", "related_main"]


def parse_names(text: str, allowed: tuple[str, ...], what: str, everything: tuple[str, ...] | None = None) -> list[str]:
    """``all`` (``everything``, default ``allowed``) or a comma list of names from ``allowed`` (lower
    case); unknown names -> ValueError."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if names == ["all"]:
        return list(allowed if everything is None else everything)
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
    parser.add_argument("--arms", default="all", help=f"all (SPEC §7's {', '.join(SPEC_ARMS)}) or a comma list "
                        f"of {', '.join(ARMS)} (or none)")
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
    arms = parse_names(args.arms, ARMS, "arm", SPEC_ARMS)
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


def add_related_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sweeps", required=True, help="comma list of sweep folders holding the rows (e.g. the "
                        "ablation sweep for fromscratch / shufflenet / narrow and a sweep of the design baselines)")
    parser.add_argument("--out", required=True, metavar="OUT", help="where related.csv / .md / .png and timing/ go")
    parser.add_argument("--batches", default=None, help="batch sizes timed [default: 1,64; quick: 1]")
    parser.add_argument("--repeats", type=int, default=None, help="interleaved timing rounds [default: 20; quick: 3]")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--quick", action="store_true", help="few timing rounds (also $STRUCSPARS_QUICK=1)")


def related_main(args: argparse.Namespace) -> int:
    from .related import related_markdown, write_related

    quick = bool(args.quick) or quick_mode()
    batches = parse_seeds(args.batches if args.batches is not None else ("1" if quick else "1,64"), "--batches")
    if min(batches) < 1:
        raise ValueError(f"--batches: batch sizes must be >= 1, got {args.batches!r}")
    repeats = args.repeats if args.repeats is not None else (3 if quick else 20)
    if repeats < 1:
        raise ValueError(f"--repeats must be >= 1, got {repeats}")
    sweeps = [s.strip() for s in args.sweeps.split(",") if s.strip()]
    table = write_related(args.out, sweeps, batches=batches, repeats=repeats, progress=not args.no_progress)
    print(related_markdown(table, batches))
    return 0
