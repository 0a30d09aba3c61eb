"""The types a table test's row values must have, from how the test's steps use them.

The checker types a ``cases "rows.csv"`` fixture's columns ``any``: their values are
known only when the test runs. So before a row runs, each of its values is checked
against every place the test uses its variable: a ``given`` field, an ``expect``
pattern field, a mocked tool's argument or result field, an argument of a function, an
operand of arithmetic (``s * k`` needs two numbers: a string there would make Python
repeat it ``k`` times). A value that does not fit fails that case, naming the row and
the column, before anything is evaluated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from converge_rules.language.builtins import (
    TIME_KINDS,
    TimeError,
    parse_date,
    parse_datetime,
    parse_duration,
    read_time,
    time_kind,
)
from converge_rules.language.checks.checked import CheckedRuleset
from converge_rules.language.checks.types import (
    ANY,
    BOOL,
    DATETIME,
    DURATION,
    INT,
    NUMBER,
    PRIMITIVES,
    Ty,
    enum_ty,
    from_text,
    list_of,
)
from converge_rules.language.syntax import nodes as n

# An operand of `+`/`-` whose result is a time value: `due - start` (a duration) takes
# two dates, `due + grace` (a date) a date and a duration; any time value fits.
_SOME_TIME = Ty("date, datetime or duration")
_PARSE = {"date": parse_date, "datetime": parse_datetime, "duration": parse_duration}


@dataclass(frozen=True, slots=True)
class Use:
    """One place a variable is used, and the type that place needs."""

    ty: Ty
    where: str


def variable_uses(test: n.Test, checked: CheckedRuleset) -> dict[str, list[Use]]:
    """For each variable name the test's steps use where a type is known, those uses."""
    walker = _Walker(checked)
    for step in test.steps:
        if isinstance(step, n.Given):
            for arg in step.args:
                walker.expr(arg.value, walker.field(step.type.name, arg.name.name),
                            f"field `{step.type.name}.{arg.name.name}`")
        elif isinstance(step, n.ExpectFact | n.ExpectConflict):
            walker.pattern(step.pattern)
        elif isinstance(step, n.Mock):
            walker.mock(step)
        elif isinstance(step, n.GivenNow):
            walker.expr(step.value, DATETIME, "the time of `given now`")
    return walker.uses


def row_problems(bindings: Mapping[str, Any], uses: Mapping[str, Sequence[Use]],
                 enums: Mapping[str, Sequence[str]]) -> list[str]:
    """What is wrong with a row's values (one line per column that does not fit, in
    column order); empty when every value fits every use of its variable."""
    problems = []
    for name, value in bindings.items():
        for use in uses.get(name, ()):
            if not fits(value, use.ty, enums):
                problems.append(f"column `{name}` is {_shown(value)} ({_kind(value)}), but "
                                f"the test uses `{name}` as {use.where}, which needs {use.ty}"
                                + _why_not_time(value, use.ty))
                break
    return problems


def texts_where_text(bindings: Mapping[str, Any], uses: Mapping[str, Sequence[Use]],
                     texts: Mapping[str, str]) -> dict[str, Any]:
    """A row with each CSV cell that read as a number or a bool (``texts``: the cells
    as written) but that the test uses only as text — a ``str`` field, a string
    argument — as the text written: a code ``007`` stays ``"007"``, as a ``str`` field
    of an input fact's CSV reads it. A CSV cell cannot say it is text otherwise."""
    row = dict(bindings)
    for name, text in texts.items():
        kinds = {use.ty.kind for use in uses.get(name, ())}
        if kinds == {"str"}:
            row[name] = text
    return row


def fits(value: Any, ty: Ty, enums: Mapping[str, Sequence[str]]) -> bool:
    """Whether a row value may stand where ``ty`` is needed. None (an empty cell) fits
    anywhere: what a missing value means is the step's business, as in a ``given``."""
    if ty.is_any or value is None:
        return True
    kind = ty.kind
    if kind == "bool":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False  # true is not 1 in the language
    if kind == "int":
        return isinstance(value, int)
    if kind in ("float", "number"):
        return isinstance(value, int | float)
    if kind in TIME_KINDS:  # ISO 8601 text in a cases file, or a value from a literal
        return kind in (time_kind(value), time_kind(time_value(value)))
    if kind == _SOME_TIME.kind:
        return time_kind(value) is not None or time_value(value) is not None
    if kind == "str":
        return isinstance(value, str)
    if kind == "enum":
        return isinstance(value, str) and value in enums.get(ty.name, ())
    if kind == "list":
        return isinstance(value, list | tuple) and all(
            fits(item, ty.elem or ANY, enums) for item in value)
    if kind == "record":
        return isinstance(value, Mapping)
    return True


def _why_not_time(value: Any, ty: Ty) -> str:
    """Why text is not the date, datetime or duration ``ty`` needs (its parse error,
    after a colon), or nothing."""
    parse = _PARSE.get(ty.kind)
    if parse is None or not isinstance(value, str):
        return ""
    try:
        parse(value)
    except TimeError as exc:
        return f": {exc}"
    return ""


def time_value(text: Any) -> Any:
    """The date, datetime or duration ISO 8601 ``text`` names, or None."""
    value = read_time(text)
    return value if time_kind(value) is not None else None


