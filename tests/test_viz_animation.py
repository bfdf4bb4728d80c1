"""Animations: frame schedule, interpolated motion, final frame = S[P][:, Q], grids, size and speed."""
import time

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.animation import FuncAnimation  # noqa: E402

from strucspars_viz import groups_for, learn_permutations  # noqa: E402
from strucspars_viz import planted_matrix  # noqa: E402
from strucspars_viz.viz import (  # noqa: E402
    animate_permutation,
    animate_training,
    block_segments,
    display_matrix,
    ease,
    frame_schedule,
    permutation_states,
    save_gif,
)


@pytest.fixture(scope="module")
def planted():
    s, _, _ = planted_matrix(16, 16, 4, noise=0.02, seed=0)
    p, q, hist = learn_permutations(s, init="identity")
    assert groups_for(s[p][:, q], 0.9) == 4 and len(hist) > 3
    return s, p, q, hist


def test_frame_schedule_budget_and_order():
    sched = frame_schedule([0.5, 0.0, 0.1, 1.0], max_frames=40)
    assert len(sched) <= 40
    states = [i for i, _ in sched]
    assert states == sorted(states) and states[-1] == 4
    # static transition 1 -> 2 gets no interpolated frames, moving ones at least 3, the largest move the most
    moves = {i: sum(1 for j, t in sched if j == i and t > 0) for i in range(4)}
    assert moves[1] == 0 and min(moves[0], moves[2], moves[3]) >= 3 and moves[3] >= moves[0] >= moves[2]
    assert all(0.0 <= t < 1.0 for _, t in sched)
    # long histories are squeezed into the budget
    assert len(frame_schedule([1.0] * 12, max_frames=60)) <= 60


def test_ease_is_monotone_onto_unit_interval():
    ts = np.linspace(0, 1, 21)
    e = np.array([ease(t) for t in ts])
    assert e[0] == 0.0 and e[-1] == 1.0 and (np.diff(e) > 0).all()


def test_permutation_animation_final_frame_and_interpolation(planted):
    s, p, q, hist = planted
    before = plt.get_fignums()
    anim = animate_permutation(hist, s, keep=0.9, max_display=16, max_frames=40)
    assert isinstance(anim, FuncAnimation)
    assert anim.frame_count == len(anim.schedule) <= 40
    assert len(anim._fig.axes) == 2
    # final frame draws exactly S[P][:, Q] of the last history step (one pixel per channel here)
    anim.update(anim.frame_count - 1)
    np.testing.assert_array_equal(np.asarray(anim.image_artist.get_array()), s[p][:, q])
    title = anim._fig.axes[0].get_title()
    g = groups_for(s[p][:, q], 0.9)
    assert f"G = {g}" in title and "f(G) = " in title and f"J = {hist[-1].objective:.4g}" in title
    np.testing.assert_array_equal(np.reshape(anim.grid_artists[0].get_segments(), (-1, 2, 2)), block_segments(16, 16, g))
    # first frame: the input order (history starts at the identity here)
    anim.update(0)
    np.testing.assert_array_equal(np.asarray(anim.image_artist.get_array()), s)
    # an interpolated frame: rows sit between their old and new slots, values stay within the data range
    k = next(k for k, (_, t) in enumerate(anim.schedule) if 0.3 < t < 0.7)
    i, t = anim.schedule[k]
    a, b = anim.states[i], anim.states[i + 1]
    anim.update(k)
    img = np.asarray(anim.image_artist.get_array())
    e = ease(t)
    rpos = (1 - e) * np.argsort(a.row_perm) + e * np.argsort(b.row_perm)
    cpos = (1 - e) * np.argsort(a.col_perm) + e * np.argsort(b.col_perm)
    lo_r, hi_r = np.minimum(np.argsort(a.row_perm), np.argsort(b.row_perm)), np.maximum(np.argsort(a.row_perm), np.argsort(b.row_perm))
    assert ((rpos >= lo_r) & (rpos <= hi_r)).all()
    np.testing.assert_allclose(np.ma.filled(img, np.nan), display_matrix(s, rpos, cpos, 16), equal_nan=True)
    finite = img[np.isfinite(img)]
    assert finite.min() >= s.min() - 1e-12 and finite.max() <= s.max() + 1e-12
    # a mid-way frame is neither end state (an `or` here passed whenever the two states differ)
    assert not np.array_equal(img, s[a.row_perm][:, a.col_perm]) and not np.array_equal(img, s[b.row_perm][:, b.col_perm])
    # the objective panel highlights one point
    assert len(anim._fig.axes[1].collections[-1].get_offsets()) == 1
    assert plt.get_fignums() == before


def test_spectral_start_is_preceded_by_the_input_order():
    s, _, _ = planted_matrix(32, 32, 4, noise=0.02, seed=2)
    _, _, hist = learn_permutations(s)  # default: the spectral start wins
    states = permutation_states(hist, s)
    assert states[0].label == "input order"
    assert np.array_equal(states[0].row_perm, np.arange(32))
    assert len(states) == len(hist) + 1
    assert len(permutation_states(hist, s, from_input=False)) == len(hist)


def test_animation_is_deterministic(planted):
    s, _, _, hist = planted
    a1 = animate_permutation(hist, s, max_frames=20)
    a2 = animate_permutation(hist, s, max_frames=20)
    assert a1.schedule == a2.schedule
    for k in (0, 7, a1.frame_count - 1):
        a1.update(k), a2.update(k)
        np.testing.assert_array_equal(np.ma.filled(a1.image_artist.get_array(), -1),
                                      np.ma.filled(a2.image_artist.get_array(), -1))


