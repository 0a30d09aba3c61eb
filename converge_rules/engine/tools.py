"""Tool calls: the one impure step an agent may take.

:class:`ToolBox` is job-wide: it memoises identical calls (tool name plus canonical
JSON of the arguments) for the whole job, counts real calls against
``max_tool_calls`` and turns every failure into :class:`~converge_rules.errors.ToolError`.
Concurrent identical calls wait for the first one, so the number of real calls (and
every agent's recorded answers) is the same whatever the executor and timing.
A result must be JSON (it goes into the trace): anything else is that call's failure.

Async tools run on one long-lived event loop per :class:`ToolBox`, in a daemon thread
started on the first async call and stopped by :meth:`ToolBox.close` when the job
ends. So a job works inside a caller's running loop (Jupyter, FastAPI), loop-bound
async clients see the same loop on every call, and the async calls of agents running
on the ``threads`` executor run concurrently on that loop. The ``asyncio`` executor
runs agents as tasks on that same loop: they call :meth:`AgentRuntime.acall`, which
awaits an async tool right there (a sync one on the executor's thread pool), with the
same memo, budget and records as :meth:`AgentRuntime.call`.

:class:`AgentRuntime` is what one agent run sees (the compiler's ``Runtime``): it
records each call and its answer for the trace.
"""

from __future__ import annotations

import contextlib
import json
import json.encoder
import threading
from collections.abc import Awaitable, Callable, Mapping
from json.encoder import encode_basestring_ascii
from time import perf_counter
from types import CoroutineType, GeneratorType, MappingProxyType
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar, cast

from converge_rules.datetypes import date, timedelta
from converge_rules.engine.effects import ToolRecord
from converge_rules.engine.timings import CALLED, MEMO, RECORDED
from converge_rules.errors import ToolError, without_addresses
from converge_rules.jsontext import c_encoder, value_problem
from converge_rules.language.builtins import INT_MAX, INT_MIN, iso_text

if TYPE_CHECKING:  # asyncio is imported where a loop is used: a job without one
    import asyncio  # (serial or threads, sync tools) does not pay for it
    from concurrent.futures import Executor

ToolFn: TypeAlias = Callable[[dict[str, Any]], "dict[str, Any] | Awaitable[dict[str, Any]]"]

W = TypeVar("W")  # what a caller waits on: a threading.Event or an asyncio future

_Outcome: TypeAlias = tuple[dict[str, Any] | None, str | None]


#: the recorded error of a call still running when its agent was abandoned
ABANDONED = "abandoned: the agent ran out of agent_timeout before this call answered"


class ToolBudgetExhausted(ToolError):
    """``max_tool_calls`` is spent: the runtime refuses the call."""


class AgentAbandoned(BaseException):
    """Raised in the thread of an agent its executor abandoned (a deadline passed), to
    stop it: a ``BaseException``, so an agent's ``except Exception`` does not swallow it
    and :func:`~converge_rules.engine.executors.run_agent` lets it through."""


def canonical_args(args: Mapping[str, Any]) -> str:
    """The memo key text of a call's arguments: sorted keys, compact, tuples as lists."""
    if _C_ENCODER is None:
        return _CANONICAL.encode(args)
    if type(args) is dict and _plain(args.values()):
        # flat plain values (an agent's common call) hold no container to mark
        return _FLAT(args)
    # what _CANONICAL.encode does for a mapping, without its Python steps (a closure
    # and two calls per key): the same C encoder with the same settings, new markers
    return "".join(_C_ENCODER({}, repr, encode_basestring_ascii, None, ":", ",",
                              True, False, True)(args, 0))


#: ``json.dumps(args, sort_keys=True, separators=(",", ":"), default=repr)``, built
#: once: ``dumps`` with options builds an encoder per call, a tenth of an async call's
#: cost on the asyncio executor. Holds no state between calls.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=repr)
_C_ENCODER: Any = getattr(json.encoder, "c_make_encoder", None)  # None without the C accelerator
#: the same encoder without markers (no circular reference check), built once, for a
#: flat mapping of plain values, which cannot hold itself: no state between calls
_FLAT = c_encoder(repr, sort_keys=True)


