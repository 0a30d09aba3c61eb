"""Runtime helpers that generated code calls: the built-ins the compiler does not inline,
and the None-aware comparisons.

Semantics the language promises:

* The built-ins mean what their implementations in :mod:`converge_rules.language.builtins`
  do (``round`` half away from zero on the decimal value, RE2 ``matches``); a built-in
  the compiler does not inline is bound here as ``_<name>`` (:func:`builtin_helper`).
  A bad ``matches`` pattern raises, which discards the agent's effect.
* Ordering comparisons (``< <= > >=``) with ``None`` on either side are false, so a
  ``min``/``max``/``mean`` over no facts, or an empty optional field, fails a guard
  instead of raising.
* A value whose type the compiler could not know (a tool result, a plugin function's
  result) is checked against the field it goes into (``_typed``): a value of another
  type raises :class:`WrongType`, which discards the agent's effect.
* Integers are 64-bit: an arithmetic result that may be an integer is checked
  (``_int``, :func:`~converge_rules.language.builtins.checked_int`), as is an integer an
  untyped value gives an int field; one outside the range raises
  :class:`~converge_rules.language.builtins.IntegerOverflow`, which discards the
  agent's effect.
* Memory is bounded by the root budgets (:class:`~converge_rules.errors.BudgetExceeded`
  stops the job): a run checks how many outputs it has built once per iteration of
  every loop but the innermost (``_too_many_outputs``: at most ``max_facts``, so a run
  overshoots by at most one innermost loop; when none of a pass's tests can raise, of
  the loop around the innermost only, and at the end of the pass), and a ``str`` or
  ``list`` value the agent computes is measured before it is emitted (``_sized_str``,
  ``_sized_list``); values copied from facts, literals and fields of other types cost
  nothing.
* A fact holds finite numbers only, as input facts and tool results do (the trace is
  JSON): a float field computed as NaN or infinity (``x * x`` past 1e308) raises
  :class:`NotFinite` (``_finite``), which discards the agent's effect.
* A plugin function's result holds finite numbers and valid text only, as input facts
  and tool answers do (``_result``): NaN or infinity, or a string holding a lone
  surrogate, raises :class:`BadResult`, which discards the agent's effect.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, cast

from converge_rules.blobs import as_blob
from converge_rules.errors import BudgetExceeded
from converge_rules.jsontext import surrogate_problem
from converge_rules.language.builtins import (
    BUILTINS,
    TimeError,
    checked_int,
    field_of,
    parse_date,
    parse_datetime,
    parse_duration,
    read_time,
    read_time_as,
    time_field,
    time_kind,
    time_op,
)
from converge_rules.language.builtins import cvg_matches as cvg_matches  # re-exported
from converge_rules.language.builtins import cvg_round as cvg_round  # re-exported
from converge_rules.program import Columns, Lasting, ValueType


def builtin_helper(name: str) -> str:
    """The name under which generated code calls built-in ``name``'s implementation."""
    return "_" + name


def int_helper() -> str:
    """The name under which generated code checks a result for integer overflow:
    ``_int(value, "expression text")`` (:func:`checked_int`)."""
    return "_int"


def cvg_int_abs(value: Any, what: str) -> Any:
    """``abs(value)``, checked like any integer result (``abs(-2**63)`` is ``2**63``):
    one call, so a chain of ``abs`` nests no deeper than written."""
    return checked_int(abs(value), what)


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


def cvg_items_required(value: Any, field: str) -> Any:
    """``value`` for the list field ``field`` whose items are not optional: an item that
    is none (an optional value written in a list literal) is an error."""
    if value is not None:
        for i, item in enumerate(value):
            if item is None:
                raise MissingValue(f"{field}[{i}] is required, but its expression gave "
                                   "no value")
    return value


class OutOfRange(ValueError):
    """A computed confidence or score outside 0..1 (or not a number). Like any runtime
    error in an agent, it discards the agent's effect: a confidence of 5.0 would beat
    every honest one."""


def cvg_unit(value: Any, what: str) -> float:
    """``value`` when it is a number in 0..1, else :class:`OutOfRange` naming ``what``."""
    if value is None or not 0.0 <= value <= 1.0:  # NaN fails both comparisons
        raise OutOfRange(f"{what} must be between 0 and 1, but its expression gave "
                         f"{value!r}")
    result: float = value
    return result


class NotFinite(ValueError):
    """A float field was given NaN or infinity (arithmetic that overflowed). Like any
    runtime error in an agent, it discards the agent's effect."""


