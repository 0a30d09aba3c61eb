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
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from converge_rules.language.builtins import compiled_pattern


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
}
"""The names generated code may use for helpers (all start with ``_``, which no
generated variable does)."""
