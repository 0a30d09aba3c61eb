"""What a job leaves for Python's cyclic garbage collector (issue 11, Waltz's compute).

Every container a run keeps is walked by a young collection at least once, and a list
is walked by every full collection after that too. A retractable job kept two lists per
derived fact (its one derivation in a list, the one fact resting on it in a list):
about a fifth of what Waltz 50's young collections walked. A fact's only derivation is
now the record itself and its only dependent a bare id, so once the collector has
untracked the atomic tuples a derived fact leaves it nothing; a second derivation or
dependent still makes a list, and retraction reads both shapes alike."""

from __future__ import annotations

import gc

import converge_rules
from converge_rules.engine.factstore import (
    FactStore,
    dependent_ids,
    derivation_entry,
    records,
)

# the keyed Tick with a resolving policy makes the store keep what retraction needs
CHAIN = converge_rules.loads('''ruleset chain "paths along a chain, retractable"
fact Edge { a: int, b: int }
fact Path { a: int, b: int }
fact Tick { key id: int, n: int }
agent base {
  when Edge(a, b)
  emit Path(a: a, b: b)
}
agent step {
  when Path(a, b) and Edge(a: b, b: c)
  emit Path(a: a, b: c)
}
policy Tick { resolve by latest }
''', plugins=False)


def tracked_after(n: int) -> tuple[int, int]:
    """Objects the collector tracks that a chain of ``n`` edges' run keeps, and the
    paths it derived."""
    facts = [("Edge", {"a": i, "b": i + 1}) for i in range(n)]
    gc.collect()
    before = len(gc.get_objects())
    result = converge_rules.run(CHAIN, facts)
    # twice: a record promoted before its support tuple is untracked the second time
    gc.collect()
    gc.collect()
    after = len(gc.get_objects())
    assert result.status == "converged"
    return after - before, len(result.facts("Path"))


def test_a_derived_fact_leaves_the_collector_nothing_to_track() -> None:
    tracked_after(5)  # imports and caches, outside the measure
    (short, paths_short), (long, paths_long) = tracked_after(40), tracked_after(80)
    per_fact = (long - short) / (paths_long - paths_short)
    # was 2.08: a one-item derivations list and a one-item dependents list a path
    assert per_fact < 0.5, per_fact


def test_entries_of_one_and_of_several_read_alike() -> None:
    one = (0, 3, (7,))
    assert records(None) == ()
    assert list(records(derivation_entry([one]))) == [one]
    assert derivation_entry([one]) == one  # no list for one
    two = [one, (1, 4, (7, 8))]
    assert list(records(derivation_entry(two))) == two
    assert list(dependent_ids(None)) == []
    assert list(dependent_ids(5)) == [5]
    assert list(dependent_ids([5, 6])) == [5, 6]


def test_derive_grows_an_entry_of_one_into_a_list_in_order() -> None:
    program = CHAIN.program
    store = FactStore(program, retractable=True)
    edge = next(i for i, t in enumerate(program.types) if t.name == "Edge")
    path = next(i for i, t in enumerate(program.types) if t.name == "Path")
    a = store.add(edge, (0, 1), 0)
    b = store.add(edge, (1, 2), 0)
    p = store.add(path, (0, 2), 1)
    store.derive(p, 1, 1, (a,))
    assert store.derivations[p] == (1, 1, (a,))
    assert store.dependents[a] == p
    store.derive(p, 1, 2, (a, b))
    assert list(records(store.derivations[p])) == [(1, 1, (a,)), (1, 2, (a, b))]
    assert list(dependent_ids(store.dependents[a])) == [p, p]
    assert list(dependent_ids(store.dependents[b])) == [p]

