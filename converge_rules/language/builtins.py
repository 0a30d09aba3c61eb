"""The built-in expression functions: one table, :data:`BUILTINS`.

Each entry says everything the pipeline needs about one built-in: its signature (what the
checker knows), its implementation (a pure Python callable: what the test interpreter
and the ``builtin.functions`` plugin call, and what compiled rules call unless the entry
is inlined) and, optionally, the Python the compiler inlines for a call. Adding a
built-in is adding one entry.

Aggregates (``count sum min max mean`` over a pattern) are syntax, not functions, and do
not appear here. Type names are as in the language, plus two signature-only names:
``number`` (int or float; a ``number`` result is float when any ``number`` argument is a
float, otherwise int) and ``any``.

Semantics the language promises beyond Python's:

* Integers are signed 64-bit (:data:`INT_MIN` to :data:`INT_MAX`), what JSON consumers
  expect: an integer literal outside the range is a checker error, an input or tool
  answer holding one is refused, and arithmetic whose integer result leaves it raises
  :class:`IntegerOverflow` (:func:`checked_int`), which fails the agent.
* ``round(x, n)`` rounds half away from zero on the *decimal* value as written, so
  ``round(2.675, 2) == 2.68`` (Python's ``round`` gives 2.67); the result is a float.
* ``matches(text, pattern)`` is true when ``pattern`` matches anywhere in ``text``
  (anchor with ``^…$`` for a full match), using RE2: linear time whatever the pattern.
  Compiled patterns are cached. A bad pattern raises :class:`PatternError`.

The implementations live here, in the language package, because they define what the
language means; the compiler's runtime, the interpreter and the plugin all import them
from here, so nothing reaches backwards up the pipeline.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import cache, lru_cache
from string import Formatter
from types import MappingProxyType
from typing import Any

from converge_rules.language.checks.checked import FunctionSignature

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


# ---------------------------------------------------------------- integers

INT_MIN = -(2**63)
INT_MAX = 2**63 - 1
INT_RANGE = f"the 64-bit range ({INT_MIN} to {INT_MAX})"
"""How messages name the range of integers."""


class IntegerOverflow(OverflowError):
    """An integer result outside the 64-bit range (:data:`INT_MIN` to :data:`INT_MAX`).
    Like any runtime error in an agent, it discards the agent's effect."""


def int_in_range(value: int) -> bool:
    """True when the integer ``value`` is within the 64-bit range."""
    return INT_MIN <= value <= INT_MAX


def shown_int(value: int) -> str:
    """An integer as a message shows it: its digits, or its size when it has too many
    to read (or for Python to convert: beyond 4,300 digits ``str`` raises)."""
    if -10**40 < value < 10**40:  # a product of two 64-bit integers is shown whole
        return str(value)
    digits = int(abs(value).bit_length() * 0.30103) + 1
    return f"{'a negative' if value < 0 else 'an'} integer of about {digits:,} digits"


def checked_int(value: Any, what: str = "") -> Any:
    """``value`` unchanged, unless it is an integer (a bool is not) outside the 64-bit
    range: then :class:`IntegerOverflow` names ``what`` (the expression's text) and the
    value."""
    if type(value) is int and not INT_MIN <= value <= INT_MAX:
        said = f"{what} = {shown_int(value)}" if what else shown_int(value)
        raise IntegerOverflow(f"integer overflow: {said} is outside {INT_RANGE}")
    return value


# --------------------------------------------------------- implementations

def cvg_round(value: float, ndigits: int = 0) -> float:
    """Round half away from zero on the shortest decimal form of ``value``."""
    if isinstance(value, float) and not math.isfinite(value):
        return value
    exponent = Decimal(1).scaleb(-int(ndigits))
    rounded = Decimal(repr(value)).quantize(exponent, rounding=ROUND_HALF_UP)
    return float(rounded)


def cvg_matches(text: str, pattern: str) -> bool:
    """True when RE2 ``pattern`` matches somewhere in ``text``."""
    return compiled_pattern(pattern).search(text) is not None


def _lower(text: str) -> str:
    return text.lower()


def _upper(text: str) -> str:
    return text.upper()


def _contains(text: Any, part: Any) -> bool:
    return part in text


def _startswith(text: str, prefix: str) -> bool:
    return text.startswith(prefix)


def _endswith(text: str, suffix: str) -> bool:
    return text.endswith(suffix)


# --------------------------------------------------------------- the table

@dataclass(frozen=True, slots=True)
class Builtin:
    """One built-in function.

    ``implementation`` is what a call means. ``inline``, when given, is how the compiler
    writes a call as plain Python instead of calling ``implementation``: a format string
    over the arguments' generated code, ``{0}``, ``{1}``… by position or ``{args}`` for
    all of them joined with commas; it must compute what ``implementation`` computes.
    ``min_args`` lets trailing arguments be left out (``round(x)``); None: every
    argument of the signature is needed."""

    signature: FunctionSignature
    implementation: Callable[..., Any]
    inline: str | None = None
    min_args: int | None = None

    @property
    def name(self) -> str:
        return self.signature.name

    @property
    def inline_arity(self) -> int | None:
        """How many arguments ``inline`` names by position (it then needs exactly that
        many), or None when it names none."""
        if self.inline is None:
            return None
        positions = [int(field) for _, field, _, _ in Formatter().parse(self.inline)
                     if field is not None and field.isdigit()]
        return max(positions) + 1 if positions else None


BUILTINS: Mapping[str, Builtin] = MappingProxyType({
    b.name: b
    for b in (
        Builtin(FunctionSignature("round", ("float", "int"), "float"),
                cvg_round, min_args=1),
        Builtin(FunctionSignature("abs", ("number",), "number"),
                abs, inline="abs({args})"),
        Builtin(FunctionSignature("min", ("number", "number"), "number", variadic=True),
                min, inline="min({args})"),
        Builtin(FunctionSignature("max", ("number", "number"), "number", variadic=True),
                max, inline="max({args})"),
        Builtin(FunctionSignature("len", ("any",), "int"),
                len, inline="len({args})"),
        Builtin(FunctionSignature("lower", ("str",), "str"),
                _lower, inline="{0}.lower()"),
        Builtin(FunctionSignature("upper", ("str",), "str"),
                _upper, inline="{0}.upper()"),
        Builtin(FunctionSignature("contains", ("str", "str"), "bool"),
                _contains, inline="({1} in {0})"),
        Builtin(FunctionSignature("startswith", ("str", "str"), "bool"),
                _startswith, inline="{0}.startswith({1})"),
        Builtin(FunctionSignature("endswith", ("str", "str"), "bool"),
                _endswith, inline="{0}.endswith({1})"),
        Builtin(FunctionSignature("matches", ("str", "str"), "bool"),
                cvg_matches),
    )
})
"""The built-ins by name. ``len`` takes a ``str`` or a ``list``; ``contains`` also takes
a list and an item; ``min``/``max`` take two or more numbers, or one list of numbers;
``matches(text, pattern)`` uses a linear-time regex engine."""

BUILTIN_FUNCTIONS: Mapping[str, FunctionSignature] = MappingProxyType({
    name: b.signature for name, b in BUILTINS.items()
})
"""The built-ins' signatures by name (what the checker knows of them)."""


def builtin_functions() -> dict[str, FunctionSignature]:
    """A fresh dict of :data:`BUILTIN_FUNCTIONS` (callers may add plugin functions)."""
    return dict(BUILTIN_FUNCTIONS)
