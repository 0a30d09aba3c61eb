"""Tool calls: the one impure step an agent may take.

:class:`ToolBox` is job-wide: it memoises identical calls (tool name plus canonical
JSON of the arguments) for the whole job, counts real calls against
``max_tool_calls`` and turns every failure into :class:`~converge_rules.errors.ToolError`.
Concurrent identical calls wait for the first one, so the number of real calls (and
every agent's recorded answers) is the same whatever the executor and timing.

:class:`AgentRuntime` is what one agent run sees (the compiler's ``Runtime``): it
records each call and its answer for the trace.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeAlias

from converge_rules.engine.effects import ToolRecord
from converge_rules.errors import ToolError

ToolFn: TypeAlias = Callable[[dict[str, Any]], "dict[str, Any] | Awaitable[dict[str, Any]]"]

_Outcome: TypeAlias = tuple[dict[str, Any] | None, str | None]


class ToolBudgetExhausted(ToolError):
    """``max_tool_calls`` is spent: the runtime refuses the call."""


def canonical_args(args: Mapping[str, Any]) -> str:
    """The memo key text of a call's arguments: sorted keys, compact, tuples as lists."""
    return json.dumps(args, sort_keys=True, separators=(",", ":"), default=repr)


async def _await(value: Awaitable[Any]) -> Any:
    return await value


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
                result = asyncio.run(_await(result))
        except ToolError as exc:  # already says which tool failed and why
            return None, str(exc)
        except Exception as exc:  # any failure of a tool discards the effect
            return None, f"{type(exc).__name__}: {exc}"
        if not isinstance(result, Mapping):
            return None, f"tool {tool!r} returned {type(result).__name__}, expected an object"
        return dict(result), None


class AgentRuntime:
    """The ``Runtime`` of one agent run: calls go through the job's :class:`ToolBox`
    and are recorded, in call order, for the trace."""

    __slots__ = ("_box", "calls")

    def __init__(self, box: ToolBox) -> None:
        self._box = box
        self.calls: list[ToolRecord] = []

    def call(self, tool: str, args: dict[str, Any]) -> dict[str, Any]:
        """Call a tool; raises :class:`ToolError` when it fails or is refused."""
        try:
            result, error = self._box.call(tool, args)
        except ToolBudgetExhausted as exc:
            self.calls.append((tool, dict(args), None, str(exc)))
            raise
        self.calls.append((tool, dict(args), result, error))
        if error is not None:
            said = error if error.startswith(f"tool {tool!r}") else f"tool {tool!r} failed: {error}"
            raise ToolError(said)
        assert result is not None
        return result
