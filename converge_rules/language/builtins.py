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

Dates and times (:func:`parse_date`, :func:`parse_datetime`, :func:`time_op`,
:func:`time_field`): a ``date`` is a :class:`datetime.date`, a ``datetime`` a
:class:`datetime.datetime` in UTC (an input with another offset is converted, one without
an offset is refused), a ``duration`` a :class:`datetime.timedelta`. Their text form is
ISO 8601 (:func:`iso_text`): ``2026-12-06``, ``2026-12-06T10:00:00Z``, ``P30DT2H``. A
date moves by whole days only: ``date + 5h`` raises :class:`TimeError`. ``now()`` and
``today()`` read the job's time, never the clock (:func:`job_now`).

``str(x)`` is the text of a value (:func:`cvg_str`); ``fixed(x, n)`` a number with
exactly ``n`` digits after the point, rounded like ``round`` (:func:`cvg_fixed`).

The implementations live here, in the language package, because they define what the
language means; the compiler's runtime, the interpreter and the plugin all import them
from here, so nothing reaches backwards up the pipeline.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from functools import cache, lru_cache
from types import MappingProxyType
from typing import Any

from converge_rules.blobs import blob_of, blob_text
from converge_rules.datetypes import UTC, date, datetime, timedelta
from converge_rules.language.checks.checked import FunctionSignature
from converge_rules.patterns import pattern
from converge_rules.records import record

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


def float_underflows(text: str, value: float) -> bool:
    """Whether ``value``, a float read from ``text``, is 0.0 though ``text`` names a
    number that is not zero (``1e-400``: below the smallest float, about 5e-324), which
    would turn a nonzero number into zero without a word."""
    return value == 0.0 and any(c in "123456789" for c in text.lower().partition("e")[0])


SMALLEST_FLOAT = "about 5e-324"


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
    from decimal import ROUND_HALF_UP, Context, Decimal  # (not imported by every run)

    exact = Decimal(repr(value))
    digits = int(ndigits)
    exponent = exact.as_tuple().exponent
    if isinstance(exponent, int) and exponent >= -digits:
        return float(value)    # no digit past the one asked for: nothing to round
    # every digit of the result kept, as in cvg_fixed: the default precision of 28 made
    # quantize fail (decimal.InvalidOperation) from 1e28 on, or with many decimals
    whole = max(exact.adjusted() + 1, 1)
    context = Context(prec=max(whole + digits + 1, 1), rounding=ROUND_HALF_UP)
    return float(exact.quantize(Decimal(1).scaleb(-digits), context=context))


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


# ---------------------------------------------------------- dates and times

TIME_KINDS = ("date", "datetime", "duration")
"""The language's time types (their runtime values: date, datetime in UTC, timedelta)."""


class TimeError(ValueError):
    """A date, datetime or duration that cannot be: a malformed or naive text, a date
    moved by part of a day, a result outside years 1 to 9999. Like any runtime error in
    an agent, it discards the agent's effect."""


# ASCII digits only: `\d` alone also matches other scripts' digits, which int() reads
_DATE_TEXT = pattern(r"\d{4}-\d{2}-\d{2}\Z", re.ASCII)
_DATETIME_TEXT = pattern(
    r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)"
    r"(Z|z|[+-]\d{2}:\d{2})?\Z", re.ASCII)
_ONE_DAY = timedelta(days=1)


def parse_date(text: str) -> date:
    """The date ``text`` (``YYYY-MM-DD``) names; :class:`TimeError` otherwise."""
    if not isinstance(text, str) or not _DATE_TEXT.match(text):
        raise TimeError(f"{_quoted(text)} is not a date: write it as YYYY-MM-DD, "
                        'e.g. "2026-12-06"')
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise TimeError(f"{_quoted(text)} is not a date: {exc}") from None


def parse_datetime(text: str) -> datetime:
    """The UTC datetime ``text`` (ISO 8601 with ``Z`` or an offset, which is converted
    to UTC) names; :class:`TimeError` when it is malformed or has no offset."""
    match = _DATETIME_TEXT.match(text) if isinstance(text, str) else None
    if match is None:
        raise TimeError(f"{_quoted(text)} is not a datetime: write it as "
                        'YYYY-MM-DDTHH:MM:SSZ, e.g. "2026-12-06T10:00:00Z"')
    if match.group(3) is None:
        raise TimeError(f"{_quoted(text)} has no time zone: datetimes are UTC, so end it "
                        f'with Z ("{text}Z") or give its offset ("{text}+01:00")')
    zone = "+00:00" if match.group(3) in ("Z", "z") else match.group(3)
    try:
        value = datetime.fromisoformat(f"{match.group(1)}T{match.group(2)}{zone}")
        return value.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise TimeError(f"{_quoted(text)} is not a datetime: {exc}") from None


