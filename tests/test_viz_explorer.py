"""Explorer state (strucspars_viz.explore), its figure (viz.explorer.render) and the widget app
(strucspars_viz.explorer, ipywidgets, no browser)."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from strucspars_viz import kept_fractions, objective, random_permutation, shufflenet_permutation  # noqa: E402
from strucspars_viz import planted_matrix  # noqa: E402
from strucspars_viz.explore import explore_state, regroup  # noqa: E402
from strucspars_viz.viz.explorer import render  # noqa: E402


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
    # the weight-order mask is what the sparsifier would apply with these P, Q, G
    from strucspars_viz import StructuredSparsifier
    from torch import nn

    conv = nn.Conv2d(32, 32, 1)
    sp = StructuredSparsifier(nn.Sequential(nn.Conv2d(3, 32, 1), conv))
    sp.set_permutations({"1": (st["row_perm"], st["col_perm"])})
    sp.set_groups({"1": st["groups"]})
    np.testing.assert_array_equal(st["weight_mask"], sp.mask("1")[:, :, 0, 0].numpy())
    # regroup returns a new dict and leaves its input as it was
    snapshot = {k: v for k, v in st.items()}
    assert regroup(st, 0.5) is not st and st["keep"] == 0.9
    assert all(st[k] is snapshot[k] for k in snapshot) and set(st) == set(snapshot)
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
    from strucspars_viz import explore
    from strucspars_viz import explorer as ex

    s, _, _ = planted
    exp = ex.Explorer({"planted": {"32x32": s}})
    first = exp.state
    calls = []
    monkeypatch.setattr(explore, "learn_permutations", lambda *a, **k: calls.append(1) or (_ for _ in ()).throw(AssertionError))
    exp.controls["keep"].value = 0.5
    assert calls == [] and exp.state["keep"] == 0.5 and exp.state["row_perm"] is first["row_perm"]
    exp.controls["decay"].value = 0.7  # learned shuffle: waits for the Solve button
    assert calls == [] and "press Solve" in exp.status.value
    exp.controls["shuffle"].value = "none"  # cheap shuffles recompute at once
    assert exp.state["shuffle"] == "none"
    np.testing.assert_array_equal(exp.state["row_perm"], np.arange(32))


def _sources(planted):
    s, _, _ = planted
    return {"planted": {"32x32": s, "16x16": planted_matrix(16, 16, 4, seed=1)[0]},
            "other": {"layer3.0.conv2": planted_matrix(64, 32, 2, seed=2)[0], "layer3.1.conv1": np.eye(8)}}


@pytest.mark.parametrize("shuffle", ["none", "shufflenet", "random"])
def test_switching_source_with_a_fixed_shuffle_follows_the_new_layers(planted, shuffle):
    """Issue 11: with shuffle none / shufflenet, switching the source raised KeyError: 'layer3.0.conv2'."""
    pytest.importorskip("ipywidgets")
    from strucspars_viz.explorer import Explorer

    exp = Explorer(_sources(planted), shuffle=shuffle)
    exp.controls["source"].value = "other"
    assert list(exp.controls["layer"].options) == ["layer3.0.conv2", "layer3.1.conv1"]
    assert exp.state["S"].shape == (64, 32) and exp.state["name"] == "other / layer3.0.conv2"
    assert exp.state["shuffle"] == shuffle and "error" not in exp.status.value
    exp.controls["layer"].value = "layer3.1.conv1"
    assert exp.state["S"].shape == (8, 8)
    exp.controls["source"].value = "planted"
    assert exp.state["S"].shape == (32, 32) and exp.state["name"] == "planted / 32x32"


def test_learned_shuffle_source_switch_asks_for_solve(planted):
    pytest.importorskip("ipywidgets")
    from strucspars_viz.explorer import Explorer

    exp = Explorer(_sources(planted), shuffle="learned")
    exp.controls["source"].value = "other"
    assert "press Solve" in exp.status.value and exp.state["S"].shape == (32, 32)
    exp.solve()
    assert exp.state["S"].shape == (64, 32)


def test_a_setting_changed_during_a_solve_is_applied_when_it_ends(planted, monkeypatch):
    """Issue 11: picking a shuffle while Solve ran left the dropdown on the new value, the state on the old."""
    pytest.importorskip("ipywidgets")
    from strucspars_viz import explorer as ex

    exp = ex.Explorer(_sources(planted), shuffle="learned")
    real = ex.explore_state
    moved = []

    def slow_solve(*args, **kwargs):
        # a control is disabled while the solve runs ...
        assert exp.controls["shuffle"].disabled and exp.solve_button.disabled
        if not moved:  # ... but a change queued before the lock still arrives
            moved.append(1)
            exp.controls["shuffle"].value = "none"
        return real(*args, **kwargs)

    monkeypatch.setattr(ex, "explore_state", slow_solve)
    exp.solve()
    assert exp.controls["shuffle"].value == "none"
    assert exp.state["shuffle"] == "none"  # re-checked at the end of the solve
    np.testing.assert_array_equal(exp.state["row_perm"], np.arange(32))
    assert not exp.controls["shuffle"].disabled and not exp.busy


def test_shufflenet_hidden_matrix_is_undone_only_by_shufflenet_and_learned():
    from strucspars_viz.explore import shufflenet_hidden

    s = shufflenet_hidden(32, 32, 4, noise=0.0, seed=0)
    groups = {sh: explore_state(s, keep=0.99, shuffle=sh, shuffle_groups=4)["groups"]
              for sh in ("learned", "shufflenet", "random", "none")}
    assert groups == {"learned": 4, "shufflenet": 4, "random": 1, "none": 1}
