"""Generated agent functions: matching, joins, negation, intents, binders, aggregates,
guards, calls and the shape of their outputs, run against a list-backed view."""

from __future__ import annotations

import pytest
from compiler_support import ListView, RecordingRuntime, compile_text, emitted, run

from converge_rules.program import EMIT, EVALUATE, INTEND

HEAD = """\
ruleset t
uses tool fx
enum Channel { web, store }
fact Cost  { key sku: str, amount: float }
fact Quote { sku: str, vendor: str, amount: float, currency: str = "USD" }
fact Price { key sku: str, key channel: Channel, amount: float }
fact Alert { sku: str, message: str, level: int = 1 }
fact Edge  { a: str, b: str }
fact Pair  { x: str, y: str }
fact Tagged { sku: str, tags: list[str], note: str? }
intent NeedRate { currency: str }
"""


def program(body: str):  # type: ignore[no-untyped-def]
    return compile_text(HEAD + body)


def test_single_pattern_binds_fields_and_emits_in_declared_order() -> None:
    p = program("""
agent a { when Cost(sku, amount: c) emit Price(amount: c * 2, channel: web, sku: sku) }
""")
    v = ListView(p)
    f = v.add("Cost", "A1", 10.0)
    out = run(p, "a", v)
    assert out == [(EMIT, p.type_ids["Price"], ("A1", "web", 20.0), 1.0, (f,))]


def test_join_on_shared_variable_with_constant_constraint() -> None:
    p = program("""
agent a {
  when Cost(sku, amount: cost) and Quote(sku, amount: theirs, currency: "USD")
  where theirs > cost
  emit Price(sku: sku, channel: web, amount: theirs) confidence 0.5
}
""")
    v = ListView(p)
    c1 = v.add("Cost", "A", 10.0)
    v.add("Cost", "B", 10.0)
    q1 = v.add("Quote", "A", "acme", 12.0, "USD")
    v.add("Quote", "A", "acme", 13.0, "EUR")      # wrong currency
    v.add("Quote", "A", "zeta", 9.0, "USD")       # guard fails
    v.add("Quote", "C", "acme", 20.0, "USD")      # no cost
    out = run(p, "a", v)
    assert out == [(EMIT, p.type_ids["Price"], ("A", "web", 12.0), 0.5, (c1, q1))]
    # the join used an index on (sku, currency) of Quote
    quote = p.type_ids["Quote"]
    assert any(ix.type_id == quote and ix.positions == (0, 3) for ix in p.indexes)


def test_variable_repeated_in_one_pattern_is_an_equality() -> None:
    p = program("agent a { when Edge(a: x, b: x) emit Pair(x: x, y: x) }")
    v = ListView(p)
    v.add("Edge", "1", "2")
    loop = v.add("Edge", "3", "3")
    assert run(p, "a", v) == [(EMIT, p.type_ids["Pair"], ("3", "3"), 1.0, (loop,))]


def test_wildcard_matches_anything_and_enum_member_constrains() -> None:
    p = program("""
agent a { when Price(sku, channel: store, amount: _) emit Alert(sku: sku, message: "s") }
""")
    v = ListView(p)
    v.add("Price", "A", "web", 1.0)
    s = v.add("Price", "B", "store", 2.0)
    out = run(p, "a", v)
    assert emitted(p, out) == [("Alert", ("B", "s", 1))]
    assert out[0][4] == (s,)


def test_qualified_enum_member_in_expression() -> None:
    p = program("""
agent a { when Price(sku, channel) where channel == Channel.web
  emit Alert(sku: sku, message: "w") }
""")
    v = ListView(p)
    v.add("Price", "A", "web", 1.0)
    v.add("Price", "B", "store", 1.0)
    assert emitted(p, run(p, "a", v)) == [("Alert", ("A", "w", 1))]


def test_three_way_join_is_correct_in_every_pass() -> None:
    p = program("""
agent a { when Edge(a: x, b: y) and Edge(a: y, b: z) and Edge(a: z, b: w)
  emit Pair(x: x, y: w) }
""")
    v = ListView(p)
    for a, b in [("1", "2"), ("2", "3"), ("3", "4"), ("2", "5"), ("5", "6")]:
        v.add("Edge", a, b)
    got = sorted(o[2] for o in run(p, "a", v))
    assert got == [("1", "4"), ("1", "6")]


