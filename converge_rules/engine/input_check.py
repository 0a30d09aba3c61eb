"""Input facts checked against their declared types in plain Python: the common path
of :mod:`converge_rules.engine.inputs`, which needs no pydantic.

Importing pydantic and building a validator per fact type costs a short job more than
reading its facts (about 60 ms of a 0.4 s closure job's whole process). Facts that are
plainly right need neither: a ``dict`` of exactly the declared fields (the required
ones present), each value of exactly its field's Python type (an ``int`` in range, a
finite ``float``, an ``int`` for a float field, an enum member's name, a list of such
values), is what the pydantic validator accepts, and what it returns for it is known.

The invariant: **a batch this module accepts validates to exactly what pydantic would
return for it; anything else is not judged here.** :func:`plain_check` answers None
for a batch holding a single fact it is not sure of (a wrong value, an unknown field, a
``str`` subclass, a lone surrogate, an optional time or blob field given null…), and
the caller validates that batch with pydantic, whose errors (file, line, field, fix)
are the ones the user sees. Values of date, datetime, duration and blob fields go
through the very functions pydantic would call for them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from converge_rules.jsontext import LONE_SURROGATE
from converge_rules.language.builtins import INT_MAX, INT_MIN
from converge_rules.program import TypeSpec, ValueType

_FAIL = object()
"""What a value check returns for a value it does not accept."""

_EXACT_FLOAT = 2**53
"""An ``int`` given for a float field is taken here only up to this magnitude, where
every conversion to float is exact (beyond it, pydantic decides)."""

ValueCheck = Callable[[Any], Any]
"""A field's check: the value as validated, or :data:`_FAIL`."""


def _str(v: Any) -> Any:
    if type(v) is str and (v.isascii() or not LONE_SURROGATE.search(v)):
        return v
    return _FAIL


def _int(v: Any) -> Any:
    return v if type(v) is int and INT_MIN <= v <= INT_MAX else _FAIL


def _float(v: Any) -> Any:
    t = type(v)
    if t is float:
        return v if math.isfinite(v) else _FAIL
    if t is int and -_EXACT_FLOAT <= v <= _EXACT_FLOAT:
        return float(v)
    return _FAIL


def _bool(v: Any) -> Any:
    return v if type(v) is bool else _FAIL


def _calling(convert: Callable[[Any], Any]) -> ValueCheck:
    """The check of a field pydantic validates with ``PlainValidator(convert)``."""

    def check(v: Any) -> Any:
        if v is None:  # an optional field's null: which branch pydantic takes is its own
            return _FAIL
        try:
            return convert(v)
        except Exception:  # pydantic says what is wrong
            return _FAIL

    return check


def _member(members: frozenset[str]) -> ValueCheck:
    def check(v: Any) -> Any:
        return v if type(v) is str and v in members else _FAIL

    return check


def _items(element: ValueCheck) -> ValueCheck:
    def check(v: Any) -> Any:
        if type(v) is not list and type(v) is not tuple:
            return _FAIL
        out = tuple(map(element, v))
        return _FAIL if _FAIL in out else out

    return check


def _optional(check: ValueCheck) -> ValueCheck:
    def optional(v: Any) -> Any:
        return None if v is None else check(v)

    return optional


def value_check(vt: ValueType, time_reader: Callable[[str], Callable[[Any], Any]],
                as_blob: Callable[[Any], Any]) -> ValueCheck:
    """The check of a value of type ``vt``, accepting what the pydantic annotation
    :mod:`~converge_rules.engine.inputs` builds for ``vt`` accepts, as it converts it
    (``time_reader`` and ``as_blob``: the validators that annotation calls)."""
    check: ValueCheck
    if vt.base in ("date", "datetime", "duration"):
        check = _calling(time_reader(vt.base))
    elif vt.base == "blob":
        check = _calling(as_blob)
    elif vt.base == "str" or (vt.base == "enum" and not vt.members):
        check = _str
    elif vt.base == "int":
        check = _int
    elif vt.base == "float":
        check = _float
    elif vt.base == "bool":
        check = _bool
    elif vt.base == "enum":
        check = _member(frozenset(vt.members))
    else:
        assert vt.element is not None
        check = _items(value_check(vt.element, time_reader, as_blob))
    return _optional(check) if vt.optional else check


def plain_check(spec: TypeSpec, time_reader: Callable[[str], Callable[[Any], Any]],
                as_blob: Callable[[Any], Any]
                ) -> Callable[[Sequence[Any]], list[dict[str, Any]] | None]:
    """The plain check of a batch of facts of type ``spec``: the facts' fields as
    pydantic would validate them (a fact whose values are all returned as they are
    is the given dict itself, never changed), or None when it is not sure of one."""
    names = frozenset(spec.field_names)
    required = tuple(f.name for f in spec.fields if f.required)
    checks = tuple((f.name, value_check(f.type, time_reader, as_blob))
                   for f in spec.fields)
    fail = _FAIL

    def check_batch(batch: Sequence[Any]) -> list[dict[str, Any]] | None:
        out: list[dict[str, Any]] = []
        append = out.append
        for d in batch:
            if type(d) is not dict or not names.issuperset(d):
                return None
            for name in required:
                if name not in d:
                    return None
            changed: dict[str, Any] | None = None
            for name, check in checks:
                if name in d:
                    v = d[name]
                    w = check(v)
                    if w is not v:
                        if w is fail:
                            return None
                        if changed is None:
                            changed = dict(d)
                        changed[name] = w
            append(d if changed is None else changed)
        return out

    return check_batch
