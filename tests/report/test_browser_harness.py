"""The browser tests skip without Chromium only outside CI: under CI a missing browser
fails them (so CI can never go green with the report tests silently skipped)."""

from __future__ import annotations

import pytest

from tests.report import browser


@pytest.fixture
def no_chromium(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(browser, "CHROMIUM", ("/nonexistent/chromium",))
    monkeypatch.setattr(browser, "DRIVER", ("/nonexistent/chromedriver",))
    monkeypatch.setattr(browser.shutil, "which", lambda name: None)


@pytest.mark.usefixtures("no_chromium")
@pytest.mark.parametrize("value", ["true", "1", "yes"])
def test_under_ci_a_missing_browser_is_a_failure(monkeypatch: pytest.MonkeyPatch,
                                                 value: str) -> None:
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception, match="CI is set and chromium"):
        browser.start_browser()


@pytest.mark.usefixtures("no_chromium")
@pytest.mark.parametrize("value", [None, "", "false", "0"])
def test_outside_ci_a_missing_browser_skips_with_the_reason(
        monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.skip.Exception, match="apt-get install chromium"):
        browser.start_browser()
