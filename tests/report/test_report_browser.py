"""`converge report` and `converge test --report` pages, opened in headless Chromium:
every shipped ruleset renders with no console error, the tables filter, sort and page,
a derivation opens, a tool answer expands, and hostile values stay text.

Screenshots go to $CONVERGE_ARTIFACTS/screenshots (or build/screenshots)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.report.browser import screenshot_dir
from tests.report.reports import HOSTILE, REPO, RULESETS, hostile_trace, ruleset_report

PRICING = REPO / "rulesets" / "pricing" / "pricing.cvg"
TIMEOUT = 60


def converge(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "converge_rules.cli", *args],
                          capture_output=True, text=True, cwd=REPO, timeout=300)


def by_css(driver: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(driver.find_elements(By.CSS_SELECTOR, selector))


def wait_for(driver: Any, condition: Any, what: str) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, TIMEOUT).until(lambda d: condition(d), message=what)


def open_page(driver: Any, path: Path) -> None:
    """Load ``path`` and wait until its script has run; the browser log is emptied
    first, so that :func:`console_errors` sees this page's messages only."""
    driver.get_log("browser")
    driver.get(path.resolve().as_uri())
    wait_for(driver, lambda d: d.execute_script(
        "return document.body && document.body.getAttribute('data-ready')") == "1",
        f"the script of {path.name} to run")


def console_errors(driver: Any) -> list[str]:
    """The page's console errors (and failed loads, CSP refusals, uncaught
    exceptions: Chromium logs them all as SEVERE)."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def shoot(driver: Any, name: str) -> Path:
    path = screenshot_dir() / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def shoot_whole_page(driver: Any, name: str) -> Path:
    """A screenshot of the whole page (the window made as tall as the page for it)."""
    size = driver.get_window_size()
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(size["width"], min(int(height) + 100, 6000))
    driver.execute_script("window.scrollTo(0, 0)")
    try:
        return shoot(driver, name)
    finally:
        driver.set_window_size(size["width"], size["height"])


def visible_rows(table: Any) -> list[list[str]]:
    return [[td.text for td in tr.find_elements("css selector", "td")]
            for tr in table.find_elements("css selector", "tbody tr")]


def type_box(driver: Any, name: str) -> Any:
    (box,) = by_css(driver, f'details.fact-type[data-type="{name}"]')
    return box


@pytest.mark.parametrize("ruleset", RULESETS, ids=[p.stem for p in RULESETS])
def test_every_shipped_ruleset_renders_without_console_errors(
        browser: Any, tmp_path: Path, ruleset: Path) -> None:
    html, view = ruleset_report(ruleset)
    page = tmp_path / f"{ruleset.stem}.html"
    page.write_text(html, encoding="utf-8")
    open_page(browser, page)
    assert console_errors(browser) == []
    assert view.status in browser.find_element("id", "status").text
    # each type with facts in the end has its table open, one row per fact (a page)
    for type_name, facts in view.context().items():
        box = type_box(browser, type_name)
        assert box.get_attribute("open") is not None
        (table,) = box.find_elements("css selector", "table")
        assert len(visible_rows(table)) == min(len(facts), 50), type_name
    assert len(by_css(browser, "#timeline svg rect.bar")) > 0
    shoot(browser, f"report-{ruleset.stem}")
    assert console_errors(browser) == []


def pricing_report(tmp: Path, *extra: str) -> Path:
    """A real job's report through the CLI: pricing on its input facts and ``extra``
    quotes (JSON Lines)."""
    facts = tmp / "in.jsonl"
    facts.write_text((REPO / "rulesets" / "pricing" / "input.jsonl").read_text()
                     + "".join(line + "\n" for line in extra), encoding="utf-8")
    trace = tmp / "run.jsonl"
    done = converge("run", str(PRICING), "--facts", str(facts), "--trace", str(trace))
    assert trace.exists(), done.stderr
    page = tmp / "report.html"
    done = converge("report", str(trace), "--ruleset", str(PRICING), "-o", str(page))
    assert done.returncode == 0, done.stderr
    return page


EURO = '{"Quote": {"sku": "B2", "vendor": "euro", "amount": 19.0, "currency": "EUR"}}'


@pytest.fixture(scope="module")
def pricing_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Pricing with a quote in euros: a tool call answers the rate."""
    return pricing_report(tmp_path_factory.mktemp("pricing"), EURO)


@pytest.fixture(scope="module")
def failing_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Pricing with a quote in a currency the tool does not know: the call fails and
    the agent's effect is discarded."""
    return pricing_report(tmp_path_factory.mktemp("failing"), EURO,
                          '{"Quote": {"sku": "C3", "vendor": "zed", "amount": 3.0, '
                          '"currency": "XYZ"}}')


