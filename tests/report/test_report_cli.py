"""`converge report` and `converge test --report` without a browser: what the page
holds, that it is self-contained and deterministic, stores, and bad input."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
import sys
from html import unescape
from pathlib import Path
from typing import Any

from converge_rules.analysis.runview import view_from_events
from converge_rules.report.html import render_run_report
from converge_rules.report.run import build_run_report
from tests.report.reports import HOSTILE, REPO, hostile_trace

PRICING = REPO / "rulesets" / "pricing" / "pricing.cvg"
INPUT = REPO / "rulesets" / "pricing" / "input.jsonl"


def converge(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "converge_rules.cli", *args],
                          capture_output=True, text=True, cwd=cwd, timeout=300)


def embedded(html: str) -> dict[str, Any]:
    """The page's JSON document."""
    found = re.search(r'<script type="application/json" id="report-data">(.*?)</script>',
                      html, re.S)
    assert found is not None
    data: dict[str, Any] = json.loads(found.group(1))
    return data


def pricing_trace(tmp_path: Path) -> Path:
    trace = tmp_path / "run.jsonl"
    done = converge("run", str(PRICING), "--facts", str(INPUT), "--trace", str(trace))
    assert done.returncode == 0, done.stderr
    return trace


def test_the_summary_line_counts_one_in_the_singular(tmp_path: Path) -> None:
    # found: "wrote r.html: converged, 1 cycles, 1 facts, 1 conflicts"
    ruleset = tmp_path / "one.cvg"
    ruleset.write_text("ruleset one\nfact A { key id: int, n: int }\n"
                       "agent a { when A(id: 1) emit A(id: 2, n: 1) }\n"
                       "policy A { resolve by highest n }\n", encoding="utf-8")
    facts = tmp_path / "in.jsonl"
    facts.write_text('{"A": {"id": 2, "n": 5}}\n{"A": {"id": 1, "n": 0}}\n',
                     encoding="utf-8")
    trace = tmp_path / "run.jsonl"
    done = converge("run", str(ruleset), "--facts", str(facts), "--trace", str(trace))
    assert done.returncode == 0, done.stderr
    done = converge("report", str(trace), "-o", str(tmp_path / "r.html"))
    assert done.returncode == 0, done.stderr
    assert "r.html: converged, 1 cycle, 2 facts, 1 conflict\n" in done.stderr


def test_a_report_is_one_self_contained_deterministic_page(tmp_path: Path) -> None:
    trace = pricing_trace(tmp_path)
    page = tmp_path / "report.html"
    done = converge("report", str(trace), "-r", str(PRICING), "-o", str(page))
    assert done.returncode == 0, done.stderr
    assert "converged, 2 cycles, 10 facts, 2 conflicts" in done.stderr
    html = page.read_text(encoding="utf-8")
    # nothing loaded from anywhere: no external script, style, image or font
    assert not re.search(r'(src|href)="(?!#|data:)', html)
    assert "http://" not in html and "https://" not in html
    # the policy allows only the page's own script, by its hash
    scripts = re.findall(r"<script>(.*?)</script>", html, re.S)
    assert len(scripts) == 1
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    (policy,) = re.findall(r'http-equiv="Content-Security-Policy" content="([^"]*)"', html)
    policy = unescape(policy)
    assert f"script-src 'sha256-{digest}'" in policy
    assert "default-src 'none'" in policy
    data = embedded(html)
    price = next(t for t in data["types"] if t["name"] == "Price")
    assert price["fields"] == ["sku", "channel", "amount"]  # declared order
    assert [r[3:] for r in price["rows"]] == [["A1", "web", 11.88], ["C3", "web", 7.43],
                                              ["B2", "web", 24.0]]
    a1 = str(price["rows"][0][0])
    (derivation,) = data["derivs"][a1]
    assert data["agents"][derivation[0]] == "undercut"
    assert derivation[4] == 'cost = 10.0, sku = "A1", theirs = 12.0'
    assert data["spans"]["undercut"].endswith("pricing.cvg:35:1")
    again = tmp_path / "again.html"
    converge("report", str(trace), "-r", str(PRICING), "-o", str(again))
    assert again.read_bytes() == page.read_bytes()


