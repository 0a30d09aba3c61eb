"""A throwaway PostgreSQL server for tests: ``initdb`` in a temporary directory, started
with ``pg_ctl`` on a free loopback port, stopped (and its directory removed) by
:meth:`TestServer.stop`. Run as root, the server runs as an unprivileged user
(``postgres`` if it exists, else ``nobody``): PostgreSQL refuses to run as root.

Used by the store test suite (``tests/store/``) and this plugin's tests when
``CONVERGE_TEST_POSTGRES`` does not already give a server's URL.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

ENV_URL = "CONVERGE_TEST_POSTGRES"
"""The URL of a server the tests use instead of starting one (CI exports it)."""

ENV_REQUIRED = "CONVERGE_TEST_POSTGRES_REQUIRED"
"""When set, a server that cannot be had fails the tests instead of skipping them."""

BIN_DIRS = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin",
            "/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/14/bin")


def find_bin(name: str) -> Path | None:
    """``initdb``/``pg_ctl`` on PATH or in Debian's versioned directories."""
    found = shutil.which(name)
    if found:
        return Path(found)
    for directory in BIN_DIRS:
        candidate = Path(directory) / name
        if candidate.is_file():
            return candidate
    return None


@dataclass
class TestServer:
    """A running server: its URL (database ``postgres``, user ``converge``, trust
    authentication on loopback only) and its data directory."""

    __test__ = False  # not a pytest test class

    url: str
    base: Path
    pg_ctl: Path
    user: str | None

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove its directory."""
        with contextlib.suppress(Exception):
            subprocess.run(_as(self.user, [str(self.pg_ctl), "stop", "-D",
                                           str(self.base / "data"), "-m", "immediate",
                                           "-w"]),
                           capture_output=True, timeout=60, check=False)
        shutil.rmtree(self.base, ignore_errors=True)


def _as(user: str | None, argv: list[str]) -> list[str]:
    return argv if user is None else ["runuser", "-u", user, "--", *argv]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_server() -> TestServer:
    """Start a server; a ``RuntimeError`` saying why when it cannot be started
    (no ``initdb``, no unprivileged user to run it as, it did not start)."""
    initdb, pg_ctl = find_bin("initdb"), find_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        raise RuntimeError("no PostgreSQL server binaries (initdb, pg_ctl) on PATH or in "
                           "/usr/lib/postgresql/*/bin; install Debian's postgresql package "
                           f"or set {ENV_URL} to a server's URL")
    user: str | None = None
    if os.geteuid() == 0:
        for name in ("postgres", "nobody"):
            with contextlib.suppress(KeyError):
                pwd.getpwnam(name)
                user = name
                break
        if user is None or shutil.which("runuser") is None:
            raise RuntimeError("running as root with no unprivileged user (postgres, "
                               "nobody) or no runuser: PostgreSQL refuses to run as root")
    base = Path(tempfile.mkdtemp(prefix="converge-pg-"))
    try:
        if user is not None:
            entry = pwd.getpwnam(user)
            os.chown(base, entry.pw_uid, entry.pw_gid)
        data = base / "data"
        done = subprocess.run(
            _as(user, [str(initdb), "-D", str(data), "-U", "converge", "--auth=trust",
                       "-E", "UTF8", "--no-locale", "--no-sync"]),
            capture_output=True, text=True, timeout=180, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stderr.strip()[-500:]}")
        port = _free_port()
        options = (f"-c listen_addresses=127.0.0.1 -c port={port} "
                   f"-c unix_socket_directories={base} -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off "
                   "-c shared_buffers=16MB -c max_connections=60")
        done = subprocess.run(
            _as(user, [str(pg_ctl), "start", "-D", str(data), "-w", "-t", "120",
                       "-l", str(base / "server.log"), "-o", options]),
            capture_output=True, text=True, timeout=180, check=False)
        if done.returncode != 0:
            log = (base / "server.log").read_text(errors="replace")[-800:] if (
                base / "server.log").exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {done.stderr.strip()[-500:]} {log}")
    except BaseException:
        shutil.rmtree(base, ignore_errors=True)
        raise
    return TestServer(f"postgresql://converge@127.0.0.1:{port}/postgres", base, pg_ctl,
                      user)
