"""Columnar outputs (``program.Columns``) and the live ids of types that only grow
(``factstore.IdList``): what each promises on its own. That a run gives the same
result and trace with either form of outputs is tests/properties/test_columns_properties.py."""

from __future__ import annotations

import pickle
from array import array
from typing import Any

import pytest
from engine_programs import Builder, f

from converge_rules import loads
from converge_rules.benchmarks import CLOSURE_RULESET
from converge_rules.engine import run
from converge_rules.engine.factstore import FactStore, IdList
from converge_rules.program import EMIT, Columns


def test_columns_read_as_the_list_of_their_output_tuples() -> None:
    cols = Columns(3, [(1, 2), (5, 6)], array("q", [10, 11, 12, 13]), 2)
    tuples = [(EMIT, 3, (1, 2), 1.0, (10, 11)), (EMIT, 3, (5, 6), 1.0, (12, 13))]
    assert len(cols) == 2
    assert list(cols) == tuples and cols == tuples and cols == tuple(tuples)
    assert cols[1] == tuples[1] and cols[-1] == tuples[1] and cols[:1] == tuples[:1]
    with pytest.raises(IndexError):
        cols[2]
    assert cols != tuples[:1] and cols != [] and Columns(3, [], array("q"), 2) == []
    assert pickle.loads(pickle.dumps(cols)) == cols
    assert cols.malformed() is None


def test_columns_take_their_support_as_a_list_too() -> None:
    cols = Columns(3, [(1, 2)], [10, 11], 2)
    assert cols.malformed() is None and list(cols) == [(EMIT, 3, (1, 2), 1.0, (10, 11))]


def test_columns_without_support_are_outputs_of_an_agent_without_patterns() -> None:
    cols = Columns(0, [(1,), (1,)], array("q"), 0)
    assert list(cols) == [(EMIT, 0, (1,), 1.0, ())] * 2 and cols.malformed() is None


@pytest.mark.parametrize(("cols", "problem"), [
    (Columns(0, [(1,)], array("q", [1, 2]), 1), "width ids per output"),
    (Columns(0, [(1,)], (1,), 1), "list or an array of ints"),  # type: ignore[arg-type]
    (Columns(0, [(1,)], array("d", [1.0]), 1), "array of ints"),
    (Columns(0, ((1,),), array("q", [1]), 1), "list of value tuples"),  # type: ignore[arg-type]
    (Columns("Out", [(1,)], array("q", [1]), 1), "int type_id"),  # type: ignore[arg-type]
    (Columns(0, [(1,)], array("q", [1]), -1), "int type_id and width"),
])
def test_malformed_columns_are_named(cols: Columns, problem: str) -> None:
    reason = cols.malformed()
    assert reason is not None and reason.startswith("malformed output") and problem in reason


def test_a_hand_written_agent_returning_malformed_columns_is_discarded() -> None:
    b = Builder()
    out = b.fact("Out", f("v", "int"))
    b.agent("bad", lambda view, since, rt: Columns(out, [(1,)], array("q", [7]), 2),  # type: ignore[arg-type,return-value]
            emits=[out])
    b.agent("good", lambda view, since, rt: Columns(out, [(2,), (2,)], array("q"), 0),  # type: ignore[arg-type,return-value]
            emits=[out])
    result = run(b.build(), [])
    assert result.status == "converged"
    assert result.facts("Out") == [{"v": 2}]
    (discarded,) = [e for e in result.trace.events() if e.event == "effect_discarded"]
    assert discarded.reason.startswith("malformed output")  # type: ignore[attr-defined]
    kinds = [e.event for e in result.trace.events() if e.event.startswith("fact_")]
    assert kinds == ["fact_added", "fact_supported"]


def test_generated_agents_return_columns_only_for_plain_emits_of_one_unkeyed_type() -> None:
    text = CLOSURE_RULESET + '''
fact Node { key id: int, degree: int = 0 }
fact Seen { n: int }
agent keyed { when Edge(src: a) emit Node(id: a) }
agent sure { when Edge(src: a) emit Seen(n: a) confidence 0.5 }
agent two { when Edge(src: a, dst: b) emit Seen(n: a) emit Path(src: b, dst: a) }
'''
    program = loads(text, plugins=False).program
    columnar = {a.name for a in program.agents if "_columns(" in a.source}
    assert columnar == {"base", "step"}


def test_closure_paths_and_their_provenance_from_columns() -> None:
    ruleset = loads(CLOSURE_RULESET, plugins=False)
    result = run(ruleset.program, [("Edge", {"src": 0, "dst": 1}), ("Edge", {"src": 1, "dst": 2})])
    assert {(p["src"], p["dst"]) for p in result.facts("Path")} == {(0, 1), (1, 2), (0, 2)}
    added = [(e.id, e.agent, e.support) for e in result.trace.events()  # type: ignore[attr-defined]
             if e.event == "fact_added" and e.agent is not None]  # type: ignore[attr-defined]
    assert added == [(2, "base", [0]), (3, "base", [1]), (4, "step", [0, 3])]


