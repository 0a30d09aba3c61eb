"""Review findings on the compiler, each pinned by a test that failed before its fix:

* an untyped value (a tool result) is checked against the field it goes into, so a fact
  never holds a value of another type;
* a ``where`` part that uses no name of the match is checked once per pass, before the
  loops, not once per new fact — keeping the written order of ``where`` parts.
"""

from __future__ import annotations

from collections import Counter
from itertools import product
from typing import Any

import pytest
from compiler_support import ListView, RecordingRuntime, compile_text, emitted, run
from hypothesis import given, settings
from hypothesis import strategies as st

import converge_rules
from converge_rules.compiler.compile import compile_ruleset
from converge_rules.compiler.runtime import MissingValue, WrongType
from converge_rules.engine.trace import EffectDiscarded
from converge_rules.language.checks.checked import FunctionSignature
from converge_rules.language.checks.checker import check_file
from converge_rules.program import Program

# ------------------------------------------------- 1. untyped values are type-checked

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


# ------------------------------------- 2. guards that do not depend on the match


HOT = """ruleset t
fact Q { key id: str, amount: float }
fact C { key id: str, n: int }
fact D { key id: str }
fact Out { key id: str }
agent d tier 2 {
  when C(id, n) and D(id) where probe() > 0 and n > 1
  emit Out(id: id)
}
agent ordered tier 2 {
  when C(id, n) where n > 0 and 10 / count(Q()) > 1
  emit Out(id: id)
}
"""


def _hot_program(calls: list[int]) -> Program:
    def probe() -> int:
        calls.append(1)
        return 1

    checked = check_file("t.cvg", source=HOT,
                         functions={"probe": FunctionSignature("probe", (), "int")})
    assert checked.ok, checked.diagnostics
    return compile_ruleset(checked, functions={"probe": probe})


def test_a_guard_independent_of_the_match_runs_once_per_pass_not_per_new_fact() -> None:
    calls: list[int] = []
    p = _hot_program(calls)
    v = ListView(p)
    for i in range(5):
        v.add("C", f"c{i}", 2)
        v.add("D", f"c{i}")
    out = run(p, "d", v)
    assert sorted(values for _, values in emitted(p, out)) == [(f"c{i}",) for i in range(5)]
    assert len(calls) == 2                    # one per pass (C new, D new)
    calls.clear()
    since = len(v.values)
    v.add("C", "c9", 2)                       # only C is new: pass 1 has nothing to do
    assert run(p, "d", v, since) == []
    assert len(calls) == 1
    calls.clear()
    assert run(p, "d", v, len(v.values)) == [] and calls == []


def test_a_guard_independent_of_the_match_still_waits_for_an_earlier_where_part() -> None:
    p = _hot_program([])
    v = ListView(p)
    v.add("C", "c", 0)                        # n > 0 fails: 10 / count(Q()) never runs
    assert run(p, "ordered", v) == []
    v.add("C", "e", 1)
    with pytest.raises(ZeroDivisionError):
        run(p, "ordered", v)
    v.add("Q", "q", 1.0)
    assert [values for _, values in emitted(p, run(p, "ordered", v))] == [("e",)]


SEMI = """ruleset semi
fact Edge { a: str, b: str }
fact Path { a: str, b: str }
fact Mark { a: str }
fact Stop { a: str }
agent closure {
  when Edge(a: x, b: y) and Path(a: y, b: z) where count(Edge()) >= 0 and x != z
  emit Path(a: x, b: z)
}
agent cross { when Mark(a: m) and Edge(a: _, b: n) and not Stop(a: "9") where m < n
  emit Mark(a: n) }
"""
SEMI_PROGRAM = compile_text(SEMI)
NODES = st.sampled_from(["0", "1", "2"])
FACT = st.one_of(
    st.tuples(st.just("Edge"), NODES, NODES),
    st.tuples(st.just("Path"), NODES, NODES),
    st.tuples(st.just("Mark"), NODES),
)


def _naive(view: ListView) -> dict[str, Counter[tuple[int, ...]]]:
    v = view.values
    ids = {n: list(view.live[SEMI_PROGRAM.type_ids[n]]) for n in ("Edge", "Path", "Mark")}
    return {
        "closure": Counter(c for c in product(ids["Edge"], ids["Path"])
                           if v[c[0]][1] == v[c[1]][0] and v[c[0]][0] != v[c[1]][1]),
        "cross": Counter(c for c in product(ids["Mark"], ids["Edge"])
                         if v[c[0]][0] < v[c[1]][1]),
    }


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(FACT, max_size=5), min_size=1, max_size=5))
def test_hoisted_guards_keep_every_match_exactly_once(
        batches: list[list[tuple[Any, ...]]]) -> None:
    view = ListView(SEMI_PROGRAM)
    seen: dict[str, Counter[tuple[int, ...]]] = {"closure": Counter(), "cross": Counter()}
    for batch in batches:
        since = len(view.values)
        for name, *values in batch:
            view.add(name, *values)
        for agent in ("closure", "cross"):
            for out in run(SEMI_PROGRAM, agent, view, since):
                seen[agent][out[4]] += 1
    assert seen == _naive(view)
    assert "d0 = new(" in SEMI_PROGRAM.agents[0].source     # the guard really is hoisted
