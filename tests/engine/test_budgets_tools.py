"""Budgets end a job with status budget_exceeded naming the budget; tools are
memoised, counted and transactional."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from engine_programs import Builder, each, f
from test_cycles import count_program

from converge_rules.engine import run
from converge_rules.engine.executors import ThreadExecutor
from converge_rules.plugins import builtin_registries
from converge_rules.program import EMIT, Program

START = [("Count", {"id": "a", "n": 0})]


def test_max_cycles() -> None:
    result = run(count_program(max_cycles=3), START)
    assert result.status == "budget_exceeded"
    assert result.cycles == 3
    assert result.facts("Count") == [{"id": "a", "n": 3}]
    assert result.budget["max_cycles"] == {"limit": 3, "used": 3, "exceeded": True}


def fanout_program(**budgets: Any) -> Program:
    b = Builder()
    n = b.fact("N", f("v", "int"))
    out = b.fact("Out", f("v", "int"))
    for k in range(3):
        b.agent(f"a{k}", each(n, lambda v, k=k: [(EMIT, out, (v[0] * 10 + k,))]),
                reads=[n], emits=[out])
    return b.build(**budgets)


def test_max_facts_is_never_exceeded() -> None:
    result = run(fanout_program(max_facts=4), [("N", {"v": 1}), ("N", {"v": 2})])
    assert result.status == "budget_exceeded"
    assert result.store.live_count == 4
    assert result.budget["max_facts"] == {"limit": 4, "used": 4, "exceeded": True}
    assert "max_facts" in result.detail


def test_max_facts_counts_input() -> None:
    result = run(fanout_program(max_facts=1), [("N", {"v": 1}), ("N", {"v": 2})])
    assert result.status == "budget_exceeded"
    assert result.cycles == 0 and result.store.live_count == 1


def test_max_agents() -> None:
    result = run(fanout_program(max_agents=2), [("N", {"v": 1})])
    assert result.status == "budget_exceeded"
    assert result.cycles == 0
    assert result.budget["max_agents"] == {"limit": 2, "used": 3, "exceeded": True}
    assert run(fanout_program(max_agents=3), [("N", {"v": 1})]).status == "converged"


def tool_program(**budgets: Any) -> Program:
    b = Builder()
    n = b.fact("N", f("v", "int"))
    out = b.fact("Out", f("v", "int"), f("r", "int"))

    def ask(view: Any, since: int, rt: Any) -> list[Any]:
        res = []
        for i in view.new(n, since):
            (v,) = view.values[i]
            res.append((EMIT, out, (v, rt.call("square", {"x": v})["y"]), 1.0, (i,)))
        return res

    b.agent("ask", ask, reads=[n], emits=[out], tools=["square"])
    b.agent("ask_again", ask, reads=[n], emits=[out], tools=["square"])
    return b.build(**budgets)


def square(args: dict[str, Any]) -> dict[str, Any]:
    if args["x"] == 13:
        raise RuntimeError("unlucky")
    return {"y": args["x"] ** 2}


@pytest.mark.parametrize("executor", ["serial", "threads"])
def test_tool_calls_are_memoised_per_job(executor: str) -> None:
    seen: list[int] = []

    def counting(args: dict[str, Any]) -> dict[str, Any]:
        seen.append(args["x"])
        return square(args)

    facts = [("N", {"v": v}) for v in (2, 3)]
    result = run(tool_program(), facts, tools={"square": counting},
                 executor=builtin_registries().executor(executor))
    assert result.status == "converged"
    assert result.facts("Out") == [{"v": 2, "r": 4}, {"v": 3, "r": 9}]
    assert sorted(seen) == [2, 3]
    assert result.budget["max_tool_calls"]["used"] == 2
    calls = [e for e in result.trace.events() if e.event == "tool_call"]
    assert len(calls) == 4  # every agent's calls are recorded, cached or not


def test_a_failing_tool_discards_the_whole_effect() -> None:
    facts = [("N", {"v": v}) for v in (2, 13)]
    result = run(tool_program(), facts, tools={"square": square})
    assert result.status == "converged"
    assert result.facts("Out") == []  # the agent's effect for 2 went with the one for 13
    reasons = [e.reason for e in result.trace.events() if e.event == "effect_discarded"]  # type: ignore[attr-defined]
    assert len(reasons) == 2 and all("unlucky" in r for r in reasons)


def test_an_unknown_tool_is_a_tool_error() -> None:
    result = run(tool_program(), [("N", {"v": 2})], tools={})
    assert result.facts("Out") == []
    assert result.status == "converged"
    reasons = [e.reason for e in result.trace.events() if e.event == "effect_discarded"]  # type: ignore[attr-defined]
    assert reasons == ["ToolError: tool 'square' failed: no tool named 'square' is "
                       "registered (registered: none)"] * 2  # ask and ask_again


def test_async_tools_are_awaited() -> None:
    async def slow_square(args: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"y": args["x"] ** 2}

    result = run(tool_program(), [("N", {"v": 4})], tools={"square": slow_square},
                 executor=ThreadExecutor(2))
    assert result.facts("Out") == [{"v": 4, "r": 16}]


def test_max_tool_calls_refuses_further_calls() -> None:
    facts = [("N", {"v": v}) for v in (1, 2, 3)]
    result = run(tool_program(max_tool_calls=2), facts, tools={"square": square})
    assert result.status == "budget_exceeded"
    assert result.budget["max_tool_calls"] == {"limit": 2, "used": 2, "exceeded": True}


def sleepy_program(block: threading.Event | None, **budgets: Any) -> Program:
    b = Builder()
    n = b.fact("N", f("v", "int"))
    out = b.fact("Out", f("v", "int"))

    def slow(view: Any, since: int, rt: Any) -> list[Any]:
        if block is not None:
            block.wait(10)
        else:
            time.sleep(0.02)
        return [(EMIT, out, (99,), 1.0, ())]

    b.agent("slow", slow, reads=[n], emits=[out])
    b.agent("fast", each(n, lambda v: [(EMIT, out, v)]), reads=[n], emits=[out])
    return b.build(**budgets)


def test_agent_timeout_serial_discards_after_the_fact() -> None:
    result = run(sleepy_program(None, agent_timeout=0.001), [("N", {"v": 1})])
    assert result.status == "converged"
    assert result.facts("Out") == [{"v": 1}]
    assert result.budget["agent_timeout"]["used"] == 1
    (ev,) = [e for e in result.trace.events() if e.event == "effect_discarded"]
    assert ev.reason == "agent_timeout exceeded (limit 0.001s)"  # type: ignore[attr-defined]


def test_agent_timeout_threads_abandons_a_hung_agent() -> None:
    block = threading.Event()
    try:
        result = run(sleepy_program(block, agent_timeout=0.05), [("N", {"v": 1})],
                     executor=ThreadExecutor(4))
    finally:
        block.set()
    assert result.status == "converged"
    assert result.facts("Out") == [{"v": 1}]


def test_job_timeout_is_checked_between_cycles() -> None:
    # The budget runs out between two cycles, never inside one: ``stop`` (asked before
    # each cycle) spends it before cycle 3, each cycle takes microseconds. So only the
    # check between cycles can end the job, after cycle 2, with no agent cut. (It was
    # flaky under load with a 1 ms budget: the job could end before its first cycle.)
    b = Builder()
    count = b.fact("Count", f("id", key=True), f("n", "int"))
    from engine_programs import crit

    b.policy(count, crit("latest"))

    def inc(view: Any, since: int, rt: Any) -> list[Any]:
        return [(EMIT, count, (view.values[i][0], view.values[i][1] + 1), 1.0, (i,))
                for i in view.new(count, since)]

    b.agent("inc", inc, reads=[count], emits=[count])
    timeout = 1.0  # two cycles of a counter take milliseconds, even at load 20
    asked = 0

    def stop() -> bool:
        nonlocal asked
        asked += 1
        if asked == 3:  # before cycle 3
            time.sleep(timeout * 1.2)
        return False

    result = run(b.build(job_timeout=timeout), START, stop=stop)
    assert result.status == "budget_exceeded"
    assert result.budget["job_timeout"]["exceeded"] is True
    assert result.cycles == 2 and asked == 3
    assert result.facts("Count") == [{"id": "a", "n": 2}]
    events = [e.event for e in result.trace.events()]
    assert "effect_discarded" not in events
    assert [e for e in events if e.startswith("cycle_")][-2:] == ["cycle_start",
                                                                  "cycle_end"]


def test_a_failed_tool_call_is_said_once_in_the_trace() -> None:
    import converge_rules
    from converge_rules.errors import ToolError

    ruleset = converge_rules.loads('''ruleset fx "fx"

uses tool fx

fact Need { currency: str }
fact Rate { currency: str, usd: float }

agent fetch {
  when Need(currency)
  call fx(currency: currency) as r
  emit Rate(currency: currency, usd: r.usd)
}
''', plugins=False)

    def plain(args: dict[str, object]) -> dict[str, object]:
        raise ValueError("no such currency")

    def wrapped(args: dict[str, object]) -> dict[str, object]:
        raise ToolError("tool 'fx' failed: model down")  # what a validated plugin tool says

    for tool, reason in ((plain, "ToolError: tool 'fx' failed: ValueError: no such currency"),
                         (wrapped, "ToolError: tool 'fx' failed: model down")):
        result = converge_rules.run(ruleset, [("Need", {"currency": "XYZ"})],
                                    tools={"fx": tool})
        discarded = [e for e in result.trace.events() if e.event == "effect_discarded"]
        assert [e.reason for e in discarded] == [reason]  # type: ignore[attr-defined]
        assert result.facts("Rate") == []