def test_a_fact_table_filters_sorts_and_opens_a_derivation(
        browser: Any, pricing_page: Path) -> None:
    open_page(browser, pricing_page)
    box = type_box(browser, "Quote")
    (table,) = box.find_elements("css selector", "table")
    assert len(visible_rows(table)) == 5
    box.find_element("css selector", "input.filter").send_keys("euro")
    wait_for(browser, lambda d: len(visible_rows(table)) == 1, "the filter to apply")
    assert "euro" in visible_rows(table)[0]
    assert box.find_element("css selector", ".pager-info").text == "rows 1–1 of 1 (filtered from 5)"
    box.find_element("css selector", "input.filter").clear()
    box.find_element("css selector", "input.filter").send_keys(" ")  # fires input
    wait_for(browser, lambda d: len(visible_rows(table)) == 5, "the filter to clear")

    # sort by amount, descending on the second click
    amount = next(th for th in box.find_elements("css selector", "th") if th.text == "amount")
    amount.click()
    column = [th.text for th in box.find_elements("css selector", "th")].index("amount")
    ascending = [float(r[column]) for r in visible_rows(table)]
    assert ascending == sorted(ascending)
    amount.click()
    assert [float(r[column]) for r in visible_rows(table)] == sorted(ascending, reverse=True)

    # the derivation of the price of A1: undercut, its bindings, its two input facts
    prices = type_box(browser, "Price")
    (row,) = [tr for tr in prices.find_elements("css selector", "tbody tr")
              if "A1" in tr.text]
    row.find_element("css selector", "button.fact-id").click()
    tree = browser.find_element("id", "tree")
    wait_for(browser, lambda d: "by agent undercut" in tree.text, "the derivation")
    assert "pricing.cvg:" in tree.text
    assert 'with cost = 10.0, sku = "A1", theirs = 12.0' in tree.text
    assert "won a conflict in cycle 1" in tree.text
    heads = [s.find_element("css selector", ".head").text
             for s in tree.find_elements("css selector", "ul.support > li.node")]
    assert len(heads) == 2
    assert 'Cost(sku: "A1", amount: 10.0)' in heads[0] and "input fact" in heads[0]
    assert 'Quote(sku: "A1", vendor: "acme", amount: 12.0, currency: "USD")' in heads[1]
    shoot(browser, "report-pricing-derivation")
    assert console_errors(browser) == []


def test_a_derivation_names_the_tool_call_whose_answer_it_used(
        browser: Any, pricing_page: Path) -> None:
    open_page(browser, pricing_page)
    calls = browser.find_element("id", "call-table").text
    assert "fx_rate" in calls and "{usd: 1.08}" in calls
    type_box(browser, "Rate").find_element("css selector", "button.fact-id").click()
    tree = browser.find_element("id", "tree")
    wait_for(browser, lambda d: 'tool fx_rate(currency: "EUR")' in tree.text,
             "the tool call in the derivation")
    assert "answered {usd: 1.08}" in tree.text
    # the picture in docs/report.md (copied from here by hand when the page changes)
    shoot_whole_page(browser, "report-pricing-whole")
    assert console_errors(browser) == []


def test_failed_tool_calls_and_failed_agents_are_shown(
        browser: Any, failing_page: Path) -> None:
    open_page(browser, failing_page)
    (failed,) = [r for r in visible_rows(browser.find_element("css selector",
                                                              "#call-table table"))
                 if "XYZ" in r[3]]
    assert "no demo rate for 'XYZ'" in failed[5]
    summary = browser.find_element("id", "summary").text
    assert "Failed agents" in summary and "fetch_rate" in summary
    (row,) = [tr for tr in by_css(browser, "#agents tbody tr") if "fetch_rate" in tr.text]
    assert "cycle 2: ToolError" in row.text
    shoot(browser, "report-pricing-failed-tool")
    assert console_errors(browser) == []


def test_conflicts_show_candidates_winner_criterion_and_losers(
        browser: Any, pricing_page: Path) -> None:
    open_page(browser, pricing_page)
    table = browser.find_element("css selector", "#conflict-table table")
    rows = visible_rows(table)
    (a1,) = [r for r in rows if '"A1"' in r[2]]
    assert a1[0] == "1" and a1[1] == "Price"
    assert "amount: 11.88" in a1[3] and "amount: 12.0" in a1[4]
    assert a1[5] == "resolve by highest confidence"


def test_hostile_values_stay_inert_text(browser: Any, tmp_path: Path) -> None:
    trace = hostile_trace(tmp_path / "hostile.jsonl")
    page = tmp_path / "hostile.html"
    done = converge("report", str(trace), "-o", str(page), "--title", HOSTILE)
    assert done.returncode == 0, done.stderr
    assert "<img src=x" not in page.read_text(encoding="utf-8")
    open_page(browser, page)
    # open everything the values reach: both tables, the derivation, the long answer
    for box in by_css(browser, "details.fact-type"):
        if box.get_attribute("open") is None:
            box.find_element("css selector", "summary").click()
    by_css(browser, 'details.fact-type[data-type="Summary"] button.fact-id')[0].click()
    for details in by_css(browser, "#tree details.derivation"):
        if details.get_attribute("open") is None:
            details.find_element("css selector", "summary").click()
    (answer,) = by_css(browser, "#call-table details.long summary")[:1]
    answer.click()
    assert browser.execute_script("return window.__pwned") is None
    assert by_css(browser, "img") == []
    assert len(by_css(browser, "script")) == 2  # the page's data and its own script
    text = browser.find_element("tag name", "body").text
    assert text.count("<img src=x onerror=") >= 8  # shown, as text, wherever it went
    assert browser.title == HOSTILE
    shoot(browser, "report-hostile")
    assert console_errors(browser) == []


