"""Checks of ``one at a time`` agents (CVG303, CVG304).

A one-at-a-time agent fires one match per cycle: the first of its eligible matches in
the order it declares. Determinism rests on that order being total: two different
matches must never tie, whatever order the facts arrived in. The order is total when
its variables decide every fact of every positive pattern: a keyed fact is decided by
its key fields, an unkeyed fact by all its fields (a fact is its values), and a
pattern decided by the order decides the variables it binds in turn. ``earliest`` and
``latest`` (the age of the facts matched) decide every tie.

The match is chosen among those that would change the context, before anything of it
runs, so such an agent may not ``call`` a tool (a tool would be called for every
candidate) nor ``evaluate`` (an evaluation is not a fact it could see).
"""

from __future__ import annotations

from collections.abc import Mapping

from converge_rules.language.checks.scope import Reporter, Tables
from converge_rules.language.diagnostics.core import Severity, define
from converge_rules.language.diagnostics.suggest import did_you_mean
from converge_rules.language.syntax.nodes import (
    Agent,
    Evaluate,
    Expr,
    KeepAll,
    Literal,
    Name,
    Pattern,
    Policy,
    Wildcard,
    walk_expr,
)

_HEAD = ("ruleset r\nfact Guest { name: str, hobby: str }\n"
         "fact Seated { key name: str, seat: int }\n")

ORDER_NOT_TOTAL = define(
    "CVG303", "order-not-total", Severity.ERROR, "`one at a time` order that can tie",
    "A `one at a time` agent fires the first of its matches in the order it declares, so "
    "two different matches must never tie: the order's variables must decide every fact "
    "the agent matches (a keyed fact by its key fields, an unkeyed one by all its "
    "fields). Add the variables that tell the matches apart (bind a field to a name "
    "first if needed), or end the order with `then earliest` or `then latest` (by the age "
    "of the facts matched: `latest` prefers the match whose newest fact is newest), which "
    "decides every tie.",
    wrong=_HEAD + "agent seat one at a time by lowest name {\n"
          "  when Guest(name, hobby) and not Seated(name)\n"
          "  emit lasting Seated(name: name, seat: 1)\n}\n",
    right=_HEAD + "agent seat one at a time by lowest name, then lowest hobby {\n"
          "  when Guest(name, hobby) and not Seated(name)\n"
          "  emit lasting Seated(name: name, seat: 1)\n}\n",
)
BAD_ONE_AT_A_TIME = define(
    "CVG304", "bad-one-at-a-time", Severity.ERROR, "`one at a time` agent written wrongly",
    "`one at a time by lowest X, then highest Y` orders the matches by variables that the "
    "agent's positive patterns bind to `str`, `int`, `float`, `bool` or enum fields (enum "
    "members in declared order); `earliest` / `latest` may only come last. The match is "
    "chosen before anything of it runs, so such an agent cannot `call` a tool or "
    "`evaluate` a fact; split that part into an ordinary agent that reads what this one "
    "emits.",
    wrong=_HEAD + "agent seat one at a time by lowest seat {\n"
          "  when Guest(name) and not Seated(name)\n"
          "  emit lasting Seated(name: name, seat: 1)\n}\n",
    right=_HEAD + "agent seat one at a time by lowest name, then earliest {\n"
          "  when Guest(name) and not Seated(name)\n"
          "  emit lasting Seated(name: name, seat: 1)\n}\n",
)

_ORDERABLE = frozenset({"str", "int", "float", "bool"})


def check_one_at_a_time(tables: Tables, agents: tuple[Agent, ...],
                        policies: Mapping[str, Policy], report: Reporter) -> None:
    """Report, for every ``one at a time`` agent, order keys that are not orderable
    variables of its match, a ``call`` or ``evaluate`` in it, and an order that two
    different matches could tie on (with the variables that would settle it)."""
    for a in agents:
        one = a.one_at_a_time
        if one is None:
            continue
        bound = _variables(tables, a)
        ok = True
        for i, key in enumerate(one.keys):
            if key.var is None:
                if i != len(one.keys) - 1:
                    report.error(BAD_ONE_AT_A_TIME, key.span,
                                 f"`{key.direction}` decides every tie, so nothing may "
                                 "come after it in the order",
                                 f"move `{key.direction}` to the end of the order")
                    ok = False
                continue
            name = key.var.name
            ty = bound.get(name)
            if ty is None:
                report.error(BAD_ONE_AT_A_TIME, key.var.span,
                             f"`{name}` is not a variable of `{a.name.name}`'s match",
                             did_you_mean(name, sorted(bound), otherwise=(
                                 "order by a variable a positive `when` pattern binds: "
                                 + (", ".join(f"`{v}`" for v in sorted(bound))
                                    or "bind one first, e.g. `T(field: x)`"))))
                ok = False
            elif ty is not True:
                report.error(BAD_ONE_AT_A_TIME, key.var.span,
                             f"`{name}` is a {ty}: matches cannot be ordered by it",
                             "order by a `str`, `int`, `float`, `bool` or enum variable")
                ok = False
        for c in a.calls:
            report.error(BAD_ONE_AT_A_TIME, c.span,
                         f"`one at a time` agent `{a.name.name}` calls a tool",
                         "the match is chosen before anything of it runs: move the call "
                         "to an ordinary agent that reads what this one emits")
        for out in a.outputs:
            if isinstance(out, Evaluate):
                report.error(BAD_ONE_AT_A_TIME, out.span,
                             f"`one at a time` agent `{a.name.name}` evaluates a fact",
                             "a firing must change the context; move the evaluation to "
                             "an ordinary agent")
        if ok:
            _check_total(tables, a, policies, report)


