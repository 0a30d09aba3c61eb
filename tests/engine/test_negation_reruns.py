"""An agent with a negation still runs on facts that arrive after its first run.

Found merging incremental negation with routing by constants: a stray `continue` in
the runner's activation loop skipped, for every agent that negates or aggregates, the
check of its watermark, so after its first run it ran again only when a negated type
lost a fact. Waltz lost its `ell` junctions; the property tests did not notice."""

from __future__ import annotations

import converge_rules

RULESET = """ruleset r
fact A { key n: int }
fact B { key n: int }
fact C { key n: int }
fact Count { key of: str, n: int }
agent grow {
  when A(n) where n < 5
  emit A(n: n + 1)
}
agent open {
  when A(n) and not B(n)
  emit C(n: n)
}
agent counted {
  when A(n) where n == 5
  emit Count(of: "B", n: count(B()))
}
"""


def test_an_agent_with_a_negation_sees_facts_of_later_cycles() -> None:
    result = converge_rules.run(converge_rules.loads(RULESET, plugins=False),
                                [("A", {"n": 0}), ("B", {"n": 2})])
    assert result.status == "converged"
    assert result.facts("C") == [{"n": 0}, {"n": 1}, {"n": 3}, {"n": 4}, {"n": 5}]
    assert result.facts("Count") == [{"of": "B", "n": 1}]
