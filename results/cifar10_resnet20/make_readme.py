"""Write README.md of this folder from the two runs' summary.json / metrics.jsonl / config.json.

Run from the repository root:  .venv/bin/python results/cifar10_resnet20/make_readme.py
"""
from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent


def load(name: str):
    d = HERE / name
    cfg = json.loads((d / "config.json").read_text()) if (d / "config.json").exists() else None
    summ = json.loads((d / "summary.json").read_text()) if (d / "summary.json").exists() else None
    recs = [json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines() if x.strip()] if (d / "metrics.jsonl").exists() else []
    return cfg, summ, recs


def pct(x):
    return "n/a" if x is None else f"{100 * x:.2f}"


def main() -> None:
    sp_cfg, sp, sp_recs = load("strucspars_50")
    de_cfg, de, de_recs = load("dense")
    commands = (HERE / "commands.sh").read_text().strip()
    total_sp = (sp_cfg["sparsify_epochs"] + sp_cfg["finetune_epochs"]) if sp_cfg else None
    minutes = lambda recs: sum(r["time"] for r in recs) / 60 if recs else 0.0  # noqa: E731
    lines = [
        "# ResNet-20 on CIFAR-10: StrucSpars at a 50% target vs. the dense baseline (2-core CPU, reduced schedule)",
        "",
        "Produced by `strucspars-viz train` (the single-module trainer that preceded `strucspars_viz/training/`) on",
        "**full CIFAR-10** (50,000 train / 10,000 test images; a rebuilt copy whose pixels match the official files",
        "for 99.8% of images, see its README). The data root follows the package's convention: `--data-root",
        "$STRUCSPARS_DATA`, the folder holding `cifar-10-batches-py` (in this workspace `../shared/data/cifar10`,",
        "relative to the repository root). Hardware: a shared **2-core CPU, no GPU**; the two runs ran at the same",
        "time with one thread each (`--threads 1`, channels-last), next to other jobs on the machine.",
        "",
        "## Commands (from the repository root)",
        "",
        "```",
        commands,
        "```",
        "",
        "## Schedule (reduced; the paper's is 100 + 160 epochs)",
        "",
    ]
    if sp_cfg:
        lines += [
            f"* **StrucSpars-50%**: {sp_cfg['initial_rounds']} initial P/Q rounds; sparsification phase of "
            f"{sp_cfg['sparsify_epochs']} epochs ({sp_cfg['warmup_epochs']} warm-up epoch with lam = 0), SGD momentum "
            f"{sp_cfg['momentum']}, weight decay {sp_cfg['sparsify_weight_decay']}, constant lr {sp_cfg['lr']}, "
            f"{sp_cfg['epoch_rounds']} P/Q rounds + group update + lambda-controller step after every epoch, "
            f"keep p = {sp_cfg['keep']}, decay {sp_cfg['decay']}; then bisection to the target, masks, and "
            f"{sp_cfg['finetune_epochs']} finetuning epochs (lr {sp_cfg['finetune_lr']}, x0.1 at 50% and 75% of "
            f"them, rounded: after finetuning epochs {max(1, round(0.5 * sp_cfg['finetune_epochs']))} and "
            f"{max(1, round(0.75 * sp_cfg['finetune_epochs']))}; weight decay {sp_cfg['weight_decay']}); batch {sp_cfg['batch_size']} (paper: 64); "
            "pad-4 crop + flip augmentation.",
            f"* **lam0 = dlam = {sp_cfg['dlam']:g}** instead of the paper's 2e-6: lam only grows by dlam per epoch, "
            f"and with {sp_cfg['sparsify_epochs'] - sp_cfg['warmup_epochs']} controller epochs (paper: 90) the paper's "
            "value would leave the regulariser inert. This scaling (100x) is our choice, not the paper's.",
        ]
    if de_cfg:
        lines.append(
            f"* **Dense baseline** (`--mode dense`): the same model, data, seed and schedule "
            f"({de_cfg['sparsify_epochs']} epochs lr {de_cfg['lr']} / wd {de_cfg['sparsify_weight_decay']}, then "
            f"{de_cfg['finetune_epochs']} epochs lr {de_cfg['finetune_lr']} stepped x0.1 at 50%/75%, wd "
            f"{de_cfg['weight_decay']}), with no regulariser, no permutations and no masks.")
    lines += ["", "Both runs use seed 0; their first epoch (lam = 0 during the warm-up) is bit-identical, as it "
              "should be.", "", "Both schedules are far too short for converged CIFAR accuracy: compare the two rows with each",
              "other, not with the paper.", "", "## Results (ours)", ""]
    lines += ["| model | params | MACs (32x32) | top-1 % | top-5 % | epochs | wall time (runs concurrent) |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    if de:
        lines.append(f"| ResNet-20 dense baseline | {de['params']:,} | {de['macs'] / 1e6:.2f} M | {pct(de['top1'])} | "
                     f"{pct(de['top5'])} | {len(de_recs)} | {minutes(de_recs):.0f} min |")
    elif de_recs:
        lines.append(f"| ResNet-20 dense baseline (**unfinished**: {len(de_recs)} epochs done) | | | "
                     f"{pct(de_recs[-1]['top1'])} (last epoch) | | {len(de_recs)} | {minutes(de_recs):.0f} min |")
    if sp:
        lines.append(f"| ResNet-20 StrucSpars-50%, compressed | {sp['params']:,} | {sp['macs'] / 1e6:.2f} M | "
                     f"{pct(sp['top1_compressed'])} | {pct(sp['top5_compressed'])} | {len(sp_recs)} | "
                     f"{minutes(sp_recs):.0f} min |")
    elif sp_recs:
        lines.append(f"| ResNet-20 StrucSpars-50% (**unfinished**: {len(sp_recs)}/{total_sp} epochs) | | | "
                     f"{pct(sp_recs[-1]['top1'])} (last epoch, phase {sp_recs[-1]['phase']}) | | {len(sp_recs)} | "
                     f"{minutes(sp_recs):.0f} min |")
    if sp:
        rt = sp.get("reach_target") or {}
        lines += [
            "",
            "StrucSpars run, step by step:",
            "",
            f"* model sparsity (fraction of sparsified-conv weights removed, SPEC §3): **{sp['sparsity']:.4f}** "
            f"(target {sp['target']}; bisection keep = {rt.get('keep', float('nan')):.4f}, exact = {rt.get('exact')})"
            + ("" if rt.get("exact", True) else
               ". `reach_target` could not land in [target, target + 0.01]: in ResNet-20 one layer moving from G to 2G "
               "changes model sparsity by up to ~7%, so the closest reachable sparsity >= 0.5 it found is reported as is"),
            f"* sparsity reached by the regulariser alone at keep = {sp_cfg['keep']} before the bisection: "
            f"{sp_recs[sp_cfg['sparsify_epochs'] - 1]['sparsity']:.4f}" if len(sp_recs) >= sp_cfg["sparsify_epochs"] else None,
            f"* top-1 of the dense model at the end of the sparsification phase (before masking): "
            f"{pct(sp['top1_dense_before_masking'])}%",
            f"* top-1 right after masking (before finetuning): {pct(sp['top1_masked_before_finetune'])}%",
            f"* top-1 after finetuning (masked dense model): {pct(sp['top1_finetuned'])}%; compressed model: "
            f"{pct(sp['top1_compressed'])}%",
            f"* parameters {sp['params_dense']:,} -> {sp['params']:,} ({100 * sp['params_ratio']:.1f}%), "
            f"MACs {sp['macs_dense'] / 1e6:.2f} M -> {sp['macs'] / 1e6:.2f} M ({100 * sp['macs_ratio']:.1f}%); "
            "stem, BN and classifier are not sparsified",
            f"* equivalence: max |masked dense - compressed| output on a test batch = {sp['equivalence_max_diff']:.2e} "
            f"(required < 1e-4: {sp['equivalence_ok']}); masked weights exactly zero after finetuning: "
            f"{sp['masked_weights_exactly_zero']}",
            "* per-layer groups: " + ", ".join(f"`{k}` {v}" for k, v in sp["groups"].items()),
            "* lambda controller (after each sparsification epoch): " + "; ".join(f"ep {h['epoch']}: s={h['sparsity']:.3f} {h['action']} -> {h['lam']:.1e}"
                                               for h in sp["lambda_history"]),
        ]
        lines = [x for x in lines if x is not None]
    if sp_recs or de_recs:
        lines += ["", "Per epoch (test top-1 %; `lam` used in the epoch; model sparsity at keep during sparsification, "
                  "the final masked sparsity during finetuning):", "",
                  "| epoch | phase | lr | dense top-1 | StrucSpars top-1 | lam | sparsity |", "|---:|---|---:|---:|---:|---:|---:|"]
        for i in range(max(len(sp_recs), len(de_recs))):
            r = sp_recs[i] if i < len(sp_recs) else None
            d = de_recs[i] if i < len(de_recs) else None
            ref = r or d
            lines.append(f"| {ref['global_epoch']} | {ref['phase']} | {ref['lr']:g} | {pct(d['top1']) if d else ''} | "
                         f"{pct(r['top1']) if r else ''} | {r['lam']:.1e} | {r['sparsity']:.4f} |" if r else
                         f"| {ref['global_epoch']} | {ref['phase']} | {ref['lr']:g} | {pct(d['top1'])} | | | |")
    lines += [
        "",
        "## The paper's CIFAR-10 numbers (SPEC §8; authors' own runs, full schedule, GPU) - not ours",
        "",
        "| model (paper) | params | MACs | top-1 % |",
        "|---|---:|---:|---:|",
        "| ResNet-56 StrucSpars-50% (paper) | 0.296 M | 48 M | 93.70 |",
        "| ResNet-20 (paper) | 0.176 M | n/a | 91.79 |",
        "",
        "## Files",
        "",
        "* `commands.sh`: the exact commands; `../../configs/cifar10_resnet20_50_cpu.yaml`, "
        "`../../configs/cifar10_resnet20_dense_cpu.yaml`: the configs",
        "* `<run>/config.json` (resolved configuration), `<run>/metrics.jsonl` (one line per epoch), "
        "`<run>/summary.json`, `<run>/train.log`, `<run>/layer_norms.npz` (S of `layer3.2.conv2` per epoch), "
        "`<run>/compressed_model.pt` (state dict; for StrucSpars with the sparsifier state to rebuild the grouped model)",
        "* `make_readme.py`: regenerates this file from the run folders",
        "",
        "**Old format.** These folders were written by the trainer before `strucspars_viz/training/` replaced it",
        "(the runs were not repeated). What that means when reading them:",
        "",
        "* `config.json` and `summary.json` record the data folder as it was on the machine that made the runs",
        "  (`data_root`, `data.source`); use your own `$STRUCSPARS_DATA` to repeat them. `config.json` loads with",
        "  `TrainConfig.from_dict` (it lacks only `overwrite`, which defaults to false).",
        "* `layer_norms.npz` has no `lam` / `sparsity` arrays: `strucspars_viz.trace.LayerTrace.load(<run>)`",
        "  completes them from `metrics.jsonl` beside it.",
        "* `compressed_model.pt` loads with `torch.load(..., weights_only=True)` and",
        "  `strucspars_viz.training.artifacts.read_weights` (no `.sha256` sidecar: written before checksums).",
        "* The runs' `checkpoint.pt` files (checkpoint format 1: NumPy RNG state pickled, no checksum) were once",
        "  committed here; they do not load with `weights_only=True`, so the trainer could never `--resume` them,",
        "  and they were removed from the folder. There are no `sparsified.pt` / `final.pt` files (they did not",
        "  exist then).",
        "* `SHA256SUMS` lists every file of this folder (`sha256sum -c SHA256SUMS`, or",
        "  `strucspars-viz manifest results/cifar10_resnet20`); notebooks 04 and 08 check it before drawing.",
    ]
    (HERE / "README.md").write_text("\n".join(lines) + "\n")
    print((HERE / "README.md").read_text())


if __name__ == "__main__":
    main()
