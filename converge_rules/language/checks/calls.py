"""Typing of function calls and aggregates (built-in and plugin functions; ``count``,
``sum``, ``min``, ``max``, ``mean`` over a pattern)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from converge_rules.language.builtins import (
    BUILTINS,
    FIXED_DIGITS,
    TimeError,
    parse_date,
    parse_datetime,
    pattern_problem,
)
from converge_rules.language.checks.scope import TYPE_MISMATCH, UNKNOWN_FIELD, Scope
from converge_rules.language.checks.types import ANY, BOOL, FLOAT, INT, STR, Ty
from converge_rules.language.diagnostics.core import Severity, define
from converge_rules.language.syntax.nodes import Aggregate, FuncCall, Literal, Unary

if TYPE_CHECKING:
    from converge_rules.language.checks.exprs import Typer

_FACTS = "fact Cost { key sku: str, amount: float }\nfact Price { key sku: str, amount: float }\n"


def _agent(body: str) -> str:
    return "ruleset r\n" + _FACTS + "agent a {\n" + body + "}\n"


AGGREGATE_FIELD = define(
    "CVG206", "aggregate-field", Severity.ERROR, "Aggregate over a non-numeric field",
    "`sum`, `min`, `max` and `mean` need a numeric (`int` or `float`) field; `min` and "
    "`max` also take a date, datetime or duration field (the earliest or latest).",
    wrong="ruleset r\nfact Quote { sku: str, vendor: str, amount: float }\n"
          "fact Best { key sku: str, amount: float }\nagent a tier 2 {\n  when Quote(sku)\n"
          "  emit Best(sku: sku, amount: min(Quote(sku), vendor))\n}\n"
          "agent b {\n  when Quote(sku, amount)\n  emit Best(sku: sku, amount: amount)\n}\n"
          "policy Best { resolve by lowest amount }\n",
    right="ruleset r\nfact Quote { sku: str, vendor: str, amount: float }\n"
          "fact Best { key sku: str, amount: float }\nagent a tier 2 {\n  when Quote(sku)\n"
          "  emit Best(sku: sku, amount: min(Quote(sku), amount))\n}\n"
          "agent b {\n  when Quote(sku, amount)\n  emit Best(sku: sku, amount: amount)\n}\n"
          "policy Best { resolve by lowest amount }\n",
)
UNKNOWN_FUNCTION = define(
    "CVG802", "unknown-function", Severity.ERROR, "Unknown function",
    "An expression calls a function that is neither a built-in (`round abs min max len "
    "lower upper contains startswith endswith matches date datetime now today str "
    "fixed`) nor registered by a plugin.",
    wrong=_agent("  when Cost(sku, amount)\n  emit Price(sku: sku, amount: rnd(amount, 2))\n"),
    right=_agent("  when Cost(sku, amount)\n  emit Price(sku: sku, amount: round(amount, 2))\n"),
)
BAD_PATTERN = define(
    "CVG213", "bad-pattern", Severity.ERROR, "Not a valid regular expression",
    "The pattern given to `matches` is a literal that RE2 (the linear-time engine "
    "`matches` uses) cannot compile. At run time every match of the agent would fail.",
    wrong=_agent('  when Cost(sku, amount) where matches(sku, "[A-Z")\n'
                 "  emit Price(sku: sku, amount: amount)\n"),
    right=_agent('  when Cost(sku, amount) where matches(sku, "[A-Z]")\n'
                 "  emit Price(sku: sku, amount: amount)\n"),
)
ARG_COUNT = define(
    "CVG803", "argument-count", Severity.ERROR, "Wrong number of arguments",
    "A function is called with more or fewer arguments than it takes.",
    wrong=_agent("  when Cost(sku, amount)\n  emit Price(sku: sku, amount: abs(amount, 2))\n"),
    right=_agent("  when Cost(sku, amount)\n  emit Price(sku: sku, amount: abs(amount))\n"),
)

BAD_CONSTANT_ARG = define(
    "CVG230", "bad-constant-argument", Severity.ERROR,
    "A built-in given a constant it cannot take",
    "`date(…)` and `datetime(…)` read ISO 8601 text (`date(\"2026-12-06\")`, "
    "`datetime(\"2026-12-06T10:00:00Z\")`: a datetime needs `Z` or an offset), and "
    f"`fixed(x, n)` writes 0 to {FIXED_DIGITS} digits. A constant argument is checked "
    "here; at run time every match of the agent would fail.",
    wrong="ruleset r\nfact Claim { key id: str, due: date }\nfact Late { key id: str }\n"
          "agent a {\n  when Claim(id, due) where due < date(\"2026-13-01\")\n"
          "  emit Late(id: id)\n}\n",
    right="ruleset r\nfact Claim { key id: str, due: date }\nfact Late { key id: str }\n"
          "agent a {\n  when Claim(id, due) where due < date(\"2026-12-01\")\n"
          "  emit Late(id: id)\n}\n",
)
NOT_TEXT = define(
    "CVG231", "no-text-form", Severity.ERROR, "`str` of a value without a text form",
    "`str(x)` writes a number, bool, str, enum member, date, datetime or duration; a "
    "list, a tool result or a whole fact has no single text form.",
    wrong="ruleset r\nfact Bag { key id: str, items: list[str] }\n"
          "fact Note { key id: str, text: str }\n"
          "agent a {\n  when Bag(id, items)\n  emit Note(id: id, text: str(items))\n}\n",
    right="ruleset r\nfact Bag { key id: str, items: list[str] }\n"
          "fact Note { key id: str, text: str }\n"
          "agent a {\n  when Bag(id, items)\n"
          "  emit Note(id: id, text: str(len(items)) + \" items\")\n}\n",
)


def call_type(typer: Typer, e: FuncCall, scope: Scope) -> Ty:
    """The type of a built-in or plugin function call, checking its arguments."""
    sig = typer.t.functions.get(e.func.name)
    if sig is None:
        name = e.func.name
        if name in typer.t.facts:  # a pattern written where an expression stands
            typer.r.error(UNKNOWN_FUNCTION, e.func.span,
                          f"`{name}` is a fact type, not a function",
                          f"to require that no {name} matches, write `and not {name}(…)` "
                          f"in `when`, or `count({name}(…)) == 0` in `where`")
            return ANY
        for a in e.args:
            typer.infer(a, scope)
        typer.r.error(UNKNOWN_FUNCTION, e.func.span, f"unknown function `{name}`",
                     typer.t.vocabulary("functions").did_you_mean(
                         name, otherwise=lambda: "built-ins: " + ", ".join(
                             sorted(typer.t.functions))))
        return ANY
    builtin = BUILTINS.get(sig.name)
    if builtin is not None and builtin.signature.args != sig.args:
        builtin = None  # a function passed in by the caller under a built-in's name
    if builtin is not None and sig.name in _COLLECTION_ARG:
        special = _collection_call(typer, e, scope)
        if special is not None:
            return special
    want = list(sig.args)
    n = len(e.args)
    if sig.variadic and want and n > len(want):
        want += [want[-1]] * (n - len(want))
    fewest = len(want)
    if builtin is not None and builtin.min_args is not None:
        fewest = builtin.min_args
    if not fewest <= n <= len(want):
        least = "at least " if sig.variadic else ""
        count = f"{fewest} or {len(sig.args)}" if fewest < len(sig.args) \
            else f"{least}{len(sig.args)}"
        typer.r.error(ARG_COUNT, e.span,
                     f"`{sig.name}` takes {count} argument"
                     f"{'s' if len(sig.args) != 1 else ''}, given {n}",
                     f"call it as {sig.name}({', '.join(sig.args)})")
    floats = False
    for arg, ty_text in zip(e.args, want, strict=False):
        ty = typer.expect(arg, scope, typer.of_text(ty_text), f"argument of `{sig.name}`")
        if ty_text == "number" and ty.kind in ("float", "any"):
            floats = True
    for arg in e.args[len(want):]:
        typer.infer(arg, scope)
    if builtin is not None and len(e.args) == len(want):
        _constant_args(typer, e)
    if builtin is not None and sig.name == "matches" and len(e.args) == 2:
        pattern = e.args[1]
        if isinstance(pattern, Literal) and isinstance(pattern.value, str):
            problem = pattern_problem(pattern.value)
            if problem is not None:
                typer.r.error(BAD_PATTERN, pattern.span, problem,
                              "fix the regular expression (RE2 syntax: no backreferences "
                              "or lookaround)")
    if sig.result == "number":
        return FLOAT if floats else INT
    return typer.of_text(sig.result)

_COLLECTION_ARG = ("len", "contains", "min", "max", "str")


def _constant_args(typer: Typer, e: FuncCall) -> None:
    """Check the constant arguments of ``date``, ``datetime`` and ``fixed`` as a run
    would (CVG230)."""
    name = e.func.name
    arg = e.args[-1] if e.args else None
    if name in ("date", "datetime") and isinstance(arg, Literal) \
            and isinstance(arg.value, str):
        try:
            (parse_date if name == "date" else parse_datetime)(arg.value)
        except TimeError as exc:
            said, _, help = str(exc).partition(": ")
            typer.r.error(BAD_CONSTANT_ARG, arg.span, said, help)
    if name == "fixed":
        digits = arg.operand if isinstance(arg, Unary) and arg.op == "-" else arg
        if isinstance(digits, Literal) and type(digits.value) is int:
            value = -digits.value if digits is not arg else digits.value
            if not 0 <= value <= FIXED_DIGITS:
                assert arg is not None
                typer.r.error(BAD_CONSTANT_ARG, arg.span,
                              f"fixed() writes 0 to {FIXED_DIGITS} digits after the "
                              f"point, not {value}", "give a number of digits from 0 to "
                              f"{FIXED_DIGITS}; use round() to round to tens or more")


def _collection_call(typer: Typer, e: FuncCall, scope: Scope) -> Ty | None:
    """Built-ins that also take a list: ``len(s_or_list)``, ``contains(list, x)``,
    ``min(list)``/``max(list)``. None when the call is the ordinary form."""
    name = e.func.name
    if name in ("min", "max", "str") and len(e.args) != 1:
        return None
    if name == "contains" and len(e.args) != 2:
        return None
    if name == "len" and len(e.args) != 1:
        return None
    first = typer.infer(e.args[0], scope)
    if first.is_any:
        for a in e.args[1:]:
            typer.infer(a, scope)
        return (INT if name == "len" else BOOL if name == "contains"
                else STR if name == "str" else ANY)
    if name == "str":
        if first.kind in ("list", "record", "fact"):
            typer.r.error(NOT_TEXT, e.args[0].span,
                          f"`str` cannot write a value of type {first}",
                          "write one of its parts (`str(len(items))`, `str(x.field)`)")
        return STR
    if name == "len":
        if first.kind not in ("str", "list"):
            _wrong_arg(typer, e, first, "a str or a list")
        return INT
    if name == "contains":
        if first.kind == "list" and first.elem is not None:
            typer.expect(e.args[1], scope, first.elem, "the value looked for by `contains`")
            return BOOL
        if first.kind != "str":
            _wrong_arg(typer, e, first, "a str or a list")
        typer.expect(e.args[1], scope, STR, "the text looked for by `contains`")
        return BOOL
    if first.kind == "list" and first.elem is not None and first.elem.is_numeric:
        return first.elem.required() if not first.elem.is_any else ANY
    _wrong_arg(typer, e, first, "a list of numbers (or two or more numbers)")
    return ANY


def _wrong_arg(typer: Typer, e: FuncCall, got: Ty, want: str) -> None:
    typer.r.error(TYPE_MISMATCH, e.args[0].span,
                  f"argument of `{e.func.name}` must be {want}, found {got}",
                  f"pass {want}")


def aggregate_type(typer: Typer, e: Aggregate, scope: Scope) -> Ty:
    """The type of ``count/sum/min/max/mean(P[, field])``; P's variables stay local."""
    with scope.local() as inner:
        typer.pattern(e.pattern, inner, "bind")
    if e.field is None:
        return INT
    decl = typer.t.field_of(e.pattern.type.name, e.field.name)
    if decl is None:
        if e.pattern.type.name in typer.t.facts:
            typer.r.error(UNKNOWN_FIELD, e.field.span,
                         f"{e.pattern.type.name} has no field `{e.field.name}`",
                         typer.t.field_help(e.pattern.type.name, e.field.name))
        return FLOAT if e.func == "mean" else ANY
    ty = typer.of_field(decl)
    if e.func in ("min", "max") and ty.kind in ("date", "datetime", "duration"):
        return ty.required()  # the earliest or latest, the shortest or longest
    if not ty.is_numeric:
        typer.r.error(AGGREGATE_FIELD, e.field.span,
                     f"`{e.func}` needs a numeric field; `{e.field.name}` is {ty}",
                     "aggregate over an int or float field (`min`/`max` also over a "
                     "date, datetime or duration field), or use `count`")
        return ANY
    if e.func == "mean":
        return FLOAT
    return ty.required()

