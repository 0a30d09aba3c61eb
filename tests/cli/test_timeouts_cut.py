"""Timeouts that cut, in every built-in executor, through the ``converge`` command.

Found by an adversarial pass (issue 12), each a regression test here: with
``--executor threads --workers 1`` and a tool that sleeps an hour the job never ended
(the queued agent never started, the wait never timed out); with 2 workers the result
printed but the process never exited (the abandoned thread was joined at exit); an
async tool that swallows ``CancelledError`` hung the process after the result;
``serial`` and ``processes`` waited out a 25 s tool despite ``job_timeout = 5s``; an
8000 × 8000 join with ``job_timeout = 1s`` ran 5.6 s and reported ``converged``;
killing ``converge run --executor processes`` left every worker alive.

Every test runs the command in a subprocess with a hard timeout, so a regression fails
instead of hanging the suite. The budgets are small and the hard limits generous: a
job that honours its deadline ends far inside them, one that does not never does.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from converge_rules.engine.executors import fork_available

CONSOLE = Path(sys.executable).with_name("converge")

#: the hard limit of every command here: start-up under load plus a deadline of seconds
HARD = 90.0

PLUGIN = """
import asyncio, time
from pathlib import Path
from pydantic import BaseModel
from converge_rules.plugins.api import Function, Tool, hookimpl

class S(BaseModel):
    s: float

class Ok(BaseModel):
    ok: bool

def nap(args):
    Path("started").write_text("yes")
    time.sleep(args.s)
    return {"ok": True}

async def stubborn(args):
    Path("started").write_text("yes")
    while True:  # swallows every cancellation
        try:
            await asyncio.sleep(args.s)
        except asyncio.CancelledError:
            pass

def mark(args):
    Path("started").write_text("yes")
    return {"ok": True}

def spin(x):
    Path("started").write_text("yes")
    while True:  # computes for ever, in Python
        pass

def spinning(type_spec, contenders):
    Path("started").write_text("yes")
    while True:  # a resolver that never decides
        pass

@hookimpl
def converge_register_functions(register):
    register(Function("spin", spin, ("int",), "int"))

@hookimpl
def converge_register_resolvers(register):
    register("spinning", spinning)

@hookimpl
def converge_register_tools(register):
    register(Tool("nap", nap, S, Ok))
    register(Tool("stubborn", stubborn, S, Ok))
    register(Tool("mark", mark, S, Ok))
"""


def naps(tool: str, seconds: float, budgets: str) -> str:
    """Cycle 1 derives Step(1) and Step(2); in cycle 2 the agent ``sleepy`` calls
    ``tool`` for ``seconds`` on Step(1) and ``quick`` answers Step(2) at once."""
    return f"""ruleset naps
