#!/usr/bin/env python
"""Execute the teaching notebooks headless, keep the executed copies, time them against their budgets.

Every notebook in ``notebooks/*.ipynb`` (not the generated ``notebooks/student/``) declares its tier and
time budgets in its notebook metadata::

    "strucspars": {"tier": "cpu", "budget_quick_s": 60, "budget_full_s": 900, "full_measured_s": 640}

``tier`` is ``"cpu"`` (finishes on a 2-core laptop) or ``"gpu"`` (its full mode needs a GPU);
``budget_quick_s`` is the wall-time budget in quick mode (``STRUCSPARS_QUICK=1``, what CI runs);
``budget_full_s`` the budget of a full run (``null``: none stated) and ``full_measured_s`` the wall
time of the last full run (``null``: never measured; ``--full --write-measured`` fills it in).

Each notebook runs in a fresh kernel started in the notebook's own folder (as nbmake does), with
``MPLBACKEND=Agg`` and ``STRUCSPARS_QUICK=1`` (or ``0`` with ``--full``). The executed copy goes to
the output folder (default ``build/executed/``; the site is built from it) and the wall times to
``<out>/timings.json``. A notebook fails when a cell raises, a cell runs past ``--timeout``, it takes
longer than its budget, or it declares no budget. Exit status 1 when any notebook failed.

Usage::

    python scripts/run_notebooks.py                       # all notebooks, quick mode
    python scripts/run_notebooks.py --only 01 02_birkhoff # names or unique prefixes
    python scripts/run_notebooks.py --full --write-measured
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import re
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
DEFAULT_OUT = ROOT / "build" / "executed"
TIMINGS = "timings.json"
META_KEY = "strucspars"          # notebook metadata: tier and budgets (written by the author)
RUN_KEY = "strucspars_run"       # executed copy metadata: how and from what source it was run
TIERS = ("cpu", "gpu")
DEFAULT_TIMEOUT = 600            # per cell, seconds (nbmake's --nbmake-timeout in the old `make test`)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")

EXAMPLE_META = '{"tier": "cpu", "budget_quick_s": 60, "budget_full_s": null, "full_measured_s": null}'


class BudgetMetadataError(ValueError):
    """A notebook's ``metadata["strucspars"]`` is missing or malformed."""


@dataclass(frozen=True)
class Budget:
    """The tier and time budgets a notebook declares (seconds of wall time)."""

    tier: str
    budget_quick_s: float
    budget_full_s: float | None
    full_measured_s: float | None

    def limit(self, full: bool) -> float | None:
        """The budget that applies in this mode (``None``: no full-mode budget stated)."""
        return self.budget_full_s if full else self.budget_quick_s


@dataclass
class RunResult:
    """One notebook's run: where its executed copy went, how long it took, and why it failed (if it did)."""

    name: str
    mode: str                      # "quick" | "full"
    seconds: float                 # wall time: kernel start to last cell
    status: str                    # "ok" | "error" | "timeout" | "over_budget" | "no_budget"
    message: str = ""              # the failure, readable (empty when ok)
    tier: str | None = None
    budget_s: float | None = None
    output: str | None = None      # path of the executed copy

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _number(value: Any, key: str, name: str, *, allow_null: bool) -> float | None:
    if value is None and allow_null:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        allowed = "a positive number of seconds" + (" or null" if allow_null else "")
        raise BudgetMetadataError(f"{name}: metadata['{META_KEY}']['{key}'] is {value!r}; allowed: {allowed}")
    return float(value)


def read_budget(nb: nbformat.NotebookNode, name: str) -> Budget:
    """The :class:`Budget` declared in ``nb.metadata["strucspars"]``; a readable error saying what to add."""
    meta = nb.metadata.get(META_KEY)
    if meta is None:
        raise BudgetMetadataError(
            f"{name}: no tier/time budget in its notebook metadata; add "
            f'"{META_KEY}": {EXAMPLE_META} to the notebook\'s metadata (tier "cpu" or "gpu"; measure the '
            f"times with `python scripts/run_notebooks.py --only {Path(name).stem}` and with --full)")
    if not isinstance(meta, dict):
        raise BudgetMetadataError(f"{name}: metadata['{META_KEY}'] must be an object like {EXAMPLE_META}")
    unknown = sorted(set(meta) - {"tier", "budget_quick_s", "budget_full_s", "full_measured_s"})
    if unknown:
        raise BudgetMetadataError(f"{name}: unknown key(s) {unknown} in metadata['{META_KEY}']; "
                                  f"allowed: tier, budget_quick_s, budget_full_s, full_measured_s")
    if meta.get("tier") not in TIERS:
        raise BudgetMetadataError(f"{name}: metadata['{META_KEY}']['tier'] is {meta.get('tier')!r}; "
                                  f"allowed: {', '.join(map(repr, TIERS))}")
    if "budget_quick_s" not in meta:
        raise BudgetMetadataError(f"{name}: metadata['{META_KEY}'] has no 'budget_quick_s' (seconds in quick mode)")
    return Budget(
        tier=meta["tier"],
        budget_quick_s=_number(meta["budget_quick_s"], "budget_quick_s", name, allow_null=False),
        budget_full_s=_number(meta.get("budget_full_s"), "budget_full_s", name, allow_null=True),
        full_measured_s=_number(meta.get("full_measured_s"), "full_measured_s", name, allow_null=True),
    )


