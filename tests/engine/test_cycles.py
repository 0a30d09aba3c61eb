"""Cycles, tiers, retraction, prune, intents, negation and goals."""

from __future__ import annotations

from typing import Any

from engine_programs import Builder, crit, each, f

from converge_rules.engine import run
from converge_rules.program import EMIT, INTEND, Program


def count_program(*, seen: bool = False, limit: int = 10, **budgets: Any) -> Program:
    b = Builder("count")
    count = b.fact("Count", f("id", key=True), f("n", "int"))
    b.policy(count, crit("latest"))
    b.agent("inc", each(count, lambda v: [(EMIT, count, (v[0], v[1] + 1))] if v[1] < limit
                        else []), reads=[count], emits=[count])
    if seen:
        log = b.fact("Seen", f("id"), f("n", "int"))
        b.agent("seen", each(count, lambda v: [(EMIT, log, v)]), reads=[count], emits=[log])
    return b.build(**budgets)


def test_update_in_place_converges_at_ten() -> None:
    result = run(count_program(), [("Count", {"id": "a", "n": 0})])
    assert result.status == "converged"
    assert result.facts("Count") == [{"id": "a", "n": 10}]
    assert result.cycles == 11  # ten updates and the fixpoint cycle
    assert len(result.conflicts) == 10
    assert all(c["reason"] == "resolve by latest" for c in result.conflicts)


def test_facts_derived_from_a_replaced_fact_go_with_it() -> None:
    result = run(count_program(seen=True), [("Count", {"id": "a", "n": 0})])
    assert result.status == "converged"
    assert result.facts("Seen") == [{"id": "a", "n": 10}]
    events = [e.event for e in result.trace.events()]
    assert events.count("replaced") == 10


def retraction_program() -> Program:
    b = Builder()
    base = b.fact("Base", f("k", key=True), f("v", "int"))
    other = b.fact("Other", f("k"))
    d1 = b.fact("D1", f("k"))
    d2 = b.fact("D2", f("k"))
    keep = b.fact("Keep", f("k"))
    b.policy(base, crit("latest"))
    b.agent("d1", each(base, lambda v: [(EMIT, d1, (v[0],)), (EMIT, keep, (v[0],))]),
            reads=[base], emits=[d1, keep])
    b.agent("d2", each(d1, lambda v: [(EMIT, d2, v)]), reads=[d1], emits=[d2])
    b.agent("also", each(other, lambda v: [(EMIT, keep, v)]), reads=[other], emits=[keep])
    b.agent("bump", each(base, lambda v: [(EMIT, base, (v[0], 100))] if v[1] < 100 else []),
            tier=2, reads=[base], emits=[base])
    return b.build()


def test_retraction_is_transitive_and_spares_facts_with_another_derivation() -> None:
    result = run(retraction_program(), [("Base", {"k": "x", "v": 1}), ("Other", {"k": "x"})])
    assert result.status == "converged"
    assert result.facts("Base") == [{"k": "x", "v": 100}]
    assert result.facts("D1") == [] and result.facts("D2") == []
    assert result.facts("Keep") == [{"k": "x"}]
    retracted = [e for e in result.trace.events() if e.event == "retracted"]
    assert [(e.type, e.fields) for e in retracted] == [  # type: ignore[attr-defined]
        ("D1", {"k": "x"}), ("D2", {"k": "x"}),
    ]


def test_prune_drops_old_facts_and_what_rests_on_them() -> None:
    b = Builder()
    count = b.fact("Count", f("id", key=True), f("n", "int"))
    quote = b.fact("Quote", f("sku"))
    offer = b.fact("Offer", f("sku"))
    b.policy(count, crit("latest"))
    b.agent("inc", each(count, lambda v: [(EMIT, count, (v[0], v[1] + 1))] if v[1] < 5 else []),
            reads=[count], emits=[count])
    b.agent("offer", each(quote, lambda v: [(EMIT, offer, v)]), reads=[quote], emits=[offer])
    b.prune(quote, lambda values, age: age > 2)
    result = run(b.build(), [("Count", {"id": "c", "n": 0}), ("Quote", {"sku": "A"})])
    assert result.status == "converged"
    assert result.facts("Quote") == [] and result.facts("Offer") == []
    pruned = [e for e in result.trace.events() if e.event == "pruned"]
    assert [(e.cycle, e.age) for e in pruned] == [(3, 3)]  # type: ignore[attr-defined]