def _grow_only_store() -> FactStore:
    program = loads(CLOSURE_RULESET, plugins=False).program
    return FactStore(program, retractable=False)


def test_a_type_that_only_grows_keeps_its_live_ids_in_an_array() -> None:
    store = _grow_only_store()
    path = 1
    live = store.live[path]
    assert isinstance(live, IdList)
    for fid in (0, 1, 2):
        assert store.add(path, (fid, fid + 1), 1) == fid
    store.add_columns(Columns(path, [(7, 8), (0, 1), (9, 9)], array("q", [0, 1, 2]), 1))
    assert list(live) == [0, 1, 2, 3, 4] and len(live) == 5
    assert list(store.new(path, 2)) == [2, 3, 4] and list(store.new(path, 5)) == []
    assert 3 in live and 5 not in live and "3" not in live and store.is_live(4)
    assert list(reversed(live)) == [4, 3, 2, 1, 0] and store.max_live_id(path) == 4
    assert list(store.merged_ids(Columns(path, [(9, 9), (0, 1)], array("q", [0, 0]), 1))) \
        == [4, 0]


def test_columns_repeating_old_and_new_facts_merge_as_their_tuples_one_by_one() -> None:
    """``add_columns`` on a batch of mostly repeated outputs (an agent deriving few
    facts many times): the new facts in the order of their first output, the ids and
    the merged ids as ``add_outputs`` gives the same tuples one by one."""
    path = 1
    batch = [(5, 6), (0, 1), (5, 6), (7, 8), (0, 1), (7, 8), (5, 6), (9, 9)]
    columnar, one_by_one = _grow_only_store(), _grow_only_store()
    for store in (columnar, one_by_one):
        for fid in (0, 1):
            store.add(path, (fid, fid + 1), 1)
    assert columnar.add_columns(Columns(path, batch, array("q", range(8)), 1)) == 3
    one_by_one.add_outputs([(EMIT, path, v, 1.0, (0,)) for v in batch], 0, 1, 100,
                           array("q"), lambda out: False)
    assert columnar.values == one_by_one.values
    assert columnar.values[2:] == [(5, 6), (7, 8), (9, 9)]
    assert list(columnar.merged_ids(Columns(path, batch, array("q", range(8)), 1))) == [
        2, 0, 2, 3, 0, 3, 2, 4]
    assert list(columnar.live[path]) == [0, 1, 2, 3, 4]
    assert columnar.add_columns(Columns(path, [(5, 6)] * 3, array("q", range(3)), 1)) == 0


def test_an_id_list_keeps_runs_of_ids() -> None:
    live = IdList([1, 4])
    live.extend(5, 8)    # continues the run 4..4
    live.extend(10, 12)
    live[12] = None
    live.extend(12, 12)  # nothing
    assert list(live) == [1, 4, 5, 6, 7, 10, 11, 12] and len(live) == 8
    assert list(live.starts) == [1, 4, 10] and list(live.stops) == [2, 8, 13]
    assert list(reversed(live)) == [12, 11, 10, 7, 6, 5, 4, 1]
    assert [f for f in range(14) if f in live] == list(live)
    assert live.since(6) == [6, 7, 10, 11, 12] and live.since(11) == range(11, 13)
    assert live.since(0) == list(live) and live.since(13) == range(0)
    assert pickle.loads(pickle.dumps(live)) == live


def test_an_id_list_refuses_what_would_break_its_order() -> None:
    live = IdList([1, 4])
    live[4] = None  # already there: nothing changes
    with pytest.raises(ValueError):
        live[2] = None
    with pytest.raises(ValueError):
        live.extend(3, 5)
    with pytest.raises(TypeError):
        del live[1]
    with pytest.raises(KeyError):
        live[2]
    assert list(live) == [1, 4]


def test_a_replica_of_a_grow_only_store_can_replay_removals() -> None:
    store = _grow_only_store()
    store.add(1, (0, 1), 1)
    replica: Any = store.replicate()
    replica.remove(0)
    assert list(replica.live[1]) == [] and list(store.live[1]) == [0]


def test_types_that_can_leave_keep_dicts() -> None:
    program = loads(CLOSURE_RULESET, plugins=False).program
    assert all(type(live) is dict for live in FactStore(program, retractable=True).live)


DUPLICATES = """ruleset dups "Columns of one cycle, some equal to each other or to older facts"
root "r" { max_cycles = 6 }

fact A { n: int }
fact B { n: int }
fact C { n: int }

agent one { when A(n) emit B(n: n) }
agent two { when A(n) emit B(n: n) }
agent three { when A(n) where n < 3 emit B(n: n + 1) }
agent four { when A(n) emit C(n: n) }
agent five { when B(n) emit C(n: n) }
agent six { when C(n) where n > 1 emit B(n: n - 1) }
"""


def _one_effect_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    from converge_rules.engine.merge import Merger
    monkeypatch.setattr(Merger, "_columns_only", lambda self, *runs: False)


