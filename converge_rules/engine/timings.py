"""Wall-clock timings of a job, kept BESIDE its trace and never in it.

A trace is the same on every executor and every run (and hash-chained), so it can hold
no clock reading. How long a tool call, an agent run or a cycle took is still what a
person reviewing a job wants to see (``converge report``). A :class:`Timings` collector,
given to :func:`~converge_rules.engine.runner.run` (``timings=``), records them on the
side: nothing it holds reaches a fact, an effect, the trace or the result, so a job's
results and trace are byte-identical with and without it (tests/properties).

What is recorded (one :data:`Record` each, JSON-ready):

- ``{"kind": "tool", "cycle", "agent", "tool", "key", "seconds", "source"}`` per tool
  call: ``key`` is :func:`call_key` of its arguments (what joins it to the trace's
  ``tool_call`` line), ``source`` ``"called"`` (the tool ran: paid), ``"memo"`` (an
  identical call of this job answered it) or ``"record"`` (a resumed or replayed job's
  recorded answer: never paid again);
- ``{"kind": "agent", "cycle", "agent", "seconds"}`` per agent run (its wall time, tool
  calls included; measured per run, never per match);
- ``{"kind": "cycle", "cycle", "evaluate", "merge"}`` per cycle: the wall seconds of
  the evaluation phase (the executor's ``run_cycle``) and of the merge (merge, prune,
  invariants).

Where they go: with a job store, its ``timings`` table, in each cycle's transaction
(:class:`TimingsSink`); with ``converge run --timings FILE``, a JSON Lines file written
atomically when the job ends (:func:`write_timings`).
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeAlias

Record: TypeAlias = dict[str, Any]

CALLED = "called"
MEMO = "memo"
RECORDED = "record"
SOURCES = (CALLED, MEMO, RECORDED)


def call_key(tool: str, args: Mapping[str, Any]) -> str:
    """The key of a tool call: the SHA-256 (first 32 hex digits) of the tool's name and
    the canonical JSON of its arguments — the job's memo key, so the same for a call
    and its ``tool_call`` trace line (whose ``args`` are the same JSON)."""
    import hashlib  # here: a run that calls no tool does not load OpenSSL (~2 ms)

    from converge_rules.engine.tools import canonical_args

    text = tool + "\x00" + canonical_args(args)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class Timings:
    """The collector of one job's timings (see the module). Thread-safe: agents on
    threads and the engine record into it at once. ``cycle`` is the cycle running now,
    set by the engine; records are taken out with :meth:`take` (by a store's sink
    after each cycle) or read whole with :meth:`records`. ``keep=False`` forgets what
    was taken (a long job kept in a store holds no growing list of its timings)."""

    __slots__ = ("_keep", "_lock", "_rows", "_taken", "cycle")

    def __init__(self, *, keep: bool = True) -> None:
        self.cycle = 0
        self._keep = keep
        self._lock = threading.Lock()
        # raw rows, cheap to append: ("tool", cycle, agent, tool, args, seconds, source),
        # ("agent", cycle, agent, seconds), ("cycle", cycle, evaluate, merge)
        self._rows: list[tuple[Any, ...]] = []
        self._taken: list[Record] = []

    # ---------------------------------------------------------------- recording

    def agent_run(self, cycle: int, agent: str, seconds: float,
                  calls: Sequence[tuple[str, Mapping[str, Any], float, str]] = ()) -> None:
        """One agent run of ``cycle`` and the timed tool calls it made, in call order:
        ``(tool, args, seconds, source)``."""
        with self._lock:
            rows = self._rows
            for tool, args, took, source in calls:
                rows.append(("tool", cycle, agent, tool, args, took, source))
            rows.append(("agent", cycle, agent, seconds))

    def tool_call(self, cycle: int, agent: str, tool: str, args: Mapping[str, Any],
                  seconds: float, source: str) -> None:
        """One tool call timed apart from its agent's run (the ``processes`` executor
        answers its workers' calls in the engine's process)."""
        with self._lock:
            self._rows.append(("tool", cycle, agent, tool, args, seconds, source))

    def cycle_done(self, cycle: int, evaluate: float, merge: float) -> None:
        """The evaluation phase and the merge of ``cycle`` took these wall seconds."""
        with self._lock:
            self._rows.append(("cycle", cycle, evaluate, merge))

    # ------------------------------------------------------------------ reading

    def take(self) -> list[Record]:
        """The records since the last :meth:`take` (kept for :meth:`records` too,
        unless the collector was made with ``keep=False``)."""
        with self._lock:
            rows, self._rows = self._rows, []
        out = [_record(row) for row in rows]
        if self._keep:
            self._taken.extend(out)
        return out

    def records(self) -> list[Record]:
        """Every record of the job so far, in the order recorded (with ``keep=False``,
        those not taken yet)."""
        out = self.take()
        return list(self._taken) if self._keep else out


def _record(row: tuple[Any, ...]) -> Record:
    kind = row[0]
    if kind == "tool":
        _, cycle, agent, tool, args, seconds, source = row
        return {"kind": "tool", "cycle": cycle, "agent": agent, "tool": tool,
                "key": call_key(tool, args), "seconds": seconds, "source": source}
    if kind == "agent":
        return {"kind": "agent", "cycle": row[1], "agent": row[2], "seconds": row[3]}
    return {"kind": "cycle", "cycle": row[1], "evaluate": row[2], "merge": row[3]}


class TimingsSink(Protocol):
    """A job store's sink that keeps timings: rows staged here are written in the
    transaction of the next ``cycle_committed`` (no write of their own)."""

    def stage_timings(self, records: Sequence[Record]) -> None: ...


# ---------------------------------------------------------------- the side file

def timings_lines(records: Iterable[Record]) -> Iterator[str]:
    """``records`` as JSON Lines (one compact object a line, keys sorted)."""
    for r in records:
        yield json.dumps(r, sort_keys=True, separators=(",", ":")) + "\n"


RUN = "run"
"""The kind of a timings file's first record, ``{"kind": "run", "trace_head": …}``:
the run it belongs to, named by its trace's chain head (the hash of its last line,
the result's ``integrity.trace_head``), which ``converge report`` checks against the
trace it is given."""


def write_timings(path: str | Path, records: Iterable[Record],
                  trace_head: str | None = None) -> None:
    """Write ``records`` to ``path`` as JSON Lines, atomically (a reader sees the old
    file or the whole new one); first, with ``trace_head``, the record naming the run
    they belong to (:data:`RUN`)."""
    from converge_rules.files import AtomicTextFile

    with AtomicTextFile(path) as f:
        if trace_head is not None:
            f.write(next(timings_lines([{"kind": RUN, "trace_head": trace_head}])))
        for line in timings_lines(records):
            f.write(line)


def check_record(record: Any, where: str) -> Record:
    """``record`` if it is a timings record of a known kind with numbers where numbers
    belong; a ``ValueError`` saying what is wrong (``where``: file and line) else."""
    if not isinstance(record, dict):
        raise ValueError(f"{where}: not a JSON object")
    kind = record.get("kind")
    need: tuple[str, ...]
    if kind in ("tool", "agent"):
        need = ("seconds",)
    elif kind == "cycle":
        need = ("evaluate", "merge")
    else:
        raise ValueError(f"{where}: kind {kind!r} is none of tool, agent, cycle; is this "
                         "a file written by `converge run --timings`?")
    for name in ("cycle", *need):
        value = record.get(name)
        if (isinstance(value, bool) or not isinstance(value, int | float) or value < 0
                or not math.isfinite(value)):
            raise ValueError(f"{where}: {name!r} must be a finite number >= 0, "
                             f"not {value!r}")
    return record


def read_timings(path: str | Path) -> list[Record]:
    """The records of a file :func:`write_timings` wrote; a ``ValueError`` naming the
    line of the first one that is not such a record."""
    return read_timings_file(path)[1]


def read_timings_file(path: str | Path) -> tuple[str | None, list[Record]]:
    """The run a file :func:`write_timings` wrote belongs to (its trace head; None for
    a file written without one, by an older converge) and its records; a
    ``ValueError`` naming the line of the first one that is not such a record."""
    out: list[Record] = []
    head: str | None = None
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}, line {n}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{where}: not JSON ({exc.msg}, column {exc.colno})") from None
            if isinstance(record, dict) and record.get("kind") == RUN:
                value = record.get("trace_head")
                if out or head is not None or not isinstance(value, str) or not value:
                    raise ValueError(f"{where}: a run record comes first, once, with the "
                                     "trace_head of its run")
                head = value
                continue
            out.append(check_record(record, where))
    return head, out
