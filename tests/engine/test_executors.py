"""Executors: the replica protocol (delta applied to a pickled replica gives the same
job), the registry, progress events and the trace sink."""

from __future__ import annotations

import json
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from test_cycles import QUOTES, count_program, intent_program, retraction_program
from test_smoke_closure import closure_program

from converge_rules.engine import CycleProgress, run
from converge_rules.engine.effects import Activation, AgentEffect, Delta
from converge_rules.engine.executors import (
    SerialExecutor,
    fork_available,
    processes_executor,
    run_agent,
)
from converge_rules.engine.factstore import FactStore
from converge_rules.engine.tools import ToolBox
from converge_rules.errors import ConvergeError
from converge_rules.plugins import builtin_registries
from converge_rules.program import AgentSpec, Program
from converge_rules.store import JsonLinesTraceSink


class ReplicaExecutor:
    """Runs agents against its own replica of the store, kept current only through
    pickled deltas — what a process or cluster executor does."""

    def __init__(self) -> None:
        self.replica: FactStore | None = None
        self.deltas = 0

    def start(self, view: Any, agents: Sequence[AgentSpec], *, tools: ToolBox,
              agent_timeout: float | None, deadline: float | None) -> None:
        self.replica = pickle.loads(pickle.dumps(view.replicate()))
        self.agents, self.tools = agents, tools

    def run_cycle(self, cycle: int, delta: Delta,
                  activations: Sequence[Activation]) -> list[AgentEffect]:
        assert self.replica is not None
        self.replica.apply(pickle.loads(pickle.dumps(delta)))
        self.deltas += bool(delta)
        return [run_agent(self.agents[a.position], a, self.replica.as_view(), self.tools, None)
                for a in activations]

    def close(self) -> None:
        self.replica = None


CASES: list[tuple[str, Program, list[tuple[str, dict[str, Any]]]]] = [
    ("closure", closure_program(),
     [("Edge", {"a": a, "b": b}) for a, b in [("x", "y"), ("y", "z"), ("z", "x")]]),
    ("count", count_program(seen=True), [("Count", {"id": "a", "n": 0})]),
    ("retraction", retraction_program(), [("Base", {"k": "x", "v": 1}), ("Other", {"k": "x"})]),
    ("intents", intent_program(), QUOTES),
]


@pytest.mark.parametrize(("name", "program", "facts"), CASES, ids=[c[0] for c in CASES])
def test_a_replica_fed_only_deltas_gives_the_same_job(
    name: str, program: Program, facts: list[tuple[str, dict[str, Any]]]
) -> None:
    tools = {"fx_rate": lambda args: {"usd": 2.0}}
    serial = run(program, facts, tools=tools)
    replica = ReplicaExecutor()
    replicated = run(program, facts, tools=tools, executor=replica)
    assert replicated.to_json() == serial.to_json()
    assert replicated.trace.to_jsonl() == serial.trace.to_jsonl()
    assert replica.deltas > 0


def test_unknown_executor_names_the_known_ones() -> None:
    with pytest.raises(ConvergeError, match="known executors: asyncio, processes, serial, threads"):
        builtin_registries().executor("rockets")


def test_progress_receives_one_event_per_cycle() -> None:
    events: list[CycleProgress] = []
    result = run(count_program(), [("Count", {"id": "a", "n": 0})], progress=events.append)
    assert [e.cycle for e in events] == list(range(1, result.cycles + 1))
    assert events[-1].live_facts == 1 and events[-1].conflicts == 10
    assert {e.tier for e in events} == {1}


