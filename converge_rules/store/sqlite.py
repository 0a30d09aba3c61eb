"""The SQLite job store, the embedded default: ``converge run … --store run.db``.

One file holds any number of jobs. A cycle's trace lines and its row in ``cycles`` are
always committed together, in one transaction, and the ``cycles`` rows say which cycles
are complete. Group commit: a cycle that called no tool may wait for the next ones and
share their transaction (only while less than :data:`GROUP_SECONDS` have passed since
the last commit, and at most ``?group=N`` cycles when the location says so: no count by
default, see :data:`~converge_rules.store.options.GROUP_CYCLES`); a cycle that called a tool is
committed as it ends, with the cycles waiting before it, so a paid answer is never lost.
A process that dies loses the cycle in flight and the cycles waiting (re-executed by a
resume: they called no tool, so nothing is paid twice).

Durability: the database is in WAL mode with ``synchronous=NORMAL``. A commit then
survives the death of the process (SIGKILL, a crash, an out-of-memory kill) — what a
job needs — without an fsync per cycle; only a power loss or an OS crash may take back
the last commits before a WAL checkpoint, never corrupt the file. ``FULL`` would fsync
every cycle, which costs more than a short cycle itself.

The schema is versioned: ``schema_version`` holds one row per migration applied, and
:data:`MIGRATIONS` are the ordered steps from an empty file to the current schema. A
file with a newer version than this converge knows is refused, never written.
"""

from __future__ import annotations

import contextlib
import json
import math
import operator
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from itertools import chain, groupby
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from converge_rules import _crash
from converge_rules.errors import StoreError, StoreNotCompacted
from converge_rules.integrity import GENESIS
from converge_rules.store.base import JobInfo, JobSpec, StoreInfo
from converge_rules.store.options import (
    GROUP_CYCLES,
    StoreOptions,
    parse_options,
)

if TYPE_CHECKING:
    from converge_rules.engine.knowledge import KnowledgeRow
    from converge_rules.engine.trace import Trace
    from converge_rules.engine.tracerows import CompactCycle, Row
    from converge_rules.store.approvals import PendingFact, StoredDecision

_Statement = tuple[str, Sequence[object] | Iterable[Sequence[object]], bool]
"""An SQL statement, its parameters, and whether they are many rows (executemany)."""

GROUP_SECONDS = 0.05
"""A cycle that ends this long after the last commit is committed at once: cycles wait
for a shared transaction only while the work they hold is less than this."""


def _v1(db: sqlite3.Connection) -> None:
    db.execute("""
        CREATE TABLE jobs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            ruleset TEXT NOT NULL,
            status TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '',
            started TEXT NOT NULL,
            finished TEXT
        )""")
    db.execute("""
        CREATE TABLE trace_lines (
            job INTEGER NOT NULL REFERENCES jobs(id),
            seq INTEGER NOT NULL,
            cycle INTEGER NOT NULL,
            line TEXT NOT NULL,
            PRIMARY KEY (job, seq)
        ) WITHOUT ROWID""")


def _v2(db: sqlite3.Connection) -> None:
    # One row per committed cycle: what resume (a job's last complete cycle) and
    # `converge store info` (sizes per cycle) read without scanning the trace.
    db.execute("""
        CREATE TABLE cycles (
            job INTEGER NOT NULL REFERENCES jobs(id),
            cycle INTEGER NOT NULL,
            lines INTEGER NOT NULL,
            bytes INTEGER NOT NULL,
            PRIMARY KEY (job, cycle)
        ) WITHOUT ROWID""")
    db.execute("""
        INSERT INTO cycles (job, cycle, lines, bytes)
        SELECT job, cycle, count(*), sum(length(CAST(line AS BLOB)) + 1)
        FROM trace_lines GROUP BY job, cycle""")


def _v3(db: sqlite3.Connection) -> None:
    # What resuming a job needs (`converge run --resume`): its settings and validated
    # inputs as JSON text, and which process ran it last (a `running` job whose
    # process is alive is not resumed from under it).
    db.execute("""
        CREATE TABLE job_specs (
            job INTEGER PRIMARY KEY REFERENCES jobs(id),
            settings TEXT NOT NULL,
            inputs TEXT NOT NULL,
            host TEXT NOT NULL,
            pid INTEGER NOT NULL
        )""")


def _v4(db: sqlite3.Connection) -> None:
    # The knowledge of each job (facts `prune … into knowledge` moved, and summaries),
    # and the payloads behind `blob` references: content-addressed, shared by the jobs
    # of the store, with the jobs that reference each (what `gc` keeps).
    db.execute("""
        CREATE TABLE knowledge (
            job INTEGER NOT NULL REFERENCES jobs(id),
            seq INTEGER NOT NULL,
            cycle INTEGER NOT NULL,
            type TEXT NOT NULL,
            fact INTEGER,
            data TEXT NOT NULL,
            PRIMARY KEY (job, seq)
        )""")
    db.execute("CREATE INDEX knowledge_by_type ON knowledge (job, type, seq)")
    db.execute("""
        CREATE TABLE blobs (
            hash TEXT PRIMARY KEY,
            bytes INTEGER NOT NULL,
            data BLOB NOT NULL
        )""")
    db.execute("""
        CREATE TABLE job_blobs (
            job INTEGER NOT NULL REFERENCES jobs(id),
            hash TEXT NOT NULL,
            PRIMARY KEY (job, hash)
        )""")


def _v5(db: sqlite3.Connection) -> None:
    # Checkpoints (issue 13 item 2): per committed cycle of a job, the merged delta of
    # the cycle or a full snapshot of the engine's state (engine/checkpoints.py),
    # written in the cycle's transaction; a resume restores the newest snapshot and
    # the deltas after it instead of re-executing the job.
    db.execute("""
        CREATE TABLE checkpoints (
            job INTEGER NOT NULL REFERENCES jobs(id),
            cycle INTEGER NOT NULL,
            kind TEXT NOT NULL,
            data BLOB NOT NULL,
            PRIMARY KEY (job, cycle)
        )""")



def _v6(db: sqlite3.Connection) -> None:
    # The decisions on a paused job's pending facts (`converge approve/reject`): one per
    # pending fact, with who decided, when (UTC, set by the command: the engine never
    # reads the clock), why, and the changed field values of an approval with edits
    # (JSON). `seq` keeps the order they were recorded in; `paused_at` the job's last
    # committed cycle when the decision was recorded (the pause it was taken at): a
    # resume applies it no earlier, so a job resumes with some of its facts decided and
    # re-executes the same whatever was decided later. (Migration 6 of the session's
    # plan; 5 is the checkpoints' — positional: renumbered when both land.)
    db.execute("""
        CREATE TABLE decisions (
            job INTEGER NOT NULL REFERENCES jobs(id),
            id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            decision TEXT NOT NULL,
            decided_by TEXT NOT NULL,
            decided_at TEXT NOT NULL,
            note TEXT NOT NULL,
            edits TEXT NOT NULL,
            paused_at INTEGER NOT NULL,
            PRIMARY KEY (job, id)
        )""")



def _v7(db: sqlite3.Connection) -> None:
    # Wall-clock timings of each job (engine/timings.py), beside its trace and never in
    # it (a trace is the same on every executor and run, and hash-chained): per tool
    # call (its key joins the trace's tool_call line), per agent run, per cycle
    # (`seconds` the evaluation phase, `merge_seconds` the merge). Written in each
    # cycle's transaction; `converge report` reads them. Migration 7 of the session's
    # plan (5 and 6 are other branches'); it needs none of their tables. DOUBLE
    # PRECISION, not REAL: PostgreSQL's REAL is 4 bytes (SQLite gives both 8).
    db.execute("""
        CREATE TABLE timings (
            job INTEGER NOT NULL REFERENCES jobs(id),
            seq INTEGER NOT NULL,
            cycle INTEGER NOT NULL,
            kind TEXT NOT NULL,
            agent TEXT,
            tool TEXT,
            call_key TEXT,
            source TEXT,
            seconds DOUBLE PRECISION NOT NULL,
            merge_seconds DOUBLE PRECISION,
            PRIMARY KEY (job, seq)
        )""")


def _v8(db: sqlite3.Connection) -> None:
    # The trace kept compactly (issue 13 item 10): one row per cycle (since session
    # 24 one per transaction's cycles, in the same format; and one for a job's last
    # lines) holding the cycles' raw events as one JSON text, expanded to the trace
    # lines when read (engine/tracerows.py); `seq` is the first line's number,
    # `cycle` the last cycle whose events the row holds, `lines` how many lines the
    # row gives, `kind` its format (`events`, `lines`, `text`), `hash` the row chain
    # (SHA-256 of the previous row's hash, the row's other columns and its text:
    # engine/tracerows.py `row_hash`; rows written before session 23 hashed the text
    # alone), which `converge verify` checks.
    # `trace_lines` keeps the jobs written before (read first: a job resumed from an
    # older store goes on here).
    # Migration 8 of the session's plan; it needs no other migration's tables.
    db.execute("""
        CREATE TABLE trace_rows (
            job INTEGER NOT NULL REFERENCES jobs(id),
            seq INTEGER NOT NULL,
            cycle INTEGER NOT NULL,
            lines INTEGER NOT NULL,
            kind TEXT NOT NULL,
            data TEXT NOT NULL,
            hash TEXT NOT NULL,
            PRIMARY KEY (job, seq)
        )""")


