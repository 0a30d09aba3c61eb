"""The ``ray`` executor on a real local Ray (started once for the session, on 127.0.0.1
with 2 CPUs, stopped at the end): the shipped rulesets give the result and trace bytes
of ``serial``; tools spread over the actors keep the memo and ``max_tool_calls``
job-wide; what cannot run says why, never hangs."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ray = pytest.importorskip("ray")
from converge_ray import ray_executor  # noqa: E402
from converge_ray.executor import RayExecutor, land_agent, ship_agent  # noqa: E402
from ray import cloudpickle  # noqa: E402

from converge_rules import loads  # noqa: E402
from converge_rules import run as api_run  # noqa: E402
from converge_rules.engine import run  # noqa: E402
from converge_rules.engine.tools import ABANDONED  # noqa: E402
from converge_rules.engine.trace import EffectDiscarded, ToolCall  # noqa: E402
from converge_rules.errors import ConvergeError  # noqa: E402
from converge_rules.plugins import load_registries  # noqa: E402
from converge_rules.testing.mocks import MockAnswer, MockTools  # noqa: E402
from converge_rules.testing.runner import (  # noqa: E402
    given_facts,
    given_now,
    interpreter_for,
    load_plugins,
    load_suite,
    mock_answers,
)

# the tools below are defined here, and this module is importable only where pytest
# put it on sys.path: Ray ships them by value (a user's script is, as __main__)
cloudpickle.register_pickle_by_value(sys.modules[__name__])

ROOT = Path(__file__).resolve().parents[3]
RULESETS = sorted((ROOT / "rulesets").glob("*/*.cvg"))


@pytest.fixture(scope="session")
def cluster() -> Iterator[str]:
    """One local Ray for the whole session; its GCS address (HOST:PORT)."""
    ray.init(address="local", num_cpus=2, _node_ip_address="127.0.0.1",
             include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def _cases(path: Path) -> list[tuple[Any, Any]]:
    suite = load_suite(path, load_plugins(True))
    assert suite.runnable and suite.program is not None, suite.problem
    return [(suite, case) for case in suite.cases]


@dataclasses.dataclass(frozen=True)
class Mocked:
    """A test's ``mock tool`` answers for one tool, picklable (``MockTools`` records
    calls under a lock, which cannot travel to an actor): the same answers."""

    tool: str
    answers: tuple[MockAnswer, ...]

    def __call__(self, args: dict[str, Any]) -> dict[str, Any]:
        return MockTools(self.answers, (self.tool,)).call(self.tool, args)


def _job(suite: Any, case: Any) -> tuple[list[Any], dict[str, Any], Any]:
    interp = interpreter_for(suite.checked, functions=suite.functions)
    now = given_now(case.test, interp, case.bindings)
    interp.now = now
    facts = given_facts(case.test, interp, case.bindings)
    answers = tuple(mock_answers(case.test, interp, case.bindings))
    names = sorted({*suite.checked.tools, *(a.tool for a in answers)})
    return facts, {name: Mocked(name, answers) for name in names}, now


@pytest.mark.parametrize("path", RULESETS, ids=[p.stem for p in RULESETS])
def test_shipped_rulesets_give_the_serial_result_and_trace(cluster: str, path: Path) -> None:
    # the first test case of each ruleset: each job starts its actors (seconds on a
    # loaded machine), and the cases of one ruleset differ only in their facts
    for suite, case in _cases(path)[:1]:
        facts, tools, now = _job(suite, case)
        serial = run(suite.program, facts, tools=tools, now=now)
        on_ray = run(suite.program, facts, tools=tools, now=now, executor=RayExecutor(2))
        assert on_ray.to_json() == serial.to_json(), case.id
        assert on_ray.trace.to_jsonl() == serial.trace.to_jsonl(), case.id


MIXED = """ruleset mixed
uses tool lookup
fact Item  { key id: int, n: int }
fact Score { key id: int, v: int }
fact Block { id: int, until: int }
fact Open  { id: int }
fact Ratio { key id: int, r: float }
fact Tick  { key of: str = "t", n: int }
policy Tick { resolve by latest }
policy Score { resolve by highest v, then earliest }
prune Block when age >= until
agent tick  { when Tick(n) where n < 6 emit Tick(n: n + 1) }
agent fetch { when Item(id, n) call lookup(n: n) as r emit Score(id: id, v: r.v) }
agent guess { when Item(id, n) emit Score(id: id, v: n * 3) }
agent open  { when Item(id) and not Block(id) emit Open(id: id) }
agent ratio { when Item(id, n) emit Ratio(id: id, r: 10.0 / (n - 3)) }
"""


class Jittery:
    """``lookup`` answering after a random latency (0–30 ms), so that actors finish in
    any order; fails for ``n == 5``."""

    def __call__(self, args: dict[str, Any]) -> dict[str, Any]:
        time.sleep(random.random() * 0.03)
        if args["n"] == 5:
            raise ValueError("no answer for 5")
        return {"v": args["n"] * 2}


@settings(max_examples=4, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=st.lists(st.tuples(st.integers(0, 6), st.integers(0, 7)), max_size=8),
       blocks=st.lists(st.tuples(st.integers(0, 6), st.integers(1, 4)), max_size=4),
       workers=st.integers(1, 3))
def test_conflicts_retraction_tools_and_failures_give_the_serial_bytes(
    cluster: str, items: list[tuple[int, int]], blocks: list[tuple[int, int]], workers: int
) -> None:
    program = loads(MIXED).program
    facts = [("Tick", {"n": 0})]
    facts += [("Item", {"id": i, "n": n}) for i, n in dict(items).items()]
    facts += [("Block", {"id": i, "until": u}) for i, u in blocks]
    serial = run(program, facts, tools={"lookup": Jittery()}, now=None)
    on_ray = run(program, facts, tools={"lookup": Jittery()}, now=None,
                 executor=RayExecutor(workers))
    assert on_ray.to_json() == serial.to_json()
    assert on_ray.trace.to_jsonl() == serial.trace.to_jsonl()


def test_an_agent_reaches_the_actors_as_source_compiled_again() -> None:
    ruleset = loads("ruleset r\nfact A { key x: int }\nfact B { key x: int }\n"
                    "agent double { when A(x) emit B(x: x * 2) }\n")
    (spec,) = ruleset.program.agents
    shipped = ship_agent(spec)
    assert shipped.namespace is not None and shipped.spec.source == spec.source
    landed = land_agent(shipped)
    assert landed.fn is not spec.fn and landed.fn.__code__.co_code == spec.fn.__code__.co_code
    assert dataclasses.replace(spec, fn=landed.fn) == landed


TOOLS_RULESET = """ruleset calls
uses tool lookup
fact Ask { key id: int, n: int }
fact Got { key id: int, v: int }
agent ask { when Ask(id, n) call lookup(n: n) as r emit Got(id: id, v: r.v) }
"""


class Recorded:
    """A tool that appends each real call to a file: the actors run it in their own
    processes, so a file is what they share with the test."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, args: dict[str, Any]) -> dict[str, Any]:
        with open(self.path, "a") as out:
            out.write(f"{args['n']}\n")
        return {"v": args["n"] * 10}


