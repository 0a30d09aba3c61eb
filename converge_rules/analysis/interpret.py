"""A small, slow, obviously-correct interpreter of rule expressions and patterns over a
context of facts held as dicts.

The engine runs compiled code; this module exists for the tools that explain a run
after the fact: the values in ``given``/``mock``/``expect`` steps, ``explain --why-not``
(which condition of an agent failed) and guard coverage (was a ``where`` ever false).
It follows the compiler's documented semantics: the built-ins' own implementations
(:mod:`converge_rules.language.builtins`), the runtime's ordering comparisons (None
on either side is false) and its 64-bit integers (``+ - *``, unary ``-``, ``abs`` and
``sum`` raise ``IntegerOverflow`` naming the expression, as a compiled agent does).
Dates, datetimes and durations are the compiled code's values (a fact read from a
trace holds their ISO 8601 text: :func:`interpreter_for` and :func:`read_times` read it
back), combined by the same ``time_op``/``time_field``; ``now()``/``today()`` read the
interpreter's ``now``, the job's time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from converge_rules.compiler import runtime as rt
from converge_rules.compiler.values import result_type
from converge_rules.errors import ConvergeError
from converge_rules.language.builtins import (
    BUILTINS,
    TIME_KINDS,
    checked_int,
    is_time_value,
    parse_date,
    parse_datetime,
    parse_duration,
    read_time,
    time_field,
    time_op,
)
from converge_rules.language.format.formatter import format_expr
from converge_rules.language.syntax import nodes as n
from converge_rules.program import ValueType


class EvalError(ConvergeError):
    """An expression could not be evaluated (an unknown name, a type error, a division
    by zero). ``span`` points at the expression."""

    def __init__(self, message: str, span: object = None) -> None:
        self.message = message
        self.span = span
        where = f"{span}: " if span is not None else ""
        super().__init__(where + message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message, self.span))


@dataclass(frozen=True, slots=True)
class Fact:
    """A fact as the tools see it: its type, field values by name, and the engine's id
    when known (``None`` for facts built from test steps)."""

    type: str
    values: Mapping[str, Any]
    id: int | None = None

    def get(self, name: str) -> Any:
        return self.values.get(name)


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "<": rt.cvg_lt, "<=": rt.cvg_le, ">": rt.cvg_gt, ">=": rt.cvg_ge,
}


def values_equal(a: Any, b: Any, *, tolerant: bool = False) -> bool:
    """Runtime equality; with ``tolerant``, floats compare with a relative tolerance of
    1e-9 and an absolute one of 1e-12 (so ``expect … amount: 0.3`` accepts ``0.1 + 0.2``,
    and ``0.0`` accepts ``0.1 + 0.2 - 0.3``)."""
    if tolerant and isinstance(a, float | int) and isinstance(b, float | int) \
            and not isinstance(a, bool) and not isinstance(b, bool):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, bool) != isinstance(b, bool):
        return False  # true is not 1 in the language
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(values_equal(x, y, tolerant=tolerant)
                                        for x, y in zip(a, b, strict=True))
    return bool(a == b)


@dataclass(slots=True)
class Interpreter:
    """Evaluates expressions against ``facts`` (the live context, by type name).

    ``enums`` maps enum names to their members; ``field_enums`` maps each enum-typed
    field ``(type, field)`` to its enum and ``typed`` names the fact types whose fields
    are all known, to tell an enum member written bare from a variable: in a field of a
    type in ``typed`` only a member of the field's own enum is one, in a field of any
    other type (no ruleset at hand) a member of any enum is."""

    enums: Mapping[str, Sequence[str]]
    facts: Mapping[str, Sequence[Fact]] = field(default_factory=dict)
    functions: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    field_enums: Mapping[tuple[str, str], str] = field(default_factory=dict)
    typed: frozenset[str] = frozenset()
    #: the job's time, what ``now()``/``today()`` give (None: the job had none)
    now: datetime | None = None
    #: plugin function → its declared result type, its results checked against it as
    #: compiled code does (:func:`~converge_rules.compiler.values.result_type`)
    results: Mapping[str, ValueType | str | None] = field(default_factory=dict)

    # ------------------------------------------------------------ expressions

    def eval(self, expr: n.Expr, env: Mapping[str, Any]) -> Any:
        """The value of ``expr`` with variables from ``env``."""
        try:
            return self._eval(expr, env)
        except EvalError:
            raise
        except (ArithmeticError, TypeError, ValueError, KeyError, AttributeError) as exc:
            raise EvalError(f"{type(exc).__name__}: {exc}", getattr(expr, "span", None)) \
                from exc

    def _eval(self, expr: n.Expr, env: Mapping[str, Any]) -> Any:
        if isinstance(expr, n.Literal):
            return expr.value
        if isinstance(expr, n.Duration):
            return timedelta(milliseconds=expr.milliseconds)
        if isinstance(expr, n.Name):
            if expr.id in env:
                return env[expr.id]
            if self.is_member(expr.id):
                return expr.id
            raise EvalError(f"unknown name `{expr.id}`", expr.span)
        if isinstance(expr, n.Attribute):
            return self._attribute(expr, env)
        if isinstance(expr, n.Unary):
            value = self._eval(expr.operand, env)
            if expr.op == "not":
                return not value
            return checked_int(-value, format_expr(expr))
        if isinstance(expr, n.Binary):
            return self._binary(expr, env)
        if isinstance(expr, n.IfExpr):
            branch = expr.then if self._eval(expr.condition, env) else expr.otherwise
            return self._eval(branch, env)
        if isinstance(expr, n.FuncCall):
            func = self.functions.get(expr.func.name)
            if func is None and expr.func.name in BUILTINS:
                builtin = BUILTINS[expr.func.name]
                if builtin.clock:
                    return builtin.implementation(self.now)
                func = builtin.implementation
            if func is None:
                raise EvalError(f"unknown function `{expr.func.name}`", expr.span)
            result = func(*(self._eval(a, env) for a in expr.args))
            if expr.func.name not in BUILTINS:  # a plugin's: checked as compiled code does
                return rt.cvg_result(result, expr.func.name,
                                     self.results.get(expr.func.name))
            if expr.func.name == "abs" and expr.func.name not in self.functions:
                return checked_int(result, format_expr(expr))  # abs(-2**63) overflows
            return result
        if isinstance(expr, n.Aggregate):
            return self._aggregate(expr, env)
        if isinstance(expr, n.ListExpr):
            return tuple(self._eval(item, env) for item in expr.items)
        if isinstance(expr, n.Record):
            return {a.name.name: self._eval(a.value, env) for a in expr.fields}
        raise EvalError("`_` matches anything but has no value", expr.span)

    def is_member(self, name: str, enum: str | None = None) -> bool:
        if enum is not None:
            return name in self.enums.get(enum, ())
        return any(name in members for members in self.enums.values())

    def _attribute(self, expr: n.Attribute, env: Mapping[str, Any]) -> Any:
        base = expr.value
        if isinstance(base, n.Name) and base.id not in env and base.id in self.enums:
            if expr.attr.name not in self.enums[base.id]:
                raise EvalError(f"`{expr.attr.name}` is not a member of enum {base.id}",
                                expr.attr.span)
            return expr.attr.name
        value = self._eval(base, env)
        if isinstance(value, Fact):
            return value.get(expr.attr.name)
        if isinstance(value, Mapping):
            return value[expr.attr.name]
        if is_time_value(value) or isinstance(value, str):  # a tool gives ISO text
            return time_field(value, expr.attr.name)
        raise EvalError(f"`.{expr.attr.name}` of a value that has no fields", expr.span)

    def _binary(self, expr: n.Binary, env: Mapping[str, Any]) -> Any:
        op = expr.op
        left = self._eval(expr.left, env)
        if op == "and":
            return bool(left) and bool(self._eval(expr.right, env))
        if op == "or":
            return bool(left) or bool(self._eval(expr.right, env))
        right = self._eval(expr.right, env)
        if is_time_value(left) and isinstance(right, str):
            right = read_time(right)  # a tool's answer: ISO text, as compiled code reads it
        elif is_time_value(right) and isinstance(left, str):
            left = read_time(left)
        if op in _COMPARE:
            return _COMPARE[op](left, right)
        if op == "==":
            return values_equal(left, right)
        if op == "!=":
            return not values_equal(left, right)
        if op == "in":
            return left in right
        if is_time_value(left) or is_time_value(right):
            return time_op(op, left, right)
        if op == "+":
            if isinstance(left, list | tuple) and isinstance(right, list | tuple):
                # a list is a tuple at run time, but a fact read from a trace holds lists
                return (*left, *right)
            return checked_int(left + right, format_expr(expr))
        if op == "-":
            return checked_int(left - right, format_expr(expr))
        if op == "*":
            return checked_int(left * right, format_expr(expr))
        if op == "/":
            return left / right
        return left % right

    def _aggregate(self, expr: n.Aggregate, env: Mapping[str, Any]) -> Any:
        found = [f for f, _ in self.matches(expr.pattern, env)]
        if expr.func == "count":
            return len(found)
        name = expr.field.name if expr.field is not None else ""
        values = [f.get(name) for f in found if f.get(name) is not None]
        if expr.func == "sum":
            return checked_int(sum(values), format_expr(expr))
        if expr.func == "mean":
            return rt.cvg_mean(values)
        if not values:
            return None
        return min(values) if expr.func == "min" else max(values)

    # --------------------------------------------------------------- patterns

    def matches(self, pattern: n.Pattern, env: Mapping[str, Any]
                ) -> Iterator[tuple[Fact, dict[str, Any]]]:
        """Every live fact of the pattern's type that matches it under ``env``, with
        the environment extended by the pattern's bindings. Ignores ``negated``."""
        for fact in self.facts.get(pattern.type.name, ()):
            bound = self.match_fact(pattern, fact, env)
            if bound is not None:
                yield fact, bound

    def match_fact(self, pattern: n.Pattern, fact: Fact, env: Mapping[str, Any],
                   *, tolerant: bool = False) -> dict[str, Any] | None:
        """``env`` extended with the bindings of ``pattern`` on ``fact``, or None when
        the fact does not match."""
        if fact.type != pattern.type.name:
            return None
        bound = dict(env)
        if pattern.binder is not None:
            # bound first, as the checker binds it: its own fields may use it
            bound[pattern.binder.name] = fact
        for fm in pattern.fields:
            if fm.field.name not in fact.values:
                return None
            actual = fact.values[fm.field.name]
            if not self._field_ok(pattern.type.name, fm, actual, bound, tolerant):
                return None
        return bound

    def field_expected(self, type_name: str, fm: n.FieldMatch, env: Mapping[str, Any]
                       ) -> tuple[bool, Any]:
        """``(True, value)`` when a pattern field constrains the value, ``(False,
        name-or-None)`` when it binds a variable (its name) or matches anything."""
        value = fm.value
        if value is None:
            name = fm.field.name
            return (True, env[name]) if name in env else (False, name)
        if isinstance(value, n.Wildcard):
            return False, None
        if isinstance(value, n.Name) and value.id not in env:
            enum = self.field_enums.get((type_name, fm.field.name))
            # as the checker and the compiler read it: in a field that is not of an
            # enum type, a bare name is a variable even if some enum has such a member
            if (self.is_member(value.id, enum) if enum is not None
                    else type_name not in self.typed and self.is_member(value.id)):
                return True, value.id
            return False, value.id
        return True, self.eval(value, env)

    def _field_ok(self, type_name: str, fm: n.FieldMatch, actual: Any,
                  bound: dict[str, Any], tolerant: bool) -> bool:
        constrains, expected = self.field_expected(type_name, fm, bound)
        if constrains:
            return values_equal(actual, expected, tolerant=tolerant)
        if expected is not None:
            bound[expected] = actual
        return True


