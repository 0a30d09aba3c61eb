"""Whole-key lookups through the key table are an optimisation, never semantics.

A pattern of a keyed fact type whose whole key is bound when its turn comes reads the
one live fact holding that key from the type's key table (``View.key_table``) instead
of looping over the bucket of an index on the key. On a Waltz-like ruleset (edges
keyed by both ends and relabelled in place, junctions keyed by their base, lookups by
the whole key before and after the pass's new pattern, a negated type) and random
drawings, the program compiled so and the one compiled with ``route=False`` (the
index on the key, as invariants keep it) give the same status, facts, conflicts and
trace, byte for byte.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from converge_rules.engine import run
from tests.properties.test_routing_properties import _outcome, _programs

SOURCE = """ruleset keys
enum Mark { unknown, plus, minus }
fact Edge { key p1: int, key p2: int, label: Mark = unknown, seen: bool = false }
fact Junction { key base: int, p1: int, p2: int }
fact Mark2 { base: int }
fact Seen { a: int, b: int }

policy Edge {
  resolve by latest
  on tie first
}

agent relabel {
  when Junction(base, p1, p2) and Edge(p1: base, p2: p1, label: plus)
    and e: Edge(p1: base, p2: p2, label: unknown)
  emit lasting Edge(p1: base, p2: p2, label: minus, seen: e.seen)
}

agent spread {
  when e: Edge(p1: a, p2: b, label: l) and r: Edge(p1: b, p2: a, label: unknown)
  where l != unknown
  emit lasting Edge(p1: b, p2: a, label: l, seen: r.seen)
}

agent marks {
  when Edge(p1: a, p2: b, label: minus) and Junction(base: a)
  emit Mark2(base: a)
}

agent see tier 2 {
  when Junction(base, p1) and e: Edge(p1: base, p2: p1, seen: false) and not Mark2(base)
  emit lasting Edge(p1: base, p2: p1, label: e.label, seen: true)
}

agent seen tier 2 {
  when Edge(p1: a, p2: b, seen: true) and Junction(base: a, p2: c) and Edge(p1: a, p2: c)
  emit Seen(a: b, b: c)
}
"""

PROGRAMS = (_programs(SOURCE), _programs(SOURCE, route=False))

NODES = st.integers(0, 5)


@settings(deadline=None, derandomize=True, database=None, max_examples=150,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(edges=st.lists(st.tuples(NODES, NODES, st.sampled_from(("unknown", "plus"))),
                      max_size=14, unique_by=lambda e: e[:2]),
       junctions=st.lists(st.tuples(NODES, NODES, NODES), max_size=5,
                          unique_by=lambda j: j[0]))
def test_key_table_lookups_change_no_result_and_no_trace(
    edges: list[tuple[int, int, str]], junctions: list[tuple[int, int, int]]
) -> None:
    by_table, by_index = PROGRAMS
    assert any("view.key_table" in a.source for a in by_table.agents)
    assert not any("view.key_table" in a.source for a in by_index.agents)
    facts: list[tuple[str, dict[str, Any]]] = [
        ("Edge", {"p1": a, "p2": b, "label": label}) for a, b, label in edges]
    facts += [("Junction", {"base": b, "p1": p1, "p2": p2}) for b, p1, p2 in junctions]
    assert _outcome(run(by_table, facts)) == _outcome(run(by_index, facts))
