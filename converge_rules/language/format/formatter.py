"""The one canonical layout of a ``.cvg`` file (``converge fmt``).

Promises: the output parses to a tree equal to the input tree (layout and spans aside),
formatting is idempotent (``fmt(fmt(x)) == fmt(x)``), and every comment survives with
its text: own-line comments stay before the line they preceded, trailing comments stay
at the end of their line.

The layout is the one LANGUAGE.md is written in: two-space indent; one blank line
between items, except that one-line items written without a blank line between them stay
grouped (a run of one-line ``fact``/``intent`` declarations gets its ``{`` aligned two
spaces past the longest name); ``=`` in ``root`` budgets at a fixed column
(:data:`BUDGET_COLUMN`), so adding a budget never realigns the others; ``where`` on the
``when`` line when it fits, ``and``-continued patterns and one-argument-per-line calls
when a line would pass 100 columns, and a long ``where``, ``require`` or argument value
broken before each ``or``/``and`` of its chain and each ``else`` (:func:`_wrap_expr`);
trailing comments from column 42, or two spaces after longer code, shared by consecutive
commented lines; the fewest parentheses that keep an expression's meaning; numbers and
durations as written; strings re-escaped.
Inside blocks, one blank line survives where the source had one or more.

Layout depends only on the tree, the line width, where comments stand and where blank
lines were; formatting keeps each of those, which is what makes it idempotent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from converge_rules.errors import RulesSyntaxError
from converge_rules.language.builtins import iso_text
from converge_rules.language.syntax import nodes as n
from converge_rules.language.syntax.span import Span

LINE_WIDTH = 100
#: Budget names are padded to this width (``agent_timeout``); a longer name
#: (``max_tool_calls``) is followed by one space. Fixed, so budget diffs stay one line.
BUDGET_COLUMN = 13
INDENT = "  "
# LANGUAGE.md starts trailing comments at column 42 (41 characters of code before ``#``).
COMMENT_COLUMN = 41
COMMENT_GAP = 2

__all__ = ["format_expr", "format_module", "format_pattern", "format_source", "format_value",
           "quote"]


# ----------------------------------------------------------------------- expressions

# Binding strength, loosest first, as the grammar defines it.
_IF, _OR, _AND, _NOT, _CMP, _ADD, _MUL, _NEG, _POSTFIX, _ATOM = range(10)

_BINARY_PREC: dict[str, int] = {
    "or": _OR,
    "and": _AND,
    "==": _CMP, "!=": _CMP, "<": _CMP, "<=": _CMP, ">": _CMP, ">=": _CMP, "in": _CMP,
    "+": _ADD, "-": _ADD,
    "*": _MUL, "/": _MUL, "%": _MUL,
}


def format_expr(expr: n.Expr) -> str:
    """An expression in canonical form, with only the parentheses its meaning needs."""
    return _expr(expr)[0]


def _paren(text_prec: tuple[str, int], needs: bool) -> str:
    text = text_prec[0]
    return f"({text})" if needs else text


def _expr(e: n.Expr) -> tuple[str, int]:
    """The text of ``e`` and how tightly it binds."""
    if isinstance(e, n.Literal):
        text = _literal(e)
        return text, _NEG if text.startswith("-") else _ATOM
    if isinstance(e, n.Duration):
        return (e.text or f"{e.milliseconds}ms"), _ATOM
    if isinstance(e, n.Wildcard):
        return "_", _ATOM
    if isinstance(e, n.Name):
        return e.id, _ATOM
    if isinstance(e, n.Attribute):
        base = _expr(e.value)
        numeric = isinstance(e.value, n.Literal) and not isinstance(e.value.value, str)
        return f"{_paren(base, base[1] < _POSTFIX or numeric)}.{e.attr.name}", _POSTFIX
    if isinstance(e, n.Unary):
        operand = _expr(e.operand)
        if e.op == "not":
            return f"not {_paren(operand, operand[1] < _NOT)}", _NOT
        return f"-{_paren(operand, operand[1] < _NEG)}", _NEG
    if isinstance(e, n.Binary):
        prec = _BINARY_PREC[e.op]
        left, right = _expr(e.left), _expr(e.right)
        if prec == _CMP:  # comparisons do not chain: parenthesise either side
            left_needs, right_needs = left[1] <= _CMP, right[1] <= _CMP
        else:  # left-associative
            left_needs, right_needs = left[1] < prec, right[1] <= prec
        return f"{_paren(left, left_needs)} {e.op} {_paren(right, right_needs)}", prec
    if isinstance(e, n.IfExpr):
        cond, then = _expr(e.condition), _expr(e.then)
        otherwise = format_expr(e.otherwise)
        return (
            f"if {_paren(cond, cond[1] == _IF)} then {_paren(then, then[1] == _IF)} "
            f"else {otherwise}",
            _IF,
        )
    if isinstance(e, n.FuncCall):
        return f"{e.func.name}({', '.join(format_expr(a) for a in e.args)})", _POSTFIX
    if isinstance(e, n.Aggregate):
        inner = format_pattern(e.pattern)
        if e.field is not None:
            inner += f", {e.field.name}"
        return f"{e.func}({inner})", _POSTFIX
    if isinstance(e, n.ListExpr):
        return f"[{', '.join(format_expr(i) for i in e.items)}]", _ATOM
    if isinstance(e, n.Record):
        return "{" + _args(e.fields) + "}", _ATOM
    raise _unknown(e)


def _unknown(node: object) -> TypeError:
    # A node type added to the tree after this formatter was written: fail loudly
    # rather than print something that parses to a different ruleset.
    return TypeError(f"the formatter cannot write a {type(node).__name__} node yet")


def _literal(lit: n.Literal) -> str:
    value = lit.value
    if isinstance(value, str):
        return quote(value)  # rule text: every character as the language writes it
    if isinstance(value, bool) or not lit.text:
        return format_value(value)
    # Numbers keep how they were written (``50_000``) when the text says the same.
    return lit.text


def format_value(value: Any, *, enum: bool = False) -> str:
    """A run-time value written as a literal: ``"A1"``, ``1.5``, ``true``, ``[1, 2]``,
    ``{usd: 1.1}``, and ``none`` for an empty optional value (which has no literal).
    Enum members are strings at run time; ``enum`` writes them bare.

    Values come from input files and tools, so a string's control characters that the
    language has no escape for are written as JSON writes them (``\\r``,
    ``\\u001b``) rather than raw: they must not drive the terminal."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, str):
        if enum:
            return value
        return _UNWRITABLE.sub(_json_escape, quote(value))
    if isinstance(value, list | tuple):
        return "[" + ", ".join(format_value(v, enum=enum) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {format_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, datetime):
        return f'datetime("{iso_text(value)}")'
    if isinstance(value, date):
        return f'date("{iso_text(value)}")'
    if isinstance(value, timedelta):
        return duration_literal(value)
    return repr(value)


_UNITS = (("w", timedelta(weeks=1)), ("d", timedelta(days=1)), ("h", timedelta(hours=1)),
          ("m", timedelta(minutes=1)), ("s", timedelta(seconds=1)),
          ("ms", timedelta(milliseconds=1)))


def duration_literal(value: timedelta) -> str:
    """A duration as the language writes it: in the largest unit it is a whole number
    of (``52d``, ``90m``, ``-2h``); one finer than a millisecond has no literal and is
    written as its ISO 8601 text in a string."""
    size = abs(value)
    if not size:
        return "0s"
    sign = "-" if value < timedelta(0) else ""
    for unit, length in _UNITS:
        if not size % length:
            return f"{sign}{size // length}{unit}"
    return quote(iso_text(value))


_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t"}


def quote(text: str) -> str:
    """A string literal for ``text``: double quotes; ``\\ \" \\n \\t`` are the
    language's only escapes, so every other character is written as itself."""
    return '"' + "".join(_ESCAPES.get(ch, ch) for ch in text) + '"'


# The control characters :func:`quote` writes as themselves (all but tab and newline).
_UNWRITABLE = re.compile(r"[\x00-\x08\x0b-\x1f]")
_JSON_ESCAPES = {"\b": "\\b", "\f": "\\f", "\r": "\\r"}


def _json_escape(m: re.Match[str]) -> str:
    return _JSON_ESCAPES.get(m.group(), f"\\u{ord(m.group()):04x}")


def _prune_rule(prune: n.Prune) -> str:
    """``when EXPR`` or ``using NAME(args)`` (``using NAME`` without arguments)."""
    if prune.using is not None:
        return "using " + _pruner_use(prune.using)
    assert prune.condition is not None  # the parser gives one or the other
    return f"when {format_expr(prune.condition)}"


def _pruner_use(use: n.PrunerUse) -> str:
    return use.name.name + (f"({_args(use.args)})" if use.args else "")


def _args(args: Iterable[n.Arg]) -> str:
    return ", ".join(f"{a.name.name}: {format_expr(a.value)}" for a in args)


def format_pattern(p: n.Pattern, shown: Mapping[str, str] | None = None) -> str:
    """``[binder: ][not ][intent ]Type(field, field: value)``; a field named in
    ``shown`` is written ``field: text`` with the text given there (a value the field
    was found to hold, say) instead of what the pattern says."""
    shown = shown or {}
    fields = ", ".join(
        f"{f.field.name}: {shown[f.field.name]}" if f.field.name in shown
        else f.field.name if f.value is None
        else f"{f.field.name}: {format_expr(f.value)}"
        for f in p.fields
    )
    prefix = f"{p.binder.name}: " if p.binder is not None else ""
    prefix += "not " if p.negated else ""
    prefix += "intent " if p.intent else ""
    return f"{prefix}{p.type.name}({fields})"


def _type(t: n.TypeRef) -> str:
    args = f"[{', '.join(_type(a) for a in t.args)}]" if t.args else ""
    return f"{t.name}{args}{'?' if t.optional else ''}"


def _field_decl(f: n.FieldDecl) -> str:
    default = f" = {format_expr(f.default)}" if f.default is not None else ""
    return f"{'key ' if f.key else ''}{f.name.name}: {_type(f.type)}{default}"


def _criterion(c: n.Criterion) -> str:
    if isinstance(c, n.ByField):
        return f"{c.direction} {c.field.name}"
    if isinstance(c, n.ByCycle):
        return c.which
    if isinstance(c, n.ByPriority):
        return f"priority [{', '.join(a.name for a in c.agents)}]"
    if isinstance(c, n.ByMajority):
        return "majority"
    if isinstance(c, n.ByResolver):
        return f"using {c.resolver.name}"
    raise _unknown(c)


def _strategy(s: n.Strategy) -> str:
    if isinstance(s, n.Resolve):
        return "resolve by " + ", then ".join(_criterion(c) for c in s.criteria)
    if isinstance(s, n.Combine):
        return f"combine {s.func} {s.field.name}"
    if isinstance(s, n.KeepAll):
        return "keep all"
    if isinstance(s, n.RejectAll):
        return "reject"
    raise _unknown(s)


def format_one_at_a_time(one: n.OneAtATime) -> str:
    """``one at a time by lowest seat, then latest``."""
    return "one at a time by " + ", then ".join(_order_key(k) for k in one.keys)


def _order_key(key: n.OrderKey) -> str:
    return key.direction if key.var is None else f"{key.direction} {key.var.name}"


def _output(o: n.Output) -> _Stmt:
    if isinstance(o, n.Emit):
        conf = f" confidence {format_expr(o.confidence)}" if o.confidence is not None else ""
        lasting = "lasting " if o.lasting else ""
        return _with_args(f"emit {lasting}{o.type.name}", o.args, conf, o.span)
    if isinstance(o, n.Intend):
        return _with_args(f"intend {o.type.name}", o.args, "", o.span)
    if not isinstance(o, n.Evaluate):
        raise _unknown(o)
    reason = f" reason {quote(o.reason)}" if o.reason is not None else ""
    text = f"evaluate {o.target.name} score {format_expr(o.score)}{reason}"
    return _Stmt.line(text, _region(o.span))


def _cases(cases: n.Cases) -> _Stmt:
    """A table test's rows, one per line, or its fixture file."""
    if cases.file is not None:
        return _Stmt.line(f"cases {quote(cases.file)}", _region(cases.span))
    parts = [("cases {", (cases.span.line, cases.span.line), 0)]
    for i, row in enumerate(cases.rows):
        name = cases.name_of(i)
        named = f"case {quote(name)} " if name is not None else ""
        parts.append((named + format_expr(row), _region(row.span), 1))
    parts.append(("}", (cases.span.end_line, cases.span.end_line), 0))
    return _Stmt(tuple(parts), wrapped=True)


def _step(s: n.TestStep) -> _Stmt:
    if isinstance(s, n.Given):
        return _with_args(f"given {s.type.name}", s.args, "", s.span)
    if isinstance(s, n.GivenNow):
        return _Stmt.line(f"given now {format_expr(s.value)}", _region(s.span))
    if isinstance(s, n.Mock):
        if s.fails is not None:
            return _with_args(f"mock tool {s.tool.name}", s.args, f" fails {quote(s.fails)}",
                              s.span)
        if s.returns is None:
            raise TypeError("a Mock node needs `returns` or `fails`")  # built by hand
        return _with_args(f"mock tool {s.tool.name}", s.args,
                          f" returns {format_expr(s.returns)}", s.span)
    if isinstance(s, n.ExpectFact):
        text = f"expect {'no ' if s.negated else ''}{format_pattern(s.pattern)}"
    elif isinstance(s, n.ExpectConflict):
        text = f"expect conflict {format_pattern(s.pattern)}"
    elif isinstance(s, n.ExpectStatus):
        text = f"expect status {s.status.name}"
    elif isinstance(s, n.Decide):
        text = f"{'approve' if s.approve else 'reject'} {format_pattern(s.pattern)}"
    elif isinstance(s, n.ExpectPending):
        text = f"expect pending {format_pattern(s.pattern)}"
    else:
        raise _unknown(s)
    return _Stmt.line(text, _region(s.span))


# ----------------------------------------------------------------------------- lines


@dataclass(slots=True)
class _Line:
    """One output line. ``first``/``last`` are the source lines it came from (0 when
    unknown); comments are attached to lines by them."""

    depth: int
    text: str
    first: int
    last: int
    comment_depth: int | None = None  # a closing brace: comments before it sit inside
    blank_before: bool = False
    before: list[str] = field(default_factory=list)  # own-line comments; "" a blank line
    trailing: str | None = None

    @property
    def width(self) -> int:
        return len(INDENT) * self.depth + len(self.text)


def _region(span: Span) -> tuple[int, int]:
    return span.line, span.end_line


_Region = tuple[int, int]


@dataclass(frozen=True, slots=True)
class _Stmt:
    """A statement inside a block: one line, or several when its arguments do not fit
    on one. ``parts`` are each line's text, source region and extra depth; the last
    part of a ``wrapped`` statement is its closing parenthesis, and comments before it
    sit one level in, with the arguments."""

    parts: tuple[tuple[str, _Region, int], ...]
    wrapped: bool = False

    @staticmethod
    def line(text: str, region: _Region) -> _Stmt:
        return _Stmt(((text, region, 0),))


def _with_args(head: str, args: tuple[n.Arg, ...], tail: str, span: Span) -> _Stmt:
    """``head(arg: value, …)tail`` on one line at statement depth, or with one
    argument per line (each with a trailing comma) when that line would be too long."""
    single = f"{head}({_args(args)}){tail}"
    if not args or len(INDENT) + len(single) <= LINE_WIDTH:
        return _Stmt.line(single, _region(span))
    parts = [(head + "(", (span.line, span.line), 0)]
    for a in args:
        parts.extend(_wrap_expr(a.value, f"{a.name.name}: ", ",", 1, 2, *_region(a.span)))
    parts.append((")" + tail, (span.end_line, span.end_line), 0))
    return _Stmt(tuple(parts), wrapped=True)


def _wrap_expr(e: n.Expr, prefix: str, suffix: str, extra: int, cont: int,
               start: int, end: int) -> list[tuple[str, _Region, int]]:
    """``prefix + e + suffix`` as the parts of a statement (depth 1 + ``extra``): one
    line when it fits in :data:`LINE_WIDTH`; else broken before each ``or``/``and`` of
    a chain and before each ``else`` of an ``if``, the continuations at ``cont`` (a
    part nested in another goes one level further in). ``start``/``end`` are the source
    lines the text covers (comments attach by them). What does not break this way (a
    long sum, a long call) stays on its line."""
    text = prefix + format_expr(e) + suffix
    if len(INDENT) * (1 + extra) + len(text) <= LINE_WIDTH:
        return [(text, (start, end), extra)]
    if isinstance(e, n.IfExpr):
        parts: list[tuple[str, _Region, int]] = []
        head, depth, first = prefix + "if ", extra, start
        branch: n.Expr = e
        while isinstance(branch, n.IfExpr):
            cond, then = _expr(branch.condition), _expr(branch.then)
            tail = f" then {_paren(then, then[1] == _IF)}"
            if cond[1] == _IF:  # (a condition that is itself an if: on one line)
                parts.append((f"{head}({cond[0]}){tail}",
                              (first, branch.then.span.end_line), depth))
            else:
                parts.extend(_wrap_expr(branch.condition, head, tail, depth, cont + 1,
                                        first, branch.then.span.end_line))
            head, depth = "else if ", cont
            branch = branch.otherwise
            first = branch.span.line
        parts.extend(_wrap_expr(branch, "else ", suffix, cont, cont + 1, first, end))
        return parts
    if not (isinstance(e, n.Binary) and e.op in ("or", "and")):
        return [(text, (start, end), extra)]
    operands: list[n.Expr] = [e.right]
    left = e.left
    while isinstance(left, n.Binary) and left.op == e.op:
        operands.append(left.right)
        left = left.left
    operands.append(left)
    operands.reverse()
    prec = _BINARY_PREC[e.op]
    parts = []
    for i, operand in enumerate(operands):
        last = i == len(operands) - 1
        head = prefix if i == 0 else f"{e.op} "
        tail = suffix if last else ""
        at = extra if i == 0 else cont
        first = start if i == 0 else operand.span.line
        until = end if last else operand.span.end_line
        inner = _expr(operand)
        # the first operand is the chain's left end; the others are right operands
        if inner[1] < prec or (i > 0 and inner[1] <= prec):
            parts.append((f"{head}({inner[0]}){tail}", (first, until), at))
        else:
            parts.extend(_wrap_expr(operand, head, tail, at, cont + 1, first, until))
    return parts


class _Layout:
    """Turns a module into lines, knowing which source lines hold comments so that
    blank lines between siblings and comment placement can follow the source."""

    def __init__(self, module: n.Module) -> None:
        self.module = module
        self.comment_lines = {c.span.line for c in module.comments if not c.trailing}
        self.lines: list[_Line] = []

    # -- helpers

    def _gap(self, prev_last: int, next_first: int, *, before_comments: bool = False) -> bool:
        """Whether the source had a blank line between two siblings (only before the
        comments between them, with ``before_comments``: a blank line after a comment
        is kept with the comment)."""
        if prev_last <= 0 or next_first <= prev_last:
            return False
        between = range(prev_last + 1, next_first)
        if before_comments:
            stop = next((line for line in between if line in self.comment_lines), next_first)
            between = range(prev_last + 1, stop)
        return any(line not in self.comment_lines for line in between)

    def _comment_inside(self, span: Span) -> bool:
        start, end = (span.line, span.column), (span.end_line, span.end_column)
        return any(start < (c.span.line, c.span.column) < end for c in self.module.comments)

    def _comment_before_where(self, agent: n.Agent) -> bool:
        """Whether a comment stands between the first pattern and the ``where`` guard
        (then the guard keeps a line of its own, and the comment its place)."""
        assert agent.where is not None
        start, where = agent.patterns[0].span, agent.where.span
        between = Span(start.file, start.line, start.column, where.line, where.column)
        return self._comment_inside(between)

    def _add(self, depth: int, text: str, region: tuple[int, int], *,
             comment_depth: int | None = None, blank_before: bool = False) -> None:
        self.lines.append(_Line(depth, text, region[0], region[1], comment_depth, blank_before))

    def _children(self, depth: int, children: Sequence[_Stmt]) -> int:
        """Lay out the statements of a block; return the last source line they cover."""
        prev_last = 0
        for i, stmt in enumerate(children):
            for k, (text, region, extra) in enumerate(stmt.parts):
                closer = stmt.wrapped and k == len(stmt.parts) - 1
                self._add(depth + extra, text, region,
                          comment_depth=depth + 1 if closer else None,
                          blank_before=k == 0 and i > 0 and self._gap(
                              prev_last, region[0], before_comments=True))
            prev_last = stmt.parts[-1][1][1]
        return prev_last

    def _close(self, span: Span, last: int) -> None:
        """The closing brace; a blank line before it survives only to set off the
        comments that end the block."""
        end = span.end_line
        blank = any(line in self.comment_lines for line in range(last + 1, end)) and self._gap(
            last, end, before_comments=True)
        self._add(0, "}", (end, end), comment_depth=1, blank_before=blank)

    def _block(self, opener: str, span: Span, children: Sequence[_Stmt]) -> None:
        self._add(0, opener + " {", (span.line, span.line))
        self._close(span, self._children(1, children) or span.line)

    # -- items

    def build(self) -> list[_Line]:
        module = self.module
        if module.header is not None:
            h = module.header
            title = f" {quote(h.title)}" if h.title is not None else ""
            self._add(0, f"ruleset {h.name.name}{title}", _region(h.span))
        prev: n.Item | None = None
        prev_single = False
        for item in module.items:
            start = len(self.lines)
            self._item_lines(item)
            single = len(self.lines) - start == 1
            # One-line items written without a blank line between them stay grouped.
            grouped = (
                prev is not None and prev_single and single
                and prev.span.end_line < item.span.line
                and not self._gap(prev.span.end_line, item.span.line)
            )
            self.lines[start].blank_before = start > 0 and not grouped
            prev, prev_single = item, single
        self._align_facts()
        return self.lines

    def _item_lines(self, item: n.Item) -> None:
        region = _region(item.span)
        if isinstance(item, n.Import):
            self._add(0, f"import {quote(item.path)}", region)
        elif isinstance(item, n.Uses):
            self._add(0, "uses tool " + ", ".join(t.name for t in item.tools), region)
        elif isinstance(item, n.Prune):
            into = "" if item.into is None else f" into {item.into.name}"
            self._add(0, f"prune {item.type.name} {_prune_rule(item)}{into}", region)
        elif isinstance(item, n.Invariant):
            self._invariant(item, region)
        elif isinstance(item, n.Gate):
            when = "" if item.condition is None else f" when {format_expr(item.condition)}"
            self._add(0, f"approve {item.type.name}{when}", region)
        elif isinstance(item, n.EnumDecl):
            members = [m.name for m in item.members]
            self._braced(f"enum {item.name.name}", item.span, members,
                         [_region(m.span) for m in item.members])
        elif isinstance(item, n.FactDecl):
            keyword = "intent" if item.intent else "fact"
            self._braced(f"{keyword} {item.name.name}", item.span,
                         [_field_decl(f) for f in item.fields],
                         [_region(f.span) for f in item.fields])
        elif isinstance(item, n.Root):
            self._root(item)
        elif isinstance(item, n.Agent):
            self._agent(item)
        elif isinstance(item, n.Policy):
            children = [_Stmt.line(_strategy(item.strategy), _region(item.strategy.span))]
            if item.on_tie is not None:
                children.append(_Stmt.line(f"on tie {item.on_tie.mode}",
                                           _region(item.on_tie.span)))
            self._block(f"policy {item.type.name}", item.span, children)
        elif isinstance(item, n.Test):
            cases = [_cases(item.cases)] if item.cases is not None else []
            self._block(f"test {quote(item.name)}", item.span,
                        [*cases, *(_step(s) for s in item.steps)])
        else:
            raise _unknown(item)

    def _braced(self, head: str, span: Span, parts: list[str],
                regions: list[tuple[int, int]]) -> None:
        """``fact`` and ``enum``: one line when it fits and holds no comment, otherwise
        one part per line (commas are optional there, so none)."""
        inline = head + (" { " + ", ".join(parts) + " }" if parts else " {}")
        if len(inline) <= LINE_WIDTH and not self._comment_inside(span):
            self._add(0, inline, _region(span))
            return
        self._block(head, span, [_Stmt.line(p, r) for p, r in zip(parts, regions, strict=True)])

    def _root(self, root: n.Root) -> None:
        children: list[tuple[tuple[int, int], str, tuple[int, int]]] = []
        for b in root.budgets:
            text = f"{b.name.name.ljust(BUDGET_COLUMN)} = {format_expr(b.value)}"
            children.append(((b.span.line, b.span.column), text, _region(b.span)))
        requires: list[tuple[tuple[int, int], _Stmt]] = [
            ((r.span.line, r.span.column),
             _Stmt(tuple(_wrap_expr(r.condition, "require ", "", 0, 1, *_region(r.span)))))
            for r in root.requires]
        # Budgets and requires may interleave in the source; keep the source order so
        # that comments stay with their lines (the sort is stable for unknown spans).
        stmts = [(at, _Stmt.line(t, r)) for at, t, r in children] + requires
        stmts.sort(key=lambda c: c[0])
        self._block(f"root {quote(root.goal)}", root.span, [st for _, st in stmts])

    def _invariant(self, inv: n.Invariant, region: tuple[int, int]) -> None:
        """One line, as a ``prune`` is (its comments go where a prune's go)."""
        head = f"invariant {inv.name.name} "
        if inv.always:
            assert inv.condition is not None  # the parser gives `always` its condition
            self._add(0, head + "always " + format_expr(inv.condition), region)
            return
        head += "never " + " and ".join(format_pattern(p) for p in inv.patterns)
        where = "" if inv.condition is None else " where " + format_expr(inv.condition)
        self._add(0, head + where, region)

    def _agent(self, agent: n.Agent) -> None:
        tier = f" tier {agent.tier}" if agent.tier is not None else ""
        if agent.one_at_a_time is not None:
            tier += " " + format_one_at_a_time(agent.one_at_a_time)
        self._add(0, f"agent {agent.name.name}{tier} {{", (agent.span.line, agent.span.line))
        body: list[_Stmt] = []
        patterns = [format_pattern(p) for p in agent.patterns]
        first_line = agent.patterns[0].span.line if agent.patterns else 0
        last_line = agent.patterns[-1].span.end_line if agent.patterns else 0
        when = "when " + " and ".join(patterns)
        where = f"where {format_expr(agent.where)}" if agent.where is not None else None
        depth_width = len(INDENT)
        if depth_width + len(when) <= LINE_WIDTH:
            if (where is not None and agent.where is not None
                    and depth_width + len(when) + 1 + len(where) <= LINE_WIDTH
                    and not self._comment_before_where(agent)):
                body.append(_Stmt.line(f"{when} {where}", (first_line, agent.where.span.end_line)))
                where = None
            else:
                body.append(_Stmt.line(when, (first_line, last_line)))
        else:  # one pattern per line, ``and`` leading the continuation lines
            for i, (text, p) in enumerate(zip(patterns, agent.patterns, strict=True)):
                lead = "when " if i == 0 else INDENT + "and "
                body.append(_Stmt.line(lead + text, _region(p.span)))
        if where is not None and agent.where is not None:
            body.append(_Stmt(tuple(_wrap_expr(agent.where, "where ", "", 0, 1,
                                               *_region(agent.where.span)))))
        body.extend(_call(c) for c in agent.calls)
        body.extend(_output(o) for o in agent.outputs)
        self._close(agent.span, self._children(1, body) or agent.span.line)

    def _align_facts(self) -> None:
        """Align the ``{`` of a run of grouped one-line fact (or intent) declarations."""
        run: list[_Line] = []

        def flush() -> None:
            if len(run) > 1:
                heads = [ln.text.split(" {", 1)[0] for ln in run]
                width = max(len(h) for h in heads) + 1  # two spaces before the widest `{`
                for ln, head in zip(run, heads, strict=True):
                    ln.text = head.ljust(width) + ln.text[len(head):]
            run.clear()

        for line in self.lines:
            kind = line.text.split(" ", 1)[0]
            is_decl = line.depth == 0 and kind in ("fact", "intent") and line.text.endswith("}")
            same = bool(run) and run[0].text.split(" ", 1)[0] == kind
            if is_decl and (not run or (same and not line.blank_before)):
                run.append(line)
                continue
            flush()
            if is_decl:
                run.append(line)
        flush()


def _call(c: n.ToolCall) -> _Stmt:
    return _with_args(f"call {c.tool.name}", c.args, f" as {c.alias.name}", c.span)


# -------------------------------------------------------------------------- comments


def _attach_comments(lines: list[_Line], comments: Sequence[n.Comment]) -> list[str]:
    """Attach each comment to a line; return the comments that follow the last line."""
    tail: list[str] = []
    known = [ln for ln in lines if ln.first > 0]
    comment_lines = {c.span.line for c in comments if not c.trailing}
    for c in sorted(comments, key=lambda c: (c.span.line, c.span.column)):
        at = c.span.line
        if c.trailing:
            holders = [ln for ln in known if ln.first <= at <= ln.last]
            if holders:
                holder = holders[-1]
                if holder.trailing is not None:  # two end up on one line: keep order
                    holder.before.append(holder.trailing)
                holder.trailing = c.text
                continue
        target = next((ln for ln in known if ln.last >= at), None)
        if target is None:
            tail.append(c.text)
            continue
        if target.trailing is not None:  # it came first in the source: keep the order
            target.before.append(target.trailing)
            target.trailing = None
        target.before.append(c.text)
        after = at + 1
        if not c.trailing and after < target.first and after not in comment_lines:
            target.before.append("")  # the blank line that followed the comment
    return tail


def _render(lines: list[_Line], tail: list[str]) -> str:
    # Consecutive lines with trailing comments share one comment column.
    columns: dict[int, int] = {}
    i = 0
    while i < len(lines):
        if lines[i].trailing is None:
            i += 1
            continue
        j = i + 1
        while (j < len(lines) and lines[j].trailing is not None
               and not lines[j].blank_before and not lines[j].before):
            j += 1
        column = max(COMMENT_COLUMN, *(ln.width + COMMENT_GAP for ln in lines[i:j]))
        for k in range(i, j):
            columns[k] = column
        i = j
    out: list[str] = []
    for k, ln in enumerate(lines):
        if ln.blank_before and out:
            out.append("")
        comment_depth = ln.comment_depth if ln.comment_depth is not None else ln.depth
        if ln.comment_depth is not None:  # no blank line just before a closing bracket
            while ln.before and not ln.before[-1]:
                ln.before.pop()
        out.extend(INDENT * comment_depth + text if text else "" for text in ln.before)
        code = INDENT * ln.depth + ln.text
        if ln.trailing is not None:
            code = code.ljust(columns[k]) + ln.trailing
        out.append(code)
    if tail:
        if out:
            out.append("")
        out.extend(tail)
    return "\n".join(out) + "\n" if out else ""


# ------------------------------------------------------------------------ public API


def format_module(module: n.Module) -> str:
    """The canonical text of ``module``, comments included, ending in one newline."""
    lines = _Layout(module).build()
    tail = _attach_comments(lines, module.comments)
    return _render(lines, tail)


def format_source(text: str, path: str = "<string>") -> str:
    """Parse ``text`` and return it in canonical layout.

    Raises :class:`RulesSyntaxError` (holding the parser's diagnostics) when the text
    does not parse.
    """
    from converge_rules.language.syntax.parser import parse  # the parser is a later stage

    result = parse(text, path)
    errors = [d for d in result.diagnostics if d.is_error]
    if errors or result.module is None:
        raise RulesSyntaxError(errors or result.diagnostics)
    return format_module(result.module)
