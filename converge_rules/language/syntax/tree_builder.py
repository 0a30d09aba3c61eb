"""Turn a lark parse tree of ``grammar/converge.lark`` into the frozen nodes of
:mod:`converge_rules.language.syntax.nodes`.

Private to the parser: lark trees and tokens come in (typed ``Any`` because lark ships
no type information we rely on), only nodes and diagnostics go out. The builder works
top-down rather than as a bottom-up lark ``Transformer`` because some shapes depend on
their context: ``Price(sku)`` is a pattern inside ``count(…)`` and a function call
elsewhere.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from typing import Any, cast

from converge_rules.language.builtins import INT_MAX, SMALLEST_FLOAT, float_underflows
from converge_rules.language.diagnostics.core import Diagnostic, Severity, define
from converge_rules.language.syntax import nodes as n
from converge_rules.language.syntax.error_messages import INTERNAL as TOO_DEEP
from converge_rules.language.syntax.span import Span

BAD_NUMBER = define(
    "CVG005", "bad-number", Severity.ERROR, "Malformed number or duration",
    "Numbers are written `42`, `50_000`, `1.05` or `1e-3`; durations are a whole number "
    "followed by `ms`, `s`, `m`, `h`, `d` or `w` (`250ms`, `2s`, `5m`, `3h`, `30d`, `2w`; "
    "months and years have no fixed length). `tier` takes a whole number. "
    "Integers are 64-bit (up to 9223372036854775807) and floats below about 1.8e308.",
    wrong='ruleset r\nroot "goal" {\n  job_timeout = 5hours\n}\n',
    right='ruleset r\nroot "goal" {\n  job_timeout = 5h\n}\n',
)
BAD_ESCAPE = define(
    "CVG008", "bad-escape", Severity.ERROR, "Unknown escape in a string",
    'Strings are double-quoted; inside them only `\\"`, `\\\\`, `\\n` and `\\t` are escapes.',
    wrong='ruleset r "a \\q title"\n',
    right='ruleset r "a \\\\q title"\n',
)
BAD_CALL = define(
    "CVG009", "bad-call-shape", Severity.ERROR, "Pattern or function call written wrongly",
    "`count(P)` takes one pattern; `sum`, `mean`, `min` and `max` over the context take a "
    "pattern and a field name (`sum(Quote(sku), amount)`). Named arguments (`field: value`) "
    "belong in patterns only, not in calls of functions such as `round`. A pattern lists "
    "fields as `field` or `field: value`.",
    wrong='ruleset r\nroot "goal" {\n  require round(x: 1) > 0\n}\n',
    right='ruleset r\nroot "goal" {\n  require round(1.4) > 0\n}\n',
)

MAX_EXPR_DEPTH = 100
"""How deeply expressions may nest. Deeper input would exhaust Python's recursion
limit in the checker and the compiler, or its parser's limit on nested parentheses in
the generated code, so it is refused here, once, with a span."""

AGGREGATES = frozenset({"count", "sum", "min", "max", "mean"})
# min/max are also plain functions (`max(a, b)`); count/sum/mean always aggregate.
_ALWAYS_AGGREGATE = frozenset({"count", "sum", "mean"})
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t"}
_INT = re.compile(r"[0-9][0-9_]*\Z")
_FLOAT = re.compile(r"[0-9][0-9_]*(\.[0-9][0-9_]*)?([eE][+-]?[0-9][0-9_]*)?\Z")
_DURATION = re.compile(r"([0-9][0-9_]*)(ms|s|m|h|d|w)\Z")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000,
            "w": 604_800_000}
# the longest duration a value can hold, its negation too (Python's timedelta: a
# literal beyond it could not be computed with at all)
_MAX_DURATION_DAYS = 999_999_999
_MAX_DURATION_MS = _MAX_DURATION_DAYS * _UNIT_MS["d"]


def _is_tree(x: Any) -> bool:
    return hasattr(x, "data")


def _tokens(children: list[Any], *types: str) -> list[Any]:
    return [c for c in children if c is not None and not _is_tree(c) and c.type in types]


def _trees(children: list[Any], *names: str) -> list[Any]:
    return [c for c in children if c is not None and _is_tree(c) and c.data in names]


class TreeBuilder:
    """Builds nodes for one chunk of one file; ``line_offset`` is added to every line
    because a file with errors is parsed chunk by chunk. Problems found while building
    (bad numbers, bad escapes, misplaced named arguments) go to ``diagnostics``."""

    def __init__(self, file: str, line_offset: int = 0) -> None:
        self.file = file
        self.line_offset = line_offset
        self.diagnostics: list[Diagnostic] = []
        self._depth = 0
        self._too_deep_reported = False
        self._items: dict[str, Callable[[Any], n.Item]] = {
            "import_decl": self._import, "uses": self._uses, "root": self._root,
            "enum_decl": self._enum, "fact_decl": self._fact, "intent_decl": self._fact,
            "agent": self._agent, "policy": self._policy, "prune": self._prune,
            "prune_using": self._prune_using, "test": self._test,
            "invariant_never": self._invariant_never,
            "invariant_always": self._invariant_always, "gate": self._gate,
        }

    # ------------------------------------------------------------------ spans, errors

    def tok_span(self, tok: Any) -> Span:
        off = self.line_offset
        return Span(self.file, tok.line + off, tok.column, tok.end_line + off, tok.end_column)

    def span(self, x: Any) -> Span:
        if not _is_tree(x):
            return self.tok_span(x)
        m = x.meta
        off = self.line_offset
        return Span(self.file, m.line + off, m.column, m.end_line + off, m.end_column)

    def error(self, code: str, message: str, span: Span, help: str | None = None) -> None:
        self.diagnostics.append(Diagnostic(code, Severity.ERROR, message, span, help))

    def ident(self, tok: Any) -> n.Ident:
        return n.Ident(str(tok), self.tok_span(tok))

    # -------------------------------------------------------------------- module

    def module(self, tree: Any) -> tuple[n.RulesetDecl | None, list[n.Item]]:
        header: n.RulesetDecl | None = None
        items: list[n.Item] = []
        for child in tree.children:
            if child.data == "header":
                name = child.children[0]
                title = child.children[1] if len(child.children) > 1 else None
                header = n.RulesetDecl(
                    self.ident(name), None if title is None else self.string(title),
                    self.span(child))
            else:
                item = self._items[child.data](child)
                if not self._too_deep_reported:  # else it holds placeholders: drop it
                    items.append(item)
        return header, items

    # --------------------------------------------------------------------- items

    def _import(self, t: Any) -> n.Import:
        return n.Import(self.string(t.children[0]), self.span(t))

    def _uses(self, t: Any) -> n.Uses:
        return n.Uses(tuple(self.ident(c) for c in t.children), self.span(t))

    def _root(self, t: Any) -> n.Root:
        budgets = tuple(
            n.Budget(self.ident(b.children[0]), self.number(b.children[1]), self.span(b))
            for b in _trees(t.children, "budget"))
        requires = tuple(n.Require(self.expr(r.children[0]), self.span(r))
                         for r in _trees(t.children, "require"))
        return n.Root(self.string(t.children[0]), budgets, requires, self.span(t))

    def _enum(self, t: Any) -> n.EnumDecl:
        name, *members = t.children
        return n.EnumDecl(self.ident(name), tuple(self.ident(m) for m in members), self.span(t))

    def _fact(self, t: Any) -> n.FactDecl:
        fields = tuple(self._field(f) for f in _trees(t.children, "field_decl"))
        return n.FactDecl(self.ident(t.children[0]), fields, t.data == "intent_decl",
                          self.span(t))

    def _field(self, t: Any) -> n.FieldDecl:
        key = bool(_tokens(t.children, "KEY"))
        name = _tokens(t.children, "NAME")[0]
        rest = [c for c in t.children if _is_tree(c)]
        type_ = self._type(rest[0])
        default = self.expr(rest[1]) if len(rest) > 1 else None
        return n.FieldDecl(self.ident(name), type_, key, default, self.span(t))

    def _type(self, t: Any) -> n.TypeRef:
        args = tuple(self._type(a) for a in _trees(t.children, "type"))
        return n.TypeRef(str(t.children[0]), args,
                         bool(_tokens(t.children, "QMARK")), self.span(t))

    def _agent(self, t: Any) -> n.Agent:
        tier: int | None = None
        tier_tok = _tokens(t.children, "NUMBER")
        if tier_tok:
            tier = self.whole_number(tier_tok[0], "`tier`")
        when = _trees(t.children, "when_clause")[0]
        where = _trees(t.children, "where_clause")
        outputs: list[n.Output] = []
        for o in _trees(t.children, "emit", "intend", "evaluate"):
            outputs.append(self._output(o))
        one = _trees(t.children, "one_at_a_time")
        return n.Agent(
            self.ident(t.children[0]), tier,
            tuple(self.pattern(p) for p in _trees(when.children, "pattern")),
            self.expr(where[0].children[0]) if where else None,
            tuple(self._call(c) for c in _trees(t.children, "call_stmt")),
            tuple(outputs), self.span(t),
            one_at_a_time=self._one_at_a_time(one[0]) if one else None)

    def _one_at_a_time(self, t: Any) -> n.OneAtATime:
        keys: list[n.OrderKey] = []
        for k in _trees(t.children, "order_by_var", "order_by_age"):
            word = k.children[0]
            direction = cast(Any, str(word.value))
            var = self.ident(k.children[1]) if k.data == "order_by_var" else None
            keys.append(n.OrderKey(direction, var, self.span(k)))
        return n.OneAtATime(tuple(keys), self.span(t))

    def _call(self, t: Any) -> n.ToolCall:
        names = _tokens(t.children, "NAME")
        return n.ToolCall(self.ident(names[0]), self.args(t.children), self.ident(names[-1]),
                          self.span(t))

    def _output(self, t: Any) -> n.Output:
        if t.data == "emit":
            lasting = bool(_tokens(t.children, "LASTING"))
            name = _tokens(t.children, "NAME")[0]
            conf = [c for c in t.children[1:] if _is_tree(c) and c.data != "arg"]
            return n.Emit(self.ident(name), self.args(t.children),
                          self.expr(conf[0]) if conf else None, self.span(t),
                          lasting=lasting)
        if t.data == "intend":
            return n.Intend(self.ident(t.children[0]), self.args(t.children), self.span(t))
        reason = _tokens(t.children, "STRING")
        return n.Evaluate(self.ident(t.children[0]), self.expr(t.children[1]),
                          self.string(reason[0]) if reason else None, self.span(t))

    def _policy(self, t: Any) -> n.Policy:
        strategy_tree = t.children[1]
        strategy: n.Strategy
        if strategy_tree.data == "resolve":
            strategy = n.Resolve(tuple(self._criterion(c) for c in strategy_tree.children),
                                 self.span(strategy_tree))
        elif strategy_tree.data == "combine":
            func, field = strategy_tree.children
            strategy = n.Combine(cast(Any, str(func)), self.ident(field), self.span(strategy_tree))
        elif strategy_tree.data == "keep_all":
            strategy = n.KeepAll(self.span(strategy_tree))
        else:
            strategy = n.RejectAll(self.span(strategy_tree))
        ties = _trees(t.children, "on_tie")
        on_tie = (n.OnTie(cast(Any, str(ties[0].children[0])), self.span(ties[0]))
                  if ties else None)
        return n.Policy(self.ident(t.children[0]), strategy, on_tie, self.span(t))

    def _criterion(self, t: Any) -> n.Criterion:
        sp = self.span(t)
        if t.data == "by_field":
            return n.ByField(cast(Any, str(t.children[0])), self.ident(t.children[1]), sp)
        if t.data == "by_cycle":
            return n.ByCycle(cast(Any, str(t.children[0])), sp)
        if t.data == "by_priority":
            return n.ByPriority(tuple(self.ident(c) for c in t.children), sp)
        if t.data == "by_majority":
            return n.ByMajority(sp)
        return n.ByResolver(self.ident(t.children[0]), sp)

    def _prune(self, t: Any) -> n.Prune:
        return n.Prune(self.ident(t.children[0]), self.expr(t.children[1]), self.span(t),
                       into=self._prune_into(t))

    def _prune_into(self, t: Any) -> n.Ident | None:
        into = _trees(t.children, "prune_into")
        return self.ident(into[0].children[0]) if into else None

    def _invariant_never(self, t: Any) -> n.Invariant:
        where = _trees(t.children, "where_clause")
        return n.Invariant(self.ident(t.children[0]),
                           tuple(self.pattern(p) for p in _trees(t.children, "pattern")),
                           self.expr(where[0].children[0]) if where else None, False,
                           self.span(t))

    def _invariant_always(self, t: Any) -> n.Invariant:
        return n.Invariant(self.ident(t.children[0]), (), self.expr(t.children[1]), True,
                           self.span(t))

    def _gate(self, t: Any) -> n.Gate:
        return n.Gate(self.ident(t.children[0]),
                      self.expr(t.children[1]) if len(t.children) > 1 else None,
                      self.span(t))

    def _prune_using(self, t: Any) -> n.Prune:
        names = _tokens(t.children, "NAME")
        args = _trees(t.children, "pruner_args")
        name = self.ident(names[1])
        end = self.span(args[0]) if args else name.span
        use = n.PrunerUse(name, self.args(args[0].children) if args else (),
                          name.span.to(end))
        return n.Prune(self.ident(names[0]), None, self.span(t), use, self._prune_into(t))

    def _test(self, t: Any) -> n.Test:
        steps: list[n.TestStep] = []
        cases: n.Cases | None = None
        for s in t.children[1:]:
            sp = self.span(s)
            if s.data == "cases":
                cases = self._cases(s)
            elif s.data == "given":
                steps.append(n.Given(self.ident(s.children[0]), self.args(s.children), sp))
            elif s.data == "given_now":
                steps.append(n.GivenNow(self.expr(s.children[-1]), sp))
            elif s.data == "mock":
                steps.append(self._mock(s, sp))
            elif s.data in ("expect_fact", "expect_no"):
                steps.append(n.ExpectFact(self.pattern(s.children[0]), s.data == "expect_no", sp))
            elif s.data == "expect_conflict":
                steps.append(n.ExpectConflict(self.pattern(s.children[0]), sp))
            elif s.data in ("decide_approve", "decide_reject"):
                steps.append(n.Decide(self.pattern(_trees(s.children, "pattern")[0]),
                                      s.data == "decide_approve", sp))
            elif s.data == "expect_pending":
                steps.append(n.ExpectPending(self.pattern(s.children[0]), sp))
            else:
                steps.append(n.ExpectStatus(self.ident(s.children[0]), sp))
        return n.Test(self.string(t.children[0]), tuple(steps), self.span(t), cases)

    def _mock(self, t: Any, sp: Span) -> n.Mock:
        tool, args = self.ident(t.children[0]), self.args(t.children)
        fails = _trees(t.children, "mock_fails")
        if fails:
            return n.Mock(tool, args, None, sp, self.string(fails[0].children[0]))
        return n.Mock(tool, args, self.expr(t.children[-1]), sp)

    def _cases(self, t: Any) -> n.Cases:
        trees = _trees(t.children, "case_row")
        rows = tuple(n.Record(self.args(r.children), self.span(r)) for r in trees)
        names = tuple(self.string(named[0]) if named else None
                      for named in (_tokens(r.children, "STRING") for r in trees))
        files = _tokens(t.children, "STRING")
        return n.Cases(rows, self.string(files[0]) if files else None, self.span(t),
                       names if any(name is not None for name in names) else ())

    # ---------------------------------------------------------- patterns and args

    def pattern(self, t: Any) -> n.Pattern:
        binder = _trees(t.children, "binder")
        return n.Pattern(
            self.ident(_tokens(t.children, "NAME")[0]),
            tuple(self._field_match(f) for f in _trees(t.children, "field_match")),
            self.ident(binder[0].children[0]) if binder else None,
            bool(_tokens(t.children, "NOT")), bool(_tokens(t.children, "INTENT")),
            self.span(t))

    def _field_match(self, t: Any) -> n.FieldMatch:
        value = self.expr(t.children[1]) if len(t.children) > 1 else None
        return n.FieldMatch(self.ident(t.children[0]), value, self.span(t))

    def args(self, children: list[Any]) -> tuple[n.Arg, ...]:
        return tuple(n.Arg(self.ident(a.children[0]), self.expr(a.children[1]), self.span(a))
                     for a in _trees(children, "arg"))

    # ---------------------------------------------------------------- expressions

    def expr(self, t: Any) -> n.Expr:
        if self._depth >= MAX_EXPR_DEPTH:
            return self._too_deep(t)
        self._depth += 1
        try:
            return self._expr(t)
        finally:
            self._depth -= 1

    def _too_deep(self, t: Any) -> n.Expr:
        sp = self.span(t)
        if not self._too_deep_reported:
            self._too_deep_reported = True
            self.error(TOO_DEEP,
                       f"expression nested more than {MAX_EXPR_DEPTH} levels deep (each "
                       "operator of a chain like `a + b + c` nests one level)",
                       Span(sp.file, sp.line, sp.column, sp.line, sp.column + 1),
                       "split it into smaller expressions: compute a part in another "
                       "agent and emit it as a fact, or split a long chain of `+`, `and` "
                       "or `or` into parts in parentheses: `(a + b) + (c + d)`")
        return n.Wildcard(sp)

    def _expr(self, t: Any) -> n.Expr:
        sp = self.span(t)
        kind = t.data
        c = t.children
        if kind == "number":
            return self.number(c[0])
        if kind == "string":
            return n.Literal(self.string(c[0]), str(c[0]), sp)
        if kind == "boolean":
            return n.Literal(str(c[0]) == "true", str(c[0]), sp)
        if kind == "name":
            return n.Name(str(c[0]), sp)
        if kind == "wildcard":
            return n.Wildcard(sp)
        if kind == "binary":
            return n.Binary(cast(Any, str(c[1])), self.expr(c[0]), self.expr(c[2]), sp)
        if kind == "unary":
            return n.Unary(cast(Any, str(c[0])), self.expr(c[1]), sp)
        if kind == "if_expr":
            return n.IfExpr(self.expr(c[1]), self.expr(c[2]), self.expr(c[3]), sp)
        if kind == "attribute":
            return n.Attribute(self.expr(c[0]), self.ident(c[1]), sp)
        if kind == "list_expr":
            return n.ListExpr(tuple(self.expr(x) for x in c if x is not None), sp)
        if kind == "record":
            return n.Record(self.args(c), sp)
        if kind == "func_call":
            return self._func_call(t)
        raise AssertionError(f"unknown expression rule {kind!r}")  # grammar and builder disagree

    def _call_args(self, t: Any) -> list[Any]:
        return [a for a in t.children[1:] if a is not None]

    def _func_call(self, t: Any) -> n.Expr:
        func = str(t.children[0])
        args = self._call_args(t)
        sp = self.span(t)
        if func in AGGREGATES and args and self._pattern_shaped(func, args[0]):
            return self._aggregate(t, func, args)
        if func in _ALWAYS_AGGREGATE:
            self.error(BAD_CALL, f"`{func}` needs a pattern as its first argument", sp,
                       f"write `{func}(Fact(field: value)"
                       + (")`" if func == "count" else ", field)`"))
        exprs: list[n.Expr] = []
        for a in args:
            if a.data != "positional_arg":
                pattern_like = func[:1].isupper()  # `not B(id: id)` in `where`
                self.error(BAD_CALL, f"named arguments are not allowed in a call of `{func}`",
                           self.span(a),
                           f"`{func}(…)` reads as a pattern: write `and not {func}(…)` in "
                           f"`when`, or `count({func}(…)) == 0` in `where`" if pattern_like
                           else "pass the value alone (`round(x, 2)`); `field: value` is "
                           "only written in patterns")
                exprs.append(self.expr(a.children[-1]) if a.data == "named_arg" else n.Wildcard(
                    self.span(a)))
            else:
                exprs.append(self.expr(a.children[0]))
        return n.FuncCall(self.ident(t.children[0]), tuple(exprs), sp)

    def _pattern_shaped(self, func: str, arg: Any) -> bool:
        if arg.data == "intent_arg":
            return True
        inner = arg.children[0] if arg.data == "positional_arg" else None
        if inner is None or not _is_tree(inner) or inner.data != "func_call":
            return False
        if func in _ALWAYS_AGGREGATE:
            return True
        callee = str(inner.children[0])
        named = any(a.data != "positional_arg" for a in self._call_args(inner))
        # Fact types are capitalised by convention; functions are not (`max(abs(x), 1)`).
        return named or callee[:1].isupper()

    def _aggregate(self, t: Any, func: str, args: list[Any]) -> n.Aggregate:
        sp = self.span(t)
        pattern = self._pattern_from_call(args[0])
        field: n.Ident | None = None
        want = 1 if func == "count" else 2
        if len(args) != want:
            self.error(BAD_CALL, f"`{func}` over the context takes {want} argument"
                       f"{'s' if want > 1 else ''}, got {len(args)}", sp,
                       "write `count(Fact(…))`" if func == "count"
                       else f"write `{func}(Fact(…), field)`")
        if func != "count" and len(args) > 1:
            second = args[1]
            inner = second.children[0] if second.data == "positional_arg" else None
            if inner is not None and _is_tree(inner) and inner.data == "name":
                field = self.ident(inner.children[0])
            else:
                self.error(BAD_CALL, f"the second argument of `{func}` must be a field name",
                           self.span(second), f"write `{func}(Fact(…), field)`")
        if func != "count" and field is None:
            field = n.Ident("", sp)
        return n.Aggregate(cast(Any, func), pattern, field, sp)

    def _pattern_from_call(self, arg: Any) -> n.Pattern:
        intent = arg.data == "intent_arg"
        if intent:
            type_tok = arg.children[1]
            fields_src = [a for a in arg.children[2:] if a is not None]
        else:
            call = arg.children[0]
            type_tok = call.children[0]
            fields_src = self._call_args(call)
        fields: list[n.FieldMatch] = []
        for f in fields_src:
            if f.data == "named_arg":
                fields.append(n.FieldMatch(self.ident(f.children[0]), self.expr(f.children[1]),
                                           self.span(f)))
                continue
            inner = f.children[0] if f.data == "positional_arg" else None
            if inner is not None and _is_tree(inner) and inner.data == "name":
                fields.append(n.FieldMatch(self.ident(inner.children[0]), None, self.span(f)))
            else:
                self.error(BAD_CALL, "a pattern field is written `field` or `field: value`",
                           self.span(f), "name the field: `amount: 10.0`")
        return n.Pattern(self.ident(type_tok), tuple(fields), None, False, intent,
                         self.span(arg))

    # ------------------------------------------------------------------- literals

    def number(self, tok: Any) -> n.Literal | n.Duration:
        text = str(tok)
        sp = self.tok_span(tok)
        duration = _DURATION.match(text)
        try:
            if duration:
                ms = int(duration.group(1)) * _UNIT_MS[duration.group(2)]
                if ms <= _MAX_DURATION_MS:
                    return n.Duration(ms, text, sp)
                shown = f"`{text}`" if len(text) <= 40 else f"`{text[:20]}…`"
                self.error(BAD_NUMBER, f"{shown} is too long a duration: a duration lasts "
                           f"at most {_MAX_DURATION_DAYS:,} days", sp,
                           "write a shorter duration (dates run from year 1 to 9999, "
                           "about 3.65 million days)")
                return n.Duration(0, text, sp)
            if _INT.match(text):
                digits = text.replace("_", "").lstrip("0")
                # int() of more than 4,300 digits raises, so count them first
                if len(digits) <= len(str(INT_MAX)) and int(digits or "0") <= INT_MAX:
                    return n.Literal(int(text), text, sp)
                shown = (f"`{text}`" if len(text) <= 40
                         else f"`{text[:20]}…` ({len(digits):,} digits)")
                self.error(BAD_NUMBER, f"{shown} is too large for an int: integers are "
                           f"64-bit, up to {INT_MAX}", sp,
                           "write a float (`1e20`) for a larger quantity, or a string to "
                           "keep every digit")
                return n.Literal(0, text, sp)
            if _FLOAT.match(text):
                value = float(text)
                if float_underflows(text, value):
                    self.error(BAD_NUMBER, f"`{text}` is too small for a float: it would "
                               "be 0.0", sp, "write 0.0, or a number whose size is at "
                               f"least {SMALLEST_FLOAT}")
                    return n.Literal(0.0, text, sp)
                if math.isfinite(value):
                    return n.Literal(value, text, sp)
                self.error(BAD_NUMBER, f"`{text}` is too large for a float", sp,
                           "write a number whose size is below about 1.8e308")
                return n.Literal(0.0, text, sp)
        except ValueError:
            pass
        self.error(BAD_NUMBER, f"malformed number or duration `{text}`", sp,
                   "write a number like `50_000` or `1.05` (one `_` between digits), or a "
                   "duration like `250ms`, `2s`, `5m`, `3h`, `30d`, `2w`")
        return n.Literal(0, text, sp)

    def whole_number(self, tok: Any, what: str) -> int:
        value = self.number(tok)
        if isinstance(value, n.Literal) and type(value.value) is int:
            return value.value
        if not self.diagnostics or self.diagnostics[-1].span != self.tok_span(tok):
            self.error(BAD_NUMBER, f"{what} takes a whole number, not `{tok}`",
                       self.tok_span(tok), f"write {what} 1, 2, 3…")
        return 0

    def string(self, tok: Any) -> str:
        raw = str(tok)[1:-1]
        out: list[str] = []
        for i, piece in _string_pieces(raw):
            if piece.startswith("\\"):
                esc = _ESCAPES.get(piece[1:])
                if esc is None:
                    col = tok.column + 1 + i
                    line = tok.line + self.line_offset
                    self.error(BAD_ESCAPE, f"unknown escape `{piece}` in a string",
                               Span(self.file, line, col, line, col + len(piece)),
                               'only \\" \\\\ \\n \\t are escapes; write \\\\ for a backslash')
                    esc = piece[1:]
                out.append(esc)
            else:
                out.append(piece)
        return "".join(out)


def _string_pieces(raw: str) -> Iterator[tuple[int, str]]:
    for m in re.finditer(r"\\.|[^\\]+", raw, re.S):
        yield m.start(), m.group()
