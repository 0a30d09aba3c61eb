from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.report.browser import start_browser


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """The session's one headless Chromium."""
    driver = start_browser()
    driver.set_page_load_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()