def test_negating_agent_reruns_when_its_negated_type_loses_facts() -> None:
    b = Builder()
    count = b.fact("Count", f("id", key=True), f("n", "int"))
    item = b.fact("Item", f("x"))
    block = b.fact("Block", f("x"))
    free = b.fact("Free", f("x"))
    b.policy(count, crit("latest"))
    b.agent("inc", each(count, lambda v: [(EMIT, count, (v[0], v[1] + 1))] if v[1] < 4 else []),
            reads=[count], emits=[count])

    def unblocked(view: Any, since: int, rt: Any) -> list[Any]:
        blocked = {view.values[x][0] for x in view.live[block]}
        return [(EMIT, free, view.values[i], 1.0, (i,)) for i in view.new(item, since)
                if view.values[i][0] not in blocked]

    b.agent("free", unblocked, reads=[item], negates=[block], emits=[free])
    b.prune(block, lambda values, age: age > 1)
    facts = [("Count", {"id": "c", "n": 0}), ("Item", {"x": "a"}), ("Block", {"x": "a"})]
    result = run(b.build(), facts)
    assert result.status == "converged"
    assert result.facts("Free") == [{"x": "a"}]


def intent_program(answer: bool = True) -> Program:
    b = Builder()
    quote = b.fact("Quote", f("sku"), f("currency"))
    need = b.intent("NeedRate", f("currency"))
    rate = b.fact("Rate", f("currency", key=True), f("usd", "float"))
    b.agent("ask", each(quote, lambda v: [(INTEND, need, (v[1],))] if v[1] != "USD" else []),
            reads=[quote], emits=[need])

    def fetch(view: Any, since: int, rt: Any) -> list[Any]:
        out = []
        for i in view.new(need, since):
            (cur,) = view.values[i]
            usd = rt.call("fx_rate", {"currency": cur})["usd"]
            out.append((EMIT, rate, (cur, usd), 1.0, (i,)))
        return out

    if answer:
        b.agent("fetch", fetch, reads=[need], emits=[rate], tools=["fx_rate"])
    return b.build()


QUOTES = [("Quote", {"sku": s, "currency": c}) for s, c in
          [("A", "EUR"), ("B", "EUR"), ("C", "GBP"), ("D", "USD")]]


def test_intents_close_once_answered_and_tool_calls_are_memoised() -> None:
    calls: list[dict[str, Any]] = []

    def fx_rate(args: dict[str, Any]) -> dict[str, Any]:
        calls.append(args)
        return {"usd": {"EUR": 1.1, "GBP": 1.3}[args["currency"]]}

    result = run(intent_program(), QUOTES, tools={"fx_rate": fx_rate})
    assert result.status == "converged"
    assert result.facts("Rate") == [{"currency": "EUR", "usd": 1.1},
                                    {"currency": "GBP", "usd": 1.3}]
    assert result.facts("NeedRate") == []
    assert result.unmet == []
    assert sorted(c["currency"] for c in calls) == ["EUR", "GBP"]
    assert result.budget["max_tool_calls"]["used"] == 2
    closed = [e for e in result.trace.events() if e.event == "intent_closed"]
    assert len(closed) == 2


def test_open_intents_are_listed_as_unmet() -> None:
    result = run(intent_program(answer=False), QUOTES)
    assert result.status == "converged"
    assert result.unmet == [
        {"intent": "NeedRate", "fields": {"currency": "EUR"}},
        {"intent": "NeedRate", "fields": {"currency": "GBP"}},
    ]


