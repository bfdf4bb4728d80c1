"""The tutorial site: built from the executed notebooks, loading nothing from the network, shown in a browser.

The site is built (``scripts/build_site.py``) into a temporary folder from the executed copies that
``tests/test_notebooks_run.py`` left in ``build/executed/`` (``$STRUCSPARS_EXECUTED``). When the copies
the site test needs are missing or stale (e.g. ``pytest tests/test_site.py`` alone), it executes them
itself: the cheapest notebook with an animation and the next cheapest ones, three in all.
The browser part drives Debian's ``chromium`` through ``/usr/bin/chromedriver`` (skipped, with the
reason, when missing; CI installs ``chromium chromium-driver``) against a local ``http.server`` on
127.0.0.1, with every other host unresolvable, and records every request the pages make.
"""
from __future__ import annotations

import functools
import http.server
import importlib.util
import json
import os
import shutil
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, module)
    spec.loader.exec_module(module)
    return sys.modules[name]


bs = _load("build_site")
rn = bs.rn
EXECUTED = Path(os.environ.get("STRUCSPARS_EXECUTED", rn.DEFAULT_OUT))
SOURCES = Path(os.environ.get("STRUCSPARS_NOTEBOOKS", rn.NOTEBOOKS))
N_PAGES = 3


# --- fast checks of the pieces --------------------------------------------------------------------


def test_remote_loads_finds_what_a_browser_would_fetch(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "p.html").write_text(
        '<html><head><link rel="stylesheet" href="https://cdn.example/x.css">'
        '<link rel="canonical" href="https://example.org/p.html">'          # not loaded
        '<script src="//cdn.example/mathjax.js"></script><script src="_static/local.js"></script>'
        '<style>@import "https://fonts.example/css";</style></head>'
        '<body><a href="https://arxiv.org/abs/2002.08127">paper</a>'        # a link: fine
        '<img src="data:image/png;base64,AAAA"><img srcset="a.png 1x, http://img.example/b.png 2x">'
        '<div style="background: url(\'https://img.example/bg.png\')"></div></body></html>')
    (tmp_path / "s.css").write_text("@font-face { src: url(https://fonts.example/f.woff2); } a { background: url(local.png) }")
    found = bs.remote_loads(tmp_path)
    assert len(found) == 6, found
    joined = "\n".join(found)
    for url in ("https://cdn.example/x.css", "//cdn.example/mathjax.js", "https://fonts.example/css",
                "http://img.example/b.png", "https://img.example/bg.png", "https://fonts.example/f.woff2"):
        assert url in joined
    assert "arxiv" not in joined and "local" not in joined and "canonical" not in joined


def test_player_cdn_link_is_dropped():
    from matplotlib import _animation_data  # the player template to_jshtml() writes
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("HTML(anim.to_jshtml())")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"text/html": _animation_data.JS_INCLUDE + "<div/>"})]
    nb.cells = [cell]
    assert "font-awesome" in _animation_data.JS_INCLUDE
    assert bs.offline_outputs(nb) == 1
    html = nb.cells[0].outputs[0]["data"]["text/html"]
    assert "font-awesome" not in html and "<script" in html and ".fa-play::before" in html
    assert bs.offline_outputs(nb) == 0  # already offline: nothing left to replace


def test_api_pages_document_each_public_module_once():
    modules = bs.package_modules()
    assert "permutation" in modules and "hierarchy" in modules and "exercises" in modules
    assert not [m for m in modules if m.endswith(("legacy", "compat", ".cli")) or m == "cli"]
    pages = bs.api_pages(modules)
    documented = [line.split("::")[1].strip() for text in pages.values() for line in text.splitlines()
                  if line.startswith(".. automodule::")]
    assert sorted(documented) == sorted(f"strucspars_viz.{m}" for m in modules)  # each exactly once
    method = pages["api/method.rst"]
    assert ".. automodule:: strucspars_viz.permutation" in method and "designs" not in method
    assert all(f"   {rel[:-4]}" in pages["api.rst"] for rel in pages if rel != "api.rst")  # all in the toctree


