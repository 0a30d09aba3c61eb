"""converge_rules: agents and conflict-resolution policies in a small rules language,
run in parallel against an immutable context and merged deterministically.

The stages, each usable alone: ``parse`` → ``check_file`` → ``compile_ruleset`` →
``run``; ``load(path)`` (or ``loads(text)``) does the first three with the installed
plugins, and ``run`` the last. See docs/api.md.
"""

from __future__ import annotations

__version__ = "0.1.0"

from converge_rules.api import Ruleset, load, loads, read_facts, run
from converge_rules.compiler.compile import compile_ruleset
from converge_rules.engine.result import RunResult
from converge_rules.errors import (
    BudgetExceeded,
    CheckError,
    ConvergeError,
    DiagnosticError,
    InputError,
    PluginError,
    RulesSyntaxError,
    ToolError,
)
from converge_rules.language.checks.checker import check_file
from converge_rules.language.syntax.parser import parse

__all__ = [
    "BudgetExceeded",
    "CheckError",
    "ConvergeError",
    "DiagnosticError",
    "InputError",
    "PluginError",
    "RulesSyntaxError",
    "Ruleset",
    "RunResult",
    "ToolError",
    "__version__",
    "check_file",
    "compile_ruleset",
    "load",
    "loads",
    "parse",
    "read_facts",
    "run",
]
