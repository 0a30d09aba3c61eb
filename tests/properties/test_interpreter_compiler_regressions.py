"""Disagreements between the test interpreter and the compiled code that the property in
``test_interpreter_agrees_with_compiler.py`` found, each pinned as a plain example.
Where they disagreed, the language reference (patterns are read left to right; a
negated or aggregated pattern's new names are its own) decided which side was wrong."""

from __future__ import annotations

from typing import Any

import converge_rules
from converge_rules.analysis.explain import Explainer, Reason
from converge_rules.analysis.runview import view_from_result
from converge_rules.cli.explain import parse_pattern


def _run(text: str, facts: list[tuple[str, dict[str, Any]]]) -> tuple[Any, Any]:
    ruleset = converge_rules.loads(text, plugins=False)
    return ruleset, converge_rules.run(ruleset, facts)


def _why_not(text: str, facts: list[tuple[str, dict[str, Any]]], pattern: str) -> Reason:
    """The one reason ``explain --why-not`` gives for the one agent of ``text``."""
    ruleset, result = _run(text, facts)
    view = view_from_result(result)
    (reason,) = Explainer(view, ruleset.checked).why_not(parse_pattern(pattern))
    return reason


def test_a_bare_enum_member_name_in_a_field_of_another_type_is_a_variable() -> None:
    # The checker and the compiler bind `web` (the field is a str); the interpreter
    # read it as the enum member "web" and found no match.
    text = """ruleset r
enum Channel { web, store }
fact Page { name: str }
fact Seen { name: str }
agent a {
  when Page(name: web)
  emit Seen(name: web)
}
"""
    _, result = _run(text, [("Page", {"name": "home"})])
    assert result.facts("Seen") == [{"name": "home"}]
    reason = _why_not(text, [("Page", {"name": "home"})], 'Seen(name: "home")')
    assert reason.matched and "would emit Seen(name: \"home\")" in reason.message


def test_why_not_looks_at_every_emit_of_the_type() -> None:
    # It read only the first `emit Quote`, so it said the agent emits Quote(sku: "a"),
    # "which is not" the Quote(sku: "b") the engine derived.
    text = """ruleset r
fact Cost { sku: str }
fact Quote { sku: str }
agent a {
  when Cost()
  emit Quote(sku: "a")
  emit Quote(sku: "b")
}
"""
    reason = _why_not(text, [("Cost", {"sku": "x"})], 'Quote(sku: "b")')
    assert reason.matched and 'would emit Quote(sku: "b")' in reason.message


def test_why_not_fills_the_fields_an_emit_leaves_out() -> None:
    # A field left out takes its default (the engine's fact has sku "a"); why-not
    # built the fact without it and said it did not match.
    text = """ruleset r
fact Cost { sku: str }
fact Alert { sku: str = "a", note: str? }
agent a {
  when Cost()
  emit Alert()
}
"""
    reason = _why_not(text, [("Cost", {"sku": "x"})], 'Alert(sku: "a")')
    assert reason.matched and "would emit" in reason.message


def test_lists_from_a_trace_join_list_literals() -> None:
    # A fact read back from the trace holds a JSON list; `tags + ["x"]` raised
    # "can only concatenate list (not "tuple") to list" in the interpreter.
    text = """ruleset r
fact Cost { tags: list[str] }
fact Long { n: int }
agent a {
  when Cost(tags) where len(tags + ["x"]) > 1
  emit Long(n: len(tags + ["x"]))
}
"""
    reason = _why_not(text, [("Cost", {"tags": ["a"]})], "Long(n: 2)")
    assert reason.matched and "would emit Long(n: 2)" in reason.message


def test_a_negation_before_the_pattern_that_binds_its_name_keeps_the_name_local() -> None:
    # `vendor` is new where `not Banned(vendor)` is written: the negation asks for no
    # Banned fact at all. The compiled agent joined it with the later Quote's vendor.
    text = """ruleset r
fact Banned { vendor: str }
fact Quote { sku: str, vendor: str }
fact Open { sku: str }
agent a {
  when not Banned(vendor) and Quote(sku, vendor)
  emit Open(sku: sku)
}
"""
    _, result = _run(text, [("Banned", {"vendor": "x"}),
                            ("Quote", {"sku": "A", "vendor": "y"})])
    assert result.facts("Open") == []
    _, result = _run(text, [("Quote", {"sku": "A", "vendor": "y"})])
    assert result.facts("Open") == [{"sku": "A"}]