def _v9(db: sqlite3.Connection) -> None:
    # Trace rows of format `raw` (session 27): the raw event tuples of the cycles a
    # transaction commits, encoded together at the commit (engine/tracerows.py
    # `raw_run`). No table changes; the version says that rows of this format may be
    # there, so that a converge that cannot read them refuses the store (as too new)
    # instead of reading such a row as a tampered one.
    del db


def _v10(db: sqlite3.Connection) -> None:
    # Columnar events of a new form in rows of format `events` (session 28): the ids
    # of a batch whose every output was a new fact written as their count, packed
    # columns as the narrowest of 16/32/64-bit ints in base64 ("h:...") instead of
    # 64-bit hex (engine/tracerows.py `compact`, `_packed`). No table changes; the
    # version says such rows may be there, so that a converge that cannot read them
    # refuses the store (as too new) instead of reading them as tampered rows.
    del db


def _v11(db: sqlite3.Connection) -> None:
    # Trace rows of format `rawm` (session 28): a `raw` row's list msgpack-encoded
    # (engine/tracerows.py `raw_run`), its bytes in `packed` (BYTEA on PostgreSQL,
    # whose TEXT cannot hold them), `data` empty; null in the rows of other formats.
    # The row chain hashes `data`'s text then `packed`'s bytes. A converge before
    # this version refuses the store (as too new) instead of reading such a row as a
    # tampered one.
    db.execute("ALTER TABLE trace_rows ADD COLUMN packed BLOB")


def _v12(db: sqlite3.Connection) -> None:
    # One `cycles` row per transaction (session 28): the row's `cycle` is the last
    # cycle it holds, `lines` and `bytes` its cycles' totals, and `sizes` each cycle's
    # lines and bytes (:func:`encode_sizes`); a row without `sizes` (all rows written
    # before) holds its one cycle. Rows written this way cost one INSERT a commit, not
    # one a cycle; what every reader gives is the same (:func:`cycle_entries`).
    db.execute("ALTER TABLE cycles ADD COLUMN sizes TEXT")


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    _v1, _v2, _v3, _v4, _v5, _v6, _v7, _v8, _v9, _v10, _v11, _v12)
"""The schema's history: step ``i`` takes a store from version ``i`` to ``i + 1``.
Steps are only ever appended; each runs in the transaction that records it."""

SCHEMA_VERSION = len(MIGRATIONS)


def sqlite_path(location: str | os.PathLike[str]) -> tuple[Path, float]:
    """The database file and the lock timeout of a location: a path, or a
    ``sqlite:///relative/path``, ``sqlite:////absolute/path`` URL, either with
    ``?options`` (see :func:`sqlite_location`)."""
    path, options = sqlite_location(location)
    return path, options.timeout


def sqlite_location(location: str | os.PathLike[str]) -> tuple[Path, StoreOptions]:
    """The database file of a location and its options, parsed once
    (:mod:`converge_rules.store.options`: ``?timeout=SECONDS``, ``?group=CYCLES``,
    ``?snapshot_every=CYCLES``). A plain path takes them as a URL does (``run.db?group=8``
    is the file ``run.db``): a file whose name holds ``?`` is given as a URL with the
    ``?`` written ``%3F`` (``sqlite:///odd%3Fname.db``)."""
    text = os.fspath(location)
    if not text.startswith("sqlite:"):
        if "?" not in text:
            return Path(text), StoreOptions()
        path, query = text.split("?", 1)
        if not path:
            raise StoreError(f"{text}: no file name before the options; give the store "
                             "as FILE?OPTIONS, e.g. run.db?group=8")
        try:
            return Path(path), parse_options(query, text)
        except StoreError as exc:
            if "unknown option" not in str(exc):
                raise
            raise StoreError(f"{exc}; a file whose name holds `?` is given as "
                             f"sqlite:///{path}%3F{query}") from None
    parts = urlsplit(text)
    if not parts.path.startswith("/") or parts.netloc:
        raise StoreError(f"{text}: a SQLite URL is sqlite:///relative/path or "
                         "sqlite:////absolute/path")
    return Path(unquote(parts.path[1:])), parse_options(parts.query, text)


def sqlite_options(location: str | os.PathLike[str]) -> tuple[Path, float, int]:
    """:func:`sqlite_path`, and the most cycles per transaction (``?group=N``, 1 for a
    transaction per cycle; :data:`GROUP_CYCLES`, no count, by default)."""
    path, options = sqlite_location(location)
    return path, options.timeout, options.group


def snapshot_every(location: str | os.PathLike[str]) -> int | None:
    """The ``?snapshot_every=CYCLES`` option of a SQLite location: at most that many
    cycles between two snapshots of a job's state (None: the engine's default, see
    :mod:`converge_rules.engine.checkpoints`)."""
    return sqlite_location(location)[1].snapshot_every


