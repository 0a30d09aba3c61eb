"""The PostgreSQL job store beyond the shared suite (tests/store/ runs that on both
backends): a migration written for SQLite works here with no code of its own; many
processes writing one database never corrupt each other; schemas are separate stores;
bad URLs and foreign schemas are clear errors, never tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from converge_postgres.store import PostgresStore, parse_url

from converge_rules.cli import main
from converge_rules.errors import StoreError
from converge_rules.plugins import load_registries
from converge_rules.store import sqlite as sqlite_store
from converge_rules.store.sqlite import SqliteStore

ROOT = Path(__file__).resolve().parents[3]
PRICING = ROOT / "rulesets" / "pricing" / "pricing.cvg"
PRICING_INPUT = ROOT / "rulesets" / "pricing" / "input.jsonl"


def invoke(*args: str | Path) -> Any:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        result.exception)
    return result


def test_the_plugin_registers_the_postgresql_scheme(store_url: str) -> None:
    registries = load_registries()
    assert getattr(registries.stores["postgresql"].obj, "job_store", False)
    with registries.job_store(store_url) as store:
        assert isinstance(store, PostgresStore)
        assert store.schema_version == sqlite_store.SCHEMA_VERSION


def _future_migration(db: Any) -> None:
    # what another engineer appends to MIGRATIONS, written for SQLite only (not named
    # blobs: migration 4 has that table now)
    db.execute("""
        CREATE TABLE probe_blobs (
            hash TEXT PRIMARY KEY,
            data BLOB NOT NULL,
            size INTEGER NOT NULL
        ) WITHOUT ROWID""")
    db.execute("""
        CREATE TABLE notes (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            job INTEGER NOT NULL REFERENCES jobs(id),
            text TEXT NOT NULL
        )""")
    db.execute("INSERT INTO notes (job, text) SELECT id, 'migrated: ' || ruleset FROM jobs")


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_migration_written_for_sqlite_works_on_both_with_no_extra_code(
    tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch, kind: str,
) -> None:
    location = str(tmp_path / "run.db") if kind == "sqlite" else store_url
    opener = SqliteStore if kind == "sqlite" else PostgresStore
    assert invoke("run", PRICING, "-f", PRICING_INPUT, "--store", location).exit_code == 0
    monkeypatch.setattr(sqlite_store, "MIGRATIONS", (*sqlite_store.MIGRATIONS,
                                                     _future_migration))
    monkeypatch.setattr(sqlite_store, "SCHEMA_VERSION", len(sqlite_store.MIGRATIONS))
    with opener(location) as store:
        assert store.schema_version == len(sqlite_store.MIGRATIONS)
        payload = bytes(range(256)) * 3  # every byte value, NUL and backslash included
        store._write([
            ("INSERT INTO probe_blobs (hash, data, size) VALUES (?, ?, ?) "
             "ON CONFLICT (hash) DO NOTHING", ("h1", payload, len(payload)), False),
            ("INSERT INTO probe_blobs (hash, data, size) VALUES (?, ?, ?) "
             "ON CONFLICT (hash) DO NOTHING", ("h1", b"other", 5), False),
            ("INSERT INTO notes (job, text) VALUES (?, ?)", (1, "50% of '?' marks"), False),
        ])
        assert [bytes(r[0]) for r in store._read("SELECT data FROM probe_blobs WHERE hash = ?",
                                                 ("h1",))] == [payload]
        assert store._read("SELECT id, text FROM notes WHERE text LIKE '%?%' OR id = ? "
                           "ORDER BY id", (1,)) == [(1, "migrated: pricing"),
                                                    (2, "50% of '?' marks")]
        if kind == "postgresql":  # its info lists every table of the schema
            assert {"probe_blobs", "notes"} <= set(store.info().tables)


WRITER = """\
import sys, time
from converge_postgres.store import PostgresStore

url, who, jobs, cycles = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
time.sleep(max(0.0, float(sys.argv[5]) - time.time()))  # all start at once
with PostgresStore(url) as store:  # every writer may be the one that creates the schema
    for j in range(jobs):
        with store.new_job(f"{who}-{j}") as sink:
            for c in range(cycles):
                sink.cycle_committed(c, [f'{{"who":"{who}","job":{j},"cycle":{c},"i":{i}}}'
                                         for i in range(c % 4 + 1)])
            sink.write_lines(['{"detail":"done","event":"status","status":"converged"}'])
