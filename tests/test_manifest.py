"""Checksum manifests of results folders (strucspars_viz.manifest) and the committed results' own."""
import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from strucspars_viz.cli import main as cli_main
from strucspars_viz.manifest import MANIFEST, ManifestError, manifest_files, verify_manifest, write_manifest

REPO = Path(__file__).resolve().parents[1]
RESULTS = sorted(p for p in (REPO / "results").iterdir() if p.is_dir())


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "res"
    (root / "run" / "seed0").mkdir(parents=True)
    (root / "README.md").write_text("table\n")
    (root / "run" / "seed0" / "summary.json").write_text('{"top1": 0.8}\n')
    (root / "run" / "seed0" / "final.pt").write_bytes(bytes(range(256)) * 10)
    # run state and logs: not results
    (root / "run" / "seed0" / "checkpoint.pt").write_bytes(b"x")
    (root / "run" / "seed0" / "checkpoint.pt.sha256").write_text("{}")
    (root / "run" / "seed0" / ".lock").write_text("123")
    (root / "jobs.jsonl").write_text("{}\n")
    return root


def test_written_manifest_is_sha256sum_format_and_verifies(folder):
    path = write_manifest(folder)
    lines = path.read_text().splitlines()
    assert [ln.split("  ")[1] for ln in lines] == ["README.md", "run/seed0/final.pt", "run/seed0/summary.json"]
    digest = hashlib.sha256((folder / "run/seed0/final.pt").read_bytes()).hexdigest()
    assert f"{digest}  run/seed0/final.pt" in lines
    ok = verify_manifest(folder)
    assert ok.files == ("README.md", "run/seed0/final.pt", "run/seed0/summary.json") and ok.unlisted == ()
    if shutil.which("sha256sum"):  # the same file checks with coreutils
        subprocess.run(["sha256sum", "--quiet", "-c", MANIFEST], cwd=folder, check=True)


def test_a_changed_byte_and_a_missing_file_are_named(folder):
    write_manifest(folder)
    data = bytearray((folder / "run/seed0/final.pt").read_bytes())
    data[100] ^= 1
    (folder / "run/seed0/final.pt").write_bytes(bytes(data))
    with pytest.raises(ManifestError, match=r"sha256 differs: run/seed0/final.pt"):
        verify_manifest(folder)
    (folder / "README.md").unlink()
    with pytest.raises(ManifestError, match=r"missing: README.md; sha256 differs: run/seed0/final.pt"):
        verify_manifest(folder)


def test_new_files_are_reported_as_unlisted_not_errors(folder):
    write_manifest(folder)
    (folder / "run" / "seed1").mkdir()
    (folder / "run" / "seed1" / "summary.json").write_text("{}")
    assert verify_manifest(folder).unlisted == ("run/seed1/summary.json",)
    assert "not in the manifest: run/seed1/summary.json" in str(verify_manifest(folder))


@pytest.mark.parametrize("line, match", [("abc  x", "not a sha256sum line"),
                                         ("0" * 64 + "  ../secret", "outside the folder"),
                                         ("0" * 64 + "  /etc/passwd", "outside the folder")])
def test_malformed_or_escaping_lines_are_errors_with_line_numbers(folder, line, match):
    (folder / MANIFEST).write_text(line + "\n")
    with pytest.raises(ManifestError, match=f"{MANIFEST}:1: .*{match}"):
        verify_manifest(folder)


def test_missing_folder_or_manifest_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(ManifestError, match="no such results folder"):
        verify_manifest(tmp_path / "nope")
    with pytest.raises(ManifestError, match=f"no {MANIFEST}; record the folder"):
        verify_manifest(tmp_path)
    assert cli_main(["manifest", str(tmp_path / "nope")]) == 2
    assert "strucspars-viz manifest: error:" in capsys.readouterr().err


def test_cli_writes_then_checks(folder, capsys):
    assert cli_main(["manifest", str(folder), "--write"]) == 0
    assert cli_main(["manifest", str(folder)]) == 0
    assert "3 file(s) match" in capsys.readouterr().out


@pytest.mark.parametrize("res", RESULTS, ids=[p.name for p in RESULTS])
def test_committed_results_match_their_manifest_and_cover_every_tracked_file(res):
    """What notebooks 04, 06, 07 and 08 draw from results/ is what the runs wrote."""
    if not (REPO / ".git").exists() or not shutil.which("git"):
        verify_manifest(res)
        pytest.skip("not a git checkout: tracked files unknown")
    tracked = subprocess.run(["git", "ls-files", "-z", "--", "."], cwd=res, capture_output=True, check=True).stdout
    tracked = {p for p in tracked.decode().split("\0") if p}
    if not tracked:  # a sweep running into results/ before anything of it is committed
        pytest.skip(f"{res.name}: nothing committed yet")
    verified = verify_manifest(res)
    assert tracked - {MANIFEST} <= set(verified.files), \
        f"tracked but not in {res.name}/{MANIFEST}: {sorted(tracked - {MANIFEST} - set(verified.files))}"
    assert set(manifest_files(res)) >= set(verified.files)
