"""Determinism, for every executor (issue 12 item 5): a ruleset with conflicts,
retraction, tool calls answering after random latencies, failing agents and agents cut
at ``agent_timeout`` gives the same result JSON and trace bytes under ``serial``,
``threads``, ``asyncio`` and ``processes`` with 1–8 workers, in random completion
orders (random latencies, and every executor wrapped so that it receives its
activations shuffled and returns its effects shuffled).

A timed-out agent is made deterministic by construction: the agents that time out call
a tool that sleeps far past ``agent_timeout`` as their first and only call, every other
tool answers within milliseconds; so in every executor exactly the same agents are cut,
each with the same recorded call."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from converge_rules.compiler.compile import compile_ruleset
from converge_rules.engine import run, validate_pairs
from converge_rules.engine.asyncio_executor import AsyncioExecutor
from converge_rules.engine.effects import Activation, AgentEffect, Delta
from converge_rules.engine.executors import (
    Executor,
    SerialExecutor,
    ThreadExecutor,
    fork_available,
    processes_executor,
)
from converge_rules.engine.tools import ToolBox
from converge_rules.language.checks.checker import check_file
from converge_rules.program import AgentSpec, Program, View
from tests.properties.test_engine_properties import EDGES, PROGRAM, _facts

AGENT_TIMEOUT = 1.0
"""Seconds: far above what a fast agent takes (a few ms of latency) even on a loaded
machine, far below what a stalled tool sleeps."""
STALL = 30.0
"""Seconds a stalled tool sleeps: never reached, the agent is cut long before."""

RULESET = f"""\
ruleset determinism
uses tool look
uses tool label
uses tool stall
uses tool astall
fact Item  {{ id: int, kind: str }}
fact Block {{ id: int, until: int }}
fact Stuck {{ id: int }}
fact Score {{ key id: int, value: int }}
fact Note  {{ id: int, text: str }}
fact Seen  {{ id: int }}
fact Late  {{ id: int }}
root "same everywhere" {{
  agent_timeout = {int(AGENT_TIMEOUT * 1000)}ms
}}
policy Score {{
  resolve by highest value
  on tie first
}}
prune Block when age >= until
agent score tier 1 {{
  when Item(id, kind) and not Block(id)
  call look(id: id, kind: kind) as r
  emit Score(id: id, value: r.value)
}}
agent guess tier 1 {{
  when Item(id)
  emit Score(id: id, value: id % 4)
}}
agent note tier 1 {{
  when Score(id, value) where value >= 2
  call label(id: id, value: value) as r
  emit Note(id: id, text: r.text)
}}
agent stuck tier 1 {{
  when Stuck(id) where id % 2 == 0
  call stall(id: id) as r
  emit Late(id: id)
}}
agent astuck tier 1 {{
  when Stuck(id) where id % 2 == 1
  call astall(id: id) as r
  emit Late(id: id)
}}
agent late tier 2 {{
  when Item(id) and not Late(id)
  emit Seen(id: id)
}}
agent seen tier 2 {{
  when Note(id)
  call look(id: id, kind: "seen") as r
  emit Seen(id: id)
}}
"""


def program() -> Program:
    checked = check_file("determinism.cvg", source=RULESET)
    errors = [f"{d.span}: {d.message}" for d in checked.diagnostics if d.is_error]
    assert not errors, errors
    return compile_ruleset(checked)


def tools(latency: dict[tuple[Any, ...], float]) -> dict[str, Any]:
    """``look`` and ``astall`` async, ``label`` and ``stall`` sync. ``look`` and
    ``label`` sleep as ``latency`` says (milliseconds) and fail for some arguments;
    ``stall`` and ``astall`` sleep far past ``agent_timeout``."""

    async def look(args: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(latency.get(("look", args["id"], args["kind"]), 0.0))
        if args["id"] % 7 == 6:
            raise RuntimeError(f"no answer for {args['id']}")
        return {"value": (args["id"] * 3 + len(args["kind"])) % 6}

    def label(args: dict[str, Any]) -> dict[str, Any]:
        time.sleep(latency.get(("label", args["id"], args["value"]), 0.0))
        if args["value"] == 5:
            return {"text": float("nan")}  # not JSON: the call fails
        return {"text": f"#{args['id']}:{args['value']}"}

    def stall(args: dict[str, Any]) -> dict[str, Any]:
        time.sleep(STALL)
        return {}

    async def astall(args: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(STALL)
        return {}

    return {"look": look, "label": label, "stall": stall, "astall": astall}


class Shuffling:
    """Wraps an executor: it receives each cycle's activations in a random order and
    returns their effects in a random order, as a parallel executor finishing in any
    order might. Everything else is the wrapped executor's."""

    def __init__(self, inner: Executor, rng: random.Random) -> None:
        self.inner, self.rng = inner, rng
        self.wants_delta = getattr(inner, "wants_delta", True)

    def start(self, view: View, agents: Sequence[AgentSpec], *, tools: ToolBox,
              agent_timeout: float | None, deadline: float | None) -> None:
        self.inner.start(view, agents, tools=tools, agent_timeout=agent_timeout,
                         deadline=deadline)

    def run_cycle(self, cycle: int, delta: Delta,
                  activations: Sequence[Activation]) -> list[AgentEffect]:
        acts = list(activations)
        self.rng.shuffle(acts)
        effects = self.inner.run_cycle(cycle, delta, acts)
        self.rng.shuffle(effects)
        return effects

    def close(self) -> None:
        self.inner.close()