_DURATION_TEXT = pattern(
    r"(-)?P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d{1,6})?)S)?)?\Z",
    re.ASCII)


def parse_duration(text: str) -> timedelta:
    """The duration an ISO 8601 text (``P30D``, ``PT1H30M``, ``-P1DT2H``, ``P2W``)
    names; :class:`TimeError` otherwise (years and months have no fixed length, so
    they are refused)."""
    match = _DURATION_TEXT.match(text) if isinstance(text, str) else None
    if match is None or text.rstrip("-").endswith(("P", "T")):
        raise TimeError(f"{_quoted(text)} is not a duration: write it in ISO 8601 "
                        'with weeks, days, hours, minutes, seconds, e.g. "P30D" or '
                        '"PT1H30M"')
    sign, weeks, days, hours, minutes, seconds = match.groups()
    try:
        value = timedelta(weeks=int(weeks or 0), days=int(days or 0),
                          hours=int(hours or 0), minutes=int(minutes or 0),
                          seconds=float(seconds or 0))
    except (OverflowError, ValueError):  # ValueError: int() of over 4,300 digits
        raise TimeError(f"{_quoted(text)} is too long a duration") from None
    return -value if sign else value


def _quoted(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else '"' + value + '"'
    return text if len(text) <= 60 else text[:57] + "..."


def iso_text(value: date | timedelta) -> str:
    """A date, datetime or duration as ISO 8601 text, the form inputs, outputs and
    traces use: ``2026-12-06``, ``2026-12-06T10:00:00Z`` (microseconds when there are
    any), ``P30DT2H30M`` (``PT0S`` for zero, ``-P1D`` for a negative one)."""
    if isinstance(value, datetime):
        text = value.astimezone(UTC).replace(tzinfo=None).isoformat()
        return text + "Z"
    if isinstance(value, date):
        return value.isoformat()
    sign = "-" if value < timedelta(0) else ""
    value = abs(value)
    days = value.days
    seconds = value.seconds
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    time = ""
    if hours:
        time += f"{hours}H"
    if minutes:
        time += f"{minutes}M"
    if secs or value.microseconds:
        whole = f"{secs}.{value.microseconds:06d}".rstrip("0").rstrip(".")
        time += f"{whole}S"
    text = f"{days}D" if days else ""
    if time:
        text += "T" + time
    return sign + "P" + (text or "T0S")


def is_time_value(value: Any) -> bool:
    """True for a date, datetime or duration."""
    return isinstance(value, date | timedelta)


def time_kind(value: Any) -> str | None:
    """``date``, ``datetime`` or ``duration`` for such a value, None for any other."""
    if isinstance(value, datetime):
        return "datetime"
    if isinstance(value, date):
        return "date"
    if isinstance(value, timedelta):
        return "duration"
    return None


TIME_OPS: Mapping[tuple[str, str, str], str] = MappingProxyType({
    ("+", "date", "duration"): "date",
    ("+", "duration", "date"): "date",
    ("-", "date", "duration"): "date",
    ("-", "date", "date"): "duration",
    ("+", "datetime", "duration"): "datetime",
    ("+", "duration", "datetime"): "datetime",
    ("-", "datetime", "duration"): "datetime",
    ("-", "datetime", "datetime"): "duration",
    ("+", "duration", "duration"): "duration",
    ("-", "duration", "duration"): "duration",
    ("*", "duration", "number"): "duration",
    ("*", "number", "duration"): "duration",
    ("/", "duration", "number"): "duration",
    ("/", "duration", "duration"): "float",
})
"""What ``left op right`` gives for time values: (op, left kind, right kind) → result
kind, ``number`` standing for int or float. Any other combination is a checker error."""


def read_time(value: Any) -> Any:
    """``value``, or the date, datetime or duration its ISO 8601 text names when it is
    text in one of their forms (which never overlap: ``2026-12-06``,
    ``2026-12-06T10:00:00Z``, ``P30D``). A tool answers JSON, so a field its signature
    types ``date`` holds text until it is used as one."""
    if isinstance(value, str):
        for parse in (parse_date, parse_datetime, parse_duration):
            try:
                return parse(value)
            except TimeError:
                continue
    return value


def read_time_as(value: Any, kind: str) -> Any:
    """``value`` as a ``kind`` (``date``, ``datetime``, ``duration``): read from its ISO
    text, none passing through; :class:`TimeError` when it is neither (a tool that
    answered something else than its signature says)."""
    if value is None or time_kind(value) == kind:
        return value
    if isinstance(value, str):
        return {"date": parse_date, "datetime": parse_datetime,
                "duration": parse_duration}[kind](value)
    raise TimeError(f"expected a {kind} as ISO 8601 text, got {_shown_value(value)}")


def time_op(op: str, left: Any, right: Any) -> Any:
    """``left op right`` where one side is a date, datetime or duration (or its ISO
    text, :func:`read_time`), as :data:`TIME_OPS` allows: a date moves by whole days
    only, a result outside years 1 to 9999 (or too long a duration) raises
    :class:`TimeError`."""
    left, right = read_time(left), read_time(right)
    for side in (left, right):
        if isinstance(side, date) and not isinstance(side, datetime) \
                and isinstance(left if side is right else right, timedelta):
            step = left if side is right else right
            if step % _ONE_DAY:
                raise TimeError(f"a date moves by whole days, not by {iso_text(step)}: "
                                "use a datetime, or a duration in days")
    try:
        if op == "+":
            return left + right
        if op == "-":
            return left - right
        if op == "*":
            return left * right
        if op == "/":
            return left / right
    except OverflowError:
        shown = f"{_shown_value(left)} {op} {_shown_value(right)}"
        if isinstance(left, date) or isinstance(right, date):
            raise TimeError(f"{shown} is outside the dates a value can hold "
                            "(years 1 to 9999)") from None
        raise TimeError(f"{shown} is too long a duration (at most 999,999,999 days)"
                        ) from None
    raise TimeError(f"`{op}` does not apply to {_shown_value(left)} and "
                    f"{_shown_value(right)}")


def _shown_value(value: Any) -> str:
    return iso_text(value) if is_time_value(value) else repr(value)


TIME_FIELDS: Mapping[str, Mapping[str, str]] = MappingProxyType({
    "date": MappingProxyType({"year": "int", "month": "int", "day": "int",
                              "weekday": "int"}),
    "datetime": MappingProxyType({"year": "int", "month": "int", "day": "int",
                                  "weekday": "int", "hour": "int", "minute": "int",
                                  "second": "int", "date": "date"}),
    "duration": MappingProxyType({"days": "int", "hours": "int", "minutes": "int",
                                  "seconds": "float"}),
})
"""The fields of time values and their types. ``weekday`` is 1 (Monday) to 7 (Sunday);
a duration's ``days``, ``hours`` and ``minutes`` are how many whole ones it lasts
(toward zero: ``-36h`` has ``days`` -1), ``seconds`` its whole length in seconds."""


def time_field(value: Any, name: str) -> Any:
    """Field ``name`` of a date, datetime or duration (or its ISO text,
    :func:`read_time`), as :data:`TIME_FIELDS` lists them."""
    value = read_time(value)
    if isinstance(value, timedelta):
        if name == "seconds":
            return value.total_seconds()
        unit = {"days": _ONE_DAY, "hours": timedelta(hours=1),
                "minutes": timedelta(minutes=1)}[name]
        whole = abs(value) // unit
        return -whole if value < timedelta(0) else whole
    if name == "weekday":
        return value.isoweekday()
    if name == "date":
        return value.date()
    result: int = getattr(value, name)
    return result


TIME_FIELD_NAMES = frozenset(name for fields in TIME_FIELDS.values() for name in fields)


def field_of(value: Any, name: str) -> Any:
    """``value.name`` where the compiler cannot tell a record (a tool result: its field)
    from a time value (its :func:`time_field`)."""
    if isinstance(value, Mapping):
        return value[name]
    return time_field(value, name)


def job_now(now: datetime | None) -> datetime:
    """The job's time, as ``now()`` gives it; :class:`TimeError` when the job has none
    (a test without ``given now``)."""
    if now is None:
        raise TimeError("now() has no value: this job was given no time (in a test, "
                        'write `given now datetime("…")`)')
    return now


def job_today(now: datetime | None) -> date:
    """The date of the job's time (UTC), as ``today()`` gives it."""
    return job_now(now).date()


# ------------------------------------------------------------- text of values

def float_text(value: float) -> str:
    """A float as ``str`` writes it: the shortest text that reads back as the same
    float, always with a point or an exponent (``2.0``, ``0.1``, ``1e+20``)."""
    return repr(value)


def cvg_str(value: Any) -> str:
    """The text of a value: a str itself, an int its digits, a float
    :func:`float_text`, a bool ``true``/``false``, an enum member its name, a date,
    datetime or duration its ISO 8601 form, none ``none``."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return float_text(value)
    if isinstance(value, int):
        return str(value)
    if is_time_value(value):
        return iso_text(value)
    raise TypeError(f"str() takes a number, bool, str, enum, date, datetime or duration, "
                    f"not {type(value).__name__}")


FIXED_DIGITS = 20
"""The most digits ``fixed`` writes after the point."""


def cvg_fixed(value: float, digits: int) -> str:
    """``value`` with exactly ``digits`` digits after the point (none and no point for
    0), rounded half away from zero on its decimal form as ``round`` does:
    ``fixed(2.675, 2) == "2.68"``, ``fixed(-0.001, 2) == "0.00"``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"fixed() takes a number, not {type(value).__name__}")
    if isinstance(digits, bool) or not isinstance(digits, int) \
            or not 0 <= digits <= FIXED_DIGITS:
        raise ValueError(f"fixed() writes 0 to {FIXED_DIGITS} digits after the point, "
                         f"not {digits!r}")
    from decimal import ROUND_HALF_UP, Context, Decimal  # (not imported by every run)

    exact = Decimal(repr(value))
    exponent = Decimal(1).scaleb(-digits)
    # every digit of the result kept: the default 28 made quantize fail from 1e27 on
    # (decimal.InvalidOperation); a context of its own per call, as quantize sets flags
    whole = max(exact.adjusted() + 1, 1)
    context = Context(prec=whole + digits + 1, rounding=ROUND_HALF_UP)
    rounded = exact.quantize(exponent, context=context)
    if rounded.is_zero():
        rounded = abs(rounded)
    return f"{rounded:f}"


