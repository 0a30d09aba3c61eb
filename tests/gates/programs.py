"""The approval-gate rulesets and helpers that the gate, session and checkpoint tests
share (tests/gates/test_gates_engine.py, tests/session/test_session_decisions.py,
tests/store/test_checkpoint_features.py)."""

from __future__ import annotations

import json
from typing import Any

import converge_rules
from converge_rules import Decision

CLAIMS = """\
ruleset claims
fact Claim   { key id: str, amount: float }
fact Payment { key claim: str, amount: float }
fact Notice  { claim: str, amount: float }
agent pay {
  when Claim(id, amount)
  emit Payment(claim: id, amount: amount)
}
agent notify {
  when Payment(claim, amount)
  emit Notice(claim: claim, amount: amount)
}
approve Payment when amount > 10_000.0
"""

FACTS = [("Claim", {"id": "c1", "amount": 20_000.0}),
         ("Claim", {"id": "c2", "amount": 500.0})]

CLAIMS_NOTED = CLAIMS.replace("fact Payment { key claim: str, amount: float }",
                              'fact Payment { key claim: str, amount: float, note: str = "" }')
"""The claims with a ``note`` on payments, which an approval's edits may set."""
assert CLAIMS_NOTED != CLAIMS


def load(text: str = CLAIMS) -> converge_rules.Ruleset:
    """The ruleset ``text``, without plugins."""
    return converge_rules.loads(text, plugins=False)


def events(result: Any, kind: str) -> list[dict[str, Any]]:
    """The trace events of ``kind`` in ``result``, as JSON objects."""
    return [e for e in map(json.loads, result.trace.bare_lines()) if e["event"] == kind]


def approve(pid: str, **kw: Any) -> Decision:
    """An approval of the pending fact ``pid`` (by ann, at a fixed time unless given)."""
    return Decision(pid, True, by=kw.pop("by", "ann"), at=kw.pop("at", "2026-12-06T10:00:00Z"),
                    **kw)


#: keyed payments whose amounts combine (sum): the gate holds the combined value
COMBINED = """\
ruleset pay
fact Part    { key id: str, claim: str, amount: float }
fact Extra   { key id: str, claim: str, amount: float }
fact Payment { key claim: str, amount: float }
fact Ack     { key claim: str }
agent base {
  when Part(claim, amount)
  emit Payment(claim: claim, amount: amount)
  emit Ack(claim: claim)
}
agent more {
  when Extra(claim, amount) and Ack(claim)
  emit Payment(claim: claim, amount: amount)
}
policy Payment { combine sum amount }
approve Payment when amount > 10_000.0
"""

PARTS = [("Part", {"id": "p1", "claim": "c1", "amount": 5_000.0}),
         ("Extra", {"id": "e1", "claim": "c1", "amount": 8_000.0})]