def cvg_finite(value: Any, field: str) -> Any:
    """``value`` for the float (or list of floats) field ``field``, which may be none;
    NaN or infinity is an error."""
    for item in value if isinstance(value, tuple) else (value,):
        if isinstance(item, float) and not math.isfinite(item):
            raise NotFinite(f"{field} is {item!r}: a fact holds finite numbers only "
                            "(the arithmetic overflowed)")
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class BadResult(ValueError):
    """A plugin function returned NaN or infinity, or a string holding a lone
    surrogate, which no fact can hold. Like any runtime error in an agent, it discards
    the agent's effect."""


def cvg_result(value: Any, function: str, declared: ValueType | str | None = None) -> Any:
    """``value``, the result of plugin function ``function``, when it holds only
    finite numbers and valid text (in lists and records too), as input facts and tool
    answers do, and is of the type the function declares (``declared``, from
    :func:`~converge_rules.compiler.values.result_type`: ``number`` is an int or a
    float, None is ``any``), as a field of that type holds it (an int widens to a
    declared float); else :class:`BadResult` naming the function and what is wrong.
    Without the declared type check, a ``bool`` function returning ``1`` passed a
    ``where`` guard."""
    problem = _result_problem(value, "its result")
    if problem is not None:
        raise BadResult(f"function {function!r} returned a value no fact can hold: "
                        f"{problem}")
    if declared is None:
        return value
    if isinstance(declared, str):  # number, number?, list[number], list[number?]?
        where = f"the result of function {function!r}"
        if value is None and declared.endswith("?"):
            return None
        if not declared.startswith("list["):
            if _is_number(value):
                # (an int is 64-bit wherever it comes from, as for a declared int)
                return checked_int(value, where)
        elif isinstance(value, list | tuple) and all(
                _is_number(v) or (v is None and declared.startswith("list[number?]"))
                for v in value):
            return tuple([checked_int(v, f"{where}[{i}]") for i, v in enumerate(value)])
    else:
        try:
            return cvg_typed(value, declared, f"the result of function {function!r}")
        except (WrongType, MissingValue):
            pass
    got = "none" if value is None else f"{_type_name(value)} {_shown(value)}"
    raise BadResult(f"function {function!r} is declared to return {declared}, but "
                    f"returned {got}")


def _result_problem(value: Any, where: str, depth: int = 0) -> str | None:
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{where} is {value!r}, not a finite number"
    if isinstance(value, str):
        return surrogate_problem(value, where)
    if depth > 100:  # a value nested this deep (or holding itself) is refused at a field
        return None
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            problem = _result_problem(item, f"{where}[{i}]", depth + 1)
            if problem is not None:
                return problem
    elif isinstance(value, Mapping):
        for key, item in value.items():
            problem = (_result_problem(key, f"a key of {where}", depth + 1)
                       or _result_problem(item, f"{where}.{key}", depth + 1))
            if problem is not None:
                return problem
    return None


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
    tuples with every element checked, a date, datetime or duration may come as its ISO
    8601 text (tools answer JSON), and none is only for optional fields. Anything
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
            return checked_int(value, field)
    elif base == "float":
        if isinstance(value, float):
            return cvg_finite(value, field)
        if isinstance(value, int):
            # an integer is 64-bit wherever it comes from (10**400 has no float)
            return float(checked_int(value, field))
    elif base == "blob":
        if isinstance(value, str):  # a Blob, or text (a tool answers JSON)
            return as_blob(value)
    elif base in ("date", "datetime", "duration"):
        if time_kind(value) == base:
            return value
        if isinstance(value, str):  # a tool answers JSON: ISO 8601 text
            parse = {"date": parse_date, "datetime": parse_datetime,
                     "duration": parse_duration}[base]
            try:
                return parse(value)
            except TimeError as exc:
                raise WrongType(f"{field} is {vt}, but its expression gave {exc}") from None
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


def cvg_too_many_outputs(limit: int) -> BudgetExceeded:
    """The error an agent run raises when it has built more than ``limit`` outputs
    (``max_facts``); the engine names the agent."""
    return BudgetExceeded("max_facts", limit, None,
                          f"built more than {limit:,} outputs in one run (max_facts is "
                          f"{limit:,}; duplicates count)")


