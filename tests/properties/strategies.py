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

``typed_rulesets()`` (at the end) draws rulesets that do check and run, and
``typed_facts()`` facts for them, for properties that run what they generate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

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
_STATUSES = ("converged", "unmet_goal", "budget_exceeded", "conflict", "oscillating",
             "invariant_violated", "awaiting_approval")


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
    lambda v, unit: n.Duration(v * {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000,
                                    "d": 86_400_000, "w": 604_800_000}[unit],
                               f"{v}{unit}", SPAN),
    st.integers(1, 5000), st.sampled_from(("ms", "s", "m", "h", "d", "w")),
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
# `prune T using NAME` / `using NAME(arg: constant, …)`: a plugin pruner (issue 10 item 11)
prunes |= st.builds(
    lambda t, name, args: n.Prune(n.Ident(t, SPAN), None, SPAN,
                                  n.PrunerUse(n.Ident(name, SPAN), args, SPAN)),
    type_names, lower_names, _args(literals),
)
# `invariant NAME never PATTERNS [where EXPR]` / `invariant NAME always EXPR` (issue 14)
invariants = st.builds(
    lambda name, pats, where: n.Invariant(n.Ident(name, SPAN), tuple(pats), where, False,
                                          SPAN),
    lower_names, st.lists(patterns(), min_size=1, max_size=3), st.none() | expressions(),
) | st.builds(lambda name, e: n.Invariant(n.Ident(name, SPAN), (), e, True, SPAN),
              lower_names, expressions())

# `approve TYPE [when EXPR]`: an approval gate (issue 14 item 1)
gates = st.builds(lambda t, c: n.Gate(n.Ident(t, SPAN), c, SPAN), type_names,
                  st.none() | expressions())


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
    | st.builds(lambda p, yes: n.Decide(p, yes, SPAN), patterns(plain=True), st.booleans())
    | patterns(plain=True).map(lambda p: n.ExpectPending(p, SPAN))
    | st.builds(lambda text: n.GivenNow(n.FuncCall(n.Ident("datetime", SPAN),
                                                   (n.Literal(text, "", SPAN),), SPAN),
                                        SPAN), _string_text)
)


def _table(rows: list[tuple[n.Record, str | None]]) -> n.Cases:
    """Inline rows, some named (``case "name" {…}``): ``names`` is empty when none is."""
    names = tuple(name for _, name in rows)
    return n.Cases(tuple(r for r, _ in rows), None, SPAN,
                   names if any(name is not None for name in names) else ())


_cases = st.none() | st.lists(st.tuples(_records, st.none() | _string_text),
                              max_size=3).map(_table) | st.from_regex(
    r"[a-z]{1,6}\.(csv|jsonl)", fullmatch=True).map(lambda f: n.Cases((), f, SPAN))
tests = st.builds(lambda name, steps, cases: n.Test(name, tuple(steps), SPAN, cases),
                  _string_text, st.lists(test_steps, min_size=1, max_size=5), _cases)

imports = st.from_regex(r"[a-z]{1,6}(/[a-z]{1,6})?\.cvg", fullmatch=True).map(
    lambda p: n.Import(p, SPAN))
uses = st.lists(st.sampled_from(_TOOLS), min_size=1, max_size=3, unique=True).map(
    lambda ts: n.Uses(tuple(n.Ident(t, SPAN) for t in ts), SPAN))

