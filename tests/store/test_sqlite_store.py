"""The job store, on every backend (``backend``: SQLite, and PostgreSQL from the
converge-postgres plugin; see conftest.py): each cycle committed as it ends, many jobs
per store, the trace exported byte for byte as ``--trace`` writes it, migrations from an
older schema, and clear errors (not a store, a newer schema, a lock) instead of
tracebacks. Tests of what only a SQLite file has take ``tmp_path`` alone."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import converge_rules
from converge_rules import api
from converge_rules.cli import main
from converge_rules.engine.effects import Activation, AgentEffect, Delta
from converge_rules.engine.executors import SerialExecutor
from converge_rules.errors import ExecutorError, StoreError
from converge_rules.integrity import strip_hash
from converge_rules.store import sqlite as sqlite_store
from converge_rules.store.sqlite import SCHEMA_VERSION, SqliteStore
from tests.store.conftest import Backend

REPO = Path(__file__).resolve().parents[2]
PRICING = REPO / "rulesets" / "pricing" / "pricing.cvg"
PRICING_INPUT = REPO / "rulesets" / "pricing" / "input.jsonl"
NOW = "2026-12-06T09:00:00Z"

COUNTER = """\
ruleset counter
root "count" {
  max_cycles = 40
}
fact Count { key id: str, n: int }
agent step { when Count(id, n) where n < LIMIT emit Count(id: id, n: n + 1) }
policy Count { resolve by latest }
"""

CONFLICT = """\
ruleset strict
fact Cost  { key sku: str, amount: float }
fact Price { key sku: str, amount: float }
agent a { when Cost(sku, amount) emit Price(sku: sku, amount: amount) }
agent b { when Cost(sku, amount) emit Price(sku: sku, amount: amount + 1.0) }
policy Price { reject }
"""


def invoke(*args: str | Path) -> Any:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        result.exception)
    return result


def counter(tmp: Path, limit: int) -> tuple[Path, Path]:
    ruleset = tmp / "counter.cvg"
    ruleset.write_text(COUNTER.replace("LIMIT", str(limit)))
    facts = tmp / "in.jsonl"
    facts.write_text('{"Count": {"id": "a", "n": 0}}\n{"Count": {"id": "b", "n": 5}}\n')
    return ruleset, facts


def cases(tmp: Path) -> list[tuple[Path, Path, int]]:
    """(ruleset, facts, exit code): converged, budget_exceeded, conflict."""
    conflict = tmp / "strict.cvg"
    conflict.write_text(CONFLICT)
    costs = tmp / "costs.jsonl"
    costs.write_text('{"Cost": {"sku": "A1", "amount": 2.5}}\n')
    ruleset, facts = counter(tmp, 8)
    (tmp / "long.cvg").write_text(COUNTER.replace("LIMIT", "100"))
    return [(PRICING, PRICING_INPUT, 0), (ruleset, facts, 0), (tmp / "long.cvg", facts, 1),
            (conflict, costs, 1)]


# ------------------------------------------------------------------ export


def test_the_exported_trace_is_byte_for_byte_what_trace_writes(
    tmp_path: Path, backend: Backend,
) -> None:
    db = backend.location
    for i, (ruleset, facts, code) in enumerate(cases(tmp_path), start=1):
        traced = invoke("run", ruleset, "-f", facts, "--now", NOW, "--trace",
                        tmp_path / f"t{i}.jsonl")
        stored = invoke("run", ruleset, "-f", facts, "--now", NOW, "--store", db)
        assert traced.exit_code == stored.exit_code == code, stored.output
        assert stored.output == traced.output  # the same result printed
        exported = invoke("trace", "export", db, "-o", tmp_path / f"e{i}.jsonl")
        assert exported.exit_code == 0, exported.output
        assert (tmp_path / f"e{i}.jsonl").read_bytes() == (
            tmp_path / f"t{i}.jsonl").read_bytes()
    # one store holds every job; each is exported by its id, also through a URL
    url = f"sqlite:///{db}" if backend.kind == "sqlite" else db
    for i in range(1, 5):
        out = invoke("trace", "export", url, "--job", str(i))
        assert out.output.encode() == (tmp_path / f"t{i}.jsonl").read_bytes()
    with backend.open() as store:
        assert [(j.id, j.ruleset, j.status) for j in store.jobs()] == [
            (1, "pricing", "converged"), (2, "counter", "converged"),
            (3, "counter", "budget_exceeded"), (4, "strict", "conflict")]


def test_export_equals_the_trace_for_any_executor(tmp_path: Path, backend: Backend) -> None:
    ruleset, facts = counter(tmp_path, 6)
    loaded = converge_rules.load(ruleset)
    inputs = api.read_facts(loaded, facts)
    expected = api.run(loaded, inputs, now=None).trace.to_jsonl()
    for executor in ("serial", "threads", "processes"):
        api.run(loaded, inputs, executor=executor, workers=2, store=backend.location,
                now=None)
        with backend.open() as store:
            job = store.job(None)
            assert "".join(line + "\n" for line in store.trace_lines(job.id)) == expected


def test_export_equals_the_trace_when_the_trace_spilled_to_its_spool(
    tmp_path: Path, backend: Backend,
) -> None:
    # found merging the store with the spilling trace: once a cycle's events went to the
    # trace's spool, the store committed the lines of the wrong events (counted in memory)
    from converge_rules.engine.trace import SPILL_EVENTS

    ruleset = tmp_path / "counters.cvg"
    ruleset.write_text(COUNTER.replace("40", "100").replace("LIMIT", "60"))
    facts = tmp_path / "counts.jsonl"
    facts.write_text("".join(f'{{"Count": {{"id": "k{i}", "n": 0}}}}\n' for i in range(40)))
    loaded = converge_rules.load(ruleset)
    inputs = api.read_facts(loaded, facts)
    expected = api.run(loaded, inputs, now=None).trace.to_jsonl()
    assert expected.count("\n") > 2 * SPILL_EVENTS  # the trace did spill, more than once
    api.run(loaded, inputs, store=backend.location, now=None)
    with backend.open() as store:
        job = store.job(None)
        assert "".join(line + "\n" for line in store.trace_lines(job.id)) == expected


# ------------------------------------------------------- one transaction per cycle


def committed_after_each_cycle(tmp_path: Path, backend: Backend, store: Any,
                               then: Any = None) -> list[tuple[int, int | None]]:
    """Run the counter (ten steps) into ``store``; after each cycle, the last cycle
    committed as another connection sees it (and ``then(cycle)`` called, if given)."""
    ruleset, facts = counter(tmp_path, 10)
    loaded = converge_rules.load(ruleset)
    seen: list[tuple[int, int | None]] = []

    def progress(p: Any) -> None:
        # another connection (another process, as far as the database knows) sees it
        with backend.connect() as other:
            seen.append((p.cycle, other.execute("SELECT max(cycle) FROM cycles"
                                                ).fetchone()[0]))
        if then is not None:
            then(p.cycle)

    result = api.run(loaded, api.read_facts(loaded, facts), store=store,
                     progress=progress, now=None)
    assert result.cycles == 11  # ten steps, and one that changes nothing
    with backend.open() as opened:
        job = opened.job(None)
        assert (job.status, job.cycles) == ("converged", 11)
        assert [c for c, _, _ in opened.cycle_sizes(job.id)] == list(range(12))
        exported = "".join(f"{line}\n" for line in opened.trace_lines(job.id))
    assert exported == result.trace.to_jsonl()
    return seen


def test_with_group_1_each_cycle_is_committed_when_it_ends(tmp_path: Path,
                                                           backend: Backend) -> None:
    seen = committed_after_each_cycle(tmp_path, backend, backend.grouped(1))
    assert seen == [(c, c) for c in range(1, 12)]


def test_cycles_that_call_no_tool_are_committed_in_groups(tmp_path: Path,
                                                          backend: Backend) -> None:
    with backend.open(group=4) as store:
        store.group_seconds = 3600.0  # the count alone decides here
        seen = committed_after_each_cycle(tmp_path, backend, store)
    # cycles 0-3 in one transaction, 4-7 in the next…; the last ones with the status
    assert seen == [(c, c - (c + 1) % 4 if c >= 3 else None) for c in range(1, 12)]


def test_a_cycle_ending_past_the_time_bound_is_committed_at_once(
    tmp_path: Path, backend: Backend,
) -> None:
    with backend.open(group=1000) as store:
        store.group_seconds = 0.0  # every cycle ends past it
        seen = committed_after_each_cycle(tmp_path, backend, store)
    assert seen == [(c, c) for c in range(1, 12)]


def test_a_time_bound_changed_while_a_job_runs_applies_to_its_next_cycle(
    tmp_path: Path, backend: Backend,
) -> None:
    """``group_seconds`` is read as each cycle ends, not only at the last commit: a
    bound lowered while the job runs (here from its progress callback) commits the
    next cycle as it ends, whether the cycle is handed to the store raw or not."""
    with backend.open(group=1000) as store:
        store.group_seconds = 3600.0

        def then(cycle: int) -> None:
            if cycle == 5:
                store.group_seconds = 0.0

        seen = committed_after_each_cycle(tmp_path, backend, store, then)
    assert seen == [(c, None) for c in range(1, 6)] + [(c, c) for c in range(6, 12)]


def test_the_default_group_is_bounded_by_time(tmp_path: Path) -> None:
    # (no count by default: the 50 ms rule bounds what a crash loses, the trace's spill
    # the events waiting)
    store = SqliteStore(tmp_path / "run.db")
    assert (store.group_cycles, store.group_seconds) == (sys.maxsize, 0.05)
    store.close()
    store = SqliteStore(f"sqlite:///{tmp_path / 'other.db'}?group=1&timeout=2")
    assert (store.group_cycles, store.timeout) == (1, 2.0)
    store.close()


KILLER = """\
import os, signal, sys
import converge_rules
from converge_rules import api
from converge_rules.plugins import load_registries

