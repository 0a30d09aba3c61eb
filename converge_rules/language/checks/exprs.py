"""Typing of expressions and patterns.

:class:`Typer` gives every expression a :class:`Ty`, reporting each mistake once (an
expression with an error has type ``any`` so it does not cascade), and checks patterns,
binding their variables into a :class:`Scope`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal as Lit

from converge_rules.language.builtins import CLOCK_BUILTINS, TIME_FIELDS, TIME_KINDS, TIME_OPS
from converge_rules.language.checks.calls import aggregate_type, call_type
from converge_rules.language.checks.scope import (
    DUPLICATE_ARG,
    NEGATED_BINDER,
    SHADOWING,
    TYPE_MISMATCH,
    UNKNOWN_FIELD,
    UNKNOWN_MEMBER,
    UNKNOWN_NAME,
    UNKNOWN_TYPE,
    USED_BEFORE_BOUND,
    Binding,
    Reporter,
    Scope,
    Tables,
)
from converge_rules.language.checks.types import (
    ANY,
    BOOL,
    DURATION,
    FLOAT,
    INT,
    PRIMITIVES,
    STR,
    Ty,
    arithmetic,
    assignable,
    comparable,
    enum_ty,
    fact_ty,
    from_text,
    list_of,
    orderable,
    unify,
)
from converge_rules.language.diagnostics.core import Related, Severity, define
from converge_rules.language.diagnostics.suggest import closest, did_you_mean
from converge_rules.language.syntax.nodes import (
    Aggregate,
    Arg,
    Attribute,
    Binary,
    Duration,
    Expr,
    FieldDecl,
    FieldMatch,
    FuncCall,
    IfExpr,
    ListExpr,
    Literal,
    Name,
    Pattern,
    Record,
    TypeRef,
    Unary,
    Wildcard,
)
from converge_rules.language.syntax.span import Span

_FACTS = "fact Cost { key sku: str, amount: float }\nfact Price { key sku: str, amount: float }\n"


def _agent(body: str) -> str:
    return "ruleset r\n" + _FACTS + "agent a {\n" + body + "}\n"


# Words users write for "no value"; the language has no such literal.
NONE_WORDS = frozenset({"none", "None", "null", "nil", "NULL"})

NONE_AS_VARIABLE = define(
    "CVG116", "none-as-variable", Severity.ERROR, "`none` written where a pattern binds a name",
    "In a pattern, a bare name that is not yet bound binds a new variable, which matches "
    "any value. `none`, `null` or `nil` there would silently match every fact, not the "
    "facts whose field is none: the language has no literal for none and no test for it. "
    "Match the field against `_` (any value) or leave it out; give the field a default "
    "in its declaration if 'none' is a state the rules must tell apart.",
    wrong="ruleset r\nfact Claim { key id: str, note: str? }\nfact Bare { key id: str }\n"
          "agent a {\n  when Claim(id, note: none)\n  emit Bare(id: id)\n}\n",
    right="ruleset r\nfact Claim { key id: str, note: str = \"\" }\n"
          "fact Bare { key id: str }\n"
          "agent a {\n  when Claim(id, note: \"\")\n  emit Bare(id: id)\n}\n",
)

NOT_BOOL = define(
    "CVG202", "condition-not-bool", Severity.ERROR, "Condition is not a bool",
    "A `where` guard or a `prune … when` condition must be true or false.",
    wrong=_agent("  when Cost(sku, amount) where amount\n"
                 "  emit Price(sku: sku, amount: amount)\n"),
    right=_agent("  when Cost(sku, amount) where amount > 0\n"
                 "  emit Price(sku: sku, amount: amount)\n"),
)
BAD_OPERAND = define(
    "CVG203", "bad-operand", Severity.ERROR, "Operator applied to the wrong types",
    "Arithmetic needs numbers (`+` also joins strings; dates, datetimes and durations "
    "combine as the language reference lists: `due - today()` is a duration, `today() + "
    "30d` a date), `< <= > >=` need two numbers, two strings, or two values of one time "
    "type, `==`/`!=` need comparable values, `and or not` need bools, `x in L` needs a "
    "list of x's type (or two strings).",
    wrong=_agent('  when Cost(sku, amount) where amount > "10"\n'
                 "  emit Price(sku: sku, amount: amount)\n"),
    right=_agent("  when Cost(sku, amount) where amount > 10\n"
                 "  emit Price(sku: sku, amount: amount)\n"),
)
NO_FIELDS = define(
    "CVG204", "no-fields", Severity.ERROR, "Field access on a value without fields",
    "`x.field` works on a whole-fact binder (`p: Price(…)`), a call result "
    "(`call t(…) as x`) or an enum (`Channel.web`), not on a plain value.",
    wrong=_agent("  when Cost(sku, amount)\n  emit Price(sku: sku, amount: amount.value)\n"),
    right=_agent("  when c: Cost(sku)\n  emit Price(sku: sku, amount: c.amount)\n"),
)
PATTERN_KIND = define(
    "CVG205", "pattern-kind", Severity.ERROR, "Intent pattern on a fact type, or the reverse",
    "`intent T(…)` matches open intents, so T must be declared with `intent`; a plain "
    "pattern must name a `fact` type.",
    wrong="ruleset r\nintent NeedRate { currency: str }\nfact Rate { key currency: str }\n"
          "agent a {\n  when NeedRate(currency)\n  emit Rate(currency: currency)\n}\n",
    right="ruleset r\nintent NeedRate { currency: str }\nfact Rate { key currency: str }\n"
          "agent a {\n  when intent NeedRate(currency)\n  emit Rate(currency: currency)\n}\n",
)
MEMBER_TYPO = define(
    "CVG117", "member-typo", Severity.WARNING,
    "A new variable in an enum field, spelt like a member",
    "In a pattern, a bare name that is neither bound yet nor a member of the field's "
    "enum binds a new variable, which matches any member. Spelt like a member "
    "(`aproved` for `approved`) and used nowhere else in the agent, it is most likely a "
    "typo that makes the pattern match every fact — `count(Claim(status: aproved))` "
    "counts every claim. Write the member, or `_` for any value.",
    wrong="ruleset r\nenum Status { approved, denied }\nfact Claim { key id: str, status: "
          "Status }\nfact Paid { key id: str }\n"
          "agent a {\n  when Claim(id, status: aproved)\n  emit Paid(id: id)\n}\n",
    right="ruleset r\nenum Status { approved, denied }\nfact Claim { key id: str, status: "
          "Status }\nfact Paid { key id: str }\n"
          "agent a {\n  when Claim(id, status: approved)\n  emit Paid(id: id)\n}\n",
)

FACT_AS_VALUE = define(
    "CVG210", "fact-as-value", Severity.ERROR, "A whole fact used as a value",
    "A name bound with `p: Type(…)` stands for the whole fact: use it as `p.field` or in "
    "`evaluate p`, not as a value.",
    wrong=_agent("  when c: Cost(sku)\n  emit Price(sku: sku, amount: c)\n"),
    right=_agent("  when c: Cost(sku)\n  emit Price(sku: sku, amount: c.amount)\n"),
)

Mode = Lit["bind", "expect"]


class Typer:
    """Types expressions and checks patterns against the ruleset's tables."""

    def __init__(self, tables: Tables, report: Reporter) -> None:
        self.t = tables
        self.r = report
        #: new variables in enum fields spelt like a member: (name, span, enum, member);
        #: an agent warns of those it uses nowhere else (:data:`MEMBER_TYPO`)
        self.member_typos: list[tuple[str, Span, str, str]] = []

    # ------------------------------------------------------------------ declared types

    def of_ref(self, ref: TypeRef) -> Ty:
        """The type a declaration names; ``any`` (unreported) when it names nothing."""
        if ref.name == "list" and ref.args:
            ty = list_of(self.of_ref(ref.args[0]))
        elif ref.name in PRIMITIVES:
            ty = Ty(ref.name)
        elif ref.name in self.t.enums:
            ty = enum_ty(ref.name)
        else:
            return ANY
        return replace(ty, optional=True) if ref.optional else ty

    def of_field(self, decl: FieldDecl) -> Ty:
        return self.of_ref(decl.type)

    def of_text(self, text: str) -> Ty:
        return from_text(text, self.t.enums) or ANY

    # ------------------------------------------------------------------- expressions

    def expect(self, e: Expr, scope: Scope, want: Ty, what: str) -> Ty:
        """Type ``e`` where ``want`` is expected and report CVG201 if it does not fit."""
        got = self.infer(e, scope, want)
        if not assignable(got, want):
            self.r.error(TYPE_MISMATCH, _span(e), f"{what} expects {want}, found {got}",
                         f"give a value of type {want}")
        return got

    def condition(self, e: Expr, scope: Scope, what: str, code: str = NOT_BOOL) -> None:
        """Check that ``e`` is a bool condition."""
        got = self.infer(e, scope, BOOL)
        if not assignable(got, BOOL):
            self.r.error(code, _span(e), f"{what} must be a bool, found {got}",
                         "compare the value, e.g. `x > 0` or `x == \"…\"`")

    def infer(self, e: Expr, scope: Scope, expected: Ty | None = None) -> Ty:
        """The type of ``e`` in ``scope``; ``expected`` lets a bare enum member
        resolve."""
        if isinstance(e, Literal):
            v = e.value
            if isinstance(v, bool):
                return BOOL
            return INT if isinstance(v, int) else FLOAT if isinstance(v, float) else STR
        if isinstance(e, Duration):
            return DURATION
        if isinstance(e, Name):
            return self._name(e, scope, expected)
        if isinstance(e, Wildcard):
            self.r.error(UNKNOWN_NAME, e.span, "`_` is not a value",
                         "`_` only stands for any value inside a pattern")
            return ANY
        if isinstance(e, Attribute):
            return self._attribute(e, scope)
        if isinstance(e, Unary):
            return self._unary(e, scope)
        if isinstance(e, Binary):
            return self._binary(e, scope)
        if isinstance(e, IfExpr):
            self.condition(e.condition, scope, "the `if` condition", BAD_OPERAND)
            a = self.infer(e.then, scope, expected)
            b = self.infer(e.otherwise, scope, a if not a.is_any else expected)
            both = unify(a, b)
            if both is None:
                self.r.error(BAD_OPERAND, e.span, f"`if` branches differ: {a} and {b}",
                             "make both branches the same type")
                return ANY
            return both
        if isinstance(e, FuncCall):
            return call_type(self, e, scope)
        if isinstance(e, Aggregate):
            return aggregate_type(self, e, scope)
        if isinstance(e, ListExpr):
            elem_hint = expected.elem if expected and expected.kind == "list" else None
            items = [self.infer(i, scope, elem_hint) for i in e.items]
            elem: Ty | None = elem_hint or ANY if not items else items[0]
            for item_ty, item in zip(items[1:], e.items[1:], strict=True):
                elem = unify(elem, item_ty) if elem is not None else None
                if elem is None:
                    self.r.error(BAD_OPERAND, _span(item),
                                 f"list items differ in type ({items[0]} and {item_ty})",
                                 "a list holds values of one type")
                    return list_of(ANY)
            return list_of(elem or ANY)
        if isinstance(e, Record):
            self.args_unique(e.fields)
            return Ty("record", fields=tuple((a.name.name, self.infer(a.value, scope))
                                             for a in e.fields))
        return ANY  # pragma: no cover - every Expr kind is handled above

    def _name(self, e: Name, scope: Scope, expected: Ty | None) -> Ty:
        bound = scope.names.get(e.id)
        if bound is not None:
            if bound.kind == "fact":
                self.r.error(FACT_AS_VALUE, e.span,
                             f"`{e.id}` is a whole fact, not a value",
                             f"use one of its fields, e.g. `{e.id}.{self._a_field(bound.ty)}`",
                             (Related(bound.span, "bound here"),))
                return ANY
            return bound.ty
        if expected is not None and expected.kind == "enum" and self.t.is_member(
                expected.name, e.id):
            return replace(expected, optional=False)
        if scope.open:
            return ANY
        if e.id in scope.later:
            self.r.error(USED_BEFORE_BOUND, e.span, f"`{e.id}` is used before it is bound",
                         "move the pattern or call that binds it earlier")
            return ANY
        owners = self.t.owners(e.id)
        if owners and expected is not None and expected.kind == "enum":
            help = (f"`{e.id}` is a member of {owners[0]}, but {expected.name} is expected "
                    f"here; use one of {', '.join(self.t.members(expected.name))}")
        elif owners:
            help = f"write it qualified: `{owners[0]}.{e.id}`"
        elif e.id in CLOCK_BUILTINS:
            help = f"the job's time is read by calling it: `{e.id}()`"
        elif e.id in NONE_WORDS:
            help = ("there is no literal for none (and no `= none`): leave the value out; "
                    "an optional field (`T?`) left out of a fact, or declared without a "
                    "default, is none")
        elif expected is not None and expected.kind == "enum":
            help = self.t.vocabulary("members", expected.name).did_you_mean(
                e.id, also=scope.names, otherwise=_unbound_help(scope))
        else:
            help = did_you_mean(e.id, scope.names, otherwise=_unbound_help(scope))
        self.r.error(UNKNOWN_NAME, e.span, f"unknown name `{e.id}`", help)
        return ANY

    def _attribute(self, e: Attribute, scope: Scope) -> Ty:
        base = e.value
        if isinstance(base, Name) and base.id not in scope.names and base.id in self.t.enums:
            if not self.t.is_member(base.id, e.attr.name):
                members = self.t.members
                self.r.error(UNKNOWN_MEMBER, e.attr.span,
                             f"enum {base.id} has no member `{e.attr.name}`",
                             self.t.vocabulary("members", base.id).did_you_mean(
                                 e.attr.name, otherwise=lambda: "members: " + ", ".join(
                                     members(base.id))))
                return ANY
            return enum_ty(base.id)
        bound = scope.names.get(base.id) if isinstance(base, Name) else None
        ty = bound.ty if bound is not None else self.infer(base, scope)
        name = e.attr.name
        if ty.is_any:
            return ANY
        if ty.kind == "fact":
            decl = self.t.field_of(ty.name, name)
            if decl is None:
                self.r.error(UNKNOWN_FIELD, e.attr.span, f"{ty.name} has no field `{name}`",
                             self.t.field_help(ty.name, name))
                return ANY
            return self.of_field(decl)
        if ty.kind in TIME_KINDS:
            fields = TIME_FIELDS[ty.kind]
            if name not in fields:
                self.r.error(NO_FIELDS, e.attr.span, f"a {ty.kind} has no field `{name}`",
                             did_you_mean(name, list(fields), otherwise=(
                                 f"{ty.kind} fields: " + ", ".join(fields))))
                return ANY
            return Ty(fields[name])
        if ty.kind == "record":
            got = ty.field(name)
            if got is None and ty.field("*") is not None:  # an open tool result
                return ANY
            if got is None:
                names = [k for k, _ in ty.fields or ()]
                self.r.error(UNKNOWN_FIELD, e.attr.span,
                             f"the tool result has no field `{name}`",
                             did_you_mean(name, names, otherwise="result fields: "
                                          + ", ".join(names)))
                return ANY
            return got
        self.r.error(NO_FIELDS, e.attr.span, f"a value of type {ty} has no field `{name}`",
                     "bind the whole fact with `p: Type(…)` and write `p.field`")
        return ANY

    def _a_field(self, ty: Ty) -> str:
        return self.t.first_field(ty.name) or "field"

    def _unary(self, e: Unary, scope: Scope) -> Ty:
        if e.op == "not":
            self.condition(e.operand, scope, "the operand of `not`", BAD_OPERAND)
            return BOOL
        ty = self.infer(e.operand, scope)
        if not ty.is_numeric and ty.kind != "duration":
            self.r.error(BAD_OPERAND, e.span, f"cannot negate a value of type {ty}",
                         "`-` needs a number or a duration")
            return ANY
        return ty.required()

    def _binary(self, e: Binary, scope: Scope) -> Ty:
        op = e.op
        if op in ("and", "or"):
            self.condition(e.left, scope, f"the left side of `{op}`", BAD_OPERAND)
            self.condition(e.right, scope, f"the right side of `{op}`", BAD_OPERAND)
            return BOOL
        if op == "in":
            left = self.infer(e.left, scope)
            right = self.infer(e.right, scope, list_of(left) if not left.is_any else None)
            ok = right.is_any or (right.kind == "list" and right.elem is not None
                                  and comparable(left, right.elem)) or (
                right.kind == "str" and left.kind in ("str", "any"))
            if not ok:
                self.r.error(BAD_OPERAND, e.span, f"cannot ask whether {left} is in {right}",
                             "`x in [a, b]` needs a list of values of x's type")
            return BOOL
        left, right = self._sides(e, scope)
        if left.is_any or right.is_any:
            return BOOL if op in ("==", "!=", "<", "<=", ">", ">=") else ANY
        if op in ("==", "!="):
            if not comparable(left, right):
                self._bad(e, left, right, "compare values of one type")
            return BOOL
        if op in ("<", "<=", ">", ">="):
            if not orderable(left, right):
                self._bad(e, left, right, "order two numbers, two strings, or two values "
                          "of one time type (date, datetime, duration)")
            return BOOL
        if left.kind in TIME_KINDS or right.kind in TIME_KINDS:
            return self._time(e, left, right)
        if op == "+" and left.kind == right.kind == "str":
            return left.required()
        if op == "+" and left.kind == right.kind == "list":
            # the joined list holds both sides' items: an int list and a str list
            # would give a list[int] holding text
            assert left.elem is not None and right.elem is not None
            elem = unify(left.elem, right.elem)
            if elem is None:
                self._bad(e, left, right, "join two lists of one item type")
                return ANY
            return list_of(elem)
        if left.is_numeric and right.is_numeric:
            if op == "/":
                return FLOAT
            return arithmetic(left, right)
        self._bad(e, left, right, "arithmetic needs numbers")
        return ANY

    def _time(self, e: Binary, left: Ty, right: Ty) -> Ty:
        """The type of ``left op right`` when a side is a date, datetime or duration
        (:data:`TIME_OPS`); an error with a hint for what the author likely meant."""
        def kind(ty: Ty) -> str:
            return "number" if ty.is_numeric else ty.kind
        result = TIME_OPS.get((e.op, kind(left), kind(right)))
        if result == "date":
            step = e.right if right.kind == "duration" else e.left
            written = _duration_literal(step)
            if written is not None and written[0] % _DAY_MS:
                # it would fail the agent on every match: say so before anything runs
                self.r.error(BAD_OPERAND, _span(step), f"a date moves by whole days, not by "
                             f"`{written[1]}`",
                             "use a datetime to move by hours or less, or a duration in "
                             "days (`1d`, `2w`)")
                return Ty(result)
        if result is not None:
            return Ty(result)
        kinds = {left.kind, right.kind}
        if e.op == "+" and left.kind == right.kind and left.kind in ("date", "datetime"):
            help = (f"two {left.kind}s do not add up: subtract them for the duration "
                    f"between (`a - b`), or add a duration to one (`a + 30d`)")
        elif kinds == {"date", "datetime"}:
            help = ("a date and a datetime do not mix: take the day of the datetime "
                    "(`t.date`), or compare datetimes")
        elif kinds & {"int", "float", "number"} and e.op in ("+", "-"):
            help = ("a number has no unit: write the duration with one (`30d`, `2h`, "
                    "`15m`), or multiply one (`days * 1d`)")
        else:
            help = ("dates and datetimes take `+`/`-` with a duration and `-` with one of "
                    "their own type; durations add, subtract, multiply and divide by "
                    "numbers, and divide by durations")
        self._bad(e, left, right, help)
        return ANY

    def _sides(self, e: Binary, scope: Scope) -> tuple[Ty, Ty]:
        # A bare enum member on either side takes its enum from the other side.
        if isinstance(e.left, Name) and e.left.id not in scope.names \
                and isinstance(e.right, Name | Attribute):
            right = self.infer(e.right, scope)
            return self.infer(e.left, scope, right), right
        left = self.infer(e.left, scope)
        return left, self.infer(e.right, scope, left)

    def _bad(self, e: Binary, left: Ty, right: Ty, help: str) -> None:
        self.r.error(BAD_OPERAND, e.span, f"`{e.op}` cannot combine {left} and {right}", help)

    # ---------------------------------------------------------------------- patterns

    def pattern(self, p: Pattern, scope: Scope, mode: Mode) -> None:
        """Check ``p`` and, in ``bind`` mode, bind its new variables into ``scope``
        (inside ``Scope.local`` for a negated pattern). In ``expect`` mode (tests) a bare
        field matches any value and nothing binds."""
        decl = self.t.facts.get(p.type.name)
        if p.binder is not None and p.negated:
            self.r.error(NEGATED_BINDER, p.binder.span,
                         f"`{p.binder.name}` binds nothing: a negated pattern matches no fact",
                         f"remove `{p.binder.name}:`")
        if decl is None:
            self.r.error(UNKNOWN_TYPE, p.type.span, f"unknown type `{p.type.name}`",
                         self.t.type_help(p.type.name))
            for fm in p.fields:
                self._field_match(fm, ANY, scope, mode)
            return
        if decl.intent and not p.intent:
            self.r.error(PATTERN_KIND, p.type.span,
                         f"`{p.type.name}` is an intent type; match it with `intent "
                         f"{p.type.name}(…)`", f"write `intent {p.type.name}(…)`")
        elif p.intent and not decl.intent:
            self.r.error(PATTERN_KIND, p.type.span,
                         f"`{p.type.name}` is a fact type, not an intent",
                         f"drop `intent` before `{p.type.name}`")
        if p.binder is not None and not p.negated and mode == "bind":
            self.bind(p.binder.name, fact_ty(p.type.name), p.binder.span, "fact", scope)
        seen: dict[str, FieldMatch] = {}
        for fm in p.fields:
            fdecl = self.t.field_of(p.type.name, fm.field.name)
            if fdecl is None:
                self.r.error(UNKNOWN_FIELD, fm.field.span,
                             f"{p.type.name} has no field `{fm.field.name}`",
                             self.t.field_help(p.type.name, fm.field.name))
                self._field_match(fm, ANY, scope, mode)
                continue
            if fm.field.name in seen:
                self.r.error(DUPLICATE_ARG, fm.field.span,
                             f"field `{fm.field.name}` is matched twice",
                             "match each field once; join with `and` in the `where` guard",
                             (Related(seen[fm.field.name].span, "first matched here"),))
            seen[fm.field.name] = fm
            self._field_match(fm, self.of_field(fdecl), scope, mode)

    def _field_match(self, fm: FieldMatch, fty: Ty, scope: Scope, mode: Mode) -> None:
        value = fm.value
        if isinstance(value, Wildcard):
            return
        if value is None:
            if mode == "expect":
                return
            var, span = fm.field.name, fm.field.span
        elif isinstance(value, Name) and value.id not in scope.names and not (
                fty.kind == "enum" and self.t.is_member(fty.name, value.id)) \
                and mode == "bind":
            var, span = value.id, value.span
            if var in NONE_WORDS:
                self.r.error(NONE_AS_VARIABLE, span,
                             f"`{var}` here binds a new variable, which matches any value, "
                             f"not a none `{fm.field.name}`",
                             "there is no literal for none and no test for it: write "
                             f"`{fm.field.name}: _` for any value, or give the field a "
                             "default that the rules can match")
                return
            near = closest(var, self.t.members(fty.name)) \
                if fty.kind == "enum" and var not in scope.names else []
            if near:
                self.member_typos.append((var, span, fty.name, near[0]))
        else:
            got = self.infer(value, scope, fty)
            if not comparable(got, fty):
                self.r.error(TYPE_MISMATCH, _span(value),
                             f"field `{fm.field.name}` is {fty}, matched against {got}",
                             f"match it against a value of type {fty}")
            return
        bound = scope.names.get(var)
        if bound is None:
            scope.add(var, Binding(fty, span, "var"))
        elif bound.kind == "fact":
            self.r.error(FACT_AS_VALUE, span, f"`{var}` is a whole fact, not a value",
                         f"match the field against a field of it, e.g. `{fm.field.name}: "
                         f"{var}.{fm.field.name}`", (Related(bound.span, "bound here"),))
        elif not comparable(bound.ty, fty):
            self.r.error(TYPE_MISMATCH, span,
                         f"`{var}` is {bound.ty} but field `{fm.field.name}` is {fty}",
                         "join fields of the same type, or bind a new name "
                         f"(`{fm.field.name}: other`)", (Related(bound.span, "bound here"),))

    def bind(self, name: str, ty: Ty, span: Span, kind: str, scope: Scope) -> None:
        """Bind a whole fact or a call result; reusing a bound name is CVG108."""
        prior = scope.names.get(name)
        if prior is not None:
            self.r.error(SHADOWING, span, f"`{name}` is already bound",
                         "choose another name", (Related(prior.span, "first bound here"),))
            return
        scope.add(name, Binding(ty, span, kind))

    def args_unique(self, args: tuple[Arg, ...]) -> dict[str, Arg]:
        """The args by name; a repeated name is CVG110."""
        seen: dict[str, Arg] = {}
        for a in args:
            if a.name.name in seen:
                self.r.error(DUPLICATE_ARG, a.name.span, f"`{a.name.name}` is given twice",
                             "give each field once",
                             (Related(seen[a.name.name].span, "first given here"),))
            else:
                seen[a.name.name] = a
        return seen


def _unbound_help(scope: Scope) -> str:
    """What to do about a name nothing binds (rules and tests bind names differently)."""
    return scope.unbound_help or "bind it in a `when` pattern first"


_DAY_MS = 86_400_000


def _duration_literal(e: Expr) -> tuple[int, str] | None:
    """A duration written as a literal (``5h``, ``-(36h)``): its milliseconds and its
    text; None for any other expression."""
    if isinstance(e, Unary) and e.op == "-":
        inner = _duration_literal(e.operand)
        return None if inner is None else (-inner[0], "-" + inner[1])
    if isinstance(e, Duration):
        return e.milliseconds, e.text or f"{e.milliseconds}ms"
    return None


def _span(e: Expr) -> Span:
    return e.span

