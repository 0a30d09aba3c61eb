"""A pass whose join has a pattern looked up by constants alone (``Stage(value:
labeling)``) checks once that such a fact exists before walking the pass's new facts:
with none, the new facts are not walked at all; nor in a pass where that fact must be
old while it is new itself (the stage's first cycle). Every match is still found exactly
once, in the same order, and a test that can fail on a new fact still fails."""

from __future__ import annotations

from collections import Counter
from itertools import product
from typing import Any

import pytest
from compiler_support import ListView, compile_text, emitted, run
from hypothesis import given, settings
from hypothesis import strategies as st

SOURCE = """ruleset t
enum Phase { one, two }
fact Stage { key of: str = "stage", value: Phase }
fact E { a: int, b: int }
fact Out { a: int, b: int }
agent label tier 2 {
  when Stage(value: two) and E(a, b) and E(a: b, b: c) where a != c
  emit Out(a: a, b: c)
}
agent ordered tier 2 {
  when Stage(value: two) and E(a, b) and E(a: b, b: c) where a < c
  emit Out(a: a, b: c)
}
agent divide tier 2 {
  when Stage(value: two) and E(a, b) where 10 / a > 1
  emit Out(a: a, b: b)
}
"""
PROGRAM = compile_text(SOURCE)
E = PROGRAM.type_ids["E"]


class CountingView(ListView):
    """Counts how often the new facts of E are asked for."""

    def __init__(self) -> None:
        super().__init__(PROGRAM)
        self.walks = 0

    def new(self, type_id: int, since: int) -> Any:
        if type_id == E:
            self.walks += 1
        return super().new(type_id, since)


def _outs(agent: str, view: ListView, since: int = 0) -> list[tuple[Any, ...]]:
    return [values for _, values in emitted(PROGRAM, run(PROGRAM, agent, view, since))]


def test_without_the_constant_fact_the_new_facts_are_not_walked() -> None:
    view = CountingView()
    view.add("Stage", "stage", "one")
    for i in range(5):
        view.add("E", i, i + 1)
    assert _outs("label", view) == []
    assert view.walks == 0
    view.add("Stage", "stage", "two")
    assert _outs("label", view) == [(i, i + 2) for i in range(4)]
    assert view.walks == 0                       # the stage is new: its pass finds all
    view.walks = 0
    assert _outs("label", view, len(view.values)) == []
    assert view.walks == 2                       # both passes over new E facts (none)


def test_with_the_constant_fact_new_only_its_own_pass_walks() -> None:
    # in the stage's first cycle the passes where an edge is new need an old stage: none
    view = CountingView()
    view.add("Stage", "stage", "one")
    view.add("E", 0, 1)
    since = len(view.values)
    view.add("Stage", "stage", "two")
    for i in range(1, 5):
        view.add("E", i, i + 1)
    assert _outs("label", view, since) == [(i, i + 2) for i in range(4)]
    assert view.walks == 0                       # the stage's pass found them all
    view.walks = 0
    later = len(view.values)
    view.add("E", 5, 6)
    assert _outs("label", view, later) == [(4, 6)]
    assert view.walks == 2                       # the stage is old now


def test_an_ordering_of_numbers_cannot_fail_so_its_pass_is_skipped_too() -> None:
    view = CountingView()
    for i in range(5):
        view.add("E", i, i + 1)
    assert _outs("ordered", view) == []
    assert view.walks == 0
    view.add("Stage", "stage", "two")
    assert _outs("ordered", view) == [(i, i + 2) for i in range(4)]


def test_a_test_that_can_fail_on_a_new_fact_still_runs_without_the_constant_fact() -> None:
    view = CountingView()
    view.add("E", 0, 1)
    with pytest.raises(ZeroDivisionError):       # 10 / 0, before Stage is looked up
        run(PROGRAM, "divide", view)


NODES = st.integers(0, 3)
FACT = st.one_of(
    st.tuples(st.just("E"), NODES, NODES),
    st.tuples(st.just("Stage"), st.sampled_from(["one", "two"])),
)


@pytest.mark.parametrize("agent", ["label", "ordered"])
@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(FACT, max_size=5), min_size=1, max_size=5))
def test_every_match_is_still_found_exactly_once(agent: str,
                                                 batches: list[list[tuple[Any, ...]]]) -> None:
    view = ListView(PROGRAM)
    seen: Counter[tuple[int, ...]] = Counter()
    for batch in batches:
        since = len(view.values)
        for name, *values in batch:
            if name == "Stage":
                view.add("Stage", "stage", *values)
            else:
                view.add(name, *values)
        for out in run(PROGRAM, agent, view, since):
            seen[out[4]] += 1
    v = view.values
    stages = [f for f in view.live[PROGRAM.type_ids["Stage"]] if v[f][1] == "two"]
    edges = list(view.live[E])
    naive = Counter(
        (s, e1, e2) for s, e1, e2 in product(stages, edges, edges)
        if v[e1][1] == v[e2][0]
        and (v[e1][0] != v[e2][1] if agent == "label" else v[e1][0] < v[e2][1])
    )
    assert seen == naive
