"""Resuming a stored job: after an interruption, a crash (SIGKILL at chosen and random
points), SIGTERM or job_timeout, ``converge run --resume`` gives the result and trace
of an uninterrupted run byte for byte, and never pays again for a tool answer its
committed trace holds. A job that cannot be resumed is refused with the reason."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import converge_rules
from converge_rules import api
from converge_rules.cli import main
from converge_rules.errors import StoreError
from converge_rules.plugins import load_registries
from converge_rules.store.sqlite import SqliteStore

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PRICING = REPO / "rulesets" / "pricing" / "pricing.cvg"
PRICING_INPUT = REPO / "rulesets" / "pricing" / "input.jsonl"
NOW = "2026-12-06T09:00:00Z"
JOB_TIME = datetime(2026, 12, 6, 9, tzinfo=UTC)

BUMPS = """\
ruleset bumps
uses tool bump
root "bump counters" {
  max_cycles = 100
  max_tool_calls = 10_000
}
fact Count { key id: str, n: int }
fact Seen { id: str, n: int }
fact Stamp { id: str, at: datetime }
agent step {
  when Count(id, n) where n < LIMIT
  call bump(id: id, n: n) as r
  emit Count(id: id, n: r.next)
}
agent note { when Count(id, n) emit Seen(id: id, n: n) }
agent stamp { when Count(id, n) where n == LIMIT emit Stamp(id: id, at: now()) }
policy Count { resolve by latest }
"""

COUNTER = """\
ruleset counter
fact Count { key id: str, n: int }
agent step { when Count(id, n) where n < 9 emit Count(id: id, n: n + 1) }
policy Count { resolve by latest }
"""


def bumps(tmp: Path, limit: int = 12) -> tuple[Path, Path]:
    ruleset = tmp / "bumps.cvg"
    ruleset.write_text(BUMPS.replace("LIMIT", str(limit)))
    facts = tmp / "in.jsonl"
    facts.write_text("".join(json.dumps({"Count": {"id": k, "n": n}}) + "\n"
                             for k, n in (("a", 0), ("b", 4), ("c", 9), ("d", 2))))
    return ruleset, facts


def env(tmp: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path]),
            "BUMP_CALLS": str(tmp / "calls.txt"), **extra}


def converge(tmp: Path, *args: str | Path, **extra: str) -> subprocess.CompletedProcess[str]:
    """``converge --plugin bump_tool ARGS`` in a process of its own, in ``tmp``."""
    return subprocess.run(
        [sys.executable, "-m", "converge_rules.cli", "--plugin", "bump_tool",
         *map(str, args)], cwd=tmp, env=env(tmp, **extra), capture_output=True, text=True,
        timeout=300)


def calls(tmp: Path) -> list[tuple[str, int, int]]:
    path = tmp / "calls.txt"
    if not path.exists():
        return []
    return [(k, int(n), int(pid)) for k, n, pid in
            (line.split() for line in path.read_text().splitlines())]


def stored_answers(db: Path) -> set[tuple[str, int]]:
    """The (id, n) of every bump call the store's committed trace holds."""
    with SqliteStore(db) as store:
        job = store.job(None)
        return {(e["args"]["id"], e["args"]["n"]) for e in map(json.loads,
                                                                store.trace_lines(job.id))
                if e.get("event") == "tool_call"}


def has_job(db: Path) -> bool:
    if not db.exists():
        return False
    with SqliteStore(db) as store:
        return bool(store.jobs())


def job_status(db: Path) -> str:
    with SqliteStore(db) as store:
        return store.job(None).status


def committed_cycles(db: Path) -> int:
    with SqliteStore(db) as store:
        return len(store.cycle_sizes(store.job(None).id))


def exported(tmp: Path, db: Path) -> str:
    out = converge(tmp, "trace", "export", db, "-o", tmp / "exported.jsonl")
    assert out.returncode == 0, out.stderr
    return (tmp / "exported.jsonl").read_text()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, int]:
    """The result (JSON), trace and number of tool calls of the job run in one go."""
    tmp = tmp_path_factory.mktemp("whole")
    ruleset, facts = bumps(tmp)
    out = converge(tmp, "run", ruleset, "-f", facts, "--now", NOW, "--format", "json",
                   "--trace", tmp / "trace.jsonl")
    assert out.returncode == 0, out.stderr
    return out.stdout, (tmp / "trace.jsonl").read_text(), len(calls(tmp))


# --------------------------------------------------------------------- crashes