def budget_failure(name: str, budget: Budget, seconds: float, *, full: bool) -> str | None:
    """Why a run of ``seconds`` breaks the budget (``None`` if within it, or no budget stated for the mode)."""
    limit = budget.limit(full)
    if limit is None or seconds <= limit:
        return None
    mode = "full" if full else "quick"
    key = "budget_full_s" if full else "budget_quick_s"
    return (f"{name}: took {seconds:.1f} s in {mode} mode, over its budget of {limit:g} s "
            f"(metadata['{META_KEY}']['{key}']); make it faster or raise the budget")


def source_digest(path: Path) -> str:
    """sha256 of a notebook's code and markdown (not its outputs): says whether an executed copy is current."""
    nb = nbformat.read(path, as_version=4)
    text = "\x00".join(f"{c.cell_type}\x01{c.source}" for c in nb.cells)
    return hashlib.sha256(text.encode()).hexdigest()


def cell_error(nb: nbformat.NotebookNode) -> str | None:
    """The failing cell's source and traceback, as nbmake reports it (the last cell with an error output)."""
    for index, cell in reversed(list(enumerate(nb.cells))):
        if cell.cell_type != "code":
            continue
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if errors:
            trace = _ANSI.sub("", "\n".join(errors[0].get("traceback", [])))
            return f"cell {index}:\n{'-' * 75}\n{cell.source}\n{'-' * 75}\n{trace}"
    return None


def kernel_env(full: bool) -> dict[str, str]:
    """The kernel's environment: ours, headless matplotlib, the mode switch (read by ``quick_mode()``)."""
    env = dict(os.environ)
    env["MPLBACKEND"] = "Agg"
    env["STRUCSPARS_QUICK"] = "0" if full else "1"
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # silences a debugger warning in every kernel
    return env


