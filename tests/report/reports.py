"""Reports of real runs for the tests: every shipped ruleset through its own test
blocks (each ruleset's biggest test run), and hostile traces."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from converge_rules.analysis.runview import RunView
from converge_rules.report.html import render_run_report
from converge_rules.report.run import build_run_report
from converge_rules.testing.runner import run_tests

REPO = Path(__file__).resolve().parents[2]
RULESETS = sorted((REPO / "rulesets").glob("*/*.cvg"))


def ruleset_report(path: Path) -> tuple[str, RunView]:
    """The HTML report of the run of ``path``'s test with the most facts, and its view."""
    best: list[Any] = []

    def observe(suite: Any, case: Any, view: RunView) -> None:
        if not best or len(view.facts) > len(best[1].facts):
            best[:] = [suite, view, case]

    report, _ = run_tests([path], observe=observe)
    assert best, f"{path} ran no test: {report.summary()}"
    suite, view, case = best
    built = build_run_report(view, title=f"converge report: {path.stem}",
                             source=f"{path.relative_to(REPO)} — test {case.name!r}",
                             checked=suite.checked, program=suite.program,
                             functions=suite.functions)
    return render_run_report(built), view


HOSTILE = "</script><img src=x onerror=\"window.__pwned=1\"><script>window.__pwned=2</script>"
"""A value that would run script were it written into the page as markup."""


def hostile_trace(path: Path, *, long_answer: bool = True) -> Path:
    """A valid trace whose every free-text value is :data:`HOSTILE`: fact values, an
    agent's name, a tool's name, arguments, answer and error, a conflict's reason,
    the status detail."""
    h = HOSTILE
    answer = {"text": h + " " + "x" * 300} if long_answer else {"text": h}
    events: list[dict[str, Any]] = [
        {"event": "fact_added", "id": 0, "type": "Doc", "fields": {"body": h, "n": 1},
         "agent": None, "cycle": 0, "support": [], "confidence": 1.0},
        {"event": "cycle_start", "cycle": 1, "tier": 1, "agents": [h]},
        {"event": "tool_call", "cycle": 1, "agent": h, "tool": h, "args": {"q": h},
         "result": answer, "error": None},
        {"event": "tool_call", "cycle": 1, "agent": h, "tool": h, "args": {"q": h},
         "result": None, "error": h},
        {"event": "conflict", "cycle": 1, "type": "Summary", "key": {"doc": h},
         "winner": {"doc": h, "text": h}, "losers": [{"doc": h, "text": h + "!"}],
         "reason": h},
        {"event": "fact_added", "id": 1, "type": "Summary", "fields": {"doc": h, "text": h},
         "agent": h, "cycle": 1, "support": [0], "confidence": 0.5},
        {"event": "effect_merged", "cycle": 1, "agent": h, "outputs": 1},
        {"event": "effect_discarded", "cycle": 1, "agent": h, "reason": h},
        {"event": "cycle_end", "cycle": 1, "tier": 1, "added": 1, "removed": 0, "live": 2},
        {"event": "status", "status": "converged", "detail": h},
    ]
    path.write_text("".join(json.dumps(e, sort_keys=True) + "\n" for e in events),
                    encoding="utf-8")
    return path
