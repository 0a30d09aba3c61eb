"""Resuming a stored job (``converge run --resume run.db``): the job a crash, a signal
or ``job_timeout`` ended continues to the result and trace an uninterrupted run gives,
byte for byte, without calling a tool again for an answer it already recorded.

How: a job stored with a :class:`~converge_rules.store.base.JobSpec` (its validated
inputs, its time, the digest of its compiled ruleset) is run again from its inputs with
the answers of the ``tool_call`` events of its committed trace (the engine's tool box
answers those calls from them, counting them as it did). Every cycle the job had
committed is re-executed and its trace lines are checked equal to the stored ones — a
difference (a changed plugin, a tool answer the ruleset reads differently) is an error
naming the cycle and the first line that differs, and the store is left as it was.
From the first cycle past the stored ones the job runs live; its first commit also
drops the old ending (the ``budget``/``status`` lines of an interrupted job) and marks
the job ``running`` again, in one transaction. The engine is deterministic (the
properties in ``tests/properties`` guard it), so re-executing is exact; it costs the
CPU of the committed cycles, never a tool call.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from converge_rules.engine.executors import DEADLINE_REASON
from converge_rules.engine.tools import ABANDONED, canonical_args
from converge_rules.engine.tracerows import status_of
from converge_rules.errors import StoreError
from converge_rules.store.base import (
    GroupCommitSink,
    JobInfo,
    JobSpec,
    ResumableSink,
    ResumableStore,
)

if TYPE_CHECKING:
    from converge_rules.api import Ruleset
    from converge_rules.engine.inputs import InputFacts
    from converge_rules.program import Program

SETTINGS_VERSION = 1
"""The version of :attr:`JobSpec.settings`' JSON a new job writes."""

READS_VERSION = 3
"""The newest settings version read (2: with the inputs a job took later, 3: with a
batch of them not merged yet, see :mod:`converge_rules.store.extend`); a newer one is
refused."""

RESUMABLE = ("running", "interrupted", "aborted", "budget_exceeded", "awaiting_approval")
"""Statuses a job may be resumed from (``budget_exceeded`` only by ``job_timeout``;
``awaiting_approval`` once a fact it waits on has a decision)."""

_Outcome = tuple[dict[str, Any] | None, str | None]


# ------------------------------------------------------------------ recording


_PLACE = re.compile(r"[^\s(),'\"]*:(\d+):(\d+)")


def ruleset_digest(ruleset: Ruleset) -> str:
    """A digest of what decides a job's result besides its inputs, tools and time: the
    bytes of the ruleset's files, the generated code of its agents and its budgets and
    pruners. Two rulesets with the same digest compile to the same program."""

    h = hashlib.sha256()
    for path in ruleset.files:  # their contents, not their names: a ruleset may move
        try:
            h.update(path.read_bytes())
        except OSError:
            h.update(b"<unreadable>")
        h.update(b"\0")
    program = ruleset.program
    paths = sorted({str(p) for p in ruleset.files} | {ruleset.path}, key=len, reverse=True)

    def placeless(source: str) -> str:
        for where in paths:  # where the code says it comes from is no part of it
            source = source.replace(where, "")
        # nor the file of a place the code names ("# agent 'a' (tier 1, x/r.cvg:11:1)"):
        # the compiler writes it relative to the working directory of the process,
        # which a resume need not share (nor give the ruleset's path the same way)
        return _PLACE.sub(r":\1:\2", source)

    for agent in program.agents:
        h.update(f"{agent.name}\0{agent.tier}\0{agent.order}\0".encode())
        h.update(placeless(agent.source).encode("utf-8", "surrogatepass") + b"\0")
    h.update(repr(program.budgets).encode())
    h.update(repr([(p.type_id, p.text, placeless(p.source))
                   for p in program.prunes]).encode())
    h.update(repr(sorted(program.tools)).encode())
    return h.hexdigest()


