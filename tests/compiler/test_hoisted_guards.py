"""A ``where`` part that uses no name of the match is checked once per pass, before the
loops, not once per new fact, and still only after the ``where`` parts written before
it; every match is still found exactly once."""

from __future__ import annotations

from collections import Counter
from itertools import product
from typing import Any

import pytest
from compiler_support import ListView, compile_text, emitted, run
from hypothesis import given, settings
from hypothesis import strategies as st

from converge_rules.compiler.compile import compile_ruleset
from converge_rules.language.checks.checked import FunctionSignature
from converge_rules.language.checks.checker import check_file
from converge_rules.program import Program

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
