"""Hypothesis strategies for random *valid* rulesets, as syntax trees or as text.

``modules()`` draws a :class:`~converge_rules.language.syntax.nodes.Module` whose every node is
something the grammar can write: facts with keys, defaults, optional and list types;
enums; agents with binders, negation, intents, ``where`` guards, calls and every output;
expressions over every operator, built-in and aggregate; policies of every form; prune;
root; tests. ``ruleset_texts()`` is the same rendered as canonical text, and
``noisy_texts()`` renders it with random (but legal) spacing, line breaks, redundant
parentheses and comments, so a property can compare layouts of one tree.

Trees are syntactically valid, not necessarily well-typed: names need not resolve.
Spans are a placeholder; they take no part in equality.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

from converge_rules.language.format.formatter import format_module
from converge_rules.language.syntax import nodes as n
from converge_rules.language.syntax.span import Span

SPAN = Span("<generated>", 1, 1, 1, 1)

# Vocabulary rather than random letters: keeps names readable in failure reports and
# never collides with a keyword.
_LOWER = ("sku", "amount", "cost", "vendor", "qty", "note", "x", "y", "rate", "label")
_UPPER = ("Cost", "Quote", "Price", "Alert", "Rate", "Order", "Item", "Need")
_TOOLS = ("fx_rate", "lookup", "ask_llm")
_BUILTINS = ("round", "abs", "len", "lower", "upper", "contains", "startswith",
             "endswith", "matches")
_BINARY_OPS: tuple[n.BinaryOp, ...] = (
    "+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "and", "or", "in",
)
_BUDGETS = ("max_facts", "max_cycles", "max_agents", "max_tool_calls")
_TIMEOUTS = ("agent_timeout", "job_timeout")
_STATUSES = ("converged", "unmet_goal", "budget_exceeded", "conflict", "oscillating")


def _suffixed(words: tuple[str, ...]) -> st.SearchStrategy[str]:
    return st.builds(
        lambda w, i: f"{w}{i}" if i is not None else w,
        st.sampled_from(words),
        st.none() | st.integers(1, 9),
    )


lower_names = _suffixed(_LOWER)
type_names = _suffixed(_UPPER)


def ident(names: st.SearchStrategy[str] = lower_names) -> st.SearchStrategy[n.Ident]:
    return names.map(lambda s: n.Ident(s, SPAN))


# ----------------------------------------------------------------------- literals

def _int_text(value: int, underscores: bool) -> str:
    if not underscores or value < 1000:
        return str(value)
    return f"{value:_}"


int_literals = st.builds(
    lambda v, u: n.Literal(v, _int_text(v, u), SPAN),
    st.integers(0, 10**9), st.booleans(),
)
float_literals = st.builds(
    lambda whole, frac: n.Literal(float(f"{whole}.{frac}"), f"{whole}.{frac}", SPAN),
    st.integers(0, 10_000), st.from_regex(r"[0-9]{1,4}", fullmatch=True),
)
# Printable text with the characters that need escaping: quotes, backslashes, tabs,
# newlines and non-ASCII.
_string_text = st.text(
    st.characters(max_codepoint=0x2FFF, exclude_categories=("Cs", "Cc"))
    | st.sampled_from(['"', "\\", "\n", "\t", "#", "{", "é", "→"]),
    max_size=12,
)
string_literals = _string_text.map(lambda s: n.Literal(s, "", SPAN))
bool_literals = st.booleans().map(lambda b: n.Literal(b, "true" if b else "false", SPAN))
literals = int_literals | float_literals | string_literals | bool_literals
durations = st.builds(
    lambda v, unit: n.Duration(v * {"ms": 1, "s": 1000, "m": 60_000}[unit], f"{v}{unit}",
                               SPAN),
    st.integers(1, 5000), st.sampled_from(("ms", "s", "m")),
)


# -------------------------------------------------------------------- expressions

def _leaf() -> st.SearchStrategy[n.Expr]:
    names = lower_names.map(lambda s: n.Name(s, SPAN))
    attrs = st.builds(lambda v, a: n.Attribute(n.Name(v, SPAN), n.Ident(a, SPAN), SPAN),
                      lower_names, lower_names)
    return literals | durations | names | attrs


@st.composite
def _pattern_fields(draw: st.DrawFn, depth: int) -> tuple[n.FieldMatch, ...]:
    fields = []
    for name in draw(st.lists(lower_names, max_size=3, unique=True)):
        value = draw(st.none() | st.just(n.Wildcard(SPAN)) | expressions(depth))
        fields.append(n.FieldMatch(n.Ident(name, SPAN), value, SPAN))
    return tuple(fields)


@st.composite
def patterns(draw: st.DrawFn, *, plain: bool = False, depth: int = 1) -> n.Pattern:
    """A pattern; ``plain`` leaves out the binder, ``not`` and ``intent``."""
    fields = draw(_pattern_fields(depth))
    kind = "plain" if plain else draw(st.sampled_from(("plain", "bound", "not", "intent")))
    binder = n.Ident(draw(lower_names), SPAN) if kind == "bound" else None
    return n.Pattern(n.Ident(draw(type_names), SPAN), fields, binder, kind == "not",
                     kind == "intent", SPAN)


def _compound(children: st.SearchStrategy[n.Expr], depth: int) -> st.SearchStrategy[n.Expr]:
    unary = st.builds(lambda op, e: n.Unary(op, e, SPAN), st.sampled_from(("-", "not")),
                      children)
    binary = st.builds(lambda op, a, b: n.Binary(op, a, b, SPAN), st.sampled_from(_BINARY_OPS),
                       children, children)
    if_expr = st.builds(lambda c, a, b: n.IfExpr(c, a, b, SPAN), children, children, children)
    call = st.builds(lambda f, args: n.FuncCall(n.Ident(f, SPAN), tuple(args), SPAN),
                     st.sampled_from(_BUILTINS), st.lists(children, min_size=1, max_size=3))
    count = patterns(plain=True, depth=depth - 1).map(
        lambda p: n.Aggregate("count", p, None, SPAN))
    other_agg = st.builds(
        lambda f, p, fld: n.Aggregate(f, p, n.Ident(fld, SPAN), SPAN),
        st.sampled_from(("sum", "min", "max", "mean")), patterns(plain=True, depth=depth - 1),
        lower_names,
    )
    lists = st.lists(children, max_size=3).map(lambda xs: n.ListExpr(tuple(xs), SPAN))
    records = st.lists(st.tuples(lower_names, children), max_size=3,
                       unique_by=lambda t: t[0]).map(
        lambda kv: n.Record(tuple(n.Arg(n.Ident(k, SPAN), v, SPAN) for k, v in kv), SPAN))
    return unary | binary | if_expr | call | count | other_agg | lists | records


def expressions(depth: int = 2) -> st.SearchStrategy[n.Expr]:
    """An expression at most ``depth`` operators deep (aggregates nest patterns,
    whose field values are expressions, so depth bounds that too)."""
    if depth <= 0:
        return _leaf()
    return st.deferred(lambda: _leaf() | _compound(expressions(depth - 1), depth))


# ----------------------------------------------------------------------- items

def _args(values: st.SearchStrategy[n.Expr] | None = None) -> st.SearchStrategy[tuple[n.Arg, ...]]:
    values = values if values is not None else expressions(1)
    return st.lists(st.tuples(lower_names, values), max_size=5,
                    unique_by=lambda t: t[0]).map(
        lambda items: tuple(n.Arg(n.Ident(k, SPAN), v, SPAN) for k, v in items))


def _type_refs(depth: int = 1) -> st.SearchStrategy[n.TypeRef]:
    simple = st.sampled_from(("str", "int", "float", "bool", "Channel"))
    base = st.builds(lambda name, opt: n.TypeRef(name, (), opt, SPAN), simple, st.booleans())
    if depth <= 0:
        return base
    lists = st.builds(lambda inner, opt: n.TypeRef("list", (inner,), opt, SPAN),
                      _type_refs(depth - 1), st.booleans())
    return base | lists


field_decls = st.builds(
    lambda name, t, key, default: n.FieldDecl(n.Ident(name, SPAN), t, key, default, SPAN),
    lower_names, _type_refs(), st.booleans(), st.none() | literals,
)


facts = st.builds(
    lambda name, fields, intent: n.FactDecl(n.Ident(name, SPAN), tuple(fields), intent, SPAN),
    type_names, st.lists(field_decls, min_size=1, max_size=5, unique_by=lambda f: f.name.name),
    st.booleans(),
)
enums = st.builds(
    lambda name, members: n.EnumDecl(n.Ident(name, SPAN),
                                     tuple(n.Ident(m, SPAN) for m in members), SPAN),
    type_names, st.lists(lower_names, min_size=1, max_size=5, unique=True),
)

outputs: st.SearchStrategy[n.Output] = (
    st.builds(lambda t, a, c, lasting: n.Emit(n.Ident(t, SPAN), a, c, SPAN, lasting=lasting),
              type_names, _args(), st.none() | expressions(1), st.booleans())
    | st.builds(lambda t, a: n.Intend(n.Ident(t, SPAN), a, SPAN), type_names, _args())
    | st.builds(lambda v, s, r: n.Evaluate(n.Ident(v, SPAN), s, r, SPAN),
                lower_names, expressions(1), st.none() | _string_text)
)
calls = st.builds(
    lambda tool, args, alias: n.ToolCall(n.Ident(tool, SPAN), args, n.Ident(alias, SPAN), SPAN),
    st.sampled_from(_TOOLS), _args(), lower_names,
)
_order_keys = (
    st.builds(lambda d, v: n.OrderKey(d, n.Ident(v, SPAN), SPAN),
              st.sampled_from(("lowest", "highest")), lower_names)
    | st.sampled_from(("earliest", "latest")).map(lambda d: n.OrderKey(d, None, SPAN))
)
one_at_a_time = st.lists(_order_keys, min_size=1, max_size=3).map(
    lambda keys: n.OneAtATime(tuple(keys), SPAN))
agents = st.builds(
    lambda name, tier, pats, where, cs, outs, one: n.Agent(
        n.Ident(name, SPAN), tier, tuple(pats), where, tuple(cs), tuple(outs), SPAN,
        one_at_a_time=one),
    lower_names, st.none() | st.integers(0, 9),
    st.lists(patterns(), min_size=1, max_size=3), st.none() | expressions(),
    st.lists(calls, max_size=2), st.lists(outputs, min_size=1, max_size=3),
    st.none() | one_at_a_time,
)

criteria: st.SearchStrategy[n.Criterion] = (
    st.builds(lambda d, f: n.ByField(d, n.Ident(f, SPAN), SPAN),
              st.sampled_from(("highest", "lowest")),
              st.sampled_from(("confidence", "score")) | lower_names)
    | st.sampled_from(("latest", "earliest")).map(lambda w: n.ByCycle(w, SPAN))
    | st.lists(lower_names, min_size=1, max_size=3).map(
        lambda xs: n.ByPriority(tuple(n.Ident(x, SPAN) for x in xs), SPAN))
    | st.just(n.ByMajority(SPAN))
    | lower_names.map(lambda r: n.ByResolver(n.Ident(r, SPAN), SPAN))
)
_resolve_policies = st.builds(
    lambda t, cs, tie: n.Policy(n.Ident(t, SPAN), n.Resolve(tuple(cs), SPAN),
                                n.OnTie(tie, SPAN) if tie else None, SPAN),
    type_names, st.lists(criteria, min_size=1, max_size=3),
    st.none() | st.sampled_from(("reject", "first", "latest")),
)
_other_policies = st.builds(
    lambda t, s: n.Policy(n.Ident(t, SPAN), s, None, SPAN),
    type_names,
    st.builds(lambda f, fld: n.Combine(f, n.Ident(fld, SPAN), SPAN),
              st.sampled_from(("sum", "min", "max", "mean")), lower_names)
    | st.just(n.KeepAll(SPAN)) | st.just(n.RejectAll(SPAN)),
)
policies = _resolve_policies | _other_policies

prunes = st.builds(lambda t, c: n.Prune(n.Ident(t, SPAN), c, SPAN), type_names, expressions())


@st.composite
def roots(draw: st.DrawFn) -> n.Root:
    budgets = [
        n.Budget(n.Ident(name, SPAN), draw(int_literals), SPAN)
        for name in draw(st.lists(st.sampled_from(_BUDGETS), unique=True))
    ] + [
        n.Budget(n.Ident(name, SPAN), draw(durations), SPAN)
        for name in draw(st.lists(st.sampled_from(_TIMEOUTS), unique=True))
    ]
    requires = draw(st.lists(expressions().map(lambda e: n.Require(e, SPAN)), max_size=2))
    return n.Root(draw(_string_text), tuple(budgets), tuple(requires), SPAN)


_records = _args(literals).map(lambda a: n.Record(a, SPAN))
test_steps: st.SearchStrategy[n.TestStep] = (
    st.builds(lambda t, a: n.Given(n.Ident(t, SPAN), a, SPAN), type_names, _args(literals))
    | st.builds(lambda t, a, r: n.Mock(n.Ident(t, SPAN), a, r, SPAN),
                st.sampled_from(_TOOLS), _args(literals), _records | literals)
    | st.builds(lambda t, a, why: n.Mock(n.Ident(t, SPAN), a, None, SPAN, why),
                st.sampled_from(_TOOLS), _args(literals), _string_text)
    | st.builds(lambda p, neg: n.ExpectFact(p, neg, SPAN), patterns(plain=True), st.booleans())
    | patterns(plain=True).map(lambda p: n.ExpectConflict(p, SPAN))
    | st.sampled_from(_STATUSES).map(lambda s: n.ExpectStatus(n.Ident(s, SPAN), SPAN))
)
_cases = st.none() | st.builds(lambda rows: n.Cases(tuple(rows), None, SPAN),
                               st.lists(_records, max_size=3)) | st.from_regex(
    r"[a-z]{1,6}\.(csv|jsonl)", fullmatch=True).map(lambda f: n.Cases((), f, SPAN))
tests = st.builds(lambda name, steps, cases: n.Test(name, tuple(steps), SPAN, cases),
                  _string_text, st.lists(test_steps, min_size=1, max_size=5), _cases)

imports = st.from_regex(r"[a-z]{1,6}(/[a-z]{1,6})?\.cvg", fullmatch=True).map(
    lambda p: n.Import(p, SPAN))
uses = st.lists(st.sampled_from(_TOOLS), min_size=1, max_size=3, unique=True).map(
    lambda ts: n.Uses(tuple(n.Ident(t, SPAN) for t in ts), SPAN))

items: st.SearchStrategy[n.Item] = (
    imports | uses | enums | facts | agents | policies | prunes | tests
)


@st.composite
def modules(draw: st.DrawFn, max_items: int = 6) -> n.Module:
    """A module: a ``ruleset`` header, at most one ``root``, then any items."""
    header = n.RulesetDecl(n.Ident(draw(lower_names), SPAN),
                           draw(st.none() | _string_text), SPAN)
    body: list[n.Item] = draw(st.lists(items, max_size=max_items))
    if draw(st.booleans()):
        body.insert(draw(st.integers(0, len(body))), draw(roots()))
    return n.Module(header, tuple(body), (), SPAN)


def ruleset_texts(max_items: int = 6) -> st.SearchStrategy[str]:
    """Random valid rulesets as canonical text."""
    return modules(max_items).map(format_module)


@dataclass(frozen=True, slots=True)
class NoisyText:
    """A module and one random legal layout of it (``comments`` lines added)."""

    module: n.Module
    text: str
    comments: tuple[str, ...]


@st.composite
def noisy_texts(draw: st.DrawFn, max_items: int = 4, with_comments: bool = True) -> NoisyText:
    """A random module rendered canonically, then re-spaced at random: extra spaces
    and line breaks where whitespace is already allowed, blank lines, and (unless
    ``with_comments`` is false) own-line comments between lines and trailing comments.
    Strings are left alone."""
    module = draw(modules(max_items))
    canonical = format_module(module)
    out: list[str] = []
    comments: list[str] = []
    for line in canonical.split("\n")[:-1]:
        if with_comments and draw(st.integers(0, 5)) == 0:
            comment = _comment_text(draw)
            comments.append(comment)
            out.append(" " * draw(st.integers(0, 4)) + comment)
        if draw(st.integers(0, 5)) == 0:
            out.append("")
        code = " " * draw(st.integers(0, 6)) + _respace(draw, line, comments,
                                                        with_comments)
        if with_comments and draw(st.integers(0, 5)) == 0:
            comment = _comment_text(draw)
            comments.append(comment)
            code += " " * draw(st.integers(0, 3)) + comment
        out.append(code)
    return NoisyText(module, "\n".join(out) + draw(st.sampled_from(("", "\n", "\n\n"))),
                     tuple(comments))


def _comment_text(draw: st.DrawFn) -> str:
    text = draw(st.text(st.characters(min_codepoint=32, max_codepoint=0x2FFF,
                                      exclude_categories=("Cs", "Cc")), max_size=10))
    return ("# " + text).rstrip()


def _respace(draw: st.DrawFn, line: str, comments: list[str],
             with_comments: bool = True) -> str:
    """Widen some spaces outside string literals into several spaces, a line break or
    (``with_comments``) a comment and a line break (appending the comment to
    ``comments``)."""
    parts: list[str] = []
    in_string = escaped = False
    for ch in line:
        if in_string:
            parts.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            continue
        if ch == '"':
            in_string = True
            parts.append(ch)
        elif ch == " " and draw(st.integers(0, 3)) == 0:
            gaps = ("  ", "   ", "\n", "\n    ", "comment")
            gap = draw(st.sampled_from(gaps if with_comments else gaps[:-1]))
            if gap == "comment":  # a comment wherever a line may break
                comment = _comment_text(draw)
                comments.append(comment)
                gap = f" {comment}\n  "
            parts.append(gap)
        else:
            parts.append(ch)
    return "".join(parts)
