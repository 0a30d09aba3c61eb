"""The ``asyncio`` executor: agents that call tools run as tasks on the job's one event
loop (a thousand calls in flight on a handful of threads, at most ``max_concurrency``
at once), give serial's result and trace, and an agent over ``agent_timeout`` is cut
at its deadline, whatever its tool does with the cancellation."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import converge_rules
from converge_rules.engine import run, validate_pairs
from converge_rules.engine.asyncio_executor import AsyncioExecutor, DaemonThreads
from converge_rules.engine.tools import ABANDONED, AgentRuntime, ToolBox
from converge_rules.errors import ConvergeError
from converge_rules.language.syntax.span import Span
from converge_rules.program import EMIT, AgentSpec, Budgets, FieldSpec, Program, TypeSpec, ValueType

ROOT = Path(__file__).resolve().parents[2]


def fan_out(agents: int, timeout: str = "") -> converge_rules.Ruleset:
    """``agents`` agents, each calling ``slow`` once for the one ``Go`` fact."""
    lines = ["ruleset fan", "uses tool slow",
             f'root "all" {{ job_timeout = 120s {timeout} }}',
             "fact Go { n: int }", "fact Got { agent: int, v: int }"]
    for i in range(agents):
        lines += [f"agent a{i} {{", "  when Go(n)", f"  call slow(agent: {i}, n: n) as r",
                  f"  emit Got(agent: {i}, v: r.v)", "}"]
    return converge_rules.loads("\n".join(lines) + "\n", plugins=False)


def test_an_agent_that_calls_tools_has_a_coroutine_variant_and_others_do_not() -> None:
    rs = converge_rules.loads(
        "ruleset t\nuses tool fx\nfact Q { c: str }\nfact R { c: str, v: int }\n"
        "agent f {\n  when Q(c)\n  call fx(c: c) as r\n  emit R(c: c, v: r.v)\n}\n"
        "agent g {\n  when Q(c)\n  emit R(c: c, v: 0)\n}\n", plugins=False)
    f, g = rs.program.agents
    assert f.afn is not None and asyncio.iscoroutinefunction(f.afn)
    assert g.afn is None


def test_a_thousand_calls_are_in_flight_at_once_on_a_few_threads() -> None:
    flying = 0
    most = 0
    threads = 0
    all_in = asyncio.Event()

    async def slow(args: dict[str, Any]) -> dict[str, Any]:
        nonlocal flying, most, threads
        flying += 1
        most = max(most, flying)
        threads = max(threads, threading.active_count())
        if flying == 1000:
            all_in.set()
        # each call waits until all 1,000 are in flight (not a fixed time, which a
        # loaded machine can spend starting them); calls made fewer at a time wait out
        # the timeout once, release the others, and `most` says so
        try:
            await asyncio.wait_for(all_in.wait(), 30)
        except TimeoutError:
            all_in.set()
        flying -= 1
        return {"v": args["agent"]}

    result = converge_rules.run(fan_out(1000), [("Go", {"n": 1})], tools={"slow": slow},
                                executor="asyncio")
    assert result.status == "converged"
    assert len(result.facts("Got")) == 1000
    assert most == 1000
    assert threads < 20


def test_max_concurrency_bounds_the_agents_in_flight() -> None:
    flying = 0
    most = 0

    async def slow(args: dict[str, Any]) -> dict[str, Any]:
        nonlocal flying, most
        flying += 1
        most = max(most, flying)
        await asyncio.sleep(0.01)
        flying -= 1
        return {"v": 0}

    result = converge_rules.run(fan_out(40), [("Go", {"n": 1})], tools={"slow": slow},
                                executor="asyncio", workers=7)
    assert len(result.facts("Got")) == 40
    assert most == 7


@pytest.mark.parametrize("workers", [0, 100_001])
def test_a_max_concurrency_out_of_range_names_the_range(workers: int) -> None:
    with pytest.raises(ConvergeError, match=r"1\.\.100_000 --workers"):
        AsyncioExecutor(workers)


def test_sync_tools_run_on_a_pool_beside_the_loop() -> None:
    def slow(args: dict[str, Any]) -> dict[str, Any]:
        time.sleep(0.05)
        return {"v": args["agent"]}

    rs = fan_out(32)
    started = time.monotonic()
    result = converge_rules.run(rs, [("Go", {"n": 1})], tools={"slow": slow},
                                executor="asyncio")
    assert time.monotonic() - started < 1.0  # 32 x 0.05 s one after another is 1.6 s
    serial = converge_rules.run(rs, [("Go", {"n": 1})], tools={"slow": slow})
    assert result.to_json() == serial.to_json()
    assert result.trace.to_jsonl() == serial.trace.to_jsonl()


RATES_FACTS = [("Quote", {"vendor": v, "amount": a, "currency": c})
               for v, a, c in [("acme", 10.0, "EUR"), ("bolt", 20.0, "EUR"),
                               ("cask", 8.0, "GBP"), ("dock", 5.0, "USD")]]


@pytest.mark.parametrize("name", ["pricing", "rates"])
def test_the_shipped_rulesets_that_call_tools_give_serials_job(name: str) -> None:
    from tests.engine.test_rulesets_e2e import PRICING_FACTS, fx, load

    facts = PRICING_FACTS if name == "pricing" else RATES_FACTS
    program = load(name)
    assert any(a.afn is not None for a in program.agents)
    serial = run(program, facts, tools={"fx_rate": fx([])})
    awaited = run(program, facts, tools={"fx_rate": fx([])}, executor=AsyncioExecutor(4))
    assert awaited.to_json() == serial.to_json()
    assert awaited.trace.to_jsonl() == serial.trace.to_jsonl()


def test_identical_calls_of_a_coroutine_agent_and_a_thread_agent_are_one_call() -> None:
    calls = 0
    release = threading.Event()

    def fx(args: dict[str, Any]) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        release.wait(5)
        return {"v": 1}

    rs = converge_rules.loads(
        "ruleset t\nuses tool fx\nfact Go { n: int }\nfact R { c: str, v: int }\n"
        "agent f {\n  when Go(n)\n  call fx(c: \"A\") as r\n  emit R(c: \"gen\", v: r.v)\n}\n",
        plugins=False)
    r_type = rs.program.type_ids["R"]

    def by_hand(view: Any, since: int, rt: Any) -> list[Any]:  # no coroutine variant
        answer = rt.call("fx", {"c": "A"})
        return [(EMIT, r_type, ("hand", answer["v"]), 1.0, ())]

    span = Span("<hand>", 1, 1, 1, 1)
    hand = AgentSpec("hand", 0, 1, by_hand, "", (), (), (r_type,), ("fx",), span)
    program = dataclasses.replace(rs.program, agents=(*rs.program.agents, hand))
    threading.Timer(0.3, release.set).start()
    result = run(program, [("Go", {"n": 1})], tools={"fx": fx}, executor=AsyncioExecutor(4))
    assert calls == 1
    assert sorted(f["c"] for f in result.facts("R")) == ["gen", "hand"]


def same_call(agents: int, timeout: str = "") -> converge_rules.Ruleset:
    """``agents`` agents that each call ``slow(c: "A")`` once, the same call, after
    ``warm`` called ``slow(c: "W")`` a cycle before (the tool is known async by then)."""
    lines = ["ruleset same", "uses tool slow",
             f'root "all" {{ job_timeout = 120s {timeout} }}',
             "fact Go { n: int }", "fact Warm { v: int }",
             "fact Got { agent: int, v: int }",
             "agent warm {", "  when Go(n)", '  call slow(c: "W") as r',
             "  emit Warm(v: r.v)", "}"]
    for i in range(agents):
        lines += [f"agent a{i} {{", "  when Warm(v)", '  call slow(c: "A") as r',
                  f"  emit Got(agent: {i}, v: r.v)", "}"]
    return converge_rules.loads("\n".join(lines) + "\n", plugins=False)


def test_identical_async_calls_in_flight_are_one_call() -> None:
    calls: dict[str, int] = {"A": 0, "W": 0}

    async def slow(args: dict[str, Any]) -> dict[str, Any]:
        calls[args["c"]] += 1
        await asyncio.sleep(0.2)
        return {"v": calls[args["c"]]}

    rs = same_call(5)
    result = run(rs.program, [("Go", {"n": 1})], tools={"slow": slow},
                 executor=AsyncioExecutor(8))
    assert calls == {"A": 1, "W": 1}
    assert sorted((f["agent"], f["v"]) for f in result.facts("Got")) == [
        (i, 1) for i in range(5)]
    calls.update(A=0, W=0)
    serial = run(rs.program, [("Go", {"n": 1})], tools={"slow": slow})
    assert result.trace.to_jsonl() == serial.trace.to_jsonl()


@pytest.mark.parametrize("known", [False, True], ids=["first-call", "known-async"])
def test_an_async_call_cut_with_its_agent_is_made_again_by_the_one_waiting_for_it(
        known: bool) -> None:
    """The call of an agent abandoned (its task cancelled) answers no memo: an identical
    call waiting for it is made again and counted again, and gets that answer; a later
    identical call gets it from the memo. ``known``: the tool was called before (it is
    known to be async)."""
    calls: list[str] = []

    async def slow(args: dict[str, Any]) -> dict[str, Any]:
        calls.append(args["c"])
        if len(calls) == 1 + known:
            await asyncio.sleep(3600)  # the first agent's: cut
        return {"v": len(calls)}

    async def main() -> list[Any]:
        box = ToolBox({"slow": slow}, None)
        if known:
            await AgentRuntime(box).acall("slow", {"c": "W"})
        first, second, third = AgentRuntime(box), AgentRuntime(box), AgentRuntime(box)
        cut = asyncio.ensure_future(first.acall("slow", {"c": "A"}))
        await asyncio.sleep(0.05)
        waiting = asyncio.ensure_future(second.acall("slow", {"c": "A"}))
        await asyncio.sleep(0.05)
        cut.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await cut
        answers = [await waiting, await third.acall("slow", {"c": "A"})]
        return [answers, box.used, first.close(), second.calls, third.calls]

    answers, used, cut_calls, second_calls, third_calls = asyncio.run(main())
    assert calls == ["W"] * known + ["A", "A"]
    assert answers == [{"v": 2 + known}] * 2
    assert used == 2 + known
    assert [c[3] for c in cut_calls] == [ABANDONED]
    assert second_calls == third_calls == [("slow", {"c": "A"}, {"v": 2 + known}, None)]


# ------------------------------------------------------------------- timeouts


def test_an_agent_over_agent_timeout_is_cut_at_the_deadline() -> None:
    async def slow(args: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(3600 if args["agent"] == 0 else 0.01)
        return {"v": args["agent"]}

    started = time.monotonic()
    result = converge_rules.run(fan_out(3, "agent_timeout = 200ms"), [("Go", {"n": 1})],
                                tools={"slow": slow}, executor="asyncio")
    assert time.monotonic() - started < 5.0
    assert sorted(f["agent"] for f in result.facts("Got")) == [1, 2]
    cut = [line for line in result.trace.lines() if ABANDONED in line]
    assert len(cut) == 1 and '"agent":0' in cut[0]
    assert "agent_timeout exceeded" in result.trace.to_jsonl()


def test_a_late_answer_of_an_abandoned_agent_never_reaches_the_context() -> None:
    async def slow(args: dict[str, Any]) -> dict[str, Any]:
        try:
            await asyncio.sleep(0.5)
        except asyncio.CancelledError:
            await asyncio.sleep(0.5)  # answers anyway, after the cut
        return {"v": 7}

    result = converge_rules.run(fan_out(1, "agent_timeout = 100ms"), [("Go", {"n": 1})],
                                tools={"slow": slow}, executor="asyncio")
    time.sleep(0.3)
    assert result.facts("Got") == []
    assert sum('"tool_call"' in line for line in result.trace.lines()) == 1


SWALLOWING = """\
import asyncio, sys, time
sys.path[:0] = {path!r}
import converge_rules
from tests.engine.test_asyncio_executor import fan_out