@pytest.mark.parametrize("inputs", [[1, 2, 3], [3, 1], [2], []])
def test_a_cycle_of_columns_merges_as_its_effects_one_by_one(
        monkeypatch: pytest.MonkeyPatch, inputs: list[int]) -> None:
    """A cycle whose effects are all columns is merged with one store operation per
    run of one type: the same facts, ids and trace as merging effect by effect, when
    outputs repeat each other within the cycle (``one`` and ``two``, ``three``'s
    ``B(n + 1)``) and facts of earlier cycles (``five``, ``six``)."""
    ruleset = loads(DUPLICATES, plugins=False)
    facts = [("A", {"n": n}) for n in inputs]
    batched = run(ruleset.program, facts)
    with monkeypatch.context() as m:
        _one_effect_at_a_time(m)
        single = run(ruleset.program, facts)
    assert batched.status == single.status == "converged"
    assert batched.to_json() == single.to_json()
    assert batched.trace.to_jsonl() == single.trace.to_jsonl()
    if inputs:
        assert "fact_supported" in batched.trace.to_jsonl()  # equal outputs were merged


def test_many_agents_deriving_one_fact_many_times_merge_as_one_by_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Effects of many outputs, most equal to each other, batched in one store
    operation per type (``converge bench``'s routing: each agent derives one fact once
    per reading of its kind): the same facts, ids and trace as effect by effect,
    each effect's first new fact placed by the positions of the batch's new facts."""
    from converge_rules.benchmarks import routing_readings, routing_ruleset

    ruleset = loads(routing_ruleset(7), plugins=False)
    # kinds k0..k8: two no agent watches; agents whose kind comes first derive first
    facts = [("Reading", {"kind": k, "value": v}) for k, v in routing_readings(9, 200)]
    facts.reverse()
    batched = run(ruleset.program, facts)
    with monkeypatch.context() as m:
        _one_effect_at_a_time(m)
        single = run(ruleset.program, facts)
    assert batched.status == single.status == "converged"
    assert sorted(f["kind"] for f in batched.facts("Seen")) == [f"k{i}" for i in range(7)]
    assert batched.to_json() == single.to_json()
    assert batched.trace.to_jsonl() == single.trace.to_jsonl()


REPEATS = """
ruleset repeats "Effects that repeat one value, beside effects that do not"
root "r" { max_cycles = 6 }

fact A { n: int }
fact B { n: int }
fact C { n: int }

agent one { when A(n) emit B(n: 1) }
agent each { when A(n) emit B(n: n) }
agent two { when A(n) emit B(n: 2) }
agent nine { when A(n) where n > 2 emit B(n: 9) }
agent alone { when B(n) where n > 1 emit C(n: 0) }
"""


@pytest.mark.parametrize("inputs", [[1], [3], [4, 1, 3], [1, 2, 3, 4, 5], [9, 8, 7, 2]])
def test_effects_repeating_one_value_merge_as_their_outputs_one_by_one(
        monkeypatch: pytest.MonkeyPatch, inputs: list[int]) -> None:
    """An effect whose outputs are one value repeated (a constant emit: ``one``,
    ``two``, ``nine``; ``alone`` in a cycle of its own) is merged as that value once,
    at its first output's place: the same facts, ids and trace as effect by effect,
    beside effects of distinct values (``each``) deriving the same facts."""
    ruleset = loads(REPEATS, plugins=False)
    facts = [("A", {"n": n}) for n in inputs]
    batched = run(ruleset.program, facts)
    with monkeypatch.context() as m:
        _one_effect_at_a_time(m)
        single = run(ruleset.program, facts)
    assert batched.status == single.status == "converged"
    assert batched.to_json() == single.to_json()
    assert batched.trace.to_jsonl() == single.trace.to_jsonl()


def test_columns_given_once_per_run_of_one_value_merge_as_the_whole_batch() -> None:
    """``add_columns(..., at=)``: a batch whose runs of one value are given once, at
    their first output's position, adds the same facts with the same ids as the whole
    batch, and ``fresh`` gets the same positions."""
    path = 1
    whole = [(5, 6), (5, 6), (5, 6), (0, 1), (7, 8), (7, 8), (9, 9), (5, 6)]
    given = [(5, 6), (0, 1), (7, 8), (9, 9), (5, 6)]
    at = [0, 3, 4, 6, 7]
    one, other = _grow_only_store(), _grow_only_store()
    for store in (one, other):
        store.add(path, (0, 1), 1)
    fresh_whole: list[int] = []
    fresh_given: list[int] = []
    assert one.add_columns(Columns(path, whole, [], 0), fresh_whole) == 3
    assert other.add_columns(Columns(path, given, [], 0), fresh_given, at) == 3
    assert one.values == other.values and fresh_whole == fresh_given == [0, 4, 6]
    assert list(one.merged_ids(Columns(path, whole, [], 0))) == list(
        other.merged_ids(Columns(path, whole, [], 0))) == [1, 1, 1, 0, 2, 2, 3, 1]
    fresh_given.clear()
    assert other.add_columns(Columns(path, [(4, 4)], [], 0), fresh_given, [5]) == 1
    assert fresh_given == [5] and other.values[-1] == (4, 4)