uses tool {tool}
root "naps" {{
  {budgets}
}}
fact Job {{ key id: int }}
fact Step {{ key id: int }}
fact Done {{ key id: int }}
agent first {{
  when Job(id)
  emit Step(id: id)
}}
agent sleepy {{
  when Step(id) where id == 1
  call {tool}(s: {seconds}) as r
  emit Done(id: id)
}}
agent quick {{
  when Step(id) where id == 2
  emit Done(id: id)
}}
"""


def converge(tmp: Path, ruleset: str, facts: list[dict[str, Any]], *args: str,
             ) -> subprocess.Popen[str]:
    (tmp / "r.cvg").write_text(ruleset)
    (tmp / "in.jsonl").write_text("".join(json.dumps(f) + "\n" for f in facts))
    (tmp / "sleepy_plugin.py").write_text(PLUGIN)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp), *sys.path]),
           "CONVERGE_DISABLE_PLUGINS": "converge-http,converge-llm,converge-example"}
    return subprocess.Popen(
        [str(CONSOLE), "--plugin", "sleepy_plugin", "run", "r.cvg", "-f", "in.jsonl",
         "--format", "json", *args],
        cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen[str]) -> tuple[dict[str, Any], str]:
    """The result the command printed, once it has exited (within :data:`HARD`)."""
    try:
        out, err = proc.communicate(timeout=HARD)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the command did not exit within {HARD:g}s; printed: {out[:300]!r}")
    assert "Traceback" not in err, err
    return json.loads(out), err


EXECUTORS = [
    pytest.param(["--executor", "serial"], id="serial"),
    pytest.param(["--executor", "threads", "--workers", "1"], id="threads-1"),
    pytest.param(["--executor", "threads", "--workers", "2"], id="threads-2"),
    pytest.param(["--executor", "asyncio", "--workers", "2"], id="asyncio-2"),
    pytest.param(["--executor", "processes", "--workers", "1"], id="processes-1",
                 marks=pytest.mark.skipif(not fork_available(), reason="needs fork")),
    pytest.param(["--executor", "processes", "--workers", "2"], id="processes-2",
                 marks=pytest.mark.skipif(not fork_available(), reason="needs fork")),
]
JOBS = [{"Job": {"id": 1}}, {"Job": {"id": 2}}]


@pytest.mark.parametrize("executor", EXECUTORS)
def test_an_agent_over_agent_timeout_is_cut_and_the_command_exits(
    tmp_path: Path, executor: list[str],
) -> None:
    proc = converge(tmp_path, naps("nap", 3600, "agent_timeout = 1s"), JOBS, *executor)
    result, _ = finish(proc)
    assert proc.returncode == 0, result
    assert result["status"] == "converged"
    # the agent queued behind the sleeping one ran (threads --workers 1 never did)
    assert result["facts"]["Done"] == [{"id": 2}]
    assert result["budget"]["agent_timeout"]["used"] == 1


@pytest.mark.parametrize("executor", EXECUTORS)
def test_an_async_tool_that_swallows_its_cancellation_does_not_hang_the_command(
    tmp_path: Path, executor: list[str],
) -> None:
    proc = converge(tmp_path, naps("stubborn", 3600, "agent_timeout = 1s"), JOBS, *executor)
    result, _ = finish(proc)
    assert result["status"] == "converged"
    assert result["facts"]["Done"] == [{"id": 2}]


@pytest.mark.parametrize("executor", EXECUTORS)
def test_job_timeout_ends_the_job_while_a_tool_still_runs(
    tmp_path: Path, executor: list[str],
) -> None:
    proc = converge(tmp_path, naps("nap", 3600, "job_timeout = 5s"), JOBS, *executor)
    result, err = finish(proc)
    assert proc.returncode == 1
    assert result["status"] == "budget_exceeded"
    assert result["budget"]["job_timeout"]["exceeded"] is True
    assert result["facts"]["Step"] == [{"id": 1}, {"id": 2}]  # the partial results
    assert "warning: agent `sleepy` failed" not in err  # the status says why, once


def join_facts(n: int) -> list[dict[str, Any]]:
    return [{"A": {"x": i}} for i in range(n)] + [{"B": {"y": i}} for i in range(n)]


JOIN = """ruleset join
root "a join of every A with every B" {
  job_timeout = 1s
}
fact A { x: int }
fact B { y: int }
fact Hit { x: int }
agent pairs {
  when A(x) and B(y) where x + y == -1
  emit Hit(x: x)
}
"""


@pytest.mark.parametrize("executor", [p for p in EXECUTORS if p.id != "threads-2"])
def test_job_timeout_cuts_a_join_that_computes_for_minutes(
    tmp_path: Path, executor: list[str],
) -> None:
    # 15000 × 15000 pairs: minutes of work; it used to run to the end and say converged
    proc = converge(tmp_path, JOIN, join_facts(15_000), *executor)
    result, _ = finish(proc)
    assert result["status"] == "budget_exceeded"
    assert result["budget"]["job_timeout"]["exceeded"] is True
    assert result["facts"].get("Hit", []) == []


def children(pid: int) -> set[int]:
    """The live processes whose parent is ``pid``."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_killing_a_processes_run_kills_its_workers(tmp_path: Path) -> None:
    ruleset = JOIN.replace("job_timeout = 1s", "max_cycles = 10").replace(
        "ruleset join", "ruleset join\nuses tool mark") + """
agent started {
  when A(x) where x == 0
  call mark(s: 0.0) as m
  emit Hit(x: -1)
}
"""
    proc = converge(tmp_path, ruleset, join_facts(15_000), "--executor", "processes",
                    "--workers", "2")
    try:
        ends = time.monotonic() + HARD
        while not (tmp_path / "started").exists():  # the workers are computing
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < ends, "the job never started"
            time.sleep(0.05)
        workers = children(proc.pid)
        assert len(workers) == 2
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=HARD)
        ends = time.monotonic() + 30
        while any(alive(w) for w in workers) and time.monotonic() < ends:
            time.sleep(0.05)
        left = [w for w in workers if alive(w)]
    finally:
        if proc.poll() is None:
            proc.kill()
    for w in left:
        os.kill(w, signal.SIGKILL)
    assert left == [], "workers outlived the killed parent"


GOAL = """ruleset goal
root "a goal whose plugin function never returns" {
  job_timeout = 2s
  require spin(count(Job())) == 0
}
fact Job { key id: int }
"""


def test_job_timeout_cuts_a_goal_that_never_returns(tmp_path: Path) -> None:
    # goals are evaluated in the engine's own thread, after the executor has closed:
    # nothing cut them and the command ran for ever past its job_timeout
    proc = converge(tmp_path, GOAL, JOBS)
    result, _ = finish(proc)
    assert proc.returncode == 1
    assert result["status"] == "budget_exceeded"
    assert result["budget"]["job_timeout"]["exceeded"] is True
    assert result["facts"]["Job"] == [{"id": 1}, {"id": 2}]  # the partial results


