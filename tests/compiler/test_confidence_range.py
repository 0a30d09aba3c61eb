"""A computed confidence or score outside 0..1 fails the agent with a clear reason: it
is never recorded (found: a confidence of 5.0 beat every honest confidence)."""

from __future__ import annotations

import converge_rules

RULESET = """ruleset r
fact Signal { key id: str, strength: float }
fact Verdict { key id: str, label: str }
agent loud {
  when Signal(id, strength)
  emit Verdict(id: id, label: "loud") confidence strength
}
agent quiet {
  when Signal(id)
  emit Verdict(id: id, label: "quiet") confidence 0.6
}
policy Verdict { resolve by highest confidence }
"""


def test_a_confidence_above_one_fails_the_agent_and_the_honest_value_wins() -> None:
    ruleset = converge_rules.loads(RULESET, plugins=False)
    result = converge_rules.run(ruleset, [("Signal", {"id": "a", "strength": 5.0})])
    assert result.facts("Verdict") == [{"id": "a", "label": "quiet"}]
    reasons = [e.reason for e in result.trace.events() if e.event == "effect_discarded"]
    assert reasons == ["OutOfRange: the confidence of Verdict must be between 0 and 1, but "
                       "its expression gave 5.0"]


def test_a_confidence_in_range_is_kept() -> None:
    ruleset = converge_rules.loads(RULESET, plugins=False)
    result = converge_rules.run(ruleset, [("Signal", {"id": "a", "strength": 0.9})])
    assert result.facts("Verdict") == [{"id": "a", "label": "loud"}]


def test_a_score_above_one_fails_the_evaluating_agent() -> None:
    ruleset = converge_rules.loads("""ruleset r
fact Claim { key id: str, a: float, b: float }
agent judge {
  when c: Claim(a, b)
  evaluate c score a / b reason "ratio"
}
""", plugins=False)
    result = converge_rules.run(ruleset, [("Claim", {"id": "x", "a": 3.0, "b": 2.0})])
    reasons = [e.reason for e in result.trace.events() if e.event == "effect_discarded"]
    assert reasons == ["OutOfRange: the score must be between 0 and 1, but its expression "
                       "gave 1.5"]
