"""Engine properties: the result and the trace do not depend on completion order,
executor or worker count; policies are deterministic; merging a fact twice changes
nothing."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from converge_rules.engine import run
from converge_rules.engine.asyncio_executor import AsyncioExecutor
from converge_rules.engine.effects import Activation, AgentEffect, Delta
from converge_rules.engine.executors import (
    SerialExecutor,
    ThreadExecutor,
    fork_available,
    processes_executor,
)
from converge_rules.engine.factstore import FactStore
from converge_rules.engine.merge import Merger
from converge_rules.engine.policies import Contender, resolve
from converge_rules.language.syntax.span import Span
from converge_rules.program import (
    EMIT,
    AgentSpec,
    Budgets,
    CriterionSpec,
    FieldSpec,
    IndexSpec,
    PolicySpec,
    Program,
    TypeSpec,
    ValueType,
)

SPAN = Span("<prop>", 1, 1, 1, 1)
S = ValueType("str")
INT = ValueType("int")


def _fields(*spec: tuple[str, ValueType, bool]) -> tuple[FieldSpec, ...]:
    return tuple(FieldSpec(n, t, k) for n, t, k in spec)


EDGE, PATH, REACH, TOTAL, MARK = 0, 1, 2, 3, 4
TYPES = (
    TypeSpec(EDGE, "Edge", _fields(("a", S, False), ("b", S, False)), (), False, SPAN),
    TypeSpec(PATH, "Path", _fields(("a", S, False), ("b", S, False)), (), False, SPAN),
    TypeSpec(REACH, "Reach", _fields(("a", S, True), ("far", S, False)), (0,), False, SPAN),
    TypeSpec(TOTAL, "Total", _fields(("a", S, True), ("n", INT, False)), (0,), False, SPAN),
    TypeSpec(MARK, "Mark", _fields(("a", S, False), ("far", S, False)), (), False, SPAN),
)


def _base(view: Any, since: int, rt: Any) -> list[Any]:
    return [(EMIT, PATH, view.values[e], 1.0, (e,)) for e in view.new(EDGE, since)]


def _step(view: Any, since: int, rt: Any) -> list[Any]:
    out = []
    values = view.values
    for p in view.new(PATH, since):
        pa, pb = values[p]
        for e in view.indexes[0].get(pb, ()):
            out.append((EMIT, PATH, (pa, values[e][1]), 1.0, (p, e)))
    for e in view.new(EDGE, since):
        ea, eb = values[e]
        for p in view.indexes[1].get(ea, ()):
            if p < since:
                out.append((EMIT, PATH, (values[p][0], eb), 1.0, (p, e)))
    return out


def _reach(view: Any, since: int, rt: Any) -> list[Any]:
    return [(EMIT, REACH, view.values[p], 0.5, (p,)) for p in view.new(PATH, since)]


def _mark(view: Any, since: int, rt: Any) -> list[Any]:
    # rests on Reach, which policies replace: exercises retraction under any order
    return [(EMIT, MARK, view.values[r], 1.0, (r,)) for r in view.new(REACH, since)]


def _total(view: Any, since: int, rt: Any) -> list[Any]:
    return [(EMIT, TOTAL, (view.values[p][0], len(view.values[p][1])), 1.0, (p,))
            for p in view.new(PATH, since)]


def _agent(name: str, order: int, fn: Any, tier: int, reads: tuple[int, ...],
           emits: tuple[int, ...]) -> AgentSpec:
    return AgentSpec(name, tier, order, fn, "", reads, (), emits, (), SPAN)


PROGRAM = Program(
    name="props",
    goal=None,
    types=TYPES,
    indexes=(IndexSpec(0, EDGE, (0,)), IndexSpec(1, PATH, (1,))),
    agents=(
        _agent("base", 0, _base, 1, (EDGE,), (PATH,)),
        _agent("step", 1, _step, 1, (PATH, EDGE), (PATH,)),
        _agent("mark", 2, _mark, 1, (REACH,), (MARK,)),  # before reach: retractions
        _agent("reach", 3, _reach, 1, (PATH,), (REACH,)),
        _agent("total", 4, _total, 2, (PATH,), (TOTAL,)),
    ),
    policies={
        REACH: PolicySpec(REACH, "resolve", (CriterionSpec("field", "highest", 1),)),
        TOTAL: PolicySpec(TOTAL, "combine", combine_func="max", combine_position=1),
    },
    prunes=(),
    requires=(),
    budgets=Budgets(),
    tools=(),
    type_ids={t.name: t.id for t in TYPES},
)

NODES = st.sampled_from(["a", "b", "c", "dd", "e", "fff"])
EDGES = st.lists(st.tuples(NODES, NODES), min_size=1, max_size=12)


def _facts(edges: list[tuple[str, str]]) -> list[tuple[str, dict[str, Any]]]:
    return [("Edge", {"a": a, "b": b}) for a, b in edges]


class ShuffledExecutor(SerialExecutor):
    """Runs agents in a random order and returns their effects shuffled, as a
    parallel executor might."""

    def __init__(self, rng: random.Random) -> None:
        super().__init__()
        self.rng = rng

    def run_cycle(
        self, cycle: int, delta: Delta, activations: Sequence[Activation]
    ) -> list[AgentEffect]:
        acts = list(activations)
        self.rng.shuffle(acts)
        effects = super().run_cycle(cycle, delta, acts)
        self.rng.shuffle(effects)
        return effects


@settings(max_examples=30, deadline=None)
@given(EDGES, st.randoms(use_true_random=False))
def test_completion_order_does_not_change_result_or_trace(
    edges: list[tuple[str, str]], rng: random.Random
) -> None:
    serial = run(PROGRAM, _facts(edges))
    shuffled = run(PROGRAM, _facts(edges), executor=ShuffledExecutor(rng))
    # retraction keeps derived facts consistent: a Mark for exactly each live Reach
    assert serial.facts("Mark") == serial.facts("Reach")
    assert shuffled.to_json() == serial.to_json()
    assert shuffled.trace.to_jsonl() == serial.trace.to_jsonl()


@settings(max_examples=10, deadline=None)
@given(EDGES, st.integers(min_value=1, max_value=8))
def test_threads_with_any_worker_count_match_serial(
    edges: list[tuple[str, str]], workers: int
) -> None:
    serial = run(PROGRAM, _facts(edges))
    threaded = run(PROGRAM, _facts(edges), executor=ThreadExecutor(workers))
    assert threaded.to_json() == serial.to_json()
    assert threaded.trace.to_jsonl() == serial.trace.to_jsonl()


@settings(max_examples=10, deadline=None)
@given(EDGES, st.integers(min_value=1, max_value=8))
def test_asyncio_with_any_concurrency_matches_serial(
    edges: list[tuple[str, str]], max_concurrency: int
) -> None:
    serial = run(PROGRAM, _facts(edges))
    awaited = run(PROGRAM, _facts(edges), executor=AsyncioExecutor(max_concurrency))
    assert awaited.to_json() == serial.to_json()
    assert awaited.trace.to_jsonl() == serial.trace.to_jsonl()


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(-5, 5), min_size=2, max_size=6, unique=True), st.randoms())
def test_a_deciding_criterion_does_not_depend_on_contender_order(
    amounts: list[int], rng: random.Random
) -> None:
    policy = PolicySpec(TOTAL, "resolve", (CriterionSpec("field", "lowest", 1),))
    contenders = [Contender(("k", n), 1.0, None, 1, ("x",), False) for n in amounts]
    first = resolve(policy, TYPES[TOTAL], contenders)
    rng.shuffle(contenders)
    again = resolve(policy, TYPES[TOTAL], contenders)
    assert first.values == again.values == ("k", min(amounts))
    assert first.reason == again.reason


@settings(max_examples=30, deadline=None)
@given(EDGES)
def test_merging_the_same_fact_twice_changes_nothing(edges: list[tuple[str, str]]) -> None:
    once = run(PROGRAM, _facts(edges))
    twice = run(PROGRAM, _facts(edges + edges))
    assert twice.to_json() == once.to_json()

    store = FactStore(PROGRAM)
    merger = Merger(PROGRAM, store, [])
    merger.merge_inputs([EDGE] * len(edges), edges)
    effects = [AgentEffect(0, tuple(_base(store, 0, None)))]
    assert merger.merge_cycle(1, effects)
    before = (store.fingerprint, store.live_count)
    assert not merger.merge_cycle(2, effects)
    assert (store.fingerprint, store.live_count) == before


@pytest.mark.skipif(not fork_available(), reason="the processes executor needs fork")
@settings(max_examples=5, deadline=None)
@given(EDGES, st.integers(min_value=1, max_value=4))
def test_processes_with_any_worker_count_match_serial(
    edges: list[tuple[str, str]], workers: int
) -> None:
    serial = run(PROGRAM, _facts(edges))
    forked = run(PROGRAM, _facts(edges), executor=processes_executor(workers))
    assert forked.to_json() == serial.to_json()
    assert forked.trace.to_jsonl() == serial.trace.to_jsonl()
