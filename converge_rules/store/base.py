"""Storage behind one interface: traces now; checkpoints, knowledge and payloads later.

A backend implements the protocols it supports:

* a :class:`TraceSink` receives a job's trace as already-serialised, deterministic JSON
  lines in order (the JSON Lines file, ``--trace``);
* a :class:`CycleSink` is a trace sink that also takes each cycle's lines as the cycle
  ends, durably: a job that dies loses at most the cycle in flight;
* a :class:`GroupCommitSink` is a cycle sink that may keep a cycle that called no tool
  waiting for a later cycle's transaction (group commit): a job that dies loses at
  most the cycles waiting too, which a resume re-executes without paying for a tool;
* a :class:`CompactSink` is a group-commit sink that takes each cycle's raw events
  instead of its lines (one JSON text per cycle; :mod:`converge_rules.engine.
  tracerows`), so that no line is built while the job runs;
* a :class:`JobStore` is a database of jobs (SQLite built in, ``--store run.db``; other
  backends from plugins): it opens a :class:`CycleSink` per new job, gives a job's
  trace back line for line, reports its sizes and forgets old jobs;
* checkpoints and knowledge go through the job's cycle sink, in the cycle's
  transaction (``CheckpointSink`` in :mod:`converge_rules.engine.checkpoints`,
  ``KnowledgeSink`` in :mod:`converge_rules.engine.knowledge`); the
  :class:`CheckpointStore` and :class:`KnowledgeStore` placeholders are superseded.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol, runtime_checkable


class TraceSink(Protocol):
    """Where trace lines go. Used as a context manager: leaving the block normally
    commits the trace (``close``); leaving it with an exception should drop what was
    written, so a failed or interrupted job never replaces a complete earlier trace
    with a truncated one."""

    def write_lines(self, lines: Iterable[str]) -> None:
        """Append JSON documents, one per line (no trailing newline in ``lines``)."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> TraceSink: ...

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None: ...


@runtime_checkable
class CycleSink(TraceSink, Protocol):
    """A trace sink that the engine hands each cycle's trace lines as the cycle ends.

    The engine calls :meth:`cycle_committed` with cycle 0 (the input facts and what
    their merge did) before the first cycle, then once after every cycle, in order;
    when the job ends it writes the remaining lines (the budget and status events)
    with :meth:`write_lines` and closes the sink. The lines of all calls, in order, are
    exactly the job's JSON Lines trace. Leaving the sink's block with an exception
    marks the job as ended without a status, keeping the cycles committed."""

    def cycle_committed(self, cycle: int, lines: Sequence[str]) -> None:
        """Store ``lines`` (the trace events of ``cycle``, in order) in one
        transaction: when this returns they survive a crash of the process."""
        ...


@runtime_checkable
class GroupCommitSink(CycleSink, Protocol):
    """A cycle sink that may commit several cycles in one transaction (group commit).
    The engine hands it a cycle that called no tool with :meth:`cycle_ended`, and one
    that did with :meth:`~CycleSink.cycle_committed`, which commits that cycle and the
    cycles waiting before it before returning. A cycle's lines are never split between
    transactions, and cycles are committed in order, so a crash leaves whole cycles: a
    prefix of the trace."""

    def cycle_ended(self, cycle: int, lines: Sequence[str]) -> None:
        """Store ``lines`` (the trace events of ``cycle``, which called no tool), now
        or with a later cycle's transaction, at the sink's discretion (its bound on
        how many cycles, or how much work, a crash may take back)."""
        ...


@runtime_checkable
class CompactSink(GroupCommitSink, Protocol):
    """A group-commit sink that keeps the trace compactly (a job store's): the engine
    hands it each cycle's raw events instead of its lines, and builds no line at run
    time; the store expands them to the lines ``--trace`` writes when the trace is
    read (:meth:`JobStore.trace_lines`). At each cycle's end the engine asks
    :meth:`commit_due` and hands the cycle over (:meth:`cycle_waits`); a cycle all of
    whose events a raw row keeps it asks :meth:`raw_due` only, and holds until the
    commit is due (or its trace would spill them, or a cycle of another kind comes),
    then hands the cycles held over together (:meth:`cycles_raw`). When the commit is
    due it has the waiting cycles encoded (:meth:`encode_waiting`: their line
    counts, for the checkpoint staged with them) and committed
    (:meth:`commit_waiting`). Before its trace moves the events it holds to its
    spool, the engine hands over the cycles held and has the cycles waiting raw
    encoded (:meth:`encode_waiting`, again at the commit for the cycles after them):
    they go on waiting for their group's commit."""

    def commit_due(self, tools: bool) -> bool:
        """Whether the cycle about to be handed over is committed as it ends (with
        ``tools``: it called a tool) or waits."""
        ...

    def raw_due(self, held: int) -> bool:
        """Whether the cycle that just ended, all of whose events are of the kinds a
        raw row keeps (:func:`~converge_rules.engine.tracerows.is_raw`: it called no
        tool), is committed now or waits, ``held`` cycles (it included) having ended
        and not been handed over: :meth:`commit_due`'s answer for them."""
        ...

    def cycles_raw(self, trace: Any, cycles: Sequence[tuple[int, int, int, int]],
                   start: int, first_id: int) -> None:
        """``cycles`` ended, each ``(cycle, where its events end, the fact store's next
        id after it, …)``, in order, their events from ``start`` of ``trace`` (the
        engine's :class:`~converge_rules.engine.trace.Trace`) all of the kinds a raw
        row keeps, the facts they merged ids from ``first_id`` on: kept as they are
        until :meth:`encode_waiting` (the engine keeps those events in memory until
        then)."""
        ...

    def cycle_waits(self, cycle: int, events: Any) -> None:
        """``cycle`` ended, its events made by :func:`~converge_rules.engine.
        tracerows.compact`: they wait for the commit."""
        ...

    def encode_waiting(self) -> list[int]:
        """Encode the cycles waiting (again: only those handed over since); how many
        trace lines each cycle waiting gives, in order."""
        ...

    def commit_waiting(self) -> None:
        """Commit the cycles waiting: when this returns they survive a crash."""
        ...

    def write_compact(self, events: Any) -> None:
        """The events after the last cycle (the budget and status events), committed
        with the cycles waiting and the job's status (as :meth:`TraceSink.
        write_lines`)."""
        ...


