"""Join planning: what each field of a pattern does, and in which order a semi-naive
pass evaluates an agent's positive patterns.

A field of a pattern is one of

* ``var``   — a variable: it binds the field when the variable is not bound yet, and is
  an equality constraint (a join) once it is;
* ``const`` — a literal or enum member: an equality constraint;
* ``expr``  — any other expression: an equality constraint once the variables it uses
  are bound;
* (a wildcard ``_`` is dropped: it matches anything).

Index choice follows from that: a pattern is looked up through the index on exactly
the fields that are constrained when its turn comes; a pattern with none is scanned.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from converge_rules.compiler.values import enum_member
from converge_rules.errors import CompileError
from converge_rules.language.syntax.nodes import (
    Aggregate,
    EnumDecl,
    Expr,
    Name,
    Pattern,
    Wildcard,
    walk_expr,
)
from converge_rules.language.syntax.nodes import (
    Literal as LiteralNode,
)
from converge_rules.program import TypeSpec


@dataclass(frozen=True, slots=True)
class FieldUse:
    position: int
    kind: Literal["var", "const", "expr"]
    name: str = ""
    value: Any = None
    expr: Expr | None = None


@dataclass(frozen=True, slots=True)
class PatternInfo:
    """One pattern with its fields classified. ``index`` is its place among the
    agent's positive patterns (written order), or -1 for a negated or aggregated one."""

    pattern: Pattern
    spec: TypeSpec
    uses: tuple[FieldUse, ...]
    index: int = -1

    def vars(self) -> set[str]:
        return {u.name for u in self.uses if u.kind == "var"}


def classify(pattern: Pattern, spec: TypeSpec, enums: Mapping[str, EnumDecl],
             is_var: Callable[[str], bool], index: int = -1) -> PatternInfo:
    """Classify the fields of ``pattern``. ``is_var(name)`` says whether a bare name is
    a variable bound before this point; an unbound bare name in an enum-typed field that
    names one of its members is that member, otherwise a variable."""
    uses: list[FieldUse] = []
    for fm in pattern.fields:
        name = fm.field.name
        if name not in spec.field_names:
            raise CompileError(f"{fm.field.span}: {spec.name} has no field {name!r}")
        pos = spec.position(name)
        value = fm.value
        if value is None:
            uses.append(FieldUse(pos, "var", name=name))
        elif isinstance(value, Wildcard):
            continue
        elif isinstance(value, Name):
            member = None if is_var(value.id) else enum_member(
                value.id, enums, spec.fields[pos].type
            ) if spec.fields[pos].type.base == "enum" else None
            if member is not None:
                uses.append(FieldUse(pos, "const", value=member))
            else:
                uses.append(FieldUse(pos, "var", name=value.id))
        elif isinstance(value, LiteralNode):
            uses.append(FieldUse(pos, "const", value=value.value))
        else:
            uses.append(FieldUse(pos, "expr", expr=value))
    return PatternInfo(pattern, spec, tuple(uses), index)


def names_in(expr: Expr | None) -> set[str]:
    """Every bare name an expression mentions (variables, binders, call results, and
    bare enum members — the caller intersects with what is bound), including the
    variables an aggregate's pattern names by field (``count(Quote(sku))``)."""
    out: set[str] = set()
    for e in walk_expr(expr) if expr is not None else ():
        if isinstance(e, Name):
            out.add(e.id)
        elif isinstance(e, Aggregate):
            out.update(fm.field.name for fm in e.pattern.fields if fm.value is None)
    return out


ROUTABLE = (str, int, float, bool)
"""The constants a pattern's new facts are routed by: values whose ``==`` is their
hash equality (what an index bucket lookup tests)."""


def routes(info: PatternInfo) -> list[FieldUse]:
    """The constant fields (first use per position, in position order) by which the new
    facts of ``info`` can be looked up in an index instead of scanned; empty when there
    are none, or when the pattern has an expression field (evaluated per fact, it may
    raise on a fact the constants would have skipped: routing must not change that)."""
    if any(u.kind == "expr" for u in info.uses):
        return []
    seen: dict[int, FieldUse] = {}
    for u in info.uses:
        if u.kind == "const" and type(u.value) in ROUTABLE:
            seen.setdefault(u.position, u)
    return [seen[p] for p in sorted(seen)]


def constrained(info: PatternInfo, bound: Collection[str],
                rule_names: Collection[str]) -> list[FieldUse]:
    """The fields of ``info`` that are equality constraints once ``bound`` names are
    bound: constants, bound variables, and expressions whose rule names are all bound.
    At most one use per position (the first), so the result can key an index."""
    out: list[FieldUse] = []
    seen: set[int] = set()
    for u in info.uses:
        if u.position in seen:
            continue
        ok = (
            u.kind == "const"
            or (u.kind == "var" and u.name in bound)
            or (u.kind == "expr" and (names_in(u.expr) & set(rule_names)) <= set(bound))
        )
        if ok:
            out.append(u)
            seen.add(u.position)
    return out


def plan_from(infos: list[PatternInfo], bound: Collection[str],
              rule_names: Collection[str]) -> list[int]:
    """The evaluation order of every pattern when ``bound`` names are bound before the
    first: greedily the pattern with the most constrained fields given what is bound
    so far (ties: written order). Deterministic."""
    order: list[int] = []
    known = set(bound)
    remaining = list(range(len(infos)))
    while remaining:
        best = max(remaining, key=lambda i: (len(constrained(infos[i], known, rule_names)), -i))
        order.append(best)
        remaining.remove(best)
        known |= infos[best].vars()
    return order


def plan_pass(infos: list[PatternInfo], delta: int, rule_names: Collection[str]) -> list[int]:
    """The evaluation order of one semi-naive pass: the delta pattern first, then
    greedily the pattern with the most constrained fields given what is bound so far
    (ties: written order). Deterministic."""
    order = [delta]
    bound = set(infos[delta].vars())
    remaining = [i for i in range(len(infos)) if i != delta]
    while remaining:
        best = max(remaining, key=lambda i: (
            len(constrained(infos[i], bound, rule_names)), -i))
        order.append(best)
        remaining.remove(best)
        bound |= infos[best].vars()
    return order