def test_training_animation():
    rng = np.random.default_rng(0)
    mats = [rng.uniform(0.5, 1.0, (8, 8)) * (1 - 0.3 * e * (1 - np.kron(np.eye(2), np.ones((4, 4))))) for e in range(4)]
    perms = [rng.permutation(8) for _ in range(4)]
    anim = animate_training(mats, [0, 1e-3, 2e-3, 2e-3], [0.0, 0.1, 0.3, 0.5], [1, 1, 2, 2],
                            row_perms=perms, col_perms=perms, keep=0.9, layer="l1", max_display=8,
                            normalize=False, scale="linear")
    assert len(anim._fig.axes) == 4  # matrix + lambda, sparsity, G panels
    assert anim.frame_count <= 60
    anim.update(anim.frame_count - 1)
    p = perms[-1]
    np.testing.assert_allclose(np.asarray(anim.image_artist.get_array()), mats[-1][p][:, p])
    assert "epoch 4/4" in anim._fig.axes[0].get_title() and "G = 2" in anim._fig.axes[0].get_title()
    np.testing.assert_array_equal(np.reshape(anim.grid_artists[0].get_segments(), (-1, 2, 2)), block_segments(8, 8, 2))
    with pytest.raises(ValueError, match="entries"):
        animate_training(mats, [0.0], [0.0] * 4, [1] * 4)


@pytest.mark.slow
def test_256_matrix_animates_fast_and_small(tmp_path):
    """The documented budget: 256 x 256, <= 60 frames, a few seconds, a few MB (numbers printed)."""
    s, _, _ = planted_matrix(256, 256, 8, noise=0.03, seed=0)
    _, _, hist = learn_permutations(s, iters=10)
    anim = animate_permutation(hist, s)
    assert anim.frame_count <= 60
    t0 = time.perf_counter()
    html = anim.to_jshtml()
    t_html = time.perf_counter() - t0
    t0 = time.perf_counter()
    gif = save_gif(anim, tmp_path / "a.gif")
    t_gif = time.perf_counter() - t0
    size_gif = gif.stat().st_size
    print(f"\n256x256: {anim.frame_count} frames; to_jshtml {t_html:.1f} s, {len(html) / 1e6:.2f} MB; "
          f"GIF {t_gif:.1f} s, {size_gif / 1e6:.2f} MB")
    assert len(html) < 3e6 and size_gif < 2e6
    assert t_html < 60 and t_gif < 60  # generous: the CI machine is shared; typical 3-8 s


def test_training_animation_uses_the_runs_epoch_numbering():
    """With a trace's epochs/phases the x axis and title follow metrics.jsonl's numbering (init = 0,
    masked sharing the last sparsification epoch), not 1..E."""
    rng = np.random.default_rng(1)
    mats = [rng.uniform(0.5, 1.0, (8, 8)) for _ in range(6)]
    epochs, phases = [0, 1, 2, 2, 3, 4], ["init", "sparsify", "sparsify", "masked", "finetune", "finetune"]
    lam = [0.0, 0.0, 1e-3, 0.0, 0.0, 0.0]
    anim = animate_training(mats, lam, [0.0] * 6, [1, 1, 2, 2, 2, 2], epochs=epochs, phases=phases,
                            max_display=8, max_frames=12, frames_between=1)
    ax_l = anim._fig.axes[1]
    np.testing.assert_array_equal(ax_l.lines[0].get_xdata(), epochs)
    anim.update(anim.frame_count - 1)
    assert "epoch 4/4 (finetune)" in anim._fig.axes[0].get_title()
    # lambda's peak sits at the epoch where it was used (2), not at entry number 3
    assert ax_l.lines[0].get_xdata()[int(np.argmax(ax_l.lines[0].get_ydata()))] == 2
    with pytest.raises(ValueError, match="epochs"):
        animate_training(mats, lam, [0.0] * 6, [1] * 6, epochs=[0, 1])


def test_animation_text_is_legible():
    """No text under 9 pt (12 px at the default dpi 96) in either animation."""
    from matplotlib.text import Text

    rng = np.random.default_rng(2)
    mats = [rng.uniform(size=(8, 8)) for _ in range(3)]
    anim = animate_training(mats, [0.0, 1e-3, 0.0], [0.0, 0.1, 0.2], [1, 2, 2], max_display=8)
    assert anim._fig.dpi == 96
    sizes = [t.get_fontsize() for t in anim._fig.findobj(Text) if t.get_text()]
    sizes += [lab.get_fontsize() for ax in anim._fig.axes for lab in ax.get_xticklabels() + ax.get_yticklabels()]
    assert min(sizes) >= 9


def test_player_html_fetches_nothing_and_draws_its_icons():
    """to_jshtml of the package's animations: no Font Awesome CDN link, the icons inline (viewable offline)."""
    from matplotlib import _animation_data

    s, _, _ = planted_matrix(8, 8, 2, noise=0.05, seed=0)
    _, _, hist = learn_permutations(s, iters=2)
    html = animate_permutation(hist, s, max_frames=3).to_jshtml()
    assert "font-awesome" in _animation_data.JS_INCLUDE  # matplotlib's own template does link the CDN
    assert "font-awesome" not in html and "http" not in html.split("<script")[0]
    assert ".anim-buttons .fa-play::before" in html and "anim-buttons" in html