def test_stale_copies_are_found(tmp_path):
    src, ex = tmp_path / "src", tmp_path / "ex"
    src.mkdir(), ex.mkdir()
    for name, code in (("a.ipynb", "x = 1"), ("b.ipynb", "y = 2"), ("c.ipynb", "z = 3")):
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(code)]
        nbformat.write(nb, src / name)
    for name in ("a.ipynb", "b.ipynb"):
        copy = nbformat.read(src / name, as_version=4)
        copy.metadata[rn.RUN_KEY] = {"source_sha256": rn.source_digest(src / name)}
        nbformat.write(copy, ex / name)
    changed = nbformat.read(src / "b.ipynb", as_version=4)
    changed.cells[0].source = "y = 3"
    nbformat.write(changed, src / "b.ipynb")
    assert [p.name for p in bs.stale_or_missing(sorted(src.glob("*.ipynb")), ex)] == ["b.ipynb", "c.ipynb"]


# --- the real site ----------------------------------------------------------------------------------


def _cost(path: Path) -> float:
    meta = nbformat.read(path, as_version=4).metadata.get(rn.META_KEY) or {}
    budget = meta.get("budget_quick_s")
    return budget if isinstance(budget, (int, float)) else 1e9


def _pages_for_test() -> list[Path]:
    """The cheapest notebook showing an animation, then the cheapest others: ``N_PAGES`` in all."""
    sources = sorted(SOURCES.glob("*.ipynb"), key=lambda p: (_cost(p), p.name))
    animated = [p for p in sources if "to_jshtml" in p.read_text()]
    chosen = animated[:1] + [p for p in sources if p not in animated[:1]]
    return sorted(chosen[:N_PAGES])


def _current_ok(path: Path, executed: Path) -> bool:
    copy = executed / path.name
    if not copy.exists() or bs.stale_or_missing([path], executed):
        return False
    return nbformat.read(copy, as_version=4).metadata.get(rn.RUN_KEY, {}).get("status") not in ("error", "timeout")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site of every notebook with a current executed copy, and at least the three test pages."""
    pages = _pages_for_test()
    executed = EXECUTED
    todo = [p for p in pages if not _current_ok(p, EXECUTED)]
    if todo:  # not left by test_notebooks_run in this session: run what is missing, in a private folder
        executed = tmp_path_factory.mktemp("executed")
        for p in SOURCES.glob("*.ipynb"):
            if p not in todo and _current_ok(p, EXECUTED):
                shutil.copy2(EXECUTED / p.name, executed / p.name)
        for r in rn.run_all(todo, executed, log=lambda *_: None):
            assert r.status not in ("error", "timeout"), r.message
    chosen = sorted({*pages, *(p for p in SOURCES.glob("*.ipynb") if _current_ok(p, executed))})
    out = tmp_path_factory.mktemp("site") / "site"
    summary = bs.build_site(executed=executed, out=out, notebooks=SOURCES, only=[p.name for p in chosen],
                            run_missing=False, log=lambda *_: None)
    return out, pages, summary


@pytest.mark.slow
def test_site_builds_offline(site):
    out, pages, summary = site
    assert summary["failed_notebooks"] == []
    assert bs.remote_loads(out) == []
    assert (out / "_static" / "mathjax" / "tex-chtml.js").stat().st_size > 100_000
    index = (out / "index.html").read_text()
    for p in pages:
        assert (out / "notebooks" / f"{p.stem}.html").exists()
        assert f"notebooks/{p.stem}.html" in index          # the notebook table and the toctree link it
    assert "arXiv:2002.08127" in index and "arXiv:1804.06202" in index and "arXiv:2210.12818" in index
    assert "CPU" in index or "GPU" in index or "not stated" in index
    api = (out / "api.html").read_text()
    assert "api/method.html" in api
    method = (out / "api" / "method.html").read_text()
    assert 'id="module-strucspars_viz.permutation"' in method and 'id="strucspars_viz.learn_permutations"' not in method
    assert 'id="strucspars_viz.permutation.learn_permutations"' in method
    assert 'class="math' in method  # the docstrings' .. math:: blocks
    animated = [p for p in pages if "to_jshtml" in p.read_text()]
    html = (out / "notebooks" / f"{animated[0].stem}.html").read_text()
    assert "anim-buttons" in html and "font-awesome" not in html
    # our own pages (not docstrings, not notebooks) build without warnings
    ours = [w for w in summary["warnings"] if any(f"{s}" in w for s in ("index.md", "api.rst", "_generated"))]
    assert ours == []


# --- in a browser ---------------------------------------------------------------------------------



class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest's output readable
        pass


@pytest.fixture(scope="module")
def served(site):
    out = site[0]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(out)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", site
    finally:
        server.shutdown()
        server.server_close()


def _wait(predicate, timeout: float, what: str):
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except Exception as err:  # noqa: BLE001 (page still loading)
            last = err
        time.sleep(0.25)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


_IMAGES_JS = """
return Array.from(document.querySelectorAll('div.cell_output img, div.output img'))
  .filter(i => !(i.id || '').startsWith('_anim_img'))
  .map(i => [i.complete, i.naturalWidth, i.getAttribute('src').slice(0, 40)]);