def progress(p):
    if p.cycle == int(sys.argv[3]):
        os.kill(os.getpid(), signal.SIGKILL)

loaded = converge_rules.load(sys.argv[1])
with load_registries().job_store(sys.argv[4]) as store:
    if len(sys.argv) > 5:  # the time bound of a group of cycles
        store.group_seconds = float(sys.argv[5])
    api.run(loaded, api.read_facts(loaded, sys.argv[2]), store=store, progress=progress,
            now=None)
"""


@pytest.mark.parametrize("at", [1, 4])
def test_a_killed_job_keeps_every_cycle_it_committed(
    tmp_path: Path, backend: Backend, at: int,
) -> None:
    ruleset, facts = counter(tmp_path, 10)
    (tmp_path / "killer.py").write_text(KILLER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run([sys.executable, "killer.py", str(ruleset), str(facts), str(at),
                           backend.grouped(1)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    loaded = converge_rules.load(ruleset)
    full = api.run(loaded, api.read_facts(loaded, facts), now=None).trace.to_jsonl()
    with backend.open() as store:
        job = store.job(None)
        assert (job.status, job.cycles) == ("running", at)
        kept = "".join(line + "\n" for line in store.trace_lines(job.id))
    assert full.startswith(kept)
    assert json.loads(strip_hash(kept.splitlines()[-1])) == {
        "event": "cycle_end", "cycle": at, "tier": 1, "added": 2, "removed": 2, "live": 2}
    out = invoke("trace", "export", backend.location)
    assert out.exit_code == 0
    assert f"job 1 did not finish (status running): its trace ends after cycle {at}" in (
        out.output)
    assert f"`converge run --resume {backend.location} --job 1` continues it" in (
        " ".join(out.output.split()))


def test_exporting_a_job_that_runs_now_says_it_runs(tmp_path: Path) -> None:
    """A job running now in another process is exported as far as it has committed,
    with a warning that it runs (export again when it ends), not that it did not finish
    and `--resume` continues it (which refuses a running job)."""
    import socket

    db = tmp_path / "run.db"
    assert invoke("run", PRICING, "-f", PRICING_INPUT, "--store", db).exit_code == 0
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as other:
        try:
            with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as conn:
                conn.execute("UPDATE jobs SET status = 'running', finished = NULL")
                conn.execute("UPDATE job_specs SET pid = ?, host = ?",
                             (other.pid, socket.gethostname()))
            out = invoke("trace", "export", db, "-o", tmp_path / "t.jsonl")
            assert out.exit_code == 0
            assert (f"job 1 is running now in process {other.pid}: its trace so far ends "
                    "after cycle 2") in " ".join(out.output.split())
            assert "--resume" not in out.output
        finally:
            other.kill()
    out = invoke("trace", "export", db, "-o", tmp_path / "t.jsonl")  # its process died
    assert "job 1 did not finish (status running)" in " ".join(out.output.split())


@pytest.mark.parametrize("group", [4, 64])
def test_a_job_killed_with_cycles_waiting_keeps_whole_cycles(
    tmp_path: Path, backend: Backend, group: int,
) -> None:
    # killed after cycle 6 ended: with groups of 4 (and no time bound: a loaded
    # machine made it commit a group early), cycles 0-3 are committed and 4-6 are
    # lost; with the default, whatever the time bound committed. Either way the store
    # holds whole cycles, a prefix of the full trace
    ruleset, facts = counter(tmp_path, 10)
    (tmp_path / "killer.py").write_text(KILLER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run([sys.executable, "killer.py", str(ruleset), str(facts), "6",
                           backend.grouped(group), *(["3600"] if group == 4 else [])],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    loaded = converge_rules.load(ruleset)
    full = api.run(loaded, api.read_facts(loaded, facts), now=None).trace.to_jsonl()
    with backend.open() as store:
        jobs = store.jobs()
        kept = "".join(line + "\n" for line in store.trace_lines(jobs[0].id)) if jobs else ""
        sizes = store.cycle_sizes(jobs[0].id) if jobs else []
    assert full.startswith(kept)
    if group == 4:
        assert [c for c, _, _ in sizes] == [0, 1, 2, 3]
    if kept:  # up to the end of its last cycle (cycle 0, the inputs, has no cycle_end)
        assert sizes[-1][0] <= 6
        lines = full.splitlines()
        after = next(i for i, line in enumerate(lines)
                     if json.loads(strip_hash(line)).get("event") == "cycle_start"
                     and json.loads(strip_hash(line))["cycle"] == sizes[-1][0] + 1)
        assert kept.splitlines() == lines[:after]


class FailingExecutor(SerialExecutor):
    def run_cycle(self, cycle: int, delta: Delta, activations: Sequence[Activation]
                  ) -> list[AgentEffect]:
        if cycle == 3:
            raise RuntimeError("the cluster went away")
        return super().run_cycle(cycle, delta, activations)


def test_a_job_ended_by_an_exception_is_marked_aborted_with_its_cycles(
    tmp_path: Path, backend: Backend,
) -> None:
    ruleset, facts = counter(tmp_path, 10)
    loaded = converge_rules.load(ruleset)
    with pytest.raises(ExecutorError):
        api.run(loaded, api.read_facts(loaded, facts), executor=FailingExecutor(),
                store=backend.location, now=None)
    with backend.open() as store:
        job = store.job(None)
        assert (job.status, job.cycles) == ("aborted", 2)
        assert [c for c, _, _ in store.cycle_sizes(job.id)] == [0, 1, 2]


def test_a_job_refused_before_it_runs_leaves_no_job(tmp_path: Path, backend: Backend) -> None:
    ruleset, _ = counter(tmp_path, 3)
    (tmp_path / "bad.jsonl").write_text('{"Count": {"id": 1}}\n')
    out = invoke("run", ruleset, "-f", tmp_path / "bad.jsonl", "--store", backend.location)
    assert out.exit_code == 2
    with backend.open() as store:
        assert store.jobs() == []


# --------------------------------------------------------------- migrations


def test_a_store_of_schema_version_1_is_migrated_and_keeps_its_jobs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: Backend,
) -> None:
    ruleset, facts = counter(tmp_path, 5)
    loaded = converge_rules.load(ruleset)
    inputs = api.read_facts(loaded, facts)
    trace = api.run(loaded, inputs, now=None).trace.to_jsonl().splitlines()
    with monkeypatch.context() as m:  # what converge with schema version 1 created
        m.setattr(sqlite_store, "SCHEMA_VERSION", 1)
        backend.open().close()
    with backend.connect() as db:  # and what it wrote: jobs and their trace lines
        assert [r[0] for r in db.execute("SELECT version FROM schema_version")] == [1]
        db.execute("INSERT INTO jobs (ruleset, status, started) "
                   "VALUES ('counter', 'converged', '2026-12-01T00:00:00Z')")
        cycle = 0
        for seq, line in enumerate(trace):
            event = json.loads(line)
            cycle = event.get("cycle", cycle) if event["event"] == "cycle_start" else cycle
            db.execute("INSERT INTO trace_lines VALUES (1, ?, ?, ?)", (seq, cycle, line))
    with backend.open() as store:
        assert store.schema_version == SCHEMA_VERSION
        assert [line for line in store.trace_lines(1)] == trace
        migrated = store.cycle_sizes(1)
        assert store.job(1).cycles == 6
    api.run(loaded, inputs, store=tmp_path / "new.db", now=None)
    with SqliteStore(tmp_path / "new.db") as store:
        # the lines per cycle a current store records (its bytes are those it holds:
        # rows of raw events now, lines before)
        assert [(c, n) for c, n, _ in store.cycle_sizes(1)] == [
            (c, n) for c, n, _ in migrated]
        assert sum(b for _, _, b in store.cycle_sizes(1)) < sum(b for _, _, b in migrated)


def test_a_store_newer_than_this_converge_is_refused_untouched(backend: Backend) -> None:
    backend.open().close()
    with backend.connect() as conn:
        conn.execute("INSERT INTO schema_version VALUES (?, 'later')", (SCHEMA_VERSION + 1,))
    before = _contents(backend)
    with pytest.raises(StoreError, match="newer than this converge knows"):
        backend.open()
    out = invoke("run", PRICING, "-f", PRICING_INPUT, "--store", backend.location)
    assert out.exit_code == 2
    assert (f"{backend.name} has store schema version {SCHEMA_VERSION + 1}, newer than this "
            f"converge knows ({SCHEMA_VERSION}); upgrade converge") in out.output
    assert _contents(backend) == before


def _contents(backend: Backend) -> object:
    """What the store holds: the SQLite file's bytes, or the rows of every table."""
    if backend.path is not None:
        return backend.path.read_bytes()
    with backend.connect() as conn:
        names = sorted(r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'"))
        return {name: sorted(map(tuple, conn.execute(f"SELECT * FROM {name}").fetchall()))
                for name in names}


# ------------------------------------------------------------------- bad input


def test_a_file_that_is_not_sqlite_is_refused_untouched(tmp_path: Path) -> None:
    trace = tmp_path / "trace.jsonl"
    trace.write_text('{"event": "status"}\n' * 100)
    before = trace.read_bytes()
    for args in (("run", PRICING, "-f", PRICING_INPUT, "--store", trace),
                 ("trace", "export", trace), ("store", "info", trace),
                 ("store", "gc", trace, "--keep-last", "1")):
        out = invoke(*args)
        assert out.exit_code == 2
        assert f"converge: error: {trace} is not a SQLite database" in out.output
        assert "it looks like a JSON Lines trace" in out.output
        # not "give --store …": only `run` has that option
        assert ("give the path of a store written by `converge run --store`, or a new "
                "file name to start one") in out.output
    assert trace.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trace.jsonl"]
    other = tmp_path / "other.db"  # not a trace either: no hint that it is one
    other.write_text("hello\n")
    out = invoke("store", "info", other)
    assert out.exit_code == 2
    assert f"{other} is not a SQLite database" in out.output
    assert "JSON Lines" not in out.output


def test_a_sqlite_database_that_is_not_a_store_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE users (name TEXT)")
    out = invoke("run", PRICING, "-f", PRICING_INPUT, "--store", db)
    assert out.exit_code == 2
    assert "is a SQLite database but not a converge store (it has tables users" in out.output
    with sqlite3.connect(db) as conn:
        assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master")] == ["users"]


def test_a_sqlite_database_that_is_not_a_store_is_left_byte_for_byte(tmp_path: Path) -> None:
    # the WAL pragma ran before the check: every command switched someone else's
    # database (rollback journal) to WAL mode, rewriting its header
    db = tmp_path / "app.db"
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("CREATE TABLE users (name TEXT)")
        conn.commit()
    before = db.read_bytes()
    for args in (("run", PRICING, "-f", PRICING_INPUT, "--store", db),
                 ("trace", "export", db), ("store", "info", db),
                 ("store", "gc", db, "--keep-last", "1")):
        out = invoke(*args)
        assert out.exit_code == 2
        assert "is a SQLite database but not a converge store" in out.output
    assert db.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.db"]
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def test_a_locked_store_is_an_error_after_the_timeout(backend: Backend) -> None:
    backend.open().close()
    with backend.connect() as holder:
        holder.execute("BEGIN EXCLUSIVE")
        try:
            with pytest.raises(StoreError, match="locked by another process"):
                api.run(converge_rules.load(PRICING), store=backend.open(timeout=0.1))
            url = (f"sqlite:///{backend.location}?timeout=0.1" if backend.kind == "sqlite"
                   else f"{backend.location}&timeout=0.1")
            out = invoke("run", PRICING, "-f", PRICING_INPUT, "--store", url)
            assert out.exit_code == 2
            shown = backend.name if backend.kind == "sqlite" else url
            assert f"the store {shown} is locked by another process (" in out.output
            assert "waited 0.1s); let the other job finish" in out.output
            if backend.kind == "sqlite":
                assert "(database is locked; waited" in out.output
        finally:
            holder.execute("ROLLBACK")


def test_reading_a_store_waits_for_no_writer(tmp_path: Path) -> None:
    """Opening a store at the current schema takes no write lock: store info, trace
    export, verify and replay read it while another process holds the write lock (a
    job's commit, a gc's VACUUM), as WAL lets them (before: each open took the lock to
    check for migrations, so a reader waited for the writer, then failed)."""
    db = tmp_path / "run.db"
    assert invoke("run", PRICING, "-f", PRICING_INPUT, "--store", db).exit_code == 0
    url = f"sqlite:///{db}?timeout=0.1"
    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as holder:
        holder.execute("BEGIN IMMEDIATE")
        holder.execute("UPDATE jobs SET ruleset = ruleset")
        try:
            for args in (("store", "info", url), ("trace", "export", url),
                         ("verify", url), ("replay", PRICING, url)):
                out = invoke(*args)
                assert out.exit_code == 0, (args, out.output)
            out = invoke("run", PRICING, "-f", PRICING_INPUT, "--store", url)
            assert out.exit_code == 2  # a writer still waits for the lock
            assert "is locked by another process" in out.output
        finally:
            holder.execute("ROLLBACK")


@pytest.mark.parametrize(("store", "message"), [
    ("sqlite://host/x.db", "a SQLite URL is sqlite:///relative/path"),
    ("sqlite:///x.db?wait=1", "unknown option 'wait'"),
    ("sqlite:///x.db?timeout=soon", "timeout must be a number of seconds"),
    ("mysql://db/jobs", "'mysql' is not a registered job store (known: "),
    ("missing/run.db", "directory 'missing' does not exist"),
    (".", "is a directory; give the store a file name"),
])
def test_bad_store_locations_are_named_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: str, message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    out = invoke("run", PRICING, "-f", PRICING_INPUT, "--store", store)
    assert out.exit_code == 2
    assert message in out.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind", ["device", "fifo"])
def test_a_store_that_is_no_regular_file_is_named_as_such(tmp_path: Path, kind: str
                                                          ) -> None:
    # found: /dev/null said "cannot rollback - no transaction is active", a named pipe
    # "the disk is full"
    if kind == "fifo":
        store = tmp_path / "run.db"
        os.mkfifo(store)
    else:
        store = Path(os.devnull)
    out = invoke("run", PRICING, "-f", PRICING_INPUT, "--store", store)
    assert out.exit_code == 2
    assert (f"{store} is not a regular file (a device, a named pipe or a socket); give "
            "the store a file name") in out.output


def test_store_and_trace_options_that_do_not_go_together(tmp_path: Path) -> None:
    out = invoke("run", PRICING, "-f", PRICING_INPUT, "--store", tmp_path / "run.db",
                 "--trace", tmp_path / "t.jsonl")
    assert out.exit_code == 2
    assert "give --store or --trace, not both" in out.output
    out = invoke("run", PRICING, "-f", PRICING_INPUT, "--trace", tmp_path / "t.jsonl",
                 "--trace-store", "sqlite")
    assert out.exit_code == 2
    assert "store 'sqlite' keeps jobs, not a trace file" in out.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("url", [False, True])
def test_a_store_that_names_an_input_file_is_refused_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: bool,
) -> None:
    # an empty fact file is a valid input and an empty SQLite database: opened as the
    # store it was turned into one when given as a sqlite:/// URL
    monkeypatch.chdir(tmp_path)
    ruleset, _ = counter(tmp_path, 3)
    (tmp_path / "empty.jsonl").write_text("")
    store = "sqlite:///empty.jsonl" if url else "empty.jsonl"
    out = invoke("run", ruleset, "-f", "empty.jsonl", "--store", store)
    assert out.exit_code == 2
    assert "writing it would destroy it" in out.output
    assert (tmp_path / "empty.jsonl").read_bytes() == b""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counter.cvg", "empty.jsonl",
                                                          "in.jsonl"]