def timed_row(bindings: Mapping[str, Any], uses: Mapping[str, Sequence[Use]]
              ) -> dict[str, Any]:
    """A row with the ISO 8601 text of every column the test uses as a date, datetime
    or duration read into that value (a cases file holds text; the test computes with
    the values). Call it on a row :func:`row_problems` found nothing wrong with."""
    row = dict(bindings)
    for name, value in bindings.items():
        if isinstance(value, str) and any(u.ty.kind in TIME_KINDS for u in uses.get(name, ())):
            timed = time_value(value)
            if timed is not None:
                row[name] = timed
    return row


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a bool"
    if isinstance(value, int):
        return "an int"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a str"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def _shown(value: Any) -> str:
    """A value as a message quotes it: short, on one line."""
    text = repr(value) if isinstance(value, str) else str(value)
    text = text.encode("unicode_escape").decode("ascii") if not text.isprintable() else text
    return text if len(text) <= 40 else text[:37] + "…"


class _Walker:
    """Collects the uses of variables, walking expressions with the type each place
    needs (``None``: nothing known)."""

    def __init__(self, checked: CheckedRuleset) -> None:
        self.checked = checked
        self.enums = set(checked.enums)
        self.uses: dict[str, list[Use]] = {}

    def field(self, type_name: str, field_name: str) -> Ty | None:
        decl = self.checked.facts.get(type_name)
        for f in getattr(decl, "fields", ()):
            if f.name.name == field_name:
                return self.of_ref(f.type)
        return None

    def of_ref(self, ref: n.TypeRef) -> Ty:
        if ref.name == "list" and ref.args:
            ty = list_of(self.of_ref(ref.args[0]))
        elif ref.name in PRIMITIVES:
            ty = Ty(ref.name)
        elif ref.name in self.enums:
            ty = enum_ty(ref.name)
        else:
            return ANY
        return replace(ty, optional=True) if ref.optional else ty

    def text(self, type_text: str | None) -> Ty | None:
        return None if type_text is None else from_text(type_text, self.enums)

    def pattern(self, pattern: n.Pattern) -> None:
        for fm in pattern.fields:
            want = self.field(pattern.type.name, fm.field.name)
            where = f"field `{pattern.type.name}.{fm.field.name}`"
            if fm.value is None:  # `Price(sku)`: the variable named as the field
                self.use(fm.field.name, want, where)
            elif not isinstance(fm.value, n.Wildcard):
                self.expr(fm.value, want, where)

    def mock(self, mock: n.Mock) -> None:
        sig = self.checked.tools.get(mock.tool.name)
        for arg in mock.args:
            want = self.text(sig.args.get(arg.name.name)) if sig is not None else None
            self.expr(arg.value, want, f"argument `{arg.name.name}` of tool "
                                       f"`{mock.tool.name}`")
        if isinstance(mock.returns, n.Record):
            for arg in mock.returns.fields:
                want = self.text(sig.result.get(arg.name.name)) if sig is not None else None
                self.expr(arg.value, want, f"result field `{arg.name.name}` of tool "
                                           f"`{mock.tool.name}`")
        elif mock.returns is not None:
            self.expr(mock.returns, None, "")

    def use(self, name: str, want: Ty | None, where: str) -> None:
        if want is not None and not want.is_any:
            self.uses.setdefault(name, []).append(Use(want, where))

    def expr(self, e: n.Expr, want: Ty | None, where: str) -> None:
        if isinstance(e, n.Name):
            self.use(e.id, want, where)
        elif isinstance(e, n.Unary):
            if e.op == "not":
                self.expr(e.operand, BOOL, "the operand of `not`")
            else:  # a number, or a duration when a time value is wanted
                timed = want is not None and want.required().kind in ("duration",
                                                                      _SOME_TIME.kind)
                self.expr(e.operand, DURATION if timed else NUMBER, "the operand of `-`")
        elif isinstance(e, n.Binary):
            self.binary(e, want)
        elif isinstance(e, n.IfExpr):
            self.expr(e.condition, BOOL, "the condition of `if`")
            self.expr(e.then, want, where)
            self.expr(e.otherwise, want, where)
        elif isinstance(e, n.ListExpr):
            elem = want.elem if want is not None and want.kind == "list" else None
            for item in e.items:
                self.expr(item, elem, f"an item of a list for {where}")
        elif isinstance(e, n.FuncCall):
            self.call(e)
        elif isinstance(e, n.Record):
            for arg in e.fields:
                inner = want.field(arg.name.name) if want is not None else None
                self.expr(arg.value, inner, where)

    def binary(self, e: n.Binary, want: Ty | None) -> None:
        op = e.op
        operand = f"an operand of `{op}`"
        if op in ("and", "or"):
            sides: Ty | None = BOOL
        elif want is not None and want.required().kind in (*TIME_KINDS, _SOME_TIME.kind):
            # a date minus a date, a date plus a duration: time values on both sides;
            # a duration times a number: anything
            sides = _SOME_TIME if op in ("+", "-") else None
        elif op in ("*", "/", "%"):
            sides = INT if want is not None and want.required().kind == "int" and op != "/" \
                else NUMBER
        elif op == "-":
            sides = NUMBER
        elif op == "+":
            kind = want.required().kind if want is not None else ""
            sides = want.required() if want is not None and kind in (
                "str", "list", "int") else NUMBER if kind in ("float", "number") else None
        else:  # comparisons and `in`: any two values of one type
            sides = None
        self.expr(e.left, sides, operand)
        self.expr(e.right, sides, operand)

    def call(self, e: n.FuncCall) -> None:
        sig = self.checked.functions.get(e.func.name)
        args = list(getattr(sig, "args", ()))
        if sig is not None and getattr(sig, "variadic", False) and args:
            args += [args[-1]] * max(0, len(e.args) - len(args))
        for index, arg in enumerate(e.args):
            want = self.text(args[index]) if index < len(args) else None
            self.expr(arg, want, f"argument {index + 1} of `{e.func.name}`")
