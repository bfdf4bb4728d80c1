import itertools

import numpy as np
import pytest

import strucspars_viz as sv
from strucspars_viz import planted_matrix


def off_block_mass(s, groups):
    return float((s * (1 - sv.block_mask(*s.shape, groups))).sum())


@pytest.mark.parametrize("cout,cin,groups", [(32, 32, 4), (32, 32, 2), (64, 16, 4), (16, 64, 8), (64, 64, 32), (128, 64, 16)])
def test_planted_structure_recovered_noise_free(cout, cin, groups):
    rng = np.random.default_rng(cout * 7 + groups)
    for _ in range(10):
        s, _, _ = planted_matrix(cout, cin, groups, seed=rng)
        p, q, _ = sv.learn_permutations(s)
        assert off_block_mass(s[p][:, q], groups) < 1e-9


@pytest.mark.parametrize("cout,cin,groups", [(32, 32, 4), (64, 64, 8), (64, 256, 16)])
def test_planted_group_count_under_mild_noise(cout, cin, groups):
    rng = np.random.default_rng(groups)
    for _ in range(5):
        s, _, _ = planted_matrix(cout, cin, groups, noise=0.01, seed=rng)
        p, q, _ = sv.learn_permutations(s)
        assert sv.groups_for(s[p][:, q], keep=0.9) == groups


def test_paper_alternation_is_selectable_and_default_beats_it():
    rng = np.random.default_rng(0)
    stuck = 0
    for _ in range(30):
        s, _, _ = planted_matrix(32, 32, 4, seed=rng)
        p, q, hist = sv.learn_permutations(s, init="identity")
        assert hist[0].half == "start" and np.array_equal(hist[0].row_perm, np.arange(32))
        stuck += off_block_mass(s[p][:, q], 4) > 1e-9
        pd, qd, hd = sv.learn_permutations(s)
        assert hd[-1].objective <= hist[-1].objective + 1e-9
    assert stuck > 0, "plain alternation from the identity is known to stall on some scrambled matrices"


@pytest.mark.parametrize("method", ["lsa", "emd", "cvxpy"])
def test_history_monotone_and_consistent(method):
    rng = np.random.default_rng(5)
    s = rng.uniform(size=(16, 8))
    p, q, hist = sv.learn_permutations(s, iters=5, method=method, init="random")
    objs = [h.objective for h in hist]
    assert all(b <= a for a, b in zip(objs, objs[1:]))
    assert [h.half for h in hist[1:3]] == ["P", "Q"]
    for h in hist:
        assert h.objective == pytest.approx(sv.objective(s, h.row_perm, h.col_perm))
    np.testing.assert_array_equal(hist[-1].row_perm, p)


def test_half_steps_are_exact_block_coordinate_minima():
    # Brute force: after a P-step no row permutation (Q fixed) does better; same for Q.
    rng = np.random.default_rng(7)
    s = rng.uniform(size=(4, 4))
    _, _, hist = sv.learn_permutations(s, iters=1, init="identity")
    after_p = hist[1]
    best_p = min(sv.objective(s, list(pp), after_p.col_perm) for pp in itertools.permutations(range(4)))
    assert after_p.objective == pytest.approx(best_p)
    after_q = hist[2]
    best_q = min(sv.objective(s, after_q.row_perm, list(qq)) for qq in itertools.permutations(range(4)))
    assert after_q.objective == pytest.approx(best_q)


def test_solvers_agree_on_objective():
    rng = np.random.default_rng(11)
    s, _, _ = planted_matrix(16, 16, 4, noise=0.2, seed=rng)
    objs = [sv.learn_permutations(s, iters=3, method=m, init="spectral")[2][-1].objective for m in ("lsa", "emd", "cvxpy")]
    assert max(objs) - min(objs) < 1e-8


def test_warm_start_and_odd_channels():
    s = np.random.default_rng(0).uniform(size=(8, 8))
    p, q, _ = sv.learn_permutations(s, iters=3)
    p2, q2, hist = sv.learn_permutations(s, iters=3, init=(p, q))
    np.testing.assert_array_equal(hist[0].row_perm, p)
    assert hist[-1].objective <= hist[0].objective
    p, q, hist = sv.learn_permutations(np.ones((3, 8)))
    assert np.array_equal(p, np.arange(3)) and len(hist) == 1
    with pytest.raises(ValueError, match="permutation of range"):
        sv.learn_permutations(s, init=([0, 0, 1, 2, 3, 4, 5, 6], np.arange(8)))
    with pytest.raises(ValueError, match="NaN"):
        sv.learn_permutations(np.full((4, 4), np.nan))


def test_shufflenet_permutation_definition():
    c, g = 12, 3
    n = c // g
    perm = sv.shufflenet_permutation(c, g)
    for i in range(g):
        for j in range(n):
            assert perm[j * g + i] == i * n + j
    np.testing.assert_array_equal(sv.inverse_permutation(perm), sv.shufflenet_permutation(c, n))


@pytest.mark.parametrize("cout,cin,groups,match", [
    (64, 64, 7, "power of two.*got 7"),
    (63, 64, 8, "groups=8 does not divide.*Cout=63"),
    (64, 64, 128, "groups=128 does not divide"),
    (64, 64, 0, "power of two.*got 0"),
])
def test_planted_matrix_rejects_impossible_block_structures(cout, cin, groups, match):
    with pytest.raises(ValueError, match="planted matrix: .*" + match):
        planted_matrix(cout, cin, groups)


@pytest.mark.parametrize("decay", [0, 2, -0.5, float("nan")])
def test_learn_permutations_rejects_decay_outside_unit_interval(decay):
    s, _, _ = planted_matrix(16, 16, 4, seed=0)
    with pytest.raises(ValueError, match=r"decay must lie in \(0, 1\]"):
        sv.learn_permutations(s, iters=1, decay=decay)
    sv.learn_permutations(s, iters=1, decay=1.0)  # the closed end is allowed


def test_fixed_shuffles_are_the_spec_set():
    from strucspars_viz.permutation import SHUFFLES, fixed_shuffle

    assert SHUFFLES == ("learned", "shufflenet", "random", "none")
    p, q = fixed_shuffle("shufflenet", 8, 16, 4)
    # slot j*g + i takes channel i*n + j (ShuffleNet's reshape-transpose-flatten)
    assert p.tolist() == [0, 2, 4, 6, 1, 3, 5, 7]
    assert q.tolist() == np.arange(16).reshape(4, 4).T.reshape(-1).tolist()
    assert fixed_shuffle("shufflenet", 64, 64)[0].tolist() == sv.shufflenet_permutation(64, 4).tolist()  # g = min(4, 2^L)
    p, q = fixed_shuffle("random", 8, 16, seed=3)
    assert sorted(p.tolist()) == list(range(8)) and sorted(q.tolist()) == list(range(16))
    assert p.tolist() == np.random.default_rng(3).permutation(8).tolist()
    assert fixed_shuffle("random", 8, 16, seed=3)[0].tolist() == p.tolist()  # deterministic
    p, q = fixed_shuffle("none", 4, 2)
    assert p.tolist() == [0, 1, 2, 3] and q.tolist() == [0, 1]
    with pytest.raises(ValueError, match="not fixed.*learn_permutations"):
        fixed_shuffle("learned", 8, 8, 2)
    with pytest.raises(ValueError, match="unknown shuffle 'butterfly'"):
        fixed_shuffle("butterfly", 8, 8, 2)
    with pytest.raises(ValueError, match="must divide both"):
        fixed_shuffle("shufflenet", 8, 12, 8)
