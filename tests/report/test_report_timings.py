"""The report's time (tool latency, agent and cycle time, from a store or `--timings`),
its broken invariants and its approvals, in headless Chromium: the content is there,
the tables sort, and hostile values stay inert."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from converge_rules.analysis.runview import view_from_events
from converge_rules.engine.timings import call_key
from converge_rules.report.html import render_run_report
from converge_rules.report.run import build_run_report
from tests.report.reports import HOSTILE, REPO, hostile_trace
from tests.report.test_report_browser import (
    EURO,
    PRICING,
    by_css,
    console_errors,
    converge,
    open_page,
    shoot,
    shoot_whole_page,
    type_box,
    visible_rows,
    wait_for,
)
from tests.report.test_report_cli import GUARDED, embedded


def _facts(tmp: Path) -> Path:
    facts = tmp / "in.jsonl"
    facts.write_text((REPO / "rulesets" / "pricing" / "input.jsonl").read_text()
                     + EURO + "\n", encoding="utf-8")
    return facts


@pytest.fixture(scope="module")
def stored_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Pricing with a quote in euros, run with --store (timed there), reported."""
    tmp = tmp_path_factory.mktemp("timed")
    store = tmp / "run.db"
    done = converge("run", str(PRICING), "--facts", str(_facts(tmp)), "--store", str(store))
    assert done.returncode == 0, done.stderr
    page = tmp / "report.html"
    done = converge("report", str(store), "--ruleset", str(PRICING), "-o", str(page))
    assert done.returncode == 0, done.stderr
    return page


def _header_index(table: Any, name: str) -> int:
    heads = [th.text.strip().rstrip(" ▲▼") for th in table.find_elements("css selector",
                                                                         "thead th")]
    return heads.index(name)


def test_a_stored_jobs_page_shows_its_time(browser: Any, stored_page: Path) -> None:
    open_page(browser, stored_page)
    summary = browser.find_element("id", "summary").text
    assert browser.find_element("id", "t-tools").text.endswith("s")
    assert "1 paid" in browser.find_element("id", "timed-note").text
    assert "fx_rate" in browser.find_element("id", "slowest-tools").text
    assert "not recorded" not in summary
    for part in ("evaluate", "merge", "agents", "latency"):
        assert by_css(browser, f"#timeline rect.bar.{part}"), part
    captions = [f.text for f in by_css(browser, "#timeline figcaption")]
    assert any(c.startswith("Tool latency (seconds)") for c in captions)
    # the agents table: time spent, sortable by its seconds
    table = browser.find_element("css selector", "#agents table")
    at = _header_index(table, "time spent")
    head = table.find_elements("css selector", "thead th")[at]
    head.click()
    rows = table.find_elements("css selector", "tbody tr")
    seconds = [float(r.find_elements("css selector", "td")[at].get_attribute("data-sort"))
               for r in rows]
    assert seconds == sorted(seconds) and head.get_attribute("aria-sort") == "ascending"
    head.click()
    rows = table.find_elements("css selector", "tbody tr")
    assert [float(r.find_elements("css selector", "td")[at].get_attribute("data-sort"))
            for r in rows] == sorted(seconds, reverse=True)
    (fetch,) = [r for r in rows if "fetch_rate" in r.text]
    assert fetch.find_elements("css selector", "td")[at].text.endswith("s")
    # the tool-call table: latency and where the answer came from
    calls = browser.find_element("css selector", "#call-table table")
    (row,) = visible_rows(calls)
    assert row[_header_index(calls, "latency")].endswith("s")
    assert row[_header_index(calls, "answered")] == "called"
    tools = browser.find_element("css selector", "#tools table.tools")
    assert "fx_rate" in tools.text and _header_index(tools, "total latency") > 0
    # the picture in docs/report.md (copied from here by hand when the page changes)
    type_box(browser, "Rate").find_element("css selector", "button.fact-id").click()
    tree = browser.find_element("id", "tree")
    wait_for(browser, lambda d: 'tool fx_rate(currency: "EUR")' in tree.text,
             "the tool call in the derivation")
    shoot_whole_page(browser, "report-pricing-timed-whole")
    assert console_errors(browser) == []