async def _on_pool(pool: Executor, fn: Any, args: dict[str, Any]) -> Any:
    """Run the sync tool ``fn`` on ``pool`` and await its answer. When the awaiting
    agent is cancelled (cut at ``agent_timeout``) and the pool can ``retire`` a
    stuck task, its thread stops counting against the pool's size: a call sleeping
    for an hour must not make later calls queue behind it and time out, which would
    make the job differ from ``serial``'s."""
    import asyncio

    future = pool.submit(fn, args)
    try:
        return await asyncio.wrap_future(future)
    except asyncio.CancelledError:
        retire = getattr(pool, "retire", None)
        if retire is not None:
            retire(future)
        raise


async def _await(value: Awaitable[Any]) -> Any:
    return await value


async def _cancel_pending() -> None:
    """Cancel what abandoned agents left running on the loop, so it closes cleanly."""
    import asyncio

    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    if tasks:
        _, stubborn = await asyncio.wait(tasks, timeout=_CLOSE_GRACE)
        for task in stubborn:
            # a tool that swallows its cancellation: left to the closed loop, it must
            # not print "Task was destroyed but it is pending!" at the process's exit
            task._log_destroy_pending = False  # type: ignore[attr-defined]
    await asyncio.get_running_loop().shutdown_asyncgens()