items: st.SearchStrategy[n.Item] = (
    imports | uses | enums | facts | agents | policies | prunes | invariants | gates | tests
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


# ------------------------------------------------------------ well-typed rulesets
#
# The strategies above draw trees the grammar can write; most of them do not check.
# ``typed_rulesets()`` draws rulesets that check, can be run, and whose expressions cannot
# fail at run time (no division by zero, no arithmetic on none, no bad regex), so the
# compiled agents and the interpreter in ``converge_rules.analysis.interpret`` must
# agree on every match: joins (a field name is one type in every fact type, so
# ``Cost(sku) and Quote(sku)`` joins), constants, wildcards, expression constraints,
# whole-fact binders, negation (also written before the pattern that binds its names),
# aggregates (also inside pattern fields), ``where`` guards over every operator and
# built-in, optional fields (none), lists, enums (two of them share a member name),
# dates and whole-day durations (arithmetic, fields, order), str() and fixed(), and
# tiers. No keys, policies, prunes, intents or tools: the final context of a converged
# run is then exactly the closure of the agents over the input facts.


@dataclass(frozen=True, slots=True)
class VT:
    """A value type: ``base`` is str, int, float, bool, enum or list."""

    base: str
    optional: bool = False
    enum: str = ""       # the enum, for base == "enum"
    elem: str = ""       # the element base, for base == "list"

    def required(self) -> VT:
        return VT(self.base, False, self.enum, self.elem)


ENUMS: dict[str, tuple[str, ...]] = {"Channel": ("web", "store", "shop"),
                                     "Grade": ("low", "high", "web")}
FIELD_TYPES: dict[str, VT] = {
    "sku": VT("str"), "vendor": VT("str"), "qty": VT("int"), "amount": VT("float"),
    "ok": VT("bool"), "channel": VT("enum", enum="Channel"),
    "note": VT("str", True), "level": VT("int", True), "rate": VT("float", True),
    "flag": VT("bool", True), "grade": VT("enum", True, enum="Grade"),
    "tags": VT("list", elem="str"), "nums": VT("list", elem="int"),
    "due": VT("date"), "wait": VT("duration"), "since": VT("date", True),
}
_STRS = ("a", "b", "ab", "B", "")
_INTS = (-2, -1, 0, 1, 2, 3)
_FLOATS = (-2.0, 0.0, 0.5, 1.5, 2.25)
# Leap days and year ends; durations of whole days only, so a date moves by any of them
# (a date moved by part of a day fails the agent).
_DATES = (date(2024, 2, 29), date(2025, 12, 31), date(2026, 1, 1), date(2000, 3, 1))
_DURATIONS = (timedelta(days=1), timedelta(0), timedelta(days=-2), timedelta(weeks=3))
_REGEXES = ("^a", "b$", "[ab]+", "^$", "A|b")
# what str() writes: every type but lists
_TEXTUAL = (VT("int"), VT("float"), VT("str"), VT("bool"), VT("enum", enum="Channel"),
            VT("date"), VT("duration"))
_VAR_NAMES = ("x", "y", "n", "s", "web", "store")   # two are also enum members
_BINDERS = ("p", "q", "r")
_TYPE_NAMES = ("Cost", "Quote", "Price", "Alert", "Rate", "Order", "Item", "Need")


@dataclass(frozen=True, slots=True)
class TypeShape:
    """A generated fact type: its fields (names from :data:`FIELD_TYPES`) and the tier
    of the agents that emit it (0: input only)."""

    name: str
    fields: tuple[str, ...]
    tier: int
    defaults: tuple[tuple[str, Any], ...] = ()    # (field, value) for fields with one


@dataclass(frozen=True, slots=True)
class TypedRuleset:
    """A generated ruleset: its tree, its text (what a failure report shows) and the
    shapes of its types."""

    module: n.Module = field(repr=False)
    text: str = field(repr=False)
    types: tuple[TypeShape, ...] = ()

    def type(self, name: str) -> TypeShape:
        return next(t for t in self.types if t.name == name)


def value_of(vt: VT) -> st.SearchStrategy[Any]:
    """A runtime value of type ``vt`` as the engine holds it (lists as tuples)."""
    if vt.base == "list":
        inner = VT(vt.elem)
        base: st.SearchStrategy[Any] = st.lists(value_of(inner), max_size=2).map(tuple)
    elif vt.base == "str":
        base = st.sampled_from(_STRS)
    elif vt.base == "int":
        base = st.sampled_from(_INTS)
    elif vt.base == "float":
        base = st.sampled_from(_FLOATS)
    elif vt.base == "bool":
        base = st.booleans()
    elif vt.base == "date":
        base = st.sampled_from(_DATES)
    elif vt.base == "duration":
        base = st.sampled_from(_DURATIONS)
    else:
        base = st.sampled_from(ENUMS[vt.enum])
    return (st.none() | base) if vt.optional else base


def literal_expr(value: Any, vt: VT, qualified: bool = False) -> n.Expr:
    """The expression that writes ``value`` (not None) of type ``vt``."""
    if vt.base == "enum":
        return (n.Attribute(n.Name(vt.enum, SPAN), n.Ident(value, SPAN), SPAN) if qualified
                else n.Name(value, SPAN))
    if vt.base == "list":
        return n.ListExpr(tuple(literal_expr(v, VT(vt.elem)) for v in value), SPAN)
    if isinstance(value, bool):
        return n.Literal(value, "true" if value else "false", SPAN)
    if isinstance(value, date):
        return n.FuncCall(n.Ident("date", SPAN), (n.Literal(value.isoformat(), "", SPAN),),
                          SPAN)
    if isinstance(value, timedelta):
        whole = n.Duration(abs(value) // timedelta(milliseconds=1),
                           f"{abs(value).days}d", SPAN)
        return n.Unary("-", whole, SPAN) if value < timedelta(0) else whole
    return n.Literal(value, "" if isinstance(value, str) else repr(value), SPAN)


@dataclass(slots=True)
class _Scope:
    """What an expression may use at one point of an agent: variables bound so far
    (with their types), whole-fact binders, and the types it may aggregate over."""

    types: dict[str, TypeShape]
    tier: int
    vars: dict[str, VT] = field(default_factory=dict)
    binders: dict[str, TypeShape] = field(default_factory=dict)

    def copy(self) -> _Scope:
        return _Scope(self.types, self.tier, dict(self.vars), dict(self.binders))

    def lower(self) -> list[TypeShape]:
        """Types complete before this agent's tier: negation and aggregates may use them."""
        return [t for t in self.types.values() if t.tier < self.tier]


def _fits(have: VT, want: VT, nullable: bool) -> bool:
    if have.optional and not nullable:
        return False
    if want.base == "float" and have.base == "int":
        return True
    return (have.base, have.enum, have.elem) == (want.base, want.enum, want.elem)


class _ExprGen:
    """Draws typed expressions that cannot fail at run time."""

    def __init__(self, draw: st.DrawFn, scope: _Scope) -> None:
        self.draw = draw
        self.scope = scope

    def pick(self, options: list[Any]) -> Any:
        return options[self.draw(st.integers(0, len(options) - 1))]

    def literal(self, vt: VT, bare: bool = False) -> n.Expr:
        """A constant; an enum member is written bare only where ``bare`` says its enum
        is known from the context (and no variable of that name hides it)."""
        value = self.draw(value_of(vt.required()))
        qualified = not bare or value in self.scope.vars or self.draw(st.booleans())
        return literal_expr(value, vt, qualified=qualified)

    def leaves(self, want: VT, nullable: bool, bare: bool = False) -> list[Any]:
        """The constant first, then the names (variables and binder fields) of the
        type; where none is allowed, half the time only the names that may be none."""
        only_optional = nullable and self.draw(st.booleans())
        out: list[Any] = [lambda: self.literal(want, bare)]
        for name, vt in self.scope.vars.items():
            if _fits(vt, want, nullable) and (vt.optional or not only_optional):
                out.append(lambda name=name: n.Name(name, SPAN))
        for binder, shape in self.scope.binders.items():
            for f in shape.fields:
                vt = FIELD_TYPES[f]
                if _fits(vt, want, nullable) and (vt.optional or not only_optional):
                    out.append(lambda b=binder, f=f: n.Attribute(
                        n.Name(b, SPAN), n.Ident(f, SPAN), SPAN))
        if len(out) == 1 and only_optional:
            return self.leaves(want, nullable, bare)
        return out

    def expr(self, want: VT, depth: int, nullable: bool = False, bare: bool = False
             ) -> n.Expr:
        """An expression of type ``want`` (may be none only when ``nullable``; an enum
        member may be bare when ``bare``)."""
        # a leaf or an operation, even odds; a leaf is more often a name than a constant
        # (names are where none, joins and binders come in)
        if depth > 0 and self.draw(st.booleans()):
            return self.pick(self.compound(want, depth - 1, nullable, bare))()
        literal, *names = self.leaves(want, nullable, bare)
        return self.pick(names)() if names and self.draw(st.integers(0, 2)) else literal()

    def binary(self, op: str, a: n.Expr, b: n.Expr) -> n.Expr:
        return n.Binary(op, a, b, SPAN)  # type: ignore[arg-type]

    def call(self, name: str, *args: n.Expr) -> n.Expr:
        return n.FuncCall(n.Ident(name, SPAN), tuple(args), SPAN)

    def compound(self, want: VT, d: int, nullable: bool, bare: bool = False) -> list[Any]:
        e, b = self.expr, self.binary
        INT, FLOAT, STR, BOOL = VT("int"), VT("float"), VT("str"), VT("bool")
        num = self.pick([INT, FLOAT]) if want.base == "float" else INT
        out: list[Any] = [lambda: n.IfExpr(e(BOOL, d, True), e(want, d, nullable, bare),
                                           e(want, d, nullable, bare), SPAN)]
        if want.base in ("int", "float"):
            out += [
                lambda: b(self.pick(["+", "-", "*"]), e(want, d), e(num, d)),
                lambda: n.Unary("-", e(want, d), SPAN),
                lambda: self.call("abs", e(want, d)),
                lambda: self.call(self.pick(["min", "max"]), e(want, d), e(num, d)),
                lambda: self.aggregate("sum", want),
            ]
        if want.base == "int":
            out += [
                lambda: b("%", e(INT, d), n.Literal(self.pick([2, 3, -2]), "", SPAN)),
                lambda: self.call("len", e(self.pick([STR, VT("list", elem="str")]), d)),
                lambda: self.aggregate("count", want),
            ]
            if nullable:
                out.append(lambda: self.aggregate(self.pick(["min", "max"]), want))
        if want.base == "float":
            out += [
                lambda: b("/", e(num, d), n.Literal(self.pick([2, 0.5, -4]), "", SPAN)),
                lambda: self.call("round", e(num, d)),
                lambda: self.call("round", e(num, d), n.Literal(self.pick([0, 1, 2]), "",
                                                                  SPAN)),
            ]
            if nullable:
                out.append(lambda: self.aggregate(self.pick(["min", "max", "mean"]), want))
        if want.base == "str":
            out += [
                lambda: self.call(self.pick(["lower", "upper"]), e(STR, d)),
                lambda: b("+", e(STR, d), e(STR, d)),
                lambda: self.call("str", e(self.pick(_TEXTUAL), d, True)),
                lambda: self.call("fixed", e(self.pick([INT, FLOAT]), d),
                                  n.Literal(self.pick([0, 1, 2]), "", SPAN)),
            ]
        DATE, DURATION = VT("date"), VT("duration")
        if want.base == "date":
            out.append(lambda: b(self.pick(["+", "-"]), e(DATE, d), e(DURATION, d)))
        if want.base == "duration":
            out += [
                lambda: b("-", e(DATE, d), e(DATE, d)),
                lambda: b(self.pick(["+", "-"]), e(DURATION, d), e(DURATION, d)),
                lambda: n.Unary("-", e(DURATION, d), SPAN),
                lambda: b("*", e(DURATION, d), n.Literal(self.pick([2, -1, 0]), "", SPAN)),
            ]
        if want.base == "int":
            out.append(lambda: self._time_int(d))
        if want.base == "list":
            out.append(lambda: b("+", e(want, d), e(want, d)))
        if want.base == "bool":
            out += [
                lambda: self.ordering(d),
                lambda: self.equality(d),
                lambda: b(self.pick(["and", "or"]), e(BOOL, d, True), e(BOOL, d, True)),
                lambda: n.Unary("not", e(BOOL, d, True), SPAN),
                lambda: self.call(self.pick(["contains", "startswith", "endswith"]),
                                  e(STR, d), e(STR, d)),
                lambda: self.call("matches", e(STR, d),
                                  n.Literal(self.pick(list(_REGEXES)), "", SPAN)),
                lambda: b("in", e(STR, d), e(STR, d)),
                lambda: self.membership(d),
            ]
        return out

    def _time_int(self, d: int) -> n.Expr:
        """An int field of a date (``year``, ``month``, ``day``, ``weekday``) or of a
        duration (``days``, ``hours``, ``minutes``)."""
        if self.draw(st.booleans()):
            value, names = self.expr(VT("date"), d), ["year", "month", "day", "weekday"]
        else:
            value, names = self.expr(VT("duration"), d), ["days", "hours", "minutes"]
        return n.Attribute(value, n.Ident(self.pick(names), SPAN), SPAN)

    def ordering(self, d: int) -> n.Expr:
        kind = self.pick([VT("int"), VT("float"), VT("str"), VT("date"), VT("duration")])
        other = self.pick([VT("int"), VT("float")]) if kind.base in ("int", "float") \
            else kind
        return self.binary(self.pick(["<", "<=", ">", ">="]), self.expr(kind, d, True),
                           self.expr(other, d, True))

    def equality(self, d: int) -> n.Expr:
        kind = self.pick([VT("int"), VT("float"), VT("str"), VT("bool"),
                          VT("enum", enum="Channel"), VT("enum", enum="Grade"),
                          VT("list", elem="int"), VT("date"), VT("duration")])
        return self.binary(self.pick(["==", "!="]), self.expr(kind, d, True),
                           self.expr(kind, d, True, bare=True))

    def membership(self, d: int) -> n.Expr:
        kind = self.pick([VT("int"), VT("str"), VT("enum", enum="Channel")])
        items = self.draw(st.lists(value_of(kind), max_size=3))
        listed = n.ListExpr(tuple(literal_expr(v, kind, v in self.scope.vars)
                                  for v in items), SPAN)
        if kind.base == "int":
            lists: list[n.Expr] = [listed, self.expr(VT("list", elem="int"), d)]
        elif kind.base == "str":
            lists = [listed, self.expr(VT("list", elem="str"), d)]
        else:
            lists = [listed]
        target = self.pick(lists)
        if self.draw(st.booleans()) and kind.base != "enum":
            return self.call("contains", target, self.expr(kind, d))
        return self.binary("in", self.expr(kind, d, True), target)

    def aggregate(self, func: str, want: VT) -> n.Expr:
        """An aggregate over a type of a lower tier; falls back to a literal when there is
        none (or no field of the wanted type)."""
        shapes = self.scope.lower()
        if func != "count":
            bases = ("int",) if want.base == "int" else ("int", "float")
            shapes = [t for t in shapes
                      if any(FIELD_TYPES[f].base in bases for f in t.fields)]
        if not shapes:
            return self.literal(want)
        shape = self.pick(shapes)
        pattern = pattern_in(self.draw, self.scope.copy(), shape, local=True)
        if func == "count":
            return n.Aggregate("count", pattern, None, SPAN)
        bases = ("int",) if want.base == "int" else ("int", "float")
        fld = self.pick([f for f in shape.fields if FIELD_TYPES[f].base in bases])
        return n.Aggregate(func, pattern, n.Ident(fld, SPAN), SPAN)  # type: ignore[arg-type]


def pattern_in(draw: st.DrawFn, scope: _Scope, shape: TypeShape, *, negated: bool = False,
               local: bool = False, binder: str | None = None) -> n.Pattern:
    """A pattern over ``shape``. A positive pattern binds its new names into ``scope``;
    a negated or aggregated (``local``) one keeps them to itself. Each field is a name
    (shorthand, or ``field: name``: a join when the name is bound, else a new variable),
    a constant, ``_``, or an expression over names bound earlier."""
    fields = draw(st.lists(st.sampled_from(shape.fields), unique=True,
                           max_size=len(shape.fields)))
    inner = scope.copy() if negated or local else scope
    if binder is not None:
        inner.binders[binder] = shape    # bound first: its own fields may use it
    matches = []
    for name in fields:
        vt = FIELD_TYPES[name]
        # mostly names (binds and joins), so that random facts often match
        kind = draw(st.sampled_from(("short", "short", "short", "name", "name", "const",
                                     "wild", "expr")))
        value: n.Expr | None
        if kind == "short" and _bindable(inner, name, vt):
            value = None
            inner.vars.setdefault(name, vt)
        elif kind in ("short", "name"):
            pool = _VAR_NAMES if draw(st.booleans()) else (*_VAR_NAMES, *FIELD_TYPES)
            names = [v for v in pool if _bindable(inner, v, vt)
                     and not (vt.base == "enum" and v in ENUMS[vt.enum])]
            if not names:
                value = n.Wildcard(SPAN)
            else:
                var = draw(st.sampled_from(names))
                value = n.Name(var, SPAN)
                inner.vars.setdefault(var, vt)
        elif kind == "const":
            member = draw(value_of(vt.required()))
            value = literal_expr(member, vt, qualified=member in inner.vars
                                 or draw(st.booleans()))
        elif kind == "wild":
            value = n.Wildcard(SPAN)
        else:
            # over the names bound so far, by earlier patterns and earlier fields
            value = _ExprGen(draw, inner.copy()).expr(vt.required(), 1)
        matches.append(n.FieldMatch(n.Ident(name, SPAN), value, SPAN))
    return n.Pattern(n.Ident(shape.name, SPAN), tuple(matches),
                     n.Ident(binder, SPAN) if binder else None, negated, False, SPAN)


def _bindable(scope: _Scope, name: str, vt: VT) -> bool:
    """May ``name`` stand in a field of type ``vt``: unbound (it binds), or bound to a
    value of a comparable type (a join)? Binder names never."""
    if name in scope.binders or name in _BINDERS:
        return False
    have = scope.vars.get(name)
    if have is None:
        return True
    same = (have.base, have.enum, have.elem) == (vt.base, vt.enum, vt.elem)
    return same or {have.base, vt.base} == {"int", "float"}


@st.composite
def typed_agents(draw: st.DrawFn, types: dict[str, TypeShape], name: str,
                 tier: int) -> n.Agent:
    """An agent of ``tier`` that emits types of that tier."""
    scope = _Scope(types, tier)
    readable = [t for t in types.values() if t.tier <= tier]
    lower = scope.lower()
    kinds = draw(st.lists(st.sampled_from(("pos", "pos", "neg") if lower else ("pos",)),
                          min_size=1, max_size=4))
    if "pos" not in kinds and draw(st.integers(0, 3)):
        kinds.append("pos")
    if "neg" in kinds and draw(st.booleans()):
        # a negation written first: its names are its own even where a later pattern
        # binds the same names
        kinds.remove("neg")
        kinds.insert(0, "neg")
    patterns = []
    for kind in kinds:
        if kind == "neg":
            patterns.append(pattern_in(draw, scope, draw(st.sampled_from(lower)),
                                       negated=True))
            continue
        free = [b for b in _BINDERS if b not in scope.binders and b not in scope.vars]
        binder = draw(st.sampled_from(free)) if free and draw(st.integers(0, 4)) == 0 \
            else None
        patterns.append(pattern_in(draw, scope, draw(st.sampled_from(readable)),
                                   negated=False, binder=binder))
    gen = _ExprGen(draw, scope)
    where = gen.expr(VT("bool"), 2, True) if draw(st.booleans()) else None
    outputs: list[n.Output] = []
    own = [t for t in types.values() if t.tier == tier]
    for _ in range(draw(st.integers(1, 2))):
        shape = draw(st.sampled_from(own))
        args = []
        for f in shape.fields:
            vt = FIELD_TYPES[f]
            if (vt.optional or f in dict(shape.defaults)) and draw(st.booleans()):
                continue      # left out: its default, or none
            args.append(n.Arg(n.Ident(f, SPAN), gen.expr(vt, 2, vt.optional, bare=True),
                              SPAN))
        confidence = draw(st.none() | st.sampled_from([0.25, 0.5, 1.0]).map(
            lambda c: n.Literal(c, repr(c), SPAN)))
        outputs.append(n.Emit(n.Ident(shape.name, SPAN), tuple(args), confidence, SPAN))
    return n.Agent(n.Ident(name, SPAN), tier, tuple(patterns), where, (), tuple(outputs),
                   SPAN)


def _field_decl(name: str, defaults: tuple[tuple[str, Any], ...]) -> n.FieldDecl:
    vt = FIELD_TYPES[name]
    if vt.base == "list":
        ref = n.TypeRef("list", (n.TypeRef(vt.elem, (), False, SPAN),), vt.optional, SPAN)
    else:
        ref = n.TypeRef(vt.enum or vt.base, (), vt.optional, SPAN)
    given = dict(defaults)
    default = literal_expr(given[name], vt) if name in given else None
    return n.FieldDecl(n.Ident(name, SPAN), ref, False, default, SPAN)


@st.composite
def typed_rulesets(draw: st.DrawFn, max_agents: int = 4) -> TypedRuleset:
    """A ruleset that checks and runs without a runtime error, with its type shapes."""
    names = draw(st.lists(st.sampled_from(_TYPE_NAMES), min_size=2, max_size=5,
                          unique=True))
    n_inputs = draw(st.integers(1, len(names) - 1))
    shapes: list[TypeShape] = []
    for i, tname in enumerate(names):
        fields = draw(st.lists(st.sampled_from(tuple(FIELD_TYPES)), min_size=1, max_size=3,
                               unique=True))
        tier = 0 if i < n_inputs else draw(st.integers(1, 3))
        defaults = tuple((f, draw(value_of(FIELD_TYPES[f].required()))) for f in fields
                         if tier and draw(st.integers(0, 3)) == 0)
        shapes.append(TypeShape(tname, tuple(fields), tier, defaults))
    types = {t.name: t for t in shapes}
    tiers = sorted({t.tier for t in shapes if t.tier})
    agents = [draw(typed_agents(types, f"agent{i}", draw(st.sampled_from(tiers))))
              for i in range(draw(st.integers(1, max_agents)))]
    items: list[n.Item] = [
        # An agent may read the type it emits (a recursion), and `x + x` or `n * n` then
        # grows without end: few cycles keep the values small.
        n.Root("generated", (n.Budget(n.Ident("max_cycles", SPAN), n.Literal(12, "12", SPAN),
                                      SPAN),
                             n.Budget(n.Ident("max_facts", SPAN), n.Literal(300, "300", SPAN),
                                      SPAN)), (), SPAN),
        *(n.EnumDecl(n.Ident(e, SPAN), tuple(n.Ident(m, SPAN) for m in ms), SPAN)
          for e, ms in ENUMS.items()),
        *(n.FactDecl(n.Ident(t.name, SPAN), tuple(_field_decl(f, t.defaults)
                                                  for f in t.fields), False, SPAN)
          for t in shapes),
        *agents,
    ]
    module = n.Module(n.RulesetDecl(n.Ident("generated", SPAN), None, SPAN), tuple(items),
                      (), SPAN)
    return TypedRuleset(module, format_module(module), tuple(shapes))


def typed_facts(ruleset: TypedRuleset, *, derived: bool = False, per_type: int = 4
                ) -> st.SearchStrategy[list[tuple[str, dict[str, Any]]]]:
    """Facts of the input types (and, with ``derived``, of every type) as
    ``(type, fields)`` with values as the engine holds them: up to ``per_type`` of each
    type (sometimes none, so negations can pass), in a random order."""
    shapes = [t for t in ruleset.types if derived or t.tier == 0]

    def rows(shape: TypeShape) -> st.SearchStrategy[list[tuple[str, dict[str, Any]]]]:
        one = st.fixed_dictionaries({f: value_of(FIELD_TYPES[f]) for f in shape.fields})
        # how many, drawn so that the simplest choice (which hypothesis favours) is not
        # zero: an empty type fails every positive pattern over it
        sizes = st.sampled_from([max(1, per_type // 2), *range(1, per_type + 1), 0])
        return sizes.flatmap(lambda k: st.lists(one.map(lambda d: (shape.name, d)),
                                                min_size=k, max_size=k))

    return st.tuples(*(rows(t) for t in shapes)).map(
        lambda groups: [row for group in groups for row in group]).flatmap(st.permutations)
