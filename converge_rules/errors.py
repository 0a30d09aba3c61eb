"""The one error hierarchy of converge_rules.

Every exception the package raises on purpose derives from :class:`ConvergeError`.
Each carries enough to tell the user where and how to fix the problem, and each
pickles, because errors cross process boundaries in the process and cluster executors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from converge_rules.patterns import pattern

if TYPE_CHECKING:
    from converge_rules.language.diagnostics.core import Diagnostic


class ConvergeError(Exception):
    """Root of every error converge_rules raises on purpose."""


class DiagnosticError(ConvergeError):
    """An error that holds one or more diagnostics (each with a span, message and help)."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = tuple(diagnostics)
        first = self.diagnostics[0] if self.diagnostics else None
        summary = f"{first.span}: {first.message}" if first and first.span else (
            first.message if first else "no diagnostics"
        )
        more = len(self.diagnostics) - 1
        super().__init__(summary + (f" (and {more} more)" if more > 0 else ""))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.diagnostics,))


class RulesSyntaxError(DiagnosticError):
    """The ruleset text does not parse."""


class CheckError(DiagnosticError):
    """The ruleset parses but the checker found errors."""


class CompileError(ConvergeError):
    """The compiler met something a checked ruleset should never contain (a bug in the
    checker, or a ruleset compiled without checking). The message names the place."""


class InputError(ConvergeError):
    """Input facts (JSON Lines, JSON, CSV) do not match their declared types."""

    def __init__(self, message: str, *, source: str = "", line: int = 0, help: str = "") -> None:
        self.message = message
        self.source = source
        self.line = line
        self.help = help
        where = f"{source}:{line}: " if source and line else (f"{source}: " if source else "")
        super().__init__(where + message + (f"\n  help: {help}" if help else ""))

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_input_error, (self.message, self.source, self.line, self.help))


def _rebuild_input_error(message: str, source: str, line: int, help: str) -> InputError:
    return InputError(message, source=source, line=line, help=help)


class PluginError(ConvergeError):
    """A plugin failed to load, registered something invalid, or raised in a hook."""

    def __init__(self, plugin: str, message: str) -> None:
        self.plugin = plugin
        self.message = message
        super().__init__(f"plugin {plugin!r}: {message}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.plugin, self.message))


class ToolError(ConvergeError):
    """A tool call failed; the calling agent's whole effect is discarded."""


class ExecutorError(ConvergeError):
    """An executor answered a cycle with something other than one effect per
    activation: the executor's bug (a plugin's, usually), not converge's."""


class BudgetExceeded(ConvergeError):
    """A root budget ran out. The engine turns this into a status, not a crash: an
    agent run that raises it (generated code does, for ``max_facts`` outputs and the
    value-size budgets) stops the job with status ``budget_exceeded``. ``detail``
    says what ran out, in words, when the numbers alone do not."""

    def __init__(self, budget: str, limit: object, used: object, detail: str = "") -> None:
        self.budget = budget
        self.limit = limit
        self.used = used
        self.detail = detail
        super().__init__(detail or f"budget {budget} exceeded: used {used}, limit {limit}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.budget, self.limit, self.used, self.detail))


_ADDRESS = pattern(r" at 0x[0-9A-Fa-f]+(?=>)")


def without_addresses(text: str) -> str:
    """``text`` with the memory addresses of object reprs taken out
    (``<generator object g at 0x7f3a…>`` → ``<generator object g>``): messages that
    reach the trace (an agent's exception, a tool's error, a resolver's) must read the
    same on every run."""
    if "0x" not in text:
        return text
    return _ADDRESS.sub("", text)


class StoreError(ConvergeError):
    """A job store cannot be used as asked: not a store, a schema newer than this
    converge knows, locked by another process, an unknown job. The message names the
    store's location and the fix."""


class StoreNotCompacted(StoreError):
    """``store gc`` deleted jobs (``deleted``, their ids) but could not give the space
    back to the file system (a full disk: compacting writes a copy of what the store
    keeps); their space is free inside the store for later jobs, and a later ``gc``
    compacts it. The message says how much disk space that needs."""

    def __init__(self, message: str, deleted: list[int]) -> None:
        super().__init__(message)
        self.deleted = deleted


class SessionError(ConvergeError):
    """A :class:`~converge_rules.engine.session.Session` cannot do what was asked: it is
    closed, its job ended for good (a conflict, a budget, an oscillation), or it was made
    without the derivations a retraction needs. The message says which, and the fix."""