EXECUTORS: dict[str, Callable[[int], Executor]] = {
    "serial": SerialExecutor,
    "threads": ThreadExecutor,
    "asyncio": AsyncioExecutor,
}
if fork_available():
    EXECUTORS["processes"] = processes_executor

ITEMS = st.lists(st.tuples(st.integers(0, 20), st.sampled_from(["a", "bb", "ccc"])),
                 min_size=1, max_size=10)
BLOCKS = st.lists(st.tuples(st.integers(0, 20), st.integers(1, 3)), max_size=4)
STUCK = st.lists(st.integers(0, 20), max_size=2, unique=True)


@pytest.mark.skipif(not fork_available(), reason="the processes executor needs fork")
@settings(max_examples=6, deadline=None)
@given(ITEMS, BLOCKS, STUCK, st.randoms(use_true_random=False), st.data())
def test_every_executor_gives_the_same_job_with_tools_failures_and_timeouts(
    items: list[tuple[int, str]], blocks: list[tuple[int, int]], stuck: list[int],
    rng: random.Random, data: st.DataObject,
) -> None:
    prog = program()
    pairs: list[tuple[str, dict[str, Any]]] = [
        ("Item", {"id": i, "kind": k}) for i, k in items]
    pairs += [("Block", {"id": i, "until": u}) for i, u in blocks]
    pairs += [("Stuck", {"id": i}) for i in stuck]
    facts = validate_pairs(prog, pairs)
    kinds = ["a", "bb", "ccc", "seen"]
    latency: dict[tuple[Any, ...], float] = {
        ("look", i, k): rng.random() * 0.01 for i in range(21) for k in kinds}
    latency.update({("label", i, v): rng.random() * 0.01 for i in range(21) for v in range(6)})
    serial = run(prog, facts, tools=tools(latency), now=None)
    # each stalled agent (one activation takes all its Stuck facts) was cut
    cut = serial.trace.to_jsonl().count("agent_timeout exceeded")
    assert cut == len({i % 2 for i in stuck})
    for name, make in EXECUTORS.items():
        workers = data.draw(st.integers(1, 8), label=f"{name} workers")
        executor = Shuffling(make(workers), rng)
        other = run(prog, facts, tools=tools(latency), now=None, executor=executor)
        assert other.to_json() == serial.to_json(), (name, workers)
        assert other.trace.to_jsonl() == serial.trace.to_jsonl(), (name, workers)


@settings(max_examples=10, deadline=None)
@given(EDGES, st.randoms(use_true_random=False), st.data())
def test_every_executor_gives_the_same_job_for_joins_with_conflicts_and_retraction(
    edges: list[tuple[str, str]], rng: random.Random, data: st.DataObject,
) -> None:
    serial = run(PROGRAM, _facts(edges))
    for name, make in EXECUTORS.items():
        workers = data.draw(st.integers(1, 8), label=f"{name} workers")
        other = run(PROGRAM, _facts(edges), executor=Shuffling(make(workers), rng))
        assert other.to_json() == serial.to_json(), (name, workers)
        assert other.trace.to_jsonl() == serial.trace.to_jsonl(), (name, workers)


def test_a_sync_tool_abandoned_under_asyncio_does_not_hold_later_calls() -> None:
    """Regression (found by the property above): under ``asyncio`` with one worker, a
    sync tool call still sleeping after its agent was cut kept the only tool thread,
    so the next cycle's sync call queued behind it and was cut too."""
    prog = program()
    facts = validate_pairs(prog, [("Item", {"id": 3, "kind": "a"}), ("Stuck", {"id": 0})])
    serial = run(prog, facts, tools=tools({}), now=None)
    assert '"text":"#3:4"' in serial.trace.to_jsonl()  # the later call answered
    awaited = run(prog, facts, tools=tools({}), now=None, executor=AsyncioExecutor(1))
    assert awaited.to_json() == serial.to_json()
    assert awaited.trace.to_jsonl() == serial.trace.to_jsonl()