async def stubborn(args):
    while True:  # swallows every cancellation
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            pass

result = converge_rules.run(fan_out(2, "agent_timeout = 200ms"), [("Go", {{"n": 1}})],
                            tools={{"slow": stubborn}}, executor="asyncio")
print(result.status, len(result.facts("Got")), flush=True)
"""

BLOCKING = """\
import sys, time
sys.path[:0] = {path!r}
import converge_rules
from tests.engine.test_asyncio_executor import fan_out

def stuck(args):
    time.sleep(3600)  # a sync tool: its thread cannot be stopped

result = converge_rules.run(fan_out(2, "agent_timeout = 200ms"), [("Go", {{"n": 1}})],
                            tools={{"slow": stuck}}, executor="asyncio")
print(result.status, len(result.facts("Got")), flush=True)
"""


@pytest.mark.parametrize("script", [SWALLOWING, BLOCKING], ids=["swallows", "blocks"])
def test_a_stuck_tool_holds_neither_the_job_nor_the_process_exit(script: str) -> None:
    code = script.format(path=[str(ROOT)])
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["converged", "0"]
    assert time.monotonic() - started < 30
    # found by a review: the tasks of a tool swallowing its cancellation were reported
    # at the exit ("Task was destroyed but it is pending!")
    assert "destroyed" not in done.stderr, done.stderr


def test_an_agent_cut_while_its_tool_ignores_the_cut_frees_its_slot_for_the_next() -> None:
    answered: list[int] = []

    async def slow(args: dict[str, Any]) -> dict[str, Any]:
        if args["agent"] == 0:
            while True:  # never answers and swallows every cancellation
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.sleep(3600)
        answered.append(args["agent"])
        return {"v": args["agent"]}

    started = time.monotonic()
    # one agent in flight at a time: agents 1 and 2 start only once agent 0 is cut
    result = converge_rules.run(fan_out(3, "agent_timeout = 200ms"), [("Go", {"n": 1})],
                                tools={"slow": slow}, executor="asyncio", workers=1)
    assert time.monotonic() - started < 30  # (the job's end waits a grace for agent 0)
    assert sorted(f["agent"] for f in result.facts("Got")) == [1, 2]
    assert sorted(answered) == [1, 2]
    assert "agent_timeout exceeded" in result.trace.to_jsonl()


def test_a_queued_agents_timeout_counts_from_its_own_start() -> None:
    async def slow(args: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(0.15)
        return {"v": args["agent"]}

    # one in flight: the third starts ~0.3 s into the cycle, past 250 ms from its start
    result = converge_rules.run(fan_out(3, "agent_timeout = 250ms"), [("Go", {"n": 1})],
                                tools={"slow": slow}, executor="asyncio", workers=1)
    assert sorted(f["agent"] for f in result.facts("Got")) == [0, 1, 2]
    assert "agent_timeout exceeded" not in result.trace.to_jsonl()


def test_a_sync_agent_over_agent_timeout_is_cut_and_its_thread_replaced() -> None:
    release = threading.Event()

    def stuck(view: Any, since: int, rt: Any) -> list[Any]:
        release.wait(30)
        return []

    def quick(view: Any, since: int, rt: Any) -> list[Any]:
        return [(EMIT, 0, ("quick",), 1.0, ())]

    span = Span("<hand>", 1, 1, 1, 1)
    program = Program(
        name="stuck", goal=None,
        types=(TypeSpec(0, "R", (FieldSpec("c", ValueType("str"), False),), (), False,
                        span),),
        indexes=(), policies={}, prunes=(), requires=(), tools=(), type_ids={"R": 0},
        budgets=Budgets(agent_timeout=0.2),
        agents=(AgentSpec("stuck", 0, 0, stuck, "", (), (), (0,), (), span),
                AgentSpec("quick", 0, 1, quick, "", (), (), (0,), (), span)),
    )
    started = time.monotonic()
    try:
        # one thread for sync agents: the quick one runs once the stuck one is cut
        result = run(program, [], executor=AsyncioExecutor(1))
    finally:
        release.set()
    assert time.monotonic() - started < 5.0
    assert result.facts("R") == [{"c": "quick"}]
    assert "agent_timeout exceeded" in result.trace.to_jsonl()


def test_the_job_deadline_cuts_running_and_queued_agents() -> None:
    async def slow(args: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(3600)
        return {"v": 0}

    rs = fan_out(3)
    executor = AsyncioExecutor(1)  # one in flight: two wait for a slot
    from converge_rules.engine.effects import Activation
    from converge_rules.engine.factstore import FactStore
    from converge_rules.engine.merge import Merger
    from converge_rules.engine.tools import ToolBox

    box = ToolBox({"slow": slow}, None)
    store = FactStore(rs.program)
    Merger(rs.program, store, []).merge_inputs([rs.program.type_ids["Go"]], [(1,)])
    started = time.monotonic()
    executor.start(store.as_view(), rs.program.agents, tools=box, agent_timeout=None,
                   deadline=started + 0.3)
    try:
        effects = executor.run_cycle(1, {}, [Activation(i, 0) for i in range(3)])
    finally:
        executor.close()
        box.close()
    assert time.monotonic() - started < 3.0
    assert [e.budget for e in effects] == ["job_timeout"] * 3, effects
    assert all(e.error is not None and e.error.startswith("job_timeout") for e in effects)


def test_a_coroutine_agent_computing_at_the_job_deadline_is_stopped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Found by a review: a join-heavy agent that also calls a tool computes on the loop
    # without awaiting; at job_timeout = 1s the run returned after ~7 s (a second of
    # grace, then the tool box's close waiting 3 s and 2 s for the held loop) and the
    # loop's thread went on computing the join, a core busy for minutes, after the job
    # had returned its result. Stopped, it must print no "never retrieved" traceback.
    async def fx(args: dict[str, Any]) -> dict[str, Any]:
        return {"v": args["x"]}

    rs = converge_rules.loads(
        "ruleset j\nuses tool fx\nroot \"j\" {\n  job_timeout = 1s\n}\n"
        "fact A { x: int }\nfact B { y: int }\nfact Hit { x: int, v: int }\n"
        "agent pairs {\n  when A(x) and B(y) where x + y == -1\n"
        "  call fx(x: x) as r\n  emit Hit(x: x, v: r.v)\n}\n", plugins=False)
    n = 15_000  # 225 million pairs: minutes of work
    facts = [("A", {"x": i}) for i in range(n)] + [("B", {"y": i}) for i in range(n)]
    inputs = validate_pairs(rs.program, facts)  # validated before the clock starts
    started = time.monotonic()
    result = converge_rules.run(rs, inputs, tools={"fx": fx}, executor="asyncio")
    took = time.monotonic() - started
    assert result.status == "budget_exceeded"
    assert took < 4.5, f"the job of job_timeout = 1s took {took:.1f}s"
    until = time.monotonic() + 5.0
    while time.monotonic() < until and any(
            t.name == "converge-tools-loop" for t in threading.enumerate()):
        time.sleep(0.05)
    assert not [t for t in threading.enumerate() if t.name == "converge-tools-loop"], (
        "the loop's thread still computes the abandoned join")
    import gc

    with caplog.at_level("ERROR", logger="asyncio"):
        gc.collect()
    assert "never retrieved" not in caplog.text


def test_agents_finished_before_a_computation_holds_the_loop_keep_their_effects() -> None:
    # Found by a review: an async tool computing without an await (agent 1's) held the
    # loop past job_timeout; the cycle was then cut whole, agent 0's effect too, though
    # it had finished before (threads and processes keep it)
    async def slow(args: dict[str, Any]) -> dict[str, Any]:
        if args["agent"] == 1:
            while True:  # computes on the loop: no cancellation can reach it
                pass
        return {"v": args["agent"]}

    rs = fan_out(2).program
    rs = dataclasses.replace(rs, budgets=dataclasses.replace(rs.budgets, job_timeout=1.0))
    started = time.monotonic()
    result = run(rs, [("Go", {"n": 1})], tools={"slow": slow}, executor=AsyncioExecutor(1))
    assert time.monotonic() - started < 10.0
    assert result.status == "budget_exceeded"
    assert result.facts("Got") == [{"agent": 0, "v": 0}]


@pytest.mark.parametrize("budget", ["job_timeout = 1s", "agent_timeout = 1s"])
def test_a_sync_agent_computing_when_it_is_cut_stops(budget: str) -> None:
    # Found by a review: a pure join (no call: it runs on the agent pool's thread) cut at
    # its deadline went on computing on that thread for minutes after the job returned,
    # where threads stops such an agent
    rs = converge_rules.loads(
        f"ruleset j\nroot \"j\" {{\n  {budget}\n}}\n"
        "fact A { x: int }\nfact B { y: int }\nfact Hit { x: int }\n"
        "agent pairs {\n  when A(x) and B(y) where x + y == -1\n  emit Hit(x: x)\n}\n",
        plugins=False)
    n = 15_000  # 225 million pairs: minutes of work
    facts = [("A", {"x": i}) for i in range(n)] + [("B", {"y": i}) for i in range(n)]
    result = converge_rules.run(rs, validate_pairs(rs.program, facts), executor="asyncio")
    assert "timeout" in result.trace.to_jsonl()

    def agent_threads() -> list[str]:
        return [t.name for t in threading.enumerate() if t.name.startswith("converge-agent")]

    until = time.monotonic() + 5.0
    while time.monotonic() < until and agent_threads():
        time.sleep(0.05)
    assert not agent_threads(), "the abandoned join still computes"


def test_daemon_threads_never_hold_the_process_exit() -> None:
    code = textwrap.dedent(f"""\
        import sys, time
        sys.path[:0] = {[str(ROOT)]!r}
        from converge_rules.engine.asyncio_executor import DaemonThreads
        pool = DaemonThreads(2, "t")
        pool.submit(time.sleep, 3600)
        print(pool.submit(sum, [1, 2]).result(5))
        """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=30, check=False)
    assert done.stdout.strip() == "3", done.stderr
    assert DaemonThreads is not None
