"""Deadlines cut the compute phase in every built-in executor (issue 12 item 3).

An agent over ``agent_timeout`` is cut at its deadline and its effect discarded (the
trace says so); at the job's deadline the cycle returns whatever still runs, the
effects that finished are merged and the job ends ``budget_exceeded`` / ``job_timeout``
with its partial results. An abandoned agent no longer runs: a thread computing in
Python is stopped, a stuck worker process is killed and replaced. Agents here sleep or
spin for ever; each job would hang without the fix, so each runs under a watchdog."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any, cast

import pytest
from engine_programs import Builder, each, f

from converge_rules.engine import run
from converge_rules.engine.asyncio_executor import AsyncioExecutor
from converge_rules.engine.executors import (
    DEADLINE_REASON,
    SerialExecutor,
    ThreadExecutor,
    fork_available,
    processes_executor,
    timeout_reason,
)
from converge_rules.engine.result import RunResult
from converge_rules.program import EMIT, Program

EXECUTORS: dict[str, Callable[[], Any]] = {
    "serial": SerialExecutor,
    "threads-1": lambda: ThreadExecutor(1),
    "threads-4": lambda: ThreadExecutor(4),
}
if fork_available():
    EXECUTORS["processes-1"] = lambda: processes_executor(1)
    EXECUTORS["processes-2"] = lambda: processes_executor(2)

#: a job that honours its deadlines of a fraction of a second ends far inside this
WATCHDOG = 60.0


def within_watchdog(job: Callable[[], RunResult]) -> RunResult:
    """Run ``job`` on a daemon thread; fail (instead of hanging) past :data:`WATCHDOG`."""
    box: list[Any] = []
    thread = threading.Thread(target=lambda: box.append(job()), daemon=True)
    thread.start()
    thread.join(WATCHDOG)
    if thread.is_alive():
        pytest.fail(f"the job did not end within {WATCHDOG:g}s")
    return box[0]  # type: ignore[no-any-return]


def stuck_program(stuck: Callable[[], None], **budgets: Any) -> Program:
    """Cycle 1: ``stuck`` never returns (sleeps or spins) on N(1), ``quick`` copies N(2)
    to Out; cycle 2: ``later`` copies Out to Last — it needs a replica that has Out."""
    b = Builder()
    n = b.fact("N", f("v", "int"))
    out = b.fact("Out", f("v", "int"))
    last = b.fact("Last", f("v", "int"))

    def hang(view: Any, since: int, rt: Any) -> list[Any]:
        stuck()
        return [(EMIT, out, (99,), 1.0, ())]

    b.agent("stuck", hang, reads=[n], emits=[out])
    b.agent("quick", each(n, lambda v: [(EMIT, out, v)] if v[0] == 2 else []),
            reads=[n], emits=[out])
    b.agent("later", each(out, lambda v: [(EMIT, last, v)]), reads=[out], emits=[last])
    return b.build(**budgets)


def sleep_for_ever() -> None:
    time.sleep(3600)


INPUT = [("N", {"v": 1}), ("N", {"v": 2})]


def discarded(result: RunResult) -> list[tuple[str, str]]:
    return [(e.agent, e.reason) for e in result.trace.events()  # type: ignore[attr-defined]
            if e.event == "effect_discarded"]


@pytest.mark.parametrize("name", EXECUTORS)
def test_an_agent_over_agent_timeout_is_cut_and_the_rest_goes_on(name: str) -> None:
    program = stuck_program(sleep_for_ever, agent_timeout=1.0)
    result = within_watchdog(lambda: run(program, INPUT, executor=EXECUTORS[name]()))
    assert result.status == "converged"
    assert result.facts("Out") == [{"v": 2}]
    assert result.facts("Last") == [{"v": 2}]  # the next cycle ran (on a fresh replica)
    assert discarded(result) == [("stuck", timeout_reason(1.0))]
    assert result.budget["agent_timeout"]["used"] == 1


@pytest.mark.parametrize("name", EXECUTORS)
def test_job_timeout_ends_the_job_while_an_agent_runs(name: str) -> None:
    program = stuck_program(sleep_for_ever, job_timeout=2.0)
    result = within_watchdog(lambda: run(program, INPUT, executor=EXECUTORS[name]()))
    assert result.status == "budget_exceeded"
    assert result.budget["job_timeout"]["exceeded"] is True
    assert ("stuck", DEADLINE_REASON) in discarded(result)
    assert result.facts("Last") == []
    assert result.facts("N") == [{"v": 1}, {"v": 2}]


def test_the_cut_cycle_merges_the_effects_that_finished() -> None:
    program = stuck_program(sleep_for_ever, job_timeout=2.0)
    result = within_watchdog(lambda: run(program, INPUT, executor=ThreadExecutor(4)))
    assert result.status == "budget_exceeded"
    assert result.facts("Out") == [{"v": 2}]  # ``quick`` finished before the deadline


#: seconds each of :data:`MANY` agents cut while blocked in C code sleeps: far past a
#: deadline of half a second, far short of what watching them in turn took
NAP = 6.0
MANY = 40


@pytest.mark.parametrize(("name", "budget"), [
    ("threads", "agent_timeout"), ("threads", "job_timeout"), ("asyncio", "agent_timeout")])
def test_many_agents_cut_while_blocked_in_c_code_do_not_hold_the_cycle(
    name: str, budget: str
) -> None:
    # Found in review (integ23): each cut agent blocked in C code (a sleep, a read,
    # outside a tool call) was watched for up to 10 pauses of 20 ms, one after the
    # other, before the cycle went on: 40 such agents held it 8 s past its deadline.
    # The watch is the abandoned thread's own business; the cycle returns at once.
    woke = threading.Event()

    def nap() -> None:
        time.sleep(NAP)
        woke.set()

    b = Builder()
    n = b.fact("N", f("v", "int"))
    out = b.fact("Out", f("v", "int"))

    def hang(view: Any, since: int, rt: Any) -> list[Any]:
        nap()
        return [(EMIT, out, (99,), 1.0, ())]

    for i in range(MANY):
        b.agent(f"stuck{i}", hang, reads=[n], emits=[out])
    program = b.build(**{budget: 0.5})
    executor = ThreadExecutor(MANY) if name == "threads" else AsyncioExecutor(MANY)
    result = within_watchdog(lambda: run(program, [("N", {"v": 1})], executor=executor))
    assert not woke.is_set(), "the cycle waited for the agents it cut"
    assert len(discarded(result)) == MANY
    assert result.facts("Out") == []


@pytest.mark.parametrize("name", ["serial", "threads-1"])
def test_an_abandoned_agent_computing_in_python_stops(name: str) -> None:
    spins = [0]
    spinning: list[threading.Thread] = []

    def spin() -> None:
        spinning.append(threading.current_thread())
        while True:
            spins[0] += 1

    program = stuck_program(spin, agent_timeout=1.0)
    result = within_watchdog(lambda: run(program, INPUT, executor=EXECUTORS[name]()))
    assert result.status == "converged"
    (thread,) = spinning
    thread.join(10)  # it stops at once; allow for a loaded machine
    assert not thread.is_alive(), "the abandoned agent still spins"
    before = spins[0]
    time.sleep(0.1)
    assert spins[0] == before


@pytest.mark.parametrize("name", ["serial", "threads-1"])
def test_an_abandoned_agent_not_computing_at_its_cut_but_just_after_stops(name: str) -> None:
    # Found at load 20 (the test above failed one run in six): a computing thread that
    # the loaded machine did not schedule while it was watched (20 ms) was taken for
    # one waiting in C code, and spun on after the job. An agent still asleep when it
    # is cut and computing 50 ms later stands for it, on any load.
    spins = [0]
    spinning: list[threading.Thread] = []

    def late_spin() -> None:
        spinning.append(threading.current_thread())
        time.sleep(1.05)
        while True:
            spins[0] += 1

    program = stuck_program(late_spin, agent_timeout=1.0)
    result = within_watchdog(lambda: run(program, INPUT, executor=EXECUTORS[name]()))
    assert result.status == "converged"
    assert discarded(result) == [("stuck", timeout_reason(1.0))]
    (thread,) = spinning
    thread.join(10)
    assert not thread.is_alive(), "the abandoned agent still spins"


def test_abandoning_an_agent_blocked_in_c_code_leaves_profiled_code_at_full_speed() -> None:
    # Found: the stop raised in an abandoned thread stays pending while the thread
    # sleeps in C, and a profiled thread (coverage, a debugger) stalled until it woke
    # (the language tests hung for an hour behind ``time.sleep(3600)``).
    program = stuck_program(sleep_for_ever, agent_timeout=0.2)
    within_watchdog(lambda: run(program, INPUT, executor=ThreadExecutor(2)))
    calls = 0

    def hook(frame: Any, event: str, arg: Any) -> None:
        nonlocal calls
        calls += event == "call"

    def same(x: int) -> int:
        return x

    def profiled() -> RunResult:
        sys.setprofile(hook)
        try:
            for i in range(20_000):
                same(i)
        finally:
            sys.setprofile(None)
        return cast(RunResult, None)

    within_watchdog(profiled)  # milliseconds at full speed; it used to stall
    assert calls >= 20_000


def test_abandoned_threads_are_daemons() -> None:
    program = stuck_program(sleep_for_ever, agent_timeout=0.2)
    within_watchdog(lambda: run(program, INPUT, executor=ThreadExecutor(2)))
    agents = [t for t in threading.enumerate() if t.name.startswith("converge-")]
    assert agents and all(t.daemon for t in agents)  # never joined at exit


def test_serial_without_time_budgets_runs_agents_in_the_calling_thread() -> None:
    seen: list[threading.Thread] = []
    b = Builder()
    n = b.fact("N", f("v", "int"))

    def note(view: Any, since: int, rt: Any) -> list[Any]:
        seen.append(threading.current_thread())
        return []

    b.agent("note", note, reads=[n])
    run(b.build(), INPUT)
    run(b.build(agent_timeout=5.0), INPUT)
    assert seen[0] is threading.current_thread()
    assert seen[1] is not threading.current_thread()  # one it can abandon
