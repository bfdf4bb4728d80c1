"""``strucspars-viz permute`` and ``strucspars-viz compress``: the core library from the shell."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from .birkhoff import METHODS
from .counting import count_params_macs
from .export import compress, max_output_difference
from .hierarchy import groups_for, kept_fractions
from .models import build_model, list_models, model_entry
from .norms import norm_matrix
from .permutation import learn_permutations, planted_matrix
from .sparsifier import StructuredSparsifier


def _parse_planted(spec: str) -> tuple[int, int, int]:
    try:
        shape, groups = spec.split(":")
        cout, cin = (int(v) for v in shape.lower().split("x"))
        return cout, cin, int(groups)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--planted takes COUTxCIN:GROUPS, e.g. 64x64:8, got {spec!r}") from None


def add_permute_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--matrix", type=Path, help="a (Cout, Cin) weight-norm matrix saved with numpy.save")
    src.add_argument("--planted", type=_parse_planted, metavar="COUTxCIN:G", help="a scrambled block-diagonal matrix")
    src.add_argument("--model", choices=list_models(), help="a registered model (random init unless --weights)")
    p.add_argument("--layer", help="with --model: the conv's module name (default: the first sparsifiable conv)")
    p.add_argument("--weights", type=Path, help="with --model: a state_dict to load")
    p.add_argument("--noise", type=float, default=0.0, help="with --planted: uniform noise amplitude")
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--method", choices=METHODS, default="lsa")
    p.add_argument("--init", choices=["default", "identity", "spectral", "random"], default="default",
                   help="default: best of identity (the paper) and spectral starts")
    p.add_argument("--decay", type=float, default=0.5)
    p.add_argument("--keep", type=float, default=0.9)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save", type=Path, help="write row_perm, col_perm, objectives to this .npz")


def permute_main(args: argparse.Namespace) -> int:
    if args.matrix is not None:
        s = np.load(args.matrix)
        label = str(args.matrix)
    elif args.planted is not None:
        cout, cin, g = args.planted
        s, _, _ = planted_matrix(cout, cin, g, args.noise, args.seed)
        label = f"planted {cout}x{cin}, {g} groups"
    else:
        model = build_model(args.model)
        if args.weights:
            model.load_state_dict(torch.load(args.weights, map_location="cpu"))
        sp = StructuredSparsifier(model)
        layer = args.layer or next(iter(sp.layers))
        if layer not in sp.layers:
            raise SystemExit(f"--layer {layer!r} is not a sparsifiable conv of {args.model}; choose one of: {', '.join(sp.layers)}")
        s = norm_matrix(sp.modules[layer]).double().numpy()
        label = f"{args.model}.{layer}"
    init = None if args.init == "default" else args.init
    t0 = time.perf_counter()
    p, q, history = learn_permutations(s, args.iters, args.method, args.decay, init=init, seed=args.seed)
    elapsed = time.perf_counter() - t0
    print(f"{label}: S is {s.shape[0]}x{s.shape[1]}, method={args.method}, best start: {history[0].start}")
    for h in history:
        if h.half != "P":
            print(f"  round {h.round:3d} {h.half:>5}: J = {h.objective:.6g}")
    fractions = kept_fractions(s[p][:, q])
    print("  kept fraction f(G): " + ", ".join(f"G={g}: {f:.3f}" for g, f in fractions.items()))
    print(f"  groups at keep={args.keep}: {groups_for(s[p][:, q], args.keep)}   ({elapsed:.2f} s)")
    if args.save:
        np.savez(args.save, row_perm=p, col_perm=q, objective=np.array([h.objective for h in history]))
    return 0


def add_compress_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", choices=list_models(), required=True)
    p.add_argument("--weights", type=Path, help="a state_dict to load (default: random init)")
    p.add_argument("--target", type=float, required=True, help="model sparsity in [0, 1), e.g. 0.65")
    p.add_argument("--iters", type=int, default=20, help="P/Q rounds per layer")
    p.add_argument("--method", choices=METHODS, default="lsa")
    p.add_argument("--out", type=Path, help="folder for summary.json and the compressed model")


def compress_main(args: argparse.Namespace) -> int:
    if not 0.0 <= args.target < 1.0:
        raise SystemExit(f"--target must lie in [0, 1), got {args.target}")
    entry = model_entry(args.model)
    model = build_model(args.model).eval()
    if args.weights:
        model.load_state_dict(torch.load(args.weights, map_location="cpu"))
    size = (1, *entry.input_size)
    before = count_params_macs(model, size)
    sp = StructuredSparsifier(model)
    sp.update_permutations(args.iters, args.method, progress=True)
    result = sp.reach_target(args.target)
    sp.apply_masks()
    small = compress(sp).eval()
    after = count_params_macs(small, size)
    diff = max_output_difference(model, small, torch.randn(size))
    print(f"{args.model}: sparsity {result.sparsity:.4f} (target {args.target}, keep {result.keep:.4f})")
    print(f"{'layer':<32}{'Cout':>6}{'Cin':>6}{'k':>4}{'G':>5}")
    for row in sp.summary():
        print(f"{row['layer']:<32}{row['cout']:>6}{row['cin']:>6}{row['kernel']:>4}{row['groups']:>5}")
    print(f"before: {before}\nafter:  {after}\nmax |dense_masked - compressed| = {diff:.2e}")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        summary = {
            "model": args.model, "target": args.target, "sparsity": result.sparsity, "keep": result.keep,
            "params_before": before.params, "macs_before": before.macs,
            "params_after": after.params, "macs_after": after.macs,
            "max_abs_diff": diff, "groups": sp.groups(),
        }
        (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
        torch.save({"model": small.state_dict(), "sparsifier": sp.state_dict()}, args.out / "compressed.pt")
    return 0