def _host() -> str:
    import socket

    return socket.gethostname()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class SqliteStore:
    """A job store in one SQLite file (created, or migrated to the current schema, on
    open). Not shared between threads; several processes may write one file, each
    transaction waiting up to the lock timeout for the others. ``group``: the most
    cycles a job commits in one transaction (see the module; 1: one per cycle)."""

    #: the most cycles in one transaction, and the time after the last commit past
    #: which a cycle is committed as it ends (group commit; class defaults, so that a
    #: backend built on this class without calling ``__init__`` has them)
    group_cycles: int = GROUP_CYCLES
    group_seconds: float = GROUP_SECONDS
    #: opened read-only: the file or its directory may not be written (a store on a
    #: read-only disk or mount can still be read: info, export, verify, replay)
    read_only: bool = False

    def __init__(self, location: str | os.PathLike[str], *, timeout: float | None = None,
                 group: int | None = None) -> None:
        path, options = sqlite_location(location)
        #: the location's options, parsed once
        self.options = options
        self.group_cycles = options.group if group is None else max(int(group), 1)
        self.path = path
        self.location = os.fspath(location)
        self.timeout = options.timeout if timeout is None else timeout
        #: at most this many cycles between two snapshots of a job (None: the default)
        self.snapshot_every = options.snapshot_every
        self.crash_at = _crash.armed()
        if path.is_dir():
            raise StoreError(f"{path} is a directory; give the store a file name "
                             "(e.g. run.db)")
        if path.exists() and not path.is_file():
            # (SQLite would take /dev/null or a named pipe, then fail with a message
            # about transactions or a full disk)
            raise StoreError(f"{path} is not a regular file (a device, a named pipe or a "
                             "socket); give the store a file name (e.g. run.db)")
        if not path.parent.is_dir():
            raise StoreError(f"cannot open the store {path}: directory "
                             f"{str(path.parent)!r} does not exist")
        self.read_only = False
        try:
            self._db = sqlite3.connect(path, timeout=self.timeout, isolation_level=None,
                                       check_same_thread=False)
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        try:
            self._open()
        except StoreError as exc:
            self._db.close()
            if not self._unwritable(str(exc)):
                raise
            self._open_read_only()
        except BaseException:
            self._db.close()
            raise

    # ------------------------------------------------------------------ opening

    def _unwritable(self, text: str) -> bool:
        """Whether an error opening the store came from a file or directory that may
        not be written, while the file exists (and may be read)."""
        if "unable to open" not in text and "readonly" not in text:
            return False
        path = self.path
        return (path.is_file() and path.stat().st_size > 0 and os.access(path, os.R_OK)
                and not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)))

    def _open_read_only(self) -> None:
        """Open the store for reading only. In a directory that may not be written
        SQLite cannot make a WAL file's shared-memory index; the store is then opened
        as immutable (nothing can write it there)."""
        from urllib.parse import quote

        uri = "file:" + quote(str(self.path.absolute()))
        mode = "?mode=ro" if os.access(self.path.parent, os.W_OK) else "?immutable=1"
        try:
            self._db = sqlite3.connect(uri + mode, uri=True, timeout=self.timeout,
                                       isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        self.read_only = True
        try:
            version = self._version()
            if version > SCHEMA_VERSION:
                self._too_new()
            if version < SCHEMA_VERSION:
                raise StoreError(
                    f"the store {self.path} has schema version {version} and may not be "
                    f"written (the file or its directory is read-only), so it cannot be "
                    f"upgraded to version {SCHEMA_VERSION}; copy it to a writable "
                    "directory, or make it writable")
        except sqlite3.Error as exc:
            self._db.close()
            raise self._error(exc) from None
        except BaseException:
            self._db.close()
            raise

    def _error(self, exc: sqlite3.Error) -> StoreError:
        """The user's view of a SQLite error on this store: what is wrong and the fix."""
        text = str(exc)
        if "locked" in text or "busy" in text:
            return StoreError(
                f"the store {self.path} is locked by another process ({text}; waited "
                f"{self.timeout:g}s); let the other job finish, or give another store file")
        if "not a database" in text or "malformed" in text or "encrypted" in text:
            return StoreError(
                f"{self.path} is not a SQLite database ({text}){self._looks_like_a_trace()}"
                "; give the path of a store written by `converge run --store`, or a new "
                "file name to start one")
        if "full" in text or "disk I/O" in text:  # ENOSPC, or EFBIG past a size limit
            return StoreError(
                f"cannot write the store {self.path}: the disk is full, or the file may not "
                f"grow ({text}); free some space or give a store on another disk (the "
                "cycles committed before are kept)")
        if ("readonly" in text or "unable to open" in text) and not (
                os.access(self.path.parent, os.W_OK)
                and (not self.path.exists() or os.access(self.path, os.W_OK))):
            return StoreError(
                f"cannot write the store {self.path}: the file or its directory is "
                f"read-only ({text}); make it writable, or give a store in a writable "
                "directory (reading it works: store info, trace export, verify, replay)")
        return StoreError(f"the store {self.path}: {text}")

    def _looks_like_a_trace(self) -> str:
        """A hint when the file that is no database starts as a JSON Lines trace does."""
        try:
            with open(self.path, "rb") as file:
                start = file.read(64).lstrip()
        except OSError:
            return ""
        if not start.startswith(b"{"):
            return ""
        return (": it looks like a JSON Lines trace (`converge run --trace` writes one), "
                "which `converge verify`, `converge replay` and `converge report` read as "
                "it is")

    def _open(self) -> None:
        db = self._db
        try:
            # first refuse a file that is no store of ours, or a newer one, before
            # anything is written: the WAL pragma below rewrites the file's header
            version = self._version()
            if version > SCHEMA_VERSION:
                self._too_new()
            if version == 0:
                # a new, empty file: switching it to WAL commits a header through a
                # rollback journal, three or four fsyncs at `FULL` (half the cost of
                # opening a store); it holds nothing a power loss could take, so the
                # switch is not synced (the first checkpoint syncs the file)
                db.execute("PRAGMA synchronous=OFF")
            # WAL: readers (trace export, store info) never block the job's commits.
            db.execute("PRAGMA journal_mode=WAL").fetchone()
            db.execute("PRAGMA synchronous=NORMAL")
            self._migrate()
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    def _version(self) -> int:
        tables = {row[0] for row in self._db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "schema_version" not in tables:
            if tables:
                raise StoreError(
                    f"{self.path} is a SQLite database but not a converge store (it has "
                    f"tables {', '.join(sorted(tables))} and no schema_version); give the "
                    "path of a store written by `converge run --store`, or a new file name "
                    "to start one")
            return 0
        row = self._db.execute("SELECT max(version) FROM schema_version").fetchone()
        return int(row[0] or 0)

    def _migrate(self) -> None:
        """Apply the missing migrations, each in its own transaction (with
        ``BEGIN IMMEDIATE``: two processes opening a new file migrate it once)."""
        upto = SCHEMA_VERSION
        version = self._version()
        if version > SCHEMA_VERSION:
            self._too_new()
        if version == upto:
            # nothing to migrate: no write lock (a reader need not wait for a job's
            # commit, nor a job for a long one of another process, to open the store)
            return
        db = self._db
        while True:
            db.execute("BEGIN IMMEDIATE")
            try:
                version = self._version()
                if version >= upto:
                    db.execute("COMMIT")
                    break
                if version == 0:
                    db.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, "
                               "applied TEXT NOT NULL)")
                MIGRATIONS[version](db)
                db.execute("INSERT INTO schema_version VALUES (?, ?)", (version + 1, _now()))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        if self._version() > SCHEMA_VERSION:  # another process upgraded it meanwhile
            self._too_new()

    def _too_new(self) -> None:
        raise StoreError(
            f"{self.path} has store schema version {self._version()}, newer than this "
            f"converge knows ({SCHEMA_VERSION}); upgrade converge (pip install -U "
            "converge-rules) to use it, or give another store file")

    @property
    def schema_version(self) -> int:
        return self._version()

    # ------------------------------------------------------------------ writing

    def _write(self, statements: Iterable[_Statement], *,
               check: Callable[[sqlite3.Connection], None] | None = None,
               cycle: int | Sequence[int] | None = None) -> None:
        """Run ``(sql, parameters, many)`` statements in one write transaction, after
        ``check`` (which may raise to write nothing) has seen the database under the
        write lock. ``cycle`` is the cycle (or cycles) committed, for the ``commit``
        crash point."""
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                if check is not None:
                    check(db)
                for sql, params, many in statements:
                    if many:
                        db.executemany(sql, params)  # type: ignore[arg-type]
                    else:
                        db.execute(sql, params)  # type: ignore[arg-type]
                if cycle is not None and self.crash_at is not None:
                    for c in (cycle,) if isinstance(cycle, int) else cycle:
                        _crash.crash(self.crash_at, "commit", c)
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    def new_job(self, ruleset: str, spec: JobSpec | None = None) -> SqliteJob:
        """The sink of a new job of ``ruleset``; the job is recorded (as ``running``,
        with its id, and with ``spec`` when given: what resuming it needs) when the
        engine enters the sink."""
        return SqliteJob(self, ruleset, spec)

    def resume_job(self, job: int, expected_lines: int) -> SqliteJob:
        """The sink that continues ``job`` (see :class:`~converge_rules.store.base.
        ResumableSink`); its trace has ``expected_lines`` lines now."""
        sink = SqliteJob(self, "", None)
        sink.id = job
        sink.expected_lines = expected_lines
        return sink

    def job_spec(self, job: int) -> tuple[JobSpec, str, int] | None:
        rows = self._read("SELECT settings, inputs, host, pid FROM job_specs WHERE job = ?",
                          (job,))
        if not rows:
            return None
        settings, inputs, host, pid = rows[0]
        return JobSpec(str(settings), str(inputs)), str(host), int(pid)

    def _insert_job(self, ruleset: str, spec: JobSpec | None = None) -> int:
        try:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                cursor = db.execute(
                    "INSERT INTO jobs (ruleset, status, started) VALUES (?, 'running', ?)",
                    (ruleset, _now()))
                if spec is not None:
                    db.execute("INSERT INTO job_specs (job, settings, inputs, host, pid) "
                               "VALUES (?, ?, ?, ?, ?)",
                               (cursor.lastrowid, spec.settings, spec.inputs, _host(),
                                os.getpid()))
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    # ------------------------------------------------------------------ reading

    def _read(self, sql: str, params: Sequence[object] = ()) -> list[Any]:
        try:
            return list(self._db.execute(sql, params))
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    def jobs(self) -> list[JobInfo]:
        rows = self._read("""
            SELECT j.id, j.ruleset, j.status, j.detail, j.started, j.finished,
                   coalesce(max(c.cycle), -1), coalesce(sum(c.lines), 0),
                   coalesce(sum(c.bytes), 0)
            FROM jobs j LEFT JOIN cycles c ON c.job = j.id
            GROUP BY j.id ORDER BY j.id""")
        return [JobInfo(int(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]),
                        None if r[5] is None else str(r[5]), max(int(r[6]), 0),
                        int(r[7]), int(r[8]))
                for r in rows]

    def job(self, job: int | None) -> JobInfo:
        """The job ``job``, or the newest when None; a :class:`StoreError` naming the
        jobs there are when there is no such job."""
        jobs = self.jobs()
        if not jobs:
            raise StoreError(f"the store {self.path} holds no jobs yet; run one with "
                             f"`converge run RULESET --store {self.path}`")
        if job is None:
            return jobs[-1]
        for info in jobs:
            if info.id == job:
                return info
        ids = ", ".join(str(j.id) for j in jobs[-10:])
        raise StoreError(f"the store {self.path} has no job {job}; its "
                         f"{'newest ' if len(jobs) > 10 else ''}jobs are {ids} "
                         "(`converge store info` lists them)")

    def trace_lines(self, job: int) -> Iterator[str]:
        """The trace of ``job`` in order, read in batches (a long trace is never held
        in memory whole): the lines an older converge stored as lines, then the rows
        of raw events expanded to their lines (:mod:`converge_rules.engine.tracerows`:
        exactly what ``--trace`` writes), the line chain going on across both."""
        from converge_rules.engine.tracerows import read_rows
        from converge_rules.integrity import GENESIS, split_hash

        seq = -1
        last = ""
        count = 0
        while True:
            rows = self._read("SELECT seq, line FROM trace_lines WHERE job = ? AND seq > ? "
                              "ORDER BY seq LIMIT 5000", (job, seq))
            if not rows:
                break
            for row in rows:
                last = str(row[1])
                yield last
            count += len(rows)
            seq = int(rows[-1][0])
        digest = split_hash(last)[1] if last else None
        yield from read_rows(self._trace_rows(job),
                             GENESIS if digest is None else bytes.fromhex(digest), count)

    def _trace_rows(self, job: int) -> Iterator[Row]:
        """Each trace row of ``job`` in order (:data:`~converge_rules.engine.tracerows.
        Row`: the columns the row chain covers as stored, so that an edit shows), in
        pages."""
        seq = -1
        while True:
            rows = self._read("SELECT seq, cycle, lines, kind, data, packed, hash "
                              "FROM trace_rows WHERE job = ? AND seq > ? ORDER BY seq "
                              "LIMIT 256", (job, seq))
            for first, cycle, lines, kind, data, packed, digest in rows:
                # (a row of format rawm: its bytes; any other: its text; both stored,
                # or text stored as the bytes, which no converge writes: the bytes of
                # both, so that the chain covers them and the row reads as tampered)
                text: str | bytes = str(data)
                if packed is not None:
                    head = b"" if data == "" and type(packed) is bytes else str(
                        data).encode("utf-8", "surrogatepass")
                    text = head + (packed.encode("utf-8", "surrogatepass")
                                   if type(packed) is str else bytes(packed))
                yield first, cycle, lines, str(kind), text, str(digest)
            if len(rows) < 256:
                return
            seq = int(rows[-1][0])

    def checkpoints(self, job: int, last: int, *, since: int | None = None
                    ) -> Iterator[tuple[int, str, bytes]]:
        """``(cycle, kind, data)`` of the checkpoints of ``job`` up to cycle ``last``,
        oldest first: from the cycle ``since``, or (None) from its newest snapshot at
        or before ``last`` (nothing when it has none)."""
        if since is None:
            found = self._read("SELECT max(cycle) FROM checkpoints WHERE job = ? AND "
                               "kind = 'snapshot' AND cycle <= ?", (job, last))
            if not found or found[0][0] is None:
                return
            since = int(found[0][0])
        at = since
        while True:  # in pages: a long job's checkpoints need not be in memory at once
            rows = self._read("SELECT cycle, kind, data FROM checkpoints WHERE job = ? "
                              "AND cycle >= ? AND cycle <= ? ORDER BY cycle LIMIT 256",
                              (job, at, last))
            for cycle, kind, data in rows:
                yield int(cycle), str(kind), bytes(data)
            if len(rows) < 256:
                return
            at = int(rows[-1][0]) + 1

    def checkpoint_sizes(self, job: int) -> dict[int, tuple[str, int]]:
        """``cycle → (kind, bytes)`` of the checkpoints of ``job``."""
        return {int(c): (str(k), int(b)) for c, k, b in self._read(
            "SELECT cycle, kind, length(data) FROM checkpoints WHERE job = ?", (job,))}

    def cycle_sizes(self, job: int) -> list[tuple[int, int, int]]:
        totals: dict[int, list[int]] = {}
        for row in self._read("SELECT cycle, lines, bytes, sizes FROM cycles WHERE job = ? "
                              "ORDER BY cycle", (job,)):
            for cycle, lines, size in cycle_entries(*row):
                total = totals.get(cycle)
                if total is None:
                    totals[cycle] = [lines, size]
                else:  # a cycle in two rows (the lines after it, committed later)
                    total[0] += lines
                    total[1] += size
        return [(c, n, b) for c, (n, b) in sorted(totals.items())]

    def info(self) -> StoreInfo:
        """Sizes: the file (with its WAL), and each table's rows and bytes on disk (from
        SQLite's ``dbstat`` where it is compiled in, else the bytes of its text)."""
        total = sum(p.stat().st_size for p in (self.path, Path(f"{self.path}-wal"))
                    if p.exists())
        tables: dict[str, dict[str, int]] = {}
        try:
            pages = {str(r[0]): int(r[1]) for r in self._db.execute(
                "SELECT name, sum(pgsize) FROM dbstat GROUP BY name")}
        except sqlite3.Error:  # dbstat is a compile-time option
            pages = {}
        for name in ("jobs", "trace_lines", "trace_rows", "cycles", "job_specs",
                     "knowledge", "blobs", "job_blobs", "checkpoints", "decisions",
                     "timings", "schema_version"):
            rows = int(self._read(f"SELECT count(*) FROM {name}")[0][0])
            tables[name] = {"rows": rows, "bytes": pages.get(name, 0)}
        if not pages:
            text = self._read("SELECT coalesce(sum(length(CAST(line AS BLOB))), 0) "
                              "FROM trace_lines")[0][0]
            tables["trace_lines"]["bytes"] = int(text)
            text = self._read("SELECT coalesce(sum(length(data) + coalesce(length(packed), "
                              "0)), 0) FROM trace_rows")[0][0]
            tables["trace_rows"]["bytes"] = int(text)
        return StoreInfo(self.location, self._version(), total, tables, self.jobs())

    def timings(self, job: int) -> list[dict[str, Any]]:
        """The timings records of ``job`` (see :mod:`converge_rules.engine.timings`) in
        the order recorded; none when the job was not timed."""
        out: list[dict[str, Any]] = []
        for cycle, kind, agent, tool, key, source, seconds, merge in self._read(
                "SELECT cycle, kind, agent, tool, call_key, source, seconds, merge_seconds "
                "FROM timings WHERE job = ? ORDER BY seq", (job,)):
            if kind == "cycle":
                out.append({"kind": "cycle", "cycle": int(cycle), "evaluate": float(seconds),
                            "merge": float(merge or 0.0)})
            elif kind == "agent":
                out.append({"kind": "agent", "cycle": int(cycle), "agent": agent,
                            "seconds": float(seconds)})
            else:
                out.append({"kind": "tool", "cycle": int(cycle), "agent": agent,
                            "tool": tool, "key": key, "seconds": float(seconds),
                            "source": source})
        return out

    def blob(self, handle: str) -> str | None:
        """The text of the payload ``handle`` (``sha256:…``), or None when the store
        does not hold it."""
        rows = self._read("SELECT data FROM blobs WHERE hash = ?", (handle,))
        return bytes(rows[0][0]).decode("utf-8", "surrogatepass") if rows else None

    # ---------------------------------------------------------------- approvals

    def _approval_lines(self, db: Any, job: int) -> list[str]:
        """The lines of ``job``'s trace that hold approval events, ``pending_dropped``
        included (the filter is a superset: :mod:`~converge_rules.store.approvals`
        parses them). Only a job whose trace rows mention approvals has its trace
        expanded to find them (a fact is dropped only after it was held)."""
        if db.execute("SELECT 1 FROM trace_rows WHERE job = ? AND data LIKE ? LIMIT 1",
                      (job, "%approval%")).fetchone() is not None:
            return [line for line in self.trace_lines(job)
                    if '"event":"approval_' in line or '"event":"pending_dropped"' in line]
        return [str(r[0]) for r in db.execute(
            "SELECT line FROM trace_lines WHERE job = ? AND (line LIKE ? OR line LIKE ?) "
            "ORDER BY seq", (job, '%"event":"approval_%', '%"event":"pending_dropped"%'))]

    def pending(self, job: int) -> list[PendingFact]:
        """The facts of ``job`` its gates hold and no decision in its trace decided
        (those a paused job waits on), in id order, each with its derivation in
        short. Decisions recorded since the job stopped do not change the list."""
        from converge_rules.store import approvals

        try:
            lines = self._approval_lines(self._db, job)
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        needed = approvals.pending_events(lines)
        if not any(e.get("support") for e in needed):
            return approvals.pending_facts(lines)
        return approvals.pending_facts(lines, self.trace_lines(job))

    def decisions(self, job: int) -> list[StoredDecision]:
        """The decisions recorded on ``job``'s pending facts, in the order recorded."""
        from converge_rules.store.approvals import StoredDecision

        return [StoredDecision(str(i), str(d), str(by), str(at), str(note), json.loads(edits),
                               int(paused))
                for i, d, by, at, note, edits, paused in self._read(
                    "SELECT id, decision, decided_by, decided_at, note, edits, paused_at "
                    "FROM decisions WHERE job = ? ORDER BY seq", (job,))]

    def record_decision(self, job: int, decision: StoredDecision) -> StoredDecision:
        """Keep ``decision`` for ``job``, taken at the job's pause: its ``paused_at`` is
        set to the job's last committed cycle, read under the write lock (whatever the
        given one says). A :class:`StoreError` saying why not when the job is not
        awaiting approval, the id is not pending in it, or the fact has a decision
        already (a decision is final: the resumed job applies it). The decision as
        kept."""
        from converge_rules.store import approvals

        info = self.job(job)
        if decision.decision not in approvals.KINDS:
            raise StoreError(f"a decision is approve or reject, not {decision.decision!r}")
        if decision.edits and decision.decision != "approve":
            raise StoreError("only an approval changes field values; a rejection has no "
                             "edits")
        where = f"job {info.id} of {self.location}"
        paused: list[int] = []  # the pause check saw, under the write lock

        def check(db: sqlite3.Connection) -> None:
            row = db.execute("SELECT status FROM jobs WHERE id = ?", (job,)).fetchone()
            status = str(row[0]) if row is not None else "deleted"
            lines = self._approval_lines(db, job)
            if decision.id in approvals.decided_ids(lines):
                raise StoreError(f"{decision.id} of {where} was decided already (its "
                                 "trace holds the decision the job applied)")
            old = db.execute("SELECT decision, decided_by, decided_at FROM decisions "
                             "WHERE job = ? AND id = ?", (job, decision.id)).fetchone()
            if old is not None:
                raise StoreError(
                    f"{decision.id} of {where} has a decision already: {old[0]} by "
                    f"{old[1]} at {old[2]}; a decision is final (`converge pending "
                    f"{self.location} --job {job}` lists what is left to decide)")
            if status != approvals.AWAITING:
                raise StoreError(
                    f"{where} is not awaiting approval (its status is {status}); only a "
                    "job stopped with status awaiting_approval takes decisions")
            ids = [str(e.get("id")) for e in approvals.pending_events(lines)]
            if decision.id not in ids:
                shown = ", ".join(ids[:10]) + (" …" if len(ids) > 10 else "")
                raise StoreError(
                    f"no fact {decision.id} is pending in {where}; pending: "
                    f"{shown or 'none'} (`converge pending {self.location} --job {job}` "
                    "lists them with their facts)")
            last = db.execute("SELECT coalesce(max(cycle), 0) FROM cycles WHERE job = ?",
                              (job,)).fetchone()
            paused.append(int(last[0]))

        # paused_at is read again by the statement, in check's transaction: the same
        self._write([(
            "INSERT INTO decisions (job, id, seq, decision, decided_by, decided_at, note, "
            "edits, paused_at) SELECT ?, ?, coalesce(max(seq), 0) + 1, ?, ?, ?, ?, ?, "
            "(SELECT coalesce(max(cycle), 0) FROM cycles WHERE job = ?) FROM decisions "
            "WHERE job = ?",
            (job, decision.id, decision.decision, decision.by, decision.at, decision.note,
             json.dumps(decision.edits, sort_keys=True, ensure_ascii=False), job, job),
            False)], check=check)
        return replace(decision, paused_at=paused[-1])

    # ---------------------------------------------------------------- retention

    def gc(self, keep_last: int, *, vacuum: bool = True) -> list[int]:
        """Delete every finished job but the ``keep_last`` newest; a ``running`` job —
        running now in another process, or whose process died (resumable) — and a job
        ``awaiting_approval`` are never deleted. With ``vacuum``, give the freed pages
        (of these jobs, or of an earlier ``gc`` that could not) back to the file system
        (else later jobs reuse them); :class:`~converge_rules.errors.StoreNotCompacted`
        when the disk has no room for that. The ids deleted, oldest first."""
        if keep_last < 0:
            raise StoreError(f"--keep-last must be 0 or more, not {keep_last}")
        # a job awaiting approval waits on people, however old: it is kept as well
        ids = [j.id for j in self.jobs() if j.status not in ("running", "awaiting_approval")]
        doomed = ids[:max(len(ids) - keep_last, 0)]
        if doomed:
            self._delete_jobs(doomed)
        if not vacuum or not (doomed or self._free_pages()):
            return doomed
        try:
            # give the pages back to the file system (VACUUM cannot run in a transaction)
            self._db.execute("VACUUM")
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            text = str(exc)
            if "full" not in text and "disk I/O" not in text:
                raise self._error(exc) from None
            kept = self._kept_bytes()
            raise StoreNotCompacted(
                f"the store {self.path} could not shrink: compacting it writes a copy of "
                f"what it keeps (about {kept:,} bytes) and the disk is full, or the file "
                f"may not grow ({text}); the space of the jobs deleted is free inside the "
                "store, and later jobs reuse it. Free that much disk space and run "
                "`converge store gc` again: it gives the space back", doomed) from None
        return doomed

    def _delete_jobs(self, doomed: list[int]) -> None:
        marks = ", ".join("?" * len(doomed))
        # SQLite built with secure_delete on (Debian's is) zeroes every page a delete
        # frees, each one written to the WAL: deleting N MB of jobs needed N MB of disk,
        # so on a nearly full disk gc freed nothing. FAST overwrites what it deletes on
        # the pages written anyway; the VACUUM after rewrites the file without the free
        # pages (what they held leaves the file then).
        row = self._db.execute("PRAGMA secure_delete").fetchone()
        self._db.execute("PRAGMA secure_delete=FAST")
        try:
            # a finished job never runs again (until resume, which will take the write
            # lock to mark it running before its first cycle)
            self._write([*(
                (f"DELETE FROM {table} WHERE {column} IN ({marks})", doomed, False)
                for table, column in (("trace_lines", "job"), ("trace_rows", "job"),
                                      ("cycles", "job"),
                                      ("job_specs", "job"), ("knowledge", "job"),
                                      ("job_blobs", "job"), ("checkpoints", "job"),
                                      ("decisions", "job"), ("timings", "job"),
                                      ("jobs", "id"))
            ), _DROP_UNREFERENCED_BLOBS])
        finally:
            if row is not None:
                self._db.execute(f"PRAGMA secure_delete={int(row[0])}")

    def _free_pages(self) -> int:
        """The pages of the file no table uses (0 where the backend does not say)."""
        row = self._db.execute("PRAGMA freelist_count").fetchone()
        return int(row[0]) if row else 0

    def _kept_bytes(self) -> int:
        """The bytes of the pages the tables use: what compacting the file copies."""
        rows = [self._db.execute(f"PRAGMA {name}").fetchone()
                for name in ("page_count", "page_size")]
        if rows[0] is None or rows[1] is None:
            return 0
        return (int(rows[0][0]) - self._free_pages()) * int(rows[1][0])

    # ------------------------------------------------------------------ closing

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _text_row(lines: Sequence[str]) -> CompactCycle:
    """Trace lines handed as text, as the row that keeps them verbatim."""
    from converge_rules.engine.tracerows import text_row

    return text_row(lines)