def crash_and_resume(tmp: Path, kills: list[dict[str, str]]
                     ) -> tuple[str | None, list[int]]:
    """Run the job, killed per ``kills`` (each the environment of one attempt: a crash
    point, or ``KILL_AFTER`` seconds), resuming after each kill; then resume to the
    end. Checks after every kill that no call whose answer was committed is made
    again. The final result and the exit codes of the attempts; the result is None
    when an attempt was killed after the job had ended (its status committed, the
    result not yet printed): a finished job is not resumed, its trace is what is left
    to compare."""
    ruleset, facts = bumps(tmp)
    db = tmp / "run.db"
    codes = []
    errors: list[str] = []
    for i, extra in enumerate([*kills, {}]):
        started = has_job(db)  # (not when the first attempt died before recording it)
        if started and job_status(db) == "converged":  # killed on its way out
            return None, codes
        restorable = started and committed_cycles(db) > 0
        args: list[str | Path] = (["run", "--resume", db] if started else
                                  ["run", ruleset, "-f", facts, "--now", NOW, "--store", db])
        paid_before = len(calls(tmp))
        committed = stored_answers(db) if started else set()
        after = extra.pop("KILL_AFTER", None)
        if after is None:
            out = converge(tmp, *args, "--format", "json", **extra)
            code, stdout, stderr = out.returncode, out.stdout, out.stderr
        else:
            proc = subprocess.Popen(
                [sys.executable, "-m", "converge_rules.cli", "--plugin", "bump_tool",
                 *map(str, args), "--format", "json"], cwd=tmp, env=env(tmp, **extra),
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            time.sleep(float(after))
            proc.kill()
            stdout, stderr = proc.communicate(timeout=120)
            code = proc.returncode
        codes.append(code)
        if code not in (0, -signal.SIGKILL):  # an attempt that failed on its own
            errors.append(f"attempt {i} ({' '.join(map(str, args))}) exit {code}:\n"
                          f"{stderr[-2000:]}")
        if restorable and code == 0:  # the state restored, no committed cycle run again
            assert "resumed from its checkpoint after cycle" in stderr, stderr
        repaid = [(k, n) for k, n, _ in calls(tmp)[paid_before:] if (k, n) in committed]
        assert not repaid, f"attempt {i} called again for answers it had: {repaid}"
        if code == 0:
            return stdout, codes
    raise AssertionError(f"never finished: exit codes {codes}\n" + "\n".join(errors))


@pytest.mark.parametrize("point", ["cycle", "merge", "commit"])
def test_a_job_killed_at_each_point_resumes_to_the_uninterrupted_result(
    tmp_path: Path, point: str, uninterrupted: tuple[str, str, int],
) -> None:
    result, trace, _ = uninterrupted
    # cycle 1 twice: the second attempt dies in the first cycle it runs live (for
    # `commit`, inside the transaction that also reopens the job)
    kills = [{"CONVERGE_CRASH_AT": f"{point}:{cycle}"} for cycle in (1, 1, 4, 5, 9)]
    stdout, codes = crash_and_resume(tmp_path, kills)
    assert codes[:-1] == [-signal.SIGKILL] * 5  # each attempt really died at its point
    assert stdout == result
    assert exported(tmp_path, tmp_path / "run.db") == trace
    # a crash after the tools answered and before the commit re-pays that cycle's calls
    # (and only those): cycle 1's calls were paid by the three attempts that ran it,
    # every other call at most twice; the rest came from the store
    paid = Counter((k, n) for k, n, _ in calls(tmp_path))
    first = {("a", 0), ("b", 4), ("c", 9), ("d", 2)}
    assert all(paid[k] == 3 for k in first)
    assert all(times <= 2 for k, times in paid.items() if k not in first)


def test_a_job_killed_at_random_times_many_times_resumes_byte_for_byte(
    tmp_path: Path, uninterrupted: tuple[str, str, int],
) -> None:
    result, trace, whole_calls = uninterrupted
    rng = random.Random(20261206)
    # slow tool calls: each attempt is killed somewhere in a cycle, a merge or a commit
    kills = [{"KILL_AFTER": f"{rng.uniform(0.5, 3.0):.2f}", "BUMP_SLEEP": "0.05"}
             for _ in range(8)]
    stdout, codes = crash_and_resume(tmp_path, kills)
    print("exit codes of the attempts:", codes)
    # (None: the last kill came after the job's end, before its result was printed; the
    # trace, which holds every fact the result shows, is compared below)
    assert stdout is None or stdout == result
    assert job_status(tmp_path / "run.db") == "converged"
    assert exported(tmp_path, tmp_path / "run.db") == trace
    assert len(calls(tmp_path)) >= whole_calls


def test_a_crash_before_the_first_cycle_commits_resumes(tmp_path: Path,
                                                        uninterrupted: tuple[str, str, int]
                                                        ) -> None:
    result, trace, _ = uninterrupted
    stdout, codes = crash_and_resume(tmp_path, [{"CONVERGE_CRASH_AT": "commit:0"}])
    assert codes == [-signal.SIGKILL, 0]
    assert stdout == result
    assert exported(tmp_path, tmp_path / "run.db") == trace


LONG_COUNTER = """\
ruleset long
root "count" {
  max_cycles = 1000
}
fact Count { key id: str, n: int }
fact Seen { id: str, n: int }
agent step { when Count(id, n) where n < 300 emit Count(id: id, n: n + 1) }
agent note { when Count(id, n) where n % 50 == 0 emit Seen(id: id, n: n) }
policy Count { resolve by latest }
"""


@pytest.mark.parametrize("store", ["run.db", "sqlite:///run.db?group=8"])
def test_a_job_of_grouped_cycles_killed_anywhere_resumes_to_the_uninterrupted_result(
    tmp_path: Path, store: str,
) -> None:
    # no tool: cycles wait for a group's transaction, so a crash loses the cycles
    # waiting with the one in flight; each resume re-executes them to the same trace
    ruleset = tmp_path / "long.cvg"
    ruleset.write_text(LONG_COUNTER)
    facts = tmp_path / "in.jsonl"
    facts.write_text('{"Count": {"id": "a", "n": 0}}\n{"Count": {"id": "b", "n": 120}}\n')
    whole = converge(tmp_path, "run", ruleset, "-f", facts, "--format", "json",
                     "--trace", tmp_path / "trace.jsonl")
    assert whole.returncode == 0, whole.stderr
    db = tmp_path / "run.db"
    codes = []
    for point in ("commit:70", "merge:101", "cycle:205", "commit:230", "commit:299", ""):
        args: list[str | Path] = (["run", "--resume", store] if has_job(db) else
                                  ["run", ruleset, "-f", facts, "--store", store])
        out = converge(tmp_path, *args, "--format", "json", CONVERGE_CRASH_AT=point)
        codes.append(out.returncode)
    assert codes == [-signal.SIGKILL] * 5 + [0], codes
    assert out.stdout == whole.stdout
    assert exported(tmp_path, db) == (tmp_path / "trace.jsonl").read_text()


def test_a_cycle_that_called_a_tool_is_committed_when_it_ends(tmp_path: Path) -> None:
    ruleset, facts = bumps(tmp_path)
    loaded = converge_rules.load(ruleset, plugins=load_registries(["bump_tool"]))
    db = tmp_path / "run.db"
    seen: list[tuple[int, int | None]] = []

    def progress(p: Any) -> None:
        with sqlite3.connect(db) as other:
            seen.append((p.cycle, other.execute("SELECT max(cycle) FROM cycles"
                                                ).fetchone()[0]))

    with SqliteStore(db, group=1000) as store:
        store.group_seconds = 3600.0  # only a tool call commits before the job ends
        result = api.run(loaded, api.read_facts(loaded, facts), store=store, now=JOB_TIME,
                         progress=progress)
    calling = {e.cycle for e in result.trace.events() if e.event == "tool_call"}
    assert calling == set(range(1, 13))  # a calls from 0 until it reaches 12
    # each calling cycle is committed as it ends, with the cycles before it; the
    # cycles after the last call wait for the job's end
    assert seen == [(c, min(c, 12)) for c in range(1, result.cycles + 1)]
    assert result.cycles == 13  # cycle 13 (no call) waited, committed with the status


# --------------------------------------------------------------------- signals


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_ends_the_job_interrupted_and_it_resumes(
    tmp_path: Path, signum: int, uninterrupted: tuple[str, str, int],
) -> None:
    result, trace, _ = uninterrupted
    ruleset, facts = bumps(tmp_path)
    db = tmp_path / "run.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "converge_rules.cli", "--plugin", "bump_tool", "run",
         str(ruleset), "-f", str(facts), "--now", NOW, "--store", str(db), "--format",
         "json"], cwd=tmp_path, env=env(tmp_path, BUMP_SLEEP="0.1"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while len(calls(tmp_path)) < 6 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, stderr
    assert json.loads(stdout)["status"] == "interrupted"
    with SqliteStore(db) as store:
        job = store.job(None)
        assert job.status == "interrupted"
        assert 0 < job.cycles < 13
    out = converge(tmp_path, "run", "--resume", db, "--format", "json")
    assert out.returncode == 0, out.stderr
    assert out.stdout == result
    assert exported(tmp_path, db) == trace
    assert len(calls(tmp_path)) == len(set(calls(tmp_path)))  # nobody paid twice


# --------------------------------------------------------------------- the API


def assert_same_result(resumed: Any, whole: Any) -> None:
    """The resumed job's result is the uninterrupted one's; it wrote its trace (the
    store), so it also carries the integrity proof, the one the whole run's trace has."""
    got = json.loads(resumed.to_json())
    assert got.pop("integrity") == whole.integrity()
    expected = json.loads(whole.to_json())
    expected.pop("integrity", None)  # there when the whole run wrote its trace too
    assert got == expected


def test_api_resume_of_an_interrupted_job_equals_the_uninterrupted_run(
    tmp_path: Path,
) -> None:
    loaded = converge_rules.load(PRICING)
    facts = api.read_facts(loaded, PRICING_INPUT)
    # written too: both results then carry the integrity proof, which must agree
    whole = api.run(loaded, facts, now=JOB_TIME, trace=tmp_path / "whole.jsonl")
    asked = iter([False, True])
    db = tmp_path / "run.db"
    first = api.run(loaded, facts, store=db, now=JOB_TIME, stop=lambda: next(asked, True))
    assert (first.status, first.cycles) == ("interrupted", 1)
    resumed = api.resume(db, executor="threads")  # any executor gives the same result
    assert_same_result(resumed, whole)
    with SqliteStore(db) as store:
        job = store.job(None)
        assert job.status == "converged"
        assert "".join(f"{line}\n" for line in store.trace_lines(job.id)) == (
            whole.trace.to_jsonl())
        assert [c for c, _, _ in store.cycle_sizes(job.id)] == [0, 1, 2]


@pytest.mark.parametrize("executor", ["serial", "threads", "asyncio", "processes"])
def test_resume_reuses_the_recorded_answers_without_calling_the_tool(
    tmp_path: Path, executor: str,
) -> None:
    ruleset, facts = bumps(tmp_path)
    loaded = converge_rules.load(ruleset, plugins=load_registries(
        ["bump_tool"]))
    inputs = api.read_facts(loaded, facts)
    whole = api.run(loaded, inputs, now=JOB_TIME, trace=tmp_path / "whole.jsonl")
    asked: list[tuple[str, int]] = []

    def bump(args: Any) -> dict[str, Any]:
        asked.append((args["id"], args["n"]))
        return {"next": args["n"] + 1}

    db = tmp_path / "run.db"
    steps = iter([False] * 4)
    api.run(loaded, inputs, store=db, now=JOB_TIME, stop=lambda: next(steps, True))
    committed = stored_answers(db)
    assert len(committed) == 15  # 4 cycles: a, b and d called 4 times, c 3 (9 to 12)
    resumed = api.resume(db, ruleset=loaded, executor=executor, tools={"bump": bump})
    assert_same_result(resumed, whole)
    assert asked and not set(asked) & committed  # only the answers not stored yet
    assert len(asked) == len(set(asked))


def test_resume_reuses_the_time_the_job_started_with(tmp_path: Path) -> None:
    ruleset, facts = bumps(tmp_path)
    loaded = converge_rules.load(ruleset, plugins=load_registries(
        ["bump_tool"]))
    db = tmp_path / "run.db"
    steps = iter([False, False, True])
    api.run(loaded, api.read_facts(loaded, facts), store=db,
            stop=lambda: next(steps, True))  # the clock's time, read at the start
    with SqliteStore(db) as store:
        started = json.loads(next(store.trace_lines(1)))
    assert started["event"] == "job_time"
    time.sleep(0.01)
    resumed = api.resume(db, ruleset=loaded)
    assert resumed.status == "converged"
    stamps = {row["at"] for row in resumed.to_dict()["facts"]["Stamp"]}
    assert stamps == {started["now"]}


def run_counter(tmp: Path, stop_after: int, query: str = "") -> tuple[Path, Path]:
    ruleset = tmp / "counter.cvg"
    ruleset.write_text(COUNTER)
    db = tmp / "run.db"
    loaded = converge_rules.load(ruleset)
    n = iter(range(stop_after, -1, -1))
    api.run(loaded, [("Count", {"id": "a", "n": 0})], store=f"{db}{query}", now=JOB_TIME,
            stop=lambda: next(n, 0) == 0)
    return ruleset, db


def test_a_changed_ruleset_is_refused_and_the_job_left_as_it_was(tmp_path: Path) -> None:
    ruleset, db = run_counter(tmp_path, 3)
    ruleset.write_text(COUNTER.replace("n < 9", "n < 7"))
    rows = "SELECT count(*), coalesce(sum(lines), 0) FROM trace_rows"
    before = sqlite3.connect(db).execute(rows).fetchone()
    with pytest.raises(StoreError, match="ran another version of the ruleset"):
        api.resume(db)
    out = CliRunner().invoke(main, ["run", "--resume", str(db)])
    assert out.exit_code == 2
    assert "ran another version of the ruleset" in out.output
    assert "Traceback" not in out.output
    after = sqlite3.connect(db).execute(rows).fetchone()
    assert before == after
    with SqliteStore(db) as store:
        assert store.job(None).status == "interrupted"


def test_another_ruleset_with_more_facts_is_refused_naming_both_rulesets(
    tmp_path: Path,
) -> None:
    # found: the facts were read against the other ruleset first, so the error named
    # their types as unknown; and without facts it said the job's ruleset had changed
    ruleset, db = run_counter(tmp_path, 3)
    other = tmp_path / "other.cvg"
    other.write_text("ruleset other\nfact P { key k: str }\n")
    more = tmp_path / "more.jsonl"
    more.write_text('{"Count": {"id": "b", "n": 0}}\n')
    rows = "SELECT count(*), coalesce(sum(lines), 0) FROM trace_rows"
    before = sqlite3.connect(db).execute(rows).fetchone()
    for facts in (["--facts", str(more)], []):
        out = CliRunner().invoke(main, ["run", str(other), "--resume", str(db), *facts])
        assert out.exit_code == 2, out.output
        assert (f"job 1 of {db} ran the ruleset counter ({ruleset}), not other "
                f"({other}): a resumed job must run the ruleset it started with"
                in " ".join(out.output.split())), out.output
        assert "Traceback" not in out.output
    with pytest.raises(StoreError, match=r"ran the ruleset counter .*, not other"):
        api.resume(db, ruleset=converge_rules.load(other), facts=[("Count", {"id": "b"})])
    assert sqlite3.connect(db).execute(rows).fetchone() == before
    with SqliteStore(db) as store:
        assert store.job(None).status == "interrupted"


def test_a_re_execution_that_differs_from_the_store_is_refused_naming_the_cycle(
    tmp_path: Path,
) -> None:
    # one cycle a transaction: a trace row each (a row holds a transaction's cycles)
    _, db = run_counter(tmp_path, 4, "?group=1")
    with sqlite3.connect(db) as conn:  # as if the engine now merged differently
        # (the trace rows hold the facts' values as JSON lists, ["a",2], or, for a
        # keyed update in place, as its lines' text, "n":2 escaped in the row's JSON)
        conn.execute("UPDATE trace_rows SET data = replace(replace(data, ?, ?), ?, ?) "
                     "WHERE cycle = 2", ('"a",2]', '"a",7]', r'\"n\":2}', r'\"n\":7}'))
        # (a row of format rawm: the same values in its msgpack bytes, ["a",2])
        (packed,) = conn.execute("SELECT packed FROM trace_rows WHERE cycle = 2 AND "
                                 "kind = 'rawm'").fetchone()
        edited = packed.replace(b"\x92\xa1a\x02", b"\x92\xa1a\x07")
        assert edited != packed
        conn.execute("UPDATE trace_rows SET packed = ? WHERE cycle = 2 AND kind = 'rawm'",
                     (edited,))
        # stored without checkpoints (an older converge): the resume re-executes
        conn.execute("DELETE FROM checkpoints")
    with pytest.raises(StoreError, match=r"differs from what it stored in cycle 2: line"):
        api.resume(db)
    with SqliteStore(db) as store:
        assert store.job(None).status == "interrupted"  # untouched


def test_a_converged_job_cannot_be_resumed(tmp_path: Path) -> None:
    _, db = run_counter(tmp_path, 100)
    with SqliteStore(db) as store:
        assert store.job(1).status == "converged"
    out = CliRunner().invoke(main, ["run", "--resume", str(db), "--job", "1"])
    assert out.exit_code == 2
    assert "job 1 of" in out.output and "cannot be resumed: it converged" in out.output
    out = CliRunner().invoke(main, ["run", "--resume", str(db)])
    assert out.exit_code == 2
    assert "holds no job to resume (jobs: 1 (converged))" in out.output


def test_a_job_running_in_a_live_process_is_not_resumed(tmp_path: Path) -> None:
    _, db = run_counter(tmp_path, 2)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE jobs SET status = 'running'")
            conn.execute("UPDATE job_specs SET pid = ?", (sleeper.pid,))
        with pytest.raises(StoreError, match=f"is running now in process {sleeper.pid}"):
            api.resume(db)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert api.resume(db).status == "converged"  # its process is gone now


def test_resume_options_that_a_stored_job_cannot_take_are_usage_errors(
    tmp_path: Path,
) -> None:
    ruleset, db = run_counter(tmp_path, 2)
    # (--facts is more input for the job: tests/store/test_resume_facts.py)
    for extra, said in ((["--now", NOW], "--now cannot be given"),
                        (["--store", str(tmp_path / "x.db")], "--store cannot be given")):
        out = CliRunner().invoke(main, ["run", "--resume", str(db), *extra])
        assert out.exit_code == 2, out.output
        assert said in out.output
    out = CliRunner().invoke(main, ["run", str(ruleset), "--job", "1"])
    assert out.exit_code == 2
    assert "give --resume STORE too" in out.output
    out = CliRunner().invoke(main, ["run"])
    assert out.exit_code == 2
    assert "missing the RULESET" in out.output


def test_a_moved_ruleset_is_given_on_the_command_line(tmp_path: Path) -> None:
    ruleset, db = run_counter(tmp_path, 2)
    moved = tmp_path / "moved.cvg"
    ruleset.rename(moved)
    out = CliRunner().invoke(main, ["run", "--resume", str(db)])
    assert out.exit_code == 2
    assert "which is not there now; give its path" in out.output
    out = CliRunner().invoke(main, ["run", str(moved), "--resume", str(db), "--format",
                                    "json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["facts"]["Count"] == [{"id": "a", "n": 9}]
    assert "resumed from its checkpoint after cycle 2" in out.stderr


def test_a_job_out_of_job_timeout_resumes_with_a_new_budget(tmp_path: Path) -> None:
    ruleset, facts = bumps(tmp_path)
    ruleset.write_text(ruleset.read_text().replace("max_tool_calls = 10_000",
                                                   "max_tool_calls = 10_000\n  "
                                                   "job_timeout = 1s"))
    whole = converge(tmp_path, "run", ruleset, "-f", facts, "--now", NOW, "--format",
                     "json", "--trace", tmp_path / "whole.jsonl")
    assert whole.returncode == 0, whole.stderr
    db = tmp_path / "run.db"
    out = converge(tmp_path, "run", ruleset, "-f", facts, "--now", NOW, "--store", db,
                   BUMP_SLEEP="0.15")
    assert out.returncode == 1
    with SqliteStore(db) as store:
        job = store.job(None)
        assert job.status == "budget_exceeded" and job.detail.startswith("job_timeout")
    out = converge(tmp_path, "run", "--resume", db, "--format", "json")
    assert out.returncode == 0, out.stderr
    assert out.stdout == whole.stdout
    assert exported(tmp_path, db) == (tmp_path / "whole.jsonl").read_text()


def test_stored_inputs_validate_back_to_the_same_values() -> None:
    from converge_rules.engine.inputs import validate_pairs
    from converge_rules.store.resume import inputs_text

    loaded = converge_rules.loads(
        "ruleset kinds\nenum E { x, y }\n"
        "fact K { key id: str, n: int, at: date, when: datetime, d: duration, e: E, "
        "f: float, tags: list[str] = [] }\n")
    facts = validate_pairs(loaded.program, [
        ("K", {"id": "é\u2028", "n": -2**63, "at": "2026-01-02", "when": "2026-12-06T09:00:00Z",
               "d": "PT1H30M", "e": "y", "f": 0.1, "tags": ["a", "b"]}),
        ("K", {"id": "b", "n": 1, "at": "2026-01-03", "when": "2026-12-06T10:00:00.5+02:00",
               "d": "P3D", "e": "x", "f": 1e300}),
    ])
    text = inputs_text(loaded.program, facts)
    back = validate_pairs(loaded.program, [(t, f) for t, f in json.loads(text)])
    assert back == facts


def test_a_job_started_with_a_relative_ruleset_path_resumes(tmp_path: Path) -> None:
    """`converge run bumps.cvg` (a path relative to the working directory, as the README
    writes them) killed, then `converge run --resume` (which loads the ruleset from the
    absolute path the store records) was refused: "ran another version of the
    ruleset", the ruleset unchanged — its digest took the code's span comments
    (`bumps.cvg:3:1`) out for one path form and not the other."""
    ruleset, facts = bumps(tmp_path)
    db = tmp_path / "run.db"
    killed = converge(tmp_path, "run", ruleset.name, "--facts", facts.name, "--store",
                      db.name, CONVERGE_CRASH_AT="merge:2")
    assert killed.returncode != 0 and has_job(db)
    done = converge(tmp_path, "run", "--resume", db.name, "--format", "json")
    assert "another version" not in done.stderr
    assert done.returncode == 0, done.stderr
    whole = converge(tmp_path, "run", str(ruleset), "--facts", str(facts), "--format",
                     "json")
    assert (json.loads(done.stdout)["facts"]["Count"]
            == json.loads(whole.stdout)["facts"]["Count"])


def test_a_job_started_with_a_relative_path_resumes_from_another_directory(
        tmp_path: Path) -> None:
    # found by review: `converge run bumps.cvg …` then `converge run --resume` was
    # refused as "another version of the ruleset" — the generated code names its file
    # relative to the working directory, and the digest kept that name; a ruleset
    # with a prune (its code names its file too) was refused even from the same place
    bumps(tmp_path)
    ruleset = tmp_path / "bumps.cvg"
    ruleset.write_text(ruleset.read_text() + "prune Seen when age >= 100\n")
    db = tmp_path / "run.db"
    out = converge(tmp_path, "run", "bumps.cvg", "-f", "in.jsonl", "--now", NOW,
                   "--store", db, CONVERGE_CRASH_AT="merge:4")
    assert out.returncode == -signal.SIGKILL
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = converge(elsewhere, "run", "--resume", db, "--format", "json")
    assert out.returncode == 0, out.stderr
    whole = converge(tmp_path, "run", "bumps.cvg", "-f", "in.jsonl", "--now", NOW,
                     "--format", "json", "--trace", tmp_path / "whole.jsonl")
    assert out.stdout == whole.stdout
    assert exported(tmp_path, db) == (tmp_path / "whole.jsonl").read_text()


NOTES = """\
ruleset notes
uses tool bump
uses tool knowledge_find
root "notes" { max_cycles = 50 }
fact Count { key id: str, n: int }
fact Note { key id: str, key n: int, body: blob }
fact Recall { key id: str, key n: int, seen: int }
agent step {
  when Count(id, n) where n < 8
  call bump(id: id, n: n) as r
  emit Count(id: id, n: r.next)
  emit lasting Note(id: id, n: n, body: blob("note " + id + " " + str(n)))
}
agent recall {
  when Count(id, n) where n >= 3
  call knowledge_find(type: "Note", id: id, n: n - 3) as k
  emit lasting Recall(id: id, n: n, seen: k.count)
}
policy Count { resolve by latest }
prune Note when age >= 2 into knowledge
prune Recall when age >= 1 into knowledge
"""


def test_a_resumed_job_stores_the_knowledge_and_payloads_of_its_live_cycles(
        tmp_path: Path) -> None:
    # found by review: the resumed job's sink had no stage_knowledge/stage_blobs, so
    # from the resume on, pruned facts and new payloads never reached the store (the
    # result and trace were right; `knowledge` held only the first attempt's rows)
    (tmp_path / "notes.cvg").write_text(NOTES)
    loaded = converge_rules.load(tmp_path / "notes.cvg",
                                 plugins=load_registries(["bump_tool"]))
    inputs = [("Count", {"id": "a", "n": 0}), ("Count", {"id": "b", "n": 2})]
    whole_db, db = tmp_path / "whole.db", tmp_path / "run.db"
    whole = api.run(loaded, inputs, now=JOB_TIME, store=whole_db)
    steps = iter([False] * 3)
    first = api.run(loaded, inputs, now=JOB_TIME, store=db, stop=lambda: next(steps, True))
    assert first.status == "interrupted"
    resumed = api.resume(db, ruleset=loaded)
    assert resumed.to_json() == whole.to_json()

    def stored(path: Path) -> tuple[list[Any], list[Any]]:
        conn = sqlite3.connect(path)
        try:
            return (conn.execute("SELECT seq, cycle, type, fact, data FROM knowledge "
                                 "ORDER BY seq").fetchall(),
                    conn.execute("SELECT b.hash, b.data FROM blobs b JOIN job_blobs j "
                                 "ON j.hash = b.hash ORDER BY b.hash").fetchall())
        finally:
            conn.close()

    knowledge, blobs = stored(db)
    assert max(cycle for _, cycle, *_ in knowledge) > 3  # rows of the live cycles
    assert (knowledge, blobs) == stored(whole_db)
    assert len(blobs) == 8 + 6  # a 0..7, b 2..7


@pytest.mark.parametrize("how", ["path", "url"])
def test_resume_of_a_store_that_does_not_exist_creates_nothing(
        tmp_path: Path, how: str) -> None:
    # found by review: `converge run --resume typo.db` created an empty store there and
    # said it "holds no job to resume"
    db = tmp_path / "typo.db"
    location = str(db) if how == "path" else f"sqlite:///{db}"
    out = CliRunner().invoke(main, ["run", "--resume", location])
    assert out.exit_code == 2
    assert f"no store at {db}" in out.output
    assert not db.exists()


STEPS_THEN_SLOW = """\
ruleset steps
uses tool bump
root "steps, then a slow call" {
  max_cycles = 100
  job_timeout = 1s
}
fact Count { key id: str, n: int }
fact Done { id: str, n: int }
agent inc { when Count(id, n) where n < 8 TAIL }
agent slow {
  when Count(id, n) where n == 8
  call bump(id: id, n: n) as r
  emit Done(id: id, n: r.next)
}
policy Count { resolve by latest }
"""


@pytest.mark.parametrize("tail", [
    # every cycle calls a tool: each is committed (and ends a row) on its own
    "call bump(id: id, n: n) as r emit Count(id: id, n: r.next)",
    # no tool: the cycles before the cut one wait for one transaction with it
    "emit Count(id: id, n: n + 1)",
], ids=["tools", "no-tools"])
def test_a_job_cut_by_job_timeout_after_short_cycles_resumes(tmp_path: Path,
                                                              tail: str) -> None:
    """The cut cycle is run again whole: the trace is cut where it starts. It was
    refused ("a stored row holds lines on both sides"): the check looked where the
    resumed job's first transaction ends, not where the trace is cut (inside the
    old ending's row there), and (without tools) the cut cycle shared a row with the
    cycles before it."""
    ruleset = tmp_path / "steps.cvg"
    ruleset.write_text(STEPS_THEN_SLOW.replace("TAIL", tail))
    facts = tmp_path / "in.jsonl"
    facts.write_text('{"Count": {"id": "a", "n": 0}}\n')
    whole = converge(tmp_path, "run", ruleset, "-f", facts, "--now", NOW, "--format",
                     "json", "--trace", tmp_path / "whole.jsonl")
    assert whole.returncode == 0, whole.stderr
    db = tmp_path / "run.db"
    out = converge(tmp_path, "run", ruleset, "-f", facts, "--now", NOW, "--store", db,
                   BUMP_SLEEP="3", BUMP_SLEEP_FROM="8")
    assert out.returncode == 1
    with SqliteStore(db) as store:
        job = store.job(None)
        assert job.status == "budget_exceeded" and "while agent 'slow'" in job.detail
    out = converge(tmp_path, "run", "--resume", db, "--format", "json")
    assert out.returncode == 0, out.stderr
    assert out.stdout == whole.stdout
    assert exported(tmp_path, db) == (tmp_path / "whole.jsonl").read_text()
    assert converge(tmp_path, "verify", db).returncode == 0


#: eight short cycles, then an agent whose join (2,000 Num facts three ways) runs past
#: the job's one second: cut by job_timeout while it runs
HEAVY = (
    'ruleset heavy\nroot "heavy" {\n  max_cycles = 100\n  job_timeout = 1s\n}\n'
    "fact Count { key id: str, n: int }\nfact Num { v: int }\nfact Hit { v: int }\n"
    "agent inc { when Count(id, n) where n < 8 emit Count(id: id, n: n + 1) }\n"
    "agent heavy {\n  when Count(id, n) and Num(v: a) and Num(v: b) and Num(v: c)\n"
    "  where n == 8 and a + b + c == -1\n  emit Hit(v: a)\n}\n"
    "policy Count { resolve by latest }\n")


def test_a_job_cut_by_job_timeout_in_a_long_agent_after_short_cycles_resumes(
        tmp_path: Path) -> None:
    """As above, the cut agent calling no tool and its cycle committed with the
    waiting ones (group_seconds passed while it ran): the resume runs it again, with
    a new budget, instead of refusing the job."""
    ruleset = tmp_path / "heavy.cvg"
    ruleset.write_text(HEAVY)
    facts = tmp_path / "in.jsonl"
    facts.write_text('{"Count": {"id": "a", "n": 0}}\n' + "".join(
        json.dumps({"Num": {"v": v}}) + "\n" for v in range(2000)))
    db = tmp_path / "run.db"
    out = converge(tmp_path, "run", ruleset, "-f", facts, "--now", NOW, "--store", db)
    assert out.returncode == 1
    with SqliteStore(db) as store:
        job = store.job(None)
        assert job.status == "budget_exceeded" and "while agent 'heavy'" in job.detail
    out = converge(tmp_path, "run", "--resume", db, "--format", "json")
    assert out.returncode == 1, out.stderr  # cut again, not refused
    assert json.loads(out.stdout)["budget"]["job_timeout"]["exceeded"]
    assert converge(tmp_path, "verify", db).returncode == 0


def refused_out_of_time(db: Path, loaded: Any) -> str:
    """Resume the job of ``db`` with its re-execution slowed past its job_timeout (1 s:
    0.2 s a cycle by the progress callback): the refusal's message, which names the
    budget, not a change; the store is left as it was."""
    with SqliteStore(db) as store:
        before = list(store.trace_lines(1))

    def slow(progress: Any) -> None:
        time.sleep(0.2)

    with pytest.raises(StoreError) as refused:
        api.resume(db, ruleset=loaded, progress=slow)
    message = str(refused.value)
    assert "ran out of the job's budget: job_timeout (1s) ran out" in message
    assert "changed" not in message
    with SqliteStore(db) as store:
        assert list(store.trace_lines(1)) == before
    return message


def test_a_job_whose_re_execution_runs_out_of_job_timeout_is_refused_saying_so(
        tmp_path: Path) -> None:
    """A job cut by job_timeout while an agent ran is resumed by re-executing it from
    its inputs, within the same job_timeout. When that runs out before the stored
    cycles are reached, the resume is refused naming the budget; it blamed a changed
    ruleset, plugin or engine (found by a review, session 32). (The re-execution is
    slowed here by the progress callback.)"""
    ruleset = tmp_path / "heavy.cvg"
    ruleset.write_text(HEAVY)
    loaded = converge_rules.load(ruleset)
    facts = [("Count", {"id": "a", "n": 0}), *(("Num", {"v": v}) for v in range(2000))]
    db = tmp_path / "run.db"
    first = api.run(loaded, facts, now=None, store=db)
    assert first.status == "budget_exceeded" and first.cycles == 9
    with SqliteStore(db) as store:
        assert "while agent 'heavy'" in store.job(None).detail
    assert "raise job_timeout" in refused_out_of_time(db, loaded)
    resumed = api.resume(db, ruleset=loaded)  # in time: cut again in the heavy agent
    assert resumed.status == "budget_exceeded" and resumed.cycles == 9


def test_a_job_with_later_facts_whose_re_execution_runs_out_of_job_timeout_says_so(
        tmp_path: Path) -> None:
    """As above, for a job that took facts later (``--resume --facts``): its first run
    re-executed runs out of job_timeout before the cycle that took them. The refusal
    names the budget; it said the job took the facts "after a run that ended
    budget_exceeded" and blamed a changed ruleset, plugin or engine (review of session
    32)."""
    ruleset = tmp_path / "later.cvg"
    ruleset.write_text(HEAVY.replace("and Num(v: a)", "and Go(on) and Num(v: a)")
                       .replace("fact Hit", "fact Go { on: bool }\nfact Hit"))
    loaded = converge_rules.load(ruleset)
    facts = [("Count", {"id": "a", "n": 0}), *(("Num", {"v": v}) for v in range(2000))]
    db = tmp_path / "run.db"
    assert api.run(loaded, facts, now=None, store=db).status == "converged"
    later = api.resume(db, ruleset=loaded, facts=[("Go", {"on": True})])
    assert later.status == "budget_exceeded" and "while agent 'heavy'" in later.detail
    refused_out_of_time(db, loaded)


@pytest.mark.parametrize("cut", ["line", "lines"])
def test_a_re_executed_cycle_whose_agent_job_timeout_cut_is_refused_naming_the_budget(
        tmp_path: Path, cut: str) -> None:
    """When the re-execution's job_timeout runs out while an agent of a stored cycle
    runs, that cycle differs from the stored one by the agent's effect, discarded at
    the deadline (and what it left out after it): the refusal names the budget, not a
    changed ruleset, plugin or engine (as it did; review of session 32). The sink is fed
    the stored cycles, with the cut made in the fourth (a real one depends on timing)."""
    from converge_rules.engine.executors import DEADLINE_REASON
    from converge_rules.store.resume import ReplaySink

    ruleset = tmp_path / "count.cvg"
    ruleset.write_text(HEAVY)
    loaded = converge_rules.load(ruleset)
    db = tmp_path / "run.db"
    assert api.run(loaded, [("Count", {"id": "a", "n": 0})], now=None,
                   store=db).status == "converged"
    with SqliteStore(db) as store:
        lines, sizes = list(store.trace_lines(1)), store.cycle_sizes(1)
    last = sizes[-1][0]
    sink = ReplaySink(Any, 1, iter(lines), sizes, last)  # type: ignore[arg-type]
    start = 0
    with pytest.raises(StoreError) as refused:
        for cycle, n, _ in sizes:
            mine = lines[start:start + n]
            start += n
            if cycle == 4:
                at = next(i for i, line in enumerate(mine) if '"effect_merged"' in line)
                event = json.loads(mine[at])
                event.update(event="effect_discarded", reason=DEADLINE_REASON)
                del event["outputs"]
                mine[at] = json.dumps(event, separators=(",", ":"))
                if cut == "lines":
                    mine = mine[:at + 1]
            sink.cycle_committed(cycle, mine)
    message = str(refused.value)
    assert ("ran out of the job's budget: job_timeout ran out in cycle 4 while agent "
            "'inc' ran") in message
    assert "changed" not in message


@pytest.mark.parametrize("checkpoints", [True, False], ids=["checkpoints", "re-executed"])
def test_a_resumed_job_is_reopened_by_its_first_cycle_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, checkpoints: bool,
) -> None:
    """A resume commits the job's reopening (status running, its rows after the
    checkpoint gone) with the first cycle it commits, not with a group of later ones:
    another process sees the job running as soon as it goes on. (The sink's due rules
    carry it, for a cycle handed raw and for one handed compact; no test held it
    before session 30 changed the first.)"""
    from converge_rules.engine import checkpoints as ck

    if not checkpoints:  # the resume re-executes the job up to its last cycle
        monkeypatch.setattr(ck, "checkpointable", lambda program: False)
    ruleset = tmp_path / "counter.cvg"
    ruleset.write_text(COUNTER)
    loaded = converge_rules.load(ruleset)
    (tmp_path / "in.jsonl").write_text('{"Count": {"id": "a", "n": 0}}\n')
    facts = api.read_facts(loaded, tmp_path / "in.jsonl")
    db = tmp_path / "run.db"
    asked = iter([False, False, True])
    first = api.run(loaded, facts, store=db, now=None, stop=lambda: next(asked, True))
    assert first.status == "interrupted"
    monkeypatch.setattr(SqliteStore, "group_seconds", 3600.0)  # the count alone decides
    seen: list[tuple[int, str]] = []

    def progress(p: Any) -> None:
        with sqlite3.connect(db) as other:
            seen.append((p.cycle, other.execute("SELECT status FROM jobs").fetchone()[0]))

    resumed = api.resume(db, progress=progress)
    assert resumed.status == "converged"
    # (cycles the resume runs again before its checkpoint commit nothing: shadowed)
    after = [status for cycle, status in seen if cycle > first.cycles]
    assert after and set(after) == {"running"}
