"""Shared fixtures. Fake on-disk datasets come from :mod:`strucspars_viz.data.fake` (one place)."""
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from strucspars_viz.data import roots as _roots
from strucspars_viz.data.fake import make_fake_imagefolder, write_fake_cifar


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    np.random.seed(0)
    yield


@pytest.fixture(autouse=True)
def _fresh_sample_announcement():
    """The sample fallback warns once per process; each test starts as a fresh process would."""
    _roots._reset_announcements()
    yield


@pytest.fixture
def no_data_env(monkeypatch, tmp_path) -> Path:
    """No ``$STRUCSPARS_DATA`` and a working directory without ``./data``: nothing named, sample fallback."""
    monkeypatch.delenv(_roots.DATA_ENV, raising=False)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


@pytest.fixture
def fake_cifar10(tmp_path) -> Path:
    """A data root holding a fake balanced CIFAR-10: 100 train (10 per class) / 50 test images."""
    root = tmp_path / "fake_cifar10"
    write_fake_cifar(root, "cifar10", n_train=100, n_test=50)
    return root


@pytest.fixture
def fake_cifar100(tmp_path) -> Path:
    """A data root holding a fake balanced CIFAR-100: 200 train (2 per class) / 100 test images."""
    root = tmp_path / "fake_cifar100"
    write_fake_cifar(root, "cifar100", n_train=200, n_test=100)
    return root


@pytest.fixture
def fake_imagefolder(tmp_path) -> Path:
    """A data root with ``train/`` (4 classes x 8) and ``val/`` (4 x 4) of 40x40 PNGs."""
    return make_fake_imagefolder(tmp_path / "fake_imagenet", num_classes=4, train_per_class=8, val_per_class=4,
                                 size=40)


def randomize_bn(model: torch.nn.Module, seed: int = 0) -> None:
    """Non-trivial BN statistics so that equivalence checks cannot pass by accident."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) * 0.2 - 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=g) * 0.2 - 0.1)


# --- headless Chromium (tests/test_browser.py, tests/test_site.py) ------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CHROME_ARGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--no-first-run", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage")


def browser_missing() -> str | None:
    """Why a browser test cannot run here (``None`` when it can)."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install selenium)"
    if not Path(CHROMIUM).exists():
        return f"chromium not found ({CHROMIUM}); apt-get install -y chromium chromium-driver"
    if not Path(CHROMEDRIVER).exists():
        return f"chromedriver not found ({CHROMEDRIVER}); apt-get install -y chromium-driver"
    return None


@pytest.fixture(scope="module")
def headless_chrome(tmp_path_factory):
    """A factory ``make(*extra_args, window=..., capabilities=...)`` of headless Chromium drivers, each
    with a fresh profile; all are quit when the module ends. Skips (with the reason) when unavailable."""
    reason = browser_missing()
    if reason:
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    made = []

    def make(*extra_args: str, window: str = "1600,1200", page_load_timeout: float = 60,
             capabilities: dict | None = None):
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        profile = tmp_path_factory.mktemp("chrome-profile")
        for arg in (*CHROME_ARGS, f"--user-data-dir={profile}", f"--window-size={window}", *extra_args):
            opts.add_argument(arg)
        for key, value in (capabilities or {}).items():
            opts.set_capability(key, value)
        drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
        drv.set_page_load_timeout(page_load_timeout)
        drv.set_script_timeout(30)
        made.append(drv)
        return drv

    yield make
    for drv in made:
        drv.quit()
