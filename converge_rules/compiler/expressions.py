"""Expression code: one language expression → one Python expression (source text).

Semantics (documented for rule authors in the language reference):

* ``/`` is true division (``7 / 2 == 3.5``); ``%`` is Python's modulo; an error such as
  division by zero raises, and the engine discards that agent's effect.
* integers are 64-bit: ``+ - *``, unary ``-``, ``abs`` and ``sum`` whose result may be an
  integer are checked (``_int``, ``_int_abs``: calls in place of the operation's own
  parentheses, so checked code nests no deeper than the expression), and one outside
  the range raises ``IntegerOverflow``
  naming the expression, which discards the agent's effect like any other error. Float
  arithmetic is not checked (it costs nothing where it cannot overflow). Where the
  result is known to be an ``int`` (both operands typed ``int``), the check is inline,
  a range test that calls ``_int`` only for a value outside the range
  (``(i0 if -2**63 <= (i0 := a + b) <= 2**63 - 1 else _int(i0, "a + b"))``): the
  same value or the same error, without a call per operation. It adds one level of
  parentheses, so an operation with ``_INLINE_NESTING`` inline checks inside it
  already is checked by a call; and an assignment expression is not allowed in a
  comprehension's iterable, so an aggregate's or a negation's index key is too.
* ``< <= > >=`` with ``None`` on either side are false (``min``/``max``/``mean`` over
  no facts are ``None``); ``==``/``!=`` compare ``None`` like any value; ``and``/``or``
  give a bool, ``None`` counting as false.
* enum members are their member name; list literals are tuples.
* dates, datetimes and durations are ``date``, UTC ``datetime`` and ``timedelta``
  values; arithmetic on them and their fields go through ``_time_op`` and
  ``_time_field`` (:mod:`converge_rules.language.builtins`: a date moves by whole days
  only), ordering and equality are Python's. ``now()``/``today()`` read ``view.now``,
  the job's time, never the clock.
* aggregates run over the whole live context with the rule's bound variables as
  constraints; names a pattern inside an aggregate binds are local to it. ``sum`` of
  nothing is 0; ``None`` values of optional fields are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from converge_rules.compiler.context import (
    Binding,
    FactRef,
    Namespace,
    ProgramContext,
    ToolRef,
    Var,
    key_src,
    tuple_src,
)
from converge_rules.compiler.joins import (
    FieldUse,
    PatternInfo,
    classify,
    constrained,
    names_in,
)
from converge_rules.compiler.runtime import builtin_helper, int_helper
from converge_rules.compiler.values import enum_member
from converge_rules.errors import CompileError
from converge_rules.language.builtins import (
    BUILTINS,
    INT_MAX,
    INT_MIN,
    TIME_FIELD_NAMES,
    TIME_FIELDS,
    TIME_KINDS,
    TIME_OPS,
    Builtin,
    TimeError,
    parse_date,
    parse_datetime,
)
from converge_rules.language.format.formatter import format_expr
from converge_rules.language.syntax.nodes import (
    Aggregate,
    Attribute,
    Binary,
    Duration,
    Expr,
    FuncCall,
    IfExpr,
    ListExpr,
    Literal,
    Name,
    Pattern,
    Record,
    Unary,
    Wildcard,
)
from converge_rules.language.syntax.span import UNKNOWN_SPAN
from converge_rules.program import FieldSpec, ValueType

_ORDERING = {"<": "_lt", "<=": "_le", ">": "_gt", ">=": "_ge"}
_OVERFLOWING = frozenset({"+", "-", "*"})
"""Operators whose integer result can leave the range its operands are in (``%`` and
``//`` cannot; ``/`` gives a float)."""
_INLINE = " := "
"""What each inline overflow check holds once (its assignment); a text literal may hold
it too, which only makes a check a call where it could have been inline."""
_INLINE_NESTING = 16
"""At most this many inline checks on any path through an expression: each adds a level
of parentheses, and Python refuses code nested 200 deep (the language allows 100)."""
_RANGE_TEST = f"{INT_MIN} <= (i0 := {{}}) <= {INT_MAX}"


@dataclass(frozen=True, slots=True)
class Kind:
    """What static knowledge the compiler has of an expression's value: its base
    (``str int float bool enum list``, or None when unknown) and whether it may be
    None."""

    base: str | None
    nullable: bool
    element: str | None = None      # a list's element base, when known

    @staticmethod
    def of(vt: ValueType | None) -> Kind:
        if vt is None:
            return Kind(None, True)
        return Kind(vt.base, vt.optional, vt.element.base if vt.element else None)


UNKNOWN = Kind(None, True)


def _result_kind(result: str, args: list[Kind]) -> Kind:
    """What is known of a built-in's result, from its signature's result type."""
    if result == "number":
        # abs/min/max return one of their arguments unchanged: int stays int
        bases = {k.base for k in args}
        return Kind(bases.pop() if len(bases) == 1 else None, False)
    if result == "any":
        return UNKNOWN
    return Kind(result, False)


@dataclass(slots=True)
class ExprCompiler:
    """Compiles expressions against a scope of bound names."""

    ctx: ProgramContext
    ns: Namespace
    scope: dict[str, Binding] = field(default_factory=dict)
    _gen: int = 0
    # The names a negated or aggregated pattern may take as constraints (those bound
    # before it in written order), or None: every name in scope.
    visible: frozenset[str] | None = None
    # Above 0 while compiling a comprehension's iterable (an index key), where Python
    # allows no assignment expression, so no inline overflow check.
    _in_iterable: int = 0

    # ------------------------------------------------------------------ public

    def code(self, expr: Expr, visible: frozenset[str] | None = None) -> str:
        """Python source for ``expr``. With ``visible``, an aggregate in it takes only
        those names as constraints, as written before it; its pattern's other names
        are its own (patterns are read left to right)."""
        if visible is None:
            return self._code(expr)[0]
        outer, self.visible = self.visible, visible
        try:
            return self._code(expr)[0]
        finally:
            self.visible = outer

    def kind(self, expr: Expr) -> Kind:
        return self._code(expr)[1]

    def coerced(self, expr: Expr, target: ValueType) -> str:
        """Code for ``expr`` as a field of type ``target`` holds it: int → float for
        float fields, lists as tuples."""
        code, kind = self._code(expr)
        if target.base == "float":
            if isinstance(expr, Literal) and type(expr.value) is int:
                return repr(float(expr.value))
            if kind.base == "float":
                return code
            if kind.nullable and (target.optional or kind.base is None):
                return f"_float({code})"
            return f"float({code})"
        if target.base == "list":
            element = target.element
            if element is not None and element.base == "float" and kind.element != "float":
                if isinstance(expr, ListExpr):
                    return tuple_src([self.coerced(i, element) for i in expr.items])
                return f"_floats({code})"
            if kind.base != "list":
                return f"_tuple({code})"
        return code

    def condition(self, expr: Expr) -> str:
        return self.code(expr)

    # ---------------------------------------------------------------- dispatch

    def _code(self, e: Expr) -> tuple[str, Kind]:
        if isinstance(e, Literal):
            v = e.value
            lit = ("bool" if isinstance(v, bool) else "int" if isinstance(v, int)
                   else "float" if isinstance(v, float) else "str")
            return self.ns.literal(v), Kind(lit, False)
        if isinstance(e, Duration):
            return (self.ns.literal(timedelta(milliseconds=e.milliseconds)),
                    Kind("duration", False))
        if isinstance(e, Name):
            return self._name(e)
        if isinstance(e, Attribute):
            return self._attribute(e)
        if isinstance(e, Unary):
            inner, k = self._code(e.operand)
            if e.op == "not":
                return f"(not {inner})", Kind("bool", False)
            return self._int_checked(f"-{inner}", e, k.base), Kind(k.base, False)
        if isinstance(e, Binary):
            return self._binary(e)
        if isinstance(e, IfExpr):
            c = self.code(e.condition)
            a, ka = self._code(e.then)
            b, kb = self._code(e.otherwise)
            base = ka.base if ka.base == kb.base else None
            return f"({a} if {c} else {b})", Kind(base, ka.nullable or kb.nullable)
        if isinstance(e, FuncCall):
            return self._call(e)
        if isinstance(e, Aggregate):
            return self._aggregate(e)
        if isinstance(e, ListExpr):
            parts = [self._code(i) for i in e.items]
            bases = {p[1].base for p in parts}
            element = bases.pop() if len(bases) == 1 else None
            return tuple_src([p[0] for p in parts]), Kind("list", False, element)
        if isinstance(e, Record):
            body = ", ".join(f"{self.ns.literal(a.name.name)}: {self.code(a.value)}"
                             for a in e.fields)
            return "{" + body + "}", Kind(None, False)
        if isinstance(e, Wildcard):
            raise CompileError(f"{e.span}: `_` is only allowed as a pattern field")
        raise CompileError(f"cannot compile expression {type(e).__name__}")

    def _name(self, e: Name) -> tuple[str, Kind]:
        b = self.scope.get(e.id)
        if isinstance(b, Var):
            return b.code, Kind.of(b.type)
        if isinstance(b, ToolRef):
            return b.code, UNKNOWN
        if isinstance(b, FactRef):
            raise CompileError(f"{e.span}: {e.id!r} is a whole fact; use one of its fields")
        member = enum_member(e.id, self.ctx.enums)
        if member is not None:
            return self.ns.literal(member), Kind("enum", False)
        raise CompileError(f"{e.span}: unknown name {e.id!r}")

    def _attribute(self, e: Attribute) -> tuple[str, Kind]:
        attr = e.attr.name
        if isinstance(e.value, Name):
            b = self.scope.get(e.value.id)
            if isinstance(b, FactRef):
                if attr not in b.spec.field_names:
                    raise CompileError(f"{e.attr.span}: {b.spec.name} has no field {attr!r}")
                pos = b.spec.position(attr)
                return f"{b.values}[{pos}]", Kind.of(b.spec.fields[pos].type)
            if b is None and e.value.id in self.ctx.enums:
                decl = self.ctx.enums[e.value.id]
                if any(m.name == attr for m in decl.members):
                    return self.ns.literal(attr), Kind("enum", False)
                raise CompileError(f"{e.attr.span}: {e.value.id} has no member {attr!r}")
        if isinstance(e.value, Name):
            tool = self.scope.get(e.value.id)
            if isinstance(tool, ToolRef) and attr in tool.times:
                # ISO text in the tool's JSON answer, read as the signature types it
                kind_text = self.ns.literal(tool.times[attr])
                return (f"_read_time_as({tool.code}[{self.ns.literal(attr)}], {kind_text})",
                        Kind(tool.times[attr], True))
        inner, kind = self._code(e.value)
        if kind.base in TIME_KINDS and attr in TIME_FIELDS[kind.base]:
            return (f"_time_field({inner}, {self.ns.literal(attr)})",
                    Kind(TIME_FIELDS[kind.base][attr], kind.nullable))
        if kind.base is None and attr in TIME_FIELD_NAMES:
            # a tool result's field, or the field of a time value a tool gave as text
            return f"_field_of({inner}, {self.ns.literal(attr)})", UNKNOWN
        return f"{inner}[{self.ns.literal(attr)}]", UNKNOWN

    def _binary(self, e: Binary) -> tuple[str, Kind]:
        a, ka = self._code(e.left)
        b, kb = self._code(e.right)
        op = e.op
        # a value of unknown type beside a time value may be its ISO text (a tool's)
        if ka.base in TIME_KINDS and kb.base is None:
            b = f"_read_time({b})"
        elif kb.base in TIME_KINDS and ka.base is None:
            a = f"_read_time({a})"
        if op in _ORDERING:
            if ka.nullable or kb.nullable:
                return f"{_ORDERING[op]}({a}, {b})", Kind("bool", False)
            return f"({a} {op} {b})", Kind("bool", False)
        if op in ("and", "or"):
            # `and`/`or` give a bool: an operand that may be none (an optional field) is
            # false, as in a guard, instead of passing none on (`none and true` is none
            # in Python), into a bool field
            a = f"bool({a})" if ka.nullable else a
            b = f"bool({b})" if kb.nullable else b
            return f"({a} {op} {b})", Kind("bool", False)
        if op in ("==", "!=", "in"):
            return f"({a} {op} {b})", Kind("bool", False)
        if ka.base in TIME_KINDS or kb.base in TIME_KINDS:
            def side(kind: Kind) -> str | None:
                return "number" if kind.base in ("int", "float") else kind.base
            result = TIME_OPS.get((op, side(ka) or "", side(kb) or ""))
            return (f"_time_op({self.ns.literal(op)}, {a}, {b})",
                    Kind(result, False))
        if op == "/":
            return f"({a} / {b})", Kind("float", False)
        numeric = {ka.base, kb.base}
        if op == "+" and numeric == {"str"}:
            base: str | None = "str"
        elif numeric <= {"int"}:
            base = "int"
        elif numeric <= {"int", "float"}:
            base = "float"
        elif op == "+" and numeric == {"list"}:
            base = "list"
        else:
            base = None
        if op in _OVERFLOWING:
            return self._int_checked(f"{a} {op} {b}", e, base), Kind(base, False)
        return f"({a} {op} {b})", Kind(base, False)

    def _int_checked(self, code: str, e: Expr, base: str | None) -> str:
        """``code`` (an operation, not yet in parentheses) checked for integer overflow
        when its value may be an integer (its kind is int, or unknown), naming the
        expression ``e`` as written; parenthesised otherwise. The check's call
        parentheses replace the operation's own, so nesting stays as deep as written
        (Python refuses code nested more than 200 parentheses deep)."""
        if base not in ("int", None):
            return f"({code})"
        what = self.ns.literal(format_expr(e))
        if base == "int" and self._inline_ok(code):
            # an int for sure (its operands are typed int): the range test inline, the
            # call only for a value outside it (the same IntegerOverflow, same text)
            return f"(i0 if {_RANGE_TEST.format(code)} else {int_helper()}(i0, {what}))"
        return f"{int_helper()}({code}, {what})"

    def _inline_ok(self, code: str) -> bool:
        """Whether an operation on ``code`` may be checked inline: not in an index key
        (a comprehension's iterable), nor nested too deep."""
        return not self._in_iterable and code.count(_INLINE) < _INLINE_NESTING

    def _call(self, e: FuncCall) -> tuple[str, Kind]:
        name = e.func.name
        parts = [self._code(a) for a in e.args]
        args = [p[0] for p in parts]
        joined = ", ".join(args)
        builtin = BUILTINS.get(name)
        if builtin is not None:
            kind = _result_kind(builtin.signature.result, [p[1] for p in parts])
            if builtin.clock:  # the job's time, fixed for the job: never the clock
                return f"{builtin_helper(name)}(view.now)", kind
            if name in ("date", "datetime") and len(e.args) == 1 \
                    and isinstance(e.args[0], Literal) and isinstance(e.args[0].value, str):
                try:  # a constant: read once, here
                    parsed = (parse_date if name == "date" else parse_datetime)(
                        e.args[0].value)
                except TimeError as exc:
                    raise CompileError(f"{e.args[0].span}: {exc}") from None
                return self.ns.literal(parsed), kind
            code = self._builtin(e, builtin, args)
            if name == "abs" and kind.base in ("int", None) and len(args) == 1:
                # abs(-2**63) is 2**63: the one built-in that overflows
                code = (self._int_checked(f"abs({args[0]})", e, "int")
                        if kind.base == "int" and self._inline_ok(args[0])
                        else f"_int_abs({args[0]}, {self.ns.literal(format_expr(e))})")
            return code, kind
        fn = self.ctx.functions.get(name)
        if fn is None:
            raise CompileError(
                f"{e.func.span}: function {name!r} is not available: install the plugin "
                "that provides it, or pass it in compile_ruleset(functions=...)"
            )
        # Its result is checked as a tool's answer is: a value no fact can hold (NaN,
        # a lone surrogate) must not reach a fact, a tool call or the trace.
        # And against its declared type: a ``bool`` function's ``1`` is no bool.
        call = f"{self.ns.function(name, fn)}({joined})"
        declared = self.ctx.results.get(name)
        if declared is None:
            return f"_result({call}, {self.ns.literal(name)})", UNKNOWN
        check = (self.ns.literal(declared) if isinstance(declared, str)
                 else self.ns.constant(declared))
        return f"_result({call}, {self.ns.literal(name)}, {check})", UNKNOWN

    @staticmethod
    def _builtin(e: FuncCall, builtin: Builtin, args: list[str]) -> str:
        """A built-in call: its inline template filled in, or a call of its
        implementation (bound in generated code by the runtime)."""
        joined = ", ".join(args)
        if builtin.inline is None:
            return f"{builtin_helper(builtin.name)}({joined})"
        wanted = builtin.inline_arity
        if wanted is not None and len(args) != wanted:
            raise CompileError(f"{e.span}: {builtin.name}() takes {wanted} arguments")
        return builtin.inline.format(*args, args=joined)

    # -------------------------------------------------------- patterns in context

    def lookup(self, pattern: Pattern, gen: str) -> tuple[str, list[str], PatternInfo]:
        """How to find the live facts matching a negated or aggregated pattern with the
        scope's names as constraints: (code for the candidate ids, conditions on
        ``gen`` — the candidate id variable — still to check, the classified pattern).
        Candidates come from an index on the constrained fields, else the live set."""
        keyed, conds, info = self._constraints(pattern, gen)
        if keyed:
            spec = info.spec
            ix = self.ns.index(self.ctx.index(spec.id, tuple(u.position for u in keyed)))
            ordered = sorted(keyed, key=lambda u: u.position)
            self._in_iterable += 1  # the key is in a comprehension's iterable
            try:
                key = key_src([self._use_code(u) for u in ordered])
            finally:
                self._in_iterable -= 1
            return f"{ix}.get({key}, ())", conds, info
        return self.ns.live(info.spec.id), conds, info

    def candidate(self, pattern: Pattern, fid: str,
                  visible: frozenset[str] | None = None) -> str | None:
        """A condition true when the fact whose id the variable ``fid`` holds (of the
        pattern's type, live or not) matches the negated ``pattern``, taking only the
        ``visible`` names as constraints; None when every fact of the type does."""
        outer, self.visible = self.visible, visible if visible is not None else self.visible
        try:
            keyed, conds, _ = self._constraints(pattern, fid)
            parts = [f"vals[{fid}][{u.position}] == {self._use_code(u)}" for u in keyed]
        finally:
            self.visible = outer
        parts += conds
        return " and ".join(parts) if parts else None

    def _constraints(self, pattern: Pattern, gen: str
                     ) -> tuple[list[FieldUse], list[str], PatternInfo]:
        """A negated or aggregated pattern's fields with the scope's names as
        constraints: (the uses an index on them can key, conditions on the candidate
        id variable ``gen`` for the others, the classified pattern)."""
        spec = self.ctx.types.get(pattern.type.name)
        if spec is None:
            raise CompileError(f"{pattern.type.span}: unknown type {pattern.type.name!r}")
        seen = [n for n in self.scope if self.visible is None or n in self.visible]
        bound = {n for n in seen if isinstance(self.scope[n], Var)}
        info = classify(pattern, spec, self.ctx.enums, lambda n: n in bound)
        # the names the pattern binds itself; a field's expression may use those an
        # earlier field bound, as the candidate fact's values
        own = {u.name for u in info.uses if u.kind == "var" and u.name not in bound}
        # every name it sees is bound here (binders and call results too), so any
        # expression over them (and none of its own) can key an index
        keyed = [u for u in constrained(info, seen, seen)
                 if u.kind != "expr" or not names_in(u.expr) & own]
        conds: list[str] = []
        local_first: dict[str, int] = {}
        for u in info.uses:
            if u in keyed:
                continue
            if u.kind == "var" and u.name not in bound:
                first = local_first.setdefault(u.name, u.position)
                if first != u.position:
                    conds.append(f"vals[{gen}][{u.position}] == vals[{gen}][{first}]")
            elif u.kind == "expr" and names_in(u.expr) & own:
                assert u.expr is not None
                value = self._candidate_code(u.expr, gen, spec.fields, local_first)
                conds.append(f"vals[{gen}][{u.position}] == {value}")
            else:
                conds.append(f"vals[{gen}][{u.position}] == {self._use_code(u)}")
        return keyed, conds, info

    def _candidate_code(self, expr: Expr, gen: str, fields: tuple[FieldSpec, ...],
                        local_first: dict[str, int]) -> str:
        """Code for ``expr`` in a field of a negated or aggregated pattern, where the
        names its earlier fields bound (``local_first``: name → position) are those
        values of the candidate fact ``gen``."""
        saved = {name: self.scope.get(name) for name in local_first}
        outer = self.visible
        for name, pos in local_first.items():
            self.scope[name] = Var(f"vals[{gen}][{pos}]", fields[pos].type)
        if outer is not None:
            self.visible = outer | frozenset(local_first)
        try:
            return self.code(expr)
        finally:
            self.visible = outer
            for name, binding in saved.items():
                if binding is None:
                    del self.scope[name]
                else:
                    self.scope[name] = binding

    def _use_code(self, u: FieldUse) -> str:
        if u.kind == "const":
            return self.ns.literal(u.value)
        if u.kind == "var":
            b = self.scope[u.name]
            if isinstance(b, Var):
                return b.code
            # a call result or binder used as a value: the ordinary name path
            return self.code(Name(u.name, UNKNOWN_SPAN))
        assert u.expr is not None
        return self.code(u.expr)

    def negation(self, pattern: Pattern, visible: frozenset[str] | None = None) -> str:
        """A condition that is true when some live fact matches ``pattern``, taking
        only the ``visible`` names (default: all in scope) as constraints."""
        gen = self._fresh()
        outer, self.visible = self.visible, visible if visible is not None else self.visible
        try:
            src, conds, _ = self.lookup(pattern, gen)
        finally:
            self.visible = outer
        if not conds:
            return src
        return f"any(True for {gen} in {src} if {' and '.join(conds)})"

    def _aggregate(self, e: Aggregate) -> tuple[str, Kind]:
        code, kind = self._aggregate_code(e)
        if self._names_nothing_bound(e.pattern):
            # `bp == max(Junction(), base_point)`: the same value for every match
            code = self.ns.memoized(code)
        return code, kind

    def _names_nothing_bound(self, pattern: Pattern) -> bool:
        """True when an aggregated ``pattern`` takes no constraint from the scope:
        each field a constant or a name of its own (no expressions, which may call
        functions), so its value is the same wherever in the rule it is computed."""
        spec = self.ctx.types.get(pattern.type.name)
        if spec is None:
            return False
        seen = {n for n in self.scope if self.visible is None or n in self.visible}
        info = classify(pattern, spec, self.ctx.enums, lambda n: n in seen
                        and isinstance(self.scope[n], Var))
        return all(u.kind == "const" or (u.kind == "var" and u.name not in seen)
                   for u in info.uses)

    def _aggregate_code(self, e: Aggregate) -> tuple[str, Kind]:
        gen = self._fresh()
        src, conds, info = self.lookup(e.pattern, gen)
        where = f" if {' and '.join(conds)}" if conds else ""
        if e.func == "count":
            if not conds:
                return f"len({src})", Kind("int", False)
            return f"sum(1 for {gen} in {src}{where})", Kind("int", False)
        if e.field is None:
            raise CompileError(f"{e.span}: {e.func}() needs a field: {e.func}(P, field)")
        spec = info.spec
        if e.field.name not in spec.field_names:
            raise CompileError(f"{e.field.span}: {spec.name} has no field {e.field.name!r}")
        pos = spec.position(e.field.name)
        vt = spec.fields[pos].type
        item = f"vals[{gen}][{pos}]"
        if vt.optional:
            where = f" if {' and '.join([*conds, f'{item} is not None'])}"
        values = f"{item} for {gen} in {src}{where}"
        if e.func == "sum":
            if vt.base == "float":
                return f"sum(({values}), 0.0)", Kind("float", False)
            if vt.base == "int":  # a sum of int values is an int
                return self._int_checked(f"sum({values})", e, "int"), Kind("int", False)
            return self._int_checked(f"sum({values})", e, None), Kind(None, False)
        if e.func in ("min", "max"):
            return f"{e.func}(({values}), default=None)", Kind(vt.base, True)
        return f"_mean({values})", Kind("float", True)

    def _fresh(self) -> str:
        self._gen += 1
        return f"g{self._gen}"