def _variables(tables: Tables, a: Agent) -> dict[str, bool | str]:
    """Variables the positive patterns bind: True when orderable, else the type's text."""
    out: dict[str, bool | str] = {}
    for p in a.patterns:
        if p.negated:
            continue
        for fm in p.fields:
            name = _bound_name(tables, p, fm.field.name, fm.value)
            if name is None or name in out:
                continue
            decl = tables.field_of(p.type.name, fm.field.name)
            if decl is None:
                continue
            t = decl.type
            orderable = not t.optional and not t.args and (
                t.name in _ORDERABLE or t.name in tables.enums)
            out[name] = True if orderable else (t.name + ("?" if t.optional else "")
                                                if not t.args else "list")
    return out


def _bound_name(tables: Tables, p: Pattern, field: str, value: Expr | None) -> str | None:
    """The variable a pattern field binds or joins on, or None (a constant, an
    expression)."""
    if value is None:
        return field
    if not isinstance(value, Name):
        return None
    decl = tables.field_of(p.type.name, field)
    enum = tables.enums.get(decl.type.name) if decl is not None else None
    if enum is not None and any(m.name == value.id for m in enum.members):
        return None
    return value.id


def _check_total(tables: Tables, a: Agent, policies: Mapping[str, Policy],
                 report: Reporter) -> None:
    one = a.one_at_a_time
    assert one is not None
    if any(k.var is None for k in one.keys):
        return  # earliest / latest settle every tie
    decided = {k.var.name for k in one.keys if k.var is not None}
    positive = [p for p in a.patterns if not p.negated]
    # a whole-fact binder (`a.x` in a later pattern) is decided with its pattern
    variables = set(_variables(tables, a)) | {p.binder.name for p in positive if p.binder}
    open_patterns = list(positive)
    progress = True
    while open_patterns and progress:
        progress = False
        for p in list(open_patterns):
            if _undecided_fields(tables, p, decided, variables, policies):
                continue
            open_patterns.remove(p)
            progress = True
            if p.binder is not None:
                decided.add(p.binder.name)
            for fm in p.fields:
                name = _bound_name(tables, p, fm.field.name, fm.value)
                if name is not None:
                    decided.add(name)
    if not open_patterns:
        return
    p = open_patterns[0]
    missing = _undecided_fields(tables, p, decided, variables, policies)
    written = {fm.field.name: fm.value for fm in p.fields}
    suggestions: list[str] = []
    for f in missing:
        name = _bound_name(tables, p, f, written[f]) if f in written else None
        if name is not None:
            suggestions.append(f"`then lowest {name}`")
        else:
            suggestions.append(f"bind `{f}` (`{p.type.name}(…, {f}: x)`) and order by "
                               "it (`then lowest x`)")
    report.error(
        ORDER_NOT_TOTAL, one.span,
        f"two matches of `{a.name.name}` can tie on this order: they may differ only in "
        f"{p.type.name}'s " + ", ".join(f"`{f}`" for f in missing),
        "; ".join(s if s.startswith("bind") else f"add {s}" for s in suggestions)
        + ", or end the order with `then earliest` "
        "(or `then latest`), which decides every tie by the age of the facts matched")


def _undecided_fields(tables: Tables, p: Pattern, decided: set[str], variables: set[str],
                      policies: Mapping[str, Policy]) -> list[str]:
    """The fields of ``p`` that must be decided for its fact to be, and are not."""
    decl = tables.facts.get(p.type.name)
    if decl is None:
        return []
    policy = policies.get(p.type.name)
    keep_all = policy is not None and isinstance(policy.strategy, KeepAll)
    keys = [f.name.name for f in decl.fields if f.key] if not keep_all else []
    needed = keys or [f.name.name for f in decl.fields]
    written = {fm.field.name: fm.value for fm in p.fields}
    out: list[str] = []
    for f in needed:
        if f not in written:
            out.append(f)
            continue
        value = written[f]
        if isinstance(value, Wildcard):
            out.append(f)  # `_` matches any value: it decides nothing
            continue
        name = _bound_name(tables, p, f, value)
        if name is not None:
            if name not in decided:
                out.append(f)
        elif value is not None and not _decided_expr(value, decided, variables):
            out.append(f)
    return out


def _decided_expr(e: Expr, decided: set[str], variables: set[str]) -> bool:
    """An expression is decided when every variable of the match in it is (literals
    and enum members always are)."""
    if isinstance(e, Literal):
        return True
    return all(x.id in decided for x in walk_expr(e)
               if isinstance(x, Name) and x.id in variables)