_FIRST_ROW = GENESIS.hex()
"""What the first trace row of a job follows in the row chain (engine/tracerows.py)."""

_RAW = "raw"
"""The format of a row of raw event tuples (engine/tracerows.py ``RAW``)."""
_RAWS = frozenset({_RAW, "rawm"})
"""The formats of a run of raw cycles (engine/tracerows.py ``RAW`` and ``RAWM``)."""


JOIN_BYTES = 16_384
"""The raw events of the cycles a transaction commits share a trace row until it holds
this much text (a cycle larger than that has a row of its own: joining saves nothing
there, and a reader expands one row at a time)."""

_ADD_CYCLES = (
    "INSERT INTO cycles (job, cycle, lines, bytes, sizes) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (job, cycle) DO UPDATE SET lines = cycles.lines + excluded.lines, "
    "bytes = cycles.bytes + excluded.bytes, sizes = coalesce(cycles.sizes, "
    "CAST(cycles.cycle AS TEXT) || ',' || CAST(cycles.lines AS TEXT) || ',' || "
    "CAST(cycles.bytes AS TEXT) || ';') || coalesce(excluded.sizes, "
    "CAST(excluded.cycle AS TEXT) || ',' || CAST(excluded.lines AS TEXT) || ',' || "
    "CAST(excluded.bytes AS TEXT) || ';')")
