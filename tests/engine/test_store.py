"""The fact store: arena, live sets, indexes, same-fact lookups, fingerprint."""

from __future__ import annotations

from array import array
from typing import Any

from engine_programs import Builder, f

from converge_rules.engine.factstore import FactStore, fact_terms, fingerprint_terms
from converge_rules.program import EMIT, EVALUATE


def make_store() -> tuple[FactStore, int, int]:
    b = Builder()
    pair = b.fact("Pair", f("a"), f("b"))
    price = b.fact("Price", f("sku", key=True), f("amount", "float"))
    b.index(pair, 0)
    b.index(pair, 0, 1)
    return FactStore(b.build()), pair, price


def test_new_returns_live_ids_at_or_above_the_watermark_in_order() -> None:
    store, pair, _ = make_store()
    ids = [store.add(pair, (str(i), "x"), 1) for i in range(5)]
    store.remove(ids[3])
    assert list(store.new(pair, 0)) == [0, 1, 2, 4]
    assert list(store.new(pair, 2)) == [2, 4]
    assert list(store.new(pair, 5)) == []
    assert store.cycle_of(4) == 1


def test_indexes_follow_adds_and_removes() -> None:
    store, pair, _ = make_store()
    a = store.add(pair, ("a", "x"), 1)
    b = store.add(pair, ("a", "y"), 1)
    assert list(store.indexes[0]["a"]) == [a, b]
    assert list(store.indexes[1][("a", "y")]) == [b]
    store.remove(a)
    assert list(store.indexes[0]["a"]) == [b]
    store.remove(b)
    assert "a" not in store.indexes[0]
    assert store.values[a] == ("a", "x")  # the arena keeps dead facts


def test_same_fact_and_incumbent_lookups() -> None:
    store, pair, price = make_store()
    store.add_inputs(pair, [("a", "x")])
    p = store.add(price, ("A1", 10.0), 1)
    assert store.same_fact(pair, ("a", "x")) == 0
    assert store.same_fact(pair, ("a", "z")) is None
    assert store.same_fact(price, ("A1", 10.0)) == p
    assert store.same_fact(price, ("A1", 11.0)) is None
    assert store.incumbent(price, "A1") == p


def test_fingerprint_does_not_depend_on_order_and_returns_after_removal() -> None:
    s1, pair, _ = make_store()
    s2, _, _ = make_store()
    empty = s1.fingerprint
    for v in [("a", "1"), ("b", "2"), ("c", "3")]:
        s1.add(pair, v, 1)
    for v in [("c", "3"), ("a", "1"), ("b", "2")]:
        s2.add(pair, v, 1)
    assert s1.fingerprint == s2.fingerprint != empty
    for fid in list(s1.live[pair]):
        s1.remove(fid)
    assert s1.fingerprint == empty


def test_buckets_are_tuples_then_lists_or_dicts_and_shrink_on_removal() -> None:
    for retractable in (False, True):
        b = Builder()
        need = b.intent("Need", f("cur"), f("n", "int"))
        b.index(need, 0)
        store = FactStore(b.build(), retractable=retractable)
        x = store.add(need, ("EUR", 1), 1)
        assert list(store.indexes[0]["EUR"]) == [x]
        y = store.add(need, ("EUR", 2), 1)
        z = store.add(need, ("EUR", 3), 1)
        assert list(store.indexes[0]["EUR"]) == [x, y, z]
        store.close_intent(y)
        assert list(store.indexes[0]["EUR"]) == [x, z]
        assert store.same_fact(need, ("EUR", 2)) == y  # closed, still the same fact
        store.close_intent(x)
        store.close_intent(z)
        assert "EUR" not in store.indexes[0]


def test_a_static_type_holds_its_inputs_as_one_id_range() -> None:
    import pickle

    import pytest

    from converge_rules.engine.factstore import IdRange

    b = Builder()
    cost = b.fact("Cost", f("sku"), keyed=False)
    seen = b.fact("Seen", f("sku"), keyed=False)
    b.agent("see", lambda view, since, rt: [], reads=[cost], emits=[seen])
    store = FactStore(b.build())
    store.add_inputs(cost, [("a",), ("b",), ("c",)])
    store.add_inputs(seen, [("z",)])
    live = store.live[cost]
    assert isinstance(live, IdRange)           # no agent emits Cost: it never changes
    assert not isinstance(store.live[seen], IdRange)  # an agent emits Seen
    assert list(live) == [0, 1, 2] and 1 in live and 3 not in live and len(live) == 3
    assert list(store.new(cost, 1)) == [1, 2]
    assert store.max_live_id(cost) == 2
    with pytest.raises(TypeError):
        del live[0]
    assert list(pickle.loads(pickle.dumps(store.replicate())).live[cost]) == [0, 1, 2]
    assert store.add(seen, ("y",), 1) == 4 and list(store.new(seen, 0)) == [3, 4]


def _bulk(store: FactStore, outputs: list[tuple[Any, ...]], limit: int = 1 << 30,
          evaluated: bool = True) -> tuple[list[int], int | None]:
    fids: array[int] = array("q")
    over = store.add_outputs(outputs, 0, 1, limit, fids, lambda out: evaluated)
    return list(fids), over


def test_the_fingerprint_is_the_same_whichever_path_added_the_facts() -> None:
    facts = [("a", "1"), ("b", "2"), ("c", "3")]
    one_by_one, pair, _ = make_store()
    for v in facts:
        one_by_one.add(pair, v, 1)
    as_inputs, _, _ = make_store()
    as_inputs.add_inputs(pair, facts)
    in_bulk, _, _ = make_store()
    _bulk(in_bulk, [(EMIT, pair, v, 1.0, ()) for v in facts])
    assert one_by_one.fingerprint == as_inputs.fingerprint == in_bulk.fingerprint
    assert in_bulk.fingerprint == fingerprint_terms([pair] * len(facts), facts)


