"""One PostgreSQL server for the session: ``CONVERGE_TEST_POSTGRES``'s URL, else one
started from ``initdb``/``pg_ctl`` (stopped at the end); each test gets a schema of its
own. Skipped with the reason only when no server can be had and
``CONVERGE_TEST_POSTGRES_REQUIRED`` is unset (CI sets it)."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator

import pytest
from converge_postgres import testserver


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    url = os.environ.get(testserver.ENV_URL)
    if url:
        yield url
        return
    try:
        server = testserver.start_server()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        if os.environ.get(testserver.ENV_REQUIRED):
            pytest.fail(f"no PostgreSQL server, and {testserver.ENV_REQUIRED} is set: {exc}")
        pytest.skip(f"no PostgreSQL server could be started: {exc}")
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture()
def store_url(server_url: str) -> str:
    """A store of the test's own: the server's database, a new schema."""
    return f"{server_url}{'&' if '?' in server_url else '?'}schema=t_{uuid.uuid4().hex[:16]}"
