"""StrucSpars vs Torch-Pruning at equal MACs: who turns fewer MACs into less wall time (issue 12).

Prints, from ONE interleaved run (every configuration times dense, StrucSpars and Torch-Pruning in
rotated rounds, so load from other processes hits all three alike):

    ratio = (StrucSpars speed-up over dense) / (Torch-Pruning speed-up over dense)
          = t_TorchPruning / t_StrucSpars     (same configuration: the dense time cancels)

at each batch size, for eager NCHW and for the best deploy path (each model at its own fastest of
the timed paths: eager NCHW / channels_last, ``deploy`` (strucspars_viz.deploy), ``deploy-compile``,
ONNX Runtime). Goal: >= 0.9 on the best path. GPU numbers are not measured by this script unless
``--device cuda`` is given on a machine that has one.

    python benchmarks/bench_deploy_speed.py                       # ResNet-50 at 224, 65 %, batch 1 and 16
    python benchmarks/bench_deploy_speed.py --quick               # CIFAR ResNet-56, few rounds
    python benchmarks/bench_deploy_speed.py --backends eager,deploy,deploy-compile,onnxruntime --out results/timing/bench
"""
from __future__ import annotations

import argparse
from collections import defaultdict

import torch

from strucspars_viz.timing import run_sweep, save_sweep
from strucspars_viz.timing.sweep import configs_for, parse_list
from strucspars_viz.timing.variants import build_variants


def ratios(summary: list[dict], batches) -> dict[int, dict[str, tuple[float, str, str]]]:
    """Per batch: ``eager`` (eager NCHW fp32) and ``best`` ratios with the paths that produced them."""
    t: dict[tuple[int, str], dict[str, float]] = defaultdict(dict)
    for r in summary:
        if r["status"] == "ok":
            t[(r["batch"], r["family"])][f"{r['backend']}/{r['layout']}"] = r["median_ms"]
    out = {}
    for b in batches:
        ss, tp, dense = t[(b, "strucspars")], t[(b, "torchpruning")], t[(b, "dense")]
        res = {}
        if "eager/nchw" in ss and "eager/nchw" in tp:
            res["eager"] = (tp["eager/nchw"] / ss["eager/nchw"], "eager/nchw", "eager/nchw")
        if ss and tp:
            bs, bt = min(ss, key=ss.get), min(tp, key=tp.get)
            res["best"] = (tp[bt] / ss[bs], bs, bt)
            if dense:
                bd = min(dense, key=dense.get)
                res["speedups"] = (dense[bd] / ss[bs], dense[bd] / tp[bt], bd)
        out[b] = res
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="registered model (default resnet50; --quick resnet56)")
    p.add_argument("--target", type=int, default=65, help="StrucSpars sparsity in %% (Torch-Pruning matches its MACs)")
    p.add_argument("--batch", default="1,16")
    p.add_argument("--layouts", default="nchw,cl")
    p.add_argument("--backends", default="eager,deploy,onnxruntime")
    p.add_argument("--repeats", type=int, default=None, help="rounds per configuration (default 15; quick 5)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (1 is steadier on a shared machine)")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default=None, help="also write the sweep's CSVs and figure here")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    model = a.model or ("resnet56" if a.quick else "resnet50")
    batches = parse_list(a.batch, "--batch", int)
    variants = build_variants([f"{model}:dense", f"{model}:ss{a.target}", f"{model}:tp{a.target}"])
    for v in variants:
        print(f"{v.name:<18} {v.params / 1e6:7.3f} M params {v.macs / 1e9:7.4f} G MACs")
    configs = configs_for(batches, parse_list(a.layouts, "--layouts"), ["fp32"], parse_list(a.backends, "--backends"))
    repeats = a.repeats or (5 if a.quick else 15)
    res = run_sweep(variants, configs, repeats=repeats, warmup=2, device=a.device, memory=False)
    for r in res.summary:
        extra = f"  x{r['speedup']:.2f} (paired x{r['speedup_paired']:.2f})" if r.get("speedup") else ""
        state = f"{r['median_ms']:9.2f} ms IQR {r['iqr_ms']:6.2f}{extra}" if r["status"] == "ok" else r["status"]
        print(f"{r['variant']:<18} b{r['batch']:<3} {r['backend']:<15} {r['layout']:<4} {state}  load {r['load1_start']:.1f}")
    print(f"\nratio = (StrucSpars speed-up) / (Torch-Pruning speed-up), {model}, {a.target} %, goal >= 0.9")
    for b, res_b in ratios(res.summary, batches).items():
        if "eager" in res_b:
            print(f"  batch {b:<3} eager NCHW: {res_b['eager'][0]:.2f}")
        if "best" in res_b:
            r, ps, pt = res_b["best"]
            sp = res_b.get("speedups")
            tail = f" (speed-ups over dense at its best {sp[2]}: {sp[0]:.2f}x vs {sp[1]:.2f}x)" if sp else ""
            print(f"  batch {b:<3} best path: {r:.2f}  [StrucSpars {ps}, Torch-Pruning {pt}]{tail}")
    if a.out:
        save_sweep(a.out, res, figure=True)


if __name__ == "__main__":
    main()
