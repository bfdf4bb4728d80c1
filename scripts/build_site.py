#!/usr/bin/env python
"""Build the static tutorial site: the executed notebooks, an index and the API reference, all offline.

Steps:

1. the executed notebooks: the copies in ``--executed`` (default ``build/executed/``, written by
   ``scripts/run_notebooks.py`` or the notebook tests). A notebook whose copy is missing, or was executed
   from an older version of the notebook, is executed first (quick mode) unless ``--no-run``;
2. a staging source tree (``<out>-src``, kept for fast rebuilds): ``docs/`` plus the executed copies
   (the animation player's CDN link dropped), a generated table of the notebooks (tier, budgets, measured
   times) and the API pages (one per layer; every public module of ``strucspars_viz`` found on disk);
3. ``sphinx-build -b html`` into ``--out`` (default ``build/site/``), its warnings kept in
   ``<out>/sphinx-warnings.txt``;
4. the offline check: no page may load a script, style sheet, font, image or frame from the network.

Usage::

    python scripts/build_site.py                          # then open build/site/index.html
    python scripts/build_site.py --only 01 02 --no-run    # just these pages, from existing copies
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Sequence

import nbformat

from strucspars_viz.viz.player import offline_player

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
DEFAULT_OUT = ROOT / "build" / "site"
WARNINGS = "sphinx-warnings.txt"


def _load_runner():
    spec = importlib.util.spec_from_file_location("run_notebooks", ROOT / "scripts" / "run_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return sys.modules[spec.name]


rn = _load_runner()

# --- step 1: executed copies ---------------------------------------------------------------------


def stale_or_missing(sources: Sequence[Path], executed: Path) -> list[Path]:
    """The notebooks whose executed copy is missing or was made from other cells than the notebook's now."""
    todo = []
    for src in sources:
        copy = executed / src.name
        if not copy.exists():
            todo.append(src)
            continue
        run = nbformat.read(copy, as_version=4).metadata.get(rn.RUN_KEY, {})
        if run.get("source_sha256") != rn.source_digest(src):
            todo.append(src)
    return todo


# --- step 2: staging tree ------------------------------------------------------------------------

#: API sections: (title, module-name prefixes). The first match wins; unmatched modules go to "Other".
LAYERS = (
    ("Method: norms, hierarchy, permutations, sparsifier, export",
     ("norms", "hierarchy", "birkhoff", "permutation", "shuffles", "sparsifier", "controller", "layers", "export",
      "counting", "solver_output")),
    ("Related designs (ShuffleNet, IGC-V2, SSC)", ("designs", "models.designs")),
    ("Teaching: figures, animations, explorer, exercises", ("viz", "explore", "explorer", "exercises", "trace", "report", "demo")),
    ("Experiments: training, ablations, data, models", ("training", "ablation", "data", "models", "config", "seeding", "errors")),
    ("Speed on real hardware", ("timing", "deploy")),
)
#: modules left out of the reference: transitional shims and command-line wiring (documented by --help)
EXCLUDE = re.compile(r"(^|\.)(legacy|compat|cli|commands|imagenet_data)$|(^|\.)_")