def test_a_trace_with_its_timings_file_shows_latency_and_sorts_by_it(
        browser: Any, tmp_path: Path) -> None:
    facts = _facts(tmp_path)
    facts.write_text(facts.read_text() + '{"Quote": {"sku": "A1", "vendor": "brit", '
                     '"amount": 8.0, "currency": "GBP"}}\n', encoding="utf-8")
    trace, timings = tmp_path / "run.jsonl", tmp_path / "run.timings.jsonl"
    done = converge("run", str(PRICING), "--facts", str(facts), "--trace", str(trace),
                    "--timings", str(timings))
    assert done.returncode == 0, done.stderr
    page = tmp_path / "report.html"
    done = converge("report", str(trace), "--timings", str(timings), "-o", str(page))
    assert done.returncode == 0, done.stderr
    data = embedded(page.read_text(encoding="utf-8"))
    assert data["timed"] and all(c[6] is not None and c[7] == "called"
                                 for c in data["calls"])
    open_page(browser, page)
    calls = browser.find_element("css selector", "#call-table table")
    at = _header_index(calls, "latency")
    calls.find_elements("css selector", "thead th")[at].click()
    shown = [r[at] for r in visible_rows(calls)]
    order = sorted(data["calls"], key=lambda c: c[6])
    assert len(shown) == 2 and [r[3] for r in visible_rows(calls)] == [c[3] for c in order]
    assert console_errors(browser) == []


def test_without_timings_the_page_says_how_to_record_them(
        browser: Any, tmp_path: Path) -> None:
    trace = tmp_path / "run.jsonl"
    done = converge("run", str(PRICING), "--facts", str(_facts(tmp_path)), "--trace",
                    str(trace))
    assert done.returncode == 0, done.stderr
    page = tmp_path / "report.html"
    assert converge("report", str(trace), "-o", str(page)).returncode == 0
    open_page(browser, page)
    said = browser.find_element("id", "not-timed").text
    assert "not recorded" in said and "--timings" in said and "--store" in said
    calls = browser.find_element("css selector", "#call-table table")
    with pytest.raises(ValueError):
        _header_index(calls, "latency")
    assert not by_css(browser, "#timeline rect.bar.latency")
    assert console_errors(browser) == []


def test_hostile_names_in_timings_stay_inert(browser: Any, tmp_path: Path) -> None:
    trace = hostile_trace(tmp_path / "hostile.jsonl")
    key = call_key(HOSTILE, {"q": HOSTILE})
    records = [
        {"kind": "cycle", "cycle": 1, "evaluate": 0.5, "merge": 0.01},
        {"kind": "tool", "cycle": 1, "agent": HOSTILE, "tool": HOSTILE, "key": key,
         "seconds": 0.25, "source": HOSTILE},
        {"kind": "tool", "cycle": 1, "agent": HOSTILE, "tool": HOSTILE, "key": key,
         "seconds": 0.125, "source": "memo"},
        {"kind": "agent", "cycle": 1, "agent": HOSTILE, "seconds": 0.4},
    ]
    timings = tmp_path / "t.jsonl"
    timings.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    page = tmp_path / "hostile.html"
    done = converge("report", str(trace), "--timings", str(timings), "-o", str(page))
    assert done.returncode == 0, done.stderr
    assert "<img src=x" not in page.read_text(encoding="utf-8")
    open_page(browser, page)
    calls = browser.find_element("css selector", "#call-table table")
    at = _header_index(calls, "answered")
    calls.find_elements("css selector", "thead th")[at].click()
    assert browser.execute_script("return window.__pwned") is None
    assert by_css(browser, "img") == []
    assert "<img src=x onerror=" in browser.find_element("id", "slowest-tools").text
    assert any("<img src=x onerror=" in r[at] for r in visible_rows(calls))
    assert console_errors(browser) == []


def test_broken_invariants_are_listed_with_outcome_agents_and_facts(
        browser: Any, tmp_path: Path) -> None:
    ruleset = tmp_path / "guarded.cvg"
    ruleset.write_text(GUARDED, encoding="utf-8")
    facts = tmp_path / "in.jsonl"
    facts.write_text('{"Claim": {"claim": "big", "amount": 500.0}}\n'
                     + "".join(f'{{"Claim": {{"claim": "c{i}", "amount": 90.0}}}}\n'
                               for i in range(12)), encoding="utf-8")
    trace = tmp_path / "run.jsonl"
    converge("run", str(ruleset), "--facts", str(facts), "--trace", str(trace))
    page = tmp_path / "report.html"
    done = converge("report", str(trace), "-r", str(ruleset), "-o", str(page))
    assert done.returncode == 0, done.stderr
    open_page(browser, page)
    assert browser.find_element("id", "n-invariants").text == "2"
    table = browser.find_element("css selector", "#invariant-table table")
    rows = {r[1]: r for r in visible_rows(table)}
    assert set(rows) == {"small", "budget"}
    assert rows["small"][2] == "effect discarded" and rows["small"][3] == "pay_big"
    assert 'claim: "big"' in rows["small"][4] and "amount: 500.0" in rows["small"][4]
    assert rows["budget"][2] == "the job ended"
    shoot(browser, "report-invariants")
    assert console_errors(browser) == []


