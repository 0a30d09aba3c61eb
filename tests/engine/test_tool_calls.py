"""Tool calls during a job: async tools run on one job-wide event loop (also inside a
running loop) that ends with the job, an abandoned agent's calls are in the trace, and a
result that is not JSON is a tool error naming the field."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

import converge_rules
from converge_rules.engine.tools import ABANDONED, AgentAbandoned, AgentRuntime, ToolBox
from converge_rules.errors import ToolError

ONE_CALL = """\
ruleset t "t"
uses tool fx
root "g" {
  TIMEOUT
}
fact Q { c: str }
fact R { c: str, usd: float }
agent f tier 1 {
  when Q(c)
  call fx(currency: c) as r
  emit R(c: c, usd: r.usd)
}
"""

INPUT = [("Q", {"c": "EUR"}), ("Q", {"c": "GBP"})]


def ruleset(timeout: str = "job_timeout = 60s") -> converge_rules.Ruleset:
    return converge_rules.loads(ONE_CALL.replace("TIMEOUT", timeout), plugins=False)


def tool_lines(result: Any) -> list[str]:
    return [line for line in result.trace.lines() if '"tool_call"' in line]


def loop_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "converge-tools-loop"]


# ------------------------------------------------------------------ async tools


def test_an_async_tool_works_inside_a_running_event_loop() -> None:
    async def fx(args: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"usd": 1.5}

    async def caller() -> Any:  # as in Jupyter or a FastAPI handler
        return converge_rules.run(ruleset(), INPUT, tools={"fx": fx})

    result = asyncio.run(caller())
    assert result.status == "converged"
    assert result.facts("R") == [{"c": "EUR", "usd": 1.5}, {"c": "GBP", "usd": 1.5}]
    assert all('"error":null' in line for line in tool_lines(result))


@pytest.mark.parametrize("executor", ["serial", "threads", "asyncio"])
def test_async_calls_of_a_job_share_one_loop_that_ends_with_the_job(executor: str) -> None:
    loops: list[asyncio.AbstractEventLoop] = []

    async def fx(args: dict[str, Any]) -> dict[str, Any]:
        loops.append(asyncio.get_running_loop())  # a loop-bound client would keep it
        return {"usd": 2.0}

    result = converge_rules.run(ruleset(), INPUT, tools={"fx": fx}, executor=executor)
    assert result.status == "converged"
    assert len(loops) == 2 and loops[0] is loops[1]
    assert loops[0].is_closed()
    assert loop_threads() == []


def test_async_calls_of_concurrent_agents_run_together_on_the_loop() -> None:
    arrived: list[str] = []
    loops: set[asyncio.AbstractEventLoop] = set()

    async def fx(args: dict[str, Any]) -> dict[str, Any]:
        arrived.append(args["currency"])
        loops.add(asyncio.get_running_loop())
        # Each call waits for the other: only calls sharing one running loop meet.
        for _ in range(10_000):
            if len(arrived) == 2:
                return {"usd": 1.0}
            await asyncio.sleep(0)
        raise RuntimeError("the other call never ran alongside")

    two_agents = ONE_CALL.replace("TIMEOUT", "job_timeout = 60s") + """\
