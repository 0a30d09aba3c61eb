"""The public API: the one place (with the CLI) that stitches the pipeline together.

    import converge_rules
    ruleset = converge_rules.load("rulesets/pricing/pricing.cvg")
    result = converge_rules.run(ruleset, [("Cost", {"sku": "A1", "amount": 10.0})])
    result.status, result.facts("Price")

Shaped like the ``json`` module: ``load`` takes a path, ``loads`` takes text. A
:class:`Ruleset` is checked and compiled once and can be run any number of times.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from converge_rules.datetypes import datetime
from converge_rules.errors import CheckError, ConvergeError, ToolError
from converge_rules.program import CLOCK, Clock
from converge_rules.records import field, record

if TYPE_CHECKING:
    from converge_rules.engine.executors import Executor
    from converge_rules.engine.gates import Decider, Decision
    from converge_rules.engine.inputs import InputFacts
    from converge_rules.engine.knowledge import Summarize
    from converge_rules.engine.result import RunResult
    from converge_rules.engine.runner import CycleProgress
    from converge_rules.engine.session import Session as Session  # re-exported
    from converge_rules.engine.timings import Timings
    from converge_rules.language.checks.checked import CheckedRuleset
    from converge_rules.language.diagnostics.core import Diagnostic
    from converge_rules.plugins.registries import Registries
    from converge_rules.program import Program
    from converge_rules.store.approvals import PendingFact, StoredDecision
    from converge_rules.store.base import JobInfo, JobStore, TraceSink

ToolCallable = Callable[[dict[str, Any]], Any]
"""A tool as the engine calls it: arguments dict → result dict (or an awaitable)."""


@record
class Ruleset:
    """A loaded ruleset: checked and compiled, ready to run any number of times.

    ``checked`` keeps the syntax tree and every warning; ``program`` is what the engine
    runs, with the plugins' functions, resolvers and chosen pruners bound in;
    ``tools`` maps each tool the ruleset ``uses`` to the validated callable a plugin
    provides (a tool no plugin provides is absent: ``run`` refuses to start unless
    ``run(..., tools=...)`` supplies it); ``registries`` are the plugins it was
    checked and compiled against, which ``run`` takes its executors and stores from;
    ``files`` are the resolved paths of every file the ruleset names (the entry file,
    its imports and its tests' ``cases`` files); ``pruners`` the plugin pruners it was
    loaded with.
    """

    path: str
    checked: CheckedRuleset
    program: Program
    tools: Mapping[str, ToolCallable] = field(default_factory=dict)
    registries: Registries | None = field(default=None, compare=False, repr=False)
    files: tuple[Path, ...] = field(default=(), compare=False, repr=False)
    pruners: tuple[str, ...] = ()
    #: a ruleset whose program came from the program cache builds ``checked`` by
    #: parsing and checking on first use, with this (then None); see ``__getattr__``
    _recheck: Callable[[], CheckedRuleset] | None = field(default=None, compare=False,
                                                          repr=False)

    if not TYPE_CHECKING:  # for mypy, ``checked`` is the field it always is
        def __getattr__(self, name: str) -> Any:
            # Reached only for a slot that is not set: the ``checked`` of a ruleset
            # loaded from the program cache, built now as loading would have built it.
            if name != "checked":
                raise AttributeError(name)
            recheck = object.__getattribute__(self, "_recheck")
            if recheck is None:
                raise AttributeError(name)
            checked = recheck()
            object.__setattr__(self, "checked", checked)
            object.__setattr__(self, "_recheck", None)
            return checked

    @property
    def name(self) -> str:
        """The ruleset's name (its first line, ``ruleset NAME``)."""
        return self.program.name

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        """The checker's diagnostics that are not errors (warnings and notes)."""
        return tuple(d for d in self.checked.diagnostics if not d.is_error)

    @property
    def fact_types(self) -> tuple[str, ...]:
        """The declared fact types (intents excluded), in declaration order."""
        return tuple(t.name for t in self.program.types if not t.intent)


def load(
    path: str | os.PathLike[str],
    *,
    plugins: bool | Registries = True,
    pruners: Iterable[str] = (),
    allow_paths: Iterable[str | os.PathLike[str]] = (),
) -> Ruleset:
    """Parse, check and compile the ruleset at ``path`` (and the files it imports).

    Raises :class:`~converge_rules.errors.CheckError` holding every error diagnostic
    (syntax errors included) when the ruleset has errors. With ``plugins=True`` the
    installed plugins' tools, functions, resolvers, executors and stores are known to
    the checker, the compiler and ``run`` (a plugin that fails to load raises
    :class:`~converge_rules.errors.PluginError`); ``plugins=False`` uses the built-ins
    only; a :class:`~converge_rules.plugins.Registries` (from
    ``converge_rules.plugins.load_registries``) uses exactly what it holds.
    ``pruners`` names registered plugin pruners to apply after each merge.

    Imports and the tests' ``cases`` files are read only from below the folder of
    ``path`` and from the folders in ``allow_paths`` (a path outside them is an error
    diagnostic, CVG605), and only when they are regular files within the size limits
    (10 MiB a ruleset file, 100 MiB a ``cases`` file).
    """
    from converge_rules._gc import paused_gc

    # no automatic collection while loading (restored after): it makes modules, classes
    # and a program, no garbage, and collecting found none (about 5% of a load's CPU)
    with paused_gc():
        return _build(Path(path), None, str(path), plugins, _names(pruners),
                      _folders(allow_paths))


def loads(
    text: str,
    *,
    path: str = "<string>",
    plugins: bool | Registries = True,
    pruners: Iterable[str] = (),
    allow_paths: Iterable[str | os.PathLike[str]] = (),
) -> Ruleset:
    """Like :func:`load`, for ruleset text; ``path`` is the name diagnostics use.
    ``import`` lines resolve relative to the directory of ``path``, and are confined
    to it and to ``allow_paths``."""
    if not isinstance(text, str):
        hint = " (decode bytes first: data.decode('utf-8'))" if isinstance(
            text, bytes | bytearray) else ""
        raise TypeError(f"loads() takes the ruleset text as str, got "
                        f"{type(text).__name__}{hint}; load() takes a path")
    from converge_rules._gc import paused_gc

    with paused_gc():  # as in load
        return _build(Path(path), text, path, plugins, _names(pruners), _folders(allow_paths))


def run(
    ruleset: Ruleset,
    facts: InputFacts | Iterable[tuple[str, Mapping[str, Any]]] = (),
    *,
    executor: str | Executor | None = None,
    workers: int | None = None,
    tools: Mapping[str, ToolCallable] | None = None,
    trace: str | os.PathLike[str] | TraceSink | None = None,
    trace_store: str | None = None,
    store: str | os.PathLike[str] | JobStore | None = None,
    progress: Callable[[CycleProgress], None] | None = None,
    stop: Callable[[], bool] | None = None,
    now: datetime | Clock | None = CLOCK,
    observer: Callable[[dict[str, Any]], None] | None = None,
    plugin_modules: Sequence[str] = (),
    timings: Timings | None = None,
    decisions: Iterable[Decision] | Decider | None = None,
) -> RunResult:
    """Run ``ruleset`` on input ``facts`` to convergence, or to the status that ends it.

    ``facts`` are ``(type name, fields)`` pairs, or the :class:`InputFacts` that
    :func:`read_facts` returns. Always returns a :class:`RunResult` with exactly one
    status; budgets, conflicts and unmet goals are statuses, not exceptions. Bad input
    facts raise :class:`~converge_rules.errors.InputError` before anything runs.

    ``executor`` names an executor registered in the ruleset's registries
    (``serial``, ``threads``, ``processes``, or one a plugin adds), which ``workers``
    sizes, or is an executor instance; None runs the agents one after another (the
    engine's own serial executor). ``tools`` adds or replaces tools by name (mocks in
    tests); ``trace`` is where the trace goes, written by the registered store
    ``trace_store`` (None: a JSON Lines file), or a trace sink; ``store`` keeps the job
    in a job store instead — a location (``run.db``, ``sqlite:///run.db``, a plugin's
    URL), opened and closed here, or an open :class:`~converge_rules.store.JobStore` —
    each cycle's trace committed as the cycle ends; ``progress`` is called after every cycle
    with a :class:`~converge_rules.engine.CycleProgress`; ``stop`` is asked before every
    cycle, and True ends the job with status ``interrupted`` and its partial results
    (``converge run`` answers Ctrl-C and SIGTERM so). ``now`` is the job's time that
    ``now()``/``today()`` read (an aware datetime; by default the clock when the job
    starts; None: no time, and ``now()`` fails the agent calling it). An unknown
    executor or store is a :class:`~converge_rules.errors.ConvergeError` naming the
    known ones. ``observer`` is called with each live event of the job (a dict, as
    its trace line reads: ``cycle_start``, ``effect_merged``, ``conflict``,
    ``tool_call``, ``cycle_end``…, ``status`` last) while it runs, in trace order, on
    a thread of its own; a slow or failing observer never changes the result
    (:func:`stream` gives the events as an iterator instead). A job kept in a store
    that can resume jobs (SQLite) also stores its validated inputs, its time and the
    digest of the ruleset, and ``plugin_modules`` (the ``--plugin`` modules it runs
    with), for :func:`resume`. ``timings`` (a :class:`~converge_rules.engine.timings.
    Timings`) collects the wall time of every tool call, agent run and cycle beside
    the trace, never in it; a store keeps them in its ``timings`` table, in each
    cycle's transaction (``converge report`` shows them).

    ``decisions`` decide the facts the ruleset's approval gates hold (a list of
    :class:`~converge_rules.engine.gates.Decision`, or a function from a pending fact to
    a Decision or None; see :func:`converge_rules.engine.run`): without a decision for
    every pending fact the job ends with status ``awaiting_approval``, listing them in
    ``result.pending``.
    """
    from converge_rules._gc import paused_gc

    with paused_gc():  # the engine's modules, imported on the first run: as in load
        from converge_rules.engine import run as engine_run

    if not isinstance(ruleset, Ruleset):
        raise TypeError(f"run() takes a Ruleset (from converge_rules.load or loads), got "
                        f"{type(ruleset).__name__} {ruleset!r:.60}")
    _check_run_arguments(executor, workers, trace, trace_store, stop, progress=progress,
                         observer=observer, timings=timings, tools=tools)
    if now is not None and not isinstance(now, Clock):
        from converge_rules.engine.runner import job_clock

        job_clock(now)  # a wrong one is refused before a store or a trace file is opened
    if store is not None and not (isinstance(store, str | os.PathLike)
                                  or callable(getattr(store, "new_job", None))):
        raise TypeError(f"store takes a location (run.db, sqlite:///run.db) or an open "
                        f"job store, got {type(store).__name__}")
    if trace_store is not None and trace is not None and not isinstance(
            trace, str | os.PathLike):
        raise ValueError("trace_store says how to write the trace to a location; a trace "
                         "sink given as trace= writes it itself")
    if store is not None and trace is not None:
        raise ValueError("give trace= or store=, not both: a store keeps the trace (export "
                         "it with `converge trace export`)")
    merged: dict[str, ToolCallable] = dict(ruleset.tools)
    if tools:
        merged.update(tools)
    registries = ruleset.registries or _registries(False)
    sink: TraceSink | Path | None = None
    if isinstance(trace, str | os.PathLike):
        sink = Path(trace) if trace_store is None else registries.trace_sink(trace_store,
                                                                             Path(trace))
    elif trace is not None:
        sink = trace
    exe = registries.executor(executor, workers) if isinstance(executor, str) else executor
    require_tools(ruleset, merged)  # after the usage errors; executors start in the run
    # the plugins' converge_summarize, when some plugin implements it
    summarize = registries.summarizers or None
    if store is None:
        return engine_run(ruleset.program, facts, executor=exe, tools=merged, trace=sink,
                          progress=progress, stop=stop, now=now, observer=observer,
                          summarize=summarize, timings=timings, decisions=decisions)
    if isinstance(store, str | os.PathLike):
        from converge_rules.engine.inputs import InputFacts, validate_pairs

        if not isinstance(facts, InputFacts):  # refused before the store file is created
            facts = validate_pairs(ruleset.program, facts)
        with registries.job_store(store) as opened:
            return _run_stored(ruleset, facts, opened, exe, merged, progress, stop, now,
                               plugin_modules, observer, summarize, timings,
                               decisions=decisions)
    return _run_stored(ruleset, facts, store, exe, merged, progress, stop, now,
                       plugin_modules, observer, summarize, timings, decisions=decisions)


def _run_stored(ruleset: Ruleset, facts: InputFacts | Iterable[tuple[str, Mapping[str, Any]]],
                store: JobStore, executor: Executor | None,
                tools: Mapping[str, ToolCallable], progress: Callable[[CycleProgress], None]
                | None, stop: Callable[[], bool] | None, now: datetime | Clock | None,
                plugin_modules: Sequence[str],
                observer: Callable[[dict[str, Any]], None] | None,
                summarize: Summarize | None = None,
                timings: Timings | None = None, *,
                decisions: Iterable[Decision] | Decider | None = None) -> RunResult:
    """A run kept in ``store``; with what resuming it needs when the store can."""
    from converge_rules.engine import run as engine_run
    from converge_rules.engine.inputs import InputFacts, validate_pairs
    from converge_rules.engine.runner import job_clock
    from converge_rules.store.base import ResumableStore

    if not isinstance(store, ResumableStore):
        return engine_run(ruleset.program, facts, executor=executor, tools=tools,
                          trace=store.new_job(ruleset.name), progress=progress, stop=stop,
                          now=now, observer=observer, summarize=summarize, timings=timings,
                          decisions=decisions)
    from converge_rules.store.resume import job_spec

    job_time = job_clock(now)  # read once: the job stores the time it runs with
    inputs = facts if isinstance(facts, InputFacts) else validate_pairs(ruleset.program,
                                                                         facts)
    spec = job_spec(ruleset, inputs, job_time, plugin_modules)
    return engine_run(ruleset.program, inputs, executor=executor, tools=tools,
                      trace=store.new_job(ruleset.name, spec), progress=progress,
                      stop=stop, now=job_time, observer=observer, summarize=summarize,
                      timings=timings, decisions=decisions)


def stream(
    ruleset: Ruleset,
    facts: InputFacts | Iterable[tuple[str, Mapping[str, Any]]] = (),
    **options: Any,
) -> JobEvents:
    """Start ``ruleset`` on ``facts`` (the options are :func:`run`'s, but
    ``observer``) on a thread and return its live events as an iterator::

        events = converge_rules.api.stream(ruleset, facts)
        for event in events:          # {"event": "cycle_start", "cycle": 1, …}
            ...
        events.result                 # the RunResult, once the events are exhausted

    The job never waits for the reader: events it cannot queue are dropped and
    announced by an ``events_dropped`` event. What :func:`run` raises (bad input, an
    unknown executor) is raised by the iteration."""
    if "observer" in options:
        raise TypeError("stream() gives the events itself; run(observer=…) takes a "
                        "callback")
    return JobEvents(lambda observe: run(ruleset, facts, observer=observe, **options))


class JobEvents:
    """The live events of a job running on a thread (see :func:`stream`)."""

    _DONE = object()

    def __init__(self, start: Callable[[Callable[[dict[str, Any]], None]], RunResult]) -> None:
        import queue
        import threading

        from converge_rules.engine.events import QUEUE_EVENTS

        self._queue: queue.Queue[Any] = queue.Queue(QUEUE_EVENTS)
        self._full = queue.Full
        self._abandoned = threading.Event()
        self._result: RunResult | None = None
        self._error: BaseException | None = None
        self._done = False
        self._thread = threading.Thread(target=self._job, args=(start,),
                                        name="converge-stream", daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> None:
        # blocks the relay's thread (never the job's) until the reader takes it
        while not self._abandoned.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except self._full:
                continue

    def _job(self, start: Callable[[Callable[[dict[str, Any]], None]], RunResult]) -> None:
        try:
            self._result = start(self._put)
        except BaseException as exc:  # handed to the reader
            self._error = exc
        finally:
            self._put(self._DONE)

    def __iter__(self) -> JobEvents:
        return self

    def __next__(self) -> dict[str, Any]:
        if self._done:
            raise StopIteration
        item = self._queue.get()
        if item is self._DONE:
            self._done = True
            self._thread.join()
            if self._error is not None:
                raise self._error
            raise StopIteration
        event: dict[str, Any] = item
        return event

    def close(self) -> None:
        """Stop reading: the job runs to its end without its events; :attr:`result`
        waits for it."""
        self._abandoned.set()

    @property
    def result(self) -> RunResult:
        """The job's result, once every event was read, or after :meth:`close` (then
        this waits for the job to end). What the job raised is raised here. Before
        either, a RuntimeError: the job is still running."""
        if self._abandoned.is_set() and not self._done:
            self._thread.join()
            self._done = True
            if self._error is not None:
                raise self._error
        if not self._done or self._result is None:
            raise RuntimeError("the job's result is there once its events are read to the "
                               "end (iterate over them first) or after close()")
        return self._result


def resume(
    store: str | os.PathLike[str] | JobStore,
    job: int | None = None,
    *,
    ruleset: Ruleset | None = None,
    plugins: bool | Registries = True,
    executor: str | Executor | None = None,
    workers: int | None = None,
    tools: Mapping[str, ToolCallable] | None = None,
    progress: Callable[[CycleProgress], None] | None = None,
    stop: Callable[[], bool] | None = None,
    observer: Callable[[dict[str, Any]], None] | None = None,
    timings: Timings | None = None,
    facts: InputFacts | Iterable[tuple[str, Mapping[str, Any]]] | None = None,
) -> RunResult:
    """Continue job ``job`` of ``store`` (None: its newest resumable job) to the result
    and trace an uninterrupted run would have given, byte for byte: the job's stored
    inputs and time are reused, and every tool answer its committed trace recorded is
    reused, never asked again. A job can be resumed when its process died (status
    ``running``), it was ``interrupted`` or ``aborted``, it ran out of ``job_timeout``
    (which counts again from the resume), or it is ``awaiting_approval`` and a fact it
    waits on has a decision recorded since it paused (:func:`approve`, :func:`reject`):
    every decision recorded on the job is handed to the engine, which applies each at
    the pause it was taken at; facts still undecided stay pending, and the job pauses
    again (``awaiting_approval``) when nothing else can change.

    ``ruleset`` is the ruleset the job ran (None: loaded again from the path the job
    stored, with ``plugins`` and the job's ``--plugin`` modules); a ruleset whose
    digest differs from the job's is refused, and so is a re-execution whose trace
    differs from the stored one. Errors are :class:`~converge_rules.errors.StoreError`
    saying why and what to do (a converged job, a job running in a live process…).
    The other arguments are :func:`run`'s.

    ``facts``: more input facts for the job (``(type name, fields)`` pairs or
    :class:`~converge_rules.engine.inputs.InputFacts` read by :func:`read_facts`). The
    job is then a session that takes more input: it is re-executed to its end (a job at
    its fixpoint, ``converged`` or ``unmet_goal``, may be resumed so too), the facts
    are merged as a cycle of their own, recorded with it in the store, and the job
    re-converges incrementally — its facts then equal one run's over all the facts (for
    the rulesets of the session contract, see ``Session``). Invalid facts raise
    :class:`~converge_rules.errors.InputError` before the store is written. See
    :mod:`converge_rules.store.extend`."""
    from converge_rules.store import resume as resuming

    _check_run_arguments(executor, workers, None, None, stop, progress=progress,
                         observer=observer, timings=timings, tools=tools)
    _check_job(job)
    if isinstance(store, str | os.PathLike):
        registries = ruleset.registries if ruleset is not None and ruleset.registries \
            else _registries(plugins)
        with registries.job_store(store) as opened:
            return resume(opened, job, ruleset=ruleset, plugins=plugins, executor=executor,
                          workers=workers, tools=tools, progress=progress, stop=stop,
                          observer=observer, timings=timings, facts=facts)
    found = resuming.find(store, job, more=facts is not None)
    if ruleset is None:
        if not found.ruleset_path or not Path(found.ruleset_path).is_file():
            from converge_rules.errors import StoreError

            where = found.ruleset_path or "(given as text)"
            raise StoreError(f"job {found.job.id} ran the ruleset {where}, which is not "
                             "there now; give the ruleset (converge run RULESET --resume "
                             "STORE, or resume(ruleset=…))")
        if plugins is True and found.plugins:
            from converge_rules.plugins import load_registries

            plugins = load_registries(found.plugins)
        ruleset = load(found.ruleset_path, plugins=plugins, pruners=found.pruners)
    registries = ruleset.registries or _registries(False)
    exe = registries.executor(executor, workers) if isinstance(executor, str) else executor
    merged: dict[str, ToolCallable] = dict(ruleset.tools)
    if tools:
        merged.update(tools)
    require_tools(ruleset, merged)
    if facts is not None:
        from converge_rules.engine.inputs import InputFacts, validate_pairs
        from converge_rules.store.extend import extend

        resuming.check_ruleset(found, ruleset)  # another ruleset's job: said so first
        more = facts if isinstance(facts, InputFacts) else validate_pairs(
            ruleset.program, facts)
        return extend(found, ruleset, more, executor=exe, tools=merged,
                      progress=progress, stop=stop, observer=observer,
                      summarize=registries.summarizers or None, timings=timings)
    return cast("RunResult", resuming.resume(found, ruleset, executor=exe, tools=merged,
                                             progress=progress, stop=stop,
                                             observer=observer,
                                             summarize=registries.summarizers or None,
                                             timings=timings))


def pending(store: str | os.PathLike[str] | JobStore, job: int | None = None, *,
            plugins: bool | Registries = True) -> list[PendingFact]:
    """The facts job ``job`` of ``store`` (None: its newest job awaiting approval) waits
    on: each fact a gate holds and no decision in its trace decided, in id order,
    with its id, gate, fields, agent, cycle and derivation in short. Decisions recorded
    since the job stopped (:func:`approve`, :func:`reject`) are not subtracted: see
    :func:`decisions`. A :class:`~converge_rules.errors.StoreError` for a store that
    keeps no approvals or an unknown job."""
    with _ApprovalStore(store, plugins) as opened:
        return list(opened.pending(_awaiting_job(opened, job).id))


def decisions(store: str | os.PathLike[str] | JobStore, job: int | None = None, *,
              plugins: bool | Registries = True) -> list[StoredDecision]:
    """The decisions recorded on job ``job`` of ``store`` (None: its newest job
    awaiting approval), in the order recorded."""
    with _ApprovalStore(store, plugins) as opened:
        return list(opened.decisions(_awaiting_job(opened, job).id))


def approve(store: str | os.PathLike[str] | JobStore, id: str, *, job: int | None = None,
            by: str | None = None, at: str | datetime | None = None, note: str = "",
            edits: Mapping[str, Any] | None = None, ruleset: Ruleset | None = None,
            plugins: bool | Registries = True) -> StoredDecision:
    """Record the approval of the pending fact ``id`` of job ``job`` (None: the newest
    job awaiting approval) in ``store``: the fact enters the job when it resumes
    (:func:`resume`), with ``edits`` (field name → value) changed first. ``by`` defaults
    to the OS user, ``at`` to now (UTC); both, and ``note``, go into the job's trace.
    The edited fact is checked against its type in the job's ruleset (``ruleset``, else
    the one the job ran, loaded with ``plugins``): an unknown field, a key field or a
    value of the wrong type is an :class:`~converge_rules.errors.InputError` naming the
    field. A :class:`~converge_rules.errors.StoreError` when the job is not awaiting
    approval, ``id`` is not pending in it, or it has a decision already. The decision
    as recorded."""
    return _decide(store, id, "approve", job=job, by=by, at=at, note=note,
                   edits=edits or {}, ruleset=ruleset, plugins=plugins)


def reject(store: str | os.PathLike[str] | JobStore, id: str, *, job: int | None = None,
           by: str | None = None, at: str | datetime | None = None, note: str = "",
           plugins: bool | Registries = True) -> StoredDecision:
    """Record the rejection of the pending fact ``id``: the resumed job drops it (and
    never derives it again from the same support). Otherwise as :func:`approve`."""
    return _decide(store, id, "reject", job=job, by=by, at=at, note=note, edits={},
                   ruleset=None, plugins=plugins)


def _decide(store: str | os.PathLike[str] | JobStore, id: str, kind: str, *,
            job: int | None, by: str | None, at: str | datetime | None, note: str,
            edits: Mapping[str, Any], ruleset: Ruleset | None,
            plugins: bool | Registries, edits_as_text: bool = False) -> StoredDecision:
    """Record a decision (:func:`approve`, :func:`reject`); with ``edits_as_text``, the
    edits' values are command-line text, read per the field's type."""
    from converge_rules.store.approvals import StoredDecision, os_user, utc_text

    if not isinstance(id, str) or not id:
        raise TypeError(f"id is the pending fact's id (a str like 'p-1a2b3c'), got {id!r}")
    # (found: by=5 was recorded, an int in the trace's approval_decided event, and
    # job="1" was "the store has no job 1; its jobs are 1")
    if by is not None and (not isinstance(by, str) or not by.strip()):
        raise TypeError(f"by names who decides (a non-empty str), got {by!r:.40}")
    if not isinstance(note, str):
        raise TypeError(f"note is a str, got {type(note).__name__} {note!r:.40}")
    _check_job(job)
    if not isinstance(edits, Mapping):
        raise TypeError(f"edits maps field names to values ({{'amount': 9500.0}}), got "
                        f"{type(edits).__name__} {edits!r:.40}")
    if by is None:
        by = os_user()
    when = utc_text(at)
    with _ApprovalStore(store, plugins) as opened:
        info = _awaiting_job(opened, job)
        values: dict[str, Any] = {}
        if edits:
            values = _checked_edits(opened, info.id, id, edits, ruleset, plugins,
                                    edits_as_text)
        decision = StoredDecision(id, kind, by, when, note, values)
        kept = opened.record_decision(info.id, decision)  # with the pause it was taken at
        return kept if isinstance(kept, StoredDecision) else decision


def _checked_edits(opened: Any, job: int, id: str, edits: Mapping[str, Any],
                   ruleset: Ruleset | None, plugins: bool | Registries,
                   as_text: bool = False) -> dict[str, Any]:
    """``edits`` of the pending fact ``id`` checked against its type: the values as the
    trace writes them (an InputError naming the field otherwise)."""
    from converge_rules.engine.inputs import text_value, validate_pairs
    from converge_rules.errors import InputError, StoreError
    from converge_rules.store import resume as resuming

    held = next((p for p in opened.pending(job) if p.id == id), None)
    if held is None:
        ids = ", ".join(p.id for p in opened.pending(job)) or "none"
        raise StoreError(f"no fact {id} is pending in job {job} of {opened.location}; "
                         f"pending: {ids}")
    if ruleset is None:
        found = resuming.Resumable(opened, opened.job(job), *_spec(opened, job))
        if not found.ruleset_path or not Path(found.ruleset_path).is_file():
            raise StoreError(f"job {job} ran the ruleset {found.ruleset_path or '(text)'}, "
                             "which is not there now: its types check the edits; give it "
                             "(--ruleset PATH, or ruleset=…)")
        if plugins is True and found.plugins:
            from converge_rules.plugins import load_registries

            plugins = load_registries(found.plugins)
        ruleset = load(found.ruleset_path, plugins=plugins, pruners=found.pruners)
        resuming.check_ruleset(found, ruleset)  # its types must be the job's
    program = ruleset.program
    type_id = program.type_ids.get(held.type)
    if type_id is None:
        raise StoreError(f"the ruleset {ruleset.path} has no fact type {held.type}: it is "
                         f"not the ruleset job {job} ran")
    spec = program.types[type_id]
    source = f"the edits of {id}"
    for name in edits:
        if name not in spec.field_names:
            import difflib

            close = difflib.get_close_matches(name, spec.field_names, n=1)
            raise InputError(f"{held.type} has no field `{name}`", source=source,
                             help=(f"did you mean `{close[0]}`? " if close else "")
                             + f"its fields: {', '.join(spec.field_names)}")
        if spec.fields[spec.position(name)].key:
            raise InputError(
                f"`{name}` is a key field of {held.type}: an edit may not change it",
                source=source, help="reject the fact instead (a different key is a "
                "different fact, which the ruleset must derive)")
    if as_text:
        # empty is no value for an optional field, as a CSV cell; `""` is the empty
        # text, which a `str?` field could not be given otherwise
        edits = {name: "" if text == '""' and _text_field(spec, name)
                 else text_value(spec, name, str(text), source)
                 for name, text in edits.items()}
    fields = {**held.fields, **edits}
    checked = validate_pairs(program, [(held.type, fields)], source=source)
    written = json.loads(resuming.inputs_text(program, checked))[0][1]
    return {name: written[name] for name in edits}


def _text_field(spec: Any, name: str) -> bool:
    return bool(spec.fields[spec.position(name)].type.base == "str")


def _spec(opened: Any, job: int) -> tuple[dict[str, Any], str]:
    from converge_rules.errors import StoreError

    found = opened.job_spec(job) if hasattr(opened, "job_spec") else None
    if found is None:
        raise StoreError(f"job {job} of {opened.location} was stored without its ruleset's "
                         "path; give the ruleset (--ruleset PATH, or ruleset=…)")
    spec = found[0]
    return json.loads(spec.settings), spec.inputs


class _ApprovalStore:
    """``store`` opened (or as given, then left open), checked to keep approvals."""

    def __init__(self, store: str | os.PathLike[str] | JobStore,
                 plugins: bool | Registries) -> None:
        self._given = store
        self._plugins = plugins
        self._opened: Any = None

    def __enter__(self) -> Any:
        from converge_rules.errors import StoreError

        store = self._given
        if isinstance(store, str | os.PathLike):
            text = os.fspath(store)
            if "://" not in text or text.startswith("sqlite:"):
                from converge_rules.store.sqlite import sqlite_path

                path = sqlite_path(text)[0]
                if not path.is_file() or path.stat().st_size == 0:
                    # reading decisions must not create an empty store
                    raise StoreError(f"no store at {path}: give a file that `converge "
                                     "run --store` wrote")
            store = self._opened = _registries(self._plugins).job_store(store)
        if not hasattr(store, "record_decision"):
            where = getattr(store, "location", "the store")
            if self._opened is not None:
                self._opened.close()
            raise StoreError(f"{where}: this store ({type(store).__name__}) keeps no "
                             "decisions on pending facts")
        return store

    def __exit__(self, *exc: object) -> None:
        if self._opened is not None:
            self._opened.close()


def _check_job(job: object) -> None:
    """A TypeError unless ``job`` is None or a job's number (``"1"`` was "the store has
    no job 1; its jobs are 1")."""
    if job is not None and (isinstance(job, bool) or not isinstance(job, int)):
        raise TypeError(f"job is a job's number (an int, as `converge store info` lists "
                        f"them), got {type(job).__name__} {job!r:.40}")


def _awaiting_job(store: Any, job: int | None) -> JobInfo:
    """The job ``job`` of ``store``, or its newest job awaiting approval."""
    from converge_rules.errors import StoreError

    _check_job(job)
    if job is not None:
        return cast("JobInfo", store.job(job))
    jobs = store.jobs()
    waiting = [j for j in jobs if j.status == "awaiting_approval"]
    if not waiting:
        shown = ", ".join(f"{j.id} ({j.status})" for j in jobs[-5:]) or "none"
        raise StoreError(f"no job of {store.location} is awaiting approval (jobs: {shown}); "
                         "a job stops awaiting approval when a gate (`approve TYPE when "
                         "…`) held a fact and nothing else could change")
    return cast("JobInfo", waiting[-1])


def require_tools(ruleset: Ruleset, tools: Mapping[str, ToolCallable]) -> None:
    """Refuse to run ``ruleset`` when an agent calls a tool that ``tools`` lacks: a
    :class:`~converge_rules.errors.ToolError` naming each such tool, the agents that
    call it and, when an installed plugin registers it (plugins were not loaded), that
    plugin. Without it the job would run and its agents' calls fail one by one: a job
    that "converges" without a check it was written to make."""
    missing: dict[str, list[str]] = {}
    for agent in ruleset.program.agents:
        for name in agent.tools:
            if name not in tools:
                missing.setdefault(name, []).append(f"`{agent.name}` ({agent.span})")
    if not missing:
        return
    providers = _installed_providers(missing)
    lines = []
    for name, agents in sorted(missing.items()):
        plugin = providers.get(name)
        lines.append(f"no loaded plugin provides tool {name!r}, which agent"
                     f"{'s' if len(agents) > 1 else ''} {', '.join(agents)} "
                     f"call{'' if len(agents) > 1 else 's'}")
        lines.append(f"  hint: the installed plugin {plugin!r} provides it; load the plugins "
                     "(drop --no-plugins; load(..., plugins=True))" if plugin else
                     "  hint: install the plugin that provides it (see `converge plugins`)")
    raise ToolError("refusing to run: " + "\n".join(lines) + "\n  (a test mocks a tool with "
                    "`mock tool NAME(...) returns {...}`; run() takes tools=)")


def _installed_providers(names: Iterable[str]) -> dict[str, str]:
    """Tool name → the installed plugin that registers it, for those of ``names`` an
    installed plugin registers; best effort (a plugin that fails to load names
    nothing)."""
    from converge_rules.plugins import load_registries

    try:
        installed = load_registries()
    except ConvergeError:
        return {}
    return {name: installed.tools[name].plugin for name in names
            if name in installed.tools and installed.tools[name].plugin}


def read_facts(ruleset: Ruleset, *sources: str | os.PathLike[str]) -> InputFacts:
    """Read and validate input facts from files, in order: JSON Lines (one
    ``{"Type": {fields}}`` per line), a JSON array of such objects, or ``Type=file.csv``.
    The first bad fact raises :class:`~converge_rules.errors.InputError` naming the
    file, the line, the type and the field."""
    from converge_rules._gc import paused_gc

    if not isinstance(ruleset, Ruleset):
        raise TypeError(f"read_facts() takes a Ruleset (from converge_rules.load or loads) "
                        f"first, got {type(ruleset).__name__} {ruleset!r:.60}")
    for source in sources:
        if not isinstance(source, str | os.PathLike):  # (a list of paths: said "No such file")
            raise TypeError(f"read_facts() takes each source as an argument of its own (a "
                            f"path, or 'Type=file.csv'), got {type(source).__name__} "
                            f"{source!r:.60}; write read_facts(ruleset, *paths)")
    # the facts read stay: collecting while reading them walks them all for no garbage
    with paused_gc():
        from converge_rules.engine import read_all

        return read_all(ruleset.program, [str(s) for s in sources])


def executors(*, plugins: bool | Registries = True) -> list[str]:
    """The names of the executors ``run`` accepts (built-in and, with ``plugins``,
    from the installed plugins), sorted."""
    return sorted(_registries(plugins).executors)


def _build(
    file: Path, source: str | None, name: str, plugins: bool | Registries,
    pruners: tuple[str, ...], allow_paths: tuple[str | os.PathLike[str], ...],
) -> Ruleset:
    registries = _registries(plugins)
    cache = _program_cache(file, source, name, registries, pruners, allow_paths)
    if cache is not None:
        from converge_rules.compiler import program_cache

        kwargs = registries.compiler_kwargs(pruners)
        texts: dict[Path, bytes] = {}
        hit = program_cache.load(cache[0], cache[1], kwargs["functions"],
                                 kwargs["resolvers"], texts)
        if hit is not None:
            program, files = hit
            entry_text = cache[2]

            def recheck() -> CheckedRuleset:
                # from the texts the program was built from, not the files as they are
                # when ``checked`` is first asked for (edited since, perhaps)
                from converge_rules.language.checks.checker import check
                from converge_rules.language.loader import load_file

                overlay = {}
                for path, data in texts.items():
                    with contextlib.suppress(UnicodeDecodeError):
                        overlay[path] = data.decode("utf-8")
                loaded = load_file(file, source=entry_text, allow_paths=allow_paths,
                                   overlay=overlay)
                return check(loaded, **registries.checker_kwargs())

            ruleset = Ruleset(name, cast("CheckedRuleset", None), program,
                              dict(registries.tools_for_engine(program.tools)), registries,
                              files, pruners, recheck)
            object.__delattr__(ruleset, "checked")  # built on first use (__getattr__)
            return ruleset
    from converge_rules.compiler.compile import compile_ruleset
    from converge_rules.language.checks.checker import check
    from converge_rules.language.loader import load_file

    loaded = load_file(file, source=source, allow_paths=allow_paths)
    checked = check(loaded, **registries.checker_kwargs())
    if not checked.ok:
        raise CheckError([d for d in checked.diagnostics if d.is_error])
    kwargs = registries.compiler_kwargs(pruners)
    program = compile_ruleset(checked, **kwargs)
    tools: dict[str, ToolCallable] = dict(registries.tools_for_engine(program.tools))
    if cache is not None:
        from converge_rules.compiler import program_cache

        program_cache.save(cache[0], cache[1], program, loaded.files, kwargs["functions"],
                           kwargs["resolvers"], loaded.links)
    return Ruleset(name, checked, program, tools, registries, loaded.files, pruners)


def _program_cache(file: Path, source: str | None, name: str, registries: Registries,
                   pruners: tuple[str, ...], allow_paths: tuple[str | os.PathLike[str], ...]
                   ) -> tuple[Path, str, str] | None:
    """Where the program cache keeps this load's program, its key and the entry file's
    text it was computed from, or None when the cache is off or cannot serve it
    (pruners chosen, which it does not store; an entry file that is no regular file
    within the size limit, such as a pipe)."""
    from converge_rules.language.syntax.parser_cache import cache_dir

    directory = cache_dir()
    if directory is None or pruners:
        return None
    from converge_rules.compiler.program_cache import cache_key
    from converge_rules.language.access import MAX_RULESET_BYTES

    try:
        entry = file.resolve()
        if source is not None:
            text = source.encode("utf-8", "surrogatepass")
        else:
            st = os.stat(entry)
            if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_RULESET_BYTES:
                return None
            text = entry.read_bytes()
        allowed = [Path(p).resolve() for p in allow_paths]
        plugins = repr(sorted(registries.checker_kwargs().items()))
        # (a working directory that was removed cannot be part of the key: no cache)
        return (directory, cache_key(text, entry, name, allowed, pruners, plugins),
                source if source is not None else text.decode("utf-8"))
    except (OSError, RuntimeError, ValueError):  # unreadable: the loader says why
        return None


def _folders(allow_paths: object) -> tuple[str | os.PathLike[str], ...]:
    from converge_rules.language.access import allowed_folders

    return allowed_folders(allow_paths)


def _names(pruners: Iterable[str]) -> tuple[str, ...]:
    if pruners is None or not isinstance(pruners, Iterable):
        raise TypeError(f"pruners takes a list of names, got {type(pruners).__name__}")
    if isinstance(pruners, str):
        raise TypeError(f"pruners takes a list of names, got the string {pruners!r}; "
                        f"write pruners=[{pruners!r}]")
    return tuple(pruners)


def _check_run_arguments(executor: object, workers: object,
                         trace: str | os.PathLike[str] | TraceSink | None, trace_store: object,
                         stop: object, *, progress: object = None, observer: object = None,
                         timings: object = None, tools: object = None) -> None:
    """Every argument of :func:`run` that is wrong is refused before anything runs,
    with what was expected — not found out by a traceback halfway through the job
    (after its first cycles are in the store or the trace file)."""
    if not (executor is None or isinstance(executor, str) or all(
            callable(getattr(executor, m, None)) for m in ("start", "run_cycle", "close"))):
        raise TypeError(f"executor takes a registered executor's name or an executor "
                        f"(with start, run_cycle and close), got {type(executor).__name__}")
    if workers is not None:
        if isinstance(workers, bool) or not isinstance(workers, int):
            raise TypeError(f"workers takes a whole number, got {type(workers).__name__} "
                            f"{workers!r:.40}")
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        if not isinstance(executor, str):
            raise ValueError("workers sizes a named executor (executor='threads', ...); an "
                             "executor instance or the default serial one takes none")
    if stop is not None and not callable(stop):
        raise TypeError(f"stop takes a function answering True to stop the job (such as "
                        f"threading.Event().is_set), got {type(stop).__name__}")
    if progress is not None and not callable(progress):
        raise TypeError(f"progress takes a function (called with a CycleProgress after "
                        f"every cycle), got {type(progress).__name__}")
    if observer is not None and not callable(observer):
        raise TypeError(f"observer takes a callable (called with each event), got "
                        f"{type(observer).__name__}")
    if timings is not None and not all(
            callable(getattr(timings, m, None))
            for m in ("agent_run", "tool_call", "cycle_done", "take")):
        raise TypeError(f"timings takes a converge_rules.engine.Timings (it collects the "
                        f"wall times), got {type(timings).__name__}")
    if tools is not None:
        if not isinstance(tools, Mapping):
            raise TypeError(f"tools takes a mapping of tool names to functions "
                            f"({{'fx_rate': fx_rate}}), got {type(tools).__name__}")
        for name, tool in tools.items():
            if not isinstance(name, str) or not callable(tool):
                raise TypeError(f"tools[{name!r}] must be a function called with the "
                                f"call's arguments, got {type(tool).__name__} {tool!r:.40}")
    if trace_store is not None and trace is None:
        raise ValueError(f"trace_store={trace_store!r} says how to write a trace; give "
                         "trace= the location to write it to")
    if isinstance(trace, str | os.PathLike) and trace_store in (None, "jsonl"):
        where = Path(trace)
        if where.is_dir():
            raise ConvergeError(f"cannot write the trace to {trace}: it is a directory; "
                                "give a file name")
        if not where.parent.is_dir():
            raise ConvergeError(f"cannot write the trace to {trace}: directory "
                                f"{str(where.parent)!r} does not exist")


def _registries(plugins: bool | Registries) -> Registries:
    if plugins is True:
        from converge_rules.plugins.manager import load_registries

        return load_registries()
    if plugins is False:  # without pluggy (plugins/collecting.py)
        from converge_rules.plugins.collecting import builtin_registries

        return builtin_registries()
    from converge_rules.plugins.registries import Registries

    if not isinstance(plugins, Registries):
        raise TypeError(f"plugins takes True (the installed plugins), False (the built-ins "
                        f"only) or a Registries (converge_rules.plugins.load_registries), "
                        f"got {type(plugins).__name__} {plugins!r:.40}")
    return plugins


def __getattr__(name: str) -> Any:
    """``Session`` (:class:`~converge_rules.engine.session.Session`), imported on first
    use so that importing this module does not load the engine."""
    if name == "Session":
        from converge_rules.engine.session import Session as Session  # re-exported

        return Session
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
