"""``strucspars-viz permute`` and ``strucspars-viz compress``: the core library from the shell.

Both are thin: ``permute`` is :func:`~strucspars_viz.permutation.learn_permutations` on one matrix,
``compress`` is :func:`~strucspars_viz.export.sparsify_to_target` then
:func:`~strucspars_viz.export.compress_and_check`. Bad options fail in the parser (exit 2 with
argparse's message); bad files and impossible requests raise ``ValueError`` / ``OSError``, which
:mod:`strucspars_viz.cli` prints as ``strucspars-viz <command>: error: ...`` with exit status 2.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .birkhoff import METHODS
from .counting import COUNTERS
from .errors import CheckpointError, UserInputError
from .export import compress_and_check, sparsify_to_target
from .hierarchy import check_decay, check_groups, groups_for, kept_fractions
from .models import list_models, model_entry
from .norms import as_matrix, norm_matrix
from .permutation import learn_permutations, planted_matrix
from .sparsifier import StructuredSparsifier

__all__ = ["add_compress_arguments", "add_permute_arguments", "compress_main", "load_model", "permute_main"]


# ---------------------------------------------------------------- argument types (errors exit 2 in argparse)
def _parse_planted(spec: str) -> tuple[int, int, int]:
    """``COUTxCIN:G`` with ``G`` a power of two dividing both counts (SPEC §1).

    >>> _parse_planted("64x32:4")
    (64, 32, 4)
    """
    try:
        shape, groups = spec.split(":")
        cout, cin = (int(v) for v in shape.lower().split("x"))
        g = int(groups)
    except ValueError:
        raise argparse.ArgumentTypeError(f"takes COUTxCIN:GROUPS, e.g. 64x64:8, got {spec!r}") from None
    if cout < 1 or cin < 1:
        raise argparse.ArgumentTypeError(f"channel counts must be positive, got {spec!r}")
    try:
        check_groups(cout, cin, g)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"{spec!r}: {err}") from None
    return cout, cin, g


def _decay(text: str) -> float:
    try:
        return check_decay(float(text))
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _bounded(lo: float, hi: float = math.inf, *, hi_open: bool = False, kind: type = float):
    """An argparse type accepting ``kind`` values in ``[lo, hi]`` (or ``[lo, hi)``), finite."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {'an integer' if kind is int else 'a number'}, got {text!r}") from None
        if not (math.isfinite(value) and lo <= value and (value < hi if hi_open else value <= hi)):
            allowed = f">= {lo:g}" if hi == math.inf else f"in [{lo:g}, {hi:g}{')' if hi_open else ']'}"
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {text}")
        return value

    return parse


def _add_weights_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", type=Path,
                   help="weights to load: a .pt file `train` writes (final.pt, sparsified.pt, checkpoint.pt) or a "
                        "plain state_dict saved with torch.save (loaded with weights_only=True)")
    p.add_argument("--run", type=Path, metavar="DIR",
                   help="a `train` run folder: its final.pt (model name, weights and sparsifier state)")


# ---------------------------------------------------------------- loading
def load_model(name: str | None, weights: Path | None = None, run: Path | None = None):
    """``(model, model_name, weights_record | None)`` from a registry name and/or a weights file / run folder.

    The model name comes from ``name`` or from the file; both given and different is an error, as is
    a compressed model file (its grouped convs do not load into the registry's dense model).
    """
    if weights is not None and run is not None:
        raise UserInputError("give --weights FILE or --run DIR, not both")
    record = None
    source = weights if weights is not None else run
    if source is not None:
        from .training.artifacts import read_weights  # lazy: permute --matrix needs no training stack

        record = read_weights(source)
        if record.kind == "compressed":
            raise CheckpointError(f"{record.source} holds a compressed model (grouped convs); pass the run's final.pt "
                                  "or the run folder, whose dense-shaped weights the commands can sparsify")
        if name is not None and record.model is not None and record.model != name:
            raise UserInputError(f"--model {name} but {record.source} holds weights of {record.model}")
        name = name or record.model
        if name is None:
            raise UserInputError(f"{record.source} does not name its model (a plain state_dict): pass --model")
    if name is None:
        raise UserInputError("no model: pass --model NAME, --run DIR or --weights FILE")
    entry = model_entry(name)  # ValueError listing the registered names
    kwargs = {"num_classes": record.num_classes} if record is not None and record.num_classes else {}
    model = entry.builder(**kwargs)
    if record is not None:
        try:
            result = model.load_state_dict(record.state_dict, strict=False)
        except RuntimeError as err:  # size mismatches raise even with strict=False
            raise CheckpointError(f"{record.source} does not fit {name}: {str(err).splitlines()[-1].strip()}") from None
        if result.missing_keys or result.unexpected_keys:
            raise CheckpointError(
                f"{record.source} does not fit {name}: missing {_few(result.missing_keys)}, "
                f"unexpected {_few(result.unexpected_keys)}")
    return model, name, record