"""A transaction's ``cycles`` row (:func:`cycles_row`). A row ending with the cycle
another row ends with (the lines after a job's last cycle, committed after it) is
appended to that row; columns qualified: in PostgreSQL a bare ``lines`` is ambiguous
here."""


def encode_sizes(flat: Sequence[int]) -> str:
    """The ``sizes`` text of a ``cycles`` row holding the cycles ``flat``
    (``cycle, lines, bytes`` of each, in order): for each cycle, comma-separated, its
    number (each but the first as its distance from the one before: 1 in a run), lines
    and bytes; ``N*`` before a distance says that cycle and the ``N - 1`` after it are
    alike (a run of short cycles is a few numbers, not three a cycle: a row's text
    stays within its page); ended by ``;``. Two such texts joined are one (the first
    cycle of each is absolute)."""
    cycles = flat[0::3]
    parts = [f"{flat[0]},{flat[1]},{flat[2]}"]
    for (step, lines, size), alike in groupby(zip(
            map(operator.sub, cycles[1:], cycles[:-1]), flat[4::3], flat[5::3],
            strict=True)):
        n = len(list(alike))
        parts.append(f"{n}*{step},{lines},{size}" if n > 1 else f"{step},{lines},{size}")
    return ",".join(parts) + ";"


def cycle_entries(cycle: int, lines: int, size: int, sizes: str | None
                  ) -> list[tuple[int, int, int]]:
    """``(cycle, lines, bytes)`` of each cycle a ``cycles`` row holds, in order (a
    cycle may come twice): a row without ``sizes`` holds its one cycle. A row that is
    not one :func:`encode_sizes` writes (edited: the column is outside the trace's
    chain) raises ``StoreError``, never expanded past its own cycle (a forged run
    count of 10**11 is not a list of 10**11 entries)."""
    try:
        if sizes is None:
            return [(int(cycle), int(lines), int(size))]
        return _entries(int(cycle), str(sizes))
    except (ValueError, TypeError, IndexError) as exc:
        raise StoreError(f"a damaged row of the store's cycles table (cycle {cycle!r}, "
                         f"sizes {str(sizes)[:40]!r}): {exc}; `converge verify` checks "
                         "the trace itself") from None


