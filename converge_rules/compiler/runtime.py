"""Runtime helpers that generated code calls: the built-ins that are not a single Python
operator, and the None-aware comparisons.

Semantics the language promises:

* ``round(x, n)`` rounds half away from zero on the *decimal* value as written, so
  ``round(2.675, 2) == 2.68`` (Python's ``round`` gives 2.67); the result is a float.
* ``matches(text, pattern)`` is true when ``pattern`` matches anywhere in ``text``
  (anchor with ``^…$`` for a full match), using RE2: linear time whatever the pattern.
  Compiled patterns are cached. A bad pattern raises, which discards the agent's effect.
* Ordering comparisons (``< <= > >=``) with ``None`` on either side are false, so a
  ``min``/``max``/``mean`` over no facts, or an empty optional field, fails a guard
  instead of raising.
* A value whose type the compiler could not know (a tool result, a plugin function's
  result) is checked against the field it goes into (``_typed``): a value of another
  type raises :class:`WrongType`, which discards the agent's effect.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from converge_rules.language.builtins import compiled_pattern
from converge_rules.program import ValueType


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


def cvg_mean(values: Iterable[Any]) -> float | None:
    """The arithmetic mean, or None when there are no values."""
    total = 0.0
    n = 0
    for v in values:
        total += v
        n += 1
    return total / n if n else None


def cvg_lt(a: Any, b: Any) -> bool:
    return a is not None and b is not None and bool(a < b)


def cvg_le(a: Any, b: Any) -> bool:
    return a is not None and b is not None and bool(a <= b)


def cvg_gt(a: Any, b: Any) -> bool:
    return a is not None and b is not None and bool(a > b)


def cvg_ge(a: Any, b: Any) -> bool:
    return a is not None and b is not None and bool(a >= b)


def cvg_float(value: Any) -> float | None:
    """An optional number as a float field holds it."""
    return None if value is None else float(value)


class MissingValue(ValueError):
    """A required field was given no value (an optional value, or an aggregate over
    nothing). Like any runtime error in an agent, it discards the agent's effect."""


def cvg_required(value: Any, field: str) -> Any:
    """``value`` for the required field ``field`` (``"Type.field"``); none is an error."""
    if value is None:
        raise MissingValue(f"{field} is required, but its expression gave no value")
    return value


class WrongType(ValueError):
    """A field was given a value of another type (an untyped tool result or plugin
    function result the compiler could not check). Like any runtime error in an agent,
    it discards the agent's effect."""


def _type_name(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, dict):
        return "record"
    return type(value).__name__


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def cvg_typed(value: Any, vt: ValueType, field: str) -> Any:
    """``value`` as field ``field`` (``"Type.field"``) of type ``vt`` holds it, checked at
    run time because the compiler could not know its type: ints widen to float for float
    fields (a bool is no number), enum members are their member name, lists become
    tuples with every element checked, and none is only for optional fields. Anything
    else raises :class:`WrongType` (or :class:`MissingValue` for none) naming the field
    and the type of the value it got."""
    if value is None:
        if vt.optional:
            return None
        raise MissingValue(f"{field} is required, but its expression gave no value")
    base = vt.base
    if base == "str" or base == "enum":
        if isinstance(value, str) and (base == "str" or value in vt.members):
            return value
    elif base == "bool":
        if isinstance(value, bool):
            return value
    elif isinstance(value, bool):
        pass
    elif base == "int":
        if isinstance(value, int):
            return value
    elif base == "float":
        if isinstance(value, float):
            return value
        if isinstance(value, int):
            return float(value)
    elif base == "list" and isinstance(value, (list, tuple)):
        element = vt.element
        if element is None:
            return tuple(value)
        return tuple(cvg_typed(v, element, f"{field}[{i}]") for i, v in enumerate(value))
    if base == "enum" and isinstance(value, str):
        raise WrongType(f"{field} is {vt}, but its expression gave {_shown(value)}, which "
                        f"is not one of its members ({', '.join(vt.members)})")
    raise WrongType(f"{field} is {vt}, but its expression gave {_type_name(value)} "
                    f"{_shown(value)}")


def cvg_tuple(value: Any) -> Any:
    """A list value as a fact holds it (a tuple), None passing through."""
    return tuple(value) if isinstance(value, list) else value


def cvg_floats(value: Any) -> Any:
    """A list of numbers as a ``list[float]`` field holds it."""
    if value is None:
        return None
    return tuple(None if v is None else float(v) for v in value)


RUNTIME_HELPERS: dict[str, Callable[..., Any]] = {
    "_round": cvg_round,
    "_matches": cvg_matches,
    "_mean": cvg_mean,
    "_lt": cvg_lt,
    "_le": cvg_le,
    "_gt": cvg_gt,
    "_ge": cvg_ge,
    "_float": cvg_float,
    "_tuple": cvg_tuple,
    "_floats": cvg_floats,
    "_required": cvg_required,
    "_typed": cvg_typed,
}
"""The names generated code may use for helpers (all start with ``_``, which no
generated variable does)."""
