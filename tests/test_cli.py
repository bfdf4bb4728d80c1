"""``strucspars-viz permute`` and ``compress`` on tiny cases, and their user errors (exit 2, one line, no traceback)."""
import json

import numpy as np
import pytest
import torch

import strucspars_viz as sv
from strucspars_viz import cli
from strucspars_viz.models import build_model


def run(capsys, *argv):
    """``(exit status, stdout, stderr)`` of ``strucspars-viz argv``, argparse's own exits included."""
    try:
        rc = cli.main(list(argv))
    except SystemExit as stop:  # argparse rejects an option
        rc = stop.code
    out, err = capsys.readouterr()
    return rc, out, err


def assert_user_error(capsys, argv, match):
    rc, out, err = run(capsys, *argv)
    assert rc == 2, (rc, out, err)
    assert f"strucspars-viz {argv[0]}: error:" in err
    assert match in err, err
    assert "Traceback" not in err + out


def test_permute_planted_recovers_the_groups(capsys, tmp_path):
    rc, out, _ = run(capsys, "permute", "--planted", "32x32:4", "--iters", "5", "--save", str(tmp_path / "p.npz"))
    assert rc == 0
    assert "planted 32x32, 4 groups" in out and "groups at keep=0.9: 4" in out
    with np.load(tmp_path / "p.npz") as saved:
        s, _, _ = sv.planted_matrix(32, 32, 4, 0.0, 0)
        fr = sv.kept_fractions(s[saved["row_perm"]][:, saved["col_perm"]])
        assert fr[4] == pytest.approx(1.0) and np.all(np.diff(saved["objective"]) <= 1e-12)


def test_permute_model_layer_and_matrix_file(capsys, tmp_path):
    rc, out, _ = run(capsys, "permute", "--model", "resnet20", "--layer", "layer2.0.conv1", "--iters", "2")
    assert rc == 0 and "resnet20.layer2.0.conv1: S is 32x16" in out
    np.save(tmp_path / "s.npy", np.eye(8))
    rc, out, _ = run(capsys, "permute", "--matrix", str(tmp_path / "s.npy"), "--iters", "2")
    assert rc == 0 and "groups at keep=0.9: 8" in out


def test_compress_resnet20_writes_strict_summary_and_loadable_model(capsys, tmp_path):
    out_dir = tmp_path / "out"
    rc, out, err = run(capsys, "compress", "--model", "resnet20", "--target", "0.5", "--iters", "2", "--out", str(out_dir))
    assert rc == 0, err
    assert "max |dense_masked - compressed|" in out
    summary = json.loads((out_dir / "summary.json").read_text(), parse_constant=lambda c: pytest.fail(f"bare {c}"))
    assert summary["equivalent"] is True and summary["max_abs_diff"] < 1e-4
    assert summary["sparsity"] >= 0.5 and summary["params_after"] < summary["params_before"]
    payload = torch.load(out_dir / "compressed_model.pt", weights_only=True)
    assert payload["model"] == "resnet20" and payload["sparsifier"]["layers"]


def _final_pt(path, model, sp):
    from strucspars_viz.training.artifacts import weights_payload
    from strucspars_viz.training.io import torch_save_atomic

    torch_save_atomic(weights_payload("resnet20", 10, model.state_dict(), mode="strucspars", config=None,
                                      sparsifier=sp.state_dict()), path)


def test_compress_run_folder_reuses_the_runs_permutations(capsys, tmp_path):
    model = build_model("resnet20")
    sp, _ = sv.export.sparsify_to_target(model, 0.4, iters=1)
    _final_pt(tmp_path / "final.pt", model, sp)
    rc, out, err = run(capsys, "compress", "--run", str(tmp_path), "--out", str(tmp_path / "c"))
    assert rc == 0, err
    assert "the run's permutations and groups" in out
    summary = json.loads((tmp_path / "c" / "summary.json").read_text())
    assert summary["groups"] == sp.groups() and summary["equivalent"]
    # --weights takes the same file; a plain state_dict needs --model
    rc, out, err = run(capsys, "compress", "--weights", str(tmp_path / "final.pt"), "--target", "0.3", "--iters", "1")
    assert rc == 0, err
    torch.save(model.state_dict(), tmp_path / "plain.pt")
    assert_user_error(capsys, ["compress", "--weights", str(tmp_path / "plain.pt"), "--target", "0.3"], "pass --model")
    rc, _, err = run(capsys, "compress", "--model", "resnet20", "--weights", str(tmp_path / "plain.pt"),
                     "--target", "0.3", "--iters", "1")
    assert rc == 0, err
    assert_user_error(capsys, ["compress", "--model", "resnet56", "--run", str(tmp_path)], "holds weights of resnet20")
    assert_user_error(capsys, ["permute", "--run", str(tmp_path), "--layer", "nope"], "not a sparsifiable conv")


@pytest.mark.parametrize("spec,match", [
    ("64x64:7", "power of two"),
    ("63x64:8", "does not divide"),
    ("64x64:128", "does not divide"),
    ("64x64:0", "power of two"),
    ("64by64", "COUTxCIN:GROUPS"),
])
def test_permute_planted_specs_are_validated(capsys, spec, match):
    assert_user_error(capsys, ["permute", "--planted", spec], match)


@pytest.mark.parametrize("argv,match", [
    (["permute", "--planted", "8x8:2", "--decay", "5"], "decay must lie in (0, 1]"),
    (["permute", "--planted", "8x8:2", "--decay", "0"], "decay must lie in (0, 1]"),
    (["permute", "--planted", "8x8:2", "--keep", "1.5"], "argument --keep: must be in [0, 1]"),
    (["permute", "--model", "resnet20", "--layer", "fc"], "not a sparsifiable conv"),
    (["compress", "--model", "resnet20", "--target", "1.0"], "argument --target: must be in [0, 1)"),
    (["compress", "--model", "resnet20"], "--target is required"),
])
def test_option_errors(capsys, argv, match):
    assert_user_error(capsys, argv, match)


def test_file_errors(capsys, tmp_path):
    txt = tmp_path / "notnpy.txt"
    txt.write_text("hello\n")
    # used to be `KeyError: 101` from torch.load
    assert_user_error(capsys, ["compress", "--model", "resnet20", "--target", "0.5", "--weights", str(txt)], ".txt file")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torch file")
    assert_user_error(capsys, ["compress", "--model", "resnet20", "--target", "0.5", "--weights", str(garbage)], "garbage.pt")
    assert_user_error(capsys, ["compress", "--run", str(tmp_path / "missing"), "--target", "0.5"], "missing")
    assert_user_error(capsys, ["permute", "--matrix", str(txt)], "not a numpy .npy file")
    np.save(tmp_path / "v.npy", np.ones(4))
    assert_user_error(capsys, ["permute", "--matrix", str(tmp_path / "v.npy")], "must be 2-D")
    assert_user_error(capsys, ["permute", "--matrix", str(tmp_path / "none.npy")], "no such file")
    other = build_model("resnet56")
    torch.save(other.state_dict(), tmp_path / "r56.pt")
    assert_user_error(capsys, ["compress", "--model", "resnet20", "--weights", str(tmp_path / "r56.pt"), "--target", "0.5"],
                      "does not fit resnet20")