def inputs_text(program: Program, inputs: InputFacts) -> str:
    """The validated inputs as JSON text: ``[type, fields]`` pairs in input order, values
    as the trace writes them (they validate back to the same values)."""
    names = [(t.name, t.field_names) for t in program.types]
    rows = []
    for t, vals in zip(inputs.types, inputs.values, strict=True):
        name, fields = names[t]
        rows.append((name, dict(zip(fields, vals, strict=True))))
    # tuples are written as lists by json itself; only times need converting
    return json.dumps(rows, ensure_ascii=False, separators=(",", ":"), allow_nan=False,
                      default=_time_text)


def _time_text(value: Any) -> Any:
    from datetime import date, timedelta

    from converge_rules.language.builtins import iso_text

    if isinstance(value, date | timedelta):
        return iso_text(value)
    raise TypeError(f"{type(value).__name__} is not a value of an input fact")


def job_spec(ruleset: Ruleset, inputs: InputFacts, now: datetime | None,
             plugins: Sequence[str] = ()) -> JobSpec:
    """What a new job stores so that it can be resumed: its ruleset (absolute path and
    digest), its time, the ``--plugin`` modules it ran with, and its inputs."""
    path = ruleset.path
    if path and not path.startswith("<"):
        path = str(Path(path).resolve())
    settings = {
        "version": SETTINGS_VERSION,
        "ruleset": path,
        "digest": ruleset_digest(ruleset),
        "now": None if now is None else now.isoformat(),
        "plugins": list(plugins),
        "pruners": list(ruleset.pruners),
    }
    return JobSpec(json.dumps(settings, sort_keys=True), inputs_text(ruleset.program, inputs))


# ------------------------------------------------------------------ resuming


@dataclass(frozen=True, slots=True)
class Resumable:
    """A stored job that may be resumed, as read from its store."""

    store: ResumableStore
    job: JobInfo
    settings: dict[str, Any]
    inputs: str

    @property
    def ruleset_path(self) -> str:
        return str(self.settings.get("ruleset") or "")

    @property
    def plugins(self) -> tuple[str, ...]:
        return tuple(self.settings.get("plugins") or ())

    @property
    def pruners(self) -> tuple[str, ...]:
        return tuple(self.settings.get("pruners") or ())

    @property
    def now(self) -> datetime | None:
        text = self.settings.get("now")
        return None if text is None else datetime.fromisoformat(text)


def find(store: Any, job: int | None, *, more: bool = False) -> Resumable:
    """The job ``job`` of ``store`` (None: its newest resumable job), checked resumable:
    a :class:`StoreError` saying why not (it converged, it was stored without what a
    resume needs, its process is still running it…). With ``more`` (it is resumed to
    take more input facts) a job that reached its fixpoint may be resumed too."""
    where = getattr(store, "location", "the store")
    if not isinstance(store, ResumableStore):
        raise StoreError(f"{where}: this store ({type(store).__name__}) cannot resume "
                         "jobs")
    if job is None:
        jobs = store.jobs()
        candidates = [j for j in jobs if _why_not(j, more) is None]
        if not candidates:
            shown = ", ".join(f"{j.id} ({j.status})" for j in jobs[-5:]) or "none"
            raise StoreError(f"{where} holds no job to resume (jobs: {shown}); a job "
                             "can be resumed when it was interrupted, its process died, "
                             "it was aborted, ran out of job_timeout or awaits approval "
                             "(once a fact it waits on has a decision)"
                             + ("" if more else ", and one at its fixpoint (converged) "
                                "when given more input facts (--facts FILE)"))
        info = candidates[-1]
    else:
        info = store.job(job)
        why = _why_not(info, more)
        if why is not None:
            raise StoreError(f"job {info.id} of {where} cannot be resumed: {why}")
    found = store.job_spec(info.id)
    if found is None:
        raise StoreError(f"job {info.id} of {where} cannot be resumed: it was stored "
                         "without its inputs (by an older converge, or through a store "
                         "without resume); run it again")
    spec, host, pid = found
    settings = json.loads(spec.settings)
    if int(settings.get("version", 0)) > READS_VERSION:
        raise StoreError(f"job {info.id} of {where} was stored by a newer converge; "
                         "upgrade converge to resume it")
    if info.status == "running" and host == socket.gethostname() and _alive(pid):
        raise StoreError(f"job {info.id} of {where} is running now in process {pid}; "
                         "a job is resumed after its process ended (stop it with "
                         f"`kill -TERM {pid}`: it ends as `interrupted`, resumable)")
    if info.status == "awaiting_approval" and not more:
        # (given more facts, a job that waits for approvals takes them: they merge
        # after the decisions recorded, if any, and it pauses again on what is held)
        _check_decided(store, info, str(where))
    return Resumable(store, info, settings, spec.inputs)


