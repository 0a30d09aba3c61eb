"""The data of a test run's report (``converge test --report FILE``): each test, pass
or fail, with its failures (what was expected, what was found instead and how it was
derived: the details :mod:`converge_rules.testing.expectations` writes) and what its
run did."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from converge_rules.analysis.runview import RunView
from converge_rules.testing.outcome import TestReport
from converge_rules.text import printable


def run_summary(view: RunView) -> dict[str, Any]:
    """What a test's run did, in a line: status, cycles, facts, conflicts, tool calls."""
    live = len(view.facts) - len(view.removed)
    return {"status": view.status, "cycles": view.cycles, "facts": live,
            "conflicts": len(view.conflicts), "tool_calls": len(view.tool_calls)}


def outcome_rows(report: TestReport, runs: Mapping[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Each outcome of ``report`` as the template shows it; ``runs`` holds
    :func:`run_summary` by test id (a test that did not run has none). Names, reasons
    and messages pass through :func:`~converge_rules.text.printable`, as on the
    terminal: a bidirectional override in a test name would reorder the page's line."""
    rows = []
    for o in report.outcomes:
        rows.append({
            "id": printable(o.id), "file": printable(o.file), "name": printable(o.name),
            "status": o.status,
            "where": printable(str(o.span) if o.span else o.file),
            "reason": printable(o.reason),
            "failures": [{"message": printable(f.message),
                          "where": printable(str(f.span)) if f.span else "",
                          "details": printable("\n".join(f.details), keep="\n")}
                         for f in o.failures],
            "run": runs.get(o.id),
        })
    return rows


def outcomes_summary(report: TestReport, diagnostics: str) -> dict[str, Any]:
    return {"passed": report.count("passed"), "failed": report.count("failed"),
            "skipped": report.count("skipped"), "text": report.summary(),
            "status": "failed" if report.count("failed") or report.ruleset_errors
            else "passed",
            "files": list(report.files), "diagnostics": diagnostics}