def test_an_aggregate_in_a_pattern_field_sees_only_names_bound_before_it() -> None:
    # `sku` is new inside `count(Quote(sku))` where it is written, so it counts every
    # Quote (2); the compiled agent waited for the later `Quote(sku)` and counted 1.
    text = """ruleset r
fact Cost { qty: int }
fact Quote { sku: str }
fact Hit { sku: str }
agent a {
  when Cost(qty: count(Quote(sku))) and Quote(sku)
  emit Hit(sku: sku)
}
"""
    _, result = _run(text, [("Cost", {"qty": 2}), ("Quote", {"sku": "a"}),
                            ("Quote", {"sku": "b"})])
    assert result.facts("Hit") == [{"sku": "a"}, {"sku": "b"}]


def test_and_or_over_an_optional_bool_give_a_bool() -> None:
    # `flag and true` with flag none was none in the compiled agent (Python's `and`),
    # so a bool field held none; the interpreter (and a guard) read none as false.
    text = """ruleset r
fact In { flag: bool? }
fact Out { both: bool, either: bool }
agent a {
  when In(flag)
  emit Out(both: flag and true, either: false or flag)
}
"""
    _, result = _run(text, [("In", {"flag": None})])
    assert result.facts("Out") == [{"both": False, "either": False}]
    reason = _why_not(text, [("In", {"flag": None})], "Out(both: false, either: false)")
    assert reason.matched and "would emit" in reason.message


def test_a_float_field_that_overflows_is_a_runtime_error() -> None:
    # `x * x` past 1e308 is infinity. The engine kept Out(y: inf) (and `converge run`
    # printed Infinity, which is not JSON) while the trace wrote null, so `expect`,
    # explain and coverage, which read the trace, saw none. A fact holds finite numbers
    # only, as input facts and tool results do: the overflow discards the effect, like
    # a division by zero.
    text = """ruleset r
fact In { x: float }
fact Out { y: float }
agent a {
  when In(x)
  emit Out(y: x * x)
}
"""
    _, result = _run(text, [("In", {"x": 1e200})])
    assert result.facts("Out") == []
    (discarded,) = view_from_result(result).effects_discarded
    assert discarded[0] == "a" and "Out.y is inf" in discarded[2]
    _, result = _run(text, [("In", {"x": 2.0})])
    assert result.facts("Out") == [{"y": 4.0}]


def test_a_negated_pattern_field_may_use_the_names_its_earlier_fields_bind() -> None:
    # In `not A(sku, qty: len(sku))` the expression reads the candidate A's own sku,
    # as the checker and the interpreter read it. The compiler raised "unknown name
    # 'sku'" on this checked ruleset, and inside an aggregate (`count(B(sku))`) it
    # counted every B instead of those with the candidate's sku.
    text = """ruleset r
fact X { id: int }
fact A { sku: str, qty: int }
fact B { sku: str }
fact Out { id: int, why: str }
agent own {
  when X(id) and not A(sku, qty: len(sku))
  emit Out(id: id, why: "len")
}
agent counted {
  when X(id) and not A(sku, qty: count(B(sku)))
  emit Out(id: id, why: "count")
}
"""
    facts = [("X", {"id": 1}), ("A", {"sku": "a", "qty": 1}), ("B", {"sku": "a"}),
             ("B", {"sku": "b"})]
    _, result = _run(text, facts)
    assert result.facts("Out") == []      # A(a, 1): len("a") == 1 == count(B(sku: "a"))
    _, result = _run(text, [("X", {"id": 1}), ("A", {"sku": "ab", "qty": 1})])
    assert result.facts("Out") == [{"id": 1, "why": "count"}, {"id": 1, "why": "len"}]


def test_a_binder_is_bound_for_its_own_pattern_fields() -> None:
    # The checker binds `p` before the fields of `p: A(…)`, so `qty: len(p.sku)` is
    # allowed and the compiled agent matches; the interpreter bound p after the fields
    # and raised "unknown name `p`" out of explain --why-not.
    text = """ruleset r
fact A { sku: str, qty: int }
fact Out { sku: str }
agent a {
  when p: A(qty: len(p.sku))
  emit Out(sku: p.sku)
}
"""
    facts = [("A", {"sku": "ab", "qty": 2}), ("A", {"sku": "abc", "qty": 2})]
    _, result = _run(text, facts)
    assert result.facts("Out") == [{"sku": "ab"}]
    reason = _why_not(text, facts, 'Out(sku: "ab")')
    assert reason.matched and 'would emit Out(sku: "ab")' in reason.message