_PARSERS: Mapping[str, Callable[[str], Any]] = {
    "date": parse_date, "datetime": parse_datetime, "duration": parse_duration,
}


def _time_value(value: Any, kind: str) -> Any:
    """A time field's value as the engine holds it: a fact read from a trace holds its
    ISO 8601 text (lists of them too); text that does not read stays as it is."""
    if isinstance(value, list | tuple):
        return tuple(_time_value(v, kind) for v in value)
    if isinstance(value, str):
        try:
            return _PARSERS[kind](value)
        except ValueError:
            return value
    return value


def _time_fields(checked: Any) -> dict[str, dict[str, str]]:
    """Per fact type, its fields of a time type (or a list of one) and that type."""
    out: dict[str, dict[str, str]] = {}
    for type_name, decl in checked.facts.items():
        for f in decl.fields:
            ref = f.type.args[0] if f.type.name == "list" and f.type.args else f.type
            if ref.name in TIME_KINDS:
                out.setdefault(type_name, {})[f.name.name] = ref.name
    return out


def read_times(facts: dict[int, Fact], checked: Any) -> None:
    """Read the date, datetime and duration fields of ``facts`` (a run view's, built
    from a trace, where they are ISO 8601 text) into the values compiled code sees, in
    place, so expectations and explanations compare like with like."""
    times = _time_fields(checked)
    if not times:
        return
    for fid, fact in facts.items():
        kinds = times.get(fact.type)
        if kinds:
            facts[fid] = Fact(fact.type, {k: _time_value(v, kinds[k]) if k in kinds else v
                                          for k, v in fact.values.items()}, fact.id)