def _few(keys, limit: int = 5) -> str:
    keys = list(keys)
    return "[" + ", ".join(keys[:limit]) + (f", ... {len(keys) - limit} more" if len(keys) > limit else "") + "]"


def _load_matrix(path: Path) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"--matrix {path}: no such file")
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise UserInputError(f"--matrix {path}: not a numpy .npy file ({err})") from None
    if isinstance(data, np.lib.npyio.NpzFile):
        with data:
            if len(data.files) != 1:
                raise UserInputError(f"--matrix {path}: an .npz with {len(data.files)} arrays {data.files}; "
                                     "save one (Cout, Cin) array with numpy.save")
            data = data[data.files[0]]
    m = as_matrix(data, finite=True, what=f"matrix in {path}")
    if (m < 0).any():
        raise UserInputError(f"--matrix {path}: a weight-norm matrix is non-negative; this one has negative entries")
    return m


# ---------------------------------------------------------------- permute
def add_permute_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--matrix", type=Path, help="a (Cout, Cin) weight-norm matrix saved with numpy.save")
    src.add_argument("--planted", type=_parse_planted, metavar="COUTxCIN:G",
                     help="a scrambled block-diagonal matrix; G a power of two dividing COUT and CIN")
    src.add_argument("--model", choices=list_models(), help="a registered model (random init unless --weights)")
    src.add_argument("--run", type=Path, metavar="DIR", help="a `train` run folder (its final.pt)")
    p.add_argument("--weights", type=Path, help="with --model: a .pt file `train` writes or a plain state_dict")
    p.add_argument("--layer", help="with --model/--run: the conv's module name (default: the first sparsifiable conv)")
    p.add_argument("--noise", type=_bounded(0.0, math.inf), default=0.0,
                   help="with --planted: uniform noise amplitude (>= 0)")
    p.add_argument("--iters", type=_bounded(0, math.inf, kind=int), default=20, help="P/Q rounds (>= 0)")
    p.add_argument("--method", choices=METHODS, default="lsa")
    p.add_argument("--init", choices=["default", "identity", "spectral", "random"], default="default",
                   help="default: best of identity (the paper) and spectral starts")
    p.add_argument("--decay", type=_decay, default=0.5, help="damping of finer hierarchy levels, in (0, 1]")
    p.add_argument("--keep", type=_bounded(0.0, 1.0), default=0.9, help="kept L1 fraction p, in [0, 1]")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save", type=Path, help="write row_perm, col_perm, objectives to this .npz")


def _permute_source(args: argparse.Namespace) -> tuple[np.ndarray, str]:
    if args.matrix is not None:
        return _load_matrix(args.matrix), str(args.matrix)
    if args.planted is not None:
        cout, cin, g = args.planted
        return planted_matrix(cout, cin, g, args.noise, args.seed)[0], f"planted {cout}x{cin}, {g} groups"
    if args.weights is not None and args.model is None:
        raise UserInputError("--weights needs --model (or use --run DIR)")
    model, name, _ = load_model(args.model, args.weights, args.run)
    sp = StructuredSparsifier(model)
    layer = args.layer or next(iter(sp.layers))
    if layer not in sp.layers:
        raise UserInputError(f"--layer {layer!r} is not a sparsifiable conv of {name}; choose one of: {', '.join(sp.layers)}")
    return as_matrix(norm_matrix(sp.modules[layer])), f"{name}.{layer}"


def permute_main(args: argparse.Namespace) -> int:
    if (args.layer or args.weights) and (args.matrix is not None or args.planted is not None):
        raise UserInputError("--layer and --weights go with --model or --run")
    s, label = _permute_source(args)
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
        _save_npz(args.save, row_perm=p, col_perm=q, objective=np.array([h.objective for h in history]))
    return 0


