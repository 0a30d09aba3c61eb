"""A value of no static type (a tool or plugin result) is checked against the field it
goes into when the agent runs, so a fact never holds a value of another type: a value of
the field's type is stored as the field holds it, any other fails the agent, naming the
field and the type, and the trace says why."""

from __future__ import annotations

from typing import Any

import pytest
from compiler_support import ListView, RecordingRuntime, compile_text, emitted, run

import converge_rules
from converge_rules.compiler.runtime import MissingValue, WrongType
from converge_rules.engine.trace import EffectDiscarded

TOOL_TEXT = '''ruleset t "t"
uses tool fx
fact A { key id: str, n: int }
fact S { id: str, s: str }
agent t0 {
  when A(id)
  emit S(id: id, s: "x")
}
agent t1 {
  when A(id)
  call fx(x: id) as r
  emit S(id: id, s: r.v)
}
'''


def test_a_tool_result_of_the_wrong_type_fails_the_agent_and_the_trace_says_why() -> None:
    ruleset = converge_rules.loads(TOOL_TEXT, plugins=False)
    result = converge_rules.run(ruleset, [("A", {"id": "a", "n": 3})],
                                tools={"fx": lambda args: {"v": 5}})
    assert result.facts("S") == [{"id": "a", "s": "x"}]
    reasons = [e.reason for e in result.trace.events() if isinstance(e, EffectDiscarded)]
    assert len(reasons) == 1
    assert "S.s is str" in reasons[0] and "int 5" in reasons[0]


def test_a_tool_result_of_the_right_type_is_kept() -> None:
    ruleset = converge_rules.loads(TOOL_TEXT, plugins=False)
    result = converge_rules.run(ruleset, [("A", {"id": "a", "n": 3})],
                                tools={"fx": lambda args: {"v": "five"}})
    assert sorted(result.facts("S"), key=lambda f: f["s"]) == [
        {"id": "a", "s": "five"}, {"id": "a", "s": "x"}]


FIELDS = """ruleset t
uses tool fx
enum Channel { web, store }
fact In { key k: str }
fact Out { key k: str, v: TYPE }
agent a { when In(k) call fx(k: k) as r emit Out(k: k, v: r.v) }
"""


def _store(type_text: str, value: Any) -> Any:
    """The value field ``v: type_text`` holds when a tool result gives it ``value``."""
    p = compile_text(FIELDS.replace("TYPE", type_text))
    v = ListView(p)
    v.add("In", "K")
    out = run(p, "a", v, runtime=RecordingRuntime(lambda tool, args: {"v": value}))
    ((_, values),) = emitted(p, out)
    return values[1]


@pytest.mark.parametrize(("type_text", "value", "stored"), [
    ("str", "s", "s"),
    ("int", 5, 5),
    ("float", 5, 5.0),
    ("float", 2.5, 2.5),
    ("bool", True, True),
    ("Channel", "web", "web"),
    ("str?", None, None),
    ("int?", 3, 3),
    ("list[float]", [1, 2.5], (1.0, 2.5)),
    ("list[str]", ("a", "b"), ("a", "b")),
    ("list[int?]", [1, None], (1, None)),
])
def test_an_untyped_value_of_the_field_type_is_stored_as_the_field_holds_it(
        type_text: str, value: Any, stored: Any) -> None:
    got = _store(type_text, value)
    assert got == stored and type(got) is type(stored)
    if isinstance(stored, tuple):
        assert [type(x) for x in got] == [type(x) for x in stored]


@pytest.mark.parametrize(("type_text", "value", "message"), [
    ("str", 5, r"Out\.v is str, but its expression gave int 5"),
    ("int", "5", r"Out\.v is int, but its expression gave str '5'"),
    ("int", 5.0, r"Out\.v is int, but its expression gave float"),
    ("int", True, r"Out\.v is int, but its expression gave bool"),
    ("float", "1.5", r"Out\.v is float, but its expression gave str"),
    ("float", False, r"Out\.v is float, but its expression gave bool"),
    ("bool", 1, r"Out\.v is bool, but its expression gave int"),
    ("Channel", "mail", r"Out\.v is Channel, but .*'mail'.* not one of its members"),
    ("Channel", 1, r"Out\.v is Channel, but its expression gave int"),
    ("list[int]", [1, "2"], r"Out\.v\[1\] is int, but its expression gave str"),
    ("list[int]", "12", r"Out\.v is list\[int\], but its expression gave str"),
    ("str", {"a": 1}, r"Out\.v is str, but its expression gave record"),
    ("list[str]", ["a", None], r"Out\.v\[1\] is required"),
])
def test_an_untyped_value_of_another_type_fails_the_agent_naming_field_and_type(
        type_text: str, value: Any, message: str) -> None:
    with pytest.raises(WrongType if "required" not in message else MissingValue,
                       match=message):
        _store(type_text, value)


def test_an_untyped_none_in_a_required_field_fails_the_agent() -> None:
    with pytest.raises(MissingValue, match=r"Out\.v is required"):
        _store("int", None)


def test_a_value_of_known_type_is_not_checked_at_run_time() -> None:
    p = compile_text(FIELDS.replace("TYPE", "str").replace("r.v", "k"))
    assert "_typed" not in p.agents[0].source
