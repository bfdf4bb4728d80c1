"""Time of P/Q permutation updates over every sparsifiable layer of ResNet-50 (random weights).

Prints, from one run on this machine:
* one full round (P-step + Q-step on all 52 layers) with ``lsa`` and ``emd``, from the identity and
  warm (after the initial search), and the ratio to the 3 s target;
* ``cvxpy`` (explicit LP, HiGHS) against ``lsa`` on the layers with at most 256 channels;
* the degenerate-slot half-step (2048x512 layer) as scipy's LAPJV on the n x n cost vs. the
  transportation problem over blocks that the library solves instead.

    python benchmarks/bench_permutation_round.py [--skip-initial]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

import strucspars_viz as sv
from strucspars_viz.models import build_model
from strucspars_viz.permutation import block_costs


def one_round(sp: sv.StructuredSparsifier, method: str, names=None) -> float:
    keep = {n: (st.row_perm.copy(), st.col_perm.copy()) for n, st in sp.layers.items()}
    t0 = time.perf_counter()
    for name in names or sp.layers:
        st = sp.layers[name]
        if st.max_groups > 1:
            sv.learn_permutations(sv.norm_matrix(sp.modules[name]), 1, method, sp.decay, init=keep[name])
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-initial", action="store_true", help="skip the 20-round initial search (~40 s)")
    args = parser.parse_args()
    torch.manual_seed(0)
    sp = sv.StructuredSparsifier(build_model("resnet50"))
    print(f"ResNet-50: {len(sp.layers)} sparsifiable convs, torch threads = {torch.get_num_threads()}")

    cold = {m: one_round(sp, m) for m in ("lsa", "emd")}
    print(f"one round from the identity: lsa {cold['lsa']:.2f} s, emd {cold['emd']:.2f} s  (emd/lsa = {cold['emd'] / cold['lsa']:.2f})")
    if not args.skip_initial:
        t0 = time.perf_counter()
        sp.update_permutations(iters=20)
        print(f"initial search (identity + spectral starts, <= 20 rounds each): {time.perf_counter() - t0:.1f} s")
    else:
        sp.update_permutations(iters=3)
    warm = {m: one_round(sp, m) for m in ("lsa", "emd")}
    print(f"one warm round (per-epoch update): lsa {warm['lsa']:.2f} s, emd {warm['emd']:.2f} s")
    print(f"  target < 3 s: lsa warm round / 3 s = {warm['lsa'] / 3.0:.2f}, from identity / 3 s = {cold['lsa'] / 3.0:.2f}")

    small = [n for n, st in sp.layers.items() if max(st.cout, st.cin) <= 256 and st.max_groups > 1]
    t_lsa, t_cvx = one_round(sp, "lsa", small), one_round(sp, "cvxpy", small)
    print(f"layers <= 256 channels ({len(small)}): lsa {t_lsa:.2f} s, cvxpy/HiGHS {t_cvx:.2f} s  (cvxpy/lsa = {t_cvx / t_lsa:.1f})")

    w = sp.modules["layer4.0.conv3"].weight  # 2048 x 512: finest blocks hold 4 rows each
    s = sv.as_matrix(sv.norm_matrix(w))
    y = s.reshape(2048, 512, 1).sum(2).T
    cost = block_costs(y, 0.5)
    full = np.repeat(cost, 4, axis=0)
    t0 = time.perf_counter()
    _, cols = linear_sum_assignment(full)
    t_full = time.perf_counter() - t0
    t0 = time.perf_counter()
    bins = sv.birkhoff.solve_transport(cost.T, 4)
    t_tr = time.perf_counter() - t0
    same = np.isclose(full[np.arange(2048), cols].sum(), cost[bins, np.arange(2048)].sum())
    print(f"2048x512 P-step: LAPJV on 2048x2048 {t_full:.2f} s vs transport over 512 blocks {t_tr:.2f} s "
          f"(speed-up {t_full / t_tr:.0f}x, same optimum: {same})")


if __name__ == "__main__":
    main()
