"""Integer overflow checks the compiler writes inline (a range test, the check's call
only for a value outside it) where the result is known to be an int: every such site
fails the agent with the same reason as the call did, wherever it stands (a guard, an
emitted field, a negation's or an aggregate's constraint, an index key, which Python
allows no assignment expression in), and random integer expressions near the 64-bit
limits give what the test interpreter gives, value or error."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import converge_rules
from converge_rules.analysis.interpret import EvalError, Fact, interpreter_for
from converge_rules.language.syntax.nodes import Emit

INT_MAX = 2**63 - 1
INT_MIN = -(2**63)
RANGE = "is outside the 64-bit range (-9223372036854775808 to 9223372036854775807)"

HEAD = ('ruleset o "o"\nfact Item { a: int, b: int, c: int = 0 }\n'
        "fact Out { what: str, v: int }\nfact Mark { v: int }\n")


def reasons(source: str, facts: list[tuple[str, dict[str, Any]]]) -> dict[str, str]:
    result = converge_rules.run(converge_rules.loads(source, plugins=False), facts)
    events = [json.loads(line) for line in result.trace.lines()]
    assert events[-1]["event"] == "status"
    return {e["agent"]: e["reason"] for e in events if e["event"] == "effect_discarded"}


ONE = [("Item", {"a": INT_MAX, "b": 1, "c": INT_MIN}), ("Mark", {"v": 1})]
TWO = [("Item", {"a": INT_MAX, "b": 1}), ("Item", {"a": 1, "b": 2})]

SITES = {
    # agent → its body, its facts, the expression it overflows in and the value
    "plus": ('when Item(a, b) emit Out(what: "plus", v: a + b)', ONE, "a + b", INT_MAX + 1),
    "minus": ('when Item(b, c) emit Out(what: "minus", v: c - b)', ONE, "c - b",
              INT_MIN - 1),
    "times": ('when Item(a) emit Out(what: "times", v: a * 2)', ONE, "a * 2", 2 * INT_MAX),
    "negate": ('when Item(c) where c < 0 emit Out(what: "negate", v: -c)', ONE, "-c",
               2**63),
    "absolute": ('when Item(c) where c < 0 emit Out(what: "absolute", v: abs(c))', ONE,
                 "abs(c)", 2**63),
    "guard": ('when Item(a, b) where a + b > 0 emit Out(what: "guard", v: a)', ONE,
              "a + b", INT_MAX + 1),
    "nested": ('when Item(a, b) emit Out(what: "nested", v: (a - 1) + (b + 1) - 1)', ONE,
               "a - 1 + (b + 1)", INT_MAX + 1),
    "total": ('when Mark(v) emit Out(what: "total", v: sum(Item(), a) - v)', TWO + ONE[1:],
              "sum(Item(), a)", INT_MAX + 1),
    "then": ('when Mark(v) emit Out(what: "then", v: sum(Item(), b) + INT_MAX)'.replace(
        "INT_MAX", str(INT_MAX)), ONE, f"sum(Item(), b) + {INT_MAX}", INT_MAX + 1),
    # the key of a negation's index lookup, of an aggregate's (alone, and in a
    # comprehension's iterable, where Python allows no assignment expression), and a
    # constraint an aggregate checks on each candidate (in a comprehension's condition)
    "negated": ('when Item(a, b) and not Mark(v: a + b) emit Out(what: "negated", v: 1)',
                ONE, "a + b", INT_MAX + 1),
    "keyed": ('when Item(a) where count(Mark(v: a * 4)) == 0 emit Out(what: "keyed", v: 1)',
              ONE, "a * 4", 4 * INT_MAX),
    "iterable": ('when Mark(v) where count(Item(a: v + INT_MAX, b: x, c: x)) == 0 '
                 'emit Out(what: "iterable", v: 1)'.replace("INT_MAX", str(INT_MAX)), ONE,
                 f"v + {INT_MAX}", INT_MAX + 1),
    "candidate": ('when Mark(v) where count(Item(a: x, b: x + v)) == 0 '
                  'emit Out(what: "candidate", v: 1)', ONE, "x + v", INT_MAX + 1),
}


@pytest.mark.parametrize("name", SITES)
def test_each_inline_check_fails_the_agent_with_the_reason_the_call_gave(name: str) -> None:
    body, facts, text, value = SITES[name]
    assert reasons(HEAD + f"agent {name} {{ {body} }}\n", facts) == {
        name: f"IntegerOverflow: integer overflow: {text} = {value} {RANGE}"}


def test_the_same_expressions_in_range_give_their_values() -> None:
    source = HEAD + (
        "agent fine { when Item(a, b, c) and not Mark(v: a + b) "
        "where count(Mark(v: a * 4)) == 0 and a + b > 0 and count(Item(a: x, b: x + c)) == 0 "
        'emit Out(what: "fine", v: (a - 1) + (b + 1) - 1 + -a + abs(b) + sum(Item(), a) * c) }\n')
    result = converge_rules.run(converge_rules.loads(source, plugins=False),
                                [("Item", {"a": 9, "b": -7, "c": 3})])
    assert result.facts("Out") == [{"what": "fine", "v": 8 - 6 - 1 - 9 + 7 + 27}]


# ------------------------------------------------------------------ property

NEAR = st.sampled_from([0, 1, 2, 3, 2**31, 2**32, 3_037_000_499, 3_037_000_500, 2**62,
                        INT_MAX - 1, INT_MAX])
VALUES = st.one_of(NEAR, NEAR.map(lambda v: -v), st.just(INT_MIN),
                   st.integers(INT_MIN, INT_MAX))


def _combined(parts: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(parts, st.sampled_from(["+", "-", "*"]), parts)
        .map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        parts.map(lambda p: f"-{p}"),
        parts.map(lambda p: f"abs({p})"),
        st.tuples(parts, parts).map(lambda t: f"(if {t[0]} > 0 then {t[1]} else 1)"),
    )


EXPRESSIONS = st.recursive(
    st.one_of(st.sampled_from(["a", "b", "c", "sum(Row(), a)"]), NEAR.map(str)),
    _combined, max_leaves=8)
ROW = st.fixed_dictionaries({"a": VALUES, "b": VALUES, "c": VALUES})


@settings(deadline=None, derandomize=True, database=None, max_examples=120)
@given(EXPRESSIONS, ROW, st.lists(ROW, max_size=3, unique_by=lambda r: tuple(r.values())))
def test_integer_expressions_near_the_limits_agree_with_the_interpreter(
    expr: str, item: dict[str, int], rows: list[dict[str, int]],
) -> None:
    # the value the compiled agent emits, or why it failed; the interpreter's
    source = HEAD + ("fact Row { a: int, b: int, c: int }\n"
                     f"agent p {{ when Item(a, b, c) where {expr} != 0 or true "
                     f'emit Out(what: "p", v: {expr}) }}\n')
    ruleset = converge_rules.loads(source, plugins=False)
    result = converge_rules.run(ruleset, [("Item", item)] + [("Row", r) for r in rows])
    events = [json.loads(line) for line in result.trace.lines()]
    compiled = ([e["reason"] for e in events if e["event"] == "effect_discarded"]
                + [f["v"] for f in result.facts("Out")])
    interpreter = interpreter_for(ruleset.checked,
                                  facts={"Row": [Fact("Row", r) for r in rows]})
    (agent,) = ruleset.checked.agents
    (out,) = agent.outputs
    assert isinstance(out, Emit)
    try:
        interpreted: object = interpreter.eval(out.args[1].value, item)
    except EvalError as exc:
        interpreted = exc.message
    assert compiled == [interpreted]
