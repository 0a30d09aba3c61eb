"""``Trace.may_hold``: whether reading one kind of event as models can find any, told
from the raw events alone (``converge run`` asks it before importing the models)."""

from __future__ import annotations

import converge_rules
from converge_rules.engine.trace_models import EffectDiscarded, FactAdded

RULES = """ruleset t

fact N { n: int }
fact Q { q: float }

agent tenth {
  when N(n: x)
  emit Q(q: 10 / x)
}
"""


def test_a_trace_may_hold_the_events_it_holds_and_never_one_it_does_not() -> None:
    ruleset = converge_rules.loads(RULES, plugins=False)
    clean = converge_rules.run(ruleset, [("N", {"n": 2})]).trace
    assert not clean.may_hold("effect_discarded")
    assert list(clean.events_of(EffectDiscarded)) == []
    assert clean.may_hold("fact_added") and list(clean.events_of(FactAdded))
    failed = converge_rules.run(ruleset, [("N", {"n": 0})]).trace
    assert failed.may_hold("effect_discarded")
    assert [e.agent for e in failed.events_of(EffectDiscarded)] == ["tenth"]
