"""Timings are a side record: a job run with a :class:`Timings` collector gives the same
result JSON and trace bytes as without one, under every executor, and its records
account for every tool call of the trace (joined by cycle, agent, tool and key) and
every agent run."""

from __future__ import annotations

import json
import random
from collections import Counter
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from converge_rules.engine import run, validate_pairs
from converge_rules.engine.asyncio_executor import AsyncioExecutor
from converge_rules.engine.executors import SerialExecutor, ThreadExecutor, processes_executor
from converge_rules.engine.timings import SOURCES, Timings, call_key
from tests.properties.test_executor_tool_properties import BLOCKS, ITEMS, program, tools


def _calls(trace_jsonl: str) -> Counter[tuple[int, str, str, str]]:
    out: Counter[tuple[int, str, str, str]] = Counter()
    for line in trace_jsonl.splitlines():
        event = json.loads(line)
        if event["event"] == "tool_call":
            out[(event["cycle"], event["agent"], event["tool"],
                 call_key(event["tool"], event["args"]))] += 1
    return out


def _runs(trace_jsonl: str) -> Counter[tuple[int, str]]:
    """(cycle, agent) of every agent run the trace's ``cycle_start`` lines announce."""
    out: Counter[tuple[int, str]] = Counter()
    for line in trace_jsonl.splitlines():
        event = json.loads(line)
        if event["event"] == "cycle_start":
            out.update((event["cycle"], a) for a in event["agents"])
    return out


@settings(max_examples=10, deadline=None)
@given(ITEMS, BLOCKS, st.randoms(use_true_random=False), st.integers(1, 8),
       st.sampled_from(["serial", "threads", "asyncio", "processes"]))
def test_timings_change_neither_result_nor_trace(
    items: list[tuple[int, str]], blocks: list[tuple[int, int]], rng: random.Random,
    concurrency: int, executor: str,
) -> None:
    prog = program()
    pairs: list[tuple[str, dict[str, Any]]] = [
        ("Item", {"id": i, "kind": k}) for i, k in items]
    pairs += [("Block", {"id": i, "until": u}) for i, u in blocks]
    facts = validate_pairs(prog, pairs)
    latency: dict[tuple[Any, ...], float] = {
        ("look", i, k): rng.random() * 0.004 for i in range(21)
        for k in ("a", "bb", "ccc", "seen")}
    latency.update({("label", i, v): rng.random() * 0.004 for i in range(21) for v in range(6)})
    plain = run(prog, facts, tools=tools(latency), now=None)
    make = {"serial": SerialExecutor, "threads": ThreadExecutor,
            "asyncio": AsyncioExecutor, "processes": processes_executor}[executor]
    timings = Timings()
    timed = run(prog, facts, tools=tools(latency), now=None, executor=make(concurrency),
                timings=timings)
    assert timed.to_json() == plain.to_json()
    assert timed.trace.to_jsonl() == plain.trace.to_jsonl()

    records = timings.records()
    assert {r["kind"] for r in records} <= {"tool", "agent", "cycle"}
    tool_rows = [r for r in records if r["kind"] == "tool"]
    assert Counter((r["cycle"], r["agent"], r["tool"], r["key"]) for r in tool_rows) \
        == _calls(plain.trace.to_jsonl())
    assert all(r["source"] in SOURCES and r["seconds"] >= 0 for r in tool_rows)
    # each call key is paid once at most: the others were answered from the memo
    paid = Counter((r["tool"], r["key"]) for r in tool_rows if r["source"] == "called")
    assert all(n == 1 for n in paid.values())
    assert Counter((r["cycle"], r["agent"]) for r in records if r["kind"] == "agent") \
        == _runs(plain.trace.to_jsonl())
    cycles = [r["cycle"] for r in records if r["kind"] == "cycle"]
    assert cycles == list(range(len(cycles)))
    assert len(cycles) == timed.cycles + 1  # cycle 0: the inputs' merge
