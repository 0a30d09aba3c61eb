"""Semi-naive evaluation: over any sequence of deltas, the matches an agent returns run
by run are exactly the matches of a naive evaluation of the final context — none
missing, none twice."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from itertools import product
from typing import Any

from compiler_support import ListView, compile_text, run
from hypothesis import given, settings
from hypothesis import strategies as st

RULES = """\
ruleset semi
fact Edge { a: str, b: str }
fact Path { a: str, b: str }
fact Mark { a: str }

agent closure { when Edge(a: x, b: y) and Path(a: y, b: z) emit Path(a: x, b: z) }
agent triangle {
  when Edge(a: x, b: y) and Edge(a: y, b: z) and Edge(a: z, b: x) emit Mark(a: x)
}
agent anchored {
  when Edge(a: x, b: "1") and Path(a: x, b: y) where y != x emit Mark(a: y)
}
agent cross { when Mark(a: m) and Edge(a: _, b: n) where m < n emit Mark(a: n) }
agent single { when Path(a: x, b: x) emit Mark(a: x) }
"""

PROGRAM = compile_text(RULES)

Vals = list[tuple[Any, ...]]


def _naive(view: ListView) -> dict[str, Counter[tuple[int, ...]]]:
    """Every match of every agent over the whole context, by brute force."""
    v = view.values
    ids = {name: list(view.live[PROGRAM.type_ids[name]]) for name in ("Edge", "Path", "Mark")}
    edges, paths, marks = ids["Edge"], ids["Path"], ids["Mark"]

    def matches(pools: list[list[int]], ok: Callable[..., bool]) -> Counter[tuple[int, ...]]:
        return Counter(combo for combo in product(*pools) if ok(*(v[f] for f in combo)))

    return {
        "closure": matches([edges, paths], lambda e, p: e[1] == p[0]),
        "triangle": matches([edges, edges, edges],
                            lambda e1, e2, e3: e1[1] == e2[0] and e2[1] == e3[0]
                            and e3[1] == e1[0]),
        "anchored": matches([edges, paths],
                            lambda e, p: e[1] == "1" and p[0] == e[0] and p[1] != e[0]),
        "cross": matches([marks, edges], lambda m, e: m[0] < e[1]),
        "single": matches([paths], lambda p: p[0] == p[1]),
    }


NODES = st.sampled_from(["0", "1", "2", "3"])
FACT = st.one_of(
    st.tuples(st.just("Edge"), NODES, NODES),
    st.tuples(st.just("Path"), NODES, NODES),
    st.tuples(st.just("Mark"), NODES),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(FACT, max_size=6), min_size=1, max_size=6))
def test_union_of_delta_runs_equals_naive_evaluation(batches: list[list[tuple[Any, ...]]]
                                                     ) -> None:
    view = ListView(PROGRAM)
    seen: dict[str, Counter[tuple[int, ...]]] = {a.name: Counter() for a in PROGRAM.agents}
    for batch in batches:
        since = len(view.values)
        for name, *values in batch:
            view.add(name, *values)
        for agent in PROGRAM.agents:
            for out in run(PROGRAM, agent.name, view, since):
                seen[agent.name][out[4]] += 1
    assert seen == _naive(view)


def test_a_run_with_no_new_fact_returns_nothing() -> None:
    view = ListView(PROGRAM)
    view.add("Edge", "0", "1")
    view.add("Path", "1", "2")
    assert run(PROGRAM, "closure", view, 0)
    assert run(PROGRAM, "closure", view, len(view.values)) == []
