"""From declarations to runtime values: field types, enum members, constant defaults.

The runtime representation is the one :mod:`converge_rules.program` documents:
``str int float bool None``, enum members as their member name, lists as tuples.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from converge_rules.errors import CompileError as CompileError  # re-exported (it lived here)
from converge_rules.language.builtins import TimeError, parse_date, parse_datetime
from converge_rules.language.checks.types import Ty, from_text
from converge_rules.language.syntax.nodes import (
    Attribute,
    Duration,
    EnumDecl,
    Expr,
    FactDecl,
    FuncCall,
    IfExpr,
    ListExpr,
    Literal,
    Name,
    TypeRef,
    Unary,
)
from converge_rules.program import MISSING, FieldSpec, ValueType

PRIMITIVE_BASES = ("str", "int", "float", "bool", "date", "datetime", "duration", "blob")


def value_type(ref: TypeRef, enums: Mapping[str, EnumDecl]) -> ValueType:
    """The runtime type a :class:`TypeRef` names (``float?``, ``list[str]``, ``Channel``)."""
    if ref.name == "list":
        if len(ref.args) != 1:
            raise CompileError(f"{ref.span}: list takes exactly one element type")
        return ValueType("list", optional=ref.optional,
                         element=value_type(ref.args[0], enums))
    if ref.name in PRIMITIVE_BASES:
        return ValueType(ref.name, optional=ref.optional)  # type: ignore[arg-type]
    decl = enums.get(ref.name)
    if decl is None:
        raise CompileError(f"{ref.span}: unknown field type {ref.name!r}")
    return ValueType("enum", optional=ref.optional, enum=ref.name,
                     members=tuple(m.name for m in decl.members))


def result_type(text: str, enums: Mapping[str, EnumDecl]) -> ValueType | str | None:
    """What a plugin function's declared result type (``bool``, ``int?``, ``list[str]``,
    ``number``) is checked against at run time: a :class:`ValueType`; the text
    itself, normalised, for a number (an int or a float: ``number``, ``number?``,
    ``list[number]``, ``list[number?]?``); None for ``any`` (anything). The text is
    read by the checker's own reader
    (:func:`~converge_rules.language.checks.types.from_text`), so the type checked at
    run time is the one the checker typed the calls with (spaces around a name
    included: ``" bool"`` was read as a bool there and as unknown, so unchecked, here)."""
    ty = from_text(text, enums)
    return None if ty is None else _runtime_type(ty, enums)


def _runtime_type(ty: Ty, enums: Mapping[str, EnumDecl]) -> ValueType | str | None:
    if ty.kind == "number":
        return "number?" if ty.optional else "number"
    if ty.kind == "list":
        element = None if ty.elem is None else _runtime_type(ty.elem, enums)
        if element in ("number", "number?"):  # no ValueType says "int or float"
            return f"list[{element}]" + ("?" if ty.optional else "")
        return ValueType("list", optional=ty.optional,  # (list[list[number]]: unchecked)
                         element=element if isinstance(element, ValueType) else None)
    if ty.kind in PRIMITIVE_BASES:
        return ValueType(ty.kind, optional=ty.optional)  # type: ignore[arg-type]
    decl = enums.get(ty.name) if ty.kind == "enum" else None
    if decl is None:
        return None  # any
    return ValueType("enum", optional=ty.optional, enum=ty.name,
                     members=tuple(m.name for m in decl.members))


def coerce(value: Any, vt: ValueType) -> Any:
    """``value`` as a field of type ``vt`` holds it: ints widen to float for float
    fields, lists become tuples (recursively). None passes through."""
    if value is None:
        return None
    if vt.base == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if vt.base == "list" and isinstance(value, (list, tuple)):
        element = vt.element
        if element is None:
            return tuple(value)
        return tuple(coerce(v, element) for v in value)
    return value


def constant(expr: Expr, enums: Mapping[str, EnumDecl],
             expected: ValueType | None = None) -> Any:
    """The runtime value of a constant expression (a field default): literals, negated
    numbers, enum members bare or qualified, lists of constants, durations,
    ``date("…")``/``datetime("…")`` of a string, and ``if`` with a constant condition.
    Anything else is a :class:`CompileError`."""
    if isinstance(expr, Literal):
        return expr.value
    if isinstance(expr, Duration):
        return timedelta(milliseconds=expr.milliseconds)
    if isinstance(expr, FuncCall) and expr.func.name in ("date", "datetime") \
            and len(expr.args) == 1 and isinstance(expr.args[0], Literal) \
            and isinstance(expr.args[0].value, str):
        text = expr.args[0].value
        try:
            return parse_date(text) if expr.func.name == "date" else parse_datetime(text)
        except TimeError as exc:
            raise CompileError(f"{_where(expr)}: {exc}") from None
    if isinstance(expr, Unary):
        inner = constant(expr.operand, enums, expected)
        if expr.op == "not" and isinstance(inner, bool):
            return not inner
        if expr.op == "-" and isinstance(inner, (int, float, timedelta)) \
                and not isinstance(inner, bool):
            return -inner
    if isinstance(expr, Name):
        member = enum_member(expr.id, enums, expected)
        if member is not None:
            return member
    if isinstance(expr, Attribute) and isinstance(expr.value, Name):
        decl = enums.get(expr.value.id)
        if decl is not None and any(m.name == expr.attr.name for m in decl.members):
            return expr.attr.name
    if isinstance(expr, ListExpr):
        element = expected.element if expected is not None else None
        return tuple(constant(item, enums, element) for item in expr.items)
    if isinstance(expr, IfExpr):
        cond = constant(expr.condition, enums)
        return constant(expr.then if cond else expr.otherwise, enums, expected)
    raise CompileError(f"{_where(expr)}: a default must be a constant")


def enum_member(name: str, enums: Mapping[str, EnumDecl],
                expected: ValueType | None = None) -> str | None:
    """``name`` as an enum member written bare: a member of the expected enum when one is
    expected, otherwise of any declared enum. None when it is no member."""
    if expected is not None and expected.base == "enum":
        return name if name in expected.members else None
    for decl in enums.values():
        if any(m.name == name for m in decl.members):
            return name
    return None


def field_specs(decl: FactDecl, enums: Mapping[str, EnumDecl]) -> tuple[FieldSpec, ...]:
    """The fields of a fact or intent type with runtime types and evaluated defaults."""
    specs = []
    for f in decl.fields:
        vt = value_type(f.type, enums)
        default = MISSING if f.default is None else coerce(constant(f.default, enums, vt), vt)
        specs.append(FieldSpec(f.name.name, vt, f.key, default))
    return tuple(specs)


def _where(expr: Expr) -> str:
    span = getattr(expr, "span", None)
    return str(span) if span is not None else "<unknown>"
