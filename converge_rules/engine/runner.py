"""The cycle loop and :func:`run`, the engine's entry point.

Per tier, ascending, cycles run until a fixpoint (a cycle whose merge and prune add,
replace and remove nothing). In phase 1 every agent of the tier with something new to
match runs against the same snapshot through an executor; in phase 2 the effects are
merged one at a time in merge order. A job ends with exactly one status, and always
with its partial results.

Memory is a budget like the others: an agent run that builds more than ``max_facts``
outputs or a value over ``max_string_length`` / ``max_list_length`` stops the job with
status ``budget_exceeded`` naming the agent; so does a ``MemoryError`` anywhere in the
job (budget ``memory``), which is never a success.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from operator import attrgetter, itemgetter
from os import PathLike
from time import perf_counter
from typing import TYPE_CHECKING, Any, TypeGuard

from converge_rules import _crash
from converge_rules._gc import paused_gc
from converge_rules.datetypes import UTC, datetime
from converge_rules.engine.budgets import BudgetMeter
from converge_rules.engine.deadline_guard import JobDeadline, Watchdog, cut_at, watching
from converge_rules.engine.effects import (
    D_FIRED,
    Activation,
    Activations,
    AgentEffect,
    RunOutputs,
)
from converge_rules.engine.events import EventRelay, Observer
from converge_rules.engine.executors import Executor, SerialExecutor
from converge_rules.engine.factstore import FactStore
from converge_rules.engine.fingerprints import FingerprintIndex
from converge_rules.engine.inputs import InputFacts, validate_pairs
from converge_rules.engine.knowledge import Knowledge, KnowledgeSink, Summarize
from converge_rules.engine.merge import Merger, needs_dependents
from converge_rules.engine.payloads import Payloads, PayloadSink
from converge_rules.engine.result import RunResult, Status, fact_sort_key
from converge_rules.engine.timings import Timings, TimingsSink
from converge_rules.engine.tools import ToolBox, ToolFn
from converge_rules.engine.trace import (
    E_BUDGET,
    E_CYCLE_END,
    E_CYCLE_START,
    E_FACT_ADDED,
    E_INPUTS,
    E_INTENT_CLOSED,
    E_JOB_TIME,
    E_PRUNED,
    E_REPLACED,
    E_RETRACTED,
    E_STATUS,
    E_TOOL_CALL,
    SPILL_EVENTS,
    Event,
    Trace,
    jsonable,
    removal_of,
)
from converge_rules.errors import ExecutorError
from converge_rules.language.builtins import iso_text
from converge_rules.program import CLOCK, Clock, Output, Program
from converge_rules.records import record
from converge_rules.store.jsonl import JsonLinesTraceSink

if TYPE_CHECKING:
    # gates, invariants and trace rows are imported by the runs that have them (a
    # program with gates or invariants, a store's compact sink), not by every run
    from converge_rules.engine.checkpoints import Checkpointer
    from converge_rules.engine.gates import Decider, Decision, Gates
    from converge_rules.engine.invariants import InvariantGuard
    from converge_rules.engine.tracerows import CompactCycle
    from converge_rules.store.base import CompactSink, CycleSink, GroupCommitSink, TraceSink


@record
class CycleProgress:
    """What the ``progress`` callback receives after each cycle."""

    cycle: int
    tier: int
    agents: int
    live_facts: int
    conflicts: int


ProgressFn = Callable[[CycleProgress], None]

YOUNG_GARBAGE = 50_000
"""Between cycles the young generations are collected (the collector being paused for
the run) once this many objects were allocated since the last collection and not
freed: a cycle of a few agent runs leaves its garbage to a later one, rather than each
collection rescanning the cycle's live effects and events (a sixth of a cycle of 200
keyed updates). 50,000 rather than 10,000: Waltz 50's collections found no garbage and
cost a tenth of its compute (0.64 -> 0.58 s CPU, medians of 5, load ~9), while the
keyed counter's peak RSS at 10,000 cycles over 1,000 stayed 1.03."""

#: seconds goals may take when the job's deadline has passed as they begin
GOALS_GRACE = 1.0

_POSITION = attrgetter("position")
_ERROR = attrgetter("error")
_BUDGET = attrgetter("budget")
_OUTPUTS = attrgetter("outputs")
_KIND = itemgetter(0)  # (an event's kind)
_EFFECT_TYPES = frozenset({AgentEffect})