def test_tool_calls_spread_over_actors_keep_the_memo_job_wide(
    cluster: str, tmp_path: Path
) -> None:
    ruleset = loads(TOOLS_RULESET)
    facts = [("Ask", {"id": i, "n": i % 3}) for i in range(12)]
    calls = tmp_path / "calls"
    on_ray = api_run(ruleset, facts, tools={"lookup": Recorded(calls)},
                     executor=RayExecutor(2), now=None)
    serial = api_run(ruleset, facts, tools={"lookup": Recorded(tmp_path / "serial")}, now=None)
    assert sorted(calls.read_text().split()) == ["0", "1", "2"]  # one real call each
    assert on_ray.to_json() == serial.to_json()
    assert on_ray.trace.to_jsonl() == serial.trace.to_jsonl()
    assert on_ray.budget["max_tool_calls"]["used"] == 3


def test_max_tool_calls_stays_exact_across_actors(cluster: str, tmp_path: Path) -> None:
    ruleset = loads(TOOLS_RULESET.replace("ruleset calls", "ruleset calls\nroot \"r\" {\n"
                                          "  max_tool_calls = 4\n}", 1))
    facts = [("Ask", {"id": i, "n": i}) for i in range(10)]
    calls = tmp_path / "calls"
    on_ray = api_run(ruleset, facts, tools={"lookup": Recorded(calls)},
                     executor=RayExecutor(2), now=None)
    assert on_ray.status == "budget_exceeded"
    assert on_ray.budget["max_tool_calls"] == {"exceeded": True, "limit": 4, "used": 4}
    assert len(calls.read_text().split()) == 4


