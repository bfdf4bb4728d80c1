"""The latency-aware target against brute force over every group assignment of a tiny model."""
import itertools

import numpy as np
import pytest
import torch
from torch import nn

import strucspars_viz as sv
from strucspars_viz.timing.latency import (
    admissible_groups, latency_search, latency_target, measure_latency_table, predicted_latency,
)


def _keep_of(groups, fractions):
    vals = [fractions[n][g] for n, g in groups.items() if g > 1]
    return min(vals) if vals else 1.0


def _synthetic(seed, layers=3, levels=3, monotone=False):
    rng = np.random.default_rng(seed)
    fractions, table, sizes = {}, {}, {}
    for i in range(layers):
        name = f"l{i}"
        gs = [2 ** k for k in range(levels)]
        f = np.sort(rng.uniform(0.2, 1.0, levels - 1))[::-1]
        fractions[name] = {1: 1.0, **{g: float(v) for g, v in zip(gs[1:], f)}}
        t = np.sort(rng.uniform(1, 10, levels))[::-1] if monotone else rng.uniform(1, 10, levels)
        table[name] = {g: float(v) for g, v in zip(gs, t)}
        sizes[name] = int(rng.integers(10, 100))
    return fractions, sizes, table


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("monotone", [True, False])
def test_latency_search_maximises_keep_like_brute_force(seed, monotone):
    fractions, sizes, table = _synthetic(seed, monotone=monotone)
    fixed = 2.0
    names = list(fractions)
    every = [dict(zip(names, gs)) for gs in itertools.product(*[sorted(fractions[n]) for n in names])]
    lats = sorted(predicted_latency(a, table, fixed) for a in every)
    for budget in np.linspace(lats[0], lats[-1], 7):
        res = latency_search(fractions, sizes, table, budget, fixed)
        feasible = [a for a in every if predicted_latency(a, table, fixed) <= budget + 1e-12]
        assert res.met and res.latency <= budget + 1e-12
        assert res.latency == pytest.approx(predicted_latency(res.groups, table, fixed))
        assert _keep_of(res.groups, fractions) == pytest.approx(max(_keep_of(a, fractions) for a in feasible))


def test_latency_search_unreachable_budget_and_errors():
    fractions, sizes, table = _synthetic(0)
    res = latency_search(fractions, sizes, table, budget=1e-9)
    assert not res.met
    fastest = {n: min(table[n], key=table[n].get) for n in table}
    assert res.latency == pytest.approx(predicted_latency(fastest, table))
    with pytest.raises(ValueError, match="lacks entries"):
        latency_search(fractions, sizes, {"l0": table["l0"]}, budget=1.0)
    with pytest.raises(ValueError, match="> 0"):
        latency_search(fractions, sizes, table, budget=0.0)


def test_monotone_tables_follow_reach_target_order():
    """With latency falling in G, the scan takes exactly the criterion's promotions, in order."""
    fractions, sizes, table = _synthetic(3, layers=4, levels=3, monotone=True)
    order = sorted(((f, sizes[n], g, n) for n, fr in fractions.items() for g, f in fr.items() if g > 1),
                   key=lambda c: (-c[0], c[1], c[2]))
    for k in range(1, len(order) + 1):
        prefix = {n: 1 for n in fractions}
        for _, _, g, n in order[:k]:
            prefix[n] = g
        res = latency_search(fractions, sizes, table, predicted_latency(prefix, table) + 1e-9)
        # stops at the first prefix within the budget (an earlier one may already fit)
        assert predicted_latency(res.groups, table) <= predicted_latency(prefix, table) + 1e-9


class _Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.a = nn.Conv2d(8, 8, 1)
        self.b = nn.Conv2d(8, 8, 1)  # same signature as a: measured once

    def forward(self, x):
        return self.b(self.a(self.stem(x)))


def test_measure_latency_table_caches_per_signature(tmp_path):
    sp = sv.StructuredSparsifier(_Tiny())
    calls = []

    def timer(fn, device):
        calls.append(1)
        fn()
        return 1e-3 * (1 + len(calls) % 3)

    x = torch.randn(1, 3, 4, 4)
    table = measure_latency_table(sp, x, cache_dir=tmp_path, repeats=2, timer=timer)
    assert set(table) == {"a", "b"} and table["a"] == table["b"]
    assert set(table["a"]) == set(admissible_groups(8, 8))
    n = len(calls)
    assert n == 2 * len(admissible_groups(8, 8))  # one signature, every G, two rounds
    assert measure_latency_table(sp, x, cache_dir=tmp_path, repeats=2, timer=timer) == table
    assert len(calls) == n  # second call: all from the cache
    measure_latency_table(sp, torch.randn(2, 3, 4, 4), cache_dir=tmp_path, repeats=1, timer=timer)
    assert len(calls) > n  # a new batch size is a new signature
    res = latency_target(sp, table, budget=predicted_latency({"a": 1, "b": 1}, table) * 0.99)
    assert res.met and sp.groups() == res.groups
