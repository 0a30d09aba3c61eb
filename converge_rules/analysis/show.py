"""Values and facts written the way the language writes them, for failure messages and
explanations: ``Price(sku: "A1", channel: web, amount: 11.88)``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from converge_rules.analysis.interpret import Fact
from converge_rules.language.syntax import nodes as n


def literal(value: Any, *, enum: bool = False) -> str:
    """A runtime value as a literal: ``"A1"``, ``1.5``, ``true``, ``[1, 2]``,
    ``{usd: 1.1}``. Enum members are strings at run time; ``enum`` writes one bare."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, str):
        return value if enum else json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(literal(v, enum=enum) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {literal(v)}" for k, v in value.items()) + "}"
    return repr(value)


def fact_text(fact: Fact, field_enums: Mapping[tuple[str, str], str] | None = None) -> str:
    """``Type(field: value, …)`` in declared field order."""
    enums = field_enums or {}
    inner = ", ".join(f"{k}: {literal(v, enum=(fact.type, k) in enums)}"
                      for k, v in fact.values.items())
    return f"{fact.type}({inner})"


def expr_text(expr: n.Expr | None) -> str:
    """An expression as source text (close to what the user wrote)."""
    if expr is None:
        return ""
    if isinstance(expr, n.Literal):
        return expr.text or literal(expr.value)
    if isinstance(expr, n.Duration):
        return expr.text
    if isinstance(expr, n.Wildcard):
        return "_"
    if isinstance(expr, n.Name):
        return expr.id
    if isinstance(expr, n.Attribute):
        return f"{expr_text(expr.value)}.{expr.attr.name}"
    if isinstance(expr, n.Unary):
        return f"not {expr_text(expr.operand)}" if expr.op == "not" \
            else f"-{expr_text(expr.operand)}"
    if isinstance(expr, n.Binary):
        return f"{_operand(expr.left)} {expr.op} {_operand(expr.right)}"
    if isinstance(expr, n.IfExpr):
        return (f"if {expr_text(expr.condition)} then {expr_text(expr.then)} "
                f"else {expr_text(expr.otherwise)}")
    if isinstance(expr, n.FuncCall):
        return f"{expr.func.name}({', '.join(expr_text(a) for a in expr.args)})"
    if isinstance(expr, n.Aggregate):
        inner = pattern_text(expr.pattern)
        return f"{expr.func}({inner}{', ' + expr.field.name if expr.field else ''})"
    if isinstance(expr, n.ListExpr):
        return "[" + ", ".join(expr_text(i) for i in expr.items) + "]"
    return "{" + ", ".join(f"{a.name.name}: {expr_text(a.value)}" for a in expr.fields) + "}"


def _operand(expr: n.Expr) -> str:
    text = expr_text(expr)
    return f"({text})" if isinstance(expr, n.Binary | n.IfExpr) else text


def pattern_text(pattern: n.Pattern) -> str:
    """A pattern as source text: ``p: not Price(sku, amount: 1.0)``."""
    fields = ", ".join(
        fm.field.name if fm.value is None else f"{fm.field.name}: {expr_text(fm.value)}"
        for fm in pattern.fields)
    prefix = f"{pattern.binder.name}: " if pattern.binder else ""
    prefix += "not " if pattern.negated else ""
    prefix += "intent " if pattern.intent else ""
    return f"{prefix}{pattern.type.name}({fields})"