def _check_decided(store: Any, info: JobInfo, where: str) -> None:
    """A job awaiting approval resumes once a fact it waits on has a decision recorded
    since it paused: resumed without one, it would only pause again where it is."""
    if not hasattr(store, "pending"):
        raise StoreError(f"{where}: this store cannot keep decisions on pending facts")
    waiting = store.pending(info.id)
    decided = {d.id for d in store.decisions(info.id)}
    if any(p.id in decided for p in waiting):
        return
    shown = "\n".join(f"  {p.id}  {p.gate}: {p.fact_text()}" for p in waiting[:10])
    more = f"\n  … and {len(waiting) - 10} more" if len(waiting) > 10 else ""
    n = len(waiting)
    raise StoreError(
        f"job {info.id} of {where} is awaiting approval of {n} fact{'s' if n != 1 else ''}"
        f" and none has a decision since it paused: nothing to resume (it would pause "
        f"again where it is):\n{shown}{more}\ndecide first (`converge approve {where} ID "
        f"--job {info.id}` or `converge reject …`), then resume: the job applies the "
        "decisions, goes on, and pauses again while facts are left undecided")


def _why_not(info: JobInfo, more: bool = False) -> str | None:
    """Why a job cannot be resumed (``more``: to take more input facts), or None."""
    if more and info.status in ("converged", "unmet_goal"):
        return None  # a session at its fixpoint takes more input
    if info.status not in RESUMABLE:
        ended = ("it converged: its result is final (give more input facts to go on: "
                 "--facts FILE)" if info.status == "converged"
                 else f"it ended with status {info.status}, which running again "
                 "would give again")
        return ended
    if info.status == "budget_exceeded" and not info.detail.startswith("job_timeout"):
        return (f"it ran out of a budget other than job_timeout ({info.detail}); a "
                "resumed job would run out of it again")
    return None


def running_in(store: Any, info: JobInfo) -> int | None:
    """The id of the process on this host that runs ``info``'s job now, or None (the
    job ended, its process died, or it runs on another host)."""
    if info.status != "running":
        return None
    read = getattr(store, "job_spec", None)  # a plugin's store may keep no specs
    found = read(info.id) if callable(read) else None
    if found is None:
        return None
    _spec, host, pid = found
    return pid if host == socket.gethostname() and _alive(pid) else None


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # this very process: the job's own run ended (an API caller)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: it exists
        return True
    return True


def check_ruleset(found: Resumable, ruleset: Ruleset) -> None:
    """Refuse to resume with a ruleset that is not the one the job ran: another file
    or ruleset (say so, naming both), or another version of it."""
    if ruleset_digest(ruleset) == found.settings.get("digest"):
        return
    ran = found.ruleset_path
    other_file = bool(ran) and Path(ran).resolve() != Path(ruleset.path).resolve()
    if other_file or ruleset.program.name != found.job.ruleset:
        raise StoreError(
            f"job {found.job.id} of {found.store.location} ran the ruleset "
            f"{found.job.ruleset} ({ran or 'given as text'}), not {ruleset.program.name} "
            f"({ruleset.path}): a resumed job must run the ruleset it started with; "
            "resume it with that one (`converge run --resume STORE` reads it from where "
            "it was), or start a new job")
    raise StoreError(
        f"job {found.job.id} of {found.store.location} ran another version of the "
        f"ruleset ({found.ruleset_path or ruleset.path} changed since, or one of "
        "its imports or budgets): a resumed job must run the ruleset it started "
        "with; restore that version, or start a new job")