def job_time(text: str | None) -> datetime | None:
    """The job's time a trace records (``job_time``), or None."""
    if text is None:
        return None
    try:
        return parse_datetime(text)
    except ValueError:
        return None


def interpreter_for(checked: Any, facts: Mapping[str, Sequence[Fact]] | None = None,
                    functions: Mapping[str, Callable[..., Any]] | None = None,
                    now: datetime | None = None) -> Interpreter:
    """An :class:`Interpreter` for a :class:`~converge_rules.language.checks.checked.CheckedRuleset`
    (its enums and the enum-typed fields of its facts) at the job's time ``now``; the
    values of ``facts`` in date, datetime and duration fields are read from their ISO
    8601 text (a fact from a trace holds text) into the values compiled code sees."""
    enums = {name: tuple(m.name for m in decl.members) for name, decl in checked.enums.items()}
    field_enums: dict[tuple[str, str], str] = {}
    for type_name, decl in checked.facts.items():
        for f in decl.fields:
            if f.type.name in enums:
                field_enums[(type_name, f.name.name)] = f.type.name
    context = dict(facts or {})
    for type_name, times in _time_fields(checked).items():
        if type_name in context:
            context[type_name] = [
                Fact(fact.type, {k: _time_value(v, times[k]) if k in times else v
                                 for k, v in fact.values.items()}, fact.id)
                for fact in context[type_name]]
    results = {name: result_type(sig.result, checked.enums)
               for name, sig in checked.functions.items()}
    return Interpreter(enums=enums, facts=context, functions=dict(functions or {}),
                       field_enums=field_enums, typed=frozenset(checked.facts), now=now,
                       results=results)