class _Stop(Exception):
    """Ends the cycle loop with a status (internal control flow)."""

    def __init__(self, status: Status, detail: str, loop: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.status: Status = status
        self.detail = detail
        self.loop = loop


class _Job:
    def __init__(
        self,
        program: Program,
        inputs: InputFacts,
        executor: Executor,
        tools: Mapping[str, ToolFn] | None,
        progress: ProgressFn | None,
        stop: Callable[[], bool] | None = None,
        now: datetime | None = None,
        cycle_sink: CycleSink | None = None,
        observer: Observer | None = None,
        recorded: Mapping[str, tuple[dict[str, Any] | None, str | None]] | None = None,
        *,
        retractable: bool | None = None,
        summarize: Summarize | None = None,
        timings: Timings | None = None,
        decisions: Iterable[Decision] | Decider | None = None,
    ) -> None:
        """``retractable``: whether the store keeps the derivations a retraction needs
        (None: when the program can remove facts; a session that retracts inputs
        needs them whatever the program). ``timings``: the collector of the job's
        wall-clock timings (None: not timed), never part of the trace. ``decisions``:
        on the facts approval gates hold (:mod:`~converge_rules.engine.gates`)."""
        self.program = program
        self.cycle_sink = cycle_sink
        #: the cycle sink when it can commit cycles in groups, else None
        #: a sink that keeps raw events (a job store's): no line built at run time
        # (a runtime-checkable protocol's isinstance walks its members, even for None:
        # the sink checks below are made only when there is a sink)
        sunk = cycle_sink is not None
        self.compact_sink: CompactSink | None = None
        self._compact: (Callable[[Trace, int, Sequence[Event] | None], CompactCycle]
                        | None) = None
        self.group_commit: GroupCommitSink | None = None
        if cycle_sink is not None:
            # The store's protocols (and its records' dataclasses) are imported only
            # for a run that has a sink: a run without one never needs them.
            from converge_rules.store.base import CompactSink, GroupCommitSink

            if isinstance(cycle_sink, CompactSink):
                from converge_rules.engine.tracerows import RAW_KINDS, compact

                self.compact_sink = cycle_sink
                # (imported once here: a cycle's commit calls them)
                self._compact = compact
                #: whether kinds (an iterable of ints) are all kinds a raw row keeps:
                #: a set's issuperset, not all_raw's bytes (half the time a cycle)
                self._raw_kinds = RAW_KINDS.issuperset
            self.group_commit = (cycle_sink if isinstance(cycle_sink, GroupCommitSink)
                                 else None)
        #: how many raw trace events the cycle sink has been handed
        self.committed = 0
        #: ``committed`` and the fact store's next id when the sink was last handed a
        #: cycle (where the facts of the next cycle's start)
        self._handed = (0, 0)
        #: the cycles that ended, all of whose events a raw row keeps, not handed to
        #: the compact sink yet (see _commit_compact): each ``(cycle, where its events
        #: end, the fact store's next id after it, how many of its ``left`` had left)``
        self._held: list[tuple[int, int, int, int]] = []
        #: whether cycles handed over raw wait for the commit (their events must be
        #: in memory then: the engine has them encoded before its trace spills)
        self._raw_waiting = False
        self.inputs: InputFacts | None = inputs
        self.executor = executor
        self.progress = progress
        self.stop = stop
        self.store = FactStore(program, retractable=needs_dependents(program)
                               if retractable is None else retractable)
        self.store.now = now
        self.trace = Trace(program, self.store)
        #: live events for the observer, if any (published between cycles, never per fact)
        self.relay = None if observer is None else EventRelay(self.trace, observer)
        self.merger = Merger(program, self.store, self.trace.raw)
        self.merger.record_delta = bool(getattr(executor, "wants_delta", True))
        self.guard: InvariantGuard | None = None
        if program.invariants:
            from converge_rules.engine.invariants import InvariantGuard

            self.guard = InvariantGuard(program, self.store, self.trace.raw)
        if self.guard is not None and self.guard.never:
            self.merger.guard = self.guard  # effects are checked only for `never` ones
        self.gates: Gates | None = None
        if program.gates:
            from converge_rules.engine.gates import Gates

            self.gates = Gates(program, self.store, self.trace.raw, decisions)
        self.merger.gates = self.gates
        self.meter = BudgetMeter(program.budgets)
        self.knowledge = Knowledge(program, summarize=summarize, sink=(
            cycle_sink if sunk and isinstance(cycle_sink, KnowledgeSink) else None))
        self.merger.knowledge = self.knowledge
        self.payloads = Payloads(program, self.store, sink=(
            cycle_sink if sunk and isinstance(cycle_sink, PayloadSink) else None))
        self.tools = ToolBox(self.knowledge.bind_tool(tools), program.budgets.max_tool_calls,
                             recorded)
        self.timings = timings
        #: the sink that keeps the timings in each cycle's transaction, if any
        self.timings_sink: TimingsSink | None = None
        if timings is not None:
            self.tools.timings, self.tools.time_calls = timings, True
            if callable(getattr(cycle_sink, "stage_timings", None)):
                self.timings_sink = cycle_sink  # type: ignore[assignment]
        self.crash_at = _crash.armed()
        n = len(program.agents)
        self.watermark = [0] * n
        self.ran = [False] * n
        self.seen_removals: list[tuple[int, ...]] = [()] * n
        # the types whose removals may give an agent a new match: those it negates or
        # aggregates over, and for a one-at-a-time agent those it emits too (a match
        # whose outputs were all live may change the context again)
        self.watched: list[tuple[int, ...]] = [
            tuple(dict.fromkeys(a.negates + a.emits)) if a.one_at_a_time else a.negates
            for a in program.agents
        ]
        #: per agent, the one type it reads when that alone decides whether it runs (it
        #: reads one type, negates none, and is not one at a time: it runs when that
        #: type has a fact at or above its watermark), else -1 (see _activations)
        self.reads_one = [
            a.reads[0] if len(a.reads) == 1 and not a.negates and not a.one_at_a_time
            else -1 for a in program.agents
        ]
        #: whether each one-at-a-time agent fired in its last run (it may have more)
        self.fired = [False] * n
        self.stepwise = any(a.one_at_a_time for a in program.agents)
        # an agent that handles removals of the types it negates incrementally is
        # handed the ids gone: those types' removals are logged
        self.store.log_removals(
            {t for a in program.agents if not a.one_at_a_time for t in a.unblocks}
        )
        self.fingerprints = FingerprintIndex()
        #: ``(cycle, cycle after which the context was the same, or None)``: the cycle
        #: loop's look-up for a cycle that changed a context that can shrink, made
        #: before the cycle's commit so that its checkpoint need not make it again
        self.returned_to: tuple[int, int | None] = (-1, None)
        self.started = time.monotonic()
        #: the checkpoint of each committed cycle, when the sink keeps them
        self.checkpoints: Checkpointer | None = None
        if sunk:  # (imported by a job with a sink: a plain run needs none of it)
            from converge_rules.engine.checkpoints import (
                Checkpointer,
                CheckpointSink,
                checkpointable,
            )

            if isinstance(cycle_sink, CheckpointSink) and checkpointable(program):
                self.checkpoints = Checkpointer(self, cycle_sink)

    # ---------------------------------------------------------------- running

    def run(self) -> RunResult:
        """The whole job: :meth:`start` (the inputs, cycle 0), then :meth:`converge`."""
        try:
            with self._watching() as watchdog:
                try:
                    self.start()
                except JobDeadline:
                    return self._cut(watchdog)
        except _Stop as stop:
            return self._finish(stop.status, stop.detail, [], stop.loop)
        except MemoryError as exc:
            return self._out_of_memory(exc)
        return self.converge()

    def _watching(self) -> AbstractContextManager[Watchdog | None]:
        """The job's watchdog over the plugin code its merges call (resolvers, the
        invariants' functions), when the job has a ``job_timeout`` and a program that
        has such code (:mod:`~converge_rules.engine.deadline_guard`)."""
        job_timeout = self.program.budgets.job_timeout
        program = self.program
        if job_timeout is None or not (program.invariants or any(
                c.kind == "using" for p in program.policies.values() for c in p.criteria)):
            return watching(None)
        return watching(self.started + job_timeout - time.monotonic())

    def _cut(self, watchdog: Watchdog | None) -> RunResult:
        """The job's end when its watchdog cut a resolver or an invariant at the job's
        deadline (inside a merge: the facts merged until then are kept, as for a stop
        in the merge)."""
        doing = watchdog.doing if watchdog is not None else "the merge ran"
        if self.checkpoints is not None:
            # the job ends inside a cycle's merge: the state is no longer that of the
            # last cycle ended, whose checkpoint (if it waits) would be staged from it
            # (its agents' matches of the cycle cut taken: a resume ran none of them);
            # without it a resume starts from an earlier checkpoint or the inputs
            self.checkpoints.stop()
        stop = self._exceeded("job_timeout", f"job_timeout "
                              f"({self.program.budgets.job_timeout:g}s) ran out while "
                              f"{doing} in cycle {self.meter.cycles}; the facts merged "
                              "until then are the partial results")
        return self._finish(stop.status, stop.detail, [])

    def _out_of_memory(self, exc: MemoryError) -> RunResult:
        # Whatever was being built is garbage by now; the store keeps the facts
        # merged so far, which are the partial results.
        self.inputs = None
        where = str(exc) or "the job ran out of memory (MemoryError)"
        stop = self._exceeded("memory", f"{where} in cycle {self.meter.cycles}; the "
                              "facts are the partial results")
        return self._finish(stop.status, stop.detail, [])

    def start(self) -> None:
        """Merge the input facts (cycle 0), prune, and commit cycle 0. Raises
        :class:`_Stop` when the merge ends the job (a conflict, ``max_facts``)."""
        store, merger, meter = self.store, self.merger, self.meter
        assert self.inputs is not None
        began = perf_counter()
        merger.merge_inputs(self.inputs.types, self.inputs.values)
        self.inputs = None  # the store holds the facts now; let validated rows go
        self.trace.raw.insert(0, (E_INPUTS, store.n_inputs))
        if self.program.reads_time and store.now is not None:
            self.trace.raw.insert(0, (E_JOB_TIME, iso_text(store.now)))
        meter.facts_peak = store.live_count
        if merger.stop is not None:
            raise self._merge_stop()
        # prune applies after every merge, the inputs' (cycle 0) included: an input
        # fact a prune drops at age 0 is never seen by any agent
        merger.prune(0)
        broken = self._invariants(0)
        if self.timings is not None:  # cycle 0 evaluates nothing: the inputs' merge
            self.timings.cycle_done(0, 0.0, perf_counter() - began)
        self.fingerprints.add(store.fingerprint, 0)
        self._commit_cycle(0)  # the inputs and what their merge did
        if broken is not None:
            raise _Stop("invariant_violated", broken)

    def merge_later(self, inputs: InputFacts, withdrawn: Sequence[int] = ()) -> None:
        """Merge input facts that arrived after the job started, as a cycle of their
        own (the next number): first the input facts ``withdrawn`` (ids) leave with what
        rests only on them, then ``inputs`` are merged in input order, keyed ones
        against the incumbents by their policy. Agents see them as new facts (their
        watermarks are below them): the next :meth:`converge` goes on from here,
        semi-naively. The job's fingerprints start over: a context the new inputs bring
        back is no oscillation. Raises :class:`_Stop` when the merge ends the job."""
        from converge_rules.engine.later_inputs import merge_later_inputs, open_for_inputs

        store, merger, meter = self.store, self.merger, self.meter
        if self.checkpoints is not None:
            self.checkpoints.later_inputs()  # its checkpoint: the tiers start over after
        meter.cycles += 1
        cycle = meter.cycles
        tier = self.program.tiers[0] if self.program.tiers else 0
        ev = self.trace.raw.append
        ev((E_CYCLE_START, cycle, tier, ()))
        open_for_inputs(store)
        merge_later_inputs(merger, cycle, inputs, withdrawn)
        if merger.stop is None:
            merger.prune(cycle)
        broken = self._invariants(cycle) if merger.stop is None else None
        meter.facts_peak = max(meter.facts_peak, store.live_count)
        ev((E_CYCLE_END, cycle, tier, merger.added, merger.removed, store.live_count))
        self._commit_cycle(cycle)
        self.trace.spill()
        self.started = time.monotonic()  # job_timeout bounds each run of a session
        if merger.stop is not None:
            raise self._merge_stop()
        if broken is not None:
            raise _Stop("invariant_violated", broken)
        self.fingerprints = FingerprintIndex()
        if store.retractable:
            self.fingerprints.add(store.fingerprint, cycle)

    def converge(self, *, last: bool = True, first_tier: int = 0) -> RunResult:
        """Run the tiers from the context as it is to their fixpoints (agents see only
        what is new to them), then decide the status by the goals; the result. With
        ``last`` False (a session that may take more input) the tools stay open; from
        the tier at ``first_tier`` of the program's tiers (a job restored from a
        checkpoint goes on in the tier it was in)."""
        try:
            with self._watching() as watchdog:
                try:
                    return self._converge(last, first_tier)
                except JobDeadline:
                    return self._cut(watchdog)
        except _Stop as stop:
            return self._finish(stop.status, stop.detail, [], stop.loop)
        except MemoryError as exc:
            return self._out_of_memory(exc)

    def _converge(self, last: bool, first_tier: int) -> RunResult:
        """:meth:`converge`'s work, raising what ends the job."""
        store = self.store
        self.merger.take_delta()  # executors start from the store as it is now
        job_timeout = self.program.budgets.job_timeout
        self.executor.start(
            store.as_view(), self.program.agents, tools=self.tools,
            agent_timeout=self.program.budgets.agent_timeout,
            deadline=None if job_timeout is None else self.started + job_timeout,
        )
        try:
            for tier in self.program.tiers[first_tier:]:
                self._run_tier(tier)
            # nothing else can change: decisions on held facts, if any, are applied
            # now (and only now: see engine/gates.py), then the tiers go on from the
            # facts approved
            while self._apply_decisions():
                for tier in self.program.tiers:
                    self._run_tier(tier)
        finally:
            try:
                self.executor.close()
            finally:
                if last:
                    self.tools.close()  # stops the async tools' event loop
        if self.gates is not None and self.gates.pending:
            n = len(self.gates.pending)
            return self._finish(
                "awaiting_approval", f"{n} fact{'s' if n != 1 else ''} "
                f"await{'s' if n == 1 else ''} approval; every tier reached a "
                f"fixpoint without {'it' if n == 1 else 'them'}", [])
        status, detail, unmet = self._goals()
        return self._finish(status, detail, unmet)

    def _activations(self, members: list[int], read: list[int] | None = None
                     ) -> Activations:
        """The tier's agents (``members``) with something new to match, in position
        order. ``read``: the types they read when each of them reads one type
        (``reads_one``), which a comprehension then decides for all of them at once."""
        if read is not None:
            return self._readers_of_one(members, read)
        store = self.store
        agents = self.program.agents
        acts = Activations()
        positions, sinces, gones = acts.positions, acts.sinces, acts.gones
        add, add_since, add_gone = positions.append, sinces.append, gones.append
        # each type's newest id looked up once per cycle, not once per agent
        newest: dict[int, int] = {}
        reads_one, watermark = self.reads_one, self.watermark
        for a in members:
            t = reads_one[a]
            if t >= 0:  # the usual agent: one pattern, no negation (the loop below's case)
                top = newest.get(t)
                if top is None:
                    top = newest[t] = store.max_live_id(t)
                w = watermark[a]
                if top >= w:
                    add(a)
                    add_since(w)
                    add_gone(None)
                continue
            spec = agents[a]
            if spec.one_at_a_time:
                # it chooses among all its matches each time: always from scratch
                # (a new fact where it aggregates may give it a new match too)
                if not self.ran[a] or self.fired[a] or any(
                    store.max_live_id(t) >= self.watermark[a]
                    for t in (*spec.reads, *spec.negates)
                ) or tuple(store.removals[t] for t in self.watched[a]) != (
                    self.seen_removals[a]
                ):
                    add(a)
                    add_since(0)
                    add_gone(None)
                continue
            if self.ran[a]:
                # (without negations, no removal can give it a new match)
                if spec.negates:
                    removals = tuple(store.removals[t] for t in spec.negates)
                    if removals != self.seen_removals[a]:
                        act = self._after_removals(a, removals)
                        add(a)
                        add_since(act.since)
                        add_gone(act.gone)
                        continue
            elif not spec.reads:
                add(a)
                add_since(0)
                add_gone(None)
                continue
            w = self.watermark[a]
            for t in spec.reads:
                # each type's newest id looked up once per cycle, not once per agent
                top = newest.get(t)
                if top is None:
                    top = newest[t] = store.max_live_id(t)
                if top >= w:
                    add(a)
                    add_since(w)
                    add_gone(None)
                    break
        return acts

    def _readers_of_one(self, members: list[int], read: list[int]) -> Activations:
        """:meth:`_activations` of agents that each read one type (``read``, the types)
        and negate none: those whose type has a fact at or above their watermark."""
        store = self.store
        newest = {t: store.max_live_id(t) for t in read}
        reads_one, watermark = self.reads_one, self.watermark
        acts = Activations()
        acts.positions = positions = [a for a in members
                                      if newest[reads_one[a]] >= watermark[a]]
        acts.sinces = list(map(watermark.__getitem__, positions))
        acts.gones = [None] * len(positions)
        return acts

    def _after_removals(self, a: int, removals: tuple[int, ...]) -> Activation:
        """The run of ordinary agent ``a`` after a type it negates or aggregates over
        lost facts (``removals``: the counts now, per type of ``negates``): from its
        watermark with the ids gone when only types of its ``unblocks`` lost facts
        (only the matches the removals enable are new), else from scratch."""
        spec = self.program.agents[a]
        seen = self.seen_removals[a]
        if not spec.unblocks or any(
            now != before and t not in spec.unblocks
            for t, now, before in zip(spec.negates, removals, seen, strict=True)
        ):
            return Activation(a, 0)
        w = self.watermark[a]
        after = dict(zip(spec.negates, seen, strict=True))
        return Activation(a, w, tuple(
            self.store.removed(t, after[t], w) for t in spec.unblocks
        ))

    def _effects(self, cycle: int, answer: Any, acts: Activations
                 ) -> list[AgentEffect] | RunOutputs:
        """The executor's answer in merge order, checked: one :class:`AgentEffect` per
        activation. Anything else is the executor's fault (a plugin's, usually), said
        as such — never an internal error of converge. The serial executor's columns
        (:class:`RunOutputs`) stay columns when the cycle needs nothing of the effects
        but their outputs (none over ``max_facts``)."""
        if type(answer) is RunOutputs:
            if (answer.positions == acts.positions
                    and len(answer.outputs) == len(acts.positions)
                    and max(map(len, answer.outputs), default=0)
                    <= self.program.budgets.max_facts):
                return answer
            answer = answer.effects()
        try:
            effects = list(answer)
        except TypeError:
            effects = [answer]
        wrong = ([] if set(map(type, effects)) <= _EFFECT_TYPES  # (at C speed, the usual)
                 else [e for e in effects if not isinstance(e, AgentEffect)])
        if not wrong:
            effects.sort(key=_POSITION)
        # activations come in position order (``_activations`` walks the tier's agents)
        if wrong or list(map(_POSITION, effects)) != acts.positions:
            what = (f"{type(wrong[0]).__name__} {wrong[0]!r:.60}" if wrong
                    else f"effects for positions {[e.position for e in effects]}")
            raise ExecutorError(
                f"the executor {type(self.executor).__name__} answered cycle {cycle} with "
                f"{what}, not one AgentEffect per activation ({len(acts)}); this is a bug "
                "in the executor (a plugin's, if it is not serial, threads or processes)")
        return effects

    def _run_tier(self, tier: int) -> None:
        program, store, merger, meter = self.program, self.store, self.merger, self.meter
        budgets = program.budgets
        members = [i for i, a in enumerate(program.agents) if a.tier == tier]
        # when every agent of the tier reads one type and negates none: those types
        read = (sorted({self.reads_one[a] for a in members})
                if all(self.reads_one[a] >= 0 for a in members) else None)
        ev = self.trace.raw.append
        while True:
            acts = self._activations(members, read)
            if not acts:
                return
            if self.stop is not None and self.stop():
                raise _Stop("interrupted", "stopped on request between two cycles; the "
                            "result holds every fact merged until then")
            if meter.cycles >= budgets.max_cycles:
                raise self._exceeded("max_cycles", f"max_cycles ({budgets.max_cycles}) reached "
                                     f"before tier {tier} converged")
            if budgets.max_agents is not None and len(acts) > budgets.max_agents:
                meter.agents_peak = max(meter.agents_peak, len(acts))
                raise self._exceeded("max_agents", f"{len(acts)} agents activated in one "
                                     f"cycle, max_agents is {budgets.max_agents}")
            if budgets.job_timeout is not None and (
                time.monotonic() - self.started > budgets.job_timeout
            ):
                raise self._exceeded("job_timeout", f"job_timeout ({budgets.job_timeout:g}s) "
                                     "ran out")
            snapshot = store.next_id
            watermark, ran, watched, seen = (self.watermark, self.ran, self.watched,
                                             self.seen_removals)
            removals = store.removals
            for a in acts.positions:
                watermark[a] = snapshot
                ran[a] = True
                types = watched[a]
                seen[a] = tuple(removals[t] for t in types) if types else ()
            meter.cycles += 1
            cycle = meter.cycles
            meter.agents_peak = max(meter.agents_peak, len(acts))
            ev((E_CYCLE_START, cycle, tier, tuple(acts.positions)))
            self._publish()
            # indexes looked up only when input facts are new (or input facts are gone):
            # needed while some agent can still see inputs as new (its first run, or a
            # re-run from scratch), or is handed facts gone (at C speed: once per run)
            store.set_lazy_indexes(min(acts.sinces) < store.n_inputs
                                   or acts.gones.count(None) != len(acts))
            if store.layout.deferred:
                store.reach_tier(tier)  # the indexes only this tier on looks up
            timings = self.timings
            if timings is not None:
                timings.cycle = cycle
                began = perf_counter()
            try:
                answer = self.executor.run_cycle(cycle, merger.take_delta(), acts)
            except (ExecutorError, KeyboardInterrupt):
                raise
            except (Exception, SystemExit) as exc:  # agents' errors are effects: this is
                raise ExecutorError(
                    f"the executor {type(self.executor).__name__} failed in cycle {cycle}: "
                    f"{type(exc).__name__}: {exc}; this is a bug in the executor (a "
                    "plugin's, if it is not serial, threads or processes)") from exc
            effects = self._effects(cycle, answer, acts)
            if timings is not None:
                evaluated = perf_counter()
            if self.crash_at is not None:
                _crash.crash(self.crash_at, "cycle", cycle)
            stepped = False
            if self.stepwise:
                # (columns: no run erred; an effect that erred fired nothing)
                runs = (zip(effects.positions, effects.outputs, strict=True)
                        if isinstance(effects, RunOutputs)
                        else ((e.position, () if e.error is not None else e.outputs)
                              for e in effects))
                for position, outputs in runs:
                    if program.agents[position].one_at_a_time:
                        fired = bool(outputs)
                        self.fired[position] = fired
                        if fired:
                            self._refract(program.agents[position].name, outputs)
                            stepped = True
            # (columns: no run erred or exceeded a budget)
            errors = ([] if isinstance(effects, RunOutputs)
                      else list(filter(None, map(_ERROR, effects))))  # (at C speed)
            if errors:
                meter.timeouts += sum(1 for e in errors if e.startswith("agent_timeout"))
            merger.merge_cycle(cycle, effects)
            if merger.stop is None and not isinstance(effects, RunOutputs):
                self._effect_budgets(effects)
            if merger.stop is None:
                merger.prune(cycle)
            broken = self._invariants(cycle) if merger.stop is None else None
            if timings is not None:
                timings.cycle_done(cycle, evaluated - began, perf_counter() - evaluated)
            if self.crash_at is not None:
                _crash.crash(self.crash_at, "merge", cycle)
            changed = bool(merger.added or merger.removed)
            meter.facts_peak = max(meter.facts_peak, store.live_count)
            meter.tool_calls = self.tools.used
            ev((E_CYCLE_END, cycle, tier, merger.added, merger.removed, store.live_count))
            if changed and store.retractable:  # (asked here for the checkpoint too)
                self.returned_to = (cycle, self.fingerprints.get(store.fingerprint))
            self._commit_cycle(cycle)  # before the spill: its lines come from memory
            self.trace.spill()  # the trace's memory stays bounded: older events to its spool
            del answer, effects  # garbage: no young collection need walk them (3 a run)
            if gc.get_count()[0] >= YOUNG_GARBAGE:
                gc.collect(1)
            if self.progress is not None:
                self.progress(CycleProgress(
                    cycle, tier, len(acts), store.live_count, merger.conflict_count
                ))
            if merger.stop is not None:
                raise self._merge_stop()
            if broken is not None:
                raise _Stop("invariant_violated", broken)
            if self.tools.exhausted:
                raise self._exceeded("max_tool_calls", f"max_tool_calls "
                                     f"({budgets.max_tool_calls}) spent; calls were refused")
            if not changed:
                if stepped:
                    # a firing whose facts all lost their conflicts changed nothing,
                    # but the agent has other matches: the next one fires next cycle
                    continue
                return
            if not store.retractable:
                continue  # a context that only grows never returns to an earlier state
            fp = store.fingerprint
            earlier = self.returned_to[1]  # (the fingerprints are as they were then)
            if earlier is not None:
                loop = self._loop(earlier, cycle)
                raise _Stop("oscillating", f"the context after cycle {cycle} is the context "
                            f"after cycle {earlier}", loop)
            self.fingerprints.add(fp, cycle)

    def go_on(self, decisions: Iterable[Decision] | Decider, *, last: bool = True
              ) -> RunResult:
        """Go on with this job, which ended ``awaiting_approval`` (its last
        :meth:`converge` was called with ``last=False``), given ``decisions``: its status
        event is withdrawn from the trace and the job converges on from where it
        paused (``last`` as :meth:`converge` takes it). Decisions are applied only when
        nothing else can change, so the result and the trace are those of a job given
        the decisions from the start."""
        raw = self.trace.raw
        if self.gates is None or not raw or raw[-1][:2] != (E_STATUS, "awaiting_approval"):
            raise RuntimeError("go_on() continues a job that ended awaiting_approval")
        raw.pop()
        self.gates.add(decisions)
        return self.converge(last=last)

    def _apply_decisions(self) -> bool:
        """At a point where nothing else can change: apply the decisions available on
        pending facts, in id order, in a cycle of their own (approved facts merged
        through the normal merge, policies and invariants; rejected ones dropped).
        Whether any was applied (the tiers then run again). Raises :class:`_Stop` when
        the cycle ends the job, and an InputError for a bad decision."""
        gates = self.gates
        if gates is None or not gates.pending:
            return False
        store, merger, meter = self.store, self.merger, self.meter
        ready = gates.ready(meter.cycles)
        if not ready:
            return False
        if meter.cycles >= self.program.budgets.max_cycles:
            raise self._exceeded("max_cycles", f"max_cycles ({self.program.budgets.max_cycles}"
                                 ") reached before the decisions on pending facts applied")
        meter.cycles += 1
        cycle = meter.cycles
        tier = self.program.tiers[0] if self.program.tiers else 0
        ev = self.trace.raw.append
        ev((E_CYCLE_START, cycle, tier, ()))
        self._publish()
        effects: Sequence[AgentEffect] = gates.decide(cycle, ready)
        if merger.guard is not None:
            # screened here, as merge would, to tell the decisions whose fact an
            # invariant discarded (merge skips what is discarded already)
            effects = merger.guard.screen(cycle, effects)
            gates.discarded(effects)
        merger.merge_cycle(cycle, effects)
        if merger.stop is None:
            merger.prune(cycle)
        broken = self._invariants(cycle) if merger.stop is None else None
        meter.facts_peak = max(meter.facts_peak, store.live_count)
        ev((E_CYCLE_END, cycle, tier, merger.added, merger.removed, store.live_count))
        self._commit_cycle(cycle)
        self.trace.spill()
        if merger.stop is not None:
            raise self._merge_stop()
        if broken is not None:
            raise _Stop("invariant_violated", broken)
        # decisions come from outside the job: a context they bring back is no loop
        self.fingerprints = FingerprintIndex()
        if store.retractable:
            self.fingerprints.add(store.fingerprint, cycle)
        return True

    def _invariants(self, cycle: int) -> str | None:
        """Check the invariants against the context after ``cycle``'s merge and prune
        (the inputs' for 0): what ends the job, or None while they hold."""
        return None if self.guard is None else self.guard.after_cycle(cycle, self.trace)

    def _commit_cycle(self, cycle: int) -> None:
        """Hand the cycle sink (if any) the trace lines of ``cycle``: every event since
        its last commit. When it returns they are stored, so a job that dies later loses
        nothing up to here."""
        # staged with the sink: the same transaction (only what has work is called:
        # most cycles of most programs keep no knowledge and hold no blobs)
        if self.knowledge.rows_waiting:
            self.knowledge.end_cycle(cycle)
        if self.payloads.holds_blobs:
            self.payloads.end_cycle()
        if self.timings_sink is not None:
            self.stage_timings()
        sink = self.cycle_sink
        if self.compact_sink is not None:  # a job store: raw events, no line built
            self._commit_compact(cycle, self.compact_sink)
        elif sink is not None:
            lines = list(self.trace.lines(self.committed))
            if self.checkpoints is not None:  # staged with the sink: the same transaction
                self.checkpoints.stage(cycle, len(lines))
            # a cycle that called a tool is committed before the next starts, so its
            # paid answers are never lost; another may wait for a group's transaction
            if self.group_commit and not any(
                    ev[0] == E_TOOL_CALL for ev in self.trace.tail(self.committed)):
                self.group_commit.cycle_ended(cycle, lines)
            else:
                sink.cycle_committed(cycle, lines)
            self.committed = len(self.trace)  # spilled events included
        if self.relay is not None:  # (before the spill too; a call less a cycle)
            self._publish()

    def _commit_compact(self, cycle: int, sink: CompactSink) -> None:
        """:meth:`_commit_cycle` for a sink that keeps the raw events of each cycle (the
        lines are built when the trace is read). A cycle whose events are all of the
        kinds a raw row keeps is held here (:attr:`_held`: no call to the sink, no
        Python work per event) until the sink's transaction is due, or the trace would
        spill its events, or a cycle of another kind comes: then the cycles held are
        handed over together (:meth:`_hand_over`; the sink encodes the waiting cycles'
        events together at the commit). Any other cycle is handed over as
        :func:`~converge_rules.engine.tracerows.compact` makes it. The trace lines of
        the cycles committed are counted then, for the checkpoint of the cycle the
        transaction ends with."""
        trace = self.trace
        raw = trace.raw
        spilled = trace._spilled
        held = self._held
        start = held[-1][1] if held else self.committed  # where this cycle's events start
        end = spilled + len(raw)  # (len(trace), without the call: this runs each cycle)
        at = start - spilled
        events = raw[at:] if at >= 0 else list(trace.tail(start))
        checkpoints = self.checkpoints
        if (self._handed[0] == self.committed and events
                and self._raw_kinds(map(_KIND, events))):
            # (no tool call among them: the cycle may wait)
            store = self.store
            left = store.left
            held.append((cycle, end, len(store.values), 0 if left is None else len(left)))
            due = sink.raw_due(len(held))
            # a cycle that waits is noted by the checkpointer with the others held,
            # when they are handed over (see Checkpointer.waited), unless it cannot be
            noted = checkpoints is None or cycle >= checkpoints.defers_from
            if not due and noted and len(raw) < SPILL_EVENTS:
                return  # (held)
            # (a due cycle's checkpoint is staged below: not noted)
            self._hand_over(sink, noted and not due)
        else:
            if held:  # (they come first: the sink keeps the cycles in order)
                self._hand_over(sink, True)
            compact = self._compact
            assert compact is not None  # (set with the compact sink)
            made = compact(trace, start, events)
            due = sink.commit_due(made.tools)
            sink.cycle_waits(cycle, made)
            self._handed = (end, self.store.next_id)
            self.committed = end
            noted = False
        if not due:
            if self._raw_waiting and len(raw) >= SPILL_EVENTS:
                # the trace moves its events to its spool after this: the cycles
                # waiting raw are encoded from memory first, and still wait for their
                # group's commit (a commit for each spill cost a transaction and a
                # checkpoint every ~500 short cycles)
                sink.encode_waiting()
                self._raw_waiting = False
            if checkpoints is not None and not noted:  # (lines counted when committed)
                checkpoints.waits(cycle)
            return
        lines = sink.encode_waiting()
        self._raw_waiting = False
        if checkpoints is not None:  # staged with the sink: the same transaction
            checkpoints.lines += sum(lines) - lines[-1]
            checkpoints.stage(cycle, lines[-1])
        sink.commit_waiting()

    def _hand_over(self, sink: CompactSink, noted: bool) -> None:
        """Hand the compact sink the raw cycles held (:attr:`_held`), which wait there
        for the commit, and have the checkpointer note them (all of them, or with
        ``noted`` False all but the last: its checkpoint is staged, or noted apart)."""
        held = self._held
        if not held:
            return
        self._held = []  # (first: a second Ctrl-C in here never hands them over twice)
        _, end, next_id, _ = held[-1]
        sink.cycles_raw(self.trace, held, self.committed, self._handed[1])
        if self.checkpoints is not None:
            self.checkpoints.waited(held if noted else held[:-1])
        self._handed = (end, next_id)
        self.committed = end
        self._raw_waiting = True

    def release_held(self) -> None:
        """Hand the sink the raw cycles held, if any: the job ends (or raised: the sink
        then commits the cycles that ended)."""
        if self._held and self.compact_sink is not None:
            self._hand_over(self.compact_sink, True)

    def end_lines(self, sink: Any, result: RunResult) -> None:
        """Hand ``sink`` the events after the last committed cycle (the budget and
        status events): as raw events to a :class:`CompactSink`, else as lines."""
        from converge_rules.store.base import CompactSink

        if isinstance(sink, CompactSink):
            self.release_held()
            lines = sink.encode_waiting()
            if self.checkpoints is not None:
                # the last cycle's, if it waits: committed now, its lines counted
                self.checkpoints.counted(sum(lines), lines[-1] if lines else 0)
                self.checkpoints.flush()
            from converge_rules.engine.tracerows import compact

            sink.write_compact(compact(result.trace, self.committed))
        else:
            sink.write_lines(result.trace.lines(self.committed))

    def stage_timings(self) -> None:
        """Stage the timings recorded since the last call with the sink that keeps
        them (if any), for the transaction of its next commit."""
        if self.timings_sink is not None and self.timings is not None:
            records = self.timings.take()
            if records:
                self.timings_sink.stage_timings(records)

    def _publish(self) -> None:
        """Hand the observer's relay (if any) the events recorded since the last call."""
        relay = self.relay
        if relay is not None:
            relay.publish(self.trace.tail(relay.seen))
            relay.seen = len(self.trace)

    def run_to_end(self) -> RunResult:
        """:meth:`run`, then the observer's last events (waiting for it to take them);
        when the job raises, the relay is closed without waiting (a second Ctrl-C
        stops at once)."""
        try:
            result = self.run()
        except BaseException:
            self.end_events(wait=False)
            raise
        self.end_events()
        return result

    def end_events(self, *, wait: bool = True) -> None:
        """The job has ended: publish its last events (the status) and close the relay,
        waiting for the observer to take them unless ``wait`` is False (the job raised:
        a second Ctrl-C stops at once)."""
        if self.relay is not None:
            self._publish()
            self.relay.close(wait=wait)

    def _refract(self, agent: str, outputs: Sequence[Output]) -> None:
        """Note that the ``one at a time`` agent ``agent`` fired the match whose
        ``outputs`` it gave (they share its facts), so it never fires it again; in the
        delta too, for the executors' replicas."""
        support = tuple(outputs[0][4])
        self.store.fired.setdefault(agent, set()).add(support)
        self.merger.note((D_FIRED, agent, support))

    def _effect_budgets(self, effects: list[AgentEffect]) -> None:
        """Stop the job (through the merger, as the merge's own budget stops do) at the
        first effect, in merge order, that exceeded a budget: one the run reported
        (:attr:`AgentEffect.budget`), or more than ``max_facts`` outputs from an agent
        that does not count its own (generated agents stop within one innermost loop
        of the limit; this catches the rest)."""
        max_facts = self.program.budgets.max_facts
        if not any(map(_BUDGET, effects)) and max(
            map(len, map(_OUTPUTS, effects)), default=0
        ) <= max_facts:
            return  # (the common case, checked at C speed)
        for e in effects:
            if e.budget is None and len(e.outputs) <= max_facts:
                continue
            name = self.program.agents[e.position].name
            if e.budget is None:
                self.merger.exceed("max_facts", f"agent {name!r} built "
                                   f"{len(e.outputs):,} outputs in one run (max_facts "
                                   f"is {max_facts:,}; duplicates count)")
            elif e.budget == "job_timeout":
                self.merger.exceed("job_timeout", f"job_timeout "
                                   f"({self.program.budgets.job_timeout or 0:g}s) ran out "
                                   f"in cycle {self.meter.cycles} while agent {name!r} "
                                   "ran; the facts merged until then are the partial results")
            else:
                self.merger.exceed(e.budget, f"agent {name!r} {e.error}")
            return

    # --------------------------------------------------------------- endings

    def _merge_stop(self) -> _Stop:
        assert self.merger.stop is not None
        status, detail = self.merger.stop
        if self.merger.stop_budget is not None:
            return self._exceeded(self.merger.stop_budget, detail)
        return _Stop("conflict" if status == "conflict" else "budget_exceeded", detail)

    def _exceeded(self, name: str, detail: str) -> _Stop:
        meter = self.meter
        meter.exceeded = name
        meter.tool_calls = self.tools.used
        self.trace.raw.append(
            (E_BUDGET, name, getattr(self.program.budgets, name, None), meter.used(name))
        )
        return _Stop("budget_exceeded", detail)

    def _goals(self) -> tuple[Status, str, list[dict[str, Any]]]:
        """The status by the goals. Raises :class:`_Stop` (``job_timeout``) when they
        are still being evaluated at the job's deadline (or, when that had passed as
        they began, :data:`GOALS_GRACE` seconds later): a goal calling a plugin function
        that never returns must not hang the job."""
        job_timeout = self.program.budgets.job_timeout
        if job_timeout is None or not self.program.requires:
            return self._evaluate_goals()
        left = self.started + job_timeout - time.monotonic()
        try:
            with cut_at(max(left, GOALS_GRACE)):
                return self._evaluate_goals()
        except JobDeadline:
            raise self._exceeded("job_timeout", f"job_timeout ({job_timeout:g}s) ran out "
                                 "while the goals were evaluated") from None

    def _evaluate_goals(self) -> tuple[Status, str, list[dict[str, Any]]]:
        unmet: list[dict[str, Any]] = []
        for req in self.program.requires:
            try:
                held = bool(req.fn(self.store.as_view()))
            except MemoryError:
                raise
            except Exception as exc:  # a goal that cannot be evaluated is not met
                unmet.append({"goal": req.text, "error": f"{type(exc).__name__}: {exc}"})
                continue
            if not held:
                unmet.append({"goal": req.text})
        if unmet:
            names = "; ".join(u["goal"] for u in unmet)
            return "unmet_goal", f"goal not met: {names}", unmet
        return "converged", "every tier reached a fixpoint and every goal holds", unmet

    def _loop(self, earlier: int, cycle: int) -> dict[str, Any]:
        """The facts that came and went between two equal states."""
        store = self.store
        fids: dict[int, None] = {}
        for fe in self.trace.fact_events():
            if fe[0] == E_FACT_ADDED and earlier < fe[3] <= cycle:
                fids[fe[1]] = None
        for ev in map(removal_of, self.trace.all_raw()):  # stored lines of a resumed job too
            kind = ev[0]
            if kind in (E_REPLACED, E_RETRACTED, E_PRUNED, E_INTENT_CLOSED) and (
                earlier < ev[1] <= cycle
            ):
                fids[ev[2]] = None
        flips = {
            (self.program.types[store.type_of[f]].name, store.values[f]) for f in fids
        }
        facts = [
            {"type": name, "fields": self.trace.fields_of(self.program.type_ids[name], vals)}
            for name, vals in sorted(flips, key=lambda p: (p[0], fact_sort_key(p[1])))
        ]
        return {"from_cycle": earlier, "to_cycle": cycle, "facts": facts}

    def _finish(
        self, status: Status, detail: str, unmet: list[dict[str, Any]],
        loop: dict[str, Any] | None = None,
    ) -> RunResult:
        store = self.store
        for spec in self.program.types:
            if not spec.intent:
                continue
            for vals in sorted(
                (store.values[f] for f in store.live[spec.id]), key=fact_sort_key
            ):
                unmet.append({
                    "intent": spec.name,
                    "fields": {n: jsonable(v) for n, v in zip(spec.field_names, vals,
                                                              strict=True)},
                })
        self.meter.tool_calls = self.tools.used
        self.trace.raw.append((E_STATUS, status, detail))
        # conflicts are built on first use, from the trace's conflict events
        result = RunResult(
            program=self.program, store=store, status=status, detail=detail,
            cycles=self.meter.cycles, conflicts=self.trace.conflicts,
            conflict_count=self.merger.conflict_count, unmet=unmet,
            budget=self.meter.report(), trace=self.trace, loop=loop,
            invariants=None if self.guard is None else self.guard.violations,
        )
        if self.gates is not None:
            result.pending = self.gates.listing()
            result.decided = list(self.gates.decided)
            result.unused_decisions = self.gates.unused()
        result.knowledge = self.knowledge
        result.payloads = self.payloads
        return result


def job_clock(now: datetime | Clock | None) -> datetime | None:
    """The job's time for ``run(now=…)``: in UTC, to the microsecond; the clock at
    this call for :data:`CLOCK`. A datetime without a time zone is a ``ValueError``."""
    if isinstance(now, Clock):
        return datetime.now(UTC)
    if now is None:
        return None
    if not isinstance(now, datetime):
        raise TypeError(f"now must be a datetime, None or CLOCK, not {type(now).__name__}")
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now={now.isoformat()} has no time zone: give an aware datetime "
                         "(e.g. datetime(…, tzinfo=UTC))")
    return now.astimezone(UTC)