def read_inputs(found: Resumable, program: Program) -> InputFacts:
    from converge_rules.engine.inputs import validate_pairs

    pairs = [(str(t), fields) for t, fields in json.loads(found.inputs)]
    return validate_pairs(program, pairs, source=f"job {found.job.id}'s stored inputs")


def recorded_answers(lines: Iterator[str]) -> dict[str, _Outcome]:
    """The tool answers of a stored trace, by the tool box's memo key: every
    ``tool_call`` event but those that were no answer (refused by ``max_tool_calls``,
    or cut with their agent)."""
    answers: dict[str, _Outcome] = {}
    for line in lines:
        if '"event":"tool_call"' not in line:
            continue
        event = json.loads(line)
        if event.get("event") != "tool_call":
            continue
        error = event.get("error")
        if error is not None and (error == ABANDONED or error.startswith("max_tool_calls")):
            continue
        key = str(event["tool"]) + "\x00" + canonical_args(event["args"])
        answers.setdefault(key, (event.get("result"), error))
    return answers


class ReplaySink:
    """The cycle sink of a resumed job: the cycles the store holds are checked against
    the re-executed ones, line for line; the later ones go to the store's ``target``
    sink, the first of them reopening the job there (see
    :meth:`~converge_rules.store.base.ResumableSink.reopen`). Leaving the block with an
    exception before that leaves the stored job untouched."""

    def __init__(self, target: ResumableSink, job: int, stored: Iterator[str],
                 sizes: Sequence[tuple[int, int, int]], last: int,
                 on_live: Callable[[], None] | None = None) -> None:
        self.target = target
        self.job = job
        self._stored = stored
        self._sizes = {c: n for c, n, _ in sizes}
        self.last = last  #: the last stored cycle to check; later ones run live
        self._verified = -1
        self._kept = 0  # stored lines checked, the next one's sequence number
        self._last_lines = self._last_bytes = 0
        self._live = False
        self._on_live = on_live
        #: knowledge rows and payloads the engine staged for the cycle it will commit
        #: next: dropped for a re-executed cycle (the store has them), passed on to
        #: the store for a live one (else a resumed job's later knowledge and payloads
        #: would be lost)
        self._staged: list[tuple[str, list[Any]]] = []
        self._rows = 0  # knowledge rows committed so far: those knowledge_rows shows

    def __enter__(self) -> ReplaySink:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._live:
            self.target.__exit__(kind, exc, tb)

    def close(self) -> None:
        if self._live:
            self.target.close()

    def stage_knowledge(self, rows: Sequence[Any]) -> None:
        self._staged.append(("knowledge", list(rows)))

    def stage_blobs(self, blobs: Sequence[tuple[str, str]]) -> None:
        self._staged.append(("blobs", list(blobs)))

    def stage_timings(self, records: Sequence[Any]) -> None:
        """A re-executed cycle's timings are dropped (the store keeps the ones of the
        run that paid for them); a live cycle's go to the store, when it keeps them."""
        if callable(getattr(self.target, "stage_timings", None)):
            self._staged.append(("timings", list(records)))

    def stage_checkpoint(self, cycle: int, kind: str, data: bytes) -> None:
        """Checkpoints come only for the live cycles (:attr:`checkpoint_from`)."""
        self._staged.append(("checkpoint", [cycle, kind, data]))

    @property
    def checkpoint_from(self) -> int:
        """The first cycle whose checkpoint the job writes (a snapshot): the first
        live one; the re-executed ones are not written again."""
        return self.last + 1

    @property
    def snapshot_every(self) -> int | None:
        every: int | None = getattr(self.target, "snapshot_every", None)
        return every

    def knowledge_rows(self, type_name: str) -> Iterator[Any]:
        """The job's knowledge of ``type_name`` committed before the cycle running now
        (the store holds the later cycles' rows too while they are re-executed)."""
        committed = self._rows
        stage: Callable[[str], Iterable[Any]] = self.target.knowledge_rows  # type: ignore[attr-defined]
        return (row for row in stage(type_name) if row.seq < committed)

    def _pass_staged(self, live: bool) -> None:
        staged, self._staged = self._staged, []
        for kind, items in staged:
            if kind == "knowledge":
                self._rows += len(items)
            if kind == "checkpoint":
                if live and hasattr(self.target, "stage_checkpoint"):
                    self.target.stage_checkpoint(*items)
            elif live:
                getattr(self.target, f"stage_{kind}")(items)

    def cycle_ended(self, cycle: int, lines: Sequence[str]) -> None:
        """A cycle that called no tool: checked as :meth:`cycle_committed` checks it
        while re-executed; live, it may wait for a group commit in the store."""
        if cycle > self.last and isinstance(self.target, GroupCommitSink):
            self._go_live()
            self._pass_staged(True)
            self.target.cycle_ended(cycle, lines)
            return
        self.cycle_committed(cycle, lines)

    def cycle_committed(self, cycle: int, lines: Sequence[str]) -> None:
        if cycle > self.last:
            self._go_live()
            self._pass_staged(True)
            self.target.cycle_committed(cycle, lines)
            return
        self._pass_staged(False)
        stored = self._sizes.get(cycle, 0)
        if len(lines) > stored or (cycle < self.last and len(lines) != stored):
            self._cut_early(cycle, lines)
            self._diverged(cycle, f"{len(lines)} trace lines, the store holds {stored}")
        for i, line in enumerate(lines):
            old = next(self._stored, None)
            if old != line:
                self._cut_here(cycle, line)
                self._diverged(cycle, f"line {i + 1} of the cycle is now\n  {line[:300]}\n"
                               f"and was\n  {(old or '(nothing)')[:300]}")
        skip = stored - len(lines)  # the old ending of the last cycle: dropped
        for _ in range(skip):
            next(self._stored, None)
        self._kept += len(lines)
        self._verified = cycle
        if cycle == self.last:
            self._last_lines = len(lines)
            self._last_bytes = sum(len(line.encode("utf-8", "surrogatepass")) + 1
                                   for line in lines)

    def write_lines(self, lines: Iterable[str]) -> None:
        lines = list(lines)
        # (a job ended before the last stored cycle when its job_timeout ran out: say
        # so, the re-execution spends the budget too, not that the ruleset changed)
        status = status_of(lines)
        if status is not None:
            self.ended_early(*status)
        self._go_live()
        self._pass_staged(True)
        self.target.write_lines(lines)

    def ended_early(self, status: str, detail: str) -> None:
        """A run of the re-executed job ended ``status`` (``detail``): when that was
        before the last stored cycle because ``job_timeout`` ran out, raise the error
        naming the budget (else the caller says how the job diverged, if it did)."""
        if not self._live and self._verified != self.last and (
                status == "budget_exceeded" and detail.startswith("job_timeout")):
            self._out_of_time(detail)

    def _cut_early(self, cycle: int, lines: Sequence[str]) -> None:
        """The re-executed ``cycle`` has another number of lines than the stored one:
        when the first line that differs is an agent's effect cut at the job's
        deadline, the budget ran out (checks the stored lines; the caller raises)."""
        for line in lines:
            if next(self._stored, None) != line:
                self._cut_here(cycle, line)
                return

    def _cut_here(self, cycle: int, line: str) -> None:
        """``line``, the first of the re-executed ``cycle`` that differs from the
        stored one: when it is an agent's effect discarded at the job's deadline (its
        agent cut by ``job_timeout``), raise the error naming the budget."""
        if '"event":"effect_discarded"' not in line or DEADLINE_REASON not in line:
            return
        event = json.loads(line)
        if event.get("event") == "effect_discarded" and event.get("reason") == \
                DEADLINE_REASON:
            self._out_of_time(f"job_timeout ran out in cycle {cycle} while agent "
                              f"{event.get('agent')!r} ran")

    def _out_of_time(self, detail: str) -> None:
        raise StoreError(
            f"job {self.job} cannot be resumed: re-executing its stored cycles "
            f"(up to cycle {self.last}) ran out of the job's budget: {detail}. "
            "This job is resumed by running it again from its inputs (its last "
            "cycle was cut inside, or it has no checkpoint to go on from), "
            "within the same job_timeout; the store is left as it was — resume it "
            "again when the machine is less busy (the budget is wall-clock time; a "
            "resume reuses the tool answers stored), or raise job_timeout in the "
            "ruleset's root block and start a new job")

    def _go_live(self) -> None:
        if self._live:
            return
        if self._verified != self.last:
            self._diverged(self._verified + 1, "the re-executed job ended (or skipped "
                           f"to a later cycle) before cycle {self.last}, the last stored")
        self.target.reopen(self._kept, max(self.last, 0), self._last_lines,
                           self._last_bytes)
        self.target.__enter__()
        self._live = True
        if self._on_live is not None:
            self._on_live()

    def diverged(self, cycle: int, what: str) -> None:
        """Raise the error of a re-execution that differs from the stored job in
        ``cycle`` (``what``: how); the store is left as it was."""
        self._diverged(cycle, what)

    def _diverged(self, cycle: int, what: str) -> None:
        raise StoreError(
            f"job {self.job} cannot be resumed: re-executing it differs from what it "
            f"stored in cycle {cycle}: {what}. The ruleset, a plugin (a function, "
            "resolver or pruner) or the engine changed since the job ran; the store is "
            "left as it was — resume with the versions the job ran with, or start a new "
            "job")