def test_negation_excludes_matches_with_a_live_fact() -> None:
    p = program("""
agent a tier 2 { when Cost(sku) and not Alert(sku) emit Pair(x: sku, y: "ok") }
""")
    v = ListView(p)
    v.add("Cost", "A", 1.0)
    v.add("Cost", "B", 1.0)
    alert = v.add("Alert", "A", "m", 1)
    assert [o[2] for o in run(p, "a", v)] == [("B", "ok")]
    v.remove(alert)
    assert [o[2] for o in run(p, "a", v)] == [("A", "ok"), ("B", "ok")]
    spec = next(a for a in p.agents if a.name == "a")
    assert spec.negates == (p.type_ids["Alert"],)
    assert spec.reads == (p.type_ids["Cost"],)


def test_negation_with_local_variable_repeated_is_an_equality() -> None:
    p = program("""
agent a tier 2 { when Cost(sku) and not Edge(a: q, b: q) emit Pair(x: sku, y: "no loop") }
""")
    v = ListView(p)
    v.add("Cost", "A", 1.0)
    v.add("Edge", "1", "2")
    assert len(run(p, "a", v)) == 1
    v.add("Edge", "3", "3")
    assert run(p, "a", v) == []


def test_intent_pattern_and_tool_call() -> None:
    p = program("""
agent fetch {
  when intent NeedRate(currency)
  call fx(currency: currency) as rate
  emit Quote(sku: "fx", vendor: rate.source, amount: rate.usd)
}
""")
    v = ListView(p)
    i = v.add("NeedRate", "EUR")
    rt = RecordingRuntime(lambda tool, args: {"usd": 1, "source": "ecb"})
    out = run(p, "fetch", v, runtime=rt)
    assert rt.calls == [("fx", {"currency": "EUR"})]
    # int from the tool is coerced for the float field; the default is filled in
    assert out == [(EMIT, p.type_ids["Quote"], ("fx", "ecb", 1.0, "USD"), 1.0, (i,))]
    assert isinstance(out[0][2][2], float)
    spec = next(a for a in p.agents if a.name == "fetch")
    assert spec.tools == ("fx",)


def test_tool_error_propagates() -> None:
    p = program("""
agent fetch { when intent NeedRate(currency) call fx(currency: currency) as rate
  emit Quote(sku: "fx", vendor: "v", amount: rate.usd) }
""")
    v = ListView(p)
    v.add("NeedRate", "EUR")

    def fail(tool: str, args: dict[str, object]) -> dict[str, object]:
        raise RuntimeError("down")

    with pytest.raises(RuntimeError, match="down"):
        run(p, "fetch", v, runtime=RecordingRuntime(fail))


def test_intend_and_evaluate_outputs_in_written_order_with_support() -> None:
    p = program("""
agent a tier 2 {
  when q: Quote(sku, currency) and c: Cost(sku)
  where currency != "USD"
  intend NeedRate(currency: currency)
  evaluate q score 0.25 reason "foreign"
  emit Alert(sku: sku, message: "fx", level: 3)
}
""")
    v = ListView(p)
    c = v.add("Cost", "A", 1.0)
    q = v.add("Quote", "A", "v", 2.0, "EUR")
    out = run(p, "a", v)
    assert out == [
        (INTEND, p.type_ids["NeedRate"], ("EUR",), 1.0, (q, c)),
        (EVALUATE, q, 0.25, "foreign", (q, c)),
        (EMIT, p.type_ids["Alert"], ("A", "fx", 3), 1.0, (q, c)),
    ]


def test_whole_fact_binder_field_access() -> None:
    p = program("""
agent a tier 2 { when p: Price(sku) and Cost(sku, amount: cost) where p.amount < cost
  emit Alert(sku: sku, message: "below") }
""")
    v = ListView(p)
    v.add("Cost", "A", 10.0)
    v.add("Price", "A", "web", 8.0)
    v.add("Price", "A", "store", 12.0)
    assert emitted(p, run(p, "a", v)) == [("Alert", ("A", "below", 1))]