class Stuck:
    """``lookup`` that never answers for ``n == 0`` (an hour), at once otherwise."""

    def __call__(self, args: dict[str, Any]) -> dict[str, Any]:
        if args["n"] == 0:
            time.sleep(3600)
        return {"v": args["n"] * 10}


def test_an_agent_over_agent_timeout_is_cut_at_its_deadline(cluster: str) -> None:
    ruleset = loads(TOOLS_RULESET.replace("ruleset calls", "ruleset calls\nroot \"r\" {\n"
                                          "  agent_timeout = 1s\n}", 1)
                    + "fact Seen { key id: int }\nagent see { when Ask(id) emit Seen(id: id) }\n")
    facts = [("Ask", {"id": i, "n": i}) for i in range(3)]
    started = time.monotonic()
    result = api_run(ruleset, facts, tools={"lookup": Stuck()}, executor=RayExecutor(2),
                     now=None)
    assert time.monotonic() - started < 60  # not an hour
    assert result.status == "converged"
    assert result.facts("Got") == []  # the stuck agent contributed nothing
    assert [f["id"] for f in result.facts("Seen")] == [0, 1, 2]  # the other one ran
    (cut,) = result.trace.events_of(EffectDiscarded)
    assert cut.reason == "agent_timeout exceeded (limit 1s)"
    assert result.budget["agent_timeout"]["used"] == 1
    (stuck_call,) = [e for e in result.trace.events_of(ToolCall) if e.args == {"n": 0}]
    assert stuck_call.result is None and stuck_call.error == ABANDONED


def test_job_timeout_cuts_a_stuck_agent_at_the_jobs_deadline(cluster: str) -> None:
    ruleset = loads(TOOLS_RULESET.replace("ruleset calls", "ruleset calls\nroot \"r\" {\n"
                                          "  job_timeout = 2s\n}", 1))
    started = time.monotonic()
    result = api_run(ruleset, [("Ask", {"id": 0, "n": 0})], tools={"lookup": Stuck()},
                     executor=RayExecutor(2), now=None)
    assert time.monotonic() - started < 60  # not an hour
    assert result.status == "budget_exceeded"
    assert result.budget["job_timeout"]["exceeded"] is True


def test_a_tool_that_cannot_travel_is_named(cluster: str) -> None:
    lock = threading.Lock()

    def locked(args: dict[str, Any]) -> dict[str, Any]:
        with lock:
            return {"v": 1}

    with pytest.raises(ConvergeError, match="cannot ship tool 'lookup'"):
        api_run(loads(TOOLS_RULESET), [("Ask", {"id": 1, "n": 1})],
                tools={"lookup": locked}, executor=RayExecutor(1), now=None)


def test_workers_the_cluster_cannot_hold_are_refused(cluster: str) -> None:
    with pytest.raises(ConvergeError, match="more than 4 per CPU"):
        api_run(loads(TOOLS_RULESET), [], tools={"lookup": Recorded(Path("unused"))},
                executor=RayExecutor(9), now=None)