"""


@pytest.mark.browser
@pytest.mark.slow
def test_pages_show_figures_animation_and_math_offline(served, headless_chrome):
    from selenium.webdriver.common.by import By

    url, (out, pages, _) = served
    ARTIFACTS.mkdir(exist_ok=True)
    # any host but ours fails at once: a page that needs the network shows it
    driver = headless_chrome("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", window="1280,1000",
                             page_load_timeout=30, capabilities={"goog:loggingPrefs": {"performance": "ALL"}})
    animated = [p for p in pages if "to_jshtml" in p.read_text()][0]
    others = [p for p in pages if p != animated][:1]
    visits = [f"notebooks/{p.stem}.html" for p in [animated, *others]] + ["api/method.html"]
    requests: list[str] = []
    for page in visits:
        driver.get(f"{url}/{page}")
        shot = ARTIFACTS / f"site_{Path(page).stem}.png"
        try:
            _wait(lambda: driver.execute_script("return document.readyState") == "complete", 20, f"{page} to load")
            # MathJax (served from _static/mathjax) typesets the formulas
            n_math = _wait(lambda: len(driver.find_elements(By.CSS_SELECTOR, "mjx-container")), 20,
                           f"MathJax to typeset a formula on {page}")
            assert n_math >= 1
            if page.startswith("notebooks/"):
                imgs = _wait(lambda: (lambda v: v if v and all(c and w > 0 for c, w, _ in v) else None)(
                    driver.execute_script(_IMAGES_JS)), 20, f"the figures of {page} to load")
                assert len(imgs) >= 1, f"{page}: no figure"
            if page.startswith(f"notebooks/{animated.stem}"):
                _check_player(driver, By, page)
        finally:
            driver.save_screenshot(str(shot))
        requests += [u for u in _request_urls(driver)]
    foreign = sorted({u for u in requests if not u.startswith((url, "data:", "blob:", "about:", "chrome"))})
    assert foreign == [], f"pages requested resources from elsewhere: {foreign}"
    assert any("/_static/mathjax/" in u for u in requests), "MathJax was not loaded from the site itself"


def _check_player(driver, By, page: str) -> None:
    """matplotlib's to_jshtml player: a frame shown, a slider with frames, buttons that step the frames."""
    frame = driver.find_element(By.CSS_SELECTOR, "img[id^='_anim_img']")  # the first player on the page
    anim_id = frame.get_attribute("id")[len("_anim_img"):]
    _wait(lambda: driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", frame), 20,
          f"the first animation frame on {page}")
    slider = driver.find_element(By.ID, f"_anim_slider{anim_id}")
    assert int(slider.get_attribute("max")) >= 1, "the animation has a single frame"
    buttons = driver.find_elements(By.CSS_SELECTOR, f"button[onclick^='anim{anim_id}.']")
    assert len(buttons) == 9
    before = frame.get_attribute("src")
    step = driver.find_element(By.CSS_SELECTOR, f"button[onclick='anim{anim_id}.next_frame()']")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", step)  # furo scrolls smoothly
    step.click()
    _wait(lambda: slider.get_attribute("value") == "1"
          and driver.execute_script(f"return anim{anim_id}.current_frame") == 1, 10,
          "frame 1 after clicking 'Next frame'")
    driver.execute_script(f"anim{anim_id}.last_frame()")
    _wait(lambda: slider.get_attribute("value") == slider.get_attribute("max") and frame.get_attribute("src") != before,
          10, "the last frame, a different picture from the first")
    # the icons are drawn by the inline style sheet of viz.player (Font Awesome would come from a CDN)
    glyph = driver.execute_script(
        "return getComputedStyle(document.querySelector('.anim-buttons .fa-play'), '::before').content")
    assert glyph not in ("", "none", "normal"), glyph


def _request_urls(driver) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
    return urls
