"""converge_rules: agents and conflict-resolution policies in a small rules language,
run in parallel against an immutable context and merged deterministically.

The stages, each usable alone: ``parse`` → ``check`` → ``compile`` → ``run``;
``load(path)`` does the first three.
"""

from __future__ import annotations

__version__ = "0.1.0"

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

__all__ = [
    "BudgetExceeded",
    "CheckError",
    "ConvergeError",
    "DiagnosticError",
    "InputError",
    "PluginError",
    "RulesSyntaxError",
    "ToolError",
    "__version__",
]