def test_options_are_checked_before_anything_runs() -> None:
    with pytest.raises(ConvergeError, match="no option 'adress'"):
        ray_executor(None, {"adress": "auto"})
    with pytest.raises(ConvergeError, match="HOST:PORT"):
        ray_executor(None, {"address": "headnode"})
    with pytest.raises(ConvergeError, match="whole number"):
        ray_executor(None, {"local-cpus": "two"})
    assert isinstance(ray_executor(2, {"address": "10.0.0.5:6379"}), RayExecutor)


def test_digits_python_counts_but_int_refuses_are_a_clear_error() -> None:
    # `local-cpus=²` and a port `6379²` passed str.isdigit and crashed in int()
    with pytest.raises(ConvergeError, match="whole number"):
        ray_executor(None, {"local-cpus": "\u00b2"})
    with pytest.raises(ConvergeError, match="HOST:PORT"):
        ray_executor(None, {"address": "10.0.0.5:6379\u00b2"})


def test_an_empty_address_is_refused_not_taken_for_a_local_ray() -> None:
    # `--executor-option address=$HEAD` with HEAD unset ran the job on a local Ray
    with pytest.raises(ConvergeError, match="ray address '': give auto"):
        ray_executor(None, {"address": ""})


def test_the_executor_is_registered_by_the_plugin() -> None:
    registries = load_registries(["converge_ray"])
    assert "ray" in registries.executors
    assert isinstance(registries.executor("ray", 2, {"address": "auto"}), RayExecutor)


def _converge(*args: str, env: dict[str, str] | None = None,
              timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "converge_rules.cli", "--plugin", "converge_ray", *args],
        capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})},
        cwd=ROOT,
    )


def test_cli_runs_on_the_cluster_at_an_address(cluster: str, tmp_path: Path) -> None:
    facts = ROOT / "rulesets" / "pricing" / "input.jsonl"
    ruleset = ROOT / "rulesets" / "pricing" / "pricing.cvg"
    serial = _converge("run", str(ruleset), "-f", str(facts), "--format", "json",
                       "--now", "2026-01-01T00:00:00Z", "--trace", str(tmp_path / "s.jsonl"))
    on_ray = _converge("run", str(ruleset), "-f", str(facts), "--format", "json",
                       "--now", "2026-01-01T00:00:00Z", "--trace", str(tmp_path / "r.jsonl"),
                       "--executor", "ray", "--workers", "2",
                       "--executor-option", f"address={cluster}")
    assert on_ray.returncode == serial.returncode, on_ray.stderr
    assert on_ray.stdout == serial.stdout
    assert (tmp_path / "r.jsonl").read_bytes() == (tmp_path / "s.jsonl").read_bytes()


def test_cli_says_when_no_cluster_answers_at_the_address() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ruleset = ROOT / "rulesets" / "counter" / "counter.cvg"
    done = _converge("run", str(ruleset), "--executor", "ray",
                     "--executor-option", f"address=127.0.0.1:{port}", timeout=60)
    assert done.returncode == 2
    assert f"could not reach the Ray head node at 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("server", ["silent", "http"])
def test_cli_says_when_what_answers_at_the_address_is_not_ray(server: str) -> None:
    # a wrong port where something listens (the dashboard's, an HTTP server, a socket
    # that never answers): ray.init retried it for minutes, with Ray's log lines
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        port = s.getsockname()[1]
        stop = threading.Event()

        def answer() -> None:  # an HTTP/1 server: reads a request, replies 400
            s.settimeout(0.2)
            while not stop.is_set():
                try:
                    conn, _ = s.accept()
                except OSError:
                    continue
                with conn:
                    conn.recv(1024)
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

        thread = threading.Thread(target=answer, daemon=True)
        if server == "http":
            thread.start()
        try:
            started = time.monotonic()
            done = _converge("run", str(ROOT / "rulesets" / "counter" / "counter.cvg"),
                             "--executor", "ray", "--executor-option",
                             f"address=127.0.0.1:{port}", timeout=120)
            elapsed = time.monotonic() - started
        finally:
            stop.set()
            if thread.is_alive():
                thread.join()
    assert done.returncode == 2, done.stderr
    assert f"could not join the Ray cluster at 127.0.0.1:{port}: something listens there, " \
        "but it is not a Ray head node's GCS" in done.stderr
    assert "Traceback" not in done.stderr
    assert elapsed < 60