def test_the_fingerprint_sums_fact_terms_over_the_live_facts_after_keyed_updates() -> None:
    # add and update_in_place inline fact_terms and keep their sums unmasked: the
    # fingerprint is the same as summing fact_terms over what is live, mod 2**64
    store, pair, price = make_store()
    for i in range(4):
        store.add(pair, (str(i), "x"), 1)
    fid = store.add(price, ("A1", 10.0), 1)
    for amount in (11.0, 9.5, 12.0):
        fid = store.update_in_place(fid, ("A1", amount), 2)
    store.remove(0)
    live = [(t, store.values[i]) for t in (pair, price) for i in store.live[t]]
    terms = [fact_terms(t, v) for t, v in live]
    mask = (1 << 64) - 1
    expected = (sum(h for h, _ in terms) & mask, sum(h2 for _, h2 in terms) & mask)
    assert store.fingerprint == expected
    assert all(0 <= x <= mask for x in store.fingerprint)
    assert fingerprint_terms([t for t, _ in live], [v for _, v in live]) == expected


def test_closing_an_intent_never_returns_the_fingerprint_to_an_earlier_state() -> None:
    b = Builder()
    need = b.intent("Need", f("cur"))
    store = FactStore(b.build())
    empty = store.fingerprint
    fid = store.add(need, ("EUR",), 1)
    opened = store.fingerprint
    store.close_intent(fid)
    assert store.fingerprint not in (empty, opened)


def test_bulk_add_dedupes_marks_evaluations_and_stops_at_the_limit() -> None:
    b = Builder()
    pair = b.fact("Pair", f("a"), f("b"))
    b.index(pair, 0)
    b.agent("pairs", lambda view, since, rt: [], reads=[pair], emits=[pair])
    store = FactStore(b.build())
    store.add_inputs(pair, [("a", "x")])
    outputs = [
        (EMIT, pair, ("b", "y"), 1.0, (0,)),
        (EMIT, pair, ("a", "x"), 0.5, (0,)),   # the input fact again
        (EVALUATE, 0, 1.0, None, ()),
        (EMIT, pair, ("b", "y"), 0.9, (0,)),   # the first output again
        (EMIT, pair, ("c", "z"), 0.8, (0,)),
    ]
    fids, over = _bulk(store, outputs)
    assert (fids, over) == ([1, 0, -1, 1, 2], None)
    assert store.live_count == 3 and list(store.indexes[0]["b"]) == [1]
    assert store.confidence == {2: 0.8}
    assert list(store.derivations) == [1, 0, 2]  # a second derivation of the input too

    fids, over = _bulk(store, [(EVALUATE, 0, 1.0, None, ()), (EMIT, pair, ("c", "z"), 1.0, ()),
                               (EMIT, pair, ("d", "w"), 1.0, ())], limit=3, evaluated=False)
    assert (fids, over) == ([-2, 2], pair)
    assert store.live_count == 3 and store.same_fact(pair, ("d", "w")) is None


def test_removed_lists_the_old_ids_gone_after_a_count_of_removals_in_order() -> None:
    store, pair, price = make_store()
    store.log_removals([pair])
    ids = [store.add(pair, (str(i), "x"), 1) for i in range(6)]
    store.remove(ids[4])
    seen = store.removals[pair]             # what an agent running now would see
    store.remove(ids[2])
    store.remove(ids[5])                    # newer than the watermark below: left out
    store.remove(ids[0])
    assert store.removed(pair, seen, 5) == (ids[2], ids[0])
    assert store.removed(pair, 0, 6) == (ids[4], ids[2], ids[5], ids[0])
    assert store.removed(pair, store.removals[pair], 6) == ()
    assert store.removal_log[price] is None  # only the types asked for are logged


def test_an_index_built_from_the_live_facts_has_the_buckets_adding_them_one_by_one_gives(
) -> None:
    """``_fill`` (a lazy or deferred index built at once) gives each key the bucket
    :func:`index_insert` would have: a 1-tuple for a key of one fact, else a list
    (or an ordered-set dict when facts can leave), ids ascending; with keys of one
    fact, of many, and none of one."""
    cases: list[list[tuple[str, int]]] = [
        [("a", 1), ("b", 2), ("a", 3)],
        [("a", 1), ("b", 2), ("b", 3), ("a", 4)],
        [("x", i) for i in range(3)],
        [(f"k{i}", i) for i in range(4)],
        [],
    ]
    for retractable in (False, True):
        for rows in cases:
            b = Builder()
            pair = b.fact("Pair", f("k"), f("n", "int"), keyed=False)
            b.index(pair, 0)
            program = b.build()
            one_by_one, filled = (FactStore(program, retractable=retractable)
                                  for _ in range(2))
            one_by_one.index_active[0] = True
            one_by_one._rebuild_plan()
            for store in (one_by_one, filled):
                for row in rows:
                    store.add(pair, row, 1)
            filled.indexes[0].clear()
            filled._fill(0)
            assert filled.indexes[0] == one_by_one.indexes[0]
            assert [type(v) for v in filled.indexes[0].values()] == [
                type(v) for v in one_by_one.indexes[0].values()]
            assert list(filled.indexes[0]) == list(one_by_one.indexes[0])
            if rows:
                assert len(filled.indexes[0]) == len({k for k, _ in rows})