def _serve_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Run ``loop`` until it is stopped. An :class:`AgentAbandoned` meant for an
    abandoned coroutine that lands in the loop's own code instead ends that callback,
    not the loop (nor prints a traceback)."""
    while True:
        try:
            loop.run_forever()
            return
        except AgentAbandoned:
            continue


def _unless_abandoned(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """The loop's exception handler: a task ended by :class:`AgentAbandoned` (an
    abandoned agent stopped, nobody waits for it) is no error worth a traceback on
    the user's terminal; anything else goes to asyncio's default handler."""
    if not isinstance(context.get("exception"), AgentAbandoned):
        loop.default_exception_handler(context)


#: seconds ``close`` waits for cancelled coroutines (a tool swallowing its cancellation
#: must not hang the end of the job)
_ITERABLE_COROUTINE = 0x100
"""``inspect.CO_ITERABLE_COROUTINE``: the code flag of a generator made a coroutine."""

_CLOSE_GRACE = 2.0


class _InFlight:
    """The first of identical calls, running. Whoever waits for its answer registers
    under the tool box's lock (a thread gets an event, a task of the job's loop a
    future), so the common call nobody waits for costs no lock or event of its own;
    :meth:`set`, called once the answer is memoised, wakes them all."""

    __slots__ = ("_event", "_futures")

    def __init__(self) -> None:
        self._event: threading.Event | None = None
        self._futures: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] | None = None

    def thread_waiter(self) -> threading.Event:
        """An event set with the answer (call under the tool box's lock)."""
        if self._event is None:
            self._event = threading.Event()
        return self._event

    def task_waiter(self) -> asyncio.Future[None]:
        """A future of the running loop resolved with the answer (call under the tool
        box's lock)."""
        import asyncio

        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if self._futures is None:
            self._futures = []
        self._futures.append((loop, future))
        return future

    def set(self) -> None:
        """The answer is memoised (or the call cut): wake every waiter."""
        if self._event is not None:
            self._event.set()
        for loop, future in self._futures or ():
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits
                loop.call_soon_threadsafe(_resolve, future)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _failed(exc: BaseException) -> _Outcome:
    """The outcome of an async tool call that raised ``exc``; a ``MemoryError`` (the
    job's memory budget, not the tool's answer) is raised again."""
    if isinstance(exc, MemoryError):
        raise exc
    if isinstance(exc, ToolError):  # already says which tool failed and why
        return None, without_addresses(str(exc))
    return None, without_addresses(f"{type(exc).__name__}: {exc}")


def _is_async(fn: Any) -> bool:
    """Whether calling ``fn`` gives a coroutine (an ``async def`` function, or an object
    whose ``__call__`` is one): such a tool is awaited on the loop, any other runs on a
    thread."""
    import inspect  # (~5 ms: once a tool; a run without tools has no use for it)

    call = type(fn).__call__ if not inspect.isroutine(fn) else None
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(call)


def _awaitable(value: Any) -> bool:
    """``inspect.isawaitable(value)``, as it is written there, for each tool call's answer
    without importing :mod:`inspect` for every run: a coroutine, a generator-based one
    (``@types.coroutine``), or any other awaitable."""
    return (isinstance(value, CoroutineType)
            or (isinstance(value, GeneratorType)
                and bool(value.gi_code.co_flags & _ITERABLE_COROUTINE))
            or isinstance(value, Awaitable))


def _plain(values: Any) -> bool:
    """True when every one of ``values`` is None, a bool, a 64-bit int, a finite float
    or an ASCII string: values ``value_problem`` finds nothing in. Checked inline, so
    the common flat arguments and results of a tool call cost no recursive walk
    (False only means: look closer)."""
    for value in values:
        kind = type(value)
        if kind is int:
            if not INT_MIN <= value <= INT_MAX:
                return False
        elif kind is str:
            if not value.isascii():
                return False
        elif kind is float:
            if value - value != 0.0:  # NaN or an infinity
                return False
        elif value is not None and kind is not bool:
            return False
    return True


def json_problem(tool: str, result: Mapping[str, Any]) -> str | None:
    """Why a tool's result cannot go into the trace (naming the field), or None. Its
    strings must not hold lone surrogates and its integers must be 64-bit, as for
    input facts."""
    if type(result) is dict and _plain(result.values()) and _plain(result):
        return None  # a flat object of plain values (its keys are strings: JSON's)
    try:
        where = value_problem(dict(result), "result")
    except RecursionError:
        where = "result is nested too deeply"
    if where is None:
        return None
    return f"tool {tool!r} returned a result that is not JSON: {where}"


class ToolBox:
    """The job's tools, with memo and budget. Thread-safe.

    ``recorded`` are answers already paid for, by memo key (a resumed job's, from the
    ``tool_call`` events of its committed trace): the first call of such a key is
    counted against the budget as it was the first time, and answered from there
    without calling the tool."""

    def __init__(self, tools: Mapping[str, ToolFn] | None, max_calls: int | None,
                 recorded: Mapping[str, _Outcome] | None = None) -> None:
        self._tools: dict[str, ToolFn] = dict(tools or {})
        self._memo: dict[str, _Outcome] = {}
        # a resumed job's answers from its committed trace, by memo key: the first
        # call of a key takes its answer from here (counted like the call it was)
        self._recorded: dict[str, _Outcome] = dict(recorded or {})
        self._replayed: set[str] = set()  # keys answered from ``recorded`` (for timings)
        self._inflight: dict[str, _InFlight] = {}
        self._async: dict[str, bool] = {}  # tool → whether acall awaits it on the loop
        self._lock = threading.Lock()
        self.max_calls = max_calls
        self.used = 0
        self.exhausted = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._loop_lock = threading.Lock()
        self._closed = False
        #: the job's timings collector (engine.timings.Timings), None when not timed;
        #: ``time_calls``: whether agent runtimes time their calls through this box
        self.timings: Any = None
        self.time_calls = False

    def preload(self, answers: Mapping[str, _Outcome], used: int) -> None:
        """A job resumed from a checkpoint: the tool box as it was after its last
        committed cycle — ``answers`` memoised (the calls of the committed trace, by
        memo key: a later call of one is answered from the memo and not counted, as
        it was in the uninterrupted job), ``used`` calls counted."""
        with self._lock:
            self._memo.update(answers)
            self.used = used

    def answers(self) -> tuple[dict[str, _Outcome], dict[str, _Outcome]]:
        """The answers this box gives without calling a tool, for an executor that
        keeps the memo somewhere else (``converge-ray``'s ledger): ``(memoised,
        recorded)`` by memo key — a memoised one is given again, not counted; a
        recorded one (a resumed job's, not asked for yet) is counted at its first
        call, as :meth:`call` counts it."""
        with self._lock:
            return dict(self._memo), dict(self._recorded)

    @property
    def functions(self) -> Mapping[str, ToolFn]:
        """The tool functions by name (read-only), for an executor that answers calls
        somewhere else: ``converge-ray`` ships them to its actors, keeping the memo and
        the budget job-wide itself (and reporting ``used``/``exhausted`` back here)."""
        return MappingProxyType(self._tools)

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        """The job's event loop, started (in a daemon thread) on first use."""
        with self._loop_lock:
            if self._closed:
                raise ToolError("the job has ended; its event loop is closed")
            if self._loop is None:
                import asyncio

                loop = asyncio.new_event_loop()
                loop.set_exception_handler(_unless_abandoned)
                thread = threading.Thread(
                    target=_serve_loop, args=(loop,), name="converge-tools-loop", daemon=True
                )
                thread.start()
                self._loop, self._loop_thread = loop, thread
            return self._loop

    def event_loop(self) -> asyncio.AbstractEventLoop:
        """The job's event loop (started on first use), on which the ``asyncio``
        executor runs its agents; a :class:`ToolError` once the job has ended."""
        return self._event_loop()

    def loop_thread(self) -> threading.Thread | None:
        """The thread running the job's event loop, if it was started and the job has
        not ended: an executor that abandons a coroutine computing on the loop (no call
        to await, so no cancellation reaches it) stops that thread's computation."""
        with self._loop_lock:
            return self._loop_thread

    def close(self) -> None:
        """End of the job: cancel what is still running on the event loop, stop and
        close it. Idempotent; an async call afterwards fails as a tool error."""
        with self._loop_lock:
            self._closed = True
            loop, thread = self._loop, self._loop_thread
            self._loop = self._loop_thread = None
        if loop is None or thread is None:
            return
        import asyncio

        with contextlib.suppress(Exception):  # closing must not fail the job's result
            asyncio.run_coroutine_threadsafe(_cancel_pending(), loop).result(
                timeout=_CLOSE_GRACE + 1.0
            )
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=_CLOSE_GRACE)
        if not thread.is_alive():
            loop.close()

    def _claim(self, key: str, tool: str, wait: Callable[[_InFlight], W]
               ) -> tuple[_Outcome | None, _InFlight | None, W | None]:
        """One step of :meth:`call` and :meth:`acall`, under the lock: ``(outcome, None,
        None)`` when the call is memoised; ``(None, entry, None)`` when this caller owns
        the new in-flight call (counted against ``max_calls``: raises
        :class:`ToolBudgetExhausted` when spent); ``(None, None, wait(entry))`` when an
        identical call is in flight (wait, then claim again)."""
        with self._lock:
            done = self._memo.get(key)
            if done is not None:
                return done, None, None
            event = self._inflight.get(key)
            if event is not None:
                return None, None, wait(event)
            if self.max_calls is not None and self.used >= self.max_calls:
                self.exhausted = True
                raise ToolBudgetExhausted(
                    f"max_tool_calls ({self.max_calls}) is spent; call to {tool!r} refused"
                )
            self.used += 1
            answer = self._recorded.pop(key, None)
            if answer is not None:  # paid for before the job was resumed: never again
                self._memo[key] = answer
                self._replayed.add(key)
                return answer, None, None
            event = self._inflight[key] = _InFlight()
            return None, event, None

    def call(self, tool: str, args: dict[str, Any]) -> _Outcome:
        """``(result, None)`` or ``(None, error message)``; raises
        :class:`ToolBudgetExhausted` when the budget refuses a new call."""
        return self.sourced_call(tool, args)[0]

    def sourced_call(self, tool: str, args: dict[str, Any]) -> tuple[_Outcome, str]:
        """:meth:`call`, and where its answer came from: ``"called"`` (the tool ran),
        ``"memo"`` (an identical call of the job answered) or ``"record"`` (a resumed
        job's recorded answer), for the job's timings."""
        key = tool + "\x00" + canonical_args(args)
        while True:
            done, event, waiter = self._claim(key, tool, _InFlight.thread_waiter)
            if done is not None:
                return done, self._source_of(key)
            if event is None:
                assert waiter is not None
                waiter.wait()
                continue
            outcome: _Outcome = (None, "internal error")
            try:
                outcome = self._invoke(tool, args)
            finally:
                with self._lock:
                    self._memo[key] = outcome
                    del self._inflight[key]
                event.set()
            return outcome, CALLED

    def _source_of(self, key: str) -> str:
        """Where a memoised answer came from: a recorded one is answered the first time
        from the record, later times from the memo like any other."""
        if not self._replayed:  # the common case (no resumed job): no lock
            return MEMO
        with self._lock:
            if key in self._replayed:
                self._replayed.discard(key)
                return RECORDED
        return MEMO

    async def acall(self, tool: str, args: dict[str, Any],
                    pool: Executor | None = None) -> _Outcome:
        """:meth:`sourced_acall` without the source."""
        return (await self.sourced_acall(tool, args, pool))[0]

    async def sourced_acall(self, tool: str, args: dict[str, Any],
                            pool: Executor | None = None) -> tuple[_Outcome, str]:
        """:meth:`call` for a task of the job's event loop: the same memo, budget and
        outcomes, awaited without blocking the loop. An async tool is awaited on the
        loop, a sync one runs on ``pool`` (the loop's default pool when None).
        Cancelling the caller (its agent ran out of ``agent_timeout``) cancels the
        call: its outcome is not memoised, and an identical call waiting for it makes
        the call again (the budget counts both)."""
        import asyncio

        key = tool + "\x00" + canonical_args(args)
        while True:
            done, event, future = self._claim(key, tool, _InFlight.task_waiter)
            if done is not None:
                return done, self._source_of(key)
            if event is None:
                assert future is not None
                await future
                continue
            outcome: _Outcome = (None, "internal error")
            cancelled = False
            try:
                fn = self._tools.get(tool)
                if fn is not None and self._async.get(tool):
                    # an async tool (known since its first call): awaited right here,
                    # the call's coroutine layers being a tenth of its cost on the loop
                    try:
                        result = await cast(Awaitable[Any], fn(dict(args)))
                    except (Exception, SystemExit) as exc:
                        outcome = _failed(exc)
                    else:
                        outcome = self._answer(tool, result)
                else:
                    outcome = await self._ainvoke(tool, args, pool)
            except asyncio.CancelledError:
                # its agent was abandoned: the call is cut too, and answers no memo (an
                # identical call waiting for it makes it again)
                cancelled = True
                raise
            finally:
                self._settle(key, event, outcome, cancelled)
            return outcome, CALLED

    def _settle(self, key: str, event: _InFlight, outcome: _Outcome, cancelled: bool
                ) -> None:
        """The end of the call ``event`` stood for: its outcome memoised unless it was
        cut (``cancelled``), whoever waits for it woken."""
        with self._lock:
            if not cancelled:
                self._memo[key] = outcome
            del self._inflight[key]
        event.set()

    async def _ainvoke(self, tool: str, args: dict[str, Any],
                       pool: Executor | None) -> _Outcome:
        import asyncio

        fn = self._tools.get(tool)
        if fn is None:
            return None, self._unknown(tool)
        asynchronous = self._async.get(tool)
        if asynchronous is None:
            asynchronous = self._async[tool] = _is_async(fn)
        try:
            if asynchronous:
                result: Any = await cast(Awaitable[Any], fn(dict(args)))
            elif pool is None:
                result = await asyncio.get_running_loop().run_in_executor(
                    None, fn, dict(args))
            else:
                result = await _on_pool(pool, fn, dict(args))
            if not asynchronous and _awaitable(result):
                result = await _await(result)
        except (Exception, SystemExit) as exc:
            return _failed(exc)
        return self._answer(tool, result)

    def _unknown(self, tool: str) -> str:
        known = ", ".join(sorted(self._tools)) or "none"
        return f"no tool named {tool!r} is registered (registered: {known})"

    def _invoke(self, tool: str, args: dict[str, Any]) -> _Outcome:
        fn = self._tools.get(tool)
        if fn is None:
            return None, self._unknown(tool)
        try:
            result: Any = fn(dict(args))
            if _awaitable(result):
                try:
                    loop = self._event_loop()
                except ToolError:
                    if isinstance(result, CoroutineType):  # inspect.iscoroutine
                        result.close()  # never awaited: say so quietly
                    raise
                import asyncio

                result = asyncio.run_coroutine_threadsafe(_await(result), loop).result()
        except ToolError as exc:  # already says which tool failed and why
            return None, without_addresses(str(exc))
        except MemoryError:
            raise  # the job's memory budget, not the tool's answer: the job stops
        except (Exception, SystemExit) as exc:  # any failure of a tool discards the effect
            return None, without_addresses(f"{type(exc).__name__}: {exc}")
        return self._answer(tool, result)

    def _answer(self, tool: str, result: Any) -> _Outcome:
        if type(result) is dict and _plain(result.values()) and _plain(result):
            return dict(result), None  # json_problem's first case, without the steps
        if not isinstance(result, Mapping):
            return None, f"tool {tool!r} returned {type(result).__name__}, expected an object"
        problem = json_problem(tool, result)
        if problem is not None:
            return None, problem
        return dict(result), None