# --------------------------------------------------------------- the table

@record
class Builtin:
    """One built-in function.

    ``implementation`` is what a call means. ``inline``, when given, is how the compiler
    writes a call as plain Python instead of calling ``implementation``: a format string
    over the arguments' generated code, ``{0}``, ``{1}``… by position or ``{args}`` for
    all of them joined with commas; it must compute what ``implementation`` computes.
    ``min_args`` lets trailing arguments be left out (``round(x)``); None: every
    argument of the signature is needed. ``clock`` marks a built-in that reads the
    job's time (``now``, ``today``): its implementation takes that time (a UTC
    datetime, or None when the job has none) as its one argument, which the compiler
    and the interpreter pass in place of the call's (empty) arguments."""

    signature: FunctionSignature
    implementation: Callable[..., Any]
    inline: str | None = None
    min_args: int | None = None
    clock: bool = False

    @property
    def name(self) -> str:
        return self.signature.name

    @property
    def inline_arity(self) -> int | None:
        """How many arguments ``inline`` names by position (it then needs exactly that
        many), or None when it names none."""
        if self.inline is None:
            return None
        from string import Formatter  # here: importing string compiles Template's pattern

        positions = [int(field) for _, field, _, _ in Formatter().parse(self.inline)
                     if field is not None and field.isdigit()]
        return max(positions) + 1 if positions else None


