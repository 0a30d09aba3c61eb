"""One headless Chromium (Selenium 4, Debian's chromium and chromedriver) shared by
the report tests of a session: on 2 loaded cores a browser start costs seconds.

Without Chromium the tests skip with the reason, unless the environment variable CI is
set: in CI a missing browser is a failure (``.ci/run`` installs it)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
DRIVER = ("/usr/bin/chromedriver",)


def _first(paths: tuple[str, ...], name: str) -> str | None:
    for p in paths:
        if os.path.exists(p):
            return p
    return shutil.which(name)


def screenshot_dir() -> Path:
    """Where screenshots go: $CONVERGE_ARTIFACTS/screenshots (CI keeps it), else
    build/screenshots (gitignored)."""
    base = os.environ.get("CONVERGE_ARTIFACTS")
    out = Path(base) / "screenshots" if base else REPO / "build" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    return out


def in_ci() -> bool:
    """Whether the environment variable CI says this is a CI run (``true``, ``1``…)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def start_browser() -> Any:
    """A headless Chromium driven by Selenium, or a skip (a failure under CI) saying
    what is missing."""
    binary = _first(CHROMIUM, "chromium")
    driver_path = _first(DRIVER, "chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        binary = None
        missing = "selenium is not installed (pip install '.[test]')"
    else:
        missing = "chromium and chromedriver are not installed (apt-get install " \
                  "chromium chromium-driver)"
    if binary is None or driver_path is None:
        if in_ci():
            pytest.fail(f"CI is set and {missing}: .ci/run installs them")
        pytest.skip(missing)
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--disable-gpu", "--window-size=1280,1000", "--no-first-run",
                "--disable-extensions", "--allow-file-access-from-files"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(driver_path))