def test_cli_refuses_an_option_the_executor_lacks() -> None:
    ruleset = ROOT / "rulesets" / "counter" / "counter.cvg"
    done = _converge("run", str(ruleset), "--executor", "ray",
                     "--executor-option", "workers=3", timeout=60)
    assert done.returncode == 2
    assert "the ray executor has no option 'workers'" in done.stderr
    assert "Traceback" not in done.stderr


def _raylets() -> set[int]:
    pids = set()
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "comm").read_text().strip() == "raylet":
                pids.add(int(entry.name))
        except OSError:
            continue  # gone meanwhile
    return pids


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="counts raylets through /proc")
def test_cli_starts_a_local_ray_for_the_job_and_stops_it(cluster: str) -> None:
    before = _raylets()
    ruleset = ROOT / "rulesets" / "counter" / "counter.cvg"
    facts = '{"Start": {"id": "a"}}\n{"Count": {"id": "a", "n": 0}}\n'
    done = subprocess.run(
        [sys.executable, "-m", "converge_rules.cli", "--plugin", "converge_ray", "run",
         str(ruleset), "-f", "/dev/stdin", "--format", "json", "--executor", "ray",
         "--executor-option", "local-cpus=1"],
        input=facts, capture_output=True, text=True, timeout=180, cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "CONVERGE_RAY_ADDRESS"})
    assert done.returncode == 0, done.stderr
    assert '"n": 10' in done.stdout
    assert "Traceback" not in done.stderr
    assert _raylets() == before  # the job's own Ray is gone with it


LONG_COUNTER = """\
ruleset long
root "count" {
  max_cycles = 100000
}
fact Count { key id: str, n: int }
agent step { when Count(id, n) where n < 90000 emit Count(id: id, n: n + 1) }
policy Count { resolve by latest }
"""


def test_sigterm_stops_a_job_on_ray_after_the_cycle_as_on_serial(tmp_path: Path) -> None:
    # ray.init made SIGTERM sys.exit(15): the job failed mid-cycle as "a bug in the
    # executor", exit 2, its stored job aborted, instead of stopping after the cycle
    import sqlite3

    ruleset = tmp_path / "long.cvg"
    ruleset.write_text(LONG_COUNTER)
    facts = tmp_path / "in.jsonl"
    facts.write_text('{"Count": {"id": "a", "n": 0}}\n')
    db = tmp_path / "run.db"
    job = subprocess.Popen(
        [sys.executable, "-m", "converge_rules.cli", "--plugin", "converge_ray", "run",
         str(ruleset), "-f", str(facts), "--executor", "ray", "--executor-option",
         "local-cpus=1", "--store", str(db)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=ROOT, env={k: v for k, v in os.environ.items() if k != "CONVERGE_RAY_ADDRESS"})
    try:
        deadline = time.monotonic() + 150
        cycles = 0
        while cycles < 3 and time.monotonic() < deadline and job.poll() is None:
            time.sleep(0.2)
            with contextlib.suppress(sqlite3.Error), contextlib.closing(
                    sqlite3.connect(db)) as conn:
                cycles = conn.execute("SELECT count(*) FROM cycles").fetchone()[0]
        assert cycles >= 3, job.communicate(timeout=60)
        job.send_signal(signal.SIGTERM)
        _, stderr = job.communicate(timeout=120)
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
    assert "bug in the executor" not in stderr
    assert "Traceback" not in stderr
    assert job.returncode == 128 + signal.SIGTERM, stderr
    with contextlib.closing(sqlite3.connect(db)) as conn:
        (status,) = conn.execute("SELECT status FROM jobs").fetchone()
    assert status == "interrupted"


def test_a_job_that_cannot_start_stops_the_ray_it_started(cluster: str) -> None:
    # the engine closes only an executor that started: the local Ray started for the
    # job must not outlive a start that failed (here: more actors than the CPUs hold)
    code = """if True:
        from converge_rules import loads, run
        from converge_rules.errors import ConvergeError
        from converge_ray.executor import RayExecutor
        import ray
        try:
            run(loads("ruleset r\\nfact A { x: int }\\n"), [], now=None,
                executor=RayExecutor(9, local_cpus=1))
        except ConvergeError as exc:
            print("refused:", exc)
        print("ray left running:", ray.is_initialized())
    """
    before = _raylets()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=180, cwd=ROOT,
                          env={k: v for k, v in os.environ.items()
                               if k != "CONVERGE_RAY_ADDRESS"})
    assert "refused: the ray executor starts one replica actor per --workers" in done.stdout, (
        done.stderr)
    assert "ray left running: False" in done.stdout
    assert _raylets() == before