@dataclass(frozen=True, slots=True)
class JobInfo:
    """One job of a store: its id, the ruleset it ran, its status (``running`` while it
    runs — or when its process died —, ``aborted`` when it ended by an exception, else
    the job's own status), and the last cycle committed."""

    id: int
    ruleset: str
    status: str
    detail: str
    started: str
    finished: str | None
    cycles: int
    trace_lines: int
    trace_bytes: int


@dataclass(frozen=True, slots=True)
class StoreInfo:
    """The sizes of a store: its total size in bytes, each table's rows and bytes, and
    each job (per-cycle sizes on demand: :meth:`JobStore.cycle_sizes`)."""

    location: str
    schema_version: int
    total_bytes: int
    tables: dict[str, dict[str, int]] = field(default_factory=dict)
    jobs: list[JobInfo] = field(default_factory=list)


class JobStore(Protocol):
    """A database of jobs. Opened by the factory a store plugin registers (from a path
    or URL); closed with :meth:`close` or by leaving its ``with`` block. Errors the user
    can fix (not a store, a newer schema, locked) are
    :class:`~converge_rules.errors.StoreError` naming the location and the fix."""

    location: str

    def new_job(self, ruleset: str) -> CycleSink:
        """The sink that receives a new job's trace; the job is recorded (``running``)
        when the sink is entered, so a job refused before it runs leaves no trace."""
        ...

    def jobs(self) -> list[JobInfo]:
        """Every job, oldest first."""
        ...

    def job(self, job: int | None) -> JobInfo:
        """The job ``job``, or the newest when None; a ``StoreError`` naming the jobs
        there are when there is no such job."""
        ...

    def trace_lines(self, job: int) -> Iterator[str]:
        """The trace of ``job`` line by line (no newlines), as the engine produced it:
        for a finished job, exactly what ``--trace`` writes."""
        ...

    def info(self) -> StoreInfo: ...

    def cycle_sizes(self, job: int) -> list[tuple[int, int, int]]:
        """``(cycle, trace lines, trace bytes)`` of each committed cycle of ``job``."""
        ...

    def gc(self, keep_last: int, *, vacuum: bool = True) -> list[int]:
        """Delete every finished job but the ``keep_last`` newest (a ``running`` job is
        never deleted), and with ``vacuum`` give the space back; the ids deleted."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> JobStore: ...

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None: ...


@dataclass(frozen=True, slots=True)
class JobSpec:
    """What a job needs to be resumed, stored with it when it starts: ``settings``
    (JSON text: the ruleset's path and digest, the job's time, the pruners…) and
    ``inputs`` (JSON text: the validated input facts as ``[type, fields]`` pairs), both
    opaque to the store (see :mod:`converge_rules.store.resume`)."""

    settings: str
    inputs: str


@runtime_checkable
class ResumableSink(CycleSink, Protocol):
    """The sink of a stored job that resumes: it writes nothing until :meth:`reopen`,
    which the first new write of the resumed job comes with."""

    def reopen(self, keep: int, cycle: int, lines: int, size: int) -> None:
        """Make the next commit (the resumed job's first) also drop every trace line
        of the job from sequence number ``keep`` on and every cycle after ``cycle``,
        set cycle ``cycle``'s row to ``lines`` lines of ``size`` bytes, and mark the
        job ``running`` again in this process — one transaction, so a resume that
        dies before it leaves the job as it was. A :class:`~converge_rules.errors.
        StoreError` when another process changed the job since it was read."""
        ...


@runtime_checkable
class ResumableStore(JobStore, Protocol):
    """A job store that keeps what resuming a job needs (``converge run --resume``)."""

    def new_job(self, ruleset: str, spec: JobSpec | None = None) -> CycleSink: ...

    def job_spec(self, job: int) -> tuple[JobSpec, str, int] | None:
        """The spec ``job`` was stored with, the host name and the process id that
        ran it last; None for a job stored without one (by an older converge)."""
        ...

    def resume_job(self, job: int, expected_lines: int) -> ResumableSink:
        """The sink that continues ``job``, whose trace has ``expected_lines`` lines
        now (checked when the sink reopens the job)."""
        ...


class CheckpointStore(Protocol):
    """Superseded by ``CheckpointSink`` (:mod:`converge_rules.engine.checkpoints`): a
    job's checkpoints are staged with its cycle sink, committed in the transaction of
    their cycle's trace lines."""

    def save(self, job: str, cycle: int, state: bytes) -> None: ...

    def load(self, job: str) -> tuple[int, bytes] | None: ...


class KnowledgeStore(Protocol):
    """Keeps facts that left the live context, by type (not implemented yet)."""

    def put(self, type_name: str, fields: dict[str, Any], cycle: int) -> None: ...

    def query(self, type_name: str) -> Iterable[dict[str, Any]]: ...
