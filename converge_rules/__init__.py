"""converge_rules: agents and conflict-resolution policies in a small rules language,
run in parallel against an immutable context and merged deterministically.

The stages, each usable alone: ``parse`` → ``check_file`` → ``compile_ruleset`` →
``run``; ``load(path)`` (or ``loads(text)``) does the first three with the installed
plugins, and ``run`` the last. See docs/api.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from converge_rules.api import Ruleset, load, loads, read_facts, resume, run, stream
    from converge_rules.compiler.compile import compile_ruleset
    from converge_rules.engine.gates import Decision
    from converge_rules.engine.result import RunResult
    from converge_rules.engine.session import Session
    from converge_rules.errors import (
        BudgetExceeded,
        CheckError,
        ConvergeError,
        DiagnosticError,
        InputError,
        PluginError,
        RulesSyntaxError,
        SessionError,
        ToolError,
    )
    from converge_rules.language.checks.checker import check_file
    from converge_rules.language.syntax.parser import parse

__all__ = [
    "BudgetExceeded",
    "CheckError",
    "ConvergeError",
    "Decision",
    "DiagnosticError",
    "InputError",
    "PluginError",
    "RulesSyntaxError",
    "Ruleset",
    "RunResult",
    "Session",
    "SessionError",
    "ToolError",
    "__version__",
    "check_file",
    "compile_ruleset",
    "load",
    "loads",
    "parse",
    "read_facts",
    "resume",
    "run",
    "stream",
]

# Where each public name lives. They are imported on first use (PEP 562), so that
# `import converge_rules` — and with it every `converge` command, `--version` included —
# does not pay for the engine, the compiler, the checker and pydantic it may not need.
_EXPORTS = {
    "Ruleset": "converge_rules.api",
    "load": "converge_rules.api",
    "loads": "converge_rules.api",
    "read_facts": "converge_rules.api",
    "resume": "converge_rules.api",
    "run": "converge_rules.api",
    "stream": "converge_rules.api",
    "compile_ruleset": "converge_rules.compiler.compile",
    "RunResult": "converge_rules.engine.result",
    "Decision": "converge_rules.engine.gates",
    "Session": "converge_rules.engine.session",
    "BudgetExceeded": "converge_rules.errors",
    "CheckError": "converge_rules.errors",
    "ConvergeError": "converge_rules.errors",
    "DiagnosticError": "converge_rules.errors",
    "InputError": "converge_rules.errors",
    "PluginError": "converge_rules.errors",
    "RulesSyntaxError": "converge_rules.errors",
    "SessionError": "converge_rules.errors",
    "ToolError": "converge_rules.errors",
    "check_file": "converge_rules.language.checks.checker",
    "parse": "converge_rules.language.syntax.parser",
}


def __getattr__(name: str) -> Any:
    """The public name ``name``, imported from its module on first use."""
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
