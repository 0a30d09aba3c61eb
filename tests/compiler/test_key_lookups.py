"""A pattern that constrains the whole key of its keyed type (and more) looks the fact
up by its key alone (in the type's key table: the one live fact holding a key) and
checks the other fields on it, and one that binds part of a key of several fields
looks the facts up by that part: the type needs no index per
combination of constrained fields (each one maintained on every update of the type),
and the matches are those of a lookup on every constrained field."""

from __future__ import annotations

from collections import Counter
from itertools import product
from typing import Any

from compiler_support import ListView, compile_text, run
from hypothesis import given, settings
from hypothesis import strategies as st

SOURCE = """ruleset t
enum Mark { unknown, plus, boundary }
fact Edge { key p1: int, key p2: int, label: Mark = unknown, weight: float = 0.0 }
fact Junction { key base: int, p1: int, p2: int }
fact Out { a: int, b: int }
agent unknown_next tier 2 {
  when Junction(base, p1, p2) and Edge(p1: base, p2: p1, label: unknown)
    and Edge(p1: base, p2: p2, label: l)
  where l != unknown
  emit Out(a: p1, b: p2)
}
agent weighed tier 2 {
  when Junction(base, p1) and Edge(p1: base, p2: p1, weight: 1.0)
  emit Out(a: base, b: p1)
}
agent plus_from tier 2 {
  when Junction(base) and Edge(p1: base, p2: q, label: plus)
  emit Out(a: base, b: q)
}
agent heavy_from tier 2 {
  when Junction(base) and Edge(p1: base, p2: q, weight: 2.0)
  emit Out(a: base, b: q)
}
"""
PROGRAM = compile_text(SOURCE)


def _indexes(type_name: str) -> set[tuple[int, ...]]:
    tid = PROGRAM.type_ids[type_name]
    return {ix.positions for ix in PROGRAM.indexes if ix.type_id == tid}


def test_a_pattern_constraining_the_whole_key_looks_up_the_key_alone() -> None:
    assert (0, 1, 2) not in _indexes("Edge")          # no (p1, p2, label) index
    # the whole key is looked up in the type's key table (View.key_table), which the
    # merge keeps anyway: no index on the key either, to keep through every update
    assert (0, 1) not in _indexes("Edge")
    assert (0,) not in _indexes("Junction")
    source = next(a.source for a in PROGRAM.agents if a.name == "unknown_next")
    assert "kt0 = view.key_table(0)" in source and "kt1.get(v0)" in source
    # a float field is compared as an index would not (NaN, -0.0): it stays in the key
    assert (0, 1, 3) in _indexes("Edge")


def test_a_pattern_binding_part_of_the_key_looks_up_that_part() -> None:
    assert (0, 2) not in _indexes("Edge")             # no (p1, label) index
    assert (0,) in _indexes("Edge")
    assert (0, 3) in _indexes("Edge")                 # (p1, weight): a float stays


NODES = st.integers(0, 3)
LABELS = st.sampled_from(["unknown", "plus", "boundary"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(
    st.tuples(st.just("Edge"), NODES, NODES, LABELS),
    st.tuples(st.just("Junction"), NODES, NODES, NODES),
), max_size=12), st.integers(0, 12))
def test_matches_are_those_of_a_lookup_on_every_field(
        facts: list[tuple[Any, ...]], split: int) -> None:
    view = ListView(PROGRAM)
    keys: set[tuple[Any, ...]] = set()
    seen: Counter[tuple[int, ...]] = Counter()
    plus: Counter[tuple[int, ...]] = Counter()
    since = 0
    for i, (name, *values) in enumerate(facts):
        if i == split:
            seen.update(o[4] for o in run(PROGRAM, "unknown_next", view, since))
            plus.update(o[4] for o in run(PROGRAM, "plus_from", view, since))
            since = len(view.values)
        key = (name, *values[:2]) if name == "Edge" else (name, values[0])
        if key in keys:
            continue                                  # one live fact per key
        keys.add(key)
        view.add(name, *values, *((0.0,) if name == "Edge" else ()))
    seen.update(o[4] for o in run(PROGRAM, "unknown_next", view, since))
    plus.update(o[4] for o in run(PROGRAM, "plus_from", view, since))
    v = view.values
    junctions = list(view.live[PROGRAM.type_ids["Junction"]])
    edges = list(view.live[PROGRAM.type_ids["Edge"]])
    naive = Counter(
        (j, e1, e2) for j, e1, e2 in product(junctions, edges, edges)
        if v[e1][:3] == (v[j][0], v[j][1], "unknown")
        and v[e2][:2] == (v[j][0], v[j][2]) and v[e2][2] != "unknown"
    )
    assert seen == naive
    assert plus == Counter((j, e) for j, e in product(junctions, edges)
                           if v[e][0] == v[j][0] and v[e][2] == "plus")