def execute_notebook(path: str | Path, out_dir: str | Path, *, full: bool = False, timeout: int = DEFAULT_TIMEOUT,
                     cwd: str | Path | None = None, check_budget: bool = True) -> RunResult:
    """Run one notebook in a fresh kernel, write its executed copy to ``out_dir``, check its budget.

    ``cwd`` is the kernel's working folder (default: the notebook's folder, as nbmake does; give the
    real ``notebooks/`` when running a copy kept elsewhere, so relative paths resolve the same).
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    path = Path(path)
    out_dir = Path(out_dir)
    name = path.name
    mode = "full" if full else "quick"
    nb = nbformat.read(path, as_version=4)
    try:
        budget: Budget | None = read_budget(nb, name)
    except BudgetMetadataError as err:
        budget, budget_error = None, str(err)
    else:
        budget_error = ""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    cell_timeout = nb.metadata.get("execution", {}).get("timeout", timeout)  # nbmake honours this key too
    client = NotebookClient(nb, timeout=cell_timeout, kernel_name=nb.metadata.get("kernelspec", {}).get("name", "python3"),
                            record_timing=True, allow_errors=False)
    status, message = "ok", ""
    start = time.perf_counter()
    try:
        client.execute(cwd=str(cwd or path.parent), env=kernel_env(full))
    except CellTimeoutError as err:
        status, message = "timeout", f"{name}: a cell ran past the {cell_timeout} s timeout\n{err}"
    except (CellExecutionError, DeadKernelError) as err:
        status, message = "error", f"{name}: {cell_error(nb) or err}"
    seconds = time.perf_counter() - start
    if status == "ok" and check_budget:
        if budget is None:
            status, message = "no_budget", f"{budget_error}; this run took {seconds:.1f} s in {mode} mode"
        else:
            over = budget_failure(name, budget, seconds, full=full)
            if over:
                status, message = "over_budget", over
    nb.metadata[RUN_KEY] = {"mode": mode, "seconds": round(seconds, 2), "status": status,
                            "source_sha256": source_digest(path)}
    out_dir.mkdir(parents=True, exist_ok=True)
    output = out_dir / name
    _atomic_write(output, nbformat.writes(nb))
    return RunResult(name=name, mode=mode, seconds=round(seconds, 2), status=status, message=message,
                     tier=budget.tier if budget else None, budget_s=budget.limit(full) if budget else None,
                     output=str(output))


def _atomic_write(path: Path, text: str) -> None:
    # Same folder, then rename: a reader (the site build, a parallel test) never sees half a file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; the copy is an ordinary file
    os.replace(tmp, path)


def record_timings(out_dir: str | Path, results: Iterable[RunResult]) -> Path:
    """Merge these results into ``<out_dir>/timings.json`` (one entry per notebook and mode; newest wins)."""
    path = Path(out_dir) / TIMINGS
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        data = {}
    notebooks = data.get("notebooks", {})
    for r in results:
        entry = {k: v for k, v in asdict(r).items() if k not in ("name", "message")}
        entry["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        notebooks.setdefault(r.name, {})[r.mode] = entry
    data = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
            "notebooks": dict(sorted(notebooks.items()))}
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(path, json.dumps(data, indent=2) + "\n")
    return path


def select_notebooks(folder: Path, only: Sequence[str] | None = None) -> list[Path]:
    """``folder/*.ipynb`` sorted; ``only`` keeps those whose name or stem starts with one of the given names."""
    found = sorted(folder.glob("*.ipynb"))
    if not only:
        return found
    chosen = []
    for want in only:
        hits = [p for p in found if p.name == want or p.stem == want or p.name.startswith(want)]
        if not hits:
            raise ValueError(f"--only {want!r}: no notebook in {folder} matches; "
                             f"there are: {', '.join(p.name for p in found)}")
        chosen += [p for p in hits if p not in chosen]
    return sorted(chosen)


def write_measured(path: Path, seconds: float) -> None:
    """Store a full run's wall time as ``full_measured_s`` in the source notebook (outputs untouched)."""
    nb = nbformat.read(path, as_version=4)
    meta = dict(nb.metadata.get(META_KEY) or {})
    meta["full_measured_s"] = round(seconds, 1)
    nb.metadata[META_KEY] = meta
    _atomic_write(path, nbformat.writes(nb))


def _run_one(args: tuple) -> RunResult:
    path, out, full, timeout = args
    return execute_notebook(path, out, full=full, timeout=timeout)


def run_all(paths: Sequence[Path], out_dir: Path, *, full: bool = False, timeout: int = DEFAULT_TIMEOUT,
            jobs: int = 1, log=print) -> list[RunResult]:
    """Execute ``paths`` (``jobs`` at a time; 1 = serial, so the timings mean something), record the timings."""
    results: list[RunResult] = []
    tasks = [(p, out_dir, full, timeout) for p in paths]

    def report(r: RunResult) -> None:
        budget = f"{r.budget_s:g} s" if r.budget_s else "none"
        log(f"{r.status.upper():>11}  {r.name}  {r.seconds:7.1f} s  (budget {budget})")
        results.append(r)
        record_timings(out_dir, [r])

    if jobs <= 1:
        for task in tasks:
            report(_run_one(task))
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            for r in pool.map(_run_one, tasks):
                report(r)
    return results


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", metavar="NAME", help="notebook names or unique prefixes (e.g. 01 02)")
    parser.add_argument("--full", action="store_true", help="full mode (STRUCSPARS_QUICK=0) instead of quick mode")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"executed copies and {TIMINGS} (default: %(default)s)")
    parser.add_argument("--notebooks", type=Path, default=NOTEBOOKS, help="folder of the notebooks (default: %(default)s)")
    parser.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT, help="per-cell timeout in seconds (default: %(default)s)")
    parser.add_argument("--jobs", type=int, default=1, help="notebooks run at once (default 1: timings stay comparable)")
    parser.add_argument("--write-measured", action="store_true",
                        help="with --full: store each notebook's wall time as full_measured_s in its metadata")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.write_measured and not args.full:
        print("run_notebooks: error: --write-measured needs --full", file=sys.stderr)
        return 2
    if args.jobs < 1 or args.timeout < 1:
        print("run_notebooks: error: --jobs and --timeout must be at least 1", file=sys.stderr)
        return 2
    try:
        paths = select_notebooks(args.notebooks, args.only)
    except ValueError as err:
        print(f"run_notebooks: error: {err}", file=sys.stderr)
        return 2
    results = run_all(paths, args.out, full=args.full, timeout=args.timeout, jobs=args.jobs)
    if args.write_measured:
        for path, r in zip(paths, results):
            if r.status in ("ok", "over_budget"):
                write_measured(path, r.seconds)
    failed = [r for r in results if not r.ok]
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed; executed copies and {TIMINGS} in {args.out}")
    for r in failed:
        print(f"\n=== {r.name} ({r.status}) ===\n{r.message}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