KNOWLEDGE_TOOL = "knowledge_find"
"""The built-in tool agents query the job's knowledge with (``uses tool knowledge_find``,
``call knowledge_find(type: "Quote", sku: sku) as k``): registered by the built-in
plugin for the checker, answered by the job (:mod:`converge_rules.engine.knowledge`)."""


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
        Builtin(FunctionSignature("date", ("str",), "date"), parse_date),
        Builtin(FunctionSignature("datetime", ("str",), "datetime"), parse_datetime),
        Builtin(FunctionSignature("now", (), "datetime"), job_now, clock=True),
        Builtin(FunctionSignature("today", (), "date"), job_today, clock=True),
        Builtin(FunctionSignature("str", ("any",), "str"), cvg_str),
        Builtin(FunctionSignature("fixed", ("float", "int"), "str"), cvg_fixed),
        Builtin(FunctionSignature("blob", ("str",), "blob"), blob_of),
        Builtin(FunctionSignature("blob_text", ("blob",), "str"), blob_text),
    )
})
"""The built-ins by name. ``len`` takes a ``str`` or a ``list``; ``contains`` also takes
a list and an item; ``min``/``max`` take two or more numbers, or one list of numbers;
``matches(text, pattern)`` uses a linear-time regex engine; ``date(text)`` and
``datetime(text)`` read ISO 8601; ``now()``/``today()`` give the job's time; ``str(x)``
takes any plain value (not a list or record); ``fixed(x, n)`` writes a number."""

CLOCK_BUILTINS = frozenset(name for name, b in BUILTINS.items() if b.clock)
"""The built-ins that read the job's time."""

BUILTIN_FUNCTIONS: Mapping[str, FunctionSignature] = MappingProxyType({
    name: b.signature for name, b in BUILTINS.items()
})
"""The built-ins' signatures by name (what the checker knows of them)."""


def builtin_functions() -> dict[str, FunctionSignature]:
    """A fresh dict of :data:`BUILTIN_FUNCTIONS` (callers may add plugin functions)."""
    return dict(BUILTIN_FUNCTIONS)
