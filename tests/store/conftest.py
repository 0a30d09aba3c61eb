"""The store suite runs against every backend: ``backend`` is parametrised by
``sqlite`` (a file in the test's directory) and ``postgresql`` (a schema of its own in
one server per session: ``CONVERGE_TEST_POSTGRES``'s URL, else a server started for the
session from Debian's ``initdb``/``pg_ctl``). The PostgreSQL runs are skipped, saying
why, only when no server can be had and ``CONVERGE_TEST_POSTGRES_REQUIRED`` is unset (CI
sets it: there they must run)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from converge_rules.store.sqlite import SqliteStore

ENV_URL = "CONVERGE_TEST_POSTGRES"
ENV_REQUIRED = "CONVERGE_TEST_POSTGRES_REQUIRED"


def _unavailable(reason: str) -> None:
    if os.environ.get(ENV_REQUIRED):
        pytest.fail(f"PostgreSQL store tests must run here ({ENV_REQUIRED} is set): "
                    f"{reason}")
    pytest.skip(f"PostgreSQL store tests: {reason}")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[tuple[str | None, str]]:
    """A PostgreSQL server's URL for the session, or None and the reason there is none
    (turned into a skip by the tests that need it)."""
    try:
        from converge_postgres import testserver
    except ImportError:
        yield None, ("the converge-postgres plugin is not installed "
                     "(pip install -e 'plugins/converge-postgres[test]')")
        return
    url = os.environ.get(ENV_URL)
    if url:
        yield url, ""
        return
    try:
        server = testserver.start_server()
    except (RuntimeError, OSError, ValueError, subprocess.SubprocessError) as exc:
        yield None, f"no server could be started: {exc}"
        return
    try:
        yield server.url, ""
    finally:
        server.stop()


@dataclass
class Backend:
    """One store backend for a test: ``location`` is what ``--store`` takes, ``name``
    what its messages call it."""

    kind: str
    location: str
    name: str
    path: Path | None  # the SQLite file

    def grouped(self, cycles: int) -> str:
        """The location with the option ``group=CYCLES``: at most that many cycles per
        transaction (1: one transaction per cycle)."""
        if self.kind == "sqlite":
            return f"sqlite:///{self.path}?group={cycles}"  # an absolute path: ////
        return f"{self.location}&group={cycles}"

    def open(self, **options: Any) -> SqliteStore:
        """The store, opened (a ``PostgresStore`` is a ``SqliteStore``)."""
        if self.kind == "sqlite":
            return SqliteStore(self.location, **options)
        from converge_postgres.store import PostgresStore

        return PostgresStore(self.location, **options)

    @contextlib.contextmanager
    def connect(self) -> Iterator[Any]:
        """A raw connection to the store's database in autocommit mode, speaking
        SQLite's dialect (a ``sqlite3`` connection, or the PostgreSQL store's dialect
        layer in the store's schema), that creates or migrates nothing."""
        if self.kind == "sqlite":
            assert self.path is not None
            conn = sqlite3.connect(self.path, isolation_level=None)
            try:
                yield conn
            finally:
                conn.close()
            return
        from converge_postgres.store import DialectConnection, parse_url

        conninfo, _, timeout, schema = parse_url(self.location)
        conn = DialectConnection.open(conninfo, schema=schema, timeout=timeout)
        try:
            yield conn
        finally:
            conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Each store backend in turn, with an empty store of the test's own."""
    if request.param == "sqlite":
        path = tmp_path / "run.db"
        return Backend("sqlite", str(path), str(path), path)
    url, why = request.getfixturevalue("postgres_server")
    if url is None:
        _unavailable(why)
    from converge_rules.plugins import load_registries

    if "postgresql" not in load_registries().stores:
        _unavailable("converge-postgres is importable but not installed as a plugin "
                     "(pip install -e plugins/converge-postgres)")
    schema = f"t_{uuid.uuid4().hex[:16]}"
    location = f"{url}{'&' if '?' in url else '?'}schema={schema}"
    return Backend("postgresql", location, location, None)