def test_export_refuses_missing_stores_jobs_and_overwriting_the_store(tmp_path: Path) -> None:
    out = invoke("trace", "export", tmp_path / "none.db")
    assert out.exit_code == 2 and "no store at" in out.output
    assert not (tmp_path / "none.db").exists()
    db = tmp_path / "run.db"
    invoke("run", PRICING, "-f", PRICING_INPUT, "--store", db)
    out = invoke("trace", "export", db, "--job", "7")
    assert out.exit_code == 2
    assert f"the store {db} has no job 7; its jobs are 1" in out.output
    out = invoke("trace", "export", db, "-o", db)
    assert out.exit_code == 2 and "writing it would destroy it" in out.output


def test_reading_commands_leave_an_empty_file_empty(tmp_path: Path) -> None:
    # SQLite takes an empty file for a new database: export, info and gc made it a store
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    for args in (("trace", "export", empty), ("store", "info", empty),
                 ("store", "gc", empty, "--keep-last", "1")):
        out = invoke(*args)
        assert out.exit_code == 2
        assert f"an empty file, no store, at {empty}" in out.output
    assert empty.read_bytes() == b""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.jsonl"]


# ------------------------------------------------------------ info and gc


def test_info_gives_sizes_per_table_job_and_cycle(tmp_path: Path, backend: Backend) -> None:
    db = backend.location
    ruleset, facts = counter(tmp_path, 4)
    invoke("run", ruleset, "-f", facts, "--store", db, "--now", NOW)
    invoke("run", PRICING, "-f", PRICING_INPUT, "--store", db, "--now", NOW)
    exported = invoke("trace", "export", db, "--job", "1").output.encode()
    out = invoke("store", "info", db, "--job", "1", "--format", "json")
    assert out.exit_code == 0
    doc = json.loads(out.output)
    assert doc["schema_version"] == SCHEMA_VERSION
    assert doc["tables"]["jobs"]["rows"] == 2
    # a row of raw events per transaction, its cycles' but the last (which has one
    # of its own), and one for the status, expanded when read: each job's cycles
    # commit in one transaction (group commit)
    assert doc["tables"]["trace_rows"]["rows"] == 3 + 3
    assert doc["jobs"][0]["trace_lines"] == exported.count(b"\n")
    assert [(j["id"], j["ruleset"], j["status"], j["cycles"]) for j in doc["jobs"]] == [
        (1, "counter", "converged", 5), (2, "pricing", "converged", 2)]
    # the bytes the store holds for the trace: its rows, smaller than the lines
    assert 0 < doc["jobs"][0]["trace_bytes"] < len(exported)
    assert [c["cycle"] for c in doc["cycles"]] == [0, 1, 2, 3, 4, 5]
    assert sum(c["trace_bytes"] for c in doc["cycles"]) == doc["jobs"][0]["trace_bytes"]
    # the checkpoint of each transaction's last cycle (group commit: the job's last
    # cycle's at least), the first a snapshot, then deltas or snapshots
    kept = [c for c in doc["cycles"] if c["checkpoint"] is not None]
    assert kept[0]["checkpoint"] == "snapshot" and kept[-1]["cycle"] == 5
    assert all(c["checkpoint"] in ("delta", "snapshot") and c["checkpoint_bytes"] > 0
               for c in kept)
    if backend.path is not None:
        assert doc["bytes"] >= os.path.getsize(db)
    assert doc["bytes"] >= sum(t["bytes"] for t in doc["tables"].values()) > 0
    text = invoke("store", "info", db).output
    assert "2 jobs" in text and "trace_lines" in text and "pricing" in text