def _is_cycle_sink(trace: object) -> TypeGuard[CycleSink]:
    """Whether ``trace`` is a :class:`~converge_rules.store.base.CycleSink` (a job
    store's). The store's protocols are imported here, for a run given a trace, not
    with the engine."""
    from converge_rules.store.base import CycleSink

    return isinstance(trace, CycleSink)


def run(
    program: Program,
    facts: InputFacts | Iterable[tuple[str, Mapping[str, Any]]],
    *,
    executor: Executor | None = None,
    tools: Mapping[str, ToolFn] | None = None,
    trace: TraceSink | str | PathLike[str] | None = None,
    progress: ProgressFn | None = None,
    stop: Callable[[], bool] | None = None,
    now: datetime | Clock | None = CLOCK,
    observer: Observer | None = None,
    recorded: Mapping[str, tuple[dict[str, Any] | None, str | None]] | None = None,
    summarize: Summarize | None = None,
    timings: Timings | None = None,
    decisions: Iterable[Decision] | Decider | None = None,
) -> RunResult:
    """Run a compiled program on input facts to convergence (or to the status that
    ends it). ``facts`` are ``(type name, fields)`` pairs or :class:`InputFacts`
    already validated; invalid input raises :class:`~converge_rules.errors.InputError`
    before anything runs. ``executor`` is an executor instance (a new
    :class:`SerialExecutor` when None; ``Registries.executor(name, workers)`` builds a
    registered one); the job closes it. ``trace`` is a trace sink (``Registries.
    trace_sink(name, location)``) that receives the whole trace when the job ends, or a
    path, written as JSON Lines; the job closes it. ``stop`` is asked before every
    cycle: when it answers True the job ends with status ``interrupted`` and the facts
    merged so far (a cycle is never cut in half). ``now`` is the job's time, what
    ``now()`` and ``today()`` give: a datetime with a time zone (converted to UTC; a
    naive one is a ``ValueError``), :data:`CLOCK` (the default) for the clock at the
    start, read once, or None for no time (``now()`` then fails the agent that calls
    it). A program that reads the time records it first in the trace. The result is a
    pure function of the program, the facts, the tool answers and ``now``.

    A trace sink with ``cycle_committed`` (a
    :class:`~converge_rules.store.base.CycleSink`: a job of a SQLite store) is handed
    each cycle's lines as the cycle ends, then the last lines when the job ends.

    ``observer`` is called with each live event (a dict, as its trace line reads:
    ``cycle_start``, ``effect_merged``, ``conflict``, ``tool_call``…, the ``status``
    last) while the job runs, in trace order, on a thread of its own; it never
    changes the result, however slow or failing (:mod:`converge_rules.engine.events`).
    ``recorded`` are tool answers already paid for, by memo key (what resuming a
    stored job passes, see :mod:`converge_rules.store.resume`): a call with such a key
    is answered from there, never made again.

    ``prune … into knowledge`` keeps the facts it moves in the job's knowledge
    (:mod:`~converge_rules.engine.knowledge`): in the sink when it keeps knowledge
    (``stage_knowledge``), else in memory; ``summarize`` (the plugins'
    ``converge_summarize``) folds each cycle's moved facts into summary facts there;
    ``result.knowledge`` reads it.

    ``timings`` (a :class:`~converge_rules.engine.timings.Timings`) collects the wall
    time of each tool call, agent run and cycle on the side — never in the trace or
    the result, which stay the same with or without it; a sink with ``stage_timings``
    (a job store's) writes them in each cycle's transaction.

    ``decisions`` decide the facts approval gates hold (``approve TYPE when …``): a
    list of :class:`~converge_rules.engine.gates.Decision` (by pending id), or a
    function from a pending fact (a ``result.pending`` entry) to a Decision or None.
    They are applied only when nothing else can change, so giving them up front or
    after a pause gives the same job. With facts still pending and no decision left,
    the job ends with status ``awaiting_approval``; ``result.pending`` lists them,
    ``result.decided`` the decisions applied, ``result.unused_decisions`` the ids of
    given decisions never applied."""
    job_time = job_clock(now)
    inputs = facts if isinstance(facts, InputFacts) else validate_pairs(program, facts)
    exe = SerialExecutor() if executor is None else executor
    if trace is not None and _is_cycle_sink(trace):
        cycles = trace
        with cycles, paused_gc():  # an exception marks the job aborted in the sink
            job = _Job(program, inputs, exe, tools, progress, stop, job_time, cycles,
                       observer, recorded, summarize=summarize, timings=timings,
                       decisions=decisions)
            del inputs
            try:
                result = job.run_to_end()
            except BaseException:
                job.release_held()  # (the sink commits the cycles that ended)
                raise
            job.stage_timings()  # what came after the last cycle's commit
            job.end_lines(cycles, result)
        result.trace.written = True
        return result
    # The arena is long-lived and acyclic, yet automatic collections would rescan it
    # again and again (a third of the run time on large jobs). During the run the
    # collector only sweeps the young generations, once per cycle: what a cycle left
    # as cyclic garbage is freed, the arena is not traversed.
    with paused_gc():
        job = _Job(program, inputs, exe, tools, progress, stop, job_time,
                   observer=observer, recorded=recorded, summarize=summarize,
                   timings=timings, decisions=decisions)
        del inputs
        result = job.run_to_end()
    if trace is not None:
        sink: TraceSink = (JsonLinesTraceSink(trace) if isinstance(trace, str | PathLike)
                           else trace)
        with sink:
            sink.write_lines(result.trace.lines())
        result.trace.written = True
    return result