# ---------------------------------------------------------------- compress
def add_compress_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", choices=list_models(), help="a registered model (or taken from --run / --weights)")
    _add_weights_arguments(p)
    p.add_argument("--target", type=_bounded(0.0, 1.0, hi_open=True),
                   help="model sparsity in [0, 1), e.g. 0.65; default with --run / a trained final.pt: the run's own "
                        "permutations and groups")
    p.add_argument("--iters", type=_bounded(0, math.inf, kind=int), default=20, help="P/Q rounds per layer")
    p.add_argument("--method", choices=METHODS, default="lsa")
    p.add_argument("--fold", action="store_true", help="also merge shuffles inside blocks (fewer index copies)")
    p.add_argument("--counter", choices=COUNTERS, default="torch",
                   help="MAC counter: torch = conv + linear only; thop = also BatchNorm and pooling, the paper's "
                        "'GFLOPs' (needs ultralytics-thop)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random example batch of the equivalence check")
    p.add_argument("--out", type=Path, help="folder for summary.json and compressed_model.pt")


def compress_main(args: argparse.Namespace) -> int:
    if args.counter == "thop":
        try:
            import thop  # noqa: F401
        except ImportError:
            raise UserInputError("--counter thop needs Ultralytics THOP: pip install ultralytics-thop") from None
    model, name, record = load_model(args.model, args.weights, args.run)
    model.eval()
    saved_state = record.sparsifier if record is not None else None
    if args.target is None and saved_state is None:
        raise UserInputError("--target is required (the weights carry no sparsifier state to reuse)")
    if args.target is not None:
        sp, result = sparsify_to_target(model, args.target, iters=args.iters, method=args.method, progress=True)
        state = sp.state_dict()
        head = f"{name}: sparsity {result.sparsity:.4f} (target {args.target}, keep {result.keep:.4f})"
    else:
        sp = StructuredSparsifier(model, include=list(saved_state["layers"]))
        sp.load_state_dict(saved_state)
        sp.apply_masks()
        state = sp.state_dict()
        result = None
        head = f"{name}: the run's permutations and groups, sparsity {sp.sparsity():.4f}"
    entry = model_entry(name)
    example = torch.randn((2, *entry.input_size), generator=torch.Generator().manual_seed(args.seed))
    report = compress_and_check(model, state, example, fold=args.fold, counter=args.counter)
    print(head)
    print(f"{'layer':<32}{'Cout':>6}{'Cin':>6}{'k':>4}{'G':>5}")
    for row in sp.summary():
        print(f"{row['layer']:<32}{row['cout']:>6}{row['cin']:>6}{row['kernel']:>4}{row['groups']:>5}")
    print(f"before: {report.before}\nafter:  {report.after}\n"
          f"max |dense_masked - compressed| = {report.max_abs_diff:.2e} (tolerance {report.tol:g})")
    if args.out:
        summary = {
            "model": name, "target": args.target, "sparsity": sp.sparsity(),
            "keep": result.keep if result is not None else sp.keep,
            "exact": result.exact if result is not None else None,
            "weights": str(record.source) if record is not None else None, "counter": args.counter,
            **report.to_dict(), "groups": sp.groups(),
        }
        _write_outputs(args.out, summary, report.compressed, name, _num_classes(model), state)
        print(f"wrote {args.out / 'summary.json'} and {args.out / 'compressed_model.pt'}")
    if not report.equivalent:
        print(f"strucspars-viz compress: the compressed model differs from the masked model by "
              f"{report.max_abs_diff:.3g} (tolerance {report.tol:g}): not equivalent", file=sys.stderr)
        return 1
    return 0


def _num_classes(model: nn.Module) -> int:
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return int(linears[-1].out_features) if linears else 0


# ---------------------------------------------------------------- writing (T1's atomic writers)
def _save_npz(path: Path, **arrays) -> None:
    from .training.io import save_npz

    save_npz(path, **arrays)


def _write_outputs(out: Path, summary: dict, compressed: nn.Module, name: str, num_classes: int, state: dict) -> None:
    from .training.artifacts import weights_payload
    from .training.io import torch_save_atomic, write_json

    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "summary.json", summary)
    torch_save_atomic(weights_payload(name, num_classes, compressed.state_dict(), mode="strucspars", config=None,
                                      sparsifier=state), out / "compressed_model.pt")
