"""Tools replaced by the ``mock tool`` answers of a test: no network, ever.

A mock answers a call when every argument it names equals the call's argument
(arguments the mock leaves out match anything); the first such mock in the test's order
wins. A ``fails "reason"`` mock answers by raising
:class:`~converge_rules.errors.ToolError` with that reason, as a failing real tool would.
A call no mock answers raises :class:`~converge_rules.errors.ToolError` too (so the
engine discards that agent's effect) and is remembered, so the test fails with a
message that says which call was made and the ``mock tool`` line that would answer it.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from converge_rules.analysis.interpret import values_equal
from converge_rules.errors import ToolError
from converge_rules.language.format.formatter import format_value
from converge_rules.language.syntax.span import Span


@dataclass(frozen=True, slots=True)
class MockAnswer:
    """One ``mock tool`` step, values evaluated: a matching call gets ``returns``, or,
    when ``fails`` is set, a :class:`ToolError` with that reason."""

    tool: str
    args: Mapping[str, Any]
    returns: Mapping[str, Any]
    span: Span | None = None
    fails: str | None = None

    def answers(self, args: Mapping[str, Any]) -> bool:
        return all(name in args and values_equal(args[name], value)
                   for name, value in self.args.items())


@dataclass(frozen=True, slots=True)
class UnmockedCall:
    tool: str
    args: Mapping[str, Any]

    def call_text(self) -> str:
        inner = ", ".join(f"{k}: {format_value(v)}" for k, v in sorted(self.args.items()))
        return f"{self.tool}({inner})"


@dataclass(slots=True)
class MockTools:
    """The tool table handed to the engine for one test run."""

    answers: Sequence[MockAnswer]
    tools: Sequence[str]
    unmocked: list[UnmockedCall] = field(default_factory=list)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def table(self) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
        """``tool name → callable`` for every declared and every mocked tool; the
        built-in ``knowledge_find`` only when the test mocks it (else the job answers
        it from its own knowledge, as in a run)."""
        # imported here: `converge test` imports this module before it can handle
        # Ctrl-C, and the engine is most of a second to import on a loaded machine
        from converge_rules.language.builtins import KNOWLEDGE_TOOL

        names = sorted({*(t for t in self.tools if t != KNOWLEDGE_TOOL),
                        *(a.tool for a in self.answers)})
        return {name: self._callable(name) for name in names}

    def _callable(self, tool: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
        def call(args: dict[str, Any]) -> dict[str, Any]:
            return self.call(tool, args)

        return call

    def call(self, tool: str, args: Mapping[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.calls.append((tool, dict(args)))
        for answer in self.answers:
            if answer.tool == tool and answer.answers(args):
                if answer.fails is not None:
                    raise ToolError(answer.fails)
                return copy.deepcopy(dict(answer.returns))  # agents must not share it
        missing = UnmockedCall(tool, dict(args))
        with self._lock:
            if missing not in self.unmocked:
                self.unmocked.append(missing)
        raise ToolError(
            f"tool {missing.call_text()} is not mocked in this test (tests never call "
            "real tools)")


def unmocked_help(calls: Sequence[UnmockedCall]) -> list[str]:
    """Lines that explain unmocked calls and show the ``mock tool`` line to add."""
    lines = []
    for c in calls:
        lines.append(f"tool call {c.call_text()} has no `mock tool` answer in this test; "
                     "the calling agent's effect was discarded")
        lines.append(f"  add: mock tool {c.call_text()} returns {{…}}")
    return lines