RESOLVER = """ruleset resolver
root "a resolver that never returns" {
  job_timeout = 2s
}
fact Job { key id: int }
fact Pick { key id: int, v: int }
agent one { when Job(id) where id == 1 emit Pick(id: 1, v: 1) }
agent two { when Job(id) where id == 1 emit Pick(id: 1, v: 2) }
policy Pick { resolve by using spinning }
"""

INVARIANT = """ruleset invariant
root "an invariant whose plugin function never returns" {
  job_timeout = 2s
}
fact Job { key id: int }
fact Step { key id: int }
agent step { when Job(id) emit Step(id: id) }
invariant stuck always count(Step()) == 0 or spin(count(Step())) == 0
"""
"""The invariant holds on the inputs (cycle 0); in cycle 1 its function never returns."""


@pytest.mark.parametrize("store", [False, True], ids=["memory", "store"])
def test_job_timeout_cuts_a_resolver_that_never_returns(tmp_path: Path, store: bool) -> None:
    # a plugin resolver runs inside the merge, in the engine's thread: nothing cut it and
    # the command ran for ever past its job_timeout
    proc = converge(tmp_path, RESOLVER, JOBS, *(["--store", "run.db"] if store else []))
    result, _ = finish(proc)
    assert proc.returncode == 1
    assert result["status"] == "budget_exceeded"
    assert result["budget"]["job_timeout"]["exceeded"] is True
    assert result["facts"]["Job"] == [{"id": 1}, {"id": 2}]
    assert "Pick" not in result["facts"] or result["facts"]["Pick"] == []
    if store:  # the stored job says how it ended, and its trace reads back whole
        info = subprocess.run([str(CONSOLE), "store", "info", "run.db"], cwd=tmp_path,
                              capture_output=True, text=True, timeout=HARD)
        assert "budget_exceeded" in info.stdout, info.stdout + info.stderr
        verified = subprocess.run([str(CONSOLE), "verify", "run.db"], cwd=tmp_path,
                                  capture_output=True, text=True, timeout=HARD)
        assert verified.returncode == 0, verified.stdout + verified.stderr


def test_job_timeout_cuts_a_resolver_of_input_facts_that_never_returns(
        tmp_path: Path) -> None:
    # two input facts for one key: the resolver runs in cycle 0, before any agent
    proc = converge(tmp_path, RESOLVER, [{"Pick": {"id": 1, "v": 1}},
                                         {"Pick": {"id": 1, "v": 2}}])
    result, _ = finish(proc)
    assert result["status"] == "budget_exceeded"
    assert result["budget"]["job_timeout"]["exceeded"] is True


def test_the_cut_names_what_ran_out_of_time(tmp_path: Path) -> None:
    for ruleset, facts, doing in (
            (RESOLVER, JOBS, "resolver 'spinning' decided a conflict of Pick in cycle 1"),
            (RESOLVER, [{"Pick": {"id": 1, "v": 1}}, {"Pick": {"id": 1, "v": 2}}],
             "resolver 'spinning' decided a conflict of Pick in cycle 0"),
            (INVARIANT, JOBS, "invariant stuck was checked in cycle 1")):
        proc = converge(tmp_path, ruleset, facts, "--format", "table")
        try:
            out, err = proc.communicate(timeout=HARD)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail(f"the command did not exit within {HARD:g}s")
        assert "Traceback" not in err, err
        assert "budget_exceeded (job_timeout)" in out, out
        assert f"job_timeout (2s) ran out while {doing}; the facts merged until then " \
               "are the partial results" in out, out


def test_job_timeout_cuts_an_invariant_that_never_returns(tmp_path: Path) -> None:
    proc = converge(tmp_path, INVARIANT, JOBS)
    result, _ = finish(proc)
    assert proc.returncode == 1
    assert result["status"] == "budget_exceeded"
    assert result["budget"]["job_timeout"]["exceeded"] is True
    assert result["facts"]["Step"] == [{"id": 1}, {"id": 2}]  # merged, then checked


@pytest.mark.parametrize("ruleset", [RESOLVER, INVARIANT], ids=["resolver", "invariant"])
def test_a_job_cut_in_its_merge_resumes_to_the_same_cut(tmp_path: Path,
                                                         ruleset: str) -> None:
    # the cut ends the job inside a cycle's merge: the checkpoint of the last cycle
    # committed was staged from that later state (the agents' matches of the cycle
    # cut taken), and `run --resume` reported the job converged, its agents never run
    proc = converge(tmp_path, ruleset, JOBS, "--store", "run.db")
    first, _ = finish(proc)
    assert first["status"] == "budget_exceeded"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path]),
           "CONVERGE_DISABLE_PLUGINS": "converge-http,converge-llm,converge-example"}
    resumed = subprocess.run(
        [str(CONSOLE), "--plugin", "sleepy_plugin", "run", "r.cvg", "--resume", "run.db",
         "--format", "json"], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=HARD)
    assert "Traceback" not in resumed.stderr, resumed.stderr
    again = json.loads(resumed.stdout)
    assert again["status"] == "budget_exceeded", again["status"]
    assert again["facts"] == first["facts"]