def test_json_lines_sink_writes_one_document_per_line(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    with JsonLinesTraceSink(path) as sink:
        sink.write_lines(['{"a":1}', '{"b":2}'])
    assert [json.loads(x) for x in path.read_text().splitlines()] == [{"a": 1}, {"b": 2}]


@pytest.mark.skipif(not fork_available(), reason="needs the fork start method")
@pytest.mark.parametrize(("name", "program", "facts"), CASES, ids=[c[0] for c in CASES])
def test_processes_executor_gives_the_same_job(
    name: str, program: Program, facts: list[tuple[str, dict[str, Any]]]
) -> None:
    calls: list[str] = []

    def fx_rate(args: dict[str, Any]) -> dict[str, Any]:
        calls.append(args["currency"])  # runs in the parent: tools stay job-wide
        return {"usd": 2.0}

    serial = run(program, facts, tools={"fx_rate": lambda args: {"usd": 2.0}})
    forked = run(program, facts, tools={"fx_rate": fx_rate}, executor=processes_executor(2))
    assert forked.to_json() == serial.to_json()
    assert forked.trace.to_jsonl() == serial.trace.to_jsonl()
    if name == "intents":
        assert sorted(calls) == ["EUR", "GBP"]


def join_program() -> Program:
    """Num(v) and Seen(v) joined through indexes on both, with Num and Seen derived over
    several cycles: a replica must keep its indexes current from the deltas alone."""
    from engine_programs import Builder, each, f

    from converge_rules.program import EMIT

    b = Builder("join")
    num = b.fact("Num", f("v", "int"))
    seen = b.fact("Seen", f("v", "int"))
    pair = b.fact("Pair", f("v", "int"))
    num_by_v = b.index(num, 0)
    seen_by_v = b.index(seen, 0)
    b.agent("next", each(num, lambda v: [(EMIT, num, (v[0] + 1,))] if v[0] < 5 else []),
            reads=[num], emits=[num])
    b.agent("seen", each(num, lambda v: [(EMIT, seen, v)]), reads=[num], emits=[seen])

    def pairs(view: Any, since: int, rt: Any) -> list[Any]:
        out = []
        for n in view.new(num, since):
            for s in view.indexes[seen_by_v].get(view.values[n][0], ()):
                out.append((EMIT, pair, view.values[n], 1.0, (n, s)))
        for s in view.new(seen, since):
            for n in view.indexes[num_by_v].get(view.values[s][0], ()):
                if n < since:
                    out.append((EMIT, pair, view.values[s], 1.0, (n, s)))
        return out

    b.agent("pair", pairs, reads=[num, seen], emits=[pair])
    return b.build()


def test_replica_indexes_follow_the_deltas() -> None:
    facts = [("Num", {"v": 0})]
    serial = run(join_program(), facts)
    assert [p["v"] for p in serial.facts("Pair")] == [0, 1, 2, 3, 4, 5]
    assert run(join_program(), facts, executor=ReplicaExecutor()).to_json() == serial.to_json()


class CountingSerial(SerialExecutor):
    """A subclass that looks at what the serial executor answered, as plugins.md
    suggests (logging, metrics): the effects, whatever shape the answer takes."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[int, int, str | None]] = []
        self.activations: list[tuple[int, int]] = []

    def run_cycle(self, cycle: int, delta: Delta,
                  activations: Sequence[Activation]) -> list[AgentEffect]:
        self.activations += [(a.position, a.since) for a in activations]
        effects = super().run_cycle(cycle, delta, activations)
        assert len(effects) == len(activations)
        self.seen += [(e.position, len(e.outputs), e.error) for e in effects]
        return effects


@pytest.mark.parametrize(("name", "program", "facts"), CASES, ids=[c[0] for c in CASES])
def test_a_serial_subclass_reads_the_effects_it_answers(
    name: str, program: Program, facts: list[tuple[str, dict[str, Any]]]
) -> None:
    """The serial executor may answer a cycle as columns (``RunOutputs``); a subclass
    reading the answer gets one ``AgentEffect`` per activation all the same (and the
    ``Activation`` objects of the cycle), and the job is the plain serial one."""
    plain = run(program, facts)
    counting = CountingSerial()
    result = run(program, facts, executor=counting)
    assert counting.seen and len(counting.seen) == len(counting.activations)
    assert [s[0] for s in counting.seen] == [a[0] for a in counting.activations]
    assert result.trace.to_jsonl() == plain.trace.to_jsonl()
    assert result.status == plain.status