def test_a_long_tool_answer_is_truncated_and_expands(browser: Any, tmp_path: Path) -> None:
    page = tmp_path / "long.html"
    done = converge("report", str(hostile_trace(tmp_path / "t.jsonl")), "-o", str(page))
    assert done.returncode == 0, done.stderr
    open_page(browser, page)
    (details,) = [d for d in by_css(browser, "#call-table details.long")
                  if "x" * 300 in (d.get_attribute("textContent") or "")]
    full = details.find_element("css selector", "pre.full")
    assert not full.is_displayed()
    assert "…" in details.text
    details.find_element("css selector", "summary").click()
    assert full.is_displayed()
    assert "x" * 300 in full.text


def test_a_big_trace_pages_its_tables(browser: Any, tmp_path: Path) -> None:
    """5,000 facts of one type: the table shows 50 at a time, a filter searches all of
    them, and the pager walks through."""
    trace = tmp_path / "big.jsonl"
    with trace.open("w", encoding="utf-8") as f:
        for i in range(5000):
            f.write(json.dumps({"event": "fact_added", "id": i, "type": "Item",
                                "fields": {"n": i, "name": f"item-{i}"}, "agent": None,
                                "cycle": 0, "support": [], "confidence": 1.0}) + "\n")
        f.write(json.dumps({"event": "status", "status": "converged", "detail": ""}) + "\n")
    page = tmp_path / "big.html"
    assert converge("report", str(trace), "-o", str(page)).returncode == 0
    open_page(browser, page)
    box = type_box(browser, "Item")
    (table,) = box.find_elements("css selector", "table")
    assert len(visible_rows(table)) == 50
    info = box.find_element("css selector", ".pager-info")
    assert info.text == "rows 1–50 of 5000"
    box.find_element("css selector", "button.next").click()
    assert info.text == "rows 51–100 of 5000"
    assert visible_rows(table)[0][1] == "50"
    box.find_element("css selector", "input.filter").send_keys("item-4999")
    wait_for(browser, lambda d: len(visible_rows(table)) == 1, "the filter")
    assert console_errors(browser) == []


def test_the_test_report_shows_each_test_and_a_failure_with_its_diff(
        browser: Any, tmp_path: Path) -> None:
    ruleset = tmp_path / "pricing.cvg"
    ruleset.write_text(PRICING.read_text(encoding="utf-8").replace(
        "amount: 11.88)", "amount: 11.89)"), encoding="utf-8")
    page = tmp_path / "tests.html"
    done = converge("test", str(ruleset), str(REPO / "rulesets" / "counter"),
                    "--report", str(page))
    assert done.returncode == 1, done.stderr
    open_page(browser, page)
    assert browser.find_element("id", "n-failed").text == "1"
    (failed,) = by_css(browser, 'details.test[data-status="failed"]')
    assert failed.get_attribute("open") is not None
    assert "amount: expected 11.89, got 11.88" in failed.text
    assert "by agent undercut" in failed.text  # the derivation of the closest fact
    from selenium.webdriver.support.select import Select

    Select(browser.find_element("id", "test-status")).select_by_visible_text("passed")
    shown = [d for d in by_css(browser, "details.test") if d.is_displayed()]
    assert shown and all(d.get_attribute("data-status") == "passed" for d in shown)
    shoot(browser, "test-report")
    assert console_errors(browser) == []


def test_a_bidi_override_in_a_value_is_shown_escaped(browser: Any, tmp_path: Path) -> None:
    """A right-to-left override in a fact value shows as ``\\u202e``, as on the
    terminal: raw, it reorders the rest of its cell (and `converge check` warns of it
    in a ruleset, CVG011)."""
    ruleset = tmp_path / "r.cvg"
    ruleset.write_text("ruleset r\nfact A { key id: str }\n", encoding="utf-8")
    facts = tmp_path / "in.jsonl"
    facts.write_text(json.dumps({"A": {"id": "by \u202eana\u2028"}}) + "\n",
                     encoding="utf-8")
    trace, page = tmp_path / "t.jsonl", tmp_path / "r.html"
    assert converge("run", str(ruleset), "--facts", str(facts), "--trace",
                    str(trace)).returncode == 0
    done = converge("report", str(trace), "-r", str(ruleset), "-o", str(page))
    assert done.returncode == 0, done.stderr
    open_page(browser, page)
    for box in by_css(browser, "details.fact-type"):
        if box.get_attribute("open") is None:
            box.find_element("css selector", "summary").click()
    text = browser.find_element("tag name", "body").text
    assert "by \\u202eana\\u2028" in text and "\u202e" not in text
    assert console_errors(browser) == []
