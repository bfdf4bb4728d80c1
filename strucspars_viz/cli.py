"""``strucspars-viz`` command line: one subcommand per job a notebook can do.

Each subcommand lives in the module that implements it, which exposes ``add_arguments(parser)``
and ``main(args) -> int``; this file only wires them together. User errors (bad options, missing
or corrupt files, a locked run folder, a diverged run) are reported here, in one format:
``strucspars-viz <command>: error: <message>`` on stderr and exit status 2.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from .errors import NonFiniteLossError

#: subcommand -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("strucspars_viz.demo", "learn permutations on a planted matrix and a CIFAR-trained layer; write a report"),
    "permute": ("strucspars_viz.commands", "learn P, Q of a weight-norm matrix (.npy) or a model layer and print the rounds"),
    "compress": ("strucspars_viz.commands", "sparsify a registered model to a target and report params / MACs before and after"),
    "train": ("strucspars_viz.training.cli", "Algorithm 1 end to end: sparsify, reach the target, mask, finetune, compress"),
    "time": ("strucspars_viz.timing.cli", "wall time of dense, compressed and pruned models on CPU / CUDA (CSV + figure)"),
    "ablate": ("strucspars_viz.ablation.cli", "ablation arms (SPEC §7) and matched-cost pruning baselines over seeds, with statistics"),
    "related": ("strucspars_viz.ablation.cli", "the related-designs table: StrucSpars, IGC-V2, SSC, narrow at matched parameters, with CPU latency"),
    "manifest": ("strucspars_viz.manifest", "check a committed results folder against its SHA256SUMS (or --write it)"),
}

#: exception types that are the user's to fix; anything else keeps its traceback
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, NonFiniteLossError)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``command``'s module is imported (start-up stays fast, and one broken
    optional dependency cannot take the other subcommands down)."""
    parser = argparse.ArgumentParser(prog="strucspars-viz", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name != command:
            continue
        mod = importlib.import_module(module)
        getattr(mod, f"add_{name}_arguments", getattr(mod, "add_arguments", None))(p)
        p.set_defaults(_entry=getattr(mod, f"{name}_main", getattr(mod, "main", None)), _parser=p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(command if command in COMMANDS else None).parse_args(argv)
    try:
        return int(args._entry(args) or 0)
    except USER_ERRORS as err:
        # yaml's errors subclass neither ValueError nor OSError; modules convert them before raising.
        print(f"strucspars-viz {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