def _approval_events(value: str) -> list[dict[str, Any]]:
    """A hand-written job with approval gates (issue 14), its events shaped as the
    `gates` branch writes them: two facts held, one of them decided."""
    return [
        {"event": "fact_added", "id": 0, "type": "Claim",
         "fields": {"claim": value, "amount": 500.0}, "agent": None, "cycle": 0,
         "support": [], "confidence": 1.0},
        {"event": "cycle_start", "cycle": 1, "tier": 1, "agents": ["pay"]},
        {"event": "approval_pending", "cycle": 1, "id": "p1", "gate": value,
         "type": "Payment", "fields": {"claim": value, "amount": 500.0}, "agent": "pay",
         "support": [0], "confidence": 1.0},
        {"event": "approval_pending", "cycle": 1, "id": "p2", "gate": "big_payments",
         "type": "Payment", "fields": {"claim": "small", "amount": 5.0}, "agent": "pay",
         "support": [0], "confidence": 1.0},
        {"event": "cycle_end", "cycle": 1, "tier": 1, "added": 0, "removed": 0, "live": 1},
        {"event": "approval_decided", "cycle": 2, "id": "p2", "gate": "big_payments",
         "type": "Payment", "fields": {"claim": "small", "amount": 5.0},
         "decision": "approve", "by": value, "at": "2026-12-06T17:00:00Z", "note": value,
         "edits": {}, "outcome": "merged"},
        {"event": "status", "status": "awaiting_approval", "detail": value},
    ]


def test_pending_approvals_and_decisions_are_listed_inert(
        browser: Any, tmp_path: Path) -> None:
    view = view_from_events(_approval_events(HOSTILE))
    page = tmp_path / "approvals.html"
    page.write_text(render_run_report(build_run_report(view, title="approvals",
                                                       source="hand-written")),
                    encoding="utf-8")
    assert "<img src=x" not in page.read_text(encoding="utf-8")
    open_page(browser, page)
    assert browser.find_element("id", "n-awaiting").text == "1"
    assert browser.find_element("id", "n-approvals").text == "2 / 1"
    table = browser.find_element("css selector", "#approval-table table")
    rows = visible_rows(table)
    assert [(r[1], r[2], r[6]) for r in rows] == [
        ("pending", "p1", "awaiting"), ("pending", "p2", "decided in cycle 2"),
        ("decided", "p2", "approve (merged)")]
    assert "<img src=x onerror=" in rows[0][3] and "<img src=x onerror=" in rows[0][5]
    assert "Payment(" in rows[2][5] and "<img src=x onerror=" in rows[2][7]
    assert "at: " in rows[2][7] and "support: [0]" in rows[0][7]
    assert browser.execute_script("return window.__pwned") is None
    assert by_css(browser, "img") == []
    shoot(browser, "report-approvals")
    assert console_errors(browser) == []


def test_a_job_without_invariants_or_approvals_says_so(browser: Any, tmp_path: Path) -> None:
    page = tmp_path / "plain.html"
    view = view_from_events(_approval_events("x")[:2])
    page.write_text(render_run_report(build_run_report(view, title="t", source="s")),
                    encoding="utf-8")
    open_page(browser, page)
    assert browser.find_element("id", "invariant-table").text == "No invariant was broken."
    assert "No fact waited for approval" in browser.find_element("id", "approval-table").text
    assert console_errors(browser) == []


