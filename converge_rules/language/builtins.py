"""Signatures of the built-in expression functions.

Aggregates (``count sum min max mean`` over a pattern) are syntax, not functions, and do
not appear here. Type names are as in the language, plus two signature-only names:
``number`` (int or float; a ``number`` result is float when any ``number`` argument is a
float, otherwise int) and ``any``.
"""

from __future__ import annotations

from functools import cache, lru_cache
from typing import Any

from converge_rules.language.checks.checked import FunctionSignature

BUILTIN_FUNCTIONS: dict[str, FunctionSignature] = {
    f.name: f
    for f in (
        FunctionSignature("round", ("float", "int"), "float"),
        FunctionSignature("abs", ("number",), "number"),
        FunctionSignature("min", ("number", "number"), "number", variadic=True),
        FunctionSignature("max", ("number", "number"), "number", variadic=True),
        FunctionSignature("len", ("any",), "int"),
        FunctionSignature("lower", ("str",), "str"),
        FunctionSignature("upper", ("str",), "str"),
        FunctionSignature("contains", ("str", "str"), "bool"),
        FunctionSignature("startswith", ("str", "str"), "bool"),
        FunctionSignature("endswith", ("str", "str"), "bool"),
        FunctionSignature("matches", ("str", "str"), "bool"),
    )
}
"""The built-ins by name. ``len`` takes a ``str`` or a ``list``; ``matches(text,
pattern)`` uses a linear-time regex engine; ``min``/``max`` take two or more numbers."""

MIN_ARGS: dict[str, int] = {"round": 1}
"""Built-ins whose trailing arguments may be left out: ``round(x)`` rounds to a whole
number, ``round(x, 2)`` to two decimals."""


def builtin_functions() -> dict[str, FunctionSignature]:
    """A fresh copy of :data:`BUILTIN_FUNCTIONS` (callers may add plugin functions)."""
    return dict(BUILTIN_FUNCTIONS)


# --------------------------------------------------- `matches` patterns (RE2)

# re2 is imported on the first pattern, not with this module: the checker imports this
# table on every `converge check`, and most rulesets have no `matches` call.
@cache
def _re2_options() -> Any:
    import re2

    options = re2.Options()
    options.log_errors = False  # a bad pattern is reported by the error, not on stderr
    return options


class PatternError(ValueError):
    """A ``matches`` pattern that is not a valid RE2 regular expression."""


def pattern_problem(pattern: str) -> str | None:
    """Why ``pattern`` is not a valid RE2 regular expression, or None when it is."""
    try:
        compiled_pattern(pattern)
    except PatternError as exc:
        return str(exc)
    return None


@lru_cache(maxsize=1024)
def compiled_pattern(pattern: str) -> Any:
    """The compiled RE2 ``pattern`` (cached); :class:`PatternError` when it is not a
    valid regular expression."""
    import re2

    try:
        return re2.compile(pattern, _re2_options())
    except re2.error as exc:
        detail = exc.args[0] if exc.args else exc
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", errors="replace")
        raise PatternError(f"bad regular expression {pattern!r}: {detail}") from None