def test_aggregates_count_sum_min_max_mean() -> None:
    p = program("""
fact Stat { key sku: str, n: int, total: float, lo: float?, hi: float?, avg: float? }
agent a tier 2 {
  when Cost(sku)
  emit Stat(sku: sku, n: count(Quote(sku)), total: sum(Quote(sku), amount),
            lo: min(Quote(sku), amount), hi: max(Quote(sku), amount),
            avg: mean(Quote(sku), amount))
}
""")
    v = ListView(p)
    v.add("Cost", "A", 1.0)
    v.add("Cost", "B", 1.0)
    for amount in (2.0, 4.0, 9.0):
        v.add("Quote", "A", "v", amount, "USD")
    v.add("Quote", "C", "v", 100.0, "USD")
    got = {o[2][0]: o[2][1:] for o in run(p, "a", v)}
    assert got["A"] == (3, 15.0, 2.0, 9.0, 5.0)
    assert got["B"] == (0, 0.0, None, None, None)
    spec = next(a for a in p.agents if a.name == "a")
    assert p.type_ids["Quote"] in spec.negates


def test_empty_min_in_comparison_is_false_not_an_error() -> None:
    p = program("""
agent a tier 2 { when Cost(sku, amount: c) where min(Quote(sku), amount) < c
  emit Alert(sku: sku, message: "cheaper quote") }
""")
    v = ListView(p)
    v.add("Cost", "A", 10.0)
    v.add("Cost", "B", 10.0)
    v.add("Quote", "A", "v", 5.0, "USD")
    assert emitted(p, run(p, "a", v)) == [("Alert", ("A", "cheaper quote", 1))]


def test_count_with_constant_and_no_constraints() -> None:
    p = program("""
agent a tier 2 { when Cost(sku) where count(Alert()) == 0 and count(Quote(currency: "EUR")) > 1
  emit Pair(x: sku, y: "calm") }
""")
    v = ListView(p)
    v.add("Cost", "A", 1.0)
    v.add("Quote", "A", "v", 1.0, "EUR")
    assert run(p, "a", v) == []
    v.add("Quote", "B", "v", 1.0, "EUR")
    assert len(run(p, "a", v)) == 1
    v.add("Alert", "A", "m", 1)
    assert run(p, "a", v) == []


def test_guard_order_protects_division() -> None:
    # `n != 0` must run before `x / n`, even though `n` is bound by the first pattern
    p = program("""
fact N { key k: str, n: int }
fact X { key k: str, x: float }
agent a { when N(k, n) and X(k, x) where n != 0 and x / n > 1.0
  emit Pair(x: k, y: "big") }
""")
    v = ListView(p)
    v.add("N", "z", 0)
    v.add("X", "z", 5.0)
    v.add("N", "a", 2)
    v.add("X", "a", 5.0)
    assert [o[2] for o in run(p, "a", v)] == [("a", "big")]


def test_expression_error_propagates() -> None:
    p = program("""
agent a { when Cost(sku, amount) emit Cost(sku: sku, amount: amount / 0) }
""")
    v = ListView(p)
    v.add("Cost", "A", 1.0)
    with pytest.raises(ZeroDivisionError):
        run(p, "a", v)


def test_list_and_optional_fields() -> None:
    p = program("""
agent a { when Tagged(sku, tags) where "x" in tags
  emit Tagged(sku: sku, tags: ["y", "z"]) }
""")
    v = ListView(p)
    v.add("Tagged", "A", ("x",), None)
    v.add("Tagged", "B", ("w",), "n")
    assert emitted(p, run(p, "a", v)) == [("Tagged", ("A", ("y", "z"), None))]


def test_expression_constraint_in_pattern_field() -> None:
    p = program("""
agent a { when Cost(sku, amount: c) and Quote(sku, amount: c * 2)
  emit Pair(x: sku, y: "double") }
""")
    v = ListView(p)
    v.add("Cost", "A", 5.0)
    v.add("Cost", "B", 5.0)
    c = v.add("Quote", "A", "v", 10, "USD")   # int 10 == float 10.0 in the index
    v.add("Quote", "B", "v", 11.0, "USD")
    # the Quote is the delta: its constraint on c is checked once c is bound
    out = run(p, "a", v, since=c)
    assert [o[2] for o in out] == [("A", "double")]


def test_reads_emits_and_order() -> None:
    p = program("""
agent late tier 3 { when Alert(sku) emit Pair(x: sku, y: "l") }
agent early { when Cost(sku) emit Alert(sku: sku, message: "e") intend NeedRate(currency: "X") }
""")
    assert [a.name for a in p.agents] == ["early", "late"]
    early = p.agents[0]
    assert (early.tier, early.order) == (1, 1)
    assert early.emits == (p.type_ids["Alert"], p.type_ids["NeedRate"])
    assert "def agent(view, since, runtime):" in early.source