def test_gc_keeps_the_newest_jobs_and_shrinks_the_file(
    tmp_path: Path, backend: Backend,
) -> None:
    db = backend.location
    ruleset, facts = counter(tmp_path, 30)
    for _ in range(4):
        invoke("run", ruleset, "-f", facts, "--store", db, "--now", NOW)
    kept = invoke("trace", "export", db, "--job", "4").output
    before = os.path.getsize(db) if backend.path is not None else 0
    out = invoke("store", "gc", db, "--keep-last", "1")
    assert out.exit_code == 0
    assert "deleted 3 jobs (1, 2, 3)" in out.output
    if backend.path is not None:  # PostgreSQL's plain VACUUM keeps the space for reuse
        assert os.path.getsize(db) < before
    assert invoke("trace", "export", db).output == kept
    assert "has no job 2" in invoke("trace", "export", db, "--job", "2").output
    # (was "1 newest finished jobs kept")
    assert "nothing to delete (1 finished job, at most 1 kept)" in invoke(
        "store", "gc", db, "--keep-last", "1").output
    invoke("run", ruleset, "-f", facts, "--store", db, "--now", NOW)
    with backend.open() as store:
        assert [j.id for j in store.jobs()] == [4, 5]  # ids are never reused


def test_jobs_running_at_once_share_one_store(tmp_path: Path, backend: Backend) -> None:
    ruleset, facts = counter(tmp_path, 35)
    console = Path(sys.executable).with_name("converge")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path),
           "CONVERGE_DISABLE_PLUGINS": "converge-http,converge-llm,converge-example"}
    procs = [subprocess.Popen([str(console), "run", str(ruleset), "-f", str(facts), "--now",
                               NOW, "--store", backend.location], cwd=tmp_path, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    invoke("run", ruleset, "-f", facts, "--now", NOW, "--trace", tmp_path / "t.jsonl")
    expected = (tmp_path / "t.jsonl").read_text()
    with backend.open() as store:
        assert [(j.id, j.status) for j in store.jobs()] == [(i, "converged") for i in (1, 2, 3)]
        for job in (1, 2, 3):
            assert "".join(f"{line}\n" for line in store.trace_lines(job)) == expected


def test_a_job_stopped_on_request_is_stored_as_interrupted(
    tmp_path: Path, backend: Backend,
) -> None:
    ruleset, facts = counter(tmp_path, 10)
    loaded = converge_rules.load(ruleset)
    asked = iter(range(100))
    result = api.run(loaded, api.read_facts(loaded, facts), store=backend.location,
                     stop=lambda: next(asked) == 3, now=None)
    assert (result.status, result.cycles) == ("interrupted", 3)
    with backend.open() as store:
        job = store.job(None)
        assert (job.status, job.cycles) == ("interrupted", 3)
        assert job.detail == result.detail
        assert "".join(f"{line}\n" for line in store.trace_lines(job.id)) == (
            result.trace.to_jsonl())


def test_keep_last_on_run_is_the_stores_retention(backend: Backend) -> None:
    db = backend.location
    for _ in range(4):
        out = invoke("run", PRICING, "-f", PRICING_INPUT, "--store", db, "--keep-last", "2")
        assert out.exit_code == 0, out.output
    with backend.open() as store:
        assert [j.id for j in store.jobs()] == [3, 4]
    out = invoke("run", PRICING, "-f", PRICING_INPUT, "--keep-last", "2")
    assert out.exit_code == 2 and "give --store too" in out.output


def test_gc_never_deletes_a_job_that_has_not_finished(backend: Backend) -> None:
    db = backend.location
    with backend.open() as store:
        running = store.new_job("crashed").__enter__()  # never closed: as if killed
        running.cycle_committed(0, ['{"event":"x"}'])
    invoke("run", PRICING, "-f", PRICING_INPUT, "--store", db)
    invoke("run", PRICING, "-f", PRICING_INPUT, "--store", db)
    out = invoke("store", "gc", db, "--keep-last", "0")
    assert "deleted 2 jobs (2, 3)" in out.output
    with backend.open() as store:
        assert [(j.id, j.status) for j in store.jobs()] == [(1, "running")]


def test_export_to_stdout_is_utf8_whatever_the_locale(tmp_path: Path) -> None:
    ruleset = tmp_path / "names.cvg"
    ruleset.write_text("ruleset names\nfact Name { key id: str, v: str }\n")
    facts = tmp_path / "in.jsonl"
    facts.write_text('{"Name": {"id": "a", "v": "caf\\u00e9 \\u2603"}}\n')
    invoke("run", ruleset, "-f", facts, "--now", NOW, "--store", tmp_path / "run.db")
    invoke("run", ruleset, "-f", facts, "--now", NOW, "--trace", tmp_path / "t.jsonl")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path),
           "PYTHONIOENCODING": "latin-1", "LC_ALL": "C"}
    done = subprocess.run([str(Path(sys.executable).with_name("converge")), "trace", "export",
                           "run.db"], cwd=tmp_path, env=env, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (tmp_path / "t.jsonl").read_bytes()