def _entries(last: int, sizes: str) -> list[tuple[int, int, int]]:
    out: list[tuple[int, int, int]] = []
    parts = sizes.split(";")
    if parts.pop() != "":
        raise ValueError("not ended by ;")
    for part in parts:
        numbers = part.split(",")
        if len(numbers) % 3 or not numbers[0]:
            raise ValueError("not three numbers a cycle")
        at = 0
        for k in range(0, len(numbers), 3):
            step, n = numbers[k], 1
            if k and "*" in step:
                count, step = step.split("*")
                n = int(count)
            d, count_lines, count_bytes = int(step), int(numbers[k + 1]), int(numbers[k + 2])
            # cycles never go back nor past the row's own (its last); a run of one
            # cycle again (distance 0) is a few entries at most, never thousands
            if d < 0 or n < 1 or at + d * n > last or (d == 0 and n > 16):
                raise ValueError("cycles out of order or past the row's")
            for _ in range(n):
                at += d
                out.append((at, count_lines, count_bytes))
    return out


def cycles_row(job: int | None, flat: Sequence[int]) -> tuple[object, ...]:
    """The ``cycles`` row of a transaction's cycles ``flat`` (``cycle, lines, bytes``
    of each, in order): keyed by its last cycle, with their totals; one cycle alone
    as rows were before migration 12 (no ``sizes``)."""
    if len(flat) == 3:
        return (job, flat[0], flat[1], flat[2], None)
    return (job, max(flat[0::3]), sum(flat[1::3]), sum(flat[2::3]), encode_sizes(flat))


_DROP_UNREFERENCED_BLOBS: _Statement = (
    "DELETE FROM blobs WHERE NOT EXISTS "
    "(SELECT 1 FROM job_blobs WHERE job_blobs.hash = blobs.hash)", (), False)
"""Payloads no job references any more (after a job was deleted)."""