def test_without_the_ruleset_the_page_says_less_but_renders(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    done = converge("report", str(pricing_trace(tmp_path)), "-o", str(page))
    assert done.returncode == 0, done.stderr
    data = embedded(page.read_text(encoding="utf-8"))
    assert data["spans"] == {}
    price = next(t for t in data["types"] if t["name"] == "Price")
    assert price["fields"] == ["amount", "channel", "sku"]  # as the trace sorts them
    assert all(d[4] is None for ds in data["derivs"].values() for d in ds)


def test_a_report_of_a_store_job(tmp_path: Path) -> None:
    store = tmp_path / "run.db"
    for _ in range(2):
        done = converge("run", str(PRICING), "--facts", str(INPUT), "--store", str(store))
        assert done.returncode == 0, done.stderr
    page = tmp_path / "report.html"
    done = converge("report", str(store), "--job", "1", "-o", str(page))
    assert done.returncode == 0, done.stderr
    html = page.read_text(encoding="utf-8")
    assert "run.db, job 1" in html and "job 1 of" in html
    newest = tmp_path / "newest.html"
    assert converge("report", str(store), "-o", str(newest)).returncode == 0
    assert "run.db, job 2" in newest.read_text(encoding="utf-8")
    # the store's trace is the trace file's: the same facts in the page
    trace = tmp_path / "run.jsonl"
    converge("run", str(PRICING), "--facts", str(INPUT), "--trace", str(trace))
    from_file = tmp_path / "file.html"
    converge("report", str(trace), "-o", str(from_file))
    stored, traced = embedded(html), embedded(from_file.read_text(encoding="utf-8"))
    # the store kept the job's timings too (beside its trace); the file has none
    assert stored.pop("timed") is True and traced.pop("timed") is False
    assert stored == traced


def test_bad_input_is_a_clear_error_and_no_traceback(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    missing = converge("report", str(tmp_path / "nope.jsonl"), "-o", str(page))
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    trace = pricing_trace(tmp_path)
    job = converge("report", str(trace), "--job", "2", "-o", str(page))
    assert job.returncode == 2 and "--job is for a store" in job.stderr
    damaged = tmp_path / "damaged.jsonl"
    damaged.write_text(trace.read_text().replace('"event":"cycle_start"', '"event":1', 1))
    bad = converge("report", str(damaged), "-o", str(page))
    assert bad.returncode == 2 and f"{damaged}:8:" in bad.stderr, bad.stderr
    over = converge("report", str(trace), "-o", str(trace))
    assert over.returncode == 2 and "--output" in over.stderr
    store = tmp_path / "run.db"
    converge("run", str(PRICING), "--facts", str(INPUT), "--store", str(store))
    no_job = converge("report", str(store), "--job", "9", "-o", str(page))
    assert no_job.returncode == 2 and "9" in no_job.stderr
    for done in (missing, job, bad, over, no_job):
        assert "Traceback" not in done.stderr
    assert not page.exists()


def test_hostile_values_never_reach_the_markup(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    done = converge("report", str(hostile_trace(tmp_path / "t.jsonl")), "-o", str(page),
                    "--title", HOSTILE)
    assert done.returncode == 0, done.stderr
    html = page.read_text(encoding="utf-8")
    assert "<img" not in html
    assert html.count("<script") == 2  # the data and the page's own script
    assert html.count("</script>") == 2
    data = embedded(html)
    assert data["calls"][1][5] == HOSTILE  # the values are all there, as data


def test_a_lone_surrogate_in_a_trace_is_shown_escaped(tmp_path: Path) -> None:
    """JSON can escape a lone surrogate, which UTF-8 cannot encode: the page shows its
    escape instead of failing to be written (a regression: an internal error)."""
    trace = tmp_path / "t.jsonl"
    trace.write_text("".join(json.dumps(e) + "\n" for e in events(
        {"event": "effect_discarded", "cycle": 1, "agent": "a\ud800", "reason": "r"},
        {"event": "status", "status": "converged", "detail": "d\udfff"})),
        encoding="utf-8")
    page = tmp_path / "report.html"
    done = converge("report", str(trace), "-o", str(page))
    assert done.returncode == 0, done.stderr
    html = page.read_text(encoding="utf-8")
    assert "d\\udfff" in html and "<code>a\\ud800</code>" in html


def events(*extra: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"event": "fact_added", "id": 0, "type": "A", "fields": {"n": 1}, "agent": None,
             "cycle": 0, "support": [], "confidence": 1.0},
            {"event": "cycle_start", "cycle": 1, "tier": 1, "agents": ["a", "b"]},
            {"event": "cycle_end", "cycle": 1, "tier": 1, "added": 0, "removed": 0,
             "live": 1}, *extra]


def test_the_summary_names_unmet_goals_and_exceeded_budgets() -> None:
    view = view_from_events(events(
        {"event": "budget", "name": "max_cycles", "limit": 1, "used": 1},
        {"event": "status", "status": "unmet_goal",
         "detail": "goal not met: count(A()) == 0; count(B()) > 1"}))
    report = build_run_report(view, title="t", source="s")
    assert report.summary["unmet"] == ["count(A()) == 0", "count(B()) > 1"]
    (budget,) = report.summary["budgets"]
    assert budget == {"name": "max_cycles", "limit": "1", "used": "1", "share": 1.0,
                      "exceeded": True}
    html = render_run_report(report)
    assert "Unmet goals" in html and "<code>count(B()) &gt; 1</code>" in html


def test_the_timeline_has_a_bar_per_cycle_and_buckets_many_cycles() -> None:
    few = build_run_report(view_from_events(events()), title="t", source="s")
    added = few.timeline[0]
    assert [b["label"] for b in added["bars"] if b["part"] == "added"] == [
        "cycle 0 (inputs): 1 added, 0 removed", "cycle 1, tier 1: 0 added, 0 removed"]
    many = [{"event": "cycle_end", "cycle": c, "tier": 1 + c % 2, "added": 1,
             "removed": 0, "live": c} for c in range(1, 1001)]
    chart = build_run_report(view_from_events(events()[:1] + many), title="t",
                             source="s").timeline[0]
    bars = [b for b in chart["bars"] if b["part"] == "added"]
    assert len(bars) <= 240 and chart["bucket"] == 5
    assert bars[1]["label"] == "cycles 5–9, tier 1, 2: 5 added, 0 removed"
    assert chart["total"] == 1001


def test_the_test_report_lists_each_test_with_its_failure(tmp_path: Path) -> None:
    ruleset = tmp_path / "pricing.cvg"
    ruleset.write_text(PRICING.read_text(encoding="utf-8").replace(
        "amount: 11.88)", "amount: 11.89)"), encoding="utf-8")
    page = tmp_path / "tests.html"
    done = converge("test", str(ruleset), str(REPO / "rulesets" / "counter"),
                    "--report", str(page))
    assert done.returncode == 1
    html = page.read_text(encoding="utf-8")
    assert html.count('<details class="test') == 2
    assert "amount: expected 11.89, got 11.88" in html
    assert "the run: converged in 2 cycles" in html
    refused = converge("test", str(ruleset), "--report", str(ruleset))
    assert refused.returncode == 2 and "--report" in refused.stderr
    assert "Price(sku" in ruleset.read_text(encoding="utf-8")


def test_the_test_report_escapes_bidi_controls_in_test_names_as_the_terminal_does(
        tmp_path: Path) -> None:
    """A right-to-left override in a test name (CVG011 warns, the test still runs)
    shows as ``\\u202e`` in the page, as on the terminal, not raw: raw, it reorders the
    rest of the line in the browser."""
    ruleset = tmp_path / "t.cvg"
    ruleset.write_text(
        'ruleset t\nfact A { key id: str }\nfact B { key id: str }\n'
        'agent a {\n  when A(id)\n  emit B(id: id)\n}\n'
        'test "by \u202eana" {\n  given A(id: "x")\n  expect B(id: "y")\n}\n',
        encoding="utf-8")
    page = tmp_path / "tests.html"
    done = converge("test", str(ruleset), "--report", str(page))
    assert done.returncode == 1 and "by \\u202eana" in done.stdout
    html = page.read_text(encoding="utf-8")
    assert "\u202e" not in html
    assert "by \\u202eana" in unescape(html)


GUARDED = """\
ruleset guarded
fact Claim   { key claim: str, amount: float }
fact Payment { key claim: str, amount: float }
agent pay {
  when Claim(claim, amount) where amount < 100.0
  emit Payment(claim: claim, amount: amount)
}
agent pay_big {
  when Claim(claim, amount) where amount >= 100.0
  emit Payment(claim: claim, amount: amount)
}
invariant small never Payment(claim, amount) where amount > 100.0
invariant budget always sum(Payment(), amount) <= 1_000.0
"""


def test_a_job_whose_invariant_broke_is_traced_and_reported(tmp_path: Path) -> None:
    """`converge run --trace` of a job with an invariant broken once wrote no trace
    (an internal error: the fast trace writer had no line for `invariant_broken`), so
    it had no report."""
    ruleset = tmp_path / "guarded.cvg"
    ruleset.write_text(GUARDED, encoding="utf-8")
    facts = tmp_path / "in.jsonl"
    facts.write_text('{"Claim": {"claim": "big", "amount": 500.0}}\n'
                     + "".join(f'{{"Claim": {{"claim": "c{i}", "amount": 90.0}}}}\n'
                               for i in range(12)), encoding="utf-8")
    trace = tmp_path / "run.jsonl"
    done = converge("run", str(ruleset), "--facts", str(facts), "--trace", str(trace))
    assert "internal error" not in done.stderr
    assert done.returncode == 3, done.stderr  # invariant_violated
    kinds = [json.loads(line)["event"] for line in trace.read_text().splitlines()]
    assert kinds.count("invariant_broken") == 2
    page = tmp_path / "report.html"
    done = converge("report", str(trace), "-r", str(ruleset), "-o", str(page))
    assert done.returncode == 0, done.stderr
    html = page.read_text(encoding="utf-8")
    assert "invariant_violated" in html