def package_modules(package: str = "strucspars_viz") -> list[str]:
    """Every importable module name of ``package``, found on disk (nothing is imported)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {package!r} is not installed in {sys.executable}")
    base = Path(list(spec.submodule_search_locations)[0])
    names = []
    for path in sorted(base.rglob("*.py")):
        rel = path.relative_to(base).with_suffix("")
        parts = list(rel.parts)
        if any(p == "__pycache__" or "-" in p for p in parts):
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts and not (base.joinpath(*parts[:-1], "__init__.py").exists()):
            continue  # inside a data folder, not a package
        names.append(".".join(parts))
    return sorted(n for n in names if n and not EXCLUDE.search(n))


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.split(":")[0].split("(")[0].lower()).strip("-")


def api_pages(modules: Sequence[str], package: str = "strucspars_viz") -> dict[str, str]:
    """reST of the API reference: ``{"api.rst": index, "api/<layer>.rst": page, ...}``.

    One page per layer holding ``automodule`` for each of its modules (a few big pages build several
    times faster than a page per module, and each object is still documented once, on its module).
    """
    sections: dict[str, list[str]] = {title: [] for title, _ in LAYERS}
    sections["Other"] = []
    for name in modules:
        for title, prefixes in LAYERS:
            if any(name == p or name.startswith(p + ".") for p in prefixes):
                sections[title].append(name)
                break
        else:
            sections["Other"].append(name)
    index = ["API reference", "=============", "",
             f"Generated from the docstrings of :mod:`{package}`, which state the math in the notation of the",
             "notebooks. One page per layer; the names most code needs are re-exported at the top level.", "",
             ".. toctree::", "   :maxdepth: 2", ""]
    pages: dict[str, str] = {}
    for title, names in sections.items():
        if not names:
            continue
        slug = _slug(title)
        index.append(f"   api/{slug}")
        lines = [title, "=" * len(title), "", ".. autosummary::", ""]
        lines += [f"   {package}.{name}" for name in names] + [""]
        for name in names:
            full = f"{package}.{name}"
            lines += [f"``{full}``", "-" * (len(full) + 4), "", f".. automodule:: {full}", ""]
        pages[f"api/{slug}.rst"] = "\n".join(lines)
    pages["api.rst"] = "\n".join(index + [""])
    return pages


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def notebook_table(sources: Sequence[Path], executed: Path) -> str:
    """MyST table of the notebooks: title (linked), tier, budgets, quick time measured for this build."""
    rows = ["| notebook | tier | quick mode: measured / budget | full mode: measured / budget |",
            "| --- | --- | --- | --- |"]
    for src in sources:
        nb = nbformat.read(src, as_version=4)
        title = next((line.lstrip("# ").strip() for c in nb.cells if c.cell_type == "markdown"
                      for line in c.source.splitlines() if line.startswith("# ")), src.stem)
        meta = nb.metadata.get(rn.META_KEY) or {}
        copy = executed / src.name
        run = nbformat.read(copy, as_version=4).metadata.get(rn.RUN_KEY, {}) if copy.exists() else {}

        def secs(x):
            return f"{x:.0f} s" if isinstance(x, (int, float)) else "–"
        quick = f"{secs(run.get('seconds'))} / {secs(meta.get('budget_quick_s'))}"
        full = f"{secs(meta.get('full_measured_s'))} / {secs(meta.get('budget_full_s'))}"
        rows.append(f"| {{doc}}`{_cell(title)} </notebooks/{src.stem}>` | {str(meta['tier']).upper() if meta.get('tier') else 'not stated'} "
                    f"| {quick} | {full} |")
    return "\n".join(rows) + "\n"


def offline_outputs(nb: nbformat.NotebookNode) -> int:
    """Make every animation player in the HTML outputs work offline (``viz.player.offline_player``:
    the CDN Font Awesome link becomes inline icons); returns how many links were replaced."""
    replaced = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            html = data.get("text/html")
            if html is None:
                continue
            new, n = offline_player("".join(html) if isinstance(html, list) else html)
            if n:
                data["text/html"] = new
                replaced += n
    return replaced


def _write_if_changed(path: Path, content: str | bytes) -> None:
    # Unchanged files keep their mtime, so sphinx re-reads only what changed (a rebuild takes seconds).
    data = content.encode("utf-8") if isinstance(content, str) else content
    if not path.exists() or path.read_bytes() != data:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def stage(sources: Sequence[Path], executed: Path, staging: Path) -> Path:
    """The Sphinx source tree: ``docs/`` + executed notebooks + generated table and API page.

    Kept between builds (with sphinx's doctrees) and updated in place: a file is rewritten only when
    its content changed, and notebooks no longer selected are removed.
    """
    staging.mkdir(parents=True, exist_ok=True)
    for src in sorted(DOCS.rglob("*")):
        rel = src.relative_to(DOCS)
        if src.is_file() and not any(part in ("_build", "__pycache__") for part in rel.parts):
            _write_if_changed(staging / rel, src.read_bytes())
    wanted = {src.name for src in sources}
    for old in (staging / "notebooks").glob("*.ipynb") if (staging / "notebooks").exists() else []:
        if old.name not in wanted:
            old.unlink()
    for src in sources:
        nb = nbformat.read(executed / src.name, as_version=4)
        offline_outputs(nb)
        _write_if_changed(staging / "notebooks" / src.name, nbformat.writes(nb))
    _write_if_changed(staging / "_generated" / "notebooks.md", notebook_table(sources, executed))
    api = api_pages(package_modules())
    for rel, text in api.items():
        _write_if_changed(staging / rel, text)
    for old in (staging / "api").glob("*.rst") if (staging / "api").exists() else []:
        if f"api/{old.name}" not in api:
            old.unlink()
    return staging


# --- step 3: sphinx ------------------------------------------------------------------------------


def sphinx_build(staging: Path, out: Path, *, jobs: str = "auto", quiet: bool = True) -> list[str]:
    """Run ``sphinx-build -b html``; returns its warnings (raises RuntimeError with them if it fails)."""
    out.mkdir(parents=True, exist_ok=True)
    warnings_file = out / WARNINGS
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-j", jobs, "-w", str(warnings_file),
           "-d", str(staging.parent / f"{staging.name}-doctrees"), str(staging), str(out)]
    if quiet:
        cmd.insert(3, "-q")
    env = dict(os.environ, MPLBACKEND="Agg", PYDEVD_DISABLE_FILE_VALIDATION="1")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    warnings = [w for w in warnings_file.read_text().splitlines() if w.strip()] if warnings_file.exists() else []
    if proc.returncode != 0:
        raise RuntimeError(f"sphinx-build failed (exit {proc.returncode}): {' '.join(cmd)}\n"
                           f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return warnings


# --- step 4: offline check -----------------------------------------------------------------------

#: <link rel=...> values that make the browser fetch the target
_LOADING_RELS = {"stylesheet", "icon", "shortcut", "preload", "prefetch", "modulepreload", "manifest",
                 "apple-touch-icon", "preconnect", "dns-prefetch", "mask-icon"}
_REMOTE = re.compile(r"^\s*(https?:)?//", re.IGNORECASE)
_CSS_URL = re.compile(r"""(?:url\(\s*['"]?|@import\s+['"])((?:https?:)?//[^'")\s]+)""", re.IGNORECASE)


class _Loads(HTMLParser):
    """Collects the URLs a page makes the browser fetch (not the links a reader may follow)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.urls: list[tuple[str, str]] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "link":
            rels = set((a.get("rel") or "").lower().split())
            if rels & _LOADING_RELS and a.get("href"):
                self.urls.append((f"<link rel={a.get('rel')}>", a["href"]))
        elif tag in ("script", "img", "iframe", "source", "audio", "video", "embed", "track", "input"):
            for key in ("src", "srcset", "poster"):
                if a.get(key):
                    self.urls.append((f"<{tag} {key}>", a[key]))
        elif tag == "object" and a.get("data"):
            self.urls.append(("<object data>", a["data"]))
        if a.get("style"):
            self.urls += [(f"<{tag} style>", u) for u in _CSS_URL.findall(a["style"])]
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        if tag == "style":
            self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.urls += [("<style>", u) for u in _CSS_URL.findall(data)]


def remote_loads(site: Path) -> list[str]:
    """Every network resource a page or style sheet of ``site`` would load: ``"file: what url"`` lines."""
    found = []
    for page in sorted(site.rglob("*.html")):
        parser = _Loads()
        parser.feed(page.read_text(encoding="utf-8", errors="replace"))
        for what, url in parser.urls:
            for part in url.split(","):  # srcset lists candidates
                if _REMOTE.match(part):
                    found.append(f"{page.relative_to(site)}: {what} {part.strip()}")
    for sheet in sorted(site.rglob("*.css")):
        for url in _CSS_URL.findall(sheet.read_text(encoding="utf-8", errors="replace")):
            found.append(f"{sheet.relative_to(site)}: css url {url}")
    return found


# --- the whole build -----------------------------------------------------------------------------


def build_site(*, executed: Path = rn.DEFAULT_OUT, out: Path = DEFAULT_OUT, notebooks: Path = rn.NOTEBOOKS,
               only: Sequence[str] | None = None, run_missing: bool = True, timeout: int = rn.DEFAULT_TIMEOUT,
               log=print) -> dict:
    """Steps 1-4; returns ``{"out", "pages", "warnings", "failed_notebooks", "seconds"}``.

    ``warnings`` are those of the documents sphinx (re)read in this build: a rebuild re-reads only
    what changed, so a clean build (a fresh ``out``) lists them all.

    Raises RuntimeError when sphinx fails or a page loads anything from the network, FileNotFoundError
    when a notebook has no executed copy and ``run_missing`` is off.
    """
    start = time.perf_counter()
    sources = rn.select_notebooks(notebooks, only)
    todo = stale_or_missing(sources, executed)
    failed = []
    if todo:
        if not run_missing:
            raise FileNotFoundError(
                f"no current executed copy in {executed} of: {', '.join(p.name for p in todo)}; "
                "run scripts/run_notebooks.py first (or drop --no-run)")
        log(f"executing {len(todo)} notebook(s) first (quick mode): {', '.join(p.name for p in todo)}")
        results = rn.run_all(todo, executed, timeout=timeout, log=log)
        failed = [r.name for r in results if r.status in ("error", "timeout")]
    for src in sources:  # a copy that holds an error still renders (its page shows it): say so
        run = nbformat.read(executed / src.name, as_version=4).metadata.get(rn.RUN_KEY, {})
        if run.get("status") in ("error", "timeout") and src.name not in failed:
            failed.append(src.name)
    staging = out.parent / f"{out.name}-src"
    stage(sources, executed, staging)
    warnings = sphinx_build(staging, out)
    # sphinx keeps the pages of sources that are gone (a notebook left out, a layer emptied): drop them
    for folder, keep in (("notebooks", {p.stem for p in sources}),
                         ("api", {Path(rel).stem for rel in api_pages(package_modules()) if rel.startswith("api/")})):
        for page in (out / folder).glob("*.html") if (out / folder).exists() else []:
            if page.stem not in keep:
                page.unlink()
    remote = remote_loads(out)
    if remote:
        raise RuntimeError("the site would load resources from the network:\n  " + "\n  ".join(remote[:50]))
    seconds = time.perf_counter() - start
    summary = {"out": str(out), "pages": [f"notebooks/{p.stem}.html" for p in sources],
               "warnings": warnings, "failed_notebooks": failed, "seconds": round(seconds, 1)}
    (out / "build-summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--executed", type=Path, default=rn.DEFAULT_OUT, help="executed notebooks (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="site folder (default: %(default)s)")
    parser.add_argument("--notebooks", type=Path, default=rn.NOTEBOOKS, help="source notebooks (default: %(default)s)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="only these notebooks (names or prefixes)")
    parser.add_argument("--no-run", action="store_true", help="fail instead of executing missing or stale copies")
    parser.add_argument("--timeout", type=int, default=rn.DEFAULT_TIMEOUT, help="per-cell timeout when executing")
    args = parser.parse_args(argv)
    try:
        summary = build_site(executed=args.executed, out=args.out, notebooks=args.notebooks, only=args.only,
                             run_missing=not args.no_run, timeout=args.timeout)
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        print(f"build_site: error: {err}", file=sys.stderr)
        return 2 if isinstance(err, (ValueError, FileNotFoundError)) else 1
    for w in summary["warnings"]:
        print(f"sphinx warning: {w}")
    for name in summary["failed_notebooks"]:
        print(f"WARNING: {name} raised while executing; its page shows the error", file=sys.stderr)
    print(f"site: {Path(summary['out']) / 'index.html'} ({len(summary['pages'])} notebook pages, "
          f"{len(summary['warnings'])} sphinx warnings, {summary['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