def test_higher_tiers_see_lower_tiers_and_goals_are_checked_at_the_end() -> None:
    b = Builder()
    n = b.fact("N", f("v", "int"))
    alert = b.fact("Alert", f("v", "int"))
    b.agent("double", each(n, lambda v: [(EMIT, n, (v[0] * 2,))] if v[0] < 8 else []),
            reads=[n], emits=[n])
    b.agent("alert", each(n, lambda v: [(EMIT, alert, v)] if v[0] > 4 else []), tier=2,
            reads=[n], emits=[alert])
    b.require("count(Alert()) == 0", lambda view: not view.live[alert])
    b.require("count(N()) > 0", lambda view: bool(view.live[n]))
    result = run(b.build(), [("N", {"v": 1})])
    assert result.status == "unmet_goal"
    assert result.unmet == [{"goal": "count(Alert()) == 0"}]
    assert result.facts("Alert") == [{"v": 8}]
    tiers = [e.tier for e in result.trace.events() if e.event == "cycle_start"]  # type: ignore[attr-defined]
    assert tiers == sorted(tiers) and tiers[-1] == 2


def test_oscillation_is_detected_and_the_loop_is_shown() -> None:
    b = Builder()
    light = b.fact("Light", f("id", key=True), f("on", "bool"))
    b.policy(light, crit("latest"))
    b.agent("off", each(light, lambda v: [(EMIT, light, (v[0], False))] if v[1] else []),
            reads=[light], emits=[light])
    b.agent("on", each(light, lambda v: [(EMIT, light, (v[0], True))] if not v[1] else []),
            reads=[light], emits=[light])
    result = run(b.build(), [("Light", {"id": "l", "on": True})])
    assert result.status == "oscillating"
    assert result.loop == {
        "from_cycle": 0, "to_cycle": 2,
        "facts": [{"type": "Light", "fields": {"id": "l", "on": False}},
                  {"type": "Light", "fields": {"id": "l", "on": True}}],
    }
    assert result.facts("Light") == [{"id": "l", "on": True}]


def test_agents_that_raise_contribute_nothing_and_the_job_goes_on() -> None:
    b = Builder()
    n = b.fact("N", f("v", "int"))
    out = b.fact("Out", f("v", "int"))
    b.agent("bad", each(n, lambda v: [(EMIT, out, (1 // 0,))]), reads=[n], emits=[out])
    b.agent("good", each(n, lambda v: [(EMIT, out, v)]), reads=[n], emits=[out])
    result = run(b.build(), [("N", {"v": 3})])
    assert result.status == "converged"
    assert result.facts("Out") == [{"v": 3}]
    (discarded,) = [e for e in result.trace.events() if e.event == "effect_discarded"]
    assert discarded.agent == "bad"  # type: ignore[attr-defined]
    assert discarded.reason.startswith("ZeroDivisionError")  # type: ignore[attr-defined]


def test_an_agent_without_patterns_runs_once() -> None:
    from engine_programs import const

    b = Builder()
    out = b.fact("Out", f("v", "int"))
    b.agent("seed", const([(EMIT, out, (1,)), (EMIT, out, (1,))]), emits=[out])
    result = run(b.build(), [])
    assert result.status == "converged"
    assert result.facts("Out") == [{"v": 1}]
    assert result.cycles == 1


def test_malformed_outputs_discard_the_effect() -> None:
    from engine_programs import const

    b = Builder()
    out = b.fact("Out", f("v", "int"))
    b.agent("bad", lambda view, since, rt: [(EMIT, out, (1,))], emits=[out])
    b.agent("good", const([(EMIT, out, (2,))]), emits=[out])
    b.agent("none", lambda view, since, rt: None, emits=[out])  # type: ignore[arg-type,return-value]
    result = run(b.build(), [])
    assert result.facts("Out") == [{"v": 2}]
    reasons = [e.reason for e in result.trace.events() if e.event == "effect_discarded"]  # type: ignore[attr-defined]
    assert len(reasons) == 2 and all(r.startswith("malformed output") for r in reasons)


def test_an_effect_made_slot_by_slot_is_the_dataclass_it_stands_for() -> None:
    from converge_rules.engine.effects import AgentEffect, made_effect

    outputs = ((0, 1, ("a",), 1.0, (3,)),)
    calls = (("t", {"x": 1}, {"y": 2}, None),)
    made = made_effect(4, outputs, calls)
    assert type(made) is AgentEffect
    assert made == AgentEffect(4, outputs, None, calls)
    assert repr(made) == repr(AgentEffect(4, outputs, None, calls))
