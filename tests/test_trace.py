"""LayerTrace: the one per-epoch trace of a layer (S, P, Q, G, lam, sparsity) and its consumers."""
from __future__ import annotations

import inspect
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from strucspars_viz import StructuredSparsifier, norm_matrix
from strucspars_viz.models import build_model
from strucspars_viz.trace import LayerTrace

RESULTS = Path(__file__).resolve().parents[1] / "results" / "cifar10_resnet20"


@pytest.fixture()
def sparsifier():
    torch.manual_seed(0)
    sp = StructuredSparsifier(build_model("resnet20"))
    sp.update_permutations(iters=1)
    sp.update_groups(0.9)
    return sp


def test_record_copies_the_layer_state(sparsifier):
    layer = "layer3.0.conv2"
    tr = LayerTrace(layer)
    tr.record(sparsifier, epoch=0, phase="init", lam=0.0)
    st = sparsifier.layers[layer]
    s = norm_matrix(sparsifier.modules[layer]).double().numpy()
    assert np.allclose(tr.norms[0], s, rtol=1e-6) and tr.norms[0].shape == (64, 64)
    assert np.array_equal(tr.row_perm[0], st.row_perm) and tr.groups[0] == st.groups
    assert tr.sparsity[0] == pytest.approx(sparsifier.sparsity())
    p_before = tr.row_perm[0].copy()
    st.row_perm[:] = st.row_perm[::-1].copy()  # the sparsifier moves on; the trace must not
    with torch.no_grad():
        sparsifier.modules[layer].weight.mul_(0)
    assert np.array_equal(tr.row_perm[0], p_before) and tr.norms[0].max() > 0
    with pytest.raises(ValueError, match="not a sparsified layer"):
        LayerTrace("conv1").record(sparsifier, epoch=0, phase="init", lam=0.0)


def test_save_load_round_trip_without_pickle(tmp_path, sparsifier):
    tr = LayerTrace("layer2.1.conv1", decay=0.5)
    for e, (ph, lam) in enumerate([("init", 0.0), ("sparsify", 1e-3), ("sparsify", 2e-3)]):
        tr.record(sparsifier, epoch=e, phase=ph, lam=lam, sparsity=0.1 * e)
    path = tr.save(tmp_path / "layer_norms.npz")
    with np.load(path, allow_pickle=False) as z:  # plain arrays only
        assert set(z.files) == {"layer", "norms", "row_perm", "col_perm", "groups", "lam", "sparsity", "epoch",
                                "phase", "decay"}
    back = LayerTrace.load(tmp_path)  # a run folder works too
    assert back.layer == tr.layer and back.phase == tr.phase and back.epoch == [0, 1, 2]
    assert back.lam == [0.0, 1e-3, 2e-3] and back.sparsity == pytest.approx([0.0, 0.1, 0.2])
    assert all(np.array_equal(a, b) for a, b in zip(back.norms, tr.norms))
    back.truncate(1)
    assert len(back) == 1 and back.phase == ["init"]
    with pytest.raises(ValueError):
        back.truncate(5)


def test_animation_kwargs_fit_animate_training(sparsifier):
    from strucspars_viz.viz import animate_training

    tr = LayerTrace("layer1.0.conv1")
    for e in range(2):
        tr.record(sparsifier, epoch=e, phase="sparsify", lam=1e-3 * e)
    kwargs = tr.animation_kwargs()
    params = inspect.signature(animate_training).parameters
    assert set(kwargs) <= set(params)
    anim = animate_training(**kwargs, keep=0.9, max_frames=2, frames_between=1)
    assert anim is not None


def test_empty_trace_cannot_be_saved(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        LayerTrace("x").save(tmp_path / "t.npz")


def test_committed_old_format_trace_loads_with_lam_and_sparsity_from_metrics():
    """results/ predates the unified trace (no lam / sparsity arrays): completed from metrics.jsonl."""
    run = RESULTS / "strucspars_50"
    tr = LayerTrace.load(run)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    by_epoch = {r["global_epoch"]: r for r in records}
    assert tr.phase[0] == "init" and "masked" in tr.phase and len(tr) == len(records) + 2
    for e, ph, lam, s in zip(tr.epoch, tr.phase, tr.lam, tr.sparsity):
        if ph in ("sparsify", "finetune"):
            assert lam == by_epoch[e]["lam"] and s == by_epoch[e]["sparsity"]
        elif ph == "masked":
            assert lam == 0.0 and s == records[-1]["sparsity"]


def test_old_format_without_metrics_is_a_clear_error(tmp_path):
    np.savez(tmp_path / "layer_norms.npz", layer=np.array("l"), norms=np.zeros((1, 2, 2)),
             row_perm=np.zeros((1, 2), int), col_perm=np.zeros((1, 2), int), groups=np.ones(1, int),
             epoch=np.zeros(1, int), phase=np.array(["init"]))
    with pytest.raises(ValueError, match="old format"):
        LayerTrace.load(tmp_path / "layer_norms.npz")
    with pytest.raises(FileNotFoundError):
        LayerTrace.load(tmp_path / "nope.npz")


def test_committed_results_stay_readable():
    """The old-format run folders under results/: config, compressed weights (weights_only) and trace."""
    from strucspars_viz.training import TrainConfig
    from strucspars_viz.training.artifacts import read_weights

    for run in ("strucspars_50", "dense"):
        cfg = TrainConfig.from_dict(json.loads((RESULTS / run / "config.json").read_text()))
        assert cfg.model == "resnet20" and cfg.mode == ("dense" if run == "dense" else "strucspars")
        weights = read_weights(RESULTS / run / "compressed_model.pt")
        assert weights.model == "resnet20" and weights.num_classes == 10
        assert len(LayerTrace.load(RESULTS / run)) == 12