def test_bad_timings_input_is_a_clear_error_without_traceback(tmp_path: Path) -> None:
    trace = tmp_path / "run.jsonl"
    done = converge("run", str(PRICING), "--facts", str(_facts(tmp_path)), "--trace",
                    str(trace))
    assert done.returncode == 0, done.stderr
    page = tmp_path / "report.html"
    # the trace given as its own timings
    done = converge("report", str(trace), "--timings", str(trace), "-o", str(page))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"--timings {trace}, line 1: kind None is none of tool, agent, cycle" in (
        " ".join(done.stderr.split()))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"kind": "agent", "cycle": 1, "agent": "a", "seconds": -1}\n')
    done = converge("report", str(trace), "--timings", str(bad), "-o", str(page))
    assert done.returncode == 2 and "'seconds' must be a finite number >= 0" in done.stderr
    done = converge("report", str(trace), "--timings", str(tmp_path / "nope.jsonl"),
                    "-o", str(page))
    assert done.returncode == 2 and "nope.jsonl" in done.stderr
    store = tmp_path / "run.db"
    assert converge("run", str(PRICING), "--facts", str(_facts(tmp_path)), "--store",
                    str(store)).returncode == 0
    done = converge("report", str(store), "--timings", str(bad), "-o", str(page))
    assert done.returncode == 2 and "keeps its job's timings itself" in done.stderr
    assert not page.exists()


def test_non_finite_or_huge_timings_and_an_output_naming_them(tmp_path: Path) -> None:
    """Found by hand: NaN/Infinity in a --timings file (Python's json reads them) and
    huge seconds whose sum overflows were an internal error (seconds_text of NaN/inf);
    -o naming the --timings file overwrote it."""
    trace = tmp_path / "run.jsonl"
    timings = tmp_path / "run.timings.jsonl"
    done = converge("run", str(PRICING), "--facts", str(_facts(tmp_path)), "--trace",
                    str(trace), "--timings", str(timings))
    assert done.returncode == 0, done.stderr
    page = tmp_path / "report.html"
    before = timings.read_text()
    done = converge("report", str(trace), "--timings", str(timings), "-o", str(timings))
    assert done.returncode == 2 and "is an input of this command" in done.stderr
    assert timings.read_text() == before
    nan = tmp_path / "nan.jsonl"
    nan.write_text('{"kind": "cycle", "cycle": 1, "evaluate": NaN, "merge": Infinity}\n')
    done = converge("report", str(trace), "--timings", str(nan), "-o", str(page))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "'evaluate' must be a finite number >= 0, not nan" in done.stderr
    assert "internal error" not in done.stderr and not page.exists()
    huge = tmp_path / "huge.jsonl"
    huge.write_text("".join(json.dumps({"kind": "agent", "cycle": 1, "agent": "a",
                                        "seconds": 1e308}) + "\n" for _ in range(2)))
    done = converge("report", str(trace), "--timings", str(huge), "-o", str(page))
    assert done.returncode == 0, done.stderr
    assert page.exists()


def test_timings_of_another_run_are_refused(tmp_path: Path) -> None:
    """Issue 15: a --timings file written by another run was shown as this trace's
    times. The file names its run (the trace head); the report checks it."""
    facts = _facts(tmp_path)
    other = tmp_path / "other.jsonl"
    other.write_text(facts.read_text() + '{"Quote": {"sku": "A1", "vendor": "brit", '
                     '"amount": 8.0, "currency": "GBP"}}\n', encoding="utf-8")
    runs = {}
    for name, given in (("a", facts), ("b", other)):
        trace, timings = tmp_path / f"{name}.jsonl", tmp_path / f"{name}.timings.jsonl"
        done = converge("run", str(PRICING), "--facts", str(given), "--trace", str(trace),
                        "--timings", str(timings))
        assert done.returncode == 0, done.stderr
        runs[name] = (trace, timings)
    page = tmp_path / "report.html"
    done = converge("report", str(runs["a"][0]), "--timings", str(runs["b"][1]), "-o",
                    str(page))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    said = " ".join(done.stderr.split())
    assert f"--timings {runs['b'][1]} belongs to another run" in said
    assert "give the timings written by the run that wrote this trace" in said
    assert not page.exists()
    # its own timings are taken, silently
    done = converge("report", str(runs["a"][0]), "--timings", str(runs["a"][1]), "-o",
                    str(page))
    assert done.returncode == 0, done.stderr
    assert "warning" not in done.stderr and embedded(page.read_text())["timed"]
    # a file without its run (an older converge's) is shown with a warning
    records = runs["a"][1].read_text().splitlines(keepends=True)
    assert json.loads(records[0])["kind"] == "run"
    old = tmp_path / "old.timings.jsonl"
    old.write_text("".join(records[1:]), encoding="utf-8")
    done = converge("report", str(runs["a"][0]), "--timings", str(old), "-o", str(page))
    assert done.returncode == 0, done.stderr
    assert "does not say which run it belongs to" in done.stderr
