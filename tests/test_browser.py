"""End to end in a real browser: the explorer notebook in JupyterLab, and the demo's report.html.

Drives Debian's ``chromium`` through ``/usr/bin/chromedriver`` with Selenium (headless). Skipped, with the
reason, when selenium, chromium or chromedriver are missing. CI needs the apt packages
``chromium chromium-driver``. Screenshots go to ``test-artifacts/`` (gitignored).
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
pytest.importorskip("selenium")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(predicate, timeout: float, what: str, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except RuntimeError:
            raise  # fatal (e.g. the server died): no point waiting
        except Exception as err:  # noqa: BLE001 (DOM in flux)
            last = err
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


@pytest.fixture(scope="module")
def driver(headless_chrome):
    ARTIFACTS.mkdir(exist_ok=True)
    return headless_chrome()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on 127.0.0.1 (free port, no token) serving a temporary copy of the notebooks."""
    root = tmp_path_factory.mktemp("lab")
    (root / "notebooks").mkdir()
    shutil.copy(REPO / "notebooks" / "02b_explorer.ipynb", root / "notebooks")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "STRUCSPARS_QUICK"}  # quick mode skips the widget
    env = {**env, "JUPYTER_CONFIG_DIR": str(root / ".jupyter-config"),
           "JUPYTER_RUNTIME_DIR": str(root / ".jupyter-runtime")}
    log = open(root / "jupyter.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
         "--ServerApp.token=", "--ServerApp.password=", "--ServerApp.open_browser=False",
         f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
         "--ServerApp.disable_check_xsrf=True", *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else [])],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        def up():
            if proc.poll() is not None:
                raise RuntimeError(f"jupyter exited with {proc.returncode}: {(root / 'jupyter.log').read_text()[-2000:]}")
            with urllib.request.urlopen(f"{url}/api/status", timeout=2) as r:
                return r.status == 200
        _wait(up, 90, "the Jupyter server")
        yield url, root
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


def _widget_img_src(drv) -> str | None:
    imgs = drv.find_elements(By.CSS_SELECTOR, ".widget-output img, .jupyter-widgets-output-area img")
    srcs = [i.get_attribute("src") for i in imgs]
    srcs = [s for s in srcs if s and s.startswith("data:image/png;base64,")]
    return srcs[0] if srcs else None


def test_explorer_in_jupyterlab(lab, driver):
    try:
        _drive_explorer(lab, driver)
    except Exception:
        driver.save_screenshot(str(ARTIFACTS / "explorer_failure.png"))
        log = lab[1] / "jupyter.log"
        print(log.read_text()[-4000:] if log.is_file() else "")
        raise


