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
on the ``threads`` executor run concurrently on that loop.

:class:`AgentRuntime` is what one agent run sees (the compiler's ``Runtime``): it
records each call and its answer for the trace.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import threading
from collections.abc import Awaitable, Callable, Mapping
from datetime import date, timedelta
from typing import Any, TypeAlias

from converge_rules.engine.effects import ToolRecord
from converge_rules.errors import ToolError, without_addresses
from converge_rules.jsontext import value_problem
from converge_rules.language.builtins import iso_text

ToolFn: TypeAlias = Callable[[dict[str, Any]], "dict[str, Any] | Awaitable[dict[str, Any]]"]

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
    return json.dumps(args, sort_keys=True, separators=(",", ":"), default=repr)


async def _await(value: Awaitable[Any]) -> Any:
    return await value


async def _cancel_pending() -> None:
    """Cancel what abandoned agents left running on the loop, so it closes cleanly."""
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=_CLOSE_GRACE)
    await asyncio.get_running_loop().shutdown_asyncgens()


#: seconds ``close`` waits for cancelled coroutines (a tool swallowing its cancellation
#: must not hang the end of the job)
_CLOSE_GRACE = 2.0


def json_problem(tool: str, result: Mapping[str, Any]) -> str | None:
    """Why a tool's result cannot go into the trace (naming the field), or None. Its
    strings must not hold lone surrogates and its integers must be 64-bit, as for
    input facts."""
    try:
        where = value_problem(dict(result), "result")
    except RecursionError:
        where = "result is nested too deeply"
    if where is None:
        return None
    return f"tool {tool!r} returned a result that is not JSON: {where}"


class ToolBox:
    """The job's tools, with memo and budget. Thread-safe."""

    def __init__(self, tools: Mapping[str, ToolFn] | None, max_calls: int | None) -> None:
        self._tools: dict[str, ToolFn] = dict(tools or {})
        self._memo: dict[str, _Outcome] = {}
        self._inflight: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self.max_calls = max_calls
        self.used = 0
        self.exhausted = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._loop_lock = threading.Lock()
        self._closed = False

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        """The job's event loop, started (in a daemon thread) on first use."""
        with self._loop_lock:
            if self._closed:
                raise ToolError("the job has ended; its event loop is closed")
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="converge-tools-loop", daemon=True
                )
                thread.start()
                self._loop, self._loop_thread = loop, thread
            return self._loop

    def close(self) -> None:
        """End of the job: cancel what is still running on the event loop, stop and
        close it. Idempotent; an async call afterwards fails as a tool error."""
        with self._loop_lock:
            self._closed = True
            loop, thread = self._loop, self._loop_thread
            self._loop = self._loop_thread = None
        if loop is None or thread is None:
            return
        with contextlib.suppress(Exception):  # closing must not fail the job's result
            asyncio.run_coroutine_threadsafe(_cancel_pending(), loop).result(
                timeout=_CLOSE_GRACE + 1.0
            )
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=_CLOSE_GRACE)
        if not thread.is_alive():
            loop.close()

    def call(self, tool: str, args: dict[str, Any]) -> _Outcome:
        """``(result, None)`` or ``(None, error message)``; raises
        :class:`ToolBudgetExhausted` when the budget refuses a new call."""
        key = tool + "\x00" + canonical_args(args)
        while True:
            with self._lock:
                done = self._memo.get(key)
                if done is not None:
                    return done
                event = self._inflight.get(key)
                if event is None:
                    if self.max_calls is not None and self.used >= self.max_calls:
                        self.exhausted = True
                        raise ToolBudgetExhausted(
                            f"max_tool_calls ({self.max_calls}) is spent; "
                            f"call to {tool!r} refused"
                        )
                    self.used += 1
                    event = self._inflight[key] = threading.Event()
                    owner = True
                else:
                    owner = False
            if not owner:
                event.wait()
                continue
            outcome: _Outcome = (None, "internal error")
            try:
                outcome = self._invoke(tool, args)
            finally:
                with self._lock:
                    self._memo[key] = outcome
                    del self._inflight[key]
                event.set()
            return outcome

    def _invoke(self, tool: str, args: dict[str, Any]) -> _Outcome:
        fn = self._tools.get(tool)
        if fn is None:
            known = ", ".join(sorted(self._tools)) or "none"
            return None, f"no tool named {tool!r} is registered (registered: {known})"
        try:
            result: Any = fn(dict(args))
            if inspect.isawaitable(result):
                try:
                    loop = self._event_loop()
                except ToolError:
                    if inspect.iscoroutine(result):
                        result.close()  # never awaited: say so quietly
                    raise
                result = asyncio.run_coroutine_threadsafe(_await(result), loop).result()
        except ToolError as exc:  # already says which tool failed and why
            return None, without_addresses(str(exc))
        except MemoryError:
            raise  # the job's memory budget, not the tool's answer: the job stops
        except (Exception, SystemExit) as exc:  # any failure of a tool discards the effect
            return None, without_addresses(f"{type(exc).__name__}: {exc}")
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

    __slots__ = ("_box", "_lock", "_pending", "calls", "closed")

    def __init__(self, box: ToolBox) -> None:
        self._box = box
        self.calls: list[ToolRecord] = []
        self.closed = False
        self._pending: tuple[str, dict[str, Any]] | None = None
        self._lock = threading.Lock()

    def call(self, tool: str, args: dict[str, Any]) -> dict[str, Any]:
        """Call a tool; raises :class:`ToolError` when it fails or is refused, or when
        an argument is no value a fact could hold (NaN or infinity from arithmetic that
        overflowed): such a call is not made, nor recorded, since the trace could not
        hold its arguments and a replay could not find it. Tools speak JSON: a date,
        datetime or duration argument is given as its ISO 8601 text, as the trace
        records it (so a replay's calls are the recorded ones)."""
        if any(not isinstance(v, str | int | float | bool | None) for v in args.values()):
            args = {k: _json_time(v) for k, v in args.items()}
        for name, value in args.items():
            problem = value_problem(value, f"argument {name!r}")
            if problem is not None:
                raise ToolError(f"tool {tool!r} not called: {problem}")
        with self._lock:
            if self.closed:
                raise ToolError(f"tool {tool!r} not called: the agent was abandoned "
                                "(agent_timeout)")
            self._pending = (tool, dict(args))
        try:
            result, error = self._box.call(tool, args)
        except ToolBudgetExhausted as exc:
            self._record((tool, dict(args), None, str(exc)))
            raise
        if self.closed:  # abandoned while the tool ran: the agent must stop here
            raise AgentAbandoned(tool)
        self._record((tool, dict(args), result, error))
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

    def _record(self, record: ToolRecord) -> None:
        with self._lock:
            self._pending = None
            if not self.closed:
                self.calls.append(record)

    def close(self) -> tuple[ToolRecord, ...]:
        """Abandon the run: the calls to record for it (see the class docstring)."""
        with self._lock:
            self.closed = True
            calls = list(self.calls)
            if self._pending is not None:
                tool, args = self._pending
                calls.append((tool, args, None, ABANDONED))
            return tuple(calls)