def _json_time(value: Any) -> Any:
    """``value`` with every date, datetime and duration in it as ISO 8601 text."""
    if isinstance(value, tuple | list):
        return type(value)(_json_time(v) for v in value)
    if isinstance(value, date | timedelta):
        return iso_text(value)
    return value


class AgentRuntime:
    """The ``Runtime`` of one agent run: calls go through the job's :class:`ToolBox`
    and are recorded, in call order, for the trace.

    An executor that abandons the agent (``agent_timeout``) calls :meth:`close`: it
    returns the calls made so far, plus the one still running (recorded with the error
    :data:`ABANDONED`, since the job's budget counted it), and every later call of the
    abandoned agent is refused without reaching the tool box. Which calls an agent
    made before it was abandoned depends on timing."""

    __slots__ = ("_box", "_lock", "_pending", "_pool", "calls", "closed", "timed")

    def __init__(self, box: ToolBox, pool: Executor | None = None) -> None:
        self._box = box
        self._pool = pool  # where acall runs a sync tool
        self.calls: list[ToolRecord] = []
        self.closed = False
        #: with the job's timings on: ``(index in calls, wall seconds, source)`` of each
        #: recorded call (never part of the records, which go into the trace)
        self.timed: list[tuple[int, float, str]] = []
        self._pending: tuple[str, dict[str, Any]] | None = None
        self._lock = threading.Lock()

    def call(self, tool: str, args: dict[str, Any]) -> dict[str, Any]:
        """Call a tool; raises :class:`ToolError` when it fails or is refused, or when
        an argument is no value a fact could hold (NaN or infinity from arithmetic that
        overflowed): such a call is not made, nor recorded, since the trace could not
        hold its arguments and a replay could not find it. Tools speak JSON: a date,
        datetime or duration argument is given as its ISO 8601 text, as the trace
        records it (so a replay's calls are the recorded ones)."""
        args = self._start(tool, args)
        box = self._box
        timed: tuple[float, str] | None = None
        try:
            if box.time_calls:  # the job is timed: how long, and was it paid
                began = perf_counter()
                (result, error), source = box.sourced_call(tool, args)
                timed = (perf_counter() - began, source)
            else:  # (a subclass answering elsewhere overrides call)
                result, error = box.call(tool, args)
        except ToolBudgetExhausted as exc:
            self._record((tool, args, None, str(exc)))
            raise
        if self.closed:  # abandoned while the tool ran: the agent must stop here
            raise AgentAbandoned(tool)
        self._record((tool, args, result, error), timed)
        if error is not None:
            said = error if error.startswith(f"tool {tool!r}") else f"tool {tool!r} failed: {error}"
            raise ToolError(said)
        assert result is not None
        return result

    @property
    def calling(self) -> bool:
        """True while a call of this run is inside the tool box, whose locks an
        executor must not interrupt (see ``executors.AgentThreads``)."""
        return self._pending is not None

    def _record(self, record: ToolRecord, timed: tuple[float, str] | None = None) -> None:
        with self._lock:
            self._pending = None
            if not self.closed:
                self.calls.append(record)
                if timed is not None:
                    self.timed.append((len(self.calls) - 1, *timed))

    def close(self) -> tuple[ToolRecord, ...]:
        """Abandon the run: the calls to record for it (see the class docstring)."""
        with self._lock:
            self.closed = True
            calls = list(self.calls)
            if self._pending is not None:
                tool, args = self._pending
                calls.append((tool, args, None, ABANDONED))
            return tuple(calls)

    async def acall(self, tool: str, args: dict[str, Any]) -> dict[str, Any]:
        """:meth:`call` for an agent's coroutine variant on the job's event loop
        (:meth:`ToolBox.acall`): the same checks, records and errors."""
        import asyncio

        args = self._start(tool, args)
        box = self._box
        timed: tuple[float, str] | None = None
        try:
            if box.time_calls:
                began = perf_counter()
                (result, error), source = await box.sourced_acall(tool, args, self._pool)
                timed = (perf_counter() - began, source)
            elif box._async.get(tool):
                # an async tool (known since its first call): sourced_acall's steps
                # here when this run makes the call, a coroutine layer fewer on the
                # loop (each of a thousand agents' calls starts on its critical path)
                key = tool + "\x00" + canonical_args(args)
                done, event, future = box._claim(key, tool, _InFlight.task_waiter)
                if done is not None:
                    result, error = done
                elif event is None:  # an identical call in flight: wait, claim again
                    assert future is not None
                    await future
                    (result, error), _ = await box.sourced_acall(tool, args, self._pool)
                else:  # this run makes the call: awaited right here
                    outcome: _Outcome = (None, "internal error")
                    cancelled = False
                    try:
                        try:
                            answer = await cast(Awaitable[Any], box._tools[tool](dict(args)))
                        except (Exception, SystemExit) as exc:
                            outcome = _failed(exc)
                        else:
                            outcome = box._answer(tool, answer)
                    except asyncio.CancelledError:
                        cancelled = True  # its agent was abandoned: see sourced_acall
                        raise
                    finally:
                        box._settle(key, event, outcome, cancelled)
                    result, error = outcome
            else:  # (one coroutine fewer than box.acall)
                (result, error), _ = await box.sourced_acall(tool, args, self._pool)
        except ToolBudgetExhausted as exc:
            self._record((tool, args, None, str(exc)))
            raise
        return self._answered(tool, args, result, error, timed)

    def _start(self, tool: str, args: dict[str, Any]) -> dict[str, Any]:
        """The arguments as the tool is given them, the call noted as running; a
        :class:`ToolError` when the call must not be made."""
        if not _plain(args.values()):
            if any(not isinstance(v, str | int | float | bool | None) for v in args.values()):
                args = {k: _json_time(v) for k, v in args.items()}
            for name, value in args.items():
                problem = value_problem(value, f"argument {name!r}")
                if problem is not None:
                    raise ToolError(f"tool {tool!r} not called: {problem}")
        # this run's own copy, recorded as is: the tool is handed a copy of it, and
        # the caller's later changes to its dict cannot reach the record
        args = dict(args)
        with self._lock:
            if self.closed:
                raise ToolError(f"tool {tool!r} not called: the agent was abandoned "
                                "(agent_timeout)")
            self._pending = (tool, args)
        return args

    def _answered(self, tool: str, args: dict[str, Any], result: dict[str, Any] | None,
                  error: str | None, timed: tuple[float, str] | None = None
                  ) -> dict[str, Any]:
        self._record((tool, args, result, error), timed)
        if error is not None:
            said = error if error.startswith(f"tool {tool!r}") else f"tool {tool!r} failed: {error}"
            raise ToolError(said)
        assert result is not None
        return result