STEPS_RULESET = """ruleset steps
uses tool lookup
fact Step { key id: int, n: int }
fact Back { key id: int, v: int }
agent step { when Step(id, n) where n < 4 call lookup(n: n) as r emit Step(id: id, n: r.v) }
agent back tier 2 { when Step(id, n) where n == 4 call lookup(n: 0) as r emit Back(id: id, v: r.v) }
policy Step { resolve by latest }
"""


class Counted:
    """``lookup`` answering ``n + 1``, each real call appended to a file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, args: dict[str, Any]) -> dict[str, Any]:
        with open(self.path, "a") as out:
            out.write(f"{args['n']}\n")
        return {"v": args["n"] + 1}


@pytest.mark.parametrize("how", ["checkpoint", "re-executed"])
def test_a_job_resumed_on_ray_asks_no_tool_again(cluster: str, tmp_path: Path,
                                                 how: str) -> None:
    # found by review: the ledger started empty, so a resumed job on Ray called the
    # tools again for the answers its store recorded (re-executed) or its memo held
    # (restored from a checkpoint: tier 2 asks lookup(n: 0) again, answered in cycle 1)
    import sqlite3

    from converge_rules import api
    from converge_rules.store.sqlite import SqliteStore

    ruleset = loads(STEPS_RULESET)
    facts = [("Step", {"id": i, "n": 0}) for i in range(3)]
    whole = api_run(ruleset, facts, tools={"lookup": Counted(tmp_path / "whole")},
                    now=None)
    assert sorted((tmp_path / "whole").read_text().split()) == ["0", "1", "2", "3"]
    calls, db = tmp_path / "calls", tmp_path / "run.db"
    steps = iter([False] * 2)
    first = api_run(ruleset, facts, tools={"lookup": Counted(calls)}, now=None, store=db,
                    stop=lambda: next(steps, True))
    assert first.status == "interrupted" and first.cycles == 2
    if how == "re-executed":
        with sqlite3.connect(db) as conn:
            conn.execute("DELETE FROM checkpoints")
    resumed = api.resume(db, ruleset=ruleset, tools={"lookup": Counted(calls)},
                         executor=RayExecutor(2))
    assert resumed.resumed_from == (2 if how == "checkpoint" else None)
    assert sorted(calls.read_text().split()) == ["0", "1", "2", "3"]  # each paid once
    got = json.loads(resumed.to_json())
    got.pop("integrity")  # (a stored job's result has it)
    assert got == json.loads(whole.to_json())
    assert resumed.budget["max_tool_calls"]["used"] == 4
    with SqliteStore(db) as store:
        stored = "".join(f"{line}\n" for line in store.trace_lines(1))
    assert stored == whole.trace.to_jsonl()