"""


def test_concurrent_writers_never_corrupt_each_other(tmp_path: Path, store_url: str) -> None:
    (tmp_path / "writer.py").write_text(WRITER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    writers, jobs, cycles = 6, 3, 25
    start = time.time() + 4  # past the writers' start-up, so that they race
    procs = [subprocess.Popen([sys.executable, "writer.py", store_url, f"w{w}", str(jobs),
                               str(cycles), str(start)], cwd=tmp_path, env=env,
                              stderr=subprocess.PIPE, text=True)
             for w in range(writers)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    with PostgresStore(store_url) as store:
        assert store.schema_version == sqlite_store.SCHEMA_VERSION  # migrated once
        infos = store.jobs()
        assert [j.id for j in infos] == list(range(1, writers * jobs + 1))
        assert sorted(j.ruleset for j in infos) == sorted(
            f"w{w}-{j}" for w in range(writers) for j in range(jobs))
        for info in infos:
            who, job = info.ruleset.split("-")
            expected = [f'{{"who":"{who}","job":{job},"cycle":{c},"i":{i}}}'
                        for c in range(cycles) for i in range(c % 4 + 1)]
            expected.append('{"detail":"done","event":"status","status":"converged"}')
            assert list(store.trace_lines(info.id)) == expected
            assert (info.status, info.cycles) == ("converged", cycles - 1)
            assert [c for c, _, _ in store.cycle_sizes(info.id)] == list(range(cycles))
            assert info.trace_bytes == sum(b for _, _, b in store.cycle_sizes(info.id)) > 0


def test_jobs_of_one_store_wait_for_each_other_only_at_commit(store_url: str) -> None:
    # a reader never waits for a writer's transaction (MVCC), a writer waits up to the
    # timeout and then says the store is locked
    with PostgresStore(store_url) as first, PostgresStore(store_url) as second:
        sink = first.new_job("a").__enter__()
        sink.cycle_committed(0, ['{"event":"x"}'])
        first._db.execute("BEGIN IMMEDIATE")
        try:
            assert [j.ruleset for j in second.jobs()] == ["a"]
            second.timeout = 0.2
            second._db.execute("SET lock_timeout = 200")
            started = time.monotonic()
            with pytest.raises(StoreError, match="is locked by another process"):
                second.new_job("b").__enter__()
            assert time.monotonic() - started < 5
        finally:
            first._db.execute("ROLLBACK")
        second.new_job("b").__enter__().cycle_committed(0, ['{"event":"y"}'])
        assert [j.ruleset for j in first.jobs()] == ["a", "b"]


def test_schemas_are_separate_stores(server_url: str) -> None:
    sep = "&" if "?" in server_url else "?"
    suffix = os.urandom(4).hex()
    one, two = f"{server_url}{sep}schema=one_{suffix}", f"{server_url}{sep}schema=two_{suffix}"
    for url, runs in ((one, 2), (two, 1)):
        for _ in range(runs):
            assert invoke("run", PRICING, "-f", PRICING_INPUT, "--store", url).exit_code == 0
    with PostgresStore(one) as a, PostgresStore(two) as b:
        assert [j.id for j in a.jobs()] == [1, 2]
        assert [j.id for j in b.jobs()] == [1]


def test_a_schema_that_is_not_a_store_is_refused_untouched(store_url: str) -> None:
    from converge_postgres.store import DialectConnection

    conninfo, _, timeout, schema = parse_url(store_url)
    with_users = DialectConnection.open(conninfo, schema=schema, timeout=timeout)
    try:
        with_users.execute("CREATE TABLE users (name TEXT)")
        with_users.execute("INSERT INTO users VALUES (?)", ("ada",))
        for args in (("run", PRICING, "-f", PRICING_INPUT, "--store", store_url),
                     ("trace", "export", store_url), ("store", "info", store_url)):
            out = invoke(*args)
            assert out.exit_code == 2
            assert "has tables (users) and no schema_version: it is not a converge store" in (
                out.output)
            assert "?schema=NAME" in out.output
        assert [r[0] for r in with_users.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")] == ["users"]
        assert with_users.execute("SELECT name FROM users").fetchall() == [("ada",)]
    finally:
        with_users.close()


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.mark.parametrize(("store", "message"), [
    ("postgresql://u:secret@127.0.0.1:PORT/db",
     "cannot connect to the store postgresql://u:***@127.0.0.1:PORT/db ("),
    ("postgresql://127.0.0.1:PORT/db?timeout=soon", "timeout must be a number of seconds"),
    ("postgresql://127.0.0.1:PORT/db?schema=a;drop", "schema must be a plain name"),
])
def test_bad_postgresql_locations_are_named_with_the_fix(store: str, message: str) -> None:
    port = str(_closed_port())
    store, message = store.replace("PORT", port), message.replace("PORT", port)
    started = time.monotonic()
    out = invoke("run", PRICING, "-f", PRICING_INPUT, "--store", store)
    assert out.exit_code == 2
    assert message in out.output
    assert "secret" not in out.output
    assert time.monotonic() - started < 30
    if "cannot connect" in message:
        assert "start the PostgreSQL server, or check the URL" in out.output


def test_export_and_info_read_a_postgresql_store(store_url: str, tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    invoke("run", PRICING, "-f", PRICING_INPUT, "--now", "2026-12-06T09:00:00Z",
           "--trace", trace)
    invoke("run", PRICING, "-f", PRICING_INPUT, "--now", "2026-12-06T09:00:00Z",
           "--store", store_url)
    assert invoke("trace", "export", store_url).output == trace.read_text()
    doc = json.loads(invoke("store", "info", store_url, "--format", "json").output)
    assert doc["store"] == store_url
    assert doc["jobs"][0]["trace_lines"] == len(trace.read_text().splitlines())
    assert doc["tables"]["trace_rows"]["rows"] > 0
    assert doc["bytes"] == sum(t["bytes"] for t in doc["tables"].values()) > 0
