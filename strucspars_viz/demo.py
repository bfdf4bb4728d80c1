"""``strucspars-viz demo`` (``make demo``): the method end to end in a few minutes, as a report.

1. A planted matrix (block-diagonal, then scrambled): learn ``P, Q`` with the paper's alternation from
   the identity and with the default multi-start search; print ``J`` per round and the groups found.
2. A CIFAR ResNet-20 trained briefly on CIFAR-10 (``--data-root``, else ``$STRUCSPARS_DATA``, else
   ``./data``; the bundled 1,500-image sample only if none of them is named or found, and a named
   root that does not hold CIFAR-10 is an error) on the shared training step
   (:func:`strucspars_viz.training.train_one_epoch`) with the structured regulariser after every
   backward: ``P, Q`` updated and ``G`` re-chosen after every epoch; one conv layer's trace
   (:class:`~strucspars_viz.trace.LayerTrace`: ``S, P, Q, G``, lam, sparsity) recorded per epoch
   and saved as ``<out>/layer_norms.npz``.
3. That layer's permutations re-learned and animated; groups chosen for every layer (``f(G) >= keep``),
   masks applied, the model compressed to real grouped convs, equivalence checked, parameters and
   MACs counted.
4. ``<out>/report.html``: self-contained (GIF animations and PNG figures as base64), with the tables.

``--quick`` (or ``STRUCSPARS_QUICK=1``): a smaller planted matrix, 192 training images, 1 epoch
(well under a minute on 2 CPU cores). Default: 1,024 images, 4 epochs (about 2-4 minutes on 2 cores).
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .config import quick_mode
from .permutation import planted_matrix
from .trace import LayerTrace

__all__ = ["add_demo_arguments", "demo_main", "run_demo", "planted_matrix", "train_with_regulariser", "DemoResult"]


def train_with_regulariser(
    model: nn.Module,
    sparsifier,
    loaders,
    *,
    epochs: int,
    lam: float,
    lr: float = 0.05,
    keep: float = 0.9,
    layer: str | None = None,
    perm_rounds: int = 10,
    progress: bool = True,
) -> tuple[LayerTrace, list[dict]]:
    """The sparsification phase in miniature (SPEC §2-§4) on the shared training step.

    Per batch (:func:`strucspars_viz.training.train_one_epoch`): ``loss.backward()``, then
    ``sparsifier.regularize(lam)`` (adds ``lam * sign(W) * R_g[P_inv][:, Q_inv]`` to the gradients),
    then an SGD step (momentum 0.9, no weight decay). After each epoch: ``perm_rounds`` P/Q rounds
    warm-started from the current permutations and ``G`` re-chosen with the criterion ``f(G) >= keep``.
    ``loaders``: :func:`strucspars_viz.data.make_loaders` output (``set_epoch`` seeds each epoch).

    Returns the followed layer's trace and one dict per epoch (epoch, lam, loss, train_acc,
    sparsity, layer_groups, seconds).
    """
    from .training import train_one_epoch

    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=0.0)
    trace = LayerTrace(layer or next(iter(sparsifier.layers)), decay=sparsifier.decay)
    logs: list[dict] = []
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        loaders.set_epoch(epoch - 1)
        stats = train_one_epoch(model, loaders.train, opt, after_backward=lambda step: sparsifier.regularize(lam),
                                epoch=f"{epoch}/{epochs}", progress=progress)
        sparsifier.update_permutations(iters=perm_rounds)
        sparsifier.update_groups(keep)
        trace.record(sparsifier, epoch=epoch, phase="sparsify", lam=lam)
        logs.append({"epoch": epoch, "lam": float(lam), "loss": stats["train_loss"], "train_acc": stats["train_top1"],
                     "sparsity": sparsifier.sparsity(), "layer_groups": trace.groups[-1],
                     "seconds": time.perf_counter() - t0})
    return trace, logs


@dataclass
class DemoResult:
    out: Path
    report: Path
    planted_objectives: dict = field(default_factory=dict)
    layer_objectives: list = field(default_factory=list)
    planted_groups: dict = field(default_factory=dict)
    groups: dict = field(default_factory=dict)
    cost_before: object = None
    cost_after: object = None
    max_difference: float = float("nan")
    seconds: float = 0.0
    files: list = field(default_factory=list)


def _print_rounds(history, indent: str = "    ") -> list[float]:
    """Print ``J`` after every full round (the start as round 0); returns the printed values."""
    values = [history[0].objective]
    print(f"{indent}round  0  J = {history[0].objective:.6g}  (start)")
    rounds = sorted({h.round for h in history if h.round > 0})
    for r in rounds:
        last = [h for h in history if h.round == r][-1]
        print(f"{indent}round {r:2d}  J = {last.objective:.6g}")
        values.append(last.objective)
    return values


def run_demo(
    out: str | Path = "runs/demo",
    *,
    quick: bool = False,
    data_root: str | None = None,
    epochs: int | None = None,
    train_images: int | None = None,
    lam: float = 6e-3,
    keep: float = 0.9,
    layer: str = "layer3.0.conv2",
    seed: int = 0,
    progress: bool = True,
) -> DemoResult:
    """Run the demo (see the module docstring) and write ``<out>/report.html``; returns what it found."""
    from . import (
        StructuredSparsifier,
        compress,
        count_params_macs,
        groups_for,
        kept_fractions,
        learn_permutations,
        max_output_difference,
    )
    from .data import build_datasets, make_loaders
    from .models import build_model
    from .report import Section, figure_html, gif_html, kv_html, notation_section, table_html, write_report
    from .viz import (
        animate_permutation,
        animate_training,
        plot_layer_groups,
        plot_model_costs,
        plot_permutation_pair,
        save_gif,
    )

    t_start = time.perf_counter()
    epochs = epochs if epochs is not None else (1 if quick else 4)
    train_images = train_images if train_images is not None else (192 if quick else 1024)
    _check_options(epochs=epochs, train_images=train_images, lam=lam, keep=keep)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    from .seeding import seed_everything

    seed_everything(seed)
    max_frames = 36 if quick else 60
    # Data first, so that a wrong root fails at once. A named --data-root (or $STRUCSPARS_DATA) that
    # does not hold CIFAR-10 is an error (no fallback); only with nothing named is the bundled sample
    # used, announced once by the data layer.
    bundle = build_datasets("cifar10", data_root, train_subset=train_images, test_subset=256, seed=seed)
    loaders = make_loaders(bundle, 64, 256, seed=seed)
    info = bundle.description
    result = DemoResult(out=out, report=out / "report.html")
    sections: list[Section] = []
    stages = tqdm(total=5, desc="demo", disable=not progress, file=sys.stderr)

    # ------------------------------------------------------------------ 1. planted matrix
    n, g_planted = (32, 4) if quick else (64, 8)
    s_planted, _, _ = planted_matrix(n, n, g_planted, noise=0.03, seed=seed)
    print(f"\n[1/4] Planted {n}x{n} matrix: {g_planted} blocks, rows and columns scrambled")
    runs = {}
    for label, init in (("paper: alternation from the identity", "identity"),
                        ("default: best of identity and spectral starts", None)):
        t0 = time.perf_counter()
        p, q, hist = learn_permutations(s_planted, iters=20, init=init, seed=seed)
        secs = time.perf_counter() - t0
        g = groups_for(s_planted[p][:, q], keep)
        print(f"  {label} (init={init!r}), {secs:.2f} s:")
        result.planted_objectives[label] = _print_rounds(hist)
        print(f"  -> groups found: G = {g} (planted {g_planted}), f(G) = {kept_fractions(s_planted[p][:, q])[g]:.3f}")
        result.planted_groups[label] = g
        runs[label] = (p, q, hist, g)
    stages.update()

    planted_parts = []
    for k, (label, (p, q, hist, g)) in enumerate(runs.items()):
        anim = animate_permutation(hist, s_planted, keep=keep, max_frames=max_frames,
                                   title=f"Planted {n}x{n}, {label}")
        gif = save_gif(anim, out / f"planted_permutation_{k}.gif")
        result.files.append(gif)
        planted_parts.append(gif_html(gif, caption=f"{label}: rows and columns slide to their new slots after "
                                                   f"every half-step; G = {g} found.",
                                      element_id=f"anim-planted-{k}"))
        fig = plot_permutation_pair(s_planted, p, q, keep=keep, suptitle=f"Planted matrix, {label}")
        png = out / f"planted_before_after_{k}.png"
        fig.savefig(png, dpi=100)
        result.files.append(png)
        planted_parts.append(figure_html(fig, caption="before / after: S in its scrambled order and S' = S[P][:, Q]"))
        rows = [{"round": i, "J": v} for i, v in enumerate(result.planted_objectives[label])]
        planted_parts.append(table_html(rows, ["round", "J"], caption=f"objective per round, {label}"))
    stages.update()
    sections.append(Section(
        f"Planted {n}x{n} matrix", planted_parts,
        intro=(f"A block-diagonal norm matrix with {g_planted} blocks whose rows and columns were scrambled. "
               "Each half-step is an exact assignment problem (an LP on the Birkhoff polytope); the objective "
               "J = <S[P][:, Q], R> never increases. The paper's plain alternation from the identity can stall in a "
               "local optimum; the default search also tries a spectral co-clustering start and keeps the best."),
        anchor="planted"))

    # ------------------------------------------------------------------ 2. training
    print(f"\n[2/4] ResNet-20 on CIFAR-10, {epochs} epoch(s) with the structured regulariser (lam = {lam:g})")
    print(f"  data: {info['source']} ({'bundled sample' if info['is_sample'] else 'CIFAR-10'}), "
          f"{info['n_train']} train / {info['n_test']} test images")
    model = build_model("resnet20", num_classes=10)
    sparsifier = StructuredSparsifier(model, keep=keep)
    if layer not in sparsifier.layers:
        raise ValueError(f"--layer {layer!r} is not a sparsified conv; choose from {list(sparsifier.layers)}")
    dense_cost = count_params_macs(model, (1, 3, 32, 32))
    sparsifier.update_permutations(iters=20)  # 20 rounds before training (SPEC §2)
    trace, logs = train_with_regulariser(model, sparsifier, loaders, epochs=epochs, lam=lam, keep=keep,
                                         layer=layer, progress=progress)
    trace.save(out / "layer_norms.npz")
    for log in logs:
        print(f"  epoch {log['epoch']}: loss {log['loss']:.3f}, train acc {log['train_acc']:.3f}, "
              f"model sparsity at keep={keep:g}: {log['sparsity']:.3f}, {layer}: G = {log['layer_groups']} "
              f"({log['seconds']:.1f} s)")
    stages.update()

    # ------------------------------------------------------------------ 3. the layer's permutations
    np.savez_compressed(out / "norm_matrices.npz", **sparsifier.norm_matrices())  # for the explorer notebook
    s_layer = sparsifier.norm_matrices()[layer]
    print(f"\n[3/4] Layer {layer} ({s_layer.shape[0]}x{s_layer.shape[1]}): permutations re-learned from its own order")
    p, q, hist = learn_permutations(s_layer, iters=20, seed=seed)
    result.layer_objectives = _print_rounds(hist)
    g_layer = groups_for(s_layer[p][:, q], keep)
    print(f"  -> groups found: G = {g_layer}, f(G) = {kept_fractions(s_layer[p][:, q])[g_layer]:.3f}")
    layer_parts = []
    anim = animate_training(**trace.animation_kwargs(), keep=keep, max_frames=max_frames)
    gif = save_gif(anim, out / "training.gif")
    result.files.append(gif)
    layer_parts.append(gif_html(gif, caption=f"{layer}: S (normalised, log colour scale) in the learned order, "
                                             "epoch by epoch, with lambda, model sparsity and the layer's G.",
                                element_id="anim-training"))
    anim = animate_permutation(hist, s_layer, keep=keep, max_frames=max_frames, scale="sqrt",
                               title=f"ResNet-20 {layer} after training: learning P, Q")
    gif = save_gif(anim, out / "layer_permutation.gif")
    result.files.append(gif)
    layer_parts.append(gif_html(gif, caption="the trained layer's S, permutations learned from its own order",
                                element_id="anim-layer"))
    fig = plot_permutation_pair(s_layer, p, q, keep=keep, scale="sqrt", suptitle=f"ResNet-20 {layer} after training")
    png = out / "layer_before_after.png"
    fig.savefig(png, dpi=100)
    result.files.append(png)
    layer_parts.append(figure_html(fig, caption="before / after: S and S' = S[P][:, Q] (square-root colour scale)"))
    layer_parts.append(table_html([{"round": i, "J": v} for i, v in enumerate(result.layer_objectives)],
                                  ["round", "J"], caption="objective per round"))
    layer_parts.append(table_html(
        [{"epoch": lg["epoch"], "lambda": lg["lam"], "loss": lg["loss"], "train acc": lg["train_acc"],
          "model sparsity": lg["sparsity"], f"G ({layer})": lg["layer_groups"], "epoch time (s)": lg["seconds"]}
         for lg in logs],
        caption="training log, one row per epoch; epoch time = wall-clock seconds of the epoch's training "
                "plus its P/Q rounds and regrouping",
        column_help={"lambda": "strength of the structured L1 penalty used in this epoch",
                     "model sparsity": "fraction of the sparsified convs' parameters that the current G remove",
                     f"G ({layer})": "this layer's group count after the epoch (largest G with f(G) >= keep)",
                     "epoch time (s)": "wall-clock seconds of this epoch: training + P/Q rounds + regrouping"}))
    stages.update()

    # ------------------------------------------------------------------ 4. groups, mask, compress, count
    groups = sparsifier.update_groups(keep)
    fractions = sparsifier.kept_fractions()
    sparsity = sparsifier.sparsity()
    sparsifier.apply_masks()
    compressed = compress(sparsifier)
    x = next(iter(loaders.test))[0][:16]
    diff = max_output_difference(model, compressed, x)
    after_cost = count_params_macs(compressed, (1, 3, 32, 32))
    result.groups, result.cost_before, result.cost_after, result.max_difference = groups, dense_cost, after_cost, diff
    print(f"\n[4/4] Groups at keep = {keep:g}: model sparsity {sparsity:.3f}")
    for name, g in groups.items():
        print(f"  {name:24s} G = {g:2d}  f(G) = {fractions[name][g]:.3f}")
    print(f"  dense:      {dense_cost}")
    print(f"  compressed: {after_cost}")
    print(f"  max |dense masked - compressed| output difference: {diff:.2e}")
    layer_rows = []
    for row in sparsifier.summary():
        name = row["layer"]
        layer_rows.append({"layer": name, "shape": f"{row['cout']}x{row['cin']}x{row['kernel']}",
                           "G": row["groups"], "max G": row["max_groups"], "f(G)": fractions[name][row["groups"]],
                           "params before": row["params"], "params after": row["params_grouped"]})
    model_parts = [
        kv_html({"model sparsity": sparsity, "params before": dense_cost.params, "params after": after_cost.params,
                 "MACs before": dense_cost.macs, "MACs after": after_cost.macs, "max output difference": diff}),
        table_html([{"": "parameters", "dense": dense_cost.params, "compressed": after_cost.params,
                     "ratio": dense_cost.params / after_cost.params},
                    {"": "MACs", "dense": dense_cost.macs, "compressed": after_cost.macs,
                     "ratio": dense_cost.macs / after_cost.macs}],
                   ["", "dense", "compressed", "ratio"], caption="parameters and MACs before / after",
                   element_id="table-costs"),
        table_html(layer_rows, caption="per-layer groups", element_id="table-groups"),
    ]
    fig = plot_layer_groups(groups, {n: fractions[n][g] for n, g in groups.items()},
                            {n: st.max_groups for n, st in sparsifier.layers.items()}, keep=keep,
                            title=f"ResNet-20: groups per layer at keep = {keep:g} (sparsity {sparsity:.2f})")
    png = out / "groups.png"
    fig.savefig(png, dpi=100)
    result.files.append(png)
    model_parts.insert(1, figure_html(fig, caption="group count G per layer and its kept fraction f(G)"))
    fig = plot_model_costs(dense_cost, after_cost, title="ResNet-20 before and after compression (32x32 input)")
    png = out / "costs.png"
    fig.savefig(png, dpi=100)
    result.files.append(png)
    model_parts.insert(2, figure_html(fig, caption="parameters and MACs (multiply-accumulates)"))
    stages.update()
    stages.close()

    sections.append(Section(f"ResNet-20 layer {layer}", layer_parts, anchor="layer", intro=(
        f"ResNet-20 trained for {epochs} epoch(s) on {info['n_train']} CIFAR-10 images"
        f"{' (bundled sample)' if info['is_sample'] else ''} with the structured L1 regulariser "
        f"(lambda = {lam:g}, large so that a short run shows the effect). After every epoch P, Q are updated "
        "(10 warm-started rounds) and G re-chosen by the criterion f(G) >= keep.")))
    sections.append(Section("Whole model: groups, parameters, MACs", model_parts, anchor="model", intro=(
        "Each layer takes the largest G with f(G) >= keep; weights outside the kept blocks are masked, and the "
        "masked model is materialised with real grouped convolutions plus the learned channel gathers. "
        "The compressed model reproduces the masked dense model's outputs.")))
    sections.insert(0, notation_section())
    result.seconds = time.perf_counter() - t_start
    subtitle = (f"{'quick mode, ' if quick else ''}{epochs} epoch(s), {info['n_train']} training images, "
                f"keep = {keep:g}; ran in {result.seconds:.0f} s")
    write_report(result.report, "StrucSpars demo: learned group convolutions and channel shuffles", sections,
                 subtitle=subtitle)
    result.seconds = time.perf_counter() - t_start
    print(f"\nSummary: planted groups {result.planted_groups}; ResNet-20 sparsity {sparsity:.3f}, "
          f"params {dense_cost.params} -> {after_cost.params}, MACs {dense_cost.macs} -> {after_cost.macs}; "
          f"{result.seconds:.0f} s")
    print(f"Report: {result.report.resolve()}")
    return result


def _check_options(*, epochs: int, train_images: int, lam: float, keep: float) -> None:
    """Bad options -> ValueError naming the flag and what is allowed (the CLI prints it, exit 2)."""
    if epochs < 1:
        raise ValueError(f"--epochs must be >= 1, got {epochs}")
    if train_images < 1:
        raise ValueError(f"--train-images must be >= 1, got {train_images}")
    if not (lam >= 0 and np.isfinite(lam)):
        raise ValueError(f"--lam must be a finite number >= 0, got {lam}")
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"--keep must lie in (0, 1], got {keep}")


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo)")
    parser.add_argument("--quick", action="store_true", default=None,
                        help="tiny run (< 1 min); also set by STRUCSPARS_QUICK=1")
    parser.add_argument("--data-root", default=None,
                        help="CIFAR-10 root (default: $STRUCSPARS_DATA, ./data, else the bundled sample; a named "
                             "root that does not hold CIFAR-10 is an error)")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default 4; quick: 1)")
    parser.add_argument("--train-images", type=int, default=None, help="training images (default 1024; quick: 192)")
    parser.add_argument("--lam", type=float, default=6e-3,
                        help="regularisation strength (default 6e-3: large, so that a few epochs show blocks)")
    parser.add_argument("--keep", type=float, default=0.9, help="kept L1 fraction p of the criterion (default 0.9)")
    parser.add_argument("--layer", default="layer3.0.conv2", help="the conv layer to follow (default layer3.0.conv2)")
    parser.add_argument("--seed", type=int, default=0)


def demo_main(args: argparse.Namespace) -> int:
    quick = quick_mode() if args.quick is None else bool(args.quick)
    run_demo(args.out, quick=quick, data_root=args.data_root, epochs=args.epochs, train_images=args.train_images,
             lam=args.lam, keep=args.keep, layer=args.layer, seed=args.seed)
    return 0


# the CLI looks for add_<name>_arguments / <name>_main first
add_arguments = add_demo_arguments
main = demo_main


if __name__ == "__main__":
    p = argparse.ArgumentParser(prog="strucspars-viz demo")
    add_demo_arguments(p)
    sys.exit(demo_main(p.parse_args()))