def test_aggregate_constrained_by_binder_field_uses_an_index() -> None:
    p = program("""
agent a tier 2 { when c: Cost() where count(Quote(sku: c.sku)) > 1
  emit Alert(sku: c.sku, message: "quoted") }
""")
    v = ListView(p)
    v.add("Cost", "A", 1.0)
    v.add("Cost", "B", 1.0)
    for sku in ("A", "A", "B"):
        v.add("Quote", sku, "v", 1.0, "USD")
    assert emitted(p, run(p, "a", v)) == [("Alert", ("A", "quoted", 1))]
    quote = p.type_ids["Quote"]
    assert [ix.positions for ix in p.indexes if ix.type_id == quote] == [(0,)]


def test_a_required_field_given_no_value_fails_the_agent_instead_of_holding_none() -> None:
    from converge_rules.compiler.runtime import MissingValue

    p = program("""
agent cheapest {
  when Cost(sku) emit Price(sku: sku, channel: web, amount: min(Quote(sku), amount))
}
agent noted { when Tagged(sku, note) emit Alert(sku: sku, message: note) }
""")
    v = ListView(p)
    v.add("Cost", "A1", 10.0)
    with pytest.raises(MissingValue, match=r"Price\.amount is required"):
        run(p, "cheapest", v)
    v.add("Quote", "A1", "acme", 12.0, "USD")
    assert emitted(p, run(p, "cheapest", v)) == [("Price", ("A1", "web", 12.0))]
    v.add("Tagged", "B", ("x",), None)
    with pytest.raises(MissingValue, match=r"Alert\.message"):
        run(p, "noted", v)


def test_a_call_result_named_in_an_aggregate_pattern_compiles() -> None:
    import converge_rules

    text = '''ruleset t "t"
uses tool fx
fact A { key id: str }
fact S { key id: str, s: str }
fact C { key id: str, k: int }
agent t1 {
  when A(id)
  call fx(x: id) as r
  emit C(id: id, k: count(S(s: VALUE)))
}
'''
    facts = [("A", {"id": "a"}), ("S", {"id": "s", "s": "5"})]
    tools = {"fx": lambda args: {"v": "5"}}
    field = converge_rules.loads(text.replace("VALUE", "r.v"), plugins=False)
    assert converge_rules.run(field, facts, tools=tools).facts("C") == [{"id": "a", "k": 1}]
    # The whole (untyped) result as a key compiled to an internal error before; now it
    # compiles, and the run says what went wrong in that agent.
    record = converge_rules.loads(text.replace("VALUE", "r"), plugins=False)
    result = converge_rules.run(record, facts, tools=tools)
    assert result.facts("C") == []
    reasons = [e.reason for e in result.trace.events() if e.event == "effect_discarded"]
    assert reasons and "unhashable" in reasons[0]


def test_a_list_literal_with_an_optional_item_does_not_put_none_in_a_required_list() -> None:
    # Met as: `emit Out(v: [s, note])` with no note derived Out(v: ["x", None]) into a
    # list[str] field; a list[str?] field holds the none.
    import converge_rules

    ruleset = converge_rules.loads('''ruleset t
fact In { key id: str, s: str, note: str?, n: int? }
fact Out { key id: str, v: list[str] }
fact Nums { key id: str, v: list[int] }
fact Opt { key id: str, v: list[str?] }
agent out { when In(id, s, note) emit Out(id: id, v: if s == "" then [] else [s] + [note]) }
agent nums { when In(id, n) emit Nums(id: id, v: [1, n]) }
agent opt { when In(id, s, note) emit Opt(id: id, v: [s, note]) }
''')
    result = converge_rules.run(ruleset, [("In", {"id": "a", "s": "x"})])
    assert result.facts("Out") == [] and result.facts("Nums") == []
    assert result.facts("Opt") == [{"id": "a", "v": ["x", None]}]
    reasons = sorted(e.reason for e in result.trace.events()  # type: ignore[attr-defined]
                     if e.event == "effect_discarded")
    assert reasons == ["MissingValue: Nums.v[1] is required, but its expression gave no value",
                       "MissingValue: Out.v[1] is required, but its expression gave no value"]
    given = converge_rules.run(ruleset, [("In", {"id": "b", "s": "y", "note": "z", "n": 2})])
    assert given.facts("Out") == [{"id": "b", "v": ["y", "z"]}]
    assert given.facts("Nums") == [{"id": "b", "v": [1, 2]}]