def _drive_explorer(lab, driver):
    url, _ = lab
    driver.get(f"{url}/lab/tree/notebooks/02b_explorer.ipynb")
    _wait(lambda: driver.execute_script(
        "const e = document.querySelector('.jp-Notebook-ExecutionIndicator');"
        "return !!window.jupyterapp && !!e && e.getAttribute('data-status') === 'idle';"),
        120, "the notebook's kernel to be idle")
    started = "return Array.from(document.querySelectorAll('.jp-InputPrompt')).some(p => /\\[(\\*|\\d+)\\]/.test(p.textContent));"
    for attempt in range(3):  # the command can be lost if the notebook is not yet the current widget
        driver.find_element(By.CSS_SELECTOR, ".jp-Notebook").click()  # makes it the current notebook
        driver.execute_script("return window.jupyterapp.commands.execute('notebook:run-all-cells');")
        try:
            _wait(lambda: driver.execute_script(started), 45, "the first cell to start")
            break
        except TimeoutError:
            print(f"run-all attempt {attempt + 1} did not start any cell; retrying")
            if attempt == 2:
                raise
    before = _wait(lambda: _widget_img_src(driver), 240, "the explorer figure")
    driver.save_screenshot(str(ARTIFACTS / "explorer_before.png"))

    # 1) move the keep slider with the keyboard (0.90 -> 0.70): only the criterion is recomputed
    slider = _wait(lambda: [s for s in driver.find_elements(By.CSS_SELECTOR, ".widget-slider")
                            if s.find_element(By.CSS_SELECTOR, ".widget-label").text.strip() == "keep"],
                   30, "the keep slider")[0]
    handle = slider.find_element(By.CSS_SELECTOR, ".noUi-handle")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", handle)
    handle.click()
    for _ in range(20):
        handle.send_keys(Keys.ARROW_LEFT)
    readout = slider.find_element(By.CSS_SELECTOR, ".widget-readout")
    _wait(lambda: readout.text.strip() == "0.70", 30, "the slider readout to show 0.70")
    after_keep = _wait(lambda: (s := _widget_img_src(driver)) and s != before and s, 60,
                       "the figure to re-render after moving keep")
    driver.save_screenshot(str(ARTIFACTS / "explorer_keep.png"))
    assert after_keep != before

    # 2) pick another shuffle: a fixed shuffle is recomputed at once
    select = _wait(lambda: [s for s in driver.find_elements(By.CSS_SELECTOR, ".widget-dropdown")
                            if s.find_element(By.CSS_SELECTOR, "label").text.strip() == "shuffle"],
                   30, "the shuffle dropdown")[0]
    Select(select.find_element(By.TAG_NAME, "select")).select_by_visible_text("none")
    after_shuffle = _wait(lambda: (s := _widget_img_src(driver)) and s != after_keep and s, 60,
                          "the figure to re-render after picking shuffle = none")
    driver.save_screenshot(str(ARTIFACTS / "explorer_shuffle.png"))
    assert after_shuffle not in (before, after_keep)

    # 3) with shuffle = none, switch the source (issue 11: KeyError 'layer3.0.conv2', status stuck at
    #    "solving...", stale layer list): the layer list follows the source and the figure re-renders
    def dropdown(label):
        return [s for s in driver.find_elements(By.CSS_SELECTOR, ".widget-dropdown")
                if s.find_element(By.CSS_SELECTOR, "label").text.strip() == label][0]

    source = Select(_wait(lambda: dropdown("source"), 30, "the source dropdown").find_element(By.TAG_NAME, "select"))
    layers_before = [o.text for o in Select(dropdown("layer").find_element(By.TAG_NAME, "select")).options]
    other = next(o.text for o in source.options if o.text != source.first_selected_option.text)
    source.select_by_visible_text(other)
    after_source = _wait(lambda: (s := _widget_img_src(driver)) and s != after_shuffle and s, 60,
                         f"the figure to re-render after picking source = {other}")
    # the figure and the layer list are separate widget messages: wait for the list too (busy machines)
    layers_after = _wait(lambda: (lst := [o.text for o in Select(dropdown("layer").find_element(
        By.TAG_NAME, "select")).options]) != layers_before and lst, 30, f"the layer list of source {other}")
    assert layers_after != layers_before
    status = driver.find_elements(By.CSS_SELECTOR, ".widget-html")
    assert not [e.text for e in status if "solving" in e.text or "error" in e.text]
    driver.save_screenshot(str(ARTIFACTS / "explorer_source.png"))
    assert after_source
    errors = driver.find_elements(By.CSS_SELECTOR, "[data-mime-type='application/vnd.jupyter.stderr']")
    assert not [e.text for e in errors if "Traceback" in e.text]


def test_report_renders(driver, tmp_path_factory):
    from strucspars_viz.demo import run_demo

    out = tmp_path_factory.mktemp("demo")
    result = run_demo(out, quick=True, progress=False)
    driver.get(result.report.resolve().as_uri())
    _wait(lambda: driver.execute_script("return document.readyState") == "complete", 30, "report.html to load")
    anims = driver.find_elements(By.CSS_SELECTOR, "img.animation")
    assert len(anims) >= 3
    sizes = _wait(lambda: (w := driver.execute_script(
        "return Array.from(document.querySelectorAll('img')).map(i => i.complete ? i.naturalWidth : 0);"))
        and all(x > 0 for x in w) and w, 30, "every image to decode")
    assert len(sizes) >= 7
    width = driver.execute_script("return document.getElementById('anim-planted-0').naturalWidth")
    assert width > 100
    assert driver.find_element(By.ID, "table-groups").text.count("layer") >= 10
    assert "MACs" in driver.find_element(By.ID, "table-costs").text
    driver.execute_script("document.getElementById('anim-training').scrollIntoView();")
    driver.save_screenshot(str(ARTIFACTS / "report.png"))