agent g tier 1 {
  when Q(c)
  call fx(currency: "X" + c) as r
  emit R(c: "X" + c, usd: r.usd)
}
"""
    rs = converge_rules.loads(two_agents, plugins=False)
    result = converge_rules.run(rs, INPUT[:1], tools={"fx": fx}, executor="threads",
                                workers=2)
    assert result.facts("R") == [{"c": "EUR", "usd": 1.0}, {"c": "XEUR", "usd": 1.0}]
    assert len(loops) == 1


def test_an_async_call_after_close_is_a_tool_error() -> None:
    async def fx(args: dict[str, Any]) -> dict[str, Any]:
        return {"usd": 1.0}

    box = ToolBox({"fx": fx}, None)
    assert box.call("fx", {"c": "EUR"}) == ({"usd": 1.0}, None)
    box.close()
    box.close()  # idempotent
    result, error = box.call("fx", {"c": "GBP"})
    assert result is None and error is not None and "event loop is closed" in error


# ------------------------------------------------------ abandoned agents' calls


def test_a_timed_out_agents_running_call_is_in_the_threads_trace() -> None:
    release = threading.Event()

    def fx(args: dict[str, Any]) -> dict[str, Any]:
        release.wait()  # answers only after the job has abandoned the agent
        return {"usd": 1.0}

    try:
        result = converge_rules.run(
            ruleset("agent_timeout = 50ms"), INPUT[:1], tools={"fx": fx},
            executor="threads",
        )
    finally:
        release.set()
    assert result.budget["max_tool_calls"]["used"] == 1
    lines = tool_lines(result)
    assert len(lines) == 1
    assert '"tool":"fx"' in lines[0] and ABANDONED in lines[0]
    assert result.facts("R") == []
    assert result.trace.to_jsonl()  # the trace still serialises


def test_a_closed_runtime_records_the_running_call_and_refuses_later_ones() -> None:
    entered, release = threading.Event(), threading.Event()

    def fx(args: dict[str, Any]) -> dict[str, Any]:
        entered.set()
        release.wait()
        return {"usd": 1.0}

    box = ToolBox({"fx": fx}, None)
    runtime = AgentRuntime(box)
    release.set()
    assert runtime.call("fx", {"c": "A"}) == {"usd": 1.0}
    release.clear()
    late: list[BaseException] = []

    def call_b() -> None:
        try:
            runtime.call("fx", {"c": "B"})
        except BaseException as exc:
            late.append(exc)

    worker = threading.Thread(target=call_b)
    worker.start()
    entered.wait()
    recorded = runtime.close()
    assert recorded == (
        ("fx", {"c": "A"}, {"usd": 1.0}, None),
        ("fx", {"c": "B"}, None, ABANDONED),
    )
    release.set()
    worker.join()
    # the abandoned agent is stopped when its call returns, never handed the answer
    assert [type(e) for e in late] == [AgentAbandoned]
    assert box.used == 2
    with pytest.raises(ToolError, match="abandoned"):
        runtime.call("fx", {"c": "C"})
    assert box.used == 2  # the refused call spent nothing
    assert len(runtime.calls) == 1  # the late answer is not appended after close


# ------------------------------------------------------------ non-JSON results


class Opaque:
    pass


@pytest.mark.parametrize(
    ("answer", "where"),
    [
        ({"usd": 1.0, "raw": Opaque()}, "result.raw is of type Opaque"),
        ({"usd": 1.0, "raw": [1, {"x": Opaque()}]}, "result.raw[1].x is of type Opaque"),
        ({"usd": float("nan")}, "result.usd is nan"),
    ],
)
def test_a_non_json_tool_result_is_a_tool_error_naming_the_field(
    answer: dict[str, Any], where: str
) -> None:
    result = converge_rules.run(ruleset(), INPUT[:1], tools={"fx": lambda a: answer})
    assert result.facts("R") == []
    text = result.trace.to_jsonl()  # the trace still serialises
    assert "tool 'fx' returned a result that is not JSON" in text
    assert where in text


def test_a_json_result_with_coercible_keys_is_accepted() -> None:
    answer = {"usd": 1.0, "raw": {1: (2, 3)}}
    result = converge_rules.run(ruleset(), INPUT[:1], tools={"fx": lambda a: answer})
    assert result.facts("R") == [{"c": "EUR", "usd": 1.0}]


@pytest.mark.parametrize(
    ("answer", "refused"),
    [
        ({"usd": 1.0, "note": "plain"}, None),
        ({"usd": 2.5, "note": "caf\u00e9"}, None),
        ({"usd": 1.0, "n": -(2**63)}, None),
        ({"usd": 1.0, 5: "an int key"}, None),
        ({"usd": 1.0, "note": "\ud800"}, "result.note holds a lone surrogate"),
        ({"usd": float("inf")}, "result.usd is inf"),
        ({"usd": float("nan")}, "result.usd is nan"),
        ({"usd": 1.0, "n": 2**63}, "result.n is 9223372036854775808"),
        ({"usd": 1.0, "deep": [{"x": "\udc00"}]}, "result.deep[0].x holds a lone surrogate"),
    ],
)
@pytest.mark.parametrize("executor", ["serial", "asyncio"])
def test_an_async_tools_result_is_checked_whole_on_every_executor(
    answer: dict[Any, Any], refused: str | None, executor: str
) -> None:
    async def fx(args: dict[str, Any]) -> dict[Any, Any]:
        return answer

    result = converge_rules.run(ruleset(), INPUT[:1], tools={"fx": fx}, executor=executor)
    if refused is None:
        assert result.facts("R") == [{"c": "EUR", "usd": answer["usd"]}]
    else:
        assert result.facts("R") == []
        assert refused in result.trace.to_jsonl()


@pytest.mark.parametrize("executor", ["serial", "threads", "asyncio"])
def test_a_call_records_its_arguments_as_made_whatever_the_tool_does_with_them(
    executor: str
) -> None:
    seen: list[dict[str, Any]] = []

    async def fx(args: dict[str, Any]) -> dict[str, Any]:
        seen.append(dict(args))
        args["currency"] = "changed by the tool"
        return {"usd": 1.0}

    codes = [("Q", {"c": "Z\u00fcrich"}), ("Q", {"c": "EUR"})]
    result = converge_rules.run(ruleset(), codes, tools={"fx": fx}, executor=executor)
    assert sorted(a["currency"] for a in seen) == ["EUR", "Z\u00fcrich"]
    lines = tool_lines(result)
    assert len(lines) == 2 and "changed" not in "".join(lines)
    assert sorted(f["c"] for f in result.facts("R")) == ["EUR", "Z\u00fcrich"]


def test_a_tool_answer_is_awaitable_exactly_when_inspect_says_so() -> None:
    # the tool box tells awaitable answers without importing inspect for every run
    import inspect
    import types

    from converge_rules.engine.tools import _awaitable

    async def coroutine() -> int:
        return 1

    @types.coroutine
    def generator_based() -> Any:
        yield

    def generator() -> Any:
        yield

    class Awaits:
        def __await__(self) -> Any:
            yield

    loop = asyncio.new_event_loop()
    try:
        answers = [coroutine(), generator_based(), generator(), Awaits(), loop.create_future(),
                   {"a": 1}, None, 1, "text", [1], Awaits, coroutine]
        for answer in answers:
            assert _awaitable(answer) == inspect.isawaitable(answer), answer
        assert [_awaitable(a) for a in answers[:6]] == [True, True, False, True, True, False]
    finally:
        for answer in answers[:3]:
            answer.close()  # type: ignore[attr-defined]
        loop.close()
