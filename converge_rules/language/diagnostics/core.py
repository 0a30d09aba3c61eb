"""The diagnostic model: one shape for every finding the front end (and plugins) report.

A diagnostic has a stable code (``CVG`` + three digits), a severity, a span, a message
that says what is wrong, a ``help`` line that says how to fix it, and related spans
("opened here", "first declared here").

Every code is defined once with :func:`define`, next to the code that reports it, with a
wrong and a right example. ``docs/diagnostics.md`` is generated from these definitions
and the test suite runs every example, so the documentation cannot drift.

Code ranges:
  CVG0xx syntax · CVG1xx names · CVG2xx types · CVG3xx tiers and stratification ·
  CVG4xx policies · CVG5xx root and budgets · CVG6xx imports · CVG7xx tests ·
  CVG8xx tools, functions and plugins · CVG9xx input and internal.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from converge_rules.language.syntax.span import Span


class Severity(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"


@dataclass(frozen=True, slots=True)
class Related:
    """A second place that explains a diagnostic ("first declared here")."""

    span: Span
    message: str


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One finding. ``span`` is None only for findings about a whole run (no file)."""

    code: str
    severity: Severity
    message: str
    span: Span | None
    help: str | None = None
    related: tuple[Related, ...] = ()

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def sort_key(self) -> tuple[str, int, int, str, str]:
        s = self.span
        return (s.file if s else "", s.line if s else 0, s.column if s else 0, self.code,
                self.message)


@dataclass(frozen=True, slots=True)
class CodeInfo:
    """The documentation of one diagnostic code.

    ``wrong`` is a complete ruleset that must produce this code; ``right`` is the fixed
    ruleset that must produce no error (tests run both). ``name`` is a short kebab-case
    rule id used by SARIF.
    """

    code: str
    name: str
    severity: Severity
    title: str
    explanation: str
    wrong: str
    right: str
    extra_files: dict[str, str] = field(default_factory=dict)


CODES: dict[str, CodeInfo] = {}


def define(
    code: str,
    name: str,
    severity: Severity,
    title: str,
    explanation: str,
    *,
    wrong: str,
    right: str,
    extra_files: dict[str, str] | None = None,
) -> str:
    """Register a diagnostic code with its documentation and return the code string.

    Defining one code twice with different content is a programming error.
    """
    if not (len(code) == 6 and code.startswith("CVG") and code[3:].isdigit()):
        raise ValueError(f"bad diagnostic code {code!r}: want CVG and three digits")
    info = CodeInfo(code, name, severity, title, explanation, wrong, right,
                    dict(extra_files or {}))
    existing = CODES.get(code)
    if existing is not None and existing != info:
        raise ValueError(f"diagnostic code {code} defined twice ({existing.name}, {name})")
    CODES[code] = info
    return code


def all_codes() -> dict[str, CodeInfo]:
    """Every code, after importing each module that defines codes."""
    import importlib

    for module in _DEFINING_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError:  # a stage not built yet
            continue
    return dict(sorted(CODES.items()))


_DEFINING_MODULES = (
    "converge_rules.language.syntax.parser",
    "converge_rules.language.checks.checker",
    "converge_rules.language.loader",
)