class SqliteJob:
    """The trace sink of one job in a :class:`SqliteStore` (a
    :class:`~converge_rules.store.base.CycleSink` with group commit, a
    :class:`~converge_rules.store.base.GroupCommitSink`, and a
    :class:`~converge_rules.store.base.CompactSink`): each cycle's trace row (its raw
    events, or lines handed as text) and its ``cycles`` row in one transaction, shared
    with the cycles before it that waited (:meth:`cycle_ended`); the status with the
    last lines when closed."""

    def __init__(self, store: SqliteStore, ruleset: str, spec: JobSpec | None = None
                 ) -> None:
        self.store = store
        self.ruleset = ruleset
        self.spec = spec
        #: the job's id, once the job is recorded (on entering the sink)
        self.id: int | None = None
        #: a resumed job's trace lines as read (checked when it reopens), else None
        self.expected_lines: int | None = None
        self._seq = 0
        #: the first line number of what waits (the lines committed before it)
        self._base = 0
        #: the trace of the cycles waiting raw (cycles_raw)
        self._trace: Trace | None = None
        self._keep = 0  # a resumed job's: where its stored trace is cut (reopen)
        self._cycle = 0
        self._open = True
        self._reopen: list[_Statement] = []
        #: knowledge rows and blobs for the next commit's transaction
        self._staged: list[_Statement] = []
        self._timing_seq: int | None = None  # the next timings row's seq, once known
        #: what the next commit writes: each cycle's trace events (its first line's
        #: number, the cycle, the events, whether they may share a row with the next
        #: cycle's), the cycles themselves, the cycles whose checkpoint is staged
        #: (a row ends with each: a resume truncates the trace there), and the
        #: knowledge rows staged (what knowledge_rows adds to the committed ones)
        #: (a raw cycle's events are its place in the trace and the ids of the facts
        #: it merged, ``(start, end, first id, next id)``, until encode_waiting)
        self._pending: list[tuple[int, int, Any, bool]] = []
        #: the hash of the job's last trace row (the row chain goes on from it), and
        #: whether this sink wrote the job's names in a row yet
        self._previous = _FIRST_ROW
        #: 0, 1 (a row of events carried them) or 2 (a raw row: names and reasons)
        self._named = 0
        self._waiting: list[int] = []
        self._checkpointed: set[int] = set()
        self._knowledge: list[KnowledgeRow] = []
        #: when the last commit ended (monotonic seconds; -inf after reopen: the
        #: first cycle commits the reopening at once)
        self._since = time.monotonic()

    def reopen(self, keep: int, cycle: int, lines: int, size: int) -> None:
        """See :class:`~converge_rules.store.base.ResumableSink`."""
        assert self.id is not None and self.expected_lines is not None
        job = self.id
        # the row chain goes on from the last row kept (a row ends where a cycle with
        # a checkpoint, or the lines after the last cycle, end: `keep` is where one
        # ends)
        kept = self.store._read("SELECT hash FROM trace_rows WHERE job = ? AND seq < ? "
                                "ORDER BY seq DESC LIMIT 1", (job, keep))
        self._previous = str(kept[0][0]) if kept else _FIRST_ROW
        # the cycles kept: the rows holding `cycle` or later are cut after it (a row
        # holds a transaction's cycles) and `cycle`'s lines and bytes set to those kept
        cut: list[int] = []
        found = False
        for row in self.store._read("SELECT cycle, lines, bytes, sizes FROM cycles "
                                    "WHERE job = ? AND cycle >= ? ORDER BY cycle",
                                    (job, cycle)):
            for entry in cycle_entries(*row):
                if entry[0] < cycle:
                    cut += entry
                found = found or entry[0] == cycle
        if found:
            cut += (cycle, lines, size)
        self._reopen = [
            ("DELETE FROM trace_lines WHERE job = ? AND seq >= ?", (job, keep), False),
            ("DELETE FROM trace_rows WHERE job = ? AND seq >= ?", (job, keep), False),
            ("DELETE FROM cycles WHERE job = ? AND cycle >= ?", (job, cycle), False),
            ("DELETE FROM timings WHERE job = ? AND cycle > ?", (job, cycle), False),
            ("DELETE FROM checkpoints WHERE job = ? AND cycle > ?", (job, cycle), False),
            *([(_ADD_CYCLES, cycles_row(job, cut), False)] if cut else []),
            ("UPDATE jobs SET status = 'running', detail = '', finished = NULL "
             "WHERE id = ?", (job,), False),
            ("UPDATE job_specs SET host = ?, pid = ? WHERE job = ?",
             (_host(), os.getpid(), job), False),
        ]
        self._since = -math.inf  # (the first cycle commits the reopening at once)
        self._seq = self._keep = self._base = keep
        self._cycle = cycle

    def _unchanged(self, db: sqlite3.Connection) -> None:
        """Under the write lock, before a resumed job's first commit: nobody else
        wrote the job since it was read (another resume of it, say)."""
        row = db.execute("SELECT (SELECT count(*) FROM trace_lines WHERE job = ?) + "
                         "(SELECT coalesce(sum(lines), 0) FROM trace_rows WHERE job = ?)",
                         (self.id, self.id)).fetchone()
        # (at `keep`, where the trace is cut: `_seq` is past the cycles added since)
        straddles = db.execute(
            "SELECT count(*) FROM trace_rows WHERE job = ? AND seq < ? AND seq + lines > ?",
            (self.id, self._keep, self._keep)).fetchone()
        if int(straddles[0]):  # pragma: no cover - rows end where checkpoints are
            raise StoreError(f"job {self.id} of {self.store.path} cannot be resumed at "
                             f"trace line {self._keep}: a stored row holds lines on both "
                             "sides; start a new job")
        if int(row[0]) != self.expected_lines:
            raise StoreError(
                f"job {self.id} of {self.store.path} changed while it was being resumed "
                f"(another process resumed it?); `converge store info {self.store.path}` "
                "shows it now")

    def cycle_committed(self, cycle: int, lines: Sequence[str]) -> None:
        """Commit ``cycle``'s lines now, with the cycles waiting before it: when this
        returns, all of them survive a crash of the process."""
        self._add(cycle, _text_row(lines))
        self._commit(None)

    def cycle_ended(self, cycle: int, lines: Sequence[str]) -> None:
        """``cycle`` ended without calling a tool: its lines may wait for the next
        cycles' transaction. They are committed now when :attr:`SqliteStore.
        group_cycles` cycles wait, when :attr:`SqliteStore.group_seconds` have passed
        since the last commit, or when the commit also reopens a resumed job."""
        self._add(cycle, _text_row(lines))
        store = self.store
        if (len(self._waiting) >= store.group_cycles or self._reopen
                or time.monotonic() - self._since >= store.group_seconds):
            self._commit(None)

    def commit_due(self, tools: bool) -> bool:
        """Whether the cycle about to be handed over (:meth:`cycles_raw`,
        :meth:`cycle_waits`) is committed as it ends (``tools``: it called a tool),
        else waits for a later transaction; the engine then commits (:meth:`commit_waiting`) as this
        decided, and stages the checkpoint of only the cycle a transaction ends with
        (:mod:`converge_rules.engine.checkpoints`)."""
        store = self.store
        return bool(tools or len(self._waiting) + 1 >= store.group_cycles or self._reopen
                    or time.monotonic() - self._since >= store.group_seconds)

    def raw_due(self, held: int) -> bool:
        """See :class:`~converge_rules.store.base.CompactSink`: :meth:`commit_due`'s
        rule for a cycle that called no tool, with ``held`` cycles (this one
        included) ended and not handed over yet. (A reopening's is due at once, by
        its ``_since``. This runs each cycle; ``group_seconds`` is read each time: a
        store's may change as a job runs.)"""
        store = self.store
        return (len(self._waiting) + held >= store.group_cycles
                or time.monotonic() - self._since >= store.group_seconds)

    def cycles_raw(self, trace: Trace, cycles: Sequence[tuple[int, int, int, int]],
                   start: int, first_id: int) -> None:
        """See :class:`~converge_rules.store.base.CompactSink`: ``cycles`` (each
        ``(cycle, where its events end, the next fact id after it, …)``, in order) ended,
        their events ``[start, …)`` of ``trace``, the facts they merged from
        ``first_id`` on; nothing is encoded until the commit, or until the engine's
        trace would spill them (:meth:`encode_waiting`). The last one is kept apart
        (a transaction's last cycle has a row of its own: see :meth:`_rows`)."""
        if self.id is None:
            self.id = self.store._insert_job(self.ruleset, self.spec)
        self._trace = trace
        pending = self._pending
        if len(cycles) > 1:
            cycle, end, next_id, _ = cycles[-2]
            pending.append((-1, cycle, (start, end, first_id, next_id, cycles[:-1]), True))
            start, first_id = end, next_id
        cycle, end, next_id, _ = cycles[-1]
        pending.append((-1, cycle, (start, end, first_id, next_id, cycles[-1:]), True))
        self._waiting += [c[0] for c in cycles]
        self._cycle = cycle

    def cycle_waits(self, cycle: int, events: CompactCycle) -> None:
        """See :class:`~converge_rules.store.base.CompactSink`: ``cycle``'s events,
        made by :func:`~converge_rules.engine.tracerows.compact`, wait for the
        commit."""
        self._add(cycle, events, joins=True)

    def encode_waiting(self) -> list[int]:
        """See :class:`~converge_rules.store.base.CompactSink`: the raw cycles waiting
        encoded, each run of them next to each other as one row of format ``raw``
        (:func:`~converge_rules.engine.tracerows.raw_run`; the transaction's last
        cycle and a cycle whose checkpoint is staged end a run, as rows of events
        end there: see :meth:`_rows`); the trace lines of each cycle waiting, in
        order."""
        pending = self._pending
        counts: list[int] = []
        if any(type(p[2]) is tuple for p in pending):
            from converge_rules.engine.tracerows import compact, events_of, kinds_of, raw_run

            trace = self._trace
            assert trace is not None
            ends = self._checkpointed
            alone = next((k for k in range(len(pending) - 1, -1, -1) if pending[k][3]),
                         len(pending))
            out: list[tuple[int, int, Any, bool]] = []
            i, n = 0, len(pending)
            while i < n:
                entry = pending[i]
                if type(entry[2]) is not tuple:
                    out.append(entry)
                    i += 1
                    continue
                j = i + 1
                if i != alone:
                    while (j < n and j != alone and type(pending[j][2]) is tuple
                           and pending[j - 1][1] not in ends):
                        j += 1
                start, first_id = pending[i][2][0], pending[i][2][2]
                end, next_id = pending[j - 1][2][1], pending[j - 1][2][3]
                events = events_of(trace, start, end)
                kinds = kinds_of(events)
                assert kinds is not None  # (the engine said each cycle's were raw)
                run = raw_run(trace, events, kinds,
                              [(c[0], c[1] - start) for p in pending[i:j] for c in p[2][4]],
                              first_id, next_id)
                if run is not None:
                    out.append((-1, pending[j - 1][1], run, True))
                    if run.spool is not None:  # the trace spools these bytes, not pickles
                        trace.packed(start, end, run.spool)
                else:  # a value JSON does not keep exactly: each cycle as compact does
                    s0 = start
                    for cycle, e, *_ in (c for p in pending[i:j] for c in p[2][4]):
                        out.append((-1, cycle, compact(trace, s0, events[s0 - start:e - start]),
                                    True))
                        s0 = e
                i = j
            pending[:] = out
        seq = self._base
        for k, (_, cycle, events, joins) in enumerate(pending):
            pending[k] = (seq, cycle, events, joins)
            seq += events.lines
            if joins:
                if events.kind in _RAWS:
                    counts += [c[1] for c in events.cycles]
                else:
                    counts.append(events.lines)
        self._seq = seq
        return counts

    def commit_waiting(self) -> None:
        """See :class:`~converge_rules.store.base.CompactSink`: commit the cycles
        waiting now (as :meth:`commit_due` decided)."""
        self._commit(None)

    def write_compact(self, events: CompactCycle) -> None:
        """The events after the last cycle, committed with the cycles waiting and with
        the job's status when they hold it."""
        self._add(self._cycle, events)
        self._commit(events.status)

    def _add(self, cycle: int, events: CompactCycle, *, joins: bool = False) -> None:
        """Add the trace ``events`` of ``cycle`` (raw events of a job of this engine,
        or lines handed as text: kept verbatim) to what the next commit writes; with
        ``joins`` (a cycle's raw events) in one row with the cycles next to it in
        the same transaction (:meth:`_rows`)."""
        assert self._open, "the job's sink is closed"
        if self.id is None:
            self.id = self.store._insert_job(self.ruleset, self.spec)
        first = self._seq
        self._pending.append((first, cycle, events, joins))
        self._waiting.append(cycle)
        self._seq = first + events.lines
        self._cycle = cycle

    def _rows(self) -> tuple[list[tuple[int, int, int, int, str, str, bytes | None, str]],
                             list[int], str, int]:
        """The ``trace_rows`` of what waits, each cycle's ``(cycle, lines, bytes)``
        (flat, in order: the transaction's ``cycles`` row), and the row chain's
        head and ``named`` after them. Cycles of raw events next to each other share
        one row (one hash, one INSERT: a short cycle's row cost as much as its
        events, bench/README.md "Job store: cheaper trace rows") up to
        :data:`JOIN_BYTES` of text; a row ends with a cycle whose checkpoint is
        staged, so a resume from any checkpoint truncates the trace where a row
        ends, and the transaction's last cycle starts a row (the re-executing resume
        of a job cut inside its last cycle truncates the trace before that cycle)."""
        from converge_rules.engine.tracerows import (
            EVENTS,
            joined_text,
            raw_row,
            row_columns,
            row_hash,
        )

        job = self.id
        assert job is not None
        previous, named = self._previous, self._named
        rows: list[tuple[int, int, int, int, str, str, bytes | None, str]] = []
        sizes: list[int] = []  # (cycle, lines, bytes) of each cycle, flat
        pending = self._pending
        ends = self._checkpointed
        i, n = 0, len(pending)
        # the transaction's last cycle has a row of its own: a job cut by job_timeout
        # inside it is resumed by running it again whole, the trace cut where it starts
        alone = next((k for k in range(n - 1, -1, -1) if pending[k][3]), n)
        while i < n:
            first, cycle, events, joins = pending[i]
            j = i + 1
            if not events.lines:
                sizes += (cycle, 0, 0)
                i = j
                continue
            kind = events.kind
            if kind in _RAWS:  # a run of cycles, encoded apart (encode_waiting)
                # (the names of a raw row hold the reasons of updates in place too)
                raw = raw_row(events, None if named == 2 else events.names())
                lines = events.lines
                previous = row_hash(previous, raw, row_columns(first, cycle, lines, kind))
                named = 2
                rows.append((job, first, cycle, lines, kind, "", raw, previous)
                            if isinstance(raw, bytes) else
                            (job, first, cycle, lines, kind, raw, None, previous))
                # each cycle's share of the row's bytes, by its lines
                size = len(raw)
                counts = [n for _, n in events.cycles]
                shares = [size * n // lines for n in counts]
                shares[0] += size - sum(shares)
                sizes += chain.from_iterable(zip([c for c, _ in events.cycles], counts,
                                                 shares, strict=True))
                i = j
                continue
            if joins and kind == EVENTS and cycle not in ends:
                size = len(events.text)
                while j < n and j != alone and size < JOIN_BYTES:
                    _, later, more, joins = pending[j]
                    if not (joins and more.lines and more.kind == EVENTS):
                        break
                    size += len(more.text)
                    j += 1
                    if later in ends:
                        break
            group = [p[2] for p in pending[i:j]]
            names = None if named or kind != EVENTS else events.names()
            text = joined_text(group, names) if kind == EVENTS else events.text
            lines = sum(e.lines for e in group)
            last = pending[j - 1][1]
            previous = row_hash(previous, text, row_columns(first, last, lines, kind))
            named = max(named, kind == EVENTS)
            rows.append((job, first, last, lines, kind, text, None, previous))
            # each cycle's share of the bytes: its events; the row's own to the first
            envelope = len(text) - sum(len(e.text) for e in group)
            for k in range(i, j):
                _, c, e, _ = pending[k]
                sizes += (c, e.lines, len(e.text) + envelope)
                envelope = 0
            i = j
        return rows, sizes, previous, named

    # ------------------------------------------------- knowledge and payloads

    def stage_knowledge(self, rows: Sequence[KnowledgeRow]) -> None:
        """Write ``rows`` in the transaction of the next commit (the cycle's)."""
        if self.id is None:
            self.id = self.store._insert_job(self.ruleset)
        job = self.id
        self._staged.append((
            "INSERT INTO knowledge (job, seq, cycle, type, fact, data) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(job, r.seq, r.cycle, r.type, r.fact, r.data()) for r in rows], True))
        self._knowledge += rows

    def stage_blobs(self, blobs: Sequence[tuple[str, str]]) -> None:
        """Write the payloads ``(handle, text)`` and this job's references to them in
        the transaction of the next commit; a payload already stored is kept once."""
        if self.id is None:
            self.id = self.store._insert_job(self.ruleset)
        job = self.id
        self._staged.append((
            "INSERT INTO blobs (hash, bytes, data) VALUES (?, ?, ?) "
            "ON CONFLICT (hash) DO NOTHING",
            [(h, len(data), data) for h, data in
             ((h, text.encode("utf-8", "surrogatepass")) for h, text in blobs)], True))
        self._staged.append((
            "INSERT INTO job_blobs (job, hash) VALUES (?, ?) ON CONFLICT (job, hash) "
            "DO NOTHING", [(job, h) for h, _ in blobs], True))

    def stage_timings(self, records: Sequence[dict[str, Any]]) -> None:
        """Write the timings ``records`` (:mod:`converge_rules.engine.timings`) in the
        transaction of the next commit: no transaction, and no fsync, of their own."""
        if self.id is None:
            self.id = self.store._insert_job(self.ruleset, self.spec)
        job = self.id
        if self._timing_seq is None:  # a resumed job goes on after its rows
            row = self.store._read("SELECT coalesce(max(seq), -1) FROM timings WHERE job = ?",
                                   (job,))
            self._timing_seq = int(row[0][0]) + 1
        first = self._timing_seq
        rows = []
        for i, r in enumerate(records):
            if r["kind"] == "cycle":
                rows.append((job, first + i, r["cycle"], "cycle", None, None, None, None,
                             r["evaluate"], r["merge"]))
            else:
                rows.append((job, first + i, r["cycle"], r["kind"], r.get("agent"),
                             r.get("tool"), r.get("key"), r.get("source"), r["seconds"],
                             None))
        self._timing_seq = first + len(rows)
        self._staged.append((
            "INSERT INTO timings (job, seq, cycle, kind, agent, tool, call_key, source, "
            "seconds, merge_seconds) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows, True))

    def stage_settings(self, settings: str) -> None:
        """Replace the job's stored settings (:class:`~converge_rules.store.base.JobSpec`)
        in the transaction of the next commit: a resumed job records the input facts it
        takes later with the cycle that merges them (``converge run --resume --facts``)."""
        assert self.id is not None, "settings are those of a stored job"
        self._staged.append(("UPDATE job_specs SET settings = ? WHERE job = ?",
                             (settings, self.id), False))

    def stage_checkpoint(self, cycle: int, kind: str, data: bytes) -> None:
        """Write the checkpoint of ``cycle`` (``kind`` ``delta`` or ``snapshot``, see
        :mod:`converge_rules.engine.checkpoints`) in the transaction of the next
        commit, the cycle's own."""
        if self.id is None:
            self.id = self.store._insert_job(self.ruleset, self.spec)
        self._checkpointed.add(cycle)
        self._staged.append((
            "INSERT INTO checkpoints (job, cycle, kind, data) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (job, cycle) DO UPDATE SET kind = excluded.kind, "
            "data = excluded.data", (self.id, cycle, kind, data), False))

    @property
    def snapshot_every(self) -> int | None:
        """The store's ``snapshot_every`` setting (None: the engine's default)."""
        every: int | None = getattr(self.store, "snapshot_every", None)
        return every

    def knowledge_rows(self, type_name: str) -> Iterator[KnowledgeRow]:
        """The knowledge of ``type_name`` in this job, oldest first: the committed
        rows, then those of ended cycles waiting for their commit."""
        from converge_rules.engine import knowledge  # the engine: not on `check`'s path

        for seq, cycle, kind, fact, data in self.store._read(
                "SELECT seq, cycle, type, fact, data FROM knowledge "
                "WHERE job = ? AND type = ? ORDER BY seq", (self.id, type_name)):
            yield knowledge.KnowledgeRow.from_columns(seq, cycle, kind, fact, data)
        yield from [row for row in self._knowledge if row.type == type_name]

    def write_lines(self, lines: Iterable[str]) -> None:
        """The lines after the last cycle (or the whole trace, when the engine does not
        commit cycle by cycle), committed with the cycles waiting and with the job's
        status when they hold it."""
        from converge_rules.engine.tracerows import text_row

        events = text_row(list(lines))
        self._add(self._cycle, events)
        self._commit(events.status)

    def _commit(self, status: tuple[str, str] | None) -> None:
        """Write what waits (the cycles' lines and rows, the knowledge and payloads
        staged, a resumed job's reopening) and ``status`` in one transaction."""
        self.encode_waiting()
        rows, sizes, previous, named = self._rows()
        statements: list[_Statement] = [
            ("INSERT INTO trace_rows (job, seq, cycle, lines, kind, data, packed, hash) "
             "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows, True)]
        if sizes:
            statements.append((_ADD_CYCLES, cycles_row(self.id, sizes), False))
        statements += self._staged
        if status is not None:
            statements.append(("UPDATE jobs SET status = ?, detail = ?, finished = ? "
                               "WHERE id = ?", (*status, _now(), self.id), False))
        check = None
        if self._reopen:  # a resumed job's first commit: reopen the job with it
            statements[:0] = self._reopen
            check = self._unchanged
        self.store._write(statements, check=check, cycle=self._waiting)
        # written: nothing waits (on an error all of it still does, for abort)
        self._previous, self._named = previous, named
        self._base = self._seq
        self._reopen = []
        self._staged = []
        self._pending = []
        self._checkpointed = set()
        self._waiting = []
        self._knowledge = []
        self._since = time.monotonic()

    def close(self) -> None:
        self._open = False

    def abort(self) -> None:
        """The job ended by an exception: the cycles that ended are committed (those
        waiting too), and its status says so."""
        if self._open:
            self._open = False
            if self.id is None:
                return
            if self._waiting:
                # complete cycles: keep them (when the store itself failed, it fails
                # again here and the job keeps what it had committed)
                with contextlib.suppress(StoreError):
                    self._commit(None)
            self.store._write([("UPDATE jobs SET status = 'aborted', finished = ? "
                                "WHERE id = ? AND status = 'running'",
                                (_now(), self.id), False)])

    def __enter__(self) -> SqliteJob:
        if self.id is None:
            self.id = self.store._insert_job(self.ruleset, self.spec)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if kind is None:
            self.close()
        else:
            # the job's own exception matters more than a failure to mark it aborted
            with contextlib.suppress(Exception):
                self.abort()