def cvg_sized_str(value: Any, limit: int, field: str) -> Any:
    """``value`` for the ``str`` field ``field`` (``"Type.field"``) when it holds at most
    ``limit`` characters (``max_string_length``); else :class:`BudgetExceeded`."""
    if value is not None and len(value) > limit:
        raise BudgetExceeded("max_string_length", limit, len(value),
                             f"gave {field} a string of {len(value):,} characters "
                             f"(max_string_length is {limit:,})")
    return value


def cvg_sized_list(value: Any, limit: int, field: str, str_limit: int | None = None) -> Any:
    """``value`` for the ``list`` field ``field`` when it holds at most ``limit`` items
    (``max_list_length``) and, with ``str_limit`` (a ``list[str]``), no string longer
    than ``str_limit`` characters; else :class:`BudgetExceeded`."""
    if value is None:
        return None
    if len(value) > limit:
        raise BudgetExceeded("max_list_length", limit, len(value),
                             f"gave {field} a list of {len(value):,} items "
                             f"(max_list_length is {limit:,})")
    if str_limit is not None:
        for i, item in enumerate(value):
            if item is not None and len(item) > str_limit:
                cvg_sized_str(item, str_limit, f"{field}[{i}]")
    return value


def cvg_changes(view: Any, outputs: list[tuple[Any, ...]]) -> bool:
    """Whether merging ``outputs`` (one match's emits and intends) could change the
    context: some fact is not live yet (nor, for an intent, closed). A ``one at a
    time`` agent fires only such a match, and only once (``View.fired``)."""
    same = view.same_fact
    return any(same(o[1], o[2]) is None for o in outputs)


def cvg_recency(support: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The age of a match, for ``earliest`` (smallest first) and ``latest`` (largest
    first) in a ``one at a time`` agent's order: its fact ids newest first (OPS5's
    recency: the match whose newest fact is newest is the latest), then in pattern
    order, so two matches of different facts never tie."""
    return (tuple(sorted(support, reverse=True)), support)


def cvg_old(bucket: Collection[int] | None, since: int) -> bool:
    """Whether an index bucket (None: no live fact holds the key) holds a fact older
    than ``since``: its first id, the smallest (buckets are ascending), is."""
    return bool(bucket) and next(iter(bucket)) < since  # type: ignore[arg-type]


def cvg_delta(bucket: Collection[int] | None, since: int) -> Collection[int]:
    """The ids of an index bucket (None: no live fact holds the key) that are ``>=
    since``, ascending: the new facts among those holding one key. Costs the number of
    ids returned (a 1-tuple or list is bisected, an ordered-set dict walked backwards),
    not the size of the bucket."""
    if bucket is None:
        return ()
    if type(bucket) is tuple and len(bucket) == 1:
        # a key one fact holds (the usual bucket of a routed pattern): no bisection
        return bucket if bucket[0] >= since else ()
    if since <= 0:
        return bucket
    if type(bucket) is dict:
        out: list[int] = []
        for fid in reversed(bucket):
            if fid < since:
                break
            out.append(fid)
        out.reverse()
        return out
    seq = cast(Sequence[int], bucket)
    i = bisect_left(seq, since)
    return seq[i:] if i else seq


RUNTIME_HELPERS: dict[str, Callable[..., Any]] = {
    **{builtin_helper(name): b.implementation
       for name, b in BUILTINS.items() if b.inline is None},
    # after the built-ins, so a built-in named like a helper cannot replace it; the
    # built-in's compiled calls then fail tests/compiler (each built-in is run there)
    "_mean": cvg_mean,
    "_lt": cvg_lt,
    "_le": cvg_le,
    "_gt": cvg_gt,
    "_ge": cvg_ge,
    "_float": cvg_float,
    "_tuple": cvg_tuple,
    "_floats": cvg_floats,
    "_required": cvg_required,
    "_items_required": cvg_items_required,
    "_finite": cvg_finite,
    "_result": cvg_result,
    "_typed": cvg_typed,
    "_unit": cvg_unit,
    "_too_many_outputs": cvg_too_many_outputs,
    "_sized_str": cvg_sized_str,
    "_sized_list": cvg_sized_list,
    "_time_op": time_op,
    "_time_field": time_field,
    "_read_time": read_time,
    "_read_time_as": read_time_as,
    "_field_of": field_of,
    int_helper(): checked_int,
    "_int_abs": cvg_int_abs,
    "_changes": cvg_changes,
    "_recency": cvg_recency,
    "_lasting": Lasting,
    "_delta": cvg_delta,
    "_old": cvg_old,
    "_columns": Columns,
}
"""The names generated code may use for helpers (all start with ``_``, which no
generated variable does)."""
