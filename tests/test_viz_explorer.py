"""Explorer callbacks (pure functions) and the widget wiring (ipywidgets, no browser)."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from strucspars_viz import kept_fractions, objective, random_permutation, shufflenet_permutation  # noqa: E402
from strucspars_viz import planted_matrix  # noqa: E402
from strucspars_viz.viz.explorer import explore_state, regroup, render  # noqa: E402


@pytest.fixture(scope="module")
def planted():
    s, row, col = planted_matrix(32, 32, 4, noise=0.02, seed=5)
    return s, row, col


def _planted_blocks(row, col, cout, cin, groups):
    """Block id of every original row / column of the scrambled matrix."""
    rb = np.empty(cout, int)
    cb = np.empty(cin, int)
    rb[np.arange(cout)] = row // (cout // groups)  # scrambled row a holds planted row row[a]
    cb[np.arange(cin)] = col // (cin // groups)
    return rb, cb


@pytest.mark.parametrize("solver", ["lsa", "emd", "cvxpy"])
def test_learned_shuffle_finds_the_planted_groups(planted, solver):
    s, row, col = planted
    st = explore_state(s, keep=0.9, solver=solver, shuffle="learned")
    assert st["groups"] == 4
    # every learned block holds rows (columns) of exactly one planted block, matched to each other
    rb, cb = _planted_blocks(row, col, 32, 32, 4)
    for r in range(4):
        rows = rb[st["row_perm"][r * 8:(r + 1) * 8]]
        cols = cb[st["col_perm"][r * 8:(r + 1) * 8]]
        assert len(set(rows)) == 1 and set(rows) == set(cols)
    assert st["objective"] < st["objective_input"]
    assert st["history"] is not None and st["history"][-1].objective == pytest.approx(st["objective"])


def test_other_shuffles_give_the_documented_permutations(planted):
    s, _, _ = planted
    sn = explore_state(s, shuffle="shufflenet", shuffle_groups=4)
    np.testing.assert_array_equal(sn["row_perm"], shufflenet_permutation(32, 4))
    np.testing.assert_array_equal(sn["col_perm"], shufflenet_permutation(32, 4))
    assert sn["history"] is None and sn["shuffle_groups"] == 4
    assert explore_state(s, shuffle="shufflenet")["shuffle_groups"] == 4  # default min(4, 2^L)
    rnd = explore_state(s, shuffle="random", seed=3)
    np.testing.assert_array_equal(rnd["row_perm"], random_permutation(32, 3))
    np.testing.assert_array_equal(rnd["col_perm"], random_permutation(32, 4))
    none = explore_state(s, shuffle="none")
    np.testing.assert_array_equal(none["row_perm"], np.arange(32))
    assert none["objective"] == pytest.approx(objective(s, np.arange(32), np.arange(32)))
    # none of these find the scrambled blocks
    assert max(sn["groups"], rnd["groups"], none["groups"]) == 1
    with pytest.raises(ValueError, match="shuffle"):
        explore_state(s, shuffle="butterfly")


def test_regroup_is_cheap_and_consistent(planted):
    s, _, _ = planted
    st = explore_state(s, keep=0.9)
    lo = regroup(st, 0.5)
    assert lo["row_perm"] is st["row_perm"] and lo["keep"] == 0.5  # no re-solve
    assert lo["groups"] >= st["groups"]
    fr = kept_fractions(s[st["row_perm"]][:, st["col_perm"]])
    assert lo["fractions"] == fr and lo["kept_fraction"] == fr[lo["groups"]]
    # the mask in weight order is U_G un-permuted
    p_inv, q_inv = np.argsort(st["row_perm"]), np.argsort(st["col_perm"])
    np.testing.assert_array_equal(st["weight_mask"], st["mask"][p_inv][:, q_inv])
    assert st["mask"].sum() == 32 * 32 / st["groups"]
    assert st == {**st}  # plain dict
    assert regroup(st, 0.9)["groups"] == st["groups"]


def test_render_figure(planted):
    s, _, _ = planted
    before = plt.get_fignums()
    st = explore_state(s, keep=0.9)
    fig = render(st)
    titles = [ax.get_title() for ax in fig.axes[:4]]
    assert "S' = S[P][:, Q]" in titles[1] and f"f(G) = {st['kept_fraction']:.3f}" in titles[1]
    assert f"G = {st['groups']}" in titles[2] and f"chosen G = {st['groups']}" in titles[3]
    assert f"J = {st['objective']:.4g}" in fig.get_suptitle()
    assert len(fig.axes) == 5  # four panels + colour bar
    assert plt.get_fignums() == before


def test_widget_keep_slider_regroups_without_solving(planted, monkeypatch):
    pytest.importorskip("ipywidgets")
    from strucspars_viz.viz import explorer as ex

    s, _, _ = planted
    exp = ex.Explorer({"planted": {"32x32": s}})
    first = exp.state
    calls = []
    monkeypatch.setattr(ex, "learn_permutations", lambda *a, **k: calls.append(1) or (_ for _ in ()).throw(AssertionError))
    exp.controls["keep"].value = 0.5
    assert calls == [] and exp.state["keep"] == 0.5 and exp.state["row_perm"] is first["row_perm"]
    exp.controls["decay"].value = 0.7  # learned shuffle: waits for the Solve button
    assert calls == [] and "press Solve" in exp.status.value
    exp.controls["shuffle"].value = "none"  # cheap shuffles recompute at once
    assert exp.state["shuffle"] == "none"
    np.testing.assert_array_equal(exp.state["row_perm"], np.arange(32))
