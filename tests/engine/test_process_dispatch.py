"""The processes executor hands out a cycle's activations as its workers ask for them
(issue 12 item 6), not in fixed shares: the job is still the serial job, byte for
byte, whatever worker ran what; agents still queued when the job's deadline passes are
cut with the rest; a stuck worker's replacement takes over its work and goes on asking;
and work sent ahead of need never deadlocks the pipe when both directions carry big
messages. Each job runs under a watchdog, so a hang fails instead of stalling the run.
(``ask_after=0``: every cycle's work is asked for, cheap cycles' too.)"""

from __future__ import annotations

import time
from typing import Any

import pytest
from engine_programs import Builder, each, f

import converge_rules
from converge_rules.engine import run
from converge_rules.engine.executors import DEADLINE_REASON, fork_available, timeout_reason
from converge_rules.engine.processes import ProcessExecutor
from converge_rules.engine.result import RunResult
from converge_rules.program import EMIT, Program

pytestmark = pytest.mark.skipif(not fork_available(), reason="needs the fork start method")

from test_deadlines import discarded, within_watchdog  # noqa: E402

AGENTS = 24


def calling_ruleset(agents: int = AGENTS) -> str:
    """``agents`` agents, each calling ``look`` for its share of the items and
    emitting the answer: many activations per cycle, each with tool calls."""
    out = ["ruleset calls", "uses tool look", "fact Item { id: int }",
           "fact Out { agent: int, id: int, v: int }"]
    for i in range(agents):
        out += [f"agent a{i} {{", "  when Item(id)", f"  where id % {agents} == {i}",
                "  call look(id: id) as r", f"  emit Out(agent: {i}, id: id, v: r.v)", "}"]
    return "\n".join(out) + "\n"


def look(args: dict[str, Any]) -> dict[str, Any]:
    return {"v": args["id"] * 7 % 11}


@pytest.mark.parametrize("workers", [1, 2, 3])
@pytest.mark.parametrize("timed", [False, True], ids=["untimed", "timed"])
def test_many_agents_calling_tools_give_the_serial_job(workers: int, timed: bool) -> None:
    source = calling_ruleset()
    if timed:  # tool calls answered on threads while work is handed out
        source = source.replace("uses tool look",
                                'root "r" { agent_timeout = 60s }\nuses tool look')
    ruleset = converge_rules.loads(source, plugins=False)
    facts = [("Item", {"id": i}) for i in range(AGENTS * 5)]
    serial = converge_rules.run(ruleset, facts, tools={"look": look})
    forked = within_watchdog(lambda: converge_rules.run(
        ruleset, facts, tools={"look": look}, executor=ProcessExecutor(workers, ask_after=0)))
    assert serial.status == forked.status == "converged"
    assert len(forked.facts("Out")) == AGENTS * 5
    assert forked.to_json() == serial.to_json()
    assert forked.trace.to_jsonl() == serial.trace.to_jsonl()


def many_stuck(n: int, **budgets: Any) -> Program:
    """``n`` agents that never return on N(1), and ``quick`` copying N(2) to Out."""
    b = Builder()
    num = b.fact("N", f("v", "int"))
    out = b.fact("Out", f("v", "int"))

    def hang(view: Any, since: int, rt: Any) -> list[Any]:
        time.sleep(3600)
        return []

    for i in range(n):
        b.agent(f"stuck{i}", hang, reads=[num], emits=[out])
    b.agent("quick", each(num, lambda v: [(EMIT, out, v)] if v[0] == 2 else []),
            reads=[num], emits=[out])
    return b.build(**budgets)


INPUT = [("N", {"v": 1}), ("N", {"v": 2})]


@pytest.mark.parametrize("workers", [1, 2])
def test_agents_still_queued_at_the_job_deadline_are_cut_too(workers: int) -> None:
    program = many_stuck(12, job_timeout=2.0)
    result = within_watchdog(lambda: run(program, INPUT, executor=ProcessExecutor(workers)))
    assert result.status == "budget_exceeded"
    assert result.budget["job_timeout"]["exceeded"] is True
    cut = discarded(result)
    # every agent is cut, those never sent to a worker (``quick`` among them) included
    assert sorted(agent for agent, _ in cut) == sorted(
        [f"stuck{i}" for i in range(12)] + ["quick"])
    assert {reason for _, reason in cut} == {DEADLINE_REASON}


def test_a_stuck_workers_replacement_runs_its_work_and_asks_for_more() -> None:
    b = Builder()
    num = b.fact("N", f("v", "int"))
    out = b.fact("Out", f("v", "int"))

    def hang(view: Any, since: int, rt: Any) -> list[Any]:
        time.sleep(3600)
        return []

    b.agent("stuck", hang, reads=[num], emits=[out])
    for i in range(15):
        b.agent(f"copy{i}", each(num, lambda v, i=i: [(EMIT, out, (v[0] * 100 + i,))]),
                reads=[num], emits=[out])
    program = b.build(agent_timeout=1.0)
    result = within_watchdog(lambda: run(program, INPUT, executor=ProcessExecutor(2)))
    assert result.status == "converged"
    assert discarded(result) == [("stuck", timeout_reason(1.0))]
    assert sorted(x["v"] for x in result.facts("Out")) == sorted(
        v * 100 + i for v in (1, 2) for i in range(15))


def test_big_work_is_not_sent_ahead_while_the_worker_sends_big_effects() -> None:
    """Found: each activation of an agent negating a type that lost 100,000 facts
    carries their ids (~450 KB pickled); sent ahead while the worker wrote ~400 KB of
    effects into the other direction, both ends blocked on full pipes for ever."""
    agents = 6
    src = ["ruleset gone", "fact Item { id: int, text: str }",
           "fact Block { id: int, until: int }", "fact Tick { n: int }",
           "fact Out { agent: int, id: int, text: str }", "prune Block when age >= until",
           "agent tick {", "  when Tick(n) where n < 4", "  emit Tick(n: n + 1)", "}"]
    for i in range(agents):
        src += [f"agent a{i} {{", "  when Item(id, text) and not Block(id)",
                f"  where id % {agents} == {i}", f"  emit Out(agent: {i}, id: id, text: text)",
                "}"]
    ruleset = converge_rules.loads("\n".join(src) + "\n", plugins=False)
    items = 1_200  # 200 an agent, 2 KB each: every effect is ~400 KB
    facts = ([("Item", {"id": i, "text": f"{i:08d}" * 250}) for i in range(items)]
             + [("Block", {"id": i, "until": 2}) for i in range(100_000)]
             + [("Tick", {"n": 0})])
    serial = converge_rules.run(ruleset, facts)
    forked: RunResult = within_watchdog(lambda: converge_rules.run(
        ruleset, facts, executor=ProcessExecutor(2, ask_after=0)))
    assert forked.status == serial.status == "converged"
    assert len(forked.facts("Out")) == items  # the blocks went, every item came through
    assert forked.to_json() == serial.to_json()
