"""The processes executor's own process runs a share of the agents (issue 12): in a job
without deadlines whose agents call no tools, ``workers`` counts the engine's process,
so 2 workers are the engine's process and one forked worker (and 1 forks none); with
deadlines or tool calls every worker is forked, as before. Which process ran an agent
never changes the job (tests/properties compare every executor with 1-8 workers); here
the agents say where they ran, by emitting their process id. A forked worker that dies
while the engine's process runs its share ends the job with the clear error, and the
share stops after the agent it runs."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from engine_programs import Builder, f

from converge_rules.engine import run
from converge_rules.engine.executors import fork_available
from converge_rules.engine.processes import ProcessExecutor
from converge_rules.errors import ConvergeError, ExecutorError
from converge_rules.program import EMIT, Program

pytestmark = pytest.mark.skipif(not fork_available(), reason="needs the fork start method")

from test_deadlines import within_watchdog  # noqa: E402

AGENTS = 40
INPUT = [("Go", {"n": 1})]


def where_program(pause: float = 0.02, tools: tuple[str, ...] = (), **budgets: Any) -> Program:
    """``AGENTS`` agents, each pausing ``pause`` seconds and emitting ``Ran(agent, pid)``:
    the process that ran it."""
    b = Builder()
    go = b.fact("Go", f("n", "int"))
    ran = b.fact("Ran", f("agent", "int"), f("pid", "int"))

    def agent(i: int) -> Any:
        def fn(view: Any, since: int, rt: Any) -> list[Any]:
            out = []
            for fid in view.new(go, since):
                time.sleep(pause)
                out.append((EMIT, ran, (i, os.getpid()), 1.0, (fid,)))
            return out
        return fn

    for i in range(AGENTS):
        b.agent(f"a{i}", agent(i), reads=[go], emits=[ran], tools=tools)
    return b.build(**budgets)


def pids(program: Program, workers: int) -> set[int]:
    result = within_watchdog(lambda: run(program, INPUT, executor=ProcessExecutor(workers)))
    assert result.status == "converged"
    ran = result.facts("Ran")
    assert sorted(r["agent"] for r in ran) == list(range(AGENTS))
    return {r["pid"] for r in ran}


def test_two_workers_are_the_engines_process_and_one_fork() -> None:
    where = pids(where_program(), 2)
    assert os.getpid() in where
    assert len(where) == 2


def test_one_worker_forks_none() -> None:
    assert pids(where_program(), 1) == {os.getpid()}


@pytest.mark.parametrize("setting", ["agent_timeout", "job_timeout", "tools"])
def test_with_deadlines_or_tool_calls_every_worker_is_forked(setting: str) -> None:
    if setting == "tools":
        program = where_program(tools=("look",))  # declared, never called here
    else:
        program = where_program(**{setting: 600.0})
    where = pids(program, 2)
    assert os.getpid() not in where
    assert len(where) == 2


def test_a_cheap_cycles_share_runs_in_the_engines_process_too() -> None:
    """After a cycle under ``ask_after`` the next is split up front: the engine's
    process runs its part between handing out the workers' and collecting them."""
    b = Builder()
    tick = b.fact("Tick", f("n", "int"))
    ran = b.fact("Ran", f("n", "int"), f("agent", "int"), f("pid", "int"))

    def count(view: Any, since: int, rt: Any) -> list[Any]:
        return [(EMIT, tick, (view.values[fid][0] + 1,), 1.0, (fid,))
                for fid in view.new(tick, since) if view.values[fid][0] < 3]

    def agent(i: int) -> Any:
        def fn(view: Any, since: int, rt: Any) -> list[Any]:
            return [(EMIT, ran, (view.values[fid][0], i, os.getpid()), 1.0, (fid,))
                    for fid in view.new(tick, since)]
        return fn

    b.agent("count", count, reads=[tick], emits=[tick])
    for i in range(6):
        b.agent(f"a{i}", agent(i), reads=[tick], emits=[ran])
    program = b.build()
    result = within_watchdog(lambda: run(program, [("Tick", {"n": 0})],
                                         executor=ProcessExecutor(2, ask_after=3600)))
    assert result.status == "converged"
    by_cycle: dict[int, set[int]] = {}
    for r in result.facts("Ran"):
        by_cycle.setdefault(r["n"], set()).add(r["pid"])
    assert sorted(by_cycle) == [0, 1, 2, 3]
    for n in (1, 2, 3):  # split up front: every cycle after the first
        assert os.getpid() in by_cycle[n] and len(by_cycle[n]) == 2, by_cycle


def test_a_worker_dying_while_the_engines_process_runs_its_share_is_a_clear_error() -> None:
    parent = os.getpid()
    b = Builder()
    go = b.fact("Go", f("n", "int"))
    ran = b.fact("Ran", f("agent", "int"))
    started: list[int] = []

    def agent(i: int) -> Any:
        def fn(view: Any, since: int, rt: Any) -> list[Any]:
            if os.getpid() != parent:
                time.sleep(0.2)  # the engine's process has begun its share
                os._exit(3)
            started.append(i)
            time.sleep(0.5)
            return [(EMIT, ran, (i,), 1.0, (fid,)) for fid in view.new(go, since)]
        return fn

    for i in range(AGENTS):
        b.agent(f"a{i}", agent(i), reads=[go], emits=[ran])
    program = b.build()
    failed: list[BaseException] = []

    def job() -> Any:
        try:
            return run(program, INPUT, executor=ProcessExecutor(2))
        except ConvergeError as exc:
            failed.append(exc)
            return None

    within_watchdog(job)
    assert len(failed) == 1
    assert "a worker process of the processes executor died" in str(failed[0])
    # the share stops after the agent it was running (all of them would take 20 s)
    ends = time.monotonic() + 10
    while any(t.name == "converge-processes-share" for t in threading.enumerate()):
        assert time.monotonic() < ends, "the share went on after the job failed"
        time.sleep(0.05)
    assert 1 <= len(started) < AGENTS // 2


@pytest.mark.parametrize(("end", "how"), [
    (lambda: os.kill(os.getpid(), signal.SIGKILL), "killed by SIGKILL"),
    (lambda: os._exit(3), "exited with status 3"),
], ids=["sigkill", "exit-3"])
def test_a_worker_killed_mid_cycle_is_named_not_called_a_bug(
    end: Callable[[], None], how: str,
) -> None:
    # a worker killed from outside (the out-of-memory killer, an operator) was reported
    # as "this is a bug in the executor", without saying how it died
    parent = os.getpid()
    b = Builder()
    go = b.fact("Go", f("n", "int"))
    ran = b.fact("Ran", f("agent", "int"))

    def fn(view: Any, since: int, rt: Any) -> list[Any]:
        if os.getpid() != parent:
            end()
        return [(EMIT, ran, (0,), 1.0, (fid,)) for fid in view.new(go, since)]

    b.agent("a0", fn, reads=[go], emits=[ran])
    program = b.build(job_timeout=60.0)  # the engine's process only coordinates
    failed: list[BaseException] = []

    def job() -> Any:
        try:
            return run(program, INPUT, executor=ProcessExecutor(1))
        except ConvergeError as exc:
            failed.append(exc)
            return None

    within_watchdog(job)
    assert len(failed) == 1
    assert isinstance(failed[0], ExecutorError)
    message = str(failed[0])
    assert "a worker process of the processes executor died" in message
    assert how in message
    assert "bug" not in message