def job_decisions(found: Resumable) -> list[Any]:
    """Every decision recorded on the job ``found`` as the engine takes them, each with
    the pause it was taken at (also after a resume that applied some of them died): the
    re-execution applies each where the stored run did, and those taken at the pause
    the job stopped at where it goes on."""
    from converge_rules.store.approvals import engine_decisions

    store = found.store
    if not hasattr(store, "decisions"):
        return []
    return engine_decisions(store.decisions(found.job.id))


def resume(found: Resumable, ruleset: Ruleset, *, executor: Any = None,
           tools: Mapping[str, Any] | None = None, progress: Any = None,
           stop: Callable[[], bool] | None = None, observer: Any = None,
           summarize: Any = None, timings: Any = None) -> Any:
    """Continue the job ``found`` with ``ruleset`` (checked to be the one it ran): the
    :class:`~converge_rules.engine.result.RunResult` an uninterrupted run gives."""
    from converge_rules.engine import run as engine_run

    if found.settings.get("later"):  # a session that took more input: its batches too
        from converge_rules.store.extend import extend

        return extend(found, ruleset, None, executor=executor, tools=tools,
                      progress=progress, stop=stop, observer=observer,
                      summarize=summarize, timings=timings)
    check_ruleset(found, ruleset)
    from converge_rules.store.checkpointed import resume_from_checkpoints

    restored = resume_from_checkpoints(found, ruleset, executor=executor,
                                       tools={**ruleset.tools, **(tools or {})},
                                       progress=progress, stop=stop, observer=observer,
                                       summarize=summarize, timings=timings)
    if restored is not None:  # from the job's checkpoints: no cycle re-executed
        return restored
    program = ruleset.program
    inputs = read_inputs(found, program)
    store, job = found.store, found.job
    sizes = store.cycle_sizes(job.id)
    expected = sum(n for _, n, _ in sizes)
    last = sizes[-1][0] if sizes else -1
    if job.status == "budget_exceeded" and "while agent" in job.detail:
        # job_timeout cut agents inside the last cycle: that cycle is run again whole
        last -= 1
    answers = recorded_answers(store.trace_lines(job.id))
    decisions = job_decisions(found)
    target = store.resume_job(job.id, expected)
    sink = ReplaySink(target, job.id, store.trace_lines(job.id), sizes, last)
    merged: dict[str, Any] = dict(ruleset.tools)
    if tools:
        merged.update(tools)
    return engine_run(program, inputs, executor=executor, tools=merged, trace=sink,
                      progress=progress, stop=stop, now=found.now, recorded=answers,
                      observer=observer, summarize=summarize, timings=timings,
                      decisions=decisions or None)
