"""A job that takes more input over time: :class:`Session`.

What CLIPS ``assert``/``retract`` and a Drools session give their users. A session is
one job: ``add`` and ``retract`` queue input changes, ``run`` merges them as a cycle of
their own and re-converges *incrementally* from the current context — agents see only
the facts new to them (their watermarks), as in any cycle; nothing runs from scratch.
The trace goes on across runs: cycle numbers keep growing, each run ends with a
``status`` event, and the inputs of a later ``add`` are ``fact_added`` events (without
agent) of the cycle they entered.

The contract, tested in ``tests/session/``: for a ruleset without negation, aggregates,
``emit lasting``, ``one at a time`` agents, keyed types, prune or tools whose answers
change, a session that adds a set of facts batch by batch — and retracts some of them
— ends with the same facts as one run over the facts that remain. Retraction reaches
every fact left without a derivation grounded in the facts that stay, cycles of facts
supporting each other included (the engine's delete-and-rederive,
:mod:`converge_rules.engine.retraction`), and an agent
that negates or aggregates over a type runs again when a fact of it leaves; but a fact
*added* later does not withdraw what an earlier run derived from its absence (``not``)
or from an aggregate's old value unless the aggregate's type is keyed with a policy
that lets the new value replace the old (an update in place). See docs/api.md.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from converge_rules._gc import paused_gc
from converge_rules.engine.executors import Executor, SerialExecutor
from converge_rules.engine.gates import Decision, check_decision
from converge_rules.engine.inputs import InputFacts, validate_pairs
from converge_rules.engine.merge import needs_dependents
from converge_rules.engine.result import RunResult
from converge_rules.engine.runner import ProgressFn, _Job, _Stop, job_clock
from converge_rules.engine.tools import ToolFn
from converge_rules.engine.trace import Trace, jsonable
from converge_rules.errors import InputError, SessionError
from converge_rules.program import CLOCK, Clock, Program

if TYPE_CHECKING:
    from converge_rules.api import Ruleset

Pattern = tuple[str, Mapping[str, Any]]
"""``(type name, fields)``: the input facts of that type whose listed fields have these
values (every field listed: one fact)."""

#: statuses after which a session's job cannot go on (its merge or budget stopped it)
_FINAL = frozenset({"conflict", "budget_exceeded", "oscillating"})
#: the statuses of a run after which what was added since is merged (its fixpoint)
_GOES_ON = frozenset({"converged", "unmet_goal", "awaiting_approval"})


class Session:
    """A job that takes input facts over time. ``program`` is a compiled
    :class:`~converge_rules.program.Program` or a loaded
    :class:`~converge_rules.api.Ruleset` (its tools then come with it, and
    ``executor`` may name one of its registered executors). ``facts`` are the first
    input facts (``(type name, fields)`` pairs or :class:`InputFacts`); ``executor``,
    ``tools``, ``progress``, ``stop`` and ``now`` are what :func:`~converge_rules.
    engine.run` takes (``now`` is read once: every run of the session has the same
    time). ``retract=False`` spares the session the derivations a retraction needs
    (less memory on a large job); :meth:`retract` is then refused.

    ``run()`` returns a :class:`RunResult` per run; it reads the session's live
    context, so read it before the next ``run``. Budgets are the session's:
    ``max_cycles``, ``max_tool_calls`` and ``max_facts`` count over all its runs (an
    input cycle is a cycle); ``job_timeout`` bounds each run. Use it as a context
    manager, or call :meth:`close` (it ends the tools' event loop)."""

    def __init__(
        self,
        program: Program | Ruleset,
        facts: InputFacts | Iterable[tuple[str, Mapping[str, Any]]] = (),
        *,
        executor: Executor | str | None = None,
        workers: int | None = None,
        tools: Mapping[str, ToolFn] | None = None,
        progress: ProgressFn | None = None,
        stop: Callable[[], bool] | None = None,
        now: datetime | Clock | None = CLOCK,
        retract: bool = True,
    ) -> None:
        self.program, merged, exe = _resolve(program, executor, workers, tools, progress, stop)
        self._tools = merged
        self._executor = exe
        self._progress = progress
        self._stop = stop
        self._now = job_clock(now)
        self._retract = retract
        self._job: _Job | None = None
        self._pending: list[InputFacts] = []
        self._withdrawn: dict[int, None] = {}  # live input ids to take out, in order
        self._closed = False
        self._ended: str | None = None  # why the job cannot go on, once it cannot
        self._decisions: dict[str, Decision] = {}  # taken since the last run, by id
        self._status: str | None = None  # the last run's
        self.add(facts)

    @classmethod
    def of_job(cls, job: _Job, *, retract: bool | None = None) -> Session:
        """A session that goes on with ``job``, a job already started (restored from a
        checkpoint, say): its program, executor, tools and time. ``retract`` defaults to
        whether its store keeps derivations."""
        session = cls.__new__(cls)
        session.program = job.program
        session._tools = {}
        session._executor = job.executor
        session._progress = job.progress
        session._stop = job.stop
        session._now = job.store.now
        session._retract = job.store.retractable if retract is None else retract
        if session._retract and not job.store.retractable:
            raise SessionError("this job's store keeps no derivations, so its input facts "
                               "cannot be retracted; pass retract=False")
        session._job = job
        session._pending = []
        session._withdrawn = {}
        session._closed = False
        session._ended = None
        session._decisions = {}
        session._status = None
        return session

    # --------------------------------------------------------------- inputs

    def add(self, facts: InputFacts | Iterable[tuple[str, Mapping[str, Any]]]) -> int:
        """Queue input facts for the next :meth:`run` (validated now: bad input raises
        :class:`~converge_rules.errors.InputError` and queues nothing). Facts are
        merged in the order given; of two for one key, ``resolve by latest`` keeps the
        later. Returns how many were queued."""
        self._usable()
        inputs = facts if isinstance(facts, InputFacts) else validate_pairs(
            self.program, facts, source="<add>")
        if len(inputs):
            self._pending.append(inputs)
        return len(inputs)

    def retract(self, facts: Pattern | Iterable[Pattern]) -> int:
        """Take back input facts at the next :meth:`run`: each ``(type name, fields)``
        pattern matches the input facts of that type whose listed fields have these
        values (list every field for one fact); facts added but not yet run are simply
        dropped. What rests only on a retracted fact leaves with it. Returns how many
        input facts were retracted. A pattern that matches no input fact, an unknown
        type or field, or a session made with ``retract=False`` raises."""
        self._usable()
        if not self._retract:
            raise SessionError("this session keeps no derivations, so it cannot retract "
                               "input facts: create it with Session(..., retract=True) "
                               "(the default)")
        # (a text is no list of patterns: read char by char, it said "got 'A'")
        # (nor is a mapping, whose keys would be read as texts; nor None)
        single = _is_pattern(facts) or isinstance(facts, str | Mapping) or not isinstance(
            facts, Iterable)
        patterns = [facts] if single else list(facts)
        matchers = [self._matcher(i, p) for i, p in enumerate(patterns)]
        for i, (type_id, test, shown) in enumerate(matchers):
            if not self._matches(type_id, test):  # checked first: all or nothing
                raise InputError(f"no input fact matches {shown}" + self._derived_hint(
                    type_id, test), source="<retract>", line=i + 1,
                    help="retract takes back input facts (added or given at the start); "
                    "a derived fact leaves when what it rests on does")
        return sum(self._drop_pending(type_id, test) + self._withdraw_live(type_id, test)
                   for type_id, test, _ in matchers)

    def _matches(self, type_id: int, test: Callable[[tuple[Any, ...]], bool]) -> bool:
        """Whether some queued or live input fact of ``type_id`` passes ``test``."""
        if any(t == type_id and test(v) for batch in self._pending
               for t, v in zip(batch.types, batch.values, strict=True)):
            return True
        job = self._job
        if job is None:
            return False
        store = job.store
        return any(f not in self._withdrawn and store.is_input(f) and test(store.values[f])
                   for f in store.live[type_id])

    def _matcher(
        self, index: int, pattern: Any
    ) -> tuple[int, Callable[[tuple[Any, ...]], bool], str]:
        """``(type id, test of a fact's values, the pattern as text)``."""
        if isinstance(pattern, str):
            raise InputError(f"expected a (type name, fields) pattern, got the text "
                             f"{pattern[:60]!r}", source="<retract>", line=index + 1,
                             help='retract(("Reading", {"sensor": "s1"})) or a list of them')
        if isinstance(pattern, Mapping) and len(pattern) == 1:
            # (a fact as JSON Lines writes it: said "got the text 'Reading'", its key)
            name, fields = next(iter(pattern.items()))
            raise InputError(f"expected a (type name, fields) pattern, got the mapping "
                             f"{{{name!r}: …}}", source="<retract>", line=index + 1,
                             help=f"write ({name!r}, {{…}}) for {{{name!r}: {{…}}}}: "
                             'retract(("Reading", {"sensor": "s1"})) or a list of them')
        if not _is_pattern(pattern):
            shown = repr(pattern)
            raise InputError(f"expected a (type name, fields) pattern, got "
                             f"{shown if len(shown) <= 80 else shown[:77] + '...'}",
                             source="<retract>", line=index + 1,
                             help='retract(("Reading", {"sensor": "s1"})) or a list of them')
        name, fields = pattern
        type_id = self.program.type_ids.get(name)
        if type_id is None:
            known = ", ".join(t.name for t in self.program.types)
            raise InputError(f"no fact type {name!r}", source="<retract>", line=index + 1,
                             help=f"the ruleset declares: {known}")
        spec = self.program.types[type_id]
        wanted: list[tuple[int, Any]] = []
        for field, value in fields.items():
            if field not in spec.field_names:
                raise InputError(f"{name} has no field {field!r}", source="<retract>",
                                 line=index + 1,
                                 help=f"its fields: {', '.join(spec.field_names)}")
            wanted.append((spec.field_names.index(field), value))

        def test(vals: tuple[Any, ...]) -> bool:
            return all(_same_value(vals[p], v) for p, v in wanted)

        inner = ", ".join(f"{k}: {v!r}" for k, v in fields.items())
        return type_id, test, f"{name}({inner})"

    def _drop_pending(self, type_id: int, test: Callable[[tuple[Any, ...]], bool]) -> int:
        dropped = 0
        kept: list[InputFacts] = []
        for batch in self._pending:
            keep = [(t, v) for t, v in zip(batch.types, batch.values, strict=True)
                    if not (t == type_id and test(v))]
            dropped += len(batch) - len(keep)
            if keep:
                kept.append(InputFacts(array("i", [t for t, _ in keep]),
                                       [v for _, v in keep]))
        self._pending = kept
        return dropped

    def _withdraw_live(self, type_id: int, test: Callable[[tuple[Any, ...]], bool]) -> int:
        job = self._job
        if job is None:
            return 0
        store = job.store
        values = store.values
        n = 0
        for fid in store.live[type_id]:
            if fid not in self._withdrawn and store.is_input(fid) and test(values[fid]):
                self._withdrawn[fid] = None
                n += 1
        return n

    def _derived_hint(self, type_id: int, test: Callable[[tuple[Any, ...]], bool]) -> str:
        job = self._job
        if job is None:
            return ""
        store = job.store
        derived = [f for f in store.live[type_id]
                   if not store.is_input(f) and test(store.values[f])]
        if not derived:
            return ""
        return (f" (it matches {len(derived)} derived fact{'s' if len(derived) > 1 else ''}"
                f", which only leave with what they rest on)")

    # ------------------------------------------------------------- decisions

    @property
    def pending(self) -> list[dict[str, Any]]:
        """The facts approval gates hold now, as ``result.pending`` lists them (``id``,
        ``gate``, ``type``, ``fields``, ``agent``, ``cycle``, ``support``), in id
        order; decisions taken since the last run are applied by the next."""
        job = self._job
        return [] if job is None or job.gates is None else job.gates.listing()

    def approve(self, id: str, *, by: str | None = None, at: str | datetime | None = None,
                note: str = "", edits: Mapping[str, Any] | None = None) -> Decision:
        """Approve the pending fact ``id`` (``pending[i]["id"]``) of a session whose
        last run ended ``awaiting_approval``; the next :meth:`run` applies it — as
        ``converge approve`` and ``converge run --resume`` do for a stored job, with the
        same checks: ``edits`` (field → value) are checked against the fact's type now
        (an unknown or key field, a value of the wrong type: an
        :class:`~converge_rules.errors.InputError` naming it, nothing taken), ``by``
        defaults to the OS user, ``at`` to now (UTC; an ISO 8601 text with a zone or an
        aware datetime), and a decision is final: a second one on the fact, an id not
        pending, or a session not awaiting approval is a
        :class:`~converge_rules.errors.SessionError`. The decision, as the trace will
        record it (its ``paused_at``: the cycles run so far)."""
        return self._decide(id, True, by, at, note, edits or {})

    def reject(self, id: str, *, by: str | None = None, at: str | datetime | None = None,
               note: str = "") -> Decision:
        """Reject the pending fact ``id``: the next :meth:`run` drops it, and the job
        never takes it again. Otherwise as :meth:`approve`."""
        return self._decide(id, False, by, at, note, {})

    def _decide(self, id: str, approve: bool, by: str | None, at: str | datetime | None,
                note: str, edits: Mapping[str, Any]) -> Decision:
        from converge_rules.store.approvals import os_user, utc_text

        self._usable()
        if not isinstance(id, str) or not id:
            raise TypeError(f"id is the pending fact's id (a str like 'p-1a2b3c'), got {id!r}")
        if by is None:
            by = os_user()
        if not isinstance(by, str) or not by.strip():
            raise ValueError("by names who decides (the trace keeps it): give a name, or "
                             "leave it out for the OS user")
        job = self._job
        gates = None if job is None else job.gates
        if id in self._decisions or (gates is not None and id in gates.decided_ids()):
            raise SessionError(f"{id} has a decision already; a decision is final "
                               "(Session.pending lists what is left to decide)")
        if self._status != "awaiting_approval" or job is None or gates is None:
            raise SessionError(
                "this session is not awaiting approval (its last run's status is "
                f"{self._status or 'none: it has not run'}); only a session whose last run "
                "ended awaiting_approval takes decisions")
        held = gates.pending.get(id)
        if held is None:
            ids = ", ".join(sorted(gates.pending)) or "none"
            raise SessionError(f"no fact {id} is pending in this session; pending: {ids}")
        decision = Decision(id, approve, by=by, at=utc_text(at), note=note, edits=dict(edits),
                            paused_at=job.meter.cycles)
        check_decision(self.program, held, decision)  # a bad edit: nothing is taken
        self._decisions[id] = decision
        return decision

    # ------------------------------------------------------------------ run

    def run(self) -> RunResult:
        """Apply the decisions taken since the last run (where the job paused: the
        job goes on to its fixpoint, as ``converge run --resume`` does), then merge
        what was added and retracted since the last run as one input cycle, and
        converge from there: only agents with something new (or something gone
        that they negate or aggregate over) run. The first run starts the job (the
        inputs are cycle 0). A run ending ``conflict``, ``budget_exceeded`` or
        ``oscillating`` ends the session's job: later calls raise
        :class:`~converge_rules.errors.SessionError`."""
        self._usable()
        pending = self._pending
        queued = self._withdrawn
        withdrawn = list(queued)
        decisions = list(self._decisions.values())
        self._decisions = {}
        inputs = pending[0] if len(pending) == 1 else sum(
            pending[1:], pending[0]) if pending else InputFacts(array("i"), [])
        self._pending, self._withdrawn = [], {}
        with paused_gc():
            first = self._job is None
            if self._job is None:
                self._job = _Job(
                    self.program, inputs, self._executor, self._tools,
                    self._progress, self._stop, self._now,
                    retractable=self._retract or needs_dependents(self.program),
                )
            job = self._job
            result: RunResult | None = None
            if decisions:
                # the decisions first, where the job paused (what they were taken on),
                # as a resumed stored job applies them: the same cycles, the same trace
                # as decisions given up front; then what was added, as `converge run
                # --resume --facts` merges it after them
                result = job.go_on(decisions, last=False)
                if (pending or withdrawn) and result.status not in _GOES_ON:
                    # (stopped before its fixpoint: what was added waits for the next run)
                    self._pending, self._withdrawn = pending, queued
            if result is None or (result.status in _GOES_ON and (pending or withdrawn)):
                try:
                    if first:
                        del inputs
                        job.start()
                    else:
                        job.merge_later(inputs, withdrawn)
                except _Stop as stop:
                    result = job._finish(stop.status, stop.detail, [], stop.loop)
                except MemoryError as exc:
                    result = job._out_of_memory(exc)
                else:
                    result = job.converge(last=False)
        self._status = result.status
        if result.status in _FINAL:
            self._ended = result.status
        return result

    @property
    def trace(self) -> Trace | None:
        """The session's trace so far (None before the first run)."""
        return None if self._job is None else self._job.trace

    @property
    def cycles(self) -> int:
        """The cycles run so far, input cycles included (the last cycle's number)."""
        return 0 if self._job is None else self._job.meter.cycles

    def close(self) -> None:
        """End the session: its tools' event loop stops. Idempotent; nothing more can
        be added or run."""
        if self._closed:
            return
        self._closed = True
        if self._job is not None:
            self._job.tools.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _usable(self) -> None:
        if self._closed:
            raise SessionError("the session is closed; start a new Session")
        if self._ended is not None:
            raise SessionError(f"the session's job ended with status {self._ended} and "
                               "cannot go on; start a new Session (with its facts) to "
                               "run again")


def _is_pattern(value: Any) -> bool:
    return (isinstance(value, tuple | list) and len(value) == 2
            and isinstance(value[0], str) and isinstance(value[1], Mapping))


def _same_value(stored: Any, given: Any) -> bool:
    """Whether a fact's value is the one a pattern gives: equal as Python values or as
    JSON holds them (a date as ISO text), and a bool only to a bool."""
    if isinstance(stored, bool) != isinstance(given, bool):
        return False
    return bool(stored == given or jsonable(stored) == given)


def _resolve(
    program: Program | Ruleset, executor: Executor | str | None, workers: int | None,
    tools: Mapping[str, ToolFn] | None, progress: object = None, stop: object = None,
) -> tuple[Program, dict[str, ToolFn], Executor]:
    """The program, tools and executor a session runs with, refused (as ``run``
    refuses them) before anything starts."""
    if isinstance(program, Program):
        if isinstance(executor, str):
            raise TypeError("an executor name needs the registries of a loaded Ruleset; "
                            "pass an executor instance with a Program")
        if workers is not None:
            raise ValueError("workers sizes a named executor of a Ruleset")
        return program, dict(tools or {}), executor or SerialExecutor()
    from converge_rules.api import Ruleset, _check_run_arguments, _registries, require_tools

    if not isinstance(program, Ruleset):
        raise TypeError(f"Session takes a Ruleset (converge_rules.load) or a Program, got "
                        f"{type(program).__name__}")
    _check_run_arguments(executor, workers, None, None, stop, progress=progress, tools=tools)
    merged: dict[str, ToolFn] = dict(program.tools)
    merged.update(tools or {})
    require_tools(program, merged)
    registries = program.registries or _registries(False)
    exe = registries.executor(executor, workers) if isinstance(executor, str) else executor
    return program.program, merged, exe or SerialExecutor()


__all__ = ["Pattern", "Session"]
